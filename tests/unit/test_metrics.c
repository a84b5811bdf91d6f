/*
 * test_metrics.c - the metrics of a configuration (src/admin/metrics.c): the series a snapshot
 * counts into survive a reload that keeps their names, and the page renders in the Prometheus
 * text format. The page is parsed back line by line: every sample belongs to a family
 * declared with # HELP and # TYPE before it, counters end in _total, label values come back
 * unescaped, histogram buckets are cumulative and end with +Inf equal to _count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/metrics.h"

#define NOW 1000000u

static const char yaml_v1[] =
    "listen: [{addr: \"127.0.0.1:8080\"}, {addr: \"127.0.0.1:8081\"}]\n"
    "upstreams:\n"
    "  api:\n"
    "    targets: [{url: \"http://127.0.0.1:9001\"}, {url: \"http://127.0.0.1:9002\"}]\n"
    "sites:\n"
    "  - hosts: [a.example]\n"
    "    routes:\n"
    "      - match: \"/api/*\"\n"
    "        proxy: {to: api}\n"
    "      - match: \"/api/*\"\n"
    "        respond: {status: 404}\n"
    "      - match: /hello\n"
    "        respond: {status: 200, body: hi}\n"
    "  - routes:\n"
    "      - match: /\n"
    "        respond: {status: 200, body: default}\n";

/* v2 drops a.example's second route and adds a site: the others keep their series. */
static const char yaml_v2[] = "listen: [{addr: \"127.0.0.1:8080\"}]\n"
                              "upstreams:\n"
                              "  api:\n"
                              "    targets: [{url: \"http://127.0.0.1:9001\"}]\n"
                              "sites:\n"
                              "  - hosts: [b.example]\n"
                              "    routes:\n"
                              "      - match: /\n"
                              "        respond: {status: 200, body: b}\n"
                              "  - hosts: [a.example]\n"
                              "    routes:\n"
                              "      - match: \"/api/*\"\n"
                              "        proxy: {to: api}\n"
                              "      - match: /hello\n"
                              "        respond: {status: 200, body: hi}\n";

