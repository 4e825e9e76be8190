/* Cluster test of 2-safe transactions on four real ninesd processes
 * (2 sites): TPC-B load and concurrent clients keep the balance invariant;
 * every hot standby equals its primary afterwards; aborts undo on both
 * replicas; a deadlock between two distributed transactions aborts one of
 * them with a clear error; bad client input gets clear errors and the
 * connection keeps serving. */
#include "clu.h"
#include "cu_test.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nines/nines.h"

#include <pthread.h>
#include <stdbool.h>

static struct clu C;
#define ACCOUNT_BAL 2 /* account: aid, bid, balance, filler */

static int setup(void)
{
    if (clu_setup(&C, 4, "lock_timeout_ms 500\n"))
        return 1;
    return clu_run(&C, "ninesctl", 0, "status --wait-healthy 20") == 0 ? 0 : 1;
}

static int teardown(void) { return clu_teardown(&C); }

static nines_conn *connect_node(int id)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", C.base_port + id);
    const char *addrs[] = {addr};
    nines_conn *c = NULL;
    int rc = nines_connect(&c, addrs, 1, "clutest", 5000);
    CU_ASSERT_EQUAL(rc, 0);
    return rc ? NULL : c;
}

/* Every fragment: standby digest == primary digest (shipping of the last
 * transactions' records may still be in flight: retry for a while). */
static void assert_replicas_equal(void)
{
    uint64_t deadline = nclock_ms() + 5000;
    int rc;
    do {
        rc = clu_run(&C, "ninesctl", 0, "replicas --json");
    } while (rc != 0 && nclock_ms() < deadline);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"ok\":true"));
    CU_ASSERT_PTR_NULL(strstr(C.out, "DIFFERENT"));
    CU_ASSERT_PTR_NULL(strstr(C.out, "ONE-REPLICA"));
    if (rc)
        printf("\n%s\n", C.out);
}

static void test_load(void)
{
    int rc = clu_run(&C, "tpcb_load", 1, "--scale 1");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "loaded 100011 rows"));
    if (rc)
        printf("\n%s\n", C.out);
}

/* Many clients, many transactions in flight: the TPC-B invariant holds
 * (tpcb checks sum(account) = sum(teller) = sum(branch) = sum(history.delta)
 * with scans and exits 1 on FAIL). The 4 clients of one process are spread
 * one per node (client/README.md "Spreading"), and every node reports its
 * CPU (STATUS cpu_us). */
static void test_concurrent_invariant(void)
{
    int rc = clu_run(&C, "tpcb", 1, "--clients 4 --window 8 --duration 2 --scale 1");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "invariant: PASS"));
    CU_ASSERT_PTR_NULL(strstr(C.out, "committed 0:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "clients per node at start: 1:1 2:1 3:1 4:1\n"));
    const char *cpu = strstr(C.out, "node CPU per transaction (STATUS cpu_us), us:");
    CU_ASSERT_PTR_NOT_NULL(cpu);
    CU_ASSERT_PTR_NULL(strstr(C.out, "node 4 -")); /* every node answered */
    CU_ASSERT_PTR_NOT_NULL(cpu ? strstr(cpu, "max/avg") : NULL);
    if (rc || !cpu)
        printf("\n%s\n", C.out);
    assert_replicas_equal();
}

/* --first-node 1 keeps the list order: every client starts at node 1. */
static void test_first_node(void)
{
    int rc = clu_run(&C, "tpcb", 1, "--clients 3 --window 4 --duration 1 --scale 1 "
                                    "--first-node 1 --no-verify");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "clients per node at start: 1:3 2:0 3:0 4:0\n"));
    if (rc)
        printf("\n%s\n", C.out);
}

/* The scale-up procedure (two updates in two tables, circular placement)
 * keeps sum(t1.v) = sum(t2.v). */
static void test_two_update(void)
{
    int rc = clu_run(&C, "tpcb_load", 1, "--scale 1 --two-upd");
    CU_ASSERT_EQUAL(rc, 0);
    rc = clu_run(&C, "tpcb", 1, "--clients 2 --window 8 --duration 1 --scale 1 --two-upd");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "invariant: PASS"));
    if (rc)
        printf("\n%s\n", C.out);
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "placement t1"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "scheme circular"));
}

static int64_t balance_of(nines_conn *c, int64_t aid)
{
    nines_txn *t;
    nines_row *row = NULL;
    struct nines_value k = nines_v_int64(aid);
    if (nines_txn_begin(c, &t))
        return INT64_MIN;
    int rc = nines_txn_get(t, "account", &k, 1, &row);
    int64_t bal = rc == 0 ? nines_row_value(row, ACCOUNT_BAL).u.i64 : INT64_MIN;
    nines_txn_commit(t);
    return bal;
}

