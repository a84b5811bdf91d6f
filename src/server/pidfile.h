/*
 * pidfile.h - the pid file that `portico reload` and `portico stop` find the running process by.
 *
 * `run` writes it once the listeners and workers are up (pid_file in the configuration) and
 * removes it at exit; the commands read it and signal the process it names.
 */
#ifndef PT_SERVER_PIDFILE_H
#define PT_SERVER_PIDFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes getpid() to path atomically: "PID\n" into a temporary file in the same directory,
   then rename() over path, so a reader never sees a half-written number. Refuses (-1, err
   filled) when path names another process that is running: two instances sharing one pid file
   would signal each other's processes. A stale file (its process gone) is replaced. Returns 0
   or -1. May block on the filesystem. */
int pt_pidfile_write(const char *path, char *err, size_t errlen);

/* Removes path if it still names this process (a newer instance's file is left alone). */
void pt_pidfile_remove(const char *path);

/* Reads the process id in path. Returns 0 with *pid set, or -1 with err filled (missing file,
   unreadable, not a process id). */
int pt_pidfile_read(const char *path, pid_t *pid, char *err, size_t errlen);

/* Whether process pid exists and is not a zombie (a process that exited but was not reaped yet
   counts as gone). */
bool pt_pidfile_is_running(pid_t pid);

#endif
