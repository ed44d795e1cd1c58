//! Configurations users run that the rest of the suite did not (issue 18): a MAC the runtime
//! asks for and Multus-style `ips`, a Linux bridge as the master, DHCP with a real DHCP server
//! on the LAN, an upgrade from the previous release. One module per setup.

#[path = "../common/mod.rs"]
mod common;

mod bridge_master;
mod dhcp;
mod requested_mac;
mod upgrade;
