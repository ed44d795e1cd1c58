//! Real dockerd (Debian trixie's 26.1, `common::runtime_node`) with `macvlan-host
//! docker-driver`, both inside NODE1 of the test LAN: `docker network create -d macvlan-host`,
//! `docker run`, and everything a user does to containers afterwards, against what the node,
//! the container and another machine on the LAN see. Docker's own `-d macvlan` is the
//! control: the node cannot reach its containers. Skips only when the trixie root cannot be
//! built at all. `SUITE=sid` (`make test-docker-sid`) runs the same against Docker 28.

mod common;

use common::runtime_node::*;
use common::*;
use std::net::IpAddr;
use std::process::Output;
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/mvh-docker:latest";

fn suite() -> Suite {
    match std::env::var("SUITE").as_deref() {
        Ok("sid") => Suite::Sid,
        _ => Suite::Trixie,
    }
}

/// A node with the driver (started first) and dockerd, and the busybox image.
struct Bed {
    // Dropped first: dockerd and the driver end before the LAN's namespaces go.
    node: RuntimeNode,
    lan: Lan,
}

impl Bed {
    fn start() -> Option<Bed> {
        Bed::start_with(&[])
    }

    /// With extra arguments for dockerd.
    fn start_with(dockerd: &[&str]) -> Option<Bed> {
        runtime_root_or_skip(suite())?;
        let lan = Lan::new();
        let node = RuntimeNode::start(suite(), lan.node1.name());
        let mut bed = Bed { node, lan };
        bed.start_driver();
        bed.node.start_dockerd(dockerd);
        let tar = bed.node.busybox_image_tar();
        bed.docker([
            "import",
            "--change",
            r#"CMD ["/bin/sh"]"#,
            tar.to_str().unwrap(),
            IMAGE,
        ]);
        Some(bed)
    }

    fn state_dir(&self) -> String {
        self.node.work().join("state").display().to_string()
    }

    /// The driver, as its systemd unit runs it: before dockerd, on the default socket.
    fn start_driver(&mut self) {
        let plugin = self.node.our_plugin();
        let networks = self.node.work().join("networks").display().to_string();
        let state = self.state_dir();
        self.node.spawn_daemon(
            "driver",
            &[],
            [
                plugin.to_str().unwrap(),
                "docker-driver",
                "--state-dir",
                &state,
                "--network-dir",
                &networks,
            ],
        );
        let up = RuntimeNode::wait_until(Duration::from_secs(10), || {
            self.node
                .exec(["test", "-S", "/run/docker/plugins/macvlan-host.sock"])
                .status
                .success()
        });
        assert!(
            up,
            "the driver did not listen:\n{}",
            self.node.daemon("driver").log_text()
        );
    }

