#!/usr/bin/env python3
"""notify-listener.py SOCKET LOG: plays systemd's side of sd_notify for a daemon started with NOTIFY_SOCKET=SOCKET.

Every datagram becomes one line of LOG: "<unix time> <assignments, space-separated>". On READY=1 the line also
lists the NBD devices the kernel has configured at that very moment ("devices-at-ready: nbd0=BACKEND ..."), so a
scenario can check that READY=1 came only after the daemon's /dev/nbdX devices existed, as Type=notify promises."""
import glob
import os
import socket
import sys
import time

path, log = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
with open(log, "a", buffering=1) as out:
    while True:
        message = sock.recv(65536).decode(errors="replace")
        fields = [f for f in message.split("\n") if f]
        line = " ".join(fields)
        if "READY=1" in fields:
            devices = []
            for backend in sorted(glob.glob("/sys/block/nbd*/backend")):
                try:
                    with open(backend) as f:
                        value = f.read().strip()
                except OSError:
                    continue
                if value:
                    devices.append(backend.split("/")[3] + "=" + value)
            line += " | devices-at-ready: " + " ".join(devices)
        out.write(f"{time.time():.3f} {line}\n")
