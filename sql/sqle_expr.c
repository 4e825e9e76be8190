/* sqle expressions: libpg_query parse-tree nodes → struct sx, parameter
 * type inference, evaluation over a row (sql/README.md "Expressions"). */
#include "sqle_int.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef PgQuery__Node Node;

static int loc_pos(struct sq_ctx *x, int32_t loc)
{
    (void)x;
    return loc >= 0 ? loc + 1 : 0;
}

static struct sx *nx(struct sq_ctx *x, uint8_t kind, uint32_t nargs, int pos)
{
    struct sx *e = arena_alloc(&x->st->a, sizeof *e);
    if (!e) {
        sq_err(x->err, "53200", 0, "out of memory for an expression");
        return NULL;
    }
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->pos = pos;
    e->col = -1;
    e->param = -1;
    if (nargs) {
        e->args = arena_alloc(&x->st->a, nargs * sizeof *e->args);
        if (!e->args) {
            sq_err(x->err, "53200", 0, "out of memory for an expression");
            return NULL;
        }
        memset(e->args, 0, nargs * sizeof *e->args);
        e->nargs = nargs;
    }
    return e;
}

static const char *str_of(const Node *n)
{
    return n && n->node_case == PG_QUERY__NODE__NODE_STRING ? n->string->sval : NULL;
}

static int col_index(const struct sq_table *t, const char *name)
{
    if (!t)
        return -1;
    for (uint32_t i = 0; i < t->ncols; i++)
        if (!t->cols[i].hidden && !strcmp(t->cols[i].name, name))
            return (int)i;
    return -1;
}

static uint32_t col_oid(const struct sq_col *c) { return c->oid; }

static int expr_const(struct sq_ctx *x, const PgQuery__AConst *c, struct sx **out)
{
    struct sx *e = nx(x, X_CONST, 0, loc_pos(x, c->location));
    if (!e)
        return -1;
    if (c->isnull) {
        e->v.t = SV_NULL;
        e->oid = OID_UNKNOWN;
    } else {
        switch (c->val_case) {
        case PG_QUERY__A__CONST__VAL_IVAL:
            e->v.t = SV_INT;
            e->v.i = c->ival->ival;
            e->oid = OID_INT4;
            break;
        case PG_QUERY__A__CONST__VAL_FVAL: {
            /* a number too long for int4: int8 when integral, else a double */
            const char *s = c->fval->fval;
            if (!strpbrk(s, ".eE") && strlen(s) < 20) {
                struct sv v;
                if (sq_from_text(&x->st->a, OID_INT8, -1, s, strlen(s), &v, x->err, NULL) == 0) {
                    e->v = v;
                    e->oid = OID_INT8;
                    break;
                }
            }
            if (sq_from_text(&x->st->a, OID_FLOAT8, -1, s, strlen(s), &e->v, x->err, NULL))
                return -1;
            e->oid = OID_NUMERIC;
            break;
        }
        case PG_QUERY__A__CONST__VAL_BOOLVAL:
            e->v.t = SV_BOOL;
            e->v.i = c->boolval->boolval ? 1 : 0;
            e->oid = OID_BOOL;
            break;
        case PG_QUERY__A__CONST__VAL_SVAL: {
            const char *s = c->sval->sval;
            size_t n = strlen(s);
            char *p = arena_alloc(&x->st->a, n + 1);
            if (!p)
                return sq_err(x->err, "53200", 0, "out of memory");
            memcpy(p, s, n + 1);
            e->v.t = SV_TEXT;
            e->v.s = p;
            e->v.len = n;
            e->oid = OID_UNKNOWN;   /* typed by what it meets (sq_expr_hint) */
            break;
        }
        default:
            return sq_err(x->err, "0A000", e->pos, "bit-string constants are not supported");
        }
    }
    *out = e;
    return 0;
}

static int arith_oid(uint32_t a, uint32_t b)
{
    if (a == OID_FLOAT8 || b == OID_FLOAT8 || a == OID_FLOAT4 || b == OID_FLOAT4)
        return OID_FLOAT8;
    if (a == OID_NUMERIC || b == OID_NUMERIC)
        return OID_NUMERIC;
    if (a == OID_INT8 || b == OID_INT8)
        return OID_INT8;
    if (a == OID_UNKNOWN && b == OID_UNKNOWN)
        return OID_INT4;
    if (a == OID_UNKNOWN)
        return b;
    if (b == OID_UNKNOWN)
        return a;
    return OID_INT4;
}

