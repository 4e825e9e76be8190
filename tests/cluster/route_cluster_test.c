/* Routing agreement between the nodes and the client library on four real
 * ninesd processes (2 sites): 2,000 random keys inserted through the
 * client into a hash table and into a range table; per fragment, the
 * number of keys nines_key_fragment puts there equals the rows the
 * fragment's primary holds (ninesctl replicas --json), and the primary /
 * standby nodes it names are the placement's (ninesctl placement --json).
 * Range boundaries: a key equal to a split point, just below, just above,
 * below the first and above the last go to the expected fragments. The
 * dictionary is fetched again for a table created after the first fetch;
 * unknown tables and bad keys get clear errors. */
#include "clu.h"
#include "cu_test.h"
#include "nines/errors.h"
#include "nines/nines.h"

#include <inttypes.h>
#include <stdbool.h>

static struct clu C;
static uint64_t rng;

#define NKEYS 2000
#define HASH_FRAGS 8
#define MAXF 16
static const int64_t splits[] = {-1000, 0, 1000, 5000};
#define NSPLITS 4

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int setup(void)
{
    rng = cu_seed(777) | 1;
    if (clu_setup(&C, 4, NULL))
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
    if (rc)
        printf("\n  connect node %d: %s\n", id, nines_errdetail());
    return rc ? NULL : c;
}

static int create(const char *name, const char *how)
{
    int rc = clu_run(&C, "ninesctl", 1, "create-table %s --columns k:int64,v:int64 --key k %s",
                     name, how);
    if (rc)
        printf("\n  create-table %s: %s\n", name, C.out);
    return rc;
}

/* Insert keys[0..n) as (k, k) rows, 100 per transaction. */
static int insert_all(nines_conn *c, const char *table, const int64_t *keys, size_t n)
{
    for (size_t i = 0; i < n;) {
        nines_txn *t;
        int rc = nines_txn_begin(c, &t);
        if (rc)
            return rc;
        for (size_t j = 0; j < 100 && i < n; j++, i++) {
            struct nines_value row[2] = {nines_v_int64(keys[i]), nines_v_int64(keys[i])};
            nines_txn_insert(t, table, row, 2);
        }
        if ((rc = nines_txn_commit(t))) {
            printf("\n  insert into %s: %s\n", table, nines_conn_errdetail(c));
            return rc;
        }
    }
    return 0;
}

/* Placement of `table` (ninesctl placement --json): its id, and per
 * fragment the primary and standby node. Returns the fragment count. */
static int placement(const char *table, uint32_t *id, uint32_t *prim, uint32_t *stby)
{
    if (clu_run(&C, "ninesctl", 0, "placement %s --json", table) != 0)
        return -1;
    const char *p = strstr(C.out, "\"id\":");
    if (!p || sscanf(p, "\"id\":%u", id) != 1)
        return -1;
    int n = 0;
    for (p = strstr(C.out, "{\"fragment\":"); p && n < MAXF;
         p = strstr(p + 1, "{\"fragment\":")) {
        unsigned f, a, b;
        if (sscanf(p, "{\"fragment\":%u,\"primary\":%u,\"standby\":%u", &f, &a, &b) != 3 ||
            f != (unsigned)n)
            return -1;
        prim[n] = a;
        stby[n] = b;
        n++;
    }
    return n;
}

/* Rows of each fragment's primary (ninesctl replicas --json). */
static int primary_rows(uint32_t table, int nfrags, uint64_t *rows)
{
    if (clu_run(&C, "ninesctl", 0, "replicas --json") != 0)
        return -1;
    for (int f = 0; f < nfrags; f++) {
        char needle[64];
        snprintf(needle, sizeof needle, "{\"table\":%u,\"frag\":%d,", table, f);
        const char *p = strstr(C.out, needle);
        char state[32];
        unsigned node;
        unsigned long long r;
        if (!p || sscanf(p + strlen(needle), "\"state\":\"%31[^\"]\",\"primary\":{\"node\":%u,"
                         "\"rows\":%llu", state, &node, &r) != 3)
            return -1;
        rows[f] = r;
    }
    return 0;
}

static bool have(const int64_t *k, size_t n, int64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (k[i] == x)
            return true;
    return false;
}

/* Keys -> per-fragment counts with nines_key_fragment; every key's
 * primary/standby must be its fragment's placement. */
static void check_table(nines_conn *c, const char *table, const int64_t *keys, size_t n)
{
    uint32_t id = 0, prim[MAXF], stby[MAXF];
    int nf = placement(table, &id, prim, stby);
    CU_ASSERT_TRUE_FATAL(nf > 0);
    uint64_t count[MAXF] = {0}, rows[MAXF];
    size_t bad_nodes = 0;
    for (size_t i = 0; i < n; i++) {
        struct nines_value k = nines_v_int64(keys[i]);
        uint32_t f = UINT32_MAX, p = 0, s = 0;
        int rc = nines_key_fragment(c, table, &k, 1, &f, &p, &s);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_TRUE_FATAL(f < (uint32_t)nf);
        count[f]++;
        bad_nodes += p != prim[f] || s != stby[f];
    }
    CU_ASSERT_EQUAL(bad_nodes, 0);
    CU_ASSERT_EQUAL_FATAL(primary_rows(id, nf, rows), 0);
    int nonempty = 0;
    for (int f = 0; f < nf; f++) {
        CU_ASSERT_EQUAL(count[f], rows[f]);
        if (count[f] != rows[f])
            printf("\n  %s fragment %d: client routes %" PRIu64 " keys, the primary holds %"
                   PRIu64 " rows\n", table, f, count[f], rows[f]);
        nonempty += count[f] > 0;
    }
    CU_ASSERT_EQUAL(nonempty, nf); /* every fragment is reached: the check has teeth */
}

