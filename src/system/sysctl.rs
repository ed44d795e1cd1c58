//! Sysctls under /proc/sys. The files under /proc/sys/net belong to the network namespace of
//! the thread that opens them, so a sysctl of another namespace is written from a thread inside
//! it (`Netns::run`).

use super::netns::Netns;
use super::SysResult;

/// Writes each `(key, value)`; a key is a path below /proc/sys, e.g.
/// `net/ipv4/conf/eth0/arp_notify`. Runs on a thread inside `ns`.
pub fn write_in(ns: &Netns, settings: &[(String, String)]) -> SysResult<()> {
    todo!("{:?} {settings:?}", ns.path())
}

/// Writes each `(key, value)` in the calling thread's own namespace.
pub fn write(settings: &[(String, String)]) -> SysResult<()> {
    todo!("{settings:?}")
}

/// Reads one key in the calling thread's own namespace (trailing newline removed).
pub fn read(key: &str) -> SysResult<String> {
    todo!("{key}")
}
