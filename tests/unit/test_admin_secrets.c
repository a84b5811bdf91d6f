/* test_admin_secrets.c - the key file and AES-256-GCM sealing of header values
   (admin/secrets.c), and key rotation in the store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "admin/secrets.h"
#include "admin/store.h"

#define SECRET "Bearer s3cr3t-t0ken-do-not-leak"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/pt_secrets_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void make_key(const char *name, struct pt_secret_key *key)
{
    char p[128], err[256];
    path_of(p, sizeof(p), name);
    assert_int_equal(pt_secret_keygen(p, err, sizeof(err)), 0);
    assert_int_equal(pt_secret_key_load(p, key, err, sizeof(err)), 0);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct pt_secret_key k;
    make_key("rt.key", &k);
    char *sealed = NULL, *plain = NULL;
    size_t len = 0;
    assert_int_equal(pt_secret_seal(&k, "rule-1", "Authorization", SECRET, strlen(SECRET), &sealed),
                     0);
    assert_true(strncmp(sealed, PT_SECRET_PREFIX, 3) == 0);
    assert_null(strstr(sealed, "s3cr3t"));
    /* The header name is case-insensitive in the AAD. */
    assert_int_equal(pt_secret_open(&k, "rule-1", "authorization", sealed, &plain, &len), 0);
    assert_int_equal(len, strlen(SECRET));
    assert_string_equal(plain, SECRET);
    pt_secret_free(plain);
    /* A fresh nonce each time: the same value seals differently. */
    char *again = NULL;
    assert_int_equal(pt_secret_seal(&k, "rule-1", "Authorization", SECRET, strlen(SECRET), &again),
                     0);
    assert_string_not_equal(sealed, again);
    free(again);
    /* The empty value too. */
    assert_int_equal(pt_secret_seal(&k, "r", "X-Empty", "", 0, &again), 0);
    assert_int_equal(pt_secret_open(&k, "r", "X-Empty", again, &plain, &len), 0);
    assert_int_equal(len, 0);
    pt_secret_free(plain);
    free(again);
    free(sealed);
    pt_secret_key_wipe(&k);
}

static void test_aad_binds_rule_and_header(void **state)
{
    (void)state;
    struct pt_secret_key k;
    make_key("aad.key", &k);
    char *sealed = NULL, *plain = NULL;
    size_t len = 0;
    assert_int_equal(pt_secret_seal(&k, "rule-1", "X-Api-Key", SECRET, strlen(SECRET), &sealed), 0);
    assert_int_equal(pt_secret_open(&k, "rule-2", "X-Api-Key", sealed, &plain, &len),
                     PT_SECRET_BAD_KEY);
    assert_null(plain);
    assert_int_equal(pt_secret_open(&k, "rule-1", "X-Other", sealed, &plain, &len),
                     PT_SECRET_BAD_KEY);
    assert_null(plain);
    /* A flipped byte of the ciphertext fails the tag. */
    char *bad = strdup(sealed);
    size_t at = strlen(bad) / 2;
    bad[at] = bad[at] == 'A' ? 'B' : 'A';
    assert_int_equal(pt_secret_open(&k, "rule-1", "X-Api-Key", bad, &plain, &len),
                     PT_SECRET_BAD_KEY);
    free(bad);
    /* Not the format at all. */
    assert_int_equal(pt_secret_open(&k, "rule-1", "X-Api-Key", "plain text", &plain, &len),
                     PT_SECRET_BAD_FORMAT);
    assert_int_equal(pt_secret_open(&k, "rule-1", "X-Api-Key", "v1:AAAA", &plain, &len),
                     PT_SECRET_BAD_FORMAT);
    assert_int_equal(pt_secret_open(&k, "rule-1", "X-Api-Key", "v1:!!!!", &plain, &len),
                     PT_SECRET_BAD_FORMAT);
    free(sealed);
    pt_secret_key_wipe(&k);
}

static void test_wrong_key_fails(void **state)
{
    (void)state;
    struct pt_secret_key a, b;
    make_key("a.key", &a);
    make_key("b.key", &b);
    assert_memory_not_equal(a.bytes, b.bytes, PT_SECRET_KEY_BYTES);
    char *sealed = NULL, *plain = NULL;
    size_t len = 0;
    assert_int_equal(pt_secret_seal(&a, "r", "X-K", SECRET, strlen(SECRET), &sealed), 0);
    assert_int_equal(pt_secret_open(&b, "r", "X-K", sealed, &plain, &len), PT_SECRET_BAD_KEY);
    assert_null(plain);
    free(sealed);
    pt_secret_key_wipe(&a);
    pt_secret_key_wipe(&b);
    for (size_t i = 0; i < PT_SECRET_KEY_BYTES; i++)
        assert_int_equal(a.bytes[i], 0);
}

