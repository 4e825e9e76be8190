/* sqle internals: values, table definitions, expressions, plans, sessions
 * (sql/README.md "Engine"). Not used outside sql/sqle_*.c. */
#ifndef NINES_SQLE_INT_H
#define NINES_SQLE_INT_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "nines/nines.h"
#include "sqle.h"

/* PostgreSQL type oids the engine shows (pg_type.h). */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_NAME = 19,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_TEXT = 25,
    OID_OID = 26,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_UNKNOWN = 705,
    OID_BPCHAR = 1042,
    OID_VARCHAR = 1043,
    OID_TIMESTAMP = 1114,
    OID_TIMESTAMPTZ = 1184,
    OID_NUMERIC = 1700,
};

/* ---- values ---------------------------------------------------------- */
enum sv_type { SV_NULL = 0, SV_INT, SV_FLOAT, SV_TEXT, SV_BYTES, SV_BOOL, SV_TS };
struct sv {
    uint8_t t;                 /* enum sv_type */
    int64_t i;                 /* INT, BOOL (0/1), TS (µs since the Unix epoch) */
    double f;
    const char *s;             /* TEXT, BYTES: not NUL-terminated; lives in an arena */
    size_t len;
};

/* ---- tables ---------------------------------------------------------- */
#define SQ_MAX_COLS 256
#define SQ_MAX_PK 16
struct sq_col {
    char name[64];
    uint32_t type;             /* enum nines_coltype */
    uint32_t size;
    bool nullable;
    uint32_t oid;              /* the SQL type shown */
    int32_t typmod;
    bool hidden;
    int pkpos;                 /* position in the key, -1: not a key column */
};
struct sq_table {
    char name[64];
    uint32_t id;
    uint32_t ncols;
    struct sq_col cols[SQ_MAX_COLS];
    uint32_t npk;
    uint32_t pk[SQ_MAX_PK];
    int hidden;                /* the hidden row-key column, -1: none */
    uint32_t nvisible;
    bool readonly;
    uint32_t method, nfrags;
};

