//! The watcher's metrics: fixed sets of atomic counters, written by the watcher's loop and
//! read by the listener thread when scraped. No lock anywhere: the loop never waits for a
//! scrape, and a scrape sees each value as it is at that moment.
//!
//! Every label set is known in advance (causes, objects, error kinds, event kinds), so the
//! series are fixed and their memory is a few kilobytes whatever the node does.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::object_kind::Object;
use crate::system::netlink_events::Change;

/// Why a pass ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The first full pass, when the watcher starts.
    Startup,
    /// Notifications from the node or a pod.
    Event,
    /// The periodic full pass (`--interval`).
    Periodic,
}

impl Cause {
    const ALL: [Cause; 3] = [Cause::Startup, Cause::Event, Cause::Periodic];

    fn label(self) -> &'static str {
        match self {
            Cause::Startup => "startup",
            Cause::Event => "event",
            Cause::Periodic => "periodic",
        }
    }
}

/// What went wrong, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A pass could not run at all (a state directory could not be read).
    Pass,
    /// An attachment could not be repaired.
    Repair,
    /// Reading notifications failed.
    Events,
    /// An event socket could not be opened in a pod's namespace.
    PodListen,
    /// Releasing the host side of a stale attachment failed.
    Release,
}

impl ErrorKind {
    const ALL: [ErrorKind; 5] = [
        ErrorKind::Pass,
        ErrorKind::Repair,
        ErrorKind::Events,
        ErrorKind::PodListen,
        ErrorKind::Release,
    ];

    fn label(self) -> &'static str {
        match self {
            ErrorKind::Pass => "pass",
            ErrorKind::Repair => "repair",
            ErrorKind::Events => "events",
            ErrorKind::PodListen => "pod_listen",
            ErrorKind::Release => "release",
        }
    }
}

/// Where notifications came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Node,
    Pod,
}

const SOURCES: [(Source, &str); 2] = [(Source::Node, "node"), (Source::Pod, "pod")];
const CHANGES: [(Change, &str); 5] = [
    (Change::Link, "link"),
    (Change::Address, "address"),
    (Change::Route, "route"),
    (Change::Neighbour, "neighbour"),
    (Change::Lost, "lost"),
];

/// Upper bounds of the pass duration histogram, in seconds: a quiet pass over a few pods takes
/// a millisecond, a pass over 1,000 pods a good fraction of a second.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

const OBJECTS: usize = Object::ALL.len();

#[derive(Default)]
pub struct Metrics {
    passes: [AtomicU64; 3],
    /// Cumulative counts per bucket are computed when rendering; these are per bucket, plus
    /// one for +Inf.
    duration_buckets: [AtomicU64; BUCKETS.len() + 1],
    duration_sum_micros: AtomicU64,
    drift: [[AtomicU64; OBJECTS]; 3],
    repairs: [[AtomicU64; OBJECTS]; 3],
    errors: [AtomicU64; 5],
    events: [[AtomicU64; 5]; 2],
    released: AtomicU64,
    attachments: AtomicU64,
    unreachable: AtomicU64,
    unrepaired: AtomicU64,
    shims: AtomicU64,
    last_full_pass_millis: AtomicU64,
}

fn index<T: PartialEq>(all: &[T], item: T) -> usize {
    all.iter().position(|x| *x == item).expect("a known label")
}

