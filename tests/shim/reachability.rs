//! The control (a pod without macvlan-host is out of its node's reach), then every path to
//! and from a shim pod, for IPv4, IPv6 and dual stack; `hostRoutes` through the node.

use crate::*;
use serde_json::json;
use std::net::IpAddr;

cases!(every_path_works_only_with_host_access {
    chained_ipv4: (Chaining::Chained, Family::V4),
    chained_ipv6: (Chaining::Chained, Family::V6),
    chained_dual_stack: (Chaining::Chained, Family::Dual),
    interface_ipv4: (Chaining::Interface, Family::V4),
    interface_ipv6: (Chaining::Interface, Family::V6),
    interface_dual_stack: (Chaining::Interface, Family::Dual),
});

fn every_path_works_only_with_host_access(chaining: Chaining, family: Family) {
    let lan = Lan::new();
    let net1 = Spec::new(chaining, family).build();

    // Control: the same pod without macvlan-host is on the LAN but out of NODE1's reach.
    let mut control = net1.without_host_access();
    let alone = attach(&lan, &lan.node1, &mut control, "control");
    for &ip in &alone.ips {
        assert_pings("control: PEER -> pod", &lan.peer, ip);
        assert!(
            !lan.node1.ping(&ip.to_string()),
            "control: NODE1 reaches its pod {ip} without macvlan-host"
        );
    }
    control.del(&lan.node1, &alone.at).expect_ok();

    let net2 = Spec::new(chaining, family).first(150).build();
    let (mut list1, mut list2) = (net1.conflist(), net2.conflist());
    let a = attach(&lan, &lan.node1, &mut list1, "a");
    let b = attach(&lan, &lan.node1, &mut list1, "b");
    let c = attach(&lan, &lan.node2, &mut list2, "c");
    assert_eq!(a.ips.len(), if family == Family::Dual { 2 } else { 1 });

    assert_node_and_pod_talk(&lan, &a);
    let _server = a.pod().tcp_server(TCP_PORT);
    for v4 in [true, false]
        .into_iter()
        .filter(|v4| a.ips.iter().any(|ip| ip.is_ipv4() == *v4))
    {
        let (a_ip, b_ip, c_ip) = (a.ip(v4), b.ip(v4), c.ip(v4));
        assert_pings("PEER -> pod", &lan.peer, a_ip);
        assert_pings("pod -> PEER", a.pod(), node_ip(&lan.peer, a_ip));
        assert_tcp("PEER -> pod", &lan.peer, a_ip);
        assert_pings("pod -> pod on the same node", a.pod(), b_ip);
        assert_pings("pod -> pod on the same node", b.pod(), a_ip);
        assert_pings("pod on NODE1 -> pod on NODE2", a.pod(), c_ip);
        assert_pings("pod on NODE2 -> pod on NODE1", c.pod(), a_ip);
        assert_pings("NODE1 -> pod on NODE2", &lan.node1, c_ip);
        assert_pings("pod on NODE2 -> NODE1", c.pod(), node_ip(&lan.node1, c_ip));
        assert_pings("NODE2 -> its own pod", &lan.node2, c_ip);
    }
}

cases!(host_routes_lead_through_the_node: chained, interface);

fn host_routes_lead_through_the_node(chaining: Chaining) {
    // Addresses only the node has (on its lo): reachable from a pod only through the node.
    const BEHIND4: &str = "10.98.0.1";
    const BEHIND6: &str = "fd98::1";
    let lan = Lan::new();
    lan.node1
        .ip(["addr", "add", &format!("{BEHIND4}/32"), "dev", "lo"]);
    lan.node1
        .ip(["addr", "add", &format!("{BEHIND6}/128"), "dev", "lo"]);
    let behind: [IpAddr; 2] = [BEHIND4.parse().unwrap(), BEHIND6.parse().unwrap()];

    let mut net = Spec::new(chaining, Family::Dual).build();
    let mut list = net.conflist();
    let plain = attach(&lan, &lan.node1, &mut list, "plain");
    for ip in behind {
        assert!(
            !plain.pod().ping(&ip.to_string()),
            "control: a pod without hostRoutes reaches {ip}"
        );
    }

    net.set(
        "hostRoutes",
        json!([format!("{BEHIND4}/32"), format!("{BEHIND6}/128")]),
    );
    let mut list = net.conflist();
    let routed = attach(&lan, &lan.node1, &mut list, "routed");
    for ip in behind {
        let route = host_route(routed.pod(), ip).unwrap_or_else(|| panic!("no route to {ip}"));
        assert_eq!(
            route["gateway"],
            node_ip(&lan.node1, ip).to_string(),
            "{route}"
        );
        assert_pings("pod -> hostRoutes", routed.pod(), ip);
    }
}
