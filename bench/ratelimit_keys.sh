#!/usr/bin/env bash
# The rate-limit table's memory under a flood of distinct keys (issue 13, "Done when": memory
# stays bounded under 1 million distinct client keys). Portico with a rate_limit keyed by a
# header (`key: ["header:X-Client"]`, 1/m, so every key stays limited for a minute and holds
# its slot) on a fixed 200, and wrk sending BENCH_KEYS requests, each with a new X-Client
# value (a Lua counter per thread). Afterwards: peak and current RSS (VmHWM, VmRSS) against
# the RSS before the flood and the table's own size, and the evictions, both from /metrics
# (portico_rate_limit_table_bytes, portico_rate_limit_evictions_total).
# `make bench-ratelimit-keys` runs it.
#
# Env (defaults): BENCH_KEYS (1000000), BENCH_RL_MAX_KEYS (rate_limits.max_keys, 1000000),
# BENCH_WORKERS (2), PORTICO_BIN (build/portico). Quick mode: BENCH_QUICK=1 sends 100,000 keys.
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

KEYS=${BENCH_KEYS:-1000000}
[ "${BENCH_QUICK:-0}" = 1 ] && KEYS=${BENCH_KEYS:-100000}
MAX_KEYS=${BENCH_RL_MAX_KEYS:-1000000}
WORKERS=${BENCH_WORKERS:-2}
for tool in wrk curl "$PYTHON"; do
    command -v "$tool" >/dev/null || bench_die "$tool is not installed (make deps-test)"
done
[ -x "$PORTICO_BIN" ] || bench_die "no Portico binary at $PORTICO_BIN (make)"
bench_init

pdir=$BENCH_TMP/portico
mkdir -p "$pdir"
PORT=$(bench_free_port)
APORT=$(bench_free_port)
read -r TOKEN TLINE < <("$PORTICO_BIN" token bench --scope read 2>/dev/null | tr '\n' ' ')
echo "$TLINE" >"$pdir/tokens"
cat >"$pdir/portico.yaml" <<YAML
workers: $WORKERS
listen: [{addr: "127.0.0.1:$PORT"}]
log: {level: warn, access: "off"}
admin: {listen: "127.0.0.1:$APORT", tokens_file: "$pdir/tokens"}
rate_limits: {max_keys: $MAX_KEYS}
routes:
  - match: /health
    respond: {status: 200, body: "ok\n"}
  - match: "/*"
    respond: {status: 200, body: "ok\n"}
    rate_limit: {rate: 1/m, burst: 1, key: ["header:X-Client"]}
YAML
"$PORTICO_BIN" run -c "$pdir/portico.yaml" >"$pdir/stdout.log" 2>"$pdir/stderr.log" &
PID=$!
BENCH_PIDS+=("$PID")
bench_wait_http "http://127.0.0.1:$PORT/health" 10 "$PID" || bench_die "portico did not start"
curl -s -o /dev/null -H "X-Client: probe" "http://127.0.0.1:$PORT/k" # makes the table count
metrics() { curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$APORT/metrics"; }
base_kb=$(bench_status_kb VmRSS "$PID")
base_hwm_kb=$(bench_status_kb VmHWM "$PID")

cat >"$pdir/keys.lua" <<'LUA'
local counter, prefix = 0, ""
local id = 0
function setup(thread) id = id + 1; thread:set("tid", id) end
function init(args) prefix = (args[1] or "p") .. "-" .. tid .. "-" end
function request()
    counter = counter + 1
    return wrk.format("GET", "/k", {["X-Client"] = prefix .. counter})
end
LUA
# Runs of about 5 s, each with its own key prefix, until KEYS requests were made.
bench_wrk_until "$KEYS" "$pdir/keys.lua" "http://127.0.0.1:$PORT" 5 0
done_req=$BENCH_WRK_DONE
hwm_kb=$(bench_status_kb VmHWM "$PID")
rss_kb=$(bench_status_kb VmRSS "$PID")
m=$(metrics)
"$PYTHON" - "$done_req" "$base_kb" "$base_hwm_kb" "$hwm_kb" "$rss_kb" "$MAX_KEYS" "$m" <<'PY'
import re, sys
reqs, base, base_hwm, hwm, rss, max_keys, m = sys.argv[1:]
def metric(name):
    g = re.search(r"^%s(?:\{[^}]*\})? (\d+)" % name, m, re.M)
    return int(g.group(1)) if g else None
table = metric("portico_rate_limit_table_bytes")
ev = metric("portico_rate_limit_evictions_total")
refused = metric(r'portico_guard_refusals_total\{guard="rate_limit"\}')
mib = lambda kb: kb / 1024
print("distinct keys sent       %d" % int(reqs))
print("rate_limits.max_keys     %d" % int(max_keys))
print("table (metrics)          %s" % ("%.1f MiB" % (table / (1 << 20)) if table else "?"))
print("evictions (metrics)      %s" % ev)
print("refusals (metrics)       %s (each key's first request is within its burst)" % refused)
print("RSS before / peak before %.1f / %.1f MiB" % (mib(int(base)), mib(int(base_hwm))))
print("RSS after / peak after   %.1f / %.1f MiB" % (mib(int(rss)), mib(int(hwm))))
grow = (int(hwm) - int(base_hwm)) * 1024
print("peak growth              %.1f MiB during the flood (the table was made before it: %s)" %
      (grow / (1 << 20), "bounded" if table is not None and grow <= table + (8 << 20) else "CHECK"))
PY
