//! One owned network namespace (`Netns`), the commands run inside it, and the unique names
//! and stale-leftover sweep every namespace and temporary directory of the harness relies on.

use super::traffic::{greeted, TcpServer};
use serde_json::{json, Value};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::thread::{self, JoinHandle};

/// Prefix of every namespace and temporary directory this harness creates.
pub(super) const PREFIX: &str = "mvh";
/// Where `ip netns` keeps its named namespaces.
pub(super) const NETNS_DIR: &str = "/run/netns";

// ---------------------------------------------------------------------------------------------
// Unique names and leftovers
// ---------------------------------------------------------------------------------------------

/// `mvh-<pid>-<n>`: a name no other `Lan`, `TempDir` or test process uses at the same time.
pub(super) fn unique_name() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}-{}-{n}", std::process::id())
}

/// The pid in a name made by `unique_name`, if it is one of ours.
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?
        .strip_prefix('-')?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Whether `name` was made by a test process that no longer runs (a killed earlier run).
pub fn is_stale(name: &str) -> bool {
    owner_pid(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// File names in `dir`, or nothing when it cannot be read.
pub(super) fn entries(dir: &Path) -> Vec<String> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    read.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

/// Removes, once per test binary, what test processes that no longer run left behind.
/// `Netns::create` and `TempDir::new` call it.
pub fn cleanup_stale() {
    static ONCE: Once = Once::new();
    ONCE.call_once(remove_stale_leftovers);
}

/// Deletes namespaces and temporary directories made by test processes that no longer run.
pub fn remove_stale_leftovers() {
    for name in entries(Path::new(NETNS_DIR)).iter().filter(|n| is_stale(n)) {
        delete_netns(name);
    }
    let tmp = std::env::temp_dir();
    for name in entries(&tmp).iter().filter(|n| is_stale(n)) {
        let _ = fs::remove_dir_all(tmp.join(name));
    }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// Owned copies of command arguments (to run them and to show them in a failure message).
pub(super) fn os_args<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Vec<OsString> {
    args.into_iter().map(|a| a.as_ref().to_owned()).collect()
}

/// Runs a command to completion, capturing its output. Panics only if it cannot be started.
pub(super) fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Panics with the command, its status and its output unless it succeeded; returns stdout.
pub(super) fn expect_success(what: impl std::fmt::Debug, out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `ip netns add NAME` with `lo` up: the one kind of change made from the root namespace.
fn create_netns(name: &str) {
    expect_success(
        name,
        output(Command::new("ip").args(["netns", "add", name])),
    );
    expect_success(
        name,
        output(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"])),
    );
}

/// `ip netns del NAME` if it still exists; quiet, because it runs from `Drop`.
pub(super) fn delete_netns(name: &str) {
    if Path::new(NETNS_DIR).join(name).exists() {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------------------------
// Netns: one owned network namespace
// ---------------------------------------------------------------------------------------------

/// A named network namespace (`/run/netns/<name>`), deleted on `Drop`.
/// All commands run inside it; none touches the root namespace.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

/// A pod's namespace: empty except `lo`, handed to the plugin as CNI_NETNS.
pub type Pod = Netns;

impl Netns {
    /// Creates namespace `name` with `lo` up.
    pub fn create(name: &str) -> Netns {
        cleanup_stale();
        create_netns(name);
        Netns {
            name: name.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`: what a runtime passes as CNI_NETNS.
    pub fn path(&self) -> String {
        format!("{NETNS_DIR}/{}", self.name)
    }

    /// A `Command` that runs `program` inside this namespace (`nsenter --net`, which, unlike
    /// `ip netns exec`, leaves /sys alone).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.path())).arg(program);
        cmd
    }

    /// Runs `args` (program first) inside the namespace and returns its output, success or not.
    pub fn exec<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        let mut args = args.into_iter();
        let program = args.next().expect("exec needs a program");
        output(self.command(program).args(args))
    }

    /// Like `exec`, but panics unless the command succeeds; returns stdout.
    pub fn run<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> String {
        let args = os_args(args);
        expect_success((&self.name, &args), self.exec(&args))
    }

    /// `ip -n <ns> ARGS`, output whether it failed or not.
    pub fn try_ip<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        output(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// `ip -n <ns> ARGS`; panics unless it succeeds; returns stdout.
    pub fn ip<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> String {
        let args = os_args(args);
        expect_success((&self.name, "ip", &args), self.try_ip(&args))
    }

    /// `ip -j -n <ns> ARGS` parsed (`ip` prints nothing for an empty list: that is `[]`).
    pub fn ip_json<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Value {
        let mut all = vec![OsString::from("-j")];
        all.extend(os_args(args));
        let stdout = self.ip(all);
        if stdout.trim().is_empty() {
            return json!([]);
        }
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("ip -j output {stdout:?}: {e}"))
    }

    /// Whether interface `dev` exists in this namespace.
    pub fn has_link(&self, dev: &str) -> bool {
        self.try_ip(["link", "show", "dev", dev]).status.success()
    }

    /// The MAC address of `dev`.
    pub fn mac(&self, dev: &str) -> String {
        let links = self.ip_json(["link", "show", "dev", dev]);
        links[0]["address"]
            .as_str()
            .expect("link has an address")
            .to_string()
    }

    /// The neighbour table (`ip -j neigh`), all devices.
    pub fn neigh(&self) -> Vec<Value> {
        as_vec(self.ip_json(["neigh"]))
    }

    /// The routes of one family: `"-4"` or `"-6"` (`ip -j <family> route`).
    pub fn routes(&self, family: &str) -> Vec<Value> {
        as_vec(self.ip_json([family, "route"]))
    }

    /// Whether `addr` answers a ping from here: `-c1 -W1`, up to 3 attempts (the first one
    /// may be spent on neighbour resolution).
    pub fn ping(&self, addr: &str) -> bool {
        (0..3).any(|_| {
            self.exec(["ping", "-n", "-c1", "-W1", addr])
                .status
                .success()
        })
    }

    /// The MAC addresses that answered `count` ARP requests for `addr` sent out of `dev`,
    /// one entry per reply (so a duplicate answer shows up twice). iputils arping prints
    /// `Unicast reply from 10.99.0.10 [AA:BB:CC:DD:EE:FF]  0.6ms`; MACs come back lowercase.
    pub fn arping(&self, dev: &str, addr: &str, count: u32) -> Vec<String> {
        let out = self.exec(["arping", "-c", &count.to_string(), "-I", dev, addr]);
        parse_arping(&String::from_utf8_lossy(&out.stdout))
    }

    /// Runs `f` on a fresh thread that has entered this namespace, so sockets it opens live
    /// here; the test's own thread never changes namespace.
    pub fn in_netns<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn_in(f).join().expect("thread in netns panicked")
    }

    /// Starts `f` on a thread inside this namespace and returns its handle.
    pub(super) fn spawn_in<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let ns = File::open(self.path()).expect("open netns");
        thread::spawn(move || {
            // Network namespaces may be entered per thread, even in a multithreaded process.
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }

    /// Accepts TCP connections on `[::]:port` (IPv4 too) in this namespace until dropped;
    /// each connection receives `TcpServer::GREETING`.
    pub fn tcp_server(&self, port: u16) -> TcpServer {
        TcpServer::start(self, port)
    }

    /// Whether a TCP connection from here to `addr:port` reaches a server and reads its
    /// greeting; up to 3 attempts of 1 s each.
    pub fn tcp_connect(&self, addr: &str, port: u16) -> bool {
        let target = SocketAddr::new(addr.parse::<IpAddr>().expect("an IP address"), port);
        self.in_netns(move || (0..3).any(|_| greeted(target)))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_netns(&self.name);
    }
}

/// A JSON array's elements (anything else is a harness bug).
pub(super) fn as_vec(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("expected a JSON array, got {other}"),
    }
}

/// The bracketed MACs of iputils arping's reply lines, lowercase.
fn parse_arping(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.contains("reply from"))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_lowercase()))
        .collect()
}
