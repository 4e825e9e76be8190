/* Config parser: valid files, defaults, and every rejection names file,
 * line and the offending value. */
#include "conf.h"
#include "cu_test.h"
#include "nines/errors.h"

#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* a well-formed sql_user verifier (shape only: conf.c does not decode it) */
#define TEST_VERIFIER                                                                        \
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:" \
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

static const char *good =
    "# comment\n"
    "cluster   test  # trailing comment\n"
    "heartbeat_ms 20\n"
    "transport rdma\n"
    "disk_log off\n"
    "checkpoint_interval_ms 0\n"
    "disk_log_buffer_mb 2\n"
    "repair_after_ms 0\n"
    "takeback_ms 250\n"
    "gcp_interval_ms 0\n"
    "arbitrator 10.0.0.9:7000\n"
    "\n"
    "node 1 site 0 127.0.0.1:7001 data /tmp/n1\n"
    "node 2 site 1 127.0.0.1:7002\n"
    "node 7 site 1 10.1.2.3:7002";

static void test_good(void)
{
    struct nines_conf c;
    CU_ASSERT_EQUAL_FATAL(nines_conf_parse(good, "g.conf", &c), 0);
    CU_ASSERT_STRING_EQUAL(c.cluster, "test");
    CU_ASSERT_EQUAL(c.nnodes, 3);
    CU_ASSERT_EQUAL(c.heartbeat_ms, 20);
    CU_ASSERT_EQUAL(c.heartbeat_misses, 5); /* default kept */
    CU_ASSERT_STRING_EQUAL(c.transport, "rdma");
    CU_ASSERT_EQUAL(c.disk_log, NINES_DISK_LOG_OFF);
    CU_ASSERT_EQUAL(c.checkpoint_interval_ms, 0); /* only on demand */
    CU_ASSERT_EQUAL(c.disk_log_buffer_mb, 2);
    CU_ASSERT_EQUAL(c.repair_after_ms, 0); /* never */
    CU_ASSERT_TRUE(c.takeback);
    CU_ASSERT_EQUAL(c.takeback_ms, 250);
    CU_ASSERT_EQUAL(c.gcp_interval_ms, 0); /* off */
    CU_ASSERT_EQUAL(c.max_client_connections, 1024);     /* defaults of the limits */
    CU_ASSERT_EQUAL(c.max_requests_per_connection, 256);
    CU_ASSERT_EQUAL(c.memory_budget_mb, 0);
    struct nines_conf l;
    CU_ASSERT_EQUAL_FATAL(nines_conf_parse("cluster a\nmax_client_connections 7\n"
                                           "max_requests_per_connection 3\nmemory_budget_mb 64\n"
                                           "node 1 site 0 h:1\nnode 2 site 1 h:2\n", "l.conf", &l),
                          0);
    CU_ASSERT_EQUAL(l.max_client_connections, 7);
    CU_ASSERT_EQUAL(l.max_requests_per_connection, 3);
    CU_ASSERT_EQUAL(l.memory_budget_mb, 64);
    CU_ASSERT_TRUE(c.has_arbitrator);
    CU_ASSERT_STRING_EQUAL(c.arbitrator_host, "10.0.0.9");
    CU_ASSERT_EQUAL(c.arbitrator_port, 7000);
    CU_ASSERT_STRING_EQUAL(c.arbitrator_data, "");
    static const char *with_data = "cluster a\narbitrator 10.0.0.9:7000 data /var/arb\n"
                                   "node 1 site 0 h:1\nnode 2 site 1 h:2\n";
    struct nines_conf d;
    CU_ASSERT_EQUAL_FATAL(nines_conf_parse(with_data, "d.conf", &d), 0);
    CU_ASSERT_STRING_EQUAL(d.arbitrator_data, "/var/arb");
    CU_ASSERT_EQUAL(d.disk_log, NINES_DISK_LOG_OFF); /* the default */
    CU_ASSERT_EQUAL(d.checkpoint_interval_ms, 60000); /* the default */
    CU_ASSERT_EQUAL(d.disk_log_buffer_mb, 64);        /* the default */
    /* the policies; `on` is `async` (files written before the policies) */
    static const struct {
        const char *word;
        enum nines_disk_log v;
    } pol[] = {{"off", NINES_DISK_LOG_OFF}, {"on", NINES_DISK_LOG_ASYNC},
               {"async", NINES_DISK_LOG_ASYNC}, {"sync", NINES_DISK_LOG_SYNC}};
    for (size_t i = 0; i < sizeof pol / sizeof pol[0]; i++) {
        char text[200];
        snprintf(text, sizeof text, "cluster a\ndisk_log %s\nnode 1 site 0 h:1 data /d1\n"
                 "node 2 site 1 h:2 data /d2\n", pol[i].word);
        struct nines_conf e;
        CU_ASSERT_EQUAL_FATAL(nines_conf_parse(text, "p.conf", &e), 0);
        CU_ASSERT_EQUAL(e.disk_log, pol[i].v);
    }
    CU_ASSERT_STRING_EQUAL(nines_disk_log_name(NINES_DISK_LOG_SYNC), "sync");
    CU_ASSERT_EQUAL(d.repair_after_ms, 60000); /* the default */
    CU_ASSERT_TRUE(d.takeback);   /* the default: on, after 1 s */
    CU_ASSERT_EQUAL(d.takeback_ms, 1000);
    CU_ASSERT_EQUAL(d.gcp_interval_ms, 100); /* the default */
    struct nines_conf f;
    CU_ASSERT_EQUAL_FATAL(nines_conf_parse("cluster a\ntakeback_ms off\nnode 1 site 0 h:1\n"
                                           "node 2 site 1 h:2\n", "f.conf", &f), 0);
    CU_ASSERT_FALSE(f.takeback);
    CU_ASSERT_EQUAL(d.arbitrator_port, 7000);
    const struct nines_node_conf *n7 = nines_conf_node(&c, 7);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n7);
    CU_ASSERT_EQUAL(n7->site, 1);
    CU_ASSERT_STRING_EQUAL(n7->host, "10.1.2.3");
    CU_ASSERT_EQUAL(n7->port, 7002);
    CU_ASSERT_STRING_EQUAL(nines_conf_node(&c, 1)->data_dir, "/tmp/n1");
    CU_ASSERT_PTR_NULL(nines_conf_node(&c, 3));
}

