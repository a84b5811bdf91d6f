"""The admin dashboard (docs/config.md, "Admin API") in a real browser: Debian's chromium in
headless mode, driven by python3-selenium through chromium-driver (scripts/deps.sh --test).

One Portico with a rules store, a proxied upstream and two tokens; the test creates a project,
an alias and rules through the API, opens the dashboard, types the token in, and checks what the
page shows and that what it does reaches the API: the rules in order, a drag and drop reorder,
enable/disable, a field error from the API's 400, the traffic panel after requests, a target's
health, the recent changes, a read token's 403, and that no token is left in localStorage,
sessionStorage or cookies.

Drag and drop: ActionChains.drag_and_drop, through chromium-driver 156 in headless mode, fires
the HTML5 drag events (dragstart, dragover, drop) that the page listens to. Where a driver does
not (older ones only moved the mouse), the test says so and dispatches those events itself with
a DataTransfer from execute_script; the page's own handlers do the reorder either way.

The test is skipped, with the reason, only where chromium or its driver cannot start.
"""

import http.client
import json
import os
import shutil
import threading
import time

import pytest

from helpers import admin as A
from helpers import backends as B
from helpers.client import get
from helpers.common import scaled, wait_until
from helpers.portico import PORTICO_BIN  # noqa: F401  (the binary under test)

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:  # the skip below says why
    webdriver = None
    IMPORT_ERROR = str(e)

from test_rules_api import Api, keygen

DRAG_JS = """
const [src, dst] = arguments;
const dt = new DataTransfer();
const fire = (el, type) => el.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true,
                                                                  dataTransfer: dt}));
fire(src, 'dragstart'); fire(dst, 'dragenter'); fire(dst, 'dragover'); fire(dst, 'drop');
fire(src, 'dragend');
"""


def start_browser(tmp_path):
    """A headless chromium session, or pytest.skip with the reason when it cannot start."""
    if webdriver is None:
        pytest.skip("python3-selenium is not installed (scripts/deps.sh --test): " + IMPORT_ERROR)
    driver_bin = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    opts = webdriver.ChromeOptions()
    for b in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if b and os.access(b, os.X_OK):
            opts.binary_location = b
            break
    opts.add_argument("--headless=new")
    opts.add_argument("--disable-gpu")
    opts.add_argument("--disable-dev-shm-usage")
    opts.add_argument("--user-data-dir=%s" % (tmp_path / "chromium-profile"))
    opts.add_argument("--window-size=1280,1400")
    if os.geteuid() == 0:
        opts.add_argument("--no-sandbox")
    try:
        return webdriver.Chrome(service=Service(executable_path=driver_bin), options=opts)
    except (WebDriverException, OSError) as e:
        reason = "chromium cannot start: %s" % str(e).strip().splitlines()[0]
        print(reason)
        pytest.skip(reason)


