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

/// Networks A and B on NODE1's eth0, each with its own stateDir and one pod, both reachable.
struct TwoNetworks {
    plugin: Plugin,
    nets: [Value; 2],
    attachments: [Attachment; 2],
    ips: [String; 2],
    _pods: [Pod; 2],
    _dirs: Vec<TempDir>,
    lan: Lan,
}

impl TwoNetworks {
    fn up() -> TwoNetworks {
        let lan = Lan::new();
        let plugin = Plugin::ours();
        let dirs: Vec<TempDir> = ["data-a", "state-a", "data-b", "state-b"]
            .into_iter()
            .map(TempDir::new)
            .collect();
        let nets = [
            network("net-a", ("10.99.0.100", "10.99.0.109"), &dirs[0], &dirs[1]),
            network("net-b", ("10.99.0.110", "10.99.0.119"), &dirs[2], &dirs[3]),
        ];
        let pods = [lan.pod("a"), lan.pod("b")];
        let attachments = [Attachment::new(&pods[0]), Attachment::new(&pods[1])];
        let ips = [0, 1].map(|i| {
            pod_ip(
                plugin
                    .add(&lan.node1, &attachments[i], &nets[i])
                    .expect_ok(),
            )
        });
        assert!(lan.node1.ping(&ips[0]) && lan.node1.ping(&ips[1]));
        TwoNetworks {
            plugin,
            nets,
            attachments,
            ips,
            _pods: pods,
            _dirs: dirs,
            lan,
        }
    }

    fn del(&self, i: usize) {
        let node = &self.lan.node1;
        self.plugin
            .del(node, &self.attachments[i], &self.nets[i])
            .expect_ok();
    }

    /// Network A is gone; B's pod must still be reached through the shim.
    fn assert_b_keeps_the_shim(&self) {
        assert!(
            self.lan.node1.has_link("mvh-eth0"),
            "the shim must stay for network B"
        );
        assert!(
            self.lan.node1.ping(&self.ips[1]),
            "network B's pod must stay reachable"
        );
    }
}

#[test]
fn a_shim_shared_across_state_dirs_stays_while_any_network_routes_through_it() {
    let two = TwoNetworks::up();
    // Network A's last pod leaves: its records say the shim is unused, the routing table says
    // otherwise.
    two.del(0);
    two.assert_b_keeps_the_shim();
    two.del(1);
    assert!(
        !two.lan.node1.has_link("mvh-eth0"),
        "the shim goes with the last pod"
    );
}

#[test]
fn gc_of_one_network_keeps_a_shim_another_state_dir_still_uses() {
    let two = TwoNetworks::up();
    // The runtime no longer knows pod a: GC of network A removes its host access.
    let mut gc = two.nets[0].clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    two.plugin
        .run(&two.lan.node1, "GC", &Attachment::none(), &gc)
        .expect_ok();
    assert!(
        !two.lan.node1.ping(&two.ips[0]),
        "pod a's host access is gone"
    );
    two.assert_b_keeps_the_shim();
    two.del(1);
    two.del(0);
    assert!(!two.lan.node1.has_link("mvh-eth0"));
}
