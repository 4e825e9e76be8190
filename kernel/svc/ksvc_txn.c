/* Kernel service: the end of a transaction at a primary (prepare with end
 * marks and READY_IND, commit, abort), and redo at a hot standby with the
 * standby's READY_IND. */
#include "ksvc_int.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- prepared transactions, oldest first (they ask for their outcome) ---- */

/* The controller of t: the top 8 bits of its id (txctl README "Transaction
 * ids"), else the one named in its requests. */
static uint32_t sk_ctl_node(const struct sk_txn *t)
{
    uint32_t n = (uint32_t)(t->txn >> 56);
    return n ? n : t->ctl;
}

static void sk_arm_ask(struct ksvc *k)
{
    if (k->ask_armed || !k->prep_head)
        return;
    uint64_t now = rt_now_us(k->rt), due = k->prep_head->ask_base_us + k->ask_us;
    if (rt_timer_add(k->rt, RT_SVC_KERN, due > now ? due - now : 1, SK_TIMER_ASK) > 0)
        k->ask_armed = true;
}

static uint64_t sk_peer_inc(struct ksvc *k, uint32_t node)
{
    struct net_endpoint *ep = rt_net(k->rt);
    if (!ep || !node)
        return 0;
    return node == k->self ? net_incarnation(ep) : net_peer_incarnation(ep, node);
}

/* Append t (now or again PREPARED) to the list, due ask_us from now. */
static void sk_prepared_link(struct ksvc *k, struct sk_txn *t)
{
    sk_prepared_unlink(k, t);
    t->ask_base_us = rt_now_us(k->rt);
    t->pprev = k->prep_tail;
    t->pnext = NULL;
    if (k->prep_tail)
        k->prep_tail->pnext = t;
    else
        k->prep_head = t;
    k->prep_tail = t;
    t->plinked = true;
    sk_arm_ask(k);
}

void sk_prepared_unlink(struct ksvc *k, struct sk_txn *t)
{
    if (!t->plinked)
        return;
    if (t->pprev)
        t->pprev->pnext = t->pnext;
    else
        k->prep_head = t->pnext;
    if (t->pnext)
        t->pnext->pprev = t->pprev;
    else
        k->prep_tail = t->pprev;
    t->pprev = t->pnext = NULL;
    t->plinked = false;
}

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
        fr[i].last_lsn = x->nrecords && r ? kern_log_next_lsn(kern_frag_log(r->f)) - 1 : 0;
        fp[i] = &fr[i];
    }
    *frags = fp;
    *nfrags = t->ntouch;
    return 0;
}

/* READY_IND(primary) to the hot-standby controller, the commit point: the
 * fragments touched here (which standbys it must hear from) and the
 * procedure's value. Not sent without an hsc (a one-site cluster: the ctl
 * learns readiness from its answer). A lost one makes the ctl ask the hsc
 * to abort after its timeout. */
static void sk_ready_primary(struct ksvc *k, const struct sk_txn *t)
{
    if (!t->hsc)
        return;
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__READY_IND);
    Nines__ReadyInd *b = m ? RT_BODY(m, Nines__ReadyInd, nines__ready_ind__init) : NULL;
    if (b && sk_frags_out(k, t, m, &b->frags, &b->n_frags) == 0) {
        b->txn = t->txn;
        b->node = k->self;
        b->has_value = t->has_value;
        b->value = t->value;
        net_addr to = t->hsc == k->self ? 0 : t->hsc;
        if (!sk_dlog_hold(k, t, m, to)) /* held while it waits for the disk (ksvc_dlog.c) */
            (void)rt_send(k->rt, to, RT_SVC_TXC, m);
    } else if (m) {
        rt_msg_free(k->rt, m);
    }
}

/* Ship an end mark for every fragment with records of t, mark t prepared,
 * list the fragments in `reply` (the controller's view) and tell the hsc
 * (READY_IND). */
