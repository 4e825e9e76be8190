/* Hot-standby controller role — the commit point (txctl/README.md "The
 * commit point"). For a transaction whose primary controller is on the
 * other site it holds the participant list (TXC_START_REQ), collects the
 * READY_INDs of the primary kernels and of the standbys they name, records
 * COMMIT when all are ready and only then answers TXC_READY_CONF; it
 * records ABORT when the ctl or a kernel asks first.
 * The decision, the client's request id and the result stay until the ctl's
 * TXC_FORGET_REQ, which comes only when every kernel is done. */
#include "txc_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#define TXC_HSC_HOLD_FACTOR 4   /* decided entries re-send their decision every 4 timeouts */

static bool hsc_state(enum txc_state s) { return txc_is_hsc_state(s); }

/* This process's incarnation (HELLO): a kernel names the one it knew when
 * it prepared (TXC_OUTCOME_REQ.asked_inc); 0 when there is no network. */
static uint64_t self_inc(struct txc *t)
{
    struct net_endpoint *ep = rt_net(t->rt);
    return ep ? net_incarnation(ep) : 0;
}

/* A standby READY_IND: the participant whose standby is its node is ready
 * there. False when none is (yet): the caller keeps it while the entry
 * waits (the primary's READY_IND may name that standby later). */
static bool apply_standby(struct txc_txn *x, const Nines__ReadyInd *b)
{
    for (uint32_t i = 0; i < x->nparts; i++) {
        struct txc_part *p = &x->parts[i];
        if (p->table == b->table && p->frag == b->frag && p->standby == b->node) {
            p->s_ready = true;
            return true;
        }
    }
    return false;
}

/* A READY_IND into x's participants; false: a standby's that names no
 * participant's standby (yet). */
static bool apply(struct txc *t, struct txc_txn *x, const Nines__ReadyInd *b)
{
    if (b->standby)
        return apply_standby(x, b);
    /* a fragment whose ops ran at another primary than START named: the
     * ctl sent them again where the fragment's primary moved (a takeback
     * switched it while they were refused, txc_ctl.c "the request again");
     * only one node ever prepares a transaction's ops of a fragment */
    bool hit = false, moved = false;
    for (size_t j = 0; j < b->n_frags; j++) {
        const Nines__FragRecords *f = b->frags[j];
        for (uint32_t i = 0; f && i < x->nparts; i++) {
            struct txc_part *p = &x->parts[i];
            if (p->table != f->table || p->frag != f->frag)
                continue;
            if (p->primary != b->node) {
                if (p->p_ready)
                    continue; /* its ops prepared at the node START named */
                p->primary = b->node;
                moved = true;
            }
            p->p_ready = hit = true;
        }
    }
    if (!b->n_frags) /* (a primary lists every fragment it touched: none here) */
        for (uint32_t i = 0; i < x->nparts; i++)
            if (x->parts[i].primary == b->node)
                x->parts[i].p_ready = hit = true;
    if (!hit) {
        t->st.stale++;
        return true;
    }
    /* which of its fragments shipped records, and to which standby */
    txc_part_frags(x, b->node, b->frags, b->n_frags);
    if (b->has_value) {
        x->has_value = true;
        x->value = b->value;
    }
    if (moved) /* standby readies kept before this one named their node */
        for (struct rt_msg *e = x->kept; e; e = e->next)
            if (e->type == NINES__MSG_TYPE__READY_IND &&
                ((const Nines__ReadyInd *)e->body)->standby)
                (void)apply_standby(x, (const Nines__ReadyInd *)e->body);
    return true;
}

