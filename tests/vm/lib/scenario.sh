# tests/vm/lib/scenario.sh — helpers for scenario scripts; they run inside the guest:
#     . "$IBD_VM_LIB/scenario.sh"
# Every failing command fails the scenario loudly (errexit + an ERR trap that names the line and
# the command); background servers started with `spawn` get a timeout, a log in $VM_RUNDIR, and are
# stopped at exit whatever happens. Exit codes: 0 passed, 77 skipped, anything else failed.
set -eEuo pipefail
SCENARIO=${VM_NAME:-$(basename "$0" .sh)}
SKIP_EXIT=77
_t0=$(date +%s.%N)
_pids=() _cleanups=()

elapsed() { awk -v a="$_t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%6.1fs", b - a}'; }
step() { echo "=== [$(elapsed)] $*"; }
info() { echo "    $*"; }
fail() {
    trap - ERR
    echo "FAIL [$SCENARIO]: $*" >&2
    exit 1
}
skip() { echo "SKIPPED: $*"; exit "$SKIP_EXIT"; }
trap 'rc=$?; fail "line $LINENO: \`$BASH_COMMAND\` exited with $rc"' ERR

# checked NAME WHAT   a requirement this scenario has now proved; run-scenarios.sh lists the names beside its
# verdict, so that what an issue asks for by name (e.g. the reference cross-check) is visible in the summary
checked() { echo "CHECK $1: $2"; }

# assert_eq ACTUAL EXPECTED WHAT
assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; info "ok: $3 = $1"; }

# wait_for SECONDS DESCRIPTION command...   (polls every 0.2 s)
wait_for() {
    local secs=$1 what=$2; shift 2
    local deadline=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for $what"
        sleep 0.2
    done
}

# spawn NAME SECONDS command...   start a background process under `timeout`, output in
# $VM_RUNDIR/NAME.log (kept with the run's logs); its PID is in $SPAWNED.
spawn() {
    local name=$1 secs=$2; shift 2
    timeout -k 5 "$secs" "$@" > "$VM_RUNDIR/$name.log" 2>&1 &
    SPAWNED=$!
    _pids+=("$SPAWNED")
    info "started $name (pid $SPAWNED): $*"
}

# spawned_process PID: the program a spawn started (spawn's PID is its `timeout` wrapper, which
# forwards SIGTERM but cannot forward SIGKILL: kill -9 the program itself to simulate a crash)
spawned_process() { cat "/proc/$1/task/$1/children" 2>/dev/null | awk '{print $1}'; }

# at_exit 'shell code'   run at exit, last registered first (unmount before stopping the server)
at_exit() { _cleanups=("$1" "${_cleanups[@]}"); }

_finish() {
    local rc=$?
    trap - ERR
    set +e
    disown -a 2>/dev/null   # no "Killed" job notices for servers stopped on purpose
    for c in "${_cleanups[@]}"; do eval "$c" >/dev/null 2>&1; done
    for p in "${_pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.2
    for p in "${_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    case $rc in
        0) echo "PASSED [$SCENARIO] in $(elapsed)" ;;
        "$SKIP_EXIT") ;;
        *) echo "FAILED [$SCENARIO] (exit $rc) after $(elapsed); logs: ${IBD_REPO:-.}/artifacts/vm-logs/$SCENARIO/" ;;
    esac
    exit "$rc"
}
trap _finish EXIT
# the guest's timeout (or a host-side kill) ends a scenario with SIGTERM: that is a failure
trap 'fail "terminated by a signal (the scenario timed out?)"' TERM INT

# kernel_io_errors: block-layer and filesystem errors the kernel logged (a scenario asserts there are
# none where a path must be error-free). NBD's connection notices ("Receive control failed", "Dead
# connection") are not I/O errors: a restart test expects them.
# the /dev/nbdX the kernel has for LUN $1 of the target $IQN (by the backend identifier iserblockd gives it), empty if none
device_of() {
    local b
    for b in /sys/block/nbd*/backend; do
        [ -r "$b" ] && [ "$(cat "$b" 2>/dev/null)" = "iserblockd:$IQN:$1" ] && { echo "/dev/$(basename "$(dirname "$b")")"; return 0; }
    done
    return 0
}

kernel_io_errors() { dmesg | grep -E 'I/O error|critical medium error|blk_update_request|Buffer I/O|EXT4-fs (error|warning)|print_req_error' || true; }

# fio_verify NAME FIO_ARGS...: fio's nbd engine writing and crc32c-verifying (--uri=... among the arguments); fails
# the scenario on any fio error or bad block, log in $VM_RUNDIR/NAME.log
fio_verify() {
    local name=$1; shift
    fio --name="$name" --ioengine=nbd --verify=crc32c --verify_fatal=1 --do_verify=1 "$@" > "$VM_RUNDIR/$name.log" 2>&1 ||
        { tail -20 "$VM_RUNDIR/$name.log"; fail "fio $name failed"; }
    grep -q "err= 0" "$VM_RUNDIR/$name.log" || fail "fio $name reported errors: $(grep err= "$VM_RUNDIR/$name.log")"
    ! grep -q "verify: bad" "$VM_RUNDIR/$name.log" || fail "fio $name found bad data"
}
