//! A tiny HTTP/1.1 responder for GET (and HEAD) on TCP: what Prometheus and the kubelet's
//! probes need, and nothing more. One thread, one `poll` over the listener and its
//! connections; nothing here is ever waited on by the watcher's loop.
//!
//! Hostile or slow clients are bounded, so the thread stays responsive and its memory small:
//! a request is at most `REQUEST_LIMIT` bytes (431 beyond), each connection has
//! `CONNECTION_DEADLINE` for its whole exchange (then it is closed), at most
//! `MAX_CONNECTIONS` are open at once (a new one closes the oldest: a flood of idle
//! connections cannot keep a probe out for long), and every response closes its connection.
//! Idle, the thread sleeps in `poll` without a timeout: no wake-ups, no CPU.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// The largest request head (request line and headers) accepted.
pub const REQUEST_LIMIT: usize = 8 * 1024;
/// From accept to the last byte of the response.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(5);
/// Connections open at once.
pub const MAX_CONNECTIONS: usize = 32;
/// How often an answer that is not ready yet (`Answer::Later`) is asked again.
const RECHECK: Duration = Duration::from_millis(5);

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// A polled answer: None while it is not known yet.
pub type Deferred = Box<dyn FnMut() -> Option<Response> + Send>;

/// What a handler answers for a path.
pub enum Answer {
    Now(Response),
    /// Asked again every few milliseconds until it answers (the connection's deadline still
    /// applies): for a question another thread answers (`/healthz`).
    Later(Deferred),
}

/// The paths the server serves: `path` without its query string.
pub trait Handler: Send + 'static {
    fn get(&self, path: &str) -> Answer;
}

enum Stage {
    /// Collecting the request head.
    Reading(Vec<u8>),
    Waiting(Deferred, bool),
    /// The response, and how much of it is written.
    Writing(Vec<u8>, usize),
}

struct Connection {
    stream: TcpStream,
    deadline: Instant,
    stage: Stage,
}

/// Serves `listener` on a thread of its own until the process ends.
pub fn spawn(listener: TcpListener, handler: impl Handler) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("http".into())
        // Small: the thread holds a few buffers, no deep calls.
        .stack_size(128 * 1024)
        .spawn(move || serve(listener, handler))?;
    Ok(())
}

fn serve(listener: TcpListener, handler: impl Handler) {
    let mut connections: Vec<Connection> = Vec::new();
    loop {
        let timeout = next_timeout(&connections);
        let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        fds.extend(connections.iter().map(|c| {
            let events = match c.stage {
                Stage::Reading(_) => PollFlags::POLLIN,
                Stage::Writing(..) => PollFlags::POLLOUT,
                Stage::Waiting(..) => PollFlags::empty(),
            };
            PollFd::new(c.stream.as_fd(), events)
        }));
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                log::warn!("metrics listener: poll: {e}; stopping");
                return;
            }
        }
        let accept = fds[0].any().unwrap_or(false);
        drop(fds);
        let now = Instant::now();
        // Each connection makes what progress it can; finished or expired ones go.
        connections.retain_mut(|c| now < c.deadline && advance(c, &handler));
        if accept {
            accept_all(&listener, &mut connections);
        }
    }
}

/// The poll timeout: none while every connection waits on its socket and nothing is due.
fn next_timeout(connections: &[Connection]) -> PollTimeout {
    let Some(deadline) = connections.iter().map(|c| c.deadline).min() else {
        return PollTimeout::NONE;
    };
    let mut wait = deadline.saturating_duration_since(Instant::now());
    if connections
        .iter()
        .any(|c| matches!(c.stage, Stage::Waiting(..)))
    {
        wait = wait.min(RECHECK);
    }
    PollTimeout::from(wait.as_millis().clamp(1, 60_000) as u16)
}

fn accept_all(listener: &TcpListener, connections: &mut Vec<Connection>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                if connections.len() >= MAX_CONNECTIONS {
                    // The oldest goes: it has had the longest time to say something.
                    connections.remove(0);
                }
                connections.push(Connection {
                    stream,
                    deadline: Instant::now() + CONNECTION_DEADLINE,
                    stage: Stage::Reading(Vec::new()),
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Out of descriptors or the like: the pending connection stays in the backlog;
            // try again at the next readiness rather than spin.
            Err(e) => {
                log::warn!("metrics listener: accept: {e}");
                return;
            }
        }
    }
}

