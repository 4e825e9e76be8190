/* Request keys and client outcome questions (txctl/README.md "Request
 * keys"). Suite txo_table: the request-key table alone (txctl/txo.h) —
 * dedup, attempts, fences, aging by age and by count, the dropped-key
 * bound. Suite txo_world: four nodes (two per site) over the in-process
 * test transport with real controllers and a fake kernel per node: a
 * repeated key answered from the table, outcome questions answered
 * committed / not committed / aborted / in progress / unknown by the
 * combination rule, a START arriving after the key was declared not
 * committed (refused: ABORT), an undecided hsc entry whose ctl died,
 * restarted and unreachable deciders (unknown, never "not committed"). */
#include "cu_test.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../../net/testnet.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "txctl/txc.h"
#include "txctl/txo.h"

/* ============================ suite txo_table ============================ */

static void test_table_dedup(void)
{
    struct txo o;
    CU_ASSERT_EQUAL_FATAL(txo_init(&o, 64, 1000, 0), 0);
    struct txo_ent *e;
    CU_ASSERT_EQUAL(txo_admit(&o, 7, 100, 1, TXO_ROLE_CTL, 0x111, 1, 10, &e), TXO_RUN);
    CU_ASSERT_EQUAL(e->state, TXO_RUNNING);
    /* a second arrival while the first runs: busy, nothing entered twice */
    CU_ASSERT_EQUAL(txo_admit(&o, 7, 100, 1, TXO_ROLE_CTL, 0x222, 1, 11, &e), TXO_BUSY);
    CU_ASSERT_EQUAL(e->txn, 0x111);
    /* the same txn again (a repeated START): taken */
    CU_ASSERT_EQUAL(txo_admit(&o, 7, 100, 1, TXO_ROLE_HSC, 0x111, 1, 11, &e), TXO_RUN);
    txo_decided(&o, 0x111, true, 4242, 0, 12);
    CU_ASSERT_EQUAL(txo_admit(&o, 7, 100, 1, TXO_ROLE_CTL, 0x333, 1, 13, &e), TXO_DONE_COMMITTED);
    CU_ASSERT_EQUAL(e->txn, 0x111);
    CU_ASSERT_EQUAL(e->value, 4242);
    /* a higher attempt of a committed key does not run either */
    CU_ASSERT_EQUAL(txo_admit(&o, 7, 100, 5, TXO_ROLE_CTL, 0x333, 1, 13, &e), TXO_DONE_COMMITTED);
    CU_ASSERT_EQUAL(o.st.deduped, 2);
    /* other keys of the same client are independent */
    CU_ASSERT_EQUAL(txo_admit(&o, 7, 101, 1, TXO_ROLE_CTL, 0x444, 1, 14, &e), TXO_RUN);
    CU_ASSERT_EQUAL(txo_admit(&o, 8, 100, 1, TXO_ROLE_CTL, 0x555, 1, 14, &e), TXO_RUN);
    CU_ASSERT_PTR_EQUAL(txo_find_txn(&o, 0x555), e);
    CU_ASSERT_PTR_NULL(txo_find_txn(&o, 0x333));
    txo_free(&o);
}

static void test_table_attempts_and_fences(void)
{
    struct txo o;
    CU_ASSERT_EQUAL_FATAL(txo_init(&o, 64, 1000, 0), 0);
    struct txo_ent *e;
    CU_ASSERT_EQUAL(txo_admit(&o, 9, 1, 1, TXO_ROLE_CTL, 0xa1, 1, 0, &e), TXO_RUN);
    txo_decided(&o, 0xa1, false, 0, NINES_EDEADLOCK, 1);
    CU_ASSERT_EQUAL(e->state, TXO_ABORTED);
    CU_ASSERT_EQUAL(e->error, NINES_EDEADLOCK);
    /* the same attempt again: stale (it aborted); a newer one runs */
    CU_ASSERT_EQUAL(txo_admit(&o, 9, 1, 1, TXO_ROLE_CTL, 0xa2, 1, 2, &e), TXO_STALE);
    CU_ASSERT_EQUAL(txo_admit(&o, 9, 1, 2, TXO_ROLE_CTL, 0xa3, 1, 2, &e), TXO_RUN);
    CU_ASSERT_PTR_NULL(txo_find_txn(&o, 0xa1)); /* the index follows the current attempt */
    CU_ASSERT_PTR_EQUAL(txo_find_txn(&o, 0xa3), e);
    /* a decision for an older attempt's txn changes nothing */
    txo_decided(&o, 0xa1, true, 1, 0, 3);
    CU_ASSERT_EQUAL(e->state, TXO_RUNNING);
    /* a key fenced before it arrived: attempts up to the fence never run */
    CU_ASSERT_PTR_NOT_NULL(txo_fence(&o, 9, 2, 3, 4));
    CU_ASSERT_EQUAL(txo_admit(&o, 9, 2, 1, TXO_ROLE_HSC, 0xb1, 1, 5, &e), TXO_STALE);
    CU_ASSERT_EQUAL(txo_admit(&o, 9, 2, 3, TXO_ROLE_HSC, 0xb1, 1, 5, &e), TXO_STALE);
    CU_ASSERT_EQUAL(txo_admit(&o, 9, 2, 4, TXO_ROLE_HSC, 0xb1, 1, 5, &e), TXO_RUN);
    /* fencing a running key does not stop it; fencing an aborted one raises
     * the bar above its attempt */
    CU_ASSERT_PTR_NOT_NULL(txo_fence(&o, 9, 2, 9, 6));
    CU_ASSERT_EQUAL(e->state, TXO_RUNNING);
    txo_decided(&o, 0xb1, false, 0, 0, 7);
    CU_ASSERT_EQUAL(e->error, NINES_EABORTED); /* no code given: aborted */
    CU_ASSERT_EQUAL(txo_admit(&o, 9, 2, 5, TXO_ROLE_CTL, 0xb2, 1, 8, &e), TXO_STALE);
    CU_ASSERT_EQUAL(txo_admit(&o, 9, 2, 10, TXO_ROLE_CTL, 0xb2, 1, 8, &e), TXO_RUN);
    txo_free(&o);
}

