//! libcni, the library containerd and CRI-O run conflists with (Debian's 1.1.2), drives the
//! plugin through `tests/libcni-driver` on NODE1: ADD, CHECK and DEL of the whole list with
//! libcni's own result cache, a repeated DEL, and a CHECK that must fail after a route was
//! removed by hand. libcni 1.1.2 speaks conflists up to 1.0.0, so GC and STATUS (1.1.0) are
//! tested by running the binary directly.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Debian's golang-github-appc-cni-dev: libcni's sources in a GOPATH.
const GOPATH: &str = "/usr/share/gocode";

/// Builds the driver once per test binary (offline, GOPATH mode) and returns its path.
fn driver() -> &'static Path {
    static DRIVER: OnceLock<PathBuf> = OnceLock::new();
    DRIVER.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/libcni-driver");
        let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let binary = out_dir.join("libcni-driver");
        // Build under a private name, then rename: another test run never sees half a file.
        let partial = out_dir.join(format!("libcni-driver.{}", std::process::id()));
        let out = Command::new("go")
            .args(["build", "-o"])
            .arg(&partial)
            // The package (main.go and cni10.go: bookworm's libcni has no GC and no STATUS).
            .arg(".")
            .current_dir(&source)
            .env("GOPATH", GOPATH)
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("GOPROXY", "off")
            .env("GOCACHE", out_dir.join("go-cache"))
            .output()
            .expect("run go (golang-go)");
        assert!(
            out.status.success(),
            "building the libcni driver failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::rename(&partial, &binary).expect("install the libcni driver");
        binary
    })
}

/// A conflist on disk, run through libcni on a node with its own result cache.
struct Libcni {
    dir: TempDir,
    /// Owns the CNI_PATH directory: the reference plugins and ours.
    plugins: Plugin,
}

impl Libcni {
    fn new(conflist: &Value) -> Libcni {
        let dir = TempDir::new("libcni");
        fs::write(dir.join("net.conflist"), conflist.to_string()).expect("write conflist");
        fs::create_dir_all(dir.join("cache")).expect("create cache dir");
        Libcni {
            dir,
            plugins: Plugin::ours(),
        }
    }

    /// `libcni-driver VERB` for attachment `at`, inside `node`.
    fn run(&self, node: &Netns, verb: &str, at: &Attachment) -> Output {
        node.command(driver())
            .arg(verb)
            .arg(self.dir.join("net.conflist"))
            .args([&at.container_id, &at.netns, &at.ifname])
            .arg(self.dir.join("cache"))
            .env("CNI_PATH", self.plugins.cni_path())
            .output()
            .expect("run the libcni driver")
    }

    /// Runs `verb`, panics unless it succeeds, returns stdout parsed as JSON (`null` if empty).
    fn ok(&self, node: &Netns, verb: &str, at: &Attachment) -> Value {
        let out = self.run(node, verb, at);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "libcni {verb} failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).expect("the driver prints JSON")
        }
    }
}

/// What the conflists are made of: host-local's `dataDir` and our `stateDir`.
struct Dirs {
    host_local: TempDir,
    state: TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs {
            host_local: TempDir::new("host-local"),
            state: TempDir::new("state"),
        }
    }

    fn ipam(&self) -> Value {
        json!({
            "type": "host-local",
            "dataDir": self.host_local.str(),
            "ranges": [[{"subnet": SUBNET4, "rangeStart": "10.99.0.100", "rangeEnd": "10.99.0.149"}]],
        })
    }

    /// Records in our stateDir (its lock file aside).
    fn records(&self) -> Vec<String> {
        let mut found = Vec::new();
        for sub in ["attachments", "owners", "users"] {
            let Ok(read) = fs::read_dir(self.state.join(sub)) else {
                continue;
            };
            for entry in read.flatten() {
                found.push(format!("{sub}/{}", entry.file_name().to_string_lossy()));
            }
        }
        found
    }
}

/// Reference `macvlan` + `host-local`, then `macvlan-host` (the form containerd/CRI-O users
/// deploy), or `macvlan-host` alone with `ipam`.
fn conflist(chained: bool, host_access: &str, dirs: &Dirs) -> Value {
    let ours = json!({"type": OUR_TYPE, "hostAccess": host_access, "stateDir": dirs.state.str()});
    let plugins = if chained {
        json!([{"type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": dirs.ipam()}, ours])
    } else {
        let mut ours = ours;
        ours["master"] = json!("eth0");
        ours["ipam"] = dirs.ipam();
        json!([ours])
    };
    json!({"cniVersion": "1.0.0", "name": "mvh-libcni", "plugins": plugins})
}

/// The first address of a CNI result, without its prefix length.
fn first_ip(result: &Value) -> String {
    let cidr = result["ips"][0]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no address in {result}"));
    cidr.split('/').next().unwrap().to_string()
}

