//! The protocol layer seen from outside the crate: configuration, results, environment and
//! errors, for every spec version. Pure data in, data out: no root, no namespaces.
//!
//! One test binary, one module per part of the protocol.

mod config;
mod environment;
mod refusals;
mod results;

use macvlan_host::protocol::{Command, NetConf};
use serde_json::{json, Map, Value};

/// A valid interface-mode configuration; each case changes one key of it.
fn base_conf() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "cniVersion": "1.1.0",
        "name": "lan",
        "type": "macvlan-host",
        "master": "eth0",
        "ipam": { "type": "host-local", "subnet": "10.0.0.0/24" },
    }) else {
        unreachable!()
    };
    map
}

/// `base_conf` with `key` set to `value`, or removed when `value` is None.
fn conf_with(key: &str, value: Option<Value>) -> Vec<u8> {
    let mut conf = base_conf();
    match value {
        Some(v) => conf.insert(key.to_owned(), v),
        None => conf.remove(key),
    };
    serde_json::to_vec(&conf).unwrap()
}

fn parse(conf: Value) -> NetConf {
    NetConf::parse(&serde_json::to_vec(&conf).unwrap(), Command::Add).unwrap()
}
