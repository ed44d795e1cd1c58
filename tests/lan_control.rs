//! Control experiments, without our plugin: they prove the problem the plugin solves exists
//! on the test LAN (a node cannot reach its own macvlan pods), that the usual shim recipe
//! fixes it but brings ARP flux, and that the test bed cleans up after itself.

mod common;

use common::*;
use serde_json::json;

const POD_IP4: &str = "10.99.0.100";
const TCP_PORT: u16 = 8080;

/// Moves a bridge-mode macvlan on NODE1's eth0 into `pod` as `m0`, with `POD_IP4`.
fn hand_made_macvlan_pod(lan: &Lan, pod: &Pod) {
    let netns = pod.name();
    let add = format!("link add link eth0 name m0 netns {netns} type macvlan mode bridge");
    lan.node1.ip(add.split(' '));
    pod.ip(["addr", "add", &format!("{POD_IP4}/24"), "dev", "m0"]);
    pod.ip(["link", "set", "m0", "up"]);
}

/// The usual recipe: a bridge-mode macvlan `shim0` on NODE1's eth0 and a host route to the pod
/// through it (the shim needs no address of its own).
fn hand_made_shim(lan: &Lan) {
    let node1 = &lan.node1;
    node1.ip([
        "link", "add", "link", "eth0", "name", "shim0", "type", "macvlan", "mode", "bridge",
    ]);
    node1.ip(["link", "set", "shim0", "up"]);
    node1.ip([
        "route",
        "add",
        &format!("{POD_IP4}/32"),
        "dev",
        "shim0",
        "src",
        NODE1_IP4,
    ]);
}

#[test]
fn node_reaches_its_macvlan_pod_only_through_a_shim() {
    let lan = Lan::new();
    let pod = lan.pod("a");
    hand_made_macvlan_pod(&lan, &pod);

    // The LAN reaches the pod...
    assert!(lan.peer.ping(POD_IP4), "PEER -> pod");
    assert!(lan.node2.ping(POD_IP4), "NODE2 -> pod");
    // ...but macvlan keeps the pod and its own master apart: the problem.
    assert!(
        !lan.node1.ping(POD_IP4),
        "NODE1 -> pod works without a shim?"
    );
    assert!(!pod.ping(NODE1_IP4), "pod -> NODE1 works without a shim?");

    hand_made_shim(&lan);
    assert!(lan.node1.ping(POD_IP4), "NODE1 -> pod through the shim");
    assert!(pod.ping(NODE1_IP4), "pod -> NODE1 through the shim");
    let _server = pod.tcp_server(TCP_PORT);
    assert!(
        lan.node1.tcp_connect(POD_IP4, TCP_PORT),
        "NODE1 -> pod TCP through the shim"
    );
    assert!(lan.peer.tcp_connect(POD_IP4, TCP_PORT), "PEER -> pod TCP");
}

#[test]
fn a_plain_shim_answers_arp_for_the_node_address() {
    let lan = Lan::new();
    hand_made_shim(&lan);
    let eth0 = lan.node1.mac("eth0");
    let shim = lan.node1.mac("shim0");

    // ARP flux: both of NODE1's interfaces on the LAN answer for its address.
    let mut macs = lan.peer.arping("eth0", NODE1_IP4, 1);
    macs.sort();
    let mut both = vec![eth0.clone(), shim];
    both.sort();
    assert_eq!(macs, both, "replies from eth0 and from the shim");

    // With arp_filter=1 the shim no longer answers for an address routed out of eth0.
    lan.node1
        .run(["sysctl", "-qw", "net.ipv4.conf.shim0.arp_filter=1"]);
    assert_eq!(lan.peer.arping("eth0", NODE1_IP4, 1), vec![eth0]);
}

#[test]
fn reference_macvlan_plugin_has_the_same_problem() {
    let lan = Lan::new();
    let pod = lan.pod("ref");
    let data_dir = TempDir::new("host-local");
    let mut list = Conflist::new(json!({
        "cniVersion": "1.0.0",
        "name": "lan",
        "plugins": [{
            "type": "macvlan",
            "master": "eth0",
            "mode": "bridge",
            "ipam": {
                "type": "host-local",
                "dataDir": data_dir.str(),
                "ranges": [[{"subnet": SUBNET4, "rangeStart": POD_IP4, "rangeEnd": POD_IP4}]],
            },
        }],
    }));
    let at = Attachment::new(&pod);

    let result = list.add(&lan.node1, &at);
    let result = result.expect_ok();
    assert_eq!(result["ips"][0]["address"], format!("{POD_IP4}/24"));
    assert_eq!(
        host_local_allocations(data_dir.path()),
        vec![format!("lan/{POD_IP4}")]
    );
    list.check(&lan.node1, &at).expect_ok();

    assert!(lan.peer.ping(POD_IP4), "PEER -> pod");
    assert!(
        !lan.node1.ping(POD_IP4),
        "NODE1 -> pod works with the reference plugin?"
    );

    list.del(&lan.node1, &at).expect_ok();
    assert!(!pod.has_link("eth0"), "DEL removes the pod's interface");
    assert_eq!(
        host_local_allocations(data_dir.path()),
        Vec::<String>::new()
    );
}

#[test]
fn dropping_a_lan_deletes_its_namespaces_even_on_panic() {
    let lan = Lan::new();
    let _pod = lan.pod("kept");
    let names = lan.namespaces();
    assert_eq!(names.len(), 5, "lan, node1, node2, peer, pod: {names:?}");
    drop(lan);
    assert!(names
        .iter()
        .all(|n| !std::path::Path::new("/run/netns").join(n).exists()));

    let leaked = std::thread::spawn(|| {
        let lan = Lan::new();
        let _pod = lan.pod("panics");
        let names = lan.namespaces();
        std::panic::panic_any(names);
    })
    .join()
    .expect_err("the thread panics");
    let names = leaked.downcast::<Vec<String>>().expect("names");
    assert_eq!(names.len(), 5);
    assert!(names
        .iter()
        .all(|n| !std::path::Path::new("/run/netns").join(n).exists()));
}

#[test]
fn leftovers_of_a_dead_test_process_are_removed() {
    // No process has a pid above the kernel's maximum (4194304), so this one is dead.
    let stale = format!("mvh-999999999-{}-lan", std::process::id());
    let stale_ns = Netns::create(&stale);
    std::mem::forget(stale_ns); // Leak it, as a killed run would.
    let stale_dir = std::env::temp_dir().join(&stale);
    std::fs::create_dir_all(&stale_dir).unwrap();

    remove_stale_leftovers();
    assert!(!std::path::Path::new("/run/netns").join(&stale).exists());
    assert!(!stale_dir.exists());
}

#[test]
fn temp_dirs_are_removed_on_drop() {
    let dir = TempDir::new("probe");
    std::fs::write(dir.join("file"), b"x").unwrap();
    let path = dir.path().to_path_buf();
    drop(dir);
    assert!(!path.exists());
}
