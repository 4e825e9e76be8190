/* Cluster test of the SQL front end on four real ninesd processes, driven
 * by PostgreSQL's own programs (psql and pgbench, Debian packages
 * postgresql-client-15 and postgresql-15, installed by build.sh; no
 * PostgreSQL server runs):
 * - unmodified `pgbench -i -s 2`, then `pgbench -T 5 -c 4` in each of
 *   -M simple, extended and prepared: 0 failed transactions each, and the
 *   TPC-B invariant afterwards (sum abalance = sum tbalance = sum bbalance
 *   = sum of history deltas) through SQL, and every standby equal to its
 *   primary through `ninesctl replicas`;
 * - psql's \dt and \d NAME;
 * - errors with their SQLSTATEs: syntax (with position), unknown table and
 *   column, duplicate key, a failed transaction block (25P02 until
 *   ROLLBACK), unsupported constructs (0A000), a COPY with a bad row
 *   (22P02 naming line and column, nothing loaded), a type error in a
 *   parameter, a value out of range;
 * - WHERE on other columns (filters the engine hands to the kernels) over
 *   20000 rows loaded by COPY: counts and rows equal to what the data's
 *   formula gives, for every pushed comparison kind, flipped operands,
 *   parameters, NULLs, NaN, and for conditions the kernels never see (OR,
 *   char(n), a bare boolean); ORDER BY the key DESC with LIMIT;
 * - a deadlock between two sessions (40P01 for one, the other commits)
 *   and a lock wait beyond the lock timeout (55P03). */
#include "clu.h"
#include "cu_test.h"

#include <libpq-fe.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct clu C;
static char PSQL[512];

static int setup(void)
{
    if (system("command -v psql >/dev/null && command -v pgbench >/dev/null") != 0) {
        fprintf(stderr, "sql_cluster_test: psql and pgbench are needed (./build.sh installs "
                        "postgresql-client-15 and postgresql-15)\n");
        return 1;
    }
    if (clu_setup_with(&C, 4, NULL, 1))
        return 1;
    if (clu_run(&C, "ninesctl", 0, "status --wait-healthy 20") != 0)
        return 1;
    snprintf(PSQL, sizeof PSQL, "PGCONNECT_TIMEOUT=10 psql -X -q -h 127.0.0.1 -p %d -U tester "
             "-d sqltest -v ON_ERROR_STOP=1 -At", clu_sql_port(&C, 1));
    return 0;
}

static int teardown(void) { return clu_teardown(&C); }

/* psql -c SQL on node `node`: exit status; output in C.out. */
static int sql_on(int node, const char *sql)
{
    char esc[2048];
    size_t k = 0;
    for (const char *p = sql; *p && k + 5 < sizeof esc; p++) {
        if (*p == '\'') {
            memcpy(esc + k, "'\\''", 4);
            k += 4;
        } else {
            esc[k++] = *p;
        }
    }
    esc[k] = 0;
    return clu_sh(&C, "PGCONNECT_TIMEOUT=10 psql -X -q -h 127.0.0.1 -p %d -U tester -d sqltest "
                  "-v ON_ERROR_STOP=1 -At -v VERBOSITY=verbose -c '%s' 2>&1",
                  clu_sql_port(&C, node), esc);
}
static int sql(const char *s) { return sql_on(1, s); }

static long long sql_num(const char *s)
{
    if (sql(s) != 0) {
        printf("\n%s: %s\n", s, C.out);
        return -999999999;
    }
    return atoll(C.out);
}

#define EXPECT_STATE(stmt, state)                                                         \
    do {                                                                                  \
        int rc_ = sql(stmt);                                                              \
        if (rc_ == 0 || !strstr(C.out, state))                                            \
            printf("\n%s\n  -> rc %d: %s\n", stmt, rc_, C.out);                           \
        CU_ASSERT_NOT_EQUAL(rc_, 0);                                                      \
        CU_ASSERT_PTR_NOT_NULL(strstr(C.out, state));                                     \
    } while (0)

