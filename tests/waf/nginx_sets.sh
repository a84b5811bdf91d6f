#!/usr/bin/env bash
# The WAF request sets against Debian's nginx + libnginx-mod-http-modsecurity running Debian's
# OWASP CRS at paranoia level 1, twice: with Portico's default profile (waf/profile-api-*.conf,
# PROFILE api) and with the stock CRS (PROFILE none), both in front of the same nginx backend
# that answers 200 to everything (bench/conf/backend-waf.conf.in). Every server runs with its
# own config under a temp dir, never as a system service, on ports the kernel hands out.
#
# Prints run_sets.py's report per set and variant, then, for each request a variant refused
# that it should not have (or the reverse), the CRS rules that matched (from the audit log).
# Exit 0 when: attack all blocked and clean none blocked in both variants, false_positive all
# blocked by stock CRS; the false positives the profile still blocks are reported, not failed.
#
# Env: WAF_SETS_PROFILES (default "api none"), WAF_SETS_PARANOIA (1), WAF_SETS (attack clean
# false_positive, or paths of set files), WAF_SETS_TAG=1 (send X-Set-Id, so the rule list names
# the set's request ids), BENCH_KEEP_TMP=1 keeps the temp dir (configs, audit logs).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/../../bench/lib.sh"

PARANOIA=${WAF_SETS_PARANOIA:-1}
PROFILES=${WAF_SETS_PROFILES:-api none}
SETS=${WAF_SETS:-attack clean false_positive}
for tool in "$NGINX_BIN" curl "$PYTHON"; do
    command -v "$tool" >/dev/null || bench_die "$tool is not installed (make deps-test)"
done
bench_init
BENCH_BACKEND_CONF=backend-waf.conf.in bench_start_backend 0-1 1

# rules_of DIR: per request of DIR's audit log that a rule matched, its X-Set-Id (or method and
# target), its status and the ids of the rules that matched, less the CRS's score summaries.
rules_of() {
    "$PYTHON" - "$1/audit.log" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        t = json.loads(line)["transaction"]
    except (ValueError, KeyError):
        continue
    ids = [m["details"]["ruleId"] for m in t.get("messages", [])
           if m["details"]["ruleId"] not in ("949110", "980130")]
    hdrs = {k.lower(): v for k, v in t["request"].get("headers", {}).items()}
    name = hdrs.get("x-set-id") or t["request"]["method"] + " " + t["request"]["uri"][:60]
    print("  %-44s %s %s" % (name, t.get("response", {}).get("http_code", "?"), " ".join(ids)))
PY
}

rc=0
for profile in $PROFILES; do
    dir=$BENCH_TMP/waf-$profile
    rules=$(bench_waf_rules "$dir" "$profile" "$PARANOIA" RelevantOnly) || exit 1
    BENCH_PROXY_MODE=waf BENCH_WAF=on BENCH_WAF_RULES=$rules \
        bench_start_proxy nginx "nginx-$profile" 0-1 1
    base=http://127.0.0.1:$PROXY_PORT
    echo "== profile $profile, paranoia $PARANOIA: nginx $base, rules $rules"
    for set in $SETS; do
        expect=passed
        [ "$set" = attack ] && expect=blocked
        [ "$set" = false_positive ] && [ "$profile" = none ] && expect=blocked
        if ! "$PYTHON" "$HERE/run_sets.py" "$base" "$set" --expect "$expect" -q \
            ${WAF_SETS_TAG:+--tag} --json "$dir/$(basename "$set" .json).json"; then
            [ "$set" = false_positive ] && [ "$profile" = api ] || rc=1
        fi
    done
    echo "-- rules that matched (profile $profile; request, status, rule ids):"
    rules_of "$dir"
    bench_stop_proxy "$PROXY_PID"
done
exit $rc
