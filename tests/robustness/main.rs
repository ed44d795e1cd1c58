//! What the node relies on when things around the plugin go wrong (issue 11): a state
//! directory wiped while pods live, two networks with different `stateDir`s racing on one
//! shim, and the first packet right after a veth ADD under load. One module per situation.

#[path = "../common/mod.rs"]
mod common;

mod first_packet;
mod two_state_dirs;
mod wiped_state;

use common::*;
