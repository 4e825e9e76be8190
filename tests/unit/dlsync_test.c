/* Commits that wait for the disk (kernel/svc/README.md "Commits that wait
 * for the disk"): the disk log policies async and sync and the adaptive
 * rule (a PRIMARY ALONE fragment's commits wait for the local fsync) over
 * the in-process test transport. Four nodes, two per site, each with the
 * dictionary service, the update channel and the kernel service wired as
 * in ninesd; node sets installed by the test. Only node 1 has a disk log
 * (a real folder, its own I/O thread), so the process-wide fault points of
 * the disk log (kern.dlog.fsync, kern.dlog.enospc) hit it alone. A fake
 * controller (this file's message-table rows) drives KERN_OP_REQ / COMMIT
 * / ABORT on one fragment F: primary P = node 1, hot standby S, Q = P's
 * site-mate (the fake hot-standby controller), L = S's site-mate (F's log
 * copy once S leaves).
 *
 * "The ready is not sent before the fsync completed" is asserted with the
 * disk log's completions held (ksvc_dlog_fault_hold): the I/O thread
 * finished the flush, the executor has not taken its result, and neither
 * KERN_OP_CONF nor the primary's READY_IND has left; once the completion
 * is processed both leave, and the transaction's record is in the log
 * file. Waits are counted in loop turns, never timed. The tests run in
 * order and share the cluster. */
#include "cu_test.h"

#include "conf.h"
#include "nassert.h"
#include "nines/errors.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "nlog.h"

#include "../../dict/svc/dsvc.h"
#include "../../kernel/kern_dlog.h"
#include "../../kernel/kern_key.h"
#include "../../kernel/svc/ksvc.h"
#include "../../net/testnet.h"
#include "../../supervisor/sup.h"
#include "../../updchan/upd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NN 4
#define NFRAGS 8
#define MAXMSG 8192
#define TAB_MAX NINES__MSG_TYPE__TXC_OUTCOME_REF
#define CLUSTER 0xd15cu

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
    uint32_t P, S, Q, L;
    uint64_t epoch;
    int64_t next_key;
    char root[64], dir[128];
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
    case NINES__MSG_TYPE__PREPARE_CONF:
        return ((const Nines__PrepareConf *)m->body)->txn;
    case NINES__MSG_TYPE__PREPARE_REF:
        return ((const Nines__PrepareRef *)m->body)->txn;
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

/* READY_INDs of txn at the hsc Q: the primary's (standby = 0, from P), or
 * a standby's / log copy's (standby = 1) from node `from`. */
static int readies(uint64_t txn, bool standby, uint32_t from)
{
    int c = 0;
    for (int i = 0;; i++) {
        const Nines__ReadyInd *ri = ft_find(W.Q, NINES__MSG_TYPE__READY_IND, txn, i);
        if (!ri)
            return c;
        c += (bool)ri->standby == standby && ri->node == from;
    }
}

static void ft_clear(uint32_t node)
{
    struct ft *f = &W.n[node].ft;
    for (int i = 0; i < f->n; i++)
        rt_msg_free(W.n[node].rt, f->msgs[i]);
    f->n = 0;
}

#define DLS_BUF (64u << 10) /* P's disk log buffer bound: a gap after ~500 writes */

/* ---- driving the world ---- */
#define STEP_US 200
/* One round: every node one loop turn; P's turn waits up to 1 ms for input
 * when `io` (the disk log's completion comes from its I/O thread). */
static void step_x(bool io)
{
    for (uint32_t i = 1; i <= NN; i++)
        rt_step(W.n[i].rt, io && i == W.P ? 1 : 0);
    for (uint32_t i = 1; i <= NN; i++)
        (void)rt_fault_advance_clock(W.n[i].rt, STEP_US);
    net_testnet_advance(W.hub, STEP_US);
}
static void step(void) { step_x(false); }

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
/* The same, for conditions that need P's I/O thread. */
/* Bounded by steps and by wall time: the I/O thread needs the CPU, which a
 * loaded machine (an ASan build beside other work) may not give it within
 * the steps alone. */
