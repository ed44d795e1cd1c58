//! The convergence engine: one attachment's host side made true (ADD, `reconcile`, the
//! watcher), compared only (CHECK, `diagnose`), or converged to nothing (DEL, GC), whatever
//! the front end. Each entry point observes the node and the pod, compares with what the
//! record and the node's facts say must exist, and applies under the node lock; the repairs
//! it returns are typed (`objects`).
//!
//! A repair can concern other attachments: a shim made again lost every pod's node route
//! and neighbour entry, a shim given a new MAC (the master's changed) leaves every pod's
//! neighbour entry for the node naming the old one. The engine reacts to such a repair by
//! converging the shim's other users under the lock it holds, so one call leaves every pod on
//! the shim reachable.

use std::fmt;
use std::path::Path;

use super::converge::{self, Released};
use super::host_path::{self, Unrecorded};
use super::node::Node;
use super::objects::{Action, Drift, Repair};
use super::plan::{self, replan, Plan, PodInterface, Settings};
use super::pod::Pod;
use super::shim::unrecorded::Clues;
use crate::error::{Context, Error, Result};
use crate::protocol::result::Interface;
use crate::protocol::HostAccess;
use crate::system::lock::NodeLock;
use crate::system::netlink::Link;
use crate::system::state::{AttachmentKey, Record, StateStore};

/// One attachment as any front end describes it (CNI ADD, netavark `setup`, Docker `Join`):
/// no configuration, only what host access needs.
pub struct Attach<'a> {
    pub node: &'a Node,
    /// None: the node's side only, the pod's namespace is not there yet (Docker's Join); a
    /// later call with the pod completes it.
    pub pod: Option<&'a Pod>,
    /// The pod's namespace path, as recorded.
    pub netns: &'a str,
    pub master: &'a Link,
    /// The pod's interface as the front end made or found it (its name inside the pod when
    /// the pod is there).
    pub pod_if: &'a PodInterface,
    pub key: &'a AttachmentKey,
    pub settings: &'a Settings,
    pub store: &'a StateStore,
}

/// What attaching made: the record (every value host access needs later), and the host
/// device a result reports as the pod's own (a veth's node end; not a shared shim).
pub struct Attached {
    pub record: Record,
    pub host_interface: Option<Interface>,
}

/// The front ends' ADD: plans and attaches host access (None with `hostAccess: "none"`).
/// On failure nothing of it is left.
pub fn attach_pod(request: &Attach) -> Result<Option<Attached>> {
    if request.settings.host_access == HostAccess::None {
        return Ok(None);
    }
    let mut plan = plan::plan(
        request.node,
        request.settings,
        request.key,
        request.master,
        request.netns,
        request.pod_if,
    )?;
    // The interface's name inside the pod, when it is not the attachment's (Docker names it
    // itself, once the link is there).
    plan.record.pod_ifname = request
        .pod
        .map(|_| request.pod_if.ifname.clone())
        .filter(|name| *name != request.key.ifname);
    for repair in attach(
        request.node,
        request.store,
        &plan,
        request.master,
        request.pod,
    )? {
        // Creating is what ADD is for (and logged where it happens); anything else means an
        // earlier call or someone else left the host side wrong.
        match repair.action {
            Action::Created => log::debug!("{repair}"),
            _ => log::warn!("repaired: {repair}"),
        }
    }
    let host_interface = host_path::of(&plan.record).result_interface();
    Ok(Some(Attached {
        record: plan.record,
        host_interface,
    }))
}

/// The front ends' DEL, prepared before anything of the pod is torn down: the record, or
/// without one (a wiped `stateDir`), what the pod and prevResult still tell.
pub enum Detach {
    /// `hostAccess: "none"` and nothing recorded.
    Nothing,
    Recorded(StateStore, Box<Record>),
    /// No record: what can be found without it (`host_path::Unrecorded`).
    Unrecorded(StateStore, Unrecorded),
    Failed(Error),
}

impl Detach {
    /// Reads the record (open `store` with `StateStore::existing`: with nothing recorded, a
    /// missing or read-only `stateDir` is no error); without one, learns from `clues` while
    /// the pod still exists.
    pub fn prepare(
        node: &Node,
        store: StateStore,
        key: &AttachmentKey,
        host_access: HostAccess,
        clues: &Clues,
    ) -> Detach {
        match store.load(key).context("reading the attachment record") {
            Ok(Some(record)) => Detach::Recorded(store, Box::new(record)),
            Ok(None) => match host_path::unrecorded(node, host_access, clues) {
                Unrecorded::Nothing => Detach::Nothing,
                side => Detach::Unrecorded(store, side),
            },
            Err(e) => Detach::Failed(e),
        }
    }

    /// Converges the host side to nothing under the node lock; what must go after the lock
    /// (a veth's node end) is in the returned `Released`.
    pub fn release(self, node: &Node, key: &AttachmentKey) -> Released {
        match self {
            Detach::Nothing => Released::nothing(),
            Detach::Recorded(store, record) => detach(node, &store, &record),
            Detach::Unrecorded(store, side) => {
                // First, while the route owners are still there to ask.
                let learned_errors = side.release_learned(node, &store, key);
                let mut released = converge::release_unrecorded(node, &store, key, &side);
                released.errors.append(learned_errors);
                released
            }
            Detach::Failed(e) => Released::failed(e),
        }
    }
}

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
    Failed(Error),
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
            AttachmentError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AttachmentError {}