int sk_prepare(struct ksvc *k, struct sk_txn *t, struct rt_msg *reply,
               Nines__FragRecords ***frags, size_t *nfrags)
{
    /* one replica left and nowhere to copy its log: refused (ksvc_copy.c) */
    for (uint32_t i = 0; i < t->ntouch; i++) {
        int rc = t->touch[i].nrecords
                     ? sk_copy_write_check(k, t->touch[i].table, t->touch[i].frag)
                     : 0;
        if (rc)
            return rc;
    }
    for (uint32_t i = 0; i < t->ntouch; i++) {
        const struct sk_touch *x = &t->touch[i];
        if (x->nrecords == 0)
            continue; /* only read here: nothing for the standby to hold */
        struct sk_rep *r = sk_rep_get(k, x->table, x->frag);
        if (!r || !r->ship)
            return nines_err(NINES_ESTATE, "table %u fragment %u is no longer primary at node "
                             "%u", x->table, x->frag, k->self);
        int rc = sk_write_allowed(k, r); /* the node set changed since the write */
        if (rc)
            return rc;
        rc = upd_ship_mark(k->u, r->ship, t->txn, x->nrecords, t->ctl, t->hsc);
        if (rc)
            return rc;
    }
    int rc = sk_frags_out(k, t, reply, frags, nfrags);
    if (rc == 0) /* must its readiness wait for the local fsync? (ksvc_dlog.c) */
        rc = sk_dlog_prepare(k, t);
    if (rc)
        return rc;
    t->st = SK_TX_PREPARED;
    t->ask = SK_ASK_NONE;
    t->ctl_inc = sk_peer_inc(k, sk_ctl_node(t)); /* as known now, for the question */
    t->hsc_inc = sk_peer_inc(k, t->hsc);
    sk_prepared_link(k, t);
    sk_ready_primary(k, t);
    return 0;
}

static void sk_unhold(struct ksvc *k, struct sk_txn *t)
{
    if (t->held) {
        k->st.held--;
        t->held = false;
    }
    t->hold_logged = false;
}

/* A PREPARE_REQ naming another hsc for a transaction PREPARED here: its
 * controller moved it to a new hsc (the old one left the node set). The
 * new hsc gets this kernel's READY_IND, and a fresh end mark goes behind
 * the records of every fragment it wrote that has a standby or log copy,
 * so the standby's READY_IND goes to the new hsc too (README "Re-prepare"). */
static void sk_reprepare(struct ksvc *k, struct sk_txn *t, uint32_t ctl, uint32_t hsc)
{
    NLOG_INFO("kern", "txn %llu prepared at node %u: hot-standby controller node %u -> %u "
              "(re-prepare)", (unsigned long long)t->txn, k->self, t->hsc, hsc);
    if (ctl)
        t->ctl = ctl;
    t->hsc = hsc;
    t->hsc_inc = sk_peer_inc(k, hsc);
    for (uint32_t i = 0; i < t->ntouch; i++) {
        const struct sk_touch *x = &t->touch[i];
        struct sk_rep *r = x->nrecords ? sk_rep_get(k, x->table, x->frag) : NULL;
        if (!r || !r->ship)
            continue;
        int rc = upd_ship_mark(k->u, r->ship, t->txn, x->nrecords, t->ctl, t->hsc);
        if (rc) /* the standby's READY_IND then stays missing: the hsc aborts it */
            NLOG_ERROR("kern", "txn %llu: no fresh end mark for table %s fragment %u: %s",
                       (unsigned long long)t->txn, r->tname, r->frag, nines_errdetail());
    }
    sk_ready_primary(k, t);
    sk_unhold(k, t);
    t->ask = SK_ASK_NONE;
    sk_prepared_link(k, t); /* asks again ask_us from now if nothing comes */
}

/* r's log goes to a new node: every transaction PREPARED here that wrote
 * in r gets a fresh end mark behind its records, so the new target holds
 * the mark of every transaction that may still commit (a mark its old
 * target acknowledged is not sent again by the stint; a takeover by a
 * rebuilt standby would otherwise treat that transaction as unprepared).
 * README "Rebuild". */
