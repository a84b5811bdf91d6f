"""Operations: reload on SIGHUP (also under load and with a bad file), graceful stop on SIGTERM and
SIGINT, access logs."""

import json
import os
import signal
import socket
import threading
import time

import pytest

from helpers import backends as B
from helpers.client import Closed, RawConn, get
from helpers.common import IO_TIMEOUT, scaled, wait_until


def respond_cfg(body, extra_routes=()):
    return {"sites": [{"routes": list(extra_routes) + [
        {"match": "/*", "respond": {"status": 200, "body": body}}]}]}


def body_is(p, want):
    try:
        return get(p.port, "/v").body == want
    except OSError:
        return False


def test_sighup_reload_changes_respond_body(portico):
    p = portico(respond_cfg("one"))
    assert get(p.port, "/v").body == b"one"
    p.reload(respond_cfg("two"))
    assert wait_until(lambda: body_is(p, b"two"), scaled(5)), get(p.port, "/v")
    assert p.alive()
    p.reload(respond_cfg("three"))
    assert wait_until(lambda: body_is(p, b"three"), scaled(5))


def test_keepalive_connection_survives_reload(portico):
    p = portico(respond_cfg("one"))
    with RawConn(p.port) as c:
        assert c.request("GET", "/v").body == b"one"
        p.reload(respond_cfg("two"))
        assert wait_until(lambda: body_is(p, b"two"), scaled(5))
        # the old connection still works and now serves the new configuration
        r = c.request("GET", "/v")
        assert r.status == 200 and r.body in (b"one", b"two")


def test_invalid_file_on_reload_keeps_old_config_and_logs_error(portico):
    p = portico(respond_cfg("one"))
    err_before = len(p.stderr())
    p.reload(text="sites:\n  - routes:\n      - match: \"/*\"\n        respond: {status: oops}\n"
                  "bogus_key: 1\n")
    assert wait_until(lambda: len(p.stderr()) > err_before, scaled(5)), "no log line on failure"
    time.sleep(0.3)
    new_err = p.stderr()[err_before:]
    assert "error" in new_err.lower(), new_err
    assert p.alive()
    for _ in range(5):
        assert get(p.port, "/v").body == b"one"
    # a later valid file is taken
    p.reload(respond_cfg("fixed"))
    assert wait_until(lambda: body_is(p, b"fixed"), scaled(5))


def test_unparseable_yaml_on_reload_keeps_serving(portico):
    p = portico(respond_cfg("one"))
    p.reload(text="sites: [ {routes: \n")
    time.sleep(scaled(0.5))
    assert p.alive()
    assert get(p.port, "/v").body == b"one"


@pytest.mark.parametrize("workers", [2])
def test_reload_under_load_drops_nothing(portico, backend, workers):
    b = backend(B.echo())
    ups = {"app": {"targets": [{"url": b.url}]}}

    def cfg(version):
        c = respond_cfg("v%d" % version, [{"match": "/p/*", "proxy": {"to": "app"}}])
        c["upstreams"] = ups
        c["workers"] = workers
        return c

    p = portico(cfg(0))
    per_thread = 500
    failures = []
    done = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + scaled(60)

    def client(tid):
        c = None
        try:
            for i in range(per_thread):
                if time.monotonic() > stop_at:
                    failures.append("thread %d: out of time at %d" % (tid, i))
                    return
                if c is None:
                    c = RawConn(p.port)
                path = "/p/%d/%d" % (tid, i) if i % 2 else "/v"
                try:
                    r = c.request("GET", path)
                except (OSError, Closed) as e:
                    failures.append("thread %d request %d %s: %r" % (tid, i, path, e))
                    c.close()
                    c = None
                    continue
                if r.status != 200:
                    failures.append("thread %d request %d %s: status %d" % (tid, i, path, r.status))
                elif i % 2 and json.loads(r.body)["path"] != path:
                    failures.append("thread %d request %d: wrong body %r" % (tid, i, r.body[:100]))
                elif not i % 2 and not r.body.startswith(b"v"):
                    failures.append("thread %d request %d: wrong body %r" % (tid, i, r.body[:100]))
                with lock:
                    done[0] += 1
                if "close" in (r.header("Connection") or "").lower():
                    c.close()
                    c = None
        finally:
            if c is not None:
                c.close()

    threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    total = 4 * per_thread
    for n in range(1, 6):
        # spread the five reloads over the run
        wait_until(lambda: done[0] >= total * n // 6 or not any(t.is_alive() for t in threads),
                   scaled(30))
        p.reload(cfg(n))
    for t in threads:
        t.join(scaled(60))
    assert not failures, "%d failures, first: %s" % (len(failures), failures[:5])
    assert done[0] == total
    assert p.alive()
    assert wait_until(lambda: body_is(p, b"v5"), scaled(5))


