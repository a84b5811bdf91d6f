#!/usr/bin/env bash
# The WAF's CPU per request: Portico's WAF (libmodsecurity3 + the OWASP CRS 3.3 of Debian's
# modsecurity-crs, paranoia level 1, the default profile waf/profile-api-*.conf) against Debian's
# nginx with libnginx-mod-http-modsecurity running the same CRS and profile
# (conf/nginx-waf.conf.in, rules written by lib.sh's bench_waf_rules), each with its WAF off and
# on, in front of the same backend: an nginx answering every request `return 200` with its body
# read and dropped (conf/backend-waf.conf.in). `make bench-waf` runs this.
#
# nginx runs three ways: the WAF off, on with the default profile, on with the stock CRS (the
# profile's own cost is the difference). The request mix is the clean set of the WAF tests
# (tests/waf/clean.json, HEAD requests left out): browser pages and assets, form posts, JSON API
# calls, a third of them with a body, sent in turn by one wrk Lua script ($RUN_DIR/mix.lua, made
# from the set). Every answer must be a 200: a WAF that refused a clean request under load stops
# the run.
#
# Portico runs only when the built binary has the WAF: `portico check` must accept a config with
# `waf: {mode: block}` (conf/portico-waf.yaml.in). Until then the nginx half runs alone and the
# report says Portico's is not available.
#
# Per run: the proxy's CPU (utime+stime ticks of its process tree, /proc/PID/stat, delta over the
# run) divided by the requests wrk completed, and wrk's requests/s. After a warm-up run each (not
# recorded), BENCH_ROUNDS rounds run every variant, the order rotating each round. Prints medians
# per variant, the WAF's own cost (on - off) per proxy, the profile's (nginx: profile - stock),
# and the ratio Portico/nginx; writes the table to build/bench/waf-latest.txt, the raw data to
# build/bench/waf-YYYYMMDD-HHMMSS/.
#
# Then, unless BENCH_CALLGRIND=0, each variant runs under valgrind's callgrind (one worker) and a
# sequential keep-alive client sends BENCH_CG_N1 (54: the mix once) and BENCH_CG_N2 (162) requests:
# the instructions per request, (Ir(N2) - Ir(N1)) / (N2 - N1), do not depend on what else the
# machine runs, as the CPU time does.
#
# Env (defaults): BENCH_QUICK=1 (1 round of 2 s after a 1 s warm-up, no callgrind: a smoke run),
# BENCH_ROUNDS (5), BENCH_SECONDS (5 per run), BENCH_WARMUP (1 s), BENCH_CONNS (16),
# BENCH_WORKERS (1: Portico workers and nginx worker_processes), BENCH_PROXY_CPUS /
# BENCH_BACKEND_CPUS / BENCH_WRK_CPUS (see bench_cpu_layout), PORTICO_BIN (build/portico),
# NGINX_BIN (nginx), BENCH_KEEP_TMP (0).
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    ROUNDS=${BENCH_ROUNDS:-1} SECS=${BENCH_SECONDS:-2} WARMUP=${BENCH_WARMUP:-1}
    CALLGRIND=${BENCH_CALLGRIND:-0}
else
    ROUNDS=${BENCH_ROUNDS:-5} SECS=${BENCH_SECONDS:-5} WARMUP=${BENCH_WARMUP:-1}
    CALLGRIND=${BENCH_CALLGRIND:-1}
fi
CONNS=${BENCH_CONNS:-16}
WORKERS=${BENCH_WORKERS:-1}
CLK_TCK=$(getconf CLK_TCK)
MODSEC_SO=/usr/share/nginx/modules/ngx_http_modsecurity_module.so

for tool in wrk "$NGINX_BIN" taskset curl "$PYTHON"; do
    command -v "$tool" >/dev/null || bench_die "$tool is not installed (make deps-test)"
done
[ -f "$MODSEC_SO" ] ||
    bench_die "$MODSEC_SO is missing (apt-get install libnginx-mod-http-modsecurity)"
for v in ROUNDS SECS WARMUP CONNS WORKERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer, not '${!v}'"
done
bench_init
bench_cpu_layout
RUN_DIR=$BENCH_OUT/waf-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR"
SAMPLES=$RUN_DIR/samples.tsv
printf 'proxy\tround\trequests\treq_per_s\tcpu_ticks\twall_s\tcpu_us_per_req\n' >"$SAMPLES"
bench_log "results go to $RUN_DIR"
bench_log "cpus: proxy $PROXY_CPUS, backend $BACKEND_CPUS, wrk $WRK_CPUS"

