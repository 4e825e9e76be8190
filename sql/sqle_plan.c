/* sqle planning: one libpg_query RawStmt → a struct sqle_stmt (what to
 * run, its parameters and result columns). Every construct not mapped is
 * 0A000 naming it (sql/README.md "Statements"). */
#include "sqle_int.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef PgQuery__Node Node;

static int pos_of(int32_t loc) { return loc >= 0 ? loc + 1 : 0; }

static const char *str_of(const Node *n)
{
    return n && n->node_case == PG_QUERY__NODE__NODE_STRING ? n->string->sval : NULL;
}

/* A table named in a statement: schema public (or none) only. */
static int plan_table(struct sqle_sess *s, struct sqle_stmt *st, const PgQuery__RangeVar *rv,
                      struct sqle_error *e)
{
    if (!rv)
        return sq_err(e, "42601", 0, "statement without a table");
    if (rv->schemaname && rv->schemaname[0] && strcmp(rv->schemaname, "public"))
        return sq_err(e, "3F000", pos_of(rv->location), "schema \"%s\" does not exist (tables "
                      "live in public)", rv->schemaname);
    if (sq_table_load(s, rv->relname, 0, &st->t, e, pos_of(rv->location)))
        return -1;
    st->have_table = true;
    return 0;
}

static void set_col(struct sqle_col *c, const char *name, uint32_t oid, int32_t typmod,
                    uint32_t table_oid, int attnum)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->type_oid = oid == OID_UNKNOWN ? OID_TEXT : oid;
    c->typlen = sq_typlen(c->type_oid);
    c->typmod = typmod;
    c->table_oid = table_oid;
    c->attnum = (int16_t)attnum;
}

/* ---- WHERE ---------------------------------------------------------------- */

static void conjuncts(struct sx *e, struct sx **out, uint32_t *n, uint32_t max)
{
    if (!e)
        return;
    if (e->kind == X_AND) {
        for (uint32_t i = 0; i < e->nargs; i++)
            conjuncts(e->args[i], out, n, max);
        return;
    }
    if (*n < max)
        out[(*n)++] = e;
}

/* Is c `col OP value` (either side) for column col with a column-free
 * value? Returns the value and the operator seen from the column's side. */
static struct sx *col_cmp(struct sx *c, int col, uint8_t *op)
{
    if (c->kind != X_CMP)
        return NULL;
    struct sx *l = c->args[0], *r = c->args[1];
    if (l->kind == X_COL && l->col == col && !sq_expr_has_cols(r)) {
        *op = c->op;
        return r;
    }
    if (r->kind == X_COL && r->col == col && !sq_expr_has_cols(l)) {
        static const uint8_t flip[] = {[OP_EQ] = OP_EQ, [OP_NE] = OP_NE, [OP_LT] = OP_GT,
                                       [OP_LE] = OP_GE, [OP_GT] = OP_LT, [OP_GE] = OP_LE};
        *op = flip[c->op];
        return l;
    }
    return NULL;
}

int sq_plan_where(struct sq_ctx *x, const void *where, struct sq_where *w)
{
    memset(w, 0, sizeof *w);
    w->access = A_SCAN;
    if (!where)
        return 0;
    if (sq_expr(x, where, &w->filter))
        return -1;
    sq_expr_hint(x, w->filter, OID_BOOL);
    const struct sq_table *t = x->t;
    struct sx *cj[64];
    uint32_t n = 0;
    conjuncts(w->filter, cj, &n, 64);
    uint32_t used = 0;
    for (uint32_t k = 0; k < t->npk; k++) {
        struct sx *v = NULL;
        for (uint32_t i = 0; i < n && !v; i++) {
            uint8_t op;
            struct sx *c = col_cmp(cj[i], (int)t->pk[k], &op);
            if (c && op == OP_EQ)
                v = c, used++;
        }
        if (!v)
            break;
        w->eq[w->neq++] = v;
    }
    if (w->neq == t->npk) {
        w->access = A_POINT;
        w->exact = used == n;
        return 0;
    }
    if (t->npk == 1 && w->neq == 0) {
        for (uint32_t i = 0; i < n; i++) {
            struct sx *c = cj[i];
            if (c->kind == X_IN && !c->negated && c->args[0]->kind == X_COL &&
                c->args[0]->col == (int)t->pk[0]) {
                bool ok = true;
                for (uint32_t k = 1; k < c->nargs; k++)
                    ok = ok && !sq_expr_has_cols(c->args[k]);
                if (ok) {
                    w->access = A_IN;
                    w->in = c;
                    return 0;
                }
            }
        }
    }
    /* a range on the next key column after the equal prefix */
    uint32_t k = w->neq;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t op;
        struct sx *c = col_cmp(cj[i], (int)t->pk[k], &op);
        if (!c)
            continue;
        if ((op == OP_GE || op == OP_GT) && !w->lo)
            w->lo = c;
        if ((op == OP_LE || op == OP_LT) && !w->hi)
            w->hi = c;
    }
    if (w->neq || w->lo || w->hi)
        w->access = A_RANGE;
    return 0;
}

