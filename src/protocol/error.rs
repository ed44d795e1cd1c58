//! The CNI error: what a plugin prints on stdout when a verb fails.
//!
//! Codes are those of the CNI specification; 999 is the generic failure that the reference
//! plugins use for anything without a more precise code.

use std::fmt;

use serde_json::json;

use crate::system::SysError;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
    /// The errno of the system call or netlink request that failed, kept from `SysError`
    /// so that a caller decides on it (never on the message); not part of the wire form.
    pub errno: Option<i32>,
}

pub type CniResult<T> = Result<T, CniError>;

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
            errno: None,
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

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
        CniError::new(code.unwrap_or(code::INTERNAL), msg).with_details(details)
    }

    /// A missing or invalid CNI_* environment variable.
    pub fn env(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_ENVIRONMENT, msg)
    }

    /// An invalid network configuration; the message names the key and the value.
    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_CONFIG, msg)
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(code::INTERNAL, msg)
    }

    /// Prefixes the message with what the plugin was doing, keeping the code.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.msg = format!("{what}: {}", self.msg);
        self
    }

    /// The JSON object printed on stdout.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        let mut value = json!({
            "cniVersion": cni_version,
            // Code 0 would read as success to some runtimes: an error is never 0.
            "code": if self.code == 0 { code::INTERNAL } else { self.code },
            "msg": self.msg,
        });
        if !self.details.is_empty() {
            value["details"] = json!(self.details);
        }
        value
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.msg, self.code)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

impl From<SysError> for CniError {
    fn from(err: SysError) -> Self {
        let code = match &err {
            SysError::Io { .. } => code::IO_FAILURE,
            _ => code::INTERNAL,
        };
        CniError {
            errno: err.errno(),
            ..CniError::new(code, err.to_string())
        }
    }
}

/// Runs `f`, turning a panic into a code-999 error: whatever happens, the runtime gets a CNI
/// error on stdout, never a bare backtrace. The default hook's backtrace is replaced by a log
/// line (stderr, and the log file when one is configured).
pub fn catch_panics<T>(f: impl FnOnce() -> CniResult<T>) -> CniResult<T> {
    std::panic::set_hook(Box::new(|info| log::error!("internal error: {info}")));
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(CniError::internal(format!(
            "internal error (a bug in macvlan-host): {what}"
        )))
    })
}

/// Adds context to any error that converts into a `CniError`.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> CniResult<T>;
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> CniResult<T>;
}

impl<T, E: Into<CniError>> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> CniResult<T> {
        self.map_err(|e| e.into().context(what))
    }

    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> CniResult<T> {
        self.map_err(|e| e.into().context(what()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_code_is_kept_only_when_it_is_a_cni_error_code() {
        let err = CniError::foreign(Some(&json!(11)), "busy", "pool");
        assert_eq!((err.code, err.details.as_str()), (11, "pool"));
        for bad in [
            json!(1099511627776u64),
            json!(0),
            json!(-1),
            json!("5"),
            json!(1.5),
        ] {
            let err = CniError::foreign(Some(&bad), "failed", "pool");
            assert_eq!(err.code, code::INTERNAL, "{bad}");
            assert!(err.details.contains("pool"), "{}", err.details);
            assert!(err.details.contains(&bad.to_string()), "{}", err.details);
        }
        let err = CniError::foreign(None, "failed", "");
        assert_eq!((err.code, err.details.as_str()), (code::INTERNAL, ""));
        assert_eq!(CniError::new(0, "x").to_json("1.0.0")["code"], json!(999));
    }

    #[test]
    fn a_panic_becomes_an_internal_cni_error() {
        let err = catch_panics(|| -> CniResult<()> { panic!("boom at {}", 42) }).unwrap_err();
        assert_eq!(err.code, code::INTERNAL);
        assert!(err.msg.contains("boom at 42"), "{}", err.msg);
        let err = catch_panics(|| -> CniResult<()> {
            let handle = std::thread::spawn(|| panic!("in a thread"));
            std::panic::resume_unwind(handle.join().unwrap_err())
        })
        .unwrap_err();
        assert!(err.msg.contains("in a thread"), "{}", err.msg);
        assert_eq!(catch_panics(|| Ok(7)), Ok(7));
    }
}