# Does the built Portico have the WAF? `check` on a config with `waf:` says so.
PORTICO_WAF=0
PORTICO_WHY="$PORTICO_BIN is not built"
if [ -x "$PORTICO_BIN" ]; then
    probe=$BENCH_TMP/waf-probe.yaml
    printf '%s\n' 'listen: [{addr: "127.0.0.1:8080"}]' 'routes:' '  - match: "/*"' \
        '    respond: {status: 200}' '    waf: {mode: block}' >"$probe"
    if "$PORTICO_BIN" check -c "$probe" >"$BENCH_TMP/waf-probe.log" 2>&1; then
        PORTICO_WAF=1
    else
        PORTICO_WHY="$PORTICO_BIN has no WAF yet: $(head -1 "$BENCH_TMP/waf-probe.log")"
    fi
fi
[ "$PORTICO_WAF" = 1 ] || bench_log "*** Portico's WAF is not available: $PORTICO_WHY; nginx only"

# The request mix: the clean set as a wrk script, the requests sent in turn.
"$PYTHON" - "$BENCH_ROOT/tests/waf/clean.json" "$RUN_DIR/mix.lua" <<'PY' ||
import json, sys
sys.path.insert(0, sys.argv[1].rsplit("/", 1)[0])
import run_sets

def lua(b):
    return '"' + "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else "\\%03d" % c
                         for c in b) + '"'

reqs = [r for r in run_sets.load_set(sys.argv[1]) if r.get("method", "GET") != "HEAD"]
with open(sys.argv[2], "w") as f:
    f.write("-- %d requests of tests/waf/clean.json, in turn (bench/waf.sh)\n" % len(reqs))
    f.write("local reqs = {\n")
    for r in reqs:
        f.write("  %s,\n" % lua(run_sets.encode(dict(r, headers=dict(r.get("headers", {}),
                                                                       Connection="keep-alive")))))
    f.write("}\nlocal i = 0\nrequest = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n")
PY
    bench_die "cannot write the wrk script from tests/waf/clean.json"
MIX_BODIES=$(grep -c 'Content-Length' "$RUN_DIR/mix.lua")
MIX_N=$(grep -c '^  "' "$RUN_DIR/mix.lua")

BENCH_BACKEND_CONF=backend-waf.conf.in bench_start_backend "$BACKEND_CPUS" "$BACKEND_WORKERS"
RULES=$(bench_waf_rules "$BENCH_TMP/modsec" api 1 Off) || exit 1
RULES_STOCK=$(bench_waf_rules "$BENCH_TMP/modsec-stock" none 1 Off) || exit 1

# The variants, KIND-WHAT: WHAT is off (the WAF off), waf (on, default profile) or stock (on,
# stock CRS: the profile's own cost). All started at once, each on the proxy's CPUs.
VARIANTS=(nginx-off nginx-waf nginx-stock)
[ "$PORTICO_WAF" = 1 ] && VARIANTS+=(portico-off portico-waf)
declare -A PID PORT
# start_variant V [WRAPPER...]: starts variant V (KIND-WHAT); sets PROXY_PID and PROXY_PORT.
start_variant() {
    local v=$1 kind rules=$RULES mode=waf waf=off wafmode=off name=$1
    shift
    kind=${v%%-*}
    case ${v#*-} in
    waf) waf=on wafmode=block ;;
    stock) waf=on wafmode=block rules=$RULES_STOCK ;;
    esac
    # Portico without the WAF is the plain proxy (conf/portico.yaml.in, no waf: key: an absent
    # guard costs nothing); nginx's is the same config with `modsecurity off;`.
    [ "$v" = portico-off ] && mode=proxy
    [ "$#" -gt 0 ] && name=cg-$v-$CG_N
    BENCH_PROXY_MODE=$mode BENCH_WAF=$waf BENCH_WAF_RULES=$rules BENCH_WAF_MODE=$wafmode \
        BENCH_WAF_PROFILE=api bench_start_proxy "$kind" "$name" "$PROXY_CPUS" "$WORKERS" "$@"
}
CG_N=0
for v in "${VARIANTS[@]}"; do
    start_variant "$v"
    PID[$v]=$PROXY_PID PORT[$v]=$PROXY_PORT
    bench_log "$v pid $PROXY_PID port $PROXY_PORT"
done

