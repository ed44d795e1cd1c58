//! `ensure` converges from any partial state: pieces of a healthy attachment are removed or
//! spoilt by hand, then the reconcile entry point (`reconcile_attachment`, run on a thread
//! inside NODE1 as the operator command runs in the node) or the next ADD makes them true
//! again, reports what it repaired, and a second run finds nothing to repair.

mod common;

use std::path::PathBuf;

use common::*;
use macvlan_host::datapaths::node::Node as PluginNode;
use macvlan_host::datapaths::{
    diagnose_attachment, reconcile_attachment, recorded_attachments, AttachmentError,
};
use macvlan_host::system::state::{AttachmentKey, StateStore};
use serde_json::{json, Value};

const SHIM: &str = "mvh-eth0";
const NETWORK: &str = "ensure";

/// One interface-mode network on NODE1 (IPv4 only: IPv6 costs a second of DAD per pod).
struct Bed {
    lan: Lan,
    plugin: Plugin,
    conf: Value,
    state: TempDir,
    _data: TempDir,
}

impl Bed {
    fn new(host_access: &str) -> Bed {
        let state = TempDir::new("ensure-state");
        let data = TempDir::new("ensure-data");
        let conf = json!({
            "cniVersion": "1.1.0",
            "name": NETWORK,
            "type": OUR_TYPE,
            "master": "eth0",
            "hostAccess": host_access,
            "stateDir": state.str(),
            "ipam": {
                "type": "host-local",
                "dataDir": data.str(),
                "ranges": [[{"subnet": SUBNET4, "rangeStart": "10.99.0.150", "rangeEnd": "10.99.0.159"}]],
            },
        });
        Bed {
            lan: Lan::new(),
            plugin: Plugin::ours(),
            conf,
            state,
            _data: data,
        }
    }

    /// ADD of `pod`; returns the pod's address.
    fn add(&self, pod: &Pod) -> String {
        let result = self
            .plugin
            .add(&self.lan.node1, &Attachment::new(pod), &self.conf)
            .expect_ok()
            .clone();
        let cidr = result["ips"][0]["address"].as_str().expect("an address");
        cidr.split('/').next().unwrap().to_owned()
    }

    fn check_with(&self, pod: &Pod, result: &Value) -> CniOutput {
        let mut conf = self.conf.clone();
        conf["prevResult"] = result.clone();
        self.plugin
            .check(&self.lan.node1, &Attachment::new(pod), &conf)
    }

    fn del(&self, pod: &Pod) {
        self.plugin
            .del(&self.lan.node1, &Attachment::new(pod), &self.conf)
            .expect_ok();
    }

    fn key(&self, pod: &Pod) -> AttachmentKey {
        AttachmentKey {
            network: NETWORK.into(),
            container_id: pod.name().into(),
            ifname: "eth0".into(),
        }
    }

    fn reconcile(&self, pod: &Pod) -> Result<Vec<String>, String> {
        let (dir, key) = (self.state_dir(), self.key(pod));
        self.lan.node1.in_netns(move || {
            let node = PluginNode::open().expect("the node");
            let store = StateStore::open(&dir).expect("the state directory");
            reconcile_attachment(&node, &store, &key)
                .map(|repairs| repairs.iter().map(ToString::to_string).collect())
                .map_err(|e| describe(&e))
        })
    }

    fn diagnose(&self, pod: &Pod) -> Result<Vec<String>, String> {
        let (dir, key) = (self.state_dir(), self.key(pod));
        self.lan.node1.in_netns(move || {
            let node = PluginNode::open().expect("the node");
            let store = StateStore::open(&dir).expect("the state directory");
            diagnose_attachment(&node, &store, &key)
                .map(|drift| drift.iter().map(ToString::to_string).collect())
                .map_err(|e| describe(&e))
        })
    }

    fn state_dir(&self) -> PathBuf {
        self.state.path().to_owned()
    }

