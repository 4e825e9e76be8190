/* The dictionary transaction: changes entering at any node (forwarded to
 * the coordinator), the coordinator's queue and two-phase commit, and the
 * participant. State machines and message sequences: dict/svc/README.md. */
#include "dsvc_int.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_MASK 0xffffffffffffull

static const char *dtx_name(enum dsvc_dtx_state st)
{
    switch (st) {
    case DSVC_DTX_IDLE:
        return "idle";
    case DSVC_DTX_PREPARING:
        return "preparing";
    case DSVC_DTX_COMMITTING:
        return "committing";
    case DSVC_DTX_SAVING:
        return "saving";
    case DSVC_DTX_RETRY_WAIT:
        return "retry-wait";
    default:
        return "invalid";
    }
}

static bool is_node(net_addr a) { return a >= 1 && a <= DICT_MAX_NODES; }

static void note_add(struct dsvc *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note_add(struct dsvc *d, const char *fmt, ...)
{
    size_t n = strlen(d->note);
    if (n + 4 >= sizeof d->note)
        return;
    if (n)
        n += (size_t)snprintf(d->note + n, sizeof d->note - n, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->note + n, sizeof d->note - n, fmt, ap);
    va_end(ap);
}

/* ---- answers to the requester ------------------------------------------- */

static void change_ref(struct dsvc *d, net_addr to, uint64_t ref, int err, const char *why)
{
    if (!to)
        return; /* the client or forwarding node is gone */
    struct rt *rt = d->rt;
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_CHANGE_REF);
    Nines__DictChangeRef *b = r ? RT_BODY(r, Nines__DictChangeRef, nines__dict_change_ref__init)
                                : NULL;
    char *reason = r ? rt_msg_alloc(r, strlen(why) + 1) : NULL;
    if (!b || !reason) {
        if (r)
            rt_msg_free(rt, r);
        return;
    }
    strcpy(reason, why);
    b->ref = ref;
    b->error = err;
    b->reason = reason;
    b->coordinator = d->self;
    rt_send(rt, to, is_node(to) ? RT_SVC_DICT : RT_SVC_NONE, r);
}

/* The answer to a task of this node (DictChangeReq.reply_svc): the local
 * message DSVC_MSG_CHANGE_DONE, cookie = its ref, err = 0 or the error,
 * body = a DictChangeConf (committed) or DictChangeRef (why not). */
static void local_done(struct dsvc *d, uint32_t svc, uint64_t ref, int err, const char *why,
                       uint64_t version, uint32_t moved)
{
    if (!svc || svc >= RT_SVC_MAX)
        return;
    struct rt_msg *r = rt_msg_new(d->rt, DSVC_MSG_CHANGE_DONE);
    char *text = r ? rt_msg_alloc(r, strlen(why ? why : "") + 1) : NULL;
    if (!text) {
        if (r)
            rt_msg_free(d->rt, r);
        return; /* the requester asks again */
    }
    strcpy(text, why ? why : "");
    if (err) {
        Nines__DictChangeRef *b = RT_BODY(r, Nines__DictChangeRef, nines__dict_change_ref__init);
        if (!b) {
            rt_msg_free(d->rt, r);
            return;
        }
        b->ref = ref;
        b->error = err;
        b->reason = text;
        b->coordinator = d->self;
    } else {
        Nines__DictChangeConf *b =
            RT_BODY(r, Nines__DictChangeConf, nines__dict_change_conf__init);
        if (!b) {
            rt_msg_free(d->rt, r);
            return;
        }
        b->ref = ref;
        b->version = version;
        b->moved = moved;
        b->note = text;
    }
    r->cookie = ref;
    r->err = err;
    rt_post_local(d->rt, (enum rt_svc)svc, r);
}

/* A refusal to whoever asked: a client, a forwarding node, or a task here. */
static void refuse(struct dsvc *d, net_addr to, uint32_t svc, uint64_t ref, int err,
                   const char *why)
{
    if (svc)
        local_done(d, svc, ref, err, why, 0, 0);
    else
        change_ref(d, to, ref, err, why);
}

static void req_free(struct dsvc *d, struct dsvc_req *q)
{
    rt_msg_free(d->rt, q->m);
    free(q);
}

static const Nines__DictChange *req_change(const struct dsvc_req *q)
{
    return ((const Nines__DictChangeReq *)q->m->body)->change;
}

/* The current change ends without commit. */
static void tx_fail(struct dsvc *d, int err, const char *why)
{
    struct dsvc_req *q = d->req;
    N_ASSERT(q);
    char what[96];
    NLOG_INFO("dict", "dictionary change refused (%s): %s",
              dsvc_change_name(req_change(q), what, sizeof what), why);
    refuse(d, q->reply_to, q->local_svc, q->ref, err, why);
    req_free(d, q);
    d->req = NULL;
    if (d->have_next) {
        dict_free(&d->next);
        d->have_next = false;
    }
    d->gen++;
    d->tx = DSVC_DTX_IDLE;
}

