//! A Linux bridge as the master (libvirt, LXC and Proxmox hosts): NODE1's LAN port `eth0` is
//! enslaved to a bridge `br0` that carries the node's addresses and default routes, and the
//! pods' macvlans hang off `br0`. The node and its pods reach each other both ways (ping and
//! TCP, IPv4 and IPv6), and the LAN reaches the pods, for every wiring.

use super::common::*;

/// NODE1 as a bridged host: `br0` with `eth0` as its port and the node's addresses on it.
fn bridge_the_node(lan: &Lan) {
    let node = &lan.node1;
    node.ip(["link", "add", "br0", "type", "bridge", "forward_delay", "0"]);
    // The kernel's routes and addresses of eth0 go; the bridge gets them.
    node.ip(["addr", "flush", "dev", "eth0"]);
    node.ip(["link", "set", "eth0", "master", "br0"]);
    node.ip(["link", "set", "br0", "up"]);
    node.ip(["addr", "add", &format!("{NODE1_IP4}/24"), "dev", "br0"]);
    node.ip([
        "addr",
        "add",
        &format!("{NODE1_IP6}/64"),
        "dev",
        "br0",
        "nodad",
    ]);
    node.ip(["route", "replace", "default", "via", PEER_IP4, "dev", "br0"]);
    node.ip([
        "-6", "route", "replace", "default", "via", PEER_IP6, "dev", "br0",
    ]);
}

cases!(node_and_pods_reach_each_other_over_a_bridge_master {
    interface_shim: (Chaining::Interface, "shim"),
    chained_shim: (Chaining::Chained, "shim"),
    interface_veth: (Chaining::Interface, "veth"),
    chained_veth: (Chaining::Chained, "veth"),
});

fn node_and_pods_reach_each_other_over_a_bridge_master(chaining: Chaining, access: &str) {
    let lan = Lan::new();
    bridge_the_node(&lan);
    let mut net = Spec::new(chaining, Family::Dual)
        .master("br0")
        .set("hostAccess", serde_json::json!(access))
        .build();
    let pod = lan.pod("bridged");
    let ips = net.add(&lan.node1, &pod);
    assert_eq!(ips.len(), 2, "one address per family: {ips:?}");
    if access == "shim" {
        assert!(lan.node1.has_link("mvh-br0"), "the shim hangs off br0");
    }
    let node_ips = Family::Dual.ips_of(&lan.node1);
    assert_both_ways(("node", &lan.node1, &node_ips), ("pod", &pod, &ips));
    assert_reaches(("peer", &lan.peer), ("pod", &pod), &ips);
    net.del(&lan.node1, &Attachment::new(&pod));
    assert!(
        !lan.node1.has_link("mvh-br0"),
        "the shim goes with its last pod"
    );
    net.assert_nothing_left(&lan.node1);
}

/// The control: a bridge master has the macvlan problem too. Without host access (the
/// reference macvlan alone) the bridged node cannot reach its pod, while the peer can.
#[test]
fn without_host_access_the_bridged_node_cannot_reach_its_pod() {
    let lan = Lan::new();
    bridge_the_node(&lan);
    let net = Spec::new(Chaining::Chained, Family::V4)
        .master("br0")
        .build();
    let mut list = net.without_host_access();
    let pod = lan.pod("alone");
    let at = Attachment::new(&pod);
    let ips = pod_ips(list.add(&lan.node1, &at).expect_ok());
    assert!(lan.peer.ping(&ips[0]), "the peer reaches the pod");
    assert!(
        !lan.node1.ping(&ips[0]),
        "the node reaches its pod without help"
    );
    list.del(&lan.node1, &at).expect_ok();
}
