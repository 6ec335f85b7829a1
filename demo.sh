#!/usr/bin/env bash
# demo.sh — a tgtd iSCSI LUN, logged into by iserblockd and exported over NBD, until Ctrl-C.
#
# Starts a private tgtd (its own control socket, a 1 GiB sparse LUN in a temp directory) on a free
# 127.0.0.1 port, runs `iserblockd export` on it, prints how to use the NBD export, and on Ctrl-C
# stops everything in order (iserblockd flushes and logs out, then tgtd stops) and removes the temp
# directory. setup.sh runs it at the end; run it again any time: ./demo.sh
set -euo pipefail
cd "$(dirname "$(realpath "$0")")"

IBD=$(command -v iserblockd || true)
[ -n "$IBD" ] || IBD=$PWD/artifacts/bin/iserblockd
[ -x "$IBD" ] || { echo "demo: iserblockd is not built; run ./setup.sh --no-demo first" >&2; exit 1; }
for tool in tgtd tgtadm ss; do
    command -v "$tool" > /dev/null || PATH=$PATH:/usr/sbin:/sbin
    command -v "$tool" > /dev/null || { echo "demo: $tool is missing; run ./setup.sh --no-demo first" >&2; exit 1; }
done

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        [ -z "$(ss -Hltn "sport = :$port")" ] && { echo "$port"; return; }
    done
}

WORK=$(mktemp -d /tmp/iserblockd-demo.XXXXXX)
ISCSI_PORT=$(free_port)
NBD_PORT=$(free_port)
while [ "$NBD_PORT" = "$ISCSI_PORT" ]; do NBD_PORT=$(free_port); done
TARGET=iqn.2024-01.org.iserblockd.demo:disk1
INITIATOR=$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi 2>/dev/null | head -1)
[ -n "$INITIATOR" ] || INITIATOR=iqn.2024-01.org.iserblockd:demo
export TGT_IPC_SOCKET=$WORK/tgtd-ipc
TGTD_PID= EXPORT_PID=

cleanup() {
    trap - EXIT INT TERM HUP
    set +e # the terminal may be gone (SIGHUP): stopping must not depend on being able to print
    echo
    if [ -n "$EXPORT_PID" ] && kill -0 "$EXPORT_PID" 2>/dev/null; then
        echo "demo: stopping iserblockd (flush, logout)"
        kill -TERM "$EXPORT_PID" 2>/dev/null || true
        for _ in $(seq 1 600); do kill -0 "$EXPORT_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$EXPORT_PID" 2>/dev/null || true
    fi
    if [ -n "$TGTD_PID" ] && kill -0 "$TGTD_PID" 2>/dev/null; then
        echo "demo: stopping tgtd"
        tgtadm --lld iscsi --mode target --op delete --force --tid 1 > /dev/null 2>&1 || true
        # tgtd ignores SIGTERM; with its target deleted there is nothing left to lose
        kill -KILL "$TGTD_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    echo "demo: stopped, $WORK removed"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Both servers run in their own sessions (setsid) so that Ctrl-C reaches only this script, which then
# stops them in order: iserblockd first (it must flush and log out while the target is still there).
setsid tgtd -f --iscsi "portal=127.0.0.1:$ISCSI_PORT" > "$WORK/tgtd.log" 2>&1 < /dev/null &
TGTD_PID=$!
disown "$TGTD_PID"
for _ in $(seq 1 100); do
    tgtadm --lld iscsi --mode target --op show > /dev/null 2>&1 && break
    kill -0 "$TGTD_PID" 2>/dev/null || { echo "demo: tgtd did not start:" >&2; cat "$WORK/tgtd.log" >&2; exit 1; }
    sleep 0.1
done
truncate -s 1G "$WORK/lun1.img"
tgtadm --lld iscsi --mode target --op new --tid 1 --targetname "$TARGET"
tgtadm --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$WORK/lun1.img"
tgtadm --lld iscsi --mode target --op bind --tid 1 --initiator-address 127.0.0.1

setsid "$IBD" export --portal "127.0.0.1:$ISCSI_PORT" --target "$TARGET" --lun 1 \
    --listen "127.0.0.1:$NBD_PORT" --initiator-name "$INITIATOR" --log-level information \
    > "$WORK/export.out" 2> "$WORK/iserblockd.log" < /dev/null &
EXPORT_PID=$!
for _ in $(seq 1 300); do
    grep -q '^ready: ' "$WORK/export.out" 2>/dev/null && break
    kill -0 "$EXPORT_PID" 2>/dev/null || { echo "demo: iserblockd export failed:" >&2; cat "$WORK/iserblockd.log" >&2; exit 1; }
    sleep 0.1
done
URI=$(sed -n 's/^ready: //p' "$WORK/export.out")
[ -n "$URI" ] || { echo "demo: iserblockd export did not become ready:" >&2; cat "$WORK/iserblockd.log" >&2; exit 1; }

cat <<EOT

  iserblockd demo is running
  ---------------------------
  iSCSI target  $TARGET LUN 1 (tgtd on 127.0.0.1:$ISCSI_PORT, 1 GiB sparse file)
  initiator     $INITIATOR
  NBD export    $URI

  Try, in another terminal:
    nbdinfo $URI
    qemu-img info $URI
    qemu-io -f raw -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M' $URI
    head -c 64M /dev/urandom > /tmp/demo.bin && nbdcopy /tmp/demo.bin $URI && nbdcopy $URI - | head -c 64M | cmp - /tmp/demo.bin && echo same
    fio --name=demo --ioengine=nbd --uri=$URI --rw=randrw --bs=4k --iodepth=32 --size=256M --runtime=10 --time_based
    # as root, with the nbd module: nbd-client -N '' 127.0.0.1 $NBD_PORT /dev/nbd0

  Logs: $WORK/iserblockd.log (iserblockd), $WORK/tgtd.log (tgtd)
  Press Ctrl-C to stop (iserblockd flushes and logs out, tgtd stops, $WORK is removed).

EOT
wait "$EXPORT_PID" || true
EXPORT_PID=
echo "demo: iserblockd exited; see the log above" >&2
