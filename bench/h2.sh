#!/usr/bin/env bash
# HTTP/2 over TLS, side by side: Portico and nginx each answer a 13-byte body themselves (Portico's
# `respond` route, nginx's `return 200`) on a TLS listener that speaks HTTP/2, and h2load drives
# each with 16 connections of 4 concurrent streams for a fixed number of requests. `make
# bench-h2` runs this. See bench/README.md ("HTTP/2 over TLS") for the method.
#
# Both servers get the same certificate (bench_make_cert: ECDSA P-256) and TLS settings
# (conf/portico-h2.yaml.in, conf/nginx-h2.conf.in); before any load the script checks with curl
# that each answers the exact body over HTTP/2 and with openssl s_client that a default client
# offering ALPN h2 negotiates the same protocol, suite, signature and key exchange with both.
# After a warm-up run each (not recorded), BENCH_ROUNDS rounds alternate which server goes first.
# Per run: the server's CPU (utime+stime ticks of its process tree, /proc/PID/stat, delta over
# the run) divided by the requests h2load completed, and h2load's own requests/s. Prints medians
# per server and the ratio Portico/nginx, and writes the table to build/bench/h2-latest.txt; the
# raw h2load outputs and samples.tsv go to build/bench/h2-YYYYMMDD-HHMMSS/.
#
# Env (defaults): BENCH_ROUNDS (5), BENCH_H2_REQUESTS (100000 per run), BENCH_H2_WARMUP (10000
# requests), BENCH_H2_CONNS (16), BENCH_H2_STREAMS (4), BENCH_WORKERS (1: Portico workers and
# nginx worker_processes), BENCH_PROXY_CPUS / BENCH_WRK_CPUS (taskset lists for the server and
# h2load; see bench_cpu_layout), PORTICO_BIN (build/portico; when missing a second nginx,
# labelled nginx-standin, takes its slot), NGINX_BIN (nginx), BENCH_KEEP_TMP (0).
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS=${BENCH_ROUNDS:-5}
REQUESTS=${BENCH_H2_REQUESTS:-100000}
WARMUP_REQUESTS=${BENCH_H2_WARMUP:-10000}
CONNS=${BENCH_H2_CONNS:-16}
STREAMS=${BENCH_H2_STREAMS:-4}
WORKERS=${BENCH_WORKERS:-1}
BODY='hello, world
'
CLK_TCK=$(getconf CLK_TCK)
# There is no backend here; lib.sh's template filler still wants these names.
BACKEND_PORT=0 BACKEND_PORT2=0 BACKEND_PORT3=0

for tool in h2load "$NGINX_BIN" taskset curl openssl "$PYTHON"; do
    command -v "$tool" >/dev/null || bench_die "$tool is not installed (make deps-test)"
done
for v in ROUNDS REQUESTS WARMUP_REQUESTS CONNS STREAMS WORKERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, not '${!v}'"
done
if [ "$REQUESTS" -lt "$CONNS" ] || [ "$WARMUP_REQUESTS" -lt "$CONNS" ]; then
    bench_die "h2load needs at least as many requests as connections ($CONNS)"
fi
bench_init
bench_cpu_layout
bench_pick_portico
RUN_DIR=$BENCH_OUT/h2-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR"
SAMPLES=$RUN_DIR/samples.tsv
printf 'server\tround\trequests\treq_per_s\tcpu_ticks\twall_s\tcpu_us_per_req\n' >"$SAMPLES"
bench_log "results go to $RUN_DIR"
bench_log "cpus: server $PROXY_CPUS, h2load $WRK_CPUS"

# check_h2 LABEL PORT: one GET over HTTP/2 must be a 200 with exactly the body.
check_h2() {
    local got body="$RUN_DIR/check-body"
    got=$(curl -k -s --http2 -o "$body" -m 10 -w '%{http_code} %{http_version}' \
        "https://127.0.0.1:$2/small")
    [ "$got" = "200 2" ] || bench_die "$1: GET /small over HTTP/2 answered '$got', expected '200 2'"
    [ "$(cat "$body"; echo x)" = "${BODY}x" ] || bench_die "$1: GET /small answered another body"
    rm -f "$body"
}

# check_tls LABEL PORT: what a default client offering ALPN h2 negotiates (protocol, suite,
# signature type, key exchange, ALPN), logged and echoed; must be the same for both servers.
check_tls() {
    local seen
    seen=$(timeout 10 openssl s_client -connect "127.0.0.1:$2" -alpn h2 -brief </dev/null 2>&1 |
        sed -n 's/^\(Protocol version\|Ciphersuite\|Signature type\|Server Temp Key\): *//p' |
        paste -sd, -)
    [ -n "$seen" ] || bench_die "$1: openssl s_client could not complete a handshake on port $2"
    bench_log "$1 TLS: $seen"
    echo "$seen"
}

