//! The real host network managers, run inside a test node's network namespace, each in a
//! private mount namespace so that nothing of the machine's own configuration or state is read
//! or written (../shared/notes/network-managers.md): systemd-networkd (`networkd.rs`) and
//! NetworkManager (`network_manager.rs`, unpacked by `scripts/install-deps.sh`).

#![allow(dead_code)]

pub mod network_manager;
pub mod networkd;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::Netns;

/// Marks the daemons of this test binary, so a later run can stop those a killed run left.
const OWNER_VAR: &str = "MVH_NETWORK_MANAGER_TEST_OWNER";

/// The shipped drop-ins.
pub fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/network-managers")
        .join(name)
}

/// A manager started as `nsenter --net=NODE unshare -m sh -c '<mounts>; exec <daemon>'`: every
/// step execs, so the child's PID is the daemon's. Stopped by PID (SIGTERM, then SIGKILL) on
/// `stop` and on `Drop`, with the helper (NetworkManager's bus) whose PID it wrote down.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
    pub helper_pid_file: Option<PathBuf>,
    started: Instant,
}

impl Daemon {
    pub fn start(node: &Netns, script: &str, env: &[(&str, &str)], log: PathBuf) -> Daemon {
        stop_daemons_of_killed_runs();
        let file = fs::File::create(&log).expect("daemon log");
        let stderr = file.try_clone().expect("daemon log");
        let child = node
            .command("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script])
            .envs(env.iter().copied())
            .env(OWNER_VAR, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(stderr)
            .spawn()
            .expect("start the daemon");
        Daemon {
            child: Some(child),
            log,
            helper_pid_file: None,
            started: Instant::now(),
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until `done` holds; panics with `what` and the log's tail if the daemon exits or
    /// `timeout` passes (counted from the start).
    pub fn wait_until(&mut self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        while !done() {
            let exited = self.exited();
            assert!(
                exited.is_none() && self.started.elapsed() < timeout,
                "waiting for {what} (exited: {exited:?}):\n{}",
                tail(&self.log())
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the daemon's log contains `needle`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        let log = self.log.clone();
        self.wait_until(&format!("{needle:?}"), timeout, || {
            fs::read_to_string(&log).is_ok_and(|l| l.contains(needle))
        });
    }

    /// SIGTERM, up to 5 s for a clean exit, then SIGKILL; then the helper.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = self
            .helper_pid_file
            .take()
            .and_then(|f| fs::read_to_string(f).ok())
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            kill(pid, "KILL");
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

/// The last lines of a log, for a failure message.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Kills the daemons that a killed earlier run of this test binary left running (marked with
/// `OWNER_VAR` = a PID that no longer runs). Only ours: the mark is in their environment.
pub fn stop_daemons_of_killed_runs() {
    let Ok(procs) = fs::read_dir("/proc") else {
        return;
    };
    let mark = format!("{OWNER_VAR}=");
    for entry in procs.filter_map(|e| e.ok()) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(environ) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        let owner = environ
            .split(|b| *b == 0)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .find_map(|v| v.strip_prefix(&mark)?.parse::<u32>().ok());
        if let Some(owner) = owner {
            if !Path::new(&format!("/proc/{owner}")).exists() {
                kill(pid, "KILL");
            }
        }
    }
}
