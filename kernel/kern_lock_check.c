/* kern_lock_check(): the lock manager's invariants, checked in full
 * (kernel/README.md "Record locks", "Invariants"). For tests and debug builds. */
#include "kern_lock_int.h"

#include "nines/errors.h"

#include <inttypes.h>
#include <stdlib.h>

#define BAD(...) return nines_err(NINES_ECORRUPT, "lock check: " __VA_ARGS__)

static const struct lk_frag *ck_frag(const struct kern_lock_mgr *m, uint32_t table, uint32_t frag)
{
    for (size_t i = 0; i < m->nbfrags; i++)
        for (const struct lk_frag *f = m->frags[i]; f; f = f->hnext)
            if (f->table == table && f->frag == frag)
                return f;
    return NULL;
}

static const struct lk_txn *ck_txn(const struct kern_lock_mgr *m, uint64_t id)
{
    for (size_t i = 0; i < m->nbtxns; i++)
        for (const struct lk_txn *t = m->txns[i]; t; t = t->hnext)
            if (t->id == id)
                return t;
    return NULL;
}

static int ck_head(const struct kern_lock_mgr *m, const struct lk_head *h, size_t slot,
                   size_t *ngranted, size_t *nqueued, size_t *nshield)
{
    if ((h->hash & (m->nbheads - 1)) != slot)
        BAD("head of table %u fragment %u in bucket %zu, hash says %zu", h->table, h->frag, slot,
            (size_t)(h->hash & (m->nbheads - 1)));
    if (!h->granted && !h->wq_first && !h->nshield)
        BAD("empty head of table %u fragment %u left in the table", h->table, h->frag);
    const struct lk_frag *f = ck_frag(m, h->table, h->frag);
    if (f && f->role == KERN_LOCK_STANDBY)
        BAD("standby table %u fragment %u has a lock head", h->table, h->frag);

    /* Holders: modes, counts, back pointers, one entry per txn. */
    uint32_t ns = 0, nx = 0, ni = 0;
    for (const struct lk_req *g = h->granted; g; g = g->g_next) {
        if (g->head != h)
            BAD("holder of txn %" PRIu64 " points at another head", g->txn->id);
        if (g->granted == KERN_LOCK_S)
            ns++;
        else if (g->granted == KERN_LOCK_X)
            nx++;
        else if (g->granted == KERN_LOCK_INC)
            ni++;
        else
            BAD("holder of txn %" PRIu64 " has mode %u", g->txn->id, g->granted);
        if (g->g_next && g->g_next->g_prev != g)
            BAD("granted list links broken at txn %" PRIu64, g->txn->id);
        if (ck_txn(m, g->txn->id) != g->txn)
            BAD("holder txn %" PRIu64 " not in the transaction table", g->txn->id);
        for (const struct lk_req *o = g->g_next; o; o = o->g_next)
            if (o->txn == g->txn)
                BAD("txn %" PRIu64 " holds one lock twice", g->txn->id);
        if (g->wstate != LK_W_NONE && g->txn->wait != g)
            BAD("holder of txn %" PRIu64 " marked pending but not its wait", g->txn->id);
        (*ngranted)++;
    }
    if (ns != h->ns || nx != h->nx || ni != h->ni)
        BAD("head counts S %u X %u INC %u, list has S %u X %u INC %u", h->ns, h->nx, h->ni, ns,
            nx, ni);
    if (nx > 1 || (nx && ns + ni) || (ns && ni))
        BAD("incompatible grants: %u X, %u S and %u INC on table %u fragment %u", nx, ns, ni,
            h->table, h->frag);

    /* Queue: pending requests, upgrades first, txn states. */
    uint32_t nw = 0;
    bool upgrades = true;
    for (const struct lk_req *q = h->wq_first; q; q = q->w_next) {
        const struct lk_txn *t = q->txn;
        nw++;
        if (q->head != h || q->wstate != LK_W_QUEUED)
            BAD("queued request of txn %" PRIu64 " has state %u", t->id, q->wstate);
        if (t->wait != q || t->state != KERN_LOCK_T_WAITING)
            BAD("queued request of txn %" PRIu64 " is not its wait (state %s)", t->id,
                kern_lock_tstate_name(t->state));
        if ((q->want != KERN_LOCK_S && q->want != KERN_LOCK_X && q->want != KERN_LOCK_INC) ||
            lk_covers(q->granted, q->want) ||
            (q->granted != KERN_LOCK_NONE && q->want != KERN_LOCK_X))
            BAD("txn %" PRIu64 " queued for %u while holding %u", t->id, q->want, q->granted);
        if (q->granted != KERN_LOCK_NONE && !upgrades)
            BAD("upgrade of txn %" PRIu64 " queued behind a new request", t->id);
        upgrades = upgrades && q->granted != KERN_LOCK_NONE;
        if (q->w_next && q->w_next->w_prev != q)
            BAD("wait queue links broken at txn %" PRIu64, t->id);
        /* Every waiter waits for somebody (else it was forgotten). */
        struct lk_dlframe fr = {.txn = q->txn, .cur = h->granted, .phase = 0};
        if (!kern_lock_dl_next(&fr))
            BAD("txn %" PRIu64 " waits on table %u fragment %u but no holder or earlier request "
                "conflicts with it",
                t->id, h->table, h->frag);
        (*nqueued)++;
    }
    if (nw != h->nwait)
        BAD("head counts %u waiters, queue has %u", h->nwait, nw);
    if (h->wq_first && lk_grantable(h, h->wq_first))
        BAD("first waiter txn %" PRIu64 " on table %u fragment %u is grantable but waits",
            h->wq_first->txn->id, h->table, h->frag);
    *nshield += h->nshield;
    return 0;
}

