#!/usr/bin/env bash
# Rate-limit accuracy (issue 13, "Tests and measurements"): Portico with workers: 2 and
# `rate_limit: {rate: 100/s, burst: 20}` (keyed by the client address) on a route answering a
# fixed 200, and a paced client (bench/paced.py) offering a constant 1,000 requests/s for 10 s
# over 16 keep-alive connections from 127.0.0.1 (the kernel spreads them over both workers).
# It counts the 200s (admitted) and 429s and prints admitted against what the limit allows:
# rate x duration + burst (1,020 for the defaults), and against rate x the measured sending
# time + burst; the target is within +-5%. `make bench-ratelimit` runs it.
#
# Env (defaults): BENCH_RL_RATE (100), BENCH_RL_BURST (20), BENCH_RL_OFFERED (1000 req/s),
# BENCH_RL_SECONDS (10), BENCH_RL_CONNS (16), BENCH_WORKERS (2), PORTICO_BIN (build/portico).
# Quick mode: BENCH_QUICK=1 offers for 3 s.
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

RATE=${BENCH_RL_RATE:-100}
BURST=${BENCH_RL_BURST:-20}
OFFERED=${BENCH_RL_OFFERED:-1000}
SECONDS_=${BENCH_RL_SECONDS:-10}
[ "${BENCH_QUICK:-0}" = 1 ] && SECONDS_=${BENCH_RL_SECONDS:-3}
CONNS=${BENCH_RL_CONNS:-16}
WORKERS=${BENCH_WORKERS:-2}
[ -x "$PORTICO_BIN" ] || bench_die "no Portico binary at $PORTICO_BIN (make)"
bench_init

pdir=$BENCH_TMP/portico
mkdir -p "$pdir"
PORT=$(bench_free_port)
cat >"$pdir/portico.yaml" <<YAML
workers: $WORKERS
listen: [{addr: "127.0.0.1:$PORT"}]
log: {level: warn, access: "off"}
routes:
  - match: /health
    respond: {status: 200, body: "ok\n"}
  - match: "/*"
    respond: {status: 200, body: "ok\n"}
    rate_limit: {rate: $RATE/s, burst: $BURST}
YAML
"$PORTICO_BIN" run -c "$pdir/portico.yaml" >"$pdir/stdout.log" 2>"$pdir/stderr.log" &
PID=$!
BENCH_PIDS+=("$PID")
bench_wait_http "http://127.0.0.1:$PORT/health" 10 "$PID" || bench_die "portico did not start"

bench_log "offering $OFFERED req/s for ${SECONDS_}s against $RATE/s (burst $BURST), $WORKERS workers"
out=$("$PYTHON" "$BENCH_LIB_DIR/paced.py" --port "$PORT" --rate "$OFFERED" \
    --seconds "$SECONDS_" --conns "$CONNS" --path /limited) || bench_die "the paced client failed"
bench_stop "$PID"
bench_forget_pid "$PID"
"$PYTHON" - "$out" "$RATE" "$BURST" "$SECONDS_" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
rate, burst, secs = float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ok, refused = r["status"].get("200", 0), r["status"].get("429", 0)
other = sum(v for k, v in r["status"].items() if k not in ("200", "429"))
allowed = rate * secs + burst
# The first request is admitted at once, then one per interval until the last was sent.
allowed_measured = rate * r["elapsed"] + burst
err = (ok - allowed) / allowed * 100
print("offered                  %d in %.2f s (%d sent late by > 5 ms)" %
      (r["offered"], r["elapsed"], r["late"]))
print("admitted (200)           %d" % ok)
print("refused (429)            %d" % refused)
if other:
    print("other statuses           %d: %s" % (other, r["status"]))
print("allowed                  %.0f (rate x %.0f s + burst)" % (allowed, secs))
print("error                    %+.2f%% (target within +-5%%): %s" %
      (err, "PASS" if abs(err) <= 5 and not other else "FAIL"))
print("allowed, measured time   %.0f (rate x %.2f s + burst): %+.2f%%" %
      (allowed_measured, r["elapsed"], (ok - allowed_measured) / allowed_measured * 100))
PY
