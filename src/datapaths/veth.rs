//! The per-pod veth pair: a point-to-point path between the node and one pod that does not
//! depend on macvlan bridging, so it works whatever the pod's macvlan mode. Names and MACs are
//! derived from the attachment, so DEL finds the pair without any state and ensure tells our
//! pair from a foreign interface.

use std::os::fd::AsFd;

use super::host_path::{Devices, HostPath, PodDevice, Settings, SidePlan, Site, Teardown};
use super::link_ready::wait_until_passing;
use super::node::Node;
use super::objects::{Action, Drift, Mismatch, Object, Problem, Repair};
use super::pod::Pod;
use crate::error::{Context, Error, ErrorList, Result};
use crate::protocol::result::Interface;
use crate::system::netlink::{Link, Netlink, VethSpec};
use crate::system::state::{AttachmentKey, Record, RecordedPath};
use crate::system::{names, Mac};

/// The node end: derived from the attachment, so DEL finds it without any state.
pub fn host_end_name(key: &AttachmentKey) -> String {
    format!("mvh{:012x}", names::fnv1a(key.file_stem().as_bytes()) >> 16)
}

/// ADD: both ends' names and MACs. The pod end is `vethName`, or `host-<ifname>` (hashed when
/// that is longer than 15 bytes).
pub fn plan(settings: &Settings, key: &AttachmentKey, ifname: &str) -> SidePlan {
    let (host_mac, pod_mac) = macs_for(key);
    let pod_end = settings
        .veth_name
        .clone()
        .unwrap_or_else(|| names::derived_ifname("host-", ifname));
    SidePlan {
        side: RecordedPath::Veth {
            name: host_end_name(key),
            pod_end,
        },
        host_mac,
        pod_mac,
        own_addresses: Vec::new(),
    }
}

/// Stable MACs for both ends, so records and neighbour entries are known before creation.
fn macs_for(key: &AttachmentKey) -> (Mac, Mac) {
    let stem = key.file_stem();
    (
        Mac::stable_local(format!("macvlan-host veth node {stem}").as_bytes()),
        Mac::stable_local(format!("macvlan-host veth pod {stem}").as_bytes()),
    )
}

/// The veth pair of one attachment record.
pub struct VethPath<'a> {
    host_name: &'a str,
    host_mac: Mac,
    pod_end: &'a str,
    pod_mac: Mac,
    link_group: Option<u32>,
}

impl<'a> VethPath<'a> {
    pub fn new(host_name: &'a str, pod_end: &'a str, record: &Record) -> VethPath<'a> {
        VethPath {
            host_name,
            host_mac: record.host_mac,
            pod_end,
            pod_mac: record.pod_mac,
            link_group: record.link_group,
        }
    }

    fn node_end(&self) -> Object {
        Object::VethNodeEnd(self.host_name.to_owned())
    }

    fn pod_end(&self) -> Object {
        Object::VethPodEnd(self.pod_end.to_owned())
    }

    /// Creates the pair with the pod end directly inside the pod, both ends at the pod
    /// interface's MTU.
    fn create(&self, node: &Node, pod: &Pod, mtu: Option<u32>) -> Result<()> {
        let (host_name, pod_name) = (self.host_name, self.pod_end);
        node.netlink
            .create_veth(&VethSpec {
                name: host_name.to_owned(),
                mac: Some(self.host_mac),
                peer_name: pod_name.to_owned(),
                peer_mac: Some(self.pod_mac),
                peer_netns_fd: Some(pod.ns.as_fd()),
                peer_group: self.link_group,
                mtu,
            })
            .with_context(|| format!("creating veth {host_name} (node) / {pod_name} (pod)"))
    }

    fn is_our_pod_end(&self, link: &Link) -> bool {
        link.kind.as_deref() == Some("veth") && link.mac == Some(self.pod_mac)
    }

    fn is_our_host_end(&self, link: &Link) -> bool {
        link.kind.as_deref() == Some("veth") && link.mac == Some(self.host_mac)
    }
}

