/*
 * main.c - the command line, process setup, signals and configuration reload.
 *
 * The main thread parses the command, loads the configuration into a snapshot, binds every
 * listener (so a bind error is one clear line and exit 1 before anything starts), starts the
 * workers, and then only waits for signals with sigtimedwait(): SIGHUP builds a new snapshot
 * and hands it to the workers (an invalid file is logged and the old snapshot keeps serving);
 * SIGUSR1 reopens the access log in place; SIGTERM, SIGINT and SIGQUIT drain the workers and
 * exit 0. Every signal whose default action would end the process (but the synchronous ones
 * a crash raises) is blocked in every thread from the first line of `run`, so no handler ever
 * runs asynchronously and none can stop Portico without a log line: those Portico has no use
 * for are logged and ignored (run_signals below is the one list, docs/operations.md its table).
 */
#include <ares.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <maxminddb.h>
#include <openssl/crypto.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "admin/keycmd.h"
#include "admin/metrics.h"
#include "core/counters.h"
#include "admin/admin.h"
#include "admin/api.h"
#include "admin/cache_api.h"
#include "admin/tokens.h"
#include "core/log.h"
#include "core/sock.h"
#include "cache/store.h"
#include "guard/rate.h"
#include "handler/cache.h"
#include "guard/connlimit.h"
#include "guard/ip.h"
#include "guard/jwks_fetch.h"
#include "guard/jwt.h"
#include "guard/waf.h"
#include "handler/geoip.h"
#include "handler/mime.h"
#include "handler/netlify_rules.h"
#include "handler/static.h"
#include "server/api_rules.h"
#include "server/notify.h"
#include "server/offload.h"
#include "server/pidfile.h"
#include "server/worker.h"
#include "tls/acme.h"
#include "tls/tls.h"
#include "upstream/dns.h"
#include "upstream/health.h"

#define PT_VERSION "0.1.0"
#ifndef PT_LIBSYSTEMD_VERSION /* set by the Makefile from pkg-config */
#define PT_LIBSYSTEMD_VERSION "unknown"
#endif
#define ERR_BYTES 8192

static const char *const usage_text =
    "usage: portico <command> [options]\n"
    "\n"
    "commands:\n"
    "  run    [-c FILE]   run in the foreground (default FILE: ./portico.yaml)\n"
    "  check  [-c FILE] [--strict]   validate FILE; print \"ok\" or FILE:LINE:COL: errors\n"
    "  reload [-c FILE | --pid PIDFILE]   check FILE, then make the running Portico reload it\n"
    "  stop   [-c FILE | --pid PIDFILE] [--timeout SECONDS]   stop the running Portico\n"
    "  keygen FILE       write a new key file for header secrets (never overwrites)\n"
    "  rotate-key [-c FILE] --store PATH --key OLD --new-key NEW   re-encrypt the store's secrets\n"
    "  token  NAME [--scope read|write]   make an admin API token and its tokens-file line\n"
    "  version           print the version of portico and of its libraries\n"
    "  help [COMMAND]    print this help, or a command's\n";

static int cmd_help(const char *what)
{
    if (what && strcmp(what, "run") == 0)
        printf("usage: portico run [-c FILE]\n\n"
               "Runs Portico in the foreground with FILE (default ./portico.yaml).\n"
               "SIGHUP reloads the file (an invalid one is rejected and the old configuration\n"
               "keeps serving); SIGUSR1 reopens the access log file (log rotation); SIGTERM,\n"
               "SIGINT or SIGQUIT stop accepting, let requests in flight finish for up to\n"
               "shutdown_timeout, and exit 0. Other signals are logged and ignored.\n");
    else if (what && strcmp(what, "check") == 0)
        printf("usage: portico check [-c FILE] [--strict]\n\n"
               "Validates FILE and prints \"ok\" (exit 0) or one FILE:LINE:COL: message line per\n"
               "error (exit 1). Warnings are printed as FILE:LINE:COL: warning: message lines,\n"
               "then \"ok (N warnings)\"; --strict makes any warning an error (exit 1).\n");
    else if (what && strcmp(what, "reload") == 0)
        printf("usage: portico reload [-c FILE] [--pid PIDFILE]\n\n"
               "Checks FILE (default ./portico.yaml) like `check`, and when it is valid sends\n"
               "SIGHUP to the process named in its pid_file (or in PIDFILE), which reloads it.\n"
               "With --pid alone, only signals. Exit 0 once signalled, 1 otherwise.\n");
    else if (what && strcmp(what, "stop") == 0)
        printf("usage: portico stop [-c FILE] [--pid PIDFILE] [--timeout SECONDS]\n\n"
               "Sends SIGTERM to the process named in FILE's pid_file (or in PIDFILE) and waits\n"
               "until it has drained and exited: at most SECONDS (default: FILE's\n"
               "shutdown_timeout plus 10, or 40 with --pid alone). Exit 0 once it is gone, 1\n"
               "when it is still running or was not running.\n");
    else if (what && strcmp(what, "keygen") == 0)
        printf("usage: portico keygen FILE\n\n"
               "Writes 32 random bytes to FILE, created with mode 0600: the key that encrypts\n"
               "the header secrets of the rules store. Refuses to overwrite an existing file.\n");
    else if (what && strcmp(what, "rotate-key") == 0)
        printf("usage: portico rotate-key [-c FILE] --store PATH --key OLD --new-key NEW\n\n"
               "Re-encrypts every header secret of the rules store PATH from key file OLD to\n"
               "key file NEW (make it with portico keygen), in one transaction: a value that\n"
               "does not open with OLD changes nothing. Then configure NEW as the key file.\n"
               "With -c FILE, --store and --key default to admin.store and admin.key_file.\n");
    else if (what && strcmp(what, "token") == 0)
        printf("usage: portico token NAME [--scope read|write]\n\n"
               "Makes a random admin API token named NAME (scope read by default; write may\n"
               "also change things) and prints two lines to stdout: the token, shown only\n"
               "now, and the \"NAME SCOPE SHA256\" line to add to admin.tokens_file, which\n"
               "keeps only the hash. Reload (SIGHUP) to take the file anew.\n");
    else if (what && strcmp(what, "version") == 0)
        printf("usage: portico version\n\nPrints Portico's version and its libraries'.\n");
    else if (what && strcmp(what, "help") != 0) {
        fprintf(stderr, "portico: unknown command \"%s\"\n%s", what, usage_text);
        return 1;
    } else
        fputs(usage_text, stdout);
    return 0;
}

/* Portico's version, then one "library version" line per linked library, read from the
   library itself where it says (the version actually loaded, which a distribution update may
   change under an unchanged binary), else the one built against. */
