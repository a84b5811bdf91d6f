"""Heavy: many concurrent WebSocket tunnels, half from HTTP/1.1 clients (python3-websockets), half
from HTTP/2 clients (RFC 8441, helpers/h2ws.py, several streams per connection), each echoing
its messages through Portico, with a reload in the middle: none is lost, and each is logged.

Issue 10's "done when" is 1,000 tunnels of 100 messages: PORTICO_WS_TUNNELS=1000
PORTICO_WS_MESSAGES=100. The defaults (100 tunnels of 20 messages) keep `make test` lean."""

import asyncio
import os
import resource
import time

import pytest
import websockets

from helpers.common import scaled
from helpers.h2ws import H2WsConn
from helpers.wsbackend import config

pytestmark = pytest.mark.heavy

TUNNELS = int(os.environ.get("PORTICO_WS_TUNNELS") or 100)
MESSAGES = int(os.environ.get("PORTICO_WS_MESSAGES") or 20)
STREAMS_PER_CONN = 10  # HTTP/2 WebSocket streams on one client connection


@pytest.fixture
def nofile():
    """Room for the tunnels' descriptors in this process (clients and the target, about three
    per tunnel) and in Portico, which inherits the limit (two per tunnel)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * TUNNELS + 1024
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, need))
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def message(t, i):
    if i % 2:
        return "tunnel %d message %d " % (t, i) * (1 + i % 5)
    return bytes((t + i + k) % 256 for k in range(16 + (t * 31 + i * 17) % 700))


class Run:
    """The shared state of one run: the reload waits until every tunnel is open and half way."""

    def __init__(self, n):
        self.n = n
        self.half = 0
        self.all_half = asyncio.Event()
        self.resume = asyncio.Event()
        self.done = 0

    async def halfway(self):
        self.half += 1
        if self.half == self.n:
            self.all_half.set()
        await self.resume.wait()

    async def echo(self, t, ws):
        for i in range(MESSAGES):
            if i == MESSAGES // 2:
                await self.halfway()
            msg = message(t, i)
            await ws.send(msg)
            got = await ws.recv()
            assert got == msg, "tunnel %d message %d" % (t, i)
        self.done += 1


async def h1_tunnel(port, run, t, gate):
    async with gate:
        ws = await websockets.connect("ws://127.0.0.1:%d/echo?h1-%d" % (port, t), max_size=None,
                                      ping_interval=None, open_timeout=scaled(30))
    try:
        await run.echo(t, ws)
    finally:
        await ws.close()


async def h2_conn(port, run, first, n, gate):
    async with gate:
        c = await H2WsConn.open(port)
        socks = [await c.websocket("/echo?h2-%d" % (first + k)) for k in range(n)]
    try:
        await asyncio.gather(*(run.echo(first + k, ws) for k, ws in enumerate(socks)))
        for ws in socks:
            await ws.close()
    finally:
        await c.aclose()


def test_concurrent_tunnels_over_http11_and_http2_survive_a_reload(portico, wsb, nofile):
    cfg = config(wsb, h2c=True, top={"shutdown_timeout": "300s", "workers": 2,
                                     "limits": {"max_tunnels": 4 * TUNNELS}})
    p = portico(cfg)
    n_h2 = TUNNELS // 2
    n_h1 = TUNNELS - n_h2

    async def scenario():
        run = Run(TUNNELS)
        gate = asyncio.Semaphore(64)  # connections opening at once
        tasks = [asyncio.ensure_future(h1_tunnel(p.port, run, t, gate)) for t in range(n_h1)]
        for first in range(0, n_h2, STREAMS_PER_CONN):
            tasks.append(asyncio.ensure_future(
                h2_conn(p.port, run, n_h1 + first, min(STREAMS_PER_CONN, n_h2 - first), gate)))
        waiter = asyncio.ensure_future(run.all_half.wait())
        await asyncio.wait([waiter] + tasks, return_when=asyncio.FIRST_COMPLETED)
        assert run.all_half.is_set(), [t.exception() for t in tasks if t.done()][:3]
        p.reload(cfg(p.port))  # every tunnel is open and half way: the reload lands mid-run
        run.resume.set()
        await asyncio.gather(*tasks)
        return run.done

    t0 = time.monotonic()
    done = asyncio.run(asyncio.wait_for(scenario(), scaled(60 + TUNNELS * MESSAGES / 500)))
    took = time.monotonic() - t0
    assert done == TUNNELS
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        lines = p.access_log()
        h1 = sum(1 for ln in lines if '"GET /echo?h1-' in ln and " 101 " in ln)
        h2 = sum(1 for ln in lines if '"CONNECT /echo?h2-' in ln and " 200 " in ln)
        if h1 == n_h1 and h2 == n_h2:
            break
        time.sleep(0.1)
    assert (h1, h2) == (n_h1, n_h2)
    assert "configuration reloaded" in p.stderr()
    print("%d tunnels x %d messages (%d HTTP/1.1, %d HTTP/2) with a reload: %.1f s"
          % (TUNNELS, MESSAGES, n_h1, n_h2, took))
