//! Waiting for new links to pass traffic. A link that is up is not yet usable: carrier comes
//! on, then the kernel's link watcher (a work queue, late under load) sets the operstate and
//! replaces the `noop` queue, which drops every packet, by the real one. ADD returns only
//! when node <-> pod traffic flows, so it polls the links briefly, with a bound.

use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::error::{Context, Error, Result};
use crate::system::netlink::Netlink;

/// How long ADD waits at most; afterwards it goes on with a warning (the link watcher will
/// still run, the path just is not ready yet).
const BOUND: Duration = Duration::from_secs(2);
/// The first pause between polls; doubled up to `LONGEST_PAUSE`. The link watcher usually
/// runs within a millisecond.
const FIRST_PAUSE: Duration = Duration::from_micros(200);
const LONGEST_PAUSE: Duration = Duration::from_millis(20);

/// Returns once every link (netlink connection, index, label for messages) passes traffic,
/// or after `BOUND`.
pub fn wait_until_passing(links: &[(&Netlink, u32, &str)]) -> Result<()> {
    let start = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut pending: Vec<&(&Netlink, u32, &str)> = links.iter().collect();
    loop {
        let mut still = Vec::new();
        for entry in pending {
            let (netlink, index, label) = *entry;
            let link = netlink
                .link_by_index(index)
                .with_context(|| format!("looking up {label}"))?
                .ok_or_else(|| Error::internal(format!("{label} vanished")))?;
            if !link.passes_traffic {
                still.push(entry);
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= BOUND {
            let labels: Vec<&str> = still.iter().map(|e| e.2).collect();
            log::warn!(
                "{} did not pass traffic within {BOUND:?} (no carrier or queue yet); going on",
                labels.join(", ")
            );
            return Ok(());
        }
        pending = still;
        sleep(pause);
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}