struct bad_case {
    const char *text;
    const char *expect; /* substring of the detail */
};

static const struct bad_case bad[] = {
    {"node 1 site 0 h:1\nnode 2 site 1 h:2\n", "no 'cluster NAME'"},
    {"cluster x\n", "no 'node' lines"},
    {"cluster x\nnode 1 site 0 h:1\n", "site 1 has no nodes"},
    {"cluster x\nnode 0 site 0 h:1\n", ":2: node id '0'"},
    {"cluster x\nnode 65 site 0 h:1\n", "node id '65'"},
    {"cluster x\nnode 1 site 2 h:1\n", "site '2' must be 0 or 1"},
    {"cluster x\nnode 1 site 0 h:0\n", "address 'h:0'"},
    {"cluster x\nnode 1 site 0 h:99999\n", "address 'h:99999'"},
    {"cluster x\nnode 1 site 0 nohost\n", "address 'nohost'"},
    {"cluster x\nnode 1 sight 0 h:1\n", "expected 'site'"},
    {"cluster x\nnode 1 site 0 h:1\nnode 1 site 1 h:2\n", ":3: node id 1 is defined twice"},
    {"cluster x\nnode 1 site 0 h:1\nnode 2 site 1 h:1\n", "already used by node 1"},
    {"cluster x\nnode 1 site 0\n", "got 4 words"},
    {"cluster x\nheartbeat_ms 0\n", "heartbeat_ms '0' must be a number in 1..60000"},
    {"cluster x\nheartbeat_ms 12abc\n", "heartbeat_ms '12abc'"},
    {"cluster x\nheartbeat_ms -5\n", "heartbeat_ms '-5'"},
    {"cluster x\nbogus 1\n", "unknown setting 'bogus'"},
    {"cluster x\nmax_client_connections 0\n", "max_client_connections '0' must be a number in 1.."},
    {"cluster x\nmax_requests_per_connection 0\n", "max_requests_per_connection '0'"},
    {"cluster x\nmemory_budget_mb 99999999\n", "memory_budget_mb '99999999'"},
    {"cluster x\ntransport udp\n", "transport 'udp' must be tcp or rdma"},
    {"cluster x\ndisk_log yes\n", "disk_log 'yes' must be off, async (or on) or sync"},
    {"cluster x\ndisk_log sync\nnode 1 site 0 h:1 data /d\nnode 2 site 1 h:2\n",
     "disk_log sync, but node 2 has no data folder"},
    {"cluster x\ncheckpoint_interval_ms 50\n",
     ":2: checkpoint_interval_ms '50' must be 0 (only on demand: ninesctl checkpoint) or a "
     "number of milliseconds in 1000..86400000"},
    {"cluster x\ncheckpoint_interval_ms 86400001\n", "checkpoint_interval_ms '86400001'"},
    {"cluster x\ncheckpoint_interval_ms 1m\n", "checkpoint_interval_ms '1m' must be 0"},
    {"cluster x\ncheckpoint_interval_ms -1\n", "checkpoint_interval_ms '-1'"},
    {"cluster x\nrepair_after_ms 86400001\n", "repair_after_ms"},
    {"cluster x\ngcp_interval_ms 5\n",
     ":2: gcp_interval_ms '5' must be 0 (off: no commit epochs) or a number of milliseconds in "
     "10..60000"},
    {"cluster x\ngcp_interval_ms 60001\n", "gcp_interval_ms '60001'"},
    {"cluster x\ngcp_interval_ms 1s\n", "gcp_interval_ms '1s' must be 0"},
    {"cluster x\ntakeback_ms soon\n", "takeback_ms 'soon' must be off or a number in 0..3600000"},
    {"cluster x y\n", "'cluster' takes exactly one value, got 2"},
    {"cluster x\narbitrator 1.2.3.4\n", "arbitrator address '1.2.3.4'"},
    {"cluster x\narbitrator h:9 data\n", "expected 'arbitrator HOST:PORT [data DIR]'"},
    {"cluster x\narbitrator h:9 dir /tmp\n", "expected 'data DIR' after the arbitrator"},
    {"cluster x\narbitrator h:9\narbitrator h:8\n", ":3: a second 'arbitrator' line"},
    {"cluster x\narbitrator h:1\nnode 1 site 0 h:1\nnode 2 site 1 h:2\n",
     "arbitrator address h:1 is node 1's address"},
    {"cluster x\nreconnect_min_ms 500\nreconnect_max_ms 100\nnode 1 site 0 h:1\nnode 2 site 1 h:2\n",
     "reconnect_min_ms 500 is above reconnect_max_ms 100"},
    /* the SQL front end's keys (sql/README.md) */
    {"cluster x\nnode 1 site 0 h:1 sql h:0\n", ":2: sql address 'h:0' is not HOST:PORT"},
    {"cluster x\nnode 1 site 0 h:1 sql\n", "got 6 words"},
    {"cluster x\nnode 1 site 0 h:1 sql h:5 sql h:6\n", "got 'sql'"},
    {"cluster x\nnode 1 site 0 h:1 psql h:5\n", "expected 'data DIR' or 'sql HOST:PORT'"},
    {"cluster x\nnode 1 site 0 h:1 sql h:2\nnode 2 site 1 h:2\n",
     "node 1's sql address h:2 is node 2's node address"},
    {"cluster x\nnode 1 site 0 h:1 sql h:5\nnode 2 site 1 h:2 data /d sql h:5\n",
     "sql address h:5 is used by nodes 1 and 2"},
    {"cluster x\nsql_auth md5\n", ":2: sql_auth 'md5' must be trust or scram-sha-256"},
    {"cluster x\nclient_auth md5\n", ":2: client_auth 'md5' must be trust or scram-sha-256"},
    {"cluster x\nsql_user bob hunter2\n", ":2: sql_user bob: the verifier does not start with"},
    {"cluster x\nsql_user bob SCRAM-SHA-256$0:c2FsdA==$YQ==:YQ==\n", "iteration count"},
    {"cluster x\nsql_user bob SCRAM-SHA-256$4096:c2Fsd$YQ==:YQ==\n", "salt"},
    {"cluster x\nsql_user bob SCRAM-SHA-256$4096:c2FsdA==$YQ==:YQ==\n", "StoredKey"},
    {"cluster x\nsql_user bob SCRAM-SHA-256$4096\n", "is not SCRAM-SHA-256$<iterations>"},
    {"cluster x\nsql_user bob\n", "expected 'sql_user NAME VERIFIER'"},
    {"cluster x\nsql_user bob " TEST_VERIFIER "\nsql_user bob " TEST_VERIFIER "\n",
     ":3: sql_user bob is defined twice"},
    {"cluster x\nsql_max_connections 0\n", "sql_max_connections '0' must be a number in 1.."},
    {"cluster x\nsql_max_message_bytes 10\n", "sql_max_message_bytes '10'"},
    {NULL, NULL},
};

