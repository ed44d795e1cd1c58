//! What the adversarial campaign (`crash_points.rs`, `fuzz_process.rs`, `soak.rs`) shares:
//! networks of every wiring on the LAN test bed, plugin calls with a time limit and an optional
//! wrapper (strace), and the inventory of what a node, a stateDir and host-local's dataDir hold
//! that no living pod explains ("leftovers").
//!
//! Used with `mod common; mod campaign;` in the test file.

#![allow(dead_code)] // Each campaign binary uses a different part.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The shim `macvlan-host` makes for master `eth0`.
pub const SHIM: &str = "mvh-eth0";

/// The four ways a pod gets host access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wiring {
    InterfaceShim,
    InterfaceVeth,
    ChainedShim,
    ChainedVeth,
}

impl Wiring {
    pub const ALL: [Wiring; 4] = [
        Wiring::InterfaceShim,
        Wiring::InterfaceVeth,
        Wiring::ChainedShim,
        Wiring::ChainedVeth,
    ];

    pub fn chained(self) -> bool {
        matches!(self, Wiring::ChainedShim | Wiring::ChainedVeth)
    }

    pub fn shim(self) -> bool {
        matches!(self, Wiring::InterfaceShim | Wiring::ChainedShim)
    }

    pub fn label(self) -> &'static str {
        match self {
            Wiring::InterfaceShim => "interface+shim",
            Wiring::InterfaceVeth => "interface+veth",
            Wiring::ChainedShim => "chained+shim",
            Wiring::ChainedVeth => "chained+veth",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One plugin call: time limit, optional wrapper
// ---------------------------------------------------------------------------------------------

/// What one call of a plugin binary did.
#[derive(Debug)]
pub struct Outcome {
    /// None when the call did not end within its time limit (it was killed then).
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// stdout parsed as one JSON value (Null when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or(Value::Null)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Killed by SIGKILL (from strace's injection or from the harness).
    pub fn killed(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.status
            .is_some_and(|s| s.signal() == Some(9) || s.code() == Some(137))
    }
}

/// The environment of one call.
#[derive(Clone, Debug)]
pub struct Call<'a> {
    pub command: &'a str,
    pub at: &'a Attachment,
    pub cni_path: &'a Path,
    /// A process whose mount namespace the call runs in (see `PrivateMounts`).
    pub mount_ns: Option<u32>,
}

/// Runs `program` (with `wrapper` in front, e.g. strace) inside `node`, `stdin` on its stdin,
/// killed after `limit`. Extra environment variables override the CNI ones.
pub fn run_plugin(
    node: &Netns,
    wrapper: &[String],
    program: &Path,
    call: &Call,
    extra_env: &[(String, String)],
    stdin: &[u8],
    limit: Duration,
) -> Outcome {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", node.path()));
    if let Some(pid) = call.mount_ns {
        cmd.arg(format!("--mount=/proc/{pid}/ns/mnt"));
    }
    cmd.args(wrapper).arg(program);
    cmd.env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", &call.at.container_id)
        .env("CNI_NETNS", &call.at.netns)
        .env("CNI_IFNAME", &call.at.ifname)
        .env("CNI_ARGS", &call.at.args)
        .env("CNI_PATH", call.cni_path);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so that a timeout kills strace and the plugin's IPAM child too.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_vec();
    // A plugin that never reads stdin must not block the harness: write from a thread.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for plugin") {
            break Some(status);
        }
        if start.elapsed() > limit {
            // The whole group: the plugin, and whatever it started.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    // A grandchild that outlives the plugin may hold the pipes open: do not wait for it.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    Outcome {
        status,
        stdout,
        stderr,
        elapsed,
    }
}

// ---------------------------------------------------------------------------------------------
// A network of any wiring
// ---------------------------------------------------------------------------------------------

/// One network on NODE1's `eth0`, with its own stateDir and host-local dataDir (or a shared
/// stateDir, as networks on one master should have).
pub struct Wired {
    pub name: String,
    pub wiring: Wiring,
    pub state_dir: PathBuf,
    pub data_dir: PathBuf,
    /// The reference macvlan's entry (chained) and ours, without name/cniVersion.
    creator: Option<Value>,
    ours: Value,
    pub cni_path: PathBuf,
    pub plugin: PathBuf,
    /// Run every call in this process's mount namespace (see `PrivateMounts`).
    pub mount_ns: Option<u32>,
}

