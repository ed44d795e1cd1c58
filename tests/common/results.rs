//! Reading CNI results and errors: the pod's addresses, the interfaces listed, the message of
//! a failed call.

use super::plugin::CniOutput;
use serde_json::Value;
use std::net::IpAddr;

/// The addresses of a result's `ips`, without prefix length: `["10.99.0.100", "fd99::100"]`.
pub fn pod_ips(result: &Value) -> Vec<String> {
    result["ips"]
        .as_array()
        .unwrap_or_else(|| panic!("a result with ips: {result}"))
        .iter()
        .map(|ip| {
            let cidr = ip["address"].as_str().expect("ips[].address");
            cidr.split('/').next().unwrap().to_string()
        })
        .collect()
}

/// The addresses of a result's `ips`, parsed.
pub fn result_ips(result: &Value) -> Vec<IpAddr> {
    pod_ips(result)
        .iter()
        .map(|ip| ip.parse().expect("an IP"))
        .collect()
}

/// The result's IPv4 or IPv6 address.
pub fn result_ip(result: &Value, v6: bool) -> String {
    pod_ips(result)
        .into_iter()
        .find(|ip| ip.contains(':') == v6)
        .unwrap_or_else(|| {
            panic!(
                "no {} address in {result}",
                if v6 { "IPv6" } else { "IPv4" }
            )
        })
}

/// The name of the last entry of a result's `interfaces`: where the veth's node end is listed.
pub fn last_interface(result: &Value) -> String {
    let interfaces = result["interfaces"].as_array().expect("interfaces");
    let last = interfaces.last().expect("an interface");
    last["name"].as_str().expect("a name").to_string()
}

/// `conf` with `prevResult` set, as a runtime passes the cached ADD result to CHECK and DEL.
pub fn with_prev(conf: &Value, result: &Value) -> Value {
    let mut conf = conf.clone();
    conf["prevResult"] = result.clone();
    conf
}

/// The error message (and details) of a failed plugin call; panics if it succeeded.
pub fn error_message(out: &CniOutput) -> String {
    out.expect_error();
    format!(
        "{} {}",
        out.stdout["msg"].as_str().unwrap_or_default(),
        out.stdout["details"].as_str().unwrap_or_default()
    )
}

/// The call failed with an error whose message (or details) mentions every one of `needles`.
pub fn assert_mentions(out: &CniOutput, needles: &[&str], what: &str) {
    let msg = error_message(out);
    for needle in needles {
        assert!(
            msg.contains(needle),
            "{what}: the error does not mention {needle:?}: {msg}"
        );
    }
}
