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

mod common;
mod containerd;

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
    shape: Shape,
    host_access: &'static str,
    state: TempDir,
    host_local: TempDir,
}

impl Network {
    fn new(shape: Shape, host_access: &'static str) -> Network {
        let name = format!("mvh-cri-{shape:?}-{host_access}").to_lowercase();
        Network {
            state: TempDir::new(&format!("{name}-state")),
            host_local: TempDir::new(&format!("{name}-host-local")),
            name,
            shape,
            host_access,
        }
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
        });
        let plugins = match self.shape {
            Shape::Chained => json!([
                {"type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": ipam},
                ours,
            ]),
            Shape::Interface => {
                let mut ours = ours;
                ours["master"] = json!("eth0");
                ours["ipam"] = ipam;
                json!([ours])
            }
        };
        json!({"cniVersion": "1.0.0", "name": self.name, "plugins": plugins})
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
fn two_pods(cd: &Containerd, lan: &Lan, shape: Shape, host_access: &'static str) {
    let network = Network::new(shape, host_access);
    let case = network.name.clone();
    cd.use_conflist(&network.conflist());
    let pods = [run_pod(cd, "pod-a"), run_pod(cd, "pod-b")];
    assert_ne!(pods[0].ip, pods[1].ip, "{case}: two pods, one address");
    for pod in &pods {
        assert_connected(cd, lan, pod, &case);
    }
    // libcni cached each pod's result of this list: what the checks after DEL look for.
    let cached = files_under(&cd.cni_cache_dir().join("results"));
    let ours = cached.iter().filter(|f| f.starts_with(&network.name));
    assert_eq!(
        ours.count(),
        2,
        "{case}: libcni's cache while pods run: {cached:?}"
    );

    for pod in &pods {
        cd.cri("stop-container", json!({"containerId": pod.container}));
        cd.cri("stop-pod", json!({"podId": pod.id}));
    }
    assert_nothing_left(cd, lan, &network, &format!("{case}: after StopPodSandbox"));
    for pod in &pods {
        cd.cri("stop-pod", json!({"podId": pod.id}));
        cd.cri("remove-pod", json!({"podId": pod.id}));
    }
    assert_eq!(
        cd.cri("list-pods", json!({})),
        json!([]),
        "{case}: sandboxes"
    );
    assert_nothing_left(
        cd,
        lan,
        &network,
        &format!("{case}: after RemovePodSandbox"),
    );
}

#[test]
fn containerd_cri_pods_on_chained_and_interface_conflists() {
    let lan = Lan::new();
    let _node_listener = lan.node1.tcp_server(NODE_PORT);
    let cd = Containerd::start(&lan.node1);
    for shape in [Shape::Chained, Shape::Interface] {
        for host_access in ["shim", "veth"] {
            two_pods(&cd, &lan, shape, host_access);
        }
    }
}
