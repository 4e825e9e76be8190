/* sqle catalog queries: what psql's \dt and \d NAME, pgbench and drivers
 * ask of pg_catalog and information_schema, answered from the cluster's
 * dictionary; and SHOW (sql/README.md "Catalog queries").
 *
 * A query that reads a catalog relation is not executed as written: its
 * FROM tells which virtual relation its rows come from (a shape), its
 * WHERE gives filters on the table (oid, name, name pattern, relkind,
 * schema), and each select-list item is answered by its name — the alias,
 * else the column or function name — from that row. Items no row knows are
 * NULL. Catalog relations that describe what the cluster does not have
 * (inheritance, policies, triggers, statistics objects, publications ...)
 * give no rows. */
#include "sqle_int.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef PgQuery__Node Node;

enum sq_shape { S_NONE = 0, S_CLASS, S_ATTR, S_INDEX, S_TYPE, S_NAMESPACE, S_DATABASE, S_ROLE,
                S_PARTINFO, S_IS_TABLES, S_IS_COLUMNS };

enum { F_OID = 1, F_NAME, F_REGEX, F_TYPNAME, F_LIKE };
struct sq_catfilter {
    uint8_t kind;
    char text[128];            /* a constant */
    int param;                 /* or a parameter ($n - 1), -1: none */
};

#define CAT_MAX_FILTERS 8
struct sq_catplan {
    uint8_t shape;
    uint32_t ntargets;
    char keys[64][64];         /* what each select-list item asks for */
    char consts[64][64];       /* constant items: their text */
    bool isconst[64], constnull[64];
    struct sq_catfilter f[CAT_MAX_FILTERS];
    uint32_t nf;
    bool relkind_r;            /* the relkind filter admits plain tables (default true) */
    bool nsp_public;           /* the schema filter admits public (default true) */
    int order[8];              /* ORDER BY result positions (0-based), -1 end */
    bool order_desc[8];
    uint32_t norder;
    int64_t limit;             /* -1: none */
};

static const char *str_of(const Node *n)
{
    return n && n->node_case == PG_QUERY__NODE__NODE_STRING ? n->string->sval : NULL;
}

static bool is_cat_rel(const PgQuery__RangeVar *rv)
{
    if (!rv)
        return false;
    if (rv->schemaname && (!strcmp(rv->schemaname, "pg_catalog") ||
                           !strcmp(rv->schemaname, "information_schema")))
        return true;
    return !strncmp(rv->relname, "pg_", 3);
}

struct rels {
    const PgQuery__RangeVar *inner[16];
    uint32_t ninner;
    bool any_cat;
    bool complex;              /* a subquery or function in FROM */
};

static void walk_from(const Node *n, bool optional, struct rels *r)
{
    if (!n)
        return;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_RANGE_VAR:
        if (is_cat_rel(n->range_var))
            r->any_cat = true;
        if (!optional && r->ninner < 16)
            r->inner[r->ninner++] = n->range_var;
        return;
    case PG_QUERY__NODE__NODE_JOIN_EXPR: {
        const PgQuery__JoinExpr *j = n->join_expr;
        walk_from(j->larg, optional || j->jointype == PG_QUERY__JOIN_TYPE__JOIN_RIGHT, r);
        walk_from(j->rarg, optional || j->jointype == PG_QUERY__JOIN_TYPE__JOIN_LEFT, r);
        return;
    }
    case PG_QUERY__NODE__NODE_RANGE_SUBSELECT:
    case PG_QUERY__NODE__NODE_RANGE_FUNCTION:
        r->complex = true;
        return;
    default:
        return;
    }
}

static bool has_rel(const struct rels *r, const char *name)
{
    for (uint32_t i = 0; i < r->ninner; i++)
        if (!strcmp(r->inner[i]->relname, name))
            return true;
    return false;
}

/* The name a select-list item asks for. */
static void item_key(const Node *v, char *out, size_t n)
{
    out[0] = 0;
    if (!v)
        return;
    switch (v->node_case) {
    case PG_QUERY__NODE__NODE_COLUMN_REF: {
        const PgQuery__ColumnRef *c = v->column_ref;
        const char *s = c->n_fields ? str_of(c->fields[c->n_fields - 1]) : NULL;
        snprintf(out, n, "%s", s ? s : "*");
        return;
    }
    case PG_QUERY__NODE__NODE_FUNC_CALL: {
        const PgQuery__FuncCall *f = v->func_call;
        const char *s = f->n_funcname ? str_of(f->funcname[f->n_funcname - 1]) : NULL;
        snprintf(out, n, "%s", s ? s : "?");
        return;
    }
    case PG_QUERY__NODE__NODE_TYPE_CAST: {
        const PgQuery__TypeName *tn = v->type_cast->type_name;
        const char *t = tn && tn->n_names ? str_of(tn->names[tn->n_names - 1]) : NULL;
        if (t && !strcmp(t, "regclass")) {
            snprintf(out, n, "relname");
            return;
        }
        item_key(v->type_cast->arg, out, n);
        return;
    }
    default:
        snprintf(out, n, "?");
    }
}

