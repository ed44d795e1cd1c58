//! DEL: remove what ADD made. DEL must succeed whenever there is nothing left to remove (the
//! namespace, prevResult, record, shim or master already gone): a failing DEL would keep the
//! runtime from running the plugins behind this one, and their IP allocations would leak.

use super::ipam::Ipam;
use super::{attachment_key, pod_namespace_if_present};
use crate::datapaths::engine;
use crate::datapaths::host_access::{self, Released};
use crate::datapaths::host_path;
use crate::datapaths::node::Node;
use crate::datapaths::pod::Pod;
use crate::datapaths::shim::unrecorded::{self, Clues, Learned};
use crate::protocol::{
    CniError, CniResult, Command, Context, Environment, ErrorList, HostAccess, Mode, NetConf,
};
use crate::system::netlink::Link;
use crate::system::netns::Netns;
use crate::system::state::{AttachmentKey, Record, StateStore};

pub fn del(env: &Environment, conf: &NetConf) -> CniResult<()> {
    let node = Node::open()?;
    // Before anything else: a CNI_NETNS that is the node's own namespace is refused.
    let pod_ns = pod_namespace_if_present(env, &node)?;
    let key = attachment_key(env, conf);
    // Before anything is torn down: without a record, the pod's interface may be all that
    // tells what to remove.
    let host = HostTeardown::prepare(conf, &node, &key, env.ifname(), pod_ns.as_ref());
    let Mode::Interface { ipam } = &conf.mode else {
        return host.release(&node, &key).finish(&node).into_result();
    };
    // Interface mode: three independent teardowns run side by side. The IPAM plugin is a
    // process of its own; deleting the pod's links waits for an RCU grace period in the
    // kernel; the host side waits for the node lock. The allocation is released always, also
    // when the pod is gone.
    let ipam = Ipam::new(env, conf, ipam);
    let pending = ipam.start(Command::Del);
    let mut errors = std::thread::scope(|scope| {
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
    });
    errors.note(pending.and_then(|p| p.wait()));
    errors.into_result()
}

/// What DEL knows of the attachment's host access before it removes anything.
enum HostTeardown {
    /// `hostAccess: "none"` and nothing recorded.
    Nothing,
    Recorded(StateStore, Box<Record>),
    /// No record: what can be found without it, plus, for a shim, what prevResult or the pod
    /// told of the pod and of the shim it would have used.
    Unrecorded {
        store: StateStore,
        host_access: HostAccess,
        /// Boxed: a `Link` carries the link's whole IPv4/IPv6 configuration.
        learned: Option<Box<(Learned, (String, Link))>>,
    },
    Failed(CniError),
}

impl HostTeardown {
    fn prepare(
        conf: &NetConf,
        node: &Node,
        key: &AttachmentKey,
        ifname: &str,
        pod_ns: Option<&Netns>,
    ) -> HostTeardown {
        // Nothing is created: with nothing recorded, a missing or read-only stateDir is no
        // error.
        let store = StateStore::existing(&conf.state_dir);
        match store.load(key).context("reading the attachment record") {
            Ok(Some(record)) => HostTeardown::Recorded(store, Box::new(record)),
            Ok(None) if conf.host_access == HostAccess::None => HostTeardown::Nothing,
            Ok(None) => {
                let clues = Clues {
                    shim_name: conf.shim_name.as_deref(),
                    master: conf.master.as_deref(),
                    prev_result: conf.prev_result(),
                    ifname,
                    pod_ns,
                };
                let learned = host_path::learn_unrecorded(node, conf.host_access, &clues);
                HostTeardown::Unrecorded {
                    store,
                    host_access: conf.host_access,
                    learned,
                }
            }
            Err(e) => HostTeardown::Failed(e),
        }
    }

    /// Under the node lock; what must go after the lock is in the returned `Released`.
    fn release(self, node: &Node, key: &AttachmentKey) -> Released {
        match self {
            HostTeardown::Nothing => Released::nothing(),
            HostTeardown::Recorded(store, record) => engine::detach(node, &store, &record),
            HostTeardown::Unrecorded {
                store,
                host_access,
                learned,
            } => {
                // First, while the route owners are still there to ask.
                let learned_errors = learned
                    .map(|boxed| {
                        let (learned, shim) = *boxed;
                        unrecorded::release(node, &store, key, shim, &learned)
                    })
                    .unwrap_or_default();
                let mut released = host_access::release_unrecorded(node, &store, key, host_access);
                released.errors.append(learned_errors);
                released
            }
            HostTeardown::Failed(e) => Released::failed(e),
        }
    }
}

/// The pod's links of this attachment (its macvlan and, with veth, the pair's pod end) in one
/// request: the kernel waits for one grace period for all of them.
fn remove_pod_links(pod_ns: Option<Netns>, ifname: &str, group: u32) -> CniResult<()> {
    let Some(ns) = pod_ns else {
        return Ok(());
    };
    let path = ns.path().to_owned();
    let pod = Pod::connect(ns, &path)?;
    match pod.netlink.delete_link_group(group) {
        Err(e) if !e.is_not_found() => {
            return Err(CniError::from(e).context("removing the attachment's links from the pod"))
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
