//! The driver's calls, each a short list of named steps. State (networks, endpoints) is kept
//! in memory behind one mutex and written through to the store before a call answers; the
//! host-side work goes through `host_side`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnetwork::IpNetwork;
use serde::Serialize;
use serde_json::{json, Value};

use super::host_side::Host;
use super::options;
use super::sandbox::{self, Joins, Patience};
use super::store::{check_id, Endpoint, Network, Store};
use super::wire::{self, EndpointInterface};
use crate::error::{Error, Result};
use crate::system::{names, Mac};

/// The prefix Docker gives the interface inside the container: `eth0`, `eth1`...
const DST_PREFIX: &str = "eth";

pub struct Driver {
    pub host: Host,
    store: Store,
    networks: BTreeMap<String, Network>,
    endpoints: BTreeMap<String, Endpoint>,
    /// Endpoints whose container side is made for their current sandbox.
    completed: BTreeSet<String>,
}

pub type Shared = Arc<Mutex<Driver>>;

/// What a call answers: an HTTP status and a JSON body.
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    fn ok(body: impl Serialize) -> Reply {
        Reply {
            status: 200,
            body: serde_json::to_value(body).expect("a reply serialises"),
        }
    }

    fn failed(status: u16, message: String) -> Reply {
        Reply {
            status,
            body: json!(wire::Failure { err: message }),
        }
    }
}

impl Driver {
    /// The driver as its store left it: networks and endpoints of earlier runs.
    pub fn load(network_dir: &Path, state_dir: &Path) -> Result<Driver> {
        let store = Store::open(network_dir, state_dir)?;
        let networks = store
            .networks()?
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect();
        let endpoints = store
            .endpoints()?
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect();
        Ok(Driver {
            host: Host::open(state_dir)?,
            store,
            networks,
            endpoints,
            completed: BTreeSet::new(),
        })
    }

    /// Joined endpoints of an earlier run: their container side is made true again (and
    /// finished, if the driver stopped between Join and the container's start).
    pub fn joined(&self) -> Vec<(String, String)> {
        self.endpoints
            .values()
            .filter_map(|e| e.sandbox.clone().map(|s| (e.id.clone(), s)))
            .collect()
    }

    fn network(&self, id: &str) -> Result<&Network> {
        self.networks.get(id).ok_or_else(|| {
            Error::config(format!(
                "network {id} is not a macvlan-host network this driver knows"
            ))
        })
    }

    /// The endpoint and its network, when both are known.
    pub fn endpoint(&self, id: &str) -> Option<(Endpoint, Network)> {
        let endpoint = self.endpoints.get(id)?;
        let network = self.networks.get(&endpoint.network_id)?;
        Some((endpoint.clone(), network.clone()))
    }
}

impl Joins for Driver {
    fn awaiting(&self, id: &str, sandbox: &str) -> Option<(Endpoint, Network)> {
        if self.completed.contains(id) {
            return None;
        }
        self.endpoint(id)
            .filter(|(e, _)| e.sandbox.as_deref() == Some(sandbox))
    }

    fn host(&self) -> &Host {
        &self.host
    }

    fn mark_completed(&mut self, id: &str) {
        self.completed.insert(id.to_owned());
    }
}