/* TXC_READY_CONF: COMMIT is recorded here, with the procedure's value. */
static void send_ready_conf(struct txc *t, struct txc_txn *x)
{
    struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__TXC_READY_CONF);
    Nines__TxcReadyConf *b = m ? RT_BODY(m, Nines__TxcReadyConf, nines__txc_ready_conf__init)
                               : NULL;
    if (!b) {
        if (m)
            rt_msg_free(t->rt, m);
        NLOG_ERROR("txc", "hsc txn %" PRIx64 ": no memory for TXC_READY_CONF (re-sent with "
                   "the decision)", x->id);
        return;
    }
    b->txn = x->id;
    b->has_value = x->has_value;
    b->value = x->value;
    b->gci = x->gci; /* the epoch COMMIT was stamped with */
    txc_send(t, x->ctl, RT_SVC_TXC, m);
}

/* Record COMMIT — once it has its commit epoch: while stamping is stopped
 * (or no epoch is known yet) x stays HSC_WAITING in the queue, and
 * txc_hsc_gcp_decide records it when the epoch switches. */
static void decide_commit(struct txc *t, struct txc_txn *x)
{
    if (!txc_gcp_stamp(t, x))
        return;
    txc_key_decided(t, x->id, true, x->value, 0);
    txc_key_stamp(t, x->id, x->gci);
    x->st = TXC_HSC_COMMITTED;
    t->st.hsc_ready++;
    send_ready_conf(t, x);
    txc_arm(t, x, TXC_HSC_HOLD_FACTOR * t->cfg.timeout_ms);
}

static void decide_abort(struct txc *t, struct txc_txn *x)
{
    x->gcp_wait = false; /* ABORT never waits; a queued COMMIT is void */
    txc_key_decided(t, x->id, false, 0, NINES_EABORTED);
    x->st = TXC_HSC_ABORTED;
    t->st.hsc_aborted++;
    txc_arm(t, x, TXC_HSC_HOLD_FACTOR * t->cfg.timeout_ms);
}

/* COMMIT when started and every primary and every standby it shipped
 * records to is ready. */
static void check(struct txc *t, struct txc_txn *x)
{
    if (x->st != TXC_HSC_WAITING || !x->hsc_started || x->doubt || x->gcp_wait)
        return; /* (gcp_wait: every ready is in; COMMIT waits for its epoch) */
    for (uint32_t i = 0; i < x->nparts; i++)
        if (!x->parts[i].p_ready || !x->parts[i].s_ready)
            return;
    decide_commit(t, x);
}

/* A new entry that has recorded ABORT (asked before START arrived, or
 * with no START ever). NULL when the pool is full. */
static struct txc_txn *abort_entry(struct txc *t, uint64_t txn)
{
    struct txc_txn *x = txc_alloc(t, txn);
    if (!x)
        return NULL;
    x->st = TXC_HSC_WAITING;
    x->ctl = TXC_ID_NODE(txn);
    decide_abort(t, x);
    return x;
}

static bool from_ctl_of(net_addr from, uint64_t txn, uint32_t self)
{
    return from != 0 && from < NET_CONN_BASE && TXC_ID_NODE(txn) == from &&
           TXC_ID_NODE(txn) != self;
}

