//! The `object` label of the drift and repair counters: which host-side object a drift or a
//! repair concerns, from the engine's typed object and problem (never from a message). The
//! one place that maps the engine's `objects` onto the metrics' labels.

use crate::datapaths::objects::{self, Action, Drift, Problem, Repair};

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

/// The object a drift is about: a shim's hardening counts apart from the shim itself.
pub fn of_drift(drift: &Drift) -> Object {
    match drift.problem {
        Problem::Unhardened { .. } | Problem::LinkLocal(_) => Object::Hardening,
        _ => of_object(&drift.object),
    }
}

/// The object a repair changed.
pub fn of_repair(repair: &Repair) -> Object {
    match &repair.action {
        Action::Hardened(_) | Action::RemovedLinkLocal(_) => Object::Hardening,
        Action::Restored(problem) => of_drift(&Drift::new(repair.object.clone(), problem.clone())),
        _ => of_object(&repair.object),
    }
}

fn of_object(object: &objects::Object) -> Object {
    use objects::Object as O;
    match object {
        O::Master(_) => Object::Master,
        O::Shim(_)
        | O::VethPair { .. }
        | O::VethNodeEnd(_)
        | O::VethPodEnd(_)
        | O::PodInterface(_) => Object::HostDevice,
        O::NodeRoute(_) => Object::NodeRoute,
        O::NodeNeighbour { .. } => Object::NodeNeighbour,
        O::PodNeighbour { .. } | O::FormerNodeAddress(_) => Object::PodNeighbour,
        O::PodRoute(_) => Object::PodRoute,
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
            of_repair(&Repair::new(
                objects::Object::NodeRoute(ip),
                Action::Restored(Problem::Missing)
            )),
            Object::NodeRoute
        );
        let shim = || objects::Object::Shim("mvh-eth0".into());
        assert_eq!(
            of_repair(&Repair::new(shim(), Action::Created)),
            Object::HostDevice
        );
        assert_eq!(
            of_repair(&Repair::new(
                shim(),
                Action::Hardened(vec!["arp_ignore=8".into()])
            )),
            Object::Hardening
        );
        assert_eq!(
            of_drift(&Drift::new(
                shim(),
                Problem::Mtu {
                    actual: 1500,
                    wanted: 9000
                }
            )),
            Object::HostDevice
        );
    }
}
