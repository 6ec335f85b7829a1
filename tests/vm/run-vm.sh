#!/usr/bin/env bash
# run-vm.sh — run scenarios (or an ad-hoc command) inside one throw-away guest: the Debian 6.1
# kernel from the cache under qemu (TCG), root = the host's / read-only over 9p + tmpfs overlay, so
# every host binary (tgtd, iscsiadm, nbd-client, our published NativeAOT binaries) runs unchanged.
# qemu runs with -nodefaults and no NIC: no network device leaves the guest.
#
# usage: tests/vm/run-vm.sh [options] <scenario.sh ... | 'shell command'>
#   Several scenario files run one after the other in the same guest (guest/run-group.sh), each with its
#   own timeout and its own logs in artifacts/vm-logs/SCENARIO/; -n names the group (default: the first
#   scenario), whose boot and combined output are in artifacts/vm-logs/group-NAME/.
#   -m MOD        modprobe MOD before the command (repeatable; "nbd nbds_max=8" passes parameters)
#   -r            soft-RoCE: veth pair vm-veth0/vm-veth1 (10.99.0.1/.2) with rxe0/rxe1 on them
#   -t SECONDS    guest-side timeout for the command (default: the scenario's, else 600)
#   -M MIB        guest memory (default 3072)        -s N  vCPUs (default 2)
#   -w DIR        share host DIR read-write at the same path (repeatable)
#   -e NAME=VALUE export into the command's environment (repeatable)
#   -n NAME       log directory name (default: the scenario's file name, else "adhoc")
#   -k SERIES     boot linux-image-SERIES-amd64 (e.g. 6.12, which has ublk_drv) instead of the default kernel
# A scenario file may declare its needs in header comments (flags on the command line add to them):
#   # vm-modules: nbd rdma_rxe        # vm-rxe: yes        # vm-timeout: 300        # vm-memory: 3072
#   # vm-kernel: 6.12                 (every scenario of a group must name the same kernel)
# Exit status: the command's (for a group: 0 when every scenario passed or was skipped); 124 when it or
# the VM timed out; 255 when the guest died without one.
# Logs of the last run of NAME stay in artifacts/vm-logs/NAME/: output.log (the command's output),
# boot.log (kernel console + stage 2 notes), dmesg.log (full kernel log after the command), plus
# whatever the scenario saved into $VM_RUNDIR. Scenario files keep their logs (with rc and seconds) in
# artifacts/vm-logs/SCENARIO/ and the boot they ran in in artifacts/vm-logs/group-NAME/.
set -uo pipefail
. "$(dirname "$(realpath "$0")")/lib/common.sh"

MODS=() RXE=0 TIMEOUT="" MEM="" SMP=2 RWDIRS=() EXTRA_ENV=() NAME="" SERIES=""
while [ $# -gt 0 ]; do
    case "$1" in
        -m) MODS+=("$2"); shift 2 ;;
        -r) RXE=1; shift ;;
        -t) TIMEOUT=$2; shift 2 ;;
        -M) MEM=$2; shift 2 ;;
        -s) SMP=$2; shift 2 ;;
        -w) RWDIRS+=("$(realpath "$2")"); shift 2 ;;
        -e) EXTRA_ENV+=("$2"); shift 2 ;;
        -n) NAME=$2; shift 2 ;;
        -k) SERIES=$2; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        --) shift; break ;;
        -*) echo "run-vm: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "usage: $0 [options] <scenario.sh ... | 'shell command'>" >&2; exit 2; }
TARGET=$1
SCENARIOS=()
if [ -f "$TARGET" ]; then
    for f in "$@"; do
        [ -f "$f" ] || { echo "run-vm: $f is not a scenario file" >&2; exit 2; }
        SCENARIOS+=("$(realpath "$f")")
    done
