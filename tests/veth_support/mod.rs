//! What the veth tests share: the networks under test (chained or interface mode, one family
//! or both, a macvlan mode), what the node holds afterwards, and traffic checks.

#![allow(dead_code)] // Each veth test binary uses a different part of it.

use super::common::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

pub const TCP_PORT: u16 = 8080;

// ---------------------------------------------------------------------------------------------
// Networks under test
// ---------------------------------------------------------------------------------------------

/// Who creates the pod's macvlan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Chaining {
    /// A conflist: reference `macvlan` (+ host-local), then macvlan-host (cniVersion 1.0.0).
    Chained,
    /// macvlan-host alone, delegating IPAM to host-local (cniVersion 1.1.0).
    Interface,
}

#[derive(Clone, Copy, Debug)]
pub enum Family {
    V4,
    V6,
    Dual,
}

impl Family {
    pub fn has_v4(self) -> bool {
        !matches!(self, Family::V6)
    }

    pub fn has_v6(self) -> bool {
        !matches!(self, Family::V4)
    }

    /// host-local `ranges`: 50 addresses of the LAN's subnets per family, from host `first` on
    /// (`10.99.0.<first>`, `fd99::<first>`), so that networks given different blocks never
    /// hand out the same address.
    pub fn ranges(self, first: u16) -> Value {
        let last = first + 49;
        let mut ranges = Vec::new();
        if self.has_v4() {
            ranges.push(json!([{
                "subnet": SUBNET4,
                "rangeStart": format!("10.99.0.{first}"),
                "rangeEnd": format!("10.99.0.{last}"),
            }]));
        }
        if self.has_v6() {
            ranges.push(json!([{
                "subnet": SUBNET6,
                "rangeStart": format!("fd99::{first}"),
                "rangeEnd": format!("fd99::{last}"),
            }]));
        }
        Value::Array(ranges)
    }

    /// A LAN machine's addresses of this family.
    pub fn ips_of(self, machine: &Node) -> Vec<String> {
        let mut ips = Vec::new();
        if self.has_v4() {
            ips.push(machine.ip4.to_string());
        }
        if self.has_v6() {
            ips.push(machine.ip6.to_string());
        }
        ips
    }
}

/// What to build: one network on one node.
pub struct Spec {
    pub chaining: Chaining,
    pub family: Family,
    /// The pod's macvlan mode.
    pub mode: &'static str,
    pub name: &'static str,
    /// First host number of host-local's ranges (see `Family::ranges`).
    pub first: u16,
    /// Keys of macvlan-host's own configuration (`hostAccess: veth` unless replaced).
    pub ours: Value,
    /// Another network's stateDir and dataDir, to share them (one node, two networks).
    pub dirs_of: Option<(PathBuf, PathBuf)>,
}

impl Spec {
    pub fn new(chaining: Chaining, family: Family) -> Spec {
        Spec {
            chaining,
            family,
            mode: "bridge",
            name: "lan",
            first: 100,
            ours: json!({ "hostAccess": "veth" }),
            dirs_of: None,
        }
    }

    pub fn mode(mut self, mode: &'static str) -> Spec {
        self.mode = mode;
        self
    }

    pub fn name(mut self, name: &'static str) -> Spec {
        self.name = name;
        self
    }

    pub fn first(mut self, first: u16) -> Spec {
        self.first = first;
        self
    }

    /// Sets one key of macvlan-host's configuration.
    pub fn set(mut self, key: &str, value: Value) -> Spec {
        self.ours[key] = value;
        self
    }

    pub fn sharing_dirs_with(mut self, other: &Net) -> Spec {
        self.dirs_of = Some((other.state_dir.clone(), other.data_dir.clone()));
        self
    }

