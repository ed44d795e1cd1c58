//! Links: lookups, macvlans and veth pairs (also created straight into another namespace),
//! renaming, bringing up, deleting one link or a whole group.

use std::os::fd::AsRawFd;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, InetDevConf, InfoData, InfoKind, InfoMacVlan, InfoVeth,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode as KernelMacvlanMode,
    State as OperState,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::{found, Link, MacvlanMode, MacvlanSpec, Netlink, VethSpec};
use crate::system::{Mac, SysError, SysResult};

impl Netlink {
    pub fn link_by_name(&self, name: &str) -> SysResult<Option<Link>> {
        // No link can carry a name the kernel would refuse; answering "none" (rather than
        // ERANGE) keeps a DEL for something that could never have been created idempotent.
        if valid_link_name(name).is_err() {
            return Ok(None);
        }
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        self.get_link(message, &format!("cannot look up link {name}"))
    }

    /// Sets `net/ipv4/conf/<link>/arp_notify=1` over netlink: unlike a /proc/sys path, whose
    /// lookup grows with the number of network namespaces on the machine (the kernel keeps
    /// one dentry per namespace under /proc/sys/net), this costs the same on a node with a
    /// thousand pods.
    pub fn set_arp_notify(&self, index: u32) -> SysResult<()> {
        // Only non-zero fields are sent: this one.
        let mut conf = InetDevConf::default();
        conf.arp_notify = 1;
        let mut message = LinkMessage::default();
        message.header.index = index;
        message
            .attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![
                AfSpecInet::DevConfRequest(conf),
            ])]));
        let context = format!("cannot set arp_notify on link index {index}");
        self.execute(RouteNetlinkMessage::SetLink(message), NLM_F_ACK, &context)
            .map(drop)
    }

    pub fn link_by_index(&self, index: u32) -> SysResult<Option<Link>> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        self.get_link(message, &format!("cannot look up link index {index}"))
    }

    /// Every link of the namespace: a dump, for a namespace of one container (Docker names
    /// the interface it moves in only then; it is found by its MAC).
    pub fn links(&self) -> SysResult<Vec<Link>> {
        let replies = self.execute(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
            "cannot list links",
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(link) => Some(parse_link(link)),
                _ => None,
            })
            .collect())
    }

    fn get_link(&self, message: LinkMessage, context: &str) -> SysResult<Option<Link>> {
        let answer = self.execute(RouteNetlinkMessage::GetLink(message), 0, context);
        let replies = match answer {
            Err(e) if e.errno() == Some(nix::libc::ENODEV) => return Ok(None),
            other => other?,
        };
        Ok(replies.into_iter().find_map(|reply| match reply {
            RouteNetlinkMessage::NewLink(link) => Some(parse_link(link)),
            _ => None,
        }))
    }

    pub fn create_macvlan(&self, spec: &MacvlanSpec) -> SysResult<()> {
        self.check_link_name(&spec.name, "cannot create macvlan")?;
        let mut message = LinkMessage::default();
        let attributes = &mut message.attributes;
        attributes.push(LinkAttribute::IfName(spec.name.clone()));
        attributes.push(LinkAttribute::Link(spec.master_index));
        if let Some(mtu) = spec.mtu {
            attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = spec.mac {
            attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        if let Some(fd) = spec.netns_fd {
            attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
        }
        if let Some(group) = spec.group {
            attributes.push(LinkAttribute::Group(group));
        }
        attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                spec.mode.to_kernel(),
            )])),
        ]));
        let target = match spec.netns_fd {
            Some(fd) => format!(" into the namespace of fd {}", fd.as_raw_fd()),
            None => String::new(),
        };
        let context = format!(
            "cannot create macvlan {} ({:?} mode) on master link index {}{target}",
            spec.name, spec.mode, spec.master_index
        );
        self.execute(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &context,
        )
        .map(drop)
    }

    pub fn create_veth(&self, spec: &VethSpec) -> SysResult<()> {
        self.check_link_name(&spec.name, "cannot create veth")?;
        self.check_link_name(&spec.peer_name, "cannot create veth peer")?;
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer_name.clone()));
        if let Some(mac) = spec.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        if let Some(mtu) = spec.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(fd) = spec.peer_netns_fd {
            peer.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
        }
        if let Some(group) = spec.peer_group {
            peer.attributes.push(LinkAttribute::Group(group));
        }
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(spec.name.clone()));
        if let Some(mac) = spec.mac {
            message
                .attributes
                .push(LinkAttribute::Address(mac.0.to_vec()));
        }
        if let Some(mtu) = spec.mtu {
            message.attributes.push(LinkAttribute::Mtu(mtu));
        }
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        let target = match spec.peer_netns_fd {
            Some(fd) => format!(" in the namespace of fd {}", fd.as_raw_fd()),
            None => String::new(),
        };
        let context = format!(
            "cannot create veth {} with peer {}{target}",
            spec.name, spec.peer_name
        );
        self.execute(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &context,
        )
        .map(drop)
    }

    pub fn rename_link(&self, index: u32, new_name: &str) -> SysResult<()> {
        self.check_link_name(new_name, &format!("cannot rename link index {index}"))?;
        let mut message = LinkMessage::default();
        message.header.index = index;
        message
            .attributes
            .push(LinkAttribute::IfName(new_name.to_string()));
        let context = format!("cannot rename link index {index} to {new_name}");
        self.execute(RouteNetlinkMessage::SetLink(message), NLM_F_ACK, &context)
            .map(drop)
    }

    pub fn set_link_up(&self, index: u32) -> SysResult<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        let context = format!("cannot set link index {index} up");
        self.execute(RouteNetlinkMessage::SetLink(message), NLM_F_ACK, &context)
            .map(drop)
    }

    /// Sets a link's MTU (`ip link set DEV mtu N`).
    pub fn set_mtu(&self, index: u32, mtu: u32) -> SysResult<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.attributes.push(LinkAttribute::Mtu(mtu));
        let context = format!("cannot set the MTU of link index {index} to {mtu}");
        self.execute(RouteNetlinkMessage::SetLink(message), NLM_F_ACK, &context)
            .map(drop)
    }

    /// Sets a link's MAC (`ip link set DEV address MAC`); a macvlan takes it while up, and
    /// keeps its routes and neighbour entries.
    pub fn set_mac(&self, index: u32, mac: Mac) -> SysResult<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message
            .attributes
            .push(LinkAttribute::Address(mac.0.to_vec()));
        let context = format!("cannot set the MAC of link index {index} to {mac}");
        self.execute(RouteNetlinkMessage::SetLink(message), NLM_F_ACK, &context)
            .map(drop)
    }

    /// Deletes a link; Ok(false) when it did not exist.
    pub fn delete_link(&self, index: u32) -> SysResult<bool> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        let context = format!("cannot delete link index {index}");
        found(self.execute(RouteNetlinkMessage::DelLink(message), NLM_F_ACK, &context))
    }

    /// Deletes every link of `group` in one request. The kernel then waits for one RCU grace
    /// period for all of them, where deleting them one by one waits once per link.
    pub fn delete_link_group(&self, group: u32) -> SysResult<()> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::Group(group));
        let context = format!("cannot delete link group {group}");
        self.execute(RouteNetlinkMessage::DelLink(message), NLM_F_ACK, &context)
            .map(drop)
    }

    /// Catches what the kernel would only answer with a bare EINVAL or ERANGE.
    fn check_link_name(&self, name: &str, context: &str) -> SysResult<()> {
        valid_link_name(name).map_err(|reason| {
            SysError::other(format!("{context} {name:?} in {}: {reason}", self.label))
        })
    }
}

