/*
 * config.h - the validated configuration, as loaded from one YAML (or JSON) file.
 *
 * pt_config_load() reads the file with libyaml, checks every key and value, and fills a
 * struct pt_config whose memory all lives in one arena (cfg->arena), so a configuration is
 * freed in one call. Nothing here touches sockets or threads: the server builds its runtime
 * snapshot (router, upstream state) from this. Errors carry FILE:LINE:COL positions.
 *
 * See docs/config.md for every key.
 */
#ifndef PT_CONFIG_CONFIG_H
#define PT_CONFIG_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "core/arena.h"

struct pt_cfg_pos {
    int line; /* 1-based line in the file; 0 when unknown */
    int col;  /* 1-based column */
};

#define PT_CONFIG_MAX_ERRORS 20            /* errors reported before a load stops */
#define PT_CONFIG_MSG_MAX 240              /* bytes of one error message, position excluded */
#define PT_CONFIG_RESOLVER_TIMEOUT_MS 2000 /* default resolver.timeout */

struct pt_sockaddr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } u;
    socklen_t len;
};

/* Whether a and b hold the same address and port (byte-wise, the first len bytes). */
static inline bool pt_sockaddr_eq(const struct pt_sockaddr *a, const struct pt_sockaddr *b)
{
    return a->len == b->len && memcmp(&a->u, &b->u, a->len) == 0;
}

enum pt_client_auth { PT_CLIENT_AUTH_NONE = 0, PT_CLIENT_AUTH_OPTIONAL, PT_CLIENT_AUTH_REQUIRED };

struct pt_listen_cfg {
    const char *addr_text;   /* as written, e.g. "0.0.0.0:8080" */
    struct pt_sockaddr addr; /* ":8080" means 0.0.0.0:8080 */
    bool is_tls;
    struct pt_cfg_pos pos;
    const char *client_ca; /* PEM file of CAs for client certificates (mTLS), or NULL */
    int client_auth;       /* enum pt_client_auth; default none, optional/required need client_ca */
    const char *client_subject_header;     /* header carrying the verified subject, or NULL */
    const char *client_fingerprint_header; /* header carrying its SHA-256 fingerprint, or NULL */
    bool is_http2;        /* ALPN h2 on TLS (default on), h2c by prior knowledge on plain (default
                      off); http2: says otherwise */
    struct pt_ip_cfg *ip; /* ip: rules checked on the socket peer at accept, before TLS
                             (server/connguard.c); NULL: none */
};

/* tls: certificates and protocol settings for listeners with tls: true. */
struct pt_tls_cert_cfg {
    const char *cert; /* PEM certificate chain file */
    const char *key;  /* PEM private key file */
    struct pt_cfg_pos pos;
};

/* tls.acme: certificates obtained and renewed automatically (RFC 8555). */
struct pt_acme_cfg {
    bool is_set;           /* an acme: section was given */
    const char *email;     /* account contact, or NULL */
    const char *directory; /* directory URL (https) */
    const char *ca_root;   /* PEM CA file to trust the ACME server with, or NULL (system store) */
    const char *storage;   /* directory for the account key and certificates (made 0700) */
    struct pt_cfg_pos pos;
};

struct pt_tls_cfg {
    bool is_set; /* a tls: section was given */
    struct pt_acme_cfg acme;
    struct pt_tls_cert_cfg *certificates; /* the first is the default certificate */
    size_t n_certificates;
    const char *min_version;     /* "1.2" (default) or "1.3" */
    const char *ciphers;         /* TLS 1.2 cipher list, NULL: Portico's forward-secret AEAD list */
    const char *ciphersuites;    /* TLS 1.3 suites, NULL: OpenSSL's defaults */
    bool session_tickets;        /* default true */
    uint32_t ticket_rotation_ms; /* default 12h */
    uint32_t session_cache_size; /* sessions in the server-side cache; default 20480; 0 = off */
    struct pt_cfg_pos pos;
};

struct pt_limits_cfg {
    uint64_t header_size;          /* bytes; default 16k; whole request head; over it: 431 */
    uint32_t headers;              /* count; default 100; over it: 431 */
    uint64_t uri_size;             /* bytes; default 8k; over it: 414 */
    uint64_t body_size;            /* bytes; default 1g; over it: 413 */
    uint32_t header_timeout_ms;    /* default 10s */
    uint32_t body_timeout_ms;      /* default 30s */
    uint32_t keepalive_timeout_ms; /* default 60s */
    uint32_t send_timeout_ms;      /* default 30s */
    uint32_t max_connections;      /* client connections per process; 0: from RLIMIT_NOFILE */
    uint32_t tunnel_timeout_ms;    /* idle WebSocket tunnel; default 1h */
    uint32_t max_tunnels;          /* open tunnels per worker; default 10000; over it: 503 */
    /* Connection and slow-client limits (config/config_conn.c; server/connguard.c). */
    uint32_t max_connections_per_client; /* open connections per peer address; 0: no cap */
    uint32_t max_requests_per_client;    /* requests in flight per client address (behind
                                            trusted_proxies); 0: no cap; over it: 429 */
    uint32_t body_min_rate;              /* bytes/s a request body must average while Portico
                                            waits for it; 0: only body_timeout; default 1k */
    uint32_t send_min_rate;              /* bytes/s a client must take a response at while
                                            Portico waits on it; 0: only send_timeout; 1k */
    uint32_t auth_hash_queue;            /* basic_auth hashes waiting for the process's hashing
                                      threads (server/offload.c); default 64; over it: 503 */
};

