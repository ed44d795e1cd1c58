//! One attachment compared with what its record says it must be *now*, and brought back to it.
//!
//! One walk serves both commands: `diagnose` walks without changing anything and gets the
//! drift, `reconcile` walks repairing and gets what it repaired. What must be is computed from
//! the record and the node's current state (its current addresses on the master: a renumbered
//! node moves the pods' neighbour entries and the routes' source with it).

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

use ipnetwork::IpNetwork;

use crate::datapaths::node::{same_family, usable_addresses_of, Node};
use crate::datapaths::{shim, veth};
use crate::protocol::{CniError, CniResult, Context};
use crate::system::lock::NodeLock;
use crate::system::netlink::{Link, Netlink, Route};
use crate::system::netns::Netns;
use crate::system::state::{AttachmentKey, HostSide, Record, StateStore};
use crate::system::Mac;

use super::sysctls;

/// What reconciling one attachment found.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing had drifted.
    InSync,
    /// What was repaired, and what had drifted but cannot be repaired here, one line each.
    Drifted {
        repaired: Vec<String>,
        unrepairable: Vec<String>,
    },
    /// The pod's namespace could not be opened: reported and left alone. From inside a
    /// container, a path that is not visible is no proof that the pod is gone, and removing a
    /// live pod's host side would be the worst outcome; DEL and GC remove dead attachments.
    Unreachable(String),
    /// The record went away before the lock was taken (a DEL): nothing to do.
    Gone,
}

/// What `diagnose` reports for one attachment.
#[derive(Debug)]
pub struct Diagnosis {
    pub record: Record,
    /// Empty when the attachment is as it must be.
    pub drift: Vec<String>,
    /// Why the pod's namespace could not be opened (the pod side was then not examined).
    pub unreachable: Option<String>,
}

/// Reconciles one attachment under the node lock. The record is read under the lock, so an
/// attachment that a concurrent DEL is removing is never re-created.
pub fn reconcile(node: &Node, store: &StateStore, key: &AttachmentKey) -> CniResult<Outcome> {
    let _lock = NodeLock::acquire(store.dir()).context("taking the node lock")?;
    reconcile_locked(node, store, key)
}

/// `reconcile` for a caller that holds the node lock already (ADD healing a shim).
pub fn reconcile_locked(
    node: &Node,
    store: &StateStore,
    key: &AttachmentKey,
) -> CniResult<Outcome> {
    let Some(record) = store.load(key).context("reading the attachment record")? else {
        return Ok(Outcome::Gone);
    };
    let pod = match PodSide::open(&record) {
        Ok(pod) => pod,
        Err(reason) => return Ok(Outcome::Unreachable(reason)),
    };
    let found = Walk {
        node,
        store,
        record: &record,
        pod: Some(&pod),
        repair: true,
    }
    .run()
    .with_context(|| format!("reconciling {}", key.file_stem()))?;
    Ok(if found.drift.is_empty() && found.stuck.is_empty() {
        Outcome::InSync
    } else {
        Outcome::Drifted {
            repaired: found.drift,
            unrepairable: found.stuck,
        }
    })
}

/// Compares one attachment with what it must be, changing nothing.
pub fn diagnose(node: &Node, store: &StateStore, record: Record) -> Diagnosis {
    let pod = PodSide::open(&record);
    let walk = Walk {
        node,
        store,
        record: &record,
        pod: pod.as_ref().ok(),
        repair: false,
    }
    .run();
    let drift = match walk {
        Ok(found) => found.drift.into_iter().chain(found.stuck).collect(),
        // What cannot even be examined (the master is gone...) is drift too.
        Err(e) => vec![e.msg],
    };
    Diagnosis {
        unreachable: pod.err(),
        drift,
        record,
    }
}

/// The pod's namespace, opened from the record.
struct PodSide {
    ns: Netns,
    netlink: Netlink,
}

impl PodSide {
    fn open(record: &Record) -> Result<PodSide, String> {
        let ns = Netns::open(record.netns.as_ref())
            .map_err(|e| format!("pod namespace {}: {e}", record.netns))?;
        let netlink = Netlink::open_in(&ns).map_err(|e| e.to_string())?;
        Ok(PodSide { ns, netlink })
    }
}

/// One pass over one attachment; `repair` decides whether drift is fixed or only listed.
struct Walk<'a> {
    node: &'a Node,
    store: &'a StateStore,
    record: &'a Record,
    pod: Option<&'a PodSide>,
    repair: bool,
}

