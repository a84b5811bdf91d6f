"""A small HTTP/1.1 client over raw sockets, so tests control every byte sent and see every byte
received (http.client adds headers and hides interim responses and connection state)."""

import json
import socket
import time

from .common import IO_TIMEOUT


class Closed(Exception):
    """The peer closed the connection before a whole response arrived."""


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in order received
        self.body = body  # bytes, or None when streamed to a sink
        self.raw_head = raw_head
        self.body_len = 0
        self.trailers = []  # (name, value) of a chunked body's trailer section

    def header(self, name, default=None):
        """The first value of header `name` (case-insensitive), or default."""
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has_header(self, name):
        return bool(self.header_all(name))

    def header_names(self):
        return {k.lower() for k, _ in self.headers}

    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        b = self.body if self.body is None or len(self.body) < 300 else self.body[:300] + b"..."
        return "<Response %s %r headers=%r body=%r>" % (self.status, self.reason, self.headers, b)


def build_request(method, target, headers=None, body=None, host="localhost", version="HTTP/1.1"):
    """Request bytes. headers: list of (name, value) or dict. Host is added first unless host is
    None; Content-Length is added for a body unless the headers frame it already."""
    hs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in hs}
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    for k, v in hs:
        lines.append("%s: %s" % (k, v))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is not None:
        data += body
    return data


def chunked_body(parts, trailers=""):
    """Encode parts (bytes) as a chunked body."""
    out = bytearray()
    for p in parts:
        if p:
            out += b"%x\r\n" % len(p) + p + b"\r\n"
    out += b"0\r\n" + trailers.encode("latin-1") + b"\r\n"
    return bytes(out)


class RawConn:
    """One client connection. send() raw bytes; read_response() parses one response."""

    def __init__(self, port, timeout=IO_TIMEOUT, host="127.0.0.1", source=None):
        # source: local address to connect from (e.g. "127.0.0.2"), kernel-chosen port
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, target, headers=None, body=None, host="localhost"):
        self.send(build_request(method, target, headers, body, host))
        return self.read_response(method=method)

    def _fill(self, n=65536):
        d = self.sock.recv(n)
        if not d:
            raise Closed("connection closed by peer (have %d buffered bytes: %r)"
                         % (len(self.buf), bytes(self.buf[:200])))
        self.buf += d

    def _take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                return self._take(i + 2)[:-2]
            self._fill()

    def read_head(self):
        """Read and parse one response head (any status, 1xx included)."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            if len(self.buf) > 1 << 20:
                raise AssertionError("response head over 1 MiB")
            self._fill()
        raw = self._take(i + 4)
        lines = raw[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError("malformed status line from Portico: %r" % lines[0])
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for ln in lines[1:]:
            k, sep, v = ln.decode("latin-1").partition(":")
            if not sep:
                raise AssertionError("malformed header line from Portico: %r" % ln)
            headers.append((k, v.strip(" \t")))
        return Response(version, status, reason, headers, None, raw)

    def read_response(self, method="GET", sink=None, allow_interim=False):
        """Read one response. Interim (1xx) responses are skipped unless allow_interim, in which
        case the interim response itself is returned. With sink, body bytes go to sink(bytes)
        instead of being kept."""
        while True:
            r = self.read_head()
            if 100 <= r.status < 200 and r.status != 101:
                if allow_interim:
                    r.body = b""
                    return r
                continue
            break
        body = bytearray()

        def put(data):
            r.body_len += len(data)
            if sink is not None:
                sink(data)
            else:
                body.extend(data)

        te = ",".join(r.header_all("Transfer-Encoding")).lower()
        cl = r.header_all("Content-Length")
        if method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200:
            pass
        elif te:
            if te.replace(" ", "").split(",")[-1] != "chunked":
                raise AssertionError("response Transfer-Encoding not ending in chunked: %r" % te)
            while True:
                size_line = self._line()
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:  # trailers, kept in r.trailers
                        ln = self._line()
                        if ln == b"":
                            break
                        k, _, v = ln.decode("latin-1").partition(":")
                        r.trailers.append((k, v.strip(" \t")))
                    break
                while len(self.buf) < size + 2:
                    self._fill(max(65536, size + 2 - len(self.buf)))
                put(self._take(size))
                if self._take(2) != b"\r\n":
                    raise AssertionError("bad chunk terminator from Portico")
        elif cl:
            if len(set(cl)) != 1:
                raise AssertionError("conflicting Content-Length from Portico: %r" % cl)
            left = int(cl[0])
            if self.buf:
                take = self._take(min(left, len(self.buf)))
                put(take)
                left -= len(take)
            scratch = bytearray(min(max(left, 1), 1 << 20))
            view = memoryview(scratch)
            while left > 0:
                n = self.sock.recv_into(view, min(left, len(scratch)))
                if n == 0:
                    raise Closed("connection closed with %d body bytes missing" % left)
                put(bytes(view[:n]))
                left -= n
        else:  # read to close
            if self.buf:
                put(self._take(len(self.buf)))
            while True:
                d = self.sock.recv(1 << 20)
                if not d:
                    break
                put(d)
        r.body = None if sink is not None else bytes(body)
        return r

    def wait_closed(self, timeout=None):
        """True when the peer closes (recv gives b"" or the connection is reset) within timeout,
        having sent nothing more; False on timeout. Raises AssertionError if data arrives."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        if self.buf:
            raise AssertionError("unexpected bytes after response: %r" % bytes(self.buf[:200]))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            finally:
                self.sock.settimeout(self.timeout)
            if not d:
                return True
            raise AssertionError("unexpected bytes while waiting for close: %r" % d[:200])


def request(port, method, target, headers=None, body=None, host="localhost", timeout=IO_TIMEOUT,
            source=None):
    """One request on a fresh connection (from local address source, when given); returns the
    Response (connection then closed)."""
    with RawConn(port, timeout=timeout, source=source) as c:
        return c.request(method, target, headers, body, host)


def get(port, target, headers=None, host="localhost", timeout=IO_TIMEOUT, source=None):
    return request(port, "GET", target, headers, None, host, timeout, source)
