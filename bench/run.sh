#!/usr/bin/env bash
# Side-by-side benchmark: Portico vs nginx as a reverse proxy in front of the same nginx backend.
# `make bench` runs this. See bench/README.md for what is measured and how to read it.
#
# Steps: (1) throughput/latency/CPU/RSS with wrk, the two proxies interleaved round by round, for
# each scenario (small3: the small body through three targets, compared with small's one target
# at the end of the table by bench/targets.py); (2) memory with 10,000 idle keep-alive connections
# (bench/idle_conns.py); (3) instructions per request under callgrind (bench/callgrind.sh). The
# scenarios of step 1 also cover files (static1k, static1m: Portico's `static` action and nginx's
# `root` serving one generated folder) and TLS (https: keep-alive requests through a TLS listener;
# https_new: full handshakes per second with `openssl s_time -new`, no resumption). Prints
# a table and writes it, with the raw wrk outputs, under build/bench/ (latest.txt is the newest).
#
# Env (defaults): BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_CONNS (50), BENCH_THREADS (1),
# BENCH_WARMUP (1 s), BENCH_WORKERS (1: Portico workers and nginx worker_processes),
# BENCH_SCENARIOS ("small small3 64k static1k static1m https https_new"), BENCH_HS_CLIENTS (2:
# parallel s_time clients in https_new), BENCH_IDLE (1), BENCH_IDLE_CONNS (10000),
# BENCH_CALLGRIND (1),
# BENCH_PROXY_CPUS / BENCH_BACKEND_CPUS / BENCH_WRK_CPUS (taskset lists; see bench_cpu_layout),
# PORTICO_BIN (build/portico; when missing a second nginx, labelled nginx-standin, takes its slot),
# NGINX_BIN (nginx), PYTHON (/usr/bin/python3).
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-50}
THREADS=${BENCH_THREADS:-1}
WARMUP=${BENCH_WARMUP:-1}
WORKERS=${BENCH_WORKERS:-1}
SCENARIOS=${BENCH_SCENARIOS:-small small3 64k static1k static1m https https_new}
HS_CLIENTS=${BENCH_HS_CLIENTS:-2}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
CLK_TCK=$(getconf CLK_TCK)

for tool in wrk "$NGINX_BIN" taskset curl "$PYTHON"; do
    command -v "$tool" >/dev/null || bench_die "$tool is not installed (make deps-test)"
done
bench_init
bench_cpu_layout
bench_pick_portico
RUN_DIR=$BENCH_OUT/run-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR"
SAMPLES=$RUN_DIR/samples.tsv
: >"$SAMPLES"
bench_log "results go to $RUN_DIR"
bench_log "cpus: proxy $PROXY_CPUS, backend $BACKEND_CPUS ($BACKEND_WORKERS workers), wrk $WRK_CPUS"

bench_start_backend "$BACKEND_CPUS" "$BACKEND_WORKERS"

# SCENARIO: "PATH LENGTH TARGETS MODE SCHEME CLIENT"; MODE is bench_start_proxy's
# BENCH_PROXY_MODE, CLIENT wrk (keep-alive requests) or stime (new TLS handshakes).
scenario_path() {
    case $1 in
    small) echo "/small 13 1 proxy http wrk" ;;
    small3) echo "/small 13 3 proxy http wrk" ;;
    64k) echo "/64k.bin 65536 1 proxy http wrk" ;;
    static1k) echo "/1k.bin 1024 1 static http wrk" ;;
    static1m) echo "/1m.bin 1048576 1 static http wrk" ;;
    https) echo "/small 13 1 tls https wrk" ;;
    https_new) echo "/small 13 1 tls https stime" ;;
    *) bench_die "unknown scenario $1 (small, small3, 64k, static1k, static1m, https, https_new)" ;;
    esac
}

