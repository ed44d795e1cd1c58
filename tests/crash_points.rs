//! Crash consistency: ADD is killed (SIGKILL) at its syscalls that change state, then the
//! runtime's recovery runs (DEL, with or without prevResult, then GC listing only the pods
//! that still live), and nothing may be left: no link, route, permanent neighbour, record,
//! temporary file or IP allocation, and a shim that stays (another pod uses it) is fully
//! hardened.
//!
//! Kill points come from `strace -f -e inject=SYSCALL:signal=KILL:when=N`: the N-th call of
//! SYSCALL by any one thread or child (strace counts per tracee) gets SIGKILL on entry, so
//! the call never happens. A traced run first lists the calls of one ADD. (strace 6.1 does not
//! inject with `--seccomp-bpf`, so the kill runs trace without it.)
//!
//! Scenarios: interface+shim, interface+veth, chained+shim, chained+veth, each alone, with
//! another pod of the same network added before (GC keeps it; it must stay intact), and with
//! another pod added right after the crash (it reuses what the crash left: a shim must be
//! whole).
//!
//! `cargo test --test crash_points` samples the points that change state (deterministically,
//! `CRASH_POINTS_PER_SCENARIO`, default 16); `CRASH_SWEEP=full` (scripts/crash-sweep.sh,
//! `make crash-sweep`) tries every call of every syscall below, each with both DELs.

mod campaign;
mod common;

use campaign::*;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

/// The syscalls that change state: netlink requests, files of stateDir and /proc/sys,
/// starting the IPAM plugin, the node lock.
const SYSCALLS: &[&str] = &[
    "sendto",
    "sendmsg",
    "openat",
    "write",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "unlink",
    "unlinkat",
    "flock",
    "clone",
    "clone3",
    "vfork",
    "execve",
];

const NETWORK: &str = "crash";

/// One place to kill ADD: the `n`-th call of `syscall` (per thread or process).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Point {
    syscall: String,
    n: u32,
}

/// What the traced run says about the calls of one ADD.
struct Trace {
    /// Per syscall, the highest count any tracee reached.
    max: BTreeMap<String, u32>,
    /// Calls of the plugin itself (not its IPAM child) that change state, by category.
    changing: BTreeMap<&'static str, BTreeSet<Point>>,
}

/// Which kind of state-changing call a strace line (of the plugin) is, if any.
fn category(syscall: &str, line: &str) -> Option<&'static str> {
    match syscall {
        "sendto" | "sendmsg"
            if ["RTM_NEW", "RTM_DEL", "RTM_SET"]
                .iter()
                .any(|t| line.contains(t)) =>
        {
            Some("netlink")
        }
        "openat" if line.contains("/proc/sys/") && !line.contains("O_RDONLY") => Some("sysctl"),
        "openat" if line.contains("O_CREAT") => Some("state"),
        // Writes to stdout/stderr are output, not state.
        "write" if !line.starts_with("write(1<") && !line.starts_with("write(2<") => {
            if line.contains("/proc/sys/") {
                Some("sysctl")
            } else {
                Some("state")
            }
        }
        "rename" | "renameat" | "renameat2" | "mkdir" | "mkdirat" | "unlink" | "unlinkat"
        | "flock" => Some("state"),
        "clone" | "clone3" | "vfork" | "execve" => Some("spawn"),
        _ => None,
    }
}

