#!/usr/bin/env bash
# Usage: scripts/fetch-kernel.sh SUITE   (bullseye, bookworm, trixie, sid)
#
# Prints the path of the suite's current Debian amd64 kernel (vmlinuz), unpacked with its
# modules (depmod run) into /var/cache/macvlan-host/kernels/SUITE/, never installed. The package
# is found and downloaded with a private apt configuration per suite (its own sources.list and
# lists; the machine's keyring already trusts Debian's suites), so the machine's apt state is not
# touched. A kernel already in the cache is reused without any network (MVH_KERNEL_REFRESH=1
# looks for a newer one). Builds happen under an flock, so concurrent callers never race; a
# killed run leaves no half kernel that looks complete.
set -euo pipefail

suite=${1:?usage: fetch-kernel.sh SUITE}
CACHE=${MVH_KERNEL_CACHE:-/var/cache/macvlan-host/kernels}
MIRROR=${MVH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
dir=$CACHE/$suite
mkdir -p "$dir"

private_apt() {
    apt-get -o Dir::Etc::sourcelist="$dir/apt/sources.list" -o Dir::Etc::sourceparts=- \
        -o Dir::State::lists="$dir/apt/lists" -o Dir::Cache="$dir/apt/cache" \
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
        -o APT::Sandbox::User=root -qq "$@"
}
private_apt_cache() {
    apt-cache -o Dir::Etc::sourcelist="$dir/apt/sources.list" -o Dir::Etc::sourceparts=- \
        -o Dir::State::lists="$dir/apt/lists" -o Dir::Cache="$dir/apt/cache" \
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= "$@"
}

# The current kernel's path, once complete (`current` names it; written last).
current_kernel() {
    [[ -f $dir/current ]] && [[ -f $dir/$(cat "$dir/current")/vmlinuz ]] && echo "$dir/$(cat "$dir/current")/vmlinuz"
}

fetch() {
    mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial"
    echo "deb $MIRROR $suite main" >"$dir/apt/sources.list"
    echo "fetch-kernel: $suite: reading the package lists of $MIRROR" >&2
    private_apt update >&2
    # linux-image-amd64 depends on the suite's current linux-image-<abi>-amd64.
    local image
    image=$(private_apt_cache depends linux-image-amd64 |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
    [[ -n $image ]] || { echo "fetch-kernel: $suite: no linux-image-<abi>-amd64 found" >&2; return 1; }
    local release=${image#linux-image-}
    if [[ -f $dir/current && $(cat "$dir/current") == "$release" && -f $dir/$release/vmlinuz ]]; then
        return 0
    fi
    echo "fetch-kernel: $suite: downloading $image" >&2
    work=$(mktemp -d "$dir/.work.XXXXXX")
    trap 'rm -rf "${work:-}"' EXIT
    # Since 7.x (sid) the image package is split: the kernel in linux-binary-<release>, the
    # modules in linux-modules-<release>, modules.builtin* in linux-base-<release>, all dependencies of the image package.
    local packages
    packages=("$image" $(private_apt_cache depends "$image" |
        sed -n "s/^ *Depends: \(linux-\(binary\|modules\|base\)-$release\)\$/\1/p"))
    (cd "$work" && private_apt download "${packages[@]}" >&2)
    local deb
    for deb in "$work"/*.deb; do
        dpkg-deb -x "$deb" "$work/root"
    done
    # bullseye and bookworm keep modules under lib/modules, trixie and later under usr/lib/modules.
    local modules
    for modules in "$work/root/lib/modules" "$work/root/usr/lib/modules"; do
        [[ -d $modules/$release ]] && break
    done
    [[ -d $modules/$release ]] || { echo "fetch-kernel: $suite: no modules in $image" >&2; return 1; }
    # The kernel: in /boot up to 6.x, beside its modules since 7.x (sid).
    local vmlinuz
    for vmlinuz in "$work/root/boot/vmlinuz-$release" "$modules/$release/vmlinuz"; do
        [[ -f $vmlinuz ]] && break
    done
    [[ -f $vmlinuz ]] || { echo "fetch-kernel: $suite: no vmlinuz in ${packages[*]}" >&2; return 1; }
    # virtme-ng finds the modules by walking up from the kernel: keep vmlinuz beside lib/modules.
    mkdir -p "$work/kernel/lib"
    mv "$vmlinuz" "$work/kernel/vmlinuz"
    mv "$modules" "$work/kernel/lib/modules"
    depmod -b "$work/kernel" "$release"
    rm -rf "${dir:?}/$release"
    mv "$work/kernel" "$dir/$release"
    rm -rf "$work"
    echo "$release" >"$dir/current.new" && mv "$dir/current.new" "$dir/current"
}

exec 9>"$dir/.lock"
flock 9
if [[ ${MVH_KERNEL_REFRESH:-0} == 1 ]] || ! current_kernel >/dev/null; then
    fetch
fi
current_kernel
