/* Cluster test: per-node limits with real processes (net/README.md
 * "Limits", txctl/README.md "Requests in flight"). Four nodes with
 * max_client_connections 4 and max_requests_per_connection 4:
 *  - a flood of clients at node 1: the fifth is refused with NINES_EFULL
 *    naming the limit while the four connected are served; once one leaves
 *    a new one gets in; `ninesctl status --json` shows the count and the
 *    refusals; a client given every address is served by another node;
 *  - one connection queues 40 pipelined TPC-B requests in one write: those
 *    beyond 4 in flight are answered NINES_EAGAIN naming the limit, the
 *    others commit, and another client on the same node is served
 *    meanwhile. */
#include "clu.h"
#include "cu_test.h"
#include "nines/errors.h"
#include "nines/nines.h"

#include <stdbool.h>

static struct clu C;

static int setup(void)
{
    if (clu_setup(&C, 4, "lock_timeout_ms 500\nmax_client_connections 4\n"
                         "max_requests_per_connection 4\n"))
        return 1;
    if (clu_run(&C, "ninesctl", 0, "status --wait-healthy 20") != 0)
        return 1;
    return clu_run(&C, "tpcb_load", 1, "--scale 1") == 0 ? 0 : 1;
}

static int teardown(void) { return clu_teardown(&C); }

static int connect_node(nines_conn **c, int id)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", C.base_port + id);
    const char *addrs[] = {addr};
    return nines_connect(c, addrs, 1, "clutest", 5000);
}

/* A JSON number after "key": in node id's object of ninesctl status --json. */
static long long status_num(int id, const char *key)
{
    if (clu_run(&C, "ninesctl", 0, "status --json") < 0)
        return -1;
    char idk[32], k[64];
    snprintf(idk, sizeof idk, "{\"id\":%d,", id);
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(C.out, "\"nodes\":");
    p = p ? strstr(p, idk) : NULL;
    p = p ? strstr(p, k) : NULL;
    return p ? atoll(p + strlen(k)) : -1;
}

static void test_connection_flood(void)
{
    nines_conn *c[4] = {0}, *extra = NULL;
    for (int i = 0; i < 4; i++) {
        int rc = connect_node(&c[i], 1);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc)
            printf("\n  client %d: %s\n", i, nines_errdetail());
    }
    int rc = connect_node(&extra, 1);
    CU_ASSERT_EQUAL(rc, NINES_EFULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "maximum of 4 client connections"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "max_client_connections"));
    /* the four are served */
    for (int i = 0; i < 4; i++) {
        int64_t bal = 0;
        if (c[i])
            CU_ASSERT_EQUAL(nines_tpcb(c[i], 10 + i, i, 0, 1, &bal), 0);
    }
    /* ninesctl (a plain client here) is refused by node 1 as well: it
     * still reports the other nodes; with one client gone it sees node 1 */
    nines_close(c[3]);
    c[3] = NULL;
    long long n = -1, refused = -1;
    for (int tries = 0; tries < 100 && n != 4; tries++) {
        n = status_num(1, "clients"); /* -1 while node 1 is still full */
        refused = status_num(1, "clients_refused");
        if (n != 4)
            usleep(100000);
    }
    /* three of ours plus ninesctl's own connection */
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT(refused >= 1);
    CU_ASSERT_EQUAL(status_num(1, "max_client_connections"), 4);
    /* a place is free: a new client gets in */
    rc = connect_node(&c[3], 1);
    CU_ASSERT_EQUAL(rc, 0);
    /* a client given every address goes on to a node with room */
    char a1[64], a2[64];
    snprintf(a1, sizeof a1, "127.0.0.1:%d", C.base_port + 1);
    snprintf(a2, sizeof a2, "127.0.0.1:%d", C.base_port + 2);
    const char *addrs[] = {a1, a2};
    nines_conn *any = NULL;
    rc = nines_connect_with(&any, addrs, 2, "clutest", 5000,
                            &(struct nines_connect_opts){.flags = NINES_CONNECT_FIRST_NODE});
    CU_ASSERT_EQUAL(rc, 0);
    if (any) {
        int64_t bal;
        CU_ASSERT_EQUAL(nines_tpcb(any, 20, 1, 0, 1, &bal), 0);
        nines_close(any);
    }
    CU_ASSERT(clu_log_has(&C, 1, "max_client_connections"));
    for (int i = 0; i < 4; i++)
        if (c[i])
            nines_close(c[i]);
}

struct tally {
    int ok, again, other;
    bool named;
};

static void done(void *arg, int rc, int64_t value, const char *detail)
{
    struct tally *t = arg;
    (void)value;
    if (rc == 0)
        t->ok++;
    else if (rc == NINES_EAGAIN) {
        t->again++;
        if (detail && strstr(detail, "max_requests_per_connection 4"))
            t->named = true;
    } else {
        t->other++;
        printf("\n  request: %d %s\n", rc, detail ? detail : "");
    }
}

