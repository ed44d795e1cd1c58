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
        TempDir::new_in(&std::env::temp_dir(), label)
    }

    /// A fresh directory `<parent>/mvh-<pid>-<n>-<label>`, removed on `Drop`.
    pub fn new_in(parent: &Path, label: &str) -> TempDir {
        let path = parent.join(format!("{}-{label}", unique_name()));
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

/// Writes an executable script that a test runs at once (a fake plugin). The file is written
/// by a child process, never through a descriptor of this multi-threaded test process: a child
/// that another test thread forks at that moment would inherit such a descriptor until its
/// exec, and running the script would then fail with ETXTBSY ("Text file busy").
pub fn write_executable(path: &Path, content: &str) {
    let temp = path.with_extension("new");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"cat > "$1" && chmod 755 "$1" && mv -f "$1" "$2""#)
        .arg("sh")
        .arg(&temp)
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(content.as_bytes())
            .unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
    }
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
    assert!(status.success(), "writing {path:?}: {status}");
}
