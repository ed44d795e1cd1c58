//! The host path: how the node reaches one pod. Two implementations, the shared shim
//! (`shim::ShimPath`) and the per-pod veth (`veth::VethPath`); this is the only place that
//! chooses between them. Each has four verbs:
//!
//! - **plan**: the host side's names and MACs, decided before anything is touched;
//! - **ensure**: make the devices true, from whatever state an earlier run left (idempotent);
//! - **verify**: report what is missing or wrong, as data;
//! - **release**: under the node lock, give up the devices; what must be deleted after the
//!   lock is returned.
//!
//! What both share (node routes, neighbour entries, records) is `host_access`.

use std::fmt;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::node::Node;
use super::plan::{PodInterface, Settings};
use super::pod::Pod;
use super::unrecorded::{self, Clues, Learned};
use super::{shim, veth};
use crate::protocol::result::Interface;
use crate::protocol::{CniError, CniResult, ErrorList, HostAccess};
use crate::system::netlink::Link;
use crate::system::state::{AttachmentKey, HostSide, Record, StateStore};
use crate::system::Mac;

/// What planning one host side decided.
pub struct SidePlan {
    pub side: HostSide,
    pub host_mac: Mac,
    /// The MAC the node's neighbour entries for the pod point at.
    pub pod_mac: Mac,
    /// Addresses of the host device itself (`shimAddresses`): preferred route sources.
    pub own_addresses: Vec<IpNetwork>,
}

/// The devices that carry the path, as ensure or verify found them.
pub struct Devices {
    /// The host device's index in the node.
    pub host: u32,
    /// The pod's device of the path (the pod's macvlan, or the veth's pod end), when reached.
    pub pod: Option<PodDevice>,
}

pub struct PodDevice {
    pub index: u32,
    pub name: String,
}

pub trait HostPath {
    /// The host device's name in the node.
    fn host_name(&self) -> &str;

    /// The host device as the CNI result reports it: only a device that is the pod's own (a
    /// veth's node end); a shared shim is not the pod's.
    fn result_interface(&self) -> Option<Interface>;

    /// Makes the devices true: creates what is missing, repairs what drifted, each repair
    /// noted in `repairs`. Runs under the node lock. Bookkeeping that must exist before a
    /// device does (a shim's user marker) is written here, after the device is known to be
    /// ours or absent, and before it is created. `pod_index` is the pod's interface when the
    /// caller knows it already. Without `pod`, only the node's side is made (the shim's; a
    /// veth pair needs both ends).
    #[allow(clippy::too_many_arguments)]
    fn ensure(
        &self,
        node: &Node,
        store: &StateStore,
        key: &AttachmentKey,
        master: &Link,
        pod: Option<&Pod>,
        pod_index: Option<u32>,
        repairs: &mut Vec<Repair>,
    ) -> CniResult<Devices>;

    /// Notes in `drift` what is missing or wrong with the devices; None when the host device
    /// is not there to check further.
    fn verify(
        &self,
        node: &Node,
        master: Option<&Link>,
        pod: Option<&Pod>,
        drift: &mut Vec<Drift>,
    ) -> CniResult<Option<Devices>>;

    /// Whether the pod needs a route to node address `ip`: through a veth every node address
    /// does; through the shim only those outside the pod's own prefixes (the others are
    /// on-link already).
    fn routes_node_address(&self, on_link: bool) -> bool;

    /// Under the node lock, after the routes are gone: gives up the device. Returns a link to
    /// delete once the lock is released (deleting a link waits for an RCU grace period, and a
    /// pod's own veth is no shared state).
    fn release(
        &self,
        node: &Node,
        store: &StateStore,
        key: &AttachmentKey,
        host_link: Option<Link>,
        errors: &mut ErrorList,
    ) -> Option<Link>;
}

/// Plans the host side the configuration asks for.
pub fn plan_side(
    settings: &Settings,
    key: &AttachmentKey,
    master: &Link,
    pod_if: &PodInterface,
) -> CniResult<SidePlan> {
    match settings.host_access {
        HostAccess::Shim => shim::plan(settings, master, pod_if),
        HostAccess::Veth => Ok(veth::plan(settings, key, &pod_if.ifname)),
        HostAccess::None => Err(CniError::internal(
            "host access planned with hostAccess none",
        )),
    }
}

/// The implementation of the record's host side.
pub fn of(record: &Record) -> Box<dyn HostPath + '_> {
    match &record.host_side {
        HostSide::Shim { name } => Box::new(shim::ShimPath::new(name, record)),
        HostSide::Veth { name, pod_end } => Box::new(veth::VethPath::new(name, pod_end, record)),
    }
}

