"""ACME (RFC 8555) against Debian's pebble on 127.0.0.1: a self-signed placeholder is served
until the first certificate arrives over HTTP-01, the certificate pebble issues is then served
and stored with mode 0600, and a stored certificate is renewed when its lifetime runs short
(PORTICO_ACME_RENEW_FRACTION=1 makes every check due) with the served certificate changing.
TLS-ALPN-01 (RFC 8737): with pebble's http-01 validation pointed at a closed port, the first
order fails, the manager switches challenge type and the TLS listener answers pebble's
"acme-tls/1" handshake with the challenge certificate."""

import json
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import time
import urllib.request

import pytest

from helpers.common import free_port, scaled, wait_until

PEBBLE = "/usr/bin/pebble"

pytestmark = pytest.mark.skipif(not os.access(PEBBLE, os.X_OK),
                                reason="pebble (the ACME test server) is not installed at %s: "
                                       "apt-get install pebble" % PEBBLE)


def _run(args, cwd):
    subprocess.run(args, cwd=str(cwd), check=True, capture_output=True)


def make_pebble_tls(d):
    """A CA and a certificate for localhost/127.0.0.1 for pebble's own https listener (the
    Debian package ships none)."""
    _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
          "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
          "-subj", "/CN=pebble test CA"], d)
    _run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", "pebble.key", "-out", "pebble.csr", "-subj", "/CN=localhost"], d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _run(["openssl", "x509", "-req", "-in", "pebble.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
          "-CAcreateserial", "-out", "pebble.pem", "-days", "2", "-extfile", "ext.cnf"], d)


