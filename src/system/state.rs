//! Attachment records in `stateDir`: what this plugin set up for each (network, container,
//! interface), so that DEL, CHECK and GC work without prevResult and without the pod's
//! namespace.
//!
//! Layout (the directory is 0700, every file is written atomically by rename):
//! ```text
//! stateDir/lock                       the node lock (system::lock)
//! stateDir/attachments/<key>.json     one record per attachment
//! stateDir/owners/<ip>                the key of the attachment whose host route is <ip>/32
//! stateDir/users/<shim>/<key>         one marker per attachment that uses a shim
//! stateDir/ipam-versions/<plugin>     (plugin::ipam_versions) the version an IPAM binary speaks
//! ```
//! `owners` lets a late DEL of an old pod leave alone a route that a newer pod with the same
//! address owns now; `users` tells in O(1) whether a shim is still in use.

use std::fs;
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::{Mac, SysError, SysResult};

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
        // ".tmp<pid>": a marker or record that `write_atomically` has not renamed yet.
        let ifname_ok =
            super::names::validate_ifname(&key.ifname).is_ok() && !key.ifname.contains(".tmp");
        (plain(&key.network) && plain(&key.container_id) && ifname_ok).then_some(key)
    }

    /// The link group (IFLA_GROUP) of this attachment's links inside the pod, so that DEL
    /// deletes them in one request. Never 0, the group every link starts in.
    pub fn link_group(&self) -> u32 {
        (super::names::fnv1a(self.file_stem().as_bytes()) as u32).max(1)
    }
}

/// Which host-side datapath an attachment uses, with what it created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HostSide {
    Shim { name: String },
    Veth { name: String, pod_end: String },
}

