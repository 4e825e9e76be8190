/* Kernel service and update channel over the in-process test transport:
 * four nodes (two per site), each with supervisor, dictionary service, kernel
 * service and update channel wired as in ninesd; a table created through the dictionary; a
 * fake transaction controller (this file's own message-table rows) drives
 * KERN_OP_REQ / PREPARE / COMMIT / ABORT and compares replica digests. */
#include "cu_test.h"

#include "conf.h"
#include "nassert.h"
#include "nines/errors.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "nlog.h"
#include "scram.h"

#include "../../kernel/kern_key.h"
#include "../../kernel/kern_frag.h"
#include "../../kernel/kern_log.h"
#include "../../net/testnet.h"
#include "../../dict/svc/dsvc.h"
#include "../../kernel/svc/ksvc.h"
#include "../../supervisor/sup.h"
#include "../../updchan/upd.h"
#include "conv_cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NN 4
#define CTL 1 /* the fake controller's node */
#define HSC 2 /* the fake hot-standby controller's node (other site) */
#define NFRAGS 8
#define MAXMSG 8192
#define TAB_MAX NINES__MSG_TYPE__TAKEBACK_REF /* the node's table up to here */

/* ---- the fake controller: keeps every answer it gets ---- */
struct ft {
    struct rt *rt;
    void (*hook)(uint32_t node, struct rt_msg *m); /* set: messages go here, not kept */
    uint32_t node;
    struct rt_msg *msgs[MAXMSG];
    int n;
};

static void ft_on_msg(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ft *f = st;
    if (m->type < NINES__MSG_TYPE__TXN_REQ || m->type > TAB_MAX)
        return;
    if (f->hook) {
        f->hook(f->node, m);
        return;
    }
    CU_ASSERT_FATAL(f->n < MAXMSG);
    rt_msg_keep(m);
    f->msgs[f->n++] = m;
}

struct node {
    struct rt *rt;
    struct sup sup;
    struct dsvc *dict;
    struct upd *upd;
    struct ksvc *kern;
    struct ft ft;
};

/* ninesd's wiring: the kernel service hears of every install. */
static void kern_dict_installed(void *kern, const struct dict *d, bool live_commit)
{
    ksvc_dict_changed(kern, d, live_commit);
}

static struct {
    struct nines_conf cfg;
    struct net_testnet *hub;
    struct node n[NN + 1];
    struct rt_msg_entry tab[TAB_MAX + 1];
    uint32_t table;
    uint64_t epoch;   /* the node set installed last (by sup_init: 1) */
    uint64_t cur;     /* its current members: roles are computed over these */
    uint64_t mem;     /* its members when they differ from cur (0: cur) */
    uint64_t sbo;     /* its standby-only nodes */
    uint64_t since[NN + 1]; /* standby-only: the epoch each became current */
} W;
/* The self-repair suite's repair_after_ms (0 for the other suites: never). */
static uint32_t g_repair_after_ms;

static uint64_t msg_txn(const struct rt_msg *m)
{
    switch (m->type) {
    case NINES__MSG_TYPE__KERN_OP_CONF:
        return ((const Nines__KernOpConf *)m->body)->txn;
    case NINES__MSG_TYPE__KERN_OP_REF:
        return ((const Nines__KernOpRef *)m->body)->txn;
    case NINES__MSG_TYPE__PREPARE_CONF:
        return ((const Nines__PrepareConf *)m->body)->txn;
    case NINES__MSG_TYPE__PREPARE_REF:
        return ((const Nines__PrepareRef *)m->body)->txn;
    case NINES__MSG_TYPE__READY_IND:
        return ((const Nines__ReadyInd *)m->body)->txn;
    case NINES__MSG_TYPE__COMMIT_CONF:
        return ((const Nines__CommitConf *)m->body)->txn;
    case NINES__MSG_TYPE__ABORT_CONF:
        return ((const Nines__AbortConf *)m->body)->txn;
    case NINES__MSG_TYPE__TXC_OUTCOME_REQ:
        return ((const Nines__TxcOutcomeReq *)m->body)->txn;
    default:
        return 0;
    }
}

/* Messages of `type` for txn at node's fake controller (txn 0: any). */
static int ft_count(uint32_t node, uint32_t type, uint64_t txn)
{
    int c = 0;
    struct ft *f = &W.n[node].ft;
    for (int i = 0; i < f->n; i++)
        if (f->msgs[i]->type == type && (!txn || msg_txn(f->msgs[i]) == txn))
            c++;
    return c;
}

static const void *ft_find(uint32_t node, uint32_t type, uint64_t txn, int nth)
{
    struct ft *f = &W.n[node].ft;
    for (int i = 0; i < f->n; i++)
        if (f->msgs[i]->type == type && (!txn || msg_txn(f->msgs[i]) == txn) && nth-- == 0)
            return f->msgs[i]->body;
    return NULL;
}

/* The nth standby READY_IND (standby = 1) of txn at node, or NULL. */
static const Nines__ReadyInd *sready_find(uint32_t node, uint64_t txn, int nth)
{
    for (int i = 0;; i++) {
        const Nines__ReadyInd *ri = ft_find(node, NINES__MSG_TYPE__READY_IND, txn, i);
        if (!ri || (ri->standby && nth-- == 0))
            return ri;
    }
}

/* Primary READY_INDs (standby = 0) of txn at node. */
static int preadies_at(uint32_t node, uint64_t txn)
{
    int c = 0;
    for (int i = 0;; i++) {
        const Nines__ReadyInd *ri = ft_find(node, NINES__MSG_TYPE__READY_IND, txn, i);
        if (!ri)
            return c;
        c += !ri->standby;
    }
}

static void ft_clear(uint32_t node)
{
    struct ft *f = &W.n[node].ft;
    for (int i = 0; i < f->n; i++)
        rt_msg_free(W.n[node].rt, f->msgs[i]);
    f->n = 0;
}

/* ---- driving the world ---- */
/* One round: every node runs a loop turn, then the transport's and the
 * executors' clocks move 200 µs (timers fire by the moved clock, so
 * acknowledgement batching and resend intervals are steps, not waits). */
#define STEP_US 200
static void step_nodes(unsigned mask)
{
    for (uint32_t i = 1; i <= NN; i++)
        if (mask & (1u << i))
            rt_step(W.n[i].rt, 0);
    for (uint32_t i = 1; i <= NN; i++)
        (void)rt_fault_advance_clock(W.n[i].rt, STEP_US); /* FAULTS=1 test builds */
    net_testnet_advance(W.hub, STEP_US);
}

static void step(void) { step_nodes(~0u); }

static void run(int rounds)
{
    for (int i = 0; i < rounds; i++)
        step();
}

#define RUN_UNTIL(cond, max)                                                                       \
    do {                                                                                           \
        for (int r_ = 0; r_ < (max) && !(cond); r_++)                                              \
            step();                                                                                \
    } while (0)

static bool all_connected(void)
{
    for (uint32_t a = 1; a <= NN; a++)
        for (uint32_t b = 1; b <= NN; b++)
            if (a != b && !net_peer_reachable(rt_net(W.n[a].rt), b))
                return false;
    return true;
}

static bool all_have_table(void)
{
    for (uint32_t i = 1; i <= NN; i++)
        if (dsvc_current(W.n[i].dict)->ntables != 1 || ksvc_nreplicas(W.n[i].kern) != 4)
            return false;
    return true;
}

/* DICT_CHANGE_REQ creating table `name` (the layout of "acct"), sent by
 * node 2 to the coordinator, node 1. */
static int send_create_table(const char *name)
{
    struct rt *rt = W.n[2].rt; /* sent by node 2 to the coordinator, node 1 */
    struct rt_msg *m = rt_msg_new(rt, NINES__MSG_TYPE__DICT_CHANGE_REQ);
    Nines__DictChangeReq *q = RT_BODY(m, Nines__DictChangeReq, nines__dict_change_req__init);
    Nines__DictChange *c = rt_msg_alloc(m, sizeof *c);
    Nines__DictTableDef *d = rt_msg_alloc(m, sizeof *d);
    Nines__DictColumn *cols = rt_msg_alloc(m, 4 * sizeof *cols);
    Nines__DictColumn **cp = rt_msg_alloc(m, 4 * sizeof *cp);
    uint32_t *pk = rt_msg_alloc(m, sizeof *pk);
    nines__dict_change__init(c);
    nines__dict_table_def__init(d);
    static const struct {
        const char *name;
        uint32_t type, size;
        bool nullable;
    } cd[4] = {{"k", 2, 0, false}, {"v", 2, 0, false}, {"s", 5, 32, true}, {"f", 4, 8, false}};
    for (int i = 0; i < 4; i++) {
        nines__dict_column__init(&cols[i]);
        cols[i].name = (char *)cd[i].name;
        cols[i].type = cd[i].type;
        cols[i].size = cd[i].size;
        cols[i].nullable = cd[i].nullable;
        cp[i] = &cols[i];
    }
    pk[0] = 0;
    d->name = (char *)name;
    d->columns = cp;
    d->n_columns = 4;
    d->pk = pk;
    d->n_pk = 1;
    d->method = 1;
    d->nfrags = NFRAGS;
    d->replicas = 2;
    d->scheme = 1;
    c->op = NINES__DICT_OP__DICT_OP_CREATE_TABLE;
    c->table = d;
    q->change = c;
    q->origin = 2;
    q->ref = 1;
    return rt_send(rt, 1, RT_SVC_DICT, m) ? 1 : 0;
}

static int create_table(void)
{
    if (send_create_table("acct"))
        return 1;
    RUN_UNTIL(all_have_table(), 20000);
    const struct dict_table *t = dict_table_by_name(dsvc_current(W.n[1].dict), "acct");
    if (!all_have_table() || !t) {
        fprintf(stderr, "the table did not reach every node's kernel\n");
        return 1;
    }
    W.table = t->id;
    return 0;
}

static int suite_init(void)
{
    nlog_set_level(getenv("KT_DEBUG") ? NLOG_DEBUG : NLOG_WARN);
    memset(&W, 0, sizeof W);
    struct nines_conf *c = &W.cfg;
    snprintf(c->cluster, sizeof c->cluster, "kerntest");
    c->nnodes = NN;
    for (uint32_t i = 0; i < NN; i++) {
        c->nodes[i].id = i + 1;
        c->nodes[i].site = i % 2;
        snprintf(c->nodes[i].host, sizeof c->nodes[i].host, "127.0.0.1");
        c->nodes[i].port = (uint16_t)(7100 + i);
    }
    c->heartbeat_ms = 50;
    c->repair_after_ms = g_repair_after_ms;
    c->takeback = true; /* as the cluster file's default: reintegration waits for it */
    c->txn_timeout_ms = 100; /* a prepared kernel asks for the outcome after 300 ms */
    c->heartbeat_misses = 20;
    c->reconnect_min_ms = 5;
    c->reconnect_max_ms = 100;
    c->max_frame_bytes = 1u << 20;
    c->send_queue_bytes = 16u << 20;
    W.epoch = SUP_EPOCH_INITIAL;
    for (uint32_t i = 1; i <= NN; i++)
        W.cur |= RT_NODE_BIT(i);
    snprintf(c->transport, sizeof c->transport, "tcp");
    if (net_testnet_new(&W.hub, c, cu_seed(5)))
        return 1;
    /* the node's table, with this file's fake controller for the txctl rows */
    for (uint32_t i = 0; i < sup_msgtab_len && i <= TAB_MAX; i++)
        W.tab[i] = sup_msgtab[i];
    for (uint32_t t = NINES__MSG_TYPE__TXN_REQ; t <= TAB_MAX; t++)
        if (W.tab[t].svc == RT_SVC_TXC)
            W.tab[t].fn = ft_on_msg;
    W.tab[NINES__MSG_TYPE__KERN_DIGEST_CONF] =
        (struct rt_msg_entry){"KERN_DIGEST_CONF", &nines__kern_digest_conf__descriptor,
                              RT_SVC_TXC, ft_on_msg, RT_FROM_NODE, RT_EPOCH_ANY};
    /* the takeback answers come to this file's fake coordinator (the test
     * sends TAKEBACK_REQ from a node that drains nothing) */
    W.tab[NINES__MSG_TYPE__TAKEBACK_CONF] =
        (struct rt_msg_entry){"TAKEBACK_CONF", &nines__takeback_conf__descriptor, RT_SVC_TXC,
                              ft_on_msg, RT_FROM_NODE, RT_EPOCH_SAME};
    W.tab[NINES__MSG_TYPE__TAKEBACK_REF] =
        (struct rt_msg_entry){"TAKEBACK_REF", &nines__takeback_ref__descriptor, RT_SVC_TXC,
                              ft_on_msg, RT_FROM_NODE, RT_EPOCH_SAME};
    for (uint32_t i = 1; i <= NN; i++) {
        struct node *n = &W.n[i];
        struct net_transport *tr;
        if (net_testnet_transport(W.hub, i, &tr))
            return 1;
        struct rt_config rc = {.self = i, .conf = c, .transport = tr, .msgtab = W.tab,
                               .msgtab_len = TAB_MAX + 1};
        if (rt_create(&n->rt, &rc) || sup_init_static(&n->sup, n->rt) || dsvc_create(&n->dict, n->rt) ||
            upd_init(&n->upd, n->rt) ||
            ksvc_init(&n->kern, n->rt,
                      &(struct ksvc_config){.upd = n->upd, .dict = dsvc_current_fn,
                                            .dict_ctx = n->dict}) ||
            dsvc_subscribe_install(n->dict, kern_dict_installed, n->kern))
            return 1;
        n->ft.rt = n->rt;
        n->ft.node = i;
        if (rt_task_add(n->rt, RT_SVC_TXC, "fake-txc", ft_on_msg, &n->ft) ||
            rt_task_add(n->rt, RT_SVC_APP, "fake-app", ft_on_msg, &n->ft))
            return 1;
    }
    RUN_UNTIL(all_connected(), 5000);
    if (!all_connected())
        return 1;
    return create_table();
}

static int suite_fini(void)
{
    for (uint32_t i = 1; i <= NN; i++) {
        struct node *n = &W.n[i];
        if (n->rt)
            ft_clear(i);
        rt_destroy(n->rt);
        ksvc_fini(n->kern);
        upd_fini(n->upd);
        dsvc_destroy(n->dict);
    }
    net_testnet_free(W.hub);
    return 0;
}

/* ---- building requests ---- */
struct where {
    uint32_t frag, primary, standby;
};

static struct where route_t(uint32_t table, int64_t k)
{
    const struct dict_table *t = dict_table_by_id(dsvc_current(W.n[1].dict), table);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    struct kern_col kc = {.type = KERN_T_INT64};
    struct kern_val v = kern_v_i64(k);
    uint8_t key[32];
    int len = kern_key_encode(&kc, 1, &v, key, sizeof key);
    CU_ASSERT_FATAL(len > 0);
    int f = dict_route(t, key, (size_t)len);
    CU_ASSERT_FATAL(f >= 0);
    /* the roles in the installed node set (what the kernels serve) */
    struct dict_roles ro;
    uint64_t since[65] = {0};
    memcpy(since, W.since, sizeof W.since);
    struct dict_live live = {.members = W.mem ? W.mem : W.cur, .current = W.cur,
                             .standby_only = W.sbo, .since = since};
    CU_ASSERT_EQUAL_FATAL(dict_frag_roles_live(dsvc_current(W.n[1].dict), t, (uint32_t)f, &live,
                                               &ro),
                          0);
    struct where w = {(uint32_t)f, ro.primary, ro.standby};
    return w;
}

static struct where route(int64_t k) { return route_t(W.table, k); }

struct req {
    struct rt_msg *m;
    Nines__KernOpReq *q;
    uint32_t node;
    uint32_t table;
};

#define MAXOPS 64

static struct req req_new(uint32_t node, uint64_t txn, bool prepare)
{
    struct req r = {.node = node, .table = W.table};
    r.m = rt_msg_new(W.n[CTL].rt, NINES__MSG_TYPE__KERN_OP_REQ);
    r.q = RT_BODY(r.m, Nines__KernOpReq, nines__kern_op_req__init);
    r.q->txn = txn;
    r.q->ctl = CTL;
    r.q->hsc = HSC;
    r.q->prepare = prepare;
    r.q->parts = rt_msg_alloc(r.m, MAXOPS * sizeof *r.q->parts);
    r.q->ops = rt_msg_alloc(r.m, MAXOPS * sizeof *r.q->ops);
    r.q->keys = rt_msg_alloc(r.m, MAXOPS * sizeof *r.q->keys);
    return r;
}

static Nines__Value *v_i64(struct rt_msg *m, int64_t x)
{
    Nines__Value *v = rt_msg_alloc(m, sizeof *v);
    nines__value__init(v);
    v->v_case = NINES__VALUE__V_I64;
    v->i64 = x;
    return v;
}

static Nines__Value *v_str(struct rt_msg *m, const char *s)
{
    Nines__Value *v = rt_msg_alloc(m, sizeof *v);
    nines__value__init(v);
    v->v_case = NINES__VALUE__V_STR;
    v->str = (char *)s;
    return v;
}

/* Add an op on key k; INSERT/UPDATE rows are (k, v, "row-k", "ab      "); a
 * non-NULL bad_v puts that string in the int64 column v. */
static void req_op(struct req *r, Nines__OpType op, int64_t k, int64_t v, const char *bad_v)
{
    struct where w = route_t(r->table, k);
    CU_ASSERT_EQUAL_FATAL(w.primary, r->node);
    Nines__KernOpReq *q = r->q;
    size_t i = q->n_ops;
    CU_ASSERT_FATAL(i < MAXOPS);
    Nines__Participant *p = rt_msg_alloc(r->m, sizeof *p);
    nines__participant__init(p);
    p->table = r->table;
    p->frag = w.frag;
    p->primary = w.primary;
    p->standby = w.standby;
    Nines__RecordOp *o = rt_msg_alloc(r->m, sizeof *o);
    nines__record_op__init(o);
    o->op = op;
    o->table_id = r->table;
    o->key = rt_msg_alloc(r->m, sizeof *o->key);
    o->key[0] = v_i64(r->m, k);
    o->n_key = 1;
    if (op == NINES__OP_TYPE__OP_INSERT || op == NINES__OP_TYPE__OP_UPDATE) {
        Nines__Row *row = rt_msg_alloc(r->m, sizeof *row);
        nines__row__init(row);
        row->values = rt_msg_alloc(r->m, 4 * sizeof *row->values);
        char *s = rt_msg_alloc(r->m, 24);
        snprintf(s, 24, "row-%lld", (long long)k);
        row->values[0] = v_i64(r->m, k);
        row->values[1] = bad_v ? v_str(r->m, bad_v) : v_i64(r->m, v);
        row->values[2] = v_str(r->m, s);
        row->values[3] = v_str(r->m, "ab      "); /* string(8): exact width */
        row->n_values = 4;
        o->row = row;
    }
    if (op == NINES__OP_TYPE__OP_ADD) {
        o->column = 1;
        o->delta = v;
    }
    /* the controller's encoded key (every other op; the rest use the values) */
    ProtobufCBinaryData kb = {0, NULL};
    if (i % 2 == 0) {
        struct kern_col kc = {.type = KERN_T_INT64};
        struct kern_val kv = kern_v_i64(k);
        uint8_t *buf = rt_msg_alloc(r->m, 16);
        int len = kern_key_encode(&kc, 1, &kv, buf, 16);
        CU_ASSERT_FATAL(len > 0);
        kb.data = buf;
        kb.len = (size_t)len;
    }
    q->parts[i] = p;
    q->ops[i] = o;
    q->keys[i] = kb;
    q->n_ops = q->n_parts = q->n_keys = i + 1;
}

static void req_send(struct req *r)
{
    CU_ASSERT_EQUAL(rt_send(W.n[CTL].rt, r->node, RT_SVC_KERN, r->m), 0);
}

/* COMMIT_REQ (with the decision's commit epoch gci) or ABORT_REQ. */
static void send_end_gci(uint32_t node, uint64_t txn, bool commit, uint64_t gci)
{
    struct rt_msg *m = rt_msg_new(W.n[CTL].rt, commit ? NINES__MSG_TYPE__COMMIT_REQ
                                                      : NINES__MSG_TYPE__ABORT_REQ);
    if (commit) {
        Nines__CommitReq *b = RT_BODY(m, Nines__CommitReq, nines__commit_req__init);
        b->txn = txn;
        b->gci = gci;
    } else {
        Nines__AbortReq *b = RT_BODY(m, Nines__AbortReq, nines__abort_req__init);
        b->txn = txn;
    }
    CU_ASSERT_EQUAL(rt_send(W.n[CTL].rt, node, RT_SVC_KERN, m), 0);
}

static void send_end(uint32_t node, uint64_t txn, bool commit)
{
    send_end_gci(node, txn, commit, 0);
}

/* Single-op transaction helper: returns the answer type. */
static const Nines__KernOpConf *one_op(uint64_t txn, Nines__OpType op, int64_t k, int64_t v,
                                       bool prepare)
{
    struct req r = req_new(route(k).primary, txn, prepare);
    req_op(&r, op, k, v, NULL);
    req_send(&r);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn) +
                  ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, txn) > 0,
              2000);
    return ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn, 0);
}

static void end_txn(uint64_t txn, uint32_t node, bool commit)
{
    uint32_t type = commit ? NINES__MSG_TYPE__COMMIT_CONF : NINES__MSG_TYPE__ABORT_CONF;
    int before = ft_count(CTL, type, txn);
    send_end(node, txn, commit);
    RUN_UNTIL(ft_count(CTL, type, txn) > before, 2000);
    CU_ASSERT_EQUAL(ft_count(CTL, type, txn), before + 1);
}

/* ---- digests: every primary equals its standby ---- */
struct digest {
    bool have[2];
    uint64_t rows[2], digest[2], next_lsn[2];
};

static uint64_t check_digests_t(uint32_t table)
{
    run(300); /* commit/abort records shipped and redone */
    ft_clear(CTL);
    for (uint32_t i = 1; i <= NN; i++) {
        struct rt_msg *m = rt_msg_new(W.n[CTL].rt, NINES__MSG_TYPE__KERN_DIGEST_REQ);
        Nines__KernDigestReq *b = RT_BODY(m, Nines__KernDigestReq, nines__kern_digest_req__init);
        b->table = table;
        CU_ASSERT_EQUAL(rt_send(W.n[CTL].rt, i, RT_SVC_KERN, m), 0);
    }
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0) == NN, 2000);
    CU_ASSERT_EQUAL_FATAL(ft_count(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0), NN);
    struct digest d[NFRAGS];
    memset(d, 0, sizeof d);
    for (int j = 0; j < NN; j++) {
        const Nines__KernDigestConf *c = ft_find(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0, j);
        CU_ASSERT_EQUAL(c->n_replicas, 4);
        for (size_t r = 0; r < c->n_replicas; r++) {
            const Nines__ReplicaDigest *x = c->replicas[r];
            CU_ASSERT_FATAL(x->frag < NFRAGS);
            int s = x->primary ? 0 : 1;
            CU_ASSERT_FALSE(d[x->frag].have[s]);
            d[x->frag].have[s] = true;
            d[x->frag].rows[s] = x->rows;
            d[x->frag].digest[s] = x->digest;
            d[x->frag].next_lsn[s] = x->next_lsn;
        }
    }
    uint64_t rows = 0;
    for (int f = 0; f < NFRAGS; f++) {
        CU_ASSERT_TRUE(d[f].have[0] && d[f].have[1]);
        CU_ASSERT_EQUAL(d[f].rows[0], d[f].rows[1]);
        CU_ASSERT_EQUAL(d[f].digest[0], d[f].digest[1]);
        CU_ASSERT_EQUAL(d[f].next_lsn[0], d[f].next_lsn[1]);
        rows += d[f].rows[0];
    }
    ft_clear(CTL);
    return rows;
}

