#!/usr/bin/env bash
# vm-group: ublk
# vm-kernel: 6.12
# vm-modules: ublk_drv
# vm-timeout: 360
# vm-publish: daemon/iserblockd/iserblockd.csproj daemon/iserblockctl/iserblockctl.csproj
#
# ublk-daemon: `iserblockd run` with "device": "ublk" on a LUN tgtd serves over TCP in the guest (Debian's 6.12
# kernel). /dev/ublkbN has the LUN's size and block size; ext4 on it survives unmount, remount and fsck; with fio
# writing and verifying on the mounted device the daemon is killed (SIGKILL) and started again, then stopped
# (SIGTERM: the mounted device is left to the next daemon) and started again; each new daemon recovers the device
# (START/END_USER_RECOVERY) and fio sees no error. iserblockctl unmap refuses the mounted device and removes it
# once unmounted.
. "$IBD_VM_LIB/scenario.sh"
. "$IBD_VM_LIB/tgt.sh"

IQN=iqn.2024-01.test.iserblockd:ublk
OUR_INI=iqn.2024-01.test.iserblockd:ublk-initiator
NODE=san
MIB=$((1024 * 1024))
SIZE=$((64 * MIB))
CONFIG=/run/iserblockd-ublk.json
MNT=/mnt/ublkd

# the /dev/ublkbN of LUN 1 as iserblockctl lists it, and its state
ctl_lun() {
    iserblockctl list -o json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    for l in s["luns"]:
        if l["lun"] == 1: print(l.get("device"), l["state"].replace(" ", "_"), l["blockSize"])'
}
start_daemon() {
    spawn "$1" 600 iserblockd run --config "$CONFIG"
    DAEMON=$SPAWNED
    wait_for 90 "$1 to map LUN 1" bash -c "iserblockctl list -o json 2>/dev/null | grep -q '\"device\": *\"/dev/ublkb'"
}
# sectors read and written so far (/sys/block/X/stat fields 3 and 7): fio's verify phase reads, so a writer that
# finished its writes during a slow restart still shows progress
moved() { awk '{print $3 + $7}' "/sys/block/${1#/dev/}/stat"; }
wait_progress() {
    local before; before=$(moved "$1")
    # (or the writer is done, a zombie until waited for: its exit code, checked below, says whether its I/O succeeded)
    wait_for "$2" "$3" bash -c "[ \$(awk '{print \$3 + \$7}' /sys/block/${1#/dev/}/stat) -gt $before ] || [ \"\$(awk '{print \$3}' /proc/${FIO_PID:-1}/stat 2>/dev/null || echo Z)\" = Z ]"
}

step "tgtd over TCP in the guest: LUN 1 = $((SIZE / MIB)) MiB of 4096 B blocks; the daemon maps it with \"device\": \"ublk\""
truncate -s 0 /run/ublkd-lun1.img
truncate -s "$SIZE" /run/ublkd-lun1.img
at_exit "rm -f /run/ublkd-lun1.img"
tgt_start
tgt_target iscsi 1 "$IQN"
tgt_lun iscsi 1 1 /run/ublkd-lun1.img 4096
tgt_allow iscsi 1 "$OUR_INI"
cat > "$CONFIG" <<JSON
{
  "initiatorName": "$OUR_INI",
  "replacementTimeout": 10,
  "loginTimeout": 60,
  "reconnect": { "minDelay": 0.5, "maxDelay": 2 },
  "nodes": [ { "name": "$NODE", "portals": ["127.0.0.1:3260"], "target": "$IQN", "transport": "tcp",
               "luns": [ { "lun": 1, "device": "ublk" } ] } ]
}
JSON
iserblockd check-config --config "$CONFIG" > "$VM_RUNDIR/check-config.log" || fail "check-config refused $CONFIG: $(cat "$VM_RUNDIR/check-config.log")"
start_daemon daemon-1
read -r DEV state bs <<< "$(ctl_lun)"
info "iserblockctl list: $DEV $state $bs"
grep -q "LUN 1: attached as $DEV (ublk)" "$VM_RUNDIR/daemon-1.log" || fail "no 'attached as $DEV (ublk)' in the daemon's log"
assert_eq "$state" up "state of LUN 1"
assert_eq "$(blockdev --getsize64 "$DEV")" "$SIZE" "size of $DEV"
assert_eq "$(blockdev --getss "$DEV")" 4096 "logical block size of $DEV"
checked ublk-map "\"device\": \"ublk\" in the configuration gives /dev/ublkbN with the LUN's size and block size"

