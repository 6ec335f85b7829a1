#!/usr/bin/env bash
# vm-group: ublk
# vm-kernel: 6.12
# vm-modules: ublk_drv
# vm-timeout: 300
# vm-publish: tests/IserBlockd.KernelAttachTool/IserBlockd.KernelAttachTool.csproj
#
# ublk: our ublk server (io_uring bindings, /dev/ublk-control, one ring + thread per queue, user copy) on Debian's
# 6.12 kernel, serving a file through `ibd-kernel-attach ublk` (no iSCSI: this proves the ublk path alone).
# /dev/ublkbN has the file's size, 512-byte blocks, a volatile write cache with FUA and discard; it takes ext4,
# fstrim, a remount and fsck. With fio writing and verifying on the mounted device the server is killed (SIGKILL:
# the kernel quiesces the device and holds its I/O, UBLK_F_USER_RECOVERY with REISSUE) and a new one takes it back
# (START/END_USER_RECOVERY); then it is stopped with SIGTERM leaving the device to a third one; fio sees no error
# and the kernel logs none. Last an orderly stop removes the device (STOP_DEV, DEL_DEV).
. "$IBD_VM_LIB/scenario.sh"

MIB=$((1024 * 1024))
SIZE=$((96 * MIB))
IMG=/run/ublk-backing.img
MNT=/mnt/ublk
SERVE=(ibd-kernel-attach ublk --backing "$IMG" --size "$SIZE" --queues 2 --depth 32 --backend vm-test:ublk)

# start_server NAME [ARGS...]: spawn it, wait for READY, set $SERVER (spawn pid) and $DEV
start_server() {
    local name=$1; shift
    spawn "$name" 280 "${SERVE[@]}" "$@"
    SERVER=$SPAWNED
    wait_for 60 "$name to be READY" grep -q '^READY ' "$VM_RUNDIR/$name.log"
    DEV=$(awk '/^READY /{print $2; exit}' "$VM_RUNDIR/$name.log")
    info "$name: $(grep '^READY ' "$VM_RUNDIR/$name.log")"
}

# sectors read and written so far (/sys/block/X/stat fields 3 and 7): fio's verify phase reads, so a writer that
# finished its writes during a slow restart still shows progress
moved() { awk '{print $3 + $7}' "/sys/block/${1#/dev/}/stat"; }
wait_progress() {
    local before; before=$(moved "$1")
    # (or the writer is done, a zombie until waited for: its exit code, checked below, says whether its I/O succeeded)
    wait_for "$2" "$3" bash -c "[ \$(awk '{print \$3 + \$7}' /sys/block/${1#/dev/}/stat) -gt $before ] || [ \"\$(awk '{print \$3}' /proc/${FIO_PID:-1}/stat 2>/dev/null || echo Z)\" = Z ]"
}

