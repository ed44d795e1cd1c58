//! The network configuration on stdin: read leniently (unknown keys are kept, never rejected,
//! so a newer runtime or a configuration meant for a chain still works), validated strictly
//! (every invalid value is refused with code 7, naming the key and the value).

use std::path::PathBuf;
use std::str::FromStr;

use ipnetwork::IpNetwork;
use serde_json::{Map, Value};

use super::env::Command;
use super::version::CniVersion;
use crate::error::{Error, Kind, Result};
use crate::system::names::{is_valid_id, validate_ifname};
use crate::system::netlink::MacvlanMode;

pub const DEFAULT_STATE_DIR: &str = "/run/cni/macvlan-host";

/// How the node reaches the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostAccess {
    /// A macvlan in the node's namespace, shared by the pods of one master, with /32 routes.
    Shim,
    /// A veth pair per pod.
    Veth,
    /// No host access: a plain macvlan plugin.
    None,
}

impl HostAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            HostAccess::Shim => "shim",
            HostAccess::Veth => "veth",
            HostAccess::None => "none",
        }
    }
}

/// The one spelling of each host access, shared by the CNI configuration (`hostAccess`) and
/// the network options of the other front ends (`host_access`); the error says why, the
/// caller names the key.
impl FromStr for HostAccess {
    type Err = String;
    fn from_str(text: &str) -> Result<HostAccess, String> {
        [HostAccess::Shim, HostAccess::Veth, HostAccess::None]
            .into_iter()
            .find(|h| h.as_str() == text)
            .ok_or_else(|| {
                format!("{text:?} is invalid: use \"shim\" (default), \"veth\" or \"none\"")
            })
    }
}

/// The MTU rule every front end applies (the master's own MTU bounds it further, checked
/// where the master is known); the error says why, the caller names the key.
pub fn check_mtu(mtu: u64) -> Result<u32, String> {
    if (68..=65535).contains(&mtu) {
        Ok(mtu as u32)
    } else {
        Err(format!(
            "{mtu} is out of range: it must be between 68 and 65535"
        ))
    }
}

/// Who creates the pod's macvlan.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// This plugin creates it and delegates IP allocation to `ipam.type`.
    Interface { ipam: Map<String, Value> },
    /// A previous plugin in the list (the reference `macvlan`) created it; its result is here.
    /// DEL may come without it: then the plugin's own record says what to remove.
    Chained { prev_result: Option<Value> },
}

#[derive(Clone, Debug)]
pub struct NetConf {
    pub cni_version: CniVersion,
    pub name: String,
    pub plugin_type: String,
    pub mode: Mode,
    pub master: Option<String>,
    pub macvlan_mode: MacvlanMode,
    pub mtu: Option<u32>,
    pub host_access: HostAccess,
    pub shim_name: Option<String>,
    pub shim_addresses: Vec<IpNetwork>,
    pub host_routes: Vec<IpNetwork>,
    pub veth_name: Option<String>,
    pub state_dir: PathBuf,
    pub log_file: Option<PathBuf>,
    pub log_level: log::LevelFilter,
    /// GC: the attachments that must be kept, `(containerID, ifname)`.
    pub valid_attachments: Option<Vec<(String, String)>>,
    /// The configuration exactly as received, handed on to delegated plugins.
    pub raw: Map<String, Value>,
}

