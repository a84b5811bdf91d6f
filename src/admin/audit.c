/*
 * audit.c - the audit log (see audit.h).
 *
 * A line is built whole with jansson (compact, keys in insertion order) and written with one
 * write(2) on an O_APPEND descriptor, so a line is never split by another writer or a
 * rotation. Reopening swaps the descriptor under the mutex; a write in flight holds it too.
 * Rejected: buffering lines (an audit line must be on disk when the API answers).
 *
 * The ring of recent lines holds a reference on each line's object (never changed after it is
 * written), under the same mutex; pt_audit_recent copies references out into a new array.
 */
#include "admin/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

struct pt_audit {
    pthread_mutex_t mu;
    int fd;                          /* -1: no audit log */
    char *path;                      /* owned; NULL with fd -1 */
    json_t *recent[PT_AUDIT_RECENT]; /* ring of the last lines' objects, owned references */
    size_t n_written;                /* lines ever written: the next slot is n_written % N */
};

static int open_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        snprintf(err, errlen, "cannot open audit log \"%s\": %s", path, strerror(errno));
    return fd;
}

struct pt_audit *pt_audit_open(const char *path, char *err, size_t errlen)
{
    struct pt_audit *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->fd = -1;
    if (path) {
        a->path = strdup(path);
        a->fd = a->path ? open_file(path, err, errlen) : -1;
        if (a->fd < 0) {
            if (!a->path)
                snprintf(err, errlen, "out of memory");
            pt_audit_close(a);
            return NULL;
        }
    }
    return a;
}

int pt_audit_set_path(struct pt_audit *a, const char *path, char *err, size_t errlen)
{
    pthread_mutex_lock(&a->mu);
    int rc = 0;
    bool same = (!path && !a->path) || (path && a->path && strcmp(path, a->path) == 0);
    if (same)
        goto out;
    int fd = -1;
    char *p = NULL;
    if (path) {
        p = strdup(path);
        fd = p ? open_file(path, err, errlen) : -1;
        if (fd < 0) {
            free(p);
            rc = -1;
            goto out;
        }
    }
    if (a->fd >= 0)
        close(a->fd);
    free(a->path);
    a->fd = fd;
    a->path = p;
out:
    pthread_mutex_unlock(&a->mu);
    return rc;
}

void pt_audit_reopen(struct pt_audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    if (a->path) {
        char err[512];
        int fd = open_file(a->path, err, sizeof(err));
        if (fd < 0) {
            pt_log_error("received SIGUSR1: %s; still writing to the file open before", err);
        } else {
            close(a->fd);
            a->fd = fd;
            pt_log_info("received SIGUSR1: reopened audit log \"%s\"", a->path);
        }
    }
    pthread_mutex_unlock(&a->mu);
}

int pt_audit_write(struct pt_audit *a, const char *token, const char *method, const char *path,
                   const json_t *change)
{
    if (!a)
        return 0;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char when[40];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    json_t *o = json_pack("{s:s, s:s?, s:s, s:s, s:O?}", "time", when, "token", token, "method",
                          method, "path", path, "change", change);
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!line) {
        json_decref(o);
        pt_log_error("audit log: out of memory writing a line for %s %s", method, path);
        return -1;
    }
    size_t n = strlen(line);
    char *full = realloc(line, n + 2);
    if (!full) {
        free(line);
        json_decref(o);
        pt_log_error("audit log: out of memory writing a line for %s %s", method, path);
        return -1;
    }
    full[n++] = '\n';
    full[n] = '\0';
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    json_t **slot = &a->recent[a->n_written++ % PT_AUDIT_RECENT];
    json_decref(*slot);
    *slot = o; /* the ring takes the reference */
    if (a->fd >= 0) {
        ssize_t w = write(a->fd, full, n);
        if (w != (ssize_t)n) {
            pt_log_error("audit log \"%s\": cannot write: %s", a->path,
                         w < 0 ? strerror(errno) : "short write");
            rc = -1;
        }
    }
    pthread_mutex_unlock(&a->mu);
    free(full);
    return rc;
}

json_t *pt_audit_recent(struct pt_audit *a, size_t limit)
{
    json_t *arr = json_array();
    if (!arr || !a)
        return arr;
    pthread_mutex_lock(&a->mu);
    size_t n = a->n_written < PT_AUDIT_RECENT ? a->n_written : PT_AUDIT_RECENT;
    if (limit < n)
        n = limit;
    for (size_t i = 0; i < n; i++)
        if (json_array_append(arr, a->recent[(a->n_written - 1 - i) % PT_AUDIT_RECENT]) < 0) {
            json_decref(arr);
            arr = NULL;
            break;
        }
    pthread_mutex_unlock(&a->mu);
    return arr;
}

void pt_audit_close(struct pt_audit *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < PT_AUDIT_RECENT; i++)
        json_decref(a->recent[i]);
    if (a->fd >= 0)
        close(a->fd);
    free(a->path);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
