//! Process-level fuzz: the real binary, inside the LAN test bed, with mutated configurations,
//! prevResults, IPAM results and environments, for every verb and every wiring. The mutations
//! come from a seeded generator (deterministic: `FUZZ_PROCESS_SEED`), applied to real inputs.
//!
//! Every call must: end within its time limit; print exactly one JSON document on stdout (an
//! error with a non-zero `code` and a `msg` when it fails; nothing, or one document, when it
//! succeeds); never panic (no code 999 "panic", no "panicked" on stderr); leave nothing behind
//! (a failed ADD rolls back by itself; after the runtime's DEL and a GC, no link, route,
//! permanent neighbour, record or allocation remains); and never take the node's own links.
//!
//! Safety: every call runs in a private mount namespace whose `/run` and `/var/lib/cni` are
//! empty tmpfs (see `PrivateMounts`), and a mutation that points stateDir, dataDir or logFile
//! anywhere else outside the test's directory is skipped.
//!
//! The first cases are targeted (what an adversarial tester tries first: namespace paths that
//! are not a pod's, log files that are not regular files, an IPAM error code that does not fit,
//! addresses that cannot be a pod's); then random ones.
//! `cargo test --test fuzz_process` runs FUZZ_PROCESS_CASES random cases (default 200) within
//! FUZZ_PROCESS_SECONDS (default 60); scripts/fuzz.sh runs thousands.

mod campaign;
mod common;

use campaign::*;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The time limit of one fuzzed call: far above any honest call on this machine.
const CALL_LIMIT: Duration = Duration::from_secs(5);
const NETWORK: &str = "fuzz";
/// Stands for the node's own namespace path in a targeted case.
const NODE_NETNS: &str = "@node";
const VERBS: [&str; 6] = ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"];

// ---------------------------------------------------------------------------------------------
// A deterministic generator
// ---------------------------------------------------------------------------------------------

/// splitmix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

/// Values that break parsers and assumptions: wrong types, extremes, addresses that are not a
/// pod's, names of the node's own objects, paths of special files (inside the test directory).
fn interesting_values(base: &Path) -> Vec<Value> {
    let b = base.display();
    vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(1099511627776u64),
        json!(u64::MAX),
        json!(1e308),
        json!(0.5),
        json!(""),
        json!("x".repeat(300)),
        json!("\u{0}"),
        json!("é😀"),
        json!({}),
        json!([]),
        json!([null]),
        json!("eth0"),
        json!("lo"),
        json!("mvh-eth0"),
        json!("10.99.0.10/24"),
        json!("10.99.0.1/32"),
        json!("10.99.0.20/24"),
        json!("224.0.0.1/32"),
        json!("255.255.255.255/32"),
        json!("0.0.0.0/0"),
        json!("127.0.0.1/8"),
        json!("10.99.0.150"),
        json!("fe80::1/64"),
        json!("::/0"),
        json!("fd99::10/64"),
        json!("1.1.0"),
        json!("0.1.0"),
        json!("9.9.9"),
        json!("bridge"),
        json!("passthru"),
        json!("veth"),
        json!("none"),
        json!("host-local"),
        json!("../macvlan"),
        json!("fuzz-ipam"),
        json!(format!("{b}/state-2")),
        json!(format!("{b}/fifo")),
        json!(format!("{b}/log.txt")),
        json!(format!("{b}/dir")),
        json!("/dev/stdout"),
        json!("/proc/self/fd/1"),
    ]
}

/// Keys the plugin or its IPAM plugin reads, to add where they are not.
const KEYS: &[&str] = &[
    "master",
    "mode",
    "mtu",
    "hostAccess",
    "shimName",
    "shimAddresses",
    "hostRoutes",
    "vethName",
    "stateDir",
    "logFile",
    "logLevel",
    "ipam",
    "prevResult",
    "cni.dev/valid-attachments",
    "cniVersion",
    "name",
    "type",
    "runtimeConfig",
    "args",
    "result",
    "exit",
    "dataDir",
    "ips",
    "interfaces",
    "address",
    "gateway",
    "interface",
    "routes",
    "code",
];

