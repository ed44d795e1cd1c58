//! The shim: one bridge-mode macvlan per master in the node's namespace, shared by every pod on
//! that master. A bridge-mode macvlan may talk to its sibling macvlans, which the master itself
//! may not; so the node reaches its pods through the shim.
//!
//! The shim has no address from the LAN (routes to pods carry the node's own address as
//! source), never answers ARP and takes no router advertisement, so the LAN never sees it as a
//! second owner of the node's addresses (no ARP flux). That hardening is checked every time
//! the shim is reused: a crash while it was being written must not leave ARP flux behind.
//!
//! Its whole life is here: name, MAC (derived from the master's *current* MAC: when the
//! master's MAC changes, the shim's is set again in place and every pod's neighbour entry for
//! the node follows), MTU (the master's, both ways), hardening, create / reuse / adopt,
//! removal when unused (GC too), and DEL without a record (`unrecorded`).

pub mod unrecorded;

use ipnetwork::IpNetwork;

use super::host_path::{
    Devices, HostPath, PodDevice, PodInterface, Settings, SidePlan, Site, Teardown,
};
use super::link_ready::wait_until_passing;
use super::node::{delete_link, Node};
use super::objects::{Action, Drift, Mismatch, Object, Problem, Repair};
use super::pod_addresses::is_link_local_v6;
use super::routes::{self, Writer};
use crate::error::{Context, Error, ErrorList, Result};
use crate::protocol::result::Interface;
use crate::system::lock::NodeLock;
use crate::system::netlink::{Link, MacvlanMode, MacvlanSpec};
use crate::system::state::{Record, RecordedPath, StateStore};
use crate::system::{names, sysctl, Mac, SysResult};

/// ADD: the shim's name and MAC; refuses a pod macvlan the shim cannot reach.
pub fn plan(settings: &Settings, master: &Link, pod_if: &PodInterface) -> Result<SidePlan> {
    if let Some(mode) = pod_if.macvlan_mode.filter(|m| *m != MacvlanMode::Bridge) {
        return Err(Error::config(format!(
            "the pod's macvlan {} is in {mode} mode: the shim reaches pods only in bridge mode; use \"hostAccess\": \"veth\" for other modes",
            pod_if.ifname,
        )));
    }
    let name = settings
        .shim_name
        .clone()
        .unwrap_or_else(|| default_name(&master.name));
    let mac = mac_for(master, &name);
    Ok(SidePlan {
        side: RecordedPath::Shim { name },
        host_mac: mac,
        pod_mac: pod_if.mac,
        own_addresses: settings.shim_addresses.clone(),
    })
}

/// The shim's name when `shimName` is not set: one per master.
pub fn default_name(master: &str) -> String {
    names::derived_ifname("mvh-", master)
}

/// Derived from the master's current MAC and the shim's name: stable when the shim is
/// re-created (the pods' neighbour entries point at it), different on every node of the LAN.
/// A master whose MAC changes (a bridge gaining a port with a lower MAC, a bond failing over)
/// gives a new one, which every attachment on the shim then follows.
pub fn mac_for(master: &Link, name: &str) -> Mac {
    let mut seed = b"macvlan-host shim ".to_vec();
    seed.extend(master.mac.map(|m| m.0).unwrap_or_default());
    seed.extend(name.as_bytes());
    Mac::stable_local(&seed)
}

/// The hardening of the shim. Only the shim's own keys: the node's `all`/`default` are never
/// touched.
const HARDENING: [(&str, &str, &str); 6] = [
    // Never answer ARP: the node's addresses are answered for by the master alone.
    ("ipv4", "arp_ignore", "8"),
    ("ipv4", "arp_filter", "1"),
    ("ipv4", "arp_announce", "2"),
    // No SLAAC address or default route from the LAN's routers on the shim.
    ("ipv6", "accept_ra", "0"),
    ("ipv6", "autoconf", "0"),
    // No link-local address: the shim sends nothing of its own on the LAN.
    ("ipv6", "addr_gen_mode", "1"),
];

fn hardening_key(name: &str, family: &str, key: &str) -> String {
    format!("net/{family}/conf/{name}/{key}")
}

