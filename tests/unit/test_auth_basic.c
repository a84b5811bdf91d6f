/*
 * test_auth_basic.c - Basic authentication: htpasswd lines (config/config_auth.c: accepted
 * schemes, refused plaintext/DES/MD5/{SHA}, comments and blanks, extra fields), the
 * Authorization decoder (scheme, strict base64 with padding, a ':' needed), and the check
 * (src/guard/auth_basic.c) with bcrypt and SHA-512 hashes made here by libcrypt: right and
 * wrong passwords, unknown users, and a cached success that stops matching when the hash
 * changes.
 */
#include <crypt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "guard/auth_basic.h"

static int parse(const char *text, struct pt_htpasswd_user *u, char *buf, const char **why)
{
    size_t n = strlen(text);
    memcpy(buf, text, n + 1);
    return pt_config_parse_htpasswd_line(buf, n, u, why);
}

static void test_htpasswd_lines(void **state)
{
    (void)state;
    char buf[512];
    struct pt_htpasswd_user u;
    const char *why = NULL;
    static const char bc[] = "bob:$2y$05$abcdefghijklmnopqrstuuS9Ps3b4Xl5VRq8w1sMUDYsGN7HUtT2\r\n";
    assert_int_equal(parse(bc, &u, buf, &why), 1);
    assert_string_equal(u.name, "bob");
    assert_string_equal(u.hash, "$2y$05$abcdefghijklmnopqrstuuS9Ps3b4Xl5VRq8w1sMUDYsGN7HUtT2");
    assert_int_equal(parse("  sue:$6$salt$abcdefghij:extra:fields\n", &u, buf, &why), 1);
    assert_string_equal(u.name, "sue");
    assert_string_equal(u.hash, "$6$salt$abcdefghij");
    assert_int_equal(parse("x:$y$j9T$abcdefgh$ijklmnop", &u, buf, &why), 1);
    assert_int_equal(parse("x:$5$rounds=5000$abcdefghij", &u, buf, &why), 1);
    assert_int_equal(parse("", &u, buf, &why), 0);
    assert_int_equal(parse("   \n", &u, buf, &why), 0);
    assert_int_equal(parse("# comment:$6$x", &u, buf, &why), 0);
    static const char *const bad[] = {"nocolon",
                                      ":$6$saltsalt$abcdefgh",
                                      "x:plaintextpassword",
                                      "x:abCDefGhIjKlM",
                                      "x:$apr1$salt$abcdefghijklmnopqrstuv",
                                      "x:{SHA}abcdefghijklmnopqrstuvwxyz=",
                                      "x:$1$saltsalt$abcdefghijklmnopqrstuv",
                                      "x:$6$",
                                      "x:$6$salt salt$abcdefghij",
                                      NULL};
    for (size_t i = 0; bad[i]; i++) {
        why = NULL;
        if (parse(bad[i], &u, buf, &why) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(why);
    }
    char nul[] = "x:$6$salt\0salt$abcdefghij";
    assert_int_equal(pt_config_parse_htpasswd_line(nul, sizeof(nul) - 1, &u, &why), -1);
}

static void test_decode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(pt_basic_decode("Basic Ym9iOnB3", 14, out, sizeof(out)), 6);
    assert_memory_equal(out, "bob:pw", 6);
    assert_int_equal(pt_basic_decode("basic   Ym9iOnB3  ", 18, out, sizeof(out)), 6);
    assert_int_equal(pt_basic_decode("Basic YTpi", 10, out, sizeof(out)), 3);     /* a:b */
    assert_int_equal(pt_basic_decode("Basic YTpiYw==", 14, out, sizeof(out)), 4); /* a:bc */
    assert_int_equal(pt_basic_decode("Basic YTpiY2Q=", 14, out, sizeof(out)), 5); /* a:bcd */
    assert_int_equal(pt_basic_decode("Bearer Ym9iOnB3", 15, out, sizeof(out)), -1);
    assert_int_equal(pt_basic_decode("Basic", 5, out, sizeof(out)), -1);
    assert_int_equal(pt_basic_decode("BasicYm9iOnB3", 13, out, sizeof(out)), -1);
    assert_int_equal(pt_basic_decode("Basic Ym9iOnB", 13, out, sizeof(out)), -2);  /* length */
    assert_int_equal(pt_basic_decode("Basic Ym9i", 10, out, sizeof(out)), -2);     /* no ':' */
    assert_int_equal(pt_basic_decode("Basic YTpiYx==", 14, out, sizeof(out)), -2); /* bits */
    assert_int_equal(pt_basic_decode("Basic Y=pi", 10, out, sizeof(out)), -2);
    assert_int_equal(pt_basic_decode("Basic Ym9i_nB3", 14, out, sizeof(out)), -2); /* url */
    assert_int_equal(pt_basic_decode("Basic ", 6, out, sizeof(out)), -2);
    assert_int_equal(pt_basic_decode("Basic Ym9iOnB3", 14, out, 3), -2); /* does not fit */
}

static char *hash_of(const char *pw, const char *prefix, unsigned long count)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    assert_non_null(crypt_gensalt_rn(prefix, count, NULL, 0, salt, sizeof(salt)));
    struct crypt_data cd;
    memset(&cd, 0, sizeof(cd));
    const char *h = crypt_rn(pw, salt, &cd, sizeof(cd));
    assert_non_null(h);
    return strdup(h);
}

