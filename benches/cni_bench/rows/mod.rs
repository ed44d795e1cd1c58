//! The rows of the report: `Bench` holds the runner and the report; each row is one method,
//! in its own module.

mod concurrency;
mod footprint;
mod latency;
mod scale;

use crate::common::*;
use crate::configs::*;
use crate::report::*;
use crate::runner::*;
use serde_json::Value;

pub(crate) struct Bench {
    pub(crate) runner: Runner,
    pub(crate) rounds: usize,
    pub(crate) report: Report,
    pub(crate) targets: Vec<(String, bool)>,
}

/// A node with its host-local dataDir and our stateDir, as a real node has one of each.
pub(crate) struct NodeDirs {
    pub(crate) data: TempDir,
    pub(crate) state: ShmDir,
}

impl NodeDirs {
    pub(crate) fn new(label: &str) -> NodeDirs {
        NodeDirs {
            data: TempDir::new(&format!("{label}-host-local")),
            state: ShmDir::new(&format!("{label}-state")),
        }
    }
}

impl Bench {
    pub(crate) fn target(&mut self, what: &str, value: f64, limit: f64, unit: &str) {
        let met = self.report.target(what, value, limit, unit);
        self.targets.push((what.to_string(), met));
    }

    /// Attaches `pod` with `conf` and keeps it (a pod "already on the node").
    pub(crate) fn attach(&self, node: &Netns, pod: &Pod, conf: &Value) {
        let at = Attachment::new(pod);
        self.runner
            .call(node, &type_of(conf), "ADD", &at, conf)
            .expect_ok("attaching a resident pod");
    }

    /// Reports the failed calls of a batch (how many, and the first one's output); true
    /// when every call succeeded.
    pub(crate) fn report_failures(&mut self, name: &str, verb: &str, calls: &[Call]) -> bool {
        let failed: Vec<&Call> = calls.iter().filter(|c| !c.status.success()).collect();
        if let Some(first) = failed.first() {
            self.report.line(&format!(
                "- {name}: {}/{} {verb}s failed, e.g. {} {}",
                failed.len(),
                calls.len(),
                first.stdout,
                first.stderr.trim()
            ));
        }
        failed.is_empty()
    }
}
