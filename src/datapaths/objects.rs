//! The host-side objects of an attachment as types, and what can be wrong with them (`Drift`)
//! or was done to them (`Repair`). Every decision reads these types; `Display` exists for
//! people only (CHECK's error, `reconcile` and `diagnose` output, logs).

use std::fmt;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::system::netlink::MacvlanMode;
use crate::system::Mac;

/// One object the engine makes true, in the node or in the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// The LAN interface the macvlans hang off (never changed, only looked at).
    Master(String),
    /// The shared bridge-mode macvlan on the node.
    Shim(String),
    /// A veth pair, made and replaced as one.
    VethPair { node_end: String, pod_end: String },
    /// A veth pair's end on the node.
    VethNodeEnd(String),
    /// A veth pair's end in the pod.
    VethPodEnd(String),
    /// The pod's own interface (its macvlan), looked at only.
    PodInterface(String),
    /// The node's /32 (/128) route to a pod address.
    NodeRoute(IpAddr),
    /// The node's permanent neighbour entry: pod address -> pod MAC, on the host device.
    NodeNeighbour { ip: IpAddr, mac: Mac },
    /// The pod's permanent neighbour entry: node address -> host device's MAC.
    PodNeighbour { ip: IpAddr, mac: Mac },
    /// A route in the pod: to a node address, or a `hostRoutes` entry.
    PodRoute(IpNetwork),
    /// The pod's entries (neighbour, route) for an address that is no longer the node's.
    FormerNodeAddress(IpAddr),
}

impl Object {
    /// A link (as opposed to a route or neighbour entry): ensure's own device checks repair
    /// it and report it.
    pub fn is_device(&self) -> bool {
        matches!(
            self,
            Object::Master(_)
                | Object::Shim(_)
                | Object::VethPair { .. }
                | Object::VethNodeEnd(_)
                | Object::VethPodEnd(_)
                | Object::PodInterface(_)
        )
    }

    /// The shim's name when this is a shim.
    pub fn shim(&self) -> Option<&str> {
        match self {
            Object::Shim(name) => Some(name),
            _ => None,
        }
    }

    /// Where the object lives, for messages.
    fn place(&self) -> &'static str {
        match self {
            Object::VethPodEnd(_) | Object::PodInterface(_) => "in the pod",
            _ => "on the node",
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Master(name) => write!(f, "master {name}"),
            Object::Shim(name) => write!(f, "shim {name}"),
            Object::VethPair { node_end, pod_end } => {
                write!(f, "veth {node_end} (node) / {pod_end} (pod)")
            }
            Object::VethNodeEnd(name) | Object::VethPodEnd(name) => write!(f, "veth {name}"),
            Object::PodInterface(name) => write!(f, "interface {name}"),
            Object::NodeRoute(ip) => write!(f, "the node's route to pod address {ip}"),
            Object::NodeNeighbour { ip, mac } => {
                write!(f, "the node's permanent neighbour entry {ip} -> {mac}")
            }
            Object::PodNeighbour { ip, mac } => write!(
                f,
                "the pod's permanent neighbour entry for node address {ip} -> {mac}"
            ),
            Object::PodRoute(dst) => write!(f, "the pod's route to {dst}"),
            Object::FormerNodeAddress(ip) => write!(f, "the pod's entries for {ip}"),
        }
    }
}

/// Why an interface with a host device's name is not ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Another kind of link (None: a physical device).
    Kind {
        actual: Option<String>,
        wanted: &'static str,
    },
    NotOnMaster(String),
    Mode(Option<MacvlanMode>),
    Mac {
        actual: Option<Mac>,
        wanted: Mac,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Kind { actual, wanted } => write!(
                f,
                "is a {} interface, not a {wanted}",
                actual.as_deref().unwrap_or("physical")
            ),
            Mismatch::NotOnMaster(master) => write!(f, "is not on master {master}"),
            Mismatch::Mode(mode) => write!(
                f,
                "is in {} mode, not bridge",
                mode.map(|m| m.to_string())
                    .unwrap_or_else(|| "an unknown".into())
            ),
            Mismatch::Mac { actual, wanted } => write!(
                f,
                "has MAC {} instead of {wanted} (changed by hand, by a network manager, or the master's MAC changed)",
                actual.map(|m| m.to_string()).unwrap_or_default()
            ),
        }
    }
}

