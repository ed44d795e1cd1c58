//! Everything that touches the operating system: namespaces, netlink, sysctls, the file lock,
//! the attachment records and the execution of delegated (IPAM) plugins.

pub mod error;
pub mod mac;
pub mod netlink;
pub mod netlink_events;
pub mod netns;
pub mod sysctl;

pub use error::{SysError, SysResult};
pub use mac::Mac;
pub mod lock;
pub mod logger;
pub mod names;
pub mod state;
