#!/usr/bin/env bash
# vm-rxe: yes
# vm-modules: nbd ib_iser sd_mod
# vm-timeout: 2400
# vm-memory: 3072
#
# tests/bench/iser-vm.sh — a benchmark, not a test. Run it on the host; it boots the VM test bed (tests/vm) and runs
# itself inside, where soft-RoCE and the kernel's ib_iser exist. One tgtd, one LUN file on the guest's tmpfs, served
# twice by the same tgtd (an iSER target and a TCP target on the same backing file), and in the same run:
#   iser     iserblockd export --transport iser   -> fio nbd engine on a Unix socket
#   tcp      iserblockd export --transport tcp    -> fio nbd engine on a Unix socket   (same NBD path, TCP below)
#   kernel   open-iscsi + ib_iser (iface iser)    -> fio libaio, O_DIRECT, on /dev/sdX
#   nowindows  iserblockd export --transport iser --memory-windows off (a protection domain of its own instead of a
#            memory window bound per command): the cost of the windows is iser's figures over these
# with these workloads, each side back to back, ROUNDS times, alternating the order; medians:
#   4 KiB random read, QD32     IOPS           4 KiB random write, QD32   IOPS
#   1 MiB sequential read, QD8  MB/s           4 KiB random read, QD1     mean latency (ratio inverted)
# The guest runs under TCG emulation, so absolute figures mean little; the ratios are the result. Last line:
#   RESULT iser_vs_tcp_randread_iops_ratio=X iser_vs_tcp_randwrite_iops_ratio=X iser_vs_tcp_seqread_mbps_ratio=X
#          iser_vs_tcp_qd1_latency_ratio=X iser_vs_kernel_randread_iops_ratio=X ... iser_vs_kernel_qd1_latency_ratio=X
# (one line). Every ratio is higher-is-better for iser.
#
# Environment: SIZE of the LUN (default 256M), RUNTIME seconds per fio run (default 8), ROUNDS (default 2),
#              SIDES (default "iser tcp kernel"; the first is compared with each other one; e.g.
#              SIDES="iser nowindows" for the cost of memory windows), IBD_SKIP_PUBLISH=1 to use the iserblockd
#              already in artifacts/bin.
#
# Cold start: tgtd registers its whole iSER buffer pool (1 GiB by default) when the first RDMA connection arrives,
# which under TCG emulation on a loaded host takes longer than open-iscsi's 15 s discovery and login timeouts (the
# kernel's discovery failed there). So tgtd runs with a 256 MiB pool (pool_sz_mb; QD32 of 1 MiB needs 64 MiB) and
# the kernel initiator's discovery and login get 120 s, through a discovery record and the node record.
set -euo pipefail

if [ -z "${IBD_VM_LIB:-}" ]; then
    # ---- host side: publish, boot, run this script in the guest ----
    . "$(dirname "$(realpath "$0")")/lib/vm-host.sh"
    bench_boot_vm bench-iser -e "SIZE=${SIZE:-256M}" -e "RUNTIME=${RUNTIME:-8}" -e "ROUNDS=${ROUNDS:-2}" -e "SIDES=${SIDES:-iser tcp kernel}"
fi

# ---- guest side ----
. "$IBD_VM_LIB/scenario.sh"
. "$IBD_VM_LIB/tgt.sh"
. "$IBD_REPO/tests/bench/lib/rounds.sh"
SIZE=${SIZE:-256M}
RUNTIME=${RUNTIME:-8}
ROUNDS=${ROUNDS:-2}
SIDES=${SIDES:-iser tcp kernel}
has_side() { [[ " $SIDES " == *" $1 "* ]]; }
ISER_IQN=iqn.2024-01.test.iserblockd:bench-iser
TCP_IQN=iqn.2024-01.test.iserblockd:bench-tcp
OUR_INI=iqn.2024-01.test.iserblockd:bench
KERNEL_INI=$(kernel_initiator_name)
OUT=$VM_RUNDIR/fio
mkdir -p "$OUT"

