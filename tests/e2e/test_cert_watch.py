"""Certificates replaced on disk are picked up without a signal; a broken replacement is
refused with an error line and the previous certificate keeps serving."""

import shutil
import subprocess
import time

from helpers.common import scaled, wait_until


def make_cert(d, name):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(d / (name + ".key")),
                    "-out", str(d / (name + ".crt")), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)


def served_fingerprint(port):
    r = subprocess.run("echo | openssl s_client -connect 127.0.0.1:%d -servername localhost "
                       "2>/dev/null | openssl x509 -noout -fingerprint -sha256" % port,
                       shell=True, capture_output=True, text=True, timeout=scaled(10))
    return r.stdout.strip()


def file_fingerprint(path):
    r = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(path)],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def test_certificate_replaced_on_disk_is_served_and_broken_one_refused(portico, tmp_path):
    make_cert(tmp_path, "one")
    make_cert(tmp_path, "two")
    shutil.copy(tmp_path / "one.crt", tmp_path / "live.crt")
    shutil.copy(tmp_path / "one.key", tmp_path / "live.key")

    def cfg(port):
        return {"listen": [{"addr": "127.0.0.1:%d" % port, "tls": True}],
                "tls": {"certificates": [{"cert": str(tmp_path / "live.crt"),
                                          "key": str(tmp_path / "live.key")}]},
                "sites": [{"routes": [{"match": "/*", "respond": {"body": "hi"}}]}]}

    p = portico(cfg)
    assert served_fingerprint(p.port) == file_fingerprint(tmp_path / "one.crt")

    shutil.copy(tmp_path / "two.key", tmp_path / "live.key")
    shutil.copy(tmp_path / "two.crt", tmp_path / "live.crt")
    want = file_fingerprint(tmp_path / "two.crt")
    assert wait_until(lambda: served_fingerprint(p.port) == want, scaled(8))

    before = len(p.stderr())
    (tmp_path / "live.key").write_text("not a key\n")
    assert wait_until(lambda: "reload failed" in p.stderr()[before:], scaled(8)), p.stderr()
    assert served_fingerprint(p.port) == want
    assert p.alive()
