# tests/vm/lib/tgt.sh — tgtd inside the guest (sourced after scenario.sh).
# The guest is a private machine: tgtd uses its default control socket under the guest's fresh /run.
#   tgt_start [TGTD-ARGS...]           start tgtd (stopped at scenario exit), e.g. --iser pool_sz_mb=256
#   tgt_target LLD TID IQN             new target; LLD is iscsi (TCP) or iser
#   tgt_lun LLD TID LUN FILE [BS]      new LUN backed by FILE, logical block size BS (default 512)
#   tgt_allow LLD TID IQN...           bind address ALL and each initiator name. tgt 1.0.85 (Debian 12)
#                                      needs BOTH for iSER logins, or they fail with "Target not found".
TGT_IPADDR=10.99.0.1      # rxe0's address in a guest started with vm-rxe: yes

tgt_start() {
    spawn tgtd 3600 tgtd -f "$@"
    local pid=$SPAWNED
    wait_for 20 "tgtd's control socket" tgtadm --mode system --op show
    # tgtd ignores SIGTERM while targets exist, and 1.0.85 can segfault deleting an iSER target
    # whose connection is in time-wait: the guest is thrown away, so kill -9 is the clean end.
    at_exit "kill -9 $pid"
}

tgt_target() { tgtadm --lld "$1" --mode target --op new --tid "$2" --targetname "$3"; }

tgt_lun() {
    tgtadm --lld "$1" --mode logicalunit --op new --tid "$2" --lun "$3" --backing-store "$4" --blocksize "${5:-512}"
}

tgt_allow() {
    local lld=$1 tid=$2; shift 2
    tgtadm --lld "$lld" --mode target --op bind --tid "$tid" --initiator-address ALL
    for iqn in "$@"; do tgtadm --lld "$lld" --mode target --op bind --tid "$tid" --initiator-name "$iqn"; done
}


# The kernel initiator's name (open-iscsi); the host's file is used when present, else a fixed one.
kernel_initiator_name() {
    if [ -r /etc/iscsi/initiatorname.iscsi ] && grep -q '^InitiatorName=' /etc/iscsi/initiatorname.iscsi; then
        sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi
    else
        mkdir -p /etc/iscsi
        echo "InitiatorName=iqn.2024-01.test.iserblockd:kernel-initiator" > /etc/iscsi/initiatorname.iscsi
        echo iqn.2024-01.test.iserblockd:kernel-initiator
    fi
}

# The SCSI disk (sdX) the kernel created for LUN of the one logged-in session.
iscsi_disk_for_lun() {
    local lun=$1 d
    for d in /sys/class/scsi_disk/*:*:*:"$lun"; do
        [ -d "$d/device/block" ] && ls "$d/device/block" && return 0
    done
    return 1
}
