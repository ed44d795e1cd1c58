//! A node with live pods and the disturbances that break their host side, shared by
//! `tests/reconcile.rs`, `tests/watch.rs` and `tests/diagnose.rs`.
//!
//! NODE1 carries three shim pods (network `lan`) and one veth pod (network `lanveth`), all
//! dual stack, with one `stateDir` for both networks, so one `--state-dir` covers them all.

#![allow(dead_code)] // Each test binary uses a different part.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const TCP_PORT: u16 = 8081;
/// Where a renumbered NODE1 moves on eth0.
pub const RENUMBERED_IP4: &str = "10.99.0.12";

/// A way the node's network changes under live pods.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Disturbance {
    /// `ip link del mvh-eth0` with 3 pods on it.
    ShimDeleted,
    /// `ip route flush dev mvh-eth0`.
    RoutesFlushed,
    /// `ip neigh flush dev mvh-eth0 nud all`.
    ShimNeighboursFlushed,
    /// `ip neigh flush all nud all` inside a pod.
    PodNeighboursFlushed,
    /// `ip link set mvh-eth0 address ...`.
    ShimMacChanged,
    /// `ip link del <veth node end>`.
    VethNodeEndDeleted,
    /// eth0 down and up; its IPv6 address (which the kernel removes on down) put back, as a
    /// network manager does.
    MasterDownUp,
    /// `ip link set eth0 address ...`: the master's MAC changes (a bridge that gained a port
    /// with a lower MAC, a bond failing over with `fail_over_mac=active`).
    MasterMacChanged,
    /// eth0 (and its switch port) from 1500 to 9000: jumbo frames switched on.
    MasterMtuRaised,
    /// 10.99.0.10 -> 10.99.0.12 on eth0 (DHCP).
    Renumbered,
}

/// The master's new MAC of `Disturbance::MasterMacChanged`.
pub const NEW_MASTER_MAC: &str = "02:00:00:00:00:42";

pub const ALL: [Disturbance; 10] = [
    Disturbance::ShimDeleted,
    Disturbance::RoutesFlushed,
    Disturbance::ShimNeighboursFlushed,
    Disturbance::PodNeighboursFlushed,
    Disturbance::ShimMacChanged,
    Disturbance::VethNodeEndDeleted,
    Disturbance::MasterDownUp,
    Disturbance::MasterMacChanged,
    Disturbance::MasterMtuRaised,
    // Last: NODE1 keeps its new address.
    Disturbance::Renumbered,
];

pub struct PodAt {
    pub pod: Pod,
    pub at: Attachment,
    pub conf: Value,
    pub ip4: String,
    pub ip6: String,
    pub veth: bool,
    _server: TcpServer,
}

pub struct Bed {
    pub pods: Vec<PodAt>,
    pub plugin: Plugin,
    pub state: TempDir,
    pub data: TempDir,
    pub node_ip4: String,
    _node_server: TcpServer,
    pub lan: Lan,
}

/// A network of ours in interface mode, dual stack, with its own host-local ranges.
pub fn network(
    name: &str,
    host_access: &str,
    first: u8,
    last: u8,
    state: &TempDir,
    data: &TempDir,
) -> Value {
    json!({
        "cniVersion": "1.1.0",
        "name": name,
        "type": OUR_TYPE,
        "master": "eth0",
        "hostAccess": host_access,
        "stateDir": state.str(),
        "ipam": {
            "type": "host-local",
            "dataDir": data.str(),
            "ranges": [
                [{"subnet": SUBNET4, "rangeStart": format!("10.99.0.{first}"), "rangeEnd": format!("10.99.0.{last}")}],
                [{"subnet": SUBNET6, "rangeStart": format!("fd99::{first}"), "rangeEnd": format!("fd99::{last}")}],
            ],
        },
    })
}

impl Bed {
    /// The LAN, three shim pods and one veth pod on NODE1, each serving TCP.
    pub fn new() -> Bed {
        let lan = Lan::new();
        let state = TempDir::new("state");
        let data = TempDir::new("host-local");
        let plugin = Plugin::ours();
        let shim_net = network("lan", "shim", 100, 129, &state, &data);
        let veth_net = network("lanveth", "veth", 130, 139, &state, &data);
        let mut pods = Vec::new();
        for (i, conf) in [&shim_net, &shim_net, &shim_net, &veth_net]
            .into_iter()
            .enumerate()
        {
            let pod = lan.pod(&format!("p{i}"));
            let at = Attachment::new(&pod);
            let result = plugin.add(&lan.node1, &at, conf).expect_ok().clone();
            let server = pod.tcp_server(TCP_PORT);
            pods.push(PodAt {
                ip4: result_ip(&result, false),
                ip6: result_ip(&result, true),
                veth: conf["hostAccess"] == "veth",
                conf: conf.clone(),
                at,
                pod,
                _server: server,
            });
        }
        let node_server = lan.node1.tcp_server(TCP_PORT);
        Bed {
            pods,
            plugin,
            state,
            data,
            node_ip4: NODE1_IP4.to_string(),
            _node_server: node_server,
            lan,
        }
    }

