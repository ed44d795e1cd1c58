//! Results read from others: a prevResult, or an IPAM plugin's result. `CniOutput::parse`,
//! then what ADD does with a good one: re-emit it at every version, pick the pod's interface,
//! pass a prevResult through. Properties: no panic; whatever we emit, we can read back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use macvlan_host::protocol::result::pass_through;
use macvlan_host::protocol::{CniOutput, CniVersion};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let parsed = match CniOutput::parse(&value, "prevResult") {
        Ok(parsed) => parsed,
        Err(err) => {
            assert_ne!(err.cni_code(), 0, "an error with code 0: {err}");
            return;
        }
    };
    let _ = parsed.pod_interface("eth0", "prevResult");
    for version in CniVersion::ALL {
        let emitted = parsed.to_json(version);
        if let Err(e) = CniOutput::parse(&emitted, "our own result") {
            panic!(
                "our {} result {emitted} does not read back: {e}",
                version.as_str()
            );
        }
        // A prevResult is always an object (NetConf::parse refuses anything else).
        if value.is_object() {
            let passed = pass_through(&value, version, &[]);
            assert!(passed.is_object(), "pass-through gave {passed}");
        }
    }
});
