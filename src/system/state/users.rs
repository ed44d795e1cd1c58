//! Shim users: `stateDir/users/<shim>/<key>`, one empty marker per attachment that uses a
//! shim, so whether a shim is still in use is one directory read.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use super::files::read_dir;
use super::{AttachmentKey, StateStore};
use crate::system::{SysError, SysResult};

impl StateStore {
    pub(super) fn users_dir(&self, shim: &str) -> PathBuf {
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

    /// Removes the users directory of a shim if it is empty; one with users stays.
    pub fn forget_shim_if_unused(&self, shim: &str) -> SysResult<()> {
        let dir = self.users_dir(shim);
        match fs::remove_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DirectoryNotEmpty) => {
                Ok(())
            }
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