/// Applies one structural mutation at a random place of `v`.
fn mutate_value(v: &mut Value, rng: &mut Rng, values: &[Value], depth: usize) {
    let descend = depth < 6 && rng.chance(60);
    match v {
        Value::Object(map) if descend && !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).cloned().unwrap();
            mutate_value(map.get_mut(&key).unwrap(), rng, values, depth + 1);
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let i = rng.below(items.len());
            mutate_value(&mut items[i], rng, values, depth + 1);
        }
        Value::Object(map) => match rng.below(4) {
            0 if !map.is_empty() => {
                let key = map.keys().nth(rng.below(map.len())).cloned().unwrap();
                map.remove(&key);
            }
            1 => {
                let key = rng.pick(KEYS).to_string();
                map.insert(key, rng.pick(values).clone());
            }
            _ => *v = rng.pick(values).clone(),
        },
        Value::Array(items) => match rng.below(3) {
            0 if !items.is_empty() => {
                let i = rng.below(items.len());
                let copy = items[i].clone();
                items.push(copy);
            }
            1 if !items.is_empty() => {
                items.remove(rng.below(items.len()));
            }
            _ => items.push(rng.pick(values).clone()),
        },
        Value::String(s) => match rng.below(4) {
            0 => {
                let mut bytes = s.clone().into_bytes();
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(7);
                }
                *s = String::from_utf8_lossy(&bytes).into_owned();
            }
            1 => {
                let cut = rng.below(s.len() + 1);
                *s = s.chars().take(cut).collect();
            }
            2 => s.push_str(&s.clone()),
            _ => *v = rng.pick(values).clone(),
        },
        Value::Number(n) => {
            let x = n.as_i64().unwrap_or(0);
            *v = match rng.below(4) {
                0 => json!(x.wrapping_add(1)),
                1 => json!(x.wrapping_neg()),
                2 => json!(x.wrapping_mul(4096)),
                _ => rng.pick(values).clone(),
            };
        }
        _ => *v = rng.pick(values).clone(),
    }
}

/// Byte-level damage to a serialised document: flips, cuts, insertions.
fn mutate_bytes(bytes: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..=rng.below(3) {
        if bytes.is_empty() {
            bytes.push(b'{');
            continue;
        }
        let i = rng.below(bytes.len());
        match rng.below(4) {
            0 => bytes[i] ^= 1 << rng.below(8),
            1 => bytes.truncate(i),
            2 => bytes.insert(i, *rng.pick(b"{}[]\",:0\\\x00\xff")),
            _ => {
                bytes.remove(i);
            }
        }
    }
}

/// Whether every path the call would write to stays inside `base` (or is one of the special
/// files a test may name: the plugin's own stdout). A document that does not parse names no
/// path the plugin would use.
fn paths_stay_inside(stdin: &[u8], base: &Path) -> bool {
    let Ok(Value::Object(conf)) = serde_json::from_slice::<Value>(stdin) else {
        return true;
    };
    let inside = |v: Option<&Value>, special_ok: bool| match v {
        None => true,
        Some(Value::String(p)) => {
            (special_ok && (p == "/dev/stdout" || p == "/proc/self/fd/1"))
                || (Path::new(p).starts_with(base) && !p.contains("..") && !p.contains('\0'))
        }
        // Not a string: refused before it is used as a path.
        Some(_) => true,
    };
    let ipam = conf.get("ipam").and_then(Value::as_object);
    inside(conf.get("stateDir"), false)
        && inside(conf.get("logFile"), true)
        && inside(ipam.and_then(|i| i.get("dataDir")), false)
}

// ---------------------------------------------------------------------------------------------
// The test bed
// ---------------------------------------------------------------------------------------------

/// The fake IPAM plugin: answers ADD with the `result` of its configuration (which the fuzzer
/// mutates) and exits with its `exit` code, so IPAM results and errors get fuzzed too.
const FAKE_IPAM: &str = r#"#!/bin/sh
conf=$(cat)
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}' ;;
ADD)
    printf '%s' "$conf" | jq -c '.ipam.result // {}' 2>/dev/null || echo '{}'
    code=$(printf '%s' "$conf" | jq '.ipam.exit // 0 | if type == "number" then (floor % 256 + 256) % 256 else 0 end' 2>/dev/null)
    exit "${code:-0}" ;;
*) exit 0 ;;
esac
"#;

struct Bed {
    lan: Lan,
    base: TempDir,
    cni_path: TempDir,
    mounts: PrivateMounts,
    _plugin: Plugin,
}

