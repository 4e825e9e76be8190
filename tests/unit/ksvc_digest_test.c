/* Kernel service digests (kernel/svc/README.md "Digests") on one node
 * without a network: the runtime, the update channel and the kernel
 * service, a dictionary built here with single-replica tables, rows loaded
 * straight into the replicas, and a task of this file asking for digests.
 * A digest of many rows must be computed over several executor turns, at
 * most KSVC_DIGEST_STEP_ROWS rows per turn over all requests, equal the
 * one-shot hash over the same rows, survive changes, drops and a requester
 * that goes away between turns, and refuse requests beyond
 * KSVC_DIGEST_JOBS_MAX. Turns are counted, never timed. */
#include "cu_test.h"

#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "nlog.h"

#include "../../kernel/kern_frag.h"
#include "../../kernel/svc/ksvc.h"
#include "../../updchan/upd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NROWS 100000   /* rows of table 1: frag 0 gets 70 %, frag 1 the rest */
#define MAXGOT 64
#define TAB_LEN (NINES__MSG_TYPE__KERN_DIGEST_CONF + 1)

static struct {
    struct rt *rt;
    struct upd *upd;
    struct ksvc *k;
    struct dict d;
    uint32_t t1;
    uint64_t txn;
    struct rt_msg_entry tab[TAB_LEN];
    struct rt_msg *got[MAXGOT]; /* KERN_DIGEST_CONF received, in order */
    int ngot;
} W;

static const struct dict *dict_now(void *ctx) { return ctx; }

static void app_on_msg(struct rt *rt, void *st, struct rt_msg *m)
{
    if (m->type != NINES__MSG_TYPE__KERN_DIGEST_CONF)
        return;
    CU_ASSERT_FATAL(W.ngot < MAXGOT);
    rt_msg_keep(m);
    W.got[W.ngot++] = m;
}

static void got_clear(void)
{
    for (int i = 0; i < W.ngot; i++)
        rt_msg_free(W.rt, W.got[i]);
    W.ngot = 0;
}

static const Nines__KernDigestConf *got(int i) { return (const void *)W.got[i]->body; }

static struct ksvc_stats stats(void)
{
    struct ksvc_stats s;
    ksvc_get_stats(W.k, &s);
    return s;
}

/* A single-replica table (k int64 key, v int64, s varstring(32)). */
static uint32_t table_new(const char *name, uint32_t nfrags)
{
    static const struct dict_column cols[3] = {
        {.name = "k", .type = 2, .size = 0, .nullable = false},
        {.name = "v", .type = 2, .size = 0, .nullable = false},
        {.name = "s", .type = 5, .size = 32, .nullable = true}};
    static const uint16_t pk[1] = {0};
    struct dict_table_def def = {.ncols = 3, .cols = cols, .npk = 1, .pk = pk,
                                 .method = DICT_FRAG_HASH, .nfrags = nfrags, .replicas = 1,
                                 .scheme = DICT_PLACE_MISD};
    snprintf(def.name, sizeof def.name, "%s", name);
    uint32_t id = 0;
    if (dict_create_table(&W.d, &def, &id))
        return 0;
    ksvc_dict_changed(W.k, &W.d, true); /* created by a live commit: empty, not lost */
    return id;
}

static void table_drop(uint32_t id)
{
    CU_ASSERT_EQUAL_FATAL(dict_drop_table_id(&W.d, id), 0);
    ksvc_dict_changed(W.k, &W.d, true);
}

static struct kern_frag *frag_of(uint32_t table, uint32_t frag)
{
    struct kern_frag *f = ksvc_replica(W.k, table, frag);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    return f;
}

static void key_rec(struct kern_frag *f, int64_t k, int64_t v, uint8_t *key, size_t *klen,
                    struct kern_rec **rec)
{
    char s[24];
    int n = snprintf(s, sizeof s, "row-%lld", (long long)k);
    struct kern_val row[3] = {kern_v_i64(k), kern_v_i64(v),
                              kern_v_bytes(KERN_T_VSTR, s, (uint32_t)n)};
    CU_ASSERT_EQUAL_FATAL(kern_frag_row(f, row, key, KERN_KEY_MAX, klen, rec), 0);
}

