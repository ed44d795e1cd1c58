//! macvlan-host: a CNI plugin that attaches pods to the LAN with macvlan and gives the node a
//! path to its own pods (which the kernel's macvlan does not allow by itself).
//!
//! The layout follows the flow of one call:
//! stdin + environment -> [`protocol`] (request, configuration, results, errors)
//! -> [`plugin`] (the verbs ADD, DEL, CHECK, GC, STATUS, and IPAM delegation)
//! -> [`datapaths`] (the pod's macvlan; the host path, shim or veth, planned once and made
//! true idempotently; the reconcile/diagnose entry points)
//! -> [`system`] (netlink, namespaces, sysctls, the node lock, attachment records).
//! Every layer fails with an [`error::Error`], which says what kind of failure it was; each
//! front end maps it to its protocol (the CNI front end in `protocol::error`).
//! Operator commands (`macvlan-host install | reconcile | diagnose`) are in [`commands`]; the
//! Docker network driver (`macvlan-host docker-driver`), a front end of its own, in [`docker`];
//! the netavark plugin front end (`macvlan-host create | setup | teardown | info`, podman 5
//! and later) is in [`netavark`].

pub mod commands;
pub mod datapaths;
pub mod docker;
pub mod error;
pub mod netavark;
pub mod plugin;
pub mod protocol;
pub mod system;
