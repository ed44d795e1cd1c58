//! GC removes exactly the pairs of the attachments not listed.

use crate::*;
use serde_json::{json, Value};

#[test]
fn gc_removes_exactly_the_unlisted_pairs() {
    let lan = Lan::new();
    let pods: Vec<Pod> = ["a", "b", "c"].iter().map(|n| lan.pod(n)).collect();
    let mut net = Spec::veth(Chaining::Interface, Family::V4).build();
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
    let kept = net.record_path(&Attachment::new(&pods[0]));
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