/* ---- SELECT ----------------------------------------------------------- */

static int plan_targets(struct sq_ctx *x, const PgQuery__SelectStmt *sel)
{
    struct sqle_stmt *st = x->st;
    const struct sq_table *t = x->t;
    uint32_t cap = 0;
    for (size_t i = 0; i < sel->n_target_list; i++) {
        const PgQuery__ResTarget *rt = sel->target_list[i]->res_target;
        const Node *v = rt ? rt->val : NULL;
        if (v && v->node_case == PG_QUERY__NODE__NODE_COLUMN_REF &&
            v->column_ref->n_fields &&
            v->column_ref->fields[v->column_ref->n_fields - 1]->node_case ==
                PG_QUERY__NODE__NODE_A_STAR)
            cap += t ? t->nvisible : 0;
        else
            cap++;
    }
    if (cap > SQ_MAX_COLS) /* execution holds a row of at most SQ_MAX_COLS values */
        return sq_err(x->err, "54011", 0, "target lists can have at most %d entries",
                      SQ_MAX_COLS);
    st->sel.targets = arena_alloc(&st->a, (cap ? cap : 1) * sizeof *st->sel.targets);
    st->cols = arena_alloc(&st->a, (cap ? cap : 1) * sizeof *st->cols);
    if (!st->sel.targets || !st->cols)
        return sq_err(x->err, "53200", 0, "out of memory");
    uint32_t n = 0;
    for (size_t i = 0; i < sel->n_target_list; i++) {
        const PgQuery__ResTarget *rt = sel->target_list[i]->res_target;
        if (!rt || !rt->val)
            return sq_err(x->err, "42601", 0, "empty select-list item");
        const Node *v = rt->val;
        int pos = pos_of(rt->location);
        if (v->node_case == PG_QUERY__NODE__NODE_COLUMN_REF && v->column_ref->n_fields &&
            v->column_ref->fields[v->column_ref->n_fields - 1]->node_case ==
                PG_QUERY__NODE__NODE_A_STAR) {
            if (!t)
                return sq_err(x->err, "42601", pos, "SELECT * with no table");
            for (uint32_t c = 0; c < t->ncols; c++) {
                if (t->cols[c].hidden)
                    continue;
                struct sq_target *tg = &st->sel.targets[n];
                memset(tg, 0, sizeof *tg);
                struct sx *e = arena_alloc(&st->a, sizeof *e);
                if (!e)
                    return sq_err(x->err, "53200", 0, "out of memory");
                memset(e, 0, sizeof *e);
                e->kind = X_COL, e->col = (int)c, e->oid = t->cols[c].oid, e->param = -1;
                tg->e = e;
                snprintf(tg->name, sizeof tg->name, "%s", t->cols[c].name);
                set_col(&st->cols[n], tg->name, e->oid, t->cols[c].typmod, t->id, (int)c + 1);
                n++;
            }
            continue;
        }
        struct sq_target *tg = &st->sel.targets[n];
        memset(tg, 0, sizeof *tg);
        /* PostgreSQL names f(...) and f(...)::type after f */
        const char *fname = NULL;
        const Node *fv = v->node_case == PG_QUERY__NODE__NODE_TYPE_CAST && v->type_cast->arg
                             ? v->type_cast->arg : v;
        if (fv->node_case == PG_QUERY__NODE__NODE_FUNC_CALL && fv->func_call->n_funcname)
            fname = str_of(fv->func_call->funcname[fv->func_call->n_funcname - 1]);
        uint32_t naggs = st->sel.naggs;
        x->agg_ok = true;
        int erc = sq_expr(x, v, &tg->e);
        x->agg_ok = false;
        if (erc)
            return -1;
        tg->agg = st->sel.naggs > naggs;
        st->sel.has_agg |= tg->agg;
        const char *name = rt->name && rt->name[0] ? rt->name : NULL;
        int attnum = 0;
        uint32_t toid = 0;
        int32_t typmod = -1;
        if (!name && tg->e->kind == X_COL) {
            name = t->cols[tg->e->col].name;
            attnum = tg->e->col + 1;
            toid = t->id;
            typmod = t->cols[tg->e->col].typmod;
        }
        if (!name && fname)
            name = fname;
        if (!name && tg->e->kind == X_NOW)
            name = "now";
        if (!name && tg->e->kind == X_CAST && tg->e->args[0]->kind == X_COL)
            name = t->cols[tg->e->args[0]->col].name;
        snprintf(tg->name, sizeof tg->name, "%s", name ? name : "?column?");
        set_col(&st->cols[n], tg->name, tg->e->oid, typmod, toid, attnum);
        n++;
    }
    if (st->sel.has_agg)
        for (uint32_t i = 0; i < n; i++)
            if (sq_expr_has_cols(st->sel.targets[i].e))
                return sq_err(x->err, "42803", 0, "column \"%s\" must appear in the GROUP BY "
                              "clause or be used in an aggregate function (GROUP BY is not "
                              "supported)", st->sel.targets[i].name);
    st->sel.ntargets = n;
    st->ncols = n;
    return 0;
}