/// The shim's current value of a hardening key. Netlink reports every per-link sysctl with the
/// link itself (IFLA_AF_SPEC), which ensure and verify look up anyway; a /proc/sys read costs
/// more the more network namespaces the machine has (one per pod), so it is only the fallback.
fn hardening_value(link: &Link, family: &str, key: &str) -> SysResult<String> {
    let (v4, v6) = (link.ipv4_conf.as_ref(), link.ipv6_conf.as_ref());
    let value = match key {
        "arp_ignore" => v4.map(|c| c.arp_ignore),
        "arp_filter" => v4.map(|c| c.arpfilter),
        "arp_announce" => v4.map(|c| c.arp_announce),
        "accept_ra" => v6.map(|c| c.accept_ra),
        "autoconf" => v6.map(|c| c.autoconf),
        "addr_gen_mode" => v6.map(|c| c.addr_gen_mode),
        _ => None,
    };
    match value {
        Some(value) => Ok(value.to_string()),
        None => sysctl::read(&hardening_key(&link.name, family, key)),
    }
}

/// The shim of one attachment record.
pub struct ShimPath<'a> {
    name: &'a str,
    mac: Mac,
    addresses: &'a [IpNetwork],
    pod_ifname: &'a str,
}

impl<'a> ShimPath<'a> {
    pub fn new(name: &'a str, record: &'a Record) -> ShimPath<'a> {
        ShimPath {
            name,
            mac: record.host_mac,
            addresses: &record.shim_addresses,
            pod_ifname: record.pod_interface_name(),
        }
    }

    fn object(&self) -> Object {
        Object::Shim(self.name.to_owned())
    }

    /// Creates the shim; None when an interface with its name appeared meanwhile (made by
    /// someone outside the node lock): the caller checks and adopts it.
    fn create(&self, node: &Node, master: &Link) -> Result<Option<Link>> {
        let name = self.name;
        let created = node.netlink.create_macvlan(&MacvlanSpec {
            name: name.to_owned(),
            master_index: master.index,
            mode: MacvlanMode::Bridge,
            mtu: None,
            mac: Some(self.mac),
            netns_fd: None,
            group: None,
        });
        match created {
            Err(e) if e.is_exists() => return Ok(None),
            other => other.with_context(|| {
                format!(
                    "creating shim {name} (macvlan bridge) on master {}",
                    master.name
                )
            })?,
        }
        let link = node
            .netlink
            .link_by_name(name)
            .context("looking up the new shim")?
            .ok_or_else(|| {
                Error::internal(format!("shim {name} vanished right after its creation"))
            })?;
        log::info!(
            "created shim {name} on master {} with MAC {}",
            master.name,
            self.mac
        );
        Ok(Some(link))
    }

    /// Writes the hardening sysctls: all of them on a new shim; on a `reused` one, those whose
    /// value (as the link reports it) differs. Returns the settings written.
    fn harden(&self, reused: Option<&Link>) -> Result<Vec<String>> {
        let mut written = Vec::new();
        for (family, key, wanted) in HARDENING {
            let path = hardening_key(self.name, family, key);
            let value = reused.and_then(|link| hardening_value(link, family, key).ok());
            if value.as_deref() != Some(wanted) {
                sysctl::write(&[(path, wanted.to_owned())])
                    .with_context(|| format!("hardening shim {}", self.name))?;
                written.push(format!("{key}={wanted}"));
            }
        }
        Ok(written)
    }

    /// The shim someone else created while we were about to: ours to use when it is a shim
    /// this plugin would make (kind, master, mode, MAC); a name collision otherwise.
    fn adopt(&self, node: &Node, master: &Link) -> Result<Link> {
        let name = self.name;
        let link = node
            .netlink
            .link_by_name(name)
            .context("looking up the shim created meanwhile")?
            .ok_or_else(|| {
                Error::internal(format!(
                    "creating shim {name}: it existed, and then vanished again"
                ))
            })?;
        if let Some(why) = foreign(&link, master, self.mac) {
            return Err(collision(name, &why));
        }
        log::info!("adopted shim {name}, created meanwhile by another call");
        Ok(link)
    }

    fn remove_link_local(&self, node: &Node, index: u32, repairs: &mut Vec<Repair>) -> Result<()> {
        let addresses = node
            .netlink
            .addresses(index)
            .with_context(|| format!("reading the addresses of shim {}", self.name))?;
        for address in addresses.iter().filter(|a| is_link_local(a.network)) {
            node.netlink
                .delete_address(index, address.network)
                .with_context(|| {
                    format!(
                        "removing link-local {} from shim {}",
                        address.network, self.name
                    )
                })?;
            repairs.push(Repair::new(
                self.object(),
                Action::RemovedLinkLocal(address.network),
            ));
        }
        Ok(())
    }
}

