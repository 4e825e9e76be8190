/* The PostgreSQL wire protocol front end (sql/README.md "Protocol"): the
 * SQL server runs in this process against the fake engine of pgw_fake.inc
 * and is driven with libpq (trust and SCRAM-SHA-256 logins, simple and
 * extended queries, COPY, cancel) and with raw sockets (row-limited
 * Execute, malformed and hostile input). No timing assertions and no
 * sleeps: waits are on the fake engine's condition variable or on the
 * socket, each with a generous deadline. */
#include "pgw_fake.inc"

#include "conf.h"
#include "cu_test.h"
#include "nines/errors.h"
#include "sql/pgw.h"
#include "scram.h"
#include "sql/sql_srv.h"

#include <arpa/inet.h>
#include <sched.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_S 10
#define PASSWORD "s3cret"

static struct sql_srv *trust_srv, *scram_srv;
static uint16_t trust_port, scram_port;

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* A server on a fresh port with `extra` cluster-file lines. */
static struct sql_srv *start_srv(const char *extra, uint16_t *port)
{
    static char text[4096];
    *port = free_port();
    snprintf(text, sizeof text, "cluster t\n%snode 1 site 0 127.0.0.1:%u sql 127.0.0.1:%u\n"
             "node 2 site 1 127.0.0.1:%u\n", extra, free_port(), *port, free_port());
    static struct nines_conf conf; /* sql_srv_start copies it */
    if (nines_conf_parse(text, "pgw.conf", &conf)) {
        printf("\n  conf: %s\n", nines_errdetail());
        return NULL;
    }
    struct sql_srv *srv = NULL;
    if (sql_srv_start(&conf, 1, "pgw.conf", &srv)) {
        printf("\n  sql_srv_start: %s\n", nines_errdetail());
        return NULL;
    }
    return srv;
}

static int suite_init(void)
{
    trust_srv = start_srv("sql_max_message_bytes 65536\n", &trust_port);
    char verifier[NINES_SQL_VERIFIER_MAX], extra[512];
    if (scram_verifier_make(PASSWORD, strlen(PASSWORD), NULL, 0, SCRAM_ITERATIONS, verifier,
                            sizeof verifier))
        return -1;
    snprintf(extra, sizeof extra, "sql_auth scram-sha-256\nsql_user alice %s\n", verifier);
    scram_srv = start_srv(extra, &scram_port);
    return trust_srv && scram_srv ? 0 : -1;
}

static int suite_fini(void)
{
    sql_srv_stop(trust_srv);
    sql_srv_stop(scram_srv);
    trust_srv = scram_srv = NULL;
    return 0;
}

static PGconn *connect_to(uint16_t port, const char *more)
{
    char info[1024];
    snprintf(info, sizeof info, "host=127.0.0.1 port=%u connect_timeout=%d %s", port,
             DEADLINE_S, more);
    return PQconnectdb(info);
}

static PGconn *trust_conn(void)
{
    PGconn *c = connect_to(trust_port, "user=bob dbname=db1 application_name=tapp");
    if (PQstatus(c) != CONNECTION_OK)
        printf("\n  connect: %s\n", PQerrorMessage(c));
    return c;
}

static const char *sqlstate(const PGresult *r)
{
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s ? s : "";
}

/* ---- raw protocol client ---- */

