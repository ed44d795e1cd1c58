#!/usr/bin/env bash
# The kernel matrix's scenarios, run INSIDE a VM booted by scripts/test-kernels.sh (it also
# runs on any machine whose kernel has the link types, but never touches the root namespace:
# every topology lives in namespaces this script creates, with unique names, removed on exit).
#
# Usage: scenarios.sh RESULTS_DIR MATRIX
#   MATRIX: "UPLINK=SCENARIO,SCENARIO... UPLINK=..." (uplinks: build_uplink; scenarios: cell_*)
#   MVH_BIN: the plugin binary (default target/debug/macvlan-host).
#
# Writes RESULTS_DIR/results.tsv (uplink, scenario, pass|FAIL|skip, seconds, failed step),
# RESULTS_DIR/scenarios.log (every step) and RESULTS_DIR/status (0 once all ran).
#
# Topology of one uplink (addresses 10.99.0.0/24 and fd99::/64):
#   LAN   bridge br0, the "switch"
#   NODE  the node: its uplink (below) is the plugin's master, 10.99.0.10, fd99::10
#   PEER  another machine on the LAN, 10.99.0.20, fd99::20 (on VLAN 100 for the vlan uplink)
#   pods  empty namespaces handed to the plugin
# Uplinks: plain (a veth end), vlan (eth0.100), bond and bond-fom (active-backup over two
# ports; -fom with fail_over_mac=active, whose failover changes the bond's MAC), bridge (the
# node's own Linux bridge holding its port).
set -uo pipefail

RESULTS=${1:?usage: scenarios.sh RESULTS_DIR MATRIX}
MATRIX=${2:?usage: scenarios.sh RESULTS_DIR MATRIX}
BIN=$(realpath "${MVH_BIN:-target/debug/macvlan-host}")
REF=${MVH_REFERENCE_PLUGINS:-/usr/lib/cni}

P=mvhk$$                      # prefix of every namespace of this run
T=$(mktemp -d /tmp/mvh-kernels.XXXXXX)
LOG=$RESULTS/scenarios.log
NODE=$P-node PEER=$P-peer LAN=$P-lan
NODE4=10.99.0.10 NODE6=fd99::10 PEER4=10.99.0.20 PEER6=fd99::20
MASTER= PEER_IF=

exec 3>>"$LOG"
log() { echo "$(date +%s.%N | cut -c1-14) $*" >&3; }

cleanup() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-"); do ip netns del "$ns"; done
    rm -rf "$T"
}
trap cleanup EXIT

# --- Steps ---------------------------------------------------------------------------------
# A cell is a list of `step NAME COMMAND...`; the first failing step fails the cell and names it.
FAILED_STEP=
step() {
    local name=$1
    shift
    log "  step: $name: $*"
    if "$@" >>"$LOG" 2>&1; then
        return 0
    fi
    log "  FAILED: $name"
    FAILED_STEP=$name
    return 1
}

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }

# Pings IP from NS (IPv4 or IPv6), a few tries: an emulated VM is slow to resolve neighbours.
reaches() {
    local ns=$1 ip=$2 try
    for try in 1 2 3 4 5; do
        in_ns "$ns" ping -c1 -W1 "$ip" >/dev/null 2>&1 && return 0
    done
    echo "$ns cannot reach $ip"
    return 1
}
unreachable() {
    if in_ns "$1" ping -c1 -W1 "$2" >/dev/null 2>&1; then echo "$1 still reaches $2"; return 1; fi
}

