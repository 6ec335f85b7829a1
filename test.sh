#!/usr/bin/env bash
# test.sh — the whole test suite: installs what is missing, unit + integration tests against
# real peers (tgtd, istgt, nbdinfo, nbdcopy, qemu-io, fio), then the kernel test bed (qemu VM).
# Both parts always run; the last lines name every failed test or scenario, so a CI log's tail
# says what broke.
set -uo pipefail
cd "$(dirname "$(realpath "$0")")"
./setup.sh --no-demo || exit $?
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1
mkdir -p artifacts
log=artifacts/dotnet-test.log

dotnet test IserBlockd.sln -c Release --logger "console;verbosity=normal" 2>&1 | tee "$log"
dotnet_rc=${PIPESTATUS[0]}

vm_rc=0
if [ -x tests/vm/run-scenarios.sh ]; then
    tests/vm/run-scenarios.sh
    vm_rc=$?
fi

echo
if [ "$dotnet_rc" -ne 0 ]; then
    echo "dotnet test FAILED (exit $dotnet_rc); failed tests and aborted runs:"
    grep -E '^\s+Failed |^\s*Failed!|Test Run Aborted|The active test run was aborted|Test host process crashed|error [A-Z]+[0-9]+:' "$log" |
        sed 's/^/  /' | sort -u | head -n 60
    # the first lines of each failure's message and stack
    awk '/^[[:space:]]+Failed [A-Za-z]/{n=12} n>0{print "    " $0; n--}' "$log" | head -n 120
else
    echo "dotnet test passed: $(grep -E '^\s+Passed ' "$log" | wc -l) tests"
fi
[ "$vm_rc" -eq 0 ] && echo "VM scenarios passed" || echo "VM scenarios FAILED (exit $vm_rc); see the summary above"
[ "$dotnet_rc" -eq 0 ] && [ "$vm_rc" -eq 0 ]
