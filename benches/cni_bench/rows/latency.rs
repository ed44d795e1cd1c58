//! Rows 1, 1b and 2: ADD + DEL latency in interface mode, dual stack, and chained mode.

use crate::common::*;
use crate::configs::*;
use crate::report::*;
use crate::rows::*;
use crate::runner::*;
use crate::statistics::*;
use serde_json::{json, Value};

impl Bench {
    pub(crate) fn interface_mode(&mut self, lan: &Lan, lan_b: &Lan, main: &NodeDirs) {
        self.report
            .heading("1. Interface mode: ADD + DEL, macvlan-host vs reference macvlan");
        let cold = NodeDirs::new("cold");
        let disk_state = TempDir::new("disk-state");
        let disk_resident = lan_b.pod("disk-resident");
        let disk_conf = ours_interface("shim", Some("eth0"), disk_state.str(), main.data.str());
        self.attach(&lan_b.node2, &disk_resident, &disk_conf);

        let reference = reference_macvlan(main.data.str());
        let shim = ours_interface("shim", Some("eth0"), main.state.str(), main.data.str());
        let veth = ours_interface("veth", Some("eth0"), main.state.str(), main.data.str());
        let v110 = with(shim.clone(), "cniVersion", json!("1.1.0"));
        let cold_conf = ours_interface("shim", Some("eth0"), cold.state.str(), cold.data.str());
        let fake = with(shim.clone(), "ipam", json!({"type": FAKE_IPAM}));
        let ipam = host_local_alone(main.data.str());
        let floor = kernel_floor();

        let pods: Vec<Pod> = [
            "ref", "shim", "veth", "v110", "cold", "disk", "fake", "ipam", "floor",
        ]
        .iter()
        .map(|n| lan.pod(&format!("r1-{n}")))
        .collect();
        let r = &self.runner;
        let (n1, b1, b2) = (&lan.node1.ns, &lan_b.node1.ns, &lan_b.node2.ns);
        let samples = interleave(
            self.rounds,
            3,
            &mut [
                &mut || single_cycle(r, n1, &pods[0], &reference),
                &mut || single_cycle(r, n1, &pods[1], &shim),
                &mut || single_cycle(r, n1, &pods[2], &veth),
                &mut || single_cycle(r, n1, &pods[3], &v110),
                &mut || single_cycle(r, b1, &pods[4], &cold_conf),
                &mut || single_cycle(r, b2, &pods[5], &disk_conf),
                &mut || single_cycle(r, n1, &pods[6], &fake),
                &mut || single_cycle(r, n1, &pods[7], &ipam),
                &mut || single_cycle(r, n1, &pods[8], &floor),
            ],
        );
        self.report.cycle_table(
            &[
                ("reference macvlan + host-local (baseline)", &samples[0]),
                ("macvlan-host, shim", &samples[1]),
                ("macvlan-host, veth", &samples[2]),
                (
                    "macvlan-host, shim, cniVersion 1.1.0 (IPAM version fallback)",
                    &samples[3],
                ),
                (
                    "macvlan-host, shim, first pod of the node (shim created and removed)",
                    &samples[4],
                ),
                (
                    "macvlan-host, shim, stateDir on disk (ext4, fsync)",
                    &samples[5],
                ),
                (
                    "macvlan-host, shim, IPAM = static busybox script (no Go IPAM)",
                    &samples[6],
                ),
                ("host-local alone (floor part)", &samples[7]),
                (
                    "bare kernel operations: macvlan + address + up; delete (floor part)",
                    &samples[8],
                ),
            ],
            0,
        );
        self.report.line("");
        self.report.line("All variants use cniVersion 1.0.0 and `master: eth0` unless stated; one resident pod keeps the shim (steady state); stateDir on tmpfs (/dev/shm, like /run) unless stated.");
        self.report.line("");
        self.report
            .line("**Against the floor** (same run, same rounds):");
        self.report.line("");
        let floor = Floor {
            ipam: &samples[7],
            kernel: &samples[8],
        };
        self.report.floor_table(
            &[
                ("reference macvlan + host-local", &samples[0]),
                ("macvlan-host, shim", &samples[1]),
                ("macvlan-host, veth", &samples[2]),
            ],
            &floor,
        );
        self.report.line("");
        for (v, what) in [(1, "shim"), (2, "veth")] {
            self.target(
                &format!("interface mode, {what}: ADD / floor ADD"),
                median(&samples[v].add) / floor.add(),
                1.10,
                "x",
            );
            self.target(
                &format!("interface mode, {what}: DEL / floor DEL"),
                median(&samples[v].del) / floor.del(),
                1.10,
                "x",
            );
        }
        let base = median(&samples[0].total);
        self.target(
            "interface mode, shim: ours / reference",
            median(&samples[1].total) / base,
            0.6,
            "x",
        );
        self.target(
            "interface mode, veth: ours / reference",
            median(&samples[2].total) / base,
            0.6,
            "x",
        );
    }