elif [ $# -gt 1 ]; then
    echo "usage: $0 [options] <scenario.sh ... | 'shell command'>" >&2; exit 2
fi

# header of a scenario file: "# vm-KEY: value"
header() { sed -n "s/^# vm-$2:[[:space:]]*//p" "$1" | head -n1; }
GROUP_SPECS=() sum_timeout=0 max_mem=0
for f in "${SCENARIOS[@]}"; do
    for m in $(header "$f" modules); do
        # "nbd nbds_max=8" arrives as two words: parameters belong to the module before them
        if [[ $m == *=* ]] && [ ${#MODS[@]} -gt 0 ]; then MODS[-1]+=" $m"
        elif [[ " ${MODS[*]} " != *" $m "* ]]; then MODS+=("$m"); fi
    done
    case "$(header "$f" rxe)" in yes|1|true) RXE=1 ;; esac
    t=$(header "$f" timeout); t=${t:-600}
    GROUP_SPECS+=("$t:$f")
    sum_timeout=$((sum_timeout + t + 15))
    k=$(header "$f" kernel)
    if [ -n "$k" ]; then
        [ -z "$SERIES" ] || [ "$SERIES" = "$k" ] || { echo "run-vm: $f wants kernel $k, the group $SERIES" >&2; exit 2; }
        SERIES=$k
    fi
    m=$(header "$f" memory); m=${m:-3072}
    [ "$m" -gt "$max_mem" ] && max_mem=$m
done
if [ ${#SCENARIOS[@]} -gt 0 ]; then
    [ -n "$NAME" ] || NAME=$(basename "${SCENARIOS[0]}" .sh)
    [ -n "$TIMEOUT" ] || TIMEOUT=$sum_timeout
    [ -n "$MEM" ] || MEM=$max_mem
fi
NAME=${NAME:-adhoc} TIMEOUT=${TIMEOUT:-600} MEM=${MEM:-3072}

ENVFILE=$IBD_VM_CACHE/current${SERIES:+-$SERIES}.env
export IBD_VM_KERNEL_SERIES=$SERIES
[ -f "$ENVFILE" ] || "$VM_DIR/setup-vm.sh" >&2 || exit 2
. "$ENVFILE"
[ -f "$KDIR/boot/vmlinuz-$KVER" ] && [ -f "$INITRD" ] || { "$VM_DIR/setup-vm.sh" >&2 && . "$ENVFILE"; } || exit 2

# a private directory while the guest runs (two runs of one scenario must not share it), moved to
# artifacts/vm-logs/NAME afterwards
LOGDIR=$IBD_VM_LOGS/$NAME
[ ${#SCENARIOS[@]} -gt 0 ] && LOGDIR=$IBD_VM_LOGS/group-$NAME
RUN=$IBD_VM_LOGS/.running-$NAME-$$
rm -rf "$RUN"; mkdir -p "$RUN"
if [ ${#SCENARIOS[@]} -gt 0 ]; then
    { printf 'exec bash %q' "$VM_DIR/guest/run-group.sh"; printf ' %q' "${GROUP_SPECS[@]}"; echo; } > "$RUN/cmd"
else
    printf '%s\n' "$TARGET" > "$RUN/cmd"
fi
{
    echo "VM_KDIR=$KDIR"
    printf 'VM_MODS=%q\n' "$(IFS=,; echo "${MODS[*]}")"
    echo "VM_RXE=$RXE"
    echo "VM_TIMEOUT=$TIMEOUT"
    printf 'VM_CWD=%q\n' "$PWD"
    printf 'VM_RWDIRS=%q\n' "$(IFS=,; echo "${RWDIRS[*]}")"
    echo "VM_NAME=$NAME"
    # what scenarios use: the repo, the published binaries, the scenario helpers
    printf 'IBD_REPO=%q\nIBD_BIN=%q\nIBD_VM_LIB=%q\n' "$REPO_ROOT" "$IBD_BIN" "$VM_DIR/lib"
    printf 'PATH=%q\n' "$IBD_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for kv in "${EXTRA_ENV[@]}"; do printf '%s=%q\n' "${kv%%=*}" "${kv#*=}"; done
} > "$RUN/env"

SHARES=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
        -virtfs "local,path=$RUN,mount_tag=vmrun,security_model=none,multidevs=remap")
for i in "${!RWDIRS[@]}"; do
    SHARES+=(-virtfs "local,path=${RWDIRS[$i]},mount_tag=rw$i,security_model=none,multidevs=remap")
done

# NAME=value arguments the kernel does not know become stage 1's environment.
APPEND="console=ttyS0 quiet panic=-1 mitigations=off VM_STAGE2=$VM_DIR/guest/stage2.sh VM_RUNDIR=$RUN"

vm_log "$NAME: booting $KVER (${MEM} MiB, $SMP vCPUs, modules: ${MODS[*]:-none}, rxe: $RXE, timeout ${TIMEOUT}s); logs in $LOGDIR"
start=$(date +%s.%N)
# KVM is not usable on these machines (the guest hangs): TCG. The host-side limit covers boot and
# power-off around the guest's own timeout.
timeout --foreground -k 10 $((TIMEOUT + 120)) \
    qemu-system-x86_64 -accel "${IBD_VM_ACCEL:-tcg}" -cpu max -smp "$SMP" -m "$MEM" \
    -machine pc -nodefaults -no-reboot -display none -nic none \
    -kernel "$KDIR/boot/vmlinuz-$KVER" -initrd "$INITRD" -append "$APPEND" \
    -serial "file:$RUN/boot.log" \
    -device virtio-serial-pci -chardev stdio,id=out,signal=off -device virtconsole,chardev=out \
    "${SHARES[@]}" < /dev/null | tee "$RUN/output.log"
qrc=${PIPESTATUS[0]}
end=$(date +%s.%N)

if [ -f "$RUN/rc" ]; then
    rc=$(cat "$RUN/rc")
else
    rc=255; [ "$qrc" = 124 ] && rc=124
    { echo "run-vm: $NAME: no exit code from the guest (qemu exit $qrc); last lines of $LOGDIR/boot.log:"
      tail -n 30 "$RUN/boot.log"; } >&2
fi
secs=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b - a}')
echo "$secs" > "$RUN/seconds"
# each scenario's logs go to artifacts/vm-logs/SCENARIO/, with the boot it ran in
for f in "${SCENARIOS[@]}"; do
    n=$(basename "$f" .sh)
    [ -d "$RUN/$n" ] || { mkdir -p "$RUN/$n"; echo "vm: the guest ended before scenario $n ran" > "$RUN/$n/output.log"; }
    cp "$RUN/boot.log" "$RUN/$n/boot.log" 2>/dev/null
    rm -rf "${IBD_VM_LOGS:?}/$n" && mv "$RUN/$n" "$IBD_VM_LOGS/$n"
done
rm -rf "$LOGDIR" && mv "$RUN" "$LOGDIR"
vm_log "$NAME: exit code $rc after $secs s"
exit "$rc"