static int expr_aexpr(struct sq_ctx *x, const PgQuery__AExpr *a, struct sx **out)
{
    int pos = loc_pos(x, a->location);
    const char *op = a->n_name ? str_of(a->name[a->n_name - 1]) : NULL;
    struct sx *l = NULL, *r = NULL, *e;
    switch (a->kind) {
    case PG_QUERY__A__EXPR__KIND__AEXPR_OP:
        if (!op)
            return sq_err(x->err, "0A000", pos, "operator without a name");
        if (a->lexpr && sq_expr(x, a->lexpr, &l))
            return -1;
        if (a->rexpr && sq_expr(x, a->rexpr, &r))
            return -1;
        if (!l && r && !strcmp(op, "-")) {
            if (r->kind == X_CONST && r->v.t == SV_INT) {
                r->v.i = -r->v.i;
                r->pos = pos;
                *out = r;
                return 0;
            }
            if (r->kind == X_CONST && r->v.t == SV_FLOAT) {
                r->v.f = -r->v.f;
                *out = r;
                return 0;
            }
            if (!(e = nx(x, X_NEG, 1, pos)))
                return -1;
            e->args[0] = r;
            e->oid = r->oid;
            *out = e;
            return 0;
        }
        if (!l || !r)
            return sq_err(x->err, "0A000", pos, "prefix or postfix operator %s is not supported",
                          op);
        {
            static const struct { const char *s; uint8_t kind, op; } ops[] = {
                {"+", X_ARITH, OP_ADD}, {"-", X_ARITH, OP_SUB}, {"*", X_ARITH, OP_MUL},
                {"/", X_ARITH, OP_DIV}, {"%", X_ARITH, OP_MOD}, {"=", X_CMP, OP_EQ},
                {"<>", X_CMP, OP_NE}, {"!=", X_CMP, OP_NE}, {"<", X_CMP, OP_LT},
                {"<=", X_CMP, OP_LE}, {">", X_CMP, OP_GT}, {">=", X_CMP, OP_GE},
                {"||", X_CONCAT, 0}, {"~~", X_LIKE, 0}, {"!~~", X_LIKE, 1},
            };
            for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
                if (strcmp(ops[i].s, op))
                    continue;
                if (!(e = nx(x, ops[i].kind, 2, pos)))
                    return -1;
                e->op = ops[i].op;
                e->args[0] = l;
                e->args[1] = r;
                if (ops[i].kind == X_ARITH) {
                    e->oid = (uint32_t)arith_oid(l->oid, r->oid);
                    sq_expr_hint(x, l, r->oid);
                    sq_expr_hint(x, r, l->oid);
                } else if (ops[i].kind == X_CMP) {
                    e->oid = OID_BOOL;
                    sq_expr_hint(x, l, r->oid);
                    sq_expr_hint(x, r, l->oid);
                } else if (ops[i].kind == X_LIKE) {
                    e->kind = X_LIKE;
                    e->negated = ops[i].op == 1;
                    e->op = 0;
                    e->oid = OID_BOOL;
                    sq_expr_hint(x, l, OID_TEXT);
                    sq_expr_hint(x, r, OID_TEXT);
                } else {
                    e->oid = OID_TEXT;
                    sq_expr_hint(x, l, OID_TEXT);
                    sq_expr_hint(x, r, OID_TEXT);
                }
                *out = e;
                return 0;
            }
        }
        return sq_err(x->err, "0A000", pos, "operator %s is not supported", op);
    case PG_QUERY__A__EXPR__KIND__AEXPR_IN: {
        if (sq_expr(x, a->lexpr, &l))
            return -1;
        const Node *rn = a->rexpr;
        if (!rn || rn->node_case != PG_QUERY__NODE__NODE_LIST)
            return sq_err(x->err, "0A000", pos, "IN with a subquery is not supported");
        const PgQuery__List *li = rn->list;
        if (!(e = nx(x, X_IN, (uint32_t)li->n_items + 1, pos)))
            return -1;
        e->args[0] = l;
        e->negated = op && !strcmp(op, "<>");
        for (size_t i = 0; i < li->n_items; i++) {
            if (sq_expr(x, li->items[i], &e->args[i + 1]))
                return -1;
            sq_expr_hint(x, e->args[i + 1], l->oid);
        }
        e->oid = OID_BOOL;
        *out = e;
        return 0;
    }
    case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN:
    case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN: {
        if (sq_expr(x, a->lexpr, &l))
            return -1;
        const Node *rn = a->rexpr;
        if (!rn || rn->node_case != PG_QUERY__NODE__NODE_LIST || rn->list->n_items != 2)
            return sq_err(x->err, "42601", pos, "BETWEEN needs two bounds");
        struct sx *lo, *hi, *c1, *c2;
        if (sq_expr(x, rn->list->items[0], &lo) || sq_expr(x, rn->list->items[1], &hi))
            return -1;
        sq_expr_hint(x, lo, l->oid);
        sq_expr_hint(x, hi, l->oid);
        if (!(c1 = nx(x, X_CMP, 2, pos)) || !(c2 = nx(x, X_CMP, 2, pos)) ||
            !(e = nx(x, X_AND, 2, pos)))
            return -1;
        c1->op = OP_GE, c1->args[0] = l, c1->args[1] = lo, c1->oid = OID_BOOL;
        c2->op = OP_LE, c2->args[0] = l, c2->args[1] = hi, c2->oid = OID_BOOL;
        e->args[0] = c1, e->args[1] = c2, e->oid = OID_BOOL;
        if (a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN) {
            struct sx *n = nx(x, X_NOT, 1, pos);
            if (!n)
                return -1;
            n->args[0] = e;
            n->oid = OID_BOOL;
            e = n;
        }
        *out = e;
        return 0;
    }
    case PG_QUERY__A__EXPR__KIND__AEXPR_LIKE:
        if (sq_expr(x, a->lexpr, &l) || sq_expr(x, a->rexpr, &r))
            return -1;
        if (!(e = nx(x, X_LIKE, 2, pos)))
            return -1;
        e->negated = op && !strcmp(op, "!~~");
        e->args[0] = l, e->args[1] = r, e->oid = OID_BOOL;
        sq_expr_hint(x, r, OID_TEXT);
        *out = e;
        return 0;
    default:
        return sq_err(x->err, "0A000", pos, "this kind of operator expression (%d) is not "
                      "supported", (int)a->kind);
    }
}

