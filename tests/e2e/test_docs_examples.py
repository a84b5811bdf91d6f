"""Every configuration example in the documentation passes `portico check`, and every relative
link in the documentation leads to a file of the repository.

Which blocks: every fenced block whose info string is `yaml` or `yml` in README.md and in the
Markdown files under docs/ and examples/ (DOC_GLOBS), plus every examples/**/*.yaml file as it
is. Each block is written to a temporary directory as portico.yaml and must give `ok` on stdout,
exit 0, and no warning or error line on stderr. Nothing is skipped: a block the test cannot
check fails it, with a message that says what to add.

The marker. A block that is not a whole configuration, or that names files, host names or
variables that must exist, carries one HTML comment on the line just above its opening fence
(GitHub does not show it):

    <!-- check: fragment=top upstreams=api files=certs/a.pem,certs/a.key dirs=public -->
    ```yaml
    ...
    ```

Words are `name=value[,value...]`, separated by spaces; values hold no spaces or commas.

  fragment=top     the block holds top-level keys but not all a configuration needs. The test
                   appends what it lacks: `listen` (two free ports of 127.0.0.1, the second
                   with `tls: true`), `tls` (one generated certificate) when a listener has
                   `tls: true` and the block has no `tls`, and a default site with one `respond`
                   route when it has neither `sites` nor `routes`. Keys the block has are never
                   replaced.
  fragment=routes  the block is a YAML list of routes (`- match: ...`): it goes under a
                   top-level `routes:`, then as fragment=top.
  fragment=route   the block is the body of one route without its `match` (`proxy: ...`): it
                   becomes `routes: [{match: "/*", <block>}]`, then as fragment=top.
  (no fragment)    the block is a whole configuration and is checked as written.
  upstreams=A,B    upstreams the block uses but does not define; each gets one target
                   http://127.0.0.1:9 (check does not connect). Added under the block's own
                   top-level `upstreams:` (block style, two-space indent) or as a new one.
  files=P,...      files to create before the check. `X.key` with a sibling `X.pem` or `X.crt`
                   in the list is a matching certificate and key (an ECDSA one when X ends in
                   `ec` or `ecdsa`); any other `.pem`/`.crt` is a CA certificate; `.mmdb` is a
                   MaxMind country database; anything else an empty file.
  dirs=P,...       directories to create (e.g. a static root, or the parent of an ACME storage).
  dns=NAME,...     host names that resolve to 127.0.0.1, answered by a DNS server the test runs.
  env=NAME=VALUE,...  environment variables set for `portico check`.

Relative paths in files/dirs are taken from the configuration's directory, as Portico takes
them. An absolute path (/var/lib/portico) is created under the temporary directory and every
occurrence of it in the block is rewritten to point there, so examples can show real
deployment paths. `..` is refused. The top-level `resolver.servers` always points at the
test's DNS server (replaced when the block sets it), so no check depends on the network: a
target host name not listed in dns= fails with "cannot resolve host".

The link test reads every Markdown file of the repository outside build/: every relative link
target (`[text](path)`, `[ref]: path`) must exist inside the repository (anchors are ignored),
and so must file names that the text cites (`docs/x.md`, `src/core/loop.c`, `DESIGN.md`): the
docs must stand alone.
"""

import glob
import os
import re
import shutil
import subprocess

import pytest

from helpers import certs, mmdb
from helpers.common import free_port, scaled
from helpers.dnsserver import DnsServer
from helpers.portico import PORTICO_BIN

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC_GLOBS = ["README.md", "docs/**/*.md", "examples/**/*.md"]
EXAMPLE_GLOBS = ["examples/**/*.yaml", "examples/**/*.yml"]
MARKER_RE = re.compile(r"^\s*<!--\s*check:(.*?)-->\s*$")
FENCE_RE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([A-Za-z0-9_+-]*)")
MARKER_KEYS = ("fragment", "upstreams", "files", "dirs", "dns", "env")
FRAGMENTS = ("top", "routes", "route")


class Block:
    def __init__(self, path, line, text, marker):
        self.path = path            # relative to REPO
        self.line = line            # 1-based line of the opening fence (0 for a whole file)
        self.text = text
        self.marker = marker        # dict name -> list of values, {} without a marker

    @property
    def id(self):
        return "%s:%d" % (self.path, self.line) if self.line else self.path


