//! STATUS: whether the plugin can take ADDs: the master exists and is up.

use crate::datapaths::node::Node;
use crate::error::{Error, Kind, Result};
use crate::protocol::NetConf;

pub fn status(conf: &NetConf) -> Result<()> {
    let unavailable = |msg: String| Error::new(Kind::NotAvailable, msg);
    let node = Node::open()?;
    let master = node
        .resolve_master(conf.master.as_deref())
        .map_err(|e| unavailable(e.msg))?;
    if !master.up {
        return Err(unavailable(format!("master {} is down", master.name)));
    }
    Ok(())
}
