//! Checks a conflist before it is installed: a conflist the runtime cannot use would break
//! every new pod on the node, so it is refused up front, with the key at fault named, and the
//! installed one stays.
//!
//! Every `macvlan-host` entry is checked with the plugin's own rules (`NetConf::parse`), after
//! the runtime's injection of the list's `name` and `cniVersion`, exactly as ADD would read it.
//! Entries of other plugins are checked only for what every runtime needs (a `type`).

use serde_json::{Map, Value};

use crate::protocol::{CniVersion, Command, Mode, NetConf};

/// The CNI type name of this plugin.
pub const OUR_TYPE: &str = "macvlan-host";

/// Validates the conflist `bytes`; the error names the key (and the plugin entry) at fault.
pub fn validate(bytes: &[u8]) -> Result<(), String> {
    let list: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not valid JSON: {e}"))?;
    let Value::Object(list) = list else {
        return Err("it is not a JSON object".into());
    };
    let version = string_key(&list, "cniVersion")?;
    CniVersion::parse(&version).map_err(|e| format!("cniVersion: {e}"))?;
    string_key(&list, "name")?;
    let plugins = match list.get("plugins") {
        Some(Value::Array(p)) if !p.is_empty() => p,
        Some(other) => {
            return Err(format!(
                "plugins must be a non-empty list of plugin configurations, got {other}"
            ))
        }
        None => {
            return Err(
                "plugins is missing: a conflist lists its plugins under \"plugins\" (a single \
                 plugin's configuration is a .conf file, which this installer does not write)"
                    .into(),
            )
        }
    };
    let mut ours = 0;
    for (index, plugin) in plugins.iter().enumerate() {
        let Value::Object(plugin) = plugin else {
            return Err(format!("plugins[{index}] must be an object, got {plugin}"));
        };
        let plugin_type =
            string_key(plugin, "type").map_err(|e| format!("plugins[{index}]: {e}"))?;
        if plugin_type == OUR_TYPE {
            validate_ours(&list, plugin, index)
                .map_err(|e| format!("plugins[{index}] ({OUR_TYPE}): {e}"))?;
            ours += 1;
        }
    }
    if ours == 0 {
        return Err(format!(
            "plugins has no entry of type \"{OUR_TYPE}\": this is not a conflist for this plugin"
        ));
    }
    Ok(())
}

/// One `macvlan-host` entry, read as the plugin reads it on ADD.
fn validate_ours(
    list: &Map<String, Value>,
    plugin: &Map<String, Value>,
    index: usize,
) -> Result<(), String> {
    let mut conf = plugin.clone();
    for key in ["name", "cniVersion"] {
        conf.insert(key.into(), list[key].clone());
    }
    // Without `ipam` the entry runs chained: it gets its `prevResult` from the entries before
    // it, which DEL's reading (no prevResult needed) accepts, so every other key is checked.
    let parsed = NetConf::parse(Value::Object(conf).to_string().as_bytes(), Command::Del)
        .map_err(|e| e.to_string())?;
    if matches!(parsed.mode, Mode::Chained { .. }) && index == 0 {
        return Err(
            "it has no \"ipam\" section, so it runs chained and needs a plugin before it that \
             creates the pod's interface (e.g. {\"type\": \"macvlan\", ...}); or give it \
             \"ipam\" to let it create the macvlan itself"
                .into(),
        );
    }
    Ok(())
}

/// A required, non-empty string key.
fn string_key(object: &Map<String, Value>, key: &str) -> Result<String, String> {
    match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => Err(format!("{key} must be a non-empty string, got {other}")),
        None => Err(format!("{key} is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(list: Value) -> Result<(), String> {
        validate(list.to_string().as_bytes())
    }

    fn chained(ours: Value) -> Value {
        json!({"cniVersion": "1.0.0", "name": "lan", "plugins": [
            {"type": "macvlan", "master": "eth0", "ipam": {"type": "host-local"}},
            ours,
        ]})
    }

    #[test]
    fn the_shipped_examples_are_valid() {
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/conf")).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            validate(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }

    #[test]
    fn bad_values_are_refused_naming_entry_and_key() {
        let err = check(chained(
            json!({"type": "macvlan-host", "hostAccess": "bridge"}),
        ))
        .unwrap_err();
        assert!(
            err.starts_with("plugins[1] (macvlan-host): hostAccess"),
            "{err}"
        );
        let err = check(chained(
            json!({"type": "macvlan-host", "hostRoutes": ["10.96.0.0"]}),
        ))
        .unwrap_err();
        assert!(err.contains("hostRoutes"), "{err}");
        let err = check(chained(
            json!({"type": "macvlan-host", "shimName": "a-name-far-too-long"}),
        ))
        .unwrap_err();
        assert!(err.contains("shimName"), "{err}");
    }

    #[test]
    fn the_list_itself_is_checked() {
        let mut list = chained(json!({"type": "macvlan-host"}));
        assert_eq!(check(list.clone()), Ok(()));
        list["cniVersion"] = json!("2.0.0");
        assert!(check(list.clone()).unwrap_err().starts_with("cniVersion"));
        list["cniVersion"] = json!("1.0.0");
        list["name"] = json!("bad name");
        assert!(check(list.clone()).unwrap_err().contains("name"));
        let err = check(json!({"cniVersion": "1.0.0", "name": "lan", "type": "macvlan-host"}))
            .unwrap_err();
        assert!(err.starts_with("plugins is missing"), "{err}");
        let err =
            check(json!({"cniVersion": "1.0.0", "name": "lan", "plugins": [{"type": "bridge"}]}))
                .unwrap_err();
        assert!(err.contains("no entry of type"), "{err}");
        assert!(validate(b"{\"cniVersion\": ")
            .unwrap_err()
            .contains("not valid JSON"));
    }

    #[test]
    fn a_chained_entry_needs_a_plugin_before_it() {
        let err = check(
            json!({"cniVersion": "1.0.0", "name": "lan", "plugins": [{"type": "macvlan-host"}]}),
        )
        .unwrap_err();
        assert!(err.contains("\"ipam\""), "{err}");
        let standalone = json!({"cniVersion": "1.1.0", "name": "lan", "plugins": [
            {"type": "macvlan-host", "master": "eth0", "ipam": {"type": "host-local"}}]});
        assert_eq!(check(standalone), Ok(()));
    }
}