static struct pt_config *load(const char *yaml)
{
    struct pt_config *cfg = NULL;
    char err[2048];
    if (pt_config_load_buf("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    return cfg;
}

/* ---- a small parser of the text format ---- */

#define MAX_LABELS 8

struct parsed {
    char name[128];
    int n_labels;
    char lname[MAX_LABELS][32];
    char lvalue[MAX_LABELS][256];
    double value;
};

/* Parses one sample line; fails the test when it is not well formed. */
static void parse_sample(const char *line, struct parsed *p)
{
    memset(p, 0, sizeof(*p));
    const char *s = line;
    size_t n = strcspn(s, "{ ");
    assert_true(n > 0 && n < sizeof(p->name));
    memcpy(p->name, s, n);
    for (size_t i = 0; i < n; i++)
        assert_true((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' ||
                    s[i] == ':' || (i > 0 && s[i] >= '0' && s[i] <= '9'));
    s += n;
    if (*s == '{') {
        s++;
        while (*s != '}') {
            assert_true(p->n_labels < MAX_LABELS);
            size_t k = strcspn(s, "=");
            assert_true(k > 0 && k < 32 && s[k] == '=' && s[k + 1] == '"');
            memcpy(p->lname[p->n_labels], s, k);
            s += k + 2;
            char *v = p->lvalue[p->n_labels];
            size_t vl = 0;
            while (*s != '"') {
                assert_true(*s != '\0' && *s != '\n');
                char ch = *s++;
                if (ch == '\\') {
                    ch = *s++;
                    assert_true(ch == '\\' || ch == '"' || ch == 'n');
                    if (ch == 'n')
                        ch = '\n';
                }
                assert_true(vl + 1 < 256);
                v[vl++] = ch;
            }
            s++;
            p->n_labels++;
            if (*s == ',')
                s++;
            else
                assert_int_equal(*s, '}');
        }
        s++;
    }
    assert_int_equal(*s, ' ');
    char *end;
    p->value = strtod(s + 1, &end);
    assert_true(end != s + 1 && *end == '\0');
}

static const char *label(const struct parsed *p, const char *name)
{
    for (int i = 0; i < p->n_labels; i++)
        if (strcmp(p->lname[i], name) == 0)
            return p->lvalue[i];
    return NULL;
}

struct family {
    char name[128];
    char type[16];
};

/* Checks the whole page; returns the samples (caller frees) and their count. */
static struct parsed *parse_page(char *page, size_t *n_out)
{
    struct family fams[64];
    size_t n_fams = 0, n = 0, cap = 256;
    struct parsed *out = calloc(cap, sizeof(*out));
    assert_non_null(out);
    const char *help_for = NULL;
    double last_bucket = -1, last_le = -1;
    for (char *line = page, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl); /* every line ends in a newline, the last one too */
        *nl = '\0';
        if (strncmp(line, "# HELP ", 7) == 0) {
            help_for = line + 7;
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_true(n_fams < 64);
            struct family *f = &fams[n_fams++];
            assert_int_equal(sscanf(line + 7, "%127s %15s", f->name, f->type), 2);
            assert_non_null(help_for); /* HELP comes first, for the same name */
            assert_memory_equal(help_for, f->name, strlen(f->name));
            assert_true(strcmp(f->type, "counter") == 0 || strcmp(f->type, "gauge") == 0 ||
                        strcmp(f->type, "histogram") == 0);
            if (strcmp(f->type, "counter") == 0)
                assert_string_equal(f->name + strlen(f->name) - 6, "_total");
            for (size_t i = 0; i + 1 < n_fams; i++)
                assert_string_not_equal(fams[i].name, f->name); /* declared once */
            help_for = NULL;
            last_bucket = last_le = -1;
            continue;
        }
        assert_int_not_equal(line[0], '#');
        if (n == cap) {
            cap *= 2;
            out = realloc(out, cap * sizeof(*out));
            assert_non_null(out);
        }
        struct parsed *p = &out[n++];
        parse_sample(line, p);
        /* It belongs to the last family declared. */
        assert_true(n_fams > 0);
        const struct family *f = &fams[n_fams - 1];
        size_t fl = strlen(f->name);
        assert_memory_equal(p->name, f->name, fl);
        const char *suffix = p->name + fl;
        if (strcmp(f->type, "histogram") == 0) {
            if (strcmp(suffix, "_bucket") == 0) {
                const char *le = label(p, "le");
                assert_non_null(le);
                double lev = strcmp(le, "+Inf") == 0 ? 1e300 : strtod(le, NULL);
                if (last_le >= 0 && lev > last_le) {
                    assert_true(p->value >= last_bucket); /* cumulative */
                }
                last_le = lev;
                last_bucket = p->value;
                if (lev == 1e300)
                    last_le = -1; /* next series starts */
            } else if (strcmp(suffix, "_count") == 0) {
                assert_true(p->value == last_bucket); /* == the +Inf bucket */
            } else {
                assert_string_equal(suffix, "_sum");
            }
        } else {
            assert_string_equal(suffix, "");
        }
    }
    *n_out = n;
    return out;
}

/* The value of the sample named name whose labels include every pair of want (NULL-ended
   pairs); -1 when there is none. */
static double find(const struct parsed *s, size_t n, const char *name, const char *const *want)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].name, name) != 0)
            continue;
        bool ok = true;
        for (size_t k = 0; want && want[k]; k += 2) {
            const char *v = label(&s[i], want[k]);
            if (!v || strcmp(v, want[k + 1]) != 0)
                ok = false;
        }
        if (ok)
            return s[i].value;
    }
    return -1;
}

