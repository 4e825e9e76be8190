/* Lock manager internals shared by kern_lock.c, kern_deadlock.c and
 * kern_lock_check.c (internal to those files). */
#ifndef NINES_KERN_LOCK_INT_H
#define NINES_KERN_LOCK_INT_H

#include "nhash.h"
#include "kern_lock.h"

#include <stdbool.h>
#include <stdint.h>

/* Where a pending request sits. */
enum lk_wstate {
    LK_W_NONE = 0, /* not pending */
    LK_W_QUEUED,   /* in its head's wait queue */
    LK_W_SHIELDED, /* in its fragment's shield queue */
};

struct lk_head;
struct lk_txn;

/* One transaction's hold on, and/or pending request for, one lock head.
 * There is at most one lk_req per (txn, head). */
struct lk_req {
    struct lk_head *head;
    struct lk_txn *txn;
    struct lk_req *g_next, *g_prev; /* head's granted list (granted != 0) */
    struct lk_req *h_next, *h_prev; /* txn's held list (granted != 0) */
    struct lk_req *w_next, *w_prev; /* wait queue or shield queue (pending) */
    struct lk_req *t_next, *t_prev; /* manager's wait list, by start time */
    uint64_t cookie;
    uint64_t since_ms; /* wait start */
    uint64_t deadline_ms; /* since_ms + the txn's patience (lk_patience_ms) */
    uint8_t granted;   /* KERN_LOCK_NONE / S / X / INC */
    uint8_t want;      /* mode to hold once granted while pending (an
                          upgrade's is X; behind a shield: as requested),
                          else NONE */
    uint8_t wstate;    /* enum lk_wstate */
};

/* One named lock. Freed when nobody holds, waits for, or is shielded on it. */
struct lk_head {
    struct lk_head *hnext; /* hash chain */
    uint64_t hash;
    uint32_t table, frag;
    struct lk_req *granted;            /* holders, newest first */
    struct lk_req *wq_first, *wq_last; /* FIFO wait queue (upgrades first) */
    uint32_t ns, nx, ni;               /* holders in S / X / INC */
    uint32_t nwait;                    /* requests in wq */
    uint32_t nshield;                  /* requests for it behind a shield */
    uint32_t keylen;
    unsigned char key[];
};

struct lk_txn {
    struct lk_txn *hnext; /* hash chain */
    uint64_t id;
    enum kern_lock_tstate state;
    int doom_err;         /* DOOMED: why */
    struct lk_req *held;  /* granted requests */
    struct lk_req *wait;  /* pending request, or NULL */
    uint32_t nheld;
    uint64_t dl_mark;     /* deadlock search epoch last visiting it */
    uint8_t ck_color;     /* kern_lock_check cycle search */
    /* The one undelivered event (a txn has at most one: it is posted when
     * its wait ends, and a txn with an undelivered event cannot wait). */
    bool ev_pending;
    struct lk_txn *ev_next, *ev_prev; /* manager's event FIFO */
    uint64_t ev_cookie;
    uint32_t ev_table, ev_frag;
    uint8_t ev_mode;
    int ev_err;
    char *ev_detail; /* malloc'd, failures only; NULL: use nines_strerror */
};

struct lk_frag {
    struct lk_frag *hnext;
    uint32_t table, frag;
    uint8_t role;   /* enum kern_lock_role */
    uint8_t shield; /* raised */
    struct lk_req *sq_first, *sq_last; /* shield queue */
    uint32_t nsq;
};

/* A deadlock search frame: a waiting txn and where its edge scan stands. */
struct lk_dlframe {
    struct lk_txn *txn;
    struct lk_req *cur; /* next candidate in the current phase */
    int phase;          /* 0: holders, 1: earlier waiters, 2: done */
};

struct kern_lock_mgr {
    struct kern_lock_conf conf;
    struct kern_lock_cb cb;
    uint64_t now_ms;

    struct lk_head **heads; size_t nbheads, nheads;
    struct lk_txn **txns;   size_t nbtxns, ntxns;
    struct lk_frag **frags; size_t nbfrags, nfrags;

    struct lk_req *wl_first, *wl_last; /* every pending request, by deadline_ms */

    struct lk_txn *ev_first, *ev_last; size_t nev; /* undelivered events */
    bool dispatching;
    struct lk_txn *sync_txn; /* acquire in progress: its grant is returned, not an event */

    struct lk_dlframe *dl; size_t dlcap;
    uint64_t dl_epoch;

    struct kern_lock_stats st;
};

/* S/S and INC/INC are compatible; everything else conflicts. */
static inline bool lk_compat(unsigned a, unsigned b)
{
    return a == b && (a == KERN_LOCK_S || a == KERN_LOCK_INC);
}

/* Does a held mode cover a requested one (re-entrant request)? */
static inline bool lk_covers(unsigned held, unsigned want)
{
    return held != KERN_LOCK_NONE && (held == want || held == KERN_LOCK_X);
}

/* The mode to hold when `held` (NONE, S, INC) asks for `want` it does not
 * cover: the request itself when nothing is held, else X (the join). */
static inline unsigned lk_target(unsigned held, unsigned want)
{
    return held == KERN_LOCK_NONE ? want : KERN_LOCK_X;
}

static inline uint64_t lk_mix(uint64_t h) { return nhash_fmix64(h); }

static inline size_t lk_txn_slot(uint64_t id, size_t nb) { return (size_t)(lk_mix(id) & (nb - 1)); }
static inline size_t lk_frag_slot(uint32_t table, uint32_t frag, size_t nb)
{
    return (size_t)(lk_mix((uint64_t)table << 32 | frag) & (nb - 1));
}

/* Could a request of `want` by a holder of `held` be granted given the
 * holders of h alone (ignoring queue order)? An upgrade (holds S or INC,
 * wants X) needs to be the only holder. */
static inline bool lk_grantable_mode(const struct lk_head *h, unsigned held, unsigned want)
{
    if (held != KERN_LOCK_NONE)
        return h->ns + h->ni + h->nx == 1;
    switch (want) {
    case KERN_LOCK_S:
        return h->nx == 0 && h->ni == 0;
    case KERN_LOCK_INC:
        return h->nx == 0 && h->ns == 0;
    default:
        return h->ns + h->ni + h->nx == 0;
    }
}

static inline bool lk_grantable(const struct lk_head *h, const struct lk_req *r)
{
    return lk_grantable_mode(h, r->granted, r->want);
}

/* kern_deadlock.c */
/* Next txn `f->txn` waits for (wait-for edge), or NULL when exhausted. */
struct lk_txn *kern_lock_dl_next(struct lk_dlframe *f);
/* Search for a wait-for cycle through `t` (which must be waiting on a lock
 * queue). On a cycle return its victim (youngest = highest id) and write a
 * description into buf; else NULL. Never allocates: m->dl holds at least
 * one frame per transaction (kern_lock.c grows it when adding one). */
struct lk_txn *kern_lock_dl_find(struct kern_lock_mgr *m, struct lk_txn *t,
                                 char *buf, size_t cap);
/* Append "table T fragment F key HEX" for `h` to buf at *off. */
void kern_lock_dl_name(char *buf, size_t cap, size_t *off, const struct lk_head *h);
/* snprintf-append to buf at *off; on overflow the text ends in "...". */
void kern_lock_dl_app(char *buf, size_t cap, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "S" / "X" / "INC" / "-" */
const char *kern_lock_mode_name(unsigned mode);

#endif
