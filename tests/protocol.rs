//! The protocol layer seen from outside the crate: configuration, results, environment and
//! errors, for every spec version. Pure data in, data out: no root, no namespaces.

use std::collections::HashMap;
use std::path::PathBuf;

use macvlan_host::protocol::config::DEFAULT_STATE_DIR;
use macvlan_host::protocol::result::{pass_through, Interface, IpConfig, RouteEntry};
use macvlan_host::protocol::{
    code, CniError, CniOutput, CniResult, CniVersion, Command, Environment, HostAccess, Mode,
    NetConf,
};
use macvlan_host::system::netlink::MacvlanMode;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// A valid interface-mode configuration; each case changes one key of it.
fn base_conf() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "cniVersion": "1.1.0",
        "name": "lan",
        "type": "macvlan-host",
        "master": "eth0",
        "ipam": { "type": "host-local", "subnet": "10.0.0.0/24" },
    }) else {
        unreachable!()
    };
    map
}

/// `base_conf` with `key` set to `value`, or removed when `value` is None.
fn conf_with(key: &str, value: Option<Value>) -> Vec<u8> {
    let mut conf = base_conf();
    match value {
        Some(v) => conf.insert(key.to_owned(), v),
        None => conf.remove(key),
    };
    serde_json::to_vec(&conf).unwrap()
}

fn parse(conf: Value) -> NetConf {
    NetConf::parse(&serde_json::to_vec(&conf).unwrap(), Command::Add).unwrap()
}