    pub fn build(self) -> Net {
        let mut own_dirs = Vec::new();
        let (state_dir, data_dir) = self.dirs_of.clone().unwrap_or_else(|| {
            let state = TempDir::new("state");
            let data = TempDir::new("host-local");
            let paths = (state.path().to_path_buf(), data.path().to_path_buf());
            own_dirs.extend([state, data]);
            paths
        });
        let ipam = json!({
            "type": "host-local",
            "dataDir": data_dir,
            "ranges": self.family.ranges(self.first),
        });
        let mut ours = self.ours.clone();
        ours["type"] = json!(OUR_TYPE);
        ours["stateDir"] = json!(state_dir);
        let (version, plugins) = match self.chaining {
            Chaining::Chained => {
                let reference = json!({
                    "type": "macvlan", "master": "eth0", "mode": self.mode, "ipam": ipam,
                });
                ("1.0.0", vec![reference, ours.clone()])
            }
            Chaining::Interface => {
                ours["master"] = json!("eth0");
                ours["mode"] = json!(self.mode);
                ours["ipam"] = ipam;
                ("1.1.0", vec![ours.clone()])
            }
        };
        let list = Conflist::new(json!({
            "cniVersion": version, "name": self.name, "plugins": plugins.clone(),
        }));
        // macvlan-host's configuration as the runtime hands it over, without prevResult.
        ours["cniVersion"] = json!(version);
        ours["name"] = json!(self.name);
        Net {
            list,
            plugins,
            ours,
            plugin: Plugin::ours(),
            state_dir,
            data_dir,
            _own_dirs: own_dirs,
        }
    }
}

/// One network on one node: its conflist (libcni's behaviour), macvlan-host's own
/// configuration for direct calls, and its stateDir and host-local dataDir.
pub struct Net {
    pub list: Conflist,
    /// The conflist's plugin configurations.
    pub plugins: Vec<Value>,
    pub ours: Value,
    pub plugin: Plugin,
    pub state_dir: PathBuf,
    pub data_dir: PathBuf,
    _own_dirs: Vec<TempDir>,
}

impl Net {
    /// ADD through the whole conflist; returns the pod's addresses (without prefix length).
    pub fn add(&mut self, node: &Netns, pod: &Pod) -> Vec<String> {
        pod_ips(&self.add_result(node, pod))
    }

    pub fn add_result(&mut self, node: &Netns, pod: &Pod) -> Value {
        self.list
            .add(node, &Attachment::new(pod))
            .expect_ok()
            .clone()
    }

    pub fn check(&self, node: &Netns, pod: &Pod) -> CniOutput {
        self.list.check(node, &Attachment::new(pod))
    }

    pub fn del(&mut self, node: &Netns, at: &Attachment) {
        self.list.del(node, at).expect_ok();
    }

    /// macvlan-host alone, as a runtime calls it when it has nothing cached: no prevResult.
    pub fn del_ours_only(&self, node: &Netns, at: &Attachment) {
        self.plugin.del(node, at, &self.ours).expect_ok();
    }

    /// The files of one stateDir subdirectory (`attachments`, `owners`).
    pub fn state_files(&self, sub: &str) -> Vec<String> {
        files_in(&self.state_dir.join(sub))
    }

    pub fn record_path(&self, pod: &Pod) -> PathBuf {
        let name = self.ours["name"].as_str().expect("a network name");
        self.state_dir
            .join("attachments")
            .join(format!("{name}:{}:eth0.json", pod.name()))
    }

