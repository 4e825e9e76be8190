/* Commit-epoch rounds (supervisor/sup_gcp.c) over a simulated network of 4
 * nodes, each with its coordinator state machine; the txctls and kernel
 * services are simulated here (they answer as the test says, the way
 * txctl/txc_gcp.c and kernel/svc/ksvc_gcp.c do). Messages are packed and
 * unpacked as on the wire and delivered after a deterministic delay; the
 * clock is the simulation's. And the restorable file
 * (supervisor/sup_gcp_file.c): roundtrip, every flipped byte refused,
 * another node or cluster refused, truncated and longer files refused. */
#include "crc32c.h"
#include "cu_test.h"
#include "nines/errors.h"
#include "nlog.h"
#include "supervisor/sup_gcp.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 4
#define QMAX 4096
#define ANSWER_US 50000u
#define COMMIT_US 300000u
#define INTERVAL_US 100000u

enum sim_ans { ANS_CONF = 0, ANS_REF, ANS_SILENT };

struct sim_msg {
    uint64_t at;
    uint32_t from, to, type;
    size_t len;
    uint8_t buf[256];
};

static struct {
    uint64_t now;
    struct sup_gcp gcp[N + 1];
    struct sup_gcp_view view;   /* the installed set, the same at every node */
    uint64_t txc_gci[N + 1];    /* each simulated txctl's current epoch */
    enum sim_ans prep[N + 1], commit[N + 1], save[N + 1];
    struct sim_msg q[QMAX];
    uint32_t nq;
    /* what each coordinator sent and received, per round (<= 63) */
    uint32_t sent_[N + 1][9][64]; /* [coordinator][type - 160][round] messages sent */
    uint32_t got_[N + 1][9][64];  /* [coordinator][type - 160][round] answers delivered */
    uint64_t cgci[N + 1][64];     /* the gci of the round's COMMIT_REQ */
    uint64_t sgci[N + 1][64];
    uint64_t pepoch[N + 1][64];   /* the epoch the round's PREPARE_REQ named */
    uint64_t saved[N + 1];      /* the highest GCP_SAVED_ORD each supervisor received */
    uint64_t saved_wall[N + 1];
    bool order_bad;
    char why[200];
} S;

static uint32_t T(uint32_t type) { return type - NINES__MSG_TYPE__GCP_PREPARE_REQ; }

static void enqueue(uint32_t from, uint32_t to, uint32_t type, const ProtobufCMessage *body)
{
    CU_ASSERT_FATAL(S.nq < QMAX);
    struct sim_msg *m = &S.q[S.nq++];
    memset(m, 0, sizeof *m);
    m->from = from;
    m->to = to;
    m->type = type;
    m->at = S.now + 100 + (from * 37 + to * 11) % 150; /* 100..250 us */
    m->len = protobuf_c_message_get_packed_size(body);
    CU_ASSERT_FATAL(m->len <= sizeof m->buf);
    protobuf_c_message_pack(body, m->buf);
}

static void bad_order(const char *what)
{
    S.order_bad = true;
    snprintf(S.why, sizeof S.why, "%s", what);
}

static uint32_t self_of(void *ctx) { return ((struct sup_gcp *)ctx)->cfg.self; }
static uint32_t nasked(void *ctx) { return (uint32_t)__builtin_popcountll(((struct sup_gcp *)ctx)->asked); }
#define SENT(ctx) S.sent_[self_of(ctx)]
#define GOT(ctx) S.got_[self_of(ctx)]

static void op_prepare(void *ctx, uint32_t to, const Nines__GcpPrepareReq *q)
{
    if (q->round < 64) {
        SENT(ctx)[T(NINES__MSG_TYPE__GCP_PREPARE_REQ)][q->round]++;
        S.pepoch[self_of(ctx)][q->round] = q->epoch;
    }
    CU_ASSERT(q->hold_ms > 0);
    enqueue(self_of(ctx), to, NINES__MSG_TYPE__GCP_PREPARE_REQ, &q->base);
}