static int const_of(const Node *n, char *out, size_t cap, bool *isnull)
{
    *isnull = false;
    if (!n)
        return -1;
    if (n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST)
        return const_of(n->type_cast->arg, out, cap, isnull);
    if (n->node_case == PG_QUERY__NODE__NODE_COLLATE_CLAUSE)
        return const_of(n->collate_clause->arg, out, cap, isnull);
    if (n->node_case != PG_QUERY__NODE__NODE_A_CONST)
        return -1;
    const PgQuery__AConst *c = n->a_const;
    if (c->isnull) {
        *isnull = true;
        out[0] = 0;
        return 0;
    }
    switch (c->val_case) {
    case PG_QUERY__A__CONST__VAL_IVAL: snprintf(out, cap, "%d", c->ival->ival); return 0;
    case PG_QUERY__A__CONST__VAL_FVAL: snprintf(out, cap, "%s", c->fval->fval); return 0;
    case PG_QUERY__A__CONST__VAL_SVAL: snprintf(out, cap, "%s", c->sval->sval); return 0;
    case PG_QUERY__A__CONST__VAL_BOOLVAL:
        snprintf(out, cap, "%s", c->boolval->boolval ? "t" : "f");
        return 0;
    default: return -1;
    }
}

static const char *colref_last(const Node *n)
{
    while (n && n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST)
        n = n->type_cast->arg;
    if (!n || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF || !n->column_ref->n_fields)
        return NULL;
    return str_of(n->column_ref->fields[n->column_ref->n_fields - 1]);
}

static void add_filter(struct sq_catplan *p, uint8_t kind, const Node *val)
{
    if (p->nf == CAT_MAX_FILTERS)
        return;
    struct sq_catfilter *f = &p->f[p->nf];
    f->kind = kind;
    f->param = -1;
    const Node *v = val;
    while (v && (v->node_case == PG_QUERY__NODE__NODE_TYPE_CAST ||
                 v->node_case == PG_QUERY__NODE__NODE_COLLATE_CLAUSE))
        v = v->node_case == PG_QUERY__NODE__NODE_TYPE_CAST ? v->type_cast->arg
                                                          : v->collate_clause->arg;
    bool isnull;
    if (v && v->node_case == PG_QUERY__NODE__NODE_PARAM_REF) {
        f->param = v->param_ref->number - 1;
    } else if (const_of(v, f->text, sizeof f->text, &isnull) || isnull) {
        return;
    }
    p->nf++;
}

static bool list_has(const Node *l, const char *want, bool *saw)
{
    *saw = false;
    if (!l || l->node_case != PG_QUERY__NODE__NODE_LIST)
        return true;
    bool has = false;
    for (size_t i = 0; i < l->list->n_items; i++) {
        char t[16];
        bool isnull;
        if (const_of(l->list->items[i], t, sizeof t, &isnull) == 0) {
            *saw = true;
            if (!strcmp(t, want))
                has = true;
        }
    }
    return has;
}

