/*
 * acme_internal.h - the ACME client's building blocks that need no network: base64url, the
 * JWK of a P-256 key and its thumbprint (RFC 7638), JWS signing with ES256 (RFC 7515, RFC 8555
 * §6.2), CSRs, self-signed placeholders and key/certificate files. Shared by tls/acme.c and
 * the unit tests (tests/unit/test_acme.c); nothing here keeps state or blocks except on files.
 */
#ifndef PT_TLS_ACME_INTERNAL_H
#define PT_TLS_ACME_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define PT_ACME_TLS_ALPN "acme-tls/1"                      /* RFC 8737 §6.2 */
#define PT_ACME_ID_PE_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31" /* RFC 8737 §6.1 */

/* base64url without padding (RFC 7515 §2) of in[0..n) into out (NUL-terminated). Returns the
   length written, or -1 when out is too small. */
int pt_acme_b64url(const unsigned char *in, size_t n, char *out, size_t outlen);

/* The public JWK of a P-256 key in the canonical form of RFC 7638 §3 (members in order, no
   spaces): {"crv":"P-256","kty":"EC","x":"...","y":"..."}. Returns its length or -1. */
int pt_acme_jwk(EVP_PKEY *key, char *out, size_t outlen);

/* The JWK thumbprint (RFC 7638): base64url(SHA-256(canonical JWK)). Returns its length or -1. */
int pt_acme_thumbprint(EVP_PKEY *key, char *out, size_t outlen);

/* A flattened JWS (RFC 8555 §6.2) signed with ES256 by key: protected header {alg, nonce, url}
   plus kid when kid is not NULL, else jwk. payload NULL means POST-as-GET (empty payload).
   Returns a malloc'd NUL-terminated JSON text (the caller frees it), or NULL. */
char *pt_acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
                  const char *payload);

/* A fresh P-256 key, or NULL. */
EVP_PKEY *pt_acme_new_key(void);

/* A DER CSR for names[0..n) (subject CN = names[0], SAN = every name) signed by key with
   SHA-256. Returns the length and a malloc'd buffer in *der (caller frees), or -1. */
int pt_acme_csr(EVP_PKEY *key, const char *const *names, size_t n, unsigned char **der);

/* A self-signed certificate for names[0..n) valid from an hour ago for days days, signed by
   key. Returns it (caller frees with X509_free) or NULL. */
X509 *pt_acme_self_signed(EVP_PKEY *key, const char *const *names, size_t n, int days);

/* The TLS-ALPN-01 challenge certificate for name (RFC 8737 §3): self-signed by key, SAN
   dNSName name only, with the critical id-pe-acmeIdentifier extension holding the SHA-256 of
   key_auth. Returns it (caller frees) or NULL. */
X509 *pt_acme_alpn_cert(EVP_PKEY *key, const char *name, const char *key_auth);

/* The challenge certificate and key to present to a TLS-ALPN-01 validation of name (lower
   case), with a reference each for the caller. Returns 0, or -1 when name has no pending
   challenge. Thread-safe (called from handshakes on workers). */
int pt_acme_alpn_lookup(const char *name, X509 **cert, EVP_PKEY **key);

/* Writes data[0..len) to path with mode 0600 through path.tmp, fsync and rename, so readers
   never see a partial file. Returns 0 or -errno. May block (disk). */
int pt_acme_write_file(const char *path, const void *data, size_t len);

/* The PEM text of key (PKCS#8, unencrypted) or of cert, malloc'd into *out (caller frees).
   Returns the length or -1. */
int pt_acme_key_pem(EVP_PKEY *key, char **out);
int pt_acme_cert_pem(X509 *cert, char **out);

/* Reads a PEM key or the first certificate of a PEM file; NULL when absent or broken. */
EVP_PKEY *pt_acme_read_key(const char *path);
X509 *pt_acme_read_cert(const char *path);

/* notBefore and notAfter of cert as Unix times. Returns 0 or -1. */
int pt_acme_cert_times(X509 *cert, time_t *not_before, time_t *not_after);

/* Whether cert names every one of names[0..n) exactly (SAN dNSName, no wildcard match). */
bool pt_acme_cert_covers(X509 *cert, const char *const *names, size_t n);

/* Whether a certificate with this validity needs renewing at now: less than fraction of its
   lifetime is left (RFC 8555 leaves the policy to the client; a third by default). */
bool pt_acme_renew_due(time_t not_before, time_t not_after, time_t now, double fraction);

/* Whether host (as stored in a site's hosts) is a name ACME can get a certificate for here:
   no wildcard, no port, not an IP address. */
bool pt_acme_name_ok(const char *host);

#endif