static enum pt_basic_verdict check(const struct pt_basic_auth_cfg *b, const char *user,
                                   const char *pw, uint64_t now_ms)
{
    char cred[128], b64[256], hdr[300];
    int n = snprintf(cred, sizeof(cred), "%s:%s", user, pw);
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (int i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)cred[i] << 16 |
                     (i + 1 < n ? (uint32_t)(unsigned char)cred[i + 1] << 8 : 0) |
                     (i + 2 < n ? (unsigned char)cred[i + 2] : 0);
        b64[o++] = a[v >> 18 & 63];
        b64[o++] = a[v >> 12 & 63];
        b64[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        b64[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    b64[o] = '\0';
    int hl = snprintf(hdr, sizeof(hdr), "Basic %s", b64);
    const char *who = NULL;
    enum pt_basic_verdict v = pt_basic_check(b, hdr, (size_t)hl, now_ms, &who);
    if (v == PT_BASIC_OK)
        assert_string_equal(who, user);
    return v;
}

static void test_check(void **state)
{
    (void)state;
    struct pt_htpasswd_user users[2] = {{"bob", hash_of("bob-pw", "$2b$", 5)},
                                        {"sue", hash_of("sue-pw", "$6$", 5000)}};
    struct pt_basic_auth_cfg b = {.is_on = true, .users = users, .n_users = 2};
    assert_int_equal(check(&b, "bob", "bob-pw", 1000), PT_BASIC_OK);
    assert_int_equal(check(&b, "bob", "bob-pw", 1001), PT_BASIC_OK); /* cached */
    assert_int_equal(check(&b, "sue", "sue-pw", 1000), PT_BASIC_OK);
    assert_int_equal(check(&b, "bob", "sue-pw", 1000), PT_BASIC_REFUSED);
    assert_int_equal(check(&b, "bob", "", 1000), PT_BASIC_REFUSED);
    assert_int_equal(check(&b, "eve", "bob-pw", 1000), PT_BASIC_REFUSED);
    assert_int_equal(check(&b, "bo", "bob-pw", 1000), PT_BASIC_REFUSED);
    assert_int_equal(check(&b, "bobb", "bob-pw", 1000), PT_BASIC_REFUSED);
    /* after the TTL the hash is checked again: still right */
    assert_int_equal(check(&b, "bob", "bob-pw", 1000 + PT_BASIC_CACHE_TTL_MS + 1), PT_BASIC_OK);
    /* a new hash for bob (the file changed): the cached success does not carry over */
    char *old = (char *)users[0].hash;
    users[0].hash = hash_of("new-pw", "$2b$", 5);
    assert_int_equal(check(&b, "bob", "bob-pw", 2000), PT_BASIC_REFUSED);
    assert_int_equal(check(&b, "bob", "new-pw", 2000), PT_BASIC_OK);
    const char *who = NULL;
    assert_int_equal(pt_basic_check(&b, NULL, 0, 0, &who), PT_BASIC_MISSING);
    assert_int_equal(pt_basic_check(&b, "Basic !!!!", 10, 0, &who), PT_BASIC_MALFORMED);
    assert_int_equal(pt_basic_check(&b, "Basic AAAA", 10, 0, &who), PT_BASIC_MALFORMED);
    free(old);
    free((char *)users[0].hash);
    free((char *)users[1].hash);
}

/* The three steps the server uses (the hash on another thread): a miss is PENDING with the
   password copied into the job, the cache hit after it is OK at once, an unknown user is
   hashed too (a dummy) and refused, and the job's password is wiped. */
static void test_steps(void **state)
{
    (void)state;
    struct pt_htpasswd_user users[1] = {{"ann", hash_of("ann-pw", "$2b$", 5)}};
    struct pt_basic_auth_cfg b = {.is_on = true, .users = users, .n_users = 1};
    static const char ann[] = "Basic YW5uOmFubi1wdw=="; /* ann:ann-pw */
    static const char eve[] = "Basic ZXZlOmFubi1wdw=="; /* eve:ann-pw */
    struct pt_basic_job job;
    const char *who = NULL;
    assert_int_equal(pt_basic_begin(&b, ann, sizeof(ann) - 1, 5000, &job, &who), PT_BASIC_PENDING);
    assert_null(who);
    assert_string_equal(job.password, "ann-pw");
    assert_string_equal(job.hash, users[0].hash);
    pt_basic_hash(&job);
    assert_true(job.is_match);
    assert_int_equal(job.password[0], '\0');
    assert_int_equal(pt_basic_end(&job, 5000, &who), PT_BASIC_OK);
    assert_string_equal(who, "ann");
    who = NULL;
    assert_int_equal(pt_basic_begin(&b, ann, sizeof(ann) - 1, 5001, &job, &who), PT_BASIC_OK);
    assert_string_equal(who, "ann");
    assert_int_equal(pt_basic_begin(&b, eve, sizeof(eve) - 1, 5001, &job, &who), PT_BASIC_PENDING);
    assert_null(job.user);
    assert_string_equal(job.hash, users[0].hash); /* the dummy: a real user's */
    pt_basic_hash(&job);
    assert_int_equal(pt_basic_end(&job, 5001, &who), PT_BASIC_REFUSED);
    struct pt_basic_auth_cfg none = {.is_on = true};
    assert_int_equal(pt_basic_begin(&none, ann, sizeof(ann) - 1, 0, &job, &who), PT_BASIC_REFUSED);
    free((char *)users[0].hash);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_htpasswd_lines),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
