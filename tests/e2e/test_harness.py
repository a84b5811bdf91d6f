"""The test harness itself: a Portico the factory hands out is the one listening on its port."""

import socket

from helpers import portico as harness
from helpers.common import free_port


def test_a_port_taken_by_another_process_is_not_mistaken_for_portico(portico, monkeypatch):
    # Someone else listens on the port the harness is about to give Portico: the port accepts,
    # but Portico exits with "Address already in use". The factory must notice and retry.
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(16)
    taken = squatter.getsockname()[1]
    ports = iter([taken])
    monkeypatch.setattr(harness, "free_port", lambda: next(ports, None) or free_port())
    try:
        p = portico({"routes": [{"match": "/*", "respond": {"status": 200, "body": "ok\n"}}]})
        assert p.port != taken
        assert p.alive()
        assert harness._listens(p.pid, p.port)
        assert not harness._listens(p.pid, taken)
    finally:
        squatter.close()