/// Parses `strace -f -y -o FILE` output (`TID syscall(...)` per line): counts per tracee, and
/// which calls of the plugin's own threads change state. A tracee belongs to the plugin unless
/// it (or the process it is a thread of) executed another program.
fn parse_trace(text: &str, plugin: &Path) -> Trace {
    let mut owner: HashMap<u32, bool> = HashMap::new(); // tid -> is ours
    let mut counts: HashMap<(u32, String), u32> = HashMap::new();
    let mut max: BTreeMap<String, u32> = BTreeMap::new();
    let mut changing: BTreeMap<&'static str, BTreeSet<Point>> = BTreeMap::new();
    let plugin = plugin.to_string_lossy();
    let mut first_tid = None;
    for line in text.lines() {
        let Some((tid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(tid) = tid.trim().parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        first_tid.get_or_insert(tid);
        let ours = *owner.entry(tid).or_insert(first_tid == Some(tid));
        // A child's tid appears in the return value of clone*/vfork (possibly "resumed").
        let resumed = rest.starts_with("<...");
        let syscall = if resumed {
            rest.trim_start_matches("<... ")
                .split(' ')
                .next()
                .unwrap_or("")
                .to_string()
        } else {
            rest.split('(').next().unwrap_or("").to_string()
        };
        if ["clone", "clone3", "vfork"].contains(&syscall.as_str()) && !rest.contains("<unfinished")
        {
            if let Some(child) = rest
                .rsplit("= ")
                .next()
                .and_then(|r| r.split_whitespace().next())
                .and_then(|r| r.parse::<u32>().ok())
            {
                owner.insert(child, ours);
            }
        }
        if rest.starts_with("execve(") && rest.contains("= 0") {
            let is_plugin = rest.contains(&*plugin);
            owner.insert(tid, is_plugin);
        }
        if resumed || !SYSCALLS.contains(&syscall.as_str()) {
            continue;
        }
        let count = counts.entry((tid, syscall.clone())).or_insert(0);
        *count += 1;
        let n = *count;
        let top = max.entry(syscall.clone()).or_insert(0);
        *top = (*top).max(n);
        if *owner.get(&tid).unwrap_or(&false) {
            if let Some(cat) = category(&syscall, rest) {
                changing.entry(cat).or_default().insert(Point {
                    syscall: syscall.clone(),
                    n,
                });
            }
        }
    }
    Trace { max, changing }
}

/// Up to `budget` points, spread evenly over each category in turn (deterministic).
fn sample(trace: &Trace, budget: usize) -> Vec<Point> {
    let lists: Vec<Vec<Point>> = trace
        .changing
        .values()
        .map(|s| s.iter().cloned().collect())
        .collect();
    let total: usize = lists.iter().map(Vec::len).sum();
    if total <= budget {
        let mut all: Vec<Point> = lists.into_iter().flatten().collect();
        all.sort();
        all.dedup();
        return all;
    }
    // Each category gets a share proportional to its size, at least one point.
    let mut chosen = BTreeSet::new();
    for list in &lists {
        let share = ((list.len() * budget) / total).max(1);
        for i in 0..share {
            chosen.insert(list[i * list.len() / share].clone());
        }
    }
    chosen.into_iter().collect()
}

/// Every call of every syscall of the set, as far as any tracee went.
fn every_point(trace: &Trace) -> Vec<Point> {
    trace
        .max
        .iter()
        .flat_map(|(s, &max)| {
            (1..=max).map(move |n| Point {
                syscall: s.clone(),
                n,
            })
        })
        .collect()
}

/// When the other pod of the same network comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Other {
    /// Never: the victim is alone, its shim must go with it.
    None,
    /// Before the victim's ADD: it shares the shim, which must stay intact.
    Before,
    /// Right after the crash, before the recovery (the node starts its next pod): it reuses
    /// what the crash left, so a half-made shim must be made whole.
    After,
}

/// One scenario of the sweep.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    wiring: Wiring,
    other: Other,
}

impl Scenario {
    fn label(self) -> String {
        format!(
            "{}{}",
            self.wiring.label(),
            match self.other {
                Other::None => "",
                Other::Before => " +pod before",
                Other::After => " +pod after the crash",
            }
        )
    }
}

/// What the kill points did.
#[derive(Default)]
struct Tally {
    /// Distinct (scenario, point) at which ADD was killed.
    points: BTreeSet<(String, Point)>,
    not_reached: usize,
    killed_plugin: usize,
    killed_ipam: usize,
    /// (scenario, point, variant, stage, leftover)
    failures: Vec<(String, String, Leftover)>,
}

/// Fresh directories and pods for one attempt.
struct Attempt<'a> {
    lan: &'a Lan,
    net: Wired,
    _state: TempDir,
    _data: TempDir,
    _victim: Pod,
    victim_at: Attachment,
    other: Option<(Pod, Attachment, Kept)>,
}

