/* sqle execution of INSERT / UPDATE / DELETE / SELECT against the cluster
 * through the client library's interactive transactions (sql/README.md
 * "Execution"). */
#include "sqle_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SQ_PAGE 1000u     /* rows per scan request */
#define SQ_FLUSH 1000u    /* buffered writes per request (txctl's max_ops is 1024) */

static int cancelled(struct sqle_sess *s, struct sqle_error *e)
{
    if (atomic_load(&s->cancel))
        return sq_err(e, "57014", 0, "canceling statement due to user request");
    return 0;
}

static int cluster_err(struct sqle_sess *s, struct sqle_error *e, int rc, const char *what,
                       const struct sq_table *t)
{
    const char *d = nines_conn_errdetail(s->c);
    s->last_rc = rc;
    if (rc == NINES_ENOTFOUND && strstr(d, "has no row with that key")) {
        sq_err(e, "P0002", 0, "an UPDATE earlier in this transaction was answered before its "
               "row was known to exist, and the row does not exist: the transaction is rolled "
               "back (nines.defer_updates is on)");
        return sq_err_detail(e, d);
    }
    if (rc == NINES_EEXIST) {
        sq_err(e, "23505", 0, "duplicate key value violates unique constraint \"%s_pkey\"",
               t ? t->name : "?");
        return sq_err_detail(e, d);
    }
    if (rc == NINES_ENOTFOUND && strstr(d, "table")) {
        sq_err(e, "42P01", 0, "relation \"%s\" does not exist (any more)", t ? t->name : "?");
        return sq_err_detail(e, d);
    }
    if (rc == NINES_ETYPE) {
        /* the table changed under a kept definition: next time it is read afresh */
        if (t)
            (void)nines_table_get(s->c, t->name, 1, &(struct nines_table_info){0});
        sq_err(e, "42804", 0, "%s: the table's definition no longer matches", what);
        return sq_err_detail(e, d);
    }
    return sq_err_nines(e, rc, what, d);
}

static int flush_if(struct sqle_sess *s, nines_txn *t, size_t at_least, const struct sq_table *tb,
                    struct sqle_error *e)
{
    if (nines_txn_buffered(t) < at_least || nines_txn_buffered(t) == 0)
        return 0;
    int rc = nines_txn_flush(t);
    return rc ? cluster_err(s, e, rc, "write", tb) : 0;
}

/* Evaluate and coerce the key values of a point access; 1: cannot match. */
static int key_vals(struct sqle_sess *s, struct sqle_stmt *st, struct sx **eq, uint32_t n,
                    const struct sv *params, struct arena *a, struct sv *key,
                    struct sqle_error *e)
{
    struct sq_eval ev = {.s = s, .a = a, .params = params, .row = NULL, .err = e};
    for (uint32_t k = 0; k < n; k++) {
        if (sq_eval(&ev, eq[k], &key[k]))
            return -1;
        if (key[k].t == SV_NULL)
            return 1; /* = NULL matches nothing */
        struct sqle_error tmp;
        const struct sq_col *c = &st->t.cols[st->t.pk[k]];
        struct sq_col relaxed = *c;
        relaxed.nullable = true;
        if (sq_coerce(a, &relaxed, st->t.name, &key[k], &tmp, 0))
            return 1; /* out of the column's range or not of its type: no row has it */
    }
    return 0;
}

static int row_in(struct arena *a, const struct sq_table *t, const nines_row *r, struct sv *vals,
                  bool copy)
{
    size_t n = nines_row_ncols(r);
    for (uint32_t i = 0; i < t->ncols; i++) {
        vals[i] = i < n ? sq_from_nines(&t->cols[i], nines_row_value(r, i)) : (struct sv){0};
        if (copy && (vals[i].t == SV_TEXT || vals[i].t == SV_BYTES) && vals[i].len) {
            char *p = arena_alloc(a, vals[i].len);
            if (!p)
                return -1;
            memcpy(p, vals[i].s, vals[i].len);
            vals[i].s = p;
        }
    }
    return 0;
}

struct each {
    struct sqle_sess *s;
    struct sqle_stmt *st;
    const struct sv *params;
    struct arena *a;
    sq_row_fn fn;
    void *arg;
    struct sqle_error *e;
    int rc;                 /* <0 failed, >0 stopped */
    bool reverse;           /* a range in descending key order */
};

static int offer(struct each *x, const struct sv *vals)
{
    const struct sx *f = x->st->sel.w.filter;
    if (f) {
        struct sq_eval ev = {.s = x->s, .a = x->a, .params = x->params, .row = vals, .err = x->e};
        struct sv b;
        if (sq_eval(&ev, f, &b))
            return -1;
        if (!sq_truth(&b))
            return 0;
    }
    return x->fn(x->arg, vals);
}

