"""The WAF (waf: on a site or route; src/guard/waf.c, src/server/waf_guard.c), end to end.

libmodsecurity3 with Debian's OWASP CRS 3.3: the classic attacks are refused with Portico's
403 page (the request id, nothing about the rules) and never reach the backend, which counts
what it gets; ordinary requests and bodies pass whole; detect mode only logs; paranoia,
exclusions and the body limit change what happens; the audit log is JSON lines with rule ids
and no body or secret header values; a rules file that does not load fails `portico check`.
"""

import json
import os
import subprocess

import pytest

from helpers import backends as B
from helpers.client import RawConn, build_request, chunked_body, get, request
from helpers.common import scaled, wait_until
from helpers.portico import PORTICO_BIN

CRS = "/usr/share/modsecurity-crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf"
pytestmark = pytest.mark.skipif(not os.path.exists(CRS), reason="modsecurity-crs not installed")

UA = [("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"), ("Accept", "*/*")]


def cfg_of(backend_url, waf=None, route_waf=None, extra_routes=(), http2=False, **top):
    def build(port):
        route = {"match": "/*", "proxy": {"to": backend_url}}
        if route_waf is not None:
            route["waf"] = route_waf
        site = {"routes": list(extra_routes) + [route]}
        if waf is not None:
            site["waf"] = waf
        cfg = {"sites": [site]}
        if http2:
            cfg["listen"] = [{"addr": "127.0.0.1:%d" % port, "http2": True}]
        cfg.update(top)
        return cfg
    return build


def send(p, method, target, headers=(), body=None):
    return request(p.port, method, target, headers=list(UA) + list(headers), body=body)


def audit_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


ATTACKS = [
    ("GET", "/search?id=1%27%20or%20%271%27%3D%271", (), None),
    ("POST", "/login", [("Content-Type", "application/x-www-form-urlencoded")],
     b"user=admin%27+or+1%3D1--&pass=x"),
    ("POST", "/api/items", [("Content-Type", "application/json")],
     b'{"name": "x", "q": "1 union select password from users--"}'),
    ("GET", "/page?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E", (), None),
    ("GET", "/download?file=..%2F..%2F..%2Fetc%2Fpasswd", (), None),
    ("GET", "/ping?host=127.0.0.1%3Bcat%20%2Fetc%2Fpasswd", (), None),
    ("GET", "/", [("User-Agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")], None),
    ("GET", "/", [("User-Agent", "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)")],
     None),
]


@pytest.mark.parametrize("method,target,headers,body", ATTACKS,
                         ids=["sqli-query", "sqli-form", "sqli-json", "xss", "traversal",
                              "cmd-injection", "sqlmap", "nikto"])
def test_block_mode_refuses_attacks_with_portico_page_and_never_reaches_backend(
        portico, backend, method, target, headers, body):
    b = backend(B.echo())
    p = portico(cfg_of(b.url, waf={"mode": "block"}))
    hs = [h for h in UA if not any(h[0] == k for k, _ in headers)] + list(headers)
    r = request(p.port, method, target, headers=hs, body=body)
    assert r.status == 403, r
    rid = r.header("X-Request-Id")
    assert rid and rid.encode() in r.body and b"403" in r.body
    page = r.body.replace(rid.encode(), b"").lower()
    for word in (b"942", b"949", b"913", b"rule", b"modsecurity", b"anomaly", b"waf"):
        assert word not in page  # the rules are not revealed
    assert len(b.requests) == 0
    assert "refused by waf (rules " in p.stderr()


def test_clean_get_and_json_post_pass_whole(portico, backend):
    b = backend(B.echo())
    p = portico(cfg_of(b.url, waf={"mode": "block"}))
    r = send(p, "GET", "/products?page=2&sort=price")
    assert r.status == 200, r
    body = json.dumps({"name": "Widget", "tags": ["a", "b"], "price": 12.5}).encode()
    r = send(p, "POST", "/api/items", [("Content-Type", "application/json")], body)
    assert r.status == 200, r
    seen = r.json()
    assert seen["body_len"] == len(body) and seen["method"] == "POST"
    # a chunked body goes through the same stage and arrives whole
    big = b'{"items": [' + b",".join(b'{"n": %d}' % i for i in range(3000)) + b"]}"
    with RawConn(p.port) as c:
        r = c.request("POST", "/api/bulk", list(UA) + [("Content-Type", "application/json"),
                                                      ("Transfer-Encoding", "chunked")],
                      chunked_body([big[:7000], big[7000:20000], big[20000:]]))
        assert r.status == 200 and r.json()["body_len"] == len(big)
        # the connection stays usable after a body the WAF held
        assert c.request("GET", "/next", list(UA)).status == 200
    assert len(b.requests) == 4


