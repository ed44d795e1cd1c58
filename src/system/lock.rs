//! The node-wide lock that serialises changes to shared host-side objects (the shim, the
//! routes and neighbour entries on it, the attachment records). ADD and DEL of different pods
//! run concurrently; everything they share is touched only while holding this lock.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::{SysError, SysResult};

/// Held until dropped; the kernel also releases it if the process dies.
pub struct NodeLock {
    _lock: Flock<File>,
}

impl NodeLock {
    /// Blocks until the lock file `dir/lock` is held exclusively.
    pub fn acquire(dir: &Path) -> SysResult<NodeLock> {
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| SysError::io(format!("opening lock file {}", path.display()), e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| {
            SysError::io(format!("locking {}", path.display()), errno.into())
        })?;
        Ok(NodeLock { _lock: lock })
    }
}
