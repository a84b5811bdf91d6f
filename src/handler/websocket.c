/*
 * websocket.c - the two WebSocket handshake values the proxy deals with itself: the
 * Sec-WebSocket-Key it sends upstream for an HTTP/2 client, which has none (RFC 8441 §5), and
 * the check of the target's Sec-WebSocket-Accept against it. An HTTP/1.1 client's handshake
 * passes through untouched: the client checks its own key.
 *
 * OpenSSL gives SHA-1 and base64 (EVP_EncodeBlock); no state, no allocation.
 */
#include "handler/websocket.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void pt_ws_key(uint64_t a, uint64_t b, char out[PT_WS_KEY_LEN + 1])
{
    unsigned char raw[16];
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw)); /* 24 characters and a NUL */
}

bool pt_ws_accept_ok(const char *key, struct pt_str accept)
{
    char in[PT_WS_KEY_LEN + sizeof(GUID)];
    size_t kn = strnlen(key, PT_WS_KEY_LEN + 1);
    if (kn != PT_WS_KEY_LEN)
        return false;
    memcpy(in, key, kn);
    memcpy(in + kn, GUID, sizeof(GUID) - 1);
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)in, kn + sizeof(GUID) - 1, md);
    char want[32];
    int n = EVP_EncodeBlock((unsigned char *)want, md, sizeof(md)); /* 28 characters */
    const char *p = accept.p, *end = accept.p + accept.n;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return end - p == n && memcmp(p, want, (size_t)n) == 0;
}