static void walk_where(const Node *n, struct sq_catplan *p)
{
    if (!n)
        return;
    if (n->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR) {
        if (n->bool_expr->boolop != PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR)
            return; /* filters under OR / NOT are not used */
        for (size_t i = 0; i < n->bool_expr->n_args; i++)
            walk_where(n->bool_expr->args[i], p);
        return;
    }
    if (n->node_case != PG_QUERY__NODE__NODE_A_EXPR)
        return;
    const PgQuery__AExpr *a = n->a_expr;
    const char *op = a->n_name ? str_of(a->name[a->n_name - 1]) : "";
    const char *col = colref_last(a->lexpr);
    const Node *val = a->rexpr;
    if (!col) {
        col = colref_last(a->rexpr);
        val = a->lexpr;
    }
    if (!col || colref_last(val))
        return; /* a join condition */
    if (a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_IN && !strcmp(col, "relkind")) {
        bool saw;
        if (!list_has(val, "r", &saw) && saw)
            p->relkind_r = false;
        return;
    }
    if ((a->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP &&
         a->kind != PG_QUERY__A__EXPR__KIND__AEXPR_LIKE) || !op)
        return;
    if (!strcmp(op, "=")) {
        if (!strcmp(col, "oid") || !strcmp(col, "attrelid") || !strcmp(col, "indrelid") ||
            !strcmp(col, "relid"))
            add_filter(p, F_OID, val);
        else if (!strcmp(col, "relname") || !strcmp(col, "table_name") ||
                 !strcmp(col, "tablename"))
            add_filter(p, F_NAME, val);
        else if (!strcmp(col, "typname"))
            add_filter(p, F_TYPNAME, val);
        else if (!strcmp(col, "relkind")) {
            char t[16];
            bool isnull;
            if (const_of(val, t, sizeof t, &isnull) == 0 && strcmp(t, "r"))
                p->relkind_r = false;
        } else if (!strcmp(col, "nspname") || !strcmp(col, "table_schema") ||
                   !strcmp(col, "schemaname")) {
            char t[128];
            bool isnull;
            if (const_of(val, t, sizeof t, &isnull) == 0 && strcmp(t, "public"))
                p->nsp_public = false;
        }
    } else if (!strcmp(op, "~")) {
        if (!strcmp(col, "relname"))
            add_filter(p, F_REGEX, val);
        else if (!strcmp(col, "nspname")) {
            char t[128];
            bool isnull;
            regex_t re;
            if (const_of(val, t, sizeof t, &isnull) == 0 && regcomp(&re, t, REG_EXTENDED | REG_NOSUB) == 0) {
                if (regexec(&re, "public", 0, NULL, 0) != 0)
                    p->nsp_public = false;
                regfree(&re);
            }
        }
    } else if (!strcmp(op, "~~")) {
        if (!strcmp(col, "relname") || !strcmp(col, "table_name"))
            add_filter(p, F_LIKE, val);
        else if (!strcmp(col, "nspname") || !strcmp(col, "table_schema")) {
            char t[128];
            bool isnull;
            if (const_of(val, t, sizeof t, &isnull) == 0 &&
                !sq_like_match("public", 6, t, strlen(t)))
                p->nsp_public = false;
        }
    } else if (!strcmp(op, "<>") && !strcmp(col, "relkind")) {
        char t[16];
        bool isnull;
        if (const_of(val, t, sizeof t, &isnull) == 0 && !strcmp(t, "r"))
            p->relkind_r = false;
    }
}

