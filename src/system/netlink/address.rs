//! Addresses: adding one as `ip addr add` does, listing those of a link or of the namespace.

use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::{IpNetwork, Ipv4Network};
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{family_of, found, Address, Netlink};
use crate::system::SysResult;

impl Netlink {
    /// Adds an address; an address that is already there is not an error. IPv6 addresses may
    /// be added with IFA_F_NODAD when `nodad` is set.
    pub fn add_address(&self, index: u32, network: IpNetwork, nodad: bool) -> SysResult<()> {
        let mut message = AddressMessage::default();
        message.header.family = family_of(network.ip());
        message.header.prefix_len = network.prefix();
        message.header.index = index;
        message.header.scope = if network.ip().is_loopback() {
            AddressScope::Host
        } else {
            AddressScope::Universe
        };
        match network {
            IpNetwork::V4(v4) => {
                // As `ip addr add`: IFA_LOCAL is the address, IFA_ADDRESS the same address
                // (no peer), and a broadcast address where the prefix leaves room for one.
                let ip = IpAddr::V4(v4.ip());
                message.attributes.push(AddressAttribute::Local(ip));
                message.attributes.push(AddressAttribute::Address(ip));
                if let Some(broadcast) = broadcast_of(v4) {
                    message
                        .attributes
                        .push(AddressAttribute::Broadcast(broadcast));
                }
            }
            IpNetwork::V6(v6) => {
                message
                    .attributes
                    .push(AddressAttribute::Address(IpAddr::V6(v6.ip())));
                if nodad {
                    message.header.flags |= AddressHeaderFlags::Nodad;
                }
            }
        }
        let context = format!("cannot add address {network} to link index {index}");
        match self.execute(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &context,
        ) {
            Err(e) if e.is_exists() => Ok(()),
            other => other.map(drop),
        }
    }

    /// Deletes an address; Ok(false) when it was not there.
    pub fn delete_address(&self, index: u32, network: IpNetwork) -> SysResult<bool> {
        let mut message = AddressMessage::default();
        message.header.family = family_of(network.ip());
        message.header.prefix_len = network.prefix();
        message.header.index = index;
        let attribute = match network.ip() {
            ip @ IpAddr::V4(_) => AddressAttribute::Local(ip),
            ip @ IpAddr::V6(_) => AddressAttribute::Address(ip),
        };
        message.attributes.push(attribute);
        let context = format!("cannot delete address {network} from link index {index}");
        found(self.execute(
            RouteNetlinkMessage::DelAddress(message),
            NLM_F_ACK,
            &context,
        ))
    }

    /// The addresses of one link (filtered by the kernel where it can).
    pub fn addresses(&self, index: u32) -> SysResult<Vec<Address>> {
        let context = format!("cannot list the addresses of link index {index}");
        self.dump_addresses(index, &context)
    }

    /// A dump of the addresses of link `index` (with strict checking the kernel filters).
    fn dump_addresses(&self, index: u32, context: &str) -> SysResult<Vec<Address>> {
        let mut message = AddressMessage::default();
        // With strict checking (set on every socket here) the kernel filters on the index.
        message.header.index = index;
        let replies = self.execute(
            RouteNetlinkMessage::GetAddress(message),
            NLM_F_DUMP,
            context,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewAddress(address) => parse_address(address),
                _ => None,
            })
            .filter(|address| index == 0 || address.index == index)
            .collect())
    }
}

/// The broadcast address `ip addr add` would set; none for /31 and /32, which have no room
/// for one (RFC 3021).
fn broadcast_of(network: Ipv4Network) -> Option<Ipv4Addr> {
    (network.prefix() < 31).then(|| network.broadcast())
}

fn parse_address(message: AddressMessage) -> Option<Address> {
    let header = &message.header;
    let mut local = None;
    let mut address = None;
    let mut flags = AddressFlags::empty();
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    // For IPv4 IFA_ADDRESS is the peer of a point-to-point address; IFA_LOCAL is ours.
    let ip = match header.family {
        AddressFamily::Inet => local.or(address)?,
        AddressFamily::Inet6 => address?,
        _ => return None,
    };
    let network = IpNetwork::new(ip, header.prefix_len).ok()?;
    Some(Address {
        index: header.index,
        network,
        tentative: header.flags.contains(AddressHeaderFlags::Tentative)
            || flags.contains(AddressFlags::Tentative),
        dad_failed: header.flags.contains(AddressHeaderFlags::Dadfailed)
            || flags.contains(AddressFlags::Dadfailed),
        scope: u8::from(header.scope),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::test_support::*;
    use super::super::*;
    use crate::system::netns::test_support::TempNetns;

    #[test]
    fn addresses_add_list_and_flags() {
        let temp = TempNetns::new("addr");
        let netlink = Netlink::open_in(&temp.ns).unwrap();
        let (a, b) = veth_pair_up(&netlink);

        netlink.add_address(a, net("10.1.0.1/24"), false).unwrap();
        netlink.add_address(a, net("10.1.0.1/24"), false).unwrap();
        netlink.add_address(a, net("10.1.0.2/32"), false).unwrap();
        netlink
            .add_address(a, net("2001:db8::1/64"), false)
            .unwrap();
        netlink.add_address(a, net("2001:db8::2/64"), true).unwrap();

        let listed = netlink.addresses(a).unwrap();
        let find = |text: &str| {
            listed
                .iter()
                .find(|address| address.network == net(text))
                .unwrap_or_else(|| panic!("{text} missing from {listed:?}"))
        };
        assert_eq!(find("10.1.0.1/24").scope, 0);
        assert_eq!(find("10.1.0.1/24").index, a);
        assert!(!find("10.1.0.1/24").tentative);
        // DAD runs on an up link with a carrier; NODAD skips it.
        assert!(find("2001:db8::1/64").tentative);
        assert!(!find("2001:db8::2/64").tentative);
        assert!(!find("2001:db8::1/64").dad_failed);
        assert!(listed.iter().all(|address| address.index == a));
        assert_eq!(
            listed
                .iter()
                .filter(|x| x.network == net("10.1.0.1/24"))
                .count(),
            1
        );

        // The same as `ip addr add`: a broadcast address, and none for a /32.
        let shown = temp.ip_json(&["addr", "show", "dev", "a"]);
        let infos = shown[0]["addr_info"].as_array().unwrap();
        let info = |local: &str| {
            infos
                .iter()
                .find(|i| i["local"] == local)
                .unwrap_or_else(|| panic!("{local} missing from {shown}"))
                .clone()
        };
        assert_eq!(info("10.1.0.1")["broadcast"], "10.1.0.255");
        assert_eq!(info("10.1.0.2")["broadcast"], Value::Null);
        assert_eq!(info("2001:db8::1")["tentative"], true);
        assert_eq!(info("2001:db8::2")["nodad"], true);

        assert!(netlink.addresses(b).unwrap().iter().all(|x| x.index == b));
        let of_a = netlink.addresses(a).unwrap();
        assert!(of_a.iter().any(|x| x.network == net("10.1.0.2/32")));
        let of_b = netlink.addresses(b).unwrap();
        assert!(
            of_b.iter().any(|x| x.scope == 253),
            "b's link-local address"
        );

        let error = netlink
            .add_address(9999, net("10.1.0.3/24"), false)
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("10.1.0.3/24") && message.contains("9999"),
            "{message}"
        );
    }
}