static int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {DEADLINE_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_msg(int fd, char type, const void *body, size_t n)
{
    uint8_t h[5] = {(uint8_t)type};
    put32(h + 1, (uint32_t)n + 4);
    return send_all(fd, h, 5) || send_all(fd, body, n) ? -1 : 0;
}

/* A startup packet of version with name/value pairs (NULL-terminated). */
static int send_startup(int fd, uint32_t version, const char *const *kv)
{
    uint8_t b[1024];
    size_t n = 8;
    put32(b + 4, version);
    for (size_t i = 0; kv && kv[i]; i++) {
        size_t l = strlen(kv[i]) + 1;
        memcpy(b + n, kv[i], l);
        n += l;
    }
    b[n++] = 0;
    put32(b, (uint32_t)n);
    return send_all(fd, b, n);
}

static int read_full(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 && got == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

/* One backend message (body cut to cap, NUL-terminated): 1, 0 EOF, -1. */
static int read_msg(int fd, char *type, uint8_t *buf, size_t cap, size_t *len)
{
    uint8_t h[5];
    int rc = read_full(fd, h, 5);
    if (rc <= 0)
        return rc;
    *type = (char)h[0];
    size_t n = get32(h + 1) - 4, keep = n < cap - 1 ? n : cap - 1;
    if (read_full(fd, buf, keep) != 1)
        return -1;
    for (size_t left = n - keep; left;) {
        uint8_t junk[256];
        size_t k = left < sizeof junk ? left : sizeof junk;
        if (read_full(fd, junk, k) != 1)
            return -1;
        left -= k;
    }
    buf[keep] = 0;
    *len = keep;
    return 1;
}

/* Read messages until one of type want: true; false at EOF or error. */
static bool read_until(int fd, char want, uint8_t *buf, size_t cap, size_t *len)
{
    char t;
    while (read_msg(fd, &t, buf, cap, len) == 1)
        if (t == want)
            return true;
    return false;
}

/* The value of field code of an ErrorResponse body ("" when absent). */
static const char *err_field(const uint8_t *b, size_t len, char code)
{
    size_t i = 0;
    while (i < len && b[i]) {
        char c = (char)b[i++];
        const char *v = (const char *)b + i;
        if (c == code)
            return v;
        i += strlen(v) + 1;
    }
    return "";
}

/* true when the server closed the connection (after any messages). */
static bool closed_by_server(int fd)
{
    char t;
    uint8_t b[512];
    size_t l;
    int rc;
    while ((rc = read_msg(fd, &t, b, sizeof b, &l)) == 1)
        ;
    return rc == 0;
}

/* A trust session as user "raw", after its ReadyForQuery. */
static int raw_session(void)
{
    int fd = raw_connect(trust_port);
    static const char *const kv[] = {"user", "raw", NULL};
    uint8_t b[512];
    size_t l;
    if (fd < 0 || send_startup(fd, 196608, kv) || !read_until(fd, 'Z', b, sizeof b, &l)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Expect an ErrorResponse of severity and code next, then the server's close. */
static void expect_fatal(int fd, const char *code, const char *text)
{
    char t = 0;
    uint8_t b[1024];
    size_t l = 0;
    do { /* an AuthenticationOk may come first (a session the engine refuses) */
        CU_ASSERT_EQUAL_FATAL(read_msg(fd, &t, b, sizeof b, &l), 1);
    } while (t == 'R');
    CU_ASSERT_EQUAL(t, 'E');
    CU_ASSERT_STRING_EQUAL(err_field(b, l, 'S'), "FATAL");
    CU_ASSERT_STRING_EQUAL(err_field(b, l, 'C'), code);
    if (text && !strstr(err_field(b, l, 'M'), text)) {
        printf("\n  message '%s' lacks '%s'\n", err_field(b, l, 'M'), text);
        CU_FAIL("FATAL message");
    }
    CU_ASSERT_TRUE(closed_by_server(fd));
}

#include "pgw_raw.inc"

/* ---- libpq ---- */

static void test_connect_trust(void)
{
    PGconn *c = trust_conn();
    CU_ASSERT_EQUAL_FATAL(PQstatus(c), CONNECTION_OK);
    CU_ASSERT_STRING_EQUAL(PQparameterStatus(c, "server_version"), "15.0 (ninesdb fake)");
    CU_ASSERT_STRING_EQUAL(PQparameterStatus(c, "application_name"), "tapp");
    CU_ASSERT_NOT_EQUAL(PQbackendPID(c), 0);
    CU_ASSERT_EQUAL(PQprotocolVersion(c), 3);
    pthread_mutex_lock(&fake.mu);
    CU_ASSERT_STRING_EQUAL(fake.user, "bob");
    CU_ASSERT_STRING_EQUAL(fake.database, "db1");
    bool app = false; /* startup parameters reach sqle_sess_set */
    for (int i = 0; i < fake.nset; i++)
        app |= !strcmp(fake.set_names[i], "application_name") &&
               !strcmp(fake.set_values[i], "tapp");
    pthread_mutex_unlock(&fake.mu);
    CU_ASSERT_TRUE(app);
    PQfinish(c);
}

static void test_simple_rows(void)
{
    PGconn *c = trust_conn();
    PGresult *r = PQexec(c, "SELECT ROWS 3");
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL(PQntuples(r), 3);
    CU_ASSERT_EQUAL(PQnfields(r), 2);
    CU_ASSERT_STRING_EQUAL(PQfname(r, 0), "id");
    CU_ASSERT_EQUAL(PQftype(r, 0), 23);
    CU_ASSERT_EQUAL(PQftype(r, 1), 25);
    CU_ASSERT_EQUAL(PQfformat(r, 0), 0);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 1, 1), "row2");
    CU_ASSERT_TRUE(PQgetisnull(r, 2, 1));
    CU_ASSERT_STRING_EQUAL(PQcmdStatus(r), "SELECT 3");
    PQclear(r);
    r = PQexec(c, "SELECT NOCOLS");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL(PQnfields(r), 0);
    PQclear(r);
    r = PQexec(c, "INSERT s1");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    CU_ASSERT_STRING_EQUAL(PQcmdStatus(r), "INSERT 0 1");
    PQclear(r);
    r = PQexec(c, "  ;  ");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_EMPTY_QUERY);
    PQclear(r);
    PQfinish(c);
}

static void test_simple_errors(void)
{
    PGconn *c = trust_conn();
    PGresult *r = PQexec(c, "FAIL");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
    CU_ASSERT_STRING_EQUAL(sqlstate(r), "42P01");
    CU_ASSERT_STRING_EQUAL(PQresultErrorField(r, PG_DIAG_SEVERITY), "ERROR");
    CU_ASSERT_STRING_EQUAL(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY),
                           "relation \"nope\" does not exist");
    CU_ASSERT_STRING_EQUAL(PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL), "a detail");
    CU_ASSERT_STRING_EQUAL(PQresultErrorField(r, PG_DIAG_MESSAGE_HINT), "a hint");
    CU_ASSERT_STRING_EQUAL(PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION), "8");
    PQclear(r);
    r = PQexec(c, "BAD SYNTAX");
    CU_ASSERT_STRING_EQUAL(sqlstate(r), "42601");
    CU_ASSERT_PTR_NULL(PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL));
    PQclear(r);
    /* the second of three fails: the first ran, the third did not */
    pthread_mutex_lock(&fake.mu);
    size_t before = fake.nrows;
    pthread_mutex_unlock(&fake.mu);
    CU_ASSERT_EQUAL_FATAL(PQsendQuery(c, "INSERT m1; FAIL; INSERT m3"), 1);
    r = PQgetResult(c);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQgetResult(c);
    CU_ASSERT_STRING_EQUAL(sqlstate(r), "42P01");
    PQclear(r);
    CU_ASSERT_PTR_NULL(PQgetResult(c));
    pthread_mutex_lock(&fake.mu);
    CU_ASSERT_EQUAL(fake.nrows, before + 1);
    CU_ASSERT_STRING_EQUAL(fake.table[before], "m1");
    pthread_mutex_unlock(&fake.mu);
    /* a failed block: status E, then 25P02, ROLLBACK ends it */
    PQclear(PQexec(c, "BEGIN"));
    CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_INTRANS);
    PQclear(PQexec(c, "FAIL"));
    CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_INERROR);
    r = PQexec(c, "SELECT ROWS 1");
    CU_ASSERT_STRING_EQUAL(sqlstate(r), "25P02");
    PQclear(r);
    r = PQexec(c, "ROLLBACK");
    CU_ASSERT_STRING_EQUAL(PQcmdStatus(r), "ROLLBACK");
    PQclear(r);
    CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_IDLE);
    PQfinish(c);
}

