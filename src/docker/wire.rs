//! The remote network driver protocol's messages (moby `libnetwork/docs/remote.md`), as Docker
//! 26 and 28 send them. Requests are read leniently: unknown fields are ignored and absent
//! ones take their defaults, so a newer dockerd that adds a field still works.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `/Plugin.Activate`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Activated {
    pub implements: Vec<&'static str>,
}

/// `/NetworkDriver.GetCapabilities`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Capabilities {
    pub scope: &'static str,
    pub connectivity_scope: &'static str,
}

/// One address pool of a network, as Docker's IPAM allocated it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamData {
    pub pool: String,
    /// `a.b.c.d/nn`: the gateway with the pool's prefix length.
    pub gateway: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateNetwork {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// `com.docker.network.generic` holds the `-o key=value` options.
    pub options: BTreeMap<String, Value>,
    #[serde(rename = "IPv4Data", deserialize_with = "null_as_empty")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", deserialize_with = "null_as_empty")]
    pub ipv6_data: Vec<IpamData>,
}

/// DeleteNetwork.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkRef {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

/// The endpoint's interface: what Docker chose (`--ip`, `--ip6`, `--mac-address`, or its
/// IPAM); empty strings for what it left to the driver.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointInterface {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(rename = "AddressIPv6", skip_serializing_if = "String::is_empty")]
    pub address_ipv6: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateEndpoint {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub interface: EndpointInterface,
}

/// The reply to CreateEndpoint: only what the driver chose itself (Docker refuses a value
/// it had given being given back).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointCreated {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<EndpointInterface>,
}

/// Leave, DeleteEndpoint, EndpointOperInfo, Program/RevokeExternalConnectivity.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointRef {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Join {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The container's network namespace: Docker 26 creates it only after Join.
    pub sandbox_key: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InterfaceName {
    /// The link in the node's namespace that Docker moves into the container.
    pub src_name: String,
    /// Docker names it `<prefix><n>` inside.
    pub dst_prefix: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Joined {
    pub interface_name: InterfaceName,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(rename = "GatewayIPv6", skip_serializing_if = "String::is_empty")]
    pub gateway_ipv6: String,
    pub static_routes: Vec<Value>,
}

/// EndpointOperInfo: a free map that `docker inspect` shows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OperInfo {
    pub value: BTreeMap<String, Value>,
}

/// Any failure, in Docker's words.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Failure {
    pub err: String,
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_requests_parse() {
        let create: CreateNetwork = serde_json::from_str(
            r#"{"NetworkID":"216e","Options":{"com.docker.network.enable_ipv6":false,
            "com.docker.network.generic":{"parent":"eth0"}},
            "IPv4Data":[{"AddressSpace":"LocalDefault","Gateway":"10.99.0.1/24","Pool":"10.99.0.0/24"}],
            "IPv6Data":null}"#,
        )
        .unwrap();
        assert_eq!(create.ipv4_data[0].gateway, "10.99.0.1/24");
        assert!(create.ipv6_data.is_empty());
        let endpoint: CreateEndpoint = serde_json::from_str(
            r#"{"NetworkID":"n","EndpointID":"e","Interface":{"Address":"10.99.0.110/24",
            "AddressIPv6":"","MacAddress":"02:00:00:00:00:42"},"Options":{}}"#,
        )
        .unwrap();
        assert_eq!(endpoint.interface.mac_address, "02:00:00:00:00:42");
        let empty: CreateEndpoint =
            serde_json::from_str(r#"{"NetworkID":"n","EndpointID":"e","Interface":null}"#).unwrap();
        assert!(empty.interface.address.is_empty());
    }

    #[test]
    fn replies_leave_out_what_is_empty() {
        let reply = EndpointCreated {
            interface: Some(EndpointInterface {
                mac_address: "02:00:00:00:00:01".into(),
                ..EndpointInterface::default()
            }),
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"Interface":{"MacAddress":"02:00:00:00:00:01"}}"#
        );
        assert_eq!(
            serde_json::to_string(&EndpointCreated::default()).unwrap(),
            "{}"
        );
    }
}
