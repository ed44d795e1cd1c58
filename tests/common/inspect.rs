//! What a namespace holds, read back with `ip -j`, and the assertions that nothing is left.

use super::netns::{entries, Netns, Pod};
use super::*;
use serde_json::Value;
use std::collections::BTreeSet;
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
    let only_lan = BTreeSet::from(["eth0".to_string(), "lo".to_string()]);
    assert_eq!(link_names(node), only_lan, "{when}: links on the node");
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

/// A JSON array's elements (anything else is a harness bug).
fn elements(v: Value) -> Vec<Value> {
    v.as_array()
        .cloned()
        .unwrap_or_else(|| panic!("not an array: {v}"))
}

/// Sorted names of the files in `dir` (none when it cannot be read).
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names = entries(dir);
    names.sort();
    names
}

/// Relative paths of everything below `dir`, `prefix` before each.
pub fn walk(dir: &Path, prefix: &str, found: &mut Vec<String>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            walk(&entry.path(), &format!("{name}/"), found);
        }
        found.push(name);
    }
}

// ---------------------------------------------------------------------------------------------
// Links and addresses
// ---------------------------------------------------------------------------------------------

/// Names of the links in a namespace.
pub fn link_names(ns: &Netns) -> BTreeSet<String> {
    elements(ns.ip_json(["link", "show"]))
        .iter()
        .map(|l| l["ifname"].as_str().expect("ifname").to_string())
        .collect()
}

/// Links of `ns` whose name starts with "mvh" (veth node ends, shims), by name.
pub fn mvh_links(ns: &Netns) -> Vec<String> {
    elements(ns.ip_json(["link", "show"]))
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .filter(|n| n.starts_with("mvh"))
        .map(str::to_string)
        .collect()
}

/// `ip -d link show dev DEV` of one link (kind under `linkinfo.info_kind`).
pub fn link_details(ns: &Netns, dev: &str) -> Value {
    ns.ip_json(["-d", "link", "show", "dev", dev])[0].clone()
}

pub fn link_kind(ns: &Netns, dev: &str) -> String {
    let link = link_details(ns, dev);
    link["linkinfo"]["info_kind"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The ifindex of `dev` in `ns`.
pub fn ifindex(ns: &Netns, dev: &str) -> Value {
    ns.ip_json(["link", "show", "dev", dev])[0]["ifindex"].clone()
}

/// Global addresses on `dev` in `ns` as `address/prefix`.
pub fn global_addresses(ns: &Netns, dev: &str) -> BTreeSet<String> {
    let links = elements(ns.ip_json(["addr", "show", "dev", dev]));
    links[0]["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

/// What a failed or undone call must leave unchanged on a node: its links, their addresses
/// (without flags, which change as duplicate address detection ends) and its routes.
pub fn node_state(node: &Netns) -> (BTreeSet<String>, BTreeSet<String>, Vec<Value>, Vec<Value>) {
    let addresses = elements(node.ip_json(["addr", "show"]))
        .iter()
        .flat_map(|link| {
            let name = link["ifname"].as_str().unwrap_or_default().to_string();
            link["addr_info"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |a| {
                    format!(
                        "{name} {}/{}",
                        a["local"].as_str().unwrap_or_default(),
                        a["prefixlen"]
                    )
                })
        })
        .collect();
    (
        link_names(node),
        addresses,
        node.routes("-4"),
        node.routes("-6"),
    )
}

/// Asserts that only `lo` is left in the pod and that it has no routes.
pub fn assert_pod_empty(pod: &Pod) {
    assert_eq!(
        link_names(pod),
        BTreeSet::from(["lo".to_string()]),
        "links left in {}",
        pod.name()
    );
    assert_eq!(
        pod.routes("-4"),
        Vec::<Value>::new(),
        "IPv4 routes in the pod"
    );
    assert_eq!(
        pod.routes("-6"),
        Vec::<Value>::new(),
        "IPv6 routes in the pod"
    );
}

// ---------------------------------------------------------------------------------------------
// Routes and neighbours
// ---------------------------------------------------------------------------------------------

/// Whether an `ip -j route`/`ip -j neigh` entry's `dst` is exactly `ip` (a /32 or /128).
pub fn dst_is(entry: &Value, ip: IpAddr) -> bool {
    entry["dst"].as_str().and_then(|d| d.parse::<IpAddr>().ok()) == Some(ip)
}

/// `ip`'s family as `ip` takes it: `-4` or `-6`.
pub fn family_flag(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "-4"
    } else {
        "-6"
    }
}

/// The /32 (/128) route to `ip` in `ns`, if any.
pub fn host_route(ns: &Netns, ip: IpAddr) -> Option<Value> {
    ns.routes(family_flag(ip))
        .into_iter()
        .find(|r| dst_is(r, ip))
}

/// Host routes (`/32`, `/128`) of the main table, both families.
pub fn host_routes(ns: &Netns) -> Vec<Value> {
    ["-4", "-6"]
        .into_iter()
        .flat_map(|f| ns.routes(f))
        .filter(|r| {
            let dst = r["dst"].as_str().unwrap_or("default");
            dst != "default" && !dst.contains('/')
        })
        .collect()
}

/// The neighbour entry for `ip` on `dev`, if any.
pub fn neighbour(ns: &Netns, dev: &str, ip: IpAddr) -> Option<Value> {
    ns.neigh()
        .into_iter()
        .find(|n| n["dev"] == dev && dst_is(n, ip))
}

pub fn is_permanent(entry: &Value) -> bool {
    entry["state"]
        .as_array()
        .is_some_and(|s| s.iter().any(|v| v == "PERMANENT"))
}

pub fn permanent_neighbours(ns: &Netns) -> Vec<Value> {
    ns.neigh().into_iter().filter(is_permanent).collect()
}

/// Nothing of macvlan-host's host side is on `node`: no veth or shim, no host route, no
/// permanent neighbour entry.
pub fn assert_no_host_side(node: &Netns) {
    assert_eq!(mvh_links(node), Vec::<String>::new(), "veth or shim left");
    assert_eq!(host_routes(node), Vec::<Value>::new(), "host routes left");
    assert_eq!(
        permanent_neighbours(node),
        Vec::<Value>::new(),
        "permanent neighbour entries left"
    );
}

/// No route to and no neighbour entry for any of `ips` on the node.
pub fn assert_no_trace_on_node(node: &Netns, ips: &[IpAddr], what: &str) {
    for ip in ips {
        assert!(
            host_route(node, *ip).is_none(),
            "{what}: the node's route to {ip} is left"
        );
        let left: Vec<Value> = node
            .neigh()
            .into_iter()
            .filter(|n| dst_is(n, *ip))
            .collect();
        assert!(
            left.is_empty(),
            "{what}: neighbour entries for {ip}: {left:?}"
        );
    }
}

/// Every file below `dir`, as paths relative to it (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(read) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in read.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}
