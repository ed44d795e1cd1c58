//! Host access through the shared shim (issue 4), end to end on the test LAN.
//!
//! Every scenario runs in chained mode (the reference `macvlan` + `host-local`, then
//! `macvlan-host`, cniVersion 1.0.0) and in interface mode (`macvlan-host` alone with `ipam`,
//! cniVersion 1.1.0); the ones about addresses also run for IPv4, IPv6 and dual stack. A
//! scenario is one function; `cases!` turns it into one `#[test]` per setup.

mod common;

use common::*;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::Path;
use std::thread;

/// The shim `macvlan-host` makes for master `eth0`.
const SHIM: &str = "mvh-eth0";
/// The network's name (host-local keeps its allocations under `dataDir/<name>`).
const NETWORK: &str = "lan";
const TCP_PORT: u16 = 8080;

// ---------------------------------------------------------------------------------------------
// Setups
// ---------------------------------------------------------------------------------------------

/// Who creates the pod's macvlan.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wiring {
    /// The reference `macvlan` plugin (with host-local), then ours in the same conflist.
    Chained,
    /// Ours alone, with `ipam`.
    Interface,
}

/// The address families the pods get.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Family {
    V4,
    V6,
    Dual,
}

impl Family {
    fn has_v4(self) -> bool {
        self != Family::V6
    }
    fn has_v6(self) -> bool {
        self != Family::V4
    }
}

/// A host-local range per family: (rangeStart, rangeEnd).
#[derive(Clone, Copy)]
struct Pool {
    v4: (&'static str, &'static str),
    v6: (&'static str, &'static str),
}

/// Pods on NODE1 and pods on NODE2 (each node has its own host-local store: disjoint ranges).
const NODE1_POOL: Pool = Pool {
    v4: ("10.99.0.100", "10.99.0.149"),
    v6: ("fd99::100", "fd99::149"),
};
const NODE2_POOL: Pool = Pool {
    v4: ("10.99.0.150", "10.99.0.199"),
    v6: ("fd99::150", "fd99::199"),
};
/// One address per family: every pod gets the same ones.
const ONE_ADDRESS: Pool = Pool {
    v4: ("10.99.0.100", "10.99.0.100"),
    v6: ("fd99::100", "fd99::100"),
};
/// NODE1's own addresses: a pod must not get them.
const NODE1_ADDRESSES: Pool = Pool {
    v4: (NODE1_IP4, NODE1_IP4),
    v6: (NODE1_IP6, NODE1_IP6),
};

/// One `#[test]` per setup: `cases!(scenario { test_name: (args...), ... })` makes module
/// `scenario` whose tests call the function `scenario(args...)`.
macro_rules! cases {
    ($scenario:ident { $($test:ident: ($($arg:expr),* $(,)?)),* $(,)? }) => {
        mod $scenario {
            use super::*;
            $(
                #[test]
                fn $test() {
                    super::$scenario($($arg),*)
                }
            )*
        }
    };
}

// ---------------------------------------------------------------------------------------------
// A network configuration and its runtime side
// ---------------------------------------------------------------------------------------------

/// One network on one node: its conflist and the directories its plugins keep state in.
struct Net {
    list: Value,
    data_dir: TempDir,
    state_dir: TempDir,
}

impl Net {
    fn new(wiring: Wiring, family: Family, pool: Pool) -> Net {
        let data_dir = TempDir::new("host-local");
        let state_dir = TempDir::new("state");
        let mut ranges = Vec::new();
        if family.has_v4() {
            ranges
                .push(json!([{"subnet": SUBNET4, "rangeStart": pool.v4.0, "rangeEnd": pool.v4.1}]));
        }
        if family.has_v6() {
            ranges
                .push(json!([{"subnet": SUBNET6, "rangeStart": pool.v6.0, "rangeEnd": pool.v6.1}]));
        }
        let ipam = json!({"type": "host-local", "dataDir": data_dir.str(), "ranges": ranges});
        let mut ours = json!({"type": OUR_TYPE, "stateDir": state_dir.str()});
        let list = match wiring {
            // No `master` for ours: it must find the pod link's parent itself.
            Wiring::Chained => json!({
                "cniVersion": "1.0.0",
                "name": NETWORK,
                "plugins": [
                    {"type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": ipam},
                    ours,
                ],
            }),
            Wiring::Interface => {
                ours["master"] = json!("eth0");
                ours["ipam"] = ipam;
                json!({"cniVersion": "1.1.0", "name": NETWORK, "plugins": [ours]})
            }
        };
        Net {
            list,
            data_dir,
            state_dir,
        }
    }

    fn plugins(&mut self) -> &mut Vec<Value> {
        self.list["plugins"].as_array_mut().expect("plugins")
    }

    /// Our plugin's entry in the list, to add keys to.
    fn ours(&mut self) -> &mut Value {
        self.plugins().last_mut().expect("our plugin")
    }

    /// The entry that creates the pod's macvlan (reference macvlan, or ours).
    fn pod_creator(&mut self) -> &mut Value {
        &mut self.plugins()[0]
    }

    /// A runtime's view of this network: a fresh libcni-like runner without cached results.
    fn conflist(&self) -> Conflist {
        Conflist::new(self.list.clone())
    }