void sk_remark_prepared(struct ksvc *k, struct sk_rep *r)
{
    if (!r->ship)
        return;
    uint32_t n = 0;
    SK_MAP_FOREACH(&k->txns, i, nd, nx)
    {
        struct sk_txn *t = (struct sk_txn *)nd;
        if (t->st != SK_TX_PREPARED)
            continue;
        for (uint32_t j = 0; j < t->ntouch; j++) {
            const struct sk_touch *x = &t->touch[j];
            if (x->table != r->table || x->frag != r->frag || !x->nrecords ||
                upd_ship_has_mark(r->ship, t->txn))
                continue; /* a mark still queued goes to the new target anyway */
            if (upd_ship_mark(k->u, r->ship, t->txn, x->nrecords, t->ctl, t->hsc))
                NLOG_ERROR("kern", "txn %llu: no fresh end mark for table %s fragment %u at its "
                           "new log target: %s", (unsigned long long)t->txn, r->tname, r->frag,
                           nines_errdetail());
            else
                n++;
        }
    }
    if (n)
        NLOG_INFO("kern", "table %s fragment %u: %u prepared transactions marked again for node "
                  "%u", r->tname, r->frag, n, upd_ship_standby(r->ship));
}

void ksvc_on_prepare_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__PrepareReq *q = (const Nines__PrepareReq *)m->body;
    k->cur = m;
    struct sk_txn *t = sk_txn_get(k, q->txn);
    int rc = 0;
    int32_t outcome = 0;
    const struct rt_nodeset *ns = rt_nodeset(rt);
    if (!ns->serving) {
        rc = nines_err(NINES_ENOTMEMBER, "node %u does not serve (node set %llu): %s", k->self,
                       (unsigned long long)ns->epoch, ns->reason);
    } else if (!t && sk_promoting(k)) {
        /* a takeover is under way: the transaction may be one it is about
         * to take over in doubt; "unknown" now would be taken for "ended and
         * forgotten here" (txctl README "The hsc left"). Not answered: the
         * controller asks again. */
        k->st.end_deferred++;
        (void)sk_defer(k, m);
        sk_after(k);
        k->cur = NULL;
        return;
    } else if (!t) {
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
            if ((rc = sk_dlog_refused(k, t)) != 0)
                break; /* the disk log failed while it waited: never ready */
            if (q->hsc && q->hsc != t->hsc)
                sk_reprepare(k, t, q->ctl, q->hsc);
            break; /* else a repeated prepare: answer again */
        case SK_TX_WAITING_LOCK:
            rc = nines_err(NINES_ESTATE, "txn %llu has a request waiting for a lock at node %u",
                           (unsigned long long)q->txn, k->self);
            break;
        case SK_TX_ENDED:
        case SK_TX_END_FAILED: /* the decision was taken: say which */
            outcome = t->commit ? 1 : 2;
            rc = nines_err(NINES_ESTATE, "txn %llu has %s at node %u", (unsigned long long)q->txn,
                           t->commit ? "committed" : "aborted", k->self);
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
            if (!sk_dlog_hold(k, t, r, m->from)) /* held while it waits for the disk */
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
            f->outcome = outcome;
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
        (void)rt_send(k->rt, to, RT_SVC_TXC, r); /* lost: the controller re-sends the request */
    else
        rt_msg_free(k->rt, r);
}

/* t is done: ended here and its COMMIT/ABORT record applied by every
 * standby. Confirm and forget. */
static void sk_confirm(struct ksvc *k, struct sk_txn *t)
{
    sk_end_reply(k, t->end_from,
                 t->commit ? NINES__MSG_TYPE__COMMIT_CONF : NINES__MSG_TYPE__ABORT_CONF, t->txn);
    sk_txn_forget(k, t);
}

void sk_rep_out_of_service(struct ksvc *k, struct sk_rep *r, const char *fmt, ...)
{
    if (r->oos[0])
        return; /* the first reason stands */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->oos, sizeof r->oos, fmt, ap);
    va_end(ap);
    NLOG_ERROR("kern", "the %s replica of table %s fragment %u on node %u is taken out of "
               "service: %s", kern_frag_role_name(kern_frag_role(r->f)), r->tname, r->frag,
               k->self, r->oos);
}

