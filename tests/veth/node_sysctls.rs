//! Node sysctl profiles: reachability holds and ADD changes none of them.

use crate::*;

cases!(works_with_node_sysctls {
    defaults: (&[]),
    strict_rp_filter_on_all: (&[("rp_filter", "1")]),
    arp_ignore_arp_announce_and_strict_rp_filter_on_all: (&[
        ("arp_ignore", "1"),
        ("arp_announce", "2"),
        ("rp_filter", "1"),
    ]),
});

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

    let mut net = Spec::veth(Chaining::Chained, family).build();
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
