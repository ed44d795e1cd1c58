//! An isolated containerd with its CRI plugin on a node of the test LAN, and
//! `tests/cri-driver`, the CRI client the tests drive it with. See
//! `../shared/notes/containerd-cri.md` for why each piece is there.
//!
//! Two places it runs:
//! - the machine's own (Debian bookworm's 1.6), in the node's network namespace, in a private
//!   mount namespace (a tmpfs on `/run`, where 1.6 hard-codes its shim sockets; the run's
//!   directory bound on `/var/lib`, where libcni keeps its result cache) and in a private PID
//!   namespace whose first process is a shell that waits on a pipe from the test. Killing that
//!   process by its PID ends containerd, its shims and every container at once; so does the test
//!   process dying, which closes the pipe.
//! - a newer one (Debian sid's 2.1) from a Debian root in a runtime node
//!   (`common::runtime_node`), with a version 3 configuration, the root's CNI 1.1 reference
//!   plugins and ctr. The node's private /run and root overlay play the part of the tmpfs and
//!   the bind above; dropping the node ends it all.
//!
//! Either way containerd's directory (configuration, socket, state, images) has the same path
//! on the machine and in the node, so the CRI driver runs on the machine.

use crate::common::runtime_node::{RuntimeNode, Suite};
use crate::common::*;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The one image: pause image and container image at once, imported from a local layout.
pub const IMAGE: &str = "localhost/mvh-busybox:latest";
/// busybox applets the containers use.
const APPLETS: [&str; 5] = ["sh", "sleep", "nc", "ping", "ip"];
/// The file containerd's CRI loads the pods' network from (it loads only the first one).
const CONFLIST: &str = "10-mvh.conflist";
/// How long one CRI call may take before the test gives up on it.
const CALL_TIMEOUT: &str = "60";

/// Builds the CRI driver once per test binary (cargo, into `target/cri-driver`, so the
/// dependencies are compiled only the first time) and returns its path.
pub fn driver() -> &'static Path {
    static DRIVER: OnceLock<PathBuf> = OnceLock::new();
    DRIVER.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cri-driver");
        // CARGO_TARGET_TMPDIR is `<target>/tmp`: the driver goes next to it.
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("target directory")
            .join("cri-driver");
        let out = Command::new(env!("CARGO"))
            .arg("build")
            .args(["--quiet", "--locked"])
            .arg("--manifest-path")
            .arg(source.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "building tests/cri-driver failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("debug/cri-driver")
    })
}

/// Where a containerd runs, and what ends it.
enum Place {
    /// The machine's containerd in private mount and PID namespaces.
    Machine {
        /// `unshare`, which waits for the PID namespace's first process.
        holder: Child,
        /// The pipe that first process waits on.
        holder_stdin: Option<ChildStdin>,
        /// The PID namespace's first process, as the machine sees it.
        first_pid: i32,
        /// The CNI plugins' directory (reference plugins, `loopback` included, and ours).
        _plugins: Plugin,
        /// containerd's directory.
        _dir: TempDir,
    },
    /// A Debian root's containerd in a runtime node; its directory is in the node's work
    /// directory.
    Node(RuntimeNode),
}

/// A running containerd whose CRI attaches pods through the conflist in its `conf_dir`.
/// `Drop` kills it (by PID), removes its cgroups and deletes its directory.
pub struct Containerd {
    place: Place,
    /// containerd's directory, the same path on the machine and in a runtime node.
    dir: PathBuf,
    /// Per-run cgroup parent of every pod.
    cgroup_parent: String,
}

impl Containerd {
    /// Starts the machine's containerd in `node`'s network namespace with the busybox image
    /// imported.
    pub fn start(node: &Netns) -> Containerd {
        remove_stale_cgroups();
        let dir = TempDir::new("containerd");
        for sub in ["var-lib", "net.d", "root", "state", "opt", "logs"] {
            fs::create_dir_all(dir.join(sub)).expect("create containerd directories");
        }
        let plugins = Plugin::ours();
        let config = config(dir.path(), plugins.cni_path());
        fs::write(dir.join("config.toml"), config).expect("config");
        let cgroup_parent = format!("/{}", dir.path().file_name().unwrap().to_string_lossy());
        let (holder, holder_stdin) = spawn_holder(node, &dir);
        let containerd = Containerd {
            dir: dir.path().to_path_buf(),
            place: Place::Machine {
                first_pid: first_child_soon(holder.id()),
                holder,
                holder_stdin: Some(holder_stdin),
                _plugins: plugins,
                _dir: dir,
            },
            cgroup_parent,
        };
        containerd.wait_until_ready();
        containerd.import_image();
        containerd
    }

