# tests/vm/lib/lio.sh — LIO, the kernel's own iSCSI target, configured through configfs inside the guest
# (sourced after scenario.sh; needs the modules target_core_mod target_core_file iscsi_target_mod).
#   lio_fileio NAME FILE SIZE BS [thin]    a fileio backstore (thin: UNMAP and WRITE SAME punch holes)
#   lio_target IQN                         a target with TPG 1 (authentication off until lio_require_chap)
#   lio_portal IQN ADDRESS[:PORT] [iser]   a network portal ADDRESS:PORT, 3260 by default (iser: also over iSER, ib_isert)
#   lio_lun IQN LUN NAME                   export backstore NAME as LUN
#   lio_acl IQN INITIATOR                  an ACL mapping every LUN to INITIATOR
#   lio_chap IQN INITIATOR USER SECRET [MUTUAL_USER MUTUAL_SECRET]   CHAP credentials of that ACL
#   lio_require_chap IQN                   CHAP required for every login
#   lio_enable IQN 0|1                     enable or disable the TPG (disabling ends its sessions)
LIO=/sys/kernel/config/target
LIO_CORE=$LIO/core/fileio_0
# configfs is a module on Debian's kernel: stage 2 mounts it before the modules load, which fails then
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config

lio_fileio() {
    local name=$1 file=$2 size=$3 bs=$4 thin=${5:-}
    [ -d "$LIO/iscsi" ] || mkdir -p "$LIO/iscsi"
    truncate -s "$size" "$file"
    mkdir -p "$LIO_CORE/$name"
    echo "fd_dev_name=$file,fd_dev_size=$size" > "$LIO_CORE/$name/control"
    # LIO lists its VPD pages (serial, identifiers, Block Limits, provisioning) only once a unit serial is set,
    # as targetcli always does: without one an initiator (ours, the kernel's sd) sees no thin provisioning
    echo "$(cat /proc/sys/kernel/random/uuid)" > "$LIO_CORE/$name/wwn/vpd_unit_serial"
    echo 1 > "$LIO_CORE/$name/enable"
    echo "$bs" > "$LIO_CORE/$name/attrib/block_size"
    if [ "$thin" = thin ]; then
        echo 1 > "$LIO_CORE/$name/attrib/emulate_tpu"
        echo 1 > "$LIO_CORE/$name/attrib/emulate_tpws"
        # LBPRZ: fileio deallocates with fallocate(PUNCH_HOLE), and a punched range of a file reads zeroes; LIO sets
        # the bit only when told (and only before the backstore is exported)
        echo 1 > "$LIO_CORE/$name/attrib/unmap_zeroes_data"
    fi
}

lio_tpg() { echo "$LIO/iscsi/$1/tpgt_1"; }

lio_target() {
    local tpg
    tpg=$(lio_tpg "$1")
    mkdir -p "$tpg"
    echo 0 > "$tpg/attrib/authentication"
    echo 0 > "$tpg/attrib/generate_node_acls"
    echo 0 > "$tpg/attrib/demo_mode_write_protect"
}

lio_portal() {
    local np endpoint=$2
    [[ $endpoint == *:* ]] || endpoint=$endpoint:3260
    np=$(lio_tpg "$1")/np/$endpoint
    mkdir -p "$np"
    [ "${3:-}" = iser ] && echo 1 > "$np/iser"
    return 0
}

lio_lun() { mkdir -p "$(lio_tpg "$1")/lun/lun_$2"; ln -s "$LIO_CORE/$3" "$(lio_tpg "$1")/lun/lun_$2/$3"; }

lio_acl() {
    local tpg acl lun
    tpg=$(lio_tpg "$1")
    acl=$tpg/acls/$2
    mkdir -p "$acl"
    for lun in "$tpg"/lun/lun_*; do
        mkdir -p "$acl/$(basename "$lun")"
        ln -s "$lun" "$acl/$(basename "$lun")/mapped"
    done
}

lio_chap() {
    local auth
    auth=$(lio_tpg "$1")/acls/$2/auth
    echo -n "$3" > "$auth/userid"
    echo -n "$4" > "$auth/password"
    if [ -n "${5:-}" ]; then
        echo -n "$5" > "$auth/userid_mutual"
        echo -n "$6" > "$auth/password_mutual"
    fi
}

lio_require_chap() { echo 1 > "$(lio_tpg "$1")/attrib/authentication"; }

lio_enable() { echo "$2" > "$(lio_tpg "$1")/enable"; }

# lio_sessions IQN: the initiator names with a session on the target (from each ACL's info)
lio_sessions() { grep -h "InitiatorName:" "$(lio_tpg "$1")"/acls/*/info 2>/dev/null | awk '{print $NF}' || true; }
