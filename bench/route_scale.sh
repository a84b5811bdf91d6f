#!/usr/bin/env bash
# How route matching scales with the number of routes in a site: instructions per request
# (valgrind's callgrind) with a site of 10 routes and one of 1,000 (BENCH_RS_BIG), for a request
# that matches a route near the end and one that matches none (a 404).
#
# The routes: an exact "/health", a placeholder "/users/:id", suffixes "*.json" and "*.css", then
# "/svcK/*" prefixes, then an exact "/last"; every one answers a fixed 200 "ok\n" (respond), so
# no backend or file is involved. "hit" asks for "/svcK/items/42" where K is the last prefix
# route; "miss" asks for "/nothing/here/at/all" (404). As in bench/callgrind.sh each case runs
# twice, with N1 and N2 requests on one keep-alive connection, and
# Ir per request = (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up (parsing 1,000 routes included)
# and shutdown cancel out. Portico runs with workers: 1.
#
# Usage: bench/route_scale.sh [OUT_TSV]     (default build/bench/route_scale.tsv; prints a table)
# Env: BENCH_RS_N1 (100), BENCH_RS_N2 (600), BENCH_RS_SMALL (10), BENCH_RS_BIG (1000),
#      PORTICO_BIN, BENCH_CG_TIMEOUT (300 s per run).
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

N1=${BENCH_RS_N1:-100}
N2=${BENCH_RS_N2:-600}
SMALL=${BENCH_RS_SMALL:-10}
BIG=${BENCH_RS_BIG:-1000}
CG_TIMEOUT=${BENCH_CG_TIMEOUT:-300}
OUT_TSV=${1:-$BENCH_OUT/route_scale.tsv}

command -v valgrind >/dev/null || bench_die "valgrind is not installed"
[ -x "$PORTICO_BIN" ] || bench_die "$PORTICO_BIN is not built (make)"
[ "$N2" -gt "$N1" ] || bench_die "BENCH_RS_N2 must be greater than BENCH_RS_N1"
if [ "$SMALL" -lt 6 ] || [ "$BIG" -le "$SMALL" ]; then
    bench_die "need 6 <= BENCH_RS_SMALL < BENCH_RS_BIG"
fi
bench_init
: >"$OUT_TSV"

rs_route() { # PATTERN: one route answering 200 "ok\n".
    printf '      - {match: "%s", respond: {status: 200, body: "ok\\n"}}\n' "$1"
}

rs_config() { # ROUTES PORT OUT: a one-site configuration with ROUTES routes.
    local n=$1 port=$2 out=$3 k
    {
        echo "workers: 1"
        echo 'log: {level: warn, access: "off"}'
        echo "listen:"
        echo "  - addr: \"127.0.0.1:$port\""
        echo "sites:"
        echo "  - routes:"
        rs_route /health
        rs_route "/users/:id"
        rs_route "*.json"
        rs_route "*.css"
        for ((k = 1; k <= n - 5; k++)); do
            rs_route "/svc$k/*"
        done
        rs_route /last
    } >"$out"
}

rs_run() { # ROUTES CASE N
    local routes=$1 case=$2 n=$3 dir port ir path status len
    dir="$BENCH_TMP/rs-$routes-$case-$n"
    mkdir -p "$dir"
    if [ "$case" = hit ]; then
        path="/svc$((routes - 5))/items/42" status=200 len=3
    else
        path=/nothing/here/at/all status=404 len=-1
    fi
    port=$(bench_free_port)
    rs_config "$routes" "$port" "$dir/portico.yaml"
    "$PORTICO_BIN" check -c "$dir/portico.yaml" >"$dir/check.log" 2>&1 ||
        bench_die "portico check rejects $dir/portico.yaml: $(cat "$dir/check.log")"
    bench_cg_portico "$dir" "$PORTICO_BIN" "$port" "$n" "$path" "$status" "$len"
    ir=$BENCH_CG_IR
    bench_log "callgrind $routes routes, $case, N=$n: Ir $ir"
    printf '%s\t%s\t%s\t%s\n' "$routes" "$case" "$n" "$ir" >>"$OUT_TSV"
}

for routes in "$SMALL" "$BIG"; do
    for case in hit miss; do
        for n in "$N1" "$N2"; do
            rs_run "$routes" "$case" "$n"
        done
    done
done

bench_log "route_scale results in $OUT_TSV"
"$PYTHON" - "$OUT_TSV" "$SMALL" "$BIG" <<'PY'
import sys
runs = {}
for line in open(sys.argv[1], encoding="utf-8"):
    routes, case, n, ir = line.split("\t")
    runs.setdefault((int(routes), case), {})[int(n)] = int(ir)
per = {}
for key, r in sorted(runs.items()):
    n1, n2 = min(r), max(r)
    per[key] = (r[n2] - r[n1]) / (n2 - n1)
    print(f"route_scale {key[0]:>5} routes {key[1]:>4}: {per[key]:>10,.0f} Ir/request")
small, big = int(sys.argv[2]), int(sys.argv[3])
for case in ("hit", "miss"):
    if (small, case) in per and (big, case) in per and per[(small, case)]:
        print(f"route_scale ratio {big}/{small} routes, {case}: "
              f"{per[(big, case)] / per[(small, case)]:.3f}")
PY
