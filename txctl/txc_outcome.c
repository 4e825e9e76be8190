/* Request keys and the client's outcome questions (txctl/README.md
 * "Request keys"): the node's request-key table (txo.h) fed by both
 * controller roles — the ctl enters a key when its request arrives, the
 * hsc when START arrives — and TXN_OUTCOME_REQ from a client that lost its
 * node: answered from this node's table and every other member's
 * (TXO_ASK_REQ / TXO_ASK_CONF), combined by the rule in the README. */
#include "txc_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nines/errors.h"
#include "nlog.h"
#include "txo.h"

#define TXO_ASK_MAX_KEYS 4096u  /* keys in one outcome question */
#define TXO_MAX_QUERIES 256u    /* outcome questions being answered at once per node */
#define TXO_SLACK_MS 200u       /* transit allowance when comparing a key's age with uptime */
#define TXO_DETAIL_MAX 640

/* What the answers so far say of one key. */
struct qkey {
    bool committed, running, aborted;
    uint64_t txn;
    int64_t value;
    int32_t error;
    uint64_t sure;          /* nodes whose answer rules a commit there out for good */
};

struct query {
    uint64_t qid;
    net_addr conn;
    uint64_t req_id;
    struct rt_msg *req;     /* the client's TXN_OUTCOME_REQ, kept: its keys are asked */
    const Nines__TxnOutcomeReq *b;
    struct qkey *k;         /* parallel to b->keys */
    uint64_t asked, answered;
    int64_t timer;
    struct query *next;
};

struct txc_keys {
    struct txo tab;
    struct query *queries;
    uint32_t nqueries;
    uint64_t next_qid;
    struct txc_key_stats st;
};

static uint64_t now_ms(const struct txc *t) { return rt_now_us(t->rt) / 1000u; }

int txc_keys_create(struct txc *t)
{
    struct txc_keys *k = calloc(1, sizeof *k);
    if (!k)
        return nines_err(NINES_ENOMEM, "no memory for the request-key table");
    uint32_t cap = t->cfg.keys_max;
    if (cap < 2 * t->cfg.max_txns)
        cap = 2 * t->cfg.max_txns; /* running entries never leave: room beyond them */
    int rc = txo_init(&k->tab, cap, t->cfg.keys_keep_ms, now_ms(t));
    if (rc) {
        free(k);
        return rc;
    }
    t->cfg.keys_max = cap;
    t->keys = k;
    return 0;
}

static void query_free(struct txc *t, struct query *q);

void txc_keys_destroy(struct txc *t)
{
    if (!t->keys)
        return;
    while (t->keys->queries)
        query_free(t, t->keys->queries);
    txo_free(&t->keys->tab);
    free(t->keys);
    t->keys = NULL;
}

void txc_get_key_stats(const struct txc *t, struct txc_key_stats *out)
{
    *out = t->keys->st;
    const struct txo_stats *s = &t->keys->tab.st;
    out->entered = s->entered;
    out->deduped = s->deduped;
    out->refused = s->refused_stale + s->refused_running + s->refused_lost;
    out->fenced = s->fenced;
    out->evicted = s->evicted_age + s->evicted_count;
    out->held = t->keys->tab.used;
}

static bool has_key(const Nines__ReqKey *k) { return k && k->client != 0; }

/* ---- both roles enter keys ------------------------------------------------ */

