/* Transaction controller task: lifecycle, the transaction pool and its hash
 * table, timers, runtime events and the send helpers. */
#include "txc_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

const char *txc_state_name(enum txc_state s)
{
    switch (s) {
    case TXC_FREE:
        return "free";
    case TXC_EXECUTING:
        return "executing";
    case TXC_OPEN:
        return "open";
    case TXC_PREPARING:
        return "preparing";
    case TXC_ASKING:
        return "asking";
    case TXC_RESOLVING:
        return "resolving";
    case TXC_COMMITTING:
        return "committing";
    case TXC_ABORTING:
        return "aborting";
    case TXC_HSC_WAITING:
        return "hsc-waiting";
    case TXC_HSC_COMMITTED:
        return "hsc-committed";
    case TXC_HSC_ABORTED:
        return "hsc-aborted";
    case TXC_HSC_COMMITTING:
        return "hsc-committing";
    case TXC_HSC_ABORTING:
        return "hsc-aborting";
    default:
        return "?";
    }
}

/* ---- pool and hash ---------------------------------------------------- */

static uint32_t hslot(const struct txc *t, uint64_t id)
{
    return (uint32_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & t->hmask;
}

struct txc_txn *txc_find(struct txc *t, uint64_t id)
{
    for (struct txc_txn *x = t->hash[hslot(t, id)]; x; x = x->hnext)
        if (x->id == id)
            return x;
    return NULL;
}

struct txc_txn *txc_alloc(struct txc *t, uint64_t id)
{
    struct txc_txn *x = t->free_list;
    if (!x)
        return NULL;
    N_DASSERT(!txc_find(t, id));
    t->free_list = x->next;
    memset(x, 0, sizeof *x);
    x->id = id;
    uint32_t h = hslot(t, id);
    x->hnext = t->hash[h];
    t->hash[h] = x;
    x->next = t->active;
    if (t->active)
        t->active->prev = x;
    t->active = x;
    t->st.active++;
    return x;
}

void txc_keep(struct txc_txn *x, struct rt_msg *m)
{
    rt_msg_keep(m);
    m->next = x->kept;
    x->kept = m;
}

void txc_release_kept(struct txc *t, struct txc_txn *x)
{
    while (x->kept) {
        struct rt_msg *m = x->kept;
        x->kept = m->next;
        m->next = NULL;
        rt_msg_free(t->rt, m);
    }
    /* everything below lived in those messages' arenas */
    x->parts = NULL;
    x->nparts = x->capparts = 0;
    x->ops = NULL;
    x->kops = NULL;
    x->scans = NULL;
    x->kres = NULL;
    x->nreq = NULL;
    x->results = NULL;
    x->nops = x->nkops = x->nscans = x->nnreq = 0;
    x->abort_detail = NULL;
}

void txc_forget(struct txc *t, struct txc_txn *x)
{
    N_ASSERT(x->st != TXC_FREE);
    txc_key_forgotten(t, x->id); /* request key: no-op if decided */
    txc_gcp_done(t, x);          /* a decision stamped here is complete */
    if (x->timer > 0)
        rt_timer_cancel(t->rt, x->timer);
    txc_release_kept(t, x);
    struct txc_txn **pp = &t->hash[hslot(t, x->id)];
    while (*pp != x)
        pp = &(*pp)->hnext;
    *pp = x->hnext;
    if (x->prev)
        x->prev->next = x->next;
    else
        t->active = x->next;
    if (x->next)
        x->next->prev = x->prev;
    memset(x, 0, sizeof *x);
    x->st = TXC_FREE;
    x->next = t->free_list;
    t->free_list = x;
    t->st.active--;
}

void txc_arm(struct txc *t, struct txc_txn *x, uint32_t ms)
{
    if (x->timer > 0)
        rt_timer_cancel(t->rt, x->timer);
    x->timer = rt_timer_add(t->rt, RT_SVC_TXC, (uint64_t)ms * 1000u, x->id);
    if (x->timer < 0)
        NLOG_ERROR("txc", "txn %llx: no timer: %s", (unsigned long long)x->id, nines_errdetail());
}

uint64_t txc_new_id(struct txc *t)
{
    uint64_t s = t->next_seq++ & TXC_SEQ_MASK;
    if (s == 0)
        s = t->next_seq++ & TXC_SEQ_MASK;
    return ((uint64_t)t->self << 56) | s;
}

/* ---- nodes ------------------------------------------------------------ */

void txc_part_frags(struct txc_txn *x, uint32_t node, Nines__FragRecords *const *f, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (!f[j])
            continue;
        for (uint32_t i = 0; i < x->nparts; i++) {
            struct txc_part *p = &x->parts[i];
            if (p->table == f[j]->table && p->frag == f[j]->frag && p->primary == node) {
                p->last_lsn = f[j]->last_lsn;
                if (f[j]->nrecords)
                    p->writes = true;
                if (f[j]->nrecords && f[j]->standby)
                    p->standby = f[j]->standby; /* records shipped there: its READY_IND follows */
                else
                    p->s_ready = true; /* nothing for a standby to hold */
                break;
            }
        }
    }
}

