//! The plugin protocol against the binary itself, inside NODE1 of the test LAN: create's
//! validation, setup's container and host side, teardown leaving nothing, the leftovers of a
//! killed setup, and reconcile over the state directory.

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::common::*;
use crate::plugin::{call, call_with, Container, Network};

const C4: &str = "10.99.0.150";
const C6: &str = "fd99::150";
const MAC: &str = "02:00:00:00:00:42";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The node and the container reach each other by ping and TCP, both ways, in each family of
/// `ips`; the LAN peer reaches the container; the peer sees one MAC for the node.
fn assert_reachable(lan: &Lan, pod: &Pod, ips: &[&str]) {
    let _node_server = lan.node1.tcp_server(TCP_PORT);
    let _pod_server = pod.tcp_server(TCP_PORT);
    for text in ips {
        let ip = ip(text);
        let node = node_ip(&lan.node1, ip);
        assert_pings("node -> container", &lan.node1, ip);
        assert_pings("container -> node", pod, node);
        assert_tcp("node -> container", &lan.node1, ip);
        assert_tcp("container -> node", pod, node);
        assert_pings("peer -> container", &lan.peer, ip);
    }
    let macs = lan.peer.arping("eth0", NODE1_IP4, 2);
    assert_eq!(macs.len(), 2, "two ARP replies for the node: {macs:?}");
    assert!(
        macs.iter().all(|m| *m == lan.node1.mac("eth0")),
        "the peer saw another MAC for the node: {macs:?}"
    );
}

/// Nothing of the attachment anywhere: no host side on the node, only `lo` in the container,
/// no record.
fn assert_nothing_left(lan: &Lan, pod: &Pod, net: &Network) {
    assert_no_host_side(&lan.node1);
    assert_eq!(
        link_names(pod).into_iter().collect::<Vec<_>>(),
        vec!["lo".to_owned()],
        "links left in the container"
    );
    assert_eq!(net.records(), Vec::<String>::new(), "records left");
    assert_eq!(files_under(&net.state.join("owners")), Vec::<String>::new());
}

#[test]
fn info_and_the_verbs_belong_to_netavark() {
    let lan = Lan::new();
    let info = call(&lan.node1, &["info"], &Value::Null);
    let info = info.expect_ok();
    assert_eq!(info["api_version"], "1.0.0");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    // No operator command takes these names: each answers in netavark's protocol.
    for verb in ["create", "setup", "teardown"] {
        let reply = call(&lan.node1, &[verb], &json!("not a request"));
        let message = reply.expect_error();
        assert!(!message.is_empty(), "{verb}");
    }
    // CNI_COMMAND selects CNI even with a netavark verb as argument.
    let mut command = lan.node1.command(OUR_PLUGIN);
    command.env("CNI_COMMAND", "VERSION");
    let out = command.arg("info").output().unwrap();
    let version: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(version["supportedVersions"].is_array(), "{version}");
}

#[test]
fn create_completes_the_options_and_keeps_the_rest() {
    let lan = Lan::new();
    let mut net = Network::new("lan", Family::Dual, &[]);
    let sent = net.json.clone();
    let stored = net.create(&lan.node1).expect_ok().clone();
    let options = &stored["options"];
    assert_eq!(
        options["parent"], "eth0",
        "parent: the default route's interface"
    );
    assert_eq!(options["mode"], "bridge");
    assert_eq!(options["host_access"], "shim");
    // Everything else exactly as podman sent it.
    let without_options = |mut v: Value| {
        v.as_object_mut().unwrap().remove("options");
        v
    };
    assert_eq!(without_options(stored.clone()), without_options(sent));
    assert!(net.records().is_empty());
}

