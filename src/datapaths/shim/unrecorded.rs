//! DEL of a shim attachment whose record is gone (an operator wiped `stateDir` while pods
//! lived, or the record was lost). What the record would have said is learned from what DEL
//! still has: prevResult (the pod's addresses and MAC), or the pod's interface while its
//! namespace exists; the shim's name comes from the configuration (`shimName`, or derived
//! from the master: configured, the pod link's parent, or the default route's interface).
//!
//! Without a record, ownership is decided like this, under the node lock:
//! - `owners/<ip>` names another attachment: a newer pod has the address; its route stays.
//! - `owners/<ip>` names this attachment: the route is ours (the record alone was lost).
//! - no owner (the owners were wiped too): the route is removed only when it goes through
//!   our shim and the node's permanent neighbour entry for the address carries this pod's
//!   MAC. A newer pod that got the address has its own MAC there (ADD rewrites the entry),
//!   so its route stays; a route without such an entry is left (nothing proves it ours).
//!
//! The shim goes when this stateDir has no user of it left and no pod route goes through
//! it (`still_routed`: pods of other state directories, and pods whose DEL has not come yet).
//! This path dumps the shim's neighbour entries and, for the last pod, the routes: only a
//! DEL without a record pays for that.

use std::net::IpAddr;

use serde_json::Value;

use super::{default_name, foreign, mac_for, still_routed};
use crate::datapaths::node::{delete_link, Node};
use crate::datapaths::routes::host_route_selector;
use crate::error::{Context, Error, ErrorList, Result};
use crate::protocol::result::CniOutput;
use crate::system::lock::NodeLock;
use crate::system::netlink::{Link, Neighbour, Netlink};
use crate::system::netns::Netns;
use crate::system::state::{AttachmentKey, StateStore};
use crate::system::Mac;

/// What DEL learned of the pod without a record.
#[derive(Clone, Debug)]
pub struct Learned {
    pub addresses: Vec<IpAddr>,
    pub mac: Mac,
    /// The pod link's parent in the node (a macvlan's master), when the pod told it.
    pub parent_index: Option<u32>,
}

/// What DEL without a record learned of a shim attachment: the pod, and the shim it would have
/// used on which master.
#[derive(Clone, Debug)]
pub struct Found {
    pub pod: Learned,
    pub shim_name: String,
    pub master: Link,
}

/// What DEL still has of an attachment without a record: the configuration's shim and
/// master, prevResult, and the pod's namespace while it exists.
pub struct Clues<'a> {
    pub shim_name: Option<&'a str>,
    pub master: Option<&'a str>,
    pub prev_result: Option<&'a Value>,
    pub ifname: &'a str,
    pub pod_ns: Option<&'a Netns>,
}

/// The pod's addresses and MAC and the shim's name without a record: prevResult first, else
/// the pod's interface. Best effort: what cannot be learned is left (and logged).
pub fn learn(node: &Node, clues: &Clues) -> Option<Found> {
    let from_pod = || match clues.pod_ns.map(|ns| from_pod(ns, clues.ifname)) {
        Some(Ok(learned)) => learned,
        Some(Err(e)) => {
            log::warn!("no record, and reading the pod's interface failed: {e}");
            None
        }
        None => None,
    };
    let learned = clues
        .prev_result
        .and_then(|prev| from_prev_result(prev, clues.ifname))
        .or_else(from_pod)?;
    match shim_of(node, clues.shim_name, clues.master, &learned) {
        Ok(shim) => shim.map(|(shim_name, master)| Found {
            pod: learned,
            shim_name,
            master,
        }),
        Err(e) => {
            log::warn!("no record, and finding the shim failed: {e}");
            None
        }
    }
}

/// The pod's interface as prevResult describes it; None when prevResult does not say.
pub fn from_prev_result(prev: &Value, ifname: &str) -> Option<Learned> {
    let result = CniOutput::parse(prev, "prevResult").ok()?;
    let pod_if = result.pod_interface(ifname, "prevResult").ok()?;
    Some(Learned {
        addresses: pod_if.addresses.iter().map(|a| a.ip()).collect(),
        mac: pod_if.mac?.parse().ok()?,
        parent_index: None,
    })
}

/// The pod's interface as it is, while the namespace exists; None when it has none.
pub fn from_pod(ns: &Netns, ifname: &str) -> Result<Option<Learned>> {
    let netlink = Netlink::open_in(ns).context("opening netlink in the pod")?;
    let Some(link) = netlink
        .link_by_name(ifname)
        .context("looking up the pod's interface")?
    else {
        return Ok(None);
    };
    let Some(mac) = link.mac else {
        return Ok(None);
    };
    let addresses = netlink
        .addresses(link.index)
        .with_context(|| format!("reading the addresses of {ifname} in the pod"))?
        .into_iter()
        .map(|a| a.network.ip())
        .collect();
    Ok(Some(Learned {
        addresses,
        mac,
        parent_index: link.parent_index,
    }))
}

