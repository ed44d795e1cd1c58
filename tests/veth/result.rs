//! The ADD result lists the node end last; `vethName` renames the pod end.

use crate::*;
use serde_json::{json, Value};

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
    let net = Spec::veth(Chaining::Chained, Family::Dual).build();
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
    let mut net = Spec::veth(Chaining::Interface, Family::Dual).build();
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
    let mut net = Spec::veth(Chaining::Interface, Family::V4)
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