def doc_files():
    seen = []
    for g in DOC_GLOBS:
        for p in sorted(glob.glob(os.path.join(REPO, g), recursive=True)):
            rel = os.path.relpath(p, REPO)
            if rel not in seen:
                seen.append(rel)
    return seen


def parse_marker(body):
    """{name: [values]} from the words of a marker; raises ValueError on a word it does not
    know, so that a typo fails the test instead of being ignored."""
    out = {}
    for word in body.split():
        name, eq, value = word.partition("=")
        if not eq or name not in MARKER_KEYS or not value:
            raise ValueError("bad marker word %r (known: %s, each as name=value)"
                             % (word, ", ".join(MARKER_KEYS)))
        out.setdefault(name, []).extend(v for v in value.split(",") if v)
    frag = out.get("fragment")
    if frag and (len(frag) != 1 or frag[0] not in FRAGMENTS):
        raise ValueError("fragment must be one of %s, not %r" % (", ".join(FRAGMENTS), frag))
    return out


def extract(rel, text):
    """(blocks, problems) of one Markdown text: the yaml blocks with their markers, and a line
    for each marker that is malformed or not followed by a yaml fence."""
    blocks, problems = [], []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            mk = MARKER_RE.match(lines[i])
            if mk:
                nxt = FENCE_RE.match(lines[i + 1]) if i + 1 < len(lines) else None
                if not nxt or nxt.group(3).lower() not in ("yaml", "yml"):
                    problems.append("%s:%d: a check marker must sit on the line just above a "
                                    "```yaml fence" % (rel, i + 1))
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        start = i
        body = []
        i += 1
        while i < len(lines) and not re.match(r"^\s*" + re.escape(fence[0]) + "{%d,}\\s*$"
                                              % len(fence), lines[i]):
            ln = lines[i]
            body.append(ln[len(indent):] if ln.startswith(indent) else ln.lstrip())
            i += 1
        if i >= len(lines):
            problems.append("%s:%d: fenced block never closed" % (rel, start + 1))
        i += 1
        if lang not in ("yaml", "yml"):
            continue
        marker = {}
        mk = MARKER_RE.match(lines[start - 1]) if start > 0 else None
        if mk:
            try:
                marker = parse_marker(mk.group(1))
            except ValueError as e:
                problems.append("%s:%d: %s" % (rel, start, e))
        blocks.append(Block(rel, start + 1, "\n".join(body) + "\n", marker))
    return blocks, problems


def all_blocks():
    blocks, problems = [], []
    for rel in doc_files():
        with open(os.path.join(REPO, rel), encoding="utf-8") as f:
            b, p = extract(rel, f.read())
        blocks += b
        problems += p
    for g in EXAMPLE_GLOBS:
        for p in sorted(glob.glob(os.path.join(REPO, g), recursive=True)):
            with open(p, encoding="utf-8") as f:
                blocks.append(Block(os.path.relpath(p, REPO), 0, f.read(), {}))
    return blocks, problems


BLOCKS, MARKER_PROBLEMS = all_blocks()


# --- turning a block into a configuration ------------------------------------------------------

def top_keys(text):
    return set(re.findall(r"^([A-Za-z_][A-Za-z0-9_-]*)\s*:", text, re.M))


def indent(text, n):
    pad = " " * n
    return "".join(pad + ln if ln.strip() else ln for ln in text.splitlines(True))