static int point(struct each *x, nines_txn *t, struct sv *key)
{
    struct sqle_stmt *st = x->st;
    const struct sq_cached *c = sq_cache_get(x->s, &st->t, key);
    if (c)
        return offer(x, c->vals);
    struct nines_value kv[SQ_MAX_PK];
    for (uint32_t k = 0; k < st->t.npk; k++)
        kv[k] = sq_to_nines(&st->t.cols[st->t.pk[k]], &key[k]);
    nines_row *row;
    int rc = nines_txn_get(t, st->t.name, kv, st->t.npk, &row);
    if (rc == NINES_ENOTFOUND && !strstr(nines_conn_errdetail(x->s->c), "table"))
        return 0;
    if (rc)
        return cluster_err(x->s, x->e, rc, "read", &st->t);
    struct sv *vals = arena_alloc(x->a, (st->t.ncols ? st->t.ncols : 1) * sizeof *vals);
    if (!vals || row_in(x->a, &st->t, row, vals, true))
        return sq_err(x->e, "53200", 0, "out of memory");
    return offer(x, vals);
}

static int scan_row(void *arg, const nines_row *r)
{
    struct each *x = arg;
    const struct sq_table *t = &x->st->t;
    struct sv *vals = arena_alloc(x->a, (t->ncols ? t->ncols : 1) * sizeof *vals);
    if (!vals || row_in(x->a, t, r, vals, true)) {
        x->rc = sq_err(x->e, "53200", 0, "out of memory");
        return 1;
    }
    int rc = offer(x, vals);
    if (rc) {
        x->rc = rc;
        return 1;
    }
    return 0;
}

static int bound(struct each *x, struct sx *ex, const struct sq_col *c, struct sv *out)
{
    struct sq_eval ev = {.s = x->s, .a = x->a, .params = x->params, .row = NULL, .err = x->e};
    if (sq_eval(&ev, ex, out))
        return -1;
    struct sqle_error tmp;
    struct sq_col relaxed = *c;
    relaxed.nullable = true;
    if (out->t == SV_NULL || sq_coerce(x->a, &relaxed, x->st->t.name, out, &tmp, 0))
        return 1; /* no usable bound: scan open-ended, the filter decides */
    return 0;
}

/* ---- filters evaluated at the kernels ------------------------------------
 * A conjunct of the WHERE's top-level AND that compares a column with a
 * value known before the scan (constants, parameters, now()) goes to the
 * kernels as a scan filter, so that rows failing it never travel. Only
 * where the kernel's comparison is the one sq_eval makes: integers against
 * integer (and boolean against boolean) columns, numbers against double
 * columns, timestamps, text against text/varchar, bytes against bytea. Not
 * char(n) (blank-padded comparison), not a value the column's type cannot
 * hold, not NULL. The whole WHERE is still evaluated on every row that
 * arrives, so a filter only ever removes rows the WHERE removes too. */
static enum nines_cmp cmp_of(unsigned op, bool flip)
{
    switch (op) {
    case OP_EQ: return NINES_CMP_EQ;
    case OP_NE: return NINES_CMP_NE;
    case OP_LT: return flip ? NINES_CMP_GT : NINES_CMP_LT;
    case OP_LE: return flip ? NINES_CMP_GE : NINES_CMP_LE;
    case OP_GT: return flip ? NINES_CMP_LT : NINES_CMP_GT;
    case OP_GE: return flip ? NINES_CMP_LE : NINES_CMP_GE;
    default: return 0;
    }
}

/* v as the column's kernel value, or false when the kernel would compare
 * it otherwise than the front end */
static bool push_value(const struct sq_col *c, struct sv v, struct nines_value *out)
{
    switch (c->type) {
    case NINES_T_INT32:
        if (c->oid == OID_BOOL ? v.t != SV_BOOL : v.t != SV_INT || v.i < INT32_MIN || v.i > INT32_MAX)
            return false;
        break;
    case NINES_T_INT64:
        if (v.t != SV_INT)
            return false;
        break;
    case NINES_T_DOUBLE:
        if (v.t == SV_INT && v.i >= -(1LL << 53) && v.i <= (1LL << 53))
            v = (struct sv){.t = SV_FLOAT, .f = (double)v.i};
        if (v.t != SV_FLOAT)
            return false;
        break;
    case NINES_T_TIMESTAMP:
        if (v.t != SV_TS)
            return false;
        break;
    case NINES_T_VARSTRING:
        if (v.t != SV_TEXT || c->oid == OID_BPCHAR)
            return false;
        break;
    case NINES_T_VARBYTES:
        if (v.t != SV_BYTES)
            return false;
        break;
    default:
        return false;
    }
    *out = sq_to_nines(c, &v);
    return true;
}

