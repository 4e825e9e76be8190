/* Record lock manager: lock table, FIFO queues, grants, strict 2PL release,
 * fragment shields and roles, timeouts and event delivery.
 * Deadlock search: kern_deadlock.c. Consistency check: kern_lock_check.c.
 * Design: kernel/README.md "Record locks". Single-threaded by construction (one
 * manager per executor thread); no mutexes. */
#include "kern_lock_int.h"

#include "nassert.h"
#include "nines/errors.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LK_DEFAULT_BUCKETS 1024u
#define LK_MIN_BUCKETS 16u
#define LK_DETAIL_MAX 480 /* fits nines_err's 512-byte detail */

/* ---- hashing ---------------------------------------------------------- */

static uint64_t lk_hash(uint32_t table, uint32_t frag, const unsigned char *k, size_t n)
{
    uint64_t h = lk_mix(((uint64_t)table << 32 | frag) ^ (0x9e3779b97f4a7c15ull + n));
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, k, 8);
        h = (h ^ w) * 0x9fb21c651e98df25ull;
        h ^= h >> 29;
        k += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n)
        memcpy(&w, k, n);
    h = (h ^ w ^ ((uint64_t)n << 56)) * 0x9fb21c651e98df25ull;
    return lk_mix(h);
}

static size_t lk_pow2(size_t n)
{
    size_t p = LK_MIN_BUCKETS;
    while (p < n)
        p <<= 1;
    return p;
}

/* Each table doubles when its count exceeds its bucket count; a failed
 * growth only leaves chains longer. Tables never shrink. */
static void lk_heads_grow(struct kern_lock_mgr *m)
{
    size_t nb = m->nbheads * 2;
    struct lk_head **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < m->nbheads; i++)
        for (struct lk_head *h = m->heads[i], *nx; h; h = nx) {
            nx = h->hnext;
            size_t s = (size_t)(h->hash & (nb - 1));
            h->hnext = b[s];
            b[s] = h;
        }
    free(m->heads);
    m->heads = b;
    m->nbheads = nb;
}

static void lk_txns_grow(struct kern_lock_mgr *m)
{
    size_t nb = m->nbtxns * 2;
    struct lk_txn **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < m->nbtxns; i++)
        for (struct lk_txn *t = m->txns[i], *nx; t; t = nx) {
            nx = t->hnext;
            size_t s = lk_txn_slot(t->id, nb);
            t->hnext = b[s];
            b[s] = t;
        }
    free(m->txns);
    m->txns = b;
    m->nbtxns = nb;
}

static void lk_frags_grow(struct kern_lock_mgr *m)
{
    size_t nb = m->nbfrags * 2;
    struct lk_frag **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < m->nbfrags; i++)
        for (struct lk_frag *f = m->frags[i], *nx; f; f = nx) {
            nx = f->hnext;
            size_t s = lk_frag_slot(f->table, f->frag, nb);
            f->hnext = b[s];
            b[s] = f;
        }
    free(m->frags);
    m->frags = b;
    m->nbfrags = nb;
}

/* ---- lookups ---------------------------------------------------------- */

static struct lk_head *lk_head_find(const struct kern_lock_mgr *m, uint32_t table, uint32_t frag,
                                    const void *key, size_t keylen, uint64_t hash)
{
    for (struct lk_head *h = m->heads[hash & (m->nbheads - 1)]; h; h = h->hnext)
        if (h->hash == hash && h->table == table && h->frag == frag && h->keylen == keylen &&
            (keylen == 0 || memcmp(h->key, key, keylen) == 0))
            return h;
    return NULL;
}

static struct lk_txn *lk_txn_find(const struct kern_lock_mgr *m, uint64_t id)
{
    for (struct lk_txn *t = m->txns[lk_txn_slot(id, m->nbtxns)]; t; t = t->hnext)
        if (t->id == id)
            return t;
    return NULL;
}

static struct lk_frag *lk_frag_find(const struct kern_lock_mgr *m, uint32_t table, uint32_t frag)
{
    if (m->nfrags == 0)
        return NULL;
    for (struct lk_frag *f = m->frags[lk_frag_slot(table, frag, m->nbfrags)]; f; f = f->hnext)
        if (f->table == table && f->frag == frag)
            return f;
    return NULL;
}

/* The request of txn t on h, if t holds it (a pending request of t is t->wait). */
static struct lk_req *lk_req_of(const struct lk_head *h, const struct lk_txn *t)
{
    for (struct lk_req *g = h->granted; g; g = g->g_next)
        if (g->txn == t)
            return g;
    return NULL;
}

/* ---- creation and removal ---------------------------------------------- */