    fn sysctl(&self, key: &str) -> String {
        self.lan
            .node1
            .run(["cat", &format!("/proc/sys/net/{key}")])
            .trim()
            .to_owned()
    }
}

/// The error's kind first, so tests can tell them apart.
fn describe(e: &AttachmentError) -> String {
    match e {
        AttachmentError::Gone(_) => format!("gone: {e}"),
        AttachmentError::PodUnreachable { .. } => format!("unreachable: {e}"),
        AttachmentError::Failed(_) => format!("failed: {e}"),
    }
}

fn assert_mentions(list: &[String], words: &[&str], what: &str) {
    assert!(
        list.iter()
            .any(|item| words.iter().all(|w| item.contains(w))),
        "{what}: no entry with {words:?} in {list:?}"
    );
}

fn has_route(ns: &Netns, ip: &str, dev: &str) -> bool {
    !ns.ip(["-4", "route", "show", &format!("{ip}/32"), "dev", dev])
        .trim()
        .is_empty()
}

#[test]
fn reconcile_restores_removed_routes_and_neighbours_then_finds_nothing() {
    let bed = Bed::new("shim");
    let pod = bed.lan.pod("a");
    let ip = bed.add(&pod);
    let node1 = &bed.lan.node1;
    assert_eq!(
        bed.reconcile(&pod),
        Ok(vec![]),
        "a fresh attachment has no drift"
    );
    assert_eq!(bed.diagnose(&pod), Ok(vec![]));

    node1.ip(["route", "del", &format!("{ip}/32"), "dev", SHIM]);
    node1.ip(["neigh", "del", &ip, "dev", SHIM]);
    pod.ip(["neigh", "del", NODE1_IP4, "dev", "eth0"]);
    assert!(
        !node1.ping(&ip),
        "the node reaches the pod without its route"
    );

    let drift = bed.diagnose(&pod).expect("diagnose");
    assert_mentions(&drift, &["route", &ip], "diagnose");
    assert_mentions(&drift, &["neighbour", &ip], "diagnose");
    assert_mentions(&drift, &["pod", "neighbour", NODE1_IP4], "diagnose");

    let repairs = bed.reconcile(&pod).expect("reconcile");
    assert_eq!(repairs.len(), 3, "{repairs:?}");
    assert_mentions(&repairs, &["restored", "route", &ip], "reconcile");
    assert!(has_route(node1, &ip, SHIM));
    assert!(node1.ping(&ip), "the node reaches the pod again");
    assert_eq!(
        bed.reconcile(&pod),
        Ok(vec![]),
        "the second run repairs nothing"
    );

    bed.del(&pod);
    assert_node_pristine(node1, "after DEL");
}

#[test]
fn reconcile_recreates_a_removed_shim_hardened() {
    let bed = Bed::new("shim");
    let pod = bed.lan.pod("a");
    let ip = bed.add(&pod);
    let node1 = &bed.lan.node1;
    let mac = node1.mac(SHIM);
    node1.ip(["link", "del", SHIM]);
    assert!(!node1.ping(&ip));

    let repairs = bed.reconcile(&pod).expect("reconcile");
    assert_mentions(&repairs, &["created", SHIM], "reconcile");
    assert_eq!(node1.mac(SHIM), mac, "the shim keeps its derived MAC");
    assert_eq!(bed.sysctl(&format!("ipv4/conf/{SHIM}/arp_ignore")), "8");
    assert!(has_route(node1, &ip, SHIM));
    assert!(
        node1.ping(&ip),
        "the node reaches the pod through the new shim"
    );
    assert_eq!(bed.reconcile(&pod), Ok(vec![]));

    bed.del(&pod);
    assert_node_pristine(node1, "after DEL");
}

