/* Commit epochs end to end on 4 in-process nodes (the test transport),
 * each built like ninesd for this part: supervisor (static node set) with
 * its data folder, update channel, kernel service with a disk log, and a
 * stand-in txctl task that answers GCP_PREPARE_REQ / GCP_COMMIT_REQ (the
 * real one is txctl/txc_gcp.c) and records RT_MSG_GCP_SAVED. The
 * coordinator's rounds (sup_gcp_node.c) reach every member's txctl and
 * kernel; once an epoch is saved, every node's gcp.ncg holds it before its
 * txctl and kernel hear of it. A damaged gcp.ncg at start is renamed .bad
 * and taken as none; a good one is read back and makes the first epoch
 * jump. Clocks are moved (rt_fault_advance_clock), never waited for. */
#include "cu_test.h"

#include "conf.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "nlog.h"

#include "../../dict/svc/dsvc.h"
#include "../../kernel/svc/ksvc.h"
#include "../../net/testnet.h"
#include "../../supervisor/sup.h"
#include "../../updchan/upd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NN 4
#define TAB_LEN 256
#define CLUSTER_ID 0x77aa55ull

struct node {
    struct rt *rt;
    struct sup sup;
    struct dsvc *dict;
    struct upd *upd;
    struct ksvc *kern;
    char dir[96], logdir[112];
    uint64_t txc_gci;       /* the stand-in txctl's epoch */
    uint64_t txc_saved;     /* RT_MSG_GCP_SAVED it got (highest) */
    uint64_t file_at_notice; /* the file's gci when that notice came */
    uint32_t prepares, commits;
};

static struct {
    struct nines_conf cfg;
    struct net_testnet *hub;
    struct node n[NN + 1];
    struct rt_msg_entry tab[TAB_LEN];
    char root[64];
} W;

static void kern_dict_installed(void *kern, const struct dict *d, bool live_commit)
{
    ksvc_dict_changed(kern, d, live_commit);
}

static uint64_t file_gci(uint32_t id)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", W.n[id].dir, SUP_GCP_FILE_NAME);
    struct sup_gcp_file f;
    return sup_gcp_file_read(p, id, CLUSTER_ID, &f) == 0 ? f.gci : 0;
}

/* The stand-in txctl: stops and switches at once (nothing in flight). */
static void txc_on_msg(struct rt *rt, void *st, struct rt_msg *m)
{
    struct node *n = st;
    uint32_t self = rt_self(rt);
    if (m->type == RT_MSG_GCP_SAVED) {
        if (m->cookie > n->txc_saved) {
            n->txc_saved = m->cookie;
            n->file_at_notice = file_gci(self);
        }
        return;
    }
    if (m->type == NINES__MSG_TYPE__GCP_PREPARE_REQ) {
        const Nines__GcpPrepareReq *q = (const Nines__GcpPrepareReq *)m->body;
        n->prepares++;
        struct rt_msg *a = rt_msg_new(rt, NINES__MSG_TYPE__GCP_PREPARE_CONF);
        Nines__GcpPrepareConf *c = RT_BODY(a, Nines__GcpPrepareConf, nines__gcp_prepare_conf__init);
        if (!c)
            abort(); /* may run in the suite's init: no CUnit test to fail */
        c->node = self;
        c->round = q->round;
        c->gci = n->txc_gci;
        rt_send(rt, m->from, RT_SVC_SUP, a);
    } else if (m->type == NINES__MSG_TYPE__GCP_COMMIT_REQ) {
        const Nines__GcpCommitReq *q = (const Nines__GcpCommitReq *)m->body;
        n->commits++;
        if (q->gci > n->txc_gci)
            n->txc_gci = q->gci;
        struct rt_msg *a = rt_msg_new(rt, NINES__MSG_TYPE__GCP_COMMIT_CONF);
        Nines__GcpCommitConf *c = RT_BODY(a, Nines__GcpCommitConf, nines__gcp_commit_conf__init);
        if (!c)
            abort();
        c->node = self;
        c->round = q->round;
        c->gci = q->gci;
        rt_send(rt, m->from, RT_SVC_SUP, a);
    }
}