static void test_render_parses_back(void **state)
{
    (void)state;
    struct pt_config *cfg = load(yaml_v1);
    struct pt_counters *reg = pt_counters_create(3);
    struct pt_metrics_map *m = pt_metrics_map_build(reg, cfg);
    assert_non_null(m);
    struct pt_upstreams_rt *urt = pt_upstreams_rt_create(cfg, NULL, NOW);
    assert_non_null(urt);
    struct pt_ctr_block *b0 = pt_counters_block(reg, 0), *b1 = pt_counters_block(reg, 1);

    uint32_t api = pt_metrics_route_base(m, 0, 0);
    pt_metrics_on_request(b0, api, PT_METHOD_GET, 200, 500);      /* <= 1 ms */
    pt_metrics_on_request(b1, api, PT_METHOD_GET, 204, 3000);     /* <= 5 ms */
    pt_metrics_on_request(b1, api, PT_METHOD_GET, 201, 90000000); /* +Inf */
    pt_metrics_on_request(b0, api, PT_METHOD_POST, 502, 1000);
    pt_metrics_on_request(b0, pt_metrics_route_base(m, 0, 1), PT_METHOD_GET, 404, 10);
    pt_metrics_on_request(b0, pt_metrics_route_base(m, -1, -1), PT_METHOD_OTHER, 400, 10);
    pt_metrics_on_request(b0, pt_metrics_route_base(m, 1, 0), PT_METHOD_HEAD, 0, 10);
    pt_metrics_on_upstream(b0, m->ups_base[0], 2, true, 2000);
    pt_metrics_on_upstream(b1, m->ups_base[0], 0, false, 0); /* no head: not observed */
    pt_metrics_on_conn(b0, m->listen_base[1], true);
    pt_metrics_on_conn(b1, m->listen_base[1], true);
    pt_metrics_on_conn(b0, m->listen_base[1], false);
    pt_ctr_add(b1, PT_CTR_TLS_HANDSHAKES, 4);
    pt_ctr_add(b1, PT_CTR_TLS_RESUMED, 1);
    pt_ctr_add(pt_counters_block(reg, 2), PT_CTR_RELOADS_FAILED, 1);
    pt_ctr_add(b0, PT_CTR_POOL_IDLE, 3);
    atomic_store(&urt->ups[0].targets[1]->is_healthy, false);
    atomic_store(&urt->ups[0].targets[0]->ejections_total, 5);

    struct pt_gbuf out = {.max = 1 << 20};
    struct pt_metrics_view v = {reg, 2, cfg, m, urt, NOW, NULL};
    assert_int_equal(pt_metrics_render(&out, &v), 0);
    size_t n;
    struct parsed *s = parse_page(out.data, &n);
    const char *rq = "portico_requests_total";
    assert_true(find(s, n, rq,
                     (const char *[]){"site", "a.example", "route", "/api/*", "method", "GET",
                                      "code", "2xx", NULL}) == 3);
    assert_true(find(s, n, rq,
                     (const char *[]){"route", "/api/*", "method", "POST", "code", "5xx", NULL}) ==
                1);
    assert_true(find(s, n, rq, (const char *[]){"route", "/api/*#1", "code", "4xx", NULL}) == 1);
    assert_true(find(s, n, rq,
                     (const char *[]){"site", "", "route", "", "method", "other", "code", "4xx",
                                      NULL}) == 1);
    assert_true(
        find(s, n, rq, (const char *[]){"route", "/", "method", "HEAD", "code", "5xx", NULL}) ==
        1);                                                                     /* no status: 5xx */
    assert_true(find(s, n, rq, (const char *[]){"method", "PUT", NULL}) == -1); /* zeros left out */
    const char *dur = "portico_request_duration_seconds_bucket";
    assert_true(find(s, n, dur, (const char *[]){"route", "/api/*", "le", "0.001", NULL}) == 2);
    assert_true(find(s, n, dur, (const char *[]){"route", "/api/*", "le", "0.005", NULL}) == 3);
    assert_true(find(s, n, dur, (const char *[]){"route", "/api/*", "le", "60", NULL}) == 3);
    assert_true(find(s, n, dur, (const char *[]){"route", "/api/*", "le", "+Inf", NULL}) == 4);
    assert_true(find(s, n, "portico_request_duration_seconds_count",
                     (const char *[]){"route", "/api/*", NULL}) == 4);
    assert_true(find(s, n, dur, (const char *[]){"route", "/hello", NULL}) == -1);
    assert_true(find(s, n, "portico_upstream_retries_total",
                     (const char *[]){"upstream", "api", NULL}) == 2);
    assert_true(find(s, n, "portico_upstream_queued_total",
                     (const char *[]){"upstream", "api", NULL}) == 1);
    assert_true(find(s, n, "portico_upstream_duration_seconds_count",
                     (const char *[]){"upstream", "api", NULL}) == 1);
    const char *st = "portico_upstream_target_state";
    assert_true(
        find(s, n, st, (const char *[]){"target", "http://127.0.0.1:9001", "state", "up", NULL}) ==
        1);
    assert_true(find(s, n, st,
                     (const char *[]){"target", "http://127.0.0.1:9002", "state", "down", NULL}) ==
                1);
    assert_true(
        find(s, n, st, (const char *[]){"target", "http://127.0.0.1:9002", "state", "up", NULL}) ==
        0);
    assert_true(find(s, n, "portico_upstream_target_ejections_total",
                     (const char *[]){"target", "http://127.0.0.1:9001", NULL}) == 5);
    assert_true(find(s, n, "portico_connections_open",
                     (const char *[]){"listener", "127.0.0.1:8081", NULL}) == 1);
    assert_true(find(s, n, "portico_connections_accepted_total",
                     (const char *[]){"listener", "127.0.0.1:8081", NULL}) == 2);
    assert_true(find(s, n, "portico_connections_open",
                     (const char *[]){"listener", "127.0.0.1:8080", NULL}) == 0);
    assert_true(find(s, n, "portico_tls_handshakes_total", NULL) == 4);
    assert_true(find(s, n, "portico_tls_resumptions_total", NULL) == 1);
    assert_true(find(s, n, "portico_reloads_total", (const char *[]){"outcome", "failure", NULL}) ==
                1);
    assert_true(find(s, n, "portico_reloads_total", (const char *[]){"outcome", "success", NULL}) ==
                0);
    assert_true(find(s, n, "portico_upstream_pool_idle_connections",
                     (const char *[]){"worker", "0", NULL}) == 3);
    assert_true(find(s, n, "portico_upstream_pool_idle_connections",
                     (const char *[]){"worker", "2", NULL}) == -1); /* not a worker's block */
    free(s);

    /* A reload: the routes, upstream and listener it keeps keep their counts. */
    struct pt_config *cfg2 = load(yaml_v2);
    struct pt_metrics_map *m2 = pt_metrics_map_build(reg, cfg2);
    assert_non_null(m2);
    assert_int_equal(pt_metrics_route_base(m2, 1, 0), api);
    assert_int_equal(m2->ups_base[0], m->ups_base[0]);
    assert_int_equal(m2->listen_base[0], m->listen_base[0]);
    pt_metrics_on_request(b0, pt_metrics_route_base(m2, 1, 0), PT_METHOD_GET, 200, 1);
    pt_gbuf_free(&out);
    struct pt_metrics_view v2 = {reg, 2, cfg2, m2, NULL, NOW, NULL};
    assert_int_equal(pt_metrics_render(&out, &v2), 0);
    s = parse_page(out.data, &n);
    assert_true(find(s, n, rq,
                     (const char *[]){"site", "a.example", "route", "/api/*", "method", "GET",
                                      "code", "2xx", NULL}) == 4);
    assert_true(find(s, n, rq, (const char *[]){"route", "/api/*#1", NULL}) == -1); /* gone */
    assert_true(find(s, n, "portico_upstream_target_state", NULL) == -1); /* no runtime given */
    free(s);

    /* A page over the output's maximum is an error, not a truncated page. */
    struct pt_gbuf small = {.max = 100};
    assert_int_equal(pt_metrics_render(&small, &v2), -1);
    pt_gbuf_free(&small);

    pt_gbuf_free(&out);
    pt_metrics_map_free(m2);
    pt_metrics_map_free(m);
    pt_upstreams_rt_free(urt);
    pt_config_free(cfg2);
    pt_config_free(cfg);
    pt_counters_free(reg);
}

static void test_label_escaping(void **state)
{
    (void)state;
    struct pt_gbuf g = {.max = 1000};
    assert_int_equal(pt_metrics_label_value(&g, "a\"b\\c\nd/é"), 0);
    assert_string_equal(g.data, "a\\\"b\\\\c\\nd/é");
    char line[128];
    snprintf(line, sizeof(line), "x_total{k=\"%s\"} 1", g.data);
    struct parsed p;
    parse_sample(line, &p);
    assert_string_equal(label(&p, "k"), "a\"b\\c\nd/é");
    pt_gbuf_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_parses_back),
        cmocka_unit_test(test_label_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
