"""An HTTP/2 backend for the tests of HTTP/2 toward upstreams: python3-h2 over plain TCP (h2c,
prior knowledge) or TLS with ALPN h2. It counts the connections it accepted, records each
request (headers, body, trailers) and each stream the client reset, and answers with a
handler(req) -> H2Answer, run on a thread of its own per stream so that slow answers overlap.

Behaviours for retries: refuse_first (the first N streams get RST_STREAM REFUSED_STREAM),
goaway_first (the first connection answers its first request with GOAWAY last_stream_id 0,
which refuses it) and drop_first_after (the first connection closes, without a word, when a
request comes after that many)."""

import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings


class H2Request:
    def __init__(self, stream_id, headers):
        self.stream_id = stream_id
        self.headers = headers  # list of (name, value), pseudo-headers included
        self.body = b""
        self.trailers = []
        self.refused = False
        self.sent = 0  # response body bytes handed to the connection
        self.done = threading.Event()

    def header(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None

    @property
    def method(self):
        return self.header(":method")

    @property
    def path(self):
        return self.header(":path")


class H2Answer:
    def __init__(self, status=200, headers=(), body=b"", trailers=(), delay=0, hang=False):
        self.status = status
        self.headers = list(headers)
        self.body = body
        self.trailers = list(trailers)
        self.delay = delay
        self.hang = hang


def echo(req):
    """The method, path, and request body back."""
    head = ("%s %s\n" % (req.method, req.path)).encode()
    return H2Answer(200, [("content-type", "text/plain")], head + req.body)


class _Conn:
    def __init__(self, server, sock, index):
        self.server = server
        self.sock = sock
        self.index = index
        self.lock = threading.Condition()
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.requests = {}
        self.closed = False

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def run(self):
        with self.lock:
            self.h2.initiate_connection()
            self.h2.update_settings({
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.server.max_streams})
            self.flush()
        try:
            while not self.closed:
                data = self.sock.recv(65536)
                if not data:
                    break
                with self.lock:
                    events = self.h2.receive_data(data)
                    for ev in events:
                        self.event(ev)
                    self.flush()
                    self.lock.notify_all()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            with self.lock:
                self.closed = True
                self.lock.notify_all()
            try:
                self.sock.close()
            except OSError:
                pass

    def event(self, ev):
        srv = self.server
        if isinstance(ev, h2.events.RequestReceived):
            req = H2Request(ev.stream_id, list(ev.headers))
            self.requests[ev.stream_id] = req
            with srv.lock:
                n = srv.n_streams
                srv.n_streams += 1
            if n < srv.refuse_first:
                req.refused = True
                self.h2.reset_stream(ev.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                with srv.lock:
                    srv.refused.append(req)
                return
            if self.index == 0 and srv.drop_first_after is not None and \
                    len(self.requests) > srv.drop_first_after:
                req.refused = True  # closed without a word, as an idle timeout would
                self.closed = True
                self.sock.shutdown(socket.SHUT_RDWR)
                return
            if srv.goaway_first and self.index == 0 and n == 0:
                req.refused = True
                self.h2.close_connection(error_code=0, last_stream_id=0)
                with srv.lock:
                    srv.refused.append(req)
                return
            if ev.stream_ended:
                self.dispatch(req)
        elif isinstance(ev, h2.events.DataReceived):
            req = self.requests.get(ev.stream_id)
            if req is not None:
                req.body += ev.data
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            req = self.requests.get(ev.stream_id)
            if req is not None:
                req.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            req = self.requests.get(ev.stream_id)
            if req is not None and not req.refused and req not in srv.requests:
                self.dispatch(req)
        elif isinstance(ev, h2.events.StreamReset):
            with srv.lock:
                srv.resets.append((ev.stream_id, ev.error_code))

    def dispatch(self, req):
        with self.server.lock:
            self.server.requests.append(req)
        threading.Thread(target=self.answer, args=(req,), daemon=True).start()

    def answer(self, req):
        try:
            a = self.server.handler(req)
            if a.delay:
                time.sleep(a.delay)
            if a.hang:
                return
            sid = req.stream_id
            with self.lock:
                hdrs = [(":status", str(a.status))] + a.headers
                end = not a.body and not a.trailers
                self.h2.send_headers(sid, hdrs, end_stream=end)
                self.flush()
                body = a.body
                while body and not self.closed:
                    try:
                        n = min(self.h2.local_flow_control_window(sid), len(body),
                                self.h2.max_outbound_frame_size)
                    except h2.exceptions.StreamClosedError:
                        return
                    if n <= 0:
                        self.lock.wait(1)
                        continue
                    last = n == len(body) and not a.trailers
                    self.h2.send_data(sid, body[:n], end_stream=last)
                    req.sent += n
                    body = body[n:]
                    self.flush()
                if a.trailers and not self.closed:
                    self.h2.send_headers(sid, a.trailers, end_stream=True)
                    self.flush()
        except h2.exceptions.StreamClosedError:
            pass
        finally:
            req.done.set()


class H2Backend:
    """A listening HTTP/2 server on 127.0.0.1 (an ephemeral port): h2c, or h2 over TLS when
    cert/key are given."""

    def __init__(self, handler=echo, cert=None, key=None, max_streams=100, refuse_first=0,
                 goaway_first=False, alpn=("h2",), drop_first_after=None):
        self.handler = handler
        self.max_streams = max_streams
        self.refuse_first = refuse_first
        self.goaway_first = goaway_first
        self.drop_first_after = drop_first_after
        self.lock = threading.Lock()
        self.accepted = 0
        self.n_streams = 0
        self.requests = []
        self.refused = []
        self.resets = []
        self.conns = []
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
            self.ctx.set_alpn_protocols(list(alpn))
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(256)
        self.port = self.lsock.getsockname()[1]
        self.open = True
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while self.open:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def serve(self, s):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ctx:
            try:
                s.settimeout(5)
                s = self.ctx.wrap_socket(s, server_side=True)
                s.settimeout(None)
            except (OSError, ssl.SSLError):
                s.close()
                return
        with self.lock:
            index = self.accepted
            self.accepted += 1
        c = _Conn(self, s, index)
        with self.lock:
            self.conns.append(c)
        c.run()

    def close(self):
        self.open = False
        try:
            self.lsock.close()
        except OSError:
            pass
        for c in list(self.conns):
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
