//! Row 5: memory, CPU and binary size.

use crate::common::*;
use crate::configs::*;
use crate::rows::*;
use crate::runner::*;
use serde_json::{json, Value};
use std::fs;
use std::path::PathBuf;

impl Bench {
    /// Row 5: peak RSS of one ADD and the size of the static binary.
    pub(crate) fn footprint(&mut self, lan: &Lan, main: &NodeDirs) {
        self.report.heading("5. Footprint");
        let pod = lan.pod("footprint");
        let at = Attachment::new(&pod);
        let peak = |conf: &Value| -> u64 {
            let mut most = 0;
            for _ in 0..5 {
                let plugin = type_of(conf);
                let add = self
                    .runner
                    .call(&lan.node1, &plugin, "ADD", &at, conf)
                    .expect_ok("footprint ADD");
                let del_conf = with(conf.clone(), "prevResult", add.stdout.clone());
                self.runner
                    .call(&lan.node1, &plugin, "DEL", &at, &del_conf)
                    .expect_ok("footprint DEL");
                most = most.max(add.max_rss);
            }
            most
        };
        let shim = ours_interface("shim", Some("eth0"), main.state.str(), main.data.str());
        let ours_alone = peak(&with(shim.clone(), "ipam", json!({"type": FAKE_IPAM})));
        let ours_with_host_local = peak(&shim);
        let reference = peak(&reference_macvlan(main.data.str()));
        let ipam_only = host_local_alone(main.data.str());
        let host_local_alone = peak(&ipam_only);

        self.report.line("| measurement | value |");
        self.report.line("|---|--:|");
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        self.report.line(&format!("| peak RSS, macvlan-host ADD (shim, interface mode; IPAM a static busybox script) | {:.2} MiB |", mib(ours_alone)));
        self.report.line(&format!(
            "| peak RSS, macvlan-host ADD with host-local (max of the two processes) | {:.2} MiB |",
            mib(ours_with_host_local)
        ));
        self.report.line(&format!(
            "| peak RSS, host-local ADD alone | {:.2} MiB |",
            mib(host_local_alone)
        ));
        self.report.line(&format!(
            "| peak RSS, reference macvlan ADD with host-local (max of the two) | {:.2} MiB |",
            mib(reference)
        ));
        let dynamic = fs::metadata(OUR_PLUGIN).map(|m| m.len()).unwrap_or(0);
        self.report.line(&format!(
            "| release binary (`cargo build --release`, dynamic glibc) | {:.2} MiB |",
            mib(dynamic)
        ));
        let static_binary = std::env::var_os("BENCH_STATIC_BINARY").map(PathBuf::from);
        let static_size = static_binary
            .as_ref()
            .and_then(|p| fs::metadata(p).ok())
            .map(|m| m.len());
        match static_size {
            Some(size) => self.report.line(&format!("| release binary, static (`-C target-feature=+crt-static`, x86_64-unknown-linux-gnu) | {:.2} MiB |", mib(size))),
            None => self.report.line("| release binary, static | not built (BENCH_STATIC_BINARY unset) |"),
        }
        let reference_size = fs::metadata("/usr/lib/cni/macvlan")
            .map(|m| m.len())
            .unwrap_or(0);
        self.report.line(&format!(
            "| reference macvlan binary (Debian, for comparison) | {:.2} MiB |",
            mib(reference_size)
        ));
        self.report.line("");
        self.report.line("Peak RSS is `ru_maxrss` from `wait4` (the largest of the process and its reaped children), the largest of 5 ADDs.");
        self.report.line("");
        self.target("peak RSS of one ADD (ours)", mib(ours_alone), 8.0, " MiB");
        if let Some(size) = static_size {
            self.target("static release binary size", mib(size), 3.0, " MiB");
        }
    }
}
