/* Primary controller: client requests, ops to the primary kernels, the
 * ready collection, early answer, commit and abort (txctl/README.md). */
#include "txc_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#define TXC_DETAIL_MAX 512

/* Node of a kernel answer: remote node id, or this node for local ones. */
static uint32_t from_node(struct txc *t, const struct rt_msg *m)
{
    if (m->from == 0)
        return t->self;
    if (m->from >= NET_CONN_BASE || m->from > 64)
        return 0;
    return (uint32_t)m->from;
}

static bool is_ctl_state(enum txc_state s)
{
    return s == TXC_EXECUTING || s == TXC_OPEN || s == TXC_PREPARING || s == TXC_ASKING ||
           s == TXC_RESOLVING || s == TXC_COMMITTING || s == TXC_ABORTING;
}

/* A ctl-role transaction of ours named by an answer, or NULL (stale). */
static struct txc_txn *ctl_txn(struct txc *t, uint64_t id)
{
    struct txc_txn *x = txc_find(t, id);
    if (!x || !is_ctl_state(x->st)) {
        t->st.stale++;
        return NULL;
    }
    return x;
}

static void mark_primary(struct txc_txn *x, uint32_t node)
{
    for (uint32_t i = 0; i < x->nparts; i++)
        if (x->parts[i].primary == node)
            x->parts[i].p_ready = true;
}

static void send_forget(struct txc *t, struct txc_txn *x, bool committed)
{
    if (!x->hsc_told)
        return;
    x->hsc_told = false;
    struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__TXC_FORGET_REQ);
    Nines__TxcForgetReq *b = m ? RT_BODY(m, Nines__TxcForgetReq, nines__txc_forget_req__init) : NULL;
    if (!b) {
        if (m)
            rt_msg_free(t->rt, m);
        /* the hsc re-sends its decision now and then; we answer FORGET then */
        NLOG_ERROR("txc", "txn %" PRIx64 ": no memory for TXC_FORGET_REQ", x->id);
        return;
    }
    b->txn = x->id;
    b->committed = committed;
    txc_send(t, x->hsc, RT_SVC_TXC, m);
}

/* FORGET for a txn this controller no longer holds (the hsc re-sent its
 * decision after our FORGET was lost). */
static void forget_unknown(struct txc *t, uint64_t txn, uint32_t hsc, bool committed)
{
    struct txc_txn tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.id = txn;
    tmp.hsc = hsc;
    tmp.hsc_told = true;
    send_forget(t, &tmp, committed);
}

/* The same one-field message to a set of kernels; the first error. */
static int send_to_kernels(struct txc *t, struct txc_txn *x, uint32_t type, txc_nodes nodes)
{
    int first_err = 0;
    for (uint32_t node = 1; node <= 64; node++) {
        if (!(nodes & TXC_NODE(node)))
            continue;
        int rc = txc_send_kernel(t, x, type, node);
        if (rc && !first_err)
            first_err = rc;
    }
    return first_err;
}

/* ---- answers to the client -------------------------------------------- */

static void answer_conf(struct txc *t, struct txc_txn *x, bool with_results)
{
    if (!x->answer_due)
        return;
    x->answer_due = false;
    if (!x->client)
        return;
    struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__TXN_CONF);
    Nines__TxnConf *b = m ? RT_BODY(m, Nines__TxnConf, nines__txn_conf__init) : NULL;
    if (!b) {
        if (m)
            rt_msg_free(t->rt, m);
        NLOG_ERROR("txc", "txn %" PRIx64 ": no memory for TXN_CONF", x->id);
        txc_inflight_put(t, x->client);
        return;
    }
    b->req_id = x->req_id;
    b->txn = x->id;
    b->value = x->value;
    if (with_results && x->proc == TXC_PROC_NONE) {
        /* committed although a kernel's answer never came (the hsc recorded
         * COMMIT): its ops' results are reported lost, not made up */
        static Nines__OpResult lost = NINES__OP_RESULT__INIT;
        lost.status = NINES_ECLOSED;
        for (uint32_t i = 0; i < x->nops; i++)
            if (!x->results[i])
                x->results[i] = &lost;
        b->n_results = x->nops;
        b->results = (Nines__OpResult **)x->results;
    }
    if (txc_gcp_hold_answer(t, x, m, x->client))
        return; /* disk_log sync: sent once its commit epoch is restorable */
    if (txc_to_client(t, x->client, m))
        NLOG_DEBUG("txc", "txn %" PRIx64 ": answer lost: %s", x->id, nines_errdetail());
}

/* ---- abort ------------------------------------------------------------ */

static void finish(struct txc *t, struct txc_txn *x, bool committed)
{
    t->cgone[x->id % TXC_CGONE_SLOTS] = x->id;
    t->cgone_commit[x->id % TXC_CGONE_SLOTS] = committed;
    t->cgone_gci[x->id % TXC_CGONE_SLOTS] = committed ? x->gci : 0;
    txc_outcome_final(t, x, committed);
    send_forget(t, x, committed);
    if (committed)
        t->st.committed++;
    txc_forget(t, x);
}

/* Abort decided (before START, or recorded by the hsc): tell the client,
 * undo at every kernel that ran ops; ABORT_REQ is re-sent until each one
 * confirmed (txc_ctl_on_timer). */
static bool primaries_ready(const struct txc_txn *x);
static bool standbys_ready(const struct txc_txn *x);

/* x leaves EXECUTING / PREPARING with requests still waiting to be sent
 * again ("Refused before anything ran"): they never will be; their
 * kernels refused before anything ran, so they never prepared and no hsc
 * can have recorded COMMIT (what RESOLVING reads from x->refused). */
static void drop_again(struct txc_txn *x)
{
    if (!x->again)
        return;
    x->refused = true;
    x->pending &= ~x->again;
    x->again = 0;
}

static void abort_now(struct txc *t, struct txc_txn *x, int err, uint32_t failed_op,
                      const char *detail)
{
    drop_again(x);
    if (err >= 0)
        err = NINES_EPROTO;
    NLOG_DEBUG("txc", "txn %" PRIx64 " aborts in state %s: %s", x->id, txc_state_name(x->st),
               detail);
    txc_key_decided(t, x->id, false, 0, err);
    x->gcp_wait = false; /* a COMMIT waiting for its epoch is void */
    if (x->answer_due && x->client)
        txc_refuse(t, x->client, x->req_id, x->id, err, failed_op, detail);
    x->answer_due = false;
    /* a kernel that left: the nodes that took over its fragments */
    x->waiting = txc_map_nodes(t, x->ran);
    (void)send_to_kernels(t, x, NINES__MSG_TYPE__ABORT_REQ, x->waiting); /* failures: re-sent */
    x->pending = 0;
    x->asks = 0;
    x->st = TXC_ABORTING;
    t->st.aborted++;
    if (!x->waiting)
        finish(t, x, false);
    else
        txc_arm(t, x, txc_retry_ms(t));
}

/* After START only the hsc may abort: ask it (TXC_ABORT_REQ). It answers
 * TXC_ABORT_CONF (then abort_now with err/detail) or TXC_READY_CONF
 * (COMMIT was recorded first: the transaction commits after all). */
/* The client's error if the transaction aborts later (ASKING, RESOLVING). */
static void keep_reason(struct txc_txn *x, int err, uint32_t failed_op, const char *detail)
{
    x->abort_err = err >= 0 ? NINES_EPROTO : err;
    x->abort_op = failed_op;
    x->abort_detail = NULL;
    size_t n = strlen(detail) + 1;
    if (x->kept && (x->abort_detail = rt_msg_alloc(x->kept, n)))
        memcpy(x->abort_detail, detail, n);
}

static void ask_abort(struct txc *t, struct txc_txn *x, int err, uint32_t failed_op,
                      const char *detail)
{
    drop_again(x);
    x->st = TXC_ASKING;
    keep_reason(x, err, failed_op, detail);
    x->asks = 1;
    x->hsc_told = true;
    txc_send_txc(t, x->hsc, NINES__MSG_TYPE__TXC_ABORT_REQ, x->id);
    txc_arm(t, x, txc_retry_ms(t));
}

void txc_ctl_abort(struct txc *t, struct txc_txn *x, int err, uint32_t failed_op,
                   const char *detail)
{
    switch (x->st) {
    case TXC_EXECUTING:
    case TXC_OPEN:
        abort_now(t, x, err, failed_op, detail);
        return;
    case TXC_PREPARING:
        /* after START the hsc may have recorded COMMIT: only it may abort —
         * unless every kernel answered and none shipped a record (only
         * reads): then there is no decision to keep */
        if (x->hsc_started && !(primaries_ready(x) && !txc_wrote(x)))
            ask_abort(t, x, err, failed_op, detail);
        else
            abort_now(t, x, err, failed_op, detail);
        return;
    case TXC_RESOLVING:
        /* the old hsc may have recorded COMMIT and told a kernel: abort
         * only if the kernels' answers show nobody ended it committed */
        x->resolve_abort = true;
        if (!x->abort_detail)
            keep_reason(x, err, failed_op, detail);
        return;
    case TXC_ASKING:
    case TXC_COMMITTING:
    case TXC_ABORTING:
        return; /* asked or decided already */
    default:
        NLOG_ERROR("txc", "txn %" PRIx64 ": abort in state %s refused", x->id,
                   txc_state_name(x->st));
        return;
    }
}

