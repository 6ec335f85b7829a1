#!/usr/bin/env bash
# vm-group: ublk
# vm-kernel: 6.12
# vm-rxe: yes
# vm-modules: ublk_drv target_core_mod target_core_file iscsi_target_mod ib_isert
# vm-timeout: 240
# vm-publish: daemon/iserblockd/iserblockd.csproj daemon/iserblockctl/iserblockctl.csproj
#
# ublk-iser: /dev/ublkbN on a LUN the kernel's own target (LIO with ib_isert, configured through configfs) serves
# over iSER on soft-RoCE (Debian's 6.12 kernel; tgt 1.0.85's iSER driver cannot create its queue pairs on 6.12's rxe:
# rdma_create_qp EINVAL, then it crashes), through
# `iserblockd export --transport iser --device ublk`: the requests' data moves by pread/pwrite on /dev/ublkcN
# straight into and out of the registered buffers the target RDMA-reads and -writes. Data written through the
# device is on the target's backing file byte for byte; ext4 on it takes a fio verify, a remount and fsck.
. "$IBD_VM_LIB/scenario.sh"
. "$IBD_VM_LIB/lio.sh"
TGT_IPADDR=10.99.0.1      # rxe0's address (vm-rxe: yes)

IQN=iqn.2024-01.test.iserblockd:ublk-iser
OUR_INI=iqn.2024-01.test.iserblockd:ublk-iser-initiator
MIB=$((1024 * 1024))
SIZE=$((64 * MIB))
MNT=/mnt/ublki
rdma link show | grep -q 'rxe0.*ACTIVE' || fail "rxe0 is not ACTIVE: $(rdma link show)"

step "LIO over iSER (soft-RoCE): LUN 1 = $((SIZE / MIB)) MiB file of 512 B blocks; export --transport iser --device ublk"
at_exit "rm -f /run/ublki-lun1.img /run/ublki.src"
lio_fileio lun1 /run/ublki-lun1.img "$SIZE" 512
lio_target "$IQN"
lio_portal "$IQN" "$TGT_IPADDR" iser
lio_lun "$IQN" 1 lun1
lio_acl "$IQN" "$OUR_INI"
lio_enable "$IQN" 1
spawn export 200 iserblockd export --portal "$TGT_IPADDR" --target "$IQN" --lun 1 --transport iser \
    --initiator-name "$OUR_INI" --device ublk --connections 2 --log-level info
EXPORT=$SPAWNED
wait_for 120 "the export to be ready" grep -q '^ready: ' "$VM_RUNDIR/export.log"
DEV=$(sed -n 's/^ready: //p' "$VM_RUNDIR/export.log")
info "ready: $DEV"
assert_eq "$(blockdev --getsize64 "$DEV")" "$SIZE" "size of $DEV"

step "8 MiB written through $DEV at 4 MiB are on the target's file; read back through $DEV"
head -c $((8 * MIB)) /dev/urandom > /run/ublki.src
dd if=/run/ublki.src of="$DEV" bs=256k seek=16 oflag=direct status=none
cmp <(dd if="$DEV" bs=256k skip=16 count=32 iflag=direct status=none) /run/ublki.src || fail "read back through $DEV differs"
echo 3 > /proc/sys/vm/drop_caches
cmp <(dd if=/run/ublki-lun1.img bs=256k skip=16 count=32 iflag=direct status=none) /run/ublki.src || fail "the target's backing file differs"
checked ublk-iser-data "writes through /dev/ublkbN over iSER land on the target byte for byte, reads return them"

step "ext4 on $DEV over iSER: fio write + verify, remount, fsck"
timeout 120 mkfs.ext4 -q -F "$DEV"
mkdir -p "$MNT"
mount "$DEV" "$MNT"
at_exit "umount -l $MNT"
timeout 150 fio --name=ublki --filename="$MNT/fio.dat" --size=16M --bs=128k --rw=randwrite --iodepth=8 --ioengine=libaio \
    --direct=1 --verify=crc32c --verify_fatal=1 --output-format=normal > "$VM_RUNDIR/fio.log" 2>&1 ||
    fail "fio write + verify failed: $(tail -5 "$VM_RUNDIR/fio.log")"
umount "$MNT"
timeout 60 fsck.ext4 -n -f "$DEV" > "$VM_RUNDIR/fsck.log" 2>&1 || fail "fsck found errors on $DEV (fsck.log)"
errors=$(kernel_io_errors)
[ -z "$errors" ] || fail "the kernel logged I/O errors: $errors"
kill -TERM "$EXPORT"; rc=0; wait "$EXPORT" || rc=$?
assert_eq "$rc" 0 "exit code of the export after SIGTERM"
[ ! -e "$DEV" ] || fail "$DEV still exists after the export stopped"
checked ublk-iser-fs "mkfs, fio randwrite QD8 + crc32c verify, fsck clean over iSER; device removed at stop"
