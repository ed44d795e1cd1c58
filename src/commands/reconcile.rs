//! `macvlan-host reconcile [--state-dir DIR]... [--watch]`: make the host side of every
//! recorded attachment what it must be now; with `--watch`, keep doing it.

use std::process::ExitCode;

use super::args::{self, Accepts};
use super::pass::{self, Hooks, Report, Scope};
use super::{could_not_run, watch, Exit};
use crate::datapaths::node::Node;
use crate::system::{legacy_lock, logger};

const HELP: &str = "\
Usage: macvlan-host reconcile [--state-dir DIR]...
                              [--watch [--interval SECONDS] [--metrics-address HOST:PORT]
                               [--keep-stale]]

Repairs the host side of every attachment recorded in the state directories (default
/run/cni/macvlan-host): the shim (MAC, hardening, up), the node's routes to each pod with the
node's current address as source, permanent neighbour entries on both sides, the pod's routes
to the node and hostRoutes, a veth pair re-created when gone. An attachment whose pod network
namespace cannot be opened is reported and left alone (DEL and GC remove dead ones), except
in a state directory of the netavark plugin, where podman removes a container's namespace:
there an attachment whose namespace is gone is released.
Run it in the node's network namespace. It holds the node lock per attachment, so it is safe
beside concurrent ADD, DEL and GC.

  --state-dir DIR   a state directory (repeat for several; the networks' \"stateDir\")
  --watch           stay running: repair after every change of the node's links, addresses,
                    routes and neighbours (and of the pods'), logs on stderr, exits 0 on
                    SIGTERM or SIGINT
  --interval SECS   with --watch: the periodic full pass (default 30; 0.01 to 604800)
  --metrics-address HOST:PORT
                    with --watch: serve Prometheus metrics (/metrics), liveness (/healthz)
                    and readiness (/readyz) over HTTP on this address (off by default)
  --keep-stale      with --watch: never release an attachment whose pod namespace provably
                    no longer exists (by default the watcher releases it, as GC would)

Exit status: 0 nothing had drifted, 1 something was repaired (or could not be), 2 could not run.
";

pub fn main(args: &[String]) -> ExitCode {
    let accepts = Accepts {
        watch: true,
        json: false,
    };
    let options = match args::parse_or_exit("reconcile", args, accepts, HELP) {
        Ok(options) => options,
        Err(exit) => return exit,
    };
    let level = if options.watch {
        log::LevelFilter::Info
    } else {
        log::LevelFilter::Warn
    };
    logger::init_with_stderr_level("reconcile".into(), level);
    legacy_lock::register_state_dirs(&options.state_dirs);
    let released = release_abandoned(&options.state_dirs);
    if options.watch {
        return watch::run(&options);
    }
    let node = match Node::open() {
        Ok(node) => node,
        Err(e) => return could_not_run("reconcile", e.to_string()),
    };
    match pass::run(&node, &options.state_dirs, Scope::All, &Hooks::NONE) {
        Ok(report) => {
            print_report(&report);
            if report.drifted() || released {
                Exit::Drift.into()
            } else {
                Exit::Clean.into()
            }
        }
        Err(e) => could_not_run("reconcile", e),
    }
}

/// Podman's containers whose setup or teardown was killed: their namespace is gone and
/// netavark never calls teardown again (`netavark::release_abandoned_in`; only in state
/// directories the netavark plugin marked). True when something was released.
fn release_abandoned(state_dirs: &[std::path::PathBuf]) -> bool {
    let mut released = false;
    for dir in state_dirs {
        for key in crate::netavark::release_abandoned_in(dir) {
            println!("{key}: released: the podman container's namespace is gone");
            released = true;
        }
    }
    released
}

/// What was repaired on stdout, one line each; what was left alone or failed on stderr.
fn print_report(report: &Report) {
    for (attachment, repairs) in &report.repaired {
        for line in repairs {
            println!("{attachment}: repaired: {line}");
        }
    }
    for (attachment, reason) in &report.unreachable {
        eprintln!("{attachment}: left alone: {reason}");
    }
    for (attachment, error) in &report.failed {
        eprintln!("{attachment}: could not repair: {error}");
    }
}
