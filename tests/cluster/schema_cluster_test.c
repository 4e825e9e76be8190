/* The schema API (client/README.md "Schema") on four real ninesd processes
 * (2 sites): nines_table_create with SQL column attributes and a hidden
 * row key, listed back field by field (also from another node); a range
 * table's split values; nines_table_replace — the name then holds the
 * replacement's rows and id, the replaced rows are gone on every node and
 * every standby equals its primary; nines_table_set_readonly refuses
 * writes (NINES_ESTATE naming the table) while gets go on; drop; the
 * refusals (a taken name, a missing table, a replace with itself). */
#include "clu.h"
#include "cu_test.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nines/nines.h"

#include <inttypes.h>
#include <stdbool.h>

static struct clu C;
static nines_conn *c1;
static uint32_t first_id, second_id;

static int setup(void)
{
    if (clu_setup(&C, 4, NULL))
        return 1;
    return clu_run(&C, "ninesctl", 0, "status --wait-healthy 20") == 0 ? 0 : 1;
}

static int teardown(void)
{
    if (c1)
        nines_close(c1);
    return clu_teardown(&C);
}

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

/* id int64, name varstring(40) NULL, rk int64 hidden: the key */
static const struct nines_column cols[] = {
    {.name = "id", .type = NINES_T_INT64, .sqltype = 20, .sqltypmod = -1},
    {.name = "name", .type = NINES_T_VARSTRING, .size = 40, .nullable = 1, .sqltype = 1043,
     .sqltypmod = 44},
    {.name = "rk", .type = NINES_T_INT64, .sqltype = 20, .sqltypmod = -1, .hidden = 1},
};
static const uint32_t pk[] = {2};

static struct nines_table_def table_def(const char *name, uint32_t nfrags)
{
    return (struct nines_table_def){.name = name, .ncols = 3, .cols = cols, .npk = 1, .pk = pk,
                                    .nfrags = nfrags};
}

/* Rows (k, "row k", k) for k in [from, from + n), one transaction. */
static int insert_rows(nines_conn *c, const char *table, int64_t from, int n)
{
    nines_txn *t;
    int rc = nines_txn_begin(c, &t);
    if (rc)
        return rc;
    char buf[32];
    for (int64_t k = from; k < from + n; k++) {
        int len = snprintf(buf, sizeof buf, "row %" PRId64, k);
        struct nines_value row[3] = {nines_v_int64(k), nines_v_string(buf, (size_t)len),
                                     nines_v_int64(k)};
        nines_txn_insert(t, table, row, 3);
    }
    return nines_txn_commit(t);
}

struct scan_acc {
    int n;
    int64_t lo, hi;
};

static int count_row(void *arg, const nines_row *r)
{
    struct scan_acc *a = arg;
    int64_t k = nines_row_value(r, 2).u.i64;
    if (a->n == 0 || k < a->lo)
        a->lo = k;
    if (a->n == 0 || k > a->hi)
        a->hi = k;
    a->n++;
    return 0;
}

static int scan_all(nines_conn *c, const char *table, struct scan_acc *a)
{
    memset(a, 0, sizeof *a);
    nines_txn *t;
    int rc = nines_txn_begin(c, &t);
    if (rc)
        return rc;
    rc = nines_txn_scan(t, table, NULL, 0, NULL, 0, 10000, count_row, a);
    int rc2 = nines_txn_commit(t);
    return rc < 0 ? rc : rc2;
}

static int get_key(nines_conn *c, const char *table, int64_t k)
{
    nines_txn *t;
    int rc = nines_txn_begin(c, &t);
    if (rc)
        return rc;
    struct nines_value key = nines_v_int64(k);
    nines_row *row;
    rc = nines_txn_get(t, table, &key, 1, &row);
    nines_txn_rollback(t);
    return rc;
}

/* Every standby equals its primary (shipping may still be in flight). */
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
    if (rc)
        printf("\n%s\n", C.out);
}

