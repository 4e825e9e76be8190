/* sqle — the SQL engine as the PostgreSQL wire-protocol layer sees it
 * (internal to sql/; sql/README.md "Engine interface").
 *
 * The protocol layer (pgw_*.c) owns sockets, message framing, startup,
 * authentication, the extended-protocol objects (named statements and
 * portals) and COPY's sub-protocol; the engine (sqle_*.c) owns parsing
 * (libpg_query), planning, execution against the cluster through the
 * public client library, transaction-block state and session parameters.
 *
 * Threading: one struct sqle per node, shared by every session thread
 * (read-only after sqle_create). A session and its statements and results
 * are used by one thread at a time; sqle_sess_cancel may be called from
 * any thread. Every call that talks to the cluster blocks its thread.
 *
 * Errors: every int-returning call returns 0 (or a count) or -1 with
 * *err filled (a SQLSTATE, never empty, and a message). */
#ifndef NINES_SQLE_H
#define NINES_SQLE_H
#include <stddef.h>
#include <stdint.h>

struct sqle;
struct sqle_sess;
struct sqle_stmt;
struct sqle_result;

/* An error or notice as ErrorResponse / NoticeResponse carry it. */
struct sqle_error {
    char sqlstate[6];        /* five characters and NUL, e.g. "42601" */
    char severity[8];        /* "ERROR", "FATAL", or for notices "NOTICE", "WARNING" */
    char message[256];
    char detail[256];        /* "" when none */
    char hint[160];          /* "" when none */
    int position;            /* 1-based character position in the query text, 0: none */
};

/* One result column, as RowDescription / ParameterDescription need it. */
struct sqle_col {
    char name[64];
    uint32_t table_oid;      /* 0 when not a plain table column */
    int16_t attnum;          /* 0 when not a plain table column */
    uint32_t type_oid;       /* PostgreSQL type oid (text output always) */
    int16_t typlen;          /* pg_type.typlen: 4, 8, -1 ... */
    int32_t typmod;          /* -1: none */
};

struct sqle_config {
    const char *conf_path;   /* the cluster file the node runs with */
    uint32_t self;           /* this node's id: sessions connect to it first */
    int timeout_ms;          /* per cluster call (0: 5000) */
    const char *user;        /* sessions log in as this user (NULL: no login) ... */
    const char *password;    /* ... with this password (copied) */
};
int sqle_create(const struct sqle_config *cfg, struct sqle **out, struct sqle_error *err);
void sqle_destroy(struct sqle *e);

/* A session for an authenticated user (the protocol layer authenticated
 * it). database is what the client asked for (any name is accepted). */
int sqle_sess_open(struct sqle *e, const char *user, const char *database,
                   struct sqle_sess **out, struct sqle_error *err);
/* The user's role (enum nines_role): statements beyond it get 42501. A new
 * session is an admin until this is called. */
void sqle_sess_set_role(struct sqle_sess *s, uint32_t role);
/* Rolls back an open transaction block, frees the session's statements. */
void sqle_sess_close(struct sqle_sess *s);
/* ReadyForQuery's status: 'I' idle, 'T' in a block, 'E' in a failed block. */
char sqle_sess_status(const struct sqle_sess *s);
/* Any thread: ask the statement running now (or the next) to stop with
 * 57014 query_canceled. */
void sqle_sess_cancel(struct sqle_sess *s);

/* The ParameterStatus set a session reports at startup: calls fn for each
 * (name, value) pair (server_version, server_encoding, client_encoding,
 * DateStyle, IntervalStyle, TimeZone, integer_datetimes,
 * standard_conforming_strings, application_name, is_superuser,
 * session_authorization). Startup parameters the client sent are given to
 * sqle_sess_set first. */
void sqle_sess_params(const struct sqle_sess *s, void (*fn)(void *arg, const char *name,
                                                             const char *value),
                      void *arg);
/* Set a session parameter from the startup packet (options like
 * application_name, client_encoding, DateStyle). An unknown name is kept;
 * a bad value of a known one is an error (the protocol sends FATAL). */
