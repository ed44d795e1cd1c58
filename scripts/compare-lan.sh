# Sourced by scripts/compare-binaries.sh and scripts/compare-engine.sh: the throwaway LAN both
# compare on. Needs $tag (the namespace prefix, with the caller's pid) and $tmp set; installs an
# EXIT trap that removes the namespaces and $tmp.
#
# LAN: a bridge in its own namespace; node (10.99.0.10) and peer (10.99.0.20) hang on it by
# veth; pod and resident are empty namespaces for the pods.
compare_lan_cleanup() {
    for ns in lan node peer pod resident; do ip netns del "$tag-$ns" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap compare_lan_cleanup EXIT

for ns in lan node peer pod resident; do ip netns add "$tag-$ns"; done
ip -n "$tag-lan" link add br0 type bridge
ip -n "$tag-lan" link set br0 up
for host in node:10.99.0.10 peer:10.99.0.20; do
    name=${host%%:*} address=${host#*:}
    ip -n "$tag-lan" link add "$name" type veth peer name eth0 netns "$tag-$name"
    ip -n "$tag-lan" link set "$name" master br0 up
    ip -n "$tag-$name" link set eth0 up
    ip -n "$tag-$name" link set lo up
    ip -n "$tag-$name" addr add "$address/16" dev eth0
done
