//! Test bed shared by the integration tests (`mod common;`).
//!
//! Every test builds its own LAN out of network namespaces and never touches the machine's own
//! (root) namespace: the only root-namespace commands are `ip netns add/del`, and every veth
//! is created from inside a test namespace with both ends placed in test namespaces.
//!
//! ```text
//! netns LAN:   bridge br0, up; one veth end per machine, enslaved to br0
//! netns NODE1: eth0 10.99.0.10/24 fd99::10/64, default route via PEER
//! netns NODE2: eth0 10.99.0.11/24 fd99::11/64, default route via PEER
//! netns PEER:  eth0 10.99.0.20/24 fd99::20/64 (another machine on the LAN, a router)
//! netns POD*:  empty (lo up), handed to the plugin as CNI_NETNS
//! ```
//!
//! Namespace names are `mvh-<pid>-<n>-<role>`, unique per process and per `Lan`; interface
//! names need no suffix because they live inside those namespaces. Everything is removed on
//! `Drop`, also when the test panics, and `Lan::new` first removes what a killed earlier run
//! left behind.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Prefix of every namespace and temporary directory this harness creates.
const PREFIX: &str = "mvh";
/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";
/// Where Debian's containernetworking-plugins installs the reference plugins.
const REFERENCE_PLUGINS: &str = "/usr/lib/cni";
/// The plugin under test, built by cargo for the integration tests.
pub const OUR_PLUGIN: &str = env!("CARGO_BIN_EXE_macvlan-host");
/// Its CNI type name: the file name under CNI_PATH.
pub const OUR_TYPE: &str = "macvlan-host";

/// The LAN's subnets and the machines' addresses on them.
pub const SUBNET4: &str = "10.99.0.0/24";
pub const SUBNET6: &str = "fd99::/64";
pub const NODE1_IP4: &str = "10.99.0.10";
pub const NODE1_IP6: &str = "fd99::10";
pub const NODE2_IP4: &str = "10.99.0.11";
pub const NODE2_IP6: &str = "fd99::11";
pub const PEER_IP4: &str = "10.99.0.20";
pub const PEER_IP6: &str = "fd99::20";

// ---------------------------------------------------------------------------------------------
// Unique names and leftovers
// ---------------------------------------------------------------------------------------------

