//! Whether this process runs with the node's own root privileges, or as rootless podman runs
//! its helpers: as a user, or as "root" inside a user namespace that maps only a few IDs.

/// The initial user namespace maps every ID to itself: `0 0 4294967295`.
const FULL_MAP: [u64; 3] = [0, 0, 4_294_967_295];

/// True when not running as the node's root: an effective UID other than 0, or a user
/// namespace (its UID map is not the identity over all IDs), whose capabilities do not reach
/// the node's network namespace.
pub fn is_rootless() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return true;
    }
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => !is_identity_map(&map),
        // Without /proc nothing says otherwise; the kernel refuses what root may not do.
        Err(_) => false,
    }
}

fn is_identity_map(map: &str) -> bool {
    let lines: Vec<Vec<u64>> = map
        .lines()
        .map(|line| {
            line.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .collect();
    lines.len() == 1 && lines[0] == FULL_MAP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_full_identity_map_is_the_node() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("         0       1000          1\n"));
        assert!(!is_identity_map("0 1000 1\n1 100000 65536\n"));
        assert!(!is_identity_map(""));
    }
}