static uint64_t io_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
#define RUN_IO_UNTIL(cond)                                                                         \
    do {                                                                                           \
        uint64_t t0_ = io_wall_ms();                                                               \
        for (int r_ = 0; !(cond) && (r_ < 20000 || io_wall_ms() - t0_ < 10000); r_++)             \
            step_x(true);                                                                          \
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
                                .member = (members & BIT(i)) != 0,
                                .serving = (members & BIT(i)) != 0};
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

/* ---- P's disk log ---- */
static struct ksvc *kp(void) { return W.n[W.P].kern; }

static struct ksvc_dlog_status dls(void)
{
    struct ksvc_dlog_status s;
    ksvc_dlog_status(kp(), &s);
    return s;
}

static int hold(bool on) { return ksvc_dlog_fault_hold(kp(), on); }

/* Everything P's disk log took is durable (state on). */
static void settle(void)
{
    RUN_IO_UNTIL(dls().state == KSVC_DLOG_ON && dls().buffered == 0);
    CU_ASSERT_EQUAL_FATAL(dls().state, KSVC_DLOG_ON);
    CU_ASSERT_EQUAL_FATAL(dls().buffered, 0);
}

struct find {
    uint32_t table, frag;
    uint64_t lsn;
    int found;
};

static int find_cb(void *arg, const struct kern_dlog_entry *e)
{
    struct find *f = arg;
    f->found += e->kind == KERN_DLOG_REC && e->table == f->table && e->frag == f->frag &&
                e->lsn == f->lsn;
    return 0;
}

/* F's record `lsn` is in P's disk log files (a torn tail from a flush in
 * progress ends the scan cleanly), in the run before a gap or after it. */
static bool on_disk(uint64_t lsn)
{
    struct find f = {W.table, W.frag, lsn, 0};
    struct kern_dlog_opts o = {.node = W.P, .cluster = CLUSTER};
    struct kern_dlog_scan_info info;
    uint64_t from = 0;
    for (int run = 0; run < 8; run++) {
        CU_ASSERT_EQUAL(kern_dlog_scan(W.dir, &o, from, find_cb, &f, &info), 0);
        if (!info.gap)
            break;
        from = info.gap_pos + KERN_DLOG_ENT_HDR; /* the run after the gap */
    }
    return f.found == 1;
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
    snprintf(W.root, sizeof W.root, "/tmp/dlsync_XXXXXX");
    if (!mkdtemp(W.root))
        return 1;
    snprintf(W.dir, sizeof W.dir, "%s/log", W.root);
    struct nines_conf *c = &W.cfg;
    snprintf(c->cluster, sizeof c->cluster, "dlsynctest");
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
    if (net_testnet_new(&W.hub, c, cu_seed(11)))
        return 1;
    for (uint32_t i = 0; i < sup_msgtab_len && i <= TAB_MAX; i++)
        W.tab[i] = sup_msgtab[i];
    for (uint32_t t = NINES__MSG_TYPE__TXN_REQ; t <= TAB_MAX; t++)
        if (W.tab[t].svc == RT_SVC_TXC)
            W.tab[t].fn = ft_on_msg;
    W.P = 1; /* F is a fragment node 1 is the primary of (below) */
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
                                            .dict_ctx = n->dict,
                                            .dlog_dir = i == W.P ? W.dir : NULL,
                                            .dlog_cluster = CLUSTER,
                                            .dlog_buf_max = DLS_BUF}) ||
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
    W.frag = NFRAGS;
    for (uint32_t f = 0; f < NFRAGS && W.frag == NFRAGS; f++)
        if (t->frags[f].primary == W.P)
            W.frag = f;
    if (W.frag == NFRAGS)
        return 1;
    W.S = t->frags[W.frag].standby;
    for (uint32_t id = 1; id <= NN; id++) {
        if (id != W.P && site_of(id) == site_of(W.P))
            W.Q = id;
        if (id != W.S && site_of(id) == site_of(W.S))
            W.L = id;
    }
    if (!W.S || !W.Q || !W.L || site_of(W.P) == site_of(W.S))
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
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", W.root);
    return W.root[0] && system(cmd) != 0 ? 1 : 0;
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

/* KERN_OP_REQ from the controller (node P, local) to P: INSERT k = 1 with
 * prepare; the hsc is Q. */
static bool send_noprep; /* send_insert: the write only, no prepare */

