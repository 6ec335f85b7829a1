# tests/bench/lib/vm-host.sh — the host side of a VM benchmark (iser-vm.sh, ublk-vm.sh, kernel-vm.sh): publish
# iserblockd, make sure the guest kernel is cached, then boot the VM test bed and run the calling script inside it.
# Sourced by the script while IBD_VM_LIB is unset (on the host); never returns.
#   bench_boot_vm NAME [run-vm.sh options: -e VAR=VALUE ...]
# IBD_SKIP_PUBLISH=1 uses the iserblockd already in artifacts/bin (or IBD_BIN).

bench_boot_vm() {
    local script name=$1
    shift
    script=$(realpath "$0")
    cd "$(dirname "$script")/../.."
    . tests/vm/lib/common.sh
    if [ "${IBD_SKIP_PUBLISH:-}" != 1 ]; then
        echo "publishing iserblockd (NativeAOT, Release) into $IBD_BIN ..." >&2
        DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1 \
            dotnet publish daemon/iserblockd/iserblockd.csproj -c Release -r linux-x64 -o "$IBD_BIN" -v q -nologo >&2
    fi
    tests/vm/setup-vm.sh >/dev/null
    exec tests/vm/run-vm.sh -n "$name" "$@" "$script"
}
