//! CNI results: the one this plugin builds in interface mode, the one an IPAM plugin returns,
//! and the previous plugin's result that chained mode reads and passes through.
//!
//! Parsing is lenient about shape (with or without `ips[].version`, unknown keys) so that any
//! IPAM plugin and any spec version is understood; output follows the configuration's version.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::{json, Map, Value};

use super::version::CniVersion;
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    /// The namespace path for an interface inside the pod; None for one on the node.
    pub sandbox: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IpConfig {
    pub address: IpNetwork,
    pub gateway: Option<IpAddr>,
    pub interface: Option<usize>,
}

/// A route of a result. `raw` keeps every field as received (1.1 adds `mtu`, `advmss`,
/// `priority`, `table`, `scope`), so nothing is lost on the way to the runtime.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteEntry {
    pub dst: IpNetwork,
    pub gw: Option<IpAddr>,
    pub raw: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CniOutput {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<RouteEntry>,
    pub dns: Option<Value>,
}

impl CniOutput {
    /// Reads a result of any supported version. `what` names it in errors ("the IPAM result",
    /// "prevResult").
    pub fn parse(value: &Value, what: &str) -> Result<CniOutput> {
        let list = |key: &str| -> Result<Vec<Value>> {
            match value.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => Ok(items.clone()),
                Some(other) => Err(Error::config(format!(
                    "{what}: {key} must be a list, got {other}"
                ))),
            }
        };
        let interfaces = list("interfaces")?
            .iter()
            .map(|i| {
                let name = i.get("name").and_then(Value::as_str).ok_or_else(|| {
                    Error::config(format!("{what}: interfaces entry without a name: {i}"))
                })?;
                let text = |k: &str| {
                    i.get(k)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                };
                Ok(Interface {
                    name: name.to_owned(),
                    mac: text("mac"),
                    sandbox: text("sandbox"),
                })
            })
            .collect::<Result<_>>()?;
        let ips = list("ips")?
            .iter()
            .map(|ip| {
                let address = field_cidr(ip, "address", what, "ips")?;
                let gateway = optional_ip(ip, "gateway", what, "ips")?;
                let interface = match ip.get("interface") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_u64().ok_or_else(|| {
                        Error::config(format!("{what}: ips[].interface must be an index, got {v}"))
                    })? as usize),
                };
                Ok(IpConfig {
                    address,
                    gateway,
                    interface,
                })
            })
            .collect::<Result<_>>()?;
        let routes = list("routes")?
            .iter()
            .map(|r| {
                let Value::Object(raw) = r else {
                    return Err(Error::config(format!(
                        "{what}: routes entry is not an object: {r}"
                    )));
                };
                Ok(RouteEntry {
                    dst: field_cidr(r, "dst", what, "routes")?,
                    gw: optional_ip(r, "gw", what, "routes")?,
                    raw: raw.clone(),
                })
            })
            .collect::<Result<_>>()?;
        let dns = value
            .get("dns")
            .filter(|d| d.as_object().is_some_and(|o| !o.is_empty()))
            .cloned();
        Ok(CniOutput {
            interfaces,
            ips,
            routes,
            dns,
        })
    }

    /// The result as printed for `version`.
    pub fn to_json(&self, version: CniVersion) -> Value {
        let interfaces: Vec<Value> = self.interfaces.iter().map(interface_json).collect();
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut entry = Map::new();
                if version.ips_carry_version() {
                    entry.insert(
                        "version".into(),
                        json!(if ip.address.is_ipv4() { "4" } else { "6" }),
                    );
                }
                entry.insert("address".into(), json!(ip.address.to_string()));
                if let Some(gw) = ip.gateway {
                    entry.insert("gateway".into(), json!(gw.to_string()));
                }
                if let Some(index) = ip.interface {
                    entry.insert("interface".into(), json!(index));
                }
                Value::Object(entry)
            })
            .collect();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| Value::Object(r.raw.clone()))
            .collect();
        let mut out = json!({ "cniVersion": version.as_str() });
        if !interfaces.is_empty() {
            out["interfaces"] = Value::Array(interfaces);
        }
        if !ips.is_empty() {
            out["ips"] = Value::Array(ips);
        }
        if !routes.is_empty() {
            out["routes"] = Value::Array(routes);
        }
        out["dns"] = self.dns.clone().unwrap_or_else(|| json!({}));
        out
    }
}