impl NetConf {
    /// Parses and validates the configuration of a call of `command`. The verb matters twice:
    /// a verb the configuration's version does not have is refused (code 1) before anything
    /// else, and DEL, GC and STATUS, which may come without a prevResult, accept a chained
    /// configuration with neither `ipam` nor `prevResult` (served from the records).
    pub fn parse(stdin: &[u8], command: Command) -> Result<NetConf> {
        let without_prev_result = matches!(command, Command::Del | Command::Gc | Command::Status);
        let value: Value = serde_json::from_slice(stdin).map_err(|e| {
            Error::new(
                Kind::Decoding,
                format!("the network configuration on stdin is not valid JSON: {e}"),
            )
        })?;
        let Value::Object(raw) = value else {
            return Err(Error::new(
                Kind::Decoding,
                "the network configuration on stdin is not a JSON object",
            ));
        };
        let reader = Reader(&raw);
        // A missing cniVersion is an incompatible version (code 1), not a malformed file: the
        // reference plugins read it as "0.1.0", which they refuse with code 1 too.
        let cni_version =
            CniVersion::parse(&reader.optional_str("cniVersion")?.unwrap_or_default())?;
        cni_version.require_verb(command)?;
        let name = reader.required_str("name")?;
        validate_network_name(&name)?;
        let plugin_type = reader.optional_str("type")?.unwrap_or_default();

        let ipam = match raw.get("ipam") {
            None | Some(Value::Null) => None,
            Some(Value::Object(ipam)) if ipam.is_empty() => None,
            Some(Value::Object(ipam)) => {
                match ipam.get("type").and_then(Value::as_str) {
                    Some(t) if !t.is_empty() && !t.contains('/') => {}
                    _ => return Err(Error::config(format!(
                        "ipam.type must name an IPAM plugin in CNI_PATH (e.g. \"host-local\"), got {}",
                        ipam.get("type").map(Value::to_string).unwrap_or_else(|| "nothing".into())
                    ))),
                }
                Some(ipam.clone())
            }
            Some(other) => {
                return Err(Error::config(format!(
                    "ipam must be an object, got {other}"
                )))
            }
        };
        let prev_result = match raw.get("prevResult") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(other) => {
                return Err(Error::config(format!(
                    "prevResult must be an object, got {other}"
                )))
            }
        };
        let mode = match (ipam, prev_result) {
            (Some(ipam), _) => Mode::Interface { ipam },
            (None, Some(prev)) => Mode::Chained { prev_result: Some(prev) },
            (None, None) if without_prev_result => Mode::Chained { prev_result: None },
            (None, None) => {
                return Err(Error::config(
                    "neither \"ipam\" nor \"prevResult\" is present: in interface mode macvlan-host creates the pod's \
                     macvlan itself and needs an \"ipam\" section (e.g. {\"type\": \"host-local\", ...}); in chained mode \
                     it runs after the \"macvlan\" plugin in a conflist, which passes it the pod's addresses as \"prevResult\"",
                ))
            }
        };

        let master = reader.optional_str("master")?;
        if let Some(master) = &master {
            check_ifname("master", master)?;
        }
        let macvlan_mode = match reader.optional_str("mode")? {
            None => MacvlanMode::Bridge,
            Some(text) => text.parse().map_err(Error::config)?,
        };
        let mtu = reader
            .optional_u64("mtu")?
            .map(|mtu| check_mtu(mtu).map_err(|why| Error::config(format!("mtu {why}"))))
            .transpose()?;
        let host_access = match reader.optional_str("hostAccess")? {
            None => HostAccess::Shim,
            Some(text) => text
                .parse()
                .map_err(|why| Error::config(format!("hostAccess {why}")))?,
        };
        let shim_name = reader.optional_str("shimName")?;
        if let Some(n) = &shim_name {
            check_ifname("shimName", n)?;
        }
        let veth_name = reader.optional_str("vethName")?;
        if let Some(n) = &veth_name {
            check_ifname("vethName", n)?;
        }
        let log_level = match reader.optional_str("logLevel")?.as_deref() {
            None | Some("info") => log::LevelFilter::Info,
            Some(other) => log::LevelFilter::from_str(other).map_err(|_| {
                Error::config(format!(
                    "logLevel {other:?} is invalid: use \"error\", \"warn\", \"info\", \"debug\", \"trace\" or \"off\""
                ))
            })?,
        };

