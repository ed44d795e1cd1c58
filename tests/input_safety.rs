//! Input safety (issue 11, findings 1, 2, 3, 4, 7, 8, 10): hostile or broken input never
//! touches the node's own links, never blocks, never yields a second document on stdout or a
//! code-0 error, and leaves nothing behind. Every call that could hang runs with a deadline.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const NETWORK: &str = "mvh-safety";
/// Far more than any call needs here; a call that takes longer is a hang.
const DEADLINE: Duration = Duration::from_secs(20);

/// One call's outcome, or None when it did not end before the deadline (it was killed).
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {:?}", self.stdout))
    }

    fn error_code(&self) -> u64 {
        assert!(
            !self.status.success(),
            "unexpected success: {}",
            self.stdout
        );
        self.json()["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("no code in {}", self.stdout))
    }
}

/// Runs `program` (ours unless a test wants another) inside `node` with the CNI environment,
/// `config` on stdin and a deadline. `wrap` may put a command in front (strace, unshare).
struct Call<'a> {
    node: &'a Netns,
    cni_path: &'a Path,
    command: &'a str,
    at: &'a Attachment,
    config: &'a Value,
    wrap: Vec<String>,
    stdout: Option<fs::File>,
}

impl<'a> Call<'a> {
    fn new(
        node: &'a Netns,
        cni_path: &'a Path,
        command: &'a str,
        at: &'a Attachment,
        config: &'a Value,
    ) -> Call<'a> {
        Call {
            node,
            cni_path,
            command,
            at,
            config,
            wrap: Vec::new(),
            stdout: None,
        }
    }

    fn wrapped(mut self, wrap: &[&str]) -> Self {
        self.wrap = wrap.iter().map(|s| s.to_string()).collect();
        self
    }

    fn stdout_to(mut self, file: fs::File) -> Self {
        self.stdout = Some(file);
        self
    }

    /// None when the call had to be killed at the deadline.
    fn run(self) -> Option<Outcome> {
        let binary = self.cni_path.join(OUR_TYPE);
        let mut cmd = if self.wrap.is_empty() {
            self.node.command(&binary)
        } else {
            let mut cmd = self.node.command(&self.wrap[0]);
            cmd.args(&self.wrap[1..]).arg(&binary);
            cmd
        };
        cmd.env("CNI_COMMAND", self.command)
            .env("CNI_CONTAINERID", &self.at.container_id)
            .env("CNI_NETNS", &self.at.netns)
            .env("CNI_IFNAME", &self.at.ifname)
            .env("CNI_ARGS", &self.at.args)
            .env("CNI_PATH", self.cni_path)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped());
        match self.stdout {
            Some(file) => cmd.stdout(file),
            None => cmd.stdout(Stdio::piped()),
        };
        let mut child = cmd.spawn().expect("spawn the plugin");
        {
            use std::io::Write;
            let bytes = serde_json::to_vec(self.config).unwrap();
            let _ = child.stdin.take().unwrap().write_all(&bytes);
        }
        // Read both pipes on threads so a chatty child cannot block on a full pipe.
        let mut out = child.stdout.take();
        let mut err = child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(out) = out.as_mut() {
                let _ = out.read_to_string(&mut s);
            }
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the plugin") {
                break Some(status);
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = out_reader.join().unwrap();
        let stderr = err_reader.join().unwrap();
        status.map(|status| Outcome {
            status,
            stdout,
            stderr,
        })
    }

    /// `run`, failing the test on a hang.
    fn finish(self) -> Outcome {
        let what = format!("{} {:?}", self.command, self.at.netns);
        self.run()
            .unwrap_or_else(|| panic!("{what} did not end within {DEADLINE:?}"))
    }
}

/// A CNI_PATH of our plugin, the reference plugins and any scripts a test adds.
struct Bed {
    lan: Lan,
    cni_path: TempDir,
    data_dir: TempDir,
    state_dir: TempDir,
}

