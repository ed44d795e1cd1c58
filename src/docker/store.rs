//! What the driver must remember across its own restarts: the networks Docker created (Docker
//! never sends CreateNetwork again for them), durably, in the network directory; and the
//! endpoints, in the state directory beside the attachment records (they live as long as the
//! containers, so tmpfs is right for them).

use std::fs;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::system::names::is_valid_id;
use crate::system::{durable_file, state, Mac, SysError};

/// A network as CreateNetwork defined it, with its parent resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    pub id: String,
    pub parent: String,
    /// The macvlan mode, as `-o mode` spells it.
    pub mode: String,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// `shim`, `veth` or `none`.
    pub host_access: String,
    #[serde(default)]
    pub host_routes: Vec<IpNetwork>,
    #[serde(default)]
    pub shim_name: Option<String>,
    #[serde(default)]
    pub shim_addresses: Vec<IpNetwork>,
    pub pools: Vec<IpNetwork>,
    #[serde(default)]
    pub gateways: Vec<IpAddr>,
}

/// An endpoint: Docker's addresses and MAC, the link the driver made for it, and the
/// container's namespace once joined.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub id: String,
    pub network_id: String,
    pub addresses: Vec<IpNetwork>,
    pub mac: Mac,
    /// The macvlan's name on the node (Join's `SrcName`).
    pub link: String,
    /// Join's `SandboxKey`; None when not joined.
    #[serde(default)]
    pub sandbox: Option<String>,
}

pub struct Store {
    networks: PathBuf,
    endpoints: PathBuf,
}

/// Docker's IDs are 64 hex digits; they name files here, so nothing else is accepted.
pub fn check_id(what: &str, id: &str) -> Result<()> {
    if is_valid_id(id, 128) {
        Ok(())
    } else {
        Err(Error::config(format!("{what} {id:?} is not a Docker ID")))
    }
}

impl Store {
    pub fn open(network_dir: &Path, state_dir: &Path) -> Result<Store> {
        let endpoints = state_dir.join("docker-endpoints");
        for dir in [network_dir, &endpoints] {
            fs::DirBuilder::new()
                .recursive(true)
                .create(dir)
                .map_err(|e| SysError::io(format!("creating {}", dir.display()), e))?;
        }
        Ok(Store {
            networks: network_dir.to_owned(),
            endpoints,
        })
    }

    pub fn networks(&self) -> Result<Vec<Network>> {
        read_all(&self.networks)
    }

    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        read_all(&self.endpoints)
    }

    /// Durable: a network outlives reboots, as Docker's own definition of it does.
    pub fn save_network(&self, network: &Network) -> Result<()> {
        let path = self.networks.join(format!("{}.json", network.id));
        let bytes = serde_json::to_vec_pretty(network).expect("a network serialises");
        durable_file::replace(&path, &bytes, 0o600)
            .map_err(|e| SysError::io(format!("writing {}", path.display()), e))?;
        Ok(())
    }

    pub fn remove_network(&self, id: &str) -> Result<()> {
        let path = self.networks.join(format!("{id}.json"));
        durable_file::remove(&path)
            .map_err(|e| SysError::io(format!("removing {}", path.display()), e))?;
        Ok(())
    }

    pub fn save_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        let path = self.endpoints.join(format!("{}.json", endpoint.id));
        let bytes = serde_json::to_vec_pretty(endpoint).expect("an endpoint serialises");
        state::write_unlocked(&path, &bytes)?;
        Ok(())
    }

    pub fn remove_endpoint(&self, id: &str) -> Result<()> {
        let path = self.endpoints.join(format!("{id}.json"));
        match fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(SysError::io(format!("removing {}", path.display()), e).into())
            }
            _ => Ok(()),
        }
    }
}

/// Every `*.json` of `dir`; a file that does not parse is logged and skipped (a half-written
/// temporary is never named `*.json`).
fn read_all<T: for<'de> Deserialize<'de>>(dir: &Path) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let reading = |e| SysError::io(format!("reading {}", dir.display()), e);
    for entry in fs::read_dir(dir).map_err(reading)? {
        let path = entry.map_err(reading)?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        match fs::read(&path).map(|bytes| serde_json::from_slice::<T>(&bytes)) {
            Ok(Ok(value)) => out.push(value),
            Ok(Err(e)) => log::warn!("ignoring {}: {e}", path.display()),
            Err(e) => log::warn!("cannot read {}: {e}", path.display()),
        }
    }
    Ok(out)
}
