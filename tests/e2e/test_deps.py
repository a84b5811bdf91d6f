"""scripts/deps.sh: the default set is what building and running need, and only that; --test
adds the test and benchmark tools (make test runs it first itself)."""

import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPS = os.path.join(ROOT, "scripts", "deps.sh")

# Tools only the tests and benchmarks use: none may be in the default set.
TEST_ONLY = ("clang", "libclang-rt-14-dev", "clang-format", "libcmocka-dev", "python3-pytest",
             "curl", "nghttp2-client", "nginx", "wrk", "valgrind", "pebble", "testssl.sh",
             "nodejs", "npm", "mmdb-bin", "slowhttptest", "python3-h2", "python3-hyperframe",
             "python3-hpack", "python3-websockets", "python3-grpcio", "python3-grpc-tools")


def listed(*args):
    r = subprocess.run(["sh", DEPS, "--list"] + list(args), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r
    return set(r.stdout.split())


def makefile_pkgs():
    with open(os.path.join(ROOT, "Makefile")) as f:
        m = re.search(r"^PKGS\s*:=\s*(.*)$", f.read(), re.M)
    return m.group(1).split()


def owner(path):
    """The Debian package that installed path, or None (not a Debian system)."""
    try:
        r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return None
    if r.returncode != 0:
        return None
    return r.stdout.split(":", 1)[0]


def test_default_set_has_no_test_or_benchmark_tool():
    base = listed()
    assert not base & set(TEST_ONLY), sorted(base & set(TEST_ONLY))
    assert {"build-essential", "pkg-config", "media-types", "libsystemd-dev"} <= base, base


def test_test_set_adds_the_test_tools_to_the_default_set():
    base, full = listed(), listed("--test")
    assert base < full
    for p in TEST_ONLY:
        if p != "npm":  # asked for only when no npm is on the PATH
            assert p in full, p


@pytest.mark.parametrize("module", makefile_pkgs())
def test_every_library_the_makefile_links_comes_from_the_default_set(module):
    r = subprocess.run(["pkg-config", "--variable=pcfiledir", module], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        pytest.fail("pkg-config does not know %s: run scripts/deps.sh" % module)
    pkg = owner(os.path.join(r.stdout.strip(), module + ".pc"))
    if pkg is None:
        pytest.skip("no dpkg database to ask which package holds %s.pc" % module)
    assert pkg.split(":")[0] in listed(), "%s.pc comes from %s, not in deps.sh's default set" \
        % (module, pkg)


def test_mime_types_file_comes_from_the_default_set():
    pkg = owner("/etc/mime.types")
    if pkg is None:
        pytest.skip("no dpkg database")
    assert pkg in listed(), pkg


def test_unknown_option_is_refused():
    r = subprocess.run(["sh", DEPS, "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "usage" in r.stderr, r