impl HostPath for VethPath<'_> {
    fn host_name(&self) -> &str {
        self.host_name
    }

    fn result_interface(&self) -> Option<Interface> {
        Some(Interface {
            name: self.host_name.to_owned(),
            mac: Some(self.host_mac.to_string()),
            sandbox: None,
        })
    }

    fn ensure(&self, site: &Site, repairs: &mut Vec<Repair>) -> Result<Devices> {
        let (node, host_name, pod_name) = (site.node, self.host_name, self.pod_end);
        let pod = site.pod.ok_or_else(|| {
            Error::internal(format!(
                "veth {host_name}: the pair is made with both ends, and the pod's namespace is not there yet"
            ))
        })?;
        // Both ends follow the pod's interface: a jumbo-frame LAN is jumbo through the node's
        // path too.
        let mtu = site.pod_link()?.map(|l| l.mtu);
        let pod_end = pod
            .netlink
            .link_by_name(pod_name)
            .context("looking up the veth's pod end")?;
        if let Some(link) = pod_end.as_ref().filter(|l| !self.is_our_pod_end(l)) {
            return Err(Error::config(format!(
                "the pod already has an interface named {}: set \"vethName\" to another name",
                link.name
            )));
        }
        let host_end = node
            .netlink
            .link_by_name(host_name)
            .context("looking up the veth's node end")?;
        let (host, pod_end, fresh) = match (host_end, pod_end) {
            (Some(host), Some(pod_end)) if self.is_our_host_end(&host) => (host, pod_end, false),
            (host_end, pod_end) => {
                // Half a pair, or a node end left by a crashed ADD of this same attachment:
                // ours to replace.
                let stale = host_end.is_some() || pod_end.is_some();
                if let Some(stale) = host_end {
                    node.netlink
                        .delete_link(stale.index)
                        .with_context(|| format!("removing stale veth {host_name}"))?;
                }
                if let Some(stale) = pod_end {
                    pod.netlink
                        .delete_link(stale.index)
                        .with_context(|| format!("removing stale veth {pod_name} in the pod"))?;
                }
                self.create(node, pod, mtu)?;
                let action = if stale {
                    Action::Replaced
                } else {
                    Action::Created
                };
                let pair = Object::VethPair {
                    node_end: host_name.to_owned(),
                    pod_end: pod_name.to_owned(),
                };
                repairs.push(Repair::new(pair, action));
                (
                    require(&node.netlink, host_name, "node")?,
                    require(&pod.netlink, pod_name, "pod")?,
                    true,
                )
            }
        };
        if let Some(mtu) = mtu {
            for (netlink, link, object) in [
                (&node.netlink, &host, self.node_end()),
                (&pod.netlink, &pod_end, self.pod_end()),
            ] {
                if link.mtu != mtu {
                    netlink
                        .set_mtu(link.index, mtu)
                        .with_context(|| format!("setting the MTU of {object} to {mtu}"))?;
                    repairs.push(Repair::new(
                        object,
                        Action::SetMtu {
                            from: link.mtu,
                            to: mtu,
                        },
                    ));
                }
            }
        }
        if !host.up {
            node.netlink
                .set_link_up(host.index)
                .with_context(|| format!("bringing veth {host_name} up"))?;
            if !fresh {
                repairs.push(Repair::new(self.node_end(), Action::BroughtUp));
            }
        }
        if !pod_end.up {
            pod.netlink
                .set_link_up(pod_end.index)
                .with_context(|| format!("bringing veth {pod_name} up in the pod"))?;
            if !fresh {
                repairs.push(Repair::new(self.pod_end(), Action::BroughtUp));
            }
        }
        // Both ends carry the first packet: ADD's caller may send it at once.
        let (host_label, pod_label) = (
            format!("veth {host_name} (node)"),
            format!("veth {pod_name} (pod)"),
        );
        wait_until_passing(&[
            (&node.netlink, host.index, &host_label),
            (&pod.netlink, pod_end.index, &pod_label),
        ])?;
        Ok(Devices {
            host: host.index,
            pod: Some(PodDevice {
                index: pod_end.index,
                name: pod_name.to_owned(),
            }),
        })
    }

    fn verify(&self, site: &Site, drift: &mut Vec<Drift>) -> Result<Option<Devices>> {
        let Some(host) = site
            .node
            .netlink
            .link_by_name(self.host_name)
            .context("looking up the veth's node end")?
        else {
            drift.push(Drift::new(self.node_end(), Problem::Missing));
            return Ok(None);
        };
        let mtu = site.pod_link()?.map(|l| l.mtu);
        if host.kind.as_deref() != Some("veth") {
            drift.push(Drift::new(
                self.node_end(),
                Problem::Foreign(Mismatch::Kind {
                    actual: host.kind.clone(),
                    wanted: "veth",
                }),
            ));
        } else if host.mac != Some(self.host_mac) {
            drift.push(Drift::new(
                self.node_end(),
                Problem::Foreign(Mismatch::Mac {
                    actual: host.mac,
                    wanted: self.host_mac,
                }),
            ));
        }
        verify_link(&host, self.node_end(), mtu, drift);
        let pod_device = match site.pod {
            Some(pod) => self.verify_pod_end(pod, mtu, drift)?,
            None => None,
        };
        Ok(Some(Devices {
            host: host.index,
            pod: pod_device,
        }))
    }

    fn routes_node_address(&self, _on_link: bool) -> bool {
        true
    }

    fn release(
        &self,
        _teardown: &Teardown,
        host_link: Option<Link>,
        _errors: &mut ErrorList,
    ) -> Option<Link> {
        // The pod's own: deleted after the lock, possibly with the pod's link group.
        host_link
    }
}

