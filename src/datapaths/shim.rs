//! The shim: one bridge-mode macvlan per master in the node's namespace, shared by every pod on
//! that master. A bridge-mode macvlan may talk to its sibling macvlans, which the master itself
//! may not; so the node reaches its pods through the shim.
//!
//! The shim has no address from the LAN (routes to pods carry the node's own address as
//! source), never answers ARP and takes no router advertisement, so the LAN never sees it as a
//! second owner of the node's addresses (no ARP flux).

use ipnetwork::IpNetwork;

use crate::protocol::{CniError, CniResult, Context, NetConf};
use crate::system::netlink::{Link, MacvlanMode, MacvlanSpec};
use crate::system::{names, sysctl, Mac};

use super::node::Node;

pub fn name_for(conf: &NetConf, master: &Link) -> String {
    conf.shim_name
        .clone()
        .unwrap_or_else(|| names::derived_ifname("mvh-", &master.name))
}

/// Derived from the master's MAC and the shim's name: stable when the shim is re-created (the
/// pods' neighbour entries point at it), different on every node of the LAN.
pub fn mac_for(master: &Link, name: &str) -> Mac {
    let mut seed = b"macvlan-host shim ".to_vec();
    seed.extend(master.mac.map(|m| m.0).unwrap_or_default());
    seed.extend(name.as_bytes());
    Mac::stable_local(&seed)
}

/// The sysctls of the shim, set before it comes up. Only the shim's own keys: the node's
/// `all`/`default` are never touched.
pub fn sysctls(name: &str) -> Vec<(String, String)> {
    [
        // Never answer ARP: the node's addresses are answered for by the master alone.
        ("ipv4", "arp_ignore", "8"),
        ("ipv4", "arp_filter", "1"),
        ("ipv4", "arp_announce", "2"),
        // No SLAAC address or default route from the LAN's routers on the shim.
        ("ipv6", "accept_ra", "0"),
        ("ipv6", "autoconf", "0"),
        // No link-local address: the shim sends nothing of its own on the LAN.
        ("ipv6", "addr_gen_mode", "1"),
    ]
    .into_iter()
    .map(|(family, key, value)| (format!("net/{family}/conf/{name}/{key}"), value.to_owned()))
    .collect()
}

/// Creates the shim, or checks and reuses the existing one. Returns its index.
pub fn ensure(
    node: &Node,
    name: &str,
    master: &Link,
    mac: Mac,
    addresses: &[IpNetwork],
) -> CniResult<u32> {
    let (index, up) = match node
        .netlink
        .link_by_name(name)
        .context("looking up the shim")?
    {
        Some(link) => {
            verify_identity(&link, master, mac)?;
            (link.index, link.up)
        }
        None => (create(node, name, master, mac)?, false),
    };
    for address in addresses {
        node.netlink
            .add_address(index, *address, true)
            .with_context(|| format!("adding shimAddresses {address} to shim {name}"))?;
    }
    if !up {
        node.netlink
            .set_link_up(index)
            .with_context(|| format!("bringing shim {name} up"))?;
    }
    Ok(index)
}

fn create(node: &Node, name: &str, master: &Link, mac: Mac) -> CniResult<u32> {
    node.netlink
        .create_macvlan(&MacvlanSpec {
            name: name.to_owned(),
            master_index: master.index,
            mode: MacvlanMode::Bridge,
            mtu: None,
            mac: Some(mac),
            netns_fd: None,
            group: None,
        })
        .with_context(|| {
            format!(
                "creating shim {name} (macvlan bridge) on master {}",
                master.name
            )
        })?;
    let link = node
        .netlink
        .link_by_name(name)
        .context("looking up the new shim")?
        .ok_or_else(|| {
            CniError::internal(format!("shim {name} vanished right after its creation"))
        })?;
    sysctl::write(&sysctls(name)).with_context(|| format!("configuring shim {name}"))?;
    log::info!(
        "created shim {name} on master {} with MAC {mac}",
        master.name
    );
    Ok(link.index)
}

/// An interface with the shim's name must be our shim: a macvlan in bridge mode on this master
/// with the derived MAC. Anything else is a name collision that must not be taken over.
fn verify_identity(link: &Link, master: &Link, mac: Mac) -> CniResult<()> {
    let problem = if link.kind.as_deref() != Some("macvlan") {
        Some(format!(
            "is a {} interface, not a macvlan",
            link.kind.as_deref().unwrap_or("physical")
        ))
    } else if link.parent_index != Some(master.index) || link.link_netnsid.is_some() {
        Some(format!("is not on master {}", master.name))
    } else if link.macvlan_mode != Some(MacvlanMode::Bridge) {
        Some(format!("is in {:?} mode, not bridge", link.macvlan_mode))
    } else if link.mac != Some(mac) {
        Some(format!(
            "has MAC {} instead of {mac} (changed by hand or by a network manager?)",
            link.mac.map(|m| m.to_string()).unwrap_or_default()
        ))
    } else {
        None
    };
    match problem {
        Some(p) => Err(CniError::config(format!(
            "shim {}: the interface {p}; set \"shimName\" to another name or remove it",
            link.name
        ))),
        None => Ok(()),
    }
}

/// CHECK: the shim exists, is up, is our macvlan on the master. Returns its index.
pub fn verify(node: &Node, name: &str, master: &Link, mac: Mac) -> CniResult<u32> {
    let link = node
        .netlink
        .link_by_name(name)
        .context("looking up the shim")?
        .ok_or_else(|| CniError::internal(format!("shim {name} does not exist on the node")))?;
    verify_identity(&link, master, mac).map_err(|e| CniError::internal(e.msg))?;
    if !link.up {
        return Err(CniError::internal(format!("shim {name} is down")));
    }
    Ok(link.index)
}