impl Bed {
    fn new() -> Bed {
        let cni_path = TempDir::new("safety-cni");
        for entry in fs::read_dir("/usr/lib/cni").unwrap() {
            let entry = entry.unwrap();
            std::os::unix::fs::symlink(entry.path(), cni_path.join(entry.file_name())).unwrap();
        }
        std::os::unix::fs::symlink(OUR_PLUGIN, cni_path.join(OUR_TYPE)).unwrap();
        Bed {
            lan: Lan::new(),
            cni_path,
            data_dir: TempDir::new("safety-data"),
            state_dir: TempDir::new("safety-state"),
        }
    }

    /// Interface mode on NODE1's eth0 with host-local.
    fn interface_conf(&self, host_access: &str) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": NETWORK,
            "type": OUR_TYPE,
            "master": "eth0",
            "hostAccess": host_access,
            "stateDir": self.state_dir.str(),
            "ipam": {
                "type": "host-local",
                "dataDir": self.data_dir.str(),
                "ranges": [[{"subnet": SUBNET4, "rangeStart": "10.99.0.100", "rangeEnd": "10.99.0.149", "gateway": PEER_IP4}]],
            },
        })
    }

    /// Interface mode with a scripted IPAM plugin `fake-ipam` whose ADD prints `add_reply`
    /// and exits with `add_status`; every call appends its verb to `calls`.
    fn fake_ipam_conf(&self, add_reply: &Value, add_status: i32) -> Value {
        let script = self.cni_path.join("fake-ipam");
        let calls = self.cni_path.join("fake-ipam.calls");
        let reply = self.cni_path.join("fake-ipam.reply");
        fs::write(&reply, add_reply.to_string()).unwrap();
        write_executable(
            &script,
            &format!(
                "#!/bin/sh\ncat >/dev/null\necho \"$CNI_COMMAND\" >> {calls}\n\
                 case \"$CNI_COMMAND\" in\n\
                 ADD) cat {reply}; exit {add_status};;\n\
                 VERSION) echo '{{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}}';;\n\
                 esac\nexit 0\n",
                calls = calls.display(),
                reply = reply.display(),
            ),
        );
        let _ = fs::remove_file(&calls);
        json!({
            "cniVersion": "1.0.0",
            "name": NETWORK,
            "type": OUR_TYPE,
            "master": "eth0",
            "hostAccess": "shim",
            "stateDir": self.state_dir.str(),
            "ipam": {"type": "fake-ipam"},
        })
    }

    fn fake_ipam_calls(&self) -> Vec<String> {
        fs::read_to_string(self.cni_path.join("fake-ipam.calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn call<'a>(&'a self, command: &'a str, at: &'a Attachment, conf: &'a Value) -> Call<'a> {
        Call::new(&self.lan.node1, self.cni_path.path(), command, at, conf)
    }

    fn allocations(&self) -> Vec<String> {
        host_local_allocations(self.data_dir.path())
    }
}

fn with_netns(at: &Attachment, netns: &str) -> Attachment {
    let mut at = at.clone();
    at.netns = netns.to_string();
    at
}

/// Every temporary file under `dir`: a hidden file (how they are named now), or one whose
/// name contains ".tmp" (how earlier versions named them).
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(temporaries(&path));
        } else if entry.file_name().to_string_lossy().contains(".tmp")
            || entry.file_name().to_string_lossy().starts_with('.')
        {
            found.push(path);
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Finding 1: the node's own namespace through the pod path
// ---------------------------------------------------------------------------------------------

#[test]
fn del_refuses_the_nodes_own_namespace_and_keeps_its_master() {
    let bed = Bed::new();
    let pod = bed.lan.pod("own");
    let conf = bed.interface_conf("none");
    let node_path = bed.lan.node1.path();
    for netns in [
        "/proc/self/ns/net",
        "/proc/thread-self/ns/net",
        node_path.as_str(),
    ] {
        let at = with_netns(&Attachment::new(&pod), netns);
        let out = bed.call("DEL", &at, &conf).finish();
        assert!(
            bed.lan.node1.has_link("eth0"),
            "DEL with CNI_NETNS={netns} deleted the node's eth0"
        );
        assert_eq!(out.error_code(), 4, "DEL with CNI_NETNS={netns}");
        assert!(
            out.json()["msg"].as_str().unwrap().contains("CNI_NETNS"),
            "{}",
            out.stdout
        );
    }
    // A namespace that is gone (empty CNI_NETNS) still makes DEL succeed.
    let at = Attachment::new(&pod).without_netns();
    let out = bed.call("DEL", &at, &conf).finish();
    assert!(out.status.success(), "{} {}", out.stdout, out.stderr);
}

// ---------------------------------------------------------------------------------------------
// Finding 2: nothing the plugin opens may block
// ---------------------------------------------------------------------------------------------

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {path:?}");
}

