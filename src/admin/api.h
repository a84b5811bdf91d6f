/*
 * api.h - the rules API on the admin listener (issue #11 section 2): projects, aliases and
 * their proxy rules over the rules store (admin/store.h), and GET /api/openapi.json.
 * docs/api.md describes the endpoints for users.
 */
#ifndef PT_ADMIN_API_H
#define PT_ADMIN_API_H

#include <stddef.h>

#include "admin/admin.h"
#include "config/config.h"

/*
 * Registers the API's endpoints on a (before pt_admin_start; main thread). With admin.store
 * set, opens the store with admin.key_file and checks that the key opens every stored secret
 * (pt_store_verify_key): a wrong or missing key is an error here, at start, never garbage
 * headers later; the store then belongs to a (closed by pt_admin_destroy). Without a store
 * only GET /api/openapi.json is added. Returns 0, or -1 with one line in err. May block (file
 * I/O).
 */
int pt_api_attach(struct pt_admin *a, const struct pt_config *cfg, char *err, size_t errlen);

#endif