static void test_table_aging(void)
{
    struct txo o;
    CU_ASSERT_EQUAL_FATAL(txo_init(&o, 64, 100, 0), 0);
    struct txo_ent *e;
    CU_ASSERT_EQUAL(txo_admit(&o, 1, 10, 1, TXO_ROLE_CTL, 0x10, 1, 0, &e), TXO_RUN);
    CU_ASSERT_EQUAL(txo_admit(&o, 1, 11, 1, TXO_ROLE_CTL, 0x11, 1, 0, &e), TXO_RUN);
    txo_decided(&o, 0x10, true, 5, 0, 50);
    CU_ASSERT_PTR_NOT_NULL(txo_fence(&o, 1, 12, 1, 60));
    /* 0x10 decided at 50: kept until 150; 0x11 still runs at 200 */
    CU_ASSERT_PTR_NOT_NULL(txo_find(&o, 1, 10, 149));
    CU_ASSERT_FALSE(txo_maybe_dropped(&o, 1, 10));
    CU_ASSERT_PTR_NULL(txo_find(&o, 1, 10, 150));
    CU_ASSERT_TRUE(txo_maybe_dropped(&o, 1, 10));
    CU_ASSERT_PTR_NOT_NULL(txo_find(&o, 1, 11, 200)); /* running: never dropped */
    CU_ASSERT_PTR_NULL(txo_find(&o, 1, 12, 200));      /* the fence aged out */
    CU_ASSERT_TRUE(txo_maybe_dropped(&o, 1, 12));
    CU_ASSERT_EQUAL(o.st.evicted_age, 2);
    /* a dropped key is not run again: its outcome may be forgotten */
    CU_ASSERT_EQUAL(txo_admit(&o, 1, 10, 1, TXO_ROLE_CTL, 0x12, 1, 201, &e), TXO_DROPPED);
    CU_ASSERT_EQUAL(txo_admit(&o, 1, 12, 2, TXO_ROLE_HSC, 0x12, 1, 201, &e), TXO_DROPPED);
    /* newer keys of that client are fine */
    CU_ASSERT_EQUAL(txo_admit(&o, 1, 13, 1, TXO_ROLE_CTL, 0x13, 1, 201, &e), TXO_RUN);
    /* the running one, decided late, is kept keep_ms from then */
    txo_decided(&o, 0x11, false, 0, NINES_ETIMEDOUT, 300);
    CU_ASSERT_PTR_NOT_NULL(txo_find(&o, 1, 11, 399));
    CU_ASSERT_PTR_NULL(txo_find(&o, 1, 11, 400));
    txo_free(&o);
}

static void test_table_count(void)
{
    struct txo o;
    CU_ASSERT_EQUAL_FATAL(txo_init(&o, 4, 1000000, 0), 0);
    struct txo_ent *e;
    /* 4 entries: one runs, three decided */
    CU_ASSERT_EQUAL(txo_admit(&o, 5, 1, 1, TXO_ROLE_CTL, 0x1, 1, 0, &e), TXO_RUN);
    for (uint64_t s = 2; s <= 4; s++) {
        CU_ASSERT_EQUAL(txo_admit(&o, 5, s, 1, TXO_ROLE_CTL, s, 1, s, &e), TXO_RUN);
        txo_decided(&o, s, true, 0, 0, s);
    }
    CU_ASSERT_EQUAL(o.used, 4);
    /* a fifth: the oldest decided one (seq 2) leaves, not the running seq 1 */
    CU_ASSERT_EQUAL(txo_admit(&o, 5, 5, 1, TXO_ROLE_CTL, 0x5, 1, 10, &e), TXO_RUN);
    CU_ASSERT_EQUAL(o.st.evicted_count, 1);
    CU_ASSERT_PTR_NOT_NULL(txo_find(&o, 5, 1, 10));
    CU_ASSERT_PTR_NULL(txo_find(&o, 5, 2, 10));
    CU_ASSERT_TRUE(txo_maybe_dropped(&o, 5, 2));
    CU_ASSERT_TRUE(txo_maybe_dropped(&o, 5, 1)); /* conservative: below the bucket's mark */
    CU_ASSERT_FALSE(txo_maybe_dropped(&o, 5, 6));
    /* only running entries left: no room, and a fence cannot be promised */
    for (uint64_t s = 3; s <= 4; s++) {
        CU_ASSERT_PTR_NOT_NULL(txo_find(&o, 5, s, 11));
    }
    CU_ASSERT_EQUAL(txo_admit(&o, 5, 6, 1, TXO_ROLE_CTL, 0x6, 1, 11, &e), TXO_RUN);
    CU_ASSERT_EQUAL(txo_admit(&o, 5, 7, 1, TXO_ROLE_CTL, 0x7, 1, 11, &e), TXO_RUN);
    CU_ASSERT_EQUAL(txo_admit(&o, 5, 8, 1, TXO_ROLE_CTL, 0x8, 1, 12, &e), TXO_FULL);
    CU_ASSERT_PTR_NULL(txo_fence(&o, 5, 9, 1, 12));
    txo_decided(&o, 0x6, false, 0, 0, 13);
    CU_ASSERT_PTR_NOT_NULL(txo_fence(&o, 5, 9, 1, 14));
    txo_free(&o);
}

/* ============================ suite txo_world ============================ */

#define NN 4
#define CONN(c) (NET_CONN_BASE + (c))
#define MAX_ANS 256
#define TIMEOUT_MS 400

