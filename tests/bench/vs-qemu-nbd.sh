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
#
# Environment: SIZE (default 1G), RUNTIME seconds per fio run (default 10), ROUNDS (default 3),
#              IBD_BIN (an iserblockd to use instead of publishing one), JOBS fio jobs for the QD32
#              runs (default 1; iodepth is per job).
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/../.."

SIZE=${SIZE:-1G}
RUNTIME=${RUNTIME:-10}
ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-1}
PATH=$PATH:/usr/sbin:/sbin
for tool in fio tgtd tgtadm qemu-nbd nbdinfo python3 ss; do
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

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        [ -z "$(ss -Hltn "sport = :$port")" ] && { echo "$port"; return; }
    done
}

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
for uri in "$OURS_URI" "$QEMU_URI"; do
    for _ in $(seq 300); do nbdinfo --size "$uri" >/dev/null 2>&1 && break; sleep 0.1; done
    nbdinfo --size "$uri" >/dev/null || { echo "the export at $uri did not start" >&2; cat "$WORK"/*.err >&2; exit 1; }
done

# CPU time (clock ticks, user + system) a process has used so far
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run_fio NAME URI [PID] ARGS... -> $WORK/NAME.json, and $WORK/NAME.cpu with the ticks PID used meanwhile
run_fio() {
    local name=$1 uri=$2 pid=${3:-}
    shift 3
    local before=0
    [ -n "$pid" ] && before=$(cpu_ticks "$pid")
    fio --name="$name" --ioengine=nbd --uri="$uri" --size="$SIZE" --group_reporting \
        --output-format=json --output="$WORK/$name.json" "$@" >/dev/null
    [ -n "$pid" ] && echo $(( $(cpu_ticks "$pid") - before )) > "$WORK/$name.cpu"
    return 0
}

echo "filling the LUN ..." >&2
run_fio fill "$OURS_URI" "" --rw=write --bs=1M --iodepth=8 --buffer_pattern=0x5a --numjobs=1

common=(--time_based --runtime="$RUNTIME" --ramp_time=2 --norandommap --randrepeat=0)
declare -A WORKLOADS=(
    [randread]="--rw=randread --bs=4k --iodepth=32 --numjobs=$JOBS"
    [randwrite]="--rw=randwrite --bs=4k --iodepth=32 --numjobs=$JOBS"
    [seqread]="--rw=read --bs=1M --iodepth=8 --numjobs=1"
    [qd1]="--rw=randread --bs=4k --iodepth=1 --numjobs=1"
)
for round in $(seq "$ROUNDS"); do
    for workload in randread randwrite seqread qd1; do
        order="ours qemu"; [ $((round % 2)) = 0 ] && order="qemu ours"
        for side in $order; do
            uri=$OURS_URI pid=$OURS_PID
            [ $side = qemu ] && uri=$QEMU_URI pid=$QEMU_PID
            echo "round $round: $workload on $side ..." >&2
            # shellcheck disable=SC2086
            run_fio "$workload-$side-$round" "$uri" "$pid" "${common[@]}" ${WORKLOADS[$workload]}
        done
    done
done

kill -0 "$OURS_PID" 2>/dev/null || { echo "iserblockd died:" >&2; cat "$WORK/ours.err" >&2; exit 1; }
kill -0 "$QEMU_PID" 2>/dev/null || { echo "qemu-nbd died:" >&2; cat "$WORK/qemu.err" >&2; exit 1; }

python3 - "$WORK" "$ROUNDS" "$SIZE" "$JOBS" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
work, rounds, size, jobs, hz = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])

def cpu_per_io(workload, side):
    values = []
    for r in range(1, rounds + 1):
        with open(f"{work}/{workload}-{side}-{r}.json") as f:
            j = json.load(f)["jobs"][0]
        ios = j["read"]["total_ios"] + j["write"]["total_ios"]
        with open(f"{work}/{workload}-{side}-{r}.cpu") as f:
            ticks = int(f.read())
        values.append(ticks * 1e6 / hz / max(ios, 1))
    return statistics.median(values)

def figure(workload, side):
    values = []
    for r in range(1, rounds + 1):
        with open(f"{work}/{workload}-{side}-{r}.json") as f:
            j = json.load(f)["jobs"][0]
        part = j["write"] if workload == "randwrite" else j["read"]
        if workload in ("randread", "randwrite"):
            values.append(part["iops"])
        elif workload == "seqread":
            values.append(part["bw_bytes"] / 1e6)
        else:
            values.append(part["lat_ns"]["mean"] / 1000.0)
    return statistics.median(values), values

rows = [
    ("randread", "4 KiB random read, QD32", "IOPS", False),
    ("randwrite", "4 KiB random write, QD32", "IOPS", False),
    ("seqread", "1 MiB sequential read, QD8", "MB/s", False),
    ("qd1", "4 KiB random read, QD1", "mean latency us", True),
]
print(f"tgtd LUN of {size} on tmpfs, fio nbd engine on Unix sockets, {rounds} round(s), medians, {jobs} job(s) at QD32")
print(f"ratio = ours/qemu-nbd; for latency qemu-nbd/ours, so higher is better on every line")
print(f"{'workload':<28} {'unit':<16} {'iserblockd':>12} {'qemu-nbd':>12} {'ratio':>7}")
ratios = {}
for key, title, unit, lower_is_better in rows:
    ours, ours_all = figure(key, "ours")
    qemu, qemu_all = figure(key, "qemu")
    ratio = qemu / ours if lower_is_better else ours / qemu
    ratios[key] = ratio
    print(f"{title:<28} {unit:<16} {ours:>12.1f} {qemu:>12.1f} {ratio:>7.2f}   ours {', '.join(f'{v:.1f}' for v in ours_all)} | qemu-nbd {', '.join(f'{v:.1f}' for v in qemu_all)}")
print()
print("CPU time of the NBD server per I/O (us, medians, the 2 s ramp included on both sides; lower is better):")
print("what decides throughput when the target, the client and the server share a few cores")
print(f"{'workload':<28} {'iserblockd':>12} {'qemu-nbd':>12}")
for key, title, _, _ in rows:
    print(f"{title:<28} {cpu_per_io(key, 'ours'):>12.1f} {cpu_per_io(key, 'qemu'):>12.1f}")
print(f"RESULT randread_iops_ratio={ratios['randread']:.2f} randwrite_iops_ratio={ratios['randwrite']:.2f} "
      f"seqread_mbps_ratio={ratios['seqread']:.2f} qd1_latency_ratio={ratios['qd1']:.2f}")
PY
