#!/usr/bin/env bash
# Cache hits and gzip, side by side: Portico's cache and compression vs nginx's proxy_cache and
# gzip, both in front of the same nginx backend (conf/backend-cache.conf.in: every response says
# `Cache-Control: max-age=3600`). `make bench-cache` runs this. See bench/README.md ("Cache hits
# and compression") for the method.
#
# Scenarios (BENCH_CACHE_SCENARIOS picks some, in any order):
#   hit-small        a 13-byte body from the cache: Portico `cache: {}`, nginx `proxy_cache`
#   hit-64k          the same with a 65,536-byte body
#   gzip-64k         65,536 bytes of JSON (made once per run), gzip level 6 on every response,
#                    no cache: Portico `compress:`, nginx `gzip on` (clients send
#                    Accept-Encoding: gzip)
#   gzip-64k-cached  the same JSON through both cache and compression: Portico keeps the
#                    compressed variant; nginx caches the uncompressed response and gzips it on
#                    every hit
# Both proxies get the same routes (conf/portico-cache.yaml.in, conf/nginx-cache.conf.in: /hit/,
# /gz/, /gzc/). Per scenario both are started fresh; before any load, curl checks that each
# answers the right body (gunzipped and compared byte for byte where compressed) and that a
# second request is a hit (Portico's `Cache-Status: Portico; hit`, nginx's `X-Cache-Status: HIT`
# from $upstream_cache_status). After a warm-up run each (not recorded), BENCH_ROUNDS rounds of
# wrk (keep-alive) alternate which proxy goes first. Per run: the proxy's CPU (utime+stime ticks
# of its process tree, /proc/PID/stat, delta over the run) divided by the requests wrk
# completed, wrk's requests/s, the bytes per response wrk read, and the requests that reached the
# origin (the backend's stub_status count), which must be 0 in the cached scenarios. Then, with
# BENCH_CALLGRIND=1, each proxy runs under callgrind for N1 and N2 sequential requests of each
# scenario: Ir per request ((Ir(N2) - Ir(N1)) / (N2 - N1)), and the Ir spent in zlib, the cost
# of one compression in gzip-64k, which shows whether a hit compresses in gzip-64k-cached. Prints
# medians per proxy and the ratios Portico/nginx, and writes the table to
# build/bench/cache-latest.txt; raw outputs and samples.tsv go to
# build/bench/cache-YYYYMMDD-HHMMSS/.
#
# Env (defaults): BENCH_ROUNDS (5), BENCH_SECONDS (5), BENCH_CONNS (50), BENCH_THREADS (1),
# BENCH_WARMUP (1 s), BENCH_WORKERS (1: Portico workers and nginx worker_processes),
# BENCH_CACHE_SCENARIOS ("hit-small hit-64k gzip-64k gzip-64k-cached"), BENCH_CALLGRIND (1),
# BENCH_CG_N1 (10), BENCH_CG_N2 (40), BENCH_CG_TIMEOUT (300 s per run), BENCH_PROXY_CPUS /
# BENCH_BACKEND_CPUS / BENCH_WRK_CPUS (see bench_cpu_layout), PORTICO_BIN (build/portico; when
# missing a second nginx, labelled nginx-standin, takes its slot), NGINX_BIN (nginx),
# BENCH_KEEP_TMP (0).
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-50}
THREADS=${BENCH_THREADS:-1}
WARMUP=${BENCH_WARMUP:-1}
WORKERS=${BENCH_WORKERS:-1}
SCENARIOS=${BENCH_CACHE_SCENARIOS:-hit-small hit-64k gzip-64k gzip-64k-cached}
CALLGRIND=${BENCH_CALLGRIND:-1}
CG_N1=${BENCH_CG_N1:-10}
CG_N2=${BENCH_CG_N2:-40}
CG_TIMEOUT=${BENCH_CG_TIMEOUT:-300}
CLK_TCK=$(getconf CLK_TCK)

for tool in wrk "$NGINX_BIN" taskset curl gzip cmp "$PYTHON"; do
    command -v "$tool" >/dev/null || bench_die "$tool is not installed (make deps-test)"
