//! The node-wide lock that serialises changes to shared host-side objects (the shim, the
//! routes and neighbour entries on it, the attachment records). ADD and DEL of different pods
//! run concurrently; everything they share is touched only while holding this lock.
//!
//! One lock per node, whatever `stateDir` says: networks with different state directories
//! share the shim of a master, so a lock inside `stateDir` would let one network's last DEL
//! remove the shim while another's ADD is using it. The node is the network namespace the
//! plugin runs in; its lock file is named by the namespace's device and inode, under a fixed
//! directory in /run (never under `stateDir`). Nodes in different namespaces on one machine
//! (tests) never wait for each other. The files are empty and stay: removing a lock file
//! that another call may have just opened would split the lock in two. Namespace inode
//! numbers are reused by the kernel, so their number stays bounded. The previous release
//! locked `stateDir/lock` instead; `legacy_lock` keeps old and new calls apart after an
//! upgrade and removes that file once no old call can use it.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::legacy_lock::{self, LegacyLocks};
use super::{SysError, SysResult};

/// Where the node locks live: tmpfs, gone with the namespaces at reboot.
pub const LOCK_DIR: &str = "/run/macvlan-host/node-locks";

/// Held until dropped; the kernel also releases it if the process dies.
pub struct NodeLock {
    _lock: Flock<File>,
    /// The previous release's `stateDir/lock`s, taken after the node lock while they exist
    /// (see `legacy_lock`).
    _legacy: Option<LegacyLocks>,
}

impl NodeLock {
    /// Blocks until the lock of the calling thread's network namespace (the node) is held
    /// exclusively, and with it the previous release's lock of each state directory of this
    /// call, as long as that exists.
    pub fn acquire() -> SysResult<NodeLock> {
        let ns = "/proc/thread-self/ns/net";
        let meta = std::fs::metadata(ns)
            .map_err(|e| SysError::io(format!("identifying the node's namespace {ns}"), e))?;
        let dir = Path::new(LOCK_DIR);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| SysError::io(format!("creating {}", dir.display()), e))?;
        let mut lock = NodeLock::acquire_at(&lock_path(dir, meta.dev(), meta.ino()))?;
        lock._legacy = Some(legacy_lock::take()?);
        Ok(lock)
    }

    /// Locks the file at `path`. Nothing planted there can make this wait for anything but
    /// the lock itself: the file is opened without blocking and without following a
    /// symlink, and must be a regular file.
    pub fn acquire_at(path: &Path) -> SysResult<NodeLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY)
            .open(path)
            .map_err(|e| SysError::io(format!("opening lock file {}", path.display()), e))?;
        let regular = file
            .metadata()
            .map_err(|e| SysError::io(format!("inspecting lock file {}", path.display()), e))?
            .is_file();
        if !regular {
            return Err(SysError::other(format!(
                "lock file {} is not a regular file: remove it",
                path.display()
            )));
        }
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| {
            SysError::io(format!("locking {}", path.display()), errno.into())
        })?;
        Ok(NodeLock {
            _lock: lock,
            _legacy: None,
        })
    }
}

/// The lock file of the namespace with this device and inode.
fn lock_path(dir: &Path, dev: u64, ino: u64) -> PathBuf {
    dir.join(format!("netns-{dev}-{ino}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mvh-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_fifo_at_the_lock_path_is_refused_at_once() {
        let dir = temp_dir("fifo");
        let path = dir.join("lock");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let started = Instant::now();
        let err = NodeLock::acquire_at(&path).err().expect("refused");
        assert!(started.elapsed() < Duration::from_secs(1));
        // Opened for writing without a reader, a FIFO fails with ENXIO at once; with a reader
        // it opens, and the type check refuses it.
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_at_the_lock_path_is_not_followed() {
        let dir = temp_dir("symlink");
        let target = dir.join("target");
        std::os::unix::fs::symlink(&target, dir.join("lock")).unwrap();
        assert!(NodeLock::acquire_at(&dir.join("lock")).is_err());
        assert!(!target.exists(), "nothing is created through the symlink");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_lock_excludes_a_second_holder_until_dropped() {
        let dir = temp_dir("exclusive");
        let path = dir.join("lock");
        let held = NodeLock::acquire_at(&path).unwrap();
        let second = {
            let path = path.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let _lock = NodeLock::acquire_at(&path).unwrap();
                start.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        drop(held);
        assert!(second.join().unwrap() >= Duration::from_millis(150));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_namespace_has_its_own_lock_file() {
        let dir = Path::new(LOCK_DIR);
        assert_ne!(lock_path(dir, 4, 4026531840), lock_path(dir, 4, 4026532000));
    }
}
