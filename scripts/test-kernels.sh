#!/usr/bin/env bash
# The plugin on Debian's own kernels: each kernel booted once in a VM (virtme-ng, with this
# machine's root file system read-only), where tests/kernels/scenarios.sh runs every uplink and
# scenario in namespaces it creates. Prints the table kernel x uplink x scenario; exits 1 if a
# cell failed (or a VM did not finish), 77 if qemu cannot run here at all.
#
# Usage: scripts/test-kernels.sh [--sample]
#   --sample: trixie's kernel only (6.12, the quickest to boot), the vlan uplink, interface
#   mode with the shim (what `make test` runs: tests/kernel_sample.rs).
# Environment:
#   MVH_KERNEL_SUITES   Debian suites to boot (default: bullseye bookworm trixie sid)
#   MVH_KERNEL_MATRIX   "UPLINK=SCENARIO,... UPLINK=..." (default: MATRIX below)
#   MVH_BIN             the plugin binary (default: target/debug/macvlan-host, built here)
#   MVH_KERNEL_XFAIL    cells known to fail, "uplink/scenario" separated by spaces (below)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

SUITES=${MVH_KERNEL_SUITES:-bullseye bookworm trixie sid}
# Every scenario on the VLAN uplink (what production macvlan mostly hangs off); on the others
# the scenarios their link type can change. Emulated, a cell takes 15-40 s: the full product
# would take hours per kernel.
MATRIX=${MVH_KERNEL_MATRIX:-\
vlan=interface-shim,interface-veth,chained-shim,chained-veth,gc,reconcile,one-mac \
plain=interface-shim,chained-veth \
bond=interface-shim,one-mac,failover \
bond-fom=one-mac,failover \
bridge=interface-shim,chained-veth,one-mac}
# Cells known to fail (none today: bond-fom/failover, a master whose MAC changes, passes since
# the shim follows the master's MAC). A listed cell is shown as "xfail" and not counted; an
# "XPASS" (a listed cell that passes) fails the run, so the list cannot go stale.
XFAIL=${MVH_KERNEL_XFAIL-}
if [[ ${1:-} == --sample ]]; then
    SUITES=trixie MATRIX=vlan=interface-shim
fi

# --- Can qemu run here at all? --------------------------------------------------------------
if [[ $(id -u) != 0 ]]; then
    echo "test-kernels: SKIPPED: needs root (the scenarios build network namespaces)" >&2
    exit 77
fi
scripts/install-kernel-deps.sh
export PATH=$repo/target/vng-venv/bin:$PATH
if ! qemu-system-x86_64 -version >/dev/null 2>&1; then
    echo "test-kernels: SKIPPED: qemu-system-x86_64 cannot run on this machine" >&2
    exit 77
fi
# Hardware KVM only with kvm_intel or kvm_amd: some machines offer a paravirtual /dev/kvm
# (kvm_pvm) on which Debian's kernels do not boot. Otherwise qemu emulates (TCG), slowly.
accel=(--disable-kvm)
if [[ -d /sys/module/kvm_intel || -d /sys/module/kvm_amd ]] && [[ -w /dev/kvm ]]; then
    accel=()
fi

BIN=${MVH_BIN:-}
if [[ -z $BIN ]]; then
    cargo build --quiet --bin macvlan-host
    BIN=$repo/target/debug/macvlan-host
fi

# --- One boot per kernel ---------------------------------------------------------------------
run_dir=$repo/target/kernel-runs/$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$run_dir"
# Without its debug information: the guest copies it over 9p, at emulated speed.
strip -o "$run_dir/macvlan-host" "$BIN"
BIN=$run_dir/macvlan-host
total_start=$SECONDS
declare -A boot_seconds release_of
for suite in $SUITES; do
    kernel=$(scripts/fetch-kernel.sh "$suite")
    release_of[$suite]=$(basename "$(dirname "$kernel")")
    out=$run_dir/$suite
    mkdir -p "$out"
    echo "test-kernels: booting $suite's ${release_of[$suite]} (${accel[*]:-kvm})" >&2
    start=$SECONDS
    # The guest sees /var/cache as an empty tmpfs: the kernel's folder is passed in read-only
    # (its modules are linked from there). virtme-ng's own channel for the exit status needs
    # udev, absent here: the scenarios write their results into the --rwdir folder instead.
    timeout "${MVH_KERNEL_BOOT_TIMEOUT:-3600}" vng --run "$kernel" "${accel[@]}" \
        --cpus 1 --memory 1G --rodir="$(dirname "$kernel")" --rwdir="$out" \
        --exec "MVH_BIN=$BIN tests/kernels/scenarios.sh $out '$MATRIX'" \
        </dev/null >"$out/console.log" 2>&1 || true
    boot_seconds[$suite]=$((SECONDS - start))
done

# --- The table -------------------------------------------------------------------------------
# in_matrix UPLINK SCENARIO
in_matrix() { [[ " $MATRIX " =~ [[:space:]]$1=([^[:space:]]*,)?$2(,|[[:space:]]) ]]; }
uplinks=$(for row in $MATRIX; do echo "${row%%=*}"; done)
scenarios=$(for row in $MATRIX; do tr , '\n' <<<"${row#*=}"; done | awk '!seen[$0]++')
failed=0
printf '\n%-22s %-9s' kernel uplink
for scenario in $scenarios; do printf ' %-14s' "$scenario"; done
printf '\n'
for suite in $SUITES; do
    results=$run_dir/$suite/results.tsv
    if [[ ! -f $run_dir/$suite/status ]]; then
        printf '%-22s the VM did not finish: see %s\n' "${release_of[$suite]}" "$run_dir/$suite/"
        failed=1
        continue
    fi
    for uplink in $uplinks; do
        printf '%-22s %-9s' "${release_of[$suite]}" "$uplink"
        for scenario in $scenarios; do
            verdict=$(awk -F'\t' -v u="$uplink" -v s="$scenario" '$1 == u && $2 == s { print $3 }' "$results")
            if ! in_matrix "$uplink" "$scenario"; then
                verdict=.
            elif [[ " $XFAIL " == *" $uplink/$scenario "* ]]; then
                case $verdict in
                FAIL) verdict=xfail ;;
                pass) verdict=XPASS failed=1 ;;
                *) verdict=${verdict:-missing} failed=1 ;;
                esac
            else
                case $verdict in
                pass) ;;
                skip) verdict=- ;;
                *) verdict=${verdict:-missing} failed=1 ;;
                esac
            fi
            printf ' %-14s' "$verdict"
        done
        printf '\n'
    done
done
printf '\n'
for suite in $SUITES; do
    awk -F'\t' -v k="${release_of[$suite]}" '$3 == "FAIL" { printf "%s %s/%s failed at: %s\n", k, $1, $2, $5 }' \
        "$run_dir/$suite/results.tsv" 2>/dev/null
done
for suite in $SUITES; do
    printf 'time: %s %s s (boot and every cell)\n' "${release_of[$suite]}" "${boot_seconds[$suite]}"
done
printf 'time: total %s s; logs in %s\n' "$((SECONDS - total_start))" "$run_dir"
exit $failed
