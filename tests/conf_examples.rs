//! The example conflists in conf/ are what users copy: every macvlan-host entry in them must
//! be a valid configuration, in the mode the file name promises.

use std::fs;

use macvlan_host::protocol::{Command, Mode, NetConf};
use serde_json::{json, Value};

#[test]
fn every_example_conflist_parses_in_its_mode() {
    let mut seen = 0;
    for entry in fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/conf")).unwrap() {
        let path = entry.unwrap().path();
        let list: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for plugin in list["plugins"].as_array().unwrap() {
            if plugin["type"] != "macvlan-host" {
                continue;
            }
            // As a runtime does: the list's name and version are injected, and a chained entry
            // gets the previous plugin's result.
            let mut conf = plugin.clone();
            conf["name"] = list["name"].clone();
            conf["cniVersion"] = list["cniVersion"].clone();
            if file.starts_with("chained") {
                conf["prevResult"] = json!({"interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
                                            "ips": [{"address": "192.168.1.200/24", "interface": 0}]});
            }
            let parsed = NetConf::parse(conf.to_string().as_bytes(), Command::Add)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            match parsed.mode {
                Mode::Chained { .. } => assert!(file.starts_with("chained"), "{file}"),
                Mode::Interface { .. } => assert!(!file.starts_with("chained"), "{file}"),
            }
            seen += 1;
        }
    }
    assert!(seen >= 4, "expected at least four examples, found {seen}");
}
