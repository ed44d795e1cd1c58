//! Real podman 5 with netavark (Debian trixie's 5.4 / 1.14 in `make test`; sid's 5.8 / 1.17 in
//! `make test-runtimes-sid`), inside NODE1 of the test LAN (`common::runtime_node`): podman
//! runs `macvlan-host` from the build output as a netavark plugin. Each scenario asserts what a
//! podman user relies on, and that nothing is left when the containers and networks are gone.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::common::runtime_node::*;
use crate::common::*;

const IMAGE: &str = "localhost/mvh-netavark:latest";
const C4: &str = "10.99.0.150";
const C6: &str = "fd99::150";
const MAC: &str = "02:00:00:00:00:42";

/// podman in a runtime node on NODE1, with this build's plugin in `netavark_plugin_dirs` and
/// the busybox image imported.
pub struct Podman {
    pub node: RuntimeNode,
    env: Vec<(String, String)>,
    cgroup_parent: String,
    /// The plugin's state directory (`-o state_dir=`), the same path in and out of the node.
    pub state: PathBuf,
}

impl Podman {
    /// None (after saying why) when the suite's root file system cannot be built.
    pub fn start(suite: Suite, lan: &Lan) -> Option<Podman> {
        runtime_root_or_skip(suite)?;
        let node = RuntimeNode::start(suite, lan.node1.name());
        let plugin_dir = node.our_plugin();
        let plugin_dir = plugin_dir.parent().expect("the plugin's directory");
        let env = node.podman_env(&[plugin_dir.to_str().expect("UTF-8")]);
        let state = node.work().join("netavark-state");
        let cgroup_parent = format!("--cgroup-parent={}/podman", node.cgroup_parent());
        let podman = Podman {
            node,
            env,
            cgroup_parent,
            state,
        };
        let tar = podman.node.busybox_image_tar();
        podman.ok(&["import", tar.to_str().expect("UTF-8"), IMAGE]);
        Some(podman)
    }

    pub fn podman(&self, args: &[&str]) -> Output {
        self.node.podman(&self.env, args)
    }

    /// Runs `podman ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman network create -d DRIVER` on the LAN's subnets (dual stack: `v6`), containers
    /// from 10.99.0.128/26, PEER as gateway, with `options` and our state directory.
    pub fn create_network(&self, name: &str, driver: &str, v6: bool, options: &[&str]) -> Output {
        let mut args = vec!["network", "create", "-d", driver];
        args.extend([
            "--subnet",
            SUBNET4,
            "--gateway",
            PEER_IP4,
            "--ip-range",
            "10.99.0.128/26",
        ]);
        if v6 {
            args.extend(["--ipv6", "--subnet", SUBNET6, "--gateway", PEER_IP6]);
        }
        let state = format!("state_dir={}", self.state.display());
        if driver == OUR_TYPE {
            args.extend(["-o", &state]);
        }
        for option in options {
            args.extend(["-o", option]);
        }
        args.push(name);
        self.podman(&args)
    }

    /// `podman run -d --name NAME --network NETWORK` of a container that sleeps and serves
    /// the test's TCP greeting on TCP_PORT.
    pub fn run(&self, name: &str, network: &str) {
        let port = TCP_PORT.to_string();
        let greeter = ["nc", "-ll", "-p", &port, "-e", "echo", "macvlan-host-test"];
        let args = self.run_args(&["-d", "--name", name, "--network", network], &greeter);
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// `run OPTIONS <this node's cgroup parent and limits> IMAGE COMMAND`: NET_RAW for ping,
    /// and the limits runc can set in this sandbox.
    pub fn run_args(&self, options: &[&str], command: &[&str]) -> Vec<String> {
        let mut args = vec!["run"];
        args.extend(options);
        args.extend(["--cap-add", "NET_RAW", &self.cgroup_parent]);
        args.extend([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            IMAGE,
        ]);
        args.extend(command);
        args.into_iter().map(String::from).collect()
    }

    /// Starts `podman ARGS` in the background.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let env = env_refs(&self.env);
        let mut all = vec!["podman"];
        all.extend(args);
        spawn_quiet(self.node.command_with_env(&env, all))
    }

    /// The container's addresses, MAC per interface, as podman reports them (from the
    /// plugin's status block).
    pub fn inspect_networks(&self, name: &str) -> Value {
        let out = self.ok(&[
            "inspect",
            "--format",
            "{{json .NetworkSettings.Networks}}",
            name,
        ]);
        serde_json::from_str(&out).expect("inspect JSON")
    }

