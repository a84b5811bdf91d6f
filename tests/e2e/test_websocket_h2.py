"""WebSocket from HTTP/2 clients (RFC 8441 extended CONNECT) through the proxy: the setting that
offers it, the HTTP/1.1 Upgrade the target sees (our own Sec-WebSocket-Key, its Accept checked),
the 200 and the DATA frames both ways with flow control, refusals (the target's status,
websocket: false, max_tunnels, a route that is no proxy, another :protocol), ends from either
side, and tunnels on drain and reload (kept until shutdown_timeout, then reset, and logged)."""

import asyncio
import base64
import signal
import ssl
import time

import pytest

from helpers import certs
from helpers.common import IO_TIMEOUT, scaled
from helpers.h2ws import H2WsClosed, H2WsConn, H2WsRefused
from helpers.wsbackend import config

CANCEL = 0x8


def run(coro, timeout=IO_TIMEOUT):
    return asyncio.run(asyncio.wait_for(coro, scaled(timeout)))


def wait_log(p, pred, n=1, timeout=5):
    """The access-log lines that pred accepts, once there are n of them (or the timeout)."""
    deadline = time.time() + scaled(timeout)
    while True:
        lines = [ln for ln in p.access_log() if pred(ln)]
        if len(lines) >= n or time.time() >= deadline:
            return lines
        time.sleep(0.05)


async def echo(ws, n, tag=""):
    for i in range(n):
        msg = ("%s text %d " % (tag, i)) * (i % 7 + 1) if i % 2 else bytes(
            (i + k) % 256 for k in range(i * 37 + 1))
        await ws.send(msg)
        assert await ws.recv() == msg
    return n


async def tunnel(p, path="/echo", n=2):
    """A new connection to p and a WebSocket on it that already echoed n messages."""
    c = await H2WsConn.open(p.port)
    ws = await c.websocket(path)
    await echo(ws, n)
    return c, ws


def test_settings_offer_extended_connect_only_when_a_route_allows_websocket(portico, wsb):
    p = portico(config(wsb, h2c=True))
    q = portico(config(wsb, h2c=True, websocket=False))

    async def scenario():
        c = await H2WsConn.open(p.port)
        d = await H2WsConn.open(q.port)
        got = (c.connect_protocol, d.connect_protocol)
        await c.aclose()
        await d.aclose()
        return got
    assert run(scenario()) == (1, 0)


def test_echo_over_several_streams_of_one_connection(portico, wsb):
    p = portico(config(wsb, h2c=True))

    async def scenario():
        c = await H2WsConn.open(p.port)
        socks = [await c.websocket("/echo") for _ in range(8)]
        assert all(ws.status == 200 for ws in socks)
        assert all("sec-websocket-accept" not in ws.headers for ws in socks)
        got = await asyncio.gather(*(echo(ws, 50, str(i)) for i, ws in enumerate(socks)))
        for ws in socks:
            await ws.close()
        await c.aclose()
        return got
    assert run(scenario()) == [50] * 8
    lines = wait_log(p, lambda ln: '"CONNECT /echo' in ln and " 200 " in ln, n=8)
    assert len(lines) == 8, p.access_log()


def test_echo_over_tls_h2(portico, wsb, tmp_path_factory):
    pki = certs.session_pki(tmp_path_factory)
    cert, key = pki.server(["a.test"], "ec")
    base = config(wsb, h2c=True)

    def cfg(port):
        d = base(port)
        d["listen"][0].update(tls=True)
        d["tls"] = {"certificates": [{"cert": cert, "key": key}]}
        return d
    p = portico(cfg)

    async def scenario():
        ctx = ssl.create_default_context(cafile=pki.ca_cert)
        ctx.check_hostname = False
        c = await H2WsConn.open(p.port, tls=ctx)
        socks = [await c.websocket("/echo") for _ in range(3)]
        got = await asyncio.gather(*(echo(ws, 40, str(i)) for i, ws in enumerate(socks)))
        big = bytes(i % 251 for i in range(1 << 20))
        await socks[0].send(big)
        assert await socks[0].recv() == big
        for ws in socks:
            await ws.close()
        await c.aclose()
        return got
    assert run(scenario()) == [40] * 3


def test_idle_tunnel_ends_after_tunnel_timeout(portico, wsb):
    p = portico(config(wsb, h2c=True, limits={"tunnel_timeout": "1s"}))

    async def scenario():
        c, ws = await tunnel(p, n=1)
        t0 = time.time()
        with pytest.raises(H2WsClosed):
            await asyncio.wait_for(ws.recv(), scaled(6))
        took = time.time() - t0
        ws2 = await c.websocket("/echo")  # the connection goes on
        await echo(ws2, 1)
        await c.aclose()
        return took, ws.ended
    took, ended = run(scenario())
    assert 0.8 <= took <= scaled(5), took
    assert ended