done
if [ "$CALLGRIND" != 0 ]; then
    for tool in valgrind callgrind_annotate; do
        command -v "$tool" >/dev/null || bench_die "$tool is not installed (or BENCH_CALLGRIND=0)"
    done
fi
for v in ROUNDS SECS CONNS THREADS WARMUP WORKERS CG_N1 CG_N2 CG_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, not '${!v}'"
done
[ "$CG_N2" -gt "$CG_N1" ] || bench_die "BENCH_CG_N2 must be greater than BENCH_CG_N1"
bench_init
bench_cpu_layout
bench_pick_portico
RUN_DIR=$BENCH_OUT/cache-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR"
SAMPLES=$RUN_DIR/samples.tsv
printf 'scenario\tproxy\tround\trequests\treq_per_s\tcpu_ticks\twall_s\torigin_requests' \
    >"$SAMPLES"
printf '\tbytes_per_response\thwm_kb\n' >>"$SAMPLES"
bench_log "results go to $RUN_DIR"
bench_log "cpus: proxy $PROXY_CPUS, backend $BACKEND_CPUS ($BACKEND_WORKERS workers), wrk $WRK_CPUS"

# The 64 KiB JSON: an array of made-up user records (names, addresses, tags, numbers, dates) from
# a fixed seed, the last record padded so the file is exactly 65,536 bytes. Compresses like a
# real API response (gzip -6 to about a fifth).
WWW=$BENCH_TMP/backend/www
mkdir -p "$WWW"
"$PYTHON" - "$WWW/data.json" <<'EOF' || bench_die "cannot make the JSON body"
import json
import random
import sys

SIZE = 65536
rnd = random.Random(12)
first = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia",
         "Dennis", "Margaret", "John", "Sophie", "Leslie", "Tim", "Katherine"]
last = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
        "Perlman", "Ritchie", "Hamilton", "Backus", "Wilson", "Lamport", "Berners-Lee"]
cities = ["Lisbon", "Oslo", "Nairobi", "Osaka", "Lyon", "Quito", "Tartu", "Perth", "Bergen"]
tags = ["admin", "beta", "billing", "eu", "us", "trial", "vip", "support", "api", "mobile"]


def record(i):
    f, l = rnd.choice(first), rnd.choice(last)
    return {
        "id": 100000 + i,
        "name": f"{f} {l}",
        "email": f"{f.lower()}.{l.lower()}{rnd.randint(1, 999)}@example.com",
        "active": rnd.random() < 0.8,
        "score": round(rnd.uniform(0, 100), 2),
        "created": f"2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T"
                   f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:00Z",
        "address": {"street": f"{rnd.randint(1, 400)} {rnd.choice(last)} Street",
                    "city": rnd.choice(cities), "zip": f"{rnd.randint(10000, 99999)}"},
        "tags": rnd.sample(tags, rnd.randint(1, 4)),
    }


def dump(recs):
    return json.dumps({"users": recs, "next": None}, indent=1).encode() + b"\n"


recs = []
while len(dump(recs + [record(len(recs))])) + 64 <= SIZE:
    recs.append(record(len(recs)))
recs[-1]["note"] = ""
recs[-1]["note"] = "x" * (SIZE - len(dump(recs)))
out = dump(recs)
assert len(out) == SIZE, len(out)
json.loads(out)
open(sys.argv[1], "wb").write(out)
EOF
chmod 644 "$WWW/data.json"
BENCH_BACKEND_CONF=backend-cache.conf.in bench_start_backend "$BACKEND_CPUS" "$BACKEND_WORKERS"

# SCENARIO: "PATH FILE ENCODING CACHED": FILE is the backend's file the body must equal (after
# gunzip where ENCODING is gzip; "-": no Accept-Encoding sent); CACHED 1 when responses must be
# hits.
scenario_info() {
    case $1 in
    hit-small) echo "/hit/small small.txt - 1" ;;
    hit-64k) echo "/hit/64k.bin 64k.bin - 1" ;;
    gzip-64k) echo "/gz/data.json data.json gzip 0" ;;
    gzip-64k-cached) echo "/gzc/data.json data.json gzip 1" ;;
    *) bench_die "unknown scenario $1 (hit-small, hit-64k, gzip-64k, gzip-64k-cached)" ;;
    esac
}

