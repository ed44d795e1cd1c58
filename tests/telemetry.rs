//! `reconcile --watch --metrics-address` (issue 22): the counters move with a real
//! disturbance, `/healthz` turns bad when the loop is stuck (a wedged pass, a stopped
//! process), and hostile clients of the listener never delay a repair.
//!
//! The watcher runs inside NODE1 (`host_repair::Bed`) and listens on NODE1's own loopback;
//! the test's HTTP clients are sockets opened by threads inside NODE1.

mod common;
mod host_repair;

use common::*;
use host_repair::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Generous: a repair takes milliseconds; this bounds a test that would otherwise hang.
const REPAIRED_WITHIN: Duration = Duration::from_secs(10);

fn start_watcher(bed: &Bed, logs: &TempDir, extra: &[&str]) -> Watcher {
    let mut args = vec!["--metrics-address", METRICS_ADDRESS];
    args.extend_from_slice(extra);
    Watcher::start(bed.node(), &[bed.state.path()], logs, &args)
}

fn shim_pod_ip4(bed: &Bed) -> String {
    bed.pods.iter().find(|p| !p.veth).unwrap().ip4.clone()
}

#[test]
fn a_deleted_route_moves_the_node_route_counters() {
    let bed = Bed::new();
    let logs = TempDir::new("watch-log");
    let watcher = start_watcher(&bed, &logs, &[]);
    let node = bed.node();

    let before = scrape(node);
    assert_eq!(
        sample(&before, "macvlan_host_passes_total{cause=\"startup\"}"),
        1.0
    );
    assert_eq!(sample(&before, "macvlan_host_attachments"), 4.0);
    assert_eq!(sample(&before, "macvlan_host_shims"), 1.0);
    assert_eq!(sample(&before, "macvlan_host_attachments_unrepaired"), 0.0);
    assert!(sample(&before, "macvlan_host_last_full_pass_timestamp_seconds") > 1.7e9);
    assert_eq!(http_get_ok(node, "/readyz").0, 200);
    assert_eq!(http_get_ok(node, "/healthz").0, 200);
    assert_eq!(http_get_ok(node, "/nothing").0, 404);

    // One pod's /32 route, deleted in the node's namespace.
    let ip = shim_pod_ip4(&bed);
    node.ip(["route", "del", &ip, "dev", SHIM]);
    bed.wait_until_healthy("route deleted", REPAIRED_WITHIN);

    let after = scrape(node);
    let moved = |name: &str| sample(&after, name) - sample(&before, name);
    let route_event = "{object=\"node_route\",cause=\"event\"}";
    assert_eq!(
        moved(&format!("macvlan_host_drift_total{route_event}")),
        1.0,
        "{}",
        watcher.log()
    );
    assert_eq!(
        moved(&format!("macvlan_host_repairs_total{route_event}")),
        1.0
    );
    // Nothing else was repaired: the counters name the object.
    for object in [
        "host_device",
        "hardening",
        "node_neighbour",
        "pod_neighbour",
        "pod_route",
    ] {
        assert_eq!(
            moved(&format!(
                "macvlan_host_repairs_total{{object=\"{object}\",cause=\"event\"}}"
            )),
            0.0,
            "{object}"
        );
    }
    assert!(moved("macvlan_host_events_total{namespace=\"node\",kind=\"route\"}") >= 1.0);
    assert!(moved("macvlan_host_passes_total{cause=\"event\"}") >= 1.0);
    assert!(moved("macvlan_host_pass_duration_seconds_count") >= 1.0);
    assert_eq!(moved("macvlan_host_errors_total{kind=\"repair\"}"), 0.0);
    assert_eq!(http_get_ok(node, "/readyz").0, 200);
}

/// Holds the node lock of `node` (as a concurrent ADD would) until told to let go.
fn hold_node_lock(node: &Netns) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let path = node.path();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = thread::spawn(move || {
        let ns = std::fs::File::open(path).unwrap();
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let lock = macvlan_host::system::lock::NodeLock::acquire().unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
        drop(lock);
    });
    locked_rx.recv().unwrap();
    (release_tx, holder)
}

