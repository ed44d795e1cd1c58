//! One container on one network, as podman asks for it in `setup` and `teardown`: the
//! attachment's key, the addresses podman's IPAM chose with their subnets' prefix lengths and
//! gateways, the routes the container gets, and the MAC it asked for.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::types::{PluginRequest, Subnet};
use crate::error::{Error, Result};
use crate::system::names::{is_valid_id, validate_ifname};
use crate::system::state::AttachmentKey;
use crate::system::Mac;

pub struct Attachment {
    pub key: AttachmentKey,
    /// Each address with its subnet's prefix length, and that subnet's gateway.
    pub addresses: Vec<(IpNetwork, Option<IpAddr>)>,
    /// Destination and gateway: the default route of each family the container has an
    /// address of (unless the network is `--internal`), then the network's `--route`s.
    pub routes: Vec<(IpNetwork, IpAddr)>,
    pub mac: Option<Mac>,
}

/// The attachment's identity, also all `teardown` needs: network, container, interface.
pub fn key_of(request: &PluginRequest) -> Result<AttachmentKey> {
    let network = &request.network.name;
    let id = &request.container_id;
    let ifname = &request.network_options.interface_name;
    // They name state files: the same character sets as CNI's.
    if !is_valid_id(network, 100) {
        return Err(Error::config(format!(
            "network name {network:?} is invalid: it must be 1 to 100 letters, digits, '_', '.' or '-'"
        )));
    }
    if !is_valid_id(id, 128) {
        return Err(Error::config(format!(
            "container_id {id:?} is invalid: it must be 1 to 128 letters, digits, '_', '.' or '-'"
        )));
    }
    validate_ifname(ifname)
        .map_err(|why| Error::config(format!("interface_name {ifname:?} {why}")))?;
    Ok(AttachmentKey {
        network: network.clone(),
        container_id: id.clone(),
        ifname: ifname.clone(),
    })
}

impl Attachment {
    pub fn of(request: &PluginRequest) -> Result<Attachment> {
        let key = key_of(request)?;
        let network = &request.network;
        let ips = request
            .network_options
            .static_ips
            .as_deref()
            .unwrap_or_default();
        if ips.is_empty() {
            return Err(Error::config(format!(
                "podman assigned no address to {} on network {}: the network needs a --subnet",
                key.ifname, network.name
            )));
        }
        let addresses = ips
            .iter()
            .map(|ip| {
                let subnet = subnet_of(network.subnets(), *ip).ok_or_else(|| {
                    Error::config(format!(
                        "static_ips: {ip} is in no subnet of network {}",
                        network.name
                    ))
                })?;
                let address = IpNetwork::new(*ip, subnet.subnet.prefix())
                    .map_err(|e| Error::config(format!("static_ips: {ip}: {e}")))?;
                Ok((address, subnet.gateway))
            })
            .collect::<Result<Vec<_>>>()?;
        let mac = request
            .network_options
            .static_mac
            .as_deref()
            .filter(|m| !m.is_empty())
            .map(|text| {
                let mac: Mac = text
                    .parse()
                    .map_err(|why| Error::config(format!("static_mac: {why}")))?;
                // A multicast MAC (bit 0 of the first octet) can be no interface's.
                if mac.0[0] & 1 == 1 {
                    return Err(Error::config(format!(
                        "static_mac {text}: is a multicast address, not an interface's"
                    )));
                }
                Ok(mac)
            })
            .transpose()?;
        Ok(Attachment {
            routes: routes(request, &addresses),
            key,
            addresses,
            mac,
        })
    }
}

fn subnet_of(subnets: &[Subnet], ip: IpAddr) -> Option<&Subnet> {
    subnets.iter().find(|s| s.subnet.contains(ip))
}

fn routes(
    request: &PluginRequest,
    addresses: &[(IpNetwork, Option<IpAddr>)],
) -> Vec<(IpNetwork, IpAddr)> {
    let network = &request.network;
    let mut routes = Vec::new();
    if !network.internal {
        for v4 in [true, false] {
            let gateway = addresses
                .iter()
                .filter(|(a, _)| a.is_ipv4() == v4)
                .find_map(|(_, gw)| *gw);
            if let Some(gateway) = gateway {
                let default = if v4 { "0.0.0.0/0" } else { "::/0" };
                routes.push((default.parse().expect("a literal CIDR"), gateway));
            }
        }
    }
    for route in network.routes.iter().flatten() {
        let family_present = addresses
            .iter()
            .any(|(a, _)| a.is_ipv4() == route.destination.is_ipv4());
        if family_present {
            routes.push((route.destination, route.gateway));
        }
    }
    routes
}
