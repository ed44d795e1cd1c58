//! One attachment's host access converged, whichever host path carries it: the steps that the
//! shim and the veth share (ensure, verify, release).
//!
//! Node -> pod: a /32 (/128) route to each pod address through the host device, with the
//! node's current address as source, and a permanent neighbour entry (pod address -> pod
//! MAC). Pod -> node: in the pod, a permanent neighbour entry for each node address pointing
//! at the host device's MAC, and routes through the node for `hostRoutes`. With permanent
//! entries on both sides, the node and its pods never ARP for each other.
//!
//! Every change to shared host state happens under the node lock. The record, the route
//! ownerships and the shim's user marker are written before anything is created, so a crash at any
//! point leaves something DEL and GC can undo; `ensure` run again converges from there.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::host_path::{self, Devices, PodDevice, Site, Teardown, Unrecorded};
use super::node::{delete_link, Node};
use super::objects::{Action, Drift, Object, Problem, Repair};
use super::plan::{current_master, replan_on, Plan, PodRoute};
use super::pod::Pod;
use super::routes::{self, host_route, host_route_selector};
use crate::error::{Context, Error, ErrorList, Result};
use crate::system::lock::NodeLock;
use crate::system::netlink::{Link, Netlink, Route};
use crate::system::state::{AttachmentKey, Record, StateStore};

/// Makes every piece of the plan true, from whatever state an earlier run left: idempotent.
/// The caller holds the node lock. Without `pod` only the node's side is made (Docker's
/// Join, before the container's namespace exists); a later call with the pod completes it.
/// Routes and neighbour entries are written with replace semantics (no dump on ADD; a route
/// of an earlier version is rewritten with our protocol); the devices report their own
/// repairs.
pub fn ensure_locked(
    node: &Node,
    store: &StateStore,
    plan: &Plan,
    master: &Link,
    pod: Option<&Pod>,
) -> Result<Vec<Repair>> {
    let record = &plan.record;
    let path = host_path::of(record);
    // Bookkeeping first: whatever exists after a crash is known to DEL and GC.
    store.save(record).context("saving the attachment record")?;
    for address in &record.pod_addresses {
        store
            .set_owner(address.ip(), &record.key)
            .context("recording the route's owner")?;
    }
    let mut repairs = Vec::new();
    let site = site_of(plan, node, store, master, pod);
    let devices = path.ensure(&site, &mut repairs)?;
    ensure_node_side(node, plan, devices.host)?;
    if let (Some(pod), Some(pod_device)) = (pod, &devices.pod) {
        let mut stale =
            forget_node_addresses(&pod.netlink, pod_device, &plan.stale_node_addresses)?;
        repairs.append(&mut stale);
        ensure_pod_side(&pod.netlink, plan, pod_device, |on_link| {
            path.routes_node_address(on_link)
        })?;
    }
    Ok(repairs)
}

fn ensure_node_side(node: &Node, plan: &Plan, host: u32) -> Result<()> {
    for route in plan.node_routes() {
        let ip = route.ip;
        node.netlink
            .add_route(&host_route(ip, host, route.source), true)
            .with_context(|| format!("adding the node's route to pod address {ip}"))?;
    }
    for (ip, mac) in plan.node_neighbours() {
        node.netlink
            .set_permanent_neighbour(host, ip, mac)
            .with_context(|| format!("adding the node's neighbour entry {ip} -> {mac}"))?;
    }
    Ok(())
}

/// The pod's entries for node addresses that are no longer the node's (renumbered node).
fn forget_node_addresses(
    pod: &Netlink,
    device: &PodDevice,
    stale: &[IpAddr],
) -> Result<Vec<Repair>> {
    let mut repairs = Vec::new();
    for ip in stale {
        let neighbour = pod
            .delete_neighbour(device.index, *ip)
            .with_context(|| format!("removing the pod's neighbour entry for {ip}"))?;
        let route = pod
            .delete_route(&host_route_selector(*ip, device.index))
            .with_context(|| format!("removing the pod's route to {ip}"))?;
        if neighbour || route {
            repairs.push(Repair::new(Object::FormerNodeAddress(*ip), Action::Removed));
        }
    }
    Ok(repairs)
}