/* Insert (or, with upd, update) keys [lo, hi) step `by` in one committed
 * transaction; the log is trimmed (nobody needs it here). */
static void put_rows(uint32_t table, uint32_t frag, int64_t lo, int64_t hi, int64_t by, bool upd)
{
    struct kern_frag *f = frag_of(table, frag);
    uint64_t txn = ++W.txn;
    for (int64_t k = lo; k < hi; k += by) {
        uint8_t key[KERN_KEY_MAX];
        size_t klen;
        struct kern_rec *rec;
        key_rec(f, k, k * 7 + (upd ? 1 : 0), key, &klen, &rec);
        int rc = upd ? kern_frag_update(f, txn, key, klen, rec, NULL)
                     : kern_frag_insert(f, txn, key, klen, rec, NULL);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
    }
    CU_ASSERT_EQUAL_FATAL(kern_frag_commit(f, txn, NULL), 0);
    (void)kern_frag_log_trim(f, kern_log_next_lsn(kern_frag_log(f)));
}

static void del_rows(uint32_t table, uint32_t frag, int64_t lo, int64_t hi, int64_t by)
{
    struct kern_frag *f = frag_of(table, frag);
    uint64_t txn = ++W.txn;
    for (int64_t k = lo; k < hi; k += by) {
        uint8_t key[KERN_KEY_MAX];
        size_t klen;
        struct kern_rec *rec;
        key_rec(f, k, 0, key, &klen, &rec);
        kern_rec_free(rec);
        CU_ASSERT_EQUAL_FATAL(kern_frag_delete(f, txn, key, klen, NULL), 0);
    }
    CU_ASSERT_EQUAL_FATAL(kern_frag_commit(f, txn, NULL), 0);
    (void)kern_frag_log_trim(f, kern_log_next_lsn(kern_frag_log(f)));
}

/* The documented digest in one go: FNV-1a 64 over (u32 key length, key,
 * record bytes with the header) of every row in key order. */