struct ans {
    uint32_t node;
    net_addr conn;
    uint32_t type;
    uint64_t req_id, txn;
    int64_t value;
    int error;
    char detail[700];
    uint32_t nkeys;
    struct {
        int outcome;
        uint64_t txn;
        int64_t value;
        int error;
        char detail[700];
    } k[8];
};

struct fk {
    uint32_t self;
    uint64_t ops, commits, aborts;
};

static struct {
    struct nines_conf cfg;
    struct net_testnet *hub;
    struct rt *rt[NN + 1];
    struct txc *txc[NN + 1];
    struct fk fk[NN + 1];
    bool down[NN + 1];
    struct dict d;
    struct ans ans[MAX_ANS];
    uint32_t nans;
    /* the filter holds messages of `hold_type` (from hold_from, 0 any) */
    uint32_t hold_type, hold_from;
    bool hold_sready;          /* standby READY_INDs are not sent */
    struct { uint32_t from; net_addr to; enum rt_svc svc; struct rt_msg *m; } held[64];
    uint32_t nheld;
} W;

static const struct dict *world_dict(void *ctx) { (void)ctx; return &W.d; }

static int client_send(void *ctx, struct rt *rt, net_addr conn, struct rt_msg *m)
{
    (void)ctx;
    CU_ASSERT_FATAL(W.nans < MAX_ANS);
    struct ans *a = &W.ans[W.nans++];
    memset(a, 0, sizeof *a);
    a->node = rt_self(rt);
    a->conn = conn;
    a->type = m->type;
    switch (m->type) {
    case NINES__MSG_TYPE__TXN_CONF: {
        const Nines__TxnConf *b = (const Nines__TxnConf *)m->body;
        a->req_id = b->req_id;
        a->txn = b->txn;
        a->value = b->value;
        break;
    }
    case NINES__MSG_TYPE__TXN_REF: {
        const Nines__TxnRef *b = (const Nines__TxnRef *)m->body;
        a->req_id = b->req_id;
        a->txn = b->txn;
        a->error = b->error;
        snprintf(a->detail, sizeof a->detail, "%s", b->detail ? b->detail : "");
        break;
    }
    case NINES__MSG_TYPE__TXN_OUTCOME_CONF: {
        const Nines__TxnOutcomeConf *b = (const Nines__TxnOutcomeConf *)m->body;
        a->req_id = b->req_id;
        a->nkeys = (uint32_t)b->n_answers;
        for (size_t i = 0; i < b->n_answers && i < 8; i++) {
            a->k[i].outcome = b->answers[i]->outcome;
            a->k[i].txn = b->answers[i]->txn;
            a->k[i].value = b->answers[i]->value;
            a->k[i].error = b->answers[i]->error;
            snprintf(a->k[i].detail, sizeof a->k[i].detail, "%s",
                     b->answers[i]->detail ? b->answers[i]->detail : "");
        }
        break;
    }
    case NINES__MSG_TYPE__TXN_OUTCOME_REF: {
        const Nines__TxnOutcomeRef *b = (const Nines__TxnOutcomeRef *)m->body;
        a->req_id = b->req_id;
        a->error = b->error;
        snprintf(a->detail, sizeof a->detail, "%s", b->detail ? b->detail : "");
        break;
    }
    default:
        CU_FAIL("unexpected client message");
    }
    rt_msg_free(rt, m);
    return 0;
}

static struct ans *answer(net_addr conn, uint64_t req_id)
{
    struct ans *found = NULL;
    int n = 0;
    for (uint32_t i = 0; i < W.nans; i++)
        if (W.ans[i].conn == conn && W.ans[i].req_id == req_id) {
            found = &W.ans[i];
            n++;
        }
    CU_ASSERT(n <= 1);
    return found;
}

/* ---- fake kernel: every op succeeds; ADD returns 1000 + delta in the
 * asked column; prepare ships "records" (standby READY_IND straight from
 * the standby's node to the hsc) -------------------------------------------- */

static void send_to(uint32_t from, uint32_t to, enum rt_svc svc, struct rt_msg *m)
{
    rt_send(W.rt[from], to == from ? 0 : to, svc, m);
}