static int node_open(uint32_t id)
{
    struct node *n = &W.n[id];
    struct net_transport *tr;
    if (net_testnet_transport(W.hub, id, &tr))
        return 1;
    struct rt_config rc = {.self = id, .conf = &W.cfg, .transport = tr, .msgtab = W.tab,
                           .msgtab_len = TAB_LEN};
    if (rt_create(&n->rt, &rc))
        return 1;
    if (sup_init_static(&n->sup, n->rt))
        return 1;
    sup_set_disk(&n->sup, n->dir, CLUSTER_ID);
    if (dsvc_create(&n->dict, n->rt) || upd_init(&n->upd, n->rt) ||
        ksvc_init(&n->kern, n->rt,
                  &(struct ksvc_config){.upd = n->upd, .dict = dsvc_current_fn,
                                        .dict_ctx = n->dict, .dlog_dir = n->logdir,
                                        .dlog_cluster = CLUSTER_ID}) ||
        dsvc_subscribe_install(n->dict, kern_dict_installed, n->kern) ||
        rt_task_add(n->rt, RT_SVC_TXC, "txc-stand-in", txc_on_msg, n))
        return 1;
    sup_set_kernel(&n->sup, n->kern);
    return 0;
}

static void node_close(uint32_t id)
{
    struct node *n = &W.n[id];
    if (!n->rt)
        return;
    rt_destroy(n->rt);
    ksvc_fini(n->kern);
    upd_fini(n->upd);
    dsvc_destroy(n->dict);
    n->rt = NULL;
}

