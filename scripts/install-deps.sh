#!/usr/bin/env bash
# Installs what the build and the tests need, on Debian bookworm, as root.
# Idempotent and fast when everything is present: `make test` runs it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust comes from rustup, not from Debian: say so now rather than fail later.
scripts/check-rust.sh

PACKAGES=(
    # build
    build-essential ca-certificates make
    # topology and commands run inside the test namespaces
    iproute2 util-linux procps iputils-ping iputils-arping tcpdump jq busybox-static
    # crash tests: SIGKILL at a chosen syscall (strace -e inject)
    strace
    # reference CNI plugins (host-local, macvlan, ...) and the libcni client sources
    containernetworking-plugins golang-go golang-github-appc-cni-dev
    # a real container runtime with a CNI backend; it also builds the image (make image)
    podman runc
    # the project-local Python environment of the manifest validator (tests/manifests.rs)
    python3-venv
    # `systemd-analyze verify` of deploy/systemd (tests/manifests.rs)
    systemd
    # kubelet's runtime path: containerd's CRI, driven by tests/cri-driver (whose CRI bindings
    # are generated from the protobufs at build time, hence protoc)
    containerd protobuf-compiler
    # the LAN's DHCP server in tests/user_setups/dhcp.rs: the binary only (the `dnsmasq`
    # package would also start a DHCP/DNS service on the machine)
    dnsmasq-base
    # the Debian trixie and sid root file systems of the newer runtimes (podman 5, Docker 26/28,
    # containerd 2.1, CNI 1.1 plugins), built by scripts/runtime-root.sh when a test first
    # needs one (tests/common/runtime_node.rs)
    debootstrap
)

# Prints the packages that are not installed yet, one per line.
missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
            echo "$pkg"
        fi
    done
}

mapfile -t missing < <(missing_packages)
if ((${#missing[@]} > 0)); then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # With recommends, as podman needs them for its CNI backend (containers-common, iptables).
    apt-get install -y "${PACKAGES[@]}"
fi

# `make test` runs rustfmt and clippy; add them to the toolchain when rustup manages it.
if command -v rustup >/dev/null; then
    installed=$(rustup component list --installed)
    for component in rustfmt clippy; do
        if ! grep -q "^${component}" <<<"$installed"; then
            rustup component add "$component"
        fi
    done
fi

# The Kubernetes schema validator for deploy/ (tests/manifests.rs), from PyPI, in a virtual
# environment inside the project (never the system's Python). It ships the API schemas.
KUBERNETES_VALIDATE=1.34.1
VENV=target/venv
if [[ $("$VENV/bin/kubernetes-validate" --version 2>/dev/null) != *"$KUBERNETES_VALIDATE"* ]]; then
    echo "install-deps: installing kubernetes-validate $KUBERNETES_VALIDATE into $VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE"
fi

# --- Host network managers for tests/network_managers.rs -------------------------------------
# The test runs the real systemd-networkd (in the systemd package, already installed) and
# NetworkManager inside a node's network namespace. NetworkManager is unpacked, not installed:
# `apt-get install network-manager` would upgrade systemd and pull in udev and systemd-sysv on
# this machine. The daemon and its libraries not already on the machine go into a cache
# directory (MVH_NM_ROOT, default target/network-manager/root) that the test reads; the test
# also needs a system bus daemon of its own.
NM_PACKAGES=(network-manager libndp0 libnm0)

# Unpacks NetworkManager into $1 unless it is there already.
unpack_network_manager() {
    local root=$1 work
    if [[ -x "$root/usr/sbin/NetworkManager" ]]; then
        return
    fi
    echo "install-deps: unpacking ${NM_PACKAGES[*]} into $root"
    work=$(mktemp -d)
    # The package lists may be missing on a fresh machine.
    if ! (cd "$work" && apt-get download -o APT::Sandbox::User=root "${NM_PACKAGES[@]}"); then
        apt-get update
        (cd "$work" && apt-get download -o APT::Sandbox::User=root "${NM_PACKAGES[@]}")
    fi
    local deb
    for deb in "$work"/*.deb; do
        dpkg-deb -x "$deb" "$work/root"
    done
    # Whole or not at all: a run killed half-way leaves no root that looks complete.
    mkdir -p "$(dirname "$root")"
    rm -rf "$root"
    mv "$work/root" "$root"
    rm -rf "$work"
}

# dbus-daemon for NetworkManager's private system bus (the test starts its own, never the
# machine's).
install_dbus_daemon() {
    if ! command -v dbus-daemon >/dev/null; then
        echo "install-deps: installing dbus-daemon"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y --no-install-recommends dbus-daemon
    fi
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
unpack_network_manager "${MVH_NM_ROOT:-$repo/target/network-manager/root}"
install_dbus_daemon