fn ensure_pod_side(
    pod: &Netlink,
    plan: &Plan,
    device: &PodDevice,
    needs_route: impl Fn(bool) -> bool,
) -> Result<()> {
    let (index, name) = (device.index, &device.name);
    for route in plan.pod_routes_to_node(needs_route) {
        let ip = route.destination.ip();
        pod.add_route(&pod_route(&route, index), true)
            .with_context(|| format!("adding the pod's route to node address {ip} via {name}"))?;
    }
    for (ip, mac) in plan.pod_neighbours() {
        pod.set_permanent_neighbour(index, ip, mac)
            .with_context(|| format!("adding the pod's neighbour entry {ip} -> {mac} on {name}"))?;
    }
    for route in plan.host_routes()? {
        let (cidr, via) = (
            route.destination,
            route.via.unwrap_or(route.destination.ip()),
        );
        pod.add_route(&pod_route(&route, index), true)
            .with_context(|| format!("adding the pod's hostRoutes entry {cidr} via {via}"))?;
    }
    Ok(())
}

/// A route of the plan in the pod, on the pod's device of the path, marked ours: a host
/// route to a node address, or a `hostRoutes` entry through the node (on-link: the node's
/// address need not be in a prefix of the pod).
fn pod_route(route: &PodRoute, device: u32) -> Route {
    match route.via {
        None => host_route(route.destination.ip(), device, None),
        Some(via) => Route {
            destination: Some(route.destination),
            gateway: Some(via),
            output_index: Some(device),
            onlink: true,
            protocol: routes::PROTOCOL,
            ..Route::default()
        },
    }
}

/// CHECK and diagnose: everything ensure would make true, compared with what is there. Empty
/// when nothing drifted. `pod` None checks the node's side only.
pub fn verify(
    node: &Node,
    store: &StateStore,
    record: &Record,
    pod: Option<&Pod>,
) -> Result<Vec<Drift>> {
    // The master is looked up once: it is the first thing verify needs, and the plan's.
    let Some(master) = current_master(node, record)? else {
        return Ok(vec![Drift::new(
            Object::Master(record.master.clone()),
            Problem::Missing,
        )]);
    };
    let (plan, master) = replan_on(node, record, master)?;
    verify_planned(node, store, &plan, &master, pod)
}

/// `verify` against a plan made for the node as it is now.
pub fn verify_planned(
    node: &Node,
    store: &StateStore,
    plan: &Plan,
    master: &Link,
    pod: Option<&Pod>,
) -> Result<Vec<Drift>> {
    let record = &plan.record;
    let path = host_path::of(record);
    let mut drift = Vec::new();
    let site = site_of(plan, node, store, master, pod);
    let Some(devices) = path.verify(&site, &mut drift)? else {
        return Ok(drift);
    };
    verify_node_side(node, plan, &devices, &mut drift)?;
    if let (Some(pod), Some(device)) = (pod, &devices.pod) {
        verify_pod_side(&pod.netlink, plan, device, &mut drift, |on_link| {
            path.routes_node_address(on_link)
        })?;
    }
    Ok(drift)
}

