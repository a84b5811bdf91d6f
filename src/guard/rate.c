/*
 * rate.c - the rate-limit guard.
 *
 * A limit's key is its scope (where it is configured) and name, then each part of its key: the
 * client address (binary, with a length byte: formatting it as text cost more than the rest of
 * the guard), a header's value, a cookie's value, a query parameter's value, or nothing (route:
 * one counter for the route), each part ended by a zero byte.
 * The bytes go to the shared table as they are (hashed there); nothing is allocated. Over the
 * limit the answer is 429 with Retry-After (whole seconds, rounded up) and the IETF draft's
 * fields: RateLimit-Policy: "NAME";q=BURST;w=WINDOW and RateLimit: "NAME";r=LEFT;t=RESET,
 * where the window is the time the whole burst takes to come back. With delay:, a request the
 * store counts late is not refused: the caller holds it for the delay the store gives.
 */
#include "guard/rate.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

struct pt_rl_store *pt_guard_rl;

#define KEY_MAX 1024

struct pt_str pt_guard_cookie(const struct pt_req_head *h, const char *name, size_t n)
{
    for (size_t i = 0; i < h->n_fields; i++) {
        if (!PT_STR_CASEEQ_LIT(h->fields[i].name, "cookie"))
            continue;
        const char *p = h->fields[i].value.p, *end = p + h->fields[i].value.n;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *e = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            if (eq && (size_t)(eq - p) == n && memcmp(p, name, n) == 0)
                return (struct pt_str){eq + 1, (size_t)(e - eq - 1)};
            p = e;
        }
    }
    return (struct pt_str){NULL, 0};
}

/* The value of query parameter name (as sent, not decoded); p NULL when absent. */
static struct pt_str query_of(struct pt_str q, const char *name, size_t n)
{
    const char *p = q.p, *end = q.p ? q.p + q.n : NULL;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        size_t kn = (size_t)((eq ? eq : e) - p);
        if (kn == n && memcmp(p, name, n) == 0)
            return eq ? (struct pt_str){eq + 1, (size_t)(e - eq - 1)} : (struct pt_str){e, 0};
        p = amp ? amp + 1 : end;
    }
    return (struct pt_str){NULL, 0};
}

static bool put(char *key, size_t *n, const char *p, size_t len)
{
    if (*n + len + 1 > KEY_MAX)
        return false;
    if (len)
        memcpy(key + *n, p, len);
    *n += len;
    key[(*n)++] = '\0';
    return true;
}

struct pt_str pt_guard_rate_ip_key(const struct sockaddr *sa, char out[17])
{
    if (sa->sa_family == AF_INET) {
        out[0] = 4;
        memcpy(out + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return (struct pt_str){out, 5};
    }
    if (sa->sa_family == AF_INET6) {
        out[0] = 16;
        memcpy(out + 1, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return (struct pt_str){out, 17};
    }
    return (struct pt_str){"", 0};
}

static uint64_t ceil_s(uint64_t us)
{
    return (us + 999999) / 1000000;
}

int pt_guard_rate(const struct pt_rate_limit_cfg *c, struct pt_str scope,
                  const struct pt_req_head *h, struct pt_str client, uint64_t now_us, char *out,
                  size_t *out_len, uint64_t *delay_us)
{
    *out_len = 0;
    *delay_us = 0;
    if (!pt_guard_rl)
        return 0;
    char key[KEY_MAX];
    size_t n = 0;
    if (!put(key, &n, scope.p, scope.n))
        return 0;
    put(key, &n, c->name, strlen(c->name));
    for (size_t i = 0; i < c->n_parts; i++) {
        const struct pt_rl_part *part = &c->parts[i];
        struct pt_str v = {"", 0};
        switch (part->kind) {
        case PT_RL_IP:
            v = client;
            break;
        case PT_RL_HEADER:
            v = pt_req_field(h, part->name, part->name_len);
            break;
        case PT_RL_COOKIE:
            v = pt_guard_cookie(h, part->name, part->name_len);
            break;
        case PT_RL_QUERY:
            v = query_of(h->query, part->name, part->name_len);
            break;
        default:
            break;
        }
        if (!v.p || !put(key, &n, v.p, v.n))
            return 0; /* absent (or too long to key): not counted */
    }
    struct pt_rl_limit lim = {c->interval_us, c->burst, (uint64_t)c->delay_ms * 1000};
    struct pt_rl_verdict vd;
    pt_rl_store_take(pt_guard_rl, key, n, &lim, now_us, &vd);
    if (vd.is_ok) {
        *delay_us = vd.delay_us;
        return 0;
    }
    uint64_t window = ceil_s(c->interval_us * c->burst);
    int w = snprintf(out, 256,
                     "Retry-After: %llu\r\nRateLimit-Policy: \"%s\";q=%u;w=%llu\r\n"
                     "RateLimit: \"%s\";r=0;t=%llu\r\n",
                     (unsigned long long)ceil_s(vd.retry_after_us), c->name, c->burst,
                     (unsigned long long)(window ? window : 1), c->name,
                     (unsigned long long)ceil_s(vd.retry_after_us));
    *out_len = w > 0 && w < 256 ? (size_t)w : 0;
    return 429;
}
