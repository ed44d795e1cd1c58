//! How state files are written and read: atomically by rename through a temporary file,
//! regular files only; and the temporary files that killed writers leave, which DEL removes
//! by name and GC by scanning (see the module docs of `state`).

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{AttachmentKey, Record, StateStore};
use crate::system::{SysError, SysResult};

impl StateStore {
    /// Writes a file that is only ever written under the node lock (see the module docs).
    pub(super) fn write_locked(&self, target: &Path, bytes: &[u8]) -> SysResult<()> {
        write_atomically(target, &temp_path(target), bytes)
    }

    /// DEL, under the node lock: the temporary files a killed ADD of `record` can have left
    /// (its record, its shim marker, its route owners), removed by name; then the shim's users
    /// directory if it is empty. An ADD killed after creating that directory and before its
    /// marker was in place left it so, and the release, finding no marker of this attachment,
    /// did not remove it. Empty means no attachment of this `stateDir` uses the shim, and
    /// under the lock nobody is adding one.
    pub fn remove_temporaries_of(&self, record: &Record) -> SysResult<()> {
        let mut targets = vec![self.record_path(&record.key)];
        let shim = record.path.shared_shim();
        if let Some(name) = shim {
            targets.push(self.users_dir(name).join(record.key.file_stem()));
        }
        targets.extend(record.pod_addresses.iter().map(|a| self.owner_path(a.ip())));
        for target in targets {
            remove_file_if_present(&temp_path(&target))?;
        }
        match shim {
            Some(name) => self.forget_shim_if_unused(name),
            None => Ok(()),
        }
    }

    /// DEL without a record: the record an ADD was killed writing. One `stat` when there is
    /// none; the node lock only when there is one to remove.
    pub fn remove_record_temporary(&self, key: &AttachmentKey) -> SysResult<()> {
        let temp = temp_path(&self.record_path(key));
        if fs::symlink_metadata(&temp).is_err() {
            return Ok(());
        }
        let _lock = crate::system::lock::NodeLock::acquire()?;
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
pub(super) fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp"))
}

/// A temporary file of a locked write (see `temp_path`).
pub(super) fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

pub(super) fn read_dir(dir: &Path) -> SysResult<Vec<fs::DirEntry>> {
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
pub(super) fn write_atomically(path: &Path, tmp: &Path, bytes: &[u8]) -> SysResult<()> {
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
pub(super) fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
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

pub(super) fn remove_file_if_present(path: &Path) -> SysResult<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SysError::io(format!("removing {}", path.display()), e)),
    }
}
