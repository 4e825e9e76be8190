/* Cluster test of logins and roles (README.md "SECURITY") on four real
 * ninesd with a cluster key (ninesctl is the admin), client_auth and
 * sql_auth scram-sha-256, users made with `ninesctl user add`:
 * - native clients (the C library): no login, a wrong password and an
 *   unknown user refused alike (NINES_EAUTH) while the others are served;
 *   a writer writes but gets NINES_EPERM for DDL and the user list; a
 *   reader reads but gets NINES_EPERM for a write; an admin does DDL and
 *   lists users; a changed password and a dropped user take effect on
 *   every node;
 * - SQL (psql): the same users with their passwords; 42501 for a statement
 *   beyond the role; 28P01 for a wrong password; the front end's own
 *   internal login serves every session. */
#include "clu.h"
#include "cu_test.h"
#include "nines/errors.h"
#include "nines/nines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct clu C;
static char kdir[64], keyfile[128];

static int setup(void)
{
    snprintf(kdir, sizeof kdir, "/tmp/nines_login_XXXXXX");
    if (!mkdtemp(kdir))
        return 1;
    snprintf(keyfile, sizeof keyfile, "%s/cluster.key", kdir);
    char cmd[512], extra[512];
    snprintf(cmd, sizeof cmd, "%s/ninesctl keygen %s >/dev/null",
             getenv("NINES_BIN") ? getenv("NINES_BIN") : "build/bin", keyfile);
    if (system(cmd) != 0) {
        printf("\nkeygen failed: %s\n", cmd);
        return 1;
    }
    snprintf(extra, sizeof extra, "cluster_key %s\nclient_auth scram-sha-256\n"
             "sql_auth scram-sha-256\n", keyfile);
    if (clu_setup_with(&C, 4, extra, 1))
        return 1;
    if (clu_run(&C, "ninesctl", 0, "status --wait-healthy 20") != 0) {
        printf("\nstatus: %s\n", C.out);
        return 1;
    }
    static const char *const adds[] = {
        "user add boss --role admin --password boss-pw",
        "user add wr --role writer --password wr-pw",
        "user add rd --role reader --password rd-pw",
        "create-table kv --columns \"k:int64,v:int64\" --key k --frags 4",
    };
    for (size_t i = 0; i < sizeof adds / sizeof adds[0]; i++)
        if (clu_run(&C, "ninesctl", 1, "%s", adds[i]) != 0) {
            printf("\n%s: %s\n", adds[i], C.out);
            return 1;
        }
    return 0;
}

static int teardown(void)
{
    int rc = clu_teardown(&C);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", kdir);
    return rc | (system(cmd) != 0);
}

/* Connect to node `node` as user/password (user NULL: no login). */
static int login(int node, const char *user, const char *pw, nines_conn **out)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", C.base_port + node);
    const char *addrs[] = {addr};
    struct nines_connect_opts o = {.flags = NINES_CONNECT_FIRST_NODE, .user = user ? user : "",
                                   .password = pw};
    *out = NULL;
    return nines_connect_with(out, addrs, 1, "clutest", 5000, &o);
}

static int put(nines_conn *c, int64_t k, int64_t v)
{
    nines_txn *t;
    int rc = nines_txn_begin(c, &t);
    if (rc)
        return rc;
    struct nines_value row[2] = {nines_v_int64(k), nines_v_int64(v)};
    rc = nines_txn_insert(t, "kv", row, 2);
    return rc ? (nines_txn_rollback(t), rc) : nines_txn_commit(t);
}

static int get(nines_conn *c, int64_t k, int64_t *v)
{
    nines_txn *t;
    int rc = nines_txn_begin(c, &t);
    if (rc)
        return rc;
    struct nines_value key = nines_v_int64(k);
    nines_row *r;
    rc = nines_txn_get(t, "kv", &key, 1, &r);
    if (rc == 0)
        *v = nines_row_value(r, 1).u.i64;
    int crc = nines_txn_commit(t);
    return rc ? rc : crc;
}

static int count_users(void *arg, const struct nines_user_info *u)
{
    (void)u;
    (*(int *)arg)++;
    return 0;
}

