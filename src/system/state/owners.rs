//! Route owners: `stateDir/owners/<ip>` holds the key of the attachment whose host route is
//! `<ip>`/32, so that a late DEL of an old pod leaves alone the route a newer pod owns now.

use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::PathBuf;

use super::files::{read_dir, read_regular, remove_file_if_present};
use super::{AttachmentKey, StateStore};
use crate::system::{SysError, SysResult};

impl StateStore {
    pub(super) fn owner_path(&self, ip: IpAddr) -> PathBuf {
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
}
