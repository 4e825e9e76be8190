/* The SQL front end's harnesses (fuzz/README.md):
 *
 *   sqlstmt  SQL text through the engine as a session runs it: a Simple
 *            Query (sqle_parse of every statement, describe, sqle_exec of
 *            each in order, the rest skipped after an error), then the
 *            same text as an extended-protocol Parse (one statement, the
 *            declared parameter types), Describe and Bind/Execute with
 *            text parameter values.
 *   pgwmsg   a client's byte stream (startup packets, then typed messages)
 *            into a session thread's body, pgw_conn_main, reading from one
 *            end of a socketpair; its output is read from the other end
 *            and checked (whole messages, FATAL only last, ReadyForQuery's
 *            status).
 *
 * Both run the real engine in its no-cluster mode (struct sqle.no_cluster:
 * no cluster connection; whatever needs the cluster fails with 08003) over
 * a fixed catalog (pgbench's four tables and two tables of every column
 * type) given through the engine's test hooks. */
#include "fuzz.h"

#include "nlog.h"
#include "sql/pgw.h"
#include "sql/sqle_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the catalog ------------------------------------------------------ */

#define C_(n, ty, sz, nul, oid, mod) {n, ty, sz, nul, oid, mod, 0}
static const struct nines_column acc_cols[] = {
    C_("aid", NINES_T_INT32, 0, 0, OID_INT4, -1),
    C_("bid", NINES_T_INT32, 0, 1, OID_INT4, -1),
    C_("abalance", NINES_T_INT32, 0, 1, OID_INT4, -1),
    C_("filler", NINES_T_STRING, 84, 1, OID_BPCHAR, 88),
};
static const struct nines_column br_cols[] = {
    C_("bid", NINES_T_INT32, 0, 0, OID_INT4, -1),
    C_("bbalance", NINES_T_INT32, 0, 1, OID_INT4, -1),
    C_("filler", NINES_T_STRING, 88, 1, OID_BPCHAR, 92),
};
static const struct nines_column tel_cols[] = {
    C_("tid", NINES_T_INT32, 0, 0, OID_INT4, -1),
    C_("bid", NINES_T_INT32, 0, 1, OID_INT4, -1),
    C_("tbalance", NINES_T_INT32, 0, 1, OID_INT4, -1),
    C_("filler", NINES_T_STRING, 84, 1, OID_BPCHAR, 88),
};
static const struct nines_column hist_cols[] = {
    C_("tid", NINES_T_INT32, 0, 1, OID_INT4, -1),
    C_("bid", NINES_T_INT32, 0, 1, OID_INT4, -1),
    C_("aid", NINES_T_INT32, 0, 1, OID_INT4, -1),
    C_("delta", NINES_T_INT32, 0, 1, OID_INT4, -1),
    C_("mtime", NINES_T_TIMESTAMP, 0, 1, OID_TIMESTAMP, -1),
    C_("filler", NINES_T_STRING, 22, 1, OID_BPCHAR, 26),
    {"_nines_rowid", NINES_T_INT64, 0, 0, OID_INT8, -1, 1},
};
/* every SQL type the engine knows, a two-column key */
static const struct nines_column all_cols[] = {
    C_("k1", NINES_T_INT64, 0, 0, OID_INT8, -1),
    C_("k2", NINES_T_INT32, 0, 0, OID_INT2, -1),
    C_("v", NINES_T_VARSTRING, 10, 1, OID_VARCHAR, 14),
    C_("b", NINES_T_INT32, 0, 1, OID_BOOL, -1),
    C_("d", NINES_T_DOUBLE, 0, 1, OID_FLOAT8, -1),
    C_("r", NINES_T_DOUBLE, 0, 1, OID_FLOAT4, -1),
    C_("ts", NINES_T_TIMESTAMP, 0, 1, OID_TIMESTAMPTZ, -1),
    C_("by", NINES_T_VARBYTES, 65535, 1, OID_BYTEA, -1),
    C_("tx", NINES_T_VARSTRING, 65535, 1, OID_TEXT, -1),
    C_("n", NINES_T_INT64, 0, 1, OID_NUMERIC, (18 << 16) + 4),
    C_("c", NINES_T_STRING, 3, 1, OID_BPCHAR, 7),
};
/* made with ninesctl: no SQL types (derived from the stored ones) */
static const struct nines_column raw_cols[] = {
    C_("k", NINES_T_INT64, 0, 0, 0, 0),
    C_("s", NINES_T_STRING, 8, 1, 0, 0),
    C_("vs", NINES_T_VARSTRING, 40, 1, 0, 0),
    C_("f", NINES_T_BYTES, 4, 1, 0, 0),
    C_("vb", NINES_T_VARBYTES, 100, 1, 0, 0),
    C_("i", NINES_T_INT32, 0, 1, 0, 0),
    C_("x", NINES_T_DOUBLE, 0, 1, 0, 0),
    C_("t", NINES_T_TIMESTAMP, 0, 1, 0, 0),
};
static const uint32_t pk0[] = {0}, pk_hist[] = {6}, pk_all[] = {0, 1};

