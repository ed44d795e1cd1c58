//! netavark's side of the protocol, played by the test: the binary run inside NODE1 as
//! netavark runs it (`create`, `setup NETNS`, `teardown NETNS`, `info`; JSON on stdin), with
//! requests built from the calls podman 5.4 / netavark 1.14 made to a recording plugin
//! (`samples/`, from ../shared/notes/protocol-samples/netavark-plugin/).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::common::*;

/// What one call printed, and whether it exited 0.
pub struct Reply {
    pub ok: bool,
    pub json: Value,
    pub stderr: String,
}

impl Reply {
    pub fn expect_ok(&self) -> &Value {
        assert!(
            self.ok,
            "expected success, got {} ({})",
            self.json, self.stderr
        );
        &self.json
    }

    /// The `{"error": ...}` message; the call must have exited 1.
    pub fn expect_error(&self) -> String {
        assert!(!self.ok, "expected an error, got {}", self.json);
        self.json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no {{\"error\": ...}} on stdout: {}", self.json))
            .to_owned()
    }
}

/// Runs `macvlan-host ARGS` in `node` with `stdin`, as netavark does (no CNI_* variables).
pub fn call(node: &Netns, args: &[&str], stdin: &Value) -> Reply {
    call_with(node.command(OUR_PLUGIN), args, stdin)
}

pub fn call_with(mut command: Command, args: &[&str], stdin: &Value) -> Reply {
    let mut child = command
        .args(args)
        .env_remove("CNI_COMMAND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the plugin");
    let input = if stdin.is_null() {
        String::new()
    } else {
        stdin.to_string()
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("plugin output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {stdout:?}"))
    };
    let exit = out.status.code();
    assert!(
        matches!(exit, Some(0 | 1)),
        "exit status {exit:?}, stdout {stdout}"
    );
    Reply {
        ok: exit == Some(0),
        json,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn sample(name: &str) -> Value {
    let path = format!(
        "{}/tests/netavark/samples/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("sample JSON")
}

/// A network as podman passes it to `create` (the recorded dual-stack one), on the test LAN's
/// subnets with PEER as gateway, `family` deciding which subnets it has, options `options`
/// plus its own state directory.
pub struct Network {
    pub json: Value,
    pub state: TempDir,
}

impl Network {
    pub fn new(name: &str, family: Family, options: &[(&str, &str)]) -> Network {
        let state = TempDir::new("netavark-state");
        let mut json = sample("010-create-dualnet");
        json["name"] = json!(name);
        json["driver"] = json!(OUR_TYPE);
        let mut subnets = Vec::new();
        if family.has_v4() {
            subnets.push(json!({"subnet": SUBNET4, "gateway": PEER_IP4,
                "lease_range": {"start_ip": "10.99.0.100", "end_ip": "10.99.0.199"}}));
        }
        if family.has_v6() {
            subnets.push(json!({"subnet": SUBNET6, "gateway": PEER_IP6}));
        }
        json["subnets"] = json!(subnets);
        json["ipv6_enabled"] = json!(family.has_v6());
        let mut opts = serde_json::Map::new();
        for (k, v) in options {
            opts.insert((*k).to_owned(), json!(v));
        }
        opts.entry("state_dir").or_insert(json!(state.str()));
        json["options"] = Value::Object(opts);
        Network { json, state }
    }

    /// `create`, and the network podman would store from its answer.
    pub fn create(&mut self, node: &Netns) -> Reply {
        let reply = call(node, &["create"], &self.json);
        if reply.ok {
            self.json = reply.json.clone();
        }
        reply
    }

    /// The records of the state directory.
    pub fn records(&self) -> Vec<String> {
        files_in(&self.state.join("attachments"))
    }
}

/// A container on a network: the recorded `setup` request with its network, ID, interface,
/// addresses and MAC replaced.
pub struct Container {
    pub request: Value,
    pub netns: String,
}

impl Container {
    pub fn new(network: &Network, pod: &Pod, id: &str, ifname: &str, ips: &[&str]) -> Container {
        let mut request = sample("011-setup-dualnet");
        request["container_id"] = json!(format!("{id:0<64}"));
        request["container_name"] = json!(id);
        // setup's network is what podman stored, in netavark's field order and shape.
        let mut stored = network.json.clone();
        for field in [
            "routes",
            "network_dns_servers",
            "network_interface",
            "ipam_options",
        ] {
            stored
                .as_object_mut()
                .unwrap()
                .entry(field)
                .or_insert(Value::Null);
        }
        request["network"] = stored;
        request["network_options"]["interface_name"] = json!(ifname);
        request["network_options"]["static_ips"] = json!(ips);
        request["network_options"]["static_mac"] = Value::Null;
        Container {
            request,
            netns: pod.path(),
        }
    }

    pub fn with_mac(mut self, mac: &str) -> Container {
        self.request["network_options"]["static_mac"] = json!(mac);
        self
    }

    pub fn setup(&self, node: &Netns) -> Reply {
        call(node, &["setup", &self.netns], &self.request)
    }

    pub fn teardown(&self, node: &Netns) -> Reply {
        call(node, &["teardown", &self.netns], &self.request)
    }
}
