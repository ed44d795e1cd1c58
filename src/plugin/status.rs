//! STATUS: whether the plugin can take ADDs: the master exists and is up.

use crate::datapaths::node::Node;
use crate::protocol::{code, CniError, CniResult, NetConf};

pub fn status(conf: &NetConf) -> CniResult<()> {
    let unavailable = |msg: String| CniError::new(code::NOT_AVAILABLE, msg);
    let node = Node::open()?;
    let master = node
        .resolve_master(conf.master.as_deref())
        .map_err(|e| unavailable(e.msg))?;
    if !master.up {
        return Err(unavailable(format!("master {} is down", master.name)));
    }
    Ok(())
}