# check_spread LABEL PID: after a warm-up of a three-target scenario, the proxy must hold
# connections to each of the backend's three ports (else it is not balancing over them).
check_spread() {
    local port n
    for port in "$BACKEND_PORT" "$BACKEND_PORT2" "$BACKEND_PORT3"; do
        n=$(bench_upstream_conns "$2" "$port")
        [ "$n" = "?" ] && {
            bench_log "ss not found: not checking that $1 uses all three targets"
            return 0
        }
        [ "$n" -gt 0 ] || bench_die "$1 holds no connection to target port $port after warm-up"
    done
    bench_log "$1: connections to the three targets: $(bench_upstream_conns "$2" \
        "$BACKEND_PORT") / $(bench_upstream_conns "$2" "$BACKEND_PORT2") /" \
        "$(bench_upstream_conns "$2" "$BACKEND_PORT3")"
}

# check_200 LABEL PORT PATH LENGTH [SCHEME]: one request through the proxy must be a 200 of
# LENGTH bytes. For static files the body must also equal the file on disk.
check_200() {
    local got scheme=${5:-http} body="$RUN_DIR/check-body"
    got=$(curl -k -s -o "$body" -m 10 -w '%{http_code} %{size_download}' \
        "$scheme://127.0.0.1:$2$3")
    [ "$got" = "200 $4" ] || bench_die "$1: GET $scheme $3 answered '$got', expected '200 $4'"
    if [ "$mode" = static ] && ! cmp -s "$body" "$STATIC_ROOT$3"; then
        bench_die "$1: GET $3 answered 200 with a body that differs from $STATIC_ROOT$3"
    fi
    rm -f "$body"
}

# check_tls LABEL PORT: what a default client negotiates with the proxy (protocol, cipher suite,
# signature type, key exchange), logged; sets TLS_SEEN_A (the first slot) or TLS_SEEN_nginx, which must
# match for the comparison to be like for like.
check_tls() {
    local seen
    seen=$(timeout 10 openssl s_client -connect "127.0.0.1:$2" -brief </dev/null 2>&1 |
        sed -n 's/^\(Protocol version\|Ciphersuite\|Signature type\|Server Temp Key\): *//p' |
        paste -sd, -)
    [ -n "$seen" ] || bench_die "$1: openssl s_client could not complete a handshake on port $2"
    bench_log "$1 TLS: $seen"
    if [ "$1" = nginx ]; then TLS_SEEN_nginx=$seen; else TLS_SEEN_A=$seen; fi
}

# run_wrk SCENARIO LABEL PID PORT PATH ROUND: one wrk run; appends a line to $SAMPLES unless
# ROUND is "warmup". Fails loudly on any non-2xx/3xx response. The URL's scheme is $scheme.
run_wrk() {
    local scen=$1 label=$2 pid=$3 port=$4 path=$5 round=$6 secs=$SECS out
    [ "$client" = stime ] && {
        run_stime "$@"
        return
    }
    [ "$round" = warmup ] && secs=$WARMUP
    out="$RUN_DIR/wrk-$scen-$label-$round.txt"
    bench_wrk "$pid" "$out" "$label ($scen)" "$secs" "$scheme://127.0.0.1:$port$path"
    bench_log "$scen $label $round: $(printf '%.0f req/s, p50 %.0f us, p99 %.0f us' \
        "$BENCH_RPS" "$BENCH_P50_US" "$BENCH_P99_US"), cpu $BENCH_TICKS ticks"
    [ "$round" = warmup ] && return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$label" "$round" "$BENCH_RPS" \
        "$BENCH_P50_US" "$BENCH_P99_US" "$BENCH_REQUESTS" "$BENCH_TICKS" \
        "$(bench_status_kb VmHWM "$pid")" "$BENCH_WALL" >>"$SAMPLES"
}

