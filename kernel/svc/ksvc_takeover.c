/* Kernel service: takeover — a hot standby whose fragment's primary left
 * the node set becomes primary: shield, finish redo, re-take the locks of
 * the in-doubt transactions, abort those without an end mark, ask about
 * those with one; and the end marks a standby keeps for that purpose.
 * README "Takeover". */
#include "ksvc_int.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <stdlib.h>
#include <string.h>

/* ---- end marks kept by a hot standby ------------------------------------ */

void sk_mark_keep(struct ksvc *k, const struct sk_rep *r, const Nines__TxnEndMark *mk)
{
    if (kern_frag_txn_last_lsn(r->f, mk->txn) == 0)
        return; /* its COMMIT/ABORT record is redone already: nothing in doubt */
    sk_mark_keep_ahead(k, r, mk);
}

void sk_mark_keep_ahead(struct ksvc *k, const struct sk_rep *r, const Nines__TxnEndMark *mk)
{
    struct sk_node *nd = sk_map_get(&k->marks, mk->txn, r->table, r->frag);
    struct sk_mark *x = (struct sk_mark *)nd;
    if (!x) {
        x = k->free_marks;
        if (x)
            k->free_marks = x->free_next;
        else if (!(x = calloc(1, sizeof *x))) {
            /* a takeover would then abort it as unmarked: safe only if the
             * hsc cannot have committed it, so say so loudly */
            NLOG_ERROR("kern", "no memory to keep the end mark of txn %llu in table %s fragment "
                       "%u: a takeover of this replica would treat it as unprepared",
                       (unsigned long long)mk->txn, r->tname, r->frag);
            return;
        }
        x->node.a = mk->txn;
        x->node.b = r->table;
        x->node.c = r->frag;
        sk_map_put(&k->marks, &x->node);
    }
    /* a newer mark of the same transaction (a re-prepare to a new hsc) wins */
    x->ctl = mk->ctl;
    x->hsc = mk->hsc;
    x->nrecords = mk->nrecords;
}

static void sk_mark_free(struct ksvc *k, struct sk_mark *x)
{
    sk_map_del(&k->marks, &x->node);
    x->free_next = k->free_marks;
    k->free_marks = x;
}

void sk_mark_forget(struct ksvc *k, uint32_t table, uint32_t frag, uint64_t txn)
{
    if (k->marks.n == 0)
        return;
    struct sk_node *nd = sk_map_get(&k->marks, txn, table, frag);
    if (nd)
        sk_mark_free(k, (struct sk_mark *)nd);
}

void sk_marks_drop(struct ksvc *k, const struct sk_rep *r)
{
    if (k->marks.n == 0)
        return;
    SK_MAP_FOREACH(&k->marks, i, nd, nx)
    if (nd->b == r->table && nd->c == r->frag)
        sk_mark_free(k, (struct sk_mark *)nd);
}

void sk_marks_free(struct ksvc *k)
{
    if (k->marks.bk)
        SK_MAP_FOREACH(&k->marks, i, nd, nx)
        free(nd);
    while (k->free_marks) {
        struct sk_mark *x = k->free_marks;
        k->free_marks = x->free_next;
        free(x);
    }
    sk_map_free(&k->marks);
}

/* ---- promotion ---------------------------------------------------------- */

void sk_promote_begin(struct ksvc *k, struct sk_rep *r, uint32_t prev_primary)
{
    int rc = kern_frag_set_role(r->f, KERN_FRAG_PROMOTING);
    if (rc == 0)
        rc = kern_lock_set_role(k->locks, r->table, r->frag, KERN_LOCK_PRIMARY);
    if (rc) {
        sk_rep_out_of_service(k, r, "its takeover could not begin: %s", nines_errdetail());
        return;
    }
    (void)kern_lock_shield(k->locks, r->table, r->frag, true);
    r->prev_primary = prev_primary;
    r->promote_epoch = r->ro_epoch;
    r->role = KERN_FRAG_PROMOTING;
    NLOG_INFO("kern", "table %s fragment %u: node %u takes over from node %u (node set %llu, "
              "%s): finishing the redo of what was received before", r->tname, r->frag,
              k->self, prev_primary, (unsigned long long)r->ro_epoch,
              dict_frag_state_name(r->ro.state));
    /* every UPD_MSG_REDO of records received before the install is queued
     * ahead of the barrier's answer (updchan README "Barrier") */
    upd_barrier(k->u, r->ro_epoch);
}