static void test_sql(void)
{
    struct nines_conf c;
    CU_ASSERT_EQUAL_FATAL(nines_conf_parse(good, "g.conf", &c), 0);
    CU_ASSERT_EQUAL(c.sql_auth, NINES_SQL_AUTH_TRUST); /* the defaults */
    CU_ASSERT_EQUAL(c.sql_max_connections, 100);
    CU_ASSERT_EQUAL(c.sql_max_message_bytes, 16u << 20);
    CU_ASSERT_EQUAL(c.sql_nusers, 0);
    CU_ASSERT_FALSE(nines_conf_node(&c, 1)->has_sql);
    static const char *text =
        "cluster s\nsql_auth scram-sha-256\nsql_max_connections 3\n"
        "sql_max_message_bytes 65536\nclient_auth scram-sha-256\nclient_user ops\n"
        "client_password_file /etc/ninesdb/ops.pw\n"
        "sql_user alice " TEST_VERIFIER "\n"
        "node 1 site 0 h:1 data /d1 sql 127.0.0.1:5401\n"
        "node 2 site 1 h:2 sql h:5402 data /d2\n"
        "node 3 site 1 h:3\n";
    struct nines_conf s;
    CU_ASSERT_EQUAL_FATAL(nines_conf_parse(text, "s.conf", &s), 0);
    CU_ASSERT_EQUAL(s.sql_auth, NINES_SQL_AUTH_SCRAM);
    CU_ASSERT_EQUAL(c.client_auth, NINES_CLIENT_AUTH_TRUST); /* the default */
    CU_ASSERT_EQUAL(s.client_auth, NINES_CLIENT_AUTH_SCRAM);
    CU_ASSERT_STRING_EQUAL(s.client_user, "ops");
    CU_ASSERT_STRING_EQUAL(s.client_password_file, "/etc/ninesdb/ops.pw");
    CU_ASSERT_EQUAL(s.sql_max_connections, 3);
    CU_ASSERT_EQUAL(s.sql_max_message_bytes, 65536);
    CU_ASSERT_EQUAL(s.sql_nusers, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nines_conf_sql_user(&s, "alice"));
    CU_ASSERT_STRING_EQUAL(nines_conf_sql_user(&s, "alice")->verifier, TEST_VERIFIER);
    CU_ASSERT_PTR_NULL(nines_conf_sql_user(&s, "bob"));
    const struct nines_node_conf *n1 = nines_conf_node(&s, 1), *n2 = nines_conf_node(&s, 2);
    CU_ASSERT_TRUE(n1->has_sql);
    CU_ASSERT_STRING_EQUAL(n1->sql_host, "127.0.0.1");
    CU_ASSERT_EQUAL(n1->sql_port, 5401);
    CU_ASSERT_STRING_EQUAL(n1->data_dir, "/d1");
    CU_ASSERT_TRUE(n2->has_sql);
    CU_ASSERT_EQUAL(n2->sql_port, 5402);
    CU_ASSERT_STRING_EQUAL(n2->data_dir, "/d2");
    CU_ASSERT_FALSE(nines_conf_node(&s, 3)->has_sql);
}