/* ---- pending confirmations: a per-replica FIFO by LSN ---- */

static int sk_pend_reserve(struct sk_rep *r)
{
    if (r->pn < r->pcap)
        return 0;
    uint32_t cap = r->pcap ? 2 * r->pcap : 64;
    struct sk_pend *np = malloc(cap * sizeof *np);
    if (!np)
        return nines_err(NINES_ENOMEM, "no memory to track %u confirmations of table %s "
                         "fragment %u", cap, r->tname, r->frag);
    for (uint32_t i = 0; i < r->pn; i++)
        np[i] = r->pend[(r->phead + i) % r->pcap];
    free(r->pend);
    r->pend = np;
    r->pcap = cap;
    r->phead = 0;
    return 0;
}

static void sk_pend_push(struct sk_rep *r, uint64_t txn, uint64_t lsn)
{
    N_ASSERT(r->pn < r->pcap); /* reserved */
    r->pend[(r->phead + r->pn) % r->pcap] = (struct sk_pend){txn, lsn};
    r->pn++;
}

/* Pop r's entries up to lsn; each is one fragment less to wait for. */
static void sk_pend_pop(struct ksvc *k, struct sk_rep *r, uint64_t lsn)
{
    while (r->pn && r->pend[r->phead].lsn <= lsn) {
        uint64_t txn = r->pend[r->phead].txn;
        r->phead = (r->phead + 1) % r->pcap;
        r->pn--;
        struct sk_txn *t = sk_txn_get(k, txn);
        if (!t || t->npending == 0)
            continue;
        t->npending--;
        switch (t->st) {
        case SK_TX_ENDED:
            if (t->npending == 0)
                sk_confirm(k, t);
            break;
        case SK_TX_END_FAILED:
            break; /* never confirmed: another replica failed */
        default:
            NLOG_ERROR("kern", "txn %llu in state %s had a pending confirmation in table %s "
                       "fragment %u", (unsigned long long)txn, sk_txn_state_name(t->st),
                       r->tname, r->frag);
            break;
        }
    }
}

void sk_pend_flush(struct ksvc *k, struct sk_rep *r) { sk_pend_pop(k, r, UINT64_MAX); }

/* UPD_MSG_ACKED: the standby of a primary replica applied every record up
 * to a->lsn. */
void sk_on_acked(struct ksvc *k, const struct upd_acked *a)
{
    struct sk_rep *r = sk_rep_get(k, a->table, a->frag);
    if (r)
        sk_pend_pop(k, r, a->lsn);
}

/* Commit (true) or abort t in every fragment it wrote, ship the records,
 * release its locks; confirm (COMMIT_CONF/ABORT_CONF to `from`) when every
 * standby applied the COMMIT/ABORT record — at once where there is none.
 * A commit or abort that fails in a replica takes that replica out of
 * service and keeps t's locks; t is never confirmed (README "Commit and
 * abort"). */
