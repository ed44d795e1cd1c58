//! Soak: thousands of mixed ADD / DEL / CHECK calls, 16 at a time, on three networks that
//! share NODE1's `eth0` and one stateDir (interface mode + shim, interface mode + veth,
//! chained + shim), with a share of the calls SIGKILLed at a random moment and followed by
//! the runtime's DEL. Then every pod is deleted and GC runs: nothing may be left.
//!
//! Not part of `cargo test` (`#[ignore]`): scripts/soak.sh (`make soak`) runs it.
//! SOAK_CALLS (default 2000), SOAK_KILL_PERCENT (default 10), SOAK_SEED.

mod campaign;
mod common;

use campaign::*;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WORKERS: usize = 16;
const PODS_PER_NETWORK: usize = 12;

/// One pod slot: its namespace and, while attached, the result the runtime cached.
struct Slot {
    net: usize,
    /// Kept alive (its namespace) for as long as the slot.
    _pod: Pod,
    at: Attachment,
    attached: Mutex<Option<Value>>,
}

#[derive(Default)]
struct Stats {
    calls: BTreeMap<&'static str, usize>,
    killed: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64, one per worker.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
#[ignore = "long: run by scripts/soak.sh"]
fn soak_of_concurrent_calls_with_kills_leaves_nothing() {
    let total = env_or("SOAK_CALLS", 2000) as usize;
    let kill_percent = env_or("SOAK_KILL_PERCENT", 10);
    let seed = env_or("SOAK_SEED", 0x736f_616b);
    let lan = Lan::new();
    let plugin = Plugin::ours();
    let state = TempDir::new("soak-state");
    let data = TempDir::new("soak-data");
    let nets: Vec<Wired> = [
        ("soak-shim", Wiring::InterfaceShim),
        ("soak-veth", Wiring::InterfaceVeth),
        ("soak-chained", Wiring::ChainedShim),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, wiring))| {
        Wired::new(
            name,
            *wiring,
            state.path(),
            data.path(),
            range_for(i as u8),
            plugin.cni_path(),
        )
    })
    .collect();
    let slots: Vec<Slot> = (0..nets.len() * PODS_PER_NETWORK)
        .map(|i| {
            let pod = lan.pod(&format!("s{i}"));
            let at = Attachment::new(&pod);
            Slot {
                net: i % nets.len(),
                _pod: pod,
                at,
                attached: Mutex::new(None),
            }
        })
        .collect();
    let issued = AtomicUsize::new(0);
    let stats = Mutex::new(Stats::default());
    let start = Instant::now();

    std::thread::scope(|scope| {
        for worker in 0..WORKERS {
            let (nets, slots, issued, stats, lan) = (&nets, &slots, &issued, &stats, &lan);
            scope.spawn(move || {
                let mut rng = seed ^ (worker as u64).wrapping_mul(0x1000_0000_01b3);
                while issued.fetch_add(1, Ordering::Relaxed) < total {
                    // A slot no other worker is using.
                    let slot = loop {
                        let s = &slots[(next(&mut rng) % slots.len() as u64) as usize];
                        if let Ok(guard) = s.attached.try_lock() {
                            break (s, guard);
                        }
                    };
                    let (slot, mut attached) = slot;
                    let net = &nets[slot.net];
                    let kill = next(&mut rng) % 100 < kill_percent;
                    // A kill lands somewhere in the call: 2 to 80 ms after its start.
                    let limit = if kill {
                        Duration::from_millis(2 + next(&mut rng) % 79)
                    } else {
                        LIMIT
                    };
                    let check = attached.is_some() && next(&mut rng) % 3 == 0;
                    let verb: &'static str = match (&*attached, check) {
                        (None, _) => "ADD",
                        (Some(_), true) => "CHECK",
                        (Some(_), false) => "DEL",
                    };
                    let outcome = one_call(lan, net, slot, verb, attached.as_ref(), limit);
                    let mut s = stats.lock().unwrap();
                    *s.calls.entry(verb).or_insert(0) += 1;
                    match outcome {
                        CallEnd::Done(Ok(result)) => match verb {
                            "ADD" => *attached = Some(result.unwrap_or(Value::Null)),
                            "DEL" => *attached = None,
                            _ => {}
                        },
                        CallEnd::Done(Err(e)) => {
                            s.failures
                                .push(format!("{} {verb} {}: {e}", net.name, slot.at.container_id));
                            // Whatever it left, the runtime's DEL must remove.
                            drop(s);
                            recover(lan, net, slot, attached.as_ref(), stats);
                            *attached = None;
                        }
                        CallEnd::Killed => {
                            *s.killed.entry(verb).or_insert(0) += 1;
                            drop(s);
                            if verb != "CHECK" {
                                recover(lan, net, slot, attached.as_ref(), stats);
                                *attached = None;
                            }
                        }
                    }
                }
            });
        }
    });
    let soak_time = start.elapsed();

    // Everything deleted, then GC on every network keeping nothing.
    for slot in &slots {
        let attached = slot.attached.lock().unwrap();
        if attached.is_some() {
            let failures = nets[slot.net].del(&lan.node1, &slot.at, attached.as_ref());
            stats.lock().unwrap().failures.extend(failures);
        }
    }
    for net in &nets {
        let gc = net.gc(&lan.node1, &[]);
        if !gc.success() {
            stats
                .lock()
                .unwrap()
                .failures
                .push(format!("GC {}: {}", net.name, gc.stdout_text()));
        }
    }
    let left = leftovers(&lan.node1, &[state.path()], &[data.path()], &[]);
    let stats = stats.into_inner().unwrap();
    let calls: usize = stats.calls.values().sum();
    let killed: usize = stats.killed.values().sum();
    println!(
        "soak: {calls} calls ({:?}) by {WORKERS} workers on 3 networks in {:.0?}; {killed} killed ({:?}, {:.1} %), each followed by DEL",
        stats.calls,
        soak_time,
        stats.killed,
        100.0 * killed as f64 / calls.max(1) as f64
    );
    println!(
        "soak: {} failed calls, {} leftovers after DEL of every pod and GC: {:?}",
        stats.failures.len(),
        left.len(),
        count_by_kind(left.iter().map(|l| l.kind))
    );
    for f in stats.failures.iter().take(30) {
        println!("  failure: {f}");
    }
    for l in left.iter().take(30) {
        println!("  left: {}: {}", l.kind, l.what);
    }
    assert!(calls >= total, "only {calls} calls");
    assert!(
        stats.failures.is_empty() && left.is_empty(),
        "{} failed calls, leftovers {left:?}",
        stats.failures.len()
    );
}