static uint64_t check_digests(void) { return check_digests_t(W.table); }

/* GET k in a fresh transaction (committed at once): v, or -999 when absent. */
static int64_t get_v(uint64_t txn, int64_t k, char *s_out, size_t s_cap)
{
    const Nines__KernOpConf *c = one_op(txn, NINES__OP_TYPE__OP_GET, k, 0, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(c->n_results, 1);
    int64_t v = -999;
    if (c->results[0]->status == 0) {
        CU_ASSERT_EQUAL_FATAL(c->results[0]->n_rows, 1);
        const Nines__Row *row = c->results[0]->rows[0];
        CU_ASSERT_EQUAL_FATAL(row->n_values, 4);
        CU_ASSERT_EQUAL(row->values[0]->i64, k);
        v = row->values[1]->i64;
        if (s_out)
            snprintf(s_out, s_cap, "%s|%s", row->values[2]->str, row->values[3]->str);
    } else {
        CU_ASSERT_EQUAL(c->results[0]->status, NINES_ENOTFOUND);
    }
    end_txn(txn, route(k).primary, true);
    return v;
}

static uint64_t acks_in_total(void)
{
    uint64_t n = 0;
    struct upd_stats us;
    for (uint32_t i = 1; i <= NN; i++) {
        upd_get_stats(W.n[i].upd, &us);
        n += us.acks_in;
    }
    return n;
}

/* ---- tests ---- */

static void test_commit_replicates(void)
{
    const uint64_t txn = 1001;
    struct req r[NN + 1];
    bool used[NN + 1] = {false};
    for (uint32_t i = 1; i <= NN; i++)
        r[i] = req_new(i, txn, true);
    uint32_t frag_recs[NFRAGS] = {0};
    for (int64_t k = 0; k < 40; k++) {
        struct where w = route(k);
        req_op(&r[w.primary], NINES__OP_TYPE__OP_INSERT, k, k * 10, NULL);
        used[w.primary] = true;
        frag_recs[w.frag]++;
    }
    int nodes = 0, frags = 0;
    for (uint32_t i = 1; i <= NN; i++) {
        if (used[i]) {
            req_send(&r[i]);
            nodes++;
        } else {
            rt_msg_free(W.n[CTL].rt, r[i].m);
        }
    }
    for (int f = 0; f < NFRAGS; f++)
        frags += frag_recs[f] > 0;
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn) == nodes &&
                  ft_count(HSC, NINES__MSG_TYPE__READY_IND, txn) == frags,
              5000);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, txn), 0);
    CU_ASSERT_EQUAL_FATAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn), nodes);
    uint32_t total = 0;
    for (int j = 0; j < nodes; j++) {
        const Nines__KernOpConf *c = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn, j);
        CU_ASSERT_TRUE(c->ready);
        for (size_t i = 0; i < c->n_results; i++)
            CU_ASSERT_EQUAL(c->results[i]->status, 0);
        for (size_t i = 0; i < c->n_frags; i++) {
            CU_ASSERT_EQUAL(c->frags[i]->nrecords, frag_recs[c->frags[i]->frag]);
            CU_ASSERT_EQUAL(c->frags[i]->standby, route(0).standby * 0 + c->frags[i]->standby);
            CU_ASSERT_NOT_EQUAL(c->frags[i]->standby, 0);
            total += c->frags[i]->nrecords;
        }
    }
    CU_ASSERT_EQUAL(total, 40);
    /* readiness goes to the hsc only (the commit point): one READY_IND per
     * prepared primary kernel, one per standby fragment with records */
    run(50);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__READY_IND, txn), 0);
    int nused = 0;
    for (uint32_t i = 1; i <= NN; i++)
        nused += used[i] != 0;
    CU_ASSERT_EQUAL(preadies_at(HSC, txn), nused);
    CU_ASSERT_EQUAL(ft_count(HSC, NINES__MSG_TYPE__READY_IND, txn), frags + nused);
    for (int j = 0; j < frags; j++) {
        const Nines__ReadyInd *ri = sready_find(HSC, txn, j);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ri);
        CU_ASSERT_TRUE(ri->standby);
        const struct dict_table *t = dict_table_by_id(dsvc_current(W.n[1].dict), W.table);
        CU_ASSERT_EQUAL(ri->node, t->frags[ri->frag].standby);
    }
    for (uint32_t i = 1; i <= NN; i++)
        if (used[i])
            end_txn(txn, i, true);
    CU_ASSERT_EQUAL(check_digests(), 40);
    /* records of many ops shared UPD_LOG_REQs; the standbys acknowledged */
    struct upd_stats us, sum = {0};
    RUN_UNTIL(acks_in_total() > 0, 1000);
    for (uint32_t i = 1; i <= NN; i++) {
        upd_get_stats(W.n[i].upd, &us);
        sum.msgs_out += us.msgs_out;
        sum.recs_out += us.recs_out;
        sum.recs_in += us.recs_in;
        sum.acks_in += us.acks_in;
        sum.gaps += us.gaps;
    }
    CU_ASSERT_EQUAL(sum.recs_out, 40 + (uint64_t)frags); /* inserts + one COMMIT per fragment */
    CU_ASSERT_EQUAL(sum.recs_in, sum.recs_out);
    CU_ASSERT(sum.msgs_out <= 2 * (uint64_t)frags); /* one per fragment per loop turn */
    CU_ASSERT(sum.acks_in > 0);
    CU_ASSERT_EQUAL(sum.gaps, 0);
    char s[64];
    CU_ASSERT_EQUAL(get_v(1002, 5, s, sizeof s), 50);
    CU_ASSERT_STRING_EQUAL(s, "row-5|ab      "); /* string(8): sent at its exact width */
    CU_ASSERT_EQUAL(get_v(1003, 1000, NULL, 0), -999);
    ft_clear(HSC);
    ft_clear(CTL);
}

static void test_abort_restores(void)
{
    const uint64_t txn = 2001;
    uint32_t node = route(1).primary;
    struct req r = req_new(node, txn, false);
    int64_t ks[8];
    int nk = 0;
    for (int64_t k = 0; k < 40 && nk < 3; k++)
        if (route(k).primary == node)
            ks[nk++] = k;
    CU_ASSERT_EQUAL_FATAL(nk, 3);
    req_op(&r, NINES__OP_TYPE__OP_UPDATE, ks[0], -1, NULL);
    req_op(&r, NINES__OP_TYPE__OP_DELETE, ks[1], 0, NULL);
    req_op(&r, NINES__OP_TYPE__OP_ADD, ks[2], 7, NULL);
    int64_t knew = 1000;
    while (route(knew).primary != node)
        knew++;
    req_op(&r, NINES__OP_TYPE__OP_INSERT, knew, 5, NULL);
    req_send(&r);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn) == 1, 2000);
    const Nines__KernOpConf *c = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_FALSE(c->ready);
    CU_ASSERT_EQUAL_FATAL(c->n_results, 4);
    CU_ASSERT_EQUAL(c->results[2]->n_rows, 1);
    if (c->results[2]->n_rows == 1)
        CU_ASSERT_EQUAL(c->results[2]->rows[0]->values[1]->i64, ks[2] * 10 + 7);
    run(50); /* the uncommitted records reach the standby too */
    end_txn(txn, node, false);
    CU_ASSERT_EQUAL(check_digests(), 40);
    CU_ASSERT_EQUAL(get_v(2002, ks[0], NULL, 0), ks[0] * 10);
    CU_ASSERT_EQUAL(get_v(2003, ks[1], NULL, 0), ks[1] * 10);
    CU_ASSERT_EQUAL(get_v(2004, ks[2], NULL, 0), ks[2] * 10);
    CU_ASSERT_EQUAL(get_v(2005, knew, NULL, 0), -999);
    /* idempotent: a repeated abort and an unknown commit still get their answers */
    end_txn(txn, node, false);
    end_txn(2999, node, true);
    ft_clear(CTL);
    ft_clear(HSC);
}

/* The gci of txn's COMMIT record in `node`'s replica of fragment `frag`
 * (read back from the replica's log with a cursor); -1 when there is none. */
static int64_t commit_gci_at(uint32_t node, uint32_t frag, uint64_t txn)
{
    struct kern_frag *f = ksvc_replica(W.n[node].kern, W.table, frag);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct kern_log *l = kern_frag_log(f);
    struct kern_log_cursor c;
    kern_log_cursor_init(&c, l, kern_log_first_lsn(l));
    const uint8_t *p;
    size_t len;
    int64_t gci = -1;
    while (kern_log_cursor_next(&c, &p, &len) == 0) {
        struct kern_logrec r;
        CU_ASSERT_FATAL(kern_logrec_decode(p, len, &r) > 0);
        if (r.txn == txn && r.op == KERN_LOG_COMMIT)
            gci = (int64_t)r.gci;
    }
    return gci;
}

/* A COMMIT_REQ's gci (the decision's commit epoch, txctl/README.md "Commit
 * epochs") goes into the COMMIT record at the primary, and the standby's
 * redo keeps it; a repeated COMMIT_REQ changes nothing. */
static void test_commit_carries_gci(void)
{
    const uint64_t txn = 2501;
    struct where w = route(3);
    struct req r = req_new(w.primary, txn, true);
    req_op(&r, NINES__OP_TYPE__OP_ADD, 3, 0, NULL); /* a record, the value unchanged */
    req_send(&r);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn) == 1, 2000);
    int before = ft_count(CTL, NINES__MSG_TYPE__COMMIT_CONF, txn);
    send_end_gci(w.primary, txn, true, 42);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__COMMIT_CONF, txn) > before, 2000);
    CU_ASSERT_EQUAL(commit_gci_at(w.primary, w.frag, txn), 42);
    CU_ASSERT_EQUAL(commit_gci_at(w.standby, w.frag, txn), 42); /* confirmed: applied there */
    CU_ASSERT_TRUE(kern_frag_max_gci(ksvc_replica(W.n[w.primary].kern, W.table, w.frag)) >= 42);
    CU_ASSERT_TRUE(kern_frag_max_gci(ksvc_replica(W.n[w.standby].kern, W.table, w.frag)) >= 42);
    send_end_gci(w.primary, txn, true, 43); /* a repeat: answered, nothing rewritten */
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__COMMIT_CONF, txn) > before + 1, 2000);
    CU_ASSERT_EQUAL(commit_gci_at(w.primary, w.frag, txn), 42);
    CU_ASSERT_EQUAL(check_digests(), 40);
    ft_clear(CTL);
    ft_clear(HSC);
}

static void test_lock_wait_resumes(void)
{
    const int64_t k = 7;
    uint32_t node = route(k).primary;
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(3001, NINES__OP_TYPE__OP_UPDATE, k, 777, false));
    struct req r = req_new(node, 3002, false);
    req_op(&r, NINES__OP_TYPE__OP_GET, k, 0, NULL);
    req_send(&r);
    run(100);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 3002), 0); /* waits */
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, 3002), 0);
    end_txn(3001, node, true);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 3002) == 1, 2000);
    const Nines__KernOpConf *c = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 3002, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(c->results[0]->n_rows, 1);
    CU_ASSERT_EQUAL(c->results[0]->rows[0]->values[1]->i64, 777); /* the committed value */
    end_txn(3002, node, true);
    /* a scan of k's fragment waits for a writer too, then sees every row */
    struct where w = route(k);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(3003, NINES__OP_TYPE__OP_ADD, k, 1, false));
    struct req s = req_new(node, 3004, false);
    req_op(&s, NINES__OP_TYPE__OP_SCAN, k, 0, NULL);
    s.q->keys[0].len = 0;       /* whole fragment: no lower bound */
    s.q->ops[0]->n_key = 0;
    req_send(&s);
    run(100);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 3004), 0);
    end_txn(3003, node, true);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 3004) == 1, 2000);
    c = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 3004, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    size_t expect = 0;
    for (int64_t x = 0; x < 40; x++)
        expect += route(x).frag == w.frag;
    CU_ASSERT_EQUAL(c->results[0]->n_rows, expect);
    CU_ASSERT_EQUAL_FATAL(c->results[0]->n_keys, c->results[0]->n_rows); /* key bytes too */
    int64_t prev = -1;
    for (size_t i = 0; i < c->results[0]->n_rows; i++) {
        const Nines__Row *row = c->results[0]->rows[i];
        CU_ASSERT(row->values[0]->i64 > prev); /* key order */
        prev = row->values[0]->i64;
        struct kern_col kc = {.type = KERN_T_INT64};
        struct kern_val kv = kern_v_i64(prev);
        uint8_t kb[16];
        int kl = kern_key_encode(&kc, 1, &kv, kb, sizeof kb);
        CU_ASSERT_EQUAL(c->results[0]->keys[i].len, (size_t)kl); /* the row's own key */
        CU_ASSERT(kl > 0 && !memcmp(c->results[0]->keys[i].data, kb, (size_t)kl));
        if (row->values[0]->i64 == k)
            CU_ASSERT_EQUAL(row->values[1]->i64, 778);
    }
    end_txn(3004, node, true);
    CU_ASSERT_EQUAL(check_digests(), 40);
    ft_clear(CTL);
    ft_clear(HSC);
}

static void test_deadlock(void)
{
    /* two keys with the same primary */
    int64_t k1 = 11, k2 = 12;
    uint32_t node = route(k1).primary;
    while (route(k2).primary != node)
        k2++;
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(4001, NINES__OP_TYPE__OP_UPDATE, k1, 1, false));
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(4002, NINES__OP_TYPE__OP_UPDATE, k2, 2, false));
    struct req a = req_new(node, 4001, false);
    req_op(&a, NINES__OP_TYPE__OP_UPDATE, k2, 3, NULL);
    req_send(&a);
    run(20);
    struct req b = req_new(node, 4002, false);
    req_op(&b, NINES__OP_TYPE__OP_UPDATE, k1, 4, NULL);
    req_send(&b);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, 0) > 0, 2000);
    CU_ASSERT_EQUAL_FATAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, 0), 1);
    const Nines__KernOpRef *ref = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_REF, 0, 0);
    CU_ASSERT_EQUAL(ref->error, NINES_EDEADLOCK);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "op 0"));
    uint64_t victim = ref->txn, other = victim == 4001 ? 4002 : 4001;
    CU_ASSERT(victim == 4001 || victim == 4002);
    end_txn(victim, node, false); /* the controller aborts the victim */
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, other) == 2, 2000);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, other), 2);
    end_txn(other, node, true);
    CU_ASSERT_EQUAL(get_v(4003, victim == 4001 ? k2 : k1, NULL, 0), victim == 4001 ? 2 : 1);
    CU_ASSERT_EQUAL(get_v(4004, victim == 4001 ? k1 : k2, NULL, 0), victim == 4001 ? 4 : 3);
    CU_ASSERT_EQUAL(check_digests(), 40);
}

/* Escrow increments: two transactions increment the same row under INC
 * locks without waiting for each other (no row comes back); a reader waits
 * for both; one aborts; the standby ends equal to the primary and the value
 * holds exactly the committed deltas. */
static void test_escrow(void)
{
    const int64_t k = 23;
    uint32_t node = route(k).primary;
    int64_t v0 = get_v(5000, k, NULL, 0);
    struct req a = req_new(node, 5001, false);
    req_op(&a, NINES__OP_TYPE__OP_ADD, k, 5, NULL);
    a.q->ops[0]->escrow = 1;
    req_send(&a);
    struct req b = req_new(node, 5002, false);
    req_op(&b, NINES__OP_TYPE__OP_ADD, k, 7, NULL);
    req_op(&b, NINES__OP_TYPE__OP_ADD, k, 100, NULL);
    b.q->ops[0]->escrow = b.q->ops[1]->escrow = 1;
    req_send(&b);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 5001) == 1 &&
                  ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 5002) == 1,
              2000);
    const Nines__KernOpConf *ca = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 5001, 0);
    const Nines__KernOpConf *cb = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 5002, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ca);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cb);
    CU_ASSERT_EQUAL_FATAL(ca->n_results, 1);
    CU_ASSERT_EQUAL_FATAL(cb->n_results, 2);
    CU_ASSERT_EQUAL(ca->results[0]->status, 0);
    CU_ASSERT_EQUAL(ca->results[0]->n_rows, 0);
    CU_ASSERT_EQUAL(cb->results[1]->status, 0);
    CU_ASSERT_EQUAL(cb->results[1]->n_rows, 0);
    /* a reader (S) waits for both increments */
    struct req g = req_new(node, 5003, false);
    req_op(&g, NINES__OP_TYPE__OP_GET, k, 0, NULL);
    req_send(&g);
    run(50);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 5003), 0);
    end_txn(5001, node, false);
    run(20);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 5003), 0);
    end_txn(5002, node, true);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 5003) == 1, 2000);
    const Nines__KernOpConf *cg = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 5003, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cg);
    CU_ASSERT_EQUAL_FATAL(cg->results[0]->n_rows, 1);
    CU_ASSERT_EQUAL(cg->results[0]->rows[0]->values[1]->i64, v0 + 107);
    end_txn(5003, node, true);
    CU_ASSERT_EQUAL(check_digests(), 40);
    CU_ASSERT_EQUAL(get_v(5004, k, NULL, 0), v0 + 107);
    ft_clear(CTL);
    ft_clear(HSC);
}

static void test_bad_values(void)
{
    uint32_t node = route(20).primary;
    struct req r = req_new(node, 5001, true);
    req_op(&r, NINES__OP_TYPE__OP_GET, 20, 0, NULL);
    req_op(&r, NINES__OP_TYPE__OP_UPDATE, 20, 0, "abc");
    req_send(&r);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, 5001) == 1, 2000);
    const Nines__KernOpRef *ref = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_REF, 5001, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_ETYPE);
    CU_ASSERT_EQUAL(ref->failed_op, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "column v (int64)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "string 'abc'"));
    end_txn(5001, node, false);
    /* duplicate key, and an op on a fragment this node is not primary of */
    struct req d = req_new(node, 5002, false);
    req_op(&d, NINES__OP_TYPE__OP_INSERT, 20, 1, NULL);
    req_send(&d);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, 5002) == 1, 2000);
    ref = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_REF, 5002, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_EEXIST);
    end_txn(5002, node, false);
    uint32_t sb = route(20).standby;
    struct req n = req_new(node, 5003, false);
    req_op(&n, NINES__OP_TYPE__OP_GET, 20, 0, NULL);
    n.node = sb; /* sent to the standby's node */
    req_send(&n);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, 5003) == 1, 2000);
    ref = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_REF, 5003, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_ENOTPRIMARY);
    end_txn(5003, sb, false);
    CU_ASSERT_EQUAL(check_digests(), 40);
    for (uint32_t i = 1; i <= NN; i++)
        CU_ASSERT_EQUAL(ksvc_ntxns(W.n[i].kern), 0);
}

/* Interactive end: ops without prepare, then PREPARE_REQ; a fragment that
 * was only read needs no standby readiness. */
static void test_prepare_req(void)
{
    const uint64_t txn = 6001;
    int64_t knew = 2000, kread;
    uint32_t node = route(knew).primary;
    for (kread = 0; route(kread).primary != node || route(kread).frag == route(knew).frag;)
        kread++;
    struct req r = req_new(node, txn, false);
    req_op(&r, NINES__OP_TYPE__OP_INSERT, knew, 9, NULL);
    req_op(&r, NINES__OP_TYPE__OP_GET, kread, 0, NULL);
    req_send(&r);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn) == 1, 2000);
    const Nines__KernOpConf *c = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_FALSE(c->ready);
    CU_ASSERT_EQUAL(c->n_frags, 0);
    run(50);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__READY_IND, txn), 0); /* no mark yet */
    struct rt_msg *m = rt_msg_new(W.n[CTL].rt, NINES__MSG_TYPE__PREPARE_REQ);
    Nines__PrepareReq *p = RT_BODY(m, Nines__PrepareReq, nines__prepare_req__init);
    p->txn = txn;
    p->ctl = CTL;
    p->hsc = HSC;
    CU_ASSERT_EQUAL(rt_send(W.n[CTL].rt, node, RT_SVC_KERN, m), 0);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__PREPARE_CONF, txn) == 1 &&
                  ft_count(HSC, NINES__MSG_TYPE__READY_IND, txn) == 1,
              2000);
    const Nines__PrepareConf *pc = ft_find(CTL, NINES__MSG_TYPE__PREPARE_CONF, txn, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_EQUAL(pc->node, node);
    CU_ASSERT_EQUAL_FATAL(pc->n_frags, 2);
    for (size_t i = 0; i < 2; i++) {
        bool written = pc->frags[i]->frag == route(knew).frag;
        CU_ASSERT_EQUAL(pc->frags[i]->nrecords, written ? 1 : 0);
        CU_ASSERT_EQUAL(pc->frags[i]->standby, written ? route(knew).standby : 0);
    }
    const Nines__ReadyInd *ri = sready_find(HSC, txn, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ri);
    CU_ASSERT_TRUE(ri->standby);
    CU_ASSERT_EQUAL(ri->frag, route(knew).frag);
    CU_ASSERT_EQUAL(ri->node, route(knew).standby);
    run(50);
    CU_ASSERT_EQUAL(ft_count(HSC, NINES__MSG_TYPE__READY_IND, txn), 2); /* + the primary's */
    CU_ASSERT_EQUAL(preadies_at(HSC, txn), 1);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__READY_IND, txn), 0);
    /* more ops after prepare are refused; a repeated prepare is answered */
    struct req late = req_new(node, txn, false);
    req_op(&late, NINES__OP_TYPE__OP_GET, kread, 0, NULL);
    req_send(&late);
    m = rt_msg_new(W.n[CTL].rt, NINES__MSG_TYPE__PREPARE_REQ);
    p = RT_BODY(m, Nines__PrepareReq, nines__prepare_req__init);
    p->txn = txn;
    CU_ASSERT_EQUAL(rt_send(W.n[CTL].rt, node, RT_SVC_KERN, m), 0);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, txn) == 1 &&
                  ft_count(CTL, NINES__MSG_TYPE__PREPARE_CONF, txn) == 2,
              2000);
    const Nines__KernOpRef *ref = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_REF, txn, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_ESTATE);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__PREPARE_CONF, txn), 2);
    end_txn(txn, node, true);
    CU_ASSERT_EQUAL(check_digests(), 41);
    CU_ASSERT_EQUAL(get_v(6002, knew, NULL, 0), 9);
    /* PREPARE_REQ for a transaction this kernel never saw */
    m = rt_msg_new(W.n[CTL].rt, NINES__MSG_TYPE__PREPARE_REQ);
    p = RT_BODY(m, Nines__PrepareReq, nines__prepare_req__init);
    p->txn = 6999;
    CU_ASSERT_EQUAL(rt_send(W.n[CTL].rt, node, RT_SVC_KERN, m), 0);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__PREPARE_REF, 6999) == 1, 2000);
    const Nines__PrepareRef *pr = ft_find(CTL, NINES__MSG_TYPE__PREPARE_REF, 6999, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pr);
    CU_ASSERT_EQUAL(pr->error, NINES_ENOTFOUND);
    ft_clear(CTL);
    ft_clear(HSC);
}

