//! The netavark front end's one door to the host-side logic: the container's macvlan
//! (`datapaths::macvlan`, as interface mode makes a pod's), and host access attached and
//! released through the convergence engine, as the CNI verbs do (`engine::attach_pod`,
//! `engine::Detach`).
//! Attachments are recorded in the network's state directory, so `reconcile`, `--watch` and
//! `diagnose` look after podman's containers as they do after pods.

use std::path::Path;

use ipnetwork::IpNetwork;
use serde_json::json;

use super::attachment::Attachment;
use super::network::Settings;
use crate::datapaths::engine::{self, Attach, Detach};
use crate::datapaths::host_path::{PodInterface, Settings as HostSettings};
use crate::datapaths::macvlan::{self, NewMacvlan};
use crate::datapaths::node::{usable_addresses_of, Node};
use crate::datapaths::pod::Pod;
use crate::datapaths::pod_addresses::{self, Origin};
use crate::datapaths::shim::unrecorded::Clues;
use crate::error::{Context, Error, ErrorList, Result};
use crate::plugin::rollback::Rollback;
use crate::protocol::options::NetworkOptions;
use crate::protocol::result::{CniOutput, IpConfig, RouteEntry};
use crate::protocol::HostAccess;
use crate::system::netns::{Netns, OpenError};
use crate::system::state::{AttachmentKey, StateStore};
use crate::system::Mac;

/// `create`: the parent (the default route's interface unless `parent` is set) exists, the
/// MTU fits it, and the node has an address to reach containers from in each family of the
/// network's subnets (`families`: true for IPv4). Returns the parent's name.
pub fn check_parent(options: &NetworkOptions, families: &[bool]) -> Result<String> {
    let node = Node::open()?;
    let parent = node
        .resolve_master(options.parent.as_deref())
        .map_err(|e| e.context("option parent"))?;
    if let Some(mtu) = options.mtu.filter(|mtu| *mtu > parent.mtu) {
        return Err(Error::config(format!(
            "option mtu={mtu}: larger than the MTU of parent {} ({})",
            parent.name, parent.mtu
        )));
    }
    if options.host_access != HostAccess::None {
        let on_parent = usable_addresses_of(&node.addresses_of(&parent)?, &parent);
        for &v4 in families {
            let has = |list: &[IpNetwork]| list.iter().any(|a| a.is_ipv4() == v4);
            if !has(&on_parent) && !has(&options.shim_addresses) {
                let family = if v4 { "IPv4" } else { "IPv6" };
                return Err(Error::config(format!(
                    "parent {} has no {family} address to reach containers from: give it one, \
                     set -o shim_addresses= to an {family} address reserved for the shim, or \
                     -o host_access=none",
                    parent.name
                )));
            }
        }
    }
    Ok(parent.name)
}

/// `setup`: the container's macvlan, then host access; on failure everything made is undone.
/// Returns the macvlan's MAC.
pub fn connect(netns: &Path, settings: &Settings, attachment: &Attachment) -> Result<Mac> {
    let options = &settings.options;
    let key = &attachment.key;
    let ifname = key.ifname.as_str();
    let node = Node::open()?;
    let pod = Pod::open(netns, &node.ns, "the container's network namespace")?;
    let master = node.resolve_master(options.parent.as_deref())?;
    macvlan::ensure_name_free(&pod.netlink, ifname)?;
    let allocation = keep_existing_defaults(allocation(attachment), &pod)?;
    let addresses: Vec<IpNetwork> = attachment.addresses.iter().map(|(a, _)| *a).collect();
    let as_result = allocation.to_json(crate::protocol::CniVersion::LATEST);
    pod_addresses::refuse_unfit(&node, &as_result, &addresses, Origin::IpamResult)?;

    let mut rollback = Rollback::new();
    let group = key.link_group();
    let link = macvlan::create(
        &node.netlink,
        &pod,
        &NewMacvlan {
            master: &master,
            mode: options.mode,
            mtu: options.mtu,
            mac: attachment.mac,
            group,
        },
    )?;
    let index = link.index;
    let container = &pod.netlink;
    rollback.push("removing the container's macvlan", move || {
        if let Err(e) = container.delete_link(index) {
            log::warn!("rolling back: removing {ifname} from the container: {e}");
        }
    });
    // `create` returns only a macvlan that has its MAC.
    let mac = link.mac.ok_or_else(|| {
        Error::internal(format!(
            "the container's new macvlan {} has no MAC",
            link.name
        ))
    })?;
    macvlan::prepare(&pod.netlink, index, ifname)?;
    macvlan::configure(&pod.ns, &pod.netlink, index, ifname, &allocation)?;
    if options.host_access != HostAccess::None {
        let store = StateStore::open(&settings.state_dir)
            .with_context(|| format!("opening state_dir {}", settings.state_dir.display()))?;
        mark_as_podmans(&settings.state_dir)?;
        let pod_if = PodInterface {
            ifname: ifname.to_owned(),
            index,
            mac,
            mtu: link.mtu,
            macvlan_mode: Some(options.mode),
            addresses,
            link_group: Some(group),
        };
        // The engine releases what it made when it fails.
        engine::attach_pod(&Attach {
            node: &node,
            pod: Some(&pod),
            netns: &pod.path,
            master: &master,
            pod_if: &pod_if,
            key,
            settings: &host_settings(options),
            store: &store,
        })?;
    }
    rollback.disarm();
    Ok(mac)
}