static int plan_order(struct sq_ctx *x, const PgQuery__SelectStmt *sel)
{
    struct sqle_stmt *st = x->st;
    st->sel.order_col = -1;
    if (!sel->n_sort_clause)
        return 0;
    st->sel.order = arena_alloc(&st->a, sel->n_sort_clause * sizeof *st->sel.order);
    st->sel.order_dsc = arena_alloc(&st->a, sel->n_sort_clause * sizeof *st->sel.order_dsc);
    if (!st->sel.order || !st->sel.order_dsc)
        return sq_err(x->err, "53200", 0, "out of memory");
    bool keyorder = x->t != NULL && sel->n_sort_clause <= x->t->npk;
    bool desc0 = false;
    for (size_t i = 0; i < sel->n_sort_clause; i++) {
        const PgQuery__SortBy *sb = sel->sort_clause[i]->sort_by;
        if (!sb)
            return sq_err(x->err, "42601", 0, "bad ORDER BY item");
        bool desc = sb->sortby_dir == PG_QUERY__SORT_BY_DIR__SORTBY_DESC;
        if (sb->sortby_dir == PG_QUERY__SORT_BY_DIR__SORTBY_USING)
            return sq_err(x->err, "0A000", pos_of(sb->location), "ORDER BY ... USING is not "
                          "supported");
        struct sx *e = NULL;
        const Node *n = sb->node;
        if (n && n->node_case == PG_QUERY__NODE__NODE_A_CONST &&
            n->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL) {
            int k = n->a_const->ival->ival;
            if (k < 1 || (uint32_t)k > st->sel.ntargets)
                return sq_err(x->err, "42P10", pos_of(sb->location), "ORDER BY position %d is "
                              "not in select list", k);
            e = st->sel.targets[k - 1].e;
            if (!e)
                return sq_err(x->err, "0A000", pos_of(sb->location), "ORDER BY an aggregate");
        } else if (n && n->node_case == PG_QUERY__NODE__NODE_COLUMN_REF &&
                   n->column_ref->n_fields == 1 && str_of(n->column_ref->fields[0])) {
            const char *nm = str_of(n->column_ref->fields[0]);
            for (uint32_t k = 0; k < st->sel.ntargets && !e; k++)
                if (!strcmp(st->sel.targets[k].name, nm) && st->sel.targets[k].e &&
                    !st->sel.targets[k].agg)
                    e = st->sel.targets[k].e;
        }
        if (!e && sq_expr(x, n, &e))
            return -1;
        st->sel.order[i] = e;
        st->sel.order_dsc[i] = desc;
        if (i == 0)
            desc0 = desc;
        if (!(x->t && e->kind == X_COL && e->col == (int)x->t->pk[i] && desc == desc0))
            keyorder = false;
    }
    st->sel.norder = (uint32_t)sel->n_sort_clause;
    st->sel.order_key = keyorder;
    st->sel.order_desc = desc0;
    return 0;
}

