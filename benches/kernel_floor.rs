//! The floor of `make bench`: the kernel work every macvlan plugin does for a pod, done by the
//! smallest program that can: create a macvlan on the master directly inside the pod's
//! namespace, give it one address and bring it up (ADD); delete it (DEL). No IPAM, no state,
//! no host access, no checks. It speaks just enough CNI (the `CNI_*` variables, `master` and
//! `address` on stdin) for the bench to run it exactly like a plugin, so its numbers include
//! the same process start.
//!
//! Built by scripts/bench.sh (statically, like the plugin it is compared with) and run only
//! by benches/cni_bench; `cargo test` builds it and it does nothing without `CNI_COMMAND`.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;

use ipnetwork::IpNetwork;
use macvlan_host::system::netlink::{MacvlanMode, MacvlanSpec, Netlink};
use nix::sched::{setns, CloneFlags};

fn main() {
    let Ok(command) = std::env::var("CNI_COMMAND") else {
        println!("kernel_floor: run by benches/cni_bench as a CNI plugin; nothing to do here");
        return;
    };
    if let Err(message) = run(&command) {
        println!("{{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":{message:?}}}");
        std::process::exit(1);
    }
}

fn run(command: &str) -> Result<(), String> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let (netns, ifname) = (var("CNI_NETNS")?, var("CNI_IFNAME")?);
    let mut stdin = String::new();
    std::io::stdin()
        .read_to_string(&mut stdin)
        .map_err(|e| e.to_string())?;
    let conf: serde_json::Value = serde_json::from_str(&stdin).map_err(|e| e.to_string())?;
    let pod = File::open(&netns).map_err(|e| format!("{netns}: {e}"))?;
    match command {
        "ADD" => add(&conf, &pod, &ifname)?,
        "DEL" => del(&pod, &ifname)?,
        other => return Err(format!("unsupported CNI_COMMAND {other}")),
    }
    println!("{{\"cniVersion\":\"1.0.0\"}}");
    Ok(())
}

fn add(conf: &serde_json::Value, pod: &File, ifname: &str) -> Result<(), String> {
    let master = conf["master"].as_str().ok_or("no master")?;
    let address: IpNetwork = conf["address"]
        .as_str()
        .ok_or("no address")?
        .parse()
        .map_err(|e| format!("address: {e}"))?;
    let node = Netlink::open().map_err(|e| e.to_string())?;
    let master = node
        .link_by_name(master)
        .map_err(|e| e.to_string())?
        .ok_or("no such master")?;
    node.create_macvlan(&MacvlanSpec {
        name: ifname.to_owned(),
        master_index: master.index,
        mode: MacvlanMode::Bridge,
        mtu: None,
        mac: None,
        netns_fd: Some(pod.as_fd()),
        group: None,
    })
    .map_err(|e| e.to_string())?;
    // The program is single-threaded: it simply moves into the pod for the rest.
    let netlink = enter(pod)?;
    let link = netlink
        .link_by_name(ifname)
        .map_err(|e| e.to_string())?
        .ok_or("the new macvlan is missing")?;
    netlink
        .add_address(link.index, address, false)
        .map_err(|e| e.to_string())?;
    netlink.set_link_up(link.index).map_err(|e| e.to_string())
}

fn del(pod: &File, ifname: &str) -> Result<(), String> {
    let netlink = enter(pod)?;
    if let Some(link) = netlink.link_by_name(ifname).map_err(|e| e.to_string())? {
        netlink.delete_link(link.index).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn enter(pod: &File) -> Result<Netlink, String> {
    setns(pod, CloneFlags::CLONE_NEWNET).map_err(|e| format!("entering the pod: {e}"))?;
    Netlink::open().map_err(|e| e.to_string())
}
