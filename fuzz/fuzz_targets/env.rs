//! The environment: `Environment::from_lookup` over `KEY=value` lines (CNI_COMMAND,
//! CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH). Properties: no panic; an
//! error carries a non-zero code; an accepted environment has what its verb needs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use macvlan_host::protocol::{Command, Environment};
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let table: HashMap<String, String> = text
        .split('\n')
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match Environment::from_lookup(|key| table.get(key).cloned()) {
        Ok(env) => {
            if matches!(env.command, Command::Add | Command::Check | Command::Del) {
                let _ = (env.container_id(), env.ifname());
                assert!(!env.ifname().is_empty(), "accepted without CNI_IFNAME");
                assert!(!env.ifname().contains('/'), "ifname {:?}", env.ifname());
            }
        }
        Err(err) => assert_ne!(err.cni_code(), 0, "an error with code 0: {err}"),
    }
});
