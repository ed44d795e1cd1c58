#!/usr/bin/env bash
# `make bench-podman`: `podman run --rm` on `-d macvlan-host` against podman's own `-d macvlan`
# (Debian trixie's podman 5.4 / netavark 1.14 in a runtime node; BENCH_SUITE=sid for sid's),
# interleaved, with the release build of the plugin. Prints a markdown table and the median
# ratio (docs/benchmarks.md, "podman run --rm"). BENCH_ROUNDS (default 30) rounds.
# Root, Debian bookworm; everything runs inside throwaway namespaces (tests/common).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
    echo "bench-podman: run as root (it creates network namespaces)" >&2
    exit 1
fi
scripts/check-rust.sh
scripts/install-deps.sh
exec cargo test --release --test netavark -- --ignored --nocapture --exact bench::bench_podman_run_rm