bool txc_wrote(const struct txc_txn *x)
{
    for (uint32_t i = 0; i < x->nparts; i++)
        if (x->parts[i].writes)
            return true;
    return false;
}

bool txc_own_incarnation(const struct txc *t, uint64_t id)
{
    return TXC_ID_NODE(id) == t->self && (id & TXC_SEQ_MASK) >= t->first_seq;
}

uint32_t txc_retry_ms(const struct txc *t)
{
    uint32_t ms = t->cfg.timeout_ms / 4;
    return ms ? ms : 1;
}

int txc_send_kernel(struct txc *t, struct txc_txn *x, uint32_t type, uint32_t node)
{
    struct rt_msg *m = rt_msg_new(t->rt, type);
    ProtobufCMessage *body = NULL;
    if (m && !N_FAULT("txc.kernel_msg.nomem")) {
        switch (type) {
        case NINES__MSG_TYPE__COMMIT_REQ: {
            Nines__CommitReq *b = RT_BODY(m, Nines__CommitReq, nines__commit_req__init);
            if (b)
                b->txn = x->id, b->gci = x->gci, body = &b->base; /* the decision's epoch */
            break;
        }
        case NINES__MSG_TYPE__ABORT_REQ: {
            Nines__AbortReq *b = RT_BODY(m, Nines__AbortReq, nines__abort_req__init);
            if (b)
                b->txn = x->id, body = &b->base;
            break;
        }
        case NINES__MSG_TYPE__PREPARE_REQ: {
            Nines__PrepareReq *b = RT_BODY(m, Nines__PrepareReq, nines__prepare_req__init);
            if (b)
                b->txn = x->id, b->ctl = x->ctl, b->hsc = x->hsc, body = &b->base;
            break;
        }
        default:
            N_ASSERT(!"unexpected kernel message type");
        }
    }
    if (!body) {
        if (m)
            rt_msg_free(t->rt, m);
        return nines_err(NINES_ENOMEM, "no memory for message %u to node %u", type, node);
    }
    int rc = rt_send(t->rt, node == t->self ? 0 : node, RT_SVC_KERN, m);
    if (rc)
        return nines_err(rc, "node %u: %s", node, nines_errdetail());
    return 0;
}

void txc_send_txc(struct txc *t, uint32_t node, uint32_t type, uint64_t txn)
{
    struct rt_msg *m = rt_msg_new(t->rt, type);
    ProtobufCMessage *body = NULL;
    if (m) {
        switch (type) {
        case NINES__MSG_TYPE__TXC_ABORT_REQ: {
            Nines__TxcAbortReq *b = RT_BODY(m, Nines__TxcAbortReq, nines__txc_abort_req__init);
            if (b)
                b->txn = txn, body = &b->base;
            break;
        }
        case NINES__MSG_TYPE__TXC_ABORT_CONF: {
            Nines__TxcAbortConf *b = RT_BODY(m, Nines__TxcAbortConf, nines__txc_abort_conf__init);
            if (b)
                b->txn = txn, body = &b->base;
            break;
        }
        default:
            N_ASSERT(!"unexpected controller message type");
        }
    }
    if (!body) {
        if (m)
            rt_msg_free(t->rt, m);
        NLOG_ERROR("txc", "txn %llx: no memory for message %u to node %u (a retry follows)",
                   (unsigned long long)txn, type, node);
        return;
    }
    txc_send(t, node, RT_SVC_TXC, m);
}

txc_nodes txc_members(const struct txc *t) { return rt_nodeset(t->rt)->members; }

txc_nodes txc_current(const struct txc *t) { return rt_nodeset(t->rt)->current; }

bool txc_disk_stands_in(const struct txc *t)
{
    const struct nines_conf *c = rt_conf(t->rt);
    return c && c->disk_log != NINES_DISK_LOG_OFF;
}