int txc_key_request(struct txc *t, net_addr conn, const Nines__TxnReq *b, uint64_t txn)
{
    if (!has_key(b->key))
        return 0;
    const Nines__ReqKey *k = b->key;
    struct txo_ent *e = NULL;
    enum txo_verdict v = txo_admit(&t->keys->tab, k->client, k->seq, k->attempt, TXO_ROLE_CTL,
                                   txn, t->self, now_ms(t), &e);
    char d[TXO_DETAIL_MAX];
    switch (v) {
    case TXO_RUN:
        return 0;
    case TXO_SAME: /* cannot be: txn is new */
    case TXO_DONE_COMMITTED: {
        if (!txc_gcp_visible(t, e->gci)) {
            /* disk_log sync: "committed" only once its epoch is restorable */
            snprintf(d, sizeof d, "request key %" PRIx64 ":%" PRIu64 " committed as "
                     "transaction %" PRIx64 " in epoch %" PRIu64 ", not restorable yet at node "
                     "%u: ask for its outcome", k->client, k->seq, e->txn, e->gci, t->self);
            txc_refuse(t, conn, b->req_id, e->txn, NINES_EAGAIN, 0, d);
            return 1;
        }
        /* the stored answer: the transaction and its value (op results are
         * not kept) */
        struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__TXN_CONF);
        Nines__TxnConf *c = m ? RT_BODY(m, Nines__TxnConf, nines__txn_conf__init) : NULL;
        if (!c) {
            if (m)
                rt_msg_free(t->rt, m);
            txc_inflight_put(t, conn); /* unanswered, but no longer in flight */
            return 1; /* no answer: the client asks again */
        }
        c->req_id = b->req_id;
        c->txn = e->txn;
        c->value = e->value;
        t->keys->st.answered_stored++;
        if (txc_to_client(t, conn, m))
            NLOG_DEBUG("txc", "stored answer lost: %s", nines_errdetail());
        return 1;
    }
    case TXO_BUSY:
        snprintf(d, sizeof d, "request key %" PRIx64 ":%" PRIu64 " is in progress as "
                 "transaction %" PRIx64 " at node %u: ask for its outcome", k->client, k->seq,
                 e->txn, t->self);
        txc_refuse(t, conn, b->req_id, e->txn, NINES_EAGAIN, 0, d);
        return 1;
    case TXO_STALE:
        snprintf(d, sizeof d, "request key %" PRIx64 ":%" PRIu64 " attempt %u: not run, that "
                 "attempt was %s at node %u (a newer attempt may run)", k->client, k->seq,
                 k->attempt ? k->attempt : 1,
                 e->state == TXO_ABORTED ? "aborted" : "declared not committed", t->self);
        txc_refuse(t, conn, b->req_id, 0, NINES_EABORTED, 0, d);
        return 1;
    case TXO_DROPPED:
        snprintf(d, sizeof d, "request key %" PRIx64 ":%" PRIu64 " is older than what node %u "
                 "remembers: its outcome may have been forgotten; not run", k->client, k->seq,
                 t->self);
        txc_refuse(t, conn, b->req_id, 0, NINES_ESTALE, 0, d);
        return 1;
    case TXO_FULL:
    default:
        snprintf(d, sizeof d, "node %u holds %u running request keys; retry later", t->self,
                 t->keys->tab.cap);
        txc_refuse(t, conn, b->req_id, 0, NINES_EAGAIN, 0, d);
        return 1;
    }
}

int txc_key_start(struct txc *t, const Nines__TxcStartReq *b, uint32_t ctl)
{
    if (!has_key(b->key))
        return 0;
    const Nines__ReqKey *k = b->key;
    struct txo_ent *e = NULL;
    if (b->outcome != 0) {
        /* a new hsc after the old one left, told a kernel committed it or
         * that its decision is lost: never refused by a key (a fence here
         * cannot have made a client hear "not committed": the old hsc,
         * which saw this START, could not vouch) */
        if (!txo_force(&t->keys->tab, k->client, k->seq, k->attempt, TXO_ROLE_HSC, b->txn,
                       ctl, now_ms(t)))
            NLOG_WARN("txc", "hsc: no room for the request key of txn %" PRIx64, b->txn);
        return 0;
    }
    enum txo_verdict v = txo_admit(&t->keys->tab, k->client, k->seq, k->attempt, TXO_ROLE_HSC,
                                   b->txn, ctl, now_ms(t), &e);
    if (v == TXO_RUN || v == TXO_SAME)
        return 0;
    t->keys->st.start_refused++;
    NLOG_INFO("txc", "hsc: START of txn %" PRIx64 " from node %u refused (ABORT): request key "
              "%" PRIx64 ":%" PRIu64 " attempt %u is %s here", b->txn, ctl, k->client, k->seq,
              k->attempt ? k->attempt : 1,
              v == TXO_DROPPED ? "possibly forgotten"
              : v == TXO_FULL  ? "without room"
              : e              ? txo_state_name((enum txo_state)e->state)
                               : "?");
    return NINES_EABORTED;
}

