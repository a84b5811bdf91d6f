#!/usr/bin/env python3
"""Three targets vs one: proxy CPU per request of the small3 scenario (the 13-byte body through
three targets, round robin) next to the single-target small scenario, per proxy.

Reads the samples.tsv that bench/run.sh writes (scenario proxy round rps p50_us p99_us requests
cpu_ticks hwm_kb seconds) and prints a table to append to the report: for each proxy the median
over rounds of CPU per request (utime+stime ticks converted to microseconds, divided by the
requests wrk completed) for small and small3, their ratio, and whether small3 stays within 10%
of small (the issue's goal for Portico).

Usage: targets.py --samples FILE --clk-tck N
"""

import argparse
import statistics
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", required=True)
    ap.add_argument("--clk-tck", type=float, default=100.0)
    args = ap.parse_args()
    cpu = {}
    proxies = []
    with open(args.samples) as f:
        for ln in f:
            r = ln.rstrip("\n").split("\t")
            if len(r) < 10 or r[0] not in ("small", "small3"):
                continue
            reqs, ticks = int(r[6]), int(r[7])
            if r[1] not in proxies:
                proxies.append(r[1])
            if reqs:
                cpu.setdefault((r[0], r[1]), []).append(ticks * 1e6 / args.clk_tck / reqs)
    out = ["== three targets vs one: proxy CPU per request, small3 / small (median of rounds)",
           "%-16s %14s %14s %9s  %s" % ("proxy", "small (1)", "small3 (3)", "ratio",
                                         "within 10%")]
    for p in proxies:
        one, three = cpu.get(("small", p)), cpu.get(("small3", p))
        if not one or not three:
            continue
        a, b = statistics.median(one), statistics.median(three)
        ratio = b / a if a else float("nan")
        out.append("%-16s %11.1f us %11.1f us %9.2f  %s" % (p, a, b, ratio,
                                                             "yes" if ratio <= 1.10 else "NO"))
        out.append("%-16s rounds: small %s; small3 %s" % (
            "", " ".join("%.1f" % v for v in one), " ".join("%.1f" % v for v in three)))
    out.append("")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
