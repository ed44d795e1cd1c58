//! Everything that touches the operating system: namespaces, netlink, sysctls, the node lock
//! and the attachment records, plus the small pure helpers they share (MACs, derived names).
//! IPAM delegation is a verb's concern and lives in `plugin::ipam`.

pub mod durable_file;
pub mod error;
pub mod legacy_lock;
pub mod lock;
pub mod logger;
pub mod mac;
pub mod names;
pub mod netlink;
pub mod netlink_events;
pub mod netns;
pub mod state;
pub mod sysctl;

pub use error::{SysError, SysResult};
pub use mac::Mac;
