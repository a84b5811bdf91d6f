/*
 * date.h - HTTP-dates (RFC 9110 §5.6.7): reading the three forms a recipient must accept,
 * writing the one a sender generates. Pure functions over the caller's bytes, any thread.
 */
#ifndef PT_HTTP_DATE_H
#define PT_HTTP_DATE_H

#include <stddef.h>
#include <time.h>

/*
 * Parses an HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime
 * forms recipients must accept. Returns 0 and *t (seconds since the epoch, UTC) or -1. Never
 * reads past v + n.
 */
int pt_http_date_parse(const char *v, size_t n, time_t *t);

/* Writes t as an IMF-fixdate (RFC 9110 §5.6.7) into buf; returns its length, or 0 when t is
   out of range (years 0..9999) or cap is too small. */
size_t pt_http_date_fmt(char *buf, size_t cap, time_t t);

#endif