static void send_insert(uint64_t txn)
{
    int64_t k = new_key();
    struct rt_msg *m = rt_msg_new(W.n[W.P].rt, NINES__MSG_TYPE__KERN_OP_REQ);
    Nines__KernOpReq *q = RT_BODY(m, Nines__KernOpReq, nines__kern_op_req__init);
    q->txn = txn;
    q->ctl = W.P;
    q->hsc = W.Q;
    q->prepare = !send_noprep;
    q->seq = 7;
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
    row->values[1] = v_i64(m, 1);
    row->n_values = 2;
    o->row = row;
    q->parts = rt_msg_alloc(m, sizeof *q->parts);
    q->ops = rt_msg_alloc(m, sizeof *q->ops);
    q->parts[0] = p;
    q->ops[0] = o;
    q->n_parts = q->n_ops = 1;
    CU_ASSERT_EQUAL(rt_send(W.n[W.P].rt, W.P, RT_SVC_KERN, m), 0);
}

static void send_prepare(uint64_t txn)
{
    struct rt_msg *m = rt_msg_new(W.n[W.P].rt, NINES__MSG_TYPE__PREPARE_REQ);
    Nines__PrepareReq *q = RT_BODY(m, Nines__PrepareReq, nines__prepare_req__init);
    q->txn = txn;
    q->ctl = W.P;
    q->hsc = W.Q;
    CU_ASSERT_EQUAL(rt_send(W.n[W.P].rt, W.P, RT_SVC_KERN, m), 0);
}

static int answers(uint64_t txn)
{
    return ft_count(W.P, NINES__MSG_TYPE__KERN_OP_CONF, txn) +
           ft_count(W.P, NINES__MSG_TYPE__KERN_OP_REF, txn);
}

static const Nines__KernOpConf *conf_of(uint64_t txn)
{
    return ft_find(W.P, NINES__MSG_TYPE__KERN_OP_CONF, txn, 0);
}

static const Nines__KernOpRef *ref_of(uint64_t txn)
{
    return ft_find(W.P, NINES__MSG_TYPE__KERN_OP_REF, txn, 0);
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

static void end_txn(uint64_t txn, bool commit)
{
    send_end(txn, commit);
    RUN_UNTIL(confs(txn, commit) == 1, 20000);
    CU_ASSERT_EQUAL(confs(txn, commit), 1);
}

/* Prepare txn (an insert into F) with P's disk log completions held: once
 * the flush finished on the I/O thread (kept unprocessed), nothing that
 * says "ready" has left P. Returns with the completion still held. */
static void prepare_held(uint64_t txn)
{
    struct ksvc_dlog_status s0 = dls();
    CU_ASSERT_EQUAL(hold(true), 0);
    send_insert(txn);
    RUN_IO_UNTIL(hold(true) == 1);
    CU_ASSERT_EQUAL_FATAL(hold(true), 1); /* the flush is done, its result not taken */
    run(100);
    CU_ASSERT_EQUAL(answers(txn), 0);
    CU_ASSERT_EQUAL(readies(txn, false, W.P), 0);
    struct ksvc_dlog_status s = dls();
    CU_ASSERT_EQUAL(s.waits, s0.waits + 1);
    CU_ASSERT_EQUAL(s.waiting, 1);
}

/* The held completion is processed: the answer and the primary's ready
 * leave P; the transaction's record is on disk. Returns the answer. */
static const Nines__KernOpConf *release_ready(uint64_t txn)
{
    struct ksvc_dlog_status s0 = dls();
    CU_ASSERT_EQUAL(hold(false), 1);
    RUN_IO_UNTIL(answers(txn) > 0 && readies(txn, false, W.P) == 1); /* P's I/O thread completes it */
    const Nines__KernOpConf *c = conf_of(txn);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->ready);
    CU_ASSERT_EQUAL_FATAL(c->n_frags, 1);
    CU_ASSERT_EQUAL(readies(txn, false, W.P), 1);
    CU_ASSERT_TRUE(on_disk(c->frags[0]->last_lsn));
    struct ksvc_dlog_status s = dls();
    CU_ASSERT_EQUAL(s.released, s0.released + 1);
    CU_ASSERT_EQUAL(s.waiting, 0);
    CU_ASSERT(s.released > 0 && s.wait_max_us >= s.wait_sum_us / s.released);
    return c;
}

static void clear_all(void)
{
    for (uint32_t i = 1; i <= NN; i++)
        ft_clear(i);
}

