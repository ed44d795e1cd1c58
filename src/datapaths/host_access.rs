//! Host access, whichever datapath carries it: the steps that the shim and the veth share.
//!
//! Node -> pod: a /32 (/128) route to each pod address through the host device, with the
//! node's own address as source, and a permanent neighbour entry (pod address -> pod MAC).
//! Pod -> node: in the pod, a permanent neighbour entry for each node address pointing at the
//! host device's MAC, and routes through the node for `hostRoutes`.
//! With permanent entries on both sides, the node and its pods never ARP for each other.
//!
//! Every change to shared host state happens under the node lock; the record is written
//! before anything is created, so a crash at any point leaves something DEL and GC can undo.

use std::net::IpAddr;
use std::os::fd::AsFd;

use ipnetwork::IpNetwork;

use super::node::{refuse_node_local, same_family, usable_addresses_of, Node};
use super::{shim, veth};
use crate::protocol::{CniError, CniResult, Context, HostAccess, NetConf};
use crate::system::lock::NodeLock;
use crate::system::netlink::{Link, MacvlanMode, Netlink, Route};
use crate::system::netns::Netns;
use crate::system::state::{AttachmentKey, HostSide, Record, StateStore};
use crate::system::Mac;

/// The pod's interface, as host access needs it.
pub struct PodEnd<'a> {
    pub netns: &'a Netns,
    pub netns_path: &'a str,
    pub netlink: &'a Netlink,
    pub ifname: &'a str,
    /// The interface's index inside the pod.
    pub index: u32,
    pub mac: Mac,
    pub macvlan_mode: Option<MacvlanMode>,
    pub addresses: &'a [IpNetwork],
    /// The link group of the pod's interface when this plugin made it (interface mode): a
    /// veth's pod end joins it, so DEL removes both with one request.
    pub link_group: Option<u32>,
}

/// What `attach` decided before touching anything.
struct Plan {
    record: Record,
    /// The source of node -> pod routes, one per family the pod uses.
    sources: Vec<IpAddr>,
}

/// Sets up host access for one pod. On failure everything it made is removed again.
pub fn attach(
    node: &Node,
    store: &StateStore,
    conf: &NetConf,
    key: &AttachmentKey,
    master: &Link,
    pod: &PodEnd,
) -> CniResult<Record> {
    let plan = plan(node, conf, key, master, pod)?;
    let _lock = NodeLock::acquire(store.dir()).context("taking the node lock")?;
    store
        .save(&plan.record)
        .context("saving the attachment record")?;
    if let HostSide::Shim { name } = &plan.record.host_side {
        store
            .add_user(name, key)
            .context("registering the shim's user")?;
    }
    if let Err(err) = apply(node, store, conf, master, &plan, pod) {
        let (mut cleanup_errors, veth) = detach_locked(node, store, &plan.record);
        cleanup_errors.extend(delete_link(node, veth));
        for cleanup in cleanup_errors {
            log::warn!("rolling back host access of {}: {cleanup}", key.file_stem());
        }
        return Err(err);
    }
    Ok(plan.record)
}

