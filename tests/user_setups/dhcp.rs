//! DHCP with a real DHCP server.
