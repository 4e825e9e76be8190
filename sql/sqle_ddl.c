/* sqle schema statements (CREATE / DROP / TRUNCATE TABLE, ALTER TABLE ADD
 * PRIMARY KEY) and COPY FROM STDIN (sql/README.md "Schema statements",
 * "COPY"). */
#include "sqle_int.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef PgQuery__Node Node;

#define SQ_HIDDEN_NAME "_nines_rowid"

static int pos_of(int32_t loc) { return loc >= 0 ? loc + 1 : 0; }

static const char *str_of(const Node *n)
{
    return n && n->node_case == PG_QUERY__NODE__NODE_STRING ? n->string->sval : NULL;
}

/* ---- CREATE TABLE -------------------------------------------------------- */

static int find_def_col(const struct sqle_stmt *st, const char *name)
{
    for (uint32_t i = 0; i < st->def.ncols; i++)
        if (!strcmp(st->defnames[i], name))
            return (int)i;
    return -1;
}

static int type_of(struct sq_ctx *x, const PgQuery__TypeName *tn, struct nines_column *c,
                   int pos)
{
    if (!tn || !tn->n_names)
        return sq_err(x->err, "42601", pos, "column without a type");
    if (tn->n_array_bounds)
        return sq_err(x->err, "0A000", pos, "array types are not supported");
    const char *name = str_of(tn->names[tn->n_names - 1]);
    if (!name)
        return sq_err(x->err, "42601", pos, "bad type name");
    int32_t mod = -1;
    if (tn->n_typmods) {
        int32_t v[2] = {0, 0};
        for (size_t i = 0; i < tn->n_typmods && i < 2; i++) {
            const Node *m = tn->typmods[i];
            if (m->node_case != PG_QUERY__NODE__NODE_A_CONST ||
                m->a_const->val_case != PG_QUERY__A__CONST__VAL_IVAL)
                return sq_err(x->err, "22023", pos, "type modifiers must be integers");
            v[i] = m->a_const->ival->ival;
        }
        if (!strcmp(name, "numeric"))
            mod = ((v[0] << 16) | v[1]) + 4;
        else
            mod = v[0] + 4;
    }
    uint32_t oid, type, size;
    int32_t typmod;
    if (sq_type_from_name(name, mod, &oid, &typmod, &type, &size, x->err, pos))
        return -1;
    c->type = type;
    c->size = size;
    c->sqltype = oid;
    c->sqltypmod = typmod;
    return 0;
}

static int add_pk(struct sq_ctx *x, PgQuery__Node **keys, size_t n, int pos)
{
    struct sqle_stmt *st = x->st;
    if (st->def.npk)
        return sq_err(x->err, "42P16", pos, "multiple primary keys for table \"%s\" are not "
                      "allowed", st->def.name);
    if (n == 0 || n > SQ_MAX_PK)
        return sq_err(x->err, "42601", pos, "a primary key needs 1..%d columns", SQ_MAX_PK);
    for (size_t i = 0; i < n; i++) {
        const char *cn = str_of(keys[i]);
        int c = cn ? find_def_col(st, cn) : -1;
        if (c < 0)
            return sq_err(x->err, "42703", pos, "column \"%s\" named in key does not exist",
                          cn ? cn : "?");
        st->defpk[i] = (uint32_t)c;
        st->defcols[c].nullable = 0;
    }
    st->def.npk = (uint32_t)n;
    return 0;
}

