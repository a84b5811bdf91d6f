"""kill -9 at any moment leaves a consistent rules database (issue 11, section 3): Portico is
killed with SIGKILL while API writers create, reorder, patch and delete rules, then started
again on the same store; the database passes SQLite's integrity and foreign-key checks, every
project's rule orders are 0..n-1, every rule the API acknowledged before the kill is there, and
the API works on it."""

import os
import random
import signal
import sqlite3
import threading
import time

from helpers.admin import tokens
from helpers.common import free_port, scaled, wait_until
from test_rules_api import Api, api_config, keygen


def writer(a, pid, stop, acked, seed):
    rnd = random.Random(seed)
    while not stop.is_set():
        try:
            st, _, doc, _ = a.call("POST", "/api/proxy-rules/project/%s" % pid, {
                "pathPattern": "/w%d-%d/*" % (seed, rnd.randrange(1 << 30)),
                "targetUrl": "https://backend.example.com",
                "headerConfig": {"add": {"X-Key": "v%d" % rnd.randrange(1000)}}})
            if st == 201:
                acked.append(doc["id"])
            listed = a.call("GET", "/api/proxy-rules/project/%s" % pid)[2]
            if listed and listed["rules"]:
                ids = [r["id"] for r in listed["rules"]]
                rnd.shuffle(ids)
                a.call("PUT", "/api/proxy-rules/project/%s/reorder" % pid, {"ruleIds": ids})
                victim = listed["rules"][rnd.randrange(len(ids))]
                a.call("PATCH", "/api/proxy-rules/%s" % victim["id"],
                       {"description": "d%d" % rnd.randrange(1000)},
                       headers={"If-Match": '"%s"' % victim["updatedAt"]})
        except OSError:
            return  # Portico is gone


def check_db(path):
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        db.close()


def test_kill_9_during_api_writes_leaves_a_consistent_store(portico, tmp_path):
    (writer_token,), tf = tokens(tmp_path, [("writer", "write")])
    key = tmp_path / "key"
    keygen(key)
    aport = free_port()
    cfg = api_config(tmp_path, aport, tf, key)
    a = Api(aport, writer_token)
    p = portico(cfg)
    wait_until(a.is_live, scaled(10), what="admin listener")
    pid = a.ok("POST", "/api/projects", {"name": "shop", "hostnames": ["shop.test"]})["id"]
    acked_all = []
    for rnd in range(4):
        stop, acked = threading.Event(), []
        threads = [threading.Thread(target=writer, args=(a, pid, stop, acked, rnd * 10 + i))
                   for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.3 + 0.2 * rnd)
        os.kill(p.pid, signal.SIGKILL)
        p.wait_exit(scaled(10))
        p.expect_exit = True
        stop.set()
        for t in threads:
            t.join(scaled(20))
        acked_all += acked
        check_db(str(tmp_path / "rules.db"))
        p = portico(cfg)  # the same store, reopened
        wait_until(a.is_live, scaled(10), what="admin listener")
        rules = a.ok("GET", "/api/proxy-rules/project/%s" % pid)["rules"]
        assert [r["order"] for r in rules] == list(range(len(rules)))
        have = {r["id"] for r in rules}
        # nothing deletes here: every rule the API acknowledged survived the kill
        assert set(acked_all) <= have, len(set(acked_all) - have)
        assert all(r["headerConfig"]["add"].get("X-Key") == "********" for r in rules)
    assert len(acked_all) > 10
