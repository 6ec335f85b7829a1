#!/usr/bin/env bash
# vm-rxe: yes
# vm-modules: nbd
# vm-timeout: 120
#
# iser: our initiator over iSER on soft-RoCE, then the kernel NBD scenario on the iSER LUN.
# Placeholder until the iSER transport lands (issue 6): it reports itself skipped, never passed.
. "$IBD_VM_LIB/scenario.sh"
skip "iSER transport (issue 6) not implemented yet"
