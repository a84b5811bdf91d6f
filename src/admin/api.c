/*
 * api.c - the rules API's endpoints (docs/api.md): projects, aliases, proxy rules, reorder,
 * and the OpenAPI document, as JSON over the admin listener (admin.h).
 *
 * Every handler runs on the admin thread, one request at a time, and owns the one store
 * connection (store.h: one thread at a time). A request body is checked whole before the
 * store is touched: every bad field is collected into one 400 ({"errors": [...]}, one entry per
 * field), then the store runs the change as one transaction. Checks here are the API's, on
 * top of the model's: patterns by the router's own rules (route/route.h), targets https only
 * and through the SSRF guard's write-time check with admin.allow_private (upstream/ssrf.h),
 * header names and values, and no unknown fields.
 *
 * A change that commits is counted (PT_CTR_API_CHANGES_OK), written to the audit log (the
 * rule as the API shows it: header secrets masked) and then announced through the admin
 * listener's change hook (pt_admin_changed), which rebuilds the configuration. A change that
 * does not commit (400, 404, 409, 500) counts as PT_CTR_API_CHANGES_FAILED.
 *
 * Versions: an object's updatedAt is its version (store.h: every update moves it forward). A
 * GET of one object sends it as ETag ("\"<updatedAt>\""); PATCH and DELETE take If-Match with
 * that ETag, or "updatedAt" in a PATCH body, and answer 409 when the object changed since.
 * Neither given: the change is unconditional.
 *
 * Reads never show a secret: rules are read PT_STORE_MASKED, so a header value is always
 * "********"; a PATCH that sends that mask back keeps the stored value.
 *
 * The OpenAPI document is built from the listener's route table (pt_admin_route_at) and the
 * table of operations below, so a route the server answers is always in it and the document
 * names no route the server does not answer.
 */
#include "admin/api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/dashboard.h"
#include "admin/store.h"
#include "core/counters.h"
#include "core/log.h"
#include "upstream/ssrf.h"
#include "route/route.h"

#define LIST_MAX 10000 /* ruleIds in one reorder */

struct api {
    struct pt_store *store;
};

/* ---- errors ----------------------------------------------------------------------------- */

/* The errors of one request body: {"field", "message"} entries. */
struct errs {
    json_t *list;
};

static void bad(struct errs *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bad(struct errs *e, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!e->list)
        e->list = json_array();
    /* A field name may be the client's own unknown key: bounded like the message. */
    json_t *f = field ? json_stringn(field, strnlen(field, 128)) : json_null();
    json_array_append_new(e->list, json_pack("{s:o, s:s}", "field", f, "message", msg));
}

static void failed(void)
{
    pt_ctr_add_self(PT_CTR_API_CHANGES_FAILED, 1);
}

/* Answers 400 with e's entries (taken). */
static void reply_errs(struct pt_admin_req *q, struct errs *e)
{
    failed();
    pt_admin_reply(q, 400, json_pack("{s:o}", "errors", e->list));
    e->list = NULL;
}

/* Answers a store failure rc (the store's message never holds a secret). */
static void reply_store(struct pt_admin_req *q, struct pt_store *s, int rc, bool is_change)
{
    const char *f = pt_store_error_field(s);
    const char *field = !f[0] ? NULL : strcmp(f, "ids") == 0 ? "ruleIds" : f;
    if (is_change)
        failed();
    switch (rc) {
    case PT_STORE_NOT_FOUND:
        pt_admin_reply_error(q, 404, NULL, pt_store_error(s));
        break;
    case PT_STORE_CONFLICT:
        pt_admin_reply_error(q, 409, "updatedAt",
                             "the object was changed since the version given (If-Match or "
                             "updatedAt): read it again");
        break;
    case PT_STORE_INVALID:
        pt_admin_reply_error(q, 400, field, pt_store_error(s));
        break;
    case PT_STORE_DUPLICATE:
        pt_admin_reply_error(q, 409, field, pt_store_error(s));
        break;
    default:
        pt_log_error("admin: %s %s: store: %s", pt_admin_method(q), pt_admin_path(q),
                     pt_store_error(s));
        pt_admin_reply_error(q, 500, NULL,
                             rc == PT_STORE_BAD_KEY ? "a stored secret does not open with the key"
                                                    : "the store failed (see the error log)");
    }
}

/* Records a committed change: counted, audited (change taken), announced. */
static void committed(struct pt_admin_req *q, const char *action, const char *id, json_t *obj)
{
    pt_ctr_add_self(PT_CTR_API_CHANGES_OK, 1);
    json_t *change = json_pack("{s:s, s:s}", "action", action, "id", id);
    if (change && obj)
        json_object_set(change, "object", obj);
    if (change && pt_admin_audit(q, change) < 0)
        pt_log_error("admin: cannot write the audit line of %s %s", action, id);
    json_decref(change);
    pt_admin_changed(q);
}

/* ---- versions ------------------------------------------------------------------------- */

static void set_etag(struct pt_admin_req *q, const char *updated_at)
{
    char tag[PT_STORE_TIME_LEN + 3];
    snprintf(tag, sizeof(tag), "\"%s\"", updated_at);
    pt_admin_reply_header(q, "ETag", tag);
}

/* The version If-Match names into out: 1 with out set, 0 when absent or "*", -1 (after a 400)
   when it is not one quoted ETag. */
static int if_match(struct pt_admin_req *q, char *out, size_t cap)
{
    size_t n;
    const char *v = pt_admin_header(q, "If-Match", &n);
    if (!v || (n == 1 && v[0] == '*'))
        return 0;
    if (n >= 4 && v[0] == 'W' && v[1] == '/') {
        v += 2;
        n -= 2;
    }
    if (n < 2 || v[0] != '"' || v[n - 1] != '"' || n - 2 >= cap || memchr(v + 1, '"', n - 2)) {
        failed();
        pt_admin_reply_error(q, 400, NULL, "If-Match must be one ETag as GET sent it");
        return -1;
    }
    memcpy(out, v + 1, n - 2);
    out[n - 2] = '\0';
    return 1;
}

/* ---- JSON out ----------------------------------------------------------------------------- */

static json_t *str_list(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *rule_json(const struct pt_store_rule *r)
{
    json_t *add = json_object();
    for (size_t i = 0; i < r->n_add; i++)
        json_object_set_new(add, r->add[i].name, json_string(pt_secret_mask(r->add[i].value)));
    return json_pack(
        "{s:s, s:s, s:s?, s:s, s:s, s:b, s:i, s:I, s:b, s:{s:o, s:o}, s:b, s:s, "
        "s:s, s:s}",
        "id", r->id, "projectId", r->project_id, "aliasId", r->alias_id[0] ? r->alias_id : NULL,
        "pathPattern", r->path_pattern, "targetUrl", r->target_url, "stripPrefix", r->strip_prefix,
        "order", r->order, "timeout", (json_int_t)r->timeout_ms, "preserveHost", r->preserve_host,
        "headerConfig", "add", add, "remove", str_list(r->remove, r->n_remove), "isEnabled",
        r->is_enabled, "description", r->description ? r->description : "", "createdAt",
        r->created_at, "updatedAt", r->updated_at);
}

static json_t *rules_json(const struct pt_store_rule *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, rule_json(&v[i]));
    return json_pack("{s:o}", "rules", a);
}