static int cmd_version(void)
{
    char pcre[64] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    printf("portico %s\n", PT_VERSION);
    printf("openssl %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
    printf("libyaml %s\n", yaml_get_version_string());
    printf("pcre2 %s\n", pcre);
    printf("jansson %s\n", jansson_version_str());
    printf("c-ares %s\n", ares_version(NULL));
    printf("libmaxminddb %s\n", MMDB_lib_version());
    /* libsystemd has no call that returns its version: this is the one built against. */
    printf("libsystemd %s\n", PT_LIBSYSTEMD_VERSION);
    printf("sqlite %s\n", sqlite3_libversion());
    return 0;
}

static struct pt_acme *acme;   /* the ACME manager (main thread only), NULL without tls.acme */
static struct pt_admin *admin; /* the admin listener (main thread only), NULL without admin: */
/* Every thread's counter blocks (core/counters.h), from the start of `run` to its end. */
static struct pt_counters *counters;

/* What GET /metrics renders: the snapshot now serving, handed over by the main thread under a
   lock; a scrape (on the admin thread) holds its own reference while it renders. */
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pt_snapshot *metrics_snap; /* one reference, or NULL */
static uint32_t metrics_workers;

/* Makes s (a reference is taken; NULL drops the one held) what /metrics renders. */
static void metrics_publish(struct pt_snapshot *s)
{
    if (s)
        pt_snapshot_ref(s);
    pthread_mutex_lock(&metrics_lock);
    struct pt_snapshot *old = metrics_snap;
    metrics_snap = s;
    pthread_mutex_unlock(&metrics_lock);
    if (old)
        pt_snapshot_unref(old);
}

/* GET /metrics (admin thread, a token of either scope): the Prometheus text page. */
static void on_metrics(struct pt_admin_req *q, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&metrics_lock);
    struct pt_snapshot *s = metrics_snap;
    if (s)
        pt_snapshot_ref(s);
    pthread_mutex_unlock(&metrics_lock);
    if (!s) {
        pt_admin_reply_error(q, 503, NULL, "not serving yet");
        return;
    }
    struct pt_gbuf out = {.max = 64u << 20};
    struct pt_metrics_view v = {counters,   metrics_workers,      s->cfg,        s->metrics,
                                s->res.urt, pt_upstream_now_ms(), pt_cache_store};
    int rc = pt_metrics_render(&out, &v);
    pt_snapshot_unref(s);
    if (rc < 0) {
        pt_gbuf_free(&out);
        pt_admin_reply_error(q, 500, NULL, "the metrics page does not fit in 64 MiB");
        return;
    }
    pt_admin_reply_text(q, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
}

/* Tells the ACME manager about cfg: starts it (acme NULL) or updates it. The host list is
   gathered for the call only. Returns 0, or -1 with err filled when the start failed. */
static int acme_follow(const struct pt_config *cfg, char *err, size_t errlen)
{
    const struct pt_acme_cfg *ac = &cfg->tls.acme;
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_sites; i++)
        n += cfg->sites[i].n_hosts;
    const char **hosts = calloc(n ? n : 1, sizeof(*hosts));
    if (!hosts) {
        snprintf(err, errlen, "acme: out of memory");
        return -1;
    }
    n = 0;
    for (size_t i = 0; i < cfg->n_sites; i++)
        for (size_t j = 0; j < cfg->sites[i].n_hosts; j++)
            hosts[n++] = cfg->sites[i].hosts[j];
    struct pt_acme_settings s = {ac->email, ac->directory, ac->ca_root, ac->storage, hosts, n};
    int rc = 0;
    if (acme) {
        pt_acme_update(acme, ac->is_set ? &s : NULL);
    } else {
        acme = pt_acme_start(ac->is_set ? &s : NULL, err, errlen);
        rc = !acme && err[0] ? -1 : 0;
    }
    free(hosts);
    return rc;
}

/* Opens what routes and listeners need from the filesystem: static roots and TLS contexts
   (certificates are read and checked here, so a bad one fails the load, not a request).
   Returns 0, or -1 with err filled. */