static void test_basic_sql(void)
{
    CU_ASSERT_EQUAL(sql("create table sub (imsi bigint primary key, msisdn varchar(16) not "
                        "null, credit int, active boolean, since timestamp) with (fragments = "
                        "8)"), 0);
    CU_ASSERT_EQUAL(sql("insert into sub values (1, '4790000001', 100, true, "
                        "'2026-01-02 03:04:05'), (2, '4790000002', 50, false, null), "
                        "(3, '4790000003', 0, true, now())"), 0);
    CU_ASSERT_EQUAL(sql_num("select count(*) from sub"), 3);
    CU_ASSERT_EQUAL(sql_num("select sum(credit) from sub where active"), 100);
    CU_ASSERT_EQUAL(sql("select msisdn, active, since from sub where imsi = 1"), 0);
    CU_ASSERT_STRING_EQUAL(C.out, "4790000001|t|2026-01-02 03:04:05\n");
    CU_ASSERT_EQUAL(sql("select imsi from sub where imsi between 2 and 3 order by imsi desc"),
                    0);
    CU_ASSERT_STRING_EQUAL(C.out, "3\n2\n");
    CU_ASSERT_EQUAL(sql("select imsi from sub where imsi in (3, 1, 7) order by 1 limit 1"), 0);
    CU_ASSERT_STRING_EQUAL(C.out, "1\n");
    CU_ASSERT_EQUAL(sql("update sub set credit = credit + 25 where imsi = 2"), 0);
    CU_ASSERT_EQUAL(sql_num("select credit from sub where imsi = 2"), 75);
    CU_ASSERT_EQUAL(sql("update sub set credit = credit * 2, active = true where credit < 80"),
                    0);
    CU_ASSERT_EQUAL(sql_num("select sum(credit) from sub"), 100 + 150 + 0);
    CU_ASSERT_EQUAL(sql("delete from sub where imsi = 3"), 0);
    CU_ASSERT_EQUAL(sql_num("select count(*) from sub"), 2);
    /* UPDATE of an absent key: 0 rows, the block goes on */
    CU_ASSERT_EQUAL(sql("begin; update sub set credit = credit + 1 where imsi = 99; update sub "
                        "set credit = credit + 1 where imsi = 1; commit"), 0);
    CU_ASSERT_EQUAL(sql_num("select credit from sub where imsi = 1"), 101);
    /* outside a block the increment rides on the commit: a missing row is
     * still UPDATE 0, and an existing one is changed */
    CU_ASSERT_EQUAL(sql("update sub set credit = credit + 1 where imsi = 98"), 0);
    CU_ASSERT_STRING_EQUAL(C.out, "");
    CU_ASSERT_EQUAL(sql_on(2, "update sub set credit = credit - 1 where imsi = 1"), 0);
    CU_ASSERT_EQUAL(sql_num("select credit from sub where imsi = 1"), 100);
    CU_ASSERT_EQUAL(sql("update sub set credit = credit + 1 where imsi = 1"), 0);
    /* with nines.defer_updates on, a block's increment is answered at once;
     * a missing row then rolls the whole block back (P0002) */
    CU_ASSERT_EQUAL(clu_sh(&C, "PGOPTIONS='-c nines.defer_updates=on' PGCONNECT_TIMEOUT=10 psql "
                           "-X -h 127.0.0.1 -p %d -U tester -d sqltest -At -v VERBOSITY=verbose "
                           "-c 'begin' -c 'update sub set credit = credit + 5 where imsi = 1' "
                           "-c 'update sub set credit = credit + 5 where imsi = 97' "
                           "-c 'select credit from sub where imsi = 1' -c 'commit' 2>&1",
                           clu_sql_port(&C, 3)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "UPDATE 1\nUPDATE 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "P0002"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "ROLLBACK"));
    CU_ASSERT_EQUAL(sql_num("select credit from sub where imsi = 1"), 101);
    /* and when the rows exist, the block commits every increment */
    CU_ASSERT_EQUAL(clu_sh(&C, "PGOPTIONS='-c nines.defer_updates=on' PGCONNECT_TIMEOUT=10 psql "
                           "-X -h 127.0.0.1 -p %d -U tester -d sqltest -At -c 'begin' "
                           "-c 'update sub set credit = credit + 5 where imsi = 1' "
                           "-c 'select credit from sub where imsi = 1' "
                           "-c 'update sub set credit = credit + 5 where imsi = 2' -c 'commit' "
                           "2>&1", clu_sql_port(&C, 4)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "106\n"));
    CU_ASSERT_EQUAL(sql_num("select credit from sub where imsi = 2"), 155);
    CU_ASSERT_EQUAL(sql("update sub set credit = credit - 5 where imsi = 1"), 0);
    CU_ASSERT_EQUAL(sql("update sub set credit = credit - 5 where imsi = 2"), 0);
    /* ROLLBACK undoes */
    CU_ASSERT_EQUAL(sql("begin; update sub set credit = 0 where imsi = 1; rollback"), 0);
    CU_ASSERT_EQUAL(sql_num("select credit from sub where imsi = 1"), 101);
    /* TRUNCATE empties, the table stays */
    CU_ASSERT_EQUAL(sql("truncate sub"), 0);
    CU_ASSERT_EQUAL(sql_num("select count(*) from sub"), 0);
    /* a table without a primary key, then one added online */
    CU_ASSERT_EQUAL(sql("create table nokey (a int, b text)"), 0);
    CU_ASSERT_EQUAL(sql("insert into nokey values (1, 'x'), (2, 'y'), (2, 'z')"), 0);
    CU_ASSERT_EQUAL(sql_num("select count(*) from nokey"), 3);
    EXPECT_STATE("alter table nokey add primary key (a)", "23505");
    CU_ASSERT_EQUAL(sql("delete from nokey where b = 'z'"), 0);
    CU_ASSERT_EQUAL(sql("alter table nokey add primary key (a)"), 0);
    CU_ASSERT_EQUAL(sql("select b from nokey where a = 2"), 0);
    CU_ASSERT_STRING_EQUAL(C.out, "y\n");
    EXPECT_STATE("insert into nokey values (2, 'again')", "23505");
    CU_ASSERT_EQUAL(sql("drop table nokey"), 0);
    CU_ASSERT_EQUAL(sql("drop table if exists nokey"), 0);
    EXPECT_STATE("drop table nokey", "42P01");
}

static void test_errors(void)
{
    EXPECT_STATE("selec 1", "42601");
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "LINE 1: selec 1")); /* psql shows the position */
    EXPECT_STATE("select * from nosuch", "42P01");
    EXPECT_STATE("select nope from sub", "42703");
    EXPECT_STATE("select * from sub a join sub b on a.imsi = b.imsi", "0A000");
    EXPECT_STATE("select imsi, count(*) from sub group by imsi", "0A000");
    EXPECT_STATE("insert into sub values (1, '1', 1, true, null), (1, '2', 2, true, null)",
                 "23505");
    EXPECT_STATE("insert into sub (imsi, msisdn, credit) values (5, '5', 'abc')", "22P02");
    EXPECT_STATE("insert into sub (imsi, msisdn, credit) values (5, '5', 3000000000)", "22003");
    EXPECT_STATE("insert into sub (imsi, msisdn) values (6, '01234567890123456789')", "22001");
    EXPECT_STATE("insert into sub (imsi) values (7)", "23502");
    EXPECT_STATE("select 1/0", "22012");
    /* a failed block: 25P02 until ROLLBACK; COMMIT then rolls back */
    int rc = clu_sh(&C, "printf 'begin;\\ninsert into sub (imsi, msisdn) values (10, $$a$$);\\n"
                        "select * from nosuch;\\nselect 1;\\ncommit;\\nselect count(*) from sub "
                        "where imsi = 10;\\n' | PGCONNECT_TIMEOUT=10 psql -X -h 127.0.0.1 -p %d "
                        "-U tester -d sqltest -At -v VERBOSITY=verbose 2>&1",
                    clu_sql_port(&C, 2));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "42P01"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "25P02"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "ROLLBACK"));
    const char *last = strrchr(C.out, '\n');
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\n0\n"));
    (void)last;
    /* COPY with a bad row: 22P02 naming line and column, nothing loaded */
    rc = clu_sh(&C, "printf '20\\t20\\t1\\tt\\t\\\\N\\n21\\t21\\tx1\\tt\\t\\\\N\\n' | "
                    "PGCONNECT_TIMEOUT=10 psql -X -h 127.0.0.1 -p %d -U tester -d sqltest -At "
                    "-v VERBOSITY=verbose -c 'copy sub from stdin' 2>&1", clu_sql_port(&C, 3));
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "22P02"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "line 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "credit"));
    CU_ASSERT_EQUAL(sql_num("select count(*) from sub where imsi >= 20 and imsi <= 21"), 0);
    /* and a good COPY (with the old \. end marker) loads */
    rc = clu_sh(&C, "printf '20\\t20\\t1\\tt\\t\\\\N\\n21\\t21\\t2\\tf\\t2026-05-06 "
                    "07:08:09\\n\\\\.\\n' | PGCONNECT_TIMEOUT=10 psql -X -h 127.0.0.1 -p %d "
                    "-U tester -d sqltest -At -c 'copy sub from stdin' 2>&1",
                clu_sql_port(&C, 4));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(sql_num("select sum(credit) from sub where imsi >= 20 and imsi <= 21"), 3);
}