void txc_key_fill_start(struct txc *t, uint64_t txn, Nines__TxcStartReq *b, struct rt_msg *m)
{
    struct txo_ent *e = txo_find_txn(&t->keys->tab, txn);
    if (!e || e->role != TXO_ROLE_CTL)
        return;
    Nines__ReqKey *k = rt_msg_alloc(m, sizeof *k);
    if (!k)
        return; /* START without its key: the hsc cannot dedup it, nothing else changes */
    nines__req_key__init(k);
    k->client = e->client;
    k->seq = e->seq;
    k->attempt = e->attempt;
    b->key = k;
}

void txc_key_decided(struct txc *t, uint64_t txn, bool committed, int64_t value, int err)
{
    if (t->keys)
        txo_decided(&t->keys->tab, txn, committed, value, err, now_ms(t));
}

void txc_key_stamp(struct txc *t, uint64_t txn, uint64_t gci)
{
    if (t->keys && gci)
        txo_set_gci(&t->keys->tab, txn, gci);
}

void txc_key_forgotten(struct txc *t, uint64_t txn)
{
    if (t->keys)
        txo_lost(&t->keys->tab, txn, now_ms(t));
}

/* ---- what this node holds of a key ---------------------------------------- */

static uint64_t members(struct txc *t)
{
    const struct rt_nodeset *ns = rt_nodeset(t->rt);
    if (ns && ns->epoch)
        return ns->members;
    uint64_t all = 0; /* no node set installed (tests without one): every node */
    const struct dict *d = txc_dict(t);
    for (uint32_t i = 0; i < d->nnodes; i++)
        all |= TXC_NODE(d->nodes[i].id);
    return all;
}

/* An hsc entry still undecided although its ctl left the node set or its
 * START is older than the ctl's own timeout: the ctl would have asked to
 * abort by now, so ABORT is recorded (safe: COMMIT was never recorded, so
 * no client heard "committed"). */
static void settle_orphan(struct txc *t, struct txo_ent *e)
{
    struct txc_txn *x = txc_find(t, e->txn);
    if (!x || x->st != TXC_HSC_WAITING || !x->hsc_started || x->doubt)
        return; /* (doubt: its decision was lost with an earlier hsc: never decided) */
    bool gone = !(members(t) & TXC_NODE(e->ctl));
    uint64_t now = now_ms(t);
    if (!gone && now - e->born_ms < t->cfg.timeout_ms)
        return;
    NLOG_INFO("txc", "hsc: txn %" PRIx64 " undecided %" PRIu64 " ms after START, its controller "
              "node %u %s: ABORT recorded for a client's outcome question", x->id,
              now - e->born_ms, e->ctl, gone ? "left the node set" : "has not asked");
    t->keys->st.orphans_aborted++;
    txc_hsc_abort_waiting(t, x);
}