static void sk_end(struct ksvc *k, struct sk_txn *t, bool commit, uint64_t gci, net_addr from)
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
    case SK_TX_ENDED:
        if (t->commit == commit)
            t->end_from = from; /* a repeated request: confirmed when done */
        else
            NLOG_ERROR("kern", "%s of txn %llu, which node %u %s: ignored, not answered",
                       commit ? "COMMIT" : "ABORT", (unsigned long long)t->txn, k->self,
                       t->commit ? "committed" : "aborted");
        return;
    case SK_TX_END_FAILED:
        NLOG_DEBUG("kern", "%s of txn %llu, whose %s failed at node %u: not answered (a "
                   "takeover resolves it)", commit ? "COMMIT" : "ABORT",
                   (unsigned long long)t->txn, t->commit ? "commit" : "abort", k->self);
        return;
    default:
        N_ASSERT(!"bad transaction state");
        return;
    }
    /* room to track every confirmation first: nothing ends half-tracked */
    for (uint32_t i = 0; i < t->ntouch; i++) {
        struct sk_rep *r = t->touch[i].nrecords ? sk_rep_get(k, t->touch[i].table,
                                                             t->touch[i].frag)
                                                : NULL;
        if (r && sk_pend_reserve(r) < 0) {
            NLOG_ERROR("kern", "%s of txn %llu postponed: %s", commit ? "commit" : "abort",
                       (unsigned long long)t->txn, nines_errdetail());
            return; /* the controller re-sends the request */
        }
    }
    sk_prepared_unlink(k, t);
    sk_unhold(k, t);
    t->commit = commit;
    t->gci = commit ? gci : 0;
    t->end_from = from;
    t->npending = 0;
    bool failed = false;
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
        int rc;
        if (r->oos[0]) {
            /* not served any more (a failure, or no role in the node set):
             * nothing is written there and nothing confirmed */
            NLOG_WARN("kern", "%s of txn %llu: table %s fragment %u on node %u is out of "
                      "service (%s)", commit ? "commit" : "abort", (unsigned long long)t->txn,
                      r->tname, r->frag, k->self, r->oos);
            failed = true;
            continue;
        }
        if (N_FAULT(commit ? "kern.commit.fail" : "kern.abort.fail"))
            rc = nines_err(NINES_ENOMEM, "fault point kern.%s.fail", commit ? "commit" : "abort");
        else
            rc = commit ? kern_frag_commit_gci(r->f, t->txn, t->gci, NULL)
                        : kern_frag_abort(r->f, t->txn, NULL);
        if (rc < 0) {
            sk_rep_out_of_service(k, r, "%s of txn %llu failed: %s", commit ? "commit" : "abort",
                                  (unsigned long long)t->txn, nines_errdetail());
            failed = true;
            continue;
        }
        upd_kick(k->u, r->ship);
        if (r->ship && upd_ship_standby(r->ship)) {
            sk_pend_push(r, t->txn, kern_log_next_lsn(kern_frag_log(r->f)) - 1);
            t->npending++;
        }
    }
    if (failed) {
        /* the replica's state is unknown: keep every lock so nobody reads or
         * overwrites what the transaction touched, and never confirm */
        t->st = SK_TX_END_FAILED;
        NLOG_ERROR("kern", "txn %llu: %s failed at node %u; its locks stay held and it is not "
                   "confirmed (a takeover resolves it)", (unsigned long long)t->txn,
                   commit ? "commit" : "abort", k->self);
        return;
    }
    kern_lock_release_all(k->locks, t->txn);
    t->st = SK_TX_ENDED;
    if (t->npending == 0)
        sk_confirm(k, t);
}

void ksvc_on_commit_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__CommitReq *q = (const Nines__CommitReq *)m->body;
    k->cur = m;
    struct sk_txn *t = sk_txn_get(k, q->txn);
    if (t)
        sk_end(k, t, true, q->gci, m->from); /* the COMMIT records carry its epoch */
    else if (sk_promoting(k)) {
        /* a takeover is under way here: the transaction may be one of the
         * in-doubt ones it is about to take over. Confirming it now as
         * "forgotten" would let its controllers forget a commit this
         * replica never made: handled again when the takeover is done */
        k->st.end_deferred++;
        (void)sk_defer(k, m);
    }
    else /* confirmed and forgotten before (only after its standbys applied it) */
        sk_end_reply(k, m->from, NINES__MSG_TYPE__COMMIT_CONF, q->txn);
    sk_after(k);
    k->cur = NULL;
}

void ksvc_on_abort_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__AbortReq *q = (const Nines__AbortReq *)m->body;
    k->cur = m;
    struct sk_txn *t = sk_txn_get(k, q->txn);
    if (t) {
        sk_end(k, t, false, 0, m->from);
    } else if (sk_promoting(k)) {
        k->st.end_deferred++; /* as for COMMIT_REQ: handled after the takeover */
        (void)sk_defer(k, m);
    } else {
        kern_lock_release_all(k->locks, q->txn); /* e.g. refused before it was recorded */
        sk_end_reply(k, m->from, NINES__MSG_TYPE__ABORT_CONF, q->txn);
    }
    sk_after(k);
    k->cur = NULL;
}

