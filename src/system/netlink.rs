//! A small synchronous netlink API over `rtnetlink`.
//!
//! Each `Netlink` owns a current-thread tokio runtime and one rtnetlink connection; every
//! method blocks until the kernel has answered. The socket is created by a thread inside the
//! target namespace (`Netns::run`), and a netlink socket stays bound to the namespace it was
//! created in, so afterwards the calling thread can use it without switching namespaces.
//!
//! Methods never dump a table the size of which grows with the number of pods on the node
//! unless their name says so (`routes`, `neighbours`): ADD and DEL must stay O(1).

use std::net::IpAddr;
use std::os::fd::RawFd;

use ipnetwork::IpNetwork;

use super::netns::Netns;
use super::{Mac, SysResult};

/// The macvlan modes, as the kernel names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacvlanMode {
    Private,
    Vepa,
    Bridge,
    Passthru,
    Source,
}

/// What the plugin needs to know about a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<Mac>,
    pub mtu: u32,
    /// IFF_UP is set.
    pub up: bool,
    /// IFLA_INFO_KIND, e.g. "macvlan", "veth", "bridge"; None for a physical device.
    pub kind: Option<String>,
    /// For a macvlan: its mode.
    pub macvlan_mode: Option<MacvlanMode>,
    /// IFLA_LINK: the parent (macvlan master) or the veth peer, as an index in the
    /// namespace given by `link_netnsid` (or this namespace when that is None).
    pub parent_index: Option<u32>,
    /// IFLA_LINK_NETNSID, present when the parent/peer lives in another namespace.
    pub link_netnsid: Option<i32>,
}

/// A new macvlan. With `netns_fd` the kernel creates it directly inside that namespace while
/// its master (`master_index`, an index in the namespace of this connection) stays here.
#[derive(Clone, Debug)]
pub struct MacvlanSpec {
    pub name: String,
    pub master_index: u32,
    pub mode: MacvlanMode,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub netns_fd: Option<RawFd>,
}

/// A new veth pair: `name` here, `peer_name` inside the namespace `peer_netns_fd` (or here).
#[derive(Clone, Debug)]
pub struct VethSpec {
    pub name: String,
    pub mac: Option<Mac>,
    pub peer_name: String,
    pub peer_mac: Option<Mac>,
    pub peer_netns_fd: Option<RawFd>,
    pub mtu: Option<u32>,
}

/// An address on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub network: IpNetwork,
    /// IFA_F_TENTATIVE: IPv6 duplicate address detection has not finished.
    pub tentative: bool,
    /// IFA_F_DADFAILED.
    pub dad_failed: bool,
    /// RT_SCOPE_* (0 universe, 253 link, 254 host).
    pub scope: u8,
}

/// A route in the main table. Fields that are None are left out of the request.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Route {
    pub destination: Option<IpNetwork>, // None: the default route of the gateway's family
    pub gateway: Option<IpAddr>,
    pub output_index: Option<u32>,
    pub source: Option<IpAddr>,
    pub metric: Option<u32>,
    /// RTNH_F_ONLINK: the gateway is reachable on the link even without a covering prefix.
    pub onlink: bool,
    /// RT_SCOPE_LINK for a route without gateway; universe otherwise.
    pub scope_link: bool,
}

/// A neighbour (ARP / NDP) entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub index: u32,
    pub address: IpAddr,
    pub mac: Option<Mac>,
    /// NUD_PERMANENT.
    pub permanent: bool,
}

pub struct Netlink {
    // runtime + rtnetlink::Handle (+ a label for error messages: the namespace path)
}

impl Netlink {
    /// A connection in the calling thread's namespace.
    pub fn open() -> SysResult<Netlink> {
        todo!()
    }

    /// A connection bound to `ns` (the socket is created by a thread inside it).
    pub fn open_in(ns: &Netns) -> SysResult<Netlink> {
        todo!("{:?}", ns.path())
    }

    pub fn link_by_name(&self, name: &str) -> SysResult<Option<Link>> {
        todo!("{name}")
    }

    pub fn link_by_index(&self, index: u32) -> SysResult<Option<Link>> {
        todo!("{index}")
    }

    pub fn create_macvlan(&self, spec: &MacvlanSpec) -> SysResult<()> {
        todo!("{spec:?}")
    }

    pub fn create_veth(&self, spec: &VethSpec) -> SysResult<()> {
        todo!("{spec:?}")
    }

    pub fn rename_link(&self, index: u32, new_name: &str) -> SysResult<()> {
        todo!("{index} {new_name}")
    }

    pub fn set_link_up(&self, index: u32) -> SysResult<()> {
        todo!("{index}")
    }

    /// Deletes a link; Ok(false) when it did not exist.
    pub fn delete_link(&self, index: u32) -> SysResult<bool> {
        todo!("{index}")
    }

    /// Adds an address; an address that is already there is not an error. IPv6 addresses may
    /// be added with IFA_F_NODAD when `nodad` is set.
    pub fn add_address(&self, index: u32, network: IpNetwork, nodad: bool) -> SysResult<()> {
        todo!("{index} {network} {nodad}")
    }

    /// The addresses of one link (filtered by the kernel where it can).
    pub fn addresses(&self, index: u32) -> SysResult<Vec<Address>> {
        todo!("{index}")
    }

    /// Every address in the namespace (a dump).
    pub fn all_addresses(&self) -> SysResult<Vec<Address>> {
        todo!()
    }

    /// Adds a route; replaces one with the same destination and metric when `replace` is set,
    /// otherwise an existing route is an error (EEXIST).
    pub fn add_route(&self, route: &Route, replace: bool) -> SysResult<()> {
        todo!("{route:?} {replace}")
    }

    /// Deletes exactly this route; Ok(false) when it did not exist.
    pub fn delete_route(&self, route: &Route) -> SysResult<bool> {
        todo!("{route:?}")
    }

    /// Every route of the main table of both families (a dump).
    pub fn routes(&self) -> SysResult<Vec<Route>> {
        todo!()
    }

    /// Adds or replaces a permanent neighbour entry.
    pub fn set_permanent_neighbour(&self, index: u32, address: IpAddr, mac: Mac) -> SysResult<()> {
        todo!("{index} {address} {mac}")
    }

    /// Deletes a neighbour entry; Ok(false) when it did not exist.
    pub fn delete_neighbour(&self, index: u32, address: IpAddr) -> SysResult<bool> {
        todo!("{index} {address}")
    }

    /// The neighbour entries of one link (a dump, filtered).
    pub fn neighbours(&self, index: u32) -> SysResult<Vec<Neighbour>> {
        todo!("{index}")
    }
}