static int col_constraints(struct sq_ctx *x, const PgQuery__ColumnDef *cd, uint32_t ci)
{
    struct sqle_stmt *st = x->st;
    for (size_t k = 0; k < cd->n_constraints; k++) {
        const Node *n = cd->constraints[k];
        if (n->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
            continue;
        const PgQuery__Constraint *c = n->constraint;
        int pos = pos_of(c->location);
        switch (c->contype) {
        case PG_QUERY__CONSTR_TYPE__CONSTR_NOTNULL:
            st->defcols[ci].nullable = 0;
            break;
        case PG_QUERY__CONSTR_TYPE__CONSTR_NULL:
            st->defcols[ci].nullable = 1;
            break;
        case PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY: {
            if (st->def.npk)
                return sq_err(x->err, "42P16", pos, "multiple primary keys for table \"%s\" "
                              "are not allowed", st->def.name);
            st->defpk[0] = ci;
            st->def.npk = 1;
            st->defcols[ci].nullable = 0;
            break;
        }
        case PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT:
            return sq_err(x->err, "0A000", pos, "column defaults are not supported (column "
                          "\"%s\")", cd->colname);
        case PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE:
            return sq_err(x->err, "0A000", pos, "UNIQUE constraints are not supported (only the "
                          "primary key is unique)");
        case PG_QUERY__CONSTR_TYPE__CONSTR_CHECK:
            return sq_err(x->err, "0A000", pos, "CHECK constraints are not supported");
        case PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN:
            return sq_err(x->err, "0A000", pos, "foreign keys are not supported");
        case PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY:
            return sq_err(x->err, "0A000", pos, "identity columns are not supported (column "
                          "\"%s\")", cd->colname);
        case PG_QUERY__CONSTR_TYPE__CONSTR_GENERATED:
            return sq_err(x->err, "0A000", pos, "generated columns are not supported (column "
                          "\"%s\")", cd->colname);
        default:
            return sq_err(x->err, "0A000", pos, "this column constraint (%d) is not supported",
                          (int)c->contype);
        }
    }
    return 0;
}

static int def_value(const Node *arg, char *out, size_t cap)
{
    if (!arg)
        return -1;
    if (arg->node_case == PG_QUERY__NODE__NODE_INTEGER) {
        snprintf(out, cap, "%d", arg->integer->ival);
        return 0;
    }
    if (arg->node_case == PG_QUERY__NODE__NODE_STRING) {
        snprintf(out, cap, "%s", arg->string->sval);
        return 0;
    }
    if (arg->node_case == PG_QUERY__NODE__NODE_TYPE_NAME && arg->type_name->n_names) {
        const char *s = str_of(arg->type_name->names[arg->type_name->n_names - 1]);
        snprintf(out, cap, "%s", s ? s : "");
        return 0;
    }
    if (arg->node_case == PG_QUERY__NODE__NODE_FLOAT) {
        snprintf(out, cap, "%s", arg->float_->fval);
        return 0;
    }
    if (arg->node_case == PG_QUERY__NODE__NODE_BOOLEAN) {
        snprintf(out, cap, "%s", arg->boolean->boolval ? "true" : "false");
        return 0;
    }
    return -1;
}

static int storage_options(struct sq_ctx *x, PgQuery__Node **opts, size_t n, char *splits,
                           size_t scap)
{
    struct sqle_stmt *st = x->st;
    splits[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (opts[i]->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
            continue;
        const PgQuery__DefElem *d = opts[i]->def_elem;
        char v[512];
        int pos = pos_of(d->location);
        if (def_value(d->arg, v, sizeof v))
            v[0] = 0;
        const char *k = d->defname;
        if (!strcasecmp(k, "fillfactor") || !strcasecmp(k, "autovacuum_enabled"))
            continue; /* storage tuning of PostgreSQL: nothing to do here */
        if (!strcasecmp(k, "fragments")) {
            char *end;
            long f = strtol(v, &end, 10);
            if (*end || f < 1 || f > 4096)
                return sq_err(x->err, "22023", pos, "fragments must be 1..4096, got \"%s\"", v);
            st->def.nfrags = (uint32_t)f;
        } else if (!strcasecmp(k, "partition")) {
            if (!strcasecmp(v, "hash"))
                st->def.method = 1;
            else if (!strcasecmp(v, "range"))
                st->def.method = 2;
            else
                return sq_err(x->err, "22023", pos, "partition must be hash or range, got \"%s\"",
                              v);
        } else if (!strcasecmp(k, "splits")) {
            snprintf(splits, scap, "%s", v);
        } else if (!strcasecmp(k, "replicas")) {
            if (strcmp(v, "1") && strcmp(v, "2"))
                return sq_err(x->err, "22023", pos, "replicas must be 1 or 2, got \"%s\"", v);
            st->def.replicas = (uint32_t)atoi(v);
        } else if (!strcasecmp(k, "scheme")) {
            if (!strcasecmp(v, "misd"))
                st->def.scheme = 1;
            else if (!strcasecmp(v, "circular"))
                st->def.scheme = 2;
            else
                return sq_err(x->err, "22023", pos, "scheme must be misd or circular, got \"%s\"",
                              v);
        } else {
            return sq_err(x->err, "22023", pos, "unrecognized parameter \"%s\" (storage options: "
                          "fragments, partition, splits, replicas, scheme; fillfactor is "
                          "accepted and ignored)", k);
        }
    }
    return 0;
}

int sq_plan_create(struct sq_ctx *x, const void *node)
{
    const PgQuery__CreateStmt *c = node;
    struct sqle_stmt *st = x->st;
    struct sqle_error *e = x->err;
    st->kind = K_CREATE;
    snprintf(st->tag, sizeof st->tag, "CREATE TABLE");
    const PgQuery__RangeVar *rv = c->relation;
    if (!rv)
        return sq_err(e, "42601", 0, "CREATE TABLE without a name");
    if (rv->schemaname && rv->schemaname[0] && strcmp(rv->schemaname, "public"))
        return sq_err(e, "3F000", pos_of(rv->location), "schema \"%s\" does not exist",
                      rv->schemaname);
    if (c->n_inh_relations || c->partbound || c->partspec || c->of_typename)
        return sq_err(e, "0A000", pos_of(rv->location), "INHERITS / PARTITION OF / PARTITION BY "
                      "/ OF are not supported (fragmentation: WITH (fragments = N, partition = "
                      "hash|range))");
    if (rv->relpersistence && rv->relpersistence[0] == 't')
        return sq_err(e, "0A000", pos_of(rv->location), "temporary tables are not supported");
    if (strlen(rv->relname) > 63)
        return sq_err(e, "42622", pos_of(rv->location), "table name longer than 63 bytes");
    snprintf(st->names[0], sizeof st->names[0], "%s", rv->relname);
    st->def.name = st->names[0];
    st->if_not_exists = c->if_not_exists;
    st->def.cols = st->defcols;
    st->def.pk = st->defpk;
    for (size_t i = 0; i < c->n_table_elts; i++) {
        const Node *n = c->table_elts[i];
        if (n->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF) {
            const PgQuery__ColumnDef *cd = n->column_def;
            int pos = pos_of(cd->location);
            if (st->def.ncols >= SQ_MAX_COLS - 1)
                return sq_err(e, "54011", pos, "tables can have at most %d columns",
                              SQ_MAX_COLS - 1);
            if (find_def_col(st, cd->colname) >= 0)
                return sq_err(e, "42701", pos, "column \"%s\" specified more than once",
                              cd->colname);
            if (strlen(cd->colname) > 63)
                return sq_err(e, "42622", pos, "column name longer than 63 bytes");
            uint32_t ci = st->def.ncols++;
            snprintf(st->defnames[ci], sizeof st->defnames[ci], "%s", cd->colname);
            struct nines_column *col = &st->defcols[ci];
            memset(col, 0, sizeof *col);
            col->name = st->defnames[ci];
            col->nullable = !cd->is_not_null;
            if (type_of(x, cd->type_name, col, pos))
                return -1;
            if (cd->raw_default)
                return sq_err(e, "0A000", pos, "column defaults are not supported");
            if (cd->identity && cd->identity[0])
                return sq_err(e, "0A000", pos, "identity columns are not supported");
            if (col_constraints(x, cd, ci))
                return -1;
        } else if (n->node_case == PG_QUERY__NODE__NODE_CONSTRAINT) {
            const PgQuery__Constraint *k = n->constraint;
            if (k->contype == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY) {
                if (add_pk(x, k->keys, k->n_keys, pos_of(k->location)))
                    return -1;
            } else {
                return sq_err(e, "0A000", pos_of(k->location), "table constraints other than "
                              "PRIMARY KEY are not supported");
            }
        } else {
            return sq_err(e, "0A000", 0, "LIKE and other table elements are not supported");
        }
    }
    if (st->def.ncols == 0)
        return sq_err(e, "0A000", pos_of(rv->location), "a table needs at least one column");
    char splits[512];
    if (storage_options(x, c->options, c->n_options, splits, sizeof splits))
        return -1;
    if (!st->def.npk) {
        /* no primary key: a hidden 64-bit row key, values made by the front end */
        uint32_t ci = st->def.ncols++;
        snprintf(st->defnames[ci], sizeof st->defnames[ci], "%s", SQ_HIDDEN_NAME);
        for (int k = 2; find_def_col(st, st->defnames[ci]) != (int)ci; k++)
            snprintf(st->defnames[ci], sizeof st->defnames[ci], "%s%d", SQ_HIDDEN_NAME, k);
        struct nines_column *col = &st->defcols[ci];
        memset(col, 0, sizeof *col);
        col->name = st->defnames[ci];
        col->type = NINES_T_INT64;
        col->sqltype = OID_INT8;
        col->sqltypmod = -1;
        col->hidden = 1;
        st->defpk[0] = ci;
        st->def.npk = 1;
        if (st->def.method == 2)
            return sq_err(e, "0A000", 0, "partition = range needs a primary key (the hidden row "
                          "key is hashed)");
    }
    if (st->def.method == 2) {
        if (!splits[0])
            return sq_err(e, "22023", 0, "partition = range needs splits = 'v1,v2,...' (values "
                          "of the first key column, ascending)");
        const struct nines_column *kc = &st->defcols[st->defpk[0]];
        struct sq_col qc = {.type = kc->type, .size = kc->size, .nullable = false,
                            .oid = kc->sqltype, .typmod = kc->sqltypmod, .pkpos = 0};
        snprintf(qc.name, sizeof qc.name, "%s", kc->name);
        char *save = NULL;
        char *tok = strtok_r(splits, ",", &save);
        while (tok) {
            while (*tok == ' ')
                tok++;
            if (st->def.nsplits == 64)
                return sq_err(e, "54000", 0, "at most 64 range splits");
            struct sv v;
            if (sq_from_text(&st->a, qc.oid, qc.typmod, tok, strlen(tok), &v, e, "splits"))
                return -1;
            if (v.t == SV_TEXT) {
                char *p = arena_alloc(&st->a, v.len + 1);
                if (!p)
                    return sq_err(e, "53200", 0, "out of memory");
                memcpy(p, v.s, v.len);
                v.s = p;
            }
            if (sq_coerce(&st->a, &qc, st->def.name, &v, e, 0))
                return -1;
            st->splits[st->def.nsplits++] = sq_to_nines(&qc, &v);
            tok = strtok_r(NULL, ",", &save);
        }
        st->def.splits = st->splits;
    } else if (splits[0]) {
        return sq_err(e, "22023", 0, "splits is for partition = range");
    }
    return 0;
}

/* ---- COPY ------------------------------------------------------------------- */

int sq_plan_copy(struct sq_ctx *x, const void *node)
{
    const PgQuery__CopyStmt *c = node;
    struct sqle_stmt *st = x->st;
    struct sqle_error *e = x->err;
    if (!c->is_from)
        return sq_err(e, "0A000", 0, "COPY ... TO is not supported (use SELECT)");
    if (c->query)
        return sq_err(e, "0A000", 0, "COPY (query) is not supported");
    if (c->is_program || (c->filename && c->filename[0]))
        return sq_err(e, "0A000", 0, "COPY from a file or program is not supported (use FROM "
                      "STDIN)");
    if (c->where_clause)
        return sq_err(e, "0A000", 0, "COPY ... WHERE is not supported");
    const PgQuery__RangeVar *rv = c->relation;
    if (!rv)
        return sq_err(e, "42601", 0, "COPY without a table");
    snprintf(st->names[0], sizeof st->names[0], "%s", rv->relname);
    st->kind = K_COPY_FROM;
    snprintf(st->tag, sizeof st->tag, "COPY");
    st->copy_delim = '\t';
    snprintf(st->copy_null, sizeof st->copy_null, "\\N");
    for (size_t i = 0; i < c->n_options; i++) {
        if (c->options[i]->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
            continue;
        const PgQuery__DefElem *d = c->options[i]->def_elem;
        char v[64];
        if (def_value(d->arg, v, sizeof v))
            v[0] = 0;
        int pos = pos_of(d->location);
        if (!strcasecmp(d->defname, "format")) {
            if (strcasecmp(v, "text"))
                return sq_err(e, "0A000", pos, "COPY format %s is not supported (text only)", v);
        } else if (!strcasecmp(d->defname, "freeze")) {
            /* rows are visible at commit anyway */
        } else if (!strcasecmp(d->defname, "delimiter")) {
            if (strlen(v) != 1)
                return sq_err(e, "22023", pos, "COPY delimiter must be a single one-byte "
                              "character");
            st->copy_delim = v[0];
        } else if (!strcasecmp(d->defname, "null")) {
            if (strlen(v) >= sizeof st->copy_null)
                return sq_err(e, "22023", pos, "COPY null marker longer than %zu bytes",
                              sizeof st->copy_null - 1);
            memcpy(st->copy_null, v, strlen(v) + 1);
        } else if (!strcasecmp(d->defname, "encoding")) {
            if (strcasecmp(v, "utf8") && strcasecmp(v, "utf-8"))
                return sq_err(e, "0A000", pos, "COPY encoding %s is not supported", v);
        } else {
            return sq_err(e, "0A000", pos, "COPY option \"%s\" is not supported", d->defname);
        }
    }
    /* the column list is resolved when the COPY starts (copy_start) */
    if (c->n_attlist > SQ_MAX_COLS)
        return sq_err(e, "54011", 0, "COPY names %zu columns", c->n_attlist);
    if (c->n_attlist) {
        st->copy_names = arena_alloc(&st->a, c->n_attlist * sizeof *st->copy_names);
        if (!st->copy_names)
            return sq_err(e, "53200", 0, "out of memory");
        for (size_t i = 0; i < c->n_attlist; i++) {
            const char *cn = str_of(c->attlist[i]);
            snprintf(st->copy_names[i], sizeof st->copy_names[i], "%s", cn ? cn : "");
        }
        st->ncopy_names = (uint32_t)c->n_attlist;
    }
    return 0;
}

/* Split one COPY text line into fields (in place), unescaping. */
static int copy_fields(char *line, size_t len, char delim, char **f, size_t *flen, bool *isnull,
                       size_t max, size_t *nf, const char *nullstr)
{
    size_t n = 0;
    size_t i = 0;
    size_t nl = strlen(nullstr);
    for (;;) {
        if (n == max)
            return -1;
        char *start = line + i, *w = start;
        size_t fs = i, fe = i;
        /* the null marker is compared with the raw field, before unescaping */
        while (fe < len && line[fe] != delim) {
            if (line[fe] == '\\' && fe + 1 < len)
                fe++;
            fe++;
        }
        bool raw_null = fe - fs == nl && !memcmp(line + fs, nullstr, nl);
        while (i < len && line[i] != delim) {
            char ch = line[i++];
            if (ch == '\\' && i < len) {
                char d = line[i++];
                switch (d) {
                case 'b': *w++ = '\b'; break;
                case 'f': *w++ = '\f'; break;
                case 'n': *w++ = '\n'; break;
                case 'r': *w++ = '\r'; break;
                case 't': *w++ = '\t'; break;
                case 'v': *w++ = '\v'; break;
                case 'x': {
                    int v = 0, k = 0;
                    while (k < 2 && i < len && ((line[i] >= '0' && line[i] <= '9') ||
                                                ((line[i] | 32) >= 'a' && (line[i] | 32) <= 'f'))) {
                        char h = line[i++];
                        v = v * 16 + (h <= '9' ? h - '0' : (h | 32) - 'a' + 10);
                        k++;
                    }
                    *w++ = k ? (char)v : 'x';
                    break;
                }
                default:
                    if (d >= '0' && d <= '7') {
                        int v = d - '0', k = 1;
                        while (k < 3 && i < len && line[i] >= '0' && line[i] <= '7')
                            v = v * 8 + (line[i++] - '0'), k++;
                        *w++ = (char)v;
                    } else {
                        *w++ = d;
                    }
                }
            } else {
                *w++ = ch;
            }
        }
        f[n] = start;
        flen[n] = (size_t)(w - start);
        isnull[n] = raw_null;
        n++;
        if (i >= len)
            break;
        i++; /* the delimiter */
    }
    *nf = n;
    return 0;
}

static int copy_line(struct sqle_sess *s, char *line, size_t len, struct sqle_error *e)
{
    struct sqle_stmt *st = s->copy;
    s->copy_line++;
    if (len && line[len - 1] == '\r')
        len--;
    if (len == 2 && line[0] == '\\' && line[1] == '.') {
        s->copy_ended = true;
        return 0;
    }
    char *f[SQ_MAX_COLS];
    size_t fl[SQ_MAX_COLS];
    bool isnull[SQ_MAX_COLS];
    size_t nf = 0;
    if (copy_fields(line, len, st->copy_delim, f, fl, isnull, SQ_MAX_COLS, &nf, st->copy_null) ||
        nf != st->ncopy_cols)
        return sq_err(e, "22P04", 0, "COPY %s, line %" PRIu64 ": %s data for %u columns",
                      st->t.name, s->copy_line, nf > st->ncopy_cols ? "extra" : "missing",
                      st->ncopy_cols);
    struct sv vals[SQ_MAX_COLS];
    memset(vals, 0, st->t.ncols * sizeof *vals);
    for (size_t i = 0; i < nf; i++) {
        const struct sq_col *c = &st->t.cols[st->copy_cols[i]];
        if (isnull[i])
            continue;
        char what[160];
        snprintf(what, sizeof what, "COPY %s, line %" PRIu64 ", column %s", st->t.name,
                 s->copy_line, c->name);
        if (sq_from_text(&s->copya, c->oid, c->typmod, f[i], fl[i], &vals[st->copy_cols[i]], e,
                         what))
            return -1;
    }
    if (st->t.hidden >= 0) {
        vals[st->t.hidden].t = SV_INT;
        vals[st->t.hidden].i = (int64_t)sq_rowkey(s->e);
    }
    struct nines_value nv[SQ_MAX_COLS];
    for (uint32_t c = 0; c < st->t.ncols; c++) {
        if (sq_coerce(&s->copya, &st->t.cols[c], st->t.name, &vals[c], e, 0)) {
            char where[160];
            snprintf(where, sizeof where, "COPY %s, line %" PRIu64 ", column %s", st->t.name,
                     s->copy_line, st->t.cols[c].name);
            return sq_err_detail(e, where);
        }
        nv[c] = sq_to_nines(&st->t.cols[c], &vals[c]);
    }
    int rc = nines_txn_insert(s->txn, st->t.name, nv, st->t.ncols);
    if (rc)
        return sq_err_nines(e, rc, "COPY insert", nines_conn_errdetail(s->c));
    s->copy_rows++;
    if (nines_txn_buffered(s->txn) >= 1000) {
        arena_reset(&s->copya);
        rc = nines_txn_flush(s->txn);
        if (rc == NINES_EEXIST) {
            sq_err(e, "23505", 0, "duplicate key value violates unique constraint \"%s_pkey\" "
                   "(COPY %s, near line %" PRIu64 ")", st->t.name, st->t.name, s->copy_line);
            return sq_err_detail(e, nines_conn_errdetail(s->c));
        }
        if (rc)
            return sq_err_nines(e, rc, "COPY", nines_conn_errdetail(s->c));
        if (atomic_load(&s->cancel))
            return sq_err(e, "57014", 0, "canceling statement due to user request");
    }
    return 0;
}

int sqle_copy_data(struct sqle_sess *s, const char *buf, size_t len, struct sqle_error *err)
{
    if (!s->copy)
        return sq_err(err, "08P01", 0, "CopyData without a COPY in progress");
    if (s->copy_failed || s->copy_ended)
        return 0; /* the error (or the end marker) is reported at CopyDone */
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t piece = nl ? (size_t)(nl - (buf + i)) : len - i;
        if (s->copylen + piece + 1 > s->copycap) {
            size_t cap = s->copycap ? s->copycap : 4096;
            while (cap < s->copylen + piece + 1)
                cap *= 2;
            if (cap > (64u << 20)) {
                s->copy_failed = true;
                sq_err(&s->copy_err, "54000", 0, "COPY line %" PRIu64 " is longer than 64 MiB",
                       s->copy_line + 1);
                return 0;
            }
            char *b = realloc(s->copybuf, cap);
            if (!b) {
                s->copy_failed = true;
                sq_err(&s->copy_err, "53200", 0, "out of memory for a COPY line");
                return 0;
            }
            s->copybuf = b;
            s->copycap = cap;
        }
        memcpy(s->copybuf + s->copylen, buf + i, piece);
        s->copylen += piece;
        i += piece;
        if (!nl)
            break;
        i++; /* the newline */
        if (copy_line(s, s->copybuf, s->copylen, &s->copy_err)) {
            s->copy_failed = true;
            s->copylen = 0;
            return 0;
        }
        s->copylen = 0;
        if (s->copy_ended)
            return 0;
    }
    return 0;
}

static void copy_clear(struct sqle_sess *s)
{
    sqle_stmt_free(s->copy);
    s->copy = NULL;
    s->copylen = 0;
    s->copy_failed = false;
    s->copy_ended = false;
    arena_reset(&s->copya);
}

/* In sqle_sess.c's block machine terms: a failed COPY fails the block. */
static void copy_abort(struct sqle_sess *s)
{
    if (s->txn) {
        (void)nines_txn_rollback(s->txn);
        s->txn = NULL;
        s->ncache = 0;
    }
    if (s->block == B_OPEN)
        s->block = B_FAILED;
}

int sqle_copy_done(struct sqle_sess *s, struct sqle_result **out, struct sqle_error *err)
{
    *out = NULL;
    if (!s->copy)
        return sq_err(err, "08P01", 0, "CopyDone without a COPY in progress");
    if (!s->copy_failed && !s->copy_ended && s->copylen) {
        /* a last line without a newline */
        if (copy_line(s, s->copybuf, s->copylen, &s->copy_err))
            s->copy_failed = true;
        s->copylen = 0;
    }
    if (s->copy_failed) {
        *err = s->copy_err;
        copy_abort(s);
        copy_clear(s);
        return -1;
    }
    struct sqle_stmt *st = s->copy;
    int rc = nines_txn_flush(s->txn);
    if (rc == NINES_EEXIST) {
        sq_err(err, "23505", 0, "duplicate key value violates unique constraint \"%s_pkey\" "
               "(COPY %s)", st->t.name, st->t.name);
        sq_err_detail(err, nines_conn_errdetail(s->c));
    } else if (rc) {
        sq_err_nines(err, rc, "COPY", nines_conn_errdetail(s->c));
    }
    if (rc == 0 && s->copy_own_txn) {
        nines_txn *t = s->txn;
        s->txn = NULL;
        s->ncache = 0;
        rc = nines_txn_commit(t);
        if (rc)
            sq_err_nines(err, rc, "COPY: the commit failed, nothing was loaded",
                         nines_conn_errdetail(s->c));
    }
    if (rc) {
        copy_abort(s);
        copy_clear(s);
        return -1;
    }
    struct sqle_result *r = sq_result_new(SQLE_R_COMMAND);
    if (!r) {
        copy_clear(s);
        return sq_err(err, "53200", 0, "out of memory");
    }
    snprintf(r->tag, sizeof r->tag, "COPY %" PRIu64, s->copy_rows);
    copy_clear(s);
    *out = r;
    return 0;
}

void sqle_copy_fail(struct sqle_sess *s, const char *client_msg, struct sqle_error *err)
{
    sq_err(err, "57014", 0, "COPY from stdin failed: %s", client_msg ? client_msg : "");
    if (!s->copy)
        return;
    copy_abort(s);
    copy_clear(s);
}

static int copy_start(struct sqle_sess *s, struct sqle_stmt *st, struct sqle_result **out,
                      struct sqle_error *e)
{
    struct sqle_stmt *cp = calloc(1, sizeof *cp);
    if (!cp)
        return sq_err(e, "53200", 0, "out of memory");
    memcpy(cp, st, sizeof *cp);
    memset(&cp->a, 0, sizeof cp->a);
    arena_init(&cp->a, 64);
    cp->text = NULL;
    if (sq_table_load(s, st->names[0], 0, &cp->t, e, 0)) {
        sqle_stmt_free(cp);
        return -1;
    }
    if (cp->t.readonly) {
        sq_err(e, "25006", 0, "table \"%s\" is read-only now (its primary key is being changed)",
               cp->t.name);
        sqle_stmt_free(cp);
        return -1;
    }
    cp->copy_names = NULL;
    cp->ncopy_cols = 0;
    for (uint32_t i = 0; i < st->ncopy_names; i++) {
        int found = -1;
        for (uint32_t c = 0; c < cp->t.ncols; c++)
            if (!cp->t.cols[c].hidden && !strcmp(cp->t.cols[c].name, st->copy_names[i]))
                found = (int)c;
        for (uint32_t j = 0; found >= 0 && j < i; j++)
            if (cp->copy_cols[j] == found)
                found = -2;
        if (found < 0) {
            sq_err(e, found == -2 ? "42701" : "42703", 0, found == -2
                   ? "column \"%s\" specified more than once"
                   : "column \"%s\" of relation \"%s\" does not exist", st->copy_names[i],
                   cp->t.name);
            sqle_stmt_free(cp);
            return -1;
        }
        cp->copy_cols[cp->ncopy_cols++] = found;
    }
    if (!cp->ncopy_cols)
        for (uint32_t c = 0; c < cp->t.ncols; c++)
            if (!cp->t.cols[c].hidden)
                cp->copy_cols[cp->ncopy_cols++] = (int)c;
    s->copy_own_txn = s->block == B_IDLE;
    nines_txn *t;
    if (sq_txn(s, &t, e)) {
        sqle_stmt_free(cp);
        return -1;
    }
    struct sqle_result *r = sq_result_new(SQLE_R_COPY_IN);
    if (!r) {
        sqle_stmt_free(cp);
        return sq_err(e, "53200", 0, "out of memory");
    }
    r->ncols = cp->ncopy_cols;
    s->copy = cp;
    s->copy_line = 0;
    s->copy_rows = 0;
    s->copylen = 0;
    s->copy_failed = false;
    s->copy_ended = false;
    *out = r;
    return 0;
}

/* ---- DDL execution ---------------------------------------------------------- */

static int ddl_err(struct sqle_sess *s, struct sqle_error *e, int rc, const char *what)
{
    return sq_err_nines(e, rc, what, nines_conn_errdetail(s->c));
}

/* A scratch name for a table being built (TRUNCATE, re-keying). */
static void scratch_name(const char *base, const char *why, char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, n, "%.40s_nines_%s%06lx", base, why,
             (unsigned long)(ts.tv_nsec ^ ts.tv_sec) & 0xffffff);
}

/* The nines definition of a loaded table (columns as they are). */
static void def_of(const struct sq_table *t, struct nines_table_def *d, struct nines_column *cols,
                   uint32_t *pk)
{
    memset(d, 0, sizeof *d);
    for (uint32_t i = 0; i < t->ncols; i++) {
        const struct sq_col *c = &t->cols[i];
        cols[i] = (struct nines_column){.name = c->name, .type = c->type, .size = c->size,
                                        .nullable = c->nullable, .sqltype = c->oid,
                                        .sqltypmod = c->typmod, .hidden = c->hidden};
    }
    for (uint32_t k = 0; k < t->npk; k++)
        pk[k] = t->pk[k];
    d->name = t->name;
    d->ncols = t->ncols;
    d->cols = cols;
    d->npk = t->npk;
    d->pk = pk;
    d->method = t->method;
    d->nfrags = t->nfrags;
}

static int exec_truncate(struct sqle_sess *s, struct sqle_stmt *st, struct sqle_error *e)
{
    for (uint32_t i = 0; i < st->nnames; i++) {
        struct sq_table t;
        if (sq_table_load(s, st->names[i], 1, &t, e, 0))
            return -1;
        if (t.method == 2)
            return sq_err(e, "0A000", 0, "TRUNCATE of a range-partitioned table is not "
                          "supported yet (DELETE FROM it)");
        struct nines_table_def d;
        struct nines_column cols[SQ_MAX_COLS];
        uint32_t pk[SQ_MAX_PK];
        def_of(&t, &d, cols, pk);
        char name[64];
        scratch_name(t.name, "t", name, sizeof name);
        d.name = name;
        int rc = nines_table_create(s->c, &d, NULL);
        if (rc)
            return ddl_err(s, e, rc, "TRUNCATE: creating the empty table");
        rc = nines_table_replace(s->c, t.name, name);
        if (rc) {
            (void)nines_table_drop(s->c, name);
            return ddl_err(s, e, rc, "TRUNCATE: switching to the empty table");
        }
    }
    s->ncache = 0;
    return 0;
}

struct rekey {
    struct sqle_sess *s;
    const struct sq_table *from, *to;
    int map[SQ_MAX_COLS];      /* to's column i = from's column map[i] */
    nines_txn *t;
    uint64_t rows;
    struct sv last[SQ_MAX_PK];
    bool have_last;
    uint32_t got;
    int rc;
    struct sqle_error *e;
    struct arena a;
};

static int rekey_row(void *arg, const nines_row *r)
{
    struct rekey *k = arg;
    k->got++;
    struct sv vals[SQ_MAX_COLS];
    size_t n = nines_row_ncols(r);
    for (uint32_t i = 0; i < k->from->ncols; i++)
        vals[i] = i < n ? sq_from_nines(&k->from->cols[i], nines_row_value(r, i)) : (struct sv){0};
    bool same = k->have_last;
    for (uint32_t j = 0; same && j < k->from->npk; j++)
        same = sq_cmp(&vals[k->from->pk[j]], &k->last[j]) == 0;
    for (uint32_t j = 0; j < k->from->npk; j++) {
        k->last[j] = vals[k->from->pk[j]];
        if (k->last[j].t == SV_TEXT || k->last[j].t == SV_BYTES) {
            char *p = arena_alloc(&k->a, k->last[j].len + 1);
            if (!p) {
                k->rc = sq_err(k->e, "53200", 0, "out of memory");
                return 1;
            }
            memcpy(p, k->last[j].s, k->last[j].len);
            k->last[j].s = p;
        }
    }
    k->have_last = true;
    if (same)
        return 0;
    struct nines_value nv[SQ_MAX_COLS];
    for (uint32_t i = 0; i < k->to->ncols; i++) {
        const struct sv *v = &vals[k->map[i]];
        if (v->t == SV_NULL && k->to->cols[i].pkpos >= 0) {
            k->rc = sq_err(k->e, "23502", 0, "column \"%s\" of relation \"%s\" contains null "
                           "values", k->to->cols[i].name, k->from->name);
            return 1;
        }
        nv[i] = sq_to_nines(&k->to->cols[i], v);
    }
    int rc = nines_txn_insert(k->t, k->to->name, nv, k->to->ncols);
    if (rc) {
        k->rc = sq_err_nines(k->e, rc, "ADD PRIMARY KEY: copying a row",
                             nines_conn_errdetail(k->s->c));
        return 1;
    }
    k->rows++;
    return 0;
}

static int exec_add_pk(struct sqle_sess *s, struct sqle_stmt *st, struct sqle_error *e)
{
    struct sq_table from;
    if (sq_table_load(s, st->t.name, 1, &from, e, 0))
        return -1;
    if (from.hidden < 0)
        return sq_err(e, "42P16", 0, "multiple primary keys for table \"%s\" are not allowed",
                      from.name);
    /* the re-keyed table: the visible columns, keyed by the given ones */
    struct nines_table_def d;
    struct nines_column cols[SQ_MAX_COLS];
    uint32_t pk[SQ_MAX_PK];
    def_of(&from, &d, cols, pk);
    struct nines_column ncols[SQ_MAX_COLS];
    int map[SQ_MAX_COLS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < from.ncols; i++)
        if (!from.cols[i].hidden) {
            map[n] = (int)i;
            ncols[n++] = cols[i];
        }
    for (uint32_t k = 0; k < st->npkcols; k++) {
        int c = -1;
        for (uint32_t i = 0; i < n; i++)
            if (!strcmp(ncols[i].name, st->pkcols[k]))
                c = (int)i;
        if (c < 0)
            return sq_err(e, "42703", 0, "column \"%s\" named in key does not exist",
                          st->pkcols[k]);
        for (uint32_t j = 0; j < k; j++)
            if (pk[j] == (uint32_t)c)
                return sq_err(e, "42701", 0, "column \"%s\" appears twice in primary key "
                              "constraint", st->pkcols[k]);
        pk[k] = (uint32_t)c;
        ncols[c].nullable = 0;
    }
    char name[64];
    scratch_name(from.name, "k", name, sizeof name);
    d.name = name;
    d.ncols = n;
    d.cols = ncols;
    d.npk = st->npkcols;
    d.pk = pk;
    d.method = 1;
    int rc = nines_table_set_readonly(s->c, from.name, 1);
    if (rc)
        return ddl_err(s, e, rc, "ALTER TABLE: making the table read-only for the copy");
    rc = nines_table_create(s->c, &d, NULL);
    if (rc) {
        (void)nines_table_set_readonly(s->c, from.name, 0);
        return ddl_err(s, e, rc, "ALTER TABLE: creating the re-keyed table");
    }
    struct sq_table to;
    if (sq_table_load(s, name, 1, &to, e, 0)) {
        (void)nines_table_drop(s->c, name);
        (void)nines_table_set_readonly(s->c, from.name, 0);
        return -1;
    }
    struct rekey k = {.s = s, .from = &from, .to = &to, .e = e};
    memcpy(k.map, map, sizeof map);
    arena_init(&k.a, 4096);
    /* page by page, each its own transaction: the table is read-only, so
     * nothing changes under the copy */
    for (;;) {
        if (atomic_load(&s->cancel)) {
            k.rc = sq_err(e, "57014", 0, "canceling statement due to user request");
            break;
        }
        if ((rc = nines_txn_begin(s->c, &k.t)) != 0) {
            k.rc = ddl_err(s, e, rc, "ALTER TABLE: copy");
            break;
        }
        struct nines_value lo[SQ_MAX_PK];
        for (uint32_t j = 0; k.have_last && j < from.npk; j++)
            lo[j] = sq_to_nines(&from.cols[from.pk[j]], &k.last[j]);
        k.got = 0;
        rc = nines_txn_scan(k.t, from.name, lo, k.have_last ? from.npk : 0, NULL, 0, 1000,
                            rekey_row, &k);
        if (rc < 0 && !k.rc)
            k.rc = ddl_err(s, e, rc, "ALTER TABLE: reading the table");
        if (k.rc) {
            (void)nines_txn_rollback(k.t);
            break;
        }
        rc = nines_txn_commit(k.t);
        if (rc == NINES_EEXIST || (rc && strstr(nines_conn_errdetail(s->c), "duplicate"))) {
            sq_err(e, "23505", 0, "could not create unique index \"%s_pkey\"", from.name);
            k.rc = sq_err_detail(e, "the new key has duplicate values");
            break;
        }
        if (rc) {
            k.rc = ddl_err(s, e, rc, "ALTER TABLE: copying rows");
            break;
        }
        if (k.got < 1000)
            break;
    }
    arena_destroy(&k.a);
    if (k.rc) {
        (void)nines_table_drop(s->c, name);
        (void)nines_table_set_readonly(s->c, from.name, 0);
        return -1;
    }
    rc = nines_table_replace(s->c, from.name, name);
    if (rc) {
        (void)nines_table_drop(s->c, name);
        (void)nines_table_set_readonly(s->c, from.name, 0);
        return ddl_err(s, e, rc, "ALTER TABLE: switching to the re-keyed table");
    }
    s->ncache = 0;
    return 0;
}

int sq_exec_ddl(struct sqle_sess *s, struct sqle_stmt *st, struct sqle_result **out,
                struct sqle_error *e)
{
    *out = NULL;
    if (st->kind == K_COPY_FROM)
        return copy_start(s, st, out, e);
    if (sq_need_conn(s, e))
        return -1;
    struct sqle_result *r = sq_result_new(SQLE_R_COMMAND);
    if (!r)
        return sq_err(e, "53200", 0, "out of memory");
    snprintf(r->tag, sizeof r->tag, "%s", st->tag);
    int rc = 0;
    switch (st->kind) {
    case K_CREATE:
        rc = nines_table_create(s->c, &st->def, NULL);
        if (rc == NINES_EEXIST && st->if_not_exists) {
            sq_result_notice(r, "42P07", "relation \"%s\" already exists, skipping",
                             st->def.name);
            rc = 0;
        } else if (rc == NINES_EEXIST) {
            rc = sq_err(e, "42P07", 0, "relation \"%s\" already exists", st->def.name);
        } else if (rc) {
            rc = ddl_err(s, e, rc, "CREATE TABLE");
        }
        break;
    case K_DROP:
        for (uint32_t i = 0; i < st->nnames && rc == 0; i++) {
            int x = nines_table_drop(s->c, st->names[i]);
            if (x == NINES_ENOTFOUND && st->missing_ok)
                sq_result_notice(r, "00000", "table \"%s\" does not exist, skipping",
                                 st->names[i]);
            else if (x == NINES_ENOTFOUND)
                rc = sq_err(e, "42P01", 0, "table \"%s\" does not exist", st->names[i]);
            else if (x)
                rc = ddl_err(s, e, x, "DROP TABLE");
        }
        s->ncache = 0;
        break;
    case K_TRUNCATE:
        rc = exec_truncate(s, st, e);
        break;
    case K_ADD_PK:
        rc = exec_add_pk(s, st, e);
        break;
    default:
        rc = sq_err(e, "XX000", 0, "not a schema statement: %d", st->kind);
    }
    if (rc) {
        sqle_result_free(r);
        return -1;
    }
    *out = r;
    return 0;
}
