//! Which addresses can be a pod's. A result (prevResult, or the IPAM plugin's) is trusted for
//! what it says about the pod, but an address that cannot be a pod's unicast address would
//! be routed from the node to the pod: the node's gateway (the node would lose it), its own
//! addresses, multicast, broadcast, loopback, link-local, unspecified. Such a result is
//! refused before anything is made, with the address and the reason.

use std::net::{IpAddr, Ipv6Addr};

use ipnetwork::IpNetwork;
use serde_json::Value;

use super::node::Node;
use crate::error::{Context, Error, Result};

/// Where the pod's addresses come from; decides the kind of error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Chained mode: the runtime's configuration carries it (a configuration error).
    PrevResult,
    /// Interface mode: the delegated IPAM plugin returned it (an internal error: the plugin
    /// failed).
    IpamResult,
}

impl Origin {
    fn error(self, msg: String) -> Error {
        match self {
            Origin::PrevResult => Error::config(format!("prevResult: {msg}")),
            Origin::IpamResult => Error::internal(format!("the IPAM result: {msg}")),
        }
    }
}

/// Refuses `result` when an `ips[].address` has no prefix length, or when one of `pod` (the
/// addresses of the pod's interface, read from `result`) cannot be a pod's address.
pub fn refuse_unfit(node: &Node, result: &Value, pod: &[IpNetwork], origin: Origin) -> Result<()> {
    for entry in list(result, "ips") {
        if let Some(text) = entry.get("address").and_then(Value::as_str) {
            if !text.contains('/') {
                return Err(origin.error(format!(
                    "ips[].address {text:?} has no prefix length: write it as ADDRESS/PREFIX"
                )));
            }
        }
    }
    let mut gateways = result_gateways(result);
    gateways.extend(node_gateways(node, pod)?);
    for address in pod {
        let local = node
            .netlink
            .local_address(address.ip())
            .with_context(|| format!("looking up whether {} is the node's", address.ip()))?;
        let node_addresses: Vec<IpAddr> = local.map(|_| address.ip()).into_iter().collect();
        if let Some(why) = why_not_a_pod(*address, &node_addresses, &gateways) {
            return Err(origin.error(format!("pod address {address} {why}")));
        }
    }
    Ok(())
}

/// Why `address` cannot be a pod's, or None when it can.
fn why_not_a_pod(address: IpNetwork, node: &[IpAddr], gateways: &[IpAddr]) -> Option<String> {
    let ip = address.ip();
    let why = |s: &str| Some(s.to_owned());
    if ip.is_unspecified() {
        return why("is the unspecified address");
    }
    if ip.is_loopback() {
        return why("is a loopback address");
    }
    if ip.is_multicast() {
        return why("is a multicast address");
    }
    match ip {
        IpAddr::V4(v4) if v4.is_broadcast() => return why("is the broadcast address"),
        IpAddr::V4(v4) if v4.is_link_local() => return why("is a link-local address"),
        IpAddr::V6(v6) if is_link_local_v6(v6) => return why("is a link-local address"),
        _ => {}
    }
    // /31 and /32 have no network or broadcast address (RFC 3021).
    if let IpNetwork::V4(net) = address {
        if net.prefix() < 31 && ip == IpAddr::V4(net.broadcast()) {
            return why("is the broadcast address of its subnet");
        }
        if net.prefix() < 31 && ip == IpAddr::V4(net.network()) {
            return why("is the network address of its subnet");
        }
    }
    if address.prefix() == 0 {
        return why("has a prefix length of 0: it would make every address on-link");
    }
    if node.contains(&ip) {
        return why("is a local address of the node: it cannot be routed to the pod");
    }
    if gateways.contains(&ip) {
        return why(
            "is a gateway (of the node's routes or of the result): routing it to the pod would cut the node off from it",
        );
    }
    None
}

/// fe80::/10: the one IPv6 link-local test (the shim's hardening uses it too).
pub fn is_link_local_v6(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

fn list<'v>(value: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// `ips[].gateway` and `routes[].gw` of the result: a pod is not its own gateway.
fn result_gateways(result: &Value) -> Vec<IpAddr> {
    list(result, "ips")
        .filter_map(|ip| ip.get("gateway"))
        .chain(list(result, "routes").filter_map(|r| r.get("gw")))
        .filter_map(|gw| gw.as_str()?.parse().ok())
        .collect()
}

/// The gateways of the node's default routes, of the families the pod uses: one route lookup
/// each (a read of the whole route table would grow with the pods, whose /32 routes are in it).
fn node_gateways(node: &Node, pod: &[IpNetwork]) -> Result<Vec<IpAddr>> {
    let mut gateways = Vec::new();
    for ipv6 in [false, true] {
        if pod.iter().any(|a| a.is_ipv6() == ipv6) {
            gateways.extend(node.default_route(ipv6)?.and_then(|r| r.gateway));
        }
    }
    Ok(gateways)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(address: &str) -> Option<String> {
        let node = ["10.0.0.10".parse().unwrap()];
        let gateways = ["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
        why_not_a_pod(address.parse().unwrap(), &node, &gateways)
    }

    #[test]
    fn only_unicast_addresses_of_no_one_else_can_be_a_pods() {
        for (address, word) in [
            ("0.0.0.0/0", "unspecified"),
            ("::/0", "unspecified"),
            ("127.0.0.2/8", "loopback"),
            ("::1/128", "loopback"),
            ("239.1.1.1/24", "multicast"),
            ("ff02::1/64", "multicast"),
            ("255.255.255.255/32", "broadcast"),
            ("10.0.0.255/24", "broadcast"),
            ("10.0.0.0/24", "network address"),
            ("169.254.1.1/16", "link-local"),
            ("fe80::1/64", "link-local"),
            ("10.0.0.5/0", "prefix length of 0"),
            ("10.0.0.10/24", "local address of the node"),
            ("10.0.0.1/24", "gateway"),
            ("fd00::1/64", "gateway"),
        ] {
            let reason = why(address).unwrap_or_else(|| panic!("{address} accepted"));
            assert!(reason.contains(word), "{address}: {reason}");
        }
        for fine in ["10.0.0.5/24", "10.0.0.0/31", "10.0.0.7/32", "fd00::5/64"] {
            assert_eq!(why(fine), None, "{fine}");
        }
    }
}
