"""Response compression (issue 12, section 2): gzip, brotli and zstd chosen from Accept-Encoding
(q-values, then the configured order), applied only where it is allowed (types, min_size, not to
ranges, 204/304, no-transform, bodies already coded), with Vary, weak ETags and streamed framing.
Every compressed body is decoded with Python's zlib, brotli and zstandard and compared byte for
byte with what the backend sent; curl --compressed checks it as a real client does, over HTTP/1.1
and HTTP/2."""

import json
import os
import random
import subprocess
import time
import zlib

import brotli
import pytest
import zstandard

from helpers import backends as B
from helpers.client import RawConn, build_request
from helpers.common import closing_maker
from helpers.h2backend import H2Answer, H2Backend
from test_config_keys import diags, run_cli, write
from test_proxy import upstream


def text_body(n, seed=1):
    """n bytes of JSON-like text that compresses as real API answers do."""
    rnd = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "portico", "cache", "value", "id", "name", "true"]
    out = bytearray(b"[")
    i = 0
    while len(out) < n:
        out += json.dumps({"id": i, "name": rnd.choice(words), "n": rnd.randint(0, 10 ** 6),
                           "tags": [rnd.choice(words) for _ in range(3)]}).encode() + b","
        i += 1
    return bytes(out[:n])


BODY = text_body(20000)
JSON = [("Content-Type", "application/json")]


def decode(coding, data):
    if coding == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(data)
        assert d.eof and not d.unused_data, "gzip stream not ended cleanly"
        return out
    if coding == "br":
        return brotli.decompress(data)
    if coding == "zstd":
        d = zstandard.ZstdDecompressor().decompressobj()
        out = d.decompress(data)
        assert d.eof, "zstd frame not ended"
        return out
    raise AssertionError(coding)


def start(portico, backend, handler, site=None, route=None, http2=False, extra_routes=()):
    b = backend(handler)

    def cfg(port):
        r = {"match": "/*", "proxy": {"to": "app"}}
        if route is not None:
            r["compress"] = route
        s = {"routes": list(extra_routes) + [r]}
        if site is not None:
            s["compress"] = site
        c = {"sites": [s], "upstreams": {"app": upstream(b)}}
        if http2:
            c["listen"] = [{"addr": "127.0.0.1:%d" % port, "http2": True}]
        return c

    return portico(cfg), b


def fetch(p, ae, method="GET", target="/x", headers=()):
    hs = list(headers)
    if ae is not None:
        hs.append(("Accept-Encoding", ae))
    with RawConn(p.port) as c:
        c.send(build_request(method, target, hs))
        return c.read_response(method=method)


def vary_tokens(r):
    return [t.strip().lower() for v in r.header_all("Vary") for t in v.split(",") if t.strip()]


# ---- each coding, byte for byte ---------------------------------------------------------------

@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_each_coding_decodes_to_the_original_body(portico, backend, coding):
    p, _ = start(portico, backend, B.fixed(200, BODY, JSON), site=True)
    with RawConn(p.port) as c:
        for _ in range(2):  # the connection stays in sync after a compressed body
            c.send(build_request("GET", "/x", [("Accept-Encoding", coding)]))
            r = c.read_response()
            assert r.status == 200, r
            assert r.header("Content-Encoding") == coding, r
            assert not r.has_header("Content-Length"), r
            assert "accept-encoding" in vary_tokens(r), r
            assert len(r.body) < len(BODY) // 2, len(r.body)
            assert decode(coding, r.body) == BODY