    /// The records of the plugin's state directory.
    pub fn records(&self) -> Vec<String> {
        files_in(&self.state.join("attachments"))
    }
}

/// The node's failed ARP lookup of `address` on eth0, which a test's ping that was meant to
/// fail left in the neighbour table (the kernel's, not the plugin's).
fn forget_failed_lookup(lan: &Lan, address: &str) {
    let _ = lan.node1.try_ip(["neigh", "del", address, "dev", "eth0"]);
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The node (NODE1, where podman runs) and container `name` reach each other by ping and TCP
/// in both directions at `ips`; the LAN peer reaches the container; the peer sees one MAC for
/// the node.
fn assert_node_and_container_talk(lan: &Lan, podman: &Podman, name: &str, ips: &[&str]) {
    let _node_server = lan.node1.tcp_server(TCP_PORT);
    for text in ips {
        let ip = ip(text);
        let node = node_ip(&lan.node1, ip).to_string();
        assert_pings("node -> container", &lan.node1, ip);
        assert_tcp("node -> container", &lan.node1, ip);
        assert_pings("peer -> container", &lan.peer, ip);
        let pinged = podman.podman(&["exec", name, "ping", "-c1", "-W2", &node]);
        assert!(pinged.status.success(), "container -> node: ping {node}");
        let port = TCP_PORT.to_string();
        let greeted = podman.ok(&["exec", name, "nc", "-w", "2", &node, &port]);
        assert!(
            greeted.contains("macvlan-host-test"),
            "container -> node: TCP {node}:{port} got {greeted:?}"
        );
    }
    let macs = lan.peer.arping("eth0", NODE1_IP4, 2);
    let node_mac = lan.node1.mac("eth0");
    assert!(
        macs.len() == 2 && macs.iter().all(|m| *m == node_mac),
        "the peer saw {macs:?} for the node ({node_mac})"
    );
}

/// Nothing of the plugin on the node: no shim or veth, no host route, no permanent neighbour
/// entry, no record; no neighbour entry for `ips`.
fn assert_nothing_left(lan: &Lan, podman: &Podman, ips: &[&str], when: &str) {
    assert_no_host_side(&lan.node1);
    let ips: Vec<IpAddr> = ips.iter().map(|t| ip(t)).collect();
    assert_no_trace_on_node(&lan.node1, &ips, when);
    assert_eq!(
        podman.records(),
        Vec::<String>::new(),
        "{when}: records left"
    );
}

/// Create (good and bad options), `podman run` on the shim with dual stack, `--ip` and
/// `--mac-address`, network connect / disconnect, stop / start / restart, reconcile after the
/// shim is deleted, rm and network rm: nothing left.
pub fn shim_dual_stack_lifecycle(suite: Suite) {
    let lan = Lan::new();
    let Some(podman) = Podman::start(suite, &lan) else {
        return;
    };
    for (option, says) in [
        ("mtu=9", "option mtu="),
        ("host_access=tunnel", "option host_access="),
        ("parent=eth9", "eth9"),
        ("hostaccess=veth", "option hostaccess="),
    ] {
        let out = podman.create_network("bad", OUR_TYPE, false, &[option]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "{option}: {stderr}"
        );
    }
    // DHCP: podman hands the plugin the IPAM driver; the plugin says what to use instead.
    let dhcp = podman.podman(&[
        "network",
        "create",
        "-d",
        OUR_TYPE,
        "--ipam-driver",
        "dhcp",
        "-o",
        "parent=eth0",
        "bad",
    ]);
    let stderr = String::from_utf8_lossy(&dhcp.stderr);
    assert!(
        !dhcp.status.success() && stderr.contains("not supported by macvlan-host"),
        "--ipam-driver dhcp: {stderr}"
    );
    assert!(!podman
        .podman(&["network", "exists", "bad"])
        .status
        .success());

    let created = podman.create_network("lan", OUR_TYPE, true, &[]);
    assert!(created.status.success(), "{created:?}");
    let inspect = podman.ok(&["network", "inspect", "lan", "--format", "{{json .Options}}"]);
    let options: Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(options["parent"], "eth0", "{options}");
    assert_eq!(options["host_access"], "shim", "{options}");

    podman.run("c1", &format!("lan:ip={C4},ip={C6},mac={MAC}"));
    let networks = podman.inspect_networks("c1");
    assert_eq!(networks["lan"]["MacAddress"], MAC, "{networks}");
    let in_container = podman.ok(&["exec", "c1", "ip", "link", "show", "eth0"]);
    assert!(in_container.contains(MAC), "--mac-address: {in_container}");
    assert_eq!(podman.records().len(), 1);
    assert_node_and_container_talk(&lan, &podman, "c1", &[C4, C6]);

    // A second network, connected to the running container (eth1) and disconnected again.
    let second = podman.create_network("lan2", OUR_TYPE, false, &["host_access=veth"]);
    assert!(second.status.success(), "{second:?}");
    podman.ok(&["network", "connect", "--ip", "10.99.0.151", "lan2", "c1"]);
    assert_node_and_container_talk(&lan, &podman, "c1", &["10.99.0.151"]);
    podman.ok(&["network", "disconnect", "lan2", "c1"]);
    assert!(!podman
        .podman(&["exec", "c1", "ip", "link", "show", "eth1"])
        .status
        .success());
    assert_eq!(podman.records().len(), 1, "disconnect left a record");
    assert!(!lan.node1.ping("10.99.0.151"));
    forget_failed_lookup(&lan, "10.99.0.151");

    // reconcile repairs the shim deleted under the container.
    lan.node1.ip(["link", "del", SHIM]);
    assert!(!lan.node1.ping(C4), "the node still reaches the container");
    forget_failed_lookup(&lan, C4);
    let state = podman.state.to_str().unwrap().to_owned();
    let plugin = podman.node.our_plugin();
    let plugin = plugin.to_str().unwrap();
    let repaired = podman
        .node
        .exec([plugin, "reconcile", "--state-dir", &state]);
    assert_eq!(repaired.status.code(), Some(1), "{repaired:?}");
    assert_node_and_container_talk(&lan, &podman, "c1", &[C4, C6]);

    // reconcile --watch (what the systemd unit runs) repairs it again by itself.
    let mut podman = podman;
    podman.node.spawn_daemon(
        "watch",
        &[],
        [plugin, "reconcile", "--watch", "--state-dir", &state],
    );
    lan.node1.ip(["link", "del", SHIM]);
    let repaired = RuntimeNode::wait_until(Duration::from_secs(10), || {
        lan.node1.has_link(SHIM) && host_route(&lan.node1, ip(C4)).is_some()
    });
    assert!(
        repaired,
        "reconcile --watch did not restore the shim and the route"
    );
    assert_node_and_container_talk(&lan, &podman, "c1", &[C4, C6]);
    podman.node.stop("watch", Duration::from_secs(5));

    podman.ok(&["stop", "-t", "0", "c1"]);
    assert_nothing_left(&lan, &podman, &[C4, C6], "after podman stop");
    podman.ok(&["start", "c1"]);
    assert_node_and_container_talk(&lan, &podman, "c1", &[C4, C6]);
    podman.ok(&["restart", "-t", "0", "c1"]);
    assert_node_and_container_talk(&lan, &podman, "c1", &[C4]);
    podman.ok(&["rm", "-f", "-t", "0", "c1"]);
    podman.ok(&["network", "rm", "lan", "lan2"]);
    assert_nothing_left(
        &lan,
        &podman,
        &[C4, C6, "10.99.0.151"],
        "after rm and network rm",
    );
}

/// veth, IPv4, `podman run --rm`; and podman's own `-d macvlan` beside it, which the LAN peer
/// reaches and the node does not: the reason for the plugin.
pub fn veth_and_podmans_own_macvlan(suite: Suite) {
    let lan = Lan::new();
    let Some(podman) = Podman::start(suite, &lan) else {
        return;
    };
    let created = podman.create_network("lan", OUR_TYPE, false, &["host_access=veth"]);
    assert!(created.status.success(), "{created:?}");
    podman.run("v1", &format!("lan:ip={C4}"));
    assert_node_and_container_talk(&lan, &podman, "v1", &[C4]);
    podman.ok(&["rm", "-f", "-t", "0", "v1"]);
    assert_nothing_left(&lan, &podman, &[C4], "after rm");

    // run --rm: setup, the command, teardown.
    let args = podman.run_args(&["--rm", "--network", "lan"], &["ip", "-4", "addr"]);
    let out = podman.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("10.99.0.1"), "{out}");
    assert_nothing_left(&lan, &podman, &[], "after run --rm");

    let own = podman.create_network("mv", "macvlan", false, &["parent=eth0"]);
    assert!(own.status.success(), "{own:?}");
    podman.run("m1", "mv:ip=10.99.0.160");
    assert_pings("peer -> podman's macvlan", &lan.peer, ip("10.99.0.160"));
    assert!(
        !lan.node1.ping("10.99.0.160"),
        "the node reaches a container on podman's own macvlan"
    );
    podman.ok(&["rm", "-f", "-t", "0", "m1"]);
    podman.ok(&["network", "rm", "lan", "mv"]);
}

