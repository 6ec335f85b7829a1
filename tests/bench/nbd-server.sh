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
#          cpu_per_io_randread_ratio=X cpu_per_io_randwrite_ratio=X cpu_per_io_seqread_ratio=X
# where the cpu_per_io ratios are the other side's server CPU time (user + system, ramp excluded) per I/O over ours.
# A short run per side under strace counts each server's system calls per I/O (strace slows it: not timed).
#
# Environment: SIZE (default 1G), RUNTIME seconds per fio run (default 8), ROUNDS (default 5),
#              NBDKIT_THREADS (nbdkit's --threads; default: nbdkit's own default of 16).
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/../.."
. tests/bench/lib/rounds.sh

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
wait_nbd "$OURS_URI" 100
wait_nbd "$NBDKIT_URI" 100

# bench_fio NAME SIDE ARGS... -> $WORK/NAME.json, and NAME.cpu: the CPU time of that side's server
bench_fio() {
    if [ "$2" = nbdkit ]; then bench_fio_nbd "$1" "$NBDKIT_URI" "$NBDKIT_PID" "${@:3}"
    else bench_fio_nbd "$1" "$OURS_URI" "$OURS_PID" "${@:3}"; fi
}
bench_side_pid() { if [ "$1" = nbdkit ]; then echo "$NBDKIT_PID"; else echo "$OURS_PID"; fi; }

echo "filling both devices ..." >&2
for side in ours nbdkit; do
    bench_fio "fill-$side" "$side" --rw=write --bs=1M --iodepth=8 --buffer_pattern=0x5a
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_rounds "ours nbdkit"
bench_syscalls "ours nbdkit"
kill -0 "$OURS_PID" 2>/dev/null || { echo "our server died:" >&2; cat "$WORK/ours.err" >&2; exit 1; }

python3 tests/bench/lib/summarize.py "$WORK" "$ROUNDS" ours nbdkit \
    --title "in-memory devices of $SIZE, fio nbd engine on Unix sockets; load average before: $LOAD_BEFORE"
