//! The netavark plugin front end (issue 19). `direct`: the binary run inside a test node as
//! netavark runs it, with requests shaped like the calls podman 5.4 / netavark 1.14 made
//! (fast, no podman). `podman`: real podman with netavark in a runtime node (Debian trixie
//! here; sid with `--ignored`, `make test-podman-sid`). `deploy`: the installer and the unit.

#[path = "../common/mod.rs"]
mod common;

mod bench;
mod deploy;
mod direct;
mod plugin;
mod podman;

use common::runtime_node::Suite;

#[test]
fn podman_trixie_shim_dual_stack_lifecycle() {
    podman::shim_dual_stack_lifecycle(Suite::Trixie);
}

#[test]
fn podman_trixie_veth_and_podmans_own_macvlan() {
    podman::veth_and_podmans_own_macvlan(Suite::Trixie);
}

#[test]
fn podman_trixie_killed_setup_and_teardown() {
    podman::killed_setup_and_teardown(Suite::Trixie);
}

// The same against sid's podman 5.8 / netavark 1.17: `make test-podman-sid` (not in `make
// test`: a second root file system and three more nodes).

#[test]
#[ignore = "make test-podman-sid"]
fn podman_sid_shim_dual_stack_lifecycle() {
    podman::shim_dual_stack_lifecycle(Suite::Sid);
}

#[test]
#[ignore = "make test-podman-sid"]
fn podman_sid_veth_and_podmans_own_macvlan() {
    podman::veth_and_podmans_own_macvlan(Suite::Sid);
}

#[test]
#[ignore = "make test-podman-sid"]
fn podman_sid_killed_setup_and_teardown() {
    podman::killed_setup_and_teardown(Suite::Sid);
}