static void op_commit(void *ctx, uint32_t to, const Nines__GcpCommitReq *q)
{
    if (q->round < 64) {
        if (GOT(ctx)[T(NINES__MSG_TYPE__GCP_PREPARE_CONF)][q->round] != nasked(ctx))
            bad_order("COMMIT_REQ before every PREPARE_CONF");
        SENT(ctx)[T(NINES__MSG_TYPE__GCP_COMMIT_REQ)][q->round]++;
        S.cgci[self_of(ctx)][q->round] = q->gci;
    }
    enqueue(self_of(ctx), to, NINES__MSG_TYPE__GCP_COMMIT_REQ, &q->base);
}

static void op_save(void *ctx, uint32_t to, const Nines__GcpSaveReq *q)
{
    if (q->round < 64) {
        if (GOT(ctx)[T(NINES__MSG_TYPE__GCP_COMMIT_CONF)][q->round] != nasked(ctx))
            bad_order("SAVE_REQ before every COMMIT_CONF");
        SENT(ctx)[T(NINES__MSG_TYPE__GCP_SAVE_REQ)][q->round]++;
        S.sgci[self_of(ctx)][q->round] = q->gci;
    }
    enqueue(self_of(ctx), to, NINES__MSG_TYPE__GCP_SAVE_REQ, &q->base);
}

static void op_saved(void *ctx, uint32_t to, const Nines__GcpSavedOrd *o)
{
    struct sup_gcp *g = ctx;
    if (g->round < 64) {
        if (GOT(ctx)[T(NINES__MSG_TYPE__GCP_SAVE_CONF)][g->round] != nasked(ctx))
            bad_order("SAVED_ORD before every SAVE_CONF");
        SENT(ctx)[T(NINES__MSG_TYPE__GCP_SAVED_ORD)][g->round]++;
    }
    enqueue(self_of(ctx), to, NINES__MSG_TYPE__GCP_SAVED_ORD, &o->base);
}

static uint64_t op_wall(void *ctx)
{
    (void)ctx;
    return 1700000000000000ull + S.now;
}

static const struct sup_gcp_ops sim_ops = {op_prepare, op_commit, op_save, op_saved, op_wall};

static void sim_init(bool sync, uint64_t persisted)
{
    memset(&S, 0, sizeof S);
    S.now = 1000000;
    S.view = (struct sup_gcp_view){
        .epoch = 1, .members = 0xf, .coordinator = 1, .serving = true};
    for (uint32_t i = 1; i <= N; i++) {
        struct sup_gcp_config c = {
            .self = i,
            .on = true,
            .sync = sync,
            .interval_us = INTERVAL_US,
            .hold_ms = 100,
            .answer_us = ANSWER_US,
            .commit_us = COMMIT_US,
            .persisted = i == 1 ? persisted : 0,
        };
        sup_gcp_init(&S.gcp[i], &c, &sim_ops, &S.gcp[i]);
        S.txc_gci[i] = 0;
    }
}

static void steps(void)
{
    for (uint32_t i = 1; i <= N; i++)
        sup_gcp_step(&S.gcp[i], &S.view, S.now);
}