static int plan_select(struct sqle_sess *s, struct sq_ctx *x, const PgQuery__SelectStmt *sel)
{
    struct sqle_stmt *st = x->st;
    struct sqle_error *e = x->err;
    /* catalog queries first: they use joins, GROUP BY, UNION ... that
     * queries of tables may not */
    bool is_cat = false;
    if (sq_plan_catalog(x, sel, &is_cat))
        return -1;
    if (is_cat)
        return 0;
    if (sel->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
        sel->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED)
        return sq_err(e, "0A000", 0, "UNION / INTERSECT / EXCEPT are not supported");
    if (sel->n_values_lists)
        return sq_err(e, "0A000", 0, "VALUES as a query is not supported");
    if (sel->with_clause)
        return sq_err(e, "0A000", 0, "WITH (common table expressions) is not supported");
    if (sel->into_clause)
        return sq_err(e, "0A000", 0, "SELECT INTO is not supported");
    if (sel->n_group_clause || sel->having_clause)
        return sq_err(e, "0A000", 0, "GROUP BY / HAVING are not supported");
    if (sel->n_distinct_clause)
        return sq_err(e, "0A000", 0, "SELECT DISTINCT is not supported");
    if (sel->n_window_clause)
        return sq_err(e, "0A000", 0, "WINDOW is not supported");
    if (sel->n_locking_clause)
        return sq_err(e, "0A000", 0, "SELECT ... FOR UPDATE / FOR SHARE is not supported yet "
                      "(reads take shared locks held to the end of the transaction)");
    st->kind = K_SELECT;
    snprintf(st->tag, sizeof st->tag, "SELECT");
    if (sel->n_from_clause > 1)
        return sq_err(e, "0A000", 0, "joins (several tables in FROM) are not supported");
    if (sel->n_from_clause == 1) {
        const Node *f = sel->from_clause[0];
        if (f->node_case == PG_QUERY__NODE__NODE_JOIN_EXPR)
            return sq_err(e, "0A000", 0, "JOIN is not supported");
        if (f->node_case == PG_QUERY__NODE__NODE_RANGE_SUBSELECT)
            return sq_err(e, "0A000", 0, "subqueries in FROM are not supported");
        if (f->node_case != PG_QUERY__NODE__NODE_RANGE_VAR)
            return sq_err(e, "0A000", 0, "this kind of FROM item (%d) is not supported",
                          (int)f->node_case);
        if (plan_table(s, st, f->range_var, e))
            return -1;
        x->t = &st->t;
    } else {
        st->no_from = true;
        if (sel->where_clause)
            return sq_err(e, "0A000", 0, "WHERE without FROM is not supported");
    }
    if (plan_targets(x, sel))
        return -1;
    if (x->t && sq_plan_where(x, sel->where_clause, &st->sel.w))
        return -1;
    if (plan_order(x, sel))
        return -1;
    if (sel->limit_option == PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_WITH_TIES)
        return sq_err(e, "0A000", 0, "FETCH ... WITH TIES is not supported");
    if (sel->limit_count) {
        if (sq_expr(x, sel->limit_count, &st->sel.limit))
            return -1;
        sq_expr_hint(x, st->sel.limit, OID_INT8);
        if (sq_expr_has_cols(st->sel.limit))
            return sq_err(e, "42P10", 0, "LIMIT must not refer to columns");
    }
    if (sel->limit_offset) {
        if (sq_expr(x, sel->limit_offset, &st->sel.offset))
            return -1;
        sq_expr_hint(x, st->sel.offset, OID_INT8);
    }
    return 0;
}

/* ---- INSERT / UPDATE / DELETE --------------------------------------------- */

static int col_named(const struct sq_table *t, const char *name)
{
    for (uint32_t i = 0; i < t->ncols; i++)
        if (!t->cols[i].hidden && !strcmp(t->cols[i].name, name))
            return (int)i;
    return -1;
}

