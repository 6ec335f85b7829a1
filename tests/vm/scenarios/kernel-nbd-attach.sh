#!/usr/bin/env bash
# vm-modules: nbd
# vm-timeout: 420
# vm-publish: tests/IserBlockd.KernelAttachTool/IserBlockd.KernelAttachTool.csproj
#
# kernel-nbd-attach: a real /dev/nbdX through our netlink attach and our NBD server's transmission
# phase. For 512- and 4096-byte logical blocks: the device appears with the right size and block
# size, mkfs.ext4, mount, files with known checksums survive unmount/remount, clean detach. Then the
# serving process is killed (SIGKILL) while the device is mounted and a dd is writing, a new process
# re-attaches through NBD_CMD_RECONFIGURE, and the guest sees no I/O error and no lost byte.
# Finally the legacy ioctl path attaches, reads and writes, and detaches.
. "$IBD_VM_LIB/scenario.sh"
MIB=$((1024 * 1024))
SIZE=$((128 * MIB))

# ---- THE ATTACH COMMAND -------------------------------------------------------------------------
# Until the daemon exists (issue 4) the test tool attaches; switch these two functions to
# `iserblockd` (config with device: auto, then iserblockctl unmap / daemon restart) when it lands.
# attach_device NAME BACKING BLOCK_SIZE [extra tool options]: starts the server, sets $DEV.
attach_device() {
    local name=$1 backing=$2 bs=$3; shift 3
    spawn "$name" 600 ibd-kernel-attach attach --backing "$backing" --size "$SIZE" --block-size "$bs" "$@"
    ATTACH_PID=$SPAWNED
    wait_for 60 "$name to print READY" grep -q '^READY ' "$VM_RUNDIR/$name.log"
    DEV=$(sed -n 's/^READY \(\/dev\/nbd[0-9]*\).*/\1/p' "$VM_RUNDIR/$name.log")
    info "$(grep '^READY ' "$VM_RUNDIR/$name.log")"
}
# reattach_device NAME BACKING BLOCK_SIZE INDEX: a new process takes over a configured device
reattach_device() {
    local name=$1 backing=$2 bs=$3 index=$4; shift 4
    spawn "$name" 600 ibd-kernel-attach reattach --index "$index" --backing "$backing" --size "$SIZE" --block-size "$bs" "$@"
    ATTACH_PID=$SPAWNED
    wait_for 60 "$name to print READY" grep -q '^READY ' "$VM_RUNDIR/$name.log"
    info "$(grep '^READY ' "$VM_RUNDIR/$name.log")"
}
# detach_device: orderly stop of the server (SIGTERM -> NBD_CMD_DISCONNECT), must exit 0
detach_device() {
    kill -TERM "$ATTACH_PID"
    local rc=0; wait "$ATTACH_PID" || rc=$?
    assert_eq "$rc" 0 "exit code of the attach process after SIGTERM"
}
# --------------------------------------------------------------------------------------------------

device_connected() { ibd-kernel-attach status --index "${1#/dev/nbd}" | grep -q "^$1 connected\$"; }
mkdir -p /mnt/nbd