/// Answers one request of Docker's.
pub fn handle(shared: &Shared, path: &str, body: &[u8]) -> Reply {
    let method = path.trim_start_matches('/');
    let outcome = match method {
        "Plugin.Activate" => Ok(Reply::ok(wire::Activated {
            implements: vec!["NetworkDriver"],
        })),
        "NetworkDriver.GetCapabilities" => Ok(Reply::ok(wire::Capabilities {
            scope: "local",
            connectivity_scope: "local",
        })),
        "NetworkDriver.CreateNetwork" => parse(body).and_then(|r| create_network(shared, r)),
        "NetworkDriver.DeleteNetwork" => parse(body).and_then(|r| delete_network(shared, r)),
        "NetworkDriver.CreateEndpoint" => parse(body).and_then(|r| create_endpoint(shared, r)),
        "NetworkDriver.DeleteEndpoint" => parse(body).and_then(|r| delete_endpoint(shared, r)),
        "NetworkDriver.EndpointOperInfo" => parse(body).and_then(|r| oper_info(shared, r)),
        "NetworkDriver.Join" => parse(body).and_then(|r| join(shared, r)),
        "NetworkDriver.Leave" => parse(body).and_then(|r| leave(shared, r)),
        "NetworkDriver.ProgramExternalConnectivity" => {
            parse(body).and_then(|r| program_external(shared, r))
        }
        // Nothing to revoke: no ports are published on a macvlan.
        "NetworkDriver.RevokeExternalConnectivity" => Ok(Reply::ok(json!({}))),
        // Node discovery is for multi-host drivers; a local one only acknowledges it.
        "NetworkDriver.DiscoverNew" | "NetworkDriver.DiscoverDelete" => Ok(Reply::ok(json!({}))),
        // Swarm managers allocate global networks; this driver's scope is local.
        "NetworkDriver.AllocateNetwork" | "NetworkDriver.FreeNetwork" => Err(Error::config(
            "macvlan-host is a local-scope driver: it has no swarm-scope networks",
        )),
        _ => {
            return Reply::failed(404, format!("{method} is not a method of this driver"));
        }
    };
    outcome.unwrap_or_else(|e| {
        // Docker shows `Err` to the user as it is: the details go with the message.
        let message = e.to_string();
        log::warn!("{method}: {message}");
        Reply::failed(200, message)
    })
}

fn parse<T: for<'de> serde::Deserialize<'de>>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Error::config(format!("the request is not the JSON this call takes: {e}")))
}

fn lock(shared: &Shared) -> MutexGuard<'_, Driver> {
    // A call that panicked left nothing half-written in memory that the next call trusts:
    // every state change is written to the store first.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn create_network(shared: &Shared, request: wire::CreateNetwork) -> Result<Reply> {
    check_id("NetworkID", &request.network_id)?;
    let options = options::network_options(&request.options)?;
    let pools = options::pools(&request.ipv4_data, &request.ipv6_data)?;
    let mut driver = lock(shared);
    let parent = driver.host.resolve_parent(options.parent.as_deref())?;
    let subnets: Vec<IpNetwork> = pools.iter().map(|(pool, _)| *pool).collect();
    driver.host.check_parent(
        &parent,
        options.mtu,
        options.host_access,
        &subnets,
        &options.shim_addresses,
    )?;
    let network = Network {
        id: request.network_id,
        parent: parent.name,
        mode: options.mode.to_string(),
        mtu: options.mtu,
        host_access: options.host_access.as_str().to_owned(),
        host_routes: options.host_routes,
        shim_name: options.shim_name,
        shim_addresses: options.shim_addresses,
        pools: subnets,
        gateways: pools.iter().filter_map(|(_, gateway)| *gateway).collect(),
    };
    driver.store.save_network(&network)?;
    driver.networks.insert(network.id.clone(), network);
    Ok(Reply::ok(json!({})))
}

fn delete_network(shared: &Shared, request: wire::NetworkRef) -> Result<Reply> {
    let mut driver = lock(shared);
    // Docker deletes the endpoints first; any it could not (the driver was down) go now.
    let left: Vec<String> = driver
        .endpoints
        .values()
        .filter(|e| e.network_id == request.network_id)
        .map(|e| e.id.clone())
        .collect();
    for id in left {
        remove_endpoint(&mut driver, &id)?;
    }
    if driver.networks.remove(&request.network_id).is_some() {
        driver.store.remove_network(&request.network_id)?;
    }
    Ok(Reply::ok(json!({})))
}

