"""OCSP stapling (issue 4 item 1) end to end.

A throwaway CA issues a leaf whose AIA extension names an OCSP responder on
http://127.0.0.1:PORT/ and a delegated responder certificate (OCSPSigning). The responder is a
small HTTP server of this test bound to 127.0.0.1 that hands each request to
`openssl ocsp -index ... -rsigner ... -CA ... -reqin ... -respout ...` (`openssl ocsp -port`
would listen on every interface, which these tests never do). Portico serves the leaf with the
CA in its chain; `openssl s_client -status` must show a successful response with a good
certificate status, stapled without any request having waited for it. A reload (SIGHUP) keeps
the cached response (no new fetch), and a certificate whose responder is down is served without
a staple.
"""

import datetime
import http.server
import os
import re
import subprocess
import threading

import pytest

from helpers.common import free_port, scaled, wait_until


def _run(args, cwd, **kw):
    return subprocess.run(args, cwd=str(cwd), check=True, capture_output=True, timeout=60, **kw)


class OcspPki:
    """CA, responder certificate and a leaf naming http://127.0.0.1:port/ as its responder."""

    def __init__(self, d, port):
        self.d = d
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        (d / "ca.cnf").write_text(
            "[req]\ndistinguished_name=dn\n[dn]\n[ca]\nbasicConstraints=critical,CA:true\n"
            "keyUsage=critical,keyCertSign,cRLSign\n"
            "[leaf]\nsubjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n"
            "authorityInfoAccess=OCSP;URI:http://127.0.0.1:%d/\n"
            "[resp]\nextendedKeyUsage=critical,OCSPSigning\n" % port)
        _run(["openssl", "req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.pem", "-days",
             "2", "-subj", "/CN=Portico OCSP test CA", "-config", "ca.cnf", "-extensions", "ca"],
             d)
        for name, ext, subj in (("leaf", "leaf", "/CN=localhost"),
                                ("resp", "resp", "/CN=Portico OCSP responder")):
            _run(["openssl", "req"] + ec + ["-keyout", name + ".key", "-out", name + ".csr",
                 "-subj", subj], d)
            _run(["openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey",
                  "ca.key", "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile",
                  "ca.cnf", "-extensions", ext], d)
        # The served file: leaf, then the issuer (Portico finds the issuer in the chain).
        (d / "chain.pem").write_text((d / "leaf.pem").read_text() + (d / "ca.pem").read_text())
        out = _run(["openssl", "x509", "-in", "leaf.pem", "-noout", "-serial", "-enddate",
                    "-subject", "-nameopt", "compat"], d, text=True).stdout
        serial = re.search(r"serial=([0-9A-F]+)", out).group(1)
        end = re.search(r"notAfter=(.*)", out).group(1).strip()
        when = datetime.datetime.strptime(end, "%b %d %H:%M:%S %Y GMT")
        subject = re.search(r"subject=(.*)", out).group(1).strip()
        (d / "index.txt").write_text("V\t%s\t\t%s\tunknown\t%s\n"
                                     % (when.strftime("%y%m%d%H%M%SZ"), serial, subject))


class Responder:
    """An OCSP responder on 127.0.0.1:port (POST, RFC 6960 A.1) backed by `openssl ocsp`."""

    def __init__(self, pki, port):
        self.requests = 0
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with lock:
                    outer.requests += 1
                    d = pki.d
                    (d / "req.der").write_bytes(body)
                    r = subprocess.run(
                        ["openssl", "ocsp", "-index", "index.txt", "-CA", "ca.pem", "-rsigner",
                         "resp.pem", "-rkey", "resp.key", "-nmin", "10", "-reqin", "req.der",
                         "-respout", "resp.der"], cwd=str(d), capture_output=True, timeout=30)
                    data = (d / "resp.der").read_bytes() if r.returncode == 0 else b""
                if not data:
                    self.send_response(500)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def s_client_status(port):
    try:
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                            "-servername", "localhost", "-status"], input="",
                           capture_output=True, text=True, timeout=scaled(10))
    except subprocess.TimeoutExpired:
        return ""
    return r.stdout


def config(pki):
    def cfg(port):
        return {"listen": [{"addr": "127.0.0.1:%d" % port, "tls": True}],
                "tls": {"certificates": [{"cert": str(pki.d / "chain.pem"),
                                          "key": str(pki.d / "leaf.key")}]},
                "sites": [{"routes": [{"match": "/*", "respond": {"body": "ok\n"}}]}]}
    return cfg


@pytest.fixture
def ocsp_setup(tmp_path):
    port = free_port()
    pki = OcspPki(tmp_path, port)
    made = []

    def start():
        r = Responder(pki, port)
        made.append(r)
        return r
    yield pki, start
    for r in made:
        r.stop()


def test_ocsp_response_is_stapled_verified_and_survives_reload(portico, ocsp_setup):
    pki, start_responder = ocsp_setup
    # The responder itself checks the request and answers "good" for our leaf.
    resp = start_responder()
    p = portico(config(pki))
    tls_port = p.port

    def stapled():
        out = s_client_status(tls_port)
        return out if "OCSP Response Status: successful" in out else ""
    out = wait_until(stapled, scaled(15), 0.2)
    assert out, "no staple; portico:\n%s" % p.stderr()[-3000:]
    assert "Cert Status: good" in out
    assert "Next Update:" in out
    assert "Responder Id: CN = Portico OCSP responder" in out
    assert "ocsp: response from http://127.0.0.1" in p.stderr()
    fetched = resp.requests
    assert fetched >= 1

    # A reload rebuilds the context from the same certificate file: the process-wide cache keeps
    # the response, so it is stapled at once and not fetched again.
    mark = len(p.stderr())
    p.reload()
    assert wait_until(lambda: "reload" in p.stderr()[mark:].lower(), scaled(10)), p.stderr()
    out = s_client_status(tls_port)
    assert "OCSP Response Status: successful" in out and "Cert Status: good" in out
    assert resp.requests == fetched
    assert "ocsp: response from" not in p.stderr()[mark:]


def test_ocsp_no_staple_while_responder_is_down_then_stapled_after_backoff(portico, ocsp_setup):
    pki, start_responder = ocsp_setup
    p = portico(config(pki))
    tls_port = p.port
    assert wait_until(lambda: "retrying in 5s" in p.stderr(), scaled(15)), p.stderr()
    out = s_client_status(tls_port)
    assert "CONNECTED" in out
    assert "OCSP response: no response sent" in out
    start_responder()

    def stapled():
        o = s_client_status(tls_port)
        return o if "OCSP Response Status: successful" in o else ""
    out = wait_until(stapled, scaled(20), 0.25)
    assert out, p.stderr()[-3000:]
    assert "Cert Status: good" in out
    assert os.path.exists(pki.d / "resp.der")