#[test]
fn every_invalid_key_is_refused_with_its_code_naming_the_key_and_the_value() {
    let long_name = "n".repeat(101);
    // (key, value or None to remove it, expected code, what the message must contain)
    let cases: Vec<(&str, Option<Value>, u32, Vec<&str>)> = vec![
        ("cniVersion", None, 1, vec!["cniVersion"]),
        (
            "cniVersion",
            Some(json!("0.2.0")),
            1,
            vec!["cniVersion", "0.2.0"],
        ),
        (
            "cniVersion",
            Some(json!("1.2.0")),
            1,
            vec!["cniVersion", "1.2.0"],
        ),
        ("cniVersion", Some(json!(1.0)), 7, vec!["cniVersion", "1.0"]),
        ("name", None, 7, vec!["name"]),
        ("name", Some(json!("my/net")), 7, vec!["name", "my/net"]),
        ("name", Some(json!("-lan")), 7, vec!["name", "-lan"]),
        ("name", Some(json!(long_name)), 7, vec!["name", &long_name]),
        ("type", Some(json!(42)), 7, vec!["type", "42"]),
        (
            "ipam",
            Some(json!("host-local")),
            7,
            vec!["ipam", "host-local"],
        ),
        (
            "ipam",
            Some(json!(["host-local"])),
            7,
            vec!["ipam", "host-local"],
        ),
        (
            "ipam",
            Some(json!({"subnet": "10.0.0.0/24"})),
            7,
            vec!["ipam.type", "nothing"],
        ),
        (
            "ipam",
            Some(json!({"type": ""})),
            7,
            vec!["ipam.type", "\"\""],
        ),
        ("ipam", Some(json!({"type": 5})), 7, vec!["ipam.type", "5"]),
        (
            "ipam",
            Some(json!({"type": "../evil"})),
            7,
            vec!["ipam.type", "../evil"],
        ),
        (
            "prevResult",
            Some(json!([1, 2])),
            7,
            vec!["prevResult", "[1,2]"],
        ),
        (
            "prevResult",
            Some(json!("none")),
            7,
            vec!["prevResult", "none"],
        ),
        (
            "master",
            Some(json!("a-very-long-master")),
            7,
            vec!["master", "a-very-long-master", "15"],
        ),
        ("master", Some(json!("eth/0")), 7, vec!["master", "eth/0"]),
        ("master", Some(json!(7)), 7, vec!["master", "7"]),
        ("mode", Some(json!("bridged")), 7, vec!["mode", "bridged"]),
        ("mode", Some(json!("source")), 7, vec!["mode", "source"]),
        ("mtu", Some(json!(0)), 7, vec!["mtu", "0"]),
        ("mtu", Some(json!(67)), 7, vec!["mtu", "67"]),
        ("mtu", Some(json!(65536)), 7, vec!["mtu", "65536"]),
        ("mtu", Some(json!("1500")), 7, vec!["mtu", "\"1500\""]),
        ("mtu", Some(json!(-1500)), 7, vec!["mtu", "-1500"]),
        ("mtu", Some(json!(1500.5)), 7, vec!["mtu", "1500.5"]),
        (
            "hostAccess",
            Some(json!("tunnel")),
            7,
            vec!["hostAccess", "tunnel"],
        ),
        (
            "hostAccess",
            Some(json!(true)),
            7,
            vec!["hostAccess", "true"],
        ),
        (
            "shimName",
            Some(json!("macvlan-host-shim")),
            7,
            vec!["shimName", "macvlan-host-shim"],
        ),
        (
            "shimName",
            Some(json!("shim:0")),
            7,
            vec!["shimName", "shim:0"],
        ),
        (
            "vethName",
            Some(json!("veth-pod-to-node")),
            7,
            vec!["vethName", "veth-pod-to-node"],
        ),
        (
            "vethName",
            Some(json!("veth/0")),
            7,
            vec!["vethName", "veth/0"],
        ),
        ("vethName", Some(json!("..")), 7, vec!["vethName", "\"..\""]),
        (
            "stateDir",
            Some(json!(["/run"])),
            7,
            vec!["stateDir", "/run"],
        ),
        ("logFile", Some(json!({})), 7, vec!["logFile", "{}"]),
        (
            "logLevel",
            Some(json!("verbose")),
            7,
            vec!["logLevel", "verbose"],
        ),
        ("logLevel", Some(json!(3)), 7, vec!["logLevel", "3"]),
    ];
    let mut cases = cases;
    for key in ["shimAddresses", "hostRoutes"] {
        cases.extend([
            (key, Some(json!("10.0.0.1/32")), 7, vec![key, "10.0.0.1/32"]),
            (
                key,
                Some(json!({"a": "10.0.0.1/32"})),
                7,
                vec![key, "10.0.0.1/32"],
            ),
            (key, Some(json!([5])), 7, vec![key, "5"]),
            (
                key,
                Some(json!(["10.0.0.1/32", null])),
                7,
                vec![key, "null"],
            ),
            (
                key,
                Some(json!(["10.0.0.1"])),
                7,
                vec![key, "\"10.0.0.1\"", "prefix"],
            ),
            (
                key,
                Some(json!(["fd00::1"])),
                7,
                vec![key, "\"fd00::1\"", "prefix"],
            ),
            (
                key,
                Some(json!(["10.0.0.300/32"])),
                7,
                vec![key, "10.0.0.300/32"],
            ),
            (
                key,
                Some(json!(["10.0.0.1/33"])),
                7,
                vec![key, "10.0.0.1/33"],
            ),
            (
                key,
                Some(json!(["fd00::1/129"])),
                7,
                vec![key, "fd00::1/129"],
            ),
            (key, Some(json!(["lan/24"])), 7, vec![key, "lan/24"]),
        ]);
    }
    for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
        cases.extend([
            (
                key,
                Some(json!({"containerID": "c1", "ifname": "net1"})),
                7,
                vec![key, "c1"],
            ),
            (key, Some(json!("c1")), 7, vec![key, "c1"]),
            (
                key,
                Some(json!([{"ifname": "net1"}])),
                7,
                vec![key, "containerID", r#"{"ifname":"net1"}"#],
            ),
            (
                key,
                Some(json!([{"containerID": "c1"}])),
                7,
                vec![key, "ifname", r#"{"containerID":"c1"}"#],
            ),
            (
                key,
                Some(json!([{"containerID": 1, "ifname": "net1"}])),
                7,
                vec![key, r#""containerID":1"#],
            ),
            (key, Some(json!(["c1"])), 7, vec![key, "c1"]),
        ]);
    }

    for (key, value, expected_code, needles) in &cases {
        let stdin = conf_with(key, value.clone());
        let label = format!("{key} = {value:?}");
        for command in [Command::Add, Command::Del] {
            let err = NetConf::parse(&stdin, command).expect_err(&label);
            assert_eq!(err.code, *expected_code, "{label}: {}", err.msg);
            for needle in needles {
                assert!(
                    err.msg.contains(needle),
                    "{label}: {needle:?} not in {:?}",
                    err.msg
                );
            }
        }
    }
}

#[test]
fn stdin_that_is_not_a_json_object_is_a_decoding_failure() {
    for stdin in [
        &b""[..],
        b"{",
        b"{\"cniVersion\": }",
        b"not json",
        b"[]",
        b"\"lan\"",
        b"null",
    ] {
        let err = NetConf::parse(stdin, Command::Add).expect_err(&String::from_utf8_lossy(stdin));
        assert_eq!(err.code, code::DECODING_FAILURE, "{}", err.msg);
        assert!(err.msg.contains("network configuration"), "{}", err.msg);
    }
}

#[test]
fn without_ipam_or_prev_result_add_is_refused_and_del_is_a_chained_del() {
    for empty_ipam in [None, Some(Value::Null), Some(json!({}))] {
        let stdin = conf_with("ipam", empty_ipam.clone());
        let err = NetConf::parse(&stdin, Command::Add).unwrap_err();
        assert_eq!(err.code, code::INVALID_CONFIG);
        for needle in [
            "\"ipam\"",
            "\"prevResult\"",
            "interface mode",
            "chained mode",
            "macvlan",
        ] {
            assert!(
                err.msg.contains(needle),
                "{empty_ipam:?}: {needle} not in {}",
                err.msg
            );
        }
        let conf = NetConf::parse(&stdin, Command::Del).unwrap();
        assert_eq!(conf.mode, Mode::Chained { prev_result: None });
        assert_eq!(conf.prev_result(), None);
    }
}

#[test]
fn defaults_apply_when_keys_are_absent_or_empty() {
    let mut minimal = base_conf();
    minimal.remove("master");
    minimal.remove("type");
    let mut empty = base_conf();
    for key in [
        "mode",
        "hostAccess",
        "stateDir",
        "logLevel",
        "master",
        "shimName",
        "vethName",
    ] {
        empty.insert(key.into(), json!(""));
    }
    for key in [
        "mtu",
        "shimAddresses",
        "hostRoutes",
        "logFile",
        "prevResult",
    ] {
        empty.insert(key.into(), Value::Null);
    }
    for conf in [minimal, empty] {
        let conf = parse(Value::Object(conf));
        assert_eq!(conf.cni_version, CniVersion::V1_1_0);
        assert_eq!(conf.name, "lan");
        assert_eq!(conf.host_access, HostAccess::Shim);
        assert_eq!(conf.macvlan_mode, MacvlanMode::Bridge);
        assert_eq!(conf.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(conf.state_dir, PathBuf::from("/run/cni/macvlan-host"));
        assert_eq!(conf.master, None);
        assert_eq!(conf.mtu, None);
        assert_eq!(conf.shim_name, None);
        assert_eq!(conf.veth_name, None);
        assert!(conf.shim_addresses.is_empty());
        assert!(conf.host_routes.is_empty());
        assert_eq!(conf.log_file, None);
        assert_eq!(conf.log_level, log::LevelFilter::Info);
        assert_eq!(conf.valid_attachments, None);
        assert_eq!(conf.prev_result(), None);
    }
}

#[test]
fn every_valid_value_is_read() {
    let conf = parse(json!({
        "cniVersion": "0.4.0",
        "name": "Lan_1.a-b",
        "type": "macvlan-host",
        "master": "enp1s0.100",
        "mode": "vepa",
        "mtu": 9000,
        "hostAccess": "veth",
        "shimName": "mvh-shim-abcdef",
        "vethName": "mvh-veth0",
        "shimAddresses": ["10.0.0.250/32", "fd00::fa/128"],
        "hostRoutes": ["10.1.0.0/16"],
        "stateDir": "/tmp/state",
        "logFile": "/var/log/mvh.log",
        "logLevel": "debug",
        "ipam": { "type": "dhcp" },
    }));
    assert_eq!(conf.cni_version, CniVersion::V0_4_0);
    assert_eq!(conf.name, "Lan_1.a-b");
    assert_eq!(conf.plugin_type, "macvlan-host");
    assert_eq!(conf.master.as_deref(), Some("enp1s0.100"));
    assert_eq!(conf.macvlan_mode, MacvlanMode::Vepa);
    assert_eq!(conf.mtu, Some(9000));
    assert_eq!(conf.host_access, HostAccess::Veth);
    assert_eq!(conf.shim_name.as_deref(), Some("mvh-shim-abcdef"));
    assert_eq!(conf.veth_name.as_deref(), Some("mvh-veth0"));
    let shim: Vec<String> = conf
        .shim_addresses
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shim, ["10.0.0.250/32", "fd00::fa/128"]);
    assert_eq!(conf.host_routes[0].to_string(), "10.1.0.0/16");
    assert_eq!(conf.state_dir, PathBuf::from("/tmp/state"));
    assert_eq!(conf.log_file, Some(PathBuf::from("/var/log/mvh.log")));
    assert_eq!(conf.log_level, log::LevelFilter::Debug);

    let name_of_100 = "n".repeat(100);
    type Holds = Box<dyn Fn(&NetConf) -> bool>;
    let tables: Vec<(&str, Value, Holds)> = vec![
        (
            "cniVersion",
            json!("0.3.0"),
            Box::new(|c| c.cni_version == CniVersion::V0_3_0),
        ),
        (
            "cniVersion",
            json!("0.3.1"),
            Box::new(|c| c.cni_version == CniVersion::V0_3_1),
        ),
        (
            "cniVersion",
            json!("1.0.0"),
            Box::new(|c| c.cni_version == CniVersion::V1_0_0),
        ),
        (
            "name",
            json!(name_of_100.clone()),
            Box::new(move |c| c.name == name_of_100),
        ),
        (
            "mode",
            json!("bridge"),
            Box::new(|c| c.macvlan_mode == MacvlanMode::Bridge),
        ),
        (
            "mode",
            json!("private"),
            Box::new(|c| c.macvlan_mode == MacvlanMode::Private),
        ),
        (
            "mode",
            json!("passthru"),
            Box::new(|c| c.macvlan_mode == MacvlanMode::Passthru),
        ),
        ("mtu", json!(68), Box::new(|c| c.mtu == Some(68))),
        ("mtu", json!(65535), Box::new(|c| c.mtu == Some(65535))),
        (
            "hostAccess",
            json!("shim"),
            Box::new(|c| c.host_access == HostAccess::Shim),
        ),
        (
            "hostAccess",
            json!("none"),
            Box::new(|c| c.host_access == HostAccess::None),
        ),
        (
            "logLevel",
            json!("off"),
            Box::new(|c| c.log_level == log::LevelFilter::Off),
        ),
        (
            "logLevel",
            json!("error"),
            Box::new(|c| c.log_level == log::LevelFilter::Error),
        ),
        (
            "logLevel",
            json!("warn"),
            Box::new(|c| c.log_level == log::LevelFilter::Warn),
        ),
        (
            "logLevel",
            json!("info"),
            Box::new(|c| c.log_level == log::LevelFilter::Info),
        ),
        (
            "logLevel",
            json!("trace"),
            Box::new(|c| c.log_level == log::LevelFilter::Trace),
        ),
        (
            "shimName",
            json!("a".repeat(15)),
            Box::new(|c| c.shim_name.as_ref().unwrap().len() == 15),
        ),
    ];
    for (key, value, holds) in tables {
        let conf = NetConf::parse(&conf_with(key, Some(value.clone())), Command::Add)
            .unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
        assert!(holds(&conf), "{key} = {value}");
    }
}

#[test]
fn unknown_keys_are_kept_in_raw_exactly_as_received() {
    let input = json!({
        "cniVersion": "1.0.0",
        "name": "lan",
        "type": "macvlan-host",
        "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.0.0.0/24" }]], "x": 1 },
        "runtimeConfig": { "mac": "02:00:00:00:00:01" },
        "capabilities": { "mac": true },
        "args": { "cni": { "labels": [] } },
        "x-future-key": [1, "two", { "three": 3.5 }],
    });
    let conf = parse(input.clone());
    assert_eq!(Value::Object(conf.raw.clone()), input);
    let keys: Vec<&String> = conf.raw.keys().collect();
    let expected: Vec<&String> = input.as_object().unwrap().keys().collect();
    assert_eq!(
        keys, expected,
        "the order of keys is kept for the delegated plugin"
    );
    assert_eq!(
        conf.mode,
        Mode::Interface {
            ipam: input["ipam"].as_object().unwrap().clone()
        }
    );
}