#[test]
fn an_unhardened_shim_fails_check_and_the_next_add_hardens_it() {
    let bed = Bed::new("shim");
    let (a, b) = (bed.lan.pod("a"), bed.lan.pod("b"));
    let node1 = &bed.lan.node1;
    let result_a = bed
        .plugin
        .add(node1, &Attachment::new(&a), &bed.conf)
        .expect_ok()
        .clone();
    bed.check_with(&a, &result_a).expect_ok();

    // What a crash while the sysctls were written leaves: the defaults, and a link-local
    // address generated while addr_gen_mode allowed it.
    for (family, key) in [
        ("ipv4", "arp_ignore"),
        ("ipv4", "arp_filter"),
        ("ipv4", "arp_announce"),
        ("ipv6", "accept_ra"),
        ("ipv6", "autoconf"),
        ("ipv6", "addr_gen_mode"),
    ] {
        node1.run([
            "sh",
            "-c",
            &format!("echo 0 > /proc/sys/net/{family}/conf/{SHIM}/{key}"),
        ]);
    }
    node1.ip(["addr", "add", "fe80::99/64", "dev", SHIM]);
    let out = bed.check_with(&a, &result_a);
    assert!(!out.success(), "CHECK passed with an unhardened shim");
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("not hardened") && msg.contains("arp_ignore"),
        "{msg}"
    );
    assert!(
        msg.contains("fe80::99"),
        "CHECK names the link-local address: {msg}"
    );

    bed.add(&b);
    for (family, key, wanted) in [
        ("ipv4", "arp_ignore", "8"),
        ("ipv4", "arp_filter", "1"),
        ("ipv4", "arp_announce", "2"),
        ("ipv6", "accept_ra", "0"),
        ("ipv6", "autoconf", "0"),
        ("ipv6", "addr_gen_mode", "1"),
    ] {
        assert_eq!(
            bed.sysctl(&format!("{family}/conf/{SHIM}/{key}")),
            wanted,
            "{key} after the next ADD"
        );
    }
    let addresses = node1.ip(["-6", "addr", "show", "dev", SHIM]);
    assert!(!addresses.contains("fe80"), "link-local left: {addresses}");
    bed.check_with(&a, &result_a).expect_ok();

    bed.del(&b);
    bed.del(&a);
    assert_node_pristine(node1, "after DEL");
}

#[test]
fn reconcile_recreates_a_removed_veth_pair() {
    let bed = Bed::new("veth");
    let pod = bed.lan.pod("a");
    let ip = bed.add(&pod);
    let node1 = &bed.lan.node1;
    pod.ip(["link", "del", "host-eth0"]);
    assert!(!node1.ping(&ip));

    let repairs = bed.reconcile(&pod).expect("reconcile");
    assert_mentions(&repairs, &["veth", "host-eth0"], "reconcile");
    assert!(
        node1.ping(&ip),
        "the node reaches the pod through the new pair"
    );
    assert!(
        pod.ping(NODE1_IP4),
        "the pod reaches the node through the new pair"
    );
    assert_eq!(bed.reconcile(&pod), Ok(vec![]));

    bed.del(&pod);
    assert_node_pristine(node1, "after DEL");
}

#[test]
fn reconcile_follows_a_renumbered_node() {
    let bed = Bed::new("shim");
    let pod = bed.lan.pod("a");
    let ip = bed.add(&pod);
    let node1 = &bed.lan.node1;
    let renumbered = "10.99.0.12";
    node1.run([
        "sh",
        "-c",
        "echo 1 > /proc/sys/net/ipv4/conf/eth0/promote_secondaries",
    ]);
    node1.ip(["addr", "add", &format!("{renumbered}/24"), "dev", "eth0"]);
    node1.ip(["addr", "del", &format!("{NODE1_IP4}/24"), "dev", "eth0"]);

    let drift = bed.diagnose(&pod).expect("diagnose");
    // The kernel drops routes whose source address is gone; a route that survived would
    // carry the old source. Either way the drift names the pod's address.
    assert_mentions(&drift, &["route", &ip], "diagnose");
    assert_mentions(&drift, &[NODE1_IP4, "no longer"], "diagnose");
    bed.reconcile(&pod).expect("reconcile");

    let route = node1.ip(["-4", "route", "show", &format!("{ip}/32")]);
    assert!(route.contains(&format!("src {renumbered}")), "{route}");
    let pod_neigh = pod.ip(["neigh", "show", "dev", "eth0"]);
    assert!(!pod_neigh.contains(&format!("{NODE1_IP4} ")), "{pod_neigh}");
    assert!(pod_neigh.contains(renumbered), "{pod_neigh}");
    assert!(node1.ping(&ip), "the renumbered node reaches its pod");
    assert_eq!(bed.reconcile(&pod), Ok(vec![]));
    bed.del(&pod);
}

