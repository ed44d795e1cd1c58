//! The DaemonSet's image (`make image`: Containerfile + the static binary), run with podman the
//! way the DaemonSet runs it: in the node's network namespace (`--network host` inside NODE1),
//! with only NET_ADMIN and SYS_ADMIN, a read-only root, and the host's CNI bin and conf
//! directories, the state directory and the mounted conflist as volumes. Then a pod on the
//! installed conflist works: podman's CNI backend runs ADD through the binary the image put
//! there, and the node reaches the pod. Then the DaemonSet's `install --watch` runs in the
//! same kind of container and re-creates the pod's shim after it is deleted, hardened (its
//! sysctls written through the host's /proc/sys/net, since the container's /proc/sys is
//! read-only: without that mount a re-created shim stays unhardened, which the test shows).
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
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

/// Where the DaemonSet mounts the host's /proc/sys/net, and says so to the binary.
const SYSCTL_ROOT: &str = "/host/proc/sys";
/// The shim's hardening, as the node must read it (`net/<family>/conf/<shim>/<key>`).
const HARDENED: [(&str, &str, &str); 6] = [
    ("ipv4", "arp_ignore", "8"),
    ("ipv4", "arp_filter", "1"),
    ("ipv4", "arp_announce", "2"),
    ("ipv6", "accept_ra", "0"),
    ("ipv6", "autoconf", "0"),
    ("ipv6", "addr_gen_mode", "1"),
];

/// `podman run` options of the DaemonSet's container (deploy/daemonset.yaml): the node's
/// network, NET_ADMIN and SYS_ADMIN only, a read-only root (and so, as in any non-privileged
/// container, a read-only /proc/sys), the hostPath volumes; with `sysctl_mount`, also the
/// host's /proc/sys/net and MACVLAN_HOST_SYSCTL_ROOT.
fn daemonset_container(host: &HostDirs, sysctl_mount: bool) -> Vec<String> {
    let volume = |host: &Path, container: &str| format!("{}:{container}", host.display());
    let mut options: Vec<String> = [
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
    ]
    .map(String::from)
    .to_vec();
    for mount in [
        volume(&host.bin, "/host/opt/cni/bin"),
        volume(&host.conf, "/host/etc/cni/net.d"),
        volume(&host.state, "/run/cni/macvlan-host"),
        format!("{}:ro", volume(&host.config, "/etc/macvlan-host")),
        // The pods' namespaces (podman's /run/netns/netns-*, in its mount namespace).
        "/run/netns:/run/netns:ro".to_string(),
    ] {
        options.extend(["-v".to_string(), mount]);
    }
    if sysctl_mount {
        options.extend([
            "-v".to_string(),
            format!("/proc/sys/net:{SYSCTL_ROOT}/net"),
            "--env".to_string(),
            format!("MACVLAN_HOST_SYSCTL_ROOT={SYSCTL_ROOT}"),
        ]);
    }
    options
}

/// The DaemonSet's arguments: install, then (with `watch`) reconcile --watch.
fn daemonset_args(watch: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "install",
        "--bin-dir",
        "/host/opt/cni/bin",
        "--conf-dir",
        "/host/etc/cni/net.d",
        "--conflist",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("/etc/macvlan-host/{CONFLIST}"));
    if watch {
        args.extend(
            [
                "--watch",
                "--state-dir",
                "/run/cni/macvlan-host",
                "--metrics-address",
                "0.0.0.0:9447",
            ]
            .map(String::from),
        );
    }
    args
}

/// The shim's hardening sysctls and its IPv6 addresses, as the node sees them; None while
/// there is no shim.
fn shim_state(node: &Netns) -> Option<(Vec<String>, String)> {
    if !node.has_link(SHIM) {
        return None;
    }
    let values = HARDENED
        .iter()
        .map(|(family, key, _)| {
            let file = format!("/proc/sys/net/{family}/conf/{SHIM}/{key}");
            let out = node.exec(["cat", &file]);
            format!("{key}={}", String::from_utf8_lossy(&out.stdout).trim())
        })
        .collect();
    let addresses = node.ip(["-6", "addr", "show", "dev", SHIM]);
    Some((values, addresses))
}

