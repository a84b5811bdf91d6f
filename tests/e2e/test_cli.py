"""The command line: check, version, help, and run's failure modes."""

import re
import socket
import subprocess

import pytest

from helpers.common import START_TIMEOUT, free_port
from helpers.portico import PORTICO_BIN

GOOD = """\
workers: 1
listen:
  - addr: "127.0.0.1:{port}"
log:
  level: info
  access: "off"
upstreams:
  api:
    targets:
      - url: "http://127.0.0.1:9"
sites:
  - routes:
      - match: "/api/*"
        proxy:
          to: api
          strip_prefix: true
      - match: "/healthz"
        respond: {{ status: 200, body: "ok\\n", headers: {{Content-Type: text/plain}} }}
"""


def run_cli(*args, timeout=START_TIMEOUT):
    return subprocess.run([PORTICO_BIN] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def diag_lines(out, path):
    """The lines of out that are FILE:LINE:COL: message diagnostics for path."""
    pat = re.compile(r"^%s:(\d+):(\d+): \S" % re.escape(path))
    return [(int(m.group(1)), int(m.group(2)), ln)
            for ln in out.splitlines() for m in [pat.match(ln)] if m]


def test_check_good_file_prints_ok_and_exits_0(tmp_path):
    path = write(tmp_path, "good.yaml", GOOD.format(port=free_port()))
    r = run_cli("check", "-c", path)
    assert r.returncode == 0, r
    assert "ok" in r.stdout.lower(), r


def test_check_accepts_json_file(tmp_path):
    port = free_port()
    text = ('{"workers": 1, "listen": [{"addr": "127.0.0.1:%d"}], "sites": [{"routes": '
            '[{"match": "/x", "respond": {"status": 200, "body": "x"}}]}]}' % port)
    r = run_cli("check", "-c", write(tmp_path, "good.json", text))
    assert r.returncode == 0, r
    assert "ok" in r.stdout.lower(), r


def test_check_bad_value_reports_file_line_col_and_exits_1(tmp_path):
    text = GOOD.format(port=free_port()).replace("workers: 1", "workers: lots")
    path = write(tmp_path, "bad.yaml", text)
    r = run_cli("check", "-c", path)
    assert r.returncode == 1, r
    diags = diag_lines(r.stdout + r.stderr, path)
    assert diags, "no FILE:LINE:COL: message line in %r" % (r.stdout + r.stderr)
    assert any(line == 1 for line, _, _ in diags), diags


def test_check_unknown_key_says_did_you_mean_at_its_position(tmp_path):
    text = GOOD.format(port=free_port()).replace("log:\n  level: info",
                                                 "log:\n  levle: info")
    path = write(tmp_path, "typo.yaml", text)
    r = run_cli("check", "-c", path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, r
    diags = diag_lines(out, path)
    assert diags, out
    # "levle" sits on line 5, column 3
    assert any(line == 5 and col == 3 for line, col, _ in diags), diags
    msg = " ".join(d[2] for d in diags)
    assert "did you mean" in msg.lower(), out
    assert "level" in msg, out


def test_check_unknown_top_level_key_suggests_nearest(tmp_path):
    text = GOOD.format(port=free_port()).replace("listen:", "listn:")
    path = write(tmp_path, "typo2.yaml", text)
    r = run_cli("check", "-c", path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, r
    diags = diag_lines(out, path)
    assert any(line == 2 and col == 1 for line, col, _ in diags), out
    assert "did you mean" in out.lower() and "listen" in out, out


def test_check_yaml_syntax_error_reports_position(tmp_path):
    text = GOOD.format(port=free_port()) + "  - match: [unclosed\n"
    path = write(tmp_path, "syntax.yaml", text)
    r = run_cli("check", "-c", path)
    assert r.returncode == 1, r
    assert diag_lines(r.stdout + r.stderr, path), r


def test_check_unknown_upstream_reference_is_an_error(tmp_path):
    text = GOOD.format(port=free_port()).replace("to: api", "to: nosuchupstream")
    path = write(tmp_path, "ref.yaml", text)
    r = run_cli("check", "-c", path)
    assert r.returncode == 1, r
    assert diag_lines(r.stdout + r.stderr, path), r


def test_check_bad_duration_and_size_are_errors(tmp_path):
    base = GOOD.format(port=free_port())
    for bad in ("limits:\n  header_timeout: 10parsecs\n", "limits:\n  body_size: 12q\n"):
        path = write(tmp_path, "dur.yaml", base + bad)
        r = run_cli("check", "-c", path)
        assert r.returncode == 1, (bad, r)
        assert diag_lines(r.stdout + r.stderr, path), (bad, r)


def test_check_missing_file_fails(tmp_path):
    r = run_cli("check", "-c", str(tmp_path / "nope.yaml"))
    assert r.returncode != 0, r
    assert (r.stdout + r.stderr).strip(), r


def test_version_prints_name_and_exits_0():
    r = run_cli("version")
    assert r.returncode == 0, r
    assert "portico" in (r.stdout + r.stderr).lower(), r


def test_help_exits_0_and_lists_commands():
    r = run_cli("help")
    assert r.returncode == 0, r
    out = (r.stdout + r.stderr).lower()
    for cmd in ("run", "check", "version"):
        assert cmd in out, r


def test_help_for_a_command_exits_0():
    r = run_cli("help", "run")
    assert r.returncode == 0, r
    assert (r.stdout + r.stderr).strip(), r


def test_unknown_command_exits_nonzero():
    r = run_cli("frobnicate")
    assert r.returncode != 0, r


def test_run_on_occupied_port_exits_nonzero_with_one_clear_line(tmp_path):
    occupier = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    occupier.bind(("127.0.0.1", 0))
    occupier.listen(1)
    port = occupier.getsockname()[1]
    try:
        path = write(tmp_path, "busy.yaml", GOOD.format(port=port))
        r = run_cli("run", "-c", path)
    finally:
        occupier.close()
    assert r.returncode != 0, r
    addr = "127.0.0.1:%d" % port
    lines = [ln for ln in r.stderr.splitlines() if addr in ln]
    assert lines, "no stderr line mentions %s: %r" % (addr, r.stderr)
    assert len(r.stderr.strip().splitlines()) <= 3, "expected one clear line, got %r" % r.stderr


def test_run_with_bad_file_exits_nonzero_with_error(tmp_path):
    text = GOOD.format(port=free_port()).replace("workers: 1", "workerz: 1")
    path = write(tmp_path, "bad.yaml", text)
    r = run_cli("run", "-c", path)
    assert r.returncode != 0, r
    assert diag_lines(r.stderr + r.stdout, path), r


def test_run_with_missing_file_exits_nonzero(tmp_path):
    r = run_cli("run", "-c", str(tmp_path / "missing.yaml"))
    assert r.returncode != 0, r
    assert r.stderr.strip(), r


@pytest.mark.parametrize("cmd", ["run", "check"])
def test_dash_c_without_a_file_says_the_file_is_missing(cmd):
    r = run_cli(cmd, "-c")
    assert r.returncode == 2, r
    err = r.stderr.lower()
    assert "-c needs a configuration file" in err, r.stderr
    assert "unexpected argument" not in err, r.stderr


def test_dash_c_followed_by_an_option_says_the_file_is_missing():
    r = run_cli("check", "-c", "--strict")
    assert r.returncode == 2, r
    assert "-c needs a configuration file" in r.stderr.lower(), r.stderr


@pytest.mark.parametrize("cmd", ["run", "check"])
def test_missing_default_file_mentions_dash_c(tmp_path, cmd):
    r = subprocess.run([PORTICO_BIN, cmd], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=START_TIMEOUT, cwd=str(tmp_path))
    assert r.returncode == 1, r
    assert "portico.yaml" in r.stderr and "-c FILE" in r.stderr, r.stderr
    assert str(tmp_path) in r.stderr, r.stderr


def test_version_lists_every_linked_library_with_a_version():
    r = run_cli("version")
    assert r.returncode == 0, r
    lines = dict(ln.split(" ", 1) for ln in r.stdout.splitlines() if " " in ln)
    for lib in ("portico", "openssl", "libyaml", "pcre2", "jansson", "c-ares", "libmaxminddb"):
        assert lib in lines, "%s missing from %r" % (lib, r.stdout)
        assert re.match(r"\d+\.\d+", lines[lib]), (lib, lines[lib])
    assert re.match(r"\d+", lines.get("libsystemd", "")), r.stdout


def skipped_rule_config(tmp_path):
    """A file that loads with a warning today: a domain-level _redirects rule for a host the
    site does not serve is skipped."""
    root = tmp_path / "public"
    root.mkdir()
    (root / "index.html").write_text("hi\n")
    (root / "_redirects").write_text("http://other.test/* /index.html 302\n")
    text = ("workers: 1\nlisten:\n  - addr: \"127.0.0.1:%d\"\nsites:\n  - hosts: [\"example.com\"]\n"
            "    routes:\n      - match: \"/*\"\n        static: {root: public}\n" % free_port())
    return write(tmp_path, "warn.yaml", text)


def test_check_with_a_warning_prints_it_and_still_says_ok(tmp_path):
    path = skipped_rule_config(tmp_path)
    r = run_cli("check", "-c", path)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "ok (1 warning)", r
    assert "other.test" in r.stderr and "warn" in r.stderr, r.stderr


def test_check_strict_turns_warnings_into_errors(tmp_path):
    path = skipped_rule_config(tmp_path)
    r = run_cli("check", "--strict", "-c", path)
    assert r.returncode == 1, r
    assert "ok" not in r.stdout, r
    assert "other.test" in r.stderr, r.stderr
    assert "1 warning, errors under --strict" in r.stderr, r.stderr


def test_check_strict_on_a_clean_file_says_ok(tmp_path):
    path = write(tmp_path, "good.yaml", GOOD.format(port=free_port()))
    r = run_cli("check", "-c", path, "--strict")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r


def test_strict_is_only_an_option_of_check(tmp_path):
    path = write(tmp_path, "good.yaml", GOOD.format(port=free_port()))
    r = run_cli("run", "--strict", "-c", path)
    assert r.returncode == 2 and "unexpected argument" in r.stderr, r