static json_t *alias_json(const struct pt_store_alias *a)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "id", a->id, "projectId", a->project_id,
                     "name", a->name, "hostnames", str_list(a->hostnames, a->n_hostnames),
                     "createdAt", a->created_at, "updatedAt", a->updated_at);
}

/* ---- JSON in ------------------------------------------------------------------------------ */

/* The request's body as a JSON object, or NULL after answering 400. */
static json_t *body_object(struct pt_admin_req *q)
{
    json_t *b = pt_admin_body_json(q);
    if (!b) {
        failed();
        return NULL;
    }
    if (!json_is_object(b)) {
        json_decref(b);
        failed();
        pt_admin_reply_error(q, 400, NULL, "the body must be a JSON object");
        return NULL;
    }
    return b;
}

static void set_str(char **slot, const char *v)
{
    char *d = strdup(v);
    if (d) {
        free(*slot);
        *slot = d;
    }
}

/* An RFC 9110 token (a field name). */
static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!strchr("!#$%&'*+-.^_`|~", *s) && !(*s >= '0' && *s <= '9') &&
            !(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z'))
            return false;
    return true;
}

/* Header fields a rule may not add: they frame the message or belong to one connection
   (RFC 9110 §7.6.1, RFC 9112 §6), and Portico sets them itself. */
static bool is_reserved_header(const char *n)
{
    static const char *const names[] = {"host",       "content-length", "transfer-encoding",
                                        "connection", "keep-alive",     "upgrade",
                                        "te",         "trailer",        "proxy-connection"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(n, names[i]) == 0)
            return true;
    return false;
}

/* A field value: visible characters, spaces and tabs, no leading or trailing white space
   (RFC 9110 §5.5); never echoed in a message, it may be a secret. */
static bool is_field_value(const char *v)
{
    size_t n = strlen(v);
    if (n && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 ? c != '\t' : c == 0x7f)
            return false;
    }
    return true;
}

/* No control character (tabs neither): a description is shown on one line. */
static bool is_one_line(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return false;
    return true;
}

static void headers_clear(struct pt_store_rule *r)
{
    for (size_t i = 0; i < r->n_add; i++) {
        free(r->add[i].name);
        if (r->add[i].value)
            pt_secret_free(r->add[i].value);
    }
    free(r->add);
    r->add = NULL;
    r->n_add = 0;
    for (size_t i = 0; i < r->n_remove; i++)
        free(r->remove[i]);
    free(r->remove);
    r->remove = NULL;
    r->n_remove = 0;
}

/* headerConfig: null, or {add: {name: value}, remove: [name]} (both optional). */
static void parse_headers(json_t *v, struct pt_store_rule *r, struct errs *e)
{
    headers_clear(r);
    if (json_is_null(v))
        return;
    if (!json_is_object(v)) {
        bad(e, "headerConfig",
            "headerConfig must be an object {\"add\": {...}, \"remove\": [...]}");
        return;
    }
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (strcmp(k, "add") == 0) {
            if (json_is_null(x))
                continue;
            if (!json_is_object(x)) {
                bad(e, "headerConfig.add", "headerConfig.add must be an object {name: value}");
                continue;
            }
            size_t n = json_object_size(x);
            r->add = calloc(n ? n : 1, sizeof(*r->add));
            if (!r->add)
                continue;
            const char *name;
            json_t *val;
            json_object_foreach(x, name, val)
            {
                if (!is_token(name) || strlen(name) > 256) {
                    bad(e, "headerConfig.add", "\"%.64s\" is not a header field name", name);
                    continue;
                }
                if (is_reserved_header(name)) {
                    bad(e, "headerConfig.add", "%s is set by Portico: a rule cannot add it", name);
                    continue;
                }
                if (!json_is_string(val)) {
                    bad(e, "headerConfig.add", "the value of %s must be a string", name);
                    continue;
                }
                const char *s = json_string_value(val);
                if (json_string_length(val) != strlen(s) || strlen(s) > 8192 ||
                    !is_field_value(s)) {
                    bad(e, "headerConfig.add",
                        "the value of %s must be at most 8192 bytes of visible characters, "
                        "spaces and tabs, without leading or trailing white space",
                        name);
                    continue;
                }
                struct pt_store_header *h = &r->add[r->n_add];
                h->name = strdup(name);
                h->value = strdup(s);
                if (h->name && h->value)
                    r->n_add++;
                else {
                    free(h->name);
                    free(h->value);
                }
            }
        } else if (strcmp(k, "remove") == 0) {
            if (json_is_null(x))
                continue;
            if (!json_is_array(x)) {
                bad(e, "headerConfig.remove", "headerConfig.remove must be a list of names");
                continue;
            }
            size_t n = json_array_size(x), i;
            r->remove = calloc(n ? n : 1, sizeof(*r->remove));
            if (!r->remove)
                continue;
            json_t *it;
            json_array_foreach(x, i, it)
            {
                const char *s = json_string_value(it);
                if (!s || !is_token(s) || strlen(s) > 256) {
                    bad(e, "headerConfig.remove", "entry %zu is not a header field name", i);
                    continue;
                }
                if ((r->remove[r->n_remove] = strdup(s)))
                    r->n_remove++;
            }
        } else {
            bad(e, "headerConfig", "unknown field \"%.64s\" (add or remove)", k);
        }
    }
}

/* Reads a rule body into r (defaults or the current rule, as the caller set them up). owner
   fields (id, projectId, aliasId, createdAt) must be absent or equal r's; updatedAt goes to
   expected (PATCH only). */