void txc_on_start_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxcStartReq *b = (const Nines__TxcStartReq *)m->body;
    if (!from_ctl_of(m->from, b->txn, t->self)) {
        NLOG_WARN("txc", "TXC_START_REQ for txn %" PRIx64 " from %llu ignored: not from its "
                  "controller", b->txn, (unsigned long long)m->from);
        return;
    }
    if (b->outcome != TXC_OUT_NONE && b->outcome != TXC_OUT_COMMITTED &&
        b->outcome != TXC_OUT_DOUBT) {
        NLOG_WARN("txc", "TXC_START_REQ for txn %" PRIx64 " from node %llu ignored: outcome %d "
                  "is not 0, 1 or 3", b->txn, (unsigned long long)m->from, b->outcome);
        return;
    }
    struct txc_txn *x = txc_find(t, b->txn);
    if (x && (x->st == TXC_HSC_ABORTED || x->st == TXC_HSC_ABORTING)) {
        /* a kernel asked first and ABORT is recorded: the ctl must abort */
        t->st.stale++;
        if (b->outcome == TXC_OUT_COMMITTED)
            NLOG_ERROR("txc", "hsc txn %" PRIx64 ": ABORT recorded here, but its controller "
                       "says a kernel committed it", b->txn);
        txc_send_txc(t, x->ctl, NINES__MSG_TYPE__TXC_ABORT_CONF, x->id);
        return;
    }
    if (x && x->st == TXC_HSC_COMMITTED) {
        t->st.stale++; /* a repeat (the ctl re-sends a START with a known outcome) */
        send_ready_conf(t, x);
        return;
    }
    if (x && (x->st != TXC_HSC_WAITING || x->hsc_started)) {
        t->st.stale++;
        return;
    }
    if (txc_key_start(t, b, (uint32_t)m->from)) {
        /* its request key refuses it (another attempt runs or committed, or
         * this one was declared not committed to the client): ABORT */
        if (x)
            decide_abort(t, x);
        else
            (void)abort_entry(t, b->txn);
        txc_send_txc(t, (uint32_t)m->from, NINES__MSG_TYPE__TXC_ABORT_CONF, b->txn);
        return;
    }
    if (!x) {
        x = N_FAULT("txc.hsc.nomem") ? NULL : txc_alloc(t, b->txn);
        if (!x) {
            /* nothing recorded and no room to: refuse, so the ctl aborts
             * at once instead of waiting for its timeout */
            NLOG_ERROR("txc", "hsc: no room for txn %" PRIx64 " (%u held): refused (ABORT)",
                       b->txn, t->cfg.max_txns);
            txc_send_txc(t, (uint32_t)m->from, NINES__MSG_TYPE__TXC_ABORT_CONF, b->txn);
            return;
        }
        x->st = TXC_HSC_WAITING;
    }
    x->ctl = (uint32_t)m->from;
    x->req_id = b->req_id;
    x->parts = b->n_parts ? rt_msg_alloc(m, b->n_parts * sizeof *x->parts) : NULL;
    if (b->n_parts && !x->parts) {
        NLOG_ERROR("txc", "hsc: no memory for txn %" PRIx64 ": ABORT recorded", b->txn);
        decide_abort(t, x);
        txc_send_txc(t, x->ctl, NINES__MSG_TYPE__TXC_ABORT_CONF, x->id);
        return;
    }
    uint32_t n = 0;
    for (size_t i = 0; i < b->n_parts; i++) {
        const Nines__Participant *p = b->parts[i];
        if (!p)
            continue;
        struct txc_part *q = &x->parts[n++];
        memset(q, 0, sizeof *q);
        q->table = p->table;
        q->frag = p->frag;
        q->primary = p->primary;
        q->standby = p->standby;      /* the primary's frags say whether it shipped there */
        q->s_ready = p->standby == 0; /* one replica: no standby to wait for */
    }
    x->nparts = x->capparts = n;
    x->hsc_started = true;
    t->st.hsc_started++;
    /* readies that came before the start */
    for (struct rt_msg *e = x->kept; e; e = e->next)
        if (e->type == NINES__MSG_TYPE__READY_IND)
            (void)apply(t, x, (const Nines__ReadyInd *)e->body); /* a miss stays kept */
    txc_keep(x, m);
    txc_arm(t, x, TXC_HSC_HOLD_FACTOR * t->cfg.timeout_ms);
    if (b->outcome == TXC_OUT_COMMITTED) {
        /* a new hsc: a kernel had committed it on the departed hsc's word */
        decide_commit(t, x);
        return;
    }
    x->doubt = b->outcome == TXC_OUT_DOUBT; /* the decision is lost: never decide */
    check(t, x);
    (void)rt;
}

void txc_hsc_abort_waiting(struct txc *t, struct txc_txn *x)
{
    if (x->st != TXC_HSC_WAITING)
        return;
    decide_abort(t, x);
    txc_send_txc(t, x->ctl, NINES__MSG_TYPE__TXC_ABORT_CONF, x->id);
}

