//! podman with its CNI backend, the way a user runs the plugin: containers on NODE1 of the test
//! LAN, through a chained conflist (reference `macvlan` + `host-local`, then `macvlan-host`) and
//! a standalone one (`macvlan-host` with `ipam`), for both datapaths.
//!
//! podman is fully isolated from any podman state on the machine: its own containers.conf,
//! `--root`/`--runroot`, `tmp_dir`, file locks and event log in a temporary directory, and a
//! private mount namespace in which that directory is bind-mounted over `/var/lib/cni` (libcni's
//! result cache, which podman does not let one configure) and in which podman's `/run/netns/cni-*`
//! mounts stay. Every podman command runs in that mount namespace and in NODE1's network
//! namespace (`nsenter`), so the CNI plugins it runs configure NODE1, never the machine.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output, Stdio};

/// The busybox image, imported from a local rootfs (no registry).
const IMAGE: &str = "localhost/mvh-busybox:latest";
/// Applets the containers use.
const APPLETS: [&str; 4] = ["sh", "ip", "ping", "sleep"];

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

/// The directories podman and the plugins keep state in, all under one `TempDir`.
struct Dirs {
    root: TempDir,
    host_local: String,
    state: String,
    cni_cache: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let root = TempDir::new("podman");
        let sub = |name: &str| {
            let path = root.join(name);
            fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
            path
        };
        let host_local = sub("host-local").to_str().unwrap().to_string();
        let state = sub("state").to_str().unwrap().to_string();
        let cni_cache = sub("cni-cache");
        for name in ["net.d", "tmp", "rootfs/bin"] {
            sub(name);
        }
        Dirs {
            root,
            host_local,
            state,
            cni_cache,
        }
    }
}

/// An isolated podman whose containers live on NODE1. On `Drop` it removes every container
/// (which runs CNI DEL), ends its mount namespace and deletes its directories.
struct Podman {
    /// Keeps the private mount namespace alive; it ends when its stdin closes, also when the
    /// test process dies.
    holder: Child,
    holder_stdin: Option<ChildStdin>,
    node_netns: String,
    dirs: Dirs,
    /// Owns the CNI plugin directory (the reference plugins and ours) podman is configured with.
    _cni_plugins: Plugin,
}

impl Podman {
    /// A podman on `node` that knows `networks`, with the busybox image imported.
    fn new(node: &Netns, networks: &[&Network]) -> Podman {
        let dirs = Dirs::new();
        let plugins = Plugin::ours();
        for network in networks {
            let path = dirs.root.join(format!("net.d/{}.conflist", network.name));
            fs::write(&path, network.conflist(&dirs).to_string()).expect("write conflist");
        }
        let tmp = dirs.root.join("tmp");
        let conf = format!(
            "[network]\n\
             network_backend = \"cni\"\n\
             network_config_dir = \"{net_d}\"\n\
             cni_plugin_dirs = [\"{cni}\"]\n\
             [engine]\n\
             runtime = \"runc\"\n\
             tmp_dir = \"{tmp}\"\n\
             lock_type = \"file\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{tmp}/events.log\"\n\
             image_copy_tmp_dir = \"{tmp}\"\n",
            net_d = dirs.root.join("net.d").display(),
            cni = plugins.cni_path().display(),
            tmp = tmp.display(),
        );
        fs::write(dirs.root.join("containers.conf"), conf).expect("write containers.conf");

        let (holder, holder_stdin) = private_mount_namespace(&dirs.cni_cache);
        let mut podman = Podman {
            holder,
            holder_stdin: Some(holder_stdin),
            node_netns: node.path(),
            dirs,
            _cni_plugins: plugins,
        };
        podman.import_busybox();
        podman
    }