static void ids_from_set(struct rt_msg *r, dict_liveset set, uint32_t **out, size_t *n)
{
    *n = 0;
    *out = rt_msg_alloc(r, DICT_MAX_NODES * sizeof **out);
    if (!*out)
        return;
    for (uint32_t id = 1; id <= DICT_MAX_NODES; id++)
        if (set & DICT_LIVE(id))
            (*out)[(*n)++] = id;
}

/* The current change is committed here and at the confirmed nodes. */
static void tx_finish(struct dsvc *d)
{
    struct dsvc_req *q = d->req;
    N_ASSERT(q);
    struct rt *rt = d->rt;
    char what[96];
    dsvc_change_name(req_change(q), what, sizeof what);
    NLOG_INFO("dict", "committed %s as dictionary version %llu (confirmed by %d other nodes%s%s)",
              what, (unsigned long long)(d->base_version + 1),
              __builtin_popcountll(d->confirmed), d->note[0] ? "; " : "", d->note);
    if (q->local_svc)
        local_done(d, q->local_svc, q->ref, 0, d->note, d->base_version + 1, d->result_moved);
    if (q->reply_to) {
        struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_CHANGE_CONF);
        Nines__DictChangeConf *b =
            r ? RT_BODY(r, Nines__DictChangeConf, nines__dict_change_conf__init) : NULL;
        char *note = r ? rt_msg_alloc(r, strlen(d->note) + 1) : NULL;
        if (b && note) {
            strcpy(note, d->note);
            b->ref = q->ref;
            b->version = d->base_version + 1;
            b->table_id = d->new_table_id;
            b->moved = d->result_moved;
            b->coordinator = d->self;
            ids_from_set(r, d->confirmed | DICT_LIVE(d->self), &b->confirmed, &b->n_confirmed);
            ids_from_set(r, d->missing, &b->missing, &b->n_missing);
            b->note = note;
            rt_send(rt, q->reply_to, is_node(q->reply_to) ? RT_SVC_DICT : RT_SVC_NONE, r);
        } else if (r) {
            rt_msg_free(rt, r);
        }
    }
    req_free(d, q);
    d->req = NULL;
    d->gen++;
    d->tx = DSVC_DTX_IDLE;
}

/* ---- coordinator --------------------------------------------------------- */

static void phase_timer(struct dsvc *d, uint64_t us)
{
    d->gen++;
    rt_timer_add(d->rt, RT_SVC_DICT, us, DSVC_COOKIE(DSVC_DT_PHASE, d->gen));
}

static void send_abort(struct dsvc *d, dict_liveset set)
{
    for (uint32_t id = 1; id <= DICT_MAX_NODES; id++) {
        if (!(set & DICT_LIVE(id)))
            continue;
        struct rt_msg *m = rt_msg_new(d->rt, NINES__MSG_TYPE__DICT_ABORT_REQ);
        Nines__DictAbortReq *b =
            m ? RT_BODY(m, Nines__DictAbortReq, nines__dict_abort_req__init) : NULL;
        if (!b) {
            if (m)
                rt_msg_free(d->rt, m);
            continue;
        }
        b->txn = d->txn;
        (void)rt_send(d->rt, id, RT_SVC_DICT, m); /* lost: its prepared timer ends it */
    }
}

static void local_commit(struct dsvc *d)
{
    N_ASSERT(d->have_next);
    d->tx = DSVC_DTX_SAVING;
    d->gen++; /* phase timers are stale now */
    d->have_next = false;
    char what[96], why[128];
    snprintf(why, sizeof why, "committed %s as coordinator",
             dsvc_change_name(req_change(d->req), what, sizeof what));
    dsvc_install(d, &d->next, why, true); /* may finish at once (no data folder) */
}

static void commit_phase(struct dsvc *d)
{
    d->tx = DSVC_DTX_COMMITTING;
    d->confirmed = 0;
    for (uint32_t id = 1; id <= DICT_MAX_NODES; id++) {
        if (!(d->part & DICT_LIVE(id)))
            continue;
        struct rt_msg *m = rt_msg_new(d->rt, NINES__MSG_TYPE__DICT_COMMIT_REQ);
        Nines__DictCommitReq *b =
            m ? RT_BODY(m, Nines__DictCommitReq, nines__dict_commit_req__init) : NULL;
        int rc = NINES_ENOMEM;
        if (b) {
            b->txn = d->txn;
            b->new_version = d->base_version + 1;
            rc = rt_send(d->rt, id, RT_SVC_DICT, m);
        } else if (m) {
            rt_msg_free(d->rt, m);
        }
        if (rc) {
            d->part &= ~DICT_LIVE(id);
            d->missing |= DICT_LIVE(id);
            note_add(d, "node %u: COMMIT not sent (%s)", id, nines_strerror(rc));
        }
    }
    if (!d->part)
        local_commit(d);
    else
        phase_timer(d, DSVC_COMMIT_MS * 1000u);
}