static uint64_t oneshot(uint32_t table, uint32_t frag, uint64_t *rows)
{
    struct kern_bt_cursor *c = malloc(sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    kern_bt_cursor_init(c, kern_frag_tree(frag_of(table, frag)));
    uint64_t h = 0xcbf29ce484222325ull;
    *rows = 0;
    for (int rc = kern_bt_first(c); rc == 0; rc = kern_bt_next(c)) {
        uint32_t kl = (uint32_t)c->klen;
        uint8_t lk[4] = {(uint8_t)kl, (uint8_t)(kl >> 8), (uint8_t)(kl >> 16), (uint8_t)(kl >> 24)};
        const uint8_t *parts[3] = {lk, c->key, (const uint8_t *)c->rec};
        size_t lens[3] = {4, c->klen, kern_rec_bytes(c->rec)};
        for (int p = 0; p < 3; p++)
            for (size_t i = 0; i < lens[p]; i++) {
                h ^= parts[p][i];
                h *= 0x100000001b3ull;
            }
        (*rows)++;
    }
    free(c);
    return h;
}

/* Every replica in the answer equals its one-shot digest; returns the count. */
static size_t check_answer(const Nines__KernDigestConf *c)
{
    CU_ASSERT_EQUAL(c->error, 0);
    CU_ASSERT_EQUAL(c->node, 1);
    for (size_t i = 0; i < c->n_replicas; i++) {
        const Nines__ReplicaDigest *d = c->replicas[i];
        uint64_t rows;
        uint64_t h = oneshot(d->table, d->frag, &rows);
        CU_ASSERT_EQUAL(d->digest, h);
        CU_ASSERT_EQUAL(d->rows, rows);
        CU_ASSERT_TRUE(d->primary); /* SINGLE: this node is its primary, serving */
        CU_ASSERT_EQUAL(d->next_lsn,
                        kern_log_next_lsn(kern_frag_log(frag_of(d->table, d->frag))));
        if (i > 0) /* in (table, frag) order */
            CU_ASSERT_TRUE(c->replicas[i - 1]->table < d->table ||
                           (c->replicas[i - 1]->table == d->table &&
                            c->replicas[i - 1]->frag < d->frag));
    }
    return c->n_replicas;
}

static void ask(uint32_t table)
{
    struct rt_msg *m = rt_msg_new(W.rt, NINES__MSG_TYPE__KERN_DIGEST_REQ);
    RT_BODY(m, Nines__KernDigestReq, nines__kern_digest_req__init)->table = table;
    CU_ASSERT_EQUAL(rt_send(W.rt, 0, RT_SVC_KERN, m), 0);
}

/* A request as if from client connection `conn` (its answer has nowhere
 * to go: this node has no network). */
static void ask_as_client(net_addr conn, uint32_t table)
{
    struct rt_msg *m = rt_msg_new(W.rt, NINES__MSG_TYPE__KERN_DIGEST_REQ);
    RT_BODY(m, Nines__KernDigestReq, nines__kern_digest_req__init)->table = table;
    m->from = conn;
    rt_post_local(W.rt, RT_SVC_KERN, m);
}

/* Loop turns until n answers arrived (at most max); the turns taken. */
static int turns_until(int n, int max)
{
    int t = 0;
    while (W.ngot < n && t < max) {
        rt_step(W.rt, 0);
        t++;
    }
    CU_ASSERT_EQUAL_FATAL(W.ngot, n);
    return t;
}

static uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

static int suite_init(void)
{
    nlog_set_level(getenv("KT_DEBUG") ? NLOG_DEBUG : NLOG_WARN);
    memset(&W, 0, sizeof W);
    W.tab[NINES__MSG_TYPE__KERN_DIGEST_REQ] =
        (struct rt_msg_entry){"KERN_DIGEST_REQ", &nines__kern_digest_req__descriptor,
                              RT_SVC_KERN, ksvc_on_digest_req, RT_FROM_ANY, RT_EPOCH_ANY};
    W.tab[NINES__MSG_TYPE__KERN_DIGEST_CONF] =
        (struct rt_msg_entry){"KERN_DIGEST_CONF", &nines__kern_digest_conf__descriptor,
                              RT_SVC_APP, app_on_msg, RT_FROM_LOCAL, RT_EPOCH_ANY};
    struct dict_node nodes[1] = {{1, 0}};
    struct rt_config rc = {.self = 1, .msgtab = W.tab, .msgtab_len = TAB_LEN};
    if (rt_create(&W.rt, &rc) || dict_init(&W.d, nodes, 1) || upd_init(&W.upd, W.rt) ||
        ksvc_init(&W.k, W.rt, &(struct ksvc_config){.upd = W.upd, .dict = dict_now,
                                                     .dict_ctx = &W.d}) ||
        rt_task_add(W.rt, RT_SVC_APP, "digest-asker", app_on_msg, NULL))
        return 1;
    struct rt_nodeset ns = {.epoch = 1, .members = 1, .current = 1, .coordinator = 1,
                            .member = true, .serving = true};
    rt_install_nodeset(W.rt, &ns);
    for (int i = 0; i < 4; i++)
        rt_step(W.rt, 0); /* START everywhere */
    W.t1 = table_new("t1", 2);
    if (!W.t1 || ksvc_nreplicas(W.k) != 2)
        return 1;
    return 0;
}

static int suite_fini(void)
{
    got_clear();
    rt_destroy(W.rt);
    ksvc_fini(W.k);
    upd_fini(W.upd);
    dict_free(&W.d);
    return 0;
}

/* 100k rows: answered after several turns, each of at most
 * KSVC_DIGEST_STEP_ROWS rows, equal to the one-shot digest. */
static void test_many_rows(void)
{
    put_rows(W.t1, 0, 0, NROWS * 7 / 10, 1, false);
    put_rows(W.t1, 1, NROWS * 7 / 10, NROWS, 1, false);
    uint64_t steps = stats().digest_steps;
    ask(W.t1);
    int turns = turns_until(1, 1000);
    uint64_t took = stats().digest_steps - steps;
    /* the rows are small: the row bound decides, and the turns' shares add
     * up across the two replicas */
    CU_ASSERT_EQUAL(took, div_up(NROWS, KSVC_DIGEST_STEP_ROWS));
    CU_ASSERT_TRUE(took >= 2);
    CU_ASSERT_TRUE(turns > (int)took); /* the handler's turn hashed nothing */
    CU_ASSERT_EQUAL(check_answer(got(0)), 2);
    CU_ASSERT_EQUAL(got(0)->replicas[0]->rows, NROWS * 7 / 10);
    CU_ASSERT_EQUAL(stats().digest_jobs, 0);
    got_clear();
    /* a table with no replica here, and a table that does not exist:
     * answered in the request's own turn, with nothing */
    ask(W.t1 + 1000);
    rt_step(W.rt, 0);
    CU_ASSERT_EQUAL_FATAL(W.ngot, 1);
    CU_ASSERT_EQUAL(got(0)->n_replicas, 0);
    CU_ASSERT_EQUAL(got(0)->error, 0);
    got_clear();
}

/* Inserts (ahead of and behind the digest's position), updates and
 * deletes between its turns: it finishes; asked again without changes it
 * equals the one-shot digest of the final state. */
static void test_changes_between_turns(void)
{
    uint64_t steps = stats().digest_steps;
    ask(W.t1);
    int64_t next = NROWS;
    int turns = 0;
    for (; W.ngot == 0 && turns < 1000; turns++) {
        rt_step(W.rt, 0);
        uint32_t f = (uint32_t)turns % 2;
        put_rows(W.t1, f, next, next + 500, 1, false);  /* above every key so far */
        next += 500;
        put_rows(W.t1, f, -1000 * (turns + 1), -1000 * turns, 3, false); /* below */
        int64_t base = f ? NROWS * 7 / 10 : 0;
        del_rows(W.t1, f, base + turns * 997, base + turns * 997 + 200, 2);
        put_rows(W.t1, f, base + turns * 997 + 1, base + turns * 997 + 200, 2, true);
    }
    CU_ASSERT_EQUAL_FATAL(W.ngot, 1);
    CU_ASSERT_EQUAL(got(0)->error, 0);
    CU_ASSERT_EQUAL(got(0)->n_replicas, 2);
    CU_ASSERT_TRUE(stats().digest_steps - steps >= 2); /* changes came between its turns */
    got_clear();
    ask(W.t1);
    turns_until(1, 1000);
    CU_ASSERT_EQUAL(check_answer(got(0)), 2);
    got_clear();
}

/* KSVC_DIGEST_JOBS_MAX requests at once are computed together, sharing
 * the per-turn bound; more are refused with NINES_EAGAIN. */
static void test_concurrent_and_refused(void)
{
    uint64_t rows = 0, r;
    oneshot(W.t1, 0, &r);
    rows += r;
    oneshot(W.t1, 1, &r);
    rows += r;
    struct ksvc_stats s0 = stats();
    for (int i = 0; i < KSVC_DIGEST_JOBS_MAX + 2; i++)
        ask(i % 2 ? W.t1 : 0);
    rt_step(W.rt, 0); /* the requests: two refused at once */
    CU_ASSERT_EQUAL_FATAL(W.ngot, 2);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(got(i)->error, NINES_EAGAIN);
        CU_ASSERT_EQUAL(got(i)->n_replicas, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(got(i)->detail, "digests already"));
    }
    CU_ASSERT_EQUAL(stats().digest_jobs, KSVC_DIGEST_JOBS_MAX);
    CU_ASSERT_EQUAL(stats().digests_refused, s0.digests_refused + 2);
    turns_until(KSVC_DIGEST_JOBS_MAX + 2, 10000);
    for (int i = 2; i < W.ngot; i++)
        CU_ASSERT_EQUAL(check_answer(got(i)), 2);
    /* one bound per turn for all of them together */
    uint64_t took = stats().digest_steps - s0.digest_steps;
    CU_ASSERT_TRUE(took >= div_up(KSVC_DIGEST_JOBS_MAX * rows, KSVC_DIGEST_STEP_ROWS));
    CU_ASSERT_EQUAL(stats().digest_jobs, 0);
    got_clear();
}