static int plan_insert(struct sqle_sess *s, struct sq_ctx *x, const PgQuery__InsertStmt *ins)
{
    struct sqle_stmt *st = x->st;
    struct sqle_error *e = x->err;
    st->kind = K_INSERT;
    snprintf(st->tag, sizeof st->tag, "INSERT");
    if (ins->on_conflict_clause)
        return sq_err(e, "0A000", 0, "INSERT ... ON CONFLICT is not supported");
    if (ins->n_returning_list)
        return sq_err(e, "0A000", 0, "RETURNING is not supported");
    if (ins->with_clause)
        return sq_err(e, "0A000", 0, "WITH is not supported");
    if (plan_table(s, st, ins->relation, e))
        return -1;
    if (st->t.readonly)
        return sq_err(e, "25006", 0, "table \"%s\" is read-only now (its primary key is being "
                      "changed)", st->t.name);
    x->t = &st->t;
    if (ins->n_cols) {
        for (size_t i = 0; i < ins->n_cols; i++) {
            const PgQuery__ResTarget *rt = ins->cols[i]->res_target;
            int c = rt ? col_named(&st->t, rt->name) : -1;
            if (c < 0)
                return sq_err(e, "42703", rt ? pos_of(rt->location) : 0, "column \"%s\" of "
                              "relation \"%s\" does not exist", rt ? rt->name : "?", st->t.name);
            for (size_t k = 0; k < i; k++)
                if (st->insert_map[k] == c)
                    return sq_err(e, "42701", pos_of(rt->location), "column \"%s\" specified "
                                  "more than once", rt->name);
            st->insert_map[i] = c;
        }
        st->ninsert_cols = (uint32_t)ins->n_cols;
    } else {
        for (uint32_t c = 0; c < st->t.ncols; c++)
            if (!st->t.cols[c].hidden)
                st->insert_map[st->ninsert_cols++] = (int)c;
    }
    const Node *sn = ins->select_stmt;
    if (!sn) /* INSERT ... DEFAULT VALUES */
        return sq_err(e, "0A000", 0, "INSERT ... DEFAULT VALUES is not supported");
    if (sn->node_case != PG_QUERY__NODE__NODE_SELECT_STMT || !sn->select_stmt->n_values_lists)
        return sq_err(e, "0A000", 0, "INSERT ... SELECT is not supported (give VALUES)");
    const PgQuery__SelectStmt *vs = sn->select_stmt;
    st->rows = arena_alloc(&st->a, vs->n_values_lists * sizeof *st->rows);
    if (!st->rows)
        return sq_err(e, "53200", 0, "out of memory");
    /* VALUES rows have no columns in scope */
    struct sq_ctx vx = *x;
    vx.t = NULL;
    for (size_t r = 0; r < vs->n_values_lists; r++) {
        const Node *ln = vs->values_lists[r];
        if (ln->node_case != PG_QUERY__NODE__NODE_LIST)
            return sq_err(e, "42601", 0, "bad VALUES row %zu", r + 1);
        const PgQuery__List *li = ln->list;
        if (li->n_items != st->ninsert_cols)
            return sq_err(e, "42601", 0, "INSERT has %s expressions than target columns (row "
                          "%zu: %zu values, %u columns)",
                          li->n_items > st->ninsert_cols ? "more" : "fewer", r + 1, li->n_items,
                          st->ninsert_cols);
        st->rows[r] = arena_alloc(&st->a, (li->n_items ? li->n_items : 1) * sizeof **st->rows);
        if (!st->rows[r])
            return sq_err(e, "53200", 0, "out of memory");
        for (size_t i = 0; i < li->n_items; i++) {
            const Node *it = li->items[i];
            if (it->node_case == PG_QUERY__NODE__NODE_SET_TO_DEFAULT) {
                st->rows[r][i] = NULL; /* DEFAULT: NULL (no column defaults) */
                continue;
            }
            if (sq_expr(&vx, it, &st->rows[r][i]))
                return -1;
            sq_expr_hint(x, st->rows[r][i], st->t.cols[st->insert_map[i]].oid);
        }
    }
    st->nrows = (uint32_t)vs->n_values_lists;
    return 0;
}

static int plan_sets(struct sq_ctx *x, size_t n, PgQuery__Node **tl)
{
    struct sqle_stmt *st = x->st;
    struct sqle_error *e = x->err;
    st->sets = arena_alloc(&st->a, (n ? n : 1) * sizeof *st->sets);
    if (!st->sets)
        return sq_err(e, "53200", 0, "out of memory");
    bool pure = true;
    for (size_t i = 0; i < n; i++) {
        const PgQuery__ResTarget *rt = tl[i]->res_target;
        if (!rt || rt->n_indirection)
            return sq_err(e, "0A000", rt ? pos_of(rt->location) : 0, "this SET item is not "
                          "supported");
        int c = col_named(&st->t, rt->name);
        if (c < 0)
            return sq_err(e, "42703", pos_of(rt->location), "column \"%s\" of relation \"%s\" "
                          "does not exist", rt->name, st->t.name);
        if (st->t.cols[c].pkpos >= 0)
            return sq_err(e, "0A000", pos_of(rt->location), "updating primary-key column \"%s\" "
                          "is not supported (delete and insert the row)", rt->name);
        struct sq_set *set = &st->sets[i];
        memset(set, 0, sizeof *set);
        set->col = c;
        if (sq_expr(x, rt->val, &set->e))
            return -1;
        sq_expr_hint(x, set->e, st->t.cols[c].oid);
        /* col = col + d / col = col - d / col = d + col: an increment */
        const struct sx *ex = set->e;
        uint32_t ct = st->t.cols[c].type;
        if (ex->kind == X_ARITH && (ex->op == OP_ADD || ex->op == OP_SUB) &&
            (ct == NINES_T_INT32 || ct == NINES_T_INT64) && st->t.cols[c].oid != OID_BOOL) {
            if (ex->args[0]->kind == X_COL && ex->args[0]->col == c &&
                !sq_expr_has_cols(ex->args[1])) {
                set->add = true, set->delta = ex->args[1], set->sub = ex->op == OP_SUB;
            } else if (ex->op == OP_ADD && ex->args[1]->kind == X_COL && ex->args[1]->col == c &&
                       !sq_expr_has_cols(ex->args[0])) {
                set->add = true, set->delta = ex->args[0];
            }
        }
        if (!set->add)
            pure = false;
        for (size_t k = 0; k < i; k++)
            if (st->sets[k].col == c)
                return sq_err(e, "42601", pos_of(rt->location), "multiple assignments to the "
                              "same column \"%s\"", rt->name);
    }
    st->nsets = (uint32_t)n;
    st->pure_add = pure;
    return 0;
}

