//! Issue 18, finding 3: the shim follows the master's MTU both ways. Raised from 1500 to 9000
//! under a live shim, the master gave new pods 9000 while the shim stayed at 1500: node ->
//! pod jumbo frames failed, and CHECK found nothing. Now the next ADD (and reconcile, see
//! tests/reconcile.rs) sets the shim to the master's MTU, and CHECK names a shim whose MTU
//! differs.

use crate::*;

#[test]
fn jumbo_frames_cross_the_shim_after_the_master_is_raised() {
    let lan = Lan::new();
    let mut net = Spec::new(Chaining::Interface, Family::Dual).build();
    let before = lan.pod("before");
    net.add(&lan.node1, &before);
    lan.set_node1_mtu(9000);

    // The shim is still at 1500: CHECK of the pod made before says so.
    let out = net.check(&lan.node1, &before);
    out.expect_error();
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    assert!(msg.contains(SHIM) && msg.contains("MTU 1500"), "{msg}");

    // A new pod's macvlan takes the master's 9000; its ADD raises the shim with it.
    let jumbo = lan.pod("jumbo");
    let ips = net.add(&lan.node1, &jumbo);
    let node_ips = Family::Dual.ips_of(&lan.node1);
    assert_jumbo_both_ways(("NODE1", &lan.node1, &node_ips), ("pod", &jumbo, &ips));
    net.check(&lan.node1, &before).expect_ok();
    net.check(&lan.node1, &jumbo).expect_ok();

    // Lowered again, the kernel takes the shim down with the master: nothing drifts.
    lan.set_node1_mtu(1500);
    net.check(&lan.node1, &before).expect_ok();

    net.del(&lan.node1, &Attachment::new(&jumbo));
    net.del(&lan.node1, &Attachment::new(&before));
    net.assert_nothing_left(&lan.node1);
}
