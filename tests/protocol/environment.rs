//! The environment each verb needs, every verb at every spec version, and the error document.

use std::collections::HashMap;
use std::path::PathBuf;

use macvlan_host::error::{Error, Kind, Result};
use macvlan_host::protocol::{code, CniVersion, Command, Environment};
use serde_json::json;

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

fn environment(command: &str, variables: &[&str]) -> Result<Environment> {
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
                err.cni_code(),
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
        assert_eq!(err.cni_code(), code::INVALID_ENVIRONMENT);
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
    let err = Error::config("mtu 0 is out of range");
    let json = err.to_json("1.0.0");
    assert_eq!(
        json,
        json!({ "cniVersion": "1.0.0", "code": 7, "msg": "mtu 0 is out of range" })
    );
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["cniVersion", "code", "msg"]);

    let json = err.clone().with_details("").to_json("0.4.0");
    assert!(json.get("details").is_none(), "{json}");

    let json = Error::new(Kind::TryAgainLater, "locked")
        .with_details("held by pid 42")
        .to_json("1.1.0");
    assert_eq!(
        json,
        json!({ "cniVersion": "1.1.0", "code": 11, "msg": "locked", "details": "held by pid 42" })
    );
    assert!(json["code"].is_u64(), "the code is a number, not a string");

    let json = Error::env("CNI_PATH is required")
        .context("reading the environment")
        .to_json("0.3.1");
    assert_eq!(json["code"], 4);
    assert_eq!(json["msg"], "reading the environment: CNI_PATH is required");
}
