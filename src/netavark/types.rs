//! netavark's plugin protocol on the wire (containers/netavark `plugin-API.md`): the network
//! podman stores, the request of `setup` and `teardown`, the status block `setup` answers, and
//! `info`. Only the fields this plugin reads are typed; every other field is kept as received
//! (`rest`), so `create` prints the network back without losing what podman sent.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A podman network (`podman network create`; also inside every `setup` request).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<Vec<Subnet>>,
    #[serde(default)]
    pub ipv6_enabled: bool,
    #[serde(default)]
    pub internal: bool,
    /// `-o key=value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
    /// `--ipam-driver` (`{"driver": "dhcp"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// `--route`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<NetworkRoute>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Network {
    pub fn subnets(&self) -> &[Subnet] {
        self.subnets.as_deref().unwrap_or_default()
    }

    pub fn options(&self) -> impl Iterator<Item = (&str, &str)> {
        self.options
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.as_ref()?.get(name).map(String::as_str)
    }

    pub fn ipam_driver(&self) -> Option<&str> {
        self.ipam_options
            .as_ref()?
            .get("driver")
            .map(String::as_str)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Subnet {
    pub subnet: IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A route of the network (`podman network create --route DST,GW[,METRIC]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct NetworkRoute {
    pub destination: IpNetwork,
    pub gateway: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
}

/// The request of `setup` and `teardown` (`NetworkPluginExec`).
#[derive(Clone, Debug, Deserialize)]
pub struct PluginRequest {
    pub container_id: String,
    #[serde(default)]
    pub container_name: String,
    pub network: Network,
    pub network_options: PerNetworkOptions,
}

/// What podman chose for this container on this network.
#[derive(Clone, Debug, Deserialize)]
pub struct PerNetworkOptions {
    /// `eth0`, or `eth1`... for `podman network connect`.
    pub interface_name: String,
    /// Allocated by podman's IPAM already (`--ip`, or the next free one).
    #[serde(default)]
    pub static_ips: Option<Vec<IpAddr>>,
    /// `--mac-address`; podman passes it without enforcing it.
    #[serde(default)]
    pub static_mac: Option<String>,
}

/// `setup`'s answer, which podman shows in `podman inspect`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StatusBlock {
    pub dns_search_domains: Vec<String>,
    pub dns_server_ips: Vec<IpAddr>,
    pub interfaces: BTreeMap<String, NetInterface>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NetInterface {
    pub mac_address: String,
    pub subnets: Vec<NetAddress>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NetAddress {
    /// The container's address with the subnet's prefix length.
    pub ipnet: IpNetwork,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// `info`.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
    pub version: &'static str,
    pub api_version: &'static str,
    pub description: &'static str,
}

/// The plugin API version this plugin implements (the only one there is).
pub const API_VERSION: &str = "1.0.0";
