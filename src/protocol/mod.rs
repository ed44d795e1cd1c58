//! The protocol layer: CNI requests (environment + configuration), results, versions and
//! the CNI form of errors. Nothing here touches the system.

pub mod config;
pub mod env;
pub mod error;
pub mod mode;
pub mod options;
pub mod requested_mac;
pub mod result;
pub mod version;

pub use config::{HostAccess, Mode, NetConf};
pub use env::{Command, Environment};
pub use error::code;
pub use result::CniOutput;
pub use version::CniVersion;