static void check_cols(const struct nines_table_info *ti)
{
    CU_ASSERT_EQUAL_FATAL(ti->def.ncols, 3);
    for (uint32_t i = 0; i < 3; i++) {
        const struct nines_column *a = &ti->def.cols[i], *b = &cols[i];
        CU_ASSERT_STRING_EQUAL(a->name, b->name);
        CU_ASSERT_EQUAL(a->type, b->type);
        CU_ASSERT_EQUAL(a->size, b->size);
        CU_ASSERT_EQUAL(!!a->nullable, !!b->nullable);
        CU_ASSERT_EQUAL(a->sqltype, b->sqltype);
        CU_ASSERT_EQUAL(a->sqltypmod, b->sqltypmod);
        CU_ASSERT_EQUAL(!!a->hidden, !!b->hidden);
    }
    CU_ASSERT_EQUAL_FATAL(ti->def.npk, 1);
    CU_ASSERT_EQUAL(ti->def.pk[0], 2);
}

struct list_acc {
    int n;
    bool first, ranged;
};

static int list_fn(void *arg, const struct nines_table_info *ti)
{
    struct list_acc *a = arg;
    a->n++;
    if (!strcmp(ti->def.name, "first")) {
        a->first = true;
        CU_ASSERT_EQUAL(ti->id, first_id);
        check_cols(ti);
    }
    if (!strcmp(ti->def.name, "ranged"))
        a->ranged = true;
    return 0;
}

static int stop_fn(void *arg, const struct nines_table_info *ti)
{
    (void)ti;
    ++*(int *)arg;
    return 7;
}

static void test_create_list(void)
{
    c1 = connect_node(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
    struct nines_table_def d = table_def("first", 0);
    int rc = nines_table_create(c1, &d, &first_id);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(first_id > 0);
    struct nines_table_info ti;
    CU_ASSERT_EQUAL_FATAL(nines_table_get(c1, "first", 0, &ti), 0);
    CU_ASSERT_EQUAL(ti.id, first_id);
    CU_ASSERT(ti.version > 0);
    CU_ASSERT_EQUAL(ti.readonly, 0);
    CU_ASSERT_STRING_EQUAL(ti.def.name, "first");
    check_cols(&ti);
    CU_ASSERT_EQUAL(ti.def.method, 1);
    CU_ASSERT_EQUAL(ti.def.nfrags, 4); /* nfrags 0: one per node */
    CU_ASSERT_EQUAL(ti.def.nsplits, 0);
    CU_ASSERT_EQUAL(ti.def.replicas, 2);
    CU_ASSERT_EQUAL(ti.def.scheme, 1);
    /* a range table: the split values come back as values */
    struct nines_value sp[] = {nines_v_int64(100), nines_v_int64(200)};
    struct nines_table_def r = table_def("ranged", 0);
    r.method = 2;
    r.nsplits = 2;
    r.splits = sp;
    uint32_t rid;
    CU_ASSERT_EQUAL_FATAL(nines_table_create(c1, &r, &rid), 0);
    CU_ASSERT_EQUAL_FATAL(nines_table_get(c1, "ranged", 0, &ti), 0);
    CU_ASSERT_EQUAL(ti.id, rid);
    CU_ASSERT_EQUAL(ti.def.method, 2);
    CU_ASSERT_EQUAL(ti.def.nfrags, 3);
    CU_ASSERT_EQUAL_FATAL(ti.def.nsplits, 2);
    CU_ASSERT_EQUAL(ti.def.splits[0].type, NINES_V_INT64);
    CU_ASSERT_EQUAL(ti.def.splits[0].u.i64, 100);
    CU_ASSERT_EQUAL(ti.def.splits[1].u.i64, 200);
    /* descending split points: the nodes refuse them */
    struct nines_value bad[] = {nines_v_int64(200), nines_v_int64(100)};
    r.name = "badrange";
    r.splits = bad;
    CU_ASSERT_EQUAL(nines_table_create(c1, &r, NULL), NINES_EINVAL);
    /* a split value of the wrong type: refused here, naming it */
    struct nines_value wrong[] = {nines_v_string("x", 1)};
    r.nsplits = 1;
    r.splits = wrong;
    CU_ASSERT_EQUAL(nines_table_create(c1, &r, NULL), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c1), "split point 0"));
    /* the list */
    struct list_acc a = {0};
    CU_ASSERT_EQUAL(nines_tables(c1, 0, list_fn, &a), 0);
    CU_ASSERT_EQUAL(a.n, 2);
    CU_ASSERT_TRUE(a.first);
    CU_ASSERT_TRUE(a.ranged);
    int calls = 0;
    CU_ASSERT_EQUAL(nines_tables(c1, 1, stop_fn, &calls), 7); /* fn's value stops it */
    CU_ASSERT_EQUAL(calls, 1);
    /* another node has the same tables */
    nines_conn *c3 = connect_node(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c3);
    CU_ASSERT_EQUAL_FATAL(nines_table_get(c3, "first", 1, &ti), 0);
    CU_ASSERT_EQUAL(ti.id, first_id);
    check_cols(&ti);
    nines_close(c3);
}

