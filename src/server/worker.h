/*
 * worker.h - worker threads, configuration snapshots, and the per-worker services that
 * requests use (the upstream keep-alive pool of upstream/uconn.h, access log, request ids).
 *
 * Snapshots: the main thread builds a struct pt_snapshot (configuration + router + access log
 * fd) whole, then hands it to every worker: it takes one reference per worker and stores the
 * pointer in the worker's `pending` slot with one atomic exchange. A worker looks at its slot
 * when a request starts (one atomic load of a line only it and a reload touch) and wraps a new
 * snapshot in a pt_wsnap, a worker-local handle whose use count is a plain integer: requests
 * never touch a shared cache line for reference counting. When a worker's old handle has no
 * user left it drops its reference on the old snapshot; the last reference frees it. A reload
 * therefore never stops, drops or half-applies anything, and no thread can see a snapshot
 * after its last reference is gone.
 */
#ifndef PT_SERVER_WORKER_H
#define PT_SERVER_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config/config.h"
#include "core/loop.h"
#include "handler/request.h"
#include "http/fields.h"
#include "route/route.h"
#include "server/conn.h"
#include "server/offload.h"
#include "upstream/balance.h"
#include "upstream/target.h"
#include "upstream/uconn.h"

struct pt_tls_ctx;
struct pt_ctr_block;
struct pt_metrics_map;
struct pt_fwdauth_cache;

/* Counter blocks (core/counters.h) after the workers' (0 .. workers - 1): the main thread's,
   then the admin thread's. */
#define PT_COUNTERS_MAIN 0
#define PT_COUNTERS_ADMIN 1
#define PT_COUNTERS_EXTRA_BLOCKS 2

/*
 * A listening socket, shared by every worker (worker.c says why). Two counts: refs keeps the
 * object alive (each snapshot that lists it, each worker that registered it); opens keeps the
 * fd open (the main thread's current snapshot, each worker that registered it). The fd closes
 * when opens reaches 0, which only happens after every worker has taken it out of its epoll set,
 * so a closed listener's fd number is never removed from a loop after reuse.
 */
struct pt_lsock {
    atomic_int refs;
    atomic_int opens;
    int fd;
    struct pt_sockaddr addr;
};

/* Takes a hold on l's fd; false when it is already closed (a listener removed by a newer
   configuration). */
bool pt_lsock_open_get(struct pt_lsock *l);
/* Drops a hold on l's fd; the last closes it. */
void pt_lsock_open_put(struct pt_lsock *l);
void pt_lsock_ref(struct pt_lsock *l);
void pt_lsock_unref(struct pt_lsock *l);

struct pt_snapshot {
    atomic_int refs;     /* one for "current", one per worker handle */
    uint64_t generation; /* 1, 2, ... per successful load */
    struct pt_config *cfg;
    struct pt_router *router;
    /* what its handlers use: target state, static roots, upstream TLS, GeoIP; requests point
       at it (pt_req.res) */
    struct pt_handler_res res;
    struct pt_tls_ctx **listen_tls; /* per listen entry; NULL for plain listeners */
    size_t n_listen_tls;
    int access_fd;            /* -1 when access logging is off */
    bool owns_access_fd;      /* false for stdout/stderr */
    struct pt_lsock **lsocks; /* per listen entry (run only; NULL for check); one ref each */
    size_t n_lsocks;
    bool holds_opens; /* the snapshot also holds an open on each lsock (main thread's) */
    struct pt_metrics_map *metrics; /* its series (admin/metrics.h); NULL: nothing counted */
    struct pt_admin_state *admin;   /* the admin listener's tokens and TLS; NULL without admin: */
};

void pt_snapshot_ref(struct pt_snapshot *s);
void pt_snapshot_unref(struct pt_snapshot *s);

/* Gives s a listening socket per listen entry of its configuration: the one prev already has
   for the same address (so kept listeners and their queued connections are untouched by a
   reload), else a newly bound one. Main thread. Returns 0, or -1 with err filled ("cannot
   listen on ADDR: Address already in use"); s then holds what it got, released with it. */
int pt_snapshot_listen(struct pt_snapshot *s, const struct pt_snapshot *prev, char *err,
                       size_t errlen);
/* Drops s's hold on its sockets' fds, once a newer snapshot is published or at stop: a socket
   that no newer snapshot lists closes as soon as every worker has let go of it. Main thread. */
void pt_snapshot_release_listeners(struct pt_snapshot *s);

struct pt_wsnap {
    struct pt_snapshot *s;
    uint32_t users;          /* requests of this worker running on s */
    struct pt_lb_worker *lb; /* this worker's balancer state per upstream (upstream/balance.h) */
    struct pt_wsnap *next;   /* older handles still in use */
};

#define PT_ACCEPT_RETRY_MS 100u /* accept pause after EMFILE/ENFILE */

