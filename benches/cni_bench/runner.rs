//! Running plugins the way a runtime does, timed from spawn to reap: Ctrl-C handling, the
//! tmpfs state directories, the plugin runner, and the measured ADD + DEL cycles.

use crate::common::*;
use crate::configs::*;
use nix::libc;
use nix::sched::{setns, CloneFlags};
use serde_json::{json, Value};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Ctrl-C
// ---------------------------------------------------------------------------------------------

pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT/SIGTERM only set a flag: the driver unwinds at the next call, so every guard (`Lan`,
/// `TempDir`, `ShmDir`) removes what it made.
pub(crate) fn catch_interrupts() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

pub(crate) fn stop_if_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        panic!("interrupted: removing the benchmark's namespaces and directories");
    }
}

// ---------------------------------------------------------------------------------------------
// A directory on tmpfs, like /run where stateDir lives by default
// ---------------------------------------------------------------------------------------------

pub(crate) const SHM: &str = "/dev/shm";
pub(crate) const SHM_PREFIX: &str = "mvhbench";

/// `/dev/shm/mvhbench-<pid>-<label>`, removed on drop. The plugin's default stateDir is under
/// /run, a tmpfs on every systemd machine; /tmp here may be a disk.
pub(crate) struct ShmDir {
    pub(crate) path: PathBuf,
}