# --- Topology ------------------------------------------------------------------------------
new_ns() {
    ip netns add "$1"
    ip -n "$1" link set lo up
    # Duplicate address detection would delay every IPv6 address by a second or more.
    in_ns "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# Plugs a new port IF of namespace NS into the LAN's switch.
plug() {
    local ns=$1 ifname=$2 port=$3
    ip -n "$LAN" link add "$port" type veth peer name "$ifname" netns "$ns"
    ip -n "$LAN" link set "$port" master br0 up
}

addresses() { ip -n "$1" addr add "$3/24" dev "$2"; ip -n "$1" addr add "$4/64" dev "$2"; ip -n "$1" link set "$2" up; }

build_uplink() {
    local uplink=$1
    new_ns "$LAN"; new_ns "$NODE"; new_ns "$PEER"
    ip -n "$LAN" link add br0 type bridge
    ip -n "$LAN" link set br0 up
    plug "$PEER" eth0 peer
    case $uplink in
    plain)
        plug "$NODE" eth0 node0
        MASTER=eth0 ;;
    vlan)
        plug "$NODE" eth0 node0
        ip -n "$NODE" link set eth0 up
        ip -n "$NODE" link add link eth0 name eth0.100 type vlan id 100
        ip -n "$PEER" link set eth0 up
        ip -n "$PEER" link add link eth0 name eth0.100 type vlan id 100
        MASTER=eth0.100 ;;
    bond | bond-fom)
        plug "$NODE" eth0 node0
        plug "$NODE" eth1 node1
        local fom=()
        [[ $uplink == bond-fom ]] && fom=(fail_over_mac active)
        ip -n "$NODE" link add bond0 type bond mode active-backup miimon 100 "${fom[@]}"
        ip -n "$NODE" link set eth0 master bond0   # ports are down until enslaved
        ip -n "$NODE" link set eth1 master bond0
        MASTER=bond0 ;;
    bridge)
        plug "$NODE" eth0 node0
        ip -n "$NODE" link add br-up type bridge
        ip -n "$NODE" link set eth0 master br-up up
        MASTER=br-up ;;
    esac
    PEER_IF=eth0
    [[ $uplink == vlan ]] && PEER_IF=eth0.100
    addresses "$NODE" "$MASTER" "$NODE4" "$NODE6"
    addresses "$PEER" "$PEER_IF" "$PEER4" "$PEER6"
    reaches "$NODE" "$PEER4" && reaches "$NODE" "$PEER6"
}

teardown_uplink() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-"); do ip netns del "$ns"; done
}

# --- CNI calls -----------------------------------------------------------------------------
# CNI_PATH: our plugin beside Debian's reference plugins, copied into the guest's memory: the
# root file system is 9p without a cache, which would read every binary again at every call.
CNI_DIR=$T/cni
mkdir -p "$CNI_DIR"
cp "$BIN" "$CNI_DIR/macvlan-host"
BIN=$CNI_DIR/macvlan-host
for p in macvlan host-local; do cp "$REF/$p" "$CNI_DIR/$p"; done

# cni VERB CONF_FILE CONTAINER_ID POD: one plugin call inside the node; stdout to $T/out.
cni() {
    local verb=$1 conf=$2 id=$3 pod=$4 netns=
    [[ -n $pod ]] && netns=/run/netns/$pod
    CNI_COMMAND=$verb CNI_CONTAINERID=$id CNI_NETNS=$netns CNI_IFNAME=eth0 CNI_PATH=$CNI_DIR \
        in_ns "$NODE" "$CNI_DIR/$(jq -r .type "$conf")" <"$conf" >"$T/out"
    local rc=$?
    cat "$T/out"
    return $rc
}

# list VERB LIST CONTAINER_ID POD: a conflist run as libcni runs it (ADD in order with each
# result as the next prevResult, the result cached; CHECK in order and DEL in reverse with the
# cached result).
list() {
    local verb=$1 list=$2 id=$3 pod=$4 cache=$T/cache-$3.json n i order
    n=$(jq '.plugins | length' "$list")
    order=$(seq 0 $((n - 1)))
    [[ $verb == DEL ]] && order=$(seq $((n - 1)) -1 0)
    # No cached result (ADD, or a DEL repeated after the cache went): no prevResult.
    [[ $verb == ADD || ! -f $cache ]] && echo '{}' >"$cache"
    for i in $order; do
        jq --argjson i "$i" --slurpfile prev "$cache" \
            '.plugins[$i] + {name, cniVersion} + (if $prev[0] == {} then {} else {prevResult: $prev[0]} end)' \
            "$list" >"$T/conf.json"
        cni "$verb" "$T/conf.json" "$id" "$pod" || return 1
        [[ $verb == ADD ]] && cp "$T/out" "$cache"
    done
    [[ $verb == DEL ]] && rm -f "$cache"
    return 0
}

