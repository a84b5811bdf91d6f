/* test_admin_routes.c - the admin listener's route table as later endpoints use it
   (admin/admin.c): parameters, methods, scopes, JSON bodies, answers, audit lines. A real
   listener on a loopback port, driven with blocking sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "admin/admin.h"
#include "admin/tokens.h"
#include "config/config.h"

struct fixture {
    char dir[64];
    char tokens[128];
    char audit[128];
    char reader[64], writer[64];
    struct pt_config *cfg;
    struct pt_admin_state *st;
    struct pt_admin *a;
    int port;
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t l = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &l);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Sends req and reads the whole answer (the request asks Connection: close). */
static char *exchange(int port, const char *req)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    size_t cap = 65536, n = 0;
    char *out = calloc(1, cap);
    for (;;) {
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
    close(fd);
    return out;
}

static void get_rule(struct pt_admin_req *q, void *arg)
{
    (void)arg;
    size_t hl = 0;
    const char *h = pt_admin_header(q, "x-trace", &hl);
    pt_admin_reply(q, 200,
                   json_pack("{s:s, s:s, s:s, s:s#}", "project", pt_admin_param(q, "projectId"),
                             "rule", pt_admin_param(q, "id"), "token", pt_admin_token_name(q),
                             "trace", h ? h : "", (int)hl));
}

static void post_rule(struct pt_admin_req *q, void *arg)
{
    int *calls = arg;
    json_t *body = pt_admin_body_json(q);
    if (!body)
        return;
    (*calls)++;
    if (!json_is_string(json_object_get(body, "pathPattern"))) {
        json_decref(body);
        pt_admin_reply_error(q, 400, "pathPattern", "required");
        return;
    }
    pt_admin_audit(q, body);
    pt_admin_reply_header(q, "Location", "/api/rules/1");
    pt_admin_reply(q, 201, body);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/pt-admin-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->tokens, sizeof(f->tokens), "%s/tokens", f->dir);
    snprintf(f->audit, sizeof(f->audit), "%s/audit.log", f->dir);
    char l1[160], l2[160], text[512];
    assert_int_equal(
        pt_tokens_make("r", PT_SCOPE_READ, f->reader, sizeof(f->reader), l1, sizeof(l1)), 0);
    assert_int_equal(
        pt_tokens_make("w", PT_SCOPE_WRITE, f->writer, sizeof(f->writer), l2, sizeof(l2)), 0);
    snprintf(text, sizeof(text), "%s\n%s\n", l1, l2);
    write_file(f->tokens, text);
    f->port = free_port();
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "listen:\n  - addr: \"127.0.0.1:%d\"\n"
             "admin:\n  listen: \"127.0.0.1:%d\"\n  tokens_file: %s\n  audit_log: %s\n"
             "routes:\n  - match: /*\n    respond: {status: 204}\n",
             free_port(), f->port, f->tokens, f->audit);
    char err[2048];
    assert_int_equal(pt_config_load_buf("t.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof(err)),
                     0);
    assert_int_equal(pt_admin_state_new(f->cfg, &f->st, err, sizeof(err)), 0);
    f->a = pt_admin_new(f->st, err, sizeof(err));
    assert_non_null(f->a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pt_admin_destroy(f->a);
    pt_admin_state_unref(f->st);
    pt_config_free(f->cfg);
    unlink(f->tokens);
    unlink(f->audit);
    rmdir(f->dir);
    free(f);
    return 0;
}

static char *call(struct fixture *f, const char *method, const char *path, const char *token,
                  const char *body)
{
    char req[4096], auth[128] = "";
    if (token)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Trace: t1\r\n%s"
             "Content-Length: %zu\r\n\r\n%s",
             method, path, auth, body ? strlen(body) : 0, body ? body : "");
    return exchange(f->port, req);
}

static void expect(char *out, const char *status, const char *has)
{
    if (strncmp(out, status, strlen(status)) != 0 || (has && !strstr(out, has)))
        fail_msg("want %s with \"%s\", got:\n%s", status, has ? has : "", out);
    free(out);
}

static void test_routes_params_scopes_and_answers(void **state)
{
    struct fixture *f = *state;
    int calls = 0;
    assert_int_equal(
        pt_admin_route(f->a, "GET", "/api/projects/:projectId/rules/:id", 0, get_rule, NULL), 0);
    assert_int_equal(
        pt_admin_route(f->a, "POST", "/api/projects/:projectId/rules", 0, post_rule, &calls), 0);
    assert_int_equal(pt_admin_route(f->a, "GET", "no-slash", 0, get_rule, NULL), -1);
    assert_int_equal(pt_admin_route(f->a, "GET", "/a/:", 0, get_rule, NULL), -1);
    assert_int_equal(pt_admin_start(f->a), 0);

    expect(call(f, "GET", "/api/projects/p1/rules/r9?x=1", f->reader, NULL), "HTTP/1.1 200 ",
           "{\"project\":\"p1\",\"rule\":\"r9\",\"token\":\"r\",\"trace\":\"t1\"}");
    expect(call(f, "HEAD", "/api/projects/p1/rules/r9", f->reader, NULL), "HTTP/1.1 200 ",
           "Content-Length: ");
    /* Empty segment: no match. Extra segment: no match. */
    expect(call(f, "GET", "/api/projects//rules/r9", f->reader, NULL), "HTTP/1.1 404 ", NULL);
    expect(call(f, "GET", "/api/projects/p/rules/r/x", f->reader, NULL), "HTTP/1.1 404 ", NULL);
    /* Method not registered on a matching path. */
    expect(call(f, "DELETE", "/api/projects/p1/rules/r9", f->writer, NULL), "HTTP/1.1 405 ",
           "Allow: GET, HEAD");
    /* Scopes: the read token may not POST; the handler is not called. */
    expect(call(f, "POST", "/api/projects/p1/rules", f->reader, "{\"pathPattern\":\"/a/*\"}"),
           "HTTP/1.1 403 ", "insufficient_scope");
    assert_int_equal(calls, 0);
    expect(call(f, "POST", "/api/projects/p1/rules", NULL, "{}"), "HTTP/1.1 401 ",
           "WWW-Authenticate: Bearer");
    /* Body handling: invalid JSON is 400 from pt_admin_body_json; field errors keep the shape. */
    expect(call(f, "POST", "/api/projects/p1/rules", f->writer, "{nope"), "HTTP/1.1 400 ",
           "{\"errors\":[{\"field\":null,\"message\":\"invalid JSON at line 1");
    expect(call(f, "POST", "/api/projects/p1/rules", f->writer, "{}"), "HTTP/1.1 400 ",
           "{\"errors\":[{\"field\":\"pathPattern\",\"message\":\"required\"}]}");
    expect(call(f, "POST", "/api/projects/p1/rules", f->writer,
                "{\"pathPattern\":\"/api/*\",\"timeout\":5000}"),
           "HTTP/1.1 201 ", "Location: /api/rules/1");
    assert_int_equal(calls, 2);
    /* The audit line of the change. */
    FILE *af = fopen(f->audit, "r");
    assert_non_null(af);
    char line[1024] = "";
    assert_non_null(fgets(line, sizeof(line), af));
    fclose(af);
    assert_non_null(strstr(line,
                           "\"token\":\"w\",\"method\":\"POST\",\"path\":\"/api/projects/p1/"
                           "rules\",\"change\":{\"pathPattern\":\"/api/*\",\"timeout\":5000}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routes_params_scopes_and_answers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
