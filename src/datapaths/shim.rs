//! The shim: one bridge-mode macvlan per master in the node's namespace, shared by every pod on
//! that master. A bridge-mode macvlan may talk to its sibling macvlans, which the master itself
//! may not; so the node reaches its pods through the shim.
//!
//! The shim has no address from the LAN (routes to pods carry the node's own address as
//! source), never answers ARP and takes no router advertisement, so the LAN never sees it as a
//! second owner of the node's addresses (no ARP flux). That hardening is checked every time
//! the shim is reused: a crash while it was being written must not leave ARP flux behind.

use ipnetwork::IpNetwork;

use super::host_path::{Devices, Drift, HostPath, PodDevice, Repair, SidePlan};
use super::link_ready::wait_until_passing;
use super::node::{delete_link, Node};
use super::plan::{PodInterface, Settings};
use super::pod::Pod;
use crate::protocol::result::Interface;
use crate::protocol::{CniError, CniResult, Context, ErrorList};
use crate::system::netlink::{Link, MacvlanMode, MacvlanSpec};
use crate::system::state::{AttachmentKey, HostSide, Record, StateStore};
use crate::system::{names, sysctl, Mac, SysResult};

/// ADD: the shim's name and MAC; refuses a pod macvlan the shim cannot reach.
pub fn plan(settings: &Settings, master: &Link, pod_if: &PodInterface) -> CniResult<SidePlan> {
    if let Some(mode) = pod_if.macvlan_mode.filter(|m| *m != MacvlanMode::Bridge) {
        return Err(CniError::config(format!(
            "the pod's macvlan {} is in {mode} mode: the shim reaches pods only in bridge mode; use \"hostAccess\": \"veth\" for other modes",
            pod_if.ifname,
        )));
    }
    let name = settings
        .shim_name
        .clone()
        .unwrap_or_else(|| names::derived_ifname("mvh-", &master.name));
    let mac = mac_for(master, &name);
    Ok(SidePlan {
        side: HostSide::Shim { name },
        host_mac: mac,
        pod_mac: pod_if.mac,
        own_addresses: settings.shim_addresses.clone(),
    })
}

/// Derived from the master's MAC and the shim's name: stable when the shim is re-created (the
/// pods' neighbour entries point at it), different on every node of the LAN.
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

    fn label(&self) -> String {
        format!("shim {}", self.name)
    }

    /// Creates the shim; None when an interface with its name appeared meanwhile (made by
    /// someone outside the node lock): the caller checks and adopts it.
    fn create(&self, node: &Node, master: &Link) -> CniResult<Option<Link>> {
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
                CniError::internal(format!("shim {name} vanished right after its creation"))
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
    fn harden(&self, reused: Option<&Link>) -> CniResult<Vec<String>> {
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
    fn adopt(&self, node: &Node, master: &Link) -> CniResult<Link> {
        let name = self.name;
        let link = node
            .netlink
            .link_by_name(name)
            .context("looking up the shim created meanwhile")?
            .ok_or_else(|| {
                CniError::internal(format!(
                    "creating shim {name}: it existed, and then vanished again"
                ))
            })?;
        if let Some(why) = foreign(&link, master, self.mac) {
            return Err(CniError::config(format!(
                "shim {name}: the interface {why}; set \"shimName\" to another name or remove it"
            )));
        }
        log::info!("adopted shim {name}, created meanwhile by another call");
        Ok(link)
    }

    fn remove_link_local(
        &self,
        node: &Node,
        index: u32,
        repairs: &mut Vec<Repair>,
    ) -> CniResult<()> {
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
            repairs.push(Repair::RemovedLinkLocal {
                shim: self.name.to_owned(),
                address: address.network,
            });
        }
        Ok(())
    }
}

fn is_link_local(network: IpNetwork) -> bool {
    matches!(network, IpNetwork::V6(v6) if v6.ip().segments()[0] & 0xffc0 == 0xfe80)
}

