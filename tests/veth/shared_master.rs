//! Shim and veth pods on one master: each keeps its path when the other goes.

use crate::*;
use serde_json::json;

#[test]
fn shim_and_veth_pods_share_a_master() {
    let lan = Lan::new();
    let (shim_pod, veth_pod) = (lan.pod("shim"), lan.pod("veth"));
    let mut shim_net = Spec::veth(Chaining::Chained, Family::V4)
        .name("shimnet")
        .set("hostAccess", json!("shim"))
        .build();
    // A private-mode pod, which only the veth reaches; same stateDir (one node lock).
    let mut veth_net = Spec::veth(Chaining::Chained, Family::V4)
        .name("vethnet")
        .first(150)
        .mode("private")
        .sharing_dirs_with(&shim_net)
        .build();
    let node1 = ("NODE1", &*lan.node1, &Family::V4.ips_of(&lan.node1)[..]);
    let shim_ips = shim_net.add(&lan.node1, &shim_pod);
    let veth_result = veth_net.add_result(&lan.node1, &veth_pod);
    let (veth_end, veth_ips) = (last_interface(&veth_result), pod_ips(&veth_result));
    let shim_side = ("shim pod", &shim_pod, &shim_ips[..]);
    let veth_side = ("veth pod", &veth_pod, &veth_ips[..]);
    assert_eq!(link_kind(&lan.node1, "mvh-eth0"), "macvlan");
    assert_eq!(link_kind(&lan.node1, &veth_end), "veth");
    assert_both_ways(node1, shim_side);
    assert_both_ways(node1, veth_side);

    shim_net.del(&lan.node1, &Attachment::new(&shim_pod));
    assert!(
        !lan.node1.has_link("mvh-eth0"),
        "the unused shim is removed"
    );
    veth_net.check(&lan.node1, &veth_pod).expect_ok();
    assert_both_ways(node1, veth_side);

    let shim_ips = shim_net.add(&lan.node1, &shim_pod);
    let shim_side = ("shim pod", &shim_pod, &shim_ips[..]);
    veth_net.del(&lan.node1, &Attachment::new(&veth_pod));
    assert!(
        !lan.node1.has_link(&veth_end),
        "the veth pod's pair is removed"
    );
    shim_net.check(&lan.node1, &shim_pod).expect_ok();
    assert_both_ways(node1, shim_side);

    shim_net.del(&lan.node1, &Attachment::new(&shim_pod));
    shim_net.assert_nothing_left(&lan.node1);
}