step "ext4 on $DEV: write, unmap refused while mounted, remount, fsck, read back"
timeout 120 mkfs.ext4 -q -F "$DEV"
mkdir -p "$MNT"
mount "$DEV" "$MNT"
at_exit "umount -l $MNT"
head -c $((3 * MIB + 777)) /dev/urandom > /run/ublkd-a.src
cp /run/ublkd-a.src "$MNT/a"
rc=0; out=$(iserblockctl unmap "$NODE" 1 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "iserblockctl unmap removed a mounted ublk device"
grep -q "in use\|mounted" <<< "$out" || fail "iserblockctl unmap of the mounted device did not say why: $out"
info "ok: unmap of the mounted $DEV refused (exit $rc): $out"
umount "$MNT"
echo 3 > /proc/sys/vm/drop_caches
timeout 60 fsck.ext4 -n -f "$DEV" > "$VM_RUNDIR/fsck.log" 2>&1 || fail "fsck found errors on $DEV (fsck.log)"
mount "$DEV" "$MNT"
cmp /run/ublkd-a.src "$MNT/a" || fail "the file changed across unmount/remount"
checked ublk-ext4 "mkfs, remount, fsck clean, data read back; unmap refused while mounted"

step "fio writing and verifying on the mounted $DEV while the daemon is killed and restarted"
dmesg -C
# a pause between writes, not --rate (fio catches up on a rate after a stall and would end its writes early)
FIO=(fio --name=ublkd --filename="$MNT/fio.dat" --size=24M --bs=64k --rw=write --direct=1 --ioengine=psync
     --verify=crc32c --verify_fatal=1 --thinktime=60ms --output-format=normal)
spawn fio 300 "${FIO[@]}"
FIO_PID=$SPAWNED
wait_progress "$DEV" 30 "fio to write"
info "SIGKILL to the daemon: the kernel quiesces $DEV and holds its I/O"
kill -9 "$(spawned_process "$DAEMON")"
wait "$DAEMON" 2>/dev/null || true
sleep 1
[ -b "$DEV" ] || fail "$DEV went away with the daemon"
kill -0 "$FIO_PID" 2>/dev/null || fail "fio ended while no daemon ran: $(tail -5 "$VM_RUNDIR/fio.log")"
t=$(date +%s.%N)
start_daemon daemon-2
grep -q "recovered $DEV left by the previous daemon" "$VM_RUNDIR/daemon-2.log" || fail "daemon-2 did not recover $DEV: $(grep -i ublk "$VM_RUNDIR/daemon-2.log")"
wait_progress "$DEV" 30 "I/O to resume after the crash"
info "ok: recovered; writes resumed $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s after the new daemon started"

info "SIGTERM while $DEV is mounted: left to the next daemon"
kill -TERM "$DAEMON"; rc=0; wait "$DAEMON" || rc=$?
assert_eq "$rc" 0 "exit code of iserblockd after SIGTERM"
grep -q "$DEV left configured for the next iserblockd" "$VM_RUNDIR/daemon-2.log" || fail "daemon-2 did not leave $DEV: $(tail -5 "$VM_RUNDIR/daemon-2.log")"
kill -0 "$FIO_PID" 2>/dev/null || fail "fio ended while no daemon ran: $(tail -5 "$VM_RUNDIR/fio.log")"
start_daemon daemon-3
grep -q "recovered $DEV left by the previous daemon" "$VM_RUNDIR/daemon-3.log" || fail "daemon-3 did not recover $DEV"
wait_progress "$DEV" 30 "I/O to resume after the orderly restart"

rc=0; wait "$FIO_PID" || rc=$?
assert_eq "$rc" 0 "fio (write + crc32c verify) exit code across a crash and a restart of the daemon"
grep -q 'err= 0' "$VM_RUNDIR/fio.log" || fail "fio reported errors: $(grep -m3 'err=' "$VM_RUNDIR/fio.log")"
errors=$(kernel_io_errors)
[ -z "$errors" ] || fail "the kernel logged I/O errors: $errors"
umount "$MNT"
timeout 60 fsck.ext4 -n -f "$DEV" > "$VM_RUNDIR/fsck-2.log" 2>&1 || fail "fsck after the restarts found errors (fsck-2.log)"
echo 3 > /proc/sys/vm/drop_caches
mount "$DEV" "$MNT"
timeout 120 "${FIO[@]}" --verify_only > "$VM_RUNDIR/fio-verify.log" 2>&1 ||
    fail "after remount fio's verify of the data written across the restarts failed (fio-verify.log)"
umount "$MNT"
checked ublk-restart "SIGKILL and SIGTERM of the daemon under a mounted fio verify: recovered, no I/O error, fsck clean"

step "iserblockctl unmap removes the unmounted device"
iserblockctl unmap "$NODE" 1 > "$VM_RUNDIR/unmap.log" 2>&1 || fail "unmap failed: $(cat "$VM_RUNDIR/unmap.log")"
wait_for 20 "$DEV to go away" bash -c "[ ! -e $DEV ]"
kill -TERM "$DAEMON"; wait "$DAEMON" || true
checked ublk-unmap "unmap stops and deletes /dev/ublkbN"
