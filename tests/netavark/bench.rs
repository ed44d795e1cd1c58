//! `make bench-podman` (scripts/bench-podman.sh; not part of `make test`): `podman run --rm`
//! of a trivial container on `-d macvlan-host` against podman's own `-d macvlan`, in one
//! runtime node, interleaved (the order alternates every round) so that the drift of a busy
//! machine cancels out of the ratio. Prints the medians, the ratio of the medians and the
//! median of the per-round ratios; asserts nothing about time.

use std::time::{Duration, Instant};

use crate::common::runtime_node::Suite;
use crate::common::*;
use crate::podman::Podman;

fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

fn suite() -> Suite {
    match std::env::var("BENCH_SUITE").as_deref() {
        Ok("sid") => Suite::Sid,
        _ => Suite::Trixie,
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

/// One `podman run --rm --network NETWORK IMAGE true`, timed from spawn to exit.
fn run_once(podman: &Podman, network: &str) -> Duration {
    let args = podman.run_args(&["--rm", "--network", network], &["true"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    podman.ok(&args);
    started.elapsed()
}

#[test]
#[ignore = "a benchmark: make bench-podman"]
fn bench_podman_run_rm() {
    let lan = Lan::new();
    let Some(podman) = Podman::start(suite(), &lan) else {
        return;
    };
    let ours = podman.create_network("ours", OUR_TYPE, false, &[]);
    assert!(ours.status.success(), "{ours:?}");
    let own = podman.create_network("own", "macvlan", false, &["parent=eth0"]);
    assert!(own.status.success(), "{own:?}");
    for _ in 0..3 {
        run_once(&podman, "ours");
        run_once(&podman, "own");
    }
    // The worst case first: each container is the shim's only user, so its setup creates and
    // hardens the shim and its teardown removes it. Then the usual case: another container
    // keeps the shim.
    interleaved(&podman, "sole user of the shim");
    podman.run("resident", "ours");
    interleaved(&podman, "shim kept by another container");
    podman.ok(&["rm", "-f", "-t", "0", "resident"]);
    assert_no_host_side(&lan.node1);
}

/// `rounds()` rounds of both drivers, the order alternating; prints the row.
fn interleaved(podman: &Podman, case: &str) {
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds() {
        let (x, y) = if round % 2 == 0 {
            let x = run_once(podman, "ours");
            (x, run_once(podman, "own"))
        } else {
            let y = run_once(podman, "own");
            (run_once(podman, "ours"), y)
        };
        let (x, y) = (x.as_secs_f64() * 1e3, y.as_secs_f64() * 1e3);
        a.push(x);
        b.push(y);
        ratios.push(x / y);
    }
    let (ma, mb) = (median(&mut a), median(&mut b));
    println!(
        "podman run --rm ({}, {case}, {} interleaved rounds, plugin {}):",
        suite().name(),
        a.len(),
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        },
    );
    println!("| network driver | median | p90 |");
    println!("|---|---|---|");
    println!(
        "| `-d macvlan-host` (shim) | {ma:.1} ms | {:.1} ms |",
        percentile(&mut a, 0.9)
    );
    println!(
        "| `-d macvlan` (podman's own) | {mb:.1} ms | {:.1} ms |",
        percentile(&mut b, 0.9)
    );
    println!(
        "ratio of the medians {:.3}x; median of the per-round ratios {:.3}x",
        ma / mb,
        median(&mut ratios)
    );
}
