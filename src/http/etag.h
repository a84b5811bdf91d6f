/*
 * etag.h - entity-tag lists (RFC 9110 §8.8.3, §13.1.1, §13.1.2): If-Match and If-None-Match
 * against one entity tag. A pure function over the caller's bytes, any thread.
 */
#ifndef PT_HTTP_ETAG_H
#define PT_HTTP_ETAG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

/*
 * Does the entity-tag list v (If-Match / If-None-Match) hold "*" or a tag matching etag (elen
 * bytes, quotes included, with its "W/" when weak)? strong: RFC 9110 §8.8.3.2 strong
 * comparison (both strong and equal); else weak (opaque parts equal; etag itself must then be
 * given without "W/"). A malformed list matches nothing.
 */
bool pt_http_etag_list_match(struct pt_str v, const char *etag, size_t elen, bool strong);

#endif
