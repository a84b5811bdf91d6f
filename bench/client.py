#!/usr/bin/env python3
"""Send COUNT GET requests one after another over one keep-alive connection; check each status.

Used by bench/callgrind.sh, where the proxy runs under valgrind and a fixed request count matters
more than speed. Exit status 0 only if every response had the expected status and body length.
"""

import argparse
import sys
import time

from httpclient import Conn


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--path", default="/small")
    ap.add_argument("--length", type=int, default=13, help="expected body length (-1: any)")
    ap.add_argument("--status", type=int, default=200, help="expected status")
    ap.add_argument("--timeout", type=float, default=60.0, help="per-read socket timeout, s")
    ap.add_argument("--header", action="append", default=[], help='"Name: value" to send')
    ap.add_argument("--expect-header", action="append", default=[], metavar="NAME:TEXT",
                    help="each response must have field NAME containing TEXT")
    args = ap.parse_args()
    expect = [(e.partition(":")[0].strip().lower(), e.partition(":")[2].strip())
              for e in args.expect_header]
    conn = Conn(args.port, timeout=args.timeout)
    t0 = time.monotonic()
    for i in range(args.count):
        status, headers, length = conn.get(args.path, args.header)
        if status != args.status or (args.length >= 0 and length != args.length):
            sys.exit(f"client: request {i}: status {status}, body {length} bytes")
        for name, text in expect:
            if text not in headers.get(name, ""):
                sys.exit(f"client: request {i}: {name}: {headers.get(name)!r}, expected {text!r}")
    conn.close()
    print(f"client: {args.count} x {args.status} in {time.monotonic() - t0:.2f}s")


if __name__ == "__main__":
    main()
