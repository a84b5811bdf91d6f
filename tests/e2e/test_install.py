"""`make install` and `make uninstall` with PREFIX and DESTDIR, and the manual page that
scripts/mkman.sh makes from docs/portico.1.md and docs/operations.md.

The binary installed is the one under test (INSTALL_BIN=$PORTICO_BIN, so make rebuilds nothing).
The page is made by the real Makefile rule, into build/portico.1 of this checkout."""

import os
import re
import shutil
import subprocess

import pytest

from helpers.common import scaled
from helpers.portico import PORTICO_BIN

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MKMAN = os.path.join(REPO, "scripts", "mkman.sh")


def make(*args):
    # Not the flags of a `make test` that runs this suite (jobserver, -n, -s...).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "--no-print-directory", "-C", REPO] + list(args),
                          capture_output=True, text=True, timeout=scaled(120), env=env)


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


def unit_from_operations_guide():
    """The systemd unit of docs/operations.md: the ```ini block with a [Service] section."""
    with open(os.path.join(REPO, "docs", "operations.md")) as f:
        text = f.read()
    units = re.findall(r"^```ini\n(.*?)^```", text, re.M | re.S)
    units = [u for u in units if "[Service]" in u]
    assert len(units) == 1, "expected one systemd unit in docs/operations.md, found %d" % len(units)
    return units[0]


def unit_sections(unit):
    out, cur = {}, None
    for ln in unit.splitlines():
        ln = ln.split("#", 1)[0].strip() if not ln.strip().startswith("#") else ""
        if not ln:
            continue
        m = re.match(r"^\[(\w+)\]$", ln)
        if m:
            cur = out.setdefault(m.group(1), [])
            continue
        k, _, v = ln.partition("=")
        cur.append((k.strip(), v.strip()))
    return out


def default_prefix():
    with open(os.path.join(REPO, "Makefile")) as f:
        return re.search(r"^PREFIX\s*\?=\s*(\S+)", f.read(), re.M).group(1)


def test_systemd_unit_in_operations_guide(tmp_path):
    """The unit has what an operator needs on day one (issue 9), names the paths `make install`
    uses, and, where systemd-analyze exists, passes `systemd-analyze verify` against a staged
    installation with no warning."""
    unit = unit_from_operations_guide()
    sec = unit_sections(unit)
    svc = dict(sec["Service"])
    assert ("WantedBy", "multi-user.target") in sec["Install"]
    assert svc["Type"] == "notify"
    assert svc["User"] == "portico" and svc["Group"] == "portico"
    assert "CAP_NET_BIND_SERVICE" in svc["AmbientCapabilities"]
    assert int(svc["LimitNOFILE"]) >= 65536
    reloads = [v for k, v in sec["Service"] if k == "ExecReload"]
    assert any(v in ("/bin/kill -HUP $MAINPID", "/usr/bin/kill -HUP $MAINPID") or
               v.endswith("portico reload") for v in reloads), reloads
    binary = default_prefix() + "/bin/portico"
    assert svc["ExecStart"].split()[0] == binary
    assert svc["ExecStart"].split()[1] == "run"
    for v in reloads:
        if "portico" in v:
            assert v.split()[0] == binary
    with open(os.path.join(REPO, "docs", "operations.md")) as f:
        assert "useradd --system" in f.read()   # how to create the user is shown

    if not shutil.which("systemd-analyze"):
        return
    dest = str(tmp_path / "stage")
    r = make("install", "DESTDIR=" + dest, "PREFIX=" + default_prefix(),
             "INSTALL_BIN=" + PORTICO_BIN)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "portico.service"
    path.write_text(unit.replace(default_prefix() + "/", dest + default_prefix() + "/"))
    env = dict(os.environ, MANPATH=os.path.join(dest + default_prefix(), "share", "man"),
               SYSTEMD_LOG_LEVEL="warning")
    r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True,
                       timeout=scaled(60), env=env)
    assert r.returncode == 0 and r.stderr.strip() == "", \
        "systemd-analyze verify:\n%s%s" % (r.stdout, r.stderr)
