"""A small RFC 8441 client: WebSocket over HTTP/2 extended CONNECT, on asyncio and python3-h2,
with several WebSocket streams per h2c connection. It frames WebSocket messages itself (RFC 6455
§5: masked client frames, one frame per message; continuation frames are joined on receipt).

    conn = await H2WsConn.open(port)
    ws = await conn.websocket("/echo")        # ws.status, ws.headers; raises H2WsRefused
    await ws.send(b"bytes" or "text"); msg = await ws.recv()
    await ws.close()                           # close handshake, then END_STREAM
    await conn.aclose()

Flow control: received DATA is acknowledged on receipt unless conn.ack is False (a client that
does not read: conn.ack_all() later reopens the windows), and send waits for the windows."""

import asyncio
import os
import struct

import h2.config
import h2.connection
import h2.events
import h2.settings
from hyperframe.frame import GoAwayFrame

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class H2WsRefused(Exception):
    """The server answered the extended CONNECT with a status other than 2xx, or reset it."""

    def __init__(self, status, headers, body=b"", reset=None):
        super().__init__("status %s reset %s" % (status, reset))
        self.status, self.headers, self.body, self.reset = status, headers, body, reset


class H2WsClosed(Exception):
    """The stream or the connection ended before a message came."""


def frame(op, payload, fin=True):
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | op])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    # XOR with the mask, four bytes at a time through a big integer (fast enough for tests)
    m = (mask * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")
    return head + mask + body


class H2WebSocket:
    def __init__(self, conn, sid):
        self.conn, self.sid = conn, sid
        self.status, self.headers = None, {}
        self.buf = bytearray()
        self.msgs = asyncio.Queue()
        self.head_seen = asyncio.Event()
        self.ended = False       # END_STREAM received
        self.reset = None        # RST_STREAM code received
        self.body = b""          # body of a refusal
        self.close_code = None
        self._frag = None

    def _on_data(self, data):
        if self.status is None or not 200 <= self.status < 300:
            self.body += data
            return
        self.buf += data
        while True:
            if len(self.buf) < 2:
                return
            b0, b1 = self.buf[0], self.buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            if b1 & 0x80:
                raise AssertionError("the server masked a frame")
            if len(self.buf) < off + n:
                return
            payload = bytes(self.buf[off:off + n])
            del self.buf[:off + n]
            op, fin = b0 & 0x0F, bool(b0 & 0x80)
            if op == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.msgs.put_nowait(None)
            elif op == OP_PING:
                self.conn._send_now(self.sid, frame(OP_PONG, payload))
            elif op == OP_PONG:
                pass
            else:
                if op != OP_CONT:
                    self._frag = (op, bytearray())
                self._frag[1].extend(payload)
                if fin:
                    kind, data = self._frag
                    self._frag = None
                    self.msgs.put_nowait(bytes(data).decode() if kind == OP_TEXT else bytes(data))

    def _on_end(self):
        self.head_seen.set()
        self.msgs.put_nowait(None)

    async def send(self, msg):
        if isinstance(msg, str):
            await self.conn._send(self.sid, frame(OP_TEXT, msg.encode()))
        else:
            await self.conn._send(self.sid, frame(OP_BIN, bytes(msg)))

    async def recv(self):
        m = await self.msgs.get()
        if m is None:
            self.msgs.put_nowait(None)
            raise H2WsClosed("stream %d ended (close %s, reset %s, END_STREAM %s)"
                             % (self.sid, self.close_code, self.reset, self.ended))
        return m

    async def close(self, code=1000):
        """Close handshake: our close frame, the server's, then END_STREAM."""
        await self.conn._send(self.sid, frame(OP_CLOSE, struct.pack("!H", code)))
        try:
            while True:
                await self.recv()
        except H2WsClosed:
            pass
        self.conn._end(self.sid)


class H2WsConn:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.streams = {}
        # RFC 9113 §6.8: streams up to last_stream_id go on after a graceful GOAWAY, but
        # python3-h2 closes its state machine on any GOAWAY: reopen it at once.
        table = self.h2._frame_dispatch_table
        on_goaway = table[GoAwayFrame]

        def goaway(f):
            got = on_goaway(f)
            if f.error_code == 0:
                self.h2.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
            return got
        table[GoAwayFrame] = goaway
        self.settings = asyncio.Event()
        self.window = asyncio.Event()
        self.closed = False
        self.goaway = None
        self.error = None  # what broke the read loop, if anything did
        self.ack = True  # acknowledge received DATA (reopen the windows); False: a reader that stalls
        self.unacked = []
        self.task = None

    @classmethod
    async def open(cls, port, host="127.0.0.1", window=1 << 20, tls=None):
        """h2c by prior knowledge, or, with tls (an ssl.SSLContext), h2 by ALPN."""
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        if tls is not None:
            assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
        c = cls(reader, writer)
        c.h2.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        c.h2.initiate_connection()
        c.h2.increment_flow_control_window(window)
        c._flush()
        c.task = asyncio.ensure_future(c._read_loop())
        await asyncio.wait_for(c.settings.wait(), 10)
        return c

    @property
    def connect_protocol(self):
        return self.h2.remote_settings.enable_connect_protocol

    def _flush(self):
        data = self.h2.data_to_send()
        if data and not self.closed:
            self.writer.write(data)

    async def _read_loop(self):
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for ev in self.h2.receive_data(data):
                    self._event(ev)
                self._flush()
        except (ConnectionError, OSError):
            pass
        except Exception as e:  # noqa: BLE001 - kept for the test's report
            self.error = e
            raise
        finally:
            self.closed = True
            self.settings.set()
            self.window.set()
            for st in self.streams.values():
                st._on_end()

    def _event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self.settings.set()
            self.window.set()
        elif isinstance(ev, h2.events.ResponseReceived) and st:
            hd = dict(ev.headers)
            st.status, st.headers = int(hd[":status"]), hd
            st.head_seen.set()
        elif isinstance(ev, h2.events.DataReceived) and st:
            st._on_data(ev.data)
            if ev.flow_controlled_length:
                self.unacked.append((ev.flow_controlled_length, ev.stream_id))
                if self.ack:
                    self.ack_all()
        elif isinstance(ev, h2.events.StreamEnded) and st:
            st.ended = True
            st._on_end()
        elif isinstance(ev, h2.events.StreamReset) and st:
            st.reset = ev.error_code
            st._on_end()
        elif isinstance(ev, h2.events.WindowUpdated):
            self.window.set()
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
            for s in self.streams.values():
                if s.sid > ev.last_stream_id:
                    s._on_end()

    async def websocket(self, path, headers=(), protocol="websocket", authority="localhost"):
        sid = self.h2.get_next_available_stream_id()
        st = H2WebSocket(self, sid)
        self.streams[sid] = st
        hdrs = [(":method", "CONNECT"), (":protocol", protocol), (":scheme", "http"),
                (":path", path), (":authority", authority),
                ("sec-websocket-version", "13")] + list(headers)
        self.h2.send_headers(sid, hdrs)
        self._flush()
        await st.head_seen.wait()
        if st.status is None or not 200 <= st.status < 300:
            while not st.ended and st.reset is None and not self.closed:
                await asyncio.sleep(0.01)
            raise H2WsRefused(st.status, st.headers, st.body, st.reset)
        return st

    def _send_now(self, sid, data):
        try:
            self.h2.send_data(sid, data)
            self._flush()
        except Exception:  # noqa: BLE001 - a pong on a closing stream
            pass

    async def _send(self, sid, data):
        while data:
            if self.closed:
                raise H2WsClosed("connection closed (%r)" % (self.error,))
            st = self.streams[sid]
            if st.reset is not None:
                raise H2WsClosed("stream %d reset %d" % (sid, st.reset))
            n = min(len(data), self.h2.local_flow_control_window(sid),
                    self.h2.max_outbound_frame_size)
            if n <= 0:
                self.window.clear()
                await self.window.wait()
                continue
            self.h2.send_data(sid, data[:n])
            data = data[n:]
            self._flush()
        await self.writer.drain()

    def _end(self, sid):
        try:
            self.h2.end_stream(sid)
            self._flush()
        except Exception:  # noqa: BLE001 - already closed by the server
            pass

    def ack_all(self):
        """Acknowledges the DATA received so far: the server may send that much again."""
        for n, sid in self.unacked:
            try:
                self.h2.acknowledge_received_data(n, sid)
            except Exception:  # noqa: BLE001 - the stream is gone
                pass
        self.unacked = []
        self._flush()

    def reset_stream(self, sid, code=0x8):
        self.h2.reset_stream(sid, code)
        self._flush()

    async def aclose(self):
        if not self.closed:
            try:
                self.h2.close_connection()
                self._flush()
            except Exception:  # noqa: BLE001
                pass
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        if self.task:
            self.task.cancel()
