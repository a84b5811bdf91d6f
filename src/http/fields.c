/*
 * fields.c - protocol-neutral response heads (fields.h) and their HTTP/1.1 serialisation.
 *
 * The HTTP/1.1 head is written in one pass straight into the connection's output buffer: no
 * printf, no intermediate copy; the whole head then leaves with the body's first bytes in one
 * writev. A head that does not fit leaves the buffer as it was (the caller answers 500).
 */
#include "http/fields.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct pt_str pt_req_field(const struct pt_req_head *h, const char *name, size_t n)
{
    for (size_t i = 0; i < h->n_fields; i++)
        if (pt_str_caseeq(h->fields[i].name, name, n))
            return h->fields[i].value;
    return (struct pt_str){NULL, 0};
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool pt_trailer_field_ok(struct pt_str name, struct pt_str value)
{
    static const char *const banned[] = {"content-length",
                                         "transfer-encoding",
                                         "trailer",
                                         "host",
                                         "connection",
                                         "keep-alive",
                                         "te",
                                         "upgrade",
                                         "authorization",
                                         "cookie",
                                         "set-cookie",
                                         "expect",
                                         "range",
                                         "max-forwards",
                                         "cache-control",
                                         "content-type",
                                         "content-encoding",
                                         "content-range",
                                         "age",
                                         "date",
                                         "location",
                                         "retry-after",
                                         "vary",
                                         "www-authenticate",
                                         "proxy-authenticate",
                                         "pragma",
                                         "expires",
                                         NULL};
    if (name.n == 0)
        return false;
    for (size_t i = 0; i < name.n; i++)
        if (!is_tchar((unsigned char)name.p[i]))
            return false;
    for (size_t i = 0; i < value.n; i++) {
        unsigned char c = (unsigned char)value.p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    if (value.n && (value.p[0] == ' ' || value.p[0] == '\t' || value.p[value.n - 1] == ' ' ||
                    value.p[value.n - 1] == '\t'))
        return false;
    if ((name.n > 6 && strncasecmp(name.p, "proxy-", 6) == 0) ||
        (name.n > 3 && strncasecmp(name.p, "if-", 3) == 0))
        return false;
    for (size_t i = 0; banned[i]; i++)
        if (pt_str_caseeq(name, banned[i], strlen(banned[i])))
            return false;
    return true;
}

static __thread struct pt_field *scratch;
static __thread uint32_t scratch_cap;

void pt_resp_head_init(struct pt_resp_head *h, int status)
{
    memset(h, 0, sizeof(*h));
    h->status = status;
    h->content_length = -1;
    h->fields = scratch;
    h->cap = scratch_cap;
}

void pt_resp_fields_drain(void)
{
    free(scratch);
    scratch = NULL;
    scratch_cap = 0;
}

/* Doubles this thread's field array (the head's fields move with it). */
static bool grow(struct pt_resp_head *h)
{
    uint32_t cap = scratch_cap ? scratch_cap * 2 : 128;
    if (cap > PT_RESP_FIELDS_MAX)
        return false;
    struct pt_field *f = realloc(scratch, cap * sizeof(*f));
    if (!f)
        return false;
    scratch = f;
    scratch_cap = cap;
    h->fields = f;
    h->cap = cap;
    return true;
}

void pt_resp_add(struct pt_resp_head *h, struct pt_str name, struct pt_str value)
{
    if (h->n_fields == h->cap && !grow(h)) {
        h->is_overflow = true;
        return;
    }
    if (name.n == 4 && PT_STR_CASEEQ_LIT(name, "date"))
        h->has_date = true;
    else if (name.n == 6 && PT_STR_CASEEQ_LIT(name, "server"))
        h->has_server = true;
    h->fields[h->n_fields++] = (struct pt_field){name, value};
}

void pt_resp_add_lines(struct pt_resp_head *h, const char *lines, size_t len)
{
    const char *p = lines, *end = lines + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (colon) {
            const char *v = colon + 1, *ve = e;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            pt_resp_add(h, (struct pt_str){p, (size_t)(colon - p)},
                        (struct pt_str){v, (size_t)(ve - v)});
        }
        p = nl ? nl + 1 : end;
    }
}

bool pt_resp_has(const struct pt_resp_head *h, struct pt_str name)
{
    for (uint32_t i = 0; i < h->n_fields; i++)
        if (pt_str_caseeq(h->fields[i].name, name.p, name.n))
            return true;
    return false;
}

const char *pt_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 103:
        return "Early Hints";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 451:
        return "Unavailable For Legal Reasons";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 200   ? "Informational"
               : status < 300 ? "OK"
               : status < 400 ? "Redirection"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

/* Bounded appends into the room of a buffer; ok turns false at the first one that does not
   fit, and everything after is skipped. */
struct w {
    char *p, *end;
    bool ok;
};

static inline void put(struct w *o, const void *s, size_t n)
{
    if (!o->ok || (size_t)(o->end - o->p) < n) {
        o->ok = false;
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_u64(struct w *o, uint64_t v)
{
    char num[24], *p = num + sizeof(num);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, p, (size_t)(num + sizeof(num) - p));
}

int pt_h1_write_head(struct pt_buf *b, const struct pt_resp_head *h, enum pt_h1_conn conn)
{
    if (h->is_overflow)
        return -1;
    struct w o = {b->data + b->tail, b->data + b->cap, true};
    PUT_LIT(&o, "HTTP/1.1 ");
    put_u64(&o, (uint64_t)(h->status > 0 ? h->status : 0));
    PUT_LIT(&o, " ");
    if (h->reason.n) {
        put(&o, h->reason.p, h->reason.n);
    } else {
        const char *reason = pt_http_reason(h->status);
        put(&o, reason, strlen(reason));
    }
    PUT_LIT(&o, "\r\n");
    for (uint32_t i = 0; i < h->n_fields; i++) {
        const struct pt_field *f = &h->fields[i];
        put(&o, f->name.p, f->name.n);
        PUT_LIT(&o, ": ");
        put(&o, f->value.p, f->value.n);
        PUT_LIT(&o, "\r\n");
    }
    if (conn != PT_H1_CONN_INTERIM) {
        if (h->is_chunked) {
            PUT_LIT(&o, "Transfer-Encoding: chunked\r\n");
        } else if (h->content_length >= 0) {
            PUT_LIT(&o, "Content-Length: ");
            put_u64(&o, (uint64_t)h->content_length);
            PUT_LIT(&o, "\r\n");
        }
        if (conn == PT_H1_CONN_CLOSE)
            PUT_LIT(&o, "Connection: close\r\n");
        else if (conn == PT_H1_CONN_KEEP_10)
            PUT_LIT(&o, "Connection: keep-alive\r\n");
    }
    PUT_LIT(&o, "\r\n");
    if (!o.ok)
        return -1;
    b->tail = (uint32_t)(o.p - b->data);
    return 0;
}
