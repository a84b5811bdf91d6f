/*
 * websocket.h - the WebSocket handshake values a proxy makes and checks when it turns an
 * HTTP/2 extended CONNECT (RFC 8441) into an HTTP/1.1 Upgrade (RFC 6455 §4.1, §4.2.2).
 */
#ifndef PT_HANDLER_WEBSOCKET_H
#define PT_HANDLER_WEBSOCKET_H

#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"

/* Length of a Sec-WebSocket-Key value: 16 bytes in base64. */
#define PT_WS_KEY_LEN 24

/* Writes a Sec-WebSocket-Key made of the 16 bytes of a and b (a nonce, RFC 6455 §4.1: it
   guards against caches, it is no secret) into out, NUL-terminated. */
void pt_ws_key(uint64_t a, uint64_t b, char out[PT_WS_KEY_LEN + 1]);

/* Whether accept is the Sec-WebSocket-Accept a server must answer key with (RFC 6455 §4.2.2:
   base64 of the SHA-1 of the key and the protocol's GUID), blanks around it allowed. */
bool pt_ws_accept_ok(const char *key, struct pt_str accept);

#endif
