#!/usr/bin/env bash
# vm-group: main
# vm-modules: nbd
# vm-timeout: 180
# vm-publish: daemon/iserblockd/iserblockd.csproj daemon/iserblockctl/iserblockctl.csproj
#
# kernel-nbd-resize: live resize end to end on the kernel path. tgtd in the guest serves a 32 MiB LUN;
# `iserblockd run --config FILE` maps it on /dev/nbdX ("device": "auto"); ext4 is made and mounted and a file with a
# known checksum written. The LUN is grown to 96 MiB at the target (tgtd reads a LUN's size when the LUN is created,
# so the LUN is re-created on the grown backing file, as RescanTests does); `iserblockctl rescan NODE 1` reads the
# size again, the daemon gives /dev/nbdX the new size (NBD_CMD_RECONFIGURE), an online resize2fs grows the mounted
# ext4, the file is intact and more data than the old size could hold is written, read back and fsck'd.
. "$IBD_VM_LIB/scenario.sh"
. "$IBD_VM_LIB/tgt.sh"

IQN=iqn.2024-01.test.iserblockd:kernel-nbd-resize
OUR_INI=iqn.2024-01.test.iserblockd:kernel-nbd-resize-initiator
NODE=grow
MIB=$((1024 * 1024))
OLD=$((32 * MIB))
NEW=$((96 * MIB))
BACKING=/run/kresize-lun1.img
CONFIG=/run/iserblockd-resize.json
NOTIFY_SOCKET_PATH=/run/notify-resize.sock
NOTIFY_LOG=$VM_RUNDIR/notify.log
MNT=/mnt/kresize

step "tgtd in the guest: LUN 1 = 32 MiB of 512 B blocks; iserblockd run maps it with \"device\": \"auto\""
truncate -s 0 "$BACKING"
truncate -s "$OLD" "$BACKING"
at_exit "rm -f $BACKING /run/kresize-*.src"
tgt_start
tgt_target iscsi 1 "$IQN"
tgt_lun iscsi 1 1 "$BACKING" 512
tgt_allow iscsi 1 "$OUR_INI"
cat > "$CONFIG" <<EOF
{
  "initiatorName": "$OUR_INI",
  "loginTimeout": 60,
  "nodes": [ { "name": "$NODE", "portals": ["127.0.0.1:3260"], "target": "$IQN", "luns": [ { "lun": 1, "device": "auto" } ] } ]
}
EOF
iserblockd check-config --config "$CONFIG" > "$VM_RUNDIR/check-config.log" || fail "check-config refused $CONFIG: $(cat "$VM_RUNDIR/check-config.log")"
touch "$NOTIFY_LOG"
spawn notify 300 python3 "$IBD_VM_LIB/notify-listener.py" "$NOTIFY_SOCKET_PATH" "$NOTIFY_LOG"
wait_for 20 "the notify listener" test -S "$NOTIFY_SOCKET_PATH"
spawn daemon 300 env NOTIFY_SOCKET="$NOTIFY_SOCKET_PATH" iserblockd run --config "$CONFIG"
DAEMON=$SPAWNED
wait_for 90 "the daemon to send READY=1" grep -q ' READY=1' "$NOTIFY_LOG"
DEV=$(device_of 1)
[ -n "$DEV" ] || fail "no /dev/nbdX has the backend iserblockd:$IQN:1"
wait_for 10 "$DEV" test -b "$DEV"
assert_eq "$(blockdev --getsize64 "$DEV")" "$OLD" "size of $DEV before the grow"

step "ext4 on $DEV, mounted, a file with a known checksum"
timeout 120 mkfs.ext4 -q -F -b 4096 "$DEV"
mkdir -p "$MNT"
mount "$DEV" "$MNT"
at_exit "umount -l $MNT"
head -c $((8 * MIB + 777)) /dev/urandom > /run/kresize-a.src
cp /run/kresize-a.src "$MNT/a"
sync
SUM_A=$(sha256sum < /run/kresize-a.src)
df_before=$(df -B1 --output=size "$MNT" | tail -n1 | tr -d ' ')
info "df before: $df_before bytes"