static void test_key_file_checks(void **state)
{
    (void)state;
    char p[128], err[256];
    struct pt_secret_key k;
    path_of(p, sizeof(p), "checks.key");
    assert_int_equal(pt_secret_keygen(p, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, PT_SECRET_KEY_BYTES);
    /* Never overwrites. */
    assert_int_not_equal(pt_secret_keygen(p, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "never overwrites"));
    /* Group- or world-readable: refused, with the path and the mode in the message. */
    assert_int_equal(chmod(p, 0640), 0);
    assert_int_not_equal(pt_secret_key_load(p, &k, err, sizeof(err)), 0);
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, "0640"));
    assert_int_equal(chmod(p, 0400), 0); /* stricter is fine */
    assert_int_equal(pt_secret_key_load(p, &k, err, sizeof(err)), 0);
    /* Wrong sizes. */
    char q[128];
    path_of(q, sizeof(q), "short.key");
    FILE *f = fopen(q, "w");
    assert_non_null(f);
    fputs("0123456789", f);
    fclose(f);
    assert_int_equal(chmod(q, 0600), 0);
    assert_int_not_equal(pt_secret_key_load(q, &k, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "not 32"));
    path_of(q, sizeof(q), "long.key");
    f = fopen(q, "w");
    assert_non_null(f);
    for (int i = 0; i < 33; i++)
        fputc('k', f);
    fclose(f);
    assert_int_equal(chmod(q, 0600), 0);
    assert_int_not_equal(pt_secret_key_load(q, &k, err, sizeof(err)), 0);
    /* Missing, and a symlink. */
    path_of(q, sizeof(q), "missing.key");
    assert_int_not_equal(pt_secret_key_load(q, &k, err, sizeof(err)), 0);
    path_of(q, sizeof(q), "link.key");
    assert_int_equal(symlink(p, q), 0);
    assert_int_not_equal(pt_secret_key_load(q, &k, err, sizeof(err)), 0);
    /* A directory. */
    assert_int_not_equal(pt_secret_key_load(dir, &k, err, sizeof(err)), 0);
    pt_secret_key_wipe(&k);
}

static void test_mask_never_shows_the_value(void **state)
{
    (void)state;
    assert_string_equal(pt_secret_mask(SECRET), PT_SECRET_MASK);
    assert_string_equal(pt_secret_mask(""), PT_SECRET_MASK);
    assert_null(strstr(pt_secret_mask(SECRET), "B"));
}

/* A project with one rule whose headerConfig.add holds SECRET; returns the rule id. */
static void store_with_secret(struct pt_store *s, char *rule_id)
{
    struct pt_store_project p = {.name = (char *)"p"};
    assert_int_equal(pt_store_project_create(s, &p), 0);
    struct pt_store_header h[2] = {{(char *)"Authorization", (char *)SECRET},
                                   {(char *)"X-Two", (char *)"second-value"}};
    struct pt_store_rule r = {.path_pattern = (char *)"/api/*",
                              .target_url = (char *)"https://api.example.com",
                              .add = h,
                              .n_add = 2,
                              .order = -1};
    snprintf(r.project_id, sizeof(r.project_id), "%s", p.id);
    assert_int_equal(pt_store_rule_create(s, &r), 0);
    snprintf(rule_id, PT_STORE_ID_LEN + 1, "%s", r.id);
}