# run_stime SCENARIO LABEL PID PORT PATH ROUND: new TLS handshakes for $SECS s (ROUND "warmup":
# $WARMUP s) from $HS_CLIENTS parallel `openssl s_time -new` clients (a full handshake per
# connection, never a resumed session; handshake only, no request), then the same line in
# $SAMPLES as run_wrk, with handshakes in place of requests and no latency figures ("-").
# A client that fails (a refused or failed handshake) stops the benchmark.
run_stime() {
    local scen=$1 label=$2 pid=$3 port=$4 round=$6 secs=$SECS t0 t1 w0 w1 i n=0 k pids=()
    local rps base
    [ "$round" = warmup ] && secs=$WARMUP
    base="$RUN_DIR/stime-$scen-$label-$round"
    t0=$(bench_cpu_ticks "$pid")
    w0=$(date +%s.%N)
    for ((i = 1; i <= HS_CLIENTS; i++)); do
        timeout --foreground $((secs + 30)) taskset -c "$WRK_CPUS" openssl s_time \
            -connect "127.0.0.1:$port" -new -time "$secs" >"$base-$i.txt" 2>&1 &
        pids+=($!)
        BENCH_PIDS+=("$!")
    done
    for ((i = 1; i <= HS_CLIENTS; i++)); do
        wait "${pids[$((i - 1))]}" ||
            bench_die "openssl s_time failed for $label ($scen): $(tail -5 "$base-$i.txt")"
        bench_forget_pid "${pids[$((i - 1))]}"
    done
    w1=$(date +%s.%N)
    t1=$(bench_cpu_ticks "$pid")
    [ -d "/proc/$pid" ] || bench_die "$label died during the $scen run"
    for ((i = 1; i <= HS_CLIENTS; i++)); do
        ! grep -q ERROR "$base-$i.txt" ||
            bench_die "$label ($scen): s_time reports an error, see $base-$i.txt"
        k=$(sed -n 's/^\([0-9][0-9]*\) connections in [0-9]* real seconds.*/\1/p' "$base-$i.txt")
        [ -n "$k" ] || bench_die "cannot parse s_time output $base-$i.txt"
        n=$((n + k))
    done
    [ "$n" -gt 0 ] || bench_die "$label ($scen): no handshake completed, see $base-*.txt"
    rps=$(awk -v n="$n" -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", n / (b - a) }')
    bench_log "$scen $label $round: $n handshakes, $rps/s, cpu $((t1 - t0)) ticks"
    [ "$round" = warmup ] && return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$label" "$round" "$rps" - - \
        "$n" "$((t1 - t0))" "$(bench_status_kb VmHWM "$pid")" \
        "$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')" >>"$SAMPLES"
}

for scen in $SCENARIOS; do
    read -r path length targets mode scheme client <<<"$(scenario_path "$scen")"
    BENCH_PROXY_MODE=$mode BENCH_PROXY_TARGETS=$targets bench_start_proxy "$A_KIND" \
        "$A_LABEL-$scen" "$PROXY_CPUS" "$WORKERS"
    a_pid=$PROXY_PID a_port=$PROXY_PORT
    BENCH_PROXY_MODE=$mode BENCH_PROXY_TARGETS=$targets bench_start_proxy nginx "nginx-$scen" \
        "$PROXY_CPUS" "$WORKERS"
    b_pid=$PROXY_PID b_port=$PROXY_PORT
    bench_log "scenario $scen: $A_LABEL pid $a_pid port $a_port; nginx pid $b_pid port $b_port"
    check_200 "$A_LABEL" "$a_port" "$path" "$length" "$scheme"
    check_200 nginx "$b_port" "$path" "$length" "$scheme"
    if [ "$scheme" = https ]; then
        check_tls "$A_LABEL" "$a_port"
        check_tls nginx "$b_port"
        [ "$TLS_SEEN_A" = "$TLS_SEEN_nginx" ] ||
            bench_die "the proxies negotiate different TLS: $TLS_SEEN_A / $TLS_SEEN_nginx"
    fi
    run_wrk "$scen" "$A_LABEL" "$a_pid" "$a_port" "$path" warmup
    run_wrk "$scen" nginx "$b_pid" "$b_port" "$path" warmup
    if [ "$targets" = 3 ]; then
        check_spread "$A_LABEL" "$a_pid"
        check_spread nginx "$b_pid"
    fi
    for ((round = 1; round <= ROUNDS; round++)); do
        # Alternate who goes first so a drift in the machine's speed does not favour one side.
        if ((round % 2)); then
            run_wrk "$scen" "$A_LABEL" "$a_pid" "$a_port" "$path" "$round"
            run_wrk "$scen" nginx "$b_pid" "$b_port" "$path" "$round"
        else
            run_wrk "$scen" nginx "$b_pid" "$b_port" "$path" "$round"
            run_wrk "$scen" "$A_LABEL" "$a_pid" "$a_port" "$path" "$round"
        fi
    done
    bench_stop_proxy "$a_pid"
    bench_stop_proxy "$b_pid"
done

idle_args=()
if [ "${BENCH_IDLE:-1}" != 0 ]; then
    IDLE_TSV=$RUN_DIR/idle.tsv
    : >"$IDLE_TSV"
    for side in "$A_KIND $A_LABEL" "nginx nginx"; do
        read -r kind label <<<"$side"
        # nginx needs a connection slot per client and per upstream connection, allocated up front.
        wconn=$((IDLE_CONNS + 1024))
        [ "$wconn" -le "$BENCH_NOFILE" ] || wconn=$BENCH_NOFILE
        BENCH_NGINX_WCONN=$wconn bench_start_proxy "$kind" "$label-idle" "$PROXY_CPUS" "$WORKERS"
        timeout --foreground 300 taskset -c "$WRK_CPUS" "$PYTHON" "$BENCH_LIB_DIR/idle_conns.py" \
            --port "$PROXY_PORT" --pid "$PROXY_PID" --conns "$IDLE_CONNS" --label "$label" \
            --tsv "$IDLE_TSV" || bench_die "idle connections test failed for $label"
        bench_stop_proxy "$PROXY_PID"
    done
    idle_args=(--idle "$IDLE_TSV")
fi

bench_stop_proxy "$BACKEND_PID"

cg_args=()
if [ "${BENCH_CALLGRIND:-1}" != 0 ]; then
    PORTICO_BIN=$PORTICO_BIN BENCH_OUT=$BENCH_OUT "$BENCH_LIB_DIR/callgrind.sh" \
        "$RUN_DIR/callgrind.tsv" || bench_die "callgrind step failed"
    cg_args=(--callgrind "$RUN_DIR/callgrind.tsv")
fi

a_version=$A_LABEL
if [ "$A_KIND" = portico ]; then
    a_version=$("$PORTICO_BIN" version 2>&1 | head -1)
fi
"$PYTHON" "$BENCH_LIB_DIR/report.py" table --samples "$SAMPLES" "${idle_args[@]}" \
    "${cg_args[@]}" --meta "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" "cpus=$(nproc)" \
    "proxy_cpus=$PROXY_CPUS" "backend_cpus=$BACKEND_CPUS" "wrk_cpus=$WRK_CPUS" \
    "workers=$WORKERS" "wrk=-t$THREADS/-c$CONNS/${SECS}s" "rounds=$ROUNDS" "clk_tck=$CLK_TCK" \
    "a=$a_version" "b=$("$NGINX_BIN" -v 2>&1 | sed 's/.*version: //')" >"$RUN_DIR/report.txt" ||
    bench_die "report failed"
if grep -q '^small3' "$SAMPLES" && grep -q '^small	' "$SAMPLES"; then
    "$PYTHON" "$BENCH_LIB_DIR/targets.py" --samples "$SAMPLES" --clk-tck "$CLK_TCK" \
        >>"$RUN_DIR/report.txt" || bench_die "three-target comparison failed"
fi
cp "$RUN_DIR/report.txt" "$BENCH_OUT/latest.txt"
echo
cat "$RUN_DIR/report.txt"
bench_log "table: $BENCH_OUT/latest.txt; raw data: $RUN_DIR"