/* ---- a prepared transaction asks for its outcome ------------------------ */

static bool sk_send_outcome_req(struct ksvc *k, const struct sk_txn *t, uint32_t to,
                                uint64_t inc)
{
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__TXC_OUTCOME_REQ);
    Nines__TxcOutcomeReq *b = m ? RT_BODY(m, Nines__TxcOutcomeReq, nines__txc_outcome_req__init)
                                : NULL;
    if (!b) {
        if (m)
            rt_msg_free(k->rt, m);
        return false;
    }
    b->txn = t->txn;
    b->node = k->self;
    b->asked_inc = inc;
    return rt_send(k->rt, to, RT_SVC_TXC, m) == 0;
}

/* Nobody could tell: keep holding (locks and all), count and log it once,
 * and ask again at the next round. Never decide alone. */
static void sk_ask_hold(struct ksvc *k, struct sk_txn *t, const char *why)
{
    t->ask = SK_ASK_NONE;
    if (!t->held) {
        t->held = true;
        k->st.held++;
    }
    if (t->hold_logged)
        return;
    t->hold_logged = true;
    NLOG_WARN("kern", "txn %llu is prepared at node %u%s and its outcome is unknown: %s; it "
              "keeps its locks (its keys are blocked) and asks again every %llu ms (controller "
              "node %u, hot-standby controller node %u)", (unsigned long long)t->txn, k->self,
              t->takeover ? " (in doubt at a takeover)" : "", why,
              (unsigned long long)(k->ask_us / 1000u), sk_ctl_node(t), t->hsc);
}

/* Whom t asks after `after`: its controller, then its hsc; a transaction
 * in doubt at a takeover asks its hsc first (the commit point). */
static enum sk_ask sk_ask_next(const struct sk_txn *t, enum sk_ask after)
{
    enum sk_ask first = t->takeover ? SK_ASK_HSC : SK_ASK_CTL;
    enum sk_ask second = t->takeover ? SK_ASK_CTL : SK_ASK_HSC;
    if (after == SK_ASK_NONE)
        return first;
    return after == first ? second : SK_ASK_NONE;
}

static uint32_t sk_ask_node(const struct sk_txn *t, enum sk_ask w)
{
    return w == SK_ASK_CTL ? sk_ctl_node(t) : w == SK_ASK_HSC ? t->hsc : 0;
}

/* Ask the next one after `after` that is in the installed node set
 * (skipping the others); hold when none is left. `why` says why the one
 * before could not tell. */
static void sk_ask_from(struct ksvc *k, struct sk_txn *t, enum sk_ask after, const char *why)
{
    char skipped[200] = "";
    for (enum sk_ask w = sk_ask_next(t, after); w != SK_ASK_NONE; w = sk_ask_next(t, w)) {
        uint32_t node = sk_ask_node(t, w);
        const char *who = w == SK_ASK_CTL ? "controller" : "hot-standby controller";
        t->ask = w;
        if (node && sk_member(k, node) &&
            sk_send_outcome_req(k, t, node, w == SK_ASK_CTL ? t->ctl_inc : t->hsc_inc))
            return;
        size_t l = strlen(skipped);
        snprintf(skipped + l, sizeof skipped - l, "%s%s %s", l ? "; " : "", who,
                 node ? "not in the node set" : "none");
    }
    char all[400];
    snprintf(all, sizeof all, "%s%s%s", why ? why : "", why && skipped[0] ? "; " : "", skipped);
    sk_ask_hold(k, t, all);
}

static void sk_ask(struct ksvc *k, struct sk_txn *t)
{
    if (!rt_nodeset(k->rt)->serving)
        return; /* outside the node set: whoever holds its fragments now resolves it */
    NLOG_INFO("kern", "txn %llu prepared at node %u for %llu ms without a decision: asking its "
              "controllers", (unsigned long long)t->txn, k->self,
              (unsigned long long)((rt_now_us(k->rt) - t->ask_base_us) / 1000u));
    sk_ask_from(k, t, SK_ASK_NONE, NULL);
}