fn create_endpoint(shared: &Shared, request: wire::CreateEndpoint) -> Result<Reply> {
    check_id("EndpointID", &request.endpoint_id)?;
    let mut driver = lock(shared);
    let network = driver.network(&request.network_id)?;
    let addresses = endpoint_addresses(&request.interface, network)?;
    let given_mac = match request.interface.mac_address.as_str() {
        "" => None,
        text => Some(
            text.parse::<Mac>()
                .map_err(|e| Error::config(format!("Interface.MacAddress: {e}")))?,
        ),
    };
    let mac = given_mac.unwrap_or_else(|| derived_mac(&request.endpoint_id));
    let endpoint = Endpoint {
        link: link_name(&request.endpoint_id),
        id: request.endpoint_id,
        network_id: request.network_id,
        addresses,
        mac,
        sandbox: None,
    };
    driver.store.save_endpoint(&endpoint)?;
    driver.endpoints.insert(endpoint.id.clone(), endpoint);
    // Only what the driver chose goes back: Docker refuses to be told what it said.
    Ok(Reply::ok(wire::EndpointCreated {
        interface: given_mac.is_none().then(|| EndpointInterface {
            mac_address: mac.to_string(),
            ..EndpointInterface::default()
        }),
    }))
}

/// Docker's addresses for the endpoint: at least one, each inside one of the network's pools.
fn endpoint_addresses(interface: &EndpointInterface, network: &Network) -> Result<Vec<IpNetwork>> {
    let mut addresses = Vec::new();
    for (field, text) in [
        ("Address", &interface.address),
        ("AddressIPv6", &interface.address_ipv6),
    ] {
        if text.is_empty() {
            continue;
        }
        let address: IpNetwork = text
            .parse()
            .map_err(|e| Error::config(format!("Interface.{field} {text:?}: {e}")))?;
        if !network.pools.iter().any(|pool| pool.contains(address.ip())) {
            return Err(Error::config(format!(
                "Interface.{field} {address} is in none of the network's subnets"
            )));
        }
        addresses.push(address);
    }
    if addresses.is_empty() {
        return Err(Error::config(
            "the endpoint has no address: macvlan-host needs Docker's IPAM to give it one",
        ));
    }
    Ok(addresses)
}

/// A MAC of the endpoint's own, stable for it (Docker passes none without --mac-address).
fn derived_mac(endpoint_id: &str) -> Mac {
    Mac::stable_local(format!("macvlan-host docker endpoint {endpoint_id}").as_bytes())
}

/// The macvlan's name on the node: `mvhx` (never a shim's `mvh-` nor a veth's `mvh<hex>`)
/// and a hash of the endpoint's ID; `mvh*` keeps network managers away from it.
fn link_name(endpoint_id: &str) -> String {
    let hash = format!("{:016x}", names::fnv1a(endpoint_id.as_bytes()));
    format!("mvhx{}", &hash[..11])
}

fn join(shared: &Shared, request: wire::Join) -> Result<Reply> {
    let mut driver = lock(shared);
    let (mut endpoint, network) = driver
        .endpoint(&request.endpoint_id)
        .ok_or_else(|| Error::config(format!("endpoint {} is unknown", request.endpoint_id)))?;
    if request.sandbox_key.is_empty() {
        return Err(Error::config("Join without a SandboxKey"));
    }
    driver.host.create_link(&network, &endpoint)?;
    if let Err(e) = driver
        .host
        .attach_node_side(&network, &endpoint, &request.sandbox_key)
    {
        undo_join(&driver, &network, &endpoint);
        return Err(e);
    }
    endpoint.sandbox = Some(request.sandbox_key.clone());
    if let Err(e) = driver.store.save_endpoint(&endpoint) {
        undo_join(&driver, &network, &endpoint);
        return Err(e);
    }
    driver.completed.remove(&endpoint.id);
    driver
        .endpoints
        .insert(endpoint.id.clone(), endpoint.clone());
    drop(driver);
    // The container's side waits for its link to arrive in the sandbox (Docker 26 creates
    // the sandbox later, Docker 28 moves the link right after this reply).
    sandbox::spawn_waiter(shared.clone(), endpoint.id.clone(), request.sandbox_key);
    let gateway = |v6: bool| {
        network
            .gateways
            .iter()
            .find(|g| g.is_ipv6() == v6)
            .map(|g| g.to_string())
            .unwrap_or_default()
    };
    Ok(Reply::ok(wire::Joined {
        interface_name: wire::InterfaceName {
            src_name: endpoint.link,
            dst_prefix: DST_PREFIX,
        },
        gateway: gateway(false),
        gateway_ipv6: gateway(true),
        static_routes: Vec::new(),
    }))
}

