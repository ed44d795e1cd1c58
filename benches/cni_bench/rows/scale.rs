//! Row 3: ADD + DEL, CHECK and the floor with many pods already on the node. The background
//! pods are set up once and serve every part of the row.

use crate::common::*;
use crate::configs::*;
use crate::rows::*;
use crate::runner::*;
use crate::statistics::*;
use serde_json::Value;
use std::time::Instant;

/// Pods already on each node at each level.
const LEVELS: [usize; 3] = [1, 250, 1000];

/// The timed variants of each level, in this order.
const VARIANTS: [&str; 9] = [
    "macvlan-host shim (default master)",
    "macvlan-host shim (master: eth0)",
    "macvlan-host veth (default master)",
    "reference macvlan + host-local (control)",
    "host-local alone (floor part)",
    "bare kernel operations (floor part)",
    "CHECK macvlan-host shim",
    "CHECK macvlan-host veth",
    "CHECK host-local alone",
];
const V: usize = VARIANTS.len();
const IPAM: usize = 4;
const KERNEL: usize = 5;
const CHECK_SHIM: usize = 6;
const CHECK_VETH: usize = 7;
const CHECK_IPAM: usize = 8;

/// One level's test bed: a LAN whose node1 carries shim pods and node2 veth pods.
struct Level {
    lan: Lan,
    shim_dirs: NodeDirs,
    veth_dirs: NodeDirs,
    _background: Vec<Pod>,
    /// A pod on each node that CHECK looks at, with its ADD result.
    checked: [(Pod, Value); 2],
}

impl Bench {
    /// Row 3: everything that could grow with the number of pods on the node.
    pub(crate) fn scale(&mut self) {
        self.report.heading(
            "3. Scale: ADD + DEL and CHECK with 1, 250 and 1,000 pods already on the node",
        );
        let started = Instant::now();
        let levels: Vec<Level> = LEVELS.iter().map(|&n| self.level(n)).collect();
        let setup = started.elapsed();

        let probes: Vec<Pod> = levels
            .iter()
            .flat_map(|l| (0..KERNEL + 1).map(|v| l.lan.pod(&format!("probe-{v}"))))
            .collect();
        let r = &self.runner;
        let mut variants: Vec<Box<dyn FnMut() -> Cycle + '_>> = Vec::new();
        for (k, level) in levels.iter().enumerate() {
            let (state, data) = (level.shim_dirs.state.str(), level.shim_dirs.data.str());
            let shim = ours_interface("shim", None, state, data);
            let shim_master = ours_interface("shim", Some("eth0"), state, data);
            let veth_conf = |access| {
                ours_interface(
                    access,
                    None,
                    level.veth_dirs.state.str(),
                    level.veth_dirs.data.str(),
                )
            };
            let veth = veth_conf("veth");
            // The controls run on the shim node with its dataDir: what the kernel (N macvlans
            // on the master) and host-local (N allocations) add as pods grow, without us.
            let reference = reference_macvlan(data);
            let ipam = host_local_alone(data);
            let floor = kernel_floor();
            let pods = &probes[k * (KERNEL + 1)..(k + 1) * (KERNEL + 1)];
            let (n1, n2) = (&level.lan.node1.ns, &level.lan.node2.ns);
            variants.push(Box::new(move || single_cycle(r, n1, &pods[0], &shim)));
            variants.push(Box::new(move || {
                single_cycle(r, n1, &pods[1], &shim_master)
            }));
            variants.push(Box::new(move || single_cycle(r, n2, &pods[2], &veth)));
            variants.push(Box::new(move || single_cycle(r, n1, &pods[3], &reference)));
            variants.push(Box::new(move || single_cycle(r, n1, &pods[4], &ipam)));
            variants.push(Box::new(move || single_cycle(r, n1, &pods[5], &floor)));
            // CHECK of a resident pod, with its ADD result, as CRI-O calls it after ADD.
            let [(shim_pod, shim_result), (veth_pod, veth_result)] = &level.checked;
            let (shim_at, veth_at) = (Attachment::new(shim_pod), Attachment::new(veth_pod));
            let check_shim = with(
                ours_interface("shim", None, state, data),
                "prevResult",
                shim_result.clone(),
            );
            let check_veth = with(veth_conf("veth"), "prevResult", veth_result.clone());
            let check_ipam = with(host_local_alone(data), "prevResult", shim_result.clone());
            let ipam_at = shim_at.clone();
            variants.push(Box::new(move || check_call(r, n1, &shim_at, &check_shim)));
            variants.push(Box::new(move || check_call(r, n2, &veth_at, &check_veth)));
            variants.push(Box::new(move || check_call(r, n1, &ipam_at, &check_ipam)));
        }
        let mut refs: Vec<&mut dyn FnMut() -> Cycle> = variants
            .iter_mut()
            .map(|v| v.as_mut() as &mut dyn FnMut() -> Cycle)
            .collect();
        let samples = interleave(self.rounds, 2, &mut refs);
        drop(refs);
        drop(variants);

        self.cycle_rows(&samples, setup.as_secs_f64());
        self.check_rows(&samples);
        drop(probes);
        drop(levels);
    }

