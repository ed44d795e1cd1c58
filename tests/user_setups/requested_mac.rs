//! A MAC the runtime asks for in interface mode: `runtimeConfig.mac` (the `mac` capability,
//! which Multus fills from the pod's annotation), `args.cni.mac` and `CNI_ARGS` `MAC=`, in
//! that order of precedence; Multus-style `ips` through the reference `static` IPAM.

use super::common::*;
use serde_json::{json, Value};

const A: &str = "02:42:00:00:00:0a";
const B: &str = "02:42:00:00:00:0b";
const C: &str = "02:42:00:00:00:0c";

/// NODE1's interface-mode network (IPv4, host-local) with `extra` merged into macvlan-host's
/// configuration.
fn conf(net: &Net, extra: Value) -> Value {
    let mut conf = net.ours.clone();
    for (key, value) in extra.as_object().expect("an object") {
        conf[key] = value.clone();
    }
    conf
}

#[test]
fn each_way_of_asking_for_a_mac_sets_it_in_the_references_order() {
    let lan = Lan::new();
    let net = Spec::without_host_access(Chaining::Interface, Family::V4).build();
    let all_three = json!({"runtimeConfig": {"mac": A}, "args": {"cni": {"mac": B}}});
    let two = json!({"args": {"cni": {"mac": B}}});
    for (name, extra, expected) in [
        ("rc", all_three, A),
        ("args", two, B),
        ("env", json!({}), C),
    ] {
        let pod = lan.pod(name);
        let at = Attachment::new(&pod).with_args(&format!("IgnoreUnknown=1;MAC={C}"));
        let conf = conf(&net, extra);
        let result = net.plugin.add(&lan.node1, &at, &conf).expect_ok().clone();
        assert_eq!(pod.mac("eth0"), expected, "{name}: the pod's interface");
        assert_eq!(
            result["interfaces"][0]["mac"], expected,
            "{name}: the result"
        );
        net.plugin.del(&lan.node1, &at, &conf).expect_ok();
        assert!(!pod.has_link("eth0"), "{name}: DEL removes the interface");
    }
    assert_eq!(net.allocations(), Vec::<String>::new());
}

#[test]
fn an_invalid_mac_is_refused_with_code_7_naming_it_before_any_allocation() {
    let lan = Lan::new();
    let net = Spec::without_host_access(Chaining::Interface, Family::V4).build();
    let pod = lan.pod("bad");
    for (extra, args, named, value) in [
        (
            json!({"runtimeConfig": {"mac": "02:42:zz:00:00:01"}}),
            "",
            "runtimeConfig.mac",
            "02:42:zz:00:00:01",
        ),
        (
            json!({"args": {"cni": {"mac": "01:00:5e:00:00:01"}}}),
            "",
            "args.cni.mac",
            "01:00:5e:00:00:01",
        ),
        (
            json!({}),
            "IgnoreUnknown=1;MAC=02:42:00:00:00",
            "CNI_ARGS MAC",
            "02:42:00:00:00",
        ),
    ] {
        let at = Attachment::new(&pod).with_args(args);
        let out = net.plugin.add(&lan.node1, &at, &conf(&net, extra));
        assert_eq!(out.expect_error(), 7, "{named}: {}", out.stdout);
        let msg = out.stdout["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(named) && msg.contains(value), "{named}: {msg}");
        assert!(!pod.has_link("eth0"), "{named}: no interface left");
        assert!(!net.ipam_ran(), "{named}: refused before IPAM");
    }
}

#[test]
fn a_mac_in_use_on_the_master_is_refused_clearly_and_leaves_nothing() {
    let lan = Lan::new();
    let net = Spec::new(Chaining::Interface, Family::V4).build();
    let first = lan.pod("first");
    let first_at = Attachment::new(&first);
    let taken = conf(&net, json!({"runtimeConfig": {"mac": A}}));
    let first_ip = pod_ips(net.plugin.add(&lan.node1, &first_at, &taken).expect_ok())[0].clone();

    let masters = lan.node1.mac("eth0");
    for (name, mac, says) in [
        ("sibling", A, "already in use"),
        ("master", masters.as_str(), "master's own"),
    ] {
        let pod = lan.pod(name);
        let at = Attachment::new(&pod);
        let out = net.plugin.add(
            &lan.node1,
            &at,
            &conf(&net, json!({"runtimeConfig": {"mac": mac}})),
        );
        out.expect_error();
        let msg = out.stdout["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(says) && msg.contains(mac), "{name}: {msg}");
        assert!(
            !pod.has_link("eth0"),
            "{name}: no interface left in the pod"
        );
        assert_eq!(
            net.allocations().len(),
            1,
            "{name}: only the first pod's address"
        );
    }
    // The first pod is unharmed: the node still reaches it.
    assert!(lan.node1.ping(&first_ip), "the node reaches the first pod");
    net.plugin.del(&lan.node1, &first_at, &taken).expect_ok();
    net.assert_nothing_left(&lan.node1);
}

/// What Multus sends for `k8s.v1.cni.cncf.io/networks: [{"name": "lan", "ips": [...],
/// "mac": ...}]`: `runtimeConfig.ips` and `runtimeConfig.mac`, with the reference `static`
/// IPAM reading the addresses. The node reaches the pod at that address, and back.
#[test]
fn multus_style_ips_and_mac_through_static_ipam() {
    let lan = Lan::new();
    let net = Spec::new(Chaining::Interface, Family::V4).build();
    let pod = lan.pod("multus");
    let at = Attachment::new(&pod);
    let conf = conf(
        &net,
        json!({
            "capabilities": {"ips": true, "mac": true},
            "ipam": {"type": "static"},
            "runtimeConfig": {"ips": ["10.99.0.177/24"], "mac": B},
        }),
    );
    let result = net.plugin.add(&lan.node1, &at, &conf).expect_ok().clone();
    assert_eq!(pod_ips(&result), ["10.99.0.177"]);
    assert_eq!(pod.mac("eth0"), B);
    assert!(global_addresses(&pod, "eth0").contains("10.99.0.177/24"));
    assert!(lan.node1.ping("10.99.0.177"), "node -> pod");
    assert!(pod.ping(NODE1_IP4), "pod -> node");
    net.plugin.del(&lan.node1, &at, &conf).expect_ok();
    assert!(!pod.has_link("eth0"));
    net.assert_no_host_access(&lan.node1, &["10.99.0.177".parse().unwrap()], "after DEL");
}