static void abortf(struct txc *t, struct txc_txn *x, int err, uint32_t failed_op, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));
static void abortf(struct txc *t, struct txc_txn *x, int err, uint32_t failed_op, const char *fmt,
                   ...)
{
    char buf[TXC_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    txc_ctl_abort(t, x, err, failed_op, buf);
}

/* ---- commit ----------------------------------------------------------- */

static bool primaries_ready(const struct txc_txn *x)
{
    if (x->pending)
        return false;
    for (uint32_t i = 0; i < x->nparts; i++)
        if (!x->parts[i].p_ready)
            return false;
    return true;
}

static bool standbys_ready(const struct txc_txn *x)
{
    for (uint32_t i = 0; i < x->nparts; i++)
        if (!x->parts[i].s_ready)
            return false;
    return true;
}

/* COMMIT is recorded (by the hsc, or here in a one-site cluster): answer
 * the client, then the second phase, re-sent until every kernel confirmed
 * it is done (its standby applied the COMMIT record). */
static void commit(struct txc *t, struct txc_txn *x)
{
    txc_key_decided(t, x->id, true, x->value, 0);
    txc_key_stamp(t, x->id, x->gci);
    answer_conf(t, x, true);
    x->st = TXC_COMMITTING;
    x->waiting = txc_map_nodes(t, x->ran); /* a departed kernel: who took over its fragments */
    x->asks = 0;
    (void)send_to_kernels(t, x, NINES__MSG_TYPE__COMMIT_REQ, x->waiting); /* failures: re-sent */
    if (!x->waiting) {
        finish(t, x, true);
        return;
    }
    /* the answer and every COMMIT_REQ are packed (or, local, carry only the
     * id): the kept request and kernel answers would only occupy memory
     * until the standbys' acknowledgements make the kernels confirm */
    txc_release_kept(t, x);
    txc_arm(t, x, txc_retry_ms(t));
}

/* The commit starts: hand the decision to the hsc before the kernels
 * prepare. It records COMMIT when every primary (their READY_IND, sent when
 * they prepare) and every standby those name is ready; the client's request
 * id travels along (the value comes with the primary's ready). */
static int send_start(struct txc *t, struct txc_txn *x, enum txc_outcome outcome)
{
    struct rt_msg *m = N_FAULT("txc.start.nomem") ? NULL
                                                   : rt_msg_new(t->rt, NINES__MSG_TYPE__TXC_START_REQ);
    Nines__TxcStartReq *b = m ? RT_BODY(m, Nines__TxcStartReq, nines__txc_start_req__init) : NULL;
    Nines__Participant **pp = b ? rt_msg_alloc(m, x->nparts * sizeof *pp) : NULL;
    Nines__Participant *pv = b ? rt_msg_alloc(m, x->nparts * sizeof *pv) : NULL;
    if (!b || (x->nparts && (!pp || !pv))) {
        if (m)
            rt_msg_free(t->rt, m);
        return nines_err(NINES_ENOMEM, "not committed: no memory for TXC_START_REQ of txn %"
                         PRIx64 " at node %u", x->id, t->self);
    }
    b->txn = x->id;
    b->ctl = t->self;
    b->req_id = x->req_id;
    b->outcome = outcome;
    txc_key_fill_start(t, x->id, b, m);
    for (uint32_t i = 0; i < x->nparts; i++) {
        nines__participant__init(&pv[i]);
        pv[i].table = x->parts[i].table;
        pv[i].frag = x->parts[i].frag;
        pv[i].primary = x->parts[i].primary;
        pv[i].standby = x->parts[i].standby;
        pp[i] = &pv[i];
    }
    b->n_parts = x->nparts;
    b->parts = pp;
    int rc = rt_send(t->rt, x->hsc == t->self ? 0 : x->hsc, RT_SVC_TXC, m);
    if (rc) /* not queued: the hsc never hears of it, so abort is still ours */
        return nines_err(rc, "not committed: TXC_START_REQ to the hot-standby controller at "
                         "node %u not sent: %s", x->hsc, nines_errdetail());
    x->hsc_started = x->hsc_told = true;
    return 0;
}

static void resolve(struct txc *t, struct txc_txn *x);

/* Move on if the state's wait is over. */
static void progress(struct txc *t, struct txc_txn *x)
{
    switch (x->st) {
    case TXC_EXECUTING:
        if (!x->pending) {
            x->st = TXC_OPEN;
            answer_conf(t, x, true);
        }
        break;
    case TXC_PREPARING:
    case TXC_ASKING:
        if (!primaries_ready(x))
            break; /* their answers carry the client's results */
        if (x->hsc_ready) {
            commit(t, x);
            break;
        }
        /* only reads: no decision to keep, no hsc to wait for; in a
         * one-site cluster (no hsc) the standby READY_INDs come here */
        if (x->st != TXC_PREPARING || x->gcp_wait)
            break; /* (gcp_wait: decided alone, waiting for its commit epoch) */
        if (x->hsc ? !txc_wrote(x) : standbys_ready(x)) {
            /* deciding alone: a transaction that wrote needs its commit
             * epoch (README "Commit epochs"); one that only read has
             * nothing to restore and is never stamped */
            if (!x->hsc && txc_wrote(x) && !txc_gcp_stamp(t, x))
                break; /* queued: txc_ctl_gcp_decide */
            commit(t, x);
        }
        break;
    case TXC_RESOLVING:
        /* every kernel answered; START not sent yet (it is, for a known
         * commit or a lost decision, and then the new hsc answers) */
        if (!x->pending && !x->doubt && !x->hsc_started)
            resolve(t, x);
        break;
    case TXC_OPEN:
    case TXC_COMMITTING:
    case TXC_ABORTING:
        break;
    default:
        NLOG_ERROR("txc", "txn %" PRIx64 ": progress in state %s", x->id, txc_state_name(x->st));
        break;
    }
}

/* KERN_OP_REQ for x->nreq[k] of the current request (seq seq_base + k). */
static int send_nreq(struct txc *t, struct txc_txn *x, uint32_t k, bool prepare)
{
    const struct txc_nreq *r = &x->nreq[k];
    struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__KERN_OP_REQ);
    Nines__KernOpReq *b = m ? RT_BODY(m, Nines__KernOpReq, nines__kern_op_req__init) : NULL;
    Nines__Participant **pp = b ? rt_msg_alloc(m, r->nops * sizeof *pp) : NULL;
    Nines__Participant *pv = b ? rt_msg_alloc(m, r->nops * sizeof *pv) : NULL;
    Nines__RecordOp **ops = b ? rt_msg_alloc(m, r->nops * sizeof *ops) : NULL;
    ProtobufCBinaryData *keys = b ? rt_msg_alloc(m, r->nops * sizeof *keys) : NULL;
    if (!pp || !pv || !ops || !keys) {
        if (m)
            rt_msg_free(t->rt, m);
        return nines_err(NINES_ENOMEM, "no memory for KERN_OP_REQ");
    }
    b->txn = x->id;
    b->ctl = t->self;
    b->hsc = x->hsc;
    b->prepare = prepare;
    b->seq = x->seq_base + k;
    for (uint32_t j = 0; j < r->nops; j++) {
        const struct txc_kop *o = &x->kops[r->idx[j]];
        const struct txc_part *p = &x->parts[o->part];
        nines__participant__init(&pv[j]);
        pv[j].table = p->table;
        pv[j].frag = p->frag;
        pv[j].primary = p->primary;
        pv[j].standby = p->standby;
        pp[j] = &pv[j];
        ops[j] = (Nines__RecordOp *)x->ops[o->op].op;
        keys[j] = o->key;
    }
    if (prepare && x->proc == TXC_PROC_TPCB)
        for (uint32_t j = 0; j < r->nops; j++)
            if (x->kops[r->idx[j]].op == 0) { /* its row carries the procedure's value */
                b->value_op = j + 1;
                b->value_col = x->value_col;
            }
    b->n_parts = b->n_ops = b->n_keys = r->nops;
    b->parts = pp;
    b->ops = ops;
    b->keys = keys;
    if (!(x->ran & TXC_NODE(r->node)))
        x->ran_req |= TXC_NODE(r->node); /* first reached by this request */
    x->ran |= TXC_NODE(r->node);
    x->pending |= TXC_NODE(r->node);
    int rc = rt_send(t->rt, r->node == t->self ? 0 : r->node, RT_SVC_KERN, m);
    if (rc)
        return nines_err(rc, "node %u: %s", r->node, nines_errdetail());
    return 0;
}

/* One KERN_OP_REQ per primary node for the current request. */
static int send_ops(struct txc *t, struct txc_txn *x, bool prepare)
{
    x->seq_base = x->seq + 1;
    x->seq += x->nnreq;
    x->nreq_left = x->nnreq;
    x->ran_req = 0;
    x->again = 0;
    x->retries = 0;
    int first_err = 0;
    for (uint32_t k = 0; k < x->nnreq; k++) {
        int rc = send_nreq(t, x, k, prepare);
        if (rc && !first_err)
            first_err = rc;
    }
    return first_err;
}

/* ---- a kernel refused before anything ran: the request again ------------
 * A fragment being taken over (PROMOTING) or drained for a takeback answers
 * KERN_OP_REF NINES_EAGAIN with failed_op 0: nothing of that KERN_OP_REQ
 * ran there (kernel/svc/README.md "Takeback"). The controller sends it
 * again after 1 ms, doubling to TXC_RETRY_MAX_MS, until the transaction's
 * own timeout; a fragment whose primary moved meanwhile (the takeback's
 * switch) gets its ops at the new primary (re-routed). NINES_ENOTPRIMARY
 * with failed_op 0 is retried the same way when the routing moved. */
#define TXC_RETRY_MAX_MS 50
#define TXC_RETRY_BIT (UINT64_C(1) << 63) /* timer cookie: txn id | this (ids < 2^63) */
#define TXC_SLOTS_MAX 256 /* KERN_OP_REQs of a request (one per node, and re-routed ones) */

