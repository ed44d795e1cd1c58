//! The newer-runtimes rig itself (`common::runtime_node`): Debian trixie's dockerd 26 and
//! podman 5.4, and sid's dockerd 28 and podman 5.8, run inside a test node, see only the node's
//! links, run a container each from an image imported without a registry, and leave nothing
//! behind: no interface in the node that the runtimes made, nothing written into the cached
//! root, no process once the node is dropped, no cgroup.
//!
//! Each case skips (with a message) only when its root file system cannot be built at all.

mod common;

use common::runtime_node::*;
use common::*;
use std::path::Path;
use std::time::Instant;

/// The image the test imports.
const IMAGE: &str = "localhost/mvh-rig:latest";

/// Links of the node as `ip -j link` shows them from the machine's side.
fn link_names_of(node: &Netns) -> Vec<String> {
    node.ip_json(["link", "show"])
        .as_array()
        .expect("ip -j link prints an array")
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_string))
        .collect()
}

cases!(docker_and_podman_run_inside_a_test_node {
    trixie: (Suite::Trixie, "26.", "podman version 5.4"),
    sid: (Suite::Sid, "28.", "podman version 5."),
});

/// dockerd and podman of `suite` in a node: their versions, a container each, nothing left.
fn docker_and_podman_run_inside_a_test_node(suite: Suite, docker: &str, podman: &str) {
    let Some(root) = runtime_root_or_skip(suite) else {
        return;
    };
    let lan = Lan::new();
    let links_before = link_names_of(&lan.node1);
    let started = Instant::now();
    let mut node = RuntimeNode::start(suite, lan.node1.name());
    eprintln!("node started in {:?}", started.elapsed());

    // The node's own network: its fresh sysfs and `ip` show the node's links, not the machine's.
    let sys_links = node.run(["ls", "/sys/class/net"]);
    let mut sys_links: Vec<&str> = sys_links.split_whitespace().collect();
    sys_links.sort_unstable();
    let mut expected: Vec<&str> = links_before.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(sys_links, expected, "the node's /sys/class/net");
    assert!(node
        .run(["ip", "-4", "addr", "show", "dev", "eth0"])
        .contains(NODE1_IP4));
    // The plugin under test runs inside, from the read-only build output.
    let version = node
        .command_with_env(&[("CNI_COMMAND", "VERSION")], [node.our_plugin()])
        .output()
        .expect("run the plugin in the node");
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.contains("supportedVersions"),
        "VERSION in the node: {version}"
    );
    let write = node.exec(["touch", &format!("{NODE_TARGET}/mvh-rig-write-test")]);
    assert!(
        !write.status.success(),
        "the build output is writable inside the node"
    );
    // What the node writes into its root is its own: the cached root stays as built.
    node.run(["touch", "/etc/mvh-rig-write-test"]);
    assert!(node.host_view("/etc/mvh-rig-write-test").exists());
    assert!(
        !root.join("etc/mvh-rig-write-test").exists(),
        "the node wrote into the cached root {root:?}"
    );

    // Docker 26: its API answers, an image imported from a tar runs a container.
    let answered = node.start_dockerd(&[]);
    eprintln!("dockerd answered in {answered:?}");
    let server = node.docker(["version", "--format", "{{.Server.Version}}"]);
    let server = String::from_utf8_lossy(&server.stdout).trim().to_string();
    assert!(server.starts_with(docker), "docker version: {server:?}");
    let tar = node.busybox_image_tar();
    let tar = tar.to_str().expect("UTF-8");
    let imported = node.docker(["import", "--change", r#"CMD ["/bin/sh"]"#, tar, IMAGE]);
    assert!(
        imported.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let t = Instant::now();
    let ran = node.docker([
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "echo",
        "from-docker",
    ]);
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("from-docker"),
        "docker run: {}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    eprintln!("docker run --rm in {:?}", t.elapsed());
    node.stop_dockerd();

    // podman 5 with netavark, in the same node.
    let env = node.podman_env(&[]);
    let version = node.podman(&env, ["--version"]);
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    assert!(version.contains(podman), "podman --version: {version}");
    let info = node.podman(&env, ["info", "--format", "{{.Host.NetworkBackend}}"]);
    assert_eq!(
        String::from_utf8_lossy(&info.stdout).trim(),
        "netavark",
        "podman info: {}",
        String::from_utf8_lossy(&info.stderr)
    );
    let imported = node.podman(&env, ["import", tar, IMAGE]);
    assert!(
        imported.status.success(),
        "podman import: {}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let mut run: Vec<String> = vec!["run".into(), "--rm".into(), "--network=none".into()];
    run.extend(node.podman_run_flags());
    run.extend([IMAGE, "echo", "from-podman"].map(String::from));
    let t = Instant::now();
    let ran = node.podman(&env, &run);
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("from-podman"),
        "podman run: {}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    eprintln!("podman run --rm in {:?}", t.elapsed());

    // Neither runtime made a link in the node (no bridge, no docker0).
    assert_eq!(
        link_names_of(&lan.node1),
        links_before,
        "links the runtimes left"
    );

    // Dropping the node ends every process in it and removes its cgroups.
    let init = node.init_pid();
    let cgroup = node.cgroup_parent().trim_start_matches('/').to_string();
    drop(node);
    assert!(
        !Path::new(&format!("/proc/{init}")).exists(),
        "the node's PID 1 outlived it"
    );
    for hierarchy in ["memory", "pids", "cpu", "devices", "freezer", "systemd"] {
        let dir = Path::new("/sys/fs/cgroup").join(hierarchy).join(&cgroup);
        assert!(!dir.exists(), "{dir:?} left behind");
    }
}

/// The root cache does not grow without bound: a suite's roots of other package sets go once
/// unused for 14 days, while a recent one, one being built (its lock held), one not finished
/// (no stamp) and another suite's stay. Run on a cache of empty stand-ins
/// (`MVH_ROOTS`), through `runtime-root.sh --prune`, the same function every use of the
/// script runs.
#[test]
fn roots_of_other_package_sets_unused_for_14_days_are_pruned() {
    let cache = TempDir::new("root-cache");
    let root = |name: &str, stamp_age: Option<&str>| {
        let dir = cache.join(name);
        std::fs::create_dir_all(dir.join("usr")).unwrap();
        if let Some(age) = stamp_age {
            let stamp = dir.join(".mvh-stamp");
            std::fs::write(&stamp, "suite=trixie recipe=0 packages=old").unwrap();
            let touched = std::process::Command::new("touch")
                .args(["-d", age])
                .arg(&stamp)
                .status()
                .unwrap();
            assert!(touched.success());
        }
    };
    root("trixie-0ld", Some("30 days ago"));
    root("trixie-recent", Some("3 days ago"));
    root("trixie-building", Some("30 days ago"));
    root("trixie-unfinished", None);
    root("sid-0ld", Some("30 days ago"));
    // A builder holds trixie-building's lock while the script runs.
    let ready = cache.join("holder-ready");
    let mut holder = std::process::Command::new("flock")
        .arg(cache.join("trixie-building.lock"))
        .args(["sh", "-c", "touch \"$0\" && exec sleep 60"])
        .arg(&ready)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ready.exists() {
        assert!(start.elapsed().as_secs() < 10, "flock never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pruned = std::process::Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/runtime-root.sh"),
    )
    .args(["--prune", "trixie"])
    .env("MVH_ROOTS", cache.path())
    .output()
    .unwrap();
    // Stopped by its PID, whatever happened above.
    let _ = holder.kill();
    let _ = holder.wait();
    let log = String::from_utf8_lossy(&pruned.stderr);
    assert!(pruned.status.success(), "runtime-root.sh --prune: {log}");
    let left: Vec<bool> = [
        "trixie-0ld",
        "trixie-recent",
        "trixie-building",
        "trixie-unfinished",
        "sid-0ld",
    ]
    .iter()
    .map(|name| cache.join(name).exists())
    .collect();
    assert_eq!(left, [false, true, true, true, true], "{log}");
    assert!(log.contains("trixie-0ld"), "the removal is said: {log}");
}