static int plan_update(struct sqle_sess *s, struct sq_ctx *x, const PgQuery__UpdateStmt *u)
{
    struct sqle_stmt *st = x->st;
    struct sqle_error *e = x->err;
    st->kind = K_UPDATE;
    snprintf(st->tag, sizeof st->tag, "UPDATE");
    if (u->n_from_clause)
        return sq_err(e, "0A000", 0, "UPDATE ... FROM is not supported");
    if (u->n_returning_list)
        return sq_err(e, "0A000", 0, "RETURNING is not supported");
    if (u->with_clause)
        return sq_err(e, "0A000", 0, "WITH is not supported");
    if (plan_table(s, st, u->relation, e))
        return -1;
    x->t = &st->t;
    if (plan_sets(x, u->n_target_list, u->target_list))
        return -1;
    if (sq_plan_where(x, u->where_clause, &st->sel.w))
        return -1;
    st->pure_add = st->pure_add && st->sel.w.access == A_POINT && st->sel.w.exact;
    return 0;
}

static int plan_delete(struct sqle_sess *s, struct sq_ctx *x, const PgQuery__DeleteStmt *d)
{
    struct sqle_stmt *st = x->st;
    struct sqle_error *e = x->err;
    st->kind = K_DELETE;
    snprintf(st->tag, sizeof st->tag, "DELETE");
    if (d->n_using_clause)
        return sq_err(e, "0A000", 0, "DELETE ... USING is not supported");
    if (d->n_returning_list)
        return sq_err(e, "0A000", 0, "RETURNING is not supported");
    if (plan_table(s, st, d->relation, e))
        return -1;
    x->t = &st->t;
    return sq_plan_where(x, d->where_clause, &st->sel.w);
}

/* ---- utility statements ------------------------------------------------ */

static int plan_txn(struct sqle_stmt *st, const PgQuery__TransactionStmt *t,
                    struct sqle_error *e)
{
    switch (t->kind) {
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
        st->kind = K_BEGIN;
        snprintf(st->tag, sizeof st->tag, "BEGIN");
        return 0;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
        st->kind = K_BEGIN;
        snprintf(st->tag, sizeof st->tag, "START TRANSACTION");
        return 0;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
        if (t->chain)
            return sq_err(e, "0A000", 0, "COMMIT AND CHAIN is not supported");
        st->kind = K_COMMIT;
        snprintf(st->tag, sizeof st->tag, "COMMIT");
        return 0;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
        if (t->chain)
            return sq_err(e, "0A000", 0, "ROLLBACK AND CHAIN is not supported");
        st->kind = K_ROLLBACK;
        snprintf(st->tag, sizeof st->tag, "ROLLBACK");
        return 0;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO:
        return sq_err(e, "0A000", 0, "savepoints are not supported");
    default:
        return sq_err(e, "0A000", 0, "two-phase commit statements (PREPARE TRANSACTION ...) are "
                      "not supported");
    }
}

static int const_text(const Node *n, char *out, size_t cap)
{
    if (!n)
        return -1;
    if (n->node_case == PG_QUERY__NODE__NODE_A_CONST) {
        const PgQuery__AConst *c = n->a_const;
        switch (c->val_case) {
        case PG_QUERY__A__CONST__VAL_IVAL: snprintf(out, cap, "%d", c->ival->ival); return 0;
        case PG_QUERY__A__CONST__VAL_FVAL: snprintf(out, cap, "%s", c->fval->fval); return 0;
        case PG_QUERY__A__CONST__VAL_SVAL: snprintf(out, cap, "%s", c->sval->sval); return 0;
        case PG_QUERY__A__CONST__VAL_BOOLVAL:
            snprintf(out, cap, "%s", c->boolval->boolval ? "on" : "off");
            return 0;
        default: return -1;
        }
    }
    if (n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST)
        return const_text(n->type_cast->arg, out, cap);
    if (n->node_case == PG_QUERY__NODE__NODE_STRING) {
        snprintf(out, cap, "%s", n->string->sval);
        return 0;
    }
    return -1;
}

