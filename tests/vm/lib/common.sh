# tests/vm/lib/common.sh — host-side settings shared by setup-vm.sh, run-vm.sh and run-scenarios.sh.
# Sourced, not run.

VM_DIR=$(dirname "$(realpath "${BASH_SOURCE[0]}")")/..
VM_DIR=$(realpath "$VM_DIR")
REPO_ROOT=$(realpath "$VM_DIR/../..")

# The cache survives fresh clones on the same machine (CI clones anew each run), so it lives outside
# the work tree when we may write there; tests/vm/.cache (git-ignored) otherwise.
if [ -z "${IBD_VM_CACHE:-}" ]; then
    if mkdir -p /var/cache/iserblockd-vm 2>/dev/null && [ -w /var/cache/iserblockd-vm ]; then
        IBD_VM_CACHE=/var/cache/iserblockd-vm
    else
        IBD_VM_CACHE=$VM_DIR/.cache
    fi
fi
export IBD_VM_CACHE

# Where each run's logs go (boot.log, output.log, dmesg.log, whatever the scenario saves).
IBD_VM_LOGS=${IBD_VM_LOGS:-$REPO_ROOT/artifacts/vm-logs}

# Published NativeAOT binaries the guest runs (the guest's root is the host's, so this path is the same there).
IBD_BIN=${IBD_BIN:-$REPO_ROOT/artifacts/bin}

vm_log() { echo "[vm $(date +%H:%M:%S)] $*" >&2; }
vm_die() { echo "[vm] ERROR: $*" >&2; exit 2; }