void sk_promote_call_off(struct ksvc *k, struct sk_rep *r)
{
    (void)kern_lock_shield(k->locks, r->table, r->frag, false);
    int rc = kern_frag_set_role(r->f, KERN_FRAG_HOT_STANDBY);
    if (rc == 0)
        rc = kern_lock_set_role(k->locks, r->table, r->frag, KERN_LOCK_STANDBY);
    if (rc)
        NLOG_ERROR("kern", "table %s fragment %u: takeover called off, but: %s", r->tname,
                   r->frag, nines_errdetail());
    else
        NLOG_INFO("kern", "table %s fragment %u: takeover called off (node set %llu)", r->tname,
                  r->frag, (unsigned long long)r->ro_epoch);
    r->role = kern_frag_role(r->f);
}

/* One in-doubt (transaction, replica) found at a takeover. */
struct sk_doubt {
    uint64_t txn;
    struct sk_rep *r;
    struct sk_mark *mark; /* its end mark here, or NULL */
};

static int sk_doubt_cmp(const void *a, const void *b)
{
    const struct sk_doubt *x = a, *y = b;
    return x->txn < y->txn ? -1 : x->txn > y->txn;
}

/* Lock the key of every record of txn's chain in r (X; INC for an ADD,
 * so in-doubt increments of one row stay compatible as they were). */
static void sk_relock(struct ksvc *k, struct sk_rep *r, uint64_t txn)
{
    const struct kern_log *log = kern_frag_log(r->f);
    for (uint64_t lsn = kern_frag_txn_last_lsn(r->f, txn); lsn;) {
        struct kern_logrec lr;
        int rc = kern_log_read(log, lsn, &lr);
        if (rc < 0) {
            NLOG_ERROR("kern", "takeover of table %s fragment %u: txn %llu's record at LSN %llu "
                       "cannot be read (%s): its locks are incomplete", r->tname, r->frag,
                       (unsigned long long)txn, (unsigned long long)lsn, nines_errdetail());
            return;
        }
        if (lr.klen) {
            rc = kern_lock_acquire(k->locks, txn, r->table, r->frag, lr.key, lr.klen,
                                   lr.op == KERN_LOG_ADD ? KERN_LOCK_INC : KERN_LOCK_X, 0);
            if (rc != KERN_LOCK_GRANTED) /* nobody else holds locks here yet */
                NLOG_ERROR("kern", "takeover of table %s fragment %u: txn %llu's lock on the key "
                           "of LSN %llu not granted (%d: %s)", r->tname, r->frag,
                           (unsigned long long)txn, (unsigned long long)lsn, rc,
                           rc < 0 ? nines_errdetail() : "queued");
        }
        lsn = lr.prev_lsn;
    }
}

/* The replica becomes primary now: its redo is done (README "Takeover"
 * step 3 on). Collects its in-doubt transactions into *dv. */
static int sk_promote_step(struct ksvc *k, struct sk_rep *r, struct sk_doubt **dv, size_t *nd,
                           size_t *cap)
{
    int rc = kern_frag_set_role(r->f, KERN_FRAG_PRIMARY);
    if (rc) {
        sk_rep_out_of_service(k, r, "its takeover could not finish: %s", nines_errdetail());
        return rc;
    }
    r->role = KERN_FRAG_PRIMARY;
    /* the shield held new work off; the in-doubt locks are taken before
     * anything else can ask for a lock (one thread, this function) */
    (void)kern_lock_shield(k->locks, r->table, r->frag, false);
    size_t n = kern_frag_txns(r->f, NULL, 0);
    if (*nd + n > *cap) {
        size_t c = (*nd + n) * 2;
        struct sk_doubt *x = realloc(*dv, c * sizeof *x);
        if (!x)
            return nines_err(NINES_ENOMEM, "no memory for %zu in-doubt transactions", n);
        *dv = x;
        *cap = c;
    }
    uint64_t *ids = n ? malloc(n * sizeof *ids) : NULL;
    if (n && !ids)
        return nines_err(NINES_ENOMEM, "no memory for %zu in-doubt transactions", n);
    n = kern_frag_txns(r->f, ids, n);
    for (size_t i = 0; i < n; i++) {
        sk_relock(k, r, ids[i]);
        struct sk_doubt *d = &(*dv)[(*nd)++];
        d->txn = ids[i];
        d->r = r;
        d->mark = (struct sk_mark *)sk_map_get(&k->marks, ids[i], r->table, r->frag);
    }
    free(ids);
    return 0;
}