/* A client that closes its connection mid-digest: its request is given up
 * (and freed); another requester's goes on. */
static void test_client_closed(void)
{
    struct ksvc_stats s0 = stats();
    net_addr conn = NET_CONN_BASE + 77;
    ask_as_client(conn, 0);
    ask(W.t1);
    rt_step(W.rt, 0);
    rt_step(W.rt, 0); /* both digests under way */
    CU_ASSERT_EQUAL(stats().digest_jobs, 2);
    struct rt_msg *m = rt_msg_new(W.rt, RT_MSG_CLIENT_CLOSED);
    m->from = conn;
    rt_post_local(W.rt, RT_SVC_KERN, m);
    rt_step(W.rt, 0);
    CU_ASSERT_EQUAL(stats().digest_jobs, 1);
    CU_ASSERT_EQUAL(stats().digests_dropped, s0.digests_dropped + 1);
    turns_until(1, 1000);
    CU_ASSERT_EQUAL(check_answer(got(0)), 2);
    CU_ASSERT_EQUAL(stats().digests_done, s0.digests_done + 1); /* not the closed one */
    got_clear();
}

/* Replicas dropped while a digest runs are left out (no use of the freed
 * tree), replicas created meanwhile are not in it, the table filter holds. */
static void test_drop_and_create(void)
{
    uint32_t t2 = table_new("t2", 3);
    CU_ASSERT_FATAL(t2 != 0);
    for (uint32_t f = 0; f < 3; f++)
        put_rows(t2, f, f * 40000, f * 40000 + 30000, 1, false);
    /* t2 only */
    ask(t2);
    turns_until(1, 1000);
    CU_ASSERT_EQUAL(check_answer(got(0)), 3);
    CU_ASSERT_EQUAL(got(0)->replicas[0]->table, t2);
    got_clear();
    /* all tables; t1 (first in order) dropped while its digest runs, t3
     * created meanwhile: t2's three replicas */
    ask(0);
    rt_step(W.rt, 0);
    rt_step(W.rt, 0); /* the request, then part of t1's first replica */
    CU_ASSERT_EQUAL(W.ngot, 0);
    table_drop(W.t1);
    uint32_t t3 = table_new("t3", 1);
    CU_ASSERT_FATAL(t3 != 0);
    put_rows(t3, 0, 0, 10, 1, false);
    turns_until(1, 1000);
    CU_ASSERT_EQUAL(check_answer(got(0)), 3);
    for (size_t i = 0; i < got(0)->n_replicas; i++)
        CU_ASSERT_EQUAL(got(0)->replicas[i]->table, t2);
    got_clear();
    /* t2 and t3; t2 dropped once its digest is under way: t3 only */
    ask(0);
    rt_step(W.rt, 0);
    rt_step(W.rt, 0);
    CU_ASSERT_EQUAL(W.ngot, 0);
    table_drop(t2);
    turns_until(1, 1000);
    CU_ASSERT_EQUAL(check_answer(got(0)), 1);
    CU_ASSERT_EQUAL(got(0)->replicas[0]->table, t3);
    CU_ASSERT_EQUAL(stats().digest_jobs, 0);
    got_clear();
}

