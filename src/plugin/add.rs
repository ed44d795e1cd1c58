//! ADD: attach the pod (interface mode: create its macvlan; chained mode: find it), then give
//! the node a path to it.

use serde_json::Value;

use super::ipam::Ipam;
use super::{attachment_key, Pod};
use crate::datapaths::host_access::{self, PodEnd};
use crate::datapaths::macvlan;
use crate::datapaths::node::Node;
use crate::datapaths::pod_addresses::{self, Origin};
use crate::protocol::result::{pass_through, CniOutput, Interface};
use crate::protocol::{
    CniError, CniResult, Command, Context, Environment, HostAccess, Mode, NetConf,
};
use crate::system::netlink::{Link, MacvlanMode};
use crate::system::state::{HostSide, Record, StateStore};
use crate::system::Mac;

pub fn add(env: &Environment, conf: &NetConf) -> CniResult<Value> {
    let node = Node::open()?;
    let pod = Pod::open(env, &node.ns)?;
    match &conf.mode {
        Mode::Interface { .. } => add_interface(env, conf, &node, &pod),
        Mode::Chained { prev_result } => {
            let prev = prev_result
                .as_ref()
                .expect("ADD in chained mode always has a prevResult");
            add_chained(env, conf, &node, &pod, prev)
        }
    }
}

/// Interface mode: IPAM, the macvlan, host access. Any failure after IPAM ADD undoes it all.
fn add_interface(env: &Environment, conf: &NetConf, node: &Node, pod: &Pod) -> CniResult<Value> {
    let ifname = env.ifname();
    let master = node.resolve_master(conf.master.as_deref())?;
    macvlan::ensure_name_free(&pod.netlink, ifname)?;
    let ipam = Ipam::of(env, conf).expect("interface mode always has ipam");

    // The IPAM plugin is a process of its own: the macvlan is made while it runs.
    let pending = ipam.start(Command::Add)?;
    let group = attachment_key(env, conf).link_group();
    let created = macvlan::create(&node.netlink, &pod.ns, &pod.netlink, &master, conf, group);
    let reply = pending.wait_for_result();
    // An allocation whose result cannot be read is still an allocation to release.
    let allocated_something = reply.is_ok();
    let allocated = reply.and_then(|v| Ok((CniOutput::parse(&v, "the IPAM result")?, v)));
    let (index, mac, (allocation, raw_allocation)) = match (created, allocated) {
        (Ok((index, mac)), Ok(allocation)) => (index, mac, allocation),
        (created, allocated) => {
            if let Ok((index, _)) = created {
                remove_link(pod, index, ifname);
            }
            if allocated_something {
                release(&ipam);
            }
            return Err(created
                .err()
                .or(allocated.err())
                .expect("one of them failed"));
        }
    };

    let attached = (|| {
        if allocation.ips.is_empty() {
            return Err(CniError::internal("the IPAM plugin returned no address"));
        }
        let addresses = allocation_addresses(&allocation);
        pod_addresses::refuse_unfit(node, &raw_allocation, &addresses, Origin::IpamResult)?;
        macvlan::configure(&pod.ns, &pod.netlink, index, ifname, &allocation)?;
        let pod_link = PodLink {
            index,
            mac,
            mode: Some(conf.macvlan_mode),
        };
        attach_host(
            env,
            conf,
            node,
            pod,
            &master,
            pod_link,
            &allocation_addresses(&allocation),
        )
    })();
    let record = match attached {
        Ok(record) => record,
        Err(err) => {
            remove_link(pod, index, ifname);
            release(&ipam);
            return Err(err);
        }
    };

    let mut result = allocation;
    result.interfaces = vec![Interface {
        name: ifname.to_owned(),
        mac: Some(mac.to_string()),
        sandbox: Some(pod.path.clone()),
    }];
    result.interfaces.extend(host_interfaces(record.as_ref()));
    for ip in &mut result.ips {
        ip.interface = Some(0);
    }
    Ok(result.to_json(conf.cni_version))
}

