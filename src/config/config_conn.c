/*
 * config_conn.c - the connection and slow-client keys of limits: (docs/config.md "Connection
 * and slow-client limits"); the server enforces them (server/connguard.c, conn.c).
 *
 *   limits: {max_connections_per_client: 64, max_requests_per_client: 32,
 *            body_min_rate: 1k, send_min_rate: 1k}
 *
 * Caps are counts (0: no cap, the default: many users share one address behind a carrier's
 * or an office's NAT, so a cap is the operator's choice). Rates are bytes per second, written
 * as sizes ("1k" is 1,024 bytes/s); 0 turns a rate off and leaves only the timeout.
 */
#include "config/config_internal.h"

bool pt_config_is_conn_key(const struct pt_ynode *k)
{
    return is(k, "max_connections_per_client") || is(k, "max_requests_per_client") ||
           is(k, "body_min_rate") || is(k, "send_min_rate");
}

void pt_config_load_conn_key(struct pt_cfg_ctx *x, const struct pt_ynode *k,
                             const struct pt_ynode *v, struct pt_limits_cfg *lim)
{
    uint64_t n;
    if (is(k, "max_connections_per_client")) {
        if (pt_config_get_uint(x, v, "max_connections_per_client", 0, 1u << 24, &n))
            lim->max_connections_per_client = (uint32_t)n;
    } else if (is(k, "max_requests_per_client")) {
        if (pt_config_get_uint(x, v, "max_requests_per_client", 0, 1u << 24, &n))
            lim->max_requests_per_client = (uint32_t)n;
    } else if (is(k, "body_min_rate")) {
        if (pt_config_get_size(x, v, "body_min_rate", 0, 1ull << 30, &n))
            lim->body_min_rate = (uint32_t)n;
    } else if (pt_config_get_size(x, v, "send_min_rate", 0, 1ull << 30, &n)) {
        lim->send_min_rate = (uint32_t)n;
    }
}