int sq_plan_catalog(struct sq_ctx *x, const void *node, bool *is_catalog)
{
    const PgQuery__SelectStmt *sel = node;
    *is_catalog = false;
    struct rels r = {0};
    bool setop = false;
    /* UNION / INTERSECT / EXCEPT of catalog queries (psql's publications
     * query): the first branch's select list, no rows */
    while (sel->larg && sel->op != PG_QUERY__SET_OPERATION__SETOP_NONE) {
        setop = true;
        sel = sel->larg;
    }
    for (size_t i = 0; i < sel->n_from_clause; i++)
        walk_from(sel->from_clause[i], false, &r);
    if (!r.any_cat)
        return 0;
    if (setop)
        r.complex = true;
    *is_catalog = true;
    struct sqle_stmt *st = x->st;
    struct sq_catplan *p = arena_alloc(&st->a, sizeof *p);
    if (!p)
        return sq_err(x->err, "53200", 0, "out of memory");
    memset(p, 0, sizeof *p);
    p->relkind_r = true;
    p->nsp_public = true;
    p->limit = -1;
    st->catp = p;
    st->kind = K_CATALOG;
    snprintf(st->tag, sizeof st->tag, "SELECT");
    /* the shape */
    bool partinfo = false;
    for (size_t i = 0; i < sel->n_target_list; i++) {
        const PgQuery__ResTarget *rt = sel->target_list[i]->res_target;
        char k[64];
        item_key(rt ? rt->val : NULL, k, sizeof k);
        if (!strcmp(k, "partstrat"))
            partinfo = true;
    }
    if (partinfo)
        p->shape = S_PARTINFO;
    else if (has_rel(&r, "pg_index"))
        p->shape = S_INDEX;
    else if (has_rel(&r, "pg_attribute"))
        p->shape = S_ATTR;
    else if (has_rel(&r, "tables") && !has_rel(&r, "pg_class"))
        p->shape = S_IS_TABLES;
    else if (has_rel(&r, "columns") && !has_rel(&r, "pg_class"))
        p->shape = S_IS_COLUMNS;
    else if (has_rel(&r, "pg_inherits") || has_rel(&r, "pg_policy") ||
             has_rel(&r, "pg_statistic_ext") || has_rel(&r, "pg_publication") ||
             has_rel(&r, "pg_publication_rel") || has_rel(&r, "pg_constraint") ||
             has_rel(&r, "pg_trigger") || has_rel(&r, "pg_rewrite") ||
             has_rel(&r, "pg_attrdef") || has_rel(&r, "pg_description") ||
             has_rel(&r, "pg_proc") || has_rel(&r, "pg_foreign_table") ||
             has_rel(&r, "pg_partitioned_table") || has_rel(&r, "pg_sequence") ||
             has_rel(&r, "pg_event_trigger") || has_rel(&r, "pg_extension") ||
             has_rel(&r, "pg_settings") || has_rel(&r, "pg_stat_activity") || r.complex)
        p->shape = S_NONE;
    else if (has_rel(&r, "pg_class") || has_rel(&r, "pg_tables"))
        p->shape = S_CLASS;
    else if (has_rel(&r, "pg_type"))
        p->shape = S_TYPE;
    else if (has_rel(&r, "pg_namespace"))
        p->shape = S_NAMESPACE;
    else if (has_rel(&r, "pg_database"))
        p->shape = S_DATABASE;
    else if (has_rel(&r, "pg_roles") || has_rel(&r, "pg_user") || has_rel(&r, "pg_authid"))
        p->shape = S_ROLE;
    walk_where(sel->where_clause, p);
    /* the select list */
    if (sel->n_target_list > 64)
        return sq_err(x->err, "54000", 0, "catalog query with %zu select-list items",
                      sel->n_target_list);
    st->cols = arena_alloc(&st->a, (sel->n_target_list ? sel->n_target_list : 1) * sizeof *st->cols);
    if (!st->cols)
        return sq_err(x->err, "53200", 0, "out of memory");
    for (size_t i = 0; i < sel->n_target_list; i++) {
        const PgQuery__ResTarget *rt = sel->target_list[i]->res_target;
        const Node *v = rt ? rt->val : NULL;
        item_key(v, p->keys[i], sizeof p->keys[i]);
        if (const_of(v, p->consts[i], sizeof p->consts[i], &p->constnull[i]) == 0)
            p->isconst[i] = true;
        const char *name = rt && rt->name && rt->name[0] ? rt->name : p->keys[i];
        if (rt && rt->name && rt->name[0])
            snprintf(p->keys[i], sizeof p->keys[i], "%s", rt->name);
        struct sqle_col *c = &st->cols[i];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, "%s", !strcmp(name, "?") ? "?column?" : name);
        const char *k = p->keys[i];
        bool boolean = !strncmp(k, "relhas", 6) || !strncmp(k, "indis", 5) ||
                       !strcmp(k, "attnotnull") || !strcmp(k, "relispartition") ||
                       !strncmp(k, "condefer", 8) || !strcmp(k, "relrowsecurity") ||
                       !strcmp(k, "relforcerowsecurity") || !strcmp(k, "attisdropped");
        bool number = !strcmp(k, "oid") || !strcmp(k, "attnum") || !strcmp(k, "relchecks") ||
                      !strcmp(k, "reltablespace") || !strcmp(k, "atttypid") ||
                      !strcmp(k, "atttypmod") || !strcmp(k, "count") || !strcmp(k, "n");
        c->type_oid = boolean ? OID_BOOL : number ? OID_INT8 : OID_TEXT;
        c->typlen = sq_typlen(c->type_oid);
        c->typmod = -1;
    }
    st->ncols = (uint32_t)sel->n_target_list;
    p->ntargets = st->ncols;
    /* ORDER BY positions or names */
    for (size_t i = 0; i < sel->n_sort_clause && p->norder < 8; i++) {
        const PgQuery__SortBy *sb = sel->sort_clause[i]->sort_by;
        if (!sb)
            continue;
        int pos = -1;
        char t[64];
        bool isnull;
        if (const_of(sb->node, t, sizeof t, &isnull) == 0) {
            long long v = strtoll(t, NULL, 10); /* a position out of int's range: none */
            pos = v >= 1 && v <= INT32_MAX ? (int)(v - 1) : -1;
        } else {
            char k[64];
            item_key(sb->node, k, sizeof k);
            for (uint32_t j = 0; j < p->ntargets; j++)
                if (!strcmp(p->keys[j], k))
                    pos = (int)j;
        }
        if (pos >= 0 && (uint32_t)pos < p->ntargets) {
            p->order[p->norder] = pos;
            p->order_desc[p->norder] = sb->sortby_dir == PG_QUERY__SORT_BY_DIR__SORTBY_DESC;
            p->norder++;
        }
    }
    if (sel->limit_count) {
        char t[32];
        bool isnull;
        if (const_of(sel->limit_count, t, sizeof t, &isnull) == 0 && !isnull)
            p->limit = strtoll(t, NULL, 10);
    }
    return 0;
}

