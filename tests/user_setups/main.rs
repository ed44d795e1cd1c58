//! Configurations users run that the rest of the suite did not (issue 18): a MAC the runtime
//! asks for and Multus-style `ips`, a Linux bridge as the master, DHCP with a real DHCP server
//! on the LAN, an upgrade from the previous release. One module per setup.

#[path = "../common/mod.rs"]
mod common;

mod bridge_master;
mod dhcp;
mod requested_mac;
mod upgrade;

use std::process::Child;
use std::time::{Duration, Instant};

/// A process a test started inside one of its namespaces, stopped by its PID when dropped
/// (`nsenter` execs the program, so the child's PID is the program's).
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `done` every 10 ms for up to `limit`; true once it holds.
pub fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