static void push_filters(struct each *x, const struct sx *e, struct nines_filter *f, size_t *n)
{
    if (!e || *n >= NINES_SCAN_FILTERS_MAX)
        return;
    if (e->kind == X_AND) {
        for (uint32_t i = 0; i < e->nargs; i++)
            push_filters(x, e->args[i], f, n);
        return;
    }
    const struct sq_table *t = &x->st->t;
    if ((e->kind == X_ISNULL || e->kind == X_NOTNULL) && e->nargs == 1 &&
        e->args[0]->kind == X_COL && e->args[0]->col >= 0 && (uint32_t)e->args[0]->col < t->ncols) {
        f[(*n)++] = (struct nines_filter){
            .column = (uint32_t)e->args[0]->col,
            .cmp = e->kind == X_ISNULL ? NINES_CMP_IS_NULL : NINES_CMP_IS_NOT_NULL};
        return;
    }
    if (e->kind != X_CMP || e->nargs != 2 || !cmp_of(e->op, false))
        return;
    bool flip = e->args[1]->kind == X_COL;
    const struct sx *col = e->args[flip], *val = e->args[!flip];
    if (col->kind != X_COL || col->col < 0 || (uint32_t)col->col >= t->ncols ||
        sq_expr_has_cols(val))
        return;
    struct sqle_error tmp;
    struct sq_eval ev = {.s = x->s, .a = x->a, .params = x->params, .row = NULL, .err = &tmp};
    struct sv v;
    if (sq_eval(&ev, val, &v) || v.t == SV_NULL)
        return; /* the WHERE decides, as it would without the filter */
    struct nines_value nv;
    if (!push_value(&t->cols[col->col], v, &nv))
        return;
    f[(*n)++] = (struct nines_filter){.column = (uint32_t)col->col, .cmp = cmp_of(e->op, flip),
                                      .value = nv};
}

static int range(struct each *x, nines_txn *t)
{
    struct sqle_stmt *st = x->st;
    const struct sq_where *w = &st->sel.w;
    struct sv lo[SQ_MAX_PK], hi[SQ_MAX_PK];
    uint32_t nlo = 0, nhi = 0;
    if (w->access == A_RANGE) {
        int r = key_vals(x->s, st, (struct sx **)w->eq, w->neq, x->params, x->a, lo, x->e);
        if (r < 0)
            return -1;
        if (r > 0)
            return 0;
        memcpy(hi, lo, w->neq * sizeof *lo);
        nlo = nhi = w->neq;
        const struct sq_col *c = &st->t.cols[st->t.pk[w->neq]];
        if (w->lo) {
            r = bound(x, w->lo, c, &lo[nlo]);
            if (r < 0)
                return -1;
            if (r == 0)
                nlo++;
        }
        if (w->hi) {
            r = bound(x, w->hi, c, &hi[nhi]);
            if (r < 0)
                return -1;
            if (r == 0)
                nhi++;
        }
    }
    struct nines_value klo[SQ_MAX_PK], khi[SQ_MAX_PK];
    for (uint32_t k = 0; k < nlo; k++)
        klo[k] = sq_to_nines(&st->t.cols[st->t.pk[k]], &lo[k]);
    for (uint32_t k = 0; k < nhi; k++)
        khi[k] = sq_to_nines(&st->t.cols[st->t.pk[k]], &hi[k]);
    struct nines_filter f[NINES_SCAN_FILTERS_MAX];
    size_t nf = 0;
    push_filters(x, w->filter, f, &nf);
    nines_scan *sc;
    int rc = nines_scan_open(t, st->t.name, klo, nlo, khi, nhi, f, nf,
                             x->reverse ? NINES_SCAN_REVERSE : 0, &sc);
    if (rc)
        return cluster_err(x->s, x->e, rc, "scan", &st->t);
    while (!nines_scan_done(sc)) {
        if (cancelled(x->s, x->e)) {
            rc = -1;
            break;
        }
        rc = nines_scan_next(sc, SQ_PAGE, scan_row, x);
        if (x->rc) {
            rc = x->rc;
            break;
        }
        if (rc < 0) {
            rc = cluster_err(x->s, x->e, rc, "scan", &st->t);
            break;
        }
        rc = 0;
    }
    nines_scan_close(sc);
    return rc;
}

int sq_each_row(struct sqle_sess *s, nines_txn *t, struct sqle_stmt *st,
                const struct sv *params, struct arena *a, sq_row_fn fn, void *arg,
                struct sqle_error *e)
{
    return sq_each_row_dir(s, t, st, params, a, fn, arg, false, e);
}

