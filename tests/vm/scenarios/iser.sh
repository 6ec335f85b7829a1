#!/usr/bin/env bash
# vm-group: main
# vm-rxe: yes
# vm-modules: nbd ib_iser sd_mod
# vm-timeout: 600
# vm-publish: tests/IserBlockd.IserCheck/IserBlockd.IserCheck.csproj daemon/iserblockd/iserblockd.csproj daemon/iserblockctl/iserblockctl.csproj
#
# iser: our initiator over iSER (transport/IserBlockd.Transport/Iser) against tgtd's iSER driver on soft-RoCE, in
# one guest and one tgtd (its first RDMA connection registers its iSER pool, 256 MiB here: paid once): discovery
# and login over iSER; INQUIRY and READ CAPACITY; random data written and read back at 4 KiB, 128 KiB and 1 MiB
# through registered (zero-copy) and plain (bounce) buffers, and 64 commands in flight; no rdma-core object left
# after logout. The reference (issue 5): the kernel's own initiator (open-iscsi, iface iser, ib_iser) logs into the
# same target, sees both LUNs with their size and block size, reads what we wrote byte for byte, and we read what it
# wrote. Then `iserblockd export --transport iser`: fio verify through an NBD socket, a kernel /dev/nbdX that takes
# requests larger than the registered buffers (its queue limit is lowered), formatted, mounted, written, remounted
# and checked, and tgtd killed and restarted in the middle of both workloads without an error or a lost byte.
. "$IBD_VM_LIB/scenario.sh"
. "$IBD_VM_LIB/tgt.sh"

IQN=iqn.2024-01.test.iserblockd:iser
OUR_INI=iqn.2024-01.test.iserblockd:iser-check
KERNEL_INI=$(kernel_initiator_name)
MIB=$((1024 * 1024))
CHECK=$IBD_BIN/iser-check
[ -x "$CHECK" ] || fail "$CHECK is missing: publish tests/IserBlockd.IserCheck (run-scenarios.sh does)"
# IBD_ISER_MEMORY_WINDOWS=off (a manual run): everything without memory windows, a protection domain per session instead.
WINDOWS=${IBD_ISER_MEMORY_WINDOWS:-on}
check() { "$CHECK" "$@" --initiator-name "$OUR_INI" --memory-windows "$WINDOWS"; }

# serve_target: tgtd with the target (again, after a crash: same backing files)
serve_target() {
    # A 256 MiB iSER pool instead of tgtd's 1 GiB: registering 1 GiB at the first login (again after the restart
    # step) outlasted open-iscsi's login timeouts and once crashed tgtd in rdma_create_qp on a loaded host.
    tgt_start --iser pool_sz_mb=256
    TGTD=$SPAWNED
    tgt_target iser 1 "$IQN"
    tgt_lun iser 1 1 /run/lun1.img 512
    tgt_lun iser 1 2 /run/lun2.img 4096
    tgt_allow iser 1 "$OUR_INI" "$KERNEL_INI"
}

step "tgtd: target $IQN over iSER on $TGT_IPADDR, LUN 1 = 64 MiB of 512 B blocks, LUN 2 = 64 MiB of 4096 B blocks"
rdma link show | grep -q 'rxe0.*ACTIVE' || fail "rxe0 is not ACTIVE: $(rdma link show)"
truncate -s 64M /run/lun1.img
truncate -s 64M /run/lun2.img
serve_target

step "SendTargets discovery over iSER"
out=$(check discover "$TGT_IPADDR" --transport iser --verbose)
info "$out"
grep -q "^$TGT_IPADDR:3260,1 $IQN\$" <<< "$out" || fail "SendTargets over iSER did not list $IQN at $TGT_IPADDR:3260,1"
grep -q "^ok: no rdma-core object left" <<< "$out" || fail "rdma-core objects left after the discovery session"

step "iserblockctl inquiry --transport iser (INQUIRY and READ CAPACITY through the command line)"
out=$(iserblockctl inquiry --portal "$TGT_IPADDR" --target "$IQN" --lun 2 --transport iser --initiator-name "$OUR_INI")
info "$out"
grep -q "^Portal: *$TGT_IPADDR:3260 (iser)" <<< "$out" || fail "iserblockctl inquiry did not log in over iSER"
grep -q "^Capacity: *$((64 * MIB)) bytes" <<< "$out" || fail "iserblockctl inquiry: wrong capacity"
grep -q "^Logical block size: *4096" <<< "$out" || fail "iserblockctl inquiry: wrong block size"
checked login "SendTargets, login, INQUIRY and READ CAPACITY over iSER"

