#!/usr/bin/env bash
# Compression, side by side: a 64 KiB JSON response from the same nginx backend, compressed with
# gzip at level 6 by Portico (conf/portico-gzip.yaml.in: `compress: {algorithms: [gzip], levels:
# {gzip: 6}}`) and by nginx (conf/nginx-proxy-gzip.conf.in: `gzip on; gzip_comp_level 6;`), each
# driven by wrk with `Accept-Encoding: gzip`. `make bench-compress` runs this. See bench/README.md
# ("Compression") for the method.
#
# Before any load the script checks with curl that each proxy answers /64k.json with
# Content-Encoding: gzip and a body that decodes to the backend's file exactly, and notes the
# compressed size each sends. After a warm-up run each (not recorded), BENCH_ROUNDS rounds
# alternate which proxy goes first. Per run: the proxy's CPU (utime+stime ticks of its process
# tree, /proc/PID/stat, delta over the run) divided by the requests wrk completed, and wrk's
# requests/s. Prints medians per proxy and the ratio Portico/nginx, and writes the table to
# build/bench/compress-latest.txt; the raw wrk outputs and samples.tsv go to
# build/bench/compress-YYYYMMDD-HHMMSS/.
#
# Env (defaults): BENCH_ROUNDS (5), BENCH_SECONDS (5 per run), BENCH_WARMUP (1 s), BENCH_CONNS
# (16), BENCH_WORKERS (1: Portico workers and nginx worker_processes), BENCH_PROXY_CPUS /
# BENCH_BACKEND_CPUS / BENCH_WRK_CPUS (see bench_cpu_layout), PORTICO_BIN (build/portico; when
# missing a second nginx, labelled nginx-standin, takes its slot), NGINX_BIN (nginx),
# BENCH_KEEP_TMP (0).
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECONDS:-5}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-16}
WORKERS=${BENCH_WORKERS:-1}
CLK_TCK=$(getconf CLK_TCK)

for tool in wrk "$NGINX_BIN" taskset curl "$PYTHON"; do
    command -v "$tool" >/dev/null || bench_die "$tool is not installed (make deps-test)"
done
for v in ROUNDS SECS WARMUP CONNS WORKERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, not '${!v}'"
done
bench_init
bench_cpu_layout
bench_pick_portico
RUN_DIR=$BENCH_OUT/compress-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR"
SAMPLES=$RUN_DIR/samples.tsv
printf 'proxy\tround\trequests\treq_per_s\tcpu_ticks\twall_s\tcpu_us_per_req\n' >"$SAMPLES"
bench_log "results go to $RUN_DIR"
bench_log "cpus: proxy $PROXY_CPUS, backend $BACKEND_CPUS, wrk $WRK_CPUS"

bench_start_backend "$BACKEND_CPUS" "$BACKEND_WORKERS"
# 65,536 bytes of JSON an API might answer: records with ids, names, numbers and tags (fixed
# seed, so every run compresses the same bytes).
JSON=$BENCH_TMP/backend/www/64k.json
"$PYTHON" - "$JSON" <<'PY' || bench_die "cannot write the JSON body"
import json, random, sys
rnd = random.Random(12)
words = ["alpha", "beta", "gamma", "delta", "portico", "cache", "value", "order", "user", "item"]
out = bytearray(b"[")
i = 0
while len(out) < 65536:
    rec = {"id": i, "name": rnd.choice(words) + str(rnd.randint(0, 999)),
           "price": round(rnd.random() * 1000, 2), "active": rnd.random() < 0.5,
           "tags": [rnd.choice(words) for _ in range(rnd.randint(1, 4))]}
    out += json.dumps(rec).encode() + b","
    i += 1
out = out[:65535] + b"]"
open(sys.argv[1], "wb").write(bytes(out))
PY
chmod 644 "$JSON"

BENCH_PROXY_MODE=gzip bench_start_proxy "$A_KIND" "$A_LABEL-gzip" "$PROXY_CPUS" "$WORKERS"
a_pid=$PROXY_PID a_port=$PROXY_PORT
BENCH_PROXY_MODE=gzip bench_start_proxy nginx nginx-gzip "$PROXY_CPUS" "$WORKERS"
b_pid=$PROXY_PID b_port=$PROXY_PORT
bench_log "$A_LABEL pid $a_pid port $a_port; nginx pid $b_pid port $b_port"

