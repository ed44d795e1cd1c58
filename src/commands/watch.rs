//! `reconcile --watch`: a pass after every relevant rtnetlink notification, plus a periodic full
//! pass as a safety net.
//!
//! One thread, one `poll` over: a signalfd (SIGTERM, SIGINT: exit 0), an event socket in the
//! node's namespace (a change there may concern any attachment: full pass) and one in each
//! pod's namespace (a change there concerns that pod's attachments only). Notifications are
//! debounced (a flush arrives as a burst); our own repairs cause notifications too, so the
//! pass after a repairing pass finds nothing to do, changes nothing, and the loop goes quiet.
//! If something keeps undoing our repairs, the debounce grows so that the fight costs little.
//!
//! What it does is counted, and with `--metrics-address` served with its health (`telemetry`);
//! full passes also release attachments whose pod is provably gone (`stale`).

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::args::Options;
use super::pass::{self, Hooks, Report, Scope};
use super::telemetry::{Cause, ErrorKind, Source, Telemetry};
use super::{could_not_run, Exit};
use crate::datapaths::node::Node;
use crate::system::netlink_events::EventSocket;
use crate::system::netns::Netns;

/// From the first notification of a burst to the pass.
const DEBOUNCE: Duration = Duration::from_millis(5);
/// The longest debounce, reached when every pass keeps finding something to repair.
const MAX_DEBOUNCE: Duration = Duration::from_secs(1);

/// What the next pass must cover.
#[derive(Default)]
struct DueWork {
    since: Option<Instant>,
    full: bool,
    pods: Vec<String>,
}

pub fn run(options: &Options) -> ExitCode {
    match watch(options) {
        Ok(()) => Exit::Clean.into(),
        Err(e) => could_not_run("reconcile --watch", e),
    }
}

/// Until SIGTERM or SIGINT: wait for notifications or the next full pass, note what changed,
/// pass when due.
fn watch(options: &Options) -> Result<(), String> {
    let signals = stop_signals()?;
    // After the signal mask: the listener's thread inherits it.
    let telemetry = Telemetry::start(options.metrics_address)?;
    let mut watcher = Watcher::start(options, telemetry)?;
    log::info!(
        "watching {} for changes (full pass every {:?})",
        options
            .state_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        options.interval
    );
    loop {
        let Some(ready) = watcher.wait(&signals)? else {
            continue;
        };
        if ready.stop {
            if let Ok(Some(info)) = signals.read_signal() {
                log::info!("signal {}: stopping", info.ssi_signo);
            }
            return Ok(());
        }
        watcher.note(&ready);
        watcher.pass_when_due();
    }
}

/// SIGTERM and SIGINT, read from a signalfd. Blocked before any thread exists, so every
/// thread inherits the mask and the signals are only ever read here.
fn stop_signals() -> Result<SignalFd, String> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    mask.thread_block()
        .map_err(|e| format!("blocking SIGTERM/SIGINT: {e}"))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {e}"))
}

/// Which descriptors `poll` found readable.
struct Ready {
    stop: bool,
    node: bool,
    /// Pod namespaces whose socket has notifications.
    pods: Vec<String>,
}

struct Watcher<'a> {
    node: Node,
    dirs: &'a [PathBuf],
    /// The node's notifications: a change there may concern any attachment.
    node_events: EventSocket,
    /// An event socket per pod namespace path of a live attachment.
    pods: HashMap<String, EventSocket>,
    due: DueWork,
    interval: Duration,
    next_full: Instant,
    debounce: Duration,
    /// Attachments already reported as unreachable.
    unreachable: HashSet<String>,
    /// When the last pass ended and how long it took.
    last_pass: Option<(Instant, Duration)>,
    /// Attachments the last pass that examined them could not repair (readiness).
    unrepaired: HashSet<String>,
    release_stale: bool,
    telemetry: Telemetry,
}