static Nines__KeyState state_here(struct txc *t, const Nines__KeyQuery *q, uint64_t *txn,
                                  int64_t *value, int32_t *err)
{
    struct txo *o = &t->keys->tab;
    const Nines__ReqKey *k = q->key;
    uint64_t now = now_ms(t);
    uint32_t att = k->attempt ? k->attempt : 1;
    *txn = 0;
    *value = 0;
    *err = 0;
    struct txo_ent *e = txo_find(o, k->client, k->seq, now);
    if (e && e->state == TXO_RUNNING && e->role == TXO_ROLE_HSC)
        settle_orphan(t, e); /* may record ABORT: e is ABORTED then */
    if (e) {
        switch ((enum txo_state)e->state) {
        case TXO_RUNNING:
            *txn = e->txn;
            return NINES__KEY_STATE__KS_RUNNING;
        case TXO_COMMITTED:
            *txn = e->txn;
            if (!txc_gcp_visible(t, e->gci))
                return NINES__KEY_STATE__KS_RUNNING; /* disk_log sync: its epoch is not
                                                      * restorable yet: ask again later */
            *value = e->value;
            return NINES__KEY_STATE__KS_COMMITTED;
        case TXO_ABORTED:
            (void)txo_fence(o, k->client, k->seq, att, now);
            *txn = e->txn;
            *err = e->error;
            return NINES__KEY_STATE__KS_ABORTED;
        case TXO_FENCED:
            (void)txo_fence(o, k->client, k->seq, att, now);
            return NINES__KEY_STATE__KS_NOT_SEEN;
        case TXO_LOST: /* it ran here, and what became of it is not known here */
            (void)txo_fence(o, k->client, k->seq, att, now);
            return NINES__KEY_STATE__KS_FORGOTTEN;
        default:
            return NINES__KEY_STATE__KS_FORGOTTEN;
        }
    }
    /* not held: it never came, or it was dropped, or it came to an earlier
     * process of this node. Fence it either way (a late arrival of these
     * attempts is refused); promise "not seen" only when this table
     * cannot have lost it. */
    bool dropped = txo_maybe_dropped(o, k->client, k->seq);
    bool younger = now - o->start_ms <= q->age_ms + TXO_SLACK_MS;
    struct txo_ent *f = dropped ? NULL : txo_fence(o, k->client, k->seq, att, now);
    if (dropped || younger || !f)
        return NINES__KEY_STATE__KS_FORGOTTEN;
    return NINES__KEY_STATE__KS_NOT_SEEN;
}

static void merge(struct qkey *qk, uint32_t node, Nines__KeyState s, uint64_t txn, int64_t value,
                  int32_t err)
{
    switch (s) {
    case NINES__KEY_STATE__KS_COMMITTED:
        qk->committed = true;
        qk->txn = txn;
        qk->value = value;
        break;
    case NINES__KEY_STATE__KS_RUNNING:
        qk->running = true;
        if (!qk->committed)
            qk->txn = txn;
        break;
    case NINES__KEY_STATE__KS_ABORTED:
        qk->aborted = true;
        if (!qk->committed && !qk->running) {
            qk->txn = txn;
            qk->error = err;
        }
        qk->sure |= TXC_NODE(node);
        break;
    case NINES__KEY_STATE__KS_NOT_SEEN:
        qk->sure |= TXC_NODE(node);
        break;
    default: /* forgotten, or a state this version does not know: no promise */
        break;
    }
}

/* The nodes that could have held the decision of an attempt controlled by
 * node c: its hot-standby controller is a node of another site; with no
 * other site, c decides alone. */
static uint64_t deciders(struct txc *t, uint32_t c)
{
    const struct dict *d = txc_dict(t);
    uint32_t site = UINT32_MAX;
    for (uint32_t i = 0; i < d->nnodes; i++)
        if (d->nodes[i].id == c)
            site = d->nodes[i].site;
    if (site == UINT32_MAX)
        return 0; /* not a node of the cluster: no one can vouch for it */
    uint64_t h = 0;
    for (uint32_t i = 0; i < d->nnodes; i++)
        if (d->nodes[i].site != site)
            h |= TXC_NODE(d->nodes[i].id);
    return h ? h : TXC_NODE(c);
}

static void nodes_str(uint64_t s, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = 0;
    for (uint32_t id = 1; id <= 64 && o + 4 < n; id++)
        if (s & TXC_NODE(id))
            o += (size_t)snprintf(buf + o, n - o, "%s%u", o ? "," : "", id);
    if (!o)
        snprintf(buf, n, "none");
}

/* Not committed, for certain: for every node an attempt was sent to, that
 * node itself or every node that could have been its hsc answered so (and
 * fenced the key). *missing gets the nodes whose answer would have
 * settled it. */
