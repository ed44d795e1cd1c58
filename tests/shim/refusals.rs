//! Refused configurations, and the ways out the errors name.

use crate::*;
use serde_json::json;
use std::net::IpAddr;

cases!(a_pod_address_of_the_node_is_refused: chained, interface);

fn a_pod_address_of_the_node_is_refused(chaining: Chaining) {
    let lan = Lan::new();
    let net = Spec::new(chaining, Family::V4).range(10, 10).build();
    let mut list = net.conflist();
    let pod = lan.pod("thief");
    let at = Attachment::new(&pod);
    let out = list.add(&lan.node1, &at);
    assert_mentions(&out, &["local address", NODE1_IP4], "ADD of a node address");
    assert!(!lan.node1.has_link(SHIM), "a shim for a refused pod");
    assert!(
        host_route(&lan.node1, NODE1_IP4.parse().unwrap()).is_none(),
        "a route takes the node's own address away"
    );
    assert_pings(
        "NODE1 -> PEER after the refusal",
        &lan.node1,
        PEER_IP4.parse().unwrap(),
    );
    list.del(&lan.node1, &at).expect_ok();
    net.assert_clean(&lan.node1, &[], "DEL after the refused ADD");
}

cases!(a_pod_macvlan_not_in_bridge_mode_is_refused: chained, interface);

fn a_pod_macvlan_not_in_bridge_mode_is_refused(chaining: Chaining) {
    let lan = Lan::new();
    let net = Spec::new(chaining, Family::V4).mode("vepa").build();
    let mut list = net.conflist();
    let pod = lan.pod("vepa");
    let at = Attachment::new(&pod);
    let out = list.add(&lan.node1, &at);
    assert_mentions(&out, &["vepa", "hostAccess", "veth"], "ADD of a vepa pod");
    assert!(!lan.node1.has_link(SHIM), "a shim for a refused pod");
    list.del(&lan.node1, &at).expect_ok();
    net.assert_clean(&lan.node1, &[], "DEL after the refused ADD");
}

cases!(a_master_without_ipv4_needs_shim_addresses: chained, interface);

fn a_master_without_ipv4_needs_shim_addresses(chaining: Chaining) {
    const SHIM_IP4: &str = "10.99.0.250";
    let lan = Lan::new();
    lan.node1
        .ip(["addr", "del", &format!("{NODE1_IP4}/24"), "dev", "eth0"]);
    let mut net = Spec::new(chaining, Family::V4).build();
    let mut list = net.conflist();
    let pod = lan.pod("a");
    let at = Attachment::new(&pod);
    let out = list.add(&lan.node1, &at);
    assert_mentions(
        &out,
        &["eth0", "IPv4 address", "shimAddresses"],
        "ADD with no IPv4 address on the master",
    );
    list.del(&lan.node1, &at).expect_ok();
    net.assert_clean(&lan.node1, &[], "DEL after the refused ADD");

    net.set("shimAddresses", json!([format!("{SHIM_IP4}/32")]));
    let mut list = net.conflist();
    let pod = attach(&lan, &lan.node1, &mut list, "b");
    let on_shim = lan.node1.ip_json(["-4", "addr", "show", "dev", SHIM]);
    assert_eq!(
        on_shim[0]["addr_info"][0]["local"], SHIM_IP4,
        "the shim carries shimAddresses: {on_shim}"
    );
    let shim_ip: IpAddr = SHIM_IP4.parse().unwrap();
    let pod_ip = pod.ips[0];
    assert_eq!(host_route(&lan.node1, pod_ip).unwrap()["prefsrc"], SHIM_IP4);
    assert_pings("NODE1 -> pod", &lan.node1, pod_ip);
    assert_pings("pod -> the shim's address", pod.pod(), shim_ip);
    let _server = pod.pod().tcp_server(TCP_PORT);
    assert_tcp("NODE1 -> pod", &lan.node1, pod_ip);
    list.del(&lan.node1, &pod.at).expect_ok();
    net.assert_clean(&lan.node1, &pod.ips, "DEL with shimAddresses");
}

// ---------------------------------------------------------------------------------------------
// hostRoutes
// ---------------------------------------------------------------------------------------------