static void check_prepared(struct dsvc *d)
{
    if (d->tx == DSVC_DTX_PREPARING && (d->acked & d->part) == d->part)
        commit_phase(d);
}

static void check_committed(struct dsvc *d)
{
    if (d->tx == DSVC_DTX_COMMITTING && (d->confirmed & d->part) == d->part)
        local_commit(d);
}

/* Start the change at the head of the queue. false: it ended at once. */
static bool tx_begin(struct dsvc *d)
{
    struct dsvc_req *q = d->req;
    char why[512];
    if (rt_now_us(d->rt) > q->deadline_us) {
        snprintf(why, sizeof why, "not committed within %u ms after %u attempts (last: %s)",
                 DSVC_REQUEST_MS, q->attempts, q->last_why);
        tx_fail(d, NINES_ETIMEDOUT, why);
        return false;
    }
    int rc = dsvc_apply(&d->cur, req_change(q), &d->next, &d->new_table_id, &d->result_moved);
    if (rc) {
        snprintf(why, sizeof why, "%s", nines_errdetail());
        tx_fail(d, rc, why);
        return false;
    }
    d->have_next = true;
    d->next_digest = dsvc_digest(&d->next);
    d->base_version = d->cur.version;
    d->txn++;
    d->part = dsvc_live(d) & ~DICT_LIVE(d->self);
    d->acked = d->confirmed = d->missing = 0;
    d->note[0] = '\0';
    const Nines__DictChange *change = req_change(q);
    for (uint32_t id = 1; id <= DICT_MAX_NODES; id++) {
        if (!(d->part & DICT_LIVE(id)))
            continue;
        struct rt_msg *m = rt_msg_new(d->rt, NINES__MSG_TYPE__DICT_PREPARE_REQ);
        Nines__DictPrepareReq *b =
            m ? RT_BODY(m, Nines__DictPrepareReq, nines__dict_prepare_req__init) : NULL;
        rc = NINES_ENOMEM;
        if (b) {
            b->txn = d->txn;
            b->base_version = d->base_version;
            b->base_digest = d->digest;
            b->new_version = d->base_version + 1;
            b->new_digest = d->next_digest;
            b->change = (Nines__DictChange *)change; /* packed now: remote destination */
            rc = rt_send(d->rt, id, RT_SVC_DICT, m);
        } else if (m) {
            rt_msg_free(d->rt, m);
        }
        if (rc)
            d->part &= ~DICT_LIVE(id); /* not reachable after all: it will catch up */
    }
    NLOG_DEBUG("dict", "transaction %llu: prepare version %llu at %d nodes",
               (unsigned long long)d->txn, (unsigned long long)(d->base_version + 1),
               __builtin_popcountll(d->part));
    d->tx = DSVC_DTX_PREPARING;
    if (!d->part)
        commit_phase(d);
    else
        phase_timer(d, DSVC_PREPARE_MS * 1000u);
    return true;
}

void dsvc_kick(struct dsvc *d)
{
    while (d->tx == DSVC_DTX_IDLE && d->pt == DSVC_DPT_IDLE && d->fetch == DSVC_DFETCH_IDLE &&
           d->q_head) {
        struct dsvc_req *q = d->q_head;
        d->q_head = q->next;
        if (!d->q_head)
            d->q_tail = NULL;
        d->qlen--;
        q->next = NULL;
        d->req = q;
        if (tx_begin(d))
            break;
    }
}

/* Abort the round and try the same change again after a short delay. */
static void tx_retry(struct dsvc *d, const char *why)
{
    struct dsvc_req *q = d->req;
    send_abort(d, d->part);
    if (d->have_next) {
        dict_free(&d->next);
        d->have_next = false;
    }
    q->attempts++;
    snprintf(q->last_why, sizeof q->last_why, "%.250s", why);
    NLOG_INFO("dict", "transaction %llu aborted, retrying: %s", (unsigned long long)d->txn, why);
    d->tx = DSVC_DTX_RETRY_WAIT;
    uint64_t ms = 20u * (q->attempts < 10 ? q->attempts : 10) + 3u * d->self;
    phase_timer(d, ms * 1000u);
}