#[test]
fn ipam_means_interface_mode_even_with_a_prev_result() {
    let prev =
        json!({ "cniVersion": "1.0.0", "interfaces": [{ "name": "net1", "sandbox": "/x" }] });
    let conf = NetConf::parse(&conf_with("prevResult", Some(prev.clone())), Command::Add).unwrap();
    let Mode::Interface { ipam } = &conf.mode else {
        panic!("expected interface mode, got {:?}", conf.mode)
    };
    assert_eq!(ipam["type"], "host-local");
    assert_eq!(conf.prev_result(), Some(&prev));
}

#[test]
fn prev_result_alone_means_chained_mode() {
    let prev = json!({ "cniVersion": "1.1.0", "ips": [{ "address": "10.0.0.5/24" }] });
    let mut conf = base_conf();
    conf.remove("ipam");
    conf.insert("prevResult".into(), prev.clone());
    for command in [Command::Add, Command::Del] {
        let parsed = NetConf::parse(&serde_json::to_vec(&conf).unwrap(), command).unwrap();
        assert_eq!(
            parsed.mode,
            Mode::Chained {
                prev_result: Some(prev.clone())
            }
        );
        assert_eq!(parsed.prev_result(), Some(&prev));
    }
}

#[test]
fn gc_attachments_are_read_from_both_keys() {
    let list = json!([
        { "containerID": "c1", "ifname": "net1" },
        { "containerID": "c2", "ifname": "eth0", "extra": true },
    ]);
    let expected = Some(vec![
        ("c1".to_owned(), "net1".to_owned()),
        ("c2".to_owned(), "eth0".to_owned()),
    ]);
    for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
        let conf = NetConf::parse(&conf_with(key, Some(list.clone())), Command::Add).unwrap();
        assert_eq!(conf.valid_attachments, expected, "{key}");
        let conf = NetConf::parse(&conf_with(key, Some(json!([]))), Command::Add).unwrap();
        assert_eq!(
            conf.valid_attachments,
            Some(vec![]),
            "{key}: an empty list keeps nothing"
        );
    }
    // Both present: the current key wins.
    let mut conf = base_conf();
    conf.insert("cni.dev/valid-attachments".into(), list);
    conf.insert(
        "cni.dev/attachments".into(),
        json!([{ "containerID": "old", "ifname": "x" }]),
    );
    let conf = parse(Value::Object(conf));
    assert_eq!(conf.valid_attachments, expected);
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// A 1.1.0 result as a previous plugin could print it, with keys this plugin does not know at
/// every level.
fn rich_prev_result() -> Value {
    json!({
        "cniVersion": "1.1.0",
        "x-top-level": { "kept": [1, 2, 3] },
        "interfaces": [
            { "name": "eth0", "mac": "02:00:00:00:00:aa" },
            { "name": "net1", "mac": "02:00:00:00:00:01", "sandbox": "/run/netns/pod",
              "mtu": 1500, "socketPath": "/run/x.sock", "pciID": "0000:00:1f.6", "x-iface": null },
        ],
        "ips": [
            { "address": "10.0.0.5/24", "gateway": "10.0.0.1", "interface": 1, "x-ip": "kept" },
            { "address": "fd00::5/64", "interface": 1 },
        ],
        "routes": [
            { "dst": "0.0.0.0/0", "gw": "10.0.0.1", "mtu": 1400, "advmss": 1360,
              "priority": 100, "table": 200, "scope": 0, "x-route": { "a": "b" } },
            { "dst": "fd00:1::/64", "scope": 253 },
        ],
        "dns": { "nameservers": ["10.0.0.53"], "domain": "lan", "search": ["a.lan"], "options": ["ndots:2"] },
    })
}