/// A setup and a teardown killed midway (held at the node lock, then SIGKILL): podman reports
/// the failure, and `reconcile` leaves nothing (the next setup or teardown would too: see
/// `direct`).
pub fn killed_setup_and_teardown(suite: Suite) {
    let lan = Lan::new();
    let Some(podman) = Podman::start(suite, &lan) else {
        return;
    };
    let created = podman.create_network("lan", OUR_TYPE, false, &[]);
    assert!(created.status.success(), "{created:?}");
    // A first container makes the node lock's file exist.
    podman.run("k0", "lan");

    // Teardown killed while it waits for the lock, with the container's host side still
    // there: podman goes on and removes the namespace.
    let lock = NodeLockHolder::take(&podman);
    let stopping = podman.spawn(&["stop", "-t", "0", "k0"]);
    kill_plugin_call(&podman, "teardown");
    let _ = wait_child(stopping);
    drop(lock);
    assert_eq!(
        podman.records().len(),
        1,
        "the killed teardown released the host side"
    );
    // Killed again: a setup held at the lock after the container's macvlan exists.
    let lock = NodeLockHolder::take(&podman);
    let args = podman.run_args(
        &["-d", "--name", "k1", "--network", "lan"],
        &["sleep", "600"],
    );
    let running = podman.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    kill_plugin_call(&podman, "setup");
    let out = wait_child(running);
    assert!(
        !out.status.success(),
        "podman run succeeded with its setup killed"
    );
    drop(lock);
    let _ = podman.podman(&["rm", "-f", "-t", "0", "k1"]);
    let _ = podman.podman(&["rm", "-f", "-t", "0", "k0"]);

    // reconcile releases what the killed teardown left (podman removed the namespace).
    assert_eq!(podman.records().len(), 1, "the killed teardown's record");
    let plugin = podman.node.our_plugin();
    let state = podman.state.to_str().unwrap().to_owned();
    let reconcile =
        podman
            .node
            .exec([plugin.to_str().unwrap(), "reconcile", "--state-dir", &state]);
    assert_eq!(reconcile.status.code(), Some(1), "{reconcile:?}");
    assert_nothing_left(&lan, &podman, &[], "after reconcile");
    // And the network goes on working.
    podman.run("k2", "lan");
    podman.ok(&["rm", "-f", "-t", "0", "k2"]);
    podman.ok(&["network", "rm", "lan"]);
    assert_nothing_left(&lan, &podman, &[], "after the killed calls");
}