/* A dropped table's replicas are freed a slice per turn (SK_TIMER_FREE,
 * KSVC_FREE_STEP_ROWS records each), not in the handler that drops them:
 * the drop's own turn frees nothing, the freeing takes several turns and
 * ends with nothing left (the ASan run checks nothing leaks). */
static void test_drop_frees_in_slices(void)
{
    uint32_t t = table_new("big", 1);
    CU_ASSERT_FATAL(t != 0);
    int64_t n = 3 * KSVC_FREE_STEP_ROWS;
    put_rows(t, 0, 0, n, 1, false);
    struct ksvc_stats s0 = stats();
    table_drop(t);
    CU_ASSERT_EQUAL(stats().freeing, s0.freeing + 1);
    CU_ASSERT_EQUAL(stats().free_steps, s0.free_steps); /* nothing freed in the drop */
    int turns = 0;
    while (stats().freeing > s0.freeing && turns < 1000) {
        rt_step(W.rt, 0);
        turns++;
    }
    CU_ASSERT_EQUAL(stats().freeing, s0.freeing);
    /* records plus B-tree nodes: more than n / KSVC_FREE_STEP_ROWS slices */
    CU_ASSERT(stats().free_steps - s0.free_steps >= (uint64_t)(n / KSVC_FREE_STEP_ROWS));
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"drop_frees_in_slices", test_drop_frees_in_slices},
        {"many_rows", test_many_rows},
        {"changes_between_turns", test_changes_between_turns},
        {"concurrent_and_refused", test_concurrent_and_refused},
        {"client_closed", test_client_closed},
        {"drop_and_create", test_drop_and_create},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_digest", suite_init, suite_fini, cases);
}
