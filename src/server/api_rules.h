/*
 * api_rules.h - the rules API's projects, aliases and rules as sites of a configuration.
 */
#ifndef PT_SERVER_API_RULES_H
#define PT_SERVER_API_RULES_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/*
 * When cfg->admin.store is set, reads the store (header values opened with admin.key_file)
 * and appends a site per project and per alias to cfg (pt_config_add_api_sites), in the
 * evaluation order of docs/config.md ("How rules become routes"). A hostname that one of the
 * file's sites already has stays the file's (logged as a warning); a rule with an unusable
 * target is skipped (logged). Call it between pt_config_load() and pt_dns_expand(). Returns
 * PT_OK (also when no store is configured), or PT_ERR with the reason in err (the store or
 * the key file cannot be opened, a secret does not open, out of memory). Main thread; opens
 * and closes its own connection to the store.
 */
int pt_api_rules_add(struct pt_config *cfg, char *err, size_t errlen);

/*
 * Live apply. The rules store changed (a committed API change): the main thread rebuilds and
 * swaps the snapshot as for SIGHUP. pt_rules_changed() may be called from any thread, any
 * number of times: it marks a change pending and, only when none was, sends the process
 * PT_SIG_RULES, which the main thread's sigtimedwait takes (every thread blocks it). The main
 * thread calls pt_rules_change_take() before it rebuilds, so a change committed during a
 * rebuild sends one more signal and gets one more rebuild: a burst costs at most one rebuild
 * in progress plus one after it, and every change is live within two rebuilds of its commit.
 * The signal from outside (kill -RTMIN) rebuilds as well, which the tests use.
 */
#define PT_SIG_RULES (SIGRTMIN)
void pt_rules_changed(void);
/* The same, as a callback (arg unused) for the admin layer's change hook. */
void pt_rules_changed_cb(void *arg);
/* Main thread: clears the pending mark; returns whether a change was pending. */
bool pt_rules_change_take(void);

#endif