/// One IPv4 range per network, so networks on one LAN never hand out the same address.
pub fn range_for(index: u8) -> (String, String) {
    let first = 100 + u32::from(index) * 30;
    (
        format!("10.99.0.{first}"),
        format!("10.99.0.{}", first + 29),
    )
}

impl Wired {
    /// `name`'s configuration for `wiring`; `range` is its host-local pool on SUBNET4.
    pub fn new(
        name: &str,
        wiring: Wiring,
        state_dir: &Path,
        data_dir: &Path,
        range: (String, String),
        cni_path: &Path,
    ) -> Wired {
        let ipam = json!({
            "type": "host-local",
            "dataDir": data_dir,
            "ranges": [[{"subnet": SUBNET4, "rangeStart": range.0, "rangeEnd": range.1}]],
        });
        let access = if wiring.shim() { "shim" } else { "veth" };
        let mut ours = json!({"type": OUR_TYPE, "stateDir": state_dir, "hostAccess": access});
        let creator = if wiring.chained() {
            Some(json!({"type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": ipam}))
        } else {
            ours["master"] = json!("eth0");
            ours["ipam"] = ipam;
            None
        };
        Wired {
            name: name.to_string(),
            wiring,
            state_dir: state_dir.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            creator,
            ours,
            cni_path: cni_path.to_path_buf(),
            plugin: cni_path.join(OUR_TYPE),
            mount_ns: None,
        }
    }

    /// The list's version: the reference plugins speak up to 1.0.0.
    pub fn version(&self) -> &'static str {
        if self.wiring.chained() {
            "1.0.0"
        } else {
            "1.1.0"
        }
    }

    /// Our entry as a runtime sends it, with `prevResult` when given.
    pub fn our_conf(&self, prev: Option<&Value>) -> Value {
        let mut conf = self.ours.clone();
        conf["name"] = json!(self.name);
        conf["cniVersion"] = json!(self.version());
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        conf
    }

    /// The reference macvlan's entry (chained mode only).
    pub fn creator_conf(&self, prev: Option<&Value>) -> Option<Value> {
        let mut conf = self.creator.clone()?;
        conf["name"] = json!(self.name);
        conf["cniVersion"] = json!(self.version());
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        Some(conf)
    }

    pub fn call<'a>(&'a self, command: &'a str, at: &'a Attachment) -> Call<'a> {
        Call {
            command,
            at,
            cni_path: &self.cni_path,
            mount_ns: self.mount_ns,
        }
    }

    /// Runs one plugin (ours, or the reference macvlan when `reference`) without wrapper.
    pub fn run(
        &self,
        node: &Netns,
        reference: bool,
        command: &str,
        at: &Attachment,
        conf: &Value,
        limit: Duration,
    ) -> Outcome {
        let program = if reference {
            self.cni_path.join("macvlan")
        } else {
            self.plugin.clone()
        };
        let stdin = serde_json::to_vec(conf).expect("serialize");
        run_plugin(
            node,
            &[],
            &program,
            &self.call(command, at),
            &[],
            &stdin,
            limit,
        )
    }

    /// Chained mode: the reference macvlan's ADD, whose result is our prevResult.
    pub fn create_pod_link(&self, node: &Netns, at: &Attachment) -> Result<Value, String> {
        let conf = self.creator_conf(None).expect("chained");
        let out = self.run(node, true, "ADD", at, &conf, LIMIT);
        if out.success() {
            Ok(out.json())
        } else {
            Err(format!("macvlan ADD: {} {}", out.stdout_text(), out.stderr))
        }
    }

    /// ADD as libcni does it: the whole list; our result (the final one) or the failure.
    pub fn add(&self, node: &Netns, at: &Attachment) -> Result<Value, String> {
        let prev = if self.wiring.chained() {
            Some(self.create_pod_link(node, at)?)
        } else {
            None
        };
        let out = self.run(node, false, "ADD", at, &self.our_conf(prev.as_ref()), LIMIT);
        if out.success() {
            Ok(out.json())
        } else {
            // libcni deletes what the list made when ADD fails: the reference macvlan's part.
            if let Some(conf) = self.creator_conf(prev.as_ref()) {
                self.run(node, true, "DEL", at, &conf, LIMIT);
            }
            Err(format!(
                "ADD: {:?} {} {}",
                out.status,
                out.stdout_text(),
                out.stderr
            ))
        }
    }

    /// DEL as libcni does it: ours, then (chained) the reference macvlan, each with `prev`.
    /// Returns the failures (an empty list is success).
    pub fn del(&self, node: &Netns, at: &Attachment, prev: Option<&Value>) -> Vec<String> {
        let mut failures = Vec::new();
        let out = self.run(node, false, "DEL", at, &self.our_conf(prev), LIMIT);
        if !out.success() {
            failures.push(format!(
                "DEL ({}): {:?} {}",
                if prev.is_some() {
                    "prevResult"
                } else {
                    "no prevResult"
                },
                out.status,
                out.stdout_text()
            ));
            // libcni stops the reverse chain at the first failure.
            return failures;
        }
        if let Some(conf) = self.creator_conf(prev) {
            let out = self.run(node, true, "DEL", at, &conf, LIMIT);
            if !out.success() {
                failures.push(format!("reference macvlan DEL: {}", out.stdout_text()));
            }
        }
        failures
    }

    /// GC (cniVersion 1.1.0) keeping exactly `keep`.
    pub fn gc(&self, node: &Netns, keep: &[&Attachment]) -> Outcome {
        let mut conf = self.our_conf(None);
        conf["cniVersion"] = json!("1.1.0");
        let listed: Vec<Value> = keep
            .iter()
            .map(|a| json!({"containerID": a.container_id, "ifname": a.ifname}))
            .collect();
        conf["cni.dev/valid-attachments"] = json!(listed);
        self.run(node, false, "GC", &Attachment::none(), &conf, LIMIT)
    }
}