    /// Row 1b: dual-stack interface mode, where ADD waits for IPv6 duplicate address
    /// detection (both plugins do). Few rounds: each ADD takes seconds.
    pub(crate) fn dual_stack(&mut self, lan: &Lan, main: &NodeDirs) {
        let rounds = std::env::var("BENCH_DAD_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        self.report
            .heading("1b. Interface mode, dual-stack (IPv4 + IPv6): ADD waits for IPv6 DAD");
        let floor_dual = with(kernel_floor(), "address", json!("fd99::fe:1/64"));
        let dual = |conf: Value| with(conf, "ipam", host_local_dual_stack(main.data.str()));
        let reference = dual(reference_macvlan(main.data.str()));
        let shim = dual(ours_interface(
            "shim",
            Some("eth0"),
            main.state.str(),
            main.data.str(),
        ));
        let pods: Vec<Pod> = ["ref", "shim", "floor"]
            .iter()
            .map(|n| lan.pod(&format!("r1b-{n}")))
            .collect();
        let r = &self.runner;
        let n1 = &lan.node1.ns;
        let samples = interleave(
            rounds,
            0,
            &mut [
                &mut || single_cycle(r, n1, &pods[0], &reference),
                &mut || single_cycle(r, n1, &pods[1], &shim),
                &mut || single_cycle(r, n1, &pods[2], &floor_dual),
            ],
        );
        self.report.cycle_table(
            &[
                ("reference macvlan + host-local (baseline)", &samples[0]),
                ("macvlan-host, shim", &samples[1]),
                (
                    "bare kernel operations, IPv6 address, no wait for DAD (informational)",
                    &samples[2],
                ),
            ],
            0,
        );
        self.report.line("");
        self.report.line("The reference waits for the kernel's default DAD: a random delay of up to `router_solicitation_delay` (1 s), then `retrans_time_ms` (1 s) for an answer. macvlan-host sets `router_solicitation_delay=0` and `retrans_time_ms=100` on the pod's interface before it comes up, waits until no address is tentative (a duplicate fails ADD), then puts both back.");
        self.report.line("");
        let add = median(&samples[1].add);
        self.target("dual-stack ADD median (ours)", add, 150.0, " ms");
    }

    /// Row 2: chained after the reference macvlan, against the reference macvlan alone.
    pub(crate) fn chained(&mut self, lan: &Lan, main: &NodeDirs) {
        self.report
            .heading("2. Chained mode: conflist [macvlan, macvlan-host] vs [macvlan]");
        let macvlan = json!({"type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": host_local(main.data.str())});
        let alone = vec![macvlan.clone()];
        let shim = vec![macvlan.clone(), ours_chained("shim", main.state.str())];
        let veth = vec![macvlan, ours_chained("veth", main.state.str())];
        let pods: Vec<Pod> = ["alone", "shim", "veth"]
            .iter()
            .map(|n| lan.pod(&format!("r2-{n}")))
            .collect();
        let r = &self.runner;
        let n1 = &lan.node1.ns;
        let samples = interleave(
            self.rounds,
            3,
            &mut [
                &mut || conflist_cycle(r, n1, &pods[0], &alone),
                &mut || conflist_cycle(r, n1, &pods[1], &shim),
                &mut || conflist_cycle(r, n1, &pods[2], &veth),
            ],
        );
        self.report.cycle_table(
            &[
                ("[macvlan] (baseline)", &samples[0]),
                ("[macvlan, macvlan-host shim]", &samples[1]),
                ("[macvlan, macvlan-host veth]", &samples[2]),
            ],
            0,
        );
        self.report.line("");
        self.report.line("Run the way libcni runs a conflist: ADD in order with prevResult, DEL in reverse order with the cached result.");
        self.report.line("");
        let base = median(&samples[0].total);
        self.target(
            "chained, shim: conflist / macvlan alone",
            median(&samples[1].total) / base,
            1.15,
            "x",
        );
        self.target(
            "chained, veth: conflist / macvlan alone",
            median(&samples[2].total) / base,
            1.15,
            "x",
        );
    }
}
