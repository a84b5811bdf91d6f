#!/bin/sh
# mkman.sh - turns the Markdown source of a manual page into man(7) roff, with POSIX sh and awk
# only (no pandoc, no ronn: building Portico needs nothing new).
#
#   scripts/mkman.sh [-p PREFIX] docs/portico.1.md > build/portico.1
#
# The source's first line is the title, `# NAME(SECTION) -- summary`. A line
#   <!-- man: include FILE "Heading" -->
# is replaced by the body of that section of FILE (path from the repository root): the lines
# under the heading written exactly so, up to the next heading of the same or a higher level; its
# subheadings become .SS. A missing file or heading is an error (exit 1), so the page cannot
# silently lose a section when a document is reorganised. `@PREFIX@` becomes PREFIX (default
# /usr/local). The date is SOURCE_DATE_EPOCH's when set (reproducible builds), else today's.
#
# The Markdown understood: `##` headings (.SH) and `###` (.SS); paragraphs; a line ending in a
# backslash ends with a line break; `-`/`*` bullet lists and `1.` numbered ones (continued by
# indented lines); fenced and four-space indented code (.nf); tables (one .TP per row: the first
# cell is the tag, the others follow, each after its column's heading); `code` (bold), **bold**,
# *italic*, [text](link) and <url>; HTML comments are dropped. Anything else is printed as text.
set -eu