static void test_native(void)
{
    nines_conn *c;
    /* no login, a wrong password, an unknown user: refused alike */
    CU_ASSERT_EQUAL(login(1, NULL, NULL, &c), NINES_EAUTH);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "takes logins only"));
    CU_ASSERT_EQUAL(login(2, "wr", "wr-PW", &c), NINES_EAUTH);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "password authentication failed for user "
                                                     "\"wr\""));
    CU_ASSERT_EQUAL(login(2, "ghost", "wr-pw", &c), NINES_EAUTH);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "password authentication failed for user "
                                                     "\"ghost\""));
    /* the writer writes; schema and users are not its */
    CU_ASSERT_EQUAL_FATAL(login(2, "wr", "wr-pw", &c), 0);
    CU_ASSERT_EQUAL(nines_conn_role(c), NINES_ROLE_WRITER);
    CU_ASSERT_EQUAL(put(c, 1, 10), 0);
    CU_ASSERT_EQUAL(nines_table_drop(c, "kv"), NINES_EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "admin role"));
    int n = 0;
    CU_ASSERT_EQUAL(nines_users(c, count_users, &n), NINES_EPERM);
    CU_ASSERT_EQUAL(nines_user_create(c, "sneaky", NINES_ROLE_ADMIN, "x"), NINES_EPERM);
    nines_close(c);
    /* the reader reads; a write is refused, the connection serves on */
    CU_ASSERT_EQUAL_FATAL(login(3, "rd", "rd-pw", &c), 0);
    CU_ASSERT_EQUAL(nines_conn_role(c), NINES_ROLE_READER);
    int64_t v = 0;
    CU_ASSERT_EQUAL(get(c, 1, &v), 0);
    CU_ASSERT_EQUAL(v, 10);
    CU_ASSERT_EQUAL(put(c, 2, 20), NINES_EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "writer role"));
    CU_ASSERT_EQUAL(get(c, 1, &v), 0);
    nines_close(c);
    /* the admin changes the schema and lists users */
    CU_ASSERT_EQUAL_FATAL(login(4, "boss", "boss-pw", &c), 0);
    CU_ASSERT_EQUAL(nines_conn_role(c), NINES_ROLE_ADMIN);
    n = 0;
    CU_ASSERT_EQUAL(nines_users(c, count_users, &n), 0);
    CU_ASSERT_EQUAL(n, 3);
    /* a new password and a dropped user: on every node */
    CU_ASSERT_EQUAL(nines_user_alter(c, "wr", 0, "wr-new"), 0);
    CU_ASSERT_EQUAL(nines_user_drop(c, "rd"), 0);
    nines_close(c);
    for (int node = 1; node <= 4; node++) {
        CU_ASSERT_EQUAL(login(node, "wr", "wr-pw", &c), NINES_EAUTH);
        CU_ASSERT_EQUAL(login(node, "rd", "rd-pw", &c), NINES_EAUTH);
        CU_ASSERT_EQUAL(login(node, "wr", "wr-new", &c), 0);
        CU_ASSERT_EQUAL(put(c, 100 + node, node), 0);
        nines_close(c);
    }
    /* the admin tool with the key is served all along */
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 1, "user list"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "boss"));
    CU_ASSERT_PTR_NULL(strstr(C.out, "rd"));
    /* put things back for the SQL case */
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 1, "user add rd --role reader --password rd-pw"), 0);
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 1, "user passwd wr --password wr-pw"), 0);
}

/* psql as user with password on node 1: exit status, output in C.out */
static int psql_as(const char *user, const char *pw, const char *sql)
{
    return clu_sh(&C, "PGPASSWORD='%s' PGCONNECT_TIMEOUT=10 psql -X -q -h 127.0.0.1 -p %d -U %s "
                  "-d app -v ON_ERROR_STOP=1 -At -v VERBOSITY=verbose -c \"%s\" 2>&1", pw,
                  clu_sql_port(&C, 1), user, sql);
}

static void test_sql(void)
{
    if (system("command -v psql >/dev/null") != 0) {
        CU_FAIL("psql is needed (./build.sh installs postgresql-client-15)");
        return;
    }
    CU_ASSERT_EQUAL(psql_as("boss", "boss-pw", "create table s (k int primary key, v int)"), 0);
    CU_ASSERT_EQUAL(psql_as("wr", "wr-pw", "insert into s values (1, 5)"), 0);
    CU_ASSERT_NOT_EQUAL(psql_as("wr", "wr-pw", "create table s2 (k int primary key)"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "42501"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "CREATE TABLE needs the admin role"));
    CU_ASSERT_EQUAL(psql_as("rd", "rd-pw", "select v from s where k = 1"), 0);
    CU_ASSERT_STRING_EQUAL(C.out, "5\n");
    CU_ASSERT_NOT_EQUAL(psql_as("rd", "rd-pw", "update s set v = 6 where k = 1"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "42501"));
    CU_ASSERT_NOT_EQUAL(psql_as("rd", "rd-PW", "select 1"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "password authentication failed"));
    CU_ASSERT_EQUAL(psql_as("wr", "wr-pw", "select v from s where k = 1"), 0);
    CU_ASSERT_STRING_EQUAL(C.out, "5\n");
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"native", test_native},
        {"sql", test_sql},
        {NULL, NULL},
    };
    cu_add_suite("login_cluster", setup, teardown, cases);
}
