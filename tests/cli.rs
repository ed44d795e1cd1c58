//! The binary as a runtime (or a person) runs it: one JSON document on stdout, the right exit
//! status, and every verb gated by the configuration's version. Each case here fails before
//! the plugin touches any namespace, so no root or test bed is needed.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_macvlan-host");
const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {:?}", self.stdout))
    }

    /// The CNI error code, after checking the error's shape.
    fn error_code(&self) -> u64 {
        assert!(!self.ok, "expected a failure, got {:?}", self.stdout);
        let error = self.json();
        assert!(
            error["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
        assert!(error["cniVersion"].is_string(), "{error}");
        error["code"].as_u64().expect("a numeric code")
    }
}

fn run(vars: &[(&str, &str)], stdin: &str) -> Run {
    let mut child = Command::new(BINARY)
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the plugin");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn attachment_env(command: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/nonexistent/netns"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/nonexistent"),
    ]
}

#[test]
fn version_lists_the_five_supported_versions() {
    let out = run(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion":"1.1.0"}"#);
    assert!(out.ok);
    assert_eq!(
        out.json(),
        json!({"cniVersion": "1.1.0", "supportedVersions": VERSIONS})
    );
}

#[test]
fn help_shows_the_version_and_the_supported_cni_versions() {
    let out = Command::new(BINARY).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    assert!(text.contains(&VERSIONS.join(", ")), "{text}");
}

#[test]
fn a_call_without_cni_command_is_an_environment_error() {
    let out = run(&[], "{}");
    assert_eq!(out.error_code(), 4);
    assert!(out.json()["msg"].as_str().unwrap().contains("CNI_COMMAND"));
}

#[test]
fn invalid_json_is_a_decoding_error_on_stdout_with_logs_on_stderr_only() {
    let out = run(&attachment_env("ADD"), "{not json");
    assert_eq!(out.error_code(), 6);
    assert_eq!(out.stdout.lines().count(), 1, "exactly one document");
    assert!(out.stderr.contains("not valid JSON"), "{}", out.stderr);
}

#[test]
fn an_unsupported_version_is_code_1_for_every_verb() {
    for command in ["ADD", "DEL", "CHECK", "GC", "STATUS"] {
        let out = run(
            &attachment_env(command),
            r#"{"cniVersion":"0.2.0","name":"n"}"#,
        );
        assert_eq!(out.error_code(), 1, "{command}");
        assert_eq!(
            out.json()["cniVersion"],
            "0.2.0",
            "the error echoes the version"
        );
    }
}

/// Every verb at every version: the verbs a version does not have are refused with code 1;
/// the others get past the version gate (and then stop at the invalid `mode`, code 7, before
/// touching the system).
#[test]
fn every_verb_at_every_version() {
    for version in VERSIONS {
        let conf = json!({"cniVersion": version, "name": "n", "type": "macvlan-host",
                          "mode": "sideways", "ipam": {"type": "host-local"}})
        .to_string();
        for command in ["ADD", "DEL", "CHECK", "GC", "STATUS"] {
            let exists = match command {
                "CHECK" => version >= "0.4.0",
                "GC" | "STATUS" => version == "1.1.0",
                _ => true,
            };
            let out = run(&attachment_env(command), &conf);
            let code = out.error_code();
            let expected = if exists { 7 } else { 1 };
            assert_eq!(code, expected, "{command} at {version}: {}", out.stdout);
            if exists {
                assert!(out.stdout.contains("sideways"), "{}", out.stdout);
            } else {
                assert!(out.stdout.contains(command), "{}", out.stdout);
            }
        }
    }
}

#[test]
fn add_with_neither_ipam_nor_prev_result_explains_both_modes() {
    let out = run(
        &attachment_env("ADD"),
        r#"{"cniVersion":"1.0.0","name":"n","type":"macvlan-host"}"#,
    );
    assert_eq!(out.error_code(), 7);
    let msg = out.json()["msg"].as_str().unwrap().to_owned();
    assert!(msg.contains("ipam") && msg.contains("prevResult"), "{msg}");
}

/// `--interval` outside what a timer can hold (`Duration::from_secs_f64` panics past u64
/// seconds; far smaller values overflow `Instant + interval`) is refused with exit 2 and a
/// message that names the argument, never a panic. Refused while parsing: nothing starts.
#[test]
fn reconcile_refuses_an_interval_out_of_range() {
    for interval in ["1e20", "1e12", "604801", "0.001", "1e-300"] {
        let out = Command::new(BINARY)
            .args(["reconcile", "--watch", "--interval", interval])
            .args(["--state-dir", "/nonexistent/macvlan-host-cli-test"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--interval {interval}: {stderr}"
        );
        assert!(
            stderr.contains("--interval") && stderr.contains(interval) && !stderr.contains("panic"),
            "--interval {interval}: {stderr}"
        );
    }
}
