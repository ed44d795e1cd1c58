//! A small synchronous netlink API over `rtnetlink`.
//!
//! Each `Netlink` owns a current-thread tokio runtime and one rtnetlink connection; every
//! method blocks until the kernel has answered. The socket is created by a thread inside the
//! target namespace (`Netns::run`), and a netlink socket stays bound to the namespace it was
//! created in, so afterwards the calling thread can use it without switching namespaces.
//!
//! Methods never dump a table the size of which grows with the number of pods on the node
//! unless their name says so (`routes`, `neighbours`): ADD and DEL must stay O(1).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};

use futures::StreamExt;
use ipnetwork::{IpNetwork, Ipv4Network};
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    MacVlanMode as KernelMacvlanMode,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, TokioSocket};

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
    /// IFLA_GROUP: links of one group are deleted in one request (`delete_link_group`).
    pub group: Option<u32>,
}

/// A new veth pair: `name` here, `peer_name` inside the namespace `peer_netns_fd` (or here).
#[derive(Clone, Debug)]
pub struct VethSpec {
    pub name: String,
    pub mac: Option<Mac>,
    pub peer_name: String,
    pub peer_mac: Option<Mac>,
    pub peer_netns_fd: Option<RawFd>,
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
    handle: rtnetlink::Handle,
    // Runs the connection task (and so owns the socket); a current-thread runtime only makes
    // progress inside `block_on`, so nothing runs behind the caller's back.
    runtime: tokio::runtime::Runtime,
    /// Where the socket lives, for error messages: "network namespace /run/netns/x" or
    /// "the node namespace".
    label: String,
}

impl Netlink {
    /// A connection in the calling thread's namespace.
    pub fn open() -> SysResult<Netlink> {
        let label = "the node namespace".to_string();
        let socket = new_route_socket()
            .map_err(|e| SysError::io(format!("cannot open a netlink socket in {label}"), e))?;
        Netlink::from_socket(socket, label)
    }

    /// A connection bound to `ns` (the socket is created by a thread inside it).
    pub fn open_in(ns: &Netns) -> SysResult<Netlink> {
        let label = format!("network namespace {}", ns.path().display());
        let socket = ns
            .run(new_route_socket)?
            .map_err(|e| SysError::io(format!("cannot open a netlink socket in {label}"), e))?;
        Netlink::from_socket(socket, label)
    }

