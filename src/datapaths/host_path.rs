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

use ipnetwork::IpNetwork;

use super::node::Node;
use super::objects::{Drift, Repair};
use super::pod::Pod;
use super::shim::unrecorded::{self, Clues};
use super::{shim, veth};
use crate::error::{Context, Error, ErrorList, Result};
use crate::protocol::result::Interface;
use crate::protocol::HostAccess;
use crate::system::netlink::{Link, MacvlanMode};
use crate::system::state::{AttachmentKey, Record, RecordedPath, StateStore};
use crate::system::Mac;

/// The values of the configuration that host access needs: the datapaths never see the
/// whole configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub host_access: HostAccess,
    pub shim_name: Option<String>,
    pub shim_addresses: Vec<IpNetwork>,
    pub veth_name: Option<String>,
    pub host_routes: Vec<IpNetwork>,
}

/// The pod's interface as the mode that made it knows it.
#[derive(Clone, Debug)]
pub struct PodInterface {
    pub ifname: String,
    pub index: u32,
    pub mac: Mac,
    pub mtu: u32,
    pub macvlan_mode: Option<MacvlanMode>,
    pub addresses: Vec<IpNetwork>,
    /// The interface's link group when this plugin made it (interface mode): a veth's pod end
    /// joins it, so DEL removes both with one request.
    pub link_group: Option<u32>,
}

/// What planning one host side decided.
pub struct SidePlan {
    pub side: RecordedPath,
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

/// Where a host path works: the node and its master, the pod, the attachment. One value,
/// so that each implementation takes what it needs and a new one needs no new parameter.
pub struct Site<'a> {
    pub node: &'a Node,
    pub store: &'a StateStore,
    pub key: &'a AttachmentKey,
    pub master: &'a Link,
    /// None: the node's side only (the pod's namespace is not at hand, or not there yet:
    /// Docker's Join).
    pub pod: Option<&'a Pod>,
    /// The name of the pod's interface host access reaches (`Record::pod_interface_name`).
    pub pod_ifname: &'a str,
    /// The pod's interface when the caller knows it already (ADD made or found it).
    pub pod_link: Option<PodLink>,
}

/// The pod's interface (its macvlan) as the host path needs it.
#[derive(Clone, Copy, Debug)]
pub struct PodLink {
    pub index: u32,
    /// A veth pair follows it: jumbo frames from the LAN fit through the node's path too.
    pub mtu: u32,
}

impl Site<'_> {
    /// The pod's interface: known already, or looked up by name; None when the pod has none.
    pub fn pod_link(&self) -> Result<Option<PodLink>> {
        if let Some(link) = self.pod_link {
            return Ok(Some(link));
        }
        let Some(pod) = self.pod else {
            return Ok(None);
        };
        Ok(pod
            .netlink
            .link_by_name(self.pod_ifname)
            .context("looking up the pod's interface")?
            .map(|l| PodLink {
                index: l.index,
                mtu: l.mtu,
            }))
    }
}

/// What a teardown needs: the node, the state directory, the attachment.
pub struct Teardown<'a> {
    pub node: &'a Node,
    pub store: &'a StateStore,
    pub key: &'a AttachmentKey,
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
    /// ours or absent, and before it is created.
    fn ensure(&self, site: &Site, repairs: &mut Vec<Repair>) -> Result<Devices>;

    /// Notes in `drift` what is missing or wrong with the devices; None when the host device
    /// is not there to check further.
    fn verify(&self, site: &Site, drift: &mut Vec<Drift>) -> Result<Option<Devices>>;

    /// Whether the pod needs a route to node address `ip`: through a veth every node address
    /// does; through the shim only those outside the pod's own prefixes (the others are
    /// on-link already).
    fn routes_node_address(&self, on_link: bool) -> bool;

    /// Under the node lock, after the routes are gone: gives up the device. Returns a link to
    /// delete once the lock is released (deleting a link waits for an RCU grace period, and a
    /// pod's own veth is no shared state).
    fn release(
        &self,
        teardown: &Teardown,
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
) -> Result<SidePlan> {
    match settings.host_access {
        HostAccess::Shim => shim::plan(settings, master, pod_if),
        HostAccess::Veth => Ok(veth::plan(settings, key, &pod_if.ifname)),
        HostAccess::None => Err(Error::internal("host access planned with hostAccess none")),
    }
}

/// The implementation of the record's host side.
pub fn of(record: &Record) -> Box<dyn HostPath + '_> {
    match &record.path {
        RecordedPath::Shim { name } => Box::new(shim::ShimPath::new(name, record)),
        RecordedPath::Veth { name, pod_end } => {
            Box::new(veth::VethPath::new(name, pod_end, record))
        }
    }
}

/// DEL without a record: the host side the configuration names, with what could be learned
/// of it. The choice is made once, here (`unrecorded`), from the configured host access.
pub enum Unrecorded {
    /// `hostAccess: "none"`: nothing of the attachment's on the node.
    Nothing,
    /// A shim attachment, with its pod and the shim it would have used when they could be
    /// learned (from prevResult or the pod: `shim::unrecorded`). Boxed: a `Link` carries the
    /// link's whole IPv4/IPv6 configuration.
    Shim(Option<Box<unrecorded::Found>>),
    /// A veth attachment: its node end has a derived name; nothing needs learning.
    Veth,
}

/// What DEL without a record can know of the host side, learned while the pod still exists.
pub fn unrecorded(node: &Node, host_access: HostAccess, clues: &Clues) -> Unrecorded {
    match host_access {
        HostAccess::Shim => Unrecorded::Shim(unrecorded::learn(node, clues).map(Box::new)),
        HostAccess::Veth => Unrecorded::Veth,
        HostAccess::None => Unrecorded::Nothing,
    }
}

impl Unrecorded {
    /// Under its own node lock, before the route owners are cleared (they are asked): a shim
    /// attachment's routes and neighbour entries that are provably its own, and the shim when
    /// nothing routes through it any more.
    pub fn release_learned(
        &self,
        node: &Node,
        store: &StateStore,
        key: &AttachmentKey,
    ) -> ErrorList {
        match self {
            Unrecorded::Shim(Some(found)) => unrecorded::release(node, store, key, found),
            Unrecorded::Shim(None) | Unrecorded::Veth | Unrecorded::Nothing => ErrorList::new(),
        }
    }

    /// The host device that belongs to this attachment alone, found by its derived name (a
    /// veth's node end; the shim is shared, and GC looks after it).
    pub fn orphan_host_end(&self, node: &Node, key: &AttachmentKey) -> Result<Option<Link>> {
        match self {
            Unrecorded::Veth => veth::find_host_end(node, key),
            Unrecorded::Shim(_) | Unrecorded::Nothing => Ok(None),
        }
    }
}
