#!/bin/sh
# Starts the JAMstack example: the API backend, then Portico in front of it and the site.
#   ./run.sh                         API on 127.0.0.1:9001, site on http://127.0.0.1:8080/
#   PORTICO_BIN=/path/to/portico ./run.sh
# Ctrl-C (or SIGTERM) stops both.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${PORTICO_BIN:-$here/../../build/portico}
api_addr=${API_ADDR:-127.0.0.1:9001}
if [ ! -x "$bin" ]; then
    echo "run.sh: no Portico binary at $bin (run make first, or set PORTICO_BIN)" >&2
    exit 1
fi
"$bin" check -c "$here/portico.yaml"
/usr/bin/python3 "$here/api/server.py" "$api_addr" &
api=$!
"$bin" run -c "$here/portico.yaml" &
portico=$!
stop() {
    kill -TERM "$portico" "$api" 2>/dev/null || true
    wait "$portico" 2>/dev/null || true
    exit 0
}
trap stop INT TERM
echo "run.sh: site on http://127.0.0.1:8080/ (try /, /about, /app/x, /api/hello, /status)" >&2
status=0
wait "$portico" || status=$?
kill -TERM "$api" 2>/dev/null || true
exit "$status"
