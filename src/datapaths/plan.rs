//! The desired state of one attachment's host access: from the configuration's values (ADD,
//! `plan`) or an attachment record (`replan`), and the node's facts (its master: name, index,
//! MAC, MTU; the master's addresses), the objects that must exist. Observing the node is one
//! step (`NodeFacts::observe`); everything after it is a pure function (`desired`,
//! `Plan::node_routes`, `Plan::pod_neighbours`...), unit-tested without root.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::host_path::{self, PodLink};
pub use super::host_path::{PodInterface, Settings};
use super::node::{same_family, usable_addresses_of, Node};
use super::shim;
use crate::error::{Context, Error, Result};
use crate::system::netlink::{Address, Link};
use crate::system::state::{AttachmentKey, NetnsIdentity, Record};
use crate::system::Mac;

pub struct Plan {
    /// What will be recorded, and what ensure makes true.
    pub record: Record,
    /// The source of node -> pod routes, one per family the pod uses.
    pub sources: Vec<IpAddr>,
    /// The pod's interface when known (ADD); looked up by name otherwise.
    pub pod_link: Option<PodLink>,
    /// Node addresses an earlier run gave the pod entries for, which are no longer the node's.
    pub stale_node_addresses: Vec<IpAddr>,
}

/// What the node is now, as far as host access cares: the master (name, index, MAC, MTU)
/// and the master's addresses.
pub struct NodeFacts {
    pub master: Link,
    pub addresses: Vec<Address>,
}

impl NodeFacts {
    /// One lookup of the master's addresses (filtered by the kernel: O(1) in the pods).
    pub fn observe(node: &Node, master: Link) -> Result<NodeFacts> {
        let addresses = node.addresses_of(&master)?;
        Ok(NodeFacts { master, addresses })
    }
}

/// ADD: plans host access for the pod's interface. One lookup per pod address, the master's
/// addresses.
pub fn plan(
    node: &Node,
    settings: &Settings,
    key: &AttachmentKey,
    master: &Link,
    netns_path: &str,
    pod_if: &PodInterface,
) -> Result<Plan> {
    // The addresses were refused already when they cannot be a pod's (the node's own among
    // them: `pod_addresses`, before anything was made).
    let facts = NodeFacts::observe(node, master.clone())?;
    let mut plan = planned(settings, key, &facts, netns_path, pod_if)?;
    // Which namespace the path names now: a gone pod is told from one out of view later.
    plan.record.netns_identity = NetnsIdentity::observe(std::path::Path::new(netns_path));
    Ok(plan)
}

/// ADD's desired state, from the configuration's values and the node's facts.
pub fn planned(
    settings: &Settings,
    key: &AttachmentKey,
    facts: &NodeFacts,
    netns_path: &str,
    pod_if: &PodInterface,
) -> Result<Plan> {
    let master = &facts.master;
    let side = host_path::plan_side(settings, key, master, pod_if)?;
    let (sources, node_ips) = addresses(
        &facts.addresses,
        master,
        &side.own_addresses,
        &pod_if.addresses,
    )?;
    let record = Record {
        key: key.clone(),
        path: side.side,
        master: master.name.clone(),
        master_index: master.index,
        netns: netns_path.to_owned(),
        pod_mac: side.pod_mac,
        pod_addresses: pod_if.addresses.clone(),
        node_addresses: node_ips,
        host_mac: side.host_mac,
        host_routes: settings.host_routes.clone(),
        shim_addresses: side.own_addresses,
        link_group: pod_if.link_group,
        pod_ifname: None,
        netns_identity: None,
    };
    Ok(Plan {
        record,
        sources,
        pod_link: Some(PodLink {
            index: pod_if.index,
            mtu: pod_if.mtu,
        }),
        stale_node_addresses: Vec::new(),
    })
}

/// Reconcile and verify: the plan of a recorded attachment, with the node as it is now (its
/// master may have a new index, MAC or MTU, its addresses may have changed).
pub fn replan(node: &Node, record: &Record) -> Result<(Plan, Link)> {
    let master = current_master(node, record)?.ok_or_else(|| {
        Error::internal(format!(
            "master {} does not exist in the node's network namespace",
            record.master
        ))
    })?;
    replan_on(node, record, master)
}

