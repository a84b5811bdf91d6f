/*
 * config_internal.h - shared between the files of the configuration loader only.
 *
 * Loading runs in two steps. yaml_tree.c turns the libyaml event stream into a small tree of
 * nodes (scalar, sequence, mapping) that remember their file positions, rejecting what the
 * loader never accepts (aliases, anchors, several documents, nesting deeper than
 * PT_CFG_MAX_DEPTH, duplicate keys). config.c then walks that tree against the schema and fills
 * struct pt_config (config.c and the config_*.c file of each section, sharing the getters of
 * config_get.c declared below). Both report errors through pt_config_error() (report.c), which
 * collects up to
 * PT_CFG_MAX_ERRORS messages and then stops the load with a longjmp back to the entry point;
 * every allocation of a load lives in one of two arenas (the tree's and the result's), so
 * jumping out leaks nothing as long as the libyaml parser and event are released, which the
 * entry point does from the flags kept here.
 */
#ifndef PT_CONFIG_CONFIG_INTERNAL_H
#define PT_CONFIG_CONFIG_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

#include "config/config.h"
#include "core/arena.h"

#define PT_CFG_MAX_ERRORS PT_CONFIG_MAX_ERRORS /* errors collected before the load stops */
#define PT_CFG_MAX_WARNINGS 200                /* warning lines kept; the rest are only counted */
#define PT_CFG_MAX_DEPTH 64                    /* nesting of sequences and mappings */
#define PT_CFG_MAX_FILE (8u << 20)             /* bytes in a configuration file */
#define PT_CFG_MSG_MAX PT_CONFIG_MSG_MAX       /* bytes of one message, position excluded */
#define PT_CFG_MAX_SCALAR (1u << 20)           /* bytes of one scalar after ${NAME} expansion */
#define PT_CFG_MAX_WEIGHT 1000                 /* weight of a target or a split branch */

enum pt_ynode_kind { PT_YNODE_SCALAR = 1, PT_YNODE_SEQ, PT_YNODE_MAP };

struct pt_ynode {
    int kind;               /* enum pt_ynode_kind */
    bool is_plain;          /* scalar written without quotes or block indicators */
    bool is_dup;            /* a mapping key seen earlier in the same mapping (reported) */
    bool is_bad;            /* its ${NAME} expansion failed (reported): getters stay quiet */
    struct pt_cfg_pos pos;  /* where the node starts */
    const char *s;          /* scalar text, NUL-terminated copy (may hold inner NULs) */
    size_t len;             /* scalar: bytes in s; containers: number of children */
    struct pt_ynode *child; /* first child: items, or key, value, key, value... */
    struct pt_ynode *last;  /* last child, for appending while building */
    struct pt_ynode *next;  /* next sibling */
};

/* A warning: the load goes on. file is NULL for the configuration file itself, else another
   file it names (a Netlify rule file); pos.line 0 means the file as a whole. */
struct pt_cfg_warnmsg {
    const char *file;
    struct pt_cfg_pos pos;
    unsigned seq;
    char msg[PT_CFG_MSG_MAX];
    struct pt_cfg_warnmsg *next;
};

struct pt_cfg_hostref {
    const char *host; /* normalised (lower case) */
    struct pt_cfg_pos pos;
    struct pt_cfg_hostref *next;
};

/* A value taken from the environment by ${NAME} expansion (yaml_tree.c): messages about the
   scalar at pos show "${NAME}" instead of these bytes, so secrets stay out of logs. Kept in
   the configuration's arena (pt_config.secrets) for the errors reported after the load. */
struct pt_cfg_secret {
    struct pt_cfg_pos pos; /* of the scalar it went into */
    const char *name;      /* variable name, NUL-terminated */
    const char *value;     /* its value (a copy, not NUL-terminated) */
    size_t len;
    const struct pt_cfg_secret *next;
};

struct pt_cfg_ctx {
    const char *name; /* file name used in messages */
    const char *buf;  /* the input */
    size_t len;
    struct pt_arena tmp;          /* the tree and scratch; freed when the load ends */
    struct pt_config *cfg;        /* the result being filled; its arena owns it */
    struct pt_config_errors errs; /* truncated: the load stopped */
    jmp_buf jb;                   /* longjmp target for "stop now" (too many errors, no memory) */
    yaml_parser_t parser;
    bool has_parser; /* parser initialised: delete it at the end */
    yaml_event_t ev;
    bool has_event;                    /* ev holds an event to delete */
    size_t n_named_ups;                /* upstreams from upstreams:, before those made for URLs */
    size_t ups_cap;                    /* slots in cfg->upstreams */
    struct pt_cfg_hostref *hosts;      /* every site host seen, for the duplicate check */
    struct pt_cfg_pos *listen_tls_pos; /* per listener: where tls: true is, line 0 if not */
    struct pt_cfg_warnmsg *warns;      /* warnings kept (newest first), in x->tmp */
    size_t n_warns;                    /* warnings reported, kept or not */
};

