//! 32 veth pods added at once, then deleted at once.

use crate::*;
use serde_json::Value;
use std::thread;

#[test]
fn thirty_two_pods_added_then_deleted_concurrently() {
    let lan = Lan::new();
    let pods: Vec<Pod> = (0..32).map(|i| lan.pod(&format!("p{i}"))).collect();
    let net = Spec::veth(Chaining::Interface, Family::Dual).build();
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