/* May x send the refused KERN_OP_REQ `k` to node again? */
static bool retryable(struct txc *t, const struct txc_txn *x, uint32_t k, uint32_t node,
                      const Nines__KernOpRef *b)
{
    if ((x->st != TXC_EXECUTING && x->st != TXC_PREPARING) || x->hsc_ready || b->failed_op != 0)
        return false;
    if (b->error == NINES_EAGAIN)
        return true;
    if (b->error != NINES_ENOTPRIMARY)
        return false;
    /* not primary there any more: again only where the routing moved */
    const struct txc_nreq *r = &x->nreq[k];
    for (uint32_t j = 0; j < r->nops; j++) {
        const struct txc_part *p = &x->parts[x->kops[r->idx[j]].part];
        uint32_t now = txc_primary_now(t, p->table, p->frag);
        if (now && now != node)
            return true;
    }
    return false;
}

static void retry_later(struct txc *t, struct txc_txn *x, uint32_t node)
{
    x->again |= TXC_NODE(node);
    if (x->ran_req & TXC_NODE(node)) {
        /* nothing of the transaction ran there: no PREPARE, COMMIT or ABORT
         * goes to it */
        x->ran &= ~TXC_NODE(node);
        x->ran_req &= ~TXC_NODE(node);
    }
    t->st.op_retries++;
    uint32_t ms = 1u << (x->retries < 6 ? x->retries : 6);
    if (ms > TXC_RETRY_MAX_MS)
        ms = TXC_RETRY_MAX_MS;
    x->retries++;
    if (rt_timer_add(t->rt, RT_SVC_TXC, (uint64_t)ms * 1000u, x->id | TXC_RETRY_BIT) < 0)
        NLOG_ERROR("txc", "txn %" PRIx64 ": no timer to send a refused request again: %s (the "
                   "transaction's timeout ends it)", x->id, nines_errdetail());
}

/* The refused requests (slots whose node is in `again`): where their ops
 * go now, grouped per node over all of them. A group for a refused slot's
 * own node keeps that slot; the others take the remaining refused slots,
 * then new ones (seq numbers after the request's); a refused slot left
 * over keeps its node with no ops (never sent). A node that has a request
 * of this one that was not refused cannot take more of it (a prepared
 * kernel takes no more ops): NINES_EAGAIN. *send: the slots to send. */
static int regroup(struct txc *t, struct txc_txn *x, txc_nodes again, uint32_t *send,
                   uint32_t *nsend)
{
    uint32_t nops = 0;
    for (uint32_t k = 0; k < x->nnreq; k++)
        if (again & TXC_NODE(x->nreq[k].node))
            nops += x->nreq[k].nops;
    uint32_t *kop = rt_msg_alloc(x->kept, (nops ? nops : 1) * sizeof *kop);
    uint32_t *grp = rt_msg_alloc(x->kept, (nops ? nops : 1) * sizeof *grp);
    if (!kop || !grp)
        return nines_err(NINES_ENOMEM, "no memory to re-route txn %" PRIx64, x->id);
    uint32_t nodes[64], cnt[64] = {0}, ng = 0, n = 0;
    bool moved = false;
    for (uint32_t k = 0; k < x->nnreq; k++) {
        const struct txc_nreq *r = &x->nreq[k];
        if (!(again & TXC_NODE(r->node)))
            continue;
        for (uint32_t j = 0; j < r->nops; j++) {
            const struct txc_part *p = &x->parts[x->kops[r->idx[j]].part];
            uint32_t now = txc_primary_now(t, p->table, p->frag);
            if (!now)
                return nines_err(NINES_EUNREACHABLE, "not committed: table %u fragment %u has "
                                 "no primary in node set %" PRIu64, p->table, p->frag,
                                 rt_nodeset(t->rt)->epoch);
            moved |= now != r->node;
            uint32_t g = 0;
            while (g < ng && nodes[g] != now)
                g++;
            if (g == ng)
                nodes[ng++] = now;
            cnt[g]++;
            kop[n] = r->idx[j];
            grp[n++] = g;
        }
    }
    *nsend = 0;
    if (!moved) { /* every op where it was: the same requests again */
        for (uint32_t k = 0; k < x->nnreq; k++)
            if ((again & TXC_NODE(x->nreq[k].node)) && x->nreq[k].nops)
                send[(*nsend)++] = k;
        return 0;
    }
    for (uint32_t g = 0; g < ng; g++)
        for (uint32_t j = 0; j < x->nnreq; j++)
            if (!(again & TXC_NODE(x->nreq[j].node)) && x->nreq[j].node == nodes[g])
                return nines_err(NINES_EAGAIN, "txn %" PRIx64 ": ops refused before anything "
                                 "ran now go to node %u, which runs other ops of the same "
                                 "request", x->id, nodes[g]);
    /* a slot per group: the refused slot of its node, else a free refused
     * slot, else a new one */
    uint32_t slot[64];
    bool used[TXC_SLOTS_MAX] = {false};
    uint32_t extra = 0;
    for (uint32_t g = 0; g < ng; g++) {
        slot[g] = UINT32_MAX;
        for (uint32_t k = 0; k < x->nnreq; k++)
            if ((again & TXC_NODE(x->nreq[k].node)) && x->nreq[k].node == nodes[g] && !used[k]) {
                slot[g] = k;
                used[k] = true;
                break;
            }
    }
    for (uint32_t g = 0; g < ng; g++) {
        if (slot[g] != UINT32_MAX)
            continue;
        for (uint32_t k = 0; k < x->nnreq && slot[g] == UINT32_MAX; k++) {
            bool own = false; /* a refused slot whose node has a group keeps it */
            for (uint32_t h = 0; h < ng; h++)
                own |= nodes[h] == x->nreq[k].node;
            if ((again & TXC_NODE(x->nreq[k].node)) && !used[k] && !own) {
                slot[g] = k;
                used[k] = true;
            }
        }
        if (slot[g] == UINT32_MAX)
            slot[g] = x->nnreq + extra++;
    }
    struct txc_nreq *nr = x->nreq;
    if (extra) {
        nr = rt_msg_alloc(x->kept, (x->nnreq + extra) * sizeof *nr);
        if (!nr)
            return nines_err(NINES_ENOMEM, "no memory to re-route txn %" PRIx64, x->id);
        memcpy(nr, x->nreq, x->nnreq * sizeof *nr);
    }
    for (uint32_t k = 0; k < x->nnreq; k++)
        if (again & TXC_NODE(nr[k].node))
            nr[k].nops = 0; /* refused slots not given a group stay empty */
    for (uint32_t g = 0; g < ng; g++) {
        struct txc_nreq *q = &nr[slot[g]];
        q->node = nodes[g];
        q->nops = 0;
        q->idx = rt_msg_alloc(x->kept, cnt[g] * sizeof *q->idx);
        if (!q->idx)
            return nines_err(NINES_ENOMEM, "no memory to re-route txn %" PRIx64, x->id);
        send[(*nsend)++] = slot[g];
    }
    const struct dict *d = txc_dict(t);
    struct dict_live live = txc_live(t);
    for (uint32_t i = 0; i < n; i++) {
        struct txc_nreq *q = &nr[slot[grp[i]]];
        struct txc_kop *o = &x->kops[kop[i]];
        struct txc_part *p = &x->parts[o->part];
        q->idx[q->nops++] = kop[i];
        o->node = q->node;
        if (p->primary != q->node) {
            const struct dict_table *tb = dict_table_by_id(d, p->table);
            struct dict_roles ro;
            p->primary = q->node;
            if (tb && dict_frag_roles_live(d, tb, p->frag, &live, &ro) == 0)
                p->standby = ro.state == DICT_FRAG_BOTH ? ro.standby : ro.logcopy;
        }
    }
    /* nreq_left counts the answers still to come: the slots sent now */
    uint32_t emptied = 0;
    for (uint32_t k = 0; k < x->nnreq; k++)
        if ((again & TXC_NODE(x->nreq[k].node)) && nr[k].nops == 0)
            emptied++;
    x->nreq_left = x->nreq_left + extra - emptied;
    x->nnreq += extra;
    x->seq += extra;
    x->nreq = nr;
    t->st.op_rerouted++;
    char to[200];
    size_t off = 0;
    for (uint32_t g = 0; g < ng && off < sizeof to; g++)
        off += (size_t)snprintf(to + off, sizeof to - off, "%s%u (%u ops)", g ? ", " : "",
                                nodes[g], cnt[g]);
    NLOG_INFO("txc", "txn %" PRIx64 ": ops refused at nodes %" PRIx64 " (before anything ran) "
              "go to nodes %s: their fragments' primary moved in node set %" PRIu64, x->id,
              (uint64_t)again, to, rt_nodeset(t->rt)->epoch);
    return 0;
}

/* The retry timer: send the refused requests again (re-routed). */
static void resend_again(struct txc *t, struct txc_txn *x)
{
    if ((x->st != TXC_EXECUTING && x->st != TXC_PREPARING) || !x->again)
        return;
    bool prepare = x->st == TXC_PREPARING;
    txc_nodes again = x->again;
    x->again = 0;
    x->pending &= ~again; /* set again for wherever the requests go now */
    uint32_t send[TXC_SLOTS_MAX], nsend = 0;
    int rc = x->nnreq + 64 <= TXC_SLOTS_MAX ? regroup(t, x, again, send, &nsend)
                                  : nines_err(NINES_ETOOBIG, "txn %" PRIx64 ": %u requests",
                                              x->id, x->nnreq);
    for (uint32_t i = 0; rc == 0 && i < nsend; i++)
        rc = send_nreq(t, x, send[i], prepare);
    if (rc)
        abortf(t, x, rc, 0, "txn %" PRIx64 ": a request refused while its fragment was taken "
               "over or handed back could not be sent again: %s", x->id, nines_errdetail());
}