/* http2: settings of every HTTP/2 client connection (listeners with http2: true). */
struct pt_http2_cfg {
    uint32_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS; default 100 */
    uint32_t initial_window_size;    /* bytes; SETTINGS_INITIAL_WINDOW_SIZE; default 65535 */
    uint32_t max_header_list_size;   /* bytes (RFC 9113 §6.5.2 size); 0: limits.header_size */
    struct pt_cfg_pos pos;
};

struct pt_cidr {
    int family;         /* AF_INET or AF_INET6 (IPv4 stored as such, not mapped) */
    uint8_t addr[16];   /* network address, host bits zeroed */
    uint8_t prefix_len; /* 0..32 or 0..128 */
};

enum pt_log_format { PT_LOG_FORMAT_COMBINED = 0, PT_LOG_FORMAT_JSON = 1 };

struct pt_log_cfg {
    int level;          /* enum pt_log_level (core/log.h); default info */
    const char *access; /* "stdout" (default), "stderr", "off", or a file path */
    int format;         /* enum pt_log_format; default combined */
};

struct pt_kv {
    const char *name; /* NUL-terminated */
    size_t name_len;
    const char *value; /* NUL-terminated */
    size_t value_len;
};

struct pt_header_ops {
    struct pt_kv *set; /* replace every header of that name (or add when absent) */
    size_t n_set;
    struct pt_kv *add; /* append, keeping existing ones */
    size_t n_add;
    struct pt_kv *remove; /* only name/name_len used */
    size_t n_remove;
    bool is_server_removed; /* remove lists Server (decided at load, not per response) */
    bool is_server_set;     /* set names Server */
};

enum pt_balance {
    PT_BALANCE_ROUND_ROBIN = 0,
    PT_BALANCE_LEAST_CONN,
    PT_BALANCE_RANDOM,
    PT_BALANCE_EWMA,
    PT_BALANCE_HASH,
    PT_BALANCE_COOKIE,
    PT_BALANCE_P2C,
};

#define PT_MAX_TARGETS 256 /* targets per upstream */

/* hash_key: what balance: hash hashes. */
enum pt_hash_key_kind {
    PT_HASH_KEY_NONE = 0,
    PT_HASH_KEY_IP,     /* client address (after trusted_proxies) */
    PT_HASH_KEY_PATH,   /* request path, without the query */
    PT_HASH_KEY_HEADER, /* value of header `name` */
    PT_HASH_KEY_COOKIE, /* value of cookie `name` */
    PT_HASH_KEY_QUERY,  /* value of query argument `name` */
};

struct pt_hash_key_cfg {
    int kind;         /* enum pt_hash_key_kind; NONE when balance is not hash */
    const char *name; /* header/cookie/query name (NUL-terminated), "" for ip/path */
    size_t name_len;
};

enum pt_health_type { PT_HEALTH_HTTP = 0, PT_HEALTH_TCP = 1 };

struct pt_status_range {
    uint16_t lo, hi; /* inclusive, 100..599 */
};

struct pt_health_cfg {
    bool is_enabled;                /* a health: section was given */
    int type;                       /* enum pt_health_type; default http */
    const char *method;             /* default "GET" (a token) */
    const char *path;               /* default "/"; starts with '/' */
    const char *host;               /* Host header; NULL means the target's host_header */
    const char *body;               /* substring the body must contain; NULL: not checked */
    struct pt_status_range *expect; /* default one range 200-399 */
    size_t n_expect;
    uint32_t interval_ms; /* default 5s */
    uint32_t timeout_ms;  /* default 2s, at most interval */
    uint32_t rise;        /* passes in a row to mark a down target up; default 2 */
    uint32_t fall;        /* failures in a row to mark an up target down; default 3 */
    struct pt_cfg_pos pos;
};

struct pt_outlier_cfg {
    bool is_enabled;                /* an outlier: section was given */
    uint32_t consecutive_failures;  /* default 5 */
    bool include_5xx;               /* count 5xx responses as failures; default false */
    uint32_t base_ejection_time_ms; /* default 30s */
    uint32_t max_ejection_time_ms;  /* default 300s, >= base */
    uint32_t max_ejection_percent;  /* 0..100, default 50 */
};

/* retry_on flags (pt_upstream_cfg.retry_on). */
enum pt_retry_on {
    PT_RETRY_CONNECT_FAILURE = 1u << 0,
    PT_RETRY_RESET = 1u << 1,
    PT_RETRY_TIMEOUT = 1u << 2,
};

struct pt_target_cfg {
    const char *url; /* as written */
    bool is_https;
    const char *host;        /* host as written in the URL (name or address literal, no []) */
    uint16_t port;           /* default 80 / 443 */
    const char *host_header; /* value for Host when not preserve_host: "host[:port]" */
    const char *base_path;   /* path of the URL without trailing '/', "" when none */
    struct pt_sockaddr addr; /* the address (a DNS name expands into one target per address) */
    uint32_t weight;         /* default 1, 1..1000 */
    struct pt_cfg_pos pos;
    bool is_backup;           /* used only when no primary target is available */
    uint32_t max_connections; /* concurrent requests across workers; 0 = unlimited */
    uint32_t occurrence;      /* 0, or n for the n-th repeat of the same url in this upstream */
    bool is_dns; /* host is a DNS name: addr is zero until pt_dns_expand() (upstream/dns.h)
                    makes this target one of the name's addresses */
};