#[test]
fn liveness_turns_bad_when_a_pass_is_wedged_and_when_the_process_is_stopped() {
    let bed = Bed::new();
    let logs = TempDir::new("watch-log");
    let watcher = start_watcher(&bed, &logs, &[]);
    let node = bed.node();
    assert_eq!(http_get_ok(node, "/healthz").0, 200);

    // A wedged pass: the node lock is held, and a disturbance makes the loop pass.
    let (release, holder) = hold_node_lock(node);
    let wedged_at = Instant::now();
    node.ip(["route", "del", &shim_pod_ip4(&bed), "dev", SHIM]);
    let (status, body) = loop {
        let (status, body) = http_get_ok(node, "/healthz");
        if status != 200 || wedged_at.elapsed() > Duration::from_secs(15) {
            break (status, body);
        }
        thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, 503, "{body}\n{}", watcher.log());
    assert!(body.contains("stuck"), "{body}");
    // Not before the bound (5 s): a pass may take a while.
    assert!(wedged_at.elapsed() >= Duration::from_secs(5));
    release.send(()).unwrap();
    holder.join().unwrap();
    bed.wait_until_healthy("lock released", REPAIRED_WITHIN);
    assert_eq!(http_get_ok(node, "/healthz").0, 200);

    // A stopped process answers nothing, listener included: the kubelet's probe times out.
    let stopped = Stopped::new(watcher.pid());
    let asked = Instant::now();
    assert_eq!(
        http_get(node, METRICS_ADDRESS, "/healthz", Duration::from_secs(2)),
        None,
        "a stopped watcher must not answer"
    );
    assert!(asked.elapsed() >= Duration::from_secs(2));
    drop(stopped);
    assert_eq!(http_get_ok(node, "/healthz").0, 200);
}

/// SIGSTOP now, SIGCONT when dropped (also when the test fails).
struct Stopped(i32);

impl Stopped {
    fn new(pid: u32) -> Stopped {
        let pid = pid as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP).unwrap();
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::SIGCONT,
        );
    }
}

/// Raises this process's descriptor limit to its hard limit (a thousand client sockets).
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

#[test]
fn hostile_clients_never_delay_a_repair() {
    raise_fd_limit();
    let bed = Bed::new();
    let logs = TempDir::new("watch-log");
    let watcher = start_watcher(&bed, &logs, &[]);
    let node = bed.node();
    let address: SocketAddr = METRICS_ADDRESS.parse().unwrap();

    // A thousand connections that send nothing, held open by the client.
    let silent: Vec<TcpStream> = node.in_netns(move || {
        (0..1000)
            .filter_map(|_| TcpStream::connect_timeout(&address, Duration::from_millis(200)).ok())
            .collect()
    });
    // A huge request: refused once it passes the limit, without reading the rest.
    let huge = node.in_netns(move || {
        let mut s = TcpStream::connect(address).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let junk = vec![b'a'; 64 * 1024];
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nX: ");
        let _ = s.write_all(&junk);
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    });
    assert!(
        huge.starts_with("HTTP/1.1 431 "),
        "a huge request: {huge:?}"
    );
    // A client that sends its request one byte at a time, slowly, beside the repair.
    let slow = {
        let path = node.path();
        thread::spawn(move || {
            let ns = std::fs::File::open(path).unwrap();
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let mut s = TcpStream::connect(address).unwrap();
            for byte in b"GET /metrics HTTP/1.1\r\n" {
                if s.write_all(&[*byte]).is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // Meanwhile, repairs happen as fast as ever.
    let started = Instant::now();
    node.ip(["route", "del", &shim_pod_ip4(&bed), "dev", SHIM]);
    bed.wait_until_healthy("route deleted under a flood", REPAIRED_WITHIN);
    let took = started.elapsed();
    eprintln!(
        "repaired {took:?} after the disturbance, with {} idle connections open",
        silent.len()
    );
    assert!(
        silent.len() >= 100,
        "only {} connections were made",
        silent.len()
    );
    let latency = last_repair_latency_ms(&watcher.log());
    eprintln!("the watcher's own measure: {latency} ms from the first notification");
    assert!(
        // The loop waiting for the listener would show as seconds (a silent connection
        // lasts 5 s); a repair takes milliseconds.
        latency < 2000.0,
        "a repair waited for the listener: {latency} ms\n{}",
        watcher.log()
    );

    // A silent connection is closed by the server, at its deadline.
    let closed = silent.into_iter().last().unwrap();
    closed
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = (&closed).read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server closes a silent connection");
    slow.join().unwrap();

    // And the listener serves again.
    assert_eq!(http_get_ok(node, "/healthz").0, 200);
    assert!(scrape(node).len() > 50);
}

/// From the watcher's log line "repaired N attachment(s) X ms after the first notification".
fn last_repair_latency_ms(log: &str) -> f64 {
    log.lines()
        .filter_map(|l| l.split_once(" ms after the first notification"))
        .filter_map(|(head, _)| head.rsplit(' ').next()?.parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no repair logged:\n{log}"))
}
