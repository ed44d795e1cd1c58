#!/usr/bin/env bash
# Soak: SOAK_CALLS (default 2000) mixed ADD/DEL/CHECK calls, 16 at a time, on three networks
# sharing one master (interface+shim, interface+veth, chained+shim), SOAK_KILL_PERCENT
# (default 10) of them SIGKILLed mid-call and followed by DEL; then every pod deleted and GC:
# nothing may be left. Prints the counts. Needs root (network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
log=$(mktemp)
status=0
cargo test --test soak -- --ignored --nocapture >"$log" 2>&1 || status=$?
grep -E '^(soak:|  failure:|  left:)' "$log" || tail -40 "$log"
if [ "$status" -ne 0 ]; then
    echo "soak: FAILED (full output in $log)"
else
    rm -f "$log"
fi
exit "$status"