static void test_bad(void)
{
    for (const struct bad_case *b = bad; b->text; b++) {
        struct nines_conf c;
        int rc = nines_conf_parse(b->text, "bad.conf", &c);
        CU_ASSERT_EQUAL(rc, NINES_ECONFIG);
        if (!strstr(nines_errdetail(), b->expect) || !strstr(nines_errdetail(), "bad.conf")) {
            printf("\n  case %d: detail '%s' lacks '%s'\n", (int)(b - bad), nines_errdetail(),
                   b->expect);
            CU_FAIL("error detail does not name the problem");
        }
    }
}

static void test_load_file(void)
{
    char path[] = "/tmp/nines_conf_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, good, strlen(good)), (ssize_t)strlen(good));
    close(fd);
    struct nines_conf c;
    CU_ASSERT_EQUAL(nines_conf_load(path, &c), 0);
    CU_ASSERT_STRING_EQUAL(c.path, path);
    /* a binary file is refused */
    fd = open(path, O_WRONLY | O_TRUNC);
    CU_ASSERT_EQUAL(write(fd, "cluster x\n\0\1\2", 13), 13);
    close(fd);
    CU_ASSERT_EQUAL(nines_conf_load(path, &c), NINES_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "NUL byte"));
    unlink(path);
    CU_ASSERT_EQUAL(nines_conf_load("/nonexistent/x.conf", &c), NINES_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "/nonexistent/x.conf"));
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    CU_ASSERT_EQUAL(fchmod(fd, mode), 0);
    close(fd);
}