    /// Nothing of any attachment is left: no veth or shim, no host route, no permanent
    /// neighbour on `node`, no record, no route owner, no IP allocation.
    pub fn assert_nothing_left(&self, node: &Netns) {
        assert_no_host_side(node);
        assert_eq!(self.state_files("attachments"), Vec::<String>::new());
        assert_eq!(self.state_files("owners"), Vec::<String>::new());
        assert_eq!(host_local_allocations(&self.data_dir), Vec::<String>::new());
    }
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The name of the last entry of a result's `interfaces`: where the node end is listed.
pub fn last_interface(result: &Value) -> String {
    let interfaces = result["interfaces"].as_array().expect("interfaces");
    let last = interfaces.last().expect("an interface");
    last["name"].as_str().expect("a name").to_string()
}

/// The addresses of a result's `ips`, without prefix length.
pub fn pod_ips(result: &Value) -> Vec<String> {
    result["ips"]
        .as_array()
        .unwrap_or_else(|| panic!("a result with ips: {result}"))
        .iter()
        .map(|ip| {
            let cidr = ip["address"].as_str().expect("an address");
            cidr.split('/').next().unwrap().to_string()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What the node holds
// ---------------------------------------------------------------------------------------------

/// Links of `ns` whose name starts with "mvh" (veth node ends, shims), by name.
pub fn mvh_links(ns: &Netns) -> Vec<String> {
    ns.ip_json(["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .filter(|n| n.starts_with("mvh"))
        .map(str::to_string)
        .collect()
}

/// `ip -d link show dev DEV` of one link (kind under `linkinfo.info_kind`).
pub fn link_details(ns: &Netns, dev: &str) -> Value {
    ns.ip_json(["-d", "link", "show", "dev", dev])[0].clone()
}

pub fn link_kind(ns: &Netns, dev: &str) -> String {
    let link = link_details(ns, dev);
    link["linkinfo"]["info_kind"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Host routes (`/32`, `/128`) of the main table, both families.
pub fn host_routes(ns: &Netns) -> Vec<Value> {
    ["-4", "-6"]
        .into_iter()
        .flat_map(|f| ns.routes(f))
        .filter(|r| {
            let dst = r["dst"].as_str().unwrap_or("default");
            dst != "default" && !dst.contains('/')
        })
        .collect()
}

pub fn permanent_neighbours(ns: &Netns) -> Vec<Value> {
    ns.neigh()
        .into_iter()
        .filter(|n| {
            n["state"]
                .as_array()
                .is_some_and(|s| s.contains(&json!("PERMANENT")))
        })
        .collect()
}

/// Nothing of macvlan-host's host side is on `node`.
pub fn assert_no_host_side(node: &Netns) {
    assert_eq!(mvh_links(node), Vec::<String>::new(), "veth or shim left");
    assert_eq!(host_routes(node), Vec::<Value>::new(), "host routes left");
    assert_eq!(
        permanent_neighbours(node),
        Vec::<Value>::new(),
        "permanent neighbour entries left"
    );
}

// ---------------------------------------------------------------------------------------------
// Traffic
// ---------------------------------------------------------------------------------------------

/// `from` reaches each of `ips` (in `to`) by ping and by TCP.
pub fn assert_reaches(from: (&str, &Netns), to: (&str, &Netns), ips: &[String]) {
    let _server = to.1.tcp_server(TCP_PORT);
    for ip in ips {
        assert!(from.1.ping(ip), "{} -> {} {ip}: ping", from.0, to.0);
        assert!(
            from.1.tcp_connect(ip, TCP_PORT),
            "{} -> {} {ip}: TCP",
            from.0,
            to.0
        );
    }
}

/// `a` and `b` reach each other, ping and TCP, both ways.
pub fn assert_both_ways(a: (&str, &Netns, &[String]), b: (&str, &Netns, &[String])) {
    assert_reaches((a.0, a.1), (b.0, b.1), b.2);
    assert_reaches((b.0, b.1), (a.0, a.1), a.2);
}

/// A process that keeps a pod's network namespace alive after its name is gone (as a
/// container's process does when the runtime has already removed the netns file).
pub struct Holder(Child);

impl Holder {
    /// Starts a process in `pod` and returns once it is inside the pod's namespace.
    pub fn hold(pod: &Pod) -> Holder {
        let child = pod
            .command("sleep")
            .arg("600")
            .spawn()
            .expect("start a process in the pod");
        let holder = Holder(child);
        let target = fs::metadata(pod.path()).expect("the pod's netns").ino();
        let own_ns = format!("/proc/{}/ns/net", holder.0.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        // nsenter enters the namespace, then execs sleep: wait for the first step.
        while fs::metadata(&own_ns).map(|m| m.ino()).ok() != Some(target) {
            assert!(
                Instant::now() < deadline,
                "the holder never entered the pod"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        holder
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
