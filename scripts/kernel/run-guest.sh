#!/usr/bin/env bash
# Boot the kernel backend's guest (built by scripts/kernel/build.sh) with exactly the QEMU
# command line of docs/kernel.md ("QEMU command line"), which the Rust side uses too.
#
#   scripts/kernel/run-guest.sh --sock PATH [--mem PATH] [--devices N] [-- EXTRA-QEMU-ARGS...]
#
#   --sock PATH   the agent's virtio-serial port as a unix socket (QEMU listens, wait=off);
#                 connect to it to talk the agent protocol
#   --mem PATH    the guest RAM file (must be in /dev/shm or another tmpfs); default: a new
#                 mktemp file in /dev/shm, removed when this script exits
#   --devices N   number of edu functions (default 2, as in the interface)
#
# The serial console goes to stdout, QEMU's trace to stderr. QEMU runs as a child of this
# script; on exit (also on SIGTERM/SIGINT/SIGHUP) the script kills QEMU and removes a RAM file
# it created. A caller that may SIGKILL this script must start it in its own process group and
# kill the group (scripts/kernel/smoke.py does).
# Environment: SMMU_KERNEL_CACHE (default /var/cache/smmu-conform/kernel), SMMU_QEMU
# (default qemu-system-aarch64).
set -euo pipefail

cache=${SMMU_KERNEL_CACHE:-/var/cache/smmu-conform/kernel}
qemu=${SMMU_QEMU:-qemu-system-aarch64}
sock=""
mem=""
devices=2
usage() { echo "usage: $0 --sock PATH [--mem PATH] [--devices N] [-- EXTRA-QEMU-ARGS...]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
    --sock) [ $# -ge 2 ] || usage; sock=$2; shift 2 ;;
    --mem) [ $# -ge 2 ] || usage; mem=$2; shift 2 ;;
    --devices) [ $# -ge 2 ] || usage; devices=$2; shift 2 ;;
    --) shift; break ;;
    *) usage ;;
    esac
done
[ -n "$sock" ] || usage
case "$devices" in '' | *[!0-9]*) usage ;; esac
for f in Image initrd.gz; do
    [ -e "$cache/current/$f" ] || { echo "run-guest.sh: $cache/current/$f missing: run scripts/kernel/build.sh" >&2; exit 2; }
done

own_mem=0
if [ -z "$mem" ]; then
    mem=$(mktemp /dev/shm/smmu-conform-guest.XXXXXX)
    own_mem=1
fi
qpid=""
cleanup() {
    if [ -n "$qpid" ]; then
        kill -KILL "$qpid" 2>/dev/null || true
        wait "$qpid" 2>/dev/null || true
    fi
    if [ "$own_mem" = 1 ]; then rm -f "$mem"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

edu=()
for ((i = 0; i < devices; i++)); do edu+=(-device edu); done

# Run QEMU in the background and wait, so that a signal to this script runs the trap at once
# instead of after QEMU exits. stdin stays QEMU's (-nographic multiplexes the console on stdio).
"$qemu" -M virt,iommu=smmuv3,gic-version=3,memory-backend=mem -cpu max -m 512M \
    -object memory-backend-file,id=mem,size=512M,mem-path="$mem",share=on \
    -nographic -no-reboot \
    -kernel "$cache/current/Image" -initrd "$cache/current/initrd.gz" \
    -append "console=ttyAMA0 quiet panic=-1" \
    "${edu[@]}" \
    -device virtio-serial-pci \
    -chardev socket,id=agent,path="$sock",server=on,wait=off \
    -device virtserialport,chardev=agent,name=smmu-conform.agent \
    -trace 'smmuv3_cmdq_*' -trace smmuv3_range_inval -trace smmuv3_write_mmio \
    -trace virtio_console_flush_buf \
    "$@" <&0 &
qpid=$!
set +e
wait "$qpid"
rc=$?
set -e
qpid=""
exit "$rc"
