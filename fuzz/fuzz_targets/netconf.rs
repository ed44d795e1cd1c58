//! The network configuration on stdin, for every verb: `NetConf::parse` (and the VERSION
//! reply, which reads stdin too). The first byte picks the verb, the rest is stdin.
//! Properties: no panic; an error carries a non-zero code and serialises to a CNI error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use macvlan_host::protocol::version::version_reply;
use macvlan_host::protocol::{Command, NetConf};

const VERBS: [Command; 6] = [
    Command::Add,
    Command::Del,
    Command::Check,
    Command::Gc,
    Command::Status,
    Command::Version,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stdin)) = data.split_first() else {
        return;
    };
    let command = VERBS[usize::from(selector) % VERBS.len()];
    if command == Command::Version {
        let reply = version_reply(stdin);
        assert!(reply.is_object(), "VERSION reply is not an object: {reply}");
        return;
    }
    match NetConf::parse(stdin, command) {
        Ok(conf) => {
            // What the verbs read of it next must not panic either.
            let _ = conf.prev_result();
            let _ = serde_json::Value::Object(conf.raw.clone()).to_string();
        }
        Err(err) => {
            assert_ne!(err.cni_code(), 0, "an error with code 0: {err}");
            let json = err.to_json("1.1.0");
            assert!(json["code"].as_u64().is_some_and(|c| c != 0), "{json}");
            assert!(json["msg"].is_string(), "{json}");
        }
    }
});
