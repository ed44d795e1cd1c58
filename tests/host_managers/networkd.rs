//! systemd-networkd 252 (Debian's `systemd` package) in a test node.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::{deploy_file, Daemon};
use crate::common::*;

/// networkd's configuration for one test: `etc/` is bind-mounted on /etc/systemd.
pub struct Networkd {
    dir: TempDir,
    runs: usize,
}

impl Networkd {
    /// Where the latest run keeps its link state files (`ADMIN_STATE=...`).
    pub fn links_dir(&self) -> std::path::PathBuf {
        self.dir.join(format!("run{}/netif/links", self.runs))
    }
}

impl Networkd {
    /// eth0 with the node's addresses, then a catch-all `.network` for every other link;
    /// `with_dropins` adds the shipped `.network` and `networkd.conf.d` files.
    pub fn configure(with_dropins: bool) -> Networkd {
        let dir = TempDir::new("networkd");
        let network = dir.join("etc/network");
        fs::create_dir_all(&network).unwrap();
        fs::create_dir_all(dir.join("etc/networkd.conf.d")).unwrap();
        // Without LinkLocalAddressing=no and IPv6AcceptRA=no links wait for a router
        // advertisement that never comes.
        fs::write(
            network.join("20-eth0.network"),
            format!(
                "[Match]\nName=eth0\n\n[Network]\nAddress={NODE1_IP4}/24\nAddress={NODE1_IP6}/64\n\
                 Gateway={PEER_IP4}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
            ),
        )
        .unwrap();
        fs::write(
            network.join("99-all.network"),
            "[Match]\nName=*\nType=!loopback\n\n[Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
        )
        .unwrap();
        if with_dropins {
            fs::copy(
                deploy_file("10-macvlan-host.network"),
                network.join("10-macvlan-host.network"),
            )
            .unwrap();
            fs::copy(
                deploy_file("macvlan-host-networkd.conf"),
                dir.join("etc/networkd.conf.d/macvlan-host.conf"),
            )
            .unwrap();
        }
        Networkd { dir, runs: 0 }
    }

    /// Starts networkd in `node`; returns once it has configured or left unmanaged every link.
    pub fn start(&mut self, node: &Netns) -> Daemon {
        self.runs += 1;
        // A fresh /run/systemd per run: its link state files tell when this run is done.
        let run = self.dir.join(format!("run{}", self.runs));
        fs::create_dir_all(&run).unwrap();
        // /sys remounted: otherwise it shows the machine's links and networkd waits for udev.
        let script = format!(
            "set -e; mount -t sysfs -o ro sysfs /sys; mount -t tmpfs tmpfs /run; \
             mkdir -p /run/systemd /run/dbus; mount --bind {run} /run/systemd; \
             mount --bind {etc} /etc/systemd; exec /lib/systemd/systemd-networkd",
            run = run.display(),
            etc = self.dir.join("etc").display(),
        );
        let log = self.dir.join(format!("networkd{}.log", self.runs));
        let mut daemon = Daemon::start(
            node,
            &script,
            &[
                ("SYSTEMD_LOG_LEVEL", "debug"),
                ("SYSTEMD_LOG_TARGET", "console"),
            ],
            log,
        );
        wait_until_settled(&mut daemon, node, &run.join("netif/links"));
        daemon
    }
}

/// networkd's admin state of each link but `lo` (from its state files), keyed by name.
pub fn admin_states(node: &Netns, links_dir: &Path) -> Vec<(String, String)> {
    node.ip_json(["link"])
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|l| l["ifname"] != "lo")
        .map(|l| {
            let state = fs::read_to_string(links_dir.join(l["ifindex"].to_string()))
                .unwrap_or_default()
                .lines()
                .find_map(|line| line.strip_prefix("ADMIN_STATE=").map(str::to_owned))
                .unwrap_or_else(|| "(none)".into());
            (l["ifname"].as_str().unwrap_or_default().to_owned(), state)
        })
        .collect()
}

/// Waits until networkd has every link configured or unmanaged.
fn wait_until_settled(daemon: &mut Daemon, node: &Netns, links_dir: &Path) {
    daemon.wait_until(
        "every link configured or unmanaged",
        Duration::from_secs(20),
        || {
            admin_states(node, links_dir)
                .iter()
                .all(|(_, s)| s == "configured" || s == "unmanaged")
        },
    );
}

/// A LAN whose NODE1 address has a broadcast: without one networkd 252 keeps reconfiguring it
/// and gives up with "Numerical result out of range".
pub fn lan_for_networkd() -> Lan {
    let lan = Lan::new();
    let node = &lan.node1;
    let addr = format!("{NODE1_IP4}/24");
    // `ip addr replace` keeps the old (missing) broadcast: delete and add. The default route
    // goes with the address.
    node.ip(["addr", "del", &addr, "dev", "eth0"]);
    node.ip(["addr", "add", &addr, "brd", "+", "dev", "eth0"]);
    node.ip(["route", "add", "default", "via", PEER_IP4, "dev", "eth0"]);
    lan
}
