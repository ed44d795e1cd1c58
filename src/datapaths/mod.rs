//! The datapaths: the pod macvlan and the two ways the node reaches it (shim, veth).

pub mod host_access;
pub mod macvlan;
pub mod node;
pub mod pod_addresses;
pub mod shim;
pub mod veth;