/* A simulated txctl or kernel answers as the test says. */
static void deliver(const struct sim_msg *m)
{
    uint32_t to = m->to, from = m->from;
    struct sup_gcp *g = &S.gcp[to];
    switch (m->type) {
    case NINES__MSG_TYPE__GCP_PREPARE_REQ: {
        Nines__GcpPrepareReq *q = nines__gcp_prepare_req__unpack(NULL, m->len, m->buf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        if (S.prep[to] == ANS_CONF) {
            Nines__GcpPrepareConf c = NINES__GCP_PREPARE_CONF__INIT;
            c.node = to;
            c.round = q->round;
            c.gci = S.txc_gci[to];
            enqueue(to, from, NINES__MSG_TYPE__GCP_PREPARE_CONF, &c.base);
        }
        nines__gcp_prepare_req__free_unpacked(q, NULL);
        break;
    }
    case NINES__MSG_TYPE__GCP_COMMIT_REQ: {
        Nines__GcpCommitReq *q = nines__gcp_commit_req__unpack(NULL, m->len, m->buf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        if (S.commit[to] == ANS_CONF) {
            if (q->gci > S.txc_gci[to])
                S.txc_gci[to] = q->gci;
            Nines__GcpCommitConf c = NINES__GCP_COMMIT_CONF__INIT;
            c.node = to;
            c.round = q->round;
            c.gci = q->gci;
            enqueue(to, from, NINES__MSG_TYPE__GCP_COMMIT_CONF, &c.base);
        } else if (S.commit[to] == ANS_REF) {
            Nines__GcpCommitRef r = NINES__GCP_COMMIT_REF__INIT;
            r.node = to;
            r.round = q->round;
            r.error = NINES_ETIMEDOUT;
            r.detail = (char *)"sim: the stop expired before the switch";
            enqueue(to, from, NINES__MSG_TYPE__GCP_COMMIT_REF, &r.base);
        }
        nines__gcp_commit_req__free_unpacked(q, NULL);
        break;
    }
    case NINES__MSG_TYPE__GCP_SAVE_REQ: {
        Nines__GcpSaveReq *q = nines__gcp_save_req__unpack(NULL, m->len, m->buf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        if (S.save[to] == ANS_CONF) {
            Nines__GcpSaveConf c = NINES__GCP_SAVE_CONF__INIT;
            c.node = to;
            c.round = q->round;
            c.gci = q->gci;
            c.durable = 4096;
            enqueue(to, from, NINES__MSG_TYPE__GCP_SAVE_CONF, &c.base);
        } else if (S.save[to] == ANS_REF) {
            Nines__GcpSaveRef r = NINES__GCP_SAVE_REF__INIT;
            r.node = to;
            r.round = q->round;
            r.error = NINES_EFULL;
            r.detail = (char *)"sim: the disk is full";
            enqueue(to, from, NINES__MSG_TYPE__GCP_SAVE_REF, &r.base);
        }
        nines__gcp_save_req__free_unpacked(q, NULL);
        break;
    }
    case NINES__MSG_TYPE__GCP_PREPARE_CONF: {
        Nines__GcpPrepareConf *c = nines__gcp_prepare_conf__unpack(NULL, m->len, m->buf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        if (c->round < 64)
            S.got_[to][T(m->type)][c->round]++;
        sup_gcp_on_prepare_conf(g, &S.view, from, c, S.now);
        nines__gcp_prepare_conf__free_unpacked(c, NULL);
        break;
    }
    case NINES__MSG_TYPE__GCP_COMMIT_CONF: {
        Nines__GcpCommitConf *c = nines__gcp_commit_conf__unpack(NULL, m->len, m->buf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        if (c->round < 64)
            S.got_[to][T(m->type)][c->round]++;
        sup_gcp_on_commit_conf(g, &S.view, from, c, S.now);
        nines__gcp_commit_conf__free_unpacked(c, NULL);
        break;
    }
    case NINES__MSG_TYPE__GCP_COMMIT_REF: {
        Nines__GcpCommitRef *r = nines__gcp_commit_ref__unpack(NULL, m->len, m->buf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        sup_gcp_on_commit_ref(g, &S.view, from, r, S.now);
        nines__gcp_commit_ref__free_unpacked(r, NULL);
        break;
    }
    case NINES__MSG_TYPE__GCP_SAVE_CONF: {
        Nines__GcpSaveConf *c = nines__gcp_save_conf__unpack(NULL, m->len, m->buf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        if (c->round < 64)
            S.got_[to][T(m->type)][c->round]++;
        sup_gcp_on_save_conf(g, &S.view, from, c, S.now);
        nines__gcp_save_conf__free_unpacked(c, NULL);
        break;
    }
    case NINES__MSG_TYPE__GCP_SAVE_REF: {
        Nines__GcpSaveRef *r = nines__gcp_save_ref__unpack(NULL, m->len, m->buf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        sup_gcp_on_save_ref(g, &S.view, from, r, S.now);
        nines__gcp_save_ref__free_unpacked(r, NULL);
        break;
    }
    case NINES__MSG_TYPE__GCP_SAVED_ORD: {
        Nines__GcpSavedOrd *o = nines__gcp_saved_ord__unpack(NULL, m->len, m->buf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        if (o->gci > S.saved[to]) {
            S.saved[to] = o->gci;
            S.saved_wall[to] = o->wall_us;
        }
        sup_gcp_saw(g, o->gci);
        nines__gcp_saved_ord__free_unpacked(o, NULL);
        break;
    }
    default:
        CU_FAIL("unexpected message type");
    }
}

static void run_until(uint64_t until)
{
    steps();
    while (S.now < until) {
        uint64_t next = until;
        int32_t mi = -1;
        for (uint32_t i = 0; i < S.nq; i++)
            if (S.q[i].at < next || (mi < 0 && S.q[i].at == next)) {
                next = S.q[i].at;
                mi = (int32_t)i;
            }
        for (uint32_t i = 1; i <= N; i++) {
            uint64_t d = sup_gcp_deadline(&S.gcp[i], &S.view);
            if (d && d < next) {
                next = d < S.now ? S.now : d;
                mi = -1;
            }
        }
        if (next > S.now)
            S.now = next;
        if (mi >= 0) {
            struct sim_msg m = S.q[mi];
            S.q[mi] = S.q[--S.nq];
            deliver(&m);
        }
        steps();
        if (mi < 0 && next >= until)
            break;
    }
    S.now = until;
    steps();
}

static void run_ms(uint64_t ms) { run_until(S.now + ms * 1000); }

static uint32_t sent(uint32_t type, uint64_t round) { return S.sent_[1][T(type)][round]; }
#define commit_gci cgci[1]
#define save_gci sgci[1]
#define prep_epoch pepoch[1]

static void no_bad_order(void)
{
    if (S.order_bad)
        fprintf(stderr, "order: %s\n", S.why);
    CU_ASSERT_FALSE(S.order_bad);
}

/* One full round: PREPARE to every member, COMMIT with max(gci) + 1 once
 * every PREPARE_CONF is in, SAVE of that - 1 once every COMMIT_CONF is in,
 * SAVED_ORD to every supervisor once every SAVE_CONF is in. Only the
 * coordinator runs rounds, one per interval. */
static void test_round(void)
{
    sim_init(false, 0);
    S.txc_gci[3] = 7; /* one txctl ahead of the others */
    run_ms(1);
    CU_ASSERT_EQUAL(S.gcp[1].stats.rounds, 1); /* the first at once */
    run_ms(20);
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_PREPARE_REQ, 1), N);
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_COMMIT_REQ, 1), N);
    CU_ASSERT_EQUAL(S.commit_gci[1], 8);
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_SAVE_REQ, 1), N);
    CU_ASSERT_EQUAL(S.save_gci[1], 7);
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_SAVED_ORD, 1), N);
    for (uint32_t i = 1; i <= N; i++) {
        CU_ASSERT_EQUAL(S.saved[i], 7);
        CU_ASSERT(S.saved_wall[i] > 1700000000000000ull);
        CU_ASSERT_EQUAL(S.txc_gci[i], 8);
    }
    CU_ASSERT_EQUAL(S.gcp[1].stats.done, 1);
    CU_ASSERT_EQUAL(S.gcp[1].stats.failed, 0);
    CU_ASSERT_EQUAL(S.gcp[1].stats.restorable, 7);
    CU_ASSERT(S.gcp[1].stats.last_us > 0);
    CU_ASSERT_EQUAL(S.gcp[1].phase, SUP_GCP_IDLE);
    for (uint32_t i = 2; i <= N; i++)
        CU_ASSERT_EQUAL(S.gcp[i].stats.rounds, 0);
    /* not before the interval */
    run_ms(50);
    CU_ASSERT_EQUAL(S.gcp[1].stats.rounds, 1);
    run_ms(100);
    CU_ASSERT_EQUAL(S.gcp[1].stats.rounds, 2);
    CU_ASSERT_EQUAL(S.commit_gci[2], 9);
    CU_ASSERT_EQUAL(S.save_gci[2], 8);
    for (uint32_t i = 1; i <= N; i++)
        CU_ASSERT_EQUAL(S.saved[i], 8);
    no_bad_order();
}

/* The first round of all: epoch 1 stamped nothing below it; no SAVE. */
static void test_first_epoch(void)
{
    sim_init(false, 0);
    run_ms(20);
    CU_ASSERT_EQUAL(S.commit_gci[1], 1);
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_SAVE_REQ, 1), 0);
    CU_ASSERT_EQUAL(S.gcp[1].stats.done, 1);
    run_ms(100);
    CU_ASSERT_EQUAL(S.commit_gci[2], 2);
    CU_ASSERT_EQUAL(S.save_gci[2], 1);
    CU_ASSERT_EQUAL(S.saved[4], 1);
    no_bad_order();
}

