//! Neighbour (ARP / NDP) entries: permanent ones set and deleted, those of a link listed.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{family_of, found, Neighbour, Netlink};
use crate::system::{Mac, SysResult};

impl Netlink {
    /// The neighbour entry for `address` on link `index` (`ip neigh get`), in one request;
    /// None when there is none.
    pub fn neighbour(&self, index: u32, address: IpAddr) -> SysResult<Option<Neighbour>> {
        let message = neighbour_message(index, address);
        let answer = self.execute(
            RouteNetlinkMessage::GetNeighbour(message),
            0,
            &format!("cannot look up neighbour {address} on link index {index}"),
        );
        let replies = match answer {
            Err(e) if e.is_not_found() => return Ok(None),
            other => other?,
        };
        Ok(replies.into_iter().find_map(|reply| match reply {
            RouteNetlinkMessage::NewNeighbour(neighbour) => parse_neighbour(neighbour),
            _ => None,
        }))
    }

    /// Adds or replaces a permanent neighbour entry.
    pub fn set_permanent_neighbour(&self, index: u32, address: IpAddr, mac: Mac) -> SysResult<()> {
        let mut message = neighbour_message(index, address);
        message.header.state = NeighbourState::Permanent;
        message
            .attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
        let context =
            format!("cannot set permanent neighbour {address} lladdr {mac} on link index {index}");
        self.execute(
            RouteNetlinkMessage::NewNeighbour(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
            &context,
        )
        .map(drop)
    }

    /// Deletes a neighbour entry; Ok(false) when it did not exist.
    pub fn delete_neighbour(&self, index: u32, address: IpAddr) -> SysResult<bool> {
        let message = neighbour_message(index, address);
        let context = format!("cannot delete neighbour {address} on link index {index}");
        found(self.execute(
            RouteNetlinkMessage::DelNeighbour(message),
            NLM_F_ACK,
            &context,
        ))
    }

    /// The neighbour entries of one link (a dump, filtered).
    pub fn neighbours(&self, index: u32) -> SysResult<Vec<Neighbour>> {
        let mut message = NeighbourMessage::default();
        // NDA_IFINDEX, not the header's index: strict checking rejects a non-zero header index
        // in a dump request, and both modes filter on the attribute.
        message.attributes.push(NeighbourAttribute::IfIndex(index));
        let replies = self.execute(
            RouteNetlinkMessage::GetNeighbour(message),
            NLM_F_DUMP,
            &format!("cannot list the neighbours of link index {index}"),
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewNeighbour(neighbour) => parse_neighbour(neighbour),
                _ => None,
            })
            .filter(|neighbour| neighbour.index == index)
            .collect())
    }
}

fn neighbour_message(index: u32, address: IpAddr) -> NeighbourMessage {
    let mut message = NeighbourMessage::default();
    message.header.family = family_of(address);
    message.header.ifindex = index;
    message
        .attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(
            address,
        )));
    message
}

fn parse_neighbour(message: NeighbourMessage) -> Option<Neighbour> {
    let header = &message.header;
    if !matches!(header.family, AddressFamily::Inet | AddressFamily::Inet6) {
        return None;
    }
    let mut address = None;
    let mut mac = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                address = Some(IpAddr::V4(*ip))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                address = Some(IpAddr::V6(*ip))
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = Mac::from_slice(bytes),
            _ => {}
        }
    }
    Some(Neighbour {
        index: header.ifindex,
        address: address?,
        mac,
        permanent: header.state == NeighbourState::Permanent,
    })
}

#[cfg(test)]
mod tests {

    use super::super::test_support::*;
    use super::super::*;
    use crate::system::netns::test_support::TempNetns;

    #[test]
    fn permanent_neighbours_set_list_and_delete() {
        let temp = TempNetns::new("neigh");
        let netlink = Netlink::open_in(&temp.ns).unwrap();
        let (a, b) = veth_pair_up(&netlink);
        let v4 = ip("10.3.0.5");
        let v6 = ip("2001:db8:3::5");

        netlink.set_permanent_neighbour(a, v4, mac(5)).unwrap();
        netlink.set_permanent_neighbour(a, v4, mac(6)).unwrap();
        netlink.set_permanent_neighbour(a, v6, mac(7)).unwrap();
        netlink
            .set_permanent_neighbour(b, ip("10.3.0.9"), mac(9))
            .unwrap();

        let listed = netlink.neighbours(a).unwrap();
        let entry = |address: IpAddr| {
            listed
                .iter()
                .find(|n| n.address == address)
                .unwrap_or_else(|| panic!("{address} missing from {listed:?}"))
                .clone()
        };
        assert_eq!(
            entry(v4),
            Neighbour {
                index: a,
                address: v4,
                mac: Some(mac(6)),
                permanent: true
            }
        );
        assert_eq!(entry(v6).mac, Some(mac(7)));
        assert!(listed.iter().all(|n| n.index == a));

        let shown = temp.ip_json(&["neigh", "show", "dev", "a", "10.3.0.5"]);
        assert_eq!(shown[0]["lladdr"], mac(6).to_string());
        assert_eq!(shown[0]["state"][0], "PERMANENT");

        assert!(netlink.delete_neighbour(a, v4).unwrap());
        assert!(!netlink.delete_neighbour(a, v4).unwrap());
        assert!(netlink.delete_neighbour(a, v6).unwrap());
        assert!(netlink.neighbours(a).unwrap().iter().all(|n| !n.permanent));
        // b's entry is untouched. Only permanent ones count: an up link with IPv6 gets
        // entries of its own (multicast, NOARP) whenever its MLD / router solicitations go out.
        let permanent_on_b: Vec<IpAddr> = netlink
            .neighbours(b)
            .unwrap()
            .into_iter()
            .filter(|n| n.permanent)
            .map(|n| n.address)
            .collect();
        assert_eq!(permanent_on_b, [ip("10.3.0.9")]);
    }
}
