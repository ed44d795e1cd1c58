//! The project's error: what went wrong, with its kind, its errno and its details kept until a
//! front end maps it to its own protocol (the CNI front end to a CNI code and JSON document,
//! netavark to `{"error": ...}`, Docker to `{"Err": ...}`, the operator commands to a line on
//! stderr). The engine and the system layer never choose a wire code: they say what kind of
//! failure it was.

mod list;

use std::fmt;

pub use list::ErrorList;

use crate::system::SysError;

/// What kind of failure: the distinctions a caller acts on. Each front end maps a kind to its
/// own protocol (`protocol::error` for CNI's codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The caller speaks a version of its protocol this build does not.
    IncompatibleVersion,
    /// A field of the request this build does not support.
    UnsupportedField,
    /// The pod (its namespace) is gone.
    UnknownContainer,
    /// What the runtime handed over to name the pod (a namespace path, a container id, an
    /// interface name) is missing or unusable.
    Environment,
    /// A system call or a file failed.
    Io,
    /// The request could not be decoded.
    Decoding,
    /// The configuration (or a network's options) is invalid; the message names the field.
    Config,
    /// Something is busy: the same call later may succeed.
    TryAgainLater,
    /// The network is not ready for new attachments (STATUS).
    NotAvailable,
    /// The network is ready, with less connectivity than configured (STATUS).
    LimitedConnectivity,
    /// Anything else: an unexpected kernel answer, a broken invariant.
    Internal,
    /// A delegated plugin's failure (IPAM), with the code it reported, kept as it was.
    Delegated(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    pub msg: String,
    pub details: String,
    /// The errno of the system call or netlink request that failed, kept from `SysError`
    /// so that a caller decides on it (never on the message).
    pub errno: Option<i32>,
}

/// The result of anything that fails with an `Error` (the second parameter is for the rare
/// function that fails otherwise, so that importing this alias never hides `std`'s).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            msg: msg.into(),
            details: String::new(),
            errno: None,
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// What the runtime handed over to name the pod is missing or invalid.
    pub fn env(msg: impl Into<String>) -> Self {
        Self::new(Kind::Environment, msg)
    }

    /// An invalid configuration; the message names the key and the value.
    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(Kind::Config, msg)
    }

    pub fn io(msg: impl Into<String>) -> Self {
        Self::new(Kind::Io, msg)
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(Kind::Internal, msg)
    }

    /// Prefixes the message with what was being done, keeping the kind and the errno.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.msg = format!("{what}: {}", self.msg);
        self
    }
}

/// The message, with the details after it when there are any: the one line a front end
/// without a details field (netavark, Docker, the operator commands) reports.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<SysError> for Error {
    fn from(err: SysError) -> Self {
        let kind = match &err {
            SysError::Io { .. } => Kind::Io,
            _ => Kind::Internal,
        };
        Error {
            errno: err.errno(),
            ..Error::new(kind, err.to_string())
        }
    }
}

/// Runs `f`, turning a panic into an internal error: whatever happens, the caller gets an
/// error in its protocol, never a bare backtrace. The default hook's backtrace is replaced by
/// a log line (stderr, and the log file when one is configured).
pub fn catch_panics<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::set_hook(Box::new(|info| log::error!("internal error: {info}")));
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::internal(format!(
            "internal error (a bug in macvlan-host): {what}"
        )))
    })
}

/// Adds context to any error that converts into an `Error`.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }

    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into().context(what()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let err = catch_panics(|| -> Result<()> { panic!("boom at {}", 42) }).unwrap_err();
        assert_eq!(err.kind, Kind::Internal);
        assert!(err.msg.contains("boom at 42"), "{}", err.msg);
        let err = catch_panics(|| -> Result<()> {
            let handle = std::thread::spawn(|| panic!("in a thread"));
            std::panic::resume_unwind(handle.join().unwrap_err())
        })
        .unwrap_err();
        assert!(err.msg.contains("in a thread"), "{}", err.msg);
        assert_eq!(catch_panics(|| Ok(7)), Ok(7));
    }

    #[test]
    fn the_line_a_front_end_reports_carries_the_details() {
        let plain = Error::config("mtu 0 is out of range");
        assert_eq!(plain.to_string(), "mtu 0 is out of range");
        let detailed = Error::io("removing shim mvh-eth0").with_details("busy");
        assert_eq!(detailed.to_string(), "removing shim mvh-eth0: busy");
    }

    #[test]
    fn a_system_error_keeps_its_errno_and_context_keeps_the_kind() {
        let sys = SysError::io("removing mvh-eth0", std::io::Error::from_raw_os_error(16));
        let err = Err::<(), _>(sys).context("releasing the shim").unwrap_err();
        assert_eq!((err.kind, err.errno), (Kind::Io, Some(16)));
        assert!(
            err.msg.starts_with("releasing the shim: removing mvh-eth0"),
            "{}",
            err.msg
        );
    }
}