const char *sq_node_name(int node_case, char *buf, size_t n)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&pg_query__node__descriptor, (unsigned)node_case);
    if (!f || !f->name) {
        snprintf(buf, n, "node %d", node_case);
        return buf;
    }
    /* declare_cursor_stmt -> DeclareCursorStmt */
    size_t k = 0;
    bool up = true;
    for (const char *p = f->name; *p && k + 1 < n; p++) {
        if (*p == '_') {
            up = true;
            continue;
        }
        buf[k++] = up ? (char)toupper((unsigned char)*p) : *p;
        up = false;
    }
    buf[k] = 0;
    return buf;
}

int sq_agg_of(const char *name)
{
    if (!strcasecmp(name, "count"))
        return AG_COUNT;
    if (!strcasecmp(name, "sum"))
        return AG_SUM;
    if (!strcasecmp(name, "min"))
        return AG_MIN;
    if (!strcasecmp(name, "max"))
        return AG_MAX;
    return AG_NONE;
}

static uint32_t agg_oid(int agg, uint32_t arg)
{
    switch (agg) {
    case AG_COUNT_STAR:
    case AG_COUNT: return OID_INT8;
    case AG_SUM:
        if (arg == OID_FLOAT8 || arg == OID_FLOAT4)
            return OID_FLOAT8;
        return arg == OID_INT8 || arg == OID_NUMERIC ? OID_NUMERIC : OID_INT8;
    default: return arg;
    }
}

/* count(*), count/sum/min/max(expr) in a SELECT's targets: a slot of
 * sel.aggs, read back by an X_AGG node once every row is in */
static int expr_agg(struct sq_ctx *x, const PgQuery__FuncCall *f, const char *name, int agg,
                    int pos, struct sx **out)
{
    if (!x->agg_ok)
        return sq_err(x->err, "42803", pos, "aggregate function %s is not allowed here (only "
                      "in a SELECT list, not nested)", name);
    if (!x->t)
        return sq_err(x->err, "0A000", pos, "aggregate without a table");
    if (f->agg_distinct)
        return sq_err(x->err, "0A000", pos, "%s(DISTINCT ...) is not supported", name);
    if (f->agg_filter || f->n_agg_order)
        return sq_err(x->err, "0A000", pos, "aggregate FILTER / ORDER BY is not supported");
    struct sq_stmt_sel *sel = &x->st->sel;
    if (sel->naggs >= SQ_MAX_AGGS)
        return sq_err(x->err, "54000", pos, "more than %d aggregates in one SELECT",
                      SQ_MAX_AGGS);
    struct sq_aggslot slot = {.kind = (uint8_t)agg};
    if (agg == AG_COUNT && f->agg_star) {
        slot.kind = AG_COUNT_STAR;
    } else {
        if (f->n_args != 1)
            return sq_err(x->err, "42883", pos, "%s takes one argument", name);
        x->agg_ok = false; /* no aggregate inside an aggregate */
        int rc = sq_expr(x, f->args[0], &slot.arg);
        x->agg_ok = true;
        if (rc)
            return -1;
    }
    struct sx *e = nx(x, X_AGG, 0, pos);
    if (!e)
        return -1;
    e->v.i = sel->naggs;
    e->oid = agg_oid(slot.kind, slot.arg ? slot.arg->oid : 0);
    sel->aggs[sel->naggs++] = slot;
    *out = e;
    return 0;
}

static int expr_func(struct sq_ctx *x, const PgQuery__FuncCall *f, struct sx **out)
{
    int pos = loc_pos(x, f->location);
    const char *name = f->n_funcname ? str_of(f->funcname[f->n_funcname - 1]) : NULL;
    if (!name)
        return sq_err(x->err, "0A000", pos, "function call without a name");
    if (f->over)
        return sq_err(x->err, "0A000", pos, "window functions are not supported");
    int agg = sq_agg_of(name);
    if (agg)
        return expr_agg(x, f, name, agg, pos, out);
    static const struct { const char *n; uint8_t kind, op; uint32_t oid; int nargs; } fns[] = {
        {"now", X_NOW, 0, OID_TIMESTAMPTZ, 0},
        {"current_timestamp", X_NOW, 0, OID_TIMESTAMPTZ, 0},
        {"lower", X_FUNC, F_LOWER, OID_TEXT, 1},
        {"upper", X_FUNC, F_UPPER, OID_TEXT, 1},
        {"length", X_FUNC, F_LENGTH, OID_INT4, 1},
        {"char_length", X_FUNC, F_LENGTH, OID_INT4, 1},
        {"abs", X_FUNC, F_ABS, 0, 1},
        {"version", X_FUNC, F_VERSION, OID_TEXT, 0},
        {"current_database", X_FUNC, F_CUR_DB, OID_NAME, 0},
        {"current_schema", X_FUNC, F_CUR_SCHEMA, OID_NAME, 0},
        {"pg_backend_pid", X_FUNC, F_PG_BACKEND_PID, OID_INT4, 0},
        {"coalesce", X_COALESCE, 0, 0, -1},
        {"current_setting", X_FUNC, F_CUR_SETTING, OID_TEXT, -2}, /* (name [, missing_ok]) */
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        if (strcasecmp(fns[i].n, name))
            continue;
        if (fns[i].nargs == -2 && (f->n_args < 1 || f->n_args > 2))
            return sq_err(x->err, "42883", pos, "function %s takes 1 or 2 arguments, given %zu",
                          name, f->n_args);
        if (fns[i].nargs >= 0 && (int)f->n_args != fns[i].nargs)
            return sq_err(x->err, "42883", pos, "function %s takes %d argument%s, given %zu",
                          name, fns[i].nargs, fns[i].nargs == 1 ? "" : "s", f->n_args);
        struct sx *e = nx(x, fns[i].kind, (uint32_t)f->n_args, pos);
        if (!e)
            return -1;
        e->op = fns[i].op;
        e->oid = fns[i].oid;
        for (size_t k = 0; k < f->n_args; k++)
            if (sq_expr(x, f->args[k], &e->args[k]))
                return -1;
        if (!e->oid)
            e->oid = f->n_args ? e->args[0]->oid : OID_TEXT;
        *out = e;
        return 0;
    }
    return sq_err(x->err, "42883", pos, "function %s() does not exist here (supported: now, "
                  "lower, upper, length, abs, coalesce, version, current_database, "
                  "current_schema, and count/sum/min/max in a select list)", name);
}

