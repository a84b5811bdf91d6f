/*
 * resp_head.c - the one response-header stage (resp_head.h).
 *
 * Every final head passes here between its handler and the protocol that writes it: local
 * answers (respond, redirect, error pages, static files, Netlify rules) and proxied ones. It
 * works on the head's field array in place: one pass drops the fields that rules replace, then
 * Portico's own are appended, so the cost is a loop over the fields and no copy of a value.
 * The order of the result is: the handler's (or upstream's) fields, Server, Date, X-Request-Id,
 * the route's set and add fields, the balancer's Set-Cookie, Strict-Transport-Security, the
 * _headers fields.
 */
#include "handler/resp_head.h"

#include <stdio.h>
#include <string.h>

#include "core/time.h"
#include "handler/netlify_rules.h"

const char *pt_hsts_line(const struct pt_req *r, size_t *n)
{
    static __thread char line[128];
    const struct pt_site_cfg *site = r->site;
    *n = 0;
    if (!r->is_tls || !site || !site->hsts_is_set)
        return "";
    int k = snprintf(line, sizeof(line), "Strict-Transport-Security: max-age=%llu%s%s\r\n",
                     (unsigned long long)site->hsts_max_age_s,
                     site->hsts_include_subdomains ? "; includeSubDomains" : "",
                     site->hsts_preload ? "; preload" : "");
    if (k > 0 && (size_t)k < sizeof(line))
        *n = (size_t)k;
    return line;
}

bool pt_kv_has(const struct pt_kv *kv, size_t n, struct pt_str name)
{
    for (size_t i = 0; i < n; i++)
        if (pt_str_caseeq(name, kv[i].name, kv[i].name_len))
            return true;
    return false;
}

static void add_kv(struct pt_resp_head *h, const struct pt_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pt_resp_add(h, (struct pt_str){kv[i].name, kv[i].name_len},
                    (struct pt_str){kv[i].value, kv[i].value_len});
}

void pt_resp_head_stage(struct pt_req *r, struct pt_resp_head *h, bool is_proxied)
{
    const struct pt_route_cfg *rt = r->route;
    const struct pt_header_ops *ops =
        rt && rt->action == PT_ACTION_PROXY ? &rt->proxy.response : NULL;
    size_t nf_len;
    const char *nf = pt_nf_header_lines(r, &nf_len); /* the site's _headers rules */
    size_t hsts_len;
    const char *hsts = pt_hsts_line(r, &hsts_len); /* the site's policy replaces any other */
    const struct pt_header_ops *rules = is_proxied ? ops : NULL;
    if (nf_len || is_proxied || hsts_len) {
        uint32_t k = 0;
        h->has_date = h->has_server = false;
        for (uint32_t i = 0; i < h->n_fields; i++) {
            struct pt_str n = h->fields[i].name;
            if (rules && (pt_kv_has(rules->remove, rules->n_remove, n) ||
                          pt_kv_has(rules->set, rules->n_set, n)))
                continue;
            if (nf_len && pt_nf_lines_have(nf, nf_len, n))
                continue;
            if (hsts_len && PT_STR_CASEEQ_LIT(n, "strict-transport-security"))
                continue;
            if (PT_STR_CASEEQ_LIT(n, "date"))
                h->has_date = true;
            else if (PT_STR_CASEEQ_LIT(n, "server"))
                h->has_server = true;
            h->fields[k++] = h->fields[i];
        }
        h->n_fields = k;
    }
    /* server_header, unless the head has its own (a respond route's headers) or the route's
       rules remove or set Server */
    const struct pt_config *cfg = r->cfg;
    if (cfg->server_header && !h->has_server &&
        !(ops && (ops->is_server_removed || (rules && ops->is_server_set))))
        pt_resp_add(h, PT_STR("Server"),
                    (struct pt_str){cfg->server_header, strlen(cfg->server_header)});
    if (!h->has_date) {
        const struct pt_wallclock *wc = pt_wallclock_now();
        pt_resp_add(h, PT_STR("Date"), (struct pt_str){wc->http_date, wc->http_date_len});
    }
    pt_resp_add(h, PT_STR("X-Request-Id"), (struct pt_str){r->request_id, r->request_id_len});
    if (is_proxied) {
        if (rules) {
            add_kv(h, rules->set, rules->n_set);
            add_kv(h, rules->add, rules->n_add);
        }
        pt_resp_add_lines(h, r->set_cookie, r->set_cookie_len);
    }
    pt_resp_add_lines(h, hsts, hsts_len);
    pt_resp_add_lines(h, nf, nf_len);
}
