//! Names: deterministic derived names and hashes (interface names must fit in 15 bytes and be
//! found again by DEL without any saved state, so they are derived, never random), and the one
//! place that says what a valid interface name and a valid ID are.

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

/// The kernel's rules for an interface name (`dev_valid_name`); the error says which one is
/// broken. The one validator for `CNI_IFNAME`, `master`, `shimName` and `vethName`.
pub fn validate_ifname(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.len() > 15 {
        return Err("is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Err("is not a valid interface name");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err("contains '/', ':' or white space");
    }
    Ok(())
}

/// The specification's character set for container IDs and network names, which also name
/// the plugin's state files: 1 to `max_len` letters, digits, `_`, `.` or `-`, starting with a
/// letter or digit (so never `.` or `..`, never a '/' or ':').
pub fn is_valid_id(text: &str, max_len: usize) -> bool {
    let first_ok = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    first_ok && rest_ok && text.len() <= max_len
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

    #[test]
    fn ids_and_interface_names() {
        assert!(is_valid_id("a-b_c.9", 10));
        for bad in ["", ".x", "-x", "a/b", "a:b", "a b", "abcdefghijk"] {
            assert!(!is_valid_id(bad, 10), "{bad:?}");
        }
        assert!(validate_ifname("eth0").is_ok());
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "sixteen-bytes-xx"] {
            assert!(validate_ifname(bad).is_err(), "{bad:?}");
        }
    }
}