/* How Portico speaks to an upstream's targets (pt_upstream_cfg.protocol). */
enum pt_upstream_protocol {
    PT_UPROTO_HTTP11 = 0, /* HTTP/1.1, plain or TLS by the target URL's scheme (default) */
    PT_UPROTO_H2,         /* HTTP/2 over TLS, negotiated with ALPN: https targets only */
    PT_UPROTO_H2C,        /* HTTP/2 by prior knowledge over plain TCP: http targets only */
};

struct pt_upstream_cfg {
    const char *name; /* key under upstreams:, or "url:<url>" for an inline URL */
    int protocol;     /* enum pt_upstream_protocol; default PT_UPROTO_HTTP11 */
    struct pt_target_cfg *targets;
    size_t n_targets;   /* >= 1 */
    int balance;        /* enum pt_balance */
    uint32_t keepalive; /* idle pooled connections kept per worker per target; default 64 */
    uint32_t connect_timeout_ms; /* default 2s */
    uint32_t retries;            /* default 1 */
    size_t index;                /* position in pt_config.upstreams */
    struct pt_cfg_pos pos;
    struct pt_hash_key_cfg hash_key; /* set when balance is hash */
    struct pt_health_cfg health;
    struct pt_outlier_cfg outlier;
    uint32_t slow_start_ms;   /* weight ramp after a target becomes available; 0 = off */
    uint32_t retry_on;        /* enum pt_retry_on flags; default connect_failure|reset */
    uint16_t *retry_statuses; /* 5xx statuses that may be retried (idempotent requests) */
    size_t n_retry_statuses;
    uint32_t retry_budget_pct;    /* retries per request over a sliding window; default 20 */
    uint32_t per_try_timeout_ms;  /* 0 = off (the route timeout alone) */
    uint32_t max_pending;         /* requests queued for max_connections; default 100 */
    uint32_t resolve_interval_ms; /* DNS re-resolution; default 30s */
    size_t n_primary;             /* targets with is_backup false */
    /* https targets (TLS to backends) */
    const char *ca_file; /* PEM CAs to verify targets with; NULL: the system store */
    bool tls_verify;     /* default true; false only when written, warned about at start */
    const char *cert;    /* client certificate for mTLS to the targets, or NULL */
    const char *key;     /* its key */
    /* SSRF guard (upstream/ssrf.h): when set, every address is checked before each connect
       (requests and health checks) and one in a forbidden range is refused */
    bool ssrf_guard;                     /* default false: YAML targets are trusted */
    const struct pt_cidr *allow_private; /* prefixes the guard lets through; arena-owned */
    size_t n_allow_private;
    bool is_dns_lenient; /* a target name that does not resolve stays unresolved (its
                            connects are refused: 502) instead of failing the load: the rules
                            API's upstreams, so one bad rule cannot stop every build */
};

enum pt_action { PT_ACTION_PROXY = 1, PT_ACTION_REDIRECT, PT_ACTION_RESPOND, PT_ACTION_STATIC };

#define PT_STATIC_MAX_INDEX_CFG 8

/* static: files from a directory (handler/static.h has the semantics). */
struct pt_static_cfg {
    const char *root;                           /* directory; must exist at load */
    const char *index[PT_STATIC_MAX_INDEX_CFG]; /* default {"index.html"} */
    size_t n_index;
    bool spa;                   /* default false */
    bool precompressed;         /* default true */
    const char *cache_control;  /* default NULL (none sent) */
    int dotfiles;               /* 0 deny (default), 1 allow, 2 ignore */
    const char *not_found_page; /* default "404.html" (in root); "" disables */
    size_t index_in_config;     /* 0.. n_static_routes-1: the snapshot's opened root for it */
};

/* One arm of proxy.split. */
struct pt_split_cfg {
    const char *to;                   /* upstream name */
    struct pt_upstream_cfg *upstream; /* resolved */
    uint32_t weight;                  /* 0..1000; the arms' sum is > 0 */
    const char *force_header;         /* header name that forces this arm, or NULL */
    size_t force_header_len;
    const char *force_header_value; /* its value (compared exactly, case-sensitive) */
    size_t force_header_value_len;
    const char *force_cookie; /* cookie name that forces this arm, or NULL */
    size_t force_cookie_len;
    const char *force_cookie_value; /* required value, or NULL: any value */
    size_t force_cookie_value_len;
    struct pt_cfg_pos pos;
};

struct pt_proxy_cfg {
    const char *to;                   /* as written: upstream name or URL (may hold :splat etc);
                                         with split: the first arm's upstream name */
    struct pt_upstream_cfg *upstream; /* the named upstream, or one made for a URL; with split:
                                         the first arm's (a fallback until split is wired) */
    const char *to_path;              /* for a URL target: its path template ("" when none) */
    bool strip_prefix;
    bool preserve_host;
    bool strip_credentials;
    bool refuses_websocket; /* websocket: false; an Upgrade request gets 403 */
    uint32_t timeout_ms;    /* to the response head; default 30s, at most 60s */
    struct pt_header_ops request;
    struct pt_header_ops response;
    struct pt_split_cfg *split; /* NULL unless proxy.split was given (then n_split >= 1) */
    size_t n_split;
};

struct pt_redirect_cfg {
    const char *to; /* template: may use :splat, :name, $1..$9 */
    int status;     /* 301 (default), 302, 303, 307, 308 */
};

struct pt_respond_cfg {
    int status;       /* default 200 */
    const char *body; /* default "" */
    size_t body_len;
    struct pt_kv *headers;
    size_t n_headers;
};

