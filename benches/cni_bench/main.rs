//! `make bench`: macvlan-host against the reference plugins, on the LAN test bed of the
//! integration tests (tests/common). Run by `cargo bench --bench cni_bench` (scripts/bench.sh);
//! `cargo test --all-targets` builds it and runs nothing.
//!
//! Every row is measured in one run, with the compared variants interleaved (A, B, C, A, B, C,
//! ... with the starting variant rotating), so that the drift of a busy machine cancels out of
//! the ratios. Each plugin call is timed from spawn to reap: the driver enters the node's
//! namespace itself (`setns`, outside the timed region) and spawns the plugin directly, as a
//! runtime does, so no `nsenter` sits in the numbers. `wait4` also gives the call's CPU time and
//! peak RSS (the plugin's and its reaped children's, e.g. host-local).
//!
//! Everything lives in namespaces `mvh-<pid>-*` and directories that are removed on exit, also
//! on Ctrl-C (the handler only sets a flag; the next call unwinds and the guards clean up).
//!
//! Parts: `runner` (Ctrl-C, tmpfs state directories, timed plugin calls and ADD + DEL cycles),
//! `configs` (the configurations of every row), `statistics` (samples, percentiles, interleaved
//! rounds), `report` (markdown tables, targets, the machine description), `rows` (one module per
//! row of the report); this file runs the rows and writes the report.
//!
//! Environment: `BENCH_ITERATIONS` (default 100) scales every row; `BENCH_STATIC_BINARY` is the
//! static build whose size row 5 reports; `BENCH_OUTPUT` is the markdown file to update
//! (default docs/benchmarks.md; the part between the `bench:begin/end` markers is replaced);
//! `BENCH_ROWS` (default `1,1b,2,3,4,5`) picks rows; `BENCH_DAD_ROUNDS` (default 20) sets the
//! rounds of the dual-stack row; `BENCH_FLOOR_BINARY` is the floor program
//! (benches/kernel_floor.rs, built by bench.sh); `BENCH_TRACE=1` prints every call's time on stderr.

#[path = "../../tests/common/mod.rs"]
mod common;
mod configs;
mod report;
mod rows;
mod runner;
mod statistics;

use crate::common::*;
use crate::configs::*;
use crate::report::*;
use crate::rows::*;
use crate::runner::*;

use std::path::{Path, PathBuf};
use std::time::Instant;

fn main() {
    // cargo bench passes --bench; cargo test (--all-targets / --benches) does not: then there
    // is nothing to do, since benchmarks are not tests.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "cni_bench: run by `make bench` (cargo bench --bench cni_bench); nothing to do here"
        );
        return;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "the benchmark builds network namespaces: run it as root"
    );
    catch_interrupts();
    ShmDir::remove_stale();
    remove_stale_leftovers();

    let rounds = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let output = std::env::var_os("BENCH_OUTPUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md"));
    let started = Instant::now();
    let mut bench = Bench {
        runner: Runner::new(),
        rounds,
        report: Report::default(),
        targets: Vec::new(),
    };
    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    bench
        .report
        .line(&format!("Measured {date} on: {}.", machine_description()));
    bench.report.line(&format!(
        "Reference plugins: Debian containernetworking-plugins {}; macvlan-host {} (`{}`), timed as the {} build.",
        command_line(
            "dpkg-query",
            &["-W", "-f=${Version}", "containernetworking-plugins"]
        ),
        env!("CARGO_PKG_VERSION"),
        command_line(
            "git",
            &[
                "-C",
                env!("CARGO_MANIFEST_DIR"),
                "describe",
                "--always",
                "--dirty"
            ]
        ),
        if measured_binary() == Path::new(OUR_PLUGIN) {
            "release"
        } else {
            "static release"
        },
    ));
    let load_before = load_average();

    let lan = Lan::new();
    let lan_b = Lan::new();
    let main_dirs = NodeDirs::new("main");
    // One resident pod keeps the shim of node1: the steady state of a node that runs pods.
    let resident = lan.pod("resident");
    bench.attach(
        &lan.node1,
        &resident,
        &ours_interface(
            "shim",
            Some("eth0"),
            main_dirs.state.str(),
            main_dirs.data.str(),
        ),
    );
    let rows = std::env::var("BENCH_ROWS").unwrap_or_else(|_| "1,1b,2,3,4,5".into());
    let rows: Vec<&str> = rows.split(',').map(str::trim).collect();
    if rows.contains(&"5") {
        bench.footprint(&lan, &main_dirs);
    }
    if rows.contains(&"1") {
        bench.interface_mode(&lan, &lan_b, &main_dirs);
    }
    if rows.contains(&"1b") {
        bench.dual_stack(&lan, &main_dirs);
    }
    if rows.contains(&"2") {
        bench.chained(&lan, &main_dirs);
    }
    if rows.contains(&"4") {
        bench.concurrency(&lan, &lan_b, &main_dirs);
    }
    if rows.contains(&"3") {
        bench.scale();
    }

    bench.report.heading("Summary");
    let load_after = load_average();
    let targets = std::mem::take(&mut bench.targets);
    for (what, met) in &targets {
        bench.report.line(&format!(
            "- {}: {what}",
            if *met { "met" } else { "**MISSED**" }
        ));
    }
    bench.report.line("");
    bench.report.line(&format!(
        "Load average before / after: {load_before} / {load_after}; the whole run took {:.0} s.",
        started.elapsed().as_secs_f64()
    ));
    write_markdown(&output, bench.report.markdown.trim());
    println!("\nwrote {}", output.display());
}
