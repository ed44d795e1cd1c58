//! `hostAccess: "veth"` over an attachment's life: DEL finds the node end by its derived name
//! and succeeds in every degraded case, CHECK names the missing piece, GC removes exactly the
//! unlisted pairs, 32 pods come and go concurrently, and shim and veth pods share a master.

mod common;
mod veth_support;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::thread;
use veth_support::*;

// ---------------------------------------------------------------------------------------------
// DEL
// ---------------------------------------------------------------------------------------------

/// The pod's namespace has lost its name (a process still holds it, so the pair lives on) and
/// macvlan-host gets neither prevResult nor CNI_NETNS: DEL still removes the node end, found
/// through the record or, without one, through its name derived from the attachment.
fn del_finds_the_node_end_without_prev_result_or_namespace(keep_record: bool) {
    let lan = Lan::new();
    let pod = lan.pod("d");
    let mut net = Spec::new(Chaining::Chained, Family::V4).build();
    let node_end = last_interface(&net.add_result(&lan.node1, &pod));
    let at = Attachment::new(&pod).without_netns();
    let record = net.record_path(&pod);
    let holder = Holder::hold(&pod);
    drop(pod);
    assert!(
        lan.node1.has_link(&node_end),
        "the pair outlives the netns name"
    );
    if !keep_record {
        fs::remove_file(&record).expect("remove the record");
    }

    net.del_ours_only(&lan.node1, &at);
    assert!(!lan.node1.has_link(&node_end), "{node_end} removed by DEL");
    assert_no_host_side(&lan.node1);
    assert_eq!(net.state_files("attachments"), Vec::<String>::new());

    // The rest of the conflist (reference macvlan, host-local) after it.
    net.del(&lan.node1, &at);
    drop(holder);
    assert_eq!(host_local_allocations(&net.data_dir), Vec::<String>::new());
    if keep_record {
        assert_eq!(net.state_files("owners"), Vec::<String>::new());
    }
}

#[test]
fn del_without_prev_result_or_namespace_uses_the_record() {
    del_finds_the_node_end_without_prev_result_or_namespace(true);
}

#[test]
fn del_without_prev_result_namespace_or_record_uses_the_derived_name() {
    del_finds_the_node_end_without_prev_result_or_namespace(false);
}

/// What is already gone when the runtime deletes the attachment.
#[derive(Clone, Copy, Debug)]
enum Degraded {
    /// Nothing: DEL is repeated, the second time without prevResult.
    Repeated,
    /// The pod's namespace (and with it the whole pair).
    NamespaceGone,
    /// The attachment record.
    RecordRemoved,
    /// The veth's node end, deleted by hand (and with it the pod end).
    NodeEndRemoved,
}

/// DEL succeeds and leaves nothing: no veth, host route or neighbour entry on the node, no
/// record, no route owner, no IP allocation.
fn del_leaves_nothing(chaining: Chaining, case: Degraded) {
    let lan = Lan::new();
    let mut pod = Some(lan.pod("d"));
    let mut net = Spec::new(chaining, Family::Dual).build();
    let node_end = last_interface(&net.add_result(&lan.node1, pod.as_ref().unwrap()));
    let at = Attachment::new(pod.as_ref().unwrap());
    match case {
        Degraded::Repeated => {}
        Degraded::NamespaceGone => drop(pod.take()),
        Degraded::RecordRemoved => {
            fs::remove_file(net.record_path(pod.as_ref().unwrap())).expect("remove the record")
        }
        Degraded::NodeEndRemoved => {
            lan.node1.ip(["link", "del", &node_end]);
        }
    }

    net.del(&lan.node1, &at);
    if let Degraded::Repeated = case {
        net.del(&lan.node1, &at);
        net.del_ours_only(&lan.node1, &at);
    }
    assert_no_host_side(&lan.node1);
    assert_eq!(net.state_files("attachments"), Vec::<String>::new());
    assert_eq!(host_local_allocations(&net.data_dir), Vec::<String>::new());
    assert_eq!(net.state_files("owners"), Vec::<String>::new());
    if let Some(pod) = &pod {
        assert!(!pod.has_link("eth0"), "the pod's macvlan removed");
        assert!(!pod.has_link("host-eth0"), "the pod's veth end removed");
    }
}

#[test]
fn chained_del_repeated() {
    del_leaves_nothing(Chaining::Chained, Degraded::Repeated);
}

#[test]
fn chained_del_with_the_namespace_gone() {
    del_leaves_nothing(Chaining::Chained, Degraded::NamespaceGone);
}

#[test]
fn chained_del_with_the_record_removed() {
    del_leaves_nothing(Chaining::Chained, Degraded::RecordRemoved);
}

#[test]
fn chained_del_with_the_node_end_removed() {
    del_leaves_nothing(Chaining::Chained, Degraded::NodeEndRemoved);
}

#[test]
fn interface_del_repeated() {
    del_leaves_nothing(Chaining::Interface, Degraded::Repeated);
}

#[test]
fn interface_del_with_the_namespace_gone() {
    del_leaves_nothing(Chaining::Interface, Degraded::NamespaceGone);
}

#[test]
fn interface_del_with_the_record_removed() {
    del_leaves_nothing(Chaining::Interface, Degraded::RecordRemoved);
}

#[test]
fn interface_del_with_the_node_end_removed() {
    del_leaves_nothing(Chaining::Interface, Degraded::NodeEndRemoved);
}

// ---------------------------------------------------------------------------------------------
// CHECK
// ---------------------------------------------------------------------------------------------

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