for lun in 1 2; do
    bs=$([ "$lun" = 1 ] && echo 512 || echo 4096)
    size=$((64 * MIB))
    step "LUN $lun over iSER: login, INQUIRY, READ CAPACITY, verified I/O at 4 KiB, 128 KiB, 1 MiB and 64 in flight"
    out=$(check io "$TGT_IPADDR" "$IQN" --lun "$lun" --transport iser)
    info "$out"
    grep -q "^transport: iser " <<< "$out" || fail "LUN $lun: not logged in over iSER"
    grep -q "RDMAExtensions=Yes" <<< "$out" || fail "LUN $lun: RDMAExtensions=Yes was not agreed"
    grep -q "^inquiry: vendor=IET product=VIRTUAL-DISK" <<< "$out" || fail "LUN $lun: no INQUIRY data"
    grep -q "^capacity: $size bytes, block size $bs, max transfer 524288" <<< "$out" || fail "LUN $lun: wrong READ CAPACITY or transfer limit"
    for n in 4096 131072 1048576; do
        grep -q "^ok: $n bytes (registered buffers) written and read back" <<< "$out" || fail "LUN $lun: $n bytes through registered buffers"
        grep -q "^ok: $n bytes (plain buffers) written and read back" <<< "$out" || fail "LUN $lun: $n bytes through bounce buffers"
    done
    grep -q "^ok: 64 concurrent 64 KiB writes then reads, all verified" <<< "$out" || fail "LUN $lun: concurrent I/O"
    grep -Eq "^iser: registered=[1-9][0-9]* bounce=[1-9]" <<< "$out" || fail "LUN $lun: zero-copy and bounce paths were not both used"
    # rxe has type 2 memory windows: every command's buffer is reached only through a window bound for it, and every
    # window is invalidated when its command ends (tgtd sends no Send with Invalidate: locally).
    if [ "$WINDOWS" = on ]; then
        grep -Eq "^iser: .* windows=True binds=[1-9][0-9]* remoteInvalidations=[0-9]+ localInvalidations=[1-9]" <<< "$out" ||
            fail "LUN $lun: task buffers were not reached through per-command memory windows"
        binds=$(sed -n 's/^iser: .* binds=\([0-9]*\) remoteInvalidations=\([0-9]*\) localInvalidations=\([0-9]*\)$/\1 \2 \3/p' <<< "$out")
        read -r b r l <<< "$binds"
        assert_eq "$((r + l))" "$b" "LUN $lun: windows invalidated (remote + local) vs bound"
    else
        grep -Eq "^iser: .* windows=False binds=0 " <<< "$out" || fail "LUN $lun: windows were used though turned off"
    fi
    grep -q "^ok: no rdma-core object left" <<< "$out" || fail "LUN $lun: rdma-core objects left after logout"
    ! grep -q FAIL <<< "$out" || fail "LUN $lun: a check failed"
done
checked io "verified 4 KiB, 128 KiB, 1 MiB and 64 in flight, zero-copy and bounce, 512 and 4096 B LUNs, no leak, a memory window per command, each invalidated"

step "reference: the kernel's initiator (open-iscsi, iface iser) logs into the same target and reads what we wrote"
head -c $((4 * MIB)) /dev/urandom > /run/ours.bin
head -c $((4 * MIB)) /dev/urandom > /run/kernels.bin
out=$(check put "$TGT_IPADDR" "$IQN" --lun 1 --offset $((40 * MIB)) --file /run/ours.bin --transport iser)
info "$out"
cmp <(dd if=/run/lun1.img bs=1M skip=40 count=4 status=none) /run/ours.bin || fail "the backing file does not hold what we wrote over iSER"
rm -rf /etc/iscsi/nodes /etc/iscsi/send_targets
spawn iscsid 600 iscsid -f
wait_for 20 "iscsid's control socket" bash -c 'ss -xl | grep -q ISCSIADM_ABSTRACT_NAMESPACE'
found=$(timeout 60 iscsiadm -m discovery -t sendtargets -p "$TGT_IPADDR" -I iser)
grep -q "^$TGT_IPADDR:3260,1 $IQN\$" <<< "$found" || fail "open-iscsi's SendTargets did not list $IQN at $TGT_IPADDR:3260,1: $found"
timeout 90 iscsiadm -m node -T "$IQN" -p "$TGT_IPADDR" -I iser --login >/dev/null
at_exit "timeout 30 iscsiadm -m node -T $IQN -p $TGT_IPADDR -I iser --logout"
timeout 10 iscsiadm -m session | grep -q "^iser: .*$IQN" || fail "no iser session: $(iscsiadm -m session 2>&1)"
wait_for 30 "the SCSI disks of LUN 1 and 2" bash -c '. $IBD_VM_LIB/tgt.sh; iscsi_disk_for_lun 1 && iscsi_disk_for_lun 2'
for lun in 1 2; do
    dev=/dev/$(iscsi_disk_for_lun "$lun")
    wait_for 10 "$dev" test -b "$dev"
    assert_eq "$(blockdev --getsize64 "$dev")" $((64 * MIB)) "ib_iser: size of LUN $lun ($dev)"
    assert_eq "$(blockdev --getss "$dev")" "$([ "$lun" = 1 ] && echo 512 || echo 4096)" "ib_iser: logical block size of LUN $lun"