def raw_get(port, path, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def test_dashboard_in_chromium(portico, backend, tmp_path):
    (reader, writer), tokens_file = A.tokens(tmp_path, [("viewer", "read"), ("editor", "write")])
    key = tmp_path / "key"
    keygen(key)
    b = backend(B.echo())

    def cfg(port):
        return {
            "listen": [{"addr": "127.0.0.1:%d" % port}],
            "admin": {"listen": "127.0.0.1:%d" % A.admin_port(port), "tokens_file": tokens_file,
                      "audit_log": str(tmp_path / "audit.log"),
                      "store": str(tmp_path / "rules.db"), "key_file": str(key)},
            "upstreams": {"app": {"targets": [{"url": b.url}]}},
            "sites": [{"hosts": ["d.test"],
                       "routes": [{"match": "/api/*", "proxy": {"to": "app"}}]}],
        }

    p = portico(cfg)
    aport = A.admin_port(p.port)
    api = Api(aport, writer)
    assert wait_until(api.is_live, scaled(10), 0.05)

    # The page and its files are public and locked down; the data is not.
    st, h, page = raw_get(aport, "/dashboard")
    assert st == 200 and h["content-type"].startswith("text/html"), (st, h)
    csp = h["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp
    assert h["x-frame-options"] == "DENY" and h["cache-control"] == "no-store"
    assert b"<script>" not in page and b'src="/dashboard.js"' in page
    assert raw_get(aport, "/")[2] == page
    st, h, js = raw_get(aport, "/dashboard.js")
    assert st == 200 and h["content-type"].startswith("text/javascript") and b"Bearer" in js
    assert raw_get(aport, "/dashboard.css")[0] == 200
    assert raw_get(aport, "/api/changes")[0] == 401
    assert raw_get(aport, "/api/changes?limit=0", writer)[0] == 400

    pid = api.project("shop", ["shop.test"])["id"]
    made = [api.ok("POST", "/api/proxy-rules/project/%s" % pid,
                   {"pathPattern": pat, "targetUrl": "https://%s.example.com" % name,
                    "description": name})
            for pat, name in [("/api/*", "api"), ("*.json", "data"), ("/graphql", "gql")]]
    ids = [r["id"] for r in made]
    alias = api.ok("POST", "/api/projects/%s/aliases" % pid,
                   {"name": "staging", "hostnames": ["staging.shop.test"]})
    api.ok("POST", "/api/proxy-rules/alias/%s" % alias["id"],
           {"pathPattern": "/api/*", "targetUrl": "https://staging-api.example.com"})

    def rules():
        return api.ok("GET", "/api/proxy-rules/project/%s" % pid)["rules"]

    def rule(rid):
        return api.ok("GET", "/api/proxy-rules/%s" % rid)

    driver = start_browser(tmp_path)
    stop = threading.Event()
    try:
        # the lists are rebuilt after each change: an element found a moment ago may be gone
        wait = WebDriverWait(driver, scaled(10), poll_frequency=0.1,
                             ignored_exceptions=[StaleElementReferenceException])
        driver.get("http://127.0.0.1:%d/dashboard" % aport)

        def connect(token):
            box = driver.find_element(By.ID, "token")
            box.clear()
            box.send_keys(token)
            driver.find_element(By.ID, "connect").click()
            wait.until(lambda d: d.find_element(By.ID, "main").is_displayed())

        connect(writer)
        proj_list = '#projects ul[data-kind="project"][data-id="%s"]' % pid

        def shown():
            return [li.get_attribute("data-id")
                    for li in driver.find_elements(By.CSS_SELECTOR, proj_list + " li.rule")]

        wait.until(lambda d: shown() == ids)
        pats = [e.text for e in driver.find_elements(By.CSS_SELECTOR, proj_list + " .pattern")]
        assert pats == ["/api/*", "*.json", "/graphql"]
        wait.until(lambda d: len(d.find_elements(
            By.CSS_SELECTOR, '#projects ul[data-kind="alias"] li.rule')) == 1)

        # Drag "/graphql" above "/api/*": the page sends the whole list to .../reorder.
        def item(rid):
            return driver.find_element(By.CSS_SELECTOR, proj_list + ' li[data-id="%s"]' % rid)

        ActionChains(driver).drag_and_drop(item(ids[2]), item(ids[0])).perform()
        want = [ids[2], ids[0], ids[1]]
        if not wait_until(lambda: [r["id"] for r in rules()] == want, scaled(3), 0.1):
            print("ActionChains fired no HTML5 drag events: dispatching them with execute_script")
            driver.execute_script(DRAG_JS, item(ids[2]), item(ids[0]))
            assert wait_until(lambda: [r["id"] for r in rules()] == want, scaled(10), 0.1)
        # the page's status line changes once the list is read back
        wait.until(lambda d: "reordered" in d.find_element(By.ID, "status").text)
        assert shown() == want

        # Disable "*.json" with its checkbox (PATCH isEnabled with If-Match).
        item(ids[1]).find_element(By.CSS_SELECTOR, "input.toggle").click()
        assert wait_until(lambda: not rule(ids[1])["isEnabled"], scaled(10), 0.1)
        wait.until(lambda d: d.find_element(By.ID, "status").text == "disabled *.json")
        assert "disabled" in item(ids[1]).get_attribute("class")
        item(ids[1]).find_element(By.CSS_SELECTOR, "input.toggle").click()
        assert wait_until(lambda: rule(ids[1])["isEnabled"], scaled(10), 0.1)

        # Edit "/api/*" with a timeout over the limit: the API's 400 shows next to the field.
        wait.until(lambda d: d.find_element(By.ID, "status").text == "enabled *.json")
        assert "disabled" not in item(ids[1]).get_attribute("class")
        item(ids[0]).find_element(By.CSS_SELECTOR, "button.edit").click()
        form = driver.find_element(By.ID, "edit-form")
        wait.until(lambda d: form.is_displayed())
        tbox = form.find_element(By.NAME, "timeout")
        tbox.clear()
        tbox.send_keys("99999")
        desc = form.find_element(By.NAME, "description")
        desc.clear()
        desc.send_keys("edited")
        driver.find_element(By.ID, "edit-save").click()
        err = form.find_element(By.CSS_SELECTOR, '.field-error[data-field="timeout"]')
        wait.until(lambda d: err.text.strip() != "")
        assert "60000" in err.text or "timeout" in err.text.lower(), err.text
        one = rule(ids[0])
        assert one["timeout"] == 30000 and one["description"] == "api"
        # a valid one is saved and the dialog closes
        tbox.clear()
        tbox.send_keys("5000")
        driver.find_element(By.ID, "edit-save").click()
        assert wait_until(lambda: rule(ids[0])["timeout"] == 5000, scaled(10), 0.1)
        wait.until(lambda d: d.find_element(By.ID, "status").text == "saved /api/*")
        assert not form.is_displayed()
        assert rule(ids[0])["description"] == "edited"

        # Traffic: the rate and latency panel moves, the target shows its health.
        def traffic():
            while not stop.is_set():
                try:
                    get(p.port, "/api/x", headers={"Host": "d.test"})
                except OSError:
                    pass
                time.sleep(0.01)

        t = threading.Thread(target=traffic, daemon=True)
        t.start()

        def rate(d):
            try:
                return float(d.find_element(By.ID, "rate").text) > 0
            except ValueError:
                return False

        wait.until(rate)
        wait.until(lambda d: d.find_element(By.ID, "p50").text.endswith("s"))
        assert driver.find_element(By.ID, "p99").text.endswith("s")
        assert int(driver.find_element(By.ID, "total").text) > 0
        stop.set()
        t.join()
        row = '#targets tr[data-target="%s"] .state' % b.url
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, row)
                   and d.find_element(By.CSS_SELECTOR, row).text == "up")

        # Recent changes: the reorder and the edits, newest first, by the token's name.
        def changes():
            return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#changes li.change")]

        cs = wait.until(lambda d: (lambda c: c if any("/reorder" in x for x in c) else None)(
            changes()))
        assert "PATCH /api/proxy-rules/%s" % ids[0] in cs[0]
        assert all("editor" in c for c in cs)
        got = api.ok("GET", "/api/changes?limit=2")["changes"]
        assert len(got) == 2 and got[0]["path"] == "/api/proxy-rules/%s" % ids[0]

        # The token is nowhere but in the script's memory.
        stored = driver.execute_script(
            "return JSON.stringify([Object.assign({}, localStorage),"
            " Object.assign({}, sessionStorage), document.cookie, location.href])")
        assert writer not in stored and stored.startswith("[{},{},\"\","), stored
        assert writer not in driver.page_source
        assert driver.find_element(By.ID, "token").get_attribute("value") == ""

        # A read token sees everything but its changes are refused with the API's 403.
        driver.find_element(By.ID, "disconnect").click()
        connect(reader)
        wait.until(lambda d: shown() == want)
        item(ids[2]).find_element(By.CSS_SELECTOR, "input.toggle").click()
        wait.until(lambda d: "(403)" in d.find_element(By.ID, "status").text)
        assert "read scope" in driver.find_element(By.ID, "status").text
        assert rule(ids[2])["isEnabled"] is True
    finally:
        stop.set()
        driver.quit()