    /// The same pods without `macvlan-host`'s host access: the control.
    fn without_host_access(&self) -> Conflist {
        let mut list = self.list.clone();
        let plugins = list["plugins"].as_array_mut().expect("plugins");
        if plugins.len() > 1 {
            plugins.pop();
        } else {
            plugins[0]["hostAccess"] = json!("none");
        }
        Conflist::new(list)
    }

    /// Our plugin's configuration as a runtime passes it to GC and STATUS (cniVersion 1.1.0).
    fn our_conf(&self) -> Value {
        self.our_conf_at("1.1.0")
    }

    /// Our plugin's entry with what libcni injects: `name` and `cniVersion`.
    fn our_conf_at(&self, cni_version: &str) -> Value {
        let mut conf = self.list["plugins"]
            .as_array()
            .and_then(|p| p.last())
            .expect("our plugin")
            .clone();
        conf["name"] = json!(NETWORK);
        conf["cniVersion"] = json!(cni_version);
        conf
    }

    /// Every entry under `stateDir` besides the lock and the three fixed folders: records,
    /// owner files, shim user markers and users folders.
    fn state_entries(&self) -> Vec<String> {
        let mut found = Vec::new();
        walk(self.state_dir.path(), "", &mut found);
        // The directories themselves, the lock, and the IPAM version cache (what the IPAM
        // binary speaks, not anything of a pod) are no leftovers.
        found.retain(|e| {
            !["lock", "attachments", "owners", "users"].contains(&e.as_str())
                && !e.starts_with("ipam-versions")
        });
        found.sort();
        found
    }

    fn record_path(&self, at: &Attachment) -> std::path::PathBuf {
        self.state_dir.join(format!(
            "attachments/{NETWORK}:{}:{}.json",
            at.container_id, at.ifname
        ))
    }

    /// Nothing of these pods is left on the node or in the plugins' state.
    fn assert_clean(&self, node: &Netns, ips: &[IpAddr], what: &str) {
        self.assert_no_host_access(node, ips, what);
        assert_eq!(
            host_local_allocations(self.data_dir.path()),
            Vec::<String>::new(),
            "{what}: host-local allocations"
        );
    }

    /// Nothing of our host access is left: no shim, route, neighbour entry or state file.
    fn assert_no_host_access(&self, node: &Netns, ips: &[IpAddr], what: &str) {
        assert!(!node.has_link(SHIM), "{what}: the shim is left");
        assert_no_trace_on_node(node, ips, what);
        assert_eq!(
            self.state_entries(),
            Vec::<String>::new(),
            "{what}: stateDir"
        );
    }
}

/// Relative paths of everything below `dir`.
fn walk(dir: &Path, prefix: &str, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            walk(&entry.path(), &format!("{name}/"), found);
        }
        found.push(name);
    }
}

/// No route to and no neighbour entry for any of `ips` on the node.
fn assert_no_trace_on_node(node: &Netns, ips: &[IpAddr], what: &str) {
    for ip in ips {
        assert!(
            host_route(node, *ip).is_none(),
            "{what}: the node's route to {ip} is left"
        );
        let left: Vec<Value> = node
            .neigh()
            .into_iter()
            .filter(|n| dst_is(n, *ip))
            .collect();
        assert!(
            left.is_empty(),
            "{what}: neighbour entries for {ip}: {left:?}"
        );
    }
}

/// Whether an `ip -j route`/`ip -j neigh` entry's `dst` is exactly `ip` (a /32 or /128).
fn dst_is(entry: &Value, ip: IpAddr) -> bool {
    entry["dst"].as_str().and_then(|d| d.parse::<IpAddr>().ok()) == Some(ip)
}

fn family_flag(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "-4"
    } else {
        "-6"
    }
}

/// The node's /32 (/128) route to `ip`, if any.
fn host_route(node: &Netns, ip: IpAddr) -> Option<Value> {
    node.routes(family_flag(ip))
        .into_iter()
        .find(|r| dst_is(r, ip))
}

/// The neighbour entry for `ip` on `dev`, if any.
fn neighbour(ns: &Netns, dev: &str, ip: IpAddr) -> Option<Value> {
    ns.neigh()
        .into_iter()
        .find(|n| n["dev"] == dev && dst_is(n, ip))
}

fn is_permanent(entry: &Value) -> bool {
    entry["state"]
        .as_array()
        .is_some_and(|s| s.iter().any(|v| v == "PERMANENT"))
}

/// The node's address of `ip`'s family.
fn node_ip(node: &Node, ip: IpAddr) -> IpAddr {
    let text = if ip.is_ipv4() { node.ip4 } else { node.ip6 };
    text.parse().expect("node address")
}

/// The error message (and details) of a failed plugin call.
fn message(out: &CniOutput) -> String {
    out.expect_error();
    format!(
        "{} {}",
        out.stdout["msg"].as_str().unwrap_or_default(),
        out.stdout["details"].as_str().unwrap_or_default()
    )
}

