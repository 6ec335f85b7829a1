#!/usr/bin/env bash
# vm-group: main
# vm-rxe: yes
# vm-timeout: 300
# vm-publish: tests/IserBlockd.RdmaProbe/IserBlockd.RdmaProbe.csproj
#
# rdma-bindings: the rdma-core bindings (transport/IserBlockd.Rdma) on a real RDMA device (soft-RoCE).
# rdmaprobe speaks rping's protocol over our bindings: RDMA-CM connect with the iSER private data,
# SEND/RECV through a CQ drained by the completion dispatcher on the epoll loop, RDMA READ and WRITE
# against the peer's registered buffer pool memory, byte-for-byte checks, then teardown with no
# handle left and no kernel RDMA object left (rdma resource show). Ours against ours with 4 KiB,
# 128 KiB and 1 MiB transfers, then each side against the real rping from rdma-core.
. "$IBD_VM_LIB/scenario.sh"

ADDR=10.99.0.1          # rxe0; both ends use it (rxe loops back internally; see the recipe's pitfall 2)
PROBE=$IBD_BIN/rdmaprobe
[ -x "$PROBE" ] || fail "$PROBE is missing: publish tests/IserBlockd.RdmaProbe (run-scenarios.sh does)"

# wait_exit PID WHAT: the spawned program's exit code must be 0
wait_exit() {
    local rc=0
    wait "$1" || rc=$?
    [ "$rc" = 0 ] || { cat "$VM_RUNDIR/$2.log"; fail "$2 exited with $rc"; }
    info "$2 exited 0"
}

step "devices and routes"
rdma link show | grep -q 'rxe0.*ACTIVE' || fail "rxe0 is not ACTIVE: $(rdma link show)"
out=$("$PROBE" devices)
info "$out"
grep -q '^RDMA devices: .*rxe0' <<< "$out" || fail "rdmaprobe devices does not list rxe0"
grep -q 'rxe0: max_qp_wr [1-9]' <<< "$out" || fail "no limits queried from rxe0"
out=$("$PROBE" reach --address "$ADDR" --port 3260)
info "$out"
grep -q 'reachable=True device=rxe0' <<< "$out" || fail "rdmaprobe reach does not route $ADDR through rxe0"
rc=0; out=$("$PROBE" reach --address 127.0.0.1 --port 3260) || rc=$?
info "$out"
assert_eq "$rc" 3 "reach exit code for 127.0.0.1 (rxe on lo does not route)"
grep -q 'reachable=False.*no RDMA route to 127.0.0.1:3260' <<< "$out" || fail "no clear reason for the missing route"

step "memory windows (type 2): a key reaches the buffer only through its own connection, and only until invalidated"
# What the iSER initiator's per-command windows rest on: the buffer's registration grants no remote access; a window
# bound on connection A lets A's peer read; another connection's peer (another session) with A's key, the
# registration's rkey, and A's peer after the local invalidate all get an error completion.
rc=0; out=$("$PROBE" windows --address "$ADDR" --port 7476 --check-kernel-resources 2>&1) || rc=$?
info "$out"
assert_eq "$rc" 0 "rdmaprobe windows exit code"
grep -Eq '^RESULT windows bound_read=ok rebound_read=ok other_session=[A-Za-z]+Error registration_key=[A-Za-z]+Error after_invalidate=[A-Za-z]+Error distinct_keys=True$' <<< "$out" ||
    fail "a memory window key reached the buffer beyond its connection or its lifetime"
checked windows "a window key works only on its own connection and only until invalidated; the registration's own key opens nothing"

