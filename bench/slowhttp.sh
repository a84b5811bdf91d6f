#!/usr/bin/env bash
# Slow-client attacks against Portico (issue #13, "Connection and slow-client limits"): Debian's
# slowhttptest in its three modes, one after the other, against one Portico on 127.0.0.1 with
# its default limits, while a probe loop sends a normal request every ~100 ms and records how
# long each took. `make bench-slowhttp` runs this. See bench/README.md ("Slow clients").
#
#   slow headers (-H)  each connection sends a header line every SLOWHTTP_INTERVAL s, never the
#                      blank line: closed at header_timeout (10 s), whatever it sends;
#   slow body (-B)     a POST with Content-Length 8192 whose body comes a few bytes every
#                      SLOWHTTP_INTERVAL s, to a proxy route (Portico streams request bodies,
#                      so each holds an upstream request open: the backend, an nginx from
#                      conf/backend-slowhttp.conf.in, answers once it has the whole body):
#                      refused (408) when the client falls below body_min_rate;
#   slow read (-X)     GET of a 1 MiB file (3 times per connection, pipelined) read through a
#                      tiny window a few bytes a second: closed below send_min_rate.
#
# Per mode: slowhttptest's own verdict ("service available"), the most connections it held at
# once (peak_connected), Portico's own count of open client connections every 2 s (its peak,
# and at the mode's end: slowhttptest keeps counting a reset slow reader as connected), and
# from the probe loop (curl --max-time PROBE_MAX_TIME, a new connection each time):
# probes sent, probes failed (no 200 within the time), median and max latency. A mode passes
# when no probe failed and the max probe latency is under 1 s. The table is printed and written
# to build/bench/slowhttp-latest.txt; raw outputs go to build/bench/slowhttp-YYYYMMDD-HHMMSS/.
#
# Env (defaults): SLOWHTTP_CONNS (10000), SLOWHTTP_RATE (connections opened per second: 1000),
# SLOWHTTP_SECONDS (length of each mode: 60), SLOWHTTP_INTERVAL (seconds between an attacker's
# follow-up bytes: 5), SLOWHTTP_MODES ("H B X"), SLOWHTTP_WORKERS (Portico workers: 2),
# PROBE_MAX_TIME (2 s), SLOWHTTP_LIMITS (a YAML mapping for Portico's limits:, e.g.
# "{header_timeout: 60s}" to let slow heads stay open longer; default: Portico's defaults),
# PORTICO_BIN (build/portico), BENCH_KEEP_TMP (0).
# Quick mode for development: SLOWHTTP_QUICK=1 (500 connections, 15 s a mode).
#
# Only 127.0.0.1: the attack never leaves the machine. The open-file limit is raised as far as
# the hard limit allows (bench_init); 10,000 connections need about 10,100 descriptors on each
# side, so the hard limit must be at least 20,000 (this machine's).
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "${SLOWHTTP_QUICK:-0}" = 1 ]; then
    : "${SLOWHTTP_CONNS:=500}" "${SLOWHTTP_SECONDS:=15}" "${SLOWHTTP_RATE:=250}"
fi
CONNS=${SLOWHTTP_CONNS:-10000}
RATE=${SLOWHTTP_RATE:-1000}
SECS=${SLOWHTTP_SECONDS:-60}
INTERVAL=${SLOWHTTP_INTERVAL:-5}
MODES=${SLOWHTTP_MODES:-H B X}
WORKERS=${SLOWHTTP_WORKERS:-2}
PROBE_MAX=${PROBE_MAX_TIME:-2}
LIMITS=${SLOWHTTP_LIMITS:-"{}"}

command -v slowhttptest >/dev/null || bench_die "slowhttptest is missing (apt-get install slowhttptest)"
command -v curl >/dev/null || bench_die "curl is missing"
[ -x "$PORTICO_BIN" ] || bench_die "no Portico binary at $PORTICO_BIN (make build/portico)"

bench_init
[ "$(ulimit -n)" -ge $((CONNS + 1000)) ] ||
    bench_die "open-file limit $(ulimit -n) is too low for $CONNS connections"
RUN_DIR=$BENCH_OUT/slowhttp-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR"

# The backend for the slow bodies (bench_start_backend: nginx, its own prefix and ports).
BENCH_BACKEND_CONF=backend-slowhttp.conf.in bench_start_backend "0-$(($(nproc) - 1))" 1

# The site: a small page for the probes and the slow headers, a 1 MiB file for the slow read.
mkdir -p "$BENCH_TMP/www"
echo "probe ok" >"$BENCH_TMP/www/index.html"
head -c $((1 << 20)) /dev/zero >"$BENCH_TMP/www/big.bin"
PORT=$(bench_free_port)
cat >"$BENCH_TMP/portico.yaml" <<EOF
listen: [{addr: "127.0.0.1:$PORT"}]
workers: $WORKERS
log: {level: warn, access: "off"}
limits: $LIMITS
routes:
  - {match: /post, proxy: {to: "http://127.0.0.1:$BACKEND_PORT"}}
  - {match: "/*", static: {root: "$BENCH_TMP/www"}}
EOF
"$PORTICO_BIN" run -c "$BENCH_TMP/portico.yaml" >"$RUN_DIR/portico.log" 2>&1 &
PPID_PORTICO=$!
BENCH_PIDS+=("$PPID_PORTICO")
bench_wait_http "http://127.0.0.1:$PORT/" 10 "$PPID_PORTICO" || bench_die "Portico did not start"

