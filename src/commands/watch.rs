//! `reconcile --watch`: a pass after every relevant rtnetlink notification, plus a periodic full
//! pass as a safety net.
//!
//! One thread, one `poll` over: a signalfd (SIGTERM, SIGINT: exit 0), an event socket in the
//! node's namespace (a change there may concern any attachment: full pass) and one in each
//! pod's namespace (a change there concerns that pod's attachments only). Notifications are
//! debounced (a flush arrives as a burst); our own repairs cause notifications too, so the
//! pass after a repairing pass finds nothing to do, changes nothing, and the loop goes quiet.
//! If something keeps undoing our repairs, the debounce grows so that the fight costs little.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::pass::{self, Report, Scope};
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
struct Pending {
    since: Option<Instant>,
    full: bool,
    pods: Vec<String>,
}

pub fn run(dirs: &[PathBuf], interval: Duration) -> ExitCode {
    // Blocked before any thread exists, so every thread inherits the mask and the signals
    // are only ever read from the signalfd.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    if let Err(e) = mask.thread_block() {
        return could_not_run("reconcile --watch", format!("blocking SIGTERM/SIGINT: {e}"));
    }
    let signals = match SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
    {
        Ok(fd) => fd,
        Err(e) => return could_not_run("reconcile --watch", format!("signalfd: {e}")),
    };
    let node = match Node::open() {
        Ok(node) => node,
        Err(e) => return could_not_run("reconcile --watch", e.msg),
    };
    // Subscribed before the first pass: nothing that happens during it goes unseen.
    let mut node_events = match EventSocket::open() {
        Ok(socket) => socket,
        Err(e) => return could_not_run("reconcile --watch", e),
    };
    let mut watcher = Watcher {
        node,
        dirs,
        pods: HashMap::new(),
        debounce: DEBOUNCE,
        unreachable: HashSet::new(),
        last_pass: None,
    };
    if let Err(e) = watcher.pass(&Pending {
        full: true,
        ..Pending::default()
    }) {
        return could_not_run("reconcile --watch", e);
    }
    log::info!(
        "watching {} for changes (full pass every {:?})",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        interval
    );

    let mut pending = Pending::default();
    let mut next_full = Instant::now() + interval;
    loop {
        let now = Instant::now();
        let deadline = match pending.since {
            Some(since) => watcher.due(since).min(next_full),
            None => next_full,
        };
        let wait = deadline.saturating_duration_since(now);
        // Rounded up: waking a little early would only spin until the deadline.
        let timeout = PollTimeout::from(wait.as_micros().div_ceil(1000).min(60_000) as u16);

        let pod_names: Vec<String> = watcher.pods.keys().cloned().collect();
        let ready = {
            let mut fds = vec![
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
                PollFd::new(node_events.as_fd(), PollFlags::POLLIN),
            ];
            fds.extend(
                pod_names
                    .iter()
                    .map(|n| PollFd::new(watcher.pods[n].as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, timeout) {
                Ok(_) => fds
                    .iter()
                    .map(|fd| fd.any().unwrap_or(false))
                    .collect::<Vec<_>>(),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return could_not_run("reconcile --watch", format!("poll: {e}")),
            }
        };
        if ready[0] {
            if let Ok(Some(info)) = signals.read_signal() {
                log::info!("signal {}: stopping", info.ssi_signo);
            }
            return Exit::Clean.into();
        }
        if ready[1] {
            match node_events.drain() {
                Ok(changes) if !changes.is_empty() => {
                    pending.since.get_or_insert_with(Instant::now);
                    pending.full = true;
                }
                Ok(_) => {}
                Err(e) => log::warn!("{e}"),
            }
        }
        for (name, _) in pod_names.iter().zip(&ready[2..]).filter(|(_, r)| **r) {
            let Some(socket) = watcher.pods.get_mut(name) else {
                continue;
            };
            match socket.drain() {
                Ok(changes) if !changes.is_empty() => {
                    pending.since.get_or_insert_with(Instant::now);
                    if !pending.pods.contains(name) {
                        pending.pods.push(name.clone());
                    }
                }
                Ok(_) => {}
                // The pod's namespace is going away: its attachment is DEL's business.
                Err(_) => {
                    watcher.pods.remove(name);
                }
            }
        }

        let now = Instant::now();
        let periodic = now >= next_full;
        let debounced = pending.since.is_some_and(|s| now >= watcher.due(s));
        if periodic || debounced {
            let work = Pending {
                full: pending.full || periodic,
                ..std::mem::take(&mut pending)
            };
            if let Err(e) = watcher.pass(&work) {
                log::warn!("pass failed: {e}");
            }
            if work.full {
                next_full = Instant::now() + interval;
            }
        }
    }
}

struct Watcher<'a> {
    node: Node,
    dirs: &'a [PathBuf],
    /// An event socket per pod namespace path of a live attachment.
    pods: HashMap<String, EventSocket>,
    debounce: Duration,
    /// Attachments already reported as unreachable.
    unreachable: HashSet<String>,
    /// When the last pass ended and how long it took.
    last_pass: Option<(Instant, Duration)>,
}

impl Watcher<'_> {
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

    fn pass(&mut self, work: &Pending) -> Result<(), String> {
        let started = Instant::now();
        let scope = if work.full {
            Scope::All
        } else {
            Scope::Pods(&work.pods)
        };
        let report = pass::run(&self.node, self.dirs, scope)?;
        self.last_pass = Some((Instant::now(), started.elapsed()));
        log_report(&report, work.since, started);
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
                Err(e) => log::warn!("not listening in pod namespace {path}: {e}"),
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
