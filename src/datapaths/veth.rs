//! The per-pod veth pair: a point-to-point path between the node and one pod that does not
//! depend on macvlan bridging, so it works whatever the pod's macvlan mode.

use crate::protocol::{CniError, CniResult, Context, NetConf};
use crate::system::netlink::{Link, Netlink, VethSpec};
use crate::system::state::AttachmentKey;
use crate::system::{names, Mac};

use super::node::Node;

/// The node end: derived from the attachment, so DEL finds it without any state.
pub fn host_end_name(key: &AttachmentKey) -> String {
    format!("mvh{:012x}", names::fnv1a(key.file_stem().as_bytes()) >> 16)
}

/// The pod end: `vethName`, or `host-<ifname>` (hashed when that is longer than 15 bytes).
pub fn pod_end_name(conf: &NetConf, ifname: &str) -> String {
    conf.veth_name
        .clone()
        .unwrap_or_else(|| names::derived_ifname("host-", ifname))
}

/// Stable MACs for both ends, so records and neighbour entries are known before creation.
pub fn macs_for(key: &AttachmentKey) -> (Mac, Mac) {
    let stem = key.file_stem();
    (
        Mac::stable_local(format!("macvlan-host veth node {stem}").as_bytes()),
        Mac::stable_local(format!("macvlan-host veth pod {stem}").as_bytes()),
    )
}

/// Creates the pair with the pod end directly inside the pod and brings both ends up.
/// Returns (node end index, pod end index).
#[allow(clippy::too_many_arguments)]
pub fn create(
    node: &Node,
    pod_netlink: &Netlink,
    pod_ns_fd: std::os::fd::BorrowedFd<'_>,
    host_name: &str,
    host_mac: Mac,
    pod_name: &str,
    pod_mac: Mac,
    pod_group: Option<u32>,
) -> CniResult<(u32, u32)> {
    if pod_netlink
        .link_by_name(pod_name)
        .context("looking up the veth's pod end")?
        .is_some()
    {
        return Err(CniError::config(format!(
            "the pod already has an interface named {pod_name}: set \"vethName\" to another name"
        )));
    }
    // A node end left by a crashed ADD of this same attachment is ours to replace.
    if let Some(stale) = node
        .netlink
        .link_by_name(host_name)
        .context("looking up the veth's node end")?
    {
        node.netlink
            .delete_link(stale.index)
            .with_context(|| format!("removing stale veth {host_name}"))?;
    }
    node.netlink
        .create_veth(&VethSpec {
            name: host_name.to_owned(),
            mac: Some(host_mac),
            peer_name: pod_name.to_owned(),
            peer_mac: Some(pod_mac),
            peer_netns_fd: Some(pod_ns_fd),
            peer_group: pod_group,
            mtu: None,
        })
        .with_context(|| format!("creating veth {host_name} (node) / {pod_name} (pod)"))?;
    let host = require(&node.netlink, host_name, "node")?;
    let pod = require(pod_netlink, pod_name, "pod")?;
    node.netlink
        .set_link_up(host.index)
        .with_context(|| format!("bringing veth {host_name} up"))?;
    pod_netlink
        .set_link_up(pod.index)
        .with_context(|| format!("bringing veth {pod_name} up in the pod"))?;
    Ok((host.index, pod.index))
}

fn require(netlink: &Netlink, name: &str, side: &str) -> CniResult<Link> {
    netlink
        .link_by_name(name)
        .with_context(|| format!("looking up veth {name} in the {side}"))?
        .ok_or_else(|| {
            CniError::internal(format!(
                "veth {name} is missing in the {side} right after its creation"
            ))
        })
}

/// CHECK: the node end exists, is a veth, is up. Returns its index.
pub fn verify_host_end(node: &Node, name: &str, mac: Mac) -> CniResult<u32> {
    let link = node
        .netlink
        .link_by_name(name)
        .context("looking up the veth's node end")?
        .ok_or_else(|| CniError::internal(format!("veth {name} does not exist on the node")))?;
    if link.kind.as_deref() != Some("veth") {
        return Err(CniError::internal(format!(
            "{name} on the node is not a veth"
        )));
    }
    if link.mac != Some(mac) {
        return Err(CniError::internal(format!(
            "veth {name} has MAC {:?}, expected {mac}",
            link.mac
        )));
    }
    if !link.up {
        return Err(CniError::internal(format!(
            "veth {name} on the node is down"
        )));
    }
    Ok(link.index)
}

/// CHECK in the pod: the pod end exists, is a veth, is up. Returns its index.
pub fn verify_pod_end(pod_netlink: &Netlink, name: &str) -> CniResult<u32> {
    let link = pod_netlink
        .link_by_name(name)
        .context("looking up the veth's pod end")?
        .ok_or_else(|| CniError::internal(format!("veth {name} does not exist in the pod")))?;
    if link.kind.as_deref() != Some("veth") || !link.up {
        return Err(CniError::internal(format!(
            "veth {name} in the pod is not an up veth"
        )));
    }
    Ok(link.index)
}
