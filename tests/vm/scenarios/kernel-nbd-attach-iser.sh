#!/usr/bin/env bash
# vm-group: main
# vm-rxe: yes
# vm-modules: nbd
# vm-timeout: 480
# vm-publish: daemon/iserblockd/iserblockd.csproj daemon/iserblockctl/iserblockctl.csproj
#
# kernel-nbd-attach-iser: the whole kernel NBD scenario (kernel-nbd-attach.sh: the daemon from a config with
# "device": "auto", mkfs and mount, iserblockctl unmap, daemon crash/stop/freeze under a mounted writer with
# NBD_CMD_RECONFIGURE, the ioctl path) on LUNs that tgtd serves over iSER, the daemon logged in with
# "transport": "iser" over soft-RoCE.
KNBD_TRANSPORT=iser exec bash "$(dirname "$(realpath "$0")")/kernel-nbd-attach.sh"
