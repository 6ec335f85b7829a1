#!/usr/bin/env bash
# vm-kernel: 6.12
# vm-modules: nbd ublk_drv iscsi_tcp sd_mod
# vm-timeout: 2400
# vm-memory: 3072
#
# tests/bench/ublk-vm.sh — a benchmark, not a test. Run it on the host; it boots the VM test bed (tests/vm) on Debian's
# 6.12 kernel (which has ublk_drv) and runs itself inside. One tgtd LUN (a file on the guest's tmpfs) over TCP, and in
# the same run, each a kernel block device read and written by fio (libaio, O_DIRECT):
#   ublk     iserblockd export --device ublk   -> /dev/ublkbN (io_uring commands, user copy)
#   nbd      iserblockd export --device auto   -> /dev/nbdX   (the kernel's NBD client over socketpairs)
#   kernel   open-iscsi + iscsi_tcp            -> /dev/sdX
# with the workloads of tests/bench/lib/rounds.sh, each side back to back, ROUNDS times, alternating the order; medians:
#   4 KiB random read, QD32 IOPS; 4 KiB random write, QD32 IOPS; 1 MiB sequential read, QD8 MB/s; 4 KiB QD1 latency.
# The guest runs under TCG emulation, so absolute figures mean little; the ratios are the result. Last line:
#   RESULT ublk_vs_nbd_randread_iops_ratio=X ... ublk_vs_kernel_qd1_latency_ratio=X   (higher is better for ublk)
# Both exports use the same queue/connection count (CONNECTIONS, default 2) and their own initiator names.
#
# Environment: SIZE of the LUN (default 256M), RUNTIME seconds per fio run (default 8), ROUNDS (default 2),
#              CONNECTIONS (default 2), IBD_SKIP_PUBLISH=1 to use the iserblockd already in artifacts/bin.
set -euo pipefail

if [ -z "${IBD_VM_LIB:-}" ]; then
    # ---- host side: publish, boot, run this script in the guest ----
    . "$(dirname "$(realpath "$0")")/lib/vm-host.sh"
    bench_boot_vm bench-ublk -e "SIZE=${SIZE:-256M}" -e "RUNTIME=${RUNTIME:-8}" -e "ROUNDS=${ROUNDS:-2}" -e "CONNECTIONS=${CONNECTIONS:-2}"
fi

# ---- guest side ----
. "$IBD_VM_LIB/scenario.sh"
. "$IBD_VM_LIB/tgt.sh"
. "$IBD_REPO/tests/bench/lib/rounds.sh"
SIZE=${SIZE:-256M}
RUNTIME=${RUNTIME:-8}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-2}
IQN=iqn.2024-01.test.iserblockd:bench-ublk
UBLK_INI=iqn.2024-01.test.iserblockd:bench-ublk-side
NBD_INI=iqn.2024-01.test.iserblockd:bench-nbd-side
KERNEL_INI=$(kernel_initiator_name)
OUT=$VM_RUNDIR/fio
mkdir -p "$OUT"

step "tgtd: $IQN over TCP, one ${SIZE} LUN file in tmpfs"
truncate -s "$SIZE" /run/bench.img
tgt_start
tgt_target iscsi 1 "$IQN"
tgt_lun iscsi 1 1 /run/bench.img 512
tgt_allow iscsi 1 "$UBLK_INI" "$NBD_INI" "$KERNEL_INI"

step "the kernel's initiator over TCP (iscsi_tcp)"
rm -rf /etc/iscsi/nodes /etc/iscsi/send_targets
spawn iscsid 3000 iscsid -f
wait_for 20 "iscsid's control socket" bash -c 'ss -xl | grep -q ISCSIADM_ABSTRACT_NAMESPACE'
timeout 120 iscsiadm -m discovery -t sendtargets -p 127.0.0.1 >/dev/null
timeout 120 iscsiadm -m node -T "$IQN" -p 127.0.0.1 --login >/dev/null
at_exit "timeout 30 iscsiadm -m node -T $IQN -p 127.0.0.1 --logout"
wait_for 30 "the SCSI disk of the LUN" bash -c '. $IBD_VM_LIB/tgt.sh; iscsi_disk_for_lun 1'
SDX=/dev/$(iscsi_disk_for_lun 1)

step "our exports of the same LUN: /dev/ublkbN and /dev/nbdX ($CONNECTIONS queues / connections each)"
export_lun() {
    local name=$1 ini=$2 device=$3
    spawn "$name" 3000 iserblockd export --portal 127.0.0.1 --target "$IQN" --lun 1 --transport tcp \
        --initiator-name "$ini" --device "$device" --connections "$CONNECTIONS" --log-level warning
    EXPORT_PIDS+=("$SPAWNED")
    wait_for 120 "$name to be ready" grep -q '^ready: ' "$VM_RUNDIR/$name.log"
}
EXPORT_PIDS=()
export_lun ublk "$UBLK_INI" ublk
export_lun nbd "$NBD_INI" auto
UBLK_DEV=$(sed -n 's/^ready: //p' "$VM_RUNDIR/ublk.log")
NBD_DEV=$(sed -n 's/^ready: //p' "$VM_RUNDIR/nbd.log")
for d in "$UBLK_DEV" "$NBD_DEV" "$SDX"; do
    info "$d: max_sectors_kb $(cat /sys/block/${d#/dev/}/queue/max_sectors_kb), nr_requests $(cat /sys/block/${d#/dev/}/queue/nr_requests)"
done

# bench_fio NAME SIDE ARGS... -> $OUT/NAME.json
bench_fio() {
    local name=$1 side=$2 dev
    shift 2
    case $side in ublk) dev=$UBLK_DEV ;; nbd) dev=$NBD_DEV ;; kernel) dev=$SDX ;; esac
    fio --name="$name" --ioengine=libaio --direct=1 --filename="$dev" --size="$SIZE" \
        --output-format=json --output="$OUT/$name.json" "$@" >/dev/null
}

step "filling the LUN (through /dev/sdX) so that reads return real data"
bench_fio fill kernel --rw=write --bs=1M --iodepth=8 --buffer_pattern=0x5a

bench_rounds "ublk nbd kernel"
for pid in "${EXPORT_PIDS[@]}"; do kill -0 "$pid" || fail "an export died during the benchmark: $(tail -5 "$VM_RUNDIR"/ublk.log "$VM_RUNDIR"/nbd.log)"; done

python3 "$IBD_REPO/tests/bench/lib/summarize.py" "$OUT" "$ROUNDS" ublk nbd kernel \
    --title "tgtd LUN of $SIZE on tmpfs over TCP in a TCG guest (Linux $(uname -r)), fio libaio O_DIRECT on each device" \
    --title "ublk = iserblockd export --device ublk (/dev/ublkbN); nbd = iserblockd export --device auto (/dev/nbdX);" \
    --title "kernel = open-iscsi + iscsi_tcp (/dev/sdX)"