impl<'a> Watcher<'a> {
    /// Subscribes in the node, then runs the first full pass: nothing that happens during it
    /// goes unseen.
    fn start(options: &'a Options, telemetry: Telemetry) -> Result<Watcher<'a>, String> {
        let node = Node::open().map_err(|e| e.to_string())?;
        let node_events = EventSocket::open().map_err(|e| e.to_string())?;
        let mut watcher = Watcher {
            node,
            dirs: &options.state_dirs,
            node_events,
            pods: HashMap::new(),
            due: DueWork::default(),
            interval: options.interval,
            next_full: Instant::now() + options.interval,
            debounce: DEBOUNCE,
            unreachable: HashSet::new(),
            last_pass: None,
            unrepaired: HashSet::new(),
            release_stale: options.release_stale,
            telemetry,
        };
        let first = DueWork {
            full: true,
            ..DueWork::default()
        };
        watcher.pass(&first, Cause::Startup)?;
        Ok(watcher)
    }

    /// Blocks until a descriptor is readable or the next pass is due; None when interrupted.
    fn wait(&self, signals: &SignalFd) -> Result<Option<Ready>, String> {
        let deadline = match self.due.since {
            Some(since) => self.due(since).min(self.next_full),
            None => self.next_full,
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        // Rounded up: waking a little early would only spin until the deadline.
        let timeout = PollTimeout::from(wait.as_micros().div_ceil(1000).min(60_000) as u16);
        let pod_names: Vec<&String> = self.pods.keys().collect();
        let mut fds = vec![
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.node_events.as_fd(), PollFlags::POLLIN),
            // A probe asking for a sign of life: answered below, by turning.
            PollFd::new(self.telemetry.wake_fd(), PollFlags::POLLIN),
        ];
        fds.extend(
            pod_names
                .iter()
                .map(|n| PollFd::new(self.pods[*n].as_fd(), PollFlags::POLLIN)),
        );
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(None),
            Err(e) => return Err(format!("poll: {e}")),
        }
        self.telemetry.alive();
        let readable = |fd: &PollFd| fd.any().unwrap_or(false);
        Ok(Some(Ready {
            stop: readable(&fds[0]),
            node: readable(&fds[1]),
            pods: pod_names
                .iter()
                .zip(&fds[3..])
                .filter(|(_, fd)| readable(fd))
                .map(|(name, _)| (*name).clone())
                .collect(),
        }))
    }

    /// Reads the notifications and records what the next pass must cover.
    fn note(&mut self, ready: &Ready) {
        if ready.node {
            match self.node_events.drain() {
                Ok(changes) if !changes.is_empty() => {
                    self.telemetry.events(Source::Node, &changes);
                    self.due.since.get_or_insert_with(Instant::now);
                    self.due.full = true;
                }
                Ok(_) => {}
                Err(e) => {
                    self.telemetry.error(ErrorKind::Events);
                    log::warn!("{e}");
                }
            }
        }
        for name in &ready.pods {
            let Some(socket) = self.pods.get_mut(name) else {
                continue;
            };
            match socket.drain() {
                Ok(changes) if !changes.is_empty() => {
                    self.telemetry.events(Source::Pod, &changes);
                    self.due.since.get_or_insert_with(Instant::now);
                    if !self.due.pods.contains(name) {
                        self.due.pods.push(name.clone());
                    }
                }
                Ok(_) => {}
                // The pod's namespace is going away: its attachment is DEL's business.
                Err(_) => {
                    self.pods.remove(name);
                }
            }
        }
    }

    /// Runs a pass when the pending one is due or the periodic full pass is.
    fn pass_when_due(&mut self) {
        let now = Instant::now();
        let periodic = now >= self.next_full;
        let debounced = self.due.since.is_some_and(|s| now >= self.due(s));
        if !(periodic || debounced) {
            return;
        }
        let work = DueWork {
            full: self.due.full || periodic,
            ..std::mem::take(&mut self.due)
        };
        let cause = if work.since.is_some() {
            Cause::Event
        } else {
            Cause::Periodic
        };
        if let Err(e) = self.pass(&work, cause) {
            self.telemetry.error(ErrorKind::Pass);
            log::warn!("pass failed: {e}");
        }
        if work.full {
            self.next_full = Instant::now() + self.interval;
        }
    }