void txc_hsc_ready_ind(struct txc *t, const Nines__ReadyInd *b, struct rt_msg *m)
{
    struct txc_txn *x = txc_find(t, b->txn);
    if (!x && t->gone[b->txn % TXC_GONE_SLOTS] == b->txn) {
        t->st.stale++; /* late: the controller already told us to forget it */
        return;
    }
    if (!x) {
        /* before TXC_START_REQ: kept for one timeout */
        x = txc_alloc(t, b->txn);
        if (!x) {
            NLOG_ERROR("txc", "hsc: no room for txn %" PRIx64, b->txn);
            return;
        }
        x->st = TXC_HSC_WAITING;
        x->ctl = TXC_ID_NODE(b->txn);
        txc_keep(x, m);
        txc_arm(t, x, t->cfg.timeout_ms);
        return;
    }
    switch (x->st) {
    case TXC_HSC_WAITING:
        if (!x->hsc_started) {
            txc_keep(x, m);
            return;
        }
        if (!apply(t, x, b)) {
            /* a standby the primary's READY_IND has not named yet (its
             * fragment's ops went to a new primary): kept for it */
            t->st.stale++;
            txc_keep(x, m);
        }
        check(t, x);
        break;
    case TXC_HSC_COMMITTED:
    case TXC_HSC_ABORTED:
    case TXC_HSC_COMMITTING:
    case TXC_HSC_ABORTING:
        break; /* decided */
    default:
        t->st.stale++;
        break;
    }
}

/* TXC_ABORT_REQ: the ctl asks to abort (its timeout, its client left). */
void txc_on_abort_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxcAbortReq *b = (const Nines__TxcAbortReq *)m->body;
    if (!from_ctl_of(m->from, b->txn, t->self)) {
        NLOG_WARN("txc", "TXC_ABORT_REQ for txn %" PRIx64 " from %llu ignored: not from its "
                  "controller", b->txn, (unsigned long long)m->from);
        return;
    }
    struct txc_txn *x = txc_find(t, b->txn);
    if (!x && t->gone[b->txn % TXC_GONE_SLOTS] == b->txn) {
        t->st.stale++;
        return;
    }
    if (!x) {
        /* START lost or still behind: ABORT is recorded, a START that
         * arrives later is refused */
        if (!abort_entry(t, b->txn))
            NLOG_ERROR("txc", "hsc: no room to record ABORT of txn %" PRIx64 " (answered "
                       "anyway: no START was taken)", b->txn);
        txc_send_txc(t, (uint32_t)m->from, NINES__MSG_TYPE__TXC_ABORT_CONF, b->txn);
        return;
    }
    switch (x->st) {
    case TXC_HSC_WAITING:
        if (x->doubt) { /* the ctl itself said the decision is lost */
            t->st.stale++;
            break;
        }
        decide_abort(t, x);
        txc_send_txc(t, x->ctl, NINES__MSG_TYPE__TXC_ABORT_CONF, x->id);
        break;
    case TXC_HSC_COMMITTED: /* COMMIT came first: the answer stays commit */
        send_ready_conf(t, x);
        break;
    case TXC_HSC_ABORTED:
        txc_send_txc(t, x->ctl, NINES__MSG_TYPE__TXC_ABORT_CONF, x->id);
        break;
    default:
        t->st.stale++;
        break;
    }
    (void)rt;
}

