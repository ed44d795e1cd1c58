//! CHECK: everything ADD made is still in place. The error names the missing piece.

use super::ipam::Ipam;
use super::{attachment_key, Pod};
use crate::datapaths::host_access;
use crate::datapaths::macvlan;
use crate::datapaths::node::Node;
use crate::protocol::result::CniOutput;
use crate::protocol::{CniError, CniResult, Context, Environment, HostAccess, Mode, NetConf};
use crate::system::state::StateStore;

pub fn check(env: &Environment, conf: &NetConf) -> CniResult<()> {
    let prev = conf
        .prev_result()
        .ok_or_else(|| CniError::config("CHECK needs prevResult: the result of ADD"))?;
    let prev = CniOutput::parse(prev, "prevResult")?;
    let node = Node::open()?;
    let pod = Pod::open(env, &node.ns)?;
    if let Mode::Interface { .. } = conf.mode {
        let master = node.resolve_master(conf.master.as_deref())?;
        macvlan::verify(&pod.netlink, env.ifname(), conf, &master, &prev)?;
        Ipam::of(env, conf)
            .expect("interface mode always has ipam")
            .check()?;
    } else {
        // The previous plugin checks the interface; here only that it is there at all.
        prev.pod_interface(env.ifname(), "prevResult")?;
    }
    if conf.host_access == HostAccess::None {
        return Ok(());
    }
    let store = StateStore::open(&conf.state_dir).context("opening stateDir")?;
    let record = store
        .load(&attachment_key(env, conf))
        .context("reading the attachment record")?
        .ok_or_else(|| {
            CniError::internal(format!(
                "no host-access record for container {} interface {} in {}",
                env.container_id(),
                env.ifname(),
                conf.state_dir.display()
            ))
        })?;
    host_access::check(&node, &record, Some(&pod.netlink))
}
