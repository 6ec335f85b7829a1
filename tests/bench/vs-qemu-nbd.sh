#!/usr/bin/env bash
# tests/bench/vs-qemu-nbd.sh — a benchmark, not a test.
#
# One tgtd LUN (a file on tmpfs, so the target's disk is not what is measured), exported over NBD on a
# Unix socket twice, in the same run:
#   ours    iserblockd export (NativeAOT Release build)   -> iSCSI/TCP -> tgtd
#   qemu    qemu-nbd --image-opts driver=iscsi,...         (qemu's libiscsi driver, raw) -> tgtd
# and fio's nbd engine (libnbd) against each:
#   4 KiB random read, QD32          IOPS      ratio ours/qemu-nbd   (higher is better)
#   4 KiB random write, QD32         IOPS      ratio ours/qemu-nbd   (higher is better)
#   1 MiB sequential read, QD8       MB/s      ratio ours/qemu-nbd   (higher is better)
#   4 KiB random read, QD1           latency   ratio qemu-nbd/ours   (higher is better: ours is faster)
# Each workload runs on both back to back, ROUNDS times, alternating which goes first; the figures
# are medians. The LUN is filled first so that reads return real data. The last line is:
#   RESULT randread_iops_ratio=X randwrite_iops_ratio=X seqread_mbps_ratio=X qd1_latency_ratio=X
#          cpu_per_io_randread_ratio=X cpu_per_io_randwrite_ratio=X cpu_per_io_seqread_ratio=X
# where the cpu_per_io ratios are the other side's server CPU time (user + system, ramp excluded) per I/O over ours.
# A short run per side under strace counts each server's system calls per I/O (strace slows it: not timed).
# Beside every QD1 round, libiscsi's own iscsi-perf reads 4 KiB at random, one at a time, straight from the target
# (no NBD hop, no fio, sleeping in poll(2) for each answer): qemu-nbd's latency over it is the qd1_latency_ratio
# of a server that added nothing to such a client (printed as qd1_latency_ratio_ceiling); one that polls instead of
# sleeping (ours, lowDepthPollMicroseconds) can go past it.
#
# Environment: SIZE (default 1G), RUNTIME seconds per fio run (default 10), ROUNDS (default 3),
#              IBD_BIN (an iserblockd to use instead of publishing one), JOBS fio jobs for the QD32
#              runs (default 1; iodepth is per job).
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/../.."
. tests/bench/lib/rounds.sh

SIZE=${SIZE:-1G}
RUNTIME=${RUNTIME:-10}
ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-1}
PATH=$PATH:/usr/sbin:/sbin
for tool in fio tgtd tgtadm qemu-nbd nbdinfo python3 ss iscsi-perf iscsi-readcapacity16; do
    command -v "$tool" >/dev/null || { echo "vs-qemu-nbd.sh: $tool is not installed (run ./setup.sh --no-demo)" >&2; exit 1; }
done

if [ -n "${IBD_BIN:-}" ]; then
    IBD=$IBD_BIN
else
    export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1
    echo "publishing iserblockd (NativeAOT, Release) ..." >&2
    dotnet publish daemon/iserblockd/iserblockd.csproj -c Release -r linux-x64 -o artifacts/bench-bin -v q -nologo >&2
    IBD=$PWD/artifacts/bench-bin/iserblockd
fi

