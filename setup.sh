#!/usr/bin/env bash
# setup.sh — everything a fresh Debian 12 machine (with only the .NET SDK) needs, then a demo.
#
#   ./setup.sh            install packages, build, publish iserblockd + iserblockctl onto PATH,
#                         then run the demo (a tgtd LUN exported over NBD) until Ctrl-C
#   ./setup.sh --no-demo  the same without the demo (what the test command uses)
#
# Safe to re-run: apt-get skips what is installed and the publish step is incremental.
set -euo pipefail
cd "$(dirname "$(realpath "$0")")"
DEMO=1
for a in "$@"; do
    case "$a" in
        --no-demo) DEMO=0 ;;
        *) echo "usage: $0 [--no-demo]" >&2; exit 2 ;;
    esac
done

# Debian packages: real peers for the tests (tgt, NBD clients, fio, qemu), rdma-core for iSER,
# and the kernel test bed's tools (qemu-system-x86, busybox, open-iscsi for the reference initiator).
PACKAGES=(
    tgt istgt libnbd-bin nbdkit qemu-utils qemu-block-extra fio libiscsi-bin
    rdma-core libibverbs1 librdmacm1 ibverbs-providers libibverbs-dev librdmacm-dev ibverbs-utils rdmacm-utils perftest
    qemu-system-x86 busybox-static cpio kmod iproute2 e2fsprogs nbd-client open-iscsi
    clang zlib1g-dev gcc
    python3 python3-prometheus-client python3-libnbd strace
    afl++
)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1
dotnet restore IserBlockd.sln -v q

# NativeAOT binaries: fast start, and no JIT when they run inside the emulated VM test bed.
OUT=artifacts/bin
for exe in iserblockd iserblockctl; do
    dotnet publish "daemon/$exe/$exe.csproj" -c Release -r linux-x64 -o "$OUT" -v q -nologo
    ln -sfn "$PWD/$OUT/$exe" "/usr/local/bin/$exe"
done
echo "setup: iserblockd and iserblockctl are on PATH ($(command -v iserblockd))"

if [ "$DEMO" = 1 ]; then
    exec ./demo.sh
fi
