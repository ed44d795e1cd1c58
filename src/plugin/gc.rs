//! GC: remove everything of this network that belongs to an attachment the runtime no longer
//! knows. Goes on past errors, so one broken leftover never protects the others.

use std::collections::HashSet;

use super::ipam::Ipam;
use crate::datapaths::node::Node;
use crate::datapaths::{engine, shim};
use crate::error::{Context, Error, ErrorList, Result};
use crate::protocol::{Environment, Mode, NetConf};
use crate::system::lock::NodeLock;
use crate::system::state::StateStore;

pub fn gc(env: &Environment, conf: &NetConf) -> Result<()> {
    let valid: HashSet<(String, String)> = conf
        .valid_attachments
        .clone()
        .ok_or_else(|| {
            // Without the list every attachment would look stale: refuse rather than wipe.
            Error::config("GC needs \"cni.dev/valid-attachments\": the list of attachments to keep")
        })?
        .into_iter()
        .collect();
    let node = Node::open()?;
    let store = StateStore::open(&conf.state_dir).context("opening stateDir")?;
    let mut errors = ErrorList::new();
    for record in store
        .records_of(&conf.name)
        .context("listing attachment records")?
    {
        let key = &record.key;
        if valid.contains(&(key.container_id.clone(), key.ifname.clone())) {
            continue;
        }
        log::info!("GC: removing stale attachment {}", key.file_stem());
        errors.append(engine::detach(&node, &store, &record).finish(&node));
    }
    errors.append(shim::remove_unused(&node, &store));
    errors.note(remove_dead_temporaries(&store));
    if let Mode::Interface { ipam } = &conf.mode {
        errors.note(Ipam::new(env, conf, ipam).gc());
    }
    errors.into_result()
}

/// Temporary files of calls that were killed while writing state (under the node lock, no
/// writer of a locked file is alive).
fn remove_dead_temporaries(store: &StateStore) -> Result<()> {
    NodeLock::acquire()
        .and_then(|_lock| store.remove_dead_temporaries())
        .context("removing temporary files of killed calls")
}