static void parse_rule(struct pt_admin_req *q, json_t *b, struct pt_store_rule *r, bool is_patch,
                       char *expected, struct errs *e)
{
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        if (strcmp(k, "pathPattern") == 0) {
            const char *s = json_string_value(v);
            char msg[400];
            int kind;
            if (!s) {
                bad(e, k, "pathPattern must be a string");
            } else if (!*s || json_string_length(v) != strlen(s) || strlen(s) > 1024) {
                bad(e, k, "pathPattern must be 1 to 1024 bytes");
            } else if ((kind = pt_route_pattern_check(s, msg, sizeof(msg))) < 0) {
                bad(e, k, "%s", msg);
            } else if (kind != PT_ROUTE_PAT_EXACT && kind != PT_ROUTE_PAT_PREFIX &&
                       kind != PT_ROUTE_PAT_SUFFIX) {
                bad(e, k,
                    "pathPattern must be exact (\"/graphql\"), a prefix (\"/api/*\") or a "
                    "suffix (\"*.json\")");
            } else {
                set_str(&r->path_pattern, s);
            }
        } else if (strcmp(k, "targetUrl") == 0) {
            const char *s = json_string_value(v);
            char msg[400];
            size_t n_allow;
            const struct pt_cidr *allow = pt_admin_allow_private(q, &n_allow);
            if (!s)
                bad(e, k, "targetUrl must be a string");
            else if (json_string_length(v) > 2048)
                bad(e, k, "targetUrl must be at most 2048 bytes");
            else if (pt_ssrf_check_url(s, json_string_length(v), allow, n_allow, msg, sizeof(msg)) <
                     0)
                bad(e, k, "%s", msg);
            else
                set_str(&r->target_url, s);
        } else if (strcmp(k, "stripPrefix") == 0 || strcmp(k, "preserveHost") == 0 ||
                   strcmp(k, "isEnabled") == 0) {
            if (!json_is_boolean(v))
                bad(e, k, "%s must be true or false", k);
            else
                *(k[0] == 's'   ? &r->strip_prefix
                  : k[0] == 'p' ? &r->preserve_host
                                : &r->is_enabled) = json_is_true(v);
        } else if (strcmp(k, "order") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
                bad(e, k, "order must be an integer from 0 (first)");
            else
                r->order = (int)json_integer_value(v);
        } else if (strcmp(k, "timeout") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > (json_int_t)PT_STORE_TIMEOUT_MAX_MS)
                bad(e, k, "timeout must be an integer number of milliseconds from 1 to %u",
                    PT_STORE_TIMEOUT_MAX_MS);
            else
                r->timeout_ms = (uint32_t)json_integer_value(v);
        } else if (strcmp(k, "description") == 0) {
            const char *s = json_is_null(v) ? "" : json_string_value(v);
            if (!s)
                bad(e, k, "description must be a string or null");
            else if (!is_one_line(s) || json_string_length(v) != strlen(s) ||
                     json_string_length(v) > 4096)
                bad(e, k, "description must be at most 4096 bytes without control characters");
            else
                set_str(&r->description, s);
        } else if (strcmp(k, "headerConfig") == 0) {
            parse_headers(v, r, e);
        } else if (strcmp(k, "id") == 0 || strcmp(k, "projectId") == 0 ||
                   strcmp(k, "aliasId") == 0 || strcmp(k, "createdAt") == 0) {
            const char *have = k[0] == 'i'   ? r->id
                               : k[0] == 'p' ? r->project_id
                               : k[0] == 'a' ? r->alias_id
                                             : r->created_at;
            const char *s = json_is_null(v) && k[0] == 'a' ? "" : json_string_value(v);
            if (!s || strcmp(s, have) != 0)
                bad(e, k, "%s is set by the server and cannot be changed", k);
        } else if (strcmp(k, "updatedAt") == 0) {
            const char *s = json_string_value(v);
            if (!is_patch)
                bad(e, k, "updatedAt is set by the server");
            else if (!s || strlen(s) > PT_STORE_TIME_LEN)
                bad(e, k, "updatedAt must be the updatedAt of the rule as read");
            else if (!expected[0])
                snprintf(expected, PT_STORE_TIME_LEN + 1, "%s", s);
        } else {
            bad(e, k, "unknown field \"%.64s\"", k);
        }
    }
}

/* ---- rules ------------------------------------------------------------------------------ */

/* Answers one rule (read back masked) with its ETag. */
static void reply_rule(struct pt_admin_req *q, struct pt_store *s, int status, const char *id,
                       const char *action)
{
    struct pt_store_rule r;
    memset(&r, 0, sizeof(r));
    int rc = pt_store_rule_get(s, id, PT_STORE_MASKED, &r);
    if (rc != PT_STORE_OK) {
        if (action) /* committed, only the read back failed */
            committed(q, action, id, NULL);
        reply_store(q, s, rc, false);
        return;
    }
    json_t *j = rule_json(&r);
    if (action)
        committed(q, action, id, j);
    set_etag(q, r.updated_at);
    pt_admin_reply(q, status, j);
    pt_store_rule_clear(&r);
}

static void list_rules(struct pt_admin_req *q, struct pt_store *s, const char *project,
                       const char *alias)
{
    struct pt_store_rule *v = NULL;
    size_t n = 0;
    int rc = pt_store_rule_list(s, project, alias, PT_STORE_MASKED, &v, &n);
    if (rc != PT_STORE_OK) {
        reply_store(q, s, rc, false);
        return;
    }
    pt_admin_reply(q, 200, rules_json(v, n));
    pt_store_rules_free(v, n);
}

static void get_project_rules(struct pt_admin_req *q, void *arg)
{
    list_rules(q, ((struct api *)arg)->store, pt_admin_param(q, "projectId"), NULL);
}

static void get_alias_rules(struct pt_admin_req *q, void *arg)
{
    list_rules(q, ((struct api *)arg)->store, NULL, pt_admin_param(q, "aliasId"));
}

static void create_rule(struct pt_admin_req *q, struct pt_store *s, const char *project,
                        const char *alias)
{
    json_t *b = body_object(q);
    if (!b)
        return;
    struct pt_store_rule r;
    memset(&r, 0, sizeof(r));
    snprintf(r.project_id, sizeof(r.project_id), "%s", project);
    snprintf(r.alias_id, sizeof(r.alias_id), "%s", alias);
    r.order = -1;
    r.timeout_ms = PT_STORE_TIMEOUT_DEFAULT_MS;
    r.is_enabled = true;
    set_str(&r.description, "");
    struct errs e = {NULL};
    parse_rule(q, b, &r, false, NULL, &e);
    if (!json_object_get(b, "pathPattern"))
        bad(&e, "pathPattern", "pathPattern is required");
    if (!json_object_get(b, "targetUrl"))
        bad(&e, "targetUrl", "targetUrl is required");
    json_decref(b);
    if (e.list) {
        reply_errs(q, &e);
    } else {
        int rc = pt_store_rule_create(s, &r);
        if (rc != PT_STORE_OK) {
            reply_store(q, s, rc, true);
        } else {
            char loc[64];
            snprintf(loc, sizeof(loc), "/api/proxy-rules/%s", r.id);
            pt_admin_reply_header(q, "Location", loc);
            reply_rule(q, s, 201, r.id, "rule.create");
        }
    }
    pt_store_rule_clear(&r);
}

static void post_project_rule(struct pt_admin_req *q, void *arg)
{
    struct api *api = arg;
    const char *p = pt_admin_param(q, "projectId");
    struct pt_store_project pr;
    memset(&pr, 0, sizeof(pr));
    int rc = pt_store_project_get(api->store, p, &pr);
    if (rc != PT_STORE_OK) {
        reply_store(q, api->store, rc, true);
        return;
    }
    pt_store_project_clear(&pr);
    create_rule(q, api->store, p, "");
}

