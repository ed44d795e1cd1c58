//! ADD: attach the pod (interface mode: create its macvlan; chained mode: find it), then give
//! the node a path to it.

use ipnetwork::IpNetwork;
use serde_json::{Map, Value};

use super::ipam::Ipam;
use super::rollback::Rollback;
use super::{attachment_key, open_pod};
use crate::datapaths::engine::{self, Attach, Attached};
use crate::datapaths::macvlan::{self, NewMacvlan};
use crate::datapaths::node::Node;
use crate::datapaths::plan::{PodInterface, Settings};
use crate::datapaths::pod::Pod;
use crate::datapaths::pod_addresses::{self, Origin};
use crate::error::{Context, Error, Result};
use crate::protocol::requested_mac::{requested_mac, RequestedMac};
use crate::protocol::result::{pass_through, CniOutput, Interface};
use crate::protocol::{Command, Environment, HostAccess, Mode, NetConf};
use crate::system::netlink::Link;
use crate::system::state::{AttachmentKey, StateStore};

pub fn add(env: &Environment, conf: &NetConf) -> Result<Value> {
    let node = Node::open()?;
    let pod = open_pod(env, &node)?;
    let key = attachment_key(env, conf);
    match &conf.mode {
        Mode::Interface { ipam } => add_interface(env, conf, &key, &node, &pod, ipam),
        Mode::Chained {
            prev_result: Some(prev),
        } => add_chained(env, conf, &key, &node, &pod, prev),
        // The configuration refuses this for ADD already; never a panic.
        Mode::Chained { prev_result: None } => Err(Error::config(
            "ADD in chained mode needs prevResult, the result of the plugin before this one",
        )),
    }
}

/// Interface mode: IPAM, the macvlan, host access. Any failure after a step undoes it.
fn add_interface(
    env: &Environment,
    conf: &NetConf,
    key: &AttachmentKey,
    node: &Node,
    pod: &Pod,
    ipam_section: &Map<String, Value>,
) -> Result<Value> {
    let ipam = Ipam::new(env, conf, ipam_section);
    let ifname = env.ifname();
    let requested = requested_mac(env, &conf.raw)?;
    let master = node.resolve_master(conf.master.as_deref())?;
    refuse_masters_mac(requested, &master)?;
    macvlan::ensure_name_free(&pod.netlink, ifname)?;
    let mut rollback = Rollback::new();

    // The IPAM plugin is a process of its own: the macvlan is made, named and set up while
    // it runs.
    let pending = ipam.start(Command::Add)?;
    let group = key.link_group();
    let created = macvlan::create(
        &node.netlink,
        pod,
        &NewMacvlan {
            master: &master,
            mode: conf.macvlan_mode,
            mtu: conf.mtu,
            mac: requested.map(|r| r.mac),
            group,
        },
    );
    let prepared = match &created {
        Ok(link) => {
            let index = link.index;
            rollback.push("removing the pod's macvlan", move || {
                remove_link(pod, index, ifname)
            });
            macvlan::prepare(&pod.netlink, index, ifname)
        }
        Err(_) => Ok(()),
    };
    let reply = pending.wait_for_result();
    // An allocation whose result cannot be read is still an allocation to release.
    if reply.is_ok() {
        rollback.push("releasing the IPAM allocation", || release(&ipam));
    }
    let link = created?;
    let index = link.index;
    let mac = link
        .mac
        .ok_or_else(|| Error::internal(format!("{ifname} in the pod has no MAC address")))?;
    prepared?;
    let raw_allocation = reply?;
    let allocation = CniOutput::parse(&raw_allocation, "the IPAM result")?;
    if allocation.ips.is_empty() {
        return Err(Error::internal("the IPAM plugin returned no address"));
    }
    let addresses = allocation_addresses(&allocation);
    pod_addresses::refuse_unfit(node, &raw_allocation, &addresses, Origin::IpamResult)?;
    macvlan::configure(&pod.ns, &pod.netlink, index, ifname, &allocation).map_err(|e| {
        match requested {
            Some(r) => e.context(format!("MAC {} from {}", r.mac, r.source)),
            None => e,
        }
    })?;
    let pod_if = PodInterface {
        ifname: ifname.to_owned(),
        index,
        mac,
        mtu: link.mtu,
        macvlan_mode: Some(conf.macvlan_mode),
        addresses,
        link_group: Some(group),
    };
    let attached = attach_host(conf, key, node, pod, &master, &pod_if)?;
    rollback.disarm();
    Ok(interface_result(allocation, &pod_if, pod, attached.as_ref()).to_json(conf.cni_version))
}