static int open_resources(struct pt_snapshot *s, const struct pt_snapshot *prev, char *err,
                          size_t errlen)
{
    const struct pt_config *cfg = s->cfg;
    if (cfg->n_static_routes) {
        s->res.roots = calloc(cfg->n_static_routes, sizeof(*s->res.roots));
        if (!s->res.roots)
            goto oom;
        s->res.n_roots = cfg->n_static_routes;
    }
    const char **rule_files; /* never served by a static route (Netlify never serves them) */
    size_t n_rule_files;
    if (pt_nf_rule_files(cfg, &rule_files, &n_rule_files) < 0)
        goto oom;
    for (size_t i = 0; i < cfg->n_sites; i++)
        for (size_t j = 0; j < cfg->sites[i].n_routes; j++) {
            const struct pt_route_cfg *rc = &cfg->sites[i].routes[j];
            if (rc->action != PT_ACTION_STATIC)
                continue;
            const struct pt_static_cfg *f = &rc->files;
            struct pt_static_settings st;
            pt_static_settings_init(&st);
            st.root = f->root;
            for (size_t k = 0; k < f->n_index && k < PT_STATIC_MAX_INDEX; k++)
                st.index[st.n_index++] = f->index[k];
            st.spa = f->spa;
            st.precompressed = f->precompressed;
            st.cache_control = f->cache_control;
            st.dotfiles = f->dotfiles == 1   ? PT_STATIC_DOT_ALLOW
                          : f->dotfiles == 2 ? PT_STATIC_DOT_IGNORE
                                             : PT_STATIC_DOT_DENY;
            st.not_found_page = f->not_found_page;
            st.hidden = rule_files;
            st.n_hidden = n_rule_files;
            char e[256] = "";
            if (pt_static_root_open(&st, &s->res.roots[f->index_in_config], e, sizeof(e)) < 0) {
                free(rule_files);
                snprintf(err, errlen, "%s:%d:%d: static: %s", cfg->path, rc->pos.line, rc->pos.col,
                         e);
                return -1;
            }
        }
    free(rule_files);
    s->listen_tls = calloc(cfg->n_listens ? cfg->n_listens : 1, sizeof(*s->listen_tls));
    if (!s->listen_tls)
        goto oom;
    s->n_listen_tls = cfg->n_listens;
    struct pt_tls_cert_settings certs[64];
    size_t n_certs = PT_MIN(cfg->tls.n_certificates, PT_ARRAY_LEN(certs));
    for (size_t i = 0; i < n_certs; i++)
        certs[i] = (struct pt_tls_cert_settings){cfg->tls.certificates[i].cert,
                                                 cfg->tls.certificates[i].key};
    /* Certificates the ACME manager obtained (or placeholders until they arrive). */
    if (acme)
        n_certs += pt_acme_certificates(acme, certs + n_certs, PT_ARRAY_LEN(certs) - n_certs);
    for (size_t j = 0; j < cfg->n_listens; j++) {
        const struct pt_listen_cfg *l = &cfg->listens[j];
        if (!l->is_tls)
            continue;
        if (n_certs == 0 && cfg->tls.acme.is_set)
            continue; /* ACME has no name to serve yet: connections are closed unanswered */
        struct pt_tls_settings ts;
        pt_tls_settings_init(&ts);
        ts.certs = certs;
        ts.n_certs = n_certs;
        if (cfg->tls.min_version)
            ts.min_version = cfg->tls.min_version;
        ts.ciphers = cfg->tls.ciphers;
        ts.ciphersuites = cfg->tls.ciphersuites;
        ts.session_tickets = cfg->tls.session_tickets;
        if (cfg->tls.ticket_rotation_ms)
            ts.ticket_rotation_ms = cfg->tls.ticket_rotation_ms;
        ts.session_cache_size = cfg->tls.session_cache_size;
        /* HTTP/2 (the default on TLS) offers h2 first (server preference), HTTP/1.1 still for
           the rest; http2: false offers no ALPN protocol, which clients take as HTTP/1.1. */
        static const char *const alpn_h2[] = {"h2", "http/1.1"};
        if (l->is_http2) {
            ts.alpn = alpn_h2;
            ts.n_alpn = 2;
        }
        ts.client_ca_file = l->client_ca;
        ts.client_auth = l->client_auth == PT_CLIENT_AUTH_REQUIRED   ? PT_TLS_CLIENT_AUTH_REQUIRED
                         : l->client_auth == PT_CLIENT_AUTH_OPTIONAL ? PT_TLS_CLIENT_AUTH_OPTIONAL
                                                                     : PT_TLS_CLIENT_AUTH_NONE;
        struct pt_tls_err te;
        memset(&te, 0, sizeof(te));
        s->listen_tls[j] = pt_tls_ctx_new(&ts, &te);
        if (!s->listen_tls[j]) {
            const struct pt_cfg_pos *pos = &cfg->tls.pos;
            if (te.key && strcmp(te.key, "certificates") == 0 && te.index >= 0 &&
                (size_t)te.index < cfg->tls.n_certificates)
                pos = &cfg->tls.certificates[te.index].pos;
            else if (te.key && strstr(te.key, "client"))
                pos = &l->pos;
            snprintf(err, errlen, "%s:%d:%d: %s", cfg->path, pos->line, pos->col, te.msg);
            return -1;
        }
        /* Tickets issued before a reload stay valid after it. */
        if (prev && j < prev->n_listen_tls && prev->listen_tls[j])
            pt_tls_ctx_inherit_ticket_keys(s->listen_tls[j], prev->listen_tls[j]);
    }
    s->res.ups_tls = calloc(cfg->n_upstreams ? cfg->n_upstreams : 1, sizeof(*s->res.ups_tls));
    if (!s->res.ups_tls)
        goto oom;
    s->res.n_ups_tls = cfg->n_upstreams;
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        const struct pt_upstream_cfg *u = cfg->upstreams[i];
        if (!pt_upstream_has_https(u))
            continue;
        struct pt_tls_err te;
        s->res.ups_tls[i] = pt_upstream_tls_new(u, &te);
        if (!s->res.ups_tls[i]) {
            snprintf(err, errlen, "%s:%d:%d: upstream \"%s\": %s", cfg->path, u->pos.line,
                     u->pos.col, u->name, te.msg);
            return -1;
        }
    }
    /* Mapped anew for every snapshot: a reload picks up a database replaced on disk. */
    if (cfg->geoip.database) {
        char e[512] = "";
        if (pt_geoip_open(cfg->geoip.database, &s->res.geoip, e, sizeof(e)) < 0) {
            snprintf(err, errlen, "%s:%d:%d: geoip database \"%s\": %s", cfg->path,
                     cfg->geoip.pos.line, cfg->geoip.pos.col, cfg->geoip.database, e);
            return -1;
        }
    }
    /* IP rules: each ip: compiled into sorted, merged ranges for this snapshot (worker.c frees
       them with it). */
    for (struct pt_ip_cfg *ip = cfg->ips; ip; ip = ip->next) {
        ip->rules = pt_ip_rules_build(ip);
        if (!ip->rules)
            goto oom;
    }
    /* jwt: jwks_file and secret_file keys for this snapshot (worker.c frees them with it); a
       key the guard cannot use fails the load, in `check` too. */
    for (struct pt_jwt_cfg *j = cfg->jwts; j; j = j->next) {
        char e[256] = "";
        if (j->jwks_text)
            j->keys = pt_jwt_keyset_parse(j->jwks_text, j->jwks_len, false, e, sizeof(e));
        else if (j->secret)
            j->keys = pt_jwt_keyset_secret(j->secret, j->secret_len);
        else
            continue;
        if (!j->keys) {
            snprintf(err, errlen, "%s:%d:%d: jwt: %s: %s", cfg->path, j->pos.line, j->pos.col,
                     j->jwks_file ? j->jwks_file : j->secret_file, e[0] ? e : "out of memory");
            return -1;
        }
    }
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", cfg->path);
    return -1;
}

/* Whether cfg caches anything: a cache: section or a route with cache: on. */
static bool wants_cache(const struct pt_config *cfg)
{
    if (cfg->cache.is_set)
        return true;
    for (size_t i = 0; i < cfg->n_sites; i++)
        for (size_t j = 0; j < cfg->sites[i].n_routes; j++)
            if (cfg->sites[i].routes[j].cache.is_on)
                return true;
    return false;
}

/* Opens the cache store for cfg (the first configuration that wants one), or applies cfg's
   limits to the open one (a reload). The store outlives snapshots: a reload keeps what is
   stored. Returns 0, or -1 with err filled. */
static int cache_follow(const struct pt_config *cfg, char *err, size_t errlen)
{
    if (!wants_cache(cfg))
        return 0;
    const struct pt_cache_cfg *cc = &cfg->cache;
    struct pt_cache_limits lim = {cc->memory_bytes, cc->max_object_bytes, cc->disk_path,
                                  cc->disk_bytes};
    char e[512] = "";
    if (pt_cache_store) {
        if (pt_cache_set_limits(pt_cache_store, &lim, e, sizeof(e)) == 0)
            return 0;
    } else if ((pt_cache_store = pt_cache_open(&lim, e, sizeof(e))) != NULL) {
        return 0;
    }
    snprintf(err, errlen, "%s:%d:%d: cache: %s", cfg->path, cc->pos.line, cc->pos.col, e);
    return -1;
}

/* Makes the shared rate-limit table (guard/rate.h) for the first configuration with a
   rate_limit:, sized by rate_limits.max_keys; it lives as long as the process, so counters
   survive reloads (a new max_keys needs a restart). Returns 0, or -1 with err filled. */