static void post_alias_rule(struct pt_admin_req *q, void *arg)
{
    struct api *api = arg;
    struct pt_store_alias al;
    memset(&al, 0, sizeof(al));
    int rc = pt_store_alias_get(api->store, pt_admin_param(q, "aliasId"), &al);
    if (rc != PT_STORE_OK) {
        reply_store(q, api->store, rc, true);
        return;
    }
    create_rule(q, api->store, al.project_id, al.id);
    pt_store_alias_clear(&al);
}

static void get_rule(struct pt_admin_req *q, void *arg)
{
    reply_rule(q, ((struct api *)arg)->store, 200, pt_admin_param(q, "id"), NULL);
}

static void patch_rule(struct pt_admin_req *q, void *arg)
{
    struct pt_store *s = ((struct api *)arg)->store;
    char expected[PT_STORE_TIME_LEN + 8] = "";
    int im = if_match(q, expected, sizeof(expected));
    if (im < 0)
        return;
    struct pt_store_rule r;
    memset(&r, 0, sizeof(r));
    int rc = pt_store_rule_get(s, pt_admin_param(q, "id"), PT_STORE_MASKED, &r);
    if (rc != PT_STORE_OK) {
        reply_store(q, s, rc, true);
        return;
    }
    json_t *b = body_object(q);
    if (b) {
        struct errs e = {NULL};
        parse_rule(q, b, &r, true, expected, &e);
        json_decref(b);
        if (e.list) {
            reply_errs(q, &e);
        } else if ((rc = pt_store_rule_update(s, &r, expected[0] ? expected : NULL)) !=
                   PT_STORE_OK) {
            reply_store(q, s, rc, true);
        } else {
            reply_rule(q, s, 200, r.id, "rule.update");
        }
    }
    pt_store_rule_clear(&r);
}

/* DELETE of one object: vrc and have are the result of reading its current version; If-Match
   is checked against it, then del(). */
static void delete_one(struct pt_admin_req *q, struct pt_store *s, const char *id,
                       const char *action, int (*del)(struct pt_store *, const char *), int vrc,
                       const char *have)
{
    char expected[PT_STORE_TIME_LEN + 8] = "";
    int im = if_match(q, expected, sizeof(expected));
    if (im < 0)
        return;
    int rc = vrc;
    if (rc == PT_STORE_OK && im > 0 && strcmp(expected, have) != 0)
        rc = PT_STORE_CONFLICT;
    if (rc == PT_STORE_OK)
        rc = del(s, id);
    if (rc != PT_STORE_OK) {
        reply_store(q, s, rc, true);
        return;
    }
    committed(q, action, id, NULL);
    pt_admin_reply(q, 200, json_pack("{s:b}", "success", 1));
}

static void delete_rule(struct pt_admin_req *q, void *arg)
{
    struct pt_store *s = ((struct api *)arg)->store;
    const char *id = pt_admin_param(q, "id");
    struct pt_store_rule r;
    memset(&r, 0, sizeof(r));
    int rc = pt_store_rule_get(s, id, PT_STORE_MASKED, &r);
    delete_one(q, s, id, "rule.delete", pt_store_rule_delete, rc, r.updated_at);
    pt_store_rule_clear(&r);
}

/* PUT .../reorder {"ruleIds": [every id of the owner, in the new order]}. */
static void reorder(struct pt_admin_req *q, struct pt_store *s, const char *project,
                    const char *alias)
{
    json_t *b = body_object(q);
    if (!b)
        return;
    struct errs e = {NULL};
    const char *k;
    json_t *v, *ids = NULL;
    json_object_foreach(b, k, v)
    {
        if (strcmp(k, "ruleIds") == 0)
            ids = v;
        else
            bad(&e, k, "unknown field \"%.64s\" (the body is {\"ruleIds\": [...]})", k);
    }
    size_t n = ids ? json_array_size(ids) : 0;
    if (!ids)
        bad(&e, "ruleIds", "ruleIds is required: every rule id of the owner, in the new order");
    else if (!json_is_array(ids) || n > LIST_MAX)
        bad(&e, "ruleIds", "ruleIds must be a list of rule ids");
    const char **list = calloc(n ? n : 1, sizeof(*list));
    for (size_t i = 0; list && !e.list && i < n; i++)
        if (!(list[i] = json_string_value(json_array_get(ids, i))))
            bad(&e, "ruleIds", "ruleIds[%zu] is not a string", i);
    int rc;
    if (e.list) {
        reply_errs(q, &e);
    } else if (!list) {
        failed();
        pt_admin_reply_error(q, 500, NULL, "out of memory");
    } else if ((rc = pt_store_rule_reorder(s, project, alias, list, n)) != PT_STORE_OK) {
        reply_store(q, s, rc, true);
    } else {
        struct pt_store_rule *rv = NULL;
        size_t rn = 0;
        rc = pt_store_rule_list(s, project, alias, PT_STORE_MASKED, &rv, &rn);
        json_t *out = rc == PT_STORE_OK ? rules_json(rv, rn) : NULL;
        committed(q, "rules.reorder", alias && alias[0] ? alias : project,
                  json_object_get(b, "ruleIds"));
        if (out)
            pt_admin_reply(q, 200, out);
        else
            reply_store(q, s, rc, false);
        pt_store_rules_free(rv, rn);
    }
    free(list);
    json_decref(b);
}

static void put_project_reorder(struct pt_admin_req *q, void *arg)
{
    reorder(q, ((struct api *)arg)->store, pt_admin_param(q, "projectId"), NULL);
}

static void put_alias_reorder(struct pt_admin_req *q, void *arg)
{
    reorder(q, ((struct api *)arg)->store, NULL, pt_admin_param(q, "aliasId"));
}

/* ---- projects and aliases ------------------------------------------------------------- */

/* name and hostnames of a project or alias body into *name / *hosts (fields checked here;
   the store checks their syntax and uniqueness). */
static void parse_named(json_t *b, char **name, char ***hosts, size_t *n_hosts, bool is_patch,
                        const char *const *fixed, const char *const *fixed_vals, char *expected,
                        struct errs *e)
{
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        if (strcmp(k, "name") == 0) {
            if (!json_is_string(v))
                bad(e, k, "name must be a string");
            else
                set_str(name, json_string_value(v));
        } else if (strcmp(k, "hostnames") == 0) {
            if (!json_is_array(v)) {
                bad(e, k, "hostnames must be a list of host names");
                continue;
            }
            size_t n = json_array_size(v), i;
            char **hv = calloc(n ? n : 1, sizeof(*hv));
            if (!hv)
                continue;
            json_t *it;
            size_t got = 0;
            json_array_foreach(v, i, it)
            {
                const char *s = json_string_value(it);
                if (!s)
                    bad(e, k, "hostnames[%zu] is not a string", i);
                else if ((hv[got] = strdup(s)))
                    got++;
            }
            for (size_t j = 0; j < *n_hosts; j++)
                free((*hosts)[j]);
            free(*hosts);
            *hosts = hv;
            *n_hosts = got;
        } else if (strcmp(k, "updatedAt") == 0 && is_patch) {
            const char *s = json_string_value(v);
            if (!s || strlen(s) > PT_STORE_TIME_LEN)
                bad(e, k, "updatedAt must be the updatedAt of the object as read");
            else if (!expected[0])
                snprintf(expected, PT_STORE_TIME_LEN + 1, "%s", s);
        } else {
            bool known = false;
            for (size_t i = 0; fixed[i]; i++)
                if (strcmp(k, fixed[i]) == 0) {
                    known = true;
                    const char *s = json_string_value(v);
                    if (!s || strcmp(s, fixed_vals[i]) != 0)
                        bad(e, k, "%s is set by the server and cannot be changed", k);
                }
            if (!known)
                bad(e, k, "unknown field \"%.64s\"", k);
        }
    }
    if (!is_patch && !json_object_get(b, "name"))
        bad(e, "name", "name is required");
}

