"""The key file commands: `portico keygen` and `portico rotate-key` (docs/internals/admin.md)."""

import os
import stat
import subprocess

from helpers.portico import PORTICO_BIN


def run_cli(*args):
    return subprocess.run([PORTICO_BIN] + list(args), capture_output=True, timeout=30)


def test_keygen_writes_32_bytes_mode_0600_and_never_overwrites(tmp_path):
    key = tmp_path / "k.key"
    r = run_cli("keygen", str(key))
    assert r.returncode == 0, r
    st = os.stat(key)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == 32
    first = key.read_bytes()
    assert first not in r.stdout + r.stderr  # the key is never printed
    r = run_cli("keygen", str(key))
    assert r.returncode == 1, r
    assert b"never overwrites" in r.stderr, r.stderr
    assert key.read_bytes() == first
    other = tmp_path / "other.key"
    assert run_cli("keygen", str(other)).returncode == 0
    assert other.read_bytes() != first


def test_keygen_and_rotate_key_refuse_bad_usage(tmp_path):
    assert run_cli("keygen").returncode == 2
    assert run_cli("rotate-key", "--store").returncode == 2
    assert run_cli("rotate-key", "--store", "x", "--key", "y").returncode == 2
    r = run_cli("help", "rotate-key")
    assert r.returncode == 0 and b"--new-key" in r.stdout, r


def test_rotate_key_moves_the_store_to_the_new_key(tmp_path):
    old, new = tmp_path / "old.key", tmp_path / "new.key"
    assert run_cli("keygen", str(old)).returncode == 0
    assert run_cli("keygen", str(new)).returncode == 0
    store = tmp_path / "rules.db"
    # A store that does not exist is not created by a rotation.
    r = run_cli("rotate-key", "--store", str(store), "--key", str(old), "--new-key", str(new))
    assert r.returncode == 1 and not store.exists(), r
    store.touch()
    r = run_cli("rotate-key", "--store", str(store), "--key", str(old), "--new-key", str(new))
    assert r.returncode == 0, r
    # The old key no longer opens the store: a clear error, nothing changed.
    r = run_cli("rotate-key", "--store", str(store), "--key", str(old), "--new-key", str(new))
    assert r.returncode == 1, r
    assert b"wrong key file" in r.stderr, r.stderr
    # Same key twice.
    r = run_cli("rotate-key", "--store", str(store), "--key", str(new), "--new-key", str(new))
    assert r.returncode == 1 and b"same key" in r.stderr, r


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    old, new = tmp_path / "old.key", tmp_path / "new.key"
    assert run_cli("keygen", str(old)).returncode == 0
    assert run_cli("keygen", str(new)).returncode == 0
    os.chmod(new, 0o644)
    store = tmp_path / "rules.db"
    store.touch()
    r = run_cli("rotate-key", "--store", str(store), "--key", str(old), "--new-key", str(new))
    assert r.returncode == 1, r
    assert str(new).encode() in r.stderr and b"0644" in r.stderr, r.stderr
    short = tmp_path / "short.key"
    short.write_bytes(b"0123456789")
    os.chmod(short, 0o600)
    r = run_cli("rotate-key", "--store", str(store), "--key", str(short), "--new-key", str(old))
    assert r.returncode == 1 and b"not 32" in r.stderr, r.stderr