fn plan(
    node: &Node,
    conf: &NetConf,
    key: &AttachmentKey,
    master: &Link,
    pod: &PodEnd,
) -> CniResult<Plan> {
    let node_addresses = node.addresses()?;
    refuse_node_local(&node_addresses, pod.addresses)?;
    let on_master = usable_addresses_of(&node_addresses, master);

    let (host_side, host_mac, pod_mac, extra_sources) = match conf.host_access {
        HostAccess::Shim => {
            if let Some(mode) = pod.macvlan_mode.filter(|m| *m != MacvlanMode::Bridge) {
                return Err(CniError::config(format!(
                    "the pod's macvlan {} is in {} mode: the shim reaches pods only in bridge mode; use \"hostAccess\": \"veth\" for other modes",
                    pod.ifname,
                    mode_name(mode)
                )));
            }
            let name = shim::name_for(conf, master);
            let mac = shim::mac_for(master, &name);
            (
                HostSide::Shim { name },
                mac,
                pod.mac,
                conf.shim_addresses.clone(),
            )
        }
        HostAccess::Veth => {
            let (host_mac, pod_mac) = veth::macs_for(key);
            let side = HostSide::Veth {
                name: veth::host_end_name(key),
                pod_end: veth::pod_end_name(conf, pod.ifname),
            };
            (side, host_mac, pod_mac, Vec::new())
        }
        HostAccess::None => {
            return Err(CniError::internal(
                "host access planned with hostAccess none",
            ))
        }
    };

    // Per family: the shim's own address when configured, else the node's on the master.
    let mut sources = Vec::new();
    for family_v4 in [true, false] {
        if !pod.addresses.iter().any(|a| a.is_ipv4() == family_v4) {
            continue;
        }
        let pick = |list: &[IpNetwork]| {
            list.iter()
                .find(|a| a.is_ipv4() == family_v4)
                .map(|a| a.ip())
        };
        let source = pick(&extra_sources).or_else(|| pick(&on_master)).ok_or_else(|| {
            let family = if family_v4 { "IPv4" } else { "IPv6" };
            CniError::config(format!(
                "the pod has an {family} address but master {} has no {family} address to reach it from: \
                 give {} an {family} address, or set \"shimAddresses\" to an {family} address reserved for the shim",
                master.name, master.name
            ))
        })?;
        sources.push(source);
    }
    // The node addresses the pod reaches through the host side: of the pod's families, once.
    let mut node_ips: Vec<IpAddr> = Vec::new();
    for ip in extra_sources.iter().chain(&on_master).map(|a| a.ip()) {
        let pod_family = pod.addresses.iter().any(|p| same_family(p.ip(), ip));
        if pod_family && !node_ips.contains(&ip) {
            node_ips.push(ip);
        }
    }

    let record = Record {
        key: key.clone(),
        host_side,
        master: master.name.clone(),
        master_index: master.index,
        netns: pod.netns_path.to_owned(),
        pod_mac: pod_mac.to_string(),
        pod_addresses: pod.addresses.to_vec(),
        node_addresses: node_ips,
        host_mac: host_mac.to_string(),
        host_routes: conf.host_routes.clone(),
    };
    Ok(Plan { record, sources })
}

fn mode_name(mode: MacvlanMode) -> &'static str {
    match mode {
        MacvlanMode::Private => "private",
        MacvlanMode::Vepa => "vepa",
        MacvlanMode::Bridge => "bridge",
        MacvlanMode::Passthru => "passthru",
        MacvlanMode::Source => "source",
    }
}

fn parse_mac(text: &str) -> CniResult<Mac> {
    text.parse::<Mac>().map_err(CniError::internal)
}

fn apply(
    node: &Node,
    store: &StateStore,
    conf: &NetConf,
    master: &Link,
    plan: &Plan,
    pod: &PodEnd,
) -> CniResult<()> {
    let record = &plan.record;
    let host_mac = parse_mac(&record.host_mac)?;
    let pod_mac = parse_mac(&record.pod_mac)?;
    let (host_index, pod_device, pod_device_name) = match &record.host_side {
        HostSide::Shim { name } => {
            let index = shim::ensure(node, name, master, host_mac, &conf.shim_addresses)?;
            (index, pod.index, pod.ifname.to_owned())
        }
        HostSide::Veth { name, pod_end } => {
            let (host, pod_index) = veth::create(
                node,
                pod.netlink,
                pod.netns.as_fd(),
                name,
                host_mac,
                pod_end,
                pod_mac,
                pod.link_group,
            )?;
            (host, pod_index, pod_end.clone())
        }
    };

    // Node side.
    for address in &record.pod_addresses {
        let ip = address.ip();
        let source = plan.sources.iter().copied().find(|s| same_family(*s, ip));
        node.netlink
            .add_route(&host_route(ip, host_index, source), true)
            .with_context(|| format!("adding the node's route to pod address {ip}"))?;
        node.netlink
            .set_permanent_neighbour(host_index, ip, pod_mac)
            .with_context(|| format!("adding the node's neighbour entry {ip} -> {pod_mac}"))?;
        store
            .set_owner(ip, &record.key)
            .context("recording the route's owner")?;
    }

    // Pod side.
    let is_veth = matches!(record.host_side, HostSide::Veth { .. });
    for ip in &record.node_addresses {
        // Through a veth every node address needs a route; through the shim only those outside
        // the pod's own prefixes (the others are on-link already).
        let on_link = record.pod_addresses.iter().any(|p| p.contains(*ip));
        if is_veth || !on_link {
            pod.netlink
                .add_route(&host_route(*ip, pod_device, None), true)
                .with_context(|| {
                    format!("adding the pod's route to node address {ip} via {pod_device_name}")
                })?;
        }
        pod.netlink
            .set_permanent_neighbour(pod_device, *ip, host_mac)
            .with_context(|| {
                format!("adding the pod's neighbour entry {ip} -> {host_mac} on {pod_device_name}")
            })?;
    }
    for cidr in &record.host_routes {
        let via = record
            .node_addresses
            .iter()
            .copied()
            .find(|ip| same_family(*ip, cidr.ip()))
            .ok_or_else(|| CniError::config(format!("hostRoutes {cidr}: the node has no address of that family on the master to route through")))?;
        let route = Route {
            destination: Some(*cidr),
            gateway: Some(via),
            output_index: Some(pod_device),
            onlink: true,
            ..Route::default()
        };
        pod.netlink
            .add_route(&route, true)
            .with_context(|| format!("adding the pod's hostRoutes entry {cidr} via {via}"))?;
    }
    Ok(())
}

