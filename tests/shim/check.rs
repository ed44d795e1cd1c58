//! CHECK names the missing piece of host access.

use crate::*;

/// One piece of host access, removed or changed by hand.
#[derive(Clone, Copy, Debug)]
enum Breakage {
    ShimRemoved,
    /// The node's route to the pod's address of that family (true: IPv4).
    RouteRemoved(bool),
    NodeNeighbourRemoved(bool),
    /// The pod's entry for the node's address of that family.
    PodNeighbourRemoved(bool),
    ShimMacChanged,
    ShimDown,
}

impl Breakage {
    /// The pod's addresses for this case: IPv6 only where the case is about IPv6 (each IPv6
    /// address costs a second of duplicate address detection on ADD).
    fn family(self) -> Family {
        use Breakage::*;
        match self {
            RouteRemoved(false) | NodeNeighbourRemoved(false) | PodNeighbourRemoved(false) => {
                Family::V6
            }
            _ => Family::V4,
        }
    }
}

cases!(check_names_the_missing_piece: chained, interface);

fn check_names_the_missing_piece(chaining: Chaining) {
    use Breakage::*;
    let lan = Lan::new();
    let cases = [
        ShimRemoved,
        RouteRemoved(true),
        RouteRemoved(false),
        NodeNeighbourRemoved(true),
        NodeNeighbourRemoved(false),
        PodNeighbourRemoved(true),
        PodNeighbourRemoved(false),
        ShimMacChanged,
        ShimDown,
    ];
    let mut first_shim_mac = None;
    for (i, case) in cases.into_iter().enumerate() {
        let what = format!("CHECK after {case:?}");
        let net = Spec::new(chaining, case.family()).build();
        let mut list = net.conflist();
        let pod = attach(&lan, &lan.node1, &mut list, &format!("c{i}"));
        // Every case re-creates the shim: always with the same MAC.
        let shim_mac = lan.node1.mac(SHIM);
        assert_eq!(first_shim_mac.get_or_insert(shim_mac.clone()), &shim_mac);
        list.check(&lan.node1, &pod.at).expect_ok();
        let node1 = &lan.node1;
        let needles: Vec<String> = match case {
            ShimRemoved => {
                node1.ip(["link", "del", SHIM]);
                vec![SHIM.into(), "does not exist".into()]
            }
            RouteRemoved(v4) => {
                let ip = pod.ip(v4);
                node1.ip([
                    family_flag(ip),
                    "route",
                    "del",
                    &ip.to_string(),
                    "dev",
                    SHIM,
                ]);
                vec!["route".into(), ip.to_string()]
            }
            NodeNeighbourRemoved(v4) => {
                let ip = pod.ip(v4);
                node1.ip(["neigh", "del", &ip.to_string(), "dev", SHIM]);
                vec!["neighbour".into(), ip.to_string()]
            }
            PodNeighbourRemoved(v4) => {
                let node = node_ip(node1, pod.ip(v4));
                pod.pod()
                    .ip(["neigh", "del", &node.to_string(), "dev", "eth0"]);
                vec!["pod".into(), "neighbour".into(), node.to_string()]
            }
            ShimMacChanged => {
                node1.ip(["link", "set", SHIM, "address", "02:00:00:00:be:ef"]);
                vec![SHIM.into(), "MAC".into()]
            }
            ShimDown => {
                node1.ip(["link", "set", SHIM, "down"]);
                vec![SHIM.into(), "down".into()]
            }
        };
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        assert_mentions(&list.check(&lan.node1, &pod.at), &needles, &what);
        list.del(&lan.node1, &pod.at).expect_ok();
        net.assert_clean(&lan.node1, &pod.ips, &format!("DEL after {case:?}"));
    }
}