/// The shim this attachment would have used, and its master; None when there is no master
/// (the shim, a macvlan on it, is gone with it).
pub fn shim_of(
    node: &Node,
    shim_name: Option<&str>,
    master: Option<&str>,
    learned: &Learned,
) -> Result<Option<(String, Link)>> {
    let master = match (master, learned.parent_index) {
        (Some(name), _) => node
            .netlink
            .link_by_name(name)
            .with_context(|| format!("looking up master {name}"))?,
        (None, Some(index)) => node
            .netlink
            .link_by_index(index)
            .context("looking up the pod link's parent")?,
        // No hint: the interface ADD would have taken, the default route's.
        (None, None) => node.resolve_master(None).ok(),
    };
    Ok(master.map(|master| {
        let name = shim_name
            .map(str::to_owned)
            .unwrap_or_else(|| default_name(&master.name));
        (name, master)
    }))
}

/// Removes the pod's routes and neighbour entries on the shim that are provably its own, and
/// the shim when nothing routes through it any more.
pub fn release(node: &Node, store: &StateStore, key: &AttachmentKey, found: &Found) -> ErrorList {
    let mut errors = ErrorList::new();
    match NodeLock::acquire() {
        Ok(_lock) => release_locked(
            &UnrecordedSite {
                node,
                store,
                key,
                shim_name: &found.shim_name,
                master: &found.master,
            },
            &found.pod,
            &mut errors,
        ),
        Err(e) => errors.push(Error::from(e).context("taking the node lock")),
    }
    errors
}

/// What DEL without a record works with.
struct UnrecordedSite<'a> {
    node: &'a Node,
    store: &'a StateStore,
    key: &'a AttachmentKey,
    shim_name: &'a str,
    master: &'a Link,
}

fn release_locked(at: &UnrecordedSite, learned: &Learned, errors: &mut ErrorList) {
    let UnrecordedSite {
        node,
        store,
        key,
        shim_name,
        master,
    } = *at;
    let Some(shim) = errors
        .note(
            node.netlink
                .link_by_name(shim_name)
                .with_context(|| format!("looking up shim {shim_name}")),
        )
        .flatten()
    else {
        return;
    };
    if foreign(&shim, master, mac_for(master, shim_name)).is_some() {
        // An interface that merely has the shim's name: nothing on it is ours.
        return;
    }
    let Some(neighbours) = errors.note(
        node.netlink
            .neighbours(shim.index)
            .with_context(|| format!("reading the neighbour entries of shim {shim_name}")),
    ) else {
        return;
    };
    for &ip in &learned.addresses {
        match store.owner_of(ip) {
            // A newer attachment has this address now.
            Ok(Some(owner)) if owner != key.file_stem() => continue,
            Ok(Some(_)) => {}
            Ok(None) if carries_mac(&neighbours, ip, learned.mac) => {}
            Ok(None) => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        }
        remove_entries(node, &shim, ip, errors);
        errors.note(store.clear_owner(ip));
    }
    // The marker of a record that alone was lost; gone with a wiped stateDir.
    let _ = store.remove_user(shim_name, key);
    match store.has_no_users(shim_name) {
        Ok(true) if !still_routed(node, &shim) => {
            errors.extend(delete_link(node, Some(shim)));
            errors.note(store.forget_shim(shim_name));
        }
        Ok(_) => {}
        Err(e) => errors.push(e),
    }
}

/// Whether the node's permanent neighbour entry for `ip` on the shim points at `mac`.
fn carries_mac(neighbours: &[Neighbour], ip: IpAddr, mac: Mac) -> bool {
    neighbours
        .iter()
        .any(|n| n.address == ip && n.permanent && n.mac == Some(mac))
}

fn remove_entries(node: &Node, shim: &Link, ip: IpAddr, errors: &mut ErrorList) {
    if let Err(e) = node
        .netlink
        .delete_route(&host_route_selector(ip, shim.index))
    {
        errors.push(Error::from(e).context(format!("removing the route to {ip}")));
    }
    if let Err(e) = node.netlink.delete_neighbour(shim.index, ip) {
        errors.push(Error::from(e).context(format!("removing the neighbour entry of {ip}")));
    }
    log::info!(
        "removed the route to {ip} through {} without a record",
        shim.name
    );
}