    fn from_socket(socket: Socket, label: String) -> SysResult<Netlink> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| {
                SysError::io(format!("cannot start the netlink runtime for {label}"), e)
            })?;
        // The tokio socket registers with the reactor of the runtime it is created in.
        let reactor = runtime.enter();
        // SAFETY: `into_raw_fd` hands over the only owner of a valid, open netlink socket, so
        // the TokioSocket becomes its sole owner and closes it exactly once. The socket is
        // already non-blocking (from_raw_fd would panic if it could not make it so).
        let socket = unsafe { TokioSocket::from_raw_fd(socket.into_raw_fd()) };
        let (connection, handle, _) = rtnetlink::from_socket(socket);
        runtime.spawn(connection);
        drop(reactor);
        Ok(Netlink {
            handle,
            runtime,
            label,
        })
    }

    pub fn link_by_name(&self, name: &str) -> SysResult<Option<Link>> {
        // No link can carry a name the kernel would refuse; answering "none" (rather than
        // ERANGE) keeps a DEL for something that could never have been created idempotent.
        if valid_link_name(name).is_err() {
            return Ok(None);
        }
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        self.get_link(message, &format!("cannot look up link {name}"))
    }

    pub fn link_by_index(&self, index: u32) -> SysResult<Option<Link>> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        self.get_link(message, &format!("cannot look up link index {index}"))
    }

    fn get_link(&self, message: LinkMessage, context: &str) -> SysResult<Option<Link>> {
        let answer = self.execute(RouteNetlinkMessage::GetLink(message), 0, context);
        let replies = match answer {
            Err(e) if e.errno() == Some(nix::libc::ENODEV) => return Ok(None),
            other => other?,
        };
        Ok(replies.into_iter().find_map(|reply| match reply {
            RouteNetlinkMessage::NewLink(link) => Some(parse_link(link)),
            _ => None,
        }))
    }

    pub fn create_macvlan(&self, spec: &MacvlanSpec) -> SysResult<()> {
        self.check_link_name(&spec.name, "cannot create macvlan")?;
        let mut message = LinkMessage::default();
        let attributes = &mut message.attributes;
        attributes.push(LinkAttribute::IfName(spec.name.clone()));
        attributes.push(LinkAttribute::Link(spec.master_index));
        if let Some(mtu) = spec.mtu {
            attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = spec.mac {
            attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        if let Some(fd) = spec.netns_fd {
            attributes.push(LinkAttribute::NetNsFd(fd));
        }
        if let Some(group) = spec.group {
            attributes.push(LinkAttribute::Group(group));
        }
        attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                spec.mode.to_kernel(),
            )])),
        ]));
        let target = match spec.netns_fd {
            Some(fd) => format!(" into the namespace of fd {fd}"),
            None => String::new(),
        };
        let context = format!(
            "cannot create macvlan {} ({:?} mode) on master link index {}{target}",
            spec.name, spec.mode, spec.master_index
        );
        self.execute(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &context,
        )
        .map(drop)
    }

    pub fn create_veth(&self, spec: &VethSpec) -> SysResult<()> {
        self.check_link_name(&spec.name, "cannot create veth")?;
        self.check_link_name(&spec.peer_name, "cannot create veth peer")?;
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer_name.clone()));
        if let Some(mac) = spec.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        if let Some(mtu) = spec.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(fd) = spec.peer_netns_fd {
            peer.attributes.push(LinkAttribute::NetNsFd(fd));
        }
        if let Some(group) = spec.peer_group {
            peer.attributes.push(LinkAttribute::Group(group));
        }
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(spec.name.clone()));
        if let Some(mac) = spec.mac {
            message
                .attributes
                .push(LinkAttribute::Address(mac.0.to_vec()));
        }
        if let Some(mtu) = spec.mtu {
            message.attributes.push(LinkAttribute::Mtu(mtu));
        }
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        let target = match spec.peer_netns_fd {
            Some(fd) => format!(" in the namespace of fd {fd}"),
            None => String::new(),
        };
        let context = format!(
            "cannot create veth {} with peer {}{target}",
            spec.name, spec.peer_name
        );
        self.execute(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &context,
        )
        .map(drop)
    }

    pub fn rename_link(&self, index: u32, new_name: &str) -> SysResult<()> {
        self.check_link_name(new_name, &format!("cannot rename link index {index}"))?;
        let mut message = LinkMessage::default();
        message.header.index = index;
        message
            .attributes
            .push(LinkAttribute::IfName(new_name.to_string()));
        let context = format!("cannot rename link index {index} to {new_name}");
        self.execute(RouteNetlinkMessage::SetLink(message), NLM_F_ACK, &context)
            .map(drop)
    }

    pub fn set_link_up(&self, index: u32) -> SysResult<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        let context = format!("cannot set link index {index} up");
        self.execute(RouteNetlinkMessage::SetLink(message), NLM_F_ACK, &context)
            .map(drop)
    }

    /// Deletes a link; Ok(false) when it did not exist.
    pub fn delete_link(&self, index: u32) -> SysResult<bool> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        let context = format!("cannot delete link index {index}");
        found(self.execute(RouteNetlinkMessage::DelLink(message), NLM_F_ACK, &context))
    }

    /// Deletes every link of `group` in one request. The kernel then waits for one RCU grace
    /// period for all of them, where deleting them one by one waits once per link.
    pub fn delete_link_group(&self, group: u32) -> SysResult<()> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::Group(group));
        let context = format!("cannot delete link group {group}");
        self.execute(RouteNetlinkMessage::DelLink(message), NLM_F_ACK, &context)
            .map(drop)
    }

    /// Adds an address; an address that is already there is not an error. IPv6 addresses may
    /// be added with IFA_F_NODAD when `nodad` is set.
    pub fn add_address(&self, index: u32, network: IpNetwork, nodad: bool) -> SysResult<()> {
        let mut message = AddressMessage::default();
        message.header.family = family_of(network.ip());
        message.header.prefix_len = network.prefix();
        message.header.index = index;
        message.header.scope = if network.ip().is_loopback() {
            AddressScope::Host
        } else {
            AddressScope::Universe
        };
        match network {
            IpNetwork::V4(v4) => {
                // As `ip addr add`: IFA_LOCAL is the address, IFA_ADDRESS the same address
                // (no peer), and a broadcast address where the prefix leaves room for one.
                let ip = IpAddr::V4(v4.ip());
                message.attributes.push(AddressAttribute::Local(ip));
                message.attributes.push(AddressAttribute::Address(ip));
                if let Some(broadcast) = broadcast_of(v4) {
                    message
                        .attributes
                        .push(AddressAttribute::Broadcast(broadcast));
                }
            }
            IpNetwork::V6(v6) => {
                message
                    .attributes
                    .push(AddressAttribute::Address(IpAddr::V6(v6.ip())));
                if nodad {
                    message.header.flags |= AddressHeaderFlags::Nodad;
                }
            }
        }
        let context = format!("cannot add address {network} to link index {index}");
        match self.execute(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &context,
        ) {
            Err(e) if e.is_exists() => Ok(()),
            other => other.map(drop),
        }
    }

    /// Deletes an address; Ok(false) when it was not there.
    pub fn delete_address(&self, index: u32, network: IpNetwork) -> SysResult<bool> {
        let mut message = AddressMessage::default();
        message.header.family = family_of(network.ip());
        message.header.prefix_len = network.prefix();
        message.header.index = index;
        let attribute = match network.ip() {
            ip @ IpAddr::V4(_) => AddressAttribute::Local(ip),
            ip @ IpAddr::V6(_) => AddressAttribute::Address(ip),
        };
        message.attributes.push(attribute);
        let context = format!("cannot delete address {network} from link index {index}");
        found(self.execute(
            RouteNetlinkMessage::DelAddress(message),
            NLM_F_ACK,
            &context,
        ))
    }

    /// The addresses of one link (filtered by the kernel where it can).
    pub fn addresses(&self, index: u32) -> SysResult<Vec<Address>> {
        let context = format!("cannot list the addresses of link index {index}");
        self.dump_addresses(index, &context)
    }

    /// Every address in the namespace (a dump).
    pub fn all_addresses(&self) -> SysResult<Vec<Address>> {
        self.dump_addresses(0, "cannot list addresses")
    }

    /// `index` 0 means every link.
    fn dump_addresses(&self, index: u32, context: &str) -> SysResult<Vec<Address>> {
        let mut message = AddressMessage::default();
        // With strict checking (set on every socket here) the kernel filters on the index.
        message.header.index = index;
        let replies = self.execute(
            RouteNetlinkMessage::GetAddress(message),
            NLM_F_DUMP,
            context,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewAddress(address) => parse_address(address),
                _ => None,
            })
            .filter(|address| index == 0 || address.index == index)
            .collect())
    }

    /// Adds a route; replaces one with the same destination and metric when `replace` is set,
    /// otherwise an existing route is an error (EEXIST).
    pub fn add_route(&self, route: &Route, replace: bool) -> SysResult<()> {
        let context = format!("cannot add route {}", describe_route(route));
        let mut message = route_message(route)
            .map_err(|reason| SysError::other(format!("{context} in {}: {reason}", self.label)))?;
        message.header.protocol = RouteProtocol::Boot;
        message.header.kind = RouteType::Unicast;
        message.header.scope = if route.scope_link {
            RouteScope::Link
        } else {
            RouteScope::Universe
        };
        if route.onlink {
            message.header.flags |= RouteFlags::Onlink;
        }
        let flags = if replace {
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
        } else {
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        };
        self.execute(RouteNetlinkMessage::NewRoute(message), flags, &context)
            .map(drop)
    }

    /// Deletes exactly this route; Ok(false) when it did not exist.
    pub fn delete_route(&self, route: &Route) -> SysResult<bool> {
        let context = format!("cannot delete route {}", describe_route(route));
        let mut message = route_message(route)
            .map_err(|reason| SysError::other(format!("{context} in {}: {reason}", self.label)))?;
        // RT_SCOPE_NOWHERE, protocol and type 0 are the kernel's wildcards: the attributes
        // alone (destination, gateway, device, source, metric) select the route, as with
        // `ip route del`.
        message.header.scope = RouteScope::NoWhere;
        found(self.execute(RouteNetlinkMessage::DelRoute(message), NLM_F_ACK, &context))
    }

    /// Every route of the main table of both families (a dump).
    pub fn routes(&self) -> SysResult<Vec<Route>> {
        let mut routes = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut message = RouteMessage::default();
            message.header.address_family = family;
            // A filter for kernels with strict checking; the client-side filter below is the
            // one that counts.
            message.header.table = RouteHeader::RT_TABLE_MAIN;
            let replies = self.execute(
                RouteNetlinkMessage::GetRoute(message),
                NLM_F_DUMP,
                &format!("cannot list the {family:?} routes of the main table"),
            )?;
            routes.extend(replies.into_iter().filter_map(|reply| match reply {
                RouteNetlinkMessage::NewRoute(route) => parse_route(route),
                _ => None,
            }));
        }
        Ok(routes)
    }

    /// Adds or replaces a permanent neighbour entry.
    pub fn set_permanent_neighbour(&self, index: u32, address: IpAddr, mac: Mac) -> SysResult<()> {
        let mut message = neighbour_message(index, address);
        message.header.state = NeighbourState::Permanent;
        message
            .attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
        let context =
            format!("cannot set permanent neighbour {address} lladdr {mac} on link index {index}");
        self.execute(
            RouteNetlinkMessage::NewNeighbour(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
            &context,
        )
        .map(drop)
    }

    /// Deletes a neighbour entry; Ok(false) when it did not exist.
    pub fn delete_neighbour(&self, index: u32, address: IpAddr) -> SysResult<bool> {
        let message = neighbour_message(index, address);
        let context = format!("cannot delete neighbour {address} on link index {index}");
        found(self.execute(
            RouteNetlinkMessage::DelNeighbour(message),
            NLM_F_ACK,
            &context,
        ))
    }

    /// The neighbour entries of one link (a dump, filtered).
    pub fn neighbours(&self, index: u32) -> SysResult<Vec<Neighbour>> {
        let mut message = NeighbourMessage::default();
        // NDA_IFINDEX, not the header's index: strict checking rejects a non-zero header index
        // in a dump request, and both modes filter on the attribute.
        message.attributes.push(NeighbourAttribute::IfIndex(index));
        let replies = self.execute(
            RouteNetlinkMessage::GetNeighbour(message),
            NLM_F_DUMP,
            &format!("cannot list the neighbours of link index {index}"),
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewNeighbour(neighbour) => parse_neighbour(neighbour),
                _ => None,
            })
            .filter(|neighbour| neighbour.index == index)
            .collect())
    }

    /// Sends one request and collects every reply; a NACK becomes an error that carries the
    /// kernel's errno, `context` and where this connection lives.
    fn execute(
        &self,
        message: RouteNetlinkMessage,
        flags: u16,
        context: &str,
    ) -> SysResult<Vec<RouteNetlinkMessage>> {
        let mut request = NetlinkMessage::from(message);
        request.header.flags = NLM_F_REQUEST | flags;
        request.finalize();
        let mut handle = self.handle.clone();
        self.runtime.block_on(async move {
            let mut responses = handle.request(request).map_err(|e| SysError::Netlink {
                context: format!("{context} in {}", self.label),
                errno: None,
                message: format!("{e} (the netlink connection is gone)"),
            })?;
            let mut replies = Vec::new();
            while let Some(response) = responses.next().await {
                match response.payload {
                    NetlinkPayload::InnerMessage(reply) => replies.push(reply),
                    NetlinkPayload::Error(error) => {
                        if let Some(code) = error.code {
                            return Err(self.fail(context, -code.get()));
                        }
                    }
                    _ => {}
                }
            }
            Ok(replies)
        })
    }

    /// Catches what the kernel would only answer with a bare EINVAL or ERANGE.
    fn check_link_name(&self, name: &str, context: &str) -> SysResult<()> {
        valid_link_name(name).map_err(|reason| {
            SysError::other(format!("{context} {name:?} in {}: {reason}", self.label))
        })
    }

    /// The error for a request the kernel (or our own validation) refused with `errno`.
    fn fail(&self, context: &str, errno: i32) -> SysError {
        SysError::Netlink {
            context: format!("{context} in {}", self.label),
            errno: Some(errno),
            message: io::Error::from_raw_os_error(errno).to_string(),
        }
    }
}

