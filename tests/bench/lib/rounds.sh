# tests/bench/lib/rounds.sh — sourced by the benchmark scripts: the four workloads every comparison runs, and
# the rounds that run them on each side back to back.
#
# The script defines   bench_fio NAME SIDE FIO_ARGS...   (fio against SIDE, its JSON into DIR/NAME.json)
# and calls            bench_rounds "ours other ..."      (after setting ROUNDS and RUNTIME; JOBS optional)
# and may define       bench_after WORKLOAD ROUND         (run after every side has run WORKLOAD in ROUND)
# Each workload runs on every side within a few seconds of each other, ROUNDS times, the order rotating every
# round, so that a machine that slows down or speeds up meanwhile affects all sides alike.
# Then: python3 tests/bench/lib/summarize.py ... (see there) prints medians, ratios and the RESULT line.

BENCH_WORKLOADS=(randread randwrite seqread qd1)

# the fio arguments of workload $1
bench_workload_args() {
    case $1 in
        randread) echo "--rw=randread --bs=4k --iodepth=32 --numjobs=${JOBS:-1}" ;;
        randwrite) echo "--rw=randwrite --bs=4k --iodepth=32 --numjobs=${JOBS:-1}" ;;
        seqread) echo "--rw=read --bs=1M --iodepth=8 --numjobs=1" ;;
        qd1) echo "--rw=randread --bs=4k --iodepth=1 --numjobs=1" ;;
    esac
}

# bench_rounds "SIDE ...": every workload on every side, ROUNDS times, as runs named WORKLOAD-SIDE-ROUND
bench_rounds() {
    local -a sides
    read -ra sides <<< "$1"
    local round workload side i n=${#sides[@]}
    local common=(--time_based --runtime="$RUNTIME" --ramp_time="$BENCH_RAMP" --norandommap --randrepeat=0 --group_reporting)
    for round in $(seq "$ROUNDS"); do
        for workload in "${BENCH_WORKLOADS[@]}"; do
            for i in $(seq 0 $((n - 1))); do
                side=${sides[$(( (i + round - 1) % n ))]}
                echo "round $round: $workload on $side ..." >&2
                # shellcheck disable=SC2046
                bench_fio "$workload-$side-$round" "$side" "${common[@]}" $(bench_workload_args "$workload")
            done
            if declare -F bench_after >/dev/null; then bench_after "$workload" "$round"; fi
        done
    done
}

# CPU time (clock ticks, user + system) process $1 has used so far
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# busy and total clock ticks of all CPUs of the machine so far
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }

# with_cpu PID FILE COMMAND...: runs COMMAND (an fio run with --ramp_time=BENCH_RAMP) and writes the clock ticks PID
# used from the end of the ramp to the end of the run into FILE, so that they match fio's I/O counts, which exclude the
# ramp; with BENCH_TARGET_PID set, those of the target (all its threads) into FILE.target and of its main thread (its
# event loop) into FILE.target-loop; and how busy the machine was (its CPUs' busy ticks over all their ticks) into
# FILE.busy
BENCH_RAMP=2
with_cpu() {
    local pid=$1 file=$2 busy0 total0 busy1 total1 sampler
    local target=${BENCH_TARGET_PID:-} loop=${BENCH_TARGET_PID:+$BENCH_TARGET_PID/task/$BENCH_TARGET_PID}
    shift 2
    # the snapshot at the end of the ramp, taken beside the run
    ( sleep "$BENCH_RAMP"
      { cpu_ticks "$pid"; [ -n "$target" ] && cpu_ticks "$target" && cpu_ticks "$loop"; machine_ticks; } > "$file.at-ramp" ) &
    sampler=$!
    "$@"
    wait "$sampler"
    local -a at
    mapfile -t at < "$file.at-ramp"
    rm -f "$file.at-ramp"
    read -r busy1 total1 < <(machine_ticks)
    echo $(( $(cpu_ticks "$pid") - at[0] )) > "$file"
    if [ -n "$target" ]; then
        echo $(( $(cpu_ticks "$target") - at[1] )) > "$file.target"
        echo $(( $(cpu_ticks "$loop") - at[2] )) > "$file.target-loop"
    fi
    read -r busy0 total0 <<< "${at[-1]}"
    echo "$(( busy1 - busy0 )) $(( total1 - total0 ))" > "$file.busy"
    return 0
}

# with_syscalls PID FILE COMMAND...: runs COMMAND with strace counting the system calls of every thread of PID
# meanwhile; their total goes into FILE. strace slows the process down, so this is a separate short run that
# counts calls per I/O, never one that measures time.
with_syscalls() {
    local pid=$1 file=$2 tracer
    shift 2
    strace -c -f -q -p "$pid" -o "$file.strace" 2>/dev/null &
    tracer=$!
    sleep 1    # strace attaches to every thread before the run starts
    "$@"
    kill -INT "$tracer" 2>/dev/null
    wait "$tracer" 2>/dev/null || true
    awk '$NF == "total" { print ($4 ~ /^[0-9]+$/) ? $4 : $3 }' "$file.strace" > "$file"
}

# bench_syscalls "SIDE ...": a short 4 KiB random read (QD32) and write run per side under strace, as runs named
# WORKLOAD-SIDE-syscalls with their call counts in DIR/WORKLOAD-SIDE-syscalls.calls (the script defines
# bench_side_pid SIDE: the PID of that side's server)
bench_syscalls() {
    local -a sides
    read -ra sides <<< "$1"
    local side workload
    command -v strace >/dev/null || { echo "strace is not installed: no system call counts" >&2; return 0; }
    for side in "${sides[@]}"; do
        for workload in randread randwrite; do
            echo "system calls: $workload on $side ..." >&2
            # shellcheck disable=SC2046
            BENCH_WRAP="with_syscalls $(bench_side_pid "$side") $WORK/$workload-$side-syscalls.calls" \
                bench_fio "$workload-$side-syscalls" "$side" --time_based --runtime=3 --norandommap --randrepeat=0 \
                --group_reporting $(bench_workload_args "$workload")
        done
    done
}

# bench_fio_nbd NAME URI PID FIO_ARGS...: fio's nbd engine against URI (SIZE bytes) -> $WORK/NAME.json, and the CPU
# time the server PID used meanwhile -> $WORK/NAME.cpu (see with_cpu)
# (with BENCH_WRAP set, that command wraps fio instead of with_cpu)
bench_fio_nbd() {
    local name=$1 uri=$2 pid=$3
    shift 3
    local -a wrap=(with_cpu "$pid" "$WORK/$name.cpu")
    [ -n "${BENCH_WRAP:-}" ] && read -ra wrap <<< "$BENCH_WRAP"
    "${wrap[@]}" fio --name="$name" --ioengine=nbd --uri="$uri" --size="$SIZE" --group_reporting \
        --output-format=json --output="$WORK/$name.json" "$@" >/dev/null
}

# wait_nbd URI TENTHS: waits up to TENTHS tenths of a second for an NBD server to answer at URI; if none does, prints
# the servers' stderr ($WORK/*.err) and exits
wait_nbd() {
    local uri=$1 tenths=$2
    for _ in $(seq "$tenths"); do nbdinfo --size "$uri" >/dev/null 2>&1 && return 0; sleep 0.1; done
    nbdinfo --size "$uri" >/dev/null || { echo "the NBD server at $uri did not start" >&2; cat "$WORK"/*.err >&2; exit 1; }
}

# a free TCP port on 127.0.0.1
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        [ -z "$(ss -Hltn "sport = :$port")" ] && { echo "$port"; return; }
    done
}