/* A txctl that does not answer PREPARE: the round is aborted after the
 * bound, nothing is switched; the next round after the interval succeeds
 * once it answers again. */
static void test_prepare_missing(void)
{
    sim_init(false, 0);
    S.txc_gci[1] = 4;
    S.prep[3] = ANS_SILENT;
    run_ms(ANSWER_US / 1000 - 5);
    CU_ASSERT_EQUAL(S.gcp[1].phase, SUP_GCP_PREPARING);
    CU_ASSERT_EQUAL(S.gcp[1].stats.failed, 0);
    run_ms(10);
    CU_ASSERT_EQUAL(S.gcp[1].phase, SUP_GCP_IDLE);
    CU_ASSERT_EQUAL(S.gcp[1].stats.failed, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(S.gcp[1].stats.last_why, "nodes 4 did not answer"));
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_COMMIT_REQ, 1), 0);
    S.prep[3] = ANS_CONF;
    run_ms(INTERVAL_US / 1000 + 10);
    CU_ASSERT_EQUAL(S.gcp[1].stats.done, 1);
    CU_ASSERT_EQUAL(S.commit_gci[2], 5);
    CU_ASSERT_EQUAL(S.saved[2], 4);
    no_bad_order();
}

/* A COMMIT_REF fails the round: no SAVE. A missing COMMIT_CONF fails it
 * after the (longer) commit bound, not the answer bound. */