void txc_ctl_on_retry_timer(struct txc *t, uint64_t cookie)
{
    struct txc_txn *x = txc_find(t, cookie & ~TXC_RETRY_BIT);
    if (x && !txc_is_hsc_state(x->st))
        resend_again(t, x);
}

/* The request ends the transaction: last ops with prepare=1, PREPARE_REQ
 * to kernels that ran ops before and get none now, TXC_START_REQ to the
 * hsc; then collect readies. */
static void start_commit(struct txc *t, struct txc_txn *x)
{
    txc_nodes with_ops = 0;
    for (uint32_t k = 0; k < x->nnreq; k++)
        with_ops |= TXC_NODE(x->nreq[k].node);
    txc_nodes prep = x->ran & ~with_ops;
    int rc = txc_pick_hsc(t, x, &x->hsc);
    if (rc) {
        char d[TXC_DETAIL_MAX];
        snprintf(d, sizeof d, "%s", nines_errdetail());
        t->st.refused_1safe++;
        abort_now(t, x, rc, 0, d);
        return;
    }
    x->st = TXC_PREPARING;
    if (x->hsc && (rc = send_start(t, x, TXC_OUT_NONE))) {
        /* never run without the decision point: not started, so ours to abort */
        char d[TXC_DETAIL_MAX];
        snprintf(d, sizeof d, "%s", nines_errdetail());
        abort_now(t, x, rc, 0, d);
        return;
    }
    rc = send_ops(t, x, true);
    if (!rc) {
        rc = send_to_kernels(t, x, NINES__MSG_TYPE__PREPARE_REQ, prep);
        x->pending |= prep;
    }
    if (rc) {
        abortf(t, x, rc, 0, "txn %" PRIx64 ": cannot reach a kernel: %s", x->id,
               nines_errdetail());
        return;
    }
    progress(t, x);
}

/* A request the controller refuses before sending anything. A new
 * transaction is simply forgotten. An open one is aborted: the client's
 * handle is dead after a TXN_REF (client/README.md), so nothing it ran
 * earlier may stay applied or locked until the timeout. */
static void refuse_request(struct txc *t, struct txc_txn *x, bool fresh, int err,
                           uint32_t failed, const char *detail)
{
    x->nops = x->nnreq = 0;
    if (fresh) {
        x->answer_due = false;
        txc_key_decided(t, x->id, false, 0, err); /* never ran */
        txc_refuse(t, x->client, x->req_id, 0, err, failed, detail);
        txc_forget(t, x);
        return;
    }
    txc_ctl_abort(t, x, err, failed, detail);
}

/* ---- client requests -------------------------------------------------- */

void txc_on_txn_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxnReq *b = (const Nines__TxnReq *)m->body;
    if (m->from < NET_CONN_BASE) {
        NLOG_WARN("txc", "TXN_REQ from node %llu ignored: transactions come from clients",
                  (unsigned long long)m->from);
        return;
    }
    net_addr conn = m->from;
    /* In flight per connection (README "Requests in flight"): every path
     * below answers exactly once, which gives the slot back. */
    uint32_t inflight = 0;
    int irc = txc_inflight_take(t, conn, &inflight);
    if (irc || inflight > t->cfg.max_inflight) {
        char d[256];
        if (irc)
            snprintf(d, sizeof d, "node %u: %s; retry later", t->self, nines_errdetail());
        else
            snprintf(d, sizeof d, "this connection already has %u requests in flight at node "
                     "%u (max_requests_per_connection %u): wait for an answer, then retry",
                     inflight - 1, t->self, t->cfg.max_inflight);
        t->st.refused_inflight++;
        txc_refuse(t, conn, b->req_id, b->txn, NINES_EAGAIN, 0, d);
        return;
    }
    /* The connection's role (README.md "SECURITY"): a reader reads only. */
    uint32_t role = rt_client_role(rt, conn);
    if (role < NET_ROLE_WRITER) {
        const char *w = b->proc_case != NINES__TXN_REQ__PROC__NOT_SET ? "a procedure" : NULL;
        for (size_t i = 0; !w && i < b->n_ops; i++)
            if (b->ops[i]->op != NINES__OP_TYPE__OP_GET && b->ops[i]->op != NINES__OP_TYPE__OP_SCAN)
                w = b->ops[i]->op == NINES__OP_TYPE__OP_INSERT   ? "an INSERT"
                    : b->ops[i]->op == NINES__OP_TYPE__OP_UPDATE ? "an UPDATE"
                    : b->ops[i]->op == NINES__OP_TYPE__OP_DELETE ? "a DELETE"
                                                                 : "a write";
        if (w || role == 0) {
            char d[200];
            snprintf(d, sizeof d, "permission denied: %s needs the writer role, this "
                     "connection's user has the %s role", w ? w : "a transaction",
                     role == NET_ROLE_READER ? "reader" : "no");
            t->st.refused++;
            txc_refuse(t, conn, b->req_id, b->txn, NINES_EPERM, 0, d);
            return;
        }
    }
    const struct rt_nodeset *ns = rt_nodeset(rt);
    if (!rt_serving(rt)) {
        /* outside the node set, or its lease ran out (it does not hear a
         * quorum, supervisor/README.md "Fencing"): serve nothing, keep the
         * connection */
        char d[256];
        snprintf(d, sizeof d, "node %u does not serve: %s", t->self,
                 ns->reason[0] ? ns->reason
                 : ns->serving ? "it has not heard a quorum of the node set lately"
                               : "no node set installed yet");
        t->st.not_member++;
        txc_refuse(t, conn, b->req_id, b->txn, NINES_ENOTMEMBER, 0, d);
        return;
    }
    struct txc_txn *x;
    bool fresh = b->txn == 0;
    if (fresh) {
        if (b->end == NINES__TXN_END__TXN_END_ROLLBACK) {
            t->st.refused++;
            txc_refuse(t, conn, b->req_id, 0, NINES_EINVAL, 0,
                       "rollback needs the transaction id (txn is 0)");
            return;
        }
        x = txc_alloc(t, txc_new_id(t));
        if (!x) {
            t->st.refused++;
            char d[128];
            snprintf(d, sizeof d, "node %u already holds %u transactions; retry later", t->self,
                     t->cfg.max_txns);
            txc_refuse(t, conn, b->req_id, 0, NINES_EAGAIN, 0, d);
            return;
        }
        x->ctl = t->self;
        x->client = conn;
        x->st = TXC_OPEN;
        if (txc_key_request(t, conn, b, x->id)) { /* answered by its request key */
            txc_forget(t, x);
            return;
        }
    } else {
        x = txc_find(t, b->txn);
        if (!x || !is_ctl_state(x->st) || x->client != conn) {
            t->st.refused++;
            char d[160];
            snprintf(d, sizeof d, "transaction %" PRIx64 " is not open on this connection at "
                     "node %u", b->txn, t->self);
            txc_refuse(t, conn, b->req_id, b->txn, NINES_ENOTFOUND, 0, d);
            return;
        }
        if (x->st != TXC_OPEN) {
            t->st.refused++;
            char d[160];
            snprintf(d, sizeof d, "transaction %" PRIx64 " is %s: one request at a time",
                     b->txn, txc_state_name(x->st));
            txc_refuse(t, conn, b->req_id, b->txn, NINES_ESTATE, 0, d);
            return;
        }
    }
    txc_keep(x, m);
    x->req_id = b->req_id;
    x->answer_due = true;
    if (b->end == NINES__TXN_END__TXN_END_ROLLBACK) {
        abortf(t, x, NINES_EABORTED, 0, "transaction %" PRIx64 " rolled back at the client's "
               "request", x->id);
        return;
    }
    uint32_t failed;
    int rc = txc_route_request(t, x, m, &failed);
    if (rc) {
        char d[TXC_DETAIL_MAX];
        snprintf(d, sizeof d, "%s", nines_errdetail());
        t->st.refused++;
        refuse_request(t, x, fresh, rc, failed, d);
        return;
    }
    if (fresh)
        t->st.started++;
    if (x->nscans && !x->nnreq) { /* only scans of empty ranges: nothing to send */
        rc = txc_scan_merge(t, x, m, &failed);
        if (rc) {
            char d[TXC_DETAIL_MAX];
            snprintf(d, sizeof d, "%s", nines_errdetail());
            refuse_request(t, x, fresh, rc, failed, d);
            return;
        }
    }
    txc_arm(t, x, t->cfg.timeout_ms);
    bool last = b->end == NINES__TXN_END__TXN_END_COMMIT || x->proc != TXC_PROC_NONE;
    if (last) {
        if (!x->ran && !x->nnreq) { /* nothing to commit (nothing ran, nothing to send) */
            txc_key_decided(t, x->id, true, x->value, 0);
            answer_conf(t, x, true);
            t->st.committed++;
            txc_forget(t, x);
            return;
        }
        start_commit(t, x);
        return;
    }
    x->st = TXC_EXECUTING;
    rc = send_ops(t, x, false);
    if (rc) {
        abortf(t, x, rc, 0, "txn %" PRIx64 ": cannot reach a kernel: %s", x->id,
               nines_errdetail());
        return;
    }
    progress(t, x);
    (void)rt;
}

/* ---- kernel answers --------------------------------------------------- */