static struct lk_head *lk_head_new(struct kern_lock_mgr *m, uint32_t table, uint32_t frag,
                                   const void *key, size_t keylen, uint64_t hash)
{
    struct lk_head *h = calloc(1, sizeof *h + keylen);
    if (!h)
        return NULL;
    h->hash = hash;
    h->table = table;
    h->frag = frag;
    h->keylen = (uint32_t)keylen;
    if (keylen)
        memcpy(h->key, key, keylen);
    size_t s = (size_t)(hash & (m->nbheads - 1));
    h->hnext = m->heads[s];
    m->heads[s] = h;
    if (++m->nheads > m->nbheads)
        lk_heads_grow(m);
    return h;
}

static void lk_head_maybe_free(struct kern_lock_mgr *m, struct lk_head *h)
{
    if (h->granted || h->wq_first || h->nshield)
        return;
    N_ASSERT(h->ns == 0 && h->nx == 0 && h->nwait == 0);
    struct lk_head **pp = &m->heads[h->hash & (m->nbheads - 1)];
    while (*pp != h)
        pp = &(*pp)->hnext;
    *pp = h->hnext;
    m->nheads--;
    free(h);
}

/* Keep m->dl able to hold one frame per transaction, so that the deadlock
 * search never allocates. */
static int lk_dl_reserve(struct kern_lock_mgr *m, size_t n)
{
    if (n <= m->dlcap)
        return 0;
    size_t cap = m->dlcap ? m->dlcap * 2 : 64;
    while (cap < n)
        cap *= 2;
    struct lk_dlframe *d = realloc(m->dl, cap * sizeof *d);
    if (!d)
        return NINES_ENOMEM;
    m->dl = d;
    m->dlcap = cap;
    return 0;
}

static struct lk_txn *lk_txn_new(struct kern_lock_mgr *m, uint64_t id)
{
    if (lk_dl_reserve(m, m->ntxns + 1) != 0)
        return NULL;
    struct lk_txn *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->id = id;
    t->state = KERN_LOCK_T_ACTIVE;
    size_t s = lk_txn_slot(id, m->nbtxns);
    t->hnext = m->txns[s];
    m->txns[s] = t;
    if (++m->ntxns > m->nbtxns)
        lk_txns_grow(m);
    return t;
}

static void lk_txn_unhash(struct kern_lock_mgr *m, struct lk_txn *t)
{
    struct lk_txn **pp = &m->txns[lk_txn_slot(t->id, m->nbtxns)];
    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    m->ntxns--;
}

static struct lk_frag *lk_frag_new(struct kern_lock_mgr *m, uint32_t table, uint32_t frag)
{
    struct lk_frag *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->table = table;
    f->frag = frag;
    size_t s = lk_frag_slot(table, frag, m->nbfrags);
    f->hnext = m->frags[s];
    m->frags[s] = f;
    if (++m->nfrags > m->nbfrags)
        lk_frags_grow(m);
    return f;
}

/* A fragment entry exists only while it differs from the default
 * (primary, no shield, nothing queued). */
static void lk_frag_maybe_free(struct kern_lock_mgr *m, struct lk_frag *f)
{
    if (f->role != KERN_LOCK_PRIMARY || f->shield || f->sq_first)
        return;
    struct lk_frag **pp = &m->frags[lk_frag_slot(f->table, f->frag, m->nbfrags)];
    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
    m->nfrags--;
    free(f);
}

static struct lk_req *lk_req_new(struct lk_head *h, struct lk_txn *t, uint64_t cookie)
{
    struct lk_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->head = h;
    r->txn = t;
    r->cookie = cookie;
    return r;
}

/* ---- transaction state machine ------------------------------------------ */

enum lk_tev {
    LK_TEV_WAIT,   /* a request is queued */
    LK_TEV_GRANT,  /* the pending request is granted */
    LK_TEV_CANCEL, /* the pending request is cancelled (deadlock, timeout) */
};

/* Transitions the manager itself drives; anything else is a bug here, not
 * bad input (requests in a wrong state are refused in kern_lock_acquire). */
static void lk_txn_step(struct lk_txn *t, enum lk_tev ev, int err)
{
    switch (t->state) {
    case KERN_LOCK_T_ACTIVE:
        if (ev == LK_TEV_WAIT) {
            t->state = KERN_LOCK_T_WAITING;
            return;
        }
        break;
    case KERN_LOCK_T_WAITING:
        if (ev == LK_TEV_GRANT) {
            t->state = KERN_LOCK_T_ACTIVE;
            return;
        }
        if (ev == LK_TEV_CANCEL) {
            t->state = KERN_LOCK_T_DOOMED;
            t->doom_err = err;
            return;
        }
        break;
    case KERN_LOCK_T_DOOMED:
    case KERN_LOCK_T_NONE:
        break;
    default:
        break;
    }
    nines_assert_fail("illegal lock state transition", __FILE__, __LINE__);
}

