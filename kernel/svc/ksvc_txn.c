/* Kernel service: the end of a transaction at a primary (prepare with end
 * marks and READY_IND, commit, abort), redo at a hot standby with the
 * standby's READY_IND, and the replica digests. */
#include "ksvc_int.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- prepare ------------------------------------------------------------ */

static int sk_frags_out(struct ksvc *k, const struct sk_txn *t, struct rt_msg *out,
                        Nines__FragRecords ***frags, size_t *nfrags)
{
    Nines__FragRecords **fp = t->ntouch ? rt_msg_alloc(out, t->ntouch * sizeof *fp) : NULL;
    Nines__FragRecords *fr = t->ntouch ? rt_msg_alloc(out, t->ntouch * sizeof *fr) : NULL;
    if (t->ntouch && (!fp || !fr))
        return nines_err(NINES_ENOMEM, "no memory for the fragment list");
    for (uint32_t i = 0; i < t->ntouch; i++) {
        const struct sk_touch *x = &t->touch[i];
        const struct sk_rep *r = sk_rep_get(k, x->table, x->frag);
        nines__frag_records__init(&fr[i]);
        fr[i].table = x->table;
        fr[i].frag = x->frag;
        fr[i].nrecords = x->nrecords;
        fr[i].standby = x->nrecords && r && r->ship ? upd_ship_standby(r->ship) : 0;
        fp[i] = &fr[i];
    }
    *frags = fp;
    *nfrags = t->ntouch;
    return 0;
}

/* Ship an end mark for every fragment with records of t, mark t prepared,
 * send READY_IND(primary) to the hot-standby controller, and list the
 * fragments in `reply`. */
int sk_prepare(struct ksvc *k, struct sk_txn *t, struct rt_msg *reply,
               Nines__FragRecords ***frags, size_t *nfrags)
{
    for (uint32_t i = 0; i < t->ntouch; i++) {
        const struct sk_touch *x = &t->touch[i];
        if (x->nrecords == 0)
            continue; /* only read here: nothing for the standby to hold */
        struct sk_rep *r = sk_rep_get(k, x->table, x->frag);
        if (!r || !r->ship)
            return nines_err(NINES_ESTATE, "table %u fragment %u is no longer primary at node "
                             "%u", x->table, x->frag, k->self);
        int rc = upd_ship_mark(k->u, r->ship, t->txn, x->nrecords, t->ctl, t->hsc);
        if (rc)
            return rc;
    }
    int rc = sk_frags_out(k, t, reply, frags, nfrags);
    if (rc)
        return rc;
    t->st = SK_TX_PREPARED;
    if (t->hsc) {
        struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__READY_IND);
        Nines__ReadyInd *b = m ? RT_BODY(m, Nines__ReadyInd, nines__ready_ind__init) : NULL;
        if (b && sk_frags_out(k, t, m, &b->frags, &b->n_frags) == 0) {
            b->txn = t->txn;
            b->node = k->self;
            (void)rt_send(k->rt, t->hsc, RT_SVC_TXC, m);
        } else if (m) {
            rt_msg_free(k->rt, m);
        }
    }
    return 0;
}