    /// `docker ARGS`, which must succeed; its stdout.
    fn docker<'a>(&self, args: impl IntoIterator<Item = &'a str>) -> String {
        let args: Vec<&str> = args.into_iter().collect();
        let out = self.node.docker(&args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn docker_fails<'a>(&self, args: impl IntoIterator<Item = &'a str>) -> String {
        let args: Vec<&str> = args.into_iter().collect();
        let out = self.node.docker(&args);
        assert!(!out.status.success(), "docker {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    fn exec_in(&self, container: &str, args: &[&str]) -> Output {
        let mut all = vec!["exec", container];
        all.extend_from_slice(args);
        self.node.docker(&all)
    }

    /// The container pings `ip` (one packet at a time, up to 3).
    fn container_pings(&self, container: &str, ip: &str) -> bool {
        (0..3).any(|_| {
            self.exec_in(container, &["ping", "-c1", "-W1", ip])
                .status
                .success()
        })
    }

    /// A TCP server in the container that greets like the harness's.
    fn serve_tcp(&self, container: &str) {
        let script = format!("while true; do echo macvlan-host-test | nc -l -p {TCP_PORT}; done");
        self.docker(["exec", "-d", container, "sh", "-c", script.as_str()]);
        std::thread::sleep(Duration::from_millis(200));
    }

    /// NODE1 and PEER reach the container at `ips` (ping, TCP) and it reaches them; PEER sees
    /// one MAC for NODE1.
    fn assert_reachable(&self, container: &str, ips: &[&str]) {
        self.serve_tcp(container);
        let _node_server = self.lan.node1.tcp_server(TCP_PORT);
        let _peer_server = self.lan.peer.tcp_server(TCP_PORT);
        for ip in ips {
            let addr: IpAddr = ip.parse().unwrap();
            for (who, machine) in [("NODE1", &self.lan.node1), ("PEER", &self.lan.peer)] {
                assert!(
                    machine.ping(ip),
                    "{who} -> {container} {ip}: ping\n{}",
                    self.dump(container)
                );
                assert!(
                    machine.tcp_connect(ip, TCP_PORT),
                    "{who} -> {container} {ip}: TCP"
                );
                let back = node_ip(machine, addr).to_string();
                assert!(
                    self.container_pings(container, &back),
                    "{container} -> {who} {back}: ping"
                );
                let tcp = self.exec_in(container, &["nc", "-w", "2", &back, &TCP_PORT.to_string()]);
                assert!(
                    String::from_utf8_lossy(&tcp.stdout).contains("macvlan-host-test"),
                    "{container} -> {who} {back}: TCP"
                );
            }
        }
        let macs = self.lan.peer.arping("eth0", NODE1_IP4, 3);
        let node_mac = self.lan.node1.mac("eth0");
        assert!(
            !macs.is_empty() && macs.iter().all(|m| *m == node_mac),
            "PEER sees NODE1 as {macs:?}"
        );
    }

    /// A new container on `network` pings the node right after its start: its first packet
    /// is answered.
    fn assert_first_packet(&self, network: &str) {
        let first = self.node.docker([
            "run",
            "--rm",
            "--network",
            network,
            IMAGE,
            "ping",
            "-c1",
            "-W2",
            NODE1_IP4,
        ]);
        assert!(
            first.status.success(),
            "a new container's first packet to the node on {network}: {}",
            String::from_utf8_lossy(&first.stdout)
        );
    }

    /// What the node, the container and the driver say, for a failure's message.
    fn dump(&self, container: &str) -> String {
        let node = self.node.exec([
            "sh",
            "-c",
            "ip -d link; ip addr; ip route; ip -6 route; ip neigh",
        ]);
        let inside = self.exec_in(
            container,
            &["sh", "-c", "ip link; ip addr; ip route; ip neigh"],
        );
        let mut driver = self.node.work().join("driver.log");
        if !driver.exists() {
            driver = std::path::PathBuf::new();
        }
        format!(
            "node:\n{}\ncontainer:\n{}{}\ndriver:\n{}",
            String::from_utf8_lossy(&node.stdout),
            String::from_utf8_lossy(&inside.stdout),
            String::from_utf8_lossy(&inside.stderr),
            std::fs::read_to_string(driver).unwrap_or_default()
        )
    }

    /// Nothing of the driver's on the node: only `lo` and `eth0`, no host route, no permanent
    /// neighbour entry, no record.
    fn assert_nothing_left(&self, when: &str) {
        assert_node_pristine(&self.lan.node1, when);
        let records = self.node.run([
            "sh",
            "-c",
            &format!(
                "ls {}/attachments {}/docker-endpoints",
                self.state_dir(),
                self.state_dir()
            ),
        ]);
        assert_eq!(
            records.lines().filter(|l| l.ends_with(".json")).count(),
            0,
            "{when}: records left: {records}"
        );
    }

    /// The record of every container is healthy (exit 0) or drifted (1).
    fn diagnose(&self) -> Option<i32> {
        self.node
            .exec([
                self.node.our_plugin().to_str().unwrap(),
                "diagnose",
                "--state-dir",
                &self.state_dir(),
            ])
            .status
            .code()
    }

    fn reconcile(&self) -> Option<i32> {
        self.node
            .exec([
                self.node.our_plugin().to_str().unwrap(),
                "reconcile",
                "--state-dir",
                &self.state_dir(),
            ])
            .status
            .code()
    }
}

fn run_args<'a>(name: &'a str, network: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "-d", "--name", name, "--network", network];
    args.extend_from_slice(extra);
    args.extend([IMAGE, "sleep", "3600"]);
    args
}