/* Queue a change: its answer goes to reply_to (a client or forwarding
 * node) or, with local_svc, to that task of this node. */
static void enqueue(struct dsvc *d, struct rt_msg *m, net_addr reply_to, uint32_t local_svc,
                    uint64_t ref)
{
    if (d->qlen >= DSVC_QUEUE_MAX) {
        char why[96];
        snprintf(why, sizeof why, "the dictionary change queue of node %u is full (%u waiting)",
                 d->self, d->qlen);
        refuse(d, reply_to, local_svc, ref, NINES_EAGAIN, why);
        return;
    }
    struct dsvc_req *q = calloc(1, sizeof *q);
    if (!q) {
        refuse(d, reply_to, local_svc, ref, NINES_ENOMEM, "no memory to queue the change");
        return;
    }
    rt_msg_keep(m);
    q->m = m;
    q->reply_to = reply_to;
    q->local_svc = local_svc;
    q->ref = ref;
    q->deadline_us = rt_now_us(d->rt) + DSVC_REQUEST_MS * 1000u;
    snprintf(q->last_why, sizeof q->last_why, "none");
    if (d->q_tail)
        d->q_tail->next = q;
    else
        d->q_head = q;
    d->q_tail = q;
    d->qlen++;
    dsvc_kick(d);
}

/* Is this a participant's answer to the coordinator's current round (state
 * st, transaction txn)? Anything else is a late answer to an earlier round. */
static bool answers_round(const struct dsvc *d, int st, uint64_t txn, net_addr from)
{
    return (int)d->tx == st && txn == d->txn && is_node(from) && (d->part & DICT_LIVE(from));
}

void dsvc_on_prepare_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictPrepareConf *b = (const Nines__DictPrepareConf *)m->body;
    if (!answers_round(d, DSVC_DTX_PREPARING, b->txn, m->from))
        return; /* late answer to an earlier round */
    d->acked |= DICT_LIVE(m->from);
    check_prepared(d);
}

void dsvc_on_prepare_ref(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictPrepareRef *b = (const Nines__DictPrepareRef *)m->body;
    if (!answers_round(d, DSVC_DTX_PREPARING, b->txn, m->from))
        return;
    uint32_t from = (uint32_t)m->from;
    char why[400];
    snprintf(why, sizeof why, "node %u refused: %s", from, b->reason ? b->reason : "");
    switch (b->error) {
    case NINES_ESTALE:
    case NINES_ESTATE:
        /* behind (it fetches from us), busy, or ahead (we fetch from it) */
        tx_retry(d, why);
        if (b->error == NINES_ESTALE && b->version > d->base_version)
            dsvc_fetch_from(d, from, "a participant is ahead");
        break;
    default:
        send_abort(d, d->part);
        tx_fail(d, b->error < 0 ? b->error : NINES_EPROTO, why);
        dsvc_kick(d);
        break;
    }
}

void dsvc_on_commit_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictCommitConf *b = (const Nines__DictCommitConf *)m->body;
    if (!answers_round(d, DSVC_DTX_COMMITTING, b->txn, m->from))
        return;
    d->confirmed |= DICT_LIVE(m->from);
    check_committed(d);
}

void dsvc_on_commit_ref(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictCommitRef *b = (const Nines__DictCommitRef *)m->body;
    if (!answers_round(d, DSVC_DTX_COMMITTING, b->txn, m->from))
        return;
    d->part &= ~DICT_LIVE(m->from);
    d->missing |= DICT_LIVE(m->from);
    note_add(d, "node %u: %s", (unsigned)m->from, b->reason ? b->reason : "refused the commit");
    check_committed(d);
}

/* Own file written (or failed): the coordinator's last step. */
void dsvc_tx_on_saved(struct dsvc *d)
{
    if (d->tx != DSVC_DTX_SAVING || !d->req)
        return;
    uint64_t v = d->base_version + 1;
    if (d->saved_version >= v) {
        tx_finish(d);
    } else if (d->save == DSVC_DSAVE_IDLE && d->img_rc != 0 && d->img_version >= v) {
        note_add(d, "coordinator %u could not save its dictionary file: %s", d->self,
                 d->img_why);
        tx_finish(d);
    } else {
        return; /* a later save covers it */
    }
    dsvc_kick(d);
}

/* ---- participant --------------------------------------------------------- */

static void prepare_ref(struct dsvc *d, net_addr to, uint64_t txn, int err, const char *why)
{
    struct rt *rt = d->rt;
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_PREPARE_REF);
    Nines__DictPrepareRef *b =
        r ? RT_BODY(r, Nines__DictPrepareRef, nines__dict_prepare_ref__init) : NULL;
    char *reason = r ? rt_msg_alloc(r, strlen(why) + 1) : NULL;
    if (!b || !reason) {
        if (r)
            rt_msg_free(rt, r);
        return;
    }
    strcpy(reason, why);
    b->txn = txn;
    b->error = err;
    b->reason = reason;
    b->version = d->cur.version;
    b->digest = d->digest;
    rt_send(rt, to, RT_SVC_DICT, r);
}