static int rate_follow(const struct pt_config *cfg, char *err, size_t errlen)
{
    if (pt_guard_rl)
        return 0;
    bool wanted = false;
    for (size_t i = 0; i < cfg->n_sites && !wanted; i++) {
        wanted = cfg->sites[i].rate_limit.is_on;
        for (size_t j = 0; j < cfg->sites[i].n_routes && !wanted; j++)
            wanted = cfg->sites[i].routes[j].rate_limit.is_on;
    }
    if (!wanted)
        return 0;
    pt_guard_rl = pt_rl_store_local((size_t)cfg->rate_limit_keys);
    if (pt_guard_rl)
        return 0;
    snprintf(err, errlen, "%s: out of memory for rate_limits.max_keys (%llu)", cfg->path,
             (unsigned long long)cfg->rate_limit_keys);
    return -1;
}

/* Makes the shared per-client table (guard/connlimit.h) for the first configuration with a
   per-client cap, sized for max_connections (or the open-file limit: a client holds a slot
   only while it has a connection or a request open); it lives as long as the process, so
   counts survive reloads. Returns 0, or -1 with err filled. */
static int conn_follow(const struct pt_config *cfg, char *err, size_t errlen)
{
    if (pt_guard_cl ||
        (!cfg->limits.max_connections_per_client && !cfg->limits.max_requests_per_client))
        return 0;
    size_t n = cfg->limits.max_connections;
    struct rlimit rl;
    if (!n && getrlimit(RLIMIT_NOFILE, &rl) == 0)
        n = rl.rlim_cur == RLIM_INFINITY ? (size_t)1 << 20 : (size_t)rl.rlim_cur;
    pt_guard_cl = pt_cl_new(PT_MIN(n, (size_t)1 << 22));
    if (pt_guard_cl)
        return 0;
    snprintf(err, errlen, "%s: out of memory for the per-client connection table", cfg->path);
    return -1;
}

/* Loads path and builds everything a snapshot holds (the access log is opened only when
   open_logs is set: `check` must not create files). Returns NULL with err filled. */
/* The snapshot of a loaded configuration; it owns cfg from here, also when it fails. */
/*
 * Marks each route that no guard applies to (route->no_guards), so the pipeline's guard step
 * costs one test there. The test is the one run_guards (server/pipeline.c) makes guard by
 * guard; a route this does not reach keeps no_guards false and runs every guard.
 */
static void mark_unguarded(struct pt_config *cfg)
{
    for (size_t i = 0; i < cfg->n_sites; i++) {
        struct pt_site_cfg *site = &cfg->sites[i];
        for (size_t j = 0; j < site->n_routes; j++) {
            struct pt_route_cfg *rt = &site->routes[j];
            rt->no_guards = !cfg->limits.max_requests_per_client && !rt->ip &&
                            !rt->rate_limit.is_on && !site->rate_limit.is_on && !rt->basic_auth &&
                            !rt->jwt && !rt->forward_auth && !rt->waf;
        }
    }
}

static struct pt_snapshot *snapshot_of(struct pt_config *cfg, char *err, size_t errlen,
                                       bool open_logs, const struct pt_snapshot *prev)
{
    const char *path = cfg->path;
    struct pt_router *rt = NULL;
    if (pt_router_build(cfg, &rt, err, errlen) != PT_OK) {
        pt_config_free(cfg);
        return NULL;
    }
    struct pt_snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    s->cfg = cfg;
    s->router = rt;
    mark_unguarded(cfg);
    s->access_fd = -1;
    /* Target state (health verdicts, ejections, load) carries over from the previous snapshot
       for targets that did not change. */
    s->res.urt = pt_upstreams_rt_create(cfg, prev ? prev->res.urt : NULL, pt_upstream_now_ms());
    if (!s->res.urt) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail_snap;
    }
    /* WAF rule sets are compiled here, `check` included: a rule that does not load is a
       configuration error, never an open door (the audit logs open only when running). */
    if (open_resources(s, prev, err, errlen) < 0 || pt_waf_build(cfg, open_logs, err, errlen) < 0 ||
        pt_admin_state_new(cfg, &s->admin, err, errlen) < 0)
        goto fail_snap;
    /* jwt: jwks_url sources start fetching for a snapshot that serves (not for `check`);
       they are shared by URL, so a reload keeps the keys fetched (worker.c lets go of them). */
    for (struct pt_jwt_cfg *j = cfg->jwts; open_logs && j; j = j->next)
        if (j->jwks_url && !(j->src = pt_jwks_src_get(j->jwks_url, j->jwks_ca, j->jwks_refresh_ms,
                                                      j->jwks_timeout_ms))) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto fail_snap;
        }
    const char *a = cfg->log.access ? cfg->log.access : "stdout";
    if (!open_logs) {
        s->access_fd = -1;
    } else if (strcmp(a, "stdout") == 0) {
        s->access_fd = STDOUT_FILENO;
    } else if (strcmp(a, "stderr") == 0) {
        s->access_fd = STDERR_FILENO;
    } else if (strcmp(a, "off") != 0) {
        s->access_fd = open(a, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (s->access_fd < 0) {
            snprintf(err, errlen, "%s: cannot open access log \"%s\": %s", path, a,
                     strerror(errno));
            goto fail_snap;
        }
        s->owns_access_fd = true;
    }
    atomic_init(&s->refs, 1);
    return s;
fail_snap:
    /* The snapshot owns cfg and rt from here: one unref releases everything built so far. */
    s->access_fd = -1;
    atomic_init(&s->refs, 1);
    pt_snapshot_unref(s);
    return NULL;
fail:
    pt_router_free(rt);
    pt_config_free(cfg);
    return NULL;
}

/* Loads path, adds the rules API's sites from admin.store when with_store is set (not for
   `check`, which must not create the store), and expands its target host names
   (upstream/dns.h): a configuration is usable only after all three. On failure err holds the
   errors and *out is untouched. */
static int config_load(const char *path, bool with_store, struct pt_config **out, char *err,
                       size_t errlen)
{
    struct pt_config *cfg = NULL;
    if (pt_config_load(path, &cfg, err, errlen) != PT_OK)
        return PT_ERR;
    if ((with_store && pt_api_rules_add(cfg, err, errlen) != PT_OK) ||
        pt_dns_expand(cfg, err, errlen) != PT_OK) {
        pt_config_free(cfg);
        return PT_ERR;
    }
    *out = cfg;
    return PT_OK;
}

static struct pt_snapshot *snapshot_build(const char *path, char *err, size_t errlen,
                                          bool open_logs, const struct pt_snapshot *prev)
{
    struct pt_config *cfg = NULL;
    if (config_load(path, open_logs, &cfg, err, errlen) != PT_OK)
        return NULL;
    return snapshot_of(cfg, err, errlen, open_logs, prev);
}

/* Prints the loader's error lines to stderr, each ending in exactly one newline. */
static void print_errors(const char *err)
{
    size_t n = strlen(err);
    fprintf(stderr, "%s%s", err, n && err[n - 1] == '\n' ? "" : "\n");
}