static bool certain(struct txc *t, uint64_t sent_to, uint64_t sure, uint64_t *missing)
{
    *missing = 0;
    if (!sent_to) { /* the client does not say where: every node must vouch */
        uint64_t all = 0;
        const struct dict *d = txc_dict(t);
        for (uint32_t i = 0; i < d->nnodes; i++)
            all |= TXC_NODE(d->nodes[i].id);
        *missing = all & ~sure;
        return *missing == 0;
    }
    bool ok = true;
    for (uint32_t c = 1; c <= 64; c++) {
        if (!(sent_to & TXC_NODE(c)) || (sure & TXC_NODE(c)))
            continue;
        uint64_t h = deciders(t, c);
        if (!h || (h & sure) != h) {
            ok = false;
            *missing |= TXC_NODE(c) | (h & ~sure);
        }
    }
    return ok;
}

/* ---- a client asks -------------------------------------------------------- */

static void outcome_ref(struct txc *t, net_addr conn, uint64_t req_id, int err, const char *detail)
{
    struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__TXN_OUTCOME_REF);
    Nines__TxnOutcomeRef *b = m ? RT_BODY(m, Nines__TxnOutcomeRef, nines__txn_outcome_ref__init)
                                : NULL;
    char *d = b ? rt_msg_alloc(m, strlen(detail) + 1) : NULL;
    if (!d) {
        if (m)
            rt_msg_free(t->rt, m);
        return;
    }
    strcpy(d, detail);
    b->req_id = req_id;
    b->error = err;
    b->detail = d;
    (void)txc_to_client(t, conn, m);
}

static void query_free(struct txc *t, struct query *q)
{
    struct query **pp = &t->keys->queries;
    while (*pp && *pp != q)
        pp = &(*pp)->next;
    if (*pp)
        *pp = q->next;
    t->keys->nqueries--;
    if (q->timer > 0)
        rt_timer_cancel(t->rt, q->timer);
    rt_msg_free(t->rt, q->req);
    free(q->k);
    free(q);
}

static void finish(struct txc *t, struct query *q)
{
    size_t n = q->b->n_keys;
    struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__TXN_OUTCOME_CONF);
    Nines__TxnOutcomeConf *c = m ? RT_BODY(m, Nines__TxnOutcomeConf,
                                           nines__txn_outcome_conf__init)
                                 : NULL;
    Nines__KeyAnswer **pa = c ? rt_msg_alloc(m, (n ? n : 1) * sizeof *pa) : NULL;
    Nines__KeyAnswer *av = c ? rt_msg_alloc(m, (n ? n : 1) * sizeof *av) : NULL;
    if (!pa || !av) {
        if (m)
            rt_msg_free(t->rt, m);
        NLOG_ERROR("txc", "no memory for the outcome of %zu request keys", n);
        query_free(t, q); /* the client asks again */
        return;
    }
    c->req_id = q->req_id;
    c->n_answers = n;
    c->answers = pa;
    uint64_t silent = q->asked & ~q->answered;
    for (size_t i = 0; i < n; i++) {
        const struct qkey *qk = &q->k[i];
        Nines__KeyAnswer *a = &av[i];
        nines__key_answer__init(a);
        pa[i] = a;
        char d[TXO_DETAIL_MAX], ns[200], ss[200];
        uint64_t missing = 0;
        d[0] = 0;
        if (qk->committed) {
            a->outcome = NINES__KEY_OUTCOME__KEY_COMMITTED;
            a->txn = qk->txn;
            a->value = qk->value;
            t->keys->st.said_committed++;
        } else if (qk->running) {
            a->outcome = NINES__KEY_OUTCOME__KEY_IN_PROGRESS;
            a->txn = qk->txn;
            snprintf(d, sizeof d, "transaction %" PRIx64 " of this key is not decided yet",
                     qk->txn);
            t->keys->st.said_in_progress++;
        } else if (certain(t, q->b->keys[i]->sent_to, qk->sure, &missing)) {
            if (qk->aborted) {
                a->outcome = NINES__KEY_OUTCOME__KEY_ABORTED;
                a->txn = qk->txn;
                a->error = qk->error < 0 ? qk->error : NINES_EABORTED;
                snprintf(d, sizeof d, "transaction %" PRIx64 " of this key aborted (%s); no "
                         "attempt committed", qk->txn, nines_strerror(a->error));
                t->keys->st.said_aborted++;
            } else {
                a->outcome = NINES__KEY_OUTCOME__KEY_NOT_COMMITTED;
                snprintf(d, sizeof d, "no attempt of this key ran; none may start any more");
                t->keys->st.said_not_committed++;
            }
        } else {
            a->outcome = NINES__KEY_OUTCOME__KEY_UNKNOWN;
            nodes_str(missing, ns, sizeof ns);
            nodes_str(silent, ss, sizeof ss);
            snprintf(d, sizeof d, "outcome unknown: no committed or running attempt found, but "
                     "node(s) %s, which could hold its decision, did not vouch for it (no "
                     "answer from: %s; the others may have forgotten it or restarted since)",
                     ns, ss);
            t->keys->st.said_unknown++;
        }
        if (d[0]) {
            a->detail = rt_msg_alloc(m, strlen(d) + 1);
            if (a->detail)
                strcpy(a->detail, d);
        }
    }
    if (txc_to_client(t, q->conn, m))
        NLOG_DEBUG("txc", "outcome answer lost: %s", nines_errdetail());
    query_free(t, q);
}