static void test_replace(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
    CU_ASSERT_EQUAL_FATAL(insert_rows(c1, "first", 0, 50), 0);
    struct nines_table_def d = table_def("second", 6);
    CU_ASSERT_EQUAL_FATAL(nines_table_create(c1, &d, &second_id), 0);
    CU_ASSERT_EQUAL_FATAL(insert_rows(c1, "second", 1000, 30), 0);
    CU_ASSERT_EQUAL(get_key(c1, "first", 5), 0);
    uint64_t t0 = nclock_ms();
    int rc = nines_table_replace(c1, "first", "second");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    printf("\n  replace took %" PRIu64 " ms ", nclock_ms() - t0);
    struct nines_table_info ti;
    CU_ASSERT_EQUAL_FATAL(nines_table_get(c1, "first", 0, &ti), 0);
    CU_ASSERT_EQUAL(ti.id, second_id);
    CU_ASSERT_EQUAL(ti.def.nfrags, 6);
    check_cols(&ti);
    CU_ASSERT_EQUAL(nines_table_get(c1, "second", 0, &ti), NINES_ENOTFOUND);
    /* the name has the second table's rows, the first's are gone */
    struct scan_acc a;
    CU_ASSERT_EQUAL(scan_all(c1, "first", &a), 0);
    CU_ASSERT_EQUAL(a.n, 30);
    CU_ASSERT_EQUAL(a.lo, 1000);
    CU_ASSERT_EQUAL(a.hi, 1029);
    CU_ASSERT_EQUAL(get_key(c1, "first", 5), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(get_key(c1, "first", 1005), 0);
    CU_ASSERT_EQUAL(get_key(c1, "second", 1005), NINES_ENOTFOUND);
    /* the same through another node */
    nines_conn *c2 = connect_node(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    CU_ASSERT_EQUAL(scan_all(c2, "first", &a), 0);
    CU_ASSERT_EQUAL(a.n, 30);
    /* writes go to the renamed table */
    CU_ASSERT_EQUAL(insert_rows(c2, "first", 2000, 10), 0);
    nines_close(c2);
    CU_ASSERT_EQUAL(scan_all(c1, "first", &a), 0);
    CU_ASSERT_EQUAL(a.n, 40);
    /* no node holds a replica of the replaced table; every standby of the
     * rest equals its primary */
    assert_replicas_equal();
    char needle[48];
    snprintf(needle, sizeof needle, "{\"table\":%u,", first_id);
    CU_ASSERT_PTR_NULL(strstr(C.out, needle));
    snprintf(needle, sizeof needle, "{\"table\":%u,", second_id);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, needle));
    for (int n = 1; n <= 4; n++)
        CU_ASSERT_TRUE(clu_log_has(&C, n, "dropping the"));
}