/// Moves one connection on without blocking; false when it is done with (answered, closed by
/// the peer, or broken).
fn advance(c: &mut Connection, handler: &impl Handler) -> bool {
    loop {
        match &mut c.stage {
            Stage::Reading(head) => match read_head(&mut c.stream, head) {
                Ok(Some(end)) => {
                    c.stage = match parse(&head[..end]) {
                        Ok((method, path)) => match handler.get(path) {
                            Answer::Now(r) => Stage::Writing(encode(&r, method == "HEAD"), 0),
                            Answer::Later(p) => Stage::Waiting(p, method == "HEAD"),
                        },
                        Err(r) => Stage::Writing(encode(&r, false), 0),
                    }
                }
                Ok(None) if head.len() >= REQUEST_LIMIT => {
                    let r = Response::text(431, "request too large\n");
                    c.stage = Stage::Writing(encode(&r, false), 0);
                }
                Ok(None) => return true,
                Err(()) => return false,
            },
            Stage::Waiting(pending, head_only) => match pending() {
                Some(r) => c.stage = Stage::Writing(encode(&r, *head_only), 0),
                None => return true,
            },
            Stage::Writing(bytes, done) => {
                while *done < bytes.len() {
                    match c.stream.write(&bytes[*done..]) {
                        Ok(0) => return false,
                        Ok(n) => *done += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => return false,
                    }
                }
                return false;
            }
        }
    }
}

/// Reads what is there; Some(end of the head) once the blank line has arrived. Never holds
/// more than `REQUEST_LIMIT` bytes.
fn read_head(stream: &mut TcpStream, head: &mut Vec<u8>) -> Result<Option<usize>, ()> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(at) = find_blank_line(head) {
            return Ok(Some(at));
        }
        let room = REQUEST_LIMIT - head.len();
        if room == 0 {
            return Ok(None);
        }
        let want = room.min(chunk.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(()),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
}

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n").or_else(|| {
        // Bare LF line ends, as some hand-typed clients send.
        bytes.windows(2).position(|w| w == b"\n\n")
    })
}

/// The method and the path (query string dropped) of a request line, or the error response.
fn parse(head: &[u8]) -> Result<(&str, &str), Response> {
    let bad = || Response::text(400, "bad request\n");
    let text = std::str::from_utf8(head).map_err(|_| bad())?;
    let line = text.lines().next().ok_or_else(bad)?;
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(bad());
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(bad());
    }
    if method != "GET" && method != "HEAD" {
        return Err(Response::text(405, "only GET and HEAD\n"));
    }
    let path = target.split('?').next().unwrap_or(target);
    Ok((method, path))
}

fn encode(r: &Response, head_only: bool) -> Vec<u8> {
    let reason = match r.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        r.status,
        r.content_type,
        r.body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(r.body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a").unwrap(),
            ("GET", "/metrics")
        );
        assert_eq!(
            parse(b"HEAD /healthz HTTP/1.0").unwrap(),
            ("HEAD", "/healthz")
        );
        assert_eq!(parse(b"POST /metrics HTTP/1.1").unwrap_err().status, 405);
        for bad in [
            &b"GET /metrics"[..],
            b"GET metrics HTTP/1.1",
            b"\xff\xfe",
            b"",
        ] {
            assert_eq!(parse(bad).unwrap_err().status, 400, "{bad:?}");
        }
    }

    #[test]
    fn responses_close_and_say_their_length() {
        let r = Response::text(503, "stuck\n");
        let text = String::from_utf8(encode(&r, false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(text.contains("Content-Length: 6\r\nConnection: close\r\n\r\nstuck\n"));
        let head = String::from_utf8(encode(&r, true)).unwrap();
        assert!(head.ends_with("\r\n\r\n") && head.contains("Content-Length: 6"));
    }
}
