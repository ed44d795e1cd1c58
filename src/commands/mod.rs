//! Operator commands: what a person, a systemd unit or a DaemonSet runs (`macvlan-host
//! install ...`), as opposed to the CNI verbs a runtime runs through `CNI_COMMAND`.
//!
//! `reconcile` and `diagnose` exit 0 when all is well, 1 when they found (and, for
//! `reconcile`, repaired) drift, 2 with a message on stderr when they could not run.
//! `install` exits 0 or 1 (and with `--watch` becomes `reconcile --watch`).

mod args;
mod attachment;
pub mod conflist;
mod diagnose;
mod host_managers;
pub mod install;
mod pass;
mod reconcile;
mod stale;
mod sysctls;
mod telemetry;
mod watch;

use std::process::ExitCode;

/// Runs sub-command `name` with the arguments after it; None when `name` is no sub-command.
pub fn run(name: &str, args: &[String]) -> Option<ExitCode> {
    match name {
        "install" => Some(install::main(args)),
        "reconcile" => Some(reconcile::main(args)),
        "diagnose" => Some(diagnose::main(args)),
        "docker-driver" => Some(crate::docker::main(args)),
        _ => None,
    }
}

/// The exit statuses every command shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Nothing had drifted (reconcile), healthy (diagnose).
    Clean = 0,
    /// Something had drifted.
    Drift = 1,
    /// The command could not run; the reason is on stderr.
    Failed = 2,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// Reports why a command could not run, and exits with 2.
fn could_not_run(command: &str, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("macvlan-host {command}: {message}");
    Exit::Failed.into()
}
