"""Configuration behaviour end to end (issue 9): the top-level routes: shorthand, paths relative
to the configuration file, warnings in FILE:LINE:COL form, environment variables, custom error
pages and the Server header. `portico check` and `portico run` are driven as a user would."""

import os
import re
import subprocess

from helpers import backends as B
from helpers.client import get
from helpers.common import START_TIMEOUT, free_port
from helpers.portico import PORTICO_BIN


def run_cli(*args, env=None, cwd=None, timeout=START_TIMEOUT):
    full = dict(os.environ)
    if env:
        full.update(env)
    return subprocess.run([PORTICO_BIN] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, env=full, cwd=cwd)


def write(path, text):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "w") as f:
        f.write(text)
    return str(path)


def diags(out, path, kind=None):
    """(line, col, message) of each FILE:LINE:COL: diagnostic for path in out; kind "warning"
    keeps only warnings, "error" only the others."""
    pat = re.compile(r"^%s:(\d+):(\d+): (.*)$" % re.escape(str(path)))
    found = []
    for ln in out.splitlines():
        m = pat.match(ln)
        if not m:
            continue
        is_warn = m.group(3).startswith("warning: ")
        if kind == "warning" and not is_warn or kind == "error" and is_warn:
            continue
        found.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return found


# ---- item 3: the routes: shorthand is a whole default site ----------------------------------

def test_routes_shorthand_applies_redirects_and_headers_files(portico, tmp_path):
    site = tmp_path / "site"
    write(site / "index.html", "<p>home</p>\n")
    write(site / "_redirects", "/old /index.html 301\n")
    write(site / "_headers", "/*\n  X-Site-Rule: on\n")
    p = portico({"routes": [{"match": "/*", "static": {"root": "site"}}]})
    r = get(p.port, "/old")
    assert r.status == 301, r
    assert r.header("Location") == "/index.html", r
    r = get(p.port, "/")
    assert r.status == 200, r
    assert r.header("X-Site-Rule") == "on", r
