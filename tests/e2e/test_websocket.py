"""WebSocket through the proxy (RFC 6455 over an HTTP/1.1 Upgrade): the 101 reaches the client and
bytes flow both ways; refusals (the target's, websocket: false, max_tunnels), the tunnel's idle
timeout, an upstream that closes, a reload with tunnels open, and plain requests on the route."""

import asyncio
import signal
import socket
import time

import pytest
import websockets

from helpers.client import get
from helpers.common import IO_TIMEOUT, scaled, wait_until
from helpers.wsbackend import config


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, scaled(IO_TIMEOUT)))


async def echo_many(port, n, path="/echo"):
    async with websockets.connect("ws://127.0.0.1:%d%s" % (port, path), max_size=None) as ws:
        for i in range(n):
            if i % 2:
                msg = ("text %d " % i) * (i + 1)
            else:
                msg = bytes((i + k) % 256 for k in range(i * 37 + 1))
            await ws.send(msg)
            got = await ws.recv()
            assert got == msg
    return n


async def echo_one(ws, msg):
    await ws.send(msg)
    return await ws.recv() == msg


def status_of(port, path="/echo", extra=b""):
    """Sends an upgrade request on a raw socket; returns (status, head bytes, socket)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
              b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + extra + b"\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        if not d:
            break
        head += d
    return int(head.split(b" ")[1]) if head else 0, head, s


def test_echo_text_and_binary_through_portico(portico, wsb):
    p = portico(config(wsb))
    assert run(echo_many(p.port, 100)) == 100
    deadline = time.time() + scaled(5)
    while time.time() < deadline and not any(" 101 " in ln for ln in p.access_log()):
        time.sleep(0.05)
    assert any(" 101 " in ln for ln in p.access_log()), p.access_log()


def test_101_head_keeps_upgrade_and_accept(portico, wsb):
    p = portico(config(wsb))
    st, head, s = status_of(p.port)
    s.close()
    assert st == 101, head
    low = head.lower()
    assert b"upgrade: websocket" in low
    assert b"connection: upgrade" in low
    assert b"sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=" in low


def test_fifty_concurrent_tunnels(portico, wsb):
    p = portico(config(wsb))

    async def many():
        return await asyncio.gather(*(echo_many(p.port, 100) for _ in range(50)))
    assert run(many()) == [100] * 50


def test_target_refusal_status_reaches_client(portico, wsb):
    p = portico(config(wsb))
    st, head, s = status_of(p.port, "/refuse")
    s.close()
    assert st == 403, head


def test_upstream_close_ends_client_connection(portico, wsb):
    p = portico(config(wsb))
    st, head, s = status_of(p.port, "/close")
    assert st == 101, head
    s.settimeout(scaled(5))
    end = time.time() + scaled(5)
    got = b""
    while time.time() < end:
        d = s.recv(4096)
        if not d:
            break
        got += d
    else:
        pytest.fail("client connection stayed open")
    s.close()


def test_idle_tunnel_closed_after_tunnel_timeout(portico, wsb):
    p = portico(config(wsb, limits={"tunnel_timeout": "1s"}))
    st, head, s = status_of(p.port)
    assert st == 101, head
    s.settimeout(scaled(6))
    t0 = time.time()
    assert s.recv(4096) == b""
    took = time.time() - t0
    s.close()
    assert 0.8 <= took <= scaled(5), took


def test_websocket_false_refuses_with_403(portico, wsb):
    p = portico(config(wsb, websocket=False))
    st, head, s = status_of(p.port)
    s.close()
    assert st == 403, head
    r = get(p.port, "/plain")
    assert r.status == 200 and r.body == b"plain"


def test_max_tunnels_refuses_with_503(portico, wsb):
    p = portico(config(wsb, limits={"max_tunnels": 2}))
    socks = []
    for _ in range(2):
        st, head, s = status_of(p.port)
        assert st == 101, head
        socks.append(s)
    st, head, s = status_of(p.port)
    s.close()
    assert st == 503, head
    socks.pop().close()
    deadline = time.time() + scaled(5)
    st = 0
    while time.time() < deadline and st != 101:
        st, head, s = status_of(p.port)
        s.close()
        time.sleep(0.05)
    assert st == 101
    for s in socks:
        s.close()


def test_reload_keeps_open_tunnels(portico, wsb):
    p = portico(config(wsb))

    async def scenario():
        async with websockets.connect("ws://127.0.0.1:%d/echo" % p.port) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            p.reload(config(wsb, timeout="5s"))
            await asyncio.sleep(scaled(1))
            for i in range(20):
                await ws.send("after %d" % i)
                assert await ws.recv() == "after %d" % i
        return True
    assert run(scenario())
    assert p.alive()


def test_plain_request_on_websocket_route(portico, wsb):
    p = portico(config(wsb))
    for _ in range(3):
        r = get(p.port, "/echo")
        assert r.status == 200 and r.body == b"plain"


def test_large_messages_cross_with_back_pressure(portico, wsb):
    p = portico(config(wsb))

    async def big():
        async with websockets.connect("ws://127.0.0.1:%d/echo" % p.port, max_size=None) as ws:
            for n in (1 << 20, 4 << 20):
                msg = bytes(i % 251 for i in range(n))
                await ws.send(msg)
                assert await ws.recv() == msg
        return True
    assert run(big())


def test_drain_keeps_tunnel_until_shutdown_timeout(portico, wsb):
    p = portico(config(wsb, top={"shutdown_timeout": "2s"}))

    async def scenario():
        async with websockets.connect("ws://127.0.0.1:%d/echo" % p.port) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            p.signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            await ws.send("during drain")
            assert await ws.recv() == "during drain"
            t0 = time.time()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), scaled(10))
            return time.time() - t0
    took = run(scenario())
    assert took <= scaled(5), took
    p.wait_exit(scaled(10))
    assert not p.alive()
    # closed by the drain timeout, not by either end: still logged
    assert any('"GET /echo' in ln and " 101 " in ln for ln in p.access_log()), p.access_log()


def test_reload_ends_old_tunnels_after_shutdown_timeout_and_logs_them(portico, wsb):
    p = portico(config(wsb, top={"shutdown_timeout": "2s"}))

    async def scenario():
        old = await websockets.connect("ws://127.0.0.1:%d/echo?old" % p.port)
        try:
            assert await echo_one(old, "before")
            p.reload(config(wsb, limits={"tunnel_timeout": "1h"}, top={"shutdown_timeout": "2s"}))
            await asyncio.sleep(0.5)
            assert await echo_one(old, "after")
            async with websockets.connect("ws://127.0.0.1:%d/echo?new" % p.port) as new:
                t0 = time.time()
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(old.recv(), scaled(10))
                took = time.time() - t0
                assert await echo_one(new, "new")  # a tunnel on the new snapshot stays
            return took
        finally:
            await old.close()
    took = run(scenario())
    assert 0.5 <= took <= scaled(5), took
    assert wait_until(lambda: any('"GET /echo?old' in ln and " 101 " in ln
                                  for ln in p.access_log()), scaled(5)), p.access_log()


def test_upgrade_forwarded_on_a_connection_outside_the_pool(portico, backend):
    """The target sees Connection/Upgrade; the upgrade's connection is a new one and does not
    go back to the pool when the target answers without switching (403)."""
    seen = []

    def h(req, w):
        seen.append(req)
        if req.header("Upgrade"):
            w.respond(403, [], b"no")
        else:
            w.respond(200, [], b"ok")
    b = backend(h)
    p = portico({"sites": [{"routes": [{"match": "/*", "proxy": {"to": "app"}}]}],
                 "upstreams": {"app": {"targets": [{"url": b.url}]}}})
    assert get(p.port, "/a").status == 200
    st, head, s = status_of(p.port)
    s.close()
    assert st == 403, head
    for _ in range(3):
        assert get(p.port, "/b").status == 200
    assert len(seen) == 5
    up = seen[1]
    assert up.header("Upgrade") == "websocket"
    assert "upgrade" in up.header("Connection", "").lower()
    assert up.header("Sec-WebSocket-Key") == "dGhlIHNhbXBsZSBub25jZQ=="
    assert up.conn_id != seen[0].conn_id
    assert all(r.conn_id == seen[0].conn_id for r in seen[2:]), [r.conn_id for r in seen]
    assert not seen[0].header("Upgrade") and not seen[2].header("Upgrade")


def test_http10_upgrade_goes_as_plain_request(portico, wsb):
    p = portico(config(wsb))
    s = socket.create_connection(("127.0.0.1", p.port), timeout=IO_TIMEOUT)
    s.sendall(b"GET /echo HTTP/1.0\r\nHost: localhost\r\nConnection: Upgrade\r\n"
              b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    got = b""
    end = time.time() + IO_TIMEOUT
    while time.time() < end:
        d = s.recv(4096)
        if not d:
            break
        got += d
    s.close()
    assert got.startswith(b"HTTP/1.1 200"), got
    assert got.endswith(b"plain")
