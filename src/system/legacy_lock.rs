//! The lock of the release before the node lock: `stateDir/lock`, flocked by every call of
//! that release. After an upgrade, calls of the old binary may still be running (started
//! before the swap) or start later (an old `reconcile --watch` still deployed), and they lock
//! only that file. So, while the file exists, every call of this release takes it too, after
//! the node lock (old calls take no node lock: no deadlock), and old and new never change a
//! node at once. Nothing of the old release may stay, so a call removes the file once it can
//! prove that no old call can use it any more; until then it stays and is taken.
//!
//! The proof, made while holding the node lock and the old lock:
//! - we see every process: we are in the initial PID namespace (a containerised
//!   `reconcile --watch` is not; it only takes the old lock, the plugin's calls remove it);
//! - nobody else holds or waits for the file's lock: no other entry for its inode in
//!   `/proc/locks` (an old call waiting for it would lock the unlinked file, while new calls
//!   no longer take it);
//! - no other version of this program runs in this node (network namespace): no process
//!   with our name (`comm`) whose executable is not ours (`/proc/PID/exe`; an old binary
//!   replaced by `install` reads "... (deleted)"). Such a process could open (and re-create)
//!   the file later: an old call before its `open`, an old watcher between two passes.
//!
//! Only `readlink` and reads of procfs: nothing here can block on a file system. What stays
//! unproven: an old copy installed under another name that starts after the removal, or
//! that is between its `open` and its `flock` (consecutive calls) at that moment.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg};

use super::{SysError, SysResult};

/// The state directories of this call: registered once, before any lock is taken.
static STATE_DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();

/// The inode number `/proc/self/ns/pid` has in the initial PID namespace (the kernel's
/// `PROC_PID_INIT_INO`).
const INITIAL_PID_NS_INODE: u64 = 0xEFFF_FFFC;

/// Says which state directories this process works on (a CNI call: its `stateDir`; the
/// operator commands: their `--state-dir`s). Their old locks are taken with every node lock.
pub fn register_state_dirs(dirs: &[PathBuf]) {
    let _ = STATE_DIRS.set(dirs.to_vec());
}

/// The old locks held beside the node lock.
pub struct LegacyLocks {
    _held: Vec<Flock<File>>,
}

/// Called with the node lock held: takes `stateDir/lock` of every registered state
/// directory where it still exists, and removes it when provably unused.
pub fn take() -> SysResult<LegacyLocks> {
    let mut held = Vec::new();
    for dir in STATE_DIRS.get().into_iter().flatten() {
        let path = dir.join("lock");
        let Some(lock) = lock_if_present(&path)? else {
            continue;
        };
        if provably_unused(&lock) && still_at(&lock, &path) {
            match fs::remove_file(&path) {
                Ok(()) => log::info!(
                    "removed {}, the lock of the previous release: no call of it is left",
                    path.display()
                ),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => log::warn!("removing the old lock {}: {e}", path.display()),
            }
        }
        held.push(lock);
    }
    Ok(LegacyLocks { _held: held })
}

/// Locks `path` if it exists; never creates it. Like the node lock, it is opened without
/// blocking or following a symlink and must be a regular file.
fn lock_if_present(path: &Path) -> SysResult<Option<Flock<File>>> {
    let file = match OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY)
        .open(path)
    {
        Ok(file) => file,
        // No file, or no state directory (nothing there, or a file where it should be: the
        // verb says so on its own).
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(None)
        }
        Err(e) => {
            return Err(SysError::io(
                format!("opening the previous release's lock {}", path.display()),
                e,
            ))
        }
    };
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !regular {
        return Err(SysError::other(format!(
            "the previous release's lock {} is not a regular file: remove it",
            path.display()
        )));
    }
    Flock::lock(file, FlockArg::LockExclusive)
        .map(Some)
        .map_err(|(_, errno)| SysError::io(format!("locking {}", path.display()), errno.into()))
}

/// The locked file is still the one at `path` (so removing `path` removes it).
fn still_at(lock: &File, path: &Path) -> bool {
    match (lock.metadata(), fs::symlink_metadata(path)) {
        (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
        _ => false,
    }
}

/// See the module documentation: all three must hold.
fn provably_unused(lock: &File) -> bool {
    let Ok(meta) = lock.metadata() else {
        return false;
    };
    in_initial_pid_namespace()
        && no_other_lock_on(meta.dev(), meta.ino())
        && no_other_version_in_this_node()
}

fn in_initial_pid_namespace() -> bool {
    fs::metadata("/proc/self/ns/pid").is_ok_and(|m| m.ino() == INITIAL_PID_NS_INODE)
}

/// No line of `/proc/locks` (holders, and waiters marked `->`) names this inode, except our
/// own lock on it.
fn no_other_lock_on(dev: u64, ino: u64) -> bool {
    let Ok(text) = fs::read_to_string("/proc/locks") else {
        return false;
    };
    let me = std::process::id().to_string();
    let id = format!(
        "{:02x}:{:02x}:{ino}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    !text.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().filter(|f| *f != "->").collect();
        // "1: FLOCK ADVISORY WRITE <pid> <maj:min:ino> <start> <end>"
        fields.get(5) == Some(&id.as_str()) && fields.get(4) != Some(&me.as_str())
    })
}

/// No process in our network namespace runs a program of our name from another executable.
fn no_other_version_in_this_node() -> bool {
    let own = |what: &str| fs::read_link(format!("/proc/self/{what}")).ok();
    let (Some(exe), Some(net)) = (own("exe"), own("ns/net")) else {
        return false;
    };
    let Ok(comm) = fs::read_to_string("/proc/self/comm") else {
        return false;
    };
    let Ok(processes) = fs::read_dir("/proc") else {
        return false;
    };
    let me = std::process::id().to_string();
    for entry in processes.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let proc = entry.path();
        // A process that exits meanwhile is no other version.
        if fs::read_to_string(proc.join("comm")).ok().as_ref() != Some(&comm) {
            continue;
        }
        if fs::read_link(proc.join("ns/net")).ok().as_ref() != Some(&net) {
            continue;
        }
        match fs::read_link(proc.join("exe")) {
            Ok(other) if other == exe => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            // Another executable, or one we may not look at: it may be an old release.
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_held_by_another_process_is_seen_in_proc_locks() {
        let dir = std::env::temp_dir().join(format!("mvh-legacy-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lock");
        File::create(&path).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert!(no_other_lock_on(meta.dev(), meta.ino()), "nobody holds it");
        // `flock` (util-linux) holds it from another process (`-o`: itself, not its child).
        let mut holder = std::process::Command::new("flock")
            .arg("-o")
            .arg(&path)
            .args(["sleep", "5"])
            .spawn()
            .expect("flock(1)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while no_other_lock_on(meta.dev(), meta.ino()) {
            assert!(std::time::Instant::now() < deadline, "never seen");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        holder.kill().unwrap();
        holder.wait().unwrap();
        // Our own lock on it does not count.
        let own = lock_if_present(&path).unwrap().expect("present");
        assert!(no_other_lock_on(meta.dev(), meta.ino()));
        drop(own);
        fs::remove_dir_all(&dir).unwrap();
    }
}
