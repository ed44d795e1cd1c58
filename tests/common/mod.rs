//! Test bed shared by the integration tests: `mod common;` in `tests/NAME.rs`,
//! `#[path = "../common/mod.rs"] mod common;` in a test binary of its own directory
//! (`tests/NAME/main.rs`) and in the bench; everything is re-exported here, `use common::*`.
//!
//! Every test builds its own LAN out of network namespaces and never touches the machine's own
//! (root) namespace: the only root-namespace commands are `ip netns add/del`, and every veth
//! is created from inside a test namespace with both ends placed in test namespaces.
//!
//! ```text
//! netns LAN:   bridge br0, up; one veth end per machine, enslaved to br0
//! netns NODE1: eth0 10.99.0.10/24 fd99::10/64, default route via PEER
//! netns NODE2: eth0 10.99.0.11/24 fd99::11/64, default route via PEER
//! netns PEER:  eth0 10.99.0.20/24 fd99::20/64 (another machine on the LAN, a router)
//! netns POD*:  empty (lo up), handed to the plugin as CNI_NETNS
//! ```
//!
//! Namespace names are `mvh-<pid>-<n>-<role>`, unique per process and per `Lan`; interface
//! names need no suffix because they live inside those namespaces. Everything is removed on
//! `Drop`, also when the test panics, and `Lan::new` first removes what a killed earlier run
//! left behind.
//!
//! One module per part: `netns` (an owned namespace, commands inside it, unique names and the
//! sweep of stale leftovers), `lan` (the topology above), `temp_dir`, `plugin` (one CNI call:
//! `Attachment`, `Plugin`, `CniOutput`), `conflist` (a list run as libcni runs it), `network`
//! (the one network fixture, `Spec` -> `Net`, for chained or interface mode and IPv4, IPv6 or
//! dual stack), `results` (reading results and errors), `inspect` (what a namespace holds, and
//! the "nothing left" assertions), `traffic` (TCP server, ping/TCP checks, `Holder`) and
//! `cases` (the `cases!` table: one `#[test]` per setup of a scenario). `runtime_node` (used as
//! `common::runtime_node::*`) runs the newer runtimes — podman 5, Docker 26/28, containerd 2.1 —
//! from a Debian trixie or sid root inside a node's namespace.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

mod cases;
mod cgroups;
mod conflist;
mod inspect;
mod lan;
mod netns;
mod network;
mod plugin;
pub mod podman;
mod results;
pub mod runtime_node;
mod temp_dir;
mod traffic;

// Each test binary uses a different part of the harness.
#[allow(unused_imports)]
pub use {
    cases::*, cgroups::*, conflist::*, inspect::*, lan::*, netns::*, network::*, plugin::*,
    results::*, temp_dir::*, traffic::*,
};

/// The plugin under test, built by cargo for the integration tests.
pub const OUR_PLUGIN: &str = env!("CARGO_BIN_EXE_macvlan-host");
/// Its CNI type name: the file name under CNI_PATH.
pub const OUR_TYPE: &str = "macvlan-host";

/// The LAN's subnets and the machines' addresses on them.
pub const SUBNET4: &str = "10.99.0.0/24";
pub const SUBNET6: &str = "fd99::/64";
pub const NODE1_IP4: &str = "10.99.0.10";
pub const NODE1_IP6: &str = "fd99::10";
pub const NODE2_IP4: &str = "10.99.0.11";
pub const NODE2_IP6: &str = "fd99::11";
pub const PEER_IP4: &str = "10.99.0.20";
pub const PEER_IP6: &str = "fd99::20";
