#!/usr/bin/env bash
# vm-group: lio
# vm-rxe: yes
# vm-modules: nbd target_core_mod target_core_file iscsi_target_mod ib_isert iscsi_tcp sd_mod
# vm-timeout: 900
# vm-publish: daemon/iserblockd/iserblockd.csproj daemon/iserblockctl/iserblockctl.csproj
#
# lio: our initiator against LIO, the Linux kernel's own iSCSI target (target_core_mod + iscsi_target_mod, and
# ib_isert for iSER on soft-RoCE), configured through configfs (tests/vm/lib/lio.sh). One target, TPG 1 on
# 127.0.0.1 (TCP) and 10.99.0.1 (TCP and iSER), CHAP required: LUN 0 = 64 MiB of 512 B blocks on a thin fileio
# backstore (UNMAP punches holes), LUN 1 = 64 MiB of 4096 B blocks, LUN 2 = 16 MiB of 4096 B blocks, thin, for the
# real clients' workloads.
# Proves: SendTargets discovery; CHAP one-way and mutual, MD5 and SHA-256 (where the initiator can offer it), a
# wrong secret refused either way; fio crc32c verify of 4 KiB to 1 MiB blocks through `iserblockd export` on both
# LUNs, over TCP and over iSER; UNMAP deallocates on the thin backstore and reads back zeroes; the kernel's own
# initiator (open-iscsi, iscsi_tcp) reads what we wrote and we read what it wrote; /dev/nbdX with ext4 on LUN 0;
# the TPG disabled and re-enabled (LIO ends the sessions) under fio with no I/O error; real clients through the export
# of a thin LUN: nbdcopy dense and sparse both ways, qemu-img convert of a qcow2 with holes there and back, qemu-io
# patterns, nbdinfo --map (what LIO answers to GET LBA STATUS); a few rows of the conformance matrix
# (tests/interop/matrix.sh --target lio) with LIO's iSCSI keys set through configfs.
. "$IBD_VM_LIB/scenario.sh"
. "$IBD_VM_LIB/tgt.sh"
. "$IBD_VM_LIB/lio.sh"

IQN=iqn.2003-01.org.linux-iscsi.iserblockd:lio
INI=iqn.2024-01.test.iserblockd:lio-one-way
INI_MUTUAL=iqn.2024-01.test.iserblockd:lio-mutual
KERNEL_INI=$(kernel_initiator_name)
MIB=$((1024 * 1024))
PORTAL=127.0.0.1

step "LIO: target $IQN on $PORTAL and $TGT_IPADDR (iSER too), LUN 0 thin 512 B, LUN 1 4096 B, CHAP required"
lio_fileio lun0 /run/lio0.img $((64 * MIB)) 512 thin
lio_fileio lun1 /run/lio1.img $((64 * MIB)) 4096
lio_fileio lun2 /run/lio2.img $((16 * MIB)) 4096 thin
lio_target "$IQN"
lio_portal "$IQN" "$PORTAL"
ISER=0
if rdma link show 2>/dev/null | grep -q 'rxe0.*ACTIVE' && lio_portal "$IQN" "$TGT_IPADDR" iser 2>/dev/null; then ISER=1; fi
lio_lun "$IQN" 0 lun0
lio_lun "$IQN" 1 lun1
lio_lun "$IQN" 2 lun2
for ini in "$INI" "$INI_MUTUAL" "$KERNEL_INI"; do lio_acl "$IQN" "$ini"; done
lio_chap "$IQN" "$INI" one-way-user one-way-secret-1
lio_chap "$IQN" "$INI_MUTUAL" mutual-user mutual-secret-1 lio-target the-targets-secret-2
lio_chap "$IQN" "$KERNEL_INI" kernel-user kernel-secret-12
lio_require_chap "$IQN"
lio_enable "$IQN" 1
info "LIO configured (iSER portal: $([ "$ISER" = 1 ] && echo yes || echo no))"

secret() { install -m 0600 /dev/null "/run/$1.secret"; printf '%s' "$2" > "/run/$1.secret"; echo "/run/$1.secret"; }
ONE_WAY=(--initiator-name "$INI" --chap-user one-way-user --chap-secret-file "$(secret one-way one-way-secret-1)")
MUTUAL=(--initiator-name "$INI_MUTUAL" --chap-user mutual-user --chap-secret-file "$(secret mutual mutual-secret-1)"
        --target-user lio-target --target-secret-file "$(secret target the-targets-secret-2)")
