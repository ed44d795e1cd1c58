//! The markdown report: tables, targets, the machine it ran on, and the file it updates.

use crate::statistics::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// What no plugin can avoid, measured in the same run: the IPAM plugin alone and the bare
/// kernel operations. A plugin may overlap the two, so it can come in under their sum.
pub(crate) struct Floor<'a> {
    pub(crate) ipam: &'a Samples,
    pub(crate) kernel: &'a Samples,
}

impl Floor<'_> {
    pub(crate) fn add(&self) -> f64 {
        median(&self.ipam.add) + median(&self.kernel.add)
    }

    pub(crate) fn del(&self) -> f64 {
        median(&self.ipam.del) + median(&self.kernel.del)
    }
}

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) markdown: String,
}

impl Report {
    pub(crate) fn line(&mut self, text: &str) {
        println!("{text}");
        self.markdown.push_str(text);
        self.markdown.push('\n');
    }

    pub(crate) fn heading(&mut self, text: &str) {
        self.line("");
        self.line(&format!("### {text}"));
        self.line("");
    }

    /// A table of variants: medians and p95 of ADD, DEL, ADD+DEL, CPU, and the ratio of the
    /// ADD+DEL median to the baseline's (`baseline` indexes `rows`).
    pub(crate) fn cycle_table(&mut self, rows: &[(&str, &Samples)], baseline: usize) {
        self.line("| variant | ADD median | ADD p95 | DEL median | DEL p95 | ADD+DEL median | ADD+DEL p95 | CPU median | ratio |");
        self.line("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        let base = median(&rows[baseline].1.total);
        for (name, s) in rows {
            let ratio = median(&s.total) / base;
            self.line(&format!(
                "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {ratio:.2}x |",
                median(&s.add),
                percentile(&s.add, 95.0),
                median(&s.del),
                percentile(&s.del, 95.0),
                median(&s.total),
                percentile(&s.total, 95.0),
                median(&s.cpu),
            ));
        }
        self.line("");
        self.line(&format!(
            "{} interleaved rounds; times in ms; CPU = user+sys of the plugin and its IPAM child.",
            rows[0].1.total.len()
        ));
    }

    /// Each variant's ADD and DEL against the floor measured in the same run: the IPAM
    /// plugin alone plus the bare kernel operations (benches/kernel_floor.rs), medians added.
    pub(crate) fn floor_table(&mut self, rows: &[(&str, &Samples)], floor: &Floor) {
        self.line("| variant | ADD median | ADD / floor | DEL median | DEL / floor | ADD+DEL median | ADD+DEL / floor |");
        self.line("|---|--:|--:|--:|--:|--:|--:|");
        let (add, del) = (floor.add(), floor.del());
        self.line(&format!(
            "| floor: host-local alone + bare kernel operations | {add:.2} | 1.00x | {del:.2} | 1.00x | {:.2} | 1.00x |",
            add + del
        ));
        for (name, s) in rows {
            let (a, d) = (median(&s.add), median(&s.del));
            self.line(&format!(
                "| {name} | {a:.2} | {:.2}x | {d:.2} | {:.2}x | {:.2} | {:.2}x |",
                a / add,
                d / del,
                median(&s.total),
                median(&s.total) / (add + del)
            ));
        }
        self.line("");
        self.line(&format!(
            "Floor parts (medians, ms): host-local ADD {:.2}, DEL {:.2}; bare kernel operations (a process that creates a macvlan inside the pod's namespace, adds one address and brings it up; deletes it) ADD {:.2}, DEL {:.2}.",
            median(&floor.ipam.add),
            median(&floor.ipam.del),
            median(&floor.kernel.add),
            median(&floor.kernel.del)
        ));
    }

    pub(crate) fn target(&mut self, what: &str, value: f64, limit: f64, unit: &str) -> bool {
        let met = value <= limit;
        let verdict = if met { "met" } else { "**MISSED**" };
        self.line(&format!(
            "- Target {what}: {value:.2}{unit} (limit {limit}{unit}): {verdict}"
        ));
        met
    }
}

pub(crate) fn machine_description() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    format!(
        "nproc {nproc}, kernel {kernel}, CPU {cpu}, {:.1} GiB RAM",
        memory as f64 / 1024.0 / 1024.0
    )
}

pub(crate) fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub(crate) fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces the part of `path` between the markers with `body` (or writes a new file).
pub(crate) fn write_markdown(path: &Path, body: &str) {
    const BEGIN: &str =
        "<!-- bench:begin (written by `make bench`; edits here are overwritten) -->";
    const END: &str = "<!-- bench:end -->";
    let old = fs::read_to_string(path).unwrap_or_default();
    let section = format!("{BEGIN}\n{body}\n{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{section}{}", &old[..b], &old[e + END.len()..]),
        _ if old.is_empty() => format!("# Benchmarks\n\n{section}\n"),
        _ => format!("{}\n{section}\n", old.trim_end()),
    };
    fs::write(path, new).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
}