/// A route to one address through `device` (`ip route replace ADDR/32 dev DEVICE src SRC`).
fn host_route(ip: IpAddr, device: u32, source: Option<IpAddr>) -> Route {
    Route {
        destination: Some(IpNetwork::from(ip)),
        output_index: Some(device),
        source,
        scope_link: true,
        ..Route::default()
    }
}

/// Removes what `attach` made for `record`. Goes on past errors and returns them all: one
/// missing route must never keep the rest from being cleaned.
pub fn detach(node: &Node, store: &StateStore, record: &Record) -> Vec<CniError> {
    let (mut errors, veth) = detach_deferring_veth(node, store, record);
    errors.extend(delete_link(node, veth));
    errors
}

/// `detach`, but a veth's node end is returned instead of deleted: after the lock (deleting a
/// link waits for an RCU grace period, 15 ms and more, and a pod's own veth is no shared
/// state), and after the pod's links, with which it may go in one request (`del`).
pub fn detach_deferring_veth(
    node: &Node,
    store: &StateStore,
    record: &Record,
) -> (Vec<CniError>, Option<Link>) {
    match NodeLock::acquire(store.dir()) {
        Ok(_lock) => detach_locked(node, store, record),
        Err(e) => (
            vec![CniError::from(e).context("taking the node lock")],
            None,
        ),
    }
}

/// Deletes a link of the node; one that is gone already is no error.
pub fn delete_link(node: &Node, link: Option<Link>) -> Option<CniError> {
    let link = link?;
    match node.netlink.delete_link(link.index) {
        Ok(true) => {
            log::info!("removed {}", link.name);
            None
        }
        Ok(false) => None,
        Err(e) => Some(CniError::from(e).context(format!("removing {}", link.name))),
    }
}

/// Does the locked part of `detach`; returns the errors and the veth to delete once the lock
/// is released (the shim, shared, is removed here under the lock).
fn detach_locked(
    node: &Node,
    store: &StateStore,
    record: &Record,
) -> (Vec<CniError>, Option<Link>) {
    let mut errors = Vec::new();
    let key = &record.key;
    let host_name = match &record.host_side {
        HostSide::Shim { name } | HostSide::Veth { name, .. } => name,
    };
    let host_link = match node.netlink.link_by_name(host_name) {
        Ok(link) => link,
        Err(e) => {
            errors.push(CniError::from(e).context(format!("looking up {host_name}")));
            None
        }
    };
    for address in &record.pod_addresses {
        let ip = address.ip();
        match store.is_owner(ip, key) {
            // A newer attachment has this address now: its route is not ours to remove.
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                errors.push(e.into());
                continue;
            }
        }
        if let Some(link) = &host_link {
            if let Err(e) = node.netlink.delete_route(&host_route(ip, link.index, None)) {
                errors.push(CniError::from(e).context(format!("removing the route to {ip}")));
            }
            if let Err(e) = node.netlink.delete_neighbour(link.index, ip) {
                errors.push(
                    CniError::from(e).context(format!("removing the neighbour entry of {ip}")),
                );
            }
        }
        if let Err(e) = store.clear_owner(ip) {
            errors.push(e.into());
        }
    }
    let veth = match &record.host_side {
        HostSide::Shim { name } => {
            let unused = match store.remove_user(name, key) {
                Ok(true) => {
                    if let Err(e) = store.forget_shim(name) {
                        errors.push(e.into());
                    }
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    errors.push(e.into());
                    false
                }
            };
            let shim = host_link.filter(|link| unused && !still_routed(node, link));
            errors.extend(delete_link(node, shim));
            None
        }
        HostSide::Veth { .. } => host_link,
    };
    if let Err(e) = store.remove(key) {
        errors.push(e.into());
    }
    (errors, veth)
}

