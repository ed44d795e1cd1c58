//! `macvlan-host install`: the entry point of the DaemonSet's container. It puts this very
//! binary into the host's CNI bin directory and the mounted conflist into the host's CNI conf
//! directory, both by atomic rename, and with `--watch` becomes `macvlan-host reconcile
//! --watch` (same process, so the container's PID 1 stays). `--uninstall` takes both away.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::conflist::{self, OUR_TYPE};
use crate::system::durable_file::{self, Replaced};

const USAGE: &str = "\
usage: macvlan-host install --bin-dir DIR --conf-dir DIR --conflist FILE
                            [--watch [--state-dir DIR]... [--interval SECONDS]
                             [--metrics-address HOST:PORT] [--keep-stale]]
       macvlan-host install --bin-dir DIR --conf-dir DIR --conflist FILE --uninstall

Installs this binary as DIR/macvlan-host in the CNI bin directory and FILE (a conflist, e.g.
mounted from a ConfigMap) into the CNI conf directory under its own name, each by atomic rename
and only when it changed. The conflist is checked with the plugin's own rules first: a bad one
is refused, naming the key, and the installed one stays.

  --bin-dir DIR     the host's CNI plugin directory (/opt/cni/bin; /usr/lib/cni on Debian)
  --conf-dir DIR    the host's CNI configuration directory (/etc/cni/net.d)
  --conflist FILE   the conflist to install; its file name must end in .conflist
  --watch           then run `macvlan-host reconcile --watch` in this same process
  --state-dir DIR, --interval SECONDS, --metrics-address HOST:PORT, --keep-stale
                    passed on to reconcile --watch (only with --watch; see
                    `macvlan-host reconcile --help`)
  --uninstall       remove the binary and the conflist instead (the binary stays while
                    another conflist in --conf-dir still uses it)

Exits 0 when installed (or uninstalled), non-zero with a message on stderr otherwise.
";

/// The command line.
#[derive(Debug, Default, PartialEq)]
struct Options {
    bin_dir: PathBuf,
    conf_dir: PathBuf,
    conflist: PathBuf,
    watch: bool,
    /// The arguments passed on to `reconcile --watch`, as given.
    watch_args: Vec<String>,
    uninstall: bool,
}