const char *kern_lock_tstate_name(enum kern_lock_tstate s)
{
    switch (s) {
    case KERN_LOCK_T_NONE:
        return "none";
    case KERN_LOCK_T_ACTIVE:
        return "active";
    case KERN_LOCK_T_WAITING:
        return "waiting";
    case KERN_LOCK_T_DOOMED:
        return "doomed";
    default:
        return "?";
    }
}

/* ---- lists -------------------------------------------------------------- */

/* A waiter's patience: the configured timeout plus a spread of up to half
 * of it derived from the transaction id (0 when there is no timeout). The members of a deadlock that
 * spans nodes (no single wait-for graph sees it) then time out one after
 * the other instead of together: the first to give up is aborted, releases
 * its locks, and the others go on. */
uint64_t kern_lock_patience_ms(const struct kern_lock_mgr *m, uint64_t txn)
{
    if (m->conf.timeout_ms == 0)
        return 0;
    uint64_t x = lk_mix(txn);
    return m->conf.timeout_ms + x % ((uint64_t)m->conf.timeout_ms / 2 + 1);
}

/* Insert r into the list of waiters ordered by deadline (from the tail:
 * most new waiters have the latest deadline). */
static void lk_wl_insert(struct kern_lock_mgr *m, struct lk_req *r)
{
    struct lk_req *after = m->wl_last;
    while (after && after->deadline_ms > r->deadline_ms)
        after = after->t_prev;
    r->t_prev = after;
    r->t_next = after ? after->t_next : m->wl_first;
    if (r->t_next)
        r->t_next->t_prev = r;
    else
        m->wl_last = r;
    if (after)
        after->t_next = r;
    else
        m->wl_first = r;
}

static void lk_wl_append(struct kern_lock_mgr *m, struct lk_req *r)
{
    r->since_ms = m->now_ms;
    r->deadline_ms = m->now_ms + kern_lock_patience_ms(m, r->txn->id);
    lk_wl_insert(m, r);
}

static void lk_wl_unlink(struct kern_lock_mgr *m, struct lk_req *r)
{
    if (r->t_prev)
        r->t_prev->t_next = r->t_next;
    else
        m->wl_first = r->t_next;
    if (r->t_next)
        r->t_next->t_prev = r->t_prev;
    else
        m->wl_last = r->t_prev;
    r->t_next = r->t_prev = NULL;
}

/* Wait queue of a head: upgrades (requests whose txn already holds S)
 * stand at the front, in arrival order; then everybody else in FIFO order. */
static void lk_wq_insert(struct lk_head *h, struct lk_req *r)
{
    struct lk_req *after = NULL;
    if (r->granted != KERN_LOCK_NONE)
        for (struct lk_req *q = h->wq_first; q && q->granted != KERN_LOCK_NONE; q = q->w_next)
            after = q;
    else
        after = h->wq_last;
    r->w_prev = after;
    r->w_next = after ? after->w_next : h->wq_first;
    if (r->w_prev)
        r->w_prev->w_next = r;
    else
        h->wq_first = r;
    if (r->w_next)
        r->w_next->w_prev = r;
    else
        h->wq_last = r;
    h->nwait++;
}

static void lk_wq_unlink(struct lk_head *h, struct lk_req *r)
{
    if (r->w_prev)
        r->w_prev->w_next = r->w_next;
    else
        h->wq_first = r->w_next;
    if (r->w_next)
        r->w_next->w_prev = r->w_prev;
    else
        h->wq_last = r->w_prev;
    r->w_next = r->w_prev = NULL;
    h->nwait--;
}

static void lk_sq_append(struct lk_frag *f, struct lk_req *r)
{
    r->w_next = NULL;
    r->w_prev = f->sq_last;
    if (f->sq_last)
        f->sq_last->w_next = r;
    else
        f->sq_first = r;
    f->sq_last = r;
    f->nsq++;
}

static void lk_sq_unlink(struct lk_frag *f, struct lk_req *r)
{
    if (r->w_prev)
        r->w_prev->w_next = r->w_next;
    else
        f->sq_first = r->w_next;
    if (r->w_next)
        r->w_next->w_prev = r->w_prev;
    else
        f->sq_last = r->w_prev;
    r->w_next = r->w_prev = NULL;
    f->nsq--;
}

/* ---- events ------------------------------------------------------------- */

static void lk_ev_post(struct kern_lock_mgr *m, struct lk_txn *t, const struct lk_req *r,
                       uint8_t mode, int err, const char *detail)
{
    N_ASSERT(!t->ev_pending);
    t->ev_pending = true;
    t->ev_cookie = r->cookie;
    t->ev_table = r->head->table;
    t->ev_frag = r->head->frag;
    t->ev_mode = mode;
    t->ev_err = err;
    t->ev_detail = detail ? strdup(detail) : NULL; /* NULL: generic text */
    t->ev_next = NULL;
    t->ev_prev = m->ev_last;
    if (m->ev_last)
        m->ev_last->ev_next = t;
    else
        m->ev_first = t;
    m->ev_last = t;
    m->nev++;
}

