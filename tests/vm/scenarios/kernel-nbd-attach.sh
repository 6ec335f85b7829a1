#!/usr/bin/env bash
# vm-group: main
# vm-modules: nbd
# vm-timeout: 420
# vm-publish: daemon/iserblockd/iserblockd.csproj daemon/iserblockctl/iserblockctl.csproj
#
# kernel-nbd-attach: the daemon as a server runs it. tgtd serves two LUNs over TCP (with KNBD_TRANSPORT=iser: over
# iSER on soft-RoCE, as kernel-nbd-attach-iser.sh runs it) inside the guest (512- and
# 4096-byte logical blocks); `iserblockd run --config FILE` maps both with "device": "auto" and says READY=1 on
# a NOTIFY_SOCKET this scenario plays systemd on, only once the /dev/nbdX devices exist. Each device has the LUN's
# size and block size, takes ext4, and keeps files with known checksums across unmount/remount. With a writer
# (fio, O_DIRECT, crc32c verify) on the mounted 4096-byte device the daemon is killed (SIGKILL: a crash, the
# kernel's requests on the dead sockets are requeued after its request timeout), stopped (SIGTERM: the device is
# left configured because it is mounted, the LUN flushed and logged out) and stopped dead (SIGSTOP beyond the
# kernel's request timeout: the kernel drops the connection, the daemon hands it a new one); each new daemon
# re-attaches with NBD_CMD_RECONFIGURE and the writer sees no error. iserblockctl unmap refuses a mounted device,
# detaches an unmounted one; logout leaves no session. Last, the legacy ioctl path (kernelNbdMethod "ioctl").
. "$IBD_VM_LIB/scenario.sh"
. "$IBD_VM_LIB/tgt.sh"

# KNBD_TRANSPORT=iser runs all of it on tgtd's iSER driver over soft-RoCE (kernel-nbd-attach-iser.sh)
TRANSPORT=${KNBD_TRANSPORT:-tcp}
case $TRANSPORT in
    tcp) LLD=iscsi PORTAL=127.0.0.1:3260 ;;
    iser) LLD=iser PORTAL=$TGT_IPADDR:3260
          rdma link show | grep -q 'rxe0.*ACTIVE' || fail "rxe0 is not ACTIVE: $(rdma link show)" ;;
    *) fail "KNBD_TRANSPORT must be tcp or iser, not $TRANSPORT" ;;
esac
IQN=iqn.2024-01.test.iserblockd:kernel-nbd-$TRANSPORT
OUR_INI=iqn.2024-01.test.iserblockd:kernel-nbd-initiator
NODE=san
MIB=$((1024 * 1024))
SIZE=$((64 * MIB))
CONFIG=/run/iserblockd-test.json
NOTIFY_SOCKET_PATH=/run/notify.sock
NOTIFY_LOG=$VM_RUNDIR/notify.log
REQUEST_TIMEOUT=15     # kernelNbdTimeout: above replacementTimeout (10 s), short so that a crash costs 15 s here

# write_config METHOD LUNS_JSON
write_config() {
    cat > "$CONFIG" <<EOF
{
  "initiatorName": "$OUR_INI",
  "replacementTimeout": 10,
  "kernelNbdTimeout": $REQUEST_TIMEOUT,
  "loginTimeout": 60,
  "kernelNbdMethod": "$1",
  "reconnect": { "minDelay": 0.5, "maxDelay": 2 },
  "nodes": [ { "name": "$NODE", "portals": ["$PORTAL"], "target": "$IQN", "transport": "$TRANSPORT", "luns": $2 } ]
}
EOF
    iserblockd check-config --config "$CONFIG" > "$VM_RUNDIR/check-config.log" || fail "check-config refused $CONFIG: $(cat "$VM_RUNDIR/check-config.log")"
}