/// The record's master as the node has it now (None: gone).
pub fn current_master(node: &Node, record: &Record) -> Result<Option<Link>> {
    node.netlink
        .link_by_name(&record.master)
        .with_context(|| format!("looking up master {}", record.master))
}

/// `replan` with the master looked up already.
pub fn replan_on(node: &Node, record: &Record, master: Link) -> Result<(Plan, Link)> {
    let facts = NodeFacts::observe(node, master)?;
    let plan = desired(record, &facts)?;
    Ok((plan, facts.master))
}

/// A recorded attachment's desired state with the node as it is now: new route sources for a
/// renumbered node (and the pod's entries for its old addresses to remove), the shim's MAC
/// from the master's current MAC.
pub fn desired(record: &Record, facts: &NodeFacts) -> Result<Plan> {
    let master = &facts.master;
    let (sources, node_ips) = addresses(
        &facts.addresses,
        master,
        &record.shim_addresses,
        &record.pod_addresses,
    )?;
    let stale = record
        .node_addresses
        .iter()
        .copied()
        .filter(|ip| !node_ips.contains(ip))
        .collect();
    let mut updated = record.clone();
    updated.master_index = master.index;
    updated.node_addresses = node_ips;
    // The shim's MAC follows the master's current MAC (a bridge that gained a port, a bond
    // that failed over): one value for every attachment on the shim, never the one a record
    // was written with, so two attachments never fight over it.
    if let Some(name) = record.path.shared_shim() {
        updated.host_mac = shim::mac_for(master, name);
    }
    Ok(Plan {
        record: updated,
        sources,
        pod_link: None,
        stale_node_addresses: stale,
    })
}

/// A node route the plan wants: to one pod address, with the node's address as source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRoute {
    pub ip: IpAddr,
    pub source: Option<IpAddr>,
}

/// A route the plan wants in the pod: to a node address (on the pod's device) or a
/// `hostRoutes` entry (through the node's address of its family).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRoute {
    pub destination: IpNetwork,
    pub via: Option<IpAddr>,
}

impl Plan {
    /// The node's routes: one per pod address.
    pub fn node_routes(&self) -> Vec<NodeRoute> {
        self.record
            .pod_addresses
            .iter()
            .map(|a| NodeRoute {
                ip: a.ip(),
                source: self
                    .sources
                    .iter()
                    .copied()
                    .find(|s| same_family(*s, a.ip())),
            })
            .collect()
    }

    /// The node's permanent neighbour entries: pod address -> pod MAC.
    pub fn node_neighbours(&self) -> Vec<(IpAddr, Mac)> {
        let mac = self.record.pod_mac;
        self.record
            .pod_addresses
            .iter()
            .map(|a| (a.ip(), mac))
            .collect()
    }

    /// The pod's permanent neighbour entries: node address -> the host device's MAC.
    pub fn pod_neighbours(&self) -> Vec<(IpAddr, Mac)> {
        let mac = self.record.host_mac;
        self.record
            .node_addresses
            .iter()
            .map(|ip| (*ip, mac))
            .collect()
    }

    /// The pod's routes to node addresses: those `needs_route` (the host path) asks for,
    /// given whether the address is on-link in one of the pod's prefixes.
    pub fn pod_routes_to_node(&self, needs_route: impl Fn(bool) -> bool) -> Vec<PodRoute> {
        let record = &self.record;
        record
            .node_addresses
            .iter()
            .filter(|ip| needs_route(record.pod_addresses.iter().any(|p| p.contains(**ip))))
            .map(|ip| PodRoute {
                destination: IpNetwork::from(*ip),
                via: None,
            })
            .collect()
    }

    /// The pod's `hostRoutes` entries, through the node's address of each one's family.
    pub fn host_routes(&self) -> Result<Vec<PodRoute>> {
        let record = &self.record;
        record
            .host_routes
            .iter()
            .map(|cidr| {
                let via = record
                    .node_addresses
                    .iter()
                    .copied()
                    .find(|ip| same_family(*ip, cidr.ip()))
                    .ok_or_else(|| {
                        Error::config(format!(
                            "hostRoutes {cidr}: the node has no address of that family on the master to route through"
                        ))
                    })?;
                Ok(PodRoute {
                    destination: *cidr,
                    via: Some(via),
                })
            })
            .collect()
    }
}