def wrap(text, marker, extra_cert):
    """The whole configuration for a block (see the module comment). extra_cert is a callable
    returning (cert, key) file names, made on demand for a TLS listener the test adds."""
    frag = (marker.get("fragment") or [None])[0]
    if frag == "routes":
        text = "routes:\n" + indent(text, 2)
    elif frag == "route":
        body = indent(text, 4)
        text = 'routes:\n  - match: "/*"\n' + body
    keys = top_keys(text)
    if frag:
        if "listen" not in keys:
            text += ('listen:\n  - addr: "127.0.0.1:%d"\n  - addr: "127.0.0.1:%d"\n'
                     "    tls: true\n" % (free_port(), free_port()))
        if "tls" not in keys and re.search(r"\btls\s*:\s*true\b", text):
            cert, key = extra_cert()
            text += "tls:\n  certificates:\n    - {cert: %s, key: %s}\n" % (cert, key)
        if "sites" not in keys and "routes" not in keys:
            text += ('sites:\n  - routes:\n      - match: "/*"\n'
                     '        respond: {status: 200, body: "ok"}\n')
    names = marker.get("upstreams", [])
    if names:
        defs = "".join('  %s:\n    targets:\n      - url: "http://127.0.0.1:9"\n' % n
                       for n in names)
        if re.search(r"^upstreams:\s*(#.*)?$", text, re.M):
            text = re.sub(r"^upstreams:\s*(#.*)?\n", lambda m: m.group(0) + defs, text, count=1,
                          flags=re.M)
        elif "upstreams" in keys:
            raise ValueError("upstreams= needs the block's top-level upstreams: in block style")
        else:
            text += "upstreams:\n" + defs
    return text


def point_resolver(text, dns_addr):
    """Sends the configuration's DNS queries to the test's server."""
    servers = 'servers: ["%s"]' % dns_addr
    if not re.search(r"^resolver\s*:", text, re.M):
        return text + "resolver:\n  %s\n" % servers
    tail_at = re.search(r"^resolver\s*:", text, re.M).start()
    head, tail = text[:tail_at], text[tail_at:]
    tail, n = re.subn(r"servers\s*:\s*\[(?:\"[^\"]*\"|'[^']*'|[^\]\"'])*\]", servers, tail,
                      count=1)
    if n == 0:
        tail, n = re.subn(r"^resolver\s*:\s*\n", "resolver:\n  %s\n" % servers, tail, count=1)
    if n == 0:
        raise ValueError("cannot point resolver.servers at the test's DNS server")
    return head + tail


def safe_rel(p):
    parts = p.strip("/").split("/")
    if ".." in parts or not p.strip("/"):
        raise ValueError("path %r: `..` and empty paths are refused in markers" % p)
    return os.path.join(*parts)


def reroot(text, paths, root):
    """Rewrites each absolute path of paths where it appears in text to root + path."""
    absolute = sorted({p.rstrip("/") for p in paths if p.startswith("/")}, key=len, reverse=True)
    if not absolute:
        return text
    pat = re.compile(r"(?<![A-Za-z0-9_./-])(" + "|".join(re.escape(p) for p in absolute) +
                     r")(?=[/\s\"',}\]#]|$)", re.M)
    return pat.sub(lambda m: root + m.group(1), text)


class Maker:
    """Makes the files a block's marker lists, with one CA for the whole run."""

    def __init__(self, pki_dir):
        self.pki_dir = pki_dir
        self._pki = None

    def pki(self):
        if self._pki is None:
            self._pki = certs.Pki(self.pki_dir, "Portico docs examples CA")
        return self._pki

    def pair(self, stem):
        base = os.path.basename(stem)
        kind = "ec" if re.search(r"(^|[-_.])(ec|ecdsa)$", base) else "rsa"
        name = re.sub(r"[-_.](ec|ecdsa|rsa)$", "", base)
        if name.startswith("wild."):
            name = "*." + name[5:]
        if "." not in name.strip("*."):
            name = "localhost"
        return self.pki().server([name], kind=kind, tag=base)

    def make(self, cdir, root, files, dirs):
        def where(p):
            return os.path.join(root if p.startswith("/") else cdir, safe_rel(p))
        for d in dirs:
            os.makedirs(where(d), exist_ok=True)
        stems = {}
        for f in files:
            stem, ext = os.path.splitext(f)
            stems.setdefault(stem, {})[ext] = f
        for f in files:
            dst = where(f)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            stem, ext = os.path.splitext(f)
            sib = stems[stem]
            if ext == ".key" or (ext in (".pem", ".crt") and ".key" in sib):
                crt, key = self.pair(stem)
                shutil.copyfile(key if ext == ".key" else crt, dst)
            elif ext in (".pem", ".crt"):
                shutil.copyfile(self.pki().ca_cert, dst)
            elif ext == ".mmdb":
                mmdb.write(dst, [("127.0.0.0/8", mmdb.country("US"))], ip_version=6)
            else:
                open(dst, "w").close()


@pytest.fixture(scope="module")
def maker(tmp_path_factory):
    return Maker(str(tmp_path_factory.mktemp("docs-pki")))


