#!/usr/bin/env bash
# What each guard costs, and proof that an absent guard costs nothing (issue 13, "Tests and
# measurements": callgrind instructions per request equal to before, +-1%).
#
# Every case is one route answering a fixed 200 "ok\n" (respond: no backend, no file, so the
# guard is a visible share of the request), with workers: 1, measured as bench/route_scale.sh
# does: two runs under valgrind's callgrind with N1 and N2 requests on one keep-alive
# connection, Ir per request = (Ir(N2) - Ir(N1)) / (N2 - N1), start-up and shutdown cancel out.
#
#   base      no guard, on the build of BASE_REF: the commit before the guard layer existed
#             (by default the parent of the oldest commit that added a file now in src/guard/;
#             the SSRF guard, once there, lives in upstream/ and is in both builds). It is
#             built from `git archive` in a temporary directory under /tmp, removed on exit.
#   none      no guard, on this build: within +-1% of base is the "costs nothing" proof
#   ip_small  ip: allow 4 CIDRs (the client among them)
#   ip_file   ip: allow_files: one file of BENCH_GUARDS_IP_ENTRIES (100,000) /32 entries
#   rate      rate_limit: {rate: 1000000/s, burst: 1000000} by client address (never refuses)
#   basic_auth, jwt, waf: measured when this build knows the key (`portico check` accepts the
#             sample in guard_yaml below, written before those guards landed: adjust it to
#             their final keys), else skipped with a note.
#
# Usage: bench/guards.sh [OUT_TSV]     (default build/bench/guards.tsv; prints a table)
# Env: BASE_REF (see above; "none" skips the base build), BENCH_GUARDS_N1 (100),
#      BENCH_GUARDS_N2 (600), BENCH_GUARDS_IP_ENTRIES (100000), BENCH_CG_TIMEOUT (300 s per
#      run), PORTICO_BIN. Quick mode: BENCH_QUICK=1 (N1 50, N2 250, a 10,000-entry file).
# `make bench-guards` runs it.
set -u
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

QUICK=${BENCH_QUICK:-0}
N1=${BENCH_GUARDS_N1:-$([ "$QUICK" = 1 ] && echo 50 || echo 100)}
N2=${BENCH_GUARDS_N2:-$([ "$QUICK" = 1 ] && echo 250 || echo 600)}
IP_ENTRIES=${BENCH_GUARDS_IP_ENTRIES:-$([ "$QUICK" = 1 ] && echo 10000 || echo 100000)}
CG_TIMEOUT=${BENCH_CG_TIMEOUT:-300}
OUT_TSV=${1:-$BENCH_OUT/guards.tsv}

command -v valgrind >/dev/null || bench_die "valgrind is not installed"
[ -x "$PORTICO_BIN" ] || bench_die "$PORTICO_BIN is not built (make)"
[ "$N2" -gt "$N1" ] || bench_die "BENCH_GUARDS_N2 must be greater than BENCH_GUARDS_N1"
bench_init
: >"$OUT_TSV"

# The baseline binary.
BASE_BIN=
if [ "${BASE_REF:-}" != none ]; then
    if [ -z "${BASE_REF:-}" ]; then
        # shellcheck disable=SC2046
        first=$(git -C "$BENCH_ROOT" log --diff-filter=A --format=%H -- \
            $(git -C "$BENCH_ROOT" ls-files src/guard) | tail -1)
        [ -n "$first" ] || bench_die "no commit added src/guard/: set BASE_REF"
        BASE_REF=$first^
    fi
    base_sha=$(git -C "$BENCH_ROOT" rev-parse --verify "$BASE_REF^{commit}") ||
        bench_die "BASE_REF $BASE_REF is no commit"
    BASE_DIR=$(mktemp -d /tmp/portico-guards-base.XXXXXX)
    trap 'rm -rf "$BASE_DIR"; bench_cleanup' EXIT
    bench_log "building the baseline $(git -C "$BENCH_ROOT" log -1 --format='%h %s' "$base_sha" | cut -c1-90)"
    git -C "$BENCH_ROOT" archive "$base_sha" | tar -x -C "$BASE_DIR" ||
        bench_die "git archive $base_sha failed"
    make -C "$BASE_DIR" -j2 build/portico >"$BENCH_TMP/base-build.log" 2>&1 ||
        bench_die "the baseline does not build: $(tail -5 "$BENCH_TMP/base-build.log")"
    BASE_BIN=$BASE_DIR/build/portico
fi

# The 100,000-entry allow file: 10.x.y.z/32 addresses, and the client's.
IP_FILE=$BENCH_TMP/allow.txt
"$PYTHON" - "$IP_ENTRIES" "$IP_FILE" <<'PY'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
with open(out, "w") as f:
    f.write("127.0.0.1\n")
    for i in range(n - 1):
        f.write("10.%d.%d.%d/32\n" % ((i >> 16) & 255, (i >> 8) & 255, i & 255))
PY

