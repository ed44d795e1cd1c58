#!/usr/bin/env bash
# Compares two builds of macvlan-host on the engine's work, interleaved on one throwaway LAN of
# network namespaces: ADD, CHECK and DEL of one pod (interface mode, shim, host-local IPAM)
# with 1 and with 1,000 pods already on the node, and one `reconcile` pass over the 1,000
# attachments (nothing drifted: the steady state of the watcher's periodic pass).
#
#   scripts/compare-engine.sh OLD_BINARY NEW_BINARY [ROUNDS]      (as root; default 40)
#
# RESIDENTS (default 1000) pods for the second level; RECONCILE_ROUNDS (default 8) interleaved
# reconcile passes over them (each takes seconds: it opens every pod's namespace).
#
# Calls alternate between the two binaries (which one goes first alternates too), so that a
# busy machine slows both alike; medians in ms. The 1,000 resident pods are 1,000 macvlans in
# one namespace (interfaces r0..r999), added once by OLD: NEW's first reconcile pass adopts
# their routes (the upgrade), which the warm-up rounds absorb. Nothing touches the machine's
# own namespace: everything is in namespaces named mvhcmpe-<pid>-*, removed on exit.
set -euo pipefail

old=$(realpath "$1")
new=$(realpath "$2")
rounds=${3:-40}
reconcile_rounds=${RECONCILE_ROUNDS:-8}
residents=${RESIDENTS:-1000}
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x /usr/lib/cni/host-local ]] || { echo "needs containernetworking-plugins" >&2; exit 1; }
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }

tag=mvhcmpe-$$
tmp=$(mktemp -d)
source "$(dirname "$0")/compare-lan.sh"

cat >"$tmp/conf.json" <<EOF
{"cniVersion":"1.0.0","name":"cmp","type":"macvlan-host","master":"eth0","mode":"bridge",
 "hostAccess":"shim","stateDir":"$tmp/state",
 "ipam":{"type":"host-local","dataDir":"$tmp/ipam",
         "ranges":[[{"subnet":"10.99.0.0/16","rangeStart":"10.99.1.1","rangeEnd":"10.99.15.254",
                     "gateway":"10.99.0.20"}]],"routes":[{"dst":"0.0.0.0/0"}]}}
EOF
# The residents share one namespace: one default route there is enough.
jq 'del(.ipam.routes)' "$tmp/conf.json" >"$tmp/resident.json"