prefix=/usr/local
if [ "${1:-}" = "-p" ]; then
    [ $# -ge 2 ] || { echo "usage: $0 [-p PREFIX] SOURCE.md" >&2; exit 2; }
    prefix=$2
    shift 2
fi
[ $# -eq 1 ] || { echo "usage: $0 [-p PREFIX] SOURCE.md" >&2; exit 2; }
src=$1
root=$(cd "$(dirname "$0")/.." && pwd)
[ -r "$src" ] || { echo "mkman: cannot read $src" >&2; exit 1; }

if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
else
    date=$(date -u +%Y-%m-%d)
fi
version=$(sed -n 's/^#define PT_VERSION "\(.*\)"$/\1/p' "$root/src/server/main.c" | head -n 1)
[ -n "$version" ] || version=unknown

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# Pass 1: includes. Each include is read by a second awk, which prints the section or fails.
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
    '<!-- man: include '*)
        spec=${line#'<!-- man: include '}
        spec=${spec%' -->'}
        file=${spec%% *}
        heading=${spec#* }
        heading=${heading#\"}
        heading=${heading%\"}
        [ -r "$root/$file" ] || { echo "mkman: $src: cannot read $file" >&2; exit 1; }
        awk -v want="$heading" -v file="$file" '
            function level(s) { return match(s, /^#+ /) ? RLENGTH - 1 : 0 }
            /^```/ { fence = !fence }
            !fence && level($0) {
                n = level($0)
                if (inside && n <= top) { inside = 0; done = 1 }
                t = $0; sub(/^#+ +/, "", t)
                if (!done && t == want) { inside = 1; top = n; found = 1; next }
            }
            inside {
                if (!fence && level($0) > top) { sub(/^#+ /, "### ") }
                print
            }
            END {
                if (!found) {
                    printf "mkman: %s has no heading \"%s\"\n", file, want > "/dev/stderr"
                    exit 1
                }
            }' "$root/$file" >>"$tmp" || exit 1
        ;;
    *)
        printf '%s\n' "$line" >>"$tmp"
        ;;
    esac
done <"$src"

# Pass 2: Markdown to roff. (The typographic quotes below are awk patterns, not shell quoting.)
# shellcheck disable=SC1112
awk -v date="$date" -v version="$version" -v prefix="$prefix" -v sq="'" '
function esc(s) {                       # text -> roff text: backslashes and non-ASCII signs
    gsub(/\\/, "\\e", s)
    gsub(/×/, "\\(mu", s); gsub(/→/, "\\(->", s); gsub(/←/, "\\(<-", s)
    gsub(/—/, "\\(em", s); gsub(/–/, "\\(en", s); gsub(/…/, "...", s)
    gsub(/µ/, "\\(mc", s); gsub(/≤/, "\\(<=", s); gsub(/≥/, "\\(>=", s)
    gsub(/§/, "\\(sc", s); gsub(/·/, "\\(pc", s); gsub(/“|”/, "\"", s)
    gsub(/‘|’/, "\\(aq", s)
    return s
}
function codeesc(s) { s = esc(s); gsub(/-/, "\\-", s); return s }
function plain(s,    out, pre, m) {   # bold, italic and links in text without code spans
    out = ""
    while (match(s, /\[[^]]*\]\([^)]*\)/)) {
        pre = substr(s, 1, RSTART - 1); m = substr(s, RSTART, RLENGTH)
        s = substr(s, RSTART + RLENGTH)
        out = out styles(pre) link(m)
    }
    s = out styles(s)
    return s
}
function link(m,    text, url) {
    text = m; sub(/\]\(.*$/, "", text); sub(/^\[/, "", text)
    url = m; sub(/^\[[^]]*\]\(/, "", url); sub(/\)$/, "", url)
    if (url ~ /^https?:/ && url != text)
        return styles(text) " <" esc(url) ">"
    return styles(text)
}
function styles(s,    out, m) {
    s = esc(s)
    while (match(s, /<https?:[^>]*>/)) {
        s = substr(s, 1, RSTART - 1) substr(s, RSTART + 1, RLENGTH - 2) substr(s, RSTART + RLENGTH)
    }
    while (match(s, /\*\*[^*]+\*\*/))
        s = substr(s, 1, RSTART - 1) "\\fB" substr(s, RSTART + 2, RLENGTH - 4) "\\fR" \
            substr(s, RSTART + RLENGTH)
    out = ""
    while (match(s, /(^|[ ([])\*[^* ][^*]*\*/)) {
        m = substr(s, RSTART, RLENGTH)
        if (substr(m, 1, 1) != "*") { out = out substr(s, 1, RSTART); m = substr(m, 2) }
        else out = out substr(s, 1, RSTART - 1)
        out = out "\\fI" substr(m, 2, length(m) - 2) "\\fR"
        s = substr(s, RSTART + RLENGTH)
    }
    return out s
}
function inline(s,    out, i, j, rest) {   # a line of Markdown text -> roff
    out = ""
    while ((i = index(s, "`")) > 0) {
        rest = substr(s, i + 1)
        j = index(rest, "`")
        if (j == 0) break
        out = out plain(substr(s, 1, i - 1)) "\\fB" codeesc(substr(rest, 1, j - 1)) "\\fR"
        s = substr(rest, j + 1)
    }
    return out plain(s)
}
function line(s) {                      # a roff text line: no control character in front
    if (substr(s, 1, 1) == "." || substr(s, 1, 1) == sq) s = "\\&" s
    print s
}
function endlist() { if (inlist) { print ".RE"; inlist = 0 } }
function endpara() { para = 0 }
function cells(s, arr,    n, c, i, ch, code) {   # split a table row on | outside code spans
    sub(/^[ \t]*\|/, "", s); sub(/\|[ \t]*$/, "", s)
    n = 1; c = ""; code = 0
    for (i = 1; i <= length(s); i++) {
        ch = substr(s, i, 1)
        if (ch == "`") code = !code
        if (ch == "\\" && substr(s, i + 1, 1) == "|") { c = c "|"; i++; continue }
        if (ch == "|" && !code) { arr[n++] = c; c = ""; continue }
        c = c ch
    }
    arr[n] = c
    for (i = 1; i <= n; i++) { gsub(/^[ \t]+|[ \t]+$/, "", arr[i]) }
    return n
}
function row(s,    n, i, c, body, sep) {
    n = cells(s, c)
    if (!thead) { for (i = 1; i <= n; i++) head[i] = c[i]; nhead = n; thead = 1; return }
    if (s ~ /^[ \t]*\|[ \t:|-]+$/) return
    print ".TP"
    line(inline(c[1]))
    body = ""; sep = ""
    for (i = 2; i <= n; i++) {
        if (c[i] == "") continue
        body = body sep ((i == 2 || head[i] == "") ? "" : inline(head[i]) ": ") inline(c[i])
        sep = "; "
    }
    if (body != "") line(body)
}
NR == 1 {
    if (!match($0, /^# [^ (]+\([1-9][a-z]*\)/)) {
        print "mkman: the first line must be # name(section) -- summary" > "/dev/stderr"
        exit 1
    }
    t = $0; sub(/^# /, "", t)
    name = t; sub(/\(.*$/, "", name)
    sect = t; sub(/^[^(]*\(/, "", sect); sub(/\).*$/, "", sect)
    printf ".\\\" Generated by scripts/mkman.sh from %s; edit that file instead.\n", FILENAME_SRC
    printf ".TH \"%s\" \"%s\" \"%s\" \"Portico %s\" \"Portico Manual\"\n", toupper(name), sect, \
        date, version
    next
}
{ gsub(/@PREFIX@/, prefix) }
incomment { if ($0 ~ /-->/) incomment = 0; next }
/^[ \t]*<!--/ { if ($0 !~ /-->/) incomment = 1; next }
fence {
    if ($0 ~ /^[ \t]*(```|~~~)/) { print ".fi"; print ".RE"; fence = 0; next }
    s = $0; sub("^" findent, "", s); line(codeesc(s)); next
}
/^[ \t]*(```|~~~)/ {
    endpara(); intable = 0
    match($0, /^[ \t]*/); findent = substr($0, 1, RLENGTH)
    if (!inlist) print ".PP"
    print ".RS 4"; print ".nf"; fence = 1; next
}
/^    / && !inlist && !para {
    if (!icode) { print ".PP"; print ".RS 4"; print ".nf"; icode = 1 }
    s = $0; sub(/^    /, "", s); line(codeesc(s)); next
}
icode { print ".fi"; print ".RE"; icode = 0 }
/^[ \t]*$/ { endpara(); intable = 0; next }
/^## / {
    endlist(); endpara(); s = $0; sub(/^## +/, "", s); section = toupper(s)
    print ".SH \"" toupper(esc(s)) "\""; next
}
/^###+ / { endlist(); endpara(); s = $0; sub(/^#+ +/, "", s); print ".SS \"" esc(s) "\""; next }
/^[ \t]*\|/ {
    endlist(); endpara()
    if (!intable) { intable = 1; thead = 0 }
    row($0); next
}
/^[-*] / || /^[0-9]+\. / {
    endpara()
    if (!inlist) { print ".RS 2"; inlist = 1 }
    s = $0
    if (s ~ /^[-*] /) { sub(/^[-*] +/, "", s); print ".IP \\(bu 2" }
    else { m = s; sub(/\..*$/, "", m); sub(/^[0-9]+\. +/, "", s); print ".IP " m ". 4" }
    para = 1
    emit(s); next
}
/^[ \t]+/ && inlist { s = $0; sub(/^[ \t]+/, "", s); emit(s); next }
{
    endlist()
    if (!para) { print ".PP"; para = 1 }
    s = $0; sub(/^[ \t]+/, "", s); emit(s)
}
function emit(s,    brk) {
    brk = (s ~ /\\$/)
    if (brk) sub(/\\$/, "", s)
    s = inline(s)
    if (section == "NAME") sub(/ - /, " \\- ", s)   # what whatis(1) and lexgrog(1) look for
    line(s)
    if (brk) print ".br"
}
END {
    if (fence || icode) { print ".fi"; print ".RE" }
    endlist()
}' FILENAME_SRC="$src" "$tmp"
