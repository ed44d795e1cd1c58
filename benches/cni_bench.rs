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
//! Environment: `BENCH_ITERATIONS` (default 100) scales every row; `BENCH_STATIC_BINARY` is the
//! static build whose size row 5 reports; `BENCH_OUTPUT` is the markdown file to update
//! (default docs/benchmarks.md; the part between the `bench:begin/end` markers is replaced);
//! `BENCH_ROWS` (default `1,1b,2,3,4,5`) picks rows; `BENCH_DAD_ROUNDS` (default 5) sets the
//! rounds of the slow dual-stack row; `BENCH_TRACE=1` prints every call's time on stderr.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use serde_json::{json, Value};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sched::{setns, CloneFlags};

/// Debian's reference plugins speak up to 1.0.0: every configuration that involves them uses it.
const CNI_VERSION: &str = "1.0.0";
const NETWORK: &str = "bench";
const MIB: f64 = 1024.0 * 1024.0;

// ---------------------------------------------------------------------------------------------
// Ctrl-C
// ---------------------------------------------------------------------------------------------

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT/SIGTERM only set a flag: the driver unwinds at the next call, so every guard (`Lan`,
/// `TempDir`, `ShmDir`) removes what it made.
fn catch_interrupts() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

fn stop_if_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        panic!("interrupted: removing the benchmark's namespaces and directories");
    }
}

// ---------------------------------------------------------------------------------------------
// A directory on tmpfs, like /run where stateDir lives by default
// ---------------------------------------------------------------------------------------------

const SHM: &str = "/dev/shm";
const SHM_PREFIX: &str = "mvhbench";

/// `/dev/shm/mvhbench-<pid>-<label>`, removed on drop. The plugin's default stateDir is under
/// /run, a tmpfs on every systemd machine; /tmp here may be a disk.
struct ShmDir {
    path: PathBuf,
}