WORK=$(mktemp -d /tmp/vs-qemu-nbd.XXXXXX)
LUNDIR=$(mktemp -d /dev/shm/vs-qemu-nbd.XXXXXX)
export TGT_IPC_SOCKET=$WORK/tgtd-ipc
PORT=$(free_port)
TARGET=iqn.2024-01.org.iserblockd.bench:lun
TGTD_PID="" OURS_PID="" QEMU_PID=""
cleanup() {
    set +e
    [ -n "$OURS_PID" ] && kill -TERM "$OURS_PID" 2>/dev/null && wait "$OURS_PID" 2>/dev/null
    [ -n "$QEMU_PID" ] && kill -TERM "$QEMU_PID" 2>/dev/null && wait "$QEMU_PID" 2>/dev/null
    [ -n "$TGTD_PID" ] && kill -KILL "$TGTD_PID" 2>/dev/null && wait "$TGTD_PID" 2>/dev/null
    rm -rf "$WORK" "$LUNDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tgtd -f --iscsi "portal=127.0.0.1:$PORT" >"$WORK/tgtd.log" 2>&1 &
TGTD_PID=$!
for _ in $(seq 100); do tgtadm --lld iscsi --mode target --op show >/dev/null 2>&1 && break; sleep 0.1; done
truncate -s "$SIZE" "$LUNDIR/lun1.img"
tgtadm --lld iscsi --mode target --op new --tid 1 --targetname "$TARGET"
tgtadm --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$LUNDIR/lun1.img"
tgtadm --lld iscsi --mode target --op bind --tid 1 --initiator-address 127.0.0.1

"$IBD" export --portal "127.0.0.1:$PORT" --target "$TARGET" --lun 1 --socket "$WORK/ours.sock" \
    --initiator-name iqn.2024-01.org.iserblockd.bench:ours >"$WORK/ours.out" 2>"$WORK/ours.err" &
OURS_PID=$!
qemu-nbd --persistent --shared=64 --cache=none --socket "$WORK/qemu.sock" --image-opts \
    "driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$TARGET,lun=1,initiator-name=iqn.2024-01.org.iserblockd.bench:qemu" \
    >"$WORK/qemu.out" 2>"$WORK/qemu.err" &
QEMU_PID=$!

OURS_URI="nbd+unix:///?socket=$WORK/ours.sock"
QEMU_URI="nbd+unix:///?socket=$WORK/qemu.sock"
wait_nbd "$OURS_URI" 300
wait_nbd "$QEMU_URI" 300

# bench_fio NAME SIDE ARGS... -> $WORK/NAME.json, and NAME.cpu: the CPU time of that side's NBD server
bench_fio() {
    if [ "$2" = qemu-nbd ]; then bench_fio_nbd "$1" "$QEMU_URI" "$QEMU_PID" "${@:3}"
    else bench_fio_nbd "$1" "$OURS_URI" "$OURS_PID" "${@:3}"; fi
}
bench_side_pid() { if [ "$1" = qemu-nbd ]; then echo "$QEMU_PID"; else echo "$OURS_PID"; fi; }

# bench_after WORKLOAD ROUND (rounds.sh): after each QD1 round, the QD1 floor -> $WORK/qd1-direct-ROUND.iops
DIRECT_URL="iscsi://127.0.0.1:$PORT/$TARGET/1"
DIRECT_INITIATOR=iqn.2024-01.org.iserblockd.bench:direct
bench_after() {
    [ "$1" = qd1 ] || return 0
    local block
    block=$(iscsi-readcapacity16 -i "$DIRECT_INITIATOR" "$DIRECT_URL" | awk -F: '/LOGICAL BLOCK LENGTH/ { print $2 }')
    echo "round $2: qd1 straight to the target (iscsi-perf) ..." >&2
    # iscsi-perf runs until SIGINT and prints a running average every second; its last one covers the whole run
    { timeout -s INT "$RUNTIME" iscsi-perf -r -m 1 -b $((4096 / block)) -i "$DIRECT_INITIATOR" "$DIRECT_URL" 2>&1 || true; } |
        tr '\r' '\n' | awk '/iops average/ { for (i = 1; i < NF; i++) if ($i == "average") v = $(i + 1) } END { print v }' \
        > "$WORK/qd1-direct-$2.iops"
}

BENCH_TARGET_PID=$TGTD_PID   # tgtd's CPU per I/O too: at QD32 the target on the same cores sets the pace
echo "filling the LUN ..." >&2
bench_fio fill ours --rw=write --bs=1M --iodepth=8 --buffer_pattern=0x5a

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_rounds "ours qemu-nbd"
bench_syscalls "ours qemu-nbd"
kill -0 "$OURS_PID" 2>/dev/null || { echo "iserblockd died:" >&2; cat "$WORK/ours.err" >&2; exit 1; }
kill -0 "$QEMU_PID" 2>/dev/null || { echo "qemu-nbd died:" >&2; cat "$WORK/qemu.err" >&2; exit 1; }

python3 tests/bench/lib/summarize.py "$WORK" "$ROUNDS" ours qemu-nbd \
    --title "one tgtd LUN of $SIZE on tmpfs; ours = iserblockd export, qemu-nbd = qemu's libiscsi driver; fio nbd engine on Unix sockets, $JOBS job(s) at QD32" \
    --title "load average before: $LOAD_BEFORE"
