//! The machine's cgroup directories that test runtimes create (containerd's pods, dockerd's
//! and podman's containers in a runtime node), named after the test process
//! (`/mvh-<pid>-<n>-...`) so that a run removes its own and a later run what a killed one left.

use super::netns::{entries, is_stale};
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// Where cgroup hierarchies are mounted (v1 controllers and the v2 `unified` one).
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup hierarchies: `/sys/fs/cgroup/<controller>` (v1) and `unified` (v2), or the
/// root itself on a pure v2 machine.
fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    entries(root)
        .into_iter()
        .map(|name| root.join(name))
        .filter(|p| p.is_dir() && !p.is_symlink())
        .collect()
}

/// Removes `parent` (a cgroup path like `/mvh-...`) from every hierarchy, innermost first.
/// A cgroup can be removed once its processes are gone, which can take a moment after a kill:
/// it retries for up to 5 s per hierarchy.
pub fn remove_cgroups(parent: &str) {
    for hierarchy in hierarchies() {
        let path = hierarchy.join(parent.trim_start_matches('/'));
        let deadline = Instant::now() + Duration::from_secs(5);
        while path.exists() && !rmdir_tree(&path) {
            if Instant::now() >= deadline {
                eprintln!("warning: cgroup {path:?} still busy, left behind");
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `rmdir` of a cgroup directory and every cgroup below it; whether it is gone.
fn rmdir_tree(path: &Path) -> bool {
    if let Ok(read) = fs::read_dir(path) {
        for entry in read.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                rmdir_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(path);
    !path.exists()
}

/// Removes, once per test binary, the cgroups that killed earlier runs left (named after a
/// test process that is gone).
pub fn remove_stale_cgroups() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for hierarchy in hierarchies() {
            for name in entries(&hierarchy).iter().filter(|n| is_stale(n)) {
                rmdir_tree(&hierarchy.join(name));
            }
        }
    });
}

/// The first child of process `pid` (e.g. the first process of a PID namespace that `unshare
/// --fork` made, or what `nsenter` forked), if it has one yet.
pub fn first_child(pid: u32) -> Option<u32> {
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}
