//! A network namespace as an owned file descriptor.
//!
//! Work inside another namespace never switches the calling thread: `Netns::run` starts a
//! short-lived thread, enters the namespace there and returns the closure's value. A thread
//! that has entered a namespace is never reused, so nothing else (the tokio runtime, the
//! logger) can accidentally run in the wrong namespace.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use super::{SysError, SysResult};

/// Why a namespace path could not be opened. DEL tells these apart: every one of them means
/// "nothing left to clean inside the pod", while ADD reports them to the runtime.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the namespace path is empty")]
    Empty,
    #[error("network namespace {0} does not exist")]
    Missing(PathBuf),
    #[error("{0} is not a network namespace")]
    NotANamespace(PathBuf),
    #[error("cannot open network namespace {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub struct Netns {
    file: File,
    path: PathBuf,
}

impl Netns {
    /// The namespace of the calling thread (for the plugin: the node's namespace).
    pub fn current() -> SysResult<Netns> {
        todo!("open /proc/thread-self/ns/net")
    }

    /// Opens the namespace at `path` (a bind mount such as /run/netns/x, or /proc/PID/ns/net).
    pub fn open(path: &Path) -> Result<Netns, OpenError> {
        todo!("{path:?}")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when both handles refer to the same namespace (same device and inode).
    pub fn is_same(&self, other: &Netns) -> SysResult<bool> {
        todo!("{:?}", other.path)
    }

    /// Runs `f` on a fresh thread that has entered this namespace, and returns its value.
    pub fn run<T, F>(&self, f: F) -> SysResult<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let _ = f;
        Err(SysError::other("todo"))
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