/* The request a KERN_OP_CONF/REF answers, or -1. */
static int answered_req(struct txc *t, struct txc_txn *x, uint32_t node, uint32_t seq)
{
    if (x->st != TXC_EXECUTING && x->st != TXC_PREPARING && x->st != TXC_ASKING &&
        x->st != TXC_RESOLVING)
        return -1;
    uint32_t k = seq - x->seq_base;
    if (seq < x->seq_base || k >= x->nnreq || x->nreq[k].node != node ||
        !(x->pending & TXC_NODE(node))) {
        t->st.stale++;
        return -1;
    }
    return (int)k;
}

void txc_on_kern_op_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__KernOpConf *b = (const Nines__KernOpConf *)m->body;
    uint32_t node = from_node(t, m);
    struct txc_txn *x = node ? ctl_txn(t, b->txn) : NULL;
    int k = x ? answered_req(t, x, node, b->seq) : -1;
    if (k < 0)
        return;
    const struct txc_nreq *r = &x->nreq[k];
    if (b->n_results != r->nops) {
        abortf(t, x, NINES_EPROTO, x->kops[r->idx[0]].op, "node %u answered %zu results for %u "
               "ops", node, b->n_results, r->nops);
        return;
    }
    txc_keep(x, m);
    for (uint32_t j = 0; j < r->nops; j++) {
        const Nines__OpResult *res = b->results[j];
        uint32_t i = x->kops[r->idx[j]].op;
        if (!res) {
            abortf(t, x, NINES_EPROTO, i, "node %u sent an empty result", node);
            return;
        }
        if (x->ops[i].op->op == NINES__OP_TYPE__OP_SCAN) {
            x->kres[r->idx[j]] = res; /* merged below with the other fragments' rows */
            continue;
        }
        x->results[i] = res;
        if (x->proc != TXC_PROC_NONE && res->status < 0) {
            char name[160];
            txc_op_name(x, i, name, sizeof name);
            abortf(t, x, res->status, i, "%s: %s", name, nines_strerror(res->status));
            return;
        }
        if (x->proc != TXC_PROC_NONE && i == 0) {
            int rc = txc_proc_value(t, x, &x->value);
            if (rc) {
                abortf(t, x, rc, 0, "%s", nines_errdetail());
                return;
            }
        }
    }
    x->pending &= ~TXC_NODE(node);
    if (b->ready) {
        mark_primary(x, node);
        txc_part_frags(x, node, b->frags, b->n_frags);
    }
    if (x->st == TXC_RESOLVING) {
        if (b->ready) {
            /* it prepared under the departed hsc: re-prepare with the new one */
            x->pending |= TXC_NODE(node);
            (void)txc_send_kernel(t, x, NINES__MSG_TYPE__PREPARE_REQ, node); /* or the timer */
        } else {
            x->res |= TXC_RES_ABORTED; /* not prepared: the old hsc cannot have committed */
            x->res_node = node;
        }
    }
    if (--x->nreq_left == 0 && x->nscans) {
        uint32_t failed;
        int rc = txc_scan_merge(t, x, m, &failed);
        if (rc) {
            abortf(t, x, rc, failed, "%s", nines_errdetail());
            return;
        }
    }
    progress(t, x);
    (void)rt;
}

void txc_on_kern_op_ref(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__KernOpRef *b = (const Nines__KernOpRef *)m->body;
    uint32_t node = from_node(t, m);
    struct txc_txn *x = node ? ctl_txn(t, b->txn) : NULL;
    int k = x ? answered_req(t, x, node, b->seq) : -1;
    if (k < 0)
        return;
    const struct txc_nreq *r = &x->nreq[k];
    if (retryable(t, x, (uint32_t)k, node, b)) {
        /* nothing of it ran there: again later (the pending bit stays) */
        NLOG_DEBUG("txc", "txn %" PRIx64 ": node %u refused, nothing ran (%s): sent again "
                   "later", x->id, node, b->detail ? b->detail : "");
        retry_later(t, x, node);
        return;
    }
    uint32_t i = x->kops[b->failed_op < r->nops ? r->idx[b->failed_op] : r->idx[0]].op;
    char name[160];
    txc_op_name(x, i, name, sizeof name);
    x->pending &= ~TXC_NODE(node);
    x->refused = true;
    if (x->st == TXC_RESOLVING) {
        /* it never prepared, so the old hsc cannot have recorded COMMIT */
        x->res |= TXC_RES_ABORTED;
        x->res_node = node;
    }
    abortf(t, x, b->error, i, "%s at node %u: %s", name, node,
           b->detail && *b->detail ? b->detail : nines_strerror(b->error));
    if (x->st == TXC_RESOLVING)
        progress(t, x);
    (void)rt;
}

void txc_on_prepare_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__PrepareConf *b = (const Nines__PrepareConf *)m->body;
    uint32_t node = from_node(t, m);
    struct txc_txn *x = node ? ctl_txn(t, b->txn) : NULL;
    if (!x || (x->st != TXC_PREPARING && x->st != TXC_ASKING && x->st != TXC_RESOLVING) ||
        !(x->pending & TXC_NODE(node)))
        return;
    x->pending &= ~TXC_NODE(node);
    mark_primary(x, node);
    txc_part_frags(x, node, b->frags, b->n_frags);
    progress(t, x);
    (void)rt;
}

/* RESOLVING: what a re-prepared kernel says when it cannot prepare. */
static void resolving_prepare_ref(struct txc *t, struct txc_txn *x, uint32_t node,
                                  const Nines__PrepareRef *b)
{
    if (!(x->pending & TXC_NODE(node)))
        return;
    if (b->error == NINES_ESTATE && b->outcome == TXC_OUT_NONE)
        return; /* its ops are still running: asked again at the timer */
    if (b->error == NINES_ENOTMEMBER || b->error == NINES_EAGAIN)
        return; /* it does not serve right now (its lease, a node-set change, a takeover
                 * under way): it cannot answer, which is not "it forgot"; asked again at
                 * the timer, and a kernel that leaves the node set is gone (README "The
                 * hsc left") */
    x->pending &= ~TXC_NODE(node);
    char d[TXC_DETAIL_MAX];
    if (b->error == NINES_ESTATE && b->outcome == TXC_OUT_COMMITTED) {
        x->res |= TXC_RES_COMMITTED;
        x->res_node = node;
    } else if (b->error == NINES_ESTATE && b->outcome == TXC_OUT_ABORTED) {
        x->res |= TXC_RES_ABORTED;
        x->res_node = node;
        snprintf(d, sizeof d, "transaction %" PRIx64 " aborted: kernel node %u had aborted it "
                 "when its hot-standby controller left the node set", x->id, node);
        if (!x->abort_detail)
            keep_reason(x, NINES_EABORTED, 0, d);
    } else {
        /* no longer known there (ENDED and confirmed), or it cannot tell */
        if (!(x->res & (TXC_RES_COMMITTED | TXC_RES_ABORTED)))
            x->res_node = node;
        x->res |= TXC_RES_LOST;
        NLOG_WARN("txc", "txn %" PRIx64 ": kernel node %u cannot tell its outcome: %s", x->id,
                  node, b->detail && *b->detail ? b->detail : nines_strerror(b->error));
    }
    progress(t, x);
}

void txc_on_prepare_ref(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__PrepareRef *b = (const Nines__PrepareRef *)m->body;
    uint32_t node = from_node(t, m);
    struct txc_txn *x = node ? ctl_txn(t, b->txn) : NULL;
    if (x && x->st == TXC_RESOLVING) {
        resolving_prepare_ref(t, x, node, b);
        return;
    }
    if (!x || x->st != TXC_PREPARING)
        return;
    x->pending &= ~TXC_NODE(node);
    abortf(t, x, b->error, 0, "prepare at node %u refused: %s", node,
           b->detail && *b->detail ? b->detail : nines_strerror(b->error));
    (void)rt;
}

void txc_ctl_ready_ind(struct txc *t, struct txc_txn *x, const Nines__ReadyInd *b)
{
    switch (x->st) {
    case TXC_EXECUTING:
    case TXC_OPEN:
    case TXC_PREPARING:
        break;
    case TXC_ASKING:
    case TXC_RESOLVING:
    case TXC_COMMITTING:
    case TXC_ABORTING:
        return;
    default:
        t->st.stale++;
        return;
    }
    if (!b->standby) { /* (primaries report to the hsc; kept for a one-site cluster) */
        mark_primary(x, b->node);
        txc_part_frags(x, b->node, b->frags, b->n_frags);
    } else {
        /* only when the transaction has no hsc (a one-site cluster);
         * otherwise standby readies go to the hsc alone */
        bool hit = false;
        for (uint32_t i = 0; i < x->nparts; i++) {
            struct txc_part *p = &x->parts[i];
            if (p->table == b->table && p->frag == b->frag && p->standby == b->node) {
                p->s_ready = hit = true;
                break;
            }
        }
        if (!hit || x->hsc)
            t->st.stale++;
    }
    progress(t, x);
}

void txc_on_ready_ind(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__ReadyInd *b = (const Nines__ReadyInd *)m->body;
    if (m->from >= NET_CONN_BASE)
        return;
    if (TXC_ID_NODE(b->txn) == t->self) {
        struct txc_txn *x = ctl_txn(t, b->txn);
        if (x)
            txc_ctl_ready_ind(t, x, b);
        return;
    }
    txc_hsc_ready_ind(t, b, m);
    (void)rt;
}

/* The transaction a decision (TXC_READY_CONF / TXC_ABORT_CONF) from its
 * hsc is about, or NULL. The hsc re-sends its decision until it hears
 * FORGET: for a transaction this incarnation no longer holds, ours was
 * lost (we forget only when every kernel is done), so it is sent again. */