/// Network create (bad and good options), the shim with dual stack, `--ip`, `--mac-address`,
/// stop/start/restart, `--restart always` across a restart of dockerd, the driver killed and
/// restarted under live containers, routes flushed and `reconcile`, rm and network rm; and
/// Docker's own macvlan, which leaves the node unable to reach its container.
#[test]
fn shim_dual_stack_through_a_containers_life() {
    let Some(mut bed) = Bed::start() else { return };
    let err = bed.docker_fails([
        "network",
        "create",
        "-d",
        "macvlan-host",
        "-o",
        "parnet=eth0",
        "--subnet",
        SUBNET4,
        "bad",
    ]);
    assert!(err.contains("parnet"), "{err}");
    let err = bed.docker_fails([
        "network",
        "create",
        "-d",
        "macvlan-host",
        "-o",
        "host_access=tunnel",
        "--subnet",
        SUBNET4,
        "bad",
    ]);
    assert!(err.contains("host_access"), "{err}");
    bed.docker([
        "network",
        "create",
        "-d",
        "macvlan-host",
        "-o",
        "parent=eth0",
        "--subnet",
        SUBNET4,
        "--gateway",
        PEER_IP4,
        "--ipv6",
        "--subnet",
        SUBNET6,
        "--gateway",
        PEER_IP6,
        "lan",
    ]);
    bed.docker(run_args(
        "c1",
        "lan",
        &[
            "--ip",
            "10.99.0.130",
            "--ip6",
            "fd99::130",
            "--mac-address",
            "02:42:0a:63:00:82",
        ],
    ));
    let mac = bed.exec_in("c1", &["cat", "/sys/class/net/eth0/address"]);
    assert_eq!(
        String::from_utf8_lossy(&mac.stdout).trim(),
        "02:42:0a:63:00:82"
    );
    bed.assert_reachable("c1", &["10.99.0.130", "fd99::130"]);
    bed.assert_first_packet("lan");

    bed.docker(["stop", "-t", "0", "c1"]);
    assert_no_trace_on_node(
        &bed.lan.node1,
        &["10.99.0.130".parse().unwrap()],
        "after docker stop",
    );
    bed.docker(["start", "c1"]);
    bed.assert_reachable("c1", &["10.99.0.130"]);
    bed.docker(["restart", "-t", "0", "c1"]);
    bed.assert_reachable("c1", &["10.99.0.130"]);

    // --restart always across a restart of dockerd (without live-restore: it stops c2 and
    // starts it again).
    bed.docker(run_args(
        "c2",
        "lan",
        &["--ip", "10.99.0.131", "--restart", "always"],
    ));
    bed.node.stop_dockerd();
    bed.node.start_dockerd(&[]);
    let running = RuntimeNode::wait_until(Duration::from_secs(20), || {
        bed.docker(["inspect", "-f", "{{.State.Running}}", "c2"]) == "true"
    });
    assert!(running, "c2 did not come back with dockerd");
    bed.assert_reachable("c2", &["10.99.0.131"]);

    // The driver killed under live containers: they stay reachable; restarted, it serves them.
    bed.node.stop("driver", Duration::ZERO);
    assert!(bed.lan.node1.ping("10.99.0.131"), "c2 without the driver");
    bed.start_driver();
    // It makes the host side of the running container (c2; c1 stopped with dockerd) true
    // again first.
    let resumed = RuntimeNode::wait_until(Duration::from_secs(10), || {
        bed.node
            .daemon("driver")
            .log_text()
            .contains("container side made")
    });
    assert!(resumed, "{}", bed.node.daemon("driver").log_text());
    // The node's routes flushed: diagnose sees it, reconcile repairs it from the records.
    bed.lan.node1.ip(["route", "flush", "dev", "mvh-eth0"]);
    bed.lan
        .node1
        .ip(["-6", "route", "flush", "dev", "mvh-eth0"]);
    assert_eq!(bed.diagnose(), Some(1));
    assert_eq!(bed.reconcile(), Some(1));
    assert_eq!(bed.diagnose(), Some(0));
    bed.assert_reachable("c2", &["10.99.0.131"]);

    bed.docker(["rm", "-f", "c1", "c2"]);
    bed.docker(["network", "rm", "lan"]);
    bed.assert_nothing_left("after rm and network rm");

    // Docker's own macvlan: the LAN reaches the container, the node does not.
    bed.docker([
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=eth0",
        "--subnet",
        SUBNET4,
        "--gateway",
        PEER_IP4,
        "own",
    ]);
    bed.docker(run_args("d1", "own", &["--ip", "10.99.0.140"]));
    assert!(
        bed.lan.peer.ping("10.99.0.140"),
        "PEER -> Docker's macvlan container"
    );
    assert!(
        !bed.lan.node1.ping("10.99.0.140"),
        "NODE1 reached a container on Docker's own macvlan"
    );
    bed.docker(["rm", "-f", "d1"]);
    bed.docker(["network", "rm", "own"]);
}