static void test_store_never_writes_the_plain_secret(void **state)
{
    (void)state;
    struct pt_secret_key k;
    make_key("plain.key", &k);
    char db[128], err[256], id[PT_STORE_ID_LEN + 1];
    path_of(db, sizeof(db), "plain.db");
    struct pt_store *s;
    assert_int_equal(pt_store_open(db, &k, &s, err, sizeof(err)), 0);
    store_with_secret(s, id);
    /* Both files, while the store is open (the WAL holds the pages) and after. */
    for (int round = 0; round < 2; round++) {
        const char *suffix[] = {"", "-wal"};
        for (int i = 0; i < 2; i++) {
            char f[160];
            snprintf(f, sizeof(f), "%s%s", db, suffix[i]);
            FILE *fp = fopen(f, "rb");
            if (!fp) {
                assert_int_equal(round, 1); /* the WAL may be gone after close */
                continue;
            }
            size_t cap = 1 << 20, n = 0;
            char *buf = malloc(cap);
            n = fread(buf, 1, cap, fp);
            fclose(fp);
            assert_true(n > 0 || i == 1);
            assert_null(memmem(buf, n, "s3cr3t", 6));
            assert_null(memmem(buf, n, "second-value", 12));
            assert_null(memmem(buf, n, k.bytes, PT_SECRET_KEY_BYTES));
            free(buf);
        }
        if (round == 0)
            pt_store_close(s);
    }
    assert_int_equal(pt_store_open(db, &k, &s, err, sizeof(err)), 0);
    struct pt_store_rule r;
    assert_int_equal(pt_store_rule_get(s, id, PT_STORE_PLAIN, &r), 0);
    assert_string_equal(r.add[0].value, SECRET);
    pt_store_rule_clear(&r);
    assert_int_equal(pt_store_rule_get(s, id, PT_STORE_MASKED, &r), 0);
    assert_string_equal(r.add[0].value, PT_SECRET_MASK);
    assert_string_equal(r.add[1].value, PT_SECRET_MASK);
    /* Writing the masked read back keeps the stored values. */
    free(r.description);
    r.description = strdup("edited");
    assert_int_equal(pt_store_rule_update(s, &r, r.updated_at), 0);
    pt_store_rule_clear(&r);
    assert_int_equal(pt_store_rule_get(s, id, PT_STORE_PLAIN, &r), 0);
    assert_string_equal(r.add[0].value, SECRET);
    assert_string_equal(r.add[1].value, "second-value");
    assert_string_equal(r.description, "edited");
    pt_store_rule_clear(&r);
    pt_store_close(s);
    pt_secret_key_wipe(&k);
}

static void test_store_wrong_key_names_the_rule(void **state)
{
    (void)state;
    struct pt_secret_key k, other;
    make_key("wk1.key", &k);
    make_key("wk2.key", &other);
    char db[128], err[256], id[PT_STORE_ID_LEN + 1];
    path_of(db, sizeof(db), "wk.db");
    struct pt_store *s;
    assert_int_equal(pt_store_open(db, &k, &s, err, sizeof(err)), 0);
    store_with_secret(s, id);
    assert_int_equal(pt_store_verify_key(s), 0);
    pt_store_close(s);
    assert_int_equal(pt_store_open(db, &other, &s, err, sizeof(err)), 0);
    assert_int_equal(pt_store_verify_key(s), PT_STORE_BAD_KEY);
    assert_null(strstr(pt_store_error(s), "s3cr3t"));
    struct pt_store_rule r;
    assert_int_equal(pt_store_rule_get(s, id, PT_STORE_PLAIN, &r), PT_STORE_BAD_KEY);
    assert_non_null(strstr(pt_store_error(s), id));
    assert_null(strstr(pt_store_error(s), "s3cr3t"));
    /* Masked reads need no key. */
    assert_int_equal(pt_store_rule_get(s, id, PT_STORE_MASKED, &r), 0);
    pt_store_rule_clear(&r);
    pt_store_close(s);
    /* No key at all: a clear error as well. */
    assert_int_equal(pt_store_open(db, NULL, &s, err, sizeof(err)), 0);
    assert_int_equal(pt_store_verify_key(s), PT_STORE_BAD_KEY);
    assert_non_null(strstr(pt_store_error(s), id));
    pt_store_close(s);
    pt_secret_key_wipe(&k);
    pt_secret_key_wipe(&other);
}