    pub fn node(&self) -> &Netns {
        &self.lan.node1
    }

    /// `macvlan-host <command> --state-dir <ours> <extra>` inside NODE1.
    pub fn command(&self, command: &str, extra: &[&str]) -> Output {
        let out = self
            .node()
            .command(OUR_PLUGIN)
            .arg(command)
            .args(["--state-dir", self.state.str()])
            .args(extra)
            .env_remove("CNI_COMMAND")
            .stdin(Stdio::null())
            .output()
            .expect("run macvlan-host");
        out
    }

    /// Applies one disturbance; returns when the kernel has it.
    pub fn disturb(&mut self, what: Disturbance) {
        let node = &self.lan.node1;
        match what {
            Disturbance::ShimDeleted => {
                node.ip(["link", "del", SHIM]);
            }
            Disturbance::RoutesFlushed => {
                node.ip(["route", "flush", "dev", SHIM]);
                node.ip(["-6", "route", "flush", "dev", SHIM]);
            }
            Disturbance::ShimNeighboursFlushed => {
                node.ip(["neigh", "flush", "dev", SHIM, "nud", "all"]);
                node.ip(["-6", "neigh", "flush", "dev", SHIM, "nud", "all"]);
            }
            Disturbance::PodNeighboursFlushed => {
                for p in &self.pods {
                    p.pod.ip(["neigh", "flush", "all", "nud", "all"]);
                    p.pod.ip(["-6", "neigh", "flush", "all", "nud", "all"]);
                }
            }
            Disturbance::ShimMacChanged => {
                node.ip(["link", "set", SHIM, "address", "02:00:00:aa:bb:cc"]);
            }
            Disturbance::VethNodeEndDeleted => {
                let veth = self.veth_node_end();
                node.ip(["link", "del", &veth]);
            }
            Disturbance::MasterDownUp => {
                node.ip(["link", "set", "eth0", "down"]);
                node.ip(["link", "set", "eth0", "up"]);
                // The kernel drops a static IPv6 address on down; a network manager puts it back.
                let _ = node.try_ip([
                    "addr",
                    "add",
                    &format!("{NODE1_IP6}/64"),
                    "dev",
                    "eth0",
                    "nodad",
                ]);
            }
            Disturbance::MasterMacChanged => {
                node.ip(["link", "set", "eth0", "address", NEW_MASTER_MAC]);
            }
            Disturbance::MasterMtuRaised => {
                self.lan.set_node1_mtu(9000);
            }
            Disturbance::Renumbered => {
                node.ip([
                    "addr",
                    "del",
                    &format!("{}/24", self.node_ip4),
                    "dev",
                    "eth0",
                ]);
                node.ip([
                    "addr",
                    "add",
                    &format!("{RENUMBERED_IP4}/24"),
                    "dev",
                    "eth0",
                ]);
                self.node_ip4 = RENUMBERED_IP4.to_string();
            }
        }
    }

    /// `ip link del mvh-eth0` (for a test that needs no `&mut`).
    pub fn disturb_shim_deleted(&self) {
        self.lan.node1.ip(["link", "del", SHIM]);
    }

    /// The shim's `arp_ignore` back to the kernel default (a sysctl reset: no rtnetlink
    /// notification tells anyone).
    pub fn unharden_shim(&self) {
        self.lan.node1.run([
            "sysctl",
            "-qw",
            &format!("net.ipv4.conf.{SHIM}.arp_ignore=0"),
        ]);
    }