# Runs inside the node's namespace (entered once, so no nsenter is timed). Prints
# "<label> <what> <pods> <us>" per call.
cat >"$tmp/driver.sh" <<'EOF'
set -euo pipefail
old=$1 new=$2 rounds=$3 tmp=$4 tag=$5 residents=$6 reconcile_rounds=$7
export CNI_PATH=/usr/lib/cni CNI_ARGS=
# CPU time (user + system, µs) of every child reaped so far, from bash's `times` run in this
# shell (not in a subshell, which has children of its own), into $cpu_now: a call's CPU time is
# the difference around it (the plugin and its own children, such as host-local).
cpu_now=0
read_cpu() {
    times >"$tmp/times.now"
    cpu_now=$(tail -1 "$tmp/times.now" | awk 'function us(x,  m) { m = x; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", x); sub(/s$/, "", x); return int((m * 60 + x) * 1000000) } { print us($1) + us($2) }')
}
call() { # label binary command netns id ifname stdin pods
    read_cpu; local cpu=$cpu_now start=$EPOCHREALTIME
    CNI_COMMAND=$3 CNI_NETNS=$4 CNI_CONTAINERID=$5 CNI_IFNAME=$6 "$2" <"$7" >"$tmp/out" 2>"$tmp/err" || {
        echo "$1 $3 failed: $(cat "$tmp/out" "$tmp/err")" >&2; exit 1; }
    local end=$EPOCHREALTIME
    read_cpu
    echo "$1 $3 $8 $(( ${end/./} - ${start/./} )) $(( cpu_now - cpu ))"
}
reconcile() { # label binary pods
    read_cpu; local cpu=$cpu_now start=$EPOCHREALTIME
    "$2" reconcile --state-dir "$tmp/state" >"$tmp/out" 2>"$tmp/err" || true
    local end=$EPOCHREALTIME
    read_cpu
    echo "$1 RECONCILE $3 $(( ${end/./} - ${start/./} )) $(( cpu_now - cpu ))"
}
cycle() { # label binary pods
    call "$1" "$2" ADD /run/netns/$tag-pod "c$round" eth0 "$tmp/conf.json" "$3"
    jq --slurpfile r "$tmp/out" '. + {prevResult: $r[0]}' "$tmp/conf.json" >"$tmp/check.json"
    call "$1" "$2" CHECK /run/netns/$tag-pod "c$round" eth0 "$tmp/check.json" "$3"
    call "$1" "$2" DEL /run/netns/$tag-pod "c$round" eth0 "$tmp/conf.json" "$3"
}
measure() { # pods
    for ((round = 0; round < rounds + 3; round++)); do
        if ((round % 2)); then cycle old "$old" "$1"; cycle new "$new" "$1"; else cycle new "$new" "$1"; cycle old "$old" "$1"; fi |
            if ((round < 3)); then cat >/dev/null; else cat; fi   # warm-up rounds are not recorded
    done
}
# One resident pod keeps the shim, as on a node that runs pods (the steady state).
call old "$old" ADD /run/netns/$tag-resident resident r0 "$tmp/conf.json" 1 >/dev/null
measure 1
for ((i = 1; i < residents; i++)); do
    call old "$old" ADD /run/netns/$tag-resident resident "r$i" "$tmp/resident.json" 1 >/dev/null
done
measure "$residents"
for ((round = 0; round < reconcile_rounds + 1; round++)); do
    if ((round % 2)); then reconcile old "$old" "$residents"; reconcile new "$new" "$residents"
    else reconcile new "$new" "$residents"; reconcile old "$old" "$residents"; fi |
        if ((round < 1)); then cat >/dev/null; else cat; fi   # NEW's first pass adopts OLD's routes
done
EOF
nsenter --net="/run/netns/$tag-node" bash "$tmp/driver.sh" "$old" "$new" "$rounds" "$tmp" "$tag" "$residents" "$reconcile_rounds" >"$tmp/times"

median() { sort -n | awk '{v[NR]=$1} END {if (NR == 0) {print "-"; exit} m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.2f", m/1000}'; }
# Column 4 is wall time, column 5 CPU time: on a shared, busy machine wall time swings with
# the load, CPU time much less.
printf '%-6s %-10s %9s %9s %8s %9s %9s %8s %5s\n' pods what "old wall" "new wall" "new/old" "old cpu" "new cpu" "new/old" n
for pods in $(printf '%s\n' 1 "$residents" | sort -un); do
    for what in ADD CHECK DEL RECONCILE; do
        pick() { awk -v l="$1" -v p="$pods" -v c="$what" -v k="$2" '$1==l && $2==c && $3==p {print $k}' "$tmp/times" | median; }
        ow=$(pick old 4) nw=$(pick new 4) oc=$(pick old 5) nc=$(pick new 5)
        [[ $ow == - ]] && continue
        count=$(awk -v p="$pods" -v c="$what" '$1=="new" && $2==c && $3==p' "$tmp/times" | wc -l)
        ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (a > 0) ? b/a : 0}'; }
        printf '%-6s %-10s %9s %9s %8s %9s %9s %8s %5s\n' "$pods" "$what" "$ow" "$nw" "$(ratio "$ow" "$nw")" "$oc" "$nc" "$(ratio "$oc" "$nc")" "$count"
    done
done
printf 'static size: old %s bytes, new %s bytes\n' "$(stat -c %s "$old")" "$(stat -c %s "$new")"
echo "($rounds interleaved rounds after 3 warm-up rounds, $reconcile_rounds reconcile passes each; medians in ms, from fork to exit)"
[[ -z ${KEEP_TIMES:-} ]] || cp "$tmp/times" "$KEEP_TIMES"