/// Rollback: the pod's half-made macvlan goes.
fn remove_link(pod: &Pod, index: u32, ifname: &str) {
    if let Err(e) = pod.netlink.delete_link(index) {
        log::warn!("rolling back: removing {ifname} from the pod: {e}");
    }
}

/// Rollback: the allocation goes back to the IPAM plugin.
fn release(ipam: &Ipam) {
    if let Err(e) = ipam.del() {
        log::warn!("rolling back: releasing the IPAM allocation: {e}");
    }
}

fn allocation_addresses(allocation: &CniOutput) -> Vec<ipnetwork::IpNetwork> {
    allocation.ips.iter().map(|ip| ip.address).collect()
}

/// Chained mode: the previous plugin made the pod's interface; add host access and pass its
/// result through.
fn add_chained(
    env: &Environment,
    conf: &NetConf,
    node: &Node,
    pod: &Pod,
    prev: &Value,
) -> CniResult<Value> {
    let ifname = env.ifname();
    let pod_if = CniOutput::parse(prev, "prevResult")?.pod_interface(ifname, "prevResult")?;
    pod_addresses::refuse_unfit(node, prev, &pod_if.addresses, Origin::PrevResult)?;
    let link = pod
        .netlink
        .link_by_name(ifname)
        .context("looking up the pod's interface")?
        .ok_or_else(|| {
            CniError::config(format!(
                "prevResult names interface {ifname:?} but the pod has no such interface"
            ))
        })?;
    let master = match conf.master.as_deref() {
        Some(name) => node.resolve_master(Some(name))?,
        // The macvlan's parent, as the kernel reports it: never a guess.
        None => node.master_by_index(link.parent_index.ok_or_else(|| {
            CniError::config(format!(
                "{ifname} in the pod has no parent link: is it a macvlan? Set \"master\" otherwise"
            ))
        })?)?,
    };
    let pod_link = PodLink {
        index: link.index,
        mac: link
            .mac
            .ok_or_else(|| CniError::internal(format!("{ifname} in the pod has no MAC address")))?,
        mode: link.macvlan_mode,
    };
    let record = attach_host(env, conf, node, pod, &master, pod_link, &pod_if.addresses)?;
    Ok(pass_through(
        prev,
        conf.cni_version,
        &host_interfaces(record.as_ref()),
    ))
}

/// The pod's interface as the mode that made it knows it.
struct PodLink {
    index: u32,
    mac: Mac,
    mode: Option<MacvlanMode>,
}

/// The host-access step both modes share; None with `hostAccess: "none"`.
fn attach_host(
    env: &Environment,
    conf: &NetConf,
    node: &Node,
    pod: &Pod,
    master: &Link,
    link: PodLink,
    addresses: &[ipnetwork::IpNetwork],
) -> CniResult<Option<Record>> {
    if conf.host_access == HostAccess::None {
        return Ok(None);
    }
    let ifname = env.ifname();
    let store = StateStore::open(&conf.state_dir).context("opening stateDir")?;
    let pod_end = PodEnd {
        netns: &pod.ns,
        netns_path: &pod.path,
        netlink: &pod.netlink,
        ifname,
        index: link.index,
        mac: link.mac,
        macvlan_mode: link.mode,
        addresses,
        // Only a link this plugin made is in the attachment's group (interface mode).
        link_group: Some(attachment_key(env, conf).link_group())
            .filter(|_| matches!(conf.mode, Mode::Interface { .. })),
    };
    host_access::attach(
        node,
        &store,
        conf,
        &attachment_key(env, conf),
        master,
        &pod_end,
    )
    .map(Some)
}

/// Host-side interfaces to report: the node end of a veth. The shim is shared, not the pod's.
fn host_interfaces(record: Option<&Record>) -> Vec<Interface> {
    match record.map(|r| (&r.host_side, &r.host_mac)) {
        Some((HostSide::Veth { name, .. }, mac)) => vec![Interface {
            name: name.clone(),
            mac: Some(mac.clone()),
            sandbox: None,
        }],
        _ => Vec::new(),
    }
}
