#!/usr/bin/env bash
# tests/interop/matrix.sh [--quick] [--target tgtd|istgt|lio] [--limit N] — the conformance matrix.
#
# fio verify (random block sizes 4 KiB–1 MiB, QD8, crc32c) through `iserblockd export` (NBD on a Unix socket)
# against each host target (tgtd, istgt) or, with --target lio, against LIO (the Linux kernel's own target) inside
# the VM test bed (tests/vm/run-vm.sh boots a guest that runs this script there), for combinations of
#   HeaderDigest × DataDigest (None / CRC32C) × InitialR2T (Yes / No) × ImmediateData (Yes / No)
#   × FirstBurstLength / MaxBurstLength (512 B … 16 MiB - 1) × MaxRecvDataSegmentLength (512 B … 16 MiB - 1)
#   × logical block size (512 / 4096)
# Both sides are set to each row's values (ours with export's options, tgtd with tgtadm --op update,
# istgt with its istgt.conf, LIO through configfs: the TPG's param/ keys, MaxXmitDataSegmentLength following
# MaxRecvDataSegmentLength so that LIO's Data-In segments are the row's size too, and the block size from the
# fileio backstore's attrib/block_size, one backstore per size), so that the negotiated value is the row's; each row checks the export's
# "logged in" line says so. The full matrix is
#   part A: every digest × InitialR2T × ImmediateData × block size (32 rows per target), the lengths
#           rotating through a list of (FirstBurstLength, MaxBurstLength, MaxRecvDataSegmentLength);
#   part B: every FirstBurstLength ≤ MaxBurstLength × MaxRecvDataSegmentLength of 512, 8192, 262144 and
#           16777215 (ImmediateData=Yes and, where the target has it, InitialR2T=No, so that unsolicited data and
#           R2T bursts both occur).
# --quick runs 8 rows per target (part of the .NET test suite: MatrixTests); --limit N only the first N rows of
# each target (the lio VM scenario runs a few quick LIO rows that way).
#
# One row per combination:  TARGET  SETTINGS  PASS|FAIL|REFUSED  MB/s  [reason]
# REFUSED: the target cannot be set to that combination (its configuration refuses it); not a failure.
# Last line:  MATRIX passed=N failed=N refused=N
# Exit status: 0 when nothing failed.
#
# Environment: IBD_BIN (the iserblockd to test, or the directory holding it; default: ISERBLOCKD_BIN_DIR/iserblockd,
# then artifacts/bin, then the Release build output; --target lio needs the NativeAOT one in artifacts/bin and
# publishes it when it is missing), SIZE (fio's size per row, default 24M), TARGETS (default "tgtd istgt"),
# KEEP_LOGS=1 keeps the work directory.
set -uo pipefail
cd "$(dirname "$(realpath "$0")")/../.."
PATH=$PATH:/usr/sbin:/sbin

QUICK=0 IN_GUEST=0 LIMIT=0
USAGE="usage: $0 [--quick] [--target tgtd|istgt|lio] [--limit N]"
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1; shift ;;
        --target) TARGETS=$2; shift 2 ;;
        --limit) LIMIT=$2; shift 2 ;;
        --in-guest) IN_GUEST=1; shift ;;   # internal: this run is the VM's half of --target lio
        *) echo "$USAGE" >&2; exit 2 ;;
    esac
done
SIZE=${SIZE:-24M}
TARGETS=${TARGETS:-tgtd istgt}
for t in $TARGETS; do
    case $t in tgtd|istgt|lio) ;; *) echo "matrix.sh: unknown target $t; $USAGE" >&2; exit 2 ;; esac
done
if [[ " $TARGETS " == *" lio "* ]] && [ "$TARGETS" != lio ]; then
    echo "matrix.sh: lio runs in the VM on its own: --target lio" >&2; exit 2
fi