static void prepare_conf(struct dsvc *d, net_addr to, uint64_t txn)
{
    struct rt_msg *r = rt_msg_new(d->rt, NINES__MSG_TYPE__DICT_PREPARE_CONF);
    Nines__DictPrepareConf *b =
        r ? RT_BODY(r, Nines__DictPrepareConf, nines__dict_prepare_conf__init) : NULL;
    if (!b) {
        if (r)
            rt_msg_free(d->rt, r);
        return;
    }
    b->txn = txn;
    rt_send(d->rt, to, RT_SVC_DICT, r);
}

static void pt_drop(struct dsvc *d, const char *why)
{
    N_ASSERT(d->pt == DSVC_DPT_PREPARED);
    NLOG_INFO("dict", "dropping prepared transaction %llu of node %u: %s",
              (unsigned long long)d->pt_txn, d->pt_coord, why);
    dict_free(&d->pt_next);
    d->pt = DSVC_DPT_IDLE;
    d->pt_gen++;
    dsvc_kick(d);
}

void dsvc_on_prepare_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictPrepareReq *b = (const Nines__DictPrepareReq *)m->body;
    if (!is_node(m->from))
        return; /* node-to-node only */
    uint32_t from = (uint32_t)m->from;
    char why[400];
    switch (d->tx) {
    case DSVC_DTX_PREPARING:
    case DSVC_DTX_COMMITTING:
    case DSVC_DTX_SAVING:
        snprintf(why, sizeof why, "node %u is coordinating dictionary transaction %llu (%s)",
                 d->self, (unsigned long long)d->txn, dtx_name(d->tx));
        prepare_ref(d, from, b->txn, NINES_ESTATE, why);
        return;
    case DSVC_DTX_IDLE:
    case DSVC_DTX_RETRY_WAIT:
        break;
    default:
        N_ASSERT(!"bad coordinator state");
        return;
    }
    switch (d->pt) {
    case DSVC_DPT_PREPARED:
        if (d->pt_coord == from && d->pt_txn == b->txn) {
            prepare_conf(d, from, b->txn); /* repeated PREPARE */
        } else {
            snprintf(why, sizeof why, "node %u is prepared for transaction %llu of node %u",
                     d->self, (unsigned long long)d->pt_txn, d->pt_coord);
            prepare_ref(d, from, b->txn, NINES_ESTATE, why);
        }
        return;
    case DSVC_DPT_IDLE:
        break;
    default:
        N_ASSERT(!"bad participant state");
        return;
    }
    if (d->fetch == DSVC_DFETCH_WAIT) {
        snprintf(why, sizeof why, "node %u is catching up from node %u", d->self,
                 d->fetch_from);
        prepare_ref(d, from, b->txn, NINES_ESTATE, why);
        return;
    }
    if (b->base_version != d->cur.version || b->base_digest != d->digest) {
        snprintf(why, sizeof why, "node %u has dictionary version %llu (digest %08x), the "
                 "transaction's base is %llu (digest %08x)", d->self,
                 (unsigned long long)d->cur.version, d->digest,
                 (unsigned long long)b->base_version, b->base_digest);
        prepare_ref(d, from, b->txn, NINES_ESTALE, why);
        if (b->base_version >= d->cur.version)
            dsvc_fetch_from(d, from, "behind the dictionary coordinator");
        return;
    }
    uint32_t tid;
    int rc = dsvc_apply(&d->cur, b->change, &d->pt_next, &tid, NULL);
    if (rc) {
        snprintf(why, sizeof why, "%s", nines_errdetail());
        prepare_ref(d, from, b->txn, rc, why);
        return;
    }
    uint32_t dg = dsvc_digest(&d->pt_next);
    if (d->pt_next.version != b->new_version || dg != b->new_digest) {
        snprintf(why, sizeof why, "node %u computed version %llu digest %08x, the coordinator "
                 "%llu digest %08x", d->self, (unsigned long long)d->pt_next.version, dg,
                 (unsigned long long)b->new_version, b->new_digest);
        dict_free(&d->pt_next);
        prepare_ref(d, from, b->txn, NINES_ECORRUPT, why);
        return;
    }
    /* Prepared state is kept in memory only: README "why not on disk". */
    d->pt = DSVC_DPT_PREPARED;
    d->pt_coord = from;
    d->pt_txn = b->txn;
    d->pt_next_digest = dg;
    d->pt_gen++;
    rt_timer_add(rt, RT_SVC_DICT, DSVC_PREPARED_MS * 1000u,
                 DSVC_COOKIE(DSVC_DT_PREPARED, d->pt_gen));
    prepare_conf(d, from, b->txn);
}

