//! The control (the veth is what lets the node reach its pod), then every path to and from a
//! veth pod in chained and interface mode for IPv4, IPv6 and dual stack, and with every
//! macvlan mode.

use crate::*;
use serde_json::json;

#[test]
fn without_the_veth_node1_cannot_reach_its_pod() {
    let lan = Lan::new();
    let pod = lan.pod("a");
    let mut net = Spec::veth(Chaining::Chained, Family::V4).build();
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

cases!(every_path_to_a_veth_pod_works {
    chained_ipv4: (Chaining::Chained, Family::V4),
    chained_ipv6: (Chaining::Chained, Family::V6),
    chained_dual_stack: (Chaining::Chained, Family::Dual),
    interface_ipv4: (Chaining::Interface, Family::V4),
    interface_ipv6: (Chaining::Interface, Family::V6),
    interface_dual_stack: (Chaining::Interface, Family::Dual),
});

/// A veth pod on NODE1 and one on NODE2: each node reaches its own pod both ways, PEER reaches
/// the pod on NODE1, the pods reach each other and NODE1 reaches the pod on NODE2; DEL leaves
/// nothing on either node.
fn every_path_to_a_veth_pod_works(chaining: Chaining, family: Family) {
    let lan = Lan::new();
    let (pod1, pod2) = (lan.pod("one"), lan.pod("two"));
    let mut net1 = Spec::veth(chaining, family).build();
    let mut net2 = Spec::veth(chaining, family).first(150).build();
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

cases!(every_macvlan_mode_is_reached {
    chained_bridge: (Chaining::Chained, "bridge"),
    chained_private: (Chaining::Chained, "private"),
    chained_vepa: (Chaining::Chained, "vepa"),
    chained_passthru: (Chaining::Chained, "passthru"),
    interface_bridge: (Chaining::Interface, "bridge"),
    interface_private: (Chaining::Interface, "private"),
    interface_vepa: (Chaining::Interface, "vepa"),
    interface_passthru: (Chaining::Interface, "passthru"),
});

/// The pod's macvlan in `mode` (a dedicated pod: passthru allows one macvlan per master): NODE1
/// and the pod reach each other through the veth, PEER reaches the pod over the LAN. In
/// interface mode, the shim is first shown to refuse every mode but bridge.
fn every_macvlan_mode_is_reached(chaining: Chaining, mode: &'static str) {
    let lan = Lan::new();
    let pod = lan.pod("m");
    let family = Family::Dual;
    if chaining == Chaining::Interface && mode != "bridge" {
        let mut shim = Spec::veth(chaining, family)
            .mode(mode)
            .set("hostAccess", json!("shim"))
            .build();
        let refused = shim.list.add(&lan.node1, &Attachment::new(&pod));
        assert_eq!(refused.expect_error(), 7, "{}", refused.stdout);
        let msg = refused.stdout["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(mode) && msg.contains("veth"), "{msg}");
        shim.assert_nothing_left(&lan.node1);
    }

    let mut net = Spec::veth(chaining, family).mode(mode).build();
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
