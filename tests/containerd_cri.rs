//! containerd's CRI, the runtime path kubelet uses: Debian's containerd 1.6 on NODE1 of the test
//! LAN, driven over the CRI API by `tests/cri-driver` in kubelet's order: RunPodSandbox,
//! CreateContainer, StartContainer, PodSandboxStatus, then StopContainer, StopPodSandbox twice
//! (kubelet repeats it) and RemovePodSandbox. containerd runs the conflist through libcni; the
//! DELs of the second StopPodSandbox and of RemovePodSandbox come without a netns and without
//! a prevResult.
//!
//! One containerd serves every case, one after the other: each case installs its conflist
//! (chained after the reference `macvlan`, or `macvlan-host` alone with delegated IPAM; shim or
//! veth), runs two pods, checks node <-> pod both ways and pod -> LAN, tears them down and
//! checks that nothing is left.
//!
//! The same four cases run against containerd 1.7 from Debian trixie (at cniVersion 1.0.0, with
//! the machine's reference plugins 1.1.1) and containerd 2.1 from Debian sid (at cniVersion
//! 1.1.0, with sid's reference plugins 1.9), each in a runtime node (`common::runtime_node`).
//! containerd 2 also asks the conflist for STATUS to report the node's network readiness in
//! the CRI Status call (what kubelet turns into the node's Ready condition): with the master
//! down or missing it reports the network not ready with our message, and ready again once the
//! master is back.
//!
//! The containerd 1.7 and 2.1 tests skip (with a message) only when their root cannot be built.

mod common;
mod containerd;

use common::runtime_node::{runtime_root_or_skip, Suite};
use common::*;
use containerd::{eventually, Containerd, IMAGE};
use serde_json::{json, Value};
use std::time::Duration;

/// Where a pod's container listens; NODE1's listener for the pods.
const POD_PORT: u16 = 8080;
const NODE_PORT: u16 = 9090;

/// The pod's container: greets each TCP client on POD_PORT the way `TcpServer` does.
fn greeter() -> Vec<String> {
    let greeting = String::from_utf8_lossy(TcpServer::GREETING);
    let script = format!(
        "while true; do echo {} | nc -l -p {POD_PORT}; done",
        greeting.trim()
    );
    vec!["/bin/sh".into(), "-c".into(), script]
}

/// What one case attaches pods through.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Reference `macvlan` + `host-local`, then `macvlan-host`.
    Chained,
    /// `macvlan-host` alone, delegating to `host-local` (interface mode).
    Interface,
}

/// One conflist with its own stateDir and host-local dataDir.
struct Network {
    name: String,
    cni_version: &'static str,
    shape: Shape,
    host_access: &'static str,
    /// The master of interface mode (and of the reference `macvlan`).
    master: &'static str,
    state: TempDir,
    host_local: TempDir,
    /// Our `logFile` (at debug level: one line per call, tagged with its verb).
    log: TempDir,
}

impl Network {
    fn new(
        cd: &Containerd,
        cni_version: &'static str,
        shape: Shape,
        host_access: &'static str,
    ) -> Network {
        let name = format!("mvh-cri-{shape:?}-{host_access}").to_lowercase();
        Network {
            state: cd.temp_dir(&format!("{name}-state")),
            host_local: cd.temp_dir(&format!("{name}-host-local")),
            log: cd.temp_dir(&format!("{name}-log")),
            name,
            cni_version,
            shape,
            host_access,
            master: "eth0",
        }
    }

    /// Attaches through `master` instead of eth0.
    fn with_master(mut self, master: &'static str) -> Network {
        self.master = master;
        self
    }

    fn conflist(&self) -> Value {
        let ipam = json!({
            "type": "host-local",
            "dataDir": self.host_local.str(),
            "ranges": [[{"subnet": SUBNET4, "rangeStart": "10.99.0.100", "rangeEnd": "10.99.0.149"}]],
        });
        let ours = json!({
            "type": OUR_TYPE,
            "hostAccess": self.host_access,
            "stateDir": self.state.str(),
            "logFile": self.log.join("plugin.log"),
            "logLevel": "debug",
        });
        let plugins = match self.shape {
            Shape::Chained => json!([
                {"type": "macvlan", "master": self.master, "mode": "bridge", "ipam": ipam},
                ours,
            ]),
            Shape::Interface => {
                let mut ours = ours;
                ours["master"] = json!(self.master);
                ours["ipam"] = ipam;
                json!([ours])
            }
        };
        json!({"cniVersion": self.cni_version, "name": self.name, "plugins": plugins})
    }