secret wrong not-the-secret >/dev/null
secret wrong-target not-the-targets-secret >/dev/null
ALGS=()
iserblockctl inquiry --help 2>&1 | grep -q -- --chap-algorithms && ALGS=(--chap-algorithms)

step "SendTargets discovery"
out=$(iserblockctl discover "$PORTAL" --initiator-name "$INI")
info "$out"
grep -q "^$PORTAL:3260,1 $IQN\$" <<< "$out" || fail "SendTargets did not list $IQN at $PORTAL:3260,1"
checked discovery "SendTargets discovery against LIO"

step "CHAP: one-way and mutual logins (INQUIRY, READ CAPACITY); wrong secrets refused with exit 24"
inquiry() { iserblockctl inquiry --portal "$PORTAL" --target "$IQN" "$@"; }
out=$(inquiry --lun 0 "${ONE_WAY[@]}")
grep -q "^Capacity: *$((64 * MIB)) bytes" <<< "$out" || fail "one-way CHAP login: $out"
out=$(inquiry --lun 1 "${MUTUAL[@]}")
grep -q "^Logical block size: *4096" <<< "$out" || fail "mutual CHAP login: $out"
rc=0; inquiry --lun 0 --initiator-name "$INI" --chap-user one-way-user --chap-secret-file /run/wrong.secret >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 24 "exit code with a wrong secret of ours"
rc=0; inquiry --lun 0 "${MUTUAL[@]:0:6}" --target-user lio-target --target-secret-file /run/wrong-target.secret >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 24 "exit code when the target does not know the secret we expect of it (mutual)"
for alg in MD5 SHA-256 SHA3-256; do
    if [ ${#ALGS[@]} = 0 ]; then
        [ "$alg" = MD5 ] || { info "no --chap-algorithms: $alg not offered by this build"; continue; }
        out=$(inquiry --lun 0 "${MUTUAL[@]}" -v 2>&1)
    else
        out=$(inquiry --lun 0 "${MUTUAL[@]}" "${ALGS[@]}" "$alg" -v 2>&1)
    fi
    grep -q "^Capacity: *$((64 * MIB)) bytes" <<< "$out" || fail "mutual CHAP with $alg: $out"
    grep -Eiq "CHAP with algorithm ${alg//-/_?}" <<< "$out" || fail "the login did not use $alg: $(grep -i chap <<< "$out")"
    ! grep -q -e mutual-secret-1 -e the-targets-secret-2 <<< "$out" || fail "a secret appeared in the debug log"
    info "ok: mutual CHAP with $alg"
done
checked chap "CHAP one-way and mutual against LIO, wrong secrets refused, algorithms as offered, no secret in the debug log"

# export_lun NAME LUN ARGS...: iserblockd export in the background; $READY is what its ready line names
EXPORTS=()
export_lun() {
    local name=$1 lun=$2; shift 2
    spawn "$name" 900 iserblockd export --target "$IQN" --lun "$lun" --log-level info --replacement-timeout 120 "$@"
    EXPORTS+=("$SPAWNED")
    wait_for 90 "$name to print its ready line" grep -q '^ready: ' "$VM_RUNDIR/$name.log"
    READY=$(sed -n 's/^ready: //p' "$VM_RUNDIR/$name.log")
    info "$name ready: $READY"
}

step "fio verify, 4 KiB to 1 MiB blocks at QD8 and 4 KiB at QD32, through iserblockd export over TCP on both LUNs"
export_lun tcp-lun0 0 --portal "$PORTAL" --socket /run/lun0.sock "${ONE_WAY[@]}"
LUN0=$READY
export_lun tcp-lun1 1 --portal "$PORTAL" --socket /run/lun1.sock "${MUTUAL[@]}"
LUN1=$READY
assert_eq "$(nbdinfo --size "$LUN1")" $((64 * MIB)) "NBD size of LUN 1"
# LIO's fileio reports its write cache off (WCE=0); FLUSH is offered all the same, since a cache switched on
# later must not leave acknowledged writes volatile on a device whose flags cannot change
nbdinfo --can flush "$LUN0" || fail "FLUSH is not offered on a LUN whose write cache is off now"
nbdinfo --json "$LUN1" | grep -q '"block_size_minimum": 4096' || fail "LUN 1 does not advertise 4096-byte blocks: $(nbdinfo --json "$LUN1")"
fio_verify verify-lun0 --uri="$LUN0" --rw=randwrite --bsrange=4k-1m --bs_unaligned=0 --iodepth=8 --size=24M --offset=8M
fio_verify verify-lun1 --uri="$LUN1" --rw=randwrite --bssplit=4k/40:64k/30:1m/30 --iodepth=8 --size=24M
# QD32: the receive loop holds its wake-ups for several of LIO's answers (receive coalescing, 16 or more owed)
fio_verify verify-lun1-qd32 --uri="$LUN1" --rw=randwrite --bs=4k --iodepth=32 --size=16M --offset=32M
checked verify "fio crc32c verify 4 KiB-1 MiB at QD8 on 512 B and 4096 B LUNs of LIO, and 4 KiB at QD32"

step "UNMAP on the thin backstore: a trimmed range is deallocated in the backing file and reads back zeroes"
qemu-io -f raw -c "write -P 0x5a 0 8M" "$LUN0" >/dev/null
sync
before=$(stat -c %b /run/lio0.img)
nbdinfo --can trim "$LUN0" || fail "the export of the thin LUN does not offer TRIM: $(nbdinfo --json "$LUN0")"
out=$(qemu-io -f raw -c "discard 0 8M" "$LUN0" 2>&1)
info "$out"
grep -q "discard 8388608/8388608" <<< "$out" || fail "qemu-io's discard failed: $out"
after=$(stat -c %b /run/lio0.img)
info "backing file blocks: $before before the discard, $after after"
[ "$after" -lt "$before" ] || fail "the discard did not deallocate anything in LIO's backing file ($before -> $after)"
qemu-io -f raw -c "read -P 0 0 8M" "$LUN0" | grep -q "read 8388608/8388608" || fail "the trimmed range does not read back zeroes"
checked unmap "UNMAP through NBD TRIM deallocates LIO's thin fileio backstore and reads back zeroes"

step "real clients on the thin 4096 B LUN 2: nbdcopy dense and sparse both ways, nbdinfo --map, qemu-img, qemu-io"
export_lun thin-lun2 2 --portal "$PORTAL" --socket /run/lun2.sock "${ONE_WAY[@]}"
LUN2=$READY
LUN2_BYTES=$((16 * MIB))
# what LIO's backstore has read so far (its configfs statistics, in MiB): what a copy out of the export cost the target
lio_read_mib() { cat "$LIO_CORE/lun2/statistics/scsi_lu/read_mbytes"; }

# dense: 4 MiB of random data in at 2 MiB (zeroes around it), the whole LUN out again, byte for byte
head -c $((4 * MIB)) /dev/urandom > /run/dense.bin
truncate -s $LUN2_BYTES /run/dense.img
dd if=/run/dense.bin of=/run/dense.img bs=1M seek=2 conv=notrunc status=none
nbdcopy /run/dense.img "$LUN2"
nbdcopy "$LUN2" /run/dense-back.img
cmp /run/dense.img /run/dense-back.img || fail "nbdcopy dense: what came back from LIO differs from what went in"
info "ok: nbdcopy dense, 16 MiB in and out, byte for byte"

# sparse: a file that is mostly holes; nbdcopy zeroes the holes on the LUN (WRITE_ZEROES -> WRITE SAME with UNMAP
# on a LUN that reads zeroes after unmap), so LIO's backing file loses its blocks there
truncate -s $LUN2_BYTES /run/sparse.img
for at in 0 5 14; do head -c $((512 * 1024)) /dev/urandom | dd of=/run/sparse.img bs=1M seek="$at" conv=notrunc status=none; done
before=$(stat -c %b /run/lio2.img)
nbdcopy /run/sparse.img "$LUN2"
after=$(stat -c %b /run/lio2.img)
info "LIO's backing file of LUN 2: $((before / 2)) KiB allocated before the sparse copy, $((after / 2)) KiB after"
[ "$after" -lt "$before" ] || fail "zeroing the holes did not deallocate LIO's backing file ($before -> $after blocks)"
[ $((after * 512)) -le $((4 * MIB)) ] || fail "LIO's backing file holds $((after * 512)) bytes after a copy of 1.5 MiB of data"
read0=$(lio_read_mib)
nbdcopy "$LUN2" /run/sparse-back.img
read1=$(lio_read_mib)
cmp /run/sparse.img /run/sparse-back.img || fail "nbdcopy sparse: what came back from LIO differs from what went in"
info "ok: nbdcopy sparse both ways, byte for byte; the copy out made LIO read $((read1 - read0)) MiB of a 16 MiB LUN"

# what the export says about allocation now that LUN 2 has holes
map=$(nbdinfo --map "$LUN2")
info "nbdinfo --map after the sparse copy: $(tr '\n' ';' <<< "$map")"
if grep -q "hole" <<< "$map"; then
    grep -Eq "^ *0 +$((512 * 1024)) +0 +data" <<< "$map" || fail "nbdinfo --map does not start with the 512 KiB of data at 0: $map"
    grep -q "hole,zero" <<< "$map" || fail "LIO reads zeroes after unmap (LBPRZ), yet the holes are not reported as zero: $map"
    [ $((read1 - read0)) -lt 8 ] || fail "nbdcopy read $((read1 - read0)) MiB from LIO: the holes were not skipped"
    MAPPED="holes from GET LBA STATUS, skipped by nbdcopy"
else
    # LIO (target_core_sbc) has no GET LBA STATUS: it answers ILLEGAL REQUEST, so the export reports the whole LUN as
    # data (as qemu's iscsi driver does), one extent, and a copy out reads every byte
    assert_eq "$(awk '{print $1, $2, $3, $4}' <<< "$map")" "0 $LUN2_BYTES 0 data" "nbdinfo --map of a LUN without GET LBA STATUS"
    [ $((read1 - read0)) -ge 16 ] || fail "LIO read only $((read1 - read0)) MiB for a 16 MiB copy though nothing is reported as a hole"
    MAPPED="everything reported as data: LIO refuses GET LBA STATUS"
fi
info "allocation: $MAPPED"

# qemu-img: a qcow2 with holes into the export and back, then compared
qemu-img create -q -f qcow2 /run/holes.qcow2 $LUN2_BYTES
qemu-io -f qcow2 -c "write -P 0xa5 1M 2M" -c "write -P 0x3c 10M 1M" -c "write -z 12M 1M" /run/holes.qcow2 >/dev/null
timeout 300 qemu-img convert -n -f qcow2 -O raw /run/holes.qcow2 "$LUN2"
timeout 300 qemu-img convert -f raw -O qcow2 "$LUN2" /run/back.qcow2
qemu-img compare /run/holes.qcow2 /run/back.qcow2 || fail "qemu-img compare: the qcow2 converted back from LIO differs"
info "ok: qemu-img convert qcow2 -> LIO -> qcow2, qemu-img compare identical"

# qemu-io patterns: write, read back, zero, discard, across the 4096 B blocks of LUN 2
out=$(qemu-io -f raw -c "write -P 0x11 4M 64k" -c "read -P 0x11 4M 64k" -c "write -P 0x22 5M 1M" -c "write -z 5M 512k" \
    -c "read -P 0 5M 512k" -c "read -P 0x22 5632k 512k" -c "discard 4M 64k" -c "read -P 0 4M 64k" "$LUN2" 2>&1)
[ "$(grep -c "^read " <<< "$out")" = 4 ] && ! grep -qi "pattern verification failed\|error" <<< "$out" ||
    fail "qemu-io patterns on LUN 2: $out"
info "ok: qemu-io write/read/zero/discard patterns"
kill -TERM "${EXPORTS[-1]}"; rc=0; wait "${EXPORTS[-1]}" || rc=$?; unset 'EXPORTS[-1]'
assert_eq "$rc" 0 "exit code of the thin LUN 2 export after SIGTERM"
checked real-clients "LIO thin LUN (4096 B): nbdcopy dense+sparse both ways with cmp (holes deallocated), qemu-img convert+compare of a qcow2 with holes, qemu-io patterns; nbdinfo --map: $MAPPED"

step "reference: the kernel's initiator (open-iscsi, iscsi_tcp) reads what we wrote and we read what it wrote"
head -c $((4 * MIB)) /dev/urandom > /run/ours.bin
head -c $((4 * MIB)) /dev/urandom > /run/kernels.bin
nbdcopy --destination-is-zero /run/ours.bin "$LUN1" 2>/dev/null || qemu-img convert -n -f raw -O raw /run/ours.bin "$LUN1"
rm -rf /etc/iscsi/nodes /etc/iscsi/send_targets
spawn iscsid 600 iscsid -f
wait_for 20 "iscsid's control socket" bash -c 'ss -xl | grep -q ISCSIADM_ABSTRACT_NAMESPACE'
timeout 60 iscsiadm -m discovery -t sendtargets -p "$PORTAL" >/dev/null
for kv in node.session.auth.authmethod=CHAP node.session.auth.username=kernel-user node.session.auth.password=kernel-secret-12; do
    iscsiadm -m node -T "$IQN" -p "$PORTAL" --op update -n "${kv%%=*}" -v "${kv#*=}" >/dev/null
done
timeout 90 iscsiadm -m node -T "$IQN" -p "$PORTAL" --login >/dev/null
at_exit "timeout 30 iscsiadm -m node -T $IQN -p $PORTAL --logout"
wait_for 30 "the SCSI disk of LUN 1" bash -c '. $IBD_VM_LIB/tgt.sh; iscsi_disk_for_lun 1'
dev=/dev/$(iscsi_disk_for_lun 1)
wait_for 10 "$dev" test -b "$dev"
assert_eq "$(blockdev --getss "$dev")" 4096 "open-iscsi: logical block size of LUN 1"
cmp <(dd if="$dev" bs=1M count=4 iflag=direct status=none) /run/ours.bin || fail "open-iscsi reads something else than what we wrote"
# what LIO answers about provisioning, asked by sg3_utils through the kernel's initiator: READ CAPACITY(16)'s
# LBPME/LBPRZ of the thin LUN 2, and GET LBA STATUS (which decides what the export's base:allocation can say)
wait_for 30 "the SCSI disk of LUN 2" bash -c '. $IBD_VM_LIB/tgt.sh; iscsi_disk_for_lun 2'
thin=/dev/$(iscsi_disk_for_lun 2)
wait_for 10 "$thin" test -b "$thin"
out=$(sg_readcap --long "$thin")
info "sg_readcap --long, LUN 2: $(grep -i 'provisioning' <<< "$out")"
grep -q "lbpme=1, lbprz=1" <<< "$out" || fail "LIO's thin LUN 2 does not report LBPME=1 and LBPRZ=1: $out"
rc=0; out=$(sg_get_lba_status "$thin" 2>&1) || rc=$?
info "sg_get_lba_status, LUN 2 (exit $rc): $(tr '\n' ' ' <<< "$out")"
if [ "$rc" = 0 ]; then
    [[ $MAPPED == holes* ]] || fail "LIO answers GET LBA STATUS, yet the export reported the thin LUN as all data"
else
    [[ $MAPPED == everything* ]] || fail "LIO refuses GET LBA STATUS, yet the export reported holes"
fi
checked provisioning "LIO's thin fileio LUN: LBPME=1 LBPRZ=1 (READ CAPACITY(16)); GET LBA STATUS $([ "$rc" = 0 ] && echo answered || echo "refused (sg_get_lba_status exit $rc)"), as the export's base:allocation said"
info "ok: open-iscsi reads the 4 MiB we wrote, byte for byte"
dd if=/run/kernels.bin of="$dev" bs=1M seek=32 oflag=direct status=none
blockdev --flushbufs "$dev"
timeout 30 iscsiadm -m node -T "$IQN" -p "$PORTAL" --logout >/dev/null
nbdcopy "$LUN1" /run/lun1-copy.img
cmp <(dd if=/run/lun1-copy.img bs=1M skip=32 count=4 status=none) /run/kernels.bin || fail "we read something else than what open-iscsi wrote"
info "ok: we read the 4 MiB open-iscsi wrote, byte for byte"
checked reference "open-iscsi (iscsi_tcp) reads what we wrote from LIO byte for byte, and we read what it wrote"

step "the TPG disabled for 5 s and re-enabled (LIO ends every session) under fio verify: no I/O error"
fio --name=tpg-outage --ioengine=nbd --uri="$LUN0" --rw=randwrite --bs=16k --iodepth=8 --size=12M --offset=16M --rate=2m \
    --verify=crc32c --verify_fatal=1 --do_verify=1 > "$VM_RUNDIR/fio-tpg-outage.log" 2>&1 &
FIO=$!
sleep 2
kill -0 "$FIO" || fail "fio finished before the TPG was disabled: $(cat "$VM_RUNDIR/fio-tpg-outage.log")"
lio_enable "$IQN" 0
info "TPG disabled"
sleep 5
kill -0 "$FIO" || fail "fio ended while the TPG was disabled: $(tail -20 "$VM_RUNDIR/fio-tpg-outage.log")"
lio_enable "$IQN" 1
info "TPG enabled"
rc=0; wait "$FIO" || rc=$?
[ "$rc" = 0 ] || { tail -20 "$VM_RUNDIR/fio-tpg-outage.log"; fail "fio failed across the TPG outage (exit $rc)"; }
grep -q "err= 0" "$VM_RUNDIR/fio-tpg-outage.log" || fail "fio reported errors across the TPG outage"
! grep -q "verify: bad" "$VM_RUNDIR/fio-tpg-outage.log" || fail "fio found bad data after the TPG outage"
grep -q "reinstated" "$VM_RUNDIR/tcp-lun0.log" || fail "the export did not reinstate its session: $(tail -5 "$VM_RUNDIR/tcp-lun0.log")"
checked tpg-outage "TPG disabled and re-enabled under fio verify: session reinstated, no error, no bad data"

step "/dev/nbdX on LUN 0: mkfs.ext4, mount, files with known checksums, remount, fsck"
export_lun device-lun0 0 --portal "$PORTAL" --device auto "${ONE_WAY[@]}"
DEV=$READY
wait_for 10 "$DEV" test -b "$DEV"
assert_eq "$(blockdev --getsize64 "$DEV")" $((64 * MIB)) "size of $DEV"
timeout 180 mkfs.ext4 -q -F -b 4096 "$DEV"
mkdir -p /mnt/lio
mount "$DEV" /mnt/lio
at_exit "umount -l /mnt/lio"
for f in a b c; do head -c $((2 * MIB + 4096 * ${#f} + 17)) /dev/urandom > "/run/$f.src"; cp "/run/$f.src" "/mnt/lio/$f"; done
umount /mnt/lio
timeout 120 fsck.ext4 -n -f "$DEV" > "$VM_RUNDIR/fsck.log" 2>&1 || fail "fsck found errors: $(tail -5 "$VM_RUNDIR/fsck.log")"
mount "$DEV" /mnt/lio
for f in a b c; do cmp "/run/$f.src" "/mnt/lio/$f" || fail "file $f differs after remount"; done
umount /mnt/lio
checked kernel-device "/dev/nbdX on LIO: ext4 round trip, fsck clean"

if [ "$ISER" = 1 ]; then
    step "over iSER (ib_isert on soft-RoCE): fio verify through iserblockd export --transport iser"
    export_lun iser-lun1 1 --portal "$TGT_IPADDR" --transport iser --socket /run/iser.sock "${MUTUAL[@]}"
    grep -q "over iser" "$VM_RUNDIR/iser-lun1.log" || fail "the export did not log in over iSER: $(cat "$VM_RUNDIR/iser-lun1.log")"
    fio_verify verify-iser --uri="$READY" --rw=randwrite --bssplit=4k/40:64k/30:1m/30 --iodepth=8 --size=16M --offset=40M
    checked iser "LIO's isert: mutual CHAP login over iSER, fio crc32c verify 4 KiB-1 MiB"
else
    info "no iSER portal on LIO here (rxe0 not active or ib_isert refused): the iSER part is not run"
fi

step "conformance matrix against LIO: the first 2 quick rows (tests/interop/matrix.sh --target lio runs them all)"
# its own target and port, the TPG's iSCSI keys and the backstores' block sizes set through configfs per row
out=$(SIZE=4M bash "$IBD_REPO/tests/interop/matrix.sh" --in-guest --target lio --quick --limit 2 2> "$VM_RUNDIR/matrix.err") ||
    { echo "$out"; tail -20 "$VM_RUNDIR/matrix.err"; fail "the LIO matrix rows failed"; }
echo "$out"
assert_eq "$(tail -1 <<< "$out")" "MATRIX passed=2 failed=0 refused=0" "the matrix's last line"
checked matrix "2 conformance-matrix rows against LIO (no digests and CRC32C header digests, InitialR2T=No with ImmediateData=Yes, ImmediateData=No which LIO leaves unanswered, burst and segment lengths set in configfs, 512 and 4096 B blocks): fio verify passes"

step "orderly stop: SIGTERM flushes, detaches and logs out; LIO shows no session left"
for pid in "${EXPORTS[@]}"; do
    kill -TERM "$pid"
    rc=0; wait "$pid" || rc=$?
    assert_eq "$rc" 0 "exit code of an export after SIGTERM"
done
wait_for 20 "LIO to show no session" bash -c ". $IBD_VM_LIB/lio.sh; [ -z \"\$(lio_sessions $IQN)\" ]"
[ -z "$(kernel_io_errors)" ] || fail "kernel logged I/O errors: $(kernel_io_errors)"
checked stop "SIGTERM: flush, detach, logout, no session left at LIO"