struct pt_nf_rule;        /* config/netlify.h */
struct pt_nf_header_rule; /* config/netlify.h */

struct pt_ip_rules; /* guard/ip.h: an ip: compiled into address ranges */

/*
 * ip: on a site or a route (the route's replaces the site's whole): IP rules, checked by the
 * guard (guard/ip.c). Addresses come from allow/deny and from the lines of allow_files and
 * deny_files, read at load (a reload reads them again). Country codes are packed as
 * ('A' << 8 | 'B'), upper-case, as pt_ip_country_code packs them.
 */
struct pt_ip_cfg {
    struct pt_cidr *allow, *deny;
    size_t n_allow, n_deny;
    bool has_allow;               /* allow or allow_files given: other addresses are refused */
    uint16_t *allow_cc, *deny_cc; /* countries.allow / countries.deny */
    size_t n_allow_cc, n_deny_cc;
    struct pt_cfg_pos pos;     /* of the ip: value */
    struct pt_ip_cfg *next;    /* every ip: of the configuration (pt_config.ips) */
    struct pt_ip_rules *rules; /* compiled by the server for its snapshot (guard/ip.h),
                                      freed with it; NULL in `check` */
};

struct pt_waf_rules; /* guard/waf.h: a waf: compiled into a ModSecurity rule set */

/* waf.mode: what the WAF does with a request the rules would refuse. */
enum pt_waf_mode {
    PT_WAF_OFF = 0, /* waf: off (a route lifting its site's) */
    PT_WAF_DETECT,  /* logged (audit log, info line), let through */
    PT_WAF_BLOCK,   /* refused with a 403 */
};

/* waf.exclude: one rule exclusion of a route or site: by id (or id range) or by tag, whole or
   for one target (turned into SecRuleRemoveById/ByTag or SecRuleUpdateTargetById/ByTag). */
struct pt_waf_exclude {
    uint32_t id_lo, id_hi; /* id: N or "N-M"; 0 when by tag */
    const char *tag;       /* tag: ...; NULL when by id */
    const char *target;    /* target: "ARGS:foo"; NULL: the whole rule */
};

/*
 * waf: on a site or a route (the route's replaces the site's whole; `waf: off` at a route
 * lifts its site's): libmodsecurity with the OWASP CRS, checked by the guard (guard/waf.c).
 * Every waf: is linked into pt_config.wafs; the server compiles each into rules when the
 * snapshot is built (identical ones share one compiled set) and frees them with it.
 */
struct pt_waf_cfg {
    enum pt_waf_mode mode;       /* default block */
    uint8_t paranoia;            /* 1..4, default 1 */
    uint16_t inbound_threshold;  /* anomaly_threshold.inbound, default 5 */
    uint16_t outbound_threshold; /* anomaly_threshold.outbound, default 4 */
    bool profile_api;            /* profile: api (default) loads Portico's profile; none */
    const char **rules;          /* rules: the operator's ModSecurity files (resolved paths) */
    size_t n_rules;
    struct pt_waf_exclude *excludes; /* exclude: */
    size_t n_excludes;
    uint64_t body_limit;     /* body_limit: bytes of a request body inspected (default 128k) */
    bool is_over_limit_pass; /* over_limit: pass (inspect the first body_limit bytes, pass the
                                rest); default refuse: 413 */
    bool inspect_response;   /* inspect_response: always false (true is refused at load:
                                response inspection is not there yet, issue #13) */
    const char *audit_log;   /* audit_log: JSON lines file (resolved), or NULL */
    struct pt_cfg_pos pos;   /* of the waf: value */
    struct pt_waf_cfg *next; /* every waf: of the configuration (pt_config.wafs) */
    struct pt_waf_rules *compiled; /* compiled by the server for its snapshot (guard/waf.h),
                                      shared by identical waf:s, freed with it */
};

/*
 * forward_auth: on a site or a route (the route's replaces the site's; `off` at a route lifts
 * it): every request first asks an auth service (nginx auth_request, Traefik ForwardAuth). The
 * call is a proxied request on route (a proxy route made here to the auth upstream: a named
 * one, with its balancing and health, or one made for a URL), run by the server
 * (server/fwdauth.c) while the client's request waits.
 */
struct pt_fwdauth_cfg {
    struct pt_route_cfg *route;   /* the auth call's: proxy to the auth upstream, no cache */
    const char *path;             /* the auth call's target path (url's path, or path:; "/") */
    uint32_t timeout_ms;          /* the whole auth call; default 5s */
    const char **request_headers; /* client fields sent along (default Authorization, Cookie) */
    size_t n_request_headers;
    const char **response_headers; /* fields of a 2xx copied into the request, replacing the
                                      client's; lower-case */
    size_t n_response_headers;
    uint32_t cache_ttl_ms;  /* 0: no cache; else 2xx answers are kept this long (per worker) */
    const char **cache_key; /* client fields whose values key the cache (default
                                request_headers), with the method and the URI */
    size_t n_cache_key;
    struct pt_cfg_pos pos; /* of the forward_auth: value */
};

struct pt_jwt_keyset; /* guard/jwt.h: verification keys */
struct pt_jwks_src;   /* guard/jwks_fetch.h: a jwks_url fetched in the background */

/* One line of an htpasswd file: a user and its crypt(3) hash (both NUL-terminated). */
struct pt_htpasswd_user {
    const char *name;
    const char *hash; /* "$2y$...", "$5$...", "$6$..." or "$y$..." */
};