/* Prints (to stderr) or logs the configuration's warnings, FILE:LINE:COL: warning: message. */
static void report_warnings(const struct pt_config *cfg, bool to_log)
{
    for (size_t i = 0; i < cfg->n_warning_lines; i++) {
        if (to_log)
            pt_log_warn("%s", cfg->warnings[i]);
        else
            fprintf(stderr, "%s\n", cfg->warnings[i]);
    }
    size_t more = cfg->n_warnings - cfg->n_warning_lines;
    if (more && to_log)
        pt_log_warn("%s: %zu more warnings", cfg->path, more);
    else if (more)
        fprintf(stderr, "%s: %zu more warnings\n", cfg->path, more);
}

/* check: "ok" only for a file without warnings; --strict (strict) makes warnings errors. */
static int cmd_check(const char *path, bool strict)
{
    char *err = calloc(1, ERR_BYTES);
    if (!err)
        return 1;
    int rc = 1;
    struct pt_snapshot *s = snapshot_build(path, err, ERR_BYTES, false, NULL);
    if (s) {
        size_t n = s->cfg->n_warnings;
        report_warnings(s->cfg, false);
        if (n == 0)
            printf("ok\n");
        else if (strict)
            fprintf(stderr, "%s: %zu warning%s, errors under --strict\n", path, n,
                    n == 1 ? "" : "s");
        else
            printf("ok (%zu warning%s)\n", n, n == 1 ? "" : "s");
        rc = n && strict ? 1 : 0;
        pt_snapshot_unref(s);
    } else {
        print_errors(err);
    }
    free(err);
    return rc;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The listeners of a reload: the new snapshot takes over the sockets of addresses it keeps
   and binds the added ones (worker.c). Returns false, with the reason logged, when one cannot
   be bound: the reload then fails as a whole and the old configuration keeps serving. */
static bool reload_listeners(struct pt_snapshot *s, const struct pt_snapshot *cur)
{
    char err[512] = "";
    if (pt_snapshot_listen(s, cur, err, sizeof(err)) == 0) {
        if (s->cfg->workers != cur->cfg->workers)
            pt_log_warn("reload: a change of workers takes effect after a restart");
        return true;
    }
    pt_log_error("reload failed, still serving the previous configuration: %s", err);
    return false;
}

static struct pt_snapshot *reload(const char *path, struct pt_snapshot *cur,
                                  struct pt_worker *workers, uint32_t n_workers,
                                  struct pt_health *hc)
{
    char *err = malloc(ERR_BYTES);
    if (!err)
        return cur;
    err[0] = '\0';
    struct pt_snapshot *s = snapshot_build(path, err, ERR_BYTES, true, cur);
    if (!s) {
        size_t n = strlen(err);
        while (n && err[n - 1] == '\n')
            err[--n] = '\0';
        pt_log_error("reload failed, still serving the previous configuration: %s", err);
        pt_ctr_add_self(PT_CTR_RELOADS_FAILED, 1);
        free(err);
        return cur;
    }
    if (cache_follow(s->cfg, err, ERR_BYTES) < 0 || rate_follow(s->cfg, err, ERR_BYTES) < 0 ||
        conn_follow(s->cfg, err, ERR_BYTES) < 0) {
        pt_log_error("reload failed, still serving the previous configuration: %s", err);
        pt_ctr_add_self(PT_CTR_RELOADS_FAILED, 1);
        pt_snapshot_unref(s);
        free(err);
        return cur;
    }
    free(err);
    report_warnings(s->cfg, true);
    if (!reload_listeners(s, cur)) {
        pt_ctr_add_self(PT_CTR_RELOADS_FAILED, 1);
        pt_snapshot_unref(s);
        return cur;
    }
    if (counters && !(s->metrics = pt_metrics_map_build(counters, s->cfg))) {
        pt_log_error("reload failed, still serving the previous configuration: out of memory");
        pt_ctr_add_self(PT_CTR_RELOADS_FAILED, 1);
        pt_snapshot_unref(s);
        return cur;
    }
    s->generation = cur->generation + 1;
    pt_log_set_level(s->cfg->log.level);
    if (acme)
        acme_follow(s->cfg, NULL, 0);
    /* The checker moves to the new target state before the old snapshot can be freed. */
    if (hc)
        pt_health_update(hc, s->res.urt);
    for (uint32_t i = 0; i < n_workers; i++)
        pt_worker_publish(&workers[i], s);
    if (admin) {
        metrics_publish(s);
        pt_admin_update(admin, s->admin);
    } else if (s->admin)
        pt_log_warn("reload: the admin listener opens at start only: restart to open it");
    pt_snapshot_release_listeners(cur); /* removed listeners close once the workers let go */
    pt_snapshot_unref(cur);
    pt_ctr_add_self(PT_CTR_RELOADS_OK, 1);
    pt_log_info("configuration reloaded (generation %llu)", (unsigned long long)s->generation);
    return s;
}

/* Certificate files are watched so that a renewed certificate dropped in place is served
   without a signal: the main thread compares their stat data every CERT_WATCH_MS and reloads
   when any changed (the reload checks the new pair; a broken one keeps the old serving). */
#define CERT_WATCH_MS 2000u
#define CERT_WATCH_MAX 64

struct cert_watch {
    size_t n;
    struct {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
    } f[CERT_WATCH_MAX];
};

static void watch_one(struct cert_watch *cw, const char *path)
{
    struct stat st;
    if (!path || cw->n >= CERT_WATCH_MAX)
        return;
    memset(&cw->f[cw->n], 0, sizeof(cw->f[cw->n]));
    if (stat(path, &st) == 0) {
        cw->f[cw->n].dev = st.st_dev;
        cw->f[cw->n].ino = st.st_ino;
        cw->f[cw->n].size = st.st_size;
        cw->f[cw->n].mtime = st.st_mtim;
    }
    cw->n++;
}

static void cert_watch_take(const struct pt_config *cfg, struct cert_watch *cw)
{
    cw->n = 0;
    for (size_t i = 0; i < cfg->tls.n_certificates; i++) {
        watch_one(cw, cfg->tls.certificates[i].cert);
        watch_one(cw, cfg->tls.certificates[i].key);
    }
    for (size_t j = 0; j < cfg->n_listens; j++)
        watch_one(cw, cfg->listens[j].client_ca);
}

static bool cert_watch_changed(const struct pt_config *cfg, const struct cert_watch *old)
{
    struct cert_watch now;
    cert_watch_take(cfg, &now);
    return now.n != old->n || memcmp(now.f, old->f, now.n * sizeof(now.f[0])) != 0;
}

static uint64_t ticket_rotation_ms(const struct pt_snapshot *s)
{
    for (size_t j = 0; j < s->n_listen_tls; j++)
        if (s->listen_tls[j])
            return PT_MAX(pt_tls_ctx_ticket_rotation_ms(s->listen_tls[j]), 1000);
    return 3600u * 1000u;
}

/* A reload asked for by SIGHUP, framed for the service manager: RELOADING=1 before, READY=1
   after (also when the new file was rejected: the old configuration still serves, and the
   STATUS line says the reload failed). */
static struct pt_snapshot *reload_notified(const char *path, struct pt_snapshot *cur,
                                           struct pt_worker *workers, uint32_t n_workers,
                                           struct pt_health *hc)
{
    uint64_t before = cur->generation;
    pt_notify_reloading();
    struct pt_snapshot *s = reload(path, cur, workers, n_workers, hc);
    pt_notify_ready(s->generation, s->generation == before);
    return s;
}

/* The signals `run` takes through sigtimedwait: every one whose default action ends the
   process, except those a fault raises synchronously (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
   SIGTRAP, SIGSYS: blocking them is undefined, and a crash should stay a crash) and SIGPIPE and
   SIGXFSZ, which are ignored so that the write that caused them fails with an error instead.
   Blocked in the main thread before any other thread exists, so every thread inherits the
   mask and only sigtimedwait ever sees them. */
static void run_signals(sigset_t *set)
{
    static const int sigs[] = {SIGHUP,    SIGINT,  SIGTERM, SIGQUIT, SIGUSR1,   SIGUSR2, SIGALRM,
                               SIGVTALRM, SIGPROF, SIGPOLL, SIGPWR,  SIGSTKFLT, SIGXCPU};
    sigemptyset(set);
    for (size_t i = 0; i < PT_ARRAY_LEN(sigs); i++)
        sigaddset(set, sigs[i]);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        sigaddset(set, sig);
}

/* A signal's name for the log ("SIGUSR2", "SIGRTMIN+3"), in buf. */
static const char *signal_name(int sig, char *buf, size_t len)
{
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev)
        snprintf(buf, len, "SIG%s", abbrev);
    else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
    else
        snprintf(buf, len, "signal %d", sig);
    return buf;
}

