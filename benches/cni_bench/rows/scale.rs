//! Row 3: ADD + DEL with many pods already on the node.

use crate::common::*;
use crate::configs::*;
use crate::rows::*;
use crate::runner::*;
use crate::statistics::*;
use std::time::Instant;

impl Bench {
    /// Row 3: ADD + DEL latency with 1, 50 and 250 pods already on the node.
    pub(crate) fn scale(&mut self) {
        const LEVELS: [usize; 3] = [1, 50, 250];
        self.report
            .heading("3. Scale: ADD + DEL with 1, 50, 250 pods already on the node");
        let started = Instant::now();
        // One LAN per level, interleaved measurement across levels: node1 carries shim pods,
        // node2 veth pods. Each node has its own host-local dataDir and stateDir.
        let lans: Vec<Lan> = LEVELS.iter().map(|_| Lan::new()).collect();
        let dirs: Vec<(NodeDirs, NodeDirs)> = LEVELS
            .iter()
            .map(|n| {
                (
                    NodeDirs::new(&format!("scale{n}-shim")),
                    NodeDirs::new(&format!("scale{n}-veth")),
                )
            })
            .collect();
        let mut residents = Vec::new();
        for ((lan, (shim_dirs, veth_dirs)), &count) in lans.iter().zip(&dirs).zip(&LEVELS) {
            let shim = ours_interface("shim", None, shim_dirs.state.str(), shim_dirs.data.str());
            let veth = ours_interface("veth", None, veth_dirs.state.str(), veth_dirs.data.str());
            for (node, conf, tag) in [(&lan.node1, &shim, "s"), (&lan.node2, &veth, "v")] {
                let pods: Vec<Pod> = (0..count).map(|i| lan.pod(&format!("{tag}{i}"))).collect();
                // Eight at a time: setting up 600 pods one by one would dominate the run.
                for batch in pods.chunks(8) {
                    let pending: Vec<Pending> = batch
                        .iter()
                        .map(|pod| {
                            self.runner
                                .spawn(node, OUR_TYPE, "ADD", &Attachment::new(pod), conf)
                        })
                        .collect();
                    for p in pending {
                        self.runner
                            .finish(p)
                            .expect_ok("attaching a background pod");
                    }
                }
                residents.extend(pods);
            }
        }
        let setup = started.elapsed();

        const VARIANTS: [&str; 5] = [
            "macvlan-host shim (default master)",
            "macvlan-host shim (master: eth0)",
            "macvlan-host veth (default master)",
            "reference macvlan + host-local (control)",
            "host-local alone (control)",
        ];
        const V: usize = VARIANTS.len();
        let probes: Vec<Pod> = lans
            .iter()
            .flat_map(|lan| {
                (0..V)
                    .map(|v| lan.pod(&format!("probe-{v}")))
                    .collect::<Vec<_>>()
            })
            .collect();
        let r = &self.runner;
        let mut variants: Vec<Box<dyn FnMut() -> Cycle + '_>> = Vec::new();
        for (k, (lan, (shim_dirs, veth_dirs))) in lans.iter().zip(&dirs).enumerate() {
            let (state, data) = (shim_dirs.state.str(), shim_dirs.data.str());
            let shim = ours_interface("shim", None, state, data);
            let shim_master = ours_interface("shim", Some("eth0"), state, data);
            let veth = ours_interface("veth", None, veth_dirs.state.str(), veth_dirs.data.str());
            // The controls run on the shim node with its dataDir: what the kernel (N macvlans
            // on the master) and host-local (N allocations) add as pods grow, without us.
            let reference = reference_macvlan(data);
            let ipam = host_local_alone(data);
            let pods = &probes[k * V..(k + 1) * V];
            let (n1, n2) = (&lan.node1.ns, &lan.node2.ns);
            variants.push(Box::new(move || single_cycle(r, n1, &pods[0], &shim)));
            variants.push(Box::new(move || {
                single_cycle(r, n1, &pods[1], &shim_master)
            }));
            variants.push(Box::new(move || single_cycle(r, n2, &pods[2], &veth)));
            variants.push(Box::new(move || single_cycle(r, n1, &pods[3], &reference)));
            variants.push(Box::new(move || single_cycle(r, n1, &pods[4], &ipam)));
        }
        let mut refs: Vec<&mut dyn FnMut() -> Cycle> = variants
            .iter_mut()
            .map(|v| v.as_mut() as &mut dyn FnMut() -> Cycle)
            .collect();
        let samples = interleave(self.rounds, 2, &mut refs);
        drop(refs);
        drop(variants);

        self.report.line("| variant | pods on node | ADD+DEL median | ADD+DEL p95 | ADD median | DEL median | CPU median | vs 1 pod |");
        self.report.line("|---|--:|--:|--:|--:|--:|--:|--:|");
        let last = LEVELS.len() - 1;
        let at = |v: usize, k: usize| median(&samples[k * V + v].total);
        for (v, name) in VARIANTS.iter().enumerate() {
            for (k, level) in LEVELS.iter().enumerate() {
                let s = &samples[k * V + v];
                self.report.line(&format!(
                    "| {name} | {level} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x |",
                    median(&s.total),
                    percentile(&s.total, 95.0),
                    median(&s.add),
                    median(&s.del),
                    median(&s.cpu),
                    at(v, k) / at(v, 0)
                ));
            }
        }
        self.report.line("");
        self.report.line(&format!(
            "{} interleaved rounds across all levels; setting up the {} background pods took {:.1} s. \
             Interface mode, cniVersion 1.0.0; one LAN per level, shim pods on node1, veth pods on node2; \
             each node has its own host-local dataDir and stateDir.",
            self.rounds,
            2 * LEVELS.iter().sum::<usize>(),
            setup.as_secs_f64()
        ));
        self.report.line("");
        // host-local's own growth (its store is a directory it scans) is not ours: show the
        // growth of what remains when host-local's time is taken out.
        let ipam = V - 1;
        for (v, name) in VARIANTS.iter().enumerate().take(ipam) {
            let without_ipam = (at(v, last) - at(ipam, last)) / (at(v, 0) - at(ipam, 0));
            self.report.line(&format!(
                "- {name}: 250 pods / 1 pod = {:.2}x; without host-local's share {without_ipam:.2}x",
                at(v, last) / at(v, 0)
            ));
        }
        self.report.line("");
        for (v, what) in [(0, "shim"), (1, "shim with master set"), (2, "veth")] {
            self.target(
                &format!("scale, {what}: 250 pods / 1 pod"),
                at(v, last) / at(v, 0),
                1.25,
                "x",
            );
        }
        drop(residents);
        drop(probes);
        drop(lans);
    }
}