for bs in 512 4096; do
    step "attach a ${SIZE}-byte file with ${bs}-byte logical blocks"
    truncate -s 0 "/run/lun-$bs.img"
    attach_device "attach-$bs" "/run/lun-$bs.img" "$bs"
    wait_for 10 "$DEV" test -b "$DEV"
    assert_eq "$(blockdev --getsize64 "$DEV")" "$SIZE" "size of $DEV"
    assert_eq "$(blockdev --getss "$DEV")" "$bs" "logical block size of $DEV"
    device_connected "$DEV" || fail "NBD_CMD_STATUS does not show $DEV connected"

    step "mkfs.ext4, mount, files with known checksums, unmount, remount, verify"
    timeout 120 mkfs.ext4 -q -F -b 4096 "$DEV"
    mount "$DEV" /mnt/nbd
    at_exit "umount -l /mnt/nbd"
    for f in a b c; do head -c $((3 * MIB + 4096 * ${#f})) /dev/urandom > "/run/$f.src"; cp "/run/$f.src" "/mnt/nbd/$f"; done
    (cd /run && sha256sum a.src b.src c.src | sed 's/\.src$//') > /run/sums
    umount /mnt/nbd
    blockdev --flushbufs "$DEV"
    echo 3 > /proc/sys/vm/drop_caches
    mount "$DEV" /mnt/nbd
    (cd /mnt/nbd && sha256sum -c /run/sums) || fail "files changed across unmount/remount on $DEV"
    umount /mnt/nbd
    timeout 60 fsck.ext4 -n -f "$DEV" > "$VM_RUNDIR/fsck-$bs.log" 2>&1 || fail "fsck found errors on $DEV (fsck-$bs.log)"
    info "ok: 3 files verified after remount, fsck clean"

    step "detach cleanly"
    detach_device
    grep -q "^DETACHED $DEV" "$VM_RUNDIR/attach-$bs.log" || fail "the attach process did not report the detach"
    ! device_connected "$DEV" || fail "$DEV is still connected after detach"
    info "ok: $DEV disconnected"
done

step "restart the serving process while mounted and written to: re-attach through NBD_CMD_RECONFIGURE"
dmesg -C
truncate -s 0 /run/lun-r.img
attach_device attach-r /run/lun-r.img 4096 --timeout 5 --dead-conn-timeout 120
INDEX=${DEV#/dev/nbd}
timeout 120 mkfs.ext4 -q -F "$DEV"
mount "$DEV" /mnt/nbd
# fio writes 48 MiB with O_DIRECT at 4 MiB/s (so the kill lands mid-stream) and verifies every block
FIO=(fio --name=restart --filename=/mnt/nbd/fio.dat --size=48M --bs=64k --rw=write --direct=1 --ioengine=psync
     --verify=crc32c --verify_fatal=1 --rate=4m --output-format=normal)
spawn fio 300 "${FIO[@]}"
FIO_PID=$SPAWNED
sleep 4
kill -0 "$FIO_PID" 2>/dev/null || fail "fio ended before the restart: $(tail -5 "$VM_RUNDIR/fio.log")"
server=$(spawned_process "$ATTACH_PID")
[ -n "$server" ] || fail "cannot find the attach process under its timeout wrapper $ATTACH_PID"
info "fio is writing; killing the server (SIGKILL to pid $server)"
kill -9 "$server"
wait "$ATTACH_PID" 2>/dev/null || true
sleep 3
device_connected "$DEV" || fail "$DEV lost its configuration when its server died"
kill -0 "$FIO_PID" 2>/dev/null || fail "fio ended while the server was gone (it should be waiting): $(tail -5 "$VM_RUNDIR/fio.log")"
t_restart=$(date +%s.%N)
reattach_device reattach-r /run/lun-r.img 4096 "$INDEX" --timeout 5 --dead-conn-timeout 120
rc=0; wait "$FIO_PID" || rc=$?
info "fio finished $(awk -v a="$t_restart" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s after the re-attach"
assert_eq "$rc" 0 "fio (write + crc32c verify) exit code across the restart"
grep -q 'err= 0' "$VM_RUNDIR/fio.log" || fail "fio reported errors: $(grep -m3 'err=' "$VM_RUNDIR/fio.log")"
umount /mnt/nbd
echo 3 > /proc/sys/vm/drop_caches
mount "$DEV" /mnt/nbd
timeout 120 "${FIO[@]}" --verify_only --rate=0 > "$VM_RUNDIR/fio-verify.log" 2>&1 ||
    fail "after remount fio's verify of the data written across the restart failed (fio-verify.log)"
info "ok: all 48 MiB verified again after remount"
umount /mnt/nbd
errors=$(kernel_io_errors)
[ -z "$errors" ] || fail "the kernel logged I/O errors across the restart:\n$errors"
dmesg | grep -qE "nbd$INDEX: (Receive control failed|Dead connection)" || fail "the kernel never saw the connection die: not a real restart"
dmesg | grep -q "nbd$INDEX: reconnected socket" || fail "the kernel log has no 'reconnected socket' for nbd$INDEX"
info "ok: the kernel saw the connection die and a socket reconnected; no I/O error in its log"
detach_device

step "a stalled server: the kernel times a request out, drops the connection, we hand it a new one"
# SIGSTOP the server longer than the kernel's request timeout (3 s): the kernel marks the connection
# dead, requeues the request and announces NBD_CMD_LINK_DEAD; once resumed, the server sees its socket
# shut, replaces it through NBD_CMD_RECONFIGURE, and the writer never sees an error.
dmesg -C
truncate -s 0 /run/lun-s.img
attach_device attach-s /run/lun-s.img 4096 --timeout 3 --dead-conn-timeout 120 --replace-dead-connections yes
timeout 120 mkfs.ext4 -q -F "$DEV"
mount "$DEV" /mnt/nbd
FIO=(fio --name=stall --filename=/mnt/nbd/fio.dat --size=24M --bs=64k --rw=write --direct=1 --ioengine=psync
     --verify=crc32c --verify_fatal=1 --rate=4m --output-format=normal)
spawn fio-stall 300 "${FIO[@]}"
FIO_PID=$SPAWNED
sleep 3
server=$(spawned_process "$ATTACH_PID")
kill -STOP "$server"
info "server $server stopped for 8 s"
sleep 8
dmesg | grep -q "${DEV#/dev/}: Connection timed out" || fail "the kernel did not time a request out while the server was stopped"
kill -CONT "$server"
rc=0; wait "$FIO_PID" || rc=$?
assert_eq "$rc" 0 "fio (write + crc32c verify) exit code across the stall"
dmesg | grep -q "${DEV#/dev/}: reconnected socket" || fail "no socket was reconnected after the stall"
errors=$(kernel_io_errors)
[ -z "$errors" ] || fail "the kernel logged I/O errors across the stall:\n$errors"
umount /mnt/nbd
detach_device
grep -q "^DETACHED $DEV replaced=1" "$VM_RUNDIR/attach-s.log" || fail "the server did not replace exactly one connection: $(grep DETACHED "$VM_RUNDIR/attach-s.log")"
info "ok: the dead connection was replaced, fio verified every block, no I/O error"

step "a device disconnected by someone else ends its server"
truncate -s 0 /run/lun-x.img
attach_device attach-x /run/lun-x.img 512 --replace-dead-connections yes
ibd-kernel-attach detach --index "${DEV#/dev/nbd}"
rc=0; wait "$ATTACH_PID" || rc=$?
assert_eq "$rc" 0 "exit code of the server whose device was disconnected"
grep -q "^ENDED $DEV" "$VM_RUNDIR/attach-x.log" || fail "the server did not notice the disconnect"
! device_connected "$DEV" || fail "$DEV was revived after an external disconnect"

step "legacy ioctl path (NBD_SET_SOCK ... NBD_DO_IT)"
truncate -s 0 /run/lun-i.img
attach_device attach-i /run/lun-i.img 4096 --method ioctl --index 5
assert_eq "$DEV" /dev/nbd5 "device chosen"
grep -q 'method=Ioctl' "$VM_RUNDIR/attach-i.log" || fail "the ioctl path was not used"
assert_eq "$(blockdev --getsize64 "$DEV")" "$SIZE" "size of $DEV (ioctl)"
assert_eq "$(blockdev --getss "$DEV")" 4096 "logical block size of $DEV (ioctl)"
head -c $((8 * MIB)) /dev/urandom > /run/raw.src
dd if=/run/raw.src of="$DEV" bs=1M seek=16 oflag=direct status=none
cmp <(dd if="$DEV" bs=1M skip=16 count=8 iflag=direct status=none) /run/raw.src || fail "ioctl path: read back differs"
cmp <(dd if=/run/lun-i.img bs=1M skip=16 count=8 status=none) /run/raw.src || fail "ioctl path: backing file differs"
detach_device
info "ok: 8 MiB at 16 MiB written and read back through the ioctl-attached device"