/* ---- rows -------------------------------------------------------------------- */

static void type_display(const struct sq_col *c, char *out, size_t n)
{
    switch (c->oid) {
    case OID_BPCHAR: snprintf(out, n, "character(%d)", c->typmod - 4); return;
    case OID_VARCHAR:
        if (c->typmod >= 4)
            snprintf(out, n, "character varying(%d)", c->typmod - 4);
        else
            snprintf(out, n, "character varying");
        return;
    case OID_NUMERIC:
        if (c->typmod >= 4)
            snprintf(out, n, "numeric(%d,%d)", (c->typmod - 4) >> 16, (c->typmod - 4) & 0xffff);
        else
            snprintf(out, n, "numeric");
        return;
    default: snprintf(out, n, "%s", sq_type_name(c->oid));
    }
}

static void key_cols(const struct sq_table *t, char *out, size_t n)
{
    size_t k = 0;
    out[0] = 0;
    for (uint32_t j = 0; j < t->npk && k < n; j++)
        k += (size_t)snprintf(out + k, n - k, "%s%s", j ? ", " : "", t->cols[t->pk[j]].name);
}

/* The value of `key` in a row of the shape; NULL for SQL NULL. */
static const char *row_value(struct sqle_sess *s, const struct sq_catplan *p, const char *key,
                             const struct sq_table *t, int col, char *buf, size_t n)
{
    (void)p;
    const struct sq_col *c = col >= 0 ? &t->cols[col] : NULL;
#define IS(k) (!strcmp(key, k))
    if (IS("nspname") || IS("Schema") || IS("table_schema") || IS("schemaname") ||
        IS("TABLE_SCHEM"))
        return "public";
    if (IS("table_catalog") || IS("datname") || IS("current_database"))
        return s->database;
    switch (p->shape) {
    case S_CLASS:
    case S_PARTINFO:
        if (IS("oid") || IS("relid"))
            return snprintf(buf, n, "%u", t->id + 16384), buf;
        if (IS("relname") || IS("Name") || IS("tablename") || IS("table_name") ||
            IS("TABLE_NAME"))
            return t->name;
        if (IS("relkind"))
            return "r";
        if (IS("Type"))
            return "table";
        if (IS("TABLE_TYPE"))
            return "TABLE";     /* JDBC's DatabaseMetaData.getTables */
        if (IS("Owner") || IS("pg_get_userbyid") || IS("tableowner") || IS("relowner"))
            return s->user;
        if (IS("relhasindex") || IS("hasindexes"))
            return t->hidden < 0 ? "t" : "f";
        if (IS("relchecks") || IS("reltablespace") || IS("count"))
            return "0";
        if (IS("relhasrules") || IS("relhastriggers") || IS("relrowsecurity") ||
            IS("relforcerowsecurity") || IS("relhasoids") || IS("relispartition") ||
            IS("hasrules") || IS("hastriggers") || IS("rowsecurity"))
            return "f";
        if (IS("array_to_string") || IS("case") || IS("reloftype"))
            return "";
        if (IS("relpersistence"))
            return "p";
        if (IS("relreplident"))
            return "d";
        if (IS("amname") || IS("Access method"))
            return "heap";
        if (IS("Persistence"))
            return "permanent";
        if (IS("relnatts"))
            return snprintf(buf, n, "%u", t->nvisible), buf;
        if (IS("n"))
            return "1";   /* pgbench: the table is in the first schema of the path */
        return NULL;
    case S_ATTR:
        if (IS("attname") || IS("Column") || IS("column_name"))
            return c->name;
        if (IS("format_type") || IS("Type") || IS("data_type"))
            return type_display(c, buf, n), buf;
        if (IS("attnotnull"))
            return c->nullable ? "f" : "t";
        if (IS("Nullable"))
            return c->nullable ? "" : "not null";
        if (IS("attnum") || IS("ordinal_position"))
            return snprintf(buf, n, "%d", col + 1), buf;
        if (IS("atttypid"))
            return snprintf(buf, n, "%u", c->oid), buf;
        if (IS("atttypmod"))
            return snprintf(buf, n, "%d", c->typmod), buf;
        if (IS("attrelid"))
            return snprintf(buf, n, "%u", t->id + 16384), buf;
        if (IS("attidentity") || IS("attgenerated"))
            return "";
        if (IS("attisdropped"))
            return "f";
        if (IS("attstorage") || IS("Storage")) /* \d+: plain for fixed widths, else extended */
            return c->type == NINES_T_STRING || c->type == NINES_T_VARSTRING ||
                           c->type == NINES_T_BYTES || c->type == NINES_T_VARBYTES
                       ? "x" : "p";
        if (IS("relname"))
            return t->name;
        return NULL;
    case S_INDEX: {
        static _Thread_local char name[80];
        snprintf(name, sizeof name, "%s_pkey", t->name);
        char cols[400];
        key_cols(t, cols, sizeof cols);
        if (IS("relname"))
            return name;
        if (IS("indisprimary") || IS("indisunique") || IS("indisvalid") || IS("indisready") ||
            IS("indislive"))
            return "t";
        if (IS("indisclustered") || IS("indisreplident") || IS("condeferrable") ||
            IS("condeferred") || IS("indisexclusion"))
            return "f";
        if (IS("pg_get_indexdef"))
            return snprintf(buf, n, "CREATE UNIQUE INDEX %s ON public.%s USING btree (%s)", name,
                            t->name, cols), buf;
        if (IS("pg_get_constraintdef"))
            return snprintf(buf, n, "PRIMARY KEY (%s)", cols), buf;
        if (IS("contype"))
            return "p";
        if (IS("reltablespace"))
            return "0";
        if (IS("indrelid"))
            return snprintf(buf, n, "%u", t->id + 16384), buf;
        return NULL;
    }
    case S_DATABASE: /* psql's \l */
        if (IS("Name"))
            return s->database;
        if (IS("Owner") || IS("pg_get_userbyid"))
            return s->user;
        if (IS("Encoding") || IS("pg_encoding_to_char"))
            return "UTF8";
        if (IS("Collate") || IS("Ctype") || IS("datcollate") || IS("datctype"))
            return "C";
        if (IS("Locale Provider"))
            return "libc";
        if (IS("oid"))
            return "16384";
        if (IS("datallowconn"))
            return "t";
        if (IS("datistemplate"))
            return "f";
        if (IS("datconnlimit"))
            return "-1";
        return NULL;
    case S_NAMESPACE: /* psql's \dn */
        if (IS("Name"))
            return "public";
        if (IS("Owner") || IS("pg_get_userbyid"))
            return s->user;
        if (IS("oid"))
            return "2200";
        return NULL;
    case S_ROLE: /* psql's \du: the session's user, who may do everything
                  * (roles are issue 12's) */
        if (IS("rolname") || IS("Role name") || IS("usename"))
            return s->user;
        if (IS("rolsuper") || IS("rolinherit") || IS("rolcanlogin") || IS("rolcreaterole") ||
            IS("rolcreatedb") || IS("usesuper") || IS("usecreatedb"))
            return "t";
        if (IS("rolreplication") || IS("rolbypassrls"))
            return "f";
        if (IS("rolconnlimit"))
            return "-1";
        if (IS("memberof"))
            return "{}";
        if (IS("oid"))
            return "10";
        return NULL;
    case S_IS_TABLES:
        if (IS("table_name"))
            return t->name;
        if (IS("table_type"))
            return "BASE TABLE";
        return NULL;
    case S_IS_COLUMNS:
        if (IS("table_name"))
            return t->name;
        if (IS("column_name"))
            return c->name;
        if (IS("ordinal_position"))
            return snprintf(buf, n, "%d", col + 1), buf;
        if (IS("data_type")) {
            type_display(c, buf, n);
            char *paren = strchr(buf, '(');
            if (paren)
                *paren = 0;
            return buf;
        }
        if (IS("is_nullable"))
            return c->nullable ? "YES" : "NO";
        if (IS("character_maximum_length"))
            return c->oid == OID_BPCHAR || (c->oid == OID_VARCHAR && c->typmod >= 4)
                       ? (snprintf(buf, n, "%d", c->typmod - 4), buf) : NULL;
        return NULL;
    default:
        return NULL;
    }
#undef IS
}

