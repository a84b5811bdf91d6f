/*
 * config_internal.h - shared between the files of the configuration loader only.
 *
 * Loading runs in two steps. yaml_tree.c turns the libyaml event stream into a small tree of
 * nodes (scalar, sequence, mapping) that remember their file positions, rejecting what the
 * loader never accepts (aliases, anchors, several documents, nesting deeper than
 * PT_CFG_MAX_DEPTH, duplicate keys). config.c then walks that tree against the schema and fills
 * struct pt_config. Both report errors through pt_config_error() (report.c), which collects up to
 * PT_CFG_MAX_ERRORS messages and then stops the load with a longjmp back to the entry point;
 * every allocation of a load lives in one of two arenas (the tree's and the result's), so
 * jumping out leaks nothing as long as the libyaml parser and event are released, which the
 * entry point does from the flags kept here.
 */
#ifndef PT_CONFIG_CONFIG_INTERNAL_H
#define PT_CONFIG_CONFIG_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config/config.h"
#include "core/arena.h"

#define PT_CFG_MAX_ERRORS PT_CONFIG_MAX_ERRORS /* errors collected before the load stops */
#define PT_CFG_MAX_WARNINGS 200                /* warning lines kept; the rest are only counted */
#define PT_CFG_MAX_DEPTH 64                    /* nesting of sequences and mappings */
#define PT_CFG_MAX_FILE (8u << 20)             /* bytes in a configuration file */
#define PT_CFG_MSG_MAX PT_CONFIG_MSG_MAX       /* bytes of one message, position excluded */
#define PT_CFG_MAX_SCALAR (1u << 20)           /* bytes of one scalar after ${NAME} expansion */

enum pt_ynode_kind { PT_YNODE_SCALAR = 1, PT_YNODE_SEQ, PT_YNODE_MAP };

struct pt_ynode {
    int kind;               /* enum pt_ynode_kind */
    bool is_plain;          /* scalar written without quotes or block indicators */
    bool is_dup;            /* a mapping key seen earlier in the same mapping (reported) */
    bool is_bad;            /* its ${NAME} expansion failed (reported): getters stay quiet */
    struct pt_cfg_pos pos;  /* where the node starts */
    const char *s;          /* scalar text, NUL-terminated copy (may hold inner NULs) */
    size_t len;             /* scalar: bytes in s; containers: number of children */
    struct pt_ynode *child; /* first child: items, or key, value, key, value... */
    struct pt_ynode *last;  /* last child, for appending while building */
    struct pt_ynode *next;  /* next sibling */
};

/* A warning: the load goes on. file is NULL for the configuration file itself, else another
   file it names (a Netlify rule file); pos.line 0 means the file as a whole. */
struct pt_cfg_warnmsg {
    const char *file;
    struct pt_cfg_pos pos;
    unsigned seq;
    char msg[PT_CFG_MSG_MAX];
    struct pt_cfg_warnmsg *next;
};

struct pt_cfg_hostref {
    const char *host; /* normalised (lower case) */
    struct pt_cfg_pos pos;
    struct pt_cfg_hostref *next;
};

/* A value taken from the environment by ${NAME} expansion (yaml_tree.c): messages about the
   scalar at pos show "${NAME}" instead of these bytes, so secrets stay out of logs. Kept in
   the configuration's arena (pt_config.secrets) for the errors reported after the load. */
struct pt_cfg_secret {
    struct pt_cfg_pos pos; /* of the scalar it went into */
    const char *name;      /* variable name, NUL-terminated */
    const char *value;     /* its value (a copy, not NUL-terminated) */
    size_t len;
    const struct pt_cfg_secret *next;
};

struct pt_cfg_ctx {
    const char *name; /* file name used in messages */
    const char *buf;  /* the input */
    size_t len;
    struct pt_arena tmp;          /* the tree and scratch; freed when the load ends */
    struct pt_config *cfg;        /* the result being filled; its arena owns it */
    struct pt_config_errors errs; /* truncated: the load stopped */
    jmp_buf jb;                   /* longjmp target for "stop now" (too many errors, no memory) */
    yaml_parser_t parser;
    bool has_parser; /* parser initialised: delete it at the end */
    yaml_event_t ev;
    bool has_event;                    /* ev holds an event to delete */
    size_t n_named_ups;                /* upstreams from upstreams:, before those made for URLs */
    size_t ups_cap;                    /* slots in cfg->upstreams */
    struct pt_cfg_hostref *hosts;      /* every site host seen, for the duplicate check */
    struct pt_cfg_pos *listen_tls_pos; /* per listener: where tls: true is, line 0 if not */
    struct pt_cfg_warnmsg *warns;      /* warnings kept (newest first), in x->tmp */
    size_t n_warns;                    /* warnings reported, kept or not */
};

/*
 * Records an error at pos. After PT_CFG_MAX_ERRORS it marks the load truncated and jumps to
 * x->jb (does not return).
 */
void pt_config_error(struct pt_cfg_ctx *x, struct pt_cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Records a warning at pos of the configuration file ("FILE:LINE:COL: warning: message"): the
 * load goes on, and the configuration lists it (pt_config.warnings) for `check` and the log.
 */
void pt_config_warn(struct pt_cfg_ctx *x, struct pt_cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, at line:col of another file the configuration names (line 0: the whole file). */
void pt_config_warn_file(struct pt_cfg_ctx *x, const char *file, int line, int col, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));

/* Formats the warnings kept in x->tmp into cfg->warnings (config arena), sorted: the
   configuration file's first, then each other file's, each in line order. */
void pt_config_collect_warnings(struct pt_cfg_ctx *x);

/* Ends the load with an out-of-memory error; never returns. */
void pt_config_oom(struct pt_cfg_ctx *x) __attribute__((noreturn));

/* pt_arena_alloc on x->tmp or cfg arena that jumps out on failure instead of returning NULL. */
void *pt_config_alloc(struct pt_cfg_ctx *x, struct pt_arena *a, size_t n);
char *pt_config_strndup(struct pt_cfg_ctx *x, struct pt_arena *a, const char *s, size_t n);

/*
 * Parses x->buf into a tree allocated in x->tmp. Returns the root node, or NULL when the input
 * holds no document (an empty file) or an error was reported (check x->n_errs).
 */
struct pt_ynode *pt_config_yaml_tree(struct pt_cfg_ctx *x);

/*
 * Edit distance (optimal string alignment, ASCII case-insensitive) between a and b; strings
 * longer than 64 bytes give a large value.
 */
unsigned pt_config_distance(const char *a, size_t an, const char *b, size_t bn);

#endif