impl ShmDir {
    fn new(label: &str) -> ShmDir {
        let path = Path::new(SHM).join(format!("{SHM_PREFIX}-{}-{label}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
        ShmDir { path }
    }

    fn str(&self) -> &str {
        self.path.to_str().expect("UTF-8 path")
    }

    /// Removes what benchmark processes that no longer run left in /dev/shm.
    fn remove_stale() {
        let Ok(read) = fs::read_dir(SHM) else { return };
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix(&format!("{SHM_PREFIX}-"))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------------------------
// Running plugins
// ---------------------------------------------------------------------------------------------

/// What one plugin call cost and produced.
struct Call {
    wall: Duration,
    /// User + system time of the plugin and of the children it waited for (IPAM).
    cpu: Duration,
    /// Peak RSS of the plugin or of its largest reaped child, in bytes.
    max_rss: u64,
    status: ExitStatus,
    stdout: Value,
    stderr: String,
}

impl Call {
    fn expect_ok(self, what: &str) -> Call {
        // Ctrl-C reaches the plugins too: report the interruption, not their failure.
        stop_if_interrupted();
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A started plugin process.
struct Pending {
    child: Child,
    started: Instant,
}

/// CNI_PATH with every reference plugin, ours, and a tiny IPAM stand-in for the footprint row.
struct Runner {
    cni_path: TempDir,
    /// The driver's own namespace, restored on drop.
    origin: File,
}

const FAKE_IPAM: &str = "bench-fake-ipam";

/// The binary whose calls are timed: the static build when `bench.sh` made one (it is what the
/// README tells users to install), else the release build cargo made for this driver.
fn measured_binary() -> PathBuf {
    std::env::var_os("BENCH_STATIC_BINARY")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(OUR_PLUGIN))
}

impl Runner {
    fn new() -> Runner {
        let cni_path = TempDir::new("bench-cni-path");
        for entry in fs::read_dir("/usr/lib/cni").expect("reference plugins in /usr/lib/cni") {
            let entry = entry.expect("read /usr/lib/cni");
            symlink(&entry.path(), &cni_path.join(entry.file_name()));
        }
        symlink(&measured_binary(), &cni_path.join(OUR_TYPE));
        // A static busybox script: its own peak RSS stays far below ours, so the peak RSS of an
        // interface-mode ADD that delegates to it is ours.
        let fake = cni_path.join(FAKE_IPAM);
        fs::write(
            &fake,
            "#!/bin/busybox sh\n\
             case \"$CNI_COMMAND\" in\n\
             ADD) echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.99.200.1/16\"}]}' ;;\n\
             VERSION) echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}' ;;\n\
             esac\n",
        )
        .expect("write the fake IPAM");
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).expect("chmod fake IPAM");
        let origin = File::open("/proc/thread-self/ns/net").expect("open own netns");
        Runner { cni_path, origin }
    }

    /// Starts `plugin` in `node`'s namespace with `conf` on stdin. The driver's thread enters
    /// the namespace before the clock starts, so the child starts there without nsenter.
    fn spawn(
        &self,
        node: &Netns,
        plugin: &str,
        command: &str,
        at: &Attachment,
        conf: &Value,
    ) -> Pending {
        stop_if_interrupted();
        let ns = File::open(node.path()).expect("open node netns");
        setns(&ns, CloneFlags::CLONE_NEWNET).expect("enter the node's namespace");
        let stdin = serde_json::to_vec(conf).expect("serialise config");
        let mut cmd = Command::new(self.cni_path.join(plugin));
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &at.container_id)
            .env("CNI_NETNS", &at.netns)
            .env("CNI_IFNAME", &at.ifname)
            .env("CNI_ARGS", &at.args)
            .env("CNI_PATH", self.cni_path.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {plugin}: {e}"));
        // A configuration is far below a pipe's capacity: this never blocks on the child.
        let _ = child.stdin.take().expect("piped stdin").write_all(&stdin);
        Pending { child, started }
    }

    /// Reads the output of a started call and reaps it with `wait4`, for its resource usage.
    fn finish(&self, mut pending: Pending) -> Call {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let _ = pending
            .child
            .stdout
            .take()
            .expect("piped stdout")
            .read_to_end(&mut stdout);
        let _ = pending
            .child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_end(&mut stderr);
        let pid = pending.child.id() as libc::pid_t;
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: `pid` is our own unreaped child (std never waits for it: `Child` is only
            // dropped), and both out-pointers point to live locals.
            let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            if reaped == pid {
                break;
            }
            let err = std::io::Error::last_os_error();
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::Interrupted,
                "wait4 {pid}: {err}"
            );
        }
        let wall = pending.started.elapsed();
        let timeval = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        let raw = String::from_utf8_lossy(&stdout).into_owned();
        Call {
            wall,
            cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
            max_rss: usage.ru_maxrss as u64 * 1024,
            status: ExitStatus::from_raw(status),
            stdout: if raw.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&raw).unwrap_or(Value::String(raw))
            },
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    fn call(
        &self,
        node: &Netns,
        plugin: &str,
        command: &str,
        at: &Attachment,
        conf: &Value,
    ) -> Call {
        let pending = self.spawn(node, plugin, command, at, conf);
        let call = self.finish(pending);
        if std::env::var_os("BENCH_TRACE").is_some() {
            eprintln!(
                "{command} {plugin} {}: {:.2} ms, cpu {:.2} ms",
                at.container_id,
                call.wall.as_secs_f64() * 1000.0,
                call.cpu.as_secs_f64() * 1000.0
            );
        }
        call
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = setns(&self.origin, CloneFlags::CLONE_NEWNET);
    }
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap_or_else(|e| panic!("symlink {link:?}: {e}"));
}

// ---------------------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------------------

/// The one host-local configuration of every row (only its dataDir differs per node).
/// Pods are on the LAN's /16 above the machines' addresses: room for 250+ pods per node.
fn host_local(data_dir: &str) -> Value {
    json!({
        "type": "host-local",
        "dataDir": data_dir,
        "ranges": [[{
            "subnet": "10.99.0.0/16",
            "rangeStart": "10.99.1.1",
            "rangeEnd": "10.99.15.254",
            "gateway": PEER_IP4
        }]],
        "routes": [{"dst": "0.0.0.0/0"}]
    })
}

/// host-local run directly, as the runtime would run an IPAM plugin (its section under `ipam`).
fn host_local_alone(data_dir: &str) -> Value {
    json!({
        "cniVersion": CNI_VERSION, "name": NETWORK, "type": "host-local",
        "ipam": host_local(data_dir)
    })
}

/// The same host-local with a second, IPv6 range on the LAN's /64 (above the machines').
fn host_local_dual_stack(data_dir: &str) -> Value {
    let mut ipam = host_local(data_dir);
    ipam["ranges"]
        .as_array_mut()
        .expect("ranges")
        .push(json!([{"subnet": SUBNET6, "rangeStart": "fd99::1:1", "rangeEnd": "fd99::1:ffff"}]));
    ipam
}

fn reference_macvlan(data_dir: &str) -> Value {
    json!({
        "cniVersion": CNI_VERSION, "name": NETWORK, "type": "macvlan",
        "master": "eth0", "mode": "bridge", "ipam": host_local(data_dir)
    })
}

/// Interface mode; `master: None` leaves it to the plugin's default (the default route's link).
fn ours_interface(access: &str, master: Option<&str>, state_dir: &str, data_dir: &str) -> Value {
    let mut conf = json!({
        "cniVersion": CNI_VERSION, "name": NETWORK, "type": OUR_TYPE, "mode": "bridge",
        "hostAccess": access, "stateDir": state_dir, "ipam": host_local(data_dir)
    });
    if let Some(master) = master {
        conf["master"] = json!(master);
    }
    conf
}

/// The chained entry of a conflist: after the reference macvlan.
fn ours_chained(access: &str, state_dir: &str) -> Value {
    json!({"type": OUR_TYPE, "hostAccess": access, "stateDir": state_dir})
}

fn with(mut conf: Value, key: &str, value: Value) -> Value {
    conf[key] = value;
    conf
}

fn type_of(conf: &Value) -> String {
    conf["type"].as_str().expect("type").to_string()
}

// ---------------------------------------------------------------------------------------------
// Measured operations
// ---------------------------------------------------------------------------------------------

/// One ADD followed by its DEL (with the ADD result as prevResult, as libcni passes it).
struct Cycle {
    add: Duration,
    del: Duration,
    cpu: Duration,
    max_rss: u64,
}

/// A single-plugin configuration on `pod`, ADD then DEL.
fn single_cycle(runner: &Runner, node: &Netns, pod: &Pod, conf: &Value) -> Cycle {
    let at = Attachment::new(pod);
    let plugin = type_of(conf);
    let add = runner
        .call(node, &plugin, "ADD", &at, conf)
        .expect_ok(&format!("ADD {plugin}"));
    let del_conf = with(conf.clone(), "prevResult", add.stdout.clone());
    let del = runner
        .call(node, &plugin, "DEL", &at, &del_conf)
        .expect_ok(&format!("DEL {plugin}"));
    Cycle {
        add: add.wall,
        del: del.wall,
        cpu: add.cpu + del.cpu,
        max_rss: add.max_rss.max(del.max_rss),
    }
}

/// A conflist the way libcni runs it: ADD in order, each plugin with the previous result as
/// prevResult; DEL in reverse order, each with the final (cached) result.
fn conflist_cycle(runner: &Runner, node: &Netns, pod: &Pod, plugins: &[Value]) -> Cycle {
    let at = Attachment::new(pod);
    let base = |conf: &Value| {
        let conf = with(conf.clone(), "name", json!(NETWORK));
        with(conf, "cniVersion", json!(CNI_VERSION))
    };
    let mut cycle = Cycle {
        add: Duration::ZERO,
        del: Duration::ZERO,
        cpu: Duration::ZERO,
        max_rss: 0,
    };
    let mut prev: Option<Value> = None;
    for conf in plugins {
        let mut conf = base(conf);
        if let Some(prev) = &prev {
            conf["prevResult"] = prev.clone();
        }
        let plugin = type_of(&conf);
        let out = runner
            .call(node, &plugin, "ADD", &at, &conf)
            .expect_ok(&format!("conflist ADD {plugin}"));
        cycle.add += out.wall;
        cycle.cpu += out.cpu;
        cycle.max_rss = cycle.max_rss.max(out.max_rss);
        prev = Some(out.stdout);
    }
    let cached = prev.expect("a conflist has plugins");
    for conf in plugins.iter().rev() {
        let conf = with(base(conf), "prevResult", cached.clone());
        let plugin = type_of(&conf);
        let out = runner
            .call(node, &plugin, "DEL", &at, &conf)
            .expect_ok(&format!("conflist DEL {plugin}"));
        cycle.del += out.wall;
        cycle.cpu += out.cpu;
        cycle.max_rss = cycle.max_rss.max(out.max_rss);
    }
    cycle
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/// Samples of one variant, in milliseconds.
#[derive(Default)]
struct Samples {
    add: Vec<f64>,
    del: Vec<f64>,
    total: Vec<f64>,
    cpu: Vec<f64>,
}

impl Samples {
    fn push(&mut self, c: &Cycle) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.add.push(ms(c.add));
        self.del.push(ms(c.del));
        self.total.push(ms(c.add + c.del));
        self.cpu.push(ms(c.cpu));
    }
}

/// Nearest-rank percentile.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs `variants` (each a closure doing one measured cycle) interleaved: `warmup` unrecorded
/// rounds, then `rounds` rounds, the starting variant rotating every round.
fn interleave(
    rounds: usize,
    warmup: usize,
    variants: &mut [&mut dyn FnMut() -> Cycle],
) -> Vec<Samples> {
    let n = variants.len();
    let mut samples: Vec<Samples> = (0..n).map(|_| Samples::default()).collect();
    for round in 0..warmup + rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let cycle = (variants[i])();
            if round >= warmup {
                samples[i].push(&cycle);
            }
        }
    }
    samples
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    markdown: String,
}

impl Report {
    fn line(&mut self, text: &str) {
        println!("{text}");
        self.markdown.push_str(text);
        self.markdown.push('\n');
    }

