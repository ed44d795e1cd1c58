//! The pod: its network namespace and a netlink connection inside it. The one handle every
//! datapath uses for the pod's side; what the pod's interface looks like is data in the plan.

use std::path::Path;

use crate::protocol::{code, CniError, CniResult};
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
    pub fn open(path: &Path, node_ns: &Netns, what: &str) -> CniResult<Pod> {
        let ns = Netns::open(path).map_err(|e| open_error(e, what))?;
        if ns.is_same(node_ns)? {
            return Err(CniError::env(format!(
                "{what} {} is the plugin's own network namespace, not a pod's",
                path.display()
            )));
        }
        Pod::with(ns, path)
    }

    /// For DEL: the pod if its namespace still exists, None when it is gone (nothing to clean
    /// inside it then).
    pub fn open_if_present(path: Option<&Path>, what: &str) -> CniResult<Option<Pod>> {
        let Some(path) = path else {
            return Ok(None);
        };
        match Netns::open(path) {
            Ok(ns) => Pod::with(ns, path).map(Some),
            Err(OpenError::Empty | OpenError::Missing(_) | OpenError::NotANamespace(_)) => Ok(None),
            Err(e) => Err(open_error(e, what)),
        }
    }

    fn with(ns: Netns, path: &Path) -> CniResult<Pod> {
        let netlink = Netlink::open_in(&ns)?;
        Ok(Pod {
            ns,
            netlink,
            path: path.display().to_string(),
        })
    }
}

fn open_error(e: OpenError, what: &str) -> CniError {
    match e {
        OpenError::Empty | OpenError::Missing(_) | OpenError::NotANamespace(_) => {
            CniError::new(code::UNKNOWN_CONTAINER, format!("{what}: {e}"))
        }
        OpenError::Io { .. } => CniError::new(code::IO_FAILURE, format!("{what}: {e}")),
    }
}
