# Everything runs as root: the tests build network namespaces (see tests/common/mod.rs).
CARGO ?= cargo

.PHONY: all toolchain build static image test test-kernels deps fmt fmt-check clippy demo bench bench-repair crash-sweep fuzz soak

all: build

# Rust >= rust-version from rustup; says so clearly when it is missing or too old.
toolchain:
	@scripts/check-rust.sh

build: toolchain
	$(CARGO) build --release

# The binary to ship to nodes: no dependency on the node's glibc, and it starts faster.
static: toolchain
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --target x86_64-unknown-linux-gnu

# The DaemonSet's image (Containerfile), built with Debian's podman; no registry.
image: static
	scripts/build-image.sh

deps:
	scripts/install-deps.sh

# tests/cri-driver is a crate of its own (the CRI client of tests/containerd_cri.rs).
fmt:
	$(CARGO) fmt
	$(CARGO) fmt --manifest-path tests/cri-driver/Cargo.toml

fmt-check: toolchain
	$(CARGO) fmt --check
	$(CARGO) fmt --check --manifest-path tests/cri-driver/Cargo.toml

clippy: toolchain
	$(CARGO) clippy --all-targets -- -D warnings

# Unit tests and the namespace integration tests (each test builds its own namespaces). The
# static binary is built first: tests/image.rs puts it into an image.
test: deps fmt-check clippy static
	$(CARGO) test

# The plugin on Debian's kernels 5.10, 6.1, 6.12 and sid's newest, each booted once in a VM
# (virtme-ng; qemu's emulation where there is no hardware KVM): every uplink (plain, VLAN, bond,
# bond with fail_over_mac=active, bridge) x scenario, printed as a table. Kernels are cached in
# /var/cache/macvlan-host/kernels. `make test` runs a sample of it (tests/kernel_sample.rs).
test-kernels: toolchain
	scripts/test-kernels.sh

# The demo installs its dependencies and builds first, so it works on a fresh machine.
demo:
	scripts/demo.sh

# Not part of `test`: it measures, it does not check. It installs and builds first itself.
bench:
	scripts/bench.sh

# The adversarial campaign (docs/reliability.md). `make test` runs a sampled part of each.
# Every kill point of ADD, each followed by DEL and GC (10-20 minutes).
crash-sweep:
	scripts/crash-sweep.sh

# cargo-fuzz targets (FUZZ_SECONDS each) and the process-level fuzz (FUZZ_PROCESS_CASES).
fuzz:
	scripts/fuzz.sh

# Thousands of concurrent ADD/DEL/CHECK calls with kills, then DEL and GC: nothing left.
soak:
	scripts/soak.sh

# The watcher's repair latency (docs/benchmarks.md, "Repair latency"); not part of `test`.
bench-repair:
	scripts/bench-repair.sh