impl Bed {
    fn new() -> Bed {
        let lan = Lan::new();
        let base = TempDir::new("fuzz");
        let plugin = Plugin::ours();
        // CNI_PATH: the reference plugins, ours, and the fake IPAM plugin.
        let cni_path = TempDir::new("fuzz-cni");
        for entry in std::fs::read_dir(plugin.cni_path()).unwrap().flatten() {
            let target = std::fs::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(target, cni_path.join(entry.file_name())).unwrap();
        }
        let fake = cni_path.join("fuzz-ipam");
        std::fs::write(&fake, FAKE_IPAM).unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        // Special files a mutation may name: a FIFO without reader, a directory.
        nix::unistd::mkfifo(
            &base.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        std::fs::create_dir_all(base.join("dir")).unwrap();
        let mounts = PrivateMounts::new();
        Bed {
            lan,
            base,
            cni_path,
            mounts,
            _plugin: plugin,
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.base.join("state")
    }

    fn data_dir(&self) -> PathBuf {
        self.base.join("data")
    }

    /// The seed network of `wiring`: real configurations as the other tests use them.
    fn net(&self, wiring: Wiring) -> Wired {
        let mut net = Wired::new(
            NETWORK,
            wiring,
            &self.state_dir(),
            &self.data_dir(),
            range_for(0),
            self.cni_path.path(),
        );
        net.mount_ns = Some(self.mounts.pid());
        net
    }

    /// The node lost one of its own links or its address: the pod path touched the node.
    fn node_broken(&self) -> Option<String> {
        let node = &self.lan.node1;
        if !node.has_link("eth0") {
            return Some("the node's eth0 is gone".into());
        }
        let addrs = node.ip(["-4", "addr", "show", "dev", "eth0"]);
        if !addrs.contains(NODE1_IP4) {
            return Some("the node's eth0 lost its address".into());
        }
        None
    }
}

/// One fuzzed call and what it was made from.
struct Case {
    verb: &'static str,
    wiring: Wiring,
    stdin: Vec<u8>,
    env: Vec<(String, String)>,
    mutated: String,
}

/// The adversarial values of each CNI variable.
fn env_values(bed: &Bed, var: &str, pod: &Pod) -> Vec<String> {
    let b = bed.base.str();
    match var {
        "CNI_COMMAND" => vec!["add", "ADD ", "FOO", "VERSION", "STATUS", "GC"]
            .into_iter()
            .map(String::from)
            .collect(),
        "CNI_CONTAINERID" => vec![
            String::new(),
            "../../etc".into(),
            "a b".into(),
            "x".repeat(300),
            "é".into(),
            pod.name().to_string(),
        ],
        "CNI_NETNS" => vec![
            String::new(),
            "/proc/self/ns/net".into(),
            "/proc/thread-self/ns/net".into(),
            bed.lan.node1.path(),
            format!("{b}/fifo"),
            format!("{b}/dir"),
            "/dev/null".into(),
            "/nonexistent/ns".into(),
            "relative/ns".into(),
        ],
        "CNI_IFNAME" => vec![
            String::new(),
            "lo".into(),
            "a/b".into(),
            "x".repeat(16),
            "..".into(),
            "mvh-eth0".into(),
            "net1".into(),
            "eth0 ".into(),
        ],
        "CNI_ARGS" => vec![
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0".into(),
            "a".into(),
            "=;=;".into(),
            "IgnoreUnknown=true;FOO=bar".into(),
            "K8S_POD_NAME".into(),
        ],
        _ => vec![
            String::new(),
            "/nonexistent".into(),
            b.to_string(),
            format!("{}:{}", b, bed.cni_path.str()),
        ],
    }
}

/// A hand-picked mutation: the inputs an adversarial tester tries first, run before the random
/// cases so that every run covers them.
struct Targeted {
    verb: &'static str,
    wiring: Wiring,
    env: Option<(&'static str, String)>,
    /// (JSON pointer of the configuration, value)
    conf: Vec<(&'static str, Value)>,
    fake_ipam: bool,
    /// The call must fail (the input is not acceptable, whatever else happens).
    refuse: bool,
}

fn targeted_cases(bed: &Bed) -> Vec<Targeted> {
    let b = bed.base.str();
    let mut list = Vec::new();
    let pod_placeholder = bed.lan.pod("placeholder");
    // A namespace path that is not a pod's: the node's own, special files, nothing.
    for verb in ["ADD", "CHECK", "DEL"] {
        for mut netns in env_values(bed, "CNI_NETNS", &pod_placeholder) {
            // The node's own namespace by name: resolved when the case runs (the LAN is
            // rebuilt when a case took the node's links).
            if netns == bed.lan.node1.path() {
                netns = NODE_NETNS.to_string();
            }
            // ADD and CHECK need a pod's namespace; no verb may act on the node's own.
            let nodes_own = netns.starts_with("/proc/") || netns == NODE_NETNS;
            list.push(Targeted {
                verb,
                wiring: Wiring::InterfaceShim,
                refuse: verb != "DEL" || nodes_own,
                env: Some(("CNI_NETNS", netns)),
                conf: vec![],
                fake_ipam: false,
            });
        }
    }
    // A log file that is not a regular file.
    for log in [
        format!("{b}/fifo"),
        format!("{b}/dir"),
        "/dev/stdout".into(),
        "/proc/self/fd/1".into(),
    ] {
        list.push(Targeted {
            verb: "ADD",
            wiring: Wiring::InterfaceShim,
            env: None,
            conf: vec![("/logFile", json!(log)), ("/logLevel", json!("debug"))],
            fake_ipam: false,
            refuse: false,
        });
    }
    // An IPAM error whose code does not fit.
    list.push(Targeted {
        verb: "ADD",
        wiring: Wiring::InterfaceShim,
        env: None,
        conf: vec![
            (
                "/ipam/result",
                json!({"cniVersion": "1.1.0", "code": 1099511627776u64, "msg": "no addresses"}),
            ),
            ("/ipam/exit", json!(1)),
        ],
        fake_ipam: true,
        refuse: true,
    });
    // Addresses that cannot be a pod's: the node's gateway, its own, multicast, broadcast,
    // everything, loopback, no prefix; from IPAM and from a prevResult.
    for address in [
        PEER_IP4.to_string() + "/24",
        NODE1_IP4.to_string() + "/24",
        "224.0.0.1/24".into(),
        "255.255.255.255/32".into(),
        "0.0.0.0/0".into(),
        "127.0.0.1/8".into(),
        "10.99.0.140".into(),
    ] {
        list.push(Targeted {
            verb: "ADD",
            wiring: Wiring::InterfaceShim,
            env: None,
            conf: vec![("/ipam/result/ips/0/address", json!(address))],
            fake_ipam: true,
            refuse: true,
        });
        list.push(Targeted {
            verb: "ADD",
            wiring: Wiring::ChainedShim,
            env: None,
            conf: vec![("/prevResult/ips/0/address", json!(address))],
            fake_ipam: false,
            refuse: true,
        });
    }
    list
}

/// Sets the value at a JSON pointer whose parent exists.
fn set_pointer(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key.to_string(), value);
        }
        Some(Value::Array(items)) => {
            if let Some(slot) = key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *slot = value;
            }
        }
        _ => panic!("no {parent} in {doc}"),
    }
}

