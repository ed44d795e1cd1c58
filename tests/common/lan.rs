//! The test LAN of the module docs of `common`: a bridge, two nodes and a peer, each a
//! namespace, and empty pod namespaces.

use super::netns::{delete_netns, entries, unique_name, Netns, Pod, NETNS_DIR};
use super::*;
use std::ops::Deref;
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// Lan: the test topology
// ---------------------------------------------------------------------------------------------

/// A machine on the LAN: its namespace (through `Deref`) and its addresses on `eth0`.
#[derive(Debug)]
pub struct Node {
    pub ns: Netns,
    pub ip4: &'static str,
    pub ip6: &'static str,
}

impl Deref for Node {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.ns
    }
}

/// The LAN of the module docs. Dropping it deletes its namespaces, pods included.
#[derive(Debug)]
pub struct Lan {
    /// `mvh-<pid>-<n>`: every namespace of this LAN is named `<prefix>-<role>`.
    prefix: String,
    /// The namespace holding the bridge `br0`.
    pub switch: Netns,
    pub node1: Node,
    pub node2: Node,
    pub peer: Node,
}

impl Lan {
    /// Builds the LAN; panics (after cleaning up what it made) if any step fails.
    pub fn new() -> Lan {
        let prefix = unique_name();
        let switch = member(&prefix, "lan");
        switch.ip(["link", "add", "br0", "type", "bridge", "forward_delay", "0"]);
        switch.ip(["link", "set", "br0", "up"]);
        let node1 = plug(&switch, member(&prefix, "node1"), NODE1_IP4, NODE1_IP6);
        let node2 = plug(&switch, member(&prefix, "node2"), NODE2_IP4, NODE2_IP6);
        let peer = plug(&switch, member(&prefix, "peer"), PEER_IP4, PEER_IP6);
        for node in [&node1, &node2] {
            node.ip(["route", "add", "default", "via", PEER_IP4, "dev", "eth0"]);
            node.ip([
                "-6", "route", "add", "default", "via", PEER_IP6, "dev", "eth0",
            ]);
        }
        Lan {
            prefix,
            switch,
            node1,
            node2,
            peer,
        }
    }

    /// A new empty pod namespace (`lo` up) named `<prefix>-pod-<name>`; deleted when the pod
    /// or the LAN is dropped, whichever comes first.
    pub fn pod(&self, name: &str) -> Pod {
        member(&self.prefix, &format!("pod-{name}"))
    }

    /// NODE1's LAN link (its `eth0`, the master, and the switch's port) at `mtu`: jumbo
    /// frames on the node's side of the LAN.
    pub fn set_node1_mtu(&self, mtu: u32) {
        let mtu = mtu.to_string();
        self.switch.ip(["link", "set", "node1", "mtu", &mtu]);
        self.node1.ip(["link", "set", "eth0", "mtu", &mtu]);
    }

    /// Names of the namespaces that currently exist for this LAN.
    pub fn namespaces(&self) -> Vec<String> {
        namespaces_with_prefix(&self.prefix)
    }
}

impl Default for Lan {
    fn default() -> Self {
        Lan::new()
    }
}

impl Drop for Lan {
    /// Deletes every namespace of this LAN, pods the test still holds included; their own
    /// `Drop` then finds nothing to do.
    fn drop(&mut self) {
        for name in namespaces_with_prefix(&self.prefix) {
            delete_netns(&name);
        }
    }
}

/// Existing namespaces named `<prefix>-...`.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let head = format!("{prefix}-");
    entries(Path::new(NETNS_DIR))
        .into_iter()
        .filter(|n| n.starts_with(&head))
        .collect()
}

/// Namespace `<prefix>-<role>` of a LAN.
pub(super) fn member(prefix: &str, role: &str) -> Netns {
    Netns::create(&format!("{prefix}-{role}"))
}

/// Makes `ns` a machine on the LAN: its `eth0` is a veth to `br0` in the switch, with the
/// machine's addresses (`nodad`: usable at once) and up.
pub(super) fn plug(switch: &Netns, ns: Netns, ip4: &'static str, ip6: &'static str) -> Node {
    // The switch's end is named after the machine's namespace role (`node1`, `peer`, ...).
    let port = ns
        .name()
        .rsplit('-')
        .next()
        .expect("role suffix")
        .to_string();
    // Created inside the switch namespace: `port` stays there, `eth0` goes to the machine.
    switch.ip([
        "link",
        "add",
        &port,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns.name(),
    ]);
    switch.ip(["link", "set", &port, "master", "br0", "up"]);
    ns.ip(["addr", "add", &format!("{ip4}/24"), "dev", "eth0"]);
    ns.ip(["addr", "add", &format!("{ip6}/64"), "dev", "eth0", "nodad"]);
    ns.ip(["link", "set", "eth0", "up"]);
    Node { ns, ip4, ip6 }
}

/// A machine's address of `ip`'s family.
pub fn node_ip(node: &Node, ip: std::net::IpAddr) -> std::net::IpAddr {
    let text = if ip.is_ipv4() { node.ip4 } else { node.ip6 };
    text.parse().expect("node address")
}