/// A requested MAC that is the master's own: refused before anything is allocated (the
/// kernel would refuse it only when the link comes up). Another macvlan's MAC is found then
/// (`macvlan::configure`): the pods' links live in their own namespaces.
fn refuse_masters_mac(requested: Option<RequestedMac>, master: &Link) -> Result<()> {
    match requested {
        Some(r) if master.mac == Some(r.mac) => Err(Error::internal(format!(
            "MAC {} from {} is already in use on master {}: it is the master's own MAC",
            r.mac, r.source, master.name
        ))),
        _ => Ok(()),
    }
}

/// The IPAM result, with the pod's macvlan as interface 0 of every address, and the veth's
/// node end when there is one.
fn interface_result(
    mut result: CniOutput,
    pod_if: &PodInterface,
    pod: &Pod,
    attached: Option<&Attached>,
) -> CniOutput {
    result.interfaces = vec![Interface {
        name: pod_if.ifname.clone(),
        mac: Some(pod_if.mac.to_string()),
        sandbox: Some(pod.path.clone()),
    }];
    result.interfaces.extend(host_interfaces(attached));
    for ip in &mut result.ips {
        ip.interface = Some(0);
    }
    result
}

fn remove_link(pod: &Pod, index: u32, ifname: &str) {
    if let Err(e) = pod.netlink.delete_link(index) {
        log::warn!("rolling back: removing {ifname} from the pod: {e}");
    }
}

fn release(ipam: &Ipam) {
    if let Err(e) = ipam.del() {
        log::warn!("rolling back: releasing the IPAM allocation: {e}");
    }
}

fn allocation_addresses(allocation: &CniOutput) -> Vec<IpNetwork> {
    allocation.ips.iter().map(|ip| ip.address).collect()
}

/// Chained mode: the previous plugin made the pod's interface; add host access and pass its
/// result through.
fn add_chained(
    env: &Environment,
    conf: &NetConf,
    key: &AttachmentKey,
    node: &Node,
    pod: &Pod,
    prev: &Value,
) -> Result<Value> {
    let ifname = env.ifname();
    let pod_if = CniOutput::parse(prev, "prevResult")?.pod_interface(ifname, "prevResult")?;
    pod_addresses::refuse_unfit(node, prev, &pod_if.addresses, Origin::PrevResult)?;
    let link = pod
        .netlink
        .link_by_name(ifname)
        .context("looking up the pod's interface")?
        .ok_or_else(|| {
            Error::config(format!(
                "prevResult names interface {ifname:?} but the pod has no such interface"
            ))
        })?;
    let master = match conf.master.as_deref() {
        Some(name) => node.resolve_master(Some(name))?,
        // The macvlan's parent, as the kernel reports it: never a guess.
        None => node.master_by_index(link.parent_index.ok_or_else(|| {
            Error::config(format!(
                "{ifname} in the pod has no parent link: is it a macvlan? Set \"master\" otherwise"
            ))
        })?)?,
    };
    let pod_if = PodInterface {
        ifname: ifname.to_owned(),
        index: link.index,
        mac: link
            .mac
            .ok_or_else(|| Error::internal(format!("{ifname} in the pod has no MAC address")))?,
        mtu: link.mtu,
        macvlan_mode: link.macvlan_mode,
        addresses: pod_if.addresses,
        // Only a link this plugin made is in the attachment's group.
        link_group: None,
    };
    let attached = attach_host(conf, key, node, pod, &master, &pod_if)?;
    Ok(pass_through(
        prev,
        conf.cni_version,
        &host_interfaces(attached.as_ref()),
    ))
}

/// The host-access step both modes share, through the engine. None with
/// `hostAccess: "none"`.
fn attach_host(
    conf: &NetConf,
    key: &AttachmentKey,
    node: &Node,
    pod: &Pod,
    master: &Link,
    pod_if: &PodInterface,
) -> Result<Option<Attached>> {
    if conf.host_access == HostAccess::None {
        return Ok(None);
    }
    let store = StateStore::open(&conf.state_dir).context("opening stateDir")?;
    engine::attach_pod(&Attach {
        node,
        pod: Some(pod),
        netns: &pod.path,
        master,
        pod_if,
        key,
        settings: &host_settings(conf),
        store: &store,
    })
}

/// The values of the configuration that host access needs.
fn host_settings(conf: &NetConf) -> Settings {
    Settings {
        host_access: conf.host_access,
        shim_name: conf.shim_name.clone(),
        shim_addresses: conf.shim_addresses.clone(),
        veth_name: conf.veth_name.clone(),
        host_routes: conf.host_routes.clone(),
    }
}

/// Host-side interfaces to report: those that are the pod's own (a veth's node end).
fn host_interfaces(attached: Option<&Attached>) -> Vec<Interface> {
    attached
        .and_then(|a| a.host_interface.clone())
        .into_iter()
        .collect()
}
