#!/usr/bin/env bash
# Installs what the build and the tests need, on Debian bookworm, as root.
# Idempotent and fast when everything is present: `make test` runs it every time.
set -euo pipefail

PACKAGES=(
    # build
    build-essential ca-certificates make
    # topology and commands run inside the test namespaces
    iproute2 util-linux procps iputils-ping iputils-arping tcpdump jq busybox-static
    # crash points (strace kills ADD at a chosen syscall)
    strace
    # reference CNI plugins (host-local, macvlan, ...) and the libcni client sources
    containernetworking-plugins golang-go golang-github-appc-cni-dev
    # a real container runtime with a CNI backend
    podman runc
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
