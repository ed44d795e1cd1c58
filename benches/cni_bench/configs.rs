//! The network configurations every row uses.

use crate::common::*;
use crate::runner::FLOOR;
use serde_json::{json, Value};

/// Debian's reference plugins speak up to 1.0.0: every configuration that involves them uses it.
pub(crate) const CNI_VERSION: &str = "1.0.0";
pub(crate) const NETWORK: &str = "bench";

/// The one host-local configuration of every row (only its dataDir differs per node).
/// Pods are on the LAN's /16 above the machines' addresses: room for 250+ pods per node.
pub(crate) fn host_local(data_dir: &str) -> Value {
    json!({
        "type": "host-local",
        "dataDir": data_dir,
        "ranges": [[{
            "subnet": "10.99.0.0/16",
            "rangeStart": "10.99.1.1",
            "rangeEnd": "10.99.15.254",
            "gateway": PEER_IP4
        }]],
        "routes": [{"dst": "0.0.0.0/0"}]
    })
}

/// host-local run directly, as the runtime would run an IPAM plugin (its section under `ipam`).
pub(crate) fn host_local_alone(data_dir: &str) -> Value {
    json!({
        "cniVersion": CNI_VERSION, "name": NETWORK, "type": "host-local",
        "ipam": host_local(data_dir)
    })
}

/// The same host-local with a second, IPv6 range on the LAN's /64 (above the machines').
pub(crate) fn host_local_dual_stack(data_dir: &str) -> Value {
    let mut ipam = host_local(data_dir);
    ipam["ranges"]
        .as_array_mut()
        .expect("ranges")
        .push(json!([{"subnet": SUBNET6, "rangeStart": "fd99::1:1", "rangeEnd": "fd99::1:ffff"}]));
    ipam
}

/// The floor program (benches/kernel_floor.rs): a bare macvlan with one address, up.
pub(crate) fn kernel_floor() -> Value {
    json!({
        "cniVersion": CNI_VERSION, "name": NETWORK, "type": FLOOR,
        "master": "eth0", "address": "10.99.250.1/16"
    })
}

pub(crate) fn reference_macvlan(data_dir: &str) -> Value {
    json!({
        "cniVersion": CNI_VERSION, "name": NETWORK, "type": "macvlan",
        "master": "eth0", "mode": "bridge", "ipam": host_local(data_dir)
    })
}

/// Interface mode; `master: None` leaves it to the plugin's default (the default route's link).
pub(crate) fn ours_interface(
    access: &str,
    master: Option<&str>,
    state_dir: &str,
    data_dir: &str,
) -> Value {
    let mut conf = json!({
        "cniVersion": CNI_VERSION, "name": NETWORK, "type": OUR_TYPE, "mode": "bridge",
        "hostAccess": access, "stateDir": state_dir, "ipam": host_local(data_dir)
    });
    if let Some(master) = master {
        conf["master"] = json!(master);
    }
    conf
}

/// The chained entry of a conflist: after the reference macvlan.
pub(crate) fn ours_chained(access: &str, state_dir: &str) -> Value {
    json!({"type": OUR_TYPE, "hostAccess": access, "stateDir": state_dir})
}

pub(crate) fn with(mut conf: Value, key: &str, value: Value) -> Value {
    conf[key] = value;
    conf
}

pub(crate) fn type_of(conf: &Value) -> String {
    conf["type"].as_str().expect("type").to_string()
}
