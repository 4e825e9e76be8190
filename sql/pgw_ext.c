/* The extended query protocol (sql/README.md "Extended Query"): prepared
 * statements (Parse), portals (Bind) with text parameters, Describe,
 * Execute with a row limit (PortalSuspended; the portal keeps the rest of
 * its materialized result), Close, Sync, Flush. An error sends
 * ErrorResponse and the session discards messages until Sync
 * (PGW_ST_EXT_ERROR). */
#include "pgw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct pgw_stmt *stmt_find(struct pgw_sess *s, const char *name)
{
    for (struct pgw_stmt *p = s->stmts; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static void stmt_unref(struct pgw_stmt *p)
{
    if (--p->refs > 0)
        return;
    if (p->st)
        sqle_stmt_free(p->st);
    free(p->name);
    free(p);
}

static void stmt_remove(struct pgw_sess *s, const char *name)
{
    for (struct pgw_stmt **pp = &s->stmts; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            struct pgw_stmt *p = *pp;
            *pp = p->next;
            stmt_unref(p);
            return;
        }
    }
}

static struct pgw_portal *portal_find(struct pgw_sess *s, const char *name)
{
    for (struct pgw_portal *p = s->portals; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static void portal_free(struct pgw_portal *p)
{
    if (p->res)
        sqle_result_free(p->res);
    for (size_t i = 0; i < p->nparams; i++)
        free(p->params[i]);
    free(p->params);
    free(p->lens);
    free(p->res_fmts);
    if (p->stmt)
        stmt_unref(p->stmt);
    free(p->name);
    free(p);
}

static void portal_remove(struct pgw_sess *s, const char *name)
{
    for (struct pgw_portal **pp = &s->portals; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            struct pgw_portal *p = *pp;
            *pp = p->next;
            portal_free(p);
            return;
        }
    }
}

static void portals_free(struct pgw_sess *s)
{
    while (s->portals) {
        struct pgw_portal *p = s->portals;
        s->portals = p->next;
        portal_free(p);
    }
}

void pgw_ext_drop_unnamed(struct pgw_sess *s)
{
    portal_remove(s, "");
    stmt_remove(s, "");
}

void pgw_ext_free_all(struct pgw_sess *s)
{
    portals_free(s);
    while (s->stmts) {
        struct pgw_stmt *p = s->stmts;
        s->stmts = p->next;
        stmt_unref(p);
    }
}

/* An error of an extended message: discard until Sync. */
static int ext_error(struct pgw_sess *s, const struct sqle_error *e)
{
    pgw_send_error(s, e);
    s->st = PGW_ST_EXT_ERROR;
    return pgw_maybe_flush(s);
}

static int ext_errorf(struct pgw_sess *s, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ext_errorf(struct pgw_sess *s, const char *sqlstate, const char *fmt, ...)
{
    struct sqle_error e;
    pgw_err_set(&e, "ERROR", sqlstate, "%s", "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return ext_error(s, &e);
}

static int oom(struct pgw_sess *s)
{
    pgw_send_errorf(s, "FATAL", "53200", "out of memory");
    pgw_reason(s, "out of memory for message type '%c'", s->mtype);
    return -1;
}

static int on_parse(struct pgw_sess *s)
{
    struct pgw_rd r = {s->body, s->blen, 0, false};
    const char *name = pgw_rd_str(&r), *query = pgw_rd_str(&r);
    int16_t n = pgw_rd_i16(&r);
    if (r.bad || n < 0)
        return pgw_malformed(s, "Parse");
    uint32_t *oids = calloc((size_t)n + 1, sizeof *oids);
    if (!oids)
        return oom(s);
    for (int i = 0; i < n; i++)
        oids[i] = (uint32_t)pgw_rd_i32(&r);
    if (!pgw_rd_end(&r)) {
        free(oids);
        return pgw_malformed(s, "Parse parameter types");
    }
    if (name[0] && stmt_find(s, name)) {
        free(oids);
        return ext_errorf(s, "42P05", "prepared statement \"%s\" already exists", name);
    }
    struct sqle_stmt **sts = NULL;
    size_t cnt = 0;
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    int rc = sqle_parse(s->es, query, oids, (size_t)n, 1, &sts, &cnt, &err);
    free(oids);
    if (rc)
        return ext_error(s, &err);
    if (cnt > 1) {
        for (size_t i = 0; i < cnt; i++)
            sqle_stmt_free(sts[i]);
        free(sts);
        return ext_errorf(s, "42601", "cannot insert multiple commands into a prepared "
                          "statement");
    }
    struct pgw_stmt *p = calloc(1, sizeof *p);
    char *pname = strdup(name);
    if (!p || !pname) {
        if (cnt)
            sqle_stmt_free(sts[0]);
        free(sts);
        free(p);
        free(pname);
        return oom(s);
    }
    p->name = pname;
    p->st = cnt ? sts[0] : NULL; /* NULL: an empty query */
    p->nparams = p->st ? sqle_stmt_nparams(p->st) : 0;
    p->refs = 1;
    free(sts);
    if (!name[0])
        stmt_remove(s, ""); /* the unnamed statement is replaced silently */
    p->next = s->stmts;
    s->stmts = p;
    pgw_send_simple(s, '1'); /* ParseComplete */
    return pgw_maybe_flush(s);
}

/* Bind's body, read before any check (the checks follow PostgreSQL's order). */
struct bind_msg {
    const char *portal, *stmt;
    int16_t nfmt, nparams, nres;
    const uint8_t *fmts, *res_fmts;  /* big-endian int16s */
    const char **vals;
    int *lens;
};

static int16_t fmt_at(const uint8_t *p, int i)
{
    return (int16_t)(uint16_t)((unsigned)p[2 * i] << 8 | p[2 * i + 1]);
}

static int read_bind(struct pgw_sess *s, struct bind_msg *b)
{
    struct pgw_rd r = {s->body, s->blen, 0, false};
    b->portal = pgw_rd_str(&r);
    b->stmt = pgw_rd_str(&r);
    b->nfmt = pgw_rd_i16(&r);
    b->fmts = b->nfmt > 0 ? pgw_rd_bytes(&r, 2 * (size_t)b->nfmt) : NULL;
    b->nparams = pgw_rd_i16(&r);
    if (r.bad || b->nfmt < 0 || b->nparams < 0)
        return pgw_malformed(s, "Bind");
    b->vals = calloc((size_t)b->nparams + 1, sizeof *b->vals);
    b->lens = calloc((size_t)b->nparams + 1, sizeof *b->lens);
    if (!b->vals || !b->lens)
        return oom(s);
    for (int i = 0; i < b->nparams && !r.bad; i++) {
        int32_t len = pgw_rd_i32(&r);
        if (len < -1) {
            r.bad = true;
            break;
        }
        b->lens[i] = len;
        b->vals[i] = len >= 0 ? (const char *)pgw_rd_bytes(&r, (size_t)len) : NULL;
    }
    b->nres = pgw_rd_i16(&r);
    b->res_fmts = b->nres > 0 ? pgw_rd_bytes(&r, 2 * (size_t)b->nres) : NULL;
    if (!pgw_rd_end(&r) || b->nres < 0)
        return pgw_malformed(s, "Bind parameters or result formats");
    return 0;
}

/* The checks of a well-formed Bind, then the portal. */
static int bind_portal(struct pgw_sess *s, const struct bind_msg *b)
{
    struct pgw_stmt *st = stmt_find(s, b->stmt);
    if (!st)
        return b->stmt[0] ? ext_errorf(s, "26000", "prepared statement \"%s\" does not exist",
                                       b->stmt)
                          : ext_errorf(s, "26000", "unnamed prepared statement does not exist");
    if (b->nfmt > 1 && b->nfmt != b->nparams)
        return ext_errorf(s, "08P01", "bind message has %d parameter formats but %d parameters",
                          b->nfmt, b->nparams);
    if ((size_t)b->nparams != st->nparams)
        return ext_errorf(s, "08P01", "bind message supplies %d parameters, but prepared "
                          "statement \"%s\" requires %zu", b->nparams, b->stmt, st->nparams);
    for (int i = 0; i < b->nparams; i++) {
        int16_t f = b->nfmt == 0 ? 0 : fmt_at(b->fmts, b->nfmt == 1 ? 0 : i);
        if (f != 0 && f != 1)
            return ext_errorf(s, "08P01", "unsupported format code %d for parameter $%d", f,
                              i + 1);
        uint32_t oid = st->st ? sqle_stmt_param_oid(st->st, (size_t)i) : 0;
        if (f == 1 && !pgw_bin_supported(oid))
            return ext_errorf(s, "0A000", "binary format for parameter $%d of type oid %u is "
                              "not supported (send it as text)", i + 1, oid);
    }
    /* result formats: none (all text), one for all, or one per column */
    const struct sqle_col *rcols = NULL;
    size_t nrcols = 0;
    if (st->st && b->nres) {
        struct sqle_error derr;
        memset(&derr, 0, sizeof derr);
        int n = sqle_stmt_describe(s->es, st->st, &rcols, &derr);
        if (n < 0)
            return ext_error(s, &derr);
        nrcols = (size_t)n;
    }
    if (b->nres > 1 && (size_t)b->nres != nrcols)
        return ext_errorf(s, "08P01", "bind message has %d result formats but query has %zu "
                          "columns", b->nres, nrcols);
    for (size_t i = 0; b->nres && i < nrcols; i++) {
        int16_t f = fmt_at(b->res_fmts, b->nres == 1 ? 0 : (int)i);
        if (f != 0 && f != 1)
            return ext_errorf(s, "08P01", "unsupported format code %d for result column %zu",
                              f, i + 1);
        if (f == 1 && !pgw_bin_supported(rcols[i].type_oid))
            return ext_errorf(s, "0A000", "binary format for result column %zu (type oid %u) "
                              "is not supported", i + 1, rcols[i].type_oid);
    }
    if (b->portal[0] && portal_find(s, b->portal))
        return ext_errorf(s, "42P03", "portal \"%s\" already exists", b->portal);
    struct pgw_portal *p = calloc(1, sizeof *p);
    if (!p)
        return oom(s);
    p->name = strdup(b->portal);
    p->params = calloc((size_t)b->nparams + 1, sizeof *p->params);
    p->lens = calloc((size_t)b->nparams + 1, sizeof *p->lens);
    bool ok = p->name && p->params && p->lens;
    p->nparams = (size_t)b->nparams;
    char binerr[160] = "";
    int binbad = -1;
    for (size_t i = 0; ok && i < p->nparams; i++) {
        p->lens[i] = b->lens[i] < 0 ? 0 : b->lens[i];
        if (!b->vals[i])
            continue; /* SQL NULL */
        int16_t f = b->nfmt == 0 ? 0 : fmt_at(b->fmts, b->nfmt == 1 ? 0 : (int)i);
        if (f == 1) { /* binary: the text the engine takes */
            if (pgw_bin_param(sqle_stmt_param_oid(st->st, i), (const uint8_t *)b->vals[i],
                              b->lens[i], &p->params[i], &p->lens[i], binerr, sizeof binerr)) {
                binbad = (int)i;
                break;
            }
            continue;
        }
        p->params[i] = malloc((size_t)b->lens[i] + 1);
        if (!p->params[i]) {
            ok = false;
            break;
        }
        memcpy(p->params[i], b->vals[i], (size_t)b->lens[i]);
        p->params[i][b->lens[i]] = '\0';
    }
    if (ok && nrcols && b->nres) {
        p->res_fmts = calloc(nrcols, sizeof *p->res_fmts);
        ok = p->res_fmts != NULL;
        for (size_t i = 0; ok && i < nrcols; i++)
            p->res_fmts[i] = fmt_at(b->res_fmts, b->nres == 1 ? 0 : (int)i);
        p->nres_fmts = nrcols;
    }
    st->refs++;
    p->stmt = st;
    if (binbad >= 0) {
        portal_free(p);
        return ext_errorf(s, "22P03", "parameter $%d: %s", binbad + 1, binerr);
    }
    if (!ok) {
        portal_free(p);
        return oom(s);
    }
    if (!b->portal[0])
        portal_remove(s, "");
    p->next = s->portals;
    s->portals = p;
    pgw_send_simple(s, '2'); /* BindComplete */
    return pgw_maybe_flush(s);
}

static int on_bind(struct pgw_sess *s)
{
    struct bind_msg b;
    memset(&b, 0, sizeof b);
    int rc = read_bind(s, &b);
    if (rc == 0)
        rc = bind_portal(s, &b);
    free(b.vals);
    free(b.lens);
    return rc;
}

/* RowDescription or NoData of a statement (fmts: a portal's result
 * formats, NULL: text). */
static int describe_rows(struct pgw_sess *s, struct pgw_stmt *st, const int16_t *fmts)
{
    if (!st->st) {
        pgw_send_simple(s, 'n');
        return pgw_maybe_flush(s);
    }
    const struct sqle_col *cols = NULL;
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    int n = sqle_stmt_describe(s->es, st->st, &cols, &err);
    if (n < 0)
        return ext_error(s, &err);
    pgw_send_rowdesc(s, cols, (size_t)n, true, fmts);
    return pgw_maybe_flush(s);
}

static int on_describe(struct pgw_sess *s)
{
    struct pgw_rd r = {s->body, s->blen, 0, false};
    uint8_t kind = pgw_rd_u8(&r);
    const char *name = pgw_rd_str(&r);
    if (!pgw_rd_end(&r))
        return pgw_malformed(s, "Describe");
    switch (kind) {
    case 'S': {
        struct pgw_stmt *st = stmt_find(s, name);
        if (!st)
            return ext_errorf(s, "26000", "prepared statement \"%s\" does not exist", name);
        if (st->nparams > INT16_MAX)
            return ext_errorf(s, "54000", "too many parameters (%zu)", st->nparams);
        pgw_out_begin(&s->out, 't'); /* ParameterDescription */
        pgw_out_i16(&s->out, (int16_t)st->nparams);
        for (size_t i = 0; i < st->nparams; i++)
            pgw_out_i32(&s->out, (int32_t)sqle_stmt_param_oid(st->st, i));
        pgw_out_end(&s->out);
        return describe_rows(s, st, NULL);
    }
    case 'P': {
        struct pgw_portal *p = portal_find(s, name);
        if (!p)
            return ext_errorf(s, "34000", "portal \"%s\" does not exist", name);
        if (p->res && sqle_result_kind(p->res) == SQLE_R_ROWS) {
            const struct sqle_col *cols = NULL;
            size_t n = sqle_result_ncols(p->res, &cols);
            pgw_send_rowdesc(s, cols, n, true, p->res_fmts);
            return pgw_maybe_flush(s);
        }
        return describe_rows(s, p->stmt, p->res_fmts);
    }
    default:
        return ext_errorf(s, "08P01", "invalid DESCRIBE message subtype %d", kind);
    }
}

/* The CommandComplete tag of a portal's last batch: a SELECT fetched in
 * parts reports the rows of that batch, as PostgreSQL does. */
static void portal_complete(struct pgw_sess *s, struct pgw_portal *p, size_t sent, bool whole)
{
    const char *tag = sqle_result_tag(p->res);
    char buf[64];
    if (!whole && tag && strncmp(tag, "SELECT ", 7) == 0) {
        snprintf(buf, sizeof buf, "SELECT %zu", sent);
        tag = buf;
    }
    pgw_send_cc(s, tag);
    if (whole)
        pgw_send_result_params(s, p->res);
    p->done = true;
}

static int on_execute(struct pgw_sess *s)
{
    struct pgw_rd r = {s->body, s->blen, 0, false};
    const char *name = pgw_rd_str(&r);
    int32_t max_rows = pgw_rd_i32(&r);
    if (!pgw_rd_end(&r))
        return pgw_malformed(s, "Execute");
    struct pgw_portal *p = portal_find(s, name);
    if (!p)
        return ext_errorf(s, "34000", "portal \"%s\" does not exist", name);
    if (!p->stmt->st) {
        pgw_send_simple(s, 'I'); /* EmptyQueryResponse */
        return pgw_maybe_flush(s);
    }
    if (p->done && !p->res) /* a COPY that ran */
        return ext_errorf(s, "55000", "portal \"%s\" cannot be run again", name);
    bool fresh = !p->res;
    if (fresh) {
        struct sqle_error err;
        memset(&err, 0, sizeof err);
        if (sqle_exec(s->es, p->stmt->st, (const char *const *)p->params, p->lens, p->nparams,
                      &p->res, &err)) {
            p->res = NULL;
            return ext_error(s, &err);
        }
        pgw_send_notices(s, p->res);
    }
    switch (sqle_result_kind(p->res)) {
    case SQLE_R_COMMAND:
        if (!fresh)
            return ext_errorf(s, "55000", "portal \"%s\" cannot be run again", name);
        portal_complete(s, p, 0, true);
        return pgw_maybe_flush(s);
    case SQLE_R_COPY_IN:
        pgw_send_copy_in(s, p->res);
        sqle_result_free(p->res);
        p->res = NULL;
        s->copy_from = PGW_COPY_EXTENDED;
        s->copy_portal = p;
        s->st = PGW_ST_COPY_IN;
        return pgw_flush(s);
    case SQLE_R_ROWS: {
        size_t nrows = sqle_result_nrows(p->res), from = p->next_row, to = nrows;
        if (max_rows > 0 && nrows - from > (size_t)max_rows)
            to = from + (size_t)max_rows;
        if (p->res_fmts && sqle_result_ncols(p->res, NULL) != p->nres_fmts)
            return ext_errorf(s, "XX000", "the result has %zu columns, its portal was bound "
                              "with %zu formats", sqle_result_ncols(p->res, NULL), p->nres_fmts);
        if (pgw_send_rows(s, p->res, from, to, p->res_fmts))
            return -1;
        p->next_row = to;
        if (to < nrows) {
            pgw_send_simple(s, 's'); /* PortalSuspended: the rest stays in the portal */
            return pgw_flush(s);
        }
        portal_complete(s, p, to - from, fresh && from == 0);
        return pgw_maybe_flush(s);
    }
    default:
        return ext_errorf(s, "XX000", "the engine returned a result of unknown kind %d",
                          (int)sqle_result_kind(p->res));
    }
}

void pgw_ext_copy_ended(struct pgw_sess *s, bool ok)
{
    if (s->copy_portal && ok)
        s->copy_portal->done = true;
    s->copy_portal = NULL;
    s->st = ok ? PGW_ST_READY : PGW_ST_EXT_ERROR;
}

static int on_close(struct pgw_sess *s)
{
    struct pgw_rd r = {s->body, s->blen, 0, false};
    uint8_t kind = pgw_rd_u8(&r);
    const char *name = pgw_rd_str(&r);
    if (!pgw_rd_end(&r))
        return pgw_malformed(s, "Close");
    switch (kind) {
    case 'S':
        stmt_remove(s, name);
        break;
    case 'P':
        portal_remove(s, name);
        break;
    default:
        return ext_errorf(s, "08P01", "invalid CLOSE message subtype %d", kind);
    }
    pgw_send_simple(s, '3'); /* CloseComplete, also when there was none */
    return pgw_maybe_flush(s);
}

int pgw_ext_msg(struct pgw_sess *s)
{
    switch (s->mtype) {
    case 'P':
        return on_parse(s);
    case 'B':
        return on_bind(s);
    case 'D':
        return on_describe(s);
    case 'E':
        return on_execute(s);
    case 'C':
        return on_close(s);
    case 'H':
        return pgw_flush(s);
    case 'S':
        /* the end of an implicit transaction ends its portals, as in
         * PostgreSQL; inside a block they live on */
        s->st = PGW_ST_READY;
        if (sqle_sess_status(s->es) == 'I')
            portals_free(s);
        pgw_send_rfq(s);
        return pgw_flush(s);
    default:
        pgw_reason(s, "message type 0x%02x is not an extended-protocol message",
                   (unsigned)(uint8_t)s->mtype);
        return -1;
    }
}
