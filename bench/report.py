#!/usr/bin/env python3
"""Parsing and reporting for the Portico-vs-nginx benchmark (bench/run.sh).

  report.py parse WRK_OUTPUT
      prints "rps p50_us p99_us requests non2xx sockerr" from one `wrk --latency` run
  report.py table --samples S.tsv [--callgrind C.tsv] [--idle I.tsv] [--meta K=V ...]
      prints the side-by-side table: the median of each metric over the rounds, per proxy, and
      the ratio of the first proxy (the "portico" slot) to the second (nginx).

samples.tsv columns: scenario proxy round rps p50_us p99_us requests cpu_ticks hwm_kb seconds
    (in the handshake scenario, https_new, rps and requests count new TLS handshakes and the
    latencies are "-": s_time measures none)
callgrind.tsv columns: proxy n ir           (one line per run; Ir total of the run)
idle.tsv columns: proxy conns rss_before_kb rss_after_kb sample_ok sample_total
"""

import argparse
import re
import statistics
import sys

UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}

# Scenarios whose unit of work is a new TLS handshake (openssl s_time -new), not a request.
HANDSHAKE_SCENARIOS = {"https_new"}
# Scenarios where Portico serves files itself; the report says whether its CPU per request is at
# or below nginx's (the goal of issue 5).
STATIC_SCENARIOS = ("static1k", "static1m")


def opt_float(text):
    return None if text == "-" else float(text)


