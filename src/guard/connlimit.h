/*
 * connlimit.h - per-client counts of open connections and of requests in flight, shared by
 * every worker of the process (connlimit.c has the design): limits.max_connections_per_client
 * and limits.max_requests_per_client.
 *
 * The table's memory is fixed when it is made: a client takes a slot only while it has a
 * connection open or a request in flight, so the number of busy slots never exceeds the
 * number of open connections plus requests, whatever the number of distinct addresses.
 */
#ifndef PT_GUARD_CONNLIMIT_H
#define PT_GUARD_CONNLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct pt_cl;

/* What a count is of. */
enum pt_cl_kind { PT_CL_CONN = 0, PT_CL_REQ = 1 };

/* pt_cl_take's verdict. */
enum pt_cl_verdict {
    PT_CL_TAKEN = 0,     /* counted: give it back with pt_cl_put */
    PT_CL_OVER = 1,      /* the client is at max: refused, nothing counted */
    PT_CL_UNTRACKED = 2, /* no slot free near the key's (the table is full there): admitted
                            uncounted (and counted in pt_cl_overflows); nothing to give back */
};

/* The process's table (made by server/main.c for the first configuration with a per-client
   cap, kept across reloads), or NULL. Workers read it after taking up a snapshot that wants it,
   which the snapshot's publication orders. */
extern struct pt_cl *pt_guard_cl;

/*
 * A table for about max_clients clients at once (rounded up to a power of two per shard; at
 * least 4,096): 16 bytes a slot, 64 shards with a lock each. Returns NULL when out of memory.
 */
struct pt_cl *pt_cl_new(size_t max_clients);
void pt_cl_free(struct pt_cl *t);

/* The key of the client address sa (IPv4, IPv6; an IPv4-mapped IPv6 address is IPv4; the port
   is not part of it) under t's random SipHash key; never 0. 0 when sa is no IP address. */
uint64_t pt_cl_key(const struct pt_cl *t, const struct sockaddr *sa);

/* Counts one more kind for key against max (>= 1). Thread-safe; takes one shard lock. */
enum pt_cl_verdict pt_cl_take(struct pt_cl *t, uint64_t key, enum pt_cl_kind kind, uint32_t max);
/* Gives back what a PT_CL_TAKEN pt_cl_take counted. Thread-safe. */
void pt_cl_put(struct pt_cl *t, uint64_t key, enum pt_cl_kind kind);
/* The count of kind for key now (tests, the admin layer). */
uint32_t pt_cl_count(struct pt_cl *t, uint64_t key, enum pt_cl_kind kind);
/* Takes that found no free slot and were admitted uncounted, since the table was made. */
uint64_t pt_cl_overflows(struct pt_cl *t);
/* The table's memory in bytes (fixed at pt_cl_new). */
size_t pt_cl_bytes(const struct pt_cl *t);

#endif
