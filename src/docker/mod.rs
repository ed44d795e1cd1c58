//! `macvlan-host docker-driver`: Docker's remote network driver (moby
//! `libnetwork/docs/remote.md`), served synchronously on a unix socket: one thread per
//! connection (at most `MAX_CONNECTIONS`), no async runtime.
//!
//! - `http`: just enough HTTP/1.1, bounded in size and time;
//! - `wire`: the protocol's messages;
//! - `options`: a network's `-o` options read out of Docker's request and checked by
//!   `protocol::options` (the rules every front end shares), and its IPAM pools;
//! - `driver`: the calls, each a short list of steps;
//! - `sandbox`: waiting, bounded, for the container's link to arrive in its namespace;
//! - `store`: networks (durable) and endpoints, so a restarted driver serves what exists;
//! - `host_side`: the one adapter to the host-side logic.

mod driver;
mod host_side;
mod http;
mod options;
mod sandbox;
mod store;
mod wire;

use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use driver::{Driver, Shared};
use http::Connection;

pub const DEFAULT_SOCKET: &str = "/run/docker/plugins/macvlan-host.sock";
/// Attachment records and endpoints: where `reconcile` and `diagnose` look by default.
pub const DEFAULT_STATE_DIR: &str = "/run/cni/macvlan-host";
/// Network definitions: they outlive reboots, like Docker's own.
pub const DEFAULT_NETWORK_DIR: &str = "/var/lib/macvlan-host/docker-networks";
/// Docker opens a few connections; more than this at once is not Docker.
const MAX_CONNECTIONS: usize = 64;

const HELP: &str = "macvlan-host docker-driver [--socket PATH] [--state-dir DIR] [--network-dir DIR]

Serves Docker's remote network driver protocol: `docker network create -d macvlan-host`.
Start it before dockerd (deploy/systemd/macvlan-host-docker.service).

  --socket PATH       the socket dockerd finds the driver by (default /run/docker/plugins/macvlan-host.sock)
  --state-dir DIR     attachment records and endpoints; `macvlan-host reconcile` and `diagnose`
                      read the records there (default /run/cni/macvlan-host)
  --network-dir DIR   the networks' definitions, kept across reboots
                      (default /var/lib/macvlan-host/docker-networks)
";

struct Options {
    socket: PathBuf,
    state_dir: PathBuf,
    network_dir: PathBuf,
}

fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut options = Options {
        socket: DEFAULT_SOCKET.into(),
        state_dir: DEFAULT_STATE_DIR.into(),
        network_dir: DEFAULT_NETWORK_DIR.into(),
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| iter.next().cloned())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--help" | "-h" => return Ok(None),
            "--socket" => options.socket = value()?,
            "--state-dir" => options.state_dir = value()?,
            "--network-dir" => options.network_dir = value()?,
            _ => return Err(format!("unknown argument {arg:?} (see --help)")),
        }
    }
    Ok(Some(options))
}

/// The `docker-driver` command. Runs until killed; exits 2 when it cannot start.
pub fn main(args: &[String]) -> ExitCode {
    let options = match parse_args(args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => return could_not_start(e),
    };
    crate::system::logger::init_with_stderr_level("docker-driver".into(), log::LevelFilter::Info);
    let driver = match Driver::load(&options.network_dir, &options.state_dir) {
        Ok(driver) => driver,
        Err(e) => return could_not_start(e.to_string()),
    };
    let listener = match listen(&options.socket) {
        Ok(listener) => listener,
        Err(e) => return could_not_start(e),
    };
    let joined = driver.joined();
    let shared: Shared = Arc::new(Mutex::new(driver));
    // Containers that were running when the driver stopped: their container side is made
    // true again (or finished, when the driver stopped before their start).
    for (endpoint, sandbox) in joined {
        sandbox::spawn_waiter(shared.clone(), endpoint, sandbox);
    }
    log::info!(
        "serving Docker's remote network driver protocol on {}",
        options.socket.display()
    );
    serve(&listener, &shared);
    ExitCode::from(2)
}

fn could_not_start(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("macvlan-host docker-driver: {message}");
    ExitCode::from(2)
}

/// Binds the socket. A socket file left by a driver that is gone is replaced; one that
/// answers belongs to a running driver, and this one does not start.
fn listen(path: &Path) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "{} is served by another running driver",
                    path.display()
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| format!("removing stale {}: {e}", path.display()))?;
        }
        Ok(_) => return Err(format!("{} exists and is not a socket", path.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    UnixListener::bind(path).map_err(|e| format!("binding {}: {e}", path.display()))
}

fn serve(listener: &UnixListener, shared: &Shared) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                log::warn!("accepting a connection: {e}");
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            log::warn!("refusing a connection: {MAX_CONNECTIONS} are open");
            continue;
        }
        let (shared, active) = (shared.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("connection".into())
            .spawn(move || {
                serve_connection(stream, &shared);
                active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            log::warn!("starting a connection thread: {e}");
        }
    }
}

/// Requests of one connection, answered in order, until the peer closes it.
fn serve_connection(stream: UnixStream, shared: &Shared) {
    let mut connection = Connection::new(stream);
    loop {
        let request = match connection.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e) => {
                log::warn!("{e}");
                if let Some(status) = e.status() {
                    let body = serde_json::json!({ "Err": e.to_string() }).to_string();
                    let _ =
                        http::write_response(connection.stream(), status, body.as_bytes(), true);
                }
                return;
            }
        };
        let reply = if request.method == "POST" {
            driver::handle(shared, &request.path, &request.body)
        } else {
            driver::Reply {
                status: 405,
                body: serde_json::json!({ "Err": format!("{} is not POST", request.method) }),
            }
        };
        let body = reply.body.to_string();
        let written = http::write_response(
            connection.stream(),
            reply.status,
            body.as_bytes(),
            request.close,
        );
        if written.is_err() || request.close {
            return;
        }
    }
}