fn new_route_socket() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    // Strict checking lets the kernel filter dumps (addresses of one link, the main table)
    // instead of sending the whole table, and rejects malformed requests instead of
    // silently ignoring what it does not understand.
    socket.set_netlink_get_strict_chk(true)?;
    socket.set_non_blocking(true)?;
    Ok(socket)
}

/// The kernel's rules for interface names (dev_valid_name).
fn valid_link_name(name: &str) -> Result<(), &'static str> {
    // IFNAMSIZ is 16, including the terminating NUL.
    if name.is_empty() || name.len() > 15 {
        return Err("an interface name has 1 to 15 bytes");
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err("an interface name cannot be . or .. nor contain /, : or whitespace");
    }
    Ok(())
}

/// Ok(false) for the errors that mean "there was nothing to delete".
fn found(result: SysResult<Vec<RouteNetlinkMessage>>) -> SysResult<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

impl MacvlanMode {
    fn to_kernel(self) -> KernelMacvlanMode {
        match self {
            MacvlanMode::Private => KernelMacvlanMode::Private,
            MacvlanMode::Vepa => KernelMacvlanMode::Vepa,
            MacvlanMode::Bridge => KernelMacvlanMode::Bridge,
            MacvlanMode::Passthru => KernelMacvlanMode::Passthrough,
            MacvlanMode::Source => KernelMacvlanMode::Source,
        }
    }

