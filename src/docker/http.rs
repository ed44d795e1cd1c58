//! Just enough HTTP/1.1 for Docker's plugin client: requests with a `Content-Length` or
//! chunked body, persistent connections, JSON replies. Bounded everywhere: the head and the
//! body have a size limit, a started request must arrive within `REQUEST_TIMEOUT`, an idle
//! connection is closed after `IDLE_TIMEOUT`. Nothing here knows the driver.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// The request line and headers.
pub const MAX_HEAD: usize = 16 * 1024;
/// The largest body Docker sends is a CreateNetwork with its options: a few KiB.
pub const MAX_BODY: usize = 1024 * 1024;
/// From the first byte of a request to its last.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Docker's client keeps idle connections for 90 s; it notices a close and reconnects.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    /// The client asked for the connection to be closed after this reply.
    pub close: bool,
}

#[derive(Debug)]
pub enum HttpError {
    /// A request that cannot be read as HTTP: answered with 400, then the connection closes.
    Malformed(String),
    /// Head or body over the limit: 413.
    TooLarge(&'static str),
    /// The request did not arrive in time: 408.
    Timeout,
    /// The peer went away mid-request, or the socket failed: nothing to answer.
    Io(io::Error),
}

impl HttpError {
    /// The status to answer with, when the connection can still carry one.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Malformed(_) => Some(400),
            HttpError::TooLarge(_) => Some(413),
            HttpError::Timeout => Some(408),
            HttpError::Io(_) => None,
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Malformed(why) => write!(f, "malformed request: {why}"),
            HttpError::TooLarge(what) => write!(f, "{what} is too large"),
            HttpError::Timeout => {
                write!(f, "the request did not arrive within {REQUEST_TIMEOUT:?}")
            }
            HttpError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Something to read requests from with a timeout (a unix socket; a test double).
pub trait Timed: Read {
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()>;
}

impl Timed for std::os::unix::net::UnixStream {
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))
    }
}

/// Reads the requests of one connection; bytes after one request are kept for the next.
pub struct Connection<S> {
    stream: S,
    buffer: Vec<u8>,
}

impl<S: Timed> Connection<S> {
    pub fn new(stream: S) -> Connection<S> {
        Connection {
            stream,
            buffer: Vec::new(),
        }
    }

    pub fn stream(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The next request; None when the peer closed the connection between requests or it
    /// stayed idle for `IDLE_TIMEOUT`.
    pub fn next_request(&mut self) -> Result<Option<Request>, HttpError> {
        if self.buffer.is_empty() {
            self.stream
                .set_timeout(IDLE_TIMEOUT)
                .map_err(HttpError::Io)?;
            match self.fill() {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => return Ok(None),
                Err(e) => return Err(HttpError::Io(e)),
            }
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let head_end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end;
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(HttpError::TooLarge("the request head"));
            }
            self.fill_before(deadline)?;
        };
        if head_end > MAX_HEAD {
            return Err(HttpError::TooLarge("the request head"));
        }
        let head = std::str::from_utf8(&self.buffer[..head_end])
            .map_err(|_| HttpError::Malformed("the head is not UTF-8".into()))?;
        let head = Head::parse(head)?;
        self.buffer.drain(..head_end + 4);
        let body = match head.framing {
            Framing::Length(length) => {
                if length > MAX_BODY {
                    return Err(HttpError::TooLarge("the request body"));
                }
                while self.buffer.len() < length {
                    self.fill_before(deadline)?;
                }
                self.buffer.drain(..length).collect()
            }
            Framing::Chunked => self.read_chunked(deadline)?,
        };
        Ok(Some(Request {
            method: head.method,
            path: head.path,
            body,
            close: head.close,
        }))
    }

