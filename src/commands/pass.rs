//! One reconciliation pass: every recorded attachment of the given state directories, each
//! brought back to what it must be. Shared by `reconcile` and `reconcile --watch`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::attachment::{self, Outcome};
use super::stale;
use crate::datapaths::node::Node;
use crate::datapaths::objects::{Drift, Repair};
use crate::system::state::{AttachmentKey, StateStore};

/// What one pass did.
#[derive(Debug, Default)]
pub struct Report {
    /// (attachment, what was repaired).
    pub repaired: Vec<(String, Vec<Repair>)>,
    /// Everything found drifted (before the repairs).
    pub drift: Vec<Drift>,
    /// (attachment, why its pod namespace could not be opened).
    pub unreachable: Vec<(String, String)>,
    /// (attachment, what could not be repaired).
    pub failed: Vec<(String, String)>,
    /// (attachment, why its pod is provably gone): released without DEL or GC
    /// (`Hooks::release_stale`).
    pub released: Vec<(String, String)>,
    /// The pod namespaces of the attachments that were examined (the watcher listens there).
    pub pod_namespaces: Vec<String>,
    /// How many attachments were examined, and the shims they use.
    pub examined: usize,
    pub shims: BTreeSet<String>,
    /// A shim or veth was created or replaced during the pass.
    pub remade_device: bool,
}

/// What the caller of a pass adds to it.
pub struct Hooks<'a> {
    /// Called after each attachment (the watcher's sign of life).
    pub progress: &'a dyn Fn(),
    /// Release attachments whose pod namespace provably no longer exists (`stale`).
    pub release_stale: bool,
}

impl Hooks<'_> {
    pub const NONE: Hooks<'static> = Hooks {
        progress: &|| {},
        release_stale: false,
    };
}

impl Report {
    pub fn drifted(&self) -> bool {
        !self.repaired.is_empty() || !self.failed.is_empty()
    }
}

/// Which attachments a pass covers.
pub enum Scope<'a> {
    All,
    /// Only those whose pod lives in one of these namespaces (a change seen inside a pod).
    Pods(&'a [String]),
}

/// A state directory that cannot be read makes the pass fail (the caller exits 2); one that
/// does not exist yet has no attachments.
pub fn run(node: &Node, dirs: &[PathBuf], scope: Scope, hooks: &Hooks) -> Result<Report, String> {
    let mut report = Report::default();
    // Replacing a drifted shim removes the routes of attachments examined before it in this
    // round: after a round that made a device, go round again (bounded: a fight must not
    // spin).
    for _round in 0..3 {
        let mut round = Report::default();
        for dir in dirs {
            let keys = keys_in(dir)?;
            if keys.is_empty() {
                continue;
            }
            let store = StateStore::open(dir)
                .map_err(|e| format!("state directory {}: {e}", dir.display()))?;
            for key in keys {
                reconcile_one(node, &store, &key, &scope, hooks, &mut round);
                (hooks.progress)();
            }
        }
        let again = round.remade_device;
        report.remade_device |= round.remade_device;
        report.repaired.extend(round.repaired);
        report.drift.extend(round.drift);
        report.released.extend(round.released);
        report.unreachable = round.unreachable;
        report.failed = round.failed;
        report.pod_namespaces = round.pod_namespaces;
        report.examined = round.examined;
        report.shims = round.shims;
        if !again {
            break;
        }
    }
    Ok(report)
}

fn reconcile_one(
    node: &Node,
    store: &StateStore,
    key: &AttachmentKey,
    scope: &Scope,
    hooks: &Hooks,
    report: &mut Report,
) {
    let name = key.file_stem();
    let Ok(Some(record)) = store.load(key) else {
        return;
    };
    if let Scope::Pods(namespaces) = scope {
        if !namespaces.contains(&record.netns) {
            return;
        }
    }
    report.examined += 1;
    report
        .shims
        .extend(record.path.shared_shim().map(str::to_owned));
    match attachment::reconcile(node, store, key) {
        Ok(Outcome::InSync) => report.pod_namespaces.push(record.netns),
        Ok(Outcome::Repaired {
            drift,
            repairs,
            remade_device,
        }) => {
            report.pod_namespaces.push(record.netns);
            report.drift.extend(drift);
            report.repaired.push((name, repairs));
            report.remade_device |= remade_device;
        }
        Ok(Outcome::Unreachable(reason)) if hooks.release_stale => {
            match stale::release_if_gone(node, store, key) {
                Ok(Some(proof)) => report.released.push((name, proof)),
                Ok(None) => report.unreachable.push((name, reason)),
                Err(e) => report.failed.push((name, e)),
            }
        }
        Ok(Outcome::Unreachable(reason)) => report.unreachable.push((name, reason)),
        Ok(Outcome::Gone) => {}
        Err(e) => report.failed.push((name, e.to_string())),
    }
}

/// The attachments recorded in `dir` (`StateStore::keys`), as the commands report an error.
pub fn keys_in(dir: &Path) -> Result<Vec<AttachmentKey>, String> {
    StateStore::existing(dir).keys().map_err(|e| e.to_string())
}