static void test_commit_ref_and_missing(void)
{
    sim_init(false, 0);
    S.txc_gci[2] = 10;
    S.commit[2] = ANS_REF;
    run_ms(20);
    CU_ASSERT_EQUAL(S.gcp[1].stats.failed, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(S.gcp[1].stats.last_why, "node 2 refused the switch"));
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_SAVE_REQ, 1), 0);
    CU_ASSERT_EQUAL(S.saved[1], 0);
    S.commit[2] = ANS_CONF;
    S.commit[4] = ANS_SILENT;
    run_ms(INTERVAL_US / 1000 + 5);
    CU_ASSERT_EQUAL(S.gcp[1].stats.rounds, 2);
    CU_ASSERT_EQUAL(S.commit_gci[2], 12); /* the epoch switched by round 1 stays: 11 + 1 */
    run_ms(ANSWER_US / 1000 + 10);
    CU_ASSERT_EQUAL(S.gcp[1].phase, SUP_GCP_COMMITTING); /* still waiting */
    run_ms(COMMIT_US / 1000);
    CU_ASSERT_EQUAL(S.gcp[1].phase, SUP_GCP_IDLE);
    CU_ASSERT_EQUAL(S.gcp[1].stats.failed, 2);
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_SAVE_REQ, 2), 0);
    CU_ASSERT_EQUAL(S.saved[3], 0);
    no_bad_order();
}

/* A SAVE_REF (a disk log stopped) or a silent kernel fails the round with
 * the reason; nothing is declared restorable. */
static void test_save_ref(void)
{
    sim_init(false, 0);
    S.txc_gci[1] = 3;
    S.save[4] = ANS_REF;
    run_ms(20);
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_SAVE_REQ, 1), N);
    CU_ASSERT_EQUAL(S.gcp[1].stats.failed, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(S.gcp[1].stats.last_why, "node 4's disk log"));
    CU_ASSERT_PTR_NOT_NULL(strstr(S.gcp[1].stats.last_why, "the disk is full"));
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_SAVED_ORD, 1), 0);
    S.save[4] = ANS_SILENT;
    run_ms(INTERVAL_US / 1000 + ANSWER_US / 1000 + 10);
    CU_ASSERT_EQUAL(S.gcp[1].stats.failed, 2);
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_SAVED_ORD, 2), 0);
    for (uint32_t i = 1; i <= N; i++)
        CU_ASSERT_EQUAL(S.saved[i], 0);
    S.save[4] = ANS_CONF;
    run_ms(INTERVAL_US / 1000 + 10);
    CU_ASSERT_EQUAL(S.gcp[1].stats.done, 1);
    CU_ASSERT_EQUAL(S.saved[4], S.commit_gci[3] - 1);
    no_bad_order();
}

