//! CHECK: everything ADD made is still in place. The error names every missing piece.

use super::ipam::Ipam;
use super::{attachment_key, open_pod};
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
    let pod = open_pod(env, &node)?;
    if let Mode::Interface { ipam } = &conf.mode {
        let master = node.resolve_master(conf.master.as_deref())?;
        macvlan::verify(
            &pod.netlink,
            env.ifname(),
            conf.macvlan_mode,
            &master,
            &prev,
        )?;
        Ipam::new(env, conf, ipam).check()?;
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
    let drift = host_access::verify(&node, &record, Some(&pod))?;
    if drift.is_empty() {
        return Ok(());
    }
    let pieces: Vec<String> = drift.iter().map(ToString::to_string).collect();
    Err(CniError::internal(pieces.join("; ")))
}