impl From<Error> for AttachmentError {
    fn from(e: Error) -> Self {
        AttachmentError::Failed(e)
    }
}

/// ADD: makes the plan true under the node lock, then converges the other attachments a
/// repair concerned. On failure everything it made is released again. Returns what had to be
/// repaired (a reused shim that had lost its hardening...).
pub fn attach(
    node: &Node,
    store: &StateStore,
    plan: &Plan,
    master: &Link,
    pod: Option<&Pod>,
) -> Result<Vec<Repair>> {
    let lock = NodeLock::acquire().context("taking the node lock")?;
    match converge::ensure_locked(node, store, plan, master, pod) {
        Ok(mut repairs) => {
            let healed = heal_concerned(node, store, &repairs, &plan.record.key);
            repairs.extend(healed);
            Ok(repairs)
        }
        Err(err) => {
            let released = converge::release_locked(node, store, &plan.record);
            drop(lock);
            for cleanup in released.finish(node) {
                log::warn!(
                    "rolling back host access of {}: {cleanup}",
                    plan.record.key.file_stem()
                );
            }
            Err(err)
        }
    }
}

/// DEL and GC: converges a recorded attachment to nothing, under the node lock; what must go
/// after the lock (a veth's node end) is in the returned `Released`.
pub fn detach(node: &Node, store: &StateStore, record: &Record) -> Released {
    converge::release(node, store, record)
}

/// CHECK: what is missing or wrong in the attachment that breaks traffic between node and
/// pod (a route of an earlier version, still working, is no failure: `reconcile` adopts it).
pub fn check(node: &Node, store: &StateStore, record: &Record, pod: &Pod) -> Result<Vec<Drift>> {
    let drift = converge::verify(node, store, record, Some(pod))?;
    Ok(drift.into_iter().filter(Drift::breaks_traffic).collect())
}

/// Every attachment recorded in `store`, whatever its network.
pub fn recorded_attachments(store: &StateStore) -> Result<Vec<Record>, AttachmentError> {
    Ok(store.records().context("listing attachment records")?)
}

/// Makes one recorded attachment's host side true again: under the node lock, re-reads the
/// record, opens the pod's namespace from it, and ensures every piece; then the other
/// attachments a repair concerned. Returns what was repaired (empty: nothing had drifted).
pub fn reconcile_attachment(
    node: &Node,
    store: &StateStore,
    key: &AttachmentKey,
) -> Result<Vec<Repair>, AttachmentError> {
    let _lock = NodeLock::acquire().context("taking the node lock")?;
    let mut repairs = converge_recorded(node, store, key)?;
    let healed = heal_concerned(node, store, &repairs, key);
    repairs.extend(healed);
    Ok(repairs)
}

/// One attachment made true, for a caller that holds the node lock; reacts to nothing.
fn converge_recorded(
    node: &Node,
    store: &StateStore,
    key: &AttachmentKey,
) -> Result<Vec<Repair>, AttachmentError> {
    // Read under the lock: a DEL that ran before we got it has removed the record, and then
    // nothing may be re-created.
    let record = load(store, key)?;
    let pod = open_pod(node, &record)?;
    let (plan, master) = replan(node, &record)?;
    let drift = converge::verify_planned(node, store, &plan, &master, Some(&pod))?;
    let mut repairs = converge::ensure_locked(node, store, &plan, &master, Some(&pod))?;
    // Routes and neighbour entries are rewritten without being read first; verify said which
    // of them were wrong. Device drift is reported by ensure itself.
    repairs.extend(
        drift
            .into_iter()
            .filter(|d| !d.is_device_level())
            .map(|d| Repair::new(d.object, super::objects::Action::Restored(d.problem))),
    );
    for repair in &repairs {
        log::info!("reconcile {}: {repair}", key.file_stem());
    }
    Ok(repairs)
}

/// The reaction to repairs that concern a shim's other users (made again, new MAC): each
/// other live attachment on it is converged, under the lock the caller holds. Never fails
/// the caller: what cannot be restored is logged, and `reconcile` reports it.
fn heal_concerned(
    node: &Node,
    store: &StateStore,
    repairs: &[Repair],
    done: &AttachmentKey,
) -> Vec<Repair> {
    let mut shims: Vec<&str> = repairs
        .iter()
        .filter_map(Repair::changed_shared_shim)
        .collect();
    shims.dedup();
    let mut healed = Vec::new();
    for shim in shims {
        let users = match store.users(shim) {
            Ok(users) => users,
            Err(e) => {
                log::warn!("listing the users of shim {shim}: {e}");
                continue;
            }
        };
        for key in users.iter().filter(|k| *k != done) {
            match converge_recorded(node, store, key) {
                Ok(mut more) => healed.append(&mut more),
                Err(AttachmentError::Gone(_)) => {}
                Err(e) => log::warn!("restoring {} on shim {shim}: {e}", key.file_stem()),
            }
        }
    }
    healed
}

/// What is missing or wrong in one recorded attachment; changes nothing.
pub fn diagnose_attachment(
    node: &Node,
    store: &StateStore,
    key: &AttachmentKey,
) -> Result<Vec<Drift>, AttachmentError> {
    let record = load(store, key)?;
    let pod = open_pod(node, &record)?;
    Ok(converge::verify(node, store, &record, Some(&pod))?)
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
            reason: e.to_string(),
        }
    })
}