struct cat_rows {
    char ***v;                 /* rows of ntargets strings (NULL = SQL NULL) */
    size_t n, cap;
};

static _Thread_local const struct sq_catplan *t_plan;

/* A table TRUNCATE or re-keying is building: NAME_nines_[tk]XXXXXX. */
bool sq_is_scratch(const char *name)
{
    const char *p = strstr(name, "_nines_");
    if (!p || (p[7] != 't' && p[7] != 'k') || strlen(p + 8) != 6)
        return false;
    for (int i = 0; i < 6; i++)
        if (!((p[8 + i] >= '0' && p[8 + i] <= '9') || (p[8 + i] >= 'a' && p[8 + i] <= 'f')))
            return false;
    return true;
}

static int cat_cmp(const void *a, const void *b)
{
    char *const *x = *(char **const *)a, *const *y = *(char **const *)b;
    for (uint32_t i = 0; i < t_plan->norder; i++) {
        int k = t_plan->order[i];
        int c = strcmp(x[k] ? x[k] : "", y[k] ? y[k] : "");
        if (c)
            return t_plan->order_desc[i] ? -c : c;
    }
    return 0;
}

struct cat_ctx {
    struct sqle_sess *s;
    const struct sq_catplan *p;
    const struct sv *params;
    struct sqle_result *r;
    struct sqle_error *e;
    struct cat_rows rows;
    int rc;
};