/* Projects and aliases share one shape here: a project is carried as a struct pt_store_alias
   whose project_id is empty (is_alias false), so each endpoint is written once. */

/* Moves p's strings into a (p is left empty). */
static void named_from_project(struct pt_store_alias *a, struct pt_store_project *p)
{
    memcpy(a->id, p->id, sizeof(a->id));
    a->project_id[0] = '\0';
    a->name = p->name;
    a->hostnames = p->hostnames;
    a->n_hostnames = p->n_hostnames;
    memcpy(a->created_at, p->created_at, sizeof(a->created_at));
    memcpy(a->updated_at, p->updated_at, sizeof(a->updated_at));
    memset(p, 0, sizeof(*p));
}

static int named_get(struct pt_store *s, bool is_alias, const char *id, struct pt_store_alias *out)
{
    if (is_alias)
        return pt_store_alias_get(s, id, out);
    struct pt_store_project p;
    memset(&p, 0, sizeof(p));
    int rc = pt_store_project_get(s, id, &p);
    if (rc == PT_STORE_OK)
        named_from_project(out, &p);
    pt_store_project_clear(&p);
    return rc;
}

/* Creates a (a->id empty) or updates it; fills its id and times. */
static int named_write(struct pt_store *s, bool is_alias, struct pt_store_alias *a,
                       const char *expected)
{
    bool is_patch = a->id[0] != '\0';
    if (is_alias)
        return is_patch ? pt_store_alias_update(s, a, expected) : pt_store_alias_create(s, a);
    struct pt_store_project p; /* borrows a's strings */
    memset(&p, 0, sizeof(p));
    memcpy(p.id, a->id, sizeof(p.id));
    p.name = a->name;
    p.hostnames = a->hostnames;
    p.n_hostnames = a->n_hostnames;
    int rc = is_patch ? pt_store_project_update(s, &p, expected) : pt_store_project_create(s, &p);
    memcpy(a->id, p.id, sizeof(a->id));
    memcpy(a->created_at, p.created_at, sizeof(a->created_at));
    memcpy(a->updated_at, p.updated_at, sizeof(a->updated_at));
    return rc;
}

static json_t *named_json(bool is_alias, const struct pt_store_alias *a)
{
    json_t *j = alias_json(a);
    if (!is_alias)
        json_object_del(j, "projectId");
    return j;
}

/* GET /api/projects, or GET /api/projects/:projectId/aliases. */
static void list_named(struct pt_admin_req *q, void *arg, bool is_alias)
{
    struct pt_store *s = ((struct api *)arg)->store;
    struct pt_store_project *pv = NULL;
    struct pt_store_alias *av = NULL;
    size_t n = 0;
    int rc = is_alias ? pt_store_alias_list(s, pt_admin_param(q, "projectId"), &av, &n)
                      : pt_store_project_list(s, &pv, &n);
    if (rc != PT_STORE_OK) {
        reply_store(q, s, rc, false);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        struct pt_store_alias one;
        if (!is_alias)
            named_from_project(&one, &pv[i]);
        json_array_append_new(list, named_json(is_alias, is_alias ? &av[i] : &one));
        if (!is_alias)
            pt_store_alias_clear(&one);
    }
    pt_admin_reply(q, 200, json_pack("{s:o}", is_alias ? "aliases" : "projects", list));
    pt_store_projects_free(pv, is_alias ? 0 : n);
    pt_store_aliases_free(av, is_alias ? n : 0);
}

/* Answers the object id (read back) with its ETag; after a commit when action is set. */
static void reply_named(struct pt_admin_req *q, struct pt_store *s, bool is_alias, int status,
                        const char *id, const char *action)
{
    struct pt_store_alias a;
    memset(&a, 0, sizeof(a));
    int rc = named_get(s, is_alias, id, &a);
    if (rc != PT_STORE_OK) {
        if (action) /* committed, only the read back failed */
            committed(q, action, id, NULL);
        reply_store(q, s, rc, false);
        return;
    }
    json_t *j = named_json(is_alias, &a);
    if (action)
        committed(q, action, id, j);
    set_etag(q, a.updated_at);
    pt_admin_reply(q, status, j);
    pt_store_alias_clear(&a);
}

/* A POST (a->id empty; an alias's project_id set) or a PATCH (a is the current object). */
static void write_named(struct pt_admin_req *q, struct pt_store *s, bool is_alias,
                        struct pt_store_alias *a)
{
    bool is_patch = a->id[0] != '\0';
    char expected[PT_STORE_TIME_LEN + 8] = "";
    if (is_patch && if_match(q, expected, sizeof(expected)) < 0)
        return;
    json_t *b = body_object(q);
    if (!b)
        return;
    const char *fixed[] = {"id", "createdAt", is_alias ? "projectId" : NULL, NULL};
    const char *vals[] = {a->id, a->created_at, a->project_id};
    struct errs e = {NULL};
    parse_named(b, &a->name, &a->hostnames, &a->n_hostnames, is_patch, fixed, vals, expected, &e);
    json_decref(b);
    for (size_t i = 0; i < a->n_hostnames; i++)
        if (pt_admin_is_file_host(q, a->hostnames[i]))
            bad(&e, "hostnames",
                "hostnames[%zu]: %s is served by a site of the configuration file, which keeps it",
                i, a->hostnames[i]);
    static const char *const actions[2][2] = {{"project.create", "project.update"},
                                              {"alias.create", "alias.update"}};
    int rc;
    if (e.list)
        reply_errs(q, &e);
    else if ((rc = named_write(s, is_alias, a, expected[0] ? expected : NULL)) != PT_STORE_OK)
        reply_store(q, s, rc, true);
    else
        reply_named(q, s, is_alias, is_patch ? 200 : 201, a->id, actions[is_alias][is_patch]);
}

static void get_named(struct pt_admin_req *q, void *arg, bool is_alias)
{
    reply_named(q, ((struct api *)arg)->store, is_alias, 200, pt_admin_param(q, "id"), NULL);
}

