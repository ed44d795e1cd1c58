//! The host side and the convergence engine under every front end: the pod's macvlan, and
//! the host path by which the node reaches it (the shared shim or a per-pod veth), as typed
//! objects made true idempotently.

pub mod engine;
pub mod host_access;
pub mod host_path;
pub mod link_ready;
pub mod macvlan;
pub mod node;
pub mod objects;
pub mod plan;
pub mod pod;
pub mod pod_addresses;
pub mod routes;
pub mod shim;
pub mod veth;

pub use engine::{
    diagnose_attachment, reconcile_attachment, recorded_attachments, AttachmentError,
};
pub use objects::{Drift, Repair};
