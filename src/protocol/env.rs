//! The CNI_* environment variables of one call, validated.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::system::names::is_valid_id;
pub use crate::system::names::validate_ifname;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Gc,
    Status,
}

impl Command {
    pub fn parse(text: &str) -> Result<Command> {
        Ok(match text {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            other => {
                return Err(Error::env(format!(
                    "CNI_COMMAND {other:?} is not one of ADD, DEL, CHECK, VERSION, GC, STATUS"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Gc => "GC",
            Command::Status => "STATUS",
        }
    }

    /// The verbs that act on one attachment (container ID + interface).
    fn names_an_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

/// The environment of one call. Fields that the verb does not use are None.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    pub command: Command,
    pub container_id: Option<String>,
    /// None for DEL without CNI_NETNS (the namespace may be gone already).
    pub netns: Option<PathBuf>,
    pub ifname: Option<String>,
    pub args: Vec<(String, String)>,
    pub path: Vec<PathBuf>,
}

impl Environment {
    /// Reads the process environment.
    pub fn from_process() -> Result<Environment> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the environment through `lookup` (tests pass a table).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Environment> {
        let get = |key: &str| lookup(key).filter(|v| !v.is_empty());
        let command_text =
            get("CNI_COMMAND").ok_or_else(|| Error::env("CNI_COMMAND is not set"))?;
        let command = Command::parse(&command_text)?;
        let mut env = Environment {
            command,
            container_id: None,
            netns: None,
            ifname: None,
            args: Vec::new(),
            path: Vec::new(),
        };
        if command == Command::Version {
            return Ok(env);
        }
        if command.names_an_attachment() {
            let id = get("CNI_CONTAINERID").ok_or_else(|| missing("CNI_CONTAINERID", command))?;
            validate_container_id(&id)?;
            env.container_id = Some(id);
            let ifname = get("CNI_IFNAME").ok_or_else(|| missing("CNI_IFNAME", command))?;
            validate_ifname(&ifname)
                .map_err(|why| Error::env(format!("CNI_IFNAME {ifname:?} {why}")))?;
            env.ifname = Some(ifname);
            env.netns = get("CNI_NETNS").map(PathBuf::from);
            if env.netns.is_none() && command != Command::Del {
                return Err(missing("CNI_NETNS", command));
            }
            env.args = parse_args(&get("CNI_ARGS").unwrap_or_default())?;
        }
        let path = get("CNI_PATH");
        if path.is_none() && command != Command::Status {
            return Err(missing("CNI_PATH", command));
        }
        env.path = path
            .unwrap_or_default()
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        Ok(env)
    }

    pub fn container_id(&self) -> &str {
        self.container_id.as_deref().unwrap_or_default()
    }

    pub fn ifname(&self) -> &str {
        self.ifname.as_deref().unwrap_or_default()
    }
}

fn missing(var: &str, command: Command) -> Error {
    Error::env(format!(
        "{var} is required for {} but is not set",
        command.as_str()
    ))
}

/// Container IDs name the plugin's state files, so only the characters the specification
/// allows get through: letters, digits, `_`, `.`, `-`, starting with a letter or digit.
pub fn validate_container_id(id: &str) -> Result<()> {
    if !is_valid_id(id, 128) {
        return Err(Error::env(format!(
            "CNI_CONTAINERID {id:?} is invalid: it must be 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )));
    }
    Ok(())
}

/// CNI_ARGS: `K=V;K=V`. Unknown keys are kept (runtimes send `IgnoreUnknown=1;K8S_POD_NAME=..`).
fn parse_args(text: &str) -> Result<Vec<(String, String)>> {
    text.split(';')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(Error::env(format!(
                "CNI_ARGS {text:?} is invalid: {pair:?} is not of the form KEY=VALUE"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> Result<Environment> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment::from_lookup(|k| map.get(k).cloned())
    }

    const GOOD: [(&str, &str); 6] = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "abc-123_x.y"),
        ("CNI_NETNS", "/run/netns/pod"),
        ("CNI_IFNAME", "net1"),
        ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web-0"),
        ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
    ];

    fn with(overrides: &[(&'static str, &'static str)]) -> Result<Environment> {
        let mut pairs: Vec<(&str, &str)> = GOOD
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(ok, _)| ok == k))
            .copied()
            .collect();
        pairs.extend(overrides.iter().filter(|(_, v)| *v != "<unset>"));
        env_of(&pairs)
    }

    #[test]
    fn a_full_add_environment_parses() {
        let env = with(&[]).unwrap();
        assert_eq!(env.command, Command::Add);
        assert_eq!(env.container_id(), "abc-123_x.y");
        assert_eq!(env.ifname(), "net1");
        assert_eq!(env.netns, Some(PathBuf::from("/run/netns/pod")));
        assert_eq!(env.args[1], ("K8S_POD_NAME".into(), "web-0".into()));
        assert_eq!(env.path.len(), 2);
    }

    #[test]
    fn every_bad_variable_is_code_4_and_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("CNI_COMMAND", "<unset>")], "CNI_COMMAND"),
            (&[("CNI_COMMAND", "ATTACH")], "CNI_COMMAND"),
            (&[("CNI_CONTAINERID", "<unset>")], "CNI_CONTAINERID"),
            (&[("CNI_CONTAINERID", "../etc")], "CNI_CONTAINERID"),
            (&[("CNI_CONTAINERID", "-abc")], "CNI_CONTAINERID"),
            (&[("CNI_CONTAINERID", "a b")], "CNI_CONTAINERID"),
            (&[("CNI_NETNS", "<unset>")], "CNI_NETNS"),
            (&[("CNI_IFNAME", "<unset>")], "CNI_IFNAME"),
            (&[("CNI_IFNAME", "a-very-long-interface")], "CNI_IFNAME"),
            (&[("CNI_IFNAME", "eth/0")], "CNI_IFNAME"),
            (&[("CNI_IFNAME", "eth:0")], "CNI_IFNAME"),
            (&[("CNI_IFNAME", "eth 0")], "CNI_IFNAME"),
            (&[("CNI_IFNAME", "..")], "CNI_IFNAME"),
            (&[("CNI_IFNAME", ".")], "CNI_IFNAME"),
            (&[("CNI_ARGS", "K8S_POD_NAME")], "CNI_ARGS"),
            (&[("CNI_ARGS", "=x")], "CNI_ARGS"),
            (&[("CNI_PATH", "<unset>")], "CNI_PATH"),
        ];
        for (overrides, var) in cases {
            let err = with(overrides).expect_err(var);
            assert_eq!(err.cni_code(), 4, "{var}: {}", err.msg);
            assert!(err.msg.contains(var), "{var}: {}", err.msg);
        }
    }

    #[test]
    fn del_needs_no_namespace_and_status_no_path() {
        let env = with(&[("CNI_COMMAND", "DEL"), ("CNI_NETNS", "<unset>")]).unwrap();
        assert_eq!(env.netns, None);
        let env = env_of(&[("CNI_COMMAND", "STATUS")]).unwrap();
        assert!(env.path.is_empty());
        let env = env_of(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/x")]).unwrap();
        assert_eq!(env.container_id, None);
        assert_eq!(
            env_of(&[("CNI_COMMAND", "VERSION")]).unwrap().command,
            Command::Version
        );
    }

    #[test]
    fn check_needs_the_namespace() {
        let err = with(&[("CNI_COMMAND", "CHECK"), ("CNI_NETNS", "<unset>")]).unwrap_err();
        assert!(err.msg.contains("CNI_NETNS"));
    }
}
