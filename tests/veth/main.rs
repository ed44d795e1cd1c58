//! `hostAccess: "veth"` on the LAN test bed: a veth pair per pod gives the node a path to its
//! macvlan pods whatever the macvlan mode, in chained mode (after the reference `macvlan`
//! plugin and host-local) and in interface mode, for IPv4, IPv6 and dual stack; the result
//! lists the node end. Over an attachment's life: DEL finds the node end by its derived name
//! and succeeds in every degraded case, CHECK names the missing piece, GC removes exactly the
//! unlisted pairs, 32 pods come and go concurrently, and shim and veth pods share a master.
//!
//! Networks come from the shared fixture (`common::Spec::veth`); a scenario run for several
//! setups is one function and a `cases!` table.

#[path = "../common/mod.rs"]
mod common;

mod check;
mod concurrency;
mod del;
mod gc;
mod jumbo;
mod node_sysctls;
mod reachability;
mod result;
mod shared_master;

use common::*;
