//! Interface mode (issue 3): `macvlan-host` creates the pod's macvlan itself, with IPAM
//! delegated to the real `host-local`, running inside NODE1 of the test LAN. `hostAccess` is
//! `"none"` throughout: these tests are about the pod's own interface, not the node's path to it.
//! Networks come from the shared fixture (`common::Spec`).

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// NODE1's network: dual stack in bridge mode without host access, host-local with PEER as
/// gateway and default routes in both families. `.first(150)` gives NODE2's range.
fn network() -> Spec {
    Spec::without_host_access(Chaining::Interface, Family::Dual)
        .name("mvh-test")
        .mode("bridge")
        .via_peer()
}

/// A LAN, our plugin, and NODE1's network.
struct Bed {
    lan: Lan,
    plugin: Plugin,
    net: Net,
}

impl Bed {
    fn new() -> Bed {
        Bed {
            lan: Lan::new(),
            plugin: Plugin::ours(),
            net: network().build(),
        }
    }

    /// NODE1's configuration at `version`.
    fn conf(&self, version: &str) -> Value {
        self.net.our_conf_at(version)
    }

    fn allocations(&self) -> Vec<String> {
        self.net.allocations()
    }

    /// ADD in NODE1, which must succeed; returns the result.
    fn add(&self, at: &Attachment, conf: &Value) -> Value {
        self.plugin
            .add(&self.lan.node1, at, conf)
            .expect_ok()
            .clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Connectivity
// ---------------------------------------------------------------------------------------------

#[test]
fn pods_reach_the_peer_and_a_pod_on_the_other_node_over_ipv4_and_ipv6() {
    let bed = Bed::new();
    let lan = &bed.lan;
    let pod1 = lan.pod("a");
    let pod2 = lan.pod("b");
    let r1 = bed.add(&Attachment::new(&pod1), &bed.conf("1.0.0"));
    // NODE2 runs the plugin too, with its own host-local state and range.
    let net2 = network().first(150).build();
    let conf2 = net2.our_conf_at("1.0.0");
    let r2 = bed
        .plugin
        .add(&lan.node2, &Attachment::new(&pod2), &conf2)
        .expect_ok()
        .clone();

    let _peer_server = lan.peer.tcp_server(TCP_PORT);
    let _pod1_server = pod1.tcp_server(TCP_PORT);
    let _pod2_server = pod2.tcp_server(TCP_PORT);
    for v6 in [false, true] {
        let (peer, ip1, ip2) = (
            if v6 { PEER_IP6 } else { PEER_IP4 },
            result_ip(&r1, v6),
            result_ip(&r2, v6),
        );
        assert!(pod1.ping(peer), "pod1 -> PEER {peer}");
        assert!(lan.peer.ping(&ip1), "PEER -> pod1 {ip1}");
        assert!(pod1.ping(&ip2), "pod1 -> pod2 {ip2}");
        assert!(pod2.ping(&ip1), "pod2 -> pod1 {ip1}");
        assert!(pod1.tcp_connect(peer, TCP_PORT), "pod1 -> PEER {peer} TCP");
        assert!(
            lan.peer.tcp_connect(&ip1, TCP_PORT),
            "PEER -> pod1 {ip1} TCP"
        );
        assert!(pod1.tcp_connect(&ip2, TCP_PORT), "pod1 -> pod2 {ip2} TCP");
        assert!(pod2.tcp_connect(&ip1, TCP_PORT), "pod2 -> pod1 {ip1} TCP");
    }
    // Off-subnet traffic leaves through the default route via PEER: PEER's loopback
    // address is reachable only that way.
    lan.peer.ip(["addr", "add", "192.0.2.1/32", "dev", "lo"]);
    assert!(
        pod1.ping("192.0.2.1"),
        "pod1 -> off-subnet address behind the gateway"
    );
}

// ---------------------------------------------------------------------------------------------
// The ADD result
// ---------------------------------------------------------------------------------------------

#[test]
fn add_result_describes_the_pods_real_interface_at_every_version() {
    let bed = Bed::new();
    for (i, version) in ["1.0.0", "0.4.0", "1.1.0"].into_iter().enumerate() {
        let pod = bed.lan.pod(&format!("v{i}"));
        let result = bed.add(&Attachment::new(&pod), &bed.conf(version));
        let context = format!("cniVersion {version}: {result}");
        assert_eq!(result["cniVersion"], version, "{context}");

        // interfaces[0] is the pod's link as the kernel sees it.
        let link = &link_details(&pod, "eth0");
        let interfaces = result["interfaces"].as_array().expect("interfaces");
        assert_eq!(interfaces.len(), 1, "{context}");
        assert_eq!(interfaces[0]["name"], "eth0", "{context}");
        assert_eq!(interfaces[0]["mac"], link["address"], "{context}");
        assert_eq!(interfaces[0]["sandbox"], pod.path().as_str(), "{context}");
        assert_eq!(link["linkinfo"]["info_kind"], "macvlan", "{context}");

        // ips: one per family, on interface 0, with the gateway, present on the pod's link.
        let ips = result["ips"].as_array().expect("ips");
        assert_eq!(ips.len(), 2, "{context}");
        let on_link = global_addresses(&pod, "eth0");
        for ip in ips {
            let address = ip["address"].as_str().expect("address");
            let v6 = address.contains(':');
            assert_eq!(ip["interface"], 0, "{context}");
            assert_eq!(
                ip["gateway"],
                if v6 { PEER_IP6 } else { PEER_IP4 },
                "{context}"
            );
            assert!(
                on_link.contains(address),
                "{address} not on the pod's eth0 {on_link:?}"
            );
            if version == "0.4.0" {
                assert_eq!(ip["version"], if v6 { "6" } else { "4" }, "{context}");
            } else {
                assert!(ip.get("version").is_none(), "{context}");
            }
        }
        assert_eq!(
            on_link.len(),
            2,
            "the pod has exactly the result's addresses"
        );

        // routes: the default routes of the IPAM configuration, present in the pod via PEER.
        let dsts: BTreeSet<&str> = result["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .map(|r| r["dst"].as_str().expect("dst"))
            .collect();
        assert_eq!(dsts, BTreeSet::from(["0.0.0.0/0", "::/0"]), "{context}");
        for (family, gateway) in [("-4", PEER_IP4), ("-6", PEER_IP6)] {
            let default = pod
                .routes(family)
                .into_iter()
                .find(|r| r["dst"] == "default")
                .unwrap_or_else(|| panic!("no {family} default route in the pod ({context})"));
            assert_eq!(default["gateway"], gateway, "{context}");
            assert_eq!(default["dev"], "eth0", "{context}");
        }
        assert!(result["dns"].is_object(), "{context}");
    }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------------

#[test]
fn add_check_del_and_del_again() {
    let bed = Bed::new();
    let node = &bed.lan.node1;
    let before = node_state(node);
    let pod = bed.lan.pod("a");
    let at = Attachment::new(&pod);
    let conf = bed.conf("1.0.0");
    let result = bed.add(&at, &conf);
    assert_eq!(bed.allocations().len(), 2, "one address per family");

    let cached = with_prev(&conf, &result);
    bed.plugin.check(node, &at, &cached).expect_ok();
    bed.plugin.del(node, &at, &cached).expect_ok();
    assert_pod_empty(&pod);
    assert_eq!(
        bed.allocations(),
        Vec::<String>::new(),
        "allocations after DEL"
    );
    bed.plugin.del(node, &at, &cached).expect_ok();
    bed.plugin.del(node, &at, &conf).expect_ok();
    assert_eq!(node_state(node), before, "the node after DEL");
    assert_eq!(bed.net.state_entries(), Vec::<String>::new());

    // The same attachment can be added again after its DEL.
    let result2 = bed.add(&at, &conf);
    assert_eq!(bed.allocations().len(), 2);
    bed.plugin
        .del(node, &at, &with_prev(&conf, &result2))
        .expect_ok();
    assert_eq!(bed.allocations(), Vec::<String>::new());
}

#[test]
fn del_succeeds_and_releases_the_allocation_when_the_namespace_is_gone() {
    let bed = Bed::new();
    let node = &bed.lan.node1;
    let conf = bed.conf("1.0.0");

    // CNI_NETNS still set, but the namespace was deleted.
    let pod = bed.lan.pod("gone");
    let at = Attachment::new(&pod);
    let result = bed.add(&at, &conf);
    assert_eq!(bed.allocations().len(), 2);
    drop(pod);
    bed.plugin
        .del(node, &at, &with_prev(&conf, &result))
        .expect_ok();
    assert_eq!(bed.allocations(), Vec::<String>::new(), "namespace gone");

    // CNI_NETNS empty, as a runtime passes it once the namespace is gone.
    let pod = bed.lan.pod("nonetns");
    let at = Attachment::new(&pod);
    let result = bed.add(&at, &conf);
    drop(pod);
    let del = bed.plugin.del(
        node,
        &at.clone().without_netns(),
        &with_prev(&conf, &result),
    );
    del.expect_ok();
    assert_eq!(bed.allocations(), Vec::<String>::new(), "CNI_NETNS empty");
    // And DEL once more, with neither namespace nor prevResult.
    bed.plugin.del(node, &at.without_netns(), &conf).expect_ok();

    // CNI_NETNS naming a file that is not a namespace (the runtime's bind mount is gone).
    let pod = bed.lan.pod("notns");
    let mut at = Attachment::new(&pod);
    let result = bed.add(&at, &conf);
    let not_a_namespace = TempDir::new("notns");
    std::fs::write(not_a_namespace.join("netns"), "").unwrap();
    at.netns = not_a_namespace.join("netns").display().to_string();
    bed.plugin
        .del(node, &at, &with_prev(&conf, &result))
        .expect_ok();
    assert_eq!(
        bed.allocations(),
        Vec::<String>::new(),
        "CNI_NETNS not a namespace"
    );
}

#[test]
fn del_without_prev_result_removes_the_link_and_the_allocation() {
    let bed = Bed::new();
    let pod = bed.lan.pod("a");
    let at = Attachment::new(&pod);
    let conf = bed.conf("1.0.0");
    bed.add(&at, &conf);
    assert!(pod.has_link("eth0"));
    bed.plugin.del(&bed.lan.node1, &at, &conf).expect_ok();
    assert_pod_empty(&pod);
    assert_eq!(bed.allocations(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// Failures leave nothing behind
// ---------------------------------------------------------------------------------------------

#[test]
fn an_existing_ifname_in_the_pod_is_refused_before_any_allocation() {
    let bed = Bed::new();
    let node = &bed.lan.node1;
    let before = node_state(node);
    let pod = bed.lan.pod("a");
    pod.ip([
        "link", "add", "eth0", "type", "veth", "peer", "name", "other0",
    ]);
    let pod_links = link_names(&pod);

    let out = bed
        .plugin
        .add(node, &Attachment::new(&pod), &bed.conf("1.0.0"));
    out.expect_error();
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("eth0"), "the error names the interface: {msg}");
    assert!(!bed.net.ipam_ran(), "IPAM ADD ran");
    assert_eq!(bed.allocations(), Vec::<String>::new());
    assert_eq!(link_names(&pod), pod_links, "the pod's links");
    let eth0 = &link_details(&pod, "eth0");
    assert_eq!(
        eth0["linkinfo"]["info_kind"], "veth",
        "the pod's own eth0 was left alone"
    );
    assert_eq!(node_state(node), before);
}

#[test]
fn the_nodes_own_namespace_is_refused_as_a_pod() {
    let bed = Bed::new();
    let node = &bed.lan.node1;
    let before = node_state(node);
    let mut at = Attachment::new(&bed.lan.pod("a"));
    at.netns = node.path();

    let out = bed.plugin.add(node, &at, &bed.conf("1.0.0"));
    out.expect_error();
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&node.path()),
        "the error names CNI_NETNS: {msg}"
    );
    assert_eq!(node_state(node), before, "the node was changed");
    assert_eq!(bed.allocations(), Vec::<String>::new());
}

#[test]
fn a_missing_master_is_a_configuration_error_naming_it() {
    let bed = Bed::new();
    let pod = bed.lan.pod("a");
    let mut conf = bed.conf("1.0.0");
    conf["master"] = json!("nosuch0");

    let out = bed
        .plugin
        .add(&bed.lan.node1, &Attachment::new(&pod), &conf);
    assert_eq!(out.expect_error(), 7, "{}", out.stdout);
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("nosuch0"), "the error names the master: {msg}");
    assert_eq!(bed.allocations(), Vec::<String>::new());
    assert_pod_empty(&pod);
}

#[test]
fn a_failure_after_ipam_add_is_rolled_back_completely() {
    let bed = Bed::new();
    let node = &bed.lan.node1;
    // The kernel refuses a macvlan with an MTU above its master's: the failure comes after
    // host-local has allocated.
    node.ip(["link", "set", "eth0", "mtu", "1400"]);
    let before = node_state(node);
    let pod = bed.lan.pod("a");
    let mut conf = bed.conf("1.0.0");
    conf["mtu"] = json!(1500);

    let out = bed.plugin.add(node, &Attachment::new(&pod), &conf);
    out.expect_error();
    assert!(
        bed.net.ipam_ran(),
        "the failure came before IPAM ADD: {}",
        out.stdout
    );
    assert_eq!(
        bed.allocations(),
        Vec::<String>::new(),
        "allocation left behind"
    );
    assert_pod_empty(&pod);
    assert_eq!(node_state(node), before, "the node was changed");
    assert_eq!(bed.net.state_entries(), Vec::<String>::new());
}

/// IPv6 duplicate address detection still runs (with shortened timing) before ADD returns: a
/// LAN peer that already holds the pod's IPv6 address makes ADD fail, naming it, and undo all.
#[test]
fn a_duplicate_ipv6_address_on_the_lan_fails_add_and_leaves_nothing() {
    const TAKEN: &str = "fd99::77";
    let lan = Lan::new();
    let node = &lan.node1;
    // Shim host access: a route, neighbour entries and a record would exist had ADD got far.
    let net = Spec::new(Chaining::Interface, Family::Dual).build();
    lan.peer.ip([
        "-6",
        "addr",
        "add",
        &format!("{TAKEN}/64"),
        "dev",
        "eth0",
        "nodad",
    ]);
    let mut conf = net.our_conf_at("1.0.0");
    // host-local may only hand out the address PEER has (and one free IPv4 address).
    conf["ipam"]["ranges"] = json!([
        [{"subnet": SUBNET4, "rangeStart": "10.99.0.120", "rangeEnd": "10.99.0.120"}],
        [{"subnet": SUBNET6, "rangeStart": TAKEN, "rangeEnd": TAKEN}],
    ]);
    let before = node_state(node);
    let pod = lan.pod("dup");

    let out = Plugin::ours().add(node, &Attachment::new(&pod), &conf);
    out.expect_error();
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(TAKEN) && msg.contains("duplicate"),
        "the error names the address and says duplicate: {msg}"
    );
    assert!(net.ipam_ran(), "the failure came before IPAM ADD: {msg}");
    assert_eq!(net.allocations(), Vec::<String>::new(), "allocation left");
    assert_pod_empty(&pod);
    assert_eq!(node_state(node), before, "the node was changed");
    net.assert_nothing_left(node);
    assert_eq!(net.state_entries(), Vec::<String>::new(), "stateDir");

    // The same network without the conflict: ADD succeeds, DAD done, its timing put back.
    lan.peer
        .ip(["-6", "addr", "del", &format!("{TAKEN}/64"), "dev", "eth0"]);
    let at = Attachment::new(&pod);
    Plugin::ours().add(node, &at, &conf).expect_ok();
    let tentative = pod.ip(["-6", "addr", "show", "dev", "eth0", "tentative"]);
    assert!(
        tentative.trim().is_empty(),
        "tentative after ADD: {tentative}"
    );
    let sysctl = |key: &str| {
        pod.run(["cat", &format!("/proc/sys/net/ipv6/{key}")])
            .trim()
            .to_owned()
    };
    assert_eq!(
        sysctl("neigh/eth0/retrans_time_ms"),
        sysctl("neigh/lo/retrans_time_ms")
    );
    assert_eq!(
        sysctl("conf/eth0/router_solicitation_delay"),
        sysctl("conf/default/router_solicitation_delay")
    );
    Plugin::ours().del(node, &at, &conf).expect_ok();
    net.assert_nothing_left(node);
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

#[test]
fn twenty_pods_added_and_deleted_concurrently() {
    const PODS: usize = 20;
    let bed = Bed::new();
    let (node, plugin) = (&bed.lan.node1, &bed.plugin);
    let before = node_state(node);
    let conf = bed.conf("1.0.0");
    let pods: Vec<Pod> = (0..PODS).map(|i| bed.lan.pod(&format!("c{i}"))).collect();
    let attachments: Vec<Attachment> = pods.iter().map(Attachment::new).collect();

    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = attachments
            .iter()
            .map(|at| s.spawn(|| plugin.add(node, at, &conf)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("ADD thread").expect_ok().clone())
            .collect()
    });

    let mut seen = BTreeSet::new();
    for (pod, result) in pods.iter().zip(&results) {
        for ip in pod_ips(result) {
            assert!(seen.insert(ip.clone()), "{ip} given twice");
        }
        let on_link = global_addresses(pod, "eth0");
        for ip in result["ips"].as_array().unwrap() {
            assert!(
                on_link.contains(ip["address"].as_str().unwrap()),
                "{}: {on_link:?}",
                pod.name()
            );
        }
    }
    assert_eq!(seen.len(), 2 * PODS);
    assert_eq!(bed.allocations().len(), 2 * PODS);

    std::thread::scope(|s| {
        let handles: Vec<_> = attachments
            .iter()
            .zip(&results)
            .map(|(at, result)| {
                let conf = with_prev(&conf, result);
                s.spawn(move || plugin.del(node, at, &conf))
            })
            .collect();
        for h in handles {
            h.join().expect("DEL thread").expect_ok();
        }
    });
    for pod in &pods {
        assert_pod_empty(pod);
    }
    assert_eq!(bed.allocations(), Vec::<String>::new());
    assert_eq!(node_state(node), before);
    assert_eq!(bed.net.state_entries(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// A drop-in replacement for the reference macvlan plugin
// ---------------------------------------------------------------------------------------------

/// What a user sees of a pod's attachment: the global addresses on eth0, the routes (the
/// link-local fe80::/64 route aside, whose presence is compared), the macvlan mode and MTU.
fn pod_view(pod: &Pod) -> Value {
    let link = &link_details(pod, "eth0");
    let mut routes6 = pod.routes("-6");
    for r in &mut routes6 {
        // Lifetimes count down; everything else must match.
        r.as_object_mut().unwrap().remove("expires");
    }
    json!({
        "addresses": global_addresses(pod, "eth0"),
        "routes4": pod.routes("-4"),
        "routes6": routes6,
        "mode": link["linkinfo"]["info_data"]["mode"],
        "mtu": link["mtu"],
        "up": link["flags"].as_array().unwrap().contains(&json!("UP")),
    })
}

#[test]
fn same_pods_as_the_reference_macvlan_plugin() {
    let lan = Lan::new();
    let reference = Plugin::by_type("macvlan");
    let ours = Plugin::ours();
    for mode in ["bridge", "vepa"] {
        let mut views = Vec::new();
        let mut results = Vec::new();
        for (plugin, type_name) in [(&reference, "macvlan"), (&ours, OUR_TYPE)] {
            // Separate dataDirs: both pods get the same addresses. One pod at a time, so the
            // two never hold the same address on the LAN together.
            let net = network().build();
            let mut conf = net.our_conf_at("1.0.0");
            conf["type"] = json!(type_name);
            conf["mode"] = json!(mode);
            conf["mtu"] = json!(1400);
            if type_name == "macvlan" {
                conf.as_object_mut().unwrap().remove("hostAccess");
                conf.as_object_mut().unwrap().remove("stateDir");
            }
            let pod = lan.pod(&format!("{type_name}-{mode}"));
            let at = Attachment::new(&pod);
            let result = plugin.add(&lan.node1, &at, &conf).expect_ok().clone();
            assert!(pod.ping(PEER_IP4), "{type_name} {mode}: pod -> PEER");
            views.push(pod_view(&pod));
            results.push(result.clone());
            plugin
                .del(&lan.node1, &at, &with_prev(&conf, &result))
                .expect_ok();
            assert_pod_empty(&pod);
            assert_eq!(net.allocations(), Vec::<String>::new());
        }
        assert_eq!(
            views[0], views[1],
            "mode {mode}: reference (left) vs ours (right)"
        );
        assert_eq!(views[1]["mode"], mode);
        assert_eq!(views[1]["mtu"], 1400);
        for key in ["ips", "routes", "dns"] {
            assert_eq!(
                results[0][key], results[1][key],
                "mode {mode}: result {key}"
            );
        }
        assert_eq!(
            results[0]["interfaces"][0]["name"],
            results[1]["interfaces"][0]["name"]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// STATUS and CHECK
// ---------------------------------------------------------------------------------------------

#[test]
fn status_reports_whether_the_master_exists() {
    let bed = Bed::new();
    let node = &bed.lan.node1;
    let conf = bed.conf("1.1.0");
    bed.plugin
        .run(node, "STATUS", &Attachment::none(), &conf)
        .expect_ok();

    let mut missing = conf.clone();
    missing["master"] = json!("nosuch0");
    let out = bed
        .plugin
        .run(node, "STATUS", &Attachment::none(), &missing);
    assert_eq!(out.expect_error(), 50, "{}", out.stdout);
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("nosuch0"), "the error names the master: {msg}");
}

#[test]
fn check_detects_a_removed_route_or_address_in_the_pod() {
    let bed = Bed::new();
    let node = &bed.lan.node1;
    let pod = bed.lan.pod("a");
    let at = Attachment::new(&pod);
    let conf = bed.conf("1.0.0");
    let result = bed.add(&at, &conf);
    let cached = with_prev(&conf, &result);
    bed.plugin.check(node, &at, &cached).expect_ok();

    pod.ip(["route", "del", "default", "via", PEER_IP4]);
    let out = bed.plugin.check(node, &at, &cached);
    out.expect_error();
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("0.0.0.0/0"),
        "the error names the route: {msg}"
    );
    pod.ip(["route", "add", "default", "via", PEER_IP4, "dev", "eth0"]);
    bed.plugin.check(node, &at, &cached).expect_ok();

    let v6 = result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip["address"].as_str().unwrap().to_string())
        .find(|a| a.contains(':'))
        .expect("an IPv6 address");
    pod.ip(["addr", "del", &v6, "dev", "eth0"]);
    let out = bed.plugin.check(node, &at, &cached);
    out.expect_error();
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    assert!(msg.contains(&v6), "the error names the address: {msg}");

    bed.plugin.del(node, &at, &cached).expect_ok();
    assert_eq!(bed.allocations(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// Default master
// ---------------------------------------------------------------------------------------------

/// The ifindex of the pod's eth0's parent, in the parent's (the node's) namespace.
fn parent_index(pod: &Pod) -> Value {
    let link = &link_details(pod, "eth0");
    link["link_index"].clone()
}

#[test]
fn without_master_the_interface_of_the_default_route_is_used() {
    let bed = Bed::new();
    let node = &bed.lan.node1;
    // A second interface, up, that is not the default route's: a guess by name or by order
    // could take it.
    node.ip([
        "link", "add", "aux0", "type", "veth", "peer", "name", "aux1",
    ]);
    node.ip(["link", "set", "aux0", "up"]);
    node.ip(["link", "set", "aux1", "up"]);
    let mut conf = bed.conf("1.0.0");
    conf.as_object_mut().unwrap().remove("master");

    let pod = bed.lan.pod("a");
    bed.add(&Attachment::new(&pod), &conf);
    assert_eq!(
        parent_index(&pod),
        ifindex(node, "eth0"),
        "parent of the pod's eth0"
    );
    assert!(pod.ping(PEER_IP4), "pod -> PEER");
    let mut status_conf = conf.clone();
    status_conf["cniVersion"] = json!("1.1.0");
    bed.plugin
        .run(node, "STATUS", &Attachment::none(), &status_conf)
        .expect_ok();

    // Move the IPv4 default route to aux1: the next pod follows it.
    node.ip(["route", "replace", "default", "dev", "aux1"]);
    let pod2 = bed.lan.pod("b");
    bed.add(&Attachment::new(&pod2), &conf);
    assert_eq!(
        parent_index(&pod2),
        ifindex(node, "aux1"),
        "parent after the route moved"
    );
}