@pytest.fixture
def dns():
    servers = []

    def start(names):
        s = DnsServer({n: ["127.0.0.1"] for n in names})
        servers.append(s)
        return s
    yield start
    for s in servers:
        s.close()


def check_block(block, tmp_path, maker, dns):
    """Writes block's configuration under tmp_path and runs `portico check` on it. Returns
    (ok, report, config text)."""
    cdir = str(tmp_path / "conf")
    root = str(tmp_path / "root")
    os.makedirs(cdir, exist_ok=True)
    os.makedirs(root, exist_ok=True)
    m = block.marker
    files, dirs = m.get("files", []), m.get("dirs", [])

    def extra_cert():
        crt, key = maker.pair("check-wrapper")
        shutil.copyfile(crt, os.path.join(cdir, "check-wrapper.pem"))
        shutil.copyfile(key, os.path.join(cdir, "check-wrapper.key"))
        return "check-wrapper.pem", "check-wrapper.key"
    maker.make(cdir, root, files, dirs)
    text = block.text
    if block.line:  # a Markdown block; example files are checked exactly as they are
        text = wrap(text, m, extra_cert)
        text = reroot(text, files + dirs, root)
        text = point_resolver(text, dns(m.get("dns", [])).addr)
        path = os.path.join(cdir, "portico.yaml")
        with open(path, "w") as f:
            f.write(text)
    else:
        path = os.path.join(REPO, block.path)
    env = dict(os.environ)
    for kv in m.get("env", []):
        k, _, v = kv.partition("=")
        env[k] = v
    r = subprocess.run([PORTICO_BIN, "check", "-c", path], capture_output=True, text=True,
                       timeout=scaled(60), env=env, cwd=cdir)
    noisy = [ln for ln in r.stderr.splitlines() if re.search(r"warn|error", ln, re.I)]
    ok = r.returncode == 0 and r.stdout.strip() == "ok" and not noisy
    report = "exit %d\nstdout: %s\nstderr:\n%s" % (r.returncode, r.stdout.strip(), r.stderr)
    return ok, report, text


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_docs_example_passes_check(block, tmp_path, maker, dns):
    ok, report, text = check_block(block, tmp_path, maker, dns)
    assert ok, ("%s: this example does not pass `portico check`.\n%s\n--- configuration as "
                "checked ---\n%s\nIf it is a fragment, or needs files, host names or variables, "
                "put a `<!-- check: ... -->` marker on the line above its fence (see the "
                "comment at the top of tests/e2e/test_docs_examples.py)."
                % (block.id, report, text))


def test_docs_markers_are_well_formed():
    assert not MARKER_PROBLEMS, "\n".join(MARKER_PROBLEMS)


def test_docs_examples_are_found():
    """The extractor finds the blocks this test exists for (an extractor that found nothing
    would pass everything)."""
    ids = {b.id for b in BLOCKS}
    assert any(i.startswith("README.md:") for i in ids)
    assert sum(1 for i in ids if i.startswith("docs/config.md:")) >= 15
    assert "examples/quickstart.yaml" in ids
    prod = [b for b in BLOCKS if b.path == "README.md" and "acme:" in b.text]
    assert prod, "the README's production HTTPS example is no longer found"


SAMPLE = """\
Text.

<!-- check: fragment=routes upstreams=api -->
```yaml
- match: "/api/*"
  proxy: {to: api}
```

<!-- check: fragment=route -->
```yaml
proxy: {to: nowhere}
```

```yaml
listen: [{addr: "127.0.0.1:8080"}]
```

<!-- check: fragment=top files=/opt/x/site.pem,/opt/x/site.key -->
```yaml
tls:
  certificates: [{cert: /opt/x/site.pem, key: /opt/x/site.key}]
```

<!-- check: fragmnt=top -->
```yaml
workers: 1
```

<!-- check: fragment=top -->
Not a fence.
"""