/// The fake IPAM plugin's configuration, with a real-looking result.
fn fake_ipam() -> Value {
    json!({
        "type": "fuzz-ipam",
        "result": {"cniVersion": "1.1.0", "ips": [{"address": "10.99.0.140/24", "gateway": "10.99.0.1"}],
                    "routes": [{"dst": "0.0.0.0/0"}], "dns": {}},
        "exit": 0,
    })
}

/// Builds a targeted case.
fn make_targeted(bed: &Bed, t: &Targeted, net: &Wired, pod: &Pod, prev: Option<&Value>) -> Case {
    let mut conf = net.our_conf(prev);
    if t.fake_ipam {
        conf["ipam"] = fake_ipam();
    }
    for (pointer, value) in &t.conf {
        set_pointer(&mut conf, pointer, value.clone());
    }
    let at = Attachment::new(pod);
    let mut env = vec![
        ("CNI_COMMAND".to_string(), t.verb.to_string()),
        ("CNI_CONTAINERID".into(), at.container_id.clone()),
        ("CNI_NETNS".into(), at.netns.clone()),
        ("CNI_IFNAME".into(), at.ifname.clone()),
        ("CNI_ARGS".into(), String::new()),
        ("CNI_PATH".into(), bed.cni_path.str().to_string()),
    ];
    let mut mutated: Vec<String> = t.conf.iter().map(|(p, v)| format!("{p}={v}")).collect();
    if let Some((var, value)) = &t.env {
        let value = if value == NODE_NETNS {
            bed.lan.node1.path()
        } else {
            value.clone()
        };
        for (k, v) in env.iter_mut() {
            if k == var {
                *v = value.clone();
            }
        }
        mutated.push(format!("{var}={value:?}"));
    }
    Case {
        verb: t.verb,
        wiring: t.wiring,
        stdin: serde_json::to_vec(&conf).unwrap(),
        env,
        mutated: format!("targeted: {}", mutated.join(", ")),
    }
}