void dsvc_on_abort_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictAbortReq *b = (const Nines__DictAbortReq *)m->body;
    if (d->pt == DSVC_DPT_PREPARED && d->pt_coord == m->from && d->pt_txn == b->txn)
        pt_drop(d, "aborted by the coordinator");
}

void dsvc_on_commit_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictCommitReq *b = (const Nines__DictCommitReq *)m->body;
    if (!is_node(m->from))
        return;
    uint32_t from = (uint32_t)m->from;
    struct dsvc_waiter w = {.coord = from, .txn = b->txn, .version = b->new_version};
    bool mine = d->pt == DSVC_DPT_PREPARED && d->pt_coord == from && d->pt_txn == b->txn &&
                d->pt_next.version == b->new_version;
    bool have = !mine && d->cur.version == b->new_version && d->pt == DSVC_DPT_IDLE;
    if (!mine && !have) {
        char why[200];
        snprintf(why, sizeof why, "node %u is not prepared for transaction %llu (version %llu)",
                 d->self, (unsigned long long)b->txn, (unsigned long long)d->cur.version);
        struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_COMMIT_REF);
        Nines__DictCommitRef *f =
            r ? RT_BODY(r, Nines__DictCommitRef, nines__dict_commit_ref__init) : NULL;
        char *reason = r ? rt_msg_alloc(r, strlen(why) + 1) : NULL;
        if (f && reason) {
            strcpy(reason, why);
            f->txn = b->txn;
            f->error = NINES_ESTATE;
            f->reason = reason;
            rt_send(rt, from, RT_SVC_DICT, r);
        } else if (r) {
            rt_msg_free(rt, r);
        }
        dsvc_send_version(d, from); /* catch up if it did commit */
        return;
    }
    if (d->nwaiters < DSVC_WAITERS_MAX)
        d->waiters[d->nwaiters++] = w;
    else
        NLOG_WARN("dict", "too many commit answers waiting for the file; transaction %llu of "
                  "node %u goes unanswered (the coordinator reports it missing)",
                  (unsigned long long)b->txn, from);
    if (mine) {
        struct dict nd = d->pt_next;
        memset(&d->pt_next, 0, sizeof d->pt_next);
        d->pt = DSVC_DPT_IDLE;
        d->pt_gen++;
        char why[64];
        snprintf(why, sizeof why, "transaction %llu of node %u committed",
                 (unsigned long long)b->txn, from);
        dsvc_install(d, &nd, why, true); /* the COMMIT_CONF goes out after the save */
        dsvc_kick(d);
    } else {
        dsvc_request_save(d); /* already there (repeated COMMIT or fetched) */
    }
}

/* ---- entry of changes, forwarding ---------------------------------------- */

static struct dsvc_fwd *fwd_find(struct dsvc *d, uint64_t ref)
{
    for (int i = 0; i < DSVC_FWD_MAX; i++)
        if (d->fwd[i].used && d->fwd[i].ref == ref)
            return &d->fwd[i];
    return NULL;
}

static void fwd_end(struct dsvc *d, struct dsvc_fwd *f, int err, const char *why)
{
    if (err)
        refuse(d, f->client, f->local_svc, f->local_ref, err, why);
    if (f->timer > 0)
        rt_timer_cancel(d->rt, f->timer);
    memset(f, 0, sizeof *f);
}

/* Forward m to the coordinator; its answer goes back to m's sender (a
 * client connection, or with local_svc a task of this node). */