#[test]
fn create_refuses_bad_networks_naming_the_option() {
    let lan = Lan::new();
    let before = node_state(&lan.node1);
    for (options, says) in [
        (vec![("mode", "bridged")], "option mode="),
        (vec![("mtu", "9")], "option mtu="),
        (vec![("mtu", "9000")], "larger than the MTU of parent eth0"),
        (vec![("host_access", "tunnel")], "option host_access="),
        (vec![("host_routes", "10.96.0.0")], "option host_routes="),
        (
            vec![("shim_name", "a-very-long-shim-name")],
            "option shim_name=",
        ),
        (vec![("parent", "eth9")], "parent"),
        (vec![("hostaccess", "veth")], "option hostaccess="),
        (vec![("state_dir", "relative")], "option state_dir="),
    ] {
        let mut net = Network::new("bad", Family::V4, &options);
        let message = net.create(&lan.node1).expect_error();
        assert!(message.contains(says), "{options:?}: {message}");
    }
    // Addresses podman cannot hand out.
    let mut net = Network::new("nosubnet", Family::V4, &[]);
    net.json.as_object_mut().unwrap().remove("subnets");
    let message = net.create(&lan.node1).expect_error();
    assert!(message.contains("--subnet"), "{message}");
    let mut net = Network::new("dhcp", Family::V4, &[]);
    net.json["ipam_options"] = json!({"driver": "dhcp"});
    let message = net.create(&lan.node1).expect_error();
    assert!(
        message.contains("dhcp") && message.contains("--subnet"),
        "{message}"
    );
    // Rootless podman runs its helpers in a user namespace.
    let net = Network::new("rootless", Family::V4, &[]);
    let mut command = lan.node1.command("unshare");
    command.args(["--user", "--map-root-user", OUR_PLUGIN]);
    let message = call_with(command, &["create"], &net.json).expect_error();
    assert!(message.contains("root"), "{message}");
    assert_eq!(node_state(&lan.node1), before, "create changed the node");
}