/// A veth per container (IPv4): reachability, a new container's first packet, dockerd
/// restarted with `live-restore` under a running container, connect and disconnect of it to a
/// second network, rm: nothing left.
#[test]
fn veth_first_packet_live_restore_and_connect_disconnect() {
    let Some(mut bed) = Bed::start_with(&["--live-restore"]) else {
        return;
    };
    bed.docker([
        "network",
        "create",
        "-d",
        "macvlan-host",
        "-o",
        "host_access=veth",
        "--subnet",
        SUBNET4,
        "--gateway",
        PEER_IP4,
        "lanv",
    ]);
    for _ in 0..3 {
        bed.assert_first_packet("lanv");
    }
    bed.docker(run_args("v1", "lanv", &["--ip", "10.99.0.150"]));
    bed.assert_reachable("v1", &["10.99.0.150"]);
    // live-restore: the container runs on while dockerd restarts, and stays reachable.
    bed.node.stop_dockerd();
    assert!(
        bed.lan.node1.ping("10.99.0.150"),
        "v1 while dockerd is down"
    );
    bed.node.start_dockerd(&["--live-restore"]);
    bed.assert_reachable("v1", &["10.99.0.150"]);
    bed.docker([
        "network",
        "create",
        "-d",
        "macvlan-host",
        "--subnet",
        "10.98.0.0/24",
        "--gateway",
        "10.98.0.1",
        "second",
    ]);
    bed.docker(["network", "connect", "--ip", "10.98.0.5", "second", "v1"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bed.lan.node1.ping("10.98.0.5") {
        assert!(Instant::now() < deadline, "NODE1 -> connected container");
    }
    assert!(bed.container_pings("v1", NODE1_IP4));
    bed.docker(["network", "disconnect", "second", "v1"]);
    assert_no_trace_on_node(
        &bed.lan.node1,
        &["10.98.0.5".parse().unwrap()],
        "after disconnect",
    );
    bed.assert_reachable("v1", &["10.99.0.150"]);
    bed.docker(["rm", "-f", "v1"]);
    bed.docker(["network", "rm", "lanv", "second"]);
    bed.assert_nothing_left("after rm and network rm");
}

/// `make bench-docker` (not part of `make test`): `docker run --rm` of a trivial container on
/// `-d macvlan-host` (shim) against Docker's own `-d macvlan`, interleaved, `BENCH_RUNS` each;
/// prints the medians and their ratio.
#[test]
#[ignore = "a benchmark: make bench-docker"]
fn bench_docker_run_against_docker_macvlan() {
    let Some(bed) = Bed::start() else { return };
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    bed.docker([
        "network",
        "create",
        "-d",
        "macvlan-host",
        "--subnet",
        SUBNET4,
        "--gateway",
        PEER_IP4,
        "ours",
    ]);
    bed.docker([
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=eth0",
        "--subnet",
        "10.98.0.0/24",
        "--gateway",
        "10.98.0.1",
        "own",
    ]);
    let time = |network: &str| {
        let started = Instant::now();
        bed.docker(["run", "--rm", "--network", network, IMAGE, "true"]);
        started.elapsed().as_secs_f64() * 1000.0
    };
    // One of each first, unmeasured: the first use of a driver costs more.
    time("ours");
    time("own");
    let (mut ours, mut own) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // Alternating which goes first, so neither always runs on a warmer machine.
        if i % 2 == 0 {
            ours.push(time("ours"));
            own.push(time("own"));
        } else {
            own.push(time("own"));
            ours.push(time("ours"));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (m_ours, m_own) = (median(&mut ours), median(&mut own));
    println!(
        "docker run --rm ({} {}, {runs} runs each, interleaved): -d macvlan-host {m_ours:.0} ms, -d macvlan {m_own:.0} ms, ratio {:.2}x",
        suite().name(),
        bed.docker(["version", "--format", "{{.Server.Version}}"]),
        m_ours / m_own
    );
    bed.docker(["network", "rm", "ours", "own"]);
    bed.assert_nothing_left("after the benchmark");
}
