//! Row 4: many pods at once, and nothing left afterwards.

use crate::common::*;
use crate::configs::*;
use crate::rows::*;
use crate::runner::*;
use crate::statistics::*;
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// State snapshots (row 4: "nothing left")
// ---------------------------------------------------------------------------------------------

/// What a node has that pods could leave behind: links, routes of both families, permanent
/// neighbour entries.
pub(crate) fn node_snapshot(node: &Netns) -> Vec<String> {
    let mut items = Vec::new();
    for link in node
        .ip_json(["link"])
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        items.push(format!("link {}", link["ifname"].as_str().unwrap_or("?")));
    }
    for family in ["-4", "-6"] {
        for route in node.routes(family) {
            items.push(format!("route {} dev {}", route["dst"], route["dev"]));
        }
    }
    for n in node.neigh() {
        let permanent = n["state"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x == "PERMANENT"));
        if permanent {
            items.push(format!("neigh {} dev {}", n["dst"], n["dev"]));
        }
    }
    items.sort();
    items
}

/// Every file under `dir`, relative, sorted (the lock file excluded).
pub(crate) fn files_under(dir: &Path) -> Vec<String> {
    pub(crate) fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(read) = fs::read_dir(dir) else { return };
        for entry in read.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.retain(|f| f != "lock");
    out.sort();
    out
}

pub(crate) fn pod_links(pod: &Pod) -> usize {
    pod.ip_json(["link"]).as_array().map_or(0, Vec::len)
}

impl Bench {
    /// Row 4: 32 pods added at once, then deleted at once.
    pub(crate) fn concurrency(&mut self, lan: &Lan, lan_b: &Lan, main: &NodeDirs) {
        const PODS: usize = 32;
        self.report.heading(&format!(
            "4. Concurrency: {PODS} pods added at once, then deleted at once"
        ));
        let cold = NodeDirs::new("burst-cold");
        let variants: Vec<(&str, &Netns, Value, &Path, Option<&Path>)> = vec![
            (
                "reference macvlan",
                &lan.node1.ns,
                reference_macvlan(main.data.str()),
                main.data.path(),
                None,
            ),
            (
                "macvlan-host shim",
                &lan.node1.ns,
                ours_interface("shim", Some("eth0"), main.state.str(), main.data.str()),
                main.data.path(),
                Some(main.state.path.as_path()),
            ),
            (
                "macvlan-host veth",
                &lan.node1.ns,
                ours_interface("veth", Some("eth0"), main.state.str(), main.data.str()),
                main.data.path(),
                Some(main.state.path.as_path()),
            ),
            (
                "macvlan-host shim, no shim yet (all race to create it)",
                &lan_b.node1.ns,
                ours_interface("shim", Some("eth0"), cold.state.str(), cold.data.str()),
                cold.data.path(),
                Some(cold.state.path.as_path()),
            ),
        ];
        let pods: Vec<Pod> = (0..PODS).map(|i| lan.pod(&format!("burst{i}"))).collect();
        let rounds = (self.rounds / 8).max(3);
        let mut add_walls = vec![Vec::new(); variants.len()];
        let mut del_walls = vec![Vec::new(); variants.len()];
        let mut all_ok = true;
        let mut left_over = Vec::new();
        for round in 0..rounds {
            for k in 0..variants.len() {
                let v = (round + k) % variants.len();
                let (name, node, conf, data_dir, state_dir) = &variants[v];
                let before = (
                    node_snapshot(node),
                    host_local_allocations(data_dir),
                    state_dir.map(files_under),
                );
                let plugin = type_of(conf);
                let started = Instant::now();
                let pending: Vec<Pending> = pods
                    .iter()
                    .map(|p| {
                        self.runner
                            .spawn(node, &plugin, "ADD", &Attachment::new(p), conf)
                    })
                    .collect();
                let adds: Vec<Call> = pending.into_iter().map(|p| self.runner.finish(p)).collect();
                add_walls[v].push(started.elapsed().as_secs_f64() * 1000.0);
                all_ok &= self.report_failures(name, "ADD", &adds);
                let started = Instant::now();
                let pending: Vec<Pending> = pods
                    .iter()
                    .zip(&adds)
                    .map(|(p, add)| {
                        let conf = with(conf.clone(), "prevResult", add.stdout.clone());
                        self.runner
                            .spawn(node, &plugin, "DEL", &Attachment::new(p), &conf)
                    })
                    .collect();
                let dels: Vec<Call> = pending.into_iter().map(|p| self.runner.finish(p)).collect();
                del_walls[v].push(started.elapsed().as_secs_f64() * 1000.0);
                all_ok &= self.report_failures(name, "DEL", &dels);
                let after = (
                    node_snapshot(node),
                    host_local_allocations(data_dir),
                    state_dir.map(files_under),
                );
                let pods_left = pods.iter().filter(|p| pod_links(p) != 1).count();
                if before != after || pods_left > 0 {
                    left_over.push(format!(
                        "{name}: before {before:?} after {after:?}; {pods_left} pods with links"
                    ));
                }
            }
        }
        self.report
            .line("| variant | 32 ADDs wall median | p95 | 32 DELs wall median | p95 |");
        self.report.line("|---|--:|--:|--:|--:|");
        for (v, (name, ..)) in variants.iter().enumerate() {
            self.report.line(&format!(
                "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
                median(&add_walls[v]),
                percentile(&add_walls[v], 95.0),
                median(&del_walls[v]),
                percentile(&del_walls[v], 95.0)
            ));
        }
        self.report.line("");
        self.report.line(&format!(
            "{rounds} interleaved rounds; times in ms from the first spawn to the last exit."
        ));
        self.report.line("");
        let clean = left_over.is_empty();
        for item in &left_over {
            self.report.line(&format!("- left over: {item}"));
        }
        self.report.line(&format!(
            "- Target concurrency: every ADD and DEL succeeded: {}; nothing left (node links, routes, permanent neighbours, host-local allocations, stateDir, pod links): {}",
            if all_ok { "yes" } else { "**NO**" },
            if clean { "yes" } else { "**NO**" }
        ));
        self.targets.push((
            "concurrency: all succeed, nothing left".into(),
            all_ok && clean,
        ));
    }
}
