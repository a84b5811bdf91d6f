/*
 * store.h - the rules store: projects, aliases and proxy rules in SQLite (issue #11 §2-§4).
 *
 * One struct pt_store is one database connection, used by one thread at a time (the admin
 * thread); other processes or connections may share the file (WAL, busy timeout). Every call
 * below that changes something is one transaction: it commits whole or changes nothing.
 *
 * Results: 0 (PT_STORE_OK) or a negative enum pt_store_rc. After a failure,
 * pt_store_error() says why in one line and pt_store_error_field() names the field of the
 * model at fault (for a 400's {"field": ...}), or "" when no field is. Neither ever contains
 * a secret value or the key.
 *
 * Strings in the structs are malloc'ed and owned by the struct; the _clear functions free them
 * (and wipe header values). Ids are UUIDv4 strings ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx");
 * times are RFC 3339 UTC with milliseconds ("2026-12-05T19:10:00.123Z"). An update's updated_at
 * is always later than the one it replaces, even within one millisecond, so the expected
 * updatedAt of a lost concurrent update never matches.
 */
#ifndef PT_ADMIN_STORE_H
#define PT_ADMIN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/secrets.h"

#define PT_STORE_SCHEMA_VERSION 1 /* the newest schema this binary knows */
#define PT_STORE_ID_LEN 36
#define PT_STORE_TIME_LEN 24
#define PT_STORE_TIMEOUT_DEFAULT_MS 30000u
#define PT_STORE_TIMEOUT_MAX_MS 60000u

enum pt_store_rc {
    PT_STORE_OK = 0,
    PT_STORE_ERR = -1,       /* database or system failure (a 500) */
    PT_STORE_NOT_FOUND = -2, /* the object (or its owner) does not exist (404) */
    PT_STORE_CONFLICT = -3,  /* updated_at did not match: a lost concurrent update (409) */
    PT_STORE_INVALID = -4,   /* a field is invalid; pt_store_error_field names it (400) */
    PT_STORE_DUPLICATE = -5, /* a hostname or name is taken (409 or 400, the API's choice) */
    PT_STORE_BAD_KEY = -6,   /* no key, or a secret does not open under it: names the rule */
};

struct pt_store;

struct pt_store_project {
    char id[PT_STORE_ID_LEN + 1];
    char *name;
    char **hostnames; /* n_hostnames lowercase names, unique across projects and aliases */
    size_t n_hostnames;
    char created_at[PT_STORE_TIME_LEN + 1];
    char updated_at[PT_STORE_TIME_LEN + 1];
};

struct pt_store_alias {
    char id[PT_STORE_ID_LEN + 1];
    char project_id[PT_STORE_ID_LEN + 1];
    char *name; /* unique within its project */
    char **hostnames;
    size_t n_hostnames;
    char created_at[PT_STORE_TIME_LEN + 1];
    char updated_at[PT_STORE_TIME_LEN + 1];
};

struct pt_store_header {
    char *name;  /* field name as given; unique (case-insensitive) within a rule */
    char *value; /* plain value, or PT_SECRET_MASK when read masked; wiped on clear */
};

struct pt_store_rule {
    char id[PT_STORE_ID_LEN + 1];
    char project_id[PT_STORE_ID_LEN + 1];
    char alias_id[PT_STORE_ID_LEN + 1]; /* "" for a project rule */
    char *path_pattern; /* a prefix ("/api/" then a star), a suffix ("*.json") or exact */
    char *target_url;
    char *description; /* may be "" */
    bool strip_prefix;
    bool preserve_host;
    bool is_enabled;
    int order;           /* 0..n-1 among its owner's rules (the project's, or the alias's) */
    uint32_t timeout_ms; /* 1..PT_STORE_TIMEOUT_MAX_MS; 0 on create means the default */
    struct pt_store_header *add; /* headerConfig.add, n_add entries */
    size_t n_add;
    char **remove; /* headerConfig.remove, n_remove names */
    size_t n_remove;
    char created_at[PT_STORE_TIME_LEN + 1];
    char updated_at[PT_STORE_TIME_LEN + 1];
};

/* How rules are read: with header values opened (for the proxy) or masked (for the API). */
enum pt_store_read { PT_STORE_PLAIN = 0, PT_STORE_MASKED = 1 };

/* Opens (creating when missing, mode 0600) the database at path and migrates its schema to
   PT_STORE_SCHEMA_VERSION, each step in its own transaction. key may be NULL (rules with header
   secrets then fail with PT_STORE_BAD_KEY); the store keeps a copy and wipes it on close.
   Refuses a database whose schema is newer than this binary knows. Returns 0 with *out, or
   PT_STORE_ERR with a message in err. May block (file I/O, busy timeout). */
