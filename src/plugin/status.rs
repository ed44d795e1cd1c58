//! STATUS: whether the plugin can take ADDs: the master exists and is up.

use crate::datapaths::node::Node;
use crate::error::{Error, Kind, Result};
use crate::protocol::NetConf;

pub fn status(conf: &NetConf) -> Result<()> {
    let node = Node::open()?;
    // Without its master the network takes no ADD: whatever the lookup's failure, STATUS
    // says "not available" with its message and details.
    let master = node
        .resolve_master(conf.master.as_deref())
        .map_err(|e| Error {
            kind: Kind::NotAvailable,
            ..e
        })?;
    if !master.up {
        return Err(Error::new(
            Kind::NotAvailable,
            format!("master {} is down", master.name),
        ));
    }
    Ok(())
}
