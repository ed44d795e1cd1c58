//! An upgrade with live pods from the previous release (issue 17): its routes carry protocol
//! `boot`; this version marks its own with protocol 109. The previous release's pods stay
//! reachable through the upgrade, CHECK passes for them, DEL removes their routes, ADD of new
//! pods shares their shim, and `reconcile` adopts their routes (rewrites them marked ours)
//! in one run.
//!
//! The previous release is git commit 7434bde, built once from `git archive` (no debug info,
//! its own target directory, removed afterwards) and cached as
//! `target/previous-release/macvlan-host-7434bde`, under a lock so that concurrent runs build
//! it once. The first run costs a build of about a minute of CPU; later runs nothing.

mod common;
mod host_repair;

use common::*;
use host_repair::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const PREVIOUS_RELEASE: &str = "7434bde";

/// The previous release's binary, built on first use.
fn previous_release() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/previous-release");
    let binary = dir.join(format!("macvlan-host-{PREVIOUS_RELEASE}"));
    std::fs::create_dir_all(&dir).unwrap();
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    // Under flock: a second run waits for the first one's build, then finds the binary.
    let script = format!(
        r#"set -eu
exec 9>"{dir}/.lock"
flock 9
[ -x "{binary}" ] && exit 0
rm -rf "{dir}/src" "{dir}/build"
mkdir -p "{dir}/src"
git -C "{root}" archive {PREVIOUS_RELEASE} | tar -x -C "{dir}/src"
cd "{dir}/src"
CARGO_PROFILE_DEV_DEBUG=0 CARGO_INCREMENTAL=0 "{cargo}" build --offline --quiet \
    --bin macvlan-host --target-dir "{dir}/build"
cp "{dir}/build/debug/macvlan-host" "{binary}.tmp"
mv "{binary}.tmp" "{binary}"
rm -rf "{dir}/src" "{dir}/build"
"#,
        dir = dir.display(),
        binary = binary.display(),
        root = root.display(),
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "building the previous release {PREVIOUS_RELEASE} (needs the git history):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    binary
}

/// The protocol of the node's route to `ip` (`ip route show`'s name for it; it leaves out
/// `boot`, the default).
fn route_protocol(node: &Netns, ip: &str) -> String {
    let family = if ip.contains(':') { "-6" } else { "-4" };
    let routes = node.ip_json([family, "route", "show", ip]);
    assert!(routes[0].is_object(), "no route to {ip}: {routes}");
    routes[0]["protocol"].as_str().unwrap_or("boot").to_string()
}

#[test]
fn live_pods_of_the_previous_release_are_adopted() {
    let previous = Plugin::ours_built_as(&previous_release());
    let lan = Lan::new();
    let state = TempDir::new("state");
    let data = TempDir::new("host-local");
    let shim_net = network("lan", "shim", 100, 129, &state, &data);
    let veth_net = network("lanveth", "veth", 130, 139, &state, &data);
    let node = &lan.node1;

    // Three pods of the previous release: two on the shim, one with a veth.
    let mut pods = Vec::new();
    for (name, conf) in [("a", &shim_net), ("b", &shim_net), ("v", &veth_net)] {
        let pod = lan.pod(name);
        let at = Attachment::new(&pod);
        let result = previous.add(node, &at, conf).expect_ok().clone();
        let ips = [result_ip(&result, false), result_ip(&result, true)];
        for ip in &ips {
            assert_eq!(
                route_protocol(node, ip),
                "boot",
                "the previous release's route"
            );
        }
        let mut checked = conf.clone();
        checked["prevResult"] = result;
        pods.push((pod, at, checked, ips));
    }

    // The upgrade: from here on, every call is this version's.
    let plugin = Plugin::ours();
    for (pod, at, conf, _) in &pods {
        plugin.check(node, at, conf).expect_ok();
        assert!(pod.ping(NODE1_IP4), "an old pod reaches the node");
    }
    // DEL of an old pod removes its `boot` routes; the shim stays for the other one.
    let (gone, at, conf, ips) = pods.remove(1);
    plugin.del(node, &at, &conf).expect_ok();
    for ip in &ips {
        let family = if ip.contains(':') { "-6" } else { "-4" };
        let left = node.ip_json([family, "route", "show", ip.as_str()]);
        assert_eq!(left.as_array().map(Vec::len), Some(0), "{ip}: {left}");
    }
    drop(gone);
    assert!(node.has_link(SHIM), "the shim stays for the other old pod");

    // A new pod joins the old pods' shim; its routes are marked ours.
    let fresh = lan.pod("new");
    let fresh_at = Attachment::new(&fresh);
    let result = plugin.add(node, &fresh_at, &shim_net).expect_ok().clone();
    let fresh_ips = [result_ip(&result, false), result_ip(&result, true)];
    for ip in &fresh_ips {
        assert_eq!(route_protocol(node, ip), "109", "a route of this version");
    }
    let mut checked = shim_net.clone();
    checked["prevResult"] = result;
    pods.push((fresh, fresh_at, checked, fresh_ips));

    // diagnose names the routes to adopt; one reconcile adopts them, the next finds nothing.
    let diagnosis = node
        .command(OUR_PLUGIN)
        .args(["diagnose", "--state-dir", state.str()])
        .env_remove("CNI_COMMAND")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&diagnosis.stdout).into_owned();
    assert_eq!(diagnosis.status.code(), Some(1), "{text}");
    assert!(text.contains("earlier version"), "{text}");
    let reconcile = |expected: i32| {
        let out = node
            .command(OUR_PLUGIN)
            .args(["reconcile", "--state-dir", state.str()])
            .env_remove("CNI_COMMAND")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    reconcile(1);
    reconcile(0);
    for (pod, _, _, ips) in &pods {
        for ip in ips {
            assert_eq!(route_protocol(node, ip), "109", "adopted: {ip}");
            assert!(node.ping(ip), "node -> pod {ip}");
        }
        assert!(pod.ping(NODE1_IP4), "pod -> node");
        assert!(pod.ping(NODE1_IP6), "pod -> node (IPv6)");
        let unmarked: Vec<_> = pod
            .routes("-4")
            .into_iter()
            .chain(pod.routes("-6"))
            .filter(|r| r["protocol"].is_null() || r["protocol"] == "boot")
            .collect();
        assert!(
            unmarked.is_empty(),
            "the pod's routes adopted: {unmarked:?}"
        );
    }

    for (_, at, conf, _) in &pods {
        plugin.del(node, at, conf).expect_ok();
    }
    assert_nothing_left(node, "after every pod's DEL");
}
