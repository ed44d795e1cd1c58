//! Files that must be replaced whole and survive a crash: the plugin binary and the conflist
//! an installer puts into the host's CNI directories. A runtime may execute the binary or read
//! the conflist at any moment, so the new content goes to a temporary file in the same
//! directory, is flushed to disk, and replaces the old file by `rename`, which is atomic within
//! one file system: a reader sees the old file or the new one, never half of one.
//! (Attachment records in `state/` skip the fsync: they describe things that do not survive a
//! reboot either. These files must.)

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What `replace` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replaced {
    /// The file already had exactly these bytes and this mode: nothing was written.
    Unchanged,
    /// The file did not exist and was created.
    Created,
    /// The file existed with other content or mode and was replaced.
    Updated,
}

/// Makes `path` hold `bytes` with permission bits `mode`, atomically and durably; skips the
/// write when it already does.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<Replaced> {
    let existed = match holds(path, bytes, mode)? {
        Some(true) => return Ok(Replaced::Unchanged),
        Some(false) => true,
        None => false,
    };
    let tmp = temporary_path(path);
    let written = write_synced(&tmp, bytes, mode).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_parent(path)?;
    Ok(if existed {
        Replaced::Updated
    } else {
        Replaced::Created
    })
}

/// Removes `path` durably. `Ok(false)` when it was not there.
pub fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_parent(path)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the file at `path` has exactly `bytes` and permission bits `mode`; `None` when there
/// is no file.
fn holds(path: &Path, bytes: &[u8], mode: u32) -> io::Result<Option<bool>> {
    let metadata = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if metadata.permissions().mode() & 0o7777 != mode || metadata.len() != bytes.len() as u64 {
        return Ok(Some(false));
    }
    Ok(Some(fs::read(path)? == bytes))
}

/// `.NAME.tmp-PID` beside `path`: hidden from runtimes that list the directory (libcni loads
/// only `*.conf`, `*.conflist` and `*.json`; nobody executes a dot file), unique per process.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn write_synced(tmp: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(tmp)?;
    file.write_all(bytes)?;
    // The umask may have cleared bits of `mode` at creation.
    file.set_permissions(Permissions::from_mode(mode))?;
    file.sync_all()
}

/// Makes the rename itself durable: the directory entry lives in the parent directory.
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mvh-durable-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn creates_skips_identical_and_replaces() {
        let dir = scratch("cycle");
        let file = dir.join("f");
        assert_eq!(replace(&file, b"one", 0o755).unwrap(), Replaced::Created);
        assert_eq!(mode_of(&file), 0o755);
        assert_eq!(replace(&file, b"one", 0o755).unwrap(), Replaced::Unchanged);
        assert_eq!(replace(&file, b"two", 0o755).unwrap(), Replaced::Updated);
        assert_eq!(fs::read(&file).unwrap(), b"two");
        // Same bytes, other mode: rewritten with the mode asked for.
        assert_eq!(replace(&file, b"two", 0o644).unwrap(), Replaced::Updated);
        assert_eq!(mode_of(&file), 0o644);
        // No temporary file is left beside it.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
        assert!(remove(&file).unwrap());
        assert!(!remove(&file).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = scratch("fail");
        let file = dir.join("f");
        replace(&file, b"old", 0o644).unwrap();
        // A directory where the temporary file would go makes the write fail.
        fs::create_dir(temporary_path(&file)).unwrap();
        assert!(replace(&file, b"new", 0o644).is_err());
        assert_eq!(fs::read(&file).unwrap(), b"old");
        fs::remove_dir_all(&dir).unwrap();
    }
}