class Pebble:
    def __init__(self, d, http_port, tls_port=None):
        self.d = d
        self.acme_port = free_port()
        self.mgmt_port = free_port()
        self.log_path = d / ("pebble-%d.log" % http_port)
        cfg = {"pebble": {"listenAddress": "127.0.0.1:%d" % self.acme_port,
                          "managementListenAddress": "127.0.0.1:%d" % self.mgmt_port,
                          "certificate": str(d / "pebble.pem"),
                          "privateKey": str(d / "pebble.key"),
                          "httpPort": http_port, "tlsPort": tls_port or free_port(),
                          "ocspResponderURL": "", "externalAccountBindingRequired": False}}
        self.cfg_path = d / ("pebble-%d.json" % http_port)
        self.cfg_path.write_text(json.dumps(cfg))
        self.proc = None

    @property
    def directory(self):
        return "https://localhost:%d/dir" % self.acme_port

    def start(self):
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_VA_ALWAYS_VALID="0",
                   PEBBLE_WFE_NONCEREJECT="0")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([PEBBLE, "-config", str(self.cfg_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env, cwd=str(self.d))
        ctx = ssl.create_default_context(cafile=str(self.d / "ca.pem"))

        def up():
            try:
                urllib.request.urlopen(self.directory, context=ctx, timeout=2).read()
                return True
            except OSError:
                return False
        assert wait_until(up, 15, 0.1), self.log()

    def mgmt(self, path):
        ctx = ssl.create_default_context(cafile=str(self.d / "ca.pem"))
        url = "https://127.0.0.1:%d%s" % (self.mgmt_port, path)
        return urllib.request.urlopen(url, context=ctx, timeout=5).read()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def served_cert(port):
    """The PEM leaf the TLS listener serves for SNI localhost, or ""."""
    try:
        r = subprocess.run("echo | openssl s_client -connect 127.0.0.1:%d -servername localhost "
                           "2>/dev/null | openssl x509" % port, shell=True, capture_output=True,
                           text=True, timeout=scaled(10))
    except subprocess.TimeoutExpired:
        return ""
    return r.stdout.strip() if "BEGIN CERTIFICATE" in r.stdout else ""


def cert_field(pem, *what):
    r = subprocess.run(["openssl", "x509", "-noout"] + list(what), input=pem, capture_output=True,
                       text=True, check=True)
    return r.stdout.strip()


def acme_config(tls_port, directory, ca_root, storage):
    def cfg(port):
        return {"listen": [{"addr": "127.0.0.1:%d" % port},
                           {"addr": "127.0.0.1:%d" % tls_port, "tls": True}],
                "tls": {"acme": {"email": "ops@example.com", "directory": directory,
                                 "ca_root": ca_root, "storage": storage}},
                "sites": [{"hosts": ["localhost"],
                           "routes": [{"match": "/*", "respond": {"body": "hello"}}]}]}
    return cfg


@pytest.fixture
def pebbles(tmp_path):
    made = []
    yield made
    for p in made:
        p.stop()


def test_acme_placeholder_then_pebble_certificate_then_renewal(portico, tmp_path, pebbles):
    make_pebble_tls(tmp_path)
    storage = tmp_path / "acme"
    tls_port = free_port()
    holder = {}

    # Phase 1: Portico starts before pebble, so it must serve its placeholder and retry.
    def cfg1(port):
        holder["pebble"] = Pebble(tmp_path, port)
        return acme_config(tls_port, holder["pebble"].directory, str(tmp_path / "ca.pem"),
                           str(storage))(port)

    p = portico(cfg1, env={"PORTICO_ACME_CHECK_MS": "500"})
    pb = holder["pebble"]
    pebbles.append(pb)
    first = wait_until(lambda: served_cert(tls_port), scaled(10))
    assert first, p.stderr()
    assert "Portico ACME placeholder" in cert_field(first, "-issuer")
    assert cert_field(first, "-issuer").replace("issuer", "") == \
        cert_field(first, "-subject").replace("subject", "")
    assert stat.S_IMODE(os.stat(storage).st_mode) == 0o700

    pb.start()

    def pebble_issued():
        pem = served_cert(tls_port)
        return pem if pem and "Pebble" in cert_field(pem, "-issuer") else ""
    real = wait_until(pebble_issued, scaled(30), 0.25)
    assert real, "no pebble certificate served; portico:\n%s\npebble:\n%s" % (
        p.stderr()[-4000:], pb.log())
    assert "DNS:localhost" in cert_field(real, "-ext", "subjectAltName")

    # The chain verifies against pebble's root and intermediate from its management API.
    (tmp_path / "root.pem").write_bytes(pb.mgmt("/roots/0"))
    (tmp_path / "inter.pem").write_bytes(pb.mgmt("/intermediates/0"))
    (tmp_path / "leaf.pem").write_text(real + "\n")
    v = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "root.pem"), "-untrusted",
                        str(tmp_path / "inter.pem"), str(tmp_path / "leaf.pem")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr

    for name in ("account.key", "localhost.crt", "localhost.key", "placeholder.key"):
        st = os.stat(storage / name)
        assert stat.S_IMODE(st.st_mode) == 0o600, name
    assert "acme: certificate for localhost" in p.stderr()
    assert "PRIVATE KEY" not in p.stderr()
    p.stop()
    pb.stop()
    stored = (storage / "localhost.crt").read_text()

    # Phase 2: a restart serves the stored certificate at once; told that the lifetime is short
    # (every check due), it renews from a new pebble and serves the new certificate.
    def cfg2(port):
        holder["pebble2"] = Pebble(tmp_path, port)
        holder["pebble2"].start()
        return acme_config(tls_port, holder["pebble2"].directory, str(tmp_path / "ca.pem"),
                           str(storage))(port)

    p2 = portico(cfg2, env={"PORTICO_ACME_CHECK_MS": "500", "PORTICO_ACME_RENEW_FRACTION": "1"})
    pebbles.append(holder["pebble2"])
    first_fp = cert_field(served_cert(tls_port), "-fingerprint")
    stored_fp = cert_field(stored, "-fingerprint")
    renewed = wait_until(lambda: (lambda pem: pem and cert_field(pem, "-fingerprint") not in
                                  (stored_fp,) and "Pebble" in cert_field(pem, "-issuer") and pem)
                         (served_cert(tls_port)), scaled(30), 0.25)
    assert renewed, "no renewal; portico:\n%s\npebble:\n%s" % (p2.stderr()[-4000:],
                                                               holder["pebble2"].log())
    assert first_fp in (stored_fp, cert_field(renewed, "-fingerprint"))
    assert cert_field(renewed, "-fingerprint") != stored_fp
    p2.stop()
    shutil.rmtree(storage, ignore_errors=True)


def test_acme_tls_alpn01_when_http01_cannot_succeed(portico, tmp_path, pebbles):
    make_pebble_tls(tmp_path)
    storage = tmp_path / "acme"
    tls_port = free_port()
    holder = {}

    def cfg(port):
        # http-01 validations go to a port nobody listens on; tls-alpn-01 ones to Portico.
        holder["pebble"] = Pebble(tmp_path, free_port(), tls_port=tls_port)
        holder["pebble"].start()
        return acme_config(tls_port, holder["pebble"].directory, str(tmp_path / "ca.pem"),
                           str(storage))(port)

    p = portico(cfg, env={"PORTICO_ACME_CHECK_MS": "500"})
    pb = holder["pebble"]
    pebbles.append(pb)

    def pebble_issued():
        pem = served_cert(tls_port)
        return pem if pem and "Pebble" in cert_field(pem, "-issuer") else ""
    real = wait_until(pebble_issued, scaled(45), 0.25)
    assert real, "no pebble certificate served; portico:\n%s\npebble:\n%s" % (
        p.stderr()[-4000:], pb.log())
    err = p.stderr()
    assert "answering http-01 for localhost" in err  # tried first, failed (closed port)
    assert "answering tls-alpn-01 for localhost" in err
    assert "DNS:localhost" in cert_field(real, "-ext", "subjectAltName")
    # No challenge is pending any more: a client offering only acme-tls/1 is refused.
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls_port,
                        "-servername", "localhost", "-alpn", "acme-tls/1"], input="",
                       capture_output=True, text=True, timeout=scaled(10))
    assert "ALPN protocol: acme-tls/1" not in r.stdout
    assert "1.3.6.1.5.5.7.1.31" not in r.stdout
    p.stop()


def test_acme_first_handshake_gets_a_certificate(portico, tmp_path):
    # Regression: the workers began on a snapshot built before the ACME manager had its
    # placeholders, so a handshake queued while Portico started found no certificate and was
    # closed. The connection here is made as soon as the TLS port is listening.
    make_pebble_tls(tmp_path)
    tls_port = free_port()
    nowhere = "https://localhost:%d/dir" % free_port()  # no ACME server: the placeholder stays
    p = portico(acme_config(tls_port, nowhere, str(tmp_path / "ca.pem"), str(tmp_path / "acme")),
                wait=False)
    deadline = time.monotonic() + scaled(10)
    sock = None
    while sock is None and time.monotonic() < deadline and p.alive():
        try:
            sock = socket.create_connection(("127.0.0.1", tls_port), timeout=scaled(10))
        except OSError:
            time.sleep(0.002)
    assert sock is not None, p.stderr()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
        der = tls.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    assert "Portico ACME placeholder" in cert_field(pem, "-issuer")
