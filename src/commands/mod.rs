//! Operator commands: what a person, a DaemonSet or a systemd unit runs (`macvlan-host
//! install ...`), as opposed to the CNI verbs a runtime runs through `CNI_COMMAND`.

pub mod conflist;
pub mod install;

use std::process::ExitCode;

/// Runs the command named `name` with `args`; `None` when there is no such command.
pub fn run(name: &str, args: &[String]) -> Option<ExitCode> {
    match name {
        "install" => Some(install::main(args)),
        _ => None,
    }
}