struct dict_live txc_live(const struct txc *t)
{
    const struct rt_nodeset *ns = rt_nodeset(t->rt);
    return (struct dict_live){.members = ns->members, .current = ns->current,
                              .standby_only = ns->standby_only, .since = ns->since};
}

uint32_t txc_primary_now(struct txc *t, uint32_t table, uint32_t frag)
{
    const struct dict *d = txc_dict(t);
    const struct dict_table *tb = dict_table_by_id(d, table);
    struct dict_roles r;
    struct dict_live live = txc_live(t);
    if (!tb || dict_frag_roles_live(d, tb, frag, &live, &r))
        return 0;
    return r.primary;
}

/* Per node, the current primaries of every fragment it holds a replica
 * of; rebuilt once per (node set, dictionary version). */
static void succ_build(struct txc *t)
{
    const struct dict *d = txc_dict(t);
    struct dict_live live = txc_live(t);
    memset(t->succ, 0, sizeof t->succ);
    for (uint32_t i = 0; i < d->ntables; i++) {
        const struct dict_table *tb = d->tables[i];
        for (uint32_t f = 0; f < tb->nfrags; f++) {
            struct dict_roles r;
            if (dict_frag_roles_live(d, tb, f, &live, &r) || !r.primary)
                continue; /* DOWN: nobody to finish anything there */
            uint32_t p = tb->frags[f].primary, sb = tb->frags[f].standby;
            if (p >= 1 && p <= 64)
                t->succ[p] |= TXC_NODE(r.primary);
            if (sb >= 1 && sb <= 64)
                t->succ[sb] |= TXC_NODE(r.primary);
        }
    }
    t->succ_epoch = rt_nodeset(t->rt)->epoch;
    t->succ_dict = d->version;
    t->succ_valid = true;
}

txc_nodes txc_map_nodes(struct txc *t, txc_nodes nodes)
{
    txc_nodes cur = txc_current(t), gone = nodes & ~cur;
    if (!gone)
        return nodes;
    if (!t->succ_valid || t->succ_epoch != rt_nodeset(t->rt)->epoch ||
        t->succ_dict != txc_dict(t)->version)
        succ_build(t);
    txc_nodes out = nodes & cur;
    for (uint32_t id = 1; id <= 64; id++)
        if (gone & TXC_NODE(id))
            out |= t->succ[id];
    return out;
}

void txc_outcome_final(struct txc *t, const struct txc_txn *x, bool committed)
{
    /* the request key (txc_outcome.c) was decided with the transaction;
     * this catches any path that reached the end without it */
    txc_key_decided(t, x->id, committed, x->value, committed ? 0 : NINES_EABORTED);
}

static uint32_t own_site(struct txc *t)
{
    const struct dict *d = txc_dict(t);
    for (uint32_t i = 0; i < d->nnodes; i++)
        if (d->nodes[i].id == t->self)
            return d->nodes[i].site;
    const struct nines_conf *c = rt_conf(t->rt);
    const struct nines_node_conf *me = c ? nines_conf_node(c, t->self) : NULL;
    return me ? me->site : 0;
}

int txc_pick_hsc(struct txc *t, const struct txc_txn *x, uint32_t *hsc)
{
    const struct dict *d = txc_dict(t);
    uint32_t site = own_site(t), cand[DICT_MAX_NODES], n = 0, others = 0;
    txc_nodes members = txc_members(t);
    *hsc = 0;
    if (!txc_wrote(x))
        return 0; /* only reads: the ctl decides alone, nothing to keep */
    for (uint32_t i = 0; i < d->nnodes; i++) {
        uint32_t id = d->nodes[i].id;
        if (d->nodes[i].site == site || id == t->self || id < 1 || id > 64)
            continue;
        others++;
        if (members & TXC_NODE(id))
            cand[n++] = id;
    }
    if (!others)
        return 0; /* a one-site cluster: no other site to hold the decision */
    if (!n && txc_disk_stands_in(t))
        return 0; /* no node of the other site: decided here alone, each primary ready
                   * only after its local fsync (README "Routing writes") */
    if (!n)
        return nines_err(NINES_EUNREACHABLE, "not committed: no node of the other site (%u "
                         "configured) is in node set %" PRIu64 " to hold the commit decision "
                         "of a transaction controlled by node %u", others,
                         rt_nodeset(t->rt)->epoch, t->self);
    /* Prefer the candidate holding most of the transaction's hot-standby
     * replicas: their READY_INDs then reach the hsc without a network hop
     * and its TXC_READY_CONF travels beside them instead of one hop
     * behind. Ties rotate, to spread the hsc load. */
    uint32_t start = t->hsc_pick++ % n, best = cand[start], best_count = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t c = cand[(start + k) % n], count = 0;
        for (uint32_t p = 0; p < x->nparts; p++)
            count += x->parts[p].standby == c;
        if (count > best_count) {
            best = c;
            best_count = count;
        }
    }
    *hsc = best;
    return 0;
}

