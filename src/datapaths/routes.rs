//! The routes the engine writes, and how the kernel tells which are ours: every route this
//! project writes carries its own protocol number (`ip route show proto 109`), as routing
//! daemons mark theirs (BIRD 12, Calico's Felix 80). A route through a shim is a pod's only
//! when it carries that number, so "is the shim still used" is read from the kernel, and a
//! stale route someone added by hand keeps nothing alive.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::system::netlink::Route;

/// `rtm_protocol` of every route macvlan-host writes. Not in iproute2's `rt_protos`, not
/// used by BIRD (12), Calico (80), Cilium (2, kernel), Babel (42), Open/R (99) or the
/// routing protocols of 186-192. README documents it.
pub const PROTOCOL: u8 = 109;

/// `boot`: what `ip route add` writes, and what versions before the protocol number wrote.
/// Such a route through the shim, with the pod's permanent neighbour entry beside it, is a
/// pod of an earlier version until ADD or `reconcile` adopts it (rewrites it with ours).
pub const LEGACY_PROTOCOL: u8 = 3;

/// A route to one address through `device`, marked ours (`ip route replace ADDR/32 dev
/// DEVICE src SRC proto 109`).
pub fn host_route(ip: IpAddr, device: u32, source: Option<IpAddr>) -> Route {
    Route {
        destination: Some(IpNetwork::from(ip)),
        output_index: Some(device),
        source,
        scope_link: true,
        protocol: PROTOCOL,
        ..Route::default()
    }
}

/// The route to one address through `device`, whoever wrote it: what DEL removes (a route of
/// an earlier version too).
pub fn host_route_selector(ip: IpAddr, device: u32) -> Route {
    Route {
        protocol: 0,
        ..host_route(ip, device, None)
    }
}

/// A /32 or /128: the shape of a route to one pod (a `shimAddresses` prefix route is not).
pub fn is_host_route(route: &Route) -> bool {
    route
        .destination
        .is_some_and(|d| d.prefix() == if d.is_ipv4() { 32 } else { 128 })
}

/// Who wrote a route through a shim, as far as the kernel tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// This version (our protocol).
    Us,
    /// `boot` host route: an earlier version's pod route, or someone's `ip route add`.
    Legacy,
    /// Anyone else (a daemon, the kernel's prefix route of a `shimAddresses` entry).
    Other,
}

pub fn writer_of(route: &Route) -> Writer {
    match route.protocol {
        PROTOCOL => Writer::Us,
        LEGACY_PROTOCOL if is_host_route(route) => Writer::Legacy,
        _ => Writer::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, protocol: u8) -> Route {
        Route {
            destination: Some(dst.parse().unwrap()),
            output_index: Some(7),
            protocol,
            ..Route::default()
        }
    }

    #[test]
    fn our_routes_carry_our_protocol_and_a_full_prefix() {
        let v4 = host_route(
            "10.0.0.5".parse().unwrap(),
            7,
            Some("10.0.0.1".parse().unwrap()),
        );
        assert_eq!(v4.protocol, PROTOCOL);
        assert_eq!(v4.destination, Some("10.0.0.5/32".parse().unwrap()));
        assert!(v4.scope_link && is_host_route(&v4));
        let v6 = host_route("fd00::5".parse().unwrap(), 7, None);
        assert_eq!(v6.destination, Some("fd00::5/128".parse().unwrap()));
        assert_eq!(writer_of(&v6), Writer::Us);
    }

    #[test]
    fn a_selector_matches_whoever_wrote_the_route() {
        let selector = host_route_selector("10.0.0.5".parse().unwrap(), 7);
        assert_eq!(selector.protocol, 0, "0 is the kernel's wildcard on delete");
        assert_eq!(selector.source, None);
    }

    #[test]
    fn the_kernel_tells_whose_a_route_is() {
        assert_eq!(writer_of(&route("10.0.0.5/32", PROTOCOL)), Writer::Us);
        assert_eq!(writer_of(&route("10.0.0.5/32", 3)), Writer::Legacy);
        assert_eq!(writer_of(&route("fd00::5/128", 3)), Writer::Legacy);
        // A shimAddresses prefix route (kernel), a daemon's, a boot prefix route.
        assert_eq!(writer_of(&route("10.0.0.0/24", 2)), Writer::Other);
        assert_eq!(writer_of(&route("10.0.0.5/32", 12)), Writer::Other);
        assert_eq!(writer_of(&route("10.0.0.0/24", 3)), Writer::Other);
    }

    #[test]
    fn our_number_is_none_of_the_reserved_or_well_known_ones() {
        for taken in [
            0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 42, 80, 99,
        ] {
            assert_ne!(PROTOCOL, taken);
        }
        assert!(!(186..=192).contains(&PROTOCOL));
    }
}