int sq_each_row_dir(struct sqle_sess *s, nines_txn *t, struct sqle_stmt *st,
                    const struct sv *params, struct arena *a, sq_row_fn fn, void *arg,
                    bool reverse, struct sqle_error *e)
{
    struct each x = {.s = s, .st = st, .params = params, .a = a, .fn = fn, .arg = arg, .e = e,
                     .reverse = reverse};
    const struct sq_where *w = &st->sel.w;
    struct sv key[SQ_MAX_PK];
    int rc;
    switch (w->access) {
    case A_POINT:
        rc = key_vals(s, st, (struct sx **)w->eq, st->t.npk, params, a, key, e);
        if (rc)
            return rc < 0 ? -1 : 0;
        rc = point(&x, t, key);
        return rc < 0 ? -1 : 0;
    case A_IN: {
        struct sx *one[1];
        for (uint32_t i = 1; i < w->in->nargs; i++) {
            one[0] = w->in->args[i];
            /* the same key twice in the list is one row */
            bool dup = false;
            rc = key_vals(s, st, one, 1, params, a, key, e);
            if (rc < 0)
                return -1;
            if (rc > 0)
                continue;
            for (uint32_t j = 1; j < i && !dup; j++) {
                struct sv k2;
                struct sx *o2[1] = {w->in->args[j]};
                if (key_vals(s, st, o2, 1, params, a, &k2, e) == 0)
                    dup = sq_cmp(&k2, key) == 0;
            }
            if (dup)
                continue;
            rc = point(&x, t, key);
            if (rc)
                return rc < 0 ? -1 : 0;
        }
        return 0;
    }
    default:
        rc = range(&x, t);
        return rc < 0 ? -1 : 0;
    }
}

/* ---- INSERT -------------------------------------------------------------- */

static int exec_insert(struct sqle_sess *s, struct sqle_stmt *st, const struct sv *params,
                       nines_txn *t, struct sqle_result *r, struct sqle_error *e)
{
    struct arena a;
    arena_init(&a, 4096);
    struct sv vals[SQ_MAX_COLS];
    struct nines_value nv[SQ_MAX_COLS];
    struct sq_eval ev = {.s = s, .a = &a, .params = params, .row = NULL, .err = e};
    int rc = 0;
    for (uint32_t row = 0; row < st->nrows && rc == 0; row++) {
        memset(vals, 0, st->t.ncols * sizeof *vals);
        for (uint32_t i = 0; i < st->ninsert_cols && rc == 0; i++) {
            const struct sx *ex = st->rows[row][i];
            if (ex && sq_eval(&ev, ex, &vals[st->insert_map[i]]))
                rc = -1;
        }
        if (st->t.hidden >= 0) {
            vals[st->t.hidden].t = SV_INT;
            vals[st->t.hidden].i = (int64_t)sq_rowkey(s->e);
        }
        for (uint32_t c = 0; c < st->t.ncols && rc == 0; c++) {
            if (sq_coerce(&a, &st->t.cols[c], st->t.name, &vals[c], e, 0))
                rc = -1;
            nv[c] = sq_to_nines(&st->t.cols[c], &vals[c]);
        }
        if (rc)
            break;
        int x = nines_txn_insert(t, st->t.name, nv, st->t.ncols);
        if (x) {
            rc = cluster_err(s, e, x, "INSERT", &st->t);
            break;
        }
        if (st->t.hidden < 0)
            sq_cache_put(s, &st->t, vals);
        if (flush_if(s, t, SQ_FLUSH, &st->t, e))
            rc = -1;
        arena_reset(&a);
    }
    /* a duplicate key is this statement's error: inside a block the writes
     * go out now (outside one, the commit right after carries them); rows
     * with a hidden key cannot collide and wait for the next request */
    if (rc == 0 && s->block != B_IDLE && st->t.hidden < 0 && flush_if(s, t, 1, &st->t, e))
        rc = -1;
    arena_destroy(&a);
    if (rc == 0)
        snprintf(r->tag, sizeof r->tag, "INSERT 0 %u", st->nrows);
    return rc;
}

/* ---- UPDATE / DELETE ------------------------------------------------------ */

struct collect {
    struct sqle_stmt *st;
    struct sv **rows;
    size_t n, cap;
    uint64_t stop_after;    /* 0: all */
    struct sqle_error *e;
};

static int collect_row(void *arg, const struct sv *vals)
{
    struct collect *c = arg;
    if (c->n == c->cap) {
        size_t n = c->cap ? c->cap * 2 : 64;
        struct sv **v = realloc(c->rows, n * sizeof *v);
        if (!v)
            return sq_err(c->e, "53200", 0, "out of memory for %zu rows", n);
        c->rows = v;
        c->cap = n;
    }
    c->rows[c->n++] = (struct sv *)vals;
    return c->stop_after && c->n >= c->stop_after ? 1 : 0;
}

