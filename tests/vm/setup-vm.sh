#!/usr/bin/env bash
# setup-vm.sh — prepare the kernel test bed once: the Debian 6.1 kernel image unpacked into the
# cache (never into the host's /boot or /lib/modules), its modules indexed with depmod -b, and a
# busybox initramfs that mounts the host's root read-only over 9p with a tmpfs overlay.
#
#   tests/vm/setup-vm.sh            idempotent; prints the kernel directory and initramfs path
#   tests/vm/setup-vm.sh --force    unpack and rebuild even if the cache looks complete
#   IBD_VM_KERNEL_SERIES=6.12 tests/vm/setup-vm.sh
#                                   the newest linux-image-6.12.*+deb12-amd64 of the same Debian 12 archive
#                                   instead (it has ublk_drv; the 6.1 default has not), kept beside the default in
#                                   kernel-6.12/ with current-6.12.env; its .ko.xz boot modules are decompressed
#                                   for the busybox initramfs (modprobe in the guest reads .xz itself)
#
# Everything lands in $IBD_VM_CACHE (default /var/cache/iserblockd-vm, else tests/vm/.cache):
#   kernel/<package>/            dpkg -x of linux-image-<ver>, plus .complete when depmod finished
#   initramfs-<kver>-<hash>.cpio.gz  keyed by kernel version and the stage-1 init's content
#   current.env                  KDIR/KVER/INITRD for run-vm.sh
# Works from nothing on a fresh machine (needs only apt access); reuses the cache otherwise,
# and falls back to an already unpacked kernel when the package cannot be downloaded.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/common.sh"
FORCE=0
[ "${1:-}" = --force ] && FORCE=1

for tool in qemu-system-x86_64 busybox cpio depmod modprobe dpkg apt-get gzip xz flock; do
    command -v "$tool" >/dev/null || vm_die "$tool is missing: run ./setup.sh --no-demo (it installs the test bed's packages)"
done
[ -x /bin/busybox ] || vm_die "/bin/busybox is missing: install busybox-static"

SERIES=${IBD_VM_KERNEL_SERIES:-}
SUFFIX=${SERIES:+-$SERIES}
KROOT=$IBD_VM_CACHE/kernel$SUFFIX
DL=$IBD_VM_CACHE/dl$SUFFIX
ENVFILE=$IBD_VM_CACHE/current$SUFFIX.env
mkdir -p "$KROOT" "$DL"
# one setup at a time per cache (parallel test runs share it)
exec 9> "$IBD_VM_CACHE/.lock"
flock -w 600 9 || vm_die "cache $IBD_VM_CACHE is locked by another setup for 10 minutes"