static void test_example_file(void)
{
    struct nines_conf c;
    /* the embedded default names a key that tools/cluster.sh makes on the
     * first start: read it with a key of our own at that path */
    char text[8192], path[] = "/tmp/nines_conf_XXXXXX", kp[64], cp[64];
    FILE *f = fopen("tools/local4.conf", "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(path));
    snprintf(kp, sizeof kp, "%s/k", path);
    snprintf(cp, sizeof cp, "%s/c.conf", path);
    write_file(kp, NINES_KEY_HEADER "\n"
               "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
    char *at = strstr(text, "build/cluster/cluster.key");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    char out[8300];
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, kp,
             at + strlen("build/cluster/cluster.key"));
    write_file(cp, out, 0644);
    CU_ASSERT_EQUAL_FATAL(nines_conf_load(cp, &c), 0);
    CU_ASSERT_TRUE(c.has_key);
    CU_ASSERT_EQUAL(c.client_auth, NINES_CLIENT_AUTH_SCRAM);
    CU_ASSERT_EQUAL(c.sql_auth, NINES_SQL_AUTH_SCRAM);
    CU_ASSERT_STRING_EQUAL(c.client_user, "admin");
    unlink(kp);
    unlink(cp);
    rmdir(path);
    CU_ASSERT_EQUAL(c.nnodes, 4);
    unsigned sites[2] = {0, 0};
    for (unsigned i = 0; i < c.nnodes; i++)
        sites[c.nodes[i].site]++;
    CU_ASSERT_EQUAL(sites[0], 2);
    CU_ASSERT_EQUAL(sites[1], 2);
    for (unsigned i = 0; i < c.nnodes; i++) /* node N: its SQL listener on 540N */
        CU_ASSERT_TRUE(c.nodes[i].has_sql && c.nodes[i].sql_port == 5400 + c.nodes[i].id);
    CU_ASSERT_EQUAL_FATAL(nines_conf_load("tools/local4-dlog.conf", &c), 0);
    CU_ASSERT_TRUE(c.nodes[0].has_sql);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"good file", test_good},
        {"bad files name file, line and value", test_bad},
        {"sql listener, auth and users", test_sql},
        {"load from disk", test_load_file},
        {"embedded default local4.conf", test_example_file},
        {NULL, NULL},
    };
    cu_add_suite("conf", NULL, NULL, cases);
}
