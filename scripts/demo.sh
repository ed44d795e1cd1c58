#!/usr/bin/env bash
# `make demo`: shows, step by step, the problem macvlan-host solves and how it solves it, on a
# throwaway LAN built from network namespaces. Run as root on Debian bookworm.
#
# Everything happens inside namespaces this script creates (names mvhdemo-<pid>-*); the
# machine's own network is never touched. All of it is removed on exit, also on Ctrl-C.
# Exits non-zero as soon as a step does not behave as announced.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "demo: run as root (it creates network namespaces)" >&2
    exit 1
fi

# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
if [[ -t 1 ]]; then
    BOLD=$'\e[1m' GREEN=$'\e[32m' RED=$'\e[31m' DIM=$'\e[2m' RESET=$'\e[0m'
else
    BOLD='' GREEN='' RED='' DIM='' RESET=''
fi
STEP=0
step() {
    STEP=$((STEP + 1))
    printf '\n%s== Step %d: %s%s\n' "$BOLD" "$STEP" "$*" "$RESET"
}
say() { printf '   %s\n' "$*"; }
show() { sed 's/^/      /'; }
pass() { printf '   %s✔ %s%s\n' "$GREEN" "$*" "$RESET"; }
fail() {
    printf '   %s✘ %s%s\n' "$RED" "$*" "$RESET"
    printf '\n%sdemo: FAILED at step %d: %s%s\n' "$RED" "$STEP" "$*" "$RESET" >&2
    exit 1
}
# expect_ok WHAT CMD...: the command must succeed.
expect_ok() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what (expected to work, it did not)"; fi
}
# expect_fail WHAT CMD...: the command must fail.
expect_fail() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then fail "$what (expected to fail, it worked)"; else pass "$what"; fi
}

# ---------------------------------------------------------------------------------------------
# Setup: dependencies and build
# ---------------------------------------------------------------------------------------------
step "Install what the demo needs and build macvlan-host"
say "checking the Rust toolchain and the Debian packages (scripts/install-deps.sh)"
scripts/install-deps.sh 2>&1 | show
say "building macvlan-host (about a minute the first time; cargo's progress follows)"
cargo build --release 2>&1 | show
PLUGIN=$ROOT/target/release/macvlan-host
say "built $PLUGIN"

# ---------------------------------------------------------------------------------------------
# The throwaway LAN, and its teardown
# ---------------------------------------------------------------------------------------------
P=mvhdemo-$$
LAN=$P-lan NODE=$P-node PEER=$P-peer
NODE_IP=10.99.0.10 PEER_IP=10.99.0.20
WORK=$(mktemp -d /tmp/mvhdemo-$$-XXXX)