/* A worker's registration of a shared listening socket. */
struct pt_listener {
    struct pt_io io; /* io.fd: ls->fd while registered, -1 once dropped */
    struct pt_defer defer;
    struct pt_worker *w;
    struct pt_lsock *ls; /* holds a ref and an open */
    struct pt_listener *next;
    bool is_tls;
    bool is_armed; /* in the worker's epoll set (not paused by a shortage or the cap) */
    bool is_seen;  /* scratch for listeners_sync */
    uint8_t idx;   /* position in the current snapshot's listen list */
};

struct pt_worker {
    int id;
    pthread_t thread;
    struct pt_ctr_block *ctr; /* its counter block (written by this thread alone); NULL: none */
    struct pt_loop loop;
    struct pt_io wake;             /* eventfd: the main thread wants attention */
    struct pt_listener *listeners; /* registrations of the current snapshot's sockets */
    struct pt_wsnap *ws;           /* handle on the newest snapshot seen */
    struct pt_wsnap *old_ws;       /* older handles with users left */
    struct pt_conn conns;          /* list head of client connections */
    size_t n_conns;
    uint64_t next_conn_id;
    /* What its requests' handlers use: pointers to loop and upool, the scratch header array
       for parsing (env.hdrs, env.hdrs_cap: limits.headers), the random source. */
    struct pt_handler_env env;
    char *path_buf; /* scratch for the normalised path */
    size_t path_cap;
    struct pt_upool upool;    /* idle upstream connections (upstream/uconn.h) */
    struct pt_req *free_reqs; /* recycled request objects (server/conn.c) */
    unsigned n_free_reqs;
    char *log_buf; /* access-log lines waiting for one write */
    size_t log_len;
    uint64_t rid_seed[2];             /* request-id generator state */
    uint32_t n_tunnels;               /* open WebSocket tunnels (env.n_tunnels) */
    struct pt_fwdauth_cache *fwdauth; /* forward_auth's answers (server/fwdauth.c); NULL: none */
    struct pt_offload_inbox offload;  /* finished hashes (server/offload.c) */
    bool is_draining;
    struct pt_timer drain_timer;
    struct pt_timer reload_timer;          /* shutdown_timeout after a reload: tunnels on older
                                     snapshots end */
    struct pt_timer accept_timer;          /* re-arms the listeners after an accept pause */
    bool is_at_cap;                        /* paused at limits.max_connections: a close re-arms */
    int reserve_fd;                        /* /dev/null, given up to shed a connection on EMFILE */
    atomic_bool stop_requested;            /* set by the main thread */
    _Atomic(struct pt_snapshot *) pending; /* newer snapshot from the main thread (owns a ref) */
};

/* Creates the worker's loop. Its listeners come with the snapshots it is handed: the worker
   registers the sockets of each new snapshot it takes up. Returns 0 or -errno. */
int pt_worker_init(struct pt_worker *w, int id);
int pt_worker_start(struct pt_worker *w);
/* Hands snapshot s to the worker (takes a reference for it) and wakes it, so that it takes up
   s's listeners promptly even when idle. Thread-safe. */
void pt_worker_publish(struct pt_worker *w, struct pt_snapshot *s);
/* Asks the worker to drain and stop (thread-safe). */
void pt_worker_request_stop(struct pt_worker *w);
void pt_worker_join(struct pt_worker *w);

/* Returns the worker's handle on the current snapshot, taking a use (refreshes it first when
   the main thread published a newer one). NULL only when out of memory. */
struct pt_wsnap *pt_worker_snap_get(struct pt_worker *w);
/* The current configuration, borrowed: valid until the worker's next request starts. */
const struct pt_config *pt_worker_cfg(struct pt_worker *w);
/* Drops a use taken by pt_worker_snap_get. */
void pt_worker_snap_put(struct pt_worker *w, struct pt_wsnap *ws);

/* A fast pseudo-random number (not for secrets: split draws, tie breaks). */
uint64_t pt_worker_random(struct pt_worker *w);
/* Writes a fresh request id (32 lower-case hex digits) into out (>= 33 bytes). */
size_t pt_worker_request_id(struct pt_worker *w, char *out);

/* Appends one access-log line for r (written out at the end of the loop iteration). */
void pt_worker_access_log(struct pt_worker *w, const struct pt_req *r);

/* limits.max_connections for cfg: the key, or when unset the default derived from the
   open-file limit seen when the first worker was made (see pt_worker_init). */
uint32_t pt_worker_max_connections(const struct pt_config *cfg);
/* Client connections open in the whole process (every worker). */
uint32_t pt_conn_count(void);
/* Stops accepting on every listener of w for ms milliseconds (fd shortage, connection cap);
   the accept timer arms them again. */
void pt_worker_pause_accept(struct pt_worker *w, uint32_t ms);
/* accept failed with EMFILE/ENFILE on l: closes the reserve fd, accepts and closes one waiting
   connection (so that client hears something now), reopens the reserve, and pauses accepting
   for a moment. Logs at a bounded rate. */
void pt_worker_accept_exhausted(struct pt_worker *w, struct pt_listener *l, int err);

#endif