impl Metrics {
    pub fn pass(&self, cause: Cause, took: Duration) {
        self.passes[index(&Cause::ALL, cause)].fetch_add(1, Relaxed);
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        self.duration_buckets[bucket].fetch_add(1, Relaxed);
        self.duration_sum_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn drift(&self, cause: Cause, object: Object) {
        self.drift[index(&Cause::ALL, cause)][index(&Object::ALL, object)].fetch_add(1, Relaxed);
    }

    pub fn repair(&self, cause: Cause, object: Object) {
        self.repairs[index(&Cause::ALL, cause)][index(&Object::ALL, object)].fetch_add(1, Relaxed);
    }

    pub fn error(&self, kind: ErrorKind) {
        self.errors[index(&ErrorKind::ALL, kind)].fetch_add(1, Relaxed);
    }

    pub fn events(&self, source: Source, changes: &[Change]) {
        let row = &self.events[SOURCES.iter().position(|(s, _)| *s == source).unwrap()];
        for change in changes {
            let at = CHANGES.iter().position(|(c, _)| c == change).unwrap();
            row[at].fetch_add(1, Relaxed);
        }
    }

    pub fn released(&self) {
        self.released.fetch_add(1, Relaxed);
    }

    /// What the last full pass saw on the node.
    pub fn full_pass(&self, attachments: usize, unreachable: usize, shims: usize) {
        self.attachments.store(attachments as u64, Relaxed);
        self.unreachable.store(unreachable as u64, Relaxed);
        self.shims.store(shims as u64, Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_full_pass_millis
            .store(now.as_millis() as u64, Relaxed);
    }

    pub fn unrepaired(&self, count: usize) {
        self.unrepaired.store(count as u64, Relaxed);
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let o = &mut out;
        family(
            o,
            "passes_total",
            "counter",
            "Reconciliation passes run, by cause.",
        );
        for cause in Cause::ALL {
            let n = self.passes[index(&Cause::ALL, cause)].load(Relaxed);
            sample(o, "passes_total", &[("cause", cause.label())], n);
        }

        family(
            o,
            "pass_duration_seconds",
            "histogram",
            "How long each pass took.",
        );
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.duration_buckets[i].load(Relaxed);
            let le = bound.to_string();
            sample(
                o,
                "pass_duration_seconds_bucket",
                &[("le", &le)],
                cumulative,
            );
        }
        cumulative += self.duration_buckets[BUCKETS.len()].load(Relaxed);
        sample(
            o,
            "pass_duration_seconds_bucket",
            &[("le", "+Inf")],
            cumulative,
        );
        let sum = self.duration_sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(o, "macvlan_host_pass_duration_seconds_sum {sum}");
        sample(o, "pass_duration_seconds_count", &[], cumulative);

        for (name, table, help) in [
            (
                "drift_total",
                &self.drift,
                "Drift found in the host side of attachments, by object and by the cause of the pass that found it.",
            ),
            (
                "repairs_total",
                &self.repairs,
                "Repairs made to the host side of attachments, by object and by the cause of the pass that made them.",
            ),
        ] {
            family(o, name, "counter", help);
            for cause in Cause::ALL {
                for object in Object::ALL {
                    let n = table[index(&Cause::ALL, cause)][index(&Object::ALL, object)]
                        .load(Relaxed);
                    sample(
                        o,
                        name,
                        &[("object", object.label()), ("cause", cause.label())],
                        n,
                    );
                }
            }
        }

        family(o, "errors_total", "counter", "Errors, by kind.");
        for kind in ErrorKind::ALL {
            let n = self.errors[index(&ErrorKind::ALL, kind)].load(Relaxed);
            sample(o, "errors_total", &[("kind", kind.label())], n);
        }

        family(
            o,
            "events_total",
            "counter",
            "rtnetlink notifications the watcher received, by namespace and kind.",
        );
        for (s, (_, namespace)) in SOURCES.iter().enumerate() {
            for (c, (_, kind)) in CHANGES.iter().enumerate() {
                let n = self.events[s][c].load(Relaxed);
                sample(
                    o,
                    "events_total",
                    &[("namespace", namespace), ("kind", kind)],
                    n,
                );
            }
        }

        family(
            o,
            "stale_attachments_released_total",
            "counter",
            "Attachments whose pod namespace provably no longer exists, released without a DEL or GC.",
        );
        sample(
            o,
            "stale_attachments_released_total",
            &[],
            self.released.load(Relaxed),
        );

        for (name, value, help) in [
            (
                "attachments",
                &self.attachments,
                "Attachments recorded on the node, at the last full pass.",
            ),
            (
                "attachments_unreachable",
                &self.unreachable,
                "Attachments whose pod namespace could not be opened at the last full pass (left alone).",
            ),
            (
                "attachments_unrepaired",
                &self.unrepaired,
                "Attachments the last pass that examined them could not repair.",
            ),
            (
                "shims",
                &self.shims,
                "Shims used by the attachments on the node, at the last full pass.",
            ),
        ] {
            family(o, name, "gauge", help);
            sample(o, name, &[], value.load(Relaxed));
        }

        family(
            o,
            "last_full_pass_timestamp_seconds",
            "gauge",
            "When the last full pass ended (Unix time; 0 before the first).",
        );
        let at = self.last_full_pass_millis.load(Relaxed) as f64 / 1e3;
        let _ = writeln!(o, "macvlan_host_last_full_pass_timestamp_seconds {at}");
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP macvlan_host_{name} {help}");
    let _ = writeln!(out, "# TYPE macvlan_host_{name} {kind}");
}

/// One sample; label values here are fixed identifiers and numbers, nothing to escape.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    let _ = write!(out, "macvlan_host_{name}");
    if !labels.is_empty() {
        let list: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let _ = write!(out, "{{{}}}", list.join(","));
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_counts_every_pass() {
        let m = Metrics::default();
        m.pass(Cause::Startup, Duration::from_micros(800));
        m.pass(Cause::Event, Duration::from_millis(30));
        m.pass(Cause::Periodic, Duration::from_secs(20));
        let text = m.render();
        for line in [
            "macvlan_host_pass_duration_seconds_bucket{le=\"0.001\"} 1",
            "macvlan_host_pass_duration_seconds_bucket{le=\"0.025\"} 1",
            "macvlan_host_pass_duration_seconds_bucket{le=\"0.05\"} 2",
            "macvlan_host_pass_duration_seconds_bucket{le=\"10\"} 2",
            "macvlan_host_pass_duration_seconds_bucket{le=\"+Inf\"} 3",
            "macvlan_host_pass_duration_seconds_count 3",
            "macvlan_host_pass_duration_seconds_sum 20.0308",
            "macvlan_host_passes_total{cause=\"event\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn every_family_has_help_and_type_and_conventional_names() {
        let m = Metrics::default();
        m.repair(Cause::Event, Object::NodeRoute);
        m.events(Source::Pod, &[Change::Neighbour, Change::Neighbour]);
        let text = m.render();
        assert!(
            text.contains("macvlan_host_repairs_total{object=\"node_route\",cause=\"event\"} 1\n")
        );
        assert!(
            text.contains("macvlan_host_events_total{namespace=\"pod\",kind=\"neighbour\"} 2\n")
        );
        let mut typed = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                typed.insert(name.to_string(), kind.to_string());
            }
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(name.starts_with("macvlan_host_"), "{line}");
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            let kind = typed
                .get(family)
                .unwrap_or_else(|| panic!("no TYPE for {line}"));
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "no HELP for {family}"
            );
            assert_eq!(kind == "counter", family.ends_with("_total"), "{family}");
        }
    }
}
