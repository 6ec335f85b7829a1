#!/usr/bin/env bash
# tests/bench/nbd-server.sh — a benchmark, not a test.
#
# fio's nbd engine (libnbd) against our NBD server serving an in-memory device, beside
# `nbdkit memory` of the same size, in the same run, on Unix sockets:
#   4 KiB random read, QD32          IOPS      ratio ours/nbdkit   (higher is better)
#   4 KiB random write, QD32         IOPS      ratio ours/nbdkit   (higher is better)
#   1 MiB sequential read, QD8       MB/s      ratio ours/nbdkit   (higher is better)
#   4 KiB random read, QD1           latency   ratio nbdkit/ours   (higher is better)
# Each workload runs on both servers back to back, ROUNDS times, alternating which goes first. The
# figures are medians; each ratio is the median of the per-round ratios (ours and nbdkit measured
# seconds apart), which cancels most of the noise of a shared machine. Both devices are filled first,
# so reads return real data on both.
# The last line is machine-readable:
#   RESULT randread_iops_ratio=X randwrite_iops_ratio=X seqread_mbps_ratio=X qd1_latency_ratio=X
#
# Environment: SIZE (default 1G), RUNTIME seconds per fio run (default 8), ROUNDS (default 5),
#              NBDKIT_THREADS (nbdkit's --threads; default: nbdkit's own default of 16).
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/../.."

SIZE=${SIZE:-1G}
RUNTIME=${RUNTIME:-8}
ROUNDS=${ROUNDS:-5}
for tool in fio nbdkit nbdinfo python3 dotnet; do
    command -v "$tool" >/dev/null || { echo "nbd-server.sh: $tool is not installed (run ./setup.sh)" >&2; exit 1; }
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1
OUT=artifacts/nbd-test-server
echo "building the test server (Release) ..." >&2
dotnet publish tests/IserBlockd.NbdTestServer/IserBlockd.NbdTestServer.csproj -c Release -o "$OUT" -v q -nologo >&2

WORK=$(mktemp -d /tmp/nbd-bench.XXXXXX)
OURS_PID=""
NBDKIT_PID=""
cleanup() {
    [ -n "$OURS_PID" ] && kill "$OURS_PID" 2>/dev/null && wait "$OURS_PID" 2>/dev/null || true
    [ -n "$NBDKIT_PID" ] && kill "$NBDKIT_PID" 2>/dev/null && wait "$NBDKIT_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

"$OUT/nbd-test-server" --unix "$WORK/ours.sock" --memory "=$SIZE" >"$WORK/ours.out" 2>"$WORK/ours.err" &
OURS_PID=$!
nbdkit_args=(--foreground --exit-with-parent --unix "$WORK/nbdkit.sock")
[ -n "${NBDKIT_THREADS:-}" ] && nbdkit_args+=(--threads "$NBDKIT_THREADS")
nbdkit "${nbdkit_args[@]}" memory "$SIZE" 2>"$WORK/nbdkit.err" &
NBDKIT_PID=$!

OURS_URI="nbd+unix:///?socket=$WORK/ours.sock"
NBDKIT_URI="nbd+unix:///?socket=$WORK/nbdkit.sock"
for uri in "$OURS_URI" "$NBDKIT_URI"; do
    for _ in $(seq 100); do nbdinfo --size "$uri" >/dev/null 2>&1 && break; sleep 0.1; done
    nbdinfo --size "$uri" >/dev/null || { echo "server at $uri did not start" >&2; cat "$WORK"/*.err >&2; exit 1; }
done

# fio NAME URI ARGS... -> JSON file $WORK/NAME.json
run_fio() {
    local name=$1 uri=$2
    shift 2
    fio --name="$name" --ioengine=nbd --uri="$uri" --size="$SIZE" --numjobs=1 --group_reporting \
        --output-format=json --output="$WORK/$name.json" "$@" >/dev/null
}

echo "filling both devices ..." >&2
for side in ours nbdkit; do
    uri=$OURS_URI; [ $side = nbdkit ] && uri=$NBDKIT_URI
    run_fio "fill-$side" "$uri" --rw=write --bs=1M --iodepth=8 --buffer_pattern=0x5a
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
common=(--time_based --runtime="$RUNTIME" --ramp_time=2 --norandommap --randrepeat=0)
declare -A WORKLOADS=(
    [randread]="--rw=randread --bs=4k --iodepth=32"
    [randwrite]="--rw=randwrite --bs=4k --iodepth=32"
    [seqread]="--rw=read --bs=1M --iodepth=8"
    [qd1]="--rw=randread --bs=4k --iodepth=1"
)
for round in $(seq "$ROUNDS"); do
    for workload in randread randwrite seqread qd1; do
        order="ours nbdkit"; [ $((round % 2)) = 0 ] && order="nbdkit ours"
        for side in $order; do
            uri=$OURS_URI; [ $side = nbdkit ] && uri=$NBDKIT_URI
            echo "round $round: $workload on $side ..." >&2
            # shellcheck disable=SC2086
            run_fio "$workload-$side-$round" "$uri" "${common[@]}" ${WORKLOADS[$workload]}
        done
    done
done

kill -0 "$OURS_PID" 2>/dev/null || { echo "our server died:" >&2; cat "$WORK/ours.err" >&2; exit 1; }

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$WORK" "$ROUNDS" "$LOAD_BEFORE" "$LOAD_AFTER" <<'PY'
import json, statistics, sys
work, rounds, load_before, load_after = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def job(name):
    with open(f"{work}/{name}.json") as f:
        return json.load(f)["jobs"][0]

def figures(workload, side):
    values = []
    for r in range(1, rounds + 1):
        j = job(f"{workload}-{side}-{r}")
        part = j["write"] if workload == "randwrite" else j["read"]
        if workload in ("randread", "randwrite"):
            values.append(part["iops"])
        elif workload == "seqread":
            values.append(part["bw_bytes"] / 1e6)
        else:
            values.append(part["lat_ns"]["mean"] / 1000.0)
    return values

rows = [
    ("randread", "4 KiB random read, QD32", "IOPS", False),
    ("randwrite", "4 KiB random write, QD32", "IOPS", False),
    ("seqread", "1 MiB sequential read, QD8", "MB/s", False),
    ("qd1", "4 KiB random read, QD1", "mean latency us", True),
]
print(f"machine load average (1/5/15 min): {load_before} before, {load_after} after; {rounds} rounds")
print(f"{'workload':<28} {'unit':<16} {'ours':>10} {'nbdkit':>10} {'ratio':>6}   per-round ratios")
print("  (ratio = ours/nbdkit, but nbdkit/ours for latency: higher is better on every line)")
ratios = {}
for key, title, unit, lower_is_better in rows:
    ours, kit = figures(key, "ours"), figures(key, "nbdkit")
    per_round = [(k / o) if lower_is_better else (o / k) for o, k in zip(ours, kit)]
    ratios[key] = statistics.median(per_round)
    print(f"{title:<28} {unit:<16} {statistics.median(ours):>10.1f} {statistics.median(kit):>10.1f} {ratios[key]:>6.2f}   "
          + " ".join(f"{r:.2f}" for r in per_round))
print(f"RESULT randread_iops_ratio={ratios['randread']:.2f} randwrite_iops_ratio={ratios['randwrite']:.2f} "
      f"seqread_mbps_ratio={ratios['seqread']:.2f} qd1_latency_ratio={ratios['qd1']:.2f}")
PY