/// The kernel's rules for interface names (dev_valid_name).
fn valid_link_name(name: &str) -> Result<(), &'static str> {
    // IFNAMSIZ is 16, including the terminating NUL.
    if name.is_empty() || name.len() > 15 {
        return Err("an interface name has 1 to 15 bytes");
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err("an interface name cannot be . or .. nor contain /, : or whitespace");
    }
    Ok(())
}

impl MacvlanMode {
    fn to_kernel(self) -> KernelMacvlanMode {
        match self {
            MacvlanMode::Private => KernelMacvlanMode::Private,
            MacvlanMode::Vepa => KernelMacvlanMode::Vepa,
            MacvlanMode::Bridge => KernelMacvlanMode::Bridge,
            MacvlanMode::Passthru => KernelMacvlanMode::Passthrough,
            MacvlanMode::Source => KernelMacvlanMode::Source,
        }
    }

    fn from_kernel(mode: &KernelMacvlanMode) -> Option<MacvlanMode> {
        match mode {
            KernelMacvlanMode::Private => Some(MacvlanMode::Private),
            KernelMacvlanMode::Vepa => Some(MacvlanMode::Vepa),
            KernelMacvlanMode::Bridge => Some(MacvlanMode::Bridge),
            KernelMacvlanMode::Passthrough => Some(MacvlanMode::Passthru),
            KernelMacvlanMode::Source => Some(MacvlanMode::Source),
            _ => None,
        }
    }
}