int pt_store_open(const char *path, const struct pt_secret_key *key, struct pt_store **out,
                  char *err, size_t errlen);
/* Closes the connection and wipes the key copy. NULL is fine. */
void pt_store_close(struct pt_store *s);
/* The last failure's message and field (see above); valid until the next call. */
const char *pt_store_error(const struct pt_store *s);
const char *pt_store_error_field(const struct pt_store *s);
/* The schema version of the open database. */
int pt_store_schema_version(struct pt_store *s);

/* Checks that the store's key opens every secret (and the key check value the store keeps):
   the start-time check. PT_STORE_BAD_KEY names the first rule whose value does not open. */
int pt_store_verify_key(struct pt_store *s);
/* Re-seals every header secret from old_key to new_key in one transaction; the store uses
   new_key afterwards. Any value that does not open under old_key rolls everything back
   (PT_STORE_BAD_KEY, naming the rule). */
int pt_store_rotate_key(struct pt_store *s, const struct pt_secret_key *old_key,
                        const struct pt_secret_key *new_key);
/* PRAGMA integrity_check and foreign_key_check, then the model's invariants: each owner's rule
   orders are 0..n-1, every rule's project and alias exist and agree. 0 or PT_STORE_ERR. */
int pt_store_check(struct pt_store *s);

/* Projects. create fills p->id, created_at and updated_at (ignoring what is there); update
   replaces name and hostnames of p->id when its updated_at is expected_updated_at (NULL: no
   check) and refreshes p->updated_at; delete removes the project with its aliases and rules. */
int pt_store_project_create(struct pt_store *s, struct pt_store_project *p);
int pt_store_project_get(struct pt_store *s, const char *id, struct pt_store_project *out);
int pt_store_project_list(struct pt_store *s, struct pt_store_project **out, size_t *n);
int pt_store_project_update(struct pt_store *s, struct pt_store_project *p,
                            const char *expected_updated_at);
int pt_store_project_delete(struct pt_store *s, const char *id);
void pt_store_project_clear(struct pt_store_project *p);
void pt_store_projects_free(struct pt_store_project *v, size_t n);

/* Aliases, the same way; a->project_id must name an existing project (it cannot change). */
int pt_store_alias_create(struct pt_store *s, struct pt_store_alias *a);
int pt_store_alias_get(struct pt_store *s, const char *id, struct pt_store_alias *out);
int pt_store_alias_list(struct pt_store *s, const char *project_id, struct pt_store_alias **out,
                        size_t *n);
int pt_store_alias_update(struct pt_store *s, struct pt_store_alias *a,
                          const char *expected_updated_at);
int pt_store_alias_delete(struct pt_store *s, const char *id);
void pt_store_alias_clear(struct pt_store_alias *a);
void pt_store_aliases_free(struct pt_store_alias *v, size_t n);

/* Rules. create takes project_id and alias_id ("" for a project rule; an alias of that
   project otherwise), fills id and times, and places the rule at r->order among its owner's
   rules, shifting the ones at and after it (order < 0 or past the end: appended); r->order is
   set to where it went. Header values are sealed with the store's key.
   update replaces every field but the id, owner and created_at; a header value equal to
   PT_SECRET_MASK keeps the stored secret of that name (so a masked read can be written back);
   an order change moves the rule like a create. get and list read values as `how` says. */
int pt_store_rule_create(struct pt_store *s, struct pt_store_rule *r);
int pt_store_rule_get(struct pt_store *s, const char *id, enum pt_store_read how,
                      struct pt_store_rule *out);
/* The rules of a project (alias_id NULL or "": its own rules) or of an alias, by order. */
int pt_store_rule_list(struct pt_store *s, const char *project_id, const char *alias_id,
                       enum pt_store_read how, struct pt_store_rule **out, size_t *n);
int pt_store_rule_update(struct pt_store *s, struct pt_store_rule *r,
                         const char *expected_updated_at);
int pt_store_rule_delete(struct pt_store *s, const char *id);
/* Gives ids[i] the order i, atomically. ids must be exactly the owner's rules (each once):
   otherwise PT_STORE_INVALID (field "ids") or PT_STORE_NOT_FOUND (no such owner), and nothing
   changes. Touches updated_at only of the rules whose order changed. */
int pt_store_rule_reorder(struct pt_store *s, const char *project_id, const char *alias_id,
                          const char *const *ids, size_t n_ids);
void pt_store_rule_clear(struct pt_store_rule *r);
void pt_store_rules_free(struct pt_store_rule *v, size_t n);

#endif