static bool filter_ok(struct cat_ctx *c, const struct sq_table *t)
{
    const struct sq_catplan *p = c->p;
    if (!p->relkind_r || !p->nsp_public)
        return false;
    for (uint32_t i = 0; i < p->nf; i++) {
        const struct sq_catfilter *f = &p->f[i];
        char v[160];
        if (f->param >= 0) {
            const struct sv *pv = &c->params[f->param];
            if (pv->t == SV_NULL)
                return false;
            if (pv->t == SV_TEXT || pv->t == SV_BYTES)
                snprintf(v, sizeof v, "%.*s", (int)pv->len, pv->s);
            else
                snprintf(v, sizeof v, "%lld", (long long)pv->i);
        } else {
            snprintf(v, sizeof v, "%s", f->text);
        }
        switch (f->kind) {
        case F_OID:
            if ((uint32_t)strtoul(v, NULL, 10) != t->id + 16384)
                return false;
            break;
        case F_NAME:
            if (strcmp(v, t->name))
                return false;
            break;
        case F_REGEX: {
            regex_t re;
            if (regcomp(&re, v, REG_EXTENDED | REG_NOSUB))
                return false;
            bool m = regexec(&re, t->name, 0, NULL, 0) == 0;
            regfree(&re);
            if (!m)
                return false;
            break;
        }
        case F_LIKE:
            if (!sq_like_match(t->name, strlen(t->name), v, strlen(v)))
                return false;
            break;
        default:
            break;
        }
    }
    return true;
}

static int add_row(struct cat_ctx *c, const struct sq_table *t, int col)
{
    const struct sq_catplan *p = c->p;
    if (c->rows.n == c->rows.cap) {
        size_t n = c->rows.cap ? c->rows.cap * 2 : 16;
        char ***v = realloc(c->rows.v, n * sizeof *v);
        if (!v)
            return sq_err(c->e, "53200", 0, "out of memory");
        c->rows.v = v;
        c->rows.cap = n;
    }
    char **row = arena_alloc(&c->r->a, (p->ntargets ? p->ntargets : 1) * sizeof *row);
    if (!row)
        return sq_err(c->e, "53200", 0, "out of memory");
    for (uint32_t i = 0; i < p->ntargets; i++) {
        char buf[512];
        const char *v;
        if (p->isconst[i])
            v = p->constnull[i] ? NULL : p->consts[i];
        else
            v = row_value(c->s, p, p->keys[i], t, col, buf, sizeof buf);
        if (v) {
            size_t n = strlen(v);
            char *q = arena_alloc(&c->r->a, n + 1);
            if (!q)
                return sq_err(c->e, "53200", 0, "out of memory");
            memcpy(q, v, n + 1);
            row[i] = q;
        } else {
            row[i] = NULL;
        }
    }
    c->rows.v[c->rows.n++] = row;
    return 0;
}

static int each_table(void *arg, const struct nines_table_info *info)
{
    struct cat_ctx *c = arg;
    struct sq_table *t = malloc(sizeof *t);
    if (!t) {
        c->rc = sq_err(c->e, "53200", 0, "out of memory");
        return 1;
    }
    struct sqle_error tmp;
    if (sq_table_load(c->s, info->def.name, 0, t, &tmp, 0)) {
        free(t);
        return 0;
    }
    int rc = 0;
    if (sq_is_scratch(t->name)) {
        free(t);
        return 0; /* a scratch table of TRUNCATE or re-keying */
    }
    if (filter_ok(c, t)) {
        switch (c->p->shape) {
        case S_ATTR:
        case S_IS_COLUMNS:
            for (uint32_t i = 0; i < t->ncols && rc == 0; i++)
                if (!t->cols[i].hidden)
                    rc = add_row(c, t, (int)i);
            break;
        case S_INDEX:
            if (t->hidden < 0)
                rc = add_row(c, t, -1);
            break;
        default:
            rc = add_row(c, t, -1);
        }
    }
    free(t);
    if (rc) {
        c->rc = rc;
        return 1;
    }
    return 0;
}