static void lk_ev_unlink(struct kern_lock_mgr *m, struct lk_txn *t)
{
    if (!t->ev_pending)
        return;
    if (t->ev_prev)
        t->ev_prev->ev_next = t->ev_next;
    else
        m->ev_first = t->ev_next;
    if (t->ev_next)
        t->ev_next->ev_prev = t->ev_prev;
    else
        m->ev_last = t->ev_prev;
    t->ev_next = t->ev_prev = NULL;
    t->ev_pending = false;
    m->nev--;
}

int kern_lock_dispatch(struct kern_lock_mgr *m)
{
    if (m->dispatching)
        return 0;
    m->dispatching = true;
    int n = 0;
    struct lk_txn *t;
    while ((t = m->ev_first) != NULL) {
        lk_ev_unlink(m, t);
        char *detail = t->ev_detail;
        t->ev_detail = NULL;
        struct kern_lock_event ev = {
            .txn = t->id, .cookie = t->ev_cookie, .table = t->ev_table, .frag = t->ev_frag,
            .mode = (enum kern_lock_mode)t->ev_mode, .err = t->ev_err,
            .detail = detail ? detail : (t->ev_err ? nines_strerror(t->ev_err) : ""),
        };
        /* t may be released (freed) by the callback: only `ev` from here on. */
        if (ev.err == 0) {
            if (m->cb.on_grant)
                m->cb.on_grant(m->cb.ctx, ev.txn, &ev);
        } else {
            nines_err(ev.err, "%s", ev.detail);
            if (m->cb.on_fail)
                m->cb.on_fail(m->cb.ctx, ev.txn, &ev);
        }
        free(detail);
        n++;
    }
    m->dispatching = false;
    return n;
}

size_t kern_lock_pending(const struct kern_lock_mgr *m)
{
    return m->nev;
}

/* ---- granting ------------------------------------------------------------ */

static void lk_count(struct lk_head *h, unsigned mode, int d)
{
    switch (mode) {
    case KERN_LOCK_S:
        h->ns += (uint32_t)d;
        break;
    case KERN_LOCK_X:
        h->nx += (uint32_t)d;
        break;
    case KERN_LOCK_INC:
        h->ni += (uint32_t)d;
        break;
    default:
        nines_assert_fail("lock count of an unknown mode", __FILE__, __LINE__);
    }
}

/* Give r the mode `mode` (new hold, or an upgrade of S or INC to X). */
static void lk_grant(struct kern_lock_mgr *m, struct lk_req *r, unsigned mode)
{
    struct lk_head *h = r->head;
    struct lk_txn *t = r->txn;
    if (r->granted == KERN_LOCK_NONE) {
        r->g_prev = NULL;
        r->g_next = h->granted;
        if (h->granted)
            h->granted->g_prev = r;
        h->granted = r;
        r->h_prev = NULL;
        r->h_next = t->held;
        if (t->held)
            t->held->h_prev = r;
        t->held = r;
        t->nheld++;
        m->st.held++;
    } else {
        N_ASSERT((r->granted == KERN_LOCK_S || r->granted == KERN_LOCK_INC) &&
                 mode == KERN_LOCK_X);
        lk_count(h, r->granted, -1);
    }
    r->granted = (uint8_t)mode;
    lk_count(h, mode, +1);
    N_ASSERT(h->nx <= 1 && (h->nx == 0 || h->ns + h->ni == 0) && (h->ns == 0 || h->ni == 0));
}

/* Grant from the front of h's queue while the front is grantable: several
 * S requests in a row are granted together; the first that is not stops
 * the walk (FIFO, no overtaking). m->sync_txn's grant is not posted: its
 * caller returns it. */
static void lk_grant_waiters(struct kern_lock_mgr *m, struct lk_head *h)
{
    struct lk_req *r;
    while ((r = h->wq_first) != NULL && lk_grantable(h, r)) {
        struct lk_txn *t = r->txn;
        unsigned mode = r->want;
        lk_wq_unlink(h, r);
        lk_wl_unlink(m, r);
        lk_grant(m, r, mode);
        r->want = KERN_LOCK_NONE;
        r->wstate = LK_W_NONE;
        t->wait = NULL;
        lk_txn_step(t, LK_TEV_GRANT, 0);
        m->st.grants_late++;
        if (t != m->sync_txn)
            lk_ev_post(m, t, r, (uint8_t)mode, 0, NULL);
    }
}

