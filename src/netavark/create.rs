//! `create` (run by podman at `podman network create -d macvlan-host`): validates the network
//! and completes its options, before anything exists. What it prints is what podman stores.

use super::host_side;
use super::network::{self, Settings};
use super::types::Network;
use crate::error::Result;

pub fn create(mut network: Network) -> Result<Network> {
    network::refuse_rootless()?;
    let settings = Settings::of(&network)?;
    network::refuse_unaddressed(&network)?;
    let families: Vec<bool> = network
        .subnets()
        .iter()
        .map(|s| s.subnet.is_ipv4())
        .collect();
    let parent = host_side::check_parent(&settings.options, &families)?;
    complete_options(&mut network, &settings, parent);
    Ok(network)
}

/// The defaults written down, so `podman network inspect` shows what the network does and a
/// later change of the node's default route does not move it to another interface.
fn complete_options(network: &mut Network, settings: &Settings, parent: String) {
    let options = network.options.get_or_insert_with(Default::default);
    options.entry("parent".into()).or_insert(parent);
    options
        .entry("mode".into())
        .or_insert_with(|| settings.options.mode.to_string());
    options
        .entry("host_access".into())
        .or_insert_with(|| settings.options.host_access.as_str().to_owned());
}
