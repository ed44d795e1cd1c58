//! DEL finds the node end by its derived name and succeeds in every degraded case.

use crate::*;
use std::fs;

cases!(del_finds_the_node_end_without_prev_result_or_namespace {
    through_the_record: (true),
    through_the_derived_name_without_the_record: (false),
});

/// The pod's namespace has lost its name (a process still holds it, so the pair lives on) and
/// macvlan-host gets neither prevResult nor CNI_NETNS: DEL still removes the node end, found
/// through the record or, without one, through its name derived from the attachment.
fn del_finds_the_node_end_without_prev_result_or_namespace(keep_record: bool) {
    let lan = Lan::new();
    let pod = lan.pod("d");
    let mut net = Spec::veth(Chaining::Chained, Family::V4).build();
    let node_end = last_interface(&net.add_result(&lan.node1, &pod));
    let at = Attachment::new(&pod).without_netns();
    let record = net.record_path(&Attachment::new(&pod));
    let holder = Holder::hold(&pod);
    drop(pod);
    assert!(
        lan.node1.has_link(&node_end),
        "the pair outlives the netns name"
    );
    if !keep_record {
        fs::remove_file(&record).expect("remove the record");
    }

    net.del_ours_only(&lan.node1, &at);
    assert!(!lan.node1.has_link(&node_end), "{node_end} removed by DEL");
    assert_no_host_side(&lan.node1);
    assert_eq!(net.state_files("attachments"), Vec::<String>::new());

    // The rest of the conflist (reference macvlan, host-local) after it.
    net.del(&lan.node1, &at);
    drop(holder);
    assert_eq!(host_local_allocations(&net.data_dir), Vec::<String>::new());
    if keep_record {
        assert_eq!(net.state_files("owners"), Vec::<String>::new());
    }
}

/// What is already gone when the runtime deletes the attachment.
#[derive(Clone, Copy, Debug)]
enum Degraded {
    /// Nothing: DEL is repeated, the second time without prevResult.
    Repeated,
    /// The pod's namespace (and with it the whole pair).
    NamespaceGone,
    /// The attachment record.
    RecordRemoved,
    /// The veth's node end, deleted by hand (and with it the pod end).
    NodeEndRemoved,
}

cases!(del_leaves_nothing {
    chained_repeated: (Chaining::Chained, Degraded::Repeated),
    chained_namespace_gone: (Chaining::Chained, Degraded::NamespaceGone),
    chained_record_removed: (Chaining::Chained, Degraded::RecordRemoved),
    chained_node_end_removed: (Chaining::Chained, Degraded::NodeEndRemoved),
    interface_repeated: (Chaining::Interface, Degraded::Repeated),
    interface_namespace_gone: (Chaining::Interface, Degraded::NamespaceGone),
    interface_record_removed: (Chaining::Interface, Degraded::RecordRemoved),
    interface_node_end_removed: (Chaining::Interface, Degraded::NodeEndRemoved),
});

/// DEL succeeds and leaves nothing: no veth, host route or neighbour entry on the node, no
/// record, no route owner, no IP allocation.
fn del_leaves_nothing(chaining: Chaining, case: Degraded) {
    let lan = Lan::new();
    let mut pod = Some(lan.pod("d"));
    let mut net = Spec::veth(chaining, Family::Dual).build();
    let node_end = last_interface(&net.add_result(&lan.node1, pod.as_ref().unwrap()));
    let at = Attachment::new(pod.as_ref().unwrap());
    match case {
        Degraded::Repeated => {}
        Degraded::NamespaceGone => drop(pod.take()),
        Degraded::RecordRemoved => {
            fs::remove_file(net.record_path(&Attachment::new(pod.as_ref().unwrap())))
                .expect("remove the record")
        }
        Degraded::NodeEndRemoved => {
            lan.node1.ip(["link", "del", &node_end]);
        }
    }

    net.del(&lan.node1, &at);
    if let Degraded::Repeated = case {
        net.del(&lan.node1, &at);
        net.del_ours_only(&lan.node1, &at);
    }
    assert_no_host_side(&lan.node1);
    assert_eq!(net.state_files("attachments"), Vec::<String>::new());
    assert_eq!(host_local_allocations(&net.data_dir), Vec::<String>::new());
    assert_eq!(net.state_files("owners"), Vec::<String>::new());
    if let Some(pod) = &pod {
        assert!(!pod.has_link("eth0"), "the pod's macvlan removed");
        assert!(!pod.has_link("host-eth0"), "the pod's veth end removed");
    }
}
