/*
 * secrets.c - the key file and AES-256-GCM sealing of header values (OpenSSL EVP).
 *
 * Format: "v1:" + base64(nonce[12] | ciphertext[n] | tag[16]). The version prefix lets a later
 * format (another cipher, a key id) live beside this one. The AAD is
 * "portico/header/v1" NUL rule_id NUL lowercase(header): GCM authenticates it with the value, so
 * moving a sealed value to another rule or header fails the tag check exactly like a wrong key.
 * Nonces are random (RAND_bytes): 2^32 values under one key keep the collision chance far below
 * 2^-32 (NIST SP 800-38D §8.3); a rules store holds thousands, and rotation resets the count.
 *
 * Rejected: a KDF from a passphrase (a file of random bytes has full entropy and nothing to type
 * at start); deterministic nonces (they need a counter that survives crashes and copies of the
 * database). Nothing in this file logs; error texts name paths, never contents.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/secrets.h"

#define NONCE_BYTES 12
#define TAG_BYTES 16
#define AAD_LABEL "portico/header/v1"
#define MAX_PLAIN_BYTES (64u * 1024u) /* a header value; far above any real one */

int pt_secret_key_load(const char *path, struct pt_secret_key *key, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "key file %s is not a regular file", path);
        goto out;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "key file %s is owned by uid %u, not by the user running portico (%u)", path,
                 (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "key file %s has mode %04o: it must be readable by its owner only (chmod 600)",
                 path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size != PT_SECRET_KEY_BYTES) {
        snprintf(err, errlen,
                 "key file %s is %lld bytes long, not %d (make one with portico keygen)", path,
                 (long long)st.st_size, PT_SECRET_KEY_BYTES);
        goto out;
    }
    size_t got = 0;
    while (got < PT_SECRET_KEY_BYTES) {
        ssize_t n = read(fd, key->bytes + got, PT_SECRET_KEY_BYTES - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "key file %s: %s", path, n < 0 ? strerror(errno) : "short read");
            pt_secret_key_wipe(key);
            goto out;
        }
        got += (size_t)n;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

int pt_secret_keygen(const char *path, char *err, size_t errlen)
{
    struct pt_secret_key key;
    if (RAND_bytes(key.bytes, sizeof(key.bytes)) != 1) {
        snprintf(err, errlen, "cannot draw random bytes for the key");
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "key file %s: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (portico keygen never overwrites a key)" : "");
        pt_secret_key_wipe(&key);
        return -1;
    }
    int rc = -1;
    /* The umask may only have narrowed 0600; set it exactly anyway. */
    if (fchmod(fd, 0600) != 0)
        goto fail;
    size_t put = 0;
    while (put < sizeof(key.bytes)) {
        ssize_t n = write(fd, key.bytes + put, sizeof(key.bytes) - put);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        put += (size_t)n;
    }
    if (fsync(fd) != 0)
        goto fail;
    rc = 0;
fail:
    if (rc != 0) {
        snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
        unlink(path);
    }
    close(fd);
    pt_secret_key_wipe(&key);
    return rc;
}

void pt_secret_key_wipe(struct pt_secret_key *key)
{
    OPENSSL_cleanse(key->bytes, sizeof(key->bytes));
}

/* Builds the AAD into a malloc'ed buffer; *len its length. NULL when out of memory. */
static unsigned char *make_aad(const char *rule_id, const char *header, size_t *len)
{
    size_t lab = sizeof(AAD_LABEL), rl = strlen(rule_id), hl = strlen(header);
    unsigned char *a = malloc(lab + rl + 1 + hl);
    if (!a)
        return NULL;
    memcpy(a, AAD_LABEL, lab); /* with its NUL: the separator */
    memcpy(a + lab, rule_id, rl);
    a[lab + rl] = 0;
    for (size_t i = 0; i < hl; i++)
        a[lab + rl + 1 + i] = (unsigned char)tolower((unsigned char)header[i]);
    *len = lab + rl + 1 + hl;
    return a;
}

/* One GCM pass. enc: 1 seal, 0 open. For open, tag is read; for seal, written.
   Returns 0, PT_SECRET_BAD_KEY (open: tag mismatch) or PT_SECRET_ERR. */