/* End t's pending request r without granting it. With err != 0 the txn
 * becomes DOOMED and, with post set, gets an on_fail event; err == 0 is the
 * silent cancel of release_all. The head's queue then moves on. */
static void lk_cancel_wait(struct kern_lock_mgr *m, struct lk_req *r, int err, const char *detail,
                           bool post)
{
    struct lk_txn *t = r->txn;
    struct lk_head *h = r->head;
    unsigned mode = r->want;
    int ws = r->wstate;
    N_ASSERT(t->wait == r);
    switch (ws) {
    case LK_W_QUEUED:
        lk_wq_unlink(h, r);
        break;
    case LK_W_SHIELDED: {
        struct lk_frag *f = lk_frag_find(m, h->table, h->frag);
        N_ASSERT(f != NULL);
        lk_sq_unlink(f, r);
        h->nshield--;
        lk_frag_maybe_free(m, f);
        break;
    }
    default:
        nines_assert_fail("cancel of a request that is not pending", __FILE__, __LINE__);
    }
    lk_wl_unlink(m, r);
    r->wstate = LK_W_NONE;
    r->want = KERN_LOCK_NONE;
    t->wait = NULL;
    if (err != 0) {
        lk_txn_step(t, LK_TEV_CANCEL, err);
        if (post)
            lk_ev_post(m, t, r, (uint8_t)mode, err, detail);
    }
    if (r->granted == KERN_LOCK_NONE)
        free(r);
    if (ws == LK_W_QUEUED)
        lk_grant_waiters(m, h);
    lk_head_maybe_free(m, h);
}

/* Run deadlock searches for t, which just started to wait on a lock queue,
 * until no cycle through t is left. A victim other than t gets an on_fail
 * event; t as victim is cancelled here and NINES_EDEADLOCK returned (with
 * the detail set), posted as an event too when `post` is set. */
static int lk_resolve(struct kern_lock_mgr *m, struct lk_txn *t, bool post)
{
    char buf[LK_DETAIL_MAX];
    for (;;) {
        if (t->wait == NULL)
            return KERN_LOCK_GRANTED; /* a victim's cancel let t through */
        struct lk_txn *v = kern_lock_dl_find(m, t, buf, sizeof buf);
        if (!v)
            return KERN_LOCK_WAITING;
        m->st.deadlocks++;
        lk_cancel_wait(m, v->wait, NINES_EDEADLOCK, buf, post || v != t);
        if (v == t)
            return nines_err(NINES_EDEADLOCK, "%s", buf);
    }
}

/* Place r (t's request for `mode`; r is new, or t holds S or INC and mode
 * is X: the target of lk_target) on its head: grant at once or queue and search for deadlocks.
 * from_shield: r comes from a shield queue, t is WAITING with r in the
 * wait list already, and outcomes are posted as events by the caller
 * (grant) or lk_resolve (deadlock). */
static int lk_place(struct kern_lock_mgr *m, struct lk_req *r, unsigned mode, bool from_shield)
{
    struct lk_head *h = r->head;
    struct lk_txn *t = r->txn;
    /* An upgrade by the sole holder is granted at once; a new request only
     * when nobody waits and it is compatible with every holder. */
    bool now = (r->granted != KERN_LOCK_NONE || h->wq_first == NULL) &&
               lk_grantable_mode(h, r->granted, mode);
    if (now) {
        lk_grant(m, r, mode);
        m->st.grants_now++;
        if (from_shield) {
            lk_wl_unlink(m, r);
            t->wait = NULL;
            lk_txn_step(t, LK_TEV_GRANT, 0);
        }
        return KERN_LOCK_GRANTED;
    }
    r->want = (uint8_t)mode;
    r->wstate = LK_W_QUEUED;
    lk_wq_insert(h, r);
    if (!from_shield) {
        t->wait = r;
        lk_wl_append(m, r);
        lk_txn_step(t, LK_TEV_WAIT, 0);
    }
    return lk_resolve(m, t, from_shield);
}

/* ---- public API ----------------------------------------------------------- */

struct kern_lock_mgr *kern_lock_new(const struct kern_lock_conf *conf, const struct kern_lock_cb *cb)
{
    struct kern_lock_mgr *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (conf)
        m->conf = *conf;
    if (cb)
        m->cb = *cb;
    m->nbheads = lk_pow2(m->conf.initial_buckets ? m->conf.initial_buckets : LK_DEFAULT_BUCKETS);
    m->nbtxns = LK_MIN_BUCKETS * 4;
    m->nbfrags = LK_MIN_BUCKETS;
    m->heads = calloc(m->nbheads, sizeof *m->heads);
    m->txns = calloc(m->nbtxns, sizeof *m->txns);
    m->frags = calloc(m->nbfrags, sizeof *m->frags);
    if (!m->heads || !m->txns || !m->frags || lk_dl_reserve(m, 64) != 0) {
        kern_lock_free(m);
        return NULL;
    }
    return m;
}