static char notice_seen[256];
static void on_notice(void *arg, const PGresult *r)
{
    (void)arg;
    snprintf(notice_seen, sizeof notice_seen, "%s %s",
             PQresultErrorField(r, PG_DIAG_SQLSTATE),
             PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
}

static void test_notice_and_params(void)
{
    PGconn *c = trust_conn();
    PQsetNoticeReceiver(c, on_notice, NULL);
    notice_seen[0] = 0;
    PGresult *r = PQexec(c, "NOTICE");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    CU_ASSERT_STRING_EQUAL(notice_seen, "01000 a notice from the fake");
    r = PQexec(c, "SET application_name other");
    CU_ASSERT_STRING_EQUAL(PQcmdStatus(r), "SET");
    PQclear(r);
    CU_ASSERT_STRING_EQUAL(PQparameterStatus(c, "application_name"), "other");
    PQfinish(c);
}

static void test_extended(void)
{
    PGconn *c = trust_conn();
    const Oid types[2] = {23, 0};
    PGresult *r = PQprepare(c, "s1", "PARAMS $1 $2", 2, types);
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQdescribePrepared(c, "s1");
    CU_ASSERT_EQUAL(PQnparams(r), 2);
    CU_ASSERT_EQUAL(PQparamtype(r, 0), 23);
    CU_ASSERT_EQUAL(PQparamtype(r, 1), 25); /* inferred */
    CU_ASSERT_EQUAL(PQnfields(r), 2);
    CU_ASSERT_STRING_EQUAL(PQfname(r, 1), "p2");
    PQclear(r);
    const char *vals[2] = {"42", NULL};
    r = PQexecPrepared(c, "s1", 2, vals, NULL, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "42/2");
    CU_ASSERT_TRUE(PQgetisnull(r, 0, 1));
    PQclear(r);
    pthread_mutex_lock(&fake.mu); /* the parameters arrived as text with their lengths */
    CU_ASSERT_EQUAL(fake.nparams, 2);
    CU_ASSERT_STRING_EQUAL(fake.params[0], "42");
    CU_ASSERT_EQUAL(fake.lens[0], 2);
    CU_ASSERT_TRUE(fake.nulls[1]);
    pthread_mutex_unlock(&fake.mu);
    r = PQprepare(c, "s1", "SELECT ROWS 1", 0, NULL);
    CU_ASSERT_STRING_EQUAL(sqlstate(r), "42P05");
    PQclear(r);
    /* the unnamed statement is replaced silently */
    r = PQprepare(c, "", "SELECT ROWS 2", 0, NULL);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQprepare(c, "", "SELECT ROWS 4", 0, NULL);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQexecPrepared(c, "", 0, NULL, NULL, NULL, 0);
    CU_ASSERT_EQUAL(PQntuples(r), 4);
    PQclear(r);
    r = PQdescribePrepared(c, "nope");
    CU_ASSERT_STRING_EQUAL(sqlstate(r), "26000");
    PQclear(r);
    /* PQsendQueryParams: the unnamed statement and portal, one round */
    const char *v1[1] = {"h\xc3\xa9llo"};
    CU_ASSERT_EQUAL_FATAL(PQsendQueryParams(c, "PARAMS $1", 1, NULL, v1, NULL, NULL, 0), 1);
    r = PQgetResult(c);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "h\xc3\xa9llo/6");
    PQclear(r);
    CU_ASSERT_PTR_NULL(PQgetResult(c));
    /* a binary int4 parameter reaches the engine as text; a binary
     * parameter of a type without a binary form here is 0A000 naming it;
     * binary results come back in PostgreSQL's binary forms */
    const int lens[1] = {4}, fmts[1] = {1};
    const char *bin[1] = {"\0\0\0\1"};
    const Oid int4[1] = {23}, interval[1] = {1186};
    r = PQexecParams(c, "PARAMS $1", 1, int4, bin, lens, fmts, 0);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "1/1");
    PQclear(r);
    r = PQexecParams(c, "PARAMS $1", 1, interval, bin, lens, fmts, 0);
    CU_ASSERT_STRING_EQUAL(sqlstate(r), "0A000");
    CU_ASSERT_PTR_NOT_NULL(strstr(PQresultErrorMessage(r), "$1"));
    PQclear(r);
    r = PQexecParams(c, "SELECT ROWS 1", 0, NULL, NULL, NULL, NULL, 1);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL(PQfformat(r, 0), 1);
    CU_ASSERT_EQUAL(PQgetlength(r, 0, 0), 4);
    CU_ASSERT_EQUAL(memcmp(PQgetvalue(r, 0, 0), "\0\0\0\1", 4), 0);
    PQclear(r);
    r = PQexecParams(c, "FAIL", 0, NULL, NULL, NULL, NULL, 0);
    CU_ASSERT_STRING_EQUAL(sqlstate(r), "42P01");
    PQclear(r);
    r = PQexecPrepared(c, "s1", 2, vals, NULL, NULL, 0);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    r = PQexec(c, "DEALLOCATE s1"); /* a Query: the fake has no DEALLOCATE */
    PQclear(r);
    PQfinish(c);
}

