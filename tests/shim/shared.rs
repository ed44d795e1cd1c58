//! One shim, two networks that keep their records in different `stateDir`s: neither may remove
//! the shim while the other still routes pods through it.

use crate::*;
use serde_json::json;

/// Networks A and B on NODE1's eth0, each with its own stateDir and one pod, both reachable.
struct TwoNetworks {
    nets: [Net; 2],
    attachments: [Attachment; 2],
    ips: [String; 2],
    _pods: [Pod; 2],
    lan: Lan,
}

impl TwoNetworks {
    fn up() -> TwoNetworks {
        let lan = Lan::new();
        // Each network builds its own stateDir and dataDir.
        let network = |name, first| {
            Spec::new(Chaining::Interface, Family::V4)
                .name(name)
                .range(first, first + 9)
                .build()
        };
        let nets = [network("net-a", 100), network("net-b", 110)];
        let pods = [lan.pod("a"), lan.pod("b")];
        let attachments = [Attachment::new(&pods[0]), Attachment::new(&pods[1])];
        let ips = [0, 1].map(|i| {
            let net = &nets[i];
            let result = net.plugin.add(&lan.node1, &attachments[i], &net.our_conf());
            pod_ips(result.expect_ok())[0].clone()
        });
        assert!(lan.node1.ping(&ips[0]) && lan.node1.ping(&ips[1]));
        TwoNetworks {
            nets,
            attachments,
            ips,
            _pods: pods,
            lan,
        }
    }

    fn del(&self, i: usize) {
        let node = &self.lan.node1;
        let net = &self.nets[i];
        net.plugin
            .del(node, &self.attachments[i], &net.our_conf())
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
    let mut gc = two.nets[0].our_conf();
    gc["cni.dev/valid-attachments"] = json!([]);
    two.nets[0]
        .plugin
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