fn hardened() -> Vec<String> {
    HARDENED
        .iter()
        .map(|(_, key, value)| format!("{key}={value}"))
        .collect()
}

/// Waits (10 s at most) for the shim to exist, hardened and without a link-local address.
fn wait_for_hardened_shim(node: &Netns, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = shim_state(node);
        if let Some((values, addresses)) = &state {
            if *values == hardened() && !addresses.contains("fe80") {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: shim not back hardened: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
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

    // The DaemonSet's container, minus `--watch`: it installs and exits 0.
    let mut run = vec!["run".to_string(), "--rm".to_string()];
    run.extend(daemonset_container(&host, true));
    run.push(image.clone());
    run.extend(daemonset_args(false));
    podman.podman(&run);
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
    wait_for_hardened_shim(&lan.node1, "after ADD");

    the_watcher_restores_a_deleted_shim(&lan, &host, &podman, &image, &ip);

    podman.podman(["rm", "-f", "-t", "0", "pod1"]);
    assert_node_pristine(&lan.node1, "after the pod is removed");
}

/// The shim of a live pod deleted: without the host's /proc/sys/net, reconcile in the
/// container cannot harden the shim it re-creates; the DaemonSet's `install --watch`, with
/// that mount, re-creates it hardened, and node <-> pod works again.
fn the_watcher_restores_a_deleted_shim(
    lan: &Lan,
    host: &HostDirs,
    podman: &Podman,
    image: &str,
    pod_ip: &str,
) {
    // Without the mount: the container's /proc/sys is read-only.
    lan.node1.ip(["link", "del", SHIM]);
    let mut run = vec!["run".to_string(), "--rm".to_string()];
    run.extend(daemonset_container(host, false));
    run.extend([image, "reconcile", "--state-dir", "/run/cni/macvlan-host"].map(String::from));
    let out = podman.exec_podman(&run);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("Read-only file system"), "{said}");
    assert!(said.contains("MACVLAN_HOST_SYSCTL_ROOT"), "{said}");
    let (values, _) = shim_state(&lan.node1).expect("reconcile re-created the shim");
    assert_ne!(values, hardened(), "hardened without a writable /proc/sys");

    // The DaemonSet's container: it repairs the half-made shim on start, then a shim deleted
    // while it runs.
    let mut run = vec!["run".to_string(), "-d".to_string()];
    run.extend(["--name", "agent"].map(String::from));
    run.extend(daemonset_container(host, true));
    run.push(image.to_string());
    run.extend(daemonset_args(true));
    podman.podman(&run);
    wait_for_hardened_shim(&lan.node1, "the watcher's first pass");
    lan.node1.ip(["link", "del", SHIM]);
    wait_for_hardened_shim(&lan.node1, "after the shim was deleted");
    assert!(
        lan.node1.ping(pod_ip),
        "NODE1 -> pod ({pod_ip}) after repair"
    );
    assert!(
        podman.container_pings("pod1", NODE1_IP4),
        "pod ({pod_ip}) -> NODE1 after repair"
    );
    // The kubelet's probes, at the node's address (hostNetwork), and a scrape that saw the
    // repair.
    let probe = |path: &str| {
        http_get(
            &lan.node1,
            &format!("{NODE1_IP4}:9447"),
            path,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|| panic!("no answer to GET {path}"))
    };
    assert_eq!(probe("/healthz").0, 200);
    assert_eq!(probe("/readyz").0, 200);
    let (_, metrics) = probe("/metrics");
    assert!(
        metrics.lines().any(|l| l
            .starts_with("macvlan_host_repairs_total{object=\"host_device\",cause=\"event\"} ")
            && !l.ends_with(" 0")),
        "{metrics}"
    );

    // As the kubelet stops it: SIGTERM to its PID 1, which ends with 0.
    podman.podman(["stop", "-t", "5", "agent"]);
    let status = podman.podman(["inspect", "--format", "{{.State.ExitCode}}", "agent"]);
    let logs = podman.exec_podman(["logs", "agent"]);
    assert_eq!(
        status,
        "0",
        "the watcher's exit status; logs:\n{}",
        text(&logs)
    );
    podman.podman(["rm", "agent"]);
}
