"""Settings shared by the harness: timeouts (scaled under the sanitizer build), generated data."""

import functools
import hashlib
import os
import random
import socket
import time

SANITIZE = os.environ.get("PORTICO_SANITIZE", "") not in ("", "0")

# Every socket operation in the suite is bounded by IO_TIMEOUT; waits for a process to start or
# stop by START_TIMEOUT.
IO_TIMEOUT = float(os.environ.get("PORTICO_IO_TIMEOUT") or (30.0 if SANITIZE else 10.0))
START_TIMEOUT = 30.0 if SANITIZE else 10.0


# Tests run side by side (pytest-xdist, make e2e): each gets less of the machine.
PARALLEL = os.environ.get("PYTEST_XDIST_WORKER", "") != ""


def scaled(seconds):
    """A time limit for something Portico does, made generous under the sanitizer build and
    when tests run side by side."""
    return seconds * (3 if SANITIZE else 1) * (2 if PARALLEL else 1)


def free_port():
    """A TCP port on 127.0.0.1 that the kernel says is free right now (bound, read, closed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Poll pred() until it returns a truthy value (returned) or timeout seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# Generated payloads: a fixed pseudo-random 1 MiB block repeated; both ends can produce or hash any
# length of it without storing more than the block.
BLOCK_SIZE = 1 << 20
BLOCK = random.Random(0x5EED).randbytes(BLOCK_SIZE)


def gen_chunks(nbytes, chunk=BLOCK_SIZE):
    """Yield memoryviews that together are the first nbytes of the generated stream."""
    mv = memoryview(BLOCK)
    left = nbytes
    while left > 0:
        n = min(left, chunk, BLOCK_SIZE)
        yield mv[:n]
        left -= n


@functools.lru_cache(maxsize=16)
def gen_sha256(nbytes):
    """sha256 hex digest of the first nbytes of the generated stream."""
    h = hashlib.sha256()
    for c in gen_chunks(nbytes):
        h.update(c)
    return h.hexdigest()


def closing_maker(cls):
    """For a fixture: yields make(*args, **kw) -> cls(*args, **kw), then closes every object
    it made (use as `yield from closing_maker(SomeServer)`)."""
    made = []

    def make(*args, **kw):
        obj = cls(*args, **kw)
        made.append(obj)
        return obj

    yield make
    for obj in made:
        obj.close()
