# Everything runs as root: the tests build network namespaces (see tests/common/mod.rs).
CARGO ?= cargo

.PHONY: all toolchain build static image test deps roots roots-start fmt fmt-check clippy demo bench bench-repair bench-watcher crash-sweep fuzz soak test-docker-sid bench-docker

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

# The Debian trixie and sid roots of the newer runtimes (tests/common/runtime_node.rs), built
# once and cached under /var/cache/macvlan-host/roots. `roots` builds them now; `roots-start`
# starts them in the background, and the tests that need one wait for it.
roots: deps
	scripts/runtime-root.sh trixie
	scripts/runtime-root.sh sid

roots-start: deps
	scripts/runtime-root.sh --background trixie sid

# Unit tests and the namespace integration tests (each test builds its own namespaces). The
# static binary is built first: tests/image.rs puts it into an image. The roots build while
# everything compiles.
test: deps roots-start fmt-check clippy static
	$(CARGO) test

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

# The Docker driver against sid's dockerd 28 (tests/docker.rs; trixie's 26 runs in `test`).
test-docker-sid: deps
	SUITE=sid $(CARGO) test --test docker

# `docker run --rm` on -d macvlan-host against Docker's own -d macvlan; not part of `test`.
bench-docker:
	scripts/bench-docker.sh

# The watcher's RSS and CPU at 1, 110 and 1,000 pods, and what its metrics listener adds
# (docs/benchmarks.md, "The watcher's footprint"); not part of `test`.
bench-watcher:
	scripts/bench-watcher.sh
