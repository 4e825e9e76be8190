/* sqle planning without a cluster: libpg_query parse trees → statements
 * (kind, key access, increments, parameter types, result columns) and every
 * unsupported construct's SQLSTATE and message; value conversion and
 * coercion; the COPY line format. Table definitions come from the engine's
 * test hook (struct sqle.test_table_get). */
#include "cu_test.h"
#include "sql/sqle_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a catalog of three tables ------------------------------------------- */

static struct nines_column acc_cols[] = {
    {.name = "aid", .type = NINES_T_INT32, .sqltype = OID_INT4, .sqltypmod = -1},
    {.name = "bid", .type = NINES_T_INT32, .nullable = 1, .sqltype = OID_INT4, .sqltypmod = -1},
    {.name = "abalance", .type = NINES_T_INT32, .nullable = 1, .sqltype = OID_INT4,
     .sqltypmod = -1},
    {.name = "filler", .type = NINES_T_STRING, .size = 84, .nullable = 1, .sqltype = OID_BPCHAR,
     .sqltypmod = 88},
};
static uint32_t acc_pk[] = {0};
static struct nines_column hist_cols[] = {
    {.name = "tid", .type = NINES_T_INT32, .nullable = 1, .sqltype = OID_INT4, .sqltypmod = -1},
    {.name = "delta", .type = NINES_T_INT32, .nullable = 1, .sqltype = OID_INT4, .sqltypmod = -1},
    {.name = "mtime", .type = NINES_T_TIMESTAMP, .nullable = 1, .sqltype = OID_TIMESTAMP,
     .sqltypmod = -1},
    {.name = "_nines_rowid", .type = NINES_T_INT64, .sqltype = OID_INT8, .sqltypmod = -1, .hidden = 1},
};
static uint32_t hist_pk[] = {3};
static struct nines_column sub_cols[] = {
    {.name = "imsi", .type = NINES_T_INT64, .sqltype = OID_INT8, .sqltypmod = -1},
    {.name = "slot", .type = NINES_T_INT32, .sqltype = OID_INT2, .sqltypmod = -1},
    {.name = "name", .type = NINES_T_VARSTRING, .size = 10, .nullable = 1, .sqltype = OID_VARCHAR,
     .sqltypmod = 14},
    {.name = "active", .type = NINES_T_INT32, .nullable = 1, .sqltype = OID_BOOL, .sqltypmod = -1},
};
static uint32_t sub_pk[] = {0, 1};

static int fake_get(void *ctx, const char *name, struct nines_table_info *out)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    out->def.method = 1;
    out->def.nfrags = 4;
    if (!strcmp(name, "accounts")) {
        out->id = 1;
        out->def.name = "accounts", out->def.ncols = 4, out->def.cols = acc_cols;
        out->def.npk = 1, out->def.pk = acc_pk;
        return 0;
    }
    if (!strcmp(name, "history")) {
        out->id = 2;
        out->def.name = "history", out->def.ncols = 4, out->def.cols = hist_cols;
        out->def.npk = 1, out->def.pk = hist_pk;
        return 0;
    }
    if (!strcmp(name, "sub")) {
        out->id = 3;
        out->def.name = "sub", out->def.ncols = 4, out->def.cols = sub_cols;
        out->def.npk = 2, out->def.pk = sub_pk;
        return 0;
    }
    return NINES_ENOTFOUND;
}

static struct sqle eng;
static struct sqle_sess sess;

static int setup(void)
{
    memset(&eng, 0, sizeof eng);
    eng.test_table_get = fake_get;
    memset(&sess, 0, sizeof sess);
    sess.e = &eng;
    snprintf(sess.user, sizeof sess.user, "tester");
    arena_init(&sess.txa, 1024);
    arena_init(&sess.copya, 1024);
    return 0;
}

static int teardown(void)
{
    arena_destroy(&sess.txa);
    arena_destroy(&sess.copya);
    return 0;
}

