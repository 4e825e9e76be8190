/* Simple Query ('Q') and COPY FROM STDIN (sql/README.md "Simple Query",
 * "COPY"). A Query's statements run one after another; an error ends the
 * Query; a COPY in the middle hands the session to the COPY state and the
 * remaining statements resume after CopyDone. ReadyForQuery always ends
 * the Query. */
#include "pgw.h"

#include <stdlib.h>
#include <string.h>

void pgw_query_reset(struct pgw_sess *s)
{
    for (size_t i = 0; i < s->q_n; i++)
        sqle_stmt_free(s->q_stmts[i]);
    free(s->q_stmts);
    s->q_stmts = NULL;
    s->q_n = s->q_i = 0;
}

/* The end of a Query: ReadyForQuery, and the batch is written. */
static int query_end(struct pgw_sess *s)
{
    pgw_query_reset(s);
    s->st = PGW_ST_READY;
    pgw_send_rfq(s);
    return pgw_flush(s);
}

/* Run the Query's statements from q_i on. */
static int run_stmts(struct pgw_sess *s)
{
    while (s->q_i < s->q_n) {
        struct sqle_stmt *st = s->q_stmts[s->q_i++];
        struct sqle_result *r = NULL;
        struct sqle_error err;
        memset(&err, 0, sizeof err);
        if (sqle_exec(s->es, st, NULL, NULL, 0, &r, &err)) {
            pgw_send_error(s, &err);
            break; /* the rest of the Query is not run */
        }
        pgw_send_notices(s, r);
        const struct sqle_col *cols = NULL;
        size_t ncols;
        int rc = 0;
        switch (sqle_result_kind(r)) {
        case SQLE_R_ROWS:
            ncols = sqle_result_ncols(r, &cols);
            pgw_send_rowdesc(s, cols, ncols, false, NULL);
            rc = pgw_send_rows(s, r, 0, sqle_result_nrows(r), NULL);
            pgw_send_cc(s, sqle_result_tag(r));
            pgw_send_result_params(s, r);
            break;
        case SQLE_R_COMMAND:
            pgw_send_cc(s, sqle_result_tag(r));
            pgw_send_result_params(s, r);
            break;
        case SQLE_R_COPY_IN:
            pgw_send_copy_in(s, r);
            sqle_result_free(r);
            s->copy_from = PGW_COPY_SIMPLE;
            s->st = PGW_ST_COPY_IN;
            return pgw_flush(s);
        default:
            pgw_send_errorf(s, "ERROR", "XX000", "the engine returned a result of unknown "
                            "kind %d", (int)sqle_result_kind(r));
            sqle_result_free(r);
            return query_end(s);
        }
        sqle_result_free(r);
        if (rc || pgw_maybe_flush(s))
            return -1;
    }
    return query_end(s);
}

int pgw_query(struct pgw_sess *s)
{
    struct pgw_rd r = {s->body, s->blen, 0, false};
    const char *sql = pgw_rd_str(&r);
    if (!pgw_rd_end(&r))
        return pgw_malformed(s, "Query text without its terminating NUL");
    pgw_ext_drop_unnamed(s);
    pgw_query_reset(s);
    struct sqle_stmt **sts = NULL;
    size_t n = 0;
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    if (sqle_parse(s->es, sql, NULL, 0, 0, &sts, &n, &err)) {
        pgw_send_error(s, &err);
        return query_end(s);
    }
    if (n == 0) {
        free(sts);
        pgw_send_simple(s, 'I'); /* EmptyQueryResponse */
        return query_end(s);
    }
    s->q_stmts = sts;
    s->q_n = n;
    s->q_i = 0;
    return run_stmts(s);
}

/* The COPY is over: ok (its CommandComplete sent) or failed (its error sent). */
static int copy_ended(struct pgw_sess *s, bool ok)
{
    switch (s->copy_from) {
    case PGW_COPY_SIMPLE:
        s->st = PGW_ST_READY;
        return ok ? run_stmts(s) : query_end(s);
    case PGW_COPY_EXTENDED:
        pgw_ext_copy_ended(s, ok);
        return pgw_maybe_flush(s);
    default:
        pgw_reason(s, "COPY from an unknown origin %d", (int)s->copy_from);
        return -1;
    }
}

/* Abort the COPY at the engine and report err. */
static int copy_abort(struct pgw_sess *s, const struct sqle_error *err)
{
    struct sqle_error ignored;
    sqle_copy_fail(s->es, err->message, &ignored);
    pgw_send_error(s, err);
    return copy_ended(s, false);
}

int pgw_copy_msg(struct pgw_sess *s)
{
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    switch (s->mtype) {
    case 'd':
        if (sqle_copy_data(s->es, (const char *)s->body, s->blen, &err))
            return copy_abort(s, &err);
        return 0;
    case 'c': {
        struct sqle_result *r = NULL;
        if (sqle_copy_done(s->es, &r, &err)) {
            pgw_send_error(s, &err); /* the engine has left the COPY */
            return copy_ended(s, false);
        }
        pgw_send_notices(s, r);
        pgw_send_cc(s, sqle_result_tag(r));
        sqle_result_free(r);
        return copy_ended(s, true);
    }
    case 'f': {
        struct pgw_rd r = {s->body, s->blen, 0, false};
        const char *msg = pgw_rd_str(&r);
        sqle_copy_fail(s->es, msg ? msg : "", &err);
        if (!pgw_rd_end(&r)) {
            s->st = PGW_ST_READY;
            return pgw_malformed(s, "CopyFail message without its NUL");
        }
        if (!err.sqlstate[0])
            pgw_err_set(&err, "ERROR", "57014", "COPY from stdin failed: %s", msg);
        pgw_send_error(s, &err);
        return copy_ended(s, false);
    }
    case 'H':
    case 'S':
        return 0; /* ignored during COPY, as PostgreSQL does */
    default:
        pgw_err_set(&err, "ERROR", "08P01", "unexpected message type 0x%02X during COPY from "
                    "stdin", (unsigned)(uint8_t)s->mtype);
        return copy_abort(s, &err);
    }
}