/* Abort txn's records in r (CLRs and an ABORT record, continuing the old
 * primary's LSN sequence). */
static void sk_doubt_abort(struct ksvc *k, struct sk_rep *r, uint64_t txn)
{
    int rc = kern_frag_abort(r->f, txn, NULL);
    if (rc < 0)
        sk_rep_out_of_service(k, r, "abort of in-doubt txn %llu at its takeover failed: %s",
                              (unsigned long long)txn, nines_errdetail());
}

/* In-doubt txn t, with end marks in every replica dv[0..n) taken over: a
 * transaction new here asks (hsc first); one also open here as a primary
 * participant takes them along (its controller ends it everywhere); one
 * that already ended here gets its outcome applied to them. */
static void sk_resolve_known(struct ksvc *k, struct sk_txn *t, struct sk_doubt *dv, size_t n)
{
    bool ended = t->st == SK_TX_ENDED || t->st == SK_TX_END_FAILED;
    for (size_t x = 0; x < n; x++) {
        if (!ended && sk_txn_touch(t, dv[x].r->table, dv[x].r->frag, dv[x].mark->nrecords))
            NLOG_ERROR("kern", "takeover at node %u: txn %llu: %s", k->self,
                       (unsigned long long)t->txn, nines_errdetail());
        sk_mark_free(k, dv[x].mark);
    }
    switch (t->st) {
    case SK_TX_ACTIVE:
        if (t->takeover) { /* known here only from the standby's log */
            k->st.indoubt_asked++;
            sk_takeover_prepared(k, t);
        }
        break;
    case SK_TX_WAITING_LOCK:
    case SK_TX_PREPARED:
        break; /* its commit or abort covers the fragments taken over too */
    case SK_TX_ENDED:
        for (size_t x = 0; x < n; x++) {
            int rc = t->commit ? kern_frag_commit_gci(dv[x].r->f, t->txn, t->gci, NULL)
                               : kern_frag_abort(dv[x].r->f, t->txn, NULL);
            if (rc < 0)
                sk_rep_out_of_service(k, dv[x].r, "%s of txn %llu at its takeover failed: %s",
                                      t->commit ? "commit" : "abort",
                                      (unsigned long long)t->txn, nines_errdetail());
            upd_kick(k->u, dv[x].r->ship);
        }
        kern_lock_release_all(k->locks, t->txn); /* only the ones just re-taken */
        break;
    case SK_TX_END_FAILED:
        NLOG_ERROR("kern", "takeover at node %u: txn %llu failed to end here before; its "
                   "locks in the fragments taken over stay held too", k->self,
                   (unsigned long long)t->txn);
        break;
    default:
        NLOG_ERROR("kern", "takeover at node %u: txn %llu in bad state %s", k->self,
                   (unsigned long long)t->txn, sk_txn_state_name(t->st));
        break;
    }
}

/* Resolve the in-doubt transactions dv[0..n) (sorted by txn) of the
 * replicas promoted together. A transaction without an end mark in one of
 * them was never ready at this standby, so no hsc can have committed it:
 * aborted here. One with end marks in all of them asks its hsc, then its
 * ctl, holding its locks meanwhile. */
static void sk_resolve(struct ksvc *k, struct sk_doubt *dv, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        bool unmarked = false;
        while (j < n && dv[j].txn == dv[i].txn)
            unmarked |= dv[j++].mark == NULL;
        uint64_t txn = dv[i].txn;
        struct sk_txn *t = sk_txn_get(k, txn);
        if (unmarked) {
            for (size_t x = i; x < j; x++) {
                sk_doubt_abort(k, dv[x].r, txn);
                if (dv[x].mark)
                    sk_mark_free(k, dv[x].mark);
                upd_kick(k->u, dv[x].r->ship);
            }
            /* a transaction also open here as a primary participant keeps
             * its other locks: its controller ends it */
            if (!t)
                kern_lock_release_all(k->locks, txn);
            k->st.indoubt_aborted++;
            NLOG_INFO("kern", "takeover at node %u: txn %llu had no end mark here (never ready "
                      "at this standby): aborted", k->self, (unsigned long long)txn);
            i = j;
            continue;
        }
        const struct sk_mark *mk = dv[i].mark;
        if (!t) {
            t = sk_txn_new(k, txn, mk->ctl, mk->hsc);
            if (!t) {
                NLOG_ERROR("kern", "takeover at node %u: no memory for in-doubt txn %llu: its "
                           "locks stay held, nobody is asked", k->self, (unsigned long long)txn);
                i = j;
                continue;
            }
            t->takeover = true;
        }
        sk_resolve_known(k, t, dv + i, j - i);
        i = j;
    }
}

