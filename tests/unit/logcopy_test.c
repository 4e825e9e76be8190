/* Log copies (kernel/svc/README.md "Log copy", updchan/README.md "Log
 * copy: a change of target") over the in-process test transport: four
 * nodes, two per site, each with the dictionary service, the update channel
 * and the kernel service wired as in ninesd, node sets installed by the
 * test (rt_install_nodeset: no supervisor). A fake transaction controller
 * (this file's message-table rows) drives KERN_OP_REQ / COMMIT / ABORT on
 * one fragment F: primary P, hot standby S, Q = P's site-mate (the fake
 * hot-standby controller), L = S's site-mate (F's log copy once S leaves).
 *
 * Until the kern-takeover branch (roles reconciliation) is merged, nothing
 * makes the primary ship to the log copy when F goes ALONE: the tests call
 * upd_ship_set_standby(P, F, L) themselves where that reconciliation will,
 * right after installing the node set (see retarget()). The tests run in
 * order and share the cluster. */
#include "cu_test.h"

#include "conf.h"
#include "nines/errors.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "nlog.h"

#include "../../dict/svc/dsvc.h"
#include "../../kernel/kern_key.h"
#include "../../kernel/kern_log.h"
#include "../../kernel/svc/ksvc.h"
#include "../../net/testnet.h"
#include "../../supervisor/sup.h"
#include "../../updchan/upd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NN 4
#define NFRAGS 8
#define MAXMSG 8192
#define TAB_MAX NINES__MSG_TYPE__TXC_OUTCOME_REF

/* ---- the fake controller: keeps every answer it gets ---- */
struct ft {
    struct rt_msg *msgs[MAXMSG];
    int n;
};

static void ft_on_msg(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ft *f = st;
    if (m->type < NINES__MSG_TYPE__TXN_REQ || m->type > TAB_MAX)
        return;
    CU_ASSERT_FATAL(f->n < MAXMSG);
    rt_msg_keep(m);
    f->msgs[f->n++] = m;
}

struct node {
    struct rt *rt;
    struct dsvc *dict;
    struct upd *upd;
    struct ksvc *kern;
    struct ft ft;
};

static void kern_dict_installed(void *kern, const struct dict *d, bool live_commit)
{
    ksvc_dict_changed(kern, d, live_commit);
}

static struct {
    struct nines_conf cfg;
    struct net_testnet *hub;
    struct node n[NN + 1];
    struct rt_msg_entry tab[TAB_MAX + 1];
    uint32_t table, frag;
    uint32_t P, S, Q, L;  /* F's primary, standby, P's site-mate, S's site-mate */
    uint64_t epoch;
    int64_t next_key;
} W;

static uint64_t msg_txn(const struct rt_msg *m)
{
    switch (m->type) {
    case NINES__MSG_TYPE__KERN_OP_CONF:
        return ((const Nines__KernOpConf *)m->body)->txn;
    case NINES__MSG_TYPE__KERN_OP_REF:
        return ((const Nines__KernOpRef *)m->body)->txn;
    case NINES__MSG_TYPE__READY_IND:
        return ((const Nines__ReadyInd *)m->body)->txn;
    case NINES__MSG_TYPE__COMMIT_CONF:
        return ((const Nines__CommitConf *)m->body)->txn;
    case NINES__MSG_TYPE__ABORT_CONF:
        return ((const Nines__AbortConf *)m->body)->txn;
    default:
        return 0;
    }
}

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