/// The time limit of one ordinary call (a hang is a failure, not a stuck test).
pub const LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Leftovers
// ---------------------------------------------------------------------------------------------

/// A pod that is still attached and whose objects are therefore no leftovers.
#[derive(Clone, Debug, Default)]
pub struct Kept {
    pub container_id: String,
    pub ips: Vec<IpAddr>,
    /// Node-side links it owns (a veth's node end).
    pub links: Vec<String>,
    pub uses_shim: bool,
}

impl Kept {
    /// From an ADD result: its addresses and its node-side interfaces (those without sandbox).
    pub fn from_result(container_id: &str, result: &Value, uses_shim: bool) -> Kept {
        Kept {
            container_id: container_id.to_string(),
            ips: result_ips(result),
            links: result["interfaces"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i.get("sandbox").is_none_or(|s| s.as_str() == Some("")))
                .filter_map(|i| i["name"].as_str().map(str::to_string))
                .collect(),
            uses_shim,
        }
    }
}

/// The pod addresses of a result (without prefix).
pub fn result_ips(result: &Value) -> Vec<IpAddr> {
    result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| ip["address"].as_str()?.split('/').next()?.parse().ok())
        .collect()
}

/// One object nothing explains, by kind (`link`, `route`, `neighbour`, `record`, `tmp file`,
/// `allocation`, `shim hardening`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Leftover {
    pub kind: &'static str,
    pub what: String,
}

