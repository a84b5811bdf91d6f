#!/usr/bin/env python3
"""Offer a constant request rate for a fixed time and count the answers by status.

RATE requests per second for SECONDS, spread evenly over CONNS keep-alive connections from one
client address (127.0.0.1), each a thread with its own absolute schedule (request k of
connection c is due at t0 + (k * CONNS + c) / RATE: a late request goes out at once, so the
offered count is exact and the rate holds on average). Used by bench/ratelimit.sh. Prints one
JSON object: offered, elapsed (first send to last send, s), late (requests sent more than 5 ms
after their due time) and the count of each status.
"""

import argparse
import json
import sys
import threading
import time

from httpclient import Conn


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--path", default="/")
    args = ap.parse_args()
    total = int(args.rate * args.seconds)
    counts, lock = {}, threading.Lock()
    first, last, late, errors = [], [], [0], []
    t0 = time.monotonic() + 0.5  # every connection is open by then

    def run(ci):
        try:
            conn = Conn(args.port, timeout=10)
            mine = {}
            k, n_late = ci, 0
            sent0 = sentn = None
            while k < total:
                due = t0 + k / args.rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                    now = time.monotonic()
                elif now - due > 0.005:
                    n_late += 1
                sent0 = now if sent0 is None else sent0
                sentn = now
                conn.send_get(args.path)
                status, _, _ = conn.read_response()
                mine[status] = mine.get(status, 0) + 1
                k += args.conns
            conn.close()
            with lock:
                for s, n in mine.items():
                    counts[s] = counts.get(s, 0) + n
                late[0] += n_late
                if sent0 is not None:
                    first.append(sent0)
                    last.append(sentn)
        except Exception as e:  # noqa: BLE001 - reported, and the run fails
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(c,)) for c in range(args.conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("paced: " + "; ".join(errors[:3]))
    print(json.dumps({"offered": total, "elapsed": max(last) - min(first), "late": late[0],
                      "status": {str(k): v for k, v in sorted(counts.items())}}))


if __name__ == "__main__":
    main()