#[test]
fn a_fifo_as_cni_netns_is_refused_at_once() {
    let bed = Bed::new();
    let pod = bed.lan.pod("fifo");
    let fifo = bed.state_dir.join("not-a-netns");
    mkfifo(&fifo);
    let conf = bed.interface_conf("shim");
    let at = with_netns(&Attachment::new(&pod), fifo.to_str().unwrap());
    let mut check_conf = conf.clone();
    check_conf["prevResult"] = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": fifo}], "ips": [{"address": "10.99.0.100/24", "interface": 0}]});
    for (verb, conf) in [("ADD", &conf), ("CHECK", &check_conf), ("DEL", &conf)] {
        let out = bed.call(verb, &at, conf).finish();
        assert_eq!(out.error_code(), 4, "{verb} with a FIFO as CNI_NETNS");
        let msg = out.json()["msg"].as_str().unwrap().to_owned();
        assert!(msg.contains("CNI_NETNS"), "{verb}: {msg}");
    }
    assert!(bed.allocations().is_empty(), "{:?}", bed.allocations());
    assert_node_pristine(&bed.lan.node1, "after the FIFO calls");
}

#[test]
fn a_fifo_as_log_file_does_not_block_add() {
    let bed = Bed::new();
    let pod = bed.lan.pod("logfifo");
    let fifo = bed.state_dir.join("log-fifo");
    mkfifo(&fifo);
    let mut conf = bed.interface_conf("none");
    conf["logFile"] = json!(fifo);
    conf["logLevel"] = json!("debug");
    let at = Attachment::new(&pod);
    let out = bed.call("ADD", &at, &conf).finish();
    assert!(out.status.success(), "{} {}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("logFile"),
        "no warning about the log file on stderr: {}",
        out.stderr
    );
    let out = bed.call("DEL", &at, &conf).finish();
    assert!(out.status.success(), "{} {}", out.stdout, out.stderr);
    assert!(bed.allocations().is_empty(), "{:?}", bed.allocations());
}

// ---------------------------------------------------------------------------------------------
// Finding 3: one JSON document on stdout
// ---------------------------------------------------------------------------------------------

#[test]
fn stdout_carries_one_document_whatever_log_file_names() {
    let bed = Bed::new();
    let pod = bed.lan.pod("stdout");
    let at = Attachment::new(&pod);
    for log_file in ["/dev/stdout", "/proc/self/fd/1"] {
        let mut conf = bed.interface_conf("none");
        conf["logFile"] = json!(log_file);
        conf["logLevel"] = json!("debug");
        // A failure (no such master) and a success: each prints exactly one document.
        let mut bad = conf.clone();
        bad["master"] = json!("no-such-master");
        let out = bed.call("ADD", &at, &bad).finish();
        assert_eq!(out.error_code(), 7, "logFile {log_file}: {}", out.stdout);
        let out = bed.call("ADD", &at, &conf).finish();
        assert!(out.status.success(), "logFile {log_file}: {}", out.stdout);
        assert!(out.json()["ips"].is_array(), "{}", out.stdout);
        let out = bed.call("DEL", &at, &conf).finish();
        assert!(out.status.success(), "{} {}", out.stdout, out.stderr);
        assert_eq!(
            out.stdout, "",
            "DEL prints nothing, also with logFile {log_file}"
        );
    }
    // stdout redirected to a regular file that logFile names too.
    let file = bed.state_dir.join("stdout.json");
    let mut conf = bed.interface_conf("none");
    conf["logFile"] = json!(file);
    conf["logLevel"] = json!("debug");
    conf["master"] = json!("no-such-master");
    let stdout = fs::File::create(&file).unwrap();
    let out = bed.call("ADD", &at, &conf).stdout_to(stdout).finish();
    assert!(!out.status.success());
    let text = fs::read_to_string(&file).unwrap();
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stdout file is not one JSON document ({e}): {text:?}"));
    assert_eq!(doc["code"], 7, "{text}");
    assert!(bed.allocations().is_empty(), "{:?}", bed.allocations());
}

