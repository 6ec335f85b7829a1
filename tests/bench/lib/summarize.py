#!/usr/bin/env python3
"""tests/bench/lib/summarize.py — the table and RESULT line of a benchmark that ran tests/bench/lib/rounds.sh.

usage: summarize.py DIR ROUNDS FIRST OTHER [OTHER ...] [--title LINE]...

Reads DIR/WORKLOAD-SIDE-ROUND.json (fio JSON) and, where present, DIR/WORKLOAD-SIDE-ROUND.cpu (clock ticks the
side's server used during that run, ramp excluded) and DIR/WORKLOAD-SIDE-syscalls.calls with its .json (system calls
of the side's server during a short run under strace). Each ratio compares FIRST with one OTHER and is higher-is-better for FIRST
(IOPS and MB/s: first/other; latency: other/first); it is the median of the per-round ratios, since the two were
measured seconds apart within a round, which cancels most of the noise of a shared machine. Last line:
  RESULT randread_iops_ratio=X randwrite_iops_ratio=X seqread_mbps_ratio=X qd1_latency_ratio=X
         cpu_per_io_randread_ratio=X cpu_per_io_randwrite_ratio=X cpu_per_io_seqread_ratio=X
(the CPU ratios: OTHER's server CPU per I/O over FIRST's, medians of the per-round ratios) with one OTHER, or FIRST_vs_OTHER_randread_iops_ratio=X ... for each OTHER when there are several.
Where DIR/qd1-direct-ROUND.iops exist (4 KiB random reads at QD1 straight to the target, no NBD server: the floor
of QD1 latency for a client that sleeps in poll(2) between sending and the answer, as libiscsi does), they are printed
too, and with one OTHER the RESULT line ends in qd1_latency_ratio_ceiling=X: the median per round of OTHER's QD1
latency over that floor, the qd1_latency_ratio of a server that added nothing to such a client (a server that polls
instead of sleeping can go past it).
"""
import json
import os
import statistics
import sys

ROWS = [
    ("randread", "4 KiB random read, QD32", "IOPS", "randread_iops", False),
    ("randwrite", "4 KiB random write, QD32", "IOPS", "randwrite_iops", False),
    ("seqread", "1 MiB sequential read, QD8", "MB/s", "seqread_mbps", False),
    ("qd1", "4 KiB random read, QD1", "mean lat. us", "qd1_latency", True),
]


