//! A Linux bridge as the master.