/*
 * basic_auth: on a site or a route (guard/auth_basic.c); a route's replaces its site's, and
 * `basic_auth: off` lifts it. The users come from the htpasswd file, read at load (a reload
 * reads it again).
 */
struct pt_basic_auth_cfg {
    bool is_on;                     /* false: `off` (a route lifting its site's) */
    const char *realm;              /* default "Restricted" */
    const char *htpasswd;           /* resolved path */
    struct pt_htpasswd_user *users; /* in file order */
    size_t n_users;
    bool forward_credentials; /* Authorization goes upstream (default true, as nginx) */
    const char *challenge;    /* "WWW-Authenticate: Basic realm=..., charset=...\r\n" */
    size_t challenge_len;
    struct pt_cfg_pos pos;
};

/* claims_to_headers: one claim copied into a request header for the backend. */
struct pt_jwt_claim_header {
    const char *claim;
    const char *header; /* as written (a token) */
    size_t header_len;
};

/*
 * jwt: on a site or a route (guard/jwt.c); a route's replaces its site's, and `jwt: off` lifts
 * it. Keys come from jwks_file or secret_file (read at load; the server compiles them into
 * keys for its snapshot) or from jwks_url (fetched in the background by guard/jwks_fetch.c).
 */
struct pt_jwt_cfg {
    bool is_on;            /* false: `off` */
    const char *jwks_file; /* resolved path, or NULL */
    const char *jwks_text; /* its contents (NUL-terminated) */
    size_t jwks_len;
    const char *secret_file;     /* resolved path, or NULL */
    const unsigned char *secret; /* its bytes (a trailing newline dropped) */
    size_t secret_len;
    const char *jwks_url;     /* http:// or https:// URL, or NULL */
    const char *jwks_ca;      /* PEM CA file for an https jwks_url, or NULL: the system's */
    uint32_t jwks_refresh_ms; /* default 5 min */
    uint32_t jwks_timeout_ms; /* one fetch (default 10 s) */
    const char *issuer;       /* iss must equal it, or NULL */
    const char *audience;     /* aud (string or array) must hold it, or NULL */
    uint32_t clock_skew_s;    /* default 60 */
    const char **require;     /* claims that must be present, NULL-ended (default exp) */
    const char *header;       /* header the token comes in (default "authorization") */
    size_t header_len;
    bool is_bearer;     /* header is Authorization: the Bearer scheme is required */
    const char *cookie; /* or the cookie of that name, or NULL */
    size_t cookie_len;
    struct pt_jwt_claim_header *claims; /* claims_to_headers, in order */
    size_t n_claims;
    bool forward_credentials; /* the token's header goes upstream (default true) */
    struct pt_cfg_pos pos;
    struct pt_jwt_cfg *next;    /* every jwt: of the configuration (pt_config.jwts) */
    struct pt_jwt_keyset *keys; /* jwks_file/secret_file compiled by the server for its
                                   snapshot, freed with it; NULL with jwks_url */
    struct pt_jwks_src *src;    /* jwks_url: the shared background source (held by the
                                   snapshot) */
};

/* compress: on a site or a route (the route's replaces the site's whole). */
enum pt_coding { PT_CODING_NONE = 0, PT_CODING_GZIP, PT_CODING_BR, PT_CODING_ZSTD, PT_CODING_N };
struct pt_compress_cfg {
    bool is_set;        /* compress: was given here */
    bool is_on;         /* default off */
    const char **types; /* MIME types ("text/ANY" prefixes), NULL-terminated; default list */
    uint64_t min_size;  /* bytes: a response announced shorter is sent as it is (default
                                256) */
    uint8_t order[PT_CODING_N]; /* preference among equal q-values, PT_CODING_NONE-ended
                                   (default br, zstd, gzip) */
    int level[PT_CODING_N];     /* per coding (gzip 6, br 5, zstd 3) */
};

/* rate_limit: on a site or a route (guard/rate.c); the route's replaces the site's. */
enum pt_rl_kind { PT_RL_IP = 0, PT_RL_ROUTE, PT_RL_HEADER, PT_RL_COOKIE, PT_RL_QUERY };
#define PT_RL_KEY_PARTS 4
struct pt_rl_part {
    int kind;         /* enum pt_rl_kind */
    const char *name; /* header, cookie or query parameter name; NULL for ip and route */
    size_t name_len;
};
struct pt_rate_limit_cfg {
    bool is_set; /* rate_limit: was given here (false: none, over the site's) */
    bool is_on;
    const char *name;     /* the limit's name in RateLimit-Policy (a token; "default") */
    uint64_t interval_us; /* 1 / rate */
    uint64_t rate_x1000;  /* requests per 1,000 s, for messages */
    uint32_t burst;       /* requests at once (default 1) */
    uint32_t delay_ms;    /* delay: the longest a request over the burst is held for its slot
                             (0: such a request is refused at once) */
    struct pt_rl_part parts[PT_RL_KEY_PARTS];
    size_t n_parts; /* the key: default [ip] */
    struct pt_cfg_pos pos;
};

