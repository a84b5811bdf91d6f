#!/usr/bin/env bash
# The cache's memory under a flood of distinct keys: Portico with `cache: {memory: CAP}` in front
# of an nginx backend that answers every /k/N with a cacheable 64-byte body, and wrk requesting
# BENCH_KEYS distinct URLs (a Lua counter per thread, so no key repeats). Afterwards it reads
# Portico's peak and current RSS (VmHWM, VmRSS) and the store's own figures (objects, bytes,
# index_bytes, from the admin API), and prints them beside the cap and the documented overhead
# (docs/internals/cache.md): bytes stay within the cap, and RSS within the cap plus the index,
# the allocator's slack and the process's baseline (measured before the flood).
# `make bench-cache-memory` runs it.
#
# Env (defaults): BENCH_KEYS (1000000), BENCH_CACHE_CAP (64m), BENCH_WORKERS (1),
# PORTICO_BIN (build/portico), NGINX_BIN (nginx).
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

KEYS=${BENCH_KEYS:-1000000}
CAP=${BENCH_CACHE_CAP:-64m}
WORKERS=${BENCH_WORKERS:-1}
for tool in wrk "$NGINX_BIN" curl "$PYTHON"; do
    command -v "$tool" >/dev/null || bench_die "$tool is not installed (make deps-test)"
done
[ -x "$PORTICO_BIN" ] || bench_die "no Portico binary at $PORTICO_BIN (make)"
bench_init

# The backend: every /k/... is a 64-byte body fresh for an hour.
bdir=$BENCH_TMP/backend
bench_nginx_prefix "$bdir"
BPORT=$(bench_free_port)
cat >"$bdir/nginx.conf" <<NGINX
daemon off;
master_process on;
worker_processes 1;
pid $bdir/nginx.pid;
error_log $bdir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $bdir/tmp/body;
    proxy_temp_path $bdir/tmp/proxy;
    fastcgi_temp_path $bdir/tmp/fastcgi;
    uwsgi_temp_path $bdir/tmp/uwsgi;
    scgi_temp_path $bdir/tmp/scgi;
    server {
        listen 127.0.0.1:$BPORT backlog=4096;
        location / {
            add_header Cache-Control "max-age=3600";
            return 200 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
        }
    }
}
NGINX
"$NGINX_BIN" -c "$bdir/nginx.conf" -p "$bdir" -e "$bdir/logs/error.log" >/dev/null 2>&1 &
BENCH_PIDS+=("$!")
bench_wait_http "http://127.0.0.1:$BPORT/k/probe" 10 "$!" || bench_die "backend did not start"

# Portico, with an admin listener for the store's figures.
pdir=$BENCH_TMP/portico
mkdir -p "$pdir"
PPORT=$(bench_free_port)
APORT=$(bench_free_port)
read -r TOKEN TLINE < <("$PORTICO_BIN" token bench --scope read 2>/dev/null | tr '\n' ' ')
echo "$TLINE" >"$pdir/tokens"
cat >"$pdir/portico.yaml" <<YAML
workers: $WORKERS
listen: [{addr: "127.0.0.1:$PPORT"}]
log: {level: warn, access: "off"}
admin: {listen: "127.0.0.1:$APORT", tokens_file: "$pdir/tokens"}
cache: {memory: $CAP, status_header: false}
routes:
  - match: "/*"
    proxy: {to: "http://127.0.0.1:$BPORT"}
    cache: true
YAML
"$PORTICO_BIN" run -c "$pdir/portico.yaml" >"$pdir/stdout.log" 2>"$pdir/stderr.log" &
PPID_=$!
BENCH_PIDS+=("$PPID_")
bench_wait_http "http://127.0.0.1:$PPORT/k/probe" 10 "$PPID_" || bench_die "portico did not start"
base_kb=$(bench_status_kb VmRSS "$PPID_")

cat >"$pdir/keys.lua" <<'LUA'
local counter, prefix = 0, ""
local id = 0
function setup(thread) id = id + 1; thread:set("tid", id) end
function init(args) prefix = "/k/" .. (args[1] or "p") .. "/" .. tid .. "/" end
function request()
    counter = counter + 1
    return wrk.format("GET", prefix .. counter)
end
LUA
# wrk runs for a time, not a count: runs of about 10 s (each with its own key prefix, so no key
# repeats) go on until KEYS requests were made.
pout=$(wrk -t2 -c32 -d2s -s "$pdir/keys.lua" "http://127.0.0.1:$PPORT" -- probe)
probe_req=$(awk '/requests in/ { print $1 }' <<<"$pout")
[ -n "$probe_req" ] && [ "$probe_req" -gt 0 ] || bench_die "the probe run made no requests"
bench_wrk_until "$KEYS" "$pdir/keys.lua" "http://127.0.0.1:$PPORT" 10 "$probe_req"
done_req=$BENCH_WRK_DONE
hwm_kb=$(bench_status_kb VmHWM "$PPID_")
rss_kb=$(bench_status_kb VmRSS "$PPID_")
stats=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$APORT/api/cache")
"$PYTHON" - "$CAP" "$done_req" "$base_kb" "$hwm_kb" "$rss_kb" "$stats" <<'PY'
import json, sys
cap_s, reqs, base, hwm, rss, stats = sys.argv[1:]
units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
cap = int(cap_s[:-1]) * units[cap_s[-1].lower()] if cap_s[-1].lower() in units else int(cap_s)
s = json.loads(stats)
reqs = int(reqs)
mib = lambda b: b / (1 << 20)
print("distinct keys requested  %d" % reqs)
print("objects stored           %d" % s["objects"])
print("bytes stored             %.1f MiB (cap %.1f MiB): %s" % (mib(s["bytes"]), mib(cap),
      "within" if s["bytes"] <= cap else "OVER"))
print("index (documented)       %.1f MiB" % mib(s["indexBytes"]))
print("evictions                %d" % s["evictions"])
print("RSS before the flood     %.1f MiB" % (int(base) / 1024))
print("RSS after / peak         %.1f / %.1f MiB" % (int(rss) / 1024, int(hwm) / 1024))
allowed = cap + s["indexBytes"] + 16 * s["objects"] + cap // 8 + int(base) * 1024
print("cap + index + malloc headers + 1/8 slack + baseline = %.1f MiB: peak RSS %s" %
      (mib(allowed), "within" if int(hwm) * 1024 <= allowed else "OVER"))
PY
