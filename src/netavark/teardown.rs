//! `teardown NETNS` (run by netavark at container exit, `stop`, `network disconnect`): removes
//! the container's macvlan and its host side. Succeeds when repeated and when anything is
//! gone already (the namespace, the record, the shim).

use std::path::Path;

use super::attachment::key_of;
use super::host_side;
use super::network::Settings;
use super::types::PluginRequest;
use crate::error::Result;

pub fn teardown(netns: &Path, request: PluginRequest) -> Result<()> {
    let settings = Settings::for_teardown(&request.network);
    let key = key_of(&request)?;
    let outcome = host_side::disconnect(netns, &settings, &key);
    host_side::release_abandoned(&settings.state_dir);
    outcome
}
