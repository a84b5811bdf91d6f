"""Portico process control for the end-to-end tests: start with a generated config, wait for the
port, signal, stop, read logs, check for sanitizer reports."""

import os
import signal as signals
import socket
import subprocess
import time

import pytest

from . import yamlgen
from .common import SANITIZE, START_TIMEOUT, free_port

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTICO_BIN = os.path.abspath(os.environ.get("PORTICO_BIN")
                              or os.path.join(_HERE, "..", "..", "build", "portico"))

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

# Every Portico process started and not yet stopped: their logs go into the report of a failing
# test.
_LIVE = []


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


class StartError(Exception):
    pass


def _listens(pid, port):
    """Whether process pid holds a listening TCP socket on port (from /proc: the LISTEN
    sockets' inodes in /proc/net/tcp{,6} against the process's socket descriptors)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(cols[9])
        except OSError:
            continue
    if not inodes:
        return False
    fd_dir = "/proc/%d/fd" % pid
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


class Portico:
    """One running Portico process."""

    def __init__(self, workdir, name, config, env=None):
        self.workdir = str(workdir)
        self.name = name
        self.config_path = os.path.join(self.workdir, "%s.yaml" % name)
        self.stdout_path = os.path.join(self.workdir, "%s.stdout" % name)
        self.stderr_path = os.path.join(self.workdir, "%s.stderr" % name)
        self.access_path = os.path.join(self.workdir, "%s.access.log" % name)
        self.env = env
        self.proc = None
        self.port = None
        self.rc = None
        self.config_text = ""
        self._config_src = config

    # --- config

    def build_config(self, config):
        """The full config dict for config (a dict or callable(port) -> dict), defaults filled."""
        cfg = config(self.port) if callable(config) else dict(config)
        cfg = dict(cfg)
        cfg.setdefault("workers", 1)
        cfg.setdefault("shutdown_timeout", "10s")
        cfg.setdefault("listen", [{"addr": "127.0.0.1:%d" % self.port}])
        log = dict(cfg.get("log") or {})
        log.setdefault("level", "info")
        log.setdefault("access", self.access_path)
        cfg["log"] = log
        return cfg

    def write_config(self, config=None, text=None):
        """Write the config file: text as is, or the YAML for config (default: the start one)."""
        if text is None:
            text = yamlgen.dump(self.build_config(self._config_src if config is None else config))
        with open(self.config_path, "w") as f:
            f.write(text)
        self.config_text = text

    # --- process

    def start(self, wait=True):
        self.port = free_port()
        self.write_config()
        self._spawn()
        if wait:
            self.wait_ready()
        return self

    def _spawn(self):
        env = dict(os.environ)
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if self.env:
            env.update(self.env)
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen([PORTICO_BIN, "run", "-c", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=env, cwd=self.workdir)
        finally:
            out.close()
            err.close()
        self.rc = None
        self.expect_exit = False  # set once the test (or harness) asked it to stop
        self.needed_kill = False
        _LIVE.append(self)

    def wait_ready(self, timeout=START_TIMEOUT):
        """Wait until the port accepts connections; StartError if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reap()
                raise StartError("portico exited with %s before listening on %d; stderr:\n%s"
                                 % (self.rc, self.port, self.stderr()[-4000:]))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                # Another process may have taken the free port before Portico bound it: the
                # port then accepts, but Portico is about to exit with "Address already in
                # use" (the factory retries on a new port). Only Portico's own listener counts.
                if _listens(self.proc.pid, self.port):
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise StartError("portico did not listen on %d within %.0fs; stderr:\n%s"
                         % (self.port, timeout, self.stderr()[-4000:]))

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if sig in (signals.SIGTERM, signals.SIGINT, signals.SIGKILL):
            self.expect_exit = True
        if self.alive():
            os.kill(self.proc.pid, sig)

    def reload(self, config=None, text=None):
        """Optionally rewrite the config file (same listen port), then send SIGHUP."""
        if config is not None or text is not None:
            self.write_config(config, text)
        self.signal(signals.SIGHUP)

    def stop(self, timeout=None, sig=signals.SIGTERM):
        """Send sig (SIGTERM), wait for exit (SIGKILL after timeout) and return the exit code."""
        timeout = START_TIMEOUT + 5 if timeout is None else timeout
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.expect_exit = True
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.needed_kill = True
                self.proc.kill()
                self.proc.wait(10)
        self._reap()
        return self.rc

    def wait_exit(self, timeout):
        """Wait for the process to exit by itself; its exit code, or None on timeout."""
        self.expect_exit = True
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reap()
        return self.rc

    def _reap(self):
        self.rc = self.proc.returncode
        if self in _LIVE:
            _LIVE.remove(self)

    def kill(self):
        self.expect_exit = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None:
            self._reap()

    # --- output

    def stderr(self):
        return _read(self.stderr_path)

    def stdout(self):
        return _read(self.stdout_path)

    def access_log(self):
        """Access log lines (from the file the default config names)."""
        return [ln for ln in _read(self.access_path).splitlines() if ln.strip()]

    def status_kb(self, field):
        """A /proc/PID/status field in kB (VmRSS, VmHWM)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for ln in f:
                if ln.startswith(field + ":"):
                    return int(ln.split()[1])
        raise KeyError(field)

    def sanitizer_report(self):
        err = self.stderr()
        for m in SANITIZER_MARKERS:
            if m in err:
                return err
        return None


class PorticoFactory:
    """Starts Portico processes in one directory and stops them all in finish()."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.started = []

    def __call__(self, config, name=None, env=None, wait=True):
        name = name or "portico%d" % (len(self.started) + 1)
        last = None
        for attempt in range(3):  # a free port can be taken by another before Portico binds it
            p = Portico(self.workdir, name if attempt == 0 else "%s-retry%d" % (name, attempt),
                        config, env)
            self.started.append(p)
            try:
                return p.start(wait=wait)
            except StartError as e:
                last = e
                p.kill()
                err = p.stderr().lower()
                if "in use" not in err and "eaddrinuse" not in err:
                    raise
        raise last

    def finish(self):
        """Stop every process still running (SIGTERM); return the problems found (list of
        text): a process that died without being asked to, one that did not exit on SIGTERM
        within the time limit or exited non-zero, a sanitizer report in its stderr."""
        problems = []
        for p in self.started:
            if p.proc is None:
                continue
            tag = "portico %s (pid %d)" % (p.name, p.proc.pid)
            if p.alive():
                rc = p.stop()
                if p.needed_kill:
                    problems.append("%s did not exit within %ds of SIGTERM (killed)"
                                    % (tag, START_TIMEOUT + 5))
                elif rc != 0:
                    problems.append("%s exited with status %s after SIGTERM" % (tag, rc))
            else:
                p._reap()
                if not p.expect_exit:
                    problems.append("%s died during the test with status %s" % (tag, p.rc))
            rep = p.sanitizer_report() if SANITIZE else None
            if rep:
                problems.append("%s sanitizer report:\n%s" % (tag, rep[-8000:]))
            if problems and problems[-1].startswith(tag):
                problems[-1] += "\n--- stderr tail:\n" + p.stderr()[-3000:]
        return problems


def module_portico(tmp_path_factory, name, config):
    """For module-scoped fixtures: start one Portico; returns (portico, factory)."""
    f = PorticoFactory(tmp_path_factory.mktemp(name))
    return f(config, name=name), f


def finish_module(f):
    problems = f.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