/// `mvh-<pid>-<n>`: a name no other `Lan`, `TempDir` or test process uses at the same time.
fn unique_name() -> String {
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
fn entries(dir: &Path) -> Vec<String> {
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
fn os_args<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Vec<OsString> {
    args.into_iter().map(|a| a.as_ref().to_owned()).collect()
}

/// Runs a command to completion, capturing its output. Panics only if it cannot be started.
fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Panics with the command, its status and its output unless it succeeded; returns stdout.
fn expect_success(what: impl std::fmt::Debug, out: Output) -> String {
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
fn delete_netns(name: &str) {
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
    fn spawn_in<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
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
fn as_vec(v: Value) -> Vec<Value> {
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

/// One connection attempt: connect, then read the server's greeting.
fn greeted(target: SocketAddr) -> bool {
    let timeout = Duration::from_secs(1);
    let Ok(mut stream) = TcpStream::connect_timeout(&target, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let mut buf = [0u8; TcpServer::GREETING.len()];
    stream.read_exact(&mut buf).is_ok() && buf == *TcpServer::GREETING
}

// ---------------------------------------------------------------------------------------------
// TcpServer: a listener inside a namespace
// ---------------------------------------------------------------------------------------------

/// A TCP listener on a thread inside a namespace; stops and joins on `Drop`.
pub struct TcpServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpServer {
    /// What the server writes to each client, so a client knows it reached this server.
    pub const GREETING: &'static [u8] = b"macvlan-host-test\n";

    fn start(ns: &Netns, port: u16) -> TcpServer {
        let stop = Arc::new(AtomicBool::new(false));
        let (bound_tx, bound_rx) = mpsc::channel();
        let thread = ns.spawn_in({
            let stop = stop.clone();
            move || {
                let listener = TcpListener::bind(("::", port));
                let ok = listener.as_ref().map(|_| ()).map_err(|e| e.to_string());
                bound_tx.send(ok).expect("report bind");
                if let Ok(listener) = listener {
                    serve(&listener, &stop);
                }
            }
        });
        // Return only once the socket listens, so a client's first attempt can succeed.
        let bound = bound_rx.recv().expect("server thread");
        bound.unwrap_or_else(|e| panic!("listen on port {port} in {}: {e}", ns.name()));
        TcpServer {
            stop,
            thread: Some(thread),
        }
    }
}

/// Greets every client until `stop` is set (polls, so `Drop` never waits more than 50 ms).
fn serve(listener: &TcpListener, stop: &AtomicBool) {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut client, _)) => {
                let _ = client.set_nonblocking(false);
                let _ = client.write_all(TcpServer::GREETING);
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lan: the test topology
// ---------------------------------------------------------------------------------------------

/// A machine on the LAN: its namespace (through `Deref`) and its addresses on `eth0`.
#[derive(Debug)]
pub struct Node {
    pub ns: Netns,
    pub ip4: &'static str,
    pub ip6: &'static str,
}

impl Deref for Node {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.ns
    }
}

/// The LAN of the module docs. Dropping it deletes its namespaces, pods included.
#[derive(Debug)]
pub struct Lan {
    /// `mvh-<pid>-<n>`: every namespace of this LAN is named `<prefix>-<role>`.
    prefix: String,
    /// The namespace holding the bridge `br0`.
    pub switch: Netns,
    pub node1: Node,
    pub node2: Node,
    pub peer: Node,
}

impl Lan {
    /// Builds the LAN; panics (after cleaning up what it made) if any step fails.
    pub fn new() -> Lan {
        let prefix = unique_name();
        let switch = member(&prefix, "lan");
        switch.ip(["link", "add", "br0", "type", "bridge", "forward_delay", "0"]);
        switch.ip(["link", "set", "br0", "up"]);
        let node1 = plug(&switch, member(&prefix, "node1"), NODE1_IP4, NODE1_IP6);
        let node2 = plug(&switch, member(&prefix, "node2"), NODE2_IP4, NODE2_IP6);
        let peer = plug(&switch, member(&prefix, "peer"), PEER_IP4, PEER_IP6);
        for node in [&node1, &node2] {
            node.ip(["route", "add", "default", "via", PEER_IP4, "dev", "eth0"]);
            node.ip([
                "-6", "route", "add", "default", "via", PEER_IP6, "dev", "eth0",
            ]);
        }
        Lan {
            prefix,
            switch,
            node1,
            node2,
            peer,
        }
    }

    /// A new empty pod namespace (`lo` up) named `<prefix>-pod-<name>`; deleted when the pod
    /// or the LAN is dropped, whichever comes first.
    pub fn pod(&self, name: &str) -> Pod {
        member(&self.prefix, &format!("pod-{name}"))
    }

    /// Names of the namespaces that currently exist for this LAN.
    pub fn namespaces(&self) -> Vec<String> {
        namespaces_with_prefix(&self.prefix)
    }
}

impl Default for Lan {
    fn default() -> Self {
        Lan::new()
    }
}

impl Drop for Lan {
    /// Deletes every namespace of this LAN, pods the test still holds included; their own
    /// `Drop` then finds nothing to do.
    fn drop(&mut self) {
        for name in namespaces_with_prefix(&self.prefix) {
            delete_netns(&name);
        }
    }
}

/// Existing namespaces named `<prefix>-...`.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let head = format!("{prefix}-");
    entries(Path::new(NETNS_DIR))
        .into_iter()
        .filter(|n| n.starts_with(&head))
        .collect()
}

/// Namespace `<prefix>-<role>` of a LAN.
fn member(prefix: &str, role: &str) -> Netns {
    Netns::create(&format!("{prefix}-{role}"))
}

/// Makes `ns` a machine on the LAN: its `eth0` is a veth to `br0` in the switch, with the
/// machine's addresses (`nodad`: usable at once) and up.
fn plug(switch: &Netns, ns: Netns, ip4: &'static str, ip6: &'static str) -> Node {
    // The switch's end is named after the machine's namespace role (`node1`, `peer`, ...).
    let port = ns
        .name()
        .rsplit('-')
        .next()
        .expect("role suffix")
        .to_string();
    // Created inside the switch namespace: `port` stays there, `eth0` goes to the machine.
    switch.ip([
        "link",
        "add",
        &port,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns.name(),
    ]);
    switch.ip(["link", "set", &port, "master", "br0", "up"]);
    ns.ip(["addr", "add", &format!("{ip4}/24"), "dev", "eth0"]);
    ns.ip(["addr", "add", &format!("{ip6}/64"), "dev", "eth0", "nodad"]);
    ns.ip(["link", "set", "eth0", "up"]);
    Node { ns, ip4, ip6 }
}

// ---------------------------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------------------------

/// A fresh directory `<tmp>/mvh-<pid>-<n>-<label>`, removed on `Drop`. For host-local's
/// `dataDir`, the plugin's `stateDir`, CNI_PATH, ...
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        cleanup_stale();
        let path = std::env::temp_dir().join(format!("{}-{label}", unique_name()));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as a string, for JSON configurations.
    pub fn str(&self) -> &str {
        self.path.to_str().expect("temporary paths are UTF-8")
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The addresses host-local has allocated under `data_dir`, as `<network>/<ip>` (its lock
/// and `last_reserved_ip.*` bookkeeping files excluded). Empty means nothing leaked.
pub fn host_local_allocations(data_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for network in entries(data_dir) {
        for file in entries(&data_dir.join(&network)) {
            if file.parse::<IpAddr>().is_ok() {
                found.push(format!("{network}/{file}"));
            }
        }
    }
    found.sort();
    found
}

// ---------------------------------------------------------------------------------------------
// Running CNI plugins
// ---------------------------------------------------------------------------------------------

/// A directory to use as CNI_PATH: symlinks to every reference plugin plus ours, so delegated
/// IPAM (`host-local`) and conflists find their binaries.
fn make_cni_path() -> TempDir {
    let dir = TempDir::new("cni-path");
    for name in entries(Path::new(REFERENCE_PLUGINS)) {
        symlink(Path::new(REFERENCE_PLUGINS).join(&name), dir.join(&name));
    }
    symlink(PathBuf::from(OUR_PLUGIN), dir.join(OUR_TYPE));
    dir
}

fn symlink(target: PathBuf, link: PathBuf) {
    std::os::unix::fs::symlink(&target, &link)
        .unwrap_or_else(|e| panic!("symlink {link:?} -> {target:?}: {e}"));
}

/// The runtime's side of one attachment: CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
}

impl Attachment {
    /// `eth0` in `pod`, with the pod's namespace name as container id and no CNI_ARGS.
    pub fn new(pod: &Pod) -> Attachment {
        Attachment {
            container_id: pod.name().to_string(),
            netns: pod.path(),
            ifname: "eth0".to_string(),
            args: String::new(),
        }
    }

    /// For verbs without a container (STATUS, GC): every field empty.
    pub fn none() -> Attachment {
        Attachment {
            container_id: String::new(),
            netns: String::new(),
            ifname: String::new(),
            args: String::new(),
        }
    }

    pub fn with_ifname(mut self, ifname: &str) -> Attachment {
        self.ifname = ifname.to_string();
        self
    }

    pub fn with_args(mut self, args: &str) -> Attachment {
        self.args = args.to_string();
        self
    }

    /// CNI_NETNS as a runtime passes it on a DEL after the namespace is gone: empty.
    pub fn without_netns(mut self) -> Attachment {
        self.netns = String::new();
        self
    }
}

/// What one plugin call produced.
#[derive(Debug)]
pub struct CniOutput {
    pub status: ExitStatus,
    /// stdout parsed as JSON; `Null` when empty, a JSON string when it is not JSON.
    pub stdout: Value,
    pub stderr: String,
}

impl CniOutput {
    fn from_output(out: Output) -> CniOutput {
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        let stdout = if raw.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw).unwrap_or(Value::String(raw))
        };
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        CniOutput {
            status: out.status,
            stdout,
            stderr,
        }
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The result on stdout; panics with stdout and stderr unless the call succeeded.
    pub fn expect_ok(&self) -> &Value {
        assert!(
            self.success(),
            "plugin failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// The CNI error code of a failed call; panics if the call succeeded.
    pub fn expect_error(&self) -> u64 {
        assert!(
            !self.success(),
            "plugin unexpectedly succeeded: {}",
            self.stdout
        );
        self.stdout["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("no error code in {}", self.stdout))
    }
}

/// Runs one CNI plugin binary, always inside the namespace that plays the node.
#[derive(Debug)]
pub struct Plugin {
    /// The plugin's type name: its file name under `cni_path`.
    type_name: String,
    cni_path: Arc<TempDir>,
}

impl Plugin {
    /// The plugin under test.
    pub fn ours() -> Plugin {
        Plugin::by_type(OUR_TYPE)
    }

    /// A plugin by type name: ours (`macvlan-host`) or a reference plugin (`macvlan`, ...).
    pub fn by_type(type_name: &str) -> Plugin {
        Plugin::in_cni_path(type_name, Arc::new(make_cni_path()))
    }

    fn in_cni_path(type_name: &str, cni_path: Arc<TempDir>) -> Plugin {
        assert!(
            cni_path.join(type_name).exists(),
            "no CNI plugin of type {type_name}"
        );
        Plugin {
            type_name: type_name.to_string(),
            cni_path,
        }
    }

    /// The CNI_PATH given to the plugin (for configurations that name other plugins).
    pub fn cni_path(&self) -> &Path {
        self.cni_path.path()
    }

    /// Runs `command` (ADD, DEL, CHECK, GC, STATUS, VERSION) in `node` with `config` on stdin.
    pub fn run(&self, node: &Netns, command: &str, at: &Attachment, config: &Value) -> CniOutput {
        let mut cmd = node.command(self.cni_path.join(&self.type_name));
        cmd.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &at.container_id)
            .env("CNI_NETNS", &at.netns)
            .env("CNI_IFNAME", &at.ifname)
            .env("CNI_ARGS", &at.args)
            .env("CNI_PATH", self.cni_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stdin = serde_json::to_vec(config).expect("serialize config");
        // A plugin may exit without reading stdin (e.g. VERSION); a broken pipe is fine then.
        let _ = child.stdin.take().expect("piped stdin").write_all(&stdin);
        CniOutput::from_output(child.wait_with_output().expect("wait for plugin"))
    }

    pub fn add(&self, node: &Netns, at: &Attachment, config: &Value) -> CniOutput {
        self.run(node, "ADD", at, config)
    }

    pub fn del(&self, node: &Netns, at: &Attachment, config: &Value) -> CniOutput {
        self.run(node, "DEL", at, config)
    }

    pub fn check(&self, node: &Netns, at: &Attachment, config: &Value) -> CniOutput {
        self.run(node, "CHECK", at, config)
    }
}

// ---------------------------------------------------------------------------------------------
// Conflist: what libcni does with a network configuration list
// ---------------------------------------------------------------------------------------------

/// Runs a conflist the way libcni 1.1 does: ADD in order, each plugin getting the previous
/// plugin's result as `prevResult`; the final result cached per attachment; CHECK in order and
/// DEL in reverse order, every plugin getting the cached result as `prevResult`.
/// Every plugin config gets the list's `name` and `cniVersion` injected.
#[derive(Debug)]
pub struct Conflist {
    list: Value,
    cni_path: Arc<TempDir>,
    /// Cached ADD results by (container id, ifname), like libcni's result cache.
    cache: HashMap<(String, String), Value>,
}

impl Conflist {
    /// `list` is a conflist: `{"cniVersion", "name", "plugins": [...]}`.
    pub fn new(list: Value) -> Conflist {
        assert!(
            list["plugins"].is_array(),
            "a conflist needs a plugins array: {list}"
        );
        Conflist {
            list,
            cni_path: Arc::new(make_cni_path()),
            cache: HashMap::new(),
        }
    }

    pub fn cni_path(&self) -> &Path {
        self.cni_path.path()
    }

    /// The cached ADD result for `at`, if any.
    pub fn cached(&self, at: &Attachment) -> Option<&Value> {
        self.cache.get(&cache_key(at))
    }

    /// ADD through every plugin; returns the last plugin's output, or the first failure's.
    pub fn add(&mut self, node: &Netns, at: &Attachment) -> CniOutput {
        let mut prev: Option<Value> = None;
        let mut last = None;
        for conf in self.plugins() {
            let out = self.call(node, "ADD", at, &conf, prev.as_ref());
            if !out.success() {
                return out;
            }
            prev = Some(out.stdout.clone());
            last = Some(out);
        }
        let last = last.expect("a conflist has at least one plugin");
        self.cache.insert(cache_key(at), last.stdout.clone());
        last
    }

    /// CHECK through every plugin in order; returns the first failure or the last output.
    pub fn check(&self, node: &Netns, at: &Attachment) -> CniOutput {
        let cached = self.cached_for_version(at);
        self.run_all(node, "CHECK", at, self.plugins(), cached.as_ref())
    }

    /// DEL through every plugin in reverse order; forgets the cached result on success.
    pub fn del(&mut self, node: &Netns, at: &Attachment) -> CniOutput {
        let cached = self.cached_for_version(at);
        let reversed = self.plugins().into_iter().rev().collect();
        let out = self.run_all(node, "DEL", at, reversed, cached.as_ref());
        if out.success() {
            self.cache.remove(&cache_key(at));
        }
        out
    }

    /// Calls each plugin with the same `prev`, stopping at the first failure.
    fn run_all(
        &self,
        node: &Netns,
        command: &str,
        at: &Attachment,
        plugins: Vec<Value>,
        prev: Option<&Value>,
    ) -> CniOutput {
        let mut last = None;
        for conf in plugins {
            let out = self.call(node, command, at, &conf, prev);
            if !out.success() {
                return out;
            }
            last = Some(out);
        }
        last.expect("a conflist has at least one plugin")
    }

    /// One plugin call with `name`, `cniVersion` and `prevResult` injected.
    fn call(
        &self,
        node: &Netns,
        command: &str,
        at: &Attachment,
        conf: &Value,
        prev: Option<&Value>,
    ) -> CniOutput {
        let mut conf = conf.clone();
        conf["name"] = self.list["name"].clone();
        conf["cniVersion"] = self.list["cniVersion"].clone();
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        let type_name = conf["type"]
            .as_str()
            .expect("every plugin has a type")
            .to_string();
        Plugin::in_cni_path(&type_name, self.cni_path.clone()).run(node, command, at, &conf)
    }

    fn plugins(&self) -> Vec<Value> {
        self.list["plugins"].as_array().cloned().unwrap_or_default()
    }

    /// libcni passes a cached result on DEL and CHECK only from cniVersion 0.4.0 on.
    fn cached_for_version(&self, at: &Attachment) -> Option<Value> {
        let version = self.list["cniVersion"].as_str().unwrap_or("");
        let old = ["0.1.0", "0.2.0", "0.3.0", "0.3.1"].contains(&version);
        if old {
            None
        } else {
            self.cached(at).cloned()
        }
    }
}

fn cache_key(at: &Attachment) -> (String, String) {
    (at.container_id.clone(), at.ifname.clone())
}

/// A node as `Lan::new` made it, with nothing of any attachment left: no link but `lo` and
/// `eth0`, no IPv4 route but the LAN's and the default, no permanent neighbour entry.
pub fn assert_node_pristine(node: &Netns, when: &str) {
    let links: Vec<String> = node
        .ip_json(["link"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(links, ["lo", "eth0"], "{when}: links on the node");
    let routes: Vec<String> = node
        .routes("-4")
        .iter()
        .map(|r| r["dst"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        routes,
        ["default", SUBNET4],
        "{when}: IPv4 routes on the node"
    );
    let permanent: Vec<Value> = node
        .neigh()
        .into_iter()
        .filter(|n| n["state"].to_string().contains("PERMANENT"))
        .collect();
    assert!(
        permanent.is_empty(),
        "{when}: permanent neighbours on the node: {permanent:?}"
    );
}