/// Refuses an interface that merely has the shim's name.
fn collision(name: &str, why: &Mismatch) -> Error {
    Error::config(format!(
        "shim {name}: the interface {why}; set \"shimName\" to another name or remove it"
    ))
}

/// An IPv6 link-local address on the shim (the shim must have none).
pub fn is_link_local(network: IpNetwork) -> bool {
    matches!(network, IpNetwork::V6(v6) if is_link_local_v6(v6.ip()))
}

impl ShimPath<'_> {
    /// An interface with the shim's name that differs from ours only in its MAC: ours when
    /// it has users in this stateDir or routes marked ours go through it (pods of another
    /// stateDir share it). A macvlan nobody uses is someone else's, whatever it looks like.
    fn is_ours_but_mac(&self, site: &Site, link: &Link) -> Result<bool> {
        if !matches!(
            foreign(link, site.master, self.mac),
            Some(Mismatch::Mac { .. })
        ) {
            return Ok(false);
        }
        let used_here = !site
            .store
            .has_no_users(self.name)
            .context("reading the shim's users")?;
        Ok(used_here || routed_by_pods(site.node, link))
    }
}

impl HostPath for ShimPath<'_> {
    fn host_name(&self) -> &str {
        self.name
    }

    fn result_interface(&self) -> Option<Interface> {
        None
    }

    fn ensure(&self, site: &Site, repairs: &mut Vec<Repair>) -> Result<Devices> {
        let (name, node, master) = (self.name, site.node, site.master);
        let existing = node
            .netlink
            .link_by_name(name)
            .context("looking up the shim")?;
        // Ours except for its MAC (the master's MAC changed, or someone set it): set again in
        // place, so its routes and neighbour entries stay; the pods' entries for the node
        // follow (the engine heals the other users).
        let mac_drifted = match &existing {
            Some(link) => self.is_ours_but_mac(site, link)?,
            None => false,
        };
        if let Some(why) = existing
            .as_ref()
            .filter(|_| !mac_drifted)
            .and_then(|l| foreign(l, master, self.mac))
        {
            return Err(collision(name, &why));
        }
        // A user before it is created: a crash right after creation leaves a shim that DEL
        // and GC know of.
        site.store
            .add_user(name, site.key)
            .context("registering the shim's user")?;
        let (link, reused) = match existing {
            Some(link) => (link, true),
            None => match self.create(node, master)? {
                Some(link) => {
                    repairs.push(Repair::new(self.object(), Action::Created));
                    (link, false)
                }
                // Not ours after all: this attachment never became a user of it.
                None => match self.adopt(node, master) {
                    Ok(link) => (link, true),
                    Err(e) => {
                        let _ = site.store.remove_user(name, site.key);
                        return Err(e);
                    }
                },
            },
        };
        if mac_drifted {
            node.netlink
                .set_mac(link.index, self.mac)
                .with_context(|| format!("setting the MAC of shim {name}"))?;
            log::info!("shim {name}: MAC set to {} (was {:?})", self.mac, link.mac);
            repairs.push(Repair::new(
                self.object(),
                Action::SetMac {
                    from: link.mac,
                    to: self.mac,
                },
            ));
        }
        // The master's MTU, both ways: the kernel lowers a macvlan with its master, but never
        // raises it (a master raised to 9000 would leave the node's path at 1500).
        if link.mtu != master.mtu {
            node.netlink
                .set_mtu(link.index, master.mtu)
                .with_context(|| format!("setting the MTU of shim {name} to the master's"))?;
            if reused {
                repairs.push(Repair::new(
                    self.object(),
                    Action::SetMtu {
                        from: link.mtu,
                        to: master.mtu,
                    },
                ));
            }
        }
        // Hardened before it comes up; on reuse only what differs is written.
        let written = self.harden(reused.then_some(&link))?;
        let regenerated = written.iter().any(|w| w.starts_with("addr_gen_mode"));
        if !written.is_empty() && reused {
            repairs.push(Repair::new(self.object(), Action::Hardened(written)));
        }
        if regenerated && reused {
            self.remove_link_local(node, link.index, repairs)?;
        }
        for address in self.addresses {
            node.netlink
                .add_address(link.index, *address, true)
                .with_context(|| format!("adding shimAddresses {address} to shim {name}"))?;
        }
        if !link.up {
            node.netlink
                .set_link_up(link.index)
                .with_context(|| format!("bringing shim {name} up"))?;
            if reused {
                repairs.push(Repair::new(self.object(), Action::BroughtUp));
            }
        }
        if !reused || !link.up {
            // A shim that just came up drops packets until the kernel activates its queue.
            let label = self.object().to_string();
            wait_until_passing(&[(&node.netlink, link.index, &label)])?;
        }
        // Without the pod (Docker's Join, before the container's namespace exists) the node's
        // side is all there is to make.
        let pod = match site.pod {
            Some(_) => Some(site.pod_link()?.ok_or_else(|| {
                Error::internal(format!(
                    "interface {} does not exist in the pod",
                    self.pod_ifname
                ))
            })?),
            None => None,
        };
        Ok(Devices {
            host: link.index,
            pod: pod.map(|pod_link| PodDevice {
                index: pod_link.index,
                name: self.pod_ifname.to_owned(),
            }),
        })
    }

    fn verify(&self, site: &Site, drift: &mut Vec<Drift>) -> Result<Option<Devices>> {
        let (node, master) = (site.node, site.master);
        let Some(link) = node
            .netlink
            .link_by_name(self.name)
            .context("looking up the shim")?
        else {
            drift.push(Drift::new(self.object(), Problem::Missing));
            return Ok(None);
        };
        match foreign(&link, master, self.mac) {
            None => {}
            Some(Mismatch::Mac { actual, wanted }) => {
                drift.push(Drift::new(self.object(), Problem::Mac { actual, wanted }))
            }
            Some(why) => drift.push(Drift::new(self.object(), Problem::Foreign(why))),
        }
        if !link.up {
            drift.push(Drift::new(self.object(), Problem::Down));
        }
        if link.mtu != master.mtu {
            drift.push(Drift::new(
                self.object(),
                Problem::Mtu {
                    actual: link.mtu,
                    wanted: master.mtu,
                },
            ));
        }
        for (family, key, wanted) in HARDENING {
            let value =
                hardening_value(&link, family, key).unwrap_or_else(|e| format!("unreadable ({e})"));
            if value != wanted {
                drift.push(Drift::new(
                    self.object(),
                    Problem::Unhardened {
                        sysctl: key.to_owned(),
                        value,
                        wanted: wanted.to_owned(),
                    },
                ));
            }
        }
        let addresses = node
            .netlink
            .addresses(link.index)
            .with_context(|| format!("reading the addresses of shim {}", self.name))?;
        for address in addresses.iter().filter(|a| is_link_local(a.network)) {
            drift.push(Drift::new(
                self.object(),
                Problem::LinkLocal(address.network),
            ));
        }
        let pod_device = match site.pod {
            Some(_) => match site.pod_link()? {
                Some(l) => Some(PodDevice {
                    index: l.index,
                    name: self.pod_ifname.to_owned(),
                }),
                None => {
                    drift.push(Drift::new(
                        Object::PodInterface(self.pod_ifname.to_owned()),
                        Problem::Missing,
                    ));
                    None
                }
            },
            None => None,
        };
        Ok(Some(Devices {
            host: link.index,
            pod: pod_device,
        }))
    }

    fn routes_node_address(&self, on_link: bool) -> bool {
        !on_link
    }

    fn release(
        &self,
        teardown: &Teardown,
        host_link: Option<Link>,
        errors: &mut ErrorList,
    ) -> Option<Link> {
        let (node, store) = (teardown.node, teardown.store);
        // Only the last user removes the shim. An attachment that never became a user (its
        // ADD refused an interface that merely has the shim's name) removes nothing.
        let unused = match store.remove_user(self.name, teardown.key) {
            Ok(Some(true)) => {
                errors.note(store.forget_shim(self.name));
                true
            }
            Ok(Some(false) | None) => false,
            Err(e) => {
                errors.push(e);
                false
            }
        };
        // Shared: removed here, under the lock, when nobody uses it any more.
        let unused_shim = host_link.filter(|link| unused && !still_routed(node, link));
        errors.extend(delete_link(node, unused_shim));
        None
    }
}

