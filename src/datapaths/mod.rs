//! The host side and the convergence engine under every front end: the pod's macvlan, and
//! the host path by which the node reaches it (the shared shim or a per-pod veth), as typed
//! objects made true idempotently.

pub mod converge;
pub mod engine;
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

/// What the unit tests of desired state and ownership share.
#[cfg(test)]
pub(crate) mod testing {
    use crate::system::netlink::Link;
    use crate::system::Mac;

    /// A physical master `eth0` with index `index` and a MAC ending in `mac_last`, MTU 1500.
    pub fn master(index: u32, mac_last: u8) -> Link {
        Link {
            index,
            name: "eth0".into(),
            mac: Some(Mac([0x52, 0x54, 0, 0, 0, mac_last])),
            mtu: 1500,
            up: true,
            kind: None,
            macvlan_mode: None,
            parent_index: None,
            link_netnsid: None,
            passes_traffic: true,
            ipv4_conf: None,
            ipv6_conf: None,
        }
    }
}