def test_docs_extractor_checks_fragments_and_fails_what_is_broken(tmp_path, maker, dns):
    """The convention itself: a fragment is wrapped and checked (one that passes, one whose
    route names an unknown upstream fails), a bare incomplete block fails, an absolute path is
    created under the test's directory, and malformed or stray markers are reported."""
    blocks, problems = extract("sample.md", SAMPLE)
    assert [b.line for b in blocks] == [4, 10, 14, 19, 25]
    results = []
    for n, b in enumerate(blocks[:4]):
        ok, report, text = check_block(b, tmp_path / str(n), maker, dns)
        results.append(ok)
        if n == 1:
            assert 'unknown upstream "nowhere"' in report
        if n == 3:
            assert str(tmp_path / "3" / "root" / "opt" / "x" / "site.pem") in text
    assert results == [True, False, False, True]
    assert len(problems) == 2
    assert "fragmnt" in problems[0]
    assert "just above" in problems[1]


# --- links --------------------------------------------------------------------------------------

LINK_RE = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_RE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(\s|$)", re.M)
CITE_RE = re.compile(r"(?<![A-Za-z0-9_./<-])((?:src|docs|tests|scripts|examples|bench|shared)"
                     r"/[A-Za-z0-9_./-]*[A-Za-z0-9_]\.(?:md|c|h|py|sh|yaml|yml|toml|json))"
                     r"(?![A-Za-z0-9_/-])")
CAPS_RE = re.compile(r"(?<![A-Za-z0-9_./-])([A-Z][A-Z_]*\.md)\b")


def markdown_files():
    out = []
    for dirpath, dirnames, filenames in os.walk(REPO):
        rel = os.path.relpath(dirpath, REPO)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "build" and
                       d != "node_modules" and not (rel == "." and d == "shared")]
        out += [os.path.normpath(os.path.join(rel, f)) for f in filenames if f.endswith(".md")]
    return sorted(out)


def strip_code_fences(text):
    """The text with fenced blocks blanked (line numbers kept): a shell session or a config in
    a fence is not a link."""
    out, fence = [], None
    for ln in text.split("\n"):
        m = FENCE_RE.match(ln)
        if fence is None and m:
            fence = m.group(2)[0]
            out.append("")
        elif fence is not None and re.match(r"^\s*" + re.escape(fence) + "{3,}\\s*$", ln):
            fence = None
            out.append("")
        else:
            out.append("" if fence else ln)
    return "\n".join(out)


def bad_references(rel, text):
    """Lines naming a relative link or a cited repository file that does not exist."""
    here = os.path.dirname(os.path.join(REPO, rel))
    bad = []
    body = strip_code_fences(text)
    for lineno, ln in enumerate(body.split("\n"), 1):
        targets = [(t, "link") for t in LINK_RE.findall(ln)]
        targets += [(m.group(1), "link") for m in REF_RE.finditer(ln)]
        targets += [(t, "cited file") for t in CITE_RE.findall(ln)]
        targets += [(t, "cited file") for t in CAPS_RE.findall(ln)]
        for t, what in targets:
            if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", t) or t.startswith("#"):
                continue  # a URL with a scheme, or an anchor in the same page
            path = t.split("#", 1)[0].split("?", 1)[0]
            if not path:
                continue
            cands = [os.path.normpath(os.path.join(here, path))]
            if what == "cited file":
                cands.append(os.path.normpath(os.path.join(REPO, path)))
            inside = [c for c in cands if c == REPO or c.startswith(REPO + os.sep)]
            if not any(os.path.exists(c) and not
                       os.path.relpath(c, REPO).startswith("build" + os.sep) for c in inside):
                bad.append("%s:%d: %s %r does not lead to a file of the repository"
                           % (rel, lineno, what, t))
    return bad


def test_docs_links_resolve():
    files = markdown_files()
    assert "README.md" in files and "docs/config.md" in files
    bad = []
    for rel in files:
        with open(os.path.join(REPO, rel), encoding="utf-8") as f:
            bad += bad_references(rel, f.read())
    assert not bad, "\n".join(bad)


def test_docs_link_checker_finds_broken_links():
    text = ("See [the map](../DESIGN.md), [config](config.md#tls), STYLE.md,\n"
            "`shared/spec/config.md`, [site](https://example.com/) and src/core/loop.c.\n"
            "```sh\ncat NOTES.md\n```\n")
    bad = bad_references("docs/sample.md", text)
    assert len(bad) == 3, bad
    assert "DESIGN.md" in bad[0] and "STYLE.md" in bad[1] and "shared/spec" in bad[2]