static struct txc_txn *decided_txn(struct txc *t, const struct rt_msg *m, uint64_t txn,
                                   bool committed)
{
    uint32_t from = from_node(t, m);
    struct txc_txn *x = txc_find(t, txn);
    if (!x || !is_ctl_state(x->st)) {
        t->st.stale++;
        if (!x && from && txc_own_incarnation(t, txn))
            forget_unknown(t, txn, from, committed);
        return NULL;
    }
    if (from != x->hsc) {
        t->st.stale++;
        return NULL;
    }
    return x;
}

/* TXC_READY_CONF: the hsc recorded COMMIT. */
void txc_on_ready_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxcReadyConf *b = (const Nines__TxcReadyConf *)m->body;
    uint32_t from = from_node(t, m);
    struct txc_txn *x = decided_txn(t, m, b->txn, true);
    if (!x)
        return;
    switch (x->st) {
    case TXC_PREPARING:
    case TXC_ASKING:
        x->hsc_ready = true;
        x->gci = b->gci; /* the epoch the hsc stamped COMMIT with */
        if (x->proc != TXC_PROC_NONE && b->has_value && (!x->nops || !x->results[0]))
            x->value = b->value; /* op 0's answer is not here (yet): the hsc's record */
        progress(t, x); /* commits once the kernels' answers (the results) are in */
        break;
    case TXC_RESOLVING:
        if (!x->hsc_started || x->doubt) { /* no START sent to it, or in doubt */
            t->st.stale++;
            break;
        }
        /* START told it a kernel had committed: it recorded COMMIT */
        x->hsc_ready = true;
        x->gci = b->gci;
        commit(t, x);
        break;
    case TXC_COMMITTING:
        break; /* a repeat */
    default:
        if (txc_wrote(x))
            NLOG_ERROR("txc", "txn %" PRIx64 ": the hot-standby controller at node %u recorded "
                       "COMMIT while this controller is %s", x->id, from,
                       txc_state_name(x->st));
        t->st.stale++;
        break;
    }
    (void)rt;
}

/* TXC_ABORT_CONF: the hsc recorded ABORT (asked by us, or by a kernel). */
void txc_on_abort_conf_hsc(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxcAbortConf *b = (const Nines__TxcAbortConf *)m->body;
    uint32_t from = from_node(t, m);
    struct txc_txn *x = decided_txn(t, m, b->txn, false);
    if (!x)
        return;
    char d[TXC_DETAIL_MAX];
    switch (x->st) {
    case TXC_ASKING:
        snprintf(d, sizeof d, "%s", x->abort_detail ? x->abort_detail : "aborted");
        abort_now(t, x, x->abort_err, x->abort_op, d);
        break;
    case TXC_PREPARING:
        snprintf(d, sizeof d, "transaction %" PRIx64 " aborted: the hot-standby controller at "
                 "node %u recorded ABORT (a kernel asked for the outcome first, or it had no "
                 "room for the transaction)", x->id, from);
        x->hsc_told = true;
        abort_now(t, x, NINES_EABORTED, 0, d);
        break;
    case TXC_ABORTING:
        x->hsc_told = true; /* it holds an entry now: FORGET it when done */
        break;
    case TXC_RESOLVING:
        /* the new hsc had recorded ABORT (a kernel asked it first) while a
         * kernel says it committed: nobody decides now */
        NLOG_ERROR("txc", "txn %" PRIx64 ": the new hot-standby controller at node %u recorded "
                   "ABORT while resolving (%s)", x->id, from,
                   x->res & TXC_RES_COMMITTED ? "a kernel committed it" : "in doubt");
        t->st.stale++;
        break;
    default:
        NLOG_ERROR("txc", "txn %" PRIx64 ": the hot-standby controller at node %u recorded "
                   "ABORT while this controller is %s", x->id, from, txc_state_name(x->st));
        t->st.stale++;
        break;
    }
    (void)rt;
}

void txc_on_commit_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__CommitConf *b = (const Nines__CommitConf *)m->body;
    uint32_t node = from_node(t, m);
    if (node && TXC_ID_NODE(b->txn) != t->self) { /* the hsc finishing for a departed ctl */
        txc_hsc_end_conf(t, b->txn, node, true);
        return;
    }
    struct txc_txn *x = node ? ctl_txn(t, b->txn) : NULL;
    if (!x || x->st != TXC_COMMITTING)
        return;
    x->waiting &= ~TXC_NODE(node);
    if (!x->waiting)
        finish(t, x, true);
    (void)rt;
}

void txc_on_abort_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__AbortConf *b = (const Nines__AbortConf *)m->body;
    uint32_t node = from_node(t, m);
    if (node && TXC_ID_NODE(b->txn) != t->self) {
        txc_hsc_end_conf(t, b->txn, node, false);
        return;
    }
    struct txc_txn *x = node ? ctl_txn(t, b->txn) : NULL;
    if (!x || x->st != TXC_ABORTING)
        return;
    x->waiting &= ~TXC_NODE(node);
    if (!x->waiting)
        finish(t, x, false);
    (void)rt;
}

/* ---- a kernel asks for the outcome -------------------------------------- */

void txc_outcome_ref(struct txc *t, net_addr to, uint64_t txn, int err, const char *detail)
{
    struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__TXC_OUTCOME_REF);
    Nines__TxcOutcomeRef *b = m ? RT_BODY(m, Nines__TxcOutcomeRef, nines__txc_outcome_ref__init)
                                : NULL;
    char *d = b ? rt_msg_alloc(m, strlen(detail) + 1) : NULL;
    if (!d) {
        if (m)
            rt_msg_free(t->rt, m);
        return; /* the kernel asks again */
    }
    strcpy(d, detail);
    b->txn = txn;
    b->node = t->self;
    b->error = err;
    b->detail = d;
    txc_send(t, (uint32_t)to, RT_SVC_KERN, m);
}

void txc_ctl_outcome_req(struct txc *t, const Nines__TxcOutcomeReq *b, net_addr from)
{
    struct txc_txn *x = txc_find(t, b->txn);
    uint32_t node = from ? (uint32_t)from : t->self;
    char d[200];
    if (!x) {
        if (!txc_own_incarnation(t, b->txn)) {
            snprintf(d, sizeof d, "controller node %u restarted since transaction %" PRIx64
                     " began: ask its hot-standby controller", t->self, b->txn);
            txc_outcome_ref(t, from, b->txn, NINES_EINDOUBT, d);
            return;
        }
        /* finished here lately: the recorded outcome (a kernel that took
         * the transaction over in doubt after the others confirmed). Else
         * this incarnation forgot it without finishing (aborted before any
         * kernel prepared): a kernel still holding it was never told */
        bool commit = t->cgone[b->txn % TXC_CGONE_SLOTS] == b->txn &&
                      t->cgone_commit[b->txn % TXC_CGONE_SLOTS];
        struct txc_txn tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.id = b->txn;
        tmp.gci = commit ? t->cgone_gci[b->txn % TXC_CGONE_SLOTS] : 0; /* its epoch */
        t->st.resent++;
        (void)txc_send_kernel(t, &tmp, commit ? NINES__MSG_TYPE__COMMIT_REQ
                                              : NINES__MSG_TYPE__ABORT_REQ, node);
        return;
    }
    switch (x->st) {
    case TXC_COMMITTING:
        t->st.resent++;
        (void)txc_send_kernel(t, x, NINES__MSG_TYPE__COMMIT_REQ, node);
        break;
    case TXC_ABORTING:
        t->st.resent++;
        (void)txc_send_kernel(t, x, NINES__MSG_TYPE__ABORT_REQ, node);
        break;
    case TXC_EXECUTING:
    case TXC_OPEN:
    case TXC_PREPARING:
    case TXC_ASKING:
    case TXC_RESOLVING:
        snprintf(d, sizeof d, "transaction %" PRIx64 " is %s at controller node %u: not "
                 "decided yet", x->id, txc_state_name(x->st), t->self);
        txc_outcome_ref(t, from, b->txn, NINES_ESTATE, d);
        break;
    default:
        t->st.stale++;
        break;
    }
}

void txc_on_outcome_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxcOutcomeReq *b = (const Nines__TxcOutcomeReq *)m->body;
    if (m->from >= NET_CONN_BASE)
        return;
    const struct rt_nodeset *ns = rt_nodeset(rt);
    if (!ns->member) { /* what it held is finished by the node set's members */
        char d[240];
        snprintf(d, sizeof d, "node %u is outside the node set: %s", t->self, ns->reason);
        txc_outcome_ref(t, m->from, b->txn, NINES_ENOTMEMBER, d);
        return;
    }
    if (TXC_ID_NODE(b->txn) == t->self)
        txc_ctl_outcome_req(t, b, m->from);
    else
        txc_hsc_outcome_req(t, b, m->from);
    (void)rt;
}

/* ---- node sets (txctl/README.md "Node sets") ----------------------------- */

static uint32_t first_node(txc_nodes s) { return s ? (uint32_t)__builtin_ctzll(s) + 1 : 0; }

/* The kernels x depends on: those that ran its ops, and the standbys (or
 * log-copy nodes) of the fragments it wrote, whose READY_IND the hsc needs. */
static txc_nodes kernel_nodes(const struct txc_txn *x)
{
    txc_nodes k = x->ran | x->pending;
    for (uint32_t i = 0; i < x->nparts; i++) {
        uint32_t sb = x->parts[i].standby;
        if (x->parts[i].writes && sb >= 1 && sb <= 64)
            k |= TXC_NODE(sb);
    }
    return k;
}

