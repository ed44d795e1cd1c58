#!/usr/bin/env bash
# `make bench-repair`: how fast `macvlan-host reconcile --watch` repairs the host side of live
# pods after a flushed route, a deleted shim and a renumbered node. Run as root on Debian
# bookworm; everything happens in throwaway network namespaces (mvh-<pid>-*), removed on exit.
#
# Latency is measured from the kernel's own notifications (`ip -ts monitor` inside the node):
# from the first notification of the disturbance to the notification of the last pod route
# restored with the node's current address as source. It includes the watcher's debounce.
#
# Environment: REPAIR_ROUNDS (default 20) rounds per disturbance; REPAIR_PODS (default 3);
# MVH_BIN (default: target/release/macvlan-host, built when missing... or any build you name).
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "bench-repair: run as root" >&2; exit 1; }
ROUNDS=${REPAIR_ROUNDS:-20}
PODS=${REPAIR_PODS:-3}
if [[ -z ${MVH_BIN:-} ]]; then
    cargo build --release --quiet
    MVH_BIN=target/release/macvlan-host
fi
BIN=$(realpath "$MVH_BIN")

P=mvh-$$
T=$(mktemp -d "/tmp/$P-bench-repair.XXXX")
WATCHER=
MONITOR=
cleanup() {
    [[ -n $WATCHER ]] && kill "$WATCHER" 2>/dev/null && wait "$WATCHER" 2>/dev/null
    [[ -n $MONITOR ]] && kill "$MONITOR" 2>/dev/null
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do ip netns del "$ns"; done
    rm -rf "$T"
}
trap cleanup EXIT

# The LAN: a bridge, the node on it (10.99.0.10/24), pods with macvlans on the node's eth0.
source scripts/bench-node.sh
bench_node "$P" "$T" "$BIN" 10.99.0.10/24 10.99.0.0/24 10.99.0.100 10.99.0.149
POD_IPS=()
for i in $(seq 1 "$PODS"); do
    out=$(add_pod "$i")
    POD_IPS+=("$(grep -o '"address": *"[0-9.]*' <<<"$out" | grep -o '[0-9.]*$')")
done

nsenter --net="/run/netns/$P-node" "$BIN" reconcile --watch --state-dir "$T/state" >/dev/null 2>"$T/watch.log" &
WATCHER=$!
until grep -q watching "$T/watch.log"; do sleep 0.05; done
ip -n "$P-node" -ts monitor route link address >"$T/monitor.log" 2>/dev/null &
MONITOR=$!
sleep 0.3

NODE_IP=10.99.0.10
# True when every pod route is back on the shim with the node's current address as source.
repaired() {
    local routes
    routes=$(ip -n "$P-node" route show dev mvh-eth0 2>/dev/null) || return 1
    for ip in "${POD_IPS[@]}"; do grep -q "^$ip .*src $NODE_IP" <<<"$routes" || return 1; done
}

# Milliseconds between the first new monitor line and the last restored pod route.
latency_since() {
    local from=$1
    tail -n +"$from" "$T/monitor.log" | awk -v ips="${POD_IPS[*]}" -v src="$NODE_IP" '
        function secs(stamp,   t) { split(stamp, t, /[T:\]]/); return t[2]*3600 + t[3]*60 + t[4] }
        /^\[/ {
            s = secs(substr($1, 2))
            if (first == "") first = s
            if ($2 != "Deleted" && index(ips, $2) && $0 ~ ("dev mvh-eth0 .*src " src)) last = s
        }
        END { if (last == "") print "NA"; else printf "%.1f\n", (last - first) * 1000 }'
}

disturb() {
    case $1 in
        route-flush) ip -n "$P-node" route flush dev mvh-eth0 ;;
        shim-deleted) ip -n "$P-node" link del mvh-eth0 ;;
        renumbered)
            local new=10.99.0.12
            [[ $NODE_IP == 10.99.0.12 ]] && new=10.99.0.10
            ip -n "$P-node" addr del "$NODE_IP/24" dev eth0
            ip -n "$P-node" addr add "$new/24" dev eth0
            NODE_IP=$new
            ;;
    esac
}

echo "| disturbance | rounds | median ms | p90 ms | max ms |"
echo "|---|---|---|---|---|"
for what in route-flush shim-deleted renumbered; do
    samples=()
    for _ in $(seq 1 "$ROUNDS"); do
        sleep 0.2 # let the previous round's notifications settle
        from=$(( $(wc -l <"$T/monitor.log") + 1 ))
        disturb "$what"
        for _ in $(seq 1 500); do repaired && break; sleep 0.01; done
        repaired || { echo "bench-repair: $what not repaired within 5 s" >&2; exit 1; }
        sleep 0.05 # the monitor writes asynchronously
        samples+=("$(latency_since "$from")")
    done
    printf '%s\n' "${samples[@]}" | grep -v NA | sort -n | awk -v what="$what" '
        { v[NR] = $1 }
        END { printf "| %s | %d | %.1f | %.1f | %.1f |\n", what, NR, v[int((NR+1)/2)], v[int(NR*0.9+0.5)], v[NR] }'
done
echo
echo "watcher's own view (first notification -> repaired), last lines:"
grep "ms after the first notification" "$T/watch.log" | tail -n 3 | sed 's/^/  /'