# Probes: one GET every ~100 ms on a new connection, until STOP exists; a line per probe: status
# (000: none within PROBE_MAX), total seconds, seconds to connect, and the wall-clock time.
probe_loop() { # OUT STOPFILE
    while [ ! -e "$2" ]; do
        curl -s -o /dev/null --max-time "$PROBE_MAX" -w "%{http_code} %{time_total} %{time_connect} $(date +%s.%N)\n" \
            "http://127.0.0.1:$PORT/" >>"$1" 2>/dev/null || echo "000 $PROBE_MAX - $(date +%s.%N)" >>"$1"
        sleep 0.1
    done
}

# Portico's own count of open client connections, every 2 s until STOP exists (slowhttptest's
# "connected" keeps counting a slow reader Portico has reset until it reads that far).
conn_loop() { # OUT STOPFILE
    while [ ! -e "$2" ]; do
        ss -Htn state established "( sport = :$PORT )" 2>/dev/null | wc -l >>"$1"
        sleep 2
    done
}

summary() { # PROBEFILE: "sent failed median_ms max_ms"
    "$PYTHON" - "$1" "$PROBE_MAX" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
lat = [float(r[1]) for r in rows]
failed = sum(1 for r in rows if r[0] != "200")
if not lat:
    print("0 0 - -")
else:
    print(len(rows), failed, "%.1f" % (statistics.median(lat) * 1000), "%.1f" % (max(lat) * 1000))
PY
}

printf 'mode\tconnections\tseconds\tpeak_connected\tportico_peak\tportico_end\tslowhttptest_available\tprobes\tfailed\tmedian_ms\tmax_ms\tverdict\n' \
    >"$RUN_DIR/table.tsv"
all_ok=1
for m in $MODES; do
    case $m in
    H) args=(-H -u "http://127.0.0.1:$PORT/") ;;
    B) args=(-B -s 8192 -t POST -u "http://127.0.0.1:$PORT/post") ;;
    X) args=(-X -k 3 -n 1 -w 10 -y 20 -z 32 -u "http://127.0.0.1:$PORT/big.bin") ;;
    *) bench_die "unknown mode $m (H, B or X)" ;;
    esac
    probes=$RUN_DIR/probes-$m.txt stop=$RUN_DIR/stop-$m
    : >"$probes"
    probe_loop "$probes" "$stop" &
    probe_pid=$!
    BENCH_PIDS+=("$probe_pid")
    : >"$RUN_DIR/conns-$m.txt"
    conn_loop "$RUN_DIR/conns-$m.txt" "$stop" &
    conn_pid=$!
    BENCH_PIDS+=("$conn_pid")
    bench_log "mode -$m: $CONNS connections at $RATE/s for $SECS s"
    timeout $((SECS + 60)) slowhttptest "${args[@]}" -c "$CONNS" -r "$RATE" -i "$INTERVAL" \
        -l "$SECS" -p 3 -v 1 >"$RUN_DIR/slowhttptest-$m.txt" 2>&1
    touch "$stop"
    wait "$probe_pid" "$conn_pid" 2>/dev/null
    bench_forget_pid "$probe_pid"
    bench_forget_pid "$conn_pid"
    pk=$(sort -n "$RUN_DIR/conns-$m.txt" | tail -1)
    last=$(tail -1 "$RUN_DIR/conns-$m.txt")
    [ -d "/proc/$PPID_PORTICO" ] || bench_die "Portico died during mode -$m (see $RUN_DIR/portico.log)"
    sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$RUN_DIR/slowhttptest-$m.txt" >"$RUN_DIR/slowhttptest-$m.log"
    peak=$(grep -o 'connected: *[0-9]*' "$RUN_DIR/slowhttptest-$m.log" | grep -o '[0-9]*' |
        sort -n | tail -1)
    avail=$(grep -o 'service available: *[A-Z]*' "$RUN_DIR/slowhttptest-$m.log" | awk '{print $3}' |
        sort | uniq -c | awk '{printf "%s%s=%s", sep, $2, $1; sep=","}')
    ended=$(grep -o 'Exit status: .*' "$RUN_DIR/slowhttptest-$m.log" | tail -1)
    bench_log "mode -$m: slowhttptest ${ended:-gave no exit status}"
    read -r sent failed med mx < <(summary "$probes")
    verdict=ok
    if [ "$sent" = 0 ] || [ "$failed" != 0 ] || ! awk -v m="$mx" 'BEGIN { exit !(m < 1000) }'; then
        verdict=FAIL
        all_ok=0
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "-$m" "$CONNS" "$SECS" \
        "${peak:-?}" "${pk:-?}" "${last:-?}" "${avail:-?}" "$sent" "$failed" "$med" "$mx" "$verdict" >>"$RUN_DIR/table.tsv"
    sleep 2 # let the last attack connections go
done
grep -i 'slow_client\|too slow' "$RUN_DIR/portico.log" | tail -3 >"$RUN_DIR/portico-slow-sample.txt"
column -t -s "$(printf '\t')" "$RUN_DIR/table.tsv" | tee "$BENCH_OUT/slowhttp-latest.txt"
bench_log "raw outputs in $RUN_DIR"
[ "$all_ok" = 1 ]