#define NCOLS(a) (uint32_t)(sizeof a / sizeof a[0])
static const struct nines_table_info fz_tables[] = {
    {1, 1, 0, {"pgbench_accounts", NCOLS(acc_cols), acc_cols, 1, pk0, 1, 4, 0, NULL, 2, 1}},
    {2, 1, 0, {"pgbench_branches", NCOLS(br_cols), br_cols, 1, pk0, 1, 4, 0, NULL, 2, 1}},
    {3, 1, 0, {"pgbench_tellers", NCOLS(tel_cols), tel_cols, 1, pk0, 1, 4, 0, NULL, 2, 1}},
    {4, 1, 0, {"pgbench_history", NCOLS(hist_cols), hist_cols, 1, pk_hist, 1, 4, 0, NULL, 2,
               1}},
    {5, 1, 0, {"t", NCOLS(all_cols), all_cols, 2, pk_all, 2, 0, 0, NULL, 2, 2}},
    {6, 1, 1, {"raw", NCOLS(raw_cols), raw_cols, 1, pk0, 1, 2, 0, NULL, 1, 1}},
    /* a scratch table of a TRUNCATE: catalog queries skip it */
    {7, 1, 0, {"t_nines_t00abcd", NCOLS(all_cols), all_cols, 2, pk_all, 1, 1, 0, NULL, 2, 1}},
};
#define NTABLES (sizeof fz_tables / sizeof fz_tables[0])

static int fz_table_get(void *ctx, const char *name, struct nines_table_info *out)
{
    (void)ctx;
    for (size_t i = 0; i < NTABLES; i++)
        if (!strcmp(fz_tables[i].def.name, name)) {
            *out = fz_tables[i];
            return 0;
        }
    return NINES_ENOTFOUND;
}

