//! Attachments whose pod is provably gone, released without a DEL or GC.
//!
//! Under Multus no GC ever reaches a delegate, so an attachment whose DEL was missed would
//! stay forever: its /32 route keeps sending the node's traffic for the address into the shim
//! after IPAM has given the address to a pod elsewhere. Only `reconcile --watch` releases
//! them, and only on proof, because releasing a live pod's host side cuts the node off from
//! it. The proof, from the identity ADD recorded (`NetnsIdentity`):
//!
//! 1. the directory of the record's `netns` path is the very directory ADD saw (same device
//!    and inode): a container whose /run/netns is not the host's, or that cannot see it, can
//!    prove nothing;
//! 2. in it, the path is gone (the runtime removed the pod's namespace), or holds another
//!    namespace (the name was reused).
//!
//! A path that is still there but is no namespace (a bind mount this mount namespace does not
//! see, or a half-removed one) proves nothing either.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::datapaths::engine;
use crate::datapaths::node::Node;
use crate::system::state::{AttachmentKey, Record, StateStore};

/// Whether the record's pod namespace provably no longer exists.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Gone, and why we know.
    Gone(String),
    /// Not provably gone, and why not.
    Unknown(String),
}

pub fn verdict(record: &Record) -> Verdict {
    let unknown = |why: String| Verdict::Unknown(why);
    let Some(id) = record.netns_identity else {
        return unknown(
            "the record has no namespace identity (written by an older version)".into(),
        );
    };
    let path = Path::new(&record.netns);
    let Some(dir) = path.parent() else {
        return unknown(format!("{} has no directory", record.netns));
    };
    match std::fs::metadata(dir) {
        Ok(m) if (m.dev(), m.ino()) == (id.dir_dev, id.dir_ino) => {}
        Ok(_) => {
            return unknown(format!(
                "{} is not the directory the runtime used at ADD",
                dir.display()
            ))
        }
        Err(e) => return unknown(format!("{}: {e}", dir.display())),
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Verdict::Gone(format!(
            "{} was removed from {}",
            record.netns,
            dir.display()
        )),
        Err(e) => unknown(format!("{}: {e}", record.netns)),
        Ok(_) => match namespace_at(path) {
            Some(now) if now != (id.dev, id.ino) => {
                Verdict::Gone(format!("{} now holds another namespace", record.netns))
            }
            Some(_) => unknown(format!("{} still holds the pod's namespace", record.netns)),
            None => unknown(format!(
                "{} is there but is no namespace here",
                record.netns
            )),
        },
    }
}

/// The (device, inode) of the namespace mounted at `path`, when one is (nsfs).
fn namespace_at(path: &Path) -> Option<(u64, u64)> {
    let fs = nix::sys::statfs::statfs(path).ok()?;
    if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
        return None;
    }
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// An attachment the pass found unreachable: released when its pod is provably gone.
/// Ok(Some(proof)) when released, Ok(None) when not provably gone (or no longer recorded).
pub fn release_if_gone(
    node: &Node,
    store: &StateStore,
    key: &AttachmentKey,
) -> Result<Option<String>, String> {
    let Ok(Some(record)) = store.load(key) else {
        return Ok(None);
    };
    let proof = match verdict(&record) {
        Verdict::Gone(proof) => proof,
        Verdict::Unknown(_) => return Ok(None),
    };
    // The same release as GC's (under the node lock; a concurrent DEL's release of the same
    // record removes the same things, and missing is success).
    let errors = engine::detach(node, store, &record).finish(node);
    if errors.is_empty() {
        log::info!("{}: released: the pod is gone ({proof})", key.file_stem());
        Ok(Some(proof))
    } else {
        let messages: Vec<String> = errors.into_iter().map(|e| e.to_string()).collect();
        Err(format!(
            "releasing a gone pod's host side: {}",
            messages.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::state::NetnsIdentity;

    fn record_at(netns: &Path, identity: Option<NetnsIdentity>) -> Record {
        let text = format!(
            r#"{{"key": {{"network": "n", "container_id": "c", "ifname": "eth0"}},
            "hostSide": {{"kind": "shim", "name": "mvh-eth0"}}, "master": "eth0",
            "masterIndex": 2, "netns": {:?}, "podMac": "02:00:00:00:00:01",
            "podAddresses": [], "nodeAddresses": [], "hostMac": "02:00:00:00:00:02",
            "hostRoutes": []}}"#,
            netns.to_str().unwrap()
        );
        let mut record: Record = serde_json::from_str(&text).unwrap();
        record.netns_identity = identity;
        record
    }

    #[test]
    fn only_a_missing_path_in_the_same_directory_proves_anything() {
        let dir = std::env::temp_dir().join(format!("mvh-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Our own namespace stands in for the pod's: a file named like a runtime's.
        let own = std::fs::metadata("/proc/self/ns/net").unwrap();
        let dir_meta = std::fs::metadata(&dir).unwrap();
        let path = dir.join("cni-1234");
        let id = NetnsIdentity {
            dev: own.dev(),
            ino: own.ino(),
            dir_dev: dir_meta.dev(),
            dir_ino: dir_meta.ino(),
        };
        // Gone from the directory ADD saw.
        assert!(matches!(
            verdict(&record_at(&path, Some(id))),
            Verdict::Gone(_)
        ));
        // No identity: never.
        assert!(matches!(
            verdict(&record_at(&path, None)),
            Verdict::Unknown(_)
        ));
        // Another directory at the path (a container's own /run/netns).
        let other = NetnsIdentity {
            dir_ino: id.dir_ino + 1,
            ..id
        };
        assert!(matches!(
            verdict(&record_at(&path, Some(other))),
            Verdict::Unknown(_)
        ));
        // A file that is no namespace (an unmounted or invisible bind mount).
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(
            verdict(&record_at(&path, Some(id))),
            Verdict::Unknown(_)
        ));
        // The namespace itself, still there.
        let live = record_at(Path::new("/proc/self/ns/net"), None);
        let here = NetnsIdentity::observe(Path::new("/proc/self/ns/net"));
        let live = Record {
            netns_identity: here,
            ..live
        };
        assert!(matches!(verdict(&live), Verdict::Unknown(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
