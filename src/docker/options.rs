//! A network's `-o key=value` options (`com.docker.network.generic`), checked with the rules
//! the CNI configuration uses (`protocol::config`): every error names the option as the user
//! typed it. Docker's IPAM data (pools and gateways) is read here too. Pure: the parent is
//! looked up on the node by the caller.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::Value;

use super::wire::IpamData;
use crate::protocol::config::{check_ifname, check_mtu, parse_cidr, parse_host_access};
use crate::protocol::{CniError, CniResult, HostAccess};
use crate::system::netlink::MacvlanMode;

/// Where Docker puts the `-o` options.
pub const GENERIC: &str = "com.docker.network.generic";

/// The options a network may have; anything else is refused (a typo would otherwise be
/// silently ignored).
pub const KNOWN: [&str; 8] = [
    "parent",
    "mode",
    "macvlan_mode",
    "mtu",
    "host_access",
    "host_routes",
    "shim_name",
    "shim_addresses",
];

#[derive(Clone, Debug, PartialEq)]
pub struct NetworkOptions {
    /// None: the interface of the node's default route.
    pub parent: Option<String>,
    pub mode: MacvlanMode,
    pub mtu: Option<u32>,
    pub host_access: HostAccess,
    pub host_routes: Vec<IpNetwork>,
    pub shim_name: Option<String>,
    pub shim_addresses: Vec<IpNetwork>,
}

impl NetworkOptions {
    /// Reads `Options` of a CreateNetwork request.
    pub fn parse(options: &BTreeMap<String, Value>) -> CniResult<NetworkOptions> {
        let generic = match options.get(GENERIC) {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(other) => {
                return Err(CniError::config(format!(
                    "{GENERIC} must be a map of options, got {other}"
                )))
            }
        };
        let mut text = BTreeMap::new();
        for (key, value) in &generic {
            if !KNOWN.contains(&key.as_str()) {
                return Err(CniError::config(format!(
                    "unknown option {key:?}: macvlan-host networks take {}",
                    KNOWN.join(", ")
                )));
            }
            let value = match value {
                Value::String(s) => s.trim().to_owned(),
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(CniError::config(format!(
                        "option {key} must be a string, got {other}"
                    )))
                }
            };
            if !value.is_empty() {
                text.insert(key.as_str(), value);
            }
        }
        if text.contains_key("mode") && text.contains_key("macvlan_mode") {
            return Err(CniError::config(
                "options mode and macvlan_mode both given: they are the same option, give one",
            ));
        }
        let parent = text.get("parent").cloned();
        if let Some(parent) = &parent {
            check_ifname("parent", parent)?;
        }
        let mode = match text
            .get_key_value("mode")
            .or(text.get_key_value("macvlan_mode"))
        {
            None => MacvlanMode::Bridge,
            Some((key, value)) => value
                .parse()
                .map_err(|why| CniError::config(format!("option {key}: {why}")))?,
        };
        let mtu = match text.get("mtu") {
            None => None,
            Some(value) => Some(check_mtu(
                "mtu",
                value.parse::<u64>().map_err(|_| {
                    CniError::config(format!("mtu {value:?} is not a number of bytes"))
                })?,
            )?),
        };
        let host_access = match text.get("host_access") {
            None => HostAccess::Shim,
            Some(value) => parse_host_access("host_access", value)?,
        };
        if host_access == HostAccess::Shim && mode != MacvlanMode::Bridge {
            return Err(CniError::config(format!(
                "mode {mode} with host_access shim: the shim reaches containers only in bridge mode; use host_access=veth for other modes"
            )));
        }
        let shim_name = text.get("shim_name").cloned();
        if let Some(name) = &shim_name {
            check_ifname("shim_name", name)?;
        }
        Ok(NetworkOptions {
            parent,
            mode,
            mtu,
            host_access,
            host_routes: cidrs(&text, "host_routes")?,
            shim_name,
            shim_addresses: cidrs(&text, "shim_addresses")?,
        })
    }
}

/// A comma-separated list of CIDRs.
fn cidrs(text: &BTreeMap<&str, String>, key: &str) -> CniResult<Vec<IpNetwork>> {
    let Some(list) = text.get(key) else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            parse_cidr(item).map_err(|why| CniError::config(format!("{key}: {item:?} {why}")))
        })
        .collect()
}

/// Docker's pools and gateways: `(pool, gateway)` per family in use. At least one pool.
pub fn pools(v4: &[IpamData], v6: &[IpamData]) -> CniResult<Vec<(IpNetwork, Option<IpAddr>)>> {
    let mut out = Vec::new();
    for (family, data, v6_family) in [("IPv4Data", v4, false), ("IPv6Data", v6, true)] {
        for entry in data {
            let pool: IpNetwork = entry.pool.parse().map_err(|e| {
                CniError::config(format!(
                    "{family}: pool {:?} is not a CIDR: {e}",
                    entry.pool
                ))
            })?;
            if pool.is_ipv6() != v6_family {
                return Err(CniError::config(format!(
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
                            CniError::config(format!(
                                "{family}: gateway {text:?} is not an address"
                            ))
                        })?,
                ),
            };
            out.push((pool, gateway));
        }
    }
    if out.is_empty() {
        return Err(CniError::config(
            "the network has no address pool: give it a --subnet (IPv4, IPv6 or both)",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(generic: Value) -> CniResult<NetworkOptions> {
        let mut options = BTreeMap::new();
        options.insert(GENERIC.to_owned(), generic);
        options.insert("com.docker.network.enable_ipv6".to_owned(), json!(false));
        NetworkOptions::parse(&options)
    }

    #[test]
    fn defaults_and_every_option() {
        let defaults = parse(json!({})).unwrap();
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
    }

    #[test]
    fn every_error_names_the_option_as_typed() {
        for (options, named) in [
            (json!({"parnet": "eth0"}), "\"parnet\""),
            (json!({"parent": "a/b"}), "parent"),
            (json!({"mode": "bridged"}), "option mode"),
            (json!({"macvlan_mode": "x"}), "option macvlan_mode"),
            (
                json!({"mode": "bridge", "macvlan_mode": "bridge"}),
                "macvlan_mode",
            ),
            (json!({"mtu": "big"}), "mtu"),
            (json!({"mtu": "9"}), "mtu 9"),
            (json!({"host_access": "tunnel"}), "host_access"),
            (json!({"mode": "vepa"}), "host_access=veth"),
            (json!({"host_routes": "10.0.0.0"}), "host_routes"),
            (json!({"shim_name": "a-name-longer-than-15"}), "shim_name"),
            (json!({"shim_addresses": "x/33"}), "shim_addresses"),
            (json!({"mtu": true}), "mtu"),
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
