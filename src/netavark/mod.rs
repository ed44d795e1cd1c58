//! The netavark plugin front end: podman 5 and later run `macvlan-host create | setup NETNS |
//! teardown NETNS | info` from one of `netavark_plugin_dirs`, with JSON on stdin and stdout
//! (containers/netavark `plugin-API.md`). Errors are `{"error": "..."}` and exit status 1.
//!
//! The binary is this front end when `CNI_COMMAND` is unset and its first argument is one of
//! `VERBS` (a CNI runtime always sets `CNI_COMMAND`; no operator command has these names,
//! which `tests/netavark_protocol.rs` keeps true). Each verb is a short list of steps; the
//! host-side work goes through `host_side.rs` alone.

mod attachment;
mod create;
mod host_side;
mod network;
mod setup;
mod teardown;
pub mod types;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::{catch_panics, Error, Result};
use crate::system::logger;
use types::{Info, API_VERSION};

pub use network::DEFAULT_STATE_DIR;

/// `reconcile`: in a state directory the plugin marked as podman's, releases the attachments
/// whose namespace podman has removed (a setup or teardown killed midway); returns their keys.
/// Nothing in any other directory.
pub fn release_abandoned_in(state_dir: &std::path::Path) -> Vec<String> {
    if state_dir.join(host_side::PODMAN_MARKER).is_file() {
        host_side::release_abandoned(state_dir)
    } else {
        Vec::new()
    }
}

/// The plugin API's sub-commands.
pub const VERBS: [&str; 4] = ["create", "setup", "teardown", "info"];

/// True when `first_argument` makes this call a netavark plugin call.
pub fn is_verb(first_argument: &str) -> bool {
    VERBS.contains(&first_argument)
}

/// Runs one plugin call and prints its answer: the verb's JSON, nothing (teardown), or
/// `{"error": ...}` with exit status 1.
pub fn main(verb: &str, args: &[String]) -> ExitCode {
    logger::init(format!("netavark {verb} {}", args.join(" ")));
    let outcome = catch_panics(|| run(verb, args));
    let mut stdout = std::io::stdout().lock();
    match outcome {
        Ok(Some(answer)) => {
            let _ = writeln!(stdout, "{answer}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(err) => {
            log::warn!("{err}");
            let _ = writeln!(stdout, "{}", json!({ "error": err.to_string() }));
            ExitCode::FAILURE
        }
    }
}

fn run(verb: &str, args: &[String]) -> Result<Option<Value>> {
    match verb {
        "info" => Ok(Some(to_json(&info()))),
        "create" => create::create(read_stdin()?).map(|n| Some(to_json(&n))),
        "setup" => setup::setup(&netns_argument(verb, args)?, read_stdin()?)
            .map(|status| Some(to_json(&status))),
        "teardown" => {
            teardown::teardown(&netns_argument(verb, args)?, read_stdin()?).map(|()| None)
        }
        other => Err(Error::internal(format!(
            "{other} is no netavark plugin verb"
        ))),
    }
}

fn info() -> Info {
    Info {
        version: env!("CARGO_PKG_VERSION"),
        api_version: API_VERSION,
        description: "macvlan with host access: the node reaches its containers",
    }
}

fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// `setup` and `teardown` name the container's namespace as their one argument.
fn netns_argument(verb: &str, args: &[String]) -> Result<PathBuf> {
    match args {
        [path] if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(Error::config(format!(
            "{verb} takes one argument, the path of the container's network namespace"
        ))),
    }
}

/// The request on stdin, decoded; a person at a terminal is told what the plugin expects
/// instead of being left waiting for input.
fn read_stdin<T: DeserializeOwned>() -> Result<T> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(Error::config(
            "this is a netavark plugin verb: netavark and podman run it with JSON on stdin",
        ));
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::internal(format!("reading stdin: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::config(format!(
            "the request on stdin is not what netavark sends: {e}"
        ))
    })
}
