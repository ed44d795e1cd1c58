//! What a podman network means to this plugin: its options validated (the shared front-end
//! options plus `state_dir`), and what it refuses because podman would not get what it
//! expects (rootless, DHCP, no subnet).

use std::path::PathBuf;

use super::types::Network;
use crate::error::{Error, Result};
use crate::protocol::options::NetworkOptions;
use crate::system::privilege;

/// Where attachment records of podman containers live unless `-o state_dir=` says otherwise:
/// apart from the CNI plugin's default (`/run/cni/macvlan-host`), so that CNI's GC never sees
/// podman's containers.
pub const DEFAULT_STATE_DIR: &str = "/run/macvlan-host/netavark";

/// Options only this front end has.
const OWN_OPTIONS: [&str; 1] = ["state_dir"];

/// A network's settings, validated.
pub struct Settings {
    pub options: NetworkOptions,
    pub state_dir: PathBuf,
}

impl Settings {
    /// The options of `network`, refused naming the option; with the state directory.
    pub fn of(network: &Network) -> Result<Settings> {
        let options = NetworkOptions::parse(network.options(), &OWN_OPTIONS)
            .map_err(|e| Error::config(e.to_string()))?;
        let state_dir = match network.option("state_dir") {
            None => PathBuf::from(DEFAULT_STATE_DIR),
            Some(dir) if dir.starts_with('/') => PathBuf::from(dir),
            Some(dir) => {
                return Err(Error::config(format!(
                    "option state_dir={dir:?}: must be an absolute path"
                )))
            }
        };
        Ok(Settings { options, state_dir })
    }
}

impl Settings {
    /// For `teardown`, which must not fail on options a newer or older version judged
    /// differently: the options when they are valid, else the defaults with the network's
    /// `state_dir` (the record there says what to remove).
    pub fn for_teardown(network: &Network) -> Settings {
        Settings::of(network).unwrap_or_else(|e| {
            log::warn!("tearing down with default options: {e}");
            let state_dir = network
                .option("state_dir")
                .filter(|dir| dir.starts_with('/'))
                .unwrap_or(DEFAULT_STATE_DIR);
            Settings {
                options: NetworkOptions::parse([], &[]).expect("no options are valid options"),
                state_dir: PathBuf::from(state_dir),
            }
        })
    }
}

/// Rootless podman runs plugins in a user namespace without the node's CAP_NET_ADMIN: the
/// routes and neighbour entries that give the node its path to containers cannot be made.
pub fn refuse_rootless() -> Result<()> {
    if privilege::is_rootless() {
        return Err(Error::config(
            "macvlan-host needs root: rootless podman cannot give the node routes to its \
             containers. Create and use the network as root (sudo podman network create -d \
             macvlan-host ...)",
        ));
    }
    Ok(())
}

/// Podman's own IPAM (host-local) allocates the addresses this plugin is handed
/// (`static_ips`); without a subnet there is none, and a DHCP lease would need netavark's
/// DHCP proxy, which only netavark's built-in drivers talk to.
pub fn refuse_unaddressed(network: &Network) -> Result<()> {
    match network.ipam_driver() {
        Some("dhcp") => {
            return Err(Error::config(
                "--ipam-driver dhcp is not supported by macvlan-host: netavark's DHCP proxy \
                 serves only its built-in drivers. Give the network a --subnet (with --ip-range \
                 outside your DHCP server's pool, and --gateway) so that podman assigns the \
                 addresses, or use podman's own -d macvlan with --ipam-driver dhcp (the node \
                 then cannot reach its containers)",
            ))
        }
        Some("none") => {
            return Err(Error::config(
                "--ipam-driver none is not supported by macvlan-host: the node reaches its \
                 containers by their addresses, so podman must assign them: give the network a \
                 --subnet and leave --ipam-driver unset (host-local)",
            ))
        }
        _ => {}
    }
    if network.subnets().is_empty() {
        return Err(Error::config(
            "macvlan-host needs a subnet: podman assigns no address on a plugin network \
             without one. Add --subnet (the LAN's, e.g. --subnet 192.168.1.0/24 --gateway \
             192.168.1.1 --ip-range 192.168.1.192/27)",
        ));
    }
    Ok(())
}
