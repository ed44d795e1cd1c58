//! podman with its CNI backend, the way a user runs the plugin: containers on NODE1 of the test
//! LAN, through a chained conflist (reference `macvlan` + `host-local`, then `macvlan-host`) and
//! a standalone one (`macvlan-host` with `ipam`), for both datapaths.
//!
//! podman is isolated from any podman state on the machine (`common::podman`).

mod common;

use common::podman::Podman;
use common::*;
use serde_json::{json, Value};
use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// Which conflist a network is.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Reference `macvlan` + `host-local`, then `macvlan-host`.
    Chained,
    /// `macvlan-host` alone, delegating to `host-local`.
    Standalone,
}

/// One CNI network for podman: a conflist named `name`.
struct Network {
    name: String,
    shape: Shape,
    host_access: &'static str,
    /// host-local hands out addresses from here on (50 per network).
    range_start: u8,
}

impl Network {
    fn new(shape: Shape, host_access: &'static str, range_start: u8) -> Network {
        let shape_name = match shape {
            Shape::Chained => "chained",
            Shape::Standalone => "standalone",
        };
        Network {
            name: format!("mvh-{shape_name}-{host_access}"),
            shape,
            host_access,
            range_start,
        }
    }

    /// The conflist, with host-local's `dataDir` and our `stateDir` in `dirs`.
    fn conflist(&self, dirs: &Dirs) -> Value {
        let ipam = json!({
            "type": "host-local",
            "dataDir": dirs.host_local,
            "ranges": [[{
                "subnet": SUBNET4,
                "rangeStart": format!("10.99.0.{}", self.range_start),
                "rangeEnd": format!("10.99.0.{}", self.range_start + 49),
            }]],
        });
        let ours = json!({
            "type": OUR_TYPE,
            "hostAccess": self.host_access,
            "stateDir": dirs.state,
        });
        let plugins = match self.shape {
            Shape::Chained => json!([
                {"type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": ipam},
                ours,
            ]),
            Shape::Standalone => {
                let mut ours = ours;
                ours["master"] = json!("eth0");
                ours["ipam"] = ipam;
                json!([ours])
            }
        };
        json!({"cniVersion": "1.0.0", "name": self.name, "plugins": plugins})
    }
}

/// The directories the plugins keep state in, and podman's conflists.
struct Dirs {
    _root: TempDir,
    host_local: String,
    state: String,
    net_d: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let root = TempDir::new("podman-networks");
        let sub = |name: &str| {
            let path = root.join(name);
            fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
            path
        };
        let host_local = sub("host-local").to_str().unwrap().to_string();
        let state = sub("state").to_str().unwrap().to_string();
        let net_d = sub("net.d");
        Dirs {
            _root: root,
            host_local,
            state,
            net_d,
        }
    }
}

/// podman on NODE1 that knows `networks`. Fields drop in order: podman first, as its `rm`
/// runs CNI DEL, which needs the plugins, the conflists and the state directories.
struct NodePodman {
    podman: Podman,
    dirs: Dirs,
    _plugins: Plugin,
}

impl NodePodman {
    fn new(node: &Netns, networks: &[&Network]) -> NodePodman {
        let dirs = Dirs::new();
        let plugins = Plugin::ours();
        for network in networks {
            let path = dirs.net_d.join(format!("{}.conflist", network.name));
            fs::write(&path, network.conflist(&dirs).to_string()).expect("write conflist");
        }
        NodePodman {
            podman: Podman::new(node, &dirs.net_d, plugins.cni_path()),
            dirs,
            _plugins: plugins,
        }
    }
}

impl Deref for NodePodman {
    type Target = Podman;
    fn deref(&self) -> &Podman {
        &self.podman
    }
}

/// NODE1 reaches the container, and the container reaches NODE1 and PEER.
fn assert_host_access(lan: &Lan, podman: &Podman, name: &str, when: &str) {
    let ip = podman.ip_of(name);
    assert!(lan.node1.ping(&ip), "{when}: NODE1 -> {name} ({ip})");
    assert!(
        podman.container_pings(name, NODE1_IP4),
        "{when}: {name} ({ip}) -> NODE1"
    );
    assert!(
        podman.container_pings(name, PEER_IP4),
        "{when}: {name} ({ip}) -> PEER"
    );
}

/// No attachment leaves a trace: no link but `lo` and `eth0` on NODE1, no route but the LAN's
/// and the default, no permanent neighbour entry, no record in our stateDir, no host-local
/// allocation, nothing in libcni's cache.
fn assert_nothing_left(lan: &Lan, podman: &NodePodman, when: &str) {
    assert_node_pristine(&lan.node1, when);
    let records: Vec<String> = files_under(Path::new(&podman.dirs.state))
        .into_iter()
        .filter(|f| f != "lock")
        .collect();
    assert!(
        records.is_empty(),
        "{when}: records in stateDir: {records:?}"
    );
    let allocations = host_local_allocations(Path::new(&podman.dirs.host_local));
    assert!(
        allocations.is_empty(),
        "{when}: host-local allocations: {allocations:?}"
    );
    assert!(
        podman.cached_results().is_empty(),
        "{when}: libcni cache: {:?}",
        podman.cached_results()
    );
}

cases!(container_lifecycle {
    chained_conflist_with_shim: (Shape::Chained, "shim"),
    chained_conflist_with_veth: (Shape::Chained, "veth"),
    standalone_conflist_with_shim: (Shape::Standalone, "shim"),
    standalone_conflist_with_veth: (Shape::Standalone, "veth"),
});

/// One container through its whole life on `network`: run, restart, stop, start, stop + rm.
fn container_lifecycle(shape: Shape, host_access: &'static str) {
    let lan = Lan::new();
    let network = Network::new(shape, host_access, 100);
    let podman = NodePodman::new(&lan.node1, &[&network]);

    podman.run("c1", &network.name);
    assert_host_access(&lan, &podman, "c1", "after run");

    podman.podman(["restart", "-t", "0", "c1"]);
    assert_host_access(&lan, &podman, "c1", "after restart");

    podman.podman(["stop", "-t", "0", "c1"]);
    assert_nothing_left(&lan, &podman, "after stop");
    podman.podman(["start", "c1"]);
    assert_host_access(&lan, &podman, "c1", "after stop and start");

    podman.podman(["stop", "-t", "0", "c1"]);
    podman.podman(["rm", "c1"]);
    assert!(podman.containers().is_empty(), "containers after rm");
    assert_nothing_left(&lan, &podman, "after stop and rm");
}

#[test]
fn podman_ten_containers_started_at_once() {
    let lan = Lan::new();
    // Both shapes and both datapaths at once: they share NODE1's eth0, the shim and the lock.
    let networks = [
        Network::new(Shape::Chained, "shim", 100),
        Network::new(Shape::Standalone, "shim", 150),
        Network::new(Shape::Chained, "veth", 200),
        Network::new(Shape::Standalone, "veth", 50),
    ];
    let podman = NodePodman::new(&lan.node1, &networks.iter().collect::<Vec<_>>());
    let containers: Vec<(String, &str)> = (0..10)
        .map(|i| (format!("c{i}"), networks[i % networks.len()].name.as_str()))
        .collect();

    podman.run_at_once(&containers);
    for (name, _) in &containers {
        assert_host_access(&lan, &podman, name, "ten at once");
    }

    podman.podman(["rm", "-af", "-t", "0"]);
    assert!(podman.containers().is_empty(), "containers after rm -af");
    assert_nothing_left(&lan, &podman, "after rm -af");
}
