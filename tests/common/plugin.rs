//! Running one CNI plugin inside the node namespace: the attachment, the call and its output.

use super::netns::{entries, Netns, Pod};
use super::temp_dir::TempDir;
use super::*;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::Arc;

/// Where Debian's containernetworking-plugins installs the reference plugins.
const REFERENCE_PLUGINS: &str = "/usr/lib/cni";

// ---------------------------------------------------------------------------------------------
// Running CNI plugins
// ---------------------------------------------------------------------------------------------

/// A directory to use as CNI_PATH: symlinks to every reference plugin plus ours, so delegated
/// IPAM (`host-local`) and conflists find their binaries.
pub(super) fn make_cni_path() -> TempDir {
    cni_path_with(Path::new(OUR_PLUGIN))
}

/// A CNI_PATH whose `macvlan-host` is `binary` (another build: the previous release).
fn cni_path_with(binary: &Path) -> TempDir {
    let dir = TempDir::new("cni-path");
    for name in entries(Path::new(REFERENCE_PLUGINS)) {
        symlink(Path::new(REFERENCE_PLUGINS).join(&name), dir.join(&name));
    }
    symlink(binary.to_path_buf(), dir.join(OUR_TYPE));
    dir
}

fn symlink(target: PathBuf, link: PathBuf) {
    std::os::unix::fs::symlink(&target, &link)
        .unwrap_or_else(|e| panic!("symlink {link:?} -> {target:?}: {e}"));
}

/// The runtime's side of one attachment: CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
}

impl Attachment {
    /// `eth0` in `pod`, with the pod's namespace name as container id and no CNI_ARGS.
    pub fn new(pod: &Pod) -> Attachment {
        Attachment {
            container_id: pod.name().to_string(),
            netns: pod.path(),
            ifname: "eth0".to_string(),
            args: String::new(),
        }
    }

    /// For verbs without a container (STATUS, GC): every field empty.
    pub fn none() -> Attachment {
        Attachment {
            container_id: String::new(),
            netns: String::new(),
            ifname: String::new(),
            args: String::new(),
        }
    }

    pub fn with_ifname(mut self, ifname: &str) -> Attachment {
        self.ifname = ifname.to_string();
        self
    }

    pub fn with_args(mut self, args: &str) -> Attachment {
        self.args = args.to_string();
        self
    }

    /// CNI_NETNS as a runtime passes it on a DEL after the namespace is gone: empty.
    pub fn without_netns(mut self) -> Attachment {
        self.netns = String::new();
        self
    }
}

/// What one plugin call produced.
#[derive(Debug)]
pub struct CniOutput {
    pub status: ExitStatus,
    /// stdout parsed as JSON; `Null` when empty, a JSON string when it is not JSON.
    pub stdout: Value,
    pub stderr: String,
}

impl CniOutput {
    fn from_output(out: Output) -> CniOutput {
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        let stdout = if raw.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw).unwrap_or(Value::String(raw))
        };
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        CniOutput {
            status: out.status,
            stdout,
            stderr,
        }
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The result on stdout; panics with stdout and stderr unless the call succeeded.
    pub fn expect_ok(&self) -> &Value {
        assert!(
            self.success(),
            "plugin failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// The CNI error code of a failed call; panics if the call succeeded.
    pub fn expect_error(&self) -> u64 {
        assert!(
            !self.success(),
            "plugin unexpectedly succeeded: {}",
            self.stdout
        );
        self.stdout["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("no error code in {}", self.stdout))
    }
}

/// Runs one CNI plugin binary, always inside the namespace that plays the node.
#[derive(Debug)]
pub struct Plugin {
    /// The plugin's type name: its file name under `cni_path`.
    type_name: String,
    cni_path: Arc<TempDir>,
}

impl Plugin {
    /// The plugin under test.
    pub fn ours() -> Plugin {
        Plugin::by_type(OUR_TYPE)
    }

    /// A plugin by type name: ours (`macvlan-host`) or a reference plugin (`macvlan`, ...).
    pub fn by_type(type_name: &str) -> Plugin {
        Plugin::in_cni_path(type_name, Arc::new(make_cni_path()))
    }

    /// `macvlan-host` as another build of it (`binary`) answers.
    pub fn ours_built_as(binary: &Path) -> Plugin {
        Plugin::in_cni_path(OUR_TYPE, Arc::new(cni_path_with(binary)))
    }

    pub(super) fn in_cni_path(type_name: &str, cni_path: Arc<TempDir>) -> Plugin {
        assert!(
            cni_path.join(type_name).exists(),
            "no CNI plugin of type {type_name}"
        );
        Plugin {
            type_name: type_name.to_string(),
            cni_path,
        }
    }

    /// The CNI_PATH given to the plugin (for configurations that name other plugins).
    pub fn cni_path(&self) -> &Path {
        self.cni_path.path()
    }

    /// Runs `command` (ADD, DEL, CHECK, GC, STATUS, VERSION) in `node` with `config` on stdin.
    pub fn run(&self, node: &Netns, command: &str, at: &Attachment, config: &Value) -> CniOutput {
        let mut cmd = node.command(self.cni_path.join(&self.type_name));
        cmd.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &at.container_id)
            .env("CNI_NETNS", &at.netns)
            .env("CNI_IFNAME", &at.ifname)
            .env("CNI_ARGS", &at.args)
            .env("CNI_PATH", self.cni_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stdin = serde_json::to_vec(config).expect("serialize config");
        // A plugin may exit without reading stdin (e.g. VERSION); a broken pipe is fine then.
        let _ = child.stdin.take().expect("piped stdin").write_all(&stdin);
        CniOutput::from_output(child.wait_with_output().expect("wait for plugin"))
    }

    pub fn add(&self, node: &Netns, at: &Attachment, config: &Value) -> CniOutput {
        self.run(node, "ADD", at, config)
    }

    pub fn del(&self, node: &Netns, at: &Attachment, config: &Value) -> CniOutput {
        self.run(node, "DEL", at, config)
    }

    pub fn check(&self, node: &Netns, at: &Attachment, config: &Value) -> CniOutput {
        self.run(node, "CHECK", at, config)
    }
}