/// Everything host access needs to make an attachment true again without its configuration
/// (`datapaths::attachment::reconcile_attachment`). Fields added after the first release have
/// serde defaults, so records written by an older version still read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Network, container and the pod's interface name.
    pub key: AttachmentKey,
    pub host_side: HostSide,
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
}

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

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self, key: &AttachmentKey) -> PathBuf {
        self.dir
            .join("attachments")
            .join(format!("{}.json", key.file_stem()))
    }

    pub fn load(&self, key: &AttachmentKey) -> SysResult<Option<Record>> {
        let path = self.record_path(key);
        match fs::read(&path) {
            // A record that cannot be read is as good as none: DEL must still succeed.
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)
                .inspect_err(|e| log::warn!("ignoring corrupt record {}: {e}", path.display()))
                .ok()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SysError::io(
                format!("reading record {}", path.display()),
                e,
            )),
        }
    }

    pub fn save(&self, record: &Record) -> SysResult<()> {
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| SysError::other(format!("serialising record: {e}")))?;
        write_atomically(&self.record_path(&record.key), &bytes)
    }

    pub fn remove(&self, key: &AttachmentKey) -> SysResult<()> {
        remove_file_if_present(&self.record_path(key))
    }

    /// Every record of `network` (GC).
    pub fn records_of(&self, network: &str) -> SysResult<Vec<Record>> {
        self.records_where(&format!("{network}:"))
    }

    /// Every record of this state directory, whatever its network (reconcile, diagnose).
    pub fn records(&self) -> SysResult<Vec<Record>> {
        self.records_where("")
    }

    fn records_where(&self, prefix: &str) -> SysResult<Vec<Record>> {
        let dir = self.dir.join("attachments");
        let mut records = Vec::new();
        for entry in read_dir(&dir)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) && name.ends_with(".json") {
                let bytes = fs::read(entry.path()).map_err(|e| {
                    SysError::io(format!("reading record {}", entry.path().display()), e)
                })?;
                match serde_json::from_slice::<Record>(&bytes) {
                    Ok(record) => records.push(record),
                    Err(e) => log::warn!("ignoring corrupt record {}: {e}", entry.path().display()),
                }
            }
        }
        Ok(records)
    }

    fn owner_path(&self, ip: IpAddr) -> PathBuf {
        self.dir.join("owners").join(ip.to_string())
    }

    pub fn set_owner(&self, ip: IpAddr, key: &AttachmentKey) -> SysResult<()> {
        write_atomically(&self.owner_path(ip), key.file_stem().as_bytes())
    }

    /// True when `key` owns the host route of `ip`.
    pub fn is_owner(&self, ip: IpAddr, key: &AttachmentKey) -> SysResult<bool> {
        let path = self.owner_path(ip);
        match fs::read_to_string(&path) {
            Ok(owner) => Ok(owner == key.file_stem()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SysError::io(format!("reading {}", path.display()), e)),
        }
    }

    pub fn clear_owner(&self, ip: IpAddr) -> SysResult<()> {
        remove_file_if_present(&self.owner_path(ip))
    }

    /// Clears every route ownership of `key`: for a DEL that has lost the record (and with it
    /// the list of addresses). Reads the whole owners directory, so only that rare path uses it.
    pub fn clear_owners_of(&self, key: &AttachmentKey) -> SysResult<()> {
        let stem = key.file_stem();
        for entry in read_dir(&self.dir.join("owners"))? {
            if fs::read_to_string(entry.path()).is_ok_and(|owner| owner == stem) {
                remove_file_if_present(&entry.path())?;
            }
        }
        Ok(())
    }

    fn users_dir(&self, shim: &str) -> PathBuf {
        self.dir.join("users").join(shim)
    }

    pub fn add_user(&self, shim: &str, key: &AttachmentKey) -> SysResult<()> {
        let dir = self.users_dir(shim);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| SysError::io(format!("creating {}", dir.display()), e))?;
        write_atomically(&dir.join(key.file_stem()), b"")
    }

    /// The attachments that use a shim (ADD that re-creates a shim restores theirs). Temporary
    /// files of an interrupted write are skipped.
    pub fn users(&self, shim: &str) -> SysResult<Vec<AttachmentKey>> {
        Ok(read_dir(&self.users_dir(shim))?
            .into_iter()
            .filter_map(|e| AttachmentKey::from_file_stem(&e.file_name().to_string_lossy()))
            .collect())
    }

    /// Removes the marker of `key`. None when `key` was no user of the shim (an ADD that never
    /// got as far as using it); otherwise whether the shim has no user left.
    pub fn remove_user(&self, shim: &str, key: &AttachmentKey) -> SysResult<Option<bool>> {
        let marker = self.users_dir(shim).join(key.file_stem());
        match fs::remove_file(&marker) {
            Ok(()) => self.has_no_users(shim).map(Some),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SysError::io(format!("removing {}", marker.display()), e)),
        }
    }

    pub fn has_no_users(&self, shim: &str) -> SysResult<bool> {
        let dir = self.users_dir(shim);
        match fs::read_dir(&dir) {
            Ok(mut entries) => Ok(entries.next().is_none()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
            Err(e) => Err(SysError::io(format!("reading {}", dir.display()), e)),
        }
    }

    /// Removes the (empty) users directory of a shim that no longer exists.
    pub fn forget_shim(&self, shim: &str) -> SysResult<()> {
        let dir = self.users_dir(shim);
        match fs::remove_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SysError::io(format!("removing {}", dir.display()), e)),
        }
    }

    /// The shims that have a users directory (GC looks for unused ones).
    pub fn known_shims(&self) -> SysResult<Vec<String>> {
        Ok(read_dir(&self.dir.join("users"))?
            .into_iter()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }
}

fn read_dir(dir: &Path) -> SysResult<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SysError::io(format!("reading {}", dir.display()), e)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(SysError::io(format!("reading {}", dir.display()), e)),
    }
}

/// Write to a temporary file beside the target, then rename: a reader never sees half a file,
/// and a crashed plugin leaves either the old or the new content. There is no fsync: what the
/// records describe (links, routes, namespaces) does not survive a reboot either, the default
/// stateDir is on tmpfs, and a record lost to a power cut only leaves what GC removes.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> SysResult<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        SysError::io(format!("writing {}", path.display()), e)
    })
}