# run_h2load LABEL PID PORT ROUND: one h2load run of $REQUESTS requests ($WARMUP_REQUESTS when
# ROUND is "warmup", which records nothing); appends a line to $SAMPLES. Every request must
# succeed with a 2xx over h2, else the benchmark stops.
run_h2load() {
    local label=$1 pid=$2 port=$3 round=$4 n=$REQUESTS out t0 t1 w0 w1 ok s2xx rps proto
    local ticks wall us
    [ "$round" = warmup ] && n=$WARMUP_REQUESTS
    out="$RUN_DIR/h2load-$label-$round.txt"
    t0=$(bench_cpu_ticks "$pid")
    w0=$(date +%s.%N)
    timeout --foreground 300 taskset -c "$WRK_CPUS" h2load -t 1 -c "$CONNS" -m "$STREAMS" \
        -n "$n" "https://127.0.0.1:$port/small" >"$out" 2>&1 ||
        bench_die "h2load failed for $label: $(tail -5 "$out")"
    w1=$(date +%s.%N)
    t1=$(bench_cpu_ticks "$pid")
    [ -d "/proc/$pid" ] || bench_die "$label died during the run"
    proto=$(sed -n 's/^Application protocol: *//p' "$out")
    [ "$proto" = h2 ] || bench_die "$label: h2load spoke '$proto', not h2; see $out"
    ok=$(sed -n 's/^requests: .* \([0-9][0-9]*\) succeeded,.*/\1/p' "$out")
    s2xx=$(sed -n 's/^status codes: \([0-9][0-9]*\) 2xx,.*/\1/p' "$out")
    rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s,.*/\1/p' "$out")
    if [ -z "$ok" ] || [ -z "$s2xx" ] || [ -z "$rps" ]; then
        bench_die "cannot parse h2load output $out"
    fi
    if [ "$ok" != "$n" ] || [ "$s2xx" != "$n" ]; then
        bench_die "$label: $ok of $n requests succeeded, $s2xx with a 2xx; see $out"
    fi
    ticks=$((t1 - t0))
    wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", b - a }')
    us=$(awk -v t="$ticks" -v k="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.3f", t * 1e6 / k / n }')
    bench_log "$label $round: $n requests, $rps req/s, cpu $ticks ticks = $us us/request"
    [ "$round" = warmup ] && return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$round" "$n" "$rps" "$ticks" "$wall" \
        "$us" >>"$SAMPLES"
}


BENCH_PROXY_MODE=h2 bench_start_proxy "$A_KIND" "$A_LABEL-h2" "$PROXY_CPUS" "$WORKERS"
a_pid=$PROXY_PID a_port=$PROXY_PORT
BENCH_PROXY_MODE=h2 bench_start_proxy nginx nginx-h2 "$PROXY_CPUS" "$WORKERS"
b_pid=$PROXY_PID b_port=$PROXY_PORT
bench_log "$A_LABEL pid $a_pid port $a_port; nginx pid $b_pid port $b_port"
check_h2 "$A_LABEL" "$a_port"
check_h2 nginx "$b_port"
tls_a=$(check_tls "$A_LABEL" "$a_port") || exit 1
tls_b=$(check_tls nginx "$b_port") || exit 1
[ "$tls_a" = "$tls_b" ] || bench_die "the servers negotiate different TLS: $tls_a / $tls_b"

bench_pair run_h2load
{
    echo "HTTP/2 over TLS, 13-byte responses answered by the server itself (bench/h2.sh)"
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ); $(nproc) cpus ($(sed -n 's/^model name[^:]*: //p' \
        /proc/cpuinfo | head -1)); server on cpu $PROXY_CPUS, h2load on cpu $WRK_CPUS"
    echo "$A_LABEL: $a_version; nginx: $("$NGINX_BIN" -v 2>&1 | sed 's/.*version: //')," \
        "worker_processes/workers $WORKERS; $(h2load --version 2>&1 | head -1); $(openssl version)"
    echo "client: h2load -t 1 -c $CONNS -m $STREAMS -n $REQUESTS https://127.0.0.1:PORT/small," \
        "$ROUNDS rounds after a $WARMUP_REQUESTS-request warm-up each; TLS: $tls_a; ALPN h2"
    echo "CPU per request: utime+stime of the server's processes over the run / requests" \
        "(tick = $((1000000 / CLK_TCK)) us); medians over the rounds; ratio = $A_LABEL/nginx"
    echo
    printf '%-22s %14s %14s %8s\n' "" "$A_LABEL" nginx ratio
    r=$(bench_ratio "$cpu_a" "$cpu_b")
    printf '%-22s %14.2f %14.2f %8s\n' "CPU us/request" "$cpu_a" "$cpu_b" "$r"
    printf '%-22s %14.0f %14.0f %8s\n' "requests/s (h2load)" "$rps_a" "$rps_b" \
        "$(bench_ratio "$rps_a" "$rps_b")"
    printf '%-22s %13.0f%% %13.0f%%\n' "server CPU use" "$use_a" "$use_b"
    printf '%-22s %14s %14s %8s\n' "peak RSS (kB)" "$rss_a" "$rss_b" \
        "$(bench_ratio "$rss_a" "$rss_b")"
    printf '%-22s %14s %14s\n' "CPU us/req range" "$(bench_column "$A_LABEL" 7 | bench_range)" \
        "$(bench_column nginx 7 | bench_range)"
    printf '%-22s %14s %14s\n' "req/s range" \
        "$(bench_column "$A_LABEL" 4 | cut -d. -f1 | bench_range)" \
        "$(bench_column nginx 4 | cut -d. -f1 | bench_range)"
    echo
    echo "per round (CPU us/request): $A_LABEL $(bench_column "$A_LABEL" 7 | paste -sd' ' -);" \
        "nginx $(bench_column nginx 7 | paste -sd' ' -)"
    echo "issue 10 asks for a CPU-per-request ratio of at most 0.75:" \
        "$(awk -v r="$r" 'BEGIN { print (r <= 0.75) ? "met" : "not met" }') ($r)"
} >"$RUN_DIR/report.txt"
cp "$RUN_DIR/report.txt" "$BENCH_OUT/h2-latest.txt"
echo
cat "$RUN_DIR/report.txt"
bench_log "table: $BENCH_OUT/h2-latest.txt; raw data: $RUN_DIR"
