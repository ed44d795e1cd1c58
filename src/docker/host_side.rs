//! The Docker driver's one way into the host-side logic (`datapaths`, `system`): the
//! container's macvlan on the node, the node's side of host access at Join, the container's
//! side once its link is inside the sandbox, and teardown. When the host-side logic changes
//! shape, only this file follows it.
//!
//! An endpoint's attachment record uses the key `docker-<network id, 12>:<endpoint id>:<link
//! on the node>`, in the driver's state directory: `reconcile`, `--watch` and `diagnose` see
//! Docker containers as they see pods. The record names the container's interface as Docker
//! named it inside (`pod_ifname`), learned once the link has arrived there.

use std::path::Path;

use ipnetwork::IpNetwork;

use super::store::{Endpoint, Network};
use crate::datapaths::engine::{self, Attach, Detach};
use crate::datapaths::node::{usable_addresses_of, Node};
use crate::datapaths::plan::{PodInterface, Settings};
use crate::datapaths::pod::Pod;
use crate::datapaths::shim::unrecorded::Clues;
use crate::error::{Context, Error, Result};
use crate::protocol::HostAccess;
use crate::system::netlink::{Link, MacvlanMode, MacvlanSpec};
use crate::system::netns::{Netns, OpenError};
use crate::system::state::{AttachmentKey, StateStore};

/// The node (its namespace, a netlink connection) and the attachment records.
pub struct Host {
    pub node: Node,
    store: StateStore,
}

impl Host {
    pub fn open(state_dir: &Path) -> Result<Host> {
        Ok(Host {
            node: Node::open()?,
            store: StateStore::open(state_dir).context("opening the state directory")?,
        })
    }

    /// The parent: as configured, else the interface of the node's default route.
    pub fn resolve_parent(&self, configured: Option<&str>) -> Result<Link> {
        self.node
            .resolve_master(configured)
            .map_err(|e| e.context("option parent"))
    }

    /// Refuses a network the node could not reach its containers on: an MTU above the
    /// parent's, or a family of its pools for which neither the parent nor `shim_addresses`
    /// has an address to send from.
    pub fn check_parent(
        &self,
        parent: &Link,
        mtu: Option<u32>,
        host_access: HostAccess,
        pools: &[IpNetwork],
        shim_addresses: &[IpNetwork],
    ) -> Result<()> {
        if let Some(mtu) = mtu.filter(|m| *m > parent.mtu) {
            return Err(Error::config(format!(
                "mtu {mtu} is larger than the MTU of parent {} ({})",
                parent.name, parent.mtu
            )));
        }
        if host_access == HostAccess::None {
            return Ok(());
        }
        let addresses = self.node.addresses_of(parent)?;
        let usable = usable_addresses_of(&addresses, parent);
        for pool in pools {
            let has = |list: &[IpNetwork]| list.iter().any(|a| a.is_ipv4() == pool.is_ipv4());
            if !has(&usable) && !has(shim_addresses) {
                let family = if pool.is_ipv4() { "IPv4" } else { "IPv6" };
                return Err(Error::config(format!(
                    "parent {} has no {family} address for the node to reach containers in {pool} from: give it one, or set shim_addresses to an {family} address reserved for the shim",
                    parent.name
                )));
            }
        }
        Ok(())
    }

    /// The container's macvlan on the node, down and without address: Docker moves it into
    /// the container, names it and configures it. Reused when it is ours already (a Join
    /// retried after a restart of the driver).
    pub fn create_link(&self, network: &Network, endpoint: &Endpoint) -> Result<()> {
        let parent = self.resolve_parent(Some(&network.parent))?;
        let name = &endpoint.link;
        if let Some(existing) = self.node.netlink.link_by_name(name)? {
            if is_ours(&existing, endpoint) && existing.parent_index == Some(parent.index) {
                return Ok(());
            }
            return Err(Error::internal(format!(
                "the node already has an interface {name} that is not this endpoint's macvlan"
            )));
        }
        self.node
            .netlink
            .create_macvlan(&MacvlanSpec {
                name: name.clone(),
                master_index: parent.index,
                mode: mode_of(network)?,
                mtu: network.mtu,
                mac: Some(endpoint.mac),
                netns_fd: None,
                group: None,
            })
            .with_context(|| format!("creating macvlan {name} on parent {}", parent.name))
    }