/// `teardown`: host access (from the record; without one, what DEL would find), then the
/// container's links. Goes on past errors; what is gone already is no error.
pub fn disconnect(netns: &Path, settings: &Settings, key: &AttachmentKey) -> Result<()> {
    let node = Node::open()?;
    let pod_ns = Pod::namespace_if_present(Some(netns), &node.ns, "the container's namespace")?;
    let store = StateStore::existing(&settings.state_dir);
    let options = &settings.options;
    // Without a record (setup never got that far, or the state directory was wiped): what
    // the engine can learn of the container and of the shim it would have used.
    let clues = Clues {
        shim_name: options.shim_name.as_deref(),
        master: options.parent.as_deref(),
        prev_result: None,
        ifname: &key.ifname,
        pod_ns: pod_ns.as_ref(),
    };
    let released =
        Detach::prepare(&node, store, key, options.host_access, &clues).release(&node, key);
    let mut errors = ErrorList::new();
    errors.note(remove_container_links(pod_ns, key));
    errors.append(released.finish(&node));
    errors.into_result()
}

/// Podman's namespace files are removed when a container's network goes: a record whose
/// namespace is gone belongs to a container that will never be torn down (its setup was
/// killed, or the node stopped in between). Their host side goes; returns the keys released
/// (errors are logged). Also run by `reconcile` on state directories marked as podman's.
pub fn release_abandoned(state_dir: &Path) -> Vec<String> {
    let store = StateStore::existing(state_dir);
    let records = match store.records() {
        Ok(records) => records,
        Err(e) if e.is_not_found() => return Vec::new(),
        Err(e) => {
            log::warn!("reading {}: {e}", state_dir.display());
            return Vec::new();
        }
    };
    let abandoned: Vec<_> = records
        .into_iter()
        .filter(|r| {
            matches!(
                Netns::open(Path::new(&r.netns)),
                Err(OpenError::Missing(_) | OpenError::Unmounted(_))
            )
        })
        .collect();
    if abandoned.is_empty() {
        return Vec::new();
    }
    let node = match Node::open() {
        Ok(node) => node,
        Err(e) => {
            log::warn!("{e}");
            return Vec::new();
        }
    };
    abandoned
        .into_iter()
        .map(|record| {
            let key = record.key.file_stem();
            log::info!("releasing {key}: its namespace {} is gone", record.netns);
            for e in engine::detach(&node, &store, &record).finish(&node) {
                log::warn!("releasing {key}: {e}");
            }
            key
        })
        .collect()
}

/// Says in the state directory that its records are podman's: `reconcile` then releases the
/// ones whose namespace is gone (podman removes a container's namespace file; a CNI runtime's
/// namespace may merely be invisible to the watcher, so CNI records are never released so).
fn mark_as_podmans(state_dir: &Path) -> Result<()> {
    let marker = state_dir.join(PODMAN_MARKER);
    if marker.exists() {
        return Ok(());
    }
    crate::system::state::write_unlocked(
        &marker,
        b"records of podman containers (macvlan-host as a netavark plugin)\n",
    )
    .with_context(|| format!("writing {}", marker.display()))
}

/// The marker file of `mark_as_podmans`.
pub const PODMAN_MARKER: &str = "netavark-plugin";

/// The container's links of this attachment (its macvlan, a veth's pod end) in one request,
/// then the interface by name in case it lost its group.
fn remove_container_links(pod_ns: Option<Netns>, key: &AttachmentKey) -> Result<()> {
    let Some(ns) = pod_ns else {
        return Ok(());
    };
    let path = ns.path().to_owned();
    let pod = Pod::connect(ns, &path)?;
    match pod.netlink.delete_link_group(key.link_group()) {
        Err(e) if !e.is_not_found() => {
            return Err(Error::from(e).context("removing the container's links"))
        }
        _ => {}
    }
    if let Some(link) = pod
        .netlink
        .link_by_name(&key.ifname)
        .context("looking up the container's interface")?
    {
        pod.netlink
            .delete_link(link.index)
            .with_context(|| format!("removing {} from the container", key.ifname))?;
    }
    Ok(())
}

/// podman's choice, in the shape interface mode configures a pod from.
fn allocation(attachment: &Attachment) -> CniOutput {
    CniOutput {
        ips: attachment
            .addresses
            .iter()
            .map(|(address, gateway)| IpConfig {
                address: *address,
                gateway: *gateway,
                interface: Some(0),
            })
            .collect(),
        routes: attachment
            .routes
            .iter()
            .map(|(dst, gw)| RouteEntry {
                dst: *dst,
                gw: Some(*gw),
                raw: json!({ "dst": dst.to_string(), "gw": gw.to_string() })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect(),
        ..CniOutput::default()
    }
}

/// A container that has a default route of a family already (`podman network connect` of a
/// second network) keeps it: the kernel refuses a second one of the same metric, and the way
/// out stays the first network's, as with netavark's own drivers.
fn keep_existing_defaults(mut allocation: CniOutput, pod: &Pod) -> Result<CniOutput> {
    if !allocation.routes.iter().any(|r| r.dst.prefix() == 0) {
        return Ok(allocation);
    }
    let present = pod
        .netlink
        .routes()
        .context("reading the container's routes")?;
    let has_default = |v4: bool| {
        present
            .iter()
            .filter_map(|r| r.destination)
            .any(|d| d.prefix() == 0 && d.is_ipv4() == v4)
    };
    allocation
        .routes
        .retain(|r| r.dst.prefix() != 0 || !has_default(r.dst.is_ipv4()));
    Ok(allocation)
}

fn host_settings(options: &NetworkOptions) -> HostSettings {
    HostSettings {
        host_access: options.host_access,
        shim_name: options.shim_name.clone(),
        shim_addresses: options.shim_addresses.clone(),
        veth_name: None,
        host_routes: options.host_routes.clone(),
    }
}