    fn heading(&mut self, text: &str) {
        self.line("");
        self.line(&format!("### {text}"));
        self.line("");
    }

    /// A table of variants: medians and p95 of ADD, DEL, ADD+DEL, CPU, and the ratio of the
    /// ADD+DEL median to the baseline's (`baseline` indexes `rows`).
    fn cycle_table(&mut self, rows: &[(&str, &Samples)], baseline: usize) {
        self.line("| variant | ADD median | ADD p95 | DEL median | DEL p95 | ADD+DEL median | ADD+DEL p95 | CPU median | ratio |");
        self.line("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        let base = median(&rows[baseline].1.total);
        for (name, s) in rows {
            let ratio = median(&s.total) / base;
            self.line(&format!(
                "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {ratio:.2}x |",
                median(&s.add),
                percentile(&s.add, 95.0),
                median(&s.del),
                percentile(&s.del, 95.0),
                median(&s.total),
                percentile(&s.total, 95.0),
                median(&s.cpu),
            ));
        }
        self.line("");
        self.line(&format!(
            "{} interleaved rounds; times in ms; CPU = user+sys of the plugin and its IPAM child.",
            rows[0].1.total.len()
        ));
    }

    fn target(&mut self, what: &str, value: f64, limit: f64, unit: &str) -> bool {
        let met = value <= limit;
        let verdict = if met { "met" } else { "**MISSED**" };
        self.line(&format!(
            "- Target {what}: {value:.2}{unit} (limit {limit}{unit}): {verdict}"
        ));
        met
    }
}

// ---------------------------------------------------------------------------------------------
// State snapshots (row 4: "nothing left")
// ---------------------------------------------------------------------------------------------

/// What a node has that pods could leave behind: links, routes of both families, permanent
/// neighbour entries.
fn node_snapshot(node: &Netns) -> Vec<String> {
    let mut items = Vec::new();
    for link in node
        .ip_json(["link"])
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        items.push(format!("link {}", link["ifname"].as_str().unwrap_or("?")));
    }
    for family in ["-4", "-6"] {
        for route in node.routes(family) {
            items.push(format!("route {} dev {}", route["dst"], route["dev"]));
        }
    }
    for n in node.neigh() {
        let permanent = n["state"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x == "PERMANENT"));
        if permanent {
            items.push(format!("neigh {} dev {}", n["dst"], n["dev"]));
        }
    }
    items.sort();
    items
}

