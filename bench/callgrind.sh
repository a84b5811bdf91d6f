#!/usr/bin/env bash
# Instructions per proxied request, Portico vs nginx, counted by valgrind's callgrind.
#
# Each proxy runs under `valgrind --tool=callgrind` (Portico with workers: 1; nginx with
# worker_processes 1 and master_process off, so the traced process is the one serving) in front of
# the benchmark's own nginx backend. A sequential keep-alive client (bench/client.py) sends N1 and,
# in a second run, N2 small GETs; the proxy is stopped with SIGTERM so callgrind writes its totals.
# Ir per request = (Ir(N2) - Ir(N1)) / (N2 - N1): start-up, configuration parsing and shutdown are
# the same in both runs and cancel out. Ir counts user-space instructions only (a system call is
# one instruction; the kernel's work is not counted).
#
# Usage: bench/callgrind.sh [OUT_TSV]     (default build/bench/callgrind.tsv; prints a table)
#        BENCH_PROXY_MODE=static bench/callgrind.sh    (a 1 KiB static file instead)
# Env: BENCH_CG_N1 (200), BENCH_CG_N2 (1200), PORTICO_BIN, NGINX_BIN, BENCH_CG_TIMEOUT (300 s
# per run).
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

N1=${BENCH_CG_N1:-200}
N2=${BENCH_CG_N2:-1200}
CG_TIMEOUT=${BENCH_CG_TIMEOUT:-300}
OUT_TSV=${1:-$BENCH_OUT/callgrind.tsv}

command -v valgrind >/dev/null || bench_die "valgrind is not installed"
[ "$N2" -gt "$N1" ] || bench_die "BENCH_CG_N2 must be greater than BENCH_CG_N1"
bench_init
bench_cpu_layout
bench_pick_portico
: >"$OUT_TSV"

# BENCH_PROXY_MODE=static counts a 1 KiB file served by each (the static1k scenario's folder and
# configurations, open-file caches on both sides) instead of a proxied small response.
CG_PATH=/small
CG_LEN=13
if [ "${BENCH_PROXY_MODE:-proxy}" = static ]; then
    CG_PATH=/1k.bin
    CG_LEN=1024
    BACKEND_PORT=0 BACKEND_PORT2=0 BACKEND_PORT3=0 # no backend: the templates do not use them
else
    bench_start_backend "$BACKEND_CPUS" 1
fi

cg_run() { # KIND LABEL N
    local kind=$1 label=$2 n=$3 name dir ir
    name="cg-$label-$n"
    dir="$BENCH_TMP/$name"
    mkdir -p "$dir"
    bench_start_proxy "$kind" "$name" "$PROXY_CPUS" 1 \
        valgrind --tool=callgrind --trace-children=no --dump-instr=no \
        "--callgrind-out-file=$dir/callgrind.out.%p" --log-file="$dir/valgrind.log"
    local pid=$PROXY_PID
    if ! timeout --foreground "$CG_TIMEOUT" "$PYTHON" "$BENCH_LIB_DIR/client.py" \
        --port "$PROXY_PORT" --count "$n" --path "$CG_PATH" --length "$CG_LEN"; then
        bench_die "$label under callgrind: the client failed (see $dir)"
    fi
    BENCH_STOP_WAIT=60 bench_stop_proxy "$pid"
    ir=$(bench_cg_total "$dir") || bench_die "$label: no callgrind totals in $dir (valgrind.log:
$(tail -5 "$dir/valgrind.log"))"
    bench_log "callgrind $label N=$n: Ir $ir"
    printf '%s\t%s\t%s\n' "$label" "$n" "$ir" >>"$OUT_TSV"
}

for n in "$N1" "$N2"; do
    cg_run "$A_KIND" "$A_LABEL" "$n"
    cg_run nginx nginx "$n"
done

bench_log "callgrind results in $OUT_TSV"
"$PYTHON" - "$OUT_TSV" "$A_LABEL" <<'EOF'
import sys
runs = {}
for line in open(sys.argv[1], encoding="utf-8"):
    p, n, ir = line.split("\t")
    runs.setdefault(p, {})[int(n)] = int(ir)
per = {}
for p, r in runs.items():
    n1, n2 = min(r), max(r)
    per[p] = (r[n2] - r[n1]) / (n2 - n1)
    print(f"callgrind {p:>14}: Ir(N={n1}) {r[n1]:>14,}  Ir(N={n2}) {r[n2]:>14,}  "
          f"-> {per[p]:,.0f} Ir/request")
a = sys.argv[2]
if a in per and "nginx" in per and per["nginx"]:
    print(f"callgrind ratio {a}/nginx: {per[a] / per['nginx']:.2f}")
EOF
