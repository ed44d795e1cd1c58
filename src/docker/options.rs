//! What is Docker's own in a network's options: reading the `-o key=value` options out of
//! `com.docker.network.generic` (JSON strings or numbers) and Docker's IPAM data (pools and
//! gateways). The options themselves are checked by `protocol::options`, the rules every front
//! end shares (with Docker's `macvlan_mode` name of `mode`); every error names the option as
//! the user typed it. Pure: the parent is looked up on the node by the caller.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::Value;

use super::wire::IpamData;
use crate::error::{Error, Result};
use crate::protocol::options::{NetworkOptions, MODE_ALIAS, SHARED};

/// Where Docker puts the `-o` options.
pub const GENERIC: &str = "com.docker.network.generic";

/// Options only this front end has: Docker's own macvlan driver calls `mode` `macvlan_mode`.
const OWN_OPTIONS: [&str; 1] = [MODE_ALIAS];

/// Reads and checks the `-o` options of a CreateNetwork request's `Options`.
pub fn network_options(options: &BTreeMap<String, Value>) -> Result<NetworkOptions> {
    let generic = match options.get(GENERIC) {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            return Err(Error::config(format!(
                "{GENERIC} must be a map of options, got {other}"
            )))
        }
    };
    let mut text = Vec::with_capacity(generic.len());
    for (key, value) in &generic {
        let value = match value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(Error::config(format!(
                    "option {key}={other}: must be a string"
                )))
            }
        };
        // `-o mtu=` leaves the option unset (its default), as Docker's own drivers read it; an
        // unknown name is still refused, empty or not.
        let known = SHARED.contains(&key.as_str()) || OWN_OPTIONS.contains(&key.as_str());
        if !(known && value.is_empty()) {
            text.push((key.as_str(), value));
        }
    }
    NetworkOptions::parse(
        text.iter().map(|(key, value)| (*key, value.as_str())),
        &OWN_OPTIONS,
    )
    .map_err(|e| Error::config(e.to_string()))
}

/// Docker's pools and gateways: `(pool, gateway)` per family in use. At least one pool.
pub fn pools(v4: &[IpamData], v6: &[IpamData]) -> Result<Vec<(IpNetwork, Option<IpAddr>)>> {
    let mut out = Vec::new();
    for (family, data, v6_family) in [("IPv4Data", v4, false), ("IPv6Data", v6, true)] {
        for entry in data {
            let pool: IpNetwork = entry.pool.parse().map_err(|e| {
                Error::config(format!(
                    "{family}: pool {:?} is not a CIDR: {e}",
                    entry.pool
                ))
            })?;
            if pool.is_ipv6() != v6_family {
                return Err(Error::config(format!(
                    "{family}: pool {pool} is of the other address family"
                )));
            }
            let gateway = match entry.gateway.as_str() {
                "" => None,
                text => Some(
                    text.parse::<IpNetwork>()
                        .map(|g| g.ip())
                        .or_else(|_| text.parse::<IpAddr>())
                        .map_err(|_| {
                            Error::config(format!("{family}: gateway {text:?} is not an address"))
                        })?,
                ),
            };
            out.push((pool, gateway));
        }
    }
    if out.is_empty() {
        return Err(Error::config(
            "the network has no address pool: give it a --subnet (IPv4, IPv6 or both)",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::protocol::HostAccess;
    use crate::system::netlink::MacvlanMode;

    fn parse(generic: Value) -> Result<NetworkOptions> {
        let mut options = BTreeMap::new();
        options.insert(GENERIC.to_owned(), generic);
        options.insert("com.docker.network.enable_ipv6".to_owned(), json!(false));
        network_options(&options)
    }

    #[test]
    fn defaults_and_every_option() {
        let defaults = parse(json!({})).unwrap();
        assert_eq!(parse(json!({"mtu": " ", "parent": ""})).unwrap(), defaults);
        assert_eq!(defaults.parent, None);
        assert_eq!(defaults.mode, MacvlanMode::Bridge);
        assert_eq!(defaults.host_access, HostAccess::Shim);
        let all = parse(
            json!({"parent": "eth0", "macvlan_mode": "private", "mtu": "1400",
            "host_access": "veth", "host_routes": "10.96.0.0/12, fd00:96::/108",
            "shim_name": "lan-shim", "shim_addresses": "10.99.0.250/32"}),
        )
        .unwrap();
        assert_eq!(all.parent.as_deref(), Some("eth0"));
        assert_eq!(all.mode, MacvlanMode::Private);
        assert_eq!(all.mtu, Some(1400));
        assert_eq!(all.host_access, HostAccess::Veth);
        assert_eq!(all.host_routes.len(), 2);
        assert_eq!(all.shim_addresses[0].to_string(), "10.99.0.250/32");
        assert_eq!(parse(json!({"mtu": 1400})).unwrap().mtu, Some(1400));
    }

    #[test]
    fn every_error_names_the_option_as_typed() {
        for (options, named) in [
            (json!({"parnet": "eth0"}), "option parnet="),
            (json!({"parnet": ""}), "option parnet="),
            (json!({"parent": "a/b"}), "parent"),
            (json!({"mode": "bridged"}), "option mode"),
            (json!({"macvlan_mode": "x"}), "option macvlan_mode"),
            (
                json!({"mode": "bridge", "macvlan_mode": "bridge"}),
                "macvlan_mode",
            ),
            (json!({"mtu": "big"}), "mtu"),
            (json!({"mtu": "9"}), "option mtu=\"9\""),
            (json!({"host_access": "tunnel"}), "host_access"),
            (json!({"mode": "vepa"}), "host_access=veth"),
            (json!({"host_routes": "10.0.0.0"}), "host_routes"),
            (json!({"shim_name": "a-name-longer-than-15"}), "shim_name"),
            (json!({"shim_addresses": "x/33"}), "shim_addresses"),
            (json!({"mtu": true}), "option mtu=true"),
        ] {
            let err = parse(options.clone()).unwrap_err();
            assert!(err.msg.contains(named), "{options}: {}", err.msg);
        }
    }

    #[test]
    fn pools_and_gateways() {
        let v4 = [IpamData {
            pool: "10.99.0.0/24".into(),
            gateway: "10.99.0.1/24".into(),
        }];
        let v6 = [IpamData {
            pool: "fd99::/64".into(),
            gateway: "fd99::1".into(),
        }];
        let both = pools(&v4, &v6).unwrap();
        assert_eq!(both[0].1, Some("10.99.0.1".parse().unwrap()));
        assert_eq!(both[1].1, Some("fd99::1".parse().unwrap()));
        assert!(pools(&[], &[]).unwrap_err().msg.contains("--subnet"));
        assert!(pools(&v6, &[]).unwrap_err().msg.contains("IPv4Data"));
    }
}