static void ask_peers(struct txc *t, struct query *q)
{
    uint64_t ask = members(t) & ~TXC_NODE(t->self);
    for (uint32_t n = 1; n <= 64; n++) {
        if (!(ask & TXC_NODE(n)))
            continue;
        struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__TXO_ASK_REQ);
        Nines__TxoAskReq *b = m ? RT_BODY(m, Nines__TxoAskReq, nines__txo_ask_req__init) : NULL;
        if (!b) {
            if (m)
                rt_msg_free(t->rt, m);
            continue;
        }
        b->qid = q->qid;
        b->n_keys = q->b->n_keys;
        b->keys = q->b->keys; /* packed at once: a remote send */
        if (rt_send(t->rt, n, RT_SVC_TXC, m) == 0)
            q->asked |= TXC_NODE(n);
    }
}

void txc_on_txn_outcome_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxnOutcomeReq *b = (const Nines__TxnOutcomeReq *)m->body;
    net_addr conn = m->from;
    char d[TXO_DETAIL_MAX];
    if (conn < NET_CONN_BASE && conn != 0) {
        NLOG_WARN("txc", "TXN_OUTCOME_REQ from node %llu ignored: clients ask",
                  (unsigned long long)conn);
        return;
    }
    const struct rt_nodeset *ns = rt_nodeset(rt);
    if (!ns->serving) {
        snprintf(d, sizeof d, "node %u is not serving: %s", t->self,
                 ns->reason[0] ? ns->reason : "no node set installed");
        outcome_ref(t, conn, b->req_id, NINES_ENOTMEMBER, d);
        return;
    }
    if (b->n_keys == 0 || b->n_keys > TXO_ASK_MAX_KEYS) {
        snprintf(d, sizeof d, "an outcome question names %zu request keys (1..%u)", b->n_keys,
                 TXO_ASK_MAX_KEYS);
        outcome_ref(t, conn, b->req_id, NINES_EINVAL, d);
        return;
    }
    for (size_t i = 0; i < b->n_keys; i++)
        if (!b->keys[i] || !has_key(b->keys[i]->key)) {
            snprintf(d, sizeof d, "outcome question: key %zu has no client id", i);
            outcome_ref(t, conn, b->req_id, NINES_EINVAL, d);
            return;
        }
    struct txc_keys *ks = t->keys;
    struct query *q = ks->nqueries < TXO_MAX_QUERIES ? calloc(1, sizeof *q) : NULL;
    struct qkey *qk = q ? calloc(b->n_keys, sizeof *qk) : NULL;
    if (!qk) {
        free(q);
        snprintf(d, sizeof d, "node %u is answering %u outcome questions; ask again", t->self,
                 ks->nqueries);
        outcome_ref(t, conn, b->req_id, NINES_EAGAIN, d);
        return;
    }
    ks->st.questions++;
    q->qid = ++ks->next_qid & TXC_SEQ_MASK; /* top 8 bits 0: never a txn id (timer cookies) */
    q->conn = conn;
    q->req_id = b->req_id;
    rt_msg_keep(m);
    q->req = m;
    q->b = b;
    q->k = qk;
    q->next = ks->queries;
    ks->queries = q;
    ks->nqueries++;
    for (size_t i = 0; i < b->n_keys; i++) {
        uint64_t txn;
        int64_t value;
        int32_t err;
        Nines__KeyState s = state_here(t, b->keys[i], &txn, &value, &err);
        merge(&qk[i], t->self, s, txn, value, err);
    }
    ask_peers(t, q);
    if (!q->asked) {
        finish(t, q);
        return;
    }
    uint32_t ms = t->cfg.timeout_ms / 2 ? t->cfg.timeout_ms / 2 : 1;
    q->timer = rt_timer_add(rt, RT_SVC_TXC, (uint64_t)ms * 1000u, q->qid);
    if (q->timer < 0)
        finish(t, q); /* no timer: answer with what is here (unknown where unsure) */
}

