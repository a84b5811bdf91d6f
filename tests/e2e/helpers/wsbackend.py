"""A WebSocket target for the end-to-end tests (python3-websockets), and Portico's config for
it."""

import asyncio
import threading
from http import HTTPStatus

import websockets

from helpers.common import IO_TIMEOUT


class WsBackend:
    """A websockets server on 127.0.0.1 in an asyncio loop on its own thread. Paths: /echo
    echoes every message, /close closes the socket after the handshake without a close frame,
    /refuse answers 403; a request without Upgrade gets 200 "plain"."""

    def __init__(self):
        self.seen = []  # the handshake headers of each accepted WebSocket
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(IO_TIMEOUT)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def process_request(path, headers):
            if path.startswith("/refuse"):
                return HTTPStatus.FORBIDDEN, [("Content-Length", "7")], b"refused"
            if "upgrade" not in headers.get("Connection", "").lower():
                return HTTPStatus.OK, [("Content-Length", "5")], b"plain"
            return None

        async def handler(ws, path):
            if path.startswith("/close"):
                ws.transport.abort()
                return
            self.seen.append(dict(ws.request_headers.raw_items()))
            async for msg in ws:
                await ws.send(msg)

        async def main():
            self.server = await websockets.serve(handler, "127.0.0.1", 0,
                                                 process_request=process_request,
                                                 max_size=None, subprotocols=["chat", "v2"],
                                                 ping_interval=None)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()

        self.loop.run_until_complete(main())
        self.loop.run_forever()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def close(self):
        async def stop():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(IO_TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(IO_TIMEOUT)


def config(b, limits=None, h2c=False, routes=(), top=None, **proxy):
    """One site proxying /* to b (after routes), with the top-level keys of top; h2c: a plain
    listener with http2: true (the config is then a function of the port)."""
    proxy = dict(proxy)
    proxy["to"] = "app"
    cfg = {"sites": [{"routes": list(routes) + [{"match": "/*", "proxy": proxy}]}],
           "upstreams": {"app": {"targets": [{"url": b.url}]}}}
    cfg.update(top or {})
    if limits:
        cfg["limits"] = limits
    if not h2c:
        return cfg
    return lambda port: dict(cfg, listen=[{"addr": "127.0.0.1:%d" % port, "http2": True}])