# origin_requests: the backend's request count (stub_status); each reading counts itself.
origin_requests() {
    curl -s -m 5 "http://127.0.0.1:$BACKEND_PORT/status" | awk 'NR == 3 { print $3 }'
}

# is_hit KIND HEADERS_FILE: whether the response whose head is in the file came from the cache.
is_hit() {
    case $1 in
    portico) grep -qi '^cache-status:.*portico; *hit' "$2" ;;
    *) grep -qi '^x-cache-status: *hit' "$2" ;;
    esac
}

# check_proxy SCENARIO KIND LABEL PORT: two GETs through the proxy. Both must be a 200 whose
# body equals the backend's file (gzip-encoded and equal once gunzipped where the scenario asks
# for gzip); in a cached scenario the second must be a hit. Keeps the heads in the run folder.
check_proxy() {
    local scen=$1 kind=$2 label=$3 port=$4 i code hdr body ae=() plain
    for i in 1 2; do
        hdr="$RUN_DIR/check-$scen-$label-$i.head"
        body="$RUN_DIR/check-body"
        [ "$enc" = gzip ] && ae=(-H "Accept-Encoding: gzip")
        code=$(curl -s -m 10 "${ae[@]}" -D "$hdr" -o "$body" -w '%{http_code}' \
            "http://127.0.0.1:$port$path")
        [ "$code" = 200 ] || bench_die "$label: GET $path answered $code:
$(cat "$hdr")"
        plain=$body
        if [ "$enc" = gzip ]; then
            grep -qi '^content-encoding: *gzip' "$hdr" ||
                bench_die "$label: GET $path with Accept-Encoding: gzip is not gzip-encoded:
$(cat "$hdr")"
            plain=$body.plain
            gzip -dc <"$body" >"$plain" || bench_die "$label: GET $path: the body is not gzip"
        fi
        cmp -s "$plain" "$WWW/$file" ||
            bench_die "$label: GET $path answered a body that differs from $WWW/$file"
        rm -f "$body" "$body.plain"
    done
    if [ "$cached" = 1 ] && ! is_hit "$kind" "$hdr"; then
        bench_die "$label: a second GET $path is not a cache hit; its head:
$(cat "$hdr")"
    fi
    bench_log "$scen $label: $(sed 's/\r$//' "$hdr" |
        grep -iE '^(cache-status|x-cache-status|content-encoding|content-length|vary|age):' |
        paste -sd';' -)"
}

# wrk_bytes OUT: bytes wrk read in the run (its "N requests in Ts, X.YZMB read" line; wrk's
# units are powers of 1024).
wrk_bytes() {
    sed -n 's/.* requests in [^,]*, \([0-9.]*\)\([KMGT]*\)B read.*/\1 \2/p' "$1" |
        awk '{ m = 1; if ($2 == "K") m = 1024; if ($2 == "M") m = 1048576
               if ($2 == "G") m = 1073741824; if ($2 == "T") m = 1099511627776
               printf "%.0f", $1 * m }'
}