    /// The node end of the veth pod's pair (`mvh` + hash).
    pub fn veth_node_end(&self) -> String {
        let links = self.node().ip_json(["link"]);
        links
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["ifname"].as_str())
            .find(|n| n.starts_with("mvh") && *n != SHIM)
            .expect("the veth pod's node end")
            .to_string()
    }

    /// Node <-> every pod, both ways, ping (IPv4 and IPv6) and TCP; the LAN peer sees only
    /// the master's MAC for the node's address.
    pub fn assert_works(&self, when: &str) {
        let node = self.node();
        for p in &self.pods {
            for ip in [&p.ip4, &p.ip6] {
                assert!(node.ping(ip), "{when}: node -> pod {ip}");
            }
            assert!(
                node.tcp_connect(&p.ip4, TCP_PORT),
                "{when}: node -> pod {} TCP",
                p.ip4
            );
            assert!(
                p.pod.ping(&self.node_ip4),
                "{when}: pod {} -> node {}",
                p.ip4,
                self.node_ip4
            );
            assert!(
                p.pod.ping(NODE1_IP6),
                "{when}: pod {} -> node {NODE1_IP6}",
                p.ip6
            );
            assert!(
                p.pod.tcp_connect(&self.node_ip4, TCP_PORT),
                "{when}: pod {} -> node TCP",
                p.ip4
            );
        }
        // Every shim pod's entries for the node name the shim's MAC as it is now; the shim
        // carries the master's MTU.
        let shim_mac = node.mac(SHIM);
        for p in self.pods.iter().filter(|p| !p.veth) {
            for n in p.pod.neigh() {
                if n["state"].to_string().contains("PERMANENT") {
                    assert_eq!(
                        n["lladdr"].as_str(),
                        Some(shim_mac.as_str()),
                        "{when}: pod {}'s neighbour entry {n}",
                        p.ip4
                    );
                }
            }
        }
        assert_eq!(
            link_mtu(node, SHIM),
            link_mtu(node, "eth0"),
            "{when}: the shim's MTU is the master's"
        );
        let eth0 = node.mac("eth0");
        assert_eq!(
            self.lan.peer.arping("eth0", &self.node_ip4, 1),
            vec![eth0],
            "{when}: the LAN sees the node's address only with the master's MAC"
        );
    }

    /// Polls `diagnose` until it reports a healthy node; panics with its last output after
    /// `timeout` (a repair that never comes, not a slow one: the timeout is generous).
    pub fn wait_until_healthy(&self, when: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            let out = self.command("diagnose", &[]);
            if out.status.code() == Some(0) {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "{when}: not repaired after {timeout:?}:\n{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// DEL of every pod; then the node must be as `Lan::new` made it.
    pub fn delete_all(&self) {
        for p in &self.pods {
            self.plugin.del(self.node(), &p.at, &p.conf).expect_ok();
        }
    }
}

/// A link's MTU.
pub fn link_mtu(ns: &Netns, dev: &str) -> u64 {
    ns.ip_json(["link", "show", dev])[0]["mtu"]
        .as_u64()
        .expect("mtu")
}

/// Nothing of any attachment on the node: links `lo` and `eth0` only, every route on `eth0`,
/// no permanent neighbour entry. (Not `assert_node_pristine`: a renumbered or bounced master
/// has lost the LAN's default route, which is no business of ours.)
pub fn assert_nothing_left(node: &Netns, when: &str) {
    let only_lan = BTreeSet::from(["eth0".to_string(), "lo".to_string()]);
    assert_eq!(link_names(node), only_lan, "{when}: links on the node");
    for family in ["-4", "-6"] {
        for route in node.routes(family) {
            assert_eq!(route["dev"], "eth0", "{when}: a route left: {route}");
        }
    }
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

/// `reconcile --watch` inside a node namespace, stopped by PID (SIGTERM) on drop.
pub struct Watcher {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Watcher {
    pub fn start(node: &Netns, state_dirs: &[&Path], log_dir: &TempDir, extra: &[&str]) -> Watcher {
        Watcher::spawn(node.command(OUR_PLUGIN), state_dirs, log_dir, extra)
    }

    /// `cmd` (the binary, run however the test needs) with `reconcile --watch` and the rest.
    pub fn spawn(
        mut cmd: Command,
        state_dirs: &[&Path],
        log_dir: &TempDir,
        extra: &[&str],
    ) -> Watcher {
        let log = log_dir.join("watch.log");
        let file = fs::File::create(&log).expect("watch log");
        cmd.args(["reconcile", "--watch"]);
        for dir in state_dirs {
            cmd.arg("--state-dir").arg(dir);
        }
        let child = cmd
            .args(extra)
            .env_remove("CNI_COMMAND")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the watcher");
        let watcher = Watcher {
            child: Some(child),
            log,
        };
        // Ready once it says so (its first full pass is done and it listens).
        let start = Instant::now();
        while !watcher.log().contains("watching") {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "watcher did not start:\n{}",
                watcher.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        watcher
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// CPU time (user + system, clock ticks) the watcher has used so far.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        let after = stat.rsplit_once(')').expect("comm").1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// SIGTERM, and the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.stop_with("TERM")
    }

    /// `kill -<signal>` by PID, and the exit status.
    pub fn stop_with(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        child.wait().expect("wait for the watcher")
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The watcher's HTTP endpoints (`--metrics-address`)
// ---------------------------------------------------------------------------------------------

/// Where the tests' watchers listen: NODE1's own loopback.
pub const METRICS_ADDRESS: &str = "127.0.0.1:9447";

/// `http_get`, which must answer within 5 s.
pub fn http_get_ok(node: &Netns, path: &str) -> (u16, String) {
    http_get(node, METRICS_ADDRESS, path, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no answer to GET {path}"))
}

/// Every sample of a scrape of /metrics: `name{labels}` -> value.
pub fn scrape(node: &Netns) -> std::collections::HashMap<String, f64> {
    let (status, body) = http_get_ok(node, "/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect()
}

/// One sample of a scrape; panics naming it when it is missing.
pub fn sample(samples: &std::collections::HashMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("no sample {name} in {samples:#?}"))
}