static void patch_named(struct pt_admin_req *q, void *arg, bool is_alias)
{
    struct pt_store *s = ((struct api *)arg)->store;
    struct pt_store_alias a;
    memset(&a, 0, sizeof(a));
    int rc = named_get(s, is_alias, pt_admin_param(q, "id"), &a);
    if (rc != PT_STORE_OK)
        reply_store(q, s, rc, true);
    else
        write_named(q, s, is_alias, &a);
    pt_store_alias_clear(&a);
}

static void delete_named(struct pt_admin_req *q, void *arg, bool is_alias)
{
    struct pt_store *s = ((struct api *)arg)->store;
    const char *id = pt_admin_param(q, "id");
    struct pt_store_alias a;
    memset(&a, 0, sizeof(a));
    int rc = named_get(s, is_alias, id, &a);
    delete_one(q, s, id, is_alias ? "alias.delete" : "project.delete",
               is_alias ? pt_store_alias_delete : pt_store_project_delete, rc, a.updated_at);
    pt_store_alias_clear(&a);
}

static void get_projects(struct pt_admin_req *q, void *arg)
{
    list_named(q, arg, false);
}

static void post_project(struct pt_admin_req *q, void *arg)
{
    struct pt_store_alias a;
    memset(&a, 0, sizeof(a));
    write_named(q, ((struct api *)arg)->store, false, &a);
    pt_store_alias_clear(&a);
}

static void get_project(struct pt_admin_req *q, void *arg)
{
    get_named(q, arg, false);
}

static void patch_project(struct pt_admin_req *q, void *arg)
{
    patch_named(q, arg, false);
}

static void delete_project(struct pt_admin_req *q, void *arg)
{
    delete_named(q, arg, false);
}

static void get_aliases(struct pt_admin_req *q, void *arg)
{
    list_named(q, arg, true);
}

static void post_alias(struct pt_admin_req *q, void *arg)
{
    struct pt_store *s = ((struct api *)arg)->store;
    struct pt_store_alias a;
    memset(&a, 0, sizeof(a));
    int rc = named_get(s, false, pt_admin_param(q, "projectId"), &a);
    if (rc != PT_STORE_OK) {
        reply_store(q, s, rc, true);
        return;
    }
    struct pt_store_alias na;
    memset(&na, 0, sizeof(na));
    memcpy(na.project_id, a.id, sizeof(na.project_id));
    pt_store_alias_clear(&a);
    write_named(q, s, true, &na);
    pt_store_alias_clear(&na);
}

static void get_alias(struct pt_admin_req *q, void *arg)
{
    get_named(q, arg, true);
}

static void patch_alias(struct pt_admin_req *q, void *arg)
{
    patch_named(q, arg, true);
}

static void delete_alias(struct pt_admin_req *q, void *arg)
{
    delete_named(q, arg, true);
}

/* ---- the table and the OpenAPI document ------------------------------------------------- */

/* One operation: its route, handler and what the OpenAPI document says of it. body and ok
   name component schemas ("" none); ok_status is the success status. */
struct op {
    const char *method, *pattern;
    pt_admin_handler_cb cb; /* NULL: registered elsewhere (main.c, admin.c) */
    const char *summary;
    const char *body; /* request body schema, or NULL */
    int ok_status;
    const char *ok;     /* response schema */
    const char *errors; /* the error statuses besides 401/403: "400,404,409" */
};

static void openapi(struct pt_admin_req *q, void *arg);

static const struct op ops[] = {
    {"GET", "/live", NULL, "Liveness: 200 while the process runs", NULL, 200, "Status", ""},
    {"GET", "/ready", NULL, "Readiness: 200 once serving, 503 while starting or draining", NULL,
     200, "Status", "503"},
    {"GET", "/metrics", NULL, "Prometheus text exposition of Portico's metrics", NULL, 200, "", ""},
    {"GET", "/api/openapi.json", openapi, "This document", NULL, 200, "", ""},
    {"POST", "/api/cache/purge", NULL,
     "Purge cached responses by url, prefix, tag (or tags) or all, on every worker at once",
     "PurgeInput", 200, "PurgeResult", "400,503"},
    {"GET", "/api/cache", NULL, "The cache store's figures (objects, bytes, evictions)", NULL, 200,
     "CacheStats", "503"},
    {"GET", "/", NULL, "The dashboard's HTML page (public: it holds no data)", NULL, 200, "", ""},
    {"GET", "/dashboard", NULL, "The dashboard's HTML page, as /", NULL, 200, "", ""},
    {"GET", "/dashboard.js", NULL, "The dashboard's script (public)", NULL, 200, "", ""},
    {"GET", "/dashboard.css", NULL, "The dashboard's style sheet (public)", NULL, 200, "", ""},
    {"GET", "/api/changes", NULL,
     "The last audit lines (query limit: 1 to 200, default 50), newest first", NULL, 200,
     "ChangeList", "400"},
    {"GET", "/api/projects", get_projects, "List projects", NULL, 200, "ProjectList", ""},
    {"POST", "/api/projects", post_project, "Create a project", "ProjectInput", 201, "Project",
     "400,409"},
    {"GET", "/api/projects/:id", get_project, "Get a project (ETag: its updatedAt)", NULL, 200,
     "Project", "404"},
    {"PATCH", "/api/projects/:id", patch_project, "Change a project's name or hostnames",
     "ProjectInput", 200, "Project", "400,404,409"},
    {"DELETE", "/api/projects/:id", delete_project, "Delete a project with its aliases and rules",
     NULL, 200, "Success", "404,409"},
    {"GET", "/api/projects/:projectId/aliases", get_aliases, "List a project's aliases", NULL, 200,
     "AliasList", "404"},
    {"POST", "/api/projects/:projectId/aliases", post_alias, "Create an alias of a project",
     "AliasInput", 201, "Alias", "400,404,409"},
    {"GET", "/api/aliases/:id", get_alias, "Get an alias (ETag: its updatedAt)", NULL, 200, "Alias",
     "404"},
    {"PATCH", "/api/aliases/:id", patch_alias, "Change an alias's name or hostnames", "AliasInput",
     200, "Alias", "400,404,409"},
    {"DELETE", "/api/aliases/:id", delete_alias, "Delete an alias with its rules", NULL, 200,
     "Success", "404,409"},
    {"GET", "/api/proxy-rules/project/:projectId", get_project_rules,
     "List a project's own rules, by order", NULL, 200, "RuleList", "404"},
    {"POST", "/api/proxy-rules/project/:projectId", post_project_rule, "Create a rule of a project",
     "RuleInput", 201, "Rule", "400,404"},
    {"PUT", "/api/proxy-rules/project/:projectId/reorder", put_project_reorder,
     "Reorder a project's rules: every id, in the new order", "Reorder", 200, "RuleList",
     "400,404"},
    {"GET", "/api/proxy-rules/alias/:aliasId", get_alias_rules, "List an alias's rules, by order",
     NULL, 200, "RuleList", "404"},
    {"POST", "/api/proxy-rules/alias/:aliasId", post_alias_rule, "Create a rule of an alias",
     "RuleInput", 201, "Rule", "400,404"},
    {"PUT", "/api/proxy-rules/alias/:aliasId/reorder", put_alias_reorder,
     "Reorder an alias's rules: every id, in the new order", "Reorder", 200, "RuleList", "400,404"},
    {"GET", "/api/proxy-rules/:id", get_rule, "Get a rule (ETag: its updatedAt)", NULL, 200, "Rule",
     "404"},
    {"PATCH", "/api/proxy-rules/:id", patch_rule,
     "Change some fields of a rule (If-Match or updatedAt: 409 when it changed)", "RuleInput", 200,
     "Rule", "400,404,409"},
    {"DELETE", "/api/proxy-rules/:id", delete_rule, "Delete a rule", NULL, 200, "Success",
     "404,409"},
};

