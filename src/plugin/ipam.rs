//! IPAM delegation: runs `CNI_PATH/<ipam.type>` exactly as a runtime runs a plugin (same
//! environment, this configuration on stdin), so any IPAM plugin works: host-local, static,
//! dhcp, whereabouts.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

use serde_json::{json, Value};

use crate::protocol::{code, CniError, CniResult, CniVersion, Command, Environment, NetConf};

pub struct Ipam<'a> {
    env: &'a Environment,
    conf: &'a NetConf,
    plugin: String,
}

impl<'a> Ipam<'a> {
    /// None when the configuration has no `ipam` section.
    pub fn of(env: &'a Environment, conf: &'a NetConf) -> Option<Ipam<'a>> {
        let plugin = conf.raw.get("ipam")?.get("type")?.as_str()?.to_owned();
        Some(Ipam { env, conf, plugin })
    }

    pub fn add(&self) -> CniResult<Value> {
        self.call(Command::Add)?.ok_or_else(|| {
            CniError::internal(format!(
                "IPAM plugin {:?} returned no result for ADD",
                self.plugin
            ))
        })
    }

    pub fn del(&self) -> CniResult<()> {
        self.call(Command::Del).map(drop)
    }

    pub fn check(&self) -> CniResult<()> {
        self.call(Command::Check).map(drop)
    }

    /// GC is passed on only to IPAM plugins that speak 1.1.0; older ones have no GC.
    pub fn gc(&self) -> CniResult<()> {
        if self.supported_versions()?.contains(&CniVersion::V1_1_0) {
            self.call(Command::Gc).map(drop)
        } else {
            Ok(())
        }
    }

    /// Runs one verb. An IPAM plugin older than the configuration (Debian's host-local speaks up
    /// to 1.0.0) refuses it with code 1: then the call is repeated at the newest version both
    /// sides speak; the result is read version-independently, so nothing else changes.
    fn call(&self, command: Command) -> CniResult<Option<Value>> {
        let version = self.conf.cni_version;
        match self.exec(command, version) {
            Err(e) if e.code == code::INCOMPATIBLE_VERSION => {
                let common = self
                    .supported_versions()?
                    .into_iter()
                    .filter(|v| *v < version)
                    .max()
                    .ok_or(e)?;
                log::debug!(
                    "IPAM plugin {} does not speak {version}; using {common}",
                    self.plugin
                );
                self.exec(command, common)
            }
            other => other,
        }
    }

    fn supported_versions(&self) -> CniResult<Vec<CniVersion>> {
        let reply = self
            .exec(Command::Version, self.conf.cni_version)?
            .unwrap_or_default();
        Ok(reply
            .get("supportedVersions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| CniVersion::parse(v.as_str()?).ok())
            .collect())
    }

    fn binary(&self) -> CniResult<PathBuf> {
        self.env
            .path
            .iter()
            .map(|dir| dir.join(&self.plugin))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                CniError::config(format!(
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

    fn exec(&self, command: Command, version: CniVersion) -> CniResult<Option<Value>> {
        let binary = self.binary()?;
        let mut conf = self.conf.raw.clone();
        conf.insert("cniVersion".into(), json!(version.as_str()));
        let stdin = serde_json::to_vec(&conf).expect("a JSON map always serialises");
        let what = format!("IPAM plugin {} ({})", self.plugin, command.as_str());
        let mut child = Process::new(&binary)
            .env("CNI_COMMAND", command.as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                CniError::new(
                    code::IO_FAILURE,
                    format!("{what}: cannot run {}: {e}", binary.display()),
                )
            })?;
        // A plugin that exits without reading stdin makes this write fail with EPIPE; its exit
        // status and output below say why, so the write error itself is not reported.
        let _ = child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(&stdin);
        let output = child
            .wait_with_output()
            .map_err(|e| CniError::new(code::IO_FAILURE, format!("{what}: {e}")))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.trim().is_empty() {
            log::debug!("{what} stderr: {}", stderr.trim());
        }
        let reply: Option<Value> = serde_json::from_slice(&output.stdout).ok();
        if output.status.success() {
            return Ok(reply);
        }
        let code = reply
            .as_ref()
            .and_then(|r| r.get("code")?.as_u64())
            .map(|c| c as u32)
            .unwrap_or(code::INTERNAL);
        let msg = reply
            .as_ref()
            .and_then(|r| r.get("msg")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                format!(
                    "exited with {} and no error message; stderr: {}",
                    output.status,
                    stderr.trim()
                )
            });
        let details = reply
            .as_ref()
            .and_then(|r| r.get("details")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        Err(CniError::new(code, format!("{what}: {msg}")).with_details(details))
    }
}
