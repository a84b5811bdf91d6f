/*
 * notify.h - telling the service manager (systemd, Type=notify) what the process is doing.
 *
 * Each call sends one datagram through sd_notify() to $NOTIFY_SOCKET; without that variable
 * (not started by systemd) each is a no-op. Main thread only.
 */
#ifndef PT_SERVER_NOTIFY_H
#define PT_SERVER_NOTIFY_H

#include <stdint.h>

/* READY=1 with a STATUS= line: listeners are open and workers serve configuration
   generation. Sent at start and after every reload, successful or not. */
void pt_notify_ready(uint64_t generation, int is_reload_failed);
/* RELOADING=1 with MONOTONIC_USEC= (the systemd 253 Type=notify-reload contract; older
   managers ignore the extra field) and a STATUS= line, before a reload is attempted. */
void pt_notify_reloading(void);
/* STOPPING=1 with a STATUS= line, when draining starts. */
void pt_notify_stopping(void);

#endif
