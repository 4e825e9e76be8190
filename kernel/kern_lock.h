/* Record locks for one executor (internal, kernel). See kernel/README.md "Record locks".
 *
 * A lock manager belongs to exactly one executor thread and serves the
 * fragment replicas that executor owns. It has no internal mutexes: every
 * function must be called from the owning thread.
 *
 * Locks are named by (table id, fragment id, encoded primary key bytes) and
 * have mode shared (S), exclusive (X) or increment (INC: commutative
 * increments of numeric columns; INC is compatible with INC only). Strict two-phase locking: a
 * transaction's locks are released only all together, by
 * kern_lock_release_all() at commit or abort.
 *
 * Nothing here blocks. A request that cannot be granted at once is queued
 * and kern_lock_acquire() returns KERN_LOCK_WAITING; the outcome is reported
 * later through the callbacks as an event: granted (on_grant) or cancelled
 * (on_fail with NINES_EDEADLOCK for a deadlock victim, NINES_ELOCKTIMEOUT
 * for a wait older than the timeout). Events are queued inside the manager
 * and delivered only by kern_lock_dispatch(), which the executor calls after
 * each handler, so a callback never runs inside the caller's own
 * kern_lock_acquire(). Callbacks may call any kern_lock_ function.
 */
#ifndef NINES_KERN_LOCK_H
#define NINES_KERN_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest encoded primary key a lock can name. */
#define KERN_LOCK_KEY_MAX 2048

enum kern_lock_mode {
    KERN_LOCK_NONE = 0, /* only as a result: nothing held */
    KERN_LOCK_S = 1,    /* shared */
    KERN_LOCK_X = 2,    /* exclusive */
    KERN_LOCK_INC = 3,  /* increment (escrow): compatible with INC only */
};

/* Modes form a lattice NONE < S, INC < X. A held mode covers a request when
 * it equals it or is X; a held S or INC asked for a mode it does not cover
 * becomes X (S + INC excludes exactly what X excludes), as an upgrade. */

/* Non-negative results of kern_lock_acquire(). */
enum kern_lock_result {
    KERN_LOCK_GRANTED = 0, /* held now */
    KERN_LOCK_WAITING = 1, /* queued; an on_grant or on_fail event follows */
};

/* A transaction's lock state (see kernel/README.md "Record locks", "State machine"). */
enum kern_lock_tstate {
    KERN_LOCK_T_NONE = 0, /* unknown here: never locked, or released */
    KERN_LOCK_T_ACTIVE,   /* may hold locks; no request pending */
    KERN_LOCK_T_WAITING,  /* exactly one request pending */
    KERN_LOCK_T_DOOMED,   /* its wait was cancelled (deadlock victim or
                             timeout); it must abort: release_all */
};

/* Role of a fragment replica as the lock manager sees it. */
enum kern_lock_role {
    KERN_LOCK_PRIMARY = 0, /* default for every fragment */
    KERN_LOCK_STANDBY = 1, /* hot standby: record lock requests are refused */
};

/* What happened to a queued request; valid only during the callback. */
struct kern_lock_event {
    uint64_t txn;
    uint64_t cookie;       /* as given to kern_lock_acquire() */
    uint32_t table, frag;
    enum kern_lock_mode mode; /* requested mode */
    int err;               /* 0: granted; NINES_EDEADLOCK; NINES_ELOCKTIMEOUT */
    const char *detail;    /* err != 0: the cycle or the wait time; else "" */
};

struct kern_lock_cb {
    void (*on_grant)(void *ctx, uint64_t txn, const struct kern_lock_event *ev);
    /* Also sets the thread's nines_errdetail() to ev->detail before the call. */
    void (*on_fail)(void *ctx, uint64_t txn, const struct kern_lock_event *ev);
    void *ctx;
};

struct kern_lock_conf {
    uint32_t timeout_ms;      /* 0: waits never time out */
    uint32_t initial_buckets; /* lock-head hash size hint; 0: default (1024) */
};

struct kern_lock_mgr;

/* New manager; NULL on allocation failure. `cb` is copied; its functions
 * may be NULL (events are then dropped). */
struct kern_lock_mgr *kern_lock_new(const struct kern_lock_conf *conf,
                                    const struct kern_lock_cb *cb);
/* Free everything, including locks still held and undelivered events. */
void kern_lock_free(struct kern_lock_mgr *m);