/// NODE1 holds nothing of the attachment: no link but `lo` and `eth0`, no route but the LAN's
/// and the default, no permanent neighbour entry; no record, no allocation; no pod interface.
fn assert_nothing_left(lan: &Lan, pod: &Pod, dirs: &Dirs) {
    assert_node_pristine(&lan.node1, "after DEL");
    assert!(dirs.records().is_empty(), "records: {:?}", dirs.records());
    let allocations = host_local_allocations(dirs.host_local.path());
    assert!(allocations.is_empty(), "allocations: {allocations:?}");
    assert!(!pod.has_link("eth0"), "the pod still has eth0");
}

cases!(whole_list_through_libcni {
    chained_list_with_shim: (true, "shim"),
    chained_list_with_veth: (true, "veth"),
    standalone_list_with_shim: (false, "shim"),
    standalone_list_with_veth: (false, "veth"),
});

/// ADD, CHECK, CHECK after a route was removed by hand, DEL, DEL again, all through libcni.
fn whole_list_through_libcni(chained: bool, host_access: &str) {
    let lan = Lan::new();
    let pod = lan.pod("a");
    let dirs = Dirs::new();
    let libcni = Libcni::new(&conflist(chained, host_access, &dirs));
    let at = Attachment::new(&pod);

    let result = libcni.ok(&lan.node1, "ADD", &at);
    let ip = first_ip(&result);
    assert!(lan.node1.ping(&ip), "NODE1 -> pod {ip}");
    assert!(pod.ping(NODE1_IP4), "pod -> NODE1");
    assert!(pod.ping(PEER_IP4), "pod -> PEER");
    // libcni cached the list's final result: the one CHECK and DEL get as prevResult.
    assert_eq!(
        libcni.ok(&lan.node1, "CACHED", &at),
        result,
        "libcni's cached result"
    );
    libcni.ok(&lan.node1, "CHECK", &at);

    lan.node1.ip(["route", "del", &format!("{ip}/32")]);
    let check = libcni.run(&lan.node1, "CHECK", &at);
    assert!(
        !check.status.success(),
        "CHECK passed without the node's route to the pod"
    );
    let why = String::from_utf8_lossy(&check.stderr);
    assert!(why.contains(&ip), "CHECK's error names the pod: {why}");

    libcni.ok(&lan.node1, "DEL", &at);
    assert_nothing_left(&lan, &pod, &dirs);
    assert_eq!(
        libcni.ok(&lan.node1, "CACHED", &at),
        Value::Null,
        "cache after DEL"
    );
    // A runtime repeats DEL when it is unsure the first one ran: it must succeed again.
    libcni.ok(&lan.node1, "DEL", &at);
    assert_nothing_left(&lan, &pod, &dirs);
}

/// GC and STATUS need cniVersion 1.1.0, which Debian's libcni does not speak: the binary runs
/// directly, as a 1.1.0 runtime would call it.
#[test]
fn gc_and_status_run_directly_at_1_1_0() {
    let lan = Lan::new();
    let dirs = Dirs::new();
    let plugin = Plugin::ours();
    let mut conf = json!({
        "cniVersion": "1.1.0",
        "name": "mvh-gc",
        "type": OUR_TYPE,
        "master": "eth0",
        "stateDir": dirs.state.str(),
        "ipam": dirs.ipam(),
    });
    let (kept_pod, stale_pod) = (lan.pod("kept"), lan.pod("stale"));
    let (kept, stale) = (Attachment::new(&kept_pod), Attachment::new(&stale_pod));
    let kept_ip = first_ip(plugin.add(&lan.node1, &kept, &conf).expect_ok());
    let stale_ip = first_ip(plugin.add(&lan.node1, &stale, &conf).expect_ok());
    assert!(lan.node1.ping(&stale_ip), "NODE1 -> stale pod before GC");

    assert!(plugin
        .run(&lan.node1, "STATUS", &Attachment::none(), &conf)
        .success());

    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] =
        json!([{"containerID": kept.container_id, "ifname": kept.ifname}]);
    plugin
        .run(&lan.node1, "GC", &Attachment::none(), &gc)
        .expect_ok();
    assert!(lan.node1.ping(&kept_ip), "NODE1 -> kept pod after GC");
    assert!(
        !lan.node1.ping(&stale_ip),
        "NODE1 still reaches the stale pod"
    );
    let records = dirs.records();
    assert!(
        records.iter().all(|r| !r.contains(&stale.container_id)),
        "stale records kept: {records:?}"
    );
    assert!(
        records.iter().any(|r| r.contains(&kept.container_id)),
        "kept record removed: {records:?}"
    );

    // STATUS: the plugin cannot take ADDs while its master is down.
    lan.node1.ip(["link", "set", "eth0", "down"]);
    let down = plugin.run(&lan.node1, "STATUS", &Attachment::none(), &conf);
    assert_eq!(down.expect_error(), 50, "STATUS with the master down");
    lan.node1.ip(["link", "set", "eth0", "up"]);
    conf["master"] = json!("eth9");
    let missing = plugin.run(&lan.node1, "STATUS", &Attachment::none(), &conf);
    assert_eq!(missing.expect_error(), 50, "STATUS without the master");
}
