/* The request-key table of a controller (txctl/ internal; txctl/README.md
 * "Request keys"): per client request key (client, seq) what this node
 * knows of it — running as transaction T, committed with a value, aborted
 * with an error, or only fenced (asked about before it arrived) — for
 * recent keys, bounded by count and age. Pure data structure: no runtime,
 * no messages; the caller passes the time. One per node, both roles. */
#ifndef NINES_TXO_H
#define NINES_TXO_H
#include <stdbool.h>
#include <stdint.h>

#define TXO_EVICT_BUCKETS 16384u  /* per client-id bucket: the newest seq ever dropped */

enum txo_state {
    TXO_FREE = 0,
    TXO_FENCED,      /* not seen here; attempts <= fence may never start here */
    TXO_RUNNING,     /* attempt `attempt` runs here as txn (ctl or hsc role) */
    TXO_COMMITTED,   /* committed as txn with value (kept after FORGET) */
    TXO_ABORTED,     /* attempt `attempt` aborted with error */
    TXO_LOST,        /* attempt `attempt` ran here, and its transaction was dropped
                      * undecided (this node left the node set): no promise either way */
};
const char *txo_state_name(enum txo_state s);

enum txo_role { TXO_ROLE_NONE = 0, TXO_ROLE_CTL, TXO_ROLE_HSC };

struct txo_ent {
    uint64_t client, seq;
    uint64_t txn;                 /* RUNNING / COMMITTED / ABORTED: the attempt's txn */
    int64_t value;                /* COMMITTED: the procedure's value */
    uint64_t gci;                 /* COMMITTED: the decision's commit epoch (0: none) */
    uint64_t born_ms;             /* when entered, its attempt started or was decided
                                   * (the age list is in this order) */
    uint32_t attempt;             /* the attempt the state is about (FENCED: 0) */
    uint32_t fence;               /* attempts <= fence may never start here */
    int32_t error;                /* ABORTED: its code */
    uint8_t state, role;          /* enum txo_state, enum txo_role */
    uint32_t ctl;                 /* node of the attempt's controller */
    /* 1-based indices into the entry array, 0 = none */
    uint32_t knext, tnext;        /* key hash chain, txn hash chain */
    uint32_t prev, next;          /* age list: oldest first */
};

struct txo_stats {
    uint64_t entered, deduped, refused_stale, refused_running, refused_lost;
    uint64_t fenced, evicted_age, evicted_count;
    uint32_t held;
};

struct txo {
    struct txo_ent *ent;          /* cap entries */
    uint32_t cap, used, free_head;
    uint32_t *khash, *thash;      /* heads of the chains, 1-based */
    uint32_t hmask;
    uint32_t head, tail;          /* age list */
    uint64_t keep_ms;
    uint64_t start_ms;            /* table created (the process started) */
    uint64_t evicted[TXO_EVICT_BUCKETS]; /* max seq of any dropped key per client bucket */
    struct txo_stats st;
};

/* cap entries (>= 2), kept keep_ms (> 0) after they were entered. */
int txo_init(struct txo *o, uint32_t cap, uint64_t keep_ms, uint64_t now_ms);
void txo_free(struct txo *o);

/* The entry of a key, or NULL. Entries older than keep_ms are dropped
 * first (a running one is kept: it moves to the young end). */
struct txo_ent *txo_find(struct txo *o, uint64_t client, uint64_t seq, uint64_t now_ms);
/* The entry whose current attempt is txn (RUNNING or decided), or NULL. */
struct txo_ent *txo_find_txn(struct txo *o, uint64_t txn);
/* May this table have held the key and dropped it (aged out, evicted under
 * load)? Conservative: true for every key of its bucket up to the newest
 * seq ever dropped there. */
bool txo_maybe_dropped(const struct txo *o, uint64_t client, uint64_t seq);

/* What to do with attempt `attempt` of a key arriving here to run as txn
 * (a client's TXN_REQ at the ctl, a TXC_START_REQ at the hsc). */
enum txo_verdict {
    TXO_RUN = 0,                  /* entered RUNNING (or a repeat of the same txn) */
    TXO_SAME,                     /* that txn is known here already (decided): unchanged */
    TXO_DONE_COMMITTED,           /* the key committed already (*out holds txn, value) */
    TXO_BUSY,                     /* another attempt runs here (*out) */
    TXO_STALE,                    /* this attempt aborted or was fenced here */
    TXO_DROPPED,                  /* not here, but it may have been dropped: cannot tell */
    TXO_FULL,                     /* no room: every entry runs */
};
enum txo_verdict txo_admit(struct txo *o, uint64_t client, uint64_t seq, uint32_t attempt,
                           enum txo_role role, uint64_t txn, uint32_t ctl, uint64_t now_ms,
                           struct txo_ent **out);
/* Enter attempt `attempt` as RUNNING txn whatever the entry says (a START
 * that must be taken: a kernel committed it, or its decision is lost).
 * NULL when there is no room. */
struct txo_ent *txo_force(struct txo *o, uint64_t client, uint64_t seq, uint32_t attempt,
                          enum txo_role role, uint64_t txn, uint32_t ctl, uint64_t now_ms);
/* The transaction running as txn was dropped undecided: LOST. */
void txo_lost(struct txo *o, uint64_t txn, uint64_t now_ms);
/* The attempt running as txn ended. No-op when no RUNNING entry has it. */
void txo_decided(struct txo *o, uint64_t txn, bool committed, int64_t value, int error,
                 uint64_t now_ms);
/* The attempt that ran as txn committed in epoch gci (no-op when no entry
 * has it). */
void txo_set_gci(struct txo *o, uint64_t txn, uint64_t gci);
/* Fence: attempts <= attempt may not start here any more. Enters a FENCED
 * entry when the key is not held. NULL when there is no room. */
struct txo_ent *txo_fence(struct txo *o, uint64_t client, uint64_t seq, uint32_t attempt,
                          uint64_t now_ms);
#endif