    /// Starts the containerd of `suite`'s Debian root in a runtime node on `node`'s network
    /// namespace, with the busybox image imported. Its CNI plugins are the root's reference
    /// plugins (`/usr/lib/cni`) and ours.
    pub fn start_in_node(suite: Suite, node: &Netns) -> Containerd {
        let mut runtime = RuntimeNode::start(suite, node.name());
        let dir = runtime.work().join("containerd");
        for sub in ["net.d", "root", "state", "opt", "logs", "cni-bin"] {
            fs::create_dir_all(dir.join(sub)).expect("create containerd directories");
        }
        let cni_bin = dir.join("cni-bin");
        std::os::unix::fs::symlink(runtime.our_plugin(), cni_bin.join(OUR_TYPE))
            .expect("link our plugin into the CNI directory");
        let config = match suite {
            // containerd 2: configuration version 3, the root's reference plugins 1.9.
            Suite::Sid => config_v3(&dir),
            // containerd 1.7: version 2 and one bin_dir; trixie's root has no reference
            // plugins, so the machine's (Debian bookworm's 1.1.1) are copied in.
            Suite::Trixie => {
                for plugin in ["macvlan", "host-local", "loopback"] {
                    fs::copy(Path::new("/usr/lib/cni").join(plugin), cni_bin.join(plugin))
                        .expect("copy the machine's reference plugins");
                }
                config(&dir, &cni_bin)
            }
        };
        fs::write(dir.join("config.toml"), config).expect("config");
        let cgroup_parent = format!("{}/containerd", runtime.cgroup_parent());
        let config = dir.join("config.toml");
        runtime.spawn_daemon(
            "containerd",
            &[],
            [
                OsStr::new("containerd"),
                "--config".as_ref(),
                config.as_os_str(),
            ],
        );
        let containerd = Containerd {
            dir,
            place: Place::Node(runtime),
            cgroup_parent,
        };
        containerd.wait_until_ready();
        containerd.import_image();
        containerd
    }

    /// A fresh directory that containerd and the plugins it runs see at the same path as the
    /// test (in a runtime node, /tmp is the node's own).
    pub fn temp_dir(&self, label: &str) -> TempDir {
        match &self.place {
            Place::Machine { .. } => TempDir::new(label),
            Place::Node(node) => node.temp_dir(label),
        }
    }