static void test_copy(void)
{
    PGconn *c = trust_conn();
    pthread_mutex_lock(&fake.mu);
    size_t before = fake.nrows;
    pthread_mutex_unlock(&fake.mu);
    PGresult *r = PQexec(c, "COPY");
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_COPY_IN);
    CU_ASSERT_EQUAL(PQnfields(r), 1);
    CU_ASSERT_EQUAL(PQbinaryTuples(r), 0);
    PQclear(r);
    CU_ASSERT_EQUAL(PQputCopyData(c, "c1\nc", 4), 1); /* a row across two CopyData */
    CU_ASSERT_EQUAL(PQputCopyData(c, "2\n", 2), 1);
    CU_ASSERT_EQUAL(PQputCopyEnd(c, NULL), 1);
    r = PQgetResult(c);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    CU_ASSERT_STRING_EQUAL(PQcmdStatus(r), "COPY 2");
    PQclear(r);
    CU_ASSERT_PTR_NULL(PQgetResult(c));
    pthread_mutex_lock(&fake.mu);
    CU_ASSERT_EQUAL(fake.nrows, before + 2);
    CU_ASSERT_STRING_EQUAL(fake.table[before + 1], "c2");
    pthread_mutex_unlock(&fake.mu);
    /* CopyFail: the client's message comes back in 57014 */
    r = PQexec(c, "COPY");
    PQclear(r);
    CU_ASSERT_EQUAL(PQputCopyData(c, "zz\n", 3), 1);
    CU_ASSERT_EQUAL(PQputCopyEnd(c, "client says no"), 1);
    r = PQgetResult(c);
    CU_ASSERT_STRING_EQUAL(sqlstate(r), "57014");
    CU_ASSERT_PTR_NOT_NULL(strstr(PQresultErrorMessage(r), "client says no"));
    PQclear(r);
    CU_ASSERT_PTR_NULL(PQgetResult(c));
    /* a bad row: 22P02 at done */
    PQclear(PQexec(c, "COPY"));
    CU_ASSERT_EQUAL(PQputCopyData(c, "ok\nbad\n", 7), 1);
    CU_ASSERT_EQUAL(PQputCopyEnd(c, NULL), 1);
    r = PQgetResult(c);
    CU_ASSERT_STRING_EQUAL(sqlstate(r), "22P02");
    PQclear(r);
    CU_ASSERT_PTR_NULL(PQgetResult(c));
    /* a COPY in the middle of a Query: the rest runs after CopyDone */
    CU_ASSERT_EQUAL_FATAL(PQsendQuery(c, "INSERT q1; COPY; INSERT q3"), 1);
    r = PQgetResult(c);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQgetResult(c);
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_COPY_IN);
    PQclear(r);
    CU_ASSERT_EQUAL(PQputCopyData(c, "q2\n\\.\n", 6), 1);
    CU_ASSERT_EQUAL(PQputCopyEnd(c, NULL), 1);
    r = PQgetResult(c);
    CU_ASSERT_STRING_EQUAL(PQcmdStatus(r), "COPY 1");
    PQclear(r);
    r = PQgetResult(c);
    CU_ASSERT_STRING_EQUAL(PQcmdStatus(r), "INSERT 0 1");
    PQclear(r);
    CU_ASSERT_PTR_NULL(PQgetResult(c));
    r = PQexec(c, "SELECT TABLE");
    int n = PQntuples(r);
    CU_ASSERT_TRUE_FATAL(n >= 3);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, n - 3, 0), "q1");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, n - 2, 0), "q2");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, n - 1, 0), "q3");
    PQclear(r);
    PQfinish(c);
}