static void forward(struct dsvc *d, struct rt_msg *m, uint32_t coord, uint32_t local_svc)
{
    const Nines__DictChangeReq *in = (const Nines__DictChangeReq *)m->body;
    uint64_t lref = local_svc ? in->ref : 0;
    struct dsvc_fwd *f = NULL;
    for (int i = 0; i < DSVC_FWD_MAX && !f; i++)
        if (!d->fwd[i].used)
            f = &d->fwd[i];
    if (!f) {
        refuse(d, m->from, local_svc, lref, NINES_EAGAIN,
               "too many dictionary changes in flight here");
        return;
    }
    struct rt_msg *r = rt_msg_new(d->rt, NINES__MSG_TYPE__DICT_CHANGE_REQ);
    Nines__DictChangeReq *b = r ? RT_BODY(r, Nines__DictChangeReq, nines__dict_change_req__init)
                                : NULL;
    if (!b) {
        if (r)
            rt_msg_free(d->rt, r);
        refuse(d, m->from, local_svc, lref, NINES_ENOMEM, "no memory to forward the change");
        return;
    }
    b->change = in->change; /* packed now: remote destination */
    b->origin = d->self;
    b->ref = ++d->fwd_seq;
    int rc = rt_send(d->rt, coord, RT_SVC_DICT, r);
    if (rc) {
        char why[160];
        snprintf(why, sizeof why, "cannot forward to the dictionary coordinator %u: %s", coord,
                 nines_errdetail());
        refuse(d, m->from, local_svc, lref, rc, why);
        return;
    }
    f->used = true;
    f->ref = d->fwd_seq;
    f->client = m->from;
    f->local_svc = local_svc;
    f->local_ref = lref;
    f->coord = coord;
    f->timer = rt_timer_add(d->rt, RT_SVC_DICT, DSVC_FORWARD_MS * 1000u,
                            DSVC_COOKIE(DSVC_DT_FORWARD, f->ref));
    NLOG_DEBUG("dict", "forwarded a dictionary change to coordinator %u (ref %llu)", coord,
               (unsigned long long)f->ref);
}

void dsvc_on_change_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictChangeReq *b = (const Nines__DictChangeReq *)m->body;
    if (m->from == 0) {
        /* a task of this node (self-repair: the supervisor; a built
         * replica: the kernel service); answered locally or not at all */
        uint32_t svc = b->reply_svc < RT_SVC_MAX ? b->reply_svc : 0;
        uint32_t coord = dsvc_coordinator(d);
        if (coord != d->self)
            forward(d, m, coord, svc);
        else
            enqueue(d, m, 0, svc, b->ref);
        return;
    }
    if (m->from >= NET_CONN_BASE) {
        /* schema and users are the admin role's (README.md "SECURITY") */
        uint32_t role = rt_client_role(rt, m->from);
        if (role < NET_ROLE_ADMIN) {
            char why[160];
            snprintf(why, sizeof why, "permission denied: schema and user changes need the "
                     "admin role, this connection's user has the %s role",
                     role == NET_ROLE_WRITER ? "writer" : role == NET_ROLE_READER ? "reader"
                                                                               : "no");
            refuse(d, m->from, 0, 0, NINES_EPERM, why);
            return;
        }
        uint32_t coord = dsvc_coordinator(d);
        if (coord != d->self)
            forward(d, m, coord, 0);
        else
            enqueue(d, m, m->from, 0, 0);
        return;
    }
    /* Forwarded by a node that sees us as the coordinator: coordinate it
     * even if our own view names a lower node (never forwarded twice). */
    enqueue(d, m, m->from, 0, b->ref);
}

/* CONF or REF of a change this node forwarded: relay to its client. */
void dsvc_on_change_ans(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    if (!is_node(m->from))
        return;
    uint64_t ref = m->type == NINES__MSG_TYPE__DICT_CHANGE_CONF
                       ? ((const Nines__DictChangeConf *)m->body)->ref
                       : ((const Nines__DictChangeRef *)m->body)->ref;
    struct dsvc_fwd *f = fwd_find(d, ref);
    if (!f)
        return; /* its client left, or it timed out */
    if (f->local_svc) {
        if (m->type == NINES__MSG_TYPE__DICT_CHANGE_CONF) {
            const Nines__DictChangeConf *c = (const Nines__DictChangeConf *)m->body;
            local_done(d, f->local_svc, f->local_ref, 0, c->note, c->version, c->moved);
        } else {
            const Nines__DictChangeRef *c = (const Nines__DictChangeRef *)m->body;
            local_done(d, f->local_svc, f->local_ref, c->error < 0 ? c->error : NINES_EPROTO,
                       c->reason, 0, 0);
        }
        fwd_end(d, f, 0, NULL);
        return;
    }
    struct rt_msg *r = f->client ? rt_msg_new(rt, m->type) : NULL; /* 0: a task, no answer */
    if (r) {
        r->body = m->body; /* borrowed: packed before m is recycled (client is remote) */
        rt_send(rt, f->client, RT_SVC_NONE, r);
    }
    fwd_end(d, f, 0, NULL);
}

/* ---- events ------------------------------------------------------------- */