    /// `containerd --version` of this containerd.
    pub fn version(&self) -> String {
        let out = match &self.place {
            Place::Node(node) => node.exec(["containerd", "--version"]),
            Place::Machine { .. } => Command::new("containerd")
                .arg("--version")
                .output()
                .expect("run containerd --version"),
        };
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// The cgroup parent to give pods, below which runc creates their cgroups.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// The directory for pods' logs.
    pub fn log_directory(&self, pod: &str) -> String {
        self.dir.join("logs").join(pod).display().to_string()
    }

    /// Files in libcni's result cache (`/var/lib/cni` inside containerd's mount namespace).
    pub fn cni_cache_dir(&self) -> PathBuf {
        match &self.place {
            Place::Machine { .. } => self.dir.join("var-lib/cni"),
            Place::Node(node) => node.host_view("/var/lib/cni"),
        }
    }

    /// One CRI call through the driver; the output whether it succeeded or not.
    pub fn try_cri(&self, verb: &str, request: &Value) -> Output {
        let mut child = Command::new("timeout")
            .arg(CALL_TIMEOUT)
            .arg(driver())
            .arg(self.socket())
            .arg(verb)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the CRI driver");
        let stdin = child.stdin.take().expect("piped stdin");
        serde_json::to_writer(stdin, request).expect("write the CRI request");
        child.wait_with_output().expect("wait for the CRI driver")
    }

    /// One CRI call; panics with the error and containerd's last log lines unless it succeeds.
    pub fn cri(&self, verb: &str, request: Value) -> Value {
        let out = self.try_cri(verb, &request);
        assert!(
            out.status.success(),
            "CRI {verb} {request} failed: {}\ncontainerd's log ends with:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        serde_json::from_slice(&out.stdout).expect("the CRI driver prints JSON")
    }

    /// Makes `conflist` the network of the next pods, and waits until containerd has loaded it
    /// (it watches `conf_dir`; its verbose status shows the configuration it uses).
    pub fn use_conflist(&self, conflist: &Value) {
        let name = conflist["name"].as_str().expect("the conflist has a name");
        // Written in place, not renamed in: containerd 1.6 does not reload on a rename into
        // conf_dir. One small write; a half-read file would fail to load and the next event
        // reloads it, and the wait below accepts only the whole list (its name).
        let path = self.dir.join("net.d").join(CONFLIST);
        fs::write(path, conflist.to_string()).expect("write conflist");
        let mut status = Value::Null;
        let loaded = || {
            status = self.cri("status", json!({}));
            let networks = &status["info"]["cniconfig"]["Networks"];
            let names: Vec<&str> = networks
                .as_array()
                .map(|n| {
                    n.iter()
                        .filter_map(|n| n["Config"]["Name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            status["networkReady"] == json!(true) && names.contains(&name)
        };
        assert!(
            eventually(Duration::from_secs(10), loaded),
            "containerd did not load conflist {name}; its status: {status}\nits log:\n{}",
            self.log_tail()
        );
    }

    fn wait_until_ready(&self) {
        let ready = || {
            let out = self.try_cri("status", &json!({}));
            out.status.success()
                && serde_json::from_slice::<Value>(&out.stdout)
                    .is_ok_and(|s| s["runtimeReady"] == json!(true))
        };
        assert!(
            eventually(Duration::from_secs(20), ready),
            "containerd's CRI is not ready; its log ends with:\n{}\n{}",
            self.log_tail(),
            fs::read_to_string(self.dir.join("unshare.log")).unwrap_or_default()
        );
    }

    /// `ctr images import` of the hand-written OCI layout, in the CRI's `k8s.io` namespace,
    /// with the ctr of containerd's own version.
    fn import_image(&self) {
        let tar = write_image(&self.dir.join("image"));
        let socket = self.socket();
        let args: [&OsStr; 7] = [
            "-a".as_ref(),
            socket.as_os_str(),
            "-n".as_ref(),
            "k8s.io".as_ref(),
            "images".as_ref(),
            "import".as_ref(),
            tar.as_os_str(),
        ];
        let out = match &self.place {
            Place::Node(node) => node.exec(std::iter::once(OsStr::new("ctr")).chain(args)),
            Place::Machine { .. } => Command::new("ctr").args(args).output().expect("run ctr"),
        };
        assert!(
            out.status.success(),
            "ctr images import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// containerd's warnings and errors, for failure messages.
    pub fn log_tail(&self) -> String {
        let path = match &self.place {
            Place::Machine { .. } => self.dir.join("containerd.log"),
            Place::Node(node) => node.work().join("containerd.log"),
        };
        let log = fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| !l.contains("level=info") && !l.contains("level=debug"))
            .collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // A runtime node ends everything in it, its cgroups included, when it drops next.
        if let Place::Machine {
            holder,
            holder_stdin,
            first_pid,
            ..
        } = &mut self.place
        {
            // SIGKILL: the PID namespace's first process ignores what it has no handler for.
            let _ = Command::new("kill")
                .args(["-KILL", &first_pid.to_string()])
                .status();
            drop(holder_stdin.take());
            // `unshare` returns once every process of the namespace is gone.
            let _ = holder.wait();
            remove_cgroups(&self.cgroup_parent);
            // The directory (images, snapshots, state, libcni's cache) is deleted when it
            // drops next.
        }
    }
}

/// containerd's `config.toml`: everything private to `dir`, the CRI plugin set up for this
/// machine (no AppArmor, no lowering of `oom_score_adj`, runc with cgroupfs).
fn config(dir: &Path, cni_bin: &Path) -> String {
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    let d = |sub: &str| dir.join(sub).display().to_string();
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "{socket}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[{cri}]
  sandbox_image = "{IMAGE}"
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [{cri}.cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{net_d}"
  [{cri}.containerd]
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{runc}"
        SystemdCgroup = false
"#,
        root = d("root"),
        state = d("state"),
        socket = d("containerd.sock"),
        opt = d("opt"),
        cni_bin = cni_bin.display(),
        net_d = d("net.d"),
        runc = d("state/runc"),
    )
}

/// containerd 2's `config.toml` (version 3, where the CRI plugin is split into `cri.v1.images`
/// and `cri.v1.runtime`): the same choices as `config`, paths inside the runtime node.
fn config_v3(dir: &Path) -> String {
    let images = "plugins.'io.containerd.cri.v1.images'";
    let runtime = "plugins.'io.containerd.cri.v1.runtime'";
    let d = |sub: &str| dir.join(sub).display().to_string();
    format!(
        r#"version = 3
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
  "io.containerd.nri.v1.nri",
]
[grpc]
  address = "{socket}"
[plugins.'io.containerd.internal.v1.opt']
  path = "{opt}"
[{images}.pinned_images]
  sandbox = "{IMAGE}"
[{runtime}]
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [{runtime}.cni]
    bin_dirs = ["{cni_bin}", "/usr/lib/cni"]
    conf_dir = "{net_d}"
  [{runtime}.containerd]
    default_runtime_name = "runc"
    [{runtime}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{runtime}.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{runc}"
        SystemdCgroup = false
"#,
        root = d("root"),
        state = d("state"),
        socket = d("containerd.sock"),
        opt = d("opt"),
        cni_bin = d("cni-bin"),
        net_d = d("net.d"),
        runc = d("state/runc"),
    )
}

/// Starts the PID namespace in `node`: its first process mounts the private `/run` and
/// `/var/lib`, starts containerd and waits until its stdin closes.
fn spawn_holder(node: &Netns, dir: &TempDir) -> (Child, ChildStdin) {
    let script = r#"set -e
mount -t tmpfs tmpfs /run
mount --bind "$1/var-lib" /var/lib
containerd --config "$1/config.toml" >"$1/containerd.log" 2>&1 </dev/null &
read _ || true"#;
    let mut holder = node
        .command("unshare")
        .args(["--mount", "--propagation", "private"])
        .args(["--pid", "--fork", "--kill-child", "--mount-proc"])
        .args(["sh", "-c", script, "sh"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("unshare.log")).expect("create unshare.log"))
        .spawn()
        .expect("start unshare");
    let stdin = holder.stdin.take().expect("piped stdin");
    (holder, stdin)
}

/// The first child of process `pid` (here: the PID namespace's first process), as soon as it
/// exists.
fn first_child_soon(pid: u32) -> i32 {
    let mut found = None;
    let exists = || {
        found = first_child(pid);
        found.is_some()
    };
    assert!(
        eventually(Duration::from_secs(5), exists),
        "unshare started no process"
    );
    found.unwrap() as i32
}

/// Polls `check` every 100 ms until it holds or `limit` has passed.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// The image: an OCI layout written by hand (no registry)
// ---------------------------------------------------------------------------------------------

/// Writes an OCI image layout of busybox under `dir` and returns it as a tar for
/// `ctr images import`. Its entrypoint sleeps, which is all a pause container does.
fn write_image(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    let blobs = dir.join("layout/blobs/sha256");
    fs::create_dir_all(rootfs.join("bin")).expect("create rootfs");
    fs::create_dir_all(&blobs).expect("create blobs");
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox-static");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("applet");
    }
    let layer = dir.join("layer.tar");
    tar(&rootfs, &layer);
    let layer = blob(&blobs, &fs::read(&layer).expect("read layer"));

    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Entrypoint": ["/bin/sleep", "1000000"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.0]},
    });
    let config = blob(&blobs, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.0, "size": config.1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer.0, "size": layer.1}],
    });
    let manifest = blob(&blobs, manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest.0,
            "size": manifest.1,
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {"io.containerd.image.name": IMAGE},
        }],
    });
    let layout = dir.join("layout");
    fs::write(layout.join("index.json"), index.to_string()).expect("index.json");
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("layout");
    let image = dir.join("image.tar");
    tar(&layout, &image);
    image
}

/// Stores `content` as a blob named by its digest; returns (`sha256:<hex>`, size).
fn blob(blobs: &Path, content: &[u8]) -> (String, usize) {
    let staged = blobs.join("staged");
    fs::write(&staged, content).expect("write blob");
    let out = Command::new("sha256sum")
        .arg(&staged)
        .output()
        .expect("sha256sum");
    let hex = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string();
    fs::rename(&staged, blobs.join(&hex)).expect("name blob");
    (format!("sha256:{hex}"), content.len())
}

fn tar(dir: &Path, archive: &Path) {
    let out = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(archive)
        .arg(".")
        .output()
        .expect("run tar");
    assert!(out.status.success(), "tar {dir:?}: {out:?}");
}