fn sample_output() -> CniOutput {
    CniOutput {
        interfaces: vec![
            Interface {
                name: "net1".into(),
                mac: Some("02:00:00:00:00:01".into()),
                sandbox: Some("/run/netns/pod".into()),
            },
            Interface {
                name: "mvh-shim".into(),
                mac: None,
                sandbox: None,
            },
        ],
        ips: vec![
            IpConfig {
                address: "10.0.0.5/24".parse().unwrap(),
                gateway: Some("10.0.0.1".parse().unwrap()),
                interface: Some(0),
            },
            IpConfig {
                address: "fd00::5/64".parse().unwrap(),
                gateway: None,
                interface: Some(0),
            },
            IpConfig {
                address: "10.0.9.9/32".parse().unwrap(),
                gateway: None,
                interface: None,
            },
        ],
        routes: vec![RouteEntry {
            dst: "0.0.0.0/0".parse().unwrap(),
            gw: Some("10.0.0.1".parse().unwrap()),
            raw: json!({ "dst": "0.0.0.0/0", "gw": "10.0.0.1" })
                .as_object()
                .unwrap()
                .clone(),
        }],
        dns: Some(json!({ "nameservers": ["10.0.0.53"] })),
    }
}

#[test]
fn ips_carry_version_before_1_0_0_only() {
    let output = sample_output();
    let expected = [
        (CniVersion::V0_3_0, true),
        (CniVersion::V0_3_1, true),
        (CniVersion::V0_4_0, true),
        (CniVersion::V1_0_0, false),
        (CniVersion::V1_1_0, false),
    ];
    for (version, carries) in expected {
        let json = output.to_json(version);
        assert_eq!(json["cniVersion"], version.as_str());
        let ips = json["ips"].as_array().unwrap();
        assert_eq!(ips.len(), 3);
        for (ip, family) in ips.iter().zip(["4", "6", "4"]) {
            if carries {
                assert_eq!(ip["version"], family, "{version}: {ip}");
                assert_eq!(ip.as_object().unwrap().keys().next().unwrap(), "version");
            } else {
                assert!(ip.get("version").is_none(), "{version}: {ip}");
            }
        }
        assert_eq!(ips[0]["address"], "10.0.0.5/24");
        assert_eq!(ips[0]["gateway"], "10.0.0.1");
        assert_eq!(ips[0]["interface"], 0);
        assert!(ips[1].get("gateway").is_none());
        assert!(ips[2].get("interface").is_none());
        assert_eq!(
            json["interfaces"],
            json!([
                { "name": "net1", "mac": "02:00:00:00:00:01", "sandbox": "/run/netns/pod" },
                { "name": "mvh-shim" },
            ])
        );
        assert_eq!(json["dns"], json!({ "nameservers": ["10.0.0.53"] }));
        assert_eq!(
            CniOutput::parse(&json, "result").unwrap(),
            output,
            "{version}: round trip"
        );
    }
}

