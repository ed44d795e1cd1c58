//! The datapaths: the pod's macvlan, and the host path by which the node reaches it (the
//! shared shim or a per-pod veth), planned once and made true idempotently.

pub mod attachment;
pub mod host_access;
pub mod host_path;
pub mod macvlan;
pub mod node;
pub mod plan;
pub mod pod;
pub mod shim;
pub mod veth;

pub use attachment::{
    diagnose_attachment, reconcile_attachment, recorded_attachments, AttachmentError,
};
pub use host_path::{Drift, Repair};