static const struct op *op_of(const char *method, const char *pattern)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(ops[i].method, method) == 0 && strcmp(ops[i].pattern, pattern) == 0)
            return &ops[i];
    return NULL;
}

/* The components of the document: the schemas the operations name. */
static const char components_json[] =
    "{\"securitySchemes\":{\"bearer\":{\"type\":\"http\",\"scheme\":\"bearer\"}},"
    "\"schemas\":{"
    "\"Error\":{\"type\":\"object\",\"required\":[\"errors\"],\"properties\":{\"errors\":{"
    "\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"field\":{\"type\":"
    "\"string\",\"nullable\":true},\"message\":{\"type\":\"string\"}}}}}},"
    "\"Status\":{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"string\"}}},"
    "\"PurgeInput\":{\"type\":\"object\",\"additionalProperties\":false,\"description\":"
    "\"exactly one of url, prefix, tag, tags or all\",\"properties\":{\"url\":{\"type\":"
    "\"string\"},\"prefix\":{\"type\":\"string\"},\"tag\":{\"type\":\"string\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"all\":{\"type\":"
    "\"boolean\"}}},"
    "\"PurgeResult\":{\"type\":\"object\",\"properties\":{\"purged\":{\"type\":"
    "\"integer\"}}},"
    "\"CacheStats\":{\"type\":\"object\",\"properties\":{\"objects\":{\"type\":"
    "\"integer\"},\"bytes\":{\"type\":\"integer\"},\"diskObjects\":{\"type\":\"integer\"},"
    "\"diskBytes\":{\"type\":\"integer\"},\"evictions\":{\"type\":\"integer\"},"
    "\"diskEvictions\":{\"type\":\"integer\"},\"purged\":{\"type\":\"integer\"},"
    "\"indexBytes\":{\"type\":\"integer\"}}},"
    "\"Success\":{\"type\":\"object\",\"properties\":{\"success\":{\"type\":\"boolean\"}}},"
    "\"HeaderConfig\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"add\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"},"
    "\"description\":\"header name -> value; values are encrypted at rest and always read "
    "back as ********; sending ******** keeps the stored value\"},"
    "\"remove\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}},"
    "\"Rule\":{\"type\":\"object\",\"properties\":{"
    "\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"projectId\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"aliasId\":{\"type\":\"string\",\"format\":\"uuid\",\"nullable\":true},"
    "\"pathPattern\":{\"type\":\"string\",\"example\":\"/api/*\"},"
    "\"targetUrl\":{\"type\":\"string\",\"example\":\"https://api.example.com\"},"
    "\"stripPrefix\":{\"type\":\"boolean\"},\"order\":{\"type\":\"integer\",\"minimum\":0},"
    "\"timeout\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":60000,\"default\":30000},"
    "\"preserveHost\":{\"type\":\"boolean\"},"
    "\"headerConfig\":{\"$ref\":\"#/components/schemas/HeaderConfig\"},"
    "\"isEnabled\":{\"type\":\"boolean\"},\"description\":{\"type\":\"string\"},"
    "\"createdAt\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"updatedAt\":{\"type\":\"string\",\"format\":\"date-time\"}}},"
    "\"RuleInput\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"pathPattern\":{\"type\":\"string\"},\"targetUrl\":{\"type\":\"string\",\"pattern\":"
    "\"^https://\"},\"stripPrefix\":{\"type\":\"boolean\",\"default\":false},"
    "\"order\":{\"type\":\"integer\",\"minimum\":0},"
    "\"timeout\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":60000,\"default\":30000},"
    "\"preserveHost\":{\"type\":\"boolean\",\"default\":false},"
    "\"headerConfig\":{\"$ref\":\"#/components/schemas/HeaderConfig\"},"
    "\"isEnabled\":{\"type\":\"boolean\",\"default\":true},"
    "\"description\":{\"type\":\"string\",\"nullable\":true},"
    "\"updatedAt\":{\"type\":\"string\",\"description\":\"PATCH: the version read; 409 when "
    "the rule changed since\"}}},"
    "\"RuleList\":{\"type\":\"object\",\"properties\":{\"rules\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/Rule\"}}}},"
    "\"Reorder\":{\"type\":\"object\",\"required\":[\"ruleIds\"],\"additionalProperties\":false,"
    "\"properties\":{\"ruleIds\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}},"
    "\"Project\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"name\":{\"type\":\"string\"},\"hostnames\":{\"type\":\"array\",\"items\":{\"type\":"
    "\"string\"}},\"createdAt\":{\"type\":\"string\"},\"updatedAt\":{\"type\":\"string\"}}},"
    "\"ProjectInput\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"name\":{\"type\":\"string\"},\"hostnames\":{\"type\":\"array\",\"items\":{\"type\":"
    "\"string\"}},\"updatedAt\":{\"type\":\"string\"}}},"
    "\"ProjectList\":{\"type\":\"object\",\"properties\":{\"projects\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/Project\"}}}},"
    "\"ChangeList\":{\"type\":\"object\",\"properties\":{\"changes\":{\"type\":\"array\","
    "\"items\":{\"type\":\"object\",\"properties\":{\"time\":{\"type\":\"string\"},"
    "\"token\":{\"type\":\"string\"},\"method\":{\"type\":\"string\"},\"path\":{\"type\":"
    "\"string\"},\"change\":{\"type\":\"object\"}}}}}},"
    "\"Alias\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"projectId\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},\"hostnames\":{\"type\":"
    "\"array\",\"items\":{\"type\":\"string\"}},\"createdAt\":{\"type\":\"string\"},"
    "\"updatedAt\":{\"type\":\"string\"}}},"
    "\"AliasInput\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"name\":{\"type\":\"string\"},\"hostnames\":{\"type\":\"array\",\"items\":{\"type\":"
    "\"string\"}},\"updatedAt\":{\"type\":\"string\"}}},"
    "\"AliasList\":{\"type\":\"object\",\"properties\":{\"aliases\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/Alias\"}}}}}}";

static json_t *schema_ref(const char *name)
{
    char ref[96];
    snprintf(ref, sizeof(ref), "#/components/schemas/%s", name);
    return json_pack("{s:{s:{s:s}}}", "application/json", "schema", "$ref", ref);
}

