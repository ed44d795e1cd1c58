//! No ARP flux and no change to the node's sysctls, whatever their profile.

use crate::*;
use serde_json::json;
use std::net::IpAddr;

/// The node-wide sysctl settings a test applies inside NODE1 before any pod exists.
#[derive(Clone, Copy, Debug)]
enum Profile {
    Defaults,
    StrictRpFilter,
    ArpHardened,
}

impl Profile {
    fn sysctls(self) -> &'static [&'static str] {
        match self {
            Profile::Defaults => &[],
            Profile::StrictRpFilter => &["net.ipv4.conf.all.rp_filter=1"],
            Profile::ArpHardened => &[
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
                "net.ipv4.conf.all.rp_filter=1",
            ],
        }
    }
}

/// Every `all` and `default` interface setting of `node`, as `sysctl -a` prints them.
fn node_wide_sysctls(node: &Netns) -> String {
    node.run([
        "sysctl",
        "-e",
        "-a",
        "-r",
        r"^net\.ipv[46]\.conf\.(all|default)\.",
    ])
}

/// PEER's neighbour entry for `ip` on eth0: its MAC.
fn peer_sees(lan: &Lan, ip: &str) -> String {
    let ip: IpAddr = ip.parse().unwrap();
    let entry = neighbour(&lan.peer, "eth0", ip).unwrap_or_else(|| {
        panic!(
            "PEER has no neighbour entry for {ip}: {:?}",
            lan.peer.neigh()
        )
    });
    entry["lladdr"].as_str().unwrap_or_default().to_lowercase()
}

cases!(one_arp_answer_under_every_sysctl_profile {
    chained_defaults: (Chaining::Chained, Profile::Defaults),
    chained_strict_rp_filter: (Chaining::Chained, Profile::StrictRpFilter),
    chained_arp_hardened: (Chaining::Chained, Profile::ArpHardened),
    interface_defaults: (Chaining::Interface, Profile::Defaults),
    interface_strict_rp_filter: (Chaining::Interface, Profile::StrictRpFilter),
    interface_arp_hardened: (Chaining::Interface, Profile::ArpHardened),
});

fn one_arp_answer_under_every_sysctl_profile(chaining: Chaining, profile: Profile) {
    let lan = Lan::new();
    for setting in profile.sysctls() {
        lan.node1.run(["sysctl", "-qw", setting]);
    }
    let node_wide = node_wide_sysctls(&lan.node1);
    let eth0 = lan.node1.mac("eth0");
    // PEER knows NODE1 (an entry the node's ARP from the shim would overwrite).
    assert_pings("PEER -> NODE1", &lan.peer, NODE1_IP4.parse().unwrap());
    assert_pings("PEER -> NODE1", &lan.peer, NODE1_IP6.parse().unwrap());

    let net = Spec::new(chaining, Family::Dual).build();
    let mut list = net.conflist();
    let pod = attach(&lan, &lan.node1, &mut list, "a");
    let shim = lan.node1.mac(SHIM);
    assert_ne!(shim, eth0);
    let shim_addrs = lan.node1.ip_json(["addr", "show", "dev", SHIM]);
    assert_eq!(
        shim_addrs[0]["addr_info"],
        json!([]),
        "the shim has no address: {shim_addrs}"
    );
    assert_eq!(
        lan.peer.arping("eth0", NODE1_IP4, 1),
        vec![eth0.clone()],
        "ARP for NODE1 before node <-> pod traffic"
    );

    assert_node_and_pod_talk(&lan, &pod);

    assert_eq!(
        lan.peer.arping("eth0", NODE1_IP4, 1),
        vec![eth0.clone()],
        "ARP for NODE1 after node <-> pod traffic"
    );
    for ip in [NODE1_IP4, NODE1_IP6] {
        assert_eq!(peer_sees(&lan, ip), eth0, "PEER's entry for NODE1 {ip}");
    }
    assert_eq!(
        node_wide_sysctls(&lan.node1),
        node_wide,
        "NODE1's all/default sysctls changed"
    );
}
