#!/usr/bin/env bash
# Compares two builds of macvlan-host, interleaved on one throwaway LAN of network namespaces:
# VERSION wall time (process start) and interface-mode (shim, host-local IPAM) ADD and DEL.
#
#   scripts/compare-binaries.sh OLD_BINARY NEW_BINARY [ROUNDS]     (as root; default 200)
#
# Calls alternate between the two binaries (which one goes first alternates too), so that a
# busy machine slows both alike. Prints medians in ms. Nothing touches the machine's own
# namespace: node, LAN, peer and pods are namespaces named mvhcmp-<pid>-*, removed on exit.
set -euo pipefail

old=$(realpath "$1")
new=$(realpath "$2")
rounds=${3:-200}
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x /usr/lib/cni/host-local ]] || { echo "needs containernetworking-plugins" >&2; exit 1; }

tag=mvhcmp-$$
tmp=$(mktemp -d)
source "$(dirname "$0")/compare-lan.sh"

conf() {
    cat <<EOF
{"cniVersion":"1.0.0","name":"cmp","type":"macvlan-host","master":"eth0","mode":"bridge",
 "hostAccess":"shim","stateDir":"$tmp/state",
 "ipam":{"type":"host-local","dataDir":"$tmp/ipam",
         "ranges":[[{"subnet":"10.99.0.0/16","rangeStart":"10.99.1.1","rangeEnd":"10.99.15.254",
                     "gateway":"10.99.0.20"}]],"routes":[{"dst":"0.0.0.0/0"}]}}
EOF
}
conf >"$tmp/conf.json"
echo '{"cniVersion":"1.0.0"}' >"$tmp/version.json"

# Runs inside the node's namespace (entered once, so no nsenter is timed). Prints
# "<binary label> <command> <ms>" per call.
cat >"$tmp/driver.sh" <<'EOF'
set -euo pipefail
old=$1 new=$2 rounds=$3 tmp=$4 tag=$5
export CNI_PATH=/usr/lib/cni CNI_IFNAME=eth0 CNI_ARGS=
call() { # label binary command netns id stdin
    local start=$EPOCHREALTIME
    CNI_COMMAND=$3 CNI_NETNS=$4 CNI_CONTAINERID=$5 "$2" <"$6" >"$tmp/out" 2>"$tmp/err" || {
        echo "$1 $3 failed: $(cat "$tmp/out" "$tmp/err")" >&2; exit 1; }
    local end=$EPOCHREALTIME
    echo "$1 $3 $(( (${end/./} - ${start/./}) ))"
}
# One resident pod keeps the shim, as on a node that runs pods (the steady state).
call old "$old" ADD /run/netns/$tag-resident resident "$tmp/conf.json" >/dev/null
cycle() { # label binary
    call "$1" "$2" VERSION "" v "$tmp/version.json"
    call "$1" "$2" ADD /run/netns/$tag-pod "c$round" "$tmp/conf.json"
    call "$1" "$2" DEL /run/netns/$tag-pod "c$round" "$tmp/conf.json"
}
for ((round = 0; round < rounds + 5; round++)); do
    if ((round % 2)); then cycle old "$old"; cycle new "$new"; else cycle new "$new"; cycle old "$old"; fi |
        if ((round < 5)); then cat >/dev/null; else cat; fi   # warm-up rounds are not recorded
done
call old "$old" DEL /run/netns/$tag-resident resident "$tmp/conf.json" >/dev/null
EOF
nsenter --net="/run/netns/$tag-node" bash "$tmp/driver.sh" "$old" "$new" "$rounds" "$tmp" "$tag" >"$tmp/times"

median() { sort -n | awk '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.3f", m/1000}'; }
printf '%-8s %12s %12s %12s\n' build "VERSION ms" "ADD ms" "DEL ms"
for label in old new; do
    printf '%-8s' "$label"
    for command in VERSION ADD DEL; do
        printf ' %12s' "$(awk -v l=$label -v c=$command '$1==l && $2==c {print $3}' "$tmp/times" | median)"
    done
    echo
done
echo "($rounds interleaved rounds; medians of wall time from fork to exit, in ms)"
