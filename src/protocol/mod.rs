//! The protocol layer: CNI requests (environment + configuration), results, versions and
//! errors. Nothing here touches the system.

pub mod config;
pub mod env;
pub mod error;
pub mod error_list;
pub mod mode;
pub mod requested_mac;
pub mod result;
pub mod version;

pub use config::{HostAccess, Mode, NetConf};
pub use env::{Command, Environment};
pub use error::{code, CniError, CniResult, Context};
pub use error_list::ErrorList;
pub use result::CniOutput;
pub use version::CniVersion;