/// CHECK passes on the healthy attachment, then fails after `broken`, naming the piece.
fn check_names_what_is_missing(broken: Broken) {
    let lan = Lan::new();
    let pod = lan.pod("c");
    let mut net = Spec::new(Chaining::Chained, Family::Dual).build();
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

#[test]
fn check_fails_without_the_node_end() {
    check_names_what_is_missing(Broken::NodeEnd);
}

#[test]
fn check_fails_without_the_node_route() {
    check_names_what_is_missing(Broken::NodeRoute4);
}

#[test]
fn check_fails_without_the_node_neighbour_entry() {
    check_names_what_is_missing(Broken::NodeNeighbour6);
}

#[test]
fn check_fails_without_the_pod_end() {
    check_names_what_is_missing(Broken::PodEnd);
}

#[test]
fn check_fails_with_the_pod_end_down() {
    check_names_what_is_missing(Broken::PodEndDown);
}

#[test]
fn check_fails_without_the_pod_neighbour_entry() {
    check_names_what_is_missing(Broken::PodNeighbour4);
}

// ---------------------------------------------------------------------------------------------
// GC
// ---------------------------------------------------------------------------------------------

#[test]
fn gc_removes_exactly_the_unlisted_pairs() {
    let lan = Lan::new();
    let pods: Vec<Pod> = ["a", "b", "c"].iter().map(|n| lan.pod(n)).collect();
    let mut net = Spec::new(Chaining::Interface, Family::V4).build();
    let results: Vec<Value> = pods.iter().map(|p| net.add_result(&lan.node1, p)).collect();
    let ends: Vec<String> = results.iter().map(last_interface).collect();

    let mut conf = net.ours.clone();
    conf["cni.dev/valid-attachments"] =
        json!([{ "containerID": pods[0].name(), "ifname": "eth0" }]);
    net.plugin
        .run(&lan.node1, "GC", &Attachment::none(), &conf)
        .expect_ok();

    assert_eq!(
        mvh_links(&lan.node1),
        vec![ends[0].clone()],
        "only a's pair kept"
    );
    let routed: Vec<Value> = host_routes(&lan.node1);
    assert_eq!(routed.len(), 1, "{routed:?}");
    assert_eq!(routed[0]["dst"], json!(pod_ips(&results[0])[0]));
    let kept = net.record_path(&pods[0]);
    let kept = kept.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(net.state_files("attachments"), vec![kept]);
    net.check(&lan.node1, &pods[0]).expect_ok();
    let node_ips = Family::V4.ips_of(&lan.node1);
    let a_ips = pod_ips(&results[0]);
    assert_both_ways(
        ("NODE1", &lan.node1, &node_ips),
        ("pod a", &pods[0], &a_ips),
    );

    // The runtime's DELs of the collected attachments still succeed.
    for pod in &pods {
        net.del(&lan.node1, &Attachment::new(pod));
    }
    net.assert_nothing_left(&lan.node1);
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

#[test]
fn thirty_two_pods_added_then_deleted_concurrently() {
    let lan = Lan::new();
    let pods: Vec<Pod> = (0..32).map(|i| lan.pod(&format!("p{i}"))).collect();
    let net = Spec::new(Chaining::Interface, Family::Dual).build();
    let node1: &Netns = &lan.node1;
    let plugin = &net.plugin;
    let ats: Vec<Attachment> = pods.iter().map(Attachment::new).collect();

    let results: Vec<Value> = thread::scope(|s| {
        let adds: Vec<_> = ats
            .iter()
            .map(|at| s.spawn(|| plugin.add(node1, at, &net.ours)))
            .collect();
        adds.into_iter()
            .map(|h| h.join().unwrap().expect_ok().clone())
            .collect()
    });
    let mut ends: Vec<String> = results.iter().map(last_interface).collect();
    ends.sort();
    ends.dedup();
    assert_eq!(ends.len(), 32, "one node end per pod");
    assert_eq!(mvh_links(node1).len(), 32);
    let node_ips = Family::Dual.ips_of(&lan.node1);
    for (pod, result) in pods.iter().zip(&results) {
        for ip in pod_ips(result) {
            assert!(node1.ping(&ip), "NODE1 -> {} {ip}", pod.name());
        }
        for ip in &node_ips {
            assert!(pod.ping(ip), "{} -> NODE1 {ip}", pod.name());
        }
    }

    thread::scope(|s| {
        let dels: Vec<_> = ats
            .iter()
            .zip(&results)
            .map(|(at, result)| {
                let mut conf = net.ours.clone();
                conf["prevResult"] = result.clone();
                s.spawn(move || plugin.del(node1, at, &conf))
            })
            .collect();
        for h in dels {
            h.join().unwrap().expect_ok();
        }
    });
    net.assert_nothing_left(node1);
    assert!(pods.iter().all(|p| !p.has_link("eth0")));
}

// ---------------------------------------------------------------------------------------------
// Both datapaths on one master
// ---------------------------------------------------------------------------------------------

#[test]
fn shim_and_veth_pods_share_a_master() {
    let lan = Lan::new();
    let (shim_pod, veth_pod) = (lan.pod("shim"), lan.pod("veth"));
    let mut shim_net = Spec::new(Chaining::Chained, Family::V4)
        .name("shimnet")
        .set("hostAccess", json!("shim"))
        .build();
    // A private-mode pod, which only the veth reaches; same stateDir (one node lock).
    let mut veth_net = Spec::new(Chaining::Chained, Family::V4)
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
