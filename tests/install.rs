//! `macvlan-host install`, the DaemonSet's entry point, against temporary directories that
//! stand for the host's CNI bin and conf directories and for the mounted ConfigMap.

mod common;

use common::TempDir;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_macvlan-host");
const GOOD: &str = include_str!("../conf/chained-shim.conflist");
const CONFLIST: &str = "10-macvlan-host.conflist";

/// The host's directories and the mounted conflist.
struct Host {
    _root: TempDir,
    bin_dir: PathBuf,
    conf_dir: PathBuf,
    mounted: PathBuf,
}

impl Host {
    fn new() -> Host {
        let root = TempDir::new("install");
        let [bin_dir, conf_dir, mount] = ["opt/cni/bin", "etc/cni/net.d", "config"].map(|d| {
            let path = root.join(d);
            fs::create_dir_all(&path).unwrap();
            path
        });
        let mounted = mount.join(CONFLIST);
        fs::write(&mounted, GOOD).unwrap();
        Host {
            _root: root,
            bin_dir,
            conf_dir,
            mounted,
        }
    }

    fn installed_binary(&self) -> PathBuf {
        self.bin_dir.join("macvlan-host")
    }

    fn installed_conflist(&self) -> PathBuf {
        self.conf_dir.join(CONFLIST)
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec!["install".into()];
        for (flag, path) in [
            ("--bin-dir", &self.bin_dir),
            ("--conf-dir", &self.conf_dir),
            ("--conflist", &self.mounted),
        ] {
            args.push(flag.into());
            args.push(path.display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Runs the installer with `umask 022`, as a container's PID 1 usually has.
    fn install(&self, extra: &[&str]) -> Run {
        self.install_with_umask("022", extra)
    }

    fn install_with_umask(&self, umask: &str, extra: &[&str]) -> Run {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(BINARY)
            .args(self.args(extra))
            .env_remove("CNI_COMMAND")
            .stdin(Stdio::null())
            .output()
            .expect("run the installer");
        Run(out)
    }
}

struct Run(Output);

impl Run {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    fn expect_ok(self) -> Run {
        assert!(self.0.status.success(), "install failed: {}", self.stderr());
        self
    }

    fn expect_failure(self) -> Run {
        assert!(
            !self.0.status.success(),
            "install succeeded: {}",
            self.stderr()
        );
        self
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

/// The file names in `dir` (to see that no temporary file is left).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn first_install_puts_the_binary_and_the_conflist_in_place() {
    let host = Host::new();
    let run = host.install(&[]).expect_ok();
    assert!(
        run.stderr().contains(&format!(
            "macvlan-host {} install",
            env!("CARGO_PKG_VERSION")
        )),
        "the version is logged: {}",
        run.stderr()
    );
    assert_eq!(
        fs::read(host.installed_binary()).unwrap(),
        fs::read(BINARY).unwrap(),
        "the installed binary is the running one"
    );
    assert_eq!(fs::read_to_string(host.installed_conflist()).unwrap(), GOOD);
    assert_eq!(names_in(&host.bin_dir), ["macvlan-host"]);
    assert_eq!(names_in(&host.conf_dir), [CONFLIST]);

    // The installed copy is a working plugin: it answers VERSION as a runtime asks.
    let out = Command::new(host.installed_binary())
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        reply["supportedVersions"].as_array().unwrap().len() >= 5,
        "{reply}"
    );
}

#[test]
fn an_identical_reinstall_writes_nothing() {
    let host = Host::new();
    host.install(&[]).expect_ok();
    let before = (
        inode(&host.installed_binary()),
        inode(&host.installed_conflist()),
    );
    let run = host.install(&[]).expect_ok();
    let after = (
        inode(&host.installed_binary()),
        inode(&host.installed_conflist()),
    );
    assert_eq!(before, after, "an identical file is not replaced");
    assert_eq!(
        run.stderr().matches("unchanged, skipped").count(),
        2,
        "{}",
        run.stderr()
    );
}

#[test]
fn an_upgrade_replaces_both_files_by_rename() {
    let host = Host::new();
    // An older release: another binary and another conflist.
    fs::copy("/bin/true", host.installed_binary()).unwrap();
    let old_conflist = GOOD.replace("\"shim\"", "\"veth\"");
    fs::write(host.installed_conflist(), &old_conflist).unwrap();
    let before = (
        inode(&host.installed_binary()),
        inode(&host.installed_conflist()),
    );

    let run = host.install(&[]).expect_ok();
    assert_eq!(
        run.stderr().matches(": updated").count(),
        2,
        "{}",
        run.stderr()
    );
    assert_eq!(
        fs::read(host.installed_binary()).unwrap(),
        fs::read(BINARY).unwrap()
    );
    assert_eq!(fs::read_to_string(host.installed_conflist()).unwrap(), GOOD);
    let after = (
        inode(&host.installed_binary()),
        inode(&host.installed_conflist()),
    );
    // A new inode: the old file was replaced by rename, never rewritten in place (a runtime
    // executing or reading it at that moment sees a whole file).
    assert_ne!(before.0, after.0);
    assert_ne!(before.1, after.1);
    assert_eq!(names_in(&host.bin_dir), ["macvlan-host"]);
}

#[test]
fn a_bad_conflist_is_refused_naming_the_key_and_the_old_one_stays() {
    let host = Host::new();
    host.install(&[]).expect_ok();
    let cases = [
        (
            GOOD.replace("\"hostAccess\": \"shim\"", "\"hostAccess\": \"tunnel\""),
            "hostAccess",
        ),
        (
            GOOD.replace(
                "\"hostAccess\": \"shim\"",
                "\"hostRoutes\": [\"10.96.0.0\"]",
            ),
            "hostRoutes",
        ),
        (GOOD.replace("\"1.0.0\"", "\"9.9.9\""), "cniVersion"),
        (GOOD.replace("\"plugins\"", "\"plugin\""), "plugins"),
        ("{ \"cniVersion\": \"1.0.0\",".to_string(), "not valid JSON"),
    ];
    for (bad, key) in cases {
        fs::write(&host.mounted, &bad).unwrap();
        let run = host.install(&[]).expect_failure();
        assert!(
            run.stderr().contains("refusing conflist") && run.stderr().contains(key),
            "the message names {key}: {}",
            run.stderr()
        );
        assert_eq!(
            fs::read_to_string(host.installed_conflist()).unwrap(),
            GOOD,
            "the installed conflist stays after a bad {key}"
        );
        assert_eq!(names_in(&host.conf_dir), [CONFLIST]);
    }
}

#[test]
fn uninstall_removes_what_install_put_there() {
    let host = Host::new();
    // Something of the runtime's own, which must stay.
    fs::write(
        host.conf_dir.join("99-loopback.conf"),
        r#"{"cniVersion":"1.0.0","name":"lo","type":"loopback"}"#,
    )
    .unwrap();
    host.install(&[]).expect_ok();
    host.install(&["--uninstall"]).expect_ok();
    assert!(names_in(&host.bin_dir).is_empty());
    assert_eq!(names_in(&host.conf_dir), ["99-loopback.conf"]);
    // Again: nothing left to remove is not an error.
    host.install(&["--uninstall"]).expect_ok();
}

#[test]
fn uninstall_keeps_the_binary_while_another_conflist_uses_it() {
    let host = Host::new();
    host.install(&[]).expect_ok();
    let other = host.conf_dir.join("20-other.conflist");
    fs::write(&other, GOOD.replace("\"lan\"", "\"other\"")).unwrap();
    let run = host.install(&["--uninstall"]).expect_ok();
    assert!(!host.installed_conflist().exists());
    assert!(host.installed_binary().exists(), "{}", run.stderr());
    assert!(
        run.stderr().contains("20-other.conflist"),
        "{}",
        run.stderr()
    );
}

#[test]
fn files_get_their_modes_whatever_the_umask() {
    let host = Host::new();
    host.install_with_umask("077", &[]).expect_ok();
    assert_eq!(
        mode(&host.installed_binary()),
        0o755,
        "runtimes run plugins as any user"
    );
    assert_eq!(mode(&host.installed_conflist()), 0o644);
    // A wrong mode alone is repaired too.
    fs::set_permissions(host.installed_binary(), fs::Permissions::from_mode(0o700)).unwrap();
    host.install(&[]).expect_ok();
    assert_eq!(mode(&host.installed_binary()), 0o755);
}

#[test]
fn missing_directories_and_arguments_are_reported() {
    let host = Host::new();
    fs::remove_dir(&host.bin_dir).unwrap();
    let run = host.install(&[]).expect_failure();
    assert!(run.stderr().contains("--bin-dir"), "{}", run.stderr());
    assert!(
        !host.installed_conflist().exists(),
        "nothing is installed half"
    );

    let out = Command::new(BINARY)
        .args(["install", "--bin-dir", "/tmp"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--conf-dir is required"));

    let help = Command::new(BINARY)
        .args(["install", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--uninstall"));
}

/// The command line of process `pid`, split at its NULs.
fn cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills the child on drop, also when an assertion fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn watch_becomes_reconcile_in_the_same_process() {
    let host = Host::new();
    let state = host.bin_dir.parent().unwrap().join("state");
    fs::create_dir_all(&state).unwrap();
    // In a network namespace of its own (`unshare` execs, so the PID stays the child's):
    // whatever reconcile does, it does not see the machine's network.
    let child = Command::new("unshare")
        .arg("--net")
        .arg(BINARY)
        .args(host.args(&["--watch", "--state-dir", state.to_str().unwrap()]))
        .env_remove("CNI_COMMAND")
        // Kept open: whatever the exec'd program reads, it waits here until the test ends.
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start install --watch");
    let pid = child.id();
    let mut guard = Killed(child);

    let expected = [
        "macvlan-host",
        "reconcile",
        "--watch",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while cmdline(pid) != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        cmdline(pid),
        expected,
        "process {pid} runs reconcile --watch"
    );
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        Path::new(BINARY).canonicalize().unwrap(),
        "the same binary"
    );
    // It installed first.
    assert!(host.installed_binary().exists());
    assert_eq!(fs::read_to_string(host.installed_conflist()).unwrap(), GOOD);

    // The watcher stays up (the DaemonSet's container lives as long as it does) and ends
    // cleanly on SIGTERM, which is what the kubelet sends when it stops the pod.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        guard.0.try_wait().unwrap(),
        None,
        "reconcile --watch exited"
    );
    assert_eq!(cmdline(pid), expected, "still reconcile --watch");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "reconcile --watch ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(guard.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert!(stderr.contains("running reconcile --watch"), "{stderr}");
}