void txc_outcome_on_timer(struct txc *t, uint64_t cookie)
{
    for (struct query *q = t->keys->queries; q; q = q->next)
        if (q->qid == cookie) {
            q->timer = 0;
            t->keys->st.question_timeouts++;
            finish(t, q);
            return;
        }
}

/* ---- between nodes -------------------------------------------------------- */

void txc_on_txo_ask_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxoAskReq *b = (const Nines__TxoAskReq *)m->body;
    if (m->from == 0 || m->from >= NET_CONN_BASE || b->n_keys > TXO_ASK_MAX_KEYS)
        return;
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__TXO_ASK_CONF);
    Nines__TxoAskConf *c = r ? RT_BODY(r, Nines__TxoAskConf, nines__txo_ask_conf__init) : NULL;
    size_t n = b->n_keys;
    Nines__TxoKeyState **ps = c ? rt_msg_alloc(r, (n ? n : 1) * sizeof *ps) : NULL;
    Nines__TxoKeyState *sv = c ? rt_msg_alloc(r, (n ? n : 1) * sizeof *sv) : NULL;
    if (!ps || !sv) {
        if (r)
            rt_msg_free(rt, r);
        return; /* the asker's deadline: unknown where this answer was needed */
    }
    c->qid = b->qid;
    c->node = t->self;
    c->n_states = n;
    c->states = ps;
    for (size_t i = 0; i < n; i++) {
        nines__txo_key_state__init(&sv[i]);
        ps[i] = &sv[i];
        if (!b->keys[i] || !has_key(b->keys[i]->key)) {
            sv[i].state = NINES__KEY_STATE__KS_FORGOTTEN;
            continue;
        }
        sv[i].state = state_here(t, b->keys[i], &sv[i].txn, &sv[i].value, &sv[i].error);
    }
    t->keys->st.asked_by_peers++;
    txc_send(t, (uint32_t)m->from, RT_SVC_TXC, r);
}

void txc_on_txo_ask_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxoAskConf *b = (const Nines__TxoAskConf *)m->body;
    if (m->from == 0 || m->from > 64)
        return;
    uint32_t node = (uint32_t)m->from;
    struct query *q = t->keys->queries;
    while (q && q->qid != b->qid)
        q = q->next;
    if (!q || !(q->asked & TXC_NODE(node)) || (q->answered & TXC_NODE(node)))
        return; /* late (answered at the deadline) or not asked */
    if (b->n_states != q->b->n_keys) {
        NLOG_WARN("txc", "node %u answered %zu key states for %zu keys: ignored", node,
                  b->n_states, q->b->n_keys);
        return;
    }
    q->answered |= TXC_NODE(node);
    for (size_t i = 0; i < b->n_states; i++)
        if (b->states[i])
            merge(&q->k[i], node, b->states[i]->state, b->states[i]->txn, b->states[i]->value,
                  b->states[i]->error);
    if (q->answered == q->asked)
        finish(t, q);
    (void)rt;
}