static void step(void)
{
    for (uint32_t i = 1; i <= NN; i++)
        if (W.n[i].rt)
            rt_step(W.n[i].rt, 0);
    net_testnet_advance(W.hub, 200);
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

static bool all_saved(uint64_t g)
{
    for (uint32_t i = 1; i <= NN; i++)
        if (W.n[i].txc_saved < g || ksvc_restorable(W.n[i].kern) < g)
            return false;
    return true;
}

static void advance_all(uint64_t us)
{
    for (uint32_t i = 1; i <= NN; i++)
        CU_ASSERT_EQUAL(rt_fault_advance_clock(W.n[i].rt, us), 0);
}

/* The coordinator's rounds: run until a round ended (or `ok`); when none
 * runs, move every clock one interval on first (the next round). A round
 * the machine made fail (an fsync slower than the answer bound) is simply
 * followed by another. Waits are counted in turns, never timed. */
static bool round_ended(uint64_t ended)
{
    const struct sup_gcp_stats *st = &W.n[1].sup.gcp.r.stats;
    return st->done + st->failed > ended;
}

static void next_round(bool (*ok)(uint64_t), uint64_t g)
{
    const struct sup_gcp *r = &W.n[1].sup.gcp.r;
    uint64_t ended = r->stats.done + r->stats.failed;
    if (r->phase == SUP_GCP_IDLE)
        advance_all(60000000);
    RUN_UNTIL(ok(g) || round_ended(ended), 10000000);
}

static bool all_switched(uint64_t g);
static bool all_saved(uint64_t g);

/* Every txctl switched to epoch g and the round ended well (the first
 * round: nothing saved). */
static bool switched_done(uint64_t g)
{
    return all_switched(g) && W.n[1].sup.gcp.r.stats.done >= 1 &&
           W.n[1].sup.gcp.r.phase == SUP_GCP_IDLE;
}

static void until_switched(uint64_t g)
{
    for (int a = 0; a < 50 && !switched_done(g); a++)
        next_round(switched_done, g);
}

/* Every node saved epoch g (its file, then its txctl and kernel told). */
static void until_saved(uint64_t g)
{
    for (int a = 0; a < 50 && !all_saved(g); a++) {
        if (W.n[1].sup.gcp.r.stats.restorable >= g) /* declared: the writes and notices */
            RUN_UNTIL(all_saved(g), 10000000);
        else
            next_round(all_saved, g);
    }
}

static bool all_switched(uint64_t g)
{
    for (uint32_t i = 1; i <= NN; i++)
        if (W.n[i].txc_gci < g)
            return false;
    return true;
}

static int suite_init(void)
{
    nlog_set_level(getenv("KT_DEBUG") ? NLOG_DEBUG : NLOG_ERROR);
    memset(&W, 0, sizeof W);
    snprintf(W.root, sizeof W.root, "/tmp/sup_gcp_node_XXXXXX");
    if (!mkdtemp(W.root))
        return 1;
    struct nines_conf *c = &W.cfg;
    snprintf(c->cluster, sizeof c->cluster, "gcpnode");
    c->nnodes = NN;
    for (uint32_t i = 0; i < NN; i++) {
        c->nodes[i].id = i + 1;
        c->nodes[i].site = i % 2;
        snprintf(c->nodes[i].host, sizeof c->nodes[i].host, "127.0.0.1");
        c->nodes[i].port = (uint16_t)(7400 + i);
        struct node *n = &W.n[i + 1];
        char dir[96], logdir[112]; /* locals: no snprintf from W into W */
        snprintf(dir, sizeof dir, "%s/n%u", W.root, i + 1);
        snprintf(logdir, sizeof logdir, "%s/log", dir);
        memcpy(n->dir, dir, sizeof dir);
        memcpy(n->logdir, logdir, sizeof logdir);
        memcpy(c->nodes[i].data_dir, dir, sizeof dir);
        if (mkdir(dir, 0755))
            return 1;
    }
    c->heartbeat_ms = 10;
    c->heartbeat_misses = 50;
    c->reconnect_min_ms = 5;
    c->reconnect_max_ms = 50;
    c->max_frame_bytes = 1u << 20;
    c->send_queue_bytes = 4u << 20;
    c->txn_timeout_ms = 1000;
    c->disk_log = NINES_DISK_LOG_ASYNC;
    c->gcp_interval_ms = 60000; /* rounds when the test moves the clocks */
    snprintf(c->transport, sizeof c->transport, "tcp");
    if (net_testnet_new(&W.hub, c, cu_seed(11)))
        return 1;
    if (sup_msgtab_len > TAB_LEN)
        return 1;
    memcpy(W.tab, sup_msgtab, sup_msgtab_len * sizeof W.tab[0]);
    /* the txctl's rows (its part; here the stand-in answers) */
    W.tab[NINES__MSG_TYPE__GCP_PREPARE_REQ] = (struct rt_msg_entry){
        "GCP_PREPARE_REQ", &nines__gcp_prepare_req__descriptor, RT_SVC_TXC, NULL, RT_FROM_NODE,
        RT_EPOCH_SAME};
    W.tab[NINES__MSG_TYPE__GCP_COMMIT_REQ] = (struct rt_msg_entry){
        "GCP_COMMIT_REQ", &nines__gcp_commit_req__descriptor, RT_SVC_TXC, NULL, RT_FROM_NODE,
        RT_EPOCH_SAME};
    /* node 4 starts with a damaged file */
    char p[160];
    snprintf(p, sizeof p, "%s/%s", W.n[4].dir, SUP_GCP_FILE_NAME);
    FILE *f = fopen(p, "wb");
    if (!f)
        return 1;
    fputs("not a restorable-epoch file, but 64 bytes long, to be refused on its magic!!!!", f);
    fclose(f);
    for (uint32_t i = 1; i <= NN; i++)
        if (node_open(i))
            return 1;
    RUN_UNTIL(all_connected(), 20000);
    return all_connected() ? 0 : 1;
}

static int suite_fini(void)
{
    for (uint32_t i = 1; i <= NN; i++)
        node_close(i);
    net_testnet_free(W.hub);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", W.root);
    return system(cmd) == 0 ? 0 : 1;
}

/* The first round switches every txctl to epoch 1 (nothing to save); the
 * next, an interval later, saves epoch 1: every node's file holds it
 * before its txctl and kernel hear of it. Only node 1 coordinates. No
 * round before the interval. */
static void test_rounds_save(void)
{
    char bad[160];
    snprintf(bad, sizeof bad, "%s/%s.bad", W.n[4].dir, SUP_GCP_FILE_NAME);
    CU_ASSERT_EQUAL(access(bad, F_OK), 0); /* the damaged file, set aside */
    CU_ASSERT_EQUAL(sup_gcp_persisted(&W.n[4].sup), 0);
    until_switched(1);
    for (uint32_t i = 1; i <= NN; i++)
        CU_ASSERT(W.n[i].txc_gci >= 1);
    CU_ASSERT_EQUAL(W.n[1].sup.gcp.r.stats.done, 1);
    uint32_t p = W.n[1].prepares;
    for (int i = 0; i < 1000; i++)
        step();
    CU_ASSERT_EQUAL(W.n[1].prepares, p); /* not before the interval */
    CU_ASSERT_EQUAL(W.n[1].sup.gcp.r.stats.rounds, W.n[1].prepares);
    until_saved(1);
    CU_ASSERT_TRUE_FATAL(all_saved(1));
    uint64_t r1 = W.n[1].sup.gcp.r.stats.restorable;
    CU_ASSERT(r1 >= 1);
    for (uint32_t i = 1; i <= NN; i++) {
        CU_ASSERT(W.n[i].txc_gci > r1);
        CU_ASSERT_EQUAL(file_gci(i), r1);
        CU_ASSERT_EQUAL(W.n[i].txc_saved, r1);
        CU_ASSERT_EQUAL(W.n[i].file_at_notice, r1); /* on disk before the notice */
        CU_ASSERT_EQUAL(sup_gcp_persisted(&W.n[i].sup), r1);
        CU_ASSERT_EQUAL(ksvc_restorable(W.n[i].kern), r1);
    }
    for (uint32_t i = 2; i <= NN; i++)
        CU_ASSERT_EQUAL(W.n[i].sup.gcp.r.stats.rounds, 0);
    until_saved(r1 + 1);
    uint64_t r2 = W.n[1].sup.gcp.r.stats.restorable;
    CU_ASSERT(r2 > r1);
    CU_ASSERT_EQUAL(file_gci(3), r2);
    uint64_t rounds = W.n[1].sup.gcp.r.stats.rounds, failed = W.n[1].sup.gcp.r.stats.failed;
    /* STATUS: the coordinator's rounds, every node's restorable epoch */
    for (uint32_t i = 1; i <= NN; i++) {
        struct rt_msg *r = rt_msg_new(W.n[i].rt, NINES__MSG_TYPE__STATUS_CONF);
        Nines__StatusConf *b = RT_BODY(r, Nines__StatusConf, nines__status_conf__init);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        sup_gcp_status(&W.n[i].sup, r, b);
        CU_ASSERT_STRING_EQUAL(b->gcp_state, "idle");
        CU_ASSERT_EQUAL(b->gcp_restorable, r2);
        CU_ASSERT(b->gcp_restorable_age_ms < 60000);
        CU_ASSERT_EQUAL(b->gcp_failed, i == 1 ? failed : 0);
        if (!failed) {
            CU_ASSERT_STRING_EQUAL(b->gcp_failure, ""); /* none */
        }
        CU_ASSERT_EQUAL(b->gcp_file_errors, 0);
        CU_ASSERT_EQUAL(b->gcp_rounds, i == 1 ? rounds : 0);
        if (i == 1) {
            CU_ASSERT(b->gcp_gci > r2); /* switched to */
        } else {
            CU_ASSERT_EQUAL(b->gcp_gci, r2); /* saw (SAVED_ORD) */
        }
        if (i == 1) {
            CU_ASSERT(b->gcp_last_us > 0);
        }
        rt_msg_free(W.n[i].rt, r);
    }
}

/* A node restarted with its file: it reads it back; as coordinator its
 * first epoch would jump above it (sup_gcp_test restart_jump). */
static void test_restart_reads_file(void)
{
    uint64_t g = file_gci(2);
    CU_ASSERT_FATAL(g >= 2);
    net_testnet_crash(W.hub, 2);
    for (int i = 0; i < 10; i++)
        step();
    node_close(2);
    struct node *n = &W.n[2];
    n->txc_gci = n->txc_saved = 0;
    CU_ASSERT_EQUAL_FATAL(node_open(2), 0);
    CU_ASSERT_EQUAL(sup_gcp_persisted(&n->sup), g);
    CU_ASSERT_EQUAL(W.n[2].sup.gcp.r.known, 0); /* until START */
    for (int i = 0; i < 5; i++)
        step();
    CU_ASSERT_EQUAL(W.n[2].sup.gcp.r.cfg.persisted, g);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
#ifdef NINES_FAULTS
        {"rounds_save", test_rounds_save},
        {"restart_reads_file", test_restart_reads_file},
#endif
        {NULL, NULL},
    };
    cu_add_suite("sup_gcp_node", suite_init, suite_fini, cases);
}