impl VethPath<'_> {
    fn verify_pod_end(
        &self,
        pod: &Pod,
        mtu: Option<u32>,
        drift: &mut Vec<Drift>,
    ) -> Result<Option<PodDevice>> {
        let Some(link) = pod
            .netlink
            .link_by_name(self.pod_end)
            .context("looking up the veth's pod end")?
        else {
            drift.push(Drift::new(self.pod_end(), Problem::Missing));
            return Ok(None);
        };
        if link.kind.as_deref() != Some("veth") {
            drift.push(Drift::new(
                self.pod_end(),
                Problem::Foreign(Mismatch::Kind {
                    actual: link.kind.clone(),
                    wanted: "veth",
                }),
            ));
        }
        verify_link(&link, self.pod_end(), mtu, drift);
        Ok(Some(PodDevice {
            index: link.index,
            name: link.name,
        }))
    }
}

/// A veth end is up and at the pod interface's MTU.
fn verify_link(link: &Link, object: Object, mtu: Option<u32>, drift: &mut Vec<Drift>) {
    if let Some(wanted) = mtu.filter(|m| *m != link.mtu) {
        drift.push(Drift::new(
            object.clone(),
            Problem::Mtu {
                actual: link.mtu,
                wanted,
            },
        ));
    }
    if !link.up {
        drift.push(Drift::new(object, Problem::Down));
    }
}

fn require(netlink: &Netlink, name: &str, side: &str) -> Result<Link> {
    netlink
        .link_by_name(name)
        .with_context(|| format!("looking up veth {name} in the {side}"))?
        .ok_or_else(|| {
            Error::internal(format!(
                "veth {name} is missing in the {side} right after its creation"
            ))
        })
}

/// DEL without a record: the node end, found by its derived name.
pub fn find_host_end(node: &Node, key: &AttachmentKey) -> Result<Option<Link>> {
    Ok(node.netlink.link_by_name(&host_end_name(key))?)
}
