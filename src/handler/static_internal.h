/*
 * static_internal.h - shared by static.c and static_parse.c only: the header-value helpers
 * the static action's decision uses beyond the parsers static.h exports. Not for other files.
 */
#ifndef PT_HANDLER_STATIC_INTERNAL_H
#define PT_HANDLER_STATIC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/str.h"
#include "handler/static.h"
#include "http/date.h"
#include "http/etag.h"

/*
 * Iterates a comma list of "token[;params]" (Accept, Accept-Encoding) from *pp to end: false
 * at the end; else *name is the element's first token (pointing into the list), *q its q in
 * thousandths (1000 when absent, 0 when malformed), and *pp moves past it.
 */
bool pt_static_next_qelem(const char **pp, const char *end, struct pt_str *name, int *q);

/* Whether Accept names text/html with q > 0 (the spa fallback serves HTML only to HTML
   readers); false for an absent header (accept.p NULL). */
bool pt_static_accepts_html(struct pt_str accept);

#endif
