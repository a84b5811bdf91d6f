#!/bin/sh
# Installs the Debian 12 packages Portico needs, in two sets:
#   scripts/deps.sh               what building and running need (make deps)
#   scripts/deps.sh --test        that, plus the test and benchmark tools and the npm package of
#                                 the Netlify differential test (make deps-test; make test,
#                                 make bench and make bench-h2 run it first themselves)
#   scripts/deps.sh [--test] --list   print the set's packages, one a line, and install nothing
# Idempotent and non-interactive: it runs apt-get only when a package is missing, and
# `apt-get update` first. RUNLEVEL=1 keeps Debian's maintainer scripts from starting nginx and
# prometheus as system services: the benchmark starts its own nginx, and the metrics test its
# own prometheus, each with its own configuration. Where systemd runs, a prometheus that this
# script installed is also disabled and stopped (that unit alone; nothing else is touched).
set -eu
want_test=0
list=0
for a in "$@"; do
    case "$a" in
    --test) want_test=1 ;;
    --list) list=1 ;;
    *)
        echo "usage: scripts/deps.sh [--test] [--list]" >&2
        exit 2
        ;;
    esac
done
# Build: the compiler and make, pkg-config, and the -dev package of every library in the
# Makefile's PKGS (libnghttp2-dev: HTTP/2 framing and HPACK; zlib1g-dev, libbrotli-dev and
# libzstd-dev: response compression, handler/compress.c), and libsqlite3-dev for the rules
# store of the admin API (-lsqlite3 on the Makefile's link line), libcrypt-dev for crypt_rn
# (bcrypt, SHA-crypt, yescrypt) of basic_auth's htpasswd users (-lcrypt, guard/auth_basic.c);
# libmodsecurity-dev for the WAF (guard/waf.c) and modsecurity-crs, the OWASP Core Rule Set it
# loads (waf_crs: defaults to its paths). Run: media-types (/etc/mime.types, read at start) and
# python3 for the API of examples/jamstack (make jamstack).
PKGS="build-essential pkg-config libyaml-dev libpcre2-dev libssl-dev libjansson-dev
libc-ares-dev libmaxminddb-dev libsystemd-dev libnghttp2-dev libsqlite3-dev libcrypt-dev zlib1g-dev
libbrotli-dev libzstd-dev libmodsecurity-dev modsecurity-crs media-types python3"
# Test and benchmark: clang and its runtime (libFuzzer), clang-format, cmocka, pytest, the
# clients the end-to-end tests drive Portico with, the ACME test server, the MaxMind DB tools,
# the slow-client tool, nginx, wrk and h2load (nghttp2-client) for the side-by-side benchmarks,
# node for the Netlify differential test; python3-h2, -hyperframe and -hpack for the frame-level
# HTTP/2 tests, python3-websockets for the WebSocket tests, python3-grpcio and python3-grpc-tools
# (protoc for Python) for the gRPC tests; python3-brotli and python3-zstandard, the decoders the
# compression tests check Portico's output with; prometheus, the server the metrics test scrapes
# Portico with (its node exporter, only recommended, is not installed); chromium, its
# chromium-driver and python3-selenium for the browser test of the admin dashboard;
# libnginx-mod-http-modsecurity and modsecurity-crs, the nginx + ModSecurity + OWASP CRS the WAF
# benchmark and request sets compare Portico's WAF with (bench/waf.sh, tests/waf/nginx_sets.sh).
TEST_PKGS="clang libclang-rt-14-dev clang-format libcmocka-dev python3-pytest curl
nghttp2-client openssl procps mmdb-bin pebble testssl.sh slowhttptest nginx wrk valgrind nodejs
python3-pytest-xdist python3-h2 python3-hyperframe python3-hpack python3-websockets python3-grpcio python3-grpc-tools
python3-brotli python3-zstandard prometheus chromium chromium-driver python3-selenium
libnginx-mod-http-modsecurity modsecurity-crs"
if [ "$want_test" -eq 1 ]; then
    PKGS="$PKGS $TEST_PKGS"
    # npm ships inside some nodejs builds (NodeSource's); Debian's own is a separate package
    # that conflicts with those, so it is asked for only when no npm is on the PATH.
    command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
fi
if [ "$list" -eq 1 ]; then
    for p in $PKGS; do echo "$p"; done
    exit 0
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "deps: all Debian packages present"
else
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "deps: installing$missing"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q --no-install-recommends $missing
    # The package enables its unit: a prometheus installed here must not run as a service
    # (the test starts its own, on its own port). Only when this run installed it, so that an
    # operator's own prometheus is left alone.
    case " $missing " in
    *" prometheus "*)
        if [ -d /run/systemd/system ]; then
            $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
        fi
        ;;
    esac
fi
[ "$want_test" -eq 1 ] || exit 0
# The differential test of Netlify rules runs Netlify's own matcher, the npm package
# netlify-redirector, at the version pinned in tests/e2e/netlify_diff/package-lock.json.
nd="$(dirname "$0")/../tests/e2e/netlify_diff"
if [ -f "$nd/package-lock.json" ] && [ ! -d "$nd/node_modules/netlify-redirector" ]; then
    echo "deps: npm ci in tests/e2e/netlify_diff"
    (cd "$nd" && npm ci --no-audit --no-fund --loglevel=error)
fi
