//! The pod's macvlan in interface mode: created directly inside the pod's namespace (the
//! master stays on the node), configured from the IPAM result, verified by CHECK.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::pod::Pod;
use crate::error::{Context, Error, Result};
use crate::protocol::result::{CniOutput, RouteEntry};
use crate::system::netlink::{Link, MacvlanMode, MacvlanSpec, Netlink, Route};
use crate::system::netns::Netns;
use crate::system::{sysctl, Mac};

/// How long ADD waits for IPv6 duplicate address detection before giving up.
const DAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the pod's interface waits for an answer to its DAD probe (the kernel's default
/// is `retrans_time_ms` = 1000, after a random delay of up to `router_solicitation_delay`,
/// 1 s): a LAN host that holds the address answers within microseconds to a few ms. Set only
/// while ADD waits for DAD, then put back.
const DAD_RETRANS_MS: &str = "100";

/// How often ADD looks whether DAD has finished.
const DAD_POLL: Duration = Duration::from_millis(5);

/// Refuses an interface name the pod already uses, before any IP is allocated for it.
pub fn ensure_name_free(pod: &Netlink, ifname: &str) -> Result<()> {
    if pod
        .link_by_name(ifname)
        .context("looking up CNI_IFNAME in the pod")?
        .is_some()
    {
        return Err(Error::config(format!(
            "the pod already has an interface named {ifname:?} (CNI_IFNAME)"
        )));
    }
    Ok(())
}

/// A name no other ADD uses at the same time, for the moments between creation and rename
/// (the pod's namespace may hold any name, and the kernel refuses duplicates).
fn temporary_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("mvh{:08x}", std::process::id() ^ nanos)
}

/// How the pod's macvlan is made: on which master, in which mode, at which MTU (None: the
/// master's), with which MAC (None: the kernel picks a random one; else the runtime asked for
/// it), in which link group.
pub struct NewMacvlan<'a> {
    pub master: &'a Link,
    pub mode: MacvlanMode,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub group: u32,
}

/// Creates the macvlan inside the pod, under a temporary name and down, in the attachment's
/// link group, and returns it (index, MAC, MTU). It needs no address yet, so it is made
/// while the IPAM plugin runs; `configure` finishes it. On failure nothing is left.
pub fn create(node: &Netlink, pod: &Pod, new: &NewMacvlan) -> Result<Link> {
    let master = new.master;
    let (pod_ns, pod) = (&pod.ns, &pod.netlink);
    let temporary = temporary_name();
    node.create_macvlan(&MacvlanSpec {
        name: temporary.clone(),
        master_index: master.index,
        mode: new.mode,
        mtu: new.mtu,
        mac: new.mac,
        netns_fd: Some(pod_ns.as_fd()),
        group: Some(new.group),
    })
    .with_context(|| format!("creating the pod's macvlan on master {}", master.name))?;
    let link = pod
        .link_by_name(&temporary)
        .context("looking up the new macvlan in the pod")?
        .ok_or_else(|| {
            Error::internal(format!(
                "macvlan {temporary} vanished from the pod right after creation"
            ))
        })?;
    match link.mac {
        Some(_) => Ok(link),
        None => {
            let _ = pod.delete_link(link.index);
            Err(Error::internal(format!(
                "macvlan {temporary} has no MAC address"
            )))
        }
    }
}

/// What the new macvlan needs before its addresses are known, done while the IPAM plugin
/// runs: its name, and gratuitous ARP when it comes up (the LAN learns the new MAC of a reused
/// address at once). Over netlink, not /proc/sys (see `Netlink::set_arp_notify`). On failure
/// the caller removes the link.
pub fn prepare(pod: &Netlink, index: u32, ifname: &str) -> Result<()> {
    // Renamed while down: older kernels refuse to rename an up link.
    pod.rename_link(index, ifname)
        .with_context(|| format!("renaming the pod's macvlan to {ifname}"))?;
    pod.set_arp_notify(index)
        .with_context(|| format!("setting arp_notify on {ifname} in the pod"))
}