/* ---- faults: a message filter on every node (runtime/README "Fault
 * injection") ---- */
#define FL_HELD 64
static struct {
    uint32_t type, type2;  /* act on messages of these types ... */
    uint32_t from;         /* ... sent by this node (0: any) ... */
    net_addr to;           /* ... to this node (0: any) ... */
    int32_t frag;          /* ... UPD_LOG_REQ / UPD_LOG_CONF of this fragment (-1: any) */
    int drop;              /* drop this many */
    int flip;              /* KERN_COPY_CONF: flip a bit in this many chunks' bytes */
    bool take;             /* hold every match (held[]) */
    int seen;              /* matches */
    uint64_t pinc;         /* last UPD_LOG_REQ's primary incarnation seen */
    struct rt_msg *held[FL_HELD];
    net_addr held_to[FL_HELD];
    enum rt_svc held_svc[FL_HELD];
    uint32_t held_node[FL_HELD];
    int nheld;
} FL;

static enum rt_fault_verdict fl_filter(void *ctx, struct rt *rt, net_addr to, enum rt_svc svc,
                                       struct rt_msg *m)
{
    uint32_t node = (uint32_t)(uintptr_t)ctx;
    if (m->type == NINES__MSG_TYPE__UPD_LOG_REQ)
        FL.pinc = ((const Nines__UpdLogReq *)m->body)->pinc;
    if ((m->type != FL.type && (!FL.type2 || m->type != FL.type2)) ||
        (FL.from && node != FL.from) || (FL.to && to != FL.to))
        return RT_FAULT_PASS;
    if (FL.frag >= 0) {
        uint32_t frag = m->type == NINES__MSG_TYPE__UPD_LOG_REQ
                            ? ((const Nines__UpdLogReq *)m->body)->frag
                        : m->type == NINES__MSG_TYPE__UPD_LOG_CONF
                            ? ((const Nines__UpdLogConf *)m->body)->frag
                            : (uint32_t)FL.frag;
        if (frag != (uint32_t)FL.frag)
            return RT_FAULT_PASS;
    }
    FL.seen++;
    if (FL.flip > 0 && m->type == NINES__MSG_TYPE__KERN_COPY_CONF) {
        Nines__KernCopyConf *c = (Nines__KernCopyConf *)(uintptr_t)m->body;
        if (c->data.len > 80) {
            c->data.data[40 + (size_t)FL.seen % (c->data.len - 80)] ^= 0x10;
            FL.flip--;
        }
        return RT_FAULT_PASS;
    }
    if (FL.drop > 0) {
        FL.drop--;
        return RT_FAULT_DROP;
    }
    if (FL.take && FL.nheld < FL_HELD) {
        FL.held[FL.nheld] = m;
        FL.held_to[FL.nheld] = to;
        FL.held_svc[FL.nheld] = svc;
        FL.held_node[FL.nheld] = node;
        FL.nheld++;
        return RT_FAULT_TAKE;
    }
    return RT_FAULT_PASS;
}

static void fl_set(uint32_t type, uint32_t from, net_addr to, int32_t frag, int drop, bool take)
{
    memset(&FL, 0, sizeof FL);
    FL.type = type;
    FL.from = from;
    FL.to = to;
    FL.frag = frag;
    FL.drop = drop;
    FL.take = take;
    for (uint32_t i = 1; i <= NN; i++)
        CU_ASSERT_EQUAL_FATAL(rt_fault_set_filter(W.n[i].rt, fl_filter, (void *)(uintptr_t)i),
                              0);
}

/* Stop matching; re-inject what was held, in order. */
static void fl_release(void)
{
    FL.type = FL.type2 = 0;
    FL.take = false;
    for (int i = 0; i < FL.nheld; i++)
        CU_ASSERT_EQUAL(rt_send_nofault(W.n[FL.held_node[i]].rt, FL.held_to[i], FL.held_svc[i],
                                        FL.held[i]),
                        0);
    FL.nheld = 0;
}

static void fl_off(void)
{
    fl_release();
    for (uint32_t i = 1; i <= NN; i++)
        (void)rt_fault_set_filter(W.n[i].rt, NULL, NULL);
}

/* Two keys >= from in the same fragment, whose primary and standby differ. */
static void two_keys(int64_t from, int64_t *k1, int64_t *k2)
{
    *k1 = from;
    while (route(*k1).standby == 0)
        (*k1)++;
    for (*k2 = *k1 + 1; route(*k2).frag != route(*k1).frag;)
        (*k2)++;
}

/* Standby READY_INDs of txn at the hot-standby controller. */
static int readies(uint64_t txn)
{
    return ft_count(HSC, NINES__MSG_TYPE__READY_IND, txn) - preadies_at(HSC, txn);
}

/* Defect 4: a lost log batch is re-sent. The UPD_LOG_REQ carrying txn A's
 * record and end mark is lost (the sender saw success, as when a
 * connection resets under it). B's batch then shows the standby a gap: it
 * asks for a resend at once, both become ready at the standby, and the
 * replicas end equal. (Before: the gap was only logged, A never became
 * ready, and every later write to the fragment stayed unapplied.) */
static void test_lost_batch_resent_on_gap(void)
{
    int64_t k1, k2;
    two_keys(3000, &k1, &k2);
    struct where w = route(k1);
    fl_set(NINES__MSG_TYPE__UPD_LOG_REQ, w.primary, w.standby, (int32_t)w.frag, 1, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(8001, NINES__OP_TYPE__OP_INSERT, k1, 1, true));
    run(100);
    CU_ASSERT_EQUAL(FL.seen, 1); /* the batch was lost ... */
    CU_ASSERT_EQUAL(readies(8001), 0); /* ... so the standby is not ready */
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(8002, NINES__OP_TYPE__OP_INSERT, k2, 2, true));
    /* well within the primary's no-progress interval: the standby's request did it */
    RUN_UNTIL(readies(8001) == 1 && readies(8002) == 1, 100);
    CU_ASSERT_EQUAL(readies(8001), 1);
    CU_ASSERT_EQUAL(readies(8002), 1);
    fl_off();
    end_txn(8001, w.primary, true);
    end_txn(8002, w.primary, true);
    CU_ASSERT_EQUAL(check_digests(), 43);
    ft_clear(HSC);
}

/* Defect 4, no later traffic: the only batch is lost; the primary sees no
 * acknowledgement progress and resends on its own. */
static void test_lost_batch_resent_on_silence(void)
{
    int64_t k1, k2;
    two_keys(3100, &k1, &k2);
    struct where w = route(k1);
    fl_set(NINES__MSG_TYPE__UPD_LOG_REQ, w.primary, w.standby, (int32_t)w.frag, 1, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(8011, NINES__OP_TYPE__OP_INSERT, k1, 1, true));
    run(100);
    CU_ASSERT_EQUAL(FL.seen, 1);
    CU_ASSERT_EQUAL(readies(8011), 0);
    /* 2 s of the executors' clocks: several resend intervals */
    RUN_UNTIL(readies(8011) == 1, 10000);
    CU_ASSERT_EQUAL(readies(8011), 1);
    fl_off();
    end_txn(8011, w.primary, true);
    CU_ASSERT_EQUAL(check_digests(), 44);
    ft_clear(HSC);
}

/* Defect 5, a redo error: the standby's redo of a record fails once; it
 * neither acknowledges it nor anything after it, asks for a resend, and the
 * record applies the second time. */
static void test_redo_error_resent(void)
{
    int64_t k1, k2;
    two_keys(3200, &k1, &k2);
    struct where w = route(k1);
    nines_fault_arm("kern.redo.fail", 1); /* the next record a standby redoes */
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(8031, NINES__OP_TYPE__OP_INSERT, k1, 1, true));
    RUN_UNTIL(readies(8031) == 1, 1000);
    CU_ASSERT_EQUAL(readies(8031), 1);
    nines_fault_arm("kern.redo.fail", 0);
    end_txn(8031, w.primary, true);
    CU_ASSERT_EQUAL(check_digests(), 45);
    ft_clear(HSC);
}

/* Defect 6: COMMIT_CONF / ABORT_CONF mean "done here and the standby
 * applied the COMMIT/ABORT record". While the standby's acknowledgements
 * are held back, no confirmation leaves (a repeated request neither); once
 * they arrive, exactly one does. */
static void conf_waits(uint64_t txn, int64_t k, bool commit)
{
    struct where w = route(k);
    uint32_t type = commit ? NINES__MSG_TYPE__COMMIT_CONF : NINES__MSG_TYPE__ABORT_CONF;
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(txn, NINES__OP_TYPE__OP_INSERT, k, 1, true));
    RUN_UNTIL(readies(txn) == 1, 1000);
    CU_ASSERT_EQUAL_FATAL(readies(txn), 1);
    run(50); /* every acknowledgement so far is in */
    fl_set(NINES__MSG_TYPE__UPD_LOG_CONF, w.standby, w.primary, (int32_t)w.frag, 0, true);
    send_end(w.primary, txn, commit);
    run(200);
    CU_ASSERT_EQUAL(ft_count(CTL, type, txn), 0); /* the standby has not acknowledged it */
    CU_ASSERT(FL.nheld > 0);
    send_end(w.primary, txn, commit); /* the controller re-sends */
    run(200);
    CU_ASSERT_EQUAL(ft_count(CTL, type, txn), 0);
    CU_ASSERT_EQUAL(ksvc_ntxns(W.n[w.primary].kern), 1); /* kept until confirmed */
    fl_off(); /* the acknowledgements arrive */
    RUN_UNTIL(ft_count(CTL, type, txn) == 1, 1000);
    run(50);
    CU_ASSERT_EQUAL(ft_count(CTL, type, txn), 1);
    CU_ASSERT_EQUAL(ksvc_ntxns(W.n[w.primary].kern), 0);
    /* already ended: answered at once, idempotently */
    end_txn(txn, w.primary, commit);
    ft_clear(HSC);
}

static void test_conf_after_standby_applied(void)
{
    int64_t k1, k2;
    two_keys(3300, &k1, &k2);
    conf_waits(8041, k1, true);
    conf_waits(8042, k2, false);
    CU_ASSERT_EQUAL(get_v(8043, k1, NULL, 0), 1);
    CU_ASSERT_EQUAL(get_v(8044, k2, NULL, 0), -999);
    CU_ASSERT_EQUAL(check_digests(), 46);
}

static uint32_t T2;

static bool has_t2(uint32_t node)
{
    return dict_table_by_name(dsvc_current(W.n[node].dict), "t2") != NULL;
}

/* Defect 5: an acknowledgement means applied. A table is created while the
 * dictionary commit to one node is held back, so that node has no replica
 * yet when the primary ships records of a fragment it is the standby of.
 * The standby cannot apply them and must not acknowledge them: once its
 * dictionary arrives the records come again, it becomes ready, and the
 * replicas end equal. (Before: "not applied" was logged but the channel
 * had acknowledged the records; they were gone for good, the standby never
 * became ready and every later record of the fragment was a gap.) */
static void test_ack_means_applied(void)
{
    const uint32_t late = 4; /* the node whose dictionary commit (and catch-up) is held */
    fl_set(NINES__MSG_TYPE__DICT_COMMIT_REQ, 0, late, -1, 0, true);
    FL.type2 = NINES__MSG_TYPE__DICT_FETCH_CONF;
    CU_ASSERT_EQUAL_FATAL(send_create_table("t2"), 0);
    RUN_UNTIL(has_t2(1) && has_t2(2) && has_t2(3), 20000);
    CU_ASSERT_FATAL(has_t2(1) && has_t2(2) && has_t2(3));
    run(50); /* the kernels create their replicas */
    CU_ASSERT_FATAL(FL.nheld >= 1);
    CU_ASSERT_FALSE_FATAL(has_t2(late));
    const struct dict_table *t = dict_table_by_name(dsvc_current(W.n[1].dict), "t2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    T2 = t->id;
    /* a key of a fragment whose standby is the late node */
    int64_t k = 0;
    while (route_t(T2, k).standby != late || route_t(T2, k).primary == late)
        k++;
    struct where w = route_t(T2, k);
    struct req r = req_new(w.primary, 8021, true);
    r.table = T2;
    req_op(&r, NINES__OP_TYPE__OP_INSERT, k, 5, NULL);
    req_send(&r);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 8021) == 1, 2000);
    CU_ASSERT_EQUAL_FATAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 8021), 1);
    run(200);
    CU_ASSERT_EQUAL(readies(8021), 0); /* no replica at the standby yet */
    fl_release();                      /* the dictionary reaches the late node */
    RUN_UNTIL(has_t2(late), 20000);
    CU_ASSERT_TRUE_FATAL(has_t2(late));
    RUN_UNTIL(readies(8021) == 1, 10000);
    CU_ASSERT_EQUAL(readies(8021), 1);
    fl_off();
    end_txn(8021, w.primary, true);
    CU_ASSERT_EQUAL(check_digests_t(T2), 1);
    ft_clear(HSC);
}

/* Two keys of T2 in different fragments with the same primary node, both
 * with a standby, from key `from` on. */
static void t2_keys_two_frags(int64_t from, int64_t *k1, int64_t *k2)
{
    for (*k1 = from; route_t(T2, *k1).standby == 0;)
        (*k1)++;
    struct where a = route_t(T2, *k1);
    for (*k2 = *k1 + 1; route_t(T2, *k2).primary != a.primary ||
                        route_t(T2, *k2).frag == a.frag || route_t(T2, *k2).standby == 0;)
        (*k2)++;
}

static struct req t2_req(uint32_t node, uint64_t txn, bool prepare)
{
    struct req r = req_new(node, txn, prepare);
    r.table = T2;
    return r;
}

/* Defect 7: a commit that fails at the primary (the fault point stands for
 * ENOMEM or corruption in kern_frag_commit) takes that replica out of
 * service with its reason, keeps every lock of the transaction, and never
 * confirms it — also not when the controller re-sends COMMIT_REQ. (Before:
 * the error was logged, the locks released and COMMIT_CONF sent.) */
static void test_commit_failure_keeps_locks(void)
{
    int64_t k1, k2;
    t2_keys_two_frags(100, &k1, &k2);
    struct where a = route_t(T2, k1), b = route_t(T2, k2);
    const uint64_t txn = 8201;
    struct req r = t2_req(a.primary, txn, true);
    req_op(&r, NINES__OP_TYPE__OP_INSERT, k1, 1, NULL);
    req_op(&r, NINES__OP_TYPE__OP_INSERT, k2, 2, NULL);
    req_send(&r);
    RUN_UNTIL(readies(txn) == 2, 1000);
    CU_ASSERT_EQUAL_FATAL(readies(txn), 2);
    nines_fault_arm("kern.commit.fail", 1); /* the commit in the first fragment fails */
    send_end(a.primary, txn, true);
    run(200);
    nines_fault_arm("kern.commit.fail", 0);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__COMMIT_CONF, txn), 0);
    send_end(a.primary, txn, true); /* re-sent: still no answer */
    run(200);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__COMMIT_CONF, txn), 0);
    /* the failed fragment refuses every operation, naming why */
    struct req g = t2_req(a.primary, 8202, false);
    req_op(&g, NINES__OP_TYPE__OP_GET, k1, 0, NULL);
    req_send(&g);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, 8202) == 1, 1000);
    const Nines__KernOpRef *ref = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_REF, 8202, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_ESTATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "out of service"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "t2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "commit of txn 8201 failed"));
    char frag_txt[32];
    snprintf(frag_txt, sizeof frag_txt, "fragment %u on node %u", a.frag, a.primary);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, frag_txt));
    /* the other fragment serves, but the transaction's lock on k2 is held */
    struct req h = t2_req(b.primary, 8203, false);
    req_op(&h, NINES__OP_TYPE__OP_GET, k2, 0, NULL);
    req_send(&h);
    run(200);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 8203), 0);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, 8203), 0);
    end_txn(8203, b.primary, false);
    end_txn(8202, a.primary, false);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__COMMIT_CONF, txn), 0);
    ft_clear(CTL);
    ft_clear(HSC);
}

/* Defect 3 (kernel side): nothing is orphaned. A transaction prepared at a
 * kernel and never decided makes the kernel ask its controller (the node
 * in the id's top 8 bits) after 3 controller timeouts; the controller
 * cannot tell (TXC_OUTCOME_REF), so it asks the hot-standby controller;
 * that cannot tell either: it keeps holding (locks kept) and asks again a
 * round later; the answer arrives as an ordinary ABORT_REQ. (Before: it
 * held the transaction and its locks for ever.) */
static void outcome_ref(uint32_t from, uint32_t to, uint64_t txn, int err)
{
    struct rt_msg *m = rt_msg_new(W.n[from].rt, NINES__MSG_TYPE__TXC_OUTCOME_REF);
    Nines__TxcOutcomeRef *b = RT_BODY(m, Nines__TxcOutcomeRef, nines__txc_outcome_ref__init);
    b->txn = txn;
    b->node = from;
    b->error = err;
    b->detail = "cannot tell";
    CU_ASSERT_EQUAL(rt_send(W.n[from].rt, to, RT_SVC_KERN, m), 0);
}

static int outcome_reqs(uint32_t node, uint64_t txn)
{
    return ft_count(node, NINES__MSG_TYPE__TXC_OUTCOME_REQ, txn);
}

static void test_prepared_asks_outcome(void)
{
    int64_t k1, k2;
    t2_keys_two_frags(200, &k1, &k2);
    struct where w = route_t(T2, k1);
    const uint64_t txn = ((uint64_t)CTL << 56) | 8301;
    struct req r = t2_req(w.primary, txn, true);
    req_op(&r, NINES__OP_TYPE__OP_INSERT, k1, 1, NULL);
    req_send(&r);
    RUN_UNTIL(readies(txn) == 1, 1000);
    CU_ASSERT_EQUAL_FATAL(readies(txn), 1);
    run(1000); /* 200 ms: not yet */
    CU_ASSERT_EQUAL(outcome_reqs(CTL, txn), 0);
    RUN_UNTIL(outcome_reqs(CTL, txn) == 1, 1000); /* 300 ms after the prepare */
    CU_ASSERT_EQUAL_FATAL(outcome_reqs(CTL, txn), 1);
    const Nines__TxcOutcomeReq *q = ft_find(CTL, NINES__MSG_TYPE__TXC_OUTCOME_REQ, txn, 0);
    CU_ASSERT_EQUAL(q->node, w.primary);
    CU_ASSERT_EQUAL(q->asked_inc, net_peer_incarnation(rt_net(W.n[w.primary].rt), CTL));
    CU_ASSERT_EQUAL(outcome_reqs(HSC, txn), 0);
    outcome_ref(CTL, w.primary, txn, NINES_EINDOUBT);
    RUN_UNTIL(outcome_reqs(HSC, txn) == 1, 100);
    CU_ASSERT_EQUAL_FATAL(outcome_reqs(HSC, txn), 1);
    q = ft_find(HSC, NINES__MSG_TYPE__TXC_OUTCOME_REQ, txn, 0);
    CU_ASSERT_EQUAL(q->asked_inc, net_peer_incarnation(rt_net(W.n[w.primary].rt), HSC));
    outcome_ref(HSC, w.primary, txn, NINES_EINDOUBT);
    run(100);
    /* held, not decided: its lock stays */
    struct req g = t2_req(w.primary, 8302, false);
    req_op(&g, NINES__OP_TYPE__OP_GET, k1, 0, NULL);
    req_send(&g);
    run(100);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 8302), 0);
    CU_ASSERT_EQUAL(outcome_reqs(CTL, txn), 1);
    /* a round later it asks again */
    RUN_UNTIL(outcome_reqs(CTL, txn) == 2, 2000);
    CU_ASSERT_EQUAL(outcome_reqs(CTL, txn), 2);
    /* the answer is an ordinary ABORT_REQ (here from the hsc) */
    struct rt_msg *m = rt_msg_new(W.n[HSC].rt, NINES__MSG_TYPE__ABORT_REQ);
    Nines__AbortReq *ab = RT_BODY(m, Nines__AbortReq, nines__abort_req__init);
    ab->txn = txn;
    CU_ASSERT_EQUAL(rt_send(W.n[HSC].rt, w.primary, RT_SVC_KERN, m), 0);
    RUN_UNTIL(ft_count(HSC, NINES__MSG_TYPE__ABORT_CONF, txn) == 1, 1000);
    CU_ASSERT_EQUAL(ft_count(HSC, NINES__MSG_TYPE__ABORT_CONF, txn), 1);
    /* the reader gets the lock: the row is absent */
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 8302) == 1, 1000);
    const Nines__KernOpConf *c = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, 8302, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->results[0]->status, NINES_ENOTFOUND);
    end_txn(8302, w.primary, true);
    /* no more questions once it ended */
    int asked = outcome_reqs(CTL, txn);
    run(3000);
    CU_ASSERT_EQUAL(outcome_reqs(CTL, txn), asked);
    ft_clear(CTL);
    ft_clear(HSC);
}

/* Positions name the primary's incarnation: records of another incarnation
 * are never applied on top of what a standby holds (the replica is taken
 * out of service, needing a rebuild), and an acknowledgement naming another
 * incarnation is ignored by the primary. Runs last: it breaks a replica. */
