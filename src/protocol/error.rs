//! The CNI front end's form of an error: the code of the CNI specification for each kind of
//! failure, and the JSON document a plugin prints on stdout when a verb fails. 999 is the
//! generic failure that the reference plugins use for anything without a more precise code.

use serde_json::json;

use crate::error::{Error, Kind};

pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENVIRONMENT: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODING_FAILURE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;
    pub const LIMITED_CONNECTIVITY: u32 = 51;
    pub const INTERNAL: u32 = 999;
}

impl Kind {
    /// The CNI error code of this kind of failure.
    pub fn cni_code(self) -> u32 {
        match self {
            Kind::IncompatibleVersion => code::INCOMPATIBLE_VERSION,
            Kind::UnsupportedField => code::UNSUPPORTED_FIELD,
            Kind::UnknownContainer => code::UNKNOWN_CONTAINER,
            Kind::Environment => code::INVALID_ENVIRONMENT,
            Kind::Io => code::IO_FAILURE,
            Kind::Decoding => code::DECODING_FAILURE,
            Kind::Config => code::INVALID_CONFIG,
            Kind::TryAgainLater => code::TRY_AGAIN_LATER,
            Kind::NotAvailable => code::NOT_AVAILABLE,
            Kind::LimitedConnectivity => code::LIMITED_CONNECTIVITY,
            // Code 0 would read as success to some runtimes: an error is never 0.
            Kind::Delegated(0) | Kind::Internal => code::INTERNAL,
            Kind::Delegated(code) => code,
        }
    }

    /// The kind a CNI code stands for; a code the specification does not define is kept as
    /// the delegated plugin's own.
    pub fn from_cni_code(code: u32) -> Kind {
        [
            Kind::IncompatibleVersion,
            Kind::UnsupportedField,
            Kind::UnknownContainer,
            Kind::Environment,
            Kind::Io,
            Kind::Decoding,
            Kind::Config,
            Kind::TryAgainLater,
            Kind::NotAvailable,
            Kind::LimitedConnectivity,
            Kind::Internal,
        ]
        .into_iter()
        .find(|kind| kind.cni_code() == code)
        .unwrap_or(Kind::Delegated(code))
    }
}

impl Error {
    /// The error another plugin (IPAM) reported, as this plugin reports it. Its code is kept
    /// when it is a valid CNI error code (1 to 2^32-1); anything else (0, negative, too large,
    /// not a number, missing) becomes 999, and the original goes into `details`, so that an
    /// error never reaches the runtime with code 0.
    pub fn foreign(
        reported_code: Option<&serde_json::Value>,
        msg: impl Into<String>,
        details: &str,
    ) -> Self {
        let code = reported_code
            .and_then(serde_json::Value::as_u64)
            .and_then(|c| u32::try_from(c).ok())
            .filter(|c| *c != 0);
        let details = match (code, reported_code) {
            (Some(_), _) | (None, None) => details.to_owned(),
            (None, Some(original)) => {
                let note =
                    format!("the plugin reported code {original}, which is no CNI error code");
                if details.is_empty() {
                    note
                } else {
                    format!("{details} ({note})")
                }
            }
        };
        let kind = code.map_or(Kind::Internal, Kind::from_cni_code);
        Error::new(kind, msg).with_details(details)
    }

    /// The CNI code this error is reported with.
    pub fn cni_code(&self) -> u32 {
        self.kind.cni_code()
    }

    /// The JSON object printed on stdout.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        let mut value = json!({
            "cniVersion": cni_version,
            "code": self.cni_code(),
            "msg": self.msg,
        });
        if !self.details.is_empty() {
            value["details"] = json!(self.details);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_code_is_kept_only_when_it_is_a_cni_error_code() {
        let err = Error::foreign(Some(&json!(11)), "busy", "pool");
        assert_eq!(
            (err.kind, err.details.as_str()),
            (Kind::TryAgainLater, "pool")
        );
        let err = Error::foreign(Some(&json!(120)), "exhausted", "pool");
        assert_eq!((err.cni_code(), err.kind), (120, Kind::Delegated(120)));
        for bad in [
            json!(1099511627776u64),
            json!(0),
            json!(-1),
            json!("5"),
            json!(1.5),
        ] {
            let err = Error::foreign(Some(&bad), "failed", "pool");
            assert_eq!(err.cni_code(), code::INTERNAL, "{bad}");
            assert!(err.details.contains("pool"), "{}", err.details);
            assert!(err.details.contains(&bad.to_string()), "{}", err.details);
        }
        let err = Error::foreign(None, "failed", "");
        assert_eq!((err.cni_code(), err.details.as_str()), (code::INTERNAL, ""));
        assert_eq!(
            Error::new(Kind::Delegated(0), "x").to_json("1.0.0")["code"],
            json!(999)
        );
    }

    #[test]
    fn every_kind_has_its_own_code_and_comes_back_from_it() {
        for code in [1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 999, 120] {
            assert_eq!(Kind::from_cni_code(code).cni_code(), code);
        }
    }
}