/// Everything on `node`, in the `state_dirs` and in the `data_dirs` that the `kept` pods do
/// not explain, and every way a remaining shim is not hardened.
pub fn leftovers(
    node: &Netns,
    state_dirs: &[&Path],
    data_dirs: &[&Path],
    kept: &[Kept],
) -> Vec<Leftover> {
    let mut found = Vec::new();
    let kept_ips: Vec<IpAddr> = kept.iter().flat_map(|k| k.ips.clone()).collect();
    let shim_kept = kept.iter().any(|k| k.uses_shim);

    // Links: lo, eth0, the shim while a kept pod uses it, the kept pods' veth ends.
    let links = node.ip_json(["link"]);
    for link in links.as_array().into_iter().flatten() {
        let name = link["ifname"].as_str().unwrap_or("?");
        let explained = name == "lo"
            || name == "eth0"
            || (name == SHIM && shim_kept)
            || kept.iter().any(|k| k.links.iter().any(|l| l == name));
        if !explained {
            found.push(Leftover {
                kind: "link",
                what: name.to_string(),
            });
        }
    }

    // Routes of the main table: the LAN's, the defaults, link-local prefixes, kept pods' /32.
    for (family, subnet) in [("-4", SUBNET4), ("-6", SUBNET6)] {
        for route in node.routes(family) {
            let dst = route["dst"].as_str().unwrap_or("?");
            let explained = dst == "default"
                || dst == subnet
                || dst.starts_with("fe80::")
                || dst.parse::<IpAddr>().is_ok_and(|ip| kept_ips.contains(&ip));
            if !explained {
                found.push(Leftover {
                    kind: "route",
                    what: format!("{dst} dev {}", route["dev"].as_str().unwrap_or("?")),
                });
            }
        }
    }

    // Permanent neighbour entries: only for kept pods.
    for n in node.neigh() {
        let permanent = n["state"]
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v == "PERMANENT"));
        let dst = n["dst"].as_str().unwrap_or("?");
        if permanent && !dst.parse::<IpAddr>().is_ok_and(|ip| kept_ips.contains(&ip)) {
            found.push(Leftover {
                kind: "neighbour",
                what: format!("{dst} dev {}", n["dev"].as_str().unwrap_or("?")),
            });
        }
    }

    // State: records, owners, shim users of pods that are gone; temporary files always.
    for dir in state_dirs {
        for file in state_files(dir) {
            let explained = kept.iter().any(|k| {
                file.contains(&format!(":{}:", k.container_id))
                    || k.ips.iter().any(|ip| file == format!("owners/{ip}"))
            });
            if file.contains(".tmp") {
                found.push(Leftover {
                    kind: "tmp file",
                    what: format!("{}/{file}", dir.display()),
                });
            } else if !explained {
                found.push(Leftover {
                    kind: "record",
                    what: format!("{}/{file}", dir.display()),
                });
            }
        }
    }

    // A shim's users directory stays only while a kept pod uses the shim: an empty one is
    // what a killed ADD made and nothing removed (issue 18, finding 7).
    for dir in state_dirs {
        let Ok(shims) = std::fs::read_dir(dir.join("users")) else {
            continue;
        };
        for shim in shims.flatten() {
            let shim = shim.file_name().to_string_lossy().into_owned();
            if !shim_kept {
                found.push(Leftover {
                    kind: "users dir",
                    what: format!("{}/users/{shim}", dir.display()),
                });
            }
        }
    }

    // IP allocations of pods that are gone.
    for dir in data_dirs {
        for allocation in host_local_allocations(dir) {
            let ip = allocation.rsplit('/').next().and_then(|s| s.parse().ok());
            if !ip.is_some_and(|ip: IpAddr| kept_ips.contains(&ip)) {
                found.push(Leftover {
                    kind: "allocation",
                    what: format!("{}/{allocation}", dir.display()),
                });
            }
        }
    }

    if node.has_link(SHIM) {
        found.extend(shim_hardening(node).into_iter().map(|what| Leftover {
            kind: "shim hardening",
            what,
        }));
    }
    found.sort();
    found
}

/// The relative paths of the files below `dir` that belong to attachments: records, owners,
/// shim users, temporary files; not the node lock or the IPAM version cache. (Folders are
/// the store's layout, not anything of a pod.)
pub fn state_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    walk(dir, "", &mut found);
    found.retain(|e| {
        let path = dir.join(e);
        !path.is_dir()
            && path.file_name().is_some_and(|n| n != "lock")
            && !e.split('/').any(|part| part == "ipam-versions")
    });
    found.sort();
    found
}

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