/// What a failed Join made goes at once (Docker also sends DeleteEndpoint, which would).
fn undo_join(driver: &Driver, network: &Network, endpoint: &Endpoint) {
    for outcome in [
        driver.host.detach(network, endpoint),
        driver.host.delete_link(endpoint),
    ] {
        if let Err(e) = outcome {
            log::warn!("undoing Join of endpoint {}: {}", endpoint.id, e);
        }
    }
}

fn leave(shared: &Shared, request: wire::EndpointRef) -> Result<Reply> {
    let mut driver = lock(shared);
    let Some((mut endpoint, network)) = driver.endpoint(&request.endpoint_id) else {
        return Ok(Reply::ok(json!({})));
    };
    // First: a waiter that is still waiting for the link gives up.
    let sandbox = endpoint.sandbox.take();
    driver.completed.remove(&endpoint.id);
    driver.store.save_endpoint(&endpoint)?;
    driver
        .endpoints
        .insert(endpoint.id.clone(), endpoint.clone());
    driver.host.detach(&network, &endpoint)?;
    // The container's other endpoints: a route this one wrote in the container (to a node
    // address outside its subnet) may have replaced theirs, and went with its link.
    let siblings: Vec<String> = driver
        .endpoints
        .values()
        .filter(|e| e.sandbox.is_some() && e.sandbox == sandbox)
        .map(|e| e.id.clone())
        .collect();
    for id in &siblings {
        driver.completed.remove(id);
    }
    drop(driver);
    if let Some(sandbox) = sandbox {
        for id in siblings {
            sandbox::spawn_waiter(shared.clone(), id, sandbox.clone());
        }
    }
    Ok(Reply::ok(json!({})))
}

fn delete_endpoint(shared: &Shared, request: wire::EndpointRef) -> Result<Reply> {
    let mut driver = lock(shared);
    remove_endpoint(&mut driver, &request.endpoint_id)?;
    Ok(Reply::ok(json!({})))
}

/// The endpoint's host side (left by a failed Leave), its macvlan (back on the node), its
/// file. Unknown endpoints are no error: Docker deletes stale ones after its own restart.
fn remove_endpoint(driver: &mut Driver, id: &str) -> Result<()> {
    let Some((endpoint, network)) = driver.endpoint(id) else {
        driver.endpoints.remove(id);
        return driver.store.remove_endpoint(id);
    };
    driver.host.detach(&network, &endpoint)?;
    driver.host.delete_link(&endpoint)?;
    driver.store.remove_endpoint(id)?;
    driver.endpoints.remove(id);
    driver.completed.remove(id);
    Ok(())
}

fn oper_info(shared: &Shared, request: wire::EndpointRef) -> Result<Reply> {
    let driver = lock(shared);
    let mut value = BTreeMap::new();
    if let Some((endpoint, network)) = driver.endpoint(&request.endpoint_id) {
        value.insert("parent".to_owned(), json!(network.parent));
        value.insert("host_access".to_owned(), json!(network.host_access));
        value.insert("link".to_owned(), json!(endpoint.link));
        value.insert("mac".to_owned(), json!(endpoint.mac.to_string()));
    }
    Ok(Reply::ok(wire::OperInfo { value }))
}

/// Docker 28 calls this with the link inside the container, before the container's process
/// starts: the container's side is made now, so its first packet finds it. Docker 26 calls
/// it with the link still on the node: the waiter finishes later.
fn program_external(shared: &Shared, request: wire::EndpointRef) -> Result<Reply> {
    let sandbox = lock(shared)
        .endpoint(&request.endpoint_id)
        .and_then(|(e, _)| e.sandbox);
    if let Some(sandbox) = sandbox {
        sandbox::complete_when_ready(shared, &request.endpoint_id, &sandbox, Patience::Call)?;
    }
    Ok(Reply::ok(json!({})))
}