# Writes a conflist for MODE (interface|chained), HOST_ACCESS (shim|veth), VERSION into FILE;
# state and IPAM data live under $T/CELL.
write_conflist() {
    local file=$1 mode=$2 access=$3 version=$4 cell=$5
    # Each cell has addresses of its own: a LAN peer still holds the neighbour entry of an
    # earlier cell's pod for a while, as it would for a pod deleted a moment ago.
    local ipam first=$((100 + 10 * CELL_NO))
    ipam=$(jq -n --arg dir "$T/$cell/ipam" --arg a4 "10.99.0.$first" --arg b4 "10.99.0.$((first + 9))" \
        --arg a6 "fd99::$first" --arg b6 "fd99::$((first + 9))" '{type: "host-local", dataDir: $dir, ranges: [
        [{subnet: "10.99.0.0/24", rangeStart: $a4, rangeEnd: $b4}],
        [{subnet: "fd99::/64", rangeStart: $a6, rangeEnd: $b6}]]}')
    local ours
    ours=$(jq -n --arg access "$access" --arg state "$T/$cell/state" \
        '{type: "macvlan-host", hostAccess: $access, stateDir: $state}')
    if [[ $mode == interface ]]; then
        jq -n --arg v "$version" --arg m "$MASTER" --argjson ipam "$ipam" --argjson ours "$ours" \
            '{cniVersion: $v, name: "kernels", plugins: [$ours + {master: $m, ipam: $ipam}]}' >"$file"
    else
        jq -n --arg v "$version" --arg m "$MASTER" --argjson ipam "$ipam" --argjson ours "$ours" \
            '{cniVersion: $v, name: "kernels", plugins: [
                {type: "macvlan", master: $m, mode: "bridge", ipam: $ipam}, $ours]}' >"$file"
    fi
}