/// Per family of the pod: the route source (the host device's own address when configured,
/// else the node's current address on the master), and the node addresses the pod reaches
/// through the host side, each once.
fn addresses(
    node_addresses: &[Address],
    master: &Link,
    own: &[IpNetwork],
    pod: &[IpNetwork],
) -> Result<(Vec<IpAddr>, Vec<IpAddr>)> {
    let on_master = usable_addresses_of(node_addresses, master);
    let mut sources = Vec::new();
    for family_v4 in [true, false] {
        if !pod.iter().any(|a| a.is_ipv4() == family_v4) {
            continue;
        }
        let pick = |list: &[IpNetwork]| {
            list.iter()
                .find(|a| a.is_ipv4() == family_v4)
                .map(|a| a.ip())
        };
        let source = pick(own).or_else(|| pick(&on_master)).ok_or_else(|| {
            let family = if family_v4 { "IPv4" } else { "IPv6" };
            Error::config(format!(
                "the pod has an {family} address but master {} has no {family} address to reach it from: \
                 give {} an {family} address, or set \"shimAddresses\" to an {family} address reserved for the shim",
                master.name, master.name
            ))
        })?;
        sources.push(source);
    }
    let mut node_ips: Vec<IpAddr> = Vec::new();
    for ip in own.iter().chain(&on_master).map(|a| a.ip()) {
        let pod_family = pod.iter().any(|p| same_family(p.ip(), ip));
        if pod_family && !node_ips.contains(&ip) {
            node_ips.push(ip);
        }
    }
    Ok((sources, node_ips))
}