impl Walk<'_> {
    /// Returns the drift found (and, when repairing, repaired), one line each.
    fn run(&self) -> CniResult<Findings> {
        let record = self.record;
        let mut found = Findings::default();
        let host_mac = parse_mac(&record.host_mac)?;
        let pod_mac = parse_mac(&record.pod_mac)?;
        let master = self
            .node
            .netlink
            .link_by_name(&record.master)
            .context("looking up the master")?
            .ok_or_else(|| {
                CniError::internal(format!("master {} does not exist", record.master))
            })?;
        let node_addresses = usable_addresses_of(&self.node.addresses()?, &master);
        let host = self.host_device(&master, host_mac, pod_mac, &mut found)?;
        self.node_side(&host, &node_addresses, pod_mac, &mut found)?;
        if let Some(pod) = self.pod {
            self.pod_side(pod, &master, &node_addresses, host_mac, &mut found)?;
        }
        Ok(found)
    }

    /// The shim or the veth's node end: present, ours, up, hardened. Returns it.
    fn host_device(
        &self,
        master: &Link,
        host_mac: Mac,
        pod_mac: Mac,
        found: &mut Findings,
    ) -> CniResult<Link> {
        let node = &self.node.netlink;
        match &self.record.host_side {
            HostSide::Shim { name } => {
                let link = node.link_by_name(name).context("looking up the shim")?;
                let problem = match &link {
                    None => Some(format!("shim {name} was missing")),
                    Some(l) if l.kind.as_deref() != Some("macvlan") => {
                        return Err(CniError::internal(format!(
                            "{name} is not a macvlan: not ours to replace"
                        )))
                    }
                    Some(l) if l.parent_index != Some(master.index) => Some(format!(
                        "shim {name} was not on master {} (re-created master?)",
                        master.name
                    )),
                    Some(l) if l.mac != Some(host_mac) => Some(format!(
                        "shim {name} had MAC {} instead of {host_mac}",
                        l.mac.map(|m| m.to_string()).unwrap_or_default()
                    )),
                    Some(_) => None,
                };
                if let Some(problem) = problem {
                    found.drift.push(problem);
                    if !self.repair {
                        return Ok(link.unwrap_or_else(|| placeholder(name)));
                    }
                    // A wrong shim is replaced whole: its routes go with it, and the pass
                    // restores those of every attachment on it (`pass::run` goes round again).
                    if let Some(old) = link {
                        node.delete_link(old.index)
                            .with_context(|| format!("removing the drifted shim {name}"))?;
                    }
                    shim::ensure(self.node, name, master, host_mac, &[])?;
                }
                let link = self.require(name)?;
                self.ensure_up(&link, found)?;
                self.ensure_shim_sysctls(name, found)?;
                Ok(link)
            }
            HostSide::Veth { name, pod_end } => {
                let link = node
                    .link_by_name(name)
                    .context("looking up the veth's node end")?;
                let problem = match &link {
                    None => Some(format!("veth {name} (node end) was missing")),
                    Some(l) if l.kind.as_deref() != Some("veth") || l.mac != Some(host_mac) => {
                        Some(format!("veth {name} (node end) was not our veth"))
                    }
                    Some(_) => None,
                };
                if let Some(problem) = problem {
                    found.drift.push(problem);
                    if !self.repair {
                        return Ok(link.unwrap_or_else(|| placeholder(name)));
                    }
                    let Some(pod) = self.pod else {
                        return Err(CniError::internal("the pod is needed to re-create a veth"));
                    };
                    self.recreate_veth(pod, name, host_mac, pod_end, pod_mac)?;
                }
                let link = self.require(name)?;
                self.ensure_up(&link, found)?;
                Ok(link)
            }
        }
    }

    fn recreate_veth(
        &self,
        pod: &PodSide,
        name: &str,
        host_mac: Mac,
        pod_end: &str,
        pod_mac: Mac,
    ) -> CniResult<()> {
        // The half that is left of the pair goes first: the pair is made again whole.
        if let Some(stale) = pod
            .netlink
            .link_by_name(pod_end)
            .context("looking up the veth's pod end")?
        {
            pod.netlink
                .delete_link(stale.index)
                .with_context(|| format!("removing the veth's lone pod end {pod_end}"))?;
        }
        veth::create(
            self.node,
            &pod.netlink,
            pod.ns.as_fd().as_raw_fd(),
            name,
            host_mac,
            pod_end,
            pod_mac,
            None,
        )?;
        Ok(())
    }

    fn require(&self, name: &str) -> CniResult<Link> {
        self.node
            .netlink
            .link_by_name(name)
            .with_context(|| format!("looking up {name}"))?
            .ok_or_else(|| CniError::internal(format!("{name} vanished while it was repaired")))
    }

    fn ensure_up(&self, link: &Link, found: &mut Findings) -> CniResult<()> {
        if link.up || link.index == 0 {
            return Ok(());
        }
        found.drift.push(format!("{} was down", link.name));
        if self.repair {
            self.node
                .netlink
                .set_link_up(link.index)
                .with_context(|| format!("bringing {} up", link.name))?;
        }
        Ok(())
    }

    fn ensure_shim_sysctls(&self, name: &str, found: &mut Findings) -> CniResult<()> {
        let wanted = shim::sysctls(name);
        let drifted: Vec<(String, String)> = wanted
            .into_iter()
            .filter(|(key, value)| sysctls::read(key).as_deref() != Some(value.as_str()))
            .collect();
        for (key, value) in &drifted {
            let now = sysctls::read(key).unwrap_or_else(|| "?".into());
            found.drift.push(format!("sysctl {key} was {now}, not {value}"));
        }
        if self.repair && !drifted.is_empty() {
            crate::system::sysctl::write(&drifted)
                .with_context(|| format!("hardening shim {name}"))?;
        }
        Ok(())
    }

    /// The node's /32 (/128) routes to the pod, with the node's current address as source,
    /// and its permanent neighbour entries. Only for the addresses this attachment owns: a
    /// newer pod may have taken one over.
    fn node_side(
        &self,
        host: &Link,
        node_addresses: &[IpNetwork],
        pod_mac: Mac,
        found: &mut Findings,
    ) -> CniResult<()> {
        let node = &self.node.netlink;
        let exists = host.index != 0;
        let routes = if exists {
            node.routes().context("reading the node's routes")?
        } else {
            Vec::new()
        };
        let neighbours = if exists {
            node.neighbours(host.index)
                .context("reading the node's neighbour entries")?
        } else {
            Vec::new()
        };
        for address in &self.record.pod_addresses {
            let ip = address.ip();
            if !self
                .store
                .is_owner(ip, &self.record.key)
                .context("reading the route's owner")?
            {
                continue;
            }
            let source = node_addresses
                .iter()
                .map(|a| a.ip())
                .find(|a| same_family(*a, ip));
            let Some(source) = source else {
                found.stuck.push(format!(
                    "master {} has no {} address to reach pod address {ip} from",
                    self.record.master,
                    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
                ));
                continue;
            };
            let wanted = host_route(ip, host.index, Some(source));
            let present = routes.iter().any(|r| {
                r.destination == wanted.destination
                    && r.output_index == wanted.output_index
                    && r.source == wanted.source
            });
            if !present {
                found.drift.push(format!(
                    "the node's route {ip} dev {} src {source} was missing",
                    host.name
                ));
                if self.repair {
                    node.add_route(&wanted, true)
                        .with_context(|| format!("restoring the node's route to {ip}"))?;
                }
            }
            if !neighbours
                .iter()
                .any(|n| n.address == ip && n.permanent && n.mac == Some(pod_mac))
            {
                found.drift.push(format!(
                    "the node's neighbour entry {ip} -> {pod_mac} on {} was missing",
                    host.name
                ));
                if self.repair {
                    node.set_permanent_neighbour(host.index, ip, pod_mac)
                        .with_context(|| format!("restoring the neighbour entry of {ip}"))?;
                }
            }
        }
        Ok(())
    }

    /// In the pod: permanent neighbour entries for the node's current addresses (pointing at
    /// the host device's MAC), routes to them where needed, and `hostRoutes`.
    fn pod_side(
        &self,
        pod: &PodSide,
        master: &Link,
        node_addresses: &[IpNetwork],
        host_mac: Mac,
        found: &mut Findings,
    ) -> CniResult<()> {
        let record = self.record;
        let (device_name, is_veth) = match &record.host_side {
            HostSide::Shim { .. } => (record.key.ifname.as_str(), false),
            HostSide::Veth { pod_end, .. } => (pod_end.as_str(), true),
        };
        let device = pod
            .netlink
            .link_by_name(device_name)
            .with_context(|| format!("looking up {device_name} in the pod"))?
            .ok_or_else(|| {
                CniError::internal(format!("{device_name} does not exist in the pod"))
            })?;
        let wanted = self.wanted_node_ips(master, node_addresses)?;
        let routes = pod.netlink.routes().context("reading the pod's routes")?;
        let neighbours = pod
            .netlink
            .neighbours(device.index)
            .context("reading the pod's neighbour entries")?;

        for gone in record.node_addresses.iter().filter(|ip| !wanted.contains(ip)) {
            found.drift.push(format!("node address {gone} is gone: the pod's entries for it"));
            if self.repair {
                // Either may be absent already; a failure here leaves only a harmless entry.
                let _ = pod.netlink.delete_neighbour(device.index, *gone);
                let _ = pod
                    .netlink
                    .delete_route(&host_route(*gone, device.index, None));
            }
        }
        for ip in &wanted {
            let on_link = record.pod_addresses.iter().any(|p| p.contains(*ip));
            if is_veth || !on_link {
                let present = routes.iter().any(|r| {
                    r.destination == Some(IpNetwork::from(*ip))
                        && r.output_index == Some(device.index)
                });
                if !present {
                    found.drift.push(format!(
                        "the pod's route to node address {ip} via {device_name} was missing"
                    ));
                    if self.repair {
                        pod.netlink
                            .add_route(&host_route(*ip, device.index, None), true)
                            .with_context(|| format!("restoring the pod's route to {ip}"))?;
                    }
                }
            }
            if !neighbours
                .iter()
                .any(|n| n.address == *ip && n.permanent && n.mac == Some(host_mac))
            {
                found.drift.push(format!(
                    "the pod's neighbour entry {ip} -> {host_mac} on {device_name} was missing"
                ));
                if self.repair {
                    pod.netlink
                        .set_permanent_neighbour(device.index, *ip, host_mac)
                        .with_context(|| format!("restoring the pod's neighbour entry {ip}"))?;
                }
            }
        }
        for cidr in &record.host_routes {
            let Some(via) = wanted.iter().copied().find(|ip| same_family(*ip, cidr.ip())) else {
                found.stuck.push(format!(
                    "hostRoutes {cidr}: the node has no address of that family to route it through"
                ));
                continue;
            };
            let wanted_route = Route {
                destination: Some(*cidr),
                gateway: Some(via),
                output_index: Some(device.index),
                onlink: true,
                ..Route::default()
            };
            let present = routes.iter().any(|r| {
                r.destination == Some(*cidr)
                    && r.gateway == Some(via)
                    && r.output_index == Some(device.index)
            });
            if !present {
                found.drift.push(format!("the pod's hostRoutes entry {cidr} via {via} was missing"));
                if self.repair {
                    pod.netlink
                        .add_route(&wanted_route, true)
                        .with_context(|| format!("restoring the pod's hostRoutes entry {cidr}"))?;
                }
            }
        }
        if self.repair && wanted != record.node_addresses {
            let mut updated = record.clone();
            updated.node_addresses = wanted;
            self.store
                .save(&updated)
                .context("saving the node's new addresses in the record")?;
        }
        Ok(())
    }

    /// The node addresses the pod must reach through the host side now: the master's current
    /// addresses of the pod's families, and recorded ones still on the node (`shimAddresses`).
    fn wanted_node_ips(&self, master: &Link, on_master: &[IpNetwork]) -> CniResult<Vec<IpAddr>> {
        let everywhere: Vec<IpAddr> = self
            .node
            .addresses()?
            .iter()
            .filter(|a| a.index != master.index)
            .map(|a| a.network.ip())
            .collect();
        let mut wanted: Vec<IpAddr> = Vec::new();
        let recorded_elsewhere = self
            .record
            .node_addresses
            .iter()
            .copied()
            .filter(|ip| everywhere.contains(ip));
        for ip in recorded_elsewhere.chain(on_master.iter().map(|a| a.ip())) {
            let pod_family = self
                .record
                .pod_addresses
                .iter()
                .any(|p| same_family(p.ip(), ip));
            if pod_family && !wanted.contains(&ip) {
                wanted.push(ip);
            }
        }
        Ok(wanted)
    }
}

/// What a walk found: drift it can repair (and repaired, when repairing), and drift that no
/// repair of ours can fix (the master lost its only address of a family).
#[derive(Debug, Default)]
struct Findings {
    drift: Vec<String>,
    stuck: Vec<String>,
}

/// Stands in for a host device that is missing while diagnosing: index 0 matches no route.
fn placeholder(name: &str) -> Link {
    Link {
        index: 0,
        name: name.to_owned(),
        mac: None,
        mtu: 0,
        up: true,
        kind: None,
        macvlan_mode: None,
        parent_index: None,
        link_netnsid: None,
    }
}

fn parse_mac(text: &str) -> CniResult<Mac> {
    text.parse::<Mac>().map_err(CniError::internal)
}

/// `ADDR/32 dev DEVICE [src SRC] scope link`, as ADD makes it.
fn host_route(ip: IpAddr, device: u32, source: Option<IpAddr>) -> Route {
    Route {
        destination: Some(IpNetwork::from(ip)),
        output_index: Some(device),
        source,
        scope_link: true,
        ..Route::default()
    }
}
