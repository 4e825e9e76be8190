/* Cluster test of SCAN through the transaction controller on four real
 * ninesd processes (2 sites): a hash table and a range table of 2000 rows
 * each (loaded with the client library) are read in pages of 100 with
 * nines_txn_scan continuing after the last key (count, order, values);
 * range bounds; reverse and one-shot scans over the raw wire (the client
 * library has no reverse flag); a scan of a missing table is a clear
 * error. Cursors with filters (nines_scan_*) over a table of BIG rows in 4
 * fragments where few rows match: every fragment's kernel reaches its
 * examine budget (KSVC_SCAN_SKIP_MAX) so pages end at resume keys; exactly
 * the matching rows arrive, in order, forward and reverse, with bounds and
 * small pages; bad filters are refused with their reason. */
#include "clu.h"
#include "cu_test.h"
#include "nines/errors.h"
#include "nines/nines.h"
#include "net/net.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"

#define NROWS 2000
#define KSTEP 3            /* keys 0, 3, 6, ...: "after the last key" is not "+1 is a row" */
#define PAGE 100

static struct clu C;

static int setup(void)
{
    if (clu_setup(&C, 4, NULL))
        return 1;
    if (clu_run(&C, "ninesctl", 0, "status --wait-healthy 20") != 0)
        return 1;
    if (clu_run(&C, "ninesctl", 1, "create-table items --columns \"id:int64,v:int64,"
                "name:varstring(16)\" --key id --frags 8 --node 1") != 0 ||
        clu_run(&C, "ninesctl", 1, "create-table big --columns \"id:int64,tag:int32,"
                "name:varstring(16):null,score:double\" --key id --frags 4 --node 1") != 0 ||
        clu_run(&C, "ninesctl", 1, "create-table ritems --columns \"id:int64,v:int64,"
                "name:varstring(16)\" --key id --range-splits 1500,3000,4500 --node 2") != 0) {
        printf("\n%s\n", C.out);
        return 1;
    }
    return 0;
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

/* 2000 rows per table, 200 inserts per transaction, in a shuffled order. */
static void test_load(void)
{
    static const char *const tables[] = {"items", "ritems"};
    nines_conn *c = connect_node(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int tb = 0; tb < 2; tb++) {
        for (int b = 0; b < NROWS / 200; b++) {
            nines_txn *t;
            CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
            for (int j = 0; j < 200; j++) {
                int64_t i = (int64_t)((b * 200 + j) * 7919 % NROWS); /* 7919 prime: a permutation */
                char name[16];
                int n = snprintf(name, sizeof name, "r%lld", (long long)i);
                struct nines_value v[3] = {nines_v_int64(i * KSTEP), nines_v_int64(i * 10),
                                           nines_v_string(name, (size_t)n)};
                CU_ASSERT_EQUAL(nines_txn_insert(t, tables[tb], v, 3), 0);
            }
            int rc = nines_txn_commit(t);
            if (rc)
                printf("\nload %s: %s\n", tables[tb], nines_conn_errdetail(c));
            CU_ASSERT_EQUAL_FATAL(rc, 0);
        }
    }
    nines_close(c);
}

struct pagectx {
    int64_t keys[NROWS + 1];
    size_t n;
    bool bad_value;
};

static int collect(void *arg, const nines_row *row)
{
    struct pagectx *p = arg;
    struct nines_value k = nines_row_value(row, 0), v = nines_row_value(row, 1);
    if (k.type != NINES_V_INT64 || v.type != NINES_V_INT64 || v.u.i64 * KSTEP != k.u.i64 * 10)
        p->bad_value = true;
    if (p->n <= NROWS)
        p->keys[p->n++] = k.u.i64;
    return 0;
}

/* Pages of PAGE rows from lo (inclusive, NULL: start) to hi (NULL: end),
 * each in its own interactive transaction, continuing after the last key.
 * Returns the number of rows, keys in p. */
static size_t page_through(nines_conn *c, const char *table, const int64_t *lo, const int64_t *hi,
                           struct pagectx *p)
{
    memset(p, 0, sizeof *p);
    int64_t next = lo ? *lo : 0;
    bool from_start = !lo;
    for (int guard = 0; guard < NROWS / PAGE + 5; guard++) {
        nines_txn *t;
        CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
        struct nines_value l = nines_v_int64(next), h = nines_v_int64(hi ? *hi : 0);
        size_t before = p->n;
        int rc = nines_txn_scan(t, table, &l, from_start ? 0 : 1, &h, hi ? 1 : 0, PAGE, collect, p);
        if (rc < 0)
            printf("\nscan of %s: %s\n", table, nines_conn_errdetail(c));
        CU_ASSERT_FATAL(rc >= 0);
        CU_ASSERT_EQUAL((size_t)rc, p->n - before);
        CU_ASSERT(rc <= PAGE);
        CU_ASSERT_EQUAL_FATAL(nines_txn_commit(t), 0);
        if (rc < PAGE)
            return p->n;
        next = p->keys[p->n - 1] + 1;
        from_start = false;
    }
    CU_FAIL("paging did not end");
    return p->n;
}

static void check_keys(const struct pagectx *p, int64_t first, size_t n, int64_t step)
{
    size_t bad = 0;
    for (size_t i = 0; i < p->n && i < n; i++)
        bad += p->keys[i] != first + (int64_t)i * step;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_FALSE(p->bad_value);
}

static void test_pages(void)
{
    static struct pagectx p;
    nines_conn *c = connect_node(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    static const char *const tables[] = {"items", "ritems"};
    for (int tb = 0; tb < 2; tb++) {
        CU_ASSERT_EQUAL(page_through(c, tables[tb], NULL, NULL, &p), NROWS);
        check_keys(&p, 0, NROWS, KSTEP);
        /* bounds: [1000, 4000] holds keys 1002 .. 3999 (multiples of 3) */
        int64_t lo = 1000, hi = 4000;
        CU_ASSERT_EQUAL(page_through(c, tables[tb], &lo, &hi, &p), (4000 - 1002) / KSTEP + 1);
        check_keys(&p, 1002, (4000 - 1002) / KSTEP + 1, KSTEP);
        /* a single key, and a key that is no row */
        lo = hi = 3000;
        CU_ASSERT_EQUAL(page_through(c, tables[tb], &lo, &hi, &p), 1);
        check_keys(&p, 3000, 1, KSTEP);
        lo = hi = 3001;
        CU_ASSERT_EQUAL(page_through(c, tables[tb], &lo, &hi, &p), 0);
    }
    nines_close(c);
}

/* ---- raw wire: reverse and one-shot scans ------------------------------ */

static Nines__Value *mkval(Nines__Value *v, int64_t x)
{
    nines__value__init(v);
    v->v_case = NINES__VALUE__V_I64;
    v->i64 = x;
    return v;
}

/* One TXN_REQ{SCAN, end COMMIT}; the keys of the rows in order, or the
 * error (*err, detail copied). */
static int raw_scan(int node, const char *table, const int64_t *lo, const int64_t *hi,
                    uint32_t limit, bool reverse, int64_t *keys, size_t cap, size_t *n,
                    char *detail, size_t dn)
{
    struct net_client *nc;
    int rc = net_client_connect(&nc, "127.0.0.1", (uint16_t)(C.base_port + node), "clutest", 5000);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    Nines__RecordOp op = NINES__RECORD_OP__INIT;
    Nines__Value vl, vh, *pl = &vl, *ph = &vh;
    op.op = NINES__OP_TYPE__OP_SCAN;
    op.table = (char *)table;
    if (lo) {
        op.n_key = 1;
        op.key = &pl;
        mkval(&vl, *lo);
    }
    if (hi) {
        op.n_key_hi = 1;
        op.key_hi = &ph;
        mkval(&vh, *hi);
    }
    op.limit = limit;
    op.reverse = reverse;
    Nines__RecordOp *ops[1] = {&op};
    Nines__TxnReq req = NINES__TXN_REQ__INIT;
    req.req_id = 77;
    req.n_ops = 1;
    req.ops = ops;
    req.end = NINES__TXN_END__TXN_END_COMMIT;
    CU_ASSERT_EQUAL_FATAL(net_client_send(nc, NINES__MSG_TYPE__TXN_REQ, &req.base), 0);
    struct net_msg_in m;
    CU_ASSERT_EQUAL_FATAL(net_client_recv(nc, &m, 10000), 0);
    *n = 0;
    detail[0] = 0;
    if (m.type == NINES__MSG_TYPE__TXN_CONF) {
        Nines__TxnConf *cf = nines__txn_conf__unpack(NULL, m.body_len, m.body);
        CU_ASSERT_PTR_NOT_NULL_FATAL(cf);
        CU_ASSERT_EQUAL(cf->req_id, 77);
        CU_ASSERT_EQUAL_FATAL(cf->n_results, 1);
        CU_ASSERT_EQUAL(cf->results[0]->status, 0);
        for (size_t i = 0; i < cf->results[0]->n_rows && *n < cap; i++)
            keys[(*n)++] = cf->results[0]->rows[i]->values[0]->i64;
        nines__txn_conf__free_unpacked(cf, NULL);
        rc = 0;
    } else {
        CU_ASSERT_EQUAL_FATAL(m.type, NINES__MSG_TYPE__TXN_REF);
        Nines__TxnRef *rf = nines__txn_ref__unpack(NULL, m.body_len, m.body);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rf);
        rc = rf->error;
        snprintf(detail, dn, "%s", rf->detail ? rf->detail : "");
        nines__txn_ref__free_unpacked(rf, NULL);
    }
    net_client_close(nc);
    return rc;
}

static void test_reverse_and_one_shot(void)
{
    static int64_t keys[NROWS + 1];
    char detail[512];
    size_t n;
    static const char *const tables[] = {"items", "ritems"};
    for (int tb = 0; tb < 2; tb++) {
        /* reverse from the end, one page */
        CU_ASSERT_EQUAL(raw_scan(3, tables[tb], NULL, NULL, 150, true, keys, NROWS, &n, detail,
                                 sizeof detail), 0);
        CU_ASSERT_EQUAL(n, 150);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += keys[i] != (int64_t)(NROWS - 1 - i) * KSTEP;
        CU_ASSERT_EQUAL(bad, 0);
        /* reverse within bounds crossing the range splits */
        int64_t lo = 1400, hi = 4600;
        CU_ASSERT_EQUAL(raw_scan(4, tables[tb], &lo, &hi, 2000, true, keys, NROWS, &n, detail,
                                 sizeof detail), 0);
        CU_ASSERT_EQUAL(n, (4599 - 1401) / KSTEP + 1);
        bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += keys[i] != 4599 - (int64_t)i * KSTEP;
        CU_ASSERT_EQUAL(bad, 0);
        /* one request, every row: a limit above the 10000 cap is capped */
        CU_ASSERT_EQUAL(raw_scan(1, tables[tb], NULL, NULL, 50000, false, keys, NROWS, &n,
                                 detail, sizeof detail), 0);
        CU_ASSERT_EQUAL(n, NROWS);
        bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += keys[i] != (int64_t)i * KSTEP;
        CU_ASSERT_EQUAL(bad, 0);
        /* limit 0: the server default of 1000 */
        CU_ASSERT_EQUAL(raw_scan(2, tables[tb], NULL, NULL, 0, false, keys, NROWS, &n, detail,
                                 sizeof detail), 0);
        CU_ASSERT_EQUAL(n, 1000);
    }
}

static int noop(void *arg, const nines_row *row)
{
    (void)arg, (void)row;
    return 0;
}

static void test_missing_table(void)
{
    nines_conn *c = connect_node(4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    nines_txn *t;
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    int rc = nines_txn_scan(t, "no_such_table", NULL, 0, NULL, 0, 10, noop, NULL);
    CU_ASSERT_EQUAL(rc, NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "'no_such_table' not found"));
    nines_txn_rollback(t);
    /* the same as a one-shot request */
    char detail[512];
    size_t n;
    int64_t keys[1];
    CU_ASSERT_EQUAL(raw_scan(4, "no_such_table", NULL, NULL, 5, false, keys, 1, &n, detail,
                             sizeof detail), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(detail, "no_such_table"));
    /* the connection serves on */
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    struct nines_value lo = nines_v_int64(0);
    CU_ASSERT_EQUAL(nines_txn_scan(t, "items", &lo, 1, NULL, 0, 5, noop, NULL), 5);
    CU_ASSERT_EQUAL(nines_txn_commit(t), 0);
    nines_close(c);
}

/* ---- filtered cursors ---------------------------------------------------- */

/* BIG rows, keys 0 .. BIG-1: tag = id * 7919 % TAGMOD (spread evenly over
 * the keys), name NULL when id % 7 == 0 else "n<id>", score = id / 2.0. A
 * filter tag < 100 matches one row in ten: each fragment examines about
 * BIG / 4 rows and skips more than one answer's budget, and the fragments'
 * budgets end at different keys with matching rows between them. */
#define BIG 24000
#define TAGMOD 1000
#define TAG(i) ((i) * 7919 % TAGMOD)

static void load_big(void)
{
    nines_conn *c = connect_node(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int b = 0; b < BIG / 500; b++) {
        nines_txn *t;
        CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
        for (int j = 0; j < 500; j++) {
            int64_t i = b * 500 + j;
            char name[16];
            int n = snprintf(name, sizeof name, "n%lld", (long long)i);
            struct nines_value v[4] = {
                nines_v_int64(i), nines_v_int64(TAG(i)),
                i % 7 ? nines_v_string(name, (size_t)n) : nines_v_null(),
                nines_v_double((double)i / 2.0)};
            CU_ASSERT_EQUAL(nines_txn_insert(t, "big", v, 4), 0);
        }
        int rc = nines_txn_commit(t);
        if (rc)
            printf("\nload big: %s\n", nines_conn_errdetail(c));
        CU_ASSERT_EQUAL_FATAL(rc, 0);
    }
    nines_close(c);
}

struct fctx {
    int64_t keys[BIG];
    size_t n;
    bool bad;                 /* a row that should not have matched, or a bad value */
    bool (*pred)(int64_t);    /* which rows should match */
};

static int fcollect(void *arg, const nines_row *row)
{
    struct fctx *p = arg;
    struct nines_value k = nines_row_value(row, 0), tag = nines_row_value(row, 1),
                       name = nines_row_value(row, 2), sc = nines_row_value(row, 3);
    if (k.type != NINES_V_INT64 || tag.type != NINES_V_INT64 || sc.type != NINES_V_DOUBLE ||
        tag.u.i64 != TAG(k.u.i64) || sc.u.f64 != (double)k.u.i64 / 2.0 ||
        (name.type == NINES_V_NULL) != (k.u.i64 % 7 == 0) || !p->pred(k.u.i64))
        p->bad = true;
    if (p->n < BIG)
        p->keys[p->n++] = k.u.i64;
    return 0;
}

/* Every page of a cursor into p; returns the number of pages. */
static int drain(nines_conn *c, const char *table, const struct nines_value *lo, size_t nlo,
                 const struct nines_value *hi, size_t nhi, const struct nines_filter *f,
                 size_t nf, unsigned flags, uint32_t limit, struct fctx *p, int *empty_pages)
{
    nines_txn *t;
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    nines_scan *sc = NULL;
    int rc = nines_scan_open(t, table, lo, nlo, hi, nhi, f, nf, flags, &sc);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    int pages = 0;
    *empty_pages = 0;
    while (!nines_scan_done(sc) && pages < 1000) {
        size_t before = p->n;
        rc = nines_scan_next(sc, limit, fcollect, p);
        if (rc < 0)
            printf("\nscan of %s: %s\n", table, nines_conn_errdetail(c));
        CU_ASSERT_FATAL(rc >= 0);
        CU_ASSERT_EQUAL((size_t)rc, p->n - before);
        if (limit)
            CU_ASSERT(rc <= (int)limit);
        pages++;
        *empty_pages += rc == 0;
    }
    CU_ASSERT(nines_scan_done(sc));
    CU_ASSERT_EQUAL(nines_scan_next(sc, limit, fcollect, p), 0); /* a done cursor stays done */
    nines_scan_close(sc);
    CU_ASSERT_EQUAL(nines_txn_commit(t), 0);
    return pages;
}

/* p->keys must be exactly the keys k of [lo, hi] with pred(k), in order */
static void expect(const struct fctx *p, int64_t lo, int64_t hi, bool reverse,
                   bool (*pred)(int64_t))
{
    size_t n = 0, bad = 0;
    for (int64_t i = 0; i <= hi - lo; i++) {
        int64_t k = reverse ? hi - i : lo + i;
        if (!pred(k))
            continue;
        if (n >= p->n || p->keys[n] != k)
            bad++;
        n++;
    }
    CU_ASSERT_EQUAL(p->n, n);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_FALSE(p->bad);
}

static bool tag_low(int64_t k) { return TAG(k) < 100 && k % 7 != 0; }
static bool tag_low_any(int64_t k) { return TAG(k) < 100; }
static bool nullname_low(int64_t k) { return k % 7 == 0 && (double)k / 2.0 < 3000.0; }
static bool one_name(int64_t k) { return k == 2001; }
static bool any(int64_t k) { return (void)k, true; }

static void test_filtered_cursor(void)
{
    load_big();
    nines_conn *c = connect_node(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    static struct fctx p;
    int empty;

    /* tag < 100 AND name IS NOT NULL: about 2050 rows of 24000 */
    struct nines_filter f[2] = {{.column = 1, .cmp = NINES_CMP_LT, .value = nines_v_int64(100)},
                                {.column = 2, .cmp = NINES_CMP_IS_NOT_NULL}};
    memset(&p, 0, sizeof p);
    p.pred = tag_low;
    /* pages as large as a scan answers: each ends where the first
     * fragment's budget ran out */
    int pages = drain(c, "big", NULL, 0, NULL, 0, f, 2, 0, 10000, &p, &empty);
    expect(&p, 0, BIG - 1, false, tag_low);
    CU_ASSERT(pages >= 2); /* the budget cut the scan at least once */

    /* the same, descending */
    memset(&p, 0, sizeof p);
    p.pred = tag_low;
    pages = drain(c, "big", NULL, 0, NULL, 0, f, 2, NINES_SCAN_REVERSE, 10000, &p, &empty);
    expect(&p, 0, BIG - 1, true, tag_low);
    CU_ASSERT(pages >= 2);

    /* pages of 50 rows: page ends and budget cuts both */
    memset(&p, 0, sizeof p);
    p.pred = tag_low_any;
    pages = drain(c, "big", NULL, 0, NULL, 0, f, 1, 0, 50, &p, &empty);
    expect(&p, 0, BIG - 1, false, tag_low_any);
    CU_ASSERT(pages >= 48);

    /* bounds on the key, a double filter, IS NULL on a string */
    struct nines_value lo = nines_v_int64(1000), hi = nines_v_int64(20000);
    struct nines_filter g[2] = {{.column = 3, .cmp = NINES_CMP_LT, .value = nines_v_double(3000)},
                                {.column = 2, .cmp = NINES_CMP_IS_NULL}};
    memset(&p, 0, sizeof p);
    p.pred = nullname_low;
    drain(c, "big", &lo, 1, &hi, 1, g, 2, 0, 0, &p, &empty);
    expect(&p, 1000, 20000, false, nullname_low);
    memset(&p, 0, sizeof p);
    p.pred = nullname_low;
    drain(c, "big", &lo, 1, &hi, 1, g, 2, NINES_SCAN_REVERSE, 7, &p, &empty);
    expect(&p, 1000, 20000, true, nullname_low);

    /* a filter on a string column: name = 'n2001' (one row) */
    struct nines_filter h = {.column = 2, .cmp = NINES_CMP_EQ, .value = nines_v_string("n2001", 5)};
    memset(&p, 0, sizeof p);
    p.pred = one_name;
    drain(c, "big", NULL, 0, NULL, 0, &h, 1, 0, 0, &p, &empty);
    CU_ASSERT_EQUAL(p.n, 1);
    CU_ASSERT(p.n == 1 && p.keys[0] == 2001);

    /* no filters: a cursor pages the whole range by `after` keys */
    memset(&p, 0, sizeof p);
    p.pred = any;
    lo = nines_v_int64(23000);
    pages = drain(c, "big", &lo, 1, NULL, 0, NULL, 0, 0, 128, &p, &empty);
    CU_ASSERT_EQUAL(p.n, 1000);
    CU_ASSERT(pages >= 8);
    CU_ASSERT(p.n == 1000 && p.keys[0] == 23000 && p.keys[999] == BIG - 1);
    nines_close(c);
}

static void test_filter_refusals(void)
{
    nines_conn *c = connect_node(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct {
        struct nines_filter f;
        int rc;
        const char *detail;
    } bad[] = {
        {{.column = 9, .cmp = NINES_CMP_EQ, .value = nines_v_int64(1)}, NINES_EINVAL, "column 9"},
        {{.column = 1, .cmp = NINES_CMP_EQ, .value = nines_v_string("x", 1)}, NINES_ETYPE, "tag"},
        {{.column = 1, .cmp = NINES_CMP_GT, .value = nines_v_int64(1LL << 40)}, NINES_ETYPE, "tag"},
        {{.column = 3, .cmp = NINES_CMP_EQ, .value = nines_v_null()}, NINES_EINVAL, "NULL"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nines_txn *t;
        CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
        nines_scan *sc = NULL;
        CU_ASSERT_EQUAL_FATAL(nines_scan_open(t, "big", NULL, 0, NULL, 0, &bad[i].f, 1, 0, &sc), 0);
        int rc = nines_scan_next(sc, 0, noop, NULL);
        CU_ASSERT_EQUAL(rc, bad[i].rc);
        if (rc != bad[i].rc || !strstr(nines_conn_errdetail(c), bad[i].detail))
            printf("\nfilter %zu: rc %d, %s\n", i, rc, nines_conn_errdetail(c));
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), bad[i].detail));
        nines_scan_close(sc);
        nines_txn_rollback(t);
    }
    /* refused by the library before anything is sent */
    nines_txn *t;
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    nines_scan *sc = NULL;
    struct nines_filter u = {.column = 1, .cmp = (enum nines_cmp)77};
    CU_ASSERT_EQUAL(nines_scan_open(t, "big", NULL, 0, NULL, 0, &u, 1, 0, &sc), NINES_EINVAL);
    CU_ASSERT_PTR_NULL(sc);
    CU_ASSERT_EQUAL(nines_scan_open(t, "big", NULL, 0, NULL, 0, &u, 1, 0x8, &sc), NINES_EINVAL);
    struct nines_filter many[NINES_SCAN_FILTERS_MAX + 1];
    for (size_t i = 0; i <= NINES_SCAN_FILTERS_MAX; i++)
        many[i] = (struct nines_filter){.column = 2, .cmp = NINES_CMP_IS_NULL};
    CU_ASSERT_EQUAL(nines_scan_open(t, "big", NULL, 0, NULL, 0, many, NINES_SCAN_FILTERS_MAX + 1,
                                    0, &sc), NINES_EINVAL);
    /* the transaction serves on: a full filter list is fine */
    CU_ASSERT_EQUAL_FATAL(nines_scan_open(t, "big", NULL, 0, NULL, 0, many,
                                          NINES_SCAN_FILTERS_MAX, 0, &sc), 0);
    int rows = 0;
    while (!nines_scan_done(sc)) {
        int rc = nines_scan_next(sc, 0, noop, NULL);
        CU_ASSERT_FATAL(rc >= 0);
        rows += rc;
    }
    CU_ASSERT_EQUAL(rows, (BIG + 6) / 7);
    nines_scan_close(sc);
    CU_ASSERT_EQUAL(nines_txn_commit(t), 0);
    nines_close(c);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"load", test_load},
        {"pages", test_pages},
        {"reverse_and_one_shot", test_reverse_and_one_shot},
        {"missing_table", test_missing_table},
        {"filtered_cursor", test_filtered_cursor},
        {"filter_refusals", test_filter_refusals},
        {NULL, NULL},
    };
    cu_add_suite("scan_cluster", setup, teardown, cases);
}