static int plan_set(struct sqle_stmt *st, const PgQuery__VariableSetStmt *v,
                    struct sqle_error *e)
{
    snprintf(st->pname, sizeof st->pname, "%s", v->name ? v->name : "");
    switch (v->kind) {
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE: {
        st->kind = K_SET;
        snprintf(st->tag, sizeof st->tag, "SET");
        size_t len = 0;
        st->pvalue[0] = 0;
        for (size_t i = 0; i < v->n_args; i++) {
            char one[256];
            if (const_text(v->args[i], one, sizeof one))
                return sq_err(e, "0A000", 0, "SET %s: this kind of value is not supported",
                              st->pname);
            len += (size_t)snprintf(st->pvalue + len, sizeof st->pvalue - len, "%s%s",
                                    i ? ", " : "", one);
            if (len >= sizeof st->pvalue)
                return sq_err(e, "22023", 0, "SET %s: value too long", st->pname);
        }
        return 0;
    }
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT:
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET:
        st->kind = K_RESET;
        snprintf(st->tag, sizeof st->tag, v->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_RESET
                                              ? "RESET" : "SET");
        return 0;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
        st->kind = K_RESET;
        st->pname[0] = 0;
        snprintf(st->tag, sizeof st->tag, "RESET");
        return 0;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_MULTI:
        /* SET TRANSACTION ... / SET SESSION CHARACTERISTICS: every
         * transaction is serializable (strict two-phase locking) */
        st->kind = K_NOOP;
        snprintf(st->tag, sizeof st->tag, "SET");
        return 0;
    default:
        return sq_err(e, "0A000", 0, "SET ... FROM CURRENT is not supported");
    }
}

static int plan_names(struct sqle_stmt *st, PgQuery__Node **objs, size_t n,
                      struct sqle_error *e, bool rangevars)
{
    if (n > 16)
        return sq_err(e, "54000", 0, "at most 16 tables in one statement, got %zu", n);
    for (size_t i = 0; i < n; i++) {
        const char *schema = NULL, *name = NULL;
        if (rangevars) {
            const PgQuery__RangeVar *rv = objs[i]->range_var;
            if (!rv)
                return sq_err(e, "42601", 0, "bad table name");
            schema = rv->schemaname, name = rv->relname;
        } else {
            const Node *o = objs[i];
            if (o->node_case != PG_QUERY__NODE__NODE_LIST || !o->list->n_items)
                return sq_err(e, "42601", 0, "bad table name");
            const PgQuery__List *li = o->list;
            name = str_of(li->items[li->n_items - 1]);
            if (li->n_items > 1)
                schema = str_of(li->items[li->n_items - 2]);
        }
        if (!name)
            return sq_err(e, "42601", 0, "bad table name");
        if (schema && schema[0] && strcmp(schema, "public"))
            return sq_err(e, "3F000", 0, "schema \"%s\" does not exist", schema);
        snprintf(st->names[i], sizeof st->names[i], "%s", name);
    }
    st->nnames = (uint32_t)n;
    return 0;
}

