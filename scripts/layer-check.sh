#!/bin/sh
# Fails when a file under src/ includes a header of a layer it may not use (the layer map in
# docs/internals/README.md), or when scripts/layer-exceptions.txt lists an include that is gone
# (the list only shrinks). Each line there is "FILE LAYER/HEADER  # why".
set -eu
cd "$(dirname "$0")/.."

# What each layer may include besides itself. A layer not named here may include nothing.
uses() {
    case "$1" in
    core) echo "" ;;
    http) echo "core" ;;
    tls) echo "core http" ;;
    config) echo "core http" ;;
    route) echo "core http config" ;;
    upstream) echo "core http tls config" ;;
    guard) echo "core http config" ;;
    cache) echo "core http" ;;
    handler) echo "core http tls config route upstream guard cache" ;;
    admin) echo "core http tls config route upstream guard cache handler" ;;
    server) echo "core http tls config route upstream guard cache handler admin" ;;
    *) echo "-" ;;
    esac
}

exceptions=scripts/layer-exceptions.txt
found=$(mktemp)
trap 'rm -f "$found"' EXIT
status=0
for f in src/*/*.c src/*/*.h; do
    layer=${f#src/}
    layer=${layer%%/*}
    allowed=$(uses "$layer")
    if [ "$allowed" = "-" ]; then
        echo "layer-check: $f: folder src/$layer/ is not in the layer map" >&2
        status=1
        continue
    fi
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z0-9_]*\/[^"]*\)".*/\1/p' "$f"); do
        to=${inc%%/*}
        [ "$to" = "$layer" ] && continue
        case " $allowed " in *" $to "*) continue ;; esac
        echo "$f $inc" >>"$found"
        if ! grep -q "^$f $inc\([[:space:]]\|\$\)" "$exceptions" 2>/dev/null; then
            echo "layer-check: $f includes $inc: $layer/ may use only: ${allowed:-nothing}" >&2
            status=1
        fi
    done
done
if [ -f "$exceptions" ]; then
    while read -r file inc _; do
        case "$file" in '' | '#'*) continue ;; esac
        if ! grep -q "^$file $inc\$" "$found"; then
            echo "layer-check: $exceptions lists \"$file $inc\", which is gone: remove the line" >&2
            status=1
        fi
    done <"$exceptions"
fi
# The same map at link level, when a build is there (make layer-check builds first): no object
# of a layer may use a function or variable that only a higher layer defines, whatever it
# declares for itself.
objs=${LAYER_CHECK_OBJS:-build/release/src}
if [ -d "$objs" ] && command -v nm >/dev/null; then
    syms=$(mktemp)
    trap 'rm -f "$found" "$syms"' EXIT
    for d in src/*/; do
        layer=${d#src/}
        layer=${layer%/}
        echo "A $layer $(uses "$layer")"
    done >"$syms"
    for f in src/*/*.c; do
        o="$objs/${f#src/}"
        o="${o%.c}.o"
        [ -f "$o" ] || continue
        layer=${f#src/}
        layer=${layer%%/*}
        nm "$o" | awk -v o="$o" -v l="$layer" '
            $1 == "U" { print "U", $2, o, l; next }
            $2 ~ /^[TDBR]$/ { print "D", $3, l }'
    done >>"$syms"
    if ! awk '
        $1 == "A" { a = " "; for (i = 3; i <= NF; i++) a = a $i " "; allowed[$2] = a; next }
        $1 == "D" { def[$2] = $3; next }
        $1 == "U" { use[++n] = $2 " " $3 " " $4 }
        END {
            bad = 0
            for (i = 1; i <= n; i++) {
                split(use[i], f, " ")
                owner = def[f[1]]
                if (owner == "" || owner == f[3] || index(allowed[f[3]], " " owner " ")) continue
                printf "layer-check: %s uses %s, defined in %s/: %s/ may use only:%s\n", f[2], f[1], owner, f[3], allowed[f[3]] > "/dev/stderr"
                bad = 1
            }
            exit bad
        }' "$syms"; then
        status=1
    fi
fi
[ "$status" -eq 0 ] && echo "layer-check: clean"
exit "$status"
