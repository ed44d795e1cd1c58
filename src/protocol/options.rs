//! The network options of the front ends that take `-o key=value` (netavark's plugin, Docker's
//! remote driver): one set of names for all of them (`parent`, `mode`, `mtu`, `host_access`,
//! `host_routes`, `shim_name`, `shim_addresses`), checked with the rules of the CNI
//! configuration (`config.rs`, `mode.rs`, `names.rs`). Every error names the option as the
//! user typed it. A front end may also take `macvlan_mode` (`MODE_ALIAS`) for `mode`, as
//! Docker's own macvlan driver names it.

use std::fmt;

use ipnetwork::IpNetwork;

use super::config::{check_mtu, parse_cidr, HostAccess};
use crate::system::names::validate_ifname;
use crate::system::netlink::MacvlanMode;

/// The options every front end shares.
pub const SHARED: [&str; 7] = [
    "parent",
    "mode",
    "mtu",
    "host_access",
    "host_routes",
    "shim_name",
    "shim_addresses",
];

/// Another name of `mode`: Docker's own macvlan driver calls it so, and Docker users type it.
/// A front end accepts it by listing it among its own options.
pub const MODE_ALIAS: &str = "macvlan_mode";

/// The network's options, validated. What is not set is None or empty: the defaults (the
/// default route's interface, bridge mode, the master's MTU, a shim) are the caller's to fill.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkOptions {
    pub parent: Option<String>,
    pub mode: MacvlanMode,
    pub mtu: Option<u32>,
    pub host_access: HostAccess,
    pub host_routes: Vec<IpNetwork>,
    pub shim_name: Option<String>,
    pub shim_addresses: Vec<IpNetwork>,
}

/// A refused option: its name and value as given, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionError {
    pub option: String,
    pub value: String,
    pub why: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "option {}={:?}: {}", self.option, self.value, self.why)
    }
}

impl std::error::Error for OptionError {}

impl NetworkOptions {
    /// Reads `options` (name, value). `own` are the front end's options besides the shared
    /// ones: `MODE_ALIAS` there means `mode`, any other the front end reads itself. Any other
    /// name is refused, so a typo never silently means a default.
    pub fn parse<'a>(
        options: impl IntoIterator<Item = (&'a str, &'a str)>,
        own: &[&str],
    ) -> Result<NetworkOptions, OptionError> {
        let mut parsed = NetworkOptions {
            parent: None,
            mode: MacvlanMode::Bridge,
            mtu: None,
            host_access: HostAccess::Shim,
            host_routes: Vec::new(),
            shim_name: None,
            shim_addresses: Vec::new(),
        };
        // The mode as the user typed it (`mode` or its alias), to name it in errors.
        let mut mode_given: Option<(&str, &str)> = None;
        for (option, value) in options {
            let refuse = |why: String| OptionError {
                option: option.to_owned(),
                value: value.to_owned(),
                why,
            };
            match option {
                "parent" => parsed.parent = Some(interface_name(value).map_err(refuse)?),
                "mode" | MODE_ALIAS if option == "mode" || own.contains(&MODE_ALIAS) => {
                    if let Some((first, _)) = mode_given.filter(|(first, _)| *first != option) {
                        return Err(refuse(format!(
                            "{first} is given too: {first} and {option} are the same option, give one"
                        )));
                    }
                    parsed.mode = value.parse().map_err(refuse)?;
                    mode_given = Some((option, value));
                }
                "mtu" => {
                    let number = value
                        .parse::<u64>()
                        .map_err(|_| refuse("is not a positive integer".to_owned()))?;
                    parsed.mtu = Some(check_mtu(number).map_err(refuse)?);
                }
                "host_access" => parsed.host_access = value.parse().map_err(refuse)?,
                "host_routes" => parsed.host_routes = cidrs(value).map_err(refuse)?,
                "shim_name" => parsed.shim_name = Some(interface_name(value).map_err(refuse)?),
                "shim_addresses" => parsed.shim_addresses = cidrs(value).map_err(refuse)?,
                _ if own.contains(&option) => {}
                _ => {
                    let mut known: Vec<&str> = SHARED.to_vec();
                    known.extend(own);
                    return Err(refuse(format!(
                        "unknown option (known: {})",
                        known.join(", ")
                    )));
                }
            }
        }
        if let Some((option, value)) = mode_given {
            if parsed.host_access == HostAccess::Shim && parsed.mode != MacvlanMode::Bridge {
                return Err(OptionError {
                    option: option.to_owned(),
                    value: value.to_owned(),
                    why: "the shim (host_access=shim, the default) reaches containers only in \
                          bridge mode; use host_access=veth for other modes"
                        .to_owned(),
                });
            }
        }
        Ok(parsed)
    }
}

