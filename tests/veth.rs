//! `hostAccess: "veth"` on the LAN test bed: a veth pair per pod gives the node a path to its
//! macvlan pods whatever the macvlan mode, in chained mode (after the reference `macvlan`
//! plugin and host-local) and in interface mode, for IPv4, IPv6 and dual stack; the result
//! lists the node end. DEL, CHECK, GC and concurrency are in `veth_lifecycle.rs`.

mod common;
mod veth_support;

use common::*;
use serde_json::{json, Value};
use veth_support::*;

// ---------------------------------------------------------------------------------------------
// The control: the veth is what lets the node reach its pod
// ---------------------------------------------------------------------------------------------

#[test]
fn without_the_veth_node1_cannot_reach_its_pod() {
    let lan = Lan::new();
    let pod = lan.pod("a");
    let mut net = Spec::new(Chaining::Chained, Family::V4).build();
    let ips = net.add(&lan.node1, &pod);
    let node_ips = Family::V4.ips_of(&lan.node1);
    assert!(lan.node1.ping(&ips[0]), "NODE1 -> pod with the veth");
    assert!(pod.ping(&node_ips[0]), "pod -> NODE1 with the veth");

    // macvlan-host's part removed, the reference macvlan's pod left as it is.
    let at = Attachment::new(&pod);
    net.del_ours_only(&lan.node1, &at);
    assert!(pod.has_link("eth0"), "the pod's macvlan stays");
    assert!(!lan.node1.ping(&ips[0]), "NODE1 -> pod without the veth");
    assert!(!pod.ping(&node_ips[0]), "pod -> NODE1 without the veth");
    assert!(lan.peer.ping(&ips[0]), "PEER -> pod without the veth");

    net.del(&lan.node1, &at);
    net.assert_nothing_left(&lan.node1);
}

// ---------------------------------------------------------------------------------------------
// Reachability: chained and interface mode x IPv4, IPv6, dual stack
// ---------------------------------------------------------------------------------------------

/// A veth pod on NODE1 and one on NODE2: each node reaches its own pod both ways, PEER reaches
/// the pod on NODE1, the pods reach each other and NODE1 reaches the pod on NODE2; DEL leaves
/// nothing on either node.
fn every_path_to_a_veth_pod_works(chaining: Chaining, family: Family) {
    let lan = Lan::new();
    let (pod1, pod2) = (lan.pod("one"), lan.pod("two"));
    let mut net1 = Spec::new(chaining, family).build();
    let mut net2 = Spec::new(chaining, family).first(150).build();
    let ips1 = net1.add(&lan.node1, &pod1);
    let ips2 = net2.add(&lan.node2, &pod2);
    let per_family = family.ips_of(&lan.node1).len();
    assert_eq!(
        (ips1.len(), ips2.len()),
        (per_family, per_family),
        "one address per family"
    );
    net1.check(&lan.node1, &pod1).expect_ok();
    net2.check(&lan.node2, &pod2).expect_ok();

    let node1 = ("NODE1", &*lan.node1, &family.ips_of(&lan.node1)[..]);
    let node2 = ("NODE2", &*lan.node2, &family.ips_of(&lan.node2)[..]);
    let peer = ("PEER", &*lan.peer, &family.ips_of(&lan.peer)[..]);
    let on1 = ("pod on NODE1", &pod1, &ips1[..]);
    let on2 = ("pod on NODE2", &pod2, &ips2[..]);
    assert_both_ways(node1, on1);
    assert_both_ways(peer, on1);
    assert_both_ways(node2, on2);
    assert_both_ways(on1, on2);
    assert_both_ways(node1, on2);

    net1.del(&lan.node1, &Attachment::new(&pod1));
    net2.del(&lan.node2, &Attachment::new(&pod2));
    net1.assert_nothing_left(&lan.node1);
    net2.assert_nothing_left(&lan.node2);
}

#[test]
fn chained_ipv4_every_path_works() {
    every_path_to_a_veth_pod_works(Chaining::Chained, Family::V4);
}

#[test]
fn chained_ipv6_every_path_works() {
    every_path_to_a_veth_pod_works(Chaining::Chained, Family::V6);
}

#[test]
fn chained_dual_stack_every_path_works() {
    every_path_to_a_veth_pod_works(Chaining::Chained, Family::Dual);
}

#[test]
fn interface_ipv4_every_path_works() {
    every_path_to_a_veth_pod_works(Chaining::Interface, Family::V4);
}

#[test]
fn interface_ipv6_every_path_works() {
    every_path_to_a_veth_pod_works(Chaining::Interface, Family::V6);
}

#[test]
fn interface_dual_stack_every_path_works() {
    every_path_to_a_veth_pod_works(Chaining::Interface, Family::Dual);
}

// ---------------------------------------------------------------------------------------------
// Every macvlan mode
// ---------------------------------------------------------------------------------------------