impl HostPath for ShimPath<'_> {
    fn host_name(&self) -> &str {
        self.name
    }

    fn result_interface(&self) -> Option<Interface> {
        None
    }

    fn ensure(
        &self,
        node: &Node,
        store: &StateStore,
        key: &AttachmentKey,
        master: &Link,
        pod: Option<&Pod>,
        pod_index: Option<u32>,
        repairs: &mut Vec<Repair>,
    ) -> CniResult<Devices> {
        let name = self.name;
        let existing = node
            .netlink
            .link_by_name(name)
            .context("looking up the shim")?;
        // Our shim except for its MAC (changed by hand or by a network manager): the pods'
        // neighbour entries name the derived MAC, so it is made again with it. Its routes go
        // with the old one; ADD and reconcile restore those of its other users. Ours means it
        // has users here: a macvlan nobody registered is someone else's, whatever it looks like.
        let mac_changed = match &existing {
            Some(l) if l.mac != Some(self.mac) => {
                foreign(l, master, l.mac.unwrap_or(self.mac)).is_none()
                    && !store
                        .has_no_users(name)
                        .context("reading the shim's users")?
            }
            _ => false,
        };
        let collision = existing
            .as_ref()
            .filter(|_| !mac_changed)
            .and_then(|l| foreign(l, master, self.mac));
        if let Some(why) = collision {
            return Err(CniError::config(format!(
                "shim {name}: the interface {why}; set \"shimName\" to another name or remove it"
            )));
        }
        // A user before it is created: a crash right after creation leaves a shim that DEL
        // and GC know of.
        store
            .add_user(name, key)
            .context("registering the shim's user")?;
        let (link, reused) = match existing {
            Some(old) if mac_changed => {
                node.netlink
                    .delete_link(old.index)
                    .with_context(|| format!("removing shim {name} with a changed MAC"))?;
                let link = match self.create(node, master)? {
                    Some(link) => link,
                    // Someone outside the node lock made it again first: adopt it when it is
                    // ours.
                    None => self.adopt(node, master)?,
                };
                repairs.push(Repair::Replaced(format!(
                    "{} (its MAC had been changed)",
                    self.label()
                )));
                (link, false)
            }
            Some(link) => (link, true),
            None => match self.create(node, master)? {
                Some(link) => {
                    repairs.push(Repair::Created(self.label()));
                    (link, false)
                }
                // Not ours after all: this attachment never became a user of it.
                None => match self.adopt(node, master) {
                    Ok(link) => (link, true),
                    Err(e) => {
                        let _ = store.remove_user(name, key);
                        return Err(e);
                    }
                },
            },
        };
        // Hardened before it comes up; on reuse only what differs is written.
        let written = self.harden(reused.then_some(&link))?;
        let regenerated = written.iter().any(|w| w.starts_with("addr_gen_mode"));
        if !written.is_empty() && reused {
            repairs.push(Repair::Hardened {
                shim: name.to_owned(),
                settings: written,
            });
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
                repairs.push(Repair::BroughtUp(self.label()));
            }
        }
        if !reused || !link.up {
            // A shim that just came up drops packets until the kernel activates its queue.
            wait_until_passing(&[(&node.netlink, link.index, &self.label())])?;
        }
        // Without the pod (Docker's Join, before the container's namespace exists) the node's
        // side is all there is to make.
        let pod_index = match (pod_index, pod) {
            (Some(index), Some(_)) => Some(index),
            (None, Some(pod)) => Some(pod_interface(pod, self.pod_ifname)?),
            (_, None) => None,
        };
        Ok(Devices {
            host: link.index,
            pod: pod_index.map(|index| PodDevice {
                index,
                name: self.pod_ifname.to_owned(),
            }),
        })
    }

    fn verify(
        &self,
        node: &Node,
        master: Option<&Link>,
        pod: Option<&Pod>,
        drift: &mut Vec<Drift>,
    ) -> CniResult<Option<Devices>> {
        let Some(link) = node
            .netlink
            .link_by_name(self.name)
            .context("looking up the shim")?
        else {
            drift.push(Drift::DeviceMissing {
                device: self.label(),
                place: "on the node",
            });
            return Ok(None);
        };
        if let Some(why) = master.and_then(|m| foreign(&link, m, self.mac)) {
            drift.push(Drift::DeviceForeign {
                device: self.label(),
                why: format!("the interface {why}"),
            });
        }
        if !link.up {
            drift.push(Drift::DeviceDown {
                device: self.label(),
                place: "on the node",
            });
        }
        for (family, key, wanted) in HARDENING {
            let value =
                hardening_value(&link, family, key).unwrap_or_else(|e| format!("unreadable ({e})"));
            if value != wanted {
                drift.push(Drift::ShimUnhardened {
                    shim: self.name.to_owned(),
                    sysctl: key.to_owned(),
                    value,
                    wanted: wanted.to_owned(),
                });
            }
        }
        let addresses = node
            .netlink
            .addresses(link.index)
            .with_context(|| format!("reading the addresses of shim {}", self.name))?;
        for address in addresses.iter().filter(|a| is_link_local(a.network)) {
            drift.push(Drift::ShimLinkLocal {
                shim: self.name.to_owned(),
                address: address.network,
            });
        }
        let pod_device = match pod {
            Some(pod) => match pod
                .netlink
                .link_by_name(self.pod_ifname)
                .context("looking up the pod's interface")?
            {
                Some(l) => Some(PodDevice {
                    index: l.index,
                    name: l.name,
                }),
                None => {
                    drift.push(Drift::DeviceMissing {
                        device: format!("interface {}", self.pod_ifname),
                        place: "in the pod",
                    });
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
        node: &Node,
        store: &StateStore,
        key: &AttachmentKey,
        host_link: Option<Link>,
        errors: &mut ErrorList,
    ) -> Option<Link> {
        // Only the last user removes the shim. An attachment that never became a user (its
        // ADD refused an interface that merely has the shim's name) removes nothing.
        let unused = match store.remove_user(self.name, key) {
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

/// The pod's interface that the shim reaches, by name.
fn pod_interface(pod: &Pod, ifname: &str) -> CniResult<u32> {
    Ok(pod
        .netlink
        .link_by_name(ifname)
        .context("looking up the pod's interface")?
        .ok_or_else(|| CniError::internal(format!("interface {ifname} does not exist in the pod")))?
        .index)
}

/// Why an interface with the shim's name is not our shim (a macvlan in bridge mode on this
/// master with the derived MAC); None when it is. Anything else is a name collision that
/// must not be taken over.
pub(super) fn foreign(link: &Link, master: &Link, mac: Mac) -> Option<String> {
    if link.kind.as_deref() != Some("macvlan") {
        Some(format!(
            "is a {} interface, not a macvlan",
            link.kind.as_deref().unwrap_or("physical")
        ))
    } else if link.parent_index != Some(master.index) || link.link_netnsid.is_some() {
        Some(format!("is not on master {}", master.name))
    } else if link.macvlan_mode != Some(MacvlanMode::Bridge) {
        Some(format!(
            "is in {} mode, not bridge",
            link.macvlan_mode
                .map(|m| m.to_string())
                .unwrap_or_else(|| "an unknown".into())
        ))
    } else if link.mac != Some(mac) {
        Some(format!(
            "has MAC {} instead of {mac} (changed by hand or by a network manager?)",
            link.mac.map(|m| m.to_string()).unwrap_or_default()
        ))
    } else {
        None
    }
}

/// True when routes other than ours still go through the shim: pods of a network configured
/// with another `stateDir` (and so another set of records) share it. Asked only when the last
/// user known here leaves, so the route dump is not on the path of every DEL.
pub(super) fn still_routed(node: &Node, shim: &Link) -> bool {
    match node.netlink.routes() {
        Ok(routes) => {
            // Pod routes are host routes; a prefix route of a `shimAddresses` entry is not a pod.
            let in_use = routes.iter().any(|r| {
                r.output_index == Some(shim.index)
                    && r.destination
                        .is_some_and(|d| d.prefix() == if d.is_ipv4() { 32 } else { 128 })
            });
            if in_use {
                log::warn!(
                    "shim {} is still routed to by pods this stateDir does not know; keeping it",
                    shim.name
                );
            }
            in_use
        }
        Err(e) => {
            log::warn!(
                "reading the node's routes before removing shim {}: {e}; keeping it",
                shim.name
            );
            true
        }
    }
}

/// GC: shims that no attachment uses any more (left by a crash between the last DEL's steps).
/// Runs under the node lock.
pub fn remove_unused(node: &Node, store: &StateStore) -> ErrorList {
    let mut errors = ErrorList::new();
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
