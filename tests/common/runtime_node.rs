//! A "runtime node": a test node (a network namespace the test made) that runs the newer
//! container runtimes — podman 5 + netavark, Docker 26/28, containerd 1.7/2.1 — from a Debian
//! root file system built by `scripts/runtime-root.sh` (../shared/notes/newer-runtimes.md).
//!
//! One holder process per node:
//! `setsid nsenter --net=NODE unshare -m -p --fork --kill-child --propagation private -- sh -c SETUP`,
//! where SETUP, in the new mount namespace, mounts an overlay of the cached root (so what the
//! node writes — /var/lib/cni, /etc — is its own and the cache stays pristine), proc, a fresh sysfs
//! (so `/sys/class/net` shows the node's links), the cgroups (on a hybrid v1 host a tmpfs with a
//! bind of each v1 hierarchy and without `unified`, which crun refuses; a v2 host's as it is), an
//! rbind of /dev, a private /run and /tmp, the project's build output read-only at
//! `/mvh/build` and the test's work directory at its own path, then `pivot_root`s and execs tini
//! as PID 1 of the new PID namespace. Commands enter it with `nsenter -t <PID 1> -m -n -p`
//! (never `ip netns exec`, which remounts /sys and loses the cgroup mounts).
//!
//! Everything a runtime does stays inside: its interfaces, routes, sysctls, bridges and firewall
//! rules are the node namespace's. Killing PID 1 ends every process of the node, and its mount
//! namespace (with the nsfs mounts of the containers' namespaces) goes with it. What cannot stay
//! inside is the cgroup tree (the v1 hierarchies are the machine's): runtimes get
//! `cgroup_parent()`, a name unique to this node, whose directories are removed on `Drop`.

use super::cgroups::{first_child, remove_cgroups, remove_stale_cgroups};
use super::netns::{os_args, output, unique_name, NETNS_DIR};
use super::temp_dir::TempDir;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The suites `scripts/runtime-root.sh` builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    /// podman 5.4, netavark 1.14, docker.io 26.1, containerd 1.7.
    Trixie,
    /// podman 5.8, netavark 1.17, docker.io 28.5, containerd 2.1, CNI reference plugins 1.9.
    Sid,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Trixie => "trixie",
            Suite::Sid => "sid",
        }
    }
}