static void fk_on_op_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct fk *k = st;
    const Nines__KernOpReq *b = (const Nines__KernOpReq *)m->body;
    k->ops++;
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__KERN_OP_CONF);
    Nines__KernOpConf *c = RT_BODY(r, Nines__KernOpConf, nines__kern_op_conf__init);
    c->txn = b->txn;
    c->seq = b->seq;
    c->ready = b->prepare;
    c->n_results = b->n_ops;
    c->results = rt_msg_alloc(r, b->n_ops * sizeof *c->results);
    c->n_frags = b->n_ops;
    c->frags = rt_msg_alloc(r, b->n_ops * sizeof *c->frags);
    int64_t value = 0;
    bool has_value = false;
    for (size_t i = 0; i < b->n_ops; i++) {
        const Nines__RecordOp *op = b->ops[i];
        Nines__OpResult *res = rt_msg_alloc(r, sizeof *res);
        nines__op_result__init(res);
        c->results[i] = res;
        Nines__FragRecords *f = rt_msg_alloc(r, sizeof *f);
        nines__frag_records__init(f);
        f->table = b->parts[i]->table;
        f->frag = b->parts[i]->frag;
        f->nrecords = 1;
        f->standby = b->parts[i]->standby;
        c->frags[i] = f;
        if (op->op == NINES__OP_TYPE__OP_ADD && !op->escrow) {
            uint32_t col = op->column;
            Nines__Row *row = rt_msg_alloc(r, sizeof *row);
            nines__row__init(row);
            row->n_values = col + 1;
            row->values = rt_msg_alloc(r, (col + 1) * sizeof *row->values);
            for (uint32_t j = 0; j <= col; j++) {
                Nines__Value *v = rt_msg_alloc(r, sizeof *v);
                nines__value__init(v);
                v->v_case = NINES__VALUE__V_I64;
                v->i64 = j == col ? 1000 + op->delta : 0;
                row->values[j] = v;
            }
            res->n_rows = 1;
            res->rows = rt_msg_alloc(r, sizeof *res->rows);
            res->rows[0] = row;
            if (b->value_op == i + 1) {
                has_value = true;
                value = 1000 + op->delta;
            }
        }
    }
    uint32_t ctl = b->ctl, hsc = b->hsc;
    uint64_t txn = b->txn;
    bool prepare = b->prepare;
    /* the readies need the parts after m is gone: copy what is needed */
    uint32_t n = (uint32_t)b->n_ops, tab[16], frg[16], sby[16];
    for (uint32_t i = 0; i < n && i < 16; i++) {
        tab[i] = b->parts[i]->table;
        frg[i] = b->parts[i]->frag;
        sby[i] = b->parts[i]->standby;
    }
    send_to(k->self, ctl, RT_SVC_TXC, r);
    if (!prepare || !hsc)
        return;
    struct rt_msg *p = rt_msg_new(rt, NINES__MSG_TYPE__READY_IND);
    Nines__ReadyInd *pb = RT_BODY(p, Nines__ReadyInd, nines__ready_ind__init);
    pb->txn = txn;
    pb->node = k->self;
    pb->has_value = has_value;
    pb->value = value;
    pb->n_frags = n;
    pb->frags = rt_msg_alloc(p, n * sizeof *pb->frags);
    for (uint32_t i = 0; i < n; i++) {
        Nines__FragRecords *f = rt_msg_alloc(p, sizeof *f);
        nines__frag_records__init(f);
        f->table = tab[i];
        f->frag = frg[i];
        f->nrecords = 1;
        f->standby = sby[i];
        pb->frags[i] = f;
    }
    send_to(k->self, hsc, RT_SVC_TXC, p);
    if (W.hold_sready)
        return;
    for (uint32_t i = 0; i < n; i++) {
        if (!sby[i] || W.down[sby[i]])
            continue;
        struct rt_msg *s = rt_msg_new(W.rt[sby[i]], NINES__MSG_TYPE__READY_IND);
        Nines__ReadyInd *sb = RT_BODY(s, Nines__ReadyInd, nines__ready_ind__init);
        sb->txn = txn;
        sb->node = sby[i];
        sb->table = tab[i];
        sb->frag = frg[i];
        sb->standby = true;
        send_to(sby[i], hsc, RT_SVC_TXC, s);
    }
}

static void fk_on_end(struct rt *rt, void *st, struct rt_msg *m)
{
    struct fk *k = st;
    bool commit = m->type == NINES__MSG_TYPE__COMMIT_REQ;
    uint64_t txn = commit ? ((const Nines__CommitReq *)m->body)->txn
                          : ((const Nines__AbortReq *)m->body)->txn;
    if (commit)
        k->commits++;
    else
        k->aborts++;
    struct rt_msg *r = rt_msg_new(rt, commit ? NINES__MSG_TYPE__COMMIT_CONF
                                             : NINES__MSG_TYPE__ABORT_CONF);
    if (commit) {
        Nines__CommitConf *b = RT_BODY(r, Nines__CommitConf, nines__commit_conf__init);
        b->txn = txn;
        b->node = k->self;
    } else {
        Nines__AbortConf *b = RT_BODY(r, Nines__AbortConf, nines__abort_conf__init);
        b->txn = txn;
        b->node = k->self;
    }
    uint32_t to = m->from ? (uint32_t)m->from : k->self;
    send_to(k->self, to, RT_SVC_TXC, r);
}

static void fk_ignore(struct rt *rt, void *st, struct rt_msg *m) { (void)rt, (void)st, (void)m; }

static enum rt_fault_verdict filter(void *ctx, struct rt *rt, net_addr to, enum rt_svc svc,
                                    struct rt_msg *m)
{
    (void)ctx;
    uint32_t from = rt_self(rt);
    if (W.hold_type && m->type == W.hold_type && (!W.hold_from || W.hold_from == from)) {
        CU_ASSERT_FATAL(W.nheld < 64);
        W.held[W.nheld].from = from;
        W.held[W.nheld].to = to;
        W.held[W.nheld].svc = svc;
        W.held[W.nheld++].m = m;
        return RT_FAULT_TAKE;
    }
    return RT_FAULT_PASS;
}

static void release_held(void)
{
    uint32_t n = W.nheld;
    W.nheld = 0;
    W.hold_type = 0;
    for (uint32_t i = 0; i < n; i++)
        rt_send_nofault(W.rt[W.held[i].from], W.held[i].to, W.held[i].svc, W.held[i].m);
}

