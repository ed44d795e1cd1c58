//! What the watcher tells an operator: Prometheus metrics (`/metrics`), liveness (`/healthz`)
//! and readiness (`/readyz`), served on `--metrics-address HOST:PORT` by a thread of their own
//! (`http`). The watcher's loop only stores into atomics and reads one socket it polls
//! (`health::Heartbeat`); it never waits for the listener.

mod health;
pub mod http;
mod metrics;
mod object_kind;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use health::{Health, Heartbeat};
use http::{Answer, Handler, Response};
use metrics::Metrics;
pub use metrics::{Cause, ErrorKind, Source};

use super::pass::Report;
use crate::system::netlink_events::Change;

/// The watcher's side.
pub struct Telemetry {
    metrics: Arc<Metrics>,
    heartbeat: Heartbeat,
}

impl Telemetry {
    /// Counts always; serves them (and the probes) when `address` is given. The listener is
    /// bound here, so a port in use fails the start.
    pub fn start(address: Option<SocketAddr>) -> Result<Telemetry, String> {
        let (health, heartbeat) =
            health::pair().map_err(|e| format!("creating the health socket pair: {e}"))?;
        let metrics = Arc::new(Metrics::default());
        if let Some(address) = address {
            let listener = TcpListener::bind(address)
                .map_err(|e| format!("--metrics-address {address}: {e}"))?;
            let endpoints = Endpoints {
                metrics: metrics.clone(),
                health,
            };
            http::spawn(listener, endpoints)
                .map_err(|e| format!("starting the metrics listener on {address}: {e}"))?;
            log::info!("serving /metrics, /healthz and /readyz on http://{address}");
        }
        Ok(Telemetry { metrics, heartbeat })
    }

    /// Polled by the loop: readable when a probe asks for a sign of life.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.heartbeat.as_fd()
    }

    /// The loop turned (after every `poll`).
    pub fn alive(&self) {
        self.heartbeat.beat();
    }

    /// One attachment of a pass is done.
    pub fn progress(&self) {
        self.heartbeat.progress();
    }

    pub fn events(&self, source: Source, changes: &[Change]) {
        self.metrics.events(source, changes);
    }

    pub fn error(&self, kind: ErrorKind) {
        self.metrics.error(kind);
    }

    /// A pass ended: its duration, the drift it found and the repairs it made, and for a full
    /// pass what is on the node. `unrepaired` is the watcher's count of attachments left
    /// unrepaired (readiness).
    pub fn pass(
        &self,
        cause: Cause,
        full: bool,
        report: &Report,
        took: Duration,
        unrepaired: usize,
    ) {
        let m = &self.metrics;
        m.pass(cause, took);
        for drift in &report.drift {
            m.drift(cause, object_kind::of_drift(drift));
        }
        for (_, repairs) in &report.repaired {
            for repair in repairs {
                m.repair(cause, object_kind::of_repair(repair));
            }
        }
        for _ in &report.failed {
            m.error(ErrorKind::Repair);
        }
        for _ in &report.released {
            m.released();
        }
        if full {
            m.full_pass(
                report.examined,
                report.unreachable.len(),
                report.shims.len(),
            );
        }
        m.unrepaired(unrepaired);
        self.heartbeat.converged(unrepaired, full);
        self.heartbeat.beat();
    }
}

/// The listener's side: the paths it serves.
struct Endpoints {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl Handler for Endpoints {
    fn get(&self, path: &str) -> Answer {
        match path {
            "/metrics" => Answer::Now(Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: self.metrics.render(),
            }),
            "/healthz" => self.health.liveness(),
            "/readyz" => Answer::Now(self.health.readiness()),
            _ => Answer::Now(Response::text(
                404,
                "not found: /metrics, /healthz and /readyz are served here\n",
            )),
        }
    }
}