def test_sigterm_finishes_request_in_flight_then_exits_0(portico, backend):
    b = backend(B.slow(2.0))
    p = portico({"upstreams": {"app": {"targets": [{"url": b.url}]}},
                 "sites": [{"routes": [{"match": "/*", "proxy": {"to": "app"}}]}]})
    result = {}

    def slow_client():
        try:
            result["resp"] = get(p.port, "/slow", timeout=scaled(10))
        except Exception as e:  # noqa: BLE001
            result["error"] = e

    t = threading.Thread(target=slow_client)
    t.start()
    assert b.wait_requests(1, scaled(5)), "the slow request never reached the backend"
    p.signal(signal.SIGTERM)
    t.join(scaled(15))
    assert "error" not in result, result
    assert result["resp"].status == 200
    assert json.loads(result["resp"].body)["path"] == "/slow"
    rc = p.wait_exit(scaled(10))
    assert rc == 0, "exit status %r after SIGTERM" % rc
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", p.port), timeout=2).close()


def test_sigterm_stops_accepting_new_connections(portico, backend):
    b = backend(B.slow(2.0))
    p = portico({"upstreams": {"app": {"targets": [{"url": b.url}]}},
                 "sites": [{"routes": [{"match": "/*", "proxy": {"to": "app"}}]}]})
    t = threading.Thread(target=lambda: get(p.port, "/slow", timeout=scaled(10)))
    t.start()
    assert b.wait_requests(1, scaled(5))
    p.signal(signal.SIGTERM)
    time.sleep(0.5)  # still draining the slow request
    assert p.alive()
    refused = False
    try:
        with RawConn(p.port, timeout=2) as c:
            c.send(b"GET /new HTTP/1.1\r\nHost: a\r\n\r\n")
            c.read_response()
    except (ConnectionRefusedError, ConnectionResetError, Closed, socket.timeout):
        refused = True
    t.join(scaled(15))
    assert refused, "a new connection was served after SIGTERM"
    assert p.wait_exit(scaled(10)) == 0


def test_sigterm_with_idle_keepalive_connection_exits_promptly(portico):
    p = portico(respond_cfg("x"))
    with RawConn(p.port) as c:
        assert c.request("GET", "/").status == 200
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        rc = p.wait_exit(scaled(5))
        assert rc == 0, "exit status %r (or still running) after SIGTERM" % rc
        assert time.monotonic() - t0 < scaled(3)
        assert c.wait_closed(2)


def test_sigint_stops_gracefully(portico):
    p = portico(respond_cfg("x"))
    assert get(p.port, "/").status == 200
    p.signal(signal.SIGINT)
    assert p.wait_exit(scaled(5)) == 0


