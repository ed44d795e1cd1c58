//! rtnetlink notifications: a socket subscribed to the multicast groups of links, addresses,
//! routes and neighbours of one network namespace. The watcher (`commands::watch`) only needs
//! to know *that* something changed and roughly what; it re-reads the kernel's state itself,
//! so the messages are classified by their header and never decoded further.

use std::os::fd::{AsFd, BorrowedFd};

use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use nix::libc;

use super::netns::Netns;
use super::{SysError, SysResult};

/// The groups a change to host access can show up in.
const GROUPS: [u32; 7] = [
    libc::RTNLGRP_LINK,
    libc::RTNLGRP_NEIGH,
    libc::RTNLGRP_IPV4_IFADDR,
    libc::RTNLGRP_IPV6_IFADDR,
    libc::RTNLGRP_IPV4_ROUTE,
    libc::RTNLGRP_IPV6_ROUTE,
    libc::RTNLGRP_IPV6_IFINFO,
];

/// What kind of object a notification was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Link,
    Address,
    Route,
    Neighbour,
    /// The socket's buffer overflowed (ENOBUFS): notifications were lost, assume anything.
    Lost,
}

/// A non-blocking socket that receives the notifications of the namespace it was opened in.
pub struct EventSocket {
    socket: Socket,
    buffer: Vec<u8>,
}

impl EventSocket {
    /// Subscribes in the calling thread's namespace.
    pub fn open() -> SysResult<EventSocket> {
        let mut socket = Socket::new(NETLINK_ROUTE)
            .map_err(|e| SysError::io("opening an rtnetlink event socket", e))?;
        socket
            .bind_auto()
            .map_err(|e| SysError::io("binding the rtnetlink event socket", e))?;
        for group in GROUPS {
            socket
                .add_membership(group)
                .map_err(|e| SysError::io(format!("subscribing to rtnetlink group {group}"), e))?;
        }
        // A burst (a flushed table, a deleted link with many routes) must not stall the
        // kernel; it overflows into ENOBUFS, which reads as Change::Lost.
        let _ = socket.set_rx_buf_sz(4 << 20);
        socket
            .set_non_blocking(true)
            .map_err(|e| SysError::io("making the rtnetlink event socket non-blocking", e))?;
        Ok(EventSocket {
            socket,
            buffer: vec![0; 64 * 1024],
        })
    }

    /// Subscribes inside `ns` (a pod): the socket stays bound to the namespace it was made in.
    pub fn open_in(ns: &Netns) -> SysResult<EventSocket> {
        ns.run(EventSocket::open)?
    }

    /// Reads every notification queued now, without blocking; returns what they were about.
    pub fn drain(&mut self) -> SysResult<Vec<Change>> {
        let mut changes = Vec::new();
        loop {
            let mut chunk = &mut self.buffer[..];
            match self.socket.recv(&mut chunk, 0) {
                Ok(len) => {
                    let len = len.min(self.buffer.len());
                    classify(&self.buffer[..len], &mut changes);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(changes),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => changes.push(Change::Lost),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SysError::io("reading rtnetlink notifications", e)),
            }
        }
    }
}

impl AsFd for EventSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Walks the netlink headers of one datagram (length u32, type u16, flags u16, seq, pid).
fn classify(mut datagram: &[u8], changes: &mut Vec<Change>) {
    while datagram.len() >= 16 {
        let len = u32::from_ne_bytes(datagram[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(datagram[4..6].try_into().expect("2 bytes"));
        let change = match kind {
            libc::RTM_NEWLINK | libc::RTM_DELLINK => Some(Change::Link),
            libc::RTM_NEWADDR | libc::RTM_DELADDR => Some(Change::Address),
            libc::RTM_NEWROUTE | libc::RTM_DELROUTE => Some(Change::Route),
            libc::RTM_NEWNEIGH | libc::RTM_DELNEIGH => Some(Change::Neighbour),
            _ => None,
        };
        changes.extend(change);
        // Messages are 4-byte aligned; a bogus length ends the walk instead of looping.
        let step = (len + 3) & !3;
        if len < 16 || step > datagram.len() {
            break;
        }
        datagram = &datagram[step..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::netns::test_support::TempNetns;

    #[test]
    fn headers_are_classified_and_a_bad_length_stops_the_walk() {
        let header = |kind: u16, len: u32| {
            let mut h = len.to_ne_bytes().to_vec();
            h.extend(kind.to_ne_bytes());
            h.extend([0u8; 10]);
            h.resize(len.max(16) as usize, 0);
            h
        };
        let mut datagram = header(libc::RTM_DELROUTE, 20);
        datagram.extend(header(libc::RTM_NEWNEIGH, 16));
        datagram.extend(header(libc::RTM_NEWLINK, 9999));
        let mut changes = Vec::new();
        classify(&datagram, &mut changes);
        assert_eq!(
            changes,
            [Change::Route, Change::Neighbour, Change::Link],
            "a truncated last message is still counted, then the walk ends"
        );
    }

    #[test]
    fn a_change_in_the_namespace_is_reported_and_only_there() {
        let watched = TempNetns::new("events");
        let other = TempNetns::new("events");
        let mut events = EventSocket::open_in(&watched.ns).unwrap();
        other.ip(&["link", "set", "lo", "up"]);
        assert!(events.drain().unwrap().is_empty());
        watched.ip(&["link", "set", "lo", "up"]);
        // Notifications are queued before `ip` returns.
        let changes = events.drain().unwrap();
        assert!(changes.contains(&Change::Link), "{changes:?}");
        assert!(events.drain().unwrap().is_empty());
    }
}