/*
 * Records an error at pos. After PT_CFG_MAX_ERRORS it marks the load truncated and jumps to
 * x->jb (does not return).
 */
void pt_config_error(struct pt_cfg_ctx *x, struct pt_cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Records a warning at pos of the configuration file ("FILE:LINE:COL: warning: message"): the
 * load goes on, and the configuration lists it (pt_config.warnings) for `check` and the log.
 */
void pt_config_warn(struct pt_cfg_ctx *x, struct pt_cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, at line:col of another file the configuration names (line 0: the whole file). */
void pt_config_warn_file(struct pt_cfg_ctx *x, const char *file, int line, int col, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));

/* Formats the warnings kept in x->tmp into cfg->warnings (config arena), sorted: the
   configuration file's first, then each other file's, each in line order. */
void pt_config_collect_warnings(struct pt_cfg_ctx *x);

/* Ends the load with an out-of-memory error; never returns. */
void pt_config_oom(struct pt_cfg_ctx *x) __attribute__((noreturn));

/* pt_arena_alloc on x->tmp or cfg arena that jumps out on failure instead of returning NULL. */
void *pt_config_alloc(struct pt_cfg_ctx *x, struct pt_arena *a, size_t n);
char *pt_config_strndup(struct pt_cfg_ctx *x, struct pt_arena *a, const char *s, size_t n);

/*
 * Parses x->buf into a tree allocated in x->tmp. Returns the root node, or NULL when the input
 * holds no document (an empty file) or an error was reported (check x->n_errs).
 */
struct pt_ynode *pt_config_yaml_tree(struct pt_cfg_ctx *x);

/*
 * Edit distance (optimal string alignment, ASCII case-insensitive) between a and b; strings
 * longer than 64 bytes give a large value.
 */
unsigned pt_config_distance(const char *a, size_t an, const char *b, size_t bn);

/* ---- the schema's shared helpers (config_get.c); each reports at the node it was given ---- */

/* Bytes of a user string shown in a message, so one huge value cannot drown the others. */
static inline int shown(size_t n)
{
    return n > 60 ? 60 : (int)n;
}

static inline bool is(const struct pt_ynode *n, const char *s)
{
    size_t l = strlen(s);
    return n->kind == PT_YNODE_SCALAR && n->len == l && memcmp(n->s, s, l) == 0;
}

static inline bool is_null(const struct pt_ynode *n)
{
    return n->kind == PT_YNODE_SCALAR && n->is_plain &&
           (n->len == 0 || is(n, "~") || is(n, "null") || is(n, "Null") || is(n, "NULL"));
}

static inline const char *what_is(const struct pt_ynode *n)
{
    if (n->kind == PT_YNODE_MAP)
        return "a mapping";
    if (n->kind == PT_YNODE_SEQ)
        return "a list";
    return is_null(n) ? "nothing" : "a single value";
}

#define FOR_PAIRS(m, k, v)                                                                         \
    for (const struct pt_ynode *k = (m)->child, *v = k ? k->next : NULL; k && v;                   \
         k = v->next, v = k ? k->next : NULL)
#define FOR_ITEMS(s, it) for (const struct pt_ynode *it = (s)->child; it; it = it->next)

/* The parts of an http:// or https:// URL (pt_config_parse_url); pointers into its text. */
struct pt_cfg_url {
    bool is_https;
    const char *host; /* without brackets */
    size_t host_len;
    bool is_v6;
    uint16_t port; /* 80/443 when absent */
    bool has_port;
    size_t origin_len; /* bytes of scheme://authority */
    const char *rest;  /* what follows the authority (path, query...) */
    size_t rest_len;
};

/* Whether n is a mapping / a list; otherwise reports "expected ... for \"key\"" and false. */
bool pt_config_want_map(struct pt_cfg_ctx *x, const struct pt_ynode *n, const char *key);
bool pt_config_want_seq(struct pt_cfg_ctx *x, const struct pt_ynode *n, const char *key);

/* A non-null scalar's text, or NULL after reporting "expected <expect> for key". */
const char *pt_config_scalar(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                             const char *expect);

/* A string without NUL, CR or LF (borrowed from the tree), or NULL after an error. */
const char *pt_config_get_str(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key);

/*
 * Typed getters: true and *out set, or false after an error at v (*out untouched). Numbers
 * must lie in lo..hi: get_ms takes a duration ("250ms", "30s"; a bare number is seconds),
 * get_size a size ("64k", "8m").
 */
bool pt_config_get_bool(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key, bool *out);
bool pt_config_get_uint(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                        uint64_t lo, uint64_t hi, uint64_t *out);
bool pt_config_get_ms(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key, uint64_t lo,
                      uint64_t hi, uint32_t *out);
bool pt_config_get_size(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                        uint64_t lo, uint64_t hi, uint64_t *out);

/* The name of names (NULL-terminated, at most count looked at) closest to s, for a
   did-you-mean; NULL when none is close enough. */
const char *pt_config_nearest(const char *s, size_t n, const char *const *names, size_t count);

/*
 * Whether key k is one of keys; else reports it at k (with a did-you-mean, or "not supported
 * yet" when it is in later, which may be NULL; where names the mapping) and returns false. A
 * duplicate key (reported by the tree) is false too.
 */
bool pt_config_known_key(struct pt_cfg_ctx *x, const struct pt_ynode *k, const char *const *keys,
                         const char *const *later, const char *where);

/* Reports that the mapping map (where names it) lacks the required key. */
void pt_config_missing(struct pt_cfg_ctx *x, const struct pt_ynode *map, const char *key,
                       const char *where);

/*
 * Paths the configuration names, made absolute from the configuration file's directory and
 * allocated in the configuration's arena. get_path checks only the value (what: "file" or
 * "directory", for messages); get_file and get_dir also check that it exists and can be read.
 * NULL after an error.
 */
char *pt_config_resolve_path(struct pt_cfg_ctx *x, const char *s, size_t n);
char *pt_config_get_path(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                         const char *what);
const char *pt_config_get_file(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key);
const char *pt_config_get_dir(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key);

/* Syntax checks on n bytes of s: an RFC 9110 token; a host name (letters, digits, '-', '_',
   '.'); an IPv6 address literal without brackets. */
bool pt_config_is_token(const char *s, size_t n);
bool pt_config_is_hostname(const char *s, size_t n);
bool pt_config_is_ipv6_literal(const char *s, size_t n);

/* A decimal port 1..65535, or -1. */
int pt_config_parse_port(const char *s, size_t n);

/* Splits an http:// or https:// URL into u. Returns NULL on success or what is wrong. */
const char *pt_config_parse_url(const char *s, size_t n, struct pt_cfg_url *u);

/*
 * Fills t from the URL in v (strings in the configuration's arena). For a named upstream's
 * target (is_inline false) the part after the authority is the base path (no query or
 * fragment); for a proxy.to URL only scheme://host:port is used. A host name is only marked
 * (t->is_dns): pt_dns_expand() resolves it after the load. False after an error at v.
 */
bool pt_config_make_target(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                           bool is_inline, struct pt_target_cfg *t);

/* ---- sections, each in its file; v is the section's value node ---------------------------- */

/* listen: and tls: (config_listen.c). check_tls_listeners runs once the whole file is read:
   a listener with tls: true needs certificates or acme:. */
void pt_config_load_listen(struct pt_cfg_ctx *x, const struct pt_ynode *v);
void pt_config_load_tls(struct pt_cfg_ctx *x, const struct pt_ynode *v);
void pt_config_check_tls_listeners(struct pt_cfg_ctx *x);
/* "0.0.0.0:8080", "[::1]:9900", ":8080" into *out (config_listen.c). Returns NULL on success
   or what is wrong. */
const char *pt_config_parse_listen_addr(const char *s, size_t n, struct pt_sockaddr *out);
/* admin: (config_admin.c); check_admin runs once the whole file is read (its address against
   the traffic listeners'). */
void pt_config_load_admin(struct pt_cfg_ctx *x, const struct pt_ynode *v);

/* config_ratelimit.c: a site's or route's rate_limit:, and the top-level rate_limits:. */
void pt_config_load_rate_limit(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                               struct pt_rate_limit_cfg *rl);
void pt_config_load_rate_limits(struct pt_cfg_ctx *x, const struct pt_ynode *v);

/* config_cache.c: the top-level cache: section, its defaults, and a route's cache:. */
void pt_config_cache_defaults(struct pt_cache_cfg *c);
void pt_config_load_cache(struct pt_cfg_ctx *x, const struct pt_ynode *v);
void pt_config_load_route_cache(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                struct pt_route_cfg *r);
void pt_config_check_admin(struct pt_cfg_ctx *x);
/* A log file path for key (config.c): resolved, and writable or creatable; NULL after an
   error at v. Nothing is created. */
const char *pt_config_get_log_file(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key);
/* http2: (config_listen.c): settings of HTTP/2 client connections. */
void pt_config_load_http2(struct pt_cfg_ctx *x, const struct pt_ynode *v);

/* upstreams: (config_upstreams.c). new_upstream makes one with the contract's defaults,
   appended to cfg->upstreams (its index set), name copied into the arena. */
void pt_config_load_upstreams(struct pt_cfg_ctx *x, const struct pt_ynode *v);
struct pt_upstream_cfg *pt_config_new_upstream(struct pt_cfg_ctx *x, const char *name, size_t len,
                                               struct pt_cfg_pos pos);

/* A site's routes: (config_routes.c). inline_upstream returns the upstream of one target for
   the proxy.to URL v (made on first use, shared by every route naming the same origin) and
   sets p->to_path; NULL after an error. */
void pt_config_load_routes(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                           struct pt_site_cfg *site);
struct pt_upstream_cfg *pt_config_inline_upstream(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                                  struct pt_proxy_cfg *p);
/* "PREFIX:scheme://host:port" naming u's origin, host lower-cased (in x->tmp); *len is its
   length. The name of an upstream made for a URL ("url:" from the file, "api:" from the
   rules API). */
char *pt_config_origin_name(struct pt_cfg_ctx *x, const char *prefix, const struct pt_cfg_url *u,
                            size_t *len);

/*
 * sites: (config_sites.c). load_site fills one site; load_netlify reads the site's Netlify
 * files (those named, or the defaults under its static root) and compiles their rules into
 * routes; load_errors reads an errors: mapping (top level or a site's) into *out; check_sites
 * reports a host named by two sites, once every site is loaded.
 */
void pt_config_load_site(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_site_cfg *site);
void pt_config_load_netlify(struct pt_cfg_ctx *x, struct pt_site_cfg *site, bool has_redirects_key,
                            bool has_headers_key);
/* ip: (config_ip.c): the mapping v into a new struct pt_ip_cfg (configuration arena, linked
   into cfg->ips), stored in *out. */
/* config_conn.c: the connection and slow-client keys of limits: (is_conn_key says which);
   loads one of them into lim. */
bool pt_config_is_conn_key(const struct pt_ynode *k);
void pt_config_load_conn_key(struct pt_cfg_ctx *x, const struct pt_ynode *k,
                             const struct pt_ynode *v, struct pt_limits_cfg *lim);

void pt_config_load_ip(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_ip_cfg **out);
/* forward_auth: (config_fwdauth.c): the value v into *out (configuration arena); `off` sets
   *out to NULL. Either way *is_set becomes true. */
void pt_config_load_fwdauth(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                            const struct pt_fwdauth_cfg **out, bool *is_set);
/* The upstream named s (the scalar v) under upstreams: (config_routes.c), or NULL after
   reporting it unknown. */
struct pt_upstream_cfg *pt_config_named_upstream(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                                 const char *s);
/* After the whole load: countries need the top-level geoip: database. */
void pt_config_check_ip(struct pt_cfg_ctx *x);

/* waf: (config_waf.c): off, detect, block or a mapping into a new struct pt_waf_cfg
   (configuration arena, linked into cfg->wafs, defaults filled in), stored in *out. */
void pt_config_load_waf(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_waf_cfg **out);
/* waf_crs: {setup: FILE, rules: DIR} at the top level. */
void pt_config_load_waf_crs(struct pt_cfg_ctx *x, const struct pt_ynode *v);
/* After the whole load: the CRS paths' defaults; a route without waf: takes its site's, and a
   waf: off becomes NULL (no WAF: one pointer test on the request path). */
void pt_config_finish_waf(struct pt_cfg_ctx *x);
/* basic_auth: and jwt: (config_auth.c): v into a new struct in the configuration's arena,
   stored in *out (`off` gives one with is_on false); jwt: is linked into cfg->jwts.
   finish_auth, once a site's routes are loaded: routes without their own take the site's,
   `off` becomes NULL, and proxy routes drop the client's copies of claim headers (and of
   Authorization when forward_credentials is false) through their request remove list. */
void pt_config_load_basic_auth(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                               struct pt_basic_auth_cfg **out);
void pt_config_load_jwt(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_jwt_cfg **out);
void pt_config_finish_auth(struct pt_cfg_ctx *x, struct pt_site_cfg *site);

/* compress: (config_compress.c): true, false or a mapping, into c (every field set, the
   defaults included: a route's replaces its site's whole). */
void pt_config_load_compress(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                             struct pt_compress_cfg *c);
/* Fills c with the defaults (is_set, is_on as given, the default types, 256 bytes, br zstd
   gzip, levels 5 3 6). */
void pt_config_compress_defaults(struct pt_compress_cfg *c, bool is_on);
void pt_config_load_errors(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                           struct pt_error_page **out, size_t *n_out);
void pt_config_check_sites(struct pt_cfg_ctx *x);

#endif