def test_shutdown_timeout_bounds_the_drain(portico, backend):
    b = backend(B.hang())
    cfg = {"shutdown_timeout": "1s", "upstreams": {"app": {"targets": [{"url": b.url}]}},
           "sites": [{"routes": [{"match": "/*", "proxy": {"to": "app", "timeout": "60s"}}]}]}
    p = portico(cfg)

    def hung_client():
        try:
            get(p.port, "/hang", timeout=scaled(10))
        except Exception:  # noqa: BLE001 - it is expected to be cut
            pass

    t = threading.Thread(target=hung_client)
    t.start()
    assert b.wait_requests(1, scaled(5))
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    rc = p.wait_exit(scaled(6))
    took = time.monotonic() - t0
    t.join(scaled(12))
    assert rc == 0, "exit status %r after SIGTERM with shutdown_timeout 1s" % rc
    assert took < scaled(4), "drain took %.1fs with shutdown_timeout 1s" % took


# --- access log


def test_access_log_combined_format(portico):
    p = portico(respond_cfg("x"))
    get(p.port, "/logged/path?q=1", [("User-Agent", "e2e-agent/1.0"), ("Referer", "http://r/")])
    get(p.port, "/second")
    assert p.stop() == 0
    lines = [ln for ln in p.access_log() if "/logged" in ln or "/second" in ln]
    assert len(lines) == 2, p.access_log()
    assert '"GET /logged/path?q=1 HTTP/1.1" 200' in lines[0], lines
    assert lines[0].startswith("127.0.0.1 "), lines
    assert '"e2e-agent/1.0"' in lines[0] and '"http://r/"' in lines[0], lines
    assert '"GET /second HTTP/1.1" 200' in lines[1], lines


def test_access_log_written_while_running(portico):
    p = portico(respond_cfg("x"))
    get(p.port, "/live")
    assert wait_until(lambda: any("/live" in ln for ln in p.access_log()), scaled(3)), \
        "access log line not written within 3s"


def test_access_log_json_format(portico):
    cfg = respond_cfg("x")
    cfg["log"] = {"format": "json"}
    p = portico(cfg)
    get(p.port, "/json/path")
    get(p.port, "/missing-route-is-still-200")
    assert p.stop() == 0
    docs = [json.loads(ln) for ln in p.access_log()]
    docs = [d for d in docs if d.get("path", "").startswith(("/json", "/missing"))]
    assert len(docs) == 2, p.access_log()
    assert docs[0]["status"] == 200
    assert docs[0]["path"] == "/json/path"
    assert docs[1]["path"] == "/missing-route-is-still-200"


def test_access_log_to_stdout(portico):
    cfg = respond_cfg("x")
    cfg["log"] = {"access": "stdout"}
    p = portico(cfg)
    get(p.port, "/to/stdout")
    assert p.stop() == 0
    assert '"GET /to/stdout HTTP/1.1" 200' in p.stdout(), p.stdout()


def test_access_log_off_writes_nothing(portico):
    cfg = respond_cfg("x")
    cfg["log"] = {"access": "off"}
    p = portico(cfg)
    get(p.port, "/silent/path")
    assert p.stop() == 0
    assert "/silent/path" not in p.stdout()
    assert "/silent/path" not in p.stderr()
    assert p.access_log() == []


