#!/usr/bin/env bash
# `make bench`: macvlan-host against the reference CNI plugins (latency, scale, concurrency,
# footprint) on a throwaway LAN built from network namespaces. Run as root on Debian bookworm.
#
# Writes the measured tables into docs/benchmarks.md (between the bench:begin/end markers).
# The driver is benches/cni_bench/; every row runs in one process so that ratios hold on a
# noisy machine. Nothing touches the machine's own network namespace; the namespaces
# (mvh-<pid>-*) and directories are removed on exit, also on Ctrl-C.
#
# Environment: BENCH_ITERATIONS (default 100) rounds per row; BENCH_OUTPUT (default
# docs/benchmarks.md); BENCH_SKIP_STATIC=1 skips the static build (row 5 then reports no size);
# BENCH_ROWS (default 1,1b,2,3,4,5) picks rows; BENCH_DAD_ROUNDS (default 20) rounds of row 1b;
# BENCH_TRACE=1 prints every plugin call's time on stderr.
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "bench: run as root (it creates network namespaces)" >&2
    exit 1
fi

# Namespaces and directories of benchmark or test processes that no longer run (a run killed
# with SIGKILL); the driver cleans up after itself otherwise. Only dead owners' leftovers go.
sweep_leftovers() {
    local ns pid dir
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^mvh-[0-9]+-' || true); do
        pid=${ns#mvh-}
        pid=${pid%%-*}
        [[ -d /proc/$pid ]] || ip netns del "$ns" 2>/dev/null || true
    done
    for dir in /dev/shm/mvhbench-*; do
        [[ -e $dir ]] || continue
        pid=${dir#/dev/shm/mvhbench-}
        pid=${pid%%-*}
        [[ -d /proc/$pid ]] || rm -rf "$dir"
    done
}
trap sweep_leftovers EXIT

echo "bench: installing dependencies"
scripts/install-deps.sh

echo "bench: building the release binary"
cargo build --release --quiet

static_binary=
if [[ ${BENCH_SKIP_STATIC:-0} != 1 ]]; then
    echo "bench: building the static release binary (x86_64-unknown-linux-gnu, crt-static)"
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --quiet --target x86_64-unknown-linux-gnu
    static_binary=$PWD/target/x86_64-unknown-linux-gnu/release/macvlan-host
    if ldd "$static_binary" 2>&1 | grep -qE 'not a dynamic executable|statically linked'; then
        echo "bench: $static_binary is static ($(stat -c %s "$static_binary") bytes)"
    else
        echo "bench: $static_binary is not static:" >&2
        ldd "$static_binary" >&2 || true
        exit 1
    fi
fi

echo "bench: building the floor program (benches/kernel_floor.rs)"
# Static like the plugin when the plugin is measured static: the same process start.
floor_build=(cargo build --release --bench kernel_floor --message-format=json)
if [[ -n $static_binary ]]; then
    floor_build+=(--target x86_64-unknown-linux-gnu)
    export RUSTFLAGS="-C target-feature=+crt-static"
fi
floor=$("${floor_build[@]}" 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "kernel_floor" and .executable != null) | .executable' |
    tail -n1)
unset RUSTFLAGS
if [[ -z $floor || ! -x $floor ]]; then
    echo "bench: could not build benches/kernel_floor.rs:" >&2
    "${floor_build[@]}" >&2
    exit 1
fi

echo "bench: building the driver"
driver=$(cargo bench --bench cni_bench --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "cni_bench" and .executable != null) | .executable' |
    tail -n1)
if [[ -z $driver || ! -x $driver ]]; then
    echo "bench: could not build benches/cni_bench/:" >&2
    cargo bench --bench cni_bench --no-run >&2
    exit 1
fi

# The driver runs in the foreground: Ctrl-C reaches it, it stops at the next plugin call and
# removes its namespaces before exiting.
echo "bench: running (about 10 minutes; BENCH_ITERATIONS=${BENCH_ITERATIONS:-100})"
BENCH_STATIC_BINARY=$static_binary BENCH_FLOOR_BINARY=$floor "$driver" --bench