impl<'a> Attempt<'a> {
    fn new(lan: &'a Lan, plugin: &Plugin, scenario: Scenario, id: usize) -> Attempt<'a> {
        let state = TempDir::new("crash-state");
        let data = TempDir::new("crash-data");
        let net = Wired::new(
            NETWORK,
            scenario.wiring,
            state.path(),
            data.path(),
            range_for(0),
            plugin.cni_path(),
        );
        let victim = lan.pod(&format!("v{id}"));
        let victim_at = Attachment::new(&victim);
        let mut attempt = Attempt {
            lan,
            net,
            _state: state,
            _data: data,
            _victim: victim,
            victim_at,
            other: None,
        };
        if scenario.other == Other::Before {
            attempt.add_other(id);
        }
        attempt
    }

    /// The other pod of the network: added, and kept from here on.
    fn add_other(&mut self, id: usize) {
        let pod = self.lan.pod(&format!("o{id}"));
        let at = Attachment::new(&pod);
        let result = self
            .net
            .add(&self.lan.node1, &at)
            .unwrap_or_else(|e| panic!("the other pod's ADD: {e}"));
        let kept = Kept::from_result(&at.container_id, &result, self.net.wiring.shim());
        self.other = Some((pod, at, kept));
    }

    /// The victim's ADD, wrapped in `wrapper`. Returns our call's outcome and the prevResult
    /// the runtime would pass us (chained: the reference macvlan's result).
    fn add_wrapped(&self, wrapper: &[String]) -> (Outcome, Option<Value>) {
        let prev = if self.net.wiring.chained() {
            Some(
                self.net
                    .create_pod_link(&self.lan.node1, &self.victim_at)
                    .unwrap_or_else(|e| panic!("{e}")),
            )
        } else {
            None
        };
        let conf = self.net.our_conf(prev.as_ref());
        let call = Call {
            command: "ADD",
            at: &self.victim_at,
            cni_path: &self.net.cni_path,
            mount_ns: None,
        };
        let stdin = serde_json::to_vec(&conf).unwrap();
        let out = run_plugin(
            &self.lan.node1,
            wrapper,
            &self.net.plugin,
            &call,
            &[],
            &stdin,
            LIMIT,
        );
        (out, prev)
    }

    fn kept(&self) -> Vec<Kept> {
        self.other.iter().map(|(_, _, k)| k.clone()).collect()
    }

    fn leftovers(&self) -> Vec<Leftover> {
        leftovers(
            &self.lan.node1,
            &[&self.net.state_dir],
            &[&self.net.data_dir],
            &self.kept(),
        )
    }

    /// The other pod is still attached: its route exists and CHECK passes.
    fn other_intact(&self) -> Vec<Leftover> {
        let Some((_, _, kept)) = &self.other else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        let routes = self.lan.node1.routes("-4");
        for ip in &kept.ips {
            if !routes
                .iter()
                .any(|r| r["dst"].as_str() == Some(&ip.to_string()))
            {
                problems.push(Leftover {
                    kind: "other pod broken",
                    what: format!("route to {ip} gone"),
                });
            }
        }
        problems
    }

    /// Ends the attempt: the other pod deleted, the node reset whatever is left.
    fn finish(self) {
        if let Some((_, at, _)) = &self.other {
            self.net.del(&self.lan.node1, at, None);
        }
        reset_node(&self.lan.node1);
    }
}

fn strace_trace(out_file: &Path) -> Vec<String> {
    [
        "strace",
        "-f",
        "-y",
        "-qq",
        "--seccomp-bpf",
        "-s",
        "160",
        "-o",
        &out_file.to_string_lossy(),
        "-e",
        &format!("trace={}", SYSCALLS.join(",")),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn strace_kill(point: &Point, log: &Path) -> Vec<String> {
    [
        "strace",
        "-f",
        "-q",
        "-o",
        &log.to_string_lossy(),
        "-e",
        &format!("trace={}", point.syscall),
        "-e",
        &format!("inject={}:signal=KILL:when={}", point.syscall, point.n),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The traced, unkilled ADD of a scenario: its calls, and the result libcni would cache (the
/// prevResult of a later DEL).
fn trace_scenario(lan: &Lan, plugin: &Plugin, scenario: Scenario) -> (Trace, Value, String) {
    let attempt = Attempt::new(lan, plugin, scenario, 0);
    let tmp = TempDir::new("trace");
    let file = tmp.join("trace");
    let (out, _prev) = attempt.add_wrapped(&strace_trace(&file));
    assert!(
        out.success(),
        "{}: the traced ADD failed: {}\n{}",
        scenario.label(),
        out.stdout_text(),
        out.stderr
    );
    let text = std::fs::read_to_string(&file).expect("strace output");
    let trace = parse_trace(&text, &attempt.net.plugin);
    let result = out.json();
    attempt
        .net
        .del(&lan.node1, &attempt.victim_at, Some(&result));
    attempt.finish();
    (trace, result, text)
}

/// Kills ADD at `point`, recovers with DEL (`with_prev` or not) and GC, and records what is
/// left after DEL and after GC.
fn try_point(
    (lan, plugin): (&Lan, &Plugin),
    scenario: Scenario,
    id: usize,
    point: &Point,
    with_prev: bool,
    cached: &Value,
    tally: &mut Tally,
) {
    let mut attempt = Attempt::new(lan, plugin, scenario, id);
    let tmp = TempDir::new("kill");
    let log = tmp.join("strace.log");
    let (out, _prev) = attempt.add_wrapped(&strace_kill(point, &log));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let label = format!(
        "{} kill at {}#{} then DEL {}",
        scenario.label(),
        point.syscall,
        point.n,
        if with_prev {
            "with prevResult"
        } else {
            "without prevResult"
        }
    );
    let child_killed = log_text.contains("killed by SIGKILL");
    if std::env::var_os("CRASH_DEBUG").is_some() {
        eprintln!(
            "{label}: status {:?}\nstdout {}\nstrace log:\n{log_text}",
            out.status,
            out.stdout_text()
        );
    }
    if out.killed() {
        tally.killed_plugin += 1;
    } else if child_killed {
        tally.killed_ipam += 1;
    } else {
        // The point lies beyond this run's calls (threads interleave differently): no crash.
        tally.not_reached += 1;
    }
    if out.killed() || child_killed {
        tally.points.insert((scenario.label(), point.clone()));
    }
    let mut fail = |stage: &str, left: Leftover| {
        tally
            .failures
            .push((label.clone(), stage.to_string(), left));
    };
    if out.status.is_none() {
        fail(
            "ADD",
            Leftover {
                kind: "hang",
                what: "ADD under strace did not end".into(),
            },
        );
    }

    if scenario.other == Other::After {
        attempt.add_other(id);
    }
    // The runtime's DEL: the prevResult it cached for this attachment, or none.
    let prev = with_prev.then_some(cached);
    for failure in attempt.net.del(&lan.node1, &attempt.victim_at, prev) {
        fail(
            "DEL",
            Leftover {
                kind: "DEL failed",
                what: failure,
            },
        );
    }
    for left in attempt.leftovers() {
        fail("after DEL", left);
    }
    let keep: Vec<&Attachment> = attempt.other.iter().map(|(_, at, _)| at).collect();
    let gc = attempt.net.gc(&lan.node1, &keep);
    if !gc.success() {
        fail(
            "GC",
            Leftover {
                kind: "GC failed",
                what: gc.stdout_text(),
            },
        );
    }
    for left in attempt.leftovers() {
        fail("after GC", left);
    }
    for left in attempt.other_intact() {
        fail("after GC", left);
    }
    attempt.finish();
}

#[test]
fn every_kill_point_of_add_is_recovered_by_del_and_gc() {
    let full = std::env::var("CRASH_SWEEP").is_ok_and(|v| v == "full");
    let budget: usize = std::env::var("CRASH_POINTS_PER_SCENARIO")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let lan = Lan::new();
    let plugin = Plugin::ours();
    let mut tally = Tally::default();
    let mut attempts = 0;
    let start = Instant::now();
    let mut id = 1;
    for wiring in Wiring::ALL {
        for other in [Other::None, Other::Before, Other::After] {
            let scenario = Scenario { wiring, other };
            // CRASH_ONLY=<part of a label> runs only the matching scenarios (debugging).
            if let Ok(only) = std::env::var("CRASH_ONLY") {
                if !scenario.label().contains(&only) {
                    continue;
                }
            }
            let (trace, cached, _) = trace_scenario(&lan, &plugin, scenario);
            let points = if full {
                every_point(&trace)
            } else {
                sample(&trace, budget)
            };
            if std::env::var_os("CRASH_DEBUG").is_some() {
                eprintln!("{}: points {points:?}", scenario.label());
            }
            let before = tally.points.len();
            for (i, point) in points.iter().enumerate() {
                let variants: &[bool] = if full { &[false, true] } else { &[i % 2 == 1] };
                for &with_prev in variants {
                    try_point(
                        (&lan, &plugin),
                        scenario,
                        id,
                        point,
                        with_prev,
                        &cached,
                        &mut tally,
                    );
                    id += 1;
                    attempts += 1;
                }
            }
            eprintln!(
                "crash points: {}: {} kill points covered ({} tried; calls traced: {})",
                scenario.label(),
                tally.points.len() - before,
                points.len(),
                trace
                    .max
                    .iter()
                    .map(|(s, n)| format!("{s}={n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    let by_kind = count_by_kind(tally.failures.iter().map(|(_, _, l)| l.kind));
    let failed_attempts: BTreeSet<&String> = tally.failures.iter().map(|(p, _, _)| p).collect();
    println!(
        "crash points: {} kill points covered in {attempts} attempts ({} killed ADD itself, {} its IPAM plugin, {} not reached), {} attempts left something, in {:.0?}",
        tally.points.len(),
        tally.killed_plugin,
        tally.killed_ipam,
        tally.not_reached,
        failed_attempts.len(),
        start.elapsed()
    );
    println!("crash points: failures by kind: {by_kind:?}");
    let mut report = String::new();
    for (label, stage, left) in &tally.failures {
        report.push_str(&format!(
            "  {label}: {stage}: {}: {}\n",
            left.kind, left.what
        ));
    }
    if !report.is_empty() {
        println!("crash points: every failure:\n{report}");
    }
    assert!(
        !tally.points.is_empty(),
        "no kill point was reached: is strace installed?"
    );
    assert!(
        tally.failures.is_empty(),
        "{} of {attempts} crash attempts left something behind ({by_kind:?}):\n{report}",
        failed_attempts.len()
    );
}

/// The point of the first call of `syscall` whose strace line contains `needle`: its count
/// among the calls of `syscall` by the same tracee.
fn point_of(text: &str, syscall: &str, needle: &str) -> Option<Point> {
    let mut counts: HashMap<u32, u32> = HashMap::new();
    for line in text.lines() {
        let (tid, rest) = line.split_once(' ')?;
        let Ok(tid) = tid.trim().parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        if !rest.starts_with(&format!("{syscall}(")) {
            continue;
        }
        let n = counts.entry(tid).or_insert(0);
        *n += 1;
        if rest.contains(needle) {
            return Some(Point {
                syscall: syscall.to_owned(),
                n: *n,
            });
        }
    }
    None
}

/// Chained mode with the shim and no other pod, ADD killed after it made the shim's users
/// directory and before its marker is in place (the creation of the marker's temporary file):
/// DEL, with and without prevResult, must leave nothing, the users directory included (issue
/// 18, finding 7: the random sweep found it 2 times in 150).
#[test]
fn a_chained_add_killed_before_its_shim_marker_leaves_no_users_directory() {
    let lan = Lan::new();
    let plugin = Plugin::ours();
    let scenario = Scenario {
        wiring: Wiring::ChainedShim,
        other: Other::None,
    };
    let (_, cached, text) = trace_scenario(&lan, &plugin, scenario);
    let point = point_of(&text, "openat", "/users/mvh-eth0/.")
        .unwrap_or_else(|| panic!("no marker write in the trace:\n{text}"));
    let mut tally = Tally::default();
    for (id, with_prev) in [(1, false), (2, true)] {
        try_point(
            (&lan, &plugin),
            scenario,
            id,
            &point,
            with_prev,
            &cached,
            &mut tally,
        );
    }
    assert_eq!(
        tally.killed_plugin, 2,
        "ADD was killed at {point:?} both times"
    );
    let report: Vec<String> = tally
        .failures
        .iter()
        .map(|(label, stage, left)| format!("{label}: {stage}: {}: {}", left.kind, left.what))
        .collect();
    assert!(report.is_empty(), "{}", report.join("\n"));
}
