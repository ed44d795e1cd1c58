//! `macvlan-host docker-driver` at the protocol level: the driver runs inside NODE1 of the
//! test LAN and the test speaks to its socket as dockerd does (the calls and bodies recorded
//! from Docker 26 and 28 in `../shared/notes/protocol-samples/docker-driver/`), doing between
//! the calls what dockerd does to the container's link. No dockerd: fast, and every order of
//! calls Docker uses can be played, the racy ones included. `tests/docker.rs` runs real
//! dockerd.

#[path = "../common/mod.rs"]
mod common;
mod harness;

use common::*;
use harness::*;
use nix::sys::signal::Signal;
use serde_json::{json, Value};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The order of calls around the container's namespace.
#[derive(Clone, Copy, PartialEq)]
enum Order {
    /// Join before the namespace exists; ProgramExternalConnectivity with the link still on
    /// the node; the link moves in later (prestart hook), with no call after it.
    Docker26,
    /// The namespace exists at Join; the link moves in; then ProgramExternalConnectivity.
    Docker28,
}

/// A container's addresses: `10.99.0.<host>` and/or `fd99::<host>`, and `--mac-address`.
#[derive(Clone, Copy)]
struct Spec {
    host: u8,
    v4: bool,
    v6: bool,
    mac: Option<&'static str>,
}

/// `docker run --network NET` up to the container's start.
fn run(driver: &Driver, lan: &Lan, network: &str, spec: Spec, order: Order) -> Container {
    let (endpoint, ip4, ip6, mac) =
        create_endpoint(driver, network, spec.host, spec.v4, spec.v6, spec.mac);
    let name = sandbox_name();
    let key = format!("/run/netns/{name}");
    let sandbox = match order {
        Order::Docker26 => None,
        Order::Docker28 => Some(Rc::new(Netns::create(&name))),
    };
    let src = join(driver, lan, network, &endpoint, &key, &mac);
    let sandbox = sandbox.unwrap_or_else(|| {
        // Docker 26: the link is still on the node; the call must not wait for it.
        let started = Instant::now();
        driver.call(
            "NetworkDriver.ProgramExternalConnectivity",
            &json!({"NetworkID": network, "EndpointID": endpoint}),
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "ProgramExternalConnectivity waited for a link Docker 26 moves later"
        );
        Rc::new(Netns::create(&name))
    });
    let c = Container {
        network: network.into(),
        endpoint,
        ip4,
        ip6,
        mac,
        sandbox,
        src,
        inside: "eth0".into(),
    };
    move_in(lan, &c);
    if order == Order::Docker28 {
        driver.call(
            "NetworkDriver.ProgramExternalConnectivity",
            &c.endpoint_ref(),
        );
        // Before the container's process starts, the container's side is there.
        assert!(
            container_side_made(&c),
            "Docker 28: ProgramExternalConnectivity returned before the container's side was made"
        );
    }
    driver.call("NetworkDriver.EndpointOperInfo", &c.endpoint_ref());
    c
}

/// `docker stop` / `rm`: RevokeExternalConnectivity, Leave, the link back to the node,
/// DeleteEndpoint; the link is gone from the node.
fn stop(driver: &Driver, lan: &Lan, c: &Container) {
    driver.call(
        "NetworkDriver.RevokeExternalConnectivity",
        &c.endpoint_ref(),
    );
    driver.call("NetworkDriver.Leave", &c.endpoint_ref());
    move_out(lan, c);
    driver.call("NetworkDriver.DeleteEndpoint", &c.endpoint_ref());
    assert!(
        !lan.node1.has_link(&c.src),
        "DeleteEndpoint left {} on the node",
        c.src
    );
}

