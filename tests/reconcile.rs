//! `macvlan-host reconcile` (issue 12): every disturbance of the host side under live pods is
//! repaired by one run (exit 1, and 0 on the next), after which node and pods talk again both
//! ways and the LAN still sees one MAC for the node. Also: its command line, an unreachable pod
//! left alone, and ADD healing a deleted shim for the pods already on it.

mod common;
mod host_repair;

use common::*;
use host_repair::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_disturbance_is_repaired_by_one_run() {
    let mut bed = Bed::new();
    bed.assert_works("before");
    let out = bed.command("reconcile", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "nothing drifted yet: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    for what in ALL {
        bed.disturb(what);
        let out = bed.command("reconcile", &[]);
        // The kernel keeps the routes and neighbour entries of links whose lower device went
        // down (marked linkdown): once the master's addresses are back, nothing had drifted.
        let expected = if what == Disturbance::MasterDownUp {
            0
        } else {
            1
        };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{what:?}: the first run repairs:\nstdout: {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        );
        if expected == 1 {
            assert!(
                stdout(&out).contains("repaired"),
                "{what:?}: says what it repaired:\nstdout: {}\nstderr: {}",
                stdout(&out),
                stderr(&out)
            );
        }
        let again = bed.command("reconcile", &[]);
        assert_eq!(
            again.status.code(),
            Some(0),
            "{what:?}: the second run finds nothing:\n{}{}",
            stdout(&again),
            stderr(&again)
        );
        bed.assert_works(&format!("after {what:?}"));
    }
    bed.delete_all();
    assert_nothing_left(bed.node(), "after every pod's DEL");
}

#[test]
fn an_unreachable_pod_is_reported_and_left_alone() {
    let lan = Lan::new();
    let state = TempDir::new("state");
    let data = TempDir::new("host-local");
    let plugin = Plugin::ours();
    let conf = network("lan", "shim", 100, 109, &state, &data);
    let pod = lan.pod("gone");
    let at = Attachment::new(&pod);
    plugin.add(&lan.node1, &at, &conf).expect_ok();
    let routes_before = lan.node1.routes("-4");
    // The namespace vanishes from view (from inside a container this proves nothing).
    drop(pod);
    lan.node1.ip(["route", "flush", "dev", SHIM]);

    let out = lan
        .node1
        .command(OUR_PLUGIN)
        .args(["reconcile", "--state-dir", state.str()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains("left alone"), "{}", stderr(&out));
    assert!(
        state
            .join("attachments")
            .read_dir()
            .unwrap()
            .next()
            .is_some(),
        "the record stays"
    );
    assert!(lan.node1.has_link(SHIM), "the shim stays");
    assert_ne!(
        lan.node1.routes("-4"),
        routes_before,
        "and nothing is re-added for it"
    );
    plugin
        .del(&lan.node1, &at.without_netns(), &conf)
        .expect_ok();
    assert_node_pristine(&lan.node1, "after DEL");
}

#[test]
fn the_command_line_is_an_operators_interface() {
    let lan = Lan::new();
    let run = |args: &[&str]| {
        lan.node1
            .command(OUR_PLUGIN)
            .args(args)
            .env_remove("CNI_COMMAND")
            .output()
            .unwrap()
    };
    for command in ["reconcile", "diagnose"] {
        let help = run(&[command, "--help"]);
        assert_eq!(help.status.code(), Some(0));
        assert!(
            stdout(&help).contains(&format!("macvlan-host {command} [--state-dir DIR]...")),
            "{}",
            stdout(&help)
        );
        let bad = run(&[command, "--no-such-flag"]);
        assert_eq!(bad.status.code(), Some(2));
        assert!(stderr(&bad).contains("--no-such-flag"), "{}", stderr(&bad));
    }
    // A state directory that is a file cannot be read: exit 2 and why.
    let dir = TempDir::new("not-a-dir");
    let file = dir.join("file");
    std::fs::write(&file, b"").unwrap();
    let out = run(&["reconcile", "--state-dir", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(file.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
    // A state directory that does not exist has no attachments: nothing drifted.
    let out = run(&[
        "reconcile",
        "--state-dir",
        dir.join("none").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn add_restores_the_pods_of_a_shim_it_recreates() {
    let bed = Bed::new();
    bed.disturb_shim_deleted();
    // The next ADD on the node re-creates the shim: the three pods already on it get their
    // routes and neighbour entries back with it, without any reconcile.
    let newcomer = bed.lan.pod("newcomer");
    let at = Attachment::new(&newcomer);
    let conf = &bed.pods[0].conf;
    bed.plugin.add(bed.node(), &at, conf).expect_ok();
    let out = bed.command("reconcile", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "nothing left to repair after ADD:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    bed.assert_works("after ADD re-created the shim");
    bed.plugin.del(bed.node(), &at, conf).expect_ok();
    bed.delete_all();
    assert_nothing_left(bed.node(), "after every pod's DEL");
}

/// Issue 18, finding 1: after the master's MAC changed, the next ADD used to replace the shim
/// with a new MAC, then heal the other pods by putting the old one back: ADD exited 0 for a
/// pod the node could not reach, and `reconcile` never settled. Now the shim's MAC follows
/// the master's current one, set in place; ADD makes every pod on the shim follow it.
#[test]
fn add_after_a_master_mac_change_leaves_every_pod_reachable() {
    let mut bed = Bed::new();
    bed.disturb(Disturbance::MasterMacChanged);
    let newcomer = bed.lan.pod("newcomer");
    let at = Attachment::new(&newcomer);
    let conf = bed.pods[0].conf.clone();
    let result = bed.plugin.add(bed.node(), &at, &conf).expect_ok().clone();
    let ip4 = result_ip(&result, false);
    assert!(bed.node().ping(&ip4), "node -> the new pod {ip4}");
    assert!(newcomer.ping(&bed.node_ip4), "the new pod -> node");
    bed.assert_works("after ADD following the master's MAC change");
    let out = bed.command("reconcile", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "ADD left nothing to repair:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    // And it stays settled: a second master MAC change takes one pass, then none.
    bed.lan
        .node1
        .ip(["link", "set", "eth0", "address", "02:00:00:00:00:43"]);
    assert_eq!(bed.command("reconcile", &[]).status.code(), Some(1));
    assert_eq!(bed.command("reconcile", &[]).status.code(), Some(0));
    bed.assert_works("after the second MAC change and one reconcile");
    bed.plugin.del(bed.node(), &at, &conf).expect_ok();
    bed.delete_all();
    assert_nothing_left(bed.node(), "after every pod's DEL");
}
