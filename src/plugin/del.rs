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
use crate::system::state::StateStore;

pub fn del(env: &Environment, conf: &NetConf) -> CniResult<()> {
    let node = Node::open()?;
    let Mode::Interface { .. } = conf.mode else {
        return combine(release_host_access(env, conf, &node));
    };
    // Interface mode: three independent teardowns run side by side. The IPAM plugin is a
    // process of its own; deleting the pod's macvlan waits for an RCU grace period in the
    // kernel; the host side waits for the node lock. The allocation is released always, also
    // when the pod is gone.
    let ipam = Ipam::of(env, conf).expect("interface mode always has ipam");
    let pending = ipam.start(Command::Del);
    let mut errors = std::thread::scope(|scope| {
        let pod_link = scope.spawn(|| remove_pod_link(env));
        let mut errors = release_host_access(env, conf, &node);
        match pod_link.join() {
            Ok(result) => errors.extend(result.err()),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        errors
    });
    errors.extend(pending.and_then(|p| p.wait()).err());
    combine(errors)
}

fn release_host_access(env: &Environment, conf: &NetConf, node: &Node) -> Vec<CniError> {
    let key = attachment_key(env, conf);
    let store = match StateStore::open(&conf.state_dir).context("opening stateDir") {
        Ok(store) => store,
        Err(e) => return vec![e],
    };
    match store.load(&key).context("reading the attachment record") {
        Ok(Some(record)) => host_access::detach(node, &store, &record),
        // No record: nothing was set up, or the record was lost. What can be found without it
        // goes: route ownerships of this attachment, and a veth's node end by its derived name.
        Ok(None) if conf.host_access == HostAccess::None => Vec::new(),
        Ok(None) => {
            let mut errors: Vec<CniError> = store
                .clear_owners_of(&key)
                .err()
                .map(CniError::from)
                .into_iter()
                .collect();
            if conf.host_access == HostAccess::Veth {
                match node.netlink.link_by_name(&veth::host_end_name(&key)) {
                    Ok(Some(link)) => errors.extend(
                        node.netlink
                            .delete_link(link.index)
                            .err()
                            .map(CniError::from),
                    ),
                    Ok(None) => {}
                    Err(e) => errors.push(e.into()),
                }
            }
            errors
        }
        Err(e) => vec![e],
    }
}

fn remove_pod_link(env: &Environment) -> CniResult<()> {
    let Some(pod) = Pod::open_if_present(env)? else {
        return Ok(());
    };
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
