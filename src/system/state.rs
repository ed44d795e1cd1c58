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
use std::io::{ErrorKind, Read, Write};
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

/// Which host-side datapath an attachment uses, with what it created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HostSide {
    Shim { name: String },
    Veth { name: String, pod_end: String },
}

impl HostSide {
    /// The shared shim this side uses, if any: it has one user marker per attachment, and
    /// what happens to it concerns every pod on it.
    pub fn shared_shim(&self) -> Option<&str> {
        match self {
            HostSide::Shim { name } => Some(name),
            HostSide::Veth { .. } => None,
        }
    }
}

/// "shim mvh-eth0" / "veth mvh0123... / host-eth0": the host side in operator output.
impl fmt::Display for HostSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostSide::Shim { name } => write!(f, "shim {name}"),
            HostSide::Veth { name, pod_end } => write!(f, "veth {name} / {pod_end}"),
        }
    }
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

    /// The state directory as it is, creating nothing: for DEL, which only reads and removes,
    /// and must succeed on a directory that is missing, empty or read-only when nothing of the
    /// attachment is recorded.
    pub fn existing(dir: &Path) -> StateStore {
        StateStore {
            dir: dir.to_owned(),
        }
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
        match read_regular(&path) {
            // A record that cannot be read is as good as none: DEL must still succeed.
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)
                .inspect_err(|e| log::warn!("ignoring corrupt record {}: {e}", path.display()))
                .ok()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                log::warn!("ignoring record {}: {e}", path.display());
                Ok(None)
            }
            Err(e) => Err(SysError::io(
                format!("reading record {}", path.display()),
                e,
            )),
        }
    }

    pub fn save(&self, record: &Record) -> SysResult<()> {
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| SysError::other(format!("serialising record: {e}")))?;
        self.write_locked(&self.record_path(&record.key), &bytes)
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
                let bytes = read_regular(&entry.path()).map_err(|e| {
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
        self.write_locked(&self.owner_path(ip), key.file_stem().as_bytes())
    }

    /// True when `key` owns the host route of `ip`.
    pub fn is_owner(&self, ip: IpAddr, key: &AttachmentKey) -> SysResult<bool> {
        let path = self.owner_path(ip);
        match read_regular(&path) {
            Ok(owner) => Ok(owner == key.file_stem().as_bytes()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SysError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// The key (file stem) that owns the host route of `ip`; None when nobody does.
    pub fn owner_of(&self, ip: IpAddr) -> SysResult<Option<String>> {
        let path = self.owner_path(ip);
        match read_regular(&path) {
            Ok(owner) => Ok(Some(String::from_utf8_lossy(&owner).into_owned())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
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
            if read_regular(&entry.path()).is_ok_and(|owner| owner == stem.as_bytes()) {
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
        self.write_locked(&dir.join(key.file_stem()), b"")
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

impl StateStore {
    /// Writes a file that is only ever written under the node lock (see the module docs).
    fn write_locked(&self, target: &Path, bytes: &[u8]) -> SysResult<()> {
        write_atomically(target, &temp_path(target), bytes)
    }

    /// DEL, under the node lock: the temporary files a killed ADD of `record` can have left
    /// (its record, its shim marker, its route owners), removed by name.
    pub fn remove_temporaries_of(&self, record: &Record) -> SysResult<()> {
        let mut targets = vec![self.record_path(&record.key)];
        if let Some(name) = record.host_side.shared_shim() {
            targets.push(self.users_dir(name).join(record.key.file_stem()));
        }
        targets.extend(record.pod_addresses.iter().map(|a| self.owner_path(a.ip())));
        for target in targets {
            remove_file_if_present(&temp_path(&target))?;
        }
        Ok(())
    }

    /// DEL without a record: the record an ADD was killed writing. One `stat` when there is
    /// none; the node lock only when there is one to remove.
    pub fn remove_record_temporary(&self, key: &AttachmentKey) -> SysResult<()> {
        let temp = temp_path(&self.record_path(key));
        if fs::symlink_metadata(&temp).is_err() {
            return Ok(());
        }
        let _lock = super::lock::NodeLock::acquire()?;
        remove_file_if_present(&temp)
    }

    /// GC, under the node lock: every temporary file whose writer is gone. Locked writes have
    /// no live writer while the lock is held; an IPAM version's names its writer's pid.
    pub fn remove_dead_temporaries(&self) -> SysResult<()> {
        let mut dirs = vec![self.dir.join("attachments"), self.dir.join("owners")];
        dirs.extend(
            self.known_shims()?
                .into_iter()
                .map(|shim| self.users_dir(&shim)),
        );
        let mut temporaries = Vec::new();
        for dir in &dirs {
            temporaries.extend(
                read_dir(dir)?
                    .into_iter()
                    .filter(|e| is_temporary(&e.file_name().to_string_lossy())),
            );
        }
        for entry in read_dir(&self.dir.join("ipam-versions"))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let writer = name
                .strip_prefix('.')
                .and_then(|rest| rest.rsplit_once(".tmp"))
                .and_then(|(_, pid)| pid.parse::<u32>().ok());
            if writer.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                temporaries.push(entry);
            }
        }
        for entry in temporaries {
            remove_file_if_present(&entry.path())?;
        }
        Ok(())
    }
}

/// `.<name>.tmp` beside `target`.
fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp"))
}

/// A temporary file of a locked write (see `temp_path`).
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
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

/// Writes a file that other calls write at the same time without the node lock (the IPAM
/// version cache): its temporary name `.<name>.tmp<pid>` keeps the writers apart, and GC
/// removes it once that pid is gone.
pub fn write_unlocked(path: &Path, bytes: &[u8]) -> SysResult<()> {
    let mut temp = temp_path(path).into_os_string();
    temp.push(std::process::id().to_string());
    write_atomically(path, Path::new(&temp), bytes)
}

/// Write to a temporary file, then rename: a reader never sees half a file, and a crashed
/// plugin leaves either the old or the new content (and a temporary file that DEL or GC
/// removes). There is no fsync: what the records describe (links, routes, namespaces) does not
/// survive a reboot either, the default stateDir is on tmpfs, and a record lost to a power cut
/// only leaves what GC removes.
fn write_atomically(path: &Path, tmp: &Path, bytes: &[u8]) -> SysResult<()> {
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(tmp)?;
        file.write_all(bytes)?;
        fs::rename(tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(tmp);
        SysError::io(format!("writing {}", path.display()), e)
    })
}

/// Reads a regular file. Anything else (a FIFO, a device) is refused with `InvalidData`
/// instead of being waited on: whatever lies in stateDir, a call ends.
fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
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
    fn temporaries_of_killed_writers_are_found_by_name_and_by_gc() {
        let (store, dir) = temp_store();
        let rec = record("killed");
        let ip = rec.pod_addresses[0].ip();
        store.add_user("mvh-eth0", &record("other").key).unwrap();
        let record_temp = temp_path(&store.record_path(&rec.key));
        let owner_temp = temp_path(&store.owner_path(ip));
        let user_temp = temp_path(&store.users_dir("mvh-eth0").join(rec.key.file_stem()));
        for temp in [&record_temp, &owner_temp, &user_temp] {
            fs::write(temp, b"half").unwrap();
        }
        assert_eq!(
            record_temp,
            dir.join("attachments/.lan:killed:eth0.json.tmp")
        );
        assert_eq!(store.users("mvh-eth0").unwrap(), vec![record("other").key]);
        store.remove_temporaries_of(&rec).unwrap();
        for temp in [&record_temp, &owner_temp, &user_temp] {
            assert!(!temp.exists(), "{temp:?} left");
        }
        fs::write(&record_temp, b"half").unwrap();
        store.remove_record_temporary(&rec.key).unwrap();
        assert!(!record_temp.exists());

        // GC: a locked write's leftover always goes; an IPAM version's only once its writer
        // (this test process, for now) is gone. Real entries stay.
        for temp in [&record_temp, &owner_temp, &user_temp] {
            fs::write(temp, b"half").unwrap();
        }
        let versions = dir.join("ipam-versions");
        fs::create_dir_all(&versions).unwrap();
        write_unlocked(&versions.join("host-local"), b"x 1.0.0").unwrap();
        let live = versions.join(format!(".host-local.tmp{}", std::process::id()));
        let dead = versions.join(format!(".host-local.tmp{}", u32::MAX));
        fs::write(&live, b"").unwrap();
        fs::write(&dead, b"").unwrap();
        store.remove_dead_temporaries().unwrap();
        for temp in [&record_temp, &owner_temp, &user_temp, &dead] {
            assert!(!temp.exists(), "{temp:?} left");
        }
        assert!(live.exists());
        assert!(!store.has_no_users("mvh-eth0").unwrap());
        assert!(versions.join("host-local").exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_fifo_in_the_state_directory_is_no_record_and_never_waited_on() {
        let (store, dir) = temp_store();
        let key = record("fifo").key;
        nix::unistd::mkfifo(&store.record_path(&key), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(store.load(&key).unwrap(), None);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_existing_store_creates_nothing() {
        let dir = std::env::temp_dir().join(format!("mvh-state-absent-{}", std::process::id()));
        let store = StateStore::existing(&dir);
        let key = record("x").key;
        assert_eq!(store.load(&key).unwrap(), None);
        store.clear_owners_of(&key).unwrap();
        store.remove_record_temporary(&key).unwrap();
        store.remove(&key).unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn keys_come_back_from_their_file_stems_and_temporary_files_do_not() {
        let key = record("c1").key;
        assert_eq!(AttachmentKey::from_file_stem(&key.file_stem()), Some(key));
        for bad in [
            "",
            "lan",
            "lan:c1",
            ".lan:c1:eth0.tmp",
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
