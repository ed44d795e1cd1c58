# Sourced by the watcher's benchmarks (bench-repair.sh, bench-watcher.sh): a node on a LAN in
# throwaway network namespaces, and pods added to it through the plugin as a runtime would.
#
# bench_node PREFIX DIR BIN NODE_CIDR SUBNET RANGE_START RANGE_END
#   namespaces PREFIX-lan (a bridge) and PREFIX-node (eth0 on the bridge, NODE_CIDR); the
#   reference plugins and BIN as macvlan-host in DIR/cni; CONF: a shim network whose stateDir
#   and host-local dataDir are under DIR.
# add_pod N: namespace PREFIX-podN and its ADD; prints the ADD's result.
# innode CMD...: CMD in the node's namespace.

bench_node() {
    BENCH_P=$1 BENCH_T=$2
    local bin=$3 node_cidr=$4 subnet=$5 first=$6 last=$7 ns
    for ns in lan node; do ip netns add "$BENCH_P-$ns"; ip -n "$BENCH_P-$ns" link set lo up; done
    ip -n "$BENCH_P-lan" link add br0 type bridge
    ip -n "$BENCH_P-lan" link set br0 up
    ip -n "$BENCH_P-lan" link add node type veth peer name eth0 netns "$BENCH_P-node"
    ip -n "$BENCH_P-lan" link set node master br0 up
    ip -n "$BENCH_P-node" addr add "$node_cidr" dev eth0
    ip -n "$BENCH_P-node" link set eth0 up

    mkdir -p "$BENCH_T/cni"
    for f in /usr/lib/cni/*; do ln -s "$f" "$BENCH_T/cni/"; done
    ln -s "$bin" "$BENCH_T/cni/macvlan-host"
    CONF='{"cniVersion":"1.1.0","name":"lan","type":"macvlan-host","master":"eth0","stateDir":"'$BENCH_T'/state",
"ipam":{"type":"host-local","dataDir":"'$BENCH_T'/data","ranges":[[{"subnet":"'$subnet'","rangeStart":"'$first'","rangeEnd":"'$last'"}]]}}'
}

innode() { nsenter --net="/run/netns/$BENCH_P-node" "$@"; }

add_pod() {
    ip netns add "$BENCH_P-pod$1"
    echo "$CONF" | CNI_COMMAND=ADD CNI_CONTAINERID="bench$1" CNI_NETNS="/run/netns/$BENCH_P-pod$1" \
        CNI_IFNAME=eth0 CNI_PATH="$BENCH_T/cni" innode "$BENCH_T/cni/macvlan-host"
}