/// Builds one case from the seed inputs of `verb` × `wiring`, then mutates it.
fn make_case(
    bed: &Bed,
    rng: &mut Rng,
    verb: &'static str,
    wiring: Wiring,
    net: &Wired,
    pod: &Pod,
    prev: Option<&Value>,
) -> Case {
    let mut conf = net.our_conf(prev);
    if ["GC", "STATUS"].contains(&verb) {
        conf["cniVersion"] = json!("1.1.0");
    }
    if verb == "GC" {
        conf["cni.dev/valid-attachments"] = json!([]);
    }
    // In interface mode, one ADD in four delegates to the fake IPAM plugin with a real-looking
    // result that the mutations then damage.
    if verb == "ADD" && !wiring.chained() && rng.chance(25) {
        conf["ipam"] = fake_ipam();
    }
    let values = interesting_values(bed.base.path());
    let mut mutated = Vec::new();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        mutate_value(&mut conf, rng, &values, 0);
    }
    mutated.push(format!("{rounds} JSON mutation(s)"));
    let mut stdin = serde_json::to_vec(&conf).unwrap();
    if rng.chance(15) {
        mutate_bytes(&mut stdin, rng);
        mutated.push("bytes".into());
    }
    let at = Attachment::new(pod);
    let mut env = vec![
        ("CNI_COMMAND".to_string(), verb.to_string()),
        ("CNI_CONTAINERID".into(), at.container_id.clone()),
        ("CNI_NETNS".into(), at.netns.clone()),
        ("CNI_IFNAME".into(), at.ifname.clone()),
        ("CNI_ARGS".into(), String::new()),
        ("CNI_PATH".into(), bed.cni_path.str().to_string()),
    ];
    if ["GC", "STATUS", "VERSION"].contains(&verb) {
        for (k, v) in env.iter_mut() {
            if k != "CNI_COMMAND" && k != "CNI_PATH" {
                v.clear();
            }
        }
    }
    if rng.chance(35) {
        let i = rng.below(env.len());
        let var = env[i].0.clone();
        let choices = env_values(bed, &var, pod);
        env[i].1 = rng.pick(&choices).clone();
        mutated.push(format!("{var}={:?}", env[i].1));
    }
    Case {
        verb,
        wiring,
        stdin,
        env,
        mutated: mutated.join(", "),
    }
}

/// What is wrong with the output of one call (empty: nothing).
fn judge_output(case: &Case, out: &Outcome) -> Vec<Leftover> {
    let mut problems = Vec::new();
    let mut bad = |kind: &'static str, what: String| problems.push(Leftover { kind, what });
    let Some(status) = out.status else {
        bad("hang", format!("no answer within {CALL_LIMIT:?}"));
        return problems;
    };
    if out.stderr.contains("panicked") {
        bad(
            "panic",
            out.stderr.lines().take(3).collect::<Vec<_>>().join(" | "),
        );
    }
    let docs: Vec<Result<Value, String>> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .map(|d| d.map_err(|e| e.to_string()))
        .collect();
    let text = out.stdout_text();
    let parsed: Vec<&Value> = docs.iter().filter_map(|d| d.as_ref().ok()).collect();
    if docs.iter().any(Result::is_err) || parsed.len() > 1 {
        bad(
            "stdout not one JSON document",
            text.chars().take(200).collect(),
        );
        return problems;
    }
    let doc = parsed.first().copied();
    // The effective verb is what CNI_COMMAND says, mutated or not.
    let command = case
        .env
        .iter()
        .find(|(k, _)| k == "CNI_COMMAND")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if status.success() {
        match (command, doc) {
            ("ADD" | "VERSION", None) => bad(
                "stdout not one JSON document",
                "success without a result".into(),
            ),
            (_, Some(d)) if d.get("code").is_some() => bad("error with exit 0", d.to_string()),
            _ => {}
        }
    } else {
        match doc {
            None => bad(
                "stdout not one JSON document",
                "failure without an error".into(),
            ),
            Some(d) => {
                let code = d["code"].as_u64();
                if code.is_none_or(|c| c == 0) {
                    bad("error code 0 or missing", d.to_string());
                }
                if !d["msg"].is_string() {
                    bad("error without msg", d.to_string());
                }
                if code == Some(999) && d["msg"].as_str().is_some_and(|m| m.contains("panic")) {
                    bad("panic", d.to_string());
                }
            }
        }
    }
    problems
}

