//! Attachment records in `stateDir`: what this plugin set up for each (network, container,
//! interface), so that DEL, CHECK and GC work without prevResult and without the pod's
//! namespace.
//!
//! Layout (the directory is 0700, every file is written atomically by rename):
//! ```text
//! stateDir/attachments/<key>.json     one record per attachment
//! stateDir/owners/<ip>                the key of the attachment whose host route is <ip>/32
//! stateDir/users/<shim>/<key>         one marker per attachment that uses a shim
//! stateDir/ipam-versions/<plugin>     (plugin::ipam_versions) the version an IPAM binary speaks
//! ```
//! A file is written as `.<name>.tmp` beside its target, then renamed (no real entry starts
//! with '.': keys start with a letter or digit, owners are addresses). Records, route owners
//! and shim users are written under the node lock, so that name is fixed: whoever holds the
//! lock and finds one knows its writer was killed, and DEL removes those of its attachment by
//! name (no directory scan). IPAM versions are written without the lock, as
//! `.<plugin>.tmp<pid>`. GC removes every temporary file whose writer is gone.
//! `owners` lets a late DEL of an old pod leave alone a route that a newer pod with the same
//! address owns now; `users` tells in O(1) whether a shim is still in use.

use std::fmt;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::{Mac, SysError, SysResult};

mod files;
mod owners;
mod records;
#[cfg(test)]
mod tests;
mod users;

use files::is_temporary;
pub use files::write_unlocked;

/// The identity of an attachment, as CNI defines it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttachmentKey {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
}

impl AttachmentKey {
    /// The file name of the record. Network names and container IDs are validated to
    /// `[A-Za-z0-9_.-]`, interface names contain no '/' or ':', so ':' separates unambiguously.
    pub fn file_stem(&self) -> String {
        format!("{}:{}:{}", self.network, self.container_id, self.ifname)
    }

    /// The key a `file_stem` was made from; None for any other name.
    pub fn from_file_stem(stem: &str) -> Option<AttachmentKey> {
        let mut parts = stem.splitn(3, ':');
        let key = AttachmentKey {
            network: parts.next()?.to_owned(),
            container_id: parts.next()?.to_owned(),
            ifname: parts.next()?.to_owned(),
        };
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        };
        // `.<name>.tmp`: a marker that a locked write has not renamed yet (see `temp_path`).
        let ifname_ok = super::names::validate_ifname(&key.ifname).is_ok();
        (!is_temporary(stem) && plain(&key.network) && plain(&key.container_id) && ifname_ok)
            .then_some(key)
    }

    /// The link group (IFLA_GROUP) of this attachment's links inside the pod, so that DEL
    /// deletes them in one request. Never 0, the group every link starts in.
    pub fn link_group(&self) -> u32 {
        (super::names::fnv1a(self.file_stem().as_bytes()) as u32).max(1)
    }
}

/// Which host path an attachment uses (`HostAccess` as it was made), with the names of the
/// devices it created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RecordedPath {
    Shim { name: String },
    Veth { name: String, pod_end: String },
}

impl RecordedPath {
    /// The shared shim this side uses, if any: it has one user marker per attachment, and
    /// what happens to it concerns every pod on it.
    pub fn shared_shim(&self) -> Option<&str> {
        match self {
            RecordedPath::Shim { name } => Some(name),
            RecordedPath::Veth { .. } => None,
        }
    }
}

/// "shim mvh-eth0" / "veth mvh0123... / host-eth0": the host side in operator output.
impl fmt::Display for RecordedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordedPath::Shim { name } => write!(f, "shim {name}"),
            RecordedPath::Veth { name, pod_end } => write!(f, "veth {name} / {pod_end}"),
        }
    }
}

/// Everything host access needs to make an attachment true again without its configuration
/// (`datapaths::engine::reconcile_attachment`). Fields added after the first release have
/// serde defaults, so records written by an older version still read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Network, container and the pod's interface name.
    pub key: AttachmentKey,
    /// The host path and its devices' names (`hostSide` in the records of every release).
    #[serde(rename = "hostSide")]
    pub path: RecordedPath,
    pub master: String,
    pub master_index: u32,
    /// The pod's network namespace (`CNI_NETNS` of ADD).
    pub netns: String,
    pub pod_mac: Mac,
    pub pod_addresses: Vec<IpNetwork>,
    /// The node addresses that the pod reaches through the host side (neighbour entries).
    pub node_addresses: Vec<IpAddr>,
    /// The MAC the pod's neighbour entries for the node point at.
    pub host_mac: Mac,
    pub host_routes: Vec<IpNetwork>,
    /// `shimAddresses` of the configuration: the shim's own addresses, and route sources.
    #[serde(default)]
    pub shim_addresses: Vec<IpNetwork>,
    /// The link group of the pod's interface when this plugin made it (interface mode): a
    /// veth's pod end joins it, so DEL removes both with one request.
    #[serde(default)]
    pub link_group: Option<u32>,
    /// The pod's interface name when it differs from `key.ifname`: Docker names the link
    /// inside the container only after the driver has joined it (`eth0`, `eth1`...), while
    /// the key, known at Join, carries the name the driver gave it on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ifname: Option<String>,
    /// The pod's namespace as ADD found it at `netns`: what `reconcile --watch` needs to prove
    /// the pod gone when no DEL or GC will come (Multus sends neither to a delegate). Absent
    /// in records of older versions: those are never released that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_identity: Option<NetnsIdentity>,
}

impl Record {
    /// The name of the pod's interface that host access reaches.
    pub fn pod_interface_name(&self) -> &str {
        self.pod_ifname.as_deref().unwrap_or(&self.key.ifname)
    }
}

/// A namespace (its nsfs device and inode) and the directory its path is in, identified by
/// device and inode: the same directory seen through a bind mount has the same pair, another
/// directory at the same path (a container's own /run/netns) has not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsIdentity {
    pub dev: u64,
    pub ino: u64,
    pub dir_dev: u64,
    pub dir_ino: u64,
}

impl NetnsIdentity {
    /// Two `stat`s; None when either fails (the path has no directory, or is gone already).
    pub fn observe(path: &Path) -> Option<NetnsIdentity> {
        use std::os::unix::fs::MetadataExt;
        let ns = fs::metadata(path).ok()?;
        let dir = fs::metadata(path.parent()?).ok()?;
        Some(NetnsIdentity {
            dev: ns.dev(),
            ino: ns.ino(),
            dir_dev: dir.dev(),
            dir_ino: dir.ino(),
        })
    }
}

#[derive(Clone, Debug)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// Opens (creating with mode 0700 when needed) the state directory.
    pub fn open(dir: &Path) -> SysResult<StateStore> {
        for sub in ["", "attachments", "owners", "users"] {
            let path = dir.join(sub);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(|e| {
                    SysError::io(format!("creating state directory {}", path.display()), e)
                })?;
        }
        Ok(StateStore {
            dir: dir.to_owned(),
        })
    }

    /// The state directory as it is, creating nothing: for DEL, which only reads and removes,
    /// and must succeed on a directory that is missing, empty or read-only when nothing of the
    /// attachment is recorded.
    pub fn existing(dir: &Path) -> StateStore {
        StateStore {
            dir: dir.to_owned(),
        }
    }
}
