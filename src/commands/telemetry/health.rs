//! `/healthz` and `/readyz`: whether the watcher's loop is alive, and whether the node is
//! converged.
//!
//! Alive means that the loop shows a sign of life when asked. The listener asks by sending a
//! byte on a socket the loop polls; the loop stamps the time at every turn and after every
//! attachment of a pass. So an idle loop answers within microseconds and costs nothing while
//! nobody asks (no periodic wake-up), and a long pass that moves from attachment to attachment
//! is alive too. Stuck means no sign of life for `STUCK_AFTER`: a pass waiting for a node lock
//! that someone holds, or on anything else that does not return. A stopped process (SIGSTOP,
//! a frozen cgroup) answers nothing at all, listener included: the probe's own timeout
//! reports it.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::http::{Answer, Response};

/// How long `/healthz` waits for the loop's answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// No sign of life for this long, even when asked: the loop is stuck. Longer than any single
/// attachment takes (a veth waits at most 2 s for its link to pass traffic).
pub const STUCK_AFTER: Duration = Duration::from_secs(5);

/// What the loop and the listener share: atomics only.
pub struct Health {
    started: Instant,
    /// Milliseconds since `started` of the loop's last sign of life.
    last_sign: AtomicU64,
    /// A full pass has completed since the start.
    converged_once: AtomicBool,
    /// Attachments that the last pass to examine them could not repair.
    unrepaired: AtomicU64,
    /// The listener's end of the wake-up socket.
    asker: UnixDatagram,
}

/// The loop's end: polled with the loop's other descriptors.
pub struct Heartbeat {
    shared: Arc<Health>,
    asked: UnixDatagram,
}

pub fn pair() -> std::io::Result<(Arc<Health>, Heartbeat)> {
    let (asker, asked) = UnixDatagram::pair()?;
    asker.set_nonblocking(true)?;
    asked.set_nonblocking(true)?;
    let shared = Arc::new(Health {
        started: Instant::now(),
        last_sign: AtomicU64::new(0),
        converged_once: AtomicBool::new(false),
        unrepaired: AtomicU64::new(0),
        asker,
    });
    Ok((shared.clone(), Heartbeat { shared, asked }))
}

impl Health {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// `/healthz`: 200 at once when the loop has shown a sign of life within `ANSWER_WITHIN`
    /// (so a client that asks in a loop wakes it at most once per `ANSWER_WITHIN`); otherwise
    /// asks it, and answers once it has shown one since (200), or after `ANSWER_WITHIN` from
    /// how long ago it last did.
    pub fn liveness(self: &Arc<Self>) -> Answer {
        let asked_at = self.now();
        if asked_at.saturating_sub(self.last_sign.load(Relaxed)) < ANSWER_WITHIN.as_millis() as u64
        {
            return Answer::Now(Response::text(200, "ok\n"));
        }
        // Never blocks; a full socket means a question is pending already.
        let _ = self.asker.send(&[1]);
        let give_up = Instant::now() + ANSWER_WITHIN;
        let health = self.clone();
        Answer::Later(Box::new(move || {
            let last = health.last_sign.load(Relaxed);
            if last >= asked_at {
                return Some(Response::text(200, "ok\n"));
            }
            if Instant::now() < give_up {
                return None;
            }
            let silent = Duration::from_millis(health.now().saturating_sub(last));
            Some(if silent < STUCK_AFTER {
                Response::text(200, format!("ok: busy, last sign of life {silent:?} ago\n"))
            } else {
                Response::text(
                    503,
                    format!("stuck: the event loop has shown no sign of life for {silent:?}\n"),
                )
            })
        }))
    }

    /// `/readyz`: a full pass has completed and nothing is left unrepaired.
    pub fn readiness(&self) -> Response {
        if !self.converged_once.load(Relaxed) {
            return Response::text(503, "not ready: no full pass has completed yet\n");
        }
        match self.unrepaired.load(Relaxed) {
            0 => Response::text(200, "ok\n"),
            n => Response::text(
                503,
                format!("not ready: {n} attachment(s) could not be repaired\n"),
            ),
        }
    }
}

impl Heartbeat {
    /// A sign of life; also takes any question off the socket.
    pub fn beat(&self) {
        self.shared.last_sign.store(self.shared.now(), Relaxed);
        let mut buf = [0u8; 16];
        while self.asked.recv(&mut buf).is_ok() {}
    }

    /// A sign of life in the middle of a pass (no system call).
    pub fn progress(&self) {
        self.shared.last_sign.store(self.shared.now(), Relaxed);
    }

    pub fn converged(&self, unrepaired: usize, full: bool) {
        self.shared.unrepaired.store(unrepaired as u64, Relaxed);
        if full {
            self.shared.converged_once.store(true, Relaxed);
        }
    }
}

impl AsFd for Heartbeat {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.asked.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(a: Answer) -> Response {
        match a {
            Answer::Now(r) => r,
            Answer::Later(mut pending) => loop {
                if let Some(r) = pending() {
                    return r;
                }
                std::thread::sleep(Duration::from_millis(5));
            },
        }
    }

    #[test]
    fn a_loop_that_answers_is_alive_and_readiness_needs_a_full_pass() {
        let (health, heartbeat) = pair().unwrap();
        // Asked later than `ANSWER_WITHIN` after the start: the loop's first stamp (0 ms) is
        // too old to answer for it.
        std::thread::sleep(ANSWER_WITHIN + Duration::from_millis(20));
        let loop_thread = std::thread::spawn(move || {
            // The loop: wakes when asked, beats.
            let mut fds = [nix::poll::PollFd::new(
                heartbeat.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
            heartbeat.beat();
            heartbeat
        });
        let started = Instant::now();
        assert_eq!(answer(health.liveness()).status, 200);
        assert!(started.elapsed() < ANSWER_WITHIN);
        assert!(
            matches!(health.liveness(), Answer::Now(_)),
            "answered just now"
        );
        let heartbeat = loop_thread.join().unwrap();
        assert_eq!(health.readiness().status, 503);
        heartbeat.converged(1, true);
        assert_eq!(health.readiness().status, 503);
        heartbeat.converged(0, false);
        assert_eq!(health.readiness().status, 200);
    }
}
