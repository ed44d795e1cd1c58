#!/usr/bin/env bash
# `make bench-watcher`: what `macvlan-host reconcile --watch` costs on a node with 1, 110 (the
# kubelet's default pod limit) and 1,000 pods: its memory (RSS), its CPU while idle and in its
# periodic full pass, and a repair of every pod at once (the shim deleted). Also what the
# metrics listener (`--metrics-address`) adds: RSS, and CPU over a quiet 10 s. The numbers size
# the DaemonSet's resources (docs/benchmarks.md, "The watcher's footprint").
#
# Run as root on Debian bookworm; everything happens in throwaway network namespaces
# (mvh-<pid>-*), removed on exit. Environment: WATCH_PODS (default "1 110 1000");
# MVH_BIN (default target/release/macvlan-host, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "bench-watcher: run as root" >&2; exit 1; }
LEVELS=${WATCH_PODS:-"1 110 1000"}
if [[ -z ${MVH_BIN:-} ]]; then
    cargo build --release --quiet
    MVH_BIN=target/release/macvlan-host
fi
BIN=$(realpath "$MVH_BIN")
TICK=$(getconf CLK_TCK)
PAGE_KIB=$(( $(getconf PAGESIZE) / 1024 ))

P=mvh-$$
T=$(mktemp -d "/tmp/$P-bench-watcher.XXXX")
WATCHER=
cleanup() {
    stop_watcher
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do ip netns del "$ns"; done
    rm -rf "$T"
}
trap cleanup EXIT

# The LAN: a bridge, the node on it (10.99.0.10/16), pods with macvlans on the node's eth0.
source scripts/bench-node.sh
bench_node "$P" "$T" "$BIN" 10.99.0.10/16 10.99.0.0/16 10.99.1.1 10.99.8.254
PODS=0
add_pods_up_to() {
    while (( PODS < $1 )); do
        PODS=$(( PODS + 1 ))
        add_pod "$PODS" >/dev/null
    done
    # New pods notify for a while (IPv6 link-local addresses leaving DAD): let them settle.
    sleep 3
}

# The watcher, with any extra arguments; waits for its first full pass.
start_watcher() {
    : >"$T/watch.log"
    # nsenter execs the binary: $! is the watcher itself (a shell function would fork).
    nsenter --net="/run/netns/$P-node" "$BIN" reconcile --watch --state-dir "$T/state" "$@" \
        >/dev/null 2>"$T/watch.log" &
    WATCHER=$!
    until grep -q watching "$T/watch.log"; do
        kill -0 "$WATCHER" 2>/dev/null || { cat "$T/watch.log" >&2; exit 1; }
        sleep 0.05
    done
}
stop_watcher() {
    if [[ -n $WATCHER ]]; then kill "$WATCHER" 2>/dev/null || true; wait "$WATCHER" 2>/dev/null || true; fi
    WATCHER=
}
ticks() { awk '{ print $14 + $15 }' <"/proc/$WATCHER/stat"; }
rss_kib() { awk '{ print $2 * '"$PAGE_KIB"' }' <"/proc/$WATCHER/statm"; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' <"/proc/$WATCHER/status"; }
# CPU ticks the watcher uses over $1 quiet seconds.
idle_ticks() { local t0; t0=$(ticks); sleep "$1"; echo $(( $(ticks) - t0 )); }
scrape() {
    innode bash -c 'exec 3<>/dev/tcp/127.0.0.1/9447; printf "GET $1 HTTP/1.0\r\n\r\n" >&3; cat <&3' _ "$1"
}
metric() { scrape /metrics | awk -v m="$1" '$1 == m { print $2 }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }

# What the listener adds: the watcher without and with it, at the first level's pods.
listener_overhead() {
    echo "| listener | RSS after start | RSS after 100 scrapes | idle CPU, 10 s |"
    echo "|---|---|---|---|"
    for with in off on; do
        if [[ $with == on ]]; then start_watcher --metrics-address 127.0.0.1:9447; else start_watcher; fi
        sleep 1
        rss0=$(rss_kib)
        if [[ $with == on ]]; then
            for _ in $(seq 1 100); do scrape /metrics >/dev/null; scrape /healthz >/dev/null; done
        fi
        sleep 1
        rss1=$(rss_kib)
        quiet=$(idle_ticks 10)
        printf '| %s | %s KiB | %s KiB | %s ticks |\n' "$with" "$rss0" "$rss1" "$quiet"
        stop_watcher
    done
    echo
}
first=${LEVELS%% *}
add_pods_up_to "$first"
echo "At $first pod(s):"
echo
listener_overhead

echo "| pods | RSS idle | RSS peak | idle CPU, 10 s | full pass, wall | full pass, CPU | all repaired after shim deleted | repair CPU | passes |"
echo "|---|---|---|---|---|---|---|---|---|"
for level in $LEVELS; do
    add_pods_up_to "$level"
    start_watcher --metrics-address 127.0.0.1:9447 --interval 3600
    sleep 1
    startup_pass=$(metric macvlan_host_pass_duration_seconds_sum)
    quiet=$(idle_ticks 10)
    # A full pass (what --interval repeats), timed and costed by a one-shot reconcile, which
    # walks exactly what the periodic pass walks.
    read -r pass_s pass_user pass_sys < <(
        TIMEFORMAT='%R %U %S'
        { time innode "$BIN" reconcile --state-dir "$T/state" >/dev/null 2>&1 || true; } 2>&1
    )
    # Every pod's route and neighbour entry at once: the shim deleted.
    before=$(ticks)
    passes0=$(metric 'macvlan_host_passes_total{cause="event"}')
    from=$(date +%s.%N)
    ip -n "$P-node" link del mvh-eth0
    until [[ $(ip -n "$P-node" route show dev mvh-eth0 2>/dev/null | grep -c 'src 10.99.0.10') -ge $level ]]; do
        sleep 0.01
    done
    repaired_s=$(awk -v a="$from" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    sleep 1
    repair_ticks=$(( $(ticks) - before ))
    passes=$(( $(metric 'macvlan_host_passes_total{cause="event"}') - passes0 ))
    printf '| %s | %s MiB | %s MiB | %s ticks | %s ms (watcher: %s ms) | %s ms | %s ms | %s ticks | %s |\n' \
        "$level" "$(awk -v k="$(rss_kib)" 'BEGIN { printf "%.1f", k / 1024 }')" \
        "$(awk -v k="$(hwm_kib)" 'BEGIN { printf "%.1f", k / 1024 }')" "$quiet" \
        "$(ms "$pass_s")" "$(ms "$startup_pass")" "$(ms "$(awk -v u="$pass_user" -v s="$pass_sys" 'BEGIN { print u + s }')")" \
        "$(ms "$repaired_s")" "$repair_ticks" "$passes"
    stop_watcher
done
echo
echo "(1 tick = $(( 1000 / TICK )) ms of CPU. \"full pass\": a one-shot reconcile over every pod (what the"
echo " periodic pass walks), wall and CPU time, process start included; \"watcher\": the watcher's own first"
echo " full pass, from macvlan_host_pass_duration_seconds.)"