def parse_duration_us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"bad wrk duration {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(text):
    """Return a dict with rps, p50_us, p99_us, requests, non2xx, sockerr from wrk output."""
    out = {"non2xx": 0, "sockerr": 0}
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if not m:
        raise ValueError("no Requests/sec line in wrk output")
    out["rps"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in", text, re.M)
    if not m:
        raise ValueError("no request count in wrk output")
    out["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if not m:
            raise ValueError(f"no {pct}% latency in wrk output (was --latency given?)")
        out[key] = parse_duration_us(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["sockerr"] = sum(int(g) for g in m.groups())
    return out


def cmd_parse(args):
    with open(args.file, encoding="utf-8", errors="replace") as f:
        r = parse_wrk(f.read())
    print(r["rps"], r["p50_us"], r["p99_us"], r["requests"], r["non2xx"], r["sockerr"])


def read_tsv(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                rows.append(line.split("\t"))
    return rows


def fmt(v, kind):
    if v is None:
        return "-"
    if kind == "rps":
        return f"{v:,.0f}"
    if kind == "us":
        return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} us"
    if kind == "cpu":
        return f"{v:.2f} us"
    if kind == "pct":
        return f"{v:.0f} %"
    if kind == "kb":
        return f"{v / 1024:.1f} MiB"
    if kind == "kib":
        return f"{v:.2f} KiB"
    if kind == "ir":
        return f"{v:,.0f}"
    return str(v)


def ratio(a, b):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return "-"
    return f"{a / b:.2f}"


def line(cols, widths):
    return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                     enumerate(zip(cols, widths)))


def cmd_table(args):
    meta = dict(kv.split("=", 1) for kv in args.meta)
    clk = float(meta.get("clk_tck", "100"))
    rows = read_tsv(args.samples)
    proxies = []
    scenarios = []
    data = {}
    for r in rows:
        scen, proxy = r[0], r[1]
        rps, p50, p99 = float(r[3]), opt_float(r[4]), opt_float(r[5])
        reqs, ticks, hwm, secs = int(r[6]), int(r[7]), int(r[8]), float(r[9])
        if proxy not in proxies:
            proxies.append(proxy)
        if scen not in scenarios:
            scenarios.append(scen)
        d = data.setdefault((scen, proxy), {"rps": [], "p50": [], "p99": [], "cpu": [],
                                            "pct": [], "hwm": []})
        d["rps"].append(rps)
        d["p50"].append(p50)
        d["p99"].append(p99)
        d["cpu"].append(ticks * 1_000_000.0 / clk / reqs if reqs else 0.0)
        d["pct"].append(ticks * 100.0 / clk / secs if secs else 0.0)
        d["hwm"].append(hwm)
    if len(proxies) != 2:
        sys.exit(f"report: expected 2 proxies in {args.samples}, got {proxies}")
    a, b = proxies
    widths = [30, 14, 14, 9]
    out = []
    if meta:
        out.append("  ".join(f"{k}={v}" for k, v in meta.items()))
        out.append("")
    def agg_of(d, key, agg):
        vals = [v for v in d[key] if v is not None] if d else []
        return agg(vals) if vals else None

    for scen in scenarios:
        da, db = data.get((scen, a)), data.get((scen, b))
        n = len(da["rps"]) if da else 0
        hs = scen in HANDSHAKE_SCENARIOS
        unit = "handshake" if hs else "request"
        out.append(f"== {scen} (median of {n} rounds; ratio = {a}/{b})")
        out.append(line(["metric", a, b, "ratio"], widths))
        for key, label, kind, agg in (
            ("rps", f"{unit}s/s (higher is better)", "rps", statistics.median),
            ("p50", "latency p50", "us", statistics.median),
            ("p99", "latency p99", "us", statistics.median),
            ("cpu", f"proxy CPU per {unit}", "cpu", statistics.median),
            ("pct", "proxy CPU use", "pct", statistics.median),
            ("hwm", "proxy peak RSS (VmHWM)", "kb", max),
        ):
            if hs and key in ("p50", "p99"):
                continue
            va = agg_of(da, key, agg)
            vb = agg_of(db, key, agg)
            out.append(line([label, fmt(va, kind), fmt(vb, kind), ratio(va, vb)], widths))
        if scen in STATIC_SCENARIOS and da and db:
            ca, cb = statistics.median(da["cpu"]), statistics.median(db["cpu"])
            out.append(f"{a} CPU per request at or below {b}'s: {'yes' if ca <= cb else 'NO'}"
                       f" ({ca:.2f} vs {cb:.2f} us; rounds {a} "
                       + " ".join(f"{v:.2f}" for v in da["cpu"]) + f"; {b} "
                       + " ".join(f"{v:.2f}" for v in db["cpu"]) + ")")
        spread = [f"{p} {min(d['rps']):,.0f}..{max(d['rps']):,.0f}" for p, d in ((a, da), (b, db))
                  if d]
        out.append(("handshakes" if hs else "req") + "/s range over rounds: " + "; ".join(spread))
        out.append("")
    if args.callgrind:
        cg = {}
        for r in read_tsv(args.callgrind):
            cg.setdefault(r[0], {})[int(r[1])] = int(r[2])
        per = {}
        for p, runs in cg.items():
            ns = sorted(runs)
            if len(ns) >= 2:
                n1, n2 = ns[0], ns[-1]
                per[p] = (runs[n2] - runs[n1]) / (n2 - n1)
        names = list(cg)
        out.append("== callgrind: instructions (Ir) per proxied request, (Ir(N2)-Ir(N1))/(N2-N1)")
        if len(names) == 2:
            ca, cb = names
            out.append(line(["metric", ca, cb, "ratio"], widths))
            out.append(line(["Ir per request (lower is better)", fmt(per.get(ca), "ir"),
                             fmt(per.get(cb), "ir"), ratio(per.get(ca), per.get(cb))], widths))
        else:
            for p in names:
                out.append(f"{p}: {fmt(per.get(p), 'ir')}")
        out.append("")
    if args.idle:
        idle = {r[0]: r for r in read_tsv(args.idle)}
        names = list(idle)
        out.append("== idle keep-alive connections (proxy VmRSS of the serving process)")
        cols = ["metric"] + names + (["ratio"] if len(names) == 2 else [])
        out.append(line(cols, widths))
        def row(label, f, kind):
            vals = [f(idle[p]) for p in names]
            cells = [label] + [fmt(v, kind) for v in vals]
            if len(vals) == 2:
                cells.append(ratio(vals[0], vals[1]))
            out.append(line(cells, widths))
        row("connections held", lambda r: int(r[1]), "")
        row("RSS before", lambda r: int(r[2]), "kb")
        row("RSS with all open", lambda r: int(r[3]), "kb")
        row("RSS per idle connection",
            lambda r: (int(r[3]) - int(r[2])) / max(int(r[1]), 1), "kib")
        row("sample answered", lambda r: f"{r[4]}/{r[5]}", "")
        out.append("")
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parse")
    p.add_argument("file")
    p.set_defaults(func=cmd_parse)
    t = sub.add_parser("table")
    t.add_argument("--samples", required=True)
    t.add_argument("--callgrind")
    t.add_argument("--idle")
    t.add_argument("--meta", nargs="*", default=[])
    t.set_defaults(func=cmd_table)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
