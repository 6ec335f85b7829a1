#!/bin/bash
# run-group.sh — inside the guest: run several scenarios one after the other in this one boot (a boot costs
# 20-40 s of the CI budget under TCG). Each scenario is its own bash process with its own traps, timeout and
# log directory $VM_RUNDIR/NAME/ (output.log, rc, seconds, dmesg.log, its servers' logs); the kernel log is
# saved and cleared after each, so a scenario's dmesg checks see only its own messages.
#
# usage (run-vm.sh writes this into the guest's command): run-group.sh TIMEOUT:SCENARIO.sh ...
# Exit status: 0 when every scenario passed or was skipped, 1 otherwise.
set -u
group_dir=$VM_RUNDIR
failed=0
dmesg -C
for spec in "$@"; do
    secs=${spec%%:*} file=${spec#*:}
    name=$(basename "$file" .sh)
    dir=$group_dir/$name
    mkdir -p "$dir"
    echo "##### [$name] start (timeout ${secs}s)"
    start=$(date +%s.%N)
    VM_RUNDIR=$dir VM_NAME=$name timeout -k 10 "$secs" bash "$file" < /dev/null 2>&1 | tee "$dir/output.log"
    rc=${PIPESTATUS[0]}
    [ "$rc" = 124 ] && echo "vm: scenario $name did not finish within ${secs} s (guest timeout)" | tee -a "$dir/output.log"
    awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f\n", b - a}' > "$dir/seconds"
    echo "$rc" > "$dir/rc"
    dmesg -c > "$dir/dmesg.log" 2>&1
    echo "##### [$name] exit code $rc after $(cat "$dir/seconds") s"
    case $rc in 0|77) ;; *) failed=1 ;; esac
    # what a scenario left running would disturb the next one
    for p in $(pgrep -x 'tgtd|iscsid|iserblockd|fio' || true); do kill -9 "$p" 2>/dev/null; done
done
exit "$failed"