done
dev=/dev/$(iscsi_disk_for_lun 1)
cmp <(dd if="$dev" bs=1M skip=40 count=4 iflag=direct status=none) /run/ours.bin ||
    fail "ib_iser reads something else than what we wrote over iSER"
info "ok: ib_iser reads the 4 MiB we wrote, byte for byte"
dd if=/run/kernels.bin of="$dev" bs=1M seek=48 oflag=direct status=none
blockdev --flushbufs "$dev"
timeout 30 iscsiadm -m node -T "$IQN" -p "$TGT_IPADDR" -I iser --logout >/dev/null
out=$(check get "$TGT_IPADDR" "$IQN" --lun 1 --offset $((48 * MIB)) --length $((4 * MIB)) --file /run/got.bin --transport iser)
cmp /run/got.bin /run/kernels.bin || fail "we read something else over iSER than what ib_iser wrote"
info "ok: we read the 4 MiB ib_iser wrote, byte for byte"
checked reference "open-iscsi/ib_iser on the same target reads what we wrote byte for byte, and we read what it wrote"

# export NAME LUN ARGS...: iserblockd export over iSER in the background; $READY is what its ready line names
export_lun() {
    local name=$1 lun=$2; shift 2
    spawn "$name" 900 iserblockd export --portal "$TGT_IPADDR" --target "$IQN" --lun "$lun" --transport iser \
        --initiator-name "$OUR_INI" --log-level info --replacement-timeout 120 --memory-windows "$WINDOWS" "$@"
    EXPORTS+=("$SPAWNED")
    wait_for 90 "$name to print its ready line" grep -q '^ready: ' "$VM_RUNDIR/$name.log"
    READY=$(sed -n 's/^ready: //p' "$VM_RUNDIR/$name.log")
    grep -q "over iser" "$VM_RUNDIR/$name.log" || fail "$name did not log in over iSER: $(cat "$VM_RUNDIR/$name.log")"
    info "$name ready: $READY"
}
EXPORTS=()

step "iserblockd export --transport iser, NBD socket on LUN 2: nbdinfo, fio verify of 4 KiB to 1 MiB blocks at QD16"
export_lun export-socket 2 --socket /run/iser.sock
SOCK_URI=$READY
assert_eq "$(nbdinfo --size "$SOCK_URI")" $((64 * MIB)) "NBD size of LUN 2"
fio_verify fio-verify --uri="$SOCK_URI" --rw=randwrite --bssplit=4k/40:64k/30:1m/30 --iodepth=16 --size=16M
info "ok: fio wrote and verified 16 MiB through iSER"
checked export-socket "iserblockd export --transport iser: nbdinfo, fio crc32c verify"

