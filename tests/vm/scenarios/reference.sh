#!/usr/bin/env bash
# vm-rxe: yes
# vm-modules: ib_iser sd_mod
# vm-timeout: 300
#
# reference: the seed system as our cross-check. tgtd serves two LUNs (512- and 4096-byte logical
# blocks) over iSER on soft-RoCE; the kernel's own initiator (open-iscsi, iface iser, ib_iser) logs
# in, sees the right size and block size, writes known data at known offsets and reads it back byte
# for byte, and the target's backing files hold exactly those bytes. Later scenarios compare what
# our daemon reads and writes against this path.
. "$IBD_VM_LIB/scenario.sh"
. "$IBD_VM_LIB/tgt.sh"

IQN=iqn.2024-01.test.iserblockd:reference
KERNEL_INI=$(kernel_initiator_name)
MIB=$((1024 * 1024))

step "tgtd: target $IQN over iSER on $TGT_IPADDR, LUN 1 = 512 B blocks, LUN 2 = 4096 B blocks"
rdma link show | grep -q 'rxe0.*ACTIVE' || fail "rxe0 is not ACTIVE: $(rdma link show)"
truncate -s 64M /run/lun1.img /run/lun2.img
tgt_start
tgt_target iser 1 "$IQN"
tgt_lun iser 1 1 /run/lun1.img 512
tgt_lun iser 1 2 /run/lun2.img 4096
tgt_allow iser 1 "$KERNEL_INI"

step "open-iscsi: discovery and login over iface iser"
rm -rf /etc/iscsi/nodes /etc/iscsi/send_targets
spawn iscsid 600 iscsid -f
wait_for 20 "iscsid's control socket" bash -c 'ss -xl | grep -q ISCSIADM_ABSTRACT_NAMESPACE'
found=$(timeout 60 iscsiadm -m discovery -t sendtargets -p "$TGT_IPADDR" -I iser)
info "$found"
grep -q "^$TGT_IPADDR:3260,1 $IQN\$" <<< "$found" || fail "SendTargets did not list $IQN at $TGT_IPADDR:3260,1"
timeout 90 iscsiadm -m node -T "$IQN" -p "$TGT_IPADDR" -I iser --login
at_exit "timeout 30 iscsiadm -m node -T $IQN -p $TGT_IPADDR -I iser --logout"
timeout 10 iscsiadm -m session | grep -q "^iser: .*$IQN" || fail "no iser session: $(iscsiadm -m session 2>&1)"
tgtadm --lld iser --mode conn --op show --tid 1 | grep -q "Initiator: $KERNEL_INI" ||
    fail "tgtd shows no connection from $KERNEL_INI"

wait_for 30 "the SCSI disks of LUN 1 and 2" bash -c '. $IBD_VM_LIB/tgt.sh; iscsi_disk_for_lun 1 && iscsi_disk_for_lun 2'
for lun in 1 2; do
    dev=/dev/$(iscsi_disk_for_lun "$lun")
    bs=$([ "$lun" = 1 ] && echo 512 || echo 4096)
    step "LUN $lun = $dev"
    wait_for 10 "$dev" test -b "$dev"
    assert_eq "$(blockdev --getsize64 "$dev")" $((64 * MIB)) "LUN $lun size"
    assert_eq "$(blockdev --getss "$dev")" "$bs" "LUN $lun logical block size"

    # known data at offset 0 and in the middle (8 MiB at 40 MiB): checks addressing, not only content
    head -c $((4 * MIB)) /dev/urandom > /run/head.bin
    head -c $((8 * MIB)) /dev/urandom > /run/mid.bin
    dd if=/run/head.bin of="$dev" bs=1M oflag=direct status=none
    dd if=/run/mid.bin of="$dev" bs=1M seek=40 oflag=direct status=none
    blockdev --flushbufs "$dev"
    cmp <(dd if="$dev" bs=1M count=4 iflag=direct status=none) /run/head.bin ||
        fail "LUN $lun: the first 4 MiB read back differ from what was written"
    cmp <(dd if="$dev" bs=1M skip=40 count=8 iflag=direct status=none) /run/mid.bin ||
        fail "LUN $lun: 8 MiB at 40 MiB read back differ from what was written"
    info "ok: 12 MiB written and read back byte for byte through ib_iser"
    cmp <(dd if=/run/lun$lun.img bs=1M count=4 status=none) /run/head.bin ||
        fail "LUN $lun: the target's backing file does not hold the first 4 MiB written"
    cmp <(dd if=/run/lun$lun.img bs=1M skip=40 count=8 status=none) /run/mid.bin ||
        fail "LUN $lun: the target's backing file does not hold the 8 MiB written at 40 MiB"
    info "ok: the target's backing file holds exactly those bytes"
    # and the other way: bytes the target holds are what the initiator reads (an unwritten gap is zero)
    cmp <(dd if="$dev" bs=1M skip=20 count=4 iflag=direct status=none) <(head -c $((4 * MIB)) /dev/zero) ||
        fail "LUN $lun: never-written range at 20 MiB does not read as zeroes"
done

step "logout"
timeout 30 iscsiadm -m node -T "$IQN" -p "$TGT_IPADDR" -I iser --logout
! timeout 10 iscsiadm -m session >/dev/null 2>&1 || fail "a session is left after logout: $(iscsiadm -m session)"
wait_for 15 "tgtd to drop the iSER connection" bash -c '! tgtadm --lld iser --mode conn --op show --tid 1 | grep -q Initiator' 
[ -z "$(kernel_io_errors)" ] || fail "kernel logged I/O errors: $(kernel_io_errors)"