fn verify_node_side(
    node: &Node,
    plan: &Plan,
    devices: &Devices,
    drift: &mut Vec<Drift>,
) -> Result<()> {
    // One lookup per pod address (the route the node uses, its neighbour entry on the host
    // device), never a dump of tables that grow with the number of pods.
    for wanted in plan.node_routes() {
        let ip = wanted.ip;
        let dst = IpNetwork::from(ip);
        let found = node
            .netlink
            .route_to(ip)
            .with_context(|| format!("looking up the node's route to pod address {ip}"))?
            .filter(|r| r.destination == Some(dst) && r.output_index == Some(devices.host));
        if let Some(problem) = route_problem(found.as_ref(), wanted.source) {
            drift.push(Drift::new(Object::NodeRoute(ip), problem));
        }
    }
    for (ip, mac) in plan.node_neighbours() {
        let neighbour = node
            .netlink
            .neighbour(devices.host, ip)
            .with_context(|| format!("looking up the node's neighbour entry for {ip}"))?;
        if !neighbour.is_some_and(|n| n.permanent && n.mac == Some(mac)) {
            drift.push(Drift::new(
                Object::NodeNeighbour { ip, mac },
                Problem::Missing,
            ));
        }
    }
    Ok(())
}

/// What is wrong with the route found for a wanted one (None: nothing): missing, another
/// source than the node's current address, or not marked ours (an earlier version's).
pub fn route_problem(found: Option<&Route>, wanted_source: Option<IpAddr>) -> Option<Problem> {
    let route = match found {
        None => return Some(Problem::Missing),
        Some(route) => route,
    };
    match wanted_source {
        Some(wanted) if route.source != Some(wanted) => Some(Problem::Source {
            actual: route.source,
            wanted,
        }),
        _ if route.protocol != routes::PROTOCOL => Some(Problem::Unmarked {
            protocol: route.protocol,
        }),
        _ => None,
    }
}

fn verify_pod_side(
    pod: &Netlink,
    plan: &Plan,
    device: &PodDevice,
    drift: &mut Vec<Drift>,
    needs_route: impl Fn(bool) -> bool,
) -> Result<()> {
    let neighbours = pod
        .neighbours(device.index)
        .context("reading the pod's neighbour entries")?;
    let routes = pod.routes().context("reading the pod's routes")?;
    for (ip, mac) in plan.pod_neighbours() {
        if !neighbours
            .iter()
            .any(|n| n.address == ip && n.permanent && n.mac == Some(mac))
        {
            drift.push(Drift::new(
                Object::PodNeighbour { ip, mac },
                Problem::Missing,
            ));
        }
    }
    let mut wanted = plan.pod_routes_to_node(needs_route);
    // A `hostRoutes` entry without a node address of its family is ensure's error; here it
    // is one route less to look for.
    wanted.extend(plan.host_routes().unwrap_or_default());
    for route in wanted {
        let dst = route.destination;
        let found = routes
            .iter()
            .find(|r| r.destination == Some(dst) && r.output_index == Some(device.index));
        if let Some(problem) = route_problem(found, None) {
            drift.push(Drift::new(Object::PodRoute(dst), problem));
        }
    }
    for ip in &plan.stale_node_addresses {
        if neighbours.iter().any(|n| n.address == *ip && n.permanent) {
            drift.push(Drift::new(Object::FormerNodeAddress(*ip), Problem::Stale));
        }
    }
    Ok(())
}

/// What `release` leaves for after the node lock: the errors so far and a link to delete.
pub struct Released {
    pub errors: ErrorList,
    deferred: Option<Link>,
}

impl Released {
    /// Nothing was made, nothing to release.
    pub fn nothing() -> Released {
        Released {
            errors: ErrorList::new(),
            deferred: None,
        }
    }

    pub fn failed(error: Error) -> Released {
        let mut errors = ErrorList::new();
        errors.push(error);
        Released {
            errors,
            deferred: None,
        }
    }

    /// Deletes what was deferred (a veth's node end; gone already when it went with the pod's
    /// link group) and returns every error.
    pub fn finish(mut self, node: &Node) -> ErrorList {
        self.errors.extend(delete_link(node, self.deferred.take()));
        self.errors
    }
}

/// DEL: releases what `attach` made for `record`, under the node lock. Goes on past errors.
pub fn release(node: &Node, store: &StateStore, record: &Record) -> Released {
    match NodeLock::acquire() {
        Ok(_lock) => release_locked(node, store, record),
        Err(e) => Released::failed(Error::from(e).context("taking the node lock")),
    }
}

