"""Helpers for the load-balancing tests: a lean counting backend whose behaviour can be changed
while it runs (ok, slow, 503, hang), killed (listening socket and connections closed) and
restarted on the same port; a bounded multi-threaded keep-alive load loop; config builders.

A CountingBackend answers every request with a 200 whose body and X-Backend header are its name,
and counts what it receives on its side: proxied requests (`count`), health checks (requests
for HEALTH_PATH, `health`), and the values of one request header (`keys`, e.g. X-User), so a
test can tell where each request went without trusting Portico's response.
"""

import collections
import re
import socket
import threading
import time

from .client import Closed, RawConn
from .common import IO_TIMEOUT

HEALTH_PATH = "/healthz"


class CountingBackend:
    """A threaded HTTP/1.1 backend on 127.0.0.1. mode: "ok", "slow" (delay seconds before each
    answer, health checks included), "503" (every request), "hang" (accept, read, never answer).
    kill() closes the listening socket and every connection; restart() listens again on the same
    port."""

    def __init__(self, name, key_header=None, mode="ok", delay=0.0, port=0):
        self.name = name
        self.key_header = key_header.lower() if key_header else None
        self.mode = mode
        self.delay = delay
        self.lock = threading.Lock()
        self.count = 0
        self.health = 0
        self.keys = collections.Counter()
        self.first_request_after = {}  # mark -> monotonic time of the first proxied request
        self._marks = []
        self._socks = set()
        self._stop = threading.Event()
        self._lsock = None
        self._thread = None
        self.port = port
        self._listen()
        self.url = "http://127.0.0.1:%d" % self.port

    # --- lifecycle

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(512)
        s.settimeout(0.05)
        self.port = s.getsockname()[1]
        self._lsock = s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, args=(s, self._stop),
                                        daemon=True, name="lb-%s-accept" % self.name)
        self._thread.start()

    def kill(self):
        """Stop listening (connects are refused from now on) and close every connection."""
        self._stop.set()
        try:
            self._lsock.close()
        except OSError:
            pass
        self._thread.join(5)
        with self.lock:
            socks = list(self._socks)
            self._socks.clear()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restart(self, mode="ok"):
        """Listen again on the same port."""
        self.mode = mode
        self._listen()

    close = kill

    def mark(self, label):
        """Remember the time of the first proxied request received after this call."""
        with self.lock:
            self._marks.append(label)

    def snapshot(self):
        with self.lock:
            return self.count

    # --- serving

    def _accept_loop(self, lsock, stop):
        while not stop.is_set():
            try:
                s, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s.settimeout(max(IO_TIMEOUT, 60.0))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self._socks.add(s)
            threading.Thread(target=self._serve, args=(s, stop), daemon=True).start()

    def _serve(self, s, stop):
        buf = b""
        try:
            while not stop.is_set():
                i = buf.find(b"\r\n\r\n")
                while i < 0:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                    i = buf.find(b"\r\n\r\n")
                head, buf = buf[:i], buf[i + 4:]
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if " " in lines[0] else "/"
                close = False
                length = 0
                key = None
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    k = k.strip().lower()
                    v = v.strip()
                    if k == "content-length":
                        length = int(v)
                    elif k == "connection" and "close" in v.lower():
                        close = True
                    elif k == self.key_header:
                        key = v
                while len(buf) < length:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                buf = buf[length:]
                is_health = path.split("?")[0] == HEALTH_PATH
                with self.lock:
                    if is_health:
                        self.health += 1
                    else:
                        self.count += 1
                        if key is not None:
                            self.keys[key] += 1
                        for m in self._marks:
                            self.first_request_after[m] = time.monotonic()
                        self._marks = []
                mode = self.mode
                if mode == "hang":
                    stop.wait(120)
                    return
                if mode == "slow" and stop.wait(self.delay):
                    return
                status = b"503 Service Unavailable" if mode == "503" else b"200 OK"
                body = self.name.encode()
                s.sendall(b"HTTP/1.1 %s\r\nContent-Length: %d\r\nX-Backend: %s\r\n%s\r\n%s"
                          % (status, len(body), body,
                             b"Connection: close\r\n" if close else b"", body))
                if close:
                    return
        except (OSError, ValueError):
            pass
        finally:
            with self.lock:
                self._socks.discard(s)
            try:
                s.close()
            except OSError:
                pass


class Backends:
    """A set of CountingBackends, closed together."""

    def __init__(self, names, **kw):
        self.by_name = collections.OrderedDict((n, CountingBackend(n, **kw)) for n in names)

    def __getitem__(self, name):
        return self.by_name[name]

    def __iter__(self):
        return iter(self.by_name.values())

    def counts(self):
        return {n: b.count for n, b in self.by_name.items()}

    def total(self):
        return sum(b.count for b in self)

    def close(self):
        for b in self:
            b.kill()