static void test_readonly(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
    CU_ASSERT_EQUAL_FATAL(nines_table_set_readonly(c1, "first", 1), 0);
    struct nines_table_info ti;
    CU_ASSERT_EQUAL_FATAL(nines_table_get(c1, "first", 0, &ti), 0);
    CU_ASSERT_EQUAL(ti.readonly, 1);
    /* ninesctl tables shows the flag and the hidden column */
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "tables --json"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"name\":\"first\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"readonly\":true,\"hidden\":[\"rk\"]"));
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "tables"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "rk  [read-only]  [hidden: rk]"));
    int rc = insert_rows(c1, "first", 3000, 1);
    CU_ASSERT_EQUAL(rc, NINES_ESTATE);
    const char *why = nines_conn_errdetail(c1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "table first is read-only"));
    if (rc != NINES_ESTATE)
        printf("\n  insert into a read-only table: %d %s\n", rc, why);
    /* delete and add are writes too */
    nines_txn *t;
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c1, &t), 0);
    struct nines_value key = nines_v_int64(1000);
    nines_txn_delete(t, "first", &key, 1);
    CU_ASSERT_EQUAL(nines_txn_commit(t), NINES_ESTATE);
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c1, &t), 0);
    CU_ASSERT_EQUAL(nines_txn_add(t, "first", &key, 1, 0, 1, NULL), NINES_ESTATE);
    nines_txn_rollback(t);
    /* reads go on */
    CU_ASSERT_EQUAL(get_key(c1, "first", 1000), 0);
    struct scan_acc a;
    CU_ASSERT_EQUAL(scan_all(c1, "first", &a), 0);
    CU_ASSERT_EQUAL(a.n, 40);
    /* other tables are writable */
    CU_ASSERT_EQUAL(insert_rows(c1, "ranged", 1, 3), 0);
    /* off: writes again */
    CU_ASSERT_EQUAL_FATAL(nines_table_set_readonly(c1, "first", 0), 0);
    CU_ASSERT_EQUAL_FATAL(nines_table_get(c1, "first", 0, &ti), 0);
    CU_ASSERT_EQUAL(ti.readonly, 0);
    CU_ASSERT_EQUAL(insert_rows(c1, "first", 3000, 1), 0);
    CU_ASSERT_EQUAL(get_key(c1, "first", 3000), 0);
}

static void test_errors(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
    struct nines_table_def d = table_def("first", 2);
    CU_ASSERT_EQUAL(nines_table_create(c1, &d, NULL), NINES_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c1), "first"));
    CU_ASSERT_EQUAL(nines_table_drop(c1, "missing"), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c1), "missing"));
    CU_ASSERT_EQUAL(nines_table_replace(c1, "first", "missing"), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c1), "no table named 'missing'"));
    CU_ASSERT_EQUAL(nines_table_replace(c1, "missing", "first"), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(nines_table_replace(c1, "first", "first"), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_table_set_readonly(c1, "missing", 1), NINES_ENOTFOUND);
    d.npk = 0;
    CU_ASSERT_EQUAL(nines_table_create(c1, &d, NULL), NINES_EINVAL);
    /* a column type the dictionary does not know: the nodes' validation */
    struct nines_column bad[] = {{.name = "k", .type = 99}};
    struct nines_table_def b = {.name = "badtype", .ncols = 1, .cols = bad, .npk = 1,
                                .pk = (const uint32_t[]){0}, .nfrags = 1};
    CU_ASSERT_EQUAL(nines_table_create(c1, &b, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c1), "99"));
    /* drop */
    CU_ASSERT_EQUAL_FATAL(nines_table_drop(c1, "first"), 0);
    struct nines_table_info ti;
    CU_ASSERT_EQUAL(nines_table_get(c1, "first", 0, &ti), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(get_key(c1, "first", 1000), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(nines_table_drop(c1, "ranged"), 0);
    int calls = 0;
    CU_ASSERT_EQUAL(nines_tables(c1, 0, stop_fn, &calls), 0);
    CU_ASSERT_EQUAL(calls, 0);
    /* no replica is left on any node */
    (void)clu_run(&C, "ninesctl", 0, "replicas --json"); /* exits 1: nothing to compare */
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"fragments_total\":0"));
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"create_list", test_create_list},
        {"replace", test_replace},
        {"readonly", test_readonly},
        {"errors", test_errors},
        {NULL, NULL},
    };
    cu_add_suite("schema_cluster", setup, teardown, cases);
}