// ---------------------------------------------------------------------------------------------
// Finding 4: an error never has code 0
// ---------------------------------------------------------------------------------------------

#[test]
fn a_foreign_error_code_that_does_not_fit_is_replaced_and_kept_in_details() {
    let bed = Bed::new();
    let pod = bed.lan.pod("code");
    let at = Attachment::new(&pod);
    for (foreign, expected) in [
        (json!(1099511627776u64), 999),
        (json!(4294967296u64), 999),
        (json!(0), 999),
        (json!(-3), 999),
        (json!(11), 11),
    ] {
        let reply = json!({"cniVersion": "1.0.0", "code": foreign, "msg": "no address for you", "details": "pool empty"});
        let conf = bed.fake_ipam_conf(&reply, 1);
        let out = bed.call("ADD", &at, &conf).finish();
        let doc = out.json();
        assert_eq!(out.error_code(), expected, "IPAM code {foreign}: {doc}");
        assert!(
            doc["msg"].as_str().unwrap().contains("no address for you"),
            "{doc}"
        );
        let details = doc["details"].as_str().unwrap_or_default();
        assert!(details.contains("pool empty"), "{doc}");
        if expected == 999 {
            assert!(details.contains(&foreign.to_string()), "{doc}");
        }
        assert!(
            !pod.has_link("eth0"),
            "IPAM code {foreign}: eth0 left in the pod"
        );
    }
    assert_node_pristine(&bed.lan.node1, "after the failed ADDs");
}

// ---------------------------------------------------------------------------------------------
// Finding 7: temporary files of killed writers
// ---------------------------------------------------------------------------------------------

/// ADD killed (SIGKILL through strace) at its `nth` rename: a record, shim user or route owner
/// is half written. Returns the temporary files it left.
fn add_killed_at_rename(bed: &Bed, at: &Attachment, conf: &Value, nth: u32) -> Vec<PathBuf> {
    let inject = format!("inject=rename,renameat,renameat2:signal=KILL:when={nth}");
    let out = bed
        .call("ADD", at, conf)
        .wrapped(&["strace", "-qq", "-o", "/dev/null", "-e", &inject])
        .finish();
    assert!(!out.status.success(), "ADD was not killed: {}", out.stdout);
    temporaries(bed.state_dir.path())
}

#[test]
fn del_and_gc_remove_the_temporary_files_of_killed_calls() {
    let bed = Bed::new();
    let conf = bed.interface_conf("shim");
    // Renames of ADD with a shim: the record, the shim's user marker, the route's owner.
    for nth in 1..=3 {
        let pod = bed.lan.pod(&format!("tmp{nth}"));
        let at = Attachment::new(&pod);
        let left = add_killed_at_rename(&bed, &at, &conf, nth);
        assert!(
            !left.is_empty(),
            "kill at rename {nth} left no temporary file"
        );
        let out = bed.call("DEL", &at, &conf).finish();
        assert!(out.status.success(), "{} {}", out.stdout, out.stderr);
        let after = temporaries(bed.state_dir.path());
        assert!(
            after.is_empty(),
            "DEL after a kill at rename {nth} left {after:?}"
        );
    }
    for nth in 1..=3 {
        let pod = bed.lan.pod(&format!("gc{nth}"));
        let at = Attachment::new(&pod);
        let left = add_killed_at_rename(&bed, &at, &conf, nth);
        assert!(
            !left.is_empty(),
            "kill at rename {nth} left no temporary file"
        );
        drop(pod);
        let mut gc = conf.clone();
        gc["cniVersion"] = json!("1.1.0");
        gc["cni.dev/valid-attachments"] = json!([]);
        let out = bed.call("GC", &Attachment::none(), &gc).finish();
        assert!(out.status.success(), "{} {}", out.stdout, out.stderr);
        let after = temporaries(bed.state_dir.path());
        assert!(
            after.is_empty(),
            "GC after a kill at rename {nth} left {after:?}"
        );
        // Debian's host-local has no GC: the allocation goes with DEL.
        let out = bed.call("DEL", &at.without_netns(), &conf).finish();
        assert!(out.status.success(), "{} {}", out.stdout, out.stderr);
    }
    assert!(bed.allocations().is_empty(), "{:?}", bed.allocations());
    // Not asserted here: a kill between the node's route and its owner record leaves the route
    // (issue 11, finding 5, a separate fix).
}

