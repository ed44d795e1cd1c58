//! The CNI verbs. Each verb reads as a short list of steps; the steps live in `datapaths`.

mod add;
mod check;
mod del;
mod gc;
pub mod ipam;
mod status;

use std::path::Path;

use serde_json::Value;

use crate::protocol::version::version_reply;
use crate::protocol::{code, CniError, CniResult, Command, Environment, NetConf};
use crate::system::netlink::Netlink;
use crate::system::netns::{Netns, OpenError};
use crate::system::state::AttachmentKey;

/// Runs one call. `Ok(Some(result))` is printed on stdout; `Ok(None)` prints nothing.
/// `on_config` sees the parsed configuration before the verb runs (the binary sets up logging).
pub fn run(
    env: &Environment,
    stdin: &[u8],
    on_config: impl FnOnce(&NetConf),
) -> CniResult<Option<Value>> {
    if env.command == Command::Version {
        return Ok(Some(version_reply(stdin)));
    }
    let conf = NetConf::parse(stdin, env.command)?;
    on_config(&conf);
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

/// The pod's namespace and a netlink connection inside it.
struct Pod {
    ns: Netns,
    netlink: Netlink,
    path: String,
}

impl Pod {
    /// Opens CNI_NETNS for ADD and CHECK, refusing the plugin's own namespace: configuring the
    /// node as if it were a pod would take the node's networking apart.
    fn open(env: &Environment, node_ns: &Netns) -> CniResult<Pod> {
        let path = env.netns.as_deref().unwrap_or(Path::new(""));
        let ns = Netns::open(path).map_err(|e| match e {
            OpenError::Empty | OpenError::Missing(_) | OpenError::Unmounted(_) => {
                CniError::new(code::UNKNOWN_CONTAINER, format!("CNI_NETNS: {e}"))
            }
            OpenError::NotANamespace(_) => CniError::env(format!("CNI_NETNS: {e}")),
            OpenError::Io { .. } => CniError::new(code::IO_FAILURE, format!("CNI_NETNS: {e}")),
        })?;
        refuse_node_namespace(&ns, node_ns)?;
        Pod::connect(ns)
    }

    fn connect(ns: Netns) -> CniResult<Pod> {
        let netlink = Netlink::open_in(&ns)?;
        let path = ns.path().display().to_string();
        Ok(Pod { ns, netlink, path })
    }

    /// For DEL: the pod's namespace if it still exists, None when it is gone (nothing to clean
    /// inside it then). The node's own namespace and anything that is no namespace at all are
    /// refused: DEL must never delete a link of the node through the pod path.
    fn open_ns_if_present(env: &Environment, node_ns: &Netns) -> CniResult<Option<Netns>> {
        let Some(path) = env.netns.as_deref() else {
            return Ok(None);
        };
        match Netns::open(path) {
            Ok(ns) => {
                refuse_node_namespace(&ns, node_ns)?;
                Ok(Some(ns))
            }
            Err(OpenError::Empty | OpenError::Missing(_) | OpenError::Unmounted(_)) => Ok(None),
            Err(e @ OpenError::NotANamespace(_)) => Err(CniError::env(format!("CNI_NETNS: {e}"))),
            Err(e) => Err(CniError::new(code::IO_FAILURE, format!("CNI_NETNS: {e}"))),
        }
    }
}

/// The pod path never leads into the node's own namespace (`/proc/self/ns/net`, or the node's
/// name under /run/netns): every verb refuses it with code 4.
fn refuse_node_namespace(ns: &Netns, node_ns: &Netns) -> CniResult<()> {
    if ns.is_same(node_ns)? {
        return Err(CniError::env(format!(
            "CNI_NETNS {} is the plugin's own network namespace, not a pod's",
            ns.path().display()
        )));
    }
    Ok(())
}

/// Folds the errors of a cleanup that went on past failures into one error.
fn combine(errors: Vec<CniError>) -> CniResult<()> {
    let mut iter = errors.into_iter();
    let Some(first) = iter.next() else {
        return Ok(());
    };
    let rest: Vec<String> = iter.map(|e| e.msg).collect();
    if rest.is_empty() {
        Err(first)
    } else {
        Err(CniError::new(
            first.code,
            format!("{}; also: {}", first.msg, rest.join("; ")),
        ))
    }
}
