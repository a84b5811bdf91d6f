/*
 * path.h - request path normalisation and wire encoding (path.c).
 *
 * One canonical form of a request path, the one routes match on (route/), the static action
 * maps to files (handler/) and Netlify rule paths are compiled to at load (config/); and its
 * encoding back for the wire. Both never allocate and are thread-safe.
 */
#ifndef PT_HTTP_PATH_H
#define PT_HTTP_PATH_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Normalises a request path (no query string) per the contract: percent-decodes every octet
 * except '/' (%2F) and '%' (%25), which stay encoded with upper-case hex; removes dot-segments
 * (RFC 3986 §5.2.4, also ones that were percent-encoded); collapses "//" to "/". The path must
 * start with '/'. Writes to out (outlen >= len + 1 is always enough; NUL-terminated).
 * Returns the length, or -1 for a path to reject with 400: not starting with '/', a bad
 * percent escape, an encoded or raw NUL or control character, or ".." climbing above the root.
 */
ssize_t pt_path_normalize(const char *in, size_t len, char *out, size_t outlen);

/*
 * Percent-encodes a normalised path for sending on the wire: bytes outside RFC 3986 pchar
 * and '/' are encoded; the '%' of kept escapes passes through. Returns the length written or -1
 * when out is too small.
 */
ssize_t pt_path_encode(const char *in, size_t len, char *out, size_t outlen);

#endif