# --- load


class LoadResult:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = collections.Counter()
        self.by_backend = collections.Counter()
        self.errors = []  # client-side failures: connection closed, timeouts
        self.bad = []  # (time, status, body head) of every non-2xx
        self.requests = 0

    def ok(self):
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    def non2xx(self):
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300)

    def summary(self):
        return "requests %d, statuses %s, errors %d %s, first non-2xx %s" % (
            self.requests, dict(self.statuses), len(self.errors), self.errors[:3], self.bad[:3])


def run_load(port, threads, total=None, duration=None, headers=None, stop=None, path="/load",
             timeout=IO_TIMEOUT):
    """Send GETs from `threads` keep-alive connections until `total` requests were answered (all
    threads together), `duration` seconds passed, or the event `stop` is set, whichever comes
    first (at least one bound must be given; a hard cap of 200,000 requests applies).
    headers: a list of (name, value) or a callable(i) giving the headers of request i. A closed
    connection or a timeout counts as an error and the thread reconnects. Returns a LoadResult."""
    assert total or duration or stop
    res = LoadResult()
    cap = total or 200000
    deadline = time.monotonic() + duration if duration else None
    counter = [0]

    def next_index():
        with res.lock:
            if counter[0] >= cap:
                return None
            counter[0] += 1
            return counter[0] - 1

    def worker():
        conn = None
        try:
            while True:
                if stop is not None and stop.is_set():
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    return
                i = next_index()
                if i is None:
                    return
                hs = headers(i) if callable(headers) else headers
                try:
                    if conn is None:
                        conn = RawConn(port, timeout=timeout)
                    r = conn.request("GET", "%s?i=%d" % (path, i), hs)
                except (Closed, OSError) as e:
                    with res.lock:
                        res.requests += 1
                        res.errors.append("%.3f %r" % (time.monotonic(), e))
                    if conn is not None:
                        conn.close()
                    conn = None
                    continue
                with res.lock:
                    res.requests += 1
                    res.statuses[r.status] += 1
                    res.by_backend[r.header("X-Backend", "-")] += 1
                    if not 200 <= r.status < 300:
                        res.bad.append((round(time.monotonic(), 3), r.status, r.body[:120]))
                if (r.header("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    limit = (duration or 0) + max(60.0, IO_TIMEOUT * 3)
    for t in ts:
        t.join(limit)
    assert not any(t.is_alive() for t in ts), "load threads did not finish"
    return res


class Background:
    """run_load in a thread: start(), then stop() returns the LoadResult."""

    def __init__(self, port, threads, duration, **kw):
        self.stop_event = threading.Event()
        self.result = None
        self._t = threading.Thread(target=self._run, args=(port, threads, duration, kw),
                                   daemon=True)

    def _run(self, port, threads, duration, kw):
        self.result = run_load(port, threads, duration=duration, stop=self.stop_event, **kw)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self.stop_event.set()
        self._t.join(max(90.0, IO_TIMEOUT * 4))
        assert not self._t.is_alive(), "background load did not stop"
        return self.result


# --- config and logs


def upstream(backends, weights=None, **keys):
    """An upstream mapping for these backends (weights in the same order, optional)."""
    targets = []
    for i, b in enumerate(backends):
        t = {"url": b.url}
        if weights:
            t["weight"] = weights[i]
        targets.append(t)
    u = {"targets": targets}
    u.update(keys)
    return u


def proxy_config(ups, workers=1, route=None):
    """A config proxying every path to upstream "app" (ups: the upstream mapping) or, with a
    dict of upstreams and a route's proxy mapping, to that."""
    if route is None:
        return {"workers": workers, "upstreams": {"app": ups},
                "sites": [{"routes": [{"match": "/*", "proxy": {"to": "app"}}]}]}
    return {"workers": workers, "upstreams": ups,
            "sites": [{"routes": [{"match": "/*", "proxy": route}]}]}


def shares(counts):
    total = sum(counts.values())
    return {k: (v / total if total else 0.0) for k, v in counts.items()}


def wait_log(portico, pattern, timeout, after=0):
    """Poll Portico's stderr until a line matching regex `pattern` appears at or after character
    offset `after`; returns (monotonic time seen, line) or None on timeout."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        err = portico.stderr()[after:]
        for ln in err.splitlines():
            if rx.search(ln):
                return time.monotonic(), ln
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def log_lines(portico, pattern):
    rx = re.compile(pattern)
    return [ln for ln in portico.stderr().splitlines() if rx.search(ln)]