/* SIGUSR1: reopens the access log file at its configured path, for log rotation (logrotate
   renames the file, then signals). The new descriptor is put in place of the snapshot's with
   dup3(), which swaps it atomically for every worker: a write in flight finishes in the old
   file, the next one goes to the new file, and no worker has to notice. Logs to stdout or
   stderr, or none, have nothing to reopen. The error log is stderr (the journal under
   systemd), which the supervisor owns. */
static void reopen_access_log(struct pt_snapshot *s)
{
    const char *a = s->cfg->log.access;
    if (!s->owns_access_fd || s->access_fd < 0 || !a) {
        pt_log_info("received SIGUSR1: the access log is not a file, nothing to reopen");
        return;
    }
    int fd = open(a, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        pt_log_error("received SIGUSR1: cannot reopen access log \"%s\": %s; still writing to "
                     "the file open before",
                     a, strerror(errno));
        return;
    }
    if (dup3(fd, s->access_fd, O_CLOEXEC) < 0)
        pt_log_error("received SIGUSR1: cannot reopen access log \"%s\": %s", a, strerror(errno));
    else
        pt_log_info("received SIGUSR1: reopened access log \"%s\"", a);
    close(fd);
}

static int cmd_run(const char *path)
{
    /* Before anything else: a signal that arrives while the file loads must not kill. */
    sigset_t set;
    run_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    char *err = malloc(ERR_BYTES);
    if (!err)
        return 1;
    err[0] = '\0';
    struct pt_config *loaded = NULL;
    if (config_load(path, true, &loaded, err, ERR_BYTES) != PT_OK) {
        print_errors(err);
        free(err);
        return 1;
    }
    pt_log_set_level(loaded->log.level);
    report_warnings(loaded, true);
    /* The ACME manager starts before the first snapshot so that its TLS listeners serve the
       placeholders (or stored certificates) from the first handshake. */
    if (acme_follow(loaded, err, ERR_BYTES) < 0) {
        fprintf(stderr, "portico: %s\n", err);
        pt_config_free(loaded);
        free(err);
        return 1;
    }
    struct pt_snapshot *snap = snapshot_of(loaded, err, ERR_BYTES, true, NULL);
    if (!snap) {
        print_errors(err);
        free(err);
        pt_acme_stop(acme);
        return 1;
    }
    if (cache_follow(snap->cfg, err, ERR_BYTES) < 0 || rate_follow(snap->cfg, err, ERR_BYTES) < 0 ||
        conn_follow(snap->cfg, err, ERR_BYTES) < 0) {
        fprintf(stderr, "portico: %s\n", err);
        free(err);
        pt_snapshot_unref(snap);
        pt_acme_stop(acme);
        return 1;
    }
    free(err);
    snap->generation = 1;
    const struct pt_config *cfg = snap->cfg;
    raise_nofile();
    pt_mime_init(); /* reads /etc/mime.types now, not on a worker's first request */

    uint32_t nw = cfg->workers ? cfg->workers : 1;
    size_t nl = cfg->n_listens;
    int rc = 1;
    uint32_t started = 0;
    char *pid_path = NULL; /* pid_file as of the start (later loads do not move it) */
    bool is_pid_written = false;
    struct pt_health *hc = NULL;
    struct pt_worker *workers = calloc(nw, sizeof(*workers));
    /* Counter blocks: one per worker, then the main thread's, then the admin thread's. */
    counters = pt_counters_create(nw + PT_COUNTERS_EXTRA_BLOCKS);
    if (!workers || !counters || !(snap->metrics = pt_metrics_map_build(counters, cfg))) {
        fprintf(stderr, "portico: out of memory\n");
        goto out;
    }
    pt_ctr_bind(pt_counters_block(counters, nw + PT_COUNTERS_MAIN));
    /* Everything that can fail for want of a file descriptor is made before the listeners
       open: once a port accepts, the process is up, however a connection flood follows. */
    hc = pt_health_create(snap->res.urt);
    if (!hc || pt_health_start(hc) < 0) {
        fprintf(stderr, "portico: cannot start the health checker\n");
        goto out;
    }
    if (snap->admin) {
        char aerr[512] = "";
        metrics_workers = nw;
        metrics_publish(snap);
        admin = pt_admin_new(snap->admin, aerr, sizeof(aerr));
        if (admin && (pt_admin_route(admin, "GET", "/metrics", 0, on_metrics, NULL) < 0 ||
                      pt_cache_api_attach(admin, &pt_cache_store) < 0)) {
            pt_admin_destroy(admin);
            admin = NULL;
            snprintf(aerr, sizeof(aerr), "out of memory");
        }
        /* The rules API: opens admin.store and checks its key (a wrong key stops the start). */
        if (admin && pt_api_attach(admin, cfg, aerr, sizeof(aerr)) < 0) {
            pt_admin_destroy(admin);
            admin = NULL;
        }
        if (admin) {
            pt_admin_bind_counters(admin, pt_counters_block(counters, nw + PT_COUNTERS_ADMIN));
            /* Live apply: each committed API change signals this thread to rebuild the
               snapshot from the file and the store (server/api_rules.h, PT_SIG_RULES). */
            pt_admin_on_change(admin, pt_rules_changed_cb, NULL);
        }
        if (!admin || pt_admin_start(admin) < 0) {
            fprintf(stderr, "portico: %s\n", admin ? "cannot start the admin thread" : aerr);
            goto out;
        }
    }
    {
        /* One socket per listener, shared by the workers (worker.c): a port that another
           process holds is one line and exit 1, before anything starts. */
        char lerr[512] = "";
        if (pt_snapshot_listen(snap, NULL, lerr, sizeof(lerr)) < 0) {
            fprintf(stderr, "portico: %s\n", lerr);
            goto out;
        }
    }

    for (uint32_t i = 0; i < nw; i++) {
        int e = pt_worker_init(&workers[i], (int)i);
        workers[i].ctr = pt_counters_block(counters, i);
        if (e < 0) {
            fprintf(stderr, "portico: cannot start worker %u: %s\n", i, strerror(-e));
            goto stop;
        }
        pt_worker_publish(&workers[i], snap);
        e = pt_worker_start(&workers[i]);
        if (e < 0) {
            fprintf(stderr, "portico: cannot start worker thread: %s\n", strerror(-e));
            goto stop;
        }
        started++;
    }
    for (size_t j = 0; j < nl; j++)
        pt_log_info("listening on %s", cfg->listens[j].addr_text);
    if (cfg->pid_file) {
        char perr[512];
        pid_path = strdup(cfg->pid_file);
        if (!pid_path || pt_pidfile_write(pid_path, perr, sizeof(perr)) < 0) {
            fprintf(stderr, "portico: %s\n", pid_path ? perr : "out of memory");
            goto stop;
        }
        is_pid_written = true;
    }
    pt_log_info("portico %s started: %u worker(s), configuration %s", PT_VERSION, nw, path);
    pt_notify_ready(snap->generation, false);
    pt_admin_set_ready(admin, true);

    uint64_t next_rotation = pt_upstream_now_ms() + ticket_rotation_ms(snap);
    uint64_t next_watch = pt_upstream_now_ms() + CERT_WATCH_MS;
    struct cert_watch cw;
    cert_watch_take(snap->cfg, &cw);
    for (;;) {
        siginfo_t si;
        uint64_t now = pt_upstream_now_ms();
        if (now >= next_rotation) {
            /* Session-ticket keys: a new current key; the previous one still decrypts. */
            for (size_t j = 0; j < snap->n_listen_tls; j++)
                if (snap->listen_tls[j])
                    pt_tls_rotate_ticket_keys(snap->listen_tls[j]);
            next_rotation = now + ticket_rotation_ms(snap);
        }
        if (now >= next_watch) {
            if (cw.n && cert_watch_changed(snap->cfg, &cw)) {
                pt_log_info("certificate files changed on disk: reloading");
                snap = reload(path, snap, workers, nw, hc);
                /* Taken after the attempt either way: a broken file is not retried until it
                   changes again. */
                cert_watch_take(snap->cfg, &cw);
            }
            next_watch = now + CERT_WATCH_MS;
        }
        if (pt_dns_is_active() && pt_dns_tick(now)) {
            /* A target name's addresses changed: the new snapshot expands the new set. */
            pt_log_info("DNS answers changed: reloading");
            snap = reload(path, snap, workers, nw, hc);
            cert_watch_take(snap->cfg, &cw);
        }
        uint64_t wait_ms = PT_MIN(next_rotation, next_watch) - now;
        if (pt_dns_is_active() && wait_ms > PT_DNS_TICK_MS)
            wait_ms = PT_DNS_TICK_MS;
        struct timespec ts = {(time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L};
        int sig = sigtimedwait(&set, &si, &ts);
        if (sig < 0)
            continue;
        if (sig == SIGHUP) {
            snap = reload_notified(path, snap, workers, nw, hc);
            cert_watch_take(snap->cfg, &cw);
            continue;
        }
        /* The rules store changed (server/api_rules.h): the same rebuild as SIGHUP. Without
           admin.store the signal is nobody's and is ignored below, as before. */
        if (sig == PT_SIG_RULES && (pt_rules_change_take() || snap->cfg->admin.store)) {
            pt_log_info("rules store changed: rebuilding the configuration");
            snap = reload(path, snap, workers, nw, hc);
            cert_watch_take(snap->cfg, &cw);
            continue;
        }
        if (sig == SIGUSR1) {
            reopen_access_log(snap);
            pt_admin_reopen_logs(admin);
            continue;
        }
        char name[32];
        signal_name(sig, name, sizeof(name));
        if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
            pt_log_info("received %s: draining connections", name);
            break;
        }
        if (sig == SIGXCPU) {
            pt_log_error("received SIGXCPU: over the CPU time limit (RLIMIT_CPU), draining "
                         "connections before the kernel kills the process");
            break;
        }
        pt_log_warn("received %s: ignored (Portico has no use for it)", name);
    }
    pt_notify_stopping();
    rc = 0;
stop:
    pt_admin_set_ready(admin, false);
    for (uint32_t i = 0; i < started; i++)
        pt_worker_request_stop(&workers[i]);
    pt_snapshot_release_listeners(snap); /* new connections are refused from now on */
    for (uint32_t i = 0; i < started; i++)
        pt_worker_join(&workers[i]);
    pt_offload_stop(); /* the workers waited for their hashes */
    if (rc == 0)
        pt_log_info("stopped");
out:
    pt_admin_destroy(admin);
    admin = NULL;
    metrics_publish(NULL);
    if (hc)
        pt_health_destroy(hc);
    if (acme) {
        pt_acme_stop(acme);
        acme = NULL;
    }
    pt_snapshot_unref(snap);
    pt_ctr_bind(NULL);
    pt_counters_free(counters);
    counters = NULL;
    pt_dns_shutdown();
    if (is_pid_written)
        pt_pidfile_remove(pid_path);
    free(pid_path);
    free(workers);
    return rc;
}

