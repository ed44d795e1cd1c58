//! Temporary directories, removed on `Drop`.

use super::netns::{cleanup_stale, unique_name};
use std::fs;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------------------------

/// A fresh directory `<tmp>/mvh-<pid>-<n>-<label>`, removed on `Drop`. For host-local's
/// `dataDir`, the plugin's `stateDir`, CNI_PATH, ...
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        cleanup_stale();
        let path = std::env::temp_dir().join(format!("{}-{label}", unique_name()));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as a string, for JSON configurations.
    pub fn str(&self) -> &str {
        self.path.to_str().expect("temporary paths are UTF-8")
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
