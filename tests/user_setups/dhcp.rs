//! DHCP in interface mode with a real DHCP server on the LAN: Debian's dnsmasq in PEER, the
//! reference `dhcp` IPAM plugin and its daemon in NODE1 (its socket under the test's
//! directory). Both daemons are stopped by PID. Every pod's lease must be released by DEL
//! (DHCPRELEASE seen by dnsmasq, the lease gone from its lease file), which needs the pod's
//! interface while IPAM DEL runs (issue 18, finding 4).

use super::common::*;
use super::{eventually, Process};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

/// dnsmasq's pool: away from the fixture's host-local ranges (100-199).
const POOL_START: &str = "10.99.0.210";
const POOL_END: &str = "10.99.0.219";
const PODS: usize = 3;

/// A daemon of the test, stopped by PID when dropped.
struct Daemon {
    what: &'static str,
    process: Process,
}

impl Daemon {
    fn start(what: &'static str, ns: &Netns, program: &str, args: &[&str], log: &Path) -> Daemon {
        let log = fs::File::create(log).expect("daemon log");
        let child = ns
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        Daemon {
            what,
            process: Process(child),
        }
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.process.0.try_wait() {
            panic!("{} exited: {status}", self.what);
        }
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// dnsmasq serving the LAN from PEER: DHCP only (no DNS: port 0), no configuration file of
/// the machine, no ping before offering (it would delay each offer by seconds), its lease
/// file and log under `dir`.
fn dhcp_server(lan: &Lan, dir: &TempDir) -> (Daemon, PathBuf, PathBuf) {
    let leases = dir.join("dnsmasq.leases");
    let log = dir.join("dnsmasq.log");
    let args = [
        "--keep-in-foreground".to_owned(),
        "--conf-file=/dev/null".to_owned(),
        "--no-resolv".to_owned(),
        "--no-hosts".to_owned(),
        "--port=0".to_owned(),
        "--interface=eth0".to_owned(),
        "--bind-interfaces".to_owned(),
        "--user=root".to_owned(),
        "--pid-file".to_owned(),
        "--no-ping".to_owned(),
        "--dhcp-authoritative".to_owned(),
        "--log-dhcp".to_owned(),
        format!("--log-facility={}", log.display()),
        format!("--dhcp-leasefile={}", leases.display()),
        format!("--dhcp-range={POOL_START},{POOL_END},255.255.255.0,1h"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = Daemon::start(
        "dnsmasq",
        &lan.peer,
        "dnsmasq",
        &args,
        &dir.join("dnsmasq.out"),
    );
    assert!(
        eventually(Duration::from_secs(5), || read(&log)
            .contains("DHCP, IP range")),
        "dnsmasq did not start: {}{}",
        read(&log),
        read(&dir.join("dnsmasq.out"))
    );
    server.assert_running();
    (server, leases, log)
}

/// The reference `dhcp` daemon in NODE1, listening on a socket under `dir`.
fn dhcp_client_daemon(lan: &Lan, dir: &TempDir) -> (Daemon, PathBuf) {
    let socket = dir.join("dhcp.sock");
    let socket_arg = socket.to_str().expect("UTF-8 path").to_owned();
    let mut daemon = Daemon::start(
        "the dhcp daemon",
        &lan.node1,
        "/usr/lib/cni/dhcp",
        &["daemon", "-socketpath", &socket_arg],
        &dir.join("dhcp-daemon.log"),
    );
    assert!(
        eventually(Duration::from_secs(5), || socket.exists()),
        "the dhcp daemon did not listen: {}",
        read(&dir.join("dhcp-daemon.log"))
    );
    daemon.assert_running();
    (daemon, socket)
}

#[test]
fn del_releases_every_dhcp_lease_in_interface_mode() {
    let lan = Lan::new();
    let dir = TempDir::new("dhcp");
    let (_server, leases, log) = dhcp_server(&lan, &dir);
    let (_client, socket) = dhcp_client_daemon(&lan, &dir);
    let net = Spec::new(Chaining::Interface, Family::V4).build();
    let mut conf = net.ours.clone();
    conf["ipam"] = json!({"type": "dhcp", "daemonSocketPath": socket});

    // Added at once, as a node starts pods (each DHCP exchange takes a second or two: the
    // first DISCOVER leaves while the new link is still coming up).
    let pods: Vec<Pod> = (0..PODS).map(|n| lan.pod(&format!("dhcp{n}"))).collect();
    let started = Instant::now();
    let results: Vec<serde_json::Value> = thread::scope(|scope| {
        let adds: Vec<_> = pods
            .iter()
            .map(|pod| {
                let (net, lan, conf) = (&net, &lan, &conf);
                scope.spawn(move || {
                    net.plugin
                        .add(&lan.node1, &Attachment::new(pod), conf)
                        .expect_ok()
                        .clone()
                })
            })
            .collect();
        adds.into_iter()
            .map(|add| add.join().expect("ADD"))
            .collect()
    });
    eprintln!("dhcp: {PODS} ADDs at once took {:?}", started.elapsed());
    let pods: Vec<(Pod, Attachment, String, String)> = pods
        .into_iter()
        .zip(&results)
        .map(|(pod, result)| {
            let ip = pod_ips(result)[0].clone();
            let mac = pod.mac("eth0");
            assert!(read(&leases).contains(&ip), "dnsmasq leased {ip}");
            let at = Attachment::new(&pod);
            (pod, at, ip, mac)
        })
        .collect();
    // A leased pod is a pod like any other: the node reaches it through the shim.
    assert!(lan.node1.ping(&pods[0].2), "node -> pod with a DHCP lease");

    for (_pod, at, ip, mac) in &pods {
        let started = Instant::now();
        net.plugin.del(&lan.node1, at, &conf).expect_ok();
        eprintln!("dhcp: DEL of {ip} took {:?}", started.elapsed());
        let released = format!("DHCPRELEASE(eth0) {ip} {mac}");
        assert!(
            eventually(Duration::from_secs(3), || read(&log).contains(&released)),
            "dnsmasq never saw the release of {ip} ({mac}); its log:\n{}\nthe dhcp daemon's:\n{}",
            read(&log),
            read(&dir.join("dhcp-daemon.log"))
        );
        assert!(
            !read(&leases).contains(ip.as_str()),
            "{ip} still leased: {}",
            read(&leases)
        );
    }
    for (pod, ..) in &pods {
        assert!(!pod.has_link("eth0"), "DEL removed the pod's interface");
    }
    net.assert_no_host_access(
        &lan.node1,
        &pods
            .iter()
            .map(|(_, _, ip, _)| ip.parse().unwrap())
            .collect::<Vec<_>>(),
        "after DEL",
    );
}
