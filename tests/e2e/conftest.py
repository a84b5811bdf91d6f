"""Fixtures for Portico's end-to-end tests.

PORTICO_BIN names the binary under test (default: build/portico in this checkout); the whole suite
is skipped with a clear message when it does not exist. PORTICO_SANITIZE=1 says the binary is the
ASan+UBSan build: time limits grow, and a test fails when Portico's stderr shows a sanitizer report
after it stops.

Fixtures:
  portico        factory: portico(config_dict | callable(port) -> dict, **options) -> Portico.
                 The factory fills listen (a free 127.0.0.1 port), workers (1), shutdown_timeout
                 and log (access log to a file in tmp_path) unless the config sets them.
  backend        factory: backend(handler) -> Backend (helpers/backends.py), closed on teardown.
  wsb            a WebSocket target (helpers/wsbackend.py), closed on teardown.
  portico_bin    the path of the binary.
Module-scoped servers can be built with PorticoFactory(tmp_path_factory.mktemp(...)).
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers.backends import Backend  # noqa: E402
from helpers.portico import _LIVE, PORTICO_BIN, PorticoFactory  # noqa: E402
from helpers.wsbackend import WsBackend  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: large transfers or many connections (kept lean; "
                                       "deselect with -m 'not heavy')")


def pytest_collection_modifyitems(config, items):
    if not os.access(PORTICO_BIN, os.X_OK):
        skip = pytest.mark.skip(reason="Portico binary not found at %s: build it (make) or set "
                                       "PORTICO_BIN=/abs/path/to/portico" % PORTICO_BIN)
        for item in items:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        seen = set()
        for p in list(getattr(item, "_porticos", [])) + list(_LIVE):
            if id(p) in seen or p.proc is None:
                continue
            seen.add(id(p))
            rep.sections.append(("portico %s stderr (tail)" % p.name, p.stderr()[-6000:]))
            rep.sections.append(("portico %s stdout (tail)" % p.name, p.stdout()[-3000:]))
            rep.sections.append(("portico %s config" % p.name, p.config_text))


@pytest.fixture
def portico(request, tmp_path):
    f = PorticoFactory(tmp_path)
    request.node._porticos = f.started
    yield f
    problems = f.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def wsb():
    b = WsBackend()
    yield b
    b.close()


@pytest.fixture
def backend():
    made = []

    def make(handler, name="backend"):
        b = Backend(handler, name)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture(scope="session")
def portico_bin():
    return PORTICO_BIN