/// True when routes other than ours still go through the shim: pods of a network configured
/// with another `stateDir` (and so another set of records) share it. Asked only when the last
/// user known here leaves, so the route dump is not on the path of every DEL.
fn still_routed(node: &Node, shim: &Link) -> bool {
    match node.netlink.routes() {
        Ok(routes) => {
            // Pod routes are host routes; a prefix route of a `shimAddresses` entry is not a pod.
            let in_use = routes.iter().any(|r| {
                r.output_index == Some(shim.index)
                    && r.destination
                        .is_some_and(|d| d.prefix() == if d.is_ipv4() { 32 } else { 128 })
            });
            if in_use {
                log::warn!(
                    "shim {} is still routed to by pods this stateDir does not know; keeping it",
                    shim.name
                );
            }
            in_use
        }
        Err(e) => {
            log::warn!(
                "reading the node's routes before removing shim {}: {e}; keeping it",
                shim.name
            );
            true
        }
    }
}

/// CHECK: every piece `attach` made is still there. The error names the missing piece.
pub fn check(node: &Node, record: &Record, pod_netlink: Option<&Netlink>) -> CniResult<()> {
    let host_mac = parse_mac(&record.host_mac)?;
    let pod_mac = parse_mac(&record.pod_mac)?;
    let master = node
        .netlink
        .link_by_name(&record.master)
        .context("looking up the master")?
        .ok_or_else(|| CniError::internal(format!("master {} does not exist", record.master)))?;
    let (host_index, pod_device_name) = match &record.host_side {
        HostSide::Shim { name } => (shim::verify(node, name, &master, host_mac)?, None),
        HostSide::Veth { name, pod_end } => (
            veth::verify_host_end(node, name, host_mac)?,
            Some(pod_end.clone()),
        ),
    };
    let routes = node.netlink.routes().context("reading the node's routes")?;
    let neighbours = node
        .netlink
        .neighbours(host_index)
        .context("reading the node's neighbour entries")?;
    for address in &record.pod_addresses {
        let ip = address.ip();
        let dst = IpNetwork::from(ip);
        if !routes
            .iter()
            .any(|r| r.destination == Some(dst) && r.output_index == Some(host_index))
        {
            return Err(CniError::internal(format!(
                "the node's route to pod address {ip} is missing"
            )));
        }
        if !neighbours
            .iter()
            .any(|n| n.address == ip && n.permanent && n.mac == Some(pod_mac))
        {
            return Err(CniError::internal(format!(
                "the node's permanent neighbour entry {ip} -> {pod_mac} is missing"
            )));
        }
    }
    let Some(pod_netlink) = pod_netlink else {
        return Ok(());
    };
    let pod_if = match &pod_device_name {
        Some(name) => veth::verify_pod_end(pod_netlink, name)?,
        None => {
            pod_netlink
                .link_by_name(&record.key.ifname)
                .context("looking up the pod's interface")?
                .ok_or_else(|| {
                    CniError::internal(format!(
                        "interface {} does not exist in the pod",
                        record.key.ifname
                    ))
                })?
                .index
        }
    };
    let pod_neighbours = pod_netlink
        .neighbours(pod_if)
        .context("reading the pod's neighbour entries")?;
    for ip in &record.node_addresses {
        if !pod_neighbours
            .iter()
            .any(|n| n.address == *ip && n.permanent && n.mac == Some(host_mac))
        {
            return Err(CniError::internal(format!(
                "the pod's permanent neighbour entry for node address {ip} -> {host_mac} is missing"
            )));
        }
    }
    Ok(())
}

/// GC: shims that no attachment uses any more (left by a crash between the last DEL's steps).
pub fn remove_unused_shims(node: &Node, store: &StateStore) -> Vec<CniError> {
    let _lock = match NodeLock::acquire(store.dir()) {
        Ok(lock) => lock,
        Err(e) => return vec![CniError::from(e).context("taking the node lock")],
    };
    let mut errors = Vec::new();
    let shims = match store.known_shims() {
        Ok(shims) => shims,
        Err(e) => return vec![e.into()],
    };
    for name in shims {
        match store.has_no_users(&name) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                errors.push(e.into());
                continue;
            }
        }
        match node.netlink.link_by_name(&name) {
            Ok(Some(link))
                if link.kind.as_deref() == Some("macvlan") && !still_routed(node, &link) =>
            {
                errors.extend(delete_link(node, Some(link)));
            }
            Ok(_) => {}
            Err(e) => errors.push(e.into()),
        }
        if let Err(e) = store.forget_shim(&name) {
            errors.push(e.into());
        }
    }
    errors
}
