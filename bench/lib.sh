# shellcheck shell=bash disable=SC2034  # (variables set here are read by the scripts sourcing it)
# Shared shell helpers for the Portico-vs-nginx benchmark (sourced by bench/run.sh and
# bench/callgrind.sh; not run on its own).
#
# Every process the benchmark starts is recorded in BENCH_PIDS and stopped by PID on exit, on
# Ctrl-C and on SIGTERM (bench_cleanup, installed as a trap by bench_init). nginx is never run as a
# system service: each instance gets its own config, prefix, pid file, temp and log directories
# under one temp dir, runs with "daemon off;" and is stopped by its PID (its workers by their
# parent PID). Ports come from the kernel (bind to port 0, read the port, close) and are passed to
# the servers' configs. Every wait is bounded in time.

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_ROOT=$(cd "$BENCH_LIB_DIR/.." && pwd)
if [ -z "${PYTHON:-}" ]; then # Debian's python3 first, as the Makefile does (no pyenv shim).
    PYTHON=python3
    [ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3
fi
NGINX_BIN=${NGINX_BIN:-nginx}
PORTICO_BIN=${PORTICO_BIN:-$BENCH_ROOT/build/portico}
BENCH_OUT=${BENCH_OUT:-$BENCH_ROOT/build/bench}
BENCH_PIDS=()

bench_log() { printf '[bench] %s\n' "$*" >&2; }
bench_die() {
    printf '[bench] ERROR: %s\n' "$*" >&2
    exit 1
}

# Children of a PID (by parent PID, read from /proc), recursively, then the PID itself.
bench_tree_pids() {
    local p c
    for p in "$@"; do
        [ -d "/proc/$p" ] || continue
        for c in $(pgrep -P "$p"); do
            bench_tree_pids "$c"
        done
        echo "$p"
    done
}

bench_stop() { # PID...: SIGTERM the tree, wait up to BENCH_STOP_WAIT s (5), then SIGKILL the rest.
    local pids p i alive
    pids=$(bench_tree_pids "$@")
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null
    for ((i = 0; i < ${BENCH_STOP_WAIT:-5} * 10; i++)); do
        alive=0
        for p in $pids; do
            if [ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
                alive=1
            fi
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    [ "$alive" = 0 ] || kill -KILL $pids 2>/dev/null
    for p in "$@"; do wait "$p" 2>/dev/null; done
    return 0
}

bench_cleanup() {
    trap - EXIT INT TERM
    if [ "${#BENCH_PIDS[@]}" -gt 0 ]; then
        bench_stop "${BENCH_PIDS[@]}"
    fi
    if [ -n "${BENCH_TMP:-}" ] && [ -d "$BENCH_TMP" ] && [ "${BENCH_KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$BENCH_TMP"
    fi
}

bench_init() {
    BENCH_TMP=$(mktemp -d /tmp/portico-bench.XXXXXX)
    # nginx workers started by root run as "nobody": they must be able to read the backend's files.
    chmod 755 "$BENCH_TMP"
    mkdir -p "$BENCH_OUT"
    trap bench_cleanup EXIT
    trap 'bench_log "interrupted"; bench_cleanup; exit 130' INT
    trap 'bench_log "terminated"; bench_cleanup; exit 143' TERM
    # Open-file limit for the servers and clients: as high as the hard limit allows, up to 65536.
    local hard
    hard=$(ulimit -Hn)
    if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
    BENCH_NOFILE=${BENCH_NOFILE:-$hard}
    ulimit -n "$BENCH_NOFILE" || bench_die "cannot raise the open-file limit to $BENCH_NOFILE"
}

bench_forget_pid() { # PID: drop from the cleanup list once stopped.
    local p keep=()
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
}

bench_free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

bench_fill() { # TEMPLATE OUT NAME=VALUE...: replace @NAME@ placeholders.
    local tpl=$1 out=$2 kv args=()
    shift 2
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$tpl" >"$out"
    if grep -q '@[A-Z_]*@' "$out"; then bench_die "unfilled placeholder in $out"; fi
}

bench_wait_http() { # URL SECONDS PID: wait until URL answers 200 (or PID dies).
    local url=$1 secs=$2 pid=$3 i code
    for ((i = 0; i < secs * 10; i++)); do
        [ -d "/proc/$pid" ] || return 1
        # -k: the https scenarios use the run's self-signed certificate.
        code=$(curl -k -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null)
        [ "$code" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

bench_nginx_prefix() { # DIR: an nginx prefix with its own logs and temp dirs.
    mkdir -p "$1/logs" "$1/tmp"
}

# Start the backend: sets BACKEND_PORT, BACKEND_PORT2, BACKEND_PORT3 and BACKEND_PID. CPUS:
# taskset list; WORKERS: processes. The one nginx listens on three ports with the same server
# block, so the three-target scenario (small3) has three targets that do the same work as the
# single target of the others; the extra listen lines are added to the filled template here.
# BENCH_BACKEND_CONF (default backend.conf.in) picks the template in conf/; its docroot is
# $BENCH_TMP/backend/www, where a script may put more files before or after the start.
bench_start_backend() {
    local cpus=$1 workers=$2 dir="$BENCH_TMP/backend" try extra
    local tpl=$BENCH_LIB_DIR/conf/${BENCH_BACKEND_CONF:-backend.conf.in}
    bench_nginx_prefix "$dir"
    mkdir -p "$dir/www"
    printf 'hello, world\n' >"$dir/www/small.txt"
    head -c 65536 /dev/urandom >"$dir/www/64k.bin"
    for try in 1 2 3; do
        BACKEND_PORT=$(bench_free_port)
        BACKEND_PORT2=$(bench_free_port)
        BACKEND_PORT3=$(bench_free_port)
        bench_fill "$tpl" "$dir/nginx.conf" PREFIX="$dir" \
            PORT="$BACKEND_PORT" DOCROOT="$dir/www" WORKERS="$workers" NOFILE="$BENCH_NOFILE"
        extra="\\1listen 127.0.0.1:$BACKEND_PORT2 \\2\\n\\1listen 127.0.0.1:$BACKEND_PORT3 \\2"
        sed -i "s|^\( *\)listen 127.0.0.1:$BACKEND_PORT \(.*\)\$|&\n$extra|" "$dir/nginx.conf"
        [ "$(grep -c "listen 127.0.0.1:" "$dir/nginx.conf")" = 3 ] ||
            bench_die "could not add the backend's extra listen ports to $dir/nginx.conf"
        taskset -c "$cpus" "$NGINX_BIN" -c "$dir/nginx.conf" -p "$dir" -e "$dir/logs/error.log" \
            >"$dir/logs/stdout.log" 2>&1 &
        BACKEND_PID=$!
        BENCH_PIDS+=("$BACKEND_PID")
        if bench_wait_http "http://127.0.0.1:$BACKEND_PORT/small" 10 "$BACKEND_PID" &&
            bench_wait_http "http://127.0.0.1:$BACKEND_PORT2/small" 2 "$BACKEND_PID" &&
            bench_wait_http "http://127.0.0.1:$BACKEND_PORT3/small" 2 "$BACKEND_PID"; then
            bench_log "backend nginx pid $BACKEND_PID on 127.0.0.1:$BACKEND_PORT," \
                "$BACKEND_PORT2 and $BACKEND_PORT3 (cpus $cpus)"
            return 0
        fi
        bench_stop "$BACKEND_PID"
        bench_forget_pid "$BACKEND_PID"
        bench_log "backend did not start (try $try):"
        tail -5 "$dir/logs/error.log" >&2
    done
    bench_die "backend nginx did not start"
}

# The folder the static scenarios serve (Portico's `static` and nginx's `root` alike), made once
# per run under the temp dir: 1k.bin (1,024 random bytes), 1m.bin (1,048,576) and "small" (the
# 13-byte body, so the start-up probe of bench_start_proxy finds a 200 there too). Sets
# STATIC_ROOT.
bench_make_static() {
    STATIC_ROOT=$BENCH_TMP/static
    [ -f "$STATIC_ROOT/1m.bin" ] && return 0
    mkdir -p "$STATIC_ROOT"
    chmod 755 "$STATIC_ROOT"
    printf 'hello, world\n' >"$STATIC_ROOT/small"
    head -c 1024 /dev/urandom >"$STATIC_ROOT/1k.bin"
    head -c 1048576 /dev/urandom >"$STATIC_ROOT/1m.bin"
    chmod 644 "$STATIC_ROOT"/*
}

# The certificate the https scenarios use, made once per run: a self-signed ECDSA P-256
# certificate for localhost and 127.0.0.1, valid 2 days. Both proxies load the same two files.
# Sets BENCH_CERT and BENCH_KEY.
bench_make_cert() {
    local dir=$BENCH_TMP/tls
    BENCH_CERT=$dir/cert.pem
    BENCH_KEY=$dir/key.pem
    [ -f "$BENCH_CERT" ] && return 0
    command -v openssl >/dev/null || bench_die "openssl is not installed (make deps-test)"
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$BENCH_KEY" -out "$BENCH_CERT" >"$dir/openssl.log" 2>&1 ||
        bench_die "cannot make the benchmark certificate: $(tail -3 "$dir/openssl.log")"
    chmod 600 "$BENCH_KEY"
}

# Start a proxy under test: bench_start_proxy KIND NAME CPUS WORKERS [WRAPPER...]
#   KIND: portico | nginx; NAME: a directory name; WRAPPER: e.g. valgrind and its options.
# Sets PROXY_PORT and PROXY_PID (the PID of the process started: nginx master, or the wrapper).
# With a wrapper, nginx runs with master_process off so the traced process is the one serving.
# BENCH_PROXY_TARGETS=3 (default 1) puts the proxy in front of the backend's three ports
# (templates portico3.yaml.in and nginx-proxy3.conf.in), balanced round robin.
# BENCH_PROXY_MODE (default proxy): proxy | static (templates portico-static.yaml.in and
# nginx-static.conf.in, serving STATIC_ROOT from bench_make_static, no backend) | tls (templates
# portico-tls.yaml.in and nginx-tls.conf.in: the proxy on a TLS listener with the certificate of
# bench_make_cert; its address is then https://) | h2 (templates portico-h2.yaml.in and
# nginx-h2.conf.in: HTTP/2 over TLS, the server answering a 13-byte body itself, no backend;
# https:// too) | gzip (templates portico-gzip.yaml.in and nginx-proxy-gzip.conf.in: the proxy
# setup, gzip at level 6 on application/json responses; bench/compress.sh) | cache (templates
# portico-cache.yaml.in and nginx-cache.conf.in: the cache and compression routes of
# bench/cache.sh, in front of the backend of backend-cache.conf.in) | waf (templates
# portico-waf.yaml.in and nginx-waf.conf.in: the proxy setup with the WAF; BENCH_WAF (on | off)
# and BENCH_WAF_RULES (the rules file of bench_waf_rules) for nginx, BENCH_WAF_MODE (block |
# detect | off) and BENCH_WAF_PROFILE (api | none) for Portico; bench/waf.sh).
bench_start_proxy() {
    local kind=$1 name=$2 cpus=$3 workers=$4 dir try master=on wait=10 suffix="" scheme=http
    local ptpl npfx=nginx-proxy mode
    dir="$BENCH_TMP/$name"
    case ${BENCH_PROXY_TARGETS:-1} in
    1) ;;
    3) suffix=3 ;;
    *) bench_die "BENCH_PROXY_TARGETS must be 1 or 3" ;;
    esac
    mode=${BENCH_PROXY_MODE:-proxy}
    case $mode in
    proxy) ;;
    static)
        suffix=-static npfx=nginx
        bench_make_static
        ;;
    tls | h2)
        suffix=-$mode npfx=nginx scheme=https
        bench_make_cert
        ;;
    gzip) suffix=-gzip ;;
    cache) suffix=-cache npfx=nginx ;;
    waf) suffix=-waf npfx=nginx ;;
    *) bench_die "BENCH_PROXY_MODE must be proxy, static, tls, h2, gzip, cache or waf" ;;
    esac
    ptpl=$BENCH_LIB_DIR/conf/portico$suffix.yaml.in
    shift 4
    mkdir -p "$dir"
    [ "$#" -gt 0 ] && master=off && wait=90
    for try in 1 2 3; do
        PROXY_PORT=$(bench_free_port)
        case $kind in
        portico)
            bench_fill "$ptpl" "$dir/portico.yaml" \
                PORT="$PROXY_PORT" BACKEND_PORT="$BACKEND_PORT" BACKEND_PORT2="$BACKEND_PORT2" \
                BACKEND_PORT3="$BACKEND_PORT3" WORKERS="$workers" \
                STATIC_ROOT="${STATIC_ROOT:-}" CERT="${BENCH_CERT:-}" KEY="${BENCH_KEY:-}" \
                WAF_MODE="${BENCH_WAF_MODE:-off}" WAF_PROFILE="${BENCH_WAF_PROFILE:-api}"
            if ! "$PORTICO_BIN" check -c "$dir/portico.yaml" >"$dir/check.log" 2>&1; then
                bench_die "portico check rejects $dir/portico.yaml: $(cat "$dir/check.log")"
            fi
            taskset -c "$cpus" "$@" "$PORTICO_BIN" run -c "$dir/portico.yaml" \
                >"$dir/stdout.log" 2>"$dir/stderr.log" &
            ;;
        nginx)
            bench_nginx_prefix "$dir"
            bench_fill "$BENCH_LIB_DIR/conf/$npfx$suffix.conf.in" "$dir/nginx.conf" \
                PREFIX="$dir" PORT="$PROXY_PORT" BACKEND_PORT="$BACKEND_PORT" \
                BACKEND_PORT2="$BACKEND_PORT2" BACKEND_PORT3="$BACKEND_PORT3" WORKERS="$workers" \
                MASTER="$master" NOFILE="$BENCH_NOFILE" WCONN="${BENCH_NGINX_WCONN:-4096}" \
                STATIC_ROOT="${STATIC_ROOT:-}" CERT="${BENCH_CERT:-}" KEY="${BENCH_KEY:-}" \
                WAF="${BENCH_WAF:-off}" WAF_RULES="${BENCH_WAF_RULES:-/dev/null}"
            taskset -c "$cpus" "$@" "$NGINX_BIN" -c "$dir/nginx.conf" -p "$dir" \
                -e "$dir/logs/error.log" >"$dir/stdout.log" 2>"$dir/stderr.log" &
            ;;
        *) bench_die "unknown proxy kind $kind" ;;
        esac
        PROXY_PID=$!
        BENCH_PIDS+=("$PROXY_PID")
        if bench_wait_http "$scheme://127.0.0.1:$PROXY_PORT/small" "$wait" "$PROXY_PID"; then
            return 0
        fi
        bench_stop "$PROXY_PID"
        bench_forget_pid "$PROXY_PID"
        bench_log "$name ($kind) did not start (try $try); its stderr:"
        tail -5 "$dir/stderr.log" >&2
        [ -f "$dir/logs/error.log" ] && tail -5 "$dir/logs/error.log" >&2
    done
    bench_die "$name ($kind) did not start"
}

# bench_waf_rules DIR PROFILE PARANOIA AUDIT: writes DIR/main.conf, the ModSecurity rules file of
# the nginx WAF (nginx-waf.conf.in's modsecurity_rules_file) in the order Portico loads its WAF:
# the base directives (conf/modsecurity-base.conf.in: engine, body processors, the paranoia level
# and anomaly thresholds), waf/profile-api-before.conf when PROFILE is api, the CRS setup and
# rules of Debian's modsecurity-crs, then waf/profile-api-after.conf when PROFILE is api.
# PROFILE: api | none; AUDIT: On | Off | RelevantOnly (the audit log, DIR/audit.log). Prints the
# path of main.conf.
bench_waf_rules() {
    local dir=$1 profile=$2 paranoia=$3 audit=$4 crs=/usr/share/modsecurity-crs/rules
    case $profile in api | none) ;; *) bench_die "the WAF profile must be api or none" ;; esac
    if [ ! -f /etc/modsecurity/crs/crs-setup.conf ] || [ ! -d "$crs" ]; then
        bench_die "the OWASP CRS is not installed (apt-get install modsecurity-crs)"
    fi
    mkdir -p "$dir"
    chmod 755 "$dir"
    bench_fill "$BENCH_LIB_DIR/conf/modsecurity-base.conf.in" "$dir/base.conf" DIR="$dir" \
        PARANOIA="$paranoia" AUDIT="$audit"
    {
        echo "Include $dir/base.conf"
        [ "$profile" = api ] && echo "Include $BENCH_ROOT/waf/profile-api-before.conf"
        echo "Include /etc/modsecurity/crs/crs-setup.conf"
        echo "Include $crs/*.conf"
        [ "$profile" = api ] && echo "Include $BENCH_ROOT/waf/profile-api-after.conf"
    } >"$dir/main.conf"
    echo "$dir/main.conf"
}

# bench_upstream_conns PID PORT: established TCP connections from the process tree PID to
# 127.0.0.1:PORT (ss; "?" when ss is missing). Shows a proxy really spreads over its targets.
bench_upstream_conns() {
    local pid=$1 port=$2 p n=0 k
    command -v ss >/dev/null || {
        echo "?"
        return 0
    }
    for p in $(bench_tree_pids "$pid"); do
        k=$(ss -Htnp state established "( dport = :$port )" 2>/dev/null | grep -c "pid=$p,")
        n=$((n + k))
    done
    echo "$n"
}

bench_stop_proxy() { # PID
    bench_stop "$1"
    bench_forget_pid "$1"
}

bench_cpu_ticks() { # PID: utime+stime (clock ticks) of the process and its children, summed.
    local p s t=0
    for p in $(bench_tree_pids "$1"); do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=${s##*) }
        # shellcheck disable=SC2086
        set -- $s
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}

# bench_wrk PID OUT WHAT SECS [WRK_ARGS...] URL: one wrk run (-t$THREADS (1) -c$CONNS --latency, on
# $WRK_CPUS, bounded by a timeout), its output in OUT. Stops the benchmark if wrk fails, if the
# process tree PID died, on a non-2xx/3xx response or when no request completed (socket errors:
# a warning); WHAT names the run in the messages. Sets BENCH_TICKS (PID's CPU ticks over the
# run), BENCH_WALL (its seconds) and, from wrk, BENCH_RPS, BENCH_P50_US, BENCH_P99_US and
# BENCH_REQUESTS.
bench_wrk() {
    local pid=$1 out=$2 what=$3 secs=$4 t0 w0 r
    shift 4
    t0=$(bench_cpu_ticks "$pid")
    w0=$(date +%s.%N)
    timeout --foreground $((secs + 30)) taskset -c "$WRK_CPUS" \
        wrk -t"${THREADS:-1}" -c"$CONNS" -d"${secs}s" --latency "$@" >"$out" 2>&1 ||
        bench_die "wrk failed for $what: $(tail -5 "$out")"
    BENCH_WALL=$(awk -v a="$w0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    BENCH_TICKS=$(($(bench_cpu_ticks "$pid") - t0))
    [ -d "/proc/$pid" ] || bench_die "$what: the server died during the run"
    r=$("$PYTHON" "$BENCH_LIB_DIR/report.py" parse "$out") ||
        bench_die "cannot parse wrk output $out"
    # shellcheck disable=SC2086
    set -- $r # rps p50_us p99_us requests non2xx sockerr
    [ "$5" = 0 ] || bench_die "$what: $5 non-2xx/3xx responses, see $out"
    [ "$4" -gt 0 ] || bench_die "$what: no request completed, see $out"
    [ "$6" = 0 ] || bench_log "WARNING: $what: $6 socket errors, see $out"
    BENCH_RPS=$1 BENCH_P50_US=$2 BENCH_P99_US=$3 BENCH_REQUESTS=$4
}

# bench_record LABEL ROUND: after a bench_wrk run, logs its CPU per request and, unless ROUND is
# "warmup", appends its line (label, round, requests, requests/s, ticks, wall s, us/request) to
# $SAMPLES. Sets BENCH_US (CPU us/request).
bench_record() {
    BENCH_US=$(awk -v t="$BENCH_TICKS" -v k="$(getconf CLK_TCK)" -v n="$BENCH_REQUESTS" \
        'BEGIN { printf "%.3f", t * 1e6 / k / n }')
    bench_log "$1 $2: $BENCH_REQUESTS requests, $(printf '%.0f' "$BENCH_RPS") req/s," \
        "cpu $BENCH_TICKS ticks = $BENCH_US us/request"
    [ "$2" = warmup ] && return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$BENCH_REQUESTS" "$BENCH_RPS" \
        "$BENCH_TICKS" "$BENCH_WALL" "$BENCH_US" >>"$SAMPLES"
}

# bench_pair FN: runs FN's rounds (bench_rounds) for $A_LABEL ($a_pid, $a_port) against nginx
# ($b_pid, $b_port), stops both servers, and sets the figures of the side-by-side table: rss_a,
# rss_b (peak kB), a_version, and the medians cpu_a, cpu_b (us/request), rps_a, rps_b and use_a,
# use_b (CPU use).
bench_pair() {
    bench_rounds "$1" "$ROUNDS" "$A_LABEL" "$a_pid" "$a_port" nginx "$b_pid" "$b_port"
    rss_a=$(bench_status_kb VmHWM "$a_pid")
    rss_b=$(bench_status_kb VmHWM "$b_pid")
    bench_stop_proxy "$a_pid"
    bench_stop_proxy "$b_pid"
    a_version=$A_LABEL
    [ "$A_KIND" = portico ] && a_version=$("$PORTICO_BIN" version 2>&1 | head -1)
    cpu_a=$(bench_column "$A_LABEL" 7 | bench_median)
    cpu_b=$(bench_column nginx 7 | bench_median)
    rps_a=$(bench_column "$A_LABEL" 4 | bench_median)
    rps_b=$(bench_column nginx 4 | bench_median)
    # CPU use: the server's CPU time over the run's wall time (100 % = it was the bottleneck).
    use_a=$(bench_cpu_use "$A_LABEL")
    use_b=$(bench_cpu_use nginx)
}

bench_status_kb() { # FIELD PID: the largest FIELD (VmHWM, VmRSS) in kB among the tree's processes.
    local field=$1 p v m=0
    for p in $(bench_tree_pids "$2"); do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null)
        [ -n "$v" ] && [ "$v" -gt "$m" ] && m=$v
    done
    echo "$m"
}

bench_cg_total() { # DIR: the Ir total of the callgrind.out.* files in DIR, summed.
    local f v t=0 n=0
    for f in "$1"/callgrind.out.*; do
        [ -f "$f" ] || continue
        v=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
        [ -n "$v" ] || continue
        t=$((t + v))
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || return 1
    echo "$t"
}

# N LUA URL SECS DONE: wrk (2 threads, 32 connections) with the script LUA against URL in runs of
# SECS s, each run given its own argument ("r1", "r2", ...: a key prefix, so no key repeats),
# until N requests were made in all, counting from DONE; sets BENCH_WRK_DONE to that count.
# wrk runs for a time, not a count. Used by the key-flood benches (cache_memory.sh,
# ratelimit_keys.sh).
bench_wrk_until() {
    local want=$1 lua=$2 url=$3 secs=$4 run=0 out n
    BENCH_WRK_DONE=$5
    while [ "$BENCH_WRK_DONE" -lt "$want" ]; do
        run=$((run + 1))
        out=$(wrk -t2 -c32 "-d${secs}s" -s "$lua" "$url" -- "r$run")
        n=$(awk '/requests in/ { print $1 }' <<<"$out")
        if [ -z "$n" ] || [ "$n" -le 0 ]; then
            bench_die "wrk run $run made no requests"
        fi
        BENCH_WRK_DONE=$((BENCH_WRK_DONE + n))
        bench_log "run $run: $n requests, $BENCH_WRK_DONE in all"
    done
}

# DIR BIN PORT COUNT PATH STATUS LENGTH: runs BIN on DIR/portico.yaml (listening on PORT, which
# answers /health) under callgrind, sends COUNT requests for PATH on one keep-alive connection
# (each must answer STATUS with LENGTH body bytes, -1: any), stops it and sets BENCH_CG_IR to
# the run's Ir total (a variable, not output: it runs in the caller's shell, so a failure
# exits through the caller's cleanup, which knows the PID). The readiness probe is one request in every run, so it cancels out of a difference.
# Used by bench/route_scale.sh and bench/guards.sh; CG_TIMEOUT bounds the client.
# BENCH_CG_HEADER, when set, is one "Name: value" field every request sends.
bench_cg_portico() {
    local dir=$1 bin=$2 port=$3 n=$4 path=$5 status=$6 len=$7 pid
    valgrind --tool=callgrind --trace-children=no --dump-instr=no \
        "--callgrind-out-file=$dir/callgrind.out.%p" --log-file="$dir/valgrind.log" \
        "$bin" run -c "$dir/portico.yaml" >"$dir/stdout.log" 2>"$dir/stderr.log" &
    pid=$!
    BENCH_PIDS+=("$pid")
    bench_wait_http "http://127.0.0.1:$port/health" 90 "$pid" ||
        bench_die "portico did not start in $dir: $(tail -5 "$dir/stderr.log")"
    timeout --foreground "${CG_TIMEOUT:-300}" "$PYTHON" "$BENCH_LIB_DIR/client.py" \
        --port "$port" --count "$n" --path "$path" --status "$status" --length "$len" \
        ${BENCH_CG_HEADER:+--header "$BENCH_CG_HEADER"} \
        >/dev/null || bench_die "the client failed (see $dir)"
    BENCH_STOP_WAIT=60 bench_stop "$pid"
    bench_forget_pid "$pid"
    BENCH_CG_IR=$(bench_cg_total "$dir") || bench_die "no callgrind totals in $dir"
}

# Which implementation fills the "portico" slot: the real binary, or a labelled nginx stand-in.
bench_pick_portico() {
    if [ -x "$PORTICO_BIN" ]; then
        A_KIND=portico
        A_LABEL=portico
    else
        A_KIND=nginx
        A_LABEL="nginx-standin"
        bench_log "*** $PORTICO_BIN is not built: the 'portico' slot runs a SECOND NGINX,"
        bench_log "*** labelled nginx-standin. These figures say nothing about Portico."
    fi
}

# CPU layout: PROXY_CPUS, BACKEND_CPUS, WRK_CPUS (taskset lists) and BACKEND_WORKERS, each
# overridable by the BENCH_ variable of the same name. The proxy gets the first BENCH_WORKERS
# cores; on a 2-core machine the backend and wrk share the other one; with 4 or more cores the
# rest is split between the backend (first half) and wrk (second half).
bench_cpu_range() { [ "$1" = "$2" ] && echo "$1" || echo "$1-$2"; }

bench_cpu_layout() {
    local n w rest half
    n=$(nproc)
    w=${BENCH_WORKERS:-1}
    if [ "$n" -le 1 ]; then
        PROXY_CPUS=${BENCH_PROXY_CPUS:-0}
        BACKEND_CPUS=${BENCH_BACKEND_CPUS:-0}
        WRK_CPUS=${BENCH_WRK_CPUS:-0}
    elif [ "$n" -lt 4 ] || [ $((n - w)) -lt 2 ]; then
        PROXY_CPUS=${BENCH_PROXY_CPUS:-$(bench_cpu_range 0 $((w > n - 1 ? n - 2 : w - 1)))}
        BACKEND_CPUS=${BENCH_BACKEND_CPUS:-$((n - 1))}
        WRK_CPUS=${BENCH_WRK_CPUS:-$((n - 1))}
    else
        rest=$((n - w))
        half=$(((rest + 1) / 2))
        PROXY_CPUS=${BENCH_PROXY_CPUS:-$(bench_cpu_range 0 $((w - 1)))}
        BACKEND_CPUS=${BENCH_BACKEND_CPUS:-$(bench_cpu_range "$w" $((w + half - 1)))}
        WRK_CPUS=${BENCH_WRK_CPUS:-$(bench_cpu_range $((w + half)) $((n - 1)))}
    fi
    BACKEND_WORKERS=${BENCH_BACKEND_WORKERS:-$(taskset -c "$BACKEND_CPUS" nproc)}
}

# ---- side-by-side runs (bench/h2.sh, bench/compress.sh) ----
# Their samples file $SAMPLES is a TSV with a header line and the columns label, round,
# requests, requests/s, cpu_ticks, wall_s, cpu_us_per_req.

# bench_rounds FN ROUNDS LABEL_A PID_A PORT_A LABEL_B PID_B PORT_B: FN LABEL PID PORT ROUND for
# a warm-up ("warmup") of each, then ROUNDS rounds of both, alternating who goes first so a drift
# in the machine's speed does not favour one side.
bench_rounds() {
    local fn=$1 rounds=$2 round
    shift 2
    "$fn" "$1" "$2" "$3" warmup
    "$fn" "$4" "$5" "$6" warmup
    for ((round = 1; round <= rounds; round++)); do
        if ((round % 2)); then
            "$fn" "$1" "$2" "$3" "$round"
            "$fn" "$4" "$5" "$6" "$round"
        else
            "$fn" "$4" "$5" "$6" "$round"
            "$fn" "$1" "$2" "$3" "$round"
        fi
    done
}

# bench_column LABEL FIELD: one field of LABEL's samples, one value a line.
bench_column() { awk -F'\t' -v l="$1" -v f="$2" 'NR > 1 && $1 == l { print $f }' "$SAMPLES"; }
bench_median() { # the median of the numbers on stdin
    sort -g | awk '{ a[NR] = $1 }
        END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
bench_range() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'; }
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
# bench_cpu_use LABEL: the median of LABEL's CPU time over wall time, in % (100: the bottleneck).
bench_cpu_use() {
    awk -F'\t' -v l="$1" -v k="$(getconf CLK_TCK)" 'NR > 1 && $1 == l { print 100 * $5 / k / $6 }' \
        "$SAMPLES" | bench_median
}
