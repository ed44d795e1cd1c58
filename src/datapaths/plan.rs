//! The plan of one attachment's host access, computed once and handed down: key, host-side
//! names and MACs, the pod's and the node's addresses, route sources. Computed from the
//! configuration's values at ADD (`plan`), and from the record alone when an attachment is
//! made true again later (`replan`).

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::host_path::{self, PodLink};
use super::node::{same_family, usable_addresses_of, Node};
use super::shim;
use crate::protocol::{CniError, CniResult, Context, HostAccess};
use crate::system::netlink::{Address, Link, MacvlanMode};
use crate::system::state::{AttachmentKey, Record};
use crate::system::Mac;

/// The values of the configuration that host access needs: the datapaths never see the
/// whole configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub host_access: HostAccess,
    pub shim_name: Option<String>,
    pub shim_addresses: Vec<IpNetwork>,
    pub veth_name: Option<String>,
    pub host_routes: Vec<IpNetwork>,
}

/// The pod's interface as the mode that made it knows it.
#[derive(Clone, Debug)]
pub struct PodInterface {
    pub ifname: String,
    pub index: u32,
    pub mac: Mac,
    pub mtu: u32,
    pub macvlan_mode: Option<MacvlanMode>,
    pub addresses: Vec<IpNetwork>,
    /// The interface's link group when this plugin made it (interface mode): a veth's pod end
    /// joins it, so DEL removes both with one request.
    pub link_group: Option<u32>,
}

pub struct Plan {
    /// What will be recorded, and what ensure makes true.
    pub record: Record,
    /// The source of node -> pod routes, one per family the pod uses.
    pub sources: Vec<IpAddr>,
    /// The pod's interface when known (ADD); looked up by name otherwise.
    pub pod_link: Option<PodLink>,
    /// Node addresses an earlier run gave the pod entries for, which are no longer the node's.
    pub stale_node_addresses: Vec<IpAddr>,
}

/// ADD: plans host access for the pod's interface. One lookup per pod address, the master's
/// addresses.
pub fn plan(
    node: &Node,
    settings: &Settings,
    key: &AttachmentKey,
    master: &Link,
    netns_path: &str,
    pod_if: &PodInterface,
) -> CniResult<Plan> {
    // The addresses were refused already when they cannot be a pod's (the node's own among
    // them: `pod_addresses`, before anything was made).
    let node_addresses = node.addresses_of(master)?;
    let side = host_path::plan_side(settings, key, master, pod_if)?;
    let (sources, node_ips) = addresses(
        &node_addresses,
        master,
        &side.own_addresses,
        &pod_if.addresses,
    )?;
    let record = Record {
        key: key.clone(),
        host_side: side.side,
        master: master.name.clone(),
        master_index: master.index,
        netns: netns_path.to_owned(),
        pod_mac: side.pod_mac,
        pod_addresses: pod_if.addresses.clone(),
        node_addresses: node_ips,
        host_mac: side.host_mac,
        host_routes: settings.host_routes.clone(),
        shim_addresses: side.own_addresses,
        link_group: pod_if.link_group,
    };
    Ok(Plan {
        record,
        sources,
        pod_link: Some(PodLink {
            index: pod_if.index,
            mtu: pod_if.mtu,
        }),
        stale_node_addresses: Vec::new(),
    })
}

/// Reconcile and verify: the plan of a recorded attachment, with the node as it is now (its
/// master may have a new index, its addresses may have changed).
pub fn replan(node: &Node, record: &Record) -> CniResult<(Plan, Link)> {
    let master = node
        .netlink
        .link_by_name(&record.master)
        .with_context(|| format!("looking up master {}", record.master))?
        .ok_or_else(|| {
            CniError::internal(format!(
                "master {} does not exist in the node's network namespace",
                record.master
            ))
        })?;
    let node_addresses = node.addresses_of(&master)?;
    let (sources, node_ips) = addresses(
        &node_addresses,
        &master,
        &record.shim_addresses,
        &record.pod_addresses,
    )?;
    let stale = record
        .node_addresses
        .iter()
        .copied()
        .filter(|ip| !node_ips.contains(ip))
        .collect();
    let mut updated = record.clone();
    updated.master_index = master.index;
    updated.node_addresses = node_ips;
    // The shim's MAC follows the master's current MAC (a bridge that gained a port, a bond
    // that failed over): one value for every attachment on the shim, never the one a record
    // was written with, so two attachments never fight over it.
    if let Some(name) = record.host_side.shared_shim() {
        updated.host_mac = shim::mac_for(&master, name);
    }
    let plan = Plan {
        record: updated,
        sources,
        pod_link: None,
        stale_node_addresses: stale,
    };
    Ok((plan, master))
}

/// Per family of the pod: the route source (the host device's own address when configured,
/// else the node's current address on the master), and the node addresses the pod reaches
/// through the host side, each once.
fn addresses(
    node_addresses: &[Address],
    master: &Link,
    own: &[IpNetwork],
    pod: &[IpNetwork],
) -> CniResult<(Vec<IpAddr>, Vec<IpAddr>)> {
    let on_master = usable_addresses_of(node_addresses, master);
    let mut sources = Vec::new();
    for family_v4 in [true, false] {
        if !pod.iter().any(|a| a.is_ipv4() == family_v4) {
            continue;
        }
        let pick = |list: &[IpNetwork]| {
            list.iter()
                .find(|a| a.is_ipv4() == family_v4)
                .map(|a| a.ip())
        };
        let source = pick(own).or_else(|| pick(&on_master)).ok_or_else(|| {
            let family = if family_v4 { "IPv4" } else { "IPv6" };
            CniError::config(format!(
                "the pod has an {family} address but master {} has no {family} address to reach it from: \
                 give {} an {family} address, or set \"shimAddresses\" to an {family} address reserved for the shim",
                master.name, master.name
            ))
        })?;
        sources.push(source);
    }
    let mut node_ips: Vec<IpAddr> = Vec::new();
    for ip in own.iter().chain(&on_master).map(|a| a.ip()) {
        let pod_family = pod.iter().any(|p| same_family(p.ip(), ip));
        if pod_family && !node_ips.contains(&ip) {
            node_ips.push(ip);
        }
    }
    Ok((sources, node_ips))
}