static void test_inflight(void)
{
    nines_conn *p = NULL, *other = NULL;
    CU_ASSERT_EQUAL_FATAL(connect_node(&p, 2), 0);
    CU_ASSERT_EQUAL_FATAL(connect_node(&other, 2), 0);
    struct tally t = {0};
    enum { N = 40 };
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(nines_tpcb_async(p, 100 + i, i % 10, 0, 1, done, &t), 0);
    /* one write carries all 40; the node takes 4, refuses the rest at once */
    for (int guard = 0; guard < 200 && t.ok + t.again + t.other < N; guard++)
        CU_ASSERT(nines_poll(p, 100) >= 0);
    CU_ASSERT_EQUAL(t.ok + t.again + t.other, N);
    CU_ASSERT_EQUAL(t.other, 0);
    CU_ASSERT(t.again >= 1);
    CU_ASSERT(t.ok >= 4);
    CU_ASSERT(t.named);
    /* the other connection on that node is served */
    int64_t bal = 0;
    CU_ASSERT_EQUAL(nines_tpcb(other, 7, 1, 0, 1, &bal), 0);
    /* and the pipelined one, within its limit, too */
    struct tally u = {0};
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(nines_tpcb_async(p, 200 + i, i, 0, 1, done, &u), 0);
    for (int guard = 0; guard < 200 && u.ok + u.again + u.other < 4; guard++)
        CU_ASSERT(nines_poll(p, 100) >= 0);
    CU_ASSERT_EQUAL(u.ok, 4);
    CU_ASSERT(status_num(2, "refused_inflight") >= t.again);
    nines_close(p);
    nines_close(other);
}

/* ---- memory budget: a cluster of four nodes with memory_budget_mb 1 ---- */

static int setup_budget(void)
{
    /* four nodes, as the other suite: a two-node set needs both for a
     * quorum, and in the full test run its node 1 lost its lease right
     * after the start (not what this tests; not diagnosed) */
    if (clu_setup(&C, 4, "memory_budget_mb 1\n"))
        return 1;
    if (clu_run(&C, "ninesctl", 0, "status --wait-healthy 20") != 0)
        return 1;
    int rc = clu_run(&C, "ninesctl", 1, "create-table kv --columns k:int64,v:int64 --key k");
    if (rc)
        printf("\n  create-table: %s\n", C.out);
    return rc ? 1 : 0;
}

/* Inserts until the budget refuses one: EFULL naming the budget and the
 * use; then reads, deletes and ADDs go on; status shows the refusal. */
static void test_budget(void)
{
    nines_conn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(connect_node(&c, 1), 0);
    int rc = 0;
    int64_t k = 0;
    while (rc == 0 && k < 200000) {
        nines_txn *t;
        CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
        for (int j = 0; j < 500; j++, k++) {
            struct nines_value row[2] = {nines_v_int64(k), nines_v_int64(k)};
            nines_txn_insert(t, "kv", row, 2);
        }
        rc = nines_txn_commit(t);
    }
    CU_ASSERT_EQUAL(rc, NINES_EFULL);
    const char *d = nines_conn_errdetail(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "memory budget of 1 MiB (memory_budget_mb)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "table data uses"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "reads and deletes go on"));
    if (rc != NINES_EFULL)
        printf("\n  after %lld rows: %d %s\n", (long long)k, rc, d);
    /* reads, deletes and ADDs go on */
    nines_txn *t;
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    struct nines_value key = nines_v_int64(3);
    nines_row *row = NULL;
    CU_ASSERT_EQUAL(nines_txn_get(t, "kv", &key, 1, &row), 0);
    CU_ASSERT_EQUAL(nines_txn_add(t, "kv", &key, 1, 1, 5, NULL), 0);
    struct nines_value key2 = nines_v_int64(4);
    CU_ASSERT_EQUAL(nines_txn_delete(t, "kv", &key2, 1), 0);
    CU_ASSERT_EQUAL(nines_txn_commit(t), 0);
    /* more inserts are still refused (a batch of new keys reaches every
     * fragment, so the node over its budget too) */
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    for (int j = 0; j < 500; j++) {
        struct nines_value r2[2] = {nines_v_int64(-1 - j), nines_v_int64(1)};
        nines_txn_insert(t, "kv", r2, 2);
    }
    CU_ASSERT_EQUAL(nines_txn_commit(t), NINES_EFULL);
    nines_close(c);
    long long refused = status_num(1, "refused_budget") + status_num(2, "refused_budget") +
                        status_num(3, "refused_budget") + status_num(4, "refused_budget");
    CU_ASSERT(refused >= 2);
    CU_ASSERT_EQUAL(status_num(1, "memory_budget_mb"), 1);
    CU_ASSERT(status_num(1, "table_bytes") >= 1 << 20 || status_num(2, "table_bytes") >= 1 << 20 ||
              status_num(3, "table_bytes") >= 1 << 20 || status_num(4, "table_bytes") >= 1 << 20);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"connection flood: the fifth refused EFULL, the others served", test_connection_flood},
        {"requests in flight: EAGAIN beyond the limit, others served", test_inflight},
        {NULL, NULL},
    };
    cu_add_suite("limits_cluster", setup, teardown, cases);
    static const struct cu_case budget[] = {
        {"memory budget: writes refused EFULL, reads and deletes go on", test_budget},
        {NULL, NULL},
    };
    cu_add_suite("limits_cluster_budget", setup_budget, teardown, budget);
}
