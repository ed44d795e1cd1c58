//! `macvlan-host reconcile --watch` (issue 12): running inside the node, it repairs every
//! disturbance on its own, goes quiet afterwards, exits 0 on SIGTERM, and never fights
//! concurrent ADD and DEL.

mod common;
mod host_repair;

use common::*;
use host_repair::*;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Generous: a repair normally takes milliseconds (see docs/benchmarks.md); this only bounds
/// a test that would otherwise hang.
const REPAIRED_WITHIN: Duration = Duration::from_secs(10);

#[test]
fn the_watcher_repairs_every_disturbance_on_its_own() {
    let mut bed = Bed::new();
    let logs = TempDir::new("watch-log");
    let mut watcher = Watcher::start(bed.node(), &[bed.state.path()], &logs, &["--interval", "1"]);
    for what in ALL {
        bed.disturb(what);
        bed.wait_until_healthy(&format!("{what:?}"), REPAIRED_WITHIN);
        bed.assert_works(&format!("after {what:?}"));
    }
    // No notification says that a sysctl changed: the periodic full pass repairs it.
    bed.unharden_shim();
    bed.wait_until_healthy("shim unhardened", REPAIRED_WITHIN);
    let log = watcher.log();
    assert!(
        log.contains("repaired"),
        "the watcher logs its repairs:\n{log}"
    );
    // A MAC change (the shim's, then the master's) costs one repair of the shim each, not a
    // fight: the watcher used to replace the shim 72 times in 8 s after a master MAC change.
    let mac_repairs = log.matches(&format!("set the MAC of shim {SHIM}")).count();
    assert!(
        (1..=4).contains(&mac_repairs),
        "{mac_repairs} MAC repairs of the shim:\n{log}"
    );

    // Converged: our own repairs cause notifications, which must not keep it busy.
    thread::sleep(Duration::from_millis(300));
    let before = watcher.cpu_ticks();
    thread::sleep(Duration::from_secs(2));
    let used = watcher.cpu_ticks() - before;
    assert!(
        used <= 10,
        "the idle watcher used {used} ticks in 2 s:\n{}",
        watcher.log()
    );

    let status = watcher.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM is a clean exit:\n{}",
        watcher.log()
    );
    bed.delete_all();
    assert_nothing_left(bed.node(), "after every pod's DEL");
}

