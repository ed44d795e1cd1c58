//! The CNI verbs. Each verb reads as a short list of named steps; the steps live in
//! `datapaths` (and IPAM delegation in `ipam`).

mod add;
mod check;
mod del;
mod gc;
pub mod ipam;
mod ipam_versions;
pub(crate) mod rollback;
mod status;

use std::path::Path;

use serde_json::Value;

use crate::datapaths::node::Node;
use crate::datapaths::pod::Pod;
use crate::error::Result;
use crate::protocol::version::version_reply;
use crate::protocol::{Command, Environment, NetConf};
use crate::system::legacy_lock;
use crate::system::netns::Netns;
use crate::system::state::AttachmentKey;

/// Runs one call. `Ok(Some(result))` is printed on stdout; `Ok(None)` prints nothing.
/// `on_config` sees the parsed configuration before the verb runs (the binary sets up logging).
pub fn run(
    env: &Environment,
    stdin: &[u8],
    on_config: impl FnOnce(&NetConf),
) -> Result<Option<Value>> {
    if env.command == Command::Version {
        return Ok(Some(version_reply(stdin)));
    }
    let conf = NetConf::parse(stdin, env.command)?;
    on_config(&conf);
    legacy_lock::register_state_dirs(std::slice::from_ref(&conf.state_dir));
    log::debug!(
        "configuration: {}",
        serde_json::Value::Object(conf.raw.clone())
    );
    match env.command {
        Command::Add => add::add(env, &conf).map(Some),
        Command::Del => del::del(env, &conf).map(|()| None),
        Command::Check => check::check(env, &conf).map(|()| None),
        Command::Gc => gc::gc(env, &conf).map(|()| None),
        Command::Status => status::status(&conf).map(|()| None),
        Command::Version => unreachable!("answered above"),
    }
}

fn attachment_key(env: &Environment, conf: &NetConf) -> AttachmentKey {
    AttachmentKey {
        network: conf.name.clone(),
        container_id: env.container_id().to_owned(),
        ifname: env.ifname().to_owned(),
    }
}

/// The pod of `CNI_NETNS`, for ADD and CHECK (never the plugin's own namespace).
fn open_pod(env: &Environment, node: &Node) -> Result<Pod> {
    let path = env.netns.as_deref().unwrap_or(Path::new(""));
    Pod::open(path, &node.ns, "CNI_NETNS")
}

/// The pod's namespace of `CNI_NETNS` for DEL: None when it is gone; never the node's own.
fn pod_namespace_if_present(env: &Environment, node: &Node) -> Result<Option<Netns>> {
    Pod::namespace_if_present(env.netns.as_deref(), &node.ns, "CNI_NETNS")
}