/* Increments go out with the next request instead of at once (one round
 * trip less per UPDATE): always outside a block, where the commit right
 * after carries them and a missing row aborts the statement's own
 * transaction (reported as UPDATE 0: nothing changed, as PostgreSQL would
 * say); inside a block only with nines.defer_updates on, since the UPDATE
 * is answered "UPDATE 1" before the row is known to exist (sql/README.md
 * "Deferred increments"). */
static bool defer_adds(const struct sqle_sess *s)
{
    if (s->block == B_IDLE)
        return true;
    const char *v = sq_param_get(s, "nines.defer_updates");
    return v && (!strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcmp(v, "1"));
}

static int exec_add(struct sqle_sess *s, struct sqle_stmt *st, const struct sv *params,
                    nines_txn *t, struct sqle_result *r, struct sqle_error *e)
{
    bool defer = defer_adds(s);
    struct arena a;
    arena_init(&a, 1024);
    struct sv key[SQ_MAX_PK];
    int rc = key_vals(s, st, st->sel.w.eq, st->t.npk, params, &a, key, e);
    uint64_t n = 0;
    if (rc == 0) {
        struct nines_value kv[SQ_MAX_PK];
        for (uint32_t k = 0; k < st->t.npk; k++)
            kv[k] = sq_to_nines(&st->t.cols[st->t.pk[k]], &key[k]);
        struct sq_eval ev = {.s = s, .a = &a, .params = params, .row = NULL, .err = e};
        nines_row *row = NULL;
        for (uint32_t i = 0; i < st->nsets && rc == 0; i++) {
            struct sv d;
            if (sq_eval(&ev, st->sets[i].delta, &d)) {
                rc = -1;
                break;
            }
            struct sq_col i64 = {.oid = OID_INT8, .nullable = true};
            snprintf(i64.name, sizeof i64.name, "%s", st->t.cols[st->sets[i].col].name);
            if (d.t == SV_NULL) {
                rc = sq_err(e, "0A000", 0, "adding NULL to column \"%s\" (the result would be "
                            "NULL) is not supported", i64.name);
                break;
            }
            if (sq_coerce(&a, &i64, st->t.name, &d, e, st->sets[i].delta->pos)) {
                rc = -1;
                break;
            }
            if (st->sets[i].sub) {
                if (d.i == INT64_MIN) {
                    rc = sq_err(e, "22003", 0, "bigint out of range");
                    break;
                }
                d.i = -d.i;
            }
            int x = defer ? nines_txn_add_deferred(t, st->t.name, kv, st->t.npk,
                                                   (uint32_t)st->sets[i].col, d.i)
                          : nines_txn_add(t, st->t.name, kv, st->t.npk,
                                          (uint32_t)st->sets[i].col, d.i, &row);
            if (x == NINES_ENOTFOUND && i == 0 &&
                !strstr(nines_conn_errdetail(s->c), "table")) {
                break; /* no such row: UPDATE 0 */
            }
            if (x) {
                rc = cluster_err(s, e, x, "UPDATE", &st->t);
                break;
            }
            n = 1;
        }
        if (rc == 0 && n && row) {
            struct sv vals[SQ_MAX_COLS];
            if (row_in(&a, &st->t, row, vals, false) == 0)
                sq_cache_put(s, &st->t, vals);
        } else if (rc == 0 && defer) {
            sq_cache_drop(s, &st->t, key); /* its value is known again only by reading it */
        }
    } else if (rc > 0) {
        rc = 0;
    }
    arena_destroy(&a);
    if (rc == 0)
        snprintf(r->tag, sizeof r->tag, "UPDATE %" PRIu64, n);
    return rc;
}

static int exec_update(struct sqle_sess *s, struct sqle_stmt *st, const struct sv *params,
                       nines_txn *t, struct sqle_result *r, struct sqle_error *e)
{
    if (st->t.readonly)
        return sq_err(e, "25006", 0, "table \"%s\" is read-only now (its primary key is being "
                      "changed)", st->t.name);
    if (st->pure_add)
        return exec_add(s, st, params, t, r, e);
    struct arena a;
    arena_init(&a, 65536);
    struct collect c = {.st = st, .e = e};
    int rc = sq_each_row(s, t, st, params, &a, collect_row, &c, e);
    struct sv nvals[SQ_MAX_COLS];
    struct nines_value nv[SQ_MAX_COLS];
    for (size_t i = 0; rc == 0 && i < c.n; i++) {
        const struct sv *old = c.rows[i];
        memcpy(nvals, old, st->t.ncols * sizeof *nvals);
        struct sq_eval ev = {.s = s, .a = &a, .params = params, .row = old, .err = e};
        for (uint32_t k = 0; k < st->nsets && rc == 0; k++) {
            int col = st->sets[k].col;
            if (sq_eval(&ev, st->sets[k].e, &nvals[col]) ||
                sq_coerce(&a, &st->t.cols[col], st->t.name, &nvals[col], e, st->sets[k].e->pos))
                rc = -1;
        }
        if (rc)
            break;
        for (uint32_t k = 0; k < st->t.ncols; k++)
            nv[k] = sq_to_nines(&st->t.cols[k], &nvals[k]);
        int x = nines_txn_update(t, st->t.name, nv, st->t.ncols);
        if (x)
            rc = cluster_err(s, e, x, "UPDATE", &st->t);
        else
            sq_cache_put(s, &st->t, nvals);
        if (rc == 0 && flush_if(s, t, SQ_FLUSH, &st->t, e))
            rc = -1;
    }
    if (rc == 0 && s->block != B_IDLE && flush_if(s, t, 1, &st->t, e))
        rc = -1;
    if (rc == 0)
        snprintf(r->tag, sizeof r->tag, "UPDATE %zu", c.n);
    free(c.rows);
    arena_destroy(&a);
    return rc;
}