static int expr_cast(struct sq_ctx *x, const PgQuery__TypeCast *c, struct sx **out)
{
    int pos = loc_pos(x, c->location);
    const PgQuery__TypeName *tn = c->type_name;
    const char *name = tn && tn->n_names ? str_of(tn->names[tn->n_names - 1]) : NULL;
    if (!name)
        return sq_err(x->err, "42601", pos, "cast without a type name");
    struct sx *arg;
    if (sq_expr(x, c->arg, &arg))
        return -1;
    uint32_t oid, type, size;
    int32_t typmod;
    int32_t mod = -1;
    if (tn->n_typmods && tn->typmods[0]->node_case == PG_QUERY__NODE__NODE_A_CONST &&
        tn->typmods[0]->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL)
        mod = tn->typmods[0]->a_const->ival->ival + 4;
    if (!strcmp(name, "regclass") || !strcmp(name, "oid") || !strcmp(name, "regtype") ||
        !strcmp(name, "name")) {
        oid = !strcmp(name, "name") ? OID_NAME : OID_OID;
        if (!strcmp(name, "name") || !strcmp(name, "regtype")) {
            oid = OID_TEXT;
        }
    } else if (sq_type_from_name(name, mod, &oid, &typmod, &type, &size, x->err, pos)) {
        return -1;
    }
    struct sx *e = nx(x, X_CAST, 1, pos);
    if (!e)
        return -1;
    e->args[0] = arg;
    e->oid = oid;
    sq_expr_hint(x, arg, oid);
    *out = e;
    return 0;
}

int sq_expr(struct sq_ctx *x, const void *node, struct sx **out)
{
    const Node *n = node;
    *out = NULL;
    if (!n)
        return sq_err(x->err, "42601", 0, "missing expression");
    struct sx *e;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_A_CONST:
        return expr_const(x, n->a_const, out);
    case PG_QUERY__NODE__NODE_PARAM_REF: {
        int num = n->param_ref->number;
        int pos = loc_pos(x, n->param_ref->location);
        if (num < 1 || num > 256)
            return sq_err(x->err, "42P02", pos, "there is no parameter $%d (1..256)", num);
        if (!(e = nx(x, X_PARAM, 0, pos)))
            return -1;
        e->param = num - 1;
        if (num > x->st->nparams) {
            for (int i = x->st->nparams; i < num; i++)
                if (!x->st->param_oids[i])
                    x->st->param_oids[i] = 0;
            x->st->nparams = num;
        }
        e->oid = x->st->param_oids[num - 1] ? x->st->param_oids[num - 1] : OID_UNKNOWN;
        *out = e;
        return 0;
    }
    case PG_QUERY__NODE__NODE_COLUMN_REF: {
        const PgQuery__ColumnRef *cr = n->column_ref;
        int pos = loc_pos(x, cr->location);
        const char *cname = cr->n_fields ? str_of(cr->fields[cr->n_fields - 1]) : NULL;
        if (!cname)
            return sq_err(x->err, "0A000", pos, "* is only allowed as a whole select list or in "
                          "count(*)");
        if (cr->n_fields > 2)
            return sq_err(x->err, "0A000", pos, "column reference with %zu parts",
                          cr->n_fields);
        int ci = col_index(x->t, cname);
        if (ci < 0)
            return sq_err(x->err, "42703", pos, "column \"%s\" does not exist%s%s", cname,
                          x->t ? " in " : "", x->t ? x->t->name : "");
        if (!(e = nx(x, X_COL, 0, pos)))
            return -1;
        e->col = ci;
        e->oid = col_oid(&x->t->cols[ci]);
        *out = e;
        return 0;
    }
    case PG_QUERY__NODE__NODE_A_EXPR:
        return expr_aexpr(x, n->a_expr, out);
    case PG_QUERY__NODE__NODE_BOOL_EXPR: {
        const PgQuery__BoolExpr *b = n->bool_expr;
        int pos = loc_pos(x, b->location);
        uint8_t k = b->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR  ? X_AND
                    : b->boolop == PG_QUERY__BOOL_EXPR_TYPE__OR_EXPR ? X_OR
                                                                     : X_NOT;
        if (!(e = nx(x, k, (uint32_t)b->n_args, pos)))
            return -1;
        for (size_t i = 0; i < b->n_args; i++) {
            if (sq_expr(x, b->args[i], &e->args[i]))
                return -1;
            sq_expr_hint(x, e->args[i], OID_BOOL);
        }
        e->oid = OID_BOOL;
        *out = e;
        return 0;
    }
    case PG_QUERY__NODE__NODE_NULL_TEST: {
        const PgQuery__NullTest *t = n->null_test;
        if (!(e = nx(x, t->nulltesttype == PG_QUERY__NULL_TEST_TYPE__IS_NULL ? X_ISNULL
                                                                              : X_NOTNULL,
                     1, loc_pos(x, t->location))))
            return -1;
        if (sq_expr(x, t->arg, &e->args[0]))
            return -1;
        e->oid = OID_BOOL;
        *out = e;
        return 0;
    }
    case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION: {
        const PgQuery__SQLValueFunction *f = n->sqlvalue_function;
        int pos = loc_pos(x, f->location);
        switch (f->op) {
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP:
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP_N:
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP:
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP_N:
            if (!(e = nx(x, X_NOW, 0, pos)))
                return -1;
            e->oid = f->op <= PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP_N
                         ? OID_TIMESTAMPTZ : OID_TIMESTAMP;
            *out = e;
            return 0;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_USER:
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_USER:
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_SESSION_USER:
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_ROLE:
            if (!(e = nx(x, X_FUNC, 0, pos)))
                return -1;
            e->op = F_CUR_USER;
            e->oid = OID_NAME;
            *out = e;
            return 0;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_CATALOG:
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_SCHEMA:
            if (!(e = nx(x, X_FUNC, 0, pos)))
                return -1;
            e->op = f->op == PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_SCHEMA ? F_CUR_SCHEMA
                                                                                 : F_CUR_DB;
            e->oid = OID_NAME;
            *out = e;
            return 0;
        default:
            return sq_err(x->err, "0A000", pos, "CURRENT_DATE / CURRENT_TIME are not supported "
                          "(no date or time types; use CURRENT_TIMESTAMP)");
        }
    }
    case PG_QUERY__NODE__NODE_FUNC_CALL:
        return expr_func(x, n->func_call, out);
    case PG_QUERY__NODE__NODE_TYPE_CAST:
        return expr_cast(x, n->type_cast, out);
    case PG_QUERY__NODE__NODE_COALESCE_EXPR: {
        const PgQuery__CoalesceExpr *c = n->coalesce_expr;
        if (!(e = nx(x, X_COALESCE, (uint32_t)c->n_args, loc_pos(x, c->location))))
            return -1;
        for (size_t i = 0; i < c->n_args; i++)
            if (sq_expr(x, c->args[i], &e->args[i]))
                return -1;
        e->oid = c->n_args ? e->args[0]->oid : OID_TEXT;
        *out = e;
        return 0;
    }
    case PG_QUERY__NODE__NODE_SUB_LINK:
        return sq_err(x->err, "0A000", loc_pos(x, n->sub_link->location),
                      "subqueries are not supported");
    case PG_QUERY__NODE__NODE_CASE_EXPR:
        return sq_err(x->err, "0A000", loc_pos(x, n->case_expr->location),
                      "CASE expressions are not supported");
    case PG_QUERY__NODE__NODE_A_ARRAY_EXPR:
        return sq_err(x->err, "0A000", loc_pos(x, n->a_array_expr->location),
                      "arrays are not supported");
    default: {
        char nb[64];
        return sq_err(x->err, "0A000", 0, "this kind of expression (%s) is not supported",
                      sq_node_name((int)n->node_case, nb, sizeof nb));
    }
    }
}