/* ---- tests ---- */

/* async, F BOTH: off the commit path. With P's disk log completions held,
 * the prepared answer and the primary's ready leave at once. */
static void test_async_both_no_wait(void)
{
    settle();
    CU_ASSERT_STRING_EQUAL(dls().policy, "async");
    uint64_t waits = dls().waits;
    CU_ASSERT_EQUAL(hold(true), 0);
    send_insert(101);
    RUN_UNTIL(answers(101) > 0 && readies(101, false, W.P) == 1, 2000);
    const Nines__KernOpConf *c = conf_of(101);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->ready);
    CU_ASSERT_EQUAL(c->frags[0]->standby, W.S);
    CU_ASSERT_EQUAL(readies(101, false, W.P), 1);
    CU_ASSERT_EQUAL(dls().waits, waits);
    (void)hold(false);
    RUN_UNTIL(readies(101, true, W.S) == 1, 20000);
    end_txn(101, true);
    clear_all();
}

/* sync, F BOTH: the prepared answer and the primary's ready wait for the
 * fsync of the transaction's records; then both leave and the record is on
 * disk; the commit completes as usual. */
static void test_sync_waits_for_fsync(void)
{
    settle();
    CU_ASSERT_EQUAL(ksvc_dlog_set_sync(kp(), true), 0);
    CU_ASSERT_STRING_EQUAL(dls().policy, "sync");
    prepare_held(201);
    const Nines__KernOpConf *c = release_ready(201);
    CU_ASSERT_EQUAL(c->frags[0]->standby, W.S); /* and still the standby's ready */
    RUN_UNTIL(readies(201, true, W.S) == 1, 20000);
    end_txn(201, true);
    /* a repeated PREPARE_REQ of a prepared, durable transaction: answered */
    CU_ASSERT_EQUAL(ksvc_dlog_set_sync(kp(), false), 0);
    clear_all();
}

/* sync with commit epochs, F BOTH: the prepare does not wait for its own
 * fsync (the client's answer waits for the epoch, whose SAVE makes every
 * record durable): with completions held both answers leave at once. */
static void test_sync_epochs_no_prepare_wait(void)
{
    settle();
    CU_ASSERT_EQUAL(ksvc_dlog_set_sync(kp(), true), 0);
    CU_ASSERT_EQUAL(ksvc_set_gcp_on(kp(), true), 0);
    uint64_t waits = dls().waits;
    CU_ASSERT_EQUAL(hold(true), 0);
    send_insert(151);
    RUN_UNTIL(answers(151) > 0 && readies(151, false, W.P) == 1, 2000);
    const Nines__KernOpConf *c = conf_of(151);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->ready);
    CU_ASSERT_EQUAL(dls().waits, waits);
    (void)hold(false);
    RUN_UNTIL(readies(151, true, W.S) == 1, 20000);
    end_txn(151, true);
    CU_ASSERT_EQUAL(ksvc_set_gcp_on(kp(), false), 0);
    CU_ASSERT_EQUAL(ksvc_dlog_set_sync(kp(), false), 0);
    clear_all();
}

/* sync: the fsync fails while a prepare waits: it is refused with the
 * error (KERN_OP_REF), never ready; a repeated PREPARE_REQ is refused too;
 * while the disk log is stopped, the sync policy refuses every write's
 * prepare; the retry resumes it. */