def test_expect_100_continue_body_is_asked_for_then_judged(portico, backend):
    b = backend(B.echo())
    p = portico(cfg_of(b.url, waf={"mode": "block"}))
    form = [("Content-Type", "application/x-www-form-urlencoded")]
    for body, want in ((b"a=1&b=two", 200), (b"user=admin%27+or+1%3D1--", 403)):
        with RawConn(p.port) as c:
            c.send(build_request("POST", "/form", list(UA) + form + [
                ("Expect", "100-continue"), ("Content-Length", str(len(body)))]))
            interim = c.read_response(method="POST", allow_interim=True)
            assert interim.status == 100, interim  # sent while the WAF waits for the body
            c.send(body)
            assert c.read_response(method="POST").status == want
    assert len(b.requests) == 1


def test_attack_on_keepalive_connection_then_clean_request(portico, backend):
    b = backend(B.echo())
    p = portico(cfg_of(b.url, waf={"mode": "block"}))
    with RawConn(p.port) as c:
        r = c.request("POST", "/login", list(UA) + [("Content-Type",
                                                     "application/x-www-form-urlencoded")],
                      b"user=admin%27+or+1%3D1--")
        assert r.status == 403
        assert c.request("GET", "/fine", list(UA)).status == 200
    assert [q.path for q in b.requests] == ["/fine"]


def test_detect_mode_passes_and_logs(portico, backend, tmp_path):
    b = backend(B.echo())
    audit = tmp_path / "audit.jsonl"
    p = portico(cfg_of(b.url, waf={"mode": "detect", "audit_log": str(audit)}))
    r = send(p, "GET", "/search?id=1%27%20or%20%271%27%3D%271")
    assert r.status == 200
    r = send(p, "POST", "/api", [("Content-Type", "application/json")],
             b'{"q": "1 union select password from users--"}')
    assert r.status == 200 and r.json()["body_len"] > 0
    assert len(b.requests) == 2
    wait_until(lambda: audit.exists() and len(audit_lines(audit)) == 2, scaled(5))
    lines = audit_lines(audit)
    assert all(x["action"] == "detected" and x["mode"] == "detect" for x in lines)
    assert any(rule["id"] == 942100 for rule in lines[0]["rules"])
    assert "waf detect mode: would refuse" in p.stderr()


def test_paranoia_level_takes_effect(portico, backend):
    b = backend(B.echo())
    # rule 913101 (a scripting HTTP client's User-Agent) runs from paranoia level 2
    ua = [("User-Agent", "python-requests/2.31.0"), ("Accept", "*/*")]
    p = portico(cfg_of(b.url, waf={"mode": "block"},
                       extra_routes=[{"match": "/pl2/*", "proxy": {"to": b.url},
                                      "waf": {"paranoia": 2}}]))
    assert request(p.port, "GET", "/pl1/x", headers=ua).status == 200
    assert request(p.port, "GET", "/pl2/x", headers=ua).status == 403


def test_reload_with_another_paranoia_level_and_a_bad_rule(portico, backend, tmp_path):
    b = backend(B.echo())
    ua = [("User-Agent", "python-requests/2.31.0"), ("Accept", "*/*")]
    p = portico(cfg_of(b.url, waf={"paranoia": 1}))
    assert request(p.port, "GET", "/x", headers=ua).status == 200
    p.reload(cfg_of(b.url, waf={"paranoia": 2}))
    assert wait_until(lambda: request(p.port, "GET", "/x", headers=ua).status == 403,
                      scaled(10), what="paranoia 2 after the reload")
    # a rule that does not load: the reload fails whole, the running rules stay
    bad = tmp_path / "bad.conf"
    bad.write_text('SecRule ARGS "@rx x" "id:100003,phase:2,bogusaction"\n')
    p.reload(cfg_of(b.url, waf={"paranoia": 1, "rules": [str(bad)]}))
    assert wait_until(lambda: "bogusaction" in p.stderr(), scaled(10), what="the reload error")
    assert request(p.port, "GET", "/x", headers=ua).status == 403


