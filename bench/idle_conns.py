#!/usr/bin/env python3
"""Hold many idle keep-alive connections open through a proxy and report the proxy's memory.

Opens CONNS connections to 127.0.0.1:PORT in batches; on each sends one GET and reads the whole
response, then leaves the connection open and idle. With all of them open it reads VmRSS of the
proxy (the largest process in the tree rooted at PID: the nginx worker, or Portico itself), then
sends a second GET on a random sample of the idle connections and checks each is answered 200.

Prints a summary and, with --tsv, appends "label conns rss_before_kb rss_after_kb ok total".
Exit status is non-zero if a connection could not be opened or a sampled one was not answered.
Bounded: every socket operation has a timeout and the whole run a deadline.
"""

import argparse
import os
import random
import resource
import sys
import time

from httpclient import Conn, HttpError


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", encoding="latin-1") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def tree(pid):
    pids = [pid]
    for c in children(pid):
        pids.extend(tree(c))
    return pids


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status", encoding="latin-1") as f:
            for ln in f:
                if ln.startswith(field + ":"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid):
    """VmRSS of the largest process in the tree (the one holding the connections)."""
    return max(status_kb(p, "VmRSS") for p in tree(pid))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the proxy's PID (root of its tree)")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--path", default="/small")
    ap.add_argument("--deadline", type=float, default=180.0, help="whole run, seconds")
    ap.add_argument("--label", default="proxy")
    ap.add_argument("--tsv")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.conns + 256
    if hard != resource.RLIM_INFINITY and hard < want:
        sys.exit(f"idle_conns: open-file hard limit {hard} < {want}; lower --conns")
    if soft == resource.RLIM_INFINITY or soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    t_end = time.monotonic() + args.deadline
    warm = Conn(args.port)
    status, _, _ = warm.get(args.path)
    warm.close()
    if status != 200:
        sys.exit(f"idle_conns: warm-up request got {status}")
    time.sleep(0.3)
    before = rss_kb(args.pid)

    conns = []
    t0 = time.monotonic()
    try:
        while len(conns) < args.conns:
            if time.monotonic() > t_end:
                sys.exit(f"idle_conns: deadline passed with {len(conns)} connections open")
            batch = [Conn(args.port) for _ in range(min(args.batch, args.conns - len(conns)))]
            for c in batch:
                c.send_get(args.path)
            for c in batch:
                st, _, _ = c.read_response()
                if st != 200:
                    sys.exit(f"idle_conns: connection {len(conns)} got status {st}")
                conns.append(c)
    except (OSError, HttpError) as e:
        sys.exit(f"idle_conns: after {len(conns)} connections: {e}")
    opened_s = time.monotonic() - t0
    time.sleep(0.5)
    after = rss_kb(args.pid)

    ok = 0
    sample = random.sample(conns, min(args.sample, len(conns)))
    for c in sample:
        try:
            st, _, _ = c.get(args.path)
            ok += st == 200
        except (OSError, ValueError, HttpError) as e:
            print(f"idle_conns: sampled connection failed: {e}", file=sys.stderr)
    for c in conns:
        c.close()

    per = (after - before) / len(conns)
    print(f"idle_conns[{args.label}]: {len(conns)} connections open in {opened_s:.1f}s; "
          f"VmRSS {before} kB -> {after} kB ({per:.2f} KiB per connection); "
          f"sample {ok}/{len(sample)} answered 200")
    if args.tsv:
        with open(args.tsv, "a", encoding="utf-8") as f:
            f.write(f"{args.label}\t{len(conns)}\t{before}\t{after}\t{ok}\t{len(sample)}\n")
    if ok != len(sample):
        sys.exit(1)


if __name__ == "__main__":
    main()
