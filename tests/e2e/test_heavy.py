"""Heavy: 1 GiB through Portico in each direction with bounded memory, and 10,000 idle keep-alive
client connections on one worker. Marked `heavy`; they run in `make test` and are kept lean."""

import hashlib
import json
import resource
import socket
import struct
import time

import pytest

from helpers import backends as B
from helpers.client import RawConn, build_request
from helpers.common import SANITIZE, gen_chunks, gen_sha256, scaled
from helpers.portico import finish_module, module_portico

pytestmark = pytest.mark.heavy

GIB = 1 << 30
MIB = 1 << 20


@pytest.fixture(scope="module")
def transfer(tmp_path_factory):
    b = B.Backend(B.by_path({"/down": B.stream(GIB)}), "heavy")
    cfg = {
        "limits": {"body_size": "2g"},
        "upstreams": {"app": {"targets": [{"url": b.url}]}},
        "sites": [{"routes": [{"match": "/*", "proxy": {"to": "app", "timeout": "60s"}}]}],
        "log": {"access": "off"},
    }
    p, f = module_portico(tmp_path_factory, "heavy", cfg)
    try:
        yield p, b
    finally:
        b.close()
        finish_module(f)


def check_peak_rss(p, limit_mib):
    hwm = p.status_kb("VmHWM")
    if SANITIZE:
        return  # ASan's shadow memory and quarantine make RSS meaningless
    assert hwm < limit_mib * 1024, "Portico peak RSS %d KiB over %d MiB" % (hwm, limit_mib)


def test_1gib_upload_streams_with_bounded_memory(transfer):
    p, b = transfer
    want = gen_sha256(GIB)
    with RawConn(p.port, timeout=scaled(30)) as c:
        c.send(build_request("POST", "/up", [("Content-Length", str(GIB)),
                                             ("Content-Type", "application/octet-stream")]))
        for chunk in gen_chunks(GIB):
            c.sock.sendall(chunk)
        r = c.read_response(method="POST")
    assert r.status == 200, r
    d = json.loads(r.body)
    assert d["body_len"] == GIB
    assert d["body_sha256"] == want
    check_peak_rss(p, 64)


def test_1gib_download_streams_with_bounded_memory(transfer):
    p, b = transfer
    want = gen_sha256(GIB)
    h = hashlib.sha256()
    with RawConn(p.port, timeout=scaled(30)) as c:
        c.send(build_request("GET", "/down"))
        r = c.read_response(sink=h.update)
    assert r.status == 200, r
    assert r.body_len == GIB
    assert h.hexdigest() == want
    check_peak_rss(p, 64)


def test_10k_idle_keepalive_connections_on_one_worker(portico):
    n = 10_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 500
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, need))
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    try:
        _ten_thousand(portico, n)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _ten_thousand(portico, n):
    p = portico({
        "workers": 1,
        "limits": {"keepalive_timeout": "300s"},
        "log": {"access": "off"},
        "sites": [{"routes": [{"match": "/*", "respond": {"status": 200, "body": "idle-ok"}}]}],
    })
    req = build_request("GET", "/k")
    conns = []
    deadline = time.monotonic() + scaled(60)
    try:
        batch = 100
        for start in range(0, n, batch):
            assert time.monotonic() < deadline, "only %d connections open in time" % len(conns)
            group = [RawConn(p.port, timeout=scaled(10)) for _ in range(batch)]
            conns.extend(group)
            for c in group:
                c.send(req)
            for c in group:
                r = c.read_response()
                assert r.status == 200 and r.body == b"idle-ok", r
        assert len(conns) == n
        time.sleep(0.5)
        rss = p.status_kb("VmRSS")
        if not SANITIZE:
            assert rss < 100 * 1024, "Portico RSS %d KiB with %d idle connections" % (rss, n)
        # a sample of the idle connections still answers
        for c in conns[:: n // 100]:
            c.send(req)
            r = c.read_response()
            assert r.status == 200 and r.body == b"idle-ok", r
        # and a new connection is served
        with RawConn(p.port) as c:
            assert c.request("GET", "/new").body == b"idle-ok"
        assert p.alive()
    finally:
        for c in conns:
            try:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            c.close()
