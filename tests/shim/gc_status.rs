//! GC removes exactly the attachments not listed; STATUS follows the master.

use crate::*;
use serde_json::{json, Value};

/// Runs our GC with `key` listing `keep` as the attachments to keep.
fn gc(lan: &Lan, net: &Net, key: &str, keep: &[&Attached]) -> CniOutput {
    let mut conf = net.our_conf();
    let listed: Vec<Value> = keep
        .iter()
        .map(|p| json!({"containerID": p.at.container_id, "ifname": p.at.ifname}))
        .collect();
    conf[key] = json!(listed);
    Plugin::ours().run(&lan.node1, "GC", &Attachment::none(), &conf)
}

/// The pod's host access is in place: routes, neighbour entries and record.
fn assert_attached(lan: &Lan, net: &Net, list: &Conflist, pod: &Attached, what: &str) {
    for &ip in &pod.ips {
        assert!(
            host_route(&lan.node1, ip).is_some(),
            "{what}: route to {ip}"
        );
        assert!(
            neighbour(&lan.node1, SHIM, ip).is_some(),
            "{what}: entry for {ip}"
        );
        assert_pings(what, &lan.node1, ip);
    }
    assert!(net.record_path(&pod.at).exists(), "{what}: record");
    list.check(&lan.node1, &pod.at).expect_ok();
}

/// Nothing of the pod's host access is left: routes, neighbour entries, its state files.
fn assert_detached(lan: &Lan, net: &Net, pod: &Attached, what: &str) {
    assert_no_trace_on_node(&lan.node1, &pod.ips, what);
    let id = &pod.at.container_id;
    let left: Vec<String> = net
        .state_entries()
        .into_iter()
        .filter(|e| e.contains(id.as_str()))
        .collect();
    assert!(left.is_empty(), "{what}: state files left: {left:?}");
    for ip in &pod.ips {
        assert!(
            !net.state_dir.join(format!("owners/{ip}")).exists(),
            "{what}: owner file of {ip}"
        );
    }
}

cases!(gc_removes_exactly_the_attachments_not_listed: chained, interface);

fn gc_removes_exactly_the_attachments_not_listed(chaining: Chaining) {
    let lan = Lan::new();
    let net = Spec::new(chaining, Family::Dual).build();
    let mut list = net.conflist();
    let a = attach(&lan, &lan.node1, &mut list, "a");
    let b = attach(&lan, &lan.node1, &mut list, "b");
    let c = attach(&lan, &lan.node1, &mut list, "c");

    gc(&lan, &net, "cni.dev/valid-attachments", &[&a, &b]).expect_ok();
    assert_detached(&lan, &net, &c, "GC keeping a and b: c");
    assert_attached(&lan, &net, &list, &a, "GC keeping a and b: a");
    assert_attached(&lan, &net, &list, &b, "GC keeping a and b: b");

    // The older key.
    gc(&lan, &net, "cni.dev/attachments", &[&a]).expect_ok();
    assert_detached(&lan, &net, &b, "GC keeping a: b");
    assert_attached(&lan, &net, &list, &a, "GC keeping a: a");

    gc(&lan, &net, "cni.dev/valid-attachments", &[]).expect_ok();
    assert_detached(&lan, &net, &a, "GC keeping nothing: a");
    assert!(
        !lan.node1.has_link(SHIM),
        "GC keeping nothing: the shim is left"
    );
    assert_eq!(net.state_entries(), Vec::<String>::new());
}

cases!(status_reports_whether_the_master_is_up: chained, interface);

fn status_reports_whether_the_master_is_up(chaining: Chaining) {
    let lan = Lan::new();
    let net = Spec::new(chaining, Family::V4).build();
    let status = || Plugin::ours().run(&lan.node1, "STATUS", &Attachment::none(), &net.our_conf());
    status().expect_ok();
    lan.node1.ip(["link", "set", "eth0", "down"]);
    assert_eq!(status().expect_error(), 50, "master down");
    lan.node1.ip(["link", "set", "eth0", "up"]);
    if chaining == Chaining::Chained {
        // Without `master` it is the default route's interface: the route comes back too.
        lan.node1.ip([
            "route", "replace", "default", "via", PEER_IP4, "dev", "eth0",
        ]);
    }
    status().expect_ok();
}
