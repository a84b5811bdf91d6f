/*
 * netlify_rules.h - request-time side of Netlify rules (_redirects, _headers, netlify.toml).
 *
 * config.c compiles each redirect rule into an ordinary route (struct pt_route_cfg with nf
 * set): its path pattern is matched by the router like any route. What a pattern cannot say is
 * checked here, at dispatch: query-parameter conditions (whose :placeholders join the match),
 * Language=, Cookie= and Country= conditions, and shadowing (an unforced rule yields to a static file at
 * the request path). Local rewrites (status 200 to a path) and custom error pages (404, 410,
 * 451 to a path) are answered here too, as are the _headers rules added to responses.
 */
#ifndef PT_HANDLER_NETLIFY_RULES_H
#define PT_HANDLER_NETLIFY_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/str.h"
#include "http/h1_parse.h"
#include "route/route.h"

struct pt_geoip;
struct pt_req;

/* What a Netlify rule's conditions are checked against: one request, as dispatch sees it.
   Build one per request (not per rule tried): the country is looked up once and kept here. */
struct pt_nf_req {
    const struct pt_site_cfg *site; /* the site the request was routed to */
    const struct pt_req_head *h;    /* parsed head (headers for Language= and Cookie=) */
    const struct pt_sockaddr *peer; /* the client's address (the connection's peer) */
    bool is_tls;                    /* the request came over TLS */
    struct pt_str host;             /* Host (or absolute-form target host), as received */
    struct pt_str query;            /* raw query string, without '?' */
    const struct pt_config *cfg;    /* trusted_proxies, for the client address of Country= */
    const struct pt_geoip *geoip;   /* the snapshot's database; NULL: Country= never holds */
    int country_state;              /* 0: not looked up yet; 1: country is set; -1: unknown */
    char country[3];                /* the client's ISO 3166-1 code, lower case (state 1) */
};

/*
 * Whether the Netlify rule of route applies to this request: a domain-level rule's scheme and
 * host match, its query conditions hold (their placeholders are appended to m's params), its
 * Language= / Cookie= / Country= conditions hold, and, unless forced, no regular file (or
 * directory with index.html) exists at path under the site's static root. path is the
 * normalised path. The first Country= condition tried fills q's country cache.
 */
bool pt_nf_rule_applies(struct pt_nf_req *q, const struct pt_route_cfg *route, const char *path,
                        size_t path_len, struct pt_route_match *m);

/* The `to` template of a Netlify route (route->nf set). */
const char *pt_nf_rule_to(const struct pt_route_cfg *route);

/*
 * Answers a local Netlify rule of status 404, 410 or 451: the file its `to` names under the
 * site's static root with that status, or Portico's error page when there is none.
 */
void pt_nf_error_page(struct pt_req *r, const char *to, size_t to_len);

/*
 * Writes the response header lines ("Name: value\r\n"...) that the site's _headers rules give
 * the request of r (its path taken from r->uri) into a thread-local buffer and returns it, with
 * its length in *n (0 and "" when none apply). Valid until the next call on the thread.
 */
const char *pt_nf_header_lines(const struct pt_req *r, size_t *n);

/*
 * Whether the header lines ("Name: value\r\n"..., as pt_nf_header_lines writes them) set name
 * (compared case-insensitively): a header a _headers rule sets replaces the response's own.
 */
bool pt_nf_lines_have(const char *lines, size_t len, struct pt_str name);

/*
 * The rule files that the sites of cfg read (_redirects, _headers, netlify.toml; each path
 * borrowed from cfg), gathered into *out, a malloc'ed array of *n entries that the caller
 * frees (NULL when there is none). Static roots take it so that no route serves one.
 * Returns 0, or -1 when out of memory (*out NULL, *n 0).
 */
int pt_nf_rule_files(const struct pt_config *cfg, const char ***out, size_t *n);

#endif