void ksvc_on_prepare_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__PrepareReq *q = (const Nines__PrepareReq *)m->body;
    k->cur = m;
    struct sk_txn *t = sk_txn_get(k, q->txn);
    int rc = 0;
    if (!t) {
        rc = nines_err(NINES_ENOTFOUND, "txn %llu is unknown at node %u",
                       (unsigned long long)q->txn, k->self);
    } else {
        switch (t->st) {
        case SK_TX_ACTIVE:
            if (q->ctl)
                t->ctl = q->ctl;
            if (q->hsc)
                t->hsc = q->hsc;
            break;
        case SK_TX_PREPARED:
            break; /* a repeated prepare: answer again */
        case SK_TX_WAITING_LOCK:
            rc = nines_err(NINES_ESTATE, "txn %llu has a request waiting for a lock at node %u",
                           (unsigned long long)q->txn, k->self);
            break;
        default:
            rc = nines_err(NINES_ESTATE, "txn %llu in bad state %s", (unsigned long long)q->txn,
                           sk_txn_state_name(t->st));
            break;
        }
    }
    struct rt_msg *r = NULL;
    if (rc == 0) {
        r = rt_msg_new(rt, NINES__MSG_TYPE__PREPARE_CONF);
        Nines__PrepareConf *c = r ? RT_BODY(r, Nines__PrepareConf, nines__prepare_conf__init)
                                  : NULL;
        if (!c)
            rc = nines_err(NINES_ENOMEM, "no memory to answer PREPARE_REQ");
        else if (t->st == SK_TX_PREPARED)
            rc = sk_frags_out(k, t, r, &c->frags, &c->n_frags);
        else
            rc = sk_prepare(k, t, r, &c->frags, &c->n_frags);
        if (c) {
            c->txn = q->txn;
            c->node = k->self;
        }
        if (rc == 0) {
            (void)rt_send(rt, m->from, RT_SVC_TXC, r);
            r = NULL;
        }
    }
    if (rc) {
        if (r)
            rt_msg_free(rt, r);
        char why[512];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        r = rt_msg_new(rt, NINES__MSG_TYPE__PREPARE_REF);
        Nines__PrepareRef *f = r ? RT_BODY(r, Nines__PrepareRef, nines__prepare_ref__init) : NULL;
        char *d = r ? rt_msg_alloc(r, strlen(why) + 1) : NULL;
        if (f && d) {
            strcpy(d, why);
            f->txn = q->txn;
            f->node = k->self;
            f->error = rc;
            f->detail = d;
            (void)rt_send(rt, m->from, RT_SVC_TXC, r);
        } else if (r) {
            rt_msg_free(rt, r);
        }
    }
    sk_after(k);
    k->cur = NULL;
}

/* ---- commit and abort --------------------------------------------------- */

static void sk_end_reply(struct ksvc *k, net_addr to, uint32_t type, uint64_t txn)
{
    struct rt_msg *r = rt_msg_new(k->rt, type);
    if (!r)
        return;
    bool ok;
    if (type == NINES__MSG_TYPE__COMMIT_CONF) {
        Nines__CommitConf *c = RT_BODY(r, Nines__CommitConf, nines__commit_conf__init);
        if ((ok = c != NULL)) {
            c->txn = txn;
            c->node = k->self;
        }
    } else {
        Nines__AbortConf *c = RT_BODY(r, Nines__AbortConf, nines__abort_conf__init);
        if ((ok = c != NULL)) {
            c->txn = txn;
            c->node = k->self;
        }
    }
    if (ok)
        (void)rt_send(k->rt, to, RT_SVC_TXC, r);
    else
        rt_msg_free(k->rt, r);
}

/* Commit (true) or abort t in every fragment it wrote, ship the records,
 * release its locks and forget it. */
static void sk_end(struct ksvc *k, struct sk_txn *t, bool commit)
{
    switch (t->st) {
    case SK_TX_ACTIVE:
    case SK_TX_PREPARED:
        break;
    case SK_TX_WAITING_LOCK:
        if (commit)
            NLOG_WARN("kern", "COMMIT of txn %llu while a request of it waits for a lock: the "
                      "request is dropped", (unsigned long long)t->txn);
        sk_drop_continuation(k, t);
        break;
    default:
        N_ASSERT(!"bad transaction state");
        break;
    }
    for (uint32_t i = 0; i < t->ntouch; i++) {
        const struct sk_touch *x = &t->touch[i];
        if (x->nrecords == 0)
            continue;
        struct sk_rep *r = sk_rep_get(k, x->table, x->frag);
        if (!r) {
            NLOG_WARN("kern", "txn %llu ends after table %u fragment %u was dropped here",
                      (unsigned long long)t->txn, x->table, x->frag);
            continue;
        }
        int rc = commit ? kern_frag_commit(r->f, t->txn, NULL) : kern_frag_abort(r->f, t->txn, NULL);
        if (rc < 0)
            NLOG_ERROR("kern", "%s of txn %llu in table %s fragment %u failed: %s",
                       commit ? "commit" : "abort", (unsigned long long)t->txn, r->tname,
                       r->frag, nines_errdetail());
        upd_kick(k->u, r->ship);
    }
    kern_lock_release_all(k->locks, t->txn);
    sk_txn_forget(k, t);
}