/* Request `mode` on (table, frag, key[0..keylen)) for `txn`.
 * Returns KERN_LOCK_GRANTED, KERN_LOCK_WAITING, or
 *   NINES_EINVAL      bad mode (not S, X or INC), key longer than KERN_LOCK_KEY_MAX, txn 0
 *   NINES_ENOTPRIMARY the fragment's role is KERN_LOCK_STANDBY
 *   NINES_ESTATE      txn already has a request pending
 *   NINES_EABORTED    txn is DOOMED (an earlier wait was cancelled)
 *   NINES_EDEADLOCK   this request closes a wait-for cycle and txn is the
 *                     youngest in it; nothing was queued; detail names the
 *                     cycle; txn is DOOMED
 *   NINES_ENOMEM
 * `cookie` is echoed in the request's event. */
int kern_lock_acquire(struct kern_lock_mgr *m, uint64_t txn, uint32_t table,
                      uint32_t frag, const void *key, size_t keylen,
                      enum kern_lock_mode mode, uint64_t cookie);

/* Release every lock of `txn`, cancel its pending request if any (no event),
 * drop its undelivered events, and forget it (state NONE). Grants flow to
 * waiters. Returns the number of locks released (0 for an unknown txn). */
int kern_lock_release_all(struct kern_lock_mgr *m, uint64_t txn);

/* Deliver queued events in order; returns how many were delivered. A nested
 * call from inside a callback returns 0 (the outer call goes on). */
int kern_lock_dispatch(struct kern_lock_mgr *m);
/* Number of undelivered events. */
size_t kern_lock_pending(const struct kern_lock_mgr *m);

/* Set the current time; expire (NINES_ELOCKTIMEOUT) every wait that started
 * at least timeout_ms ago. A wait starts at the time of the last tick before
 * it was queued. Time never goes back (an older now_ms is ignored).
 * Returns the number of waits expired. */
/* How long txn may wait for a lock: timeout_ms plus a spread of up to half
 * of it derived from the txn id, so the members of a deadlock spanning
 * nodes time out one after the other (kernel/README.md "Timeout"). */
uint64_t kern_lock_patience_ms(const struct kern_lock_mgr *m, uint64_t txn);
int kern_lock_tick(struct kern_lock_mgr *m, uint64_t now_ms);

/* Raise (on) or lower (off) the shield of a fragment. While raised, every new
 * request on the fragment is queued behind it; lowering it processes them in
 * arrival order (grant, queue or deadlock). Returns 0, or for off the number
 * of requests released from behind the shield. */
int kern_lock_shield(struct kern_lock_mgr *m, uint32_t table, uint32_t frag, bool on);

/* Set a fragment's role. STANDBY is refused with NINES_ESTATE while the
 * fragment has locks, waiters or shielded requests. */
int kern_lock_set_role(struct kern_lock_mgr *m, uint32_t table, uint32_t frag,
                       enum kern_lock_role role);

/* Introspection. */
enum kern_lock_tstate kern_lock_txn_state(const struct kern_lock_mgr *m, uint64_t txn);
/* Locks held by txn (*held) and requests pending (*waiting, 0 or 1). */
void kern_lock_txn_counts(const struct kern_lock_mgr *m, uint64_t txn,
                          uint32_t *held, uint32_t *waiting);
/* Mode txn holds on the key (KERN_LOCK_NONE if none; X after an upgrade
 * from S or INC). */
enum kern_lock_mode kern_lock_held(const struct kern_lock_mgr *m, uint64_t txn,
                                   uint32_t table, uint32_t frag,
                                   const void *key, size_t keylen);
const char *kern_lock_tstate_name(enum kern_lock_tstate s);

struct kern_lock_stats {
    uint64_t heads;       /* lock heads in the table */
    uint64_t txns;        /* transactions with lock state */
    uint64_t held;        /* granted (txn, lock) pairs */
    uint64_t waiting;     /* requests queued on locks */
    uint64_t shielded;    /* requests queued behind shields */
    uint64_t grants_now;  /* requests granted at once (incl. re-entrant) */
    uint64_t grants_late; /* requests granted after waiting */
    uint64_t deadlocks;   /* cycles broken */
    uint64_t timeouts;    /* waits expired */
    uint64_t timeouts_spared; /* expired waits of an older txn given another period */
    uint64_t dl_searches; /* deadlock searches run */
    uint64_t dl_visits;   /* transactions visited by those searches */
};
void kern_lock_stats(const struct kern_lock_mgr *m, struct kern_lock_stats *st);

/* Full consistency check (O(size of the table)): queues, counts, modes,
 * transaction states, wait-for edges, no cycle left. 0 or NINES_ECORRUPT
 * with a detail naming the first broken rule. For tests and debug builds. */
int kern_lock_check(const struct kern_lock_mgr *m);

#endif
