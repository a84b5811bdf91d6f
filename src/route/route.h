/*
 * route.h - sites, path patterns and template expansion. Path normalisation is http/path.h
 * (included here: routes match on normalised paths).
 *
 * pt_router_build() compiles a loaded configuration into lookup structures once per snapshot:
 * site selection by Host (exact names in a hash, "*." wildcards by longest suffix, then the
 * default site), and per site an ordered route list whose patterns are pre-classified (exact,
 * prefix, suffix, placeholders, PCRE2 regex compiled and JIT-ed at load). Matching a request
 * never allocates: captures are slices of the normalised path held in struct pt_route_match.
 *
 * The router is immutable after build and shared by all workers without locks; the PCRE2 match
 * data a regex needs is thread-local, created on a thread's first regex match.
 */
#ifndef PT_ROUTE_ROUTE_H
#define PT_ROUTE_ROUTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "core/str.h"
#include "http/path.h"

#define PT_ROUTE_MAX_PARAMS 16   /* :name placeholders per pattern */
#define PT_ROUTE_MAX_CAPTURES 10 /* $0..$9 */

struct pt_router;
struct pt_site; /* opaque compiled site */

struct pt_route_match {
    const struct pt_route_cfg *route;
    struct pt_str splat; /* prefix/suffix rest; empty otherwise; p NULL: none, so a
                            template's ":splat" stays as written (Netlify rules) */
    size_t n_params;
    struct pt_str param_names[PT_ROUTE_MAX_PARAMS]; /* without the ':' */
    struct pt_str param_values[PT_ROUTE_MAX_PARAMS];
    size_t n_captures;                             /* regex: 1 + number of groups, at most 10 */
    struct pt_str captures[PT_ROUTE_MAX_CAPTURES]; /* [0] whole match; unset groups empty */
    size_t strip_len; /* bytes strip_prefix removes from the front of the path (prefix
                         patterns: the literal before '*' without its trailing '/'; else 0) */
};

/*
 * Builds the router for cfg (borrowed: cfg must outlive the router). On failure returns PT_ERR
 * and writes "FILE:LINE:COL: message" lines into err (e.g. a regex that does not compile, a
 * placeholder used in a template that the pattern does not define, two default sites, a host
 * listed twice). Returns PT_OK and *out on success.
 */
int pt_router_build(const struct pt_config *cfg, struct pt_router **out, char *err, size_t errlen);
void pt_router_free(struct pt_router *rt);

/*
 * Chooses the site for a Host header value (may carry ":port"; compared case-insensitively,
 * a trailing dot ignored). A host entry with ":port" matches only that port; one without
 * matches any port. Exact names win over wildcards, longer wildcards over shorter, and the
 * default site (no hosts) takes the rest. Returns NULL when nothing matches (404).
 */
const struct pt_site *pt_router_site(const struct pt_router *rt, const char *host, size_t len);

/* The configuration of a site returned by pt_router_site (borrowed from the config); NULL for
 * NULL. */
const struct pt_site_cfg *pt_router_site_cfg(const struct pt_site *site);

/*
 * Finds the first route of site matching method (enum pt_http_method; method_tok for
 * extension methods) and the normalised path. Fills *m (its slices point into path).
 * Returns the route, or NULL when none matches (404) and sets *method_mismatch when some route
 * matched the path but not the method (405 with Allow would be possible; Portico answers 404
 * unless a route matched the path, then 405).
 */
const struct pt_route_cfg *pt_router_match(const struct pt_router *rt, const struct pt_site *site,
                                           int method, struct pt_str method_tok, const char *path,
                                           size_t path_len, struct pt_route_match *m,
                                           int *method_mismatch);

/*
 * Like pt_router_match, but starts at the site's route number *at (0 for the first) and sets
 * *at to the number of the route returned (the count of routes when none matches), so that a
 * caller can go on with the routes after one it declined (Netlify conditions, shadowing).
 */
const struct pt_route_cfg *pt_router_match_from(const struct pt_router *rt,
                                                const struct pt_site *site, int method,
                                                struct pt_str method_tok, const char *path,
                                                size_t path_len, struct pt_route_match *m,
                                                int *method_mismatch, size_t *at);

/* The kinds of path pattern (pt_route_pattern_check). */
enum pt_route_pattern_kind {
    PT_ROUTE_PAT_EXACT = 0,  /* "/graphql" */
    PT_ROUTE_PAT_PREFIX = 1, /* "/api/" then a star */
    PT_ROUTE_PAT_SUFFIX = 2, /* "*.json" */
    PT_ROUTE_PAT_PARAMS = 3, /* "/blog/:year/:slug" */
    PT_ROUTE_PAT_REGEX = 4,  /* "~^/v[0-9]+/" */
};

/*
 * Checks one path pattern by the rules pt_router_build compiles a route's "match" with, for
 * patterns that come from elsewhere than the YAML file (the admin API's proxy rules). Returns
 * its enum pt_route_pattern_kind, or -1 with one message in msg (NUL-terminated, truncated to
 * cap; no "FILE:LINE" prefix). Allocates only for the check; any thread.
 */
int pt_route_pattern_check(const char *pattern, char *msg, size_t cap);

/*
 * Expands a redirect/proxy template: ":splat", ":name" (a placeholder of the matched
 * pattern) and "$0".."$9" are replaced by the match's values (placeholders as they appear in
 * the normalised path, encoded for the wire with pt_path_encode rules); a name the match does
 * not supply (":splat" when m->splat.p is NULL) is left as written. Returns the length
 * written or -1 when out is too small.
 */
ssize_t pt_route_expand(const char *tmpl, const struct pt_route_match *m, char *out, size_t outlen);

#endif