/// Every file under `dir`, relative, sorted (the lock file excluded).
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(read) = fs::read_dir(dir) else { return };
        for entry in read.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.retain(|f| f != "lock");
    out.sort();
    out
}

fn pod_links(pod: &Pod) -> usize {
    pod.ip_json(["link"]).as_array().map_or(0, Vec::len)
}

// ---------------------------------------------------------------------------------------------
// The rows
// ---------------------------------------------------------------------------------------------

struct Bench {
    runner: Runner,
    rounds: usize,
    report: Report,
    targets: Vec<(String, bool)>,
}

/// A node with its host-local dataDir and our stateDir, as a real node has one of each.
struct NodeDirs {
    data: TempDir,
    state: ShmDir,
}

impl NodeDirs {
    fn new(label: &str) -> NodeDirs {
        NodeDirs {
            data: TempDir::new(&format!("{label}-host-local")),
            state: ShmDir::new(&format!("{label}-state")),
        }
    }
}

impl Bench {
    fn target(&mut self, what: &str, value: f64, limit: f64, unit: &str) {
        let met = self.report.target(what, value, limit, unit);
        self.targets.push((what.to_string(), met));
    }

    /// Attaches `pod` with `conf` and keeps it (a pod "already on the node").
    fn attach(&self, node: &Netns, pod: &Pod, conf: &Value) {
        let at = Attachment::new(pod);
        self.runner
            .call(node, &type_of(conf), "ADD", &at, conf)
            .expect_ok("attaching a resident pod");
    }

    /// Row 1: interface mode, ours against the reference macvlan with the same host-local.
    fn interface_mode(&mut self, lan: &Lan, lan_b: &Lan, main: &NodeDirs) {
        self.report
            .heading("1. Interface mode: ADD + DEL, macvlan-host vs reference macvlan");
        let cold = NodeDirs::new("cold");
        let disk_state = TempDir::new("disk-state");
        let disk_resident = lan_b.pod("disk-resident");
        let disk_conf = ours_interface("shim", Some("eth0"), disk_state.str(), main.data.str());
        self.attach(&lan_b.node2, &disk_resident, &disk_conf);

        let reference = reference_macvlan(main.data.str());
        let shim = ours_interface("shim", Some("eth0"), main.state.str(), main.data.str());
        let veth = ours_interface("veth", Some("eth0"), main.state.str(), main.data.str());
        let v110 = with(shim.clone(), "cniVersion", json!("1.1.0"));
        let cold_conf = ours_interface("shim", Some("eth0"), cold.state.str(), cold.data.str());
        let fake = with(shim.clone(), "ipam", json!({"type": FAKE_IPAM}));

        let pods: Vec<Pod> = ["ref", "shim", "veth", "v110", "cold", "disk", "fake"]
            .iter()
            .map(|n| lan.pod(&format!("r1-{n}")))
            .collect();
        let r = &self.runner;
        let (n1, b1, b2) = (&lan.node1.ns, &lan_b.node1.ns, &lan_b.node2.ns);
        let samples = interleave(
            self.rounds,
            3,
            &mut [
                &mut || single_cycle(r, n1, &pods[0], &reference),
                &mut || single_cycle(r, n1, &pods[1], &shim),
                &mut || single_cycle(r, n1, &pods[2], &veth),
                &mut || single_cycle(r, n1, &pods[3], &v110),
                &mut || single_cycle(r, b1, &pods[4], &cold_conf),
                &mut || single_cycle(r, b2, &pods[5], &disk_conf),
                &mut || single_cycle(r, n1, &pods[6], &fake),
            ],
        );
        self.report.cycle_table(
            &[
                ("reference macvlan + host-local (baseline)", &samples[0]),
                ("macvlan-host, shim", &samples[1]),
                ("macvlan-host, veth", &samples[2]),
                (
                    "macvlan-host, shim, cniVersion 1.1.0 (IPAM version fallback)",
                    &samples[3],
                ),
                (
                    "macvlan-host, shim, first pod of the node (shim created and removed)",
                    &samples[4],
                ),
                (
                    "macvlan-host, shim, stateDir on disk (ext4, fsync)",
                    &samples[5],
                ),
                (
                    "macvlan-host, shim, IPAM = static busybox script (no Go IPAM)",
                    &samples[6],
                ),
            ],
            0,
        );
        self.report.line("");
        self.report.line("All variants use cniVersion 1.0.0 and `master: eth0` unless stated; one resident pod keeps the shim (steady state); stateDir on tmpfs (/dev/shm, like /run) unless stated.");
        self.report.line("");
        let base = median(&samples[0].total);
        self.target(
            "interface mode, shim: ours / reference",
            median(&samples[1].total) / base,
            0.6,
            "x",
        );
        self.target(
            "interface mode, veth: ours / reference",
            median(&samples[2].total) / base,
            0.6,
            "x",
        );
    }

