#!/usr/bin/env bash
# tests/fuzz/run.sh [TARGET] [SECONDS] — fuzz our parsers with SharpFuzz + AFL++.
#
#   tests/fuzz/run.sh                 every target, 60 s each
#   tests/fuzz/run.sh nbd-server 600  one target for ten minutes
#   tests/fuzz/run.sh --list          the targets
#   FUZZ_RESUME=1 tests/fuzz/run.sh nbd-server 600
#                                     carry on from the corpus (and the execs count) a previous run left in
#                                     artifacts/fuzz/TARGET/out, instead of starting again from the seeds
#
# Builds tests/fuzz/IserBlockd.Fuzz, instruments a copy of our assemblies with the sharpfuzz tool (the repo's
# dotnet tool manifest), seeds each target from the unit tests' vectors (the harness's `seeds` command) plus the
# inputs kept in tests/fuzz/regressions/TARGET, and runs afl-fuzz. Crashes and hangs stay under
# artifacts/fuzz/TARGET/out/default/{crashes,hangs}; replay one with
#   dotnet artifacts/fuzz/bin/IserBlockd.Fuzz.dll replay TARGET FILE
# One line per target, then `FUZZ targets=N execs=N findings=N` (findings = crashes + hangs). Exit 1 on a finding.
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/../.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1

WORK=artifacts/fuzz
BIN=$WORK/bin   # plain build: lists targets, writes seeds, replays findings
AFL=$WORK/afl   # instrumented copy: instrumented code only runs under Fuzzer.Run (its coverage map lives there)
TARGET=${1:-}
SECONDS_EACH=${2:-60}

command -v afl-fuzz >/dev/null || { echo "run.sh: afl-fuzz not found (apt-get install afl++)" >&2; exit 2; }

dotnet build tests/fuzz/IserBlockd.Fuzz/IserBlockd.Fuzz.csproj -c Release -o "$BIN" -v q -nologo >/dev/null
mapfile -t TARGETS < <(dotnet "$BIN/IserBlockd.Fuzz.dll" list | cut -d' ' -f1)
if [ "$TARGET" = "--list" ]; then printf '%s\n' "${TARGETS[@]}"; exit 0; fi
if [ -n "$TARGET" ]; then
    printf '%s\n' "${TARGETS[@]}" | grep -qx "$TARGET" || { echo "run.sh: no target '$TARGET' (have: ${TARGETS[*]})" >&2; exit 2; }
    TARGETS=("$TARGET")
fi

# Instrument a copy of the build output (sharpfuzz rewrites the files in place).
dotnet tool restore >/dev/null
rm -rf "$AFL"
cp -r "$BIN" "$AFL"
for dll in $(dotnet "$BIN/IserBlockd.Fuzz.dll" list | cut -d' ' -f2 | tr ',' '\n' | sort -u); do
    dotnet sharpfuzz "$AFL/$dll" >/dev/null
done

# afl-fuzz runs `dotnet`, which it cannot see instrumented; the machine is shared, so no CPU binding, and a
# generous per-input timeout (-t 20000): under load the first, JIT-compiling run of an async target takes seconds.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_UI=1 AFL_FORKSRV_INIT_TMOUT=120000 AFL_QUIET=1

total_execs=0 total_findings=0 count=0
for t in "${TARGETS[@]}"; do
    dir=$WORK/$t
    input=$dir/in
    if [ "${FUZZ_RESUME:-0}" = 1 ] && [ -d "$dir/out/default/queue" ]; then
        input=-   # afl-fuzz resumes the queue and its counters (execs_done is cumulative)
    else
        rm -rf "$dir"
        mkdir -p "$dir/in"
        dotnet "$BIN/IserBlockd.Fuzz.dll" seeds "$t" "$dir/in"
        if [ -d "tests/fuzz/regressions/$t" ]; then cp "tests/fuzz/regressions/$t"/* "$dir/in/" 2>/dev/null || true; fi
    fi
    afl-fuzz -i "$input" -o "$dir/out" -V "$SECONDS_EACH" -t 20000 -m none -- \
        dotnet "$AFL/IserBlockd.Fuzz.dll" fuzz "$t" >"$dir/afl.log" 2>&1 || true
    stats=$dir/out/default/fuzzer_stats
    if [ ! -f "$stats" ]; then
        echo "$t: afl-fuzz did not start (see $dir/afl.log)"; tail -5 "$dir/afl.log" >&2
        total_findings=$((total_findings + 1)); count=$((count + 1)); continue
    fi
    stat() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
    execs=$(stat execs_done)
    crashes=$(stat saved_crashes); crashes=${crashes:-$(stat unique_crashes)}
    hangs=$(stat saved_hangs); hangs=${hangs:-$(stat unique_hangs)}
    echo "$t: execs=$execs execs_per_sec=$(stat execs_per_sec) corpus=$(stat corpus_count) edges=$(stat edges_found) crashes=$crashes hangs=$hangs seconds=$SECONDS_EACH"
    total_execs=$((total_execs + execs))
    total_findings=$((total_findings + crashes + hangs))
    count=$((count + 1))
done
echo "FUZZ targets=$count execs=$total_execs findings=$total_findings"
[ "$total_findings" -eq 0 ]