def test_route_exclusion_lets_a_rule_hit_through(portico, backend):
    b = backend(B.echo())
    sqli = "?id=1%27%20or%20%271%27%3D%271"
    nikto = [("User-Agent", "Mozilla/5.00 (Nikto/2.1.6)"), ("Accept", "*/*")]
    p = portico(cfg_of(b.url, waf={"mode": "block"}, extra_routes=[
        {"match": "/legacy/*", "proxy": {"to": b.url},
         "waf": {"exclude": [{"id": 942100, "target": "ARGS:id"}, {"id": 913100}]}},
        {"match": "/tagged/*", "proxy": {"to": b.url},
         "waf": {"exclude": [{"tag": "attack-sqli"}]}},
        {"match": "/open/*", "proxy": {"to": b.url}, "waf": "off"}]))
    assert send(p, "GET", "/legacy/x" + sqli).status == 200  # that rule, that argument
    assert send(p, "GET", "/legacy/x" + sqli.replace("id=", "other=")).status == 403
    assert request(p.port, "GET", "/legacy/x", headers=nikto).status == 200
    assert request(p.port, "GET", "/x", headers=nikto).status == 403
    assert send(p, "GET", "/tagged/x" + sqli).status == 200
    assert send(p, "GET", "/x" + sqli).status == 403
    assert send(p, "GET", "/open/x" + sqli).status == 200  # waf: off lifts the site's


def test_body_over_limit_refused_or_passed(portico, backend):
    b = backend(B.echo())
    p = portico(cfg_of(b.url, waf={"mode": "block", "body_limit": "1k"}, extra_routes=[
        {"match": "/pass/*", "proxy": {"to": b.url},
         "waf": {"body_limit": "1k", "over_limit": "pass"}}]))
    body = b"a=" + b"x" * 3000
    form = [("Content-Type", "application/x-www-form-urlencoded")]
    assert send(p, "POST", "/x", form, body).status == 413
    assert send(p, "POST", "/x", form, b"a=b").status == 200
    r = send(p, "POST", "/pass/x", form, body)
    assert r.status == 200 and r.json()["body_len"] == len(body)
    # chunked: the limit is found while reading
    with RawConn(p.port) as c:
        r = c.request("POST", "/x", list(UA) + form + [("Transfer-Encoding", "chunked")],
                      chunked_body([body[:800], body[800:]]))
        assert r.status == 413
    with RawConn(p.port) as c:
        r = c.request("POST", "/pass/y", list(UA) + form + [("Transfer-Encoding", "chunked")],
                      chunked_body([body[:800], body[800:2000], body[2000:]]))
        assert r.status == 200 and r.json()["body_len"] == len(body)
    # a JSON body passed uninspected is not "a body that does not parse"
    js = b'{"a": "' + b"x" * 3000 + b'"}'
    r = send(p, "POST", "/pass/j", [("Content-Type", "application/json")], js)
    assert r.status == 200 and r.json()["body_len"] == len(js)
    # an attack within the limit is still seen on the pass route
    assert send(p, "POST", "/pass/z", form, b"user=admin%27+or+1%3D1--").status == 403
    assert len(b.requests) == 4