        Ok(NetConf {
            cni_version,
            name,
            plugin_type,
            mode,
            master,
            macvlan_mode,
            mtu,
            host_access,
            shim_name,
            shim_addresses: reader.cidr_list("shimAddresses")?,
            host_routes: reader.cidr_list("hostRoutes")?,
            veth_name,
            state_dir: reader
                .optional_str("stateDir")?
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            log_file: reader.optional_str("logFile")?.map(PathBuf::from),
            log_level,
            valid_attachments: valid_attachments(&raw)?,
            raw,
        })
    }

    /// The previous plugin's result in chained mode.
    pub fn prev_result(&self) -> Option<&Value> {
        match &self.mode {
            Mode::Chained { prev_result } => prev_result.as_ref(),
            Mode::Interface { .. } => self.raw.get("prevResult").filter(|v| v.is_object()),
        }
    }
}

/// Typed access to the keys of the configuration, with errors that name the key.
struct Reader<'a>(&'a Map<String, Value>);

impl Reader<'_> {
    fn optional_str(&self, key: &str) -> Result<Option<String>> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Error::config(format!(
                "{key} must be a string, got {other}"
            ))),
        }
    }

    fn required_str(&self, key: &str) -> Result<String> {
        self.optional_str(key)?
            .ok_or_else(|| Error::config(format!("{key} is required in the network configuration")))
    }

    fn optional_u64(&self, key: &str) -> Result<Option<u64>> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| Error::config(format!("{key} must be a positive integer, got {v}"))),
        }
    }

    fn cidr_list(&self, key: &str) -> Result<Vec<IpNetwork>> {
        let items = match self.0.get(key) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(Error::config(format!(
                    "{key} must be a list of CIDRs, got {other}"
                )))
            }
        };
        items
            .iter()
            .map(|item| {
                let text = item.as_str().ok_or_else(|| {
                    Error::config(format!("{key} must be a list of CIDRs, got {item}"))
                })?;
                parse_cidr(text).map_err(|why| Error::config(format!("{key}: {text:?} {why}")))
            })
            .collect()
    }
}

/// A CIDR with an explicit prefix length ("10.0.0.3/32", "fd00::/64").
pub fn parse_cidr(text: &str) -> Result<IpNetwork, String> {
    if !text.contains('/') {
        return Err("is not a CIDR: the prefix length is missing (e.g. \"10.0.0.3/32\")".into());
    }
    text.parse::<IpNetwork>()
        .map_err(|e| format!("is not a valid CIDR: {e}"))
}

/// An interface name the kernel accepts.
pub fn check_ifname(key: &str, name: &str) -> Result<()> {
    validate_ifname(name).map_err(|why| Error::config(format!("{key} {name:?} {why}")))
}

/// Network names also name state files: the specification's character set, bounded length.
fn validate_network_name(name: &str) -> Result<()> {
    if is_valid_id(name, 100) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "name {name:?} is invalid: it must be 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )))
    }
}

/// GC's list of attachments to keep: `cni.dev/valid-attachments`, or the older
/// `cni.dev/attachments`.
fn valid_attachments(raw: &Map<String, Value>) -> Result<Option<Vec<(String, String)>>> {
    let Some((key, value)) = ["cni.dev/valid-attachments", "cni.dev/attachments"]
        .into_iter()
        .find_map(|k| raw.get(k).map(|v| (k, v)))
    else {
        return Ok(None);
    };
    let Value::Array(items) = value else {
        return Err(Error::config(format!("{key} must be a list, got {value}")));
    };
    items
        .iter()
        .map(|item| {
            let id = item.get("containerID").and_then(Value::as_str);
            let ifname = item.get("ifname").and_then(Value::as_str);
            match (id, ifname) {
                (Some(id), Some(ifname)) => Ok((id.to_owned(), ifname.to_owned())),
                _ => Err(Error::config(format!(
                    "{key}: every entry needs \"containerID\" and \"ifname\", got {item}"
                ))),
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
