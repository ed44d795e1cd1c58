#!/usr/bin/env bash
# `make bench-docker`: `docker run --rm` on `-d macvlan-host` against Docker's own `-d macvlan`,
# interleaved, with Debian trixie's dockerd 26 in a test node (SUITE=sid: Docker 28).
# The debug build (the driver is slower there, never faster). BENCH_RUNS sets the number of runs of each (default 30). Prints one line; not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/check-rust.sh
scripts/install-deps.sh
cargo test --test docker -- --ignored --nocapture bench_docker_run 2>&1 | grep -E '^docker run --rm|test result|panicked'
