//! What earlier calls learnt about IPAM plugins that speak an older CNI version than the
//! configuration: `stateDir/ipam-versions/<plugin>` holds the binary's identity (path, size,
//! modification time) and the version agreed with it, so later calls go straight to that
//! version, and an upgraded binary is asked again.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::protocol::CniVersion;
use crate::system::state::write_atomically;
use crate::system::SysResult;

pub struct IpamVersions {
    dir: PathBuf,
}

impl IpamVersions {
    pub fn in_state_dir(state_dir: &Path) -> IpamVersions {
        IpamVersions {
            dir: state_dir.join("ipam-versions"),
        }
    }

    /// The version remembered for `plugin`, if its binary is still the one of `identity`.
    pub fn get(&self, plugin: &str, identity: &str) -> Option<CniVersion> {
        let content = fs::read_to_string(self.dir.join(plugin)).ok()?;
        let (remembered, version) = content.split_once(' ')?;
        if remembered != identity {
            return None;
        }
        CniVersion::parse(version).ok()
    }

    pub fn set(&self, plugin: &str, identity: &str, version: CniVersion) -> SysResult<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| {
                crate::system::SysError::io(format!("creating {}", self.dir.display()), e)
            })?;
        write_atomically(
            &self.dir.join(plugin),
            format!("{identity} {version}").as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_holds_for_the_same_binary_only() {
        let dir = std::env::temp_dir().join(format!("mvh-ipam-versions-{}", std::process::id()));
        let cache = IpamVersions::in_state_dir(&dir);
        assert_eq!(cache.get("host-local", "/x:1:2.3"), None);
        cache
            .set("host-local", "/x:1:2.3", CniVersion::V1_0_0)
            .unwrap();
        assert_eq!(
            cache.get("host-local", "/x:1:2.3"),
            Some(CniVersion::V1_0_0)
        );
        assert_eq!(cache.get("host-local", "/x:1:2.4"), None);
        fs::remove_dir_all(dir).unwrap();
    }
}