static void test_fsync_failure_refused(void)
{
    settle();
    CU_ASSERT_EQUAL(ksvc_dlog_set_sync(kp(), true), 0);
    uint64_t refused = dls().refused;
    nines_fault_arm("kern.dlog.fsync", 1);
    prepare_held(301);
    CU_ASSERT_EQUAL(hold(false), 1);
    RUN_UNTIL(answers(301) > 0, 2000);
    CU_ASSERT_EQUAL(conf_of(301), NULL);
    const Nines__KernOpRef *ref = ref_of(301);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_EIO);
    CU_ASSERT_EQUAL(ref->seq, 7);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "not committed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "disk_log sync"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "fsync"));
    run(100);
    CU_ASSERT_EQUAL(readies(301, false, W.P), 0); /* never ready */
    struct ksvc_dlog_status s = dls();
    CU_ASSERT_EQUAL(s.state, KSVC_DLOG_STOPPED);
    CU_ASSERT_EQUAL(s.refused, refused + 1);
    CU_ASSERT_EQUAL(s.waiting, 0);
    /* asked again: still refused, with the error */
    send_prepare(301);
    RUN_UNTIL(ft_count(W.P, NINES__MSG_TYPE__PREPARE_REF, 301) == 1, 2000);
    const Nines__PrepareRef *pr = ft_find(W.P, NINES__MSG_TYPE__PREPARE_REF, 301, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pr);
    CU_ASSERT_EQUAL(pr->error, NINES_EIO);
    CU_ASSERT_EQUAL(ft_count(W.P, NINES__MSG_TYPE__PREPARE_CONF, 301), 0);
    /* stopped: a write's prepare cannot wait, so the sync policy refuses it */
    send_insert(302);
    RUN_UNTIL(answers(302) > 0, 2000);
    ref = ref_of(302);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "disk log is stopped"));
    CU_ASSERT_EQUAL(dls().refused, refused + 2);
    end_txn(301, false);
    end_txn(302, false);
    /* the retry a second later resumes disk logging */
    CU_ASSERT_EQUAL(rt_fault_advance_clock(W.n[W.P].rt, KSVC_DLOG_RETRY_MS * 1000u), 0);
    settle();
    CU_ASSERT_EQUAL(ksvc_dlog_set_sync(kp(), false), 0);
    clear_all();
}

/* async, S leaves: F is PRIMARY ALONE with the log copy L. Its commits wait
 * for the local fsync and for L's ready. */
static void test_alone_async_waits(void)
{
    install(ALL & ~BIT(W.S), ALL & ~BIT(W.S));
    run(50);
    settle();
    prepare_held(401);
    const Nines__KernOpConf *c = release_ready(401);
    CU_ASSERT_EQUAL(c->frags[0]->standby, W.L); /* the hsc also waits for the log copy */
    RUN_UNTIL(readies(401, true, W.L) == 1, 20000);
    CU_ASSERT_EQUAL(readies(401, true, W.L), 1);
    end_txn(401, true);
    clear_all();
}

/* S is back: F is BOTH again and its commits are asynchronous again. */
static void test_both_again_async(void)
{
    install(ALL, ALL);
    run(50);
    settle();
    uint64_t waits = dls().waits;
    CU_ASSERT_EQUAL(hold(true), 0);
    send_insert(501);
    RUN_UNTIL(answers(501) > 0 && readies(501, false, W.P) == 1, 2000);
    const Nines__KernOpConf *c = conf_of(501);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->ready);
    CU_ASSERT_EQUAL(c->frags[0]->standby, W.S);
    CU_ASSERT_EQUAL(dls().waits, waits);
    (void)hold(false);
    send_end(501, false); /* (S may need a rebuild to confirm it: not waited for) */
    run(50);
    clear_all();
}

/* S and L leave: F is PRIMARY ALONE and no node of the other site is
 * current. With P's disk log on, the write is allowed and commits after
 * the local fsync (durability: one site, on disk); COMMIT_CONF at once
 * (no standby). */
static void test_alone_without_copy_on_disk(void)
{
    install(BIT(W.P) | BIT(W.Q), BIT(W.P) | BIT(W.Q));
    run(50);
    settle();
    prepare_held(601);
    const Nines__KernOpConf *c = release_ready(601);
    CU_ASSERT_EQUAL(c->frags[0]->standby, 0);
    end_txn(601, true);
    clear_all();
}

/* The disk fills while F is ALONE without a log copy: the waiting prepare
 * is refused (NINES_EFULL), and with the disk log stopped writes are
 * refused again as before disk logging existed, the detail saying why;
 * once space returns (the retry succeeds) they are allowed again. */
static void test_disk_full_alone_refused(void)
{
    settle();
    nines_fault_arm("kern.dlog.enospc", -1);
    send_insert(701);
    RUN_IO_UNTIL(answers(701) > 0);
    const Nines__KernOpRef *ref = ref_of(701);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_EFULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "primary-alone without a log copy"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "No space left"));
    CU_ASSERT_EQUAL(readies(701, false, W.P), 0);
    CU_ASSERT_EQUAL(dls().state, KSVC_DLOG_STOPPED);
    send_insert(702);
    RUN_UNTIL(answers(702) > 0, 2000);
    ref = ref_of(702);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_EUNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "not committed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "no node of the other site"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->detail, "disk log is stopped"));
    end_txn(701, false);
    end_txn(702, false);
    nines_fault_arm("kern.dlog.enospc", 0);
    CU_ASSERT_EQUAL(rt_fault_advance_clock(W.n[W.P].rt, KSVC_DLOG_RETRY_MS * 1000u), 0);
    settle();
    prepare_held(703);
    release_ready(703);
    end_txn(703, true);
    clear_all();
}

