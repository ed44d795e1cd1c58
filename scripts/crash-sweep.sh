#!/usr/bin/env bash
# The full crash sweep: ADD killed (strace, SIGKILL) at every call of every state-changing
# syscall, in every wiring, alone / with a pod before / with a pod after the crash, each point
# followed by DEL without and with prevResult, then GC. `make test` runs a sampled subset.
# Prints the points covered and the failures by kind; exits non-zero if anything was left.
# Needs root (network namespaces). Takes about 10-20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
log=$(mktemp)
status=0
CRASH_SWEEP=full cargo test --test crash_points -- --nocapture >"$log" 2>&1 || status=$?
grep -E '^crash points' "$log" || tail -40 "$log"
if [ "$status" -ne 0 ]; then
    echo "crash-sweep: FAILURES (every failure is listed in $log)"
else
    rm -f "$log"
fi
exit "$status"
