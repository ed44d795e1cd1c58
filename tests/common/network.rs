//! The one network fixture: a network of macvlan-host on one node of the test LAN, in chained
//! mode (the reference `macvlan` + host-local, then macvlan-host) or in interface mode
//! (macvlan-host alone with `ipam`), for IPv4, IPv6 or both. The shim, veth and interface-mode
//! tests all build their networks here, with `Spec` (what to build) and `Net` (what was built).

use super::conflist::Conflist;
use super::inspect::{assert_no_host_side, assert_no_trace_on_node, files_in, walk};
use super::lan::{Lan, Node};
use super::netns::{Netns, Pod};
use super::plugin::{Attachment, CniOutput, Plugin};
use super::results::{pod_ips, result_ips};
use super::temp_dir::TempDir;
use super::*;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The shim macvlan-host makes for master `eth0`.
pub const SHIM: &str = "mvh-eth0";

/// Who creates the pod's macvlan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chaining {
    /// A conflist: reference `macvlan` (+ host-local), then macvlan-host (cniVersion 1.0.0).
    Chained,
    /// macvlan-host alone, delegating IPAM to host-local (cniVersion 1.1.0).
    Interface,
}

/// The address families the pods get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
    Dual,
}

impl Family {
    pub fn has_v4(self) -> bool {
        self != Family::V6
    }

    pub fn has_v6(self) -> bool {
        self != Family::V4
    }