static void test_other_incarnation_refused(void)
{
    int64_t k = 0;
    while (route_t(T2, k).standby == 0)
        k++;
    struct where w = route_t(T2, k);
    /* a committed write, to learn the primary's incarnation on the wire */
    fl_set(NINES__MSG_TYPE__UPD_LOG_REQ, 0, 0, -1, 0, false);
    struct req r = req_new(w.primary, 8031, true);
    r.table = T2;
    req_op(&r, NINES__OP_TYPE__OP_INSERT, k, 7, NULL);
    req_send(&r);
    RUN_UNTIL(readies(8031) == 1, 2000);
    CU_ASSERT_EQUAL_FATAL(readies(8031), 1);
    end_txn(8031, w.primary, true);
    uint64_t pinc = FL.pinc;
    fl_off();
    CU_ASSERT_NOT_EQUAL_FATAL(pinc, 0);
    CU_ASSERT_EQUAL(check_digests_t(T2), 4); /* t2 rows of the tests before, committed or not */
    /* an acknowledgement of everything, from the standby, naming another
     * incarnation: ignored */
    struct upd_stats before, after;
    upd_get_stats(W.n[w.primary].upd, &before);
    struct rt_msg *m = rt_msg_new(W.n[w.standby].rt, NINES__MSG_TYPE__UPD_LOG_CONF);
    Nines__UpdLogConf *c = RT_BODY(m, Nines__UpdLogConf, nines__upd_log_conf__init);
    c->table = T2;
    c->frag = w.frag;
    c->lsn = 1;
    c->pinc = pinc + 1;
    CU_ASSERT_EQUAL(rt_send(W.n[w.standby].rt, w.primary, RT_SVC_UPD, m), 0);
    run(20);
    upd_get_stats(W.n[w.primary].upd, &after);
    CU_ASSERT_EQUAL(after.acks_stale, before.acks_stale + 1);
    /* records of another incarnation at the next LSN: refused, not applied */
    m = rt_msg_new(W.n[w.primary].rt, NINES__MSG_TYPE__UPD_LOG_REQ);
    Nines__UpdLogReq *b = RT_BODY(m, Nines__UpdLogReq, nines__upd_log_req__init);
    b->table = T2;
    b->frag = w.frag;
    b->pinc = pinc + 1;
    struct kern_logrec lr = {.lsn = 3, .txn = 77, .table = T2, .frag = w.frag,
                             .op = KERN_LOG_COMMIT};
    uint8_t *buf = rt_msg_alloc(m, KERN_LOG_HDR);
    CU_ASSERT_EQUAL_FATAL(kern_logrec_encode(&lr, buf, KERN_LOG_HDR), (int)KERN_LOG_HDR);
    b->records = rt_msg_alloc(m, sizeof *b->records);
    b->records[0].data = buf;
    b->records[0].len = KERN_LOG_HDR;
    b->n_records = 1;
    CU_ASSERT_EQUAL(rt_send(W.n[w.primary].rt, w.standby, RT_SVC_UPD, m), 0);
    run(20);
    /* the standby's log still ends at LSN 2 (insert + commit) */
    ft_clear(CTL);
    m = rt_msg_new(W.n[CTL].rt, NINES__MSG_TYPE__KERN_DIGEST_REQ);
    Nines__KernDigestReq *dq = RT_BODY(m, Nines__KernDigestReq, nines__kern_digest_req__init);
    dq->table = T2;
    CU_ASSERT_EQUAL(rt_send(W.n[CTL].rt, w.standby, RT_SVC_KERN, m), 0);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0) == 1, 2000);
    const Nines__KernDigestConf *dc = ft_find(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dc);
    bool found = false;
    for (size_t i = 0; i < dc->n_replicas; i++)
        if (dc->replicas[i]->frag == w.frag) {
            found = true;
            CU_ASSERT_FALSE(dc->replicas[i]->primary);
            CU_ASSERT_EQUAL(dc->replicas[i]->next_lsn, 3);
        }
    CU_ASSERT_TRUE(found);
    ft_clear(CTL);
    ft_clear(HSC);
}

/* ---- many pipelined transactions: ADD on three rows, 2-safe commit ---- */
#define TP_WINDOW 12
struct tp_txn {
    uint64_t txn;
    int confs_due, readies_due, ends_due;
    bool committing;
    uint32_t nodes[3];
    int nnodes;
};
static struct {
    struct tp_txn slot[TP_WINDOW];
    uint64_t next_txn, done, refused, started;
    int64_t delta_sum[40];
} TP;

static struct tp_txn *tp_find(uint64_t txn)
{
    for (int i = 0; i < TP_WINDOW; i++)
        if (TP.slot[i].txn == txn)
            return &TP.slot[i];
    return NULL;
}

static void tp_start(struct tp_txn *x, uint64_t i)
{
    memset(x, 0, sizeof *x);
    x->txn = 10000000 + i;
    struct req r[NN + 1];
    bool used[NN + 1] = {false};
    uint32_t fr[3];
    int nfr = 0;
    for (int j = 0; j < 3; j++) {
        int64_t k = (int64_t)((3 * i + (uint64_t)j) % 39);
        struct where w = route(k);
        if (!used[w.primary]) {
            r[w.primary] = req_new(w.primary, x->txn, true);
            used[w.primary] = true;
            x->nodes[x->nnodes++] = w.primary;
        }
        req_op(&r[w.primary], NINES__OP_TYPE__OP_ADD, k, 1, NULL);
        TP.delta_sum[k]++;
        bool seen = false;
        for (int q = 0; q < nfr; q++)
            seen |= fr[q] == w.frag;
        if (!seen)
            fr[nfr++] = w.frag;
    }
    x->confs_due = x->nnodes;
    x->readies_due = nfr;
    for (int q = 0; q < x->nnodes; q++)
        req_send(&r[x->nodes[q]]);
    TP.started++;
}

static void tp_hook(uint32_t node, struct rt_msg *m)
{
    (void)node;
    struct tp_txn *x = tp_find(msg_txn(m));
    if (!x)
        return;
    switch (m->type) {
    case NINES__MSG_TYPE__KERN_OP_CONF:
        if (((const Nines__KernOpConf *)m->body)->ready)
            x->confs_due--;
        break;
    case NINES__MSG_TYPE__READY_IND:
        if (node == HSC && ((const Nines__ReadyInd *)m->body)->standby)
            x->readies_due--;
        break;
    case NINES__MSG_TYPE__KERN_OP_REF:
        TP.refused++;
        break;
    case NINES__MSG_TYPE__COMMIT_CONF:
        x->ends_due--;
        break;
    default:
        return;
    }
    if (!x->committing && x->confs_due == 0 && x->readies_due == 0) {
        x->committing = true;
        x->ends_due = x->nnodes;
        for (int q = 0; q < x->nnodes; q++)
            send_end(x->nodes[q], x->txn, true);
    } else if (x->committing && x->ends_due == 0) {
        x->txn = 0;
        TP.done++;
    }
}

static void test_pipelined_throughput(void)
{
    uint64_t n = getenv("NINES_LONG") ? 200000 : 20000;
    int64_t before[40];
    for (int64_t k = 0; k < 39; k++)
        before[k] = get_v(7000000 + (uint64_t)k, k, NULL, 0);
    memset(&TP, 0, sizeof TP);
    for (uint32_t i = 1; i <= NN; i++)
        W.n[i].ft.hook = tp_hook;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t i = 0;
    for (long guard = 0; TP.done < n && guard < 50000000L && TP.refused == 0; guard++) {
        for (int s_ = 0; s_ < TP_WINDOW && i < n; s_++)
            if (TP.slot[s_].txn == 0)
                tp_start(&TP.slot[s_], i++);
        step();
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (uint32_t j = 1; j <= NN; j++)
        W.n[j].ft.hook = NULL;
    CU_ASSERT_EQUAL(TP.refused, 0);
    CU_ASSERT_EQUAL(TP.done, n);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("\n    %llu 2-safe txns (3 ADDs, prepare, standby ready, commit) on 4 in-process "
           "nodes, one thread: %.0f txn/s ", (unsigned long long)TP.done, TP.done / sec);
    CU_ASSERT_EQUAL(check_digests(), 46);
    for (int64_t k = 0; k < 39; k++)
        CU_ASSERT_EQUAL(get_v(7100000 + (uint64_t)k, k, NULL, 0), before[k] + TP.delta_sum[k]);
    /* the primaries dropped acknowledged log records (whole segments): the
     * in-memory log does not grow without bound under steady traffic */
    RUN_UNTIL(acks_in_total() > 0, 1000);
    uint64_t trimmed = 0;
    for (uint32_t j = 1; j <= NN; j++) {
        struct upd_stats us;
        upd_get_stats(W.n[j].upd, &us);
        trimmed += us.trimmed;
    }
    CU_ASSERT(trimmed > 0);
    /* every transaction ended: the standbys keep no end marks */
    for (uint32_t j = 1; j <= NN; j++) {
        struct ksvc_stats ks;
        ksvc_get_stats(W.n[j].kern, &ks);
        CU_ASSERT_EQUAL(ks.marks_held, 0);
    }
}

/* ---- the conversion cases (conv_cases.h) ---- */

/* Create a one-fragment table through the dictionary; its id. */
static uint32_t conv_table(const char *name, const struct dict_column *cd, uint32_t ncols,
                           const uint16_t *pkc, uint32_t npk, uint64_t ref)
{
    struct rt *rt = W.n[2].rt;
    struct rt_msg *m = rt_msg_new(rt, NINES__MSG_TYPE__DICT_CHANGE_REQ);
    Nines__DictChangeReq *q = RT_BODY(m, Nines__DictChangeReq, nines__dict_change_req__init);
    Nines__DictChange *c = rt_msg_alloc(m, sizeof *c);
    Nines__DictTableDef *d = rt_msg_alloc(m, sizeof *d);
    Nines__DictColumn *cols = rt_msg_alloc(m, ncols * sizeof *cols);
    Nines__DictColumn **cp = rt_msg_alloc(m, ncols * sizeof *cp);
    uint32_t *pk = rt_msg_alloc(m, npk * sizeof *pk);
    nines__dict_change__init(c);
    nines__dict_table_def__init(d);
    for (uint32_t i = 0; i < ncols; i++) {
        nines__dict_column__init(&cols[i]);
        cols[i].name = (char *)cd[i].name;
        cols[i].type = cd[i].type;
        cols[i].size = cd[i].size;
        cols[i].nullable = cd[i].nullable;
        cp[i] = &cols[i];
    }
    for (uint32_t i = 0; i < npk; i++)
        pk[i] = pkc[i];
    d->name = (char *)name;
    d->columns = cp;
    d->n_columns = ncols;
    d->pk = pk;
    d->n_pk = npk;
    d->method = 1;
    d->nfrags = 1;
    d->replicas = 2;
    d->scheme = 1;
    c->op = NINES__DICT_OP__DICT_OP_CREATE_TABLE;
    c->table = d;
    q->change = c;
    q->origin = 2;
    q->ref = ref;
    CU_ASSERT_EQUAL_FATAL(rt_send(rt, 1, RT_SVC_DICT, m), 0);
    bool all = false;
    for (int r = 0; r < 20000 && !all; r++) {
        step();
        all = true;
        for (uint32_t i = 1; i <= NN; i++)
            all &= dict_table_by_name(dsvc_current(W.n[i].dict), name) != NULL;
    }
    run(50); /* the kernels create their replicas */
    const struct dict_table *t = dict_table_by_name(dsvc_current(W.n[1].dict), name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t->id;
}

/* Send one op (INSERT row or GET key values, no encoded key) on fragment
 * 0 of table `tid` as txn; the answer: 0, or the error with its detail. */
static int conv_op(uint32_t tid, uint64_t txn, Nines__OpType type, const struct cv_case *c,
                   char *detail, size_t dn)
{
    const struct dict_table *t = dict_table_by_id(dsvc_current(W.n[1].dict), tid);
    struct req r = req_new(t->frags[0].primary, txn, false);
    Nines__Participant *p = rt_msg_alloc(r.m, sizeof *p);
    nines__participant__init(p);
    p->table = tid;
    p->frag = 0;
    p->primary = t->frags[0].primary;
    p->standby = t->frags[0].standby;
    Nines__RecordOp *o = rt_msg_alloc(r.m, sizeof *o);
    nines__record_op__init(o);
    o->op = type;
    o->table_id = tid;
    if (type == NINES__OP_TYPE__OP_INSERT) {
        Nines__Row *row = rt_msg_alloc(r.m, sizeof *row);
        nines__row__init(row);
        row->n_values = CV_NCOLS;
        row->values = rt_msg_alloc(r.m, CV_NCOLS * sizeof *row->values);
        for (int j = 0; j < CV_NCOLS; j++) {
            row->values[j] = rt_msg_alloc(r.m, sizeof *row->values[j]);
            if (j == c->col)
                cv_pb(c, row->values[j]);
            else
                cv_good(j, (int64_t)txn, row->values[j]);
        }
        o->row = row;
    } else {
        o->n_key = CVK_NPK;
        o->key = rt_msg_alloc(r.m, CVK_NPK * sizeof *o->key);
        for (int j = 0; j < CVK_NPK; j++) {
            o->key[j] = rt_msg_alloc(r.m, sizeof *o->key[j]);
            if (j + 1 == c->col)
                cv_pb(c, o->key[j]);
            else
                cv_good(j + 1, 0, o->key[j]);
        }
    }
    r.q->parts[0] = p;
    r.q->ops[0] = o;
    r.q->keys[0] = (ProtobufCBinaryData){0, NULL};
    r.q->n_ops = r.q->n_parts = r.q->n_keys = 1;
    req_send(&r);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn) +
                  ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, txn) > 0,
              2000);
    const Nines__KernOpRef *ref = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_REF, txn, 0);
    int got = ref ? ref->error : 0;
    snprintf(detail, dn, "%s", ref && ref->detail ? ref->detail : "");
    if (!ref)
        CU_ASSERT_PTR_NOT_NULL(ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn, 0));
    end_txn(txn, t->frags[0].primary, false);
    return got;
}

static void conv_expect(int got, const char *detail, const struct cv_case *c, const char *table)
{
    const char *miss = NULL;
    if (got != c->want)
        printf("\n  kernel service %s '%s': CODE want %d got %d (%s)", table, c->what, c->want,
               got, detail);
    else if (got && !cv_detail_ok(c, table, detail, &miss))
        printf("\n  kernel service %s '%s': DETAIL lacks \"%s\": %s", table, c->what, miss,
               detail);
    CU_ASSERT_EQUAL(got, c->want);
    CU_ASSERT_PTR_NULL(miss);
}

/* Every case as a column of an INSERT row (cv) and, for NOT NULL columns,
 * as a key value of a GET without an encoded key (cvk). */
static void test_conversion(void)
{
    static const uint16_t pk_cv[1] = {0};
    uint32_t cv = conv_table("cv", cv_cols, CV_NCOLS, pk_cv, 1, 901);
    uint32_t cvk = conv_table("cvk", cvk_cols, CVK_NPK + 1, cvk_pk, CVK_NPK, 902);
    char detail[600];
    for (uint32_t i = 0; i < CV_NCASES; i++) {
        const struct cv_case *c = &cv_cases[i];
        int got = conv_op(cv, 70000 + 2 * i, NINES__OP_TYPE__OP_INSERT, c, detail, sizeof detail);
        conv_expect(got, detail, c, "cv");
        if (!cv_is_key(c))
            continue;
        got = conv_op(cvk, 70001 + 2 * i, NINES__OP_TYPE__OP_GET, c, detail, sizeof detail);
        conv_expect(got, detail, c, "cvk");
    }
    for (uint32_t i = 1; i <= NN; i++)
        CU_ASSERT_EQUAL(ksvc_ntxns(W.n[i].kern), 0);
}

/* ---- node sets (issue 9): roles, takeover, re-prepare ----
 * A second world (suite "ksvc_nodeset"): the same four nodes and table, whose
 * node set then changes. */

/* Install on `node` node set `epoch` with `members` (all current); the node
 * serves when `serving`. */
static void ns_put(uint32_t node, uint64_t epoch, uint64_t members, bool serving)
{
    struct rt_nodeset ns = {.epoch = epoch, .members = members, .current = members,
                            .member = serving, .serving = serving};
    for (uint32_t id = 1; id <= NN; id++)
        if (members & RT_NODE_BIT(id)) {
            ns.coordinator = id;
            break;
        }
    if (!serving)
        snprintf(ns.reason, sizeof ns.reason, "node %u is outside node set %llu (test)", node,
                 (unsigned long long)epoch);
    rt_install_nodeset(W.n[node].rt, &ns);
}

/* A new node set of `members`, installed on every node at the same point
 * (the nodes outside it learn so and stop serving). */
static void ns_install(uint64_t members)
{
    W.epoch++;
    W.cur = members;
    W.mem = W.sbo = 0;
    for (uint32_t i = 1; i <= NN; i++)
        ns_put(i, W.epoch, members, (members & RT_NODE_BIT(i)) != 0);
}

static void send_prepare(uint32_t node, uint64_t txn, uint32_t ctl, uint32_t hsc)
{
    struct rt_msg *m = rt_msg_new(W.n[CTL].rt, NINES__MSG_TYPE__PREPARE_REQ);
    Nines__PrepareReq *p = RT_BODY(m, Nines__PrepareReq, nines__prepare_req__init);
    p->txn = txn;
    p->ctl = ctl;
    p->hsc = hsc;
    CU_ASSERT_EQUAL(rt_send(W.n[CTL].rt, node, RT_SVC_KERN, m), 0);
}

/* COMMIT_REQ / ABORT_REQ sent by node `from` (the hsc answering a question). */
static void send_end_from(uint32_t from, uint32_t node, uint64_t txn, bool commit)
{
    struct rt_msg *m = rt_msg_new(W.n[from].rt, commit ? NINES__MSG_TYPE__COMMIT_REQ
                                                       : NINES__MSG_TYPE__ABORT_REQ);
    if (commit)
        RT_BODY(m, Nines__CommitReq, nines__commit_req__init)->txn = txn;
    else
        RT_BODY(m, Nines__AbortReq, nines__abort_req__init)->txn = txn;
    CU_ASSERT_EQUAL(rt_send(W.n[from].rt, node, RT_SVC_KERN, m), 0);
}

/* The digest entry of fragment `frag` at `node` (its next LSN), 0 when absent. */
static uint64_t next_lsn_at(uint32_t node, uint32_t frag)
{
    ft_clear(CTL);
    struct rt_msg *m = rt_msg_new(W.n[CTL].rt, NINES__MSG_TYPE__KERN_DIGEST_REQ);
    RT_BODY(m, Nines__KernDigestReq, nines__kern_digest_req__init)->table = W.table;
    CU_ASSERT_EQUAL(rt_send(W.n[CTL].rt, node, RT_SVC_KERN, m), 0);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0) == 1, 2000);
    const Nines__KernDigestConf *c = ft_find(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    uint64_t lsn = 0;
    for (size_t i = 0; i < c->n_replicas; i++)
        if (c->replicas[i]->frag == frag)
            lsn = c->replicas[i]->next_lsn;
    ft_clear(CTL);
    return lsn;
}

/* Every fragment whose two replicas are both on current nodes: equal. */
static void check_digests_live(void)
{
    run(300);
    ft_clear(CTL);
    int nq = 0;
    for (uint32_t i = 1; i <= NN; i++) {
        if (!(W.cur & RT_NODE_BIT(i)))
            continue;
        struct rt_msg *m = rt_msg_new(W.n[CTL].rt, NINES__MSG_TYPE__KERN_DIGEST_REQ);
        RT_BODY(m, Nines__KernDigestReq, nines__kern_digest_req__init)->table = W.table;
        CU_ASSERT_EQUAL(rt_send(W.n[CTL].rt, i, RT_SVC_KERN, m), 0);
        nq++;
    }
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0) == nq, 2000);
    CU_ASSERT_EQUAL_FATAL(ft_count(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0), nq);
    struct digest d[NFRAGS];
    memset(d, 0, sizeof d);
    for (int j = 0; j < nq; j++) {
        const Nines__KernDigestConf *c = ft_find(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0, j);
        for (size_t r = 0; r < c->n_replicas; r++) {
            const Nines__ReplicaDigest *x = c->replicas[r];
            CU_ASSERT_FATAL(x->frag < NFRAGS);
            int s = x->primary ? 0 : 1;
            CU_ASSERT_FALSE(d[x->frag].have[s]); /* never two primaries */
            d[x->frag].have[s] = true;
            d[x->frag].rows[s] = x->rows;
            d[x->frag].digest[s] = x->digest;
            d[x->frag].next_lsn[s] = x->next_lsn;
        }
    }
    int both = 0;
    for (int f = 0; f < NFRAGS; f++) {
        CU_ASSERT_TRUE(d[f].have[0]); /* every fragment has its primary */
        if (!d[f].have[1])
            continue;
        both++;
        CU_ASSERT_EQUAL(d[f].rows[0], d[f].rows[1]);
        CU_ASSERT_EQUAL(d[f].digest[0], d[f].digest[1]);
        CU_ASSERT_EQUAL(d[f].next_lsn[0], d[f].next_lsn[1]);
    }
    CU_ASSERT(both > 0);
    ft_clear(CTL);
}

/* An UPD_LOG_REQ for fragment `frag` sent by node `from` to node `to`: one
 * COMMIT record of txn 77 at `lsn`, of primary incarnation `pinc` — a
 * record the receiver would take if it took records from anyone. */
static void send_stray_records(uint32_t from, uint32_t to, uint32_t frag, uint64_t lsn,
                               uint64_t pinc)
{
    struct rt_msg *m = rt_msg_new(W.n[from].rt, NINES__MSG_TYPE__UPD_LOG_REQ);
    Nines__UpdLogReq *b = RT_BODY(m, Nines__UpdLogReq, nines__upd_log_req__init);
    b->table = W.table;
    b->frag = frag;
    b->pinc = pinc;
    struct kern_logrec lr = {.lsn = lsn, .txn = 77, .table = W.table, .frag = frag,
                             .op = KERN_LOG_COMMIT};
    uint8_t *buf = rt_msg_alloc(m, KERN_LOG_HDR);
    CU_ASSERT_EQUAL_FATAL(kern_logrec_encode(&lr, buf, KERN_LOG_HDR), (int)KERN_LOG_HDR);
    b->records = rt_msg_alloc(m, sizeof *b->records);
    b->records[0].data = buf;
    b->records[0].len = KERN_LOG_HDR;
    b->n_records = 1;
    CU_ASSERT_EQUAL(rt_send(W.n[from].rt, to, RT_SVC_UPD, m), 0);
}

static struct ksvc_stats kstats(uint32_t node)
{
    struct ksvc_stats st;
    ksvc_get_stats(W.n[node].kern, &st);
    return st;
}

/* A node outside the node set (serving false) refuses client work with
 * NINES_ENOTMEMBER and the reason; back in, it serves again. */
static void test_not_serving_refused(void)
{
    const uint32_t out = 4;
    W.epoch++;
    for (uint32_t i = 1; i <= NN; i++)
        ns_put(i, W.epoch, W.cur, i != out);
    int64_t k = 0;
    while (route(k).primary != out)
        k++;
    const uint64_t txn = 9101;
    struct req r = req_new(out, txn, false);
    req_op(&r, NINES__OP_TYPE__OP_GET, k, 0, NULL);
    req_send(&r);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, txn) == 1, 1000);
    const Nines__KernOpRef *ref = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_REF, txn, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_ENOTMEMBER);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "outside node set"));
    send_prepare(out, txn, CTL, HSC);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__PREPARE_REF, txn) == 1, 1000);
    const Nines__PrepareRef *pr = ft_find(CTL, NINES__MSG_TYPE__PREPARE_REF, txn, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pr);
    CU_ASSERT_EQUAL(pr->error, NINES_ENOTMEMBER);
    W.epoch++;
    for (uint32_t i = 1; i <= NN; i++)
        ns_put(i, W.epoch, W.cur, true);
    CU_ASSERT_EQUAL(get_v(9102, k, NULL, 0), -999);
    end_txn(txn, out, false);
    ft_clear(CTL);
}