static void test_hash(void)
{
    CU_ASSERT_EQUAL_FATAL(create("rh", "--frags 8"), 0);
    static int64_t keys[NKEYS];
    for (size_t i = 0; i < NKEYS; i++) {
        do
            keys[i] = (int64_t)rnd();
        while (have(keys, i, keys[i]));
    }
    nines_conn *w = connect_node(1), *r = connect_node(4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(insert_all(w, "rh", keys, NKEYS), 0);
    check_table(r, "rh", keys, NKEYS);
    nines_close(w);
    nines_close(r);
}

static uint32_t range_frag(int64_t k)
{
    uint32_t f = 0;
    while (f < NSPLITS && splits[f] <= k)
        f++;
    return f;
}

static void test_range(void)
{
    /* a connection that fetched the dictionary before the table existed */
    nines_conn *r = connect_node(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    struct nines_value k0 = nines_v_int64(1);
    uint32_t f;
    CU_ASSERT_EQUAL(nines_key_fragment(r, "rh", &k0, 1, &f, NULL, NULL), 0);
    CU_ASSERT_EQUAL(nines_key_fragment(r, "rr", &k0, 1, &f, NULL, NULL), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL_FATAL(create("rr", "--range-splits -1000,0,1000,5000"), 0);

    static int64_t keys[NKEYS];
    size_t n = 0;
    keys[n++] = INT64_MIN;
    keys[n++] = INT64_MAX;
    for (int s = 0; s < NSPLITS; s++)
        for (int64_t d = -1; d <= 1; d++)
            keys[n++] = splits[s] + d;
    size_t nb = n;
    while (n < NKEYS) {
        int64_t k = (int64_t)(rnd() % 11000) - 3000;
        if (!have(keys, n, k))
            keys[n++] = k;
    }
    /* boundaries: below the first, at / around each split, above the last */
    for (size_t i = 0; i < nb; i++) {
        struct nines_value k = nines_v_int64(keys[i]);
        uint32_t got = UINT32_MAX;
        CU_ASSERT_EQUAL(nines_key_fragment(r, "rr", &k, 1, &got, NULL, NULL), 0);
        CU_ASSERT_EQUAL(got, range_frag(keys[i]));
        if (got != range_frag(keys[i]))
            printf("\n  key %" PRId64 ": fragment %u, expected %u\n", keys[i], got,
                   range_frag(keys[i]));
    }
    struct nines_value k = nines_v_int64(-1000);
    CU_ASSERT_EQUAL(nines_key_fragment(r, "rr", &k, 1, &f, NULL, NULL), 0);
    CU_ASSERT_EQUAL(f, 1); /* equal to split 0 -> fragment 1 */
    k = nines_v_int64(-1001);
    CU_ASSERT_EQUAL(nines_key_fragment(r, "rr", &k, 1, &f, NULL, NULL), 0);
    CU_ASSERT_EQUAL(f, 0);
    k = nines_v_int64(5000);
    CU_ASSERT_EQUAL(nines_key_fragment(r, "rr", &k, 1, &f, NULL, NULL), 0);
    CU_ASSERT_EQUAL(f, 4);

    nines_conn *w = connect_node(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL(insert_all(w, "rr", keys, NKEYS), 0);
    check_table(r, "rr", keys, NKEYS);
    nines_close(w);
    nines_close(r);
}

static void test_errors(void)
{
    nines_conn *c = connect_node(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct nines_value k[2] = {nines_v_int64(1), nines_v_int64(2)};
    uint32_t f;
    CU_ASSERT_EQUAL(nines_key_fragment(c, "nosuch", k, 1, &f, NULL, NULL), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "nosuch"));
    CU_ASSERT_EQUAL(nines_key_fragment(c, "rh", k, 2, &f, NULL, NULL), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "column k"));
    CU_ASSERT_EQUAL(nines_key_fragment(c, "rh", k, 0, &f, NULL, NULL), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "column k"));
    k[0] = nines_v_string("1", 1);
    CU_ASSERT_EQUAL(nines_key_fragment(c, "rr", k, 1, &f, NULL, NULL), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "column k"));
    /* the connection still serves after the errors */
    k[0] = nines_v_int64(7);
    CU_ASSERT_EQUAL(nines_key_fragment(c, "rr", k, 1, &f, NULL, NULL), 0);
    CU_ASSERT_EQUAL(f, 2);
    nines_close(c);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"hash table: client fragment counts == primary rows, placement agrees", test_hash},
        {"range table: boundaries, refetch, counts == primary rows", test_range},
        {"unknown table and bad keys name what was wrong", test_errors},
        {NULL, NULL},
    };
    cu_add_suite("route_cluster", setup, teardown, cases);
}