void kern_lock_free(struct kern_lock_mgr *m)
{
    if (!m)
        return;
    for (size_t i = 0; m->txns && i < m->nbtxns; i++)
        for (struct lk_txn *t = m->txns[i], *nt; t; t = nt) {
            nt = t->hnext;
            if (t->wait && t->wait->granted == KERN_LOCK_NONE)
                free(t->wait);
            for (struct lk_req *r = t->held, *nr; r; r = nr) {
                nr = r->h_next;
                free(r);
            }
            free(t->ev_detail);
            free(t);
        }
    for (size_t i = 0; m->heads && i < m->nbheads; i++)
        for (struct lk_head *h = m->heads[i], *nh; h; h = nh) {
            nh = h->hnext;
            free(h);
        }
    for (size_t i = 0; m->frags && i < m->nbfrags; i++)
        for (struct lk_frag *f = m->frags[i], *nf; f; f = nf) {
            nf = f->hnext;
            free(f);
        }
    free(m->heads);
    free(m->txns);
    free(m->frags);
    free(m->dl);
    free(m);
}

int kern_lock_acquire(struct kern_lock_mgr *m, uint64_t txn, uint32_t table, uint32_t frag,
                      const void *key, size_t keylen, enum kern_lock_mode mode, uint64_t cookie)
{
    if (mode != KERN_LOCK_S && mode != KERN_LOCK_X && mode != KERN_LOCK_INC)
        return nines_err(NINES_EINVAL, "lock mode %d is not S (1), X (2) or INC (3)", (int)mode);
    if (txn == 0)
        return nines_err(NINES_EINVAL, "transaction id 0 cannot lock");
    if (keylen > KERN_LOCK_KEY_MAX)
        return nines_err(NINES_EINVAL, "lock key of %zu bytes is longer than the maximum %d",
                         keylen, KERN_LOCK_KEY_MAX);
    if (keylen && !key)
        return nines_err(NINES_EINVAL, "lock key pointer is NULL with length %zu", keylen);
    struct lk_frag *f = lk_frag_find(m, table, frag);
    if (f && f->role == KERN_LOCK_STANDBY)
        return nines_err(NINES_ENOTPRIMARY,
                         "table %" PRIu32 " fragment %" PRIu32
                         " is a hot standby here: it takes no record locks (txn %" PRIu64 ")",
                         table, frag, txn);

    struct lk_txn *t = lk_txn_find(m, txn);
    if (t) {
        switch (t->state) {
        case KERN_LOCK_T_ACTIVE:
            if (t->ev_pending)
                return nines_err(NINES_ESTATE,
                                 "txn %" PRIu64 " has an undelivered lock grant; "
                                 "kern_lock_dispatch() first",
                                 txn);
            break;
        case KERN_LOCK_T_WAITING:
            return nines_err(NINES_ESTATE, "txn %" PRIu64 " already waits for a lock", txn);
        case KERN_LOCK_T_DOOMED:
            return nines_err(NINES_EABORTED,
                             "txn %" PRIu64 " must abort: its lock wait was cancelled (%s)", txn,
                             nines_strerror(t->doom_err));
        case KERN_LOCK_T_NONE:
        default:
            return nines_err(NINES_ESTATE, "txn %" PRIu64 " is in lock state %d", txn,
                             (int)t->state);
        }
    }
    bool new_txn = t == NULL;
    if (new_txn && !(t = lk_txn_new(m, txn)))
        return nines_err(NINES_ENOMEM, "no memory for the lock state of txn %" PRIu64, txn);

    uint64_t hash = lk_hash(table, frag, key, keylen);
    struct lk_head *h = lk_head_find(m, table, frag, key, keylen, hash);
    struct lk_req *r = NULL;
    if (h)
        r = lk_req_of(h, t);
    else if (!(h = lk_head_new(m, table, frag, key, keylen, hash)))
        goto nomem;

    if (f && f->shield) {
        /* Everything on a shielded fragment queues, re-entrant requests too. */
        if (!r && !(r = lk_req_new(h, t, cookie)))
            goto nomem;
        r->cookie = cookie;
        r->want = (uint8_t)mode;
        r->wstate = LK_W_SHIELDED;
        h->nshield++;
        lk_sq_append(f, r);
        t->wait = r;
        lk_wl_append(m, r);
        lk_txn_step(t, LK_TEV_WAIT, 0);
        return KERN_LOCK_WAITING;
    }
    if (r && lk_covers(r->granted, mode)) {
        m->st.grants_now++; /* re-entrant: already covered */
        return KERN_LOCK_GRANTED;
    }
    if (!r && !(r = lk_req_new(h, t, cookie)))
        goto nomem;
    r->cookie = cookie;
    m->sync_txn = t;
    int rc = lk_place(m, r, lk_target(r->granted, mode), false);
    m->sync_txn = NULL;
    return rc;

nomem:
    if (h)
        lk_head_maybe_free(m, h);
    if (new_txn) {
        lk_txn_unhash(m, t);
        free(t);
    }
    return nines_err(NINES_ENOMEM, "no memory for a lock of txn %" PRIu64, txn);
}