/* Re-prepare (the controller side moved the transaction to a new hsc): the
 * primary answers PREPARE_CONF, sends its READY_IND to the new hsc and
 * queues a fresh end mark, so the standby's READY_IND goes there too. */
static void test_reprepare_new_hsc(void)
{
    const uint32_t nh = 4; /* the new hot-standby controller */
    int64_t k = 9200;
    while (route(k).standby == 0)
        k++;
    struct where w = route(k);
    const uint64_t txn = ((uint64_t)CTL << 56) | 9201;
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(txn, NINES__OP_TYPE__OP_INSERT, k, 1, true));
    RUN_UNTIL(readies(txn) == 1 && preadies_at(HSC, txn) == 1, 1000);
    CU_ASSERT_EQUAL_FATAL(readies(txn), 1);
    ft_clear(nh);
    send_prepare(w.primary, txn, CTL, nh);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__PREPARE_CONF, txn) == 1 &&
                  preadies_at(nh, txn) == 1 && sready_find(nh, txn, 0) != NULL,
              1000);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__PREPARE_CONF, txn), 1);
    CU_ASSERT_EQUAL(preadies_at(nh, txn), 1);
    const Nines__ReadyInd *pri = NULL;
    for (int i = 0; (pri = ft_find(nh, NINES__MSG_TYPE__READY_IND, txn, i)) && pri->standby; i++)
        ;
    CU_ASSERT_PTR_NOT_NULL_FATAL(pri);
    CU_ASSERT_EQUAL(pri->node, w.primary);
    CU_ASSERT_EQUAL_FATAL(pri->n_frags, 1);
    CU_ASSERT_EQUAL(pri->frags[0]->nrecords, 1);
    CU_ASSERT_EQUAL(pri->frags[0]->standby, w.standby);
    const Nines__ReadyInd *sri = sready_find(nh, txn, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sri);
    CU_ASSERT_EQUAL(sri->node, w.standby);
    CU_ASSERT_EQUAL(sri->frag, w.frag);
    CU_ASSERT_EQUAL(readies(txn), 1); /* nothing new for the old hsc */
    /* the same hsc again: answered, nothing re-sent */
    send_prepare(w.primary, txn, CTL, nh);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__PREPARE_CONF, txn) == 2, 1000);
    run(50);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__PREPARE_CONF, txn), 2);
    CU_ASSERT_EQUAL(preadies_at(nh, txn), 1);
    CU_ASSERT_PTR_NULL(sready_find(nh, txn, 1));
    end_txn(txn, w.primary, true);
    CU_ASSERT_EQUAL(get_v(9202, k, NULL, 0), 1);
    ft_clear(nh);
    ft_clear(HSC);
}

/* A PREPARE_REQ for a transaction that ended here (still waiting for its
 * standby's acknowledgement): PREPARE_REF, NINES_ESTATE, with the outcome. */
static void ended_prepare(uint64_t txn, int64_t k, bool commit)
{
    struct where w = route(k);
    uint32_t type = commit ? NINES__MSG_TYPE__COMMIT_CONF : NINES__MSG_TYPE__ABORT_CONF;
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(txn, NINES__OP_TYPE__OP_INSERT, k, 1, true));
    RUN_UNTIL(readies(txn) == 1, 1000);
    CU_ASSERT_EQUAL_FATAL(readies(txn), 1);
    run(50);
    fl_set(NINES__MSG_TYPE__UPD_LOG_CONF, w.standby, w.primary, (int32_t)w.frag, 0, true);
    send_end(w.primary, txn, commit);
    run(50);
    CU_ASSERT_EQUAL(ft_count(CTL, type, txn), 0); /* ended, not confirmed yet */
    send_prepare(w.primary, txn, CTL, 4);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__PREPARE_REF, txn) == 1, 1000);
    const Nines__PrepareRef *pr = ft_find(CTL, NINES__MSG_TYPE__PREPARE_REF, txn, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pr);
    CU_ASSERT_EQUAL(pr->error, NINES_ESTATE);
    CU_ASSERT_EQUAL(pr->outcome, commit ? 1 : 2);
    fl_off();
    RUN_UNTIL(ft_count(CTL, type, txn) == 1, 1000);
    CU_ASSERT_EQUAL(ft_count(CTL, type, txn), 1);
}

static void test_prepare_ref_outcome(void)
{
    int64_t k1, k2;
    two_keys(9300, &k1, &k2);
    ended_prepare(9301, k1, true);
    ended_prepare(9302, k2, false);
    CU_ASSERT_EQUAL(get_v(9303, k1, NULL, 0), 1);
    CU_ASSERT_EQUAL(get_v(9304, k2, NULL, 0), -999);
    ft_clear(CTL);
    ft_clear(HSC);
}

/* A standby takes log records only from its fragment's primary in the
 * installed node set: records from another node are dropped, counted, and
 * change nothing (without the check they would be applied). */
static void test_redo_only_from_primary(void)
{
    int64_t k = 9400;
    while (route(k).standby == 0)
        k++;
    struct where w = route(k);
    uint32_t stray = 1;
    while (stray == w.primary || stray == w.standby)
        stray++;
    fl_set(NINES__MSG_TYPE__UPD_LOG_REQ, w.primary, w.standby, (int32_t)w.frag, 0, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(9401, NINES__OP_TYPE__OP_INSERT, k, 1, true));
    RUN_UNTIL(readies(9401) == 1, 1000);
    end_txn(9401, w.primary, true);
    uint64_t pinc = FL.pinc;
    fl_off();
    run(200);
    uint64_t lsn = next_lsn_at(w.standby, w.frag);
    CU_ASSERT_EQUAL_FATAL(lsn, next_lsn_at(w.primary, w.frag));
    struct ksvc_stats st0 = kstats(w.standby);
    send_stray_records(stray, w.standby, w.frag, lsn, pinc);
    run(50);
    CU_ASSERT_EQUAL(kstats(w.standby).redo_refused, st0.redo_refused + 1);
    CU_ASSERT_EQUAL(next_lsn_at(w.standby, w.frag), lsn);
    check_digests_live();
    ft_clear(HSC);
}

/* A node set installed from inside a handler of node TRIG.node's fake
 * controller, when the trigger READY_IND arrives: between the network
 * delivery of the messages that came with it and their handling. */
struct trig {
    uint32_t node;
    uint64_t txn, members;
    bool done;
};
static struct trig TRIG;

static void trig_hook(uint32_t node, struct rt_msg *m)
{
    struct ft *f = &W.n[node].ft;
    if (!TRIG.done && m->type == NINES__MSG_TYPE__READY_IND && msg_txn(m) == TRIG.txn) {
        TRIG.done = true;
        f->hook = NULL;
        ns_install(TRIG.members);
        return;
    }
    CU_ASSERT_FATAL(f->n < MAXMSG); /* kept as ft_on_msg does */
    rt_msg_keep(m);
    f->msgs[f->n++] = m;
}

/* Stop the filter; re-send the held messages of `type` for fragment `frag`
 * to `to` right behind a trigger READY_IND(txn) to `tnode`, both from their
 * sender (one connection, in order), discard the others, and step until
 * the trigger installed `members` (node TRIG.node gets both in one turn). */
static void fl_pass_discard(uint32_t type, net_addr to, uint32_t frag, uint32_t tnode,
                            uint64_t txn, uint64_t members)
{
    FL.type = FL.type2 = 0;
    FL.take = false;
    for (uint32_t i = 1; i <= NN; i++)
        (void)rt_fault_set_filter(W.n[i].rt, NULL, NULL);
    bool sent_trigger = false;
    for (int i = 0; i < FL.nheld; i++) {
        struct rt_msg *m = FL.held[i];
        bool pass = m->type == type && FL.held_to[i] == to &&
                    ((const Nines__UpdLogReq *)m->body)->frag == frag;
        if (!pass) {
            rt_msg_free(W.n[FL.held_node[i]].rt, m);
            continue;
        }
        struct rt *rt = W.n[FL.held_node[i]].rt;
        if (!sent_trigger) {
            struct rt_msg *t = rt_msg_new(rt, NINES__MSG_TYPE__READY_IND);
            Nines__ReadyInd *b = RT_BODY(t, Nines__ReadyInd, nines__ready_ind__init);
            b->txn = txn;
            b->node = FL.held_node[i];
            CU_ASSERT_EQUAL(rt_send_nofault(rt, tnode, RT_SVC_TXC, t), 0);
            sent_trigger = true;
            TRIG = (struct trig){.node = tnode, .txn = txn, .members = members};
            W.n[tnode].ft.hook = trig_hook;
        }
        CU_ASSERT_EQUAL(rt_send_nofault(rt, FL.held_to[i], FL.held_svc[i], m), 0);
    }
    FL.nheld = 0;
    CU_ASSERT_TRUE_FATAL(sent_trigger);
    RUN_UNTIL(TRIG.done, 50);
    W.n[tnode].ft.hook = NULL;
    run(50);
}

/* Node 3 leaves the node set. For its primary fragment F (standby S):
 *   (a) a committed transaction whose COMMIT record S holds: present;
 *   (b) records without an end mark: aborted at S, absent, locks released;
 *   (c) end marks: S asks the hsc; COMMIT -> present, ABORT -> absent;
 *   (d) end mark, neither hsc nor ctl can tell: held, its key blocked,
 *       the other keys served; resolved later by an ordinary ABORT_REQ;
 *   (e) records of the old primary after the install: dropped;
 *   (f) records and end mark received in the same loop turn as the new
 *       node set: redone before the takeover (in doubt with a mark).
 * And a fragment whose standby was node 3: its primary goes ALONE and
 * releases the confirmation that waited for node 3's acknowledgement. */
static void test_takeover(void)
{
    const uint32_t gone = 3;
    int64_t ks[6];
    int nk = 0;
    uint32_t f3 = UINT32_MAX;
    for (int64_t k = 9500; nk < 6; k++) {
        struct where w = route(k);
        if (w.primary != gone || w.standby == 0)
            continue;
        if (f3 == UINT32_MAX)
            f3 = w.frag;
        if (w.frag == f3)
            ks[nk++] = k;
    }
    const uint32_t s3 = route(ks[0]).standby;
    const int64_t kA = ks[0], kB = ks[1], kC1 = ks[2], kC2 = ks[3], kD = ks[4], kF = ks[5];
#define TX(n) (((uint64_t)CTL << 56) | (n))
    const uint64_t A = TX(9501), B = TX(9502), C1 = TX(9503), C2 = TX(9504), D = TX(9505),
                   E = TX(9506), F = TX(9507);
    /* how many fragments S takes over */
    const struct dict_table *t = dict_table_by_id(dsvc_current(W.n[1].dict), W.table);
    uint64_t taken = 0;
    for (uint32_t f = 0; f < t->nfrags; f++)
        taken += t->frags[f].primary == gone && t->frags[f].standby == s3;
    /* (a) */
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(A, NINES__OP_TYPE__OP_INSERT, kA, 11, true));
    RUN_UNTIL(readies(A) == 1, 1000);
    end_txn(A, gone, true);
    /* (b) */
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(B, NINES__OP_TYPE__OP_INSERT, kB, 12, false));
    /* (c), (d) */
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(C1, NINES__OP_TYPE__OP_INSERT, kC1, 13, true));
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(C2, NINES__OP_TYPE__OP_INSERT, kC2, 14, true));
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(D, NINES__OP_TYPE__OP_INSERT, kD, 15, true));
    RUN_UNTIL(readies(C1) == 1 && readies(C2) == 1 && readies(D) == 1, 1000);
    CU_ASSERT_EQUAL_FATAL(readies(D), 1);
    /* a primary whose standby is node 3: E committed, node 3's
     * acknowledgement held back */
    int64_t kE = 9600;
    while (route(kE).standby != gone)
        kE++;
    struct where we = route(kE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(E, NINES__OP_TYPE__OP_INSERT, kE, 16, true));
    RUN_UNTIL(readies(E) == 1, 1000);
    run(50);
    run(50); /* B's records are at S */
    /* from here node 3's acknowledgements (E's among them) and log batches
     * (F's) are held back */
    fl_set(NINES__MSG_TYPE__UPD_LOG_CONF, gone, 0, -1, 0, true);
    FL.type2 = NINES__MSG_TYPE__UPD_LOG_REQ;
    send_end(we.primary, E, true);
    run(100);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__COMMIT_CONF, E), 0);
    /* (f) F prepared at node 3; its records and end mark reach S only in
     * the same loop turn as the new node set: received before the epoch,
     * redone before S becomes primary (the barrier), so F is in doubt with
     * an end mark, not aborted */
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(F, NINES__OP_TYPE__OP_INSERT, kF, 17, true));
    run(5);
    CU_ASSERT_EQUAL(readies(F), 0);
    struct ksvc_stats st0 = kstats(s3);
    fl_pass_discard(NINES__MSG_TYPE__UPD_LOG_REQ, s3, f3, s3, TX(9599),
                    W.cur & ~RT_NODE_BIT(gone));
    CU_ASSERT_TRUE_FATAL(TRIG.done); /* node 3 left */
    CU_ASSERT_EQUAL(readies(F), 1);  /* S redid F's mark before it took over */
    CU_ASSERT_EQUAL(route(kA).primary, s3);
    /* the ALONE primary stops waiting for the departed standby */
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__COMMIT_CONF, E) == 1, 1000);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__COMMIT_CONF, E), 1);
    /* the in-doubt transactions with an end mark ask the hsc; B does not */
    RUN_UNTIL(outcome_reqs(HSC, C1) == 1 && outcome_reqs(HSC, C2) == 1 &&
                  outcome_reqs(HSC, D) == 1 && outcome_reqs(HSC, F) == 1,
              1000);
    CU_ASSERT_EQUAL(outcome_reqs(HSC, F), 1);
    CU_ASSERT_EQUAL(outcome_reqs(HSC, C1), 1);
    CU_ASSERT_EQUAL(outcome_reqs(HSC, C2), 1);
    CU_ASSERT_EQUAL_FATAL(outcome_reqs(HSC, D), 1);
    CU_ASSERT_EQUAL(outcome_reqs(HSC, B) + outcome_reqs(CTL, B), 0);
    const Nines__TxcOutcomeReq *q = ft_find(HSC, NINES__MSG_TYPE__TXC_OUTCOME_REQ, D, 0);
    CU_ASSERT_EQUAL(q->node, s3);
    struct ksvc_stats st = kstats(s3);
    CU_ASSERT_EQUAL(st.takeovers, st0.takeovers + taken);
    CU_ASSERT_EQUAL(st.indoubt_aborted, st0.indoubt_aborted + 1);
    CU_ASSERT_EQUAL(st.indoubt_asked, st0.indoubt_asked + 4);
    /* the answers: C1 and F commit, C2 abort; nobody knows D */
    send_end_from(HSC, s3, C1, true);
    send_end_from(HSC, s3, F, true);
    send_end_from(HSC, s3, C2, false);
    outcome_ref(HSC, s3, D, NINES_EINDOUBT);
    RUN_UNTIL(outcome_reqs(CTL, D) == 1, 1000);
    CU_ASSERT_EQUAL_FATAL(outcome_reqs(CTL, D), 1);
    outcome_ref(CTL, s3, D, NINES_EINDOUBT);
    run(50);
    CU_ASSERT_EQUAL(kstats(s3).held, st0.held + 1);
    /* what the new primary serves */
    CU_ASSERT_EQUAL(get_v(TX(9511), kA, NULL, 0), 11);
    CU_ASSERT_EQUAL(get_v(TX(9512), kB, NULL, 0), -999);
    CU_ASSERT_EQUAL(get_v(TX(9513), kC1, NULL, 0), 13);
    CU_ASSERT_EQUAL(get_v(TX(9514), kC2, NULL, 0), -999);
    CU_ASSERT_EQUAL(get_v(TX(9517), kF, NULL, 0), 17);
    /* D's key is blocked; the other keys of its fragment are served */
    const uint64_t G = TX(9515);
    struct req g = req_new(s3, G, false);
    req_op(&g, NINES__OP_TYPE__OP_GET, kD, 0, NULL);
    req_send(&g);
    run(200);
    CU_ASSERT_EQUAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, G) +
                        ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, G),
                    0);
    CU_ASSERT_EQUAL(get_v(TX(9516), kA, NULL, 0), 11);
    /* (e) records of the old primary after the install (node 3 is at the
     * new epoch too, outside the set): dropped */
    uint64_t lsn = next_lsn_at(s3, f3);
    send_stray_records(gone, s3, f3, lsn, 1);
    run(50);
    CU_ASSERT_EQUAL(kstats(s3).redo_refused, st0.redo_refused + 1);
    CU_ASSERT_EQUAL(next_lsn_at(s3, f3), lsn);
    /* D resolved late by an ordinary ABORT_REQ: the waiting reader goes on */
    send_end(s3, D, false);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, G) == 1, 1000);
    const Nines__KernOpConf *c = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_CONF, G, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->results[0]->status, NINES_ENOTFOUND);
    end_txn(G, s3, true);
    CU_ASSERT_EQUAL(kstats(s3).held, st0.held);
    CU_ASSERT_EQUAL(kstats(s3).marks_held, 0); /* every in-doubt mark was taken over */
    check_digests_live();
    ft_clear(CTL);
    ft_clear(HSC);
#undef TX
}

/* A prepared transaction whose controller (node 3, in its id) is outside
 * the node set asks its hsc directly: membership, not reachability. */
static void test_questions_skip_non_members(void)
{
    const uint32_t gone = 3;
    CU_ASSERT_FALSE_FATAL(W.cur & RT_NODE_BIT(gone));
    int64_t k = 9800;
    while (route(k).standby == 0)
        k++;
    struct where w = route(k);
    const uint64_t txn = ((uint64_t)gone << 56) | 9801;
    ft_clear(gone);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(txn, NINES__OP_TYPE__OP_INSERT, k, 1, true));
    RUN_UNTIL(readies(txn) == 1, 1000);
    CU_ASSERT_EQUAL_FATAL(readies(txn), 1);
    RUN_UNTIL(outcome_reqs(HSC, txn) == 1, 3000); /* after ask_us (300 ms) */
    CU_ASSERT_EQUAL(outcome_reqs(HSC, txn), 1);
    CU_ASSERT_EQUAL(outcome_reqs(gone, txn), 0);
    send_end_from(HSC, w.primary, txn, false);
    RUN_UNTIL(ft_count(HSC, NINES__MSG_TYPE__ABORT_CONF, txn) == 1, 1000);
    CU_ASSERT_EQUAL(ft_count(HSC, NINES__MSG_TYPE__ABORT_CONF, txn), 1);
    CU_ASSERT_EQUAL(get_v(9802, k, NULL, 0), -999);
    check_digests_live();
    ft_clear(gone);
    ft_clear(HSC);
}

/* Node 1 leaves too: no node of site 0 is current. A fragment whose
 * primary is alone at site 1 has no log-copy node: writes are refused
 * "not committed", reads served. Node 1 itself refuses with ENOTMEMBER. */
static void test_alone_without_logcopy_refused(void)
{
    ns_install(W.cur & ~RT_NODE_BIT(1));
    run(50);
    int64_t k = 9700;
    struct where w = route(k);
    CU_ASSERT_NOT_EQUAL_FATAL(w.primary, 0);
    CU_ASSERT_EQUAL(w.standby, 0);
    const uint64_t txn = 9701;
    struct req r = req_new(w.primary, txn, false);
    req_op(&r, NINES__OP_TYPE__OP_INSERT, k, 1, NULL);
    req_send(&r);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, txn) +
                  ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, txn) == 1,
              1000);
    const Nines__KernOpRef *ref = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_REF, txn, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_EUNREACHABLE);
    char want[160];
    snprintf(want, sizeof want, "fragment %u is primary-alone on node %u and no node of the other "
             "site is in the node set", w.frag, w.primary);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "not committed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, want));
    end_txn(txn, w.primary, false);
    CU_ASSERT_EQUAL(get_v(9702, k, NULL, 0), -999); /* reads are served */
    /* node 1 is outside */
    struct req r1 = req_new(1, 9703, false);
    r1.q->n_ops = r1.q->n_parts = r1.q->n_keys = 0;
    req_send(&r1);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_REF, 9703) == 1, 1000);
    ref = ft_find(CTL, NINES__MSG_TYPE__KERN_OP_REF, 9703, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_ENOTMEMBER);
    ft_clear(CTL);
    ft_clear(HSC);
}

/* The lag in time (updchan/README.md "Lag"): while the standby's
 * acknowledgements are held, the primary's shipping entry says since when
 * its oldest unacknowledged record waits; once they arrive, nothing. */
static void test_lag_in_time(void)
{
    int64_t k = 27000;
    while (route(k).standby == 0)
        k++;
    struct where w = route(k);
    struct upd_ship *sh = upd_ship_find(W.n[w.primary].upd, W.table, w.frag);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sh);
    run(300);
    struct upd_ship_info si;
    upd_ship_info(sh, &si);
    CU_ASSERT_EQUAL(si.behind_since_us, 0); /* idle: the standby holds everything */
    fl_set(NINES__MSG_TYPE__UPD_LOG_CONF, w.standby, w.primary, (int32_t)w.frag, 0, true);
    CU_ASSERT_PTR_NOT_NULL(one_op(27001, NINES__OP_TYPE__OP_INSERT, k, 1, true));
    uint64_t t0 = rt_now_us(W.n[w.primary].rt);
    run(250); /* 50 ms */
    upd_ship_info(sh, &si);
    CU_ASSERT(si.behind_since_us != 0 && si.behind_since_us <= t0);
    CU_ASSERT(rt_now_us(W.n[w.primary].rt) - si.behind_since_us >= 40000);
    fl_off(); /* the held acknowledgements arrive */
    end_txn(27001, w.primary, true);
    run(300);
    upd_ship_info(sh, &si);
    CU_ASSERT_EQUAL(si.behind_since_us, 0);
}

/* ---- rebuild of a returning node's replicas (README "Rebuild") ---- */

/* Install node set `epoch` on every node: `members`, of which `current`
 * hold current replicas and `sbo` are standby-only. */
static void ns_install3(uint64_t members, uint64_t current, uint64_t sbo)
{
    W.epoch++;
    for (uint32_t i = 1; i <= NN; i++)
        if ((sbo & RT_NODE_BIT(i)) && !(W.sbo & RT_NODE_BIT(i)))
            W.since[i] = W.epoch; /* standby-only from now */
    W.cur = current;
    W.mem = members;
    W.sbo = sbo;
    for (uint32_t i = 1; i <= NN; i++) {
        bool in = (members & RT_NODE_BIT(i)) != 0;
        struct rt_nodeset ns = {.epoch = W.epoch, .members = members, .current = current,
                                .standby_only = sbo, .member = in, .serving = in};
        memcpy(ns.since, W.since, sizeof W.since);
        for (uint32_t id = 1; id <= NN; id++)
            if (current & RT_NODE_BIT(id)) {
                ns.coordinator = id;
                break;
            }
        if (!in)
            snprintf(ns.reason, sizeof ns.reason, "node %u is outside node set %llu (test)", i,
                     (unsigned long long)W.epoch);
        rt_install_nodeset(W.n[i].rt, &ns);
    }
}

