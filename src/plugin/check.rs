//! CHECK: everything ADD made is still in place. The error names every missing piece.

use super::ipam::Ipam;
use super::{attachment_key, open_pod};
use crate::datapaths::engine;
use crate::datapaths::macvlan;
use crate::datapaths::node::Node;
use crate::datapaths::pod::Pod;
use crate::error::{Context, Error, Result};
use crate::protocol::result::CniOutput;
use crate::protocol::{Command, Environment, HostAccess, Mode, NetConf};
use crate::system::state::StateStore;

pub fn check(env: &Environment, conf: &NetConf) -> Result<()> {
    let prev = conf
        .prev_result()
        .ok_or_else(|| Error::config("CHECK needs prevResult: the result of ADD"))?;
    let prev = CniOutput::parse(prev, "prevResult")?;
    let Mode::Interface { ipam } = &conf.mode else {
        // The previous plugin checks the interface; here only that it is there at all.
        prev.pod_interface(env.ifname(), "prevResult")?;
        let node = Node::open()?;
        let pod = open_pod(env, &node)?;
        return check_host_access(env, conf, &node, &pod);
    };
    // The IPAM plugin checks its store while this process checks the kernel's side: two
    // processes at once, the IPAM plugin started first. Errors keep their order: the pod's
    // namespace, the interface, IPAM, host access.
    let ipam = Ipam::new(env, conf, ipam);
    let pending = ipam.start(Command::Check)?;
    let ours = Node::open().and_then(|node| {
        let pod = open_pod(env, &node)?;
        check_interface(env, conf, &node, &pod, &prev)?;
        Ok(check_host_access(env, conf, &node, &pod))
    });
    let ipam_outcome = pending.wait();
    let host = ours?;
    ipam_outcome?;
    host
}

/// Interface mode: the pod's macvlan, in the configured mode on the master, with every
/// address and route of the result.
fn check_interface(
    env: &Environment,
    conf: &NetConf,
    node: &Node,
    pod: &Pod,
    prev: &CniOutput,
) -> Result<()> {
    let master = node.resolve_master(conf.master.as_deref())?;
    macvlan::verify(&pod.netlink, env.ifname(), conf.macvlan_mode, &master, prev)
}

/// The node's path to the pod, against the attachment's record.
fn check_host_access(env: &Environment, conf: &NetConf, node: &Node, pod: &Pod) -> Result<()> {
    if conf.host_access == HostAccess::None {
        return Ok(());
    }
    let store = StateStore::open(&conf.state_dir).context("opening stateDir")?;
    let record = store
        .load(&attachment_key(env, conf))
        .context("reading the attachment record")?
        .ok_or_else(|| {
            Error::internal(format!(
                "no host-access record for container {} interface {} in {}",
                env.container_id(),
                env.ifname(),
                conf.state_dir.display()
            ))
        })?;
    let drift = engine::check(node, &store, &record, pod)?;
    if drift.is_empty() {
        return Ok(());
    }
    let pieces: Vec<String> = drift.iter().map(ToString::to_string).collect();
    Err(Error::internal(pieces.join("; ")))
}