# run_wrk SCENARIO LABEL PID PORT ROUND: one wrk run; appends a line to $SAMPLES unless ROUND is
# "warmup". Fails loudly on any non-2xx/3xx response.
run_wrk() {
    local scen=$1 label=$2 pid=$3 port=$4 round=$5 secs=$SECS out o0 o1 ae=() origin bytes
    [ "$round" = warmup ] && secs=$WARMUP
    [ "$enc" = gzip ] && ae=(-H "Accept-Encoding: gzip")
    out="$RUN_DIR/wrk-$scen-$label-$round.txt"
    o0=$(origin_requests)
    bench_wrk "$pid" "$out" "$label ($scen)" "$secs" "${ae[@]}" "http://127.0.0.1:$port$path"
    o1=$(origin_requests)
    if [ -z "$o0" ] || [ -z "$o1" ]; then bench_die "cannot read the backend's request count"; fi
    origin=$((o1 - o0 - 1))
    bytes=$(awk -v b="$(wrk_bytes "$out")" -v n="$BENCH_REQUESTS" 'BEGIN { printf "%.0f", b / n }')
    bench_log "$scen $label $round: $(printf '%.0f req/s' "$BENCH_RPS"), cpu $BENCH_TICKS ticks," \
        "$bytes bytes/response, $origin requests reached the origin"
    if [ "$cached" = 1 ] && [ "$origin" != 0 ]; then
        bench_log "WARNING: $label ($scen): $origin of $BENCH_REQUESTS requests reached the" \
            "origin (a cached scenario: expected none)"
    fi
    [ "$round" = warmup ] && return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$label" "$round" \
        "$BENCH_REQUESTS" "$BENCH_RPS" "$BENCH_TICKS" "$BENCH_WALL" "$origin" "$bytes" \
        "$(bench_status_kb VmHWM "$pid")" >>"$SAMPLES"
}

run_scenario() { run_wrk "$scen" "$@"; } # LABEL PID PORT ROUND, for bench_rounds

for scen in $SCENARIOS; do
    read -r path file enc cached <<<"$(scenario_info "$scen")"
    BENCH_PROXY_MODE=cache bench_start_proxy "$A_KIND" "$A_LABEL-$scen" "$PROXY_CPUS" "$WORKERS"
    a_pid=$PROXY_PID a_port=$PROXY_PORT
    BENCH_PROXY_MODE=cache bench_start_proxy nginx "nginx-$scen" "$PROXY_CPUS" "$WORKERS"
    b_pid=$PROXY_PID b_port=$PROXY_PORT
    bench_log "scenario $scen: $A_LABEL pid $a_pid port $a_port; nginx pid $b_pid port $b_port"
    check_proxy "$scen" "$A_KIND" "$A_LABEL" "$a_port"
    check_proxy "$scen" nginx nginx "$b_port"
    bench_rounds run_scenario "$ROUNDS" "$A_LABEL" "$a_pid" "$a_port" nginx "$b_pid" "$b_port"
    bench_stop_proxy "$a_pid"
    bench_stop_proxy "$b_pid"
done

# zlib_ir FILE: the Ir of the functions in zlib (the libz shared object, or functions named like
# zlib's deflate internals where zlib is linked in statically), from callgrind_annotate's list of
# self costs.
zlib_ir() {
    callgrind_annotate --inclusive=no --threshold=100 --auto=no "$1" 2>/dev/null |
        awk '!/^ *[0-9,]+ \( *[0-9.]+%\)  / { next }
             /\[[^]]*libz\.so[^]]*\]$/ ||
             /:(deflate[A-Za-z_0-9]*|longest_match|fill_window|_tr_[a-z_]+|compress_block) / ||
             /:crc32[a-z_0-9]* / {
                 v = $1; gsub(",", "", v); t += v } END { printf "%.0f\n", t }'
}

# cg_run SCENARIO KIND LABEL N: the proxy under callgrind, N sequential keep-alive GETs of
# SCENARIO's path (in gzip-*, with Accept-Encoding: gzip, and every response must be gzip-coded;
# in the cached scenarios the first is a miss, the others hits); appends
# "SCENARIO LABEL N Ir zlib_Ir" to $CG_TSV.
cg_run() {
    local scen=$1 kind=$2 label=$3 n=$4 name dir pid f ir zir=0 path file enc cached args=()
    read -r path file enc cached <<<"$(scenario_info "$scen")"
    [ "$enc" = gzip ] &&
        args=(--header "Accept-Encoding: gzip" --expect-header "content-encoding:gzip")
    name="cg-$scen-$label-$n"
    dir="$BENCH_TMP/$name"
    mkdir -p "$dir"
    BENCH_PROXY_MODE=cache bench_start_proxy "$kind" "$name" "$PROXY_CPUS" 1 \
        valgrind --tool=callgrind --trace-children=no --dump-instr=no \
        "--callgrind-out-file=$dir/callgrind.out.%p" --log-file="$dir/valgrind.log"
    pid=$PROXY_PID
    timeout --foreground "$CG_TIMEOUT" "$PYTHON" "$BENCH_LIB_DIR/client.py" \
        --port "$PROXY_PORT" --count "$n" --path "$path" --length -1 "${args[@]}" ||
        bench_die "$label under callgrind: the client failed (see $dir)"
    BENCH_STOP_WAIT=60 bench_stop_proxy "$pid"
    ir=$(bench_cg_total "$dir") || bench_die "$label: no callgrind totals in $dir (valgrind.log:
$(tail -5 "$dir/valgrind.log"))"
    for f in "$dir"/callgrind.out.*; do
        zir=$((zir + $(zlib_ir "$f")))
        cp "$f" "$RUN_DIR/callgrind-$scen-$label-$n.out"
    done
    bench_log "callgrind $scen $label N=$n: Ir $ir, in zlib $zir"
    printf '%s\t%s\t%s\t%s\t%s\n' "$scen" "$label" "$n" "$ir" "$zir" >>"$CG_TSV"
}