/// The node's lock, held by the test process itself (through the node's file system as the
/// machine sees it) until dropped: the plugin's calls wait for it.
struct NodeLockHolder {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl NodeLockHolder {
    fn take(podman: &Podman) -> NodeLockHolder {
        let dir = podman.node.host_view("/run/macvlan-host/node-locks");
        let name = files_in(&dir);
        assert_eq!(name.len(), 1, "one node lock in {dir:?}: {name:?}");
        let file = std::fs::File::open(dir.join(&name[0])).expect("open the lock");
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("take the node lock");
        NodeLockHolder { _lock: lock }
    }
}

fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn spawn_quiet(mut command: std::process::Command) -> std::process::Child {
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn in the node")
}

fn wait_child(child: std::process::Child) -> Output {
    child.wait_with_output().expect("wait")
}

/// Waits until the plugin runs `verb` in the node (held at the node lock), then kills that
/// process by its PID.
fn kill_plugin_call(podman: &Podman, verb: &str) {
    let find = format!(
        "for p in /proc/[0-9]*; do \
           set -- $(tr '\\0' ' ' < $p/cmdline 2>/dev/null); \
           case \"$1 $2\" in *macvlan-host\\ {verb}) echo ${{p#/proc/}};; esac; \
         done"
    );
    let mut pid = String::new();
    let found = RuntimeNode::wait_until(Duration::from_secs(20), || {
        pid = podman.node.run(["/bin/sh", "-c", &find]).trim().to_owned();
        !pid.is_empty()
    });
    assert!(found, "no plugin {verb} call appeared");
    // Let it reach the lock.
    std::thread::sleep(Duration::from_millis(300));
    podman
        .node
        .run(["/bin/sh", "-c", &format!("kill -KILL {pid}")]);
}