    fn from_kernel(mode: &KernelMacvlanMode) -> Option<MacvlanMode> {
        match mode {
            KernelMacvlanMode::Private => Some(MacvlanMode::Private),
            KernelMacvlanMode::Vepa => Some(MacvlanMode::Vepa),
            KernelMacvlanMode::Bridge => Some(MacvlanMode::Bridge),
            KernelMacvlanMode::Passthrough => Some(MacvlanMode::Passthru),
            KernelMacvlanMode::Source => Some(MacvlanMode::Source),
            _ => None,
        }
    }
}

fn parse_link(message: LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        up: message.header.flags.contains(LinkFlags::Up),
        kind: None,
        macvlan_mode: None,
        parent_index: None,
        link_netnsid: None,
    };
    for attribute in message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Address(bytes) => link.mac = Mac::from_slice(&bytes),
            LinkAttribute::Mtu(mtu) => link.mtu = mtu,
            LinkAttribute::Link(parent) => link.parent_index = Some(parent),
            LinkAttribute::LinkNetNsId(id) => link.link_netnsid = Some(id),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                        LinkInfo::Data(InfoData::MacVlan(data)) => {
                            link.macvlan_mode = data.iter().find_map(|item| match item {
                                InfoMacVlan::Mode(mode) => MacvlanMode::from_kernel(mode),
                                _ => None,
                            });
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn family_of(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The broadcast address `ip addr add` would set; none for /31 and /32, which have no room
/// for one (RFC 3021).
fn broadcast_of(network: Ipv4Network) -> Option<Ipv4Addr> {
    (network.prefix() < 31).then(|| network.broadcast())
}

fn parse_address(message: AddressMessage) -> Option<Address> {
    let header = &message.header;
    let mut local = None;
    let mut address = None;
    let mut flags = AddressFlags::empty();
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    // For IPv4 IFA_ADDRESS is the peer of a point-to-point address; IFA_LOCAL is ours.
    let ip = match header.family {
        AddressFamily::Inet => local.or(address)?,
        AddressFamily::Inet6 => address?,
        _ => return None,
    };
    let network = IpNetwork::new(ip, header.prefix_len).ok()?;
    Some(Address {
        index: header.index,
        network,
        tentative: header.flags.contains(AddressHeaderFlags::Tentative)
            || flags.contains(AddressFlags::Tentative),
        dad_failed: header.flags.contains(AddressHeaderFlags::Dadfailed)
            || flags.contains(AddressFlags::Dadfailed),
        scope: u8::from(header.scope),
    })
}

fn describe_route(route: &Route) -> String {
    let mut text = match route.destination {
        Some(destination) => destination.to_string(),
        None => "default".to_string(),
    };
    if let Some(gateway) = route.gateway {
        text.push_str(&format!(" via {gateway}"));
    }
    if let Some(index) = route.output_index {
        text.push_str(&format!(" dev index {index}"));
    }
    if let Some(source) = route.source {
        text.push_str(&format!(" src {source}"));
    }
    if let Some(metric) = route.metric {
        text.push_str(&format!(" metric {metric}"));
    }
    if route.onlink {
        text.push_str(" onlink");
    }
    if route.scope_link {
        text.push_str(" scope link");
    }
    text
}

/// The selector part of a route request (family, destination, gateway, device, source,
/// metric) in the main table; the caller sets what differs between add and delete.
fn route_message(route: &Route) -> Result<RouteMessage, &'static str> {
    let family = match (route.destination, route.gateway) {
        (Some(destination), _) => family_of(destination.ip()),
        (None, Some(gateway)) => family_of(gateway),
        (None, None) => return Err("a route needs a destination or a gateway"),
    };
    let same_family = |ip: Option<IpAddr>| ip.is_none_or(|ip| family_of(ip) == family);
    if !same_family(route.gateway) || !same_family(route.source) {
        return Err("the destination, gateway and source mix IPv4 and IPv6");
    }
    let mut message = RouteMessage::default();
    message.header.address_family = family;
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    if let Some(destination) = route.destination {
        message.header.destination_prefix_length = destination.prefix();
        if destination.prefix() > 0 {
            // The kernel refuses host bits in an IPv4 destination; the network is what the
            // caller means and what a dump reports.
            message
                .attributes
                .push(RouteAttribute::Destination(destination.network().into()));
        }
    }
    if let Some(gateway) = route.gateway {
        message
            .attributes
            .push(RouteAttribute::Gateway(gateway.into()));
    }
    if let Some(index) = route.output_index {
        message.attributes.push(RouteAttribute::Oif(index));
    }
    if let Some(source) = route.source {
        message
            .attributes
            .push(RouteAttribute::PrefSource(source.into()));
    }
    if let Some(metric) = route.metric {
        message.attributes.push(RouteAttribute::Priority(metric));
    }
    Ok(message)
}

fn route_ip(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

/// A main-table unicast route as a `Route`; None for everything else (local, broadcast,
/// multicast, unreachable... routes and other tables).
fn parse_route(message: RouteMessage) -> Option<Route> {
    let header = &message.header;
    if header.kind != RouteType::Unicast {
        return None;
    }
    let mut table = u32::from(header.table);
    let mut destination = None;
    let mut route = Route {
        onlink: header.flags.contains(RouteFlags::Onlink),
        scope_link: header.scope == RouteScope::Link,
        ..Route::default()
    };
    for attribute in &message.attributes {
        match attribute {
            // Tables above 255 only fit in RTA_TABLE.
            RouteAttribute::Table(id) => table = *id,
            RouteAttribute::Destination(address) => destination = route_ip(address),
            RouteAttribute::Gateway(address) => route.gateway = route_ip(address),
            RouteAttribute::PrefSource(address) => route.source = route_ip(address),
            RouteAttribute::Oif(index) => route.output_index = Some(*index),
            RouteAttribute::Priority(metric) => route.metric = Some(*metric),
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return None;
    }
    let ip = match header.address_family {
        _ if header.destination_prefix_length > 0 => destination?,
        AddressFamily::Inet6 => IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::from(Ipv4Addr::UNSPECIFIED),
    };
    route.destination = Some(IpNetwork::new(ip, header.destination_prefix_length).ok()?);
    Some(route)
}

fn neighbour_message(index: u32, address: IpAddr) -> NeighbourMessage {
    let mut message = NeighbourMessage::default();
    message.header.family = family_of(address);
    message.header.ifindex = index;
    message
        .attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(
            address,
        )));
    message
}

fn parse_neighbour(message: NeighbourMessage) -> Option<Neighbour> {
    let header = &message.header;
    if !matches!(header.family, AddressFamily::Inet | AddressFamily::Inet6) {
        return None;
    }
    let mut address = None;
    let mut mac = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                address = Some(IpAddr::V4(*ip))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                address = Some(IpAddr::V6(*ip))
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = Mac::from_slice(bytes),
            _ => {}
        }
    }
    Some(Neighbour {
        index: header.ifindex,
        address: address?,
        mac,
        permanent: header.state == NeighbourState::Permanent,
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, AsRawFd};

    use serde_json::Value;

    use super::*;
    use crate::system::netns::test_support::TempNetns;

    fn mac(last: u8) -> Mac {
        Mac([0x02, 0x00, 0x5e, 0x10, 0x00, last])
    }

    fn net(text: &str) -> IpNetwork {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A veth pair `a`/`b` with both ends inside `temp`, both up (so that the link has a
    /// carrier). Returns the indexes of `a` and `b`.
    fn veth_pair_up(netlink: &Netlink) -> (u32, u32) {
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

    #[test]
    fn a_link_group_goes_in_one_request_and_only_that_group() {
        let temp = TempNetns::new("group");
        let netlink = Netlink::open_in(&temp.ns).unwrap();
        for (name, peer, group) in [
            ("g1", "p1", Some(7)),
            ("g2", "p2", Some(7)),
            ("k1", "q1", None),
        ] {
            netlink
                .create_veth(&VethSpec {
                    name: name.into(),
                    mac: None,
                    peer_name: peer.into(),
                    peer_mac: None,
                    peer_netns_fd: None,
                    peer_group: group,
                    mtu: None,
                })
                .unwrap();
        }
        netlink.delete_link_group(7).unwrap();
        // The grouped peers went, and with them their pairs; the rest stayed.
        for gone in ["g1", "p1", "g2", "p2"] {
            assert_eq!(netlink.link_by_name(gone).unwrap(), None, "{gone}");
        }
        assert!(netlink.link_by_name("k1").unwrap().is_some());
    }

    #[test]
    fn lookups_in_the_node_namespace_only_read() {
        let netlink = Netlink::open().unwrap();
        let lo = netlink.link_by_name("lo").unwrap().unwrap();
        assert_eq!(lo.index, 1);
        assert_eq!(netlink.link_by_index(1).unwrap().unwrap().name, "lo");
        assert_eq!(netlink.link_by_name("mvh-no-such").unwrap(), None);
        // Longer than IFNAMSIZ: no such link can exist (the kernel would say ERANGE).
        assert_eq!(netlink.link_by_name("mvh-no-such-link").unwrap(), None);
    }

    #[test]
    fn veth_across_namespaces_and_macvlan_into_another_namespace() {
        let node = TempNetns::new("node");
        let lan = TempNetns::new("lan");
        let pod = TempNetns::new("pod");
        let on_node = Netlink::open_in(&node.ns).unwrap();
        let on_lan = Netlink::open_in(&lan.ns).unwrap();
        let on_pod = Netlink::open_in(&pod.ns).unwrap();

        on_node
            .create_veth(&VethSpec {
                name: "eth0".into(),
                mac: Some(mac(1)),
                peer_name: "lan0".into(),
                peer_mac: Some(mac(2)),
                peer_netns_fd: Some(lan.ns.as_fd().as_raw_fd()),
                peer_group: None,
                mtu: Some(1400),
            })
            .unwrap();
        let eth0 = on_node.link_by_name("eth0").unwrap().unwrap();
        let lan0 = on_lan.link_by_name("lan0").unwrap().unwrap();
        assert_eq!(eth0.kind.as_deref(), Some("veth"));
        assert_eq!((eth0.mac, eth0.mtu, eth0.up), (Some(mac(1)), 1400, false));
        assert_eq!((lan0.mac, lan0.mtu), (Some(mac(2)), 1400));
        // Each end points at the other, in the other namespace.
        assert_eq!(eth0.parent_index, Some(lan0.index));
        assert!(eth0.link_netnsid.is_some());
        assert_eq!(lan0.parent_index, Some(eth0.index));
        assert_eq!(on_node.link_by_name("lan0").unwrap(), None);
        assert_eq!(
            on_node.link_by_index(eth0.index).unwrap(),
            Some(eth0.clone())
        );

        let spec = MacvlanSpec {
            name: "pod0".into(),
            master_index: eth0.index,
            mode: MacvlanMode::Bridge,
            mtu: Some(1300),
            mac: Some(mac(3)),
            netns_fd: Some(pod.ns.as_fd().as_raw_fd()),
            group: None,
        };
        on_node.create_macvlan(&spec).unwrap();
        assert_eq!(on_node.link_by_name("pod0").unwrap(), None);
        let pod0 = on_pod.link_by_name("pod0").unwrap().unwrap();
        assert_eq!(pod0.kind.as_deref(), Some("macvlan"));
        assert_eq!(pod0.macvlan_mode, Some(MacvlanMode::Bridge));
        assert_eq!((pod0.mac, pod0.mtu), (Some(mac(3)), 1300));
        // IFLA_LINK is the master's index in the node, qualified by the node's netnsid.
        assert_eq!(pod0.parent_index, Some(eth0.index));
        assert!(pod0.link_netnsid.is_some());
        let shown = pod.ip_json(&["-d", "link", "show", "pod0"]);
        assert_eq!(shown[0]["linkinfo"]["info_kind"], "macvlan");
        assert_eq!(shown[0]["linkinfo"]["info_data"]["mode"], "bridge");
        assert_eq!(shown[0]["address"], mac(3).to_string());

        // The name is taken inside the pod: the kernel refuses a second one.
        let error = on_node.create_macvlan(&spec).unwrap_err();
        assert!(error.is_exists(), "{error}");
        let message = error.to_string();
        assert!(
            message.contains("pod0") && message.contains(&node.name),
            "{message}"
        );

        // A missing master is reported with its index.
        let error = on_node
            .create_macvlan(&MacvlanSpec {
                name: "pod1".into(),
                master_index: 9999,
                netns_fd: None,
                group: None,
                ..spec.clone()
            })
            .unwrap_err();
        assert!(error.to_string().contains("9999"), "{error}");
    }

    #[test]
    fn rename_up_and_idempotent_delete() {
        let temp = TempNetns::new("link");
        let netlink = Netlink::open_in(&temp.ns).unwrap();
        netlink
            .create_veth(&VethSpec {
                name: "tmp0".into(),
                mac: None,
                peer_name: "tmp1".into(),
                peer_mac: None,
                peer_netns_fd: None,
                peer_group: None,
                mtu: None,
            })
            .unwrap();
        let index = netlink.link_by_name("tmp0").unwrap().unwrap().index;

        netlink.rename_link(index, "eth0").unwrap();
        assert_eq!(netlink.link_by_name("tmp0").unwrap(), None);
        let renamed = netlink.link_by_name("eth0").unwrap().unwrap();
        assert_eq!((renamed.index, renamed.up), (index, false));

        netlink.set_link_up(index).unwrap();
        assert!(netlink.link_by_index(index).unwrap().unwrap().up);
        let shown = temp.ip_json(&["link", "show", "eth0"]);
        let flags = shown[0]["flags"].as_array().unwrap();
        assert!(flags.contains(&Value::from("UP")), "{shown}");

        assert!(netlink.delete_link(index).unwrap());
        assert!(!netlink.delete_link(index).unwrap());
        assert_eq!(netlink.link_by_index(index).unwrap(), None);
        // Deleting one end of a veth takes the other with it.
        assert_eq!(netlink.link_by_name("tmp1").unwrap(), None);

        let error = netlink.set_link_up(index).unwrap_err();
        assert!(error.is_not_found());
        let message = error.to_string();
        assert!(
            message.contains(&format!("link index {index}")),
            "{message}"
        );
        assert!(message.contains(&temp.name), "{message}");
    }

    #[test]
    fn addresses_add_list_and_flags() {
        let temp = TempNetns::new("addr");
        let netlink = Netlink::open_in(&temp.ns).unwrap();
        let (a, b) = veth_pair_up(&netlink);

        netlink.add_address(a, net("10.1.0.1/24"), false).unwrap();
        netlink.add_address(a, net("10.1.0.1/24"), false).unwrap();
        netlink.add_address(a, net("10.1.0.2/32"), false).unwrap();
        netlink
            .add_address(a, net("2001:db8::1/64"), false)
            .unwrap();
        netlink.add_address(a, net("2001:db8::2/64"), true).unwrap();

        let listed = netlink.addresses(a).unwrap();
        let find = |text: &str| {
            listed
                .iter()
                .find(|address| address.network == net(text))
                .unwrap_or_else(|| panic!("{text} missing from {listed:?}"))
        };
        assert_eq!(find("10.1.0.1/24").scope, 0);
        assert_eq!(find("10.1.0.1/24").index, a);
        assert!(!find("10.1.0.1/24").tentative);
        // DAD runs on an up link with a carrier; NODAD skips it.
        assert!(find("2001:db8::1/64").tentative);
        assert!(!find("2001:db8::2/64").tentative);
        assert!(!find("2001:db8::1/64").dad_failed);
        assert!(listed.iter().all(|address| address.index == a));
        assert_eq!(
            listed
                .iter()
                .filter(|x| x.network == net("10.1.0.1/24"))
                .count(),
            1
        );

        // The same as `ip addr add`: a broadcast address, and none for a /32.
        let shown = temp.ip_json(&["addr", "show", "dev", "a"]);
        let infos = shown[0]["addr_info"].as_array().unwrap();
        let info = |local: &str| {
            infos
                .iter()
                .find(|i| i["local"] == local)
                .unwrap_or_else(|| panic!("{local} missing from {shown}"))
                .clone()
        };
        assert_eq!(info("10.1.0.1")["broadcast"], "10.1.0.255");
        assert_eq!(info("10.1.0.2")["broadcast"], Value::Null);
        assert_eq!(info("2001:db8::1")["tentative"], true);
        assert_eq!(info("2001:db8::2")["nodad"], true);

        assert!(netlink.addresses(b).unwrap().iter().all(|x| x.index == b));
        let all = netlink.all_addresses().unwrap();
        assert!(all
            .iter()
            .any(|x| x.network == net("10.1.0.2/32") && x.index == a));
        assert!(all.iter().any(|x| x.index == b && x.scope == 253));

        let error = netlink
            .add_address(9999, net("10.1.0.3/24"), false)
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("10.1.0.3/24") && message.contains("9999"),
            "{message}"
        );
    }

    #[test]
    fn routes_add_replace_delete_and_dump() {
        let temp = TempNetns::new("route");
        let netlink = Netlink::open_in(&temp.ns).unwrap();
        let (a, _) = veth_pair_up(&netlink);
        netlink.add_address(a, net("10.2.0.1/24"), false).unwrap();
        netlink
            .add_address(a, net("2001:db8:2::1/64"), true)
            .unwrap();

        let host = Route {
            destination: Some(net("10.2.0.50/32")),
            output_index: Some(a),
            source: Some(ip("10.2.0.1")),
            scope_link: true,
            ..Route::default()
        };
        netlink.add_route(&host, false).unwrap();
        let error = netlink.add_route(&host, false).unwrap_err();
        assert!(error.is_exists(), "{error}");
        assert!(error.to_string().contains("10.2.0.50/32"), "{error}");
        netlink.add_route(&host, true).unwrap();

        let default = Route {
            gateway: Some(ip("10.2.0.254")),
            ..Route::default()
        };
        netlink.add_route(&default, false).unwrap();

        let far = Route {
            destination: Some(net("10.9.0.0/24")),
            gateway: Some(ip("192.168.50.1")),
            output_index: Some(a),
            onlink: true,
            ..Route::default()
        };
        let without_onlink = Route {
            onlink: false,
            ..far.clone()
        };
        assert!(netlink.add_route(&without_onlink, false).is_err());
        netlink.add_route(&far, false).unwrap();

        let v6 = Route {
            destination: Some(net("2001:db8:9::/64")),
            output_index: Some(a),
            metric: Some(100),
            scope_link: true,
            ..Route::default()
        };
        netlink.add_route(&v6, false).unwrap();

        let routes = netlink.routes().unwrap();
        let find = |destination: Option<IpNetwork>| {
            routes
                .iter()
                .find(|r| r.destination == destination)
                .unwrap_or_else(|| panic!("{destination:?} missing from {routes:?}"))
                .clone()
        };
        assert_eq!(find(host.destination), host);
        let dumped_default = find(Some(net("0.0.0.0/0")));
        assert_eq!(dumped_default.gateway, default.gateway);
        assert_eq!(dumped_default.output_index, Some(a));
        assert!(!dumped_default.scope_link);
        let dumped_far = find(far.destination);
        assert!(dumped_far.onlink);
        assert_eq!(dumped_far.gateway, far.gateway);
        assert_eq!(find(v6.destination).metric, Some(100));
        // The prefix route of the address, and nothing from the local table.
        assert_eq!(find(Some(net("10.2.0.0/24"))).output_index, Some(a));
        assert!(routes
            .iter()
            .all(|r| r.destination != Some(net("10.2.0.1/32"))));

        let shown = temp.ip_json(&["-d", "route", "show", "10.2.0.50/32"]);
        assert_eq!(shown[0]["dev"], "a");
        assert_eq!(shown[0]["prefsrc"], "10.2.0.1");
        assert_eq!(shown[0]["scope"], "link");
        assert_eq!(shown[0]["protocol"], "boot");
        let shown = temp.ip_json(&["route", "show", "default"]);
        assert_eq!(shown[0]["gateway"], "10.2.0.254");
        let shown = temp.ip_json(&["route", "show", "10.9.0.0/24"]);
        assert!(shown[0]["flags"]
            .as_array()
            .unwrap()
            .contains(&Value::from("onlink")));

        // Deletion matches every given field: another metric is another route.
        let other_metric = Route {
            metric: Some(7),
            ..host.clone()
        };
        assert!(!netlink.delete_route(&other_metric).unwrap());
        assert!(netlink.delete_route(&host).unwrap());
        assert!(!netlink.delete_route(&host).unwrap());
        assert!(netlink.delete_route(&default).unwrap());
        assert!(netlink.delete_route(&far).unwrap());
        assert!(netlink.delete_route(&v6).unwrap());
        assert!(!netlink.delete_route(&v6).unwrap());
        let left = temp.ip_json(&["route", "show"]);
        assert_eq!(left.as_array().unwrap().len(), 1, "{left}");

        let no_family = Route::default();
        let message = netlink
            .add_route(&no_family, false)
            .unwrap_err()
            .to_string();
        assert!(message.contains(&temp.name), "{message}");
    }

    #[test]
    fn permanent_neighbours_set_list_and_delete() {
        let temp = TempNetns::new("neigh");
        let netlink = Netlink::open_in(&temp.ns).unwrap();
        let (a, b) = veth_pair_up(&netlink);
        let v4 = ip("10.3.0.5");
        let v6 = ip("2001:db8:3::5");

        netlink.set_permanent_neighbour(a, v4, mac(5)).unwrap();
        netlink.set_permanent_neighbour(a, v4, mac(6)).unwrap();
        netlink.set_permanent_neighbour(a, v6, mac(7)).unwrap();
        netlink
            .set_permanent_neighbour(b, ip("10.3.0.9"), mac(9))
            .unwrap();

        let listed = netlink.neighbours(a).unwrap();
        let entry = |address: IpAddr| {
            listed
                .iter()
                .find(|n| n.address == address)
                .unwrap_or_else(|| panic!("{address} missing from {listed:?}"))
                .clone()
        };
        assert_eq!(
            entry(v4),
            Neighbour {
                index: a,
                address: v4,
                mac: Some(mac(6)),
                permanent: true
            }
        );
        assert_eq!(entry(v6).mac, Some(mac(7)));
        assert!(listed.iter().all(|n| n.index == a));

        let shown = temp.ip_json(&["neigh", "show", "dev", "a", "10.3.0.5"]);
        assert_eq!(shown[0]["lladdr"], mac(6).to_string());
        assert_eq!(shown[0]["state"][0], "PERMANENT");

        assert!(netlink.delete_neighbour(a, v4).unwrap());
        assert!(!netlink.delete_neighbour(a, v4).unwrap());
        assert!(netlink.delete_neighbour(a, v6).unwrap());
        assert!(netlink.neighbours(a).unwrap().iter().all(|n| !n.permanent));
        assert_eq!(netlink.neighbours(b).unwrap().len(), 1);
    }
}
