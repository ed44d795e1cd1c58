//! Which host network managers could remove the host side of our pods, and whether they are
//! told to leave it alone. Found from running processes (/proc/*/comm) and configuration files,
//! as this process sees them (its mount namespace: run `diagnose` on the host, or in a
//! container that mounts the host's /etc and /proc).

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One network manager found on the node.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HostManager {
    pub name: &'static str,
    pub running: bool,
    /// The configuration files read, in the order the manager reads them.
    pub config_files: Vec<PathBuf>,
    /// The setting that matters, as configured ("default" when nothing sets it).
    pub setting: String,
    /// True when the setting leaves `mvh*` links (shims and veth node ends) and their routes
    /// alone.
    pub leaves_us_alone: bool,
    /// What to configure when it does not.
    pub advice: Option<String>,
}

/// The managers present on the node (running, or configured). `root` is "/" except in tests.
pub fn detect(root: &Path) -> Vec<HostManager> {
    let running = running_commands(&root.join("proc"));
    let mut found = Vec::new();
    found.extend(networkd(
        root,
        running.iter().any(|c| c == "systemd-network"),
    ));
    found.extend(network_manager(
        root,
        running.iter().any(|c| c == "NetworkManager"),
    ));
    found
}

/// systemd-networkd removes routes it did not configure from links it manages unless
/// `[Network] ManageForeignRoutes=no` (default yes; systemd #19106, #25451).
fn networkd(root: &Path, running: bool) -> Option<HostManager> {
    let files = config_files(
        root,
        &["etc/systemd/networkd.conf", "usr/lib/systemd/networkd.conf"],
        &[
            "usr/lib/systemd/networkd.conf.d",
            "run/systemd/networkd.conf.d",
            "etc/systemd/networkd.conf.d",
        ],
    );
    let installed = root.join("lib/systemd/systemd-networkd").exists()
        || root.join("usr/lib/systemd/systemd-networkd").exists();
    if !running && !installed && files.is_empty() {
        return None;
    }
    let value = last_setting(&files, "Network", "ManageForeignRoutes");
    let leaves_us_alone = value.as_deref().is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "no" | "false" | "0" | "off"
        )
    });
    Some(HostManager {
        name: "systemd-networkd",
        running,
        config_files: files,
        setting: format!(
            "ManageForeignRoutes={}",
            value.unwrap_or_else(|| "yes (default)".into())
        ),
        leaves_us_alone,
        advice: (!leaves_us_alone).then(|| {
            "add /etc/systemd/networkd.conf.d/macvlan-host.conf with: [Network] ManageForeignRoutes=no"
                .to_owned()
        }),
    })
}

/// NetworkManager takes over links it is not told to leave alone:
/// `[keyfile] unmanaged-devices=interface-name:mvh*` (`mvh-*` misses the veth node ends
/// `mvh<hash>`, which NetworkManager 1.42 takes over: tests/network_managers.rs).
fn network_manager(root: &Path, running: bool) -> Option<HostManager> {
    let files = config_files(
        root,
        &["etc/NetworkManager/NetworkManager.conf"],
        &[
            "usr/lib/NetworkManager/conf.d",
            "run/NetworkManager/conf.d",
            "etc/NetworkManager/conf.d",
        ],
    );
    let installed = root.join("usr/sbin/NetworkManager").exists();
    if !running && !installed && files.is_empty() {
        return None;
    }
    let value = last_setting(&files, "keyfile", "unmanaged-devices");
    let leaves_us_alone = value.as_deref().is_some_and(|v| {
        v.split([';', ','])
            .map(str::trim)
            .any(|spec| spec == "interface-name:mvh*" || spec == "*")
    });
    Some(HostManager {
        name: "NetworkManager",
        running,
        config_files: files,
        setting: format!(
            "unmanaged-devices={}",
            value.unwrap_or_else(|| "(not set)".into())
        ),
        leaves_us_alone,
        advice: (!leaves_us_alone).then(|| {
            "put \"[keyfile]\\nunmanaged-devices=interface-name:mvh*\" in /etc/NetworkManager/conf.d/macvlan-host.conf (deploy/network-managers/)"
                .to_owned()
        }),
    })
}

/// The command names (`comm`) of every process.
fn running_commands(proc: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(proc) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| fs::read_to_string(e.path().join("comm")).ok())
        .map(|c| c.trim_end().to_owned())
        .collect()
}

/// The main files that exist, then the `*.conf` drop-ins of `dirs` ordered by file name (a
/// later directory's file replaces an earlier one of the same name).
fn config_files(root: &Path, mains: &[&str], dirs: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = mains
        .iter()
        .map(|m| root.join(m))
        .filter(|p| p.is_file())
        .take(1)
        .collect();
    let mut dropins: Vec<(String, PathBuf)> = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") {
                dropins.retain(|(n, _)| *n != name);
                dropins.push((name, entry.path()));
            }
        }
    }
    dropins.sort();
    files.extend(dropins.into_iter().map(|(_, p)| p));
    files
}

/// The value of `key` in `[section]`, the last file that sets it winning.
fn last_setting(files: &[PathBuf], section: &str, key: &str) -> Option<String> {
    let mut value = None;
    for file in files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let mut current = String::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = name.trim().to_owned();
            } else if let Some((k, v)) = line.split_once('=') {
                if current == section && k.trim() == key {
                    value = Some(v.trim().to_owned());
                }
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mvh-managers-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("proc")).unwrap();
        dir
    }

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn nothing_found_on_a_node_without_managers() {
        let root = temp_root("none");
        assert!(detect(&root).is_empty());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn networkd_default_removes_foreign_routes_and_a_dropin_fixes_it() {
        let root = temp_root("networkd");
        write(&root, "proc/77/comm", "systemd-network\n");
        let found = detect(&root);
        assert_eq!(found.len(), 1);
        assert!(found[0].running && !found[0].leaves_us_alone);
        assert_eq!(found[0].setting, "ManageForeignRoutes=yes (default)");
        assert!(found[0]
            .advice
            .as_deref()
            .unwrap()
            .contains("ManageForeignRoutes=no"));

        write(
            &root,
            "etc/systemd/networkd.conf",
            "[Network]\nManageForeignRoutes=yes\n",
        );
        write(
            &root,
            "etc/systemd/networkd.conf.d/50-mvh.conf",
            "# ours\n[Network]\nManageForeignRoutes=no\n",
        );
        let found = detect(&root);
        assert!(found[0].leaves_us_alone, "{found:?}");
        assert_eq!(found[0].config_files.len(), 2);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn network_manager_needs_unmanaged_devices_for_mvh() {
        let root = temp_root("nm");
        write(
            &root,
            "etc/NetworkManager/NetworkManager.conf",
            "[main]\nplugins=ifupdown,keyfile\n[keyfile]\nunmanaged-devices=interface-name:docker0\n",
        );
        let found = detect(&root);
        assert_eq!(found[0].name, "NetworkManager");
        assert!(!found[0].running && !found[0].leaves_us_alone);
        write(
            &root,
            "etc/NetworkManager/conf.d/mvh.conf",
            "[keyfile]\nunmanaged-devices=interface-name:docker0;interface-name:mvh-*\n",
        );
        // Misses the veth node ends `mvh<hash>`.
        assert!(!detect(&root)[0].leaves_us_alone);
        write(
            &root,
            "etc/NetworkManager/conf.d/mvh.conf",
            "[keyfile]\nunmanaged-devices=interface-name:docker0;interface-name:mvh*\n",
        );
        assert!(detect(&root)[0].leaves_us_alone);
        fs::remove_dir_all(root).unwrap();
    }
}