static void test_store_copied_value_does_not_open(void **state)
{
    (void)state;
    struct pt_secret_key k;
    make_key("copy.key", &k);
    char db[128], err[256], id[PT_STORE_ID_LEN + 1];
    path_of(db, sizeof(db), "copy.db");
    struct pt_store *s;
    assert_int_equal(pt_store_open(db, &k, &s, err, sizeof(err)), 0);
    store_with_secret(s, id);
    /* A second rule with a header of the same name; then an attacker with write access to the
       file copies the first rule's sealed value onto it, and onto another header. */
    struct pt_store_rule r;
    assert_int_equal(pt_store_rule_get(s, id, PT_STORE_MASKED, &r), 0);
    char project[PT_STORE_ID_LEN + 1];
    snprintf(project, sizeof(project), "%s", r.project_id);
    pt_store_rule_clear(&r);
    struct pt_store_header h = {(char *)"Authorization", (char *)"other"};
    struct pt_store_rule r2 = {.path_pattern = (char *)"/b/*",
                               .target_url = (char *)"https://b.example.com",
                               .add = &h,
                               .n_add = 1,
                               .order = -1};
    snprintf(r2.project_id, sizeof(r2.project_id), "%s", project);
    assert_int_equal(pt_store_rule_create(s, &r2), 0);
    pt_store_close(s);

    char sql[512];
    snprintf(sql, sizeof(sql),
             "UPDATE rule_header_add SET value = (SELECT value FROM rule_header_add WHERE "
             "rule_id = '%s' AND name = 'Authorization') WHERE rule_id = '%s'",
             id, r2.id);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(raw), 1);
    sqlite3_close(raw);
    assert_int_equal(pt_store_open(db, &k, &s, err, sizeof(err)), 0);
    assert_int_equal(pt_store_rule_get(s, r2.id, PT_STORE_PLAIN, &r), PT_STORE_BAD_KEY);
    assert_non_null(strstr(pt_store_error(s), r2.id));
    assert_int_equal(pt_store_rule_get(s, id, PT_STORE_PLAIN, &r), 0);
    pt_store_rule_clear(&r);
    pt_store_close(s);
    pt_secret_key_wipe(&k);
}

static void test_store_rotation(void **state)
{
    (void)state;
    struct pt_secret_key k, k2, k3;
    make_key("rot1.key", &k);
    make_key("rot2.key", &k2);
    make_key("rot3.key", &k3);
    char db[128], err[256], id[PT_STORE_ID_LEN + 1];
    path_of(db, sizeof(db), "rot.db");
    struct pt_store *s;
    assert_int_equal(pt_store_open(db, &k, &s, err, sizeof(err)), 0);
    store_with_secret(s, id);
    /* The wrong old key changes nothing. */
    assert_int_equal(pt_store_rotate_key(s, &k3, &k2), PT_STORE_BAD_KEY);
    assert_int_equal(pt_store_verify_key(s), 0);
    assert_int_equal(pt_store_rotate_key(s, &k, &k2), 0);
    /* The store now uses the new key. */
    struct pt_store_rule r;
    assert_int_equal(pt_store_rule_get(s, id, PT_STORE_PLAIN, &r), 0);
    assert_string_equal(r.add[0].value, SECRET);
    pt_store_rule_clear(&r);
    pt_store_close(s);
    assert_int_equal(pt_store_open(db, &k, &s, err, sizeof(err)), 0);
    assert_int_equal(pt_store_verify_key(s), PT_STORE_BAD_KEY);
    pt_store_close(s);
    assert_int_equal(pt_store_open(db, &k2, &s, err, sizeof(err)), 0);
    assert_int_equal(pt_store_verify_key(s), 0);
    assert_int_equal(pt_store_rule_get(s, id, PT_STORE_PLAIN, &r), 0);
    assert_string_equal(r.add[1].value, "second-value");
    pt_store_rule_clear(&r);
    pt_store_close(s);
    pt_secret_key_wipe(&k);
    pt_secret_key_wipe(&k2);
    pt_secret_key_wipe(&k3);
}

static void test_key_check_catches_a_wrong_key_without_secrets(void **state)
{
    (void)state;
    struct pt_secret_key k, other;
    make_key("kc1.key", &k);
    make_key("kc2.key", &other);
    char db[128], err[256];
    path_of(db, sizeof(db), "kc.db");
    struct pt_store *s;
    assert_int_equal(pt_store_open(db, &k, &s, err, sizeof(err)), 0);
    pt_store_close(s);
    assert_int_equal(pt_store_open(db, &other, &s, err, sizeof(err)), 0);
    assert_int_equal(pt_store_verify_key(s), PT_STORE_BAD_KEY);
    assert_non_null(strstr(pt_store_error(s), "wrong key"));
    pt_store_close(s);
    pt_secret_key_wipe(&k);
    pt_secret_key_wipe(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_aad_binds_rule_and_header),
        cmocka_unit_test(test_wrong_key_fails),
        cmocka_unit_test(test_key_file_checks),
        cmocka_unit_test(test_mask_never_shows_the_value),
        cmocka_unit_test(test_store_never_writes_the_plain_secret),
        cmocka_unit_test(test_store_wrong_key_names_the_rule),
        cmocka_unit_test(test_store_copied_value_does_not_open),
        cmocka_unit_test(test_store_rotation),
        cmocka_unit_test(test_key_check_catches_a_wrong_key_without_secrets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