void ksvc_on_commit_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__CommitReq *q = (const Nines__CommitReq *)m->body;
    k->cur = m;
    struct sk_txn *t = sk_txn_get(k, q->txn);
    if (t)
        sk_end(k, t, true);
    sk_end_reply(k, m->from, NINES__MSG_TYPE__COMMIT_CONF, q->txn); /* also when unknown */
    sk_after(k);
    k->cur = NULL;
}

void ksvc_on_abort_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__AbortReq *q = (const Nines__AbortReq *)m->body;
    k->cur = m;
    struct sk_txn *t = sk_txn_get(k, q->txn);
    if (t)
        sk_end(k, t, false);
    else
        kern_lock_release_all(k->locks, q->txn); /* e.g. refused before it was recorded */
    sk_end_reply(k, m->from, NINES__MSG_TYPE__ABORT_CONF, q->txn);
    sk_after(k);
    k->cur = NULL;
}

/* ---- hot standby: redo -------------------------------------------------- */

static struct sk_sb *sk_sb_get(struct ksvc *k, uint64_t txn, uint32_t table, uint32_t frag,
                               bool create)
{
    struct sk_node *nd = sk_map_get(&k->sbs, txn, table, frag);
    if (nd || !create)
        return (struct sk_sb *)nd;
    struct sk_sb *b = (struct sk_sb *)k->free_sbs;
    if (b) {
        k->free_sbs = b->node.next;
        memset(b, 0, sizeof *b);
    } else if (!(b = calloc(1, sizeof *b))) {
        return NULL;
    }
    b->node.a = txn;
    b->node.b = table;
    b->node.c = frag;
    sk_map_put(&k->sbs, &b->node);
    return b;
}

static void sk_sb_forget(struct ksvc *k, struct sk_sb *b)
{
    sk_map_del(&k->sbs, &b->node);
    b->node.next = k->free_sbs;
    k->free_sbs = &b->node;
}

static void sk_send_ready_standby(struct ksvc *k, const struct sk_sb *b, uint32_t to)
{
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__READY_IND);
    Nines__ReadyInd *r = m ? RT_BODY(m, Nines__ReadyInd, nines__ready_ind__init) : NULL;
    if (!r) {
        if (m)
            rt_msg_free(k->rt, m);
        return;
    }
    r->txn = b->node.a;
    r->node = k->self;
    r->table = b->node.b;
    r->frag = b->node.c;
    r->standby = 1;
    (void)rt_send(k->rt, to, RT_SVC_TXC, m);
}

static void sk_sb_check(struct ksvc *k, struct sk_sb *b)
{
    if (b->ready_sent || b->expect == 0 || b->count < b->expect)
        return;
    b->ready_sent = true;
    if (b->ctl)
        sk_send_ready_standby(k, b, b->ctl);
    if (b->hsc && b->hsc != b->ctl)
        sk_send_ready_standby(k, b, b->hsc);
}

#define SK_TRIM_EVERY 8192 /* records held by a standby before trimming is tried */

