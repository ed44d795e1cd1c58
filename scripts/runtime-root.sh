#!/usr/bin/env bash
# scripts/runtime-root.sh SUITE (trixie | sid): a Debian root file system holding the newer
# container runtimes (podman 5 + netavark, Docker 26/28, containerd 1.7/2.1), for the tests that
# run them inside a test node (tests/common/runtime_node.rs; ../shared/notes/newer-runtimes.md).
#
# Built once with debootstrap and cached outside the checkout, under
# ${MVH_ROOTS:-/var/cache/macvlan-host/roots}/SUITE-HASH, where HASH names the package set and
# the recipe: two checkouts that want different sets keep their own root instead of rebuilding
# each other's. Idempotent and fast when the root is there; concurrent builders wait on an
# flock. Prints the root's path on stdout (progress goes to stderr).
#
# Packages are downloaded with network, then installed in a namespace without one
# (`unshare -m -n`), with a policy-rc.d that forbids starting services: no maintainer script
# sees an interface or starts a daemon, and nothing touches the machine's network.
set -euo pipefail

# `--prune SUITE`: only remove that suite's roots of other package sets unused for 14 days
# (below, `prune_unused`; every use of the script does it too).
prune_only=
if [[ ${1:-} == --prune ]]; then
    prune_only=1
    shift
fi

# `--background SUITE...`: start the builds and return at once (`make test` starts them first,
# so that they overlap the compilation; a test that needs a root waits on the flock below).
if [[ ${1:-} == --background ]]; then
    shift
    logs=${MVH_ROOTS:-/var/cache/macvlan-host/roots}
    mkdir -p "$logs"
    for suite in "$@"; do
        setsid "$0" "$suite" >"$logs/$suite.background.log" 2>&1 </dev/null &
        echo "runtime-root($suite): building in the background (log: $logs/$suite.background.log)" >&2
    done
    exit 0
fi

SUITE=${1:-}
case "$SUITE" in
trixie | sid) ;;
*)
    echo "usage: $0 trixie|sid, $0 --prune trixie|sid, or $0 --background trixie|sid..." >&2
    exit 2
    ;;
esac

# What every root holds: the runtimes, their network parts, a reaper for PID 1 (tini) and the
# tools the tests run inside the node.
PACKAGES=(
    podman netavark aardvark-dns crun conmon
    docker.io docker-cli
    containerd runc
    iproute2 iputils-ping busybox-static tini ca-certificates
)
if [[ $SUITE == sid ]]; then
    PACKAGES+=(
        # the CNI 1.1 reference plugins (macvlan, host-local, loopback) for containerd 2.1's CRI
        # and for tests/cni_1_1.rs
        containernetworking-plugins
        # libcni with GC and STATUS (CNI 1.1), built into tests/libcni-driver inside the root
        golang-go golang-github-containernetworking-cni-dev
    )
fi
# Bump when the recipe below changes in a way that changes the root.
RECIPE=1

CACHE=${MVH_ROOTS:-/var/cache/macvlan-host/roots}
STAMP="suite=$SUITE recipe=$RECIPE packages=$(printf '%s\n' "${PACKAGES[@]}" | sort | tr '\n' ' ')"
HASH=$(printf '%s' "$STAMP" | sha256sum | cut -c1-12)
ROOT=$CACHE/$SUITE-$HASH

log() { echo "runtime-root($SUITE): $*" >&2; }

ready() { [[ -f $ROOT/.mvh-stamp && $(cat "$ROOT/.mvh-stamp") == "$STAMP" ]]; }

# Roots of this suite for other package sets or recipes (another checkout's, or an older
# version's) are removed once unused for UNUSED_DAYS: each use touches the root's stamp, and a
# root whose lock someone holds (a build) is left alone. Each root is about 600 MB.
UNUSED_DAYS=${MVH_ROOTS_UNUSED_DAYS:-14}
prune_unused() {
    local other lock
    for other in "$CACHE/$SUITE"-*/; do
        other=${other%/}
        [[ $other != "$ROOT" && -f $other/.mvh-stamp ]] || continue
        [[ -n $(find "$other/.mvh-stamp" -mtime +"$UNUSED_DAYS" 2>/dev/null) ]] || continue
        lock=$other.lock
        (
            flock -n 9 || exit 0
            log "removing $other (unused for more than $UNUSED_DAYS days)"
            rm -rf "$other" "$other.debootstrap.log" "$lock"
        ) 9>>"$lock"
    done
}

