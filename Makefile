# Everything runs as root: the tests build network namespaces (see tests/common/mod.rs).
CARGO ?= cargo

.PHONY: all build static test deps fmt fmt-check clippy demo bench bench-repair

all: build

build:
	$(CARGO) build --release

# The binary to ship to nodes: no dependency on the node's glibc, and it starts faster.
static:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --target x86_64-unknown-linux-gnu

deps:
	scripts/install-deps.sh

fmt:
	$(CARGO) fmt

fmt-check:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

# Unit tests and the namespace integration tests (each test builds its own namespaces).
test: deps fmt-check clippy
	$(CARGO) test

# The demo installs its dependencies and builds first, so it works on a fresh machine.
demo:
	scripts/demo.sh

# Not part of `test`: it measures, it does not check. It installs and builds first itself.
bench:
	scripts/bench.sh

# The watcher's repair latency (docs/benchmarks.md, "Repair latency"); not part of `test`.
bench-repair:
	scripts/bench-repair.sh