    /// Deletes the container's macvlan when it is on the node (Docker moves it back before
    /// DeleteEndpoint) and is ours; anything else with its name stays.
    pub fn delete_link(&self, endpoint: &Endpoint) -> Result<()> {
        let name = &endpoint.link;
        match self.node.netlink.link_by_name(name)? {
            Some(link) if is_ours(&link, endpoint) => {
                self.node
                    .netlink
                    .delete_link(link.index)
                    .with_context(|| format!("removing macvlan {name}"))?;
                Ok(())
            }
            Some(_) => {
                log::warn!(
                    "leaving {name} alone: it is not the macvlan of endpoint {}",
                    endpoint.id
                );
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Join: the node's side of a shim attachment (the shim, the node's route and permanent
    /// neighbour entry for each container address), before the container's namespace may
    /// exist. A veth pair needs both ends: it is made with the container's side.
    pub fn attach_node_side(
        &self,
        network: &Network,
        endpoint: &Endpoint,
        sandbox: &str,
    ) -> Result<()> {
        if host_access_of(network)? != HostAccess::Shim {
            return Ok(());
        }
        let link = self
            .node
            .netlink
            .link_by_name(&endpoint.link)?
            .ok_or_else(|| {
                Error::internal(format!("macvlan {} vanished from the node", endpoint.link))
            })?;
        self.attach(network, endpoint, sandbox, &link, None)
    }

    /// The container's side, once its link is inside the sandbox: everything, made true
    /// again from whatever state it is in (idempotent; also a driver's restart).
    pub fn complete(
        &self,
        network: &Network,
        endpoint: &Endpoint,
        sandbox: &Sandbox,
        link: &Link,
    ) -> Result<()> {
        if host_access_of(network)? == HostAccess::None {
            return Ok(());
        }
        let path = sandbox.pod.path.clone();
        self.attach(network, endpoint, &path, link, Some(&sandbox.pod))
    }

    fn attach(
        &self,
        network: &Network,
        endpoint: &Endpoint,
        sandbox: &str,
        link: &Link,
        pod: Option<&Pod>,
    ) -> Result<()> {
        let parent = self.resolve_parent(Some(&network.parent))?;
        let pod_if = PodInterface {
            ifname: link.name.clone(),
            index: link.index,
            mac: endpoint.mac,
            mtu: link.mtu,
            macvlan_mode: Some(mode_of(network)?),
            addresses: endpoint.addresses.clone(),
            link_group: None,
        };
        let key = key_of(network, endpoint);
        engine::attach_pod(&Attach {
            node: &self.node,
            pod,
            netns: sandbox,
            master: &parent,
            pod_if: &pod_if,
            key: &key,
            settings: &settings(network)?,
            store: &self.store,
        })?;
        Ok(())
    }

    /// Leave (and DeleteEndpoint, for what a failed Leave left): the host side of the
    /// endpoint, by its record; without a record, what can be found by name.
    pub fn detach(&self, network: &Network, endpoint: &Endpoint) -> Result<()> {
        let host_access = host_access_of(network)?;
        let key = key_of(network, endpoint);
        // Without a record nothing is learned (no prevResult, the container may be gone):
        // what can be found by name goes.
        let clues = Clues {
            shim_name: None,
            master: None,
            prev_result: None,
            ifname: &key.ifname,
            pod_ns: None,
        };
        Detach::prepare(&self.node, self.store.clone(), &key, host_access, &clues)
            .release(&self.node, &key)
            .finish(&self.node)
            .into_result()
    }

    /// Whether the endpoint's macvlan is (still) on the node: Docker 26 has not moved it
    /// yet at ProgramExternalConnectivity.
    pub fn link_on_node(&self, endpoint: &Endpoint) -> Result<bool> {
        Ok(self
            .node
            .netlink
            .link_by_name(&endpoint.link)?
            .is_some_and(|l| is_ours(&l, endpoint)))
    }

    /// The container's namespace, once it exists (Docker 26 makes it after Join).
    pub fn open_sandbox(&self, key: &str) -> Result<Option<Sandbox>> {
        let ns = match Netns::open(Path::new(key)) {
            Ok(ns) => ns,
            Err(OpenError::Missing(_) | OpenError::Unmounted(_) | OpenError::Empty) => {
                return Ok(None)
            }
            Err(e) => return Err(Error::internal(format!("SandboxKey: {e}"))),
        };
        if ns.is_same(&self.node.ns)? {
            return Err(Error::config(format!(
                "SandboxKey {key} is the node's own network namespace"
            )));
        }
        Ok(Some(Sandbox {
            pod: Pod::connect(ns, Path::new(key))?,
        }))
    }
}

/// A container's network namespace, opened.
pub struct Sandbox {
    pod: Pod,
}

impl Sandbox {
    /// The endpoint's link inside, once Docker has moved it in, brought it up and given it
    /// its addresses; None before that.
    pub fn configured_link(&self, endpoint: &Endpoint) -> Result<Option<Link>> {
        let links = self
            .pod
            .netlink
            .links()
            .context("listing the container's links")?;
        let Some(link) = links.into_iter().find(|l| is_ours(l, endpoint)) else {
            return Ok(None);
        };
        if !link.up {
            return Ok(None);
        }
        let present = self
            .pod
            .netlink
            .addresses(link.index)
            .context("reading the container's addresses")?;
        let all = endpoint
            .addresses
            .iter()
            .all(|a| present.iter().any(|p| p.network.ip() == a.ip()));
        Ok(all.then_some(link))
    }
}

fn is_ours(link: &Link, endpoint: &Endpoint) -> bool {
    link.kind.as_deref() == Some("macvlan") && link.mac == Some(endpoint.mac)
}

/// The attachment record's key. Network names and container IDs must be
/// `[A-Za-z0-9_.-]`: Docker's IDs are hex.
pub fn key_of(network: &Network, endpoint: &Endpoint) -> AttachmentKey {
    let short = &network.id[..network.id.len().min(12)];
    AttachmentKey {
        network: format!("docker-{short}"),
        container_id: endpoint.id.clone(),
        ifname: endpoint.link.clone(),
    }
}

fn mode_of(network: &Network) -> Result<MacvlanMode> {
    network.mode.parse().map_err(Error::internal)
}

fn host_access_of(network: &Network) -> Result<HostAccess> {
    network
        .host_access
        .parse()
        .map_err(|why| Error::internal(format!("the stored network's host_access {why}")))
}

fn settings(network: &Network) -> Result<Settings> {
    Ok(Settings {
        host_access: host_access_of(network)?,
        shim_name: network.shim_name.clone(),
        shim_addresses: network.shim_addresses.clone(),
        veth_name: None,
        host_routes: network.host_routes.clone(),
    })
}