/// Desired state, table by table, without root: dual stack, IPv6-only, a renumbered node,
/// `shimAddresses`, `hostRoutes`, a master whose MAC changed, shim and veth.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::HostAccess;
    use crate::system::netlink::MacvlanMode;
    use crate::system::state::RecordedPath;

    fn net(text: &str) -> IpNetwork {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn master(mac_last: u8) -> Link {
        crate::datapaths::testing::master(2, mac_last)
    }

    fn address(text: &str) -> Address {
        Address {
            index: 2,
            network: net(text),
            tentative: false,
            dad_failed: false,
            scope: 0,
        }
    }

    fn facts(addresses: &[&str]) -> NodeFacts {
        NodeFacts {
            master: master(1),
            addresses: addresses.iter().map(|a| address(a)).collect(),
        }
    }

    const DUAL_NODE: [&str; 2] = ["10.0.0.10/24", "fd00::10/64"];

    fn settings(host_access: HostAccess) -> Settings {
        Settings {
            host_access,
            shim_name: None,
            shim_addresses: Vec::new(),
            veth_name: None,
            host_routes: Vec::new(),
        }
    }

    fn key() -> AttachmentKey {
        AttachmentKey {
            network: "lan".into(),
            container_id: "c1".into(),
            ifname: "eth0".into(),
        }
    }

    fn pod_if(addresses: &[&str]) -> PodInterface {
        PodInterface {
            ifname: "eth0".into(),
            index: 5,
            mac: Mac([2, 0, 0, 0, 0, 0x55]),
            mtu: 9000,
            macvlan_mode: Some(MacvlanMode::Bridge),
            addresses: addresses.iter().map(|a| net(a)).collect(),
            link_group: Some(7),
        }
    }

    fn shim_plan(node: &[&str], pod: &[&str]) -> Result<Plan> {
        planned(
            &settings(HostAccess::Shim),
            &key(),
            &facts(node),
            "/run/netns/p",
            &pod_if(pod),
        )
    }

    #[test]
    fn dual_stack_has_a_source_and_a_node_address_per_family() {
        let plan = shim_plan(&DUAL_NODE, &["10.0.0.100/24", "fd00::100/64"]).unwrap();
        assert_eq!(plan.sources, vec![ip("10.0.0.10"), ip("fd00::10")]);
        assert_eq!(
            plan.record.node_addresses,
            vec![ip("10.0.0.10"), ip("fd00::10")]
        );
    }

    #[test]
    fn an_ipv6_only_pod_gets_only_the_nodes_ipv6_address() {
        let plan = shim_plan(&DUAL_NODE, &["fd00::100/64"]).unwrap();
        assert_eq!(plan.sources, vec![ip("fd00::10")]);
        assert_eq!(plan.record.node_addresses, vec![ip("fd00::10")]);
    }

    #[test]
    fn an_ipv4_only_pod_gets_only_the_nodes_ipv4_address() {
        let plan = shim_plan(&DUAL_NODE, &["10.0.0.100/24"]).unwrap();
        assert_eq!(plan.sources, vec![ip("10.0.0.10")]);
        assert_eq!(plan.record.node_addresses, vec![ip("10.0.0.10")]);
    }

    #[test]
    fn a_family_the_master_lacks_is_refused_naming_shim_addresses() {
        let err = shim_plan(&["10.0.0.10/24"], &["fd00::100/64"])
            .err()
            .unwrap();
        assert!(err.msg.contains("no IPv6 address"), "{}", err.msg);
        assert!(err.msg.contains("shimAddresses"), "{}", err.msg);
    }

    #[test]
    fn shim_addresses_are_the_preferred_source_and_reachable_node_addresses() {
        let mut with_own = settings(HostAccess::Shim);
        with_own.shim_addresses = vec![net("fd00::99/128")];
        let plan = planned(
            &with_own,
            &key(),
            &facts(&["10.0.0.10/24"]),
            "/run/netns/p",
            &pod_if(&["10.0.0.100/24", "fd00::100/64"]),
        )
        .unwrap();
        assert_eq!(plan.sources, vec![ip("10.0.0.10"), ip("fd00::99")]);
        assert_eq!(
            plan.record.node_addresses,
            vec![ip("fd00::99"), ip("10.0.0.10")]
        );
        assert_eq!(plan.record.shim_addresses, vec![net("fd00::99/128")]);
    }

    #[test]
    fn tentative_failed_and_link_scope_addresses_are_no_source() {
        let mut node = facts(&["10.0.0.10/24", "fd00::1/64", "fd00::2/64", "fe80::1/64"]);
        node.addresses[1].tentative = true;
        node.addresses[2].dad_failed = true;
        node.addresses[3].scope = 253;
        let plan = planned(
            &settings(HostAccess::Shim),
            &key(),
            &node,
            "/run/netns/p",
            &pod_if(&["10.0.0.100/24"]),
        )
        .unwrap();
        assert_eq!(plan.record.node_addresses, vec![ip("10.0.0.10")]);
        let v6 = planned(
            &settings(HostAccess::Shim),
            &key(),
            &node,
            "/run/netns/p",
            &pod_if(&["fd00::100/64"]),
        );
        assert!(v6.is_err(), "no usable IPv6 address on the master");
    }

    #[test]
    fn the_shim_side_is_named_after_the_master_with_a_derived_mac() {
        let plan = shim_plan(&DUAL_NODE, &["10.0.0.100/24"]).unwrap();
        assert_eq!(
            plan.record.path,
            RecordedPath::Shim {
                name: "mvh-eth0".into()
            }
        );
        assert_eq!(plan.record.host_mac, shim::mac_for(&master(1), "mvh-eth0"));
        assert_eq!(plan.record.pod_mac, pod_if(&[]).mac, "the pod's own MAC");
        assert_eq!(plan.pod_link.map(|l| (l.index, l.mtu)), Some((5, 9000)));
    }

    #[test]
    fn shim_name_overrides_the_derived_name() {
        let mut named = settings(HostAccess::Shim);
        named.shim_name = Some("lanshim".into());
        let plan = planned(
            &named,
            &key(),
            &facts(&DUAL_NODE),
            "/run/netns/p",
            &pod_if(&["10.0.0.100/24"]),
        )
        .unwrap();
        assert_eq!(plan.record.path.shared_shim(), Some("lanshim"));
        assert_eq!(plan.record.host_mac, shim::mac_for(&master(1), "lanshim"));
    }

    #[test]
    fn the_shim_refuses_a_pod_macvlan_not_in_bridge_mode() {
        let mut private = pod_if(&["10.0.0.100/24"]);
        private.macvlan_mode = Some(MacvlanMode::Private);
        let err = planned(
            &settings(HostAccess::Shim),
            &key(),
            &facts(&DUAL_NODE),
            "/run/netns/p",
            &private,
        )
        .err()
        .unwrap();
        assert!(
            err.msg.contains("private mode") && err.msg.contains("veth"),
            "{}",
            err.msg
        );
    }

    #[test]
    fn the_veth_side_has_derived_names_and_macs_of_its_own() {
        let plan = planned(
            &settings(HostAccess::Veth),
            &key(),
            &facts(&DUAL_NODE),
            "/run/netns/p",
            &pod_if(&["10.0.0.100/24"]),
        )
        .unwrap();
        let RecordedPath::Veth { name, pod_end } = &plan.record.path else {
            panic!("a veth side: {:?}", plan.record.path);
        };
        assert!(name.starts_with("mvh") && name.len() <= 15, "{name}");
        assert_eq!(pod_end, "host-eth0");
        // The node's neighbour entries point at the veth's pod end, not at the macvlan.
        assert_ne!(plan.record.pod_mac, pod_if(&[]).mac);
        assert_ne!(plan.record.host_mac, plan.record.pod_mac);
        let again = planned(
            &settings(HostAccess::Veth),
            &key(),
            &facts(&DUAL_NODE),
            "/run/netns/p",
            &pod_if(&["10.0.0.100/24"]),
        )
        .unwrap();
        assert_eq!(again.record, plan.record, "derived: the same every time");
    }

    #[test]
    fn host_access_none_plans_nothing() {
        let none = planned(
            &settings(HostAccess::None),
            &key(),
            &facts(&DUAL_NODE),
            "/run/netns/p",
            &pod_if(&["10.0.0.100/24"]),
        );
        assert!(none.is_err());
    }

    #[test]
    fn a_renumbered_node_gets_new_sources_and_its_old_address_is_stale() {
        let record = shim_plan(&DUAL_NODE, &["10.0.0.100/24", "fd00::100/64"])
            .unwrap()
            .record;
        let now = desired(&record, &facts(&["10.0.0.12/24", "fd00::10/64"])).unwrap();
        assert_eq!(now.sources, vec![ip("10.0.0.12"), ip("fd00::10")]);
        assert_eq!(
            now.record.node_addresses,
            vec![ip("10.0.0.12"), ip("fd00::10")]
        );
        assert_eq!(now.stale_node_addresses, vec![ip("10.0.0.10")]);
    }

    #[test]
    fn an_unchanged_node_has_nothing_stale_and_the_same_record() {
        let record = shim_plan(&DUAL_NODE, &["10.0.0.100/24"]).unwrap().record;
        let now = desired(&record, &facts(&DUAL_NODE)).unwrap();
        assert!(now.stale_node_addresses.is_empty());
        assert_eq!(now.record, record, "nothing to write");
        assert!(now.pod_link.is_none(), "looked up by name later");
    }

    #[test]
    fn a_master_whose_mac_changed_gives_the_shim_a_new_mac_for_every_pod() {
        let record = shim_plan(&DUAL_NODE, &["10.0.0.100/24"]).unwrap().record;
        let mut changed = facts(&DUAL_NODE);
        changed.master = master(0x42);
        let now = desired(&record, &changed).unwrap();
        assert_ne!(now.record.host_mac, record.host_mac);
        assert_eq!(
            now.record.host_mac,
            shim::mac_for(&changed.master, "mvh-eth0")
        );
        // The pods' neighbour entries for the node follow it.
        assert!(now
            .pod_neighbours()
            .iter()
            .all(|(_, mac)| *mac == now.record.host_mac));
        // Two records of the shim made before the change agree after it: nothing to fight.
        let mut other = record.clone();
        other.key.container_id = "c2".into();
        assert_eq!(
            desired(&other, &changed).unwrap().record.host_mac,
            now.record.host_mac
        );
    }

    #[test]
    fn a_veths_macs_do_not_follow_the_master() {
        let record = planned(
            &settings(HostAccess::Veth),
            &key(),
            &facts(&DUAL_NODE),
            "/run/netns/p",
            &pod_if(&["10.0.0.100/24"]),
        )
        .unwrap()
        .record;
        let mut changed = facts(&DUAL_NODE);
        changed.master = master(0x42);
        assert_eq!(
            desired(&record, &changed).unwrap().record.host_mac,
            record.host_mac
        );
    }

    #[test]
    fn a_master_with_a_new_index_is_recorded() {
        let record = shim_plan(&DUAL_NODE, &["10.0.0.100/24"]).unwrap().record;
        let mut moved = facts(&DUAL_NODE);
        moved.master.index = 9;
        moved.addresses.iter_mut().for_each(|a| a.index = 9);
        assert_eq!(desired(&record, &moved).unwrap().record.master_index, 9);
    }

    #[test]
    fn node_routes_are_one_per_pod_address_with_the_source_of_its_family() {
        let plan = shim_plan(&DUAL_NODE, &["10.0.0.100/24", "fd00::100/64"]).unwrap();
        assert_eq!(
            plan.node_routes(),
            vec![
                NodeRoute {
                    ip: ip("10.0.0.100"),
                    source: Some(ip("10.0.0.10"))
                },
                NodeRoute {
                    ip: ip("fd00::100"),
                    source: Some(ip("fd00::10"))
                },
            ]
        );
    }

    #[test]
    fn node_neighbours_name_the_pods_mac_and_pod_neighbours_the_host_devices() {
        let plan = shim_plan(&DUAL_NODE, &["10.0.0.100/24", "fd00::100/64"]).unwrap();
        let pod_mac = plan.record.pod_mac;
        assert_eq!(
            plan.node_neighbours(),
            vec![(ip("10.0.0.100"), pod_mac), (ip("fd00::100"), pod_mac)]
        );
        let host_mac = plan.record.host_mac;
        assert_eq!(
            plan.pod_neighbours(),
            vec![(ip("10.0.0.10"), host_mac), (ip("fd00::10"), host_mac)]
        );
    }

    #[test]
    fn through_the_shim_only_off_link_node_addresses_need_a_route() {
        let plan = shim_plan(&["10.0.0.10/24", "10.1.0.10/24"], &["10.0.0.100/24"]).unwrap();
        let shim_needs = |on_link: bool| !on_link;
        assert_eq!(
            plan.pod_routes_to_node(shim_needs),
            vec![PodRoute {
                destination: net("10.1.0.10/32"),
                via: None
            }]
        );
    }

    #[test]
    fn through_a_veth_every_node_address_needs_a_route() {
        let plan = shim_plan(&["10.0.0.10/24", "10.1.0.10/24"], &["10.0.0.100/24"]).unwrap();
        let routes = plan.pod_routes_to_node(|_| true);
        assert_eq!(
            routes.iter().map(|r| r.destination).collect::<Vec<_>>(),
            vec![net("10.0.0.10/32"), net("10.1.0.10/32")]
        );
    }

    #[test]
    fn host_routes_go_through_the_nodes_address_of_their_family() {
        let mut with_routes = settings(HostAccess::Shim);
        with_routes.host_routes = vec![net("10.96.0.0/12"), net("fd00:96::/108")];
        let plan = planned(
            &with_routes,
            &key(),
            &facts(&DUAL_NODE),
            "/run/netns/p",
            &pod_if(&["10.0.0.100/24", "fd00::100/64"]),
        )
        .unwrap();
        assert_eq!(
            plan.host_routes().unwrap(),
            vec![
                PodRoute {
                    destination: net("10.96.0.0/12"),
                    via: Some(ip("10.0.0.10"))
                },
                PodRoute {
                    destination: net("fd00:96::/108"),
                    via: Some(ip("fd00::10"))
                },
            ]
        );
    }

    #[test]
    fn a_host_route_of_a_family_the_pod_does_not_reach_the_node_in_is_refused() {
        let mut with_routes = settings(HostAccess::Shim);
        with_routes.host_routes = vec![net("fd00:96::/108")];
        let plan = planned(
            &with_routes,
            &key(),
            &facts(&DUAL_NODE),
            "/run/netns/p",
            &pod_if(&["10.0.0.100/24"]),
        )
        .unwrap();
        let err = plan.host_routes().err().unwrap();
        assert!(err.msg.contains("hostRoutes fd00:96::/108"), "{}", err.msg);
    }
}
