//! Waiting for the container's link to arrive in its sandbox, bounded. The container's side of
//! host access (permanent neighbour entries for the node, routes to it, a veth's pod end) can
//! only be written inside the container's namespace, with the link there and up: the kernel
//! flushes a link's neighbour entries when it changes namespace or goes down.
//!
//! Docker 26 joins before the namespace exists and moves the link in from a prestart hook, with
//! no call to the driver after it: a waiter thread per Join polls (every millisecond at first)
//! until the link is inside, up, with its addresses. Docker 28 moves the link right after Join
//! and then calls ProgramExternalConnectivity before the container's process starts: that call
//! finishes the container's side itself (`Patience::Call`), so the first packet finds it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::host_side::Host;
use super::store::{Endpoint, Network};
use crate::error::Result;

/// What the wait needs of the driver's state, implemented by `driver::Driver`: the waiter
/// depends on this, not on the driver's module (which starts the waiters).
pub trait Joins: Send + 'static {
    /// The endpoint and its network while its container side is still to be made in
    /// `sandbox`; None once it is made, or the endpoint left or moved to another sandbox.
    fn awaiting(&self, id: &str, sandbox: &str) -> Option<(Endpoint, Network)>;
    fn host(&self) -> &Host;
    fn mark_completed(&mut self, id: &str);
}

/// How long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Patience {
    /// A waiter thread: until the container starts (Docker 26 starts it after the hook), at
    /// most `WAITER_BOUND`.
    Background,
    /// ProgramExternalConnectivity: only when the link has left the node (Docker 28), at most
    /// `CALL_BOUND`.
    Call,
}

/// A container that has not started this long after Join is not coming (its Join is undone
/// by Leave); reconcile and a restart of the driver still finish what is recorded.
const WAITER_BOUND: Duration = Duration::from_secs(60);
/// Docker has moved the link already; configuring it takes milliseconds.
const CALL_BOUND: Duration = Duration::from_secs(5);

/// Starts the waiter of one Join.
pub fn spawn_waiter<J: Joins>(shared: Arc<Mutex<J>>, endpoint_id: String, sandbox: String) {
    let spawned = thread::Builder::new()
        .name(format!("wait-{}", &endpoint_id[..endpoint_id.len().min(8)]))
        .spawn(move || {
            if let Err(e) =
                complete_when_ready(&shared, &endpoint_id, &sandbox, Patience::Background)
            {
                log::warn!("endpoint {endpoint_id}: the container's side: {e}");
            }
        });
    if let Err(e) = spawned {
        log::warn!("endpoint: cannot start the waiter for the container's link: {e}");
    }
}

/// Makes the container's side once the link is configured inside `sandbox`. Ok(true) when
/// it was made by this call; Ok(false) when there was nothing to do (already made, the
/// endpoint left, the link not moved yet at a `Call`, or the bound passed).
pub fn complete_when_ready<J: Joins>(
    shared: &Mutex<J>,
    endpoint_id: &str,
    sandbox_key: &str,
    patience: Patience,
) -> Result<bool> {
    let start = Instant::now();
    let bound = match patience {
        Patience::Background => WAITER_BOUND,
        Patience::Call => CALL_BOUND,
    };
    let mut sandbox = None;
    let mut last_error = None;
    loop {
        let awaited = lock(shared).awaiting(endpoint_id, sandbox_key);
        let Some((endpoint, _)) = awaited else {
            return Ok(false);
        };
        let step = (|| -> Result<bool> {
            if sandbox.is_none() {
                sandbox = lock(shared).host().open_sandbox(sandbox_key)?;
            }
            let Some(opened) = &sandbox else {
                return Ok(false);
            };
            let Some(link) = opened.configured_link(&endpoint)? else {
                return Ok(false);
            };
            let seen = Instant::now();
            let mut driver = lock(shared);
            // Checked again under the lock: a Leave may have come meanwhile.
            let Some((endpoint, network)) = driver.awaiting(endpoint_id, sandbox_key) else {
                return Ok(false);
            };
            driver.host().complete(&network, &endpoint, opened, &link)?;
            driver.mark_completed(endpoint_id);
            log::info!(
                "endpoint {endpoint_id}: container side made on {} in {:?}, {:?} after the wait began",
                link.name,
                seen.elapsed(),
                start.elapsed()
            );
            Ok(true)
        })();
        match step {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => {
                if patience == Patience::Call {
                    return Err(e);
                }
                last_error = Some(e);
            }
        }
        if patience == Patience::Call && lock(shared).host().link_on_node(&endpoint)? {
            // Docker 26: the link moves in later, from the prestart hook; the waiter is on it.
            return Ok(false);
        }
        let elapsed = start.elapsed();
        if elapsed > bound {
            return match last_error {
                Some(e) => Err(e),
                None => {
                    log::warn!(
                        "endpoint {endpoint_id}: its link did not arrive in {sandbox_key} within {bound:?}"
                    );
                    Ok(false)
                }
            };
        }
        thread::sleep(interval(elapsed));
    }
}

/// Fast at first (Docker moves the link within milliseconds of Join or of the namespace's
/// creation), slower for a container that takes long to start.
fn interval(elapsed: Duration) -> Duration {
    if elapsed < Duration::from_secs(2) {
        Duration::from_millis(1)
    } else if elapsed < Duration::from_secs(10) {
        Duration::from_millis(10)
    } else {
        Duration::from_millis(100)
    }
}

fn lock<J>(shared: &Mutex<J>) -> MutexGuard<'_, J> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
