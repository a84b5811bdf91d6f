/*
 * dashboard.h - the operators' dashboard on the admin listener (issue #11 section 6):
 * GET / and /dashboard (the page), /dashboard.js and /dashboard.css, public since they hold no
 * data, and GET /api/changes?limit=N (the last audit lines, newest first; needs a token).
 * docs/config.md ("Admin API") describes the page for users.
 */
#ifndef PT_ADMIN_DASHBOARD_H
#define PT_ADMIN_DASHBOARD_H

#include "admin/admin.h"

/* Registers the dashboard's routes on a (before pt_admin_start; main thread). Returns 0, or -1
   when out of memory. */
int pt_dashboard_attach(struct pt_admin *a);

#endif
