//! Two networks on one master, each with its own `stateDir`, share the shim. Concurrent first
//! ADDs must both succeed (one creates the shim, the other adopts it), and one network's last
//! DEL must never take the shim from under the other's ADD: every ADD that succeeds leaves
//! its pod reachable from the node.

use crate::*;
use std::thread;

const ROUNDS: usize = 30;

fn network(name: &'static str, first: u16) -> Net {
    Spec::new(Chaining::Interface, Family::V4)
        .name(name)
        .range(first, first + 19)
        .build()
}

/// ADD of `at` in `net`; the pod's IPv4 address, or the error.
fn add(node: &Netns, net: &Net, at: &Attachment) -> Result<String, String> {
    let out = net.plugin.add(node, at, &net.our_conf());
    if out.success() {
        Ok(pod_ips(&out.stdout)[0].clone())
    } else {
        Err(error_message(&out))
    }
}

fn del(node: &Netns, net: &Net, at: &Attachment) {
    net.plugin.del(node, at, &net.our_conf()).expect_ok();
}

/// Exactly one ping, no retry: the ADD has returned, the path must work now.
fn reached(node: &Netns, ip: &str) -> bool {
    node.exec(["ping", "-n", "-c1", "-W2", ip]).status.success()
}

#[test]
fn networks_with_different_state_dirs_share_one_shim_safely() {
    let lan = Lan::new();
    let node = &lan.node1;
    let nets = [network("net-a", 100), network("net-b", 120)];
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let pods = [lan.pod(&format!("a{round}")), lan.pod(&format!("b{round}"))];
        let ats = [Attachment::new(&pods[0]), Attachment::new(&pods[1])];
        // Both networks' first ADD at once: no shim yet.
        let ips: Vec<Result<String, String>> = thread::scope(|s| {
            let adds: Vec<_> = (0..2)
                .map(|i| {
                    s.spawn({
                        let (net, at) = (&nets[i], &ats[i]);
                        move || add(node, net, at)
                    })
                })
                .collect();
            adds.into_iter()
                .map(|h| h.join().expect("ADD thread"))
                .collect()
        });
        for (i, ip) in ips.iter().enumerate() {
            match ip {
                Ok(ip) if !reached(node, ip) => {
                    failures.push(format!("round {round}: first ADD {i}: {ip} unreachable"))
                }
                Ok(_) => {}
                Err(e) => failures.push(format!("round {round}: first ADD {i} failed: {e}")),
            }
        }
        // B's pod goes; then A's last DEL runs while B's ADD (again its first) reuses the shim.
        del(node, &nets[1], &ats[1]);
        let again = Attachment::new(&pods[1]).with_ifname("net1");
        let b_ip = thread::scope(|s| {
            let adding = s.spawn(|| add(node, &nets[1], &again));
            del(node, &nets[0], &ats[0]);
            adding.join().expect("ADD thread")
        });
        match b_ip {
            Ok(ip) if !reached(node, &ip) => failures.push(format!(
                "round {round}: ADD beside the other network's last DEL: {ip} unreachable"
            )),
            Ok(_) => {}
            Err(e) => failures.push(format!(
                "round {round}: ADD beside the other network's last DEL failed: {e}"
            )),
        }
        del(node, &nets[1], &again);
        assert!(
            !node.has_link(SHIM),
            "round {round}: the shim outlives its last pod"
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for net in &nets {
        net.assert_nothing_left(node);
    }
}