# LIO lives in the kernel: the host half boots a guest (tests/vm) whose root is this filesystem and runs the rows there
if [ "$TARGETS" = lio ] && [ $IN_GUEST = 0 ]; then
    if [ ! -x artifacts/bin/iserblockd ]; then
        echo "matrix.sh: publishing iserblockd (NativeAOT) into artifacts/bin for the guest" >&2
        DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1 \
            dotnet publish daemon/iserblockd/iserblockd.csproj -c Release -r linux-x64 -o artifacts/bin -v q -nologo >&2 || exit 1
    fi
    tests/vm/setup-vm.sh >/dev/null || { echo "matrix.sh: the VM test bed could not be set up (tests/vm/setup-vm.sh)" >&2; exit 1; }
    args=(--in-guest --target lio)
    [ $QUICK = 1 ] && args+=(--quick)
    [ "$LIMIT" != 0 ] && args+=(--limit "$LIMIT")
    guest_timeout=$([ $QUICK = 1 ] && echo 1200 || echo 7200)
    exec tests/vm/run-vm.sh -n matrix-lio -t "$guest_timeout" -e "SIZE=$SIZE" -e "KEEP_LOGS=${KEEP_LOGS:-0}" \
        -m target_core_mod -m target_core_file -m iscsi_target_mod \
        "$(printf '%q ' bash "$PWD/tests/interop/matrix.sh" "${args[@]}")"
fi

if [ -n "${IBD_BIN:-}" ] && [ -d "$IBD_BIN" ]; then IBD=$IBD_BIN/iserblockd   # the VM's environment names the directory
elif [ -n "${IBD_BIN:-}" ]; then IBD=$IBD_BIN
elif [ -n "${ISERBLOCKD_BIN_DIR:-}" ]; then IBD=$ISERBLOCKD_BIN_DIR/iserblockd
elif [ -x artifacts/bin/iserblockd ]; then IBD=$PWD/artifacts/bin/iserblockd
else IBD=$PWD/daemon/iserblockd/bin/Release/net10.0/iserblockd
fi
[ -x "$IBD" ] || { echo "matrix.sh: $IBD is not built (dotnet build daemon/iserblockd -c Release, or set IBD_BIN)" >&2; exit 1; }
tools="fio nbdinfo python3"
for t in $TARGETS; do case $t in tgtd) tools+=" tgtd tgtadm" ;; istgt) tools+=" istgt" ;; esac; done
for tool in $tools; do
    command -v "$tool" >/dev/null || { echo "matrix.sh: $tool is not installed (run ./setup.sh --no-demo)" >&2; exit 1; }
done

# in the guest the work directory goes to the run's log directory (shared with the host) so KEEP_LOGS=1 keeps it
WORK=$(mktemp -d "${VM_RUNDIR:-/tmp}/interop-matrix.XXXXXX")
if [ -d /dev/shm ] && [ -w /dev/shm ]; then LUNDIR=$(mktemp -d /dev/shm/interop-matrix.XXXXXX)
else LUNDIR=$(mktemp -d /tmp/interop-matrix-luns.XXXXXX); fi
export TGT_IPC_SOCKET=$WORK/tgtd-ipc
TGTD_PID="" ISTGT_PID="" EXPORT_PID=""
INITIATOR=iqn.2024-01.org.iserblockd.matrix:initiator
LUN_BYTES=$((64 << 20))