/* ---- errors ---------------------------------------------------------- */
int sq_err(struct sqle_error *e, const char *state, int pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int sq_err_detail(struct sqle_error *e, const char *detail);
/* A cluster error code (and the connection's detail) as a SQL error. */
int sq_err_nines(struct sqle_error *e, int rc, const char *what, const char *detail);
const char *sq_state_of(int rc);

/* ---- types and text -------------------------------------------------- */
const char *sq_type_name(uint32_t oid);
int16_t sq_typlen(uint32_t oid);
/* The stored type for a SQL type: type and size out (enum nines_coltype). */
int sq_type_from_name(const char *name, int32_t mod, uint32_t *oid, int32_t *typmod,
                      uint32_t *type, uint32_t *size, struct sqle_error *e, int pos);
/* Text (client) → value of SQL type oid (into arena a). */
int sq_from_text(struct arena *a, uint32_t oid, int32_t typmod, const char *p, size_t len,
                 struct sv *out, struct sqle_error *e, const char *what);
/* Value → text (arena a); *outp NULL for SQL NULL. */
int sq_to_text(struct arena *a, uint32_t oid, const struct sv *v, const char **outp,
               size_t *outlen);
/* Coerce v to a column's type (range, width, char(n) padding). */
int sq_coerce(struct arena *a, const struct sq_col *c, const char *table, struct sv *v,
              struct sqle_error *e, int pos);
/* sv ↔ nines_value for column c. */
struct nines_value sq_to_nines(const struct sq_col *c, const struct sv *v);
struct sv sq_from_nines(const struct sq_col *c, struct nines_value v);
int sq_cmp(const struct sv *a, const struct sv *b);   /* NULL first; comparable types */
uint32_t sq_oid_of_sv(const struct sv *v);
/* Format a timestamp (µs since the epoch, UTC). */
void sq_fmt_ts(int64_t us, char *buf, size_t n);

/* ---- expressions ----------------------------------------------------- */
enum sx_kind {
    X_CONST = 1, X_PARAM, X_COL, X_ARITH, X_NEG, X_CMP, X_AND, X_OR, X_NOT, X_ISNULL,
    X_NOTNULL, X_NOW, X_CAST, X_IN, X_COALESCE, X_FUNC, X_CONCAT, X_LIKE,
    X_AGG,                     /* an aggregate's result: slot v.i of sel.aggs */
};
enum sx_op { OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT,
             OP_GE };
enum sx_func { F_LOWER = 1, F_UPPER, F_LENGTH, F_ABS, F_VERSION, F_CUR_DB, F_CUR_SCHEMA,
               F_CUR_USER, F_PG_BACKEND_PID, F_CUR_SETTING };
struct sx {
    uint8_t kind;              /* enum sx_kind */
    uint8_t op;                /* enum sx_op / sx_func */
    bool negated;              /* X_IN: NOT IN; X_LIKE: NOT LIKE */
    uint32_t oid;              /* result type */
    int pos;                   /* 1-based position in the query (errors) */
    struct sv v;               /* X_CONST */
    int param;                 /* X_PARAM: 0-based */
    int col;                   /* X_COL: column index */
    uint32_t nargs;
    struct sx **args;
};

/* ---- statements ------------------------------------------------------ */
enum sq_kind {
    K_EMPTY = 0, K_BEGIN, K_COMMIT, K_ROLLBACK, K_SET, K_SHOW, K_RESET, K_NOOP, K_CREATE,
    K_DROP, K_TRUNCATE, K_ADD_PK, K_INSERT, K_UPDATE, K_DELETE, K_SELECT, K_CATALOG,
    K_COPY_FROM, K_DISCARD,
};
enum sq_agg { AG_NONE = 0, AG_COUNT_STAR, AG_COUNT, AG_SUM, AG_MIN, AG_MAX };
struct sq_target {
    char name[64];
    struct sx *e;              /* its expression (aggregates in it are X_AGG nodes) */
    uint8_t agg;               /* non-zero: e holds an aggregate */
};
/* One aggregate of a SELECT: kind and argument (NULL for count(*)). */
struct sq_aggslot {
    uint8_t kind;              /* enum sq_agg */
    struct sx *arg;
};
#define SQ_MAX_AGGS 64
/* Key access a WHERE clause allows. */
enum sq_access { A_SCAN = 0, A_POINT, A_IN, A_RANGE };
struct sq_where {
    struct sx *filter;         /* the whole WHERE (always re-checked), NULL: none */
    uint8_t access;            /* enum sq_access */
    struct sx *eq[SQ_MAX_PK];  /* POINT: a value per key column; RANGE: eq[0..neq) */
    uint32_t neq;
    struct sx *in;             /* A_IN: the X_IN node (single-column key) */
    struct sx *lo, *hi;        /* RANGE: bounds of key column neq (inclusive prefix) */
    bool exact;                /* the WHERE is exactly the POINT key equality */
};
struct sq_set {
    int col;
    struct sx *e;
    bool add;                  /* e is col + delta: delta in `delta` */
    struct sx *delta;
    bool sub;
};
struct sq_stmt_sel {
    uint32_t ntargets;
    struct sq_target *targets;
    bool has_agg;
    struct sq_aggslot aggs[SQ_MAX_AGGS];
    uint32_t naggs;
    struct sq_where w;
    int order_col;             /* ORDER BY a column (-1: none; -2: by result position) */
    bool order_desc;
    bool order_key;            /* the order is the key order */
    uint32_t norder;
    struct sx **order;         /* ORDER BY expressions (general) */
    bool *order_dsc;
    struct sx *limit, *offset;
};

struct sq_catplan;
struct sqle_stmt {
    uint8_t kind;              /* enum sq_kind */
    char tag[32];              /* command tag word(s) */
    struct arena a;            /* everything below lives here */
    const char *text;          /* the statement's own text */
    int nparams;
    uint32_t param_oids[256];
    bool have_table;
    struct sq_table t;         /* the table (DML, SELECT from a table, COPY) */
    uint32_t ncols;            /* result columns */
    struct sqle_col *cols;
    /* DML */
    uint32_t ninsert_cols;
    int insert_map[SQ_MAX_COLS];   /* value i goes to column insert_map[i] */
    uint32_t nrows;
    struct sx ***rows;             /* INSERT VALUES rows */
    uint32_t nsets;
    struct sq_set *sets;
    bool pure_add;                 /* UPDATE: every set is col += delta, WHERE is the key */
    struct sq_stmt_sel sel;        /* SELECT (and UPDATE/DELETE WHERE in sel.w) */
    /* no-FROM SELECT: targets only */
    bool no_from;
    /* DDL */
    struct nines_table_def def;
    struct nines_column defcols[SQ_MAX_COLS];
    char defnames[SQ_MAX_COLS][64];
    uint32_t defpk[SQ_MAX_PK];
    struct nines_value splits[64];
    char names[16][64];            /* DROP / TRUNCATE: table names */
    uint32_t nnames;
    bool missing_ok;
    bool if_not_exists;
    char pkcols[SQ_MAX_PK][64];    /* ADD PRIMARY KEY */
    uint32_t npkcols;
    /* SET / SHOW */
    char pname[64];
    char pvalue[256];
    bool set_default;
    /* catalog */
    struct sq_catplan *catp;       /* K_CATALOG: sqle_cat.c */
    /* COPY */
    int copy_cols[SQ_MAX_COLS];
    uint32_t ncopy_cols;
    char copy_delim;
    char copy_null[16];
    char (*copy_names)[64];        /* the COPY's column list (resolved at start) */
    uint32_t ncopy_names;
};

/* ---- sessions -------------------------------------------------------- */
struct sqle {
    struct sqle_config cfg;
    char conf_path[512];
    char user[64], password[128]; /* the sessions' login to the cluster ("": none) */
    uint64_t rowkey_base;          /* hidden row keys: node id << 56 | start µs + n */
    _Atomic uint64_t rowkey_next;
    /* tests of planning without a cluster: table definitions from here
     * (sqle_plan_test); NULL in a node */
    int (*test_table_get)(void *ctx, const char *name, struct nines_table_info *out);
    /* and the catalog queries' table list (fuzz/fuzz_sql.c); NULL in a node */
    int (*test_tables)(void *ctx, nines_table_fn fn, void *arg);
    void *test_ctx;
    /* sessions open without a cluster connection (the fuzz harnesses):
     * whatever needs the cluster fails with 08003 (sq_need_conn) */
    bool no_cluster;
};

enum sq_block { B_IDLE = 0, B_OPEN, B_FAILED };

struct sq_param { char name[64]; char value[256]; bool report; };
#define SQ_MAX_PARAMS 64

/* A row this transaction wrote (and holds an X lock on): a later read of
 * the same key in the same transaction is answered from here. */
struct sq_cached {
    char table[64];
    uint8_t key[256];
    size_t klen;
    uint32_t ncols;
    struct sv vals[SQ_MAX_COLS];
};
#define SQ_CACHE_MAX 16

struct sqle_sess {
    struct sqle *e;
    nines_conn *c;
    char user[64], database[64];
    uint32_t role;                 /* the user's role (enum nines_role; sqle_sess_set_role) */
    uint8_t block;                 /* enum sq_block */
    nines_txn *txn;                /* the open cluster transaction, NULL: none */
    struct arena txa;              /* transaction-lifetime memory (cache) */
    struct sq_cached cache[SQ_CACHE_MAX];
    uint32_t ncache;
    struct sq_param params[SQ_MAX_PARAMS];
    uint32_t nparams;
    atomic_bool cancel;
    int last_rc;                   /* the cluster's code of the statement's last failure */
    /* COPY in progress */
    struct sqle_stmt *copy;
    char *copybuf;                 /* an incomplete line */
    size_t copylen, copycap;
    uint64_t copy_line;
    uint64_t copy_rows;
    bool copy_ended;
    bool copy_failed;
    struct sqle_error copy_err;
    struct arena copya;
    bool copy_own_txn;             /* COPY outside a block: its own transaction */
};

struct sqle_result {
    uint8_t kind;
    char tag[64];
    uint32_t ncols;
    const struct sqle_col *cols;
    struct sqle_col *owncols;
    size_t nrows, caprows;
    const char **vals;             /* nrows * ncols */
    int *lens;
    struct sqle_error notices[4];
    uint32_t nnotices;
    char pnames[4][64], pvals[4][256];
    uint32_t npset;
    struct arena a;
};

/* sqle_sess.c */
struct sqle_result *sq_result_new(uint8_t kind);
int sq_result_row(struct sqle_result *r, const struct sv *vals, const uint32_t *oids,
                  struct sqle_error *e);
void sq_result_notice(struct sqle_result *r, const char *state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sq_param_set(struct sqle_sess *s, const char *name, const char *value,
                 struct sqle_result *r, struct sqle_error *e);
const char *sq_param_get(const struct sqle_sess *s, const char *name);
int sq_txn(struct sqle_sess *s, nines_txn **t, struct sqle_error *e);
/* 0 when the session has a cluster connection, else -1 with 08003. */
int sq_need_conn(struct sqle_sess *s, struct sqle_error *e);
int sq_table_load(struct sqle_sess *s, const char *name, int refresh, struct sq_table *t,
                  struct sqle_error *e, int pos);
void sq_cache_put(struct sqle_sess *s, const struct sq_table *t, const struct sv *vals);
void sq_cache_drop(struct sqle_sess *s, const struct sq_table *t, const struct sv *key);
const struct sq_cached *sq_cache_get(struct sqle_sess *s, const struct sq_table *t,
                                     const struct sv *key);
uint64_t sq_rowkey(struct sqle *e);

/* sqle_expr.c (nodes are PgQuery__Node, passed as void * to keep
 * pg_query.pb-c.h out of this header) */
struct sq_ctx {
    struct sqle_stmt *st;
    const struct sq_table *t;      /* columns in scope, NULL: none */
    struct sqle_error *err;
    const char *sql;               /* the whole query text */
    bool agg_ok;                   /* aggregates allowed here (a SELECT's targets) */
};
int sq_expr(struct sq_ctx *x, const void *node, struct sx **out);
/* Give untyped parameters in e the type oid (inference). */
void sq_expr_hint(struct sq_ctx *x, struct sx *e, uint32_t oid);
struct sq_eval {
    struct sqle_sess *s;
    struct arena *a;
    const struct sv *params;
    const struct sv *row;          /* the current row's values (table order), NULL: none */
    struct sqle_error *err;
    const struct sv *aggs;         /* the aggregates' results (X_AGG), NULL: none */
};
int sq_eval(struct sq_eval *ev, const struct sx *e, struct sv *out);
bool sq_expr_has_cols(const struct sx *e);
int sq_agg_of(const char *name);
/* PostgreSQL's name of a parse-tree node kind ("DeclareCursorStmt"), from
 * libpg_query's descriptor, into buf; "node N" when it is not known. */
const char *sq_node_name(int node_case, char *buf, size_t n);   /* enum sq_agg of a function name, AG_NONE: not one */
/* SQL LIKE: % any run, _ one character, backslash escapes the next. */
int sq_like_match(const char *s, size_t n, const char *p, size_t m);
int sq_truth(const struct sv *v);  /* 1 true, 0 false/NULL */

/* sqle_plan.c */
int sq_plan(struct sqle_sess *s, const char *sql, const void *raw, struct sqle_stmt *st,
            struct sqle_error *e);
int sq_plan_where(struct sq_ctx *x, const void *where, struct sq_where *w);

/* sqle_exec.c */
int sq_exec_dml(struct sqle_sess *s, struct sqle_stmt *st, const struct sv *params,
                struct sqle_result **out, struct sqle_error *e);
/* Rows of st's table matching st->sel.w, calls fn per row (vals in table
 * order); fn returns <0 to fail, >0 to stop. */
typedef int (*sq_row_fn)(void *arg, const struct sv *vals);
int sq_each_row(struct sqle_sess *s, nines_txn *t, struct sqle_stmt *st,
                const struct sv *params, struct arena *a, sq_row_fn fn, void *arg,
                struct sqle_error *e);
/* The same; a range or full scan in descending key order when reverse. */
int sq_each_row_dir(struct sqle_sess *s, nines_txn *t, struct sqle_stmt *st,
                    const struct sv *params, struct arena *a, sq_row_fn fn, void *arg,
                    bool reverse, struct sqle_error *e);

/* sqle_ddl.c */
int sq_exec_ddl(struct sqle_sess *s, struct sqle_stmt *st, struct sqle_result **out,
                struct sqle_error *e);
int sq_plan_create(struct sq_ctx *x, const void *create);
int sq_plan_copy(struct sq_ctx *x, const void *copy);

/* sqle_cat.c */
int sq_plan_catalog(struct sq_ctx *x, const void *select, bool *is_catalog);
int sq_exec_catalog(struct sqle_sess *s, struct sqle_stmt *st, const struct sv *params,
                    struct sqle_result **out, struct sqle_error *e);
bool sq_is_scratch(const char *name);
int sq_exec_show(struct sqle_sess *s, struct sqle_stmt *st, struct sqle_result **out,
                 struct sqle_error *e);
#endif
