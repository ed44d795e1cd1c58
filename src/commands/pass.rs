//! One reconciliation pass: every recorded attachment of the given state directories, each
//! brought back to what it must be. Shared by `reconcile` and `reconcile --watch`.

use std::path::{Path, PathBuf};

use super::attachment::{self, Outcome};
use crate::datapaths::node::Node;
use crate::protocol::CniError;
use crate::system::state::{AttachmentKey, StateStore};

/// What one pass did.
#[derive(Debug, Default)]
pub struct Report {
    /// (attachment, what was repaired).
    pub repaired: Vec<(String, Vec<String>)>,
    /// (attachment, why its pod namespace could not be opened).
    pub unreachable: Vec<(String, String)>,
    /// (attachment, what could not be repaired).
    pub failed: Vec<(String, String)>,
    /// The pod namespaces of the attachments that were examined (the watcher listens there).
    pub pod_namespaces: Vec<String>,
    /// A shim or veth was created or replaced during the pass.
    pub remade_device: bool,
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
pub fn run(node: &Node, dirs: &[PathBuf], scope: Scope) -> Result<Report, String> {
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
                reconcile_one(node, &store, &key, &scope, &mut round);
            }
        }
        let again = round.remade_device;
        report.remade_device |= round.remade_device;
        report.repaired.extend(round.repaired);
        report.unreachable = round.unreachable;
        report.failed = round.failed;
        report.pod_namespaces = round.pod_namespaces;
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
    report: &mut Report,
) {
    let name = key.file_stem();
    if let Scope::Pods(namespaces) = scope {
        match store.load(key) {
            Ok(Some(record)) if namespaces.contains(&record.netns) => {}
            _ => return,
        }
    }
    match attachment::reconcile(node, store, key) {
        Ok(Outcome::InSync) => report.pod_namespaces.extend(netns_of(store, key)),
        Ok(Outcome::Repaired {
            lines,
            remade_device,
        }) => {
            report.pod_namespaces.extend(netns_of(store, key));
            report.repaired.push((name, lines));
            report.remade_device |= remade_device;
        }
        Ok(Outcome::Unreachable(reason)) => report.unreachable.push((name, reason)),
        Ok(Outcome::Gone) => {}
        Err(CniError { msg, .. }) => report.failed.push((name, msg)),
    }
}

fn netns_of(store: &StateStore, key: &AttachmentKey) -> Option<String> {
    store.load(key).ok().flatten().map(|r| r.netns)
}

/// The attachments recorded in `dir` (`StateStore::keys`), as the commands report an error.
pub fn keys_in(dir: &Path) -> Result<Vec<AttachmentKey>, String> {
    StateStore::existing(dir).keys().map_err(|e| e.to_string())
}
