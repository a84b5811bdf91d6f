"""A minimal blocking HTTP/1.1 client over raw sockets, for the benchmark's own clients.

Only what the benchmark needs: GET over a kept-alive connection, a response read to its end by
Content-Length or chunked framing, the status code returned. Every read has a socket timeout.
"""

import socket


class HttpError(Exception):
    pass


def request_bytes(path, host="bench", headers=()):
    """The bytes of a GET for PATH; HEADERS: extra "Name: value" lines."""
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: portico-bench\r\n{extra}\r\n".encode()


class Conn:
    """One keep-alive connection; a read buffer survives between responses."""

    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send_get(self, path, headers=()):
        self.sock.sendall(request_bytes(path, headers=headers))

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise HttpError("connection closed by peer")
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + 2:]
                return out
            if len(self.buf) > 65536:
                raise HttpError("line too long")
            self._fill()

    def read_response(self):
        """Read one response; return (status, headers dict (lower-case names), body length)."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise HttpError("response head too long")
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers = {}
        for ln in lines[1:]:
            name, _, value = ln.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():  # trailers, then the empty line
                        pass
                    break
                self._take(size)
                self._take(2)
                length += size
        elif "content-length" in headers:
            length = int(headers["content-length"])
            self._take(length)
        elif status not in (204, 304):
            raise HttpError("response without framing (would need read-to-close)")
        return status, headers, length

    def get(self, path, headers=()):
        self.send_get(path, headers)
        return self.read_response()