static void test_psql_describe(void)
{
    CU_ASSERT_EQUAL(clu_sh(&C, "%s -c '\\dt' 2>&1", PSQL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "public|sub|table|tester"));
    CU_ASSERT_EQUAL(clu_sh(&C, "%s -c '\\d sub' 2>&1", PSQL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "msisdn|character varying(16)||not null|"));
    /* the footers only show in the aligned format */
    CU_ASSERT_EQUAL(clu_sh(&C, "PGCONNECT_TIMEOUT=10 psql -X -h 127.0.0.1 -p %d -U tester -d "
                           "sqltest -c '\\d sub' 2>&1", clu_sql_port(&C, 2)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "Table \"public.sub\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"sub_pkey\" PRIMARY KEY, btree (imsi)"));
    clu_sh(&C, "PGCONNECT_TIMEOUT=10 psql -X -h 127.0.0.1 -p %d -U tester -d sqltest -c "
           "'\\d nosuch' 2>&1", clu_sql_port(&C, 2));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "Did not find any relation named \"nosuch\""));
    /* \d+ (storage), \l, \dn, \du answered, not rows of NULLs */
    CU_ASSERT_EQUAL(clu_sh(&C, "%s -c '\\d+ sub' 2>&1", PSQL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "imsi|bigint||not null||plain|"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "msisdn|character varying(16)||not null||extended|"));
    CU_ASSERT_EQUAL(clu_sh(&C, "%s -c '\\l' 2>&1", PSQL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "sqltest|tester|UTF8|C|C|"));
    CU_ASSERT_EQUAL(clu_sh(&C, "%s -c '\\dn' 2>&1", PSQL), 0);
    CU_ASSERT_STRING_EQUAL(C.out, "public|tester\n");
    CU_ASSERT_EQUAL(clu_sh(&C, "%s -c '\\du' 2>&1", PSQL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "tester|Superuser"));
    /* what drivers ask at connect */
    CU_ASSERT_EQUAL(sql_num("select current_setting('server_version_num')::int"), 150000);
    EXPECT_STATE("select current_setting('no_such_setting')", "42704");
    CU_ASSERT_EQUAL(sql("select current_setting('no_such_setting', true) is null"), 0);
    CU_ASSERT_STRING_EQUAL(C.out, "t\n");
}

