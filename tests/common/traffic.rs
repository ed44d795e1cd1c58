//! Traffic between namespaces: a TCP server inside one, and the ping + TCP reachability checks
//! the tests assert.

use super::netns::Netns;
use std::fs;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

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

// ---------------------------------------------------------------------------------------------
// Reachability checks
// ---------------------------------------------------------------------------------------------

/// The port every test's TCP server listens on.
pub const TCP_PORT: u16 = 8080;

/// `to` answers a ping from `from`.
pub fn assert_pings(label: &str, from: &Netns, to: IpAddr) {
    assert!(from.ping(&to.to_string()), "{label}: ping {to} fails");
}

/// A TCP connection from `from` reaches a server on `to` (the caller runs the server).
pub fn assert_tcp(label: &str, from: &Netns, to: IpAddr) {
    assert!(
        from.tcp_connect(&to.to_string(), TCP_PORT),
        "{label}: TCP to {to}:{TCP_PORT} fails"
    );
}

/// `from` reaches each of `ips` (in `to`) by ping and by TCP.
pub fn assert_reaches(from: (&str, &Netns), to: (&str, &Netns), ips: &[String]) {
    let _server = to.1.tcp_server(TCP_PORT);
    for ip in ips {
        assert!(from.1.ping(ip), "{} -> {} {ip}: ping", from.0, to.0);
        assert!(
            from.1.tcp_connect(ip, TCP_PORT),
            "{} -> {} {ip}: TCP",
            from.0,
            to.0
        );
    }
}

/// `a` and `b` reach each other, ping and TCP, both ways.
pub fn assert_both_ways(a: (&str, &Netns, &[String]), b: (&str, &Netns, &[String])) {
    assert_reaches((a.0, a.1), (b.0, b.1), b.2);
    assert_reaches((b.0, b.1), (a.0, a.1), a.2);
}

/// The size of a jumbo-frame ping's payload: far above 1500, below 9000 with headers.
pub const JUMBO_PAYLOAD: u32 = 8000;

/// `from` reaches `to` with one ping of `JUMBO_PAYLOAD` bytes that must not be fragmented
/// (`-M do`): every device on the path carries jumbo frames.
pub fn pings_jumbo(from: &Netns, to: &str) -> bool {
    let size = JUMBO_PAYLOAD.to_string();
    (0..3).any(|_| {
        from.exec(["ping", "-n", "-c1", "-W1", "-M", "do", "-s", &size, to])
            .status
            .success()
    })
}

/// Jumbo pings both ways between `a` and each of `b`'s addresses, and from `b` to each of
/// `a`'s.
pub fn assert_jumbo_both_ways(a: (&str, &Netns, &[String]), b: (&str, &Netns, &[String])) {
    for (from, to) in [(a, b), (b, a)] {
        for ip in to.2 {
            assert!(
                pings_jumbo(from.1, ip),
                "{} -> {} {ip}: a {JUMBO_PAYLOAD}-byte ping with DF fails",
                from.0,
                to.0
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Holder: a namespace kept alive without its name
// ---------------------------------------------------------------------------------------------

/// A process that keeps a pod's network namespace alive after its name is gone (as a
/// container's process does when the runtime has already removed the netns file).
pub struct Holder(Child);

impl Holder {
    /// Starts a process in `pod` and returns once it is inside the pod's namespace.
    pub fn hold(pod: &Netns) -> Holder {
        let child = pod
            .command("sleep")
            .arg("600")
            .spawn()
            .expect("start a process in the pod");
        let holder = Holder(child);
        let target = fs::metadata(pod.path()).expect("the pod's netns").ino();
        let own_ns = format!("/proc/{}/ns/net", holder.0.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        // nsenter enters the namespace, then execs sleep: wait for the first step.
        while fs::metadata(&own_ns).map(|m| m.ino()).ok() != Some(target) {
            assert!(
                Instant::now() < deadline,
                "the holder never entered the pod"
            );
            thread::sleep(Duration::from_millis(10));
        }
        holder
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The response to `GET path` from inside `from`, sent to `address` (HOST:PORT): (status,
/// body); None when no response came within `timeout`.
pub fn http_get(
    from: &Netns,
    address: &str,
    path: &str,
    timeout: Duration,
) -> Option<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let address: SocketAddr = address.parse().expect("HOST:PORT");
    from.in_netns(move || {
        let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
        stream.set_read_timeout(Some(timeout)).unwrap();
        stream.write_all(request.as_bytes()).ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n")?.1.to_string();
        Some((status, body))
    })
}