/* No cycle may survive in the wait-for graph: three-colour DFS over every
 * waiting transaction (colour 1 = on the path, 2 = done). */
static int ck_acyclic(const struct kern_lock_mgr *m)
{
    struct lk_dlframe *st = malloc((m->ntxns + 1) * sizeof *st);
    if (!st)
        return nines_err(NINES_ENOMEM, "lock check: no memory for %zu frames", m->ntxns + 1);
    for (size_t i = 0; i < m->nbtxns; i++)
        for (struct lk_txn *t = m->txns[i]; t; t = t->hnext)
            t->ck_color = 0;
    int rc = 0;
    for (size_t i = 0; i < m->nbtxns && !rc; i++)
        for (struct lk_txn *t = m->txns[i]; t && !rc; t = t->hnext) {
            if (t->ck_color || !t->wait || t->wait->wstate != LK_W_QUEUED)
                continue;
            size_t sp = 0;
            st[sp++] = (struct lk_dlframe){.txn = t, .cur = t->wait->head->granted};
            t->ck_color = 1;
            while (sp && !rc) {
                struct lk_txn *n = kern_lock_dl_next(&st[sp - 1]);
                if (!n) {
                    st[--sp].txn->ck_color = 2;
                    continue;
                }
                if (n->ck_color == 1)
                    rc = nines_err(NINES_ECORRUPT,
                                   "lock check: wait-for cycle through txn %" PRIu64
                                   " and txn %" PRIu64 " was not broken",
                                   st[sp - 1].txn->id, n->id);
                else if (n->ck_color == 0) {
                    if (n->wait && n->wait->wstate == LK_W_QUEUED) {
                        n->ck_color = 1;
                        st[sp++] = (struct lk_dlframe){.txn = n, .cur = n->wait->head->granted};
                    } else {
                        n->ck_color = 2;
                    }
                }
            }
        }
    free(st);
    return rc;
}