/* ---- sending ---------------------------------------------------------- */

void txc_send(struct txc *t, uint32_t node, enum rt_svc svc, struct rt_msg *m)
{
    uint32_t type = m->type;
    int rc = rt_send(t->rt, node == t->self ? 0 : node, svc, m);
    if (rc)
        NLOG_WARN("txc", "message %u to node %u not sent: %s", type, node, nines_errdetail());
}

int txc_to_client(struct txc *t, net_addr conn, struct rt_msg *m)
{
    /* the answer to one TXN_REQ: its in-flight slot is free again */
    if (m->type == NINES__MSG_TYPE__TXN_CONF || m->type == NINES__MSG_TYPE__TXN_REF)
        txc_inflight_put(t, conn);
    if (t->cfg.client_send)
        return t->cfg.client_send(t->cfg.client_ctx, t->rt, conn, m);
    return rt_send(t->rt, conn, RT_SVC_APP, m);
}

void txc_refuse(struct txc *t, net_addr conn, uint64_t req_id, uint64_t txn, int err,
                uint32_t failed_op, const char *detail)
{
    struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__TXN_REF);
    Nines__TxnRef *b = m ? RT_BODY(m, Nines__TxnRef, nines__txn_ref__init) : NULL;
    if (!b) {
        if (m)
            rt_msg_free(t->rt, m);
        NLOG_ERROR("txc", "no memory to answer request %llu", (unsigned long long)req_id);
        txc_inflight_put(t, conn); /* unanswered, but no longer in flight */
        return;
    }
    b->req_id = req_id;
    b->txn = txn;
    b->error = err;
    b->failed_op = failed_op;
    size_t n = strlen(detail) + 1;
    char *s = rt_msg_alloc(m, n);
    if (s) {
        memcpy(s, detail, n);
        b->detail = s;
    }
    if (txc_to_client(t, conn, m))
        NLOG_DEBUG("txc", "answer to client %llx lost: %s", (unsigned long long)conn,
                   nines_errdetail());
}

/* ---- task ------------------------------------------------------------- */

/* A node set was installed (synchronously, before any message of its
 * epoch is handled): every transaction reacts to the nodes that left
 * (txctl/README.md "Node sets"). Handlers may forget the entry they are
 * given, and only that one. */
static void on_nodeset(struct txc *t)
{
    const struct rt_nodeset *ns = rt_nodeset(t->rt);
    if (ns->epoch == t->epoch)
        return;
    t->epoch = ns->epoch;
    struct txc_txn *next;
    if (!ns->member) {
        /* outside the set (not merely isolated: a member whose lease lapsed
         * keeps its transactions and finishes them when it serves again) */
        NLOG_WARN("txc", "node %u is outside node set %" PRIu64 " (%s): its %u transactions "
                  "are finished by the others", t->self, ns->epoch, ns->reason, t->st.active);
        for (struct txc_txn *x = t->active; x; x = next) {
            next = x->next;
            if (txc_is_hsc_state(x->st))
                txc_forget(t, x);
            else
                txc_ctl_on_not_serving(t, x);
        }
        /* what this controller made so far is no longer held here: to an
         * outcome question its ids are those of an earlier incarnation */
        t->first_seq = t->next_seq & TXC_SEQ_MASK;
        return;
    }
    for (struct txc_txn *x = t->active; x; x = next) {
        next = x->next;
        if (txc_is_hsc_state(x->st))
            txc_hsc_on_nodeset(t, x);
        else
            txc_ctl_on_nodeset(t, x);
    }
}