def test_target_sees_an_http11_upgrade_with_our_own_key(portico, wsb):
    p = portico(config(wsb, h2c=True))

    async def scenario():
        c = await H2WsConn.open(p.port)
        ws = await c.websocket("/echo", headers=[("sec-websocket-protocol", "chat"),
                                                 ("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA==")])
        assert await echo(ws, 3) == 3
        await ws.close()
        ws2 = await c.websocket("/echo")
        await ws2.close()
        await c.aclose()
        return ws.headers
    hdrs = run(scenario())
    assert hdrs.get("sec-websocket-protocol") == "chat", hdrs
    assert len(wsb.seen) == 2
    first, second = ({k.lower(): v for k, v in s.items()} for s in wsb.seen)
    assert first["upgrade"].lower() == "websocket"
    assert "upgrade" in first["connection"].lower()
    assert first["sec-websocket-version"] == "13"
    assert first["sec-websocket-protocol"] == "chat"
    key = first["sec-websocket-key"]
    assert key != "AAAAAAAAAAAAAAAAAAAAAA==" and len(base64.b64decode(key)) == 16
    assert second["sec-websocket-key"] != key


def test_large_messages_cross_both_ways_with_flow_control(portico, wsb):
    p = portico(config(wsb, h2c=True))

    async def scenario():
        c = await H2WsConn.open(p.port, window=65535)
        ws = await c.websocket("/echo")
        for n in (70000, 1 << 20, 3 << 20):
            msg = bytes(i % 253 for i in range(n))
            await ws.send(msg)
            assert await ws.recv() == msg
        await ws.close()
        await c.aclose()
        return True
    assert run(scenario(), timeout=60)


def test_a_client_that_does_not_read_stops_the_target_then_gets_everything(portico, wsb):
    """Back-pressure end to end: with the client's window closed, Portico stops reading the
    target, the target stops reading Portico, and the client's own sends stall on its window.
    Reopened, every message comes back in order."""
    p = portico(config(wsb, h2c=True))
    n, size = 1000, 60000

    async def scenario():
        c = await H2WsConn.open(p.port, window=65535)
        ws = await c.websocket("/echo")
        c.ack = False
        sent = [0]

        async def push():
            for i in range(n):
                await ws.send(bytes([i % 256]) * size)
                sent[0] += 1
        task = asyncio.ensure_future(push())
        await asyncio.sleep(scaled(2))
        stalled = sent[0]
        await asyncio.sleep(scaled(1))
        assert sent[0] == stalled < n, (stalled, sent[0])
        c.ack = True
        c.ack_all()
        for i in range(n):
            assert await ws.recv() == bytes([i % 256]) * size, i
        await task
        await ws.close()
        await c.aclose()
        return stalled
    stalled = run(scenario(), timeout=120)
    assert stalled * size < 40 << 20, stalled


def test_target_refusal_reaches_the_client_as_its_status(portico, wsb):
    p = portico(config(wsb, h2c=True))

    async def scenario():
        c = await H2WsConn.open(p.port)
        with pytest.raises(H2WsRefused) as e:
            await c.websocket("/refuse")
        ws = await c.websocket("/echo")  # the connection goes on
        await echo(ws, 2)
        await ws.close()
        await c.aclose()
        return e.value
    e = run(scenario())
    assert e.status == 403 and e.body == b"refused", (e.status, e.body)


def test_websocket_false_is_403_and_max_tunnels_is_503(portico, wsb):
    p = portico(config(wsb, h2c=True, limits={"max_tunnels": 1},
                       routes=[{"match": "/no/*", "proxy": {"to": "app", "websocket": False}}]))

    async def scenario():
        c = await H2WsConn.open(p.port)
        with pytest.raises(H2WsRefused) as e1:
            await c.websocket("/no/echo")
        ws = await c.websocket("/echo")
        with pytest.raises(H2WsRefused) as e2:
            await c.websocket("/echo")
        await ws.close()
        await asyncio.sleep(0.2)
        ws = await c.websocket("/echo")  # the slot is free again
        await ws.close()
        await c.aclose()
        return e1.value.status, e2.value.status
    assert run(scenario()) == (403, 503)


