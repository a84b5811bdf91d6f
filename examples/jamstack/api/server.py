#!/usr/bin/env python3
"""The example's API backend: a small JSON service on the Python standard library.

It knows nothing about the site or about Portico: Portico reaches it at /v1/... when the browser
asks for /api/... on the site's own origin (see ../portico.yaml).

    python3 server.py 127.0.0.1:9001

GET  /v1/hello   a greeting, with what the proxy told the backend about the client
GET  /v1/todos   the list (kept in memory, at most 100 items)
POST /v1/todos   {"title": "..."} adds one (201)
GET  /v1/status  {"ok": true, "site": <the X-Site header portico.yaml adds>}
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_TODOS = 100
MAX_BODY = 4096

todos = [{"id": 1, "title": "Point Portico at the build folder"},
         {"id": 2, "title": "Keep _redirects and _headers as they are"}]
lock = threading.Lock()


class Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "example-api"

    def send_json(self, status, obj):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def path_only(self):
        return self.path.split("?", 1)[0]

    def do_GET(self):
        path = self.path_only()
        if path == "/v1/hello":
            self.send_json(200, {
                "message": "Hello from the API, through Portico",
                "path": self.path,
                "x_forwarded_for": self.headers.get("X-Forwarded-For"),
                "x_forwarded_proto": self.headers.get("X-Forwarded-Proto"),
            })
        elif path == "/v1/todos":
            with lock:
                self.send_json(200, {"todos": list(todos)})
        elif path == "/v1/status":
            self.send_json(200, {"ok": True, "site": self.headers.get("X-Site")})
        else:
            self.send_json(404, {"error": "no such endpoint"})

    do_HEAD = do_GET

    def do_POST(self):
        if self.path_only() != "/v1/todos":
            self.send_json(404, {"error": "no such endpoint"})
            return
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self.send_json(413 if n > MAX_BODY else 400, {"error": "bad body size"})
            self.close_connection = True
            return
        try:
            title = str(json.loads(self.rfile.read(n) or b"{}")["title"]).strip()[:100]
        except (ValueError, KeyError, TypeError):
            self.send_json(400, {"error": "expected {\"title\": \"...\"}"})
            return
        if not title:
            self.send_json(400, {"error": "empty title"})
            return
        with lock:
            if len(todos) >= MAX_TODOS:
                self.send_json(409, {"error": "the list is full"})
                return
            item = {"id": max((t["id"] for t in todos), default=0) + 1, "title": title}
            todos.append(item)
        self.send_json(201, item)

    def log_message(self, fmt, *args):
        sys.stderr.write("api: %s\n" % (fmt % args))


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9001"
    host, _, port = addr.rpartition(":")
    srv = ThreadingHTTPServer((host, int(port)), Api)
    srv.daemon_threads = True
    sys.stderr.write("api: listening on %s\n" % addr)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