/* What the command line asked for. */
struct cli {
    const char *cmd;
    const char *path;   /* -c FILE, or the default */
    bool is_path_given; /* -c was given (the default file gets its own message) */
    const char *pid;    /* --pid PIDFILE (reload, stop) */
    long timeout_s;     /* --timeout SECONDS (stop); -1 when not given */
    bool is_strict;     /* --strict (check): warnings fail the check */
};

/* Checks that the configuration file can be found before anything reads it: a missing default
   ./portico.yaml says how to name another one. Returns 0, or 1 after printing the reason. */
static int find_config(const struct cli *o)
{
    if (o->is_path_given || access(o->path, F_OK) == 0 || errno != ENOENT)
        return 0;
    char cwd[512];
    if (!getcwd(cwd, sizeof(cwd)))
        snprintf(cwd, sizeof(cwd), ".");
    fprintf(stderr,
            "portico: no %s in the current directory (%s); name the configuration file with "
            "-c FILE, e.g. portico %s -c /etc/portico/portico.yaml\n",
            o->path, cwd, o->cmd);
    return 1;
}

/* The running instance for reload and stop: reads the pid file (--pid, else the one the
   configuration names) and checks that its process is alive. Returns 0 with *pid set, or 1
   after printing why not. */
static int find_instance(const struct cli *o, const struct pt_config *cfg, pid_t *pid)
{
    const char *pf = o->pid ? o->pid : cfg ? cfg->pid_file : NULL;
    if (!pf) {
        fprintf(stderr,
                "portico: %s sets no pid_file, so the running Portico cannot be found; add "
                "pid_file to it (and restart), or name the file with --pid PIDFILE\n",
                o->path);
        return 1;
    }
    char err[512];
    if (pt_pidfile_read(pf, pid, err, sizeof(err)) < 0) {
        fprintf(stderr, "portico: %s (is Portico running?)\n", err);
        return 1;
    }
    if (!pt_pidfile_is_running(*pid)) {
        fprintf(stderr,
                "portico: pid file \"%s\" names process %d, which is not running (a stale pid "
                "file: that Portico did not exit cleanly); remove the file\n",
                pf, (int)*pid);
        return 1;
    }
    return 0;
}