def pieces(body, size, delay=0.0, chunked=False):
    """A backend that sends body in size-byte writes (Content-Length, or chunked)."""

    def h(req, w):
        hs = [("Content-Type", "text/plain")]
        hs.append(("Transfer-Encoding", "chunked") if chunked
                  else ("Content-Length", str(len(body))))
        w.head(200, hs)
        for i in range(0, len(body), size):
            part = body[i:i + size]
            w.raw(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            if delay:
                time.sleep(delay)
        if chunked:
            w.raw(b"0\r\n\r\n")

    return h


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_a_1mib_body_in_many_pieces_is_compressed_as_it_streams(portico, backend, coding):
    big = text_body(1 << 20, seed=7)
    p, _ = start(portico, backend, pieces(big, 3000), site=True)
    r = fetch(p, coding)
    assert r.header("Content-Encoding") == coding, r
    assert r.header("Transfer-Encoding") == "chunked", r
    assert decode(coding, r.body) == big


def test_a_chunked_upstream_response_is_compressed_piece_by_piece(portico, backend):
    p, _ = start(portico, backend, pieces(BODY, 1000, delay=0.002, chunked=True), site=True)
    for coding in ("gzip", "br", "zstd"):
        r = fetch(p, coding)
        assert r.header("Content-Encoding") == coding, r
        assert decode(coding, r.body) == BODY


def test_a_slow_client_gets_the_whole_body_under_back_pressure(portico, backend):
    big = text_body(4 << 20, seed=3)
    big = big + os.urandom(1 << 20)  # incompressible tail: output as large as input
    p, _ = start(portico, backend, pieces(big, 65536), site=True)
    with RawConn(p.port) as c:
        c.send(build_request("GET", "/x", [("Accept-Encoding", "gzip")]))
        time.sleep(0.5)  # Portico fills the socket and waits on the client
        r = c.read_response()
    assert decode("gzip", r.body) == big


def curl(args):
    return subprocess.run(["curl", "-s", "--max-time", "20"] + args, capture_output=True,
                          timeout=30)


def test_curl_compressed_gets_the_body(portico, backend, tmp_path):
    p, _ = start(portico, backend, B.fixed(200, BODY, JSON), site=True)
    hdr = tmp_path / "h"
    r = curl(["--compressed", "-D", str(hdr), "http://127.0.0.1:%d/x" % p.port])
    assert r.returncode == 0, r.stderr
    assert r.stdout == BODY
    assert "content-encoding:" in hdr.read_text().lower()


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_http2_clients_get_compressed_data_frames(portico, backend, tmp_path, coding):
    p, _ = start(portico, backend, pieces(BODY, 4000, chunked=True), site=True, http2=True)
    out, hdr = tmp_path / "body", tmp_path / "h"
    r = curl(["--http2-prior-knowledge", "-H", "Accept-Encoding: " + coding, "-D", str(hdr),
              "-o", str(out), "http://127.0.0.1:%d/x" % p.port])
    assert r.returncode == 0, r.stderr
    head = hdr.read_text().lower()
    assert head.startswith("http/2 200"), head
    assert "content-encoding: %s" % coding in head, head
    assert "content-length" not in head, head
    assert decode(coding, out.read_bytes()) == BODY
    r = curl(["--http2-prior-knowledge", "--compressed", "http://127.0.0.1:%d/x" % p.port])
    assert r.returncode == 0 and r.stdout == BODY


# ---- the choice -------------------------------------------------------------------------------

@pytest.mark.parametrize("ae,want", [
    ("gzip;q=0.5, br;q=0.8", "br"),
    ("gzip, br;q=0.9", "gzip"),
    ("gzip, br, zstd", "br"),  # equal q: the server's order (br, zstd, gzip)
    ("gzip, zstd", "zstd"),
    ("*", "br"),
    ("*;q=0.5, gzip", "gzip"),
    ("br;q=0, *", "zstd"),
    ("br;q=0, zstd;q=0, *", "gzip"),
    ("x-gzip", "gzip"),
    ("GZIP ; Q=1.0", "gzip"),
    ("gzip;q=0.5, identity", None),  # the client prefers the plain bytes
    ("gzip;q=0", None),
    ("identity", None),
    ("", None),
    ("deflate, compress", None),
    (None, None),
])
def test_the_coding_follows_q_values_then_the_server_order(portico, backend, ae, want):
    p, _ = start(portico, backend, B.fixed(200, BODY, JSON), site=True)
    r = fetch(p, ae)
    assert r.header("Content-Encoding") == want, (ae, r)
    if want:
        assert decode(want, r.body) == BODY
    else:
        assert r.body == BODY and r.header("Content-Length") == str(len(BODY)), r
        # another client may get a coded answer: caches must key on Accept-Encoding
        assert "accept-encoding" in vary_tokens(r), r


def test_the_configured_order_breaks_ties(portico, backend):
    p, _ = start(portico, backend, B.fixed(200, BODY, JSON),
                 site={"algorithms": ["gzip", "zstd"]})
    assert fetch(p, "br, zstd, gzip").header("Content-Encoding") == "gzip"
    assert fetch(p, "br, zstd").header("Content-Encoding") == "zstd"
    r = fetch(p, "br")
    assert not r.has_header("Content-Encoding") and r.body == BODY, r


def test_levels_change_the_output(portico, backend):
    p1, _ = start(portico, backend, B.fixed(200, BODY, JSON), site={"levels": {"gzip": 1}})
    p9, _ = start(portico, backend, B.fixed(200, BODY, JSON), site={"levels": {"gzip": 9}})
    a, b = fetch(p1, "gzip"), fetch(p9, "gzip")
    assert decode("gzip", a.body) == BODY and decode("gzip", b.body) == BODY
    assert len(b.body) < len(a.body), (len(a.body), len(b.body))


# ---- where it does not apply ------------------------------------------------------------------

def test_min_size_skips_short_bodies_but_not_unknown_lengths(portico, backend):
    small = BODY[:200]
    p, _ = start(portico, backend, B.fixed(200, small, JSON), site=True)
    r = fetch(p, "gzip")
    assert not r.has_header("Content-Encoding") and r.body == small, r
    assert "accept-encoding" not in vary_tokens(r), r
    p2, _ = start(portico, backend, B.fixed(200, small, JSON), site={"min_size": 100})
    r = fetch(p2, "gzip")
    assert r.header("Content-Encoding") == "gzip" and decode("gzip", r.body) == small
    # a chunked answer announces no length: compressed whatever its size
    p3, _ = start(portico, backend, B.chunked([b"tiny"], headers=[("Content-Type", "text/plain")]),
                  site=True)
    r = fetch(p3, "gzip")
    assert r.header("Content-Encoding") == "gzip" and decode("gzip", r.body) == b"tiny"


@pytest.mark.parametrize("ctype,types,want", [
    ("text/html; charset=utf-8", None, True),
    ("application/problem+json", None, True),
    ("image/svg+xml", None, True),
    ("Application/JSON", None, True),
    ("image/png", None, False),
    ("application/octet-stream", None, False),
    ("application/json", ["text/plain"], False),
    ("text/plain", ["text/plain"], True),
    ("application/vnd.api+json", ["application/*+json"], True),
    ("application/json", ["application/*+json"], False),
])
def test_only_the_configured_types_are_compressed(portico, backend, ctype, types, want):
    site = True if types is None else {"types": types}
    p, _ = start(portico, backend, B.fixed(200, BODY, [("Content-Type", ctype)]), site=site)
    r = fetch(p, "gzip")
    assert (r.header("Content-Encoding") == "gzip") == want, r
    if not want:
        assert r.body == BODY and "accept-encoding" not in vary_tokens(r), r


def test_a_response_without_content_type_is_not_compressed(portico, backend):
    p, _ = start(portico, backend, B.fixed(200, BODY), site=True)
    r = fetch(p, "gzip")
    assert not r.has_header("Content-Encoding") and r.body == BODY, r


def test_no_transform_is_honoured(portico, backend):
    p, _ = start(portico, backend,
                 B.fixed(200, BODY, JSON + [("Cache-Control", "public, No-Transform")]), site=True)
    r = fetch(p, "gzip")
    assert not r.has_header("Content-Encoding") and r.body == BODY, r


def test_a_body_already_coded_is_passed_as_it_is(portico, backend):
    coded = zlib.compress(BODY)
    p, _ = start(portico, backend,
                 B.fixed(200, coded, JSON + [("Content-Encoding", "deflate")]), site=True)
    r = fetch(p, "gzip, br")
    assert r.header_all("Content-Encoding") == ["deflate"] and r.body == coded, r


def test_an_identity_content_encoding_is_replaced(portico, backend):
    p, _ = start(portico, backend,
                 B.fixed(200, BODY, JSON + [("Content-Encoding", "identity")]), site=True)
    r = fetch(p, "gzip")
    assert r.header_all("Content-Encoding") == ["gzip"], r
    assert decode("gzip", r.body) == BODY


def test_a_compressed_response_does_not_offer_ranges(portico, backend):
    """The upstream's ranges are of the identity bytes: a client resuming a gzip download with
    them would splice two codings together."""
    p, _ = start(portico, backend, B.fixed(200, BODY, JSON + [("Accept-Ranges", "bytes")]),
                 site=True)
    r = fetch(p, "gzip")
    assert r.header("Content-Encoding") == "gzip" and not r.has_header("Accept-Ranges"), r
    r = fetch(p, None)
    assert r.header("Accept-Ranges") == "bytes" and r.body == BODY, r


def test_a_partial_response_is_not_compressed(portico, backend):
    part = BODY[:1000]
    p, _ = start(portico, backend, B.fixed(206, part, JSON + [
        ("Content-Range", "bytes 0-999/%d" % len(BODY))]), site=True)
    r = fetch(p, "gzip", headers=[("Range", "bytes=0-999")])
    assert r.status == 206 and not r.has_header("Content-Encoding") and r.body == part, r


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_are_not_compressed(portico, backend, status):
    p, _ = start(portico, backend, B.fixed(status, b"", JSON + [("ETag", '"v1"')]), site=True)
    r = fetch(p, "gzip")
    assert r.status == status and not r.has_header("Content-Encoding"), r
    assert r.header("ETag") == '"v1"', r


def test_head_gets_the_compressed_head_without_a_body(portico, backend):
    p, _ = start(portico, backend, B.fixed(200, BODY, JSON + [("ETag", '"v1"')]), site=True)
    with RawConn(p.port) as c:
        c.send(build_request("HEAD", "/x", [("Accept-Encoding", "br")]))
        r = c.read_response(method="HEAD")
        assert r.status == 200 and r.header("Content-Encoding") == "br", r
        assert not r.has_header("Content-Length") and r.header("ETag") == 'W/"v1"', r
        assert "accept-encoding" in vary_tokens(r), r
        c.send(build_request("GET", "/x", [("Accept-Encoding", "br")]))  # still in sync
        r = c.read_response()
        assert decode("br", r.body) == BODY


# ---- the head ---------------------------------------------------------------------------------

@pytest.mark.parametrize("vary,want", [
    (None, ["Accept-Encoding"]),
    ("Origin", ["Origin, Accept-Encoding"]),
    ("Accept-Encoding", ["Accept-Encoding"]),
    ("origin, accept-encoding", ["origin, accept-encoding"]),
    ("*", ["*"]),
])
def test_vary_is_added_or_merged_once(portico, backend, vary, want):
    hs = JSON + ([("Vary", vary)] if vary else [])
    p, _ = start(portico, backend, B.fixed(200, BODY, hs), site=True)
    r = fetch(p, "gzip")
    assert r.header("Content-Encoding") == "gzip", r
    assert r.header_all("Vary") == want, r


@pytest.mark.parametrize("etag,want", [('"abc"', 'W/"abc"'), ('W/"abc"', 'W/"abc"')])
def test_a_strong_etag_becomes_weak(portico, backend, etag, want):
    p, _ = start(portico, backend, B.fixed(200, BODY, JSON + [("ETag", etag)]), site=True)
    r = fetch(p, "zstd")
    assert r.header("Content-Encoding") == "zstd" and r.header("ETag") == want, r
    r = fetch(p, "identity")
    assert r.header("ETag") == etag, r  # the plain bytes keep their validator


# ---- configuration ----------------------------------------------------------------------------

def test_compression_is_off_unless_configured(portico, backend):
    p, _ = start(portico, backend, B.fixed(200, BODY, JSON))
    r = fetch(p, "gzip, br, zstd")
    assert not r.has_header("Content-Encoding") and r.body == BODY, r
    assert "accept-encoding" not in vary_tokens(r), r


def test_a_route_replaces_its_sites_setting(portico, backend):
    off = {"match": "/plain/*", "proxy": {"to": "app"}, "compress": False}
    gz = {"match": "/gz/*", "proxy": {"to": "app"}, "compress": {"algorithms": ["gzip"]}}
    p, _ = start(portico, backend, B.fixed(200, BODY, JSON), site=True, extra_routes=[off, gz])
    assert fetch(p, "br", target="/x").header("Content-Encoding") == "br"
    r = fetch(p, "br", target="/plain/x")
    assert not r.has_header("Content-Encoding") and r.body == BODY, r
    assert fetch(p, "br, gzip", target="/gz/x").header("Content-Encoding") == "gzip"
    # and a route turns it on where its site does not
    p2, _ = start(portico, backend, B.fixed(200, BODY, JSON), site=False,
                  route={"enabled": True, "min_size": "1k"})
    assert fetch(p2, "zstd").header("Content-Encoding") == "zstd"


LISTEN = "listen: [{addr: \"127.0.0.1:8080\"}]\n"


@pytest.mark.parametrize("value,message", [
    ("5", 'expected true or false'),
    ("[gzip]", "expected true, false or a mapping"),
    ("{algorithms: [lzma]}", 'unknown compression algorithm "lzma"'),
    ("{algorithms: [gzip, gzip]}", '"gzip" is listed twice'),
    ("{algorithms: []}", "needs at least one"),
    ("{levels: {gzip: 12}}", "from 1 to 9"),
    ("{levels: {br: 12}}", "from 0 to 11"),
    ("{levels: {zstd: 0}}", "from 1 to 19"),
    ("{levels: {lz4: 1}}", "lz4"),
    ("{types: [json]}", '"json" is not a MIME type'),
    ("{min_size: lots}", "expected a size"),
    ("{enabled: maybe}", "enabled"),
    ("{typo: 1}", "typo"),
])
def test_bad_compress_values_are_errors_with_their_position(tmp_path, value, message):
    path = write(tmp_path / "p.yaml", LISTEN + "sites:\n  - routes:\n"
                 "      - match: /*\n        respond: {body: hi}\n        compress: %s\n" % value)
    r = run_cli("check", "-c", path)
    assert r.returncode != 0, r.stdout + r.stderr
    found = diags(r.stdout + r.stderr, path, "error")
    assert any(ln == 6 and message in msg for ln, _, msg in found), (found, r.stderr)


def test_good_compress_values_pass_the_check(tmp_path):
    path = write(tmp_path / "p.yaml", LISTEN + "sites:\n  - compress: true\n"
                 "    routes:\n      - match: /*\n        respond: {body: hi}\n"
                 "        compress: {enabled: true, types: [text/*, application/*+json],"
                 " min_size: 1k, algorithms: [zstd, br, gzip],"
                 " levels: {gzip: 9, br: 11, zstd: 19}}\n")
    r = run_cli("check", "-c", path)
    assert r.returncode == 0, r.stdout + r.stderr


# ---- HTTP/2 upstreams (handler/proxy_h2.c goes through the same head and filter) --------------

@pytest.fixture
def h2b():
    yield from closing_maker(H2Backend)


def test_an_h2c_upstream_response_is_compressed_with_its_trailers(portico, h2b, tmp_path):
    big = text_body(300000, seed=5)
    b = h2b(handler=lambda req: H2Answer(
        200, [("content-type", "application/json"), ("content-length", str(len(big))),
              ("etag", '"h2"')], big, trailers=[("x-checksum", "42")]))

    def cfg(port):
        ups = {"targets": [{"url": "http://127.0.0.1:%d" % b.port}], "protocol": "h2c"}
        return {"listen": [{"addr": "127.0.0.1:%d" % port, "http2": True}],
                "upstreams": {"app": ups},
                "sites": [{"compress": True, "routes": [{"match": "/*", "proxy": {"to": "app"}}]}]}

    p = portico(cfg)
    for coding in ("gzip", "br", "zstd"):
        r = fetch(p, coding)
        assert r.status == 200 and r.header("Content-Encoding") == coding, r
        assert r.header("ETag") == 'W/"h2"', r
        assert decode(coding, r.body) == big
        assert r.trailers == [("x-checksum", "42")], r.trailers
    out = tmp_path / "body"
    rc = curl(["--http2-prior-knowledge", "-H", "Accept-Encoding: zstd", "-o", str(out),
               "http://127.0.0.1:%d/x" % p.port])
    assert rc.returncode == 0, rc.stderr
    assert decode("zstd", out.read_bytes()) == big
