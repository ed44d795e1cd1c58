//! The error type of the system layer. Every variant carries the context of the failed
//! operation (which interface, which namespace, which address), so that the message a runtime
//! shows is enough to find the problem on the node.

use std::io;

pub type SysResult<T> = Result<T, SysError>;

#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// A netlink request was answered with an error. `errno` is positive (e.g. `libc::EEXIST`)
    /// when the kernel gave one.
    #[error("{context}: {message}")]
    Netlink {
        context: String,
        errno: Option<i32>,
        message: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl SysError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        SysError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn other(message: impl Into<String>) -> Self {
        SysError::Other(message.into())
    }

    /// The errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SysError::Netlink { errno, .. } => *errno,
            SysError::Io { source, .. } => source.raw_os_error(),
            SysError::Other(_) => None,
        }
    }

    /// True when the object the request named does not exist (a deleted link, route,
    /// address or neighbour entry). Deletions treat this as success, so that DEL is idempotent.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(nix::libc::ENODEV)
                | Some(nix::libc::ENOENT)
                | Some(nix::libc::ESRCH)
                | Some(nix::libc::EADDRNOTAVAIL)
        )
    }

    /// True when the object already exists.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(nix::libc::EEXIST)
    }
}
