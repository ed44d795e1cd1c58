//! One recorded attachment, made true again or diagnosed from its record alone: the entry
//! points of the operator commands (`reconcile`, `diagnose`). No configuration is needed: the
//! record holds every value host access needs.

use std::fmt;
use std::path::Path;

use super::host_access;
use super::host_path::{Drift, Repair};
use super::node::Node;
use super::plan::replan;
use super::pod::Pod;
use crate::protocol::{CniError, Context};
use crate::system::lock::NodeLock;
use crate::system::state::{AttachmentKey, Record, StateStore};

/// Why an attachment could not be reconciled or diagnosed.
#[derive(Debug)]
pub enum AttachmentError {
    /// The record is gone (a DEL removed it meanwhile): nothing to do, and nothing is
    /// resurrected.
    Gone(AttachmentKey),
    /// The record's pod namespace cannot be opened (the pod is gone or not a pod's namespace).
    /// Nothing was changed or released: only DEL or GC may remove an attachment.
    PodUnreachable {
        netns: String,
        reason: String,
    },
    Failed(CniError),
}

impl fmt::Display for AttachmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachmentError::Gone(key) => {
                write!(f, "attachment {} has no record (deleted)", key.file_stem())
            }
            AttachmentError::PodUnreachable { netns, reason } => {
                write!(f, "pod namespace unreachable: {netns}: {reason}")
            }
            AttachmentError::Failed(e) => write!(f, "{}", e.msg),
        }
    }
}

impl std::error::Error for AttachmentError {}

impl From<CniError> for AttachmentError {
    fn from(e: CniError) -> Self {
        AttachmentError::Failed(e)
    }
}

/// Every attachment recorded in `store`, whatever its network.
pub fn recorded_attachments(store: &StateStore) -> Result<Vec<Record>, AttachmentError> {
    Ok(store.records().context("listing attachment records")?)
}

/// Makes one recorded attachment's host side true again: under the node lock, re-reads the
/// record, opens the pod's namespace from it, and ensures every piece. Returns what was
/// repaired (empty: nothing had drifted).
pub fn reconcile_attachment(
    node: &Node,
    store: &StateStore,
    key: &AttachmentKey,
) -> Result<Vec<Repair>, AttachmentError> {
    let _lock = NodeLock::acquire().context("taking the node lock")?;
    reconcile_locked(node, store, key)
}

/// `reconcile_attachment` for a caller that holds the node lock (ADD re-creating a shim).
fn reconcile_locked(
    node: &Node,
    store: &StateStore,
    key: &AttachmentKey,
) -> Result<Vec<Repair>, AttachmentError> {
    // Read under the lock: a DEL that ran before we got it has removed the record, and then
    // nothing may be re-created.
    let record = load(store, key)?;
    let pod = open_pod(node, &record)?;
    let (plan, master) = replan(node, &record)?;
    let drift = host_access::verify_planned(node, &plan, &master, Some(&pod))?;
    let mut repairs = host_access::ensure_locked(node, store, &plan, &master, Some(&pod))?;
    // Routes and neighbour entries are rewritten without being read first; verify said which
    // of them were wrong. Device drift is reported by ensure itself.
    repairs.extend(
        drift
            .into_iter()
            .filter(|d| !d.is_device_level())
            .map(Repair::Restored),
    );
    for repair in &repairs {
        log::info!("reconcile {}: {repair}", key.file_stem());
    }
    Ok(repairs)
}

/// ADD re-created (or replaced) shim `shim`: its routes and neighbour entries went with the
/// old one, so every other live attachment on it is made true again, under the lock ADD
/// holds. Never fails the ADD: what cannot be restored is logged, and `reconcile` reports it.
pub fn heal_shim_users(
    node: &Node,
    store: &StateStore,
    shim: &str,
    adding: &AttachmentKey,
) -> Vec<Repair> {
    let users = match store.users(shim) {
        Ok(users) => users,
        Err(e) => {
            log::warn!("listing the users of shim {shim}: {e}");
            return Vec::new();
        }
    };
    let mut repairs = Vec::new();
    for key in users.iter().filter(|k| *k != adding) {
        match reconcile_locked(node, store, key) {
            Ok(mut done) => repairs.append(&mut done),
            Err(AttachmentError::Gone(_)) => {}
            Err(e) => log::warn!("restoring {} on shim {shim}: {e}", key.file_stem()),
        }
    }
    repairs
}

/// What is missing or wrong in one recorded attachment; changes nothing.
pub fn diagnose_attachment(
    node: &Node,
    store: &StateStore,
    key: &AttachmentKey,
) -> Result<Vec<Drift>, AttachmentError> {
    let record = load(store, key)?;
    let pod = open_pod(node, &record)?;
    Ok(host_access::verify(node, &record, Some(&pod))?)
}

fn load(store: &StateStore, key: &AttachmentKey) -> Result<Record, AttachmentError> {
    store
        .load(key)
        .context("reading the attachment record")?
        .ok_or_else(|| AttachmentError::Gone(key.clone()))
}

fn open_pod(node: &Node, record: &Record) -> Result<Pod, AttachmentError> {
    Pod::open(Path::new(&record.netns), &node.ns, "the record's netns").map_err(|e| {
        AttachmentError::PodUnreachable {
            netns: record.netns.clone(),
            reason: e.msg,
        }
    })
}
