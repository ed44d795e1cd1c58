//! The kernel matrix's sample in `make test` (`make test-kernels` runs the whole matrix): this
//! build's plugin on Debian trixie's kernel 6.12, booted in a VM, with a VLAN sub-interface as
//! the master. Interface mode with the shim, dual stack: ADD, the node and the pod reach each
//! other, the LAN peer reaches the pod, CHECK, DEL leaves nothing, DEL again succeeds.
//! The kernel is fetched from Debian's archive once and cached (scripts/fetch-kernel.sh);
//! the scenarios are tests/kernels/scenarios.sh, run inside the VM in namespaces of their own.
//! Skipped, saying why, only where qemu cannot run at all (exit status 77).

use std::process::Command;

/// scripts/test-kernels.sh's status when qemu cannot run here.
const CANNOT_RUN: i32 = 77;

#[test]
fn plugin_on_debian_6_12_with_a_vlan_master() {
    let out = Command::new("scripts/test-kernels.sh")
        .arg("--sample")
        .env("MVH_BIN", env!("CARGO_BIN_EXE_macvlan-host"))
        .output()
        .expect("run scripts/test-kernels.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => println!("{stdout}"),
        Some(CANNOT_RUN) => eprintln!("SKIPPED: the kernel sample cannot run here: {stderr}"),
        _ => panic!(
            "the plugin failed on Debian's 6.12 kernel ({}):\n{stdout}\n{stderr}",
            out.status
        ),
    }
}