/* A new node set aborts the round in progress; the next starts at once in
 * the new set (its PREPARE names the new epoch) and answers of the old
 * round are ignored. */
static void test_install_aborts(void)
{
    sim_init(false, 0);
    S.prep[2] = ANS_SILENT;
    run_ms(5);
    CU_ASSERT_EQUAL(S.gcp[1].phase, SUP_GCP_PREPARING);
    S.prep[2] = ANS_CONF;
    S.view.epoch = 2;
    S.view.members = 0xb; /* node 3 left */
    steps();
    CU_ASSERT_EQUAL(S.gcp[1].stats.failed, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(S.gcp[1].stats.last_why, "node set 2 was installed"));
    CU_ASSERT_EQUAL(S.gcp[1].stats.rounds, 2); /* the next at once */
    CU_ASSERT_EQUAL(S.prep_epoch[2], 2);
    run_ms(20);
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_PREPARE_REQ, 2), 3);
    CU_ASSERT_EQUAL(S.gcp[1].stats.done, 1);
    CU_ASSERT_EQUAL(sent(NINES__MSG_TYPE__GCP_COMMIT_REQ, 2), 3);
    /* a node that is not the coordinator, or does not serve, runs none */
    S.view.coordinator = 2;
    run_ms(300);
    CU_ASSERT_EQUAL(S.gcp[1].stats.rounds, 2);
    uint64_t r2 = S.gcp[2].stats.rounds;
    CU_ASSERT(r2 >= 2); /* node 2 coordinates now */
    S.view.serving = false;
    run_ms(300);
    CU_ASSERT_EQUAL(S.gcp[2].stats.rounds, r2);
    no_bad_order();
}

/* Under sync the next round starts as soon as one ends (at most one per
 * SUP_GCP_SYNC_MIN_US): many rounds in the time async runs one; each
 * declares a higher epoch restorable. */
static void test_sync_back_to_back(void)
{
    sim_init(true, 0);
    run_ms(50);
    uint64_t r = S.gcp[1].stats.done;
    CU_ASSERT(r >= 20);
    CU_ASSERT(r <= 50 * 1000 / SUP_GCP_SYNC_MIN_US + 1);
    CU_ASSERT_EQUAL(S.gcp[1].stats.failed, 0);
    CU_ASSERT_EQUAL(S.saved[3], r - 1);
    no_bad_order();
    sim_init(false, 0);
    run_ms(50);
    CU_ASSERT_EQUAL(S.gcp[1].stats.done, 1);
}

/* After a restart the coordinator's first epoch is far above every epoch
 * persisted (and the restart set's restorable epoch). */
static void test_restart_jump(void)
{
    sim_init(false, 100);
    run_ms(20);
    CU_ASSERT_EQUAL(S.commit_gci[1], 100 + SUP_GCP_JUMP + 1);
    CU_ASSERT_EQUAL(S.saved[2], 100 + SUP_GCP_JUMP);
    sim_init(false, 100);
    S.view.restart_gci = 500;
    run_ms(20);
    CU_ASSERT_EQUAL(S.commit_gci[1], 500 + SUP_GCP_JUMP + 1);
    /* the jump is taken once: the next round goes on from there */
    run_ms(100);
    CU_ASSERT_EQUAL(S.commit_gci[2], 500 + SUP_GCP_JUMP + 2);
}

/* A node that takes coordination over from another: a round of the old
 * coordinator may have switched txctls that died with it to an epoch no
 * live txctl reports; the new coordinator's first epoch jumps past any such
 * one, and the epochs go on by one from there. */
static void test_takeover_jump(void)
{
    sim_init(false, 0);
    run_ms(20);
    CU_ASSERT_EQUAL(S.commit_gci[1], 1); /* the first coordinator: no jump */
    S.view.epoch++;
    S.view.coordinator = 2;
    run_ms(20);
    CU_ASSERT_EQUAL(S.gcp[2].stats.rounds, 1);
    CU_ASSERT_EQUAL(S.cgci[2][1], 1 + SUP_GCP_JUMP);
    run_ms(100);
    CU_ASSERT_EQUAL(S.cgci[2][2], 2 + SUP_GCP_JUMP);
    no_bad_order();
}