#[test]
fn reconcile_never_resurrects_and_never_releases_an_unreachable_pod() {
    let bed = Bed::new("shim");
    let (a, b) = (bed.lan.pod("a"), bed.lan.pod("b"));
    bed.add(&a);
    bed.add(&b);
    let records = recorded_attachments(&StateStore::open(bed.state.path()).unwrap()).unwrap();
    assert_eq!(records.len(), 2);

    bed.del(&a);
    let gone = bed.reconcile(&a).expect_err("a deleted attachment");
    assert!(gone.starts_with("gone"), "{gone}");
    assert!(
        !bed.state
            .join("attachments")
            .join(format!("{NETWORK}:{}:eth0.json", a.name()))
            .exists(),
        "reconcile re-created the record"
    );

    let key_b = bed.key(&b);
    let b_name = b.name().to_owned();
    drop(b);
    let unreachable = bed.reconcile_by_name(&b_name, key_b.clone());
    assert!(unreachable.starts_with("unreachable"), "{unreachable}");
    assert!(
        unreachable.contains("pod namespace unreachable"),
        "{unreachable}"
    );
    let store = StateStore::open(bed.state.path()).unwrap();
    assert!(store.load(&key_b).unwrap().is_some(), "the record stays");
    assert!(bed.lan.node1.has_link(SHIM), "the shim stays");

    // DEL after the namespace is gone cleans up.
    let at = Attachment {
        container_id: b_name,
        netns: String::new(),
        ifname: "eth0".into(),
        args: String::new(),
    };
    bed.plugin.del(&bed.lan.node1, &at, &bed.conf).expect_ok();
    assert_node_pristine(&bed.lan.node1, "after both DELs");
}

impl Bed {
    fn reconcile_by_name(&self, _pod: &str, key: AttachmentKey) -> String {
        let dir = self.state_dir();
        self.lan.node1.in_netns(move || {
            let node = PluginNode::open().expect("the node");
            let store = StateStore::open(&dir).expect("the state directory");
            match reconcile_attachment(&node, &store, &key) {
                Ok(repairs) => format!("ok: {repairs:?}"),
                Err(e) => describe(&e),
            }
        })
    }
}

#[test]
fn an_interface_that_only_has_the_shims_name_is_refused_and_left_alone() {
    let bed = Bed::new("shim");
    let pod = bed.lan.pod("a");
    let node1 = &bed.lan.node1;
    // Someone else's macvlan, with the name the shim would get.
    node1.ip([
        "link",
        "add",
        "link",
        "eth0",
        "name",
        SHIM,
        "address",
        "02:00:00:00:be:ef",
        "type",
        "macvlan",
        "mode",
        "bridge",
    ]);
    let out = bed.plugin.add(node1, &Attachment::new(&pod), &bed.conf);
    out.expect_error();
    let msg = out.stdout["msg"].as_str().unwrap_or_default();
    assert!(msg.contains(SHIM) && msg.contains("MAC"), "{msg}");
    assert!(
        node1.has_link(SHIM),
        "the rollback removed an interface it did not make"
    );
    assert_eq!(node1.mac(SHIM), "02:00:00:00:be:ef");
    node1.ip(["link", "del", SHIM]);
    assert_node_pristine(node1, "after the failed ADD");
}