static void *run_wait(void *arg)
{
    return PQexec(arg, "WAIT");
}

static void test_cancel(void)
{
    PGconn *c = trust_conn();
    CU_ASSERT_EQUAL_FATAL(PQstatus(c), CONNECTION_OK);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, run_wait, c), 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += DEADLINE_S;
    pthread_mutex_lock(&fake.mu); /* the statement is blocked in the engine */
    while (fake.waiting == 0 && pthread_cond_timedwait(&fake.cv, &fake.mu, &dl) == 0)
        ;
    bool blocked = fake.waiting > 0;
    pthread_mutex_unlock(&fake.mu);
    CU_ASSERT_TRUE(blocked);
    PGcancel *k = PQgetCancel(c);
    char why[256];
    CU_ASSERT_EQUAL(PQcancel(k, why, sizeof why), 1);
    PQfreeCancel(k);
    void *res = NULL;
    pthread_join(th, &res);
    CU_ASSERT_STRING_EQUAL(sqlstate(res), "57014");
    PQclear(res);
    PGresult *r = PQexec(c, "SELECT ROWS 1"); /* the session goes on */
    CU_ASSERT_EQUAL(PQntuples(r), 1);
    PQclear(r);
    /* a CancelRequest with a wrong key cancels nothing */
    int fd = raw_connect(trust_port);
    uint8_t b[16];
    put32(b, 16);
    put32(b + 4, 80877102);
    put32(b + 8, (uint32_t)PQbackendPID(c));
    put32(b + 12, 12345);
    pthread_mutex_lock(&fake.mu);
    int cancels = fake.cancels;
    pthread_mutex_unlock(&fake.mu);
    CU_ASSERT_EQUAL(send_all(fd, b, sizeof b), 0);
    CU_ASSERT_TRUE(closed_by_server(fd)); /* never answered */
    close(fd);
    pthread_mutex_lock(&fake.mu);
    CU_ASSERT_EQUAL(fake.cancels, cancels);
    pthread_mutex_unlock(&fake.mu);
    PQfinish(c);
}

static void test_scram(void)
{
    PGconn *c = connect_to(scram_port, "user=alice password=" PASSWORD " dbname=d");
    if (PQstatus(c) != CONNECTION_OK)
        printf("\n  scram connect: %s\n", PQerrorMessage(c));
    CU_ASSERT_EQUAL_FATAL(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "SELECT ROWS 2");
    CU_ASSERT_EQUAL(PQntuples(r), 2);
    PQclear(r);
    PQfinish(c);
    c = connect_to(scram_port, "user=alice password=wrong dbname=d");
    CU_ASSERT_EQUAL(PQstatus(c), CONNECTION_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(PQerrorMessage(c),
                                  "password authentication failed for user \"alice\""));
    PQfinish(c);
    c = connect_to(scram_port, "user=mallory password=" PASSWORD " dbname=d");
    CU_ASSERT_EQUAL(PQstatus(c), CONNECTION_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(PQerrorMessage(c),
                                  "password authentication failed for user \"mallory\""));
    PQfinish(c);
}

/* ---- TLS (sql_tls) ---- */

/* A self-signed certificate and key for 127.0.0.1 (openssl CLI) in dir. */
static bool make_cert(char *dir, char *cert, char *key, size_t n)
{
    strcpy(dir, "/tmp/pgw_tls_XXXXXX");
    if (!mkdtemp(dir))
        return false;
    snprintf(cert, n, "%s/node.crt", dir);
    snprintf(key, n, "%s/node.key", dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
             "-nodes -keyout %s -out %s -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1", key, cert);
    return system(cmd) == 0;
}