/* sync, S out: F ALONE with the log copy L (writes allowed while the disk
 * log is stopped). A gap and its resume (kernel/svc/README.md "Gap and
 * resume"). Txn 801 writes before the gap (not prepared); writes of other
 * transactions while the disk is full pass the bound: gap. The disk comes
 * back, the retry resumes the log; 801's prepare is refused (some of its
 * records may have been dropped: it began before the gap ended), never
 * ready; a transaction begun after the resume waits for the fsync again
 * and commits. */
static void test_gap_resume_sync(void)
{
    install(ALL & ~BIT(W.S), ALL & ~BIT(W.S));
    run(50);
    settle();
    CU_ASSERT_EQUAL(ksvc_dlog_set_sync(kp(), true), 0);
    send_noprep = true;
    send_insert(801);
    RUN_UNTIL(answers(801) > 0, 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf_of(801));
    nines_fault_arm("kern.dlog.enospc", -1);
    uint64_t n = 0;
    for (; dls().state != KSVC_DLOG_GAP && n < 20000; n++) {
        send_insert(900 + n);
        step_x(true);
    }
    send_noprep = false;
    CU_ASSERT_EQUAL_FATAL(dls().state, KSVC_DLOG_GAP);
    CU_ASSERT_EQUAL(dls().gaps, 1);
    for (uint64_t i = 0; i < n; i++)
        send_end(900 + i, false);
    run(200);
    /* the disk back: the retry writes the gap marker, no checkpoints here: on */
    nines_fault_arm("kern.dlog.enospc", 0);
    CU_ASSERT_EQUAL(rt_fault_advance_clock(W.n[W.P].rt, KSVC_DLOG_RETRY_MS * 1000u), 0);
    RUN_IO_UNTIL(dls().state == KSVC_DLOG_ON);
    CU_ASSERT_EQUAL_FATAL(dls().state, KSVC_DLOG_ON);
    CU_ASSERT_EQUAL(dls().resumes, 1);
    uint64_t refused = dls().refused;
    send_prepare(801);
    RUN_UNTIL(ft_count(W.P, NINES__MSG_TYPE__PREPARE_REF, 801) == 1, 2000);
    const Nines__PrepareRef *pr = ft_find(W.P, NINES__MSG_TYPE__PREPARE_REF, 801, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pr);
    CU_ASSERT_EQUAL(pr->error, NINES_EFULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pr->detail, "began before the disk log's gap"));
    CU_ASSERT_EQUAL(ft_count(W.P, NINES__MSG_TYPE__PREPARE_CONF, 801), 0);
    CU_ASSERT_EQUAL(readies(801, false, W.P), 0);
    CU_ASSERT_EQUAL(dls().refused, refused + 1);
    end_txn(801, false);
    prepare_held(802); /* begun after the resume: waits for the fsync again */
    release_ready(802);
    RUN_UNTIL(readies(802, true, W.L) == 1, 20000);
    end_txn(802, true);
    CU_ASSERT_EQUAL(ksvc_dlog_set_sync(kp(), false), 0);
    clear_all();
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"async_both_no_wait", test_async_both_no_wait},
        {"sync_waits_for_fsync", test_sync_waits_for_fsync},
        {"sync_epochs_no_prepare_wait", test_sync_epochs_no_prepare_wait},
        {"fsync_failure_refused", test_fsync_failure_refused},
        {"alone_async_waits", test_alone_async_waits},
        {"both_again_async", test_both_again_async},
        {"alone_without_copy_on_disk", test_alone_without_copy_on_disk},
        {"disk_full_alone_refused", test_disk_full_alone_refused},
        {"gap_resume_sync", test_gap_resume_sync},
        {NULL, NULL},
    };
    cu_add_suite("dlsync", suite_init, suite_fini, cases);
}