// ---------------------------------------------------------------------------------------------
// Finding 8: DEL on a read-only, empty stateDir
// ---------------------------------------------------------------------------------------------

#[test]
fn del_succeeds_on_a_read_only_state_dir_with_nothing_recorded() {
    let bed = Bed::new();
    let pod = bed.lan.pod("ro");
    let at = Attachment::new(&pod);
    let state = bed.state_dir.str().to_owned();
    // A private mount namespace: the read-only bind mount is seen by this call only.
    let script = format!(
        "mount --bind {state} {state} && mount -o remount,bind,ro {state} {state} && exec \"$@\""
    );
    for (what, conf) in [
        ("interface mode", bed.interface_conf("shim")),
        (
            "chained mode",
            json!({"cniVersion": "1.0.0", "name": NETWORK, "type": OUR_TYPE, "hostAccess": "veth", "stateDir": state}),
        ),
    ] {
        let out = bed
            .call("DEL", &at, &conf)
            .wrapped(&[
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
                "sh",
            ])
            .finish();
        assert!(
            out.status.success(),
            "{what}: DEL failed on a read-only empty stateDir: {} {}",
            out.stdout,
            out.stderr
        );
    }
    assert_eq!(
        fs::read_dir(bed.state_dir.path()).unwrap().count(),
        0,
        "stateDir was written"
    );
}

// ---------------------------------------------------------------------------------------------
// Finding 10: addresses that cannot be a pod's
// ---------------------------------------------------------------------------------------------

/// Addresses no pod may have, with a word the refusal must contain.
const NOT_A_POD_ADDRESS: &[(&str, &str)] = &[
    ("10.99.0.20/24", "gateway"), // NODE1's default gateway (PEER)
    ("fd99::20/64", "gateway"),
    ("10.99.0.10/24", "node"), // NODE1's own address
    ("224.0.0.5/24", "multicast"),
    ("ff02::5/64", "multicast"),
    ("10.99.0.255/24", "broadcast"),
    ("255.255.255.255/32", "broadcast"),
    ("0.0.0.0/0", "unspecified"),
    ("::/0", "unspecified"),
    ("10.99.0.61/0", "prefix"),
    ("127.0.0.5/8", "loopback"),
    ("::1/128", "loopback"),
    ("169.254.3.4/16", "link-local"),
    ("fe80::5/64", "link-local"),
    ("10.99.0.62", "prefix"),
];

fn chained_conf(bed: &Bed, pod: &Pod, mac: &str, address: &str, gateway: Option<&str>) -> Value {
    let mut ip = json!({"address": address, "interface": 0});
    if let Some(gw) = gateway {
        ip["gateway"] = json!(gw);
    }
    json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "type": OUR_TYPE,
        "master": "eth0",
        "hostAccess": "shim",
        "stateDir": bed.state_dir.str(),
        "prevResult": {
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "mac": mac, "sandbox": pod.path()}],
            "ips": [ip],
        },
    })
}