void dsvc_tx_on_timer(struct dsvc *d, enum dsvc_timer kind, uint64_t gen)
{
    switch (kind) {
    case DSVC_DT_PHASE:
        if (gen != (d->gen & GEN_MASK))
            return; /* a finished phase */
        switch (d->tx) {
        case DSVC_DTX_PREPARING: {
            dict_liveset late = d->part & ~d->acked;
            for (uint32_t id = 1; id <= DICT_MAX_NODES; id++)
                if (late & DICT_LIVE(id))
                    note_add(d, "node %u did not answer PREPARE within %u ms", id,
                             DSVC_PREPARE_MS);
            send_abort(d, late);
            d->missing |= late;
            d->part = d->acked;
            commit_phase(d);
            break;
        }
        case DSVC_DTX_COMMITTING: {
            dict_liveset late = d->part & ~d->confirmed;
            for (uint32_t id = 1; id <= DICT_MAX_NODES; id++)
                if (late & DICT_LIVE(id))
                    note_add(d, "node %u did not confirm COMMIT within %u ms", id,
                             DSVC_COMMIT_MS);
            d->missing |= late;
            d->part = d->confirmed;
            local_commit(d);
            break;
        }
        case DSVC_DTX_RETRY_WAIT: {
            struct dsvc_req *q = d->req;
            d->req = NULL;
            d->tx = DSVC_DTX_IDLE;
            q->next = d->q_head; /* first again: keeps the arrival order */
            d->q_head = q;
            if (!d->q_tail)
                d->q_tail = q;
            d->qlen++;
            dsvc_kick(d);
            break;
        }
        case DSVC_DTX_IDLE:
        case DSVC_DTX_SAVING:
            break;
        default:
            N_ASSERT(!"bad coordinator state");
            break;
        }
        break;
    case DSVC_DT_PREPARED:
        if (d->pt == DSVC_DPT_PREPARED && gen == (d->pt_gen & GEN_MASK)) {
            uint32_t coord = d->pt_coord;
            pt_drop(d, "no decision in time (presumed abort; catching up if it committed)");
            dsvc_send_version(d, coord);
        }
        break;
    case DSVC_DT_FORWARD: {
        struct dsvc_fwd *f = fwd_find(d, gen);
        if (f) {
            char why[200];
            f->timer = 0;
            snprintf(why, sizeof why, "the dictionary coordinator %u did not answer within %u "
                     "ms; the change may still commit (see 'ninesctl tables')", f->coord,
                     DSVC_FORWARD_MS);
            fwd_end(d, f, NINES_ETIMEDOUT, why);
        }
        break;
    }
    default:
        NLOG_WARN("dict", "unexpected dictionary timer kind %d", (int)kind);
        break;
    }
}

void dsvc_tx_on_peer_down(struct dsvc *d, uint32_t node)
{
    dict_liveset bit = DICT_LIVE(node);
    /* participant: the coordinator is gone before deciding -> presumed abort */
    if (d->pt == DSVC_DPT_PREPARED && d->pt_coord == node)
        pt_drop(d, "its coordinator went down (presumed abort; catching up if it committed)");
    /* coordinator: the node leaves this transaction and will catch up */
    switch (d->tx) {
    case DSVC_DTX_PREPARING:
        if (d->part & bit) {
            d->part &= ~bit;
            d->missing |= bit;
            note_add(d, "node %u went down during PREPARE", node);
            check_prepared(d);
        }
        break;
    case DSVC_DTX_COMMITTING:
        if ((d->part & bit) && !(d->confirmed & bit)) {
            d->part &= ~bit;
            d->missing |= bit;
            note_add(d, "node %u went down during COMMIT", node);
            check_committed(d);
        }
        break;
    case DSVC_DTX_IDLE:
    case DSVC_DTX_SAVING:
    case DSVC_DTX_RETRY_WAIT:
        break;
    default:
        N_ASSERT(!"bad coordinator state");
        break;
    }
    /* requests whose origin node is gone: nobody to answer */
    for (struct dsvc_req *q = d->q_head; q; q = q->next)
        if (q->reply_to == node)
            q->reply_to = 0;
    if (d->req && d->req->reply_to == node)
        d->req->reply_to = 0;
    /* changes forwarded to it: the outcome is unknown */
    for (int i = 0; i < DSVC_FWD_MAX; i++)
        if (d->fwd[i].used && d->fwd[i].coord == node) {
            char why[200];
            snprintf(why, sizeof why, "the dictionary coordinator %u went down before "
                     "answering; the change may or may not be committed (see 'ninesctl "
                     "tables')", node);
            fwd_end(d, &d->fwd[i], NINES_EUNREACHABLE, why);
        }
}

void dsvc_tx_on_client_closed(struct dsvc *d, net_addr conn)
{
    for (struct dsvc_req *q = d->q_head; q; q = q->next)
        if (q->reply_to == conn)
            q->reply_to = 0;
    if (d->req && d->req->reply_to == conn)
        d->req->reply_to = 0;
    for (int i = 0; i < DSVC_FWD_MAX; i++)
        if (d->fwd[i].used && d->fwd[i].client == conn)
            fwd_end(d, &d->fwd[i], 0, NULL);
}
