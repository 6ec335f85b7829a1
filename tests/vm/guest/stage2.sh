#!/bin/bash
# Stage 2, PID 1 inside the guest once the initramfs has switched to the overlay root (the host's /
# read-only over 9p + tmpfs). Read from the host on every boot: edit freely, no rebuild needed.
#
# The kernel command line carries only VM_RUNDIR (the per-run directory, shared read-write at the
# same path) and VM_STAGE2; everything else comes from $VM_RUNDIR/env, written by run-vm.sh:
#   VM_KDIR VM_MODS VM_RXE VM_TIMEOUT VM_CWD VM_RWDIRS and the scenario's exported variables.
# The command is $VM_RUNDIR/cmd; its output goes to the virtio console (run-vm.sh's stdout), its
# exit code to $VM_RUNDIR/rc, the kernel log to $VM_RUNDIR/dmesg.log. Stage 2's own notes and the
# kernel's console go to ttyS0 (boot.log).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8

note() { echo "[stage2 $(cut -d' ' -f1 /proc/uptime)s] $*" > /dev/ttyS0; }
poweroff_now() { sync; echo o > /proc/sysrq-trigger; sleep 30; }
die() { note "FATAL: $*"; echo "vm: FATAL: $*" > /dev/hvc0; poweroff_now; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
# devtmpfs lacks the /proc links that bash process substitution and "-" file names rely on
ln -sfn /proc/self/fd /dev/fd; ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout; ln -sfn /proc/self/fd/2 /dev/stderr
mount -t devpts -o ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run                  # fresh /run: tgtd, iscsid and our daemon put sockets here
mkdir -p /run/lock /run/lock/iscsi
mount -t configfs configfs /sys/kernel/config 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo 1 > /proc/sys/kernel/sysrq

mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 vmrun "$VM_RUNDIR" || die "cannot mount the run directory"
[ -f "$VM_RUNDIR/env" ] || die "no $VM_RUNDIR/env"
set -a; . "$VM_RUNDIR/env"; set +a
note "root mounted, run dir $VM_RUNDIR"

# modprobe reads the unpacked Debian tree (the host itself has no /lib/modules for this kernel)
mkdir -p /lib/modules
ln -sfn "$VM_KDIR/lib/modules/$(uname -r)" "/lib/modules/$(uname -r)"

i=0
IFS=, read -ra RW <<< "${VM_RWDIRS:-}"
for dir in "${RW[@]}"; do
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 "rw$i" "$dir" || die "cannot mount rw$i on $dir"
    i=$((i + 1))
done

hostname iserblockd-vm
ip link set lo up

IFS=, read -ra MODS <<< "${VM_MODS:-}"
for m in "${MODS[@]}"; do
    [ -n "$m" ] || continue
    modprobe $m || die "modprobe $m failed"      # unquoted: "nbd nbds_max=8" carries parameters
done

# Soft-RoCE: a veth pair (rxe on lo does not route) with an rxe device on each end. Addresses live
# only inside the guest, which has no network device to the outside.
if [ "${VM_RXE:-0}" = 1 ]; then
    for m in rdma_rxe rdma_ucm ib_uverbs; do modprobe "$m" || die "modprobe $m failed"; done
    ip link add vm-veth0 type veth peer name vm-veth1 || die "veth"
    ip addr add 10.99.0.1/24 dev vm-veth0
    ip addr add 10.99.0.2/24 dev vm-veth1
    ip link set vm-veth0 up && ip link set vm-veth1 up
    rdma link add rxe0 type rxe netdev vm-veth0 || die "rdma link add rxe0 failed"
    rdma link add rxe1 type rxe netdev vm-veth1 || die "rdma link add rxe1 failed"
fi
note "setup done, running the command (timeout ${VM_TIMEOUT:-600} s)"

cd "${VM_CWD:-/}" 2>/dev/null || cd /
timeout -k 10 "${VM_TIMEOUT:-600}" setsid bash "$VM_RUNDIR/cmd" < /dev/null > /dev/hvc0 2>&1
rc=$?
[ "$rc" = 124 ] && echo "vm: the command did not finish within ${VM_TIMEOUT:-600} s (guest timeout)" > /dev/hvc0
note "command exited with $rc"
dmesg > "$VM_RUNDIR/dmesg.log" 2>&1
echo "$rc" > "$VM_RUNDIR/rc"
poweroff_now