/// The pod's macvlan in `mode` (a dedicated pod: passthru allows one macvlan per master): NODE1
/// and the pod reach each other through the veth, PEER reaches the pod over the LAN. In
/// interface mode, the shim is first shown to refuse every mode but bridge.
fn every_macvlan_mode_is_reached(chaining: Chaining, mode: &'static str) {
    let lan = Lan::new();
    let pod = lan.pod("m");
    let family = Family::Dual;
    if chaining == Chaining::Interface && mode != "bridge" {
        let mut shim = Spec::new(chaining, family)
            .mode(mode)
            .set("hostAccess", json!("shim"))
            .build();
        let refused = shim.list.add(&lan.node1, &Attachment::new(&pod));
        assert_eq!(refused.expect_error(), 7, "{}", refused.stdout);
        let msg = refused.stdout["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(mode) && msg.contains("veth"), "{msg}");
        shim.assert_nothing_left(&lan.node1);
    }

    let mut net = Spec::new(chaining, family).mode(mode).build();
    let ips = net.add(&lan.node1, &pod);
    let macvlan = link_details(&pod, "eth0");
    assert_eq!(macvlan["linkinfo"]["info_kind"], "macvlan");
    assert_eq!(macvlan["linkinfo"]["info_data"]["mode"], mode);
    net.check(&lan.node1, &pod).expect_ok();

    let on1 = ("pod", &pod, &ips[..]);
    assert_both_ways(("NODE1", &lan.node1, &family.ips_of(&lan.node1)), on1);
    assert_both_ways(("PEER", &lan.peer, &family.ips_of(&lan.peer)), on1);

    net.del(&lan.node1, &Attachment::new(&pod));
    net.assert_nothing_left(&lan.node1);
}

#[test]
fn chained_bridge_mode_is_reached() {
    every_macvlan_mode_is_reached(Chaining::Chained, "bridge");
}

#[test]
fn chained_private_mode_is_reached() {
    every_macvlan_mode_is_reached(Chaining::Chained, "private");
}

#[test]
fn chained_vepa_mode_is_reached() {
    every_macvlan_mode_is_reached(Chaining::Chained, "vepa");
}

#[test]
fn chained_passthru_mode_is_reached() {
    every_macvlan_mode_is_reached(Chaining::Chained, "passthru");
}

#[test]
fn interface_bridge_mode_is_reached() {
    every_macvlan_mode_is_reached(Chaining::Interface, "bridge");
}

#[test]
fn interface_private_mode_is_reached() {
    every_macvlan_mode_is_reached(Chaining::Interface, "private");
}

#[test]
fn interface_vepa_mode_is_reached() {
    every_macvlan_mode_is_reached(Chaining::Interface, "vepa");
}

#[test]
fn interface_passthru_mode_is_reached() {
    every_macvlan_mode_is_reached(Chaining::Interface, "passthru");
}

// ---------------------------------------------------------------------------------------------
// Node sysctl profiles
// ---------------------------------------------------------------------------------------------

/// The node's `all` sysctls of the profile, set inside NODE1's namespace only: NODE1 and the
/// pod still reach each other (with strict `rp_filter` too: the pod's replies come back
/// through the veth, where the node routes the pod), and ADD changes none of them.
fn works_with_node_sysctls(profile: &[(&str, &str)]) {
    let lan = Lan::new();
    let pod = lan.pod("s");
    let family = Family::Dual;
    for (key, value) in profile {
        lan.node1
            .run(["sysctl", "-qw", &format!("net.ipv4.conf.all.{key}={value}")]);
    }
    let keys = ["rp_filter", "arp_ignore", "arp_announce", "arp_filter"];
    let read = |scope: &str| -> Vec<String> {
        keys.iter()
            .map(|k| {
                let name = format!("net.ipv4.conf.{scope}.{k}");
                lan.node1.run(["sysctl", "-n", &name]).trim().to_string()
            })
            .collect()
    };
    let before = (read("all"), read("default"));
    for (key, value) in profile {
        let i = keys.iter().position(|k| k == key).unwrap();
        assert_eq!(before.0[i], *value, "profile {key} in place");
    }

    let mut net = Spec::new(Chaining::Chained, family).build();
    let ips = net.add(&lan.node1, &pod);
    net.check(&lan.node1, &pod).expect_ok();
    assert_eq!(
        (read("all"), read("default")),
        before,
        "ADD changed node sysctls"
    );

    let on1 = ("pod", &pod, &ips[..]);
    assert_both_ways(("NODE1", &lan.node1, &family.ips_of(&lan.node1)), on1);
    assert_both_ways(("PEER", &lan.peer, &family.ips_of(&lan.peer)), on1);

    net.del(&lan.node1, &Attachment::new(&pod));
    net.assert_nothing_left(&lan.node1);
}

#[test]
fn default_node_sysctls() {
    works_with_node_sysctls(&[]);
}

#[test]
fn strict_rp_filter_on_all() {
    works_with_node_sysctls(&[("rp_filter", "1")]);
}

#[test]
fn arp_ignore_arp_announce_and_strict_rp_filter_on_all() {
    works_with_node_sysctls(&[
        ("arp_ignore", "1"),
        ("arp_announce", "2"),
        ("rp_filter", "1"),
    ]);
}

// ---------------------------------------------------------------------------------------------
// The result
// ---------------------------------------------------------------------------------------------

/// The last entry of `interfaces` is the veth's node end: named `mvh` + 12 hex digits, with
/// the MAC the node's veth has, and no sandbox. The pod end, `host-eth0`, is a veth in the pod.
fn assert_node_end_listed_last(result: &Value, node: &Netns, pod: &Pod) {
    let interfaces = result["interfaces"].as_array().expect("interfaces");
    let node_end = interfaces.last().expect("an interface");
    let name = node_end["name"].as_str().expect("a name").to_string();
    let hex = name.strip_prefix("mvh").unwrap_or_else(|| panic!("{name}"));
    assert!(
        hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "node end name {name}"
    );
    assert!(node_end.get("sandbox").is_none(), "{node_end}");
    assert_eq!(link_kind(node, &name), "veth");
    assert_eq!(node_end["mac"], json!(node.mac(&name)));
    assert_eq!(link_kind(pod, "host-eth0"), "veth");
}

#[test]
fn chained_result_is_prev_result_with_the_node_end_appended() {
    let lan = Lan::new();
    let pod = lan.pod("r");
    let net = Spec::new(Chaining::Chained, Family::Dual).build();
    // The reference plugin's result alone, as macvlan-host receives it.
    let mut reference = Conflist::new(json!({
        "cniVersion": "1.0.0", "name": "lan", "plugins": [net.plugins[0].clone()],
    }));
    let at = Attachment::new(&pod);
    let prev = reference.add(&lan.node1, &at).expect_ok().clone();
    let mut conf = net.ours.clone();
    conf["prevResult"] = prev.clone();
    let result = net.plugin.add(&lan.node1, &at, &conf).expect_ok().clone();

    for key in ["cniVersion", "ips", "routes", "dns"] {
        assert_eq!(result[key], prev[key], "{key} passed through");
    }
    let before = prev["interfaces"].as_array().unwrap();
    let after = result["interfaces"].as_array().unwrap();
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(
        after[..before.len()],
        before[..],
        "interfaces kept in place"
    );
    assert_node_end_listed_last(&result, &lan.node1, &pod);

    // Ours first, then the reference plugin, as a runtime deletes.
    conf["prevResult"] = result;
    net.plugin.del(&lan.node1, &at, &conf).expect_ok();
    reference.del(&lan.node1, &at).expect_ok();
    net.assert_nothing_left(&lan.node1);
}

#[test]
fn interface_result_lists_the_pod_interface_then_the_node_end() {
    let lan = Lan::new();
    let pod = lan.pod("r");
    let mut net = Spec::new(Chaining::Interface, Family::Dual).build();
    let result = net.add_result(&lan.node1, &pod);

    let interfaces = result["interfaces"].as_array().expect("interfaces");
    assert_eq!(interfaces.len(), 2, "{result}");
    assert_eq!(interfaces[0]["name"], "eth0");
    assert_eq!(interfaces[0]["mac"], json!(pod.mac("eth0")));
    assert_eq!(interfaces[0]["sandbox"], json!(pod.path()));
    assert_node_end_listed_last(&result, &lan.node1, &pod);
    let ips = result["ips"].as_array().expect("ips");
    assert_eq!(ips.len(), 2, "one address per family: {result}");
    assert!(ips.iter().all(|ip| ip["interface"] == 0), "{result}");
    let on_eth0 = pod.ip(["addr", "show", "dev", "eth0"]);
    for ip in pod_ips(&result) {
        assert!(
            on_eth0.contains(&format!("{ip}/")),
            "{ip} on the pod's eth0"
        );
    }

    net.del(&lan.node1, &Attachment::new(&pod));
    net.assert_nothing_left(&lan.node1);
}

#[test]
fn veth_name_renames_the_pod_end() {
    let lan = Lan::new();
    let pod = lan.pod("n");
    let mut net = Spec::new(Chaining::Interface, Family::V4)
        .set("vethName", json!("tonode"))
        .build();
    let ips = net.add(&lan.node1, &pod);
    assert_eq!(link_kind(&pod, "tonode"), "veth");
    assert!(!pod.has_link("host-eth0"), "the default name is not used");
    net.check(&lan.node1, &pod).expect_ok();
    let node_ips = Family::V4.ips_of(&lan.node1);
    assert_both_ways(("NODE1", &lan.node1, &node_ips), ("pod", &pod, &ips));

    net.del(&lan.node1, &Attachment::new(&pod));
    net.assert_nothing_left(&lan.node1);
}