# basic_auth: one SHA-512-crypt user (a success is cached after the first request, so the figure is
# the guard's steady cost, not the hash's); jwt: an HS256 secret and one token for it.
"$PYTHON" - "$BENCH_TMP" <<'PY'
import base64, crypt, hashlib, hmac, json, sys, time
d = sys.argv[1]
with open(d + "/htpasswd", "w") as f:
    f.write("bench:" + crypt.crypt("secret", crypt.mksalt(crypt.METHOD_SHA512)) + "\n")
key = b"bench-secret-of-thirty-two-bytes!"
with open(d + "/jwt.key", "wb") as f:
    f.write(key)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "bench", "exp": int(time.time()) + 86400}).encode())
sig = b64(hmac.new(key, (head + "." + body).encode(), hashlib.sha256).digest())
with open(d + "/jwt.token", "w") as f:
    f.write(head + "." + body + "." + sig)
PY

guard_header() { # CASE: the field each request sends for it, or nothing
    case $1 in
    basic_auth) echo "Authorization: Basic $(printf 'bench:secret' | base64)" ;;
    jwt) echo "Authorization: Bearer $(cat "$BENCH_TMP/jwt.token")" ;;
    esac
}

guard_yaml() { # CASE: the route's guard lines (6 spaces in), or nothing
    case $1 in
    ip_small) echo '    ip: {allow: ["127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16", "::1/128"]}' ;;
    ip_file) echo "    ip: {allow_files: [\"$IP_FILE\"]}" ;;
    rate) echo '    rate_limit: {rate: 1000000/s, burst: 1000000}' ;;
    basic_auth) echo "    basic_auth: {htpasswd: \"$BENCH_TMP/htpasswd\"}" ;;
    jwt) echo "    jwt: {secret_file: \"$BENCH_TMP/jwt.key\"}" ;;
    waf) echo '    waf: {mode: block}' ;;
    esac
}

g_config() { # CASE PORT OUT
    {
        echo "workers: 1"
        [ "$1" = conn ] && echo "limits: {max_requests_per_client: 1000}"
        echo 'log: {level: warn, access: "off"}'
        echo "listen: [{addr: \"127.0.0.1:$2\"}]"
        echo "routes:"
        echo '  - match: /health' # the start-up probe, past every guard
        printf '%s\n' '    respond: {status: 200, body: "ok\n"}'
        echo '  - match: "/*"'
        printf '%s\n' '    respond: {status: 200, body: "ok\n"}'
        guard_yaml "$1"
    } >"$3"
}

g_run() { # CASE BIN N
    local case=$1 bin=$2 n=$3 dir port ir
    dir="$BENCH_TMP/g-$case-$n"
    mkdir -p "$dir"
    port=$(bench_free_port)
    g_config "$case" "$port" "$dir/portico.yaml"
    BENCH_CG_HEADER=$(guard_header "$case") bench_cg_portico "$dir" "$bin" "$port" "$n" /x 200 3
    ir=$BENCH_CG_IR
    bench_log "callgrind $case, N=$n: Ir $ir"
    printf '%s\t%s\t%s\n' "$case" "$n" "$ir" >>"$OUT_TSV"
}

cases=()
[ -n "$BASE_BIN" ] && cases+=(base)
cases+=(none conn ip_small ip_file rate)
for extra in basic_auth jwt waf; do
    g_config "$extra" 1 "$BENCH_TMP/probe-$extra.yaml"
    if "$PORTICO_BIN" check -c "$BENCH_TMP/probe-$extra.yaml" >"$BENCH_TMP/probe-$extra.log" 2>&1; then
        cases+=("$extra")
    else
        bench_log "skipped $extra: this build does not take it ($(head -1 "$BENCH_TMP/probe-$extra.log" | cut -c1-100))"
        printf '%s\tskipped\t0\n' "$extra" >>"$OUT_TSV"
    fi
done
for case in "${cases[@]}"; do
    bin=$PORTICO_BIN
    [ "$case" = base ] && bin=$BASE_BIN
    for n in "$N1" "$N2"; do
        g_run "$case" "$bin" "$n"
    done
done

bench_log "guards results in $OUT_TSV"
"$PYTHON" - "$OUT_TSV" <<'PY'
import sys
runs, skipped = {}, []
for line in open(sys.argv[1], encoding="utf-8"):
    case, n, ir = line.rstrip("\n").split("\t")
    if n == "skipped":
        skipped.append(case)
        continue
    runs.setdefault(case, {})[int(n)] = int(ir)
per = {}
for case, r in runs.items():
    n1, n2 = min(r), max(r)
    per[case] = (r[n2] - r[n1]) / (n2 - n1)
ref = per.get("none")
for case, v in per.items():
    extra = ""
    if ref and case != "none":
        extra = "  %+8.0f Ir (%+.2f%%) vs none" % (v - ref, (v - ref) / ref * 100)
    print("guards %-10s %10.0f Ir/request%s" % (case, v, extra))
if "base" in per and ref:
    d = (ref - per["base"]) / per["base"] * 100
    print("guards absent guard vs base: %+.2f%% (target within +-1%%): %s" %
          (d, "PASS" if abs(d) <= 1 else "FAIL"))
for case in skipped:
    print("guards %-10s skipped: this build has no such guard yet" % case)
PY
