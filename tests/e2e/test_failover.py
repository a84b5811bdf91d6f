"""Failover under load (issue 3, "Done when"): a bounded loop of idempotent GETs from a few
keep-alive clients against three backends with active health checks and retries. Killing one
backend mid-run (listening socket and connections closed) gives zero non-2xx responses; the dead
target is logged down within fall x interval (plus slack); once restarted on the same port it is
logged up and gets traffic again within rise x interval + slow_start (plus slack). A backend
that hangs instead (accepts, never answers) gives zero client errors with per_try_timeout."""

import re
import time

import pytest

from helpers import lb
from helpers.common import scaled, wait_until

INTERVAL = 0.2
FALL = 2
RISE = 2
SLOW_START = 1.0
HEALTH = {"path": lb.HEALTH_PATH, "interval": "200ms", "timeout": "150ms", "fall": FALL,
          "rise": RISE}
# The default retry budget: a refused connect is retried whatever the budget (nothing reached
# the target), so losing a target under load costs no request even at 20%.
BUDGET = "20%"
# Scheduling slack on a busy 2-core machine (tripled under the sanitizer build).
SLACK = 0.4


def failover_config(bs, **extra):
    ups = lb.upstream(list(bs), health=HEALTH, retries=2,
                      retry_on=["connect_failure", "reset", "timeout", 502, 503, 504],
                      slow_start="1s", retry_budget=BUDGET, **extra)
    return lb.proxy_config(ups, workers=2)


@pytest.fixture
def three():
    bs = lb.Backends(["a", "b", "c"])
    yield bs
    bs.close()


def wait_checked(bs):
    """Until every backend has answered a few health checks: the checker runs."""
    ok = wait_until(lambda: all(b.health >= 2 for b in bs), scaled(5))
    assert ok, {b.name: b.health for b in bs}


def target_line(b, what):
    return r"target %s is %s" % (re.escape(b.url), what)


def test_killed_backend_gives_zero_errors_is_marked_down_then_gets_traffic_after_restart(
        portico, three):
    p = portico(failover_config(three))
    wait_checked(three)
    c = three["c"]
    load = lb.Background(p.port, threads=4, duration=scaled(25)).start()
    try:
        assert wait_until(lambda: c.count >= 200, scaled(5)), three.counts()

        mark = len(p.stderr())
        t_kill = time.monotonic()
        c.kill()
        down = lb.wait_log(p, target_line(c, "down"), scaled(5), after=mark)
        assert down, "no 'is down' line for %s:\n%s" % (c.url, p.stderr()[mark:][-3000:])
        took_down = down[0] - t_kill
        assert took_down <= FALL * INTERVAL + scaled(SLACK), (took_down, down[1])

        # Keep the load on the two survivors for a while.
        base = three.total()
        assert wait_until(lambda: three.total() >= base + 300, scaled(5)), three.counts()

        mark = len(p.stderr())
        c.mark("restart")
        t_restart = time.monotonic()
        c.restart()
        up = lb.wait_log(p, target_line(c, "up"), scaled(5), after=mark)
        assert up, "no 'is up' line for %s:\n%s" % (c.url, p.stderr()[mark:][-3000:])
        took_up = up[0] - t_restart
        assert took_up <= RISE * INTERVAL + scaled(SLACK), (took_up, up[1])
        assert wait_until(lambda: "restart" in c.first_request_after,
                          RISE * INTERVAL + SLOW_START + scaled(SLACK)), three.counts()
        took_traffic = c.first_request_after["restart"] - t_restart
        assert took_traffic <= RISE * INTERVAL + SLOW_START + scaled(SLACK), took_traffic
        print("down after %.3fs, up after %.3fs, traffic after %.3fs"
              % (took_down, took_up, took_traffic))
        back = c.count
        assert wait_until(lambda: c.count >= back + 50, scaled(5)), three.counts()
    finally:
        res = load.stop()
    assert res.requests > 1000, res.summary()
    assert res.non2xx() == 0 and not res.errors, res.summary()


def test_hanging_backend_with_per_try_timeout_gives_zero_client_errors(portico, three):
    p = portico(failover_config(three, per_try_timeout="300ms"))
    wait_checked(three)
    c = three["c"]
    load = lb.Background(p.port, threads=4, duration=scaled(25)).start()
    try:
        assert wait_until(lambda: c.count >= 200, scaled(5)), three.counts()
        mark = len(p.stderr())
        c.mode = "hang"  # connections already pooled by Portico hang too
        down = lb.wait_log(p, target_line(c, "down"), scaled(5), after=mark)
        assert down, "hung target never marked down:\n%s" % p.stderr()[mark:][-3000:]
        base = three.total()
        assert wait_until(lambda: three.total() >= base + 500, scaled(8)), three.counts()
    finally:
        res = load.stop()
    assert res.requests > 1000, res.summary()
    assert res.non2xx() == 0 and not res.errors, res.summary()
    # the hung attempts were cut by per_try_timeout and retried, and were few
    assert lb.log_lines(p, r"timed out"), p.stderr()[-3000:]