/* Rollback and a failing statement undo on the primary and (through the
 * shipped CLRs) on the hot standby. */
static void test_abort_both_replicas(void)
{
    nines_conn *c = connect_node(2);
    if (!c)
        return;
    int64_t before = balance_of(c, 4242);
    CU_ASSERT_NOT_EQUAL_FATAL(before, INT64_MIN);
    nines_txn *t;
    nines_row *row;
    struct nines_value k = nines_v_int64(4242);
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    CU_ASSERT_EQUAL(nines_txn_add(t, "account", &k, 1, ACCOUNT_BAL, 777, &row), 0);
    CU_ASSERT_EQUAL(nines_row_value(row, ACCOUNT_BAL).u.i64, before + 777);
    CU_ASSERT_EQUAL(nines_txn_rollback(t), 0);
    CU_ASSERT_EQUAL(balance_of(c, 4242), before);

    /* a duplicate key aborts the whole transaction, the add included */
    static char filler[84];
    memset(filler, 'f', sizeof filler);
    struct nines_value dup[4] = {nines_v_int64(5), nines_v_int64(0), nines_v_int64(0),
                                 nines_v_string(filler, sizeof filler)};
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    CU_ASSERT_EQUAL(nines_txn_add(t, "account", &k, 1, ACCOUNT_BAL, 5, NULL), 0);
    nines_txn_insert(t, "account", dup, 4);
    int rc = nines_txn_commit(t);
    CU_ASSERT_EQUAL(rc, NINES_EEXIST);
    CU_ASSERT_EQUAL(balance_of(c, 4242), before);

    /* a request the controller refuses (a fixed string of the wrong
     * length) ends the open transaction: its earlier add is undone and its
     * lock released */
    struct nines_value badrow[4] = {nines_v_int64(-7), nines_v_int64(0), nines_v_int64(0),
                                    nines_v_string("x", 1)};
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    CU_ASSERT_EQUAL(nines_txn_add(t, "account", &k, 1, ACCOUNT_BAL, 9, &row), 0);
    nines_txn_insert(t, "account", badrow, 4);
    CU_ASSERT_EQUAL(nines_txn_commit(t), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "filler"));
    CU_ASSERT_EQUAL(balance_of(c, 4242), before);
    nines_close(c);
    assert_replicas_equal();
}

/* Two transactions lock two accounts in opposite order. */
struct dl_arg {
    int node;
    int64_t first, second;
    pthread_barrier_t *bar;
    int rc;
    char detail[512];
};

static void *dl_thread(void *p)
{
    struct dl_arg *a = p;
    nines_conn *c = connect_node(a->node);
    if (!c) {
        a->rc = NINES_ECLOSED;
        pthread_barrier_wait(a->bar);
        return NULL;
    }
    nines_txn *t;
    struct nines_value k1 = nines_v_int64(a->first), k2 = nines_v_int64(a->second);
    a->rc = nines_txn_begin(c, &t);
    if (a->rc == 0)
        a->rc = nines_txn_add(t, "account", &k1, 1, ACCOUNT_BAL, 1, NULL);
    pthread_barrier_wait(a->bar); /* both hold their first lock */
    if (a->rc == 0)
        a->rc = nines_txn_add(t, "account", &k2, 1, ACCOUNT_BAL, 1, NULL);
    if (a->rc == 0)
        a->rc = nines_txn_commit(t);
    else
        nines_txn_rollback(t);
    snprintf(a->detail, sizeof a->detail, "%s", nines_conn_errdetail(c));
    nines_close(c);
    return NULL;
}

static void run_deadlock(int64_t x, int64_t y)
{
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    struct dl_arg a = {.node = 1, .first = x, .second = y, .bar = &bar};
    struct dl_arg b = {.node = 4, .first = y, .second = x, .bar = &bar};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, dl_thread, &a);
    pthread_create(&tb, NULL, dl_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&bar);
    /* exactly one commits; the other is told why */
    CU_ASSERT_TRUE((a.rc == 0) != (b.rc == 0));
    struct dl_arg *loser = a.rc ? &a : &b;
    CU_ASSERT_TRUE(loser->rc == NINES_EDEADLOCK || loser->rc == NINES_ELOCKTIMEOUT ||
                   loser->rc == NINES_EABORTED);
    CU_ASSERT_TRUE(strlen(loser->detail) > 10);
    if (!((a.rc == 0) != (b.rc == 0)))
        printf("\n  deadlock %lld/%lld: rc %d (%s) / %d (%s)\n", (long long)x, (long long)y, a.rc,
               a.detail, b.rc, b.detail);
}

