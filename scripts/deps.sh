#!/bin/sh
# Installs the Debian 12 packages Portico needs to build, test and benchmark. Idempotent and
# non-interactive: it runs apt-get only when a package is missing, and `apt-get update` first.
# RUNLEVEL=1 keeps Debian's maintainer scripts from starting nginx as a system service: the
# benchmark starts its own nginx with its own configuration.
set -eu
PKGS="build-essential pkg-config clang libclang-rt-14-dev clang-format libyaml-dev libpcre2-dev
libcmocka-dev libssl-dev libjansson-dev libc-ares-dev libmaxminddb-dev libsystemd-dev mmdb-bin pebble testssl.sh media-types python3 python3-pytest curl nghttp2-client openssl nginx wrk valgrind procps nodejs"
# npm ships inside some nodejs builds (NodeSource's); Debian's own is a separate package that
# conflicts with those, so it is asked for only when no npm is on the PATH.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
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
fi
# The differential test of Netlify rules runs Netlify's own matcher, the npm package
# netlify-redirector, at the version pinned in tests/e2e/netlify_diff/package-lock.json.
nd="$(dirname "$0")/../tests/e2e/netlify_diff"
if [ -f "$nd/package-lock.json" ] && [ ! -d "$nd/node_modules/netlify-redirector" ]; then
    echo "deps: npm ci in tests/e2e/netlify_diff"
    (cd "$nd" && npm ci --no-audit --no-fund --loglevel=error)
fi