pub fn interface_json(i: &Interface) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), json!(i.name));
    if let Some(mac) = &i.mac {
        entry.insert("mac".into(), json!(mac));
    }
    if let Some(sandbox) = &i.sandbox {
        entry.insert("sandbox".into(), json!(sandbox));
    }
    Value::Object(entry)
}

/// Chained mode's output: the previous result exactly as received, with `cniVersion` set to
/// the configuration's and `extra` appended at the end of `interfaces`. Nothing is added to
/// `ips` or `routes`: the reference plugins' CHECK compares those with the pod.
pub fn pass_through(prev: &Value, version: CniVersion, extra: &[Interface]) -> Value {
    let mut out = prev.clone();
    if let Value::Object(map) = &mut out {
        map.insert("cniVersion".into(), json!(version.as_str()));
        if !extra.is_empty() {
            let list = map.entry("interfaces").or_insert_with(|| json!([]));
            if !list.is_array() {
                // `null` (or nothing usable): the appended entries must not be lost.
                *list = json!([]);
            }
            if let Value::Array(items) = list {
                items.extend(extra.iter().map(interface_json));
            }
        }
    }
    out
}

/// The pod's side of an attachment as a previous plugin reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultInterface {
    pub index: usize,
    pub name: String,
    pub mac: Option<String>,
    pub sandbox: String,
    pub addresses: Vec<IpNetwork>,
}

impl CniOutput {
    /// The interface named `ifname` that lives in a sandbox, and the addresses that point at
    /// it. An address without an `interface` index counts when there is only one sandbox
    /// interface (0.3.0 results may omit the index).
    pub fn pod_interface(&self, ifname: &str, what: &str) -> Result<ResultInterface> {
        let (index, iface) = self
            .interfaces
            .iter()
            .enumerate()
            .find(|(_, i)| i.name == ifname && i.sandbox.is_some())
            .ok_or_else(|| {
                Error::config(format!(
                    "{what} has no interface named {ifname:?} inside a sandbox: the previous plugin must create the pod's \
                     interface (e.g. \"macvlan\" before \"macvlan-host\")"
                ))
            })?;
        let sandboxes = self
            .interfaces
            .iter()
            .filter(|i| i.sandbox.is_some())
            .count();
        let addresses: Vec<IpNetwork> = self
            .ips
            .iter()
            .filter(|ip| ip.interface == Some(index) || (ip.interface.is_none() && sandboxes == 1))
            .map(|ip| ip.address)
            .collect();
        if addresses.is_empty() {
            return Err(Error::config(format!(
                "{what} has no address for interface {ifname:?}: host access needs the pod's addresses"
            )));
        }
        Ok(ResultInterface {
            index,
            name: iface.name.clone(),
            mac: iface.mac.clone(),
            sandbox: iface.sandbox.clone().unwrap_or_default(),
            addresses,
        })
    }
}

fn field_cidr(v: &Value, key: &str, what: &str, list: &str) -> Result<IpNetwork> {
    let text = v
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::config(format!("{what}: {list}[].{key} is missing in {v}")))?;
    text.parse().map_err(|e| {
        Error::config(format!(
            "{what}: {list}[].{key} {text:?} is not a valid CIDR: {e}"
        ))
    })
}

fn optional_ip(v: &Value, key: &str, what: &str, list: &str) -> Result<Option<IpAddr>> {
    match v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|e| {
            Error::config(format!(
                "{what}: {list}[].{key} {text:?} is not a valid IP address: {e}"
            ))
        }),
    }
}
