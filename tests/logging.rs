//! Logs: never on stdout; `logFile` gets every line at `logLevel`, tagged with the call.

mod common;

use std::fs;

use common::*;
use serde_json::json;

#[test]
fn log_file_gets_tagged_lines_at_its_level_and_stdout_only_the_result() {
    let lan = Lan::new();
    let (data, state, logs) = (
        TempDir::new("data"),
        TempDir::new("state"),
        TempDir::new("logs"),
    );
    let log_file = logs.join("macvlan-host.log");
    let conf = |level: &str| {
        json!({
            "cniVersion": "1.0.0", "name": "logged", "type": OUR_TYPE, "master": "eth0",
            "stateDir": state.str(), "logFile": log_file.to_str().unwrap(), "logLevel": level,
            "ipam": {"type": "host-local", "dataDir": data.str(),
                     "ranges": [[{"subnet": SUBNET4, "rangeStart": "10.99.0.100", "rangeEnd": "10.99.0.109"}]]},
        })
    };
    let plugin = Plugin::ours();
    let pod = lan.pod("a");
    let at = Attachment::new(&pod);

    let added = plugin.add(&lan.node1, &at, &conf("info"));
    added.expect_ok();
    assert!(added.stdout.is_object(), "stdout is exactly the result");
    let text = fs::read_to_string(&log_file).expect("the log file exists");
    let created = text
        .lines()
        .find(|l| l.contains("created shim mvh-eth0"))
        .unwrap_or_else(|| panic!("an INFO line about the shim in:\n{text}"));
    assert!(
        created.contains(&format!("ADD {} eth0 INFO", at.container_id)),
        "{created}"
    );

    // At "warn", info lines are left out; an error is still written, with its call.
    let failed = plugin.add(&lan.node1, &at, &conf("warn"));
    failed.expect_error();
    let text = fs::read_to_string(&log_file).unwrap();
    let new_lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("created shim"))
        .skip(1)
        .collect();
    assert!(
        new_lines.iter().all(|l| !l.contains(" INFO:")),
        "{new_lines:?}"
    );
    assert!(
        new_lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("eth0")),
        "the failure is logged: {new_lines:?}"
    );
    assert!(
        failed.stderr.contains("WARN"),
        "and on stderr: {}",
        failed.stderr
    );

    plugin.del(&lan.node1, &at, &conf("info")).expect_ok();
}