static void txc_on_event(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    switch (m->type) {
    case RT_MSG_START:
        t->epoch = rt_nodeset(rt)->epoch;
        NLOG_DEBUG("txc", "node %u: transaction controller up (timeout %u ms)", t->self,
                   t->cfg.timeout_ms);
        break;
    case RT_MSG_TIMER: {
        if (txc_gcp_on_timer(t, m->cookie)) /* the hold of a GCP stop (txc_gcp.c) */
            break;
        if (m->cookie >> 63) { /* a refused request's retry (txc_ctl.c) */
            txc_ctl_on_retry_timer(t, m->cookie);
            break;
        }
        if (TXC_ID_NODE(m->cookie) == 0) { /* not a txn id: an outcome question's */
            txc_outcome_on_timer(t, m->cookie);
            break;
        }
        struct txc_txn *x = txc_find(t, m->cookie);
        if (!x)
            break;
        x->timer = 0;
        if (txc_is_hsc_state(x->st))
            txc_hsc_on_timer(t, x);
        else
            txc_ctl_on_timer(t, x);
        break;
    }
    case RT_MSG_CLIENT_CLOSED:
        txc_inflight_drop(t, m->from);
        txc_ctl_on_client_closed(t, m->from);
        break;
    case RT_MSG_NODESET:
        txc_gcp_on_nodeset(t);
        on_nodeset(t);
        break;
    case RT_MSG_GCP_SAVED: /* the local supervisor persisted epoch cookie restorable */
        txc_gcp_on_saved(t, m->cookie);
        break;
    default:
        NLOG_DEBUG("txc", "ignoring runtime event %u", m->type);
        break;
    }
    (void)rt;
}

int txc_create(struct txc **out, struct rt *rt, const struct txc_config *cfg)
{
    if (!cfg || !cfg->dict)
        return nines_err(NINES_EINVAL, "transaction controller needs the node's dictionary");
    struct txc *t = calloc(1, sizeof *t);
    if (!t)
        return nines_err(NINES_ENOMEM, "no memory for the transaction controller");
    t->rt = rt;
    t->cfg = *cfg;
    if (!t->cfg.timeout_ms)
        t->cfg.timeout_ms = TXC_TIMEOUT_MS_DEFAULT;
    if (!t->cfg.max_ops)
        t->cfg.max_ops = TXC_MAX_OPS_DEFAULT;
    if (!t->cfg.max_txns)
        t->cfg.max_txns = TXC_MAX_TXNS_DEFAULT;
    if (!t->cfg.keys_max)
        t->cfg.keys_max = TXC_KEYS_MAX_DEFAULT;
    if (!t->cfg.max_inflight)
        t->cfg.max_inflight = TXC_MAX_INFLIGHT_DEFAULT;
    if (!t->cfg.keys_keep_ms)
        t->cfg.keys_keep_ms = TXC_KEYS_KEEP_MS_DEFAULT;
    t->self = rt_self(rt);
    if (t->self < 1 || t->self > 64) {
        uint32_t self = t->self;
        free(t);
        return nines_err(NINES_EINVAL, "transaction controller needs a node id in 1..64, not %u",
                         self);
    }
    uint32_t hs = 1;
    while (hs < 2 * t->cfg.max_txns)
        hs <<= 1;
    t->hmask = hs - 1;
    t->hash = calloc(hs, sizeof *t->hash);
    t->pool = calloc(t->cfg.max_txns, sizeof *t->pool);
    if (!t->hash || !t->pool) {
        free(t->hash);
        free(t->pool);
        free(t);
        return nines_err(NINES_ENOMEM, "no memory for %u transactions", cfg->max_txns);
    }
    for (uint32_t i = t->cfg.max_txns; i-- > 0;) {
        t->pool[i].next = t->free_list;
        t->free_list = &t->pool[i];
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t->next_seq = ((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u) & TXC_SEQ_MASK;
    t->first_seq = t->next_seq;
    t->hsc_pick = t->next_seq;
    int rc = txc_keys_create(t);
    if (!rc && (rc = txc_gcp_init(t)) != 0)
        txc_keys_destroy(t);
    if (!rc && (rc = rt_task_add(rt, RT_SVC_TXC, "txc", txc_on_event, t)) == 0)
        rc = rt_subscribe_nodeset(rt, RT_SVC_TXC);
    if (rc && t->keys) {
        txc_gcp_fini(t);
        txc_keys_destroy(t);
    }
    if (rc) {
        free(t->hash);
        free(t->pool);
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void txc_destroy(struct txc *t)
{
    if (!t)
        return;
    while (t->active)
        txc_forget(t, t->active);
    txc_gcp_fini(t);
    txc_keys_destroy(t);
    txc_inflight_fini(t);
    free(t->hash);
    free(t->pool);
    free(t);
}

void txc_get_stats(const struct txc *t, struct txc_stats *out) { *out = t->st; }
