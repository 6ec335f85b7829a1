#!/usr/bin/env bash
# run-scenarios.sh — the scenarios in tests/vm/scenarios/, what ./test.sh runs.
#
#   tests/vm/run-scenarios.sh                 all scenarios
#   tests/vm/run-scenarios.sh reference iser  only these (file names without .sh)
#
# Scenarios that name the same "# vm-group: NAME" run one after the other in one guest (a boot under TCG
# costs 20-40 s of the CI budget); each still has its own process, timeout, verdict and logs, and the kernel
# log is cleared between them. A scenario without a group gets a guest of its own.
# Before booting anything it publishes, NativeAOT on the host, every project a scenario names in a
# "# vm-publish: path/to/Project.csproj" header into artifacts/bin (nothing is built in the guest).
# Exit 77 from a scenario counts as skipped (reported, not passed). Any failure makes this script
# exit non-zero after printing the failed scenario's output tail and where its logs are.
set -uo pipefail
. "$(dirname "$(realpath "$0")")/lib/common.sh"
cd "$REPO_ROOT"
BUDGET=${IBD_VM_BUDGET:-900}
t0=$(date +%s)

scenarios=()
if [ $# -gt 0 ]; then
    for n in "$@"; do
        f=$VM_DIR/scenarios/${n%.sh}.sh
        [ -f "$f" ] || vm_die "no scenario $f"
        scenarios+=("$f")
    done
else
    for f in "$VM_DIR"/scenarios/*.sh; do [ -f "$f" ] && scenarios+=("$f"); done
fi
[ ${#scenarios[@]} -gt 0 ] || vm_die "no scenarios in $VM_DIR/scenarios"

ts=$(date +%s.%N)
"$VM_DIR/setup-vm.sh" >/dev/null || vm_die "test bed setup failed"
# kernels other than the default that scenarios ask for ("# vm-kernel: 6.12")
for k in $(for f in "${scenarios[@]}"; do sed -n 's/^# vm-kernel:[[:space:]]*//p' "$f"; done | sort -u); do
    IBD_VM_KERNEL_SERIES=$k "$VM_DIR/setup-vm.sh" >/dev/null || vm_die "test bed setup of kernel $k failed"
done
setup_secs=$(awk -v a="$ts" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')

ts=$(date +%s.%N)
mkdir -p "$IBD_VM_LOGS"    # the publish log sits beside it: a fresh checkout has no artifacts/ yet
projects=$(for f in "${scenarios[@]}"; do sed -n 's/^# vm-publish:[[:space:]]*//p' "$f"; done | tr ' ' '\n' | sed '/^$/d' | sort -u)
for p in $projects; do
    [ -f "$p" ] || vm_die "scenario wants to publish $p, which does not exist"
    vm_log "publishing $p (NativeAOT) into $IBD_BIN"
    DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1 \
        dotnet publish "$p" -c Release -r linux-x64 -o "$IBD_BIN" -v q -nologo >"$IBD_VM_LOGS.publish.log" 2>&1 ||
        { cat "$IBD_VM_LOGS.publish.log" >&2; vm_die "publishing $p failed"; }
done
publish_secs=$(awk -v a="$ts" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')

# groups in the order their first scenario comes
groups=()
declare -A members=()
for f in "${scenarios[@]}"; do
    g=$(sed -n 's/^# vm-group:[[:space:]]*//p' "$f" | head -n1)
    g=${g:-$(basename "$f" .sh)}
    [ -n "${members[$g]+x}" ] || groups+=("$g")
    members[$g]+="$f "
done

passed=0 failed=0 skipped=0 summary=() boots=()
for g in "${groups[@]}"; do
    read -ra files <<< "${members[$g]}"
    "$VM_DIR/run-vm.sh" -n "$g" "${files[@]}"
    boots+=("$(printf '%-28s %7ss  (%d scenario(s) in one guest, boot and power-off included)' "guest $g" \
        "$(cat "$IBD_VM_LOGS/group-$g/seconds" 2>/dev/null || echo "?")" ${#files[@]})")
    for f in "${files[@]}"; do
        name=$(basename "$f" .sh)
        rc=$(cat "$IBD_VM_LOGS/$name/rc" 2>/dev/null || echo 255)
        secs=$(cat "$IBD_VM_LOGS/$name/seconds" 2>/dev/null || echo "?")
        case $rc in
            0) passed=$((passed + 1)); verdict=PASS ;;
            77) skipped=$((skipped + 1)); verdict=SKIP
                verdict+=" ($(grep -m1 '^SKIPPED:' "$IBD_VM_LOGS/$name/output.log" | sed 's/^SKIPPED: //'))" ;;
            *) failed=$((failed + 1)); verdict="FAIL (exit $rc)"
               { echo "---------- $name FAILED (exit $rc); last 40 lines of its output:"
                 tail -n 40 "$IBD_VM_LOGS/$name/output.log"
                 echo "---------- logs: $IBD_VM_LOGS/$name/ (output.log, boot.log, dmesg.log, *.log)"; } >&2 ;;
        esac
        # the requirements a scenario proves, by name ("CHECK name: what" lines of its output)
        checks=$(sed -n 's/^CHECK \([^:]*\):.*/\1/p' "$IBD_VM_LOGS/$name/output.log" 2>/dev/null | paste -sd, -)
        summary+=("$(printf '%-28s %7ss  %s%s' "$name" "$secs" "$verdict" "${checks:+  [$checks]}")")
    done
done

total=$(( $(date +%s) - t0 ))
echo
echo "VM scenarios (setup ${setup_secs}s, publish ${publish_secs}s, total ${total}s of a ${BUDGET}s budget):"
printf '  %s\n' "${summary[@]}" "${boots[@]}"
[ "$total" -le "$BUDGET" ] || echo "WARNING: the VM scenarios took ${total}s, over the ${BUDGET}s CI budget" >&2
echo "vm-scenarios: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