# start_daemon NAME: iserblockd run under our stand-in systemd; returns once READY=1 arrived ($DAEMON: spawn's pid)
start_daemon() {
    local name=$1 before
    before=$(grep -c ' READY=1' "$NOTIFY_LOG" || true)
    spawn "$name" 900 env NOTIFY_SOCKET="$NOTIFY_SOCKET_PATH" WATCHDOG_USEC=4000000 iserblockd run --config "$CONFIG"
    DAEMON=$SPAWNED
    wait_for 90 "$name to send READY=1" bash -c "[ \$(grep -c ' READY=1' '$NOTIFY_LOG') -gt $before ]"
    local pid; pid=$(spawned_process "$DAEMON")
    grep ' READY=1' "$NOTIFY_LOG" | tail -n1 | grep -q "MAINPID=$pid" || fail "READY=1 did not come from $name (pid $pid): $(tail -n1 "$NOTIFY_LOG")"
}

# stop_daemon: SIGTERM, exit code 0
stop_daemon() {
    kill -TERM "$DAEMON"
    local rc=0; wait "$DAEMON" || rc=$?
    assert_eq "$rc" 0 "exit code of iserblockd after SIGTERM"
}

# what iserblockctl list -o json says about LUN $1: "DEVICE STATE BLOCKSIZE"
ctl_lun() {
    iserblockctl list -o json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    for l in s["luns"]:
        if l["lun"] == int(sys.argv[1]): print(l.get("device"), l["state"].replace(" ", "_"), l["blockSize"])' "$1"
}

# sectors written to device $1 so far (/sys/block/nbdX/stat, field 7)
written() { awk '{print $7}' "/sys/block/${1#/dev/}/stat"; }
# wait_progress DEV SECONDS WHAT: the device's writes go on
wait_progress() {
    local before; before=$(written "$1")
    wait_for "$2" "$3" bash -c "[ \$(awk '{print \$7}' /sys/block/${1#/dev/}/stat) -gt $before ]"
}


step "tgtd ($LLD) in the guest: LUN 1 = 64 MiB of 512 B blocks, LUN 2 = 64 MiB of 4096 B blocks"
truncate -s 0 /run/knbd-lun1.img /run/knbd-lun2.img
truncate -s 64M /run/knbd-lun1.img /run/knbd-lun2.img
at_exit "rm -f /run/knbd-lun1.img /run/knbd-lun2.img /run/knbd-*.src"
if [ "$LLD" = iser ]; then tgt_start --iser pool_sz_mb=256; else tgt_start; fi   # see iser.sh: a smaller iSER pool
tgt_target "$LLD" 1 "$IQN"
tgt_lun "$LLD" 1 1 /run/knbd-lun1.img 512
tgt_lun "$LLD" 1 2 /run/knbd-lun2.img 4096
tgt_allow "$LLD" 1 "$OUR_INI"

step "iserblockd run --config with both LUNs on \"device\": \"auto\"; READY=1 only once the devices exist"
spawn notify 900 python3 "$IBD_VM_LIB/notify-listener.py" "$NOTIFY_SOCKET_PATH" "$NOTIFY_LOG"
touch "$NOTIFY_LOG"
wait_for 20 "the notify listener" test -S "$NOTIFY_SOCKET_PATH"
write_config auto '[ { "lun": 1, "device": "auto" }, { "lun": 2, "device": "auto" } ]'
start_daemon daemon-1
ready=$(grep ' READY=1' "$NOTIFY_LOG" | tail -n1)
info "notify: ${ready#* }"
for lun in 1 2; do
    grep -q "=iserblockd:$IQN:$lun\b" <<< "${ready#*devices-at-ready:}" || fail "READY=1 came before the device of LUN $lun existed: $ready"
done
info "ok: READY=1 arrived with both devices already configured in the kernel"
sleep 5
[ "$(grep -c ' WATCHDOG=1' "$NOTIFY_LOG")" -ge 2 ] || fail "no watchdog pings within 5 s with WATCHDOG_USEC=4 s: $(cat "$NOTIFY_LOG")"
checked notify "READY=1 after /dev/nbdX exists, MAINPID, STATUS, watchdog pings"

