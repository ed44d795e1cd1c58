#!/usr/bin/env bash
# `make image`: builds the DaemonSet's image (Containerfile: FROM scratch + the static binary)
# with podman, tagged localhost/macvlan-host:<version>. No registry: the base is `scratch`.
#
# Expects the static binary (`make static`). The build context is a directory holding only
# that binary, so podman never walks target/.
# PODMAN overrides the podman command (the tests point it at an isolated storage);
# IMAGE overrides the tag.
set -euo pipefail
cd "$(dirname "$0")/.."

BINARY=target/x86_64-unknown-linux-gnu/release/macvlan-host
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
IMAGE=${IMAGE:-localhost/macvlan-host:$VERSION}
read -r -a PODMAN <<<"${PODMAN:-podman}"

if ! command -v "${PODMAN[0]}" >/dev/null; then
    echo "build-image: ${PODMAN[0]} not found; run scripts/install-deps.sh (Debian's podman)" >&2
    exit 1
fi
if [[ ! -x $BINARY ]]; then
    echo "build-image: $BINARY is missing; run make static first" >&2
    exit 1
fi
if ! ldd "$BINARY" 2>&1 | grep -qE 'not a dynamic executable|statically linked'; then
    echo "build-image: $BINARY is not static; build it with make static" >&2
    exit 1
fi

CONTEXT=$(mktemp -d /tmp/macvlan-host-image-XXXXXX)
trap 'rm -rf "$CONTEXT"' EXIT
cp "$BINARY" "$CONTEXT/macvlan-host"
"${PODMAN[@]}" build --quiet -f "$PWD/Containerfile" -t "$IMAGE" "$CONTEXT" >/dev/null
echo "build-image: built $IMAGE ($(stat -c %s "$BINARY") bytes of binary)"
