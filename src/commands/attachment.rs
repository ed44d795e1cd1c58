//! One recorded attachment, through the datapaths' entry points (`reconcile_attachment`,
//! `diagnose_attachment`), as the commands need it.
//!
//! Reconciling looks before it writes: `ensure` rewrites routes and neighbour entries without
//! reading them first, and every write notifies the watcher; an attachment without drift is
//! left untouched, so a pass that finds nothing changes nothing and the watcher goes quiet.

use crate::datapaths::engine::{diagnose_attachment, reconcile_attachment, AttachmentError};
use crate::datapaths::node::Node;
use crate::datapaths::objects::{Drift, Repair};
use crate::error::Error;
use crate::system::state::{AttachmentKey, StateStore};

/// What reconciling one attachment found.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing had drifted.
    InSync,
    /// What had drifted and what was repaired; `remade_device` when a shim or veth was
    /// created or replaced, or a shim's MAC set (the engine converged the shim's other users
    /// already; the pass goes round once more to see them in sync).
    Repaired {
        drift: Vec<Drift>,
        repairs: Vec<Repair>,
        remade_device: bool,
    },
    /// The pod's namespace could not be opened: reported and left alone. From inside a
    /// container, a path that is not visible is no proof that the pod is gone, and removing a
    /// live pod's host side would be the worst outcome; DEL and GC remove dead attachments.
    Unreachable(String),
    /// The record went away (a DEL): nothing to do, nothing re-created.
    Gone,
}

/// Reconciles one attachment (under the node lock, taken by `reconcile_attachment`).
pub fn reconcile(node: &Node, store: &StateStore, key: &AttachmentKey) -> Result<Outcome, Error> {
    let drift = match diagnose_attachment(node, store, key) {
        Ok(drift) if drift.is_empty() => return Ok(Outcome::InSync),
        Ok(drift) => drift,
        Err(e) => return outcome_of(e),
    };
    match reconcile_attachment(node, store, key) {
        Ok(repairs) if repairs.is_empty() => Ok(Outcome::InSync),
        Ok(repairs) => Ok(Outcome::Repaired {
            remade_device: repairs
                .iter()
                .any(|r| r.remade_device() || r.changed_shared_shim().is_some()),
            drift,
            repairs,
        }),
        Err(e) => outcome_of(e),
    }
}

fn outcome_of(error: AttachmentError) -> Result<Outcome, Error> {
    match error {
        AttachmentError::Gone(_) => Ok(Outcome::Gone),
        AttachmentError::PodUnreachable { netns, reason } => Ok(Outcome::Unreachable(format!(
            "pod namespace {netns}: {reason}"
        ))),
        AttachmentError::Failed(e) => Err(e),
    }
}

/// What `diagnose` reports for one attachment.
pub enum Diagnosis {
    Drift(Vec<Drift>),
    /// The pod's namespace could not be opened: the pod side was not examined.
    Unreachable(String),
    /// It could not be examined at all.
    Failed(String),
    Gone,
}

pub fn diagnose(node: &Node, store: &StateStore, key: &AttachmentKey) -> Diagnosis {
    match diagnose_attachment(node, store, key) {
        Ok(drift) => Diagnosis::Drift(drift),
        Err(AttachmentError::Gone(_)) => Diagnosis::Gone,
        Err(AttachmentError::PodUnreachable { netns, reason }) => {
            Diagnosis::Unreachable(format!("pod namespace {netns}: {reason}"))
        }
        Err(AttachmentError::Failed(e)) => Diagnosis::Failed(e.to_string()),
    }
}