/* cache: on a route (RFC 9111 shared cache; handler/cache.c). */
struct pt_route_cache_cfg {
    bool is_on;            /* cache: given (and not enabled: false) */
    int64_t default_ttl_s; /* lifetime when the response gives none (0: none) */
    int16_t *ttl_status;   /* ttl: {STATUS: DURATION}: forced lifetimes */
    int64_t *ttl_s;
    size_t n_ttl;
    bool key_query_all;       /* key.query: all (default) */
    const char **key_query;   /* key.query: [names]: only these parameters (sorted), NULL-ended;
                                  [] : none */
    const char **key_headers; /* key.headers: [names] (lower-cased), NULL-ended, or NULL */
    bool store_set_cookie;    /* cookies: true: responses with Set-Cookie may be stored */
    bool is_coalescing;       /* lock: default true */
    uint32_t lock_timeout_ms; /* how long a request waits for another's fetch (default 5s) */
    int64_t stale_if_error_s; /* stale_if_error: a default window (0: the response's only) */
};

struct pt_route_cfg {
    const char *match;          /* pattern as written (see route/pattern.h) */
    uint32_t methods_mask;      /* bit (1u << enum pt_http_method); 0 means all methods */
    const char **methods_other; /* extension methods listed (tokens), NULL-terminated or NULL */
    int action;                 /* enum pt_action */
    struct pt_proxy_cfg proxy;
    struct pt_redirect_cfg redirect;
    struct pt_respond_cfg respond;
    struct pt_static_cfg files;          /* action static */
    struct pt_compress_cfg compress;     /* is_set: the route's; else the site's applies */
    struct pt_route_cache_cfg cache;     /* proxy routes */
    struct pt_rate_limit_cfg rate_limit; /* is_set: the route's; else the site's applies */
    struct pt_ip_cfg *ip;                /* the route's ip:, else its site's; NULL: no IP rules */
    const struct pt_fwdauth_cfg *forward_auth; /* the route's, else its site's; NULL: none */
    bool forward_auth_is_set;                  /* forward_auth: given here (off included) */
    struct pt_basic_auth_cfg *basic_auth;      /* the route's, else its site's; NULL: none */
    struct pt_jwt_cfg *jwt;                    /* the route's, else its site's; NULL: none */
    struct pt_waf_cfg *waf;      /* the route's waf:, else its site's; NULL: no WAF (waf: off) */
    struct pt_cfg_pos pos;       /* position of the route's mapping */
    struct pt_cfg_pos match_pos; /* position of the match value */
    bool no_guards; /* set by the server for its snapshot (server/main.c): no guard applies to
                       the route, so the pipeline skips its guard step; false runs them all */
    const struct pt_nf_rule *nf; /* non-NULL: compiled from a Netlify rule (_redirects or
                                    netlify.toml); conditions, shadowing and rewrites are
                                    checked at dispatch (handler/netlify_rules.h) */
};

#define PT_ERROR_PAGE_MAX (1u << 20) /* bytes of one errors: page file */

/* errors: {STATUS: FILE}: a page Portico sends instead of its own for an error it writes. */
struct pt_error_page {
    int status;       /* 400..599 */
    const char *path; /* resolved path (its extension gives the Content-Type) */
    const char *body; /* the file's contents, read at load */
    size_t body_len;  /* <= PT_ERROR_PAGE_MAX */
};

struct pt_site_cfg {
    const char **hosts; /* lower-cased; "*.example.com" wildcards; may end in ":port" */
    size_t n_hosts;     /* 0 means default site */
    struct pt_route_cfg *routes;
    size_t n_routes;
    struct pt_cfg_pos pos;
    bool https_redirect;          /* plain-HTTP requests get 308 to https (ACME challenges aside) */
    bool hsts_is_set;             /* hsts: given: Strict-Transport-Security on https responses */
    uint64_t hsts_max_age_s;      /* seconds (a duration is accepted and converted) */
    bool hsts_include_subdomains; /* default false */
    bool hsts_preload;            /* default false */
    const char *redirects_file;   /* resolved path of the _redirects read, or NULL */
    const char *headers_file;     /* resolved path of the _headers read, or NULL */
    const char *netlify_toml;     /* resolved path of netlify.toml, or NULL */
    const char *nf_root;          /* root of the site's first static route (shadowing,
                                     rewrites), or NULL */
    struct pt_nf_header_rule *nf_headers; /* _headers then [[headers]] rules, in order */
    size_t n_nf_headers;
    struct pt_error_page *error_pages; /* errors: of the site (over the top level's) */
    size_t n_error_pages;
    struct pt_compress_cfg compress;           /* the site's default for its routes */
    struct pt_rate_limit_cfg rate_limit;       /* the site's default for its routes */
    struct pt_ip_cfg *ip;                      /* the site's ip: for routes without one, or NULL */
    const struct pt_fwdauth_cfg *forward_auth; /* the site's, for routes without one, or NULL */
    struct pt_basic_auth_cfg *basic_auth;      /* the site's for routes without one, or NULL */
    struct pt_jwt_cfg *jwt;                    /* the site's for routes without one, or NULL */
    struct pt_waf_cfg *waf;                    /* the site's waf: for routes without one, or NULL */
    bool is_api; /* made from the rules store (pt_config_add_api_sites): its request.set
                    values are header secrets, wiped by pt_config_free */
};

/* resolver: how target host names are resolved (c-ares, upstream/dns.c). */
struct pt_resolver_cfg {
    const char *servers; /* "ip:port,[ip6]:port" for c-ares, or NULL: /etc/resolv.conf */
    uint32_t timeout_ms; /* one resolution, all tries; default 2s */
    struct pt_cfg_pos pos;
};

/* geoip: the MaxMind DB file for Netlify Country= conditions (handler/geoip.h opens it). */
struct pt_geoip_cfg {
    bool is_set;           /* a geoip: section was given */
    const char *database;  /* resolved path of the .mmdb file, or NULL */
    struct pt_cfg_pos pos; /* of the database value (errors opening the file point here) */
};

