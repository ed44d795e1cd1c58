//! The command line of `reconcile` and `diagnose`: repeated `--state-dir DIR` and a few flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{could_not_run, Exit};

/// Where the plugin keeps its records unless a network configures `stateDir`.
pub use crate::protocol::config::DEFAULT_STATE_DIR;

#[derive(Debug, PartialEq)]
pub struct Options {
    /// Without any `--state-dir`: the default state directory.
    pub state_dirs: Vec<PathBuf>,
    pub help: bool,
    /// `reconcile --watch`.
    pub watch: bool,
    /// `reconcile --watch --interval SECONDS`: the periodic full pass.
    pub interval: Duration,
    /// `diagnose --json`.
    pub json: bool,
    /// `reconcile --watch --metrics-address HOST:PORT`: serve /metrics, /healthz, /readyz.
    pub metrics_address: Option<SocketAddr>,
    /// `reconcile --watch` releases attachments whose pod is provably gone, unless
    /// `--keep-stale`.
    pub release_stale: bool,
}

/// The flags a command accepts besides `--state-dir` and `--help`.
#[derive(Clone, Copy)]
pub struct Accepts {
    pub watch: bool,
    pub json: bool,
}

/// The options of `command`, or the exit of a call that ends here: `--help` printed `help`,
/// or the arguments were refused (the message names the argument).
pub fn parse_or_exit(
    command: &str,
    args: &[String],
    accepts: Accepts,
    help: &str,
) -> Result<Options, ExitCode> {
    let options = parse(args, accepts).map_err(|e| could_not_run(command, e))?;
    if options.help {
        print!("{help}");
        return Err(Exit::Clean.into());
    }
    Ok(options)
}

/// Parses `args` (what follows the sub-command). The error names the offending argument.
pub fn parse(args: &[String], accepts: Accepts) -> Result<Options, String> {
    let mut options = Options {
        state_dirs: Vec::new(),
        help: false,
        watch: false,
        interval: Duration::from_secs(30),
        json: false,
        metrics_address: None,
        release_stale: true,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| iter.next().cloned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "--help" | "-h" => options.help = true,
            "--state-dir" => options.state_dirs.push(value("--state-dir")?.into()),
            "--watch" if accepts.watch => options.watch = true,
            "--interval" if accepts.watch => {
                options.interval = interval(&value("--interval")?)?;
            }
            "--metrics-address" if accepts.watch => {
                let text = value("--metrics-address")?;
                let address = text.parse().map_err(|_| {
                    format!("--metrics-address {text:?}: not HOST:PORT (an IP address and a port, e.g. 0.0.0.0:9447)")
                })?;
                options.metrics_address = Some(address);
            }
            "--keep-stale" if accepts.watch => options.release_stale = false,
            "--json" if accepts.json => options.json = true,
            _ => return Err(format!("unknown argument {arg:?} (see --help)")),
        }
    }
    if !options.watch && (options.metrics_address.is_some() || !options.release_stale) {
        return Err("--metrics-address and --keep-stale need --watch".into());
    }
    if options.state_dirs.is_empty() {
        options.state_dirs.push(DEFAULT_STATE_DIR.into());
    }
    Ok(options)
}

/// The shortest periodic pass: a shorter one would keep a CPU busy on a node with many pods.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest: one week. `Duration::from_secs_f64` panics beyond `u64::MAX` seconds, and far
/// smaller values overflow `Instant + interval`; a week is longer than anyone needs a safety
/// net to wait.
const MAX_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

/// `--interval SECONDS`, a decimal number within [`MIN_INTERVAL`, `MAX_INTERVAL`].
fn interval(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0)
        .ok_or_else(|| format!("--interval {text:?}: not a positive number of seconds"))?;
    // Compared as seconds before any conversion: the conversion itself is what panics.
    if seconds < MIN_INTERVAL.as_secs_f64() || seconds > MAX_INTERVAL.as_secs_f64() {
        return Err(format!(
            "--interval {text:?}: out of range ({} to {} seconds)",
            MIN_INTERVAL.as_secs_f64(),
            MAX_INTERVAL.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const RECONCILE: Accepts = Accepts {
        watch: true,
        json: false,
    };

    #[test]
    fn state_dirs_repeat_and_default() {
        let o = parse(&args(&[]), RECONCILE).unwrap();
        assert_eq!(o.state_dirs, [PathBuf::from(DEFAULT_STATE_DIR)]);
        let o = parse(
            &args(&["--state-dir", "/a", "--state-dir=/b", "--watch"]),
            RECONCILE,
        )
        .unwrap();
        assert_eq!(o.state_dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(o.watch);
        let o = parse(&args(&["--watch", "--interval", "0.5"]), RECONCILE).unwrap();
        assert_eq!(o.interval, Duration::from_millis(500));
    }

    #[test]
    fn errors_name_the_argument() {
        let diagnose = Accepts {
            watch: false,
            json: true,
        };
        for (bad, named) in [
            (&["--state-dir"][..], "--state-dir"),
            (&["--state-dir="][..], "--state-dir"),
            (&["--bogus"][..], "--bogus"),
            (&["--watch"][..], "--watch"),
            (&["--interval", "0"][..], "--interval"),
            (&["--interval", "1e20"][..], "out of range"),
            (&["--interval", "604801"][..], "out of range"),
            (&["--interval", "0.001"][..], "out of range"),
        ] {
            let accepts = if bad[0] == "--watch" {
                diagnose
            } else {
                RECONCILE
            };
            let err = parse(&args(bad), accepts).unwrap_err();
            assert!(err.contains(named), "{bad:?}: {err}");
        }
        assert!(parse(&args(&["--json"]), diagnose).unwrap().json);
        for (bad, named) in [
            (
                &["--watch", "--metrics-address", "localhost"][..],
                "--metrics-address",
            ),
            (&["--metrics-address", "127.0.0.1:9447"][..], "--watch"),
            (&["--keep-stale"][..], "--watch"),
        ] {
            let err = parse(&args(bad), RECONCILE).unwrap_err();
            assert!(err.contains(named), "{bad:?}: {err}");
        }
        let o = parse(
            &args(&["--watch", "--metrics-address=[::1]:9447", "--keep-stale"]),
            RECONCILE,
        )
        .unwrap();
        assert_eq!(o.metrics_address, Some("[::1]:9447".parse().unwrap()));
        assert!(!o.release_stale);
    }
}