static void test_tls(void)
{
    char dir[64], cert[128], key[128], extra[512], info[512];
    CU_ASSERT_FATAL(make_cert(dir, cert, key, sizeof cert));
    uint16_t port;
    snprintf(extra, sizeof extra, "tls_cert %s\ntls_key %s\nsql_tls require\n", cert, key);
    struct sql_srv *srv = start_srv(extra, &port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    /* TLS, and the server's certificate verified against it as the CA */
    snprintf(info, sizeof info, "user=bob dbname=d sslmode=verify-ca sslrootcert=%s", cert);
    PGconn *c = connect_to(port, info);
    if (PQstatus(c) != CONNECTION_OK)
        printf("\n  tls connect: %s\n", PQerrorMessage(c));
    CU_ASSERT_EQUAL_FATAL(PQstatus(c), CONNECTION_OK);
    CU_ASSERT_EQUAL(PQsslInUse(c), 1);
    PGresult *res = PQexec(c, "SELECT ROWS 3");
    CU_ASSERT_EQUAL(PQntuples(res), 3);
    PQclear(res);
    PQfinish(c);
    /* in clear: refused, saying why */
    c = connect_to(port, "user=bob dbname=d sslmode=disable");
    CU_ASSERT_EQUAL(PQstatus(c), CONNECTION_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(PQerrorMessage(c), "over TLS only"));
    PQfinish(c);
    /* bytes in clear behind the SSLRequest are never taken as TLS */
    int fd = raw_connect(port);
    uint8_t req[8 + 5] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f, 'h', 'e', 'l', 'l', 'o'};
    CU_ASSERT_EQUAL(write(fd, req, sizeof req), (ssize_t)sizeof req);
    char buf[512];
    ssize_t got = 0, r;
    while (got < (ssize_t)sizeof buf - 1 && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += r; /* 'S'? no: an ErrorResponse, then the close */
    CU_ASSERT(got > 0);
    buf[got > 0 ? got : 0] = 0;
    CU_ASSERT_PTR_NOT_NULL(memmem(buf, (size_t)(got > 0 ? got : 0), "unencrypted data after",
                                  22));
    close(fd);
    sql_srv_stop(srv);
    /* prefer: both */
    snprintf(extra, sizeof extra, "tls_cert %s\ntls_key %s\n", cert, key);
    srv = start_srv(extra, &port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    c = connect_to(port, "user=bob dbname=d sslmode=disable");
    CU_ASSERT_EQUAL(PQstatus(c), CONNECTION_OK);
    CU_ASSERT_EQUAL(PQsslInUse(c), 0);
    PQfinish(c);
    c = connect_to(port, "user=bob dbname=d sslmode=require");
    CU_ASSERT_EQUAL(PQstatus(c), CONNECTION_OK);
    CU_ASSERT_EQUAL(PQsslInUse(c), 1);
    PQfinish(c);
    sql_srv_stop(srv);
    /* a server without TLS says so; a key that is not the certificate's is
     * refused at start */
    c = connect_to(trust_port, "user=bob dbname=d sslmode=require");
    CU_ASSERT_EQUAL(PQstatus(c), CONNECTION_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(PQerrorMessage(c), "does not support SSL"));
    PQfinish(c);
    char dir2[64], cert2[128], key2[128];
    CU_ASSERT_FATAL(make_cert(dir2, cert2, key2, sizeof cert2));
    snprintf(extra, sizeof extra, "tls_cert %s\ntls_key %s\n", cert, key2);
    CU_ASSERT_PTR_NULL(start_srv(extra, &port));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "mismatch"));
    snprintf(extra, sizeof extra, "sql_tls require\n");
    CU_ASSERT_PTR_NULL(start_srv(extra, &port));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "needs tls_cert and tls_key"));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, dir2);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* Wait until the server holds n connection threads (ended ones are
 * joined by its listener); false after the deadline. */
static bool wait_conns(struct sql_srv *srv, uint32_t n)
{
    time_t end = time(NULL) + DEADLINE_S;
    for (;;) {
        pthread_mutex_lock(&srv->mu);
        uint32_t have = srv->nconns;
        pthread_mutex_unlock(&srv->mu);
        if (have == n)
            return true;
        if (time(NULL) > end)
            return false;
        sched_yield();
    }
}