#[test]
fn mutated_inputs_get_one_clear_answer_and_leave_nothing() {
    let cases: usize = std::env::var("FUZZ_PROCESS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seconds: u64 = std::env::var("FUZZ_PROCESS_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cases > 200 { 86_400 } else { 60 });
    let seed: u64 = std::env::var("FUZZ_PROCESS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6d76_682d_6675_7a7a);
    let mut rng = Rng(seed);
    let mut bed = Bed::new();
    let targeted = targeted_cases(&bed);
    let cases = cases + targeted.len();
    let start = Instant::now();
    let (mut ran, mut skipped, mut errors, mut successes) = (0usize, 0usize, 0usize, 0usize);
    let mut failures: Vec<(usize, String, Leftover)> = Vec::new();

    for i in 0..cases {
        if start.elapsed() > Duration::from_secs(seconds) {
            break;
        }
        let target = targeted.get(i);
        let (verb, wiring) = match target {
            Some(t) => (t.verb, t.wiring),
            None => (*rng.pick(&VERBS), *rng.pick(&Wiring::ALL)),
        };
        let net = bed.net(wiring);
        let pod = bed.lan.pod(&format!("f{i}"));
        let at = Attachment::new(&pod);

        // The state the verb expects: CHECK, DEL and GC an attached pod; ADD (chained) the
        // reference macvlan's interface.
        let mut prev = None;
        if ["CHECK", "DEL", "GC"].contains(&verb) {
            match net.add(&bed.lan.node1, &at) {
                Ok(result) => prev = Some(result),
                Err(e) => panic!("seed ADD ({}) failed: {e}", wiring.label()),
            }
        } else if verb == "ADD" && wiring.chained() {
            prev = Some(net.create_pod_link(&bed.lan.node1, &at).unwrap());
        }

        let case = match target {
            Some(t) => make_targeted(&bed, t, &net, &pod, prev.as_ref()),
            None => make_case(&bed, &mut rng, verb, wiring, &net, &pod, prev.as_ref()),
        };
        let label = format!(
            "case {i} ({} {}; {})",
            case.verb,
            case.wiring.label(),
            case.mutated
        );
        let case_env_paths_ok = case.env.iter().all(|(k, v)| {
            k != "CNI_PATH"
                || v.split(':').all(|p| {
                    p.is_empty()
                        || Path::new(p).starts_with(bed.base.path())
                        || Path::new(p).starts_with(bed.cni_path.path())
                        || p == "/nonexistent"
                })
        });
        if !paths_stay_inside(&case.stdin, bed.base.path()) || !case_env_paths_ok {
            skipped += 1;
            if target.is_some() {
                eprintln!("fuzz process: targeted {label} skipped");
            }
            cleanup(&bed, &net, &at, prev.as_ref());
            continue;
        }
        ran += 1;
        let call = Call {
            command: case.verb,
            at: &at,
            cni_path: bed.cni_path.path(),
            mount_ns: Some(bed.mounts.pid()),
        };
        let out = run_plugin(
            &bed.lan.node1,
            &[],
            &net.plugin,
            &call,
            &case.env,
            &case.stdin,
            CALL_LIMIT,
        );
        if out.success() {
            successes += 1;
        } else {
            errors += 1;
        }
        let mut found = judge_output(&case, &out);
        if target.is_some_and(|t| t.refuse) && out.success() {
            found.push(Leftover {
                kind: "accepted what it must refuse",
                what: case.mutated.clone(),
            });
        }

        // A failed ADD rolls back by itself: nothing of ours on the node, no allocation in
        // interface mode (in chained mode the reference macvlan's allocation is its own).
        let effective = case
            .env
            .iter()
            .find(|(k, _)| k == "CNI_COMMAND")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if let Some(why) = bed.node_broken() {
            found.push(Leftover {
                kind: "node link taken",
                what: why,
            });
        } else if effective == "ADD" && !out.success() && out.status.is_some() {
            let data = bed.data_dir();
            let data_dirs: Vec<&Path> = if wiring.chained() {
                vec![]
            } else {
                vec![&data]
            };
            for left in leftovers(&bed.lan.node1, &[&bed.state_dir()], &data_dirs, &[]) {
                found.push(Leftover {
                    kind: left.kind,
                    what: format!("after the failed ADD: {}", left.what),
                });
            }
        }

        // The runtime's recovery: DEL as the call was made (when ADD succeeded), DEL of the
        // seed, GC; then nothing may be left.
        if effective == "ADD" && out.success() {
            let del_env: Vec<(String, String)> = case
                .env
                .iter()
                .map(|(k, v)| {
                    if k == "CNI_COMMAND" {
                        (k.clone(), "DEL".to_string())
                    } else {
                        (k.clone(), v.clone())
                    }
                })
                .collect();
            let mut del_conf: Value = serde_json::from_slice(&case.stdin).unwrap_or(Value::Null);
            if let (Value::Object(map), Ok(result)) =
                (&mut del_conf, serde_json::from_slice::<Value>(&out.stdout))
            {
                map.insert("prevResult".into(), result);
            }
            let del = run_plugin(
                &bed.lan.node1,
                &[],
                &net.plugin,
                &Call {
                    command: "DEL",
                    ..call.clone()
                },
                &del_env,
                &serde_json::to_vec(&del_conf).unwrap(),
                CALL_LIMIT,
            );
            if !del.success() {
                found.push(Leftover {
                    kind: "DEL after ADD failed",
                    what: del.stdout_text(),
                });
            }
        }
        if bed.node_broken().is_none() {
            cleanup(&bed, &net, &at, prev.as_ref());
            let mut dirs: Vec<PathBuf> = vec![bed.state_dir()];
            dirs.push(bed.base.join("state-2"));
            let dir_refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
            for left in leftovers(&bed.lan.node1, &dir_refs, &[&bed.data_dir()], &[]) {
                found.push(Leftover {
                    kind: left.kind,
                    what: format!("after DEL and GC: {}", left.what),
                });
            }
        }
        if !found.is_empty() {
            // What was sent, to replay the case by hand.
            let stdin: String = String::from_utf8_lossy(&case.stdin)
                .chars()
                .take(600)
                .collect();
            eprintln!(
                "fuzz process: case {i} stdin: {stdin}\n  env: {:?}",
                case.env
            );
        }
        for f in found {
            failures.push((i, label.clone(), f));
        }
        // The next case starts from a pristine node, whatever this one did.
        drop(pod);
        // (A LAN whose node lost its links is replaced: nothing could be cleaned up on it.)
        if bed.node_broken().is_some() {
            bed.lan = Lan::new();
        } else {
            reset_node(&bed.lan.node1);
        }
        let _ = std::fs::remove_dir_all(bed.state_dir());
        let _ = std::fs::remove_dir_all(bed.base.join("state-2"));
        let _ = std::fs::remove_dir_all(bed.data_dir());
    }

    let by_kind = count_by_kind(failures.iter().map(|(_, _, l)| l.kind));
    let failed_cases: BTreeSet<usize> = failures.iter().map(|(i, _, _)| *i).collect();
    println!(
        "fuzz process: {ran} cases run ({successes} succeeded, {errors} refused/failed), {skipped} skipped (paths outside the test directory), {} cases failed, in {:.0?}",
        failed_cases.len(),
        start.elapsed()
    );
    println!("fuzz process: failures by kind: {by_kind:?}");
    let mut report = String::new();
    for (_, label, f) in &failures {
        report.push_str(&format!("  {label}: {}: {}\n", f.kind, f.what));
    }
    if !report.is_empty() {
        println!("fuzz process: every failure:\n{report}");
    }
    assert!(ran > 0, "no case ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} fuzzed calls misbehaved ({by_kind:?}):\n{report}",
        failed_cases.len()
    );
}

/// The runtime's DEL of the seed attachment (ours, then the reference macvlan's in chained
/// mode) and a GC that keeps nothing.
fn cleanup(bed: &Bed, net: &Wired, at: &Attachment, prev: Option<&Value>) {
    net.del(&bed.lan.node1, at, prev);
    if prev.is_none() && net.wiring.chained() {
        // A chained ADD case that never got a prevResult still has the macvlan's allocation.
        net.del(&bed.lan.node1, at, None);
    }
    net.gc(&bed.lan.node1, &[]);
}