step "without memory windows: a protection domain per session, so one session's rkey opens nothing of another's"
# IserDeviceOptions.MemoryWindows off (or a device without type 2 windows): the registrations' own keys grant remote
# access, so each session gets its own protection domain and pools; B's peer with A's buffer key gets an error completion.
rc=0; out=$("$PROBE" sessions --address "$ADDR" --port 7477 --check-kernel-resources 2>&1) || rc=$?
info "$out"
assert_eq "$rc" 0 "rdmaprobe sessions exit code"
grep -Eq '^RESULT sessions own_read=ok other_session=[A-Za-z]+Error distinct_domains=True$' <<< "$out" ||
    fail "another session's peer reached a buffer with its key"
checked sessions "without windows each session has its own protection domain: its rkeys open only its own buffers"

step "a connect to a port nobody listens on fails with a clear error"
rc=0; out=$("$PROBE" client --address "$ADDR" --port 7499 --count 1 2>&1) || rc=$?
info "$out"
assert_eq "$rc" 1 "client exit code without a listener"
grep -qE 'client failed: RdmaConnection(Rejected)?Exception: rdma_connect\(10\.99\.0\.1:7499\): expected RDMA_CM_EVENT_ESTABLISHED but got RDMA_CM_EVENT_(REJECTED|UNREACHABLE)' <<< "$out" ||
    fail "the failed connect did not name the call and the CM event"

step "ours <-> ours: 30 pings cycling 4 KiB, 128 KiB, 1 MiB; RDMA READ + WRITE verified; no leaks"
spawn probe-server 180 "$PROBE" server --address "$ADDR" --port 7471 --size 1048576 --verify \
    --expect-iser-private-data --check-kernel-resources --min-pings 30
server=$SPAWNED
wait_for 30 "the probe server to listen" grep -q '^LISTENING' "$VM_RUNDIR/probe-server.log"
t=$(date +%s.%N)
"$PROBE" client --address "$ADDR" --port 7471 --size 4096,131072,1048576 --count 30 --check-kernel-resources |
    tee "$VM_RUNDIR/probe-client.log"
info "client took $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}') s wall"
wait_exit "$server" probe-server
cat "$VM_RUNDIR/probe-server.log"
grep -q 'server: iSER CM header flags SendWithInvalidateNotSupported, ZeroBasedVirtualAddressNotSupported' "$VM_RUNDIR/probe-server.log" ||
    fail "the server did not see the iSER CM private data"
grep -q '^RESULT role=server pings=30 ' "$VM_RUNDIR/probe-server.log" || fail "the server did not serve 30 pings"
grep -q '^RESULT role=client pings=30 ' "$VM_RUNDIR/probe-client.log" || fail "the client did not complete 30 pings"
for log in probe-server probe-client; do
    grep -q '^native objects still owned after teardown: 0$' "$VM_RUNDIR/$log.log" || fail "$log: handles left after teardown"
    grep -q '^kernel resources after teardown: cm_id=0 pd=0 cq=0 qp=0 mr=0$' "$VM_RUNDIR/$log.log" || fail "$log: kernel objects left"
done

step "our client against rping -s (the peer RDMA-READs and -WRITEs our registered memory)"
spawn rping-server 120 rping -s -a "$ADDR" -p 7472 -S 4096 -v
rserver=$SPAWNED
sleep 2   # rping prints nothing when it listens; RDMA-CM listeners do not show in ss
"$PROBE" client --address "$ADDR" --port 7472 --size 4096 --count 20 | tee "$VM_RUNDIR/probe-client-vs-rping.log"
wait_exit "$rserver" rping-server
n=$(grep -c '^server ping data: rdma-ping-' "$VM_RUNDIR/rping-server.log" || true)
assert_eq "$n" 20 "pings rping -s read from our memory"
grep -q '^client: 20 pings verified' "$VM_RUNDIR/probe-client-vs-rping.log" || fail "our client did not verify 20 pings against rping"