enum CallEnd {
    /// Ok(result of ADD) or the failure.
    Done(Result<Option<Value>, String>),
    Killed,
}

/// One call of `verb` for `slot`, as libcni makes it (chained: the reference macvlan first on
/// ADD, last on DEL); only our plugin's call is subject to `limit`.
fn one_call(
    lan: &Lan,
    net: &Wired,
    slot: &Slot,
    verb: &'static str,
    cached: Option<&Value>,
    limit: Duration,
) -> CallEnd {
    let node = &lan.node1;
    let prev = match verb {
        "ADD" if net.wiring.chained() => match net.create_pod_link(node, &slot.at) {
            Ok(prev) => Some(prev),
            Err(e) => return CallEnd::Done(Err(e)),
        },
        "ADD" => None,
        _ => cached.cloned(),
    };
    let out = net.run(
        node,
        false,
        verb,
        &slot.at,
        &net.our_conf(prev.as_ref()),
        limit,
    );
    if out.status.is_none() {
        return CallEnd::Killed;
    }
    if !out.success() {
        return CallEnd::Done(Err(format!("{:?} {}", out.status, out.stdout_text())));
    }
    if verb == "DEL" {
        if let Some(conf) = net.creator_conf(prev.as_ref()) {
            let del = net.run(node, true, "DEL", &slot.at, &conf, LIMIT);
            if !del.success() {
                return CallEnd::Done(Err(format!("macvlan DEL: {}", del.stdout_text())));
            }
        }
    }
    CallEnd::Done(Ok((verb == "ADD").then(|| out.json())))
}

/// The runtime's DEL after a killed or failed call: with the cached result when there is one.
fn recover(lan: &Lan, net: &Wired, slot: &Slot, cached: Option<&Value>, stats: &Mutex<Stats>) {
    let failures = net.del(&lan.node1, &slot.at, cached);
    let mut s = stats.lock().unwrap();
    *s.calls.entry("DEL").or_insert(0) += 1;
    s.failures.extend(
        failures
            .into_iter()
            .map(|f| format!("{} recovery DEL {}: {f}", net.name, slot.at.container_id)),
    );
}
