//! Configurations that are refused: every invalid key, stdin that is not an object, ADD with
//! neither `ipam` nor `prevResult`.

use crate::conf_with;
use macvlan_host::protocol::{code, Command, Mode, NetConf};
use serde_json::{json, Value};

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
            assert_eq!(err.cni_code(), *expected_code, "{label}: {}", err.msg);
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
        assert_eq!(err.cni_code(), code::DECODING_FAILURE, "{}", err.msg);
        assert!(err.msg.contains("network configuration"), "{}", err.msg);
    }
}

#[test]
fn without_ipam_or_prev_result_add_is_refused_and_del_is_a_chained_del() {
    for empty_ipam in [None, Some(Value::Null), Some(json!({}))] {
        let stdin = conf_with("ipam", empty_ipam.clone());
        let err = NetConf::parse(&stdin, Command::Add).unwrap_err();
        assert_eq!(err.cni_code(), code::INVALID_CONFIG);
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