/*
 * admin: the admin listener (src/admin/), off the request path; absent section: none. Loaded by
 * config_admin.c. store, key_file, allow_private and ca_file are read here for the rules API
 * (issue 11) and used by the code that serves it.
 */
struct pt_admin_cfg {
    bool is_set;                   /* an admin: section was given */
    const char *listen_text;       /* as written; "127.0.0.1:9900" by default */
    struct pt_sockaddr addr;       /* where the admin listener binds */
    bool is_loopback;              /* addr is 127.0.0.0/8 or ::1 */
    const char *tls_cert;          /* tls.cert: PEM chain for the admin listener, or NULL (plain) */
    const char *tls_key;           /* tls.key: its private key */
    const char *client_ca;         /* PEM CAs whose client certificates are required, or NULL */
    const char *tokens_file;       /* required: "NAME SCOPE SHA256HEX" lines (admin/tokens.h) */
    const char *audit_log;         /* JSON lines of every change, or NULL: none */
    const char *store;             /* SQLite file of the rules API, or NULL */
    const char *key_file;          /* 32-byte secret key file, or NULL */
    struct pt_cidr *allow_private; /* CIDRs API rules may target despite the SSRF guard */
    size_t n_allow_private;
    const char *ca_file;       /* PEM CAs for API rules' https targets, or NULL: system store */
    struct pt_cfg_pos pos;     /* of the admin: value */
    struct pt_cfg_pos tls_pos; /* of the tls: value (certificate errors point here) */
};

/* cache: the store every cached route shares (cache/store.h). */
struct pt_cache_cfg {
    bool is_set;
    uint64_t memory_bytes;     /* default 256 MiB */
    uint64_t max_object_bytes; /* default 8 MiB */
    const char *disk_path;     /* disk.path (resolved), or NULL */
    uint64_t disk_bytes;       /* disk.size, default 1 GiB */
    bool status_header;        /* Cache-Status on responses of cached routes (default true) */
    const char **tag_headers;  /* response fields whose values are tags, lower-cased,
                                  NULL-ended (default cache-tag, surrogate-key); stripped */
    struct pt_cfg_pos pos;
};

struct pt_config {
    struct pt_arena arena;        /* owns every byte below */
    const char *path;             /* file it came from */
    uint32_t workers;             /* >= 1; "auto" resolved to the CPU count */
    uint32_t shutdown_timeout_ms; /* default 30s */
    struct pt_listen_cfg *listens;
    size_t n_listens; /* >= 1 */
    struct pt_limits_cfg limits;
    struct pt_http2_cfg http2;
    struct pt_cidr *trusted_proxies;
    size_t n_trusted_proxies;
    struct pt_log_cfg log;
    struct pt_upstream_cfg **upstreams; /* named ones first, then those made for URL targets */
    size_t n_upstreams;
    struct pt_site_cfg *sites;
    size_t n_sites;
    struct pt_tls_cfg tls;
    size_t n_static_routes; /* routes with action static, numbered by files.index_in_config */
    struct pt_resolver_cfg resolver;
    struct pt_geoip_cfg geoip;
    struct pt_ip_cfg *ips;             /* every ip: of sites and routes, linked by next */
    struct pt_jwt_cfg *jwts;           /* every jwt: of sites and routes, linked by next */
    struct pt_error_page *error_pages; /* top-level errors: for every site, and for errors
                                          answered before a site is known (400, 408, 414, 431) */
    size_t n_error_pages;
    const char *server_header; /* Server value on every response; NULL: none (server_header off) */
    const char *server_line;   /* "Server: VALUE\r\n", or "" when off */
    size_t server_line_len;
    /* Warnings found while loading ("FILE:LINE:COL: warning: message", where FILE is the
       configuration file or a rule file it names): the configuration file's first, then the
       other files' by file name; each file's in line order. `check` prints them, `run` logs
       them, and `check --strict` fails on any. */
    const char **warnings;
    size_t n_warning_lines; /* lines in warnings (at most 200) */
    size_t n_warnings;      /* warnings found, >= n_warning_lines */
    const char *pid_file;   /* resolved path `run` writes its process id to; NULL when not set */
    const struct pt_cfg_secret *secrets; /* values taken from the environment (${NAME}), which
                                            pt_config_report() keeps out of messages; opaque */
    struct pt_admin_cfg admin;
    struct pt_cache_cfg cache;
    uint64_t rate_limit_keys;    /* rate_limits.max_keys: the shared table's size (1,000,000) */
    uint64_t rate_limit_delayed; /* rate_limits.max_delayed: requests one worker holds at once
                                    for delay: (1,024) */
    struct pt_waf_cfg *wafs;     /* every waf: of sites and routes, linked by next */
    const char *waf_crs_setup;   /* waf_crs.setup: the CRS setup file
                                  (/etc/modsecurity/crs/crs-setup.conf) */
    const char *waf_crs_rules;   /* waf_crs.rules: the directory of the CRS REQUEST-* and
                                  RESPONSE-* files (/usr/share/modsecurity-crs/rules) */
};

/*
 * The rules API's sites (issue #11), described without the admin layer: server/ reads the
 * store and fills these; pt_config_add_api_sites() turns them into sites, routes and
 * upstreams. Strings are borrowed (copied into the configuration's arena).
 */
struct pt_api_header {
    const char *name;
    const char *value;
};