fn assert_mentions(out: &CniOutput, needles: &[&str], what: &str) {
    let msg = message(out);
    for needle in needles {
        assert!(
            msg.contains(needle),
            "{what}: the error does not mention {needle:?}: {msg}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------------

/// A pod with an attachment of the network on some node.
struct Attached {
    pod: Option<Pod>,
    at: Attachment,
    ips: Vec<IpAddr>,
}

impl Attached {
    fn pod(&self) -> &Pod {
        self.pod.as_ref().expect("the pod's namespace")
    }

    fn ip(&self, v4: bool) -> IpAddr {
        *self
            .ips
            .iter()
            .find(|ip| ip.is_ipv4() == v4)
            .expect("an address of that family")
    }
}

/// The addresses of a CNI result.
fn result_ips(result: &Value) -> Vec<IpAddr> {
    result["ips"]
        .as_array()
        .unwrap_or_else(|| panic!("no ips in {result}"))
        .iter()
        .map(|ip| {
            let cidr = ip["address"].as_str().expect("address");
            cidr.split('/').next().unwrap().parse().expect("an IP")
        })
        .collect()
}

/// A new pod `name` attached through `list` on `node`; panics unless ADD succeeds.
fn attach(lan: &Lan, node: &Netns, list: &mut Conflist, name: &str) -> Attached {
    let pod = lan.pod(name);
    let at = Attachment::new(&pod);
    let out = list.add(node, &at);
    let ips = result_ips(out.expect_ok());
    Attached {
        pod: Some(pod),
        at,
        ips,
    }
}

fn assert_pings(label: &str, from: &Netns, to: IpAddr) {
    assert!(from.ping(&to.to_string()), "{label}: ping {to} fails");
}

fn assert_tcp(label: &str, from: &Netns, to: IpAddr) {
    assert!(
        from.tcp_connect(&to.to_string(), TCP_PORT),
        "{label}: TCP to {to}:{TCP_PORT} fails"
    );
}

/// NODE1 and its pod reach each other in every family of the pod, by ping and TCP.
fn assert_node_and_pod_talk(lan: &Lan, pod: &Attached) {
    let _node_server = lan.node1.tcp_server(TCP_PORT);
    let _pod_server = pod.pod().tcp_server(TCP_PORT);
    for &ip in &pod.ips {
        let node = node_ip(&lan.node1, ip);
        assert_pings("NODE1 -> pod", &lan.node1, ip);
        assert_pings("pod -> NODE1", pod.pod(), node);
        assert_tcp("NODE1 -> pod", &lan.node1, ip);
        assert_tcp("pod -> NODE1", pod.pod(), node);
    }
}

// ---------------------------------------------------------------------------------------------
// Reachability: the control, then every path
// ---------------------------------------------------------------------------------------------

cases!(every_path_works_only_with_host_access {
    chained_ipv4: (Wiring::Chained, Family::V4),
    chained_ipv6: (Wiring::Chained, Family::V6),
    chained_dual_stack: (Wiring::Chained, Family::Dual),
    interface_ipv4: (Wiring::Interface, Family::V4),
    interface_ipv6: (Wiring::Interface, Family::V6),
    interface_dual_stack: (Wiring::Interface, Family::Dual),
});

fn every_path_works_only_with_host_access(wiring: Wiring, family: Family) {
    let lan = Lan::new();
    let net1 = Net::new(wiring, family, NODE1_POOL);

    // Control: the same pod without macvlan-host is on the LAN but out of NODE1's reach.
    let mut control = net1.without_host_access();
    let alone = attach(&lan, &lan.node1, &mut control, "control");
    for &ip in &alone.ips {
        assert_pings("control: PEER -> pod", &lan.peer, ip);
        assert!(
            !lan.node1.ping(&ip.to_string()),
            "control: NODE1 reaches its pod {ip} without macvlan-host"
        );
    }
    control.del(&lan.node1, &alone.at).expect_ok();

    let net2 = Net::new(wiring, family, NODE2_POOL);
    let (mut list1, mut list2) = (net1.conflist(), net2.conflist());
    let a = attach(&lan, &lan.node1, &mut list1, "a");
    let b = attach(&lan, &lan.node1, &mut list1, "b");
    let c = attach(&lan, &lan.node2, &mut list2, "c");
    assert_eq!(a.ips.len(), if family == Family::Dual { 2 } else { 1 });

    assert_node_and_pod_talk(&lan, &a);
    let _server = a.pod().tcp_server(TCP_PORT);
    for v4 in [true, false]
        .into_iter()
        .filter(|v4| a.ips.iter().any(|ip| ip.is_ipv4() == *v4))
    {
        let (a_ip, b_ip, c_ip) = (a.ip(v4), b.ip(v4), c.ip(v4));
        assert_pings("PEER -> pod", &lan.peer, a_ip);
        assert_pings("pod -> PEER", a.pod(), node_ip(&lan.peer, a_ip));
        assert_tcp("PEER -> pod", &lan.peer, a_ip);
        assert_pings("pod -> pod on the same node", a.pod(), b_ip);
        assert_pings("pod -> pod on the same node", b.pod(), a_ip);
        assert_pings("pod on NODE1 -> pod on NODE2", a.pod(), c_ip);
        assert_pings("pod on NODE2 -> pod on NODE1", c.pod(), a_ip);
        assert_pings("NODE1 -> pod on NODE2", &lan.node1, c_ip);
        assert_pings("pod on NODE2 -> NODE1", c.pod(), node_ip(&lan.node1, c_ip));
        assert_pings("NODE2 -> its own pod", &lan.node2, c_ip);
    }
}

// ---------------------------------------------------------------------------------------------
// No ARP flux, no sysctl surprises
// ---------------------------------------------------------------------------------------------

/// The node-wide sysctl settings a test applies inside NODE1 before any pod exists.
#[derive(Clone, Copy, Debug)]
enum Profile {
    Defaults,
    StrictRpFilter,
    ArpHardened,
}

impl Profile {
    fn sysctls(self) -> &'static [&'static str] {
        match self {
            Profile::Defaults => &[],
            Profile::StrictRpFilter => &["net.ipv4.conf.all.rp_filter=1"],
            Profile::ArpHardened => &[
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
                "net.ipv4.conf.all.rp_filter=1",
            ],
        }
    }
}

/// Every `all` and `default` interface setting of `node`, as `sysctl -a` prints them.
fn node_wide_sysctls(node: &Netns) -> String {
    node.run([
        "sysctl",
        "-e",
        "-a",
        "-r",
        r"^net\.ipv[46]\.conf\.(all|default)\.",
    ])
}

/// PEER's neighbour entry for `ip` on eth0: its MAC.
fn peer_sees(lan: &Lan, ip: &str) -> String {
    let ip: IpAddr = ip.parse().unwrap();
    let entry = neighbour(&lan.peer, "eth0", ip).unwrap_or_else(|| {
        panic!(
            "PEER has no neighbour entry for {ip}: {:?}",
            lan.peer.neigh()
        )
    });
    entry["lladdr"].as_str().unwrap_or_default().to_lowercase()
}

cases!(one_arp_answer_under_every_sysctl_profile {
    chained_defaults: (Wiring::Chained, Profile::Defaults),
    chained_strict_rp_filter: (Wiring::Chained, Profile::StrictRpFilter),
    chained_arp_hardened: (Wiring::Chained, Profile::ArpHardened),
    interface_defaults: (Wiring::Interface, Profile::Defaults),
    interface_strict_rp_filter: (Wiring::Interface, Profile::StrictRpFilter),
    interface_arp_hardened: (Wiring::Interface, Profile::ArpHardened),
});

fn one_arp_answer_under_every_sysctl_profile(wiring: Wiring, profile: Profile) {
    let lan = Lan::new();
    for setting in profile.sysctls() {
        lan.node1.run(["sysctl", "-qw", setting]);
    }
    let node_wide = node_wide_sysctls(&lan.node1);
    let eth0 = lan.node1.mac("eth0");
    // PEER knows NODE1 (an entry the node's ARP from the shim would overwrite).
    assert_pings("PEER -> NODE1", &lan.peer, NODE1_IP4.parse().unwrap());
    assert_pings("PEER -> NODE1", &lan.peer, NODE1_IP6.parse().unwrap());

    let net = Net::new(wiring, Family::Dual, NODE1_POOL);
    let mut list = net.conflist();
    let pod = attach(&lan, &lan.node1, &mut list, "a");
    let shim = lan.node1.mac(SHIM);
    assert_ne!(shim, eth0);
    let shim_addrs = lan.node1.ip_json(["addr", "show", "dev", SHIM]);
    assert_eq!(
        shim_addrs[0]["addr_info"],
        json!([]),
        "the shim has no address: {shim_addrs}"
    );
    assert_eq!(
        lan.peer.arping("eth0", NODE1_IP4, 1),
        vec![eth0.clone()],
        "ARP for NODE1 before node <-> pod traffic"
    );

    assert_node_and_pod_talk(&lan, &pod);

    assert_eq!(
        lan.peer.arping("eth0", NODE1_IP4, 1),
        vec![eth0.clone()],
        "ARP for NODE1 after node <-> pod traffic"
    );
    for ip in [NODE1_IP4, NODE1_IP6] {
        assert_eq!(peer_sees(&lan, ip), eth0, "PEER's entry for NODE1 {ip}");
    }
    assert_eq!(
        node_wide_sysctls(&lan.node1),
        node_wide,
        "NODE1's all/default sysctls changed"
    );
}

// ---------------------------------------------------------------------------------------------
// Many pods at once
// ---------------------------------------------------------------------------------------------

cases!(thirty_two_pods_added_and_deleted_concurrently {
    chained: (Wiring::Chained),
    interface: (Wiring::Interface),
});

fn thirty_two_pods_added_and_deleted_concurrently(wiring: Wiring) {
    const PODS: usize = 32;
    let lan = Lan::new();
    let net = Net::new(wiring, Family::Dual, NODE1_POOL);
    let pods: Vec<Pod> = (0..PODS).map(|i| lan.pod(&format!("p{i}"))).collect();
    let (lan_ref, net_ref) = (&lan, &net);

    // Each pod has its own runtime-side runner (result cache), as parallel runtime calls do.
    let added: Vec<(Conflist, Attachment, Vec<IpAddr>)> = thread::scope(|s| {
        let threads: Vec<_> = pods
            .iter()
            .map(|pod| {
                s.spawn(move || {
                    let mut list = net_ref.conflist();
                    let at = Attachment::new(pod);
                    let ips = result_ips(list.add(&lan_ref.node1, &at).expect_ok());
                    (list, at, ips)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("ADD"))
            .collect()
    });

    let all_ips: Vec<IpAddr> = added.iter().flat_map(|(_, _, ips)| ips.clone()).collect();
    let distinct: std::collections::HashSet<_> = all_ips.iter().collect();
    assert_eq!(distinct.len(), 2 * PODS, "every pod has its own addresses");
    for &ip in &all_ips {
        let route = host_route(&lan.node1, ip).unwrap_or_else(|| panic!("no route to {ip}"));
        assert_eq!(route["dev"], SHIM, "route to {ip}");
        let entry = neighbour(&lan.node1, SHIM, ip).unwrap_or_else(|| panic!("no entry for {ip}"));
        assert!(is_permanent(&entry), "{entry}");
    }
    for (list, at, _) in &added {
        list.check(&lan.node1, at).expect_ok();
    }
    for i in [0, PODS / 2, PODS - 1] {
        let (_, _, ips) = &added[i];
        for &ip in ips {
            assert_pings("NODE1 -> pod", &lan.node1, ip);
            assert_pings("pod -> NODE1", &pods[i], node_ip(&lan.node1, ip));
        }
    }

    let deleted: Vec<CniOutput> = thread::scope(|s| {
        let threads: Vec<_> = added
            .into_iter()
            .map(|(mut list, at, _)| s.spawn(move || list.del(&lan_ref.node1, &at)))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("DEL"))
            .collect()
    });
    for out in &deleted {
        out.expect_ok();
    }
    net.assert_clean(&lan.node1, &all_ips, "after 32 concurrent DELs");
}

// ---------------------------------------------------------------------------------------------
// DEL, whatever is already gone
// ---------------------------------------------------------------------------------------------

/// What is already gone (or how the runtime calls) when DEL comes.
#[derive(Clone, Copy, Debug)]
enum Degraded {
    Nothing,
    Repeated,
    NoPrevResult,
    NetnsGone,
    NetnsGoneAndEmpty,
    ShimRemoved,
    RecordRemoved,
    MasterRemoved,
}

impl Degraded {
    /// Dual stack where the cleanup depends on what DEL is given; IPv4 where the case is about
    /// what is gone (an IPv6 address costs a second of duplicate address detection on ADD).
    fn family(self) -> Family {
        match self {
            Degraded::Nothing | Degraded::NoPrevResult => Family::Dual,
            _ => Family::V4,
        }
    }
}

cases!(del_succeeds_whatever_is_gone {
    chained: (Wiring::Chained),
    interface: (Wiring::Interface),
});

fn del_succeeds_whatever_is_gone(wiring: Wiring) {
    use Degraded::*;
    let lan = Lan::new();
    // In this order: the master's removal ends the node's LAN.
    let cases = [
        Nothing,
        Repeated,
        NoPrevResult,
        NetnsGone,
        NetnsGoneAndEmpty,
        ShimRemoved,
        RecordRemoved,
        MasterRemoved,
    ];
    for case in cases {
        let what = format!("DEL with {case:?}");
        let net = Net::new(wiring, case.family(), NODE1_POOL);
        let mut list = net.conflist();
        let mut pod = attach(
            &lan,
            &lan.node1,
            &mut list,
            &format!("{case:?}").to_lowercase(),
        );
        assert_pings(&what, &lan.node1, pod.ips[0]);
        let mut at = pod.at.clone();
        match case {
            Nothing => {}
            Repeated => {
                list.del(&lan.node1, &at).expect_ok();
            }
            // A runtime that lost its result cache.
            NoPrevResult => list = net.conflist(),
            NetnsGone => drop(pod.pod.take()),
            NetnsGoneAndEmpty => {
                drop(pod.pod.take());
                at = at.without_netns();
            }
            ShimRemoved => {
                lan.node1.ip(["link", "del", SHIM]);
            }
            RecordRemoved => std::fs::remove_file(net.record_path(&at)).expect("record file"),
            MasterRemoved => {
                lan.node1.ip(["link", "del", "eth0"]);
            }
        };
        if let (MasterRemoved, Wiring::Chained) = (case, wiring) {
            // The reference macvlan's DEL fails without its master ("Link not found", from
            // loading its configuration), whatever runs before it. Ours runs first, as a
            // runtime runs the list, and must succeed.
            let mut conf = net.our_conf_at("1.0.0");
            conf["prevResult"] = list.cached(&at).expect("cached result").clone();
            let out = Plugin::ours().del(&lan.node1, &at, &conf);
            assert!(out.success(), "{what}: {out:?}");
            net.assert_no_host_access(&lan.node1, &pod.ips, &what);
            continue;
        }
        let out = list.del(&lan.node1, &at);
        assert!(out.success(), "{what}: {out:?}");
        if let Some(pod) = &pod.pod {
            assert!(!pod.has_link("eth0"), "{what}: the pod's interface is left");
        }
        match case {
            // Without its record the plugin cannot know what it made; DEL must still succeed
            // so that the plugins behind it release the pod's address.
            RecordRemoved => assert_eq!(
                host_local_allocations(net.data_dir.path()),
                Vec::<String>::new(),
                "{what}: host-local allocations"
            ),
            _ => net.assert_clean(&lan.node1, &pod.ips, &what),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A late DEL of an old pod and a newer pod with the same address
// ---------------------------------------------------------------------------------------------

cases!(late_del_leaves_the_newer_pods_route_alone {
    chained: (Wiring::Chained),
    interface: (Wiring::Interface),
});

fn late_del_leaves_the_newer_pods_route_alone(wiring: Wiring) {
    let lan = Lan::new();
    let net = Net::new(wiring, Family::Dual, ONE_ADDRESS);
    let mut list = net.conflist();
    let mut old = attach(&lan, &lan.node1, &mut list, "old");
    // The old pod is gone (its namespace too) but its DEL has not come yet, and the IPAM
    // store has forgotten it: its addresses are handed out again.
    drop(old.pod.take());
    for allocation in host_local_allocations(net.data_dir.path()) {
        std::fs::remove_file(net.data_dir.join(&allocation)).expect("allocation file");
    }
    let new = attach(&lan, &lan.node1, &mut list, "new");
    assert_eq!(new.ips, old.ips, "the new pod got the old pod's addresses");
    let new_mac = new.pod().mac("eth0");

    list.del(&lan.node1, &old.at).expect_ok();

    for &ip in &new.ips {
        let route = host_route(&lan.node1, ip).unwrap_or_else(|| panic!("route to {ip} removed"));
        assert_eq!(route["dev"], SHIM);
        let entry =
            neighbour(&lan.node1, SHIM, ip).unwrap_or_else(|| panic!("entry for {ip} removed"));
        assert_eq!(
            entry["lladdr"],
            new_mac.as_str(),
            "{ip} still leads to the new pod"
        );
        assert_pings("NODE1 -> new pod", &lan.node1, ip);
    }
    list.check(&lan.node1, &new.at).expect_ok();
    list.del(&lan.node1, &new.at).expect_ok();
    net.assert_clean(&lan.node1, &new.ips, "after both DELs");
}

// ---------------------------------------------------------------------------------------------
// CHECK names what is missing
// ---------------------------------------------------------------------------------------------

/// One piece of host access, removed or changed by hand.
#[derive(Clone, Copy, Debug)]
enum Breakage {
    ShimRemoved,
    /// The node's route to the pod's address of that family (true: IPv4).
    RouteRemoved(bool),
    NodeNeighbourRemoved(bool),
    /// The pod's entry for the node's address of that family.
    PodNeighbourRemoved(bool),
    ShimMacChanged,
    ShimDown,
}

impl Breakage {
    /// The pod's addresses for this case: IPv6 only where the case is about IPv6 (each IPv6
    /// address costs a second of duplicate address detection on ADD).
    fn family(self) -> Family {
        use Breakage::*;
        match self {
            RouteRemoved(false) | NodeNeighbourRemoved(false) | PodNeighbourRemoved(false) => {
                Family::V6
            }
            _ => Family::V4,
        }
    }
}

cases!(check_names_the_missing_piece {
    chained: (Wiring::Chained),
    interface: (Wiring::Interface),
});

fn check_names_the_missing_piece(wiring: Wiring) {
    use Breakage::*;
    let lan = Lan::new();
    let cases = [
        ShimRemoved,
        RouteRemoved(true),
        RouteRemoved(false),
        NodeNeighbourRemoved(true),
        NodeNeighbourRemoved(false),
        PodNeighbourRemoved(true),
        PodNeighbourRemoved(false),
        ShimMacChanged,
        ShimDown,
    ];
    let mut first_shim_mac = None;
    for (i, case) in cases.into_iter().enumerate() {
        let what = format!("CHECK after {case:?}");
        let net = Net::new(wiring, case.family(), NODE1_POOL);
        let mut list = net.conflist();
        let pod = attach(&lan, &lan.node1, &mut list, &format!("c{i}"));
        // Every case re-creates the shim: always with the same MAC.
        let shim_mac = lan.node1.mac(SHIM);
        assert_eq!(first_shim_mac.get_or_insert(shim_mac.clone()), &shim_mac);
        list.check(&lan.node1, &pod.at).expect_ok();
        let node1 = &lan.node1;
        let needles: Vec<String> = match case {
            ShimRemoved => {
                node1.ip(["link", "del", SHIM]);
                vec![SHIM.into(), "does not exist".into()]
            }
            RouteRemoved(v4) => {
                let ip = pod.ip(v4);
                node1.ip([
                    family_flag(ip),
                    "route",
                    "del",
                    &ip.to_string(),
                    "dev",
                    SHIM,
                ]);
                vec!["route".into(), ip.to_string()]
            }
            NodeNeighbourRemoved(v4) => {
                let ip = pod.ip(v4);
                node1.ip(["neigh", "del", &ip.to_string(), "dev", SHIM]);
                vec!["neighbour".into(), ip.to_string()]
            }
            PodNeighbourRemoved(v4) => {
                let node = node_ip(node1, pod.ip(v4));
                pod.pod()
                    .ip(["neigh", "del", &node.to_string(), "dev", "eth0"]);
                vec!["pod".into(), "neighbour".into(), node.to_string()]
            }
            ShimMacChanged => {
                node1.ip(["link", "set", SHIM, "address", "02:00:00:00:be:ef"]);
                vec![SHIM.into(), "MAC".into()]
            }
            ShimDown => {
                node1.ip(["link", "set", SHIM, "down"]);
                vec![SHIM.into(), "down".into()]
            }
        };
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        assert_mentions(&list.check(&lan.node1, &pod.at), &needles, &what);
        list.del(&lan.node1, &pod.at).expect_ok();
        net.assert_clean(&lan.node1, &pod.ips, &format!("DEL after {case:?}"));
    }
}

// ---------------------------------------------------------------------------------------------
// GC and STATUS
// ---------------------------------------------------------------------------------------------

/// Runs our GC with `key` listing `keep` as the attachments to keep.
fn gc(lan: &Lan, net: &Net, key: &str, keep: &[&Attached]) -> CniOutput {
    let mut conf = net.our_conf();
    let listed: Vec<Value> = keep
        .iter()
        .map(|p| json!({"containerID": p.at.container_id, "ifname": p.at.ifname}))
        .collect();
    conf[key] = json!(listed);
    Plugin::ours().run(&lan.node1, "GC", &Attachment::none(), &conf)
}

/// The pod's host access is in place: routes, neighbour entries and record.
fn assert_attached(lan: &Lan, net: &Net, list: &Conflist, pod: &Attached, what: &str) {
    for &ip in &pod.ips {
        assert!(
            host_route(&lan.node1, ip).is_some(),
            "{what}: route to {ip}"
        );
        assert!(
            neighbour(&lan.node1, SHIM, ip).is_some(),
            "{what}: entry for {ip}"
        );
        assert_pings(what, &lan.node1, ip);
    }
    assert!(net.record_path(&pod.at).exists(), "{what}: record");
    list.check(&lan.node1, &pod.at).expect_ok();
}

/// Nothing of the pod's host access is left: routes, neighbour entries, its state files.
fn assert_detached(lan: &Lan, net: &Net, pod: &Attached, what: &str) {
    assert_no_trace_on_node(&lan.node1, &pod.ips, what);
    let id = &pod.at.container_id;
    let left: Vec<String> = net
        .state_entries()
        .into_iter()
        .filter(|e| e.contains(id.as_str()))
        .collect();
    assert!(left.is_empty(), "{what}: state files left: {left:?}");
    for ip in &pod.ips {
        assert!(
            !net.state_dir.join(format!("owners/{ip}")).exists(),
            "{what}: owner file of {ip}"
        );
    }
}

cases!(gc_removes_exactly_the_attachments_not_listed {
    chained: (Wiring::Chained),
    interface: (Wiring::Interface),
});

fn gc_removes_exactly_the_attachments_not_listed(wiring: Wiring) {
    let lan = Lan::new();
    let net = Net::new(wiring, Family::Dual, NODE1_POOL);
    let mut list = net.conflist();
    let a = attach(&lan, &lan.node1, &mut list, "a");
    let b = attach(&lan, &lan.node1, &mut list, "b");
    let c = attach(&lan, &lan.node1, &mut list, "c");

    gc(&lan, &net, "cni.dev/valid-attachments", &[&a, &b]).expect_ok();
    assert_detached(&lan, &net, &c, "GC keeping a and b: c");
    assert_attached(&lan, &net, &list, &a, "GC keeping a and b: a");
    assert_attached(&lan, &net, &list, &b, "GC keeping a and b: b");

    // The older key.
    gc(&lan, &net, "cni.dev/attachments", &[&a]).expect_ok();
    assert_detached(&lan, &net, &b, "GC keeping a: b");
    assert_attached(&lan, &net, &list, &a, "GC keeping a: a");

    gc(&lan, &net, "cni.dev/valid-attachments", &[]).expect_ok();
    assert_detached(&lan, &net, &a, "GC keeping nothing: a");
    assert!(
        !lan.node1.has_link(SHIM),
        "GC keeping nothing: the shim is left"
    );
    assert_eq!(net.state_entries(), Vec::<String>::new());
}

cases!(status_reports_whether_the_master_is_up {
    chained: (Wiring::Chained),
    interface: (Wiring::Interface),
});

fn status_reports_whether_the_master_is_up(wiring: Wiring) {
    let lan = Lan::new();
    let net = Net::new(wiring, Family::V4, NODE1_POOL);
    let status = || Plugin::ours().run(&lan.node1, "STATUS", &Attachment::none(), &net.our_conf());
    status().expect_ok();
    lan.node1.ip(["link", "set", "eth0", "down"]);
    assert_eq!(status().expect_error(), 50, "master down");
    lan.node1.ip(["link", "set", "eth0", "up"]);
    if wiring == Wiring::Chained {
        // Without `master` it is the default route's interface: the route comes back too.
        lan.node1.ip([
            "route", "replace", "default", "via", PEER_IP4, "dev", "eth0",
        ]);
    }
    status().expect_ok();
}

// ---------------------------------------------------------------------------------------------
// Refused configurations, and the ways out they name
// ---------------------------------------------------------------------------------------------

cases!(a_pod_address_of_the_node_is_refused {
    chained: (Wiring::Chained),
    interface: (Wiring::Interface),
});

fn a_pod_address_of_the_node_is_refused(wiring: Wiring) {
    let lan = Lan::new();
    let net = Net::new(wiring, Family::V4, NODE1_ADDRESSES);
    let mut list = net.conflist();
    let pod = lan.pod("thief");
    let at = Attachment::new(&pod);
    let out = list.add(&lan.node1, &at);
    assert_mentions(&out, &["local address", NODE1_IP4], "ADD of a node address");
    assert!(!lan.node1.has_link(SHIM), "a shim for a refused pod");
    assert!(
        host_route(&lan.node1, NODE1_IP4.parse().unwrap()).is_none(),
        "a route takes the node's own address away"
    );
    assert_pings(
        "NODE1 -> PEER after the refusal",
        &lan.node1,
        PEER_IP4.parse().unwrap(),
    );
    list.del(&lan.node1, &at).expect_ok();
    net.assert_clean(&lan.node1, &[], "DEL after the refused ADD");
}

cases!(a_pod_macvlan_not_in_bridge_mode_is_refused {
    chained: (Wiring::Chained),
    interface: (Wiring::Interface),
});

fn a_pod_macvlan_not_in_bridge_mode_is_refused(wiring: Wiring) {
    let lan = Lan::new();
    let mut net = Net::new(wiring, Family::V4, NODE1_POOL);
    net.pod_creator()["mode"] = json!("vepa");
    let mut list = net.conflist();
    let pod = lan.pod("vepa");
    let at = Attachment::new(&pod);
    let out = list.add(&lan.node1, &at);
    assert_mentions(&out, &["vepa", "hostAccess", "veth"], "ADD of a vepa pod");
    assert!(!lan.node1.has_link(SHIM), "a shim for a refused pod");
    list.del(&lan.node1, &at).expect_ok();
    net.assert_clean(&lan.node1, &[], "DEL after the refused ADD");
}

cases!(a_master_without_ipv4_needs_shim_addresses {
    chained: (Wiring::Chained),
    interface: (Wiring::Interface),
});

fn a_master_without_ipv4_needs_shim_addresses(wiring: Wiring) {
    const SHIM_IP4: &str = "10.99.0.250";
    let lan = Lan::new();
    lan.node1
        .ip(["addr", "del", &format!("{NODE1_IP4}/24"), "dev", "eth0"]);
    let mut net = Net::new(wiring, Family::V4, NODE1_POOL);
    let mut list = net.conflist();
    let pod = lan.pod("a");
    let at = Attachment::new(&pod);
    let out = list.add(&lan.node1, &at);
    assert_mentions(
        &out,
        &["eth0", "IPv4 address", "shimAddresses"],
        "ADD with no IPv4 address on the master",
    );
    list.del(&lan.node1, &at).expect_ok();
    net.assert_clean(&lan.node1, &[], "DEL after the refused ADD");

    net.ours()["shimAddresses"] = json!([format!("{SHIM_IP4}/32")]);
    let mut list = net.conflist();
    let pod = attach(&lan, &lan.node1, &mut list, "b");
    let on_shim = lan.node1.ip_json(["-4", "addr", "show", "dev", SHIM]);
    assert_eq!(
        on_shim[0]["addr_info"][0]["local"], SHIM_IP4,
        "the shim carries shimAddresses: {on_shim}"
    );
    let shim_ip: IpAddr = SHIM_IP4.parse().unwrap();
    let pod_ip = pod.ips[0];
    assert_eq!(host_route(&lan.node1, pod_ip).unwrap()["prefsrc"], SHIM_IP4);
    assert_pings("NODE1 -> pod", &lan.node1, pod_ip);
    assert_pings("pod -> the shim's address", pod.pod(), shim_ip);
    let _server = pod.pod().tcp_server(TCP_PORT);
    assert_tcp("NODE1 -> pod", &lan.node1, pod_ip);
    list.del(&lan.node1, &pod.at).expect_ok();
    net.assert_clean(&lan.node1, &pod.ips, "DEL with shimAddresses");
}

// ---------------------------------------------------------------------------------------------
// hostRoutes
// ---------------------------------------------------------------------------------------------

cases!(host_routes_lead_through_the_node {
    chained: (Wiring::Chained),
    interface: (Wiring::Interface),
});

fn host_routes_lead_through_the_node(wiring: Wiring) {
    // Addresses only the node has (on its lo): reachable from a pod only through the node.
    const BEHIND4: &str = "10.98.0.1";
    const BEHIND6: &str = "fd98::1";
    let lan = Lan::new();
    lan.node1
        .ip(["addr", "add", &format!("{BEHIND4}/32"), "dev", "lo"]);
    lan.node1
        .ip(["addr", "add", &format!("{BEHIND6}/128"), "dev", "lo"]);
    let behind: [IpAddr; 2] = [BEHIND4.parse().unwrap(), BEHIND6.parse().unwrap()];

    let mut net = Net::new(wiring, Family::Dual, NODE1_POOL);
    let mut list = net.conflist();
    let plain = attach(&lan, &lan.node1, &mut list, "plain");
    for ip in behind {
        assert!(
            !plain.pod().ping(&ip.to_string()),
            "control: a pod without hostRoutes reaches {ip}"
        );
    }

    net.ours()["hostRoutes"] = json!([format!("{BEHIND4}/32"), format!("{BEHIND6}/128")]);
    let mut list = net.conflist();
    let routed = attach(&lan, &lan.node1, &mut list, "routed");
    for ip in behind {
        let route = host_route(routed.pod(), ip).unwrap_or_else(|| panic!("no route to {ip}"));
        assert_eq!(
            route["gateway"],
            node_ip(&lan.node1, ip).to_string(),
            "{route}"
        );
        assert_pings("pod -> hostRoutes", routed.pod(), ip);
    }
}
