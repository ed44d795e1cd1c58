//! DEL: remove what ADD made. DEL must succeed whenever there is nothing left to remove (the
//! namespace, prevResult, record, shim or master already gone): a failing DEL would keep the
//! runtime from running the plugins behind this one, and their IP allocations would leak.

use super::ipam::Ipam;
use super::{attachment_key, combine, Pod};
use crate::datapaths::host_access;
use crate::datapaths::node::Node;
use crate::datapaths::veth;
use crate::protocol::{
    CniError, CniResult, Command, Context, Environment, HostAccess, Mode, NetConf,
};
use crate::system::netlink::Link;
use crate::system::netns::Netns;
use crate::system::state::StateStore;

pub fn del(env: &Environment, conf: &NetConf) -> CniResult<()> {
    let node = Node::open()?;
    // Before anything else: a CNI_NETNS that is the node's own namespace is refused.
    let pod_ns = Pod::open_ns_if_present(env, &node.ns)?;
    let Mode::Interface { .. } = conf.mode else {
        let (mut errors, veth) = release_host_access(env, conf, &node);
        errors.extend(host_access::delete_link(&node, veth));
        return combine(errors);
    };
    // Interface mode: three independent teardowns run side by side. The IPAM plugin is a
    // process of its own; deleting the pod's links waits for an RCU grace period in the
    // kernel; the host side waits for the node lock. The allocation is released always, also
    // when the pod is gone.
    let ipam = Ipam::of(env, conf).expect("interface mode always has ipam");
    let pending = ipam.start(Command::Del);
    let group = attachment_key(env, conf).link_group();
    let mut errors = std::thread::scope(|scope| {
        let pod_links = scope.spawn(|| remove_pod_links(env, pod_ns, group));
        let (mut errors, veth) = release_host_access(env, conf, &node);
        match pod_links.join() {
            Ok(result) => errors.extend(result.err()),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        // Normally the veth went with the pod's link group; what is left (the pod's namespace
        // was gone, or a link without group) goes now.
        errors.extend(host_access::delete_link(&node, veth));
        errors
    });
    errors.extend(pending.and_then(|p| p.wait()).err());
    combine(errors)
}

/// Host access: the record's objects, under the node lock. Returns the errors and the veth's
/// node end, which the caller deletes (see `host_access::detach_deferring_veth`).
fn release_host_access(
    env: &Environment,
    conf: &NetConf,
    node: &Node,
) -> (Vec<CniError>, Option<Link>) {
    let key = attachment_key(env, conf);
    // Nothing is created: with nothing recorded, a missing or read-only stateDir is no error.
    let store = StateStore::existing(&conf.state_dir);
    match store.load(&key).context("reading the attachment record") {
        Ok(Some(record)) => host_access::detach_deferring_veth(node, &store, &record),
        Ok(None) if conf.host_access == HostAccess::None => (Vec::new(), None),
        // No record: nothing was set up, or the record was lost. What can be found without it
        // goes: route ownerships of this attachment, and a veth's node end by its derived name.
        Ok(None) => {
            let errors = [
                store.clear_owners_of(&key),
                store.remove_record_temporary(&key),
            ]
            .into_iter()
            .filter_map(Result::err)
            .map(CniError::from)
            .collect();
            let veth = match conf.host_access {
                HostAccess::Veth => match node.netlink.link_by_name(&veth::host_end_name(&key)) {
                    Ok(link) => link,
                    Err(e) => return (vec![e.into()], None),
                },
                _ => None,
            };
            (errors, veth)
        }
        Err(e) => (vec![e], None),
    }
}

/// The pod's links of this attachment (its macvlan and, with veth, the pair's pod end) in one
/// request: the kernel waits for one grace period for all of them.
fn remove_pod_links(env: &Environment, pod_ns: Option<Netns>, group: u32) -> CniResult<()> {
    let Some(ns) = pod_ns else {
        return Ok(());
    };
    let pod = Pod::connect(ns)?;
    match pod.netlink.delete_link_group(group) {
        Err(e) if !e.is_not_found() => {
            return Err(CniError::from(e).context("removing the attachment's links from the pod"))
        }
        _ => {}
    }
    // A link left by a release that did not group its links goes by name.
    if let Some(link) = pod
        .netlink
        .link_by_name(env.ifname())
        .context("looking up the pod's interface")?
    {
        pod.netlink
            .delete_link(link.index)
            .with_context(|| format!("removing {} from the pod", env.ifname()))?;
    }
    Ok(())
}