cleanup() {
    set +e
    [ -n "$EXPORT_PID" ] && kill -TERM "$EXPORT_PID" 2>/dev/null && wait "$EXPORT_PID" 2>/dev/null
    [ -n "$ISTGT_PID" ] && kill -KILL "$ISTGT_PID" 2>/dev/null && wait "$ISTGT_PID" 2>/dev/null
    [ -n "$TGTD_PID" ] && kill -KILL "$TGTD_PID" 2>/dev/null && wait "$TGTD_PID" 2>/dev/null
    rm -rf "$LUNDIR"
    if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() { # PORT SECONDS
    local i
    for i in $(seq $(($2 * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

yn() { if [ "$1" = 1 ]; then echo Yes; else echo No; fi; }

# ---- tgtd: one daemon, one target with a 512-byte LUN (1) and a 4096-byte LUN (2); parameters per row ----
TGTD_PORT="" TGTD_IQN=iqn.2024-01.org.iserblockd.matrix:tgtd
tgtd_start() {
    TGTD_PORT=$(free_port)
    tgtd -f --iscsi "portal=127.0.0.1:$TGTD_PORT" >"$WORK/tgtd.log" 2>&1 &
    TGTD_PID=$!
    local i
    for i in $(seq 200); do tgtadm --lld iscsi --mode target --op show >/dev/null 2>&1 && break; sleep 0.1; done
    wait_port "$TGTD_PORT" 20 || { echo "matrix.sh: tgtd did not start" >&2; cat "$WORK/tgtd.log" >&2; exit 1; }
    truncate -s $LUN_BYTES "$LUNDIR/tgtd-512.img" "$LUNDIR/tgtd-4096.img"
    tgtadm --lld iscsi --mode target --op new --tid 1 --targetname "$TGTD_IQN"
    tgtadm --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$LUNDIR/tgtd-512.img" --blocksize 512
    tgtadm --lld iscsi --mode logicalunit --op new --tid 1 --lun 2 --backing-store "$LUNDIR/tgtd-4096.img" --blocksize 4096
    tgtadm --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL
}

# tgtd_configure HD DD R2T IMM FBL MBL MRDSL -> 0, or 1 with the refused parameter in $REFUSAL
tgtd_configure() {
    local name value out
    local -a params=(HeaderDigest "$1" DataDigest "$2" InitialR2T "$(yn "$3")" ImmediateData "$(yn "$4")"
        MaxBurstLength "$6" FirstBurstLength "$5" MaxRecvDataSegmentLength "$7")
    # MaxBurstLength first when it grows, FirstBurstLength first when it shrinks (FirstBurstLength <= MaxBurstLength)
    tgtadm --lld iscsi --mode target --op update --tid 1 --name FirstBurstLength --value 512 >/dev/null 2>&1
    set -- "${params[@]}"
    while [ $# -gt 0 ]; do
        name=$1 value=$2; shift 2
        if ! out=$(tgtadm --lld iscsi --mode target --op update --tid 1 --name "$name" --value "$value" 2>&1); then
            REFUSAL="tgtadm refuses $name=$value: $(echo "$out" | head -1)"
            return 1
        fi
    done
    # what tgtd then holds (tgtadm accepts some values it clamps)
    out=$(tgtadm --lld iscsi --mode target --op show 2>/dev/null | sed -n '/Target 1:/,/LUN information/p')
    return 0
}

# ---- istgt: a fresh daemon per row, since its keys live in istgt.conf ----
ISTGT_PORT="" ISTGT_IQN=iqn.2026-11.io.iserblockd.matrix:disk1
istgt_start() { # HD DD R2T IMM FBL MBL MRDSL -> 0, or 1 with $REFUSAL
    istgt_stop
    ISTGT_PORT=$(free_port)
    local control digest=Auto
    control=$(free_port)
    case "$1/$2" in
        CRC32C/CRC32C) digest="Header Data" ;;
        CRC32C/None) digest="Header" ;;
        None/CRC32C) digest="Data" ;;
    esac
    [ -f "$LUNDIR/istgt-512.img" ] || truncate -s $LUN_BYTES "$LUNDIR/istgt-512.img" "$LUNDIR/istgt-4096.img"
    printf '[AuthGroup10000]\n  Auth "ctluser" "testsecret12"\n' >"$WORK/istgt-auth.conf"
    cat >"$WORK/istgt.conf" <<EOF
[Global]
  NodeBase "iqn.2026-11.io.iserblockd.matrix"
  PidFile $WORK/istgt.pid
  AuthFile $WORK/istgt-auth.conf
  MediaDirectory $LUNDIR
  LogFacility "local7"
  Timeout 30
  NopInInterval 20
  DiscoveryAuthMethod None
  MaxSessions 16
  MaxConnections 4
  MaxR2T 32
  MaxOutstandingR2T 16
  DefaultTime2Wait 2
  DefaultTime2Retain 60
  FirstBurstLength $5
  MaxBurstLength $6
  MaxRecvDataSegmentLength $7
  InitialR2T $(yn "$3")
  ImmediateData $(yn "$4")
  DataPDUInOrder Yes
  DataSequenceInOrder Yes
  ErrorRecoveryLevel 0
[UnitControl]
  AuthMethod CHAP Mutual
  AuthGroup AuthGroup10000
  Portal UC1 127.0.0.1:$control
  Netmask 127.0.0.1
[PortalGroup1]
  Portal DA1 127.0.0.1:$ISTGT_PORT
[InitiatorGroup1]
  InitiatorName "ALL"
  Netmask 127.0.0.0/8
[LogicalUnit1]
  TargetName disk1
  Mapping PortalGroup1 InitiatorGroup1
  AuthMethod None
  UseDigest $digest
  UnitType Disk
  QueueDepth 32
  LUN0 Storage $LUNDIR/istgt-512.img $((LUN_BYTES >> 20))MB
[LogicalUnit2]
  TargetName disk2
  Mapping PortalGroup1 InitiatorGroup1
  AuthMethod None
  UseDigest $digest
  UnitType Disk
  QueueDepth 32
  BlockLength 4096
  LUN0 Storage $LUNDIR/istgt-4096.img $((LUN_BYTES >> 20))MB
EOF
    istgt -c "$WORK/istgt.conf" -p "$WORK/istgt.pid" -D >"$WORK/istgt.log" 2>&1 &
    ISTGT_PID=$!
    local i
    for i in $(seq 100); do
        kill -0 "$ISTGT_PID" 2>/dev/null || break
        (exec 3<>"/dev/tcp/127.0.0.1/$ISTGT_PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    REFUSAL="istgt does not start with this configuration: $(grep -iE 'error|invalid|range|<|>' "$WORK/istgt.log" | head -1)"
    istgt_stop
    return 1
}
istgt_stop() {
    if [ -n "$ISTGT_PID" ]; then kill -KILL "$ISTGT_PID" 2>/dev/null; wait "$ISTGT_PID" 2>/dev/null; ISTGT_PID=""; fi
}

# ---- LIO (in the guest): one target, LUN 0 on a 512-byte fileio backstore, LUN 1 on a 4096-byte one; the TPG's
# param/ keys set per row through configfs (they apply to the next login) ----
LIO_PORT="" LIO_IQN=iqn.2003-01.org.linux-iscsi.iserblockd:matrix
lio_start() {
    [ -d /sys/module/iscsi_target_mod ] || { echo "matrix.sh: LIO (iscsi_target_mod) is not loaded here" >&2; exit 1; }
    # shellcheck source=../vm/lib/lio.sh
    . tests/vm/lib/lio.sh
    LIO_PORT=$(free_port)
    lio_fileio matrix512 "$LUNDIR/lio-512.img" $LUN_BYTES 512
    lio_fileio matrix4096 "$LUNDIR/lio-4096.img" $LUN_BYTES 4096
    lio_target "$LIO_IQN"
    lio_portal "$LIO_IQN" "127.0.0.1:$LIO_PORT"
    lio_lun "$LIO_IQN" 0 matrix512
    lio_lun "$LIO_IQN" 1 matrix4096
    lio_acl "$LIO_IQN" "$INITIATOR"
    lio_enable "$LIO_IQN" 1
    wait_port "$LIO_PORT" 20 || { echo "matrix.sh: LIO does not listen on 127.0.0.1:$LIO_PORT" >&2; exit 1; }
    echo "LIO: $(cat /sys/kernel/config/target/version 2>/dev/null | head -1)" >&2
}

# lio_configure HD DD R2T IMM FBL MBL MRDSL -> 0, or 1 with the refused key in $REFUSAL
lio_configure() {
    local param name value out
    param=$(lio_tpg "$LIO_IQN")/param
    # MaxBurstLength before FirstBurstLength when it grows, after when it shrinks: LIO checks FirstBurstLength <= MaxBurstLength
    echo 512 > "$param/FirstBurstLength" 2>/dev/null
    set -- HeaderDigest "$1" DataDigest "$2" InitialR2T "$(yn "$3")" ImmediateData "$(yn "$4")" \
        MaxBurstLength "$6" FirstBurstLength "$5" MaxRecvDataSegmentLength "$7" MaxXmitDataSegmentLength "$7"
    while [ $# -gt 0 ]; do
        name=$1 value=$2; shift 2
        if ! out=$( { echo "$value" > "$param/$name"; } 2>&1); then
            REFUSAL="configfs refuses $name=$value: ${out##*: }"
            return 1
        fi
        out=$(cat "$param/$name")
        [ "$out" = "$value" ] || { REFUSAL="LIO holds $name=$out after $name=$value was written"; return 1; }
    done
    return 0
}

PASSED=0 FAILED=0 REFUSED=0
ROW=0

# row TARGET HD DD R2T IMM FBL MBL MRDSL BS
row() {
    local target=$1 hd=$2 dd=$3 r2t=$4 imm=$5 fbl=$6 mbl=$7 mrdsl=$8 bs=$9
    local settings portal iqn lun reason="" mbs="-" log
    ROW=$((ROW + 1))
    settings=$(printf 'HeaderDigest=%-6s DataDigest=%-6s InitialR2T=%-3s ImmediateData=%-3s FirstBurstLength=%-8s MaxBurstLength=%-8s MaxRecvDataSegmentLength=%-8s block=%-4s' \
        "$hd" "$dd" "$(yn "$r2t")" "$(yn "$imm")" "$fbl" "$mbl" "$mrdsl" "$bs")
    REFUSAL=""
    case $target in
        tgtd)
            portal=127.0.0.1:$TGTD_PORT iqn=$TGTD_IQN
            if [ "$bs" = 512 ]; then lun=1; else lun=2; fi
            tgtd_configure "$hd" "$dd" "$r2t" "$imm" "$fbl" "$mbl" "$mrdsl" || true ;;
        istgt)
            if [ "$bs" = 512 ]; then iqn=$ISTGT_IQN; else iqn=${ISTGT_IQN%1}2; fi
            lun=0
            istgt_start "$hd" "$dd" "$r2t" "$imm" "$fbl" "$mbl" "$mrdsl" || true
            portal=127.0.0.1:$ISTGT_PORT ;;
        lio)
            portal=127.0.0.1:$LIO_PORT iqn=$LIO_IQN
            if [ "$bs" = 512 ]; then lun=0; else lun=1; fi
            lio_configure "$hd" "$dd" "$r2t" "$imm" "$fbl" "$mbl" "$mrdsl" || true ;;
    esac
    if [ -n "$REFUSAL" ]; then
        REFUSED=$((REFUSED + 1))
        printf '%-5s %s  REFUSED  -  %s\n' "$target" "$settings" "$REFUSAL"
        return
    fi

    log=$WORK/row$ROW
    local sock=$LUNDIR/row$ROW.sock   # a short, local path: a Unix socket's is at most 107 bytes, and 9p has none
    "$IBD" export --portal "$portal" --target "$iqn" --lun "$lun" --socket "$sock" --initiator-name "$INITIATOR" \
        --header-digest "$hd" --data-digest "$dd" --initial-r2t "$(yn "$r2t")" --immediate-data "$(yn "$imm")" \
        --first-burst-length "$fbl" --max-burst-length "$mbl" --max-recv-data-segment-length "$mrdsl" \
        --command-timeout 20 --login-timeout 15 --log-level info >"$log.out" 2>"$log.err" &
    EXPORT_PID=$!
    local i ready=0
    for i in $(seq 600); do
        if grep -q '^ready: ' "$log.out" 2>/dev/null; then ready=1; break; fi
        kill -0 "$EXPORT_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ $ready = 0 ]; then
        reason="export not ready: $(grep -v '^\s*$' "$log.err" | tail -1)"
    else
        reason=$(check_negotiated "$log.err" "$hd" "$dd" "$r2t" "$imm" "$fbl" "$mbl" "$mrdsl" "$target")
        if [ -z "$reason" ]; then
            local uri
            uri=$(sed -n 's/^ready: //p' "$log.out")
            if timeout 300 fio --name=matrix --ioengine=nbd --uri="$uri" --rw=randwrite --bsrange=4k-1m --blockalign=4k \
                --iodepth=8 --size="$SIZE" --verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0 --verify_state_save=0 \
                --output-format=json >"$log.fio.json" 2>"$log.fio.err"; then
                local verdict
                verdict=$(python3 -c '
import json, sys
text = open(sys.argv[1]).read()
j = json.loads(text[text.index("{"):])["jobs"][0]   # the nbd engine prints a line before the JSON
io = j["write"]["io_bytes"] + j["read"]["io_bytes"]
ms = j["write"]["runtime"] + j["read"]["runtime"]
print(f"{io / 1e6 / (ms / 1000):.1f}" if ms else "-", j["error"], j["read"]["io_bytes"])' "$log.fio.json" 2>/dev/null || echo "- unreadable 0")
                read -r mbs fioerr readback <<< "$verdict"
                if [ "$fioerr" != 0 ]; then reason="fio error $fioerr"
                elif [ "$readback" = 0 ]; then reason="fio verified nothing"; fi
            else
                reason="fio: $(grep -v '^\s*$' "$log.fio.err" | tail -1)"
            fi
        fi
    fi
    kill -TERM "$EXPORT_PID" 2>/dev/null
    local code=0
    wait "$EXPORT_PID" 2>/dev/null || code=$?
    EXPORT_PID=""
    if [ -z "$reason" ] && [ $code != 0 ]; then reason="export exited with $code: $(tail -1 "$log.err")"; fi
    if [ -z "$reason" ] && grep -qiE 'reinstat|timed out|abort|protocol error|digest error' "$log.err"; then
        reason="export log: $(grep -iE 'reinstat|timed out|abort|protocol error|digest error' "$log.err" | head -1)"
    fi
    if [ -z "$reason" ]; then
        PASSED=$((PASSED + 1))
        printf '%-5s %s  PASS  %7s MB/s  target MaxRecvDataSegmentLength=%s\n' "$target" "$settings" "$mbs" \
            "$(grep -m1 -o 'TargetMaxRecvDataSegmentLength=[0-9]*' "$log.err" | cut -d= -f2)"
        [ "${KEEP_LOGS:-0}" = 1 ] || rm -f "$log".*
    else
        FAILED=$((FAILED + 1))
        printf '%-5s %s  FAIL  %7s MB/s  %s\n' "$target" "$settings" "$mbs" "$reason"
        cp "$log.err" "$WORK/failed-row$ROW.err" 2>/dev/null
        echo "---- row $ROW: export log tail ----" >&2; tail -20 "$log.err" >&2
        [ "$target" = istgt ] && { echo "---- istgt log tail ----" >&2; tail -5 "$WORK/istgt.log" >&2; }
    fi
}

# check_negotiated ERRLOG HD DD R2T IMM FBL MBL MRDSL TARGET: prints why the negotiated keys differ from the row's, or nothing
check_negotiated() {
    local line
    line=$(grep -m1 'logged in to' "$1") || { echo "no 'logged in' line in the export's log"; return; }
    local want=("HeaderDigest=$2" "DataDigest=$3" "InitialR2T=$(yn "$4")" "ImmediateData=$(yn "$5")" "MaxBurstLength=$7")
    # FirstBurstLength is irrelevant (and some targets do not answer it) when InitialR2T=Yes and ImmediateData=No
    if [ "$4" = 0 ] || [ "$5" = 1 ]; then want+=("FirstBurstLength=$6"); fi
    local w
    for w in "${want[@]}"; do
        echo "$line" | grep -qiE "(^|[^A-Za-z])$w([^0-9A-Za-z]|$)" || { echo "negotiated differs: want $w in: ${line#*: }"; return; }
    done
}

# ---- the rows ----
DIGESTS=("None None" "CRC32C None" "None CRC32C" "CRC32C CRC32C")
# (FirstBurstLength MaxBurstLength MaxRecvDataSegmentLength) tuples part A rotates through
TUPLES=("65536 262144 8192" "512 512 512" "262144 16777215 262144" "8192 65536 16777215" "512 16777215 4096" "16777215 16777215 65536" "4096 1048576 1048576" "262144 1048576 512")
LENGTHS=(512 8192 262144 16777215)

rows_for() { # TARGET: prints "HD DD R2T IMM FBL MBL MRDSL BS" lines
    local target=$1 d r2t imm bs t=0 fbl mbl mrdsl
    # istgt supports InitialR2T=Yes only: its quick rows and part B use it
    local r2t_no=0
    [ "$target" = istgt ] && r2t_no=1
    if [ $QUICK = 1 ]; then
        # 512 and 4096-byte rows alternate, so that --limit 2 already has both block sizes, both ImmediateData values
        # and InitialR2T=No where the target has it
        echo "None None $r2t_no 1 262144 16777215 262144 512"
        echo "CRC32C None 1 0 262144 1048576 512 4096"
        echo "CRC32C CRC32C 1 0 65536 262144 8192 512"
        echo "CRC32C CRC32C $r2t_no 1 16777215 16777215 65536 4096"
        echo "CRC32C None $r2t_no 0 512 512 512 512"
        echo "None None $r2t_no 1 512 16777215 4096 4096"
        echo "None CRC32C 1 1 8192 65536 16777215 512"
        echo "None None 1 1 4096 1048576 1048576 4096"
        return
    fi
    for d in "${DIGESTS[@]}"; do
        for r2t in 0 1; do
            for imm in 1 0; do
                for bs in 512 4096; do
                    echo "$d $r2t $imm ${TUPLES[$((t % ${#TUPLES[@]}))]} $bs"
                    t=$((t + 1))
                done
            done
        done
    done
    for mbl in "${LENGTHS[@]}"; do
        for fbl in "${LENGTHS[@]}"; do
            [ "$fbl" -le "$mbl" ] || continue
            for mrdsl in "${LENGTHS[@]}"; do
                echo "None None $r2t_no 1 $fbl $mbl $mrdsl 512"
            done
        done
    done
}

START=$(date +%s)
echo "iserblockd: $IBD; fio randwrite 4k-1m QD8 verify=crc32c, size $SIZE per row" >&2
for target in $TARGETS; do
    [ "$target" = tgtd ] && tgtd_start
    [ "$target" = lio ] && lio_start
    n=0
    while read -r -u 3 hd dd r2t imm fbl mbl mrdsl bs; do
        n=$((n + 1))
        [ "$LIMIT" != 0 ] && [ $n -gt "$LIMIT" ] && break
        row "$target" "$hd" "$dd" "$r2t" "$imm" "$fbl" "$mbl" "$mrdsl" "$bs"
    done 3< <(rows_for "$target")
    istgt_stop
done
echo "duration: $(( $(date +%s) - START )) s" >&2
echo "MATRIX passed=$PASSED failed=$FAILED refused=$REFUSED"
[ $FAILED = 0 ]
