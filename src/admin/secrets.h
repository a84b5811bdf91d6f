/*
 * secrets.h - header secrets at rest: the key file and AES-256-GCM sealing of one value.
 *
 * A value of a rule's headerConfig.add is stored as "v1:" + base64(nonce | ciphertext | tag):
 * a fresh random 96-bit nonce per value, the 128-bit GCM tag, and an AAD that binds the value to
 * its rule id and its header name (lowercased), so a value copied to another rule or another
 * header does not open. The key is 32 random bytes in a file of mode 0600 (or stricter) owned by
 * the user running Portico. Nothing here logs; callers never log a value or the key.
 */
#ifndef PT_ADMIN_SECRETS_H
#define PT_ADMIN_SECRETS_H

#include <stddef.h>

#define PT_SECRET_KEY_BYTES 32
#define PT_SECRET_PREFIX "v1:"
#define PT_SECRET_MASK "********" /* what the API shows in place of a value */

enum pt_secret_rc {
    PT_SECRET_OK = 0,
    PT_SECRET_ERR = -1,        /* system or library failure (out of memory, RNG) */
    PT_SECRET_BAD_FORMAT = -2, /* not a "v1:" value, bad base64, too short */
    PT_SECRET_BAD_KEY = -3,    /* tag mismatch: wrong key, or the value belongs elsewhere */
};

struct pt_secret_key {
    unsigned char bytes[PT_SECRET_KEY_BYTES]; /* wiped by pt_secret_key_wipe */
};

/* Reads the key file at path into *key. The file must be a regular file (not a symlink) owned
   by the effective user, with no group or other permission bits, and exactly 32 bytes long.
   Returns 0, or -1 with a message in err (it names the path, never the content). */
int pt_secret_key_load(const char *path, struct pt_secret_key *key, char *err, size_t errlen);

/* Writes a new key file at path: 32 bytes from the CSPRNG, mode 0600, created with O_EXCL so an
   existing file is never overwritten. Returns 0, or -1 with a message in err. */
int pt_secret_keygen(const char *path, char *err, size_t errlen);

/* Overwrites the key's bytes (OPENSSL_cleanse). */
void pt_secret_key_wipe(struct pt_secret_key *key);

/* Seals plain[0..plain_len) for header `header` of rule `rule_id`. On success *out is a
   malloc'ed NUL-terminated "v1:..." string the caller frees. Returns 0 or PT_SECRET_ERR. */
int pt_secret_seal(const struct pt_secret_key *key, const char *rule_id, const char *header,
                   const char *plain, size_t plain_len, char **out);

/* Opens a sealed value. On success *plain is a malloc'ed NUL-terminated string of *plain_len
   bytes; the caller wipes and frees it (pt_secret_free). Returns 0, PT_SECRET_BAD_FORMAT,
   PT_SECRET_BAD_KEY (wrong key, or a value of another rule or header) or PT_SECRET_ERR. */
int pt_secret_open(const struct pt_secret_key *key, const char *rule_id, const char *header,
                   const char *sealed, char **plain, size_t *plain_len);

/* Wipes and frees a plain value returned by pt_secret_open (NULL is fine). */
void pt_secret_free(char *plain);

/* The masked form of a value for API output: PT_SECRET_MASK whatever the value (no character
   and not even the length is shown). Never returns the value itself. */
const char *pt_secret_mask(const char *plain);

#endif