CG_TSV=$RUN_DIR/callgrind.tsv
: >"$CG_TSV"
if [ "$CALLGRIND" != 0 ]; then
    for scen in $SCENARIOS; do
        for n in "$CG_N1" "$CG_N2"; do
            cg_run "$scen" "$A_KIND" "$A_LABEL" "$n"
            cg_run "$scen" nginx nginx "$n"
        done
    done
fi
bench_stop_proxy "$BACKEND_PID"

a_version=$A_LABEL
[ "$A_KIND" = portico ] && a_version=$("$PORTICO_BIN" version 2>&1 | head -1)
{
    echo "Cache hits and gzip, $A_LABEL vs nginx proxy_cache and gzip (bench/cache.sh)"
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ); $(nproc) cpus ($(sed -n 's/^model name[^:]*: //p' \
        /proc/cpuinfo | head -1)); proxy on cpu $PROXY_CPUS, backend on $BACKEND_CPUS, wrk on" \
        "$WRK_CPUS"
    echo "$A_LABEL: $a_version; nginx: $("$NGINX_BIN" -v 2>&1 | sed 's/.*version: //');" \
        "workers/worker_processes $WORKERS; zlib $(
            "$PYTHON" -c 'import zlib; print(zlib.ZLIB_RUNTIME_VERSION)' 2>/dev/null)"
    echo "client: wrk -t$THREADS -c$CONNS -d${SECS}s (keep-alive), $ROUNDS rounds after a" \
        "${WARMUP}s warm-up each; gzip-* send Accept-Encoding: gzip"
    "$PYTHON" - "$SAMPLES" "$CG_TSV" "$A_LABEL" "$CLK_TCK" "$CG_N1" "$CG_N2" <<'EOF'
import statistics
import sys

samples, cg_tsv, a, clk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
n1, n2 = int(sys.argv[5]), int(sys.argv[6])
rows = [ln.rstrip("\n").split("\t") for ln in open(samples, encoding="utf-8")][1:]
order = []
data = {}
for scen, proxy, _rnd, reqs, rps, ticks, wall, origin, nbytes, hwm in rows:
    if scen not in order:
        order.append(scen)
    d = data.setdefault((scen, proxy), {"cpu": [], "rps": [], "use": [], "origin": 0,
                                        "bytes": [], "hwm": 0, "reqs": 0})
    d["cpu"].append(int(ticks) * 1e6 / clk / int(reqs))
    d["rps"].append(float(rps))
    d["use"].append(100.0 * int(ticks) / clk / float(wall))
    d["origin"] += int(origin)
    d["reqs"] += int(reqs)
    d["bytes"].append(int(nbytes))
    d["hwm"] = max(d["hwm"], int(hwm))
med = statistics.median


def ratio(x, y):
    return f"{x / y:.2f}" if y else "-"


print(f"CPU per request: utime+stime of the proxy's processes over the run / requests "
      f"(tick = {1e6 / clk:.0f} us), medians over the rounds; ratio = {a}/nginx")
print()
print(f"{'':16} {'CPU us/request':^25} | {'requests/s':^27} | {'CPU use':^15} | "
      f"{'bytes/resp':^15} | origin requests")