struct pt_api_rule {
    const char *id;         /* for messages */
    const char *pattern;    /* pathPattern, read as a YAML route's match */
    const char *target_url; /* http:// or https:// URL, with an optional path */
    bool strip_prefix;
    bool preserve_host;
    uint32_t timeout_ms;             /* 0: 30 s */
    const struct pt_api_header *add; /* headerConfig.add: set on the request */
    size_t n_add;
    const char *const *remove; /* headerConfig.remove */
    size_t n_remove;
};

struct pt_api_site {
    const char *const *hosts; /* hostnames of the project or alias; none: skipped */
    size_t n_hosts;
    const struct pt_api_rule *rules; /* in evaluation order: the first match wins */
    size_t n_rules;
};

/*
 * Appends one site per entry of sites (those without hosts or rules are skipped) after cfg's
 * own. Each rule is a proxy route to an upstream made for its target's origin, with the SSRF
 * guard on (admin.allow_private as its exceptions) and admin.ca_file as its CAs, which strips
 * Cookie and Authorization unless the rule sets them. Host, framing and hop-by-hop names in a
 * rule's add or remove are ignored (Portico writes those itself). The caller checks that no host is
 * already a site's, and runs pt_dns_expand() afterwards. Returns PT_OK (err holds "" or, "; "
 * separated, the rules skipped for an unusable target) or PT_ERR (out of memory, in err).
 */
int pt_config_add_api_sites(struct pt_config *cfg, const struct pt_api_site *sites, size_t n_sites,
                            char *err, size_t errlen);

/* One error about a place in the configuration file. */
struct pt_config_errmsg {
    struct pt_cfg_pos pos; /* line 0: the file as a whole */
    unsigned seq;          /* order of reporting, keeps the sort stable */
    char msg[PT_CONFIG_MSG_MAX];
};

/*
 * Errors about a configuration file: the loader collects its own here, and so do the steps
 * above it that finish a loaded configuration (the DNS expansion, upstream/dns.h), so that
 * both print the same "FILE:LINE:COL: message" lines. Zero-initialise before use.
 */
struct pt_config_errors {
    struct pt_config_errmsg items[PT_CONFIG_MAX_ERRORS];
    size_t n;
    bool is_truncated; /* more than PT_CONFIG_MAX_ERRORS were reported; the rest are dropped */
};

/*
 * Loads and validates path. On success returns PT_OK and *out owns a new configuration (free it
 * with pt_config_free). On failure returns PT_ERR and writes one or more lines, each
 * "FILE:LINE:COL: message" (unknown keys add "; did you mean \"key\"?"), into err (always
 * NUL-terminated, truncated to errlen). Never blocks except on file reads. A target whose host
 * is a name is only checked here (is_dns, no address yet): upstream/dns.h expands it.
 */
int pt_config_load(const char *path, struct pt_config **out, char *err, size_t errlen);

/* Same, from a buffer (fuzzing, unit tests). name is used in error positions. */
int pt_config_load_buf(const char *name, const char *buf, size_t len, struct pt_config **out,
                       char *err, size_t errlen);

/*
 * Records in e an error at pos of cfg's file (borrowed; only its list of environment values
 * is read), worded by fmt, with every value taken from the environment for the scalar at pos
 * replaced by "${NAME}" as the loader does. Returns false, dropping the message and setting
 * e->is_truncated, when e already holds PT_CONFIG_MAX_ERRORS.
 */
bool pt_config_report(const struct pt_config *cfg, struct pt_config_errors *e,
                      struct pt_cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Sorts e by position and writes its errors into err (NUL-terminated, truncated to errlen) as
 * pt_config_load does: one "NAME:LINE:COL: message" line each ("NAME: message" at line 0),
 * then "NAME: too many errors, stopped after 20" when e is truncated.
 */
void pt_config_format_errors(const char *name, struct pt_config_errors *e, char *err,
                             size_t errlen);

void pt_config_free(struct pt_config *cfg);

/* Parses "250ms", "30s", "5m", "1h" (also a bare integer of seconds). Returns 0 or -1. */
int pt_config_parse_duration(const char *s, uint64_t *ms);
/* Parses "512", "64k", "8m", "1g" (binary multiples). Returns 0 or -1. */
int pt_config_parse_size(const char *s, uint64_t *bytes);
/* Parses "10.0.0.0/8", "::1", "192.168.1.1" (no prefix = host). Returns 0 or -1. */
int pt_config_parse_cidr(const char *s, struct pt_cidr *out);
/* True when the address (sockaddr_in or sockaddr_in6, v4-mapped handled) is in the CIDR. */
bool pt_cidr_contains(const struct pt_cidr *c, const struct sockaddr *sa);
/* The errors: page for status on site (NULL: none of its own) or else at cfg's top level;
   NULL when neither has one. */
const struct pt_error_page *pt_config_error_page(const struct pt_config *cfg,
                                                 const struct pt_site_cfg *site, int status);
/* True when sa is in one of cfg's trusted_proxies (peers whose X-Forwarded-For is believed). */
bool pt_config_is_trusted_proxy(const struct pt_config *cfg, const struct sockaddr *sa);

/*
 * One line of an htpasswd file (config_auth.c), edited in place: "user:hash" fills out (name
 * and hash NUL-terminated inside line) and returns 1; a blank or "#" line returns 0; a line
 * that is wrong, or whose hash is not bcrypt, SHA-crypt or yescrypt, returns -1 with *why set
 * to a static message. Never allocates.
 */
int pt_config_parse_htpasswd_line(char *line, size_t n, struct pt_htpasswd_user *out,
                                  const char **why);

#endif