void sk_on_redo(struct ksvc *k, struct rt_msg *m)
{
    const struct upd_redo *rd = (const struct upd_redo *)(uintptr_t)m->cookie;
    struct sk_rep *r = sk_rep_get(k, rd->table, rd->frag);
    if (!r || kern_frag_role(r->f) == KERN_FRAG_PRIMARY) {
        NLOG_ERROR("kern", "%zu records of table %u fragment %u from node %u: node %u holds no "
                   "hot standby replica of it; not applied", rd->nrecs, rd->table, rd->frag,
                   rd->from, k->self);
        return;
    }
    struct kern_log *log = kern_frag_log(r->f);
    for (size_t i = 0; i < rd->nrecs; i++) {
        const struct kern_logrec *lr = &rd->recs[i];
        if (lr->lsn < kern_log_next_lsn(log))
            continue; /* held already */
        int rc = kern_frag_redo(r->f, lr);
        if (rc < 0) {
            NLOG_ERROR("kern", "redo of table %s fragment %u LSN %llu (txn %llu) failed: %s; "
                       "the rest of this batch is not applied", r->tname, r->frag,
                       (unsigned long long)lr->lsn, (unsigned long long)lr->txn,
                       nines_errdetail());
            return;
        }
        struct sk_sb *b = sk_sb_get(k, lr->txn, rd->table, rd->frag,
                                    lr->op != KERN_LOG_COMMIT && lr->op != KERN_LOG_ABORT);
        if (lr->op == KERN_LOG_COMMIT || lr->op == KERN_LOG_ABORT) {
            if (b)
                sk_sb_forget(k, b);
            continue;
        }
        if (!b) {
            NLOG_ERROR("kern", "no memory to count txn %llu's records", (unsigned long long)lr->txn);
            continue;
        }
        b->count++;
        sk_sb_check(k, b);
    }
    /* the standby's copy of the log serves only the undo of transactions
     * still open when it is promoted: trim the rest now and then */
    if (kern_log_next_lsn(log) - kern_log_first_lsn(log) > SK_TRIM_EVERY)
        (void)kern_frag_log_trim(r->f, kern_log_next_lsn(log));
    for (size_t i = 0; i < rd->nmarks; i++) {
        const Nines__TxnEndMark *mk = rd->marks[i];
        struct sk_sb *b = sk_sb_get(k, mk->txn, rd->table, rd->frag, true);
        if (!b)
            continue;
        b->expect = mk->nrecords;
        b->ctl = mk->ctl;
        b->hsc = mk->hsc;
        sk_sb_check(k, b);
    }
}

/* ---- digests ------------------------------------------------------------ */

#define SK_FNV_OFF 0xcbf29ce484222325ull
#define SK_FNV_PRIME 0x100000001b3ull

static uint64_t sk_fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= SK_FNV_PRIME;
    }
    return h;
}

static int sk_digest(const struct sk_rep *r, Nines__ReplicaDigest *d)
{
    struct kern_bt_cursor *c = malloc(sizeof *c);
    if (!c)
        return nines_err(NINES_ENOMEM, "no memory for a cursor");
    kern_bt_cursor_init(c, kern_frag_tree(r->f));
    uint64_t h = SK_FNV_OFF, rows = 0;
    for (int rc = kern_bt_first(c); rc == 0; rc = kern_bt_next(c)) {
        uint32_t kl = (uint32_t)c->klen;
        h = sk_fnv(h, &kl, sizeof kl);
        h = sk_fnv(h, c->key, c->klen);
        h = sk_fnv(h, c->rec, kern_rec_bytes(c->rec)); /* header incl. the state id */
        rows++;
    }
    free(c);
    nines__replica_digest__init(d);
    d->table = r->table;
    d->frag = r->frag;
    d->primary = kern_frag_role(r->f) == KERN_FRAG_PRIMARY;
    d->rows = rows;
    d->digest = h;
    d->next_lsn = kern_log_next_lsn(kern_frag_log(r->f));
    return 0;
}

void ksvc_on_digest_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__KernDigestReq *q = (const Nines__KernDigestReq *)m->body;
    k->cur = m;
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__KERN_DIGEST_CONF);
    Nines__KernDigestConf *c = r ? RT_BODY(r, Nines__KernDigestConf, nines__kern_digest_conf__init)
                                 : NULL;
    size_t n = k->reps.n;
    Nines__ReplicaDigest **dp = c && n ? rt_msg_alloc(r, n * sizeof *dp) : NULL;
    Nines__ReplicaDigest *ds = dp ? rt_msg_alloc(r, n * sizeof *ds) : NULL;
    if (!c || (n && !ds)) {
        if (r)
            rt_msg_free(rt, r);
        NLOG_ERROR("kern", "no memory for a digest of %zu replicas", n);
    } else {
        size_t j = 0;
        SK_MAP_FOREACH(&k->reps, i, nd, nx)
        {
            const struct sk_rep *rp = (const struct sk_rep *)nd;
            if (q->table && rp->table != q->table)
                continue;
            if (sk_digest(rp, &ds[j]) == 0) {
                dp[j] = &ds[j];
                j++;
            }
        }
        c->node = k->self;
        c->replicas = dp;
        c->n_replicas = j;
        (void)rt_send(rt, m->from, RT_SVC_APP, r);
    }
    sk_after(k);
    k->cur = NULL;
}