#[test]
fn a_prev_result_address_that_cannot_be_a_pods_is_refused_with_code_7() {
    let bed = Bed::new();
    let pod = bed.lan.pod("addr");
    // The pod's interface, as a previous plugin (macvlan) would have made it.
    bed.lan.node1.ip([
        "link", "add", "mvhpod", "link", "eth0", "type", "macvlan", "mode", "bridge",
    ]);
    bed.lan
        .node1
        .ip(["link", "set", "mvhpod", "netns", pod.name()]);
    pod.ip(["link", "set", "mvhpod", "name", "eth0"]);
    pod.ip(["link", "set", "eth0", "up"]);
    let mac = pod.mac("eth0");
    let at = Attachment::new(&pod);

    let mut cases: Vec<(String, Option<&str>, &str)> = NOT_A_POD_ADDRESS
        .iter()
        .map(|(a, why)| (a.to_string(), None, *why))
        .collect();
    cases.push(("10.99.0.63/24".into(), Some("10.99.0.63"), "gateway"));
    cases.push(("10.99.0.0/24".into(), None, "network address"));
    let mut accepted = Vec::new();
    for (address, gateway, why) in &cases {
        let conf = chained_conf(&bed, &pod, &mac, address, *gateway);
        let out = bed.call("ADD", &at, &conf).finish();
        if out.status.success() {
            accepted.push(address.clone());
            bed.call("DEL", &at, &conf).finish();
            continue;
        }
        assert_eq!(out.error_code(), 7, "{address}: {}", out.stdout);
        let msg = out.json()["msg"].as_str().unwrap().to_owned();
        let bare = address.split('/').next().unwrap();
        assert!(
            msg.contains(bare),
            "{address}: message does not name it: {msg}"
        );
        assert!(
            msg.contains(why),
            "{address}: message does not say {why:?}: {msg}"
        );
        assert!(msg.contains("prevResult"), "{address}: {msg}");
        assert_node_pristine(&bed.lan.node1, &format!("after refusing {address}"));
    }
    assert!(
        accepted.is_empty(),
        "accepted as pod addresses: {accepted:?}"
    );

    // A pod's ordinary address still works.
    let conf = chained_conf(&bed, &pod, &mac, "10.99.0.60/24", Some(PEER_IP4));
    let out = bed.call("ADD", &at, &conf).finish();
    assert!(out.status.success(), "{} {}", out.stdout, out.stderr);
    let out = bed.call("DEL", &at, &conf).finish();
    assert!(out.status.success(), "{} {}", out.stdout, out.stderr);
    assert_node_pristine(&bed.lan.node1, "after the last DEL");
}

#[test]
fn an_ipam_address_that_cannot_be_a_pods_is_refused_with_code_999_and_released() {
    let bed = Bed::new();
    let pod = bed.lan.pod("ipamaddr");
    let at = Attachment::new(&pod);
    for (address, why) in [
        ("10.99.0.20/24", "gateway"),
        ("224.0.0.9/24", "multicast"),
        ("10.99.0.64", "prefix"),
    ] {
        let reply =
            json!({"cniVersion": "1.0.0", "ips": [{"address": address, "gateway": PEER_IP4}]});
        let conf = bed.fake_ipam_conf(&reply, 0);
        let out = bed.call("ADD", &at, &conf).finish();
        if out.status.success() {
            bed.call("DEL", &at, &conf).finish();
            panic!("IPAM address {address} accepted: {}", out.stdout);
        }
        assert_eq!(out.error_code(), 999, "{address}: {}", out.stdout);
        let msg = out.json()["msg"].as_str().unwrap().to_owned();
        assert!(msg.contains(address.split('/').next().unwrap()), "{msg}");
        assert!(msg.contains(why), "{address}: {msg}");
        assert_eq!(
            bed.fake_ipam_calls(),
            ["ADD", "DEL"],
            "{address}: the allocation was not released"
        );
        assert!(!pod.has_link("eth0"), "{address}: eth0 left in the pod");
        assert_node_pristine(&bed.lan.node1, &format!("after refusing {address}"));
    }
}
