//! DEL: remove what ADD made. DEL must succeed whenever there is nothing left to remove (the
//! namespace, prevResult, record, shim or master already gone): a failing DEL would keep the
//! runtime from running the plugins behind this one, and their IP allocations would leak.

use super::ipam::{Ipam, IpamCall};
use super::{attachment_key, pod_namespace_if_present};
use crate::datapaths::engine::Detach;
use crate::datapaths::node::Node;
use crate::datapaths::pod::Pod;
use crate::datapaths::shim::unrecorded::Clues;
use crate::error::{Context, Error, ErrorList, Result};
use crate::protocol::{Command, Environment, Mode, NetConf};
use crate::system::netns::Netns;
use crate::system::state::StateStore;

pub fn del(env: &Environment, conf: &NetConf) -> Result<()> {
    let node = Node::open()?;
    // Before anything else: a CNI_NETNS that is the node's own namespace is refused.
    let pod_ns = pod_namespace_if_present(env, &node)?;
    let key = attachment_key(env, conf);
    // Before anything is torn down: without a record, the pod's interface may be all that
    // tells what to remove.
    let clues = Clues {
        shim_name: conf.shim_name.as_deref(),
        master: conf.master.as_deref(),
        prev_result: conf.prev_result(),
        ifname: env.ifname(),
        pod_ns: pod_ns.as_ref(),
    };
    // Nothing is created: with nothing recorded, a missing or read-only stateDir is no error.
    let store = StateStore::existing(&conf.state_dir);
    let host = Detach::prepare(&node, store, &key, conf.host_access, &clues);
    let Mode::Interface { ipam } = &conf.mode else {
        return host.release(&node, &key).finish(&node).into_result();
    };
    // Interface mode. IPAM DEL first, while the pod and its path to the node are intact, as
    // the reference plugins do: an IPAM plugin may need them to release (the `dhcp` daemon
    // sends DHCPRELEASE out of the pod's interface, to a server that may be the node itself,
    // reached through the host side). A plugin that keeps its allocations in local files
    // needs neither, and its DEL (a process of its own, which reads every allocation) runs
    // beside the teardown. The allocation is released always, also when the pod is gone, and
    // a failing release does not stop the teardown.
    let mut errors = ErrorList::new();
    let ipam = Ipam::new(env, conf, ipam);
    let release = ipam.start(Command::Del);
    let release = if ipam.releases_locally() {
        Some(release)
    } else {
        errors.note(release.and_then(IpamCall::wait));
        None
    };
    // Then the two teardowns side by side (and a local IPAM release beside them): deleting
    // the pod's links waits for an RCU grace period in the kernel, the host side waits for
    // the node lock.
    errors.append(std::thread::scope(|scope| {
        let pod_links = scope.spawn(|| remove_pod_links(pod_ns, env.ifname(), key.link_group()));
        let released = host.release(&node, &key);
        let mut errors = ErrorList::new();
        match pod_links.join() {
            Ok(result) => errors.note(result),
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // Normally the veth went with the pod's link group; what is left (the pod's namespace
        // was gone, or a link without group) goes now.
        errors.append(released.finish(&node));
        errors
    }));
    if let Some(release) = release {
        errors.note(release.and_then(IpamCall::wait));
    }
    errors.into_result()
}

/// The pod's links of this attachment (its macvlan and, with veth, the pair's pod end) in one
/// request: the kernel waits for one grace period for all of them.
fn remove_pod_links(pod_ns: Option<Netns>, ifname: &str, group: u32) -> Result<()> {
    let Some(ns) = pod_ns else {
        return Ok(());
    };
    let path = ns.path().to_owned();
    let pod = Pod::connect(ns, &path)?;
    match pod.netlink.delete_link_group(group) {
        Err(e) if !e.is_not_found() => {
            return Err(Error::from(e).context("removing the attachment's links from the pod"))
        }
        _ => {}
    }
    // A link left by a release that did not group its links goes by name.
    if let Some(link) = pod
        .netlink
        .link_by_name(ifname)
        .context("looking up the pod's interface")?
    {
        pod.netlink
            .delete_link(link.index)
            .with_context(|| format!("removing {ifname} from the pod"))?;
    }
    Ok(())
}