    /// Builds one level: `count` background pods on each node, plus the pods CHECK looks at.
    fn level(&mut self, count: usize) -> Level {
        let lan = Lan::new();
        let shim_dirs = NodeDirs::new(&format!("scale{count}-shim"));
        let veth_dirs = NodeDirs::new(&format!("scale{count}-veth"));
        let shim = ours_interface("shim", None, shim_dirs.state.str(), shim_dirs.data.str());
        let veth = ours_interface("veth", None, veth_dirs.state.str(), veth_dirs.data.str());
        let mut background = Vec::new();
        for (node, conf, tag) in [(&lan.node1, &shim, "s"), (&lan.node2, &veth, "v")] {
            let pods: Vec<Pod> = (0..count).map(|i| lan.pod(&format!("{tag}{i}"))).collect();
            // Eight at a time: setting up 2,500 pods one by one would dominate the run.
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
            background.extend(pods);
        }
        let checked = [
            (&lan.node1, &shim, "check-s"),
            (&lan.node2, &veth, "check-v"),
        ]
        .map(|(node, conf, name)| {
            let pod = lan.pod(name);
            let result = self
                .runner
                .call(node, OUR_TYPE, "ADD", &Attachment::new(&pod), conf)
                .expect_ok("attaching the pod CHECK looks at")
                .stdout;
            (pod, result)
        });
        Level {
            lan,
            shim_dirs,
            veth_dirs,
            _background: background,
            checked,
        }
    }

    /// ADD + DEL at every level, against 1 pod and against the floor of the same level.
    fn cycle_rows(&mut self, samples: &[Samples], setup: f64) {
        let at = |v: usize, k: usize| median(&samples[k * V + v].total);
        let floor_at = |k: usize| at(IPAM, k) + at(KERNEL, k);
        self.report.line("| variant | pods on node | ADD+DEL median | ADD+DEL p95 | ADD median | DEL median | CPU median | vs 1 pod | vs floor |");
        self.report.line("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        for (v, name) in VARIANTS.iter().enumerate().take(KERNEL + 1) {
            for (k, level) in LEVELS.iter().enumerate() {
                let s = &samples[k * V + v];
                self.report.line(&format!(
                    "| {name} | {level} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x |",
                    median(&s.total),
                    percentile(&s.total, 95.0),
                    median(&s.add),
                    median(&s.del),
                    median(&s.cpu),
                    at(v, k) / at(v, 0),
                    at(v, k) / floor_at(k),
                ));
            }
        }
        self.report.line("");
        self.report.line(&format!(
            "{} interleaved rounds across all levels and variants (CHECK below included); setting up the {} background pods took {setup:.1} s. \
             Interface mode, cniVersion 1.0.0; one LAN per level, shim pods on node1, veth pods on node2; \
             each node has its own host-local dataDir and stateDir. The floor is host-local alone plus the bare kernel operations, at the same level.",
            self.rounds,
            2 * LEVELS.iter().sum::<usize>() + 2 * LEVELS.len(),
        ));
        self.report.line("");
        // host-local's own growth (its store is a directory it scans) is not ours: the ratio
        // without it takes host-local's growth out of the 1,000-pod time.
        let last = LEVELS.len() - 1;
        let ipam_growth = at(IPAM, last) - at(IPAM, 0);
        for (v, name) in VARIANTS.iter().enumerate().take(IPAM) {
            self.report.line(&format!(
                "- {name}: 1,000 pods / 1 pod = {:.2}x; without host-local's growth ({ipam_growth:.2} ms) {:.2}x",
                at(v, last) / at(v, 0),
                (at(v, last) - ipam_growth) / at(v, 0)
            ));
        }
        self.report.line(&format!(
            "- the kernel alone (bare operations): 1,000 pods / 1 pod = {:.2}x ({:.2} -> {:.2} ms)",
            at(KERNEL, last) / at(KERNEL, 0),
            at(KERNEL, 0),
            at(KERNEL, last)
        ));
        self.report.line("");
        for (v, what) in [(0, "shim"), (1, "shim with master set"), (2, "veth")] {
            self.target(
                &format!("scale, {what}: 1,000 pods / 1 pod without host-local's growth"),
                (at(v, last) - ipam_growth) / at(v, 0),
                1.25,
                "x",
            );
        }
    }

    /// CHECK at every level: ours with host-local's CHECK inside, host-local's CHECK alone,
    /// and the difference, which is CHECK's own work (process start included).
    fn check_rows(&mut self, samples: &[Samples]) {
        self.report.line("");
        self.report.line("**CHECK** of a pod already attached (interface mode, default master, host-local's CHECK delegated), as CRI-O calls it after every ADD:");
        self.report.line("");
        self.report.line("| pods on node | CHECK shim median | p95 | CHECK veth median | p95 | host-local CHECK alone | own work, shim | own work, veth |");
        self.report.line("|--:|--:|--:|--:|--:|--:|--:|--:|");
        let check = |v: usize, k: usize| &samples[k * V + v].add;
        let own = |v: usize, k: usize| median(check(v, k)) - median(check(CHECK_IPAM, k));
        for (k, level) in LEVELS.iter().enumerate() {
            self.report.line(&format!(
                "| {level} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                median(check(CHECK_SHIM, k)),
                percentile(check(CHECK_SHIM, k), 95.0),
                median(check(CHECK_VETH, k)),
                percentile(check(CHECK_VETH, k), 95.0),
                median(check(CHECK_IPAM, k)),
                own(CHECK_SHIM, k),
                own(CHECK_VETH, k),
            ));
        }
        self.report.line("");
        self.report.line("Times in ms. Own work = CHECK median - host-local CHECK median (our process start included).");
        self.report.line("");
        let last = LEVELS.len() - 1;
        for (v, what) in [(CHECK_SHIM, "shim"), (CHECK_VETH, "veth")] {
            let worst = (0..LEVELS.len())
                .map(|k| own(v, k))
                .fold(f64::MIN, f64::max);
            self.target(
                &format!("CHECK {what}: own work, largest of the levels"),
                worst,
                2.0,
                " ms",
            );
            self.target(
                &format!("CHECK {what}: own work at 1,000 pods / 1 pod"),
                own(v, last) / own(v, 0),
                1.2,
                "x",
            );
        }
    }
}
