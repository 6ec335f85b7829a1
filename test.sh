#!/usr/bin/env bash
# test.sh — the whole test suite: installs what is missing, unit + integration tests against
# real peers (tgtd, nbdinfo, nbdcopy, qemu-io, fio), then the kernel test bed (qemu VM).
set -euo pipefail
cd "$(dirname "$(realpath "$0")")"
./setup.sh --no-demo
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1
dotnet test IserBlockd.sln -c Release --logger "console;verbosity=normal"
if [ -x tests/vm/run-scenarios.sh ]; then
    tests/vm/run-scenarios.sh
fi