fn ips(list: &[String]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

/// NODE1 <-> container and PEER <-> container, ping and TCP both ways; PEER sees one MAC for
/// NODE1's address.
fn assert_reachable(lan: &Lan, c: &Container) {
    assert_eq!(
        c.sandbox.mac(&c.inside),
        c.mac,
        "the container's MAC is the endpoint's"
    );
    let node_ips: Vec<String> = ips(&c.ips())
        .iter()
        .map(|ip| node_ip(&lan.node1, *ip).to_string())
        .collect();
    let peer_ips: Vec<String> = ips(&c.ips())
        .iter()
        .map(|ip| node_ip(&lan.peer, *ip).to_string())
        .collect();
    assert_both_ways(
        ("NODE1", &lan.node1, &node_ips),
        ("container", &c.sandbox, &c.ips()),
    );
    assert_both_ways(
        ("PEER", &lan.peer, &peer_ips),
        ("container", &c.sandbox, &c.ips()),
    );
    let macs = lan.peer.arping("eth0", NODE1_IP4, 3);
    let node_mac = lan.node1.mac("eth0");
    assert!(
        !macs.is_empty() && macs.iter().all(|m| *m == node_mac),
        "PEER sees NODE1 as {macs:?}, not only {node_mac}"
    );
}

/// Nothing of the driver's left on the node or in its state directory.
fn assert_nothing_left(lan: &Lan, driver: &Driver, when: &str) {
    assert_node_pristine(&lan.node1, when);
    let left: Vec<String> = files(&driver.state_dir())
        .into_iter()
        .filter(|f| !f.starts_with("ipam-versions"))
        .collect();
    assert_eq!(
        left,
        Vec::<String>::new(),
        "{when}: files left in the state directory"
    );
}

#[test]
fn handshake_discovery_and_methods_it_does_not_have() {
    let lan = Lan::new();
    let driver = Driver::start(&lan);
    assert_eq!(
        driver.call("Plugin.Activate", &Value::Null),
        json!({"Implements": ["NetworkDriver"]})
    );
    assert_eq!(
        driver.call("NetworkDriver.GetCapabilities", &Value::Null),
        json!({"Scope": "local", "ConnectivityScope": "local"})
    );
    assert_eq!(
        driver.call(
            "NetworkDriver.DiscoverNew",
            &json!({"DiscoveryType": 1, "DiscoveryData": {"Address": "10.99.0.10", "self": true}})
        ),
        json!({})
    );
    assert_eq!(
        driver.call(
            "NetworkDriver.DiscoverDelete",
            &json!({"DiscoveryType": 1, "DiscoveryData": {}})
        ),
        json!({})
    );
    assert!(driver
        .refused("NetworkDriver.AllocateNetwork", &json!({"NetworkID": "x"}))
        .contains("local-scope"));
    let (status, reply) = driver.post("NetworkDriver.NoSuchCall", &json!({}));
    assert_eq!(status, 404, "{reply}");
    assert!(driver
        .refused(
            "NetworkDriver.Join",
            &json!({"NetworkID": "n", "EndpointID": "e", "SandboxKey": "/x"})
        )
        .contains("unknown"));
    let err = driver.refused("NetworkDriver.CreateEndpoint", &json!({"NetworkID": docker_id("n"), "EndpointID": docker_id("e"), "Interface": {"Address": "10.99.0.5/24"}}));
    assert!(err.contains("network"), "{err}");
    // Not HTTP, and not JSON: answered, and the driver goes on.
    let mut raw = UnixStream::connect(driver.socket()).unwrap();
    raw.write_all(b"HELLO\r\n\r\n").unwrap();
    assert_eq!(read_reply(&mut raw).0, 400);
    assert!(driver
        .refused("NetworkDriver.CreateNetwork", &json!("not an object"))
        .contains("JSON"));
    // Two calls on one connection, as Docker's client keeps it open.
    let mut keep = UnixStream::connect(driver.socket()).unwrap();
    for _ in 0..2 {
        keep.write_all(b"POST /Plugin.Activate HTTP/1.1\r\nHost: plugin.moby.localhost\r\nContent-Length: 0\r\n\r\n").unwrap();
    }
    keep.shutdown(std::net::Shutdown::Write).unwrap();
    let mut all = String::new();
    std::io::Read::read_to_string(&mut keep, &mut all).unwrap();
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
    assert_nothing_left(&lan, &driver, "after the handshake");
}

#[test]
fn bad_networks_are_refused_naming_the_option_before_anything_exists() {
    let lan = Lan::new();
    let driver = Driver::start(&lan);
    for (options, v4, v6, named) in [
        (json!({"parent": "nosuch0"}), true, false, "nosuch0"),
        (json!({"parnet": "eth0"}), true, false, "parnet"),
        (json!({"mode": "vepa"}), true, false, "host_access=veth"),
        (
            json!({"macvlan_mode": "bridged"}),
            true,
            false,
            "macvlan_mode",
        ),
        (json!({"mtu": "1600"}), true, false, "mtu 1600"),
        (json!({"host_access": "tunnel"}), true, false, "host_access"),
        (
            json!({"host_routes": "10.96.0.0"}),
            true,
            false,
            "host_routes",
        ),
        (
            json!({"shim_name": "much-too-long-name"}),
            true,
            false,
            "shim_name",
        ),
        (json!({}), false, false, "--subnet"),
    ] {
        let (_, body) = create_network(v4, v6, options.clone());
        let err = driver.refused("NetworkDriver.CreateNetwork", &body);
        assert!(err.contains(named), "{options}: {err}");
    }
    // The node has no IPv6 address on the parent: said at once, not at the first container.
    lan.node1.ip(["-6", "addr", "flush", "dev", "eth0"]);
    let (_, body) = create_network(true, true, json!({}));
    assert!(driver
        .refused("NetworkDriver.CreateNetwork", &body)
        .contains("no IPv6 address"));
    assert_eq!(
        files(&driver.network_dir()),
        Vec::<String>::new(),
        "a refused network was stored"
    );
    assert_nothing_left(&lan, &driver, "after refused networks");
}

/// Docker 26's order, shim, dual stack, Docker's own MAC chosen by the driver. The node's side
/// exists from Join; the container's first packet, sent before the driver has made the
/// container's side, is not lost.
#[test]
fn docker26_order_shim_dual_stack_first_packet_kept() {
    let lan = Lan::new();
    let driver = Driver::start(&lan);
    let network = driver.network(true, true, json!({"parent": "eth0"}));
    let (endpoint, ip4, ip6, mac) = create_endpoint(&driver, &network, 42, true, true, None);
    let name = sandbox_name();
    let src = join(
        &driver,
        &lan,
        &network,
        &endpoint,
        &format!("/run/netns/{name}"),
        &mac,
    );
    // The node's side is there before the container's namespace exists.
    for ip in ["10.99.0.42", "fd99::2a"] {
        let route = host_route(&lan.node1, ip.parse().unwrap())
            .unwrap_or_else(|| panic!("no route to {ip} at Join"));
        assert_eq!(route["dev"], "mvh-eth0", "{route}");
    }
    driver.call(
        "NetworkDriver.ProgramExternalConnectivity",
        &json!({"NetworkID": network, "EndpointID": endpoint}),
    );
    let c = Container {
        network: network.clone(),
        endpoint,
        ip4,
        ip6,
        mac,
        sandbox: Rc::new(Netns::create(&name)),
        src,
        inside: "eth0".into(),
    };
    // The driver is held still while the container starts and sends its first packet: the
    // packet waits for the node's MAC (INCOMPLETE), and must go when the driver writes the
    // permanent entry.
    driver.signal(Signal::SIGSTOP);
    move_in(&lan, &c);
    let first = c
        .sandbox
        .command("ping")
        .args(["-n", "-c1", "-W5", NODE1_IP4])
        .spawn()
        .unwrap();
    let first6 = c
        .sandbox
        .command("ping")
        .args(["-n", "-c1", "-W5", NODE1_IP6])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!container_side_made(&c));
    driver.signal(Signal::SIGCONT);
    for (family, child) in [("IPv4", first), ("IPv6", first6)] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the container's first {family} packet to the node was lost"
        );
    }
    wait_for_container_side(&c);
    assert_reachable(&lan, &c);
    stop(&driver, &lan, &c);
    driver.call(
        "NetworkDriver.DeleteNetwork",
        &json!({"NetworkID": network}),
    );
    assert_nothing_left(&lan, &driver, "after stop and network rm");
    assert_eq!(files(&driver.network_dir()), Vec::<String>::new());
}

