#!/usr/bin/env bash
# Installs what `make test-kernels` (and the kernel sample of `make test`) need to boot Debian's
# kernels in VMs with virtme-ng, on Debian bookworm, as root. Idempotent and quick when done.
#
# - qemu-system-x86 from bookworm-backports (10.0): the machine image carries qemu-utils 10.0
#   from there, which bookworm's own qemu-system-x86 7.2 would downgrade. The backports suite
#   is read through a private apt configuration; the machine's sources are left as they are.
# - busybox-static (virtme-ng builds its initramfs from the host's busybox), kmod (depmod,
#   modprobe), file, python3-venv.
# - virtme-ng from PyPI into the project-local venv target/vng-venv.
set -euo pipefail
cd "$(dirname "$0")/.."

VIRTME_NG=1.42
VENV=target/vng-venv
APT_DIR=/var/cache/macvlan-host/apt-bookworm-backports

installed() {
    dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | grep -q '^install ok installed'
}

# A private apt configuration: the machine's own bookworm suites plus bookworm-backports, with
# lists and caches of its own so the machine's apt state is not changed.
backports_apt() {
    mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/sources.list.d"
    cp /etc/apt/sources.list.d/debian.sources "$APT_DIR/sources.list.d/debian.sources" 2>/dev/null || true
    [[ -f /etc/apt/sources.list ]] && cp /etc/apt/sources.list "$APT_DIR/sources.list" || : >"$APT_DIR/sources.list"
    cat >"$APT_DIR/sources.list.d/backports.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get -o Dir::Etc::sourcelist="$APT_DIR/sources.list" \
        -o Dir::Etc::sourceparts="$APT_DIR/sources.list.d" \
        -o Dir::State::lists="$APT_DIR/lists" \
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= "$@"
}

export DEBIAN_FRONTEND=noninteractive
(
    flock 9
    missing=()
    for pkg in busybox-static kmod file python3-venv; do
        installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} > 0)); then
        echo "install-kernel-deps: installing ${missing[*]}"
        apt-get install -y --no-install-recommends "${missing[@]}" || {
            apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
        }
    fi
    if ! installed qemu-system-x86; then
        echo "install-kernel-deps: installing qemu-system-x86 from bookworm-backports"
        backports_apt update
        backports_apt install -y --no-install-recommends -t bookworm-backports qemu-system-x86
    fi
) 9>/var/lock/macvlan-host-kernel-deps.lock

if [[ $("$VENV/bin/vng" --version 2>/dev/null) != *"$VIRTME_NG"* ]]; then
    echo "install-kernel-deps: installing virtme-ng $VIRTME_NG into $VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "virtme-ng==$VIRTME_NG"
fi
