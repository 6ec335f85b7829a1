#!/usr/bin/env bash
# vm-modules: nbd iscsi_tcp sd_mod
# vm-timeout: 2400
# vm-memory: 3072
#
# tests/bench/kernel-vm.sh — a benchmark, not a test: the kernel path. Run it on the host; it boots the VM test bed
# (tests/vm, Debian's 6.1 kernel) and runs itself inside. One tgtd LUN (a file on the guest's tmpfs) over TCP, read
# and written in the same run by fio (libaio, O_DIRECT) on two kernel block devices:
#   nbd      iserblockd export --device auto   -> /dev/nbdX   (our initiator behind the kernel's NBD client)
#   kernel   open-iscsi + iscsi_tcp            -> /dev/sdX    (the kernel's own initiator)
# with the workloads of tests/bench/vs-qemu-nbd.sh (tests/bench/lib/rounds.sh), each side back to back, ROUNDS times,
# alternating the order; medians:
#   4 KiB random read, QD32 IOPS; 4 KiB random write, QD32 IOPS; 1 MiB sequential read, QD8 MB/s; 4 KiB QD1 latency.
# The guest runs under TCG emulation, so the figures are a regression guard, not a verdict on either initiator: a
# ratio that falls between two runs of the same machine says our path got dearer. Last line:
#   RESULT randread_iops_ratio=X randwrite_iops_ratio=X seqread_mbps_ratio=X qd1_latency_ratio=X
# (higher is better for us: IOPS and MB/s ours/kernel, latency kernel/ours).
#
# Environment: SIZE of the LUN (default 256M), RUNTIME seconds per fio run (default 8), ROUNDS (default 2),
#              CONNECTIONS of our export (default 1, as iscsi_tcp has one session), IBD_SKIP_PUBLISH=1 to use the
#              iserblockd already in artifacts/bin.
set -euo pipefail

if [ -z "${IBD_VM_LIB:-}" ]; then
    # ---- host side: publish, boot, run this script in the guest ----
    . "$(dirname "$(realpath "$0")")/lib/vm-host.sh"
    bench_boot_vm bench-kernel -e "SIZE=${SIZE:-256M}" -e "RUNTIME=${RUNTIME:-8}" -e "ROUNDS=${ROUNDS:-2}" -e "CONNECTIONS=${CONNECTIONS:-1}"
fi

# ---- guest side ----
. "$IBD_VM_LIB/scenario.sh"
. "$IBD_VM_LIB/tgt.sh"
. "$IBD_REPO/tests/bench/lib/rounds.sh"
SIZE=${SIZE:-256M}
RUNTIME=${RUNTIME:-8}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-1}
IQN=iqn.2024-01.test.iserblockd:bench-kernel
NBD_INI=iqn.2024-01.test.iserblockd:bench-nbd-side
KERNEL_INI=$(kernel_initiator_name)
OUT=$VM_RUNDIR/fio
mkdir -p "$OUT"

step "tgtd: $IQN over TCP, one ${SIZE} LUN file in tmpfs"
truncate -s "$SIZE" /run/bench.img
tgt_start
tgt_target iscsi 1 "$IQN"
tgt_lun iscsi 1 1 /run/bench.img 512
tgt_allow iscsi 1 "$NBD_INI" "$KERNEL_INI"

step "the kernel's initiator over TCP (open-iscsi, iscsi_tcp)"
rm -rf /etc/iscsi/nodes /etc/iscsi/send_targets
spawn iscsid 3000 iscsid -f
wait_for 20 "iscsid's control socket" bash -c 'ss -xl | grep -q ISCSIADM_ABSTRACT_NAMESPACE'
timeout 120 iscsiadm -m discovery -t sendtargets -p 127.0.0.1 >/dev/null
timeout 120 iscsiadm -m node -T "$IQN" -p 127.0.0.1 --login >/dev/null
at_exit "timeout 30 iscsiadm -m node -T $IQN -p 127.0.0.1 --logout"
wait_for 30 "the SCSI disk of the LUN" bash -c '. $IBD_VM_LIB/tgt.sh; iscsi_disk_for_lun 1'
SDX=/dev/$(iscsi_disk_for_lun 1)
wait_for 10 "$SDX" test -b "$SDX"

step "our export of the same LUN as /dev/nbdX (kernel NBD client, $CONNECTIONS connection(s))"
spawn nbd 3000 iserblockd export --portal 127.0.0.1 --target "$IQN" --lun 1 --transport tcp \
    --initiator-name "$NBD_INI" --device auto --connections "$CONNECTIONS" --log-level warning
EXPORT_PID=$SPAWNED
wait_for 120 "the export to be ready" grep -q '^ready: ' "$VM_RUNDIR/nbd.log"
NBD_DEV=$(sed -n 's/^ready: //p' "$VM_RUNDIR/nbd.log")
wait_for 10 "$NBD_DEV" test -b "$NBD_DEV"
for d in "$NBD_DEV" "$SDX"; do
    info "$d: max_sectors_kb $(cat /sys/block/${d#/dev/}/queue/max_sectors_kb), nr_requests $(cat /sys/block/${d#/dev/}/queue/nr_requests), scheduler $(cat /sys/block/${d#/dev/}/queue/scheduler)"
done

# bench_fio NAME SIDE ARGS... -> $OUT/NAME.json
bench_fio() {
    local name=$1 side=$2 dev
    shift 2
    case $side in nbd) dev=$NBD_DEV ;; kernel) dev=$SDX ;; esac
    fio --name="$name" --ioengine=libaio --direct=1 --filename="$dev" --size="$SIZE" \
        --output-format=json --output="$OUT/$name.json" "$@" >/dev/null
}

step "filling the LUN (through /dev/sdX) so that reads return real data"
bench_fio fill kernel --rw=write --bs=1M --iodepth=8 --buffer_pattern=0x5a

bench_rounds "nbd kernel"
kill -0 "$EXPORT_PID" || fail "the export died during the benchmark: $(tail -5 "$VM_RUNDIR/nbd.log")"
[ -z "$(kernel_io_errors)" ] || fail "kernel logged I/O errors: $(kernel_io_errors)"

python3 "$IBD_REPO/tests/bench/lib/summarize.py" "$OUT" "$ROUNDS" nbd kernel \
    --title "tgtd LUN of $SIZE on tmpfs over TCP in a TCG guest (Linux $(uname -r)), fio libaio O_DIRECT on each device" \
    --title "nbd = iserblockd export --device auto (/dev/nbdX, $CONNECTIONS connection(s)); kernel = open-iscsi + iscsi_tcp (/dev/sdX)"
