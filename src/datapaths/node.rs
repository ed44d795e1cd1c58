//! The node's side of a call: its namespace, a netlink connection in it, and the questions
//! every datapath asks about it (which master, which addresses).

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::error::{Context, Error, Result};
use crate::system::netlink::{Address, Link, Netlink, Route};
use crate::system::netns::Netns;

pub struct Node {
    pub ns: Netns,
    pub netlink: Netlink,
}

impl Node {
    /// The plugin runs inside the node's namespace: that is the node.
    pub fn open() -> Result<Node> {
        let ns = Netns::current().context("opening the node's network namespace")?;
        let netlink = Netlink::open().context("opening netlink in the node's namespace")?;
        Ok(Node { ns, netlink })
    }

    /// `master` when configured, else the interface of the node's default route.
    pub fn resolve_master(&self, configured: Option<&str>) -> Result<Link> {
        if let Some(name) = configured {
            return self
                .netlink
                .link_by_name(name)
                .with_context(|| format!("looking up master {name:?}"))?
                .ok_or_else(|| {
                    Error::config(format!(
                        "master {name:?} does not exist in the node's network namespace"
                    ))
                });
        }
        let default_oif = match self.default_route_by_lookup()? {
            Some(index) => index,
            None => self.default_route_by_dump()?,
        };
        self.netlink
            .link_by_index(default_oif)
            .context("looking up the default route's interface")?
            .ok_or_else(|| {
                Error::internal(format!(
                    "the default route's interface (index {default_oif}) vanished"
                ))
            })
    }

    /// The interface of the IPv4 default route, found with one lookup. None when that lookup
    /// finds something else.
    fn default_route_by_lookup(&self) -> Result<Option<u32>> {
        Ok(self.default_route(false)?.and_then(|r| r.output_index))
    }

    /// The node's default route of one family, found with one lookup: the route the node
    /// uses towards a documentation address (RFC 5737, RFC 3849), which no network routes on
    /// its own, is the default route. None when that lookup finds something else.
    pub fn default_route(&self, ipv6: bool) -> Result<Option<Route>> {
        let probe = if ipv6 {
            IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])
        } else {
            IpAddr::from([203, 0, 113, 1])
        };
        let route = self
            .netlink
            .route_to(probe)
            .context("looking up the node's default route")?;
        Ok(route.filter(|r| r.destination.is_some_and(|d| d.prefix() == 0)))
    }

    /// The interface of the first default route of the main table, IPv4 before IPv6: a dump,
    /// for nodes whose lookup finds no IPv4 default route.
    fn default_route_by_dump(&self) -> Result<u32> {
        let routes = self
            .netlink
            .routes()
            .context("reading the node's routes to find the default interface")?;
        [false, true]
            .into_iter()
            .find_map(|v6| {
                // Dumped default routes are 0.0.0.0/0 or ::/0, with or without a gateway.
                routes.iter().find(|r| {
                    let is_default = r.destination.is_some_and(|d| d.prefix() == 0 && d.is_ipv6() == v6);
                    is_default && r.output_index.is_some()
                })
            })
            .and_then(|r| r.output_index)
            .ok_or_else(|| {
                Error::config("master is not set and the node has no default route to take it from: set \"master\" to the LAN interface")
            })
    }

    pub fn master_by_index(&self, index: u32) -> Result<Link> {
        self.netlink
            .link_by_index(index)
            .with_context(|| {
                format!("looking up the pod link's parent (index {index}) in the node's namespace")
            })?
            .ok_or_else(|| {
                Error::internal(format!(
                    "the pod link's parent (index {index}) does not exist in the node's namespace"
                ))
            })
    }

    /// The addresses of `master` (one link: the kernel filters, whatever else the node has).
    pub fn addresses_of(&self, master: &Link) -> Result<Vec<Address>> {
        self.netlink
            .addresses(master.index)
            .with_context(|| format!("reading the addresses of master {}", master.name))
    }
}

/// The addresses of `master` that the node can use as a source towards its pods: global
/// scope, not tentative, not failed.
pub fn usable_addresses_of(addresses: &[Address], master: &Link) -> Vec<IpNetwork> {
    addresses
        .iter()
        .filter(|a| a.index == master.index && a.scope == 0 && !a.tentative && !a.dad_failed)
        .map(|a| a.network)
        .collect()
}

pub fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// Deletes a link of the node; one that is gone already is no error.
pub fn delete_link(node: &Node, link: Option<Link>) -> Option<Error> {
    let link = link?;
    match node.netlink.delete_link(link.index) {
        Ok(true) => {
            log::info!("removed {}", link.name);
            None
        }
        Ok(false) => None,
        Err(e) => Some(Error::from(e).context(format!("removing {}", link.name))),
    }
}