/* Standby READY_INDs (standby = 1) of txn at the hsc sent by node `from`. */
static int sreadies_from(uint64_t txn, uint32_t from)
{
    int c = 0;
    for (int i = 0;; i++) {
        const Nines__ReadyInd *ri = ft_find(W.Q, NINES__MSG_TYPE__READY_IND, txn, i);
        if (!ri)
            return c;
        c += ri->standby && ri->node == from && ri->table == W.table && ri->frag == W.frag;
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
#define STEP_US 200
static void step(void)
{
    for (uint32_t i = 1; i <= NN; i++)
        rt_step(W.n[i].rt, 0);
    for (uint32_t i = 1; i <= NN; i++)
        (void)rt_fault_advance_clock(W.n[i].rt, STEP_US);
    net_testnet_advance(W.hub, STEP_US);
}

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

#define BIT(id) RT_NODE_BIT(id)
#define ALL (BIT(1) | BIT(2) | BIT(3) | BIT(4))

/* Install the next epoch with `members` (all current) on the nodes in
 * `on` (the others keep their epoch: crashed or cut off). */
static void install(uint64_t members, uint64_t on)
{
    W.epoch++;
    for (uint32_t i = 1; i <= NN; i++) {
        if (!(on & BIT(i)))
            continue;
        struct rt_nodeset ns = {.epoch = W.epoch, .members = members, .current = members,
                                .member = (members & BIT(i)) != 0, .serving = (members & BIT(i)) != 0};
        for (uint32_t id = 1; id <= NN; id++)
            if (members & BIT(id)) {
                ns.coordinator = id;
                break;
            }
        if (!ns.serving)
            snprintf(ns.reason, sizeof ns.reason, "left out of node set %llu by the test",
                     (unsigned long long)W.epoch);
        rt_install_nodeset(W.n[i].rt, &ns);
    }
}

/* What the kern-takeover roles reconciliation will do at P when F's roles
 * change: ship to `to` (the log copy, the standby again, or none). */
static void retarget(uint32_t to)
{
    struct upd_ship *sh = upd_ship_find(W.n[W.P].upd, W.table, W.frag);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sh);
    upd_ship_set_standby(W.n[W.P].upd, sh, to);
}

static struct upd_ship_info ship_info(void)
{
    struct upd_ship_info si;
    upd_ship_info(upd_ship_find(W.n[W.P].upd, W.table, W.frag), &si);
    return si;
}

static bool copy_info(struct ksvc_copy_info *ci)
{
    return ksvc_copy_info(W.n[W.L].kern, W.table, W.frag, ci) == 0;
}

/* DICT_CHANGE_REQ creating table `name` (k int64 key, v int64), node 2 ->
 * coordinator node 1. */
static int send_create_table(const char *name)
{
    struct rt *rt = W.n[2].rt;
    struct rt_msg *m = rt_msg_new(rt, NINES__MSG_TYPE__DICT_CHANGE_REQ);
    Nines__DictChangeReq *q = RT_BODY(m, Nines__DictChangeReq, nines__dict_change_req__init);
    Nines__DictChange *c = rt_msg_alloc(m, sizeof *c);
    Nines__DictTableDef *d = rt_msg_alloc(m, sizeof *d);
    Nines__DictColumn *cols = rt_msg_alloc(m, 2 * sizeof *cols);
    Nines__DictColumn **cp = rt_msg_alloc(m, 2 * sizeof *cp);
    uint32_t *pk = rt_msg_alloc(m, sizeof *pk);
    nines__dict_change__init(c);
    nines__dict_table_def__init(d);
    static const char *names[2] = {"k", "v"};
    for (int i = 0; i < 2; i++) {
        nines__dict_column__init(&cols[i]);
        cols[i].name = (char *)names[i];
        cols[i].type = 2; /* int64 */
        cp[i] = &cols[i];
    }
    pk[0] = 0;
    d->name = (char *)name;
    d->columns = cp;
    d->n_columns = 2;
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

static bool all_have_table(void)
{
    for (uint32_t i = 1; i <= NN; i++)
        if (dsvc_current(W.n[i].dict)->ntables != 1 || ksvc_nreplicas(W.n[i].kern) != 4)
            return false;
    return true;
}

static uint32_t site_of(uint32_t id) { return (id - 1) % 2; }

static int suite_init(void)
{
    nlog_set_level(getenv("KT_DEBUG") ? NLOG_DEBUG : NLOG_ERROR);
    memset(&W, 0, sizeof W);
    struct nines_conf *c = &W.cfg;
    snprintf(c->cluster, sizeof c->cluster, "logcopytest");
    c->nnodes = NN;
    for (uint32_t i = 0; i < NN; i++) {
        c->nodes[i].id = i + 1;
        c->nodes[i].site = i % 2;
        snprintf(c->nodes[i].host, sizeof c->nodes[i].host, "127.0.0.1");
        c->nodes[i].port = (uint16_t)(7300 + i);
    }
    c->heartbeat_ms = 50;
    c->txn_timeout_ms = 100000; /* no outcome questions in these tests */
    c->heartbeat_misses = 20;
    c->reconnect_min_ms = 5;
    c->reconnect_max_ms = 100;
    c->max_frame_bytes = 1u << 20;
    c->send_queue_bytes = 16u << 20;
    snprintf(c->transport, sizeof c->transport, "tcp");
    if (net_testnet_new(&W.hub, c, cu_seed(9)))
        return 1;
    for (uint32_t i = 0; i < sup_msgtab_len && i <= TAB_MAX; i++)
        W.tab[i] = sup_msgtab[i];
    for (uint32_t t = NINES__MSG_TYPE__TXN_REQ; t <= TAB_MAX; t++)
        if (W.tab[t].svc == RT_SVC_TXC)
            W.tab[t].fn = ft_on_msg;
    for (uint32_t i = 1; i <= NN; i++) {
        struct node *n = &W.n[i];
        struct net_transport *tr;
        if (net_testnet_transport(W.hub, i, &tr))
            return 1;
        struct rt_config rc = {.self = i, .conf = c, .transport = tr, .msgtab = W.tab,
                               .msgtab_len = TAB_MAX + 1};
        if (rt_create(&n->rt, &rc) || dsvc_create(&n->dict, n->rt) ||
            upd_init(&n->upd, n->rt) ||
            ksvc_init(&n->kern, n->rt,
                      &(struct ksvc_config){.upd = n->upd, .dict = dsvc_current_fn,
                                            .dict_ctx = n->dict}) ||
            dsvc_subscribe_install(n->dict, kern_dict_installed, n->kern) ||
            rt_task_add(n->rt, RT_SVC_TXC, "fake-txc", ft_on_msg, &n->ft))
            return 1;
    }
    install(ALL, ALL); /* epoch 1: every node, current */
    RUN_UNTIL(all_connected(), 5000);
    if (!all_connected() || send_create_table("acct"))
        return 1;
    RUN_UNTIL(all_have_table(), 20000);
    const struct dict *d = dsvc_current(W.n[1].dict);
    const struct dict_table *t = dict_table_by_name(d, "acct");
    if (!all_have_table() || !t) {
        fprintf(stderr, "the table did not reach every node's kernel\n");
        return 1;
    }
    W.table = t->id;
    W.frag = 0;
    W.P = t->frags[0].primary;
    W.S = t->frags[0].standby;
    for (uint32_t id = 1; id <= NN; id++) {
        if (id != W.P && site_of(id) == site_of(W.P))
            W.Q = id;
        if (id != W.S && site_of(id) == site_of(W.S))
            W.L = id;
    }
    if (!W.S || !W.Q || !W.L || site_of(W.P) == site_of(W.S))
        return 1;
    /* the dictionary names L as F's log copy once S is gone */
    struct dict_roles ro;
    if (dict_frag_roles(d, t, 0, ALL & ~BIT(W.S), &ro) || ro.state != DICT_FRAG_ALONE ||
        ro.primary != W.P || ro.logcopy != W.L)
        return 1;
    W.next_key = 1;
    return 0;
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

/* ---- requests on fragment F ---- */
static int key_frag(int64_t k)
{
    const struct dict_table *t = dict_table_by_id(dsvc_current(W.n[W.P].dict), W.table);
    struct kern_col kc = {.type = KERN_T_INT64};
    struct kern_val v = kern_v_i64(k);
    uint8_t key[32];
    int len = kern_key_encode(&kc, 1, &v, key, sizeof key);
    return t && len > 0 ? dict_route(t, key, (size_t)len) : -1;
}

/* A key of F not used before. */
static int64_t new_key(void)
{
    while (key_frag(W.next_key) != (int)W.frag)
        W.next_key++;
    return W.next_key++;
}

static Nines__Value *v_i64(struct rt_msg *m, int64_t x)
{
    Nines__Value *v = rt_msg_alloc(m, sizeof *v);
    nines__value__init(v);
    v->v_case = NINES__VALUE__V_I64;
    v->i64 = x;
    return v;
}

/* KERN_OP_REQ from the controller (node P, local) to P: INSERT k = v, with
 * prepare or not; the hsc is Q. */
static void send_insert(uint64_t txn, int64_t k, int64_t v, bool prepare)
{
    struct rt_msg *m = rt_msg_new(W.n[W.P].rt, NINES__MSG_TYPE__KERN_OP_REQ);
    Nines__KernOpReq *q = RT_BODY(m, Nines__KernOpReq, nines__kern_op_req__init);
    q->txn = txn;
    q->ctl = W.P;
    q->hsc = W.Q;
    q->prepare = prepare;
    Nines__Participant *p = rt_msg_alloc(m, sizeof *p);
    nines__participant__init(p);
    p->table = W.table;
    p->frag = W.frag;
    p->primary = W.P;
    p->standby = W.S;
    Nines__RecordOp *o = rt_msg_alloc(m, sizeof *o);
    nines__record_op__init(o);
    o->op = NINES__OP_TYPE__OP_INSERT;
    o->table_id = W.table;
    o->key = rt_msg_alloc(m, sizeof *o->key);
    o->key[0] = v_i64(m, k);
    o->n_key = 1;
    Nines__Row *row = rt_msg_alloc(m, sizeof *row);
    nines__row__init(row);
    row->values = rt_msg_alloc(m, 2 * sizeof *row->values);
    row->values[0] = v_i64(m, k);
    row->values[1] = v_i64(m, v);
    row->n_values = 2;
    o->row = row;
    q->parts = rt_msg_alloc(m, sizeof *q->parts);
    q->ops = rt_msg_alloc(m, sizeof *q->ops);
    q->parts[0] = p;
    q->ops[0] = o;
    q->n_parts = q->n_ops = 1;
    CU_ASSERT_EQUAL(rt_send(W.n[W.P].rt, W.P, RT_SVC_KERN, m), 0);
}

/* INSERT and wait for the answer: the KERN_OP_CONF or NULL (a REF). */
static const Nines__KernOpConf *insert(uint64_t txn, int64_t k, int64_t v, bool prepare)
{
    send_insert(txn, k, v, prepare);
    RUN_UNTIL(ft_count(W.P, NINES__MSG_TYPE__KERN_OP_CONF, txn) +
                  ft_count(W.P, NINES__MSG_TYPE__KERN_OP_REF, txn) > 0,
              2000);
    return ft_find(W.P, NINES__MSG_TYPE__KERN_OP_CONF, txn, 0);
}

static void send_end(uint64_t txn, bool commit)
{
    struct rt_msg *m = rt_msg_new(W.n[W.P].rt, commit ? NINES__MSG_TYPE__COMMIT_REQ
                                                      : NINES__MSG_TYPE__ABORT_REQ);
    if (commit)
        RT_BODY(m, Nines__CommitReq, nines__commit_req__init)->txn = txn;
    else
        RT_BODY(m, Nines__AbortReq, nines__abort_req__init)->txn = txn;
    CU_ASSERT_EQUAL(rt_send(W.n[W.P].rt, W.P, RT_SVC_KERN, m), 0);
}

static int confs(uint64_t txn, bool commit)
{
    return ft_count(W.P, commit ? NINES__MSG_TYPE__COMMIT_CONF : NINES__MSG_TYPE__ABORT_CONF,
                    txn);
}

/* Commit or abort txn and wait for its confirmation. */
static void end_txn(uint64_t txn, bool commit)
{
    send_end(txn, commit);
    RUN_UNTIL(confs(txn, commit) == 1, 20000);
    CU_ASSERT_EQUAL(confs(txn, commit), 1);
}

/* A prepared insert's standby READY_IND reached the hsc from `from`. */
static void wait_ready(uint64_t txn, uint32_t from)
{
    RUN_UNTIL(sreadies_from(txn, from) == 1, 20000);
    CU_ASSERT_EQUAL(sreadies_from(txn, from), 1);
}

/* The LSN of txn's only record in F (from the prepared answer). */
static uint64_t rec_lsn(const Nines__KernOpConf *c)
{
    CU_ASSERT_EQUAL_FATAL(c->n_frags, 1);
    return c->frags[0]->last_lsn;
}

/* ---- faults: a message filter on every node ---- */
static struct {
    uint32_t type;         /* act on messages of this type ... */
    uint32_t from;         /* ... sent by this node (0: any) ... */
    net_addr to;           /* ... to this node (0: any) ... */
    int drop;              /* drop this many */
    bool take;             /* hold every match */
    int seen;              /* matches */
    struct rt_msg *held[64];
    net_addr held_to[64];
    uint32_t held_node[64];
    int nheld;
} FL;

static enum rt_fault_verdict fl_filter(void *ctx, struct rt *rt, net_addr to, enum rt_svc svc,
                                       struct rt_msg *m)
{
    uint32_t node = (uint32_t)(uintptr_t)ctx;
    if (m->type != FL.type || (FL.from && node != FL.from) || (FL.to && to != FL.to))
        return RT_FAULT_PASS;
    uint32_t frag = m->type == NINES__MSG_TYPE__UPD_LOG_REQ
                        ? ((const Nines__UpdLogReq *)m->body)->frag
                        : ((const Nines__UpdLogConf *)m->body)->frag;
    if (frag != W.frag)
        return RT_FAULT_PASS;
    FL.seen++;
    if (FL.drop > 0) {
        FL.drop--;
        return RT_FAULT_DROP;
    }
    if (FL.take && FL.nheld < 64) {
        FL.held[FL.nheld] = m;
        FL.held_to[FL.nheld] = to;
        FL.held_node[FL.nheld] = node;
        FL.nheld++;
        return RT_FAULT_TAKE;
    }
    return RT_FAULT_PASS;
}

/* UPD_LOG_REQ / UPD_LOG_CONF of fragment F from `from` to `to`. */
static void fl_set(uint32_t type, uint32_t from, uint32_t to, int drop, bool take)
{
    memset(&FL, 0, sizeof FL);
    FL.type = type;
    FL.from = from;
    FL.to = to;
    FL.drop = drop;
    FL.take = take;
    for (uint32_t i = 1; i <= NN; i++)
        CU_ASSERT_EQUAL_FATAL(rt_fault_set_filter(W.n[i].rt, fl_filter, (void *)(uintptr_t)i), 0);
}

/* Stop; re-inject what was held, in order. */
static void fl_off(void)
{
    FL.type = 0;
    for (int i = 0; i < FL.nheld; i++)
        CU_ASSERT_EQUAL(rt_send_nofault(W.n[FL.held_node[i]].rt, FL.held_to[i], RT_SVC_UPD,
                                        FL.held[i]),
                        0);
    FL.nheld = 0;
    for (uint32_t i = 1; i <= NN; i++)
        (void)rt_fault_set_filter(W.n[i].rt, NULL, NULL);
}

/* ---- tests ---- */

/* F's standby S and its site-mate L both leave: F is ALONE with no node of
 * the other site to copy its log to. A write's prepare is refused with
 * NINES_EUNREACHABLE naming why; the controller aborts it. */
static void test_no_copy_node_refuses_commit(void)
{
    install(BIT(W.P) | BIT(W.Q), BIT(W.P) | BIT(W.Q));
    insert(1001, new_key(), 1, true);
    CU_ASSERT_EQUAL(ft_count(W.P, NINES__MSG_TYPE__KERN_OP_CONF, 1001), 0);
    const Nines__KernOpRef *ref = ft_find(W.P, NINES__MSG_TYPE__KERN_OP_REF, 1001, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_EUNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "not committed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "no node of the other site"));
    send_end(1001, false);
    /* everybody back: the abort's records reach S, which confirms it */
    install(ALL, ALL);
    RUN_UNTIL(confs(1001, false) == 1, 20000);
    CU_ASSERT_EQUAL(confs(1001, false), 1);
    /* BOTH again: writes are taken */
    const Nines__KernOpConf *c = insert(1002, new_key(), 2, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->frags[0]->standby, W.S);
    wait_ready(1002, W.S);
    end_txn(1002, true);
    ft_clear(W.P);
    ft_clear(W.Q);
}

/* T1 prepares while F is BOTH, but its batch never reaches S (dropped); S
 * leaves; P ships to the log copy L. L gets T1's records (from the undo
 * floor) and the end mark S never processed, and its READY_IND reaches the
 * hsc; T1's COMMIT_CONF waits for L to hold the COMMIT record. */
static void test_held_mark_goes_to_log_copy(void)
{
    fl_set(NINES__MSG_TYPE__UPD_LOG_REQ, W.P, W.S, 1000, false);
    const Nines__KernOpConf *c = insert(2001, new_key(), 1, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->frags[0]->standby, W.S);
    uint64_t lsn = rec_lsn(c);
    run(50);
    CU_ASSERT(FL.seen > 0);
    CU_ASSERT_EQUAL(sreadies_from(2001, W.S), 0);
    CU_ASSERT_EQUAL(ship_info().marks_held, 1);
    install(ALL & ~BIT(W.S), ALL & ~BIT(W.S)); /* S leaves */
    retarget(W.L);
    fl_off();
    struct upd_ship_info si = ship_info();
    CU_ASSERT_EQUAL(si.start_lsn, lsn); /* T1 is open: the floor is its record */
    wait_ready(2001, W.L);
    struct ksvc_copy_info ci;
    CU_ASSERT_FATAL(copy_info(&ci));
    CU_ASSERT_EQUAL(ci.primary, W.P);
    CU_ASSERT_EQUAL(ci.start_lsn, lsn);
    CU_ASSERT_EQUAL(ci.first_lsn, lsn);
    CU_ASSERT_EQUAL(ci.next_lsn, lsn + 1);
    CU_ASSERT_EQUAL(ci.open_txns, 1);
    CU_ASSERT_EQUAL(ksvc_copy_held(W.n[W.L].kern, W.table, W.frag, 2001), 1);
    CU_ASSERT_TRUE(ksvc_copy_has_mark(W.n[W.L].kern, W.table, W.frag, 2001));
    CU_ASSERT_EQUAL(ksvc_copy_check(W.n[W.L].kern, W.table, W.frag), 0);
    end_txn(2001, true);
    CU_ASSERT_FATAL(copy_info(&ci));
    CU_ASSERT_EQUAL(ci.next_lsn, lsn + 2); /* the COMMIT record is held */
    CU_ASSERT_EQUAL(ci.open_txns, 0);
    ft_clear(W.P);
    ft_clear(W.Q);
}

/* ALONE: a transaction's records and end mark reach the log copy before
 * the hsc hears it ready, and its COMMIT record before the primary's
 * COMMIT_CONF: while L's acknowledgements are held back, no confirmation
 * leaves although L already holds the COMMIT record. */
static void test_records_reach_copy_before_commit(void)
{
    const Nines__KernOpConf *c = insert(3001, new_key(), 7, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->ready);
    CU_ASSERT_EQUAL(c->frags[0]->standby, W.L); /* the hsc waits for the log copy */
    uint64_t lsn = rec_lsn(c);
    wait_ready(3001, W.L);
    CU_ASSERT_EQUAL(ksvc_copy_held(W.n[W.L].kern, W.table, W.frag, 3001), 1);
    run(50);
    fl_set(NINES__MSG_TYPE__UPD_LOG_CONF, W.L, W.P, 0, true);
    send_end(3001, true);
    run(300);
    struct ksvc_copy_info ci;
    CU_ASSERT_FATAL(copy_info(&ci));
    CU_ASSERT(ci.next_lsn > lsn + 1); /* L holds the COMMIT record ... */
    CU_ASSERT_EQUAL(ksvc_copy_held(W.n[W.L].kern, W.table, W.frag, 3001), 2);
    CU_ASSERT_EQUAL(confs(3001, true), 0); /* ... P waits for it to say so */
    CU_ASSERT(FL.nheld > 0);
    fl_off();
    RUN_UNTIL(confs(3001, true) == 1, 2000);
    CU_ASSERT_EQUAL(confs(3001, true), 1);
    CU_ASSERT_EQUAL(ksvc_copy_check(W.n[W.L].kern, W.table, W.frag), 0);
    ft_clear(W.P);
    ft_clear(W.Q);
}

/* A batch to the log copy is lost: the next one shows L a gap and it asks
 * for a resend; with no next batch, P resends on its own when nothing is
 * acknowledged. */
static void test_lost_batch_resent(void)
{
    fl_set(NINES__MSG_TYPE__UPD_LOG_REQ, W.P, W.L, 1, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(insert(4001, new_key(), 1, true));
    run(50);
    CU_ASSERT_EQUAL(FL.seen, 1);
    CU_ASSERT_EQUAL(sreadies_from(4001, W.L), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(insert(4002, new_key(), 2, true));
    RUN_UNTIL(sreadies_from(4001, W.L) == 1 && sreadies_from(4002, W.L) == 1, 100);
    CU_ASSERT_EQUAL(sreadies_from(4001, W.L), 1); /* well within P's own resend interval */
    CU_ASSERT_EQUAL(sreadies_from(4002, W.L), 1);
    fl_off();
    /* silence: the only batch is lost */
    fl_set(NINES__MSG_TYPE__UPD_LOG_REQ, W.P, W.L, 1, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(insert(4003, new_key(), 3, true));
    run(50);
    CU_ASSERT_EQUAL(FL.seen, 1);
    CU_ASSERT_EQUAL(sreadies_from(4003, W.L), 0);
    wait_ready(4003, W.L);
    fl_off();
    for (uint64_t t = 4001; t <= 4003; t++) {
        CU_ASSERT_EQUAL(ksvc_copy_held(W.n[W.L].kern, W.table, W.frag, t), 1);
        end_txn(t, true);
    }
    CU_ASSERT_EQUAL(ksvc_copy_check(W.n[W.L].kern, W.table, W.frag), 0);
    ft_clear(W.P);
    ft_clear(W.Q);
}

/* Records from a node that is not F's primary in the installed node set
 * are refused by the log copy: nothing held, nothing acknowledged. */
static void test_refused_from_non_primary(void)
{
    struct ksvc_copy_info before, after;
    CU_ASSERT_FATAL(copy_info(&before));
    struct ksvc_copy_stats s0, s1;
    ksvc_copy_stats(W.n[W.L].kern, &s0);
    fl_set(NINES__MSG_TYPE__UPD_LOG_CONF, W.L, W.Q, 0, false); /* count L's answers to Q */
    struct rt_msg *m = rt_msg_new(W.n[W.Q].rt, NINES__MSG_TYPE__UPD_LOG_REQ);
    Nines__UpdLogReq *b = RT_BODY(m, Nines__UpdLogReq, nines__upd_log_req__init);
    b->table = W.table;
    b->frag = W.frag;
    b->pinc = before.pinc;
    b->start_lsn = before.start_lsn;
    b->start_seq = before.start_seq;
    struct kern_logrec lr = {.lsn = before.next_lsn, .txn = 77, .table = W.table,
                             .frag = W.frag, .op = KERN_LOG_COMMIT};
    uint8_t *buf = rt_msg_alloc(m, KERN_LOG_HDR);
    CU_ASSERT_EQUAL_FATAL(kern_logrec_encode(&lr, buf, KERN_LOG_HDR), (int)KERN_LOG_HDR);
    b->records = rt_msg_alloc(m, sizeof *b->records);
    b->records[0].data = buf;
    b->records[0].len = KERN_LOG_HDR;
    b->n_records = 1;
    CU_ASSERT_EQUAL(rt_send(W.n[W.Q].rt, W.L, RT_SVC_UPD, m), 0);
    run(200);
    ksvc_copy_stats(W.n[W.L].kern, &s1);
    CU_ASSERT_EQUAL(s1.refused, s0.refused + 1);
    CU_ASSERT_FATAL(copy_info(&after));
    CU_ASSERT_EQUAL(after.next_lsn, before.next_lsn);
    CU_ASSERT_EQUAL(after.nrecs, before.nrecs);
    CU_ASSERT_EQUAL(ksvc_copy_held(W.n[W.L].kern, W.table, W.frag, 77), 0);
    CU_ASSERT_EQUAL(FL.seen, 0); /* not acknowledged to Q */
    fl_off();
}

/* The copy is bounded: over a small budget the oldest records of ended
 * transactions are dropped; an open transaction's record never is, and
 * everything held still checks (CRC, order). */
static void test_copy_bounded(void)
{
    const size_t budget = 4096;
    ksvc_copy_set_budget(W.n[W.L].kern, budget);
    /* an open transaction first: its record is the oldest held */
    CU_ASSERT_PTR_NOT_NULL_FATAL(insert(5000, new_key(), 0, false));
    for (uint64_t t = 5001; t <= 5040; t++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(insert(t, new_key(), (int64_t)t, true));
        wait_ready(t, W.L);
        end_txn(t, true);
        struct ksvc_copy_info ci;
        CU_ASSERT_FATAL(copy_info(&ci));
        CU_ASSERT(ci.bytes <= budget);
    }
    struct ksvc_copy_info ci;
    CU_ASSERT_FATAL(copy_info(&ci));
    CU_ASSERT(ci.dropped > 0);
    CU_ASSERT(ci.bytes <= budget);
    CU_ASSERT_EQUAL(ci.open_txns, 1);
    CU_ASSERT_EQUAL(ksvc_copy_held(W.n[W.L].kern, W.table, W.frag, 5000), 1); /* kept */
    CU_ASSERT_EQUAL(ksvc_copy_held(W.n[W.L].kern, W.table, W.frag, 5040), 2); /* newest */
    CU_ASSERT_EQUAL(ksvc_copy_held(W.n[W.L].kern, W.table, W.frag, 5001), 0); /* dropped */
    CU_ASSERT_EQUAL(ksvc_copy_check(W.n[W.L].kern, W.table, W.frag), 0);
    struct ksvc_copy_stats st;
    ksvc_copy_stats(W.n[W.L].kern, &st);
    CU_ASSERT(st.dropped_recs >= ci.dropped);
    end_txn(5000, false);
    ksvc_copy_set_budget(W.n[W.L].kern, 0);
    ft_clear(W.P);
    ft_clear(W.Q);
}

/* S is back and current: F is BOTH, and L drops its copy at once. (S's
 * replica missed what F wrote while it was away; making it current again
 * is the durability issue's rebuild, and shipping to it again needs that:
 * the stand-in for the roles reconciliation ships nowhere meanwhile.) */
static void test_dropped_when_both(void)
{
    struct ksvc_copy_stats s0, s1;
    ksvc_copy_stats(W.n[W.L].kern, &s0);
    struct ksvc_copy_info ci;
    CU_ASSERT_TRUE(copy_info(&ci));
    install(ALL, ALL);
    CU_ASSERT_FALSE(copy_info(&ci));
    ksvc_copy_stats(W.n[W.L].kern, &s1);
    CU_ASSERT_EQUAL(s1.copies_dropped, s0.copies_dropped + 1);
    retarget(0);
    run(100);
    CU_ASSERT_FALSE(copy_info(&ci));
}

/* A new stint whose first batch is lost: L knows where the stint starts
 * (UpdLogReq.start_lsn), sees the gap in the next batch and asks for it,
 * so the open transaction's records before it are not skipped. */
static void test_stint_first_batch_lost(void)
{
    const Nines__KernOpConf *o = insert(7000, new_key(), 0, false); /* open */
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    run(50);
    install(ALL & ~BIT(W.S), ALL & ~BIT(W.S)); /* S leaves again */
    fl_set(NINES__MSG_TYPE__UPD_LOG_REQ, W.P, W.L, 1, false);
    retarget(W.L);
    uint64_t start = ship_info().start_lsn;
    run(20);
    CU_ASSERT_EQUAL(FL.seen, 1); /* the stint's first batch (txn 7000's record) is lost */
    CU_ASSERT_PTR_NOT_NULL_FATAL(insert(7001, new_key(), 1, true));
    wait_ready(7001, W.L);
    fl_off();
    struct ksvc_copy_info ci;
    CU_ASSERT_FATAL(copy_info(&ci));
    CU_ASSERT_EQUAL(ci.start_lsn, start);
    CU_ASSERT_EQUAL(ci.first_lsn, start);
    CU_ASSERT_EQUAL(ksvc_copy_held(W.n[W.L].kern, W.table, W.frag, 7000), 1);
    CU_ASSERT_EQUAL(ci.open_txns, 2);
    end_txn(7001, true);
    end_txn(7000, false);
    CU_ASSERT_EQUAL(ksvc_copy_check(W.n[W.L].kern, W.table, W.frag), 0);
    ft_clear(W.P);
    ft_clear(W.Q);
}

/* The alone primary is lost too (F is DOWN): L keeps its copy, frozen, for
 * the durability issue's rebuild; it is dropped once F serves again. */
static void test_kept_when_primary_lost(void)
{
    const Nines__KernOpConf *c = insert(8001, new_key(), 1, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    wait_ready(8001, W.L);
    end_txn(8001, true);
    struct ksvc_copy_info before, ci;
    CU_ASSERT_FATAL(copy_info(&before));
    install(ALL & ~BIT(W.S) & ~BIT(W.P), BIT(W.Q) | BIT(W.L)); /* P dies */
    CU_ASSERT_FATAL(copy_info(&ci));
    CU_ASSERT_TRUE(ci.kept);
    CU_ASSERT_EQUAL(ci.nrecs, before.nrecs);
    CU_ASSERT_EQUAL(ci.next_lsn, before.next_lsn);
    CU_ASSERT_EQUAL(ksvc_copy_held(W.n[W.L].kern, W.table, W.frag, 8001), 2);
    run(200);
    CU_ASSERT_FATAL(copy_info(&ci));
    CU_ASSERT_TRUE(ci.kept);
    install(ALL, ALL); /* F serves again (BOTH): no longer needed */
    CU_ASSERT_FALSE(copy_info(&ci));
    retarget(0);
    ft_clear(W.P);
    ft_clear(W.Q);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"no_copy_node_refuses_commit", test_no_copy_node_refuses_commit},
        {"held_mark_goes_to_log_copy", test_held_mark_goes_to_log_copy},
        {"records_reach_copy_before_commit", test_records_reach_copy_before_commit},
        {"lost_batch_resent", test_lost_batch_resent},
        {"refused_from_non_primary", test_refused_from_non_primary},
        {"copy_bounded", test_copy_bounded},
        {"dropped_when_both", test_dropped_when_both},
        {"stint_first_batch_lost", test_stint_first_batch_lost},
        {"kept_when_primary_lost", test_kept_when_primary_lost},
        {NULL, NULL},
    };
    cu_add_suite("logcopy", suite_init, suite_fini, cases);
}