fn parse_link(message: LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        up: message.header.flags.contains(LinkFlags::Up),
        kind: None,
        macvlan_mode: None,
        parent_index: None,
        link_netnsid: None,
        passes_traffic: false,
        ipv4_conf: None,
        ipv6_conf: None,
    };
    let lower_up = message.header.flags.contains(LinkFlags::LowerUp);
    let (mut oper_up, mut queue_active) = (false, false);
    for attribute in message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Address(bytes) => link.mac = Mac::from_slice(&bytes),
            LinkAttribute::Mtu(mtu) => link.mtu = mtu,
            LinkAttribute::Link(parent) => link.parent_index = Some(parent),
            LinkAttribute::LinkNetNsId(id) => link.link_netnsid = Some(id),
            LinkAttribute::OperState(state) => oper_up = state == OperState::Up,
            LinkAttribute::Qdisc(qdisc) => queue_active = qdisc != "noop",
            LinkAttribute::AfSpecUnspec(families) => {
                for family in families {
                    match family {
                        AfSpecUnspec::Inet(items) => {
                            link.ipv4_conf = items.into_iter().find_map(|item| match item {
                                AfSpecInet::DevConf(conf) => Some(conf),
                                _ => None,
                            })
                        }
                        AfSpecUnspec::Inet6(items) => {
                            link.ipv6_conf = items.into_iter().find_map(|item| match item {
                                AfSpecInet6::DevConf(conf) => Some(conf),
                                _ => None,
                            })
                        }
                        _ => {}
                    }
                }
            }
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                        LinkInfo::Data(InfoData::MacVlan(data)) => {
                            link.macvlan_mode = data.iter().find_map(|item| match item {
                                InfoMacVlan::Mode(mode) => MacvlanMode::from_kernel(mode),
                                _ => None,
                            });
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    link.passes_traffic = lower_up && oper_up && queue_active;
    link
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use serde_json::Value;

    use super::super::test_support::*;
    use super::super::*;
    use crate::system::netns::test_support::TempNetns;

    #[test]
    fn a_link_group_goes_in_one_request_and_only_that_group() {
        let temp = TempNetns::new("group");
        let netlink = Netlink::open_in(&temp.ns).unwrap();
        for (name, peer, group) in [
            ("g1", "p1", Some(7)),
            ("g2", "p2", Some(7)),
            ("k1", "q1", None),
        ] {
            netlink
                .create_veth(&VethSpec {
                    name: name.into(),
                    mac: None,
                    peer_name: peer.into(),
                    peer_mac: None,
                    peer_netns_fd: None,
                    peer_group: group,
                    mtu: None,
                })
                .unwrap();
        }
        netlink.delete_link_group(7).unwrap();
        // The grouped peers went, and with them their pairs; the rest stayed.
        for gone in ["g1", "p1", "g2", "p2"] {
            assert_eq!(netlink.link_by_name(gone).unwrap(), None, "{gone}");
        }
        assert!(netlink.link_by_name("k1").unwrap().is_some());
    }

    #[test]
    fn open_binds_to_the_calling_threads_namespace_and_lookups_only_read() {
        let temp = TempNetns::new("lookup");
        // `open` inside the namespace, used from this thread outside it.
        let netlink = temp.ns.run(Netlink::open).unwrap().unwrap();
        temp.ip(&[
            "link",
            "add",
            "only-here",
            "type",
            "veth",
            "peer",
            "name",
            "peer-here",
        ]);
        let lo = netlink.link_by_name("lo").unwrap().unwrap();
        assert_eq!(lo.index, 1);
        assert_eq!(netlink.link_by_index(1).unwrap().unwrap().name, "lo");
        assert!(netlink.link_by_name("only-here").unwrap().is_some());
        assert_eq!(netlink.link_by_name("mvh-no-such").unwrap(), None);
        assert_eq!(netlink.link_by_index(9999).unwrap(), None);
        // Longer than IFNAMSIZ: no such link can exist (the kernel would say ERANGE).
        assert_eq!(netlink.link_by_name("mvh-no-such-link").unwrap(), None);
    }

    #[test]
    fn veth_across_namespaces_and_macvlan_into_another_namespace() {
        let node = TempNetns::new("node");
        let lan = TempNetns::new("lan");
        let pod = TempNetns::new("pod");
        let on_node = Netlink::open_in(&node.ns).unwrap();
        let on_lan = Netlink::open_in(&lan.ns).unwrap();
        let on_pod = Netlink::open_in(&pod.ns).unwrap();

        on_node
            .create_veth(&VethSpec {
                name: "eth0".into(),
                mac: Some(mac(1)),
                peer_name: "lan0".into(),
                peer_mac: Some(mac(2)),
                peer_netns_fd: Some(lan.ns.as_fd()),
                peer_group: None,
                mtu: Some(1400),
            })
            .unwrap();
        let eth0 = on_node.link_by_name("eth0").unwrap().unwrap();
        let lan0 = on_lan.link_by_name("lan0").unwrap().unwrap();
        assert_eq!(eth0.kind.as_deref(), Some("veth"));
        assert_eq!((eth0.mac, eth0.mtu, eth0.up), (Some(mac(1)), 1400, false));
        assert_eq!((lan0.mac, lan0.mtu), (Some(mac(2)), 1400));
        // Each end points at the other, in the other namespace.
        assert_eq!(eth0.parent_index, Some(lan0.index));
        assert!(eth0.link_netnsid.is_some());
        assert_eq!(lan0.parent_index, Some(eth0.index));
        assert_eq!(on_node.link_by_name("lan0").unwrap(), None);
        assert_eq!(
            on_node.link_by_index(eth0.index).unwrap(),
            Some(eth0.clone())
        );

        let spec = MacvlanSpec {
            name: "pod0".into(),
            master_index: eth0.index,
            mode: MacvlanMode::Bridge,
            mtu: Some(1300),
            mac: Some(mac(3)),
            netns_fd: Some(pod.ns.as_fd()),
            group: None,
        };
        on_node.create_macvlan(&spec).unwrap();
        assert_eq!(on_node.link_by_name("pod0").unwrap(), None);
        let pod0 = on_pod.link_by_name("pod0").unwrap().unwrap();
        assert_eq!(pod0.kind.as_deref(), Some("macvlan"));
        assert_eq!(pod0.macvlan_mode, Some(MacvlanMode::Bridge));
        assert_eq!((pod0.mac, pod0.mtu), (Some(mac(3)), 1300));
        // IFLA_LINK is the master's index in the node, qualified by the node's netnsid.
        assert_eq!(pod0.parent_index, Some(eth0.index));
        assert!(pod0.link_netnsid.is_some());
        let shown = pod.ip_json(&["-d", "link", "show", "pod0"]);
        assert_eq!(shown[0]["linkinfo"]["info_kind"], "macvlan");
        assert_eq!(shown[0]["linkinfo"]["info_data"]["mode"], "bridge");
        assert_eq!(shown[0]["address"], mac(3).to_string());

        // The name is taken inside the pod: the kernel refuses a second one.
        let error = on_node.create_macvlan(&spec).unwrap_err();
        assert!(error.is_exists(), "{error}");
        let message = error.to_string();
        assert!(
            message.contains("pod0") && message.contains(&node.name),
            "{message}"
        );

        // A missing master is reported with its index.
        let error = on_node
            .create_macvlan(&MacvlanSpec {
                name: "pod1".into(),
                master_index: 9999,
                netns_fd: None,
                group: None,
                ..spec.clone()
            })
            .unwrap_err();
        assert!(error.to_string().contains("9999"), "{error}");
    }

    #[test]
    fn rename_up_and_idempotent_delete() {
        let temp = TempNetns::new("link");
        let netlink = Netlink::open_in(&temp.ns).unwrap();
        netlink
            .create_veth(&VethSpec {
                name: "tmp0".into(),
                mac: None,
                peer_name: "tmp1".into(),
                peer_mac: None,
                peer_netns_fd: None,
                peer_group: None,
                mtu: None,
            })
            .unwrap();
        let index = netlink.link_by_name("tmp0").unwrap().unwrap().index;

        netlink.rename_link(index, "eth0").unwrap();
        assert_eq!(netlink.link_by_name("tmp0").unwrap(), None);
        let renamed = netlink.link_by_name("eth0").unwrap().unwrap();
        assert_eq!((renamed.index, renamed.up), (index, false));

        netlink.set_link_up(index).unwrap();
        assert!(netlink.link_by_index(index).unwrap().unwrap().up);
        let shown = temp.ip_json(&["link", "show", "eth0"]);
        let flags = shown[0]["flags"].as_array().unwrap();
        assert!(flags.contains(&Value::from("UP")), "{shown}");

        assert!(netlink.delete_link(index).unwrap());
        assert!(!netlink.delete_link(index).unwrap());
        assert_eq!(netlink.link_by_index(index).unwrap(), None);
        // Deleting one end of a veth takes the other with it.
        assert_eq!(netlink.link_by_name("tmp1").unwrap(), None);

        let error = netlink.set_link_up(index).unwrap_err();
        assert!(error.is_not_found());
        let message = error.to_string();
        assert!(
            message.contains(&format!("link index {index}")),
            "{message}"
        );
        assert!(message.contains(&temp.name), "{message}");
    }
}