/// What the shim on `node` lacks of its hardening (empty: fully hardened).
pub fn shim_hardening(node: &Netns) -> Vec<String> {
    let want = [
        ("ipv4", "arp_ignore", "8"),
        ("ipv4", "arp_filter", "1"),
        ("ipv4", "arp_announce", "2"),
        ("ipv6", "accept_ra", "0"),
        ("ipv6", "autoconf", "0"),
    ];
    let paths: Vec<String> = want
        .iter()
        .map(|(f, k, _)| format!("/proc/sys/net/{f}/conf/{SHIM}/{k}"))
        .collect();
    let mut args = vec!["cat".to_string()];
    args.extend(paths);
    let out = node.exec(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let values: Vec<&str> = text.lines().collect();
    let mut problems = Vec::new();
    for (i, (family, key, value)) in want.iter().enumerate() {
        let got = values.get(i).copied().unwrap_or("unreadable");
        if got.trim() != *value {
            problems.push(format!("{SHIM} {family} {key}={got} (want {value})"));
        }
    }
    let addrs = node.ip_json(["-6", "addr", "show", "dev", SHIM]);
    for a in addrs.as_array().into_iter().flatten() {
        for info in a["addr_info"].as_array().into_iter().flatten() {
            let local = info["local"].as_str().unwrap_or("");
            if local.starts_with("fe80") {
                problems.push(format!("{SHIM} has link-local address {local}"));
            }
        }
    }
    problems
}

/// Counts leftovers by kind, for summaries.
pub fn count_by_kind<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for kind in items {
        *counts.entry(kind.to_string()).or_insert(0) += 1;
    }
    counts
}

/// Removes every link but `lo` and `eth0` from `node` (routes and neighbours on them go with
/// them), any other /32 route and permanent neighbour: the node as `Lan::new` made it, so the
/// next case starts from a known state whatever the last one left.
pub fn reset_node(node: &Netns) {
    let links = node.ip_json(["link"]);
    for link in links.as_array().into_iter().flatten() {
        let name = link["ifname"].as_str().unwrap_or("");
        if name != "lo" && name != "eth0" && !name.is_empty() {
            let _ = node.try_ip(["link", "del", name]);
        }
    }
    for (family, subnet) in [("-4", SUBNET4), ("-6", SUBNET6)] {
        for route in node.routes(family) {
            let dst = route["dst"].as_str().unwrap_or("default");
            if dst != "default" && dst != subnet && !dst.starts_with("fe80::") {
                let _ = node.try_ip([family, "route", "del", dst]);
            }
        }
    }
    for n in node.neigh() {
        if let (Some(dst), Some(dev)) = (n["dst"].as_str(), n["dev"].as_str()) {
            let _ = node.try_ip(["neigh", "del", dst, "dev", dev]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A private mount namespace over the machine's default directories
// ---------------------------------------------------------------------------------------------

/// A mount namespace, held by a sleeping process, in which `/run` and `/var/lib/cni` are empty
/// tmpfs: a mutated configuration that falls back to the default stateDir
/// (`/run/cni/macvlan-host`) or host-local's default dataDir writes there, never into the
/// machine's shared directories. `/run/netns` is bound back, and as a slave mount it sees
/// namespaces made later. Mounts never propagate back to the machine. Killed on `Drop`; if
/// the test itself is killed, the holder ends within two hours by itself.
pub struct PrivateMounts {
    holder: std::process::Child,
}

impl PrivateMounts {
    pub fn new() -> PrivateMounts {
        let script = r#"set -e
            keep=$(mktemp -d)
            mount --rbind /run/netns "$keep"
            mount -t tmpfs -o size=16m tmpfs /run
            mkdir -p /run/netns
            mount --rbind "$keep" /run/netns
            umount -l "$keep"; rmdir "$keep"
            if [ -d /var/lib/cni ]; then mount -t tmpfs -o size=16m tmpfs /var/lib/cni; fi
            echo ready
            exec sleep 7200"#;
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "slave", "sh", "-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare");
        let mut line = [0u8; 6];
        holder
            .stdout
            .as_mut()
            .expect("piped")
            .read_exact(&mut line)
            .expect("the private mount namespace is ready");
        assert_eq!(&line, b"ready\n", "private mount namespace");
        PrivateMounts { holder }
    }

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }
}

impl Default for PrivateMounts {
    fn default() -> Self {
        PrivateMounts::new()
    }
}

impl Drop for PrivateMounts {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
