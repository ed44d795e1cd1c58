//! NetworkManager 1.42 (unpacked from Debian's packages, not installed) in a test node, with a
//! private system bus.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{deploy_file, Daemon};
use crate::common::*;

/// Where `scripts/install-deps.sh` unpacks NetworkManager.
pub fn network_manager_root() -> PathBuf {
    std::env::var_os("MVH_NM_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/network-manager/root")
        })
}

/// A system bus that lets everyone do everything: it exists only in the test's mount namespace.
pub const DBUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_type="*"/>
  </policy>
</busconfig>
"#;

/// NetworkManager's configuration for one test: a keyfile profile for eth0 with the node's
/// addresses, and (`with_dropin`) the shipped conf.d file.
pub struct NetworkManager {
    pub dir: TempDir,
    runs: usize,
}

impl NetworkManager {
    pub fn configure(with_dropin: bool) -> NetworkManager {
        let root = network_manager_root();
        assert!(
            root.join("usr/sbin/NetworkManager").exists(),
            "NetworkManager is not unpacked in {root:?}: run scripts/install-deps.sh"
        );
        let dir = TempDir::new("nm");
        for sub in ["conf.d", "connections"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        fs::write(dir.join("dbus.conf"), DBUS_CONFIG).unwrap();
        fs::write(
            dir.join("NetworkManager.conf"),
            format!(
                "[main]\nplugins=keyfile\n\n[keyfile]\npath={}\n\n[logging]\nlevel=DEBUG\n",
                dir.join("connections").display()
            ),
        )
        .unwrap();
        let profile = dir.join("connections/lan.nmconnection");
        fs::write(
            &profile,
            format!(
                "[connection]\nid=lan\ntype=ethernet\ninterface-name=eth0\nautoconnect=true\n\n\
                 [ipv4]\nmethod=manual\naddress1={NODE1_IP4}/24,{PEER_IP4}\n\n\
                 [ipv6]\nmethod=manual\naddress1={NODE1_IP6}/64,{PEER_IP6}\n"
            ),
        )
        .unwrap();
        // NetworkManager ignores a keyfile that others can read.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&profile, fs::Permissions::from_mode(0o600)).unwrap();
        if with_dropin {
            fs::copy(
                deploy_file("macvlan-host-NetworkManager.conf"),
                dir.join("conf.d/macvlan-host.conf"),
            )
            .unwrap();
        }
        NetworkManager { dir, runs: 0 }
    }

    /// Starts NetworkManager (and its private bus) in `node`; returns at "startup complete".
    pub fn start(&mut self, node: &Netns) -> Daemon {
        self.runs += 1;
        let d = |p: &str| self.dir.join(p).display().to_string();
        let bus_pid = self.dir.join(format!("dbus{}.pid", self.runs));
        let script = format!(
            "set -e; mount -t sysfs -o ro sysfs /sys; mount -t tmpfs tmpfs /run; \
             mkdir -p /run/dbus /run/NetworkManager; \
             mount -t tmpfs tmpfs /var/lib; mkdir -p /var/lib/NetworkManager; \
             dbus-daemon --config-file={bus} --nofork --nopidfile & echo $! > {bus_pid}; \
             i=0; while [ ! -S /run/dbus/system_bus_socket ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
             exec {root}/usr/sbin/NetworkManager --debug --config={conf} --config-dir={confd} \
             --state-file={state}",
            bus = d("dbus.conf"),
            bus_pid = bus_pid.display(),
            root = network_manager_root().display(),
            conf = d("NetworkManager.conf"),
            confd = d("conf.d"),
            state = d("NetworkManager.state"),
        );
        let libs = network_manager_root().join("usr/lib/x86_64-linux-gnu");
        let log = self.dir.join(format!("NetworkManager{}.log", self.runs));
        let mut daemon = Daemon::start(
            node,
            &script,
            &[("LD_LIBRARY_PATH", libs.to_str().unwrap())],
            log,
        );
        daemon.helper_pid_file = Some(bus_pid);
        daemon.wait_for_log("manager: startup complete", Duration::from_secs(20));
        daemon
    }
}

/// A LAN whose NODE1 eth0 is bare (no address, down), so that NetworkManager activates its own
/// profile on it instead of adopting it as "external" and leaving it alone.
pub fn lan_for_network_manager() -> Lan {
    let lan = Lan::new();
    lan.node1.ip(["addr", "flush", "dev", "eth0"]);
    lan.node1.ip(["link", "set", "eth0", "down"]);
    lan
}

/// Waits until NetworkManager has put the node's addresses on eth0, usable (not tentative).
pub fn wait_for_node_addresses(node: &Netns, daemon: &mut Daemon) {
    daemon.wait_for_log("(eth0): Activation: successful", Duration::from_secs(20));
    daemon.wait_until("eth0's addresses, usable", Duration::from_secs(30), || {
        let addrs = node.ip(["addr", "show", "dev", "eth0"]);
        addrs.contains(&format!("{NODE1_IP4}/24"))
            && addrs.contains(&format!("{NODE1_IP6}/64"))
            && !addrs.contains("tentative")
    });
}
