//! The pod: its network namespace and a netlink connection inside it. The one handle every
//! datapath uses for the pod's side; what the pod's interface looks like is data in the plan.

use std::path::Path;

use crate::error::{Error, Kind, Result};
use crate::system::netlink::Netlink;
use crate::system::netns::{Netns, OpenError};

pub struct Pod {
    pub ns: Netns,
    pub netlink: Netlink,
    /// The path the namespace was opened from (`CNI_NETNS`, or a record's `netns`).
    pub path: String,
}

impl Pod {
    /// Opens the pod's namespace for ADD, CHECK and reconcile, refusing the plugin's own
    /// namespace: configuring the node as if it were a pod would take the node's networking
    /// apart. `what` names the source of the path in errors (e.g. "CNI_NETNS").
    pub fn open(path: &Path, node_ns: &Netns, what: &str) -> Result<Pod> {
        let ns = Netns::open(path).map_err(|e| open_error(e, what))?;
        refuse_node_namespace(&ns, node_ns, what)?;
        Pod::connect(ns, path)
    }

    /// For DEL: the pod's namespace if it still exists, None when it is gone (nothing to clean
    /// inside it then). The node's own namespace and anything that is no namespace at all are
    /// refused: DEL must never delete a link of the node through the pod path. Only the
    /// namespace is opened: chained DEL needs nothing inside it.
    pub fn namespace_if_present(
        path: Option<&Path>,
        node_ns: &Netns,
        what: &str,
    ) -> Result<Option<Netns>> {
        let Some(path) = path else {
            return Ok(None);
        };
        match Netns::open(path) {
            Ok(ns) => {
                refuse_node_namespace(&ns, node_ns, what)?;
                Ok(Some(ns))
            }
            Err(OpenError::Empty | OpenError::Missing(_) | OpenError::Unmounted(_)) => Ok(None),
            Err(e) => Err(open_error(e, what)),
        }
    }

    /// A netlink connection inside an opened pod namespace.
    pub fn connect(ns: Netns, path: &Path) -> Result<Pod> {
        let netlink = Netlink::open_in(&ns)?;
        Ok(Pod {
            ns,
            netlink,
            path: path.display().to_string(),
        })
    }
}

/// The pod path never leads into the node's own namespace (`/proc/self/ns/net`, or the node's
/// name under /run/netns): compared by device and inode, refused as an environment error (CNI code 4).
fn refuse_node_namespace(ns: &Netns, node_ns: &Netns, what: &str) -> Result<()> {
    if ns.is_same(node_ns)? {
        return Err(Error::env(format!(
            "{what} {} is the plugin's own network namespace, not a pod's",
            ns.path().display()
        )));
    }
    Ok(())
}

fn open_error(e: OpenError, what: &str) -> Error {
    match e {
        OpenError::Empty | OpenError::Missing(_) | OpenError::Unmounted(_) => {
            Error::new(Kind::UnknownContainer, format!("{what}: {e}"))
        }
        // A FIFO, socket, directory or another kind of namespace: never waited on, refused.
        OpenError::NotANamespace(_) => Error::env(format!("{what}: {e}")),
        OpenError::Io { .. } => Error::io(format!("{what}: {e}")),
    }
}