int kern_lock_release_all(struct kern_lock_mgr *m, uint64_t txn)
{
    struct lk_txn *t = lk_txn_find(m, txn);
    if (!t)
        return 0;
    if (t->wait)
        lk_cancel_wait(m, t->wait, 0, NULL, false);
    lk_ev_unlink(m, t);
    int n = 0;
    struct lk_req *r;
    while ((r = t->held) != NULL) {
        struct lk_head *h = r->head;
        t->held = r->h_next;
        if (r->g_prev)
            r->g_prev->g_next = r->g_next;
        else
            h->granted = r->g_next;
        if (r->g_next)
            r->g_next->g_prev = r->g_prev;
        lk_count(h, r->granted, -1);
        free(r);
        t->nheld--;
        m->st.held--;
        n++;
        lk_grant_waiters(m, h);
        lk_head_maybe_free(m, h);
    }
    N_ASSERT(t->nheld == 0);
    free(t->ev_detail);
    lk_txn_unhash(m, t);
    free(t);
    return n;
}

/* A deadlock whose cycle crosses nodes is invisible to every local
 * wait-for graph, so its members meet their deadlines, each on its own
 * node. To abort exactly one, as for a local cycle, the youngest (highest
 * id) decides: a waiter older than every transaction it waits for is spared
 * and waits another patience period, because in any cycle the youngest
 * member waits for an older one and is the one that times out. A spared
 * waiter still gives up after LK_SPARE_MAX_FACTOR patience periods in all,
 * so a wait behind a stuck (not deadlocked) younger holder ends too.
 * Shielded waits have no blocker and are never spared. */
#define LK_SPARE_MAX_FACTOR 4
static bool lk_timeout_spares(struct kern_lock_mgr *m, const struct lk_req *r)
{
    if (r->wstate != LK_W_QUEUED)
        return false;
    uint64_t patience = kern_lock_patience_ms(m, r->txn->id);
    if (m->now_ms - r->since_ms >= LK_SPARE_MAX_FACTOR * patience)
        return false;
    struct lk_dlframe f = {.txn = r->txn, .cur = r->head->granted, .phase = 0};
    bool any = false;
    for (struct lk_txn *b; (b = kern_lock_dl_next(&f)) != NULL;) {
        if (b->id > r->txn->id)
            any = true;      /* a younger blocker: spare r */
        else
            return false;    /* r is younger than one of its blockers */
    }
    return any;
}

int kern_lock_tick(struct kern_lock_mgr *m, uint64_t now_ms)
{
    if (now_ms > m->now_ms)
        m->now_ms = now_ms;
    if (m->conf.timeout_ms == 0)
        return 0;
    int n = 0;
    struct lk_req *r;
    while ((r = m->wl_first) != NULL && r->deadline_ms <= m->now_ms) {
        if (lk_timeout_spares(m, r)) {
            /* an older waiter waits again: a younger blocker gives way */
            lk_wl_unlink(m, r);
            r->deadline_ms = m->now_ms + kern_lock_patience_ms(m, r->txn->id);
            lk_wl_insert(m, r);
            m->st.timeouts_spared++;
            continue;
        }
        char buf[LK_DETAIL_MAX];
        size_t off = 0;
        kern_lock_dl_app(buf, sizeof buf, &off,
                         "lock wait timed out: txn %" PRIu64 " waited %" PRIu64
                         " ms (patience %" PRIu64 " ms: timeout %" PRIu32
                         " ms + spread by txn id) for %s on ",
                         r->txn->id, m->now_ms - r->since_ms, r->deadline_ms - r->since_ms,
                         m->conf.timeout_ms, kern_lock_mode_name(r->want));
        kern_lock_dl_name(buf, sizeof buf, &off, r->head);
        if (r->wstate == LK_W_SHIELDED)
            kern_lock_dl_app(buf, sizeof buf, &off, " (behind the fragment shield)");
        lk_cancel_wait(m, r, NINES_ELOCKTIMEOUT, buf, true);
        m->st.timeouts++;
        n++;
    }
    return n;
}