/// DEL without a record (nothing was set up, or the record was lost): what can be found
/// without it goes: route ownerships of this attachment, and a veth's node end by its derived
/// name.
pub fn release_unrecorded(
    node: &Node,
    store: &StateStore,
    key: &AttachmentKey,
    side: &Unrecorded,
) -> Released {
    let mut errors = ErrorList::new();
    errors.note(store.clear_owners_of(key));
    errors.note(store.remove_record_temporary(key));
    let deferred = errors.note(side.orphan_host_end(node, key)).flatten();
    Released { errors, deferred }
}

pub(super) fn release_locked(node: &Node, store: &StateStore, record: &Record) -> Released {
    let mut errors = ErrorList::new();
    let key = &record.key;
    let path = host_path::of(record);
    let host_name = path.host_name();
    let host_link = errors
        .note(
            node.netlink
                .link_by_name(host_name)
                .with_context(|| format!("looking up {host_name}")),
        )
        .flatten();
    for address in &record.pod_addresses {
        let ip = address.ip();
        match store.is_owner(ip, key) {
            // A newer attachment has this address now: its route is not ours to remove.
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                errors.push(e);
                continue;
            }
        }
        if let Some(link) = &host_link {
            // Whoever wrote it (an earlier version wrote `boot`): the owner file says whose.
            if let Err(e) = node
                .netlink
                .delete_route(&host_route_selector(ip, link.index))
            {
                errors.push(Error::from(e).context(format!("removing the route to {ip}")));
            }
            if let Err(e) = node.netlink.delete_neighbour(link.index, ip) {
                errors
                    .push(Error::from(e).context(format!("removing the neighbour entry of {ip}")));
            }
        }
        errors.note(store.clear_owner(ip));
    }
    let teardown = Teardown { node, store, key };
    let deferred = path.release(&teardown, host_link, &mut errors);
    errors.note(store.remove(key));
    // What a killed ADD of this attachment left half written.
    errors.note(store.remove_temporaries_of(record));
    Released { errors, deferred }
}

/// Where the plan's host path is made or checked: the same for ensure and verify.
fn site_of<'a>(
    plan: &'a Plan,
    node: &'a Node,
    store: &'a StateStore,
    master: &'a Link,
    pod: Option<&'a Pod>,
) -> Site<'a> {
    let record = &plan.record;
    Site {
        node,
        store,
        key: &record.key,
        master,
        pod,
        pod_ifname: record.pod_interface_name(),
        pod_link: plan.pod_link,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(source: Option<&str>, protocol: u8) -> Route {
        Route {
            destination: Some("10.0.0.100/32".parse().unwrap()),
            output_index: Some(10),
            source: source.map(|s| s.parse().unwrap()),
            protocol,
            ..Route::default()
        }
    }

    #[test]
    fn a_route_is_right_with_our_protocol_and_the_nodes_source() {
        let wanted = Some("10.0.0.10".parse().unwrap());
        assert_eq!(
            route_problem(Some(&found(Some("10.0.0.10"), 109)), wanted),
            None
        );
        assert_eq!(route_problem(None, wanted), Some(Problem::Missing));
    }

    #[test]
    fn a_renumbered_source_is_drift_before_an_unmarked_protocol() {
        let wanted = Some("10.0.0.12".parse().unwrap());
        assert!(matches!(
            route_problem(Some(&found(Some("10.0.0.10"), 3)), wanted),
            Some(Problem::Source { .. })
        ));
    }

    #[test]
    fn a_route_of_an_earlier_version_is_to_adopt() {
        let wanted = Some("10.0.0.10".parse().unwrap());
        assert_eq!(
            route_problem(Some(&found(Some("10.0.0.10"), 3)), wanted),
            Some(Problem::Unmarked { protocol: 3 })
        );
        // A pod route (no source wanted) too.
        assert_eq!(
            route_problem(Some(&found(None, 3)), None),
            Some(Problem::Unmarked { protocol: 3 })
        );
    }
}
