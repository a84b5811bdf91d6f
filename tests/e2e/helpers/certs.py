"""Throwaway certificates for the TLS end-to-end tests, made with the `openssl` command line.

    pki = certs.session_pki(tmp_path_factory)     # one CA per test session, cached
    crt, key = pki.server(["example.test", "*.example.test"], kind="rsa")   # or kind="ec"
    crt, key = pki.client("alice")                # clientAuth certificate signed by the CA
    other = certs.session_pki(tmp_path_factory, "other")   # a second, unrelated CA
    certs.fingerprint(crt)                        # SHA-256 of the DER, lower-case hex

Every certificate is issued once per (kind, names, tag) and cached for the session; pass a new
`tag` to get a fresh certificate (a new key and serial) for the same names, e.g. for a hot swap.
Files are plain PEM: `.pem` holds the leaf, `.key` an unencrypted private key.
"""

import hashlib
import os
import re
import ssl
import subprocess

_PKIS = {}


def _run(args, cwd):
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def _newkey(kind):
    if kind == "rsa":
        return ["-newkey", "rsa:2048"]
    if kind == "ec":
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    raise ValueError("kind must be rsa or ec, not %r" % kind)


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.replace("*", "star"))[:80]


def der(path):
    """The DER bytes of the first certificate in a PEM file."""
    with open(path) as f:
        text = f.read()
    begin = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", begin) + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(text[begin:end])


def fingerprint(path_or_der):
    """SHA-256 of a certificate's DER encoding (a PEM path or DER bytes), lower-case hex."""
    data = path_or_der if isinstance(path_or_der, (bytes, bytearray)) else der(path_or_der)
    return hashlib.sha256(data).hexdigest()


class Pki:
    """A CA in directory d and the certificates it issued (cached by what was asked)."""

    def __init__(self, d, name="Portico Test CA"):
        self.dir = str(d)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.ca_cert = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self._issued = {}
        self._serial = int.from_bytes(os.urandom(6), "big")
        _run(["openssl", "req", "-x509"] + _newkey("ec") +
             ["-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "30",
              "-subj", "/O=Portico Tests/CN=%s" % name,
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)

    def _issue(self, base, kind, subj, ext_lines, days=30):
        crt = os.path.join(self.dir, base + ".pem")
        key = os.path.join(self.dir, base + ".key")
        csr = os.path.join(self.dir, base + ".csr")
        ext = os.path.join(self.dir, base + ".ext")
        with open(ext, "w") as f:
            f.write("\n".join(ext_lines) + "\n")
        _run(["openssl", "req", "-new"] + _newkey(kind) +
             ["-nodes", "-keyout", key, "-out", csr, "-subj", subj], self.dir)
        self._serial += 1
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
              "-set_serial", str(self._serial), "-days", str(days), "-sha256",
              "-extfile", ext, "-out", crt], self.dir)
        os.chmod(key, 0o600)
        return crt, key

    def server(self, names, kind="rsa", tag=""):
        """(cert path, key path) for a server certificate naming `names` (DNS SANs, CN = the
        first), of key type kind ("rsa" or "ec"). Cached by (names, kind, tag)."""
        names = [names] if isinstance(names, str) else list(names)
        k = ("server", tuple(names), kind, tag)
        if k not in self._issued:
            base = "srv-%s-%s%s" % (_slug(names[0]), kind, ("-" + _slug(tag)) if tag else "")
            usage = ("digitalSignature,keyEncipherment" if kind == "rsa" else "digitalSignature")
            self._issued[k] = self._issue(
                base, kind, "/CN=%s" % names[0],
                ["basicConstraints=critical,CA:FALSE",
                 "keyUsage=critical,%s" % usage,
                 "extendedKeyUsage=serverAuth",
                 "subjectAltName=" + ",".join("DNS:%s" % n for n in names)])
        return self._issued[k]

    def client(self, cn, kind="ec", org="Portico Tests"):
        """(cert path, key path) for a client certificate with subject O=org, CN=cn."""
        k = ("client", cn, kind, org)
        if k not in self._issued:
            self._issued[k] = self._issue(
                "cli-%s-%s" % (_slug(cn), kind), kind, "/O=%s/CN=%s" % (org, cn),
                ["basicConstraints=critical,CA:FALSE",
                 "keyUsage=critical,digitalSignature",
                 "extendedKeyUsage=clientAuth"])
        return self._issued[k]


def session_pki(tmp_path_factory, name="main"):
    """The session's CA called name (made on first use, then cached for the session)."""
    k = (id(tmp_path_factory), name)
    if k not in _PKIS:
        _PKIS[k] = Pki(tmp_path_factory.mktemp("pki-" + _slug(name)),
                       "Portico Test CA %s" % name)
    return _PKIS[k]