/// Why an interface with the shim's name is not our shim (a macvlan in bridge mode on this
/// master with the derived MAC); None when it is. Anything but the MAC is a name collision
/// that must not be taken over.
pub fn foreign(link: &Link, master: &Link, mac: Mac) -> Option<Mismatch> {
    if link.kind.as_deref() != Some("macvlan") {
        Some(Mismatch::Kind {
            actual: link.kind.clone(),
            wanted: "macvlan",
        })
    } else if link.parent_index != Some(master.index) || link.link_netnsid.is_some() {
        Some(Mismatch::NotOnMaster(master.name.clone()))
    } else if link.macvlan_mode != Some(MacvlanMode::Bridge) {
        Some(Mismatch::Mode(link.macvlan_mode))
    } else if link.mac != Some(mac) {
        Some(Mismatch::Mac {
            actual: link.mac,
            wanted: mac,
        })
    } else {
        None
    }
}

/// Whether pods' routes go through the shim, as the kernel tells: routes marked ours, and
/// an earlier version's (`boot` host routes with the pod's permanent neighbour entry beside
/// them, until they are adopted). A route someone added by hand keeps nothing alive. A dump:
/// asked only when the last user known here leaves, or a shim's MAC differs.
fn routed_by_pods(node: &Node, shim: &Link) -> bool {
    let routes = match node.netlink.routes() {
        Ok(routes) => routes,
        Err(e) => {
            log::warn!("reading the node's routes through shim {}: {e}", shim.name);
            return true;
        }
    };
    let through: Vec<_> = routes
        .iter()
        .filter(|r| r.output_index == Some(shim.index))
        .collect();
    if through.iter().any(|r| routes::writer_of(r) == Writer::Us) {
        return true;
    }
    let legacy: Vec<_> = through
        .iter()
        .filter(|r| routes::writer_of(r) == Writer::Legacy)
        .filter_map(|r| r.destination.map(|d| d.ip()))
        .collect();
    if legacy.is_empty() {
        return false;
    }
    match node.netlink.neighbours(shim.index) {
        Ok(neighbours) => neighbours
            .iter()
            .any(|n| n.permanent && legacy.contains(&n.address)),
        Err(e) => {
            log::warn!("reading the neighbour entries of shim {}: {e}", shim.name);
            true
        }
    }
}

