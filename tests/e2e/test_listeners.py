"""Listening sockets: an address is Portico's alone (a second Portico or any other process on
it fails at start with `Address already in use`), overlapping listeners are an error at
`check`, and listeners added or removed in the file take effect on SIGHUP (issue #9, items 4 and
"listener changes on reload")."""

import re
import socket
import subprocess

import pytest

from helpers.client import RawConn, get
from helpers.common import START_TIMEOUT, free_port, scaled, wait_until
from helpers.portico import PORTICO_BIN, Portico

ROUTES = {"sites": [{"routes": [{"match": "/*", "respond": {"status": 200, "body": "one\n"}}]}]}


def run_cli(*args):
    return subprocess.run([PORTICO_BIN] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=START_TIMEOUT)


def config_text(*addrs, body="x"):
    lines = ["workers: 1", "log:", "  access: \"off\"", "listen:"]
    lines += ['  - addr: "%s"' % a for a in addrs]
    lines += ["sites:", "  - routes:", '      - match: "/*"',
              '        respond: {status: 200, body: "%s"}' % body]
    return "\n".join(lines) + "\n"


def start_second(tmp_path, port, workers=1):
    """Runs a second Portico on 127.0.0.1:port in the foreground; returns (rc, stderr), or
    (None, stderr) when it was still running after a moment (then it has been killed)."""
    path = tmp_path / "second.yaml"
    path.write_text(config_text("127.0.0.1:%d" % port).replace("workers: 1",
                                                               "workers: %d" % workers))
    proc = subprocess.Popen([PORTICO_BIN, "run", "-c", str(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=scaled(3))
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        return None, err


@pytest.mark.parametrize("workers", [1, 2])
def test_second_portico_on_the_same_port_fails(portico, tmp_path, workers):
    p = portico(dict(ROUTES, workers=workers))
    rc, err = start_second(tmp_path, p.port, workers)
    assert rc is not None, "a second Portico started on the same port:\n" + err
    assert rc != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Address already in use" in lines[0], err
    assert "127.0.0.1:%d" % p.port in lines[0]
    # and the first one still serves everything
    for _ in range(10):
        assert get(p.port, "/").body == b"one\n"


def test_port_held_by_another_process_makes_portico_fail(tmp_path):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(8)
    try:
        rc, err = start_second(tmp_path, holder.getsockname()[1])
    finally:
        holder.close()
    assert rc is not None and rc != 0, err
    assert "Address already in use" in err, err


@pytest.mark.parametrize("a,b", [
    (":{p}", "127.0.0.1:{p}"),
    ("127.0.0.1:{p}", "0.0.0.0:{p}"),
    ("127.0.0.1:{p}", "127.0.0.1:{p}"),
    ("[::]:{p}", "[::1]:{p}"),
])
def test_check_rejects_overlapping_listeners(tmp_path, a, b):
    port = free_port()
    path = tmp_path / "overlap.yaml"
    path.write_text(config_text(a.format(p=port), b.format(p=port)))
    r = run_cli("check", "-c", str(path))
    assert r.returncode == 1, r
    m = re.search(r"^%s:(\d+):(\d+): .*(overlaps|listed twice)" % re.escape(str(path)),
                  r.stderr, re.M)
    assert m, r.stderr
    assert int(m.group(1)) == 6, r.stderr  # the second address's line


def test_check_accepts_distinct_listeners(tmp_path):
    port = free_port()
    path = tmp_path / "ok.yaml"
    path.write_text(config_text("127.0.0.1:%d" % port, "127.0.0.2:%d" % port,
                                "[::]:%d" % port, "0.0.0.0:%d" % free_port()))
    r = run_cli("check", "-c", str(path))
    assert r.returncode == 0, r


def test_run_rejects_overlapping_listeners(tmp_path):
    port = free_port()
    path = tmp_path / "overlap.yaml"
    path.write_text(config_text(":%d" % port, "127.0.0.1:%d" % port))
    r = subprocess.run([PORTICO_BIN, "run", "-c", str(path)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=START_TIMEOUT)
    assert r.returncode == 1 and "overlaps" in r.stderr, r


# ---- reload

def listen_config(*ports, body="one\n"):
    def make(_port):
        return {"listen": [{"addr": "127.0.0.1:%d" % q} for q in ports],
                "sites": [{"routes": [{"match": "/*",
                                       "respond": {"status": 200, "body": body}}]}]}
    return make


def refuses(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


@pytest.mark.parametrize("workers", [1, 2])
def test_reload_adds_and_removes_listeners(portico, workers):
    extra = free_port()
    p = portico(lambda port: dict(listen_config(port)(port), workers=workers))
    keep = RawConn(p.port)
    assert keep.request("GET", "/").body == b"one\n"
    # add a listener
    p.reload(dict(listen_config(p.port, extra, body="two\n")(p.port), workers=workers))
    assert wait_until(lambda: not refuses(extra) and get(extra, "/").body == b"two\n",
                      scaled(5)), p.stderr()
    assert get(p.port, "/").body == b"two\n"
    # the keep-alive connection opened before the reload still works
    assert keep.request("GET", "/").body == b"two\n"
    # remove the first listener: it stops accepting, the other and old connections go on
    p.reload(dict(listen_config(extra, body="three\n")(p.port), workers=workers))
    assert wait_until(lambda: refuses(p.port), scaled(5)), "removed listener still accepts"
    assert get(extra, "/").body == b"three\n"
    assert keep.request("GET", "/").body == b"three\n"
    keep.close()
    assert "listening on 127.0.0.1:%d" % extra in p.stderr()
    assert "no longer listening on 127.0.0.1:%d" % p.port in p.stderr()
    assert "take effect after a restart" not in p.stderr()


def test_reload_with_a_listener_that_cannot_bind_keeps_the_old_configuration(portico):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(8)
    taken = holder.getsockname()[1]
    try:
        p = portico(lambda port: listen_config(port)(port))
        p.reload(listen_config(p.port, taken, body="new\n")(p.port))
        assert wait_until(lambda: "reload failed" in p.stderr(), scaled(5)), p.stderr()
        line = [ln for ln in p.stderr().splitlines() if "reload failed" in ln][0]
        assert "Address already in use" in line and str(taken) in line, line
        assert get(p.port, "/").body == b"one\n"
    finally:
        holder.close()


def test_reload_turns_tls_on_for_a_kept_address(portico, tmp_path_factory):
    """TLS on/off of an existing address: the socket is kept and the new setting applies to
    the connections accepted after the reload."""
    from helpers import certs
    from helpers.tlsclient import handshake
    pki = certs.session_pki(tmp_path_factory)
    cert, key = pki.server(["a.test"], "ec")
    p = portico(lambda port: {"listen": [{"addr": "127.0.0.1:%d" % port}],
                              "sites": ROUTES["sites"]})
    assert get(p.port, "/").status == 200
    p.reload({"listen": [{"addr": "127.0.0.1:%d" % p.port, "tls": True}],
              "tls": {"certificates": [{"cert": cert, "key": key}]},
              "sites": ROUTES["sites"]})
    assert wait_until(lambda: "generation 2" in p.stderr(), scaled(5)), p.stderr()
    assert handshake(p.port, "a.test", cafile=pki.ca_cert)["fingerprint"] == certs.fingerprint(cert)