def main(argv):
    titles = []
    args = []
    it = iter(argv)
    for a in it:
        if a == "--title":
            titles.append(next(it))
        else:
            args.append(a)
    work, rounds, sides = args[0], int(args[1]), args[2:]
    first, others = sides[0], sides[1:]
    hz = os.sysconf("SC_CLK_TCK")

    def job(name):
        with open(f"{work}/{name}.json") as f:
            return json.load(f)["jobs"][0]

    def figures(workload, side):
        values = []
        for r in range(1, rounds + 1):
            j = job(f"{workload}-{side}-{r}")
            part = j["write"] if workload == "randwrite" else j["read"]
            if workload in ("randread", "randwrite"):
                values.append(part["iops"])
            elif workload == "seqread":
                values.append(part["bw_bytes"] / 1e6)
            else:
                values.append(part["lat_ns"]["mean"] / 1000.0)
        return values

    def round_median(workload, side, suffix, value):
        # median over the rounds of value(fio job, contents of DIR/WORKLOAD-SIDE-ROUND<suffix>); None if a file is missing
        values = []
        for r in range(1, rounds + 1):
            name = f"{workload}-{side}-{r}"
            path = f"{work}/{name}{suffix}"
            if not os.path.exists(path):
                return None
            with open(path) as f:
                values.append(value(job(name), f.read()))
        return statistics.median(values)

    def busy(workload, side):
        def percent(_, text):
            b, t = (int(x) for x in text.split())
            return 100.0 * b / max(t, 1)
        return round_median(workload, side, ".cpu.busy", percent)

    def cpu_per_io(workload, side, suffix=""):
        return round_median(workload, side, ".cpu" + suffix, lambda j, text:
                         int(text) * 1e6 / hz / max(j["read"]["total_ios"] + j["write"]["total_ios"], 1))

    for t in titles:
        print(t)
    with open("/proc/loadavg") as f:
        print(f"{rounds} round(s), medians; load average now {' '.join(f.read().split()[:3])}; "
              f"ratios: {first}/other (latency: other/{first}), higher is better for {first} on every line")
    head = f"{'workload':<28} {'unit':<13}" + "".join(f" {s:>10}" for s in sides) + "".join(f" {first + '/' + o:>12}" for o in others)
    print(head)
    ratios = {}
    for key, title, unit, _, lower in ROWS:
        fig = {s: figures(key, s) for s in sides}
        line = f"{title:<28} {unit:<13}" + "".join(f" {statistics.median(fig[s]):>10.1f}" for s in sides)
        for o in others:
            per_round = [(b / a) if lower else (a / b) for a, b in zip(fig[first], fig[o])]
            ratios[(key, o)] = statistics.median(per_round)
            line += f" {ratios[(key, o)]:>12.2f}"
        print(line + "   per round: " + " | ".join(f"{s} " + ", ".join(f"{v:.1f}" for v in fig[s]) for s in sides))
    def table(heading, values, fmt):
        if all(v is None for v in values.values()):
            return
        print(heading)
        for key, title, *_ in ROWS:
            print(f"{title:<28} {'':<13}" + "".join(
                f" {values[(key, s)]:>10{fmt}}" if values[(key, s)] is not None else f" {'-':>10}" for s in sides))

    table("CPU time of each server per I/O (us, user + system, ramp excluded, medians; lower is better):",
          {(k, s): cpu_per_io(k, s) for k, *_ in ROWS for s in sides}, ".1f")
    table("CPU time of the target per I/O while each side ran (us, medians):",
          {(k, s): cpu_per_io(k, s, ".target") for k, *_ in ROWS for s in sides}, ".1f")
    def loop_share(workload, side):
        # the fraction of one CPU the target's main thread used: near 100, the target's event loop is the ceiling;
        # fio's runtime plus the 2 s ramp, which the ticks include
        return round_median(workload, side, ".cpu.target-loop", lambda j, text:
                         100.0 * int(text) / hz / ((j["job_runtime"] / 1000.0) + 2))

    table("share of one CPU the target's main thread (its event loop) used while each side ran (%, medians):",
          {(k, s): loop_share(k, s) for k, *_ in ROWS for s in sides}, ".0f")
    table("how busy the machine's CPUs were while each side ran (%, all CPUs, medians; near 100: CPU-bound):",
          {(k, s): busy(k, s) for k, *_ in ROWS for s in sides}, ".0f")
    def cpu_ratio(workload, other):
        # median over the rounds of other's CPU per I/O over ours: higher is better for FIRST, like the other ratios
        per_round = []
        for r in range(1, rounds + 1):
            values = []
            for side in (first, other):
                path = f"{work}/{workload}-{side}-{r}.cpu"
                if not os.path.exists(path):
                    return None
                j = job(f"{workload}-{side}-{r}")
                with open(path) as f:
                    values.append(int(f.read()) / max(j["read"]["total_ios"] + j["write"]["total_ios"], 1))
            per_round.append(values[1] / values[0] if values[0] > 0 else float("inf"))
        return statistics.median(per_round)

    def syscalls(workload, side):
        path = f"{work}/{workload}-{side}-syscalls.calls"
        if not os.path.exists(path) or not os.path.exists(f"{work}/{workload}-{side}-syscalls.json"):
            return None
        with open(path) as f:
            text = f.read().strip()
        if not text.isdigit():
            return None
        j = job(f"{workload}-{side}-syscalls")
        return int(text) / max(j["read"]["total_ios"] + j["write"]["total_ios"], 1)

    calls = {(k, s): syscalls(k, s) for k in ("randread", "randwrite") for s in sides}
    if any(v is not None for v in calls.values()):
        print("system calls of each server per I/O (strace -c -f, separate 3 s runs at QD32; lower is better):")
        for key, title, *_ in ROWS[:2]:
            print(f"{title:<28} {'':<13}" + "".join(
                f" {calls[(key, s)]:>10.2f}" if calls[(key, s)] is not None else f" {'-':>10}" for s in sides)
                + "   I/Os per call: " + ", ".join(
                f"{s} {1 / calls[(key, s)]:.2f}" for s in sides if calls[(key, s)]))
    direct = []
    for r in range(1, rounds + 1):
        path = f"{work}/qd1-direct-{r}.iops"
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            if text.replace(".", "", 1).isdigit() and float(text) > 0:
                direct.append((r, 1e6 / float(text)))
    ceiling = None
    if direct:
        print(f"QD1 floor, 4 KiB random reads one at a time straight to the target (iscsi-perf, no NBD server): mean "
              f"{statistics.median(v for _, v in direct):.1f} us   per round: " + ", ".join(f"{v:.1f}" for _, v in direct))
        if len(others) == 1:
            per_round = [job(f"qd1-{others[0]}-{r}")["read"]["lat_ns"]["mean"] / 1000.0 / v for r, v in direct]
            ceiling = statistics.median(per_round)
            print(f"qd1_latency_ratio of an NBD server that added nothing to a client sleeping in poll(2) ({others[0]}'s QD1 "
                  f"latency over that): {ceiling:.2f}; one that polls instead of sleeping can go past it")
    prefix = (lambda o: "") if len(others) == 1 else (lambda o: f"{first}_vs_{o}_")
    result = [f"{prefix(o)}{name}_ratio={ratios[(key, o)]:.2f}" for o in others for key, _, _, name, _ in ROWS]
    for o in others:
        for key in ("randread", "randwrite", "seqread"):
            r = cpu_ratio(key, o)
            if r is not None:
                result.append(f"{prefix(o)}cpu_per_io_{key}_ratio={r:.2f}")
    if ceiling is not None:
        result.append(f"qd1_latency_ratio_ceiling={ceiling:.2f}")
    print("RESULT " + " ".join(result))


if __name__ == "__main__":
    main(sys.argv[1:])