static int exec_delete(struct sqle_sess *s, struct sqle_stmt *st, const struct sv *params,
                       nines_txn *t, struct sqle_result *r, struct sqle_error *e)
{
    if (st->t.readonly)
        return sq_err(e, "25006", 0, "table \"%s\" is read-only now (its primary key is being "
                      "changed)", st->t.name);
    struct arena a;
    arena_init(&a, 65536);
    struct collect c = {.st = st, .e = e};
    int rc = sq_each_row(s, t, st, params, &a, collect_row, &c, e);
    struct nines_value kv[SQ_MAX_PK];
    for (size_t i = 0; rc == 0 && i < c.n; i++) {
        for (uint32_t k = 0; k < st->t.npk; k++)
            kv[k] = sq_to_nines(&st->t.cols[st->t.pk[k]], &c.rows[i][st->t.pk[k]]);
        int x = nines_txn_delete(t, st->t.name, kv, st->t.npk);
        if (x)
            rc = cluster_err(s, e, x, "DELETE", &st->t);
        if (rc == 0 && flush_if(s, t, SQ_FLUSH, &st->t, e))
            rc = -1;
    }
    /* deleted rows leave the read cache */
    if (rc == 0 && c.n)
        s->ncache = 0;
    if (rc == 0 && s->block != B_IDLE && flush_if(s, t, 1, &st->t, e))
        rc = -1;
    if (rc == 0)
        snprintf(r->tag, sizeof r->tag, "DELETE %zu", c.n);
    free(c.rows);
    arena_destroy(&a);
    return rc;
}

/* ---- SELECT --------------------------------------------------------------- */

struct agg_state {
    struct sqle_stmt *st;
    struct sqle_sess *s;
    const struct sv *params;
    struct arena *a;
    struct sv acc[SQ_MAX_AGGS];      /* per aggregate slot */
    int64_t count[SQ_MAX_AGGS];
    bool fsum[SQ_MAX_AGGS];          /* acc.s is a malloc'd copy */
    struct sqle_error *e;
};

static int agg_row(void *arg, const struct sv *vals)
{
    struct agg_state *g = arg;
    struct sq_eval ev = {.s = g->s, .a = g->a, .params = g->params, .row = vals, .err = g->e};
    for (uint32_t i = 0; i < g->st->sel.naggs; i++) {
        const struct sq_aggslot *tg = &g->st->sel.aggs[i];
        if (tg->kind == AG_COUNT_STAR) {
            g->count[i]++;
            continue;
        }
        struct sv v;
        if (sq_eval(&ev, tg->arg, &v))
            return -1;
        if (v.t == SV_NULL)
            continue;
        g->count[i]++;
        struct sv *acc = &g->acc[i];
        switch (tg->kind) {
        case AG_COUNT:
            break;
        case AG_SUM:
            if (v.t == SV_FLOAT || acc->t == SV_FLOAT) {
                double x = acc->t == SV_FLOAT ? acc->f : (double)acc->i;
                double y = v.t == SV_FLOAT ? v.f : (double)v.i;
                acc->t = SV_FLOAT, acc->f = x + y;
            } else if (v.t == SV_INT) {
                if (__builtin_add_overflow(acc->i, v.i, &acc->i))
                    return sq_err(g->e, "22003", 0, "sum out of range (64-bit)");
                acc->t = SV_INT;
            } else {
                return sq_err(g->e, "42883", 0, "sum needs numbers");
            }
            break;
        case AG_MIN:
        case AG_MAX:
            if (acc->t == SV_NULL || (tg->kind == AG_MIN ? sq_cmp(&v, acc) < 0 : sq_cmp(&v, acc) > 0)) {
                *acc = v;
                if ((v.t == SV_TEXT || v.t == SV_BYTES) && v.len) {
                    char *p = malloc(v.len);  /* kept across pages; freed below */
                    if (!p)
                        return sq_err(g->e, "53200", 0, "out of memory");
                    memcpy(p, v.s, v.len);
                    if (g->fsum[i])
                        free((void *)g->acc[i].s);
                    acc->s = p;
                    g->fsum[i] = true;  /* owns a copy */
                }
            }
            break;
        default:
            break;
        }
    }
    return 0;
}

