//! Traffic between namespaces: a TCP server inside one, and the ping + TCP reachability checks
//! the tests assert.

use super::netns::Netns;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One connection attempt: connect, then read the server's greeting.
pub(super) fn greeted(target: SocketAddr) -> bool {
    let timeout = Duration::from_secs(1);
    let Ok(mut stream) = TcpStream::connect_timeout(&target, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let mut buf = [0u8; TcpServer::GREETING.len()];
    stream.read_exact(&mut buf).is_ok() && buf == *TcpServer::GREETING
}

// ---------------------------------------------------------------------------------------------
// TcpServer: a listener inside a namespace
// ---------------------------------------------------------------------------------------------

/// A TCP listener on a thread inside a namespace; stops and joins on `Drop`.
pub struct TcpServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpServer {
    /// What the server writes to each client, so a client knows it reached this server.
    pub const GREETING: &'static [u8] = b"macvlan-host-test\n";

    pub(super) fn start(ns: &Netns, port: u16) -> TcpServer {
        let stop = Arc::new(AtomicBool::new(false));
        let (bound_tx, bound_rx) = mpsc::channel();
        let thread = ns.spawn_in({
            let stop = stop.clone();
            move || {
                let listener = TcpListener::bind(("::", port));
                let ok = listener.as_ref().map(|_| ()).map_err(|e| e.to_string());
                bound_tx.send(ok).expect("report bind");
                if let Ok(listener) = listener {
                    serve(&listener, &stop);
                }
            }
        });
        // Return only once the socket listens, so a client's first attempt can succeed.
        let bound = bound_rx.recv().expect("server thread");
        bound.unwrap_or_else(|e| panic!("listen on port {port} in {}: {e}", ns.name()));
        TcpServer {
            stop,
            thread: Some(thread),
        }
    }
}

/// Greets every client until `stop` is set (polls, so `Drop` never waits more than 50 ms).
fn serve(listener: &TcpListener, stop: &AtomicBool) {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut client, _)) => {
                let _ = client.set_nonblocking(false);
                let _ = client.write_all(TcpServer::GREETING);
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