# The WAF must be on where it should: an attack gets a 403 there, a 200 where it is off.
for v in "${VARIANTS[@]}"; do
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' \
        "http://127.0.0.1:${PORT[$v]}/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    want=403
    [ "${v#*-}" = off ] && want=200
    [ "$code" = "$want" ] || bench_die "$v answers an XSS probe with $code, not $want"
done

# run LABEL ROUND: one wrk run of the mix (lib.sh's bench_wrk); a line in $SAMPLES unless ROUND
# is "warmup".
run() {
    local label=$1 round=$2 secs=$SECS
    [ "$round" = warmup ] && secs=$WARMUP
    bench_wrk "${PID[$label]}" "$RUN_DIR/wrk-$label-$round.txt" "$label" "$secs" \
        -s "$RUN_DIR/mix.lua" "http://127.0.0.1:${PORT[$label]}/"
    bench_record "$label" "$round"
}

for v in "${VARIANTS[@]}"; do run "$v" warmup; done
n=${#VARIANTS[@]}
for ((round = 1; round <= ROUNDS; round++)); do
    for ((k = 0; k < n; k++)); do run "${VARIANTS[$(((k + round - 1) % n))]}" "$round"; done
done
declare -A CPU RPS RSS USE
for v in "${VARIANTS[@]}"; do
    CPU[$v]=$(bench_column "$v" 7 | bench_median)
    RPS[$v]=$(bench_column "$v" 4 | bench_median)
    USE[$v]=$(bench_cpu_use "$v")
    RSS[$v]=$(bench_status_kb VmHWM "${PID[$v]}")
    bench_stop_proxy "${PID[$v]}"
done
# Callgrind: instructions per request of each variant, as bench/callgrind.sh counts them (the
# proxy under valgrind, one worker, nginx without its master; a sequential keep-alive client
# sends the mix CG_N1 and then CG_N2 times over; (Ir(N2) - Ir(N1)) / (N2 - N1) requests). Not
# disturbed by the other load of the machine, unlike the CPU time.
declare -A IR
cg_count() { # V N: sets CG_IR, the Ir total of variant V serving N requests of the mix.
    local v=$1 dir pid
    CG_N=$2
    dir=$BENCH_TMP/cg-$v-$CG_N
    mkdir -p "$dir"
    WORKERS=1 start_variant "$v" valgrind --tool=callgrind --trace-children=no --dump-instr=no \
        "--callgrind-out-file=$dir/callgrind.out.%p" --log-file="$dir/valgrind.log"
    pid=$PROXY_PID
    timeout --foreground "${BENCH_CG_TIMEOUT:-600}" "$PYTHON" - "$BENCH_ROOT/tests/waf" \
        "$PROXY_PORT" "$CG_N" <<'PY' || bench_die "$v under callgrind: the client failed ($dir)"
import socket, sys
sys.path.insert(0, sys.argv[1])
import run_sets
reqs = [r for r in run_sets.load_set("clean") if r.get("method", "GET") != "HEAD"]
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=120)
f = s.makefile("rb")
for i in range(int(sys.argv[3])):
    r = reqs[i % len(reqs)]
    ka = dict(r.get("headers", {}), Connection="keep-alive")
    s.sendall(run_sets.encode(dict(r, headers=ka)))
    status = int(f.readline().split()[1])
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    f.read(length)
    if status != 200:
        sys.exit("request %d (%s): status %d" % (i, r["id"], status))
PY
    BENCH_STOP_WAIT=60 bench_stop_proxy "$pid"
    CG_IR=$(bench_cg_total "$dir") ||
        bench_die "$v: no callgrind totals in $dir ($(tail -3 "$dir/valgrind.log"))"
}
CG_N1=${BENCH_CG_N1:-$MIX_N}
CG_N2=${BENCH_CG_N2:-$((MIX_N * 3))}
if [ "$CALLGRIND" = 1 ]; then
    command -v valgrind >/dev/null || bench_die "valgrind is missing (BENCH_CALLGRIND=0 skips it)"
    for v in "${VARIANTS[@]}"; do
        cg_count "$v" "$CG_N1"
        ir1=$CG_IR
        cg_count "$v" "$CG_N2"
        ir2=$CG_IR
        IR[$v]=$(((ir2 - ir1) / (CG_N2 - CG_N1)))
        bench_log "callgrind $v: Ir $ir1 (N=$CG_N1), $ir2 (N=$CG_N2): ${IR[$v]} Ir/request"
    done
fi

minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

