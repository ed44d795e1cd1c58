#!/usr/bin/env bash
# The fuzzing campaign, bounded in time:
#  1. every cargo-fuzz target of fuzz/ (network configuration per verb, prevResult / IPAM
#     results, the environment) for FUZZ_SECONDS each (default 60), corpus seeded from conf/
#     and fuzz/seeds/; prints the executions per target;
#  2. the process-level fuzz of the binary in test namespaces (tests/fuzz_process.rs) with
#     FUZZ_PROCESS_CASES mutated calls (default 3000).
# Runs on a fresh machine: installs cargo-fuzz from crates.io if missing; without a nightly
# toolchain it uses the stable one with RUSTC_BOOTSTRAP=1; without sanitizer support, `-s none`.
# Needs root for part 2 (network namespaces). Exits non-zero if any target found a crash.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
PROCESS_CASES=${FUZZ_PROCESS_CASES:-3000}
TARGETS=(netconf result env)

scripts/install-deps.sh >/dev/null

if ! command -v cargo-fuzz >/dev/null && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-fuzz" ]; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# cargo-fuzz passes -Z flags: nightly, or stable told to accept them.
# FUZZ_TOOLCHAIN=stable forces the second way (to try what a fresh machine does).
toolchain=()
if [ "${FUZZ_TOOLCHAIN:-}" != stable ] && command -v rustup >/dev/null \
    && rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

# AddressSanitizer when the toolchain can build with it, otherwise plain libFuzzer.
sanitizer=()
if ! cargo "${toolchain[@]}" fuzz build --fuzz-dir fuzz "${TARGETS[0]}" >/tmp/fuzz-build.$$ 2>&1; then
    echo "fuzz: build with the address sanitizer failed, using -s none"
    sanitizer=(-s none)
    cargo "${toolchain[@]}" fuzz build --fuzz-dir fuzz "${sanitizer[@]}"
fi
rm -f /tmp/fuzz-build.$$

# Seeds: the committed ones, plus every plugin entry of conf/*.conflist for every verb
# (first byte of a netconf input picks the verb), with the list's name and version.
for target in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    cp -n fuzz/seeds/"$target"/* "fuzz/corpus/$target/" 2>/dev/null || true
done
for list in conf/*.conflist; do
    base=$(basename "$list" .conflist)
    count=$(jq '.plugins | length' "$list")
    for ((i = 0; i < count; i++)); do
        entry=$(jq -c --argjson i "$i" '.plugins[$i] + {name: .name, cniVersion: .cniVersion}' "$list")
        for verb in 0 1 2 3 4; do
            { printf "\\x$(printf %02x "$verb")"; printf '%s' "$entry"; } \
                >"fuzz/corpus/netconf/conf-$base-$i-$verb"
        done
    done
done

declare -A executions
failed=0
for target in "${TARGETS[@]}"; do
    log=$(mktemp)
    echo "fuzz: $target for ${SECONDS_PER_TARGET}s"
    if ! cargo "${toolchain[@]}" fuzz run --fuzz-dir fuzz "${sanitizer[@]}" "$target" \
        "fuzz/corpus/$target" -- -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
        failed=1
        echo "fuzz: $target FOUND A FAILURE (artifacts in fuzz/artifacts/$target):"
        grep -E "panicked|ERROR|SUMMARY|Test unit written" "$log" | head -20 || tail -30 "$log"
    fi
    executions[$target]=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rm -f "$log"
done

echo "fuzz: process-level fuzz, $PROCESS_CASES cases"
process_log=$(mktemp)
if ! FUZZ_PROCESS_CASES=$PROCESS_CASES cargo test --test fuzz_process -- --nocapture 2>&1 | tee "$process_log" | grep -E '^fuzz process'; then
    failed=1
fi
grep -q '^test result: ok' "$process_log" || failed=1

echo
echo "fuzz summary (${SECONDS_PER_TARGET}s per target):"
for target in "${TARGETS[@]}"; do
    printf '  %-8s %s executions\n' "$target" "${executions[$target]:-?}"
done
grep -E '^fuzz process: .*cases' "$process_log" | sed 's/^/  /' || true
if [ "$failed" -ne 0 ]; then
    echo "fuzz: FAILURES (the process fuzz's every failure is listed in $process_log)"
else
    rm -f "$process_log"
fi
exit $failed
