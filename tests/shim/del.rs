//! DEL succeeds whatever is already gone, and a late DEL of an old pod leaves a newer pod with
//! the same address alone.

use crate::*;

/// What is already gone (or how the runtime calls) when DEL comes.
#[derive(Clone, Copy, Debug)]
enum Degraded {
    Nothing,
    Repeated,
    NoPrevResult,
    NetnsGone,
    NetnsGoneAndEmpty,
    ShimRemoved,
    RecordRemoved,
    MasterRemoved,
}

impl Degraded {
    /// Dual stack where the cleanup depends on what DEL is given; IPv4 where the case is about
    /// what is gone (an IPv6 address costs a second of duplicate address detection on ADD).
    fn family(self) -> Family {
        match self {
            Degraded::Nothing | Degraded::NoPrevResult => Family::Dual,
            _ => Family::V4,
        }
    }
}

cases!(del_succeeds_whatever_is_gone: chained, interface);

fn del_succeeds_whatever_is_gone(chaining: Chaining) {
    use Degraded::*;
    let lan = Lan::new();
    // In this order: the master's removal ends the node's LAN.
    let cases = [
        Nothing,
        Repeated,
        NoPrevResult,
        NetnsGone,
        NetnsGoneAndEmpty,
        ShimRemoved,
        RecordRemoved,
        MasterRemoved,
    ];
    for case in cases {
        let what = format!("DEL with {case:?}");
        let net = Spec::new(chaining, case.family()).build();
        let mut list = net.conflist();
        let mut pod = attach(
            &lan,
            &lan.node1,
            &mut list,
            &format!("{case:?}").to_lowercase(),
        );
        assert_pings(&what, &lan.node1, pod.ips[0]);
        let mut at = pod.at.clone();
        match case {
            Nothing => {}
            Repeated => {
                list.del(&lan.node1, &at).expect_ok();
            }
            // A runtime that lost its result cache.
            NoPrevResult => list = net.conflist(),
            NetnsGone => drop(pod.pod.take()),
            NetnsGoneAndEmpty => {
                drop(pod.pod.take());
                at = at.without_netns();
            }
            ShimRemoved => {
                lan.node1.ip(["link", "del", SHIM]);
            }
            RecordRemoved => std::fs::remove_file(net.record_path(&at)).expect("record file"),
            MasterRemoved => {
                lan.node1.ip(["link", "del", "eth0"]);
            }
        };
        if let (MasterRemoved, Chaining::Chained) = (case, chaining) {
            // The reference macvlan's DEL fails without its master ("Link not found", from
            // loading its configuration), whatever runs before it. Ours runs first, as a
            // runtime runs the list, and must succeed.
            let mut conf = net.our_conf_at("1.0.0");
            conf["prevResult"] = list.cached(&at).expect("cached result").clone();
            let out = Plugin::ours().del(&lan.node1, &at, &conf);
            assert!(out.success(), "{what}: {out:?}");
            net.assert_no_host_access(&lan.node1, &pod.ips, &what);
            continue;
        }
        let out = list.del(&lan.node1, &at);
        assert!(out.success(), "{what}: {out:?}");
        if let Some(pod) = &pod.pod {
            assert!(!pod.has_link("eth0"), "{what}: the pod's interface is left");
        }
        match case {
            // Without its record the plugin cannot know what it made; DEL must still succeed
            // so that the plugins behind it release the pod's address.
            RecordRemoved => assert_eq!(
                host_local_allocations(&net.data_dir),
                Vec::<String>::new(),
                "{what}: host-local allocations"
            ),
            _ => net.assert_clean(&lan.node1, &pod.ips, &what),
        }
    }
}

cases!(late_del_leaves_the_newer_pods_route_alone: chained, interface);

fn late_del_leaves_the_newer_pods_route_alone(chaining: Chaining) {
    let lan = Lan::new();
    let net = Spec::new(chaining, Family::Dual).range(100, 100).build();
    let mut list = net.conflist();
    let mut old = attach(&lan, &lan.node1, &mut list, "old");
    let old_mac = old.pod().mac("eth0");
    // The old pod is gone (its namespace too) but its DEL has not come yet, and the IPAM
    // store has forgotten it: its addresses are handed out again.
    drop(old.pod.take());
    // Gone for real: the kernel dismantles a deleted namespace in the background, and until
    // then its macvlan still answers the new pod's IPv6 duplicate address detection.
    wait_until_master_forgets(&lan.node1, &old_mac);
    for allocation in host_local_allocations(&net.data_dir) {
        std::fs::remove_file(net.data_dir.join(&allocation)).expect("allocation file");
    }
    let new = attach(&lan, &lan.node1, &mut list, "new");
    assert_eq!(new.ips, old.ips, "the new pod got the old pod's addresses");
    let new_mac = new.pod().mac("eth0");

    list.del(&lan.node1, &old.at).expect_ok();

    for &ip in &new.ips {
        let route = host_route(&lan.node1, ip).unwrap_or_else(|| panic!("route to {ip} removed"));
        assert_eq!(route["dev"], SHIM);
        let entry =
            neighbour(&lan.node1, SHIM, ip).unwrap_or_else(|| panic!("entry for {ip} removed"));
        assert_eq!(
            entry["lladdr"],
            new_mac.as_str(),
            "{ip} still leads to the new pod"
        );
        assert_pings("NODE1 -> new pod", &lan.node1, ip);
    }
    list.check(&lan.node1, &new.at).expect_ok();
    list.del(&lan.node1, &new.at).expect_ok();
    net.assert_clean(&lan.node1, &new.ips, "after both DELs");
}

/// Waits until no macvlan with `mac` hangs off NODE's eth0 any more (its unicast address list,
/// which `bridge fdb show` lists for a device that is no bridge).
fn wait_until_master_forgets(node: &Netns, mac: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while node
        .run(["bridge", "fdb", "show", "dev", "eth0"])
        .contains(mac)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the deleted pod's macvlan {mac} is still on eth0 after 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