step "rping -c -V against our server (we RDMA-READ and -WRITE rping's memory)"
spawn probe-server-vs-rping 120 "$PROBE" server --address "$ADDR" --port 7473 --size 4096 --verify --min-pings 20
server=$SPAWNED
wait_for 30 "the probe server to listen" grep -q '^LISTENING' "$VM_RUNDIR/probe-server-vs-rping.log"
timeout 60 rping -c -a "$ADDR" -p 7473 -S 4096 -C 20 -V -v > "$VM_RUNDIR/rping-client.log" 2>&1 ||
    { cat "$VM_RUNDIR/rping-client.log"; fail "rping -c -V against our server failed"; }
n=$(grep -c '^ping data: rdma-ping-' "$VM_RUNDIR/rping-client.log" || true)
assert_eq "$n" 20 "pings rping -c validated"
wait_exit "$server" probe-server-vs-rping
cat "$VM_RUNDIR/probe-server-vs-rping.log"
grep -q '^RESULT role=server pings=20 ' "$VM_RUNDIR/probe-server-vs-rping.log" || fail "our server did not serve 20 rping pings"

step "RDMA WRITE bandwidth, 1 MiB x 200, 16 in flight: ours beside perftest's ib_write_bw (same device, same run)"
# Under TCG the numbers are only indicative, and perftest's cycle-counter timing sometimes reports 0.00:
# both clients' wall time (connect + transfer + teardown) is printed as well.
walltime() { local t=$(date +%s.%N); "$@"; local rc=$?; WALL=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}'); return $rc; }
spawn bw-server 120 "$PROBE" server --write-bandwidth --address "$ADDR" --port 7474 --size 1048576
server=$SPAWNED
wait_for 30 "the bandwidth server to listen" grep -q '^LISTENING' "$VM_RUNDIR/bw-server.log"
walltime "$PROBE" client --write-bandwidth --address "$ADDR" --port 7474 --size 1048576 --count 200 --depth 16 > "$VM_RUNDIR/bw-client.log" ||
    { cat "$VM_RUNDIR/bw-client.log"; fail "the bandwidth client failed"; }
cat "$VM_RUNDIR/bw-client.log"
ours_wall=$WALL
wait_exit "$server" bw-server
ours=$(sed -n 's/^RESULT role=bw-client .* mbps=\([0-9.]*\) .*$/\1/p' "$VM_RUNDIR/bw-client.log")
[ -n "$ours" ] || fail "no bandwidth result from rdmaprobe"
per_write=$(sed -n 's/^RESULT role=bw-client .* allocated_per_write=\([0-9]*\)$/\1/p' "$VM_RUNDIR/bw-client.log")
# post + poll + dispatch on the real device allocate nothing; a few bytes per write of slack for the runtime
[ "${per_write:-999999}" -lt 64 ] || fail "the RDMA write path allocated $per_write bytes per write"
info "ok: $per_write bytes allocated per RDMA WRITE (post, poll, dispatch, re-arm)"
spawn ib-write-bw-server 120 ib_write_bw -d rxe0 -R -F -p 7475 -s 1048576 -n 200 -t 16
sleep 2
walltime timeout 90 ib_write_bw -d rxe0 -R -F -p 7475 -s 1048576 -n 200 -t 16 "$ADDR" > "$VM_RUNDIR/ib-write-bw.log" 2>&1 ||
    { cat "$VM_RUNDIR/ib-write-bw.log"; fail "ib_write_bw failed"; }
theirs_wall=$WALL
theirs=$(awk '$1 == 1048576 { print $4 }' "$VM_RUNDIR/ib-write-bw.log" | tail -1)
[ -n "$theirs" ] || { cat "$VM_RUNDIR/ib-write-bw.log"; fail "no bandwidth result from ib_write_bw"; }
info "rdmaprobe: $ours MB/s by its own timer, client wall time $ours_wall s"
info "ib_write_bw: $theirs MB/s self-reported, client wall time $theirs_wall s"
echo "RESULT rdma_write_mbps=$ours rdma_write_wall_s=$ours_wall ib_write_bw_mbps=$theirs ib_write_bw_wall_s=$theirs_wall"
