//! Configurations that are read: defaults, every valid value, unknown keys kept, which mode a
//! configuration means, GC's attachment lists.

use std::path::PathBuf;

use crate::{base_conf, conf_with, parse};
use macvlan_host::protocol::config::DEFAULT_STATE_DIR;
use macvlan_host::protocol::{CniVersion, Command, HostAccess, Mode, NetConf};
use macvlan_host::system::netlink::MacvlanMode;
use serde_json::{json, Value};

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
