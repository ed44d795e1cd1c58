//! An isolated podman with its CNI backend, for tests that run containers on a test node.
//!
//! podman is fully isolated from any podman state on the machine: its own containers.conf,
//! `--root`/`--runroot`, `tmp_dir`, file locks and event log in a temporary directory, and a
//! private mount namespace in which that directory is bind-mounted over `/var/lib/cni` (libcni's
//! result cache, which podman does not let one configure) and in which podman's `/run/netns/cni-*`
//! mounts stay. Every podman command runs in that mount namespace and in the node's network
//! namespace (`nsenter`), so the CNI plugins it runs configure the node, never the machine.

use super::{files_under, Netns, TempDir};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};

/// The busybox image, imported from a local rootfs (no registry).
pub const IMAGE: &str = "localhost/mvh-busybox:latest";
/// Applets the containers use.
const APPLETS: [&str; 4] = ["sh", "ip", "ping", "sleep"];

/// An isolated podman whose containers live on a test node. On `Drop` it removes every
/// container (which runs CNI DEL), ends its mount namespace and deletes its directories.
pub struct Podman {
    /// Keeps the private mount namespace alive; it ends when its stdin closes, also when the
    /// test process dies.
    holder: Child,
    holder_stdin: Option<ChildStdin>,
    node_netns: String,
    /// podman's storage, run root, temporary files, libcni's cache and the busybox rootfs.
    root: TempDir,
}

impl Podman {
    /// A podman on `node` whose CNI backend loads conflists from `net_d` and runs plugins
    /// from `cni_plugin_dir`, with the busybox image imported.
    pub fn new(node: &Netns, net_d: &Path, cni_plugin_dir: &Path) -> Podman {
        let root = TempDir::new("podman");
        for name in ["tmp", "rootfs/bin", "cni-cache"] {
            fs::create_dir_all(root.join(name)).expect("create podman's directories");
        }
        let tmp = root.join("tmp");
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
            net_d = net_d.display(),
            cni = cni_plugin_dir.display(),
            tmp = tmp.display(),
        );
        fs::write(root.join("containers.conf"), conf).expect("write containers.conf");

        let (holder, holder_stdin) = private_mount_namespace(&root.join("cni-cache"));
        let mut podman = Podman {
            holder,
            holder_stdin: Some(holder_stdin),
            node_netns: node.path(),
            root,
        };
        podman.import_busybox();
        podman
    }

    /// `podman ARGS`, in the private mount namespace and the node's network namespace.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        let root = &self.root;
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

    pub fn exec_podman<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: impl IntoIterator<Item = S>,
    ) -> Output {
        let mut cmd = self.command(args);
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
    }

    /// Runs podman; panics with its output unless it succeeds; returns stdout, trimmed.
    pub fn podman<S: AsRef<std::ffi::OsStr>>(&self, args: impl IntoIterator<Item = S>) -> String {
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
        let rootfs = self.root.join("rootfs");
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox-static");
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                .expect("busybox applet link");
        }
        let tar = self.root.join("rootfs.tar");
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
    pub fn run_args(name: &str, network: &str) -> Vec<String> {
        [
            "run",
            "-d",
            "--name",
            name,
            "--network",
            network,
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

    pub fn run(&self, name: &str, network: &str) {
        self.podman(Podman::run_args(name, network));
    }

    /// Starts all `containers` with simultaneous `podman run -d`; panics unless all succeed.
    pub fn run_at_once(&self, containers: &[(String, &str)]) {
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
    pub fn ip_of(&self, name: &str) -> String {
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
    pub fn container_pings(&self, name: &str, addr: &str) -> bool {
        (0..3).any(|_| {
            self.exec_podman(["exec", name, "ping", "-c1", "-W1", addr])
                .status
                .success()
        })
    }

    /// Names of the containers podman knows, running or not.
    pub fn containers(&self) -> Vec<String> {
        let out = self.podman(["ps", "-a", "--format", "{{.Names}}"]);
        out.lines().map(str::to_string).collect()
    }

    /// Files in libcni's result cache (one per attachment podman has set up).
    pub fn cached_results(&self) -> Vec<String> {
        files_under(&self.root.join("cni-cache"))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.exec_podman(["rm", "-af", "-t", "0"]);
        // Closing its stdin ends the holder, and with it the mount namespace.
        drop(self.holder_stdin.take());
        let _ = self.holder.wait();
        // `self.root` (podman's storage, state and caches) is deleted when it drops next.
    }
}

/// Starts a process in a new, private mount namespace in which `cni_cache` is bind-mounted
/// over `/var/lib/cni`. It prints `ready` once the mount is in place and lives until its
/// stdin closes.
fn private_mount_namespace(cni_cache: &Path) -> (Child, ChildStdin) {
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