void sk_takeover_prepared(struct ksvc *k, struct sk_txn *t)
{
    t->st = SK_TX_PREPARED;
    t->takeover = true;
    t->ask = SK_ASK_NONE;
    t->ctl_inc = t->hsc_inc = 0; /* not known at its prepare (elsewhere) */
    sk_prepared_link(k, t);
    NLOG_INFO("kern", "takeover at node %u: txn %llu is in doubt (end mark, no COMMIT/ABORT "
              "record): its locks are held and its hot-standby controller (node %u), then its "
              "controller (node %u) are asked", k->self, (unsigned long long)t->txn, t->hsc,
              sk_ctl_node(t));
    sk_ask_from(k, t, SK_ASK_NONE, NULL);
    k->tk_delay_us = 0;
    sk_takeover_ask_arm(k);
}

void sk_takeover_ask_arm(struct ksvc *k)
{
    if (k->tk_armed)
        return;
    k->tk_delay_us = k->tk_delay_us ? 2 * k->tk_delay_us : 50000;
    if (k->tk_delay_us >= k->ask_us)
        return; /* the ordinary questions take over */
    if (rt_timer_add(k->rt, RT_SVC_KERN, k->tk_delay_us, SK_TIMER_TAKEOVER_ASK) > 0)
        k->tk_armed = true;
}

void sk_takeover_ask_due(struct ksvc *k)
{
    bool any = false;
    SK_MAP_FOREACH(&k->txns, i, nd, nx)
    {
        struct sk_txn *t = (struct sk_txn *)nd;
        if (t->takeover && t->st == SK_TX_PREPARED) {
            any = true;
            sk_ask_from(k, t, SK_ASK_NONE, NULL);
        }
    }
    if (any)
        sk_takeover_ask_arm(k);
}

/* SK_TIMER_ASK: every prepared transaction due asks (oldest first); each
 * goes to the end of the list, due again ask_us later. */
void sk_ask_due(struct ksvc *k)
{
    uint64_t now = rt_now_us(k->rt);
    uint32_t n = 0;
    for (struct sk_txn *t = k->prep_head; t && t->ask_base_us + k->ask_us <= now;
         t = k->prep_head) {
        if (t->st != SK_TX_PREPARED) { /* cannot happen: leaving PREPARED unlinks */
            sk_prepared_unlink(k, t);
            continue;
        }
        sk_ask(k, t);
        sk_prepared_link(k, t);
        if (++n == k->txns.n)
            break; /* each at most once per round */
    }
    sk_arm_ask(k);
}