void sq_expr_hint(struct sq_ctx *x, struct sx *e, uint32_t oid)
{
    if (!e || oid == OID_UNKNOWN || !oid)
        return;
    if (e->kind == X_PARAM && e->oid == OID_UNKNOWN) {
        e->oid = oid;
        if (!x->st->param_oids[e->param])
            x->st->param_oids[e->param] = oid;
        return;
    }
    if (e->kind == X_CONST && e->oid == OID_UNKNOWN && e->v.t == SV_TEXT) {
        /* an untyped literal takes the type it meets, as in PostgreSQL */
        struct sv v;
        struct sqle_error tmp;
        if (oid != OID_TEXT && oid != OID_VARCHAR && oid != OID_BPCHAR &&
            sq_from_text(&x->st->a, oid, -1, e->v.s, e->v.len, &v, &tmp, NULL) == 0)
            e->v = v;
        e->oid = oid;
        return;
    }
    if ((e->kind == X_ARITH || e->kind == X_NEG || e->kind == X_COALESCE) &&
        e->oid == OID_UNKNOWN) {
        for (uint32_t i = 0; i < e->nargs; i++)
            sq_expr_hint(x, e->args[i], oid);
        e->oid = oid;
    }
}

bool sq_expr_has_cols(const struct sx *e)
{
    if (!e)
        return false;
    if (e->kind == X_COL)
        return true;
    for (uint32_t i = 0; i < e->nargs; i++)
        if (sq_expr_has_cols(e->args[i]))
            return true;
    return false;
}

int sq_truth(const struct sv *v)
{
    if (v->t == SV_BOOL || v->t == SV_INT)
        return v->i != 0;
    return 0;
}

/* ---- evaluation ------------------------------------------------------- */

static int num_of(const struct sv *v, double *d, int64_t *i, bool *isf)
{
    if (v->t == SV_FLOAT) {
        *d = v->f;
        *isf = true;
        return 0;
    }
    if (v->t == SV_INT || v->t == SV_BOOL) {
        *i = v->i;
        *isf = false;
        return 0;
    }
    return -1;
}