#[test]
fn parse_accepts_results_with_and_without_ips_version() {
    let old_shape = json!({
        "cniVersion": "0.3.1",
        "interfaces": [{ "name": "net1", "sandbox": "/run/netns/pod" }],
        "ips": [
            { "version": "4", "address": "10.0.0.5/24", "gateway": "10.0.0.1", "interface": 0 },
            { "version": "6", "address": "fd00::5/64" },
        ],
    });
    let mut new_shape = old_shape.clone();
    new_shape["cniVersion"] = json!("1.0.0");
    for ip in new_shape["ips"].as_array_mut().unwrap() {
        ip.as_object_mut().unwrap().remove("version");
    }
    let old = CniOutput::parse(&old_shape, "prevResult").unwrap();
    let new = CniOutput::parse(&new_shape, "prevResult").unwrap();
    assert_eq!(old, new);
    assert_eq!(old.ips[0].address.to_string(), "10.0.0.5/24");
    assert_eq!(old.ips[0].gateway, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(old.ips[0].interface, Some(0));
    assert_eq!(old.ips[1].interface, None);
    assert_eq!(old.dns, None);

    // Empty and missing lists are the same; empty strings count as absent.
    let sparse = CniOutput::parse(
        &json!({ "cniVersion": "0.3.0", "interfaces": [], "ips": null, "dns": {},
                 "routes": [{ "dst": "0.0.0.0/0", "gw": "" }] }),
        "r",
    )
    .unwrap();
    assert!(sparse.interfaces.is_empty() && sparse.ips.is_empty());
    assert_eq!(sparse.routes[0].gw, None);
    assert_eq!(sparse.dns, None);
}

#[test]
fn parse_refuses_malformed_results_naming_the_field() {
    let cases = [
        (json!({ "interfaces": {} }), vec!["interfaces", "list"]),
        (json!({ "ips": "10.0.0.5/24" }), vec!["ips", "10.0.0.5/24"]),
        (json!({ "routes": {} }), vec!["routes", "list"]),
        (
            json!({ "interfaces": [{ "mac": "02:00:00:00:00:01" }] }),
            vec!["interfaces", "name", "02:00:00:00:00:01"],
        ),
        (
            json!({ "ips": [{ "gateway": "10.0.0.1" }] }),
            vec!["ips[].address", "missing"],
        ),
        (
            json!({ "ips": [{ "address": "10.0.0.500/24" }] }),
            vec!["ips[].address", "10.0.0.500/24"],
        ),
        (
            json!({ "ips": [{ "address": "10.0.0.5/24", "gateway": "gw" }] }),
            vec!["ips[].gateway", "\"gw\""],
        ),
        (
            json!({ "ips": [{ "address": "10.0.0.5/24", "interface": -1 }] }),
            vec!["ips[].interface", "-1"],
        ),
        (
            json!({ "ips": [{ "address": "10.0.0.5/24", "interface": "0" }] }),
            vec!["ips[].interface", "\"0\""],
        ),
        (
            json!({ "routes": ["0.0.0.0/0"] }),
            vec!["routes", "0.0.0.0/0"],
        ),
        (
            json!({ "routes": [{ "gw": "10.0.0.1" }] }),
            vec!["routes[].dst", "missing"],
        ),
        (
            json!({ "routes": [{ "dst": "default" }] }),
            vec!["routes[].dst", "default"],
        ),
        (
            json!({ "routes": [{ "dst": "0.0.0.0/0", "gw": "10.0.0.1/24" }] }),
            vec!["routes[].gw", "10.0.0.1/24"],
        ),
    ];
    for (result, needles) in cases {
        let err = CniOutput::parse(&result, "the IPAM result").expect_err(&result.to_string());
        assert_eq!(err.code, code::INVALID_CONFIG, "{result}: {}", err.msg);
        assert!(err.msg.starts_with("the IPAM result"), "{}", err.msg);
        for needle in needles {
            assert!(
                err.msg.contains(needle),
                "{result}: {needle:?} not in {:?}",
                err.msg
            );
        }
    }
}

#[test]
fn routes_keep_every_raw_field_through_parse_and_to_json() {
    let prev = rich_prev_result();
    let output = CniOutput::parse(&prev, "prevResult").unwrap();
    assert_eq!(output.routes[0].dst.to_string(), "0.0.0.0/0");
    assert_eq!(output.routes[0].gw, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(output.routes[1].gw, None);
    for version in CniVersion::ALL {
        let json = output.to_json(version);
        assert_eq!(json["routes"], prev["routes"], "{version}");
        assert_eq!(
            serde_json::to_string(&json["routes"]).unwrap(),
            serde_json::to_string(&prev["routes"]).unwrap(),
            "{version}: same bytes, same key order"
        );
        assert_eq!(json["dns"], prev["dns"], "{version}");
    }
}

#[test]
fn pass_through_changes_only_the_version_and_appends_extra_interfaces() {
    let prev = rich_prev_result();
    let extra = [
        Interface {
            name: "mvh-shim0".into(),
            mac: Some("02:00:00:00:00:ff".into()),
            sandbox: None,
        },
        Interface {
            name: "mvhv1234".into(),
            mac: None,
            sandbox: None,
        },
    ];
    let bytes = |v: &Value| serde_json::to_string(v).unwrap();
    for version in CniVersion::ALL {
        for extra in [&extra[..], &[]] {
            let out = pass_through(&prev, version, extra);
            let label = format!("{version} with {} extra", extra.len());
            assert_eq!(out["cniVersion"], version.as_str(), "{label}");

            let out_keys: Vec<&String> = out.as_object().unwrap().keys().collect();
            let prev_keys: Vec<&String> = prev.as_object().unwrap().keys().collect();
            assert_eq!(
                out_keys, prev_keys,
                "{label}: no key added, removed or moved"
            );
            for key in prev_keys {
                if key != "cniVersion" && key != "interfaces" {
                    assert_eq!(bytes(&out[key]), bytes(&prev[key]), "{label}: {key}");
                }
            }

            let prev_interfaces = prev["interfaces"].as_array().unwrap();
            let out_interfaces = out["interfaces"].as_array().unwrap();
            assert_eq!(
                out_interfaces.len(),
                prev_interfaces.len() + extra.len(),
                "{label}"
            );
            for (out, prev) in out_interfaces.iter().zip(prev_interfaces) {
                assert_eq!(bytes(out), bytes(prev), "{label}");
            }
            let appended = &out_interfaces[prev_interfaces.len()..];
            let expected: Vec<Value> = extra
                .iter()
                .map(|i| match &i.mac {
                    Some(mac) => json!({ "name": i.name, "mac": mac }),
                    None => json!({ "name": i.name }),
                })
                .collect();
            assert_eq!(appended, &expected[..], "{label}");

            let mut expected_whole = prev.clone();
            expected_whole["cniVersion"] = json!(version.as_str());
            expected_whole["interfaces"]
                .as_array_mut()
                .unwrap()
                .extend(expected);
            assert_eq!(out, expected_whole, "{label}");
        }
    }
}

#[test]
fn pass_through_of_a_result_without_interfaces() {
    let prev = json!({ "cniVersion": "0.3.1", "ips": [{ "version": "4", "address": "10.0.0.5/24" }], "dns": {} });
    let out = pass_through(&prev, CniVersion::V0_3_1, &[]);
    assert_eq!(
        out, prev,
        "nothing to append: no interfaces key is invented"
    );
    let shim = Interface {
        name: "mvh-shim0".into(),
        mac: None,
        sandbox: None,
    };
    let out = pass_through(&prev, CniVersion::V1_0_0, &[shim]);
    assert_eq!(out["interfaces"], json!([{ "name": "mvh-shim0" }]));
    assert_eq!(
        out["ips"], prev["ips"],
        "ips keep their version key: they are passed, not rebuilt"
    );
    assert_eq!(out["cniVersion"], "1.0.0");
}

/// A result whose interfaces are `(name, in a sandbox)` and whose ips are
/// `(address, interface index)`.
fn result_of(interfaces: &[(&str, bool)], ips: &[(&str, Option<usize>)]) -> CniOutput {
    CniOutput {
        interfaces: interfaces
            .iter()
            .map(|(name, sandboxed)| Interface {
                name: (*name).into(),
                mac: Some(format!("02:00:00:00:00:{:02x}", name.len())),
                sandbox: sandboxed.then(|| format!("/run/netns/{name}")),
            })
            .collect(),
        ips: ips
            .iter()
            .map(|(address, interface)| IpConfig {
                address: address.parse().unwrap(),
                gateway: None,
                interface: *interface,
            })
            .collect(),
        ..CniOutput::default()
    }
}

#[test]
fn pod_interface_picks_the_sandboxed_interface_and_its_addresses() {
    // (interfaces, ips, ifname, expected index, expected addresses)
    #[allow(clippy::type_complexity)]
    let cases: &[(
        &[(&str, bool)],
        &[(&str, Option<usize>)],
        &str,
        usize,
        &[&str],
    )] = &[
        // The reference macvlan in a chain: one pod interface, addresses pointing at it.
        (
            &[("net1", true)],
            &[("10.0.0.5/24", Some(0)), ("fd00::5/64", Some(0))],
            "net1",
            0,
            &["10.0.0.5/24", "fd00::5/64"],
        ),
        // A host-side interface first: the index counts every interface.
        (
            &[("eth0", false), ("net1", true)],
            &[("10.0.0.5/24", Some(1)), ("192.168.1.2/24", Some(0))],
            "net1",
            1,
            &["10.0.0.5/24"],
        ),
        // A host-side interface of the same name is not the pod's.
        (
            &[("net1", false), ("net1", true)],
            &[("10.0.0.9/24", Some(0)), ("10.0.0.5/24", Some(1))],
            "net1",
            1,
            &["10.0.0.5/24"],
        ),
        // Two pod interfaces: only the addresses of the one asked for.
        (
            &[("net1", true), ("net2", true)],
            &[
                ("10.0.0.5/24", Some(0)),
                ("10.0.1.5/24", Some(1)),
                ("10.0.2.5/24", None),
            ],
            "net2",
            1,
            &["10.0.1.5/24"],
        ),
        // 0.3.0 results may omit the index: fine when there is one pod interface.
        (
            &[("net1", true)],
            &[("10.0.0.5/24", None), ("fd00::5/64", None)],
            "net1",
            0,
            &["10.0.0.5/24", "fd00::5/64"],
        ),
        (
            &[("eth0", false), ("net1", true)],
            &[("10.0.0.5/24", None)],
            "net1",
            1,
            &["10.0.0.5/24"],
        ),
    ];
    for (interfaces, ips, ifname, index, addresses) in cases {
        let result = result_of(interfaces, ips);
        let pod = result
            .pod_interface(ifname, "prevResult")
            .unwrap_or_else(|e| panic!("{interfaces:?} {ips:?}: {e}"));
        assert_eq!(pod.index, *index, "{interfaces:?}");
        assert_eq!(pod.name, *ifname);
        assert_eq!(pod.sandbox, format!("/run/netns/{ifname}"));
        assert_eq!(pod.mac, result.interfaces[*index].mac);
        let got: Vec<String> = pod.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(got, *addresses, "{interfaces:?} {ips:?}");
    }
}

#[test]
fn pod_interface_errors_name_the_interface() {
    #[allow(clippy::type_complexity)]
    let cases: &[(&[(&str, bool)], &[(&str, Option<usize>)], &str)] = &[
        // Absent.
        (&[], &[("10.0.0.5/24", None)], "no interface named"),
        (
            &[("eth0", true)],
            &[("10.0.0.5/24", Some(0))],
            "no interface named",
        ),
        // Present only on the host side.
        (
            &[("net1", false)],
            &[("10.0.0.5/24", Some(0))],
            "no interface named",
        ),
        // Present, without addresses.
        (&[("net1", true)], &[], "no address"),
        (
            &[("eth0", true), ("net1", true)],
            &[("10.0.0.5/24", Some(0))],
            "no address",
        ),
        // Addresses without an index are ambiguous with two pod interfaces.
        (
            &[("eth0", true), ("net1", true)],
            &[("10.0.0.5/24", None)],
            "no address",
        ),
    ];
    for (interfaces, ips, why) in cases {
        let err = result_of(interfaces, ips)
            .pod_interface("net1", "prevResult")
            .unwrap_err();
        assert_eq!(err.code, code::INVALID_CONFIG, "{interfaces:?}");
        for needle in ["prevResult", "\"net1\"", why] {
            assert!(
                err.msg.contains(needle),
                "{interfaces:?} {ips:?}: {needle} not in {}",
                err.msg
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Environment and versions
// ---------------------------------------------------------------------------------------------

const ALL_VARIABLES: [(&str, &str); 5] = [
    ("CNI_CONTAINERID", "abc-123"),
    ("CNI_NETNS", "/run/netns/pod"),
    ("CNI_IFNAME", "net1"),
    ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web-0"),
    ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
];

/// Each verb and the variables it cannot do without.
const REQUIRED: [(Command, &str, &[&str]); 6] = [
    (
        Command::Add,
        "ADD",
        &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
    ),
    (
        Command::Del,
        "DEL",
        &["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
    ),
    (
        Command::Check,
        "CHECK",
        &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
    ),
    (Command::Gc, "GC", &["CNI_PATH"]),
    (Command::Status, "STATUS", &[]),
    (Command::Version, "VERSION", &[]),
];

fn environment(command: &str, variables: &[&str]) -> CniResult<Environment> {
    let mut map: HashMap<&str, &str> = ALL_VARIABLES
        .iter()
        .filter(|(k, _)| variables.contains(k))
        .copied()
        .collect();
    map.insert("CNI_COMMAND", command);
    Environment::from_lookup(|key| map.get(key).map(|v| v.to_string()))
}

#[test]
fn every_verb_is_accepted_with_exactly_the_variables_it_needs() {
    let all: Vec<&str> = ALL_VARIABLES.iter().map(|(k, _)| *k).collect();
    for (command, text, required) in REQUIRED {
        assert_eq!(Command::parse(text).unwrap(), command);
        assert_eq!(command.as_str(), text);

        let env =
            environment(text, required).unwrap_or_else(|e| panic!("{text} with {required:?}: {e}"));
        assert_eq!(env.command, command);
        assert!(env.args.is_empty());
        let env = environment(text, &all).unwrap_or_else(|e| panic!("{text} with everything: {e}"));
        assert_eq!(env.command, command);
        let names_an_attachment = matches!(command, Command::Add | Command::Del | Command::Check);
        assert_eq!(env.container_id.is_some(), names_an_attachment, "{text}");
        assert_eq!(env.ifname.is_some(), names_an_attachment, "{text}");
        assert_eq!(env.netns.is_some(), names_an_attachment, "{text}");
        assert_eq!(
            env.args.len(),
            if names_an_attachment { 2 } else { 0 },
            "{text}"
        );
        if command != Command::Version {
            assert_eq!(
                env.path,
                [PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")],
                "{text}"
            );
        }

        for missing in required.iter() {
            let rest: Vec<&str> = required.iter().copied().filter(|v| v != missing).collect();
            let err = environment(text, &rest).expect_err(&format!("{text} without {missing}"));
            assert_eq!(
                err.code,
                code::INVALID_ENVIRONMENT,
                "{text} without {missing}: {}",
                err.msg
            );
            assert!(
                err.msg.contains(missing) && err.msg.contains(text),
                "{text}: {}",
                err.msg
            );
        }
    }
}

#[test]
fn an_empty_variable_counts_as_unset() {
    let map: HashMap<&str, &str> = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", ""),
        ("CNI_IFNAME", "net1"),
        ("CNI_PATH", "/opt/cni/bin"),
    ]
    .into();
    let err = Environment::from_lookup(|key| map.get(key).map(|v| v.to_string())).unwrap_err();
    assert!(err.msg.contains("CNI_NETNS"), "{}", err.msg);
    for command in ["", "add", "INIT"] {
        let err =
            Environment::from_lookup(|key| (key == "CNI_COMMAND").then(|| command.to_owned()))
                .unwrap_err();
        assert_eq!(err.code, code::INVALID_ENVIRONMENT);
        assert!(err.msg.contains("CNI_COMMAND"), "{}", err.msg);
    }
}

#[test]
fn every_verb_at_every_version() {
    use CniVersion::*;
    // Which verb each version has: ADD, DEL, VERSION always; CHECK from 0.4.0; GC and STATUS
    // from 1.1.0.
    let table: [(CniVersion, bool, bool); 5] = [
        // (version, has CHECK, has GC and STATUS)
        (V0_3_0, false, false),
        (V0_3_1, false, false),
        (V0_4_0, true, false),
        (V1_0_0, true, false),
        (V1_1_0, true, true),
    ];
    assert_eq!(table.map(|(v, _, _)| v), CniVersion::ALL);
    for (version, check, gc_and_status) in table {
        assert_eq!(version.has_check(), check, "{version}");
        assert_eq!(version.has_gc_and_status(), gc_and_status, "{version}");
        assert_eq!(CniVersion::parse(version.as_str()).unwrap(), version);
        for (command, text, required) in REQUIRED {
            let exists = match command {
                Command::Add | Command::Del | Command::Version => true,
                Command::Check => check,
                Command::Gc | Command::Status => gc_and_status,
            };
            let env = environment(text, required);
            if exists {
                assert_eq!(env.unwrap().command, command, "{text} at {version}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn error_json_has_version_code_message_and_details_only_when_present() {
    let err = CniError::config("mtu 0 is out of range");
    let json = err.to_json("1.0.0");
    assert_eq!(
        json,
        json!({ "cniVersion": "1.0.0", "code": 7, "msg": "mtu 0 is out of range" })
    );
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["cniVersion", "code", "msg"]);

    let json = err.clone().with_details("").to_json("0.4.0");
    assert!(json.get("details").is_none(), "{json}");

    let json = CniError::new(code::TRY_AGAIN_LATER, "locked")
        .with_details("held by pid 42")
        .to_json("1.1.0");
    assert_eq!(
        json,
        json!({ "cniVersion": "1.1.0", "code": 11, "msg": "locked", "details": "held by pid 42" })
    );
    assert!(json["code"].is_u64(), "the code is a number, not a string");

    let json = CniError::env("CNI_PATH is required")
        .context("reading the environment")
        .to_json("0.3.1");
    assert_eq!(json["code"], 4);
    assert_eq!(json["msg"], "reading the environment: CNI_PATH is required");
}