impl ShmDir {
    pub(crate) fn new(label: &str) -> ShmDir {
        let path = Path::new(SHM).join(format!("{SHM_PREFIX}-{}-{label}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
        ShmDir { path }
    }

    pub(crate) fn str(&self) -> &str {
        self.path.to_str().expect("UTF-8 path")
    }

    /// Removes what benchmark processes that no longer run left in /dev/shm.
    pub(crate) fn remove_stale() {
        let Ok(read) = fs::read_dir(SHM) else { return };
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix(&format!("{SHM_PREFIX}-"))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------------------------
// Running plugins
// ---------------------------------------------------------------------------------------------

/// What one plugin call cost and produced.
pub(crate) struct Call {
    pub(crate) wall: Duration,
    /// User + system time of the plugin and of the children it waited for (IPAM).
    pub(crate) cpu: Duration,
    /// Peak RSS of the plugin or of its largest reaped child, in bytes.
    pub(crate) max_rss: u64,
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Value,
    pub(crate) stderr: String,
}

impl Call {
    pub(crate) fn expect_ok(self, what: &str) -> Call {
        // Ctrl-C reaches the plugins too: report the interruption, not their failure.
        stop_if_interrupted();
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A started plugin process.
pub(crate) struct Pending {
    pub(crate) child: Child,
    pub(crate) started: Instant,
}

/// CNI_PATH with every reference plugin, ours, and a tiny IPAM stand-in for the footprint row.
pub(crate) struct Runner {
    pub(crate) cni_path: TempDir,
    /// The driver's own namespace, restored on drop.
    pub(crate) origin: File,
}

pub(crate) const FAKE_IPAM: &str = "bench-fake-ipam";

/// The floor program (benches/kernel_floor.rs), installed in the CNI path under this type.
pub(crate) const FLOOR: &str = "bench-kernel-floor";

/// The floor program: `BENCH_FLOOR_BINARY` (scripts/bench.sh builds it statically, like the
/// plugin), else the newest `kernel_floor-*` that cargo built next to this driver.
pub(crate) fn floor_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BENCH_FLOOR_BINARY").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let deps = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .expect("the driver's directory");
    fs::read_dir(&deps)
        .expect("read the driver's directory")
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("kernel_floor-") && !name.contains('.')
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .expect("benches/kernel_floor.rs is not built: run `cargo bench --bench kernel_floor --no-run` or set BENCH_FLOOR_BINARY")
}

/// The binary whose calls are timed: the static build when `bench.sh` made one (it is what the
/// README tells users to install), else the release build cargo made for this driver.
pub(crate) fn measured_binary() -> PathBuf {
    std::env::var_os("BENCH_STATIC_BINARY")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(OUR_PLUGIN))
}

impl Runner {
    pub(crate) fn new() -> Runner {
        let cni_path = TempDir::new("bench-cni-path");
        for entry in fs::read_dir("/usr/lib/cni").expect("reference plugins in /usr/lib/cni") {
            let entry = entry.expect("read /usr/lib/cni");
            symlink(&entry.path(), &cni_path.join(entry.file_name()));
        }
        symlink(&measured_binary(), &cni_path.join(OUR_TYPE));
        symlink(&floor_binary(), &cni_path.join(FLOOR));
        // A static busybox script: its own peak RSS stays far below ours, so the peak RSS of an
        // interface-mode ADD that delegates to it is ours.
        let fake = cni_path.join(FAKE_IPAM);
        fs::write(
            &fake,
            "#!/bin/busybox sh\n\
             case \"$CNI_COMMAND\" in\n\
             ADD) echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.99.200.1/16\"}]}' ;;\n\
             VERSION) echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}' ;;\n\
             esac\n",
        )
        .expect("write the fake IPAM");
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).expect("chmod fake IPAM");
        let origin = File::open("/proc/thread-self/ns/net").expect("open own netns");
        Runner { cni_path, origin }
    }

    /// Starts `plugin` in `node`'s namespace with `conf` on stdin. The driver's thread enters
    /// the namespace before the clock starts, so the child starts there without nsenter.
    pub(crate) fn spawn(
        &self,
        node: &Netns,
        plugin: &str,
        command: &str,
        at: &Attachment,
        conf: &Value,
    ) -> Pending {
        stop_if_interrupted();
        let ns = File::open(node.path()).expect("open node netns");
        setns(&ns, CloneFlags::CLONE_NEWNET).expect("enter the node's namespace");
        let stdin = serde_json::to_vec(conf).expect("serialise config");
        let mut cmd = Command::new(self.cni_path.join(plugin));
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &at.container_id)
            .env("CNI_NETNS", &at.netns)
            .env("CNI_IFNAME", &at.ifname)
            .env("CNI_ARGS", &at.args)
            .env("CNI_PATH", self.cni_path.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {plugin}: {e}"));
        // A configuration is far below a pipe's capacity: this never blocks on the child.
        let _ = child.stdin.take().expect("piped stdin").write_all(&stdin);
        Pending { child, started }
    }

    /// Reads the output of a started call and reaps it with `wait4`, for its resource usage.
    pub(crate) fn finish(&self, mut pending: Pending) -> Call {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let _ = pending
            .child
            .stdout
            .take()
            .expect("piped stdout")
            .read_to_end(&mut stdout);
        let _ = pending
            .child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_end(&mut stderr);
        let pid = pending.child.id() as libc::pid_t;
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: `pid` is our own unreaped child (std never waits for it: `Child` is only
            // dropped), and both out-pointers point to live locals.
            let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            if reaped == pid {
                break;
            }
            let err = std::io::Error::last_os_error();
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::Interrupted,
                "wait4 {pid}: {err}"
            );
        }
        let wall = pending.started.elapsed();
        let timeval = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        let raw = String::from_utf8_lossy(&stdout).into_owned();
        Call {
            wall,
            cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
            max_rss: usage.ru_maxrss as u64 * 1024,
            status: ExitStatus::from_raw(status),
            stdout: if raw.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&raw).unwrap_or(Value::String(raw))
            },
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    pub(crate) fn call(
        &self,
        node: &Netns,
        plugin: &str,
        command: &str,
        at: &Attachment,
        conf: &Value,
    ) -> Call {
        let pending = self.spawn(node, plugin, command, at, conf);
        let call = self.finish(pending);
        if std::env::var_os("BENCH_TRACE").is_some() {
            eprintln!(
                "{command} {plugin} {}: {:.2} ms, cpu {:.2} ms",
                at.container_id,
                call.wall.as_secs_f64() * 1000.0,
                call.cpu.as_secs_f64() * 1000.0
            );
        }
        call
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = setns(&self.origin, CloneFlags::CLONE_NEWNET);
    }
}

pub(crate) fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap_or_else(|e| panic!("symlink {link:?}: {e}"));
}

// ---------------------------------------------------------------------------------------------
// Measured operations
// ---------------------------------------------------------------------------------------------

/// One ADD followed by its DEL (with the ADD result as prevResult, as libcni passes it).
pub(crate) struct Cycle {
    pub(crate) add: Duration,
    pub(crate) del: Duration,
    pub(crate) cpu: Duration,
    pub(crate) max_rss: u64,
}

/// A single-plugin configuration on `pod`, ADD then DEL.
pub(crate) fn single_cycle(runner: &Runner, node: &Netns, pod: &Pod, conf: &Value) -> Cycle {
    let at = Attachment::new(pod);
    let plugin = type_of(conf);
    let add = runner
        .call(node, &plugin, "ADD", &at, conf)
        .expect_ok(&format!("ADD {plugin}"));
    let del_conf = with(conf.clone(), "prevResult", add.stdout.clone());
    let del = runner
        .call(node, &plugin, "DEL", &at, &del_conf)
        .expect_ok(&format!("DEL {plugin}"));
    Cycle {
        add: add.wall,
        del: del.wall,
        cpu: add.cpu + del.cpu,
        max_rss: add.max_rss.max(del.max_rss),
    }
}

/// A conflist the way libcni runs it: ADD in order, each plugin with the previous result as
/// prevResult; DEL in reverse order, each with the final (cached) result.
/// One CHECK of an attached pod (`conf` carries the ADD result as prevResult), as a cycle with
/// the CHECK in `add` and nothing in `del`.
pub(crate) fn check_call(runner: &Runner, node: &Netns, at: &Attachment, conf: &Value) -> Cycle {
    let plugin = type_of(conf);
    let check = runner
        .call(node, &plugin, "CHECK", at, conf)
        .expect_ok(&format!("CHECK {plugin}"));
    Cycle {
        add: check.wall,
        del: Duration::ZERO,
        cpu: check.cpu,
        max_rss: check.max_rss,
    }
}

pub(crate) fn conflist_cycle(runner: &Runner, node: &Netns, pod: &Pod, plugins: &[Value]) -> Cycle {
    let at = Attachment::new(pod);
    let base = |conf: &Value| {
        let conf = with(conf.clone(), "name", json!(NETWORK));
        with(conf, "cniVersion", json!(CNI_VERSION))
    };
    let mut cycle = Cycle {
        add: Duration::ZERO,
        del: Duration::ZERO,
        cpu: Duration::ZERO,
        max_rss: 0,
    };
    let mut prev: Option<Value> = None;
    for conf in plugins {
        let mut conf = base(conf);
        if let Some(prev) = &prev {
            conf["prevResult"] = prev.clone();
        }
        let plugin = type_of(&conf);
        let out = runner
            .call(node, &plugin, "ADD", &at, &conf)
            .expect_ok(&format!("conflist ADD {plugin}"));
        cycle.add += out.wall;
        cycle.cpu += out.cpu;
        cycle.max_rss = cycle.max_rss.max(out.max_rss);
        prev = Some(out.stdout);
    }
    let cached = prev.expect("a conflist has plugins");
    for conf in plugins.iter().rev() {
        let conf = with(base(conf), "prevResult", cached.clone());
        let plugin = type_of(&conf);
        let out = runner
            .call(node, &plugin, "DEL", &at, &conf)
            .expect_ok(&format!("conflist DEL {plugin}"));
        cycle.del += out.wall;
        cycle.cpu += out.cpu;
        cycle.max_rss = cycle.max_rss.max(out.max_rss);
    }
    cycle
}