int sq_like_match(const char *s, size_t n, const char *p, size_t m)
{
    size_t si = 0, pi = 0, star = (size_t)-1, mark = 0;
    while (si < n) {
        if (pi < m && p[pi] == '\\' && pi + 1 < m && p[pi + 1] == s[si]) {
            pi += 2, si++;
        } else if (pi < m && (p[pi] == '_' || (p[pi] == s[si] && p[pi] != '%'))) {
            pi++, si++;
        } else if (pi < m && p[pi] == '%') {
            star = pi++;
            mark = si;
        } else if (star != (size_t)-1) {
            pi = star + 1;
            si = ++mark;
        } else {
            return 0;
        }
    }
    while (pi < m && p[pi] == '%')
        pi++;
    return pi == m;
}

static int eval_arith(struct sq_eval *ev, const struct sx *e, const struct sv *a,
                      const struct sv *b, struct sv *out)
{
    double da = 0, db = 0;
    int64_t ia = 0, ib = 0;
    bool fa, fb;
    struct sv ta = *a, tb = *b;
    /* a text parameter or literal in arithmetic is read as a number */
    if (ta.t == SV_TEXT && sq_from_text(ev->a, OID_FLOAT8, -1, ta.s, ta.len, &ta, ev->err, NULL))
        return -1;
    if (tb.t == SV_TEXT && sq_from_text(ev->a, OID_FLOAT8, -1, tb.s, tb.len, &tb, ev->err, NULL))
        return -1;
    if (ta.t == SV_TS && tb.t != SV_TS)
        return sq_err(ev->err, "0A000", e->pos, "timestamp arithmetic is not supported");
    if (num_of(&ta, &da, &ia, &fa) || num_of(&tb, &db, &ib, &fb))
        return sq_err(ev->err, "42883", e->pos, "operator does not exist for these operand "
                      "types (numbers only)");
    if (fa || fb) {
        double x = fa ? da : (double)ia, y = fb ? db : (double)ib, r;
        switch (e->op) {
        case OP_ADD: r = x + y; break;
        case OP_SUB: r = x - y; break;
        case OP_MUL: r = x * y; break;
        case OP_DIV:
            if (y == 0)
                return sq_err(ev->err, "22012", e->pos, "division by zero");
            r = x / y;
            break;
        default:
            if (y == 0)
                return sq_err(ev->err, "22012", e->pos, "division by zero");
            r = fmod(x, y);
        }
        out->t = SV_FLOAT;
        out->f = r;
        return 0;
    }
    int64_t r;
    bool ovf = false;
    switch (e->op) {
    case OP_ADD: ovf = __builtin_add_overflow(ia, ib, &r); break;
    case OP_SUB: ovf = __builtin_sub_overflow(ia, ib, &r); break;
    case OP_MUL: ovf = __builtin_mul_overflow(ia, ib, &r); break;
    case OP_DIV:
        if (ib == 0)
            return sq_err(ev->err, "22012", e->pos, "division by zero");
        if (ia == INT64_MIN && ib == -1)
            ovf = true, r = 0;
        else
            r = ia / ib;
        break;
    default:
        if (ib == 0)
            return sq_err(ev->err, "22012", e->pos, "division by zero");
        r = ib == -1 ? 0 : ia % ib;
    }
    if (!ovf && e->oid == OID_INT4 && (r < INT32_MIN || r > INT32_MAX))
        ovf = true;
    if (ovf)
        return sq_err(ev->err, "22003", e->pos, "%s out of range",
                      e->oid == OID_INT4 ? "integer" : "bigint");
    out->t = SV_INT;
    out->i = r;
    return 0;
}

static int eval_cast(struct sq_eval *ev, const struct sx *e, const struct sv *a, struct sv *out)
{
    if (a->t == SV_NULL) {
        *out = *a;
        return 0;
    }
    uint32_t oid = e->oid;
    const char *p;
    size_t n;
    struct sv in = *a;
    if (in.t != SV_TEXT) {
        if (oid == OID_TEXT || oid == OID_VARCHAR || oid == OID_BPCHAR || oid == OID_NAME) {
            if (sq_to_text(ev->a, e->args[0]->oid, &in, &p, &n))
                return sq_err(ev->err, "53200", e->pos, "out of memory");
            out->t = SV_TEXT, out->s = p, out->len = n;
            return 0;
        }
        if ((oid == OID_INT2 || oid == OID_INT4 || oid == OID_INT8 || oid == OID_NUMERIC ||
             oid == OID_OID) && (in.t == SV_INT || in.t == SV_BOOL || in.t == SV_FLOAT)) {
            int64_t v = in.i;
            if (in.t == SV_FLOAT) { /* NaN and beyond int64: out of range, not converted */
                double r = nearbyint(in.f);
                if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0))
                    return sq_err(ev->err, "22003", e->pos, "%s out of range",
                                  sq_type_name(oid));
                v = (int64_t)r;
            }
            if ((oid == OID_INT4 && (v < INT32_MIN || v > INT32_MAX)) ||
                (oid == OID_INT2 && (v < INT16_MIN || v > INT16_MAX)))
                return sq_err(ev->err, "22003", e->pos, "%s out of range", sq_type_name(oid));
            out->t = SV_INT, out->i = v;
            return 0;
        }
        if ((oid == OID_FLOAT8 || oid == OID_FLOAT4) && (in.t == SV_INT || in.t == SV_FLOAT)) {
            out->t = SV_FLOAT, out->f = in.t == SV_INT ? (double)in.i : in.f;
            return 0;
        }
        if (oid == OID_BOOL && in.t == SV_INT) {
            out->t = SV_BOOL, out->i = in.i != 0;
            return 0;
        }
        if ((oid == OID_TIMESTAMP || oid == OID_TIMESTAMPTZ) && in.t == SV_TS) {
            *out = in;
            return 0;
        }
        if (sq_to_text(ev->a, e->args[0]->oid, &in, &p, &n))
            return sq_err(ev->err, "53200", e->pos, "out of memory");
        in.t = SV_TEXT, in.s = p, in.len = n;
    }
    if (oid == OID_TEXT || oid == OID_VARCHAR || oid == OID_BPCHAR || oid == OID_NAME ||
        oid == OID_UNKNOWN) {
        *out = in;
        return 0;
    }
    if (sq_from_text(ev->a, oid, -1, in.s, in.len, out, ev->err, NULL)) {
        ev->err->position = e->pos;
        return -1;
    }
    return 0;
}