int sq_exec_catalog(struct sqle_sess *s, struct sqle_stmt *st, const struct sv *params,
                    struct sqle_result **out, struct sqle_error *e)
{
    const struct sq_catplan *p = st->catp;
    struct sqle_result *r = sq_result_new(SQLE_R_ROWS);
    if (!r)
        return sq_err(e, "53200", 0, "out of memory");
    r->owncols = malloc((st->ncols ? st->ncols : 1) * sizeof *r->owncols);
    if (!r->owncols) {
        sqle_result_free(r);
        return sq_err(e, "53200", 0, "out of memory");
    }
    memcpy(r->owncols, st->cols, st->ncols * sizeof *r->owncols);
    r->cols = r->owncols;
    r->ncols = st->ncols;
    struct cat_ctx c = {.s = s, .p = p, .params = params, .r = r, .e = e};
    switch (p->shape) {
    case S_CLASS:
    case S_PARTINFO:
    case S_ATTR:
    case S_INDEX:
    case S_IS_TABLES:
    case S_IS_COLUMNS: {
        if (s->e->test_tables) {
            int rc = s->e->test_tables(s->e->test_ctx, each_table, &c);
            if (rc < 0 && !c.rc)
                c.rc = sq_err_nines(e, rc, "reading the table definitions", "");
            break;
        }
        if (sq_need_conn(s, e)) {
            c.rc = -1;
            break;
        }
        int rc = nines_tables(s->c, 1, each_table, &c);
        if (rc < 0 && !c.rc)
            c.rc = sq_err_nines(e, rc, "reading the table definitions", nines_conn_errdetail(s->c));
        break;
    }
    case S_NAMESPACE:
    case S_DATABASE:
    case S_ROLE:
    case S_TYPE:
        /* one row answering by name (a schema, the database, the user);
         * types: the select list's constants only */
        if (p->shape != S_TYPE && p->relkind_r)
            c.rc = add_row(&c, NULL, -1);
        break;
    default:
        break;
    }
    if (c.rc == 0 && p->norder && c.rows.n > 1) {
        t_plan = p;
        qsort(c.rows.v, c.rows.n, sizeof *c.rows.v, cat_cmp);
        t_plan = NULL;
    }
    size_t n = c.rows.n;
    if (p->limit >= 0 && (size_t)p->limit < n)
        n = (size_t)p->limit;
    for (size_t i = 0; c.rc == 0 && i < n; i++) {
        struct sv vals[64];
        uint32_t oids[64];
        for (uint32_t k = 0; k < p->ntargets; k++) {
            const char *v = c.rows.v[i][k];
            vals[k] = v ? (struct sv){.t = SV_TEXT, .s = v, .len = strlen(v)} : (struct sv){0};
            oids[k] = OID_TEXT;
        }
        c.rc = sq_result_row(r, vals, oids, e);
    }
    free(c.rows.v);
    if (c.rc) {
        sqle_result_free(r);
        return -1;
    }
    snprintf(r->tag, sizeof r->tag, "SELECT %zu", n);
    *out = r;
    return 0;
}

int sq_exec_show(struct sqle_sess *s, struct sqle_stmt *st, struct sqle_result **out,
                 struct sqle_error *e)
{
    const char *v = sq_param_get(s, st->pname);
    if (!v && !strcasecmp(st->pname, "timezone"))
        v = sq_param_get(s, "TimeZone");
    if (!v)
        return sq_err(e, "42704", 0, "unrecognized configuration parameter \"%s\"", st->pname);
    struct sqle_result *r = sq_result_new(SQLE_R_ROWS);
    if (!r)
        return sq_err(e, "53200", 0, "out of memory");
    r->owncols = malloc(sizeof *r->owncols);
    if (!r->owncols) {
        sqle_result_free(r);
        return sq_err(e, "53200", 0, "out of memory");
    }
    r->owncols[0] = st->cols[0];
    r->cols = r->owncols;
    r->ncols = 1;
    struct sv val = {.t = SV_TEXT, .s = v, .len = strlen(v)};
    uint32_t oid = OID_TEXT;
    if (sq_result_row(r, &val, &oid, e)) {
        sqle_result_free(r);
        return -1;
    }
    snprintf(r->tag, sizeof r->tag, "SHOW");
    *out = r;
    return 0;
}
