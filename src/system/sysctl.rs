//! Sysctls under /proc/sys. The files under /proc/sys/net belong to the network namespace of
//! the thread that opens them, so a sysctl of another namespace is written from a thread inside
//! it (`Netns::run`).
//!
//! The tree is read at `/proc/sys`, or below `$MACVLAN_HOST_SYSCTL_ROOT`: a non-privileged
//! container (the DaemonSet's) gets /proc/sys mounted read-only by its runtime, so it mounts
//! the host's /proc/sys/net writable elsewhere (`/host/proc/sys/net`) and names that root.
//! Those files still resolve by the opening thread's namespace, whatever the mount point.

use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use super::netns::Netns;
use super::{SysError, SysResult};

/// The environment variable that moves the sysctl tree (default `/proc/sys`).
pub const ROOT_VARIABLE: &str = "MACVLAN_HOST_SYSCTL_ROOT";
const DEFAULT_ROOT: &str = "/proc/sys";

/// Writes each `(key, value)`; a key is a path below /proc/sys, e.g.
/// `net/ipv4/conf/eth0/arp_notify`. Runs on a thread inside `ns`.
pub fn write_in(ns: &Netns, settings: &[(String, String)]) -> SysResult<()> {
    ns.run(|| write(settings))?.map_err(|e| in_namespace(e, ns))
}

/// Writes each `(key, value)` on a thread inside `ns` and returns the values they had before,
/// in the same order, for a later `write_in` that puts them back.
pub fn swap_in(ns: &Netns, settings: &[(String, String)]) -> SysResult<Vec<(String, String)>> {
    ns.run(|| {
        let mut previous = Vec::with_capacity(settings.len());
        for (key, _) in settings {
            previous.push((key.clone(), read(key)?));
        }
        write(settings)?;
        Ok(previous)
    })?
    .map_err(|e| in_namespace(e, ns))
}

/// Writes each `(key, value)` in the calling thread's own namespace.
pub fn write(settings: &[(String, String)]) -> SysResult<()> {
    for (key, value) in settings {
        let path = path_of(key)?;
        fs::write(&path, value.as_bytes()).map_err(|e| {
            let hint = if e.kind() == ErrorKind::ReadOnlyFilesystem {
                format!(
                    " (read-only, as in a non-privileged container: mount the host's \
                     /proc/sys/net writable and set {ROOT_VARIABLE}, see deploy/daemonset.yaml)"
                )
            } else {
                String::new()
            };
            SysError::io(
                format!(
                    "cannot set sysctl {key}={value} at {}{hint}",
                    path.display()
                ),
                e,
            )
        })?;
    }
    Ok(())
}

/// Reads one key in the calling thread's own namespace (trailing newline removed): ensure
/// reads a reused shim's hardening and writes only what differs.
pub fn read(key: &str) -> SysResult<String> {
    let path = path_of(key)?;
    let mut value = fs::read_to_string(&path)
        .map_err(|e| SysError::io(format!("cannot read sysctl {key} at {}", path.display()), e))?;
    if value.ends_with('\n') {
        value.pop();
    }
    Ok(value)
}

fn path_of(key: &str) -> SysResult<PathBuf> {
    // Keys come partly from interface names; a key that climbs out of /proc/sys would turn a
    // sysctl write into a write anywhere.
    let relative = Path::new(key);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if key.is_empty() || !plain {
        return Err(SysError::other(format!("invalid sysctl key {key:?}")));
    }
    Ok(root()?.join(relative))
}

/// The sysctl tree of this process, from the environment once.
fn root() -> SysResult<&'static Path> {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ROOT.get_or_init(|| root_from(std::env::var_os(ROOT_VARIABLE)))
        .as_deref()
        .map_err(|message| SysError::other(message.clone()))
}

/// Unset or empty: `/proc/sys`; otherwise an absolute path, taken as it is.
fn root_from(value: Option<OsString>) -> Result<PathBuf, String> {
    match value {
        None => Ok(PathBuf::from(DEFAULT_ROOT)),
        Some(value) if value.is_empty() => Ok(PathBuf::from(DEFAULT_ROOT)),
        Some(value) if Path::new(&value).is_absolute() => Ok(PathBuf::from(value)),
        Some(value) => Err(format!(
            "{ROOT_VARIABLE}={value:?} is not an absolute path (the directory that holds \
             net/, e.g. /host/proc/sys)"
        )),
    }
}

fn in_namespace(error: SysError, ns: &Netns) -> SysError {
    let label = ns.path().display();
    match error {
        SysError::Io { context, source } => SysError::Io {
            context: format!("{context} in network namespace {label}"),
            source,
        },
        SysError::Other(message) => {
            SysError::Other(format!("{message} in network namespace {label}"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::netns::test_support::TempNetns;

    #[test]
    fn write_in_changes_only_that_namespace() {
        let temp = TempNetns::new("sysctl");
        let key = "net/ipv4/conf/lo/arp_ignore";
        let machine_before = read(key).unwrap();
        let settings = [
            (key.to_string(), "2".to_string()),
            ("net/ipv4/ip_forward".to_string(), "1".to_string()),
        ];

        write_in(&temp.ns, &settings).unwrap();

        let inside = temp
            .ns
            .run(|| (read(key).unwrap(), read("net/ipv4/ip_forward").unwrap()))
            .unwrap();
        assert_eq!(inside, ("2".to_string(), "1".to_string()));
        let seen_by_ip = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &temp.name,
                "cat",
                "/proc/sys/net/ipv4/conf/lo/arp_ignore",
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&seen_by_ip.stdout).trim(), "2");
        assert_eq!(read(key).unwrap(), machine_before);
    }

    #[test]
    fn errors_name_the_key_and_the_namespace() {
        let temp = TempNetns::new("sysctl");
        let settings = [(
            "net/ipv4/conf/nosuchdev/arp_filter".to_string(),
            "1".to_string(),
        )];
        let error = write_in(&temp.ns, &settings).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("net/ipv4/conf/nosuchdev/arp_filter"),
            "{message}"
        );
        assert!(message.contains(&temp.name), "{message}");
        assert_eq!(error.errno(), Some(nix::libc::ENOENT));
    }

    #[test]
    fn the_root_is_proc_sys_unless_an_absolute_path_is_given() {
        let root = |v: Option<&str>| root_from(v.map(OsString::from));
        assert_eq!(root(None).unwrap(), Path::new("/proc/sys"));
        assert_eq!(root(Some("")).unwrap(), Path::new("/proc/sys"));
        assert_eq!(
            root(Some("/host/proc/sys")).unwrap(),
            Path::new("/host/proc/sys")
        );
        let message = root(Some("host/proc/sys")).unwrap_err();
        assert!(message.contains(ROOT_VARIABLE), "{message}");
    }

    #[test]
    fn keys_cannot_leave_proc_sys() {
        for key in [
            "",
            "../../etc/passwd",
            "/etc/passwd",
            "net/../../etc/passwd",
        ] {
            assert!(read(key).is_err(), "{key:?} was accepted");
        }
    }
}