static void test_pgbench(void)
{
    /* the sanitizer build runs the nodes several times slower: scale 1 and
     * 2-second runs there (the same statements and checks) */
    const char *bin = getenv("NINES_BIN");
    bool asan = bin && (strstr(bin, "asan") || strstr(bin, "tsan")); /* a sanitizer build */
    int scale = asan ? 1 : 2, secs = asan ? 2 : 5;
    int rc = clu_sh(&C, "PGCONNECT_TIMEOUT=10 pgbench -i -s %d -h 127.0.0.1 -p %d -U tester "
                    "sqltest 2>&1", scale, clu_sql_port(&C, 2));
    if (rc)
        printf("\n%s\n", C.out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(sql_num("select count(*) from pgbench_accounts"), 100000 * scale);
    static const char *const modes[] = {"simple", "extended", "prepared"};
    for (int m = 0; m < 3; m++) {
        /* -n: no vacuum step (it would truncate pgbench_history, and the
         * invariant below sums the history of all three runs) */
        /* the prepared run with deferred increments (one cluster round trip
         * for the account's UPDATE and SELECT, one for the commit) */
        rc = clu_sh(&C, "PGOPTIONS='%s' PGCONNECT_TIMEOUT=10 pgbench -n -T %d -c 4 -M %s "
                    "-h 127.0.0.1 -p %d -U tester sqltest 2>&1",
                    m == 2 ? "-c nines.defer_updates=on" : "", secs, modes[m],
                    clu_sql_port(&C, 1 + m));
        if (rc || !strstr(C.out, "number of failed transactions: 0 "))
            printf("\npgbench -M %s:\n%s\n", modes[m], C.out);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "number of failed transactions: 0 "));
        const char *p = strstr(C.out, "actually processed: ");
        CU_ASSERT_PTR_NOT_NULL(p);
        CU_ASSERT_TRUE(p && atol(p + 20) > 0);
    }
    long long a = sql_num("select sum(abalance) from pgbench_accounts");
    long long t = sql_num("select sum(tbalance) from pgbench_tellers");
    long long b = sql_num("select sum(bbalance) from pgbench_branches");
    long long h = sql_num("select sum(delta) from pgbench_history");
    long long n = sql_num("select count(*) from pgbench_history");
    printf("\n  [TPC-B invariant: accounts %lld, tellers %lld, branches %lld, history %lld in "
           "%lld rows]\n", a, t, b, h, n);
    CU_ASSERT_TRUE(n > 0);
    CU_ASSERT_EQUAL(a, t);
    CU_ASSERT_EQUAL(t, b);
    CU_ASSERT_EQUAL(b, h);
    rc = clu_run(&C, "ninesctl", 1, "replicas");
    if (rc)
        printf("\n%s\n", C.out);
    CU_ASSERT_EQUAL(rc, 0);
}