cleanup() {
    local ns
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'fail "unexpected error (line $LINENO): $BASH_COMMAND"' ERR
trap 'echo; echo "demo: interrupted, cleaning up" >&2; exit 130' INT TERM

# Leftovers of an earlier demo that was killed (its pid no longer runs).
for ns in $(ip netns list | awk '{print $1}' | grep -E '^mvhdemo-[0-9]+-' || true); do
    pid=${ns#mvhdemo-}
    pid=${pid%%-*}
    [[ -d /proc/$pid ]] || ip netns del "$ns" 2>/dev/null || true
done

netns() { ip netns add "$1" && ip -n "$1" link set lo up; }
# inside NS CMD...: runs CMD inside namespace NS (nsenter leaves /sys alone, unlike ip netns exec).
inside() {
    local ns=$1
    shift
    nsenter --net="/run/netns/$ns" "$@"
}
# plug NS IP: NS gets eth0, a cable to the LAN switch, with address IP.
plug() {
    netns "$1"
    ip -n "$LAN" link add "${1#"$P"-}" type veth peer name eth0 netns "$1"
    ip -n "$LAN" link set "${1#"$P"-}" master br0 up
    ip -n "$1" addr add "$2/24" dev eth0
    ip -n "$1" link set eth0 up
}
# arp_replies NS IP: the ARP replies NS gets on its eth0 when it asks for IP three times.
arp_replies() { inside "$1" arping -c 3 -I eth0 "$2" 2>/dev/null | grep -io 'reply from.*\]' || true; }
# macs_in REPLIES: the distinct MACs in arping's replies, lower case, sorted.
macs_in() { grep -o '\[[0-9A-Fa-f:]*\]' <<<"$1" | tr -d '[]' | tr 'A-F' 'a-f' | sort -u; }
ping1() { inside "$1" ping -n -c1 -W1 "$2" >/dev/null 2>&1 || inside "$1" ping -n -c1 -W1 "$2" >/dev/null 2>&1; }

step "Build a LAN out of network namespaces"
netns "$LAN"
ip -n "$LAN" link add br0 type bridge forward_delay 0
ip -n "$LAN" link set br0 up
plug "$NODE" "$NODE_IP"
plug "$PEER" "$PEER_IP"
ip -n "$NODE" route add default via "$PEER_IP"
say "switch  $LAN  (a bridge)"
say "node    $NODE  eth0 $NODE_IP  (a Kubernetes node; pods get macvlans on its eth0)"
say "peer    $PEER  eth0 $PEER_IP  (another machine on the LAN, e.g. the router)"
expect_ok "the node and the peer reach each other" ping1 "$NODE" "$PEER_IP"
NODE_MAC=$(ip -n "$NODE" -j link show eth0 | jq -r '.[0].address')

# ---------------------------------------------------------------------------------------------
# Running CNI plugins the way a runtime does
# ---------------------------------------------------------------------------------------------
CNI_DIR=$WORK/cni-bin
mkdir -p "$CNI_DIR" "$WORK/host-local" "$WORK/state"
ln -s /usr/lib/cni/* "$CNI_DIR/"
ln -s "$PLUGIN" "$CNI_DIR/macvlan-host"

# cni VERB POD CONFIG: runs the plugin named by CONFIG's "type" inside the node, for POD's eth0.
cni() {
    local verb=$1 pod=$2 conf=$3 type
    type=$(jq -r .type <<<"$conf")
    inside "$NODE" env CNI_COMMAND="$verb" CNI_CONTAINERID="$pod" CNI_NETNS="/run/netns/$pod" \
        CNI_IFNAME=eth0 CNI_PATH="$CNI_DIR" "$CNI_DIR/$type" <<<"$conf"
}
# with_prev CONFIG RESULT: CONFIG with RESULT as prevResult (how a conflist chains plugins).
with_prev() { jq -c --argjson prev "$2" '. + {prevResult: $prev}' <<<"$1"; }
pod_ip() { jq -r '.ips[0].address | split("/")[0]' <<<"$1"; }

# The reference macvlan plugin with host-local, as it would sit in a conflist.
ipam() {
    jq -nc --arg dir "$WORK/host-local" --arg start "$1" \
        '{type: "host-local", dataDir: $dir, ranges: [[{subnet: "10.99.0.0/24", rangeStart: $start}]]}'
}
MACVLAN=$(jq -nc --argjson ipam "$(ipam 10.99.0.100)" \
    '{cniVersion: "1.0.0", name: "demo", type: "macvlan", master: "eth0", mode: "bridge", ipam: $ipam}')

step "A pod on plain macvlan (the reference plugin): its own node cannot reach it"
POD1=$P-pod1
netns "$POD1"
say "configuration:"
jq . <<<"$MACVLAN" | show
R1=$(cni ADD "$POD1" "$MACVLAN")
IP1=$(pod_ip "$R1")
say "the pod got $IP1 on a macvlan of the node's eth0"
expect_ok "peer -> pod $IP1 works (the LAN reaches the pod)" ping1 "$PEER" "$IP1"
expect_fail "node -> pod $IP1 fails: macvlan keeps a pod and its own master apart" ping1 "$NODE" "$IP1"
expect_fail "pod -> node $NODE_IP fails too" ping1 "$POD1" "$NODE_IP"
say "this is why health checks from the kubelet, or a hostNetwork service, cannot talk to such pods."

step "The usual fix by hand: a shim macvlan with a reserved address, and ARP flux"
say "the common recipe: a bridge-mode macvlan 'shim' on the node, an address reserved for it,"
say "and a route to the pod through it:"
SHIM_IP=10.99.0.9
RECIPE=(
    "ip link add shim link eth0 type macvlan mode bridge"
    "ip addr add $SHIM_IP/32 dev shim"
    "ip link set shim up"
    "ip route add $IP1/32 dev shim"
)
for line in "${RECIPE[@]}"; do
    echo "$line" | show
    # shellcheck disable=SC2086 # each line is a command to split into words
    inside "$NODE" $line
done
SHIM_MAC=$(ip -n "$NODE" -j link show shim | jq -r '.[0].address')
expect_ok "node -> pod $IP1 works now" ping1 "$NODE" "$IP1"
say "but the shim sits on the LAN too. The peer asks who has the node's address $NODE_IP:"
REPLIES=$(arp_replies "$PEER" "$NODE_IP")
printf '%s\n' "$REPLIES" | show
MACS=$(macs_in "$REPLIES")
if [[ $MACS == "$(printf '%s\n' "$NODE_MAC" "$SHIM_MAC" | sort)" ]]; then
    pass "ARP flux: two MACs answer for $NODE_IP, eth0's ($NODE_MAC) and the shim's ($SHIM_MAC)"
else
    fail "expected replies from $NODE_MAC and $SHIM_MAC, got: ${MACS:-none}"
fi
say "the LAN's entry for the node flips between the two MACs, so traffic for the node may go"
say "to the shim; the recipe also spends an address per node and is gone after a reboot."
ip -n "$NODE" link del shim
# The peer forgets what it learnt here and learns the node's MAC afresh, from eth0 alone.
ip -n "$PEER" neigh flush to "$NODE_IP"
ping1 "$PEER" "$NODE_IP"
cni DEL "$POD1" "$(with_prev "$MACVLAN" "$R1")"
ip netns del "$POD1"

step "The same macvlan, chained with macvlan-host (hostAccess: shim)"
OURS_SHIM=$(jq -nc --arg state "$WORK/state" \
    '{cniVersion: "1.0.0", name: "demo", type: "macvlan-host", hostAccess: "shim", stateDir: $state}')
say "the conflist gets one more plugin after macvlan:"
jq . <<<"$OURS_SHIM" | show
POD2=$P-pod2
netns "$POD2"
R2A=$(cni ADD "$POD2" "$MACVLAN")
R2=$(cni ADD "$POD2" "$(with_prev "$OURS_SHIM" "$R2A")")
IP2=$(pod_ip "$R2")
say "the pod got $IP2; on the node, macvlan-host added one shared macvlan 'shim' and a route:"
ip -n "$NODE" -br link show type macvlan | show
ip -n "$NODE" route show "$IP2" | show
expect_ok "node -> pod $IP2 works" ping1 "$NODE" "$IP2"
expect_ok "pod -> node $NODE_IP works" ping1 "$POD2" "$NODE_IP"
expect_ok "peer -> pod $IP2 still works" ping1 "$PEER" "$IP2"

step "The peer still sees one MAC address for the node"
say "macvlan-host's shim is on the LAN too, but it has arp_ignore/arp_filter set and the"
say "neighbour entries are pinned. The peer asks again who has $NODE_IP:"
REPLIES=$(arp_replies "$PEER" "$NODE_IP")
printf '%s\n' "$REPLIES" | show
MACS=$(macs_in "$REPLIES")
if [[ $MACS == "$NODE_MAC" ]]; then
    pass "every ARP reply for $NODE_IP comes from the node's eth0 ($NODE_MAC)"
else
    fail "ARP replies for $NODE_IP came from: ${MACS:-nobody} (expected only $NODE_MAC)"
fi
PEER_SEES=$(ip -n "$PEER" -j neigh show "$NODE_IP" | jq -r '.[0].lladdr // empty')
if [[ $PEER_SEES == "$NODE_MAC" ]]; then
    pass "the peer's neighbour entry for the node is eth0's MAC"
else
    fail "the peer's neighbour entry for the node is ${PEER_SEES:-missing} (expected $NODE_MAC)"
fi

step "A pod with macvlan-host on its own (hostAccess: veth)"
OURS_VETH=$(jq -nc --arg state "$WORK/state" --argjson ipam "$(ipam 10.99.0.150)" \
    '{cniVersion: "1.0.0", name: "demo-veth", type: "macvlan-host", master: "eth0", hostAccess: "veth", stateDir: $state, ipam: $ipam}')
say "macvlan-host can also create the macvlan itself; with hostAccess veth each pod gets a"
say "veth pair to the node instead of sharing the shim:"
jq . <<<"$OURS_VETH" | show
POD3=$P-pod3
netns "$POD3"
R3=$(cni ADD "$POD3" "$OURS_VETH")
IP3=$(pod_ip "$R3")
say "the pod got $IP3; inside the pod:"
ip -n "$POD3" -br addr | show
expect_ok "node -> pod $IP3 works (through the veth)" ping1 "$NODE" "$IP3"
expect_ok "pod -> node $NODE_IP works" ping1 "$POD3" "$NODE_IP"
expect_ok "peer -> pod $IP3 works (through the macvlan)" ping1 "$PEER" "$IP3"
expect_ok "the two pods reach each other" ping1 "$POD2" "$IP3"

step "Remove the pods: nothing is left behind"
cni DEL "$POD3" "$(with_prev "$OURS_VETH" "$R3")"
cni DEL "$POD2" "$(with_prev "$OURS_SHIM" "$R2")"
cni DEL "$POD2" "$(with_prev "$MACVLAN" "$R2")"
say "node links and routes now:"
ip -n "$NODE" -br link | show
ip -n "$NODE" route | show
LINKS=$(ip -n "$NODE" -j link | jq -r '[.[].ifname] | join(" ")')
[[ $LINKS == "lo eth0" ]] && pass "no shim, no veth on the node" || fail "links left on the node: $LINKS"
ROUTES=$(ip -n "$NODE" -j route | jq -r '[.[].dst] | join(" ")')
[[ $ROUTES == "default 10.99.0.0/24" ]] && pass "no pod routes on the node" || fail "routes left on the node: $ROUTES"
PERM=$(ip -n "$NODE" neigh | grep -c PERMANENT || true)
[[ $PERM == 0 ]] && pass "no pinned neighbour entries on the node" || fail "$PERM pinned neighbour entries left"
RECORDS=$(find "$WORK/state" -mindepth 2 | wc -l)
[[ $RECORDS == 0 ]] && pass "no records in macvlan-host's stateDir" || fail "$RECORDS records left in stateDir"
ALLOCATED=$(find "$WORK/host-local" -type f -name '10.*' | wc -l)
[[ $ALLOCATED == 0 ]] && pass "host-local released every address" || fail "$ALLOCATED addresses still allocated"

printf '\n%sdemo: every step behaved as shown.%s %sThe namespaces are removed now.%s\n' \
    "$GREEN" "$RESET" "$DIM" "$RESET"
