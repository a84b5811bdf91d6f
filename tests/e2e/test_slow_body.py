"""A slow-body attack (slowhttptest -B, "R-U-Dead-Yet": many POSTs whose bodies trickle in) against
a Portico proxying to a backend: normal requests keep being answered and the healthy target
stays up (issue #9, "Done when").

Quick by default (300 connections for 15 s); PORTICO_SLOWBODY_CONNS and PORTICO_SLOWBODY_SECONDS
scale it up, e.g. to the issue's 1,500 connections:

    PORTICO_SLOWBODY_CONNS=1500 PORTICO_SLOWBODY_SECONDS=60 PORTICO_BIN=$PWD/build/portico \\
        /usr/bin/python3 -m pytest -q -s tests/e2e/test_slow_body.py
"""

import os
import re
import shutil
import subprocess
import time

from helpers import backends as B
from helpers import lb
from helpers.client import get
from helpers.common import SANITIZE, scaled

CONNS = int(os.environ.get("PORTICO_SLOWBODY_CONNS") or 300)
SECONDS = int(os.environ.get("PORTICO_SLOWBODY_SECONDS") or 15)


def test_slow_body_attack_leaves_normal_requests_answered(portico, backend, tmp_path):
    # A missing tool is a setup error, not a reason to pass quietly.
    assert shutil.which("slowhttptest"), "slowhttptest is missing: run scripts/deps.sh --test"
    b = backend(B.echo())
    health = {"path": lb.HEALTH_PATH, "interval": "500ms", "timeout": "400ms", "fall": 2,
              "rise": 2}
    p = portico(lb.proxy_config(lb.upstream([b], health=health), workers=2))
    assert get(p.port, "/before").status == 200
    rate = max(50, CONNS // 3)
    attack = subprocess.Popen(
        ["slowhttptest", "-B", "-c", str(CONNS), "-r", str(rate), "-i", "5", "-s", "65536",
         "-x", "16", "-l", str(SECONDS), "-p", "3", "-g", "-o", str(tmp_path / "slow"),
         "-u", "http://127.0.0.1:%d/upload" % p.port],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    answered, failed, worst = 0, [], 0.0
    try:
        time.sleep(min(5, SECONDS / 3))  # let the attack ramp up
        deadline = time.monotonic() + SECONDS - min(5, SECONDS / 3) - 1
        while time.monotonic() < deadline and attack.poll() is None:
            t0 = time.monotonic()
            try:
                r = get(p.port, "/normal", timeout=scaled(5))
                if r.status == 200:
                    answered += 1
                else:
                    failed.append(r.status)
            except OSError as e:
                failed.append(repr(e))
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.2)
        out, _ = attack.communicate(timeout=SECONDS + 60)
        out = re.sub(r"\x1b\[[0-9;]*m", "", out)  # its colours
    finally:
        if attack.poll() is None:
            attack.kill()
            attack.wait(10)
    stats = [ln for ln in out.splitlines() if "connected" in ln or "pending" in ln
             or "closed" in ln or "service available" in ln]
    print("slowhttptest -B -c %d for %d s: %d normal requests answered, %d failed, slowest "
          "%.3f s; last status: %s" % (CONNS, SECONDS, answered, len(failed), worst,
                                      " | ".join(s.strip() for s in stats[-4:])))
    assert answered >= 5 and not failed, (answered, failed[:5])
    assert not re.search(r"service available:\s*NO", out), out[-2000:]
    assert re.search(r"connected:\s*[1-9]", out), "the attack never connected:\n" + out[-2000:]
    err = p.stderr()
    assert "is down" not in err and "marked down" not in err.lower(), err[-3000:]
    assert get(p.port, "/after").status == 200
