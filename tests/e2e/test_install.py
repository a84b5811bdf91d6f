"""`make install` and `make uninstall` with PREFIX and DESTDIR, and the manual page that
scripts/mkman.sh makes from docs/portico.1.md and docs/operations.md.

The binary installed is the one under test (INSTALL_BIN=$PORTICO_BIN, so make rebuilds nothing).
The page is made by the real Makefile rule, into build/portico.1 of this checkout."""

import os
import shutil
import subprocess

import pytest

from helpers.common import scaled
from helpers.portico import PORTICO_BIN

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MKMAN = os.path.join(REPO, "scripts", "mkman.sh")


def make(*args):
    return subprocess.run(["make", "--no-print-directory", "-C", REPO] + list(args),
                          capture_output=True, text=True, timeout=scaled(120))


def installed_files(root):
    out = []
    for dirpath, _, files in os.walk(root):
        out += [os.path.relpath(os.path.join(dirpath, f), root) for f in files]
    return sorted(out)


def man_warnings(page):
    """Warnings of man(1) (or groff, or mandoc) rendering page; None when none is installed."""
    if shutil.which("man"):
        cmd = ["man", "--warnings", "-l", page]
    elif shutil.which("groff"):
        cmd = ["groff", "-man", "-Tutf8", "-ww", "-z", page]
    elif shutil.which("mandoc"):
        cmd = ["mandoc", "-T", "lint", "-W", "warning", page]
    else:
        return None
    env = dict(os.environ, MANWIDTH="80", MAN_DISABLE_SECCOMP="1", MANPAGER="cat", PAGER="cat")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=scaled(60), env=env)
    return (r.returncode, r.stderr, r.stdout)


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("destdir"))
    r = make("install", "DESTDIR=" + dest, "PREFIX=/usr", "INSTALL_BIN=" + PORTICO_BIN)
    assert r.returncode == 0, "make install failed:\n%s\n%s" % (r.stdout, r.stderr)
    return dest


def test_install_lays_out_the_files(staged):
    files = installed_files(staged)
    for f in ["usr/bin/portico", "usr/share/man/man1/portico.1",
              "usr/share/doc/portico/portico.yaml.example", "usr/share/doc/portico/config.md",
              "usr/share/doc/portico/operations.md"]:
        assert f in files, "%s not installed; installed: %s" % (f, files)
    assert all(f.startswith("usr/") for f in files), files
    assert os.stat(os.path.join(staged, "usr/bin/portico")).st_mode & 0o777 == 0o755
    assert os.stat(os.path.join(staged, "usr/share/man/man1/portico.1")).st_mode & 0o777 == 0o644


def test_installed_binary_runs_and_example_config_passes_check(staged):
    bin_ = os.path.join(staged, "usr/bin/portico")
    r = subprocess.run([bin_, "version"], capture_output=True, text=True, timeout=scaled(30))
    assert r.returncode == 0 and r.stdout.startswith("portico "), r
    example = os.path.join(staged, "usr/share/doc/portico/portico.yaml.example")
    r = subprocess.run([bin_, "check", "-c", example], capture_output=True, text=True,
                       timeout=scaled(30))
    assert r.returncode == 0 and r.stdout.strip() == "ok", r


def test_man_page_is_well_formed(staged):
    page = os.path.join(staged, "usr/share/man/man1/portico.1")
    with open(page) as f:
        text = f.read()
    assert text.count('.TH "PORTICO" "1"') == 1
    for sh in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "SIGNALS", "EXIT STATUS", "FILES"):
        assert '.SH "%s"' % sh in text, sh
    assert "portico \\- " in text                   # the NAME line whatis(1) reads
    assert "SIGHUP" in text and "SIGTERM" in text    # included from docs/operations.md
    assert "/usr/share/doc/portico/portico.yaml.example" in text   # PREFIX=/usr applied
    assert "@PREFIX@" not in text and "<!--" not in text
    res = man_warnings(page)
    if res is not None:
        rc, err, out = res
        assert rc == 0 and err.strip() == "", "the page draws warnings:\n%s" % err
        assert "SIGNALS" in out or out == ""


def test_uninstall_removes_what_install_put(tmp_path):
    dest = str(tmp_path / "d")
    r = make("install", "DESTDIR=" + dest, "PREFIX=/opt/p", "INSTALL_BIN=" + PORTICO_BIN)
    assert r.returncode == 0, r.stderr
    assert "opt/p/bin/portico" in installed_files(dest)
    r = make("uninstall", "DESTDIR=" + dest, "PREFIX=/opt/p")
    assert r.returncode == 0, r.stderr
    assert installed_files(dest) == []
    assert not os.path.exists(os.path.join(dest, "opt/p/share/doc/portico"))


def test_mkman_fails_on_a_missing_section(tmp_path):
    """A section of docs/operations.md renamed or removed must break the build of the page, not
    leave a hole in it."""
    src = tmp_path / "x.1.md"
    src.write_text('# x(1) -- test\n\n## SIGNALS\n\n'
                   '<!-- man: include docs/operations.md "No Such Section" -->\n')
    r = subprocess.run(["sh", MKMAN, str(src)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "No Such Section" in r.stderr, r
    src.write_text('# x(1) -- test\n\n## SIGNALS\n\n'
                   '<!-- man: include docs/operations.md "Signals" -->\n')
    r = subprocess.run(["sh", MKMAN, str(src)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "SIGHUP" in r.stdout, r


def test_make_help_lists_install():
    r = make("help")
    assert r.returncode == 0
    for t in ("make install", "make uninstall", "make man"):
        assert t in r.stdout, r.stdout
