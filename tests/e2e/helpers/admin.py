"""Helpers for tests of the admin listener: tokens made with `portico token`, a tokens file,
an admin port that follows Portico's traffic port, and one-shot requests."""

import http.client
import os
import subprocess

from .common import free_port
from .portico import PORTICO_BIN

_ADMIN_PORTS = {}


def admin_port(traffic_port):
    """A free port for the admin listener of the Portico whose traffic port is traffic_port
    (the same one each time the configuration is built for that port)."""
    if traffic_port not in _ADMIN_PORTS:
        _ADMIN_PORTS[traffic_port] = free_port()
    return _ADMIN_PORTS[traffic_port]


def tokens(tmp_path, pairs):
    """Makes one token per (name, scope) with `portico token` and writes their lines to a tokens
    file in tmp_path. Returns (the tokens in order, the file's path)."""
    made, lines = [], []
    for name, scope in pairs:
        r = subprocess.run([PORTICO_BIN, "token", name, "--scope", scope], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, r
        token, line = r.stdout.splitlines()
        made.append(token)
        lines.append(line)
    path = os.path.join(str(tmp_path), "tokens")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return made, path


def call(p, method, path, token=None, body=None, timeout=10):
    """One request to p's admin listener: (status, {lowercased header: value}, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", admin_port(p.port), timeout=timeout)
    try:
        hdrs = {"Authorization": "Bearer " + token} if token else {}
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()
