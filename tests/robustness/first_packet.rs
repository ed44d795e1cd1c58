//! The first packet after a veth ADD. ADD returns when node <-> pod traffic flows: both ends
//! of the pair up with carrier and a working queue (the kernel's link watcher activates a
//! device's queue some time after carrier comes on; until then packets are dropped), and the
//! neighbour entries in place. Each ADD is followed at once by exactly one ping from the
//! node, sent from inside the test process (no process start in between), while busy loops
//! keep the CPUs loaded.

use crate::*;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// ADDs per worker, and workers running side by side.
const ADDS_PER_WORKER: usize = 25;
const WORKERS: usize = 4;
/// Busy loops in the background.
const LOAD_THREADS: usize = 6;

/// One raw ICMP socket in the node's namespace: one echo request, one wait for its reply.
struct Pinger {
    socket: OwnedFd,
    id: u16,
    seq: u16,
}

impl Pinger {
    /// Must be called on a thread that is inside the node's namespace.
    fn open(id: u16) -> Pinger {
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
        assert!(
            fd >= 0,
            "raw ICMP socket: {}",
            std::io::Error::last_os_error()
        );
        Pinger {
            socket: unsafe { OwnedFd::from_raw_fd(fd) },
            id,
            seq: 0,
        }
    }

    /// One echo request to `to`; true when its reply arrives within `deadline`.
    fn ping_once(&mut self, to: Ipv4Addr, deadline: Duration) -> bool {
        self.seq = self.seq.wrapping_add(1);
        let mut packet = [0u8; 16];
        packet[0] = 8; // echo request
        packet[4..6].copy_from_slice(&self.id.to_be_bytes());
        packet[6..8].copy_from_slice(&self.seq.to_be_bytes());
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(to.octets()),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: the buffer and the address outlive the call.
        let sent = unsafe {
            libc::sendto(
                self.socket.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&addr as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return false;
        }
        let end = Instant::now() + deadline;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let mut poll = libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd.
            if unsafe { libc::poll(&mut poll, 1, left.as_millis().max(1) as i32) } <= 0 {
                continue;
            }
            let mut buf = [0u8; 256];
            // SAFETY: reads into the buffer.
            let n = unsafe {
                libc::recv(
                    self.socket.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                )
            };
            if n > 20 && self.is_our_reply(&buf[..n as usize], to) {
                return true;
            }
        }
        false
    }

    /// An echo reply from `from` with our id and the current sequence number.
    fn is_our_reply(&self, ip_packet: &[u8], from: Ipv4Addr) -> bool {
        let header = usize::from(ip_packet[0] & 0x0f) * 4;
        let Some(icmp) = ip_packet.get(header..header + 8) else {
            return false;
        };
        ip_packet[12..16] == from.octets()
            && icmp[0] == 0
            && icmp[4..6] == self.id.to_be_bytes()
            && icmp[6..8] == self.seq.to_be_bytes()
    }
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Busy loops until dropped.
struct Load {
    stop: &'static AtomicBool,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    fn start(threads: usize) -> Load {
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let threads = (0..threads)
            .map(|_| {
                thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn the_first_ping_after_a_veth_add_is_answered() {
    let lan = Lan::new();
    let net = Spec::veth(Chaining::Interface, Family::V4)
        .range(100, 199)
        .build();
    let lost = Mutex::new(Vec::new());
    let node_ns = lan.node1.path();
    {
        let _load = Load::start(LOAD_THREADS);
        thread::scope(|s| {
            for worker in 0..WORKERS {
                let (lan, net, lost, node_ns) = (&lan, &net, &lost, &node_ns);
                s.spawn(move || {
                    let ns = File::open(node_ns).expect("the node's namespace");
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                    let mut pinger = Pinger::open(0x4d00 + worker as u16);
                    for n in 0..ADDS_PER_WORKER {
                        let pod = lan.pod(&format!("w{worker}p{n}"));
                        let at = Attachment::new(&pod);
                        let out = net.plugin.add(&lan.node1, &at, &net.our_conf());
                        let ip: Ipv4Addr = pod_ips(out.expect_ok())[0].parse().expect("IPv4");
                        if !pinger.ping_once(ip, Duration::from_secs(1)) {
                            lost.lock()
                                .unwrap()
                                .push(format!("worker {worker}, ADD {n}: {ip}"));
                        }
                        net.plugin.del(&lan.node1, &at, &net.our_conf()).expect_ok();
                    }
                });
            }
        });
    }
    let lost = lost.into_inner().unwrap();
    eprintln!(
        "first ping lost after {} of {} veth ADDs",
        lost.len(),
        WORKERS * ADDS_PER_WORKER
    );
    assert!(lost.is_empty(), "first ping lost: {lost:#?}");
    net.assert_nothing_left(&lan.node1);
}