int kern_lock_check(const struct kern_lock_mgr *m)
{
    size_t nheads = 0, ngranted = 0, nqueued = 0, nshield = 0;
    for (size_t i = 0; i < m->nbheads; i++)
        for (const struct lk_head *h = m->heads[i]; h; h = h->hnext) {
            int rc = ck_head(m, h, i, &ngranted, &nqueued, &nshield);
            if (rc)
                return rc;
            nheads++;
        }
    if (nheads != m->nheads)
        BAD("table counts %zu heads, buckets hold %zu", m->nheads, nheads);

    size_t ntxns = 0, nheld = 0, nwaiting = 0, npending = 0;
    for (size_t i = 0; i < m->nbtxns; i++)
        for (const struct lk_txn *t = m->txns[i]; t; t = t->hnext) {
            ntxns++;
            if (lk_txn_slot(t->id, m->nbtxns) != i)
                BAD("txn %" PRIu64 " in the wrong bucket", t->id);
            switch (t->state) {
            case KERN_LOCK_T_ACTIVE:
            case KERN_LOCK_T_DOOMED:
                if (t->wait)
                    BAD("txn %" PRIu64 " is %s with a pending request", t->id,
                        kern_lock_tstate_name(t->state));
                break;
            case KERN_LOCK_T_WAITING:
                if (!t->wait || t->wait->txn != t || t->wait->wstate == LK_W_NONE)
                    BAD("txn %" PRIu64 " waits without a pending request", t->id);
                if (t->ev_pending)
                    BAD("waiting txn %" PRIu64 " has an undelivered event", t->id);
                nwaiting++;
                break;
            case KERN_LOCK_T_NONE:
            default:
                BAD("txn %" PRIu64 " in state %d", t->id, (int)t->state);
            }
            uint32_t n = 0;
            for (const struct lk_req *r = t->held; r; r = r->h_next) {
                if (r->txn != t || r->granted == KERN_LOCK_NONE)
                    BAD("held list of txn %" PRIu64 " has a foreign or ungranted entry", t->id);
                if (r->h_next && r->h_next->h_prev != r)
                    BAD("held list links of txn %" PRIu64 " broken", t->id);
                n++;
            }
            if (n != t->nheld)
                BAD("txn %" PRIu64 " counts %u held, list has %u", t->id, t->nheld, n);
            nheld += n;
            npending += t->ev_pending;
        }
    if (ntxns != m->ntxns)
        BAD("table counts %zu txns, buckets hold %zu", m->ntxns, ntxns);
    if (nheld != ngranted || nheld != m->st.held)
        BAD("txns hold %zu locks, heads list %zu, stats say %" PRIu64, nheld, ngranted, m->st.held);

    size_t nev = 0;
    for (const struct lk_txn *t = m->ev_first; t; t = t->ev_next) {
        if (!t->ev_pending)
            BAD("txn %" PRIu64 " in the event list without an event", t->id);
        nev++;
    }
    if (nev != npending || nev != m->nev)
        BAD("%zu events listed, %zu txns flagged, count says %zu", nev, npending, m->nev);

    size_t nfr = 0, nsq = 0;
    for (size_t i = 0; i < m->nbfrags; i++)
        for (const struct lk_frag *f = m->frags[i]; f; f = f->hnext) {
            nfr++;
            if (f->role == KERN_LOCK_PRIMARY && !f->shield && !f->sq_first)
                BAD("default table %u fragment %u kept", f->table, f->frag);
            if (f->sq_first && !f->shield)
                BAD("table %u fragment %u has shielded requests without a shield", f->table, f->frag);
            uint32_t n = 0;
            for (const struct lk_req *r = f->sq_first; r; r = r->w_next) {
                if (r->wstate != LK_W_SHIELDED || r->txn->wait != r ||
                    r->head->table != f->table || r->head->frag != f->frag)
                    BAD("shield queue of table %u fragment %u has a stray request of txn %" PRIu64,
                        f->table, f->frag, r->txn->id);
                n++;
            }
            if (n != f->nsq)
                BAD("table %u fragment %u counts %u shielded, queue has %u", f->table, f->frag,
                    f->nsq, n);
            nsq += n;
        }
    if (nfr != m->nfrags)
        BAD("%zu fragment entries, count says %zu", nfr, m->nfrags);
    if (nsq != nshield)
        BAD("%zu shielded requests queued, heads count %zu", nsq, nshield);

    size_t nwl = 0;
    for (const struct lk_req *r = m->wl_first; r; r = r->t_next) {
        if (r->wstate == LK_W_NONE || r->txn->wait != r)
            BAD("wait list holds a request of txn %" PRIu64 " that is not pending", r->txn->id);
        if (r->t_next && (r->t_next->deadline_ms < r->deadline_ms || r->t_next->t_prev != r))
            BAD("wait list out of order at txn %" PRIu64, r->txn->id);
        nwl++;
    }
    if (nwl != nwaiting || nwl != nqueued + nsq)
        BAD("wait list has %zu, %zu txns wait, %zu queued + %zu shielded", nwl, nwaiting, nqueued,
            nsq);
    return ck_acyclic(m);
}
