/*
 * compress.c - response compression: gzip (zlib), brotli and zstd as a body filter on the
 * request's stream chain (compress.h, http/stream.h).
 *
 * What the client accepts is noted when the request starts (pt_compress_note), in the one
 * byte r->accept_codings: two bits per coding, its rank among the client's q-values (0: not
 * acceptable; 3: the highest q). The choice is the highest rank, and among equal ranks the
 * first in the configuration's order (pt_compress_pick). RFC 9110 §12.5.3: "*" gives its q to
 * every coding not listed, q=0 excludes, x-gzip is gzip; a coding whose q is below an
 * explicitly listed identity's is not chosen (the client prefers the plain bytes). A request
 * without Accept-Encoding gets identity: the RFC allows any coding then, but old clients that
 * send none often cannot decode one, and every other proxy reads it the same way.
 *
 * pt_compress_head decides on the final head (before the response-header stage, so that the
 * route's own header rules still apply over ours) and edits it: Content-Encoding, Vary:
 * Accept-Encoding (merged into the upstream's Vary, never next to Vary: *), a strong ETag
 * made weak (the bytes differ, so a strong validator would lie: RFC 9110 §8.8.1), no
 * Content-Length. The merged values are written in this thread's scratch (vary_buf,
 * etag_buf): send_head copies or serialises the head before any other head is made here.
 *
 * The filter. Its state (struct cz, one malloc per compressed response, freed by the cleanup
 * registered with pt_req_on_end, however the request ends) holds the coder and one fixed
 * output buffer of CZ_OUT bytes, so a response costs that plus the coder's window whatever
 * its length. A caller's borrowed piece (send_borrowed) is only noted; flush does the work:
 *
 *     flush ─► out lent below? ─ below's flush: AGAIN/ERR ─► return it (the caller keeps
 *                │ OK                                        waiting; its piece stays held)
 *                ▼
 *             coder step (input, then a sync flush; or the finish) into out
 *                ▼
 *             output? ─ yes ─► send_borrowed(out) below, loop
 *                │ no (the step is complete)
 *                ▼
 *             end asked? ─► send_end / send_trailers below, below's flush
 *             return PT_OK: the caller's piece is all taken (it may reuse it)
 *
 * Each borrowed piece ends with a sync flush of the coder (Z_SYNC_FLUSH, BROTLI flush,
 * ZSTD_e_flush), so what the upstream sent leaves at once, compressed: a stream of events
 * is not held back waiting for more; the cost is a few bytes per piece. send_data (bytes
 * handed over whole, which the stream must take now) is compressed at once and passed down
 * as copies. send_file is not filtered: static files are not given to pt_compress_head
 * (their precompressed siblings are the way to send them compressed).
 */
#include "handler/compress.h"

#include <brotli/encode.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>

#define CZ_OUT 16384     /* bytes of compressed output held per response */
#define CZ_WINDOW_LOG 18 /* brotli and zstd windows: 256 KiB */

enum cz_op { CZ_NONE = 0, CZ_FLUSH, CZ_FINISH };

struct cz {
    enum pt_coding coding;
    union {
        z_stream z;
        BrotliEncoderState *br;
        ZSTD_CCtx *zs;
    } c;
    const char *in; /* the caller's bytes not yet taken by the coder */
    size_t in_n;
    enum cz_op op;       /* the coder step under way (CZ_NONE: none) */
    bool is_out_lent;    /* out[0..out_n) is queued below as borrowed bytes */
    bool is_end_wanted;  /* send_end or send_trailers came: finish after the input */
    bool is_finished;    /* the coder's finish step was started */
    bool is_zinit;       /* c.z was initialised (deflateEnd owed) */
    size_t out_n;        /* output bytes in out */
    struct pt_field *tr; /* trailers to send at the end (one block with their bytes) */
    size_t n_tr;
    char out[CZ_OUT];
};

static const char *const coding_token[PT_CODING_N] = {"identity", "gzip", "br", "zstd"};

/* ---- Accept-Encoding ---- */