    fn read_chunked(&mut self, deadline: Instant) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(end) = find(&self.buffer, b"\r\n") {
                    break end;
                }
                if self.buffer.len() > 1024 {
                    return Err(HttpError::Malformed("a chunk size line is too long".into()));
                }
                self.fill_before(deadline)?;
            };
            let line = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| HttpError::Malformed(format!("bad chunk size {size_text:?}")))?;
            self.buffer.drain(..line_end + 2);
            if size == 0 {
                // Trailers end with an empty line; none are expected.
                loop {
                    if let Some(end) = find(&self.buffer, b"\r\n") {
                        let empty = end == 0;
                        self.buffer.drain(..end + 2);
                        if empty {
                            return Ok(body);
                        }
                    } else {
                        self.fill_before(deadline)?;
                    }
                }
            }
            if body.len() + size > MAX_BODY {
                return Err(HttpError::TooLarge("the request body"));
            }
            while self.buffer.len() < size + 2 {
                self.fill_before(deadline)?;
            }
            body.extend(self.buffer.drain(..size));
            self.buffer.drain(..2);
        }
    }

    /// Reads more bytes, failing when `deadline` has passed or the peer closed mid-request.
    fn fill_before(&mut self, deadline: Instant) -> Result<(), HttpError> {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(HttpError::Timeout)?;
        self.stream.set_timeout(left).map_err(HttpError::Io)?;
        match self.fill() {
            Ok(0) => Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => Ok(()),
            Err(e) if is_timeout(&e) => Err(HttpError::Timeout),
            Err(e) => Err(HttpError::Io(e)),
        }
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

enum Framing {
    Length(usize),
    Chunked,
}

struct Head {
    method: String,
    path: String,
    framing: Framing,
    close: bool,
}

impl Head {
    fn parse(text: &str) -> Result<Head, HttpError> {
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (Some(method), Some(path), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HttpError::Malformed(format!(
                "bad request line {request_line:?}"
            )));
        };
        if !version.starts_with("HTTP/1.") || method.is_empty() || !path.starts_with('/') {
            return Err(HttpError::Malformed(format!(
                "bad request line {request_line:?}"
            )));
        }
        let mut length = None;
        let mut chunked = false;
        let mut close = version == "HTTP/1.0";
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| HttpError::Malformed(format!("bad header line {line:?}")))?;
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => {
                    let parsed = value.parse::<usize>().map_err(|_| {
                        HttpError::Malformed(format!("bad Content-Length {value:?}"))
                    })?;
                    if length.is_some_and(|l| l != parsed) {
                        return Err(HttpError::Malformed("two different Content-Lengths".into()));
                    }
                    length = Some(parsed);
                }
                "transfer-encoding" => {
                    if !value.eq_ignore_ascii_case("chunked") {
                        return Err(HttpError::Malformed(format!(
                            "unsupported Transfer-Encoding {value:?}"
                        )));
                    }
                    chunked = true;
                }
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let framing = match (chunked, length) {
            (true, Some(_)) => {
                return Err(HttpError::Malformed(
                    "both Content-Length and chunked Transfer-Encoding".into(),
                ))
            }
            (true, None) => Framing::Chunked,
            (false, length) => Framing::Length(length.unwrap_or(0)),
        };
        Ok(Head {
            method: method.to_owned(),
            path: path.to_owned(),
            framing,
            close,
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Writes one reply with a JSON body; `close` tells the client the connection ends.
pub fn write_response(
    stream: &mut impl Write,
    status: u16,
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        _ => "Error",
    };
    let mut reply = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    if close {
        reply.extend_from_slice(b"Connection: close\r\n");
    }
    reply.extend_from_slice(b"\r\n");
    reply.extend_from_slice(body);
    stream.write_all(&reply)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes handed out in the given pieces, as a socket would.
    struct Pieces(Vec<Vec<u8>>);

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let piece = &mut self.0[0];
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            piece.drain(..n);
            if piece.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    impl Timed for Pieces {
        fn set_timeout(&mut self, _: Duration) -> io::Result<()> {
            Ok(())
        }
    }

    fn connection(pieces: &[&[u8]]) -> Connection<Pieces> {
        Connection::new(Pieces(pieces.iter().map(|p| p.to_vec()).collect()))
    }

    #[test]
    fn two_requests_on_one_connection_in_odd_pieces() {
        let mut c = connection(&[
            b"POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\nContent-Le",
            b"ngth: 0\r\n\r\nPOST /NetworkDriver.Join HTTP/1.1\r\ncontent-length: 7\r\n\r\n{\"a\":",
            b"1}",
        ]);
        let first = c.next_request().unwrap().unwrap();
        assert_eq!(
            (first.method.as_str(), first.path.as_str()),
            ("POST", "/Plugin.Activate")
        );
        assert!(first.body.is_empty() && !first.close);
        let second = c.next_request().unwrap().unwrap();
        assert_eq!(second.path, "/NetworkDriver.Join");
        assert_eq!(second.body, b"{\"a\":1}");
        assert!(
            c.next_request().unwrap().is_none(),
            "the peer closed between requests"
        );
    }

    #[test]
    fn chunked_bodies_are_joined() {
        let mut c = connection(&[
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\n{\"a\r\n4;ext=1\r\n\":1}\r\n0\r\n\r\n",
        ]);
        let request = c.next_request().unwrap().unwrap();
        assert_eq!(request.body, b"{\"a\":1}");
        assert!(request.close);
    }

    #[test]
    fn limits_and_garbage_are_refused_with_a_status() {
        let huge = format!(
            "POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (huge.into_bytes(), 413),
            (vec![b'a'; MAX_HEAD + 10], 413),
            (b"GARBAGE\r\n\r\n".to_vec(), 400),
            (
                b"POST /x HTTP/1.1\r\nContent-Length: x\r\n\r\n".to_vec(),
                400,
            ),
            (
                b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
                400,
            ),
        ];
        for (bytes, status) in cases {
            let err = connection(&[&bytes]).next_request().unwrap_err();
            assert_eq!(err.status(), Some(status), "{err}");
        }
        // Cut off mid-body: nobody to answer.
        let err = connection(&[b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}"])
            .next_request()
            .unwrap_err();
        assert_eq!(err.status(), None);
    }

    #[test]
    fn replies_carry_length_and_type() {
        let mut out = Vec::new();
        write_response(&mut out, 404, b"{}", true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Length: 2\r\n") && text.contains("Connection: close"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }
}
