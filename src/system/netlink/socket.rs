//! One request and its replies on a blocking NETLINK_ROUTE socket.
//!
//! The kernel answers every request before the next one is read, so a plain blocking socket
//! and a loop are enough: no runtime, no background task. A request carries a sequence number
//! of its own; replies to anything else (a request an earlier caller gave up on) are skipped.
//! An exchange ends with the ACK (NLMSG_ERROR with code 0), an error (NLMSG_ERROR with the
//! negative errno), NLMSG_DONE after a multi-part dump, or the single reply of a lookup.

use std::io;
use std::sync::Mutex;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR,
    NLM_F_MULTIPART, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::Socket;

/// The kernel caps one datagram of a dump at about 32 KiB when the reader offers at least that
/// much; one buffer of twice that holds every datagram without a second read. A larger single
/// reply (a link with many VFs) is measured first and the buffer grows for it.
const RECEIVE_BUFFER: usize = 64 * 1024;

/// How often a dump the kernel marked inconsistent (NLM_F_DUMP_INTR: the table changed while
/// it was being read) is started again before giving up.
const DUMP_ATTEMPTS: usize = 5;

/// Why an exchange failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The kernel refused the request with this (positive) errno.
    Kernel(i32),
    /// The socket itself failed.
    Io(io::Error),
    /// A reply that could not be understood, or a dump that kept being interrupted.
    Protocol(String),
}

pub(super) struct RouteSocket {
    socket: Socket,
    /// Requests are serialised: one exchange at a time owns the sequence and the buffer.
    state: Mutex<State>,
}

struct State {
    sequence: u32,
    buffer: Vec<u8>,
}