void sk_on_barrier_done(struct ksvc *k, uint64_t epoch)
{
    struct sk_doubt *dv = NULL;
    size_t nd = 0, cap = 0;
    SK_MAP_FOREACH(&k->reps, i, nd_, nx)
    {
        struct sk_rep *r = (struct sk_rep *)nd_;
        if (kern_frag_role(r->f) != KERN_FRAG_PROMOTING || r->promote_epoch > epoch ||
            r->oos[0])
            continue;
        size_t before = nd;
        int rc = sk_promote_step(k, r, &dv, &nd, &cap);
        if (rc) {
            NLOG_ERROR("kern", "takeover of table %s fragment %u: %s", r->tname, r->frag,
                       nines_errdetail());
            continue;
        }
        uint32_t to = r->ro.state == DICT_FRAG_BOTH    ? r->ro.standby
                      : r->ro.state == DICT_FRAG_ALONE ? r->ro.logcopy
                                                       : 0;
        if (!r->ship && upd_ship_add(k->u, r->f, to, &r->ship)) {
            sk_rep_out_of_service(k, r, "no shipping entry after its takeover: %s",
                                  nines_errdetail());
            continue;
        }
        r->standby = upd_ship_standby(r->ship);
        /* its target gets the log it holds now, not only at the next write
         * (a takeback's demoted primary acknowledges it: README "Takeback") */
        upd_kick(k->u, r->ship);
        upd_recv_forget(k->u, r->table, r->frag); /* it takes no records any more */
        /* the previous primary still current: a takeback (README "Takeback") */
        bool back = r->prev_primary && (rt_nodeset(k->rt)->current & RT_NODE_BIT(r->prev_primary));
        if (back)
            k->st.takebacks++;
        else
            k->st.takeovers++;
        NLOG_INFO("kern", "table %s fragment %u: node %u is primary (%s node %u in "
                  "node set %llu; redo ended at LSN %llu; %zu in-doubt transactions; its log "
                  "goes to node %u)", r->tname, r->frag, k->self,
                  back ? "took it back from" : "took over from", r->prev_primary,
                  (unsigned long long)r->promote_epoch,
                  (unsigned long long)(kern_log_next_lsn(kern_frag_log(r->f)) - 1),
                  nd - before, r->standby);
    }
    if (nd) {
        qsort(dv, nd, sizeof *dv, sk_doubt_cmp);
        sk_resolve(k, dv, nd);
    }
    free(dv);
    if (!sk_promoting(k))
        sk_replay_deferred(k);
}

/* COMMIT/ABORT/PREPARE_REQ for a transaction unknown here, received while a
 * takeover was under way: kept (rt_msg_keep) and handled again once every
 * promotion here is done, so the controller need not wait for its re-send.
 * When the list is full the request is dropped and the controller's
 * re-send covers it. */
bool sk_defer(struct ksvc *k, struct rt_msg *m)
{
    if (k->ndeferred >= SK_DEFER_MAX)
        return false;
    rt_msg_keep(m);
    k->deferred[k->ndeferred++] = m;
    return true;
}

void sk_replay_deferred(struct ksvc *k)
{
    uint32_t n = k->ndeferred;
    struct rt_msg *list[SK_DEFER_MAX];
    memcpy(list, k->deferred, n * sizeof *list);
    k->ndeferred = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct rt_msg *m = list[i];
        m->kept = false;
        switch (m->type) {
        case NINES__MSG_TYPE__COMMIT_REQ:
            ksvc_on_commit_req(k->rt, k, m);
            break;
        case NINES__MSG_TYPE__ABORT_REQ:
            ksvc_on_abort_req(k->rt, k, m);
            break;
        case NINES__MSG_TYPE__PREPARE_REQ:
            ksvc_on_prepare_req(k->rt, k, m);
            break;
        default:
            NLOG_ERROR("kern", "deferred message of type %u dropped", m->type);
            break;
        }
        if (!m->kept)
            rt_msg_free(k->rt, m);
    }
}

bool sk_promoting(const struct ksvc *k)
{
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    {
        if (((const struct sk_rep *)nd)->role == KERN_FRAG_PROMOTING)
            return true;
    }
    return false;
}
