//! Attachment records: `stateDir/attachments/<key>.json`, one per attachment.

use std::io::ErrorKind;
use std::path::PathBuf;

use super::files::{read_dir, read_regular, remove_file_if_present};
use super::{AttachmentKey, Record, StateStore};
use crate::system::{SysError, SysResult};

impl StateStore {
    pub(super) fn record_path(&self, key: &AttachmentKey) -> PathBuf {
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

    /// The attachments recorded here, sorted, from the record files' names alone (no record
    /// is read: reconcile re-reads each under the node lock). None recorded when `stateDir`
    /// does not exist; created nothing.
    pub fn keys(&self) -> SysResult<Vec<AttachmentKey>> {
        let mut keys: Vec<AttachmentKey> = read_dir(&self.dir.join("attachments"))?
            .into_iter()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                AttachmentKey::from_file_stem(name.strip_suffix(".json")?)
            })
            .collect();
        keys.sort_by_key(AttachmentKey::file_stem);
        Ok(keys)
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
}