static void test_conn_limit(void)
{
    uint16_t port;
    struct sql_srv *srv = start_srv("sql_max_connections 2\n", &port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    PGconn *a = connect_to(port, "user=u1"), *b = connect_to(port, "user=u2");
    CU_ASSERT_EQUAL(PQstatus(a), CONNECTION_OK);
    CU_ASSERT_EQUAL(PQstatus(b), CONNECTION_OK);
    PGconn *x = connect_to(port, "user=u3");
    CU_ASSERT_EQUAL(PQstatus(x), CONNECTION_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(PQerrorMessage(x), "too many clients"));
    CU_ASSERT_PTR_NOT_NULL(strstr(PQerrorMessage(x), "sql_max_connections 2"));
    PQfinish(x);
    PGresult *r = PQexec(a, "SELECT ROWS 1"); /* the others are served */
    CU_ASSERT_EQUAL(PQntuples(r), 1);
    PQclear(r);
    PQfinish(a); /* its place is free once its thread has ended */
    /* connections that never send a startup packet hold threads up to
     * sql_max_connections + 8; the listener itself refuses the next one */
    CU_ASSERT_TRUE(wait_conns(srv, 1)); /* b */
    int raw[9];
    for (int i = 0; i < 9; i++)
        raw[i] = raw_connect(port); /* 1 session left + 8 in startup */
    int over = raw_connect(port);
    expect_fatal(over, "53300", "sql_max_connections 2");
    close(over);
    for (int i = 0; i < 9; i++)
        close(raw[i]);
    PGconn *y = NULL;
    for (int i = 0; i < 1000; i++) {
        y = connect_to(port, "user=u4");
        if (PQstatus(y) == CONNECTION_OK)
            break;
        PQfinish(y);
        y = NULL;
    }
    CU_ASSERT_PTR_NOT_NULL(y);
    PQfinish(y);
    PQfinish(b);
    sql_srv_stop(srv);
}

/* Stopping the server with a statement blocked in the engine: the session
 * is cancelled and shut, every thread joined. */
static void test_stop_busy(void)
{
    uint16_t port;
    struct sql_srv *srv = start_srv("", &port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    CU_ASSERT_EQUAL(sql_srv_port(srv), port);
    PGconn *c = connect_to(port, "user=busy"), *idle = connect_to(port, "user=idle");
    CU_ASSERT_EQUAL_FATAL(PQstatus(c), CONNECTION_OK);
    CU_ASSERT_EQUAL(PQstatus(idle), CONNECTION_OK);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, run_wait, c), 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += DEADLINE_S;
    pthread_mutex_lock(&fake.mu);
    while (fake.waiting == 0 && pthread_cond_timedwait(&fake.cv, &fake.mu, &dl) == 0)
        ;
    pthread_mutex_unlock(&fake.mu);
    sql_srv_stop(srv); /* returns once every session thread has ended */
    void *res = NULL;
    pthread_join(th, &res);
    CU_ASSERT_NOT_EQUAL(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    pthread_mutex_lock(&fake.mu);
    CU_ASSERT_EQUAL(fake.waiting, 0);
    pthread_mutex_unlock(&fake.mu);
    PGresult *r = PQexec(idle, "SELECT ROWS 1"); /* its socket was shut */
    CU_ASSERT_NOT_EQUAL(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(c);
    PQfinish(idle);
}

/* A client that stops reading: its session blocks on its own socket and
 * is closed at the send timeout (lowered here), logged; the node serves
 * the others. */
static void test_slow_reader(void)
{
    uint16_t port;
    struct sql_srv *srv = start_srv("", &port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    pthread_mutex_lock(&srv->mu);
    srv->send_timeout_ms = 200;
    pthread_mutex_unlock(&srv->mu);
    static char log[8192];
    struct cap cap;
    cap_start(&cap);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const char *const kv[] = {"user", "slow", NULL};
    uint8_t b[512];
    size_t l;
    CU_ASSERT_EQUAL(send_startup(fd, 196608, kv), 0);
    CU_ASSERT_TRUE(read_until(fd, 'Z', b, sizeof b, &l));
    pthread_mutex_lock(&fake.mu);
    int sessions = fake.sessions;
    pthread_mutex_unlock(&fake.mu);
    for (int i = 0; i < 100; i++) /* 25 MB of results that are never read */
        CU_ASSERT_EQUAL(send_msg(fd, 'Q', "SELECT WIDE 256", 16), 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += DEADLINE_S;
    pthread_mutex_lock(&fake.mu); /* the session ends without our reading */
    while (fake.sessions >= sessions && pthread_cond_timedwait(&fake.cv, &fake.mu, &dl) == 0)
        ;
    bool ended = fake.sessions < sessions;
    pthread_mutex_unlock(&fake.mu);
    CU_ASSERT_TRUE(ended);
    close(fd);
    PGconn *c = connect_to(port, "user=other");
    PGresult *r = PQexec(c, "SELECT ROWS 2");
    CU_ASSERT_EQUAL(PQntuples(r), 2);
    PQclear(r);
    PQfinish(c);
    sql_srv_stop(srv);
    cap_stop(&cap, log, sizeof log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "closing session of slow from 127.0.0.1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "the client read nothing for 200 ms"));
}

/* A result far above the 64 KiB batch streams through, in order. */
static void test_large_result(void)
{
    PGconn *c = trust_conn();
    char q[64];
    snprintf(q, sizeof q, "SELECT WIDE %d", FAKE_MAX_ROWS); /* 256 kB */
    for (int k = 0; k < 3; k++) {
        CU_ASSERT_EQUAL_FATAL(PQsendQuery(c, q), 1);
        CU_ASSERT_EQUAL(PQsetSingleRowMode(c), 1);
        int rows = 0;
        PGresult *r;
        while ((r = PQgetResult(c))) {
            if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
                char want[16];
                snprintf(want, sizeof want, "%d", rows + 1);
                CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), want);
                CU_ASSERT_EQUAL(PQgetlength(r, 0, 1), rows + 1 == 3 ? 0 : 1000);
                rows++;
            }
            PQclear(r);
        }
        CU_ASSERT_EQUAL(rows, FAKE_MAX_ROWS);
    }
    PQfinish(c);
}


/* pgw_bin: binary → text → binary is the identity on PostgreSQL's forms. */
static void bin_round(uint32_t oid, const uint8_t *b, int len, const char *text)
{
    char *t = NULL, err[160];
    int tl = 0;
    CU_ASSERT_EQUAL_FATAL(pgw_bin_param(oid, b, len, &t, &tl, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(t, text);
    struct pgw_out o;
    memset(&o, 0, sizeof o);
    CU_ASSERT_EQUAL(pgw_bin_value(oid, t, tl, &o), 0);
    CU_ASSERT_EQUAL_FATAL(o.len, 4 + (size_t)len);
    CU_ASSERT_EQUAL(memcmp(o.p + 4, b, (size_t)len), 0);
    pgw_out_free(&o);
    free(t);
}

static void test_binary_forms(void)
{
    bin_round(23, (const uint8_t *)"\xff\xff\xff\xfe", 4, "-2");
    bin_round(21, (const uint8_t *)"\x00\x07", 2, "7");
    bin_round(20, (const uint8_t *)"\x80\0\0\0\0\0\0\0", 8, "-9223372036854775808");
    bin_round(16, (const uint8_t *)"\x01", 1, "t");
    bin_round(701, (const uint8_t *)"\x3f\xb9\x99\x99\x99\x99\x99\x9a", 8,
              "0.10000000000000001");
    bin_round(17, (const uint8_t *)"\x00\xab", 2, "\\x00ab");
    bin_round(25, (const uint8_t *)"h\xc3\xa9", 3, "h\xc3\xa9");
    /* 2000-01-01 00:00:01.25 */
    bin_round(1114, (const uint8_t *)"\0\0\0\0\0\x13\x12\xd0", 8, "2000-01-01 00:00:01.250000");
    /* numeric: 0; -1; 123456789012; 12.5 (dscale 1); 0.0001 (weight -1) */
    bin_round(1700, (const uint8_t *)"\0\0\0\0\0\0\0\0", 8, "0");
    bin_round(1700, (const uint8_t *)"\0\x01\0\0\x40\0\0\0\0\x01", 10, "-1");
    bin_round(1700, (const uint8_t *)"\0\x03\0\x02\0\0\0\0\x04\xd2\x16\x2e\x23\x34", 14,
              "123456789012");
    bin_round(1700, (const uint8_t *)"\0\x02\0\0\0\0\0\x01\0\x0c\x13\x88", 12, "12.5");
    bin_round(1700, (const uint8_t *)"\0\x01\xff\xff\0\0\0\x04\0\x01", 10, "0.0001");
    /* wrong lengths and unknown types are refused, not read past */
    char *t = NULL, err[160];
    int tl;
    CU_ASSERT_EQUAL(pgw_bin_param(23, (const uint8_t *)"\0\0", 2, &t, &tl, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "23"));
    CU_ASSERT_EQUAL(pgw_bin_param(1700, (const uint8_t *)"\0\x05\0\0\0\0\0\0", 8, &t, &tl,
                                  err, sizeof err), -1);
    CU_ASSERT_EQUAL(pgw_bin_param(1186, (const uint8_t *)"\0", 1, &t, &tl, err, sizeof err), -1);
    CU_ASSERT_FALSE(pgw_bin_supported(1186));
    struct pgw_out o;
    memset(&o, 0, sizeof o);
    CU_ASSERT_EQUAL(pgw_bin_value(23, "x1", 2, &o), -1);
    CU_ASSERT_EQUAL(o.len, 0);
    pgw_out_free(&o);
}

void cu_register(void)
{
    static const struct cu_case bin_cases[] = {
        {"binary forms both ways", test_binary_forms},
        {NULL, NULL},
    };
    cu_add_suite("pgw_bin", NULL, NULL, bin_cases);
    static const struct cu_case scram_cases[] = {
        {"RFC 7677 exchange and verifier", test_scram_rfc7677},
        {"malformed SCRAM messages", test_scram_malformed},
        {NULL, NULL},
    };
    cu_add_suite("scram", NULL, NULL, scram_cases);
    static const struct cu_case cases[] = {
        {"libpq connect (trust): parameters, key, startup values", test_connect_trust},
        {"simple query: rows, NULL, command, empty", test_simple_rows},
        {"simple query: errors, second of three fails, failed block", test_simple_errors},
        {"notice and ParameterStatus", test_notice_and_params},
        {"extended: prepare, describe, execute, params, formats", test_extended},
        {"COPY FROM STDIN: done, fail, bad row, mid-query", test_copy},
        {"cancel a blocked statement", test_cancel},
        {"SCRAM-SHA-256 with libpq: ok, wrong password, unknown user", test_scram},
        {"TLS: require, prefer, off, a bad key, clear bytes after SSLRequest", test_tls},
        {"sql_max_connections", test_conn_limit},
        {"stop with a statement blocked in the engine", test_stop_busy},
        {"single-row mode over a large result", test_large_result},
        {"a client that stops reading is closed at the send timeout", test_slow_reader},
        {"raw: Execute with max_rows, PortalSuspended", test_raw_suspend},
        {"raw: startup variants", test_raw_startup},
        {"raw: malformed messages close the session, others go on", test_raw_malformed},
        {"raw: errors in extended mode discard until Sync", test_raw_ext_errors},
        {"raw: SCRAM refusals look alike", test_raw_scram},
        {NULL, NULL},
    };
    cu_add_suite("pgw", suite_init, suite_fini, cases);
}
