//! Routes of the main table: add (or replace), delete exactly one, dump both families.

use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::IpNetwork;
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{family_of, found, Netlink, Route};
use crate::system::{SysError, SysResult};

impl Netlink {
    /// Adds a route; replaces one with the same destination and metric when `replace` is set,
    /// otherwise an existing route is an error (EEXIST).
    pub fn add_route(&self, route: &Route, replace: bool) -> SysResult<()> {
        let context = format!("cannot add route {}", describe_route(route));
        let mut message = route_message(route)
            .map_err(|reason| SysError::other(format!("{context} in {}: {reason}", self.label)))?;
        message.header.protocol = match route.protocol {
            0 => RouteProtocol::Boot,
            protocol => RouteProtocol::from(protocol),
        };
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

    /// The main-table route the kernel uses to reach `destination` (`ip route get fibmatch`):
    /// the matching route itself (prefix, device, source), in one request whatever the size of
    /// the table. None when no unicast route of the main table matches.
    pub fn route_to(&self, destination: IpAddr) -> SysResult<Option<Route>> {
        Ok(self.fib_match(destination)?.and_then(parse_route))
    }

    /// When `address` is one of this namespace's own addresses (a local route matches it),
    /// the index of the link that has it; one lookup, like `route_to`.
    pub fn local_address(&self, address: IpAddr) -> SysResult<Option<u32>> {
        Ok(self
            .fib_match(address)?
            .filter(|m| m.header.kind == RouteType::Local)
            .and_then(|m| {
                m.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(index) => Some(*index),
                    _ => None,
                })
            }))
    }

    /// RTM_GETROUTE with RTM_F_FIB_MATCH: the routing table entry that matches `destination`
    /// after the policy rules, as the kernel reports it; None when nothing matches.
    fn fib_match(&self, destination: IpAddr) -> SysResult<Option<RouteMessage>> {
        let mut message = RouteMessage::default();
        message.header.address_family = family_of(destination);
        message.header.destination_prefix_length = full_prefix(destination);
        message.header.flags = RouteFlags::FibMatch;
        message
            .attributes
            .push(RouteAttribute::Destination(destination.into()));
        let answer = self.execute(
            RouteNetlinkMessage::GetRoute(message),
            0,
            &format!("cannot look up the route to {destination}"),
        );
        let replies = match answer {
            Err(e) if is_unreachable(&e) => return Ok(None),
            other => other?,
        };
        Ok(replies.into_iter().find_map(|reply| match reply {
            RouteNetlinkMessage::NewRoute(route) => Some(route),
            _ => None,
        }))
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
}

/// A host prefix: /32 or /128.
fn full_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The answers of a route lookup that mean "no route".
fn is_unreachable(error: &SysError) -> bool {
    matches!(
        error.errno(),
        Some(nix::libc::ENETUNREACH) | Some(nix::libc::EHOSTUNREACH) | Some(nix::libc::ENOENT)
    )
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
        protocol: u8::from(header.protocol),
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::test_support::*;
    use super::super::*;
    use crate::system::netns::test_support::TempNetns;

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
        // Unspecified protocol is written as `boot`, and read back as such.
        assert_eq!(
            find(host.destination),
            Route {
                protocol: 3,
                ..host.clone()
            }
        );
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
        // A route with a protocol of its own replaces the `boot` one and carries it.
        netlink
            .add_route(
                &Route {
                    protocol: 109,
                    ..host.clone()
                },
                true,
            )
            .unwrap();
        let shown = temp.ip_json(&["route", "show", "10.2.0.50/32"]);
        assert_eq!(shown.as_array().unwrap().len(), 1, "{shown}");
        assert_eq!(shown[0]["protocol"], "109");
        assert_eq!(
            netlink.route_to(ip("10.2.0.50")).unwrap().unwrap().protocol,
            109
        );
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
}