impl RouteSocket {
    /// A socket in the calling thread's network namespace; it stays bound to that namespace.
    pub(super) fn open() -> io::Result<RouteSocket> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        // Strict checking lets the kernel filter dumps (addresses of one link, the main table)
        // instead of sending the whole table, and rejects malformed requests instead of
        // silently ignoring what it does not understand.
        socket.set_netlink_get_strict_chk(true)?;
        // Errors then carry only the header of our request, not all of it back.
        socket.set_cap_ack(true)?;
        Ok(RouteSocket {
            socket,
            state: Mutex::new(State {
                sequence: 0,
                buffer: Vec::with_capacity(RECEIVE_BUFFER),
            }),
        })
    }

    /// Sends `message` with `flags` (NLM_F_REQUEST is added) and collects every reply.
    pub(super) fn request(
        &self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Failure> {
        // A panic while holding the lock leaves nothing half-done that matters: the next
        // exchange uses a new sequence number and skips stale replies.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut request = NetlinkMessage::from(message);
        request.header.flags = NLM_F_REQUEST | flags;
        for _ in 0..DUMP_ATTEMPTS {
            state.sequence = state.sequence.wrapping_add(1);
            request.header.sequence_number = state.sequence;
            request.finalize();
            let mut bytes = vec![0; request.buffer_len()];
            request.serialize(&mut bytes);
            self.socket.send(&bytes, 0).map_err(Failure::Io)?;
            let (replies, interrupted) = self.replies(&mut state, flags)?;
            if !interrupted || flags & NLM_F_DUMP != NLM_F_DUMP {
                return Ok(replies);
            }
        }
        Err(Failure::Protocol(format!(
            "the dump was interrupted by concurrent changes {DUMP_ATTEMPTS} times"
        )))
    }

    /// Reads until the exchange of `state.sequence` ends. The flag is NLM_F_DUMP_INTR.
    fn replies(
        &self,
        state: &mut State,
        flags: u16,
    ) -> Result<(Vec<RouteNetlinkMessage>, bool), Failure> {
        let sequence = state.sequence;
        let mut replies = Vec::new();
        let mut interrupted = false;
        loop {
            self.receive(&mut state.buffer)?;
            let mut rest = &state.buffer[..];
            while !rest.is_empty() {
                let length = NetlinkBuffer::new_checked(rest)
                    .map(|b| b.length() as usize)
                    .ok()
                    .filter(|length| (16..=rest.len()).contains(length))
                    .ok_or_else(|| Failure::Protocol("a truncated netlink message".into()))?;
                let bytes = &rest[..length];
                // Messages are 4-byte aligned within a datagram.
                rest = &rest[length.next_multiple_of(4).min(rest.len())..];
                let header = NetlinkBuffer::new(bytes);
                if header.sequence_number() != sequence {
                    continue;
                }
                let multipart = header.flags() & NLM_F_MULTIPART != 0;
                interrupted |= header.flags() & NLM_F_DUMP_INTR != 0;
                // The last reply of a lookup, unless an ACK was asked for and follows it.
                let last = !multipart && flags & NLM_F_ACK == 0;
                let message = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes) {
                    Ok(message) => message,
                    // A message netlink-packet-route cannot parse (an attribute from a newer
                    // kernel) is not one the plugin needs: skip it.
                    Err(error) => {
                        log::warn!("skipping a netlink reply that cannot be parsed: {error}");
                        if last {
                            return Ok((replies, interrupted));
                        }
                        continue;
                    }
                };
                match message.payload {
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            Some(code) => Err(Failure::Kernel(-code.get())),
                            None => Ok((replies, interrupted)),
                        };
                    }
                    NetlinkPayload::Done(done) if done.code < 0 => {
                        return Err(Failure::Kernel(-done.code))
                    }
                    NetlinkPayload::Done(_) => return Ok((replies, interrupted)),
                    NetlinkPayload::InnerMessage(reply) => {
                        replies.push(reply);
                        if last {
                            return Ok((replies, interrupted));
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Reads one datagram into `buffer` (replacing its contents), whatever its size.
    fn receive(&self, buffer: &mut Vec<u8>) -> Result<(), Failure> {
        loop {
            buffer.clear();
            // MSG_TRUNC makes a peek report the datagram's full size, so that a reply larger
            // than the buffer is never cut.
            let size = match self
                .socket
                .recv(buffer, nix::libc::MSG_PEEK | nix::libc::MSG_TRUNC)
            {
                Ok(size) => size,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Io(e)),
            };
            buffer.clear();
            buffer.reserve(size.max(RECEIVE_BUFFER));
            match self.socket.recv(buffer, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP};
    use netlink_packet_route::link::{LinkAttribute, LinkMessage};
    use netlink_packet_route::RouteNetlinkMessage;

    use super::super::test_support::{net, veth_pair_up};
    use super::super::Netlink;
    use super::{Failure, RouteSocket};
    use crate::system::netns::test_support::TempNetns;

    #[test]
    fn a_dump_larger_than_one_datagram_is_collected_whole() {
        let temp = TempNetns::new("dump");
        let netlink = Netlink::open_in(&temp.ns).unwrap();
        let (a, _) = veth_pair_up(&netlink);
        // About 80 bytes per address: 1,000 of them need several 32 KiB datagrams.
        for i in 0..1000u32 {
            let address = format!("10.50.{}.{}/32", i / 250, i % 250 + 1);
            netlink.add_address(a, net(&address), false).unwrap();
        }
        let listed = netlink.addresses(a).unwrap();
        let ours = listed
            .iter()
            .filter(|x| x.network.to_string().starts_with("10.50."))
            .count();
        assert_eq!(ours, 1000);
        assert!(listed.iter().any(|x| x.network == net("10.50.3.250/32")));
    }

    #[test]
    fn refusals_carry_the_errno_and_the_next_exchange_stays_in_step() {
        let temp = TempNetns::new("errno");
        let socket = temp.ns.run(RouteSocket::open).unwrap().unwrap();
        let mut missing = LinkMessage::default();
        missing.header.index = 9999;
        match socket.request(RouteNetlinkMessage::DelLink(missing), NLM_F_ACK) {
            Err(Failure::Kernel(errno)) => assert_eq!(errno, nix::libc::ENODEV),
            other => panic!("expected ENODEV, got {other:?}"),
        }
        // A lookup answers with exactly one message, the one asked for.
        let mut lo = LinkMessage::default();
        lo.header.index = 1;
        let replies = socket.request(RouteNetlinkMessage::GetLink(lo), 0).unwrap();
        assert_eq!(replies.len(), 1);
        match &replies[0] {
            RouteNetlinkMessage::NewLink(link) => {
                assert!(link
                    .attributes
                    .contains(&LinkAttribute::IfName("lo".into())))
            }
            other => panic!("expected NewLink, got {other:?}"),
        }
        // A dump of a fresh namespace: its loopback only, ended by NLMSG_DONE.
        let replies = socket
            .request(
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                NLM_F_DUMP,
            )
            .unwrap();
        assert_eq!(replies.len(), 1);
    }
}