/// Gives the prepared macvlan the IPAM result's addresses and routes, and brings it up; with
/// IPv6, waits for duplicate address detection. On failure the caller removes the link.
pub fn configure(
    pod_ns: &Netns,
    pod: &Netlink,
    index: u32,
    ifname: &str,
    ipam: &CniOutput,
) -> Result<()> {
    let has_v6 = ipam.ips.iter().any(|ip| ip.address.is_ipv6());
    // Set while the link is down: DAD starts when it comes up with its addresses. Unsolicited
    // NA on link up (ndisc_notify) is the IPv6 twin of arp_notify. IPv6 has these only as
    // sysctls: a thread in the pod, paid by dual-stack pods only.
    let dad_timing = if has_v6 {
        let mut settings = vec![(
            format!("net/ipv6/conf/{ifname}/ndisc_notify"),
            "1".to_owned(),
        )];
        settings.extend(fast_dad(ifname));
        let mut previous = sysctl::swap_in(pod_ns, &settings)
            .with_context(|| format!("configuring IPv6 on {ifname} in the pod"))?;
        // Only the DAD timing is put back.
        previous.remove(0);
        Some(previous)
    } else {
        None
    };
    for ip in &ipam.ips {
        pod.add_address(index, ip.address, false)
            .with_context(|| format!("adding address {} to {ifname}", ip.address))?;
    }
    pod.set_link_up(index).map_err(|e| {
        // The kernel checks a macvlan's MAC against its master and siblings only when it
        // comes up; only a requested MAC can collide.
        if e.errno() == Some(nix::libc::EADDRINUSE) {
            Error::internal(format!(
                "{ifname}'s MAC address is already in use on its master (the master's own or \
                 another macvlan's): ask for another MAC"
            ))
        } else {
            Error::from(e).context(format!("bringing {ifname} up"))
        }
    })?;
    if let Some(previous) = dad_timing {
        wait_for_dad(pod, index, ifname)?;
        // Neighbour discovery of the running pod keeps the namespace's own timing.
        sysctl::write_in(pod_ns, &previous)
            .with_context(|| format!("restoring the neighbour discovery timing of {ifname}"))?;
    }
    for route in &ipam.routes {
        let gateway = route.gw.or_else(|| {
            ipam.ips
                .iter()
                .filter_map(|ip| ip.gateway)
                .find(|gw| gw.is_ipv4() == route.dst.is_ipv4())
        });
        pod.add_route(&pod_route(route, gateway, index), false)
            .with_context(|| format!("adding route {} in the pod", describe(route, gateway)))?;
    }
    Ok(())
}

/// DAD without its random start delay and with a short wait for an answer (`configure` puts
/// the old values back when DAD is over).
fn fast_dad(ifname: &str) -> [(String, String); 2] {
    [
        (
            format!("net/ipv6/conf/{ifname}/router_solicitation_delay"),
            "0".to_owned(),
        ),
        (
            format!("net/ipv6/neigh/{ifname}/retrans_time_ms"),
            DAD_RETRANS_MS.to_owned(),
        ),
    ]
}

fn pod_route(route: &RouteEntry, gateway: Option<std::net::IpAddr>, index: u32) -> Route {
    Route {
        destination: Some(route.dst),
        gateway,
        output_index: Some(index),
        scope_link: gateway.is_none(),
        ..Route::default()
    }
}

fn describe(route: &RouteEntry, gateway: Option<std::net::IpAddr>) -> String {
    match gateway {
        Some(gw) => format!("{} via {gw}", route.dst),
        None => route.dst.to_string(),
    }
}

/// IPv6 addresses are usable only after duplicate address detection; a runtime expects the
/// pod's addresses to work when ADD returns, as they do with the reference plugins.
fn wait_for_dad(pod: &Netlink, index: u32, ifname: &str) -> Result<()> {
    let deadline = Instant::now() + DAD_TIMEOUT;
    loop {
        let addresses = pod
            .addresses(index)
            .with_context(|| format!("reading the addresses of {ifname}"))?;
        if let Some(failed) = addresses.iter().find(|a| a.dad_failed) {
            return Err(Error::internal(format!(
                "address {} on {ifname} is a duplicate: another host on the LAN already uses it (IPv6 duplicate address detection failed)",
                failed.network.ip()
            )));
        }
        if !addresses.iter().any(|a| a.tentative) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::internal(format!(
                "duplicate address detection on {ifname} did not finish within {DAD_TIMEOUT:?}"
            )));
        }
        std::thread::sleep(DAD_POLL);
    }
}

/// CHECK: the pod's macvlan is there, in the configured mode on the master, with every address
/// and route of the result it was given.
pub fn verify(
    pod: &Netlink,
    ifname: &str,
    mode: MacvlanMode,
    master: &Link,
    prev: &CniOutput,
) -> Result<()> {
    let link = pod
        .link_by_name(ifname)
        .context("looking up the pod's interface")?
        .ok_or_else(|| Error::internal(format!("interface {ifname} does not exist in the pod")))?;
    if link.kind.as_deref() != Some("macvlan") {
        return Err(Error::internal(format!(
            "{ifname} in the pod is not a macvlan"
        )));
    }
    if link.macvlan_mode != Some(mode) {
        return Err(Error::internal(format!(
            "{ifname} is in macvlan mode {}, the configuration says {mode}",
            link.macvlan_mode
                .map(|m| m.to_string())
                .unwrap_or_else(|| "unknown".into())
        )));
    }
    if link.parent_index != Some(master.index) {
        return Err(Error::internal(format!(
            "{ifname} is not a macvlan of master {}",
            master.name
        )));
    }
    let addresses = pod
        .addresses(link.index)
        .context("reading the pod's addresses")?;
    for ip in &prev.ips {
        if !addresses.iter().any(|a| a.network == ip.address) {
            return Err(Error::internal(format!(
                "address {} is missing on {ifname}",
                ip.address
            )));
        }
    }
    let routes = pod.routes().context("reading the pod's routes")?;
    for route in &prev.routes {
        let present = routes.iter().any(|r| {
            let dst_matches = match r.destination {
                Some(d) => d == route.dst,
                None => {
                    route.dst.prefix() == 0
                        && r.gateway
                            .is_some_and(|g| g.is_ipv4() == route.dst.is_ipv4())
                }
            };
            dst_matches && (route.gw.is_none() || r.gateway == route.gw)
        });
        if !present {
            return Err(Error::internal(format!(
                "route {} is missing in the pod",
                describe(route, route.gw)
            )));
        }
    }
    Ok(())
}
