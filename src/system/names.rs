//! Deterministic names and hashes. Interface names must fit in 15 bytes and must be found
//! again by DEL without any saved state, so they are derived, never random.

/// FNV-1a, 64 bit: tiny and stable across releases and platforms (std's hasher is neither).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// `prefix` + `base` when that fits in an interface name, otherwise `prefix` + a hash of
/// `base`, so that two long bases never share a name.
pub fn derived_ifname(prefix: &str, base: &str) -> String {
    let name = format!("{prefix}{base}");
    if name.len() <= 15 {
        return name;
    }
    let hex = format!("{:016x}", fnv1a(base.as_bytes()));
    format!("{prefix}{}", &hex[..15 - prefix.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bases_are_kept_and_long_ones_hashed_to_fit() {
        assert_eq!(derived_ifname("mvh-", "eth0"), "mvh-eth0");
        let a = derived_ifname("mvh-", "enp0s31f6-long1");
        let b = derived_ifname("mvh-", "enp0s31f6-long2");
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("mvh-"));
        assert_ne!(a, b);
        assert_eq!(a, derived_ifname("mvh-", "enp0s31f6-long1"));
    }
}