step "iserblockd export --transport iser --device auto on LUN 1: mkfs.ext4, mount, files with known checksums, remount, verify"
export_lun export-device 1 --device auto
DEV=$READY
wait_for 10 "$DEV" test -b "$DEV"
assert_eq "$(blockdev --getsize64 "$DEV")" $((64 * MIB)) "size of $DEV"
assert_eq "$(blockdev --getss "$DEV")" 512 "logical block size of $DEV"
# The kernel builds NBD requests up to queue/max_sectors_kb (128 KiB on a new nbd device) and knows nothing of our
# largest registered buffer (1 MiB): the daemon sets the limit to it, so a 4 MiB O_DIRECT write goes as 1 MiB requests.
assert_eq "$(cat "/sys/block/${DEV#/dev/}/queue/max_sectors_kb")" 1024 "queue/max_sectors_kb of $DEV (the largest registered buffer)"
head -c $((8 * MIB)) /dev/urandom > /run/big-direct.bin
dd if=/run/big-direct.bin of="$DEV" bs=4M oflag=direct status=none || fail "a 4 MiB O_DIRECT write to $DEV failed"
cmp <(dd if="$DEV" bs=4M count=2 iflag=direct status=none) /run/big-direct.bin || fail "4 MiB O_DIRECT reads differ from what was written"
info "ok: 8 MiB in 4 MiB O_DIRECT requests written and read back through $DEV"
timeout 180 mkfs.ext4 -q -F -b 4096 "$DEV"
mkdir -p /mnt/iser
mount "$DEV" /mnt/iser
at_exit "umount -l /mnt/iser"
for f in a b c; do head -c $((2 * MIB + 4096 * ${#f} + 17)) /dev/urandom > "/run/$f.src"; cp "/run/$f.src" "/mnt/iser/$f"; done
umount /mnt/iser
mount "$DEV" /mnt/iser
for f in a b c; do cmp "/run/$f.src" "/mnt/iser/$f" || fail "file $f differs after remount"; done
info "ok: three files survive unmount and remount byte for byte"
checked kernel-device "/dev/nbdX on an iSER LUN: queue limit, 4 MiB direct I/O, ext4 round trip"

step "tgtd killed (SIGKILL) and restarted in the middle of fio on the socket and a file write on the mounted device"
head -c $((8 * MIB)) /dev/urandom > /run/big.src
fio --name=outage --ioengine=nbd --uri="$SOCK_URI" --rw=randwrite --bs=16k --iodepth=8 --size=12M --rate=2m \
    --verify=crc32c --verify_fatal=1 --do_verify=1 > "$VM_RUNDIR/fio-outage.log" 2>&1 &
FIO=$!
dd if=/run/big.src of=/mnt/iser/big bs=256k oflag=direct status=none &
DD=$!
sleep 2
kill -0 "$FIO" || fail "fio finished before the target was killed: $(cat "$VM_RUNDIR/fio-outage.log")"
kill -9 "$(spawned_process "$TGTD")"
info "tgtd killed"
sleep 3
kill -0 "$FIO" || fail "fio ended while the target was down: $(tail -20 "$VM_RUNDIR/fio-outage.log")"
serve_target
info "tgtd restarted on the same backing files"
rc=0; wait "$FIO" || rc=$?
[ "$rc" = 0 ] || { tail -20 "$VM_RUNDIR/fio-outage.log"; fail "fio failed across the outage (exit $rc)"; }
grep -q "err= 0" "$VM_RUNDIR/fio-outage.log" || fail "fio reported errors across the outage"
! grep -q "verify: bad" "$VM_RUNDIR/fio-outage.log" || fail "fio found bad data after the outage"
rc=0; wait "$DD" || rc=$?
assert_eq "$rc" 0 "exit code of dd writing through the kernel device across the outage"
for name in export-socket export-device; do
    grep -q "reinstated" "$VM_RUNDIR/$name.log" || fail "$name did not reinstate its session: $(tail -5 "$VM_RUNDIR/$name.log")"
done
umount /mnt/iser
mount "$DEV" /mnt/iser
cmp /run/big.src /mnt/iser/big || fail "the file written across the outage differs after remount"
for f in a b c; do cmp "/run/$f.src" "/mnt/iser/$f" || fail "file $f differs after the outage"; done
umount /mnt/iser
info "ok: no error, no lost byte across the outage"
checked target-restart "tgtd SIGKILL + restart under fio and a mounted writer: no error, no lost byte"

step "orderly stop: SIGTERM flushes, detaches and logs out"
for pid in "${EXPORTS[@]}"; do
    kill -TERM "$pid"
    rc=0; wait "$pid" || rc=$?
    assert_eq "$rc" 0 "exit code of an export after SIGTERM"
done
wait_for 20 "tgtd to show no session" bash -c '! tgtadm --lld iser --mode conn --op show --tid 1 | grep -q Initiator'
[ -z "$(kernel_io_errors)" ] || fail "kernel logged I/O errors: $(kernel_io_errors)"
checked stop "SIGTERM: flush, detach, logout, no session left"