    /// The verbs the runtime called us with, from our log
    /// (`<time> macvlan-host[<pid>] <VERB> <container> <ifname> <LEVEL>: ...`).
    fn verbs(&self) -> std::collections::BTreeSet<String> {
        let log = std::fs::read_to_string(self.log.join("plugin.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| l.split_once("] ")?.1.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }

    /// Records in our stateDir (its lock file aside).
    fn records(&self) -> Vec<String> {
        files_under(self.state.path())
            .into_iter()
            .filter(|f| f != "lock")
            .collect()
    }
}

/// A pod sandbox and its one container, as kubelet created them.
struct RunningPod {
    name: String,
    id: String,
    container: String,
    ip: String,
}

/// The sandbox config the driver builds for `name` (kubelet sends the same one to
/// RunPodSandbox and CreateContainer).
fn pod_config(cd: &Containerd, name: &str) -> Value {
    json!({
        "name": name,
        "namespace": "default",
        "uid": format!("uid-{name}"),
        "cgroupParent": format!("{}/{name}", cd.cgroup_parent()),
        "logDirectory": cd.log_directory(name),
    })
}

/// RunPodSandbox, CreateContainer, StartContainer, PodSandboxStatus.
fn run_pod(cd: &Containerd, name: &str) -> RunningPod {
    let config = pod_config(cd, name);
    let id = cd.cri("run-pod", config.clone())["podId"]
        .as_str()
        .expect("a pod id")
        .to_string();
    let created = cd.cri(
        "create-container",
        json!({"podId": id, "pod": config, "name": "app", "image": IMAGE, "command": greeter()}),
    );
    let container = created["containerId"].as_str().expect("an id").to_string();
    cd.cri("start-container", json!({"containerId": container}));
    let status = cd.cri("pod-status", json!({"podId": id}));
    assert_eq!(status["state"], "SANDBOX_READY", "{name}: {status}");
    let ip = status["ip"].as_str().unwrap_or_default().to_string();
    assert!(
        ip.starts_with("10.99.0.1"),
        "{name}: the CNI result's address in PodSandboxStatus: {status}"
    );
    RunningPod {
        name: name.to_string(),
        id,
        container,
        ip,
    }
}

/// ExecSync in the pod's container; its output when it exits 0 within a few attempts.
fn exec_in(cd: &Containerd, pod: &RunningPod, cmd: &[&str]) -> Option<String> {
    (0..3).find_map(|_| {
        let request = json!({"containerId": pod.container, "cmd": cmd, "timeoutSeconds": 10});
        let out = cd.cri("exec", request);
        (out["exitCode"] == 0).then(|| out["stdout"].as_str().unwrap_or_default().to_string())
    })
}

/// NODE1 reaches the pod (ping, TCP to its container) and the container reaches NODE1 (ping,
/// TCP) and PEER (ping).
fn assert_connected(cd: &Containerd, lan: &Lan, pod: &RunningPod, case: &str) {
    let (name, ip) = (&pod.name, &pod.ip);
    let addresses = exec_in(cd, pod, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(
        addresses.is_some_and(|a| a.contains(&format!(" {ip}/"))),
        "{case}: {name}'s eth0 does not hold {ip}"
    );
    assert!(lan.node1.ping(ip), "{case}: NODE1 -> {name} ({ip}): ping");
    let tcp_to_pod = || lan.node1.tcp_connect(ip, POD_PORT);
    assert!(
        eventually(Duration::from_secs(5), tcp_to_pod),
        "{case}: NODE1 -> {name} ({ip}): TCP to its container"
    );
    let ping = |to: &str| exec_in(cd, pod, &["ping", "-c1", "-W1", to]).is_some();
    assert!(ping(NODE1_IP4), "{case}: {name} ({ip}) -> NODE1: ping");
    assert!(ping(PEER_IP4), "{case}: {name} ({ip}) -> PEER: ping");
    let port = NODE_PORT.to_string();
    let greeting = exec_in(cd, pod, &["nc", "-w", "2", NODE1_IP4, &port]);
    assert_eq!(
        greeting.as_deref().map(str::as_bytes),
        Some(TcpServer::GREETING),
        "{case}: {name} ({ip}) -> NODE1: TCP"
    );
}

/// Nothing of any pod is left: NODE1 as `Lan::new` made it (links, routes, permanent
/// neighbours), no record in the stateDir, no host-local allocation, nothing in libcni's cache.
fn assert_nothing_left(cd: &Containerd, lan: &Lan, network: &Network, when: &str) {
    assert_node_pristine(&lan.node1, when);
    assert!(
        network.records().is_empty(),
        "{when}: records in stateDir: {:?}",
        network.records()
    );
    let allocations = host_local_allocations(network.host_local.path());
    assert!(
        allocations.is_empty(),
        "{when}: allocations: {allocations:?}"
    );
    let cached = files_under(&cd.cni_cache_dir().join("results"));
    assert!(cached.is_empty(), "{when}: libcni's cache: {cached:?}");
}

/// Two pods on `network` through their whole life.
fn two_pods(cd: &Containerd, lan: &Lan, network: Network) {
    let case = format!("{} (cniVersion {})", network.name, network.cni_version);
    let started = std::time::Instant::now();
    cd.use_conflist(&network.conflist());
    let pods = [run_pod(cd, "pod-a"), run_pod(cd, "pod-b")];
    assert_ne!(pods[0].ip, pods[1].ip, "{case}: two pods, one address");
    for pod in &pods {
        assert_connected(cd, lan, pod, &case);
    }
    // The plugins keep their state where the checks after DEL look for it.
    assert!(
        !network.records().is_empty(),
        "{case}: no record while pods run"
    );
    let allocations = host_local_allocations(network.host_local.path());
    assert_eq!(allocations.len(), 2, "{case}: allocations: {allocations:?}");
    // libcni cached each pod's result of this list: what the checks after DEL look for.
    let cached = files_under(&cd.cni_cache_dir().join("results"));
    let ours = cached.iter().filter(|f| f.starts_with(&network.name));
    assert_eq!(
        ours.count(),
        2,
        "{case}: libcni's cache while pods run: {cached:?}"
    );

    remove_pods(cd, lan, &network, &pods, &case);
    // What the runtime called: ADD and DEL always; STATUS too at 1.1.0 (libcni asks for it
    // only from that version on), which containerd 2 does for the node's readiness.
    let verbs = network.verbs();
    eprintln!("{case}: {} called {verbs:?}", cd.version());
    let mut expected = vec!["ADD", "DEL"];
    if network.cni_version == "1.1.0" {
        expected.push("STATUS");
    }
    for verb in expected {
        assert!(
            verbs.contains(verb),
            "{case}: never called {verb}: {verbs:?}"
        );
    }
    eprintln!("{case}: {:.1} s", started.elapsed().as_secs_f64());
}

/// kubelet's teardown: StopContainer, StopPodSandbox, then StopPodSandbox again and
/// RemovePodSandbox; nothing is left after the first StopPodSandbox already.
fn remove_pods(cd: &Containerd, lan: &Lan, network: &Network, pods: &[RunningPod], case: &str) {
    for pod in pods {
        cd.cri("stop-container", json!({"containerId": pod.container}));
        cd.cri("stop-pod", json!({"podId": pod.id}));
    }
    assert_nothing_left(cd, lan, network, &format!("{case}: after StopPodSandbox"));
    for pod in pods {
        cd.cri("stop-pod", json!({"podId": pod.id}));
        cd.cri("remove-pod", json!({"podId": pod.id}));
    }
    assert_eq!(
        cd.cri("list-pods", json!({})),
        json!([]),
        "{case}: sandboxes"
    );
    assert_nothing_left(cd, lan, network, &format!("{case}: after RemovePodSandbox"));
}

/// The four cases, one after the other, on one containerd.
fn four_cases(cd: &Containerd, lan: &Lan, cni_version: &'static str) {
    for shape in [Shape::Chained, Shape::Interface] {
        for host_access in ["shim", "veth"] {
            two_pods(cd, lan, Network::new(cd, cni_version, shape, host_access));
        }
    }
}

#[test]
fn containerd_cri_pods_on_chained_and_interface_conflists() {
    let lan = Lan::new();
    let _node_listener = lan.node1.tcp_server(NODE_PORT);
    let cd = Containerd::start(&lan.node1);
    four_cases(&cd, &lan, "1.0.0");
}

/// The containerd of `suite`'s root in a runtime node on NODE1, checked to be `version`;
/// `None` when the root cannot be built.
fn containerd_in_node(suite: Suite, version: &str, lan: &Lan) -> Option<Containerd> {
    runtime_root_or_skip(suite)?;
    let cd = Containerd::start_in_node(suite, &lan.node1);
    let found = cd.version();
    assert!(found.contains(version), "containerd --version: {found}");
    Some(cd)
}

/// containerd 2.1 (Debian sid) in a runtime node on NODE1.
fn containerd_2_1(lan: &Lan) -> Option<Containerd> {
    containerd_in_node(Suite::Sid, " 2.1.", lan)
}

#[test]
fn containerd_1_7_cri_pods_on_chained_and_interface_conflists() {
    let lan = Lan::new();
    let _node_listener = lan.node1.tcp_server(NODE_PORT);
    let Some(cd) = containerd_in_node(Suite::Trixie, " 1.7.", &lan) else {
        return;
    };
    four_cases(&cd, &lan, "1.0.0");
}

#[test]
fn containerd_2_1_cri_pods_on_cni_1_1_conflists() {
    let lan = Lan::new();
    let _node_listener = lan.node1.tcp_server(NODE_PORT);
    let Some(cd) = containerd_2_1(&lan) else {
        return;
    };
    four_cases(&cd, &lan, "1.1.0");
}

/// containerd 2's CRI Status: (networkReady, the NetworkReady condition's message).
fn network_readiness(cd: &Containerd) -> (bool, String) {
    let status = cd.cri("status", json!({}));
    let message = status["networkMessage"].as_str().unwrap_or_default();
    (status["networkReady"] == json!(true), message.to_string())
}

/// Waits until containerd reports the network ready (`true`) or not; the last message.
fn network_becomes(cd: &Containerd, ready: bool, when: &str) -> String {
    let mut last = (!ready, String::new());
    let reached = eventually(Duration::from_secs(10), || {
        last = network_readiness(cd);
        last.0 == ready
    });
    assert!(
        reached,
        "{when}: containerd's NetworkReady stayed {} ({:?})",
        last.0, last.1
    );
    eprintln!("{when}: NetworkReady {ready} {:?}", last.1);
    last.1
}

#[test]
fn containerd_2_1_network_readiness_follows_the_master_through_cni_status() {
    let lan = Lan::new();
    let Some(cd) = containerd_2_1(&lan) else {
        return;
    };
    // The network's master is a link of its own (a veth pair inside NODE1): what a VLAN
    // sub-interface or a bond is on a real node, which can be down or not there yet.
    let master = "uplink";
    let add_master = || {
        lan.node1.ip([
            "link",
            "add",
            master,
            "type",
            "veth",
            "peer",
            "name",
            "uplink-peer",
        ]);
        lan.node1.ip(["link", "set", "uplink-peer", "up"]);
        lan.node1.ip(["link", "set", master, "up"]);
        // An address for the node to reach pods from (a /32: no route of its own).
        lan.node1
            .ip(["addr", "add", "10.99.0.12/32", "dev", master]);
    };
    add_master();
    let network = Network::new(&cd, "1.1.0", Shape::Interface, "shim").with_master(master);
    cd.use_conflist(&network.conflist());
    network_becomes(&cd, true, "master up");

    lan.node1.ip(["link", "set", master, "down"]);
    let message = network_becomes(&cd, false, "master down");
    assert!(
        message.contains(master) && message.contains("down"),
        "master down: the NetworkReady message does not say why: {message:?}"
    );

    lan.node1.ip(["link", "del", master]);
    let message = network_becomes(&cd, false, "master missing");
    assert!(
        message.contains(master),
        "master missing: the NetworkReady message does not name it: {message:?}"
    );

    add_master();
    network_becomes(&cd, true, "master back");
    // Ready means it: a pod is attached through the master that came back, and leaves
    // nothing behind.
    let case = "readiness";
    let pod = run_pod(&cd, "pod-after");
    let on_master = lan.node1.ip(["-d", "link", "show", "type", "macvlan"]);
    assert!(
        on_master.contains(&format!("@{master}")),
        "{case}: the shim is not on {master}: {on_master}"
    );
    cd.cri("stop-container", json!({"containerId": pod.container}));
    cd.cri("stop-pod", json!({"podId": pod.id}));
    cd.cri("remove-pod", json!({"podId": pod.id}));
    let shims = lan.node1.ip(["link", "show", "type", "macvlan"]);
    assert!(shims.trim().is_empty(), "{case}: links left: {shims}");
    lan.node1.ip(["link", "del", master]);
    assert_nothing_left(&cd, &lan, &network, case);
}