int kern_lock_shield(struct kern_lock_mgr *m, uint32_t table, uint32_t frag, bool on)
{
    struct lk_frag *f = lk_frag_find(m, table, frag);
    if (on) {
        if (!f && !(f = lk_frag_new(m, table, frag)))
            return nines_err(NINES_ENOMEM, "no memory to shield table %" PRIu32 " fragment %" PRIu32,
                             table, frag);
        f->shield = 1;
        return 0;
    }
    if (!f || !f->shield)
        return 0;
    f->shield = 0;
    int n = 0;
    struct lk_req *r;
    /* Nothing here raises the shield again (events are only queued), so
     * the queue drains in arrival order. */
    while ((r = f->sq_first) != NULL) {
        struct lk_txn *t = r->txn;
        struct lk_head *h = r->head;
        unsigned mode = r->want;
        lk_sq_unlink(f, r);
        h->nshield--;
        r->wstate = LK_W_NONE;
        r->want = KERN_LOCK_NONE;
        n++;
        int rc;
        m->sync_txn = t;
        if (lk_covers(r->granted, mode)) { /* re-entrant */
            lk_wl_unlink(m, r);
            t->wait = NULL;
            lk_txn_step(t, LK_TEV_GRANT, 0);
            m->st.grants_now++;
            rc = KERN_LOCK_GRANTED;
        } else {
            mode = lk_target(r->granted, mode);
            rc = lk_place(m, r, mode, true);
        }
        m->sync_txn = NULL;
        if (rc == KERN_LOCK_GRANTED)
            lk_ev_post(m, t, r, (uint8_t)mode, 0, NULL);
        /* KERN_LOCK_WAITING: now queued on h. NINES_EDEADLOCK: posted; r and
         * possibly h are gone. Either way h needs no freeing here. */
    }
    lk_frag_maybe_free(m, f);
    return n;
}

int kern_lock_set_role(struct kern_lock_mgr *m, uint32_t table, uint32_t frag,
                       enum kern_lock_role role)
{
    struct lk_frag *f = lk_frag_find(m, table, frag);
    switch (role) {
    case KERN_LOCK_PRIMARY:
        if (f) {
            f->role = KERN_LOCK_PRIMARY;
            lk_frag_maybe_free(m, f);
        }
        return 0;
    case KERN_LOCK_STANDBY: {
        size_t n = 0;
        for (size_t i = 0; i < m->nbheads; i++)
            for (const struct lk_head *h = m->heads[i]; h; h = h->hnext)
                n += h->table == table && h->frag == frag;
        if (n)
            return nines_err(NINES_ESTATE,
                             "table %" PRIu32 " fragment %" PRIu32
                             " cannot become a standby: %zu record lock(s) held, awaited or shielded",
                             table, frag, n);
        if (!f && !(f = lk_frag_new(m, table, frag)))
            return nines_err(NINES_ENOMEM, "no memory for table %" PRIu32 " fragment %" PRIu32,
                             table, frag);
        f->role = KERN_LOCK_STANDBY;
        return 0;
    }
    default:
        return nines_err(NINES_EINVAL, "fragment role %d is neither primary (0) nor standby (1)",
                         (int)role);
    }
}

enum kern_lock_tstate kern_lock_txn_state(const struct kern_lock_mgr *m, uint64_t txn)
{
    const struct lk_txn *t = lk_txn_find(m, txn);
    return t ? t->state : KERN_LOCK_T_NONE;
}

void kern_lock_txn_counts(const struct kern_lock_mgr *m, uint64_t txn, uint32_t *held,
                          uint32_t *waiting)
{
    const struct lk_txn *t = lk_txn_find(m, txn);
    if (held)
        *held = t ? t->nheld : 0;
    if (waiting)
        *waiting = t && t->wait ? 1 : 0;
}

enum kern_lock_mode kern_lock_held(const struct kern_lock_mgr *m, uint64_t txn, uint32_t table,
                                   uint32_t frag, const void *key, size_t keylen)
{
    const struct lk_txn *t = lk_txn_find(m, txn);
    if (!t || keylen > KERN_LOCK_KEY_MAX || (keylen && !key))
        return KERN_LOCK_NONE;
    const struct lk_head *h = lk_head_find(m, table, frag, key, keylen,
                                           lk_hash(table, frag, key, keylen));
    const struct lk_req *r = h ? lk_req_of(h, t) : NULL;
    return r ? (enum kern_lock_mode)r->granted : KERN_LOCK_NONE;
}

void kern_lock_stats(const struct kern_lock_mgr *m, struct kern_lock_stats *st)
{
    *st = m->st;
    st->heads = m->nheads;
    st->txns = m->ntxns;
    st->waiting = 0;
    st->shielded = 0;
    for (const struct lk_req *r = m->wl_first; r; r = r->t_next) {
        if (r->wstate == LK_W_QUEUED)
            st->waiting++;
        else
            st->shielded++;
    }
}
