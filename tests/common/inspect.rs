//! What a namespace holds, read back with `ip -j`, and the assertions that nothing is left.

use super::netns::{entries, Netns};
use super::*;
use serde_json::Value;
use std::net::IpAddr;
use std::path::Path;

/// The addresses host-local has allocated under `data_dir`, as `<network>/<ip>` (its lock
/// and `last_reserved_ip.*` bookkeeping files excluded). Empty means nothing leaked.
pub fn host_local_allocations(data_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for network in entries(data_dir) {
        for file in entries(&data_dir.join(&network)) {
            if file.parse::<IpAddr>().is_ok() {
                found.push(format!("{network}/{file}"));
            }
        }
    }
    found.sort();
    found
}

/// A node as `Lan::new` made it, with nothing of any attachment left: no link but `lo` and
/// `eth0`, no IPv4 route but the LAN's and the default, no permanent neighbour entry.
pub fn assert_node_pristine(node: &Netns, when: &str) {
    let links: Vec<String> = node
        .ip_json(["link"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(links, ["lo", "eth0"], "{when}: links on the node");
    let routes: Vec<String> = node
        .routes("-4")
        .iter()
        .map(|r| r["dst"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        routes,
        ["default", SUBNET4],
        "{when}: IPv4 routes on the node"
    );
    let permanent: Vec<Value> = node
        .neigh()
        .into_iter()
        .filter(|n| n["state"].to_string().contains("PERMANENT"))
        .collect();
    assert!(
        permanent.is_empty(),
        "{when}: permanent neighbours on the node: {permanent:?}"
    );
}
