#!/usr/bin/env bash
# systemd/install.sh — install iserblockd as a systemd service (run as root).
#
#   systemd/install.sh               publish NativeAOT binaries, install them, the unit and the configuration
#   systemd/install.sh --no-publish  install binaries already published in artifacts/bin (by setup.sh)
#   systemd/install.sh --enable      also enable and start the service
#   systemd/install.sh --uninstall   stop and remove the service and the binaries (configuration is kept)
#   DESTDIR=/tmp/root systemd/install.sh ...   install under another root (packaging, tests): no systemctl
#
# Installs:
#   /usr/local/lib/iserblockd/{iserblockd,iserblockctl}    + symlinks in /usr/local/bin
#   /etc/systemd/system/iserblockd.service
#   /etc/iserblockd/iserblockd.example.json                 (refreshed every time)
#   /etc/iserblockd/iserblockd.json                         (only if absent: no nodes, edit it)
#   /usr/local/share/doc/iserblockd/README.md
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."

PUBLISH=1 ENABLE=0 UNINSTALL=0
for a in "$@"; do
    case "$a" in
        --no-publish) PUBLISH=0 ;;
        --enable) ENABLE=1 ;;
        --uninstall) UNINSTALL=1 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $a (try --help)" >&2; exit 64 ;;
    esac
done
DESTDIR=${DESTDIR:-}
[ -n "$DESTDIR" ] || [ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 77; }

# Paths as the installed system sees them; files go under $DESTDIR.
LIB=/usr/local/lib/iserblockd BIN=/usr/local/bin DOC=/usr/local/share/doc/iserblockd
UNIT=/etc/systemd/system/iserblockd.service CONF=/etc/iserblockd
systemd_running() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

if [ "$UNINSTALL" = 1 ]; then
    if systemd_running; then systemctl disable --now iserblockd.service 2>/dev/null || true; fi
    rm -f "$DESTDIR$UNIT" "$DESTDIR$BIN/iserblockd" "$DESTDIR$BIN/iserblockctl"
    rm -rf "$DESTDIR$LIB" "$DESTDIR$DOC"
    if systemd_running; then systemctl daemon-reload; fi
    echo "install.sh: removed iserblockd (configuration in $CONF kept)"
    exit 0
fi

OUT=${IBD_BIN_DIR:-artifacts/bin}  # where setup.sh (or the publish below) puts the NativeAOT binaries
if [ "$PUBLISH" = 1 ]; then
    export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1
    for exe in iserblockd iserblockctl; do
        echo "install.sh: publishing $exe (NativeAOT, Release)"
        dotnet publish "daemon/$exe/$exe.csproj" -c Release -r linux-x64 -o "$OUT" -v q -nologo
    done
fi
for exe in iserblockd iserblockctl; do
    [ -x "$OUT/$exe" ] || { echo "install.sh: $OUT/$exe is missing: run without --no-publish (or ./setup.sh --no-demo) first" >&2; exit 1; }
done

install -d -m 0755 "$DESTDIR$LIB" "$DESTDIR$BIN" "$DESTDIR$DOC" "$DESTDIR$(dirname "$UNIT")"
for exe in iserblockd iserblockctl; do
    # install(1) writes a new file, so a running daemon keeps its old binary until it restarts
    install -m 0755 "$OUT/$exe" "$DESTDIR$LIB/$exe"
    ln -sfn "$LIB/$exe" "$DESTDIR$BIN/$exe"
done
install -m 0644 systemd/iserblockd.service "$DESTDIR$UNIT"
install -m 0644 README.md "$DESTDIR$DOC/README.md"
install -m 0644 systemd/grafana-dashboard.json "$DESTDIR$DOC/grafana-dashboard.json"
install -d -m 0700 "$DESTDIR$CONF"
install -m 0600 systemd/iserblockd.example.json "$DESTDIR$CONF/iserblockd.example.json"
if [ ! -e "$DESTDIR$CONF/iserblockd.json" ]; then
    printf '{\n  "nodes": []\n}\n' > "$DESTDIR$CONF/iserblockd.json"
    chmod 0600 "$DESTDIR$CONF/iserblockd.json"
    echo "install.sh: created $CONF/iserblockd.json with no nodes; see $CONF/iserblockd.example.json and $DOC/README.md"
else
    echo "install.sh: kept the existing $CONF/iserblockd.json"
fi
if ! check=$("$DESTDIR$LIB/iserblockd" check-config --config "$DESTDIR$CONF/iserblockd.json" 2>&1 >/dev/null); then
    echo "install.sh: warning: $CONF/iserblockd.json does not pass 'iserblockd check-config' (the service would not start):" >&2
    echo "$check" >&2
fi

# verify resolves ExecStart= on this system, so it only makes sense for a real install
if [ -z "$DESTDIR" ] && command -v systemd-analyze > /dev/null; then
    systemd-analyze verify "$UNIT" || echo "install.sh: warning: systemd-analyze verify reported problems" >&2
fi
if systemd_running; then
    systemctl daemon-reload
    if [ "$ENABLE" = 1 ]; then
        systemctl enable --now iserblockd.service
        systemctl --no-pager status iserblockd.service || true
    fi
else
    echo "install.sh: systemd is not running here; the unit is installed for the next boot"
fi
echo "install.sh: installed $LIB/iserblockd, $LIB/iserblockctl and $UNIT${DESTDIR:+ under $DESTDIR}"
[ "$ENABLE" = 1 ] || echo "install.sh: start it with: systemctl enable --now iserblockd"