void txc_on_forget_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxcForgetReq *b = (const Nines__TxcForgetReq *)m->body;
    struct txc_txn *x = txc_find(t, b->txn);
    if (!x && from_ctl_of(m->from, b->txn, t->self)) {
        /* aborted before START: readies still on their way are ignored */
        t->gone[b->txn % TXC_GONE_SLOTS] = b->txn;
        t->gone_out[b->txn % TXC_GONE_SLOTS] = b->committed ? 1 : 2;
        t->gone_gci[b->txn % TXC_GONE_SLOTS] = 0;
        return;
    }
    if (!x || !hsc_state(x->st) || m->from != x->ctl) {
        t->st.stale++;
        return;
    }
    if (txc_wrote(x) && ((b->committed && x->st != TXC_HSC_COMMITTED) ||
                         (!b->committed && x->st == TXC_HSC_COMMITTED)))
        NLOG_ERROR("txc", "hsc txn %" PRIx64 ": controller node %u forgets it as %s but %s is "
                   "recorded here", x->id, x->ctl, b->committed ? "committed" : "aborted",
                   txc_state_name(x->st));
    t->st.hsc_forgotten++;
    t->gone[x->id % TXC_GONE_SLOTS] = x->id;
    t->gone_out[x->id % TXC_GONE_SLOTS] = x->st == TXC_HSC_COMMITTED ? 1 : 2;
    t->gone_gci[x->id % TXC_GONE_SLOTS] = x->gci;
    txc_outcome_final(t, x, x->st == TXC_HSC_COMMITTED);
    txc_forget(t, x);
    (void)rt;
}

static void outcome_to_kernel(struct txc *t, struct txc_txn *x, uint32_t node)
{
    t->st.resent++;
    bool committed = x->st == TXC_HSC_COMMITTED || x->st == TXC_HSC_COMMITTING;
    (void)txc_send_kernel(t, x, committed ? NINES__MSG_TYPE__COMMIT_REQ
                                          : NINES__MSG_TYPE__ABORT_REQ, node);
}

static void send_outcome_id(struct txc *t, uint64_t txn, bool committed, uint64_t gci,
                            uint32_t node)
{
    uint32_t type = committed ? NINES__MSG_TYPE__COMMIT_REQ : NINES__MSG_TYPE__ABORT_REQ;
    struct rt_msg *m = rt_msg_new(t->rt, type);
    if (!m)
        return; /* the kernel asks again */
    bool ok;
    if (committed) {
        Nines__CommitReq *b = RT_BODY(m, Nines__CommitReq, nines__commit_req__init);
        ok = b != NULL;
        if (b)
            b->txn = txn, b->gci = gci;
    } else {
        Nines__AbortReq *b = RT_BODY(m, Nines__AbortReq, nines__abort_req__init);
        ok = b != NULL;
        if (b)
            b->txn = txn;
    }
    if (!ok) {
        rt_msg_free(t->rt, m);
        return;
    }
    t->st.resent++;
    txc_send(t, node == t->self ? 0 : node, RT_SVC_KERN, m);
}