/// Routes and permanent neighbour entries on the shim, by destination.
fn on_shim(node: &Netns) -> (Vec<String>, Vec<String>) {
    let mut routes = Vec::new();
    for family in ["-4", "-6"] {
        for r in node.routes(family) {
            if r["dev"] == SHIM {
                routes.push(r["dst"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    let neighbours = node
        .neigh()
        .into_iter()
        .filter(|n| n["dev"] == SHIM && n["state"].to_string().contains("PERMANENT"))
        .map(|n| n["dst"].as_str().unwrap_or_default().to_string())
        .collect();
    routes.sort();
    (routes, neighbours)
}

#[test]
fn the_watcher_does_not_fight_concurrent_add_and_del() {
    const WORKERS: usize = 4;
    const CYCLES: usize = 63; // 4 x 63 x (ADD + DEL) = 504 calls
    let lan = Lan::new();
    let state = TempDir::new("state");
    let data = TempDir::new("host-local");
    let logs = TempDir::new("watch-log");
    let mut conf = network("lan", "shim", 100, 129, &state, &data);
    // IPv4 only: the soak is about concurrency, and every call costs on a shared machine.
    conf["ipam"]["ranges"].as_array_mut().unwrap().pop();
    let plugin = Plugin::ours();

    // A pod that lives through the whole soak: the watcher must keep it reachable.
    let keeper = lan.pod("keeper");
    let keeper_at = Attachment::new(&keeper);
    let result = plugin
        .add(&lan.node1, &keeper_at, &conf)
        .expect_ok()
        .clone();
    let keeper_ips = pod_ips(&result);
    let mut watcher = Watcher::start(&lan.node1, &[state.path()], &logs, &[]);

    let soak_started = std::time::Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let failed_adds = thread::scope(|scope| {
        let disturber = scope.spawn(|| {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                // Each may find nothing to act on (the shim gone already): errors do not matter.
                let _ = match n % 3 {
                    0 => lan.node1.try_ip(["route", "flush", "dev", SHIM]),
                    1 => lan
                        .node1
                        .try_ip(["neigh", "flush", "dev", SHIM, "nud", "all"]),
                    _ => lan.node1.try_ip(["link", "del", SHIM]),
                };
                n += 1;
                thread::sleep(Duration::from_millis(100));
            }
            n
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (lan, conf, plugin) = (&lan, &conf, &plugin);
                scope.spawn(move || {
                    let pod = lan.pod(&format!("w{w}"));
                    let mut failed = 0;
                    for c in 0..CYCLES {
                        let mut at = Attachment::new(&pod);
                        at.container_id = format!("w{w}-{c}");
                        // An ADD may fail when the shim is deleted under it; the runtime
                        // then calls DEL, which must always succeed.
                        if !plugin.add(&lan.node1, &at, conf).success() {
                            failed += 1;
                        }
                        plugin.del(&lan.node1, &at, conf).expect_ok();
                    }
                    failed
                })
            })
            .collect();
        let failed: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
        done.store(true, Ordering::Relaxed);
        let disturbances = disturber.join().unwrap();
        assert!(
            disturbances >= 3,
            "the soak was disturbed ({disturbances} times)"
        );
        failed
    });
    eprintln!(
        "soak: {} calls in {:?}, {failed_adds} ADDs failed, watcher cpu {} ticks",
        WORKERS * CYCLES * 2,
        soak_started.elapsed(),
        watcher.cpu_ticks()
    );
    assert!(
        failed_adds < WORKERS * CYCLES / 2,
        "{failed_adds} of {} ADDs failed:\n{}",
        WORKERS * CYCLES,
        watcher.log()
    );

    // Only the keeper is left, reachable, and nothing of a deleted pod comes back.
    let start = std::time::Instant::now();
    let mut wanted: Vec<String> = keeper_ips.clone();
    wanted.sort();
    loop {
        let (routes, neighbours) = on_shim(&lan.node1);
        if routes == wanted && neighbours.len() == keeper_ips.len() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "on the shim: routes {routes:?}, neighbours {neighbours:?}; wanted the keeper's {wanted:?}\n{}",
            watcher.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        on_shim(&lan.node1).0,
        wanted,
        "a deleted pod's route came back"
    );
    for ip in &keeper_ips {
        assert!(lan.node1.ping(ip), "node -> keeper {ip}");
    }
    assert!(keeper.ping(NODE1_IP4), "keeper -> node");

    plugin.del(&lan.node1, &keeper_at, &conf).expect_ok();
    thread::sleep(Duration::from_millis(300));
    assert_nothing_left(&lan.node1, "after the soak");
    assert_eq!(host_local_allocations(data.path()), Vec::<String>::new());
    let records: Vec<Value> = std::fs::read_dir(state.join("attachments"))
        .unwrap()
        .map(|e| Value::String(e.unwrap().file_name().to_string_lossy().into_owned()))
        .collect();
    assert!(records.is_empty(), "records left: {records:?}");
    assert_eq!(
        watcher.stop_with("INT").code(),
        Some(0),
        "SIGINT is a clean exit too:\n{}",
        watcher.log()
    );
}

/// Two shim pods on NODE1 and a watcher with a full pass every second; `wrap` runs the
/// watcher's binary (e.g. in a mount namespace of its own).
struct StaleBed {
    lan: Lan,
    state: TempDir,
    _data: TempDir,
    logs: TempDir,
    conf: Value,
    pods: Vec<(Pod, Attachment, String)>,
}

impl StaleBed {
    fn new() -> StaleBed {
        let lan = Lan::new();
        let state = TempDir::new("state");
        let data = TempDir::new("host-local");
        let mut conf = network("lan", "shim", 100, 129, &state, &data);
        conf["ipam"]["ranges"].as_array_mut().unwrap().pop();
        let plugin = Plugin::ours();
        let pods = ["a", "b"]
            .iter()
            .map(|name| {
                let pod = lan.pod(name);
                let at = Attachment::new(&pod);
                let result = plugin.add(&lan.node1, &at, &conf).expect_ok().clone();
                (pod, at, pod_ips(&result)[0].clone())
            })
            .collect();
        StaleBed {
            lan,
            state,
            _data: data,
            logs: TempDir::new("watch-log"),
            conf,
            pods,
        }
    }

    fn watch(&self, cmd: std::process::Command) -> Watcher {
        Watcher::spawn(
            cmd,
            &[self.state.path()],
            &self.logs,
            &["--interval", "1", "--metrics-address", METRICS_ADDRESS],
        )
    }

    fn records(&self) -> usize {
        std::fs::read_dir(self.state.join("attachments"))
            .unwrap()
            .count()
    }

    fn routed(&self, ip: &str) -> bool {
        on_shim(&self.lan.node1).0.iter().any(|r| r == ip)
    }
}

#[test]
fn an_attachment_whose_pod_namespace_is_gone_is_released_without_del() {
    let mut bed = StaleBed::new();
    let watcher = bed.watch(bed.lan.node1.command(OUR_PLUGIN));
    // Pod a goes away without a DEL (Multus missed it, and no GC will come).
    let (gone, _, gone_ip) = bed.pods.remove(0);
    drop(gone);
    let start = std::time::Instant::now();
    while bed.routed(&gone_ip) || bed.records() != 1 {
        assert!(
            start.elapsed() < REPAIRED_WITHIN,
            "the gone pod's route or record stays:\n{}",
            watcher.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert!(watcher.log().contains("released: the pod is gone"));
    let metrics = scrape(&bed.lan.node1);
    assert_eq!(
        sample(&metrics, "macvlan_host_stale_attachments_released_total"),
        1.0
    );
    // The live pod keeps its route, its shim and its reachability.
    let (live, live_at, live_ip) = &bed.pods[0];
    assert!(bed.routed(live_ip));
    assert!(bed.lan.node1.ping(live_ip), "node -> live pod");
    assert!(live.ping(NODE1_IP4), "live pod -> node");
    // Its DEL removes the rest; nothing of the gone pod is left either.
    Plugin::ours()
        .del(&bed.lan.node1, live_at, &bed.conf)
        .expect_ok();
    assert_nothing_left(&bed.lan.node1, "after the live pod's DEL");
}

#[test]
fn a_pod_namespace_the_watcher_cannot_see_proves_nothing() {
    let mut bed = StaleBed::new();
    // One pod is really gone (no DEL); the other lives.
    let (gone, _, gone_ip) = bed.pods.remove(0);
    drop(gone);
    let (_, live_at, live_ip) = &bed.pods[0];
    let live_path = bed.pods[0].0.path();

    // A watcher whose /run/netns is an empty directory of its own (a container without the
    // host's) can prove nothing: neither pod is released.
    let mut own_dir = bed.lan.node1.command("unshare");
    own_dir.args(["--mount", "--propagation", "private", "sh", "-c"]);
    own_dir.args([
        "mount -t tmpfs none /run/netns && exec \"$@\"",
        "sh",
        OUR_PLUGIN,
    ]);
    let watcher = bed.watch(own_dir);
    thread::sleep(Duration::from_millis(3500)); // several full passes
    let log = watcher.log();
    assert!(
        log.contains("left alone") && !log.contains("released"),
        "{log}"
    );
    assert_eq!(bed.records(), 2, "{log}");
    assert!(bed.routed(&gone_ip) && bed.routed(live_ip));
    drop(watcher);

    // A watcher that sees the host's directory but not the live pod's mount in it (no
    // HostToContainer propagation): the gone pod is provably gone, the live one is not.
    let mut unmounted = bed.lan.node1.command("unshare");
    unmounted.args(["--mount", "--propagation", "private", "sh", "-c"]);
    unmounted.args([
        "umount \"$1\" && shift && exec \"$@\"",
        "sh",
        &live_path,
        OUR_PLUGIN,
    ]);
    let watcher = bed.watch(unmounted);
    let start = std::time::Instant::now();
    while bed.records() != 1 {
        assert!(start.elapsed() < REPAIRED_WITHIN, "{}", watcher.log());
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(2500)); // more full passes
    let log = watcher.log();
    assert!(log.contains("left alone"), "{log}");
    assert_eq!(log.matches("released: the pod is gone").count(), 1, "{log}");
    assert_eq!(bed.records(), 1);
    assert!(!bed.routed(&gone_ip) && bed.routed(live_ip));
    assert!(bed.lan.node1.ping(live_ip), "node -> live pod");
    drop(watcher);
    Plugin::ours()
        .del(&bed.lan.node1, live_at, &bed.conf)
        .expect_ok();
    assert_nothing_left(&bed.lan.node1, "after the live pod's DEL");
}