/* Insert (k, v) and commit; false when refused. */
static bool put_kv(uint64_t txn, int64_t k, int64_t v)
{
    const Nines__KernOpConf *c = one_op(txn, NINES__OP_TYPE__OP_INSERT, k, v, true);
    if (!c)
        return false;
    end_txn(txn, route(k).primary, true);
    return true;
}

/* Every replica node `node` holds of W.table in HA state `ha` (or `ha2`)? */
static bool reps_in2(uint32_t node, enum ksvc_ha ha, enum ksvc_ha ha2, int *n_out)
{
    int n = 0;
    for (uint32_t f = 0; f < NFRAGS; f++) {
        struct ksvc_rep_info ri;
        if (ksvc_rep_info(W.n[node].kern, W.table, f, &ri) < 0)
            continue;
        if (ri.ha != ha && ri.ha != ha2)
            return false;
        n++;
    }
    if (n_out)
        *n_out = n;
    return n > 0;
}

static bool reps_in(uint32_t node, enum ksvc_ha ha, int *n_out)
{
    return reps_in2(node, ha, ha, n_out);
}

static void test_rebuild_returning_node(void)
{
    const uint32_t R = 3; /* the node that leaves and comes back */
    const uint64_t ALL = W.cur;
    uint64_t txn = 20000;
    int64_t k = 20000;
    for (int i = 0; i < 40; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 3));
    /* a transaction prepared at R and never decided (its controllers stay
     * silent): R keeps its locks while it is cut off; they must not keep
     * its rebuilt replica from becoming a standby */
    int64_t kopen = 29000;
    while (route(kopen).primary != R)
        kopen++;
    const Nines__KernOpConf *oc = one_op(29999, NINES__OP_TYPE__OP_INSERT, kopen, 1, true);
    CU_ASSERT_PTR_NOT_NULL(oc);
    /* R leaves: its fragments are PRIMARY ALONE, their log copied to a node
     * of R's site */
    ns_install(ALL & ~RT_NODE_BIT(R));
    run(20);
    for (int i = 0; i < 40; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 3));
    /* R is back as a member that is not current: it is the log copy of
     * each of its fragments and rebuilds them from their primaries, in
     * small chunks while transactions go on */
    for (uint32_t i = 1; i <= NN; i++)
        ksvc_rb_set_chunk(W.n[i].kern, 512);
    struct ksvc_rebuild_stats rs0;
    ksvc_rebuild_stats(W.n[R].kern, &rs0);
    ns_install3(ALL, ALL & ~RT_NODE_BIT(R), 0);
    run(1);
    int ncopying = 0;
    CU_ASSERT_TRUE(reps_in2(R, KSVC_HA_COPYING, KSVC_HA_CATCHING_UP, &ncopying));
    CU_ASSERT_EQUAL(ncopying, 4); /* every fragment placed on R */
    for (int i = 0; i < 60 && !reps_in(R, KSVC_HA_CATCHING_UP, NULL); i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 3)); /* writes during the copy */
    RUN_UNTIL(reps_in(R, KSVC_HA_CATCHING_UP, NULL), 20000);
    CU_ASSERT_TRUE_FATAL(reps_in(R, KSVC_HA_CATCHING_UP, NULL));
    struct ksvc_rebuild_stats rs;
    ksvc_rebuild_stats(W.n[R].kern, &rs);
    CU_ASSERT_EQUAL(rs.rebuilds_started - rs0.rebuilds_started, 4);
    CU_ASSERT(rs.copy_bytes_recv > 512); /* several chunks */
    CU_ASSERT_EQUAL(rs.reports - rs0.reports, 1); /* KSVC_MSG_REBUILT to the supervisor */
    CU_ASSERT(rs.stale_txns - rs0.stale_txns >= 1);  /* the undecided one, forgotten at R */
    /* in the stream: more commits reach R's replicas too */
    for (int i = 0; i < 20; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 3));
    run(300);
    /* current again, standby-only: the roles keep the primaries where
     * they are (no takeback yet), R is the hot standby of all four */
    ns_install3(ALL, ALL, RT_NODE_BIT(R));
    run(5);
    int nact = 0;
    CU_ASSERT_TRUE(reps_in(R, KSVC_HA_ACTIVE, &nact));
    CU_ASSERT_EQUAL(nact, 4);
    for (uint32_t f = 0; f < NFRAGS; f++) {
        struct ksvc_rep_info ri;
        if (ksvc_rep_info(W.n[R].kern, W.table, f, &ri) == 0)
            CU_ASSERT_EQUAL(ri.role, KERN_FRAG_HOT_STANDBY);
    }
    for (int i = 0; i < 20; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 3));
    check_digests(); /* every primary equals its standby, R's included */
    /* R's partner of site 0 leaves: R takes over what it was standby of,
     * and holds every committed row */
    uint32_t partner = 0;
    int64_t pk = 0;
    for (int64_t q = 20000; q < k && !partner; q++) {
        struct where w = route(q);
        if (w.standby == R) {
            partner = w.primary;
            pk = q;
        }
    }
    CU_ASSERT_NOT_EQUAL_FATAL(partner, 0);
    ns_install3(ALL & ~RT_NODE_BIT(partner), ALL & ~RT_NODE_BIT(partner), RT_NODE_BIT(R));
    RUN_UNTIL(route(pk).primary == R && get_v(++txn, pk, NULL, 0) == pk * 3, 20);
    for (int64_t q = 20000; q < k; q++)
        if (route(q).primary == R)
            CU_ASSERT_EQUAL(get_v(++txn, q, NULL, 0), q * 3);
    for (uint32_t i = 1; i <= NN; i++)
        ksvc_rb_set_chunk(W.n[i].kern, 0);
}

/* A chunk of the copy lost on the way: the rebuilding node asks again for
 * the same offset and the copy completes. Runs after rebuild_returning_node
 * (node 4 is out, node 3 is standby-only). */
static void test_rebuild_chunk_lost(void)
{
    const uint32_t R = 4;
    const uint64_t ALL = RT_NODE_BIT(1) | RT_NODE_BIT(2) | RT_NODE_BIT(3) | RT_NODE_BIT(4);
    CU_ASSERT_EQUAL_FATAL(W.cur, ALL & ~RT_NODE_BIT(R));
    const uint64_t sbo = W.sbo;
    uint64_t txn = 30000;
    int64_t k = 30000;
    for (int i = 0; i < 30; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 5));
    for (uint32_t i = 1; i <= NN; i++)
        ksvc_rb_set_chunk(W.n[i].kern, 256);
    struct ksvc_rebuild_stats rs0;
    ksvc_rebuild_stats(W.n[R].kern, &rs0);
    fl_set(NINES__MSG_TYPE__KERN_COPY_CONF, 0, R, -1, 2, false);
    ns_install3(ALL, ALL & ~RT_NODE_BIT(R), sbo);
    RUN_UNTIL(reps_in(R, KSVC_HA_CATCHING_UP, NULL), 20000);
    CU_ASSERT_TRUE(reps_in(R, KSVC_HA_CATCHING_UP, NULL));
    CU_ASSERT_EQUAL(FL.drop, 0); /* both chunks were dropped */
    fl_off();
    struct ksvc_rebuild_stats rs;
    ksvc_rebuild_stats(W.n[R].kern, &rs);
    CU_ASSERT(rs.copy_reasks - rs0.copy_reasks >= 2);
    ns_install3(ALL, ALL, sbo | RT_NODE_BIT(R));
    run(5);
    CU_ASSERT_TRUE(reps_in(R, KSVC_HA_ACTIVE, NULL));
    for (int i = 0; i < 10; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 5));
    check_digests();
    for (int64_t q = 30000; q < k; q++)
        CU_ASSERT_EQUAL(get_v(++txn, q, NULL, 0), q * 5);
    for (uint32_t i = 1; i <= NN; i++)
        ksvc_rb_set_chunk(W.n[i].kern, 0);
}

/* A chunk of the copy damaged on the way (a bit flipped in its bytes): the
 * loader refuses it (checksums, layout) — nothing of it is served — and the
 * rebuild starts over and completes. Runs after rebuild_chunk_lost: every
 * node is current, nodes 3 and 4 standby-only. */
static void test_rebuild_chunk_corrupt(void)
{
    const uint32_t R = 1;
    const uint64_t ALL = RT_NODE_BIT(1) | RT_NODE_BIT(2) | RT_NODE_BIT(3) | RT_NODE_BIT(4);
    const uint64_t sbo = W.sbo & ~RT_NODE_BIT(R);
    ns_install3(ALL & ~RT_NODE_BIT(R), ALL & ~RT_NODE_BIT(R), sbo);
    run(20);
    uint64_t txn = 35000;
    int64_t k = 35000;
    for (int i = 0; i < 30; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 11));
    struct ksvc_rebuild_stats rs0;
    ksvc_rebuild_stats(W.n[R].kern, &rs0);
    fl_set(NINES__MSG_TYPE__KERN_COPY_CONF, 0, R, -1, 0, false);
    FL.flip = 1;
    ns_install3(ALL, ALL & ~RT_NODE_BIT(R), sbo);
    RUN_UNTIL(reps_in(R, KSVC_HA_CATCHING_UP, NULL), 20000);
    CU_ASSERT_TRUE(reps_in(R, KSVC_HA_CATCHING_UP, NULL));
    CU_ASSERT_EQUAL(FL.flip, 0);
    fl_off();
    struct ksvc_rebuild_stats rs;
    ksvc_rebuild_stats(W.n[R].kern, &rs);
    CU_ASSERT_EQUAL(rs.load_failed - rs0.load_failed, 1);
    CU_ASSERT_EQUAL(rs.rebuilds_started - rs0.rebuilds_started, 4);
    ns_install3(ALL, ALL, sbo | RT_NODE_BIT(R));
    run(5);
    CU_ASSERT_TRUE(reps_in(R, KSVC_HA_ACTIVE, NULL));
    for (int i = 0; i < 10; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 11));
    check_digests();
    for (int64_t q = 35000; q < k; q++)
        CU_ASSERT_EQUAL(get_v(++txn, q, NULL, 0), q * 11);
}

/* The primary a rebuild copies from leaves while the copy runs: the
 * fragment is DOWN and that replica's rebuild stops (dropped: nothing
 * half-copied is kept or served). */
static void test_rebuild_source_lost(void)
{
    const uint32_t R = 2;
    const uint64_t ALL = RT_NODE_BIT(1) | RT_NODE_BIT(2) | RT_NODE_BIT(3) | RT_NODE_BIT(4);
    const uint64_t sbo = W.sbo & ~RT_NODE_BIT(R);
    ns_install3(ALL & ~RT_NODE_BIT(R), ALL & ~RT_NODE_BIT(R), sbo);
    run(20);
    uint64_t txn = 40000;
    int64_t k = 40000;
    for (int i = 0; i < 30; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 7));
    for (uint32_t i = 1; i <= NN; i++)
        ksvc_rb_set_chunk(W.n[i].kern, 64);
    ns_install3(ALL, ALL & ~RT_NODE_BIT(R), sbo);
    run(2);
    CU_ASSERT_TRUE(reps_in(R, KSVC_HA_COPYING, NULL));
    uint32_t src = 0;
    for (uint32_t f = 0; f < NFRAGS && !src; f++) {
        struct ksvc_rep_info ri;
        if (ksvc_rep_info(W.n[R].kern, W.table, f, &ri) == 0 && ri.ha == KSVC_HA_COPYING)
            src = ri.source;
    }
    CU_ASSERT_NOT_EQUAL_FATAL(src, 0);
    ns_install3(ALL & ~RT_NODE_BIT(src), ALL & ~RT_NODE_BIT(R) & ~RT_NODE_BIT(src),
                sbo & ~RT_NODE_BIT(src));
    run(50);
    for (uint32_t f = 0; f < NFRAGS; f++) {
        struct ksvc_rep_info ri;
        if (ksvc_rep_info(W.n[R].kern, W.table, f, &ri) == 0)
            CU_ASSERT_NOT_EQUAL(ri.source, src); /* nothing is rebuilt from a node gone */
    }
    struct ksvc_rebuild_stats rs;
    ksvc_rebuild_stats(W.n[R].kern, &rs);
    CU_ASSERT_EQUAL(rs.reports, 0); /* never said rebuilt: fragments are DOWN */
    for (uint32_t i = 1; i <= NN; i++)
        ksvc_rb_set_chunk(W.n[i].kern, 0);
}

/* ---- self-repair (dict/README.md "Building replicas"; supervisor/README.md
 * "Self-repair"; kernel/svc/README.md "Rebuild") ----
 * A world whose cluster file says repair_after_ms = REPAIR_MS: the
 * supervisors' repair timers run on the executors' (moved) clocks. */
#define REPAIR_MS 100

static int suite_init_repair(void)
{
    g_repair_after_ms = REPAIR_MS;
    int rc = suite_init();
    g_repair_after_ms = 0;
    return rc;
}

/* Cut node x off from every other node (or heal it). */
static void isolate(uint32_t x, bool cut)
{
    for (uint32_t i = 1; i <= NN; i++)
        if (i != x)
            net_testnet_partition(W.hub, x, i, cut);
}

/* Fragments of W.table whose dictionary standby (at node `node`'s
 * dictionary) is building. */
static int building_at(uint32_t node)
{
    const struct dict_table *t = dict_table_by_id(dsvc_current(W.n[node].dict), W.table);
    int n = 0;
    for (uint32_t f = 0; t && f < t->nfrags; f++)
        n += t->frags[f].standby_state == DICT_REP_BUILDING;
    return n;
}

/* Every fragment BOTH in the installed node set (node 1's dictionary). */
static bool all_both(void)
{
    const struct dict *d = dsvc_current(W.n[1].dict);
    const struct dict_table *t = dict_table_by_id(d, W.table);
    uint64_t since[65] = {0};
    memcpy(since, W.since, sizeof W.since);
    struct dict_live live = {.members = W.mem ? W.mem : W.cur, .current = W.cur,
                             .standby_only = W.sbo, .since = since};
    for (uint32_t f = 0; t && f < t->nfrags; f++) {
        struct dict_roles ro;
        if (dict_frag_roles_live(d, t, f, &live, &ro) || ro.state != DICT_FRAG_BOTH)
            return false;
    }
    return t != NULL;
}

/* Replicas of W.table node `node` holds in the dictionary of node 1. */
static uint32_t placed_on(uint32_t node)
{
    const struct dict_table *t = dict_table_by_id(dsvc_current(W.n[1].dict), W.table);
    uint32_t n = 0;
    for (uint32_t f = 0; t && f < t->nfrags; f++)
        n += (t->frags[f].primary == node) + (t->frags[f].standby == node);
    return n;
}

/* Digests of every current node: each fragment of `mask` (bit f) has its
 * primary and its standby, on two nodes, equal. */
static void check_two_in(uint32_t mask)
{
    run(300);
    ft_clear(CTL);
    int nq = 0;
    for (uint32_t i = 1; i <= NN; i++) {
        if (!(W.cur & RT_NODE_BIT(i)))
            continue;
        struct rt_msg *m = rt_msg_new(W.n[CTL].rt, NINES__MSG_TYPE__KERN_DIGEST_REQ);
        RT_BODY(m, Nines__KernDigestReq, nines__kern_digest_req__init)->table = W.table;
        CU_ASSERT_EQUAL(rt_send(W.n[CTL].rt, i, RT_SVC_KERN, m), 0);
        nq++;
    }
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0) == nq, 2000);
    CU_ASSERT_EQUAL_FATAL(ft_count(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0), nq);
    struct digest d[NFRAGS];
    uint32_t node[NFRAGS][2];
    memset(d, 0, sizeof d);
    memset(node, 0, sizeof node);
    for (int j = 0; j < nq; j++) {
        const Nines__KernDigestConf *c = ft_find(CTL, NINES__MSG_TYPE__KERN_DIGEST_CONF, 0, j);
        for (size_t r = 0; r < c->n_replicas; r++) {
            const Nines__ReplicaDigest *x = c->replicas[r];
            CU_ASSERT_FATAL(x->frag < NFRAGS);
            if (!(mask & (1u << x->frag)))
                continue;
            CU_ASSERT_EQUAL(x->ha, KSVC_HA_ACTIVE); /* a primary with its standby, or it */
            CU_ASSERT_FALSE(x->building);
            int s = x->primary ? 0 : 1;
            CU_ASSERT_FALSE(d[x->frag].have[s]);
            d[x->frag].have[s] = true;
            d[x->frag].rows[s] = x->rows;
            d[x->frag].digest[s] = x->digest;
            d[x->frag].next_lsn[s] = x->next_lsn;
            node[x->frag][s] = c->node;
        }
    }
    for (int f = 0; f < NFRAGS; f++) {
        if (!(mask & (1u << f)))
            continue;
        CU_ASSERT_TRUE(d[f].have[0] && d[f].have[1]);
        CU_ASSERT_NOT_EQUAL(node[f][0], node[f][1]);
        CU_ASSERT_EQUAL(d[f].rows[0], d[f].rows[1]);
        CU_ASSERT_EQUAL(d[f].digest[0], d[f].digest[1]);
        CU_ASSERT_EQUAL(d[f].next_lsn[0], d[f].next_lsn[1]);
    }
    ft_clear(CTL);
}

static void check_two_everywhere(void) { check_two_in((1u << NFRAGS) - 1); }

/* A node leaves and stays away: after repair_after_ms the coordinator's
 * supervisor has its replicas placed on its site-mate as building
 * replicas (a dictionary change at every node); the site-mate builds them
 * from the primaries while transactions commit, asks for each to be
 * marked built and becomes their hot standby; every fragment has two
 * agreeing replicas again. Then the node comes back: it holds nothing,
 * says it is rebuilt at once, and is made current holding nothing. */
static void test_repair_node_away(void)
{
    const uint32_t X = 4, MATE = 2; /* site 1: nodes 2 and 4 */
    const uint64_t ALL = W.cur;
    uint64_t txn = 50000;
    int64_t k = 50000;
    for (int i = 0; i < 40; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 11));
    CU_ASSERT_EQUAL(placed_on(X), 4);
    CU_ASSERT_EQUAL(placed_on(MATE), 4);
    uint64_t v0 = dsvc_current(W.n[1].dict)->version;
    for (uint32_t i = 1; i <= NN; i++)
        ksvc_rb_set_chunk(W.n[i].kern, 128);
    struct ksvc_rebuild_stats rs0;
    ksvc_rebuild_stats(W.n[MATE].kern, &rs0);
    /* X is cut off and leaves the node set: its fragments are ALONE */
    isolate(X, true);
    ns_install(ALL & ~RT_NODE_BIT(X));
    uint64_t t_left = rt_now_us(W.n[1].rt);
    run(20);
    int early = 0;
    while (rt_now_us(W.n[1].rt) - t_left < (REPAIR_MS - 20) * 1000u) {
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 11));
        k++;
        early++;
        /* before repair_after_ms: nothing moves */
        CU_ASSERT_EQUAL(dsvc_current(W.n[1].dict)->version, v0);
    }
    CU_ASSERT(early > 0);
    /* after it: the coordinator (node 1) asks for the repair; the
     * dictionary places X's four replicas on MATE, building */
    RUN_UNTIL(dsvc_current(W.n[1].dict)->version > v0, (REPAIR_MS * 1000 / STEP_US) * 4);
    CU_ASSERT(rt_now_us(W.n[1].rt) - t_left >= REPAIR_MS * 1000u);
    CU_ASSERT_EQUAL_FATAL(dsvc_current(W.n[1].dict)->version, v0 + 1);
    CU_ASSERT_EQUAL(building_at(1), 4);
    CU_ASSERT_EQUAL(placed_on(X), 0);
    CU_ASSERT_EQUAL(placed_on(MATE), 8);
    CU_ASSERT_EQUAL(W.n[1].sup.repair.node[X].st, SUP_REP_AWAY); /* asks again: nothing left */
    CU_ASSERT_EQUAL(W.n[1].sup.repair.st.moved, 4);
    /* MATE builds them (copy in 128-byte chunks) while writes go on */
    int nbuild = 0;
    for (uint32_t f = 0; f < NFRAGS; f++) {
        struct ksvc_rep_info ri;
        if (ksvc_rep_info(W.n[MATE].kern, W.table, f, &ri) == 0 && ri.building) {
            nbuild++;
            CU_ASSERT(ri.ha == KSVC_HA_COPYING || ri.ha == KSVC_HA_CATCHING_UP);
            CU_ASSERT_NOT_EQUAL(ri.source, 0);
        }
    }
    CU_ASSERT_EQUAL(nbuild, 4);
    for (int i = 0; i < 60 && building_at(1) > 0; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 11)); /* writes during the build */
    RUN_UNTIL(building_at(1) == 0 && building_at(2) == 0 && building_at(3) == 0, 40000);
    CU_ASSERT_EQUAL_FATAL(building_at(1), 0);
    run(20);
    CU_ASSERT_TRUE(all_both());
    struct ksvc_rebuild_stats rs;
    ksvc_rebuild_stats(W.n[MATE].kern, &rs);
    CU_ASSERT_EQUAL(rs.rebuilds_started - rs0.rebuilds_started, 4);
    CU_ASSERT_EQUAL(rs.rebuilds_done - rs0.rebuilds_done, 4);
    CU_ASSERT(rs.built_asked - rs0.built_asked >= 4);
    CU_ASSERT(rs.copy_bytes_recv - rs0.copy_bytes_recv > 4 * 128); /* several chunks */
    int nact = 0;
    CU_ASSERT_TRUE(reps_in(MATE, KSVC_HA_ACTIVE, &nact));
    CU_ASSERT_EQUAL(nact, 8);
    for (int i = 0; i < 20; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 11));
    check_two_everywhere();
    for (int64_t q = 50000; q < k; q++)
        CU_ASSERT_EQUAL(get_v(++txn, q, NULL, 0), q * 11);
    /* the repair is over: asked again, "nothing to repair" */
    RUN_UNTIL(W.n[1].sup.repair.node[X].st == SUP_REP_DONE, 20000);
    CU_ASSERT_EQUAL(W.n[1].sup.repair.node[X].st, SUP_REP_DONE);
    /* X comes back: a member not current with its old dictionary; it
     * catches up the dictionary, holds nothing, says it is rebuilt */
    struct ksvc_rebuild_stats rx0;
    ksvc_rebuild_stats(W.n[X].kern, &rx0);
    isolate(X, false);
    ns_install3(ALL, ALL & ~RT_NODE_BIT(X), 0);
    RUN_UNTIL(dsvc_current(W.n[X].dict)->version == dsvc_current(W.n[1].dict)->version &&
                  ksvc_nreplicas(W.n[X].kern) == 0,
              20000);
    CU_ASSERT_EQUAL(ksvc_nreplicas(W.n[X].kern), 0);
    run(5);
    struct ksvc_rebuild_stats rx;
    ksvc_rebuild_stats(W.n[X].kern, &rx);
    CU_ASSERT(rx.reports > rx0.reports); /* KSVC_MSG_REBUILT with nothing to rebuild */
    /* back after its replicas were repaired: replicas move back to it once
     * it is current and its takeback done (suite ksvc_reint) */
    CU_ASSERT_EQUAL(W.n[1].sup.repair.node[X].st, SUP_REP_BACK);
    /* the node set makes it current (standby-only): it holds nothing, the
     * fragments stay BOTH on the others */
    ns_install3(ALL, ALL, RT_NODE_BIT(X));
    run(5);
    CU_ASSERT_EQUAL(ksvc_nreplicas(W.n[X].kern), 0);
    CU_ASSERT_TRUE(all_both());
    for (int i = 0; i < 20; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 11));
    check_two_everywhere();
    for (uint32_t i = 1; i <= NN; i++)
        ksvc_rb_set_chunk(W.n[i].kern, 0);
}