/* A prepared kernel asks (its ctl could not tell, or is unreachable). */
void txc_hsc_outcome_req(struct txc *t, const Nines__TxcOutcomeReq *b, net_addr from)
{
    uint32_t node = from ? (uint32_t)from : t->self;
    struct txc_txn *x = txc_find(t, b->txn);
    if (x && !hsc_state(x->st)) {
        t->st.stale++;
        return;
    }
    if (!x) {
        if (t->gone[b->txn % TXC_GONE_SLOTS] == b->txn) {
            /* decided and forgotten here; a kernel asks that took the
             * transaction over in doubt after every kernel this hsc knew of
             * had confirmed (it may not have known that fragment: START
             * never came, its primary's ready neither): tell it the outcome */
            uint8_t out = t->gone_out[b->txn % TXC_GONE_SLOTS];
            if (out)
                send_outcome_id(t, b->txn, out == 1, t->gone_gci[b->txn % TXC_GONE_SLOTS],
                                node);
            else
                t->st.stale++;
            return;
        }
        uint64_t inc = self_inc(t);
        if (b->asked_inc && inc && b->asked_inc != inc) {
            /* this process started after the kernel prepared: an earlier
             * incarnation may have recorded COMMIT, so ABORT cannot be
             * recorded here (takeover resolves it) */
            char d[200];
            snprintf(d, sizeof d, "node %u restarted since transaction %" PRIx64 " was "
                     "prepared (incarnation %" PRIu64 ", asked %" PRIu64 "): cannot tell",
                     t->self, b->txn, inc, b->asked_inc);
            NLOG_WARN("txc", "hsc: %s", d);
            txc_outcome_ref(t, from, b->txn, NINES_EINDOUBT, d);
            return;
        }
        x = abort_entry(t, b->txn);
        if (!x)
            return; /* the kernel asks again */
        NLOG_INFO("txc", "hsc: ABORT recorded for txn %" PRIx64 " (asked by node %u, no "
                  "decision here)", b->txn, node);
        txc_send_txc(t, x->ctl, NINES__MSG_TYPE__TXC_ABORT_CONF, x->id);
        outcome_to_kernel(t, x, node);
        return;
    }
    switch (x->st) {
    case TXC_HSC_WAITING:
        if (x->doubt) {
            char d[200];
            snprintf(d, sizeof d, "transaction %" PRIx64 ": its decision was lost with a "
                     "departed hot-standby controller; node %u cannot tell", b->txn, t->self);
            txc_outcome_ref(t, from, b->txn, NINES_EINDOUBT, d);
            break;
        }
        /* undecided long after the ctl's timeout: the ctl is gone or cut
         * off; ABORT is the only safe decision (no client was told). The
         * question may come from any node (a promoted standby too). */
        decide_abort(t, x);
        txc_send_txc(t, x->ctl, NINES__MSG_TYPE__TXC_ABORT_CONF, x->id);
        outcome_to_kernel(t, x, node);
        break;
    case TXC_HSC_COMMITTED:
    case TXC_HSC_ABORTED:
    case TXC_HSC_COMMITTING:
    case TXC_HSC_ABORTING:
        outcome_to_kernel(t, x, node);
        break;
    default:
        t->st.stale++;
        break;
    }
}

static void phase2(struct txc *t, struct txc_txn *x);

void txc_hsc_on_timer(struct txc *t, struct txc_txn *x)
{
    switch (x->st) {
    case TXC_HSC_WAITING:
        if (!x->hsc_started) {
            t->st.stale++; /* readies of a transaction that never started here */
            txc_forget(t, x);
            break;
        }
        /* the ctl asks us to abort after its own timeout, and prepared
         * kernels ask for the outcome: wait for them (in doubt: forever) */
        NLOG_WARN("txc", "hsc txn %" PRIx64 ": started by node %u %u ms ago, still undecided",
                  x->id, x->ctl, TXC_HSC_HOLD_FACTOR * t->cfg.timeout_ms);
        t->st.hsc_undecided++;
        txc_arm(t, x, TXC_HSC_HOLD_FACTOR * t->cfg.timeout_ms);
        break;
    case TXC_HSC_COMMITTED:
    case TXC_HSC_ABORTED:
        /* no FORGET yet: re-send the decision; a ctl that is done and
         * forgot answers FORGET again */
        t->st.resent++;
        if (x->st == TXC_HSC_COMMITTED)
            send_ready_conf(t, x);
        else
            txc_send_txc(t, x->ctl, NINES__MSG_TYPE__TXC_ABORT_CONF, x->id);
        txc_arm(t, x, TXC_HSC_HOLD_FACTOR * t->cfg.timeout_ms);
        break;
    case TXC_HSC_COMMITTING:
    case TXC_HSC_ABORTING:
        t->st.resent++;
        phase2(t, x);
        break;
    default:
        NLOG_ERROR("txc", "hsc txn %" PRIx64 ": timer in state %s", x->id,
                   txc_state_name(x->st));
        break;
    }
}

/* ---- node sets: the ctl left, or a participant did ------------------------ */

/* An entry that never got START knows the fragments from the readies it
 * kept: the primaries' (with every fragment they touched) and the
 * standbys' (one each). Enough to find their current primaries. */
