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
 * and list the fragments in `reply` (the controller learns the primary's
 * readiness from that answer; no READY_IND from a primary). */
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

/* The standby's readiness for one end mark: to the mark's hot-standby
 * controller (the commit point), or to its controller when it has none. */
static void sk_send_ready_standby(struct ksvc *k, uint32_t table, uint32_t frag,
                                  const Nines__TxnEndMark *mk)
{
    uint32_t to = mk->hsc ? mk->hsc : mk->ctl;
    if (!to)
        return;
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__READY_IND);
    Nines__ReadyInd *r = m ? RT_BODY(m, Nines__ReadyInd, nines__ready_ind__init) : NULL;
    if (!r) {
        if (m)
            rt_msg_free(k->rt, m);
        return; /* the controller times out and asks */
    }
    r->txn = mk->txn;
    r->node = k->self;
    r->table = table;
    r->frag = frag;
    r->standby = 1;
    (void)rt_send(k->rt, to, RT_SVC_TXC, m);
}

#define SK_TRIM_EVERY 8192 /* records held by a standby before trimming is tried */

/* UPD_MSG_REDO: apply what continues the replica's log, process the end
 * marks that follow what it holds, and tell the update channel the
 * position reached (upd_recv_applied), asking for a resend when it had to
 * stop short. The replica's log is the standby's one LSN truth. */
void sk_on_redo(struct ksvc *k, struct rt_msg *m)
{
    const struct upd_redo *rd = (const struct upd_redo *)(uintptr_t)m->cookie;
    struct upd_applied ap = {.table = rd->table, .frag = rd->frag, .from = rd->from,
                             .pinc = rd->pinc};
    struct sk_rep *r = sk_rep_get(k, rd->table, rd->frag);
    if (!r) {
        /* the primary's dictionary is ahead of ours: ask again later */
        NLOG_DEBUG("kern", "%zu records of table %u fragment %u from node %u: node %u has no "
                   "replica of it yet; resend asked", rd->nrecs, rd->table, rd->frag, rd->from,
                   k->self);
        ap.resend = true;
        upd_recv_applied(k->u, &ap);
        return;
    }
    if (kern_frag_role(r->f) == KERN_FRAG_PRIMARY) {
        NLOG_ERROR("kern", "%zu records of table %s fragment %u from node %u: node %u holds "
                   "the primary replica; not applied", rd->nrecs, r->tname, r->frag, rd->from,
                   k->self);
        return;
    }
    if (r->oos[0]) {
        NLOG_DEBUG("kern", "records of table %s fragment %u from node %u: the replica is out "
                   "of service (%s); not applied", r->tname, r->frag, rd->from, r->oos);
        return;
    }
    struct kern_log *log = kern_frag_log(r->f);
    if (r->pinc != rd->pinc) {
        if (kern_log_next_lsn(log) == 1 && r->mark_seq == 0) {
            r->pinc = rd->pinc; /* holds nothing yet: the stream starts here */
        } else {
            snprintf(r->oos, sizeof r->oos, "it holds records up to LSN %llu of primary "
                     "incarnation %llu; node %u sent records of incarnation %llu: needs a "
                     "rebuild", (unsigned long long)(kern_log_next_lsn(log) - 1),
                     (unsigned long long)r->pinc, rd->from, (unsigned long long)rd->pinc);
            NLOG_ERROR("kern", "hot standby replica of table %s fragment %u on node %u taken "
                       "out of service: %s", r->tname, r->frag, k->self, r->oos);
            return;
        }
    }
    bool resend = false;
    for (size_t i = 0; i < rd->nrecs && !resend; i++) {
        const struct kern_logrec *lr = &rd->recs[i];
        uint64_t next = kern_log_next_lsn(log);
        if (lr->lsn < next)
            continue; /* held already (a resend overlapping what arrived) */
        if (lr->lsn > next) {
            if (!r->gap_logged)
                NLOG_WARN("kern", "table %s fragment %u from node %u: LSN gap, holds up to "
                          "%llu, got %llu; resend asked", r->tname, r->frag, rd->from,
                          (unsigned long long)(next - 1), (unsigned long long)lr->lsn);
            r->gap_logged = true;
            resend = true;
            break;
        }
        int rc = kern_frag_redo(r->f, lr);
        if (rc < 0) {
            NLOG_ERROR("kern", "redo of table %s fragment %u LSN %llu (txn %llu) failed: %s; "
                       "the rest of this batch is not applied, resend asked", r->tname, r->frag,
                       (unsigned long long)lr->lsn, (unsigned long long)lr->txn,
                       nines_errdetail());
            resend = true;
            break;
        }
        r->gap_logged = false;
    }
    uint64_t applied = kern_log_next_lsn(log) - 1;
    for (size_t i = 0; i < rd->nmarks && !resend; i++) {
        const Nines__TxnEndMark *mk = rd->marks[i];
        if (mk->seq <= r->mark_seq)
            continue; /* processed already */
        if (mk->seq != r->mark_seq + 1 || mk->lsn > applied) {
            NLOG_DEBUG("kern", "table %s fragment %u: end mark %llu (LSN %llu) after mark %llu "
                       "with LSN %llu applied: resend asked", r->tname, r->frag,
                       (unsigned long long)mk->seq, (unsigned long long)mk->lsn,
                       (unsigned long long)r->mark_seq, (unsigned long long)applied);
            resend = true;
            break;
        }
        /* every record of mk->txn here is at or below mk->lsn, and the log
         * holds every LSN up to `applied` without a hole: it is ready */
        r->mark_seq = mk->seq;
        sk_send_ready_standby(k, r->table, r->frag, mk);
    }
    /* the standby's copy of the log serves only the undo of transactions
     * still open when it is promoted: trim the rest now and then */
    if (kern_log_next_lsn(log) - kern_log_first_lsn(log) > SK_TRIM_EVERY)
        (void)kern_frag_log_trim(r->f, kern_log_next_lsn(log));
    ap.pinc = r->pinc;
    ap.lsn = applied;
    ap.mark_seq = r->mark_seq;
    ap.resend = resend;
    upd_recv_applied(k->u, &ap);
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
