/*
 * notify.c - readiness and state notifications to systemd (see notify.h).
 *
 * libsystemd's sd_notify() rather than a hand-written datagram: it handles abstract socket
 * names, the credentials systemd checks and the variable's edge cases, and is in every systemd
 * distribution. Failures are ignored on purpose: a manager that does not listen must not stop
 * Portico, and systemd itself reports a service that never said READY=1.
 */
#include "server/notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

void pt_notify_ready(uint64_t generation, int is_reload_failed)
{
    if (is_reload_failed)
        sd_notifyf(0,
                   "READY=1\nSTATUS=Reload failed (see the log); serving configuration "
                   "generation %llu",
                   (unsigned long long)generation);
    else
        sd_notifyf(0, "READY=1\nSTATUS=Serving configuration generation %llu",
                   (unsigned long long)generation);
}

void pt_notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long usec =
        (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading the configuration", usec);
}

void pt_notify_stopping(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=Draining connections");
}