/* Binary parameters and results (what JDBC sends for numbers, times and
 * bytes) through libpq's extended protocol: every type both ways. */
static void test_binary_formats(void)
{
    char conninfo[160];
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=tester dbname=sqltest "
             "connect_timeout=10", clu_sql_port(&C, 1));
    PGconn *pc = PQconnectdb(conninfo);
    CU_ASSERT_EQUAL_FATAL(PQstatus(pc), CONNECTION_OK);
    PGresult *r = PQexec(pc, "create table bin_t (k bigint primary key, i int, s smallint, "
                             "d double precision, b boolean, t timestamp, y bytea, v varchar(10), "
                             "n numeric(12,0))");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    /* binary parameters: int8, int4, int2, float8, bool, timestamp, bytea, text, numeric */
    uint8_t k[8] = {0, 0, 0, 0, 0, 0, 0x01, 0x02};          /* 258 */
    uint8_t i4[4] = {0xff, 0xff, 0xff, 0xfe};                /* -2 */
    uint8_t i2[2] = {0x00, 0x07};                            /* 7 */
    uint8_t f8[8] = {0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18};  /* pi */
    uint8_t b1[1] = {1};
    /* 2026-01-02 03:04:05.5 UTC in µs since 2000-01-01 */
    int64_t ts = (INT64_C(1767323045) - INT64_C(946684800)) * 1000000 + 500000;
    uint8_t t8[8];
    for (int j = 0; j < 8; j++)
        t8[j] = (uint8_t)((uint64_t)ts >> (56 - 8 * j));
    uint8_t y[3] = {0x00, 0xab, 0xff};
    /* numeric 123456789012: digits 1234 5678 9012, weight 2 */
    uint8_t nm[14] = {0, 3, 0, 2, 0, 0, 0, 0, 0x04, 0xd2, 0x16, 0x2e, 0x23, 0x34};
    const char *vals[9] = {(char *)k, (char *)i4, (char *)i2, (char *)f8, (char *)b1,
                           (char *)t8, (char *)y, "abc", (char *)nm};
    int lens[9] = {8, 4, 2, 8, 1, 8, 3, 3, 14};
    int fmts[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    Oid types[9] = {20, 23, 21, 701, 16, 1114, 17, 1043, 1700};
    r = PQexecParams(pc, "insert into bin_t values ($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9,
                     types, vals, lens, fmts, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        printf("\ninsert: %s\n", PQresultErrorMessage(r));
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    /* text results show what arrived */
    r = PQexec(pc, "select k, i, s, b, t, y, v, n from bin_t");
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "258");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 1), "-2");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 2), "7");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 3), "t");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 4), "2026-01-02 03:04:05.5");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 5), "\\x00abff");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 6), "abc");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 7), "123456789012");
    PQclear(r);
    /* binary results: the same bytes come back */
    const char *kv = "258";
    r = PQexecParams(pc, "select k, i, s, d, b, t, y, v, n from bin_t where k = $1", 1, NULL,
                     &kv, NULL, NULL, 1);
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL_FATAL(PQntuples(r), 1);
    const uint8_t *want[9] = {k, i4, i2, f8, b1, t8, y, (const uint8_t *)"abc", nm};
    for (int c = 0; c < 9; c++) {
        CU_ASSERT_EQUAL(PQfformat(r, c), 1);
        CU_ASSERT_EQUAL(PQgetlength(r, 0, c), lens[c]);
        if (PQgetlength(r, 0, c) == lens[c])
            CU_ASSERT_EQUAL(memcmp(PQgetvalue(r, 0, c), want[c], (size_t)lens[c]), 0);
    }
    PQclear(r);
    /* a binary int4 of the wrong length is refused, the session goes on */
    const char *bad = "\x01\x02";
    int badlen = 2, one = 1;
    Oid t4 = 23;
    r = PQexecParams(pc, "select k from bin_t where i = $1", 1, &t4, &bad, &badlen, &one, 0);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
    CU_ASSERT_STRING_EQUAL(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22P03");
    PQclear(r);
    r = PQexec(pc, "select count(*) from bin_t");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    PQfinish(pc);
}