static void parts_from_readies(struct txc_txn *x)
{
    uint32_t n = 0;
    for (struct rt_msg *e = x->kept; e; e = e->next)
        if (e->type == NINES__MSG_TYPE__READY_IND) {
            const Nines__ReadyInd *b = (const Nines__ReadyInd *)e->body;
            n += b->standby ? 1u : (uint32_t)b->n_frags;
        }
    x->parts = n && x->kept ? rt_msg_alloc(x->kept, n * sizeof *x->parts) : NULL;
    x->nparts = x->capparts = 0;
    if (!x->parts)
        return;
    for (struct rt_msg *e = x->kept; e; e = e->next) {
        if (e->type != NINES__MSG_TYPE__READY_IND)
            continue;
        const Nines__ReadyInd *b = (const Nines__ReadyInd *)e->body;
        for (size_t j = 0; j < (b->standby ? 1u : b->n_frags); j++) {
            const Nines__FragRecords *f = b->standby ? NULL : b->frags[j];
            if (!b->standby && !f)
                continue;
            struct txc_part *p = &x->parts[x->nparts++];
            memset(p, 0, sizeof *p);
            p->table = f ? f->table : b->table;
            p->frag = f ? f->frag : b->frag;
            p->primary = f ? b->node : 0;
            p->standby = f ? f->standby : b->node;
        }
    }
    x->capparts = x->nparts;
}

/* The current primaries of x's fragments (the promoted standby for a
 * departed primary's); a DOWN fragment has none (nothing to finish there
 * until its replicas are rebuilt). */
static txc_nodes targets(struct txc *t, const struct txc_txn *x)
{
    txc_nodes s = 0;
    for (uint32_t i = 0; i < x->nparts; i++) {
        uint32_t p = txc_primary_now(t, x->parts[i].table, x->parts[i].frag);
        if (p >= 1 && p <= 64)
            s |= TXC_NODE(p);
        else if (!x->asks)
            NLOG_ERROR("txc", "hsc txn %" PRIx64 ": table %u fragment %u is down: its second "
                       "phase cannot reach it", x->id, x->parts[i].table, x->parts[i].frag);
    }
    return s;
}

static void finished(struct txc *t, struct txc_txn *x, bool committed)
{
    NLOG_INFO("txc", "hsc txn %" PRIx64 ": %s for departed controller node %u, every kernel "
              "confirmed", x->id, committed ? "committed" : "aborted", x->ctl);
    t->gone[x->id % TXC_GONE_SLOTS] = x->id;
    t->gone_out[x->id % TXC_GONE_SLOTS] = committed ? 1 : 2;
    t->gone_gci[x->id % TXC_GONE_SLOTS] = committed ? x->gci : 0;
    txc_outcome_final(t, x, committed);
    txc_forget(t, x);
}

/* HSC_COMMITTING / HSC_ABORTING: the decision to every current primary
 * that has not confirmed, re-sent every retry interval; done when all did. */
static void phase2(struct txc *t, struct txc_txn *x)
{
    bool committed = x->st == TXC_HSC_COMMITTING;
    txc_nodes w = targets(t, x) & ~x->confirmed;
    x->asks++;
    if (!w) {
        finished(t, x, committed);
        return;
    }
    for (uint32_t node = 1; node <= 64; node++)
        if (w & TXC_NODE(node))
            (void)txc_send_kernel(t, x, committed ? NINES__MSG_TYPE__COMMIT_REQ
                                                  : NINES__MSG_TYPE__ABORT_REQ, node);
    txc_arm(t, x, txc_retry_ms(t));
}

/* The ctl left: finish x by the recorded state (COMMIT: commit; anything
 * else: ABORT recorded now). */