/* The survivor a building replica copies from is standby-only (it came
 * back and was rebuilt; takeback has not moved primaries to it): marking
 * the built replica so would make the built one the primary (the roles of
 * BOTH keep a standby-only node from being primary), so it waits in the
 * stream, the fragment PRIMARY ALONE with the building node its log copy
 * (writes still commit). Once the survivor is no longer standby-only (what
 * takeback does), the replica is marked built and the fragment has two
 * agreeing replicas. Runs after repair_node_away (node 4 current and
 * holding nothing, node 2 holding every replica of site 1). */
static void test_repair_waits_for_takeback(void)
{
    const uint32_t S = 2, X = 3, MATE = 1; /* the fake controller is at node 1 */
    const uint64_t ALL = RT_NODE_BIT(1) | RT_NODE_BIT(2) | RT_NODE_BIT(3) | RT_NODE_BIT(4);
    CU_ASSERT_EQUAL_FATAL(W.cur, ALL);
    uint64_t txn = 60000;
    int64_t k = 60000;
    for (int i = 0; i < 30; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 13));
    /* S leaves briefly (shorter than repair_after_ms) and comes back as a
     * member not current: it rebuilds, then is current and standby-only */
    ns_install3(ALL & ~RT_NODE_BIT(S), ALL & ~RT_NODE_BIT(S), W.sbo);
    run(20); /* 4 ms: well within repair_after_ms */
    ns_install3(ALL, ALL & ~RT_NODE_BIT(S), W.sbo);
    RUN_UNTIL(reps_in(S, KSVC_HA_CATCHING_UP, NULL), 20000);
    CU_ASSERT_TRUE_FATAL(reps_in(S, KSVC_HA_CATCHING_UP, NULL));
    ns_install3(ALL, ALL, W.sbo | RT_NODE_BIT(S));
    run(5);
    CU_ASSERT_TRUE_FATAL(reps_in(S, KSVC_HA_ACTIVE, NULL));
    CU_ASSERT_EQUAL(dsvc_current(W.n[1].dict)->version, dsvc_current(W.n[3].dict)->version);
    uint64_t v0 = dsvc_current(W.n[1].dict)->version, moved0 = W.n[1].sup.repair.st.moved;
    /* X (site 0) leaves and stays away: S takes over the fragments they
     * shared; after repair_after_ms they are placed on MATE, building */
    struct ksvc_rebuild_stats rs0;
    ksvc_rebuild_stats(W.n[MATE].kern, &rs0);
    isolate(X, true);
    ns_install3(ALL & ~RT_NODE_BIT(X), ALL & ~RT_NODE_BIT(X), W.sbo);
    RUN_UNTIL(dsvc_current(W.n[1].dict)->version > v0, (REPAIR_MS * 1000 / STEP_US) * 4);
    CU_ASSERT_EQUAL_FATAL(dsvc_current(W.n[1].dict)->version, v0 + 1);
    CU_ASSERT_EQUAL(building_at(1), 4);
    CU_ASSERT_EQUAL(W.n[1].sup.repair.st.moved - moved0, 4);
    /* built, but waiting: still building in the dictionary, ALONE, the
     * writes commit (log copy = MATE) */
    RUN_UNTIL(reps_in(MATE, KSVC_HA_CATCHING_UP, NULL) ||
                  (reps_in2(MATE, KSVC_HA_ACTIVE, KSVC_HA_CATCHING_UP, NULL) &&
                   !reps_in(MATE, KSVC_HA_ACTIVE, NULL)),
              20000);
    run(3000); /* 0.6 s: several retry periods */
    CU_ASSERT_EQUAL(building_at(1), 4);
    int waiting = 0;
    for (uint32_t f = 0; f < NFRAGS; f++) {
        struct ksvc_rep_info ri;
        if (ksvc_rep_info(W.n[MATE].kern, W.table, f, &ri) == 0 && ri.building) {
            waiting++;
            CU_ASSERT_EQUAL(ri.ha, KSVC_HA_CATCHING_UP);
            CU_ASSERT_EQUAL(ri.eta_ms, 0);
        }
    }
    CU_ASSERT_EQUAL(waiting, 4);
    struct ksvc_rebuild_stats rs;
    ksvc_rebuild_stats(W.n[MATE].kern, &rs);
    CU_ASSERT_EQUAL(rs.built_asked, rs0.built_asked); /* never asked */
    for (int i = 0; i < 20; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 13));
    /* takeback's effect, simulated by a node set: S is no longer
     * standby-only; MATE now asks and becomes the hot standby of the four.
     * (The simulation also moves the primary of the one fragment whose
     * dictionary primary is S and whose partner was primary meanwhile —
     * without takeback's protocol its old primary's replica goes out of
     * service, so only the four built fragments are checked here.) */
    uint32_t built = 0;
    for (uint32_t f = 0; f < NFRAGS; f++) {
        struct ksvc_rep_info ri;
        if (ksvc_rep_info(W.n[MATE].kern, W.table, f, &ri) == 0 && ri.building)
            built |= 1u << f;
    }
    ns_install3(ALL & ~RT_NODE_BIT(X), ALL & ~RT_NODE_BIT(X), W.sbo & ~RT_NODE_BIT(S));
    RUN_UNTIL(building_at(1) == 0 && building_at(2) == 0, 40000);
    CU_ASSERT_EQUAL_FATAL(building_at(1), 0);
    run(20);
    ksvc_rebuild_stats(W.n[MATE].kern, &rs);
    CU_ASSERT(rs.built_asked - rs0.built_asked >= 4);
    for (uint32_t f = 0; f < NFRAGS; f++) {
        struct ksvc_rep_info ri;
        if (!(built & (1u << f)))
            continue;
        CU_ASSERT_EQUAL_FATAL(ksvc_rep_info(W.n[MATE].kern, W.table, f, &ri), 0);
        CU_ASSERT_EQUAL(ri.ha, KSVC_HA_ACTIVE);
        CU_ASSERT_EQUAL(ri.role, KERN_FRAG_HOT_STANDBY);
    }
    for (int i = 0; i < 40; i++, k++)
        if (built & (1u << route(k).frag))
            CU_ASSERT_TRUE(put_kv(++txn, k, k * 13));
    check_two_in(built);
    for (int64_t q = 60000; q < k; q++)
        if (built & (1u << route(q).frag))
            CU_ASSERT_EQUAL(get_v(++txn, q, NULL, 0), q * 13);
}

/* ---- reintegration (dict/README.md "Reintegration placement";
 * supervisor/README.md "Reintegration") ----
 * A fresh world like ksvc_repair's (repair_after_ms = REPAIR_MS): node 4
 * stays away, its four replicas are repaired onto node 2 and built; node 4
 * comes back, holds nothing, becomes current standby-only — nothing moves
 * while its takeback is pending; once a node set no longer names it
 * standby-only the coordinator's supervisor moves hot standbys back to it
 * one at a time (each PRIMARY ALONE with node 4 its log copy while it is
 * built, never two at once) while writes commit, until the dictionary says
 * "balanced": every node holds four replicas, every fragment BOTH with two
 * agreeing replicas, every committed row readable. */
static void test_reint_node_returns(void)
{
    const uint32_t X = 4, MATE = 2; /* site 1: nodes 2 and 4 */
    const uint64_t ALL = W.cur;
    uint64_t txn = 70000;
    int64_t k = 70000;
    for (int i = 0; i < 40; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 7));
    CU_ASSERT_EQUAL(W.n[2].sup.repair.node[2].st, SUP_REP_BACK); /* itself, from its start */
    for (uint32_t i = 1; i <= NN; i++)
        ksvc_rb_set_chunk(W.n[i].kern, 128);
    /* X away past repair_after_ms: repaired onto MATE, built */
    uint64_t v0 = dsvc_current(W.n[1].dict)->version;
    isolate(X, true);
    ns_install(ALL & ~RT_NODE_BIT(X));
    RUN_UNTIL(dsvc_current(W.n[1].dict)->version > v0, (REPAIR_MS * 1000 / STEP_US) * 4);
    CU_ASSERT_EQUAL_FATAL(placed_on(X), 0);
    for (int i = 0; i < 200 && building_at(1) > 0; i++, k++) {
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 7));
        run(20);
    }
    RUN_UNTIL(building_at(1) == 0 && building_at(2) == 0 && building_at(3) == 0, 40000);
    CU_ASSERT_EQUAL_FATAL(building_at(1), 0);
    CU_ASSERT_EQUAL(placed_on(MATE), 8);
    RUN_UNTIL(W.n[1].sup.repair.node[X].st == SUP_REP_DONE, 20000);
    CU_ASSERT_EQUAL(W.n[1].sup.repair.node[X].st, SUP_REP_DONE);
    /* X returns: a member, then current standby-only, holding nothing */
    isolate(X, false);
    ns_install3(ALL, ALL & ~RT_NODE_BIT(X), 0);
    RUN_UNTIL(dsvc_current(W.n[X].dict)->version == dsvc_current(W.n[1].dict)->version &&
                  ksvc_nreplicas(W.n[X].kern) == 0,
              20000);
    CU_ASSERT_EQUAL(ksvc_nreplicas(W.n[X].kern), 0);
    CU_ASSERT_EQUAL(W.n[1].sup.repair.node[X].st, SUP_REP_BACK);
    run(5);
    ns_install3(ALL, ALL, RT_NODE_BIT(X));
    /* the coordinator started BACK itself (a new process knows nothing of
     * an absence), asked for itself once, a second after its first node
     * set, and was told "balanced"; node 2 (not coordinating) keeps it */
    CU_ASSERT_EQUAL(W.n[1].sup.repair.node[1].st, SUP_REP_PRESENT);
    CU_ASSERT_EQUAL(W.n[1].sup.repair.st.reint_asked, 1);
    CU_ASSERT_EQUAL(W.n[1].sup.repair.st.reint_moved, 0);
    CU_ASSERT_EQUAL(W.n[2].sup.repair.node[2].st, SUP_REP_BACK);
    /* takeback pending: nothing moves (several retry periods of writes) */
    uint64_t v1 = dsvc_current(W.n[1].dict)->version;
    uint64_t asked1 = W.n[1].sup.repair.st.reint_asked;
    for (int i = 0; i < 20; i++, k++) {
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 7));
        run(100);
    }
    CU_ASSERT_EQUAL(dsvc_current(W.n[1].dict)->version, v1);
    CU_ASSERT_EQUAL(W.n[1].sup.repair.st.reint_asked, asked1);
    CU_ASSERT_EQUAL(placed_on(X), 0);
    /* takeback's effect (X holds nothing, so nothing to drain): X is no
     * longer standby-only; standbys move back, one at a time, while
     * transactions commit at every step */
    ns_install3(ALL, ALL, 0);
    int steps = 0, max_building = 0;
    while (steps < 40000 && !(W.n[1].sup.repair.node[X].st == SUP_REP_PRESENT &&
                             building_at(1) == 0)) {
        CU_ASSERT_TRUE_FATAL(put_kv(++txn, k, k * 7));
        k++;
        for (int j = 0; j < 10; j++, steps++) { /* never two building at once */
            step();
            int b = building_at(1);
            max_building = b > max_building ? b : max_building;
        }
    }
    CU_ASSERT_EQUAL_FATAL(W.n[1].sup.repair.node[X].st, SUP_REP_PRESENT);
    CU_ASSERT_EQUAL(max_building, 1); /* one at a time */
    /* the last moved standby's old holder keeps taking its primary's
     * stream KSVC_LEAVE_MS after the change, then drops it */
    CU_ASSERT(ksvc_nreplicas(W.n[MATE].kern) >= 4);
    run((int)(KSVC_LEAVE_MS * 1000u / STEP_US) + 10);
    CU_ASSERT_EQUAL(ksvc_nreplicas(W.n[MATE].kern), 4);
    CU_ASSERT_EQUAL(W.n[1].sup.repair.st.reint_moved, 4);
    CU_ASSERT_EQUAL(W.n[1].sup.repair.st.reint_done, 1);
    CU_ASSERT(W.n[1].sup.repair.st.reint_asked - asked1 >= 5); /* 4 moves, "balanced" */
    /* balanced: every node holds four replicas; only standbys moved */
    for (uint32_t i = 1; i <= NN; i++)
        CU_ASSERT_EQUAL(placed_on(i), 4);
    const struct dict_table *t = dict_table_by_id(dsvc_current(W.n[1].dict), W.table);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (uint32_t f = 0; f < t->nfrags; f++) {
        CU_ASSERT_NOT_EQUAL(t->frags[f].primary, X);
        CU_ASSERT_EQUAL(t->frags[f].standby_state, DICT_REP_READY);
    }
    int nact = 0;
    CU_ASSERT_TRUE(reps_in(X, KSVC_HA_ACTIVE, &nact));
    CU_ASSERT_EQUAL(nact, 4);
    CU_ASSERT_TRUE(reps_in(MATE, KSVC_HA_ACTIVE, &nact));
    CU_ASSERT_EQUAL(nact, 4);
    run(20);
    CU_ASSERT_TRUE(all_both());
    for (int i = 0; i < 20; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 7));
    check_two_everywhere();
    for (int64_t q = 70000; q < k; q++)
        CU_ASSERT_EQUAL(get_v(++txn, q, NULL, 0), q * 7);
    /* every dictionary agrees */
    for (uint32_t i = 2; i <= NN; i++)
        CU_ASSERT_EQUAL(dsvc_current(W.n[i].dict)->version, dsvc_current(W.n[1].dict)->version);
    for (uint32_t i = 1; i <= NN; i++)
        ksvc_rb_set_chunk(W.n[i].kern, 0);
}

/* ---- takeback (README "Takeback") ----
 * A fourth world (suite "ksvc_takeback"): node R = 3 leaves, comes back, is
 * rebuilt and becomes current standby-only; the test plays the node-set
 * coordinator: TAKEBACK_REQ from node R (which drains nothing) to the
 * other nodes, the answers to R's fake controller, then the install that
 * clears R's standby-only bit (ns_install3). */
#define TB_R 3u
#define TB_ALL (RT_NODE_BIT(1) | RT_NODE_BIT(2) | RT_NODE_BIT(3) | RT_NODE_BIT(4))

static void tb_req(uint32_t to, uint64_t id, uint32_t drain_ms, uint32_t hold_ms)
{
    struct rt_msg *m = rt_msg_new(W.n[TB_R].rt, NINES__MSG_TYPE__TAKEBACK_REQ);
    Nines__TakebackReq *q = RT_BODY(m, Nines__TakebackReq, nines__takeback_req__init);
    q->node = TB_R;
    q->epoch = W.epoch;
    q->id = id;
    q->coordinator = TB_R;
    q->drain_ms = drain_ms;
    q->hold_ms = hold_ms;
    CU_ASSERT_EQUAL(rt_send(W.n[TB_R].rt, to, RT_SVC_KERN, m), 0);
}

/* The coordinator calls attempt `id` off at every node but R. */
static void tb_cancel_all(uint64_t id)
{
    for (uint32_t i = 1; i <= NN; i++) {
        if (i == TB_R)
            continue;
        struct rt_msg *m = rt_msg_new(W.n[TB_R].rt, NINES__MSG_TYPE__TAKEBACK_REQ);
        Nines__TakebackReq *q = RT_BODY(m, Nines__TakebackReq, nines__takeback_req__init);
        q->node = TB_R;
        q->epoch = W.epoch;
        q->id = id;
        q->cancel = true;
        CU_ASSERT_EQUAL(rt_send(W.n[TB_R].rt, i, RT_SVC_KERN, m), 0);
    }
}

/* TAKEBACK_REQ of attempt `id` to every node but R. */
static void tb_req_all(uint64_t id, uint32_t drain_ms, uint32_t hold_ms)
{
    for (uint32_t i = 1; i <= NN; i++)
        if (i != TB_R)
            tb_req(i, id, drain_ms, hold_ms);
}

/* Answers of `type` (TAKEBACK_CONF / REF) for attempt id at R's fake
 * coordinator; *frags: the fragments the CONFs say were drained. */
static int tb_answers(uint32_t type, uint64_t id, uint32_t *frags, uint32_t *from)
{
    struct ft *f = &W.n[TB_R].ft;
    int c = 0;
    if (frags)
        *frags = 0;
    for (int i = 0; i < f->n; i++) {
        if (f->msgs[i]->type != type)
            continue;
        if (type == NINES__MSG_TYPE__TAKEBACK_CONF) {
            const Nines__TakebackConf *b = (const Nines__TakebackConf *)f->msgs[i]->body;
            if (b->id != id)
                continue;
            CU_ASSERT_EQUAL(b->node, TB_R);
            if (frags)
                *frags += b->frags;
            if (from)
                *from = b->from;
        } else {
            const Nines__TakebackRef *b = (const Nines__TakebackRef *)f->msgs[i]->body;
            if (b->id != id)
                continue;
            if (from)
                *from = b->from;
        }
        c++;
    }
    return c;
}

static const Nines__TakebackRef *tb_ref(uint64_t id)
{
    struct ft *f = &W.n[TB_R].ft;
    for (int i = 0; i < f->n; i++)
        if (f->msgs[i]->type == NINES__MSG_TYPE__TAKEBACK_REF &&
            ((const Nines__TakebackRef *)f->msgs[i]->body)->id == id)
            return (const Nines__TakebackRef *)f->msgs[i]->body;
    return NULL;
}

static struct ksvc_tb_status tbst(uint32_t node)
{
    struct ksvc_tb_status s;
    ksvc_tb_status(W.n[node].kern, &s);
    return s;
}

/* Fragments (of every table) whose dictionary primary is R (they move at
 * a takeback); with partner != 0 only those whose other replica is there. */
static uint32_t tb_moving(uint32_t partner)
{
    const struct dict *d = dsvc_current(W.n[1].dict);
    uint32_t n = 0;
    for (uint32_t ti = 0; ti < d->ntables; ti++) {
        const struct dict_table *t = d->tables[ti];
        for (uint32_t f = 0; f < t->nfrags; f++)
            if (t->frags[f].primary == TB_R && (!partner || t->frags[f].standby == partner))
                n++;
    }
    return n;
}

/* A key >= from whose fragment's dictionary primary is R. */
static int64_t tb_key(int64_t from)
{
    const struct dict_table *t = dict_table_by_id(dsvc_current(W.n[1].dict), W.table);
    for (int64_t k = from;; k++)
        if (t->frags[route(k).frag].primary == TB_R)
            return k;
}

/* The KERN_OP_REF of txn, or NULL. */
static const Nines__KernOpRef *op_ref(uint64_t txn)
{
    return ft_find(CTL, NINES__MSG_TYPE__KERN_OP_REF, txn, 0);
}

/* Every replica on every node: none out of service, none offline. */
static void tb_no_oos(void)
{
    for (uint32_t i = 1; i <= NN; i++)
        for (uint32_t f = 0; f < NFRAGS; f++) {
            struct ksvc_rep_info ri;
            if (ksvc_rep_info(W.n[i].kern, W.table, f, &ri) == 0)
                CU_ASSERT_EQUAL(ri.ha, KSVC_HA_ACTIVE);
        }
}

/* R leaves, writes go on, R comes back, is rebuilt and made current
 * standby-only: it is the hot standby of every fragment placed on it. */
static void test_takeback_setup(void)
{
    uint64_t txn = 50000;
    int64_t k = 50000;
    for (int i = 0; i < 30; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 11));
    ns_install(TB_ALL & ~RT_NODE_BIT(TB_R));
    run(20);
    for (int i = 0; i < 30; i++, k++)
        CU_ASSERT_TRUE(put_kv(++txn, k, k * 11));
    ns_install3(TB_ALL, TB_ALL & ~RT_NODE_BIT(TB_R), 0);
    RUN_UNTIL(reps_in(TB_R, KSVC_HA_CATCHING_UP, NULL), 20000);
    CU_ASSERT_TRUE_FATAL(reps_in(TB_R, KSVC_HA_CATCHING_UP, NULL));
    run(100);
    ns_install3(TB_ALL, TB_ALL, RT_NODE_BIT(TB_R));
    run(50);
    CU_ASSERT_TRUE(reps_in(TB_R, KSVC_HA_ACTIVE, NULL));
    for (uint32_t f = 0; f < NFRAGS; f++) {
        struct ksvc_rep_info ri;
        if (ksvc_rep_info(W.n[TB_R].kern, W.table, f, &ri) == 0)
            CU_ASSERT_EQUAL(ri.role, KERN_FRAG_HOT_STANDBY);
    }
    CU_ASSERT(tb_moving(0) > 0);
    check_digests();
}

/* No traffic: every node but R answers CONF (R's partner with the
 * fragments it drained, the others with none); a new transaction there is
 * refused EAGAIN (nothing ran) until the install; the install that clears
 * R's bit makes R primary again without aborting or asking anything, the
 * partner its hot standby continuing its log in R's new stream; new writes
 * go to R and reach the partner (digests agree). */
