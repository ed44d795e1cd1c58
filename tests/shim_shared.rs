//! One shim, two networks that keep their records in different `stateDir`s: neither may remove
//! the shim while the other still routes pods through it.

mod common;

use common::*;
use serde_json::{json, Value};

fn network(name: &str, range: (&str, &str), data_dir: &TempDir, state_dir: &TempDir) -> Value {
    json!({
        "cniVersion": "1.1.0",
        "name": name,
        "type": OUR_TYPE,
        "master": "eth0",
        "stateDir": state_dir.str(),
        "ipam": {
            "type": "host-local",
            "dataDir": data_dir.str(),
            "ranges": [[{"subnet": SUBNET4, "rangeStart": range.0, "rangeEnd": range.1}]],
        },
    })
}

fn pod_ip(result: &Value) -> String {
    let cidr = result["ips"][0]["address"].as_str().expect("an address");
    cidr.split('/').next().unwrap().to_owned()
}

#[test]
fn a_shim_shared_across_state_dirs_stays_while_any_network_routes_through_it() {
    let lan = Lan::new();
    let plugin = Plugin::ours();
    let (data_a, state_a) = (TempDir::new("data-a"), TempDir::new("state-a"));
    let (data_b, state_b) = (TempDir::new("data-b"), TempDir::new("state-b"));
    let net_a = network("net-a", ("10.99.0.100", "10.99.0.109"), &data_a, &state_a);
    let net_b = network("net-b", ("10.99.0.110", "10.99.0.119"), &data_b, &state_b);
    let (pod_a, pod_b) = (lan.pod("a"), lan.pod("b"));
    let (at_a, at_b) = (Attachment::new(&pod_a), Attachment::new(&pod_b));

    let ip_a = pod_ip(plugin.add(&lan.node1, &at_a, &net_a).expect_ok());
    let ip_b = pod_ip(plugin.add(&lan.node1, &at_b, &net_b).expect_ok());
    assert!(lan.node1.ping(&ip_a) && lan.node1.ping(&ip_b));

    // Network A's last pod leaves: its records say the shim is unused, the routing table says
    // otherwise.
    plugin.del(&lan.node1, &at_a, &net_a).expect_ok();
    assert!(
        lan.node1.has_link("mvh-eth0"),
        "the shim must stay for network B"
    );
    assert!(lan.node1.ping(&ip_b), "network B's pod must stay reachable");

    plugin.del(&lan.node1, &at_b, &net_b).expect_ok();
    assert!(
        !lan.node1.has_link("mvh-eth0"),
        "the shim goes with the last pod"
    );
}

#[test]
fn gc_of_one_network_keeps_a_shim_another_state_dir_still_uses() {
    let lan = Lan::new();
    let plugin = Plugin::ours();
    let (data_a, state_a) = (TempDir::new("data-a"), TempDir::new("state-a"));
    let (data_b, state_b) = (TempDir::new("data-b"), TempDir::new("state-b"));
    let net_a = network("net-a", ("10.99.0.100", "10.99.0.109"), &data_a, &state_a);
    let net_b = network("net-b", ("10.99.0.110", "10.99.0.119"), &data_b, &state_b);
    let (pod_a, pod_b) = (lan.pod("a"), lan.pod("b"));
    let (at_a, at_b) = (Attachment::new(&pod_a), Attachment::new(&pod_b));
    let ip_a = pod_ip(plugin.add(&lan.node1, &at_a, &net_a).expect_ok());
    let ip_b = pod_ip(plugin.add(&lan.node1, &at_b, &net_b).expect_ok());

    // The runtime no longer knows pod a: GC of network A removes its host access.
    let mut gc = net_a.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    plugin
        .run(&lan.node1, "GC", &Attachment::none(), &gc)
        .expect_ok();
    assert!(!lan.node1.ping(&ip_a), "pod a's host access is gone");
    assert!(
        lan.node1.has_link("mvh-eth0"),
        "the shim must stay for network B"
    );
    assert!(lan.node1.ping(&ip_b), "network B's pod must stay reachable");

    plugin.del(&lan.node1, &at_b, &net_b).expect_ok();
    plugin.del(&lan.node1, &at_a, &net_a).expect_ok();
    assert!(!lan.node1.has_link("mvh-eth0"));
}