fn remove_file_if_present(path: &Path) -> SysResult<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SysError::io(format!("removing {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (StateStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "mvh-state-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        (StateStore::open(&dir).unwrap(), dir)
    }

    fn record(id: &str) -> Record {
        Record {
            key: AttachmentKey {
                network: "lan".into(),
                container_id: id.into(),
                ifname: "eth0".into(),
            },
            host_side: HostSide::Shim {
                name: "mvh-eth0".into(),
            },
            master: "eth0".into(),
            master_index: 2,
            netns: "/run/netns/x".into(),
            pod_mac: "02:00:00:00:00:01".parse().unwrap(),
            pod_addresses: vec!["10.0.0.5/24".parse().unwrap()],
            node_addresses: vec!["10.0.0.1".parse().unwrap()],
            host_mac: "02:00:00:00:00:02".parse().unwrap(),
            host_routes: vec![],
            shim_addresses: vec![],
            link_group: None,
        }
    }

    #[test]
    fn a_record_of_the_previous_version_still_reads() {
        let old = r#"{
          "key": { "network": "lan", "container_id": "c1", "ifname": "eth0" },
          "hostSide": { "kind": "shim", "name": "mvh-eth0" },
          "master": "eth0", "masterIndex": 2, "netns": "/run/netns/x",
          "podMac": "02:00:00:00:00:01", "podAddresses": ["10.0.0.5/24"],
          "nodeAddresses": ["10.0.0.1"], "hostMac": "02:00:00:00:00:02", "hostRoutes": []
        }"#;
        let read: Record = serde_json::from_str(old).unwrap();
        assert_eq!(read, record("c1"));
    }

    #[test]
    fn records_round_trip_and_are_private() {
        let (store, dir) = temp_store();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let rec = record("c1");
        store.save(&rec).unwrap();
        assert_eq!(store.load(&rec.key).unwrap(), Some(rec.clone()));
        assert_eq!(store.records_of("lan").unwrap(), vec![rec.clone()]);
        assert!(store.records_of("other").unwrap().is_empty());
        let mut other = record("c2");
        other.key.network = "other".into();
        store.save(&other).unwrap();
        assert_eq!(store.records().unwrap().len(), 2);
        store.remove(&other.key).unwrap();
        store.remove(&rec.key).unwrap();
        store.remove(&rec.key).unwrap();
        assert_eq!(store.load(&rec.key).unwrap(), None);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_record_reads_as_none() {
        let (store, dir) = temp_store();
        let rec = record("c1");
        store.save(&rec).unwrap();
        fs::write(store.record_path(&rec.key), b"{ half a rec").unwrap();
        assert_eq!(store.load(&rec.key).unwrap(), None);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn ownership_moves_to_the_newest_attachment() {
        let (store, dir) = temp_store();
        let (old, new) = (record("old").key, record("new").key);
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        store.set_owner(ip, &old).unwrap();
        store.set_owner(ip, &new).unwrap();
        assert!(!store.is_owner(ip, &old).unwrap());
        assert!(store.is_owner(ip, &new).unwrap());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn keys_come_back_from_their_file_stems_and_temporary_files_do_not() {
        let key = record("c1").key;
        assert_eq!(AttachmentKey::from_file_stem(&key.file_stem()), Some(key));
        for bad in [
            "",
            "lan",
            "lan:c1",
            "lan:c1:eth0.tmp4242",
            "l/an:c1:eth0",
            "lan::eth0",
        ] {
            assert_eq!(AttachmentKey::from_file_stem(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_shim_is_unused_after_its_last_user_leaves() {
        let (store, dir) = temp_store();
        let (a, b) = (record("a").key, record("b").key);
        store.add_user("mvh-eth0", &a).unwrap();
        store.add_user("mvh-eth0", &b).unwrap();
        assert_eq!(store.users("mvh-eth0").unwrap().len(), 2);
        assert_eq!(store.remove_user("mvh-eth0", &a).unwrap(), Some(false));
        assert_eq!(store.users("mvh-eth0").unwrap(), vec![b.clone()]);
        assert_eq!(store.remove_user("mvh-eth0", &b).unwrap(), Some(true));
        assert_eq!(store.remove_user("mvh-eth0", &b).unwrap(), None);
        assert!(store.has_no_users("never-used").unwrap());
        fs::remove_dir_all(dir).unwrap();
    }
}
