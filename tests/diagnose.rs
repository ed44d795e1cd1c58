//! `macvlan-host diagnose` (issue 12): healthy on a healthy node, and on each kind of drift
//! exit 1 with exactly what drifted, in text and in JSON; it changes nothing.

mod common;
mod host_repair;

use common::*;
use host_repair::*;
use serde_json::Value;

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What diagnose must name for each disturbance (a fragment of the drift line).
fn named(bed: &Bed, what: Disturbance) -> String {
    match what {
        Disturbance::ShimDeleted => format!("{SHIM} does not exist"),
        Disturbance::RoutesFlushed => format!("route to pod address {}", bed.pods[0].ip4),
        Disturbance::ShimNeighboursFlushed => {
            format!("node's permanent neighbour entry {}", bed.pods[0].ip4)
        }
        Disturbance::PodNeighboursFlushed => "the pod's permanent neighbour entry".to_string(),
        Disturbance::ShimMacChanged => "02:00:00:aa:bb:cc".to_string(),
        Disturbance::VethNodeEndDeleted => format!("{} does not exist", bed.veth_node_end()),
        Disturbance::Renumbered => RENUMBERED_IP4.to_string(),
        Disturbance::MasterMacChanged => format!("shim {SHIM} has MAC"),
        Disturbance::MasterMtuRaised => format!("shim {SHIM} has MTU 1500, not 9000"),
        Disturbance::MasterDownUp => unreachable!("no drift once the master's addresses are back"),
    }
}

/// Every drift line of the JSON report: the attachments' and the shims'.
fn drift_lines(report: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for a in report["attachments"].as_array().unwrap() {
        lines.extend(
            a["drift"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string()),
        );
    }
    for m in report["masters"].as_array().unwrap() {
        for s in m["shims"].as_array().unwrap() {
            lines.extend(
                s["drift"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_string()),
            );
        }
    }
    lines
}

#[test]
fn diagnose_names_each_kind_of_drift_and_changes_nothing() {
    let mut bed = Bed::new();

    let healthy = bed.command("diagnose", &[]);
    assert_eq!(healthy.status.code(), Some(0), "{}", text(&healthy));
    let t = text(&healthy);
    assert!(t.starts_with("host access: healthy"), "{t}");
    for p in &bed.pods {
        assert!(t.contains("ok          lan") && t.contains(&p.ip4), "{t}");
    }
    assert!(
        t.contains("rp_filter=") && t.contains("arp_ignore=") && t.contains("arp_announce="),
        "{t}"
    );
    let json: Value = serde_json::from_slice(&bed.command("diagnose", &["--json"]).stdout).unwrap();
    assert_eq!(json["healthy"], true);
    assert_eq!(json["attachments"].as_array().unwrap().len(), 4);
    assert!(
        json["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "ok"),
        "{json:#}"
    );
    let master = &json["masters"][0];
    assert_eq!(master["name"], "eth0");
    assert!(master["sysctls"]["rpFilter"].is_u64(), "{master}");
    assert_eq!(master["shims"][0]["name"], SHIM);
    assert_eq!(
        master["shims"][0]["sysctls"]["arpIgnore"], 8,
        "the shim's hardening shows"
    );
    assert!(json["hostManagers"].is_array());

    for what in ALL.into_iter().filter(|w| *w != Disturbance::MasterDownUp) {
        let fragment = named(&bed, what);
        bed.disturb(what);
        let routes_before = bed.node().routes("-4");
        let out = bed.command("diagnose", &[]);
        assert_eq!(out.status.code(), Some(1), "{what:?}:\n{}", text(&out));
        assert!(
            text(&out).starts_with("host access: DRIFT"),
            "{what:?}:\n{}",
            text(&out)
        );
        assert!(
            text(&out).contains(&fragment),
            "{what:?}: names {fragment:?}:\n{}",
            text(&out)
        );

        let out = bed.command("diagnose", &["--json"]);
        assert_eq!(out.status.code(), Some(1));
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["healthy"], false, "{what:?}");
        let lines = drift_lines(&json);
        assert!(
            lines.iter().any(|l| l.contains(&fragment)),
            "{what:?}: {fragment:?} in {lines:?}"
        );
        assert_eq!(
            bed.node().routes("-4"),
            routes_before,
            "{what:?}: diagnose changed nothing"
        );

        let repaired = bed.command("reconcile", &[]);
        assert_eq!(repaired.status.code(), Some(1), "{what:?}");
        assert_eq!(
            bed.command("diagnose", &[]).status.code(),
            Some(0),
            "{what:?}: healthy again"
        );
    }

    // The shim's hardening, under the shim.
    bed.unharden_shim();
    let json: Value = serde_json::from_slice(&bed.command("diagnose", &["--json"]).stdout).unwrap();
    let shim_drift = json["masters"][0]["shims"][0]["drift"].to_string();
    assert!(shim_drift.contains("arp_ignore"), "{json:#}");
    assert_eq!(bed.command("reconcile", &[]).status.code(), Some(1));
    assert_eq!(bed.command("diagnose", &[]).status.code(), Some(0));

    // A state directory that cannot be read (a file stands at its path): exit 2, and why.
    let file = bed.state.join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let out = bed
        .node()
        .command(OUR_PLUGIN)
        .args(["diagnose", "--state-dir", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bed.delete_all();
}