#define ROW(T, desc_, svc_, fn_) \
    [NINES__MSG_TYPE__##T] = {#T, &desc_, svc_, fn_, RT_FROM_ANY, RT_EPOCH_ANY}
static const struct rt_msg_entry msgtab[] = {
    ROW(TXN_REQ, nines__txn_req__descriptor, RT_SVC_TXC, txc_on_txn_req),
    ROW(KERN_OP_CONF, nines__kern_op_conf__descriptor, RT_SVC_TXC, txc_on_kern_op_conf),
    ROW(KERN_OP_REF, nines__kern_op_ref__descriptor, RT_SVC_TXC, txc_on_kern_op_ref),
    ROW(PREPARE_CONF, nines__prepare_conf__descriptor, RT_SVC_TXC, txc_on_prepare_conf),
    ROW(PREPARE_REF, nines__prepare_ref__descriptor, RT_SVC_TXC, txc_on_prepare_ref),
    ROW(READY_IND, nines__ready_ind__descriptor, RT_SVC_TXC, txc_on_ready_ind),
    ROW(COMMIT_CONF, nines__commit_conf__descriptor, RT_SVC_TXC, txc_on_commit_conf),
    ROW(ABORT_CONF, nines__abort_conf__descriptor, RT_SVC_TXC, txc_on_abort_conf),
    ROW(TXC_START_REQ, nines__txc_start_req__descriptor, RT_SVC_TXC, txc_on_start_req),
    ROW(TXC_READY_CONF, nines__txc_ready_conf__descriptor, RT_SVC_TXC, txc_on_ready_conf),
    ROW(TXC_FORGET_REQ, nines__txc_forget_req__descriptor, RT_SVC_TXC, txc_on_forget_req),
    ROW(TXC_ABORT_REQ, nines__txc_abort_req__descriptor, RT_SVC_TXC, txc_on_abort_req),
    ROW(TXC_ABORT_CONF, nines__txc_abort_conf__descriptor, RT_SVC_TXC, txc_on_abort_conf_hsc),
    ROW(TXC_OUTCOME_REQ, nines__txc_outcome_req__descriptor, RT_SVC_TXC, txc_on_outcome_req),
    ROW(TXN_OUTCOME_REQ, nines__txn_outcome_req__descriptor, RT_SVC_TXC, txc_on_txn_outcome_req),
    ROW(TXO_ASK_REQ, nines__txo_ask_req__descriptor, RT_SVC_TXC, txc_on_txo_ask_req),
    ROW(TXO_ASK_CONF, nines__txo_ask_conf__descriptor, RT_SVC_TXC, txc_on_txo_ask_conf),
    ROW(TXC_OUTCOME_REF, nines__txc_outcome_ref__descriptor, RT_SVC_KERN, fk_ignore),
    ROW(KERN_OP_REQ, nines__kern_op_req__descriptor, RT_SVC_KERN, fk_on_op_req),
    ROW(COMMIT_REQ, nines__commit_req__descriptor, RT_SVC_KERN, fk_on_end),
    ROW(ABORT_REQ, nines__abort_req__descriptor, RT_SVC_KERN, fk_on_end),
};

#define COL(n, t, s) {.name = n, .type = t, .size = s}

static void mk_table(const char *name, uint32_t ncols, const struct dict_column *cols)
{
    struct dict_table_def def;
    memset(&def, 0, sizeof def);
    snprintf(def.name, sizeof def.name, "%s", name);
    static const uint16_t pk0[1] = {0};
    def.ncols = ncols;
    def.cols = cols;
    def.npk = 1;
    def.pk = pk0;
    def.method = DICT_FRAG_HASH;
    def.nfrags = 8;
    CU_ASSERT_EQUAL_FATAL(dict_create_table(&W.d, &def, NULL), 0);
}

static void build_dict(void)
{
    struct dict_node nodes[NN];
    for (uint32_t i = 0; i < NN; i++)
        nodes[i] = (struct dict_node){i + 1, i % 2};
    CU_ASSERT_EQUAL_FATAL(dict_init(&W.d, nodes, NN), 0);
    static const struct dict_column br[] = {COL("bid", DICT_T_INT64, 0),
                                            COL("balance", DICT_T_INT64, 0),
                                            COL("filler", DICT_T_STRING, 88)};
    static const struct dict_column te[] = {COL("tid", DICT_T_INT64, 0), COL("bid", DICT_T_INT64, 0),
                                            COL("balance", DICT_T_INT64, 0),
                                            COL("filler", DICT_T_STRING, 84)};
    static const struct dict_column ac[] = {COL("aid", DICT_T_INT64, 0), COL("bid", DICT_T_INT64, 0),
                                            COL("balance", DICT_T_INT64, 0),
                                            COL("filler", DICT_T_STRING, 84)};
    static const struct dict_column hi[] = {
        COL("hid", DICT_T_INT64, 0),   COL("aid", DICT_T_INT64, 0),
        COL("tid", DICT_T_INT64, 0),   COL("bid", DICT_T_INT64, 0),
        COL("delta", DICT_T_INT64, 0), COL("ts", DICT_T_TIMESTAMP, 0),
        COL("filler", DICT_T_STRING, 22)};
    mk_table("branch", 3, br);
    mk_table("teller", 4, te);
    mk_table("account", 4, ac);
    mk_table("history", 7, hi);
}

static void step(int rounds)
{
    for (int r = 0; r < rounds; r++) {
        for (uint32_t n = 1; n <= NN; n++)
            if (!W.down[n])
                rt_step(W.rt[n], 0);
        net_testnet_advance(W.hub, 100);
    }
}

/* Move every live node's clock (timers fire at their next step). */
static void advance_ms(uint64_t ms)
{
    for (uint32_t n = 1; n <= NN; n++)
        if (!W.down[n])
            rt_fault_advance_clock(W.rt[n], ms * 1000u);
    step(20);
}

/* Install a node set on the nodes `on` (every node of `members` that is up). */
static void install(uint64_t epoch, uint64_t members, uint64_t on)
{
    for (uint32_t n = 1; n <= NN; n++) {
        if (!(on & RT_NODE_BIT(n)))
            continue;
        struct rt_nodeset ns = {.epoch = epoch, .members = members, .current = members,
                                .coordinator = 1, .member = true, .serving = true};
        rt_install_nodeset(W.rt[n], &ns);
        CU_ASSERT_EQUAL(rt_nodeset(W.rt[n])->epoch, epoch);
    }
}

static void world_open(void)
{
    memset(&W, 0, sizeof W);
    struct nines_conf *c = &W.cfg;
    snprintf(c->cluster, sizeof c->cluster, "txotest");
    c->nnodes = NN;
    for (uint32_t i = 0; i < NN; i++) {
        c->nodes[i].id = i + 1;
        c->nodes[i].site = i % 2;
        snprintf(c->nodes[i].host, sizeof c->nodes[i].host, "127.0.0.1");
        c->nodes[i].port = (uint16_t)(7200 + i);
    }
    c->heartbeat_ms = 50;
    c->heartbeat_misses = 2;
    c->reconnect_min_ms = 1;
    c->reconnect_max_ms = 10;
    c->max_frame_bytes = 1u << 22;
    c->send_queue_bytes = 64u << 20;
    snprintf(c->transport, sizeof c->transport, "test");
    build_dict();
    CU_ASSERT_EQUAL_FATAL(net_testnet_new(&W.hub, c, cu_seed(11)), 0);
    for (uint32_t n = 1; n <= NN; n++) {
        struct net_transport *tr;
        CU_ASSERT_EQUAL_FATAL(net_testnet_transport(W.hub, n, &tr), 0);
        struct rt_config rc = {.self = n, .conf = c, .transport = tr, .msgtab = msgtab,
                               .msgtab_len = sizeof msgtab / sizeof msgtab[0]};
        CU_ASSERT_EQUAL_FATAL(rt_create(&W.rt[n], &rc), 0);
        struct txc_config tc = {.dict = world_dict, .dict_ctx = &W, .timeout_ms = TIMEOUT_MS,
                                .client_send = client_send, .client_ctx = &W};
        CU_ASSERT_EQUAL_FATAL(txc_create(&W.txc[n], W.rt[n], &tc), 0);
        W.fk[n].self = n;
        CU_ASSERT_EQUAL_FATAL(rt_task_add(W.rt[n], RT_SVC_KERN, "fake-kern", fk_ignore,
                                          &W.fk[n]), 0);
        CU_ASSERT_EQUAL_FATAL(rt_fault_set_filter(W.rt[n], filter, &W), 0);
        struct rt_nodeset ns = {.epoch = 1, .members = 0xf, .current = 0xf, .coordinator = 1,
                                .member = true, .serving = true};
        rt_install_nodeset(W.rt[n], &ns);
        CU_ASSERT_FATAL(rt_nodeset(W.rt[n])->serving);
    }
    for (int guard = 0; guard < 2000; guard++) {
        step(1);
        bool all = true;
        for (uint32_t a = 1; a <= NN; a++)
            for (uint32_t b = 1; b <= NN; b++)
                if (a != b && !net_peer_reachable(rt_net(W.rt[a]), b))
                    all = false;
        if (all) {
            advance_ms(5000); /* the nodes have been up a while (uptime vs. key age) */
            return;
        }
    }
    CU_FAIL_FATAL("test nodes did not connect");
}

static void world_close(void)
{
    for (uint32_t i = 0; i < W.nheld; i++)
        rt_msg_free(W.rt[W.held[i].from], W.held[i].m);
    W.nheld = 0;
    for (uint32_t n = 1; n <= NN; n++) {
        txc_destroy(W.txc[n]);
        rt_destroy(W.rt[n]);
    }
    net_testnet_free(W.hub);
    dict_free(&W.d);
}

/* Crash node n: its transport vanishes and it is no longer stepped. */
static void crash(uint32_t n)
{
    net_testnet_crash(W.hub, n);
    W.down[n] = true;
}

#define CLIENT 0x5eed5eedull

static void tpcb(uint32_t node, net_addr conn, uint64_t req_id, uint64_t seq, uint32_t attempt,
                 int64_t aid, int64_t delta)
{
    struct rt_msg *m = rt_msg_new(W.rt[node], NINES__MSG_TYPE__TXN_REQ);
    Nines__TxnReq *b = RT_BODY(m, Nines__TxnReq, nines__txn_req__init);
    b->req_id = req_id;
    b->end = NINES__TXN_END__TXN_END_COMMIT;
    Nines__TpcbCall *c = rt_msg_alloc(m, sizeof *c);
    nines__tpcb_call__init(c);
    c->aid = aid;
    c->tid = aid % 10;
    c->bid = 0;
    c->delta = delta;
    b->proc_case = NINES__TXN_REQ__PROC_TPCB;
    b->tpcb = c;
    Nines__ReqKey *k = rt_msg_alloc(m, sizeof *k);
    nines__req_key__init(k);
    k->client = CLIENT;
    k->seq = seq;
    k->attempt = attempt;
    b->key = k;
    m->from = conn;
    rt_post_local(W.rt[node], RT_SVC_TXC, m);
}

/* Ask `node` for the outcome of keys seq[0..n) (attempt, sent_to each). */
static struct ans *ask(uint32_t node, net_addr conn, uint64_t req_id, size_t n,
                       const uint64_t *seq, uint32_t attempt, uint64_t sent_to, uint64_t age_ms,
                       int rounds)
{
    struct rt_msg *m = rt_msg_new(W.rt[node], NINES__MSG_TYPE__TXN_OUTCOME_REQ);
    Nines__TxnOutcomeReq *b = RT_BODY(m, Nines__TxnOutcomeReq, nines__txn_outcome_req__init);
    b->req_id = req_id;
    b->n_keys = n;
    b->keys = rt_msg_alloc(m, n * sizeof *b->keys);
    for (size_t i = 0; i < n; i++) {
        Nines__KeyQuery *q = rt_msg_alloc(m, sizeof *q);
        nines__key_query__init(q);
        Nines__ReqKey *k = rt_msg_alloc(m, sizeof *k);
        nines__req_key__init(k);
        k->client = CLIENT;
        k->seq = seq[i];
        k->attempt = attempt;
        q->key = k;
        q->sent_to = sent_to;
        q->age_ms = age_ms;
        b->keys[i] = q;
    }
    m->from = conn;
    rt_post_local(W.rt[node], RT_SVC_TXC, m);
    step(rounds);
    struct ans *a = answer(conn, req_id);
    if (a && a->type == NINES__MSG_TYPE__TXN_OUTCOME_REF)
        printf("\n  outcome question refused: %s\n", a->detail);
    return a;
}

static struct txc_key_stats kstats(uint32_t n)
{
    struct txc_key_stats s;
    txc_get_key_stats(W.txc[n], &s);
    return s;
}

/* A repeated key is answered from the table: same txn and value, nothing
 * runs again; the outcome from any node is COMMITTED with the value. */
static void test_repeat_and_committed(void)
{
    world_open();
    tpcb(1, CONN(1), 1, 100, 1, 17, 5);
    step(60);
    struct ans *a = answer(CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL_FATAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(a->value, 1005);
    uint64_t txn = a->txn, ops = 0;
    for (uint32_t n = 1; n <= NN; n++)
        ops += W.fk[n].ops;
    /* the same key again, on another connection of the same node */
    tpcb(1, CONN(2), 2, 100, 1, 17, 5);
    step(20);
    struct ans *b = answer(CONN(2), 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(b->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(b->txn, txn);
    CU_ASSERT_EQUAL(b->value, 1005);
    uint64_t ops2 = 0;
    for (uint32_t n = 1; n <= NN; n++)
        ops2 += W.fk[n].ops;
    CU_ASSERT_EQUAL(ops2, ops); /* no kernel saw it again */
    CU_ASSERT_EQUAL(kstats(1).answered_stored, 1);
    /* a higher attempt is answered the same way */
    tpcb(1, CONN(2), 3, 100, 2, 17, 5);
    step(20);
    b = answer(CONN(2), 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(b->txn, txn);
    /* every node answers COMMITTED with the value (node 3 holds no entry:
     * the ctl and the hsc do) */
    uint64_t seq = 100;
    for (uint32_t n = 1; n <= NN; n++) {
        struct ans *o = ask(n, CONN(10 + n), 50 + n, 1, &seq, 1, RT_NODE_BIT(1), 10, 30);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT_EQUAL(o->type, NINES__MSG_TYPE__TXN_OUTCOME_CONF);
        CU_ASSERT_EQUAL(o->k[0].outcome, NINES__KEY_OUTCOME__KEY_COMMITTED);
        CU_ASSERT_EQUAL(o->k[0].txn, txn);
        CU_ASSERT_EQUAL(o->k[0].value, 1005);
    }
    world_close();
}

static uint64_t kernel_commits(void)
{
    uint64_t c = 0;
    for (uint32_t n = 1; n <= NN; n++)
        c += W.fk[n].commits;
    return c;
}

/* The node of site 1 that took the START of the transaction (its hsc). */
static uint32_t the_hsc(void)
{
    uint32_t h = 0;
    for (uint32_t n = 2; n <= NN; n += 2) {
        struct txc_stats st;
        txc_get_stats(W.txc[n], &st);
        if (st.hsc_started)
            h = h ? 99 : n;
    }
    CU_ASSERT_FATAL(h == 2 || h == 4);
    return h;
}

/* A key that reached no node: NOT_COMMITTED once every node that could
 * have decided it vouched (and fenced it); that attempt arriving late is
 * refused, the next attempt runs. One question, two keys: answers are
 * parallel to the keys. */
static void test_not_committed_and_fence(void)
{
    world_open();
    tpcb(1, CONN(1), 1, 100, 1, 3, 1);
    step(60);
    CU_ASSERT_PTR_NOT_NULL_FATAL(answer(CONN(1), 1));
    uint64_t seqs[2] = {100, 200};
    struct ans *o = ask(3, CONN(9), 9, 2, seqs, 1, RT_NODE_BIT(1), 50, 30);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->nkeys, 2);
    CU_ASSERT_EQUAL(o->k[0].outcome, NINES__KEY_OUTCOME__KEY_COMMITTED);
    CU_ASSERT_EQUAL(o->k[1].outcome, NINES__KEY_OUTCOME__KEY_NOT_COMMITTED);
    /* the asked attempt arriving now (a request that was still on its way)
     * is refused; a newer attempt runs and commits */
    tpcb(1, CONN(2), 2, 200, 1, 4, 1);
    step(20);
    struct ans *a = answer(CONN(2), 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_EQUAL(a->error, NINES_EABORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->detail, "attempt 1"));
    tpcb(1, CONN(2), 3, 200, 2, 4, 1);
    step(60);
    a = answer(CONN(2), 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(a->value, 1001);
    world_close();
}

/* The fence at the deciders: the ctl's START is delayed, the client asks
 * a node that cannot reach the ctl; both nodes of the other site have not
 * seen the key, so it is declared NOT_COMMITTED — and the START arriving
 * afterwards is refused (ABORT recorded), so it never commits. */
static void test_late_start_refused(void)
{
    world_open();
    W.hold_type = NINES__MSG_TYPE__TXC_START_REQ;
    W.hold_from = 1;
    tpcb(1, CONN(1), 1, 300, 1, 5, 2);
    step(10);
    CU_ASSERT_EQUAL_FATAL(W.nheld, 1);
    net_testnet_partition(W.hub, 1, 3, true);
    step(5);
    uint64_t seq = 300;
    struct ans *o = ask(3, CONN(9), 9, 1, &seq, 1, RT_NODE_BIT(1), 20, 10);
    if (!o) { /* node 1 did not answer: the question's deadline */
        advance_ms(TIMEOUT_MS / 2 + 10);
        o = answer(CONN(9), 9);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->k[0].outcome, NINES__KEY_OUTCOME__KEY_NOT_COMMITTED);
    uint64_t c0 = kernel_commits();
    release_held();
    step(60);
    struct ans *a = answer(CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_EQUAL(kernel_commits(), c0);
    CU_ASSERT_EQUAL(kstats(2).start_refused + kstats(4).start_refused, 1);
    /* asked again: still not committed, now as an aborted attempt */
    net_testnet_partition(W.hub, 1, 3, false);
    o = ask(3, CONN(8), 10, 1, &seq, 1, RT_NODE_BIT(1), 20, 60);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT(o->k[0].outcome == NINES__KEY_OUTCOME__KEY_ABORTED);
    world_close();
}

/* The ctl dies after START, before the hsc decided: IN_PROGRESS while it
 * may still be deciding; once it left the node set the hsc records ABORT
 * (its own node-set handling): ABORTED; a ctl still a member whose timeout
 * passed without it asking: the question makes the hsc record ABORT. */
static void test_ctl_dies_undecided(void)
{
    world_open();
    W.hold_sready = true; /* the hsc waits for the standbys: undecided */
    tpcb(1, CONN(1), 1, 400, 1, 6, 3);
    tpcb(3, CONN(3), 2, 401, 1, 7, 3);
    step(30);
    crash(1);
    crash(3);
    step(5);
    uint64_t seq[2] = {400, 401};
    struct ans *o = ask(2, CONN(9), 9, 2, seq, 1, 0, 20, 10);
    if (!o) {
        advance_ms(TIMEOUT_MS / 2 + 10);
        o = answer(CONN(9), 9);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->k[0].outcome, NINES__KEY_OUTCOME__KEY_IN_PROGRESS);
    CU_ASSERT_EQUAL(o->k[1].outcome, NINES__KEY_OUTCOME__KEY_IN_PROGRESS);
    /* both ctls are still members (dead, not evicted yet): once the ctl's
     * own timeout passed without it asking, a question aborts at the hsc */
    advance_ms(TIMEOUT_MS + 10);
    o = ask(4, CONN(7), 11, 1, &seq[1], 1, RT_NODE_BIT(3), 20, 10);
    if (!o) {
        advance_ms(TIMEOUT_MS / 2 + 10);
        o = answer(CONN(7), 11);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->k[0].outcome, NINES__KEY_OUTCOME__KEY_ABORTED);
    uint64_t orphans = kstats(2).orphans_aborted + kstats(4).orphans_aborted;
    CU_ASSERT_EQUAL(orphans, 1);
    /* node 1 leaves the node set: its hsc finishes its transaction (ABORT,
     * txctl/README.md "Node sets"), and the key says so */
    install(2, 0xe, 0xa); /* on nodes 2 and 4 (1 and 3 are dead) */
    o = ask(2, CONN(8), 10, 1, &seq[0], 1, RT_NODE_BIT(1), 20, 10);
    if (!o) {
        advance_ms(TIMEOUT_MS / 2 + 10);
        o = answer(CONN(8), 10);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->k[0].outcome, NINES__KEY_OUTCOME__KEY_ABORTED);
    world_close();
}

/* Never "not committed" where the cluster cannot know: a committed key
 * whose ctl and hsc both died is UNKNOWN (the survivors have not seen it);
 * a key older than the nodes' uptime (they may have restarted since) is
 * UNKNOWN; a node outside the node set refuses to answer. */
static void test_unknown(void)
{
    world_open();
    tpcb(1, CONN(1), 1, 500, 1, 8, 4);
    step(60);
    struct ans *a = answer(CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL_FATAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    uint32_t h = the_hsc();
    crash(1);
    crash(h);
    step(5);
    uint64_t seq = 500;
    struct ans *o = ask(3, CONN(9), 9, 1, &seq, 1, RT_NODE_BIT(1), 20, 10);
    if (!o) {
        advance_ms(TIMEOUT_MS / 2 + 10);
        o = answer(CONN(9), 9);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->k[0].outcome, NINES__KEY_OUTCOME__KEY_UNKNOWN);
    char want[16];
    snprintf(want, sizeof want, "%u", h);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->k[0].detail, want));
    /* a key sent 10 hours ago: every node started since */
    uint64_t old = 600;
    o = ask(3, CONN(8), 10, 1, &old, 1, RT_NODE_BIT(3), 36000000, 10);
    if (!o) {
        advance_ms(TIMEOUT_MS / 2 + 10);
        o = answer(CONN(8), 10);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->k[0].outcome, NINES__KEY_OUTCOME__KEY_UNKNOWN);
    /* outside the node set: refused, naming the reason */
    struct rt_nodeset ns = {.epoch = 2, .members = 0x5, .current = 0x5, .coordinator = 1,
                            .member = false, .serving = false};
    snprintf(ns.reason, sizeof ns.reason, "cut off from the majority");
    rt_install_nodeset(W.rt[3], &ns);
    o = ask(3, CONN(7), 11, 1, &old, 1, RT_NODE_BIT(3), 20, 5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->type, NINES__MSG_TYPE__TXN_OUTCOME_REF);
    CU_ASSERT_EQUAL(o->error, NINES_ENOTMEMBER);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->detail, "majority"));
    world_close();
}

void cu_register(void)
{
    CU_pSuite s = CU_add_suite("txo_table", NULL, NULL);
    CU_add_test(s, "a repeated key: busy while it runs, the stored commit after", test_table_dedup);
    CU_add_test(s, "attempts and fences: stale attempts refused, newer ones run",
                test_table_attempts_and_fences);
    CU_add_test(s, "aging: decided keys leave after keep_ms, running ones stay",
                test_table_aging);
    CU_add_test(s, "count bound: the oldest decided key leaves, dropped keys are not guessed",
                test_table_count);
    s = CU_add_suite("txo_world", NULL, NULL);
    CU_add_test(s, "a repeated key is answered from the table; every node says committed",
                test_repeat_and_committed);
    CU_add_test(s, "a key no node saw: not committed, fenced, the next attempt runs",
                test_not_committed_and_fence);
    CU_add_test(s, "a START arriving after 'not committed' is refused (ABORT)",
                test_late_start_refused);
    CU_add_test(s, "the ctl dies undecided: in progress, then aborted by the hsc",
                test_ctl_dies_undecided);
    CU_add_test(s, "unknown where the cluster cannot know; a non-member refuses",
                test_unknown);
}
