//! The netavark plugin front end (issue 19). `direct`: the binary run inside a test node as
//! netavark runs it, with requests shaped like the calls podman 5.4 / netavark 1.14 made
//! (fast, no podman).

#[path = "../common/mod.rs"]
mod common;

mod deploy;
mod direct;
mod plugin;