# check LABEL PORT: /64k.json comes gzip-coded and decodes to the file; prints the coded size.
check() {
    local raw="$RUN_DIR/check-$1.gz" hdr="$RUN_DIR/check-$1.head"
    curl -s -m 10 -H 'Accept-Encoding: gzip' -D "$hdr" -o "$raw" \
        "http://127.0.0.1:$2/64k.json" || bench_die "$1: curl failed"
    grep -qi '^content-encoding: gzip' "$hdr" || bench_die "$1: /64k.json is not gzip-coded"
    "$PYTHON" -c 'import gzip, sys
sys.exit(gzip.decompress(open(sys.argv[1], "rb").read()) != open(sys.argv[2], "rb").read())' \
        "$raw" "$JSON" || bench_die "$1: the gzip body does not decode to the file"
    stat -c %s "$raw"
}
size_a=$(check "$A_LABEL" "$a_port") || exit 1
size_b=$(check nginx "$b_port") || exit 1
bench_log "coded sizes: $A_LABEL $size_a bytes, nginx $size_b bytes (of 65536)"

# run LABEL PID PORT ROUND: one wrk run (lib.sh's bench_wrk); appends a line to $SAMPLES unless
# ROUND is "warmup".
run() {
    local label=$1 pid=$2 port=$3 round=$4 secs=$SECS
    [ "$round" = warmup ] && secs=$WARMUP
    bench_wrk "$pid" "$RUN_DIR/wrk-$label-$round.txt" "$label" "$secs" \
        -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/64k.json"
    bench_record "$label" "$round"
}

bench_pair run
{
    echo "gzip level 6 of a 64 KiB JSON response from an nginx backend (bench/compress.sh)"
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ); $(nproc) cpus ($(sed -n 's/^model name[^:]*: //p' \
        /proc/cpuinfo | head -1)); proxy on cpu $PROXY_CPUS, backend $BACKEND_CPUS, wrk $WRK_CPUS"
    echo "$A_LABEL: $a_version; nginx: $("$NGINX_BIN" -v 2>&1 | sed 's/.*version: //')," \
        "worker_processes/workers $WORKERS; zlib $(dpkg-query -W -f '${Version}' zlib1g 2>/dev/null)"
    echo "client: wrk -t1 -c$CONNS -d${SECS}s -H 'Accept-Encoding: gzip' /64k.json, $ROUNDS" \
        "rounds after a ${WARMUP}s warm-up each"
    echo "CPU per request: utime+stime of the proxy's processes over the run / requests" \
        "(tick = $((1000000 / CLK_TCK)) us); medians over the rounds; ratio = $A_LABEL/nginx"
    echo
    printf '%-22s %14s %14s %8s\n' "" "$A_LABEL" nginx ratio
    printf '%-22s %14.2f %14.2f %8s\n' "CPU us/request" "$cpu_a" "$cpu_b" \
        "$(bench_ratio "$cpu_a" "$cpu_b")"
    printf '%-22s %14.0f %14.0f %8s\n' "requests/s (wrk)" "$rps_a" "$rps_b" \
        "$(bench_ratio "$rps_a" "$rps_b")"
    printf '%-22s %13.0f%% %13.0f%%\n' "proxy CPU use" "$use_a" "$use_b"
    printf '%-22s %14s %14s %8s\n' "gzip body (bytes)" "$size_a" "$size_b" \
        "$(bench_ratio "$size_a" "$size_b")"
    printf '%-22s %14s %14s %8s\n' "peak RSS (kB)" "$rss_a" "$rss_b" \
        "$(bench_ratio "$rss_a" "$rss_b")"
    printf '%-22s %14s %14s\n' "CPU us/req range" "$(bench_column "$A_LABEL" 7 | bench_range)" \
        "$(bench_column nginx 7 | bench_range)"
    echo
    echo "per round (CPU us/request): $A_LABEL $(bench_column "$A_LABEL" 7 | paste -sd' ' -);" \
        "nginx $(bench_column nginx 7 | paste -sd' ' -)"
} >"$RUN_DIR/report.txt"
cp "$RUN_DIR/report.txt" "$BENCH_OUT/compress-latest.txt"
echo
cat "$RUN_DIR/report.txt"
bench_log "table: $BENCH_OUT/compress-latest.txt; raw data: $RUN_DIR"