/* ---- the restorable file ---------------------------------------------- */

#define NODE 3
#define CLUSTER 0x1234abcd5678ef00ull

static void test_file_roundtrip(void)
{
    struct sup_gcp_file f = {.gci = 77, .wall_us = 1700000000123456ull,
                             .written_us = 1700000000223456ull, .seq = 9};
    uint8_t b[SUP_GCP_FILE_BYTES];
    CU_ASSERT_EQUAL_FATAL(sup_gcp_file_encode(&f, NODE, CLUSTER, b), 0);
    CU_ASSERT_EQUAL(memcmp(b, "NINESGCP", 8), 0);
    CU_ASSERT_EQUAL(b[8], 1);
    CU_ASSERT_EQUAL(b[10], 64);
    CU_ASSERT_EQUAL(b[12], NODE);
    CU_ASSERT_EQUAL(b[24], 77);
    struct sup_gcp_file g;
    CU_ASSERT_EQUAL(sup_gcp_file_decode(b, sizeof b, NODE, CLUSTER, &g), 0);
    CU_ASSERT_EQUAL(g.gci, 77);
    CU_ASSERT_EQUAL(g.wall_us, f.wall_us);
    CU_ASSERT_EQUAL(g.written_us, f.written_us);
    CU_ASSERT_EQUAL(g.seq, 9);
    /* every flipped bit of every byte is refused */
    for (size_t i = 0; i < sizeof b; i++)
        for (int bit = 0; bit < 8; bit++) {
            uint8_t c[SUP_GCP_FILE_BYTES];
            memcpy(c, b, sizeof c);
            c[i] ^= (uint8_t)(1u << bit);
            int rc = sup_gcp_file_decode(c, sizeof c, NODE, CLUSTER, &g);
            CU_ASSERT(rc < 0);
            if (rc >= 0)
                fprintf(stderr, "byte %zu bit %d flipped: accepted\n", i, bit);
        }
    /* another node's, another cluster's */
    CU_ASSERT_EQUAL(sup_gcp_file_decode(b, sizeof b, NODE + 1, CLUSTER, &g), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "written by node 3"));
    CU_ASSERT_EQUAL(sup_gcp_file_decode(b, sizeof b, NODE, CLUSTER + 1, &g), NINES_EINVAL);
    /* truncated, longer */
    for (size_t n = 0; n < sizeof b; n++)
        CU_ASSERT_EQUAL(sup_gcp_file_decode(b, n, NODE, CLUSTER, &g), NINES_ETRUNC);
    uint8_t big[SUP_GCP_FILE_BYTES + 1];
    memcpy(big, b, sizeof b);
    big[SUP_GCP_FILE_BYTES] = 0;
    CU_ASSERT_EQUAL(sup_gcp_file_decode(big, sizeof big, NODE, CLUSTER, &g), NINES_ECORRUPT);
    /* another version (with a valid CRC) */
    uint8_t v[SUP_GCP_FILE_BYTES];
    memcpy(v, b, sizeof v);
    v[8] = 2;
    uint32_t crc = crc32c(0, v, 60);
    for (int i = 0; i < 4; i++)
        v[60 + i] = (uint8_t)(crc >> (8 * i));
    CU_ASSERT_EQUAL(sup_gcp_file_decode(v, sizeof v, NODE, CLUSTER, &g), NINES_EVERSION);
}