static int gcm(int enc, const struct pt_secret_key *key, const unsigned char *nonce,
               const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t in_len,
               unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int rc = PT_SECRET_ERR, n = 0;
    if (!ctx)
        return PT_SECRET_ERR;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key->bytes, nonce, enc) != 1)
        goto out;
    if (EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        goto out;
    if (in_len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + (in_len > 0 ? n : 0), &n) != 1) {
        rc = enc ? PT_SECRET_ERR : PT_SECRET_BAD_KEY;
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag) != 1)
        goto out;
    rc = PT_SECRET_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int pt_secret_seal(const struct pt_secret_key *key, const char *rule_id, const char *header,
                   const char *plain, size_t plain_len, char **out)
{
    *out = NULL;
    if (plain_len > MAX_PLAIN_BYTES)
        return PT_SECRET_ERR;
    size_t raw_len = NONCE_BYTES + plain_len + TAG_BYTES, aad_len = 0;
    unsigned char *raw = malloc(raw_len);
    unsigned char *aad = make_aad(rule_id, header, &aad_len);
    size_t pre = strlen(PT_SECRET_PREFIX);
    char *s = malloc(pre + 4 * ((raw_len + 2) / 3) + 1);
    int rc = PT_SECRET_ERR;
    if (!raw || !aad || !s)
        goto out;
    if (RAND_bytes(raw, NONCE_BYTES) != 1)
        goto out;
    rc = gcm(1, key, raw, aad, aad_len, (const unsigned char *)plain, plain_len, raw + NONCE_BYTES,
             raw + NONCE_BYTES + plain_len);
    if (rc != PT_SECRET_OK)
        goto out;
    memcpy(s, PT_SECRET_PREFIX, pre);
    EVP_EncodeBlock((unsigned char *)s + pre, raw, (int)raw_len);
    *out = s;
    s = NULL;
out:
    free(s);
    free(aad);
    free(raw);
    return rc;
}

int pt_secret_open(const struct pt_secret_key *key, const char *rule_id, const char *header,
                   const char *sealed, char **plain, size_t *plain_len)
{
    *plain = NULL;
    *plain_len = 0;
    size_t pre = strlen(PT_SECRET_PREFIX);
    if (strncmp(sealed, PT_SECRET_PREFIX, pre) != 0)
        return PT_SECRET_BAD_FORMAT;
    const char *b64 = sealed + pre;
    size_t bl = strlen(b64);
    if (bl == 0 || bl % 4 != 0 || bl > 4 * ((MAX_PLAIN_BYTES + NONCE_BYTES + TAG_BYTES + 2) / 3))
        return PT_SECRET_BAD_FORMAT;
    size_t pad = (b64[bl - 1] == '=') + (b64[bl - 2] == '=');
    unsigned char *raw = malloc(bl / 4 * 3);
    if (!raw)
        return PT_SECRET_ERR;
    int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)bl);
    int rc = PT_SECRET_BAD_FORMAT;
    unsigned char *aad = NULL;
    char *p = NULL;
    if (n < 0 || (size_t)n < pad || (size_t)n - pad < NONCE_BYTES + TAG_BYTES)
        goto out;
    size_t raw_len = (size_t)n - pad, ct_len = raw_len - NONCE_BYTES - TAG_BYTES, aad_len = 0;
    rc = PT_SECRET_ERR;
    aad = make_aad(rule_id, header, &aad_len);
    p = malloc(ct_len + 1);
    if (!aad || !p)
        goto out;
    rc = gcm(0, key, raw, aad, aad_len, raw + NONCE_BYTES, ct_len, (unsigned char *)p,
             raw + NONCE_BYTES + ct_len);
    if (rc != PT_SECRET_OK) {
        OPENSSL_cleanse(p, ct_len + 1);
        goto out;
    }
    p[ct_len] = '\0';
    *plain = p;
    *plain_len = ct_len;
    p = NULL;
out:
    free(p);
    free(aad);
    free(raw);
    return rc;
}

void pt_secret_free(char *plain)
{
    if (plain) {
        OPENSSL_cleanse(plain, strlen(plain));
        free(plain);
    }
}

const char *pt_secret_mask(const char *plain)
{
    (void)plain;
    return PT_SECRET_MASK;
}