def test_access_log_records_error_status(portico):
    p = portico({"sites": [{"routes": [{"match": "/only", "respond": {"body": "x"}}]}]})
    get(p.port, "/not/here")
    with RawConn(p.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert c.read_response().status == 400
    assert p.stop() == 0
    lines = p.access_log()
    assert any('"GET /not/here HTTP/1.1" 404' in ln for ln in lines), lines


def test_stop_after_reload_exits_0(portico):
    p = portico(respond_cfg("a"))
    p.reload(respond_cfg("b"))
    assert wait_until(lambda: body_is(p, b"b"), scaled(5))
    assert p.stop(timeout=IO_TIMEOUT) == 0


def test_request_in_flight_finishes_on_old_config_across_reload(portico, backend):
    old = backend(B.slow(1.0, B.echo(headers=[("X-Which", "old")])), "old")
    new = backend(B.echo(headers=[("X-Which", "new")]), "new")

    def cfg(b):
        return {"upstreams": {"app": {"targets": [{"url": b.url}]}},
                "sites": [{"routes": [{"match": "/*", "proxy": {"to": "app"}}]}]}

    p = portico(cfg(old))
    result = {}

    def slow_client():
        try:
            result["resp"] = get(p.port, "/inflight", timeout=scaled(10))
        except Exception as e:  # noqa: BLE001
            result["error"] = e

    t = threading.Thread(target=slow_client)
    t.start()
    assert old.wait_requests(1, scaled(5))
    p.reload(cfg(new))
    assert wait_until(lambda: get(p.port, "/probe").header("X-Which") == "new", scaled(5))
    t.join(scaled(10))
    assert "error" not in result, result
    assert result["resp"].status == 200
    assert result["resp"].header("X-Which") == "old"
    for _ in range(3):
        assert get(p.port, "/x").header("X-Which") == "new"


# --- signals other than SIGHUP/SIGTERM/SIGINT


def test_sigusr1_reopens_access_log_after_rename(portico):
    """logrotate's way: rename the file, send SIGUSR1; new lines go to a new file at the
    configured path and the renamed one keeps only what was written before."""
    p = portico(respond_cfg("x"))
    get(p.port, "/before-rotate")
    assert wait_until(lambda: any("/before-rotate" in ln for ln in p.access_log()), scaled(3))
    rotated = p.access_path + ".1"
    os.rename(p.access_path, rotated)
    p.signal(signal.SIGUSR1)
    assert wait_until(lambda: os.path.exists(p.access_path), scaled(5)), \
        "SIGUSR1 did not create a new access log file; stderr:\n" + p.stderr()[-2000:]
    get(p.port, "/after-rotate")
    assert wait_until(lambda: any("/after-rotate" in ln for ln in p.access_log()), scaled(3)), \
        p.access_log()
    assert p.alive()
    with open(rotated) as f:
        old = f.read()
    assert "/before-rotate" in old and "/after-rotate" not in old, old
    assert not any("/before-rotate" in ln for ln in p.access_log()), p.access_log()
    assert "reopened access log" in p.stderr(), p.stderr()[-2000:]


def test_sigusr1_twice_with_stdout_log_keeps_serving(portico):
    cfg = respond_cfg("x")
    cfg["log"] = {"access": "stdout"}
    p = portico(cfg)
    for _ in range(2):
        p.signal(signal.SIGUSR1)
        assert wait_until(lambda: "SIGUSR1" in p.stderr(), scaled(5)), p.stderr()[-2000:]
        assert get(p.port, "/still").status == 200
    assert p.alive()


@pytest.mark.parametrize("sig", ["SIGUSR2", "SIGALRM", "SIGVTALRM", "SIGPROF", "SIGPWR",
                                 "SIGRTMIN"])
def test_unused_signal_is_logged_and_ignored(portico, sig):
    p = portico(respond_cfg("x"))
    signum = getattr(signal, sig)
    p.signal(signum)
    assert wait_until(lambda: "ignored" in p.stderr(), scaled(5)), \
        "no log line for %s; stderr:\n%s" % (sig, p.stderr()[-2000:])
    assert p.alive(), "%s stopped Portico" % sig
    assert get(p.port, "/after").status == 200
    line = [ln for ln in p.stderr().splitlines() if "ignored" in ln][0]
    assert (sig if sig != "SIGRTMIN" else "SIGRTMIN") in line and " warn " in line, line


def test_sigquit_stops_gracefully_with_a_log_line(portico):
    p = portico(respond_cfg("x"))
    assert get(p.port, "/").status == 200
    p.expect_exit = True
    assert p.stop(sig=signal.SIGQUIT) == 0
    assert "received SIGQUIT" in p.stderr(), p.stderr()[-2000:]


def test_sigxcpu_drains_and_exits_0_with_an_error_line(portico):
    p = portico(respond_cfg("x"))
    assert get(p.port, "/").status == 200
    p.expect_exit = True
    assert p.stop(sig=signal.SIGXCPU) == 0
    assert any("SIGXCPU" in ln and " error " in ln for ln in p.stderr().splitlines()), \
        p.stderr()[-2000:]