def test_audit_log_is_json_lines_with_rule_ids_and_no_secrets(portico, backend, tmp_path):
    b = backend(B.echo())
    audit = tmp_path / "audit.jsonl"
    p = portico(cfg_of(b.url, waf={"mode": "block", "audit_log": str(audit)}))
    secret = [("Authorization", "Bearer s3cr3t-t0ken"), ("Cookie", "session=c00kie-value"),
              ("Content-Type", "application/x-www-form-urlencoded")]
    r = send(p, "POST", "/login?x=1", secret, b"user=admin%27+or+1%3D1--&password=hunter2pass")
    assert r.status == 403
    assert send(p, "GET", "/p?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").status == 403
    wait_until(lambda: audit.exists() and len(audit_lines(audit)) == 2, scaled(5))
    text = audit.read_text()
    lines = audit_lines(audit)
    first = lines[0]
    for key in ("time", "request_id", "client", "method", "uri", "rules", "anomaly_score",
                "action"):
        assert key in first
    assert first["action"] == "blocked" and first["method"] == "POST"
    assert first["uri"] == "/login?x=1" and first["client"] == "127.0.0.1"
    assert first["anomaly_score"] >= 5
    ids = {x["id"] for x in first["rules"]}
    assert 942100 in ids and 949110 in ids
    assert all(x["msg"] and x["severity"] for x in first["rules"])
    for leak in ("hunter2pass", "s3cr3t", "c00kie", "admin"):
        assert leak not in text
    assert any(x["id"] == 941100 for x in lines[1]["rules"])


def test_bad_rules_file_fails_check_with_modsecurity_message(tmp_path):
    rules = tmp_path / "mine.conf"
    rules.write_text('SecRule ARGS "@rx evil" "id:100001,phase:2,deny,bogusaction"\n')
    cfg = tmp_path / "p.yaml"
    cfg.write_text("listen: [{addr: \"127.0.0.1:1\"}]\n"
                   "routes:\n"
                   "  - match: /*\n"
                   "    respond: {status: 200}\n"
                   "    waf: {rules: [mine.conf]}\n")
    r = subprocess.run([PORTICO_BIN, "check", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=scaled(60))
    assert r.returncode != 0
    assert "waf: the rules \"%s\" do not load" % rules in r.stderr, r.stderr
    assert "bogusaction" in r.stderr and ":5:" in r.stderr
    # the same file, fixed, loads (and its rule works)
    rules.write_text('SecRule ARGS "@rx evil" "id:100001,phase:2,deny,status:403,log"\n')
    r = subprocess.run([PORTICO_BIN, "check", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=scaled(60))
    assert r.returncode == 0, r.stderr


def test_operator_rules_file_applies(portico, backend, tmp_path):
    b = backend(B.echo())
    rules = tmp_path / "mine.conf"
    rules.write_text('SecRule ARGS:token "@streq forbidden" '
                     '"id:100002,phase:2,deny,status:403,log,msg:\'operator rule\'"\n')
    p = portico(cfg_of(b.url, waf={"rules": [str(rules)]}))
    assert send(p, "GET", "/x?token=allowed").status == 200
    assert send(p, "GET", "/x?token=forbidden").status == 403


def test_waf_on_http2(portico, backend, tmp_path):
    b = backend(B.echo())
    p = portico(cfg_of(b.url, waf={"mode": "block"}, http2=True))
    base = ["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}",
            "-H", "User-Agent: Mozilla/5.0", "-H", "Accept: */*"]
    url = "http://127.0.0.1:%d" % p.port

    def code(*args):
        r = subprocess.run(base + list(args), capture_output=True, timeout=scaled(20))
        return r.stdout.decode()

    assert code(url + "/ok?page=1") == "200"
    assert code(url + "/s?id=1%27%20or%20%271%27%3D%271") == "403"
    assert code("-H", "Content-Type: application/json", "--data-binary",
                '{"q": "1 union select password from users--"}', url + "/api") == "403"
    assert code("-H", "Content-Type: application/json", "--data-binary",
                '{"name": "fine"}', url + "/api") == "200"
    # a body larger than the stream's flow-control window is held, judged and sent whole
    form = tmp_path / "form.txt"
    form.write_bytes(b"a=" + b"b" * 120000)
    r = subprocess.run(base[:3] + ["-H", "User-Agent: Mozilla/5.0", "-H", "Accept: */*", "-H",
                                   "Content-Type: application/x-www-form-urlencoded",
                                   "--data-binary", "@%s" % form, url + "/big"],
                       capture_output=True, timeout=scaled(20))
    assert json.loads(r.stdout)["body_len"] == 120002
    assert len(b.requests) == 3
    assert get(p.port, "/h1", headers=UA).status == 200  # HTTP/1.1 on the same listener
