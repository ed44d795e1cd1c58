//! CHECK passes on a healthy attachment and names the missing piece otherwise.

use crate::*;

/// One piece of a healthy attachment, removed by hand.
#[derive(Clone, Copy, Debug)]
enum Broken {
    NodeEnd,
    /// The node's /32 route to the pod's IPv4 address.
    NodeRoute4,
    /// The node's permanent neighbour entry for the pod's IPv6 address.
    NodeNeighbour6,
    /// Deleting either end of a veth deletes the pair.
    PodEnd,
    PodEndDown,
    /// The pod's permanent neighbour entry for NODE1's IPv4 address.
    PodNeighbour4,
}

cases!(check_names_what_is_missing {
    without_the_node_end: (Broken::NodeEnd),
    without_the_node_route: (Broken::NodeRoute4),
    without_the_node_neighbour_entry: (Broken::NodeNeighbour6),
    without_the_pod_end: (Broken::PodEnd),
    with_the_pod_end_down: (Broken::PodEndDown),
    without_the_pod_neighbour_entry: (Broken::PodNeighbour4),
});

/// CHECK passes on the healthy attachment, then fails after `broken`, naming the piece.
fn check_names_what_is_missing(broken: Broken) {
    let lan = Lan::new();
    let pod = lan.pod("c");
    let mut net = Spec::veth(Chaining::Chained, Family::Dual).build();
    let result = net.add_result(&lan.node1, &pod);
    let (node_end, ips) = (last_interface(&result), pod_ips(&result));
    let (ip4, ip6) = (ips[0].as_str(), ips[1].as_str());
    net.check(&lan.node1, &pod).expect_ok();

    let named: Vec<&str> = match broken {
        Broken::NodeEnd | Broken::PodEnd => {
            let (ns, end) = match broken {
                Broken::NodeEnd => (&*lan.node1, node_end.as_str()),
                _ => (&pod, "host-eth0"),
            };
            ns.ip(["link", "del", end]);
            vec![&node_end, "does not exist"]
        }
        Broken::NodeRoute4 => {
            lan.node1
                .ip(["route", "del", &format!("{ip4}/32"), "dev", &node_end]);
            vec!["route", ip4]
        }
        Broken::NodeNeighbour6 => {
            lan.node1.ip(["neigh", "del", ip6, "dev", &node_end]);
            vec!["neighbour", ip6]
        }
        Broken::PodEndDown => {
            pod.ip(["link", "set", "host-eth0", "down"]);
            vec!["host-eth0"]
        }
        Broken::PodNeighbour4 => {
            pod.ip(["neigh", "del", NODE1_IP4, "dev", "host-eth0"]);
            vec!["neighbour", NODE1_IP4]
        }
    };
    let out = net.check(&lan.node1, &pod);
    assert!(!out.success(), "CHECK passed with {broken:?}");
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    for word in named {
        assert!(msg.contains(word), "{broken:?}: {word:?} not in {msg:?}");
    }

    net.del(&lan.node1, &Attachment::new(&pod));
    net.assert_nothing_left(&lan.node1);
}