    /// host-local `ranges`: hosts `first..=last` of the LAN's subnets per family
    /// (`10.99.0.<n>`, `fd99::<n>`), with PEER as gateway when `via_peer`.
    pub fn ranges(self, first: u16, last: u16, via_peer: bool) -> Value {
        let mut ranges = Vec::new();
        let mut range = |subnet: &str, prefix: &str, gateway: &str| {
            let mut range = json!({
                "subnet": subnet,
                "rangeStart": format!("{prefix}{first}"),
                "rangeEnd": format!("{prefix}{last}"),
            });
            if via_peer {
                range["gateway"] = json!(gateway);
            }
            ranges.push(json!([range]));
        };
        if self.has_v4() {
            range(SUBNET4, "10.99.0.", PEER_IP4);
        }
        if self.has_v6() {
            range(SUBNET6, "fd99::", PEER_IP6);
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

/// What to build: one network on one node. `Spec::new` leaves every key of macvlan-host at
/// its default (`hostAccess` is the shim); the builder methods change one thing each.
#[derive(Clone, Debug)]
pub struct Spec {
    pub chaining: Chaining,
    pub family: Family,
    /// The pod's macvlan mode; `None` leaves it to the plugin that creates the pod's macvlan
    /// (the reference macvlan is always given one: `bridge` unless set).
    pub mode: Option<&'static str>,
    pub name: &'static str,
    /// Host numbers of host-local's ranges (see `Family::ranges`): NODE1's pods 100-149,
    /// NODE2's 150-199 by convention, so that networks on different nodes never collide.
    pub first: u16,
    pub last: u16,
    /// PEER as the ranges' gateway and default routes of every family through it.
    pub via_peer: bool,
    /// Keys of macvlan-host's own configuration.
    pub ours: Value,
    /// Another network's stateDir and dataDir, to share them (one node, two networks).
    pub dirs_of: Option<(PathBuf, PathBuf)>,
    /// The node's LAN interface the pods' macvlans hang off (`eth0` unless set).
    pub master: &'static str,
}

impl Spec {
    pub fn new(chaining: Chaining, family: Family) -> Spec {
        Spec {
            chaining,
            family,
            mode: None,
            name: "lan",
            first: 100,
            last: 149,
            via_peer: false,
            ours: json!({}),
            dirs_of: None,
            master: "eth0",
        }
    }

    /// The master of the pods' macvlans: the reference macvlan's in chained mode (ours finds
    /// it from the pod link), ours in interface mode.
    pub fn master(mut self, master: &'static str) -> Spec {
        self.master = master;
        self
    }

    /// `hostAccess: "veth"`.
    pub fn veth(chaining: Chaining, family: Family) -> Spec {
        Spec::new(chaining, family).set("hostAccess", json!("veth"))
    }

    /// `hostAccess: "none"`: only the pod's own interface.
    pub fn without_host_access(chaining: Chaining, family: Family) -> Spec {
        Spec::new(chaining, family).set("hostAccess", json!("none"))
    }

    pub fn mode(mut self, mode: &'static str) -> Spec {
        self.mode = Some(mode);
        self
    }

    pub fn name(mut self, name: &'static str) -> Spec {
        self.name = name;
        self
    }

    /// 50 addresses per family from host `first` on.
    pub fn first(self, first: u16) -> Spec {
        self.range(first, first + 49)
    }

    pub fn range(mut self, first: u16, last: u16) -> Spec {
        self.first = first;
        self.last = last;
        self
    }

    pub fn via_peer(mut self) -> Spec {
        self.via_peer = true;
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
        let mut net = Net {
            list: Conflist::new(json!({"plugins": []})),
            plugins: Vec::new(),
            ours: Value::Null,
            plugin: Plugin::ours(),
            state_dir,
            data_dir,
            spec: self,
            _own_dirs: own_dirs,
        };
        net.configure();
        net
    }

    /// The conflist's cniVersion: the reference plugins speak up to 1.0.0.
    pub fn version(&self) -> &'static str {
        match self.chaining {
            Chaining::Chained => "1.0.0",
            Chaining::Interface => "1.1.0",
        }
    }

    /// The conflist's plugin entries for these directories.
    fn plugins(&self, state_dir: &Path, data_dir: &Path) -> Vec<Value> {
        let mut ipam = json!({
            "type": "host-local",
            "dataDir": data_dir,
            "ranges": self.family.ranges(self.first, self.last, self.via_peer),
        });
        if self.via_peer {
            let mut routes = Vec::new();
            if self.family.has_v4() {
                routes.push(json!({"dst": "0.0.0.0/0"}));
            }
            if self.family.has_v6() {
                routes.push(json!({"dst": "::/0"}));
            }
            ipam["routes"] = Value::Array(routes);
        }
        let mut ours = self.ours.clone();
        ours["type"] = json!(OUR_TYPE);
        ours["stateDir"] = json!(state_dir);
        match self.chaining {
            // No `master` for ours: it must find the pod link's parent itself.
            Chaining::Chained => {
                let reference = json!({
                    "type": "macvlan", "master": self.master, "mode": self.mode.unwrap_or("bridge"),
                    "ipam": ipam,
                });
                vec![reference, ours]
            }
            Chaining::Interface => {
                if ours.get("master").is_none() {
                    ours["master"] = json!(self.master);
                }
                if let Some(mode) = self.mode {
                    ours["mode"] = json!(mode);
                }
                ours["ipam"] = ipam;
                vec![ours]
            }
        }
    }
}

/// One network on one node: its conflist with a runner that caches results as libcni does
/// (`list`), macvlan-host's own configuration for direct calls (`ours`), and its stateDir and
/// host-local dataDir.
pub struct Net {
    pub list: Conflist,
    /// The conflist's plugin configurations.
    pub plugins: Vec<Value>,
    /// macvlan-host's configuration as the runtime hands it over, without prevResult.
    pub ours: Value,
    pub plugin: Plugin,
    pub state_dir: PathBuf,
    pub data_dir: PathBuf,
    spec: Spec,
    _own_dirs: Vec<TempDir>,
}

impl Net {
    /// (Re)computes the configurations from the spec; the runner starts without cached results.
    fn configure(&mut self) {
        let spec = &self.spec;
        self.plugins = spec.plugins(&self.state_dir, &self.data_dir);
        self.list = Conflist::new(self.list_json());
        let mut ours = self.plugins.last().expect("our plugin").clone();
        ours["cniVersion"] = json!(spec.version());
        ours["name"] = json!(spec.name);
        self.ours = ours;
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Sets one key of macvlan-host's configuration in place: same directories, so pods added
    /// before stay; the runner (`list`) starts again without cached results.
    pub fn set(&mut self, key: &str, value: Value) {
        self.spec.ours[key] = value;
        self.configure();
    }

    /// The network configuration list.
    pub fn list_json(&self) -> Value {
        json!({"cniVersion": self.spec.version(), "name": self.spec.name, "plugins": self.plugins})
    }

    /// A runtime's view of this network: a fresh libcni-like runner without cached results.
    pub fn conflist(&self) -> Conflist {
        Conflist::new(self.list_json())
    }

    /// The same pods without macvlan-host's host access: the control. Chained: the reference
    /// macvlan alone; interface mode: `hostAccess: "none"`.
    pub fn without_host_access(&self) -> Conflist {
        let mut list = self.list_json();
        let plugins = list["plugins"].as_array_mut().expect("plugins");
        if plugins.len() > 1 {
            plugins.pop();
        } else {
            plugins[0]["hostAccess"] = json!("none");
        }
        Conflist::new(list)
    }

    /// macvlan-host's configuration as a runtime passes it to GC and STATUS (cniVersion 1.1.0).
    pub fn our_conf(&self) -> Value {
        self.our_conf_at("1.1.0")
    }

    /// macvlan-host's entry with what libcni injects (`name`, `cniVersion`), at `cni_version`.
    pub fn our_conf_at(&self, cni_version: &str) -> Value {
        let mut conf = self.ours.clone();
        conf["cniVersion"] = json!(cni_version);
        conf
    }

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

    /// The addresses host-local holds for this network's pods.
    pub fn allocations(&self) -> Vec<String> {
        host_local_allocations(&self.data_dir)
    }

    /// Whether host-local has ever allocated for this network (it keeps `last_reserved_ip.*`
    /// after a release): proves that a failed ADD got past IPAM ADD.
    pub fn ipam_ran(&self) -> bool {
        files_in(&self.data_dir.join(self.spec.name))
            .iter()
            .any(|f| f.starts_with("last_reserved_ip"))
    }

    /// The files of one stateDir subdirectory (`attachments`, `owners`).
    pub fn state_files(&self, sub: &str) -> Vec<String> {
        files_in(&self.state_dir.join(sub))
    }

    /// Every entry under `stateDir` besides the lock and the fixed folders: records, owner
    /// files, shim user markers and users folders.
    pub fn state_entries(&self) -> Vec<String> {
        let mut found = Vec::new();
        walk(&self.state_dir, "", &mut found);
        // The directories themselves, the lock, and the IPAM version cache (what the IPAM
        // binary speaks, not anything of a pod) are no leftovers.
        found.retain(|e| {
            !["lock", "attachments", "owners", "users"].contains(&e.as_str())
                && !e.starts_with("ipam-versions")
        });
        found.sort();
        found
    }

    /// The attachment record of `at`.
    pub fn record_path(&self, at: &Attachment) -> PathBuf {
        self.state_dir.join(format!(
            "attachments/{}:{}:{}.json",
            self.spec.name, at.container_id, at.ifname
        ))
    }

    /// Nothing of any attachment is left: no veth or shim, no host route, no permanent
    /// neighbour on `node`, no record, no route owner, no IP allocation.
    pub fn assert_nothing_left(&self, node: &Netns) {
        assert_no_host_side(node);
        assert_eq!(self.state_files("attachments"), Vec::<String>::new());
        assert_eq!(self.state_files("owners"), Vec::<String>::new());
        assert_eq!(host_local_allocations(&self.data_dir), Vec::<String>::new());
    }

    /// Nothing of these pods is left on the node or in the plugins' state.
    pub fn assert_clean(&self, node: &Netns, ips: &[IpAddr], what: &str) {
        self.assert_no_host_access(node, ips, what);
        assert_eq!(
            host_local_allocations(&self.data_dir),
            Vec::<String>::new(),
            "{what}: host-local allocations"
        );
    }

    /// Nothing of the host access to these pods is left: no shim, no route or neighbour entry
    /// for their addresses, nothing in stateDir.
    pub fn assert_no_host_access(&self, node: &Netns, ips: &[IpAddr], what: &str) {
        assert!(!node.has_link(SHIM), "{what}: the shim is left");
        assert_no_trace_on_node(node, ips, what);
        assert_eq!(
            self.state_entries(),
            Vec::<String>::new(),
            "{what}: stateDir"
        );
    }
}

/// A pod with an attachment of a network on some node.
pub struct Attached {
    /// `None` once the test removed the pod's namespace.
    pub pod: Option<Pod>,
    pub at: Attachment,
    pub ips: Vec<IpAddr>,
}

impl Attached {
    pub fn pod(&self) -> &Pod {
        self.pod.as_ref().expect("the pod's namespace")
    }

    /// The pod's address of one family (true: IPv4).
    pub fn ip(&self, v4: bool) -> IpAddr {
        *self
            .ips
            .iter()
            .find(|ip| ip.is_ipv4() == v4)
            .expect("an address of that family")
    }
}

/// A new pod `name` attached through `list` on `node`; panics unless ADD succeeds.
pub fn attach(lan: &Lan, node: &Netns, list: &mut Conflist, name: &str) -> Attached {
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
