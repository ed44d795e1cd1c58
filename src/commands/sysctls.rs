//! The node's sysctls that matter for host access, read in the calling thread's namespace.

use serde::Serialize;

/// One key below /proc/sys in the calling thread's namespace; None when it cannot be read.
fn read(key: &str) -> Option<String> {
    crate::system::sysctl::read(key).ok()
}

/// The ARP and reverse-path settings of one interface as the kernel applies them.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceSysctls {
    pub interface: String,
    /// max(all, interface): the kernel uses the stricter of the two.
    pub rp_filter: Option<u8>,
    /// max(all, interface) as well.
    pub arp_ignore: Option<u8>,
    /// max(all, interface) as well.
    pub arp_announce: Option<u8>,
}

/// The effective values for `interface`: for these three keys the kernel takes the maximum of
/// `conf/all` and `conf/<interface>`, so neither alone says what happens.
pub fn effective(interface: &str) -> InterfaceSysctls {
    let value = |key: &str| {
        let all = read(&format!("net/ipv4/conf/all/{key}"))?
            .parse::<u8>()
            .ok()?;
        let own = read(&format!("net/ipv4/conf/{interface}/{key}"))?
            .parse::<u8>()
            .ok()?;
        Some(all.max(own))
    };
    InterfaceSysctls {
        interface: interface.to_owned(),
        rp_filter: value("rp_filter"),
        arp_ignore: value("arp_ignore"),
        arp_announce: value("arp_announce"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_values_take_the_maximum() {
        let lo = effective("lo");
        let all: u8 = read("net/ipv4/conf/all/rp_filter")
            .unwrap()
            .parse()
            .unwrap();
        let own: u8 = read("net/ipv4/conf/lo/rp_filter").unwrap().parse().unwrap();
        assert_eq!(lo.rp_filter, Some(all.max(own)));
        assert_eq!(effective("no-such-if").rp_filter, None);
    }
}