# The exact image package behind the linux-image-amd64 meta package (Debian 12: linux-image-6.1.0-N-amd64).
# With a series: the package behind linux-image-SERIES-amd64 (Debian 12: linux-image-6.12.N+deb12-amd64).
META=linux-image${SERIES:+-$SERIES}-amd64
resolve_package() { apt-cache depends "$META" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
KPKG=${IBD_VM_KERNEL_PACKAGE:-$(resolve_package || true)}
if [ -z "$KPKG" ]; then
    vm_log "apt lists do not know linux-image-amd64 yet: apt-get update"
    apt-get update -q >/dev/null 2>&1 || true
    KPKG=$(resolve_package || true)
fi
if [ -z "$KPKG" ]; then
    # offline: use the newest kernel already unpacked
    KPKG=$(ls -1 "$KROOT" 2>/dev/null | sort -V | tail -n1 || true)
    [ -n "$KPKG" ] && [ -f "$KROOT/$KPKG/.complete" ] ||
        vm_die "cannot resolve the Debian kernel package (no apt access and nothing cached)"
    vm_log "no apt access: using cached $KPKG"
fi
KVER=${KPKG#linux-image-}
KDIR=$KROOT/$KPKG

if [ "$FORCE" = 1 ] || [ ! -f "$KDIR/.complete" ]; then
    t0=$(date +%s.%N)
    rm -rf "$KDIR" "$KDIR.tmp"
    if ! ls "$DL/${KPKG}"_*.deb >/dev/null 2>&1 &&
       ! (cd "$DL" && apt-get download -q "$KPKG" >/dev/null 2>&1); then
        # stale apt lists: the mirror moved on to a newer kernel; refresh, resolve again, retry
        vm_log "apt-get download $KPKG failed: apt-get update and resolve again"
        apt-get update -q >/dev/null 2>&1 || true
        KPKG=${IBD_VM_KERNEL_PACKAGE:-$(resolve_package || true)}
        [ -n "$KPKG" ] || vm_die "cannot resolve the Debian kernel package after apt-get update"
        KVER=${KPKG#linux-image-}
        KDIR=$KROOT/$KPKG
        rm -rf "$KDIR" "$KDIR.tmp"
        (cd "$DL" && apt-get download -q "$KPKG") || vm_die "apt-get download $KPKG failed"
    fi
    deb=$(ls "$DL/${KPKG}"_*.deb | head -n1)
    vm_log "unpacking $(basename "$deb") into $KDIR"
    dpkg -x "$deb" "$KDIR.tmp"
    [ -f "$KDIR.tmp/boot/vmlinuz-$KVER" ] || vm_die "$deb has no boot/vmlinuz-$KVER"
    depmod -b "$KDIR.tmp" "$KVER"
    touch "$KDIR.tmp/.complete"
    mv "$KDIR.tmp" "$KDIR"
    rm -f "$deb"      # 68 MB; the unpacked tree is what we keep
    # drop other kernel versions so the cache does not grow with every Debian point release
    for old in "$KROOT"/*; do [ "$old" = "$KDIR" ] || rm -rf "$old"; done
    vm_log "kernel $KVER ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
fi

# --- initramfs: only what it takes to reach the host's root --------------------------------------
INIT=$VM_DIR/guest/init
hash=$(cat "$INIT" /bin/busybox | sha256sum | cut -c1-12)
INITRD=$IBD_VM_CACHE/initramfs-$KVER-$hash.cpio.gz
if [ "$FORCE" = 1 ] || [ ! -s "$INITRD" ]; then
    work=$(mktemp -d "$IBD_VM_CACHE/initramfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work"/{bin,dev,proc,sys,lower,upper,newroot,modules}
    cp /bin/busybox "$work/bin/busybox"
    # virtio transport, console, 9p and overlayfs, each after its dependencies (busybox insmod
    # does not resolve them); Debian 6.1 ships uncompressed .ko files, 6.12 .ko.xz, which busybox's
    # insmod cannot read: those are decompressed here.
    for m in virtio_pci virtio_console 9pnet_virtio 9p overlay; do
        modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
    done | awk '!seen[$0]++' | while read -r ko; do
        name=$(basename "${ko%.xz}")
        case $ko in *.xz) xz -dc "$ko" > "$work/modules/$name" ;; *) cp "$ko" "$work/modules/" ;; esac
        echo "$name" >> "$work/modules/order"
    done
    [ -s "$work/modules/order" ] || vm_die "no boot modules found under $KDIR"
    install -m 0755 "$INIT" "$work/init"
    (cd "$work" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$INITRD.tmp"
    mv "$INITRD.tmp" "$INITRD"
    for old in "$IBD_VM_CACHE"/initramfs-"$KVER"-*.cpio.gz; do [ "$old" = "$INITRD" ] || rm -f "$old"; done
    vm_log "initramfs $(basename "$INITRD") built ($(du -h "$INITRD" | cut -f1))"
fi

cat > "$ENVFILE.tmp" <<ENV
KDIR=$KDIR
KVER=$KVER
INITRD=$INITRD
ENV
mv "$ENVFILE.tmp" "$ENVFILE"
echo "kernel $KVER: $KDIR"
echo "initramfs: $INITRD"