/* A prepared statement in one session outlives a re-keying of its table by
 * another (ALTER TABLE ... ADD PRIMARY KEY replaces the table): it is
 * planned again and keeps working, as in PostgreSQL; the rows are all there. */
static void test_replan_after_rekey(void)
{
    char conninfo[160];
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=tester dbname=sqltest "
             "connect_timeout=10", clu_sql_port(&C, 1));
    PGconn *pc = PQconnectdb(conninfo);
    CU_ASSERT_EQUAL_FATAL(PQstatus(pc), CONNECTION_OK);
    PGresult *r = PQexec(pc, "create table rk (id int, v int)");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQprepare(pc, "ins", "insert into rk values ($1, $2)", 0, NULL);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQprepare(pc, "get", "select v from rk where id = $1", 0, NULL);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    char a[16], b[16];
    const char *pv[2] = {a, b};
    for (int i = 1; i <= 20; i++) {
        snprintf(a, sizeof a, "%d", i);
        snprintf(b, sizeof b, "%d", i * 10);
        r = PQexecPrepared(pc, "ins", 2, pv, NULL, NULL, 0);
        CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
    }
    /* another session (another node's front end) re-keys the table */
    CU_ASSERT_EQUAL(sql_on(2, "alter table rk add primary key (id)"), 0);
    for (int i = 21; i <= 30; i++) {
        snprintf(a, sizeof a, "%d", i);
        snprintf(b, sizeof b, "%d", i * 10);
        r = PQexecPrepared(pc, "ins", 2, pv, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            printf("\ninsert %d after re-key: %s\n", i, PQresultErrorMessage(r));
        CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
    }
    /* the key is a key now: a duplicate through the old prepared statement is 23505 */
    snprintf(a, sizeof a, "%d", 5);
    r = PQexecPrepared(pc, "ins", 2, pv, NULL, NULL, 0);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
    if (PQresultStatus(r) == PGRES_FATAL_ERROR)
        CU_ASSERT_STRING_EQUAL(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23505");
    PQclear(r);
    snprintf(a, sizeof a, "%d", 7);
    const char *one[1] = {a};
    r = PQexecPrepared(pc, "get", 1, one, NULL, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL(PQntuples(r), 1);
    if (PQntuples(r) == 1)
        CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "70");
    PQclear(r);
    r = PQexec(pc, "select count(*), sum(v) from rk");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "30");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 1), "4650");
    PQclear(r);
    PQfinish(pc);
}

/* f(id, tag, name, score, flag, code): the formula the rows are loaded by */
#define FROWS 20000
static int ftag(int id) { return (int)((long long)id * 7919 % 1000); }
static bool fnull(int id) { return id % 7 == 0; }

static long long fcount(bool (*pred)(int))
{
    long long n = 0;
    for (int id = 1; id <= FROWS; id++)
        n += pred(id);
    return n;
}
static bool p_tag_low_named(int id) { return ftag(id) < 100 && !fnull(id); }
static bool p_tag_ge_990(int id) { return ftag(id) >= 990; }
static bool p_score(int id) { return id / 2.0 > 9000.25 && id / 2.0 <= 9500; }
static bool p_null_even(int id) { return fnull(id) && id % 2 == 0; }
static bool p_ne(int id) { return ftag(id) != 5 && id <= 1000; }
static bool p_or(int id) { return ftag(id) == 7 || id == 3; }
static bool p_code(int id) { return id % 3 == 1 && ftag(id) < 50; }
static bool p_flag(int id) { return id % 2 == 0 && ftag(id) > 900; }

