#!/usr/bin/python3
"""Send a WAF request set to a server and report what it refused (issue 13, section 4).

A set is a JSON file in this folder (attack.json, clean.json, false_positive.json): a list of
requests, each an object with
  id       a unique name (kebab-case), what the report prints;
  method   the request method (GET unless given);
  path     the request target exactly as sent (already percent-encoded where needed);
  headers  an object of extra header fields (optional); they replace the defaults of the same
           name: Host (shop.example: a name, as real traffic has, since CRS scores a numeric
           Host), User-Agent (a desktop Firefox) and Accept (*/*);
  body     the body as a string (optional), sent with a Content-Length;
  json     instead of body: a JSON value, sent compact (json.dumps) with Content-Type
           application/json unless the headers name another type;
  why      for attack and false_positive sets: what the request is (what it attacks, or which
           rule of stock CRS refuses it).
Each request goes on its own connection (Connection: close unless the request names another),
written byte for byte as given, so odd targets such as ../ reach the server unchanged. A request
counts as blocked when the answer is 403; any other status counts as passed (and is printed, so
a 400 or 404 is visible).

Usage: run_sets.py BASE_URL SET [SET...] [--expect blocked|passed] [--json OUT] [--tag] [-q]
  SET: attack, clean, false_positive or a path to a set file. --expect: exit 1 when a request of
  the sets is not as expected (and list them). --json: write the results ({set: [{id, status,
  blocked}]}). --tag: add an X-Set-Id header naming the request (for matching an audit log; off
  by default, so the sets are sent as written). Exit 2 on a connection failure.
Stdlib only: /usr/bin/python3.
"""

import argparse
import json
import os
import socket
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SETS = ("attack", "clean", "false_positive")
DEFAULT_HEADERS = {
    "Host": "shop.example",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Accept": "*/*",
}


def set_path(name):
    """The file of a set: a name of SETS, or a path."""
    return os.path.join(HERE, name + ".json") if name in SETS else name


def load_set(name):
    """The requests of a set (a list of dicts), checked for the fields the runner needs."""
    with open(set_path(name), encoding="utf-8") as f:
        reqs = json.load(f)
    seen = set()
    for r in reqs:
        if "id" not in r or "path" not in r or r["id"] in seen:
            raise ValueError("%s: every request needs a unique id and a path: %r" % (name, r))
        seen.add(r["id"])
    return reqs


def encode(req, tag=False):
    """The bytes of one request: request line, headers, body. TAG: add X-Set-Id: <id>, so an
    audit log can be matched to the set's requests."""
    headers = dict(DEFAULT_HEADERS)
    if tag:
        headers["X-Set-Id"] = req["id"]
    body = None
    if "json" in req:
        body = json.dumps(req["json"]).encode("utf-8")
        headers["Content-Type"] = "application/json"
    elif "body" in req:
        body = req["body"].encode("utf-8")
    for k, v in req.get("headers", {}).items():
        for old in [h for h in headers if h.lower() == k.lower()]:
            del headers[old]
        headers[k] = v
    if body is not None:
        headers["Content-Length"] = str(len(body))
    if not any(h.lower() == "connection" for h in headers):
        headers["Connection"] = "close"
    head = "%s %s HTTP/1.1\r\n" % (req.get("method", "GET"), req["path"])
    head += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
    return head.encode("utf-8") + (body or b"")


def send(base, req, timeout=10.0, tag=False):
    """Send one request to BASE (http://host:port) and return the response's status code."""
    u = urllib.parse.urlsplit(base)
    with socket.create_connection((u.hostname, u.port or 80), timeout=timeout) as s:
        s.sendall(encode(req, tag))
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    line = data.split(b"\r\n", 1)[0].split()
    if len(line) < 2 or not line[0].startswith(b"HTTP/"):
        raise ConnectionError("%s: no HTTP status line in %r" % (req["id"], data[:80]))
    return int(line[1])


def run(base, name, tag=False):
    """Send every request of a set; a list of {id, status, blocked}."""
    out = []
    for req in load_set(name):
        st = send(base, req, tag=tag)
        out.append({"id": req["id"], "status": st, "blocked": st == 403})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base")
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--expect", choices=("blocked", "passed"))
    ap.add_argument("--json")
    ap.add_argument("-q", action="store_true", help="print only the totals and the surprises")
    ap.add_argument("--tag", action="store_true", help="add X-Set-Id: <id> to every request")
    a = ap.parse_args()
    results, wrong = {}, []
    for name in a.sets:
        try:
            res = run(a.base, name, a.tag)
        except OSError as e:
            print("run_sets: %s: %s" % (name, e), file=sys.stderr)
            return 2
        results[name] = res
        for r in res:
            bad = a.expect is not None and r["blocked"] != (a.expect == "blocked")
            if bad:
                wrong.append("%s/%s" % (name, r["id"]))
            if not a.q or bad:
                print("%-16s %-44s %3d %s%s" % (name, r["id"], r["status"],
                                               "BLOCKED" if r["blocked"] else "passed",
                                               "  <-- unexpected" if bad else ""))
        n = sum(r["blocked"] for r in res)
        print("%s: %d requests, %d blocked, %d passed" % (name, len(res), n, len(res) - n))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    if wrong:
        print("not %s: %s" % (a.expect, " ".join(wrong)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
