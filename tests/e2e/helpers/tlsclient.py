"""TLS clients for the end-to-end tests: Python's ssl module for precise checks (the raw-socket
HTTP client of client.py over TLS), and wrappers around `openssl s_client` and curl.

    with TLSConn(port, "example.test", cafile=pki.ca_cert) as c:
        r = c.request("GET", "/", host="example.test")
        c.info()        # {"version", "cipher", "alpn", "fingerprint", "reused"}
    info = handshake(port, "example.test")             # no verification, just the handshake
    out = s_client(port, ["-servername", "x", "-alpn", "http/1.1"])
    r = curl(["-sk", "https://..."])
"""

import socket
import ssl
import subprocess

from .certs import fingerprint
from .client import RawConn
from .common import IO_TIMEOUT, scaled


def context(cafile=None, alpn=None, minv=None, maxv=None, ciphers=None, cert=None, key=None,
            tickets=True):
    """A client SSLContext; verifies against cafile when given, else verifies nothing."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if minv is not None:
        ctx.minimum_version = minv
    if maxv is not None:
        ctx.maximum_version = maxv
    if ciphers:
        ctx.set_ciphers(ciphers)
    if cert:
        ctx.load_cert_chain(cert, key)
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


class TLSConn(RawConn):
    """A RawConn over TLS: request()/read_response()/send() as in client.py."""

    def __init__(self, port, server_name=None, ctx=None, timeout=IO_TIMEOUT, host="127.0.0.1",
                 session=None, **ctx_args):
        ctx = ctx or context(**ctx_args)
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=server_name, session=session)
        except BaseException:
            raw.close()
            raise
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.timeout = timeout

    def info(self):
        s = self.sock
        return {"version": s.version(), "cipher": s.cipher()[0],
                "alpn": s.selected_alpn_protocol(),
                "fingerprint": fingerprint(s.getpeercert(binary_form=True)),
                "reused": s.session_reused}


def handshake(port, server_name=None, **kw):
    """Handshake only; the info() dict of the connection."""
    with TLSConn(port, server_name, **kw) as c:
        return c.info()


def https_get(port, target, server_name="localhost", headers=None, host=None, **kw):
    """One GET over a fresh TLS connection; the Response."""
    with TLSConn(port, server_name, **kw) as c:
        return c.request("GET", target, headers, host=host or server_name or "localhost")


def s_client(port, args, stdin=b"", timeout=None):
    """Run `openssl s_client -connect 127.0.0.1:port ARGS` with stdin; CompletedProcess whose
    .out is stdout and stderr together as text."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                       input=stdin, capture_output=True, timeout=timeout or scaled(20))
    r.out = (r.stdout + b"\n" + r.stderr).decode("utf-8", "replace")
    return r


def s_client_fingerprint(port, args):
    """SHA-256 fingerprint (lower-case hex) of the leaf certificate s_client saw, or None."""
    r = s_client(port, args)
    text = r.stdout.decode("utf-8", "replace")
    if "-----BEGIN CERTIFICATE-----" not in text:
        return None
    begin = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return fingerprint(ssl.PEM_cert_to_DER_cert(text[begin:end]))


def curl(args, timeout=None):
    """Run curl with args (a response is written with -i or -w by the caller); CompletedProcess
    with text output."""
    return subprocess.run(["curl", "--max-time", str(int(timeout or scaled(15)))] + list(args),
                          capture_output=True, timeout=(timeout or scaled(15)) + 10)
