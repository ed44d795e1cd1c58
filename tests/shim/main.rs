//! Host access through the shared shim (issue 4), end to end on the test LAN.
//!
//! Every scenario runs in chained mode (the reference `macvlan` + `host-local`, then
//! `macvlan-host`, cniVersion 1.0.0) and in interface mode (`macvlan-host` alone with `ipam`,
//! cniVersion 1.1.0); the ones about addresses also run for IPv4, IPv6 and dual stack. A
//! scenario is one function; `cases!` turns it into one `#[test]` per setup. Networks come from
//! the shared fixture (`common::Spec`); one module per part of the shim's life.

#[path = "../common/mod.rs"]
mod common;

mod arp;
mod check;
mod concurrency;
mod del;
mod gc_status;
mod jumbo;
mod reachability;
mod refusals;
mod shared;

use common::*;

/// NODE1 and its pod reach each other in every family of the pod, by ping and TCP.
fn assert_node_and_pod_talk(lan: &Lan, pod: &Attached) {
    let _node_server = lan.node1.tcp_server(TCP_PORT);
    let _pod_server = pod.pod().tcp_server(TCP_PORT);
    for &ip in &pod.ips {
        let node = node_ip(&lan.node1, ip);
        assert_pings("NODE1 -> pod", &lan.node1, ip);
        assert_pings("pod -> NODE1", pod.pod(), node);
        assert_tcp("NODE1 -> pod", &lan.node1, ip);
        assert_tcp("pod -> NODE1", pod.pod(), node);
    }
}
