//! The DaemonSet's image (`make image`: Containerfile + the static binary), run with podman the
//! way the DaemonSet runs it: in the node's network namespace (`--network host` inside NODE1),
//! with only NET_ADMIN and SYS_ADMIN, a read-only root, and the host's CNI bin and conf
//! directories, the state directory and the mounted conflist as volumes. Then a pod on the
//! installed conflist works: podman's CNI backend runs ADD through the binary the image put
//! there, and the node reaches the pod.
//!
//! The static release build is the slow part; `make static` does nothing when it is current
//! (`make test` builds it before the tests run).

mod common;

use common::podman::Podman;
use common::*;
use serde_json::json;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const STATIC_BINARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/x86_64-unknown-linux-gnu/release/macvlan-host"
);
const NETWORK: &str = "mvh-image";
const CONFLIST: &str = "10-macvlan-host.conflist";

/// Runs a command in the source tree; panics with its output unless it succeeds.
fn in_tree(cmd: &mut Command) {
    let out = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The node's directories, as the DaemonSet's hostPath volumes see them.
struct HostDirs {
    _root: TempDir,
    /// The CNI bin directory, holding the reference plugins (as Debian's /usr/lib/cni does).
    bin: PathBuf,
    conf: PathBuf,
    state: PathBuf,
    host_local: PathBuf,
    /// The ConfigMap's mount.
    config: PathBuf,
}

impl HostDirs {
    fn new() -> HostDirs {
        let root = TempDir::new("image");
        let dir = |name: &str| {
            let path = root.join(name);
            fs::create_dir_all(&path).unwrap();
            path
        };
        let dirs = HostDirs {
            bin: dir("opt/cni/bin"),
            conf: dir("etc/cni/net.d"),
            state: dir("run/cni/macvlan-host"),
            host_local: dir("var/lib/cni/networks"),
            config: dir("config"),
            _root: root,
        };
        for plugin in ["macvlan", "host-local", "loopback"] {
            std::os::unix::fs::symlink(
                Path::new("/usr/lib/cni").join(plugin),
                dirs.bin.join(plugin),
            )
            .unwrap();
        }
        // The ConfigMap: the chained conflist, with this test's own state directories.
        let conflist = json!({"cniVersion": "1.0.0", "name": NETWORK, "plugins": [
            {"type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": {
                "type": "host-local", "dataDir": dirs.host_local,
                "ranges": [[{"subnet": SUBNET4, "rangeStart": "10.99.0.100", "rangeEnd": "10.99.0.149"}]]}},
            {"type": OUR_TYPE, "hostAccess": "shim", "stateDir": dirs.state},
        ]});
        fs::write(dirs.config.join(CONFLIST), conflist.to_string()).unwrap();
        dirs
    }
}

/// The podman command line (`nsenter ... podman --root ...`) as one string, for PODMAN=.
fn podman_command_line(podman: &Podman) -> (String, Vec<(OsString, OsString)>) {
    let cmd = podman.command(Vec::<&str>::new());
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    assert!(words.iter().all(|w| !w.contains(' ')), "{words:?}");
    let envs = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    (words.join(" "), envs)
}

#[test]
fn the_image_installs_the_plugin_and_a_pod_then_works() {
    in_tree(Command::new("make").args(["-s", "static"]));
    let lan = Lan::new();
    let host = HostDirs::new();
    let podman = Podman::new(&lan.node1, &host.conf, &host.bin);

    // make image's own script, into this test's podman storage.
    let (podman_line, podman_env) = podman_command_line(&podman);
    let image = format!("localhost/macvlan-host-test-{}:latest", std::process::id());
    in_tree(
        Command::new("scripts/build-image.sh")
            .env("PODMAN", &podman_line)
            .env("IMAGE", &image)
            .envs(podman_env),
    );
    let files = podman.podman(["image", "inspect", "--format", "{{.Size}}", &image]);
    let size: u64 = files.parse().unwrap();
    let binary_size = fs::metadata(STATIC_BINARY).unwrap().len();
    assert!(
        size < binary_size + 64 * 1024,
        "the image holds the binary and nothing else: {size} bytes for a {binary_size}-byte binary"
    );

    // The DaemonSet's container, minus `--watch` (covered by tests/install.rs): it installs and
    // exits 0.
    let volume = |host: &Path, container: &str| format!("{}:{container}", host.display());
    let conflist_in_container = format!("/etc/macvlan-host/{CONFLIST}");
    podman.podman([
        "run",
        "--rm",
        "--network",
        "host",
        "--cap-drop",
        "all",
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "SYS_ADMIN",
        "--read-only",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "-v",
        &volume(&host.bin, "/host/opt/cni/bin"),
        "-v",
        &volume(&host.conf, "/host/etc/cni/net.d"),
        "-v",
        &volume(&host.state, "/run/cni/macvlan-host"),
        "-v",
        &format!("{}:ro", volume(&host.config, "/etc/macvlan-host")),
        &image,
        "install",
        "--bin-dir",
        "/host/opt/cni/bin",
        "--conf-dir",
        "/host/etc/cni/net.d",
        "--conflist",
        &conflist_in_container,
    ]);
    assert_eq!(
        fs::read(host.bin.join(OUR_TYPE)).unwrap(),
        fs::read(STATIC_BINARY).unwrap(),
        "the image's binary landed in the host's CNI bin directory"
    );
    assert_eq!(
        fs::read(host.conf.join(CONFLIST)).unwrap(),
        fs::read(host.config.join(CONFLIST)).unwrap(),
        "the conflist landed in the host's CNI conf directory"
    );

    // A pod on the installed network: ADD through the installed binary; the node reaches it.
    podman.run("pod1", NETWORK);
    let ip = podman.ip_of("pod1");
    assert!(lan.node1.ping(&ip), "NODE1 -> pod ({ip})");
    assert!(
        podman.container_pings("pod1", NODE1_IP4),
        "pod ({ip}) -> NODE1"
    );
    podman.podman(["rm", "-f", "-t", "0", "pod1"]);
    assert_node_pristine(&lan.node1, "after the pod is removed");
}
