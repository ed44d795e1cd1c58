//! An upgrade from the previous release, whose calls locked `stateDir/lock` (this release
//! locks `/run/macvlan-host/node-locks/...`): while that file exists new calls take it too,
//! so an old call still running and a new one never change the node at once; once nothing
//! can use it any more, it is removed (issue 18, finding 6).

use super::common::*;
use super::{eventually, Process};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// How long the stand-in for an old call holds the old lock.
const HOLD: Duration = Duration::from_millis(1500);

/// The previous release's lock file, as its calls leave it: empty, in stateDir.
fn old_lock(net: &Net) -> std::path::PathBuf {
    let path = net.state_dir.join("lock");
    std::fs::write(&path, b"").expect("the old release's lock file");
    path
}

/// An old call in the middle of its work: `flock -o` (the lock held by the flock process
/// itself) in the node's namespace, holding the old lock for `HOLD`; returns once it holds it.
fn old_call(node: &Netns, lock: &Path) -> Process {
    let call = Process(
        node.command("flock")
            .arg("-o")
            .arg(lock)
            .args(["sleep", &format!("{}", HOLD.as_secs_f64())])
            .spawn()
            .expect("flock(1)"),
    );
    // Held once a non-blocking attempt fails.
    let held = eventually(Duration::from_secs(5), || {
        !node
            .command("flock")
            .arg("-n")
            .arg(lock)
            .arg("true")
            .status()
            .expect("flock -n")
            .success()
    });
    assert!(held, "the old call never took its lock");
    call
}

#[test]
fn after_an_upgrade_the_old_lock_file_is_removed() {
    let lan = Lan::new();
    let mut net = Spec::new(Chaining::Interface, Family::V4).build();
    let lock = old_lock(&net);
    let pod = lan.pod("upgraded");
    net.add(&lan.node1, &pod);
    assert!(
        !lock.exists(),
        "the previous release's lock is left in stateDir"
    );
    net.del(&lan.node1, &Attachment::new(&pod));
    assert!(!lock.exists(), "DEL re-created the old lock");
    net.assert_nothing_left(&lan.node1);
}

#[test]
fn a_new_call_waits_for_an_old_call_that_holds_the_old_lock() {
    let lan = Lan::new();
    let mut net = Spec::new(Chaining::Interface, Family::V4).build();
    let lock = old_lock(&net);
    let old = old_call(&lan.node1, &lock);
    let started = Instant::now();
    let pod = lan.pod("during");
    let ips = thread::scope(|scope| {
        let add = scope.spawn(|| net.add(&lan.node1, &pod));
        thread::sleep(HOLD / 2);
        assert!(
            !lan.node1.has_link(SHIM),
            "the new call changed the node while the old one held its lock"
        );
        add.join().expect("ADD")
    });
    let waited = started.elapsed();
    drop(old);
    assert!(
        waited >= HOLD - Duration::from_millis(300),
        "ADD took {waited:?}: it did not wait for the old call"
    );
    assert!(lan.node1.ping(&ips[0]), "node -> pod after the wait");
    assert!(
        !lock.exists(),
        "the old lock stays once the old call is gone"
    );
    net.del(&lan.node1, &Attachment::new(&pod));
    net.assert_nothing_left(&lan.node1);
}

/// An old `reconcile --watch` between two passes holds no lock, yet its next pass would open
/// (and re-create) the old lock: while a program of our name from another executable runs in
/// the node, the file is taken but stays. (A copy of `sleep` named `macvlan-host` plays it.)
#[test]
fn the_old_lock_stays_while_another_version_runs_in_the_node() {
    let lan = Lan::new();
    let mut net = Spec::new(Chaining::Interface, Family::V4).build();
    let lock = old_lock(&net);
    let dir = TempDir::new("old-release");
    let old_binary = dir.join("macvlan-host");
    // Copied by a child process: no descriptor of this test process ever writes it.
    let copied = std::process::Command::new("cp")
        .arg("/bin/sleep")
        .arg(&old_binary)
        .status()
        .expect("cp");
    assert!(copied.success());
    let old_watcher = Process(
        lan.node1
            .command(&old_binary)
            .arg("60")
            .spawn()
            .expect("the stand-in old watcher"),
    );
    // Running once nsenter has exec'd it.
    let comm = format!("/proc/{}/comm", old_watcher.0.id());
    let started = eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&comm).unwrap_or_default() == "macvlan-host\n"
    });
    assert!(started, "the stand-in never started");
    let pod = lan.pod("beside");
    net.add(&lan.node1, &pod);
    assert!(
        lock.exists(),
        "removed while an old version still runs in the node"
    );
    drop(old_watcher);
    net.del(&lan.node1, &Attachment::new(&pod));
    assert!(
        !lock.exists(),
        "the old lock stays after the old version is gone"
    );
    net.assert_nothing_left(&lan.node1);
}
