//! The MAC a runtime asks for the pod's interface (interface mode). Three ways, as with the
//! reference plugins, the most specific first:
//!
//! 1. `runtimeConfig.mac`: the `mac` capability (Multus fills it from the pod's annotation);
//! 2. `args.cni.mac`: the configuration's `args` (the CNI conventions' successor to
//!    `CNI_ARGS`);
//! 3. `CNI_ARGS` `MAC=...`.
//!
//! The reference `macvlan` lets `runtimeConfig.mac` win over `CNI_ARGS`; it has no `args`, and
//! the reference `bridge`, which has all three, puts `args.cni.mac` between them: so do we.
//! Only the winner is read, as the reference does; an empty value counts as absent.

use serde_json::{Map, Value};

use super::Environment;
use crate::error::{Error, Result};
use crate::system::Mac;

/// A MAC asked for, and where it was asked for (for messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestedMac {
    pub mac: Mac,
    pub source: &'static str,
}

/// The requested MAC, or None. A value that is no unicast MAC is refused with code 7 naming
/// the key and the value.
pub fn requested_mac(env: &Environment, conf: &Map<String, Value>) -> Result<Option<RequestedMac>> {
    let from_runtime = conf.get("runtimeConfig").and_then(|rc| rc.get("mac"));
    let from_args = conf
        .get("args")
        .and_then(|args| args.get("cni"))
        .and_then(|cni| cni.get("mac"));
    let from_env = env
        .args
        .iter()
        .find(|(key, _)| key == "MAC")
        .map(|(_, value)| Value::String(value.clone()));
    let candidates = [
        ("runtimeConfig.mac", from_runtime.cloned()),
        ("args.cni.mac", from_args.cloned()),
        ("CNI_ARGS MAC", from_env),
    ];
    for (source, value) in candidates {
        match value {
            None | Some(Value::Null) => continue,
            Some(Value::String(text)) if text.is_empty() => continue,
            Some(Value::String(text)) => {
                return parse_unicast(&text)
                    .map(|mac| Some(RequestedMac { mac, source }))
                    .map_err(|why| Error::config(format!("{source} {text:?} is invalid: {why}")))
            }
            Some(other) => {
                return Err(Error::config(format!(
                    "{source} must be a string such as \"02:00:00:00:00:01\", got {other}"
                )))
            }
        }
    }
    Ok(None)
}

/// `aa:bb:cc:dd:ee:ff`, a MAC an interface can have: neither multicast (nor broadcast) nor
/// all zeros, which the kernel would refuse later with a less helpful message.
fn parse_unicast(text: &str) -> Result<Mac, String> {
    let mac: Mac = text
        .parse()
        .map_err(|_| "not a MAC address of the form aa:bb:cc:dd:ee:ff".to_owned())?;
    if mac.0[0] & 0x01 != 0 {
        return Err("a multicast address cannot be an interface's MAC".into());
    }
    if mac.0 == [0; 6] {
        return Err("all zeros cannot be an interface's MAC".into());
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Command;
    use serde_json::json;

    fn env(cni_args: &[(&str, &str)]) -> Environment {
        Environment {
            command: Command::Add,
            container_id: Some("c".into()),
            netns: None,
            ifname: Some("eth0".into()),
            args: cni_args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            path: Vec::new(),
        }
    }

    fn conf(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    const A: &str = "02:00:00:00:00:0a";
    const B: &str = "02:00:00:00:00:0b";
    const C: &str = "02:00:00:00:00:0c";

    fn winner(cni_args: &[(&str, &str)], value: Value) -> Option<(String, &'static str)> {
        requested_mac(&env(cni_args), &conf(value))
            .unwrap()
            .map(|r| (r.mac.to_string(), r.source))
    }

    #[test]
    fn runtime_config_wins_then_args_then_cni_args() {
        let all = json!({"runtimeConfig": {"mac": A}, "args": {"cni": {"mac": B}}});
        assert_eq!(
            winner(&[("MAC", C)], all),
            Some((A.into(), "runtimeConfig.mac"))
        );
        let two = json!({"args": {"cni": {"mac": B}}});
        assert_eq!(winner(&[("MAC", C)], two), Some((B.into(), "args.cni.mac")));
        let empty = json!({"runtimeConfig": {"mac": ""}});
        assert_eq!(
            winner(&[("IgnoreUnknown", "1"), ("MAC", C)], empty),
            Some((C.into(), "CNI_ARGS MAC"))
        );
        assert_eq!(winner(&[("K8S_POD_NAME", "x")], json!({})), None);
    }

    #[test]
    fn upper_case_is_read() {
        assert_eq!(
            winner(&[("MAC", "02:AB:00:00:00:01")], json!({})),
            Some(("02:ab:00:00:00:01".into(), "CNI_ARGS MAC"))
        );
    }

    #[test]
    fn an_invalid_winner_is_code_7_naming_source_and_value() {
        for (cni_args, value, named) in [
            (
                vec![],
                json!({"runtimeConfig": {"mac": "zz:00"}}),
                "runtimeConfig.mac",
            ),
            (vec![], json!({"args": {"cni": {"mac": 7}}}), "args.cni.mac"),
            (
                vec![("MAC", "01:00:5e:00:00:01")],
                json!({}),
                "CNI_ARGS MAC",
            ),
            (
                vec![("MAC", "00:00:00:00:00:00")],
                json!({}),
                "CNI_ARGS MAC",
            ),
            (
                vec![("MAC", "ff:ff:ff:ff:ff:ff")],
                json!({}),
                "CNI_ARGS MAC",
            ),
        ] {
            let err = requested_mac(&env(&cni_args), &conf(value)).unwrap_err();
            assert_eq!(err.cni_code(), 7, "{err}");
            assert!(err.msg.contains(named), "{err}");
        }
        let err = requested_mac(&env(&[]), &conf(json!({"runtimeConfig": {"mac": "zz:00"}})))
            .unwrap_err();
        assert!(err.msg.contains("zz:00"), "{err}");
    }
}