    /// When a pass for notifications that began at `since` is due: after the debounce, and
    /// no sooner after the last pass than that pass took. A node busy with ADD and DEL
    /// notifies all the time; this keeps the watcher below half of one CPU then.
    fn due(&self, since: Instant) -> Instant {
        let debounced = since + self.debounce;
        match self.last_pass {
            Some((ended, took)) => debounced.max(ended + took),
            None => debounced,
        }
    }

    fn pass(&mut self, work: &DueWork, cause: Cause) -> Result<(), String> {
        let started = Instant::now();
        let scope = if work.full {
            Scope::All
        } else {
            Scope::Pods(&work.pods)
        };
        let hooks = Hooks {
            progress: &|| self.telemetry.progress(),
            // Only a full pass has seen every attachment's namespace fail to open.
            release_stale: self.release_stale && work.full,
        };
        let report = pass::run(&self.node, self.dirs, scope, &hooks)?;
        let took = started.elapsed();
        self.last_pass = Some((Instant::now(), took));
        log_report(&report, work.since, started);
        self.note_unrepaired(&report, work.full);
        self.telemetry
            .pass(cause, work.full, &report, took, self.unrepaired.len());
        // Told once per attachment, not on every pass.
        for (attachment, reason) in &report.unreachable {
            if self.unreachable.insert(attachment.clone()) {
                log::warn!("{attachment}: left alone: {reason}");
            }
        }
        if work.full {
            self.unreachable
                .retain(|a| report.unreachable.iter().any(|(u, _)| u == a));
        }
        // Something that keeps undoing our repairs must not turn the loop into a busy one.
        self.debounce = if report.repaired.is_empty() {
            DEBOUNCE
        } else {
            (self.debounce * 2).min(MAX_DEBOUNCE)
        };
        if work.full {
            self.listen_in(&report.pod_namespaces);
        }
        Ok(())
    }

    /// A full pass sees every attachment; a pass for some pods updates only theirs.
    fn note_unrepaired(&mut self, report: &Report, full: bool) {
        if full {
            self.unrepaired.clear();
        }
        for (attachment, _) in &report.repaired {
            self.unrepaired.remove(attachment);
        }
        self.unrepaired
            .extend(report.failed.iter().map(|(a, _)| a.clone()));
    }

    /// Keeps one event socket per pod namespace of the attachments seen in a full pass.
    fn listen_in(&mut self, namespaces: &[String]) {
        self.pods.retain(|path, _| namespaces.contains(path));
        for path in namespaces {
            if self.pods.contains_key(path) {
                continue;
            }
            let socket = Netns::open(path.as_ref())
                .map_err(|e| e.to_string())
                .and_then(|ns| EventSocket::open_in(&ns).map_err(|e| e.to_string()));
            match socket {
                Ok(socket) => {
                    self.pods.insert(path.clone(), socket);
                }
                Err(e) => {
                    self.telemetry.error(ErrorKind::PodListen);
                    log::warn!("not listening in pod namespace {path}: {e}")
                }
            }
        }
    }
}

fn log_report(report: &Report, first_event: Option<Instant>, started: Instant) {
    // Each repair itself is logged by `reconcile_attachment`; here the summary and its timing.
    if !report.repaired.is_empty() {
        let done = Instant::now();
        match first_event {
            Some(first) => log::info!(
                "repaired {} attachment(s) {:.1} ms after the first notification (pass {:.1} ms)",
                report.repaired.len(),
                (done - first).as_secs_f64() * 1e3,
                (done - started).as_secs_f64() * 1e3
            ),
            None => log::info!(
                "repaired {} attachment(s) in a full pass of {:.1} ms",
                report.repaired.len(),
                (done - started).as_secs_f64() * 1e3
            ),
        }
    }
    for (attachment, error) in &report.failed {
        log::warn!("{attachment}: could not repair: {error}");
    }
}