static void test_kernel_filters(void)
{
    CU_ASSERT_EQUAL_FATAL(sql("create table f (id int primary key, tag int, name text, score "
                              "double precision, flag boolean, code char(4)) with (fragments = "
                              "4)"), 0);
    char path[64];
    snprintf(path, sizeof path, "/tmp/nines-sqlf-%d.copy", (int)getpid());
    FILE *fp = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    for (int id = 1; id <= FROWS; id++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n%d", id);
        fprintf(fp, "%d\t%d\t%s\t%.1f\t%s\tx%d\n", id, ftag(id), fnull(id) ? "\\N" : nm,
                id / 2.0, id % 2 == 0 ? "t" : "f", id % 3);
    }
    CU_ASSERT_EQUAL_FATAL(fclose(fp), 0);
    int crc = clu_sh(&C, "%s -c 'copy f from stdin' < %s 2>&1", PSQL, path);
    if (crc)
        printf("\ncopy: %s\n", C.out);
    CU_ASSERT_EQUAL_FATAL(crc, 0);
    unlink(path);
    CU_ASSERT_EQUAL(sql_num("select count(*) from f"), FROWS);
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where tag < 100 and name is not null"),
                    fcount(p_tag_low_named));
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where 990 <= tag"), fcount(p_tag_ge_990));
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where score > 9000.25 and score <= 9500"),
                    fcount(p_score));
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where name is null and flag = true"),
                    fcount(p_null_even));
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where tag <> 5 and id <= 1000"),
                    fcount(p_ne));
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where tag = 7 or id = 3"), fcount(p_or));
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where code = 'x1' and tag < 50"),
                    fcount(p_code));
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where flag and tag > 900"), fcount(p_flag));
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where name = 'n4243'"), 1);
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where name >= 'n9' and name < 'n90'"), 1);
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where tag = 5000000000"), 0);
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where tag = 1.5"), 0);
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where tag < 2.5 and tag > 1.5"),
                    FROWS / 1000);
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where tag = null"), 0);
    /* aggregates inside expressions, as drivers write them */
    long long tsum = 0;
    for (int id = 1; id <= 100; id++)
        tsum += ftag(id);
    CU_ASSERT_EQUAL(sql("select count(*)::int, coalesce(sum(tag), 0) + 1, max(id) - min(id), "
                        "count(name) from f where id <= 100"), 0);
    char agg[96];
    snprintf(agg, sizeof agg, "100|%lld|99|%d\n", tsum + 1, 100 - 100 / 7);
    CU_ASSERT_STRING_EQUAL(C.out, agg);
    CU_ASSERT_EQUAL(sql("select coalesce(sum(tag), -1) from f where id < 0"), 0);
    CU_ASSERT_STRING_EQUAL(C.out, "-1\n");
    /* the largest keys whose tag is 7, descending, three of them */
    char want[128] = "";
    for (int id = FROWS, n = 0; id > 0 && n < 3; id--)
        if (ftag(id) == 7)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%d\n", id), n++;
    CU_ASSERT_EQUAL(sql("select id from f where tag = 7 order by id desc limit 3"), 0);
    CU_ASSERT_STRING_EQUAL(C.out, want);
    /* NaN sorts above every number (PostgreSQL), equals itself, nothing else */
    CU_ASSERT_EQUAL(sql("insert into f values (30000, 1, 'nan', 'NaN', false, 'x9')"), 0);
    CU_ASSERT_EQUAL(sql("select id from f where score > 1e300"), 0);
    CU_ASSERT_STRING_EQUAL(C.out, "30000\n");
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where score = 'NaN'"), 1);
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where score = 15000"), 0);
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where score < 'NaN'"), FROWS);
    /* parameters (extended protocol): typed from the column */
    char conninfo[160];
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=tester dbname=sqltest "
             "connect_timeout=10", clu_sql_port(&C, 2));
    PGconn *pc = PQconnectdb(conninfo);
    CU_ASSERT_EQUAL_FATAL(PQstatus(pc), CONNECTION_OK);
    const char *pv[2] = {"990", "n5"};
    PGresult *r = PQexecParams(pc, "select count(*) from f where tag >= $1 and name >= $2", 2,
                               NULL, pv, NULL, NULL, 0);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_TUPLES_OK);
    long long n = 0;
    for (int id = 1; id <= FROWS; id++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n%d", id);
        n += ftag(id) >= 990 && !fnull(id) && strcmp(nm, "n5") >= 0;
    }
    CU_ASSERT_EQUAL(PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : -1, n);
    PQclear(r);
    /* an UPDATE and a DELETE through a filtered scan */
    r = PQexecParams(pc, "update f set score = -1 where tag = $1", 1, NULL, (const char *[]){"3"},
                     NULL, NULL, 0);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    CU_ASSERT_STRING_EQUAL(PQcmdTuples(r), "20");
    PQclear(r);
    PQfinish(pc);
    CU_ASSERT_EQUAL(sql_num("select count(*) from f where score = -1"), FROWS / 1000);
    CU_ASSERT_EQUAL(sql("delete from f where score < 0"), 0);
    CU_ASSERT_EQUAL(sql_num("select count(*) from f"), FROWS + 1 - FROWS / 1000);
    CU_ASSERT_EQUAL(sql("drop table f"), 0);
}

