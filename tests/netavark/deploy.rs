//! What a podman host installs: the plugin put into (and taken out of) a netavark plugin
//! directory by `macvlan-host install`, and the systemd unit that runs the watcher over the
//! plugin's state directory.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::common::*;

#[test]
fn install_puts_the_plugin_into_a_netavark_plugin_dir_and_removes_it() {
    let dir = TempDir::new("netavark-plugins");
    let install = |extra: &[&str]| {
        let out = Command::new(OUR_PLUGIN)
            .args(["install", "--netavark-plugin-dir", dir.str()])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    install(&[]);
    let plugin = dir.join(OUR_TYPE);
    assert_eq!(
        std::fs::read(&plugin).unwrap(),
        std::fs::read(OUR_PLUGIN).unwrap()
    );
    let mode = std::fs::metadata(&plugin).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    // The installed binary answers netavark.
    let info = Command::new(&plugin).arg("info").output().unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["api_version"], "1.0.0");
    install(&["--uninstall"]);
    assert!(!plugin.exists(), "uninstall left the plugin");
    // A directory that does not exist is refused.
    let out = Command::new(OUR_PLUGIN)
        .args(["install", "--netavark-plugin-dir", "/nonexistent/netavark"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--netavark-plugin-dir"));
}

#[test]
fn the_systemd_unit_watches_the_plugins_state_dir() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/systemd/macvlan-host-netavark.service"
    );
    let unit = std::fs::read_to_string(path).unwrap();
    let exec_start = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let words: Vec<&str> = exec_start.split_whitespace().collect();
    assert_eq!(
        words[1..],
        [
            "reconcile",
            "--watch",
            "--state-dir",
            "/run/macvlan-host/netavark"
        ]
    );
    // Under ProtectSystem=strict, /run/macvlan-host (records, node lock) must be writable.
    assert!(unit.contains("RuntimeDirectory=macvlan-host\nRuntimeDirectoryPreserve=yes\n"));
    let dir = TempDir::new("unit");
    let copy = dir.join("macvlan-host-netavark.service");
    std::fs::write(&copy, unit.replace(words[0], OUR_PLUGIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("run systemd-analyze (Debian's systemd)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {out:?}"
    );
}