/// Runs `install ARGS`.
pub fn main(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    eprintln!("macvlan-host {} install", env!("CARGO_PKG_VERSION"));
    let outcome = parse(args).and_then(|options| {
        if options.uninstall {
            uninstall(&options)
        } else {
            install(&options)?;
            if options.watch {
                // Only returns when the exec failed.
                return Err(become_reconcile(&options.watch_args));
            }
            Ok(())
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("macvlan-host install: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An installer failure: what it was doing and why it failed.
#[derive(Debug)]
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(msg.into()))
}

fn parse(args: &[String]) -> Result<Options, Failure> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| match args.next() {
            Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
            _ => fail(format!("{flag} needs a value\n{USAGE}")),
        };
        match arg.as_str() {
            "--state-dir" | "--interval" | "--metrics-address" => {
                let v = value(arg)?;
                options.watch_args.push(arg.clone());
                options.watch_args.push(v.to_string_lossy().into_owned());
            }
            "--keep-stale" => options.watch_args.push(arg.clone()),
            "--bin-dir" => options.bin_dir = value(arg)?,
            "--conf-dir" => options.conf_dir = value(arg)?,
            "--conflist" => options.conflist = value(arg)?,
            "--watch" => options.watch = true,
            "--uninstall" => options.uninstall = true,
            other => return fail(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    for (flag, value) in [
        ("--bin-dir", &options.bin_dir),
        ("--conf-dir", &options.conf_dir),
        ("--conflist", &options.conflist),
    ] {
        if value.as_os_str().is_empty() {
            return fail(format!("{flag} is required\n{USAGE}"));
        }
    }
    if let (Some(arg), false) = (options.watch_args.first(), options.watch) {
        return fail(format!("{arg} is for reconcile: it needs --watch"));
    }
    if options.watch && options.uninstall {
        return fail("--watch and --uninstall exclude each other");
    }
    Ok(options)
}

/// The steps of an install: check the directories, install the binary, check and install the
/// conflist. The binary goes first, so a runtime never finds a conflist without its plugin.
fn install(options: &Options) -> Result<(), Failure> {
    existing_dir("--bin-dir", &options.bin_dir)?;
    existing_dir("--conf-dir", &options.conf_dir)?;
    let conflist_name = conflist_name(&options.conflist)?;
    let conflist = read_valid_conflist(&options.conflist)?;

    let binary = fs::read("/proc/self/exe")
        .or_else(|_| fs::read(std::env::current_exe()?))
        .map_err(|e| Failure(format!("cannot read this program's own binary: {e}")))?;
    let bin_path = options.bin_dir.join(OUR_TYPE);
    report(&bin_path, durable_file::replace(&bin_path, &binary, 0o755))?;

    let conf_path = options.conf_dir.join(conflist_name);
    report(
        &conf_path,
        durable_file::replace(&conf_path, &conflist, 0o644),
    )
}

/// The steps of an uninstall: remove the conflist, then the binary unless another conflist
/// still names it (its pods' DEL needs it).
fn uninstall(options: &Options) -> Result<(), Failure> {
    let conf_path = options.conf_dir.join(conflist_name(&options.conflist)?);
    removed(&conf_path, durable_file::remove(&conf_path))?;
    let bin_path = options.bin_dir.join(OUR_TYPE);
    let users = other_users(&options.conf_dir);
    if !users.is_empty() {
        eprintln!(
            "macvlan-host install: kept {}: still used by {}",
            bin_path.display(),
            users.join(", ")
        );
        return Ok(());
    }
    removed(&bin_path, durable_file::remove(&bin_path))
}

/// The conflist's file name in the conf directory: the mounted file's own name (the ConfigMap
/// key), which decides its order among the runtime's conflists.
fn conflist_name(path: &Path) -> Result<OsString, Failure> {
    match path.file_name() {
        Some(name) if name.to_string_lossy().ends_with(".conflist") => Ok(name.to_owned()),
        _ => fail(format!(
            "--conflist {}: the file name must end in .conflist (runtimes load a conflist by its \
             extension; e.g. 10-macvlan-host.conflist)",
            path.display()
        )),
    }
}

fn read_valid_conflist(path: &Path) -> Result<Vec<u8>, Failure> {
    let bytes = fs::read(path)
        .map_err(|e| Failure(format!("cannot read --conflist {}: {e}", path.display())))?;
    conflist::validate(&bytes).map_err(|e| {
        Failure(format!(
            "refusing conflist {}: {e} (the installed conflist, if any, is left as it is)",
            path.display()
        ))
    })?;
    Ok(bytes)
}

fn existing_dir(flag: &str, dir: &Path) -> Result<(), Failure> {
    if dir.is_dir() {
        Ok(())
    } else {
        fail(format!(
            "{flag} {} is not a directory (is the host directory mounted?)",
            dir.display()
        ))
    }
}

fn report(path: &Path, outcome: std::io::Result<Replaced>) -> Result<(), Failure> {
    let what = match outcome {
        Ok(Replaced::Created) => "installed",
        Ok(Replaced::Updated) => "updated",
        Ok(Replaced::Unchanged) => "unchanged, skipped",
        Err(e) => return fail(format!("cannot write {}: {e}", path.display())),
    };
    eprintln!("macvlan-host install: {}: {what}", path.display());
    Ok(())
}

fn removed(path: &Path, outcome: std::io::Result<bool>) -> Result<(), Failure> {
    match outcome {
        Ok(true) => eprintln!("macvlan-host install: {}: removed", path.display()),
        Ok(false) => eprintln!("macvlan-host install: {}: not there", path.display()),
        Err(e) => return fail(format!("cannot remove {}: {e}", path.display())),
    }
    Ok(())
}

/// Other configuration files in `conf_dir` that name this plugin as a type.
fn other_users(conf_dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(conf_dir) else {
        return Vec::new();
    };
    let mut users: Vec<String> = entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            [".conf", ".conflist", ".json"]
                .iter()
                .any(|ext| name.ends_with(ext))
                && fs::read(entry.path()).is_ok_and(|bytes| names_our_type(&bytes))
        })
        .map(|entry| entry.path().display().to_string())
        .collect();
    users.sort();
    users
}

/// Whether a .conf or .conflist has an entry of our type.
fn names_our_type(bytes: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let ours = |v: &serde_json::Value| v["type"] == OUR_TYPE;
    ours(&value)
        || value["plugins"]
            .as_array()
            .is_some_and(|p| p.iter().any(ours))
}

/// Replaces this process with `macvlan-host reconcile --watch ARGS`: the same PID (the
/// container's PID 1 stays PID 1), and no dependency on reconcile's code here (reconcile
/// checks the arguments). Returns only when the exec failed.
fn become_reconcile(watch_args: &[String]) -> Failure {
    let mut command = std::process::Command::new("/proc/self/exe");
    command
        .arg0(OUR_TYPE)
        .args(["reconcile", "--watch"])
        .args(watch_args);
    eprintln!("macvlan-host install: done; running reconcile --watch");
    Failure(format!("cannot run reconcile --watch: {}", command.exec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_the_daemonset_command_line() {
        let options = parse(&args(
            "--bin-dir /b --conf-dir /c --conflist /m/10.conflist --watch --state-dir /s1 --state-dir /s2 --metrics-address 0.0.0.0:9447 --keep-stale",
        ))
        .unwrap();
        assert_eq!(
            options,
            Options {
                bin_dir: "/b".into(),
                conf_dir: "/c".into(),
                conflist: "/m/10.conflist".into(),
                watch: true,
                watch_args: args(
                    "--state-dir /s1 --state-dir /s2 --metrics-address 0.0.0.0:9447 --keep-stale"
                ),
                uninstall: false,
            }
        );
    }

    #[test]
    fn refuses_incomplete_or_contradictory_command_lines() {
        let err = |line: &str| parse(&args(line)).unwrap_err().0;
        assert!(err("--conf-dir /c --conflist /f.conflist").starts_with("--bin-dir is required"));
        assert!(
            err("--bin-dir /b --conf-dir /c --conflist").starts_with("--conflist needs a value")
        );
        assert!(err("--bin-dir /b --conf-dir /c --conflist /f --state-dir /s").contains("--watch"));
        assert!(
            err("--bin-dir /b --conf-dir /c --conflist /f --metrics-address :1")
                .contains("--watch")
        );
        assert!(
            err("--bin-dir /b --conf-dir /c --conflist /f --watch --uninstall").contains("exclude")
        );
        assert!(err("--bin-dir /b --conf-dir /c --conflist /f --force").contains("\"--force\""));
    }

    #[test]
    fn only_a_conflist_file_name_is_accepted() {
        assert_eq!(
            conflist_name(Path::new("/m/10-lan.conflist")).unwrap(),
            "10-lan.conflist"
        );
        assert!(conflist_name(Path::new("/m/lan.conf")).is_err());
        assert!(conflist_name(Path::new("/")).is_err());
    }
}
