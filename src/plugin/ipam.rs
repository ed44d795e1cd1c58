//! IPAM delegation: runs `CNI_PATH/<ipam.type>` exactly as a runtime runs a plugin (same
//! environment, this configuration on stdin), so any IPAM plugin works: host-local, static,
//! dhcp, whereabouts.
//!
//! A call can be started and collected later (`start` / `IpamCall::wait`): the IPAM plugin is a
//! process of its own, and the plugin does its netlink work while it runs.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};

use serde_json::{json, Value};

use super::ipam_versions::IpamVersions;
use crate::error::{Error, Kind, Result};
use crate::protocol::{CniVersion, Command, Environment, NetConf};

pub struct Ipam<'a> {
    env: &'a Environment,
    conf: &'a NetConf,
    plugin: String,
}

/// A running IPAM call.
pub struct IpamCall<'i, 'a> {
    ipam: &'i Ipam<'a>,
    command: Command,
    version: CniVersion,
    child: Child,
}

impl<'a> Ipam<'a> {
    /// The IPAM plugin of an interface-mode configuration's `ipam` section (its `type` was
    /// validated when the configuration was read).
    pub fn new(
        env: &'a Environment,
        conf: &'a NetConf,
        section: &serde_json::Map<String, Value>,
    ) -> Ipam<'a> {
        let plugin = section
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ipam { env, conf, plugin }
    }

    /// Whether the plugin keeps its allocations in local files only (`host-local`) or has
    /// none to keep (`static`): it never needs the pod or its path to the node to release an
    /// address, so its DEL may run while they are torn down. Any other plugin (`dhcp`, which
    /// sends DHCPRELEASE from the pod; one this code does not know) is given them intact.
    pub fn releases_locally(&self) -> bool {
        matches!(self.plugin.as_str(), "host-local" | "static")
    }

    /// Starts a verb; its outcome comes from `IpamCall::wait`.
    pub fn start(&self, command: Command) -> Result<IpamCall<'_, 'a>> {
        let version = self.negotiated_version().unwrap_or(self.conf.cni_version);
        let child = self.spawn(command, version)?;
        Ok(IpamCall {
            ipam: self,
            command,
            version,
            child,
        })
    }

    pub fn del(&self) -> Result<()> {
        self.start(Command::Del)?.wait().map(drop)
    }

    /// GC is passed on only to IPAM plugins that speak 1.1.0; older ones have no GC.
    pub fn gc(&self) -> Result<()> {
        if self.supported_versions()?.contains(&CniVersion::V1_1_0) {
            self.start(Command::Gc)?.wait().map(drop)
        } else {
            Ok(())
        }
    }

    fn supported_versions(&self) -> Result<Vec<CniVersion>> {
        let child = self.spawn(Command::Version, self.conf.cni_version)?;
        let reply = self.collect(Command::Version, child)?.unwrap_or_default();
        Ok(reply
            .get("supportedVersions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| CniVersion::parse(v.as_str()?).ok())
            .collect())
    }

    /// The version agreed with this very binary by an earlier call (see `IpamCall::wait`).
    fn negotiated_version(&self) -> Option<CniVersion> {
        let identity = self.identity()?;
        IpamVersions::in_state_dir(&self.conf.state_dir)
            .get(&self.plugin, &identity)
            .filter(|v| *v < self.conf.cni_version)
    }

    fn remember_version(&self, version: CniVersion) {
        let Some(identity) = self.identity() else {
            return;
        };
        let remembered =
            IpamVersions::in_state_dir(&self.conf.state_dir).set(&self.plugin, &identity, version);
        if let Err(e) = remembered {
            log::debug!("not remembering the IPAM plugin's version: {e}");
        }
    }

    /// Path, size and modification time of the IPAM binary: an upgraded plugin is asked again.
    fn identity(&self) -> Option<String> {
        let binary = self.binary().ok()?;
        let meta = std::fs::metadata(&binary).ok()?;
        Some(format!(
            "{}:{}:{}.{}",
            binary.display(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        ))
    }

    fn binary(&self) -> Result<PathBuf> {
        self.env
            .path
            .iter()
            .map(|dir| dir.join(&self.plugin))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::config(format!(
                    "ipam.type {:?}: no such plugin in CNI_PATH ({})",
                    self.plugin,
                    self.env
                        .path
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":")
                ))
            })
    }

    fn what(&self, command: Command) -> String {
        format!("IPAM plugin {} ({})", self.plugin, command.as_str())
    }

    fn spawn(&self, command: Command, version: CniVersion) -> Result<Child> {
        let binary = self.binary()?;
        let mut conf = self.conf.raw.clone();
        conf.insert("cniVersion".into(), json!(version.as_str()));
        let stdin = serde_json::to_vec(&conf).expect("a JSON map always serialises");
        let mut child = Process::new(&binary)
            .env("CNI_COMMAND", command.as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::io(format!(
                    "{}: cannot run {}: {e}",
                    self.what(command),
                    binary.display()
                ))
            })?;
        // Plugins read all of stdin before they answer, so this cannot deadlock with the child
        // waiting for its output to be read. A plugin that exits without reading stdin makes
        // the write fail with EPIPE; its exit status and output tell why, so the write error
        // itself is not reported.
        let _ = child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(&stdin);
        Ok(child)
    }

    fn collect(&self, command: Command, child: Child) -> Result<Option<Value>> {
        let what = self.what(command);
        let output = child
            .wait_with_output()
            .map_err(|e| Error::io(format!("{what}: {e}")))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.trim().is_empty() {
            log::debug!("{what} stderr: {}", stderr.trim());
        }
        let reply: Option<Value> = serde_json::from_slice(&output.stdout).ok();
        if output.status.success() {
            return Ok(reply);
        }
        let field = |key: &str| reply.as_ref().and_then(|r| r.get(key).cloned());
        let msg = field("msg")
            .and_then(|m| m.as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                format!(
                    "exited with {} and no error message; stderr: {}",
                    output.status,
                    stderr.trim()
                )
            });
        let details = field("details")
            .and_then(|d| d.as_str().map(str::to_owned))
            .unwrap_or_default();
        Err(Error::foreign(
            field("code").as_ref(),
            format!("{what}: {msg}"),
            &details,
        ))
    }
}

impl IpamCall<'_, '_> {
    /// Waits for the call. An IPAM plugin older than the configuration (Debian's host-local
    /// speaks up to 1.0.0) refuses it with code 1: then the call is repeated at the newest
    /// version both sides speak, and that version is remembered for this binary, so later
    /// calls go straight to it. Results are read version-independently.
    pub fn wait(self) -> Result<Option<Value>> {
        let IpamCall {
            ipam,
            command,
            version,
            child,
        } = self;
        match ipam.collect(command, child) {
            Err(e) if e.kind == Kind::IncompatibleVersion => {
                let common = ipam
                    .supported_versions()?
                    .into_iter()
                    .filter(|v| *v < version)
                    .max()
                    .ok_or(e)?;
                log::debug!(
                    "IPAM plugin {} does not speak {version}; using {common}",
                    ipam.plugin
                );
                let outcome = ipam.collect(command, ipam.spawn(command, common)?);
                if outcome.is_ok() {
                    ipam.remember_version(common);
                }
                outcome
            }
            other => other,
        }
    }

    /// `wait`, for a verb that must return a result (ADD).
    pub fn wait_for_result(self) -> Result<Value> {
        let what = self.ipam.what(self.command);
        self.wait()?
            .ok_or_else(|| Error::internal(format!("{what} returned no result")))
    }
}