step "a $((SIZE / MIB)) MiB file as /dev/ublkbN: geometry and queue limits"
[ -e /dev/ublk-control ] || fail "no /dev/ublk-control on $(uname -r)"
truncate -s "$SIZE" "$IMG"
start_server server-1
[ -b "$DEV" ] || fail "$DEV is not a block device"
ID=${DEV#/dev/ublkb}
assert_eq "$(blockdev --getsize64 "$DEV")" "$SIZE" "size of $DEV"
assert_eq "$(blockdev --getss "$DEV")" 512 "logical block size"
Q=/sys/block/ublkb$ID/queue
assert_eq "$(cat $Q/write_cache)" "write back" "write cache (flush is passed on)"
assert_eq "$(cat $Q/fua)" 0 "FUA (the file device offers flush, not FUA)"
[ "$(cat $Q/discard_max_bytes)" -gt 0 ] || fail "no discard on $DEV"
assert_eq "$(ls -d /sys/block/ublkb$ID/mq/* | wc -l)" 2 "hardware queues"
checked ublk-attach "/dev/ublkbN with the backing's size and block size, write-back cache, discard, 2 queues"

step "ext4 on $DEV: write, fstrim, remount, fsck, read back"
mkdir -p "$MNT"
mkfs.ext4 -q -F "$DEV"
mount "$DEV" "$MNT"
at_exit "umount $MNT"
dd if=/dev/urandom of="$MNT/file" bs=1M count=16 status=none
sum=$(md5sum < "$MNT/file")
rm -f "$MNT/scratch"; dd if=/dev/zero of="$MNT/scratch" bs=1M count=8 status=none; rm "$MNT/scratch"; sync
fstrim -v "$MNT" > "$VM_RUNDIR/fstrim.log" 2>&1 || fail "fstrim failed: $(cat "$VM_RUNDIR/fstrim.log")"
umount "$MNT"
fsck.ext4 -n -f "$DEV" > "$VM_RUNDIR/fsck.log" 2>&1 || fail "fsck found errors: $(tail -5 "$VM_RUNDIR/fsck.log")"
echo 3 > /proc/sys/vm/drop_caches
mount "$DEV" "$MNT"
assert_eq "$(md5sum < "$MNT/file")" "$sum" "16 MiB file read back after remount"
cmp <(dd if="$IMG" bs=1M count=1 status=none) <(dd if="$DEV" bs=1M count=1 iflag=direct status=none) ||
    fail "the first MiB of $DEV differs from the backing file"
checked ublk-ext4 "mkfs, write, fstrim (DISCARD), remount, fsck -f clean, data read back"

step "fio writing and verifying on the mounted device while the server is killed and restarted"
dmesg -C
FIO=(fio --name=ublk --filename="$MNT/fio.dat" --size=32M --bs=64k --rw=write --direct=1 --ioengine=psync
     --verify=crc32c --verify_fatal=1 --rate=4m --output-format=normal)
spawn fio 200 "${FIO[@]}"
FIO_PID=$SPAWNED
wait_progress "$DEV" 30 "fio to write"
info "SIGKILL to the server: the kernel quiesces $DEV and holds its I/O"
kill -9 "$(spawned_process "$SERVER")"
wait "$SERVER" 2>/dev/null || true
sleep 2
[ -b "$DEV" ] || fail "$DEV went away with its server"
kill -0 "$FIO_PID" 2>/dev/null || fail "fio ended while no server ran: $(tail -5 "$VM_RUNDIR/fio.log")"
t=$(date +%s.%N)
start_server server-2 --recover "$ID" --on-exit release
grep -q 'recovered' "$VM_RUNDIR/server-2.log" || fail "server-2 did not recover $DEV"
wait_progress "$DEV" 30 "I/O to resume after the crash"
info "ok: recovered; writes resumed $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s after the new server started"

info "SIGTERM to a server that leaves the device to the next one (release)"
kill -TERM "$SERVER"; wait "$SERVER" || true
grep -q '^RELEASED ' "$VM_RUNDIR/server-2.log" || fail "server-2 did not release $DEV: $(tail -3 "$VM_RUNDIR/server-2.log")"
kill -0 "$FIO_PID" 2>/dev/null || fail "fio ended while no server ran: $(tail -5 "$VM_RUNDIR/fio.log")"
start_server server-3 --recover "$ID"
wait_progress "$DEV" 30 "I/O to resume after the orderly restart"

rc=0; wait "$FIO_PID" || rc=$?
assert_eq "$rc" 0 "fio (write + crc32c verify) exit code across a crash and a restart"
grep -q 'err= 0' "$VM_RUNDIR/fio.log" || fail "fio reported errors: $(grep -m3 'err=' "$VM_RUNDIR/fio.log")"
errors=$(kernel_io_errors)
[ -z "$errors" ] || fail "the kernel logged I/O errors: $errors"
umount "$MNT"
fsck.ext4 -n -f "$DEV" > "$VM_RUNDIR/fsck-2.log" 2>&1 || fail "fsck after the restarts found errors: $(tail -5 "$VM_RUNDIR/fsck-2.log")"
echo 3 > /proc/sys/vm/drop_caches
mount "$DEV" "$MNT"
timeout 120 "${FIO[@]}" --verify_only --rate=0 > "$VM_RUNDIR/fio-verify.log" 2>&1 ||
    fail "after remount fio's verify of the data written across the restarts failed (fio-verify.log)"
umount "$MNT"
checked ublk-recovery "SIGKILL and SIGTERM of the server under a mounted fio verify: START/END_USER_RECOVERY, no I/O error, fsck clean"

step "an orderly stop removes the device"
kill -TERM "$SERVER"; wait "$SERVER" || true
grep -q '^DETACHED ' "$VM_RUNDIR/server-3.log" || fail "server-3 did not detach: $(tail -3 "$VM_RUNDIR/server-3.log")"
[ ! -e "$DEV" ] || fail "$DEV still exists after STOP_DEV/DEL_DEV"
[ ! -e "/dev/ublkc$ID" ] || fail "/dev/ublkc$ID still exists after DEL_DEV"
checked ublk-detach "STOP_DEV + DEL_DEV remove /dev/ublkbN and /dev/ublkcN"