step "grow the LUN to 96 MiB at the target; iserblockctl rescan $NODE 1; the kernel device follows"
# While the LUN is re-created at the target no write may reach it (tgtd answers LOGICAL UNIT NOT SUPPORTED, the kernel
# logs an I/O error, and ext4's lazy inode-table initialisation writes in the background after mkfs): the filesystem
# is frozen for that time, as an administrator would freeze it. (A CI run once caught such a write in the gap.)
fsfreeze -f "$MNT"
at_exit "fsfreeze -u $MNT 2>/dev/null"
tgtadm --lld iscsi --mode logicalunit --op delete --tid 1 --lun 1
truncate -s "$NEW" "$BACKING"
tgt_lun iscsi 1 1 "$BACKING" 512
fsfreeze -u "$MNT"
out=$(iserblockctl rescan "$NODE" 1 2>&1) || fail "iserblockctl rescan $NODE 1 failed: $out"
info "rescan: $out"
grep -q "LUN 1: resized from $OLD to $NEW bytes" <<< "$out" || fail "rescan did not report the new size: $out"
wait_for 20 "$DEV to show $NEW bytes" bash -c "[ \$(blockdev --getsize64 $DEV) = $NEW ]"
assert_eq "$(blockdev --getsize64 "$DEV")" "$NEW" "size of $DEV after rescan"
grep -q "$DEV: size set to $NEW bytes" "$VM_RUNDIR/daemon.log" || fail "the daemon did not log resizing $DEV: $(grep -i "$DEV" "$VM_RUNDIR/daemon.log" | tail -n3)"
checked resize "LUN grown at the target (32 -> 96 MiB), iserblockctl rescan: /dev/nbdX is $NEW bytes while mounted"

step "online resize2fs of the mounted ext4 on $DEV"
timeout 120 resize2fs "$DEV" > "$VM_RUNDIR/resize2fs.log" 2>&1 || fail "resize2fs failed: $(cat "$VM_RUNDIR/resize2fs.log")"
info "$(grep -i 'resiz\|long' "$VM_RUNDIR/resize2fs.log" | tr '\n' ' ')"
df_after=$(df -B1 --output=size "$MNT" | tail -n1 | tr -d ' ')
info "df after: $df_after bytes"
[ "$df_after" -gt "$OLD" ] || fail "df shows $df_after bytes after resize2fs, not more than the old device's $OLD"
assert_eq "$(sha256sum < "$MNT/a")" "$SUM_A" "checksum of the file written before the grow"
head -c $((48 * MIB)) /dev/urandom > /run/kresize-b.src
cp /run/kresize-b.src "$MNT/b" || fail "writing 48 MiB (more than the old 32 MiB device) failed"
sync
umount "$MNT"
echo 3 > /proc/sys/vm/drop_caches
timeout 60 fsck.ext4 -n -f "$DEV" > "$VM_RUNDIR/fsck.log" 2>&1 || fail "fsck found errors on $DEV (fsck.log)"
mount "$DEV" "$MNT"
assert_eq "$(sha256sum < "$MNT/a")" "$SUM_A" "checksum of the first file after remount"
assert_eq "$(sha256sum < "$MNT/b")" "$(sha256sum < /run/kresize-b.src)" "checksum of the 48 MiB file after remount"
umount "$MNT"
errors=$(kernel_io_errors)
[ -z "$errors" ] || fail "the kernel logged I/O errors: $errors"
checked resize-online "online resize2fs grew the mounted ext4 ($df_before -> $df_after bytes); old file intact, 48 MiB more written and read back, fsck clean"

step "stop the daemon"
kill -TERM "$DAEMON"
rc=0; wait "$DAEMON" || rc=$?
assert_eq "$rc" 0 "exit code of iserblockd after SIGTERM"