def test_non_proxy_route_and_other_protocol_get_clear_errors(portico, wsb):
    p = portico(config(wsb, h2c=True,
                       routes=[{"match": "/r", "respond": {"status": 200, "body": "x"}}]))

    async def scenario():
        c = await H2WsConn.open(p.port)
        with pytest.raises(H2WsRefused) as e1:
            await c.websocket("/r")
        with pytest.raises(H2WsRefused) as e2:
            await c.websocket("/echo", protocol="connect-udp")
        await c.aclose()
        return e1.value.status, e2.value.status
    assert run(scenario()) == (405, 501)


def test_wrong_accept_from_the_target_is_502(portico, backend):
    def h(req, w):
        w.respond(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                        ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")], b"")

    b = backend(h)
    p = portico(config(b, h2c=True))

    async def scenario():
        c = await H2WsConn.open(p.port)
        with pytest.raises(H2WsRefused) as e:
            await c.websocket("/echo")
        await c.aclose()
        return e.value.status
    assert run(scenario()) == 502


def test_end_stream_from_the_client_closes_the_upstream(portico, wsb):
    p = portico(config(wsb, h2c=True))

    async def scenario():
        c, ws = await tunnel(p)
        c._end(ws.sid)  # END_STREAM without a close frame
        with pytest.raises(H2WsClosed):
            await asyncio.wait_for(ws.recv(), scaled(5))
        ok = ws.ended or ws.reset is not None
        await c.aclose()
        return ok
    assert run(scenario())
    assert wait_log(p, lambda ln: '"CONNECT /echo' in ln)


def test_upstream_close_ends_the_stream(portico, wsb):
    p = portico(config(wsb, h2c=True))

    async def scenario():
        c = await H2WsConn.open(p.port)
        ws = await c.websocket("/close")
        with pytest.raises(H2WsClosed):
            await asyncio.wait_for(ws.recv(), scaled(5))
        ended = ws.ended
        ws2 = await c.websocket("/echo")  # the connection goes on
        await echo(ws2, 2)
        await ws2.close()
        await c.aclose()
        return ended
    assert run(scenario())


def test_client_reset_and_connection_loss_are_logged(portico, wsb):
    p = portico(config(wsb, h2c=True))

    async def scenario():
        c = await H2WsConn.open(p.port)
        a = await c.websocket("/echo?a")
        b = await c.websocket("/echo?b")
        await echo(a, 2)
        await echo(b, 2)
        c.reset_stream(a.sid, CANCEL)
        await asyncio.sleep(0.3)
        c.writer.transport.abort()  # the client goes away with b open
        await asyncio.sleep(0.3)
        return True
    assert run(scenario())
    assert wait_log(p, lambda ln: '"CONNECT /echo?a' in ln), p.access_log()
    assert wait_log(p, lambda ln: '"CONNECT /echo?b' in ln), p.access_log()


def test_drain_keeps_tunnels_until_shutdown_timeout_then_resets_and_logs(portico, wsb):
    p = portico(config(wsb, h2c=True, top={"shutdown_timeout": "2s"}))

    async def scenario():
        c, ws = await tunnel(p, "/echo?drain")
        p.signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        await ws.send("during drain")
        assert await ws.recv() == "during drain"
        t0 = time.time()
        with pytest.raises(H2WsClosed):
            await asyncio.wait_for(ws.recv(), scaled(10))
        took = time.time() - t0
        return took, ws.reset, c.goaway
    took, reset, goaway = run(scenario())
    assert took <= scaled(5), took
    assert reset == CANCEL or goaway is not None
    p.wait_exit(scaled(10))
    assert not p.alive()
    assert wait_log(p, lambda ln: '"CONNECT /echo?drain' in ln), p.access_log()


def test_reload_keeps_tunnels_then_ends_old_ones_after_shutdown_timeout(portico, wsb):
    def cfg(timeout):
        return config(wsb, h2c=True, top={"shutdown_timeout": "2s"}, timeout=timeout)
    p = portico(cfg("5s"))

    async def scenario():
        c, ws = await tunnel(p, "/echo?old")
        p.reload(cfg("6s")(p.port))
        await asyncio.sleep(0.5)
        await echo(ws, 5)  # kept across the reload
        d = await H2WsConn.open(p.port)
        fresh = await d.websocket("/echo?new")
        t0 = time.time()
        with pytest.raises(H2WsClosed):
            await asyncio.wait_for(ws.recv(), scaled(10))
        took = time.time() - t0
        await echo(fresh, 3)  # a tunnel on the new snapshot stays
        await fresh.close()
        await d.aclose()
        await c.aclose()
        return took, ws.reset
    took, reset = run(scenario())
    assert 0.5 <= took <= scaled(5), took
    assert reset == CANCEL
    assert wait_log(p, lambda ln: '"CONNECT /echo?old' in ln), p.access_log()