static void test_file_write_read(void)
{
    char dir[] = "/tmp/sup_gcp_XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, SUP_GCP_FILE_NAME);
    struct sup_gcp_file g;
    CU_ASSERT_EQUAL(sup_gcp_file_read(path, NODE, CLUSTER, &g), NINES_ENOTFOUND);
    struct sup_gcp_file f = {.gci = 5, .wall_us = 11, .written_us = 12, .seq = 1};
    CU_ASSERT_EQUAL(sup_gcp_file_write(path, &f, NODE, CLUSTER), 0);
    f.gci = 6;
    f.seq = 2;
    CU_ASSERT_EQUAL(sup_gcp_file_write(path, &f, NODE, CLUSTER), 0); /* replaced */
    CU_ASSERT_EQUAL(sup_gcp_file_read(path, NODE, CLUSTER, &g), 0);
    CU_ASSERT_EQUAL(g.gci, 6);
    CU_ASSERT_EQUAL(g.seq, 2);
    CU_ASSERT_EQUAL(sup_gcp_file_read(path, NODE + 1, CLUSTER, &g), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), path));
    /* two slots: the newer write is read; a torn write of it leaves the
     * older value; both damaged: refused */
    f.gci = 7;
    f.seq = 3;
    CU_ASSERT_EQUAL(sup_gcp_file_write(path, &f, NODE, CLUSTER), 0);
    CU_ASSERT_EQUAL(sup_gcp_file_read(path, NODE, CLUSTER, &g), 0);
    CU_ASSERT_EQUAL(g.gci, 7);
    FILE *fp = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fseek(fp, SUP_GCP_SLOT_BYTES + 30, SEEK_SET); /* seq 3: slot 1, torn */
    fputc(0x5a, fp);
    fflush(fp);
    CU_ASSERT_EQUAL(sup_gcp_file_read(path, NODE, CLUSTER, &g), 0);
    CU_ASSERT_EQUAL(g.gci, 6); /* slot 0 */
    fseek(fp, 30, SEEK_SET);
    fputc(0x5a, fp);
    fclose(fp);
    CU_ASSERT_EQUAL(sup_gcp_file_read(path, NODE, CLUSTER, &g), NINES_ECORRUPT);
    /* cut short on disk */
    CU_ASSERT_EQUAL(sup_gcp_file_write(path, &f, NODE, CLUSTER), 0); /* made anew */
    CU_ASSERT_EQUAL(sup_gcp_file_read(path, NODE, CLUSTER, &g), 0);
    CU_ASSERT_EQUAL(truncate(path, 40), 0);
    CU_ASSERT_EQUAL(sup_gcp_file_read(path, NODE, CLUSTER, &g), NINES_ETRUNC);
    /* grown */
    CU_ASSERT_EQUAL(sup_gcp_file_write(path, &f, NODE, CLUSTER), 0);
    CU_ASSERT_EQUAL(truncate(path, SUP_GCP_SLOTS_FILE + 100), 0);
    CU_ASSERT_EQUAL(sup_gcp_file_read(path, NODE, CLUSTER, &g), NINES_ECORRUPT);
    /* the first format (one 64-byte record) is read */
    uint8_t one[SUP_GCP_FILE_BYTES];
    CU_ASSERT_EQUAL(sup_gcp_file_encode(&f, NODE, CLUSTER, one), 0);
    fp = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    CU_ASSERT_EQUAL(fwrite(one, 1, sizeof one, fp), sizeof one);
    fclose(fp);
    CU_ASSERT_EQUAL(sup_gcp_file_read(path, NODE, CLUSTER, &g), 0);
    CU_ASSERT_EQUAL(g.gci, 7);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CU_ASSERT_NOT_EQUAL(access(tmp, F_OK), 0); /* no temp file left */
    unlink(path);
    rmdir(dir);
}

void cu_register(void)
{
    nlog_set_level(getenv("KT_DEBUG") ? NLOG_DEBUG : NLOG_ERROR);
    static const struct cu_case cases[] = {
        {"round", test_round},
        {"first_epoch", test_first_epoch},
        {"prepare_missing", test_prepare_missing},
        {"commit_ref_and_missing", test_commit_ref_and_missing},
        {"save_ref", test_save_ref},
        {"install_aborts", test_install_aborts},
        {"sync_back_to_back", test_sync_back_to_back},
        {"restart_jump", test_restart_jump},
        {"takeover_jump", test_takeover_jump},
        {NULL, NULL},
    };
    cu_add_suite("sup_gcp", NULL, NULL, cases);
    static const struct cu_case fcases[] = {
        {"file_roundtrip", test_file_roundtrip},
        {"file_write_read", test_file_write_read},
        {NULL, NULL},
    };
    cu_add_suite("sup_gcp_file", NULL, NULL, fcases);
}