static int send_signal(pid_t pid, int sig, const char *name)
{
    if (kill(pid, sig) == 0)
        return 0;
    fprintf(stderr, "portico: cannot send %s to process %d: %s%s\n", name, (int)pid,
            strerror(errno), errno == EPERM ? " (run as the user Portico runs as, or root)" : "");
    return 1;
}

/* portico reload: checks the file first, so that a mistake is reported here, where the
   operator looks, and not only in the running process's log. */
static int cmd_reload(const struct cli *o)
{
    struct pt_snapshot *s = NULL;
    if (!o->pid || o->is_path_given) {
        if (find_config(o) != 0)
            return 1;
        char *err = calloc(1, ERR_BYTES);
        if (!err)
            return 1;
        s = snapshot_build(o->path, err, ERR_BYTES, false, NULL);
        if (!s) {
            print_errors(err);
            fprintf(stderr, "portico: not reloading: %s has errors\n", o->path);
        }
        free(err);
        if (!s)
            return 1;
    }
    pid_t pid;
    int rc = find_instance(o, s ? s->cfg : NULL, &pid);
    if (s)
        pt_snapshot_unref(s);
    if (rc != 0 || send_signal(pid, SIGHUP, "SIGHUP") != 0)
        return 1;
    printf("portico: sent SIGHUP to process %d: it reloads its configuration (the result is in "
           "its log)\n",
           (int)pid);
    return 0;
}

/* portico stop: SIGTERM, then waits (bounded) until the process has drained and exited. */
static int cmd_stop(const struct cli *o)
{
    struct pt_config *cfg = NULL;
    long timeout_s = 40;
    if (!o->pid || o->is_path_given) {
        if (find_config(o) != 0)
            return 1;
        /* Only pid_file and shutdown_timeout are needed, so the file is loaded without
           resolving target names, building routes or opening certificates: a DNS outage
           does not keep anyone from stopping the process, and a file broken since the start
           still stops it with --pid. */
        char *err = calloc(1, ERR_BYTES);
        if (!err)
            return 1;
        if (pt_config_load(o->path, &cfg, err, ERR_BYTES) != PT_OK) {
            print_errors(err);
            fprintf(stderr,
                    "portico: cannot read pid_file from %s; name the pid file with --pid "
                    "PIDFILE\n",
                    o->path);
            free(err);
            return 1;
        }
        free(err);
        timeout_s = (long)(cfg->shutdown_timeout_ms / 1000u) + 10;
    }
    if (o->timeout_s >= 0)
        timeout_s = o->timeout_s;
    pid_t pid;
    int rc = find_instance(o, cfg, &pid);
    if (cfg)
        pt_config_free(cfg);
    if (rc != 0 || send_signal(pid, SIGTERM, "SIGTERM") != 0)
        return 1;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (!pt_pidfile_is_running(pid)) {
            printf("portico: process %d stopped\n", (int)pid);
            return 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= timeout_s)
            break;
        struct timespec pause = {0, 50 * 1000000L};
        nanosleep(&pause, NULL);
    }
    fprintf(stderr,
            "portico: process %d is still running %ld s after SIGTERM (requests still "
            "draining? see its log)\n",
            (int)pid, timeout_s);
    return 1;
}

/* Reads the value after option argv[*i] into *out. Returns 0, or 2 after printing usage. */
static int option_value(int argc, char **argv, int *i, const char *what, const char **out)
{
    const char *a = argv[*i];
    if (*i + 1 >= argc || argv[*i + 1][0] == '\0' || argv[*i + 1][0] == '-') {
        fprintf(stderr, "portico: %s needs a %s after it (portico %s %s %s)\n", a, what, argv[1], a,
                what);
        return 2;
    }
    *out = argv[++*i];
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_help(NULL) == 0 ? 2 : 2;
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0)
        return cmd_help(argc > 2 ? argv[2] : NULL);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version();
    if (strcmp(cmd, "keygen") == 0 || strcmp(cmd, "rotate-key") == 0)
        return pt_admin_key_command(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0)
        return pt_tokens_cmd(argc - 1, argv + 1);
    bool is_run = strcmp(cmd, "run") == 0, is_check = strcmp(cmd, "check") == 0;
    bool is_reload = strcmp(cmd, "reload") == 0, is_stop = strcmp(cmd, "stop") == 0;
    if (!is_run && !is_check && !is_reload && !is_stop) {
        fprintf(stderr, "portico: unknown command \"%s\"\n%s", cmd, usage_text);
        return 2;
    }
    struct cli o = {.cmd = cmd, .path = "portico.yaml", .timeout_s = -1};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (option_value(argc, argv, &i, "configuration FILE", &o.path) != 0)
                return 2;
            o.is_path_given = true;
        } else if ((is_reload || is_stop) && strcmp(a, "--pid") == 0) {
            if (option_value(argc, argv, &i, "PIDFILE", &o.pid) != 0)
                return 2;
        } else if (is_check && strcmp(a, "--strict") == 0) {
            o.is_strict = true;
        } else if (is_stop && strcmp(a, "--timeout") == 0) {
            const char *v = NULL;
            if (option_value(argc, argv, &i, "number of SECONDS", &v) != 0)
                return 2;
            char *end = NULL;
            errno = 0;
            o.timeout_s = strtol(v, &end, 10);
            if (errno || *end || o.timeout_s < 0 || o.timeout_s > 86400) {
                fprintf(stderr, "portico: --timeout takes whole seconds (0 to 86400), not \"%s\"\n",
                        v);
                return 2;
            }
        } else {
            fprintf(stderr, "portico: unexpected argument \"%s\"\n%s", a, usage_text);
            return 2;
        }
    }
    if (is_reload)
        return cmd_reload(&o);
    if (is_stop)
        return cmd_stop(&o);
    if (find_config(&o) != 0)
        return 1;
    return is_run ? cmd_run(o.path) : cmd_check(o.path, o.is_strict);
}