/* The client's detail: which node left and what it held of x. */
static void left_detail(struct txc *t, const struct txc_txn *x, uint32_t node, char *buf,
                        size_t n)
{
    char what[200];
    snprintf(what, sizeof what, "it ran the transaction's operations");
    for (uint32_t i = 0; i < x->nparts; i++) {
        const struct txc_part *p = &x->parts[i];
        if (p->primary != node && p->standby != node)
            continue;
        const struct dict_table *tb = dict_table_by_id(txc_dict(t), p->table);
        snprintf(what, sizeof what, "it held table %s fragment %u (%s)", tb ? tb->def.name : "?",
                 p->frag, p->primary == node ? "primary" : "standby or log copy");
        break;
    }
    snprintf(buf, n, "transaction %" PRIx64 " aborted: node %u left the node set (epoch %"
             PRIu64 "); %s", x->id, node, rt_nodeset(t->rt)->epoch, what);
}

/* RESOLVING asks again soon (the kernels' answers are held back while a
 * takeover runs there): 20 ms, doubling, at most the retry interval */
static uint32_t resolve_ms(const struct txc *t, const struct txc_txn *x)
{
    uint32_t ms = 20u << (x->asks < 4 ? x->asks : 4);
    return ms < txc_retry_ms(t) ? ms : txc_retry_ms(t);
}

/* The hsc left before deciding (or a new one left again): pick a new one
 * and ask every kernel that prepared whether the transaction ended there,
 * re-preparing it with the new hsc (PREPARE_REQ). Kernels whose ops are
 * still running are asked once they answer (or at the timer). `gone`:
 * kernels of x that left too (then x aborts unless a kernel says it
 * committed). START follows the answers (resolve). */
static void start_resolving(struct txc *t, struct txc_txn *x, txc_nodes gone, const char *detail)
{
    drop_again(x);
    uint32_t old = x->hsc;
    if (x->st == TXC_ASKING)
        x->resolve_abort = true; /* its reason is kept */
    if (x->st != TXC_RESOLVING) {
        x->res = 0;
        x->res_node = 0;
    }
    if (x->refused)
        x->res |= TXC_RES_ABORTED; /* a kernel refused before: never all ready */
    if (gone) {
        x->res |= TXC_RES_GONE;
        if (!x->res_node)
            x->res_node = first_node(gone);
        if (!x->abort_detail)
            keep_reason(x, NINES_EABORTED, 0, detail);
    }
    uint32_t hsc = 0;
    if (txc_pick_hsc(t, x, &hsc))
        hsc = 0; /* no node of the other site left: resolve without an hsc (commit only if a
                  * kernel says it committed) */
    x->hsc = hsc;
    x->hsc_started = x->hsc_ready = false;
    x->st = TXC_RESOLVING;
    x->asks = 0;
    t->st.hsc_moved++;
    NLOG_WARN("txc", "txn %" PRIx64 ": its hot-standby controller node %u left the node set "
              "before deciding; asking its kernels, new hsc node %u", x->id, old, hsc);
    txc_nodes cur = txc_current(t), opwait = 0;
    for (uint32_t k = 0; k < x->nnreq; k++)
        if (x->pending & TXC_NODE(x->nreq[k].node))
            opwait |= TXC_NODE(x->nreq[k].node);
    x->pending &= cur;
    txc_nodes prep = x->ran & cur & ~opwait;
    /* the kernels re-send their readies to the new hsc, which keeps them:
     * it hears FORGET whatever the outcome */
    x->hsc_told = hsc != 0;
    (void)send_to_kernels(t, x, NINES__MSG_TYPE__PREPARE_REQ, prep); /* failures: the timer */
    x->pending |= prep;
    txc_arm(t, x, resolve_ms(t, x));
    progress(t, x);
}

/* RESOLVING, every kernel answered: decide from what they said (README
 * "The hsc left": committed > aborted > lost > a kernel gone > go on). */
static void resolve(struct txc *t, struct txc_txn *x)
{
    char d[TXC_DETAIL_MAX];
    if (x->res & TXC_RES_COMMITTED) {
        /* the old hsc recorded COMMIT and a kernel holds it: committed.
         * The new hsc records it (START with outcome) before COMMIT_REQ
         * goes out, so that it can finish the transaction if we die. */
        if (!x->hsc) {
            /* decided alone (no node of the other site): stamped now, not
             * with the departed hsc's epoch, which nobody here knows */
            if (!txc_gcp_stamp(t, x)) {
                txc_arm(t, x, txc_retry_ms(t)); /* (the timer resolves again too) */
                return; /* queued: txc_ctl_gcp_decide resolves again */
            }
            x->hsc_ready = true;
            commit(t, x);
            return;
        }
        if (!send_start(t, x, TXC_OUT_COMMITTED))
            x->hsc_told = true;
        txc_arm(t, x, txc_retry_ms(t)); /* START again until TXC_READY_CONF */
        return;
    }
    if (x->res & TXC_RES_ABORTED || (!(x->res & TXC_RES_LOST) &&
                                     ((x->res & TXC_RES_GONE) || x->resolve_abort))) {
        if (x->abort_detail)
            snprintf(d, sizeof d, "%s", x->abort_detail);
        else
            snprintf(d, sizeof d, "transaction %" PRIx64 " aborted", x->id);
        abort_now(t, x, x->abort_err ? x->abort_err : NINES_EABORTED, x->abort_op, d);
        return;
    }
    if (x->res & TXC_RES_LOST) {
        /* a kernel ended it on the old hsc's word and forgot it: the
         * decision is lost. Never guess: the client is told, the kernels
         * still prepared hold it, the new hsc answers EINDOUBT. */
        x->doubt = true;
        t->st.lost_decisions++;
        snprintf(d, sizeof d, "transaction %" PRIx64 ": outcome unknown: its hot-standby "
                 "controller left the node set before the decision reached this controller, "
                 "and kernel node %u no longer knows the transaction (it ended there); held "
                 "prepared at the other kernels, never guessed", x->id, x->res_node);
        NLOG_ERROR("txc", "%s", d);
        if (x->answer_due && x->client) {
            txc_refuse(t, x->client, x->req_id, x->id, NINES_EINDOUBT, 0, d);
            t->st.in_doubt++;
        }
        x->answer_due = false;
        if (x->hsc && !send_start(t, x, TXC_OUT_DOUBT))
            x->hsc_told = true;
        txc_arm(t, x, 4 * t->cfg.timeout_ms);
        return;
    }
    if (!x->hsc) {
        t->st.refused_1safe++;
        snprintf(d, sizeof d, "not committed: transaction %" PRIx64 " lost its hot-standby "
                 "controller and no node of the other site is in node set %" PRIu64 " to hold "
                 "the decision", x->id, rt_nodeset(t->rt)->epoch);
        abort_now(t, x, NINES_EUNREACHABLE, 0, d);
        return;
    }
    /* every kernel still prepared, none ended: nothing was decided that
     * anyone heard of; the new hsc decides as usual */
    int rc = send_start(t, x, TXC_OUT_NONE);
    if (rc) {
        snprintf(d, sizeof d, "%s", nines_errdetail());
        abort_now(t, x, rc, 0, d);
        return;
    }
    x->st = TXC_PREPARING;
    txc_arm(t, x, t->cfg.timeout_ms);
    progress(t, x);
}

static void resolving_timer(struct txc *t, struct txc_txn *x)
{
    t->st.resent++;
    if (x->pending) {
        /* lost at the epoch boundary, or ops still running: ask again */
        (void)send_to_kernels(t, x, NINES__MSG_TYPE__PREPARE_REQ, x->pending);
    } else if (x->hsc_started) {
        /* START with a known commit or a lost decision: until the new hsc
         * answers (a repeat is answered; lost, it would record nothing) */
        (void)send_start(t, x, x->doubt ? TXC_OUT_DOUBT : TXC_OUT_COMMITTED);
    } else if (!x->doubt) {
        resolve(t, x);
        return; /* it armed what follows, or forgot x */
    } else if (x->hsc) {
        (void)send_start(t, x, TXC_OUT_DOUBT);
    }
    if (x->doubt && ++x->asks % 16 == 1)
        NLOG_ERROR("txc", "txn %" PRIx64 ": outcome lost with a departed hot-standby "
                   "controller; held (kernel node %u ended it)", x->id, x->res_node);
    txc_arm(t, x, x->doubt ? 4 * t->cfg.timeout_ms : resolve_ms(t, x));
}