struct sort_ctx {
    struct sqle_stmt *st;
    struct sv **keys;       /* per row: the ORDER BY values */
};
/* qsort takes no argument: the sort in progress on this session thread */
static _Thread_local struct sort_ctx *t_sort;

static int sort_cmp(const void *pa, const void *pb)
{
    struct sort_ctx *sc = t_sort;
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    for (uint32_t k = 0; k < sc->st->sel.norder; k++) {
        int c = sq_cmp(&sc->keys[a][k], &sc->keys[b][k]);
        if (sc->st->sel.order_dsc[k])
            c = -c;
        if (c)
            return c;
    }
    return a < b ? -1 : a > b;
}

static int eval_i64(struct sqle_sess *s, struct arena *a, const struct sv *params,
                    const struct sx *x, int64_t *out, struct sqle_error *e, const char *what)
{
    *out = -1;
    if (!x)
        return 0;
    struct sq_eval ev = {.s = s, .a = a, .params = params, .row = NULL, .err = e};
    struct sv v;
    if (sq_eval(&ev, x, &v))
        return -1;
    if (v.t == SV_NULL)
        return 0;
    if (v.t == SV_TEXT && sq_from_text(a, OID_INT8, -1, v.s, v.len, &v, e, what))
        return -1;
    if (v.t != SV_INT || v.i < 0)
        return sq_err(e, "2201W", x->pos, "%s must not be negative", what);
    *out = v.i;
    return 0;
}