/// Docker 28's order with a veth per container, `--ip` and `--mac-address`: the container's
/// side is made when ProgramExternalConnectivity returns, before the container starts.
#[test]
fn docker28_order_veth_with_ip_and_mac_address() {
    let lan = Lan::new();
    let driver = Driver::start(&lan);
    let network = driver.network(
        true,
        false,
        json!({"host_access": "veth", "macvlan_mode": "private"}),
    );
    let c = run(
        &driver,
        &lan,
        &network,
        Spec {
            host: 110,
            v4: true,
            v6: false,
            mac: Some("02:00:00:00:00:42"),
        },
        Order::Docker28,
    );
    assert_eq!(c.sandbox.mac("eth0"), "02:00:00:00:00:42");
    assert!(c.sandbox.has_link("host-eth0"), "the veth's container end");
    assert_reachable(&lan, &c);
    // `docker network connect` of the running container to a second network (IPv6 only):
    // no ProgramExternalConnectivity; the waiter makes its side. Then `disconnect`.
    let second = driver.network(false, true, json!({}));
    let (endpoint, _, ip6, mac) = create_endpoint(&driver, &second, 7, false, true, None);
    let src = join(&driver, &lan, &second, &endpoint, &c.sandbox.path(), &mac);
    let connected = Container {
        network: second.clone(),
        endpoint,
        ip4: None,
        ip6,
        mac,
        sandbox: c.sandbox.clone(),
        src,
        inside: "eth1".into(),
    };
    move_in(&lan, &connected);
    wait_for_container_side(&connected);
    assert_both_ways(
        ("NODE1", &lan.node1, &[NODE1_IP6.to_string()]),
        ("container", &connected.sandbox, &connected.ips()),
    );
    driver.call("NetworkDriver.Leave", &connected.endpoint_ref());
    move_out(&lan, &connected);
    driver.call("NetworkDriver.DeleteEndpoint", &connected.endpoint_ref());
    assert_no_trace_on_node(&lan.node1, &ips(&connected.ips()), "after disconnect");
    assert!(!lan.node1.has_link(&connected.src));
    // The first network is untouched by the second's disconnect.
    assert_reachable(&lan, &c);
    stop(&driver, &lan, &c);
    for id in [&network, &second] {
        driver.call("NetworkDriver.DeleteNetwork", &json!({"NetworkID": id}));
    }
    assert_nothing_left(&lan, &driver, "after stop and network rm");
}

