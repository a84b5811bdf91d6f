/*
 * pidfile.c - writing, reading and removing the pid file (see pidfile.h).
 *
 * The file holds one decimal process id and a newline, like every other daemon's, so that
 * `kill -HUP $(cat FILE)` works too. It is written through a temporary file and rename(2),
 * which is atomic within a directory: a reader sees the old file or the new one, never a partial
 * number. A lock (flock on an open descriptor) was rejected: it needs the file kept open for
 * the whole run and says nothing more than "is the process alive", which kill(pid, 0) answers.
 *
 * Threading: main thread only.
 */
#include "server/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pt_pidfile_read(const char *path, pid_t *pid, char *err, size_t errlen)
{
    char buf[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read pid file \"%s\": %s", path, strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "cannot read pid file \"%s\": %s", path, strerror(e));
        return -1;
    }
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    long v = strtol(buf, &end, 10);
    while (end && (*end == '\n' || *end == ' ' || *end == '\r'))
        end++;
    if (errno || end == buf || !end || *end != '\0' || v <= 1 || v > (1L << 22)) {
        snprintf(err, errlen, "pid file \"%s\" does not hold a process id", path);
        return -1;
    }
    *pid = (pid_t)v;
    return 0;
}

bool pt_pidfile_is_running(pid_t pid)
{
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return false;
    /* The third field of /proc/PID/stat is the state; Z (zombie) and X (dead) have exited. The
       command name before it is in parentheses and may hold spaces, so look after the last ')'. */
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno != ENOENT;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

int pt_pidfile_write(const char *path, char *err, size_t errlen)
{
    pid_t old;
    char e[256];
    if (pt_pidfile_read(path, &old, e, sizeof(e)) == 0 && old != getpid() &&
        pt_pidfile_is_running(old)) {
        snprintf(err, errlen,
                 "pid file \"%s\" names process %d, which is running: is another Portico "
                 "using this file?",
                 path, (int)old);
        return -1;
    }
    char tmp[4096];
    int k = snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
    if (k < 0 || (size_t)k >= sizeof(tmp)) {
        snprintf(err, errlen, "pid file path \"%s\" is too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write pid file \"%s\": %s", tmp, strerror(errno));
        return -1;
    }
    char line[32];
    int len = snprintf(line, sizeof(line), "%d\n", (int)getpid());
    ssize_t w = write(fd, line, (size_t)len);
    int we = errno;
    if (close(fd) < 0 && w == len) {
        w = -1;
        we = errno;
    }
    if (w != len) {
        snprintf(err, errlen, "cannot write pid file \"%s\": %s", tmp,
                 w < 0 ? strerror(we) : "short write");
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "cannot write pid file \"%s\": %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void pt_pidfile_remove(const char *path)
{
    pid_t pid;
    char e[256];
    if (pt_pidfile_read(path, &pid, e, sizeof(e)) == 0 && pid == getpid())
        unlink(path);
}