static PGconn *pq_on(int node)
{
    char conninfo[160];
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=tester dbname=sqltest "
             "connect_timeout=10", clu_sql_port(&C, node));
    PGconn *pc = PQconnectdb(conninfo);
    if (PQstatus(pc) != CONNECTION_OK)
        printf("\nconnect to node %d: %s\n", node, PQerrorMessage(pc));
    return pc;
}

/* run sql, expect the status; returns the SQLSTATE ("" when none) */
static const char *pq_run(PGconn *pc, const char *sql, ExecStatusType want)
{
    static char state[8];
    PGresult *r = PQexec(pc, sql);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof state, "%s", st ? st : "");
    if (PQresultStatus(r) != want)
        printf("\n%s: %s %s\n", sql, PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
    CU_ASSERT_EQUAL(PQresultStatus(r), want);
    PQclear(r);
    return state;
}

/* the outcome of an async statement: its SQLSTATE ("" when it succeeded) */
static void pq_outcome(PGconn *pc, char *state, size_t n)
{
    PGresult *r;
    state[0] = 0;
    while ((r = PQgetResult(pc)) != NULL) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (st && !state[0])
            snprintf(state, n, "%s", st);
        PQclear(r);
    }
}

static void test_lock_conflicts(void)
{
    /* one fragment: both rows on one kernel, whose lock manager sees the cycle */
    CU_ASSERT_EQUAL_FATAL(sql("create table d (k int primary key, v int) with (fragments = 1)"), 0);
    CU_ASSERT_EQUAL_FATAL(sql("insert into d values (1, 0), (2, 0), (3, 0)"), 0);
    PGconn *a = pq_on(1), *b = pq_on(2);
    CU_ASSERT_FATAL(PQstatus(a) == CONNECTION_OK && PQstatus(b) == CONNECTION_OK);
    /* each reads one row (S), then writes the other's */
    pq_run(a, "begin", PGRES_COMMAND_OK);
    pq_run(b, "begin", PGRES_COMMAND_OK);
    pq_run(a, "select v from d where k = 1", PGRES_TUPLES_OK);
    pq_run(b, "select v from d where k = 2", PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL(PQsendQuery(a, "update d set v = 10 where k = 2; select v from d where "
                                   "k = 2"), 1);
    CU_ASSERT_EQUAL(PQsendQuery(b, "update d set v = 20 where k = 1; select v from d where "
                                   "k = 1"), 1);
    char sa[8], sb[8];
    pq_outcome(a, sa, sizeof sa);
    pq_outcome(b, sb, sizeof sb);
    /* one victim, told 40P01; the other goes on and commits */
    bool a_victim = !strcmp(sa, "40P01"), b_victim = !strcmp(sb, "40P01");
    if (a_victim == b_victim)
        printf("\ndeadlock: a '%s', b '%s'\n", sa, sb);
    CU_ASSERT(a_victim != b_victim);
    CU_ASSERT_STRING_EQUAL(a_victim ? sb : sa, "");
    PGconn *win = a_victim ? b : a, *lose = a_victim ? a : b;
    CU_ASSERT_STRING_EQUAL(pq_run(lose, "select 1", PGRES_FATAL_ERROR), "25P02");
    pq_run(lose, "rollback", PGRES_COMMAND_OK);
    pq_run(win, "commit", PGRES_COMMAND_OK);
    CU_ASSERT_EQUAL(sql_num("select sum(v) from d"), a_victim ? 20 : 10);

    /* a lock held past the lock timeout: 55P03, the holder unaffected */
    pq_run(a, "begin", PGRES_COMMAND_OK);
    pq_run(a, "update d set v = 5 where k = 3", PGRES_COMMAND_OK);
    pq_run(a, "select v from d where k = 3", PGRES_TUPLES_OK);
    CU_ASSERT_STRING_EQUAL(pq_run(b, "update d set v = 6 where k = 3", PGRES_FATAL_ERROR),
                           "55P03");
    pq_run(a, "commit", PGRES_COMMAND_OK);
    CU_ASSERT_EQUAL(sql_num("select v from d where k = 3"), 5);
    PQfinish(a);
    PQfinish(b);
    CU_ASSERT_EQUAL(sql("drop table d"), 0);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"basic_sql", test_basic_sql},
        {"errors", test_errors},
        {"psql_describe", test_psql_describe},
        {"binary_formats", test_binary_formats},
        {"replan_after_rekey", test_replan_after_rekey},
        {"kernel_filters", test_kernel_filters},
        {"lock_conflicts", test_lock_conflicts},
        {"pgbench", test_pgbench},
        {NULL, NULL},
    };
    cu_add_suite("sql_cluster", setup, teardown, cases);
}