/* Parse one statement; NULL and *err filled on failure. */
static struct sqle_stmt *plan1(const char *sql, struct sqle_error *err)
{
    struct sqle_stmt **v = NULL;
    size_t n = 0;
    if (sqle_parse(&sess, sql, NULL, 0, 1, &v, &n, err))
        return NULL;
    CU_ASSERT_EQUAL_FATAL(n, 1);
    struct sqle_stmt *st = v[0];
    free(v);
    return st;
}

static void expect_err(const char *sql, const char *state, const char *needle)
{
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    struct sqle_stmt *st = plan1(sql, &err);
    if (st || strcmp(err.sqlstate, state) || (needle && !strstr(err.message, needle)))
        fprintf(stderr, "\n  %s\n  -> %s %s (wanted %s '%s')\n", sql, st ? "planned" : err.sqlstate,
                err.message, state, needle ? needle : "");
    CU_ASSERT_PTR_NULL(st);
    CU_ASSERT_STRING_EQUAL(err.sqlstate, state);
    if (needle)
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, needle));
    sqle_stmt_free(st);
}

/* ---- tests ------------------------------------------------------------- */

static void t_tpcb_update_is_increment(void)
{
    struct sqle_error err;
    struct sqle_stmt *st =
        plan1("UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->kind, K_UPDATE);
    CU_ASSERT_TRUE(st->pure_add);
    CU_ASSERT_EQUAL(st->nsets, 1);
    CU_ASSERT_EQUAL(st->sets[0].col, 2);
    CU_ASSERT_EQUAL(st->sel.w.access, A_POINT);
    CU_ASSERT_TRUE(st->sel.w.exact);
    /* both parameters take the type of the column they meet */
    CU_ASSERT_EQUAL(sqle_stmt_nparams(st), 2);
    CU_ASSERT_EQUAL(sqle_stmt_param_oid(st, 0), OID_INT4);
    CU_ASSERT_EQUAL(sqle_stmt_param_oid(st, 1), OID_INT4);
    sqle_stmt_free(st);
    /* d + col, and col - d, are increments too; an extra filter is not */
    st = plan1("update accounts set abalance = 5 + abalance where aid = 3", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_TRUE(st->pure_add);
    sqle_stmt_free(st);
    st = plan1("update accounts set abalance = abalance - 2 where aid = 3 and bid = 1", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_FALSE(st->pure_add);
    CU_ASSERT_TRUE(st->sets[0].add && st->sets[0].sub);
    CU_ASSERT_FALSE(st->sel.w.exact);
    sqle_stmt_free(st);
    st = plan1("update accounts set abalance = abalance * 2 where aid = 3", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_FALSE(st->pure_add);
    sqle_stmt_free(st);
}

static void t_select_access(void)
{
    struct sqle_error err;
    struct sqle_stmt *st = plan1("SELECT abalance FROM accounts WHERE aid = $1", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->kind, K_SELECT);
    CU_ASSERT_EQUAL(st->sel.w.access, A_POINT);
    CU_ASSERT_EQUAL(st->ncols, 1);
    CU_ASSERT_STRING_EQUAL(st->cols[0].name, "abalance");
    CU_ASSERT_EQUAL(st->cols[0].type_oid, OID_INT4);
    CU_ASSERT_EQUAL(st->cols[0].attnum, 3);
    CU_ASSERT_EQUAL(sqle_stmt_param_oid(st, 0), OID_INT4);
    sqle_stmt_free(st);
    st = plan1("select * from accounts where aid in (1, 2, 3)", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->sel.w.access, A_IN);
    CU_ASSERT_EQUAL(st->ncols, 4);
    sqle_stmt_free(st);
    st = plan1("select aid from accounts where aid between 10 and 20 order by aid limit 5", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->sel.w.access, A_RANGE);
    CU_ASSERT_PTR_NOT_NULL(st->sel.w.lo);
    CU_ASSERT_PTR_NOT_NULL(st->sel.w.hi);
    CU_ASSERT_TRUE(st->sel.order_key);
    sqle_stmt_free(st);
    /* a prefix of a two-column key with a range on the second */
    st = plan1("select name from sub where imsi = 7 and slot >= 2", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->sel.w.access, A_RANGE);
    CU_ASSERT_EQUAL(st->sel.w.neq, 1);
    sqle_stmt_free(st);
    st = plan1("select name from sub where imsi = 7 and slot = 2", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->sel.w.access, A_POINT);
    sqle_stmt_free(st);
    st = plan1("select count(*), sum(abalance), min(aid), max(aid) from accounts where bid = 1",
               &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_TRUE(st->sel.has_agg);
    CU_ASSERT_EQUAL(st->sel.w.access, A_SCAN);
    CU_ASSERT_EQUAL(st->cols[0].type_oid, OID_INT8);
    CU_ASSERT_STRING_EQUAL(st->cols[0].name, "count");
    CU_ASSERT_EQUAL(st->cols[1].type_oid, OID_INT8);
    CU_ASSERT_EQUAL(st->cols[2].type_oid, OID_INT4);
    CU_ASSERT_EQUAL(st->sel.naggs, 4);
    sqle_stmt_free(st);
    /* aggregates inside expressions (drivers send count(*)::int) */
    st = plan1("select count(*)::int, coalesce(sum(abalance), 0) + 1 as s1, max(aid) - min(aid), "
               "count(filler) from accounts", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_TRUE(st->sel.has_agg);
    CU_ASSERT_EQUAL(st->sel.naggs, 5);
    CU_ASSERT_STRING_EQUAL(st->cols[0].name, "count");
    CU_ASSERT_EQUAL(st->cols[0].type_oid, OID_INT4);
    CU_ASSERT_STRING_EQUAL(st->cols[1].name, "s1");
    CU_ASSERT_EQUAL(st->sel.aggs[0].kind, AG_COUNT_STAR);
    CU_ASSERT_EQUAL(st->sel.aggs[1].kind, AG_SUM);
    CU_ASSERT_EQUAL(st->sel.aggs[4].kind, AG_COUNT);
    sqle_stmt_free(st);
    /* no FROM */
    st = plan1("select 1 + 2 as three, now()", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_TRUE(st->no_from);
    CU_ASSERT_STRING_EQUAL(st->cols[0].name, "three");
    CU_ASSERT_EQUAL(st->cols[1].type_oid, OID_TIMESTAMPTZ);
    sqle_stmt_free(st);
}

static void t_insert_and_hidden_key(void)
{
    struct sqle_error err;
    struct sqle_stmt *st = plan1("INSERT INTO history (tid, delta, mtime) VALUES ($1, $2, "
                                 "CURRENT_TIMESTAMP), (1, 2, now())", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->kind, K_INSERT);
    CU_ASSERT_EQUAL(st->nrows, 2);
    CU_ASSERT_EQUAL(st->ninsert_cols, 3);
    CU_ASSERT_EQUAL(st->t.hidden, 3);
    CU_ASSERT_EQUAL(st->t.nvisible, 3);
    CU_ASSERT_EQUAL(sqle_stmt_param_oid(st, 0), OID_INT4);
    sqle_stmt_free(st);
    /* all visible columns when none are named: the hidden one is not one */
    st = plan1("insert into history values (1, 2, '2024-01-02 03:04:05')", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->ninsert_cols, 3);
    sqle_stmt_free(st);
    expect_err("insert into history values (1, 2, now(), 4)", "42601", "more expressions");
    expect_err("insert into history (nope) values (1)", "42703", "nope");
    expect_err("insert into history (tid, tid) values (1, 2)", "42701", "more than once");
    expect_err("insert into missing values (1)", "42P01", "\"missing\" does not exist");
}

static void t_create_table(void)
{
    struct sqle_error err;
    struct sqle_stmt *st = plan1(
        "create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) "
        "with (fillfactor=100)", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->kind, K_CREATE);
    /* no primary key: a hidden row key is added last */
    CU_ASSERT_EQUAL(st->def.ncols, 5);
    CU_ASSERT_TRUE(st->defcols[4].hidden);
    CU_ASSERT_EQUAL(st->defcols[4].type, NINES_T_INT64);
    CU_ASSERT_EQUAL(st->def.npk, 1);
    CU_ASSERT_EQUAL(st->defpk[0], 4);
    CU_ASSERT_EQUAL(st->defcols[3].type, NINES_T_STRING);
    CU_ASSERT_EQUAL(st->defcols[3].size, 84);
    CU_ASSERT_EQUAL(st->defcols[3].sqltype, OID_BPCHAR);
    CU_ASSERT_FALSE(st->defcols[0].nullable);
    sqle_stmt_free(st);
    st = plan1("create table s (imsi bigint, slot smallint, name varchar(10), on_ boolean, "
               "bal numeric(12,0), t timestamp, r real, b bytea, x text, primary key (imsi, "
               "slot)) with (fragments = 8, partition = hash, replicas = 2)", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->def.npk, 2);
    CU_ASSERT_EQUAL(st->def.nfrags, 8);
    CU_ASSERT_EQUAL(st->def.replicas, 2);
    CU_ASSERT_EQUAL(st->defcols[1].type, NINES_T_INT32);
    CU_ASSERT_EQUAL(st->defcols[1].sqltype, OID_INT2);
    CU_ASSERT_EQUAL(st->defcols[2].type, NINES_T_VARSTRING);
    CU_ASSERT_EQUAL(st->defcols[2].size, 10);
    CU_ASSERT_EQUAL(st->defcols[3].sqltype, OID_BOOL);
    CU_ASSERT_EQUAL(st->defcols[4].type, NINES_T_INT64);
    CU_ASSERT_EQUAL(st->defcols[4].sqltype, OID_NUMERIC);
    CU_ASSERT_EQUAL(st->defcols[5].type, NINES_T_TIMESTAMP);
    CU_ASSERT_EQUAL(st->defcols[6].type, NINES_T_DOUBLE);
    CU_ASSERT_EQUAL(st->defcols[7].type, NINES_T_VARBYTES);
    CU_ASSERT_FALSE(st->defcols[0].nullable); /* key columns are NOT NULL */
    sqle_stmt_free(st);
    st = plan1("create table r (k int primary key, v int) with (partition = range, splits = "
               "'100, 200')", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->def.method, 2);
    CU_ASSERT_EQUAL(st->def.nsplits, 2);
    CU_ASSERT_EQUAL(st->splits[1].u.i64, 200);
    sqle_stmt_free(st);
    expect_err("create table x (a int primary key, b int primary key)", "42P16", "multiple");
    expect_err("create table x (a int, b int, primary key (c))", "42703", "\"c\"");
    expect_err("create table x (a numeric(10,2))", "0A000", "numeric(10, 2)");
    expect_err("create table x (a int default 5)", "0A000", "defaults");
    expect_err("create table x (a int unique)", "0A000", "UNIQUE");
    expect_err("create table x (a int references y(b))", "0A000", "foreign keys");
    expect_err("create table x (a int check (a > 0))", "0A000", "CHECK");
    expect_err("create table x (a json)", "0A000", "type \"json\"");
    expect_err("create table x (a int[])", "0A000", "array");
    expect_err("create table x (a int) with (frobs = 1)", "22023", "frobs");
    expect_err("create table x (a int) partition by range (a)", "0A000", "PARTITION BY");
    expect_err("create temp table x (a int)", "0A000", "temporary");
    expect_err("create table x (a int primary key) with (partition = range)", "22023", "splits");
}

static void t_pgbench_statements(void)
{
    struct sqle_error err;
    static const struct { const char *sql; int kind; } ok[] = {
        {"drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, "
         "pgbench_tellers", K_DROP},
        {"truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
         K_TRUNCATE},
        {"copy pgbench_accounts from stdin with (freeze on)", K_COPY_FROM},
        {"vacuum analyze", K_NOOP},
        {"alter table accounts add primary key (aid)", K_ADD_PK},
        {"begin", K_BEGIN},
        {"start transaction isolation level serializable", K_BEGIN},
        {"end", K_COMMIT},
        {"commit", K_COMMIT},
        {"rollback", K_ROLLBACK},
        {"set application_name = 'x'", K_SET},
        {"set transaction isolation level repeatable read", K_NOOP},
        {"show server_version", K_SHOW},
        {"reset all", K_RESET},
        {"discard all", K_DISCARD},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct sqle_stmt *st = plan1(ok[i].sql, &err);
        if (!st)
            fprintf(stderr, "\n  %s -> %s %s\n", ok[i].sql, err.sqlstate, err.message);
        CU_ASSERT_PTR_NOT_NULL_FATAL(st);
        CU_ASSERT_EQUAL(st->kind, ok[i].kind);
        sqle_stmt_free(st);
    }
    struct sqle_stmt *st = plan1("drop table if exists a, b", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->nnames, 2);
    CU_ASSERT_TRUE(st->missing_ok);
    CU_ASSERT_STRING_EQUAL(st->names[1], "b");
    sqle_stmt_free(st);
}

static void t_unsupported(void)
{
    expect_err("select * from accounts a join history h on a.aid = h.tid", "0A000", "JOIN");
    expect_err("select * from accounts, history", "0A000", "joins");
    expect_err("select bid, count(*) from accounts group by bid", "0A000", "GROUP BY");
    expect_err("select distinct bid from accounts", "0A000", "DISTINCT");
    expect_err("select aid from accounts union select tid from history", "0A000", "UNION");
    expect_err("with x as (select 1) select * from x", "0A000", "WITH");
    expect_err("select * from accounts where aid in (select tid from history)", "0A000",
               "subquer");
    expect_err("select * from accounts for update", "0A000", "FOR UPDATE");
    expect_err("select case when aid > 1 then 1 end from accounts", "0A000", "CASE");
    expect_err("update accounts set aid = 5 where aid = 4", "0A000", "primary-key");
    expect_err("update accounts set abalance = 1 from history", "0A000", "FROM");
    expect_err("delete from accounts using history", "0A000", "USING");
    expect_err("insert into accounts select * from accounts", "0A000", "INSERT ... SELECT");
    expect_err("insert into accounts values (1, 1, 1, 'x') on conflict do nothing", "0A000",
               "ON CONFLICT");
    expect_err("insert into accounts values (1, 1, 1, 'x') returning aid", "0A000", "RETURNING");
    expect_err("savepoint a", "0A000", "savepoints");
    expect_err("create index i on accounts (bid)", "0A000", "CREATE INDEX");
    expect_err("create view v as select 1", "0A000", "VIEW");
    expect_err("explain select 1", "0A000", "EXPLAIN");
    expect_err("prepare p as select 1", "0A000", "PREPARE");
    expect_err("copy accounts to stdout", "0A000", "TO");
    expect_err("copy accounts from '/etc/passwd'", "0A000", "file");
    expect_err("copy accounts from stdin with (format csv)", "0A000", "csv");
    expect_err("drop index i", "0A000", "DROP TABLE");
    expect_err("alter table accounts add column x int", "0A000", "ADD PRIMARY KEY");
    expect_err("alter table accounts add foreign key (bid) references b (bid)", "0A000",
               "foreign");
    expect_err("select nosuch(1)", "42883", "nosuch");
    expect_err("select nope from accounts", "42703", "\"nope\"");
    expect_err("select * from other.accounts", "3F000", "\"other\"");
    expect_err("select current_date", "0A000", "CURRENT_DATE");
    expect_err("select array[1,2]", "0A000", "arrays");
    expect_err("select count(distinct aid) from accounts", "0A000", "DISTINCT");
    expect_err("select aid, count(*) from accounts", "42803", "GROUP BY");
    expect_err("select aid + count(*) from accounts", "42803", "GROUP BY");
    expect_err("select sum(count(*)) from accounts", "42803", "not nested");
    expect_err("select aid from accounts where count(*) > 1", "42803", "not allowed here");
    expect_err("update accounts set abalance = max(abalance) where aid = 1", "42803",
               "not allowed here");
    expect_err("declare c cursor for select aid from accounts", "0A000", "DECLARE CURSOR");
    expect_err("fetch 10 from c", "0A000", "DECLARE CURSOR");
    expect_err("listen chan", "0A000", "ListenStmt");
    /* every other refusal the planner has */
    static const struct { const char *sql, *state, *needle; } more[] = {
        {"create table x (a int generated always as identity)", "0A000", "identity"},
        {"create table x (like accounts)", "0A000", "LIKE"},
        {"create table x (a int, unique (a))", "0A000", "other than PRIMARY KEY"},
        {"create table x ()", "0A000", "at least one column"},
        {"create table x (a int) inherits (accounts)", "0A000", "INHERITS"},
        {"create table x (a int) with (partition = range, splits = '1')", "0A000",
         "needs a primary key"},
        {"copy accounts from stdin where aid > 1", "0A000", "WHERE"},
        {"copy accounts from stdin with (header)", "0A000", "\"header\""},
        {"copy accounts from stdin with (encoding 'latin1')", "0A000", "encoding"},
        {"select B'101'", "0A000", "bit-string"},
        {"select ~ 1", "0A000", "prefix or postfix operator ~"},
        {"select 1 ^ 2", "0A000", "operator ^"},
        {"select * from accounts where aid = any(array[1])", "0A000", "operator expression"},
        {"select row_number() over () from accounts", "0A000", "window functions"},
        {"select a.b.c.d from accounts", "0A000", "4 parts"},
        {"select current_time", "0A000", "CURRENT_DATE / CURRENT_TIME"},
        {"select count(*) filter (where aid > 1) from accounts", "0A000", "FILTER"},
        {"select aid from accounts order by aid using <", "0A000", "USING"},
        {"values (1)", "0A000", "VALUES as a query"},
        {"select 1 into t", "0A000", "SELECT INTO"},
        {"select aid from accounts window w as ()", "0A000", "WINDOW"},
        {"select * from (select 1) s", "0A000", "subqueries in FROM"},
        {"select * from generate_series(1, 2)", "0A000", "FROM item"},
        {"select 1 where true", "0A000", "WHERE without FROM"},
        {"select * from accounts order by aid fetch first 1 rows with ties", "0A000",
         "WITH TIES"},
        {"insert into accounts default values", "0A000", "DEFAULT VALUES"},
        {"update accounts set abalance = 1 returning aid", "0A000", "RETURNING"},
        {"delete from accounts returning aid", "0A000", "RETURNING"},
        {"with x as (select 1) update accounts set abalance = 1", "0A000", "WITH"},
        {"with x as (select 1) insert into accounts values (1, 1, 1, 'a')", "0A000", "WITH"},
        {"commit and chain", "0A000", "AND CHAIN"},
        {"rollback and chain", "0A000", "AND CHAIN"},
        {"prepare transaction 'x'", "0A000", "two-phase"},
        {"set search_path from current", "0A000", "FROM CURRENT"},
        {"drop view v", "0A000", "only DROP TABLE"},
        {"release savepoint a", "0A000", "savepoints"},
        {"rollback to savepoint a", "0A000", "savepoints"},
        {"select 1 intersect select 2", "0A000", "UNION / INTERSECT / EXCEPT"},
        {"select sum(aid order by aid) from accounts", "0A000", "ORDER BY"},
        {"listen x", "0A000", "not supported"},
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        expect_err(more[i].sql, more[i].state, more[i].needle);
}

static void t_syntax_error_position(void)
{
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    struct sqle_stmt *st = plan1("select * fromm accounts", &err);
    CU_ASSERT_PTR_NULL(st);
    CU_ASSERT_STRING_EQUAL(err.sqlstate, "42601");
    CU_ASSERT_EQUAL(err.position, 10); /* at "fromm", 1-based as PostgreSQL reports it */
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "syntax error"));
    /* Parse takes one statement */
    struct sqle_stmt **v = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(sqle_parse(&sess, "select 1; select 2", NULL, 0, 1, &v, &n, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.sqlstate, "42601");
    /* a simple query takes several, and an empty one none */
    CU_ASSERT_EQUAL(sqle_parse(&sess, "select 1; select 2;", NULL, 0, 0, &v, &n, &err), 0);
    CU_ASSERT_EQUAL(n, 2);
    for (size_t i = 0; i < n; i++)
        sqle_stmt_free(v[i]);
    free(v);
    CU_ASSERT_EQUAL(sqle_parse(&sess, " ; ", NULL, 0, 0, &v, &n, &err), 0);
    CU_ASSERT_EQUAL(n, 0);
    free(v);
}

static void t_catalog_shapes(void)
{
    struct sqle_error err;
    /* psql 15's \dt */
    struct sqle_stmt *st = plan1(
        "SELECT n.nspname as \"Schema\",\n  c.relname as \"Name\",\n  CASE c.relkind WHEN 'r' "
        "THEN 'table' WHEN 'v' THEN 'view' END as \"Type\",\n  "
        "pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\"\nFROM pg_catalog.pg_class c\n     "
        "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n     LEFT JOIN "
        "pg_catalog.pg_am am ON am.oid = c.relam\nWHERE c.relkind IN ('r','p','')\n      AND "
        "n.nspname <> 'pg_catalog'\n      AND n.nspname !~ '^pg_toast'\n      AND n.nspname <> "
        "'information_schema'\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 1,2;",
        &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->kind, K_CATALOG);
    CU_ASSERT_EQUAL(st->ncols, 4);
    CU_ASSERT_STRING_EQUAL(st->cols[1].name, "Name");
    sqle_stmt_free(st);
    /* \di asks for indexes only: the plan still parses (rows: none) */
    st = plan1("SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relkind IN ('i','')", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->kind, K_CATALOG);
    sqle_stmt_free(st);
}

static void t_values(void)
{
    struct arena a;
    arena_init(&a, 1024);
    struct sqle_error err;
    struct sv v;
    CU_ASSERT_EQUAL(sq_from_text(&a, OID_INT4, -1, " 42 ", 4, &v, &err, NULL), 0);
    CU_ASSERT_EQUAL(v.t, SV_INT);
    CU_ASSERT_EQUAL(v.i, 42);
    CU_ASSERT_EQUAL(sq_from_text(&a, OID_INT4, -1, "4x", 2, &v, &err, NULL), -1);
    CU_ASSERT_STRING_EQUAL(err.sqlstate, "22P02");
    CU_ASSERT_EQUAL(sq_from_text(&a, OID_INT4, -1, "3000000000", 10, &v, &err, NULL), -1);
    CU_ASSERT_STRING_EQUAL(err.sqlstate, "22003");
    CU_ASSERT_EQUAL(sq_from_text(&a, OID_INT2, -1, "40000", 5, &v, &err, NULL), -1);
    CU_ASSERT_STRING_EQUAL(err.sqlstate, "22003");
    CU_ASSERT_EQUAL(sq_from_text(&a, OID_BOOL, -1, "yes", 3, &v, &err, NULL), 0);
    CU_ASSERT_EQUAL(v.i, 1);
    CU_ASSERT_EQUAL(sq_from_text(&a, OID_TIMESTAMP, -1, "2024-02-03 04:05:06.5", 21, &v, &err,
                                 NULL), 0);
    char buf[64];
    sq_fmt_ts(v.i, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "2024-02-03 04:05:06.5");
    CU_ASSERT_EQUAL(sq_from_text(&a, OID_BYTEA, -1, "\\x00ff", 6, &v, &err, NULL), 0);
    CU_ASSERT_EQUAL(v.len, 2);
    const char *p;
    size_t n;
    CU_ASSERT_EQUAL(sq_to_text(&a, OID_BYTEA, &v, &p, &n), 0);
    CU_ASSERT_EQUAL(n, 6);
    CU_ASSERT_EQUAL(memcmp(p, "\\x00ff", 6), 0);
    /* char(n) pads, varchar(n) refuses longer, trailing blanks are dropped */
    struct sq_col c = {.oid = OID_BPCHAR, .type = NINES_T_STRING, .size = 5, .nullable = true};
    snprintf(c.name, sizeof c.name, "f");
    v = (struct sv){.t = SV_TEXT, .s = "ab", .len = 2};
    CU_ASSERT_EQUAL(sq_coerce(&a, &c, "t", &v, &err, 0), 0);
    CU_ASSERT_EQUAL(v.len, 5);
    CU_ASSERT_EQUAL(memcmp(v.s, "ab   ", 5), 0);
    c.oid = OID_VARCHAR, c.type = NINES_T_VARSTRING, c.size = 3;
    v = (struct sv){.t = SV_TEXT, .s = "abcd", .len = 4};
    CU_ASSERT_EQUAL(sq_coerce(&a, &c, "t", &v, &err, 0), -1);
    CU_ASSERT_STRING_EQUAL(err.sqlstate, "22001");
    v = (struct sv){.t = SV_TEXT, .s = "abc  ", .len = 5};
    CU_ASSERT_EQUAL(sq_coerce(&a, &c, "t", &v, &err, 0), 0);
    CU_ASSERT_EQUAL(v.len, 3);
    /* NOT NULL */
    c.nullable = false;
    v = (struct sv){0};
    CU_ASSERT_EQUAL(sq_coerce(&a, &c, "t", &v, &err, 0), -1);
    CU_ASSERT_STRING_EQUAL(err.sqlstate, "23502");
    /* an untyped literal into an int column */
    struct sq_col ic = {.oid = OID_INT4, .type = NINES_T_INT32, .nullable = true};
    snprintf(ic.name, sizeof ic.name, "i");
    v = (struct sv){.t = SV_TEXT, .s = "12", .len = 2};
    CU_ASSERT_EQUAL(sq_coerce(&a, &ic, "t", &v, &err, 0), 0);
    CU_ASSERT_EQUAL(v.t, SV_INT);
    v = (struct sv){.t = SV_TEXT, .s = "zz", .len = 2};
    CU_ASSERT_EQUAL(sq_coerce(&a, &ic, "t", &v, &err, 0), -1);
    CU_ASSERT_STRING_EQUAL(err.sqlstate, "22P02");
    arena_destroy(&a);
}

static void t_eval(void)
{
    struct sqle_error err;
    struct sqle_stmt *st = plan1("select 2147483647 + 1", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    struct arena a;
    arena_init(&a, 1024);
    struct sq_eval ev = {.s = &sess, .a = &a, .params = NULL, .row = NULL, .err = &err};
    struct sv v;
    CU_ASSERT_EQUAL(sq_eval(&ev, st->sel.targets[0].e, &v), -1);
    CU_ASSERT_STRING_EQUAL(err.sqlstate, "22003");
    sqle_stmt_free(st);
    st = plan1("select 7 / 0", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(sq_eval(&ev, st->sel.targets[0].e, &v), -1);
    CU_ASSERT_STRING_EQUAL(err.sqlstate, "22012");
    sqle_stmt_free(st);
    st = plan1("select 'ab' || 'cd' like 'a%d', 3 in (1, 2, 3), null is null, coalesce(null, 5)",
               &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(sq_eval(&ev, st->sel.targets[i].e, &v), 0);
        CU_ASSERT_EQUAL(v.t, SV_BOOL);
        CU_ASSERT_EQUAL(v.i, 1);
    }
    CU_ASSERT_EQUAL(sq_eval(&ev, st->sel.targets[3].e, &v), 0);
    CU_ASSERT_EQUAL(v.i, 5);
    sqle_stmt_free(st);
    arena_destroy(&a);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"tpcb_update_is_increment", t_tpcb_update_is_increment},
        {"select_access", t_select_access},
        {"insert_and_hidden_key", t_insert_and_hidden_key},
        {"create_table", t_create_table},
        {"pgbench_statements", t_pgbench_statements},
        {"unsupported", t_unsupported},
        {"syntax_error_position", t_syntax_error_position},
        {"catalog_shapes", t_catalog_shapes},
        {"values", t_values},
        {"eval", t_eval},
        {NULL, NULL},
    };
    cu_add_suite("sqle_plan", setup, teardown, cases);
}
