//! macvlan-host: a CNI plugin that attaches pods to the LAN with macvlan and gives the node a
//! path to its own pods (which the kernel's macvlan does not allow by itself).
//!
//! The layout follows the flow of one call:
//! stdin + environment -> [`protocol`] (request, configuration, results, errors)
//! -> [`plugin`] (the verbs: ADD, DEL, CHECK, GC, STATUS)
//! -> [`datapaths`] (the pod macvlan, the host-side shim, the per-pod veth)
//! -> [`system`] (netlink, namespaces, sysctls, locks, state, delegated plugins).
//! [`commands`] are the operator's sub-commands (`reconcile`, `diagnose`) on the same layers.

pub mod commands;
pub mod datapaths;
pub mod plugin;
pub mod protocol;
pub mod system;