static void finish_for_ctl(struct txc *t, struct txc_txn *x, bool committed)
{
    if (!x->hsc_started && !x->nparts)
        parts_from_readies(x);
    if (!committed && x->st == TXC_HSC_WAITING)
        t->st.hsc_aborted++;
    NLOG_WARN("txc", "hsc txn %" PRIx64 ": controller node %u left the node set; %s it at the "
              "current primaries", x->id, x->ctl, committed ? "committing" : "aborting");
    txc_key_decided(t, x->id, committed, x->value, NINES_EABORTED); /* request key */
    x->st = committed ? TXC_HSC_COMMITTING : TXC_HSC_ABORTING;
    x->confirmed = 0;
    x->asks = 0;
    t->st.hsc_finished++;
    phase2(t, x);
}

/* A participant x waits for left: its primary, or a standby (or log-copy
 * node) whose READY_IND has not come. */
static bool part_left(const struct txc_txn *x, txc_nodes cur)
{
    for (uint32_t i = 0; i < x->nparts; i++) {
        const struct txc_part *p = &x->parts[i];
        if (p->primary >= 1 && p->primary <= 64 && !(cur & TXC_NODE(p->primary)))
            return true;
        if (!p->s_ready && p->standby >= 1 && p->standby <= 64 && !(cur & TXC_NODE(p->standby)))
            return true;
    }
    return false;
}

void txc_hsc_on_nodeset(struct txc *t, struct txc_txn *x)
{
    bool ctl_gone = !(txc_members(t) & TXC_NODE(x->ctl));
    switch (x->st) {
    case TXC_HSC_WAITING:
        if (ctl_gone && x->doubt) {
            NLOG_ERROR("txc", "hsc txn %" PRIx64 ": controller node %u left; the decision was "
                       "lost earlier: held, never guessed", x->id, x->ctl);
        } else if (ctl_gone) {
            finish_for_ctl(t, x, false);
        } else if (x->hsc_started && !x->doubt && part_left(x, txc_current(t))) {
            /* it can never become ready: ABORT, and the ctl is told */
            decide_abort(t, x);
            txc_send_txc(t, x->ctl, NINES__MSG_TYPE__TXC_ABORT_CONF, x->id);
        }
        return;
    case TXC_HSC_COMMITTED:
    case TXC_HSC_ABORTED:
        if (ctl_gone)
            finish_for_ctl(t, x, x->st == TXC_HSC_COMMITTED);
        return; /* else the ctl runs the second phase (to the new primaries) */
    case TXC_HSC_COMMITTING:
    case TXC_HSC_ABORTING:
        phase2(t, x); /* the targets may have moved again */
        return;
    default:
        NLOG_ERROR("txc", "hsc txn %" PRIx64 ": node set in state %s", x->id,
                   txc_state_name(x->st));
        return;
    }
}

void txc_hsc_end_conf(struct txc *t, uint64_t txn, uint32_t node, bool committed)
{
    struct txc_txn *x = txc_find(t, txn);
    if (!x || x->st != (committed ? TXC_HSC_COMMITTING : TXC_HSC_ABORTING) || node < 1 ||
        node > 64) {
        t->st.stale++;
        return;
    }
    x->confirmed |= TXC_NODE(node);
    if (!(targets(t, x) & ~x->confirmed))
        finished(t, x, committed);
}

void txc_hsc_gcp_decide(struct txc *t, struct txc_txn *x)
{
    switch (x->st) {
    case TXC_HSC_WAITING:
        /* every ready was in (check) or START said a kernel committed it;
         * nothing since could have undone that but ABORT, which clears the
         * wait */
        decide_commit(t, x);
        break;
    case TXC_HSC_COMMITTED:
    case TXC_HSC_ABORTED:
    case TXC_HSC_COMMITTING:
    case TXC_HSC_ABORTING:
        break; /* decided meanwhile */
    default:
        NLOG_ERROR("txc", "hsc txn %" PRIx64 ": queued COMMIT in state %s", x->id,
                   txc_state_name(x->st));
        break;
    }
}
