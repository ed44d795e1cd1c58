//! Issue 18, finding 2: both ends of the veth pair follow the pod interface's MTU, so a
//! jumbo-frame LAN is jumbo between the node and its pod too (they were created at 1500:
//! an 8000-byte ping with DF failed both ways, IPv4 and IPv6). CHECK names an end whose MTU
//! drifted, and reconcile puts it back.

use crate::*;

cases!(jumbo_frames_cross_the_veth_both_ways {
    interface: (Chaining::Interface),
    chained: (Chaining::Chained),
});

fn jumbo_frames_cross_the_veth_both_ways(chaining: Chaining) {
    let lan = Lan::new();
    lan.set_node1_mtu(9000);
    let pod = lan.pod("jumbo");
    let mut net = Spec::veth(chaining, Family::Dual).build();
    let ips = net.add(&lan.node1, &pod);
    let node_ips = Family::Dual.ips_of(&lan.node1);
    assert_jumbo_both_ways(("NODE1", &lan.node1, &node_ips), ("pod", &pod, &ips));
    net.check(&lan.node1, &pod).expect_ok();

    // An end set back to 1500 is drift, which CHECK names.
    pod.ip(["link", "set", "host-eth0", "mtu", "1500"]);
    let out = net.check(&lan.node1, &pod);
    out.expect_error();
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("host-eth0") && msg.contains("MTU 1500"),
        "{msg}"
    );

    net.del(&lan.node1, &Attachment::new(&pod));
    net.assert_nothing_left(&lan.node1);
}