    /// `podman ARGS`, in the private mount namespace and the node's network namespace.
    fn command<S: AsRef<std::ffi::OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        let root = &self.dirs.root;
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--mount=/proc/{}/ns/mnt", self.holder.id()))
            .arg(format!("--net={}", self.node_netns))
            .arg("podman")
            .arg("--root")
            .arg(root.join("storage"))
            .arg("--runroot")
            .arg(root.join("runroot"))
            .args(["--cgroup-manager", "cgroupfs"])
            .args(args)
            .env("CONTAINERS_CONF", root.join("containers.conf"))
            .stdin(Stdio::null());
        cmd
    }

    fn exec_podman<S: AsRef<std::ffi::OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        let mut cmd = self.command(args);
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
    }

    /// Runs podman; panics with its output unless it succeeds; returns stdout, trimmed.
    fn podman<S: AsRef<std::ffi::OsStr>>(&self, args: impl IntoIterator<Item = S>) -> String {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.exec_podman(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success(),
            "podman {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn import_busybox(&mut self) {
        let rootfs = self.dirs.root.join("rootfs");
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox-static");
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                .expect("busybox applet link");
        }
        let tar = self.dirs.root.join("rootfs.tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .expect("run tar");
        assert!(out.status.success(), "tar: {out:?}");
        self.podman([
            "import".as_ref(),
            tar.as_os_str(),
            IMAGE.as_ref(),
            "--quiet".as_ref(),
        ]);
    }

    /// `podman run -d` arguments for a container `name` on `network` that sleeps (long enough
    /// for any test, short enough that a killed run's leftovers end on their own).
    fn run_args(name: &str, network: &Network) -> Vec<String> {
        [
            "run",
            "-d",
            "--name",
            name,
            "--network",
            &network.name,
            "--cap-add",
            "NET_RAW",
            // runc refuses podman's default limits in this sandbox.
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            IMAGE,
            "sleep",
            "600",
        ]
        .map(String::from)
        .to_vec()
    }

    fn run(&self, name: &str, network: &Network) {
        self.podman(Podman::run_args(name, network));
    }

    /// Starts all `containers` with simultaneous `podman run -d`; panics unless all succeed.
    fn run_at_once(&self, containers: &[(String, &Network)]) {
        let children: Vec<(String, Child)> = containers
            .iter()
            .map(|(name, network)| {
                let child = self
                    .command(Podman::run_args(name, network))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn podman run");
                (name.clone(), child)
            })
            .collect();
        for (name, child) in children {
            let out = child.wait_with_output().expect("wait for podman run");
            assert!(
                out.status.success(),
                "podman run {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The container's IPv4 address, as podman recorded it from the CNI result.
    fn ip_of(&self, name: &str) -> String {
        let ip = self.podman([
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            name,
        ]);
        assert!(
            ip.parse::<std::net::Ipv4Addr>().is_ok(),
            "container {name} has no IPv4 address: {ip:?}"
        );
        ip
    }

    /// Whether `addr` answers a ping from inside container `name` (up to 3 attempts).
    fn container_pings(&self, name: &str, addr: &str) -> bool {
        (0..3).any(|_| {
            self.exec_podman(["exec", name, "ping", "-c1", "-W1", addr])
                .status
                .success()
        })
    }

    /// Names of the containers podman knows, running or not.
    fn containers(&self) -> Vec<String> {
        let out = self.podman(["ps", "-a", "--format", "{{.Names}}"]);
        out.lines().map(str::to_string).collect()
    }

    /// Files in libcni's result cache (one per attachment podman has set up).
    fn cached_results(&self) -> Vec<String> {
        files_under(&self.dirs.cni_cache)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.exec_podman(["rm", "-af", "-t", "0"]);
        // Closing its stdin ends the holder, and with it the mount namespace.
        drop(self.holder_stdin.take());
        let _ = self.holder.wait();
        // `self.dirs` (podman's storage, state and caches) is deleted when it drops next.
    }
}

/// Starts a process in a new, private mount namespace in which `cni_cache` is bind-mounted
/// over `/var/lib/cni`. It prints `ready` once the mount is in place and lives until its
/// stdin closes.
fn private_mount_namespace(cni_cache: &std::path::Path) -> (Child, ChildStdin) {
    let script =
        r#"mkdir -p /var/lib/cni && mount --bind "$1" /var/lib/cni && echo ready && read _"#;
    let mut holder = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(cni_cache)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start unshare");
    let mut ready = String::new();
    BufReader::new(holder.stdout.take().expect("piped stdout"))
        .read_line(&mut ready)
        .expect("read from the mount namespace holder");
    assert_eq!(ready.trim(), "ready", "private mount namespace not set up");
    let stdin = holder.stdin.take().expect("piped stdin");
    (holder, stdin)
}

/// Every file below `dir`, as paths relative to it.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(read) = fs::read_dir(&current) else {
            continue;
        };
        for entry in read.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
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
fn assert_nothing_left(lan: &Lan, podman: &Podman, when: &str) {
    assert_node_pristine(&lan.node1, when);
    let records: Vec<String> = files_under(std::path::Path::new(&podman.dirs.state))
        .into_iter()
        .filter(|f| f != "lock")
        .collect();
    assert!(
        records.is_empty(),
        "{when}: records in stateDir: {records:?}"
    );
    let allocations = host_local_allocations(std::path::Path::new(&podman.dirs.host_local));
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
    let podman = Podman::new(&lan.node1, &[&network]);

    podman.run("c1", &network);
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
    let podman = Podman::new(&lan.node1, &networks.iter().collect::<Vec<_>>());
    let containers: Vec<(String, &Network)> = (0..10)
        .map(|i| (format!("c{i}"), &networks[i % networks.len()]))
        .collect();

    podman.run_at_once(&containers);
    for (name, _) in &containers {
        assert_host_access(&lan, &podman, name, "ten at once");
    }

    podman.podman(["rm", "-af", "-t", "0"]);
    assert!(podman.containers().is_empty(), "containers after rm -af");
    assert_nothing_left(&lan, &podman, "after rm -af");
}
