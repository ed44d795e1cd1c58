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