/// Where the build output (cargo's target directory) is inside a node, read-only.
pub const NODE_TARGET: &str = "/mvh/build";
/// PATH inside a node.
pub const NODE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The root file system of `suite`, built (once per machine, cached) by
/// `scripts/runtime-root.sh`; `Err` with the script's output when it cannot be built (no
/// debootstrap, no archive). Asked once per test binary and suite.
pub fn runtime_root(suite: Suite) -> Result<PathBuf, String> {
    /// Each suite's root, or why it could not be built.
    type Built = Vec<(Suite, Result<PathBuf, String>)>;
    static ROOTS: OnceLock<Mutex<Built>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| Mutex::new(Vec::new()));
    // Held while building: two tests of one binary build once (the script's flock serializes
    // test binaries).
    let mut roots = roots.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, root)) = roots.iter().find(|(s, _)| *s == suite) {
        return root.clone();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/runtime-root.sh");
    let started = Instant::now();
    let root = match Command::new(&script).arg(suite.name()).output() {
        Ok(out) if out.status.success() => {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            eprintln!(
                "runtime root {}: {path} ({:.1} s)",
                suite.name(),
                started.elapsed().as_secs_f64()
            );
            Ok(PathBuf::from(path))
        }
        Ok(out) => Err(format!(
            "{} {} failed ({}):\n{}{}",
            script.display(),
            suite.name(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => Err(format!("cannot run {}: {e}", script.display())),
    };
    roots.push((suite, root.clone()));
    root
}

/// The root of `suite`, or `None` after printing why the calling test skips: the only reason
/// to skip is a root that cannot be built at all.
pub fn runtime_root_or_skip(suite: Suite) -> Option<PathBuf> {
    match runtime_root(suite) {
        Ok(root) => Some(root),
        Err(why) => {
            eprintln!(
                "SKIPPED: the Debian {} root file system cannot be built on this machine: {why}",
                suite.name()
            );
            None
        }
    }
}

/// The target directory cargo built the plugin into (the parent of its profile directory).
fn host_target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_macvlan-host"))
        .parent()
        .and_then(Path::parent)
        .expect("the plugin lives in <target>/<profile>/")
        .to_path_buf()
}

/// A daemon started in a node: the `nsenter` that runs it (which exits when the daemon does),
/// its PID inside the node, and the file its output goes to.
#[derive(Debug)]
pub struct Daemon {
    pub name: String,
    /// The daemon's PID in the node's PID namespace.
    pub pid: u32,
    /// The same process as the machine sees it (signals are sent there).
    pub host_pid: u32,
    pub log: PathBuf,
    child: Child,
}

impl Daemon {
    /// What the daemon printed so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` to the daemon (by its PID; a daemon gone already is no error).
    pub fn signal(&mut self, signal: Signal) {
        if self.running() {
            let _ = kill(Pid::from_raw(self.host_pid as i32), signal);
        }
    }
}

/// A test node running a Debian root: see the module docs. Dropping it ends every process in
/// it and removes its cgroups and work directory.
#[derive(Debug)]
pub struct RuntimeNode {
    suite: Suite,
    netns: String,
    /// `unshare`, the parent of PID 1; it dies with PID 1 (and PID 1 with it: --kill-child).
    holder: Child,
    /// PID 1 of the node (tini), as the machine sees it.
    init_pid: u32,
    work: TempDir,
    /// The overlay's upper and work directories: what the node wrote into its root.
    layer: TempDir,
    cgroup_parent: String,
    daemons: Vec<Daemon>,
}

impl RuntimeNode {
    /// Starts a node on network namespace `netns` (a name under /run/netns, e.g.
    /// `lan.node1.name()`) from `suite`'s root. Panics if the root is missing: call
    /// `runtime_root_or_skip` first to skip when it cannot be built. The node also ends when
    /// the thread that started it ends (PR_SET_PDEATHSIG): keep it on the test's own thread,
    /// not in a static shared by tests.
    pub fn start(suite: Suite, netns: &str) -> RuntimeNode {
        let root = runtime_root(suite).unwrap_or_else(|e| panic!("{e}"));
        remove_stale_cgroups();
        let work = TempDir::new(&format!("node-{}", suite.name()));
        let cgroup_parent = format!("/{}-node", unique_name());
        let layer = TempDir::new(&format!("node-{}-layer", suite.name()));
        let setup = setup_script(&root, layer.path(), &host_target_dir(), work.path());
        let mut holder = Command::new("nsenter");
        // Its own session (no terminal signal reaches the node), and it dies with the test
        // process even when that is killed; PID 1 dies with it (`--kill-child`).
        // SAFETY: setsid and prctl are async-signal-safe.
        unsafe {
            holder.pre_exec(|| {
                libc::setsid();
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut holder = holder
            .arg(format!("--net={NETNS_DIR}/{netns}"))
            .args([
                "unshare",
                "-m",
                "-p",
                "--fork",
                "--kill-child",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-ec",
                &setup,
                "setup",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(work.join("node-setup.log")).expect("create node-setup.log"))
            .spawn()
            .expect("start the node's holder (setsid nsenter unshare)");
        let ready = work.join("node-ready");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            if let Ok(Some(status)) = holder.try_wait() {
                panic!(
                    "the runtime node on {netns} did not start ({status}):\n{}",
                    fs::read_to_string(work.join("node-setup.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the runtime node on {netns} did not start in 20 s"
            );
            thread::sleep(Duration::from_millis(10));
        }
        let init_pid = first_child(holder.id()).expect("the node's PID 1 (unshare's child)");
        let node = RuntimeNode {
            suite,
            netns: netns.to_string(),
            holder,
            init_pid,
            work,
            layer,
            cgroup_parent,
            daemons: Vec::new(),
        };
        // tini replaces the setup shell right after `node-ready`: wait for it to be PID 1.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fs::read_link(format!("/proc/{init_pid}/exe"))
            .is_ok_and(|exe| exe.to_string_lossy().contains("tini"))
        {
            assert!(
                Instant::now() < deadline,
                "tini did not become PID 1 of the node"
            );
            thread::sleep(Duration::from_millis(5));
        }
        node
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The network namespace the node runs in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// PID 1 of the node as the machine sees it (for `nsenter -t`).
    pub fn init_pid(&self) -> u32 {
        self.init_pid
    }

    /// A directory of the test, at the same path on the machine and inside the node.
    pub fn work(&self) -> &TempDir {
        &self.work
    }

    /// A fresh directory under `work()`: the same path on the machine and inside the node.
    /// Anything a test hands to a program in the node (a `stateDir`, a `dataDir`, a conflist)
    /// must live there: the node's /tmp is its own, so a `TempDir::new` path means another,
    /// empty directory inside the node.
    pub fn temp_dir(&self, label: &str) -> TempDir {
        TempDir::new_in(self.work.path(), label)
    }

    /// A cgroup parent unique to this node (`/mvh-<pid>-<n>-node`), for dockerd's
    /// `--cgroup-parent`, podman's `cgroup_parent` and CRI sandboxes: removed on `Drop`.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// Where `host_path` (under cargo's target directory) is inside the node.
    pub fn build_path(&self, host_path: impl AsRef<Path>) -> PathBuf {
        let host_path = host_path.as_ref();
        let rel = host_path
            .strip_prefix(host_target_dir())
            .unwrap_or_else(|_| panic!("{host_path:?} is not under cargo's target directory"));
        Path::new(NODE_TARGET).join(rel)
    }

    /// Path `in_node` (absolute, inside the node) as the machine can read it, through PID 1's
    /// root (`/proc/<pid>/root/...`).
    pub fn host_view(&self, in_node: impl AsRef<Path>) -> PathBuf {
        let rel = in_node
            .as_ref()
            .strip_prefix("/")
            .unwrap_or(in_node.as_ref());
        Path::new(&format!("/proc/{}/root", self.init_pid)).join(rel)
    }

    /// Creates network namespace `name` inside the node (`ip netns add`, under the node's own
    /// /run/netns, gone with the node) with `lo` up; returns its path inside the node, what a
    /// runtime there passes as CNI_NETNS.
    pub fn add_netns(&self, name: &str) -> String {
        self.run(["ip", "netns", "add", name]);
        self.run(["ip", "-n", name, "link", "set", "lo", "up"]);
        format!("/run/netns/{name}")
    }

    /// The plugin under test, as seen inside the node.
    pub fn our_plugin(&self) -> PathBuf {
        self.build_path(env!("CARGO_BIN_EXE_macvlan-host"))
    }

    /// A `Command` running `args` (program first) inside the node, with a clean environment
    /// (`env -i PATH=... HOME=/root`, then `envs`).
    pub fn command_with_env<S: AsRef<OsStr>>(
        &self,
        envs: &[(&str, &str)],
        args: impl IntoIterator<Item = S>,
    ) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.init_pid.to_string())
            .args(["-m", "-n", "-p", "--", "env", "-i"])
            .arg(format!("PATH={NODE_PATH}"))
            .arg("HOME=/root");
        for (k, v) in envs {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.args(os_args(args));
        cmd
    }

    /// A `Command` running `args` inside the node.
    pub fn command<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        self.command_with_env(&[], args)
    }

    /// Runs `args` inside the node to completion; its output, success or not.
    pub fn exec<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        output(&mut self.command(args))
    }

    /// Like `exec`, but panics (with the output) unless it succeeds; returns stdout.
    pub fn run<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> String {
        let args: Vec<OsString> = os_args(args);
        super::netns::expect_success((&self.netns, &args), self.exec(&args))
    }

    /// Starts `args` in the background inside the node, its output in `<work>/<name>.log`;
    /// returns its PID in the node. It is stopped by `stop`, or with the node.
    pub fn spawn_daemon<S: AsRef<OsStr>>(
        &mut self,
        name: &str,
        envs: &[(&str, &str)],
        args: impl IntoIterator<Item = S>,
    ) -> u32 {
        let log = self.work.join(format!("{name}.log"));
        let pid_file = self.work.join(format!("{name}.pid"));
        let _ = fs::remove_file(&pid_file);
        // The shell records its own PID (the node's), then becomes the daemon.
        let mut shell: Vec<OsString> = vec![
            "/bin/sh".into(),
            "-c".into(),
            r#"echo $$ > "$0.new" && mv "$0.new" "$0" && exec "$@""#.into(),
            pid_file.clone().into(),
        ];
        shell.extend(os_args(args));
        let out = File::create(&log).expect("create the daemon's log");
        let err = out.try_clone().expect("the daemon's log for stderr");
        let mut child = self
            .command_with_env(envs, shell)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} in the node: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break pid;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{name} exited at once ({status}):\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "{name} did not start in 10 s");
            thread::sleep(Duration::from_millis(5));
        };
        // `nsenter` forked to enter the PID namespace: the daemon is its child.
        let host_pid = first_child(child.id()).unwrap_or_else(|| {
            panic!(
                "{name}: no process under its nsenter:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            )
        });
        self.daemons.push(Daemon {
            name: name.to_string(),
            pid,
            host_pid,
            log,
            child,
        });
        pid
    }

    /// The daemon started as `name`.
    pub fn daemon(&mut self, name: &str) -> &mut Daemon {
        self.daemons
            .iter_mut()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no daemon {name} in this node"))
    }

    /// Stops daemon `name` by its PID: SIGTERM, up to `grace`, then SIGKILL. Returns its log.
    pub fn stop(&mut self, name: &str, grace: Duration) -> String {
        let index = self
            .daemons
            .iter()
            .position(|d| d.name == name)
            .unwrap_or_else(|| panic!("no daemon {name} in this node"));
        let mut daemon = self.daemons.remove(index);
        daemon.signal(Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while daemon.running() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if daemon.running() {
            eprintln!("{name} ignored SIGTERM for {grace:?}: SIGKILL");
            daemon.signal(Signal::SIGKILL);
            let _ = daemon.child.wait();
        }
        daemon.log_text()
    }

    /// Polls `check` every 50 ms until it holds or `timeout` passes; whether it held.
    pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if check() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RuntimeNode {
    fn drop(&mut self) {
        // PID 1 gone, the kernel kills every process of the PID namespace.
        let _ = kill(Pid::from_raw(self.init_pid as i32), Signal::SIGKILL);
        // unshare reaps PID 1 and exits; kill it only if it does not.
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.holder.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        for daemon in &mut self.daemons {
            let _ = daemon.child.wait();
        }
        remove_cgroups(&self.cgroup_parent);
    }
}

/// The shell run as the first process of the node's new mount and PID namespaces: it builds
/// the node's file system and execs tini (see the module docs). "$@" is empty; paths are
/// passed through the environment-free script text, quoted.
fn setup_script(root: &Path, layer: &Path, target: &Path, work: &Path) -> String {
    let q = |p: &Path| shell_quote(p.to_str().expect("UTF-8 paths"));
    // overlayfs options cannot quote: a root path with `,` or `:` is refused here.
    let root_raw = root.to_str().expect("UTF-8 paths");
    assert!(
        !root_raw.contains([',', ':', '\'', ' ']),
        "the runtime root's path {root_raw:?} cannot be an overlay lower directory"
    );
    let (layer, target, work) = (q(layer), q(target), q(work));
    format!(
        r#"
# The cached root stays pristine: the node writes into an overlay of its own.
L={layer}
mkdir -p "$L/upper" "$L/work" "$L/root"
mount -t overlay overlay -o "lowerdir={root_raw},upperdir=$L/upper,workdir=$L/work" "$L/root"
R="$L/root"
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    mount --rbind /sys/fs/cgroup "$R/sys/fs/cgroup"
else
    # Hybrid v1: the v1 hierarchies without `unified` (crun refuses a hybrid tree).
    mount -t tmpfs -o mode=755 cgroup "$R/sys/fs/cgroup"
    for h in /sys/fs/cgroup/*; do
        name=${{h##*/}}
        [ "$name" = unified ] && continue
        if [ -L "$h" ]; then
            ln -s "$(readlink "$h")" "$R/sys/fs/cgroup/$name"
        elif mountpoint -q "$h"; then
            mkdir -p "$R/sys/fs/cgroup/$name"
            mount --bind "$h" "$R/sys/fs/cgroup/$name"
        fi
    done
fi
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=755 run "$R/run"
mount -t tmpfs -o mode=1777 tmp "$R/tmp"
mount --bind {target} "$R/mvh/build"
mount -o remount,bind,ro "$R/mvh/build"
mkdir -p "$R"{work}
mount --bind {work} "$R"{work}
cd "$R"
pivot_root . mvh/old-root
cd /
umount -l /mvh/old-root
touch {work}/node-ready
exec /usr/bin/tini -s -- /bin/sleep infinity
"#
    )
}

/// `s` in single quotes for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r#"'\''"#))
}

// ---------------------------------------------------------------------------------------------
// The runtimes in a node: dockerd, podman, a busybox image
// ---------------------------------------------------------------------------------------------

/// dockerd's API socket inside a node.
pub const DOCKER_HOST: &str = "unix:///run/docker.sock";
/// Applets of the busybox image (`busybox_image_tar`).
const APPLETS: [&str; 10] = [
    "sh", "ip", "ping", "sleep", "cat", "echo", "ls", "nc", "true", "hostname",
];

impl RuntimeNode {
    /// Starts dockerd in the node (daemon name `dockerd`) and waits until its API answers;
    /// `extra` adds arguments (e.g. `--debug`). It never creates a bridge or a firewall rule,
    /// forwards nothing and runs no proxy; its data and cgroups are the node's own.
    /// Returns how long it took to answer.
    pub fn start_dockerd(&mut self, extra: &[&str]) -> Duration {
        let data_root = self.work.join("docker");
        let cgroup_parent = format!("--cgroup-parent={}/docker", self.cgroup_parent);
        let data_root_arg = format!("--data-root={}", data_root.display());
        let mut args = vec![
            "dockerd",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--userland-proxy=false",
            "--storage-driver=overlay2",
            &data_root_arg,
            "--exec-root=/run/docker",
            "--pidfile=/run/docker.pid",
            "-H",
            DOCKER_HOST,
            &cgroup_parent,
        ];
        args.extend_from_slice(extra);
        let started = Instant::now();
        self.spawn_daemon("dockerd", &[], args);
        let answered = RuntimeNode::wait_until(Duration::from_secs(60), || {
            self.docker(["version", "--format", "{{.Server.Version}}"])
                .status
                .success()
        });
        assert!(
            answered,
            "dockerd did not answer in 60 s:\n{}",
            self.daemon("dockerd").log_text()
        );
        started.elapsed()
    }

    /// `docker ARGS` against the node's dockerd; output, success or not.
    pub fn docker<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        let mut all: Vec<OsString> = vec!["docker".into(), "-H".into(), DOCKER_HOST.into()];
        all.extend(os_args(args));
        self.exec(all)
    }

    /// Stops dockerd (SIGTERM, 20 s grace); returns its log.
    pub fn stop_dockerd(&mut self) -> String {
        self.stop("dockerd", Duration::from_secs(20))
    }

    /// Writes podman's configuration for this node into `<work>/podman/` (containers.conf,
    /// storage.conf; netavark, no firewall, cgroupfs, file events and logs, the node's own
    /// storage) and returns the environment podman needs to use it. `plugin_dirs` become
    /// `netavark_plugin_dirs` (paths inside the node).
    pub fn podman_env(&self, plugin_dirs: &[&str]) -> Vec<(String, String)> {
        let dir = self.work.join("podman");
        fs::create_dir_all(dir.join("networks")).expect("create podman's directories");
        let list = plugin_dirs
            .iter()
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let conf = format!(
            "[containers]\n\
             log_driver = \"k8s-file\"\n\
             [engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{dir}/events.log\"\n\
             tmp_dir = \"/run/libpod\"\n\
             [network]\n\
             network_backend = \"netavark\"\n\
             firewall_driver = \"none\"\n\
             network_config_dir = \"{dir}/networks\"\n\
             netavark_plugin_dirs = [{list}]\n",
            dir = dir.display(),
        );
        fs::write(dir.join("containers.conf"), conf).expect("write containers.conf");
        let storage = format!(
            "[storage]\n\
             driver = \"overlay\"\n\
             graphroot = \"{dir}/storage\"\n\
             runroot = \"/run/containers/storage\"\n",
            dir = dir.display(),
        );
        fs::write(dir.join("storage.conf"), storage).expect("write storage.conf");
        vec![
            (
                "CONTAINERS_CONF".into(),
                dir.join("containers.conf").display().to_string(),
            ),
            (
                "CONTAINERS_STORAGE_CONF".into(),
                dir.join("storage.conf").display().to_string(),
            ),
            ("PODMAN_IGNORE_CGROUPSV1_WARNING".into(), "1".into()),
        ]
    }

    /// Flags every `podman run` / `podman create` in a node needs: the node's cgroup parent
    /// (podman's default, `/libpod_parent`, would be the machine's and outlive the node) and
    /// rlimits runc/crun can set without CAP_SYS_RESOURCE, which this machine's bounding set
    /// lacks.
    pub fn podman_run_flags(&self) -> Vec<String> {
        vec![
            format!("--cgroup-parent={}/podman", self.cgroup_parent),
            "--ulimit=nofile=1024:1024".into(),
            "--ulimit=nproc=1024:1024".into(),
        ]
    }

    /// `podman ARGS` in the node with the environment of `podman_env`; output.
    pub fn podman<S: AsRef<OsStr>>(
        &self,
        env: &[(String, String)],
        args: impl IntoIterator<Item = S>,
    ) -> Output {
        let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut all: Vec<OsString> = vec!["podman".into()];
        all.extend(os_args(args));
        output(&mut self.command_with_env(&envs, all))
    }

    /// A tar of a root holding the node's static busybox and one link per applet, for
    /// `docker import` / `podman import` (no registry); its path, the same in and out of the
    /// node. Made once per node.
    pub fn busybox_image_tar(&self) -> PathBuf {
        let tar = self.work.join("busybox-rootfs.tar");
        if !tar.exists() {
            let dir = self.work.join("busybox-rootfs");
            let script = format!(
                "set -e; mkdir -p {d}/bin; cp /bin/busybox {d}/bin/busybox; \
                 for a in {applets}; do ln -sf busybox {d}/bin/$a; done; \
                 tar -C {d} -cf {t}.new . && mv {t}.new {t}",
                d = shell_quote(dir.to_str().expect("UTF-8")),
                t = shell_quote(tar.to_str().expect("UTF-8")),
                applets = APPLETS.join(" "),
            );
            self.run(["/bin/sh", "-c", &script]);
        }
        tar
    }
}