void txc_ctl_on_nodeset(struct txc *t, struct txc_txn *x)
{
    txc_nodes cur = txc_current(t);
    bool hsc_gone = x->hsc && !(txc_members(t) & TXC_NODE(x->hsc));
    bool phase2 = x->st == TXC_COMMITTING || x->st == TXC_ABORTING;
    txc_nodes gone = phase2 ? 0 : kernel_nodes(x) & ~cur;
    char d[TXC_DETAIL_MAX] = "";
    if (gone)
        left_detail(t, x, first_node(gone), d, sizeof d);
    switch (x->st) {
    case TXC_EXECUTING:
    case TXC_OPEN:
        if (gone)
            abort_now(t, x, NINES_EABORTED, 0, d); /* before START: ours to abort */
        return;
    case TXC_PREPARING:
    case TXC_ASKING:
        if (x->hsc_ready) {
            /* COMMIT recorded: an answer a departed kernel owed never comes
             * (its results are reported lost); the others' still may */
            if (hsc_gone)
                x->hsc_told = false;
            for (uint32_t node = 1; node <= 64; node++)
                if (x->pending & ~cur & TXC_NODE(node))
                    mark_primary(x, node);
            x->pending &= cur;
            progress(t, x);
            return;
        }
        if (!x->hsc_started) { /* no hsc: only reads, or a one-site cluster */
            if (gone)
                abort_now(t, x, NINES_EABORTED, 0, d);
            return;
        }
        if (hsc_gone) {
            start_resolving(t, x, gone, d);
            return;
        }
        if (gone && x->st == TXC_PREPARING)
            ask_abort(t, x, NINES_EABORTED, 0, d); /* its hsc records ABORT too */
        return;
    case TXC_RESOLVING:
        if (gone) {
            x->pending &= cur;
            x->res |= TXC_RES_GONE;
            if (!x->res_node)
                x->res_node = first_node(gone);
            if (!x->abort_detail)
                keep_reason(x, NINES_EABORTED, 0, d);
        }
        if (hsc_gone)
            start_resolving(t, x, 0, d); /* the new hsc left too: another one */
        else
            progress(t, x);
        return;
    case TXC_COMMITTING:
    case TXC_ABORTING: {
        if (hsc_gone)
            x->hsc_told = false; /* no FORGET to a departed node */
        if (!(x->waiting & ~cur))
            return;
        /* the second phase goes to whoever holds the departed kernels'
         * fragments now (the promoted standbys) */
        bool committing = x->st == TXC_COMMITTING;
        x->waiting = txc_map_nodes(t, x->waiting);
        (void)send_to_kernels(t, x, committing ? NINES__MSG_TYPE__COMMIT_REQ
                                               : NINES__MSG_TYPE__ABORT_REQ, x->waiting);
        if (!x->waiting)
            finish(t, x, committing);
        else
            txc_arm(t, x, txc_retry_ms(t));
        return;
    }
    default:
        NLOG_ERROR("txc", "txn %" PRIx64 ": node set in state %s", x->id, txc_state_name(x->st));
        return;
    }
}

void txc_ctl_on_not_serving(struct txc *t, struct txc_txn *x)
{
    const struct rt_nodeset *ns = rt_nodeset(t->rt);
    if (x->answer_due && x->client) {
        char d[TXC_DETAIL_MAX];
        if (x->hsc_ready && x->st != TXC_RESOLVING) {
            answer_conf(t, x, true); /* COMMIT is recorded at the hsc, which finishes it */
        } else if (x->hsc_started && txc_wrote(x)) {
            snprintf(d, sizeof d, "transaction %" PRIx64 ": outcome unknown: node %u left the "
                     "node set (%s) before it knew; its hot-standby controller node %u "
                     "decides (commit only if it had recorded COMMIT)", x->id, t->self,
                     ns->reason, x->hsc);
            txc_refuse(t, x->client, x->req_id, x->id, NINES_EINDOUBT, 0, d);
            t->st.in_doubt++;
        } else {
            snprintf(d, sizeof d, "transaction %" PRIx64 " aborted: node %u left the node set: "
                     "%s", x->id, t->self, ns->reason);
            txc_refuse(t, x->client, x->req_id, x->id, NINES_ENOTMEMBER, 0, d);
        }
    }
    x->answer_due = false;
    txc_forget(t, x);
}

/* ---- timers and client close ------------------------------------------ */

static void nodes_str(txc_nodes s, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = 0;
    for (uint32_t id = 1; id <= 64 && o + 4 < n; id++)
        if (s & TXC_NODE(id))
            o += (size_t)snprintf(buf + o, n - o, "%s%u", o ? "," : "", id);
}

/* What a transaction still waits for, for the timeout message. */
static void missing(const struct txc_txn *x, char *buf, size_t n)
{
    size_t o = 0;
    char ns[200];
    if (x->pending) {
        nodes_str(x->pending, ns, sizeof ns);
        o += (size_t)snprintf(buf + o, n - o, " kernel answers from node(s) %s;", ns);
    }
    for (uint32_t i = 0; i < x->nparts && o + 80 < n; i++) {
        const struct txc_part *p = &x->parts[i];
        if (x->st == TXC_PREPARING && !p->p_ready)
            o += (size_t)snprintf(buf + o, n - o, " ready of table %u fragment %u at primary "
                                  "node %u;", p->table, p->frag, p->primary);
        if (x->st == TXC_PREPARING && !x->hsc && p->standby && !p->s_ready)
            o += (size_t)snprintf(buf + o, n - o, " ready of table %u fragment %u at standby "
                                  "node %u;", p->table, p->frag, p->standby);
    }
    if (x->st == TXC_PREPARING && x->hsc && !x->hsc_ready && o + 60 < n)
        o += (size_t)snprintf(buf + o, n - o, " the decision of the hot-standby controller at "
                              "node %u;", x->hsc);
    if (x->st == TXC_OPEN && o + 40 < n)
        o += (size_t)snprintf(buf + o, n - o, " the client's next request;");
    if (o == 0)
        snprintf(buf, n, " nothing");
}

#define TXC_ASKS_BEFORE_DOUBT 3 /* unanswered TXC_ABORT_REQs before the client hears EINDOUBT */

/* Re-send a second-phase message to every kernel that has not confirmed. */
static void resend_phase2(struct txc *t, struct txc_txn *x, uint32_t type)
{
    char ns[200];
    nodes_str(x->waiting, ns, sizeof ns);
    /* a kernel confirms once its standby applied the outcome: a slow or
     * stalled standby delays it for a round or two without anything being
     * wrong, so the warning waits for the fourth round (one timeout) */
    if (++x->asks == 4 || (x->asks > 4 && x->asks % 16 == 0))
        NLOG_WARN("txc", "txn %" PRIx64 ": no %s from node(s) %s after %u rounds; re-sending",
                  x->id, type == NINES__MSG_TYPE__COMMIT_REQ ? "COMMIT_CONF" : "ABORT_CONF", ns,
                  x->asks);
    else
        NLOG_DEBUG("txc", "txn %" PRIx64 ": no %s from node(s) %s after %u round(s); "
                   "re-sending", x->id,
                   type == NINES__MSG_TYPE__COMMIT_REQ ? "COMMIT_CONF" : "ABORT_CONF", ns,
                   x->asks);
    t->st.resent++;
    x->waiting = txc_map_nodes(t, x->waiting);
    (void)send_to_kernels(t, x, type, x->waiting);
    txc_arm(t, x, txc_retry_ms(t));
}

void txc_ctl_on_timer(struct txc *t, struct txc_txn *x)
{
    switch (x->st) {
    case TXC_EXECUTING:
    case TXC_OPEN:
    case TXC_PREPARING: {
        if (x->hsc_ready) { /* COMMIT recorded; a kernel's answer is late or lost */
            commit(t, x);
            break;
        }
        char miss[TXC_DETAIL_MAX - 120];
        missing(x, miss, sizeof miss);
        t->st.timeouts++;
        abortf(t, x, NINES_ETIMEDOUT, 0, "transaction %" PRIx64 " timed out after %u ms (%s), "
               "waiting for:%s", x->id, t->cfg.timeout_ms, txc_state_name(x->st), miss);
        break;
    }
    case TXC_ASKING:
        if (x->hsc_ready) { /* COMMIT recorded; a kernel's answer is late or lost */
            commit(t, x);
            break;
        }
        if (++x->asks == TXC_ASKS_BEFORE_DOUBT && x->answer_due && x->client) {
            char d[TXC_DETAIL_MAX];
            snprintf(d, sizeof d, "transaction %" PRIx64 ": outcome unknown: the hot-standby "
                     "controller at node %u holds the decision and has not answered %u requests "
                     "to abort; it may have committed (%s)", x->id, x->hsc, x->asks - 1,
                     x->abort_detail ? x->abort_detail : "");
            txc_refuse(t, x->client, x->req_id, x->id, NINES_EINDOUBT, 0, d);
            x->answer_due = false;
            t->st.in_doubt++;
        }
        t->st.resent++;
        txc_send_txc(t, x->hsc, NINES__MSG_TYPE__TXC_ABORT_REQ, x->id);
        txc_arm(t, x, txc_retry_ms(t));
        break;
    case TXC_RESOLVING:
        resolving_timer(t, x);
        break;
    case TXC_COMMITTING:
        resend_phase2(t, x, NINES__MSG_TYPE__COMMIT_REQ);
        break;
    case TXC_ABORTING:
        resend_phase2(t, x, NINES__MSG_TYPE__ABORT_REQ);
        break;
    default:
        NLOG_ERROR("txc", "txn %" PRIx64 ": timer in state %s", x->id, txc_state_name(x->st));
        break;
    }
}

void txc_ctl_on_client_closed(struct txc *t, net_addr conn)
{
    struct txc_txn *next;
    for (struct txc_txn *x = t->active; x; x = next) {
        next = x->next;
        if (x->client != conn || !is_ctl_state(x->st))
            continue;
        x->client = 0;
        x->answer_due = false;
        switch (x->st) {
        case TXC_EXECUTING:
        case TXC_OPEN:
        case TXC_PREPARING:
        case TXC_RESOLVING:
            /* abort may forget x; `next` stays valid (only x leaves) */
            abortf(t, x, NINES_ECLOSED, 0, "client connection closed");
            break;
        case TXC_ASKING:
        case TXC_COMMITTING:
        case TXC_ABORTING:
            break;
        default:
            break;
        }
    }
}

void txc_ctl_gcp_decide(struct txc *t, struct txc_txn *x)
{
    switch (x->st) {
    case TXC_PREPARING:
    case TXC_RESOLVING:
        progress(t, x); /* stamps now and commits (RESOLVING: resolve again) */
        break;
    case TXC_EXECUTING:
    case TXC_OPEN:
    case TXC_ASKING:
    case TXC_COMMITTING:
    case TXC_ABORTING:
        break; /* aborted or decided meanwhile */
    default:
        NLOG_ERROR("txc", "txn %" PRIx64 ": queued COMMIT in state %s", x->id,
                   txc_state_name(x->st));
        break;
    }
}
