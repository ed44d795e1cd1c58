#!/usr/bin/env bash
# Says clearly when the Rust toolchain is missing or too old, instead of "cargo: command not
# found" or a compile error deep in a dependency. Debian bookworm's own rustc (1.63) is too old:
# install Rust from rustup (https://rustup.rs), which puts cargo in ~/.cargo/bin.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUIRED=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
CARGO=${CARGO:-cargo}

# Under sudo, PATH usually lacks the invoking user's ~/.cargo/bin.
if ! command -v "$CARGO" >/dev/null && [[ -n ${SUDO_USER:-} ]]; then
    user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [[ -x $user_home/.cargo/bin/cargo ]]; then
        echo "check-rust: cargo is in $user_home/.cargo/bin, which sudo left out of PATH; run" >&2
        echo "  sudo env PATH=\"$user_home/.cargo/bin:\$PATH\" make ..." >&2
        exit 1
    fi
fi
for tool in "$CARGO" rustc; do
    if ! command -v "$tool" >/dev/null; then
        echo "check-rust: $tool not found. macvlan-host needs Rust >= $REQUIRED; install it with rustup:" >&2
        echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh" >&2
        echo "(Debian's rustc package is too old.) Then open a new shell, or: . ~/.cargo/env" >&2
        exit 1
    fi
done

# version_at_least HAVE WANT: true when the dotted version HAVE >= WANT.
version_at_least() {
    [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1) == "$2" ]]
}
for tool in "$CARGO" rustc; do
    have=$("$tool" --version | awk '{print $2}')
    if ! version_at_least "$have" "$REQUIRED"; then
        echo "check-rust: $tool $have is too old: macvlan-host needs Rust >= $REQUIRED." >&2
        echo "  With rustup: rustup update stable. Debian's rustc package is too old; use rustup." >&2
        exit 1
    fi
done
