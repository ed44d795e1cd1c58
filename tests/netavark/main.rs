//! The netavark plugin front end (issue 19). `direct`: the binary run inside a test node as
//! netavark runs it, with requests shaped like the calls podman 5.4 / netavark 1.14 made
//! (fast, no podman).

#[path = "../common/mod.rs"]
mod common;

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
