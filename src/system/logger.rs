//! Logging: never on stdout (stdout carries the CNI result). Warnings and errors go to stderr,
//! which runtimes record; with `logFile`, every line at `logLevel` goes there too, tagged with
//! the call it belongs to, so a node's log tells which pod each line is about.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use log::{LevelFilter, Log, Metadata, Record};

struct Logger {
    tag: String,
    /// Warn for the CNI plugin (stderr is the runtime's error channel); info for the
    /// operator commands, whose stderr is their log.
    stderr_level: LevelFilter,
    /// Set once the configuration (which names the file) has been read.
    file: OnceLock<(Mutex<File>, LevelFilter)>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.stderr_level
            || self
                .file
                .get()
                .is_some_and(|(_, level)| metadata.level() <= *level)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "macvlan-host[{}] {} {}: {}\n",
            std::process::id(),
            self.tag,
            record.level(),
            record.args()
        );
        if record.level() <= self.stderr_level {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        if let Some((file, level)) = self.file.get() {
            if record.level() <= *level {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| format!("{}.{:03}", d.as_secs(), d.subsec_millis()))
                    .unwrap_or_default();
                if let Ok(mut file) = file.lock() {
                    let _ = file.write_all(format!("{stamp} {line}").as_bytes());
                }
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the stderr logger, first thing in the process. `tag` names the call
/// ("ADD abc123 eth0").
pub fn init(tag: String) {
    init_with_stderr_level(tag, LevelFilter::Warn);
}

/// Installs the logger with every line down to `level` on stderr (operator commands).
pub fn init_with_stderr_level(tag: String, level: LevelFilter) {
    let logger = LOGGER.get_or_init(|| Logger {
        tag,
        stderr_level: level,
        file: OnceLock::new(),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level.max(LevelFilter::Warn));
    }
}

/// Adds the configuration's `logFile` at `level`. A file that cannot be used is reported on
/// stderr and otherwise ignored: logging must never make a call fail, nor block it.
pub fn log_to_file(path: &Path, level: LevelFilter) {
    let Some(logger) = LOGGER.get() else { return };
    match open_log_file(path) {
        Ok(file) => {
            if logger.file.set((Mutex::new(file), level)).is_ok() {
                log::set_max_level(level.max(logger.stderr_level));
            }
        }
        Err(why) => log::warn!("ignoring logFile {}: {why}", path.display()),
    }
}

/// Opens a log file that can take lines without blocking and without mixing into the CNI
/// result: a regular file, and not the one stdout (or stdin) is. `/dev/stdout` or a FIFO
/// without a reader is refused.
fn open_log_file(path: &Path) -> Result<File, String> {
    // O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of waiting for one.
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let identity = (meta.dev(), meta.ino());
    for (fd, name) in [(1, "stdout"), (0, "stdin")] {
        // SAFETY: the descriptor is only passed to fstat, which answers EBADF if it is closed;
        // nothing keeps or closes it.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        if nix::sys::stat::fstat(fd).is_ok_and(|st| (st.st_dev, st.st_ino) == identity) {
            return Err(format!(
                "it is the plugin's {name}, which carries the CNI result"
            ));
        }
    }
    Ok(file)
}