void ksvc_on_outcome_ref(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__TxcOutcomeRef *b = (const Nines__TxcOutcomeRef *)m->body;
    k->cur = m;
    struct sk_txn *t = sk_txn_get(k, b->txn);
    uint32_t from = m->from ? (uint32_t)m->from : k->self;
    if (!t || t->st != SK_TX_PREPARED) {
        NLOG_DEBUG("kern", "TXC_OUTCOME_REF for txn %llu from node %u, not prepared here: "
                   "ignored", (unsigned long long)b->txn, from);
    } else {
        switch (t->ask) {
        case SK_ASK_CTL:
        case SK_ASK_HSC:
            if (from == sk_ask_node(t, t->ask)) {
                char why[300];
                snprintf(why, sizeof why, "%s node %u cannot tell (%s)",
                         t->ask == SK_ASK_CTL ? "controller" : "hot-standby controller", from,
                         b->detail ? b->detail : "");
                NLOG_INFO("kern", "txn %llu: %s", (unsigned long long)t->txn, why);
                sk_ask_from(k, t, t->ask, why);
            }
            break;
        case SK_ASK_NONE:
            break; /* a late answer of an earlier round */
        default:
            NLOG_ERROR("kern", "txn %llu: bad ask state %d", (unsigned long long)t->txn,
                       (int)t->ask);
            break;
        }
    }
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
#define SK_REFUSE_LOG_US 1000000u /* at most one "records refused" line a second */

/* A replica takes log records only from its fragment's primary in the
 * installed node set; while it takes over (PROMOTING), also those the
 * previous primary sent before the new epoch (README "Takeover"). */
static bool sk_redo_from_ok(const struct ksvc *k, const struct sk_rep *r, uint32_t from,
                            uint64_t epoch)
{
    switch (kern_frag_role(r->f)) {
    case KERN_FRAG_HOT_STANDBY:
        return from == r->ro.primary && from != k->self;
    case KERN_FRAG_PROMOTING:
        return from == r->prev_primary && epoch < r->promote_epoch;
    case KERN_FRAG_PRIMARY:
        return false;
    default:
        return false;
    }
}

static void sk_redo_refused(struct ksvc *k, const struct sk_rep *r, const struct upd_redo *rd,
                            uint64_t epoch)
{
    k->st.redo_refused++;
    uint64_t now = rt_now_us(k->rt);
    if (k->refuse_log_us && now - k->refuse_log_us < SK_REFUSE_LOG_US) {
        k->refuse_quiet++;
        return;
    }
    NLOG_WARN("kern", "dropping %zu log records of table %s fragment %u from node %u (its epoch "
              "%llu): node %u holds the %s replica and the fragment's primary in node set %llu "
              "is node %u (%llu more batches dropped since the last such line)", rd->nrecs,
              r->tname, r->frag, rd->from, (unsigned long long)epoch, k->self,
              kern_frag_role_name(kern_frag_role(r->f)), (unsigned long long)r->ro_epoch,
              r->ro.primary, (unsigned long long)k->refuse_quiet);
    k->refuse_log_us = now;
    k->refuse_quiet = 0;
}

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
    if ((!r || sk_rb_holding(r)) && sk_copy_on_redo(k, rd))
        return; /* this node is the fragment's log copy (ksvc_copy.c), also while its
                 * replica is being copied (README "Rebuild") */
    if (r && sk_rb_holding(r))
        return; /* not this node's log-copy stream: nothing goes into a replica being copied */
    if (!r) {
        /* the primary's dictionary is ahead of ours: ask again later */
        NLOG_DEBUG("kern", "%zu records of table %u fragment %u from node %u: node %u has no "
                   "replica of it yet; resend asked", rd->nrecs, rd->table, rd->frag, rd->from,
                   k->self);
        ap.resend = true;
        upd_recv_applied(k->u, &ap);
        return;
    }
    if (!sk_redo_from_ok(k, r, rd->from, m->epoch)) {
        sk_redo_refused(k, r, rd, m->epoch);
        return; /* not acknowledged either: the sender is not this epoch's primary */
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
        } else if (r->adopt_pinc) {
            /* rebuilt from a copy with no stream held: the stream's stint
             * carries every end mark after start_seq (README "Rebuild") */
            r->adopt_pinc = false;
            r->pinc = rd->pinc;
            r->mark_seq = rd->start_seq;
        } else {
            sk_rep_out_of_service(k, r, "it holds records up to LSN %llu of primary "
                                  "incarnation %llu; node %u sent records of incarnation %llu: "
                                  "needs a rebuild",
                                  (unsigned long long)(kern_log_next_lsn(log) - 1),
                                  (unsigned long long)r->pinc, rd->from,
                                  (unsigned long long)rd->pinc);
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
        int rc = N_FAULT("kern.redo.fail")
                     ? nines_err(NINES_ENOMEM, "fault point kern.redo.fail")
                     : kern_frag_redo(r->f, lr);
        if (rc < 0) {
            NLOG_ERROR("kern", "redo of table %s fragment %u LSN %llu (txn %llu) failed: %s; "
                       "the rest of this batch is not applied, resend asked", r->tname, r->frag,
                       (unsigned long long)lr->lsn, (unsigned long long)lr->txn,
                       nines_errdetail());
            resend = true;
            break;
        }
        r->gap_logged = false;
        if (lr->op == KERN_LOG_COMMIT || lr->op == KERN_LOG_ABORT)
            sk_mark_forget(k, r->table, r->frag, lr->txn); /* no longer in doubt */
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
        sk_mark_keep(k, r, mk); /* until its COMMIT/ABORT record: a takeover asks its hsc */
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
