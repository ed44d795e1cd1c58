//! `stateDir` removed (`rm -rf`) while pods live: DEL still removes each pod's host side from
//! what it can learn without the record (prevResult, or the pod's interface while its
//! namespace exists), never a newer pod's route to the same address; the shim goes with the
//! last route through it. GC cannot know the pods any more and leaves them alone.

use crate::*;
use serde_json::{json, Value};
use std::fs;

fn wipe(net: &Net) {
    fs::remove_dir_all(&net.state_dir).expect("removing stateDir");
}

fn assert_reachable(lan: &Lan, pod: &Attached, what: &str) {
    for ip in &pod.ips {
        assert!(lan.node1.ping(&ip.to_string()), "{what}: NODE1 -> {ip}");
    }
}

cases!(del_with_prev_result_cleans_up_after_a_wipe: chained, interface);

/// Two pods on the shim, stateDir wiped; DEL of each (with prevResult, as libcni runs it)
/// removes that pod's route and neighbour entry only, and the last one the shim.
fn del_with_prev_result_cleans_up_after_a_wipe(chaining: Chaining) {
    let lan = Lan::new();
    let mut net = Spec::new(chaining, Family::Dual).build();
    let a = attach(&lan, &lan.node1, &mut net.list, "a");
    let b = attach(&lan, &lan.node1, &mut net.list, "b");
    wipe(&net);
    net.del(&lan.node1, &a.at);
    assert_no_trace_on_node(&lan.node1, &a.ips, "DEL of pod a after the wipe");
    assert!(
        lan.node1.has_link(SHIM),
        "pod b still routes through the shim"
    );
    assert_reachable(&lan, &b, "pod b after pod a's DEL");
    net.del(&lan.node1, &b.at);
    assert_no_trace_on_node(&lan.node1, &b.ips, "DEL of pod b after the wipe");
    assert_no_host_side(&lan.node1);
    assert_eq!(host_local_allocations(&net.data_dir), Vec::<String>::new());
}

cases!(del_without_prev_result_learns_from_the_pod: chained, interface);

/// No prevResult, no record: the pod's interface (still in its namespace) tells its
/// addresses and MAC.
fn del_without_prev_result_learns_from_the_pod(chaining: Chaining) {
    let lan = Lan::new();
    let mut net = Spec::new(chaining, Family::Dual).build();
    let a = attach(&lan, &lan.node1, &mut net.list, "a");
    wipe(&net);
    net.del_ours_only(&lan.node1, &a.at);
    assert_no_trace_on_node(&lan.node1, &a.ips, "DEL without prevResult after the wipe");
    assert_no_host_side(&lan.node1);
    // The rest of the chain (chained mode: the reference macvlan and its allocation).
    net.del(&lan.node1, &a.at);
    assert_eq!(host_local_allocations(&net.data_dir), Vec::<String>::new());
}

/// Pod a's host side is left behind (its namespace gone, stateDir wiped); pod c gets the same
/// address. A late DEL of pod a must not take pod c's route: not while c's ownership is
/// recorded, and not when the owners were wiped too (the neighbour entry carries c's MAC).
#[test]
fn a_late_del_never_removes_a_newer_pods_route_to_the_same_address() {
    let lan = Lan::new();
    let mut net = Spec::new(Chaining::Interface, Family::V4).build();
    let mut a = attach(&lan, &lan.node1, &mut net.list, "a");
    let a_result = net.list.cached(&a.at).expect("a's result").clone();
    let ip = a.ip(true);
    wipe(&net);
    drop(a.pod.take()); // the pod's namespace goes, its macvlan with it
                        // Pod c on the same stateDir, given a's address by static IPAM.
    let c_pod = lan.pod("c");
    let c_at = Attachment::new(&c_pod);
    let mut c_conf = net.our_conf();
    c_conf["ipam"] = json!({"type": "static", "addresses": [{"address": format!("{ip}/24")}]});
    net.plugin.add(&lan.node1, &c_at, &c_conf).expect_ok();
    assert!(lan.node1.ping(&ip.to_string()), "pod c is reachable");

    let late_del = |conf: &Value| {
        net.plugin
            .del(
                &lan.node1,
                &a.at.clone().without_netns(),
                &with_prev(conf, &a_result),
            )
            .expect_ok();
    };
    // c's ownership is recorded: a's DEL leaves its route.
    late_del(&net.our_conf());
    assert!(lan.node1.ping(&ip.to_string()), "pod c after a's late DEL");
    // Everything wiped again: the neighbour entry's MAC is c's, not a's.
    wipe(&net);
    late_del(&net.our_conf());
    assert!(
        lan.node1.ping(&ip.to_string()),
        "pod c after a's late DEL, owners wiped"
    );
    let c_mac = c_pod.mac("eth0");
    let c_prev = json!({
        "cniVersion": "1.1.0",
        "interfaces": [{"name": "eth0", "mac": c_mac, "sandbox": c_pod.path()}],
        "ips": [{"address": format!("{ip}/24"), "interface": 0}],
    });
    net.plugin
        .del(&lan.node1, &c_at, &with_prev(&c_conf, &c_prev))
        .expect_ok();
    assert_no_host_side(&lan.node1);
}

/// GC after a wipe: without records it cannot tell which routes are the runtime's pods, so it
/// removes nothing that routes a live pod, and still exits 0.
#[test]
fn gc_after_a_wipe_keeps_live_pods() {
    let lan = Lan::new();
    let mut net = Spec::new(Chaining::Interface, Family::V4).build();
    let a = attach(&lan, &lan.node1, &mut net.list, "a");
    wipe(&net);
    let mut gc = net.our_conf();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": a.at.container_id, "ifname": "eth0"}]);
    net.plugin
        .run(&lan.node1, "GC", &Attachment::none(), &gc)
        .expect_ok();
    assert_reachable(&lan, &a, "pod a after GC");
    net.del(&lan.node1, &a.at);
    assert_no_host_side(&lan.node1);
}
