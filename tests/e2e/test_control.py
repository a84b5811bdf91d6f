"""Controlling a running Portico: the pid file, `portico reload` and `portico stop`, and the
notifications a systemd Type=notify service gets."""

import os
import signal
import socket
import subprocess
import time

import pytest

from helpers.client import get
from helpers.common import START_TIMEOUT, scaled, wait_until
from helpers.dnsserver import DnsServer
from helpers.portico import PORTICO_BIN


def respond_cfg(body, pid_file="portico.pid"):
    cfg = {"sites": [{"routes": [{"match": "/*", "respond": {"status": 200, "body": body}}]}]}
    if pid_file:
        cfg["pid_file"] = pid_file
    return cfg


def cli(*args, cwd=None, timeout=None):
    return subprocess.run([PORTICO_BIN] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, cwd=cwd,
                          timeout=timeout or scaled(START_TIMEOUT + 30))


def body_is(p, want):
    try:
        return get(p.port, "/v").body == want
    except OSError:
        return False


def pid_path(p):
    return os.path.join(p.workdir, "portico.pid")


def dead_pid():
    """The id of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_pid_file_is_written_at_start_and_removed_at_exit(portico):
    p = portico(respond_cfg("x"))
    assert wait_until(lambda: os.path.exists(pid_path(p)), scaled(5)), os.listdir(p.workdir)
    with open(pid_path(p)) as f:
        assert f.read() == "%d\n" % p.pid
    assert not [n for n in os.listdir(p.workdir) if n.endswith(".tmp")], os.listdir(p.workdir)
    assert p.stop() == 0
    assert not os.path.exists(pid_path(p)), "pid file left behind after a clean stop"


def test_reload_command_reloads_the_running_instance(portico):
    p = portico(respond_cfg("one"))
    assert wait_until(lambda: os.path.exists(pid_path(p)), scaled(5))
    p.write_config(respond_cfg("two"))
    r = cli("reload", "-c", p.config_path)
    assert r.returncode == 0, r
    assert str(p.pid) in r.stdout, r
    assert wait_until(lambda: body_is(p, b"two"), scaled(5)), get(p.port, "/v")
    assert p.alive()


def test_reload_command_with_an_invalid_file_reports_it_and_does_not_signal(portico):
    p = portico(respond_cfg("one"))
    assert wait_until(lambda: os.path.exists(pid_path(p)), scaled(5))
    good = p.config_text
    p.write_config(text=good.replace("status: 200", "status: oops"))
    r = cli("reload", "-c", p.config_path)
    assert r.returncode == 1, r
    assert p.config_path + ":" in r.stderr and "not reloading" in r.stderr, r.stderr
    assert get(p.port, "/v").body == b"one"
    assert "reload failed" not in p.stderr() and "received" not in p.stderr(), \
        "the running process was signalled anyway: " + p.stderr()
    assert p.alive()


def test_stop_command_waits_until_the_process_has_exited(portico):
    p = portico(respond_cfg("x"))
    assert wait_until(lambda: os.path.exists(pid_path(p)), scaled(5))
    p.expect_exit = True
    r = cli("stop", "-c", p.config_path)
    assert r.returncode == 0, r
    assert "process %d stopped" % p.pid in r.stdout, r
    assert p.wait_exit(scaled(5)) == 0
    assert not os.path.exists(pid_path(p))


def test_stop_works_while_dns_is_down(portico):
    """portico stop reads only pid_file and shutdown_timeout: a DNS outage (a target host name
    that no longer resolves) must not keep an operator from stopping the process."""
    dns = DnsServer({"api.test": ["127.0.0.3"]})
    try:
        cfg = {"pid_file": "portico.pid",
               "resolver": {"servers": ["127.0.0.1:%d" % dns.port], "timeout": "1s"},
               "upstreams": {"api": {"targets": [{"url": "http://api.test:9"}]}},
               "routes": [{"match": "/*", "proxy": {"to": "api"}}]}
        p = portico(cfg)
        assert wait_until(lambda: os.path.exists(pid_path(p)), scaled(5))
    finally:
        dns.close()  # nothing answers from now on
    p.expect_exit = True
    r = cli("stop", "-c", p.config_path)
    assert r.returncode == 0, r
    assert p.wait_exit(scaled(5)) == 0


def test_stop_and_reload_with_pid_option_need_no_config(portico, tmp_path):
    p = portico(respond_cfg("one", pid_file="p.pid"))
    pf = os.path.join(p.workdir, "p.pid")
    assert wait_until(lambda: os.path.exists(pf), scaled(5))
    p.write_config(respond_cfg("two", pid_file="p.pid"))
    r = cli("reload", "--pid", pf, cwd=str(tmp_path / ".."))
    assert r.returncode == 0, r
    assert wait_until(lambda: body_is(p, b"two"), scaled(5))
    p.expect_exit = True
    r = cli("stop", "--pid", pf, "--timeout", str(int(scaled(20))))
    assert r.returncode == 0, r
    assert p.wait_exit(scaled(5)) == 0


@pytest.mark.parametrize("cmd", ["reload", "stop"])
def test_stale_pid_file_is_a_clear_error(tmp_path, cmd):
    pf = tmp_path / "stale.pid"
    pid = dead_pid()
    pf.write_text("%d\n" % pid)
    r = cli(cmd, "--pid", str(pf))
    assert r.returncode == 1, r
    assert "not running" in r.stderr and "stale" in r.stderr and str(pid) in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", ["reload", "stop"])
def test_missing_pid_file_says_portico_may_not_be_running(tmp_path, cmd):
    r = cli(cmd, "--pid", str(tmp_path / "none.pid"))
    assert r.returncode == 1, r
    assert "none.pid" in r.stderr and "is Portico running?" in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", ["reload", "stop"])
def test_config_without_pid_file_says_how_to_find_the_instance(portico, cmd):
    p = portico(respond_cfg("x", pid_file=None))
    r = cli(cmd, "-c", p.config_path)
    assert r.returncode == 1, r
    assert "pid_file" in r.stderr and "--pid" in r.stderr, r.stderr
    assert p.alive()


@pytest.mark.parametrize("cmd", ["reload", "stop"])
def test_dash_c_or_pid_without_a_value_says_what_is_missing(cmd):
    r = cli(cmd, "-c")
    assert r.returncode == 2 and "-c needs a configuration FILE" in r.stderr, r
    r = cli(cmd, "--pid")
    assert r.returncode == 2 and "--pid needs a PIDFILE" in r.stderr, r


def test_second_instance_with_the_same_pid_file_refuses_to_start(portico):
    first = portico(respond_cfg("x"))
    assert wait_until(lambda: os.path.exists(pid_path(first)), scaled(5))
    second = portico(respond_cfg("y"), wait=False)
    rc = second.wait_exit(scaled(START_TIMEOUT))
    assert rc == 1, "second instance exit status %r" % rc
    assert "names process %d, which is running" % first.pid in second.stderr(), second.stderr()
    with open(pid_path(first)) as f:
        assert f.read() == "%d\n" % first.pid
    assert first.alive() and get(first.port, "/").status == 200


def test_stale_pid_file_at_start_is_replaced(portico, tmp_path):
    (tmp_path / "portico.pid").write_text("%d\n" % dead_pid())
    p = portico(respond_cfg("x"))
    assert wait_until(lambda: (tmp_path / "portico.pid").read_text() == "%d\n" % p.pid,
                      scaled(5))


# --- systemd notifications (Type=notify)


class NotifySocket:
    """A unix datagram socket in the abstract namespace, as systemd's NOTIFY_SOCKET."""

    def __init__(self):
        self.name = "portico-e2e-notify-%d-%s" % (os.getpid(), os.urandom(6).hex())
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.messages = []

    @property
    def env(self):
        return {"NOTIFY_SOCKET": "@" + self.name}

    def wait_for(self, field, timeout):
        """Reads datagrams until one holds field (e.g. READY=1); returns it, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.messages.append(msg)
            if field in msg.split("\n"):
                return msg
        return None

    def close(self):
        self.sock.close()


def states(messages):
    keys = ("READY=1", "RELOADING=1", "STOPPING=1")
    return [k for m in messages for k in keys if k in m.split("\n")]


def test_systemd_notify_ready_reloading_ready_stopping_in_order(portico):
    ns = NotifySocket()
    try:
        p = portico(respond_cfg("one", pid_file=None), env=ns.env)
        ready = ns.wait_for("READY=1", scaled(10))
        assert ready and "STATUS=" in ready, ns.messages
        assert get(p.port, "/v").body == b"one"
        p.reload(respond_cfg("two", pid_file=None))
        assert ns.wait_for("READY=1", scaled(10)), ns.messages
        assert body_is(p, b"two")
        reloading = [m for m in ns.messages if "RELOADING=1" in m.split("\n")]
        assert reloading, ns.messages
        usec = [ln for ln in reloading[0].split("\n") if ln.startswith("MONOTONIC_USEC=")]
        assert usec and int(usec[0].split("=", 1)[1]) > 0, reloading
        p.expect_exit = True
        p.signal(signal.SIGTERM)
        assert ns.wait_for("STOPPING=1", scaled(10)), ns.messages
        assert p.wait_exit(scaled(10)) == 0
        assert states(ns.messages) == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"], \
            ns.messages
    finally:
        ns.close()


def test_systemd_notify_failed_reload_still_says_ready_with_a_status(portico):
    ns = NotifySocket()
    try:
        p = portico(respond_cfg("one", pid_file=None), env=ns.env)
        assert ns.wait_for("READY=1", scaled(10)), ns.messages
        p.reload(text=p.config_text.replace("status: 200", "status: oops"))
        again = ns.wait_for("READY=1", scaled(10))
        assert again and "failed" in again, ns.messages
        assert states(ns.messages) == ["READY=1", "RELOADING=1", "READY=1"], ns.messages
        assert get(p.port, "/v").body == b"one"
    finally:
        ns.close()