/// True when pods other than ours still route through the shim: pods of a network
/// configured with another `stateDir` (and so another set of records) share it.
pub(super) fn still_routed(node: &Node, shim: &Link) -> bool {
    let in_use = routed_by_pods(node, shim);
    if in_use {
        log::warn!(
            "shim {} is still routed to by pods this stateDir does not know; keeping it",
            shim.name
        );
    }
    in_use
}

/// GC: shims that no attachment uses any more (left by a crash between the last DEL's steps),
/// under the node lock.
pub fn remove_unused(node: &Node, store: &StateStore) -> ErrorList {
    let mut errors = ErrorList::new();
    let _lock = match NodeLock::acquire() {
        Ok(lock) => lock,
        Err(e) => {
            errors.push(Error::from(e).context("taking the node lock"));
            return errors;
        }
    };
    let Some(shims) = errors.note(store.known_shims()) else {
        return errors;
    };
    for name in shims {
        match store.has_no_users(&name) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        }
        match node.netlink.link_by_name(&name) {
            Ok(Some(link))
                if link.kind.as_deref() == Some("macvlan") && !still_routed(node, &link) =>
            {
                errors.extend(delete_link(node, Some(link)));
            }
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
        errors.note(store.forget_shim(&name));
    }
    errors
}

/// Which interface with the shim's name is ours, and the shim's MAC, without root.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapaths::testing::master;

    fn shim(master: &Link) -> Link {
        Link {
            index: 10,
            name: "mvh-eth0".into(),
            mac: Some(mac_for(master, "mvh-eth0")),
            kind: Some("macvlan".into()),
            macvlan_mode: Some(MacvlanMode::Bridge),
            parent_index: Some(master.index),
            ..master.clone()
        }
    }

    #[test]
    fn our_shim_is_not_foreign() {
        let eth0 = master(2, 1);
        assert_eq!(
            foreign(&shim(&eth0), &eth0, mac_for(&eth0, "mvh-eth0")),
            None
        );
    }

    #[test]
    fn a_name_collision_is_foreign_for_the_reason_it_is() {
        let eth0 = master(2, 1);
        let mac = mac_for(&eth0, "mvh-eth0");
        let bridge = Link {
            kind: Some("bridge".into()),
            ..shim(&eth0)
        };
        assert!(matches!(
            foreign(&bridge, &eth0, mac),
            Some(Mismatch::Kind { .. })
        ));
        let elsewhere = Link {
            parent_index: Some(3),
            ..shim(&eth0)
        };
        assert_eq!(
            foreign(&elsewhere, &eth0, mac),
            Some(Mismatch::NotOnMaster("eth0".into()))
        );
        let other_namespace = Link {
            link_netnsid: Some(1),
            ..shim(&eth0)
        };
        assert!(foreign(&other_namespace, &eth0, mac).is_some());
        let private = Link {
            macvlan_mode: Some(MacvlanMode::Private),
            ..shim(&eth0)
        };
        assert_eq!(
            foreign(&private, &eth0, mac),
            Some(Mismatch::Mode(Some(MacvlanMode::Private)))
        );
    }

    #[test]
    fn only_a_mac_that_differs_is_a_mac_mismatch() {
        let eth0 = master(2, 1);
        let set_by_hand = Link {
            mac: Some(Mac([2, 0, 0, 0xaa, 0xbb, 0xcc])),
            ..shim(&eth0)
        };
        assert!(matches!(
            foreign(&set_by_hand, &eth0, mac_for(&eth0, "mvh-eth0")),
            Some(Mismatch::Mac { .. })
        ));
        // A master whose MAC changed: the shim made before it is ours but for the MAC.
        let changed = master(2, 0x42);
        assert!(matches!(
            foreign(&shim(&eth0), &changed, mac_for(&changed, "mvh-eth0")),
            Some(Mismatch::Mac { .. })
        ));
    }

    #[test]
    fn the_shims_mac_is_stable_local_and_unicast_per_master_and_name() {
        let eth0 = master(2, 1);
        let mac = mac_for(&eth0, "mvh-eth0");
        assert_eq!(mac, mac_for(&eth0, "mvh-eth0"), "the same when re-created");
        assert_eq!(mac.0[0] & 0x03, 0x02, "locally administered unicast");
        assert_ne!(mac, mac_for(&master(2, 2), "mvh-eth0"), "another node");
        assert_ne!(mac, mac_for(&eth0, "lanshim"), "another shim");
        assert_eq!(mac, mac_for(&master(7, 1), "mvh-eth0"), "not the index");
    }

    #[test]
    fn the_default_name_is_per_master_and_fits_an_interface_name() {
        assert_eq!(default_name("eth0"), "mvh-eth0");
        let long = default_name("enp0s31f6-uplink");
        assert!(long.starts_with("mvh-") && long.len() <= 15, "{long}");
        assert_ne!(long, default_name("enp0s31f6-uplinx"));
    }

    #[test]
    fn the_link_local_test_is_fe80_slash_10() {
        assert!(is_link_local("fe80::1/64".parse().unwrap()));
        assert!(is_link_local("febf::1/64".parse().unwrap()));
        assert!(!is_link_local("fec0::1/64".parse().unwrap()));
        assert!(!is_link_local("fd00::1/64".parse().unwrap()));
        assert!(!is_link_local("169.254.0.1/16".parse().unwrap()));
    }
}