/* A weight (RFC 9110 §12.4.2) in thousandths, or -1 when malformed. */
static int parse_q(const char *p, size_t n)
{
    if (n == 0 || (p[0] != '0' && p[0] != '1'))
        return -1;
    int q = (p[0] - '0') * 1000;
    if (n == 1)
        return q;
    if (p[1] != '.' || n > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        q += (p[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

static struct pt_str trim(const char *p, size_t n)
{
    while (n && is_ows(*p))
        p++, n--;
    while (n && is_ows(p[n - 1]))
        n--;
    return (struct pt_str){p, n};
}

/* Reads one field value into q[] (thousandths, -1: not listed) for identity (index 0, as
   PT_CODING_NONE), the codings, and "*" (index PT_CODING_N). */
static void parse_ae(struct pt_str v, int q[PT_CODING_N + 1])
{
    const char *p = v.p, *end = v.p + v.n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *semi = memchr(p, ';', (size_t)(e - p));
        struct pt_str name = trim(p, (size_t)((semi ? semi : e) - p));
        int w = 1000;
        if (semi) { /* parameters: only q counts (RFC 9110 §12.4.2) */
            struct pt_str prm = trim(semi + 1, (size_t)(e - semi - 1));
            if (prm.n >= 2 && (prm.p[0] == 'q' || prm.p[0] == 'Q')) {
                struct pt_str rest = trim(prm.p + 1, prm.n - 1);
                w = rest.n && rest.p[0] == '='
                        ? parse_q(trim(rest.p + 1, rest.n - 1).p, trim(rest.p + 1, rest.n - 1).n)
                        : -1;
            } else {
                w = -1;
            }
        }
        p = comma ? comma + 1 : end;
        if (w < 0 || name.n == 0)
            continue; /* malformed: the element is ignored */
        int idx = -1;
        if (PT_STR_CASEEQ_LIT(name, "gzip") || PT_STR_CASEEQ_LIT(name, "x-gzip"))
            idx = PT_CODING_GZIP;
        else if (PT_STR_CASEEQ_LIT(name, "br"))
            idx = PT_CODING_BR;
        else if (PT_STR_CASEEQ_LIT(name, "zstd"))
            idx = PT_CODING_ZSTD;
        else if (PT_STR_CASEEQ_LIT(name, "identity"))
            idx = PT_CODING_NONE;
        else if (PT_STR_EQ_LIT(name, "*"))
            idx = PT_CODING_N;
        if (idx >= 0 && w > q[idx])
            q[idx] = w; /* listed twice: the higher weight */
    }
}

uint8_t pt_compress_accept(const struct pt_req_head *h)
{
    int q[PT_CODING_N + 1];
    for (int i = 0; i <= PT_CODING_N; i++)
        q[i] = -1;
    bool seen = false;
    for (size_t i = 0; i < h->n_fields; i++) {
        if (!PT_STR_CASEEQ_LIT(h->fields[i].name, "accept-encoding"))
            continue;
        seen = true;
        parse_ae(h->fields[i].value, q); /* several fields are one list (RFC 9110 §5.3) */
    }
    if (!seen)
        return 0;
    int eff[PT_CODING_N] = {0};
    for (int c = 1; c < PT_CODING_N; c++) {
        eff[c] = q[c] >= 0 ? q[c] : (q[PT_CODING_N] >= 0 ? q[PT_CODING_N] : 0);
        if (q[PT_CODING_NONE] >= 0 && eff[c] < q[PT_CODING_NONE])
            eff[c] = 0; /* the client prefers the plain bytes to this coding */
    }
    uint8_t bits = 0;
    for (int c = 1; c < PT_CODING_N; c++) {
        if (eff[c] == 0)
            continue;
        /* rank: 1 + how many distinct acceptable weights are lower */
        unsigned rank = 1;
        for (int d = 1; d < PT_CODING_N; d++) {
            bool lower_new = eff[d] > 0 && eff[d] < eff[c];
            for (int e = 1; e < d && lower_new; e++)
                if (eff[e] == eff[d])
                    lower_new = false;
            rank += lower_new;
        }
        bits |= (uint8_t)(rank << (2 * (c - 1)));
    }
    return bits;
}

static const struct pt_compress_cfg *cfg_of(const struct pt_req *r)
{
    if (r->route && r->route->compress.is_set)
        return &r->route->compress;
    if (r->site && r->site->compress.is_set)
        return &r->site->compress;
    return NULL;
}

void pt_compress_note(struct pt_req *r, const struct pt_req_head *h)
{
    const struct pt_compress_cfg *cfg = cfg_of(r);
    /* A route that does not compress reads no Accept-Encoding: its requests cost nothing. */
    r->accept_codings = cfg && cfg->is_on ? pt_compress_accept(h) : 0;
}

enum pt_coding pt_compress_pick(uint8_t accept, const uint8_t order[PT_CODING_N])
{
    enum pt_coding best = PT_CODING_NONE;
    unsigned best_rank = 0;
    for (int i = 0; i < PT_CODING_N && order[i] != PT_CODING_NONE; i++) {
        unsigned rank = (accept >> (2 * (order[i] - 1))) & 3u;
        if (rank > best_rank) {
            best_rank = rank;
            best = (enum pt_coding)order[i];
        }
    }
    return best;
}

/* ---- the head ---- */

/* Whether the media type of a Content-Type value is one of types ("a/b", "a/ *", "a/ *+s"). */
static bool type_matches(struct pt_str ct, const char *const *types)
{
    const char *semi = memchr(ct.p, ';', ct.n);
    struct pt_str mt = trim(ct.p, semi ? (size_t)(semi - ct.p) : ct.n);
    const char *slash = memchr(mt.p, '/', mt.n);
    if (!slash)
        return false;
    size_t tl = (size_t)(slash - mt.p) + 1; /* with the slash */
    for (size_t i = 0; types[i]; i++) {
        const char *t = types[i];
        size_t n = strlen(t);
        const char *star = memchr(t, '*', n);
        if (!star) {
            if (pt_str_caseeq(mt, t, n))
                return true;
            continue;
        }
        size_t pl = (size_t)(star - t); /* "text/" */
        if (pl != tl || strncasecmp(mt.p, t, pl) != 0)
            continue;
        size_t sl = n - pl - 1; /* "+json" after the star, or nothing */
        if (sl == 0 || (mt.n - tl > sl && strncasecmp(mt.p + mt.n - sl, star + 1, sl) == 0))
            return true;
    }
    return false;
}

/* Whether a comma-separated list value has the token tok (case-insensitive). */
static bool list_has(struct pt_str v, const char *tok, size_t tn)
{
    const char *p = v.p, *end = v.p + v.n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        struct pt_str t = trim(p, (size_t)(e - p));
        const char *eq = memchr(t.p, '=', t.n); /* a directive's argument is not its name */
        if (eq)
            t = trim(t.p, (size_t)(eq - t.p));
        if (pt_str_caseeq(t, tok, tn))
            return true;
        p = comma ? comma + 1 : end;
    }
    return false;
}

/* What of h bears on compression. */
struct head_facts {
    struct pt_str type;
    bool has_coding;      /* a Content-Encoding other than identity */
    bool is_no_transform; /* Cache-Control: no-transform */
    bool has_range;       /* Content-Range */
    bool has_vary_ae;     /* Vary already names Accept-Encoding, or is "*" */
    int vary;             /* index of the first Vary field, or -1 */
};

static void read_head(const struct pt_resp_head *h, struct head_facts *f)
{
    memset(f, 0, sizeof(*f));
    f->vary = -1;
    for (uint32_t i = 0; i < h->n_fields; i++) {
        struct pt_str n = h->fields[i].name, v = h->fields[i].value;
        if (PT_STR_CASEEQ_LIT(n, "content-type")) {
            f->type = v;
        } else if (PT_STR_CASEEQ_LIT(n, "content-encoding")) {
            if (!PT_STR_CASEEQ_LIT(trim(v.p, v.n), "identity"))
                f->has_coding = true;
        } else if (PT_STR_CASEEQ_LIT(n, "cache-control")) {
            f->is_no_transform |= list_has(v, "no-transform", 12);
        } else if (PT_STR_CASEEQ_LIT(n, "content-range")) {
            f->has_range = true;
        } else if (PT_STR_CASEEQ_LIT(n, "vary")) {
            if (f->vary < 0)
                f->vary = (int)i;
            f->has_vary_ae |= list_has(v, "accept-encoding", 15) || list_has(v, "*", 1);
        }
    }
}

/* Adds Accept-Encoding to the response's Vary: merged into its first Vary field (this
   thread's scratch holds the value until the head is sent), or a field of its own. */
static void add_vary(struct pt_resp_head *h, const struct head_facts *f)
{
    static __thread char vary_buf[1024];
    static const char ae[] = "Accept-Encoding";
    if (f->has_vary_ae)
        return;
    if (f->vary >= 0) {
        struct pt_str *v = &h->fields[f->vary].value;
        if (v->n == 0) {
            *v = PT_STR(ae);
            return;
        }
        if (v->n + 2 + sizeof(ae) <= sizeof(vary_buf)) {
            memcpy(vary_buf, v->p, v->n);
            memcpy(vary_buf + v->n, ", ", 2);
            memcpy(vary_buf + v->n + 2, ae, sizeof(ae) - 1);
            *v = (struct pt_str){vary_buf, v->n + 2 + sizeof(ae) - 1};
            return;
        }
    }
    pt_resp_add(h, PT_STR("Vary"), PT_STR(ae)); /* a second Vary field is the same list */
}

/* Edits h for a body sent with coding c: Content-Encoding, Vary, a weak ETag, no length, no
   Accept-Ranges. */
static void edit_head(struct pt_resp_head *h, const struct head_facts *f, enum pt_coding c)
{
    static __thread char etag_buf[512];
    add_vary(h, f);
    uint32_t k = 0;
    for (uint32_t i = 0; i < h->n_fields; i++) {
        struct pt_field *fl = &h->fields[i];
        if (PT_STR_CASEEQ_LIT(fl->name, "content-length") ||
            PT_STR_CASEEQ_LIT(fl->name, "content-encoding") ||
            PT_STR_CASEEQ_LIT(fl->name, "accept-ranges"))
            continue; /* the length changes; an identity coding is replaced; the upstream's
                         ranges are of the identity bytes, not of these */
        if (PT_STR_CASEEQ_LIT(fl->name, "etag") && fl->value.n >= 2 && fl->value.p[0] == '"') {
            if (fl->value.n + 2 > sizeof(etag_buf))
                continue; /* cannot weaken it here: better none than a strong lie */
            memcpy(etag_buf, "W/", 2);
            memcpy(etag_buf + 2, fl->value.p, fl->value.n);
            fl->value = (struct pt_str){etag_buf, fl->value.n + 2};
        }
        h->fields[k++] = *fl;
    }
    h->n_fields = k;
    pt_resp_add(h, PT_STR("Content-Encoding"),
                (struct pt_str){coding_token[c], strlen(coding_token[c])});
    h->content_length = -1;
    h->is_chunked = true;
}

/* ---- the coders ---- */

static void cz_free(struct pt_req *r, void *arg)
{
    (void)r;
    struct cz *s = arg;
    switch (s->coding) {
    case PT_CODING_GZIP:
        if (s->is_zinit)
            deflateEnd(&s->c.z);
        break;
    case PT_CODING_BR:
        BrotliEncoderDestroyInstance(s->c.br);
        break;
    case PT_CODING_ZSTD:
        ZSTD_freeCCtx(s->c.zs);
        break;
    default:
        break;
    }
    free(s->tr);
    free(s);
}

/* A new coder state for c at level; size_hint: the announced length, or -1. Windows are
   capped at 2^CZ_WINDOW_LOG bytes (zstd would take 2 MiB at level 3, brotli 4 MiB): a
   response's memory stays bounded whatever its length, for a little ratio on large bodies. */
static struct cz *cz_new(enum pt_coding c, int level, int64_t size_hint)
{
    struct cz *s = malloc(sizeof(*s));
    if (!s)
        return NULL;
    memset(s, 0, offsetof(struct cz, out));
    s->coding = c;
    bool ok = false;
    switch (c) {
    case PT_CODING_GZIP:
        /* windowBits 15 + 16: a gzip wrapper (RFC 1952) around raw deflate */
        ok = deflateInit2(&s->c.z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
        s->is_zinit = ok;
        break;
    case PT_CODING_BR:
        s->c.br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
        ok = s->c.br && BrotliEncoderSetParameter(s->c.br, BROTLI_PARAM_QUALITY, (uint32_t)level) &&
             BrotliEncoderSetParameter(s->c.br, BROTLI_PARAM_LGWIN, CZ_WINDOW_LOG);
        if (ok && size_hint > 0)
            BrotliEncoderSetParameter(s->c.br, BROTLI_PARAM_SIZE_HINT,
                                      (uint32_t)PT_MIN(size_hint, (int64_t)1 << 30));
        break;
    case PT_CODING_ZSTD:
        s->c.zs = ZSTD_createCCtx();
        ok = s->c.zs &&
             !ZSTD_isError(ZSTD_CCtx_setParameter(s->c.zs, ZSTD_c_compressionLevel, level)) &&
             !ZSTD_isError(ZSTD_CCtx_setParameter(s->c.zs, ZSTD_c_windowLog, CZ_WINDOW_LOG)) &&
             (size_hint < 0 ||
              !ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(s->c.zs, (unsigned long long)size_hint)));
        break;
    default:
        break;
    }
    if (!ok) {
        cz_free(NULL, s);
        return NULL;
    }
    return s;
}

/* One coder step of s->op over s->in into out's room. Sets *done when the step is complete
   (input all taken and flushed, or the stream finished). Returns 0, or -1 on a coder error. */
static int cz_step(struct cz *s, bool *done)
{
    size_t room = CZ_OUT - s->out_n;
    char *o = s->out + s->out_n;
    bool fin = s->op == CZ_FINISH;
    *done = false;
    switch (s->coding) {
    case PT_CODING_GZIP: {
        z_stream *z = &s->c.z;
        z->next_in = (Bytef *)(uintptr_t)s->in;
        z->avail_in = (uInt)PT_MIN(s->in_n, (size_t)UINT32_MAX);
        z->next_out = (Bytef *)o;
        z->avail_out = (uInt)room;
        int rc = deflate(z, fin ? Z_FINISH : Z_SYNC_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return -1;
        s->in_n -= (size_t)((const char *)z->next_in - s->in);
        s->in = (const char *)z->next_in;
        s->out_n += room - z->avail_out;
        *done = fin ? rc == Z_STREAM_END : s->in_n == 0 && z->avail_out != 0;
        return 0;
    }
    case PT_CODING_BR: {
        size_t ai = s->in_n, ao = room;
        const uint8_t *ni = (const uint8_t *)s->in;
        uint8_t *no = (uint8_t *)o;
        if (!BrotliEncoderCompressStream(s->c.br,
                                         fin ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH,
                                         &ai, &ni, &ao, &no, NULL))
            return -1;
        s->in = (const char *)ni;
        s->in_n = ai;
        s->out_n += room - ao;
        *done = fin ? BrotliEncoderIsFinished(s->c.br)
                    : ai == 0 && !BrotliEncoderHasMoreOutput(s->c.br);
        return 0;
    }
    case PT_CODING_ZSTD: {
        ZSTD_inBuffer in = {s->in, s->in_n, 0};
        ZSTD_outBuffer out = {o, room, 0};
        size_t left = ZSTD_compressStream2(s->c.zs, &out, &in, fin ? ZSTD_e_end : ZSTD_e_flush);
        if (ZSTD_isError(left))
            return -1;
        s->in += in.pos;
        s->in_n -= in.pos;
        s->out_n += out.pos;
        *done = left == 0 && s->in_n == 0;
        return 0;
    }
    default:
        return -1;
    }
}

/* ---- the filter ---- */

static const struct pt_stream_ops cz_ops;

static struct cz *state(struct pt_req *r)
{
    return pt_stream_filter_state(r, &cz_ops);
}

static const struct pt_stream_ops *below(struct pt_req *r)
{
    return pt_stream_below(r, &cz_ops);
}

static int cz_send_head(struct pt_req *r, const struct pt_resp_head *h)
{
    return below(r)->send_head(r, h);
}

/* Bytes the stream must take now: compressed at once (with a sync flush) and passed down as
   copies. Refused while a piece of out is lent below (it would overtake it). */
static int cz_send_data(struct pt_req *r, const char *p, size_t n, bool is_stable)
{
    (void)is_stable;
    struct cz *s = state(r);
    if (s->is_out_lent || s->op != CZ_NONE || s->is_end_wanted)
        return -1;
    if (n == 0)
        return 0;
    s->in = p;
    s->in_n = n;
    s->op = CZ_FLUSH;
    for (bool done = false; !done;) {
        if (cz_step(s, &done) < 0)
            return -1;
        if (s->out_n && below(r)->send_data(r, s->out, s->out_n, false) < 0)
            return -1;
        s->out_n = 0;
    }
    s->op = CZ_NONE;
    return 0;
}

static void cz_send_file(struct pt_req *r, int fd, struct pt_static_file *ref, uint64_t off,
                         uint64_t len)
{
    below(r)->send_file(r, fd, ref, off, len); /* not compressed: see the file comment */
}

static int cz_read_body(struct pt_req *r, struct pt_str *view)
{
    return below(r)->read_body(r, view);
}

static void cz_consume_body(struct pt_req *r, size_t n)
{
    below(r)->consume_body(r, n);
}

static void cz_continue_body(struct pt_req *r)
{
    below(r)->continue_body(r);
}

/* Notes the caller's piece: flush compresses it. */
static int cz_send_borrowed(struct pt_req *r, const char *p, size_t n)
{
    struct cz *s = state(r);
    if (s->op != CZ_NONE || s->is_end_wanted)
        return -1; /* one borrowed piece at a time, and none after the end */
    if (n == 0)
        return 0;
    s->in = p;
    s->in_n = n;
    s->op = CZ_FLUSH;
    return 0;
}

/* Keeps a copy of n trailer fields for the end (the caller's go when it returns); when no
   memory is left they are dropped, as HTTP/1.1 drops them under a length. */
static void keep_trailers(struct cz *s, const struct pt_field *f, size_t n)
{
    size_t bytes = n * sizeof(*f);
    for (size_t i = 0; i < n; i++)
        bytes += f[i].name.n + f[i].value.n;
    s->tr = malloc(bytes);
    if (!s->tr)
        return;
    char *p = (char *)(s->tr + n);
    for (size_t i = 0; i < n; i++) {
        s->tr[i].name = (struct pt_str){memcpy(p, f[i].name.p, f[i].name.n), f[i].name.n};
        p += f[i].name.n;
        s->tr[i].value = (struct pt_str){memcpy(p, f[i].value.p, f[i].value.n), f[i].value.n};
        p += f[i].value.n;
    }
    s->n_tr = n;
}

static void cz_send_trailers(struct pt_req *r, const struct pt_field *f, size_t n)
{
    struct cz *s = state(r);
    if (s->is_end_wanted)
        return;
    s->is_end_wanted = true;
    if (n)
        keep_trailers(s, f, n);
}

static void cz_send_end(struct pt_req *r)
{
    cz_send_trailers(r, NULL, 0);
}

static size_t cz_req_trailers(struct pt_req *r, const struct pt_field **f)
{
    return below(r)->req_trailers(r, f);
}

/* Drives the coder over the held piece and the end, lending out below as it fills (the
   diagram in the file comment). */
static int cz_flush(struct pt_req *r)
{
    struct cz *s = state(r);
    const struct pt_stream_ops *b = below(r);
    for (;;) {
        if (s->is_out_lent) {
            int rc = b->flush(r);
            if (rc != PT_OK)
                return rc;
            s->is_out_lent = false;
            s->out_n = 0;
        }
        if (s->op == CZ_NONE && s->is_end_wanted && !s->is_finished) {
            s->op = CZ_FINISH;
            s->is_finished = true;
        }
        if (s->op == CZ_NONE)
            break;
        bool done;
        if (cz_step(s, &done) < 0)
            return PT_ERR;
        if (done) {
            s->op = CZ_NONE;
            s->in = NULL;
        } else if (s->out_n == 0) {
            return PT_ERR; /* no progress with all of out free: a coder that is stuck */
        }
        if (s->out_n) {
            if (b->send_borrowed(r, s->out, s->out_n) < 0)
                return PT_ERR;
            s->is_out_lent = true;
        }
    }
    if (s->is_finished && s->is_end_wanted) {
        s->is_end_wanted = false; /* passed down once */
        if (s->n_tr)
            b->send_trailers(r, s->tr, s->n_tr);
        else
            b->send_end(r);
    }
    return b->flush(r);
}

static void cz_finish(struct pt_req *r)
{
    below(r)->finish(r);
}

static void cz_reset(struct pt_req *r)
{
    below(r)->reset(r); /* the held piece is dropped with the request; cz_free frees */
}

static void cz_resume(struct pt_req *r)
{
    below(r)->resume(r);
}

static void cz_yield(struct pt_req *r)
{
    below(r)->yield(r);
}

static int cz_tunnel(struct pt_req *r)
{
    return below(r)->tunnel(r);
}

static int cz_read_raw(struct pt_req *r, struct pt_str *view)
{
    return below(r)->read_raw(r, view);
}

static void cz_consume_raw(struct pt_req *r, size_t n)
{
    below(r)->consume_raw(r, n);
}

static const struct pt_stream_ops cz_ops = {
    .send_head = cz_send_head,
    .send_data = cz_send_data,
    .send_file = cz_send_file,
    .read_body = cz_read_body,
    .consume_body = cz_consume_body,
    .continue_body = cz_continue_body,
    .send_borrowed = cz_send_borrowed,
    .send_end = cz_send_end,
    .send_trailers = cz_send_trailers,
    .req_trailers = cz_req_trailers,
    .flush = cz_flush,
    .finish = cz_finish,
    .reset = cz_reset,
    .resume = cz_resume,
    .yield = cz_yield,
    .tunnel = cz_tunnel,
    .read_raw = cz_read_raw,
    .consume_raw = cz_consume_raw,
};

bool pt_compress_head(struct pt_req *r, struct pt_resp_head *h)
{
    const struct pt_compress_cfg *cfg = cfg_of(r);
    if (!cfg || !cfg->is_on)
        return false;
    int st = h->status;
    if (st < 200 || st == 204 || st == 206 || st == 304)
        return false;
    struct head_facts f;
    read_head(h, &f);
    if (!f.type.p || f.has_coding || f.is_no_transform || f.has_range ||
        !type_matches(f.type, cfg->types))
        return false;
    if (h->content_length >= 0 && (uint64_t)h->content_length < cfg->min_size)
        return false;
    enum pt_coding c = pt_compress_pick(r->accept_codings, cfg->order);
    if (c == PT_CODING_NONE) {
        add_vary(h, &f); /* another client's request may get a coded answer */
        return false;
    }
    if (!r->is_head) {
        struct cz *s = cz_new(c, cfg->level[c], h->content_length);
        if (s && pt_req_on_end(r, cz_free, s) < 0) {
            cz_free(r, s);
            s = NULL;
        }
        if (!s || pt_stream_push_filter(r, &cz_ops, s) < 0) {
            add_vary(h, &f); /* no memory, or no room on the chain: sent as it is */
            return false;    /* a registered s is freed when the request ends */
        }
    }
    edit_head(h, &f, c);
    return true;
}
