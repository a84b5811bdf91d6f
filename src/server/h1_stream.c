/*
 * h1_stream.c - the HTTP/1.1 side of http/stream.h: how a handler's answer goes out on a
 * client connection.
 *
 * Everything is queued on the connection (conn.c writes it): the head and small bodies into
 * c->out, a larger stable body as the slice written after it in the same writev, a file as
 * c->file_fd sent with sendfile after both. The head's Connection field says what conn.c will
 * do after the response: close when the request asked for it, when its body cannot be
 * drained, or when the worker is draining; keep-alive said explicitly to an HTTP/1.0 client.
 * A HEAD request gets the head alone.
 */
#include <unistd.h>

#include "handler/static.h"
#include "server/worker.h"

static bool ensure_out(struct pt_conn *c)
{
    return c->out.data || pt_buf_alloc(&c->out, PT_BUF_SMALL) == 0;
}

static int h1_send_head(struct pt_req *r, const struct pt_resp_head *h)
{
    struct pt_conn *c = r->c;
    if (!ensure_out(c))
        return -1;
    pt_buf_compact(&c->out);
    if (h->status < 200)
        return pt_h1_write_head(&c->out, h, PT_H1_CONN_INTERIM);
    if (c->w->is_draining)
        r->is_keepalive = false; /* shutting down: say so rather than reset a next request */
    enum pt_h1_conn conn = !r->is_keepalive        ? PT_H1_CONN_CLOSE
                           : r->minor_version == 0 ? PT_H1_CONN_KEEP_10
                                                   : PT_H1_CONN_KEEP;
    return pt_h1_write_head(&c->out, h, conn);
}

static int h1_send_data(struct pt_req *r, const char *p, size_t n, bool is_stable)
{
    struct pt_conn *c = r->c;
    if (r->is_head || n == 0)
        return 0;
    if (pt_buf_put(&c->out, p, n)) {
        r->bytes_out += n;
        return 0;
    }
    if (!is_stable || c->slice || n > UINT32_MAX)
        return -1;
    c->slice = p; /* borrowed: it outlives the response (conn.c counts it when sent) */
    c->slice_len = (uint32_t)n;
    return 0;
}

static void h1_send_file(struct pt_req *r, int fd, struct pt_static_file *ref, uint64_t off,
                         uint64_t len)
{
    struct pt_conn *c = r->c;
    if (r->is_head || len == 0 || c->file_fd >= 0) {
        if (ref)
            pt_static_file_unref(ref);
        else
            close(fd);
        return;
    }
    c->file_fd = fd;
    c->file_ref = ref;
    c->file_off = off;
    c->file_left = len;
}

const struct pt_stream_ops pt_h1_stream = {
    .send_head = h1_send_head,
    .send_data = h1_send_data,
    .send_file = h1_send_file,
};
