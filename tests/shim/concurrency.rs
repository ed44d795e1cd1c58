//! 32 pods added and deleted at once.

use crate::*;
use std::net::IpAddr;
use std::thread;

cases!(thirty_two_pods_added_and_deleted_concurrently: chained, interface);

fn thirty_two_pods_added_and_deleted_concurrently(chaining: Chaining) {
    const PODS: usize = 32;
    let lan = Lan::new();
    let net = Spec::new(chaining, Family::Dual).build();
    let pods: Vec<Pod> = (0..PODS).map(|i| lan.pod(&format!("p{i}"))).collect();
    let (lan_ref, net_ref) = (&lan, &net);

    // Each pod has its own runtime-side runner (result cache), as parallel runtime calls do.
    let added: Vec<(Conflist, Attachment, Vec<IpAddr>)> = thread::scope(|s| {
        let threads: Vec<_> = pods
            .iter()
            .map(|pod| {
                s.spawn(move || {
                    let mut list = net_ref.conflist();
                    let at = Attachment::new(pod);
                    let ips = result_ips(list.add(&lan_ref.node1, &at).expect_ok());
                    (list, at, ips)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("ADD"))
            .collect()
    });

    let all_ips: Vec<IpAddr> = added.iter().flat_map(|(_, _, ips)| ips.clone()).collect();
    let distinct: std::collections::HashSet<_> = all_ips.iter().collect();
    assert_eq!(distinct.len(), 2 * PODS, "every pod has its own addresses");
    for &ip in &all_ips {
        let route = host_route(&lan.node1, ip).unwrap_or_else(|| panic!("no route to {ip}"));
        assert_eq!(route["dev"], SHIM, "route to {ip}");
        let entry = neighbour(&lan.node1, SHIM, ip).unwrap_or_else(|| panic!("no entry for {ip}"));
        assert!(is_permanent(&entry), "{entry}");
    }
    for (list, at, _) in &added {
        list.check(&lan.node1, at).expect_ok();
    }
    for i in [0, PODS / 2, PODS - 1] {
        let (_, _, ips) = &added[i];
        for &ip in ips {
            assert_pings("NODE1 -> pod", &lan.node1, ip);
            assert_pings("pod -> NODE1", &pods[i], node_ip(&lan.node1, ip));
        }
    }

    let deleted: Vec<CniOutput> = thread::scope(|s| {
        let threads: Vec<_> = added
            .into_iter()
            .map(|(mut list, at, _)| s.spawn(move || list.del(&lan_ref.node1, &at)))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("DEL"))
            .collect()
    });
    for out in &deleted {
        out.expect_ok();
    }
    net.assert_clean(&lan.node1, &all_ips, "after 32 concurrent DELs");
}