/// The driver killed under a running container and a joined one that has not started, its
/// container's side damaged meanwhile: the restarted driver serves the same networks and
/// endpoints, repairs the running one, finishes the other when it starts, and tears both down.
/// `reconcile` and `diagnose` see the containers' records like pods'.
#[test]
fn driver_killed_and_restarted_under_live_containers() {
    let lan = Lan::new();
    let mut driver = Driver::start(&lan);
    let network = driver.network(true, false, json!({}));
    let running = run(
        &driver,
        &lan,
        &network,
        Spec {
            host: 50,
            v4: true,
            v6: false,
            mac: None,
        },
        Order::Docker26,
    );
    wait_for_container_side(&running);
    let (endpoint, ip4, ip6, mac) = create_endpoint(&driver, &network, 51, true, false, None);
    let name = sandbox_name();
    let src = join(
        &driver,
        &lan,
        &network,
        &endpoint,
        &format!("/run/netns/{name}"),
        &mac,
    );
    driver.kill();
    running
        .sandbox
        .ip(["neigh", "flush", "nud", "permanent", "dev", "eth0"]);
    lan.node1.ip(["route", "del", "10.99.0.50/32"]);
    driver.restart();
    wait_for_container_side(&running);
    let deadline = Instant::now() + Duration::from_secs(5);
    while host_route(&lan.node1, "10.99.0.50".parse().unwrap()).is_none() {
        assert!(
            Instant::now() < deadline,
            "the restarted driver did not restore the node's route"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_reachable(&lan, &running);
    let late = Container {
        network: network.clone(),
        endpoint,
        ip4,
        ip6,
        mac,
        sandbox: Rc::new(Netns::create(&name)),
        src,
        inside: "eth0".into(),
    };
    move_in(&lan, &late);
    wait_for_container_side(&late);
    assert_both_ways(
        ("NODE1", &lan.node1, &[NODE1_IP4.to_string()]),
        ("container", &late.sandbox, &late.ips()),
    );
    // Routes flushed on the node: reconcile repairs them from the driver's records.
    lan.node1.ip(["route", "flush", "dev", "mvh-eth0"]);
    let state = driver.state_dir();
    let diagnose = lan.node1.exec([
        OUR_PLUGIN,
        "diagnose",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(
        diagnose.status.code(),
        Some(1),
        "diagnose sees the drift: {}",
        String::from_utf8_lossy(&diagnose.stdout)
    );
    let reconcile = lan.node1.exec([
        OUR_PLUGIN,
        "reconcile",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(
        reconcile.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&reconcile.stderr)
    );
    assert_reachable(&lan, &running);
    assert_both_ways(
        ("NODE1", &lan.node1, &[NODE1_IP4.to_string()]),
        ("container", &late.sandbox, &late.ips()),
    );
    for c in [&running, &late] {
        stop(&driver, &lan, c);
    }
    driver.call(
        "NetworkDriver.DeleteNetwork",
        &json!({"NetworkID": network}),
    );
    assert_nothing_left(&lan, &driver, "after stop and network rm");
}

/// A Join that fails midway (the shim's name is taken by an interface that is not a shim)
/// leaves nothing: not the container's macvlan, not a route, not a record.
#[test]
fn a_failed_join_leaves_nothing() {
    let lan = Lan::new();
    let driver = Driver::start(&lan);
    let network = driver.network(true, false, json!({"shim_name": "taken0"}));
    lan.node1.ip(["link", "add", "taken0", "type", "bridge"]);
    let (endpoint, _, _, _) = create_endpoint(&driver, &network, 60, true, false, None);
    let refs = json!({"NetworkID": network, "EndpointID": endpoint, "SandboxKey": format!("/run/netns/{}", sandbox_name())});
    let err = driver.refused("NetworkDriver.Join", &refs);
    assert!(err.contains("taken0"), "{err}");
    lan.node1.ip(["link", "del", "taken0"]);
    assert_node_pristine(&lan.node1, "after the failed Join");
    // Docker rolls back with DeleteEndpoint, then the user removes the network.
    driver.call(
        "NetworkDriver.DeleteEndpoint",
        &json!({"NetworkID": network, "EndpointID": endpoint}),
    );
    driver.call(
        "NetworkDriver.DeleteNetwork",
        &json!({"NetworkID": network}),
    );
    assert_nothing_left(&lan, &driver, "after the rollback");
}