fn shim_dual_stack_setup_teardown(host_access: &str) {
    let lan = Lan::new();
    let pod = lan.pod("c1");
    let mut net = Network::new("lan", Family::Dual, &[("host_access", host_access)]);
    net.create(&lan.node1).expect_ok();
    let container = Container::new(&net, &pod, "c1", "mh0", &[C4, C6]).with_mac(MAC);
    let status = container.setup(&lan.node1).expect_ok().clone();
    assert_eq!(
        status,
        json!({"dns_search_domains": [], "dns_server_ips": [], "interfaces": {"mh0": {
            "mac_address": MAC,
            "subnets": [{"ipnet": format!("{C4}/24"), "gateway": PEER_IP4},
                        {"ipnet": format!("{C6}/64"), "gateway": PEER_IP6}]}}})
    );
    assert_eq!(link_kind(&pod, "mh0"), "macvlan");
    assert_eq!(pod.mac("mh0"), MAC, "--mac-address honoured");
    let defaults: Vec<String> = ["-4", "-6"]
        .iter()
        .flat_map(|f| pod.routes(f))
        .filter(|r| r["dst"] == "default")
        .map(|r| r["gateway"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(defaults, vec![PEER_IP4.to_owned(), PEER_IP6.to_owned()]);
    let tentative = pod.ip(["-6", "addr", "show", "dev", "mh0", "tentative"]);
    assert!(tentative.trim().is_empty(), "DAD not finished: {tentative}");
    assert_eq!(net.records().len(), 1, "the attachment is recorded");
    assert_reachable(&lan, &pod, &[C4, C6]);

    // An option this version does not know (a newer one wrote it) does not stop teardown.
    let mut container = container;
    container.request["network"]["options"]["from_a_newer_version"] = json!("x");
    container.teardown(&lan.node1).expect_ok();
    assert_nothing_left(&lan, &pod, &net);
    // Repeated, and with the namespace gone: still success.
    container.teardown(&lan.node1).expect_ok();
    drop(pod);
    container.teardown(&lan.node1).expect_ok();
    assert_no_host_side(&lan.node1);
}

#[test]
fn shim_dual_stack_setup_and_teardown() {
    shim_dual_stack_setup_teardown("shim");
}

#[test]
fn veth_dual_stack_setup_and_teardown() {
    shim_dual_stack_setup_teardown("veth");
}

#[test]
fn network_connect_adds_a_second_interface_to_a_running_container() {
    let lan = Lan::new();
    let pod = lan.pod("c2");
    let mut first = Network::new("first", Family::V4, &[]);
    first.create(&lan.node1).expect_ok();
    let mut second = Network::new("second", Family::V4, &[("host_access", "veth")]);
    second.state = TempDir::new("shared-state");
    second.json["options"]["state_dir"] = json!(first.state.str());
    second.create(&lan.node1).expect_ok();
    let eth0 = Container::new(&first, &pod, "c2", "eth0", &[C4]);
    eth0.setup(&lan.node1).expect_ok();
    let eth1 = Container::new(&second, &pod, "c2", "eth1", &["10.99.0.151"]);
    let status = eth1.setup(&lan.node1).expect_ok().clone();
    assert!(status["interfaces"]["eth1"].is_object(), "{status}");
    assert_reachable(&lan, &pod, &[C4, "10.99.0.151"]);
    // disconnect: eth1 goes, eth0 still works.
    eth1.teardown(&lan.node1).expect_ok();
    assert!(!pod.has_link("eth1"));
    assert_eq!(first.records().len(), 1);
    assert_reachable(&lan, &pod, &[C4]);
    eth0.teardown(&lan.node1).expect_ok();
    assert_nothing_left(&lan, &pod, &first);
}

#[test]
fn setup_refuses_bad_requests_and_a_failed_setup_leaves_nothing() {
    let lan = Lan::new();
    let pod = lan.pod("c3");
    let mut net = Network::new("lan", Family::V4, &[("shim_name", "taken0")]);
    net.create(&lan.node1).expect_ok();
    for (container, says) in [
        (
            Container::new(&net, &pod, "c3", "eth0", &["10.98.0.5"]),
            "in no subnet",
        ),
        (
            Container::new(&net, &pod, "c3", "eth0", &[NODE1_IP4]),
            NODE1_IP4,
        ),
        (
            Container::new(&net, &pod, "c3", "eth0", &[C4]).with_mac("03:00:00:00:00:01"),
            "multicast",
        ),
        (Container::new(&net, &pod, "c3", "eth0", &[]), "no address"),
    ] {
        let message = container.setup(&lan.node1).expect_error();
        assert!(message.contains(says), "{message} should say {says}");
    }
    let node_ns = Container {
        netns: "/proc/self/ns/net".into(),
        ..Container::new(&net, &pod, "c3", "eth0", &[C4])
    };
    let message = node_ns.setup(&lan.node1).expect_error();
    assert!(message.contains("own network namespace"), "{message}");
    // A failure after the container's macvlan exists: the shim's name is taken by a link
    // that is no shim. Everything made is undone.
    lan.node1.ip(["link", "add", "taken0", "type", "bridge"]);
    let message = Container::new(&net, &pod, "c3", "eth0", &[C4])
        .setup(&lan.node1)
        .expect_error();
    assert!(message.contains("taken0"), "{message}");
    lan.node1.ip(["link", "del", "taken0"]);
    assert_nothing_left(&lan, &pod, &net);
}

#[test]
fn a_killed_setup_is_cleaned_up_by_teardown_and_by_the_next_call() {
    let lan = Lan::new();
    let mut net = Network::new("lan", Family::V4, &[]);
    net.create(&lan.node1).expect_ok();
    // A first container marks the state directory as podman's (one write of its own).
    let pod = lan.pod("k1");
    let first = Container::new(&net, &pod, "k0", "eth0", &[C4]);
    first.setup(&lan.node1).expect_ok();
    first.teardown(&lan.node1).expect_ok();
    // Killed at its third write(2): the record, the route's ownership and the shim exist,
    // the shim's hardening and the routes do not. Teardown removes it all.
    let killed = Container::new(&net, &pod, "k1", "eth0", &[C4]);
    assert!(
        !setup_killed_midway(&lan.node1, &killed),
        "the setup was not killed"
    );
    assert!(
        lan.node1.has_link(SHIM) && !net.records().is_empty(),
        "killed too early"
    );
    killed.teardown(&lan.node1).expect_ok();
    assert_nothing_left(&lan, &pod, &net);

    // Killed again, and this time podman removes the namespace (netavark never calls teardown
    // after a failed setup): the next call on the node releases what is left.
    let pod2 = lan.pod("k2");
    let abandoned = Container::new(&net, &pod2, "k2", "eth0", &["10.99.0.152"]);
    setup_killed_midway(&lan.node1, &abandoned);
    drop(pod2);
    let other = Container::new(&net, &pod, "k3", "eth0", &[C4]);
    other.setup(&lan.node1).expect_ok();
    assert_eq!(net.records().len(), 1, "the abandoned record is left");
    assert_eq!(files_in(&net.state.join("owners")), vec![C4.to_owned()]);
    other.teardown(&lan.node1).expect_ok();
    assert_nothing_left(&lan, &pod, &net);

    // And once more, with `reconcile` as the next call: it releases it too.
    let pod3 = lan.pod("k4");
    let abandoned = Container::new(&net, &pod3, "k4", "eth0", &["10.99.0.153"]);
    setup_killed_midway(&lan.node1, &abandoned);
    assert!(lan.node1.has_link(SHIM));
    drop(pod3);
    let reconcile = lan
        .node1
        .exec([OUR_PLUGIN, "reconcile", "--state-dir", net.state.str()]);
    let stdout = String::from_utf8_lossy(&reconcile.stdout);
    assert_eq!(reconcile.status.code(), Some(1), "{reconcile:?}");
    assert!(stdout.contains("released"), "{stdout}");
    assert_nothing_left(&lan, &pod, &net);
    // A CNI state directory (no podman marker) is never released so: its namespaces may only
    // be invisible to the watcher.
    assert!(net.state.join("netavark-plugin").is_file());
}

/// `setup` killed by SIGKILL at its third write(2) (strace fault injection); true when it
/// exited 0 anyway.
fn setup_killed_midway(node: &Netns, container: &Container) -> bool {
    let mut command = node.command("strace");
    command.args([
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "inject=write:signal=KILL:when=3",
    ]);
    command.arg(OUR_PLUGIN);
    call_with_status(command, &["setup", &container.netns], &container.request)
}

/// Runs the plugin under a command that may kill it; true when it exited 0.
fn call_with_status(mut command: std::process::Command, args: &[&str], stdin: &Value) -> bool {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run under strace");
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.to_string().as_bytes());
    child.wait().expect("wait").success()
}

#[test]
fn reconcile_repairs_a_deleted_shim_under_podman_containers() {
    let lan = Lan::new();
    let pod = lan.pod("r1");
    let mut net = Network::new("lan", Family::Dual, &[]);
    net.create(&lan.node1).expect_ok();
    let container = Container::new(&net, &pod, "r1", "eth0", &[C4, C6]);
    container.setup(&lan.node1).expect_ok();
    lan.node1.ip(["link", "del", SHIM]);
    assert!(!lan.node1.ping(C4), "the node still reaches the container");
    let diagnose = lan
        .node1
        .exec([OUR_PLUGIN, "diagnose", "--state-dir", net.state.str()]);
    assert_eq!(diagnose.status.code(), Some(1), "diagnose sees the drift");
    let reconcile = lan
        .node1
        .exec([OUR_PLUGIN, "reconcile", "--state-dir", net.state.str()]);
    assert_eq!(reconcile.status.code(), Some(1), "{reconcile:?}");
    assert_reachable(&lan, &pod, &[C4, C6]);
    container.teardown(&lan.node1).expect_ok();
    assert_nothing_left(&lan, &pod, &net);
}
