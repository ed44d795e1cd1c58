//! Logging: never on stdout (stdout carries the CNI result). Warnings and errors go to stderr,
//! which runtimes record; with `logFile`, every line at `logLevel` goes there too, tagged with
//! the call it belongs to, so a node's log tells which pod each line is about.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Logger {
    tag: String,
    file: Option<Mutex<File>>,
    file_level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= Level::Warn
            || (self.file.is_some() && metadata.level() <= self.file_level)
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
        if record.level() <= Level::Warn {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        if let (Some(file), true) = (&self.file, record.level() <= self.file_level) {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| format!("{}.{:03}", d.as_secs(), d.subsec_millis()))
                .unwrap_or_default();
            if let Ok(mut file) = file.lock() {
                let _ = file.write_all(format!("{stamp} {line}").as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger once per process. `tag` names the call ("ADD abc123 eth0").
pub fn init(tag: String, file: Option<&Path>, file_level: LevelFilter) {
    let file =
        file.and_then(
            |path| match OpenOptions::new().create(true).append(true).open(path) {
                Ok(f) => Some(Mutex::new(f)),
                Err(e) => {
                    eprintln!("macvlan-host: cannot open logFile {}: {e}", path.display());
                    None
                }
            },
        );
    let max = if file.is_some() {
        file_level.max(LevelFilter::Warn)
    } else {
        LevelFilter::Warn
    };
    if log::set_boxed_logger(Box::new(Logger {
        tag,
        file,
        file_level,
    }))
    .is_ok()
    {
        log::set_max_level(max);
    }
}