    /// Row 1b: dual-stack interface mode, where ADD waits for IPv6 duplicate address
    /// detection (both plugins do). Few rounds: each ADD takes seconds.
    fn dual_stack(&mut self, lan: &Lan, main: &NodeDirs) {
        let rounds = std::env::var("BENCH_DAD_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5);
        self.report
            .heading("1b. Interface mode, dual-stack (IPv4 + IPv6): ADD waits for IPv6 DAD");
        let dual = |conf: Value| with(conf, "ipam", host_local_dual_stack(main.data.str()));
        let reference = dual(reference_macvlan(main.data.str()));
        let shim = dual(ours_interface(
            "shim",
            Some("eth0"),
            main.state.str(),
            main.data.str(),
        ));
        let pods: Vec<Pod> = ["ref", "shim"]
            .iter()
            .map(|n| lan.pod(&format!("r1b-{n}")))
            .collect();
        let r = &self.runner;
        let n1 = &lan.node1.ns;
        let samples = interleave(
            rounds,
            0,
            &mut [
                &mut || single_cycle(r, n1, &pods[0], &reference),
                &mut || single_cycle(r, n1, &pods[1], &shim),
            ],
        );
        self.report.cycle_table(
            &[
                ("reference macvlan + host-local (baseline)", &samples[0]),
                ("macvlan-host, shim", &samples[1]),
            ],
            0,
        );
        self.report.line("");
        self.report.line("Informational (no target): the kernel's DAD (a random delay of up to `router_solicitation_delay`, 1 s, then `retrans_time`, 1 s) dominates both.");
    }

    /// Row 2: chained after the reference macvlan, against the reference macvlan alone.
    fn chained(&mut self, lan: &Lan, main: &NodeDirs) {
        self.report
            .heading("2. Chained mode: conflist [macvlan, macvlan-host] vs [macvlan]");
        let macvlan = json!({"type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": host_local(main.data.str())});
        let alone = vec![macvlan.clone()];
        let shim = vec![macvlan.clone(), ours_chained("shim", main.state.str())];
        let veth = vec![macvlan, ours_chained("veth", main.state.str())];
        let pods: Vec<Pod> = ["alone", "shim", "veth"]
            .iter()
            .map(|n| lan.pod(&format!("r2-{n}")))
            .collect();
        let r = &self.runner;
        let n1 = &lan.node1.ns;
        let samples = interleave(
            self.rounds,
            3,
            &mut [
                &mut || conflist_cycle(r, n1, &pods[0], &alone),
                &mut || conflist_cycle(r, n1, &pods[1], &shim),
                &mut || conflist_cycle(r, n1, &pods[2], &veth),
            ],
        );
        self.report.cycle_table(
            &[
                ("[macvlan] (baseline)", &samples[0]),
                ("[macvlan, macvlan-host shim]", &samples[1]),
                ("[macvlan, macvlan-host veth]", &samples[2]),
            ],
            0,
        );
        self.report.line("");
        self.report.line("Run the way libcni runs a conflist: ADD in order with prevResult, DEL in reverse order with the cached result.");
        self.report.line("");
        let base = median(&samples[0].total);
        self.target(
            "chained, shim: conflist / macvlan alone",
            median(&samples[1].total) / base,
            1.15,
            "x",
        );
        self.target(
            "chained, veth: conflist / macvlan alone",
            median(&samples[2].total) / base,
            1.15,
            "x",
        );
    }

    /// Row 3: ADD + DEL latency with 1, 50 and 250 pods already on the node.
    fn scale(&mut self) {
        const LEVELS: [usize; 3] = [1, 50, 250];
        self.report
            .heading("3. Scale: ADD + DEL with 1, 50, 250 pods already on the node");
        let started = Instant::now();
        // One LAN per level, interleaved measurement across levels: node1 carries shim pods,
        // node2 veth pods. Each node has its own host-local dataDir and stateDir.
        let lans: Vec<Lan> = LEVELS.iter().map(|_| Lan::new()).collect();
        let dirs: Vec<(NodeDirs, NodeDirs)> = LEVELS
            .iter()
            .map(|n| {
                (
                    NodeDirs::new(&format!("scale{n}-shim")),
                    NodeDirs::new(&format!("scale{n}-veth")),
                )
            })
            .collect();
        let mut residents = Vec::new();
        for ((lan, (shim_dirs, veth_dirs)), &count) in lans.iter().zip(&dirs).zip(&LEVELS) {
            let shim = ours_interface("shim", None, shim_dirs.state.str(), shim_dirs.data.str());
            let veth = ours_interface("veth", None, veth_dirs.state.str(), veth_dirs.data.str());
            for (node, conf, tag) in [(&lan.node1, &shim, "s"), (&lan.node2, &veth, "v")] {
                let pods: Vec<Pod> = (0..count).map(|i| lan.pod(&format!("{tag}{i}"))).collect();
                // Eight at a time: setting up 600 pods one by one would dominate the run.
                for batch in pods.chunks(8) {
                    let pending: Vec<Pending> = batch
                        .iter()
                        .map(|pod| {
                            self.runner
                                .spawn(node, OUR_TYPE, "ADD", &Attachment::new(pod), conf)
                        })
                        .collect();
                    for p in pending {
                        self.runner
                            .finish(p)
                            .expect_ok("attaching a background pod");
                    }
                }
                residents.extend(pods);
            }
        }
        let setup = started.elapsed();

        const VARIANTS: [&str; 5] = [
            "macvlan-host shim (default master)",
            "macvlan-host shim (master: eth0)",
            "macvlan-host veth (default master)",
            "reference macvlan + host-local (control)",
            "host-local alone (control)",
        ];
        const V: usize = VARIANTS.len();
        let probes: Vec<Pod> = lans
            .iter()
            .flat_map(|lan| {
                (0..V)
                    .map(|v| lan.pod(&format!("probe-{v}")))
                    .collect::<Vec<_>>()
            })
            .collect();
        let r = &self.runner;
        let mut variants: Vec<Box<dyn FnMut() -> Cycle + '_>> = Vec::new();
        for (k, (lan, (shim_dirs, veth_dirs))) in lans.iter().zip(&dirs).enumerate() {
            let (state, data) = (shim_dirs.state.str(), shim_dirs.data.str());
            let shim = ours_interface("shim", None, state, data);
            let shim_master = ours_interface("shim", Some("eth0"), state, data);
            let veth = ours_interface("veth", None, veth_dirs.state.str(), veth_dirs.data.str());
            // The controls run on the shim node with its dataDir: what the kernel (N macvlans
            // on the master) and host-local (N allocations) add as pods grow, without us.
            let reference = reference_macvlan(data);
            let ipam = host_local_alone(data);
            let pods = &probes[k * V..(k + 1) * V];
            let (n1, n2) = (&lan.node1.ns, &lan.node2.ns);
            variants.push(Box::new(move || single_cycle(r, n1, &pods[0], &shim)));
            variants.push(Box::new(move || {
                single_cycle(r, n1, &pods[1], &shim_master)
            }));
            variants.push(Box::new(move || single_cycle(r, n2, &pods[2], &veth)));
            variants.push(Box::new(move || single_cycle(r, n1, &pods[3], &reference)));
            variants.push(Box::new(move || single_cycle(r, n1, &pods[4], &ipam)));
        }
        let mut refs: Vec<&mut dyn FnMut() -> Cycle> = variants
            .iter_mut()
            .map(|v| v.as_mut() as &mut dyn FnMut() -> Cycle)
            .collect();
        let samples = interleave(self.rounds, 2, &mut refs);
        drop(refs);
        drop(variants);

        self.report.line("| variant | pods on node | ADD+DEL median | ADD+DEL p95 | ADD median | DEL median | CPU median | vs 1 pod |");
        self.report.line("|---|--:|--:|--:|--:|--:|--:|--:|");
        let last = LEVELS.len() - 1;
        let at = |v: usize, k: usize| median(&samples[k * V + v].total);
        for (v, name) in VARIANTS.iter().enumerate() {
            for (k, level) in LEVELS.iter().enumerate() {
                let s = &samples[k * V + v];
                self.report.line(&format!(
                    "| {name} | {level} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x |",
                    median(&s.total),
                    percentile(&s.total, 95.0),
                    median(&s.add),
                    median(&s.del),
                    median(&s.cpu),
                    at(v, k) / at(v, 0)
                ));
            }
        }
        self.report.line("");
        self.report.line(&format!(
            "{} interleaved rounds across all levels; setting up the {} background pods took {:.1} s. \
             Interface mode, cniVersion 1.0.0; one LAN per level, shim pods on node1, veth pods on node2; \
             each node has its own host-local dataDir and stateDir.",
            self.rounds,
            2 * LEVELS.iter().sum::<usize>(),
            setup.as_secs_f64()
        ));
        self.report.line("");
        // host-local's own growth (its store is a directory it scans) is not ours: show the
        // growth of what remains when host-local's time is taken out.
        let ipam = V - 1;
        for (v, name) in VARIANTS.iter().enumerate().take(ipam) {
            let without_ipam = (at(v, last) - at(ipam, last)) / (at(v, 0) - at(ipam, 0));
            self.report.line(&format!(
                "- {name}: 250 pods / 1 pod = {:.2}x; without host-local's share {without_ipam:.2}x",
                at(v, last) / at(v, 0)
            ));
        }
        self.report.line("");
        for (v, what) in [(0, "shim"), (1, "shim with master set"), (2, "veth")] {
            self.target(
                &format!("scale, {what}: 250 pods / 1 pod"),
                at(v, last) / at(v, 0),
                1.25,
                "x",
            );
        }
        drop(residents);
        drop(probes);
        drop(lans);
    }

    /// Row 4: 32 pods added at once, then deleted at once.
    fn concurrency(&mut self, lan: &Lan, lan_b: &Lan, main: &NodeDirs) {
        const PODS: usize = 32;
        self.report.heading(&format!(
            "4. Concurrency: {PODS} pods added at once, then deleted at once"
        ));
        let cold = NodeDirs::new("burst-cold");
        let variants: Vec<(&str, &Netns, Value, &Path, Option<&Path>)> = vec![
            (
                "reference macvlan",
                &lan.node1.ns,
                reference_macvlan(main.data.str()),
                main.data.path(),
                None,
            ),
            (
                "macvlan-host shim",
                &lan.node1.ns,
                ours_interface("shim", Some("eth0"), main.state.str(), main.data.str()),
                main.data.path(),
                Some(main.state.path.as_path()),
            ),
            (
                "macvlan-host veth",
                &lan.node1.ns,
                ours_interface("veth", Some("eth0"), main.state.str(), main.data.str()),
                main.data.path(),
                Some(main.state.path.as_path()),
            ),
            (
                "macvlan-host shim, no shim yet (all race to create it)",
                &lan_b.node1.ns,
                ours_interface("shim", Some("eth0"), cold.state.str(), cold.data.str()),
                cold.data.path(),
                Some(cold.state.path.as_path()),
            ),
        ];
        let pods: Vec<Pod> = (0..PODS).map(|i| lan.pod(&format!("burst{i}"))).collect();
        let rounds = (self.rounds / 8).max(3);
        let mut add_walls = vec![Vec::new(); variants.len()];
        let mut del_walls = vec![Vec::new(); variants.len()];
        let mut all_ok = true;
        let mut left_over = Vec::new();
        for round in 0..rounds {
            for k in 0..variants.len() {
                let v = (round + k) % variants.len();
                let (name, node, conf, data_dir, state_dir) = &variants[v];
                let before = (
                    node_snapshot(node),
                    host_local_allocations(data_dir),
                    state_dir.map(files_under),
                );
                let plugin = type_of(conf);
                let started = Instant::now();
                let pending: Vec<Pending> = pods
                    .iter()
                    .map(|p| {
                        self.runner
                            .spawn(node, &plugin, "ADD", &Attachment::new(p), conf)
                    })
                    .collect();
                let adds: Vec<Call> = pending.into_iter().map(|p| self.runner.finish(p)).collect();
                add_walls[v].push(started.elapsed().as_secs_f64() * 1000.0);
                all_ok &= self.report_failures(name, "ADD", &adds);
                let started = Instant::now();
                let pending: Vec<Pending> = pods
                    .iter()
                    .zip(&adds)
                    .map(|(p, add)| {
                        let conf = with(conf.clone(), "prevResult", add.stdout.clone());
                        self.runner
                            .spawn(node, &plugin, "DEL", &Attachment::new(p), &conf)
                    })
                    .collect();
                let dels: Vec<Call> = pending.into_iter().map(|p| self.runner.finish(p)).collect();
                del_walls[v].push(started.elapsed().as_secs_f64() * 1000.0);
                all_ok &= self.report_failures(name, "DEL", &dels);
                let after = (
                    node_snapshot(node),
                    host_local_allocations(data_dir),
                    state_dir.map(files_under),
                );
                let pods_left = pods.iter().filter(|p| pod_links(p) != 1).count();
                if before != after || pods_left > 0 {
                    left_over.push(format!(
                        "{name}: before {before:?} after {after:?}; {pods_left} pods with links"
                    ));
                }
            }
        }
        self.report
            .line("| variant | 32 ADDs wall median | p95 | 32 DELs wall median | p95 |");
        self.report.line("|---|--:|--:|--:|--:|");
        for (v, (name, ..)) in variants.iter().enumerate() {
            self.report.line(&format!(
                "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
                median(&add_walls[v]),
                percentile(&add_walls[v], 95.0),
                median(&del_walls[v]),
                percentile(&del_walls[v], 95.0)
            ));
        }
        self.report.line("");
        self.report.line(&format!(
            "{rounds} interleaved rounds; times in ms from the first spawn to the last exit."
        ));
        self.report.line("");
        let clean = left_over.is_empty();
        for item in &left_over {
            self.report.line(&format!("- left over: {item}"));
        }
        self.report.line(&format!(
            "- Target concurrency: every ADD and DEL succeeded: {}; nothing left (node links, routes, permanent neighbours, host-local allocations, stateDir, pod links): {}",
            if all_ok { "yes" } else { "**NO**" },
            if clean { "yes" } else { "**NO**" }
        ));
        self.targets.push((
            "concurrency: all succeed, nothing left".into(),
            all_ok && clean,
        ));
    }

    /// Reports the failed calls of a batch (how many, and the first one's output); true
    /// when every call succeeded.
    fn report_failures(&mut self, name: &str, verb: &str, calls: &[Call]) -> bool {
        let failed: Vec<&Call> = calls.iter().filter(|c| !c.status.success()).collect();
        if let Some(first) = failed.first() {
            self.report.line(&format!(
                "- {name}: {}/{} {verb}s failed, e.g. {} {}",
                failed.len(),
                calls.len(),
                first.stdout,
                first.stderr.trim()
            ));
        }
        failed.is_empty()
    }

    /// Row 5: peak RSS of one ADD and the size of the static binary.
    fn footprint(&mut self, lan: &Lan, main: &NodeDirs) {
        self.report.heading("5. Footprint");
        let pod = lan.pod("footprint");
        let at = Attachment::new(&pod);
        let peak = |conf: &Value| -> u64 {
            let mut most = 0;
            for _ in 0..5 {
                let plugin = type_of(conf);
                let add = self
                    .runner
                    .call(&lan.node1, &plugin, "ADD", &at, conf)
                    .expect_ok("footprint ADD");
                let del_conf = with(conf.clone(), "prevResult", add.stdout.clone());
                self.runner
                    .call(&lan.node1, &plugin, "DEL", &at, &del_conf)
                    .expect_ok("footprint DEL");
                most = most.max(add.max_rss);
            }
            most
        };
        let shim = ours_interface("shim", Some("eth0"), main.state.str(), main.data.str());
        let ours_alone = peak(&with(shim.clone(), "ipam", json!({"type": FAKE_IPAM})));
        let ours_with_host_local = peak(&shim);
        let reference = peak(&reference_macvlan(main.data.str()));
        let ipam_only = host_local_alone(main.data.str());
        let host_local_alone = peak(&ipam_only);

        self.report.line("| measurement | value |");
        self.report.line("|---|--:|");
        let mib = |b: u64| b as f64 / MIB;
        self.report.line(&format!("| peak RSS, macvlan-host ADD (shim, interface mode; IPAM a static busybox script) | {:.2} MiB |", mib(ours_alone)));
        self.report.line(&format!(
            "| peak RSS, macvlan-host ADD with host-local (max of the two processes) | {:.2} MiB |",
            mib(ours_with_host_local)
        ));
        self.report.line(&format!(
            "| peak RSS, host-local ADD alone | {:.2} MiB |",
            mib(host_local_alone)
        ));
        self.report.line(&format!(
            "| peak RSS, reference macvlan ADD with host-local (max of the two) | {:.2} MiB |",
            mib(reference)
        ));
        let dynamic = fs::metadata(OUR_PLUGIN).map(|m| m.len()).unwrap_or(0);
        self.report.line(&format!(
            "| release binary (`cargo build --release`, dynamic glibc) | {:.2} MiB |",
            mib(dynamic)
        ));
        let static_binary = std::env::var_os("BENCH_STATIC_BINARY").map(PathBuf::from);
        let static_size = static_binary
            .as_ref()
            .and_then(|p| fs::metadata(p).ok())
            .map(|m| m.len());
        match static_size {
            Some(size) => self.report.line(&format!("| release binary, static (`-C target-feature=+crt-static`, x86_64-unknown-linux-gnu) | {:.2} MiB |", mib(size))),
            None => self.report.line("| release binary, static | not built (BENCH_STATIC_BINARY unset) |"),
        }
        let reference_size = fs::metadata("/usr/lib/cni/macvlan")
            .map(|m| m.len())
            .unwrap_or(0);
        self.report.line(&format!(
            "| reference macvlan binary (Debian, for comparison) | {:.2} MiB |",
            mib(reference_size)
        ));
        self.report.line("");
        self.report.line("Peak RSS is `ru_maxrss` from `wait4` (the largest of the process and its reaped children), the largest of 5 ADDs.");
        self.report.line("");
        self.target("peak RSS of one ADD (ours)", mib(ours_alone), 8.0, " MiB");
        if let Some(size) = static_size {
            self.target("static release binary size", mib(size), 3.0, " MiB");
        }
    }
}

fn machine_description() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    format!(
        "nproc {nproc}, kernel {kernel}, CPU {cpu}, {:.1} GiB RAM",
        memory as f64 / 1024.0 / 1024.0
    )
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces the part of `path` between the markers with `body` (or writes a new file).
fn write_markdown(path: &Path, body: &str) {
    const BEGIN: &str =
        "<!-- bench:begin (written by `make bench`; edits here are overwritten) -->";
    const END: &str = "<!-- bench:end -->";
    let old = fs::read_to_string(path).unwrap_or_default();
    let section = format!("{BEGIN}\n{body}\n{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{section}{}", &old[..b], &old[e + END.len()..]),
        _ if old.is_empty() => format!("# Benchmarks\n\n{section}\n"),
        _ => format!("{}\n{section}\n", old.trim_end()),
    };
    fs::write(path, new).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
}

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