mkdir -p /mnt/knbd
for lun in 1 2; do
    bs=$([ "$lun" = 1 ] && echo 512 || echo 4096)
    DEV=$(device_of "$lun")
    step "LUN $lun ($bs-byte blocks) = ${DEV:-?}: size and block size, mkfs.ext4, files with known checksums, unmount, remount, verify"
    [ -n "$DEV" ] || fail "no /dev/nbdX has the backend iserblockd:$IQN:$lun"
    wait_for 10 "$DEV" test -b "$DEV"
    assert_eq "$(blockdev --getsize64 "$DEV")" "$SIZE" "size of $DEV"
    assert_eq "$(blockdev --getss "$DEV")" "$bs" "logical block size of $DEV"
    assert_eq "$(ctl_lun "$lun")" "$DEV up $bs" "iserblockctl list: device, state and block size of LUN $lun"
    timeout 120 mkfs.ext4 -q -F -b 4096 "$DEV"
    mount "$DEV" /mnt/knbd
    at_exit "umount -l /mnt/knbd"
    for f in a b c; do head -c $((1 * MIB + 4096 * ${#f} + 777)) /dev/urandom > "/run/knbd-$f.src"; cp "/run/knbd-$f.src" "/mnt/knbd/$f"; done
    (cd /run && sha256sum knbd-a.src knbd-b.src knbd-c.src | sed 's/knbd-\(.\)\.src$/\1/') > /run/knbd-sums
    if [ "$lun" = 1 ]; then
        rc=0; out=$(iserblockctl unmap "$NODE" 1 2>&1) || rc=$?
        [ "$rc" != 0 ] || fail "iserblockctl unmap detached a mounted device"
        grep -q "in use\|mounted" <<< "$out" || fail "iserblockctl unmap of a mounted device did not say why: $out"
        info "ok: unmap of the mounted $DEV refused (exit $rc): $out"
    fi
    umount /mnt/knbd
    blockdev --flushbufs "$DEV"
    echo 3 > /proc/sys/vm/drop_caches
    mount "$DEV" /mnt/knbd
    (cd /mnt/knbd && sha256sum -c --quiet /run/knbd-sums) || fail "files changed across unmount/remount on $DEV"
    umount /mnt/knbd
    timeout 60 fsck.ext4 -n -f "$DEV" > "$VM_RUNDIR/fsck-$lun.log" 2>&1 || fail "fsck found errors on $DEV (fsck-$lun.log)"
    info "ok: 3 files verified after remount, fsck clean"
done
checked attach "LUNs of 512 and 4096 B as /dev/nbdX from the config, ext4 round trip"

DEV=$(device_of 2)
INDEX=${DEV#/dev/nbd}
step "a writer on the mounted $DEV while the daemon is killed, stopped and frozen: re-attached each time, no I/O error"
dmesg -C
mount "$DEV" /mnt/knbd
# 32 MiB with O_DIRECT, one 64 KiB write in flight at a time and 80 ms between writes (about 0.8 MiB/s), every
# block verified at the end. A pause between writes, not --rate: fio catches up on a rate after a stall, so its
# writes would end at a fixed time however long the restarts below held them, sometimes before the freeze step.
FIO=(fio --name=restart --filename=/mnt/knbd/fio.dat --size=32M --bs=64k --rw=write --direct=1 --ioengine=psync
     --verify=crc32c --verify_fatal=1 --thinktime=80ms --output-format=normal)
spawn fio 400 "${FIO[@]}"
FIO_PID=$SPAWNED
wait_progress "$DEV" 20 "fio to write"

info "SIGKILL to the daemon (a crash): the kernel keeps $DEV configured and holds its I/O"
kill -9 "$(spawned_process "$DAEMON")"
wait "$DAEMON" 2>/dev/null || true
sleep 1
assert_eq "$(device_of 2)" "$DEV" "device still configured for LUN 2 after the crash"
kill -0 "$FIO_PID" 2>/dev/null || fail "fio ended while the daemon was dead: $(tail -5 "$VM_RUNDIR/fio.log")"
t=$(date +%s.%N)
start_daemon daemon-2
grep -q "re-attached $DEV left by the previous daemon" "$VM_RUNDIR/daemon-2.log" || fail "daemon-2 did not re-attach $DEV: $(grep -i nbd "$VM_RUNDIR/daemon-2.log")"
wait_progress "$DEV" $((REQUEST_TIMEOUT + 30)) "writes to resume after the crash"
info "ok: re-attached; writes resumed $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s after the new daemon started (requests on the dead sockets wait for the ${REQUEST_TIMEOUT} s request timeout)"

info "SIGTERM to the daemon while $DEV is mounted: left configured, LUN flushed, logged out"
stop_daemon
grep -q "$DEV left configured for the next iserblockd" "$VM_RUNDIR/daemon-2.log" || fail "daemon-2 did not leave $DEV configured: $(tail -5 "$VM_RUNDIR/daemon-2.log")"
grep -q ' STOPPING=1' "$NOTIFY_LOG" || fail "no STOPPING=1 on SIGTERM"
# tgtd lists a closed iSER connection a moment longer
wait_for 20 "tgtd to list no session of $OUR_INI after the orderly stop" bash -c "[ \$(tgtadm --lld $LLD --mode conn --op show --tid 1 | grep -c 'Initiator: $OUR_INI') = 0 ]"
assert_eq "$(device_of 2)" "$DEV" "device still configured for LUN 2 after SIGTERM"
kill -0 "$FIO_PID" 2>/dev/null || fail "fio ended while no daemon ran: $(tail -5 "$VM_RUNDIR/fio.log")"
t=$(date +%s.%N)
start_daemon daemon-3
grep -q "re-attached $DEV left by the previous daemon" "$VM_RUNDIR/daemon-3.log" || fail "daemon-3 did not re-attach $DEV"
wait_progress "$DEV" $((REQUEST_TIMEOUT + 30)) "writes to resume after the orderly restart"
info "ok: re-attached; writes resumed $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s after the new daemon started"

# A request the previous daemon never read stays in flight on its dead socket until the kernel's request timeout
# requeues it (without dropping anything: that socket is already replaced). Let those pass first, so that the
# timeout below is one of a request sent to this daemon.
left=$(awk -v a="$t" -v b="$(date +%s.%N)" -v r="$REQUEST_TIMEOUT" 'BEGIN{d = a + r + 2 - b; printf "%d", (d > 0 ? d + 1 : 0)}')
[ "$left" -gt 0 ] && { info "waiting ${left} s for requests stranded on the previous daemon's sockets to be requeued"; sleep "$left"; }
wait_progress "$DEV" 20 "writes to go on before the freeze"
info "SIGSTOP to the daemon until the kernel times a request out and drops its connection"
timeouts() { dmesg | grep -c "nbd$INDEX: Connection timed out" || true; }
before=$(timeouts)
pid=$(spawned_process "$DAEMON")
kill -STOP "$pid"
wait_for $((REQUEST_TIMEOUT + 15)) "the kernel to time a request out while the daemon is stopped" bash -c "[ \$(dmesg | grep -c 'nbd$INDEX: Connection timed out') -gt $before ]"
sleep 2
before=$(dmesg | grep -c "nbd$INDEX: reconnected socket" || true)
kill -CONT "$pid"
wait_for 30 "the daemon to hand the kernel a new socket for the dropped one" \
    bash -c "[ \$(dmesg | grep -c 'nbd$INDEX: reconnected socket') -gt $before ]"
info "ok: the dropped connection was replaced (NBD_CMD_LINK_DEAD -> NBD_CMD_RECONFIGURE)"

rc=0; wait "$FIO_PID" || rc=$?
assert_eq "$rc" 0 "fio (write + crc32c verify) exit code across crash, restart and freeze"
grep -q 'err= 0' "$VM_RUNDIR/fio.log" || fail "fio reported errors: $(grep -m3 'err=' "$VM_RUNDIR/fio.log")"
errors=$(kernel_io_errors)
[ -z "$errors" ] || fail "the kernel logged I/O errors: $errors"
dmesg | grep -qE "nbd$INDEX: (Receive control failed|Dead connection)" || fail "the kernel never saw a connection die: not a real restart"
umount /mnt/knbd
echo 3 > /proc/sys/vm/drop_caches
mount "$DEV" /mnt/knbd
timeout 120 "${FIO[@]}" --verify_only > "$VM_RUNDIR/fio-verify.log" 2>&1 ||
    fail "after remount fio's verify of the data written across the restarts failed (fio-verify.log)"
umount /mnt/knbd
info "ok: all 32 MiB verified again after remount; no I/O error in the kernel log"
checked restart "SIGKILL, SIGTERM and SIGSTOP of the daemon under a mounted writer: NBD_CMD_RECONFIGURE, no I/O error"

step "iserblockctl unmap detaches cleanly; logout leaves no session at the target"
out=$(iserblockctl unmap "$NODE" 2)
info "$out"
for _ in $(seq 50); do [ -z "$(device_of 2)" ] && break; sleep 0.2; done
assert_eq "$(device_of 2)" "" "device of LUN 2 after unmap"
[ ! -e "/sys/block/nbd$INDEX" ] || assert_eq "$(cat "/sys/block/nbd$INDEX/size")" 0 "size of nbd$INDEX after unmap"
[ -z "$(ctl_lun 2)" ] || fail "iserblockctl list still shows LUN 2 after unmap: $(ctl_lun 2)"
iserblockctl logout "$NODE"
wait_for 20 "tgtd to list no session of $OUR_INI after logout" bash -c "[ \$(tgtadm --lld $LLD --mode conn --op show --tid 1 | grep -c 'Initiator: $OUR_INI') = 0 ]"
assert_eq "$(device_of 1)" "" "device of LUN 1 after logout"
stop_daemon
checked unmap "unmap refused while mounted, detaches when not; logout leaves no session"

# a device the kernel has and nobody uses (devices attached over netlink are destroyed at disconnect)
IOCTL_DEV=
for d in /sys/block/nbd*; do
    [ "$(cat "$d/size")" = 0 ] && [ ! -e "$d/pid" ] && { IOCTL_DEV=/dev/${d##*/}; break; }
done
[ -n "$IOCTL_DEV" ] || fail "no unused /dev/nbdX for the ioctl path: $(ls /sys/block | grep nbd)"
step "legacy ioctl path: kernelNbdMethod \"ioctl\", LUN 1 on $IOCTL_DEV"
write_config ioctl "[ { \"lun\": 1, \"device\": \"$IOCTL_DEV\" } ]"
start_daemon daemon-ioctl
grep -q "LUN 1: attached as $IOCTL_DEV (ioctl)" "$VM_RUNDIR/daemon-ioctl.log" || fail "not attached with the ioctls: $(grep -i nbd "$VM_RUNDIR/daemon-ioctl.log")"
assert_eq "$(blockdev --getsize64 $IOCTL_DEV)" "$SIZE" "size of $IOCTL_DEV (ioctl)"
assert_eq "$(blockdev --getss $IOCTL_DEV)" 512 "logical block size of $IOCTL_DEV (ioctl)"
head -c $((8 * MIB)) /dev/urandom > /run/knbd-raw.src
dd if=/run/knbd-raw.src of=$IOCTL_DEV bs=1M seek=16 oflag=direct status=none
cmp <(dd if=$IOCTL_DEV bs=1M skip=16 count=8 iflag=direct status=none) /run/knbd-raw.src || fail "ioctl path: read back differs"
stop_daemon
cmp <(dd if=/run/knbd-lun1.img bs=1M skip=16 count=8 status=none) /run/knbd-raw.src || fail "ioctl path: the target's backing file differs"
assert_eq "$(cat /sys/block/${IOCTL_DEV#/dev/}/size)" 0 "size of ${IOCTL_DEV#/dev/} after the daemon stopped (disconnected)"
info "ok: 8 MiB written at 16 MiB through the ioctl-attached device, read back, on the target; detached at stop"
checked ioctl "NBD_SET_SOCK/NBD_DO_IT attach through the daemon"
[ -z "$(kernel_io_errors)" ] || fail "the kernel logged I/O errors: $(kernel_io_errors)"
