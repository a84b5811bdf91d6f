"""Metrics on the admin listener, scraped by Debian's real prometheus server: a PromQL query
through prometheus's HTTP API returns the counts of the traffic this test sent.

The prometheus binary comes from scripts/deps.sh --test; the test is skipped, with the reason,
only where it is not installed. prometheus runs with its own config and a TSDB in tmp_path,
listens on a free 127.0.0.1 port and scrapes Portico's admin listener every second with a read
token (the scrape sends it as a Bearer token).
"""

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from helpers import admin as A
from helpers.client import get
from helpers.common import free_port, scaled

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def metrics_text(p, token):
    return A.call(p, "GET", "/metrics", token=token)


def start_portico(portico, tmp_path, backend_url):
    token, tokens_file = A.tokens(tmp_path, [("scraper", "read")])

    def cfg(port):
        return {
            "listen": [{"addr": "127.0.0.1:%d" % port}],
            "admin": {"listen": "127.0.0.1:%d" % A.admin_port(port),
                      "tokens_file": tokens_file},
            "upstreams": {"app": {"targets": [{"url": backend_url}]}},
            "sites": [{"hosts": ["m.test"],
                       "routes": [{"match": "/api/*", "proxy": {"to": "app"}},
                                  {"match": "/ok", "respond": {"status": 200, "body": "ok\n"}}]}],
        }

    return portico(cfg), token[0]


def test_metrics_page_counts_requests_and_needs_a_token(portico, tmp_path, backend):
    from helpers import backends as B
    b = backend(B.echo())
    p, token = start_portico(portico, tmp_path, b.url)
    for _ in range(7):
        assert get(p.port, "/ok", headers={"Host": "m.test"}).status == 200
    for _ in range(3):
        assert get(p.port, "/api/x", headers={"Host": "m.test"}).status == 200
    assert get(p.port, "/nothing", headers={"Host": "m.test"}).status == 404
    status, hdrs, body = metrics_text(p, token)
    assert status == 200 and hdrs["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert 'portico_requests_total{site="m.test",route="/ok",method="GET",code="2xx"} 7' in text
    assert 'portico_requests_total{site="m.test",route="/api/*",method="GET",code="2xx"} 3' \
        in text
    assert 'portico_upstream_target_state{upstream="app",target="%s",state="up"} 1' % b.url \
        in text
    # no token, a bad token: refused, no counts shown
    status, _, body = A.call(p, "GET", "/metrics", token=None)
    assert status == 401 and b"portico_requests_total" not in body
    status, _, body = A.call(p, "GET", "/metrics", token="not-a-token")
    assert status == 401 and b"portico_requests_total" not in body


@pytest.mark.skipif(not os.access(PROMETHEUS, os.X_OK),
                    reason="prometheus is not installed (scripts/deps.sh --test installs it)")
def test_prometheus_scrapes_portico_and_promql_returns_the_counts(portico, tmp_path, backend):
    from helpers import backends as B
    b = backend(B.echo())
    p, token = start_portico(portico, tmp_path, b.url)
    n_ok, n_api = 11, 5
    for _ in range(n_ok):
        assert get(p.port, "/ok", headers={"Host": "m.test"}).status == 200
    for _ in range(n_api):
        assert get(p.port, "/api/y", headers={"Host": "m.test"}).status == 200

    prom_port = free_port()
    token_file = tmp_path / "scrape.token"
    token_file.write_text(token)
    os.chmod(str(token_file), 0o600)
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: portico\n"
        "    authorization:\n      credentials_file: %s\n"
        "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
        % (token_file, A.admin_port(p.port)))
    log = open(str(tmp_path / "prometheus.log"), "wb")
    prom = subprocess.Popen(
        [PROMETHEUS, "--config.file=%s" % conf, "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
         "--web.listen-address=127.0.0.1:%d" % prom_port, "--log.level=warn"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        def query(q):
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (
                prom_port, urllib.parse.urlencode({"query": q}))
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.loads(r.read())
            assert doc["status"] == "success", doc
            return {json.dumps(x["metric"], sort_keys=True): float(x["value"][1])
                    for x in doc["data"]["result"]}

        want_ok = 'sum(portico_requests_total{site="m.test",route="/ok",code="2xx"})'
        want_api = 'sum(portico_requests_total{site="m.test",route="/api/*",code="2xx"})'
        got = {}
        deadline = time.monotonic() + scaled(60)
        while time.monotonic() < deadline and prom.poll() is None:
            try:
                got = {"ok": list(query(want_ok).values()),
                       "api": list(query(want_api).values())}
                if got["ok"] and got["api"]:
                    break
            except OSError:
                pass  # prometheus still starting
            time.sleep(0.5)
        assert prom.poll() is None, open(str(tmp_path / "prometheus.log")).read()[-3000:]
        assert got.get("ok") == [float(n_ok)] and got.get("api") == [float(n_api)], got
        # the scrape itself is healthy, and the upstream's target is seen up
        up = query('up{job="portico"}')
        assert list(up.values()) == [1.0], up
        state = query('portico_upstream_target_state{upstream="app",state="up"}')
        assert list(state.values()) == [1.0], state
    finally:
        prom.terminate()
        try:
            prom.wait(scaled(20))
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()