static void test_deadlock(void)
{
    /* several pairs: some have both accounts on one primary (local wait-for
     * cycle), others on two nodes (a distributed deadlock) */
    for (int64_t i = 0; i < 4; i++)
        run_deadlock(1000 + i, 2000 + 7 * i);
    assert_replicas_equal();
}

static void test_bad_input(void)
{
    nines_conn *c = connect_node(3);
    if (!c)
        return;
    nines_txn *t;
    nines_row *row;
    struct nines_value k = nines_v_int64(1);
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    CU_ASSERT_EQUAL(nines_txn_get(t, "no_such_table", &k, 1, &row), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "no_such_table"));
    nines_txn_rollback(t);

    struct nines_value bad = nines_v_string("abc", 3);
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    CU_ASSERT_EQUAL(nines_txn_get(t, "account", &bad, 1, &row), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "abc"));
    nines_txn_rollback(t);

    static char big[5 << 20];
    memset(big, 'a', sizeof big);
    struct nines_value huge[4] = {nines_v_int64(-1), nines_v_int64(0), nines_v_int64(0),
                                  nines_v_string(big, sizeof big)};
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    nines_txn_insert(t, "account", huge, 4);
    CU_ASSERT_EQUAL(nines_txn_commit(t), NINES_ETOOBIG);

    /* the connection still serves */
    int64_t bal;
    CU_ASSERT_EQUAL(nines_tpcb(c, 10, 3, 0, 5, &bal), 0);
    nines_close(c);
}

/* A node that restarts has lost its replicas (main memory): it rejoins the
 * node set as a member that is not current (supervisor/README.md "Node
 * set"); meanwhile its fragments are served by their other replica (taken
 * over when it died). It rebuilds every replica placed on it from the
 * primaries (kernel/svc/README.md "Rebuild") and is made current again,
 * standby-only (no takeback yet). Every read, before and after, gives the
 * committed balance, never "not found", a wrong value or a refusal, and
 * the rebuilt replicas equal their primaries. */
static void test_restarted_node_rebuilt(void)
{
    enum { N = 64 };
    int64_t before[N];
    nines_conn *c = connect_node(1);
    if (!c)
        return;
    for (int64_t a = 0; a < N; a++)
        before[a] = balance_of(c, a);
    clu_stop(&C, 2, SIGKILL);
    clu_start(&C, 2);
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "status --wait-current 30"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "members 1 2 3 4, current 1 2 3 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "standby-only 2"));
    for (int64_t a = 0; a < N; a++) {
        nines_txn *t;
        nines_row *row = NULL;
        struct nines_value k = nines_v_int64(a);
        CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
        int rc = nines_txn_get(t, "account", &k, 1, &row);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc == 0) {
            CU_ASSERT_EQUAL(nines_row_value(row, ACCOUNT_BAL).u.i64, before[a]);
        } else {
            fprintf(stderr, "account %lld: %s\n", (long long)a, nines_conn_errdetail(c));
        }
        nines_txn_rollback(t);
    }
    /* writes go on, and the rebuilt standbys take them */
    int64_t bal;
    for (int i = 0; i < 50; i++)
        CU_ASSERT_EQUAL(nines_tpcb(c, i % 64, i % 10, 0, 1, &bal), 0);
    nines_close(c);
    /* the last commits' second phase may still be on its way to the
     * standbys: ask again until the replicas compare (at most 5 s) */
    bool equal = false;
    for (int i = 0; i < 50 && !equal; i++) {
        if (clu_run(&C, "ninesctl", 0, "replicas") == 0 &&
            strstr(C.out, " 0 with one replica, 0 different"))
            equal = true;
        else
            usleep(100 * 1000);
    }
    if (!equal)
        fprintf(stderr, "ninesctl replicas:\n%s\n", C.out);
    CU_ASSERT_TRUE(equal);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"TPC-B load", test_load},
        {"concurrent clients keep the invariant; replicas equal", test_concurrent_invariant},
        {"--first-node 1 puts every client on node 1", test_first_node},
        {"two-update procedure keeps sum(t1) = sum(t2)", test_two_update},
        {"aborts undo on primary and standby", test_abort_both_replicas},
        {"distributed deadlock: one aborted with a clear error", test_deadlock},
        {"bad client input: clear errors, connection keeps serving", test_bad_input},
        {"restarted node: served by the other replica, rebuilt, current again",
         test_restarted_node_rebuilt},
        {NULL, NULL},
    };
    cu_add_suite("tpcb_cluster", setup, teardown, cases);
}