if [[ -n $prune_only ]]; then
    prune_unused
    exit 0
fi

if ready; then
    touch "$ROOT/.mvh-stamp"
    prune_unused
    echo "$ROOT"
    exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/$SUITE-$HASH.lock"
flock 9
# Another builder may have finished while we waited.
if ready; then
    echo "$ROOT"
    exit 0
fi

for tool in debootstrap unshare chroot flock; do
    command -v "$tool" >/dev/null || {
        echo "runtime-root: $tool is missing (scripts/install-deps.sh installs it)" >&2
        exit 1
    }
done

# The mirror the machine's own apt sources name (deb822 or one-line format).
mirror() {
    local uri
    uri=$(grep -rhoE '(URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
        grep -oE 'https?://[^[:space:]]+/debian/?' | grep -v -- '-security' | head -n1 || true)
    echo "${MVH_DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}
MIRROR=$(mirror)

START=$SECONDS
WORK="$CACHE/.build-$SUITE-$HASH.$$"
cleanup() {
    # A mount left by a killed step would make rm fail: the mounts live in private namespaces
    # that ended with their unshare, so nothing is mounted here.
    rm -rf "$WORK"
}
trap cleanup EXIT
rm -rf "$CACHE"/.build-"$SUITE-$HASH".*

log "debootstrap --variant=minbase from $MIRROR into $WORK"
unshare -m --propagation private -- \
    debootstrap --variant=minbase "$SUITE" "$WORK" "$MIRROR" >"$CACHE/$SUITE-$HASH.debootstrap.log" 2>&1 || {
    tail -n 30 "$CACHE/$SUITE-$HASH.debootstrap.log" >&2
    log "debootstrap failed (full log: $CACHE/$SUITE-$HASH.debootstrap.log)"
    exit 1
}

# No service starts, no recommends; sid's Release file reads as expired under this clock.
printf '#!/bin/sh\nexit 101\n' >"$WORK/usr/sbin/policy-rc.d"
chmod 755 "$WORK/usr/sbin/policy-rc.d"
cat >"$WORK/etc/apt/apt.conf.d/90macvlan-host" <<'EOF'
APT::Install-Recommends "0";
APT::Install-Suggests "0";
Acquire::Check-Valid-Until "false";
Dpkg::Options { "--force-confdef"; "--force-confold"; };
EOF

log "downloading ${PACKAGES[*]}"
unshare -m --propagation private -- sh -ec '
    root=$1; shift
    mount -t proc proc "$root/proc"
    chroot "$root" apt-get -q update
    DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -q -y --download-only install "$@"
' sh "$WORK" "${PACKAGES[@]}" >&2

log "installing without network"
unshare -m -n --propagation private -- sh -ec '
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount -t tmpfs tmpfs "$root/run"
    mount -t tmpfs tmpfs "$root/tmp"
    mount --rbind /dev "$root/dev"
    DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -q -y install "$@"
    chroot "$root" apt-get clean
' sh "$WORK" "${PACKAGES[@]}" >&2

# Mount points the test node needs inside the root (tests/common/runtime_node.rs).
mkdir -p "$WORK/mvh/build" "$WORK/mvh/work" "$WORK/mvh/old-root"
# Names the package set; written last, so a root is ready only when complete.
echo "$STAMP" >"$WORK/.mvh-stamp"
rm -rf "$ROOT"
mv "$WORK" "$ROOT"
log "built in $((SECONDS - START)) s: $(du -sh "$ROOT" 2>/dev/null | cut -f1)"
prune_unused
echo "$ROOT"