static void test_takeback_no_traffic(void)
{
    const int64_t k = tb_key(51000);
    const uint32_t partner = route(k).primary, moving = tb_moving(0);
    CU_ASSERT_NOT_EQUAL_FATAL(partner, TB_R);
    ft_clear(TB_R);
    struct ksvc_stats r0 = kstats(TB_R), p0 = kstats(partner);
    tb_req_all(1, 200, 1000);
    RUN_UNTIL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 1, NULL, NULL) == NN - 1, 200);
    uint32_t frags = 0;
    CU_ASSERT_EQUAL_FATAL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 1, &frags, NULL), NN - 1);
    CU_ASSERT_EQUAL(frags, moving);
    CU_ASSERT_EQUAL(tb_answers(NINES__MSG_TYPE__TAKEBACK_REF, 1, NULL, NULL), 0);
    CU_ASSERT_EQUAL(tbst(partner).state, KSVC_TB_DRAINED);
    CU_ASSERT_EQUAL(tbst(partner).draining, tb_moving(partner));
    /* a new transaction there: refused, nothing ran; elsewhere: served */
    const uint64_t B = 51001;
    struct req r = req_new(partner, B, false);
    req_op(&r, NINES__OP_TYPE__OP_INSERT, k, 1, NULL);
    req_send(&r);
    RUN_UNTIL(op_ref(B) != NULL, 200);
    const Nines__KernOpRef *ref = op_ref(B);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_EAGAIN);
    CU_ASSERT_EQUAL(ref->failed_op, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "back to node 3"));
    CU_ASSERT_EQUAL(tbst(partner).refused, 1);
    /* a repeated request is answered again */
    tb_req(partner, 1, 200, 1000);
    RUN_UNTIL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 1, NULL, NULL) == NN, 200);
    CU_ASSERT_EQUAL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 1, NULL, NULL), NN);
    /* the switch */
    ns_install3(TB_ALL, TB_ALL, 0);
    run(20);
    CU_ASSERT_EQUAL(route(k).primary, TB_R);
    CU_ASSERT_EQUAL(route(k).standby, partner);
    CU_ASSERT_EQUAL(tbst(partner).state, KSVC_TB_IDLE);
    CU_ASSERT_EQUAL(tbst(partner).demoted, tb_moving(partner));
    CU_ASSERT_EQUAL(tbst(partner).demoted_unclean, 0);
    struct ksvc_stats r1 = kstats(TB_R), p1 = kstats(partner);
    CU_ASSERT_EQUAL(r1.takebacks - r0.takebacks, moving);
    CU_ASSERT_EQUAL(r1.takeovers, r0.takeovers);
    CU_ASSERT_EQUAL(r1.indoubt_aborted, r0.indoubt_aborted);
    CU_ASSERT_EQUAL(r1.indoubt_asked, r0.indoubt_asked);
    CU_ASSERT_EQUAL(p1.roles_lost, p0.roles_lost);
    /* the refused transaction again, now at R */
    ft_clear(CTL);
    CU_ASSERT_TRUE(put_kv(B, k, 7));
    for (int64_t q = 51500; q < 51540; q++)
        CU_ASSERT_TRUE(put_kv((uint64_t)q, q, q * 2));
    tb_no_oos();
    check_digests(); /* the partner took R's new records: it adopted R's stream */
    CU_ASSERT_EQUAL(get_v(51100, k, NULL, 0), 7);
    for (int64_t q = 50000; q < 50060; q++)
        CU_ASSERT_EQUAL(get_v(51200 + (uint64_t)q, q, NULL, 0), q * 11);
    ft_clear(TB_R);
    ft_clear(CTL);
}

/* R standby-only again (a set that makes it so: its primaries become the
 * partner's, demoted cleanly the same way). */
static void tb_standby_only_again(void)
{
    run(50);
    ns_install3(TB_ALL, TB_ALL, RT_NODE_BIT(TB_R));
    run(50);
    tb_no_oos();
    CU_ASSERT_NOT_EQUAL(route(tb_key(52000)).primary, TB_R);
}

/* A transaction open on a drained fragment: the drain waits for it (more
 * of its operations there are served, a new transaction is refused); it
 * commits at the partner, then the drain answers CONF and the switch
 * follows; nothing aborted, the refused transaction then runs at R. */
static void test_takeback_open_txn(void)
{
    tb_standby_only_again();
    const int64_t k1 = tb_key(52000);
    int64_t k2 = k1 + 1, k3;
    while (route(k2).frag != route(k1).frag)
        k2++;
    for (k3 = k2 + 1; route(k3).frag != route(k1).frag;)
        k3++;
    const uint32_t partner = route(k1).primary, moving = tb_moving(0);
    ft_clear(TB_R);
    const uint64_t A = 52001, B = 52002;
    struct ksvc_stats r0 = kstats(TB_R);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(A, NINES__OP_TYPE__OP_INSERT, k1, 21, false));
    tb_req_all(2, 200, 1000);
    run(100);
    uint32_t from = 0;
    CU_ASSERT_EQUAL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 2, NULL, NULL), NN - 2);
    CU_ASSERT_EQUAL(tbst(partner).state, KSVC_TB_DRAINING);
    /* B is new there: refused; A goes on */
    struct req rb = req_new(partner, B, false);
    req_op(&rb, NINES__OP_TYPE__OP_INSERT, k3, 23, NULL);
    req_send(&rb);
    RUN_UNTIL(op_ref(B) != NULL, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op_ref(B));
    CU_ASSERT_EQUAL(op_ref(B)->error, NINES_EAGAIN);
    struct req ra = req_new(partner, A, true);
    req_op(&ra, NINES__OP_TYPE__OP_INSERT, k2, 22, NULL);
    req_send(&ra);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, A) == 2, 200);
    CU_ASSERT_EQUAL_FATAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, A), 2);
    run(50);
    CU_ASSERT_EQUAL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 2, NULL, NULL), NN - 2);
    end_txn(A, partner, true); /* confirmed once R applied the COMMIT record */
    RUN_UNTIL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 2, NULL, &from) == NN - 1, 200);
    CU_ASSERT_EQUAL_FATAL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 2, NULL, NULL), NN - 1);
    CU_ASSERT_EQUAL(tbst(partner).state, KSVC_TB_DRAINED);
    CU_ASSERT_EQUAL(tbst(partner).draining, tb_moving(partner));
    ns_install3(TB_ALL, TB_ALL, 0);
    run(20);
    struct ksvc_stats r1 = kstats(TB_R);
    CU_ASSERT_EQUAL(r1.indoubt_aborted, r0.indoubt_aborted);
    CU_ASSERT_EQUAL(r1.indoubt_asked, r0.indoubt_asked);
    CU_ASSERT_EQUAL(r1.takebacks - r0.takebacks, moving);
    ft_clear(CTL);
    CU_ASSERT_TRUE(put_kv(B, k3, 23));
    tb_no_oos();
    check_digests();
    CU_ASSERT_EQUAL(get_v(52101, k1, NULL, 0), 21);
    CU_ASSERT_EQUAL(get_v(52102, k2, NULL, 0), 22);
    CU_ASSERT_EQUAL(get_v(52103, k3, NULL, 0), 23);
    ft_clear(TB_R);
    ft_clear(CTL);
    ft_clear(HSC);
}

/* A transaction open in one drained fragment may still open another
 * drained fragment of the same drain (a second table's fragment at the
 * same partner): the drain waits for it anyway, and refusing it would make
 * the drain wait for a transaction that waits for the drain. A new
 * transaction is refused there as before. */
static void test_takeback_inside_drain(void)
{
    tb_standby_only_again();
    if (!dict_table_by_name(dsvc_current(W.n[1].dict), "acct2")) {
        CU_ASSERT_EQUAL_FATAL(send_create_table("acct2"), 0);
        bool all = false;
        for (int r = 0; r < 20000 && !all; r++) {
            step();
            all = true;
            for (uint32_t i = 1; i <= NN; i++)
                all = all && ksvc_nreplicas(W.n[i].kern) == 8;
        }
        CU_ASSERT_TRUE_FATAL(all);
    }
    const struct dict_table *t2 = dict_table_by_name(dsvc_current(W.n[1].dict), "acct2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t2);
    const int64_t k1 = tb_key(56000);
    const uint32_t partner = route(k1).primary;
    int64_t k2 = 56000;
    for (;; k2++) {
        struct where w = route_t(t2->id, k2);
        if (t2->frags[w.frag].primary == TB_R && w.primary == partner)
            break;
    }
    int64_t k3 = k2 + 1;
    for (;; k3++) {
        struct where w = route_t(t2->id, k3);
        if (t2->frags[w.frag].primary == TB_R && w.primary == partner)
            break;
    }
    ft_clear(TB_R);
    const uint64_t A = 56001, B = 56002;
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(A, NINES__OP_TYPE__OP_INSERT, k1, 61, false));
    tb_req_all(7, 200, 1000);
    run(50);
    CU_ASSERT_EQUAL(tbst(partner).state, KSVC_TB_DRAINING);
    /* A, open in the drain, takes another drained fragment: served */
    struct req ra = req_new(partner, A, true);
    ra.table = t2->id;
    req_op(&ra, NINES__OP_TYPE__OP_INSERT, k2, 62, NULL);
    req_send(&ra);
    RUN_UNTIL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, A) == 2, 200);
    CU_ASSERT_EQUAL_FATAL(ft_count(CTL, NINES__MSG_TYPE__KERN_OP_CONF, A), 2);
    /* B, new: refused */
    struct req rb = req_new(partner, B, false);
    rb.table = t2->id;
    req_op(&rb, NINES__OP_TYPE__OP_INSERT, k3, 63, NULL);
    req_send(&rb);
    RUN_UNTIL(op_ref(B) != NULL, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op_ref(B));
    CU_ASSERT_EQUAL(op_ref(B)->error, NINES_EAGAIN);
    run(30);
    end_txn(A, partner, true);
    RUN_UNTIL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 7, NULL, NULL) == NN - 1, 300);
    CU_ASSERT_EQUAL_FATAL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 7, NULL, NULL), NN - 1);
    ns_install3(TB_ALL, TB_ALL, 0);
    run(20);
    tb_no_oos();
    check_digests();
    CU_ASSERT_EQUAL(get_v(56101, k1, NULL, 0), 61);
    ft_clear(TB_R);
    ft_clear(CTL);
    ft_clear(HSC);
}

/* A transaction held open past the drain bound: the partner answers REF
 * (ETIMEDOUT, naming it) and stops draining: new transactions are served
 * there again, no switch. Once it ended, a new attempt drains and
 * switches. */
static void test_takeback_drain_timeout(void)
{
    tb_standby_only_again();
    const int64_t k1 = tb_key(53000);
    int64_t k2 = k1 + 1;
    while (route(k2).frag != route(k1).frag)
        k2++;
    const uint32_t partner = route(k1).primary, moving = tb_moving(0);
    ft_clear(TB_R);
    const uint64_t C = 53001, D = 53002;
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(C, NINES__OP_TYPE__OP_INSERT, k1, 31, false));
    tb_req_all(3, 40, 1000);
    RUN_UNTIL(tb_ref(3) != NULL, 1000); /* 40 ms: 200 steps */
    const Nines__TakebackRef *ref = tb_ref(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->from, partner);
    CU_ASSERT_EQUAL(ref->error, NINES_ETIMEDOUT);
    char want[64];
    snprintf(want, sizeof want, "txn %llu is open there", (unsigned long long)C);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, want));
    CU_ASSERT_EQUAL(tbst(partner).state, KSVC_TB_IDLE);
    CU_ASSERT_EQUAL(tbst(partner).ref, 1);
    /* the coordinator calls the attempt off: the other drains end now */
    tb_cancel_all(3);
    run(5);
    for (uint32_t i = 1; i <= NN; i++)
        CU_ASSERT_EQUAL(tbst(i).state, KSVC_TB_IDLE);
    /* not draining any more: a new transaction is served at the partner */
    CU_ASSERT_TRUE(put_kv(D, k2, 32));
    end_txn(C, partner, true);
    CU_ASSERT_EQUAL(route(k1).primary, partner);
    /* the next attempt */
    tb_req_all(4, 200, 1000);
    RUN_UNTIL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 4, NULL, NULL) == NN - 1, 200);
    uint32_t frags = 0;
    CU_ASSERT_EQUAL_FATAL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 4, &frags, NULL), NN - 1);
    CU_ASSERT_EQUAL(frags, moving);
    ns_install3(TB_ALL, TB_ALL, 0);
    run(20);
    tb_no_oos();
    check_digests();
    CU_ASSERT_EQUAL(get_v(53101, k1, NULL, 0), 31);
    CU_ASSERT_EQUAL(get_v(53102, k2, NULL, 0), 32);
    ft_clear(TB_R);
    ft_clear(CTL);
}

/* The coordinator dies after the drains: no install comes; after hold_ms
 * every drain ends by itself and the fragments serve new transactions
 * again. A drain of another node set is refused (ESTALE). */
static void test_takeback_coordinator_dies(void)
{
    tb_standby_only_again();
    const int64_t k = tb_key(54000);
    const uint32_t partner = route(k).primary;
    ft_clear(TB_R);
    tb_req_all(5, 200, 30);
    RUN_UNTIL(tb_answers(NINES__MSG_TYPE__TAKEBACK_CONF, 5, NULL, NULL) == NN - 1, 200);
    CU_ASSERT_EQUAL(tbst(partner).state, KSVC_TB_DRAINED);
    uint64_t ended0 = tbst(partner).ended;
    RUN_UNTIL(tbst(partner).state == KSVC_TB_IDLE, 1000); /* 30 ms */
    CU_ASSERT_EQUAL(tbst(partner).state, KSVC_TB_IDLE);
    CU_ASSERT_EQUAL(tbst(partner).ended, ended0 + 1);
    CU_ASSERT_TRUE(put_kv(54001, k, 41)); /* served at the partner again */
    CU_ASSERT_EQUAL(route(k).primary, partner);
    /* another epoch's request */
    struct rt_msg *m = rt_msg_new(W.n[TB_R].rt, NINES__MSG_TYPE__TAKEBACK_REQ);
    Nines__TakebackReq *q = RT_BODY(m, Nines__TakebackReq, nines__takeback_req__init);
    q->node = TB_R;
    q->epoch = W.epoch - 1;
    q->id = 6;
    /* (an older epoch's message is dropped by the runtime: send it as the
     * epoch's own, naming the old set in the body) */
    CU_ASSERT_EQUAL(rt_send(W.n[TB_R].rt, partner, RT_SVC_KERN, m), 0);
    RUN_UNTIL(tb_ref(6) != NULL, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tb_ref(6));
    CU_ASSERT_EQUAL(tb_ref(6)->error, NINES_ESTALE);
    ft_clear(TB_R);
    ft_clear(CTL);
}

/* The crash case the drain exists for: a set that clears R's bit installed
 * while a transaction is open at the partner (its drain ended, or never
 * ran). The partner's replica is taken out of service, not left a second
 * primary; R takes the fragment over as after a failure (the open
 * transaction had no end mark at R: aborted there); the other fragments
 * go on. */
static void test_takeback_undrained_install(void)
{
    tb_standby_only_again();
    const int64_t k1 = tb_key(55000);
    const uint32_t partner = route(k1).primary;
    const uint64_t E = 55001;
    struct ksvc_stats r0 = kstats(TB_R);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one_op(E, NINES__OP_TYPE__OP_INSERT, k1, 51, false));
    run(50); /* its record is at R */
    ns_install3(TB_ALL, TB_ALL, 0);
    run(50);
    CU_ASSERT_EQUAL(route(k1).primary, TB_R);
    CU_ASSERT(tbst(partner).demoted_unclean >= 1);
    struct ksvc_rep_info ri;
    CU_ASSERT_EQUAL_FATAL(ksvc_rep_info(W.n[partner].kern, W.table, route(k1).frag, &ri), 0);
    CU_ASSERT_EQUAL(ri.ha, KSVC_HA_OFFLINE);
    struct ksvc_stats r1 = kstats(TB_R);
    CU_ASSERT_EQUAL(r1.indoubt_aborted, r0.indoubt_aborted + 1);
    CU_ASSERT_EQUAL(get_v(55002, k1, NULL, 0), -999); /* E's insert is undone at R */
    ft_clear(CTL);
    ft_clear(HSC);
}

/* A user change (DICT_OP_CREATE_USER / _ALTER_USER / _DROP_USER) sent by
 * node 2 to the coordinator, node 1, as a forwarded client change. */
static void send_user_change(Nines__DictOp op, const char *name, uint32_t role,
                             const char *verifier, uint64_t ref)
{
    struct rt *rt = W.n[2].rt;
    struct rt_msg *m = rt_msg_new(rt, NINES__MSG_TYPE__DICT_CHANGE_REQ);
    Nines__DictChangeReq *q = RT_BODY(m, Nines__DictChangeReq, nines__dict_change_req__init);
    Nines__DictChange *c = rt_msg_alloc(m, sizeof *c);
    Nines__DictUser *u = rt_msg_alloc(m, sizeof *u);
    nines__dict_change__init(c);
    nines__dict_user__init(u);
    u->name = (char *)name;
    u->role = role;
    u->verifier = (char *)(verifier ? verifier : "");
    c->op = op;
    c->user = u;
    q->change = c;
    q->origin = 2;
    q->ref = ref;
    CU_ASSERT_EQUAL_FATAL(rt_send(rt, 1, RT_SVC_DICT, m), 0);
}

/* Every node's dictionary at `version`, all images equal (users included). */
static bool users_everywhere(uint64_t version)
{
    uint8_t *i1;
    size_t l1;
    if (dsvc_current(W.n[1].dict)->version != version ||
        dict_encode(dsvc_current(W.n[1].dict), &i1, &l1))
        return false;
    bool same = true;
    for (uint32_t i = 2; i <= NN && same; i++) {
        uint8_t *im;
        size_t l;
        same = dsvc_current(W.n[i].dict)->version == version &&
               dict_encode(dsvc_current(W.n[i].dict), &im, &l) == 0;
        if (same) {
            same = l == l1 && memcmp(im, i1, l) == 0;
            free(im);
        }
    }
    free(i1);
    return same;
}

/* Users through the dictionary transaction: validated at the coordinator,
 * applied and kept by every node; a refused change changes nothing. */
static void test_user_changes(void)
{
    char v1[DICT_VERIFIER_MAX + 1], v2[DICT_VERIFIER_MAX + 1];
    CU_ASSERT_EQUAL_FATAL(scram_verifier_make("a", 1, NULL, 0, 4096, v1, sizeof v1), 0);
    CU_ASSERT_EQUAL_FATAL(scram_verifier_make("b", 1, NULL, 0, 4096, v2, sizeof v2), 0);
    uint64_t v0 = dsvc_current(W.n[1].dict)->version;
    send_user_change(NINES__DICT_OP__DICT_OP_CREATE_USER, "ops", DICT_ROLE_ADMIN, v1, 901);
    for (int r = 0; r < 20000 && !users_everywhere(v0 + 1); r++)
        step();
    CU_ASSERT_FATAL(users_everywhere(v0 + 1));
    for (uint32_t i = 1; i <= NN; i++) {
        const struct dict_user *u = dict_user_find(dsvc_current(W.n[i].dict), "ops");
        CU_ASSERT_PTR_NOT_NULL_FATAL(u);
        CU_ASSERT_EQUAL(u->role, DICT_ROLE_ADMIN);
        CU_ASSERT_STRING_EQUAL(u->verifier, v1);
    }
    send_user_change(NINES__DICT_OP__DICT_OP_CREATE_USER, "app", DICT_ROLE_READER, v1, 902);
    for (int r = 0; r < 20000 && !users_everywhere(v0 + 2); r++)
        step();
    send_user_change(NINES__DICT_OP__DICT_OP_ALTER_USER, "app", DICT_ROLE_WRITER, v2, 903);
    for (int r = 0; r < 20000 && !users_everywhere(v0 + 3); r++)
        step();
    CU_ASSERT_FATAL(users_everywhere(v0 + 3));
    const struct dict_user *u = dict_user_find(dsvc_current(W.n[4].dict), "app");
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(u->role, DICT_ROLE_WRITER);
    CU_ASSERT_STRING_EQUAL(u->verifier, v2);
    /* refused at the coordinator (the last admin; a bad verifier): no version */
    send_user_change(NINES__DICT_OP__DICT_OP_DROP_USER, "ops", 0, NULL, 904);
    send_user_change(NINES__DICT_OP__DICT_OP_CREATE_USER, "bad", DICT_ROLE_READER, "x", 905);
    run(200);
    CU_ASSERT(users_everywhere(v0 + 3));
    CU_ASSERT_PTR_NOT_NULL(dict_user_find(dsvc_current(W.n[3].dict), "ops"));
    CU_ASSERT_PTR_NULL(dict_user_find(dsvc_current(W.n[3].dict), "bad"));
    send_user_change(NINES__DICT_OP__DICT_OP_DROP_USER, "app", 0, NULL, 906);
    for (int r = 0; r < 20000 && !users_everywhere(v0 + 4); r++)
        step();
    CU_ASSERT_FATAL(users_everywhere(v0 + 4));
    for (uint32_t i = 1; i <= NN; i++) {
        CU_ASSERT_PTR_NULL(dict_user_find(dsvc_current(W.n[i].dict), "app"));
        CU_ASSERT_EQUAL(dsvc_current(W.n[i].dict)->nusers, 1);
    }
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"commit_replicates", test_commit_replicates},
        {"abort_restores", test_abort_restores},
        {"commit_carries_gci", test_commit_carries_gci},
        {"lock_wait_resumes", test_lock_wait_resumes},
        {"deadlock", test_deadlock},
        {"escrow", test_escrow},
        {"bad_values", test_bad_values},
        {"prepare_req", test_prepare_req},
        {"lost_batch_resent_on_gap", test_lost_batch_resent_on_gap},
        {"lost_batch_resent_on_silence", test_lost_batch_resent_on_silence},
        {"redo_error_resent", test_redo_error_resent},
        {"conf_after_standby_applied", test_conf_after_standby_applied},
        {"pipelined_throughput", test_pipelined_throughput},
        {"conversion", test_conversion},
        {"ack_means_applied", test_ack_means_applied},
        {"commit_failure_keeps_locks", test_commit_failure_keeps_locks},
        {"prepared_asks_outcome", test_prepared_asks_outcome},
        {"other_incarnation_refused", test_other_incarnation_refused},
        {"lag_in_time", test_lag_in_time},
        {"user_changes", test_user_changes},
        {NULL, NULL},
    };
    cu_add_suite("ksvc", suite_init, suite_fini, cases);
    static const struct cu_case ns_cases[] = {
        {"not_serving_refused", test_not_serving_refused},
        {"reprepare_new_hsc", test_reprepare_new_hsc},
        {"prepare_ref_outcome", test_prepare_ref_outcome},
        {"redo_only_from_primary", test_redo_only_from_primary},
        {"takeover", test_takeover},
        {"questions_skip_non_members", test_questions_skip_non_members},
        {"alone_without_logcopy_refused", test_alone_without_logcopy_refused},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_nodeset", suite_init, suite_fini, ns_cases);
    static const struct cu_case rb_cases[] = {
        {"rebuild_returning_node", test_rebuild_returning_node},
        {"rebuild_chunk_lost", test_rebuild_chunk_lost},
        {"rebuild_chunk_corrupt", test_rebuild_chunk_corrupt},
        {"rebuild_source_lost", test_rebuild_source_lost},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_rebuild", suite_init, suite_fini, rb_cases);
    static const struct cu_case rp_cases[] = {
        {"repair_node_away", test_repair_node_away},
        {"repair_waits_for_takeback", test_repair_waits_for_takeback},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_repair", suite_init_repair, suite_fini, rp_cases);
    static const struct cu_case ri_cases[] = {
        {"reint_node_returns", test_reint_node_returns},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_reint", suite_init_repair, suite_fini, ri_cases);
    static const struct cu_case tb_cases[] = {
        {"takeback_setup", test_takeback_setup},
        {"takeback_no_traffic", test_takeback_no_traffic},
        {"takeback_open_txn", test_takeback_open_txn},
        {"takeback_inside_drain", test_takeback_inside_drain},
        {"takeback_drain_timeout", test_takeback_drain_timeout},
        {"takeback_coordinator_dies", test_takeback_coordinator_dies},
        {"takeback_undrained_install", test_takeback_undrained_install},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_takeback", suite_init, suite_fini, tb_cases);
}