/// What is wrong with an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    Missing,
    /// The interface with the object's name is not ours.
    Foreign(Mismatch),
    Down,
    /// Ours, but its MAC is not the one it must have (the master's MAC changed, or someone
    /// set it): set in place.
    Mac {
        actual: Option<Mac>,
        wanted: Mac,
    },
    Mtu {
        actual: u32,
        wanted: u32,
    },
    /// A hardening sysctl of the shim.
    Unhardened {
        sysctl: String,
        value: String,
        wanted: String,
    },
    /// A link-local address on the shim: it would speak on the LAN.
    LinkLocal(IpNetwork),
    /// A node route with another source than the node's current address.
    Source {
        actual: Option<IpAddr>,
        wanted: IpAddr,
    },
    /// A route that works but was written by an earlier version (protocol `boot`): adopted
    /// (rewritten with our protocol) by `reconcile` and ADD; CHECK does not fail for it.
    Unmarked {
        protocol: u8,
    },
    /// Entries that must not exist any more (a renumbered node's old address).
    Stale,
}

/// Something missing or wrong in an attachment's host side. CHECK fails with all of them
/// (but `Unmarked`); the messages name the piece (device, address, MAC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    pub object: Object,
    pub problem: Problem,
}

impl Drift {
    pub fn new(object: Object, problem: Problem) -> Drift {
        Drift { object, problem }
    }

    /// Whether `ensure`'s own device checks repair it (and report it themselves); the rest
    /// (routes, neighbour entries) is rewritten without being read, and reconcile reports
    /// what verify had found.
    pub fn is_device_level(&self) -> bool {
        self.object.is_device() || self.problem == Problem::Stale
    }

    /// Whether traffic between node and pod depends on it: everything but a route that is
    /// right except for the protocol that marks it ours.
    pub fn breaks_traffic(&self) -> bool {
        !matches!(self.problem, Problem::Unmarked { .. })
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let object = &self.object;
        match &self.problem {
            Problem::Missing => match object {
                Object::Master(name) => write!(f, "master {name} does not exist"),
                o if o.is_device() => write!(f, "{o} does not exist {}", o.place()),
                o => write!(f, "{o} is missing"),
            },
            Problem::Foreign(why) => write!(f, "{object}: the interface {why}"),
            Problem::Down => write!(f, "{object} {} is down", object.place()),
            Problem::Mac { actual, wanted } => write!(
                f,
                "{object} has MAC {}, not {wanted}",
                actual.map(|m| m.to_string()).unwrap_or_default()
            ),
            Problem::Mtu { actual, wanted } => {
                write!(f, "{object} has MTU {actual}, not {wanted}")
            }
            Problem::Unhardened {
                sysctl,
                value,
                wanted,
            } => write!(
                f,
                "{object} is not hardened: {sysctl} is {value}, not {wanted}"
            ),
            Problem::LinkLocal(address) => write!(
                f,
                "{object} has link-local address {address}: it would speak on the LAN"
            ),
            Problem::Source { actual, wanted } => write!(
                f,
                "{object} has source {}, not the node's {wanted}",
                actual
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "none".into())
            ),
            Problem::Unmarked { protocol } => write!(
                f,
                "{object} has protocol {protocol}, not macvlan-host's (written by an earlier version)"
            ),
            Problem::Stale => match object {
                Object::FormerNodeAddress(ip) => write!(
                    f,
                    "the pod still has a neighbour entry for {ip}, no longer an address of the node"
                ),
                o => write!(f, "{o} is stale"),
            },
        }
    }
}

/// What `ensure` did to an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Created,
    /// A stale device of this attachment (half a veth pair) was made again.
    Replaced,
    BroughtUp,
    SetMac {
        from: Option<Mac>,
        to: Mac,
    },
    SetMtu {
        from: u32,
        to: u32,
    },
    /// The shim's hardening sysctls that differed, written.
    Hardened(Vec<String>),
    RemovedLinkLocal(IpNetwork),
    /// Entries that must not exist any more, removed.
    Removed,
    /// A route or neighbour entry that verify had found missing or wrong, written again.
    Restored(Problem),
}

/// Something `ensure` changed because it was missing or wrong. An empty list from a second run
/// means nothing had drifted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    pub object: Object,
    pub action: Action,
}

impl Repair {
    pub fn new(object: Object, action: Action) -> Repair {
        Repair { object, action }
    }

    /// A device was made or remade: what hung on the old one (routes, neighbour entries) is
    /// gone with it.
    pub fn remade_device(&self) -> bool {
        self.object.is_device() && matches!(self.action, Action::Created | Action::Replaced)
    }