POD_IP4= POD_IP6=
# The pod's addresses, read from the cached ADD result of container ID.
pod_ips() {
    local cache=$T/cache-$1.json
    read -r POD_IP4 POD_IP6 < <(jq -r '[(.ips[].address | select(contains("."))), (.ips[].address | select(contains(":")))]
        | map(sub("/.*"; "")) | join(" ")' "$cache")
    [[ -n $POD_IP4 && -n $POD_IP6 ]] || { echo "the result lacks an address of each family"; return 1; }
}

new_pod() { new_ns "$P-$1"; }

# The node reaches the pod and the pod the node, IPv4 and IPv6; the LAN peer reaches the pod.
both_ways() {
    local pod=$1
    reaches "$NODE" "$POD_IP4" && reaches "$NODE" "$POD_IP6" &&
        reaches "$pod" "$NODE4" && reaches "$pod" "$NODE6" &&
        reaches "$PEER" "$POD_IP4" && reaches "$PEER" "$POD_IP6"
}

# Nothing of attachment ID (pod POD) is left: no mvh* link, no host route and no permanent
# neighbour on the node, only lo in the pod, no address held in IPAM, no record.
nothing_left() {
    local cell=$1 pod=$2 id=$3
    local links routes neigh podlinks held records
    links=$(ip -n "$NODE" -o link show | awk -F': ' '{print $2}' | grep '^mvh')
    routes=$(ip -n "$NODE" route show | grep -v '^10.99.0.0/24'; ip -n "$NODE" -6 route show | grep -E '^fd99::[0-9a-f]+ ')
    neigh=$(ip -n "$NODE" neigh show nud permanent; ip -n "$NODE" -6 neigh show nud permanent)
    podlinks=$(ip -n "$pod" -o link show | awk -F': ' '{print $2}' | grep -v '^lo$')
    held=$(find "$T/$cell/ipam" -type f -name '*[0-9]*' ! -name 'last_reserved_ip*' ! -name lock 2>/dev/null)
    records=$(records_of "$cell" "$id")
    if [[ -n $links$routes$neigh$podlinks$held$records ]]; then
        echo "left behind: links [$links] routes [$routes] neighbours [$neigh] pod links [$podlinks] IPAM [$held] records [$records]"
        return 1
    fi
}

# Files of the state directory that name attachment ID (in their path or their content).
records_of() { find "$T/$1/state" -name "*$2*" 2>/dev/null; grep -rl -- "$2" "$T/$1/state" 2>/dev/null; }
has_record() { [[ -n $(records_of "$1" "$2") ]] || { echo "no record of $2"; return 1; }; }
no_record() { local r; r=$(records_of "$1" "$2"); [[ -z $r ]] || { echo "records of $2 left: $r"; return 1; }; }
# reconcile repairs (or finds nothing to do), and a second pass finds nothing to do.
reconcile_converges() { reconcile "$1"; reconcile_says "$1" 0; }

shim_name() { ip -n "$NODE" -o link show type macvlan | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^mvh-' | head -n1; }
reconcile() { in_ns "$NODE" "$BIN" reconcile --state-dir "$T/$1/state"; }
# reconcile_says CELL EXPECTED: reconcile's exit status is EXPECTED (0 nothing to do, 1 repaired).
reconcile_says() {
    local rc=0
    reconcile "$1" || rc=$?
    [[ $rc == "$2" ]] || { echo "reconcile exited $rc, expected $2"; return 1; }
}
mac_of() { ip -n "$1" -j link show dev "$2" | jq -r '.[0].address'; }

# --- Cells ---------------------------------------------------------------------------------
# ADD, node <-> pod both ways (dual stack), the LAN peer -> pod, CHECK, DEL leaving nothing.
lifecycle() {
    local cell=$1 mode=$2 access=$3 pod=$P-$1 id=$P-$1-c
    write_conflist "$T/$cell/list.json" "$mode" "$access" 1.0.0 "$cell"
    step "pod namespace" new_pod "$cell" &&
        step "ADD" list ADD "$T/$cell/list.json" "$id" "$pod" &&
        step "result has IPv4 and IPv6" pod_ips "$id" &&
        step "node <-> pod, peer -> pod (v4, v6)" both_ways "$pod" &&
        step "CHECK" list CHECK "$T/$cell/list.json" "$id" "$pod" &&
        step "DEL" list DEL "$T/$cell/list.json" "$id" "$pod" &&
        step "node no longer reaches the pod" unreachable "$NODE" "$POD_IP4" &&
        step "DEL left nothing" nothing_left "$cell" "$pod" "$id" &&
        step "DEL again succeeds" list DEL "$T/$cell/list.json" "$id" "$pod"
}
cell_interface-shim() { lifecycle interface-shim interface shim; }
cell_interface-veth() { lifecycle interface-veth interface veth; }
cell_chained-shim() { lifecycle chained-shim chained shim; }
cell_chained-veth() { lifecycle chained-veth chained veth; }

# GC (cniVersion 1.1.0) with one valid attachment removes the other one's host side only.
cell_gc() {
    local cell=gc kept=$P-gc-kept stale=$P-gc-stale kept_ip stale_ip
    write_conflist "$T/$cell/list.json" interface shim 1.1.0 "$cell"
    jq '.plugins[0] + {name, cniVersion} + {"cni.dev/valid-attachments": [{containerID: "'"$kept"'", ifname: "eth0"}]}' \
        "$T/$cell/list.json" >"$T/$cell/gc.json"
    step "pod namespace kept" new_pod gc-kept && step "pod namespace stale" new_pod gc-stale &&
        step "ADD kept" list ADD "$T/$cell/list.json" "$kept" "$kept" &&
        step "kept pod's addresses" pod_ips "$kept" && kept_ip=$POD_IP4 &&
        step "ADD stale" list ADD "$T/$cell/list.json" "$stale" "$stale" &&
        step "stale pod's addresses" pod_ips "$stale" && stale_ip=$POD_IP4 &&
        step "node reaches the kept pod" reaches "$NODE" "$kept_ip" &&
        step "node reaches the stale pod" reaches "$NODE" "$stale_ip" &&
        step "GC" cni GC "$T/$cell/gc.json" "" "" &&
        step "node still reaches the kept pod" reaches "$NODE" "$kept_ip" &&
        step "node no longer reaches the stale pod" unreachable "$NODE" "$stale_ip" &&
        step "stale record removed" no_record "$cell" "$stale" &&
        step "kept record kept" has_record "$cell" "$kept" &&
        step "DEL kept" list DEL "$T/$cell/list.json" "$kept" "$kept" &&
        step "DEL stale" list DEL "$T/$cell/list.json" "$stale" "$stale" &&
        step "nothing left" nothing_left "$cell" "$kept" "$kept"
}

# `reconcile` restores a flushed route and a deleted shim, then has nothing to do.
cell_reconcile() {
    local cell=reconcile pod=$P-reconcile id=$P-reconcile-c shim
    write_conflist "$T/$cell/list.json" interface shim 1.0.0 "$cell"
    step "pod namespace" new_pod "$cell" &&
        step "ADD" list ADD "$T/$cell/list.json" "$id" "$pod" &&
        step "pod's addresses" pod_ips "$id" &&
        step "node reaches the pod" reaches "$NODE" "$POD_IP4" &&
        step "reconcile: nothing to do" reconcile_says "$cell" 0 &&
        shim=$(shim_name) && step "the shim exists" test -n "$shim" &&
        step "flush the shim's IPv4 routes" ip -n "$NODE" -4 route flush dev "$shim" &&
        step "node lost the pod" unreachable "$NODE" "$POD_IP4" &&
        step "reconcile repairs the route" reconcile_says "$cell" 1 &&
        step "node reaches the pod again" both_ways "$pod" &&
        step "delete the shim" ip -n "$NODE" link del "$shim" &&
        step "node lost the pod" unreachable "$NODE" "$POD_IP4" &&
        step "reconcile re-creates the shim" reconcile_says "$cell" 1 &&
        step "node <-> pod again" both_ways "$pod" &&
        step "reconcile: nothing left to do" reconcile_says "$cell" 0 &&
        step "CHECK" list CHECK "$T/$cell/list.json" "$id" "$pod" &&
        step "DEL" list DEL "$T/$cell/list.json" "$id" "$pod" &&
        step "nothing left" nothing_left "$cell" "$pod" "$id"
}

# The LAN sees one MAC for the node's addresses, the master's, while node <-> pod traffic flows.
macs_answering() {
    in_ns "$PEER" arping -c 3 -w 4 -I "$PEER_IF" "$NODE4" | sed -n 's/.*reply from .* \[\(.*\)\].*/\1/p' |
        tr 'A-F' 'a-f' | sort -u
}
peer_meets_node() { reaches "$PEER" "$NODE4" && reaches "$PEER" "$NODE6"; }
# The peer's neighbour entries for the node name the master's MAC, and only it answers ARP.
one_mac() {
    local master_mac answering neigh6 neigh4
    master_mac=$(mac_of "$NODE" "$MASTER")
    answering=$(macs_answering)
    [[ $answering == "$master_mac" ]] || { echo "ARP for $NODE4 answered by [$answering], expected $master_mac"; return 1; }
    neigh4=$(ip -n "$PEER" -j neigh show "$NODE4" | jq -r '.[0].lladdr')
    neigh6=$(ip -n "$PEER" -j neigh show "$NODE6" | jq -r '.[0].lladdr')
    [[ $neigh4 == "$master_mac" && $neigh6 == "$master_mac" ]] ||
        { echo "the peer's neighbours for the node: $neigh4, $neigh6; expected $master_mac"; return 1; }
}
cell_one-mac() {
    local cell=one-mac pod=$P-one-mac id=$P-one-mac-c
    write_conflist "$T/$cell/list.json" interface shim 1.0.0 "$cell"
    step "pod namespace" new_pod "$cell" &&
        step "ADD" list ADD "$T/$cell/list.json" "$id" "$pod" &&
        step "pod's addresses" pod_ips "$id" &&
        step "node <-> pod" both_ways "$pod" &&
        step "flush the peer's neighbours" ip -n "$PEER" neigh flush all &&
        step "peer <-> node" peer_meets_node &&
        step "node <-> pod again" both_ways "$pod" &&
        step "the peer sees one MAC for the node" one_mac &&
        step "DEL" list DEL "$T/$cell/list.json" "$id" "$pod" &&
        step "nothing left" nothing_left "$cell" "$pod" "$id"
}

# Bond uplinks: the active port fails; existing and new pods stay reachable both ways, and
# reconcile converges. With fail_over_mac=active the bond's MAC changes (issue 18, finding 1).
active_slave() { ip -n "$NODE" -d -j link show dev bond0 | jq -r '.[0].linkinfo.info_data.active_slave // empty'; }
fail_over() {
    local old new i
    old=$(active_slave)
    [[ -n $old ]] || { echo "bond0 has no active port"; return 1; }
    ip -n "$NODE" link set "$old" down
    for i in $(seq 50); do
        new=$(active_slave)
        [[ -n $new && $new != "$old" ]] && { echo "active port: $old -> $new"; return 0; }
        sleep 0.2
    done
    echo "bond0 did not fail over from $old"
    return 1
}
mac_changed_as_configured() {
    local now
    now=$(mac_of "$NODE" bond0)
    if [[ $1 == bond-fom ]]; then
        [[ $now != "$2" ]] || { echo "fail_over_mac=active kept the bond's MAC $now"; return 1; }
    else
        [[ $now == "$2" ]] || { echo "the bond's MAC changed: $2 -> $now"; return 1; }
    fi
}
cell_failover() {
    local uplink=$1 cell=failover first=$P-fo-1 second=$P-fo-2 mac
    [[ $uplink == bond* ]] || return 2
    write_conflist "$T/$cell/list.json" interface shim 1.0.0 "$cell"
    mac=$(mac_of "$NODE" bond0)
    step "pod namespace 1" new_pod fo-1 && step "pod namespace 2" new_pod fo-2 &&
        step "ADD first" list ADD "$T/$cell/list.json" "$first" "$first" &&
        step "first pod's addresses" pod_ips "$first" &&
        step "node <-> first pod" both_ways "$first" &&
        step "fail the active port" fail_over &&
        step "bond MAC as configured" mac_changed_as_configured "$uplink" "$mac" &&
        step "node <-> first pod after failover" both_ways "$first" &&
        step "ADD second after failover" list ADD "$T/$cell/list.json" "$second" "$second" &&
        step "second pod's addresses" pod_ips "$second" &&
        step "node <-> second pod" both_ways "$second" &&
        step "reconcile converges" reconcile_converges "$cell" &&
        step "node <-> second pod after reconcile" both_ways "$second" &&
        step "first pod's addresses" pod_ips "$first" &&
        step "node <-> first pod after reconcile" both_ways "$first" &&
        step "CHECK first" list CHECK "$T/$cell/list.json" "$first" "$first" &&
        step "CHECK second" list CHECK "$T/$cell/list.json" "$second" "$second" &&
        step "DEL both" list DEL "$T/$cell/list.json" "$first" "$first" &&
        step "DEL second" list DEL "$T/$cell/list.json" "$second" "$second" &&
        step "nothing left" nothing_left "$cell" "$first" "$first"
}

# --- Main ----------------------------------------------------------------------------------
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }
: >"$RESULTS/results.tsv"
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS/results.tsv"; }
log "kernel $(uname -r); matrix $MATRIX; plugin $BIN"
for row in $MATRIX; do
    uplink=${row%%=*} scenarios=${row#*=}
    fresh=no CELL_NO=0
    for scenario in ${scenarios//,/ }; do
        # One topology per uplink, built again after a failed cell (which may leave a shim).
        if [[ $fresh == no ]]; then
            teardown_uplink
            start=$(date +%s.%N)
            if ! step "build the $uplink topology" build_uplink "$uplink"; then
                record "$uplink" "$scenario" FAIL 0 "topology: $FAILED_STEP"
                continue
            fi
            log "uplink $uplink: topology ready in $(elapsed "$start") s"
            fresh=yes
        fi
        log "cell $uplink/$scenario"
        CELL_NO=$((CELL_NO + 1))
        mkdir -p "$T/$scenario"
        FAILED_STEP=
        start=$(date +%s.%N)
        "cell_$scenario" "$uplink"
        case $? in
        0) verdict=pass ;;
        2) verdict=skip ;;
        *) verdict=FAIL fresh=no ;;
        esac
        secs=$(elapsed "$start")
        log "cell $uplink/$scenario: $verdict in $secs s"
        record "$uplink" "$scenario" "$verdict" "$secs" "$FAILED_STEP"
        rm -rf "${T:?}/$scenario"
        for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" | grep -vx -e "$NODE" -e "$PEER" -e "$LAN"); do
            ip netns del "$ns"
        done
    done
    teardown_uplink
done
echo 0 >"$RESULTS/status"
