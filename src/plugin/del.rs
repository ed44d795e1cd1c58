//! DEL: remove what ADD made. DEL must succeed whenever there is nothing left to remove (the
//! namespace, prevResult, record, shim or master already gone): a failing DEL would keep the
//! runtime from running the plugins behind this one, and their IP allocations would leak.

use super::ipam::Ipam;
use super::{attachment_key, pod_if_present};
use crate::datapaths::host_access::{self, Released};
use crate::datapaths::node::Node;
use crate::protocol::{
    CniError, CniResult, Command, Context, Environment, ErrorList, HostAccess, Mode, NetConf,
};
use crate::system::state::{AttachmentKey, StateStore};

pub fn del(env: &Environment, conf: &NetConf) -> CniResult<()> {
    let node = Node::open()?;
    let key = attachment_key(env, conf);
    let Mode::Interface { ipam } = &conf.mode else {
        return release_host_access(conf, &node, &key)
            .finish(&node)
            .into_result();
    };
    // Interface mode: three independent teardowns run side by side. The IPAM plugin is a
    // process of its own; deleting the pod's links waits for an RCU grace period in the
    // kernel; the host side waits for the node lock. The allocation is released always, also
    // when the pod is gone.
    let ipam = Ipam::new(env, conf, ipam);
    let pending = ipam.start(Command::Del);
    let mut errors = std::thread::scope(|scope| {
        let pod_links = scope.spawn(|| remove_pod_links(env, key.link_group()));
        let released = release_host_access(conf, &node, &key);
        let mut errors = ErrorList::new();
        match pod_links.join() {
            Ok(result) => errors.note(result),
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // Normally the veth went with the pod's link group; what is left (the pod's namespace
        // was gone, or a link without group) goes now.
        errors.append(released.finish(&node));
        errors
    });
    errors.note(pending.and_then(|p| p.wait()));
    errors.into_result()
}

/// Host access: the record's objects, under the node lock; what must go after the lock is in
/// the returned `Released`.
fn release_host_access(conf: &NetConf, node: &Node, key: &AttachmentKey) -> Released {
    let store = match StateStore::open(&conf.state_dir).context("opening stateDir") {
        Ok(store) => store,
        Err(e) => return Released::failed(e),
    };
    match store.load(key).context("reading the attachment record") {
        Ok(Some(record)) => host_access::release(node, &store, &record),
        Ok(None) if conf.host_access == HostAccess::None => Released::nothing(),
        Ok(None) => host_access::release_unrecorded(node, &store, key, conf.host_access),
        Err(e) => Released::failed(e),
    }
}

/// The pod's links of this attachment (its macvlan and, with veth, the pair's pod end) in one
/// request: the kernel waits for one grace period for all of them.
fn remove_pod_links(env: &Environment, group: u32) -> CniResult<()> {
    let Some(pod) = pod_if_present(env)? else {
        return Ok(());
    };
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
