"""The rules API on the admin listener (docs/api.md): projects, aliases, proxy rules, reorder,
validation (400 naming every bad field), 404, 409 on a stale update, the OpenAPI document, and
header secrets that never leave Portico in clear (responses, logs, audit log, database)."""

import glob
import http.client
import json
import os
import subprocess

import pytest

from helpers.admin import tokens
from helpers.common import free_port, wait_until
from helpers.portico import PORTICO_BIN

SECRET = "s3cr3t-Value-7f1e2d9c-never-shown"


class Api:
    def __init__(self, port, token):
        self.port = port
        self.token = token

    def call(self, method, path, body=None, token=None, headers=None):
        """(status, {header: value}, parsed JSON or None, raw bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            h = {"Authorization": "Bearer " + (token or self.token)}
            h.update(headers or {})
            data = None
            if body is not None:
                data = body if isinstance(body, (bytes, str)) else json.dumps(body)
                h["Content-Type"] = "application/json"
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            is_json = hdrs.get("content-type", "").startswith("application/json")
            doc = json.loads(raw) if is_json and raw.strip() else None
            return r.status, hdrs, doc, raw
        finally:
            c.close()

    def is_live(self):
        try:
            return self.call("GET", "/live")[0] == 200
        except OSError:
            return False

    def ok(self, method, path, body=None, status=(200, 201), **kw):
        st, h, doc, raw = self.call(method, path, body, **kw)
        assert st in status, (st, raw)
        return doc

    def project(self, name="shop", hostnames=None):
        return self.ok("POST", "/api/projects", {"name": name, "hostnames": hostnames or []})


def keygen(path):
    r = subprocess.run([PORTICO_BIN, "keygen", str(path)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r


def api_config(tmp_path, aport, tokens_file, key, extra=None):
    adm = {"listen": "127.0.0.1:%d" % aport, "tokens_file": tokens_file,
           "audit_log": str(tmp_path / "audit.log"), "store": str(tmp_path / "rules.db"),
           "key_file": str(key)}
    adm.update(extra or {})
    return {"admin": adm, "routes": [{"match": "/*", "respond": {"status": 200, "body": "x"}}]}


@pytest.fixture
def api(portico, tmp_path):
    """Starts Portico with a rules store; returns (Api with a write token, read token, portico)."""
    (reader, writer), tf = tokens(tmp_path, [("reader", "read"), ("writer", "write")])
    key = tmp_path / "key"
    keygen(key)
    aport = free_port()
    p = portico(api_config(tmp_path, aport, tf, key, {"allow_private": ["192.0.2.0/24"]}))
    a = Api(aport, writer)
    wait_until(a.is_live, 10, what="admin listener")
    return a, reader, p


RULE_FIELDS = {"id", "projectId", "aliasId", "pathPattern", "targetUrl", "stripPrefix", "order",
               "timeout", "preserveHost", "headerConfig", "isEnabled", "description",
               "createdAt", "updatedAt"}


def test_seed_example_curl_post_gets_the_rule_in_the_seed_shape(api):
    a, _, _ = api
    pid = a.project()["id"]
    body = json.dumps({"pathPattern": "/api/*", "targetUrl": "https://api.example.com",
                       "stripPrefix": True, "timeout": 5000, "description": "Backend API"})
    r = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-X", "POST",
                        "http://127.0.0.1:%d/api/proxy-rules/project/%s" % (a.port, pid),
                        "-H", "Authorization: Bearer " + a.token,
                        "-H", "Content-Type: application/json", "-d", body],
                       capture_output=True, text=True, timeout=10)
    text, code = r.stdout.rsplit("\n", 1)
    assert code == "201", r.stdout
    rule = json.loads(text)
    assert set(rule) == RULE_FIELDS
    assert rule["projectId"] == pid and rule["aliasId"] is None
    assert rule["pathPattern"] == "/api/*" and rule["targetUrl"] == "https://api.example.com"
    assert rule["stripPrefix"] is True and rule["timeout"] == 5000
    assert rule["description"] == "Backend API" and rule["order"] == 0
    assert rule["isEnabled"] is True and rule["preserveHost"] is False
    assert rule["headerConfig"] == {"add": {}, "remove": []}
    assert len(rule["id"]) == 36 and rule["createdAt"].endswith("Z")
    # defaults, the list, and one rule with its ETag
    r2 = a.ok("POST", "/api/proxy-rules/project/%s" % pid,
              {"pathPattern": "*.json", "targetUrl": "https://data.example.com:8443/x"})
    assert r2["timeout"] == 30000 and r2["order"] == 1 and r2["stripPrefix"] is False
    listed = a.ok("GET", "/api/proxy-rules/project/%s" % pid)
    assert [x["id"] for x in listed["rules"]] == [rule["id"], r2["id"]]
    st, h, one, _ = a.call("GET", "/api/proxy-rules/%s" % rule["id"])
    assert st == 200 and one == rule and h["etag"] == '"%s"' % rule["updatedAt"]


BAD_RULES = [
    ({"targetUrl": "http://api.example.com"}, "targetUrl"),
    ({"targetUrl": "https://10.1.2.3/"}, "targetUrl"),
    ({"targetUrl": "https://127.0.0.1:8443/"}, "targetUrl"),
    ({"targetUrl": "https://169.254.169.254/latest"}, "targetUrl"),
    ({"targetUrl": "https://[::ffff:10.0.0.1]/"}, "targetUrl"),
    ({"targetUrl": "https://localhost/"}, "targetUrl"),
    ({"targetUrl": 5}, "targetUrl"),
    ({"pathPattern": "/a/*/b"}, "pathPattern"),
    ({"pathPattern": "api"}, "pathPattern"),
    ({"pathPattern": "/a//b"}, "pathPattern"),
    ({"pathPattern": "~^/v1"}, "pathPattern"),
    ({"pathPattern": "/u/:id"}, "pathPattern"),
    ({"pathPattern": ""}, "pathPattern"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": 60001}, "timeout"),
    ({"timeout": "30"}, "timeout"),
    ({"timeout": 1.5}, "timeout"),
    ({"stripPrefix": "yes"}, "stripPrefix"),
    ({"preserveHost": 1}, "preserveHost"),
    ({"isEnabled": None}, "isEnabled"),
    ({"order": -1}, "order"),
    ({"description": 7}, "description"),
    ({"bogus": 1}, "bogus"),
    ({"forwardCookies": True}, "forwardCookies"),
    ({"headerConfig": {"add": {"Bad Name": "v"}}}, "headerConfig.add"),
    ({"headerConfig": {"add": {"X-Ok": "a\r\nb"}}}, "headerConfig.add"),
    ({"headerConfig": {"add": {"Content-Length": "5"}}}, "headerConfig.add"),
    ({"headerConfig": {"add": {"X-Ok": 5}}}, "headerConfig.add"),
    ({"headerConfig": {"add": {"X-Key": "********"}}}, "headerConfig.add"),
    ({"headerConfig": {"remove": ["ok", "not ok"]}}, "headerConfig.remove"),
    ({"description": "two\nlines"}, "description"),
    ({"headerConfig": {"strip": []}}, "headerConfig"),
    ({"headerConfig": []}, "headerConfig"),
    ({"id": "00000000-0000-4000-8000-000000000000"}, "id"),
    ({"updatedAt": "2026-01-01T00:00:00.000Z"}, "updatedAt"),
]


@pytest.mark.parametrize("patch,field", BAD_RULES)
def test_invalid_rule_field_is_400_naming_it(api, patch, field):
    a, _, _ = api
    pid = a.project()["id"]
    body = {"pathPattern": "/api/*", "targetUrl": "https://api.example.com"}
    body.update(patch)
    st, _, doc, raw = a.call("POST", "/api/proxy-rules/project/%s" % pid, body)
    assert st == 400, raw
    assert field in [e["field"] for e in doc["errors"]], doc
    assert a.ok("GET", "/api/proxy-rules/project/%s" % pid)["rules"] == []


def test_every_bad_field_is_listed_in_one_answer_and_patch_is_checked_too(api):
    a, _, _ = api
    pid = a.project()["id"]
    st, _, doc, _ = a.call("POST", "/api/proxy-rules/project/%s" % pid,
                           {"pathPattern": "/a/*/b", "targetUrl": "http://x.example",
                            "timeout": 0, "nope": True})
    assert st == 400
    assert {e["field"] for e in doc["errors"]} == {"pathPattern", "targetUrl", "timeout", "nope"}
    st, _, doc, _ = a.call("POST", "/api/proxy-rules/project/%s" % pid, {})
    assert st == 400 and {e["field"] for e in doc["errors"]} == {"pathPattern", "targetUrl"}
    for body in (b"not json", b"[1, 2]"):
        st, _, doc, _ = a.call("POST", "/api/proxy-rules/project/%s" % pid, body)
        assert st == 400 and doc["errors"][0]["field"] is None
    rid = a.ok("POST", "/api/proxy-rules/project/%s" % pid,
               {"pathPattern": "/api/*", "targetUrl": "https://api.example.com"})["id"]
    st, _, doc, _ = a.call("PATCH", "/api/proxy-rules/%s" % rid,
                           {"timeout": 60001, "targetUrl": "https://192.168.1.1/"})
    assert st == 400 and {e["field"] for e in doc["errors"]} == {"timeout", "targetUrl"}
    # allow_private lets the operator's own prefix through
    r = a.ok("PATCH", "/api/proxy-rules/%s" % rid, {"targetUrl": "https://192.0.2.7/"})
    assert r["targetUrl"] == "https://192.0.2.7/"


def test_missing_objects_are_404(api):
    a, _, _ = api
    none = "00000000-0000-4000-8000-000000000000"
    for method, path, body in [
            ("GET", "/api/proxy-rules/project/" + none, None),
            ("POST", "/api/proxy-rules/project/" + none,
             {"pathPattern": "/a", "targetUrl": "https://a.example"}),
            ("PUT", "/api/proxy-rules/project/%s/reorder" % none, {"ruleIds": []}),
            ("GET", "/api/proxy-rules/alias/" + none, None),
            ("POST", "/api/proxy-rules/alias/" + none,
             {"pathPattern": "/a", "targetUrl": "https://a.example"}),
            ("GET", "/api/proxy-rules/" + none, None),
            ("PATCH", "/api/proxy-rules/" + none, {"timeout": 5}),
            ("DELETE", "/api/proxy-rules/" + none, None),
            ("GET", "/api/projects/" + none, None),
            ("PATCH", "/api/projects/" + none, {"name": "x"}),
            ("DELETE", "/api/projects/" + none, None),
            ("GET", "/api/projects/%s/aliases" % none, None),
            ("POST", "/api/projects/%s/aliases" % none, {"name": "staging"}),
            ("GET", "/api/aliases/" + none, None),
            ("DELETE", "/api/aliases/" + none, None)]:
        st, _, doc, raw = a.call(method, path, body)
        assert st == 404, (method, path, raw)
        assert doc["errors"][0]["message"] != "no such endpoint", (method, path)


def test_stale_update_is_409_with_if_match_or_updated_at(api):
    a, _, _ = api
    pid = a.project()["id"]
    rule = a.ok("POST", "/api/proxy-rules/project/%s" % pid,
                {"pathPattern": "/api/*", "targetUrl": "https://api.example.com"})
    path = "/api/proxy-rules/%s" % rule["id"]
    _, h, _, _ = a.call("GET", path)
    etag = h["etag"]
    new = a.ok("PATCH", path, {"description": "first"}, headers={"If-Match": etag})
    assert new["description"] == "first" and new["updatedAt"] > rule["updatedAt"]
    st, _, doc, _ = a.call("PATCH", path, {"description": "lost"}, headers={"If-Match": etag})
    assert st == 409 and doc["errors"][0]["field"] == "updatedAt"
    st, _, _, _ = a.call("PATCH", path, {"description": "lost", "updatedAt": rule["updatedAt"]})
    assert st == 409
    st, _, _, _ = a.call("DELETE", path, headers={"If-Match": etag})
    assert st == 409
    assert a.ok("GET", path)["description"] == "first"
    a.ok("PATCH", path, {"description": "second", "updatedAt": new["updatedAt"]})
    # a masked round trip: the object as read can be sent back
    cur = a.ok("GET", path)
    back = a.ok("PATCH", path, cur)
    assert back["description"] == "second"
    assert a.ok("DELETE", path) == {"success": True}
    assert a.call("GET", path)[0] == 404


def test_reorder_takes_every_id_and_refuses_a_partial_or_foreign_list(api):
    a, _, _ = api
    pid = a.project()["id"]
    other = a.project("other")["id"]
    ids = [a.ok("POST", "/api/proxy-rules/project/%s" % pid,
                {"pathPattern": "/p%d/*" % i, "targetUrl": "https://a.example"})["id"]
           for i in range(3)]
    foreign = a.ok("POST", "/api/proxy-rules/project/%s" % other,
                   {"pathPattern": "/x", "targetUrl": "https://a.example"})["id"]
    url = "/api/proxy-rules/project/%s/reorder" % pid
    out = a.ok("PUT", url, {"ruleIds": [ids[2], ids[0], ids[1]]})
    assert [r["id"] for r in out["rules"]] == [ids[2], ids[0], ids[1]]
    assert [r["order"] for r in out["rules"]] == [0, 1, 2]
    for bad in ([ids[0], ids[1]], [ids[0], ids[1], foreign], [ids[0], ids[0], ids[1], ids[2]],
                "x", [1, 2, 3]):
        st, _, doc, raw = a.call("PUT", url, {"ruleIds": bad})
        assert st == 400 and doc["errors"][0]["field"] == "ruleIds", raw
    st, _, doc, _ = a.call("PUT", url, {"ids": ids})
    assert st == 400
    got = a.ok("GET", "/api/proxy-rules/project/%s" % pid)["rules"]
    assert [r["id"] for r in got] == [ids[2], ids[0], ids[1]]
    # a move by PATCH order
    a.ok("PATCH", "/api/proxy-rules/%s" % ids[1], {"order": 0})
    got = a.ok("GET", "/api/proxy-rules/project/%s" % pid)["rules"]
    assert [r["id"] for r in got] == [ids[1], ids[2], ids[0]]


def test_projects_aliases_and_alias_rules(api):
    a, reader, _ = api
    p = a.project("shop", ["shop.example.com"])
    assert p["hostnames"] == ["shop.example.com"]
    st, _, doc, _ = a.call("POST", "/api/projects", {"name": "dup", "hostnames":
                                                      ["shop.example.com"]})
    assert st == 409 and doc["errors"][0]["field"] == "hostnames"
    st, _, doc, _ = a.call("POST", "/api/projects", {"hostnames": "x", "extra": 1})
    assert st == 400 and {e["field"] for e in doc["errors"]} == {"hostnames", "extra", "name"}
    al = a.ok("POST", "/api/projects/%s/aliases" % p["id"],
              {"name": "staging", "hostnames": ["staging.shop.example.com"]})
    assert al["projectId"] == p["id"]
    assert a.ok("GET", "/api/projects/%s/aliases" % p["id"])["aliases"] == [al]
    assert a.ok("GET", "/api/aliases/%s" % al["id"]) == al
    r = a.ok("POST", "/api/proxy-rules/alias/%s" % al["id"],
             {"pathPattern": "/api/*", "targetUrl": "https://staging-api.example.com"})
    assert r["aliasId"] == al["id"] and r["projectId"] == p["id"]
    r2 = a.ok("POST", "/api/proxy-rules/alias/%s" % al["id"],
              {"pathPattern": "/b", "targetUrl": "https://staging-api.example.com"})
    out = a.ok("PUT", "/api/proxy-rules/alias/%s/reorder" % al["id"],
               {"ruleIds": [r2["id"], r["id"]]})
    assert [x["id"] for x in out["rules"]] == [r2["id"], r["id"]]
    assert a.ok("GET", "/api/proxy-rules/project/%s" % p["id"])["rules"] == []
    # reads work with a read token, writes do not
    assert a.call("GET", "/api/proxy-rules/alias/%s" % al["id"], token=reader)[0] == 200
    assert a.call("GET", "/api/projects", token=reader)[0] == 200
    assert a.call("DELETE", "/api/aliases/%s" % al["id"], token=reader)[0] == 403
    renamed = a.ok("PATCH", "/api/aliases/%s" % al["id"], {"name": "stage"})
    assert renamed["name"] == "stage" and renamed["hostnames"] == al["hostnames"]
    st, _, _, _ = a.call("PATCH", "/api/aliases/%s" % al["id"], {"projectId": "x"})
    assert st == 400
    a.ok("PATCH", "/api/projects/%s" % p["id"], {"hostnames": ["shop2.example.com"]})
    assert a.ok("DELETE", "/api/aliases/%s" % al["id"]) == {"success": True}
    assert a.call("GET", "/api/proxy-rules/%s" % r["id"])[0] == 404
    assert a.ok("DELETE", "/api/projects/%s" % p["id"]) == {"success": True}
    assert a.ok("GET", "/api/projects")["projects"] == []


EXPECTED_ROUTES = {
    ("get", "/live"), ("get", "/ready"), ("get", "/metrics"), ("get", "/api/openapi.json"),
    ("get", "/"), ("get", "/dashboard"), ("get", "/dashboard.js"), ("get", "/dashboard.css"),
    ("get", "/api/changes"), ("post", "/api/cache/purge"), ("get", "/api/cache"),
    ("get", "/api/projects"), ("post", "/api/projects"), ("get", "/api/projects/{id}"),
    ("patch", "/api/projects/{id}"), ("delete", "/api/projects/{id}"),
    ("get", "/api/projects/{projectId}/aliases"), ("post", "/api/projects/{projectId}/aliases"),
    ("get", "/api/aliases/{id}"), ("patch", "/api/aliases/{id}"),
    ("delete", "/api/aliases/{id}"),
    ("get", "/api/proxy-rules/project/{projectId}"),
    ("post", "/api/proxy-rules/project/{projectId}"),
    ("put", "/api/proxy-rules/project/{projectId}/reorder"),
    ("get", "/api/proxy-rules/alias/{aliasId}"), ("post", "/api/proxy-rules/alias/{aliasId}"),
    ("put", "/api/proxy-rules/alias/{aliasId}/reorder"),
    ("get", "/api/proxy-rules/{id}"), ("patch", "/api/proxy-rules/{id}"),
    ("delete", "/api/proxy-rules/{id}"),
}


def test_openapi_document_lists_exactly_the_routes_the_server_answers(api):
    a, reader, _ = api
    doc = a.ok("GET", "/api/openapi.json", token=reader)
    assert doc["openapi"].startswith("3.0")
    listed = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert listed == EXPECTED_ROUTES
    for m, p in sorted(listed):
        op = doc["paths"][p][m]
        assert op["responses"] and op["summary"]
        for ref in json.dumps(op).split('"$ref": "#/components/schemas/')[1:]:
            assert ref.split('"')[0] in doc["components"]["schemas"]
        # the server answers it: neither 405 nor "no such endpoint"
        path = p.replace("{id}", "00000000-0000-4000-8000-000000000000")
        path = path.replace("{projectId}", "x").replace("{aliasId}", "x")
        st, _, body, _ = a.call(m.upper(), path, {} if m in ("post", "put", "patch") else None)
        assert st != 405, (m, p)
        assert not (st == 404 and body["errors"][0]["message"] == "no such endpoint"), (m, p)
    # and nothing else is answered: a neighbour of a documented path is not an endpoint
    st, _, body, _ = a.call("GET", "/api/proxy-rules")
    assert st == 404 and body["errors"][0]["message"] == "no such endpoint"
    assert a.call("POST", "/api/proxy-rules/x")[0] == 405


def test_changes_are_audited_counted_and_header_secrets_never_leave_in_clear(api, tmp_path):
    a, _, p = api
    pid = a.project()["id"]
    r = a.ok("POST", "/api/proxy-rules/project/%s" % pid,
             {"pathPattern": "/api/*", "targetUrl": "https://api.example.com",
              "headerConfig": {"add": {"X-Api-Key": SECRET, "Authorization": "Bearer " + SECRET},
                               "remove": ["Cookie"]}})
    seen = [json.dumps(r)]
    assert r["headerConfig"]["add"] == {"X-Api-Key": "********", "Authorization": "********"}
    assert r["headerConfig"]["remove"] == ["Cookie"]
    path = "/api/proxy-rules/%s" % r["id"]
    # sending the mask back keeps the value; a new value replaces it
    r2 = a.ok("PATCH", path, {"headerConfig": {"add": {"X-Api-Key": "********",
                                                        "X-Other": SECRET + "2"}}})
    assert r2["headerConfig"]["add"] == {"X-Api-Key": "********", "X-Other": "********"}
    for method, url in [("GET", path), ("GET", "/api/proxy-rules/project/%s" % pid),
                        ("GET", "/api/openapi.json")]:
        seen.append(a.call(method, url)[3].decode())
    seen.append(json.dumps(a.ok("PUT", "/api/proxy-rules/project/%s/reorder" % pid,
                                {"ruleIds": [r["id"]]})))
    seen.append(json.dumps(r2))
    bad = a.call("PATCH", path, {"headerConfig": {"add": {"X-Bad": SECRET + "\n"}}})
    assert bad[0] == 400
    seen.append(bad[3].decode())
    assert not any(SECRET in s for s in seen)
    metrics = a.call("GET", "/metrics")[3].decode()
    assert 'portico_api_changes_total{outcome="success"} 4' in metrics, metrics
    assert 'portico_api_changes_total{outcome="failure"} 1' in metrics
    audit = [json.loads(ln) for ln in open(tmp_path / "audit.log")]
    assert [x["change"]["action"] for x in audit] == [
        "project.create", "rule.create", "rule.update", "rules.reorder"]
    assert all(x["token"] == "writer" for x in audit)
    p.stop()
    files = [tmp_path / "audit.log", p.stdout_path, p.stderr_path, p.access_path]
    files += glob.glob(str(tmp_path / "rules.db*"))
    assert any(f.endswith("rules.db") for f in map(str, files))
    for f in files:
        if os.path.exists(f):
            data = open(f, "rb").read()
            assert SECRET.encode() not in data, f
            assert SECRET[:16].encode() not in data, f


def run_portico(cfg_path, timeout=15):
    return subprocess.run([PORTICO_BIN, "run", "-c", str(cfg_path)], capture_output=True,
                          text=True, timeout=timeout)


def write_yaml(path, cfg):
    from helpers import yamlgen
    cfg = dict(cfg)
    cfg.setdefault("listen", [{"addr": "127.0.0.1:%d" % free_port()}])
    with open(path, "w") as f:
        f.write(yamlgen.dump(cfg))
    return path


def test_wrong_or_missing_key_is_a_clear_error_at_start(api, tmp_path):
    a, _, p = api
    pid = a.project()["id"]
    a.ok("POST", "/api/proxy-rules/project/%s" % pid,
         {"pathPattern": "/api/*", "targetUrl": "https://api.example.com",
          "headerConfig": {"add": {"X-Api-Key": SECRET}}})
    p.stop()
    _, tf = tokens(tmp_path, [("w2", "write")])
    other = tmp_path / "other.key"
    keygen(other)
    cfg = write_yaml(tmp_path / "wrong.yaml", api_config(tmp_path, free_port(), tf, other))
    r = run_portico(cfg)
    assert r.returncode == 1, r
    assert "does not open" in r.stderr and "rules.db" in r.stderr, r.stderr
    assert SECRET not in r.stderr + r.stdout
    cfg = write_yaml(tmp_path / "missing.yaml",
                     api_config(tmp_path, free_port(), tf, tmp_path / "nokey"))
    r = run_portico(cfg)
    assert r.returncode == 1 and "nokey" in r.stderr, r
    # a store without a key file is a configuration error
    c = api_config(tmp_path, free_port(), tf, other)
    del c["admin"]["key_file"]
    cfg = write_yaml(tmp_path / "nokeyfile.yaml", c)
    r = subprocess.run([PORTICO_BIN, "check", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0 and "key_file" in r.stderr + r.stdout, r


def test_rotate_key_defaults_to_the_configuration(api, tmp_path):
    a, _, p = api
    pid = a.project()["id"]
    a.ok("POST", "/api/proxy-rules/project/%s" % pid,
         {"pathPattern": "/api/*", "targetUrl": "https://api.example.com",
          "headerConfig": {"add": {"X-Api-Key": SECRET}}})
    p.stop()
    new = tmp_path / "new.key"
    keygen(new)
    r = subprocess.run([PORTICO_BIN, "rotate-key", "-c", p.config_path, "--new-key", str(new)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r
    _, tf = tokens(tmp_path, [("w3", "write")])
    old_cfg = write_yaml(tmp_path / "old.yaml",
                         api_config(tmp_path, free_port(), tf, tmp_path / "key"))
    r = run_portico(old_cfg)
    assert r.returncode == 1 and "does not open" in r.stderr, r


def test_a_hostname_of_the_configuration_file_is_refused(portico, tmp_path):
    (writer,), tf = tokens(tmp_path, [("writer", "write")])
    key = tmp_path / "key"
    keygen(key)
    aport = free_port()
    cfg = api_config(tmp_path, aport, tf, key)
    del cfg["routes"]
    cfg["sites"] = [{"hosts": ["yaml.test"],
                     "routes": [{"match": "/*", "respond": {"status": 200, "body": "x"}}]}]
    portico(cfg)
    a = Api(aport, writer)
    wait_until(a.is_live, 10, what="admin listener")
    st, _, doc, _ = a.call("POST", "/api/projects",
                           {"name": "shop", "hostnames": ["free.test", "YAML.test"]})
    assert st == 400, doc
    assert doc["errors"] == [{"field": "hostnames", "message": "hostnames[1]: YAML.test is served "
                              "by a site of the configuration file, which keeps it"}]
    pid = a.ok("POST", "/api/projects", {"name": "shop", "hostnames": ["free.test"]})["id"]
    st, _, doc, _ = a.call("POST", "/api/projects/%s/aliases" % pid,
                           {"name": "staging", "hostnames": ["yaml.test"]})
    assert st == 400 and doc["errors"][0]["field"] == "hostnames", doc