{
    echo "WAF CPU per request: libmodsecurity3 + OWASP CRS, paranoia 1, profile api (bench/waf.sh)"
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ); $(nproc) cpus ($(sed -n 's/^model name[^:]*: //p' \
        /proc/cpuinfo | head -1)); proxy on cpu $PROXY_CPUS, backend $BACKEND_CPUS, wrk $WRK_CPUS"
    echo "nginx $("$NGINX_BIN" -v 2>&1 | sed 's/.*version: //') with" \
        "libnginx-mod-http-modsecurity" \
        "$(dpkg-query -W -f '${Version}' libnginx-mod-http-modsecurity 2>/dev/null);" \
        "libmodsecurity3 $(dpkg-query -W -f '${Version}' libmodsecurity3 2>/dev/null);" \
        "modsecurity-crs $(dpkg-query -W -f '${Version}' modsecurity-crs 2>/dev/null)"
    if [ "$PORTICO_WAF" = 1 ]; then
        echo "portico: $("$PORTICO_BIN" version 2>&1 | head -1)"
    else
        echo "portico: not available: $PORTICO_WHY"
    fi
    echo "client: wrk -t1 -c$CONNS -d${SECS}s, $MIX_N requests of tests/waf/clean.json in turn" \
        "($MIX_BODIES with a body), $ROUNDS rounds after a ${WARMUP}s warm-up each"
    echo "CPU per request: utime+stime of the proxy's processes over the run / requests" \
        "(tick = $((1000000 / CLK_TCK)) us); medians over the rounds; workers $WORKERS"
    echo
    printf '%-14s %14s %12s %10s %12s\n' "" "CPU us/req" "requests/s" "CPU use" "peak RSS kB"
    for v in "${VARIANTS[@]}"; do
        printf '%-14s %14.2f %12.0f %9.0f%% %12s\n' "$v" "${CPU[$v]}" "${RPS[$v]}" "${USE[$v]}" \
            "${RSS[$v]}"
    done
    echo
    echo "the WAF's own cost (on - off), CPU us/request:"
    echo "  nginx + ModSecurity: $(minus "${CPU[nginx-waf]}" "${CPU[nginx-off]}")" \
        "($(bench_ratio "${CPU[nginx-waf]}" "${CPU[nginx-off]}")x the proxy without it)"
    echo "  the profile's own (profile - stock CRS), nginx: $(minus "${CPU[nginx-waf]}" \
        "${CPU[nginx-stock]}")"
    if [ "$PORTICO_WAF" = 1 ]; then
        echo "  portico:             $(minus "${CPU[portico-waf]}" "${CPU[portico-off]}")" \
            "($(bench_ratio "${CPU[portico-waf]}" "${CPU[portico-off]}")x the proxy without it)"
        echo "ratio portico/nginx, WAF on: CPU $(bench_ratio "${CPU[portico-waf]}" \
            "${CPU[nginx-waf]}"), requests/s $(bench_ratio "${RPS[portico-waf]}" \
            "${RPS[nginx-waf]}")"
    else
        echo "  portico:             not available"
    fi
    if [ "$CALLGRIND" = 1 ]; then
        echo
        echo "callgrind, instructions per request ($CG_N1 and then $CG_N2 requests of the mix" \
            "over one keep-alive connection, (Ir(N2) - Ir(N1)) / (N2 - N1); one worker):"
        for v in "${VARIANTS[@]}"; do printf '  %-14s %12s Ir/request\n' "$v" "${IR[$v]}"; done
        echo "  WAF's own: nginx $((IR[nginx-waf] - IR[nginx-off])), profile's own (profile -" \
            "stock) $((IR[nginx-waf] - IR[nginx-stock]))"
        if [ "$PORTICO_WAF" = 1 ]; then
            echo "  WAF's own: portico $((IR[portico-waf] - IR[portico-off])); ratio" \
                "portico/nginx, WAF on: $(bench_ratio "${IR[portico-waf]}" "${IR[nginx-waf]}")"
        fi
    fi
    echo
    for v in "${VARIANTS[@]}"; do
        echo "per round (CPU us/request) $v: $(bench_column "$v" 7 | paste -sd' ' -)"
    done
} >"$RUN_DIR/report.txt"
cp "$RUN_DIR/report.txt" "$BENCH_OUT/waf-latest.txt"
echo
cat "$RUN_DIR/report.txt"
bench_log "table: $BENCH_OUT/waf-latest.txt; raw data: $RUN_DIR"
