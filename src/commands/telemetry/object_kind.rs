//! The `object` label of the drift and repair counters: which host-side object a drift or a
//! repair concerns, from the variant alone (never from its message). The one place that knows
//! the datapaths' `Drift` and `Repair` types; when they change, only this file does.

use crate::datapaths::host_path::{Drift, Repair};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// The master the host side hangs off.
    Master,
    /// The shim or a veth's node end: the link itself (missing, foreign, down, replaced).
    HostDevice,
    /// The shim's hardening: its sysctls and link-local address.
    Hardening,
    /// The node's /32 (/128) route to a pod address.
    NodeRoute,
    /// The node's permanent neighbour entry for a pod.
    NodeNeighbour,
    /// The pod's permanent neighbour entry for a node address.
    PodNeighbour,
    /// The pod's route to a node address or a `hostRoutes` prefix.
    PodRoute,
}

impl Object {
    pub const ALL: [Object; 7] = [
        Object::Master,
        Object::HostDevice,
        Object::Hardening,
        Object::NodeRoute,
        Object::NodeNeighbour,
        Object::PodNeighbour,
        Object::PodRoute,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Object::Master => "master",
            Object::HostDevice => "host_device",
            Object::Hardening => "hardening",
            Object::NodeRoute => "node_route",
            Object::NodeNeighbour => "node_neighbour",
            Object::PodNeighbour => "pod_neighbour",
            Object::PodRoute => "pod_route",
        }
    }
}

/// The object a drift is about.
pub fn of_drift(drift: &Drift) -> Object {
    match drift {
        Drift::MasterMissing(_) => Object::Master,
        Drift::DeviceMissing { .. } | Drift::DeviceForeign { .. } | Drift::DeviceDown { .. } => {
            Object::HostDevice
        }
        Drift::ShimUnhardened { .. } | Drift::ShimLinkLocal { .. } => Object::Hardening,
        Drift::NodeRouteMissing(_) | Drift::NodeRouteSource { .. } => Object::NodeRoute,
        Drift::NodeNeighbourMissing { .. } => Object::NodeNeighbour,
        Drift::PodNeighbourMissing { .. } | Drift::StaleNodeAddress(_) => Object::PodNeighbour,
        Drift::PodRouteMissing(_) => Object::PodRoute,
    }
}

/// The object a repair changed.
pub fn of_repair(repair: &Repair) -> Object {
    match repair {
        Repair::Created(_) | Repair::Replaced(_) | Repair::BroughtUp(_) => Object::HostDevice,
        Repair::Hardened { .. } | Repair::RemovedLinkLocal { .. } => Object::Hardening,
        Repair::ForgotNodeAddress(_) => Object::PodNeighbour,
        Repair::Restored(drift) => of_drift(drift),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_prometheus_label_values() {
        let labels: std::collections::HashSet<_> = Object::ALL.iter().map(|o| o.label()).collect();
        assert_eq!(labels.len(), Object::ALL.len());
        assert!(labels
            .iter()
            .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    #[test]
    fn a_restored_drift_counts_for_the_drifted_object() {
        let ip = "10.0.0.2".parse().unwrap();
        assert_eq!(
            of_repair(&Repair::Restored(Drift::NodeRouteMissing(ip))),
            Object::NodeRoute
        );
        assert_eq!(
            of_repair(&Repair::Created("shim mvh-eth0".into())),
            Object::HostDevice
        );
    }
}