int sq_plan(struct sqle_sess *s, const char *sql, const void *raw, struct sqle_stmt *st,
            struct sqle_error *e)
{
    const Node *n = raw;
    struct sq_ctx x = {.st = st, .t = NULL, .err = e, .sql = sql};
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        return plan_select(s, &x, n->select_stmt);
    case PG_QUERY__NODE__NODE_INSERT_STMT:
        return plan_insert(s, &x, n->insert_stmt);
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
        return plan_update(s, &x, n->update_stmt);
    case PG_QUERY__NODE__NODE_DELETE_STMT:
        return plan_delete(s, &x, n->delete_stmt);
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
        return plan_txn(st, n->transaction_stmt, e);
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
        return plan_set(st, n->variable_set_stmt, e);
    case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
        st->kind = K_SHOW;
        snprintf(st->tag, sizeof st->tag, "SHOW");
        snprintf(st->pname, sizeof st->pname, "%s", n->variable_show_stmt->name);
        st->cols = arena_alloc(&st->a, sizeof *st->cols);
        if (!st->cols)
            return sq_err(e, "53200", 0, "out of memory");
        set_col(st->cols, st->pname, OID_TEXT, -1, 0, 0);
        st->ncols = 1;
        return 0;
    case PG_QUERY__NODE__NODE_VACUUM_STMT: {
        const PgQuery__VacuumStmt *v = n->vacuum_stmt;
        st->kind = K_NOOP;
        snprintf(st->tag, sizeof st->tag, "%s", v->is_vacuumcmd ? "VACUUM" : "ANALYZE");
        for (size_t i = 0; i < v->n_rels; i++) {
            const Node *r = v->rels[i];
            const PgQuery__RangeVar *rv =
                r->node_case == PG_QUERY__NODE__NODE_VACUUM_RELATION && r->vacuum_relation
                    ? r->vacuum_relation->relation : NULL;
            struct sq_table t;
            if (rv && sq_table_load(s, rv->relname, 0, &t, e, pos_of(rv->location)))
                return -1;
        }
        return 0;
    }
    case PG_QUERY__NODE__NODE_CREATE_STMT:
        return sq_plan_create(&x, n->create_stmt);
    case PG_QUERY__NODE__NODE_DROP_STMT: {
        const PgQuery__DropStmt *d = n->drop_stmt;
        if (d->remove_type != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
            return sq_err(e, "0A000", 0, "DROP of this kind of object is not supported (only "
                          "DROP TABLE)");
        st->kind = K_DROP;
        snprintf(st->tag, sizeof st->tag, "DROP TABLE");
        st->missing_ok = d->missing_ok;
        return plan_names(st, d->objects, d->n_objects, e, false);
    }
    case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
        st->kind = K_TRUNCATE;
        snprintf(st->tag, sizeof st->tag, "TRUNCATE TABLE");
        return plan_names(st, n->truncate_stmt->relations, n->truncate_stmt->n_relations, e,
                          true);
    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT: {
        const PgQuery__AlterTableStmt *a = n->alter_table_stmt;
        if (a->n_cmds != 1 || a->cmds[0]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
            return sq_err(e, "0A000", 0, "ALTER TABLE with %zu actions is not supported (one "
                          "ADD PRIMARY KEY)", a->n_cmds);
        const PgQuery__AlterTableCmd *c = a->cmds[0]->alter_table_cmd;
        const Node *def = c->def;
        if (c->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint || !def ||
            def->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
            return sq_err(e, "0A000", 0, "ALTER TABLE: only ADD PRIMARY KEY (cols) is supported");
        const PgQuery__Constraint *k = def->constraint;
        if (k->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN)
            return sq_err(e, "0A000", pos_of(k->location), "foreign keys are not supported");
        if (k->contype != PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY)
            return sq_err(e, "0A000", pos_of(k->location), "ALTER TABLE: only ADD PRIMARY KEY "
                          "is supported");
        if (k->n_keys == 0 || k->n_keys > SQ_MAX_PK)
            return sq_err(e, "42601", pos_of(k->location), "a primary key needs 1..%d columns",
                          SQ_MAX_PK);
        if (plan_table(s, st, a->relation, e))
            return -1;
        st->kind = K_ADD_PK;
        snprintf(st->tag, sizeof st->tag, "ALTER TABLE");
        for (size_t i = 0; i < k->n_keys; i++) {
            const char *cn = str_of(k->keys[i]);
            if (!cn || col_named(&st->t, cn) < 0)
                return sq_err(e, "42703", pos_of(k->location), "column \"%s\" named in key does "
                              "not exist", cn ? cn : "?");
            snprintf(st->pkcols[i], sizeof st->pkcols[i], "%s", cn);
        }
        st->npkcols = (uint32_t)k->n_keys;
        return 0;
    }
    case PG_QUERY__NODE__NODE_COPY_STMT:
        return sq_plan_copy(&x, n->copy_stmt);
    case PG_QUERY__NODE__NODE_DISCARD_STMT:
        st->kind = K_DISCARD;
        snprintf(st->tag, sizeof st->tag, "DISCARD ALL");
        return 0;
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
        return sq_err(e, "0A000", 0, "EXPLAIN is not supported");
    case PG_QUERY__NODE__NODE_INDEX_STMT:
        return sq_err(e, "0A000", 0, "CREATE INDEX is not supported: rows are found by their "
                      "primary key (there are no secondary indexes)");
    case PG_QUERY__NODE__NODE_VIEW_STMT:
        return sq_err(e, "0A000", 0, "CREATE VIEW is not supported");
    case PG_QUERY__NODE__NODE_PREPARE_STMT:
    case PG_QUERY__NODE__NODE_EXECUTE_STMT:
    case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
        return sq_err(e, "0A000", 0, "SQL-level PREPARE / EXECUTE / DEALLOCATE are not "
                      "supported (use the protocol's Parse / Bind / Execute)");
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
    case PG_QUERY__NODE__NODE_FETCH_STMT:
    case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
        return sq_err(e, "0A000", 0, "DECLARE CURSOR / FETCH / MOVE / CLOSE are not supported "
                      "(use the protocol's portals: Execute with a row limit)");
    default: {
        char nb[64];
        return sq_err(e, "0A000", 0, "this statement (%s) is not supported",
                      sq_node_name((int)n->node_case, nb, sizeof nb));
    }
    }
}
