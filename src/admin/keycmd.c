/*
 * keycmd.c - the key file commands: `portico keygen FILE` and
 * `portico rotate-key --store PATH --key OLD --new-key NEW`.
 *
 * They live beside the store rather than in main.c so that main.c only dispatches. rotate-key
 * takes explicit paths, or with -c FILE takes --store and --key from the configuration's
 * admin.store and admin.key_file when they are not given. It opens the store with the old key
 * (so the key check runs first), then
 * re-seals everything in one transaction; the running Portico must then be given the new key
 * file. Keys are wiped before returning on every path.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "admin/keycmd.h"
#include "admin/secrets.h"
#include "admin/store.h"
#include "config/config.h"

#define ERR_BYTES 1024

static int keygen(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: portico keygen FILE\n");
        return 2;
    }
    char err[ERR_BYTES];
    if (pt_secret_keygen(argv[1], err, sizeof(err)) != 0) {
        fprintf(stderr, "portico: %s\n", err);
        return 1;
    }
    printf("portico: wrote a new key to %s (mode 0600)\n", argv[1]);
    return 0;
}

#define ROTATE_USAGE                                                                               \
    "usage: portico rotate-key [-c FILE] --store PATH --key OLD --new-key NEW\n"                   \
    "       (with -c, --store and --key default to admin.store and admin.key_file)\n"

static int rotate_store(const char *store, const char *old_path, const char *new_path);

static int rotate(int argc, char **argv)
{
    const char *store = NULL, *old_path = NULL, *new_path = NULL, *cfg_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char **slot = strcmp(argv[i], "--store") == 0     ? &store
                            : strcmp(argv[i], "--key") == 0     ? &old_path
                            : strcmp(argv[i], "--new-key") == 0 ? &new_path
                            : strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0
                                ? &cfg_path
                                : NULL;
        if (!slot || i + 1 >= argc || *slot) {
            fprintf(stderr, ROTATE_USAGE);
            return 2;
        }
        *slot = argv[++i];
    }
    char err[ERR_BYTES];
    struct pt_config *cfg = NULL;
    if (cfg_path && (!store || !old_path)) {
        if (pt_config_load(cfg_path, &cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        if (!store)
            store = cfg->admin.store;
        if (!old_path)
            old_path = cfg->admin.key_file;
    }
    int rc = 2;
    if (!store || !old_path || !new_path) {
        if (cfg)
            fprintf(stderr, "portico: %s has no admin.store or admin.key_file\n", cfg_path);
        fprintf(stderr, ROTATE_USAGE);
    } else
        rc = rotate_store(store, old_path, new_path);
    pt_config_free(cfg);
    return rc;
}

static int rotate_store(const char *store, const char *old_path, const char *new_path)
{
    char err[ERR_BYTES];
    struct stat st;
    if (stat(store, &st) != 0) { /* opening would create an empty store */
        fprintf(stderr, "portico: store %s: %s\n", store, strerror(errno));
        return 1;
    }
    struct pt_secret_key old_key, new_key;
    struct pt_store *s = NULL;
    int rc = 1;
    if (pt_secret_key_load(old_path, &old_key, err, sizeof(err)) != 0) {
        fprintf(stderr, "portico: %s\n", err);
        return 1;
    }
    if (pt_secret_key_load(new_path, &new_key, err, sizeof(err)) != 0) {
        fprintf(stderr, "portico: %s\n", err);
        goto out;
    }
    if (memcmp(old_key.bytes, new_key.bytes, sizeof(old_key.bytes)) == 0) {
        fprintf(stderr, "portico: %s and %s hold the same key\n", old_path, new_path);
        goto out;
    }
    if (pt_store_open(store, &old_key, &s, err, sizeof(err)) != PT_STORE_OK) {
        fprintf(stderr, "portico: %s\n", err);
        goto out;
    }
    if (pt_store_verify_key(s) != PT_STORE_OK ||
        pt_store_rotate_key(s, &old_key, &new_key) != PT_STORE_OK) {
        fprintf(stderr, "portico: %s: %s\n", store, pt_store_error(s));
        goto out;
    }
    printf("portico: the secrets of %s are now encrypted with %s\n", store, new_path);
    rc = 0;
out:
    pt_store_close(s);
    pt_secret_key_wipe(&old_key);
    pt_secret_key_wipe(&new_key);
    return rc;
}

int pt_admin_key_command(int argc, char **argv)
{
    return strcmp(argv[0], "keygen") == 0 ? keygen(argc, argv) : rotate(argc, argv);
}
