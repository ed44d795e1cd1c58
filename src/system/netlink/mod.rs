//! A small synchronous netlink API: links, addresses, routes and neighbours.
//!
//! Each `Netlink` owns one blocking NETLINK_ROUTE socket (`socket.rs`); every method sends one
//! request and returns when the kernel has answered. Messages are built and parsed with
//! `netlink-packet-route`, one file per kind of object. The socket is created by a thread
//! inside the target namespace (`Netns::run`), and a netlink socket stays bound to the
//! namespace it was created in, so afterwards the calling thread can use it without switching
//! namespaces.
//!
//! Methods never dump a table the size of which grows with the number of pods on the node
//! unless their name says so (`routes`, `neighbours`, `all_addresses`): ADD and DEL must stay
//! O(1).

mod address;
mod link;
mod neighbour;
mod route;
mod socket;

use std::io;
use std::net::IpAddr;
use std::os::fd::BorrowedFd;

use ipnetwork::IpNetwork;
pub use netlink_packet_route::link::{Inet6DevConf, InetDevConf};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use self::socket::{Failure, RouteSocket};
use super::netns::Netns;
use super::{Mac, SysError, SysResult};

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
    /// Packets sent now leave the device: carrier (IFF_LOWER_UP), operstate up, and a queue
    /// other than `noop`. The kernel's link watcher activates the queue some time after
    /// carrier comes on; until then every packet is dropped.
    pub passes_traffic: bool,
    /// The link's IPv4 configuration (`net/ipv4/conf/<link>/*`), from IFLA_AF_SPEC.
    pub ipv4_conf: Option<InetDevConf>,
    /// The link's IPv6 configuration (`net/ipv6/conf/<link>/*`), from IFLA_AF_SPEC.
    pub ipv6_conf: Option<Inet6DevConf>,
}

/// A new macvlan. With `netns_fd` the kernel creates it directly inside that namespace while
/// its master (`master_index`, an index in the namespace of this connection) stays here.
#[derive(Clone, Debug)]
pub struct MacvlanSpec<'fd> {
    pub name: String,
    pub master_index: u32,
    pub mode: MacvlanMode,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub netns_fd: Option<BorrowedFd<'fd>>,
    /// IFLA_GROUP: links of one group are deleted in one request (`delete_link_group`).
    pub group: Option<u32>,
}

/// A new veth pair: `name` here, `peer_name` inside the namespace `peer_netns_fd` (or here).
#[derive(Clone, Debug)]
pub struct VethSpec<'fd> {
    pub name: String,
    pub mac: Option<Mac>,
    pub peer_name: String,
    pub peer_mac: Option<Mac>,
    pub peer_netns_fd: Option<BorrowedFd<'fd>>,
    /// IFLA_GROUP of the peer.
    pub peer_group: Option<u32>,
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
    /// None when adding: the default route of the gateway's family. Dumps report a default
    /// route as 0.0.0.0/0 or ::/0, since it may have no gateway (`default dev ppp0`).
    pub destination: Option<IpNetwork>,
    pub gateway: Option<IpAddr>,
    pub output_index: Option<u32>,
    pub source: Option<IpAddr>,
    pub metric: Option<u32>,
    /// RTNH_F_ONLINK: the gateway is reachable on the link even without a covering prefix.
    pub onlink: bool,
    /// RT_SCOPE_LINK for a route without gateway; universe otherwise.
    pub scope_link: bool,
    /// rtm_protocol: who wrote the route (`ip route show proto N`). 0 (unspec) when adding
    /// means `boot`, as with `ip route add`; when deleting, any protocol.
    pub protocol: u8,
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
    socket: RouteSocket,
    /// Where the socket lives, for error messages: "network namespace /run/netns/x" or
    /// "the node namespace".
    label: String,
}

impl Netlink {
    /// A connection in the calling thread's namespace.
    pub fn open() -> SysResult<Netlink> {
        Netlink::with_label("the node namespace".to_string())
    }

    /// A connection bound to `ns` (the socket is created by a thread inside it). The
    /// namespace is only borrowed: the socket keeps it alive on its own.
    pub fn open_in(ns: &Netns) -> SysResult<Netlink> {
        let label = format!("network namespace {}", ns.path().display());
        ns.run(|| Netlink::with_label(label))?
    }

    fn with_label(label: String) -> SysResult<Netlink> {
        let socket = RouteSocket::open()
            .map_err(|e| SysError::io(format!("cannot open a netlink socket in {label}"), e))?;
        Ok(Netlink { socket, label })
    }

    /// Sends one request and collects every reply; a NACK becomes an error that carries the
    /// kernel's errno, `context` and where this connection lives.
    fn execute(
        &self,
        message: RouteNetlinkMessage,
        flags: u16,
        context: &str,
    ) -> SysResult<Vec<RouteNetlinkMessage>> {
        self.socket
            .request(message, flags)
            .map_err(|failure| match failure {
                Failure::Kernel(errno) => self.fail(context, errno),
                Failure::Io(e) => SysError::io(format!("{context} in {}", self.label), e),
                Failure::Protocol(message) => SysError::Netlink {
                    context: format!("{context} in {}", self.label),
                    errno: None,
                    message,
                },
            })
    }

    /// The error for a request the kernel refused with `errno`.
    fn fail(&self, context: &str, errno: i32) -> SysError {
        SysError::Netlink {
            context: format!("{context} in {}", self.label),
            errno: Some(errno),
            message: io::Error::from_raw_os_error(errno).to_string(),
        }
    }
}

/// Ok(false) for the errors that mean "there was nothing to delete".
fn found(result: SysResult<Vec<RouteNetlinkMessage>>) -> SysResult<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

fn family_of(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// What the tests of every object share: fixed MACs, parsing shorthands, a veth pair.
#[cfg(test)]
mod test_support {
    use std::net::IpAddr;

    use ipnetwork::IpNetwork;

    use super::{Netlink, VethSpec};
    use crate::system::Mac;

    pub(super) fn mac(last: u8) -> Mac {
        Mac([0x02, 0x00, 0x5e, 0x10, 0x00, last])
    }

    pub(super) fn net(text: &str) -> IpNetwork {
        text.parse().unwrap()
    }

    pub(super) fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A veth pair `a`/`b` with both ends inside `temp`, both up (so that the link has a
    /// carrier). Returns the indexes of `a` and `b`.
    pub(super) fn veth_pair_up(netlink: &Netlink) -> (u32, u32) {
        netlink
            .create_veth(&VethSpec {
                name: "a".into(),
                mac: Some(mac(0xa)),
                peer_name: "b".into(),
                peer_mac: Some(mac(0xb)),
                peer_netns_fd: None,
                peer_group: None,
                mtu: None,
            })
            .unwrap();
        let a = netlink.link_by_name("a").unwrap().unwrap().index;
        let b = netlink.link_by_name("b").unwrap().unwrap().index;
        netlink.set_link_up(a).unwrap();
        netlink.set_link_up(b).unwrap();
        (a, b)
    }
}