/// Something `ensure` changed because it was missing or wrong. An empty list from a second run
/// means nothing had drifted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repair {
    Created(String),
    /// A shim's hardening was rewritten: the sysctls that differed.
    Hardened {
        shim: String,
        settings: Vec<String>,
    },
    RemovedLinkLocal {
        shim: String,
        address: IpNetwork,
    },
    BroughtUp(String),
    /// A stale device of this attachment was replaced.
    Replaced(String),
    /// The pod's entries for a node address that is no longer the node's.
    ForgotNodeAddress(IpAddr),
    /// A route or neighbour entry that verify had found missing or wrong, written again.
    Restored(Drift),
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repair::Created(what) => write!(f, "created {what}"),
            Repair::Hardened { shim, settings } => {
                write!(f, "hardened shim {shim}: set {}", settings.join(", "))
            }
            Repair::RemovedLinkLocal { shim, address } => {
                write!(f, "removed link-local address {address} from shim {shim}")
            }
            Repair::BroughtUp(name) => write!(f, "brought {name} up"),
            Repair::Replaced(what) => write!(f, "replaced {what}"),
            Repair::ForgotNodeAddress(ip) => write!(
                f,
                "removed the pod's entries for {ip}, no longer an address of the node"
            ),
            Repair::Restored(drift) => write!(f, "restored: {drift}"),
        }
    }
}

/// Something missing or wrong in an attachment's host side. CHECK fails with all of them;
/// the messages name the piece (device, address, MAC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    MasterMissing(String),
    /// "shim mvh-eth0" / "veth mvh0123..."
    DeviceMissing {
        device: String,
        place: &'static str,
    },
    /// The interface with the device's name is not ours (kind, master, mode or MAC).
    DeviceForeign {
        device: String,
        why: String,
    },
    DeviceDown {
        device: String,
        place: &'static str,
    },
    ShimUnhardened {
        shim: String,
        sysctl: String,
        value: String,
        wanted: String,
    },
    ShimLinkLocal {
        shim: String,
        address: IpNetwork,
    },
    NodeRouteMissing(IpAddr),
    NodeRouteSource {
        ip: IpAddr,
        source: Option<IpAddr>,
        wanted: IpAddr,
    },
    NodeNeighbourMissing {
        ip: IpAddr,
        mac: Mac,
    },
    PodNeighbourMissing {
        ip: IpAddr,
        mac: Mac,
    },
    PodRouteMissing(IpNetwork),
    /// The pod still has entries for an address the node no longer has (renumbered node).
    StaleNodeAddress(IpAddr),
}

impl Drift {
    /// Whether `ensure`'s own device checks repair it (and report it themselves).
    pub fn is_device_level(&self) -> bool {
        matches!(
            self,
            Drift::MasterMissing(_)
                | Drift::DeviceMissing { .. }
                | Drift::DeviceForeign { .. }
                | Drift::DeviceDown { .. }
                | Drift::ShimUnhardened { .. }
                | Drift::ShimLinkLocal { .. }
                | Drift::StaleNodeAddress(_)
        )
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::MasterMissing(name) => write!(f, "master {name} does not exist"),
            Drift::DeviceMissing { device, place } => {
                write!(f, "{device} does not exist {place}")
            }
            Drift::DeviceForeign { device, why } => write!(f, "{device}: {why}"),
            Drift::DeviceDown { device, place } => write!(f, "{device} {place} is down"),
            Drift::ShimUnhardened {
                shim,
                sysctl,
                value,
                wanted,
            } => write!(
                f,
                "shim {shim} is not hardened: {sysctl} is {value}, not {wanted}"
            ),
            Drift::ShimLinkLocal { shim, address } => write!(
                f,
                "shim {shim} has link-local address {address}: it would speak on the LAN"
            ),
            Drift::NodeRouteMissing(ip) => {
                write!(f, "the node's route to pod address {ip} is missing")
            }
            Drift::NodeRouteSource { ip, source, wanted } => write!(
                f,
                "the node's route to pod address {ip} has source {}, not the node's {wanted}",
                source
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "none".into())
            ),
            Drift::NodeNeighbourMissing { ip, mac } => write!(
                f,
                "the node's permanent neighbour entry {ip} -> {mac} is missing"
            ),
            Drift::PodNeighbourMissing { ip, mac } => write!(
                f,
                "the pod's permanent neighbour entry for node address {ip} -> {mac} is missing"
            ),
            Drift::PodRouteMissing(dst) => write!(f, "the pod's route to {dst} is missing"),
            Drift::StaleNodeAddress(ip) => write!(
                f,
                "the pod still has a neighbour entry for {ip}, no longer an address of the node"
            ),
        }
    }
}

/// DEL without a record: the host device that belongs to this attachment alone, found by its
/// derived name (a veth's node end; the shim is shared, and GC looks after it).
pub fn orphan_host_end(
    node: &Node,
    key: &AttachmentKey,
    host_access: HostAccess,
) -> CniResult<Option<Link>> {
    match host_access {
        HostAccess::Veth => veth::find_host_end(node, key),
        HostAccess::Shim | HostAccess::None => Ok(None),
    }
}

/// DEL without a record: what a shim attachment's pod and shim were, learned from prevResult
/// or the pod (`unrecorded`). A veth needs nothing learned: its node end has a derived name.
pub fn learn_unrecorded(
    node: &Node,
    host_access: HostAccess,
    clues: &Clues,
) -> Option<Box<(Learned, (String, Link))>> {
    match host_access {
        HostAccess::Shim => unrecorded::learn(node, clues).map(Box::new),
        HostAccess::Veth | HostAccess::None => None,
    }
}
