//! The CNI specification versions this plugin speaks, and what each allows.

use std::fmt;

use serde_json::{json, Value};

use super::env::Command;
use crate::error::{Error, Kind, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

impl CniVersion {
    pub const ALL: [CniVersion; 5] = [
        CniVersion::V0_3_0,
        CniVersion::V0_3_1,
        CniVersion::V0_4_0,
        CniVersion::V1_0_0,
        CniVersion::V1_1_0,
    ];
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    pub fn parse(text: &str) -> Result<CniVersion> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == text)
            .ok_or_else(|| {
                Error::new(
                    Kind::IncompatibleVersion,
                    format!(
                        "unsupported cniVersion {text:?}: this plugin supports {}",
                        supported_list()
                    ),
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CniVersion::V0_3_0 => "0.3.0",
            CniVersion::V0_3_1 => "0.3.1",
            CniVersion::V0_4_0 => "0.4.0",
            CniVersion::V1_0_0 => "1.0.0",
            CniVersion::V1_1_0 => "1.1.0",
        }
    }

    /// CHECK exists since 0.4.0.
    pub fn has_check(self) -> bool {
        self >= CniVersion::V0_4_0
    }

    /// GC and STATUS exist since 1.1.0.
    pub fn has_gc_and_status(self) -> bool {
        self >= CniVersion::V1_1_0
    }

    /// Refuses (code 1) a verb this version of the specification does not have.
    pub fn require_verb(self, command: Command) -> Result<()> {
        let since = match command {
            Command::Check if !self.has_check() => "0.4.0",
            Command::Gc | Command::Status if !self.has_gc_and_status() => "1.1.0",
            _ => return Ok(()),
        };
        Err(Error::new(
            Kind::IncompatibleVersion,
            format!(
                "{} needs cniVersion {since} or later; the configuration has {self}",
                command.as_str()
            ),
        ))
    }

    /// Results before 1.0.0 carry `ips[].version` ("4" or "6").
    pub fn ips_carry_version(self) -> bool {
        self < CniVersion::V1_0_0
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn supported_list() -> String {
    CniVersion::ALL.map(CniVersion::as_str).join(", ")
}

/// The `cniVersion` string of a configuration, read before (or without) parsing the rest:
/// VERSION echoes it, and an error is written in it. None when stdin is not JSON or has none.
pub fn declared_version(stdin: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(stdin)
        .ok()?
        .get("cniVersion")?
        .as_str()
        .map(str::to_owned)
}

/// The reply to VERSION. The input's `cniVersion` is echoed when this plugin speaks it (as the
/// specification asks); an empty or unknown one is answered with the latest version.
pub fn version_reply(stdin: &[u8]) -> Value {
    let requested = declared_version(stdin)
        .and_then(|v| CniVersion::parse(&v).ok())
        .unwrap_or(CniVersion::LATEST);
    json!({
        "cniVersion": requested.as_str(),
        "supportedVersions": CniVersion::ALL.map(CniVersion::as_str),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_supported_version_and_nothing_else() {
        for v in CniVersion::ALL {
            assert_eq!(CniVersion::parse(v.as_str()).unwrap(), v);
        }
        for bad in ["0.1.0", "0.2.0", "1.2.0", "", "1.0", "v1.0.0"] {
            let err = CniVersion::parse(bad).unwrap_err();
            assert_eq!(err.cni_code(), 1, "{bad}");
            assert!(err.msg.contains("cniVersion"), "{}", err.msg);
        }
    }

    #[test]
    fn verbs_per_version() {
        assert!(!CniVersion::V0_3_1.has_check());
        assert!(CniVersion::V0_4_0.has_check());
        assert!(!CniVersion::V1_0_0.has_gc_and_status());
        assert!(CniVersion::V1_1_0.has_gc_and_status());
        assert!(CniVersion::V0_4_0.ips_carry_version());
        assert!(!CniVersion::V1_0_0.ips_carry_version());
    }

    #[test]
    fn version_reply_lists_all_five_and_echoes_the_request() {
        let reply = version_reply(br#"{"cniVersion":"0.4.0"}"#);
        assert_eq!(reply["cniVersion"], "0.4.0");
        assert_eq!(
            reply["supportedVersions"],
            json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        );
        assert_eq!(version_reply(b"")["cniVersion"], "1.1.0");
        assert_eq!(
            version_reply(br#"{"cniVersion":"9.9.9"}"#)["cniVersion"],
            "1.1.0"
        );
    }
}