int sqle_sess_set(struct sqle_sess *s, const char *name, const char *value,
                  struct sqle_error *err);

/* Parse query text into its statements. Simple Query may hold any number
 * (*nout 0 for an empty query: EmptyQueryResponse); Parse needs exactly
 * one (one_only: more is 42601). param_oids[0..nparam_oids) are the types
 * the client declared (0 = infer); the rest are inferred from the columns
 * they are compared with or assigned to (text when nothing tells).
 * Statements are freed with sqle_stmt_free; *out with free(). Parsing
 * does not talk to the cluster beyond reading table definitions. */
int sqle_parse(struct sqle_sess *s, const char *sql, const uint32_t *param_oids,
               size_t nparam_oids, int one_only, struct sqle_stmt ***out, size_t *nout,
               struct sqle_error *err);
void sqle_stmt_free(struct sqle_stmt *st);
/* The statement's $n parameters (ParameterDescription). */
size_t sqle_stmt_nparams(const struct sqle_stmt *st);
uint32_t sqle_stmt_param_oid(const struct sqle_stmt *st, size_t i);
/* Its result columns (RowDescription): returns the count, 0 with *cols
 * NULL for a statement that returns no rows (NoData). */
int sqle_stmt_describe(struct sqle_sess *s, struct sqle_stmt *st, const struct sqle_col **cols,
                       struct sqle_error *err);

/* What sqle_exec produced. */
enum sqle_result_kind {
    SQLE_R_COMMAND = 1,      /* CommandComplete with tag only */
    SQLE_R_ROWS = 2,         /* rows, then CommandComplete with tag ("SELECT n") */
    SQLE_R_COPY_IN = 3,      /* the client must now send COPY data (CopyInResponse) */
};

/* Execute a parsed statement with its parameters in text format
 * (params[i] NULL: SQL NULL; lens[i] its length). On success *out is a
 * result (free with sqle_result_free). On error the session's block, if
 * any, becomes failed ('E'); statements in a failed block other than
 * ROLLBACK / COMMIT get 25P02. */
int sqle_exec(struct sqle_sess *s, struct sqle_stmt *st, const char *const *params,
              const int *lens, size_t nparams, struct sqle_result **out, struct sqle_error *err);

enum sqle_result_kind sqle_result_kind(const struct sqle_result *r);
const char *sqle_result_tag(const struct sqle_result *r);   /* "INSERT 0 1", "SELECT 3" */
/* Columns of a ROWS result (or the COPY_IN column count with NULL cols). */
size_t sqle_result_ncols(const struct sqle_result *r, const struct sqle_col **cols);
size_t sqle_result_nrows(const struct sqle_result *r);
/* Text value of (row, col); NULL for SQL NULL; *len its length. */
const char *sqle_result_value(const struct sqle_result *r, size_t row, size_t col, int *len);
/* Notices raised by the statement (NoticeResponse before its completion). */
size_t sqle_result_nnotices(const struct sqle_result *r);
const struct sqle_error *sqle_result_notice(const struct sqle_result *r, size_t i);
/* Session parameters the statement changed (ParameterStatus after it). */
size_t sqle_result_nparams(const struct sqle_result *r);
void sqle_result_param(const struct sqle_result *r, size_t i, const char **name,
                       const char **value);
void sqle_result_free(struct sqle_result *r);

/* COPY FROM STDIN, after a SQLE_R_COPY_IN result: the CopyData payloads
 * in order (any split; rows may span payloads), then done (the "\." line,
 * if any, ends the data too; returns a COMMAND result "COPY n") or fail
 * (CopyFail: nothing is loaded, the error is 57014 with the client's
 * message). Until done/fail the session accepts nothing else. A bad row
 * makes done (or an earlier copy_data) fail with 22P02 naming line and
 * column; nothing is loaded. */
int sqle_copy_data(struct sqle_sess *s, const char *buf, size_t len, struct sqle_error *err);
int sqle_copy_done(struct sqle_sess *s, struct sqle_result **out, struct sqle_error *err);
void sqle_copy_fail(struct sqle_sess *s, const char *client_msg, struct sqle_error *err);

#endif