print(f"{'scenario':16} {a[:7]:>8} {'nginx':>8} {'ratio':>7} | {a[:7]:>9} {'nginx':>9} "
      f"{'ratio':>7} | {a[:7]:>7} {'nginx':>7} | {a[:7]:>7} {'nginx':>7} | {a[:7]} / nginx")
verdicts = []
for s in order:
    x, y = data.get((s, a)), data.get((s, "nginx"))
    if not x or not y:
        continue
    cx, cy = med(x["cpu"]), med(y["cpu"])
    rx, ry = med(x["rps"]), med(y["rps"])
    print(f"{s:16} {cx:8.2f} {cy:8.2f} {ratio(cx, cy):>7} | {rx:9.0f} {ry:9.0f} "
          f"{ratio(rx, ry):>7} | {med(x['use']):6.0f}% {med(y['use']):6.0f}% | "
          f"{med(x['bytes']):7.0f} {med(y['bytes']):7.0f} | {x['origin']} of {x['reqs']} / "
          f"{y['origin']} of {y['reqs']}")
    if s.startswith("hit-"):
        r = cx / cy if cy else float("inf")
        ok = "met" if r <= 0.7 else "NOT met"
        verdicts.append(f"{s}: {ok} ({r:.2f})")
print()
for s in order:
    x, y = data.get((s, a)), data.get((s, "nginx"))
    if not x or not y:
        continue
    fmt = " ".join
    print(f"{s}: CPU us/request per round {a} {fmt(f'{v:.2f}' for v in x['cpu'])}; "
          f"nginx {fmt(f'{v:.2f}' for v in y['cpu'])}; peak RSS {x['hwm']} / {y['hwm']} kB")
if verdicts:
    print("issue 12, a cache hit costs at most 0.7 x nginx's proxy_cache hit in proxy CPU per "
          "request: " + "; ".join(verdicts))
cg = {}
for ln in open(cg_tsv, encoding="utf-8"):
    s, p, n, ir, zir = ln.split("\t")
    cg.setdefault(s, {}).setdefault(p, {})[int(n)] = (int(ir), int(zir))
what = {"gzip-64k": "per compressed response", "gzip-64k-cached": "per hit (the first a miss)",
        "hit-small": "per hit (the first a miss)", "hit-64k": "per hit (the first a miss)"}
if cg:
    print()
    print(f"Under callgrind: N1 = {n1} and N2 = {n2} sequential keep-alive GETs (gzip-*: with "
          f"Accept-Encoding: gzip), one worker; per request = (Ir(N2) - Ir(N1)) / (N2 - N1); "
          f"zlib = the functions of libz")
for s, runs in cg.items():
    print(f"  {s}, {what.get(s, '')}:")
    pers = {}
    for p, r in runs.items():
        if n1 not in r or n2 not in r:
            continue
        pers[p] = per = (r[n2][0] - r[n1][0]) / (n2 - n1)
        zper = (r[n2][1] - r[n1][1]) / (n2 - n1)
        print(f"    {p:14} Ir {per:12,.0f}   in zlib {zper:12,.0f}   "
              f"(zlib Ir of the two runs: {r[n1][1]:,} and {r[n2][1]:,})")
    if a in pers and pers.get("nginx"):
        print(f"    {'ratio':14} Ir {pers[a] / pers['nginx']:12.2f}")
r = cg.get("gzip-64k-cached", {}).get(a, {})
if n1 in r and n2 in r:
    zper = (r[n2][1] - r[n1][1]) / (n2 - n1)
    print("issue 12, serving a stored compressed variant costs no compression CPU: "
          + ("met" if zper == 0 else "NOT met") + f" ({zper:,.0f} zlib Ir per hit)")
EOF
} >"$RUN_DIR/report.txt" || bench_die "report failed"
cp "$RUN_DIR/report.txt" "$BENCH_OUT/cache-latest.txt"
echo
cat "$RUN_DIR/report.txt"
bench_log "table: $BENCH_OUT/cache-latest.txt; raw data: $RUN_DIR"