int sq_eval(struct sq_eval *ev, const struct sx *e, struct sv *out)
{
    memset(out, 0, sizeof *out);
    struct sv a, b;
    switch (e->kind) {
    case X_CONST:
        *out = e->v;
        return 0;
    case X_PARAM:
        *out = ev->params[e->param];
        return 0;
    case X_COL:
        if (!ev->row)
            return sq_err(ev->err, "42703", e->pos, "column reference without a row");
        *out = ev->row[e->col];
        return 0;
    case X_NEG:
        if (sq_eval(ev, e->args[0], &a))
            return -1;
        if (a.t == SV_NULL)
            return 0;
        if (a.t == SV_FLOAT) {
            out->t = SV_FLOAT, out->f = -a.f;
            return 0;
        }
        if (a.t != SV_INT || a.i == INT64_MIN)
            return sq_err(ev->err, "22003", e->pos, "cannot negate this value");
        out->t = SV_INT, out->i = -a.i;
        return 0;
    case X_ARITH:
        if (sq_eval(ev, e->args[0], &a) || sq_eval(ev, e->args[1], &b))
            return -1;
        if (a.t == SV_NULL || b.t == SV_NULL)
            return 0;
        return eval_arith(ev, e, &a, &b, out);
    case X_CMP: {
        if (sq_eval(ev, e->args[0], &a) || sq_eval(ev, e->args[1], &b))
            return -1;
        if (a.t == SV_NULL || b.t == SV_NULL)
            return 0;
        /* a text operand against a typed one is read as that type */
        if (a.t == SV_TEXT && b.t != SV_TEXT && b.t != SV_BYTES &&
            sq_from_text(ev->a, sq_oid_of_sv(&b), -1, a.s, a.len, &a, ev->err, NULL))
            return -1;
        if (b.t == SV_TEXT && a.t != SV_TEXT && a.t != SV_BYTES &&
            sq_from_text(ev->a, sq_oid_of_sv(&a), -1, b.s, b.len, &b, ev->err, NULL))
            return -1;
        /* char(n) compares without its trailing blanks (PostgreSQL's bpchar) */
        if (a.t == SV_TEXT && b.t == SV_TEXT &&
            (e->args[0]->oid == OID_BPCHAR || e->args[1]->oid == OID_BPCHAR)) {
            while (a.len && a.s[a.len - 1] == ' ')
                a.len--;
            while (b.len && b.s[b.len - 1] == ' ')
                b.len--;
        }
        int c = sq_cmp(&a, &b);
        bool r;
        switch (e->op) {
        case OP_EQ: r = c == 0; break;
        case OP_NE: r = c != 0; break;
        case OP_LT: r = c < 0; break;
        case OP_LE: r = c <= 0; break;
        case OP_GT: r = c > 0; break;
        default: r = c >= 0; break;
        }
        out->t = SV_BOOL, out->i = r;
        return 0;
    }
    case X_AND:
    case X_OR: {
        bool any_null = false;
        for (uint32_t i = 0; i < e->nargs; i++) {
            if (sq_eval(ev, e->args[i], &a))
                return -1;
            if (a.t == SV_NULL) {
                any_null = true;
                continue;
            }
            bool t = sq_truth(&a);
            if (e->kind == X_AND && !t) {
                out->t = SV_BOOL, out->i = 0;
                return 0;
            }
            if (e->kind == X_OR && t) {
                out->t = SV_BOOL, out->i = 1;
                return 0;
            }
        }
        if (!any_null)
            out->t = SV_BOOL, out->i = e->kind == X_AND;
        return 0;
    }
    case X_NOT:
        if (sq_eval(ev, e->args[0], &a))
            return -1;
        if (a.t != SV_NULL)
            out->t = SV_BOOL, out->i = !sq_truth(&a);
        return 0;
    case X_ISNULL:
    case X_NOTNULL:
        if (sq_eval(ev, e->args[0], &a))
            return -1;
        out->t = SV_BOOL;
        out->i = (a.t == SV_NULL) == (e->kind == X_ISNULL);
        return 0;
    case X_NOW: {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        out->t = SV_TS;
        out->i = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        return 0;
    }
    case X_CAST:
        if (sq_eval(ev, e->args[0], &a))
            return -1;
        return eval_cast(ev, e, &a, out);
    case X_AGG:
        if (!ev->aggs)
            return sq_err(ev->err, "42803", e->pos, "an aggregate's value is not known here");
        *out = ev->aggs[e->v.i];
        return 0;
    case X_IN: {
        if (sq_eval(ev, e->args[0], &a))
            return -1;
        if (a.t == SV_NULL)
            return 0;
        bool found = false, null = false;
        for (uint32_t i = 1; i < e->nargs && !found; i++) {
            if (sq_eval(ev, e->args[i], &b))
                return -1;
            if (b.t == SV_NULL) {
                null = true;
                continue;
            }
            if (b.t == SV_TEXT && a.t != SV_TEXT &&
                sq_from_text(ev->a, sq_oid_of_sv(&a), -1, b.s, b.len, &b, ev->err, NULL))
                return -1;
            found = sq_cmp(&a, &b) == 0;
        }
        if (!found && null)
            return 0;
        out->t = SV_BOOL, out->i = found != e->negated;
        return 0;
    }
    case X_COALESCE:
        for (uint32_t i = 0; i < e->nargs; i++) {
            if (sq_eval(ev, e->args[i], out))
                return -1;
            if (out->t != SV_NULL)
                return 0;
        }
        return 0;
    case X_CONCAT: {
        const char *p[2];
        size_t n[2];
        struct sv v[2];
        for (int i = 0; i < 2; i++) {
            if (sq_eval(ev, e->args[i], &v[i]))
                return -1;
            if (v[i].t == SV_NULL)
                return 0;
            if (sq_to_text(ev->a, e->args[i]->oid, &v[i], &p[i], &n[i]))
                return sq_err(ev->err, "53200", e->pos, "out of memory");
        }
        char *s = arena_alloc(ev->a, n[0] + n[1] + 1);
        if (!s)
            return sq_err(ev->err, "53200", e->pos, "out of memory");
        memcpy(s, p[0], n[0]);
        memcpy(s + n[0], p[1], n[1]);
        out->t = SV_TEXT, out->s = s, out->len = n[0] + n[1];
        return 0;
    }
    case X_LIKE:
        if (sq_eval(ev, e->args[0], &a) || sq_eval(ev, e->args[1], &b))
            return -1;
        if (a.t == SV_NULL || b.t == SV_NULL)
            return 0;
        if (a.t != SV_TEXT || b.t != SV_TEXT)
            return sq_err(ev->err, "42883", e->pos, "LIKE needs text operands");
        out->t = SV_BOOL;
        out->i = sq_like_match(a.s, a.len, b.s, b.len) != e->negated;
        return 0;
    case X_FUNC:
        switch (e->op) {
        case F_LOWER:
        case F_UPPER: {
            if (sq_eval(ev, e->args[0], &a))
                return -1;
            if (a.t == SV_NULL)
                return 0;
            if (a.t != SV_TEXT)
                return sq_err(ev->err, "42883", e->pos, "lower/upper need text");
            char *s = arena_alloc(ev->a, a.len + 1);
            if (!s)
                return sq_err(ev->err, "53200", e->pos, "out of memory");
            for (size_t i = 0; i < a.len; i++) {
                char c = a.s[i];
                s[i] = e->op == F_LOWER ? (char)(c >= 'A' && c <= 'Z' ? c + 32 : c)
                                        : (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
            }
            out->t = SV_TEXT, out->s = s, out->len = a.len;
            return 0;
        }
        case F_LENGTH:
            if (sq_eval(ev, e->args[0], &a))
                return -1;
            if (a.t == SV_NULL)
                return 0;
            if (a.t != SV_TEXT && a.t != SV_BYTES)
                return sq_err(ev->err, "42883", e->pos, "length needs text");
            out->t = SV_INT, out->i = (int64_t)a.len;
            return 0;
        case F_ABS:
            if (sq_eval(ev, e->args[0], &a))
                return -1;
            *out = a;
            if (a.t == SV_INT && a.i < 0) {
                if (a.i == INT64_MIN)
                    return sq_err(ev->err, "22003", e->pos, "bigint out of range");
                out->i = -a.i;
            } else if (a.t == SV_FLOAT) {
                out->f = fabs(a.f);
            }
            return 0;
        case F_VERSION: {
            static const char v[] = "PostgreSQL 15.0 (ninesdb SQL front end; a ClustRa-style "
                                    "main-memory cluster), 64-bit";
            out->t = SV_TEXT, out->s = v, out->len = sizeof v - 1;
            return 0;
        }
        case F_CUR_DB:
            out->t = SV_TEXT, out->s = ev->s->database, out->len = strlen(ev->s->database);
            return 0;
        case F_CUR_SCHEMA:
            out->t = SV_TEXT, out->s = "public", out->len = 6;
            return 0;
        case F_CUR_USER:
            out->t = SV_TEXT, out->s = ev->s->user, out->len = strlen(ev->s->user);
            return 0;
        case F_PG_BACKEND_PID:
            out->t = SV_INT, out->i = 0;
            return 0;
        case F_CUR_SETTING: {
            struct sv ok = {0};
            if (sq_eval(ev, e->args[0], &a) || (e->nargs > 1 && sq_eval(ev, e->args[1], &ok)))
                return -1;
            if (a.t == SV_NULL)
                return 0;
            if (a.t != SV_TEXT)
                return sq_err(ev->err, "42883", e->pos, "current_setting needs a text name");
            char nm[64];
            snprintf(nm, sizeof nm, "%.*s", (int)(a.len < 63 ? a.len : 63), a.s);
            const char *v = sq_param_get(ev->s, nm);
            if (!v && !strcasecmp(nm, "timezone"))
                v = sq_param_get(ev->s, "TimeZone");
            if (!v) {
                if (sq_truth(&ok))
                    return 0;
                return sq_err(ev->err, "42704", e->pos, "unrecognized configuration parameter "
                              "\"%s\"", nm);
            }
            out->t = SV_TEXT, out->s = v, out->len = strlen(v);
            return 0;
        }
        default:
            return sq_err(ev->err, "XX000", e->pos, "bad function %u", e->op);
        }
    default:
        return sq_err(ev->err, "XX000", e->pos, "bad expression kind %u", e->kind);
    }
}