/* The OpenAPI operation object of route (method, pattern). */
static json_t *operation(const char *method, const char *pattern, int flags)
{
    const struct op *o = op_of(method, pattern);
    json_t *op = json_object(), *resp = json_object(), *params = json_array();
    char ok[8];
    snprintf(ok, sizeof(ok), "%d", o ? o->ok_status : 200);
    json_t *okr = json_pack("{s:s}", "description", "success");
    if (o && o->ok[0])
        json_object_set_new(okr, "content", schema_ref(o->ok));
    else if (strcmp(pattern, "/metrics") == 0 || strcmp(pattern, "/") == 0 ||
             strncmp(pattern, "/dashboard", 10) == 0)
        json_object_set_new(okr, "content",
                            json_pack("{s:{s:{s:s}}}",
                                      strcmp(pattern, "/metrics") == 0         ? "text/plain"
                                      : strcmp(pattern, "/dashboard.js") == 0  ? "text/javascript"
                                      : strcmp(pattern, "/dashboard.css") == 0 ? "text/css"
                                                                               : "text/html",
                                      "schema", "type", "string"));
    else
        json_object_set_new(
            okr, "content",
            json_pack("{s:{s:{s:s}}}", "application/json", "schema", "type", "object"));
    json_object_set_new(resp, ok, okr);
    const char *errs = o ? o->errors : "";
    char codes[64];
    snprintf(codes, sizeof(codes), "%s%s%s", errs, errs[0] ? "," : "",
             flags & PT_ADMIN_PUBLIC      ? ""
             : strcmp(method, "GET") == 0 ? "401"
                                          : "401,403");
    for (char *c = codes; *c;) {
        char code[4] = {c[0], c[1], c[2], '\0'};
        if (strlen(c) < 3)
            break;
        json_object_set_new(
            resp, code,
            json_pack("{s:s, s:o}", "description", "error", "content", schema_ref("Error")));
        c += c[3] == ',' ? 4 : 3;
    }
    json_object_set_new(op, "summary", json_string(o ? o->summary : method));
    json_object_set_new(op, "responses", resp);
    if (flags & PT_ADMIN_PUBLIC)
        json_object_set_new(op, "security", json_array());
    if (o && o->body)
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:o}", "required", 1, "content", schema_ref(o->body)));
    for (const char *p = strstr(pattern, "/:"); p; p = strstr(p + 1, "/:")) {
        const char *end = strchrnul(p + 2, '/');
        json_array_append_new(params, json_pack("{s:s%, s:s, s:b, s:{s:s}}", "name", p + 2,
                                                (size_t)(end - p - 2), "in", "path", "required", 1,
                                                "schema", "type", "string"));
    }
    if (strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0)
        json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:s, s:{s:s}}", "name", "If-Match",
                                                "in", "header", "required", 0, "description",
                                                "the ETag of a GET: 409 when the "
                                                "object changed since",
                                                "schema", "type", "string"));
    if (json_array_size(params))
        json_object_set_new(op, "parameters", params);
    else
        json_decref(params);
    return op;
}

/* GET /api/openapi.json: the OpenAPI 3.0 document of the routes this listener answers. */
static void openapi(struct pt_admin_req *q, void *arg)
{
    (void)arg;
    json_error_t je;
    json_t *comp = json_loads(components_json, 0, &je);
    json_t *paths = json_object();
    const char *method, *pattern;
    int flags;
    for (size_t i = 0; pt_admin_route_at(q, i, &method, &pattern, &flags) == 0; i++) {
        /* ":name" segments are written "{name}" in OpenAPI. */
        char path[256];
        size_t w = 0;
        for (const char *p = pattern; *p && w + 3 < sizeof(path); p++) {
            if (*p == ':' && p > pattern && p[-1] == '/') {
                path[w++] = '{';
                while (p[1] && p[1] != '/' && w + 2 < sizeof(path))
                    path[w++] = *++p;
                path[w++] = '}';
            } else {
                path[w++] = *p;
            }
        }
        path[w] = '\0';
        json_t *item = json_object_get(paths, path);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, path, item);
        }
        char lower[16];
        size_t k = 0;
        for (; method[k] && k + 1 < sizeof(lower); k++)
            lower[k] = (char)(method[k] | 0x20);
        lower[k] = '\0';
        json_object_set_new(item, lower, operation(method, pattern, flags));
    }
    json_t *doc =
        json_pack("{s:s, s:{s:s, s:s, s:s}, s:[{s:[]}], s:o, s:o}", "openapi", "3.0.3", "info",
                  "title", "Portico admin API", "version", "1", "description",
                  "Projects, aliases and proxy rules (docs/api.md). Errors are "
                  "{\"errors\": [{\"field\", \"message\"}]}.",
                  "security", "bearer", "paths", paths, "components", comp ? comp : json_object());
    if (!doc)
        pt_admin_reply_error(q, 500, NULL, "out of memory");
    else
        pt_admin_reply(q, 200, doc);
}

/* ---- attach -------------------------------------------------------------------------------- */

static void api_free(void *p)
{
    struct api *api = p;
    if (api) {
        pt_store_close(api->store);
        free(api);
    }
}

int pt_api_attach(struct pt_admin *a, const struct pt_config *cfg, char *err, size_t errlen)
{
    const struct pt_admin_cfg *ad = &cfg->admin;
    if (pt_admin_route(a, "GET", "/api/openapi.json", 0, openapi, NULL) < 0 ||
        pt_dashboard_attach(a) < 0) {
        snprintf(err, errlen, "admin: out of memory");
        return -1;
    }
    if (!ad->store)
        return 0;
    struct api *api = calloc(1, sizeof(*api));
    struct pt_secret_key key;
    char kerr[512];
    if (!api) {
        snprintf(err, errlen, "admin: out of memory");
        return -1;
    }
    if (pt_secret_key_load(ad->key_file, &key, kerr, sizeof(kerr)) < 0) {
        snprintf(err, errlen, "admin.key_file: %s", kerr);
        free(api);
        return -1;
    }
    int rc = pt_store_open(ad->store, &key, &api->store, kerr, sizeof(kerr));
    pt_secret_key_wipe(&key);
    if (rc != PT_STORE_OK) {
        snprintf(err, errlen, "admin.store: %s", kerr);
        free(api);
        return -1;
    }
    if (pt_store_verify_key(api->store) != PT_STORE_OK) {
        snprintf(err, errlen,
                 "admin.store %s: the key in %s does not open its secrets: %s (give the key the "
                 "store was written with, or rotate with portico rotate-key)",
                 ad->store, ad->key_file, pt_store_error(api->store));
        api_free(api);
        return -1;
    }
    pt_admin_own(a, api_free, api);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        const struct op *o = &ops[i];
        if (!o->cb || o->cb == openapi)
            continue;
        if (pt_admin_route(a, o->method, o->pattern, 0, o->cb, api) < 0) {
            snprintf(err, errlen, "admin: out of memory");
            return -1;
        }
    }
    return 0;
}
