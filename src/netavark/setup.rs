//! `setup NETNS` (run by netavark at `podman run`, `start`, `network connect`): the
//! container's macvlan in its namespace with the addresses podman chose, and the node's path
//! to it; answers netavark's status block. A failed setup leaves nothing: netavark never
//! calls teardown after it.

use std::collections::BTreeMap;
use std::path::Path;

use super::attachment::Attachment;
use super::host_side;
use super::network::{self, Settings};
use super::types::{NetAddress, NetInterface, PluginRequest, StatusBlock};
use crate::error::Result;
use crate::system::Mac;

pub fn setup(netns: &Path, request: PluginRequest) -> Result<StatusBlock> {
    network::refuse_rootless()?;
    let settings = Settings::of(&request.network)?;
    let attachment = Attachment::of(&request)?;
    let mac = host_side::connect(netns, &settings, &attachment)?;
    host_side::release_abandoned(&settings.state_dir);
    Ok(status_block(&attachment, mac))
}

fn status_block(attachment: &Attachment, mac: Mac) -> StatusBlock {
    let subnets = attachment
        .addresses
        .iter()
        .map(|(ipnet, gateway)| NetAddress {
            ipnet: *ipnet,
            gateway: *gateway,
        })
        .collect();
    let interface = NetInterface {
        mac_address: mac.to_string(),
        subnets,
    };
    StatusBlock {
        dns_search_domains: Vec::new(),
        dns_server_ips: Vec::new(),
        interfaces: BTreeMap::from([(attachment.key.ifname.clone(), interface)]),
    }
}