static int exec_select(struct sqle_sess *s, struct sqle_stmt *st, const struct sv *params,
                       struct sqle_result *r, struct sqle_error *e)
{
    uint32_t oids[256];
    for (uint32_t i = 0; i < st->ncols; i++)
        oids[i] = st->cols[i].type_oid;
    struct arena a;
    arena_init(&a, 65536);
    int rc = 0;
    struct sv out[256];
    if (st->no_from) {
        struct sq_eval ev = {.s = s, .a = &a, .params = params, .row = NULL, .err = e};
        for (uint32_t i = 0; i < st->sel.ntargets && rc == 0; i++)
            rc = sq_eval(&ev, st->sel.targets[i].e, &out[i]);
        if (rc == 0)
            rc = sq_result_row(r, out, oids, e);
        if (rc == 0)
            snprintf(r->tag, sizeof r->tag, "SELECT 1");
        arena_destroy(&a);
        return rc;
    }
    nines_txn *t;
    if (sq_txn(s, &t, e)) {
        arena_destroy(&a);
        return -1;
    }
    if (st->sel.has_agg) {
        struct agg_state *g = calloc(1, sizeof *g);
        if (!g) {
            arena_destroy(&a);
            return sq_err(e, "53200", 0, "out of memory");
        }
        g->st = st, g->s = s, g->params = params, g->a = &a, g->e = e;
        rc = sq_each_row(s, t, st, params, &a, agg_row, g, e);
        struct sv aggv[SQ_MAX_AGGS];
        for (uint32_t i = 0; i < st->sel.naggs; i++) {
            uint8_t k = st->sel.aggs[i].kind;
            if (k == AG_COUNT_STAR || k == AG_COUNT)
                aggv[i] = (struct sv){.t = SV_INT, .i = g->count[i]};
            else
                aggv[i] = g->count[i] ? g->acc[i] : (struct sv){0};
        }
        struct sq_eval ev = {.s = s, .a = &a, .params = params, .row = NULL, .err = e,
                             .aggs = aggv};
        for (uint32_t i = 0; i < st->sel.ntargets && rc == 0; i++)
            rc = sq_eval(&ev, st->sel.targets[i].e, &out[i]);
        int64_t lim, off;
        if (rc == 0)
            rc = eval_i64(s, &a, params, st->sel.limit, &lim, e, "LIMIT");
        if (rc == 0)
            rc = eval_i64(s, &a, params, st->sel.offset, &off, e, "OFFSET");
        bool emit = rc == 0 && lim != 0 && off < 1;
        if (emit)
            rc = sq_result_row(r, out, oids, e);
        for (uint32_t i = 0; i < st->sel.naggs; i++)
            if (g->fsum[i])
                free((void *)g->acc[i].s);
        free(g);
        if (rc == 0)
            snprintf(r->tag, sizeof r->tag, "SELECT %d", emit ? 1 : 0);
        arena_destroy(&a);
        return rc;
    }
    int64_t lim, off;
    if (eval_i64(s, &a, params, st->sel.limit, &lim, e, "LIMIT") ||
        eval_i64(s, &a, params, st->sel.offset, &off, e, "OFFSET")) {
        arena_destroy(&a);
        return -1;
    }
    if (off < 0)
        off = 0;
    struct collect c = {.st = st, .e = e};
    /* rows come in key order from a scan, descending when asked: with no
     * other order asked, a LIMIT stops the scan early */
    bool ordered_scan = st->sel.w.access != A_POINT && st->sel.w.access != A_IN &&
                        (st->sel.norder == 0 || st->sel.order_key);
    bool reverse = ordered_scan && st->sel.norder && st->sel.order_desc;
    if (lim >= 0 && ordered_scan)
        c.stop_after = (uint64_t)(lim + off);
    if (lim == 0) {
        snprintf(r->tag, sizeof r->tag, "SELECT 0");
        arena_destroy(&a);
        return 0;
    }
    rc = sq_each_row_dir(s, t, st, params, &a, collect_row, &c, reverse, e);
    size_t *idx = NULL;
    if (rc == 0 && c.n) {
        idx = malloc(c.n * sizeof *idx);
        if (!idx)
            rc = sq_err(e, "53200", 0, "out of memory");
        for (size_t i = 0; idx && i < c.n; i++)
            idx[i] = i;
    }
    if (rc == 0 && c.n > 1 && st->sel.norder && !(ordered_scan && st->sel.norder)) {
        struct sort_ctx sc = {.st = st};
        sc.keys = arena_alloc(&a, c.n * sizeof *sc.keys);
        if (!sc.keys)
            rc = sq_err(e, "53200", 0, "out of memory");
        for (size_t i = 0; rc == 0 && i < c.n; i++) {
            sc.keys[i] = arena_alloc(&a, st->sel.norder * sizeof **sc.keys);
            if (!sc.keys[i]) {
                rc = sq_err(e, "53200", 0, "out of memory");
                break;
            }
            struct sq_eval ev = {.s = s, .a = &a, .params = params, .row = c.rows[i], .err = e};
            for (uint32_t k = 0; k < st->sel.norder && rc == 0; k++)
                rc = sq_eval(&ev, st->sel.order[k], &sc.keys[i][k]);
        }
        if (rc == 0) {
            t_sort = &sc;
            qsort(idx, c.n, sizeof *idx, sort_cmp);
            t_sort = NULL;
        }
    }
    size_t emitted = 0;
    for (size_t i = (size_t)off; rc == 0 && i < c.n; i++) {
        if (lim >= 0 && emitted >= (size_t)lim)
            break;
        struct sq_eval ev = {.s = s, .a = &a, .params = params, .row = c.rows[idx[i]], .err = e};
        for (uint32_t k = 0; k < st->sel.ntargets && rc == 0; k++)
            rc = sq_eval(&ev, st->sel.targets[k].e, &out[k]);
        if (rc == 0)
            rc = sq_result_row(r, out, oids, e);
        emitted++;
    }
    if (rc == 0)
        snprintf(r->tag, sizeof r->tag, "SELECT %zu", emitted);
    free(idx);
    free(c.rows);
    arena_destroy(&a);
    return rc;
}

int sq_exec_dml(struct sqle_sess *s, struct sqle_stmt *st, const struct sv *params,
                struct sqle_result **out, struct sqle_error *e)
{
    struct sqle_result *r = sq_result_new(st->kind == K_SELECT ? SQLE_R_ROWS : SQLE_R_COMMAND);
    if (!r)
        return sq_err(e, "53200", 0, "out of memory for a result");
    if (st->ncols) {
        r->owncols = malloc(st->ncols * sizeof *r->owncols);
        if (!r->owncols) {
            sqle_result_free(r);
            return sq_err(e, "53200", 0, "out of memory for a result");
        }
        memcpy(r->owncols, st->cols, st->ncols * sizeof *r->owncols);
        r->cols = r->owncols;
        r->ncols = st->ncols;
    }
    int rc;
    if (st->kind == K_SELECT) {
        rc = exec_select(s, st, params, r, e);
    } else {
        nines_txn *t;
        rc = sq_txn(s, &t, e);
        if (rc == 0) {
            switch (st->kind) {
            case K_INSERT: rc = exec_insert(s, st, params, t, r, e); break;
            case K_UPDATE: rc = exec_update(s, st, params, t, r, e); break;
            case K_DELETE: rc = exec_delete(s, st, params, t, r, e); break;
            default: rc = sq_err(e, "XX000", 0, "not a DML statement: %d", st->kind);
            }
        }
    }
    if (rc) {
        sqle_result_free(r);
        return -1;
    }
    *out = r;
    return 0;
}