fn interface_name(value: &str) -> Result<String, String> {
    validate_ifname(value)
        .map(|()| value.to_owned())
        .map_err(|why| format!("the interface name {why}"))
}

/// A comma-separated list of CIDRs ("10.96.0.0/12,fd00:96::/108"); empty items are skipped.
fn cidrs(value: &str) -> Result<Vec<IpNetwork>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| parse_cidr(item).map_err(|why| format!("{item:?} {why}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<NetworkOptions, OptionError> {
        NetworkOptions::parse(pairs.iter().copied(), &["state_dir"])
    }

    #[test]
    fn defaults_and_every_option() {
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.mode, MacvlanMode::Bridge);
        assert_eq!(defaults.host_access, HostAccess::Shim);
        let all = parse(&[
            ("parent", "eth0"),
            ("mode", "private"),
            ("mtu", "1400"),
            ("host_access", "veth"),
            ("host_routes", "10.96.0.0/12, fd00:96::/108"),
            ("shim_name", "lanshim"),
            ("shim_addresses", "10.0.0.250/32"),
            ("state_dir", "/tmp/x"),
        ])
        .unwrap();
        assert_eq!(all.parent.as_deref(), Some("eth0"));
        assert_eq!(all.mode, MacvlanMode::Private);
        assert_eq!(all.mtu, Some(1400));
        assert_eq!(all.host_access, HostAccess::Veth);
        assert_eq!(all.host_routes.len(), 2);
        assert_eq!(all.shim_name.as_deref(), Some("lanshim"));
        assert_eq!(all.shim_addresses.len(), 1);
    }

    #[test]
    fn errors_name_the_option_as_typed() {
        for (option, value, says) in [
            ("mode", "bridged", "bridge"),
            ("mtu", "9", "between 68 and 65535"),
            ("mtu", "big", "positive integer"),
            ("host_access", "tunnel", "\"shim\""),
            ("host_routes", "10.96.0.0", "prefix length"),
            ("shim_name", "a-name-longer-than-15", "15 bytes"),
            ("parent", "eth/0", "'/'"),
            ("hostaccess", "veth", "unknown option"),
            ("macvlan_mode", "bridge", "unknown option"),
            ("mode", "vepa", "host_access=veth"),
        ] {
            let err = parse(&[(option, value)]).unwrap_err();
            assert_eq!((err.option.as_str(), err.value.as_str()), (option, value));
            let text = err.to_string();
            assert!(text.starts_with(&format!("option {option}=")), "{text}");
            assert!(text.contains(says), "{text} should say {says}");
        }
    }

    #[test]
    fn a_front_end_may_name_mode_macvlan_mode() {
        let docker =
            |pairs: &[(&str, &str)]| NetworkOptions::parse(pairs.iter().copied(), &[MODE_ALIAS]);
        let private = docker(&[("macvlan_mode", "private"), ("host_access", "veth")]).unwrap();
        assert_eq!(private.mode, MacvlanMode::Private);
        for (pairs, named) in [
            (vec![("macvlan_mode", "bridged")], "option macvlan_mode="),
            (vec![("macvlan_mode", "vepa")], "option macvlan_mode="),
            (
                vec![("mode", "bridge"), ("macvlan_mode", "bridge")],
                "option macvlan_mode=",
            ),
            (
                vec![("macvlan_mode", "bridge"), ("mode", "bridge")],
                "option mode=",
            ),
        ] {
            let text = docker(&pairs).unwrap_err().to_string();
            assert!(text.starts_with(named), "{pairs:?}: {text}");
        }
        assert!(docker(&[("mode", "bridge"), ("macvlan_mode", "bridge")])
            .unwrap_err()
            .why
            .contains("same option"));
        // Veth and none reach containers in any mode.
        assert!(docker(&[("mode", "vepa"), ("host_access", "none")]).is_ok());
    }
}
