// Runs Netlify's own redirect matcher (the npm package netlify-redirector, pinned in
// package-lock.json) over a list of requests, for tests/e2e/test_netlify_diff.py.
//
// stdin:  {"rules": "<_redirects text>",
//          "requests": [{"scheme": "http", "host": "h", "path": "/a", "query": "x=1",
//                        "headers": {"X-Language": "en"}, "cookies": {"vip": "1"}}, ...]}
// stdout: {"version": "0.5.0", "results": [null | {from, to, host, scheme, status, force,
//          negative, conditions, exceptions}, ...]}, one result per request, in order.
//
// The matcher is the one Netlify's edge and `netlify dev` use. It answers which rule matches
// and the rule's `to` with :splat and :placeholders already substituted; it does not look at
// files (shadowing) and does not append the request's query string: the caller does both.
// It reads the Language condition from the header X-Language (one tag, such as "en-GB") and
// the Cookie condition through getCookie(name) (a non-empty value means present). Header and
// cookie callbacks must return strings, never undefined.
'use strict';

const path = require('path');

let redirector;
try {
    redirector = require('netlify-redirector');
} catch (e) {
    process.stderr.write('match.js: cannot load netlify-redirector (' + e.message + '); run ' +
                         'scripts/deps.sh (npm ci in ' + path.relative(process.cwd(), __dirname) +
                         ')\n');
    process.exit(3);
}
const version = require('netlify-redirector/package.json').version;

function readStdin() {
    return require('fs').readFileSync(0, 'utf8');
}

function lookup(map, name) {
    if (!map)
        return '';
    const want = name.toLowerCase();
    for (const k of Object.keys(map))
        if (k.toLowerCase() === want)
            return String(map[k]);
    return '';
}

async function main() {
    const input = JSON.parse(readStdin());
    const matcher = await redirector.parsePlain(input.rules, {});
    const results = input.requests.map(r => {
        const m = matcher.match({
            scheme: r.scheme || 'http',
            host: r.host || '',
            path: r.path,
            query: r.query || '',
            getHeader: name => lookup(r.headers, name),
            getCookie: name => (r.cookies && Object.prototype.hasOwnProperty.call(r.cookies, name))
                                   ? String(r.cookies[name])
                                   : '',
        });
        return m ? JSON.parse(JSON.stringify(m)) : null;
    });
    process.stdout.write(JSON.stringify({version, results}) + '\n');
}

main().catch(e => {
    process.stderr.write('match.js: ' + (e && e.stack || e) + '\n');
    process.exit(1);
});