    /// The shim whose change concerns every pod on it: made again (their node routes and
    /// neighbour entries went with the old one) or given a new MAC (their neighbour entries
    /// for the node name the old one).
    pub fn changed_shared_shim(&self) -> Option<&str> {
        let concerns_users = matches!(
            self.action,
            Action::Created | Action::Replaced | Action::SetMac { .. }
        );
        self.object.shim().filter(|_| concerns_users)
    }
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let object = &self.object;
        match &self.action {
            Action::Created => write!(f, "created {object}"),
            Action::Replaced => write!(f, "replaced {object}"),
            Action::BroughtUp => write!(f, "brought {object} up"),
            Action::SetMac { from, to } => write!(
                f,
                "set the MAC of {object} to {to} (it was {})",
                from.map(|m| m.to_string()).unwrap_or_default()
            ),
            Action::SetMtu { from, to } => {
                write!(f, "set the MTU of {object} to {to} (it was {from})")
            }
            Action::Hardened(settings) => {
                write!(f, "hardened {object}: set {}", settings.join(", "))
            }
            Action::RemovedLinkLocal(address) => {
                write!(f, "removed link-local address {address} from {object}")
            }
            Action::Removed => match object {
                Object::FormerNodeAddress(ip) => write!(
                    f,
                    "removed the pod's entries for {ip}, no longer an address of the node"
                ),
                o => write!(f, "removed {o}"),
            },
            Action::Restored(problem) => write!(
                f,
                "restored: {}",
                Drift::new(object.clone(), problem.clone())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, last])
    }

    #[test]
    fn a_shim_made_again_or_given_a_new_mac_concerns_its_users() {
        let shim = || Object::Shim("mvh-eth0".into());
        for action in [
            Action::Created,
            Action::Replaced,
            Action::SetMac {
                from: Some(mac(1)),
                to: mac(2),
            },
        ] {
            assert_eq!(
                Repair::new(shim(), action).changed_shared_shim(),
                Some("mvh-eth0")
            );
        }
        for action in [
            Action::BroughtUp,
            Action::SetMtu {
                from: 1500,
                to: 9000,
            },
            Action::Hardened(vec!["arp_ignore=8".into()]),
        ] {
            assert_eq!(Repair::new(shim(), action).changed_shared_shim(), None);
        }
        // A veth is the pod's own: nobody else is concerned.
        let pair = Object::VethPair {
            node_end: "mvh0".into(),
            pod_end: "host-eth0".into(),
        };
        let veth = Repair::new(pair, Action::Created);
        assert_eq!(veth.changed_shared_shim(), None);
        assert!(veth.remade_device());
    }

    #[test]
    fn restoring_a_route_is_not_remaking_a_device() {
        let route = Repair::new(
            Object::NodeRoute("10.0.0.5".parse().unwrap()),
            Action::Restored(Problem::Missing),
        );
        assert!(!route.remade_device());
        assert_eq!(route.changed_shared_shim(), None);
    }

    #[test]
    fn device_level_drift_is_the_devices_and_stale_entries() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        assert!(Drift::new(Object::Shim("s".into()), Problem::Down).is_device_level());
        assert!(Drift::new(Object::FormerNodeAddress(ip), Problem::Stale).is_device_level());
        assert!(!Drift::new(Object::NodeRoute(ip), Problem::Missing).is_device_level());
        let neighbour = Object::PodNeighbour { ip, mac: mac(1) };
        assert!(!Drift::new(neighbour, Problem::Missing).is_device_level());
    }

    #[test]
    fn only_an_unmarked_route_leaves_traffic_working() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        assert!(
            !Drift::new(Object::NodeRoute(ip), Problem::Unmarked { protocol: 3 }).breaks_traffic()
        );
        assert!(Drift::new(Object::NodeRoute(ip), Problem::Missing).breaks_traffic());
        assert!(Drift::new(
            Object::Shim("s".into()),
            Problem::Mtu {
                actual: 1500,
                wanted: 9000
            }
        )
        .breaks_traffic());
    }

    #[test]
    fn messages_name_the_piece_as_operators_and_tests_read_them() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let cases = [
            (
                Drift::new(Object::Shim("mvh-eth0".into()), Problem::Missing),
                "shim mvh-eth0 does not exist on the node",
            ),
            (
                Drift::new(Object::VethPodEnd("host-eth0".into()), Problem::Down),
                "veth host-eth0 in the pod is down",
            ),
            (
                Drift::new(Object::NodeRoute(ip), Problem::Missing),
                "the node's route to pod address 10.0.0.5 is missing",
            ),
            (
                Drift::new(Object::NodeNeighbour { ip, mac: mac(7) }, Problem::Missing),
                "the node's permanent neighbour entry 10.0.0.5 -> 02:00:00:00:00:07 is missing",
            ),
            (
                Drift::new(Object::Master("eth0".into()), Problem::Missing),
                "master eth0 does not exist",
            ),
        ];
        for (drift, text) in cases {
            assert_eq!(drift.to_string(), text);
        }
    }
}