step "tgtd: $ISER_IQN (iSER) and $TCP_IQN (TCP) on one ${SIZE} LUN file in tmpfs"
truncate -s "$SIZE" /run/bench.img
tgt_start --iser pool_sz_mb=256
tgt_target iser 1 "$ISER_IQN"
tgt_lun iser 1 1 /run/bench.img 512
tgt_allow iser 1 "$OUR_INI" "$KERNEL_INI"
tgt_target iscsi 2 "$TCP_IQN"
tgt_lun iscsi 2 1 /run/bench.img 512
tgt_allow iscsi 2 "$OUR_INI"

step "the kernel's initiator over iSER (this also lets tgtd register its RDMA pool before our login timer runs)"
rm -rf /etc/iscsi/nodes /etc/iscsi/send_targets
spawn iscsid 3000 iscsid -f
wait_for 20 "iscsid's control socket" bash -c 'ss -xl | grep -q ISCSIADM_ABSTRACT_NAMESPACE'
discovery=(-m discoverydb -t sendtargets -p "$TGT_IPADDR" -I iser)
iscsiadm "${discovery[@]}" -o new >/dev/null
iscsiadm "${discovery[@]}" -o update -n discovery.sendtargets.timeo.login_timeout -v 120
timeout 300 iscsiadm "${discovery[@]}" --discover >/dev/null || fail "open-iscsi's SendTargets discovery over iSER failed"
iscsiadm -m node -T "$ISER_IQN" -p "$TGT_IPADDR" -I iser -o update -n 'node.conn[0].timeo.login_timeout' -v 120
timeout 300 iscsiadm -m node -T "$ISER_IQN" -p "$TGT_IPADDR" -I iser --login >/dev/null || fail "open-iscsi's iSER login failed"

at_exit "timeout 30 iscsiadm -m node -T $ISER_IQN -p $TGT_IPADDR -I iser --logout"
wait_for 30 "the SCSI disk of the iSER LUN" bash -c '. $IBD_VM_LIB/tgt.sh; iscsi_disk_for_lun 1'
SDX=/dev/$(iscsi_disk_for_lun 1)
wait_for 10 "$SDX" test -b "$SDX"
info "kernel: $SDX (max_sectors_kb $(cat /sys/block/${SDX#/dev/}/queue/max_sectors_kb))"

step "our exports: iSER and TCP"
export_lun() {
    local name=$1 iqn=$2 transport=$3
    shift 3
    spawn "$name" 3000 iserblockd export --portal "$TGT_IPADDR" --target "$iqn" --lun 1 --transport "$transport" \
        --initiator-name "$OUR_INI" --socket "/run/$name.sock" --log-level warning "$@"
    EXPORT_PIDS+=("$SPAWNED")
    wait_for 120 "$name to be ready" grep -q '^ready: ' "$VM_RUNDIR/$name.log"
}
EXPORT_PIDS=()
export_lun iser "$ISER_IQN" iser
has_side nowindows && export_lun nowindows "$ISER_IQN" iser --memory-windows off
export_lun tcp "$TCP_IQN" tcp   # also fills the LUN below

# bench_fio NAME SIDE ARGS... -> $OUT/NAME.json
bench_fio() {
    local name=$1 side=$2
    shift 2
    local target=(--ioengine=nbd --uri="nbd+unix:///?socket=/run/$side.sock")
    [ "$side" = kernel ] && target=(--ioengine=libaio --direct=1 --filename="$SDX")
    fio --name="$name" "${target[@]}" --size="$SIZE" --output-format=json --output="$OUT/$name.json" "$@" >/dev/null
}

step "filling the LUN (through the TCP export) so that reads return real data"
bench_fio fill tcp --rw=write --bs=1M --iodepth=8 --buffer_pattern=0x5a

bench_rounds "$SIDES"
for pid in "${EXPORT_PIDS[@]}"; do kill -0 "$pid" || fail "an export died during the benchmark: $(tail -5 "$VM_RUNDIR"/*.log)"; done

# shellcheck disable=SC2086
python3 "$IBD_REPO/tests/bench/lib/summarize.py" "$OUT" "$ROUNDS" $SIDES \
    --title "tgtd LUN of $SIZE on tmpfs in a TCG guest, soft-RoCE" \
    --title "iser = iserblockd --transport iser (NBD socket, fio nbd engine); tcp = iserblockd --transport tcp (same);" \
    --title "kernel = open-iscsi + ib_iser, fio libaio O_DIRECT on /dev/sdX; nowindows = iser with --memory-windows off"