static int fz_tables_each(void *ctx, nines_table_fn fn, void *arg)
{
    (void)ctx;
    for (size_t i = 0; i < NTABLES; i++) {
        int rc = fn(arg, &fz_tables[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static struct sqle fz_eng;
static bool fz_eng_ready;
static bool fz_trace; /* NINES_FUZZ_LOG set: the log at its level, and what ran on stderr */

static void eng_init(void)
{
    if (fz_eng_ready)
        return;
    fz_eng_ready = true;
    memset(&fz_eng, 0, sizeof fz_eng);
    fz_eng.cfg.self = 1;
    fz_eng.cfg.timeout_ms = 1000;
    fz_eng.test_table_get = fz_table_get;
    fz_eng.test_tables = fz_tables_each;
    fz_eng.no_cluster = true;
    /* every closed session logs a WARN line: quiet unless asked */
    fz_trace = getenv("NINES_FUZZ_LOG") != NULL;
    if (!fz_trace)
        nlog_set_level(NLOG_ERROR);
}

/* A harness found the engine or the protocol breaking a rule: a crash for
 * the fuzzer. */
static void fz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_sql: %s: %s\n", what, detail);
    abort();
}

/* ---- sqlstmt ----------------------------------------------------------- */

static void check_err(const struct sqle_error *e)
{
    if (!memchr(e->message, 0, sizeof e->message) || !memchr(e->detail, 0, sizeof e->detail) ||
        !memchr(e->hint, 0, sizeof e->hint) || !memchr(e->severity, 0, sizeof e->severity))
        fz_fail("error text", "not NUL-terminated");
    if (strlen(e->sqlstate) != 5)
        fz_fail("error without a SQLSTATE", e->message);
    for (int i = 0; i < 5; i++) {
        char c = e->sqlstate[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')))
            fz_fail("bad SQLSTATE", e->sqlstate);
    }
    if (!e->message[0])
        fz_fail("error without a message", e->sqlstate);
}

static volatile unsigned fz_sink; /* reads every byte of a result (ASan sees them) */

static void touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    unsigned h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * 31 + b[i];
    fz_sink += h;
}

static void touch_cols(const struct sqle_col *cols, size_t n)
{
    for (size_t i = 0; cols && i < n; i++) {
        if (!memchr(cols[i].name, 0, sizeof cols[i].name))
            fz_fail("column name", "not NUL-terminated");
        touch(&cols[i], sizeof cols[i]);
    }
}

static void consume(struct sqle_result *r)
{
    enum sqle_result_kind k = sqle_result_kind(r);
    if (k != SQLE_R_COMMAND && k != SQLE_R_ROWS && k != SQLE_R_COPY_IN)
        fz_fail("result", "of an unknown kind");
    const char *tag = sqle_result_tag(r);
    touch(tag, strlen(tag));
    const struct sqle_col *cols = NULL;
    size_t nc = sqle_result_ncols(r, &cols);
    touch_cols(cols, cols ? nc : 0);
    size_t nr = sqle_result_nrows(r);
    for (size_t i = 0; i < nr; i++)
        for (size_t c = 0; c < nc; c++) {
            int len = -1;
            const char *v = sqle_result_value(r, i, c, &len);
            if (v && len < 0)
                fz_fail("result value", "negative length");
            if (v)
                touch(v, (size_t)len);
        }
    for (size_t i = 0; i < sqle_result_nnotices(r); i++)
        check_err(sqle_result_notice(r, i));
    for (size_t i = 0; i < sqle_result_nparams(r); i++) {
        const char *n = NULL, *v = NULL;
        sqle_result_param(r, i, &n, &v);
        touch(n, strlen(n));
        touch(v, strlen(v));
    }
}

/* A statement that cannot run without the cluster must not succeed. */
static bool needs_cluster(const struct sqle_stmt *st)
{
    switch (st->kind) {
    case K_CREATE:
    case K_DROP:
    case K_TRUNCATE:
    case K_ADD_PK:
    case K_INSERT:
    case K_UPDATE:
    case K_DELETE:
    case K_COPY_FROM:
        return true;
    case K_SELECT:
        return !st->no_from;
    default:
        return false;
    }
}

/* Run st as Execute does; -1 on an error (checked). */
static int exec1(struct sqle_sess *s, struct sqle_stmt *st, const char *const *params,
                 const int *lens, size_t np)
{
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    const struct sqle_col *cols = NULL;
    int nc = sqle_stmt_describe(s, st, &cols, &err);
    if (nc < 0)
        check_err(&err);
    else
        touch_cols(cols, (size_t)nc);
    struct sqle_result *r = NULL;
    if (sqle_exec(s, st, params, lens, np, &r, &err)) {
        if (fz_trace)
            fprintf(stderr, "sqlstmt: kind %d: %s %s\n", st->kind, err.sqlstate, err.message);
        check_err(&err);
        if (r)
            fz_fail("sqle_exec", "failed with a result");
        return -1;
    }
    if (!r)
        fz_fail("sqle_exec", "succeeded without a result");
    if (needs_cluster(st)) {
        char d[64];
        snprintf(d, sizeof d, "statement kind %d (%s)", st->kind, st->tag);
        fz_fail("succeeded without a cluster", d);
    }
    consume(r);
    if (fz_trace)
        fprintf(stderr, "sqlstmt: kind %d: %s, %zu rows\n", st->kind, sqle_result_tag(r),
                sqle_result_nrows(r));
    if (sqle_result_kind(r) == SQLE_R_COPY_IN) { /* (cannot start without a cluster) */
        struct sqle_error e2;
        sqle_copy_fail(s, "fuzz", &e2);
    }
    sqle_result_free(r);
    return 0;
}

static void run_simple(struct sqle_sess *s, const char *sql)
{
    struct sqle_stmt **v = NULL;
    size_t n = 0;
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    if (sqle_parse(s, sql, NULL, 0, 0, &v, &n, &err)) {
        if (fz_trace)
            fprintf(stderr, "sqlstmt: parse: %s %s\n", err.sqlstate, err.message);
        check_err(&err);
        if (v || n)
            fz_fail("sqle_parse", "failed with statements");
        return;
    }
    if (n && !v)
        fz_fail("sqle_parse", "statements without their array");
    bool failed = false;
    for (size_t i = 0; i < n; i++) {
        if (!failed && exec1(s, v[i], NULL, NULL, 0))
            failed = true; /* the rest of the Query is skipped */
        sqle_stmt_free(v[i]);
    }
    free(v);
}

/* Bind's data (after the SQL text's NUL): [k][k oid indices][values
 * separated by NUL bytes; a value of the one byte 0xff is NULL]. */
#define FZ_MAX_VALS 32
struct binds {
    uint32_t oids[16];
    size_t noids;
    bool given;
    const char *vals[FZ_MAX_VALS];
    int lens[FZ_MAX_VALS];
    size_t nvals;
};

static const uint32_t fz_oid_tab[] = {
    0, OID_BOOL, OID_BYTEA, OID_NAME, OID_INT8, OID_INT2, OID_INT4, OID_TEXT, OID_OID,
    OID_FLOAT4, OID_FLOAT8, OID_UNKNOWN, OID_BPCHAR, OID_VARCHAR, OID_TIMESTAMP,
    OID_TIMESTAMPTZ, OID_NUMERIC, 1082 /* date */, 114 /* json */, 3802 /* jsonb */,
};

static void binds_parse(const char *t, size_t n, struct binds *b)
{
    memset(b, 0, sizeof *b);
    b->given = true;
    size_t i = 0;
    if (i < n) {
        b->noids = (uint8_t)t[i++] % 17;
        for (size_t k = 0; k < b->noids; k++)
            b->oids[k] = i < n ? fz_oid_tab[(uint8_t)t[i++] % (sizeof fz_oid_tab / 4)] : 0;
    }
    while (i < n && b->nvals < FZ_MAX_VALS) {
        const char *p = t + i;
        const char *z = memchr(p, 0, n - i);
        size_t l = z ? (size_t)(z - p) : n - i;
        b->vals[b->nvals] = l == 1 && (uint8_t)p[0] == 0xff ? NULL : p;
        b->lens[b->nvals] = (int)l;
        b->nvals++;
        i += l + 1;
    }
}

/* A value of each type for a parameter when the input gives none. */
static const char *default_value(uint32_t oid)
{
    switch (oid) {
    case OID_BOOL: return "t";
    case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID: case OID_NUMERIC: return "42";
    case OID_FLOAT4: case OID_FLOAT8: return "2.5";
    case OID_TIMESTAMP: case OID_TIMESTAMPTZ: return "2026-12-04 10:00:00.5+01";
    case OID_BYTEA: return "\\x00ff";
    default: return "abc";
    }
}

static void run_extended(struct sqle_sess *s, const char *sql, const struct binds *b)
{
    struct sqle_stmt **v = NULL;
    size_t n = 0;
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    if (sqle_parse(s, sql, b->oids, b->noids, 1, &v, &n, &err)) {
        if (fz_trace)
            fprintf(stderr, "sqlstmt: Parse: %s %s\n", err.sqlstate, err.message);
        check_err(&err);
        return;
    }
    if (n > 1)
        fz_fail("Parse", "more than one statement");
    struct sqle_stmt *st = n ? v[0] : NULL;
    free(v);
    if (!st)
        return; /* an empty query: Execute answers EmptyQueryResponse */
    size_t np = sqle_stmt_nparams(st);
    if (np > 256)
        fz_fail("Parse", "more than 256 parameters");
    for (size_t i = 0; i <= np; i++) /* ParameterDescription (and one past) */
        fz_sink += sqle_stmt_param_oid(st, i);
    const char *pv[256];
    int pl[256];
    size_t nb = np;
    if (b->given) {
        nb = b->nvals;
        for (size_t i = 0; i < nb; i++)
            pv[i] = b->vals[i], pl[i] = b->lens[i];
    } else {
        for (size_t i = 0; i < np; i++) {
            pv[i] = default_value(sqle_stmt_param_oid(st, i));
            pl[i] = (int)strlen(pv[i]);
        }
    }
    if (exec1(s, st, pv, pl, nb) == 0) /* a portal executed twice (a second Bind) */
        (void)exec1(s, st, pv, pl, nb);
    sqle_stmt_free(st);
}

int fuzz_sqlstmt(const uint8_t *data, size_t len)
{
    eng_init();
    char *sql = malloc(len + 1);
    if (!sql)
        return 0;
    memcpy(sql, data, len);
    sql[len] = 0;
    size_t ql = strlen(sql);
    struct binds b;
    memset(&b, 0, sizeof b);
    if (ql < len)
        binds_parse(sql + ql + 1, len - ql - 1, &b);
    struct sqle_sess *s = NULL;
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    if (sqle_sess_open(&fz_eng, "fuzz", "fuzzdb", &s, &err))
        fz_fail("sqle_sess_open", err.message);
    run_simple(s, sql);
    char st = sqle_sess_status(s);
    if (st != 'I' && st != 'T' && st != 'E')
        fz_fail("sqle_sess_status", "not I, T or E");
    run_extended(s, sql, &b);
    sqle_sess_close(s);
    free(sql);
    return 0;
}

/* ---- pgwmsg ------------------------------------------------------------ */

#define FZ_IN_MAX (64u << 10) /* input beyond this is dropped (the socket holds it) */

static struct sql_srv fz_srv;
static bool fz_srv_ready;

static void srv_init(void)
{
    eng_init();
    if (fz_srv_ready)
        return;
    fz_srv_ready = true;
    memset(&fz_srv, 0, sizeof fz_srv);
    fz_srv.conf.sql_auth = NINES_SQL_AUTH_TRUST;
    fz_srv.conf.sql_max_connections = 4;
    fz_srv.conf.sql_max_message_bytes = 1u << 20;
    fz_srv.self = 1;
    fz_srv.eng = &fz_eng;
    fz_srv.lfd = -1;
    fz_srv.evfd = -1; /* no listener to wake */
    fz_srv.send_timeout_ms = 1000;
    pthread_mutex_init(&fz_srv.mu, NULL);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The server's output: at most two 'N' bytes (SSL/GSS refused), then whole
 * backend messages; a FATAL ErrorResponse only as the last one. A message
 * cut short at the end is allowed only when the sink filled up (send
 * would block: the session closed as for a client that does not read). */
static void check_output(const uint8_t *o, size_t n)
{
    size_t i = 0;
    while (i < n && i < 2 && o[i] == 'N' && (i + 1 == n || (o[i + 1] && strchr("NREv", o[i + 1]))))
        i++;
    bool fatal_seen = false;
    while (i < n) {
        if (n - i < 5 || be32(o + i + 1) > n - i - 1) {
            if (n >= (128u << 10))
                return;
            fz_fail("output", "a message cut short");
        }
        char t = (char)o[i];
        uint32_t l = be32(o + i + 1);
        const uint8_t *b = o + i + 5;
        if (fz_trace && l >= 4) {
            fprintf(stderr, "pgwmsg: <- %c ", t);
            for (size_t k = 0; (t == 'E' || t == 'C' || t == 'N') && k < l - 4; k++)
                fputc(b[k] ? b[k] : '|', stderr);
            fputc('\n', stderr);
        }
        if (l < 4)
            fz_fail("output", "message length below 4");
        size_t bl = l - 4;
        if (fatal_seen)
            fz_fail("output", "a message after a FATAL error");
        if (!strchr("R123ACDEGIKNSTZnstv", t) || !t)
            fz_fail("output", "unknown backend message type");
        if (t == 'Z' && (bl != 1 || !strchr("ITE", b[0]) || !b[0]))
            fz_fail("output", "ReadyForQuery without status I, T or E");
        if (t == 'E' || t == 'N') {
            /* fields: code, NUL-terminated text; a zero byte ends them */
            size_t k = 0;
            bool fatal = false, have_c = false;
            while (k < bl && b[k]) {
                char code = (char)b[k++];
                const uint8_t *z = memchr(b + k, 0, bl - k);
                if (!z)
                    fz_fail("output", "an error field without its NUL");
                size_t fl = (size_t)(z - (b + k));
                if (code == 'S' && fl == 5 && !memcmp(b + k, "FATAL", 5))
                    fatal = true;
                if (code == 'C') {
                    have_c = true;
                    if (fl != 5)
                        fz_fail("output", "a SQLSTATE not of 5 characters");
                }
                k += fl + 1;
            }
            if (k + 1 != bl)
                fz_fail("output", "an error's fields not ended by one zero byte");
            if (!have_c)
                fz_fail("output", "an error without a SQLSTATE");
            fatal_seen = t == 'E' && fatal;
        }
        i += 1 + (size_t)l;
    }
}

int fuzz_pgwmsg(const uint8_t *data, size_t len)
{
    srv_init();
    if (len > FZ_IN_MAX)
        len = FZ_IN_MAX;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return 0;
    int big = 4 << 20;
    (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    /* the whole input is queued, then EOF: the session's reads never
     * wait; its sends fail at once (EAGAIN) if the sink fills */
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(sv[1], data + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(sv[1], SHUT_WR);
    (void)fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    struct pgw_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    c->srv = &fz_srv;
    c->fd = sv[0];
    snprintf(c->peer, sizeof c->peer, "fuzz:%zu", len);
    pthread_mutex_lock(&fz_srv.mu);
    c->next = fz_srv.conns;
    fz_srv.conns = c;
    fz_srv.nconns++;
    pthread_mutex_unlock(&fz_srv.mu);

    (void)pgw_conn_main(c); /* the session thread's body; closes sv[0] */

    pthread_mutex_lock(&fz_srv.mu);
    for (struct pgw_conn **pp = &fz_srv.conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            fz_srv.nconns--;
            break;
        }
    bool left = c->sess != NULL || c->admitted || fz_srv.nsessions != 0;
    pthread_mutex_unlock(&fz_srv.mu);
    if (left)
        fz_fail("pgw_conn_main", "returned with its session still registered or counted");
    free(c);

    size_t cap = 64u << 10, n = 0;
    uint8_t *out = malloc(cap);
    for (;;) {
        if (!out)
            break;
        if (n == cap) {
            uint8_t *o2 = realloc(out, cap * 2);
            if (!o2)
                break;
            out = o2;
            cap *= 2;
        }
        ssize_t r = read(sv[1], out + n, cap - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(sv[1]);
    if (out)
        check_output(out, n);
    free(out);
    return 0;
}
