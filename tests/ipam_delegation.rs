//! IPAM delegation as users meet it: an IPAM plugin older than the configuration, an IPAM
//! failure while the macvlan is already being made, and what each leaves behind.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::{json, Value};

/// Puts an executable shell script `name` into the plugin's CNI_PATH.
fn install_script(plugin: &Plugin, name: &str, body: &str) {
    write_executable(&plugin.cni_path().join(name), &format!("#!/bin/sh\n{body}"));
}

/// An IPAM "plugin" that records each call (verb and cniVersion) in `log`, then runs
/// host-local.
fn install_recording_ipam(plugin: &Plugin, log: &Path) {
    let body = format!(
        "conf=$(cat)\nversion=$(printf '%s' \"$conf\" | jq -r .cniVersion)\n\
         echo \"$CNI_COMMAND $version\" >> {log}\n\
         printf '%s' \"$conf\" | exec /usr/lib/cni/host-local\n",
        log = log.display()
    );
    install_script(plugin, "recording-ipam", &body);
}

fn config(ipam_type: &str, data_dir: &TempDir, state_dir: &TempDir, end: &str) -> Value {
    json!({
        "cniVersion": "1.1.0",
        "name": "ipamnet",
        "type": OUR_TYPE,
        "master": "eth0",
        "hostAccess": "none",
        "stateDir": state_dir.str(),
        "ipam": {
            "type": ipam_type,
            "dataDir": data_dir.str(),
            "ranges": [[{"subnet": SUBNET4, "rangeStart": "10.99.0.100", "rangeEnd": end}]],
        },
    })
}

/// Debian's host-local speaks CNI up to 1.0.0. The first call at 1.1.0 finds that out (refused,
/// VERSION, retried at 1.0.0); every later call goes to 1.0.0 at once.
#[test]
fn an_older_ipam_plugin_is_asked_its_version_once() {
    let lan = Lan::new();
    let (bin, data, state) = (
        TempDir::new("ipam-bin"),
        TempDir::new("data"),
        TempDir::new("state"),
    );
    let log = bin.join("calls.log");
    let plugin = Plugin::ours();
    install_recording_ipam(&plugin, &log);
    let conf = config("recording-ipam", &data, &state, "10.99.0.150");

    let (pod_a, pod_b) = (lan.pod("a"), lan.pod("b"));
    let (at_a, at_b) = (Attachment::new(&pod_a), Attachment::new(&pod_b));
    let first = plugin.add(&lan.node1, &at_a, &conf).expect_ok().clone();
    assert_eq!(
        first["cniVersion"], "1.1.0",
        "the result keeps the configuration's version"
    );
    plugin.add(&lan.node1, &at_b, &conf).expect_ok();
    plugin.del(&lan.node1, &at_a, &conf).expect_ok();
    plugin.del(&lan.node1, &at_b, &conf).expect_ok();

    let calls = fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "ADD 1.1.0",
            "VERSION 1.1.0",
            "ADD 1.0.0",
            "ADD 1.0.0",
            "DEL 1.0.0",
            "DEL 1.0.0"
        ],
        "{calls}"
    );
    assert!(host_local_allocations(data.path()).is_empty());
}

/// The macvlan is created while the IPAM plugin runs; when IPAM then fails (the range is
/// exhausted), the macvlan goes again and the pod is left as it was.
#[test]
fn an_ipam_failure_leaves_no_link_in_the_pod() {
    let lan = Lan::new();
    let (data, state) = (TempDir::new("data"), TempDir::new("state"));
    let plugin = Plugin::ours();
    let conf = config("host-local", &data, &state, "10.99.0.100"); // one address
    let (pod_a, pod_b) = (lan.pod("a"), lan.pod("b"));
    plugin
        .add(&lan.node1, &Attachment::new(&pod_a), &conf)
        .expect_ok();

    let failed = plugin.add(&lan.node1, &Attachment::new(&pod_b), &conf);
    failed.expect_error();
    assert!(
        failed.stdout["msg"]
            .as_str()
            .unwrap()
            .contains("host-local"),
        "{}",
        failed.stdout
    );
    let links = pod_b.ip_json(["link"]);
    let names: Vec<&str> = links
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(names, ["lo"], "nothing but lo in the pod");
    assert_eq!(
        host_local_allocations(data.path()).len(),
        1,
        "only pod a's address"
    );
}

/// An IPAM plugin that says it allocated, but with a result that cannot be read: ADD fails
/// naming the result, and the allocation is handed back (DEL), with no link left in the pod.
#[test]
fn an_unreadable_ipam_result_is_released_again() {
    let lan = Lan::new();
    let (bin, data, state) = (
        TempDir::new("ipam-bin"),
        TempDir::new("data"),
        TempDir::new("state"),
    );
    let log = bin.join("calls.log");
    let plugin = Plugin::ours();
    let body = format!(
        "cat >/dev/null\necho \"$CNI_COMMAND\" >> {}\n\
         [ \"$CNI_COMMAND\" = ADD ] && echo '{{\"cniVersion\":\"1.1.0\",\"ips\":[{{\"address\":\"not-an-ip\"}}]}}'\n\
         exit 0\n",
        log.display()
    );
    install_script(&plugin, "garbled-ipam", &body);
    let conf = config("garbled-ipam", &data, &state, "10.99.0.150");
    let pod = lan.pod("a");

    let out = plugin.add(&lan.node1, &Attachment::new(&pod), &conf);
    assert_eq!(out.expect_error(), 7);
    let msg = out.stdout["msg"].as_str().unwrap();
    assert!(
        msg.contains("IPAM result") && msg.contains("not-an-ip"),
        "{msg}"
    );
    let calls = fs::read_to_string(&log).unwrap();
    assert_eq!(calls.lines().collect::<Vec<_>>(), ["ADD", "DEL"], "{calls}");
    let links = pod.ip_json(["link"]);
    assert_eq!(
        links.as_array().unwrap().len(),
        1,
        "only lo in the pod: {links}"
    );
}
