/* sqle sessions: the engine object, sessions and their cluster
 * connection, parsing with libpg_query, the transaction-block state
 * machine, session parameters, results (sql/README.md "Engine"). */
#include "sqle_int.h"

#include "conf.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SQ_ADDR_MAX 80

struct sqle_addrs {
    size_t n;
    char a[NINES_MAX_NODES][SQ_ADDR_MAX];
    const char *p[NINES_MAX_NODES];
    char cluster[NINES_NAME_MAX];
};

/* The engine keeps the node list with this node first. */
struct sqle_priv {
    struct sqle pub;
    struct sqle_addrs addrs;
};

int sqle_create(const struct sqle_config *cfg, struct sqle **out, struct sqle_error *err)
{
    *out = NULL;
    struct sqle_priv *p = calloc(1, sizeof *p);
    struct nines_conf *cf = calloc(1, sizeof *cf);
    if (!p || !cf) {
        free(p);
        free(cf);
        return sq_err(err, "53200", 0, "out of memory for the SQL engine");
    }
    p->pub.cfg = *cfg;
    snprintf(p->pub.conf_path, sizeof p->pub.conf_path, "%s", cfg->conf_path ? cfg->conf_path : "");
    p->pub.cfg.conf_path = p->pub.conf_path;
    snprintf(p->pub.user, sizeof p->pub.user, "%s", cfg->user ? cfg->user : "");
    snprintf(p->pub.password, sizeof p->pub.password, "%s", cfg->password ? cfg->password : "");
    p->pub.cfg.user = p->pub.cfg.password = NULL;
    if (!p->pub.cfg.timeout_ms)
        p->pub.cfg.timeout_ms = 5000;
    int rc = nines_conf_load(p->pub.conf_path, cf);
    if (rc) {
        sq_err(err, "F0000", 0, "cluster file %s: %s", p->pub.conf_path, nines_errdetail());
        free(cf);
        free(p);
        return -1;
    }
    snprintf(p->addrs.cluster, sizeof p->addrs.cluster, "%s", cf->cluster);
    /* this node first, then the others in file order */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < cf->nnodes; i++) {
            bool self = cf->nodes[i].id == cfg->self;
            if ((pass == 0) != self)
                continue;
            /* the internal login is this node's own: no other node takes it */
            if (!self && p->pub.user[0])
                continue;
            snprintf(p->addrs.a[p->addrs.n], SQ_ADDR_MAX, "%s:%u", cf->nodes[i].host,
                     (unsigned)cf->nodes[i].port);
            p->addrs.p[p->addrs.n] = p->addrs.a[p->addrs.n];
            p->addrs.n++;
        }
    free(cf);
    /* hidden row keys: node id in the top 8 bits, then the start time in
     * µs, one more per row (unique while fewer than 10^6 rows a second are
     * inserted on average, as transaction ids are) */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    p->pub.rowkey_base = ((uint64_t)(cfg->self & 0x7f) << 56) | (us & ((1ull << 56) - 1));
    atomic_store(&p->pub.rowkey_next, 0);
    *out = &p->pub;
    return 0;
}

void sqle_destroy(struct sqle *e)
{
    if (e)
        explicit_bzero(e->password, sizeof e->password);
    free(e);
}

uint64_t sq_rowkey(struct sqle *e)
{
    return e->rowkey_base + atomic_fetch_add(&e->rowkey_next, 1);
}

/* ---- parameters --------------------------------------------------------- */

static const struct { const char *name, *value; bool report; } param_defaults[] = {
    {"server_version", "15.0", true},
    {"server_encoding", "UTF8", true},
    {"client_encoding", "UTF8", true},
    {"DateStyle", "ISO, MDY", true},
    {"IntervalStyle", "postgres", true},
    {"TimeZone", "UTC", true},
    {"integer_datetimes", "on", true},
    {"standard_conforming_strings", "on", true},
    {"application_name", "", true},
    {"is_superuser", "on", true},
    {"session_authorization", "", true},
    {"default_transaction_isolation", "serializable", false},
    {"transaction_isolation", "serializable", false},
    {"search_path", "\"$user\", public", false},
    {"max_identifier_length", "63", false},
    {"server_version_num", "150000", false},
    {"lc_messages", "C", false},
    {"extra_float_digits", "1", false},
    {"statement_timeout", "0", false},
};

static struct sq_param *param_find(struct sqle_sess *s, const char *name)
{
    for (uint32_t i = 0; i < s->nparams; i++)
        if (!strcasecmp(s->params[i].name, name))
            return &s->params[i];
    return NULL;
}

const char *sq_param_get(const struct sqle_sess *s, const char *name)
{
    for (uint32_t i = 0; i < s->nparams; i++)
        if (!strcasecmp(s->params[i].name, name))
            return s->params[i].value;
    return NULL;
}

int sq_param_set(struct sqle_sess *s, const char *name, const char *value,
                 struct sqle_result *r, struct sqle_error *e)
{
    if (!strcasecmp(name, "client_encoding") && strcasecmp(value, "UTF8") &&
        strcasecmp(value, "UTF-8") && strcasecmp(value, "unicode") && strcasecmp(value, "SQL_ASCII"))
        return sq_err(e, "22023", 0, "client_encoding \"%s\" is not supported (only UTF8)", value);
    if (!strcasecmp(name, "client_encoding"))
        value = "UTF8";
    if ((!strcasecmp(name, "timezone") || !strcasecmp(name, "time zone")) &&
        strcasecmp(value, "UTC") && strcasecmp(value, "GMT") && strcasecmp(value, "Etc/UTC") &&
        strcmp(value, "0") && strcasecmp(value, "Z"))
        return sq_err(e, "22023", 0, "time zone \"%s\" is not supported: timestamps are UTC",
                      value);
    if (!strcasecmp(name, "time zone"))
        name = "TimeZone";
    if (!strcasecmp(name, "server_version") || !strcasecmp(name, "server_encoding") ||
        !strcasecmp(name, "integer_datetimes") || !strcasecmp(name, "is_superuser"))
        return sq_err(e, "55P02", 0, "parameter \"%s\" cannot be changed", name);
    if (!strcasecmp(name, "standard_conforming_strings") && strcasecmp(value, "on"))
        return sq_err(e, "22023", 0, "standard_conforming_strings can only be on");
    struct sq_param *p = param_find(s, name);
    if (!p) {
        if (s->nparams == SQ_MAX_PARAMS)
            return sq_err(e, "54000", 0, "too many session parameters (%d)", SQ_MAX_PARAMS);
        p = &s->params[s->nparams++];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "%s", name);
    }
    snprintf(p->value, sizeof p->value, "%s", value);
    if (p->report && r && r->npset < 4) {
        snprintf(r->pnames[r->npset], sizeof r->pnames[0], "%s", p->name);
        snprintf(r->pvals[r->npset], sizeof r->pvals[0], "%s", p->value);
        r->npset++;
    }
    return 0;
}

/* ---- sessions --------------------------------------------------------- */

int sqle_sess_open(struct sqle *eng, const char *user, const char *database,
                   struct sqle_sess **out, struct sqle_error *err)
{
    struct sqle_priv *p = (struct sqle_priv *)eng;
    *out = NULL;
    struct sqle_sess *s = calloc(1, sizeof *s);
    if (!s)
        return sq_err(err, "53200", 0, "out of memory for a session");
    s->e = eng;
    snprintf(s->user, sizeof s->user, "%s", user ? user : "");
    s->role = NINES_ROLE_ADMIN; /* until the protocol layer says (sqle_sess_set_role) */
    snprintf(s->database, sizeof s->database, "%s", database && database[0] ? database : s->user);
    arena_init(&s->txa, 8192);
    arena_init(&s->copya, 65536);
    for (size_t i = 0; i < sizeof param_defaults / sizeof param_defaults[0]; i++) {
        struct sq_param *q = &s->params[s->nparams++];
        snprintf(q->name, sizeof q->name, "%s", param_defaults[i].name);
        snprintf(q->value, sizeof q->value, "%s", param_defaults[i].value);
        q->report = param_defaults[i].report;
    }
    snprintf(param_find(s, "session_authorization")->value, 256, "%s", s->user);
    if (eng->no_cluster) { /* no connection: the cluster's statements get 08003 */
        *out = s;
        return 0;
    }
    struct nines_connect_opts o = {.flags = NINES_CONNECT_FIRST_NODE, .user = eng->user,
                                   .password = eng->password};
    int rc = nines_connect_with(&s->c, p->addrs.p, p->addrs.n, p->addrs.cluster,
                                eng->cfg.timeout_ms, &o);
    if (rc) {
        sq_err(err, "08006", 0, "cannot reach the cluster: %s", nines_errdetail());
        arena_destroy(&s->txa);
        arena_destroy(&s->copya);
        free(s);
        return -1;
    }
    /* a commit whose connection is lost is asked about (exactly-once
     * outcome: committed, aborted or in doubt), never silently guessed */
    (void)nines_conn_set_failover(s->c, 1, 0);
    *out = s;
    return 0;
}

static void txn_end(struct sqle_sess *s)
{
    s->txn = NULL;
    s->ncache = 0;
    arena_reset(&s->txa);
}

void sqle_sess_close(struct sqle_sess *s)
{
    if (!s)
        return;
    if (s->txn)
        (void)nines_txn_rollback(s->txn);
    txn_end(s);
    if (s->copy)
        sqle_stmt_free(s->copy);
    free(s->copybuf);
    nines_close(s->c);
    arena_destroy(&s->txa);
    arena_destroy(&s->copya);
    free(s);
}

char sqle_sess_status(const struct sqle_sess *s)
{
    switch (s->block) {
    case B_IDLE: return 'I';
    case B_OPEN: return 'T';
    case B_FAILED: return 'E';
    default: return 'E';
    }
}

void sqle_sess_cancel(struct sqle_sess *s) { atomic_store(&s->cancel, true); }

void sqle_sess_params(const struct sqle_sess *s,
                      void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    for (uint32_t i = 0; i < s->nparams; i++)
        if (s->params[i].report)
            fn(arg, s->params[i].name, s->params[i].value);
}

int sqle_sess_set(struct sqle_sess *s, const char *name, const char *value,
                  struct sqle_error *err)
{
    if (!strcmp(name, "user") || !strcmp(name, "database") || !strcmp(name, "replication"))
        return 0;
    if (!strcmp(name, "options")) {
        /* libpq's PGOPTIONS: "-c name=value" (or "-cname=value",
         * "--name=value") settings; other command-line switches are ignored */
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", value);
        char *save = NULL;
        bool want = false;
        for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
            char *kv = NULL;
            if (want)
                kv = tok;
            else if (!strcmp(tok, "-c"))
                want = true;
            else if (!strncmp(tok, "-c", 2))
                kv = tok + 2;
            else if (!strncmp(tok, "--", 2))
                kv = tok + 2;
            if (!kv)
                continue;
            want = false;
            char *eq = strchr(kv, '=');
            if (!eq)
                return sq_err(err, "22023", 0, "option \"%s\": expected name=value", kv);
            *eq = 0;
            for (char *q = kv; *q; q++)
                if (*q == '-')
                    *q = '_';
            if (sq_param_set(s, kv, eq + 1, NULL, err))
                return -1;
        }
        return 0;
    }
    return sq_param_set(s, name, value, NULL, err);
}

/* ---- the cluster transaction ------------------------------------------- */

int sq_need_conn(struct sqle_sess *s, struct sqle_error *e)
{
    if (s->c)
        return 0;
    return sq_err(e, "08003", 0, "the session has no cluster connection");
}

int sq_txn(struct sqle_sess *s, nines_txn **t, struct sqle_error *e)
{
    if (!s->txn && sq_need_conn(s, e))
        return -1;
    if (!s->txn && nines_txn_begin(s->c, &s->txn))
        return sq_err_nines(e, nines_errdetail()[0] ? NINES_ENOMEM : NINES_ENOMEM,
                            "could not start a transaction", nines_conn_errdetail(s->c));
    *t = s->txn;
    return 0;
}

/* Key bytes of a row (the key columns' values in key order) for the cache. */
static size_t cache_key(const struct sq_table *t, const struct sv *vals, bool from_row,
                        uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t k = 0; k < t->npk; k++) {
        const struct sv *v = from_row ? &vals[t->pk[k]] : &vals[k];
        uint8_t tag = v->t;
        if (n + 1 > cap)
            return 0;
        out[n++] = tag;
        if (v->t == SV_TEXT || v->t == SV_BYTES) {
            if (n + v->len + 4 > cap)
                return 0;
            uint32_t l = (uint32_t)v->len;
            memcpy(out + n, &l, 4);
            memcpy(out + n + 4, v->s, v->len);
            n += 4 + v->len;
        } else {
            if (n + 8 > cap)
                return 0;
            memcpy(out + n, v->t == SV_FLOAT ? (const void *)&v->f : (const void *)&v->i, 8);
            n += 8;
        }
    }
    return n;
}

void sq_cache_put(struct sqle_sess *s, const struct sq_table *t, const struct sv *vals)
{
    uint8_t key[256];
    size_t klen = cache_key(t, vals, true, key, sizeof key);
    if (!klen)
        return;
    struct sq_cached *c = NULL;
    for (uint32_t i = 0; i < s->ncache; i++)
        if (!strcmp(s->cache[i].table, t->name) && s->cache[i].klen == klen &&
            !memcmp(s->cache[i].key, key, klen))
            c = &s->cache[i];
    if (!c) {
        if (s->ncache == SQ_CACHE_MAX)
            return;
        c = &s->cache[s->ncache++];
    }
    snprintf(c->table, sizeof c->table, "%s", t->name);
    memcpy(c->key, key, klen);
    c->klen = klen;
    c->ncols = t->ncols;
    for (uint32_t i = 0; i < t->ncols; i++) {
        c->vals[i] = vals[i];
        if ((vals[i].t == SV_TEXT || vals[i].t == SV_BYTES) && vals[i].len) {
            char *p = arena_alloc(&s->txa, vals[i].len);
            if (!p) {
                s->ncache--;   /* c is the last entry only when just added; forget all */
                s->ncache = 0;
                return;
            }
            memcpy(p, vals[i].s, vals[i].len);
            c->vals[i].s = p;
        }
    }
}

void sq_cache_drop(struct sqle_sess *s, const struct sq_table *t, const struct sv *key)
{
    uint8_t kb[256];
    size_t klen = cache_key(t, key, false, kb, sizeof kb);
    for (uint32_t i = 0; i < s->ncache; i++)
        if (!strcmp(s->cache[i].table, t->name) && s->cache[i].klen == klen &&
            !memcmp(s->cache[i].key, kb, klen)) {
            s->cache[i] = s->cache[--s->ncache];
            return;
        }
}

const struct sq_cached *sq_cache_get(struct sqle_sess *s, const struct sq_table *t,
                                     const struct sv *key)
{
    uint8_t kb[256];
    size_t klen = cache_key(t, key, false, kb, sizeof kb);
    if (!klen)
        return NULL;
    for (uint32_t i = 0; i < s->ncache; i++)
        if (!strcmp(s->cache[i].table, t->name) && s->cache[i].klen == klen &&
            !memcmp(s->cache[i].key, kb, klen))
            return &s->cache[i];
    return NULL;
}

/* ---- tables --------------------------------------------------------------- */

static uint32_t derived_oid(uint32_t type, uint32_t size, int32_t *typmod)
{
    *typmod = -1;
    switch (type) {
    case NINES_T_INT32: return OID_INT4;
    case NINES_T_INT64: return OID_INT8;
    case NINES_T_DOUBLE: return OID_FLOAT8;
    case NINES_T_STRING: *typmod = (int32_t)size + 4; return OID_BPCHAR;
    case NINES_T_VARSTRING: *typmod = (int32_t)size + 4; return OID_VARCHAR;
    case NINES_T_TIMESTAMP: return OID_TIMESTAMP;
    default: return OID_BYTEA;
    }
}

int sq_table_load(struct sqle_sess *s, const char *name, int refresh, struct sq_table *t,
                  struct sqle_error *e, int pos)
{
    struct nines_table_info info;
    int rc;
    if (s->e->test_table_get) {
        rc = s->e->test_table_get(s->e->test_ctx, name, &info);
    } else {
        if (sq_need_conn(s, e))
            return -1;
        rc = nines_table_get(s->c, name, refresh, &info);
        if (rc == NINES_ENOTFOUND && !refresh)
            rc = nines_table_get(s->c, name, 1, &info);
    }
    if (rc == NINES_ENOTFOUND)
        return sq_err(e, "42P01", pos, "relation \"%s\" does not exist", name);
    if (rc)
        return sq_err_nines(e, rc, "reading the table definitions", nines_conn_errdetail(s->c));
    memset(t, 0, offsetof(struct sq_table, cols));
    snprintf(t->name, sizeof t->name, "%s", info.def.name);
    t->id = info.id;
    t->ncols = info.def.ncols;
    t->npk = info.def.npk;
    t->hidden = -1;
    t->readonly = info.readonly != 0;
    t->method = info.def.method;
    t->nfrags = info.def.nfrags;
    if (t->ncols > SQ_MAX_COLS || t->npk > SQ_MAX_PK)
        return sq_err(e, "54000", pos, "table \"%s\" has %u columns / %u key columns", name,
                      t->ncols, t->npk);
    for (uint32_t i = 0; i < t->ncols; i++) {
        const struct nines_column *c = &info.def.cols[i];
        struct sq_col *q = &t->cols[i];
        memset(q, 0, sizeof *q);
        snprintf(q->name, sizeof q->name, "%s", c->name);
        q->type = c->type;
        q->size = c->size;
        q->nullable = c->nullable != 0;
        q->hidden = c->hidden != 0;
        q->pkpos = -1;
        if (c->sqltype) {
            q->oid = c->sqltype;
            q->typmod = c->sqltypmod;
        } else {
            q->oid = derived_oid(c->type, c->size, &q->typmod);
        }
        if (q->hidden)
            t->hidden = (int)i;
        else
            t->nvisible++;
    }
    for (uint32_t k = 0; k < t->npk; k++) {
        t->pk[k] = info.def.pk[k];
        if (t->pk[k] < t->ncols)
            t->cols[t->pk[k]].pkpos = (int)k;
    }
    return 0;
}

/* ---- results ------------------------------------------------------------- */

struct sqle_result *sq_result_new(uint8_t kind)
{
    struct sqle_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->kind = kind;
    arena_init(&r->a, 16384);
    return r;
}

int sq_result_row(struct sqle_result *r, const struct sv *vals, const uint32_t *oids,
                  struct sqle_error *e)
{
    if (r->nrows == r->caprows) {
        size_t n = r->caprows ? r->caprows * 2 : 16;
        const char **v = realloc(r->vals, n * (r->ncols ? r->ncols : 1) * sizeof *v);
        if (!v)
            return sq_err(e, "53200", 0, "out of memory for %zu result rows", n);
        r->vals = v;
        int *l = realloc(r->lens, n * (r->ncols ? r->ncols : 1) * sizeof *l);
        if (!l)
            return sq_err(e, "53200", 0, "out of memory for %zu result rows", n);
        r->lens = l;
        r->caprows = n;
    }
    for (uint32_t c = 0; c < r->ncols; c++) {
        const char *p = NULL;
        size_t len = 0;
        struct sv v = vals[c];
        if (v.t == SV_FLOAT && (oids[c] == OID_INT2 || oids[c] == OID_INT4 ||
                                oids[c] == OID_INT8)) {
            /* arithmetic that read a text operand as a number gave a float to an
             * integer column: shown in the column's type, as RowDescription says */
            double d = nearbyint(v.f);
            int64_t lo = oids[c] == OID_INT2 ? INT16_MIN : oids[c] == OID_INT4 ? INT32_MIN
                                                                                : INT64_MIN;
            int64_t hi = oids[c] == OID_INT2 ? INT16_MAX : oids[c] == OID_INT4 ? INT32_MAX
                                                                                : INT64_MAX;
            if (!(d >= (double)lo && d < -(double)lo) || (int64_t)d > hi)
                return sq_err(e, "22003", 0, "%s out of range", sq_type_name(oids[c]));
            v.t = SV_INT;
            v.i = (int64_t)d;
        }
        if (sq_to_text(&r->a, oids[c], &v, &p, &len))
            return sq_err(e, "53200", 0, "out of memory for a result value");
        if (p && (v.t == SV_TEXT)) { /* copy: the value may live in a scratch arena */
            char *q = arena_alloc(&r->a, len ? len : 1);
            if (!q)
                return sq_err(e, "53200", 0, "out of memory for a result value");
            memcpy(q, p, len);
            p = q;
        }
        r->vals[r->nrows * r->ncols + c] = p;
        r->lens[r->nrows * r->ncols + c] = p ? (int)len : -1;
    }
    r->nrows++;
    return 0;
}

void sq_result_notice(struct sqle_result *r, const char *state, const char *fmt, ...)
{
    if (!r || r->nnotices == 4)
        return;
    struct sqle_error *n = &r->notices[r->nnotices++];
    memset(n, 0, sizeof *n);
    snprintf(n->sqlstate, sizeof n->sqlstate, "%s", state);
    snprintf(n->severity, sizeof n->severity, "%s", state[0] == '0' && state[1] == '1'
                                                         ? "WARNING" : "NOTICE");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->message, sizeof n->message, fmt, ap);
    va_end(ap);
}

enum sqle_result_kind sqle_result_kind(const struct sqle_result *r) { return r->kind; }
const char *sqle_result_tag(const struct sqle_result *r) { return r->tag; }
size_t sqle_result_ncols(const struct sqle_result *r, const struct sqle_col **cols)
{
    if (cols)
        *cols = r->cols;
    return r->ncols;
}
size_t sqle_result_nrows(const struct sqle_result *r) { return r->nrows; }
const char *sqle_result_value(const struct sqle_result *r, size_t row, size_t col, int *len)
{
    if (row >= r->nrows || col >= r->ncols) {
        if (len)
            *len = -1;
        return NULL;
    }
    if (len)
        *len = r->lens[row * r->ncols + col];
    return r->vals[row * r->ncols + col];
}
size_t sqle_result_nnotices(const struct sqle_result *r) { return r->nnotices; }
const struct sqle_error *sqle_result_notice(const struct sqle_result *r, size_t i)
{
    return i < r->nnotices ? &r->notices[i] : NULL;
}
size_t sqle_result_nparams(const struct sqle_result *r) { return r->npset; }
void sqle_result_param(const struct sqle_result *r, size_t i, const char **name,
                       const char **value)
{
    *name = i < r->npset ? r->pnames[i] : "";
    *value = i < r->npset ? r->pvals[i] : "";
}
void sqle_result_free(struct sqle_result *r)
{
    if (!r)
        return;
    free(r->vals);
    free(r->lens);
    free(r->owncols);
    arena_destroy(&r->a);
    free(r);
}

/* ---- parsing ----------------------------------------------------------- */

static int fail_block(struct sqle_sess *s);

static struct sqle_stmt *stmt_new(void)
{
    struct sqle_stmt *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    arena_init(&st->a, 4096);
    return st;
}

void sqle_stmt_free(struct sqle_stmt *st)
{
    if (!st)
        return;
    arena_destroy(&st->a);
    free(st);
}

int sqle_parse(struct sqle_sess *s, const char *sql, const uint32_t *param_oids,
               size_t nparam_oids, int one_only, struct sqle_stmt ***out, size_t *nout,
               struct sqle_error *err)
{
    *out = NULL;
    *nout = 0;
    if (nparam_oids > 256)
        return sq_err(err, "54000", 0, "at most 256 parameters, got %zu", nparam_oids);
    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
    if (pr.error) {
        sq_err(err, "42601", pr.error->cursorpos, "%s", pr.error->message);
        pg_query_free_protobuf_parse_result(pr);
        if (s->block == B_OPEN)
            fail_block(s);
        return -1;
    }
    PgQuery__ParseResult *tree =
        pg_query__parse_result__unpack(NULL, pr.parse_tree.len, (const uint8_t *)pr.parse_tree.data);
    pg_query_free_protobuf_parse_result(pr);
    if (!tree)
        return sq_err(err, "XX000", 0, "could not read the parse tree of the statement");
    int rc = 0;
    size_t n = tree->n_stmts;
    if (one_only && n > 1) {
        rc = sq_err(err, "42601", 0, "cannot insert multiple commands into a prepared "
                    "statement");
        goto out;
    }
    struct sqle_stmt **v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        rc = sq_err(err, "53200", 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const PgQuery__RawStmt *raw = tree->stmts[i];
        struct sqle_stmt *st = stmt_new();
        if (!st) {
            rc = sq_err(err, "53200", 0, "out of memory");
            break;
        }
        v[i] = st;
        for (size_t k = 0; k < nparam_oids; k++)
            st->param_oids[k] = param_oids[k];
        st->nparams = (int)nparam_oids;
        size_t off = (size_t)(raw->stmt_location > 0 ? raw->stmt_location : 0);
        size_t len = raw->stmt_len > 0 ? (size_t)raw->stmt_len : strlen(sql + off);
        char *text = arena_alloc(&st->a, len + 1);
        if (text) {
            memcpy(text, sql + off, len);
            text[len] = 0;
            st->text = text;
        }
        if (!raw->stmt) {
            st->kind = K_EMPTY;
            continue;
        }
        /* in a failed block only COMMIT / ROLLBACK are looked at */
        if (s->block == B_FAILED &&
            raw->stmt->node_case != PG_QUERY__NODE__NODE_TRANSACTION_STMT) {
            rc = sq_err(err, "25P02", 0, "current transaction is aborted, commands ignored "
                        "until end of transaction block");
            break;
        }
        if (sq_plan(s, sql, raw->stmt, st, err)) {
            rc = -1;
            break;
        }
        for (int k = 0; k < st->nparams; k++)
            if (!st->param_oids[k] || st->param_oids[k] == OID_UNKNOWN)
                st->param_oids[k] = OID_TEXT;  /* nothing told its type */
    }
    if (rc) {
        for (size_t i = 0; i < n; i++)
            sqle_stmt_free(v[i]);
        free(v);
        /* an error in a block fails the block, whichever step found it */
        if (s->block == B_OPEN)
            fail_block(s);
    } else {
        *out = v;
        *nout = n;
    }
out:
    pg_query__parse_result__free_unpacked(tree, NULL);
    return rc;
}

size_t sqle_stmt_nparams(const struct sqle_stmt *st) { return (size_t)st->nparams; }
uint32_t sqle_stmt_param_oid(const struct sqle_stmt *st, size_t i)
{
    return i < (size_t)st->nparams ? st->param_oids[i] : 0;
}

int sqle_stmt_describe(struct sqle_sess *s, struct sqle_stmt *st, const struct sqle_col **cols,
                       struct sqle_error *err)
{
    (void)s;
    (void)err;
    *cols = st->ncols ? st->cols : NULL;
    return (int)st->ncols;
}

/* ---- execution: the transaction block ----------------------------------- */

static int fail_block(struct sqle_sess *s)
{
    if (s->txn) {
        (void)nines_txn_rollback(s->txn);
        txn_end(s);
    }
    if (s->block == B_OPEN)
        s->block = B_FAILED;
    return -1;
}

static int commit_txn(struct sqle_sess *s, struct sqle_error *e)
{
    if (!s->txn)
        return 0;
    nines_txn *t = s->txn;
    txn_end(s);
    int rc = nines_txn_commit(t);
    if (rc)
        return sq_err_nines(e, s->last_rc = rc, "COMMIT failed, the transaction is rolled back",
                            nines_conn_errdetail(s->c));
    return 0;
}

static int exec_block_stmt(struct sqle_sess *s, struct sqle_stmt *st, struct sqle_result *r,
                           struct sqle_error *e)
{
    switch (st->kind) {
    case K_BEGIN:
        if (s->block != B_IDLE)
            sq_result_notice(r, "25001", "there is already a transaction in progress");
        else
            s->block = B_OPEN;
        return 0;
    case K_COMMIT:
        switch (s->block) {
        case B_IDLE:
            sq_result_notice(r, "25P01", "there is no transaction in progress");
            return 0;
        case B_FAILED:
            s->block = B_IDLE;
            snprintf(r->tag, sizeof r->tag, "ROLLBACK");
            return 0;
        case B_OPEN:
            s->block = B_IDLE;
            return commit_txn(s, e);
        default:
            return sq_err(e, "XX000", 0, "session in bad block state %d", s->block);
        }
    case K_ROLLBACK:
        if (s->block == B_IDLE)
            sq_result_notice(r, "25P01", "there is no transaction in progress");
        if (s->txn)
            (void)nines_txn_rollback(s->txn);
        txn_end(s);
        s->block = B_IDLE;
        return 0;
    default:
        return sq_err(e, "XX000", 0, "not a block statement");
    }
}

static int params_in(struct sqle_stmt *st, const char *const *params, const int *lens,
                     size_t nparams, struct arena *a, struct sv *out, struct sqle_error *e)
{
    if (nparams != (size_t)st->nparams)
        return sq_err(e, "08P01", 0, "bind message supplies %zu parameters, but prepared "
                      "statement requires %d", nparams, st->nparams);
    for (size_t i = 0; i < nparams; i++) {
        if (!params[i]) {
            out[i].t = SV_NULL;
            continue;
        }
        char what[32];
        snprintf(what, sizeof what, "parameter $%zu", i + 1);
        if (sq_from_text(a, st->param_oids[i], -1, params[i], (size_t)lens[i], &out[i], e, what))
            return -1;
    }
    return 0;
}

/* A prepared statement whose table was replaced since it was planned (a
 * re-keying, a TRUNCATE by another session): planned again from its text,
 * as PostgreSQL re-plans; a changed result shape is 0A000 as there. The
 * connection's dictionary copy is read (no round trip); it is fetched
 * afresh when a request finds a definition changed. */
static int replan_if_changed(struct sqle_sess *s, struct sqle_stmt *st, struct sqle_error *e)
{
    if (!st->have_table || !st->text || s->e->test_table_get || !s->c)
        return 0;
    struct nines_table_info info;
    if (nines_table_get(s->c, st->t.name, 0, &info) != 0 || info.id == st->t.id)
        return 0; /* unchanged, or gone: running it says so */
    uint32_t oids[256];
    memcpy(oids, st->param_oids, sizeof oids);
    struct sqle_stmt **v = NULL;
    size_t n = 0;
    if (sqle_parse(s, st->text, oids, (size_t)st->nparams, 1, &v, &n, e))
        return -1;
    if (n != 1) {
        for (size_t i = 0; i < n; i++)
            sqle_stmt_free(v[i]);
        free(v);
        return sq_err(e, "XX000", 0, "statement text planned into %zu statements", n);
    }
    struct sqle_stmt *nst = v[0];
    free(v);
    bool same = nst->ncols == st->ncols && nst->nparams == st->nparams;
    for (uint32_t i = 0; same && i < st->ncols; i++)
        same = nst->cols[i].type_oid == st->cols[i].type_oid;
    if (!same) {
        sqle_stmt_free(nst);
        return sq_err(e, "0A000", 0, "cached plan must not change result type (table \"%s\" "
                      "was changed)", st->t.name);
    }
    struct sqle_stmt tmp = *st;
    *st = *nst;
    *nst = tmp;
    /* the arenas moved with their statements: their allocator views follow */
    st->a.pb.allocator_data = &st->a;
    nst->a.pb.allocator_data = &nst->a;
    sqle_stmt_free(nst);
    return 0;
}

/* INSERT / UPDATE / DELETE / SELECT, committed when outside a block. */
static int run_dml(struct sqle_sess *s, struct sqle_stmt *st, const struct sv *pv,
                   struct sqle_result **r, struct sqle_error *e)
{
    bool implicit = s->block == B_IDLE;
    s->last_rc = 0;
    int rc = sq_exec_dml(s, st, pv, r, e);
    if (rc == 0 && implicit && st->kind == K_UPDATE && st->pure_add && s->txn) {
        /* the increment went out with the commit: a missing row aborted
         * this statement's own transaction, which changed nothing */
        nines_txn *t = s->txn;
        txn_end(s);
        int x = nines_txn_commit(t);
        if (x == NINES_ENOTFOUND && strstr(nines_conn_errdetail(s->c), "has no row with that key"))
            snprintf((*r)->tag, sizeof (*r)->tag, "UPDATE 0");
        else if (x)
            rc = sq_err_nines(e, s->last_rc = x, "COMMIT failed, the transaction is rolled back",
                              nines_conn_errdetail(s->c));
    }
    if (rc == 0 && implicit)
        rc = commit_txn(s, e);
    if (rc && implicit && s->txn) {
        (void)nines_txn_rollback(s->txn);
        txn_end(s);
    }
    if (rc) {
        sqle_result_free(*r);
        *r = NULL;
    }
    return rc;
}

/* The role a statement needs (README.md "SECURITY", sql/README.md
 * "Roles"), and its name for the error. */
static uint32_t role_needed(const struct sqle_stmt *st, const char **what)
{
    switch (st->kind) {
    case K_INSERT: *what = "INSERT"; return NINES_ROLE_WRITER;
    case K_UPDATE: *what = "UPDATE"; return NINES_ROLE_WRITER;
    case K_DELETE: *what = "DELETE"; return NINES_ROLE_WRITER;
    case K_COPY_FROM: *what = "COPY FROM"; return NINES_ROLE_WRITER;
    case K_CREATE: *what = "CREATE TABLE"; return NINES_ROLE_ADMIN;
    case K_DROP: *what = "DROP TABLE"; return NINES_ROLE_ADMIN;
    case K_TRUNCATE: *what = "TRUNCATE"; return NINES_ROLE_ADMIN;
    case K_ADD_PK: *what = "ALTER TABLE"; return NINES_ROLE_ADMIN;
    case K_EMPTY:
    case K_BEGIN:
    case K_COMMIT:
    case K_ROLLBACK:
    case K_SET:
    case K_SHOW:
    case K_RESET:
    case K_NOOP:
    case K_SELECT:
    case K_CATALOG:
    case K_DISCARD:
    default:
        *what = "SELECT";
        return NINES_ROLE_READER;
    }
}

static const char *role_name(uint32_t r)
{
    return r == NINES_ROLE_ADMIN ? "admin" : r == NINES_ROLE_WRITER ? "writer" : "reader";
}

void sqle_sess_set_role(struct sqle_sess *s, uint32_t role)
{
    s->role = role >= NINES_ROLE_READER && role <= NINES_ROLE_ADMIN ? role : NINES_ROLE_READER;
}

int sqle_exec(struct sqle_sess *s, struct sqle_stmt *st, const char *const *params,
              const int *lens, size_t nparams, struct sqle_result **out, struct sqle_error *e)
{
    *out = NULL;
    atomic_store(&s->cancel, false);
    if (s->copy)
        return sq_err(e, "08P01", 0, "a COPY is in progress");
    if (s->block == B_FAILED && st->kind != K_COMMIT && st->kind != K_ROLLBACK)
        return sq_err(e, "25P02", 0, "current transaction is aborted, commands ignored until "
                      "end of transaction block");
    const char *what;
    uint32_t need = role_needed(st, &what);
    if (need > s->role) {
        sq_err(e, "42501", 0, "permission denied: %s needs the %s role; user \"%s\" has the %s "
               "role", what, role_name(need), s->user, role_name(s->role));
        fail_block(s);
        return -1;
    }
    if (replan_if_changed(s, st, e)) {
        if (s->block == B_OPEN)
            fail_block(s);
        return -1;
    }
    struct sqle_result *r = NULL;
    struct arena pa;
    arena_init(&pa, 1024);
    struct sv pv[256];
    int rc = 0;
    if (params_in(st, params, lens, nparams, &pa, pv, e)) {
        rc = -1;
        goto done;
    }
    switch (st->kind) {
    case K_EMPTY:
    case K_NOOP:
    case K_DISCARD:
        if (!(r = sq_result_new(SQLE_R_COMMAND)))
            goto oom;
        snprintf(r->tag, sizeof r->tag, "%s", st->tag);
        break;
    case K_BEGIN:
    case K_COMMIT:
    case K_ROLLBACK:
        if (!(r = sq_result_new(SQLE_R_COMMAND)))
            goto oom;
        snprintf(r->tag, sizeof r->tag, "%s", st->tag);
        rc = exec_block_stmt(s, st, r, e);
        break;
    case K_SET:
        if (!(r = sq_result_new(SQLE_R_COMMAND)))
            goto oom;
        snprintf(r->tag, sizeof r->tag, "SET");
        rc = sq_param_set(s, st->pname, st->pvalue, r, e);
        break;
    case K_RESET:
        if (!(r = sq_result_new(SQLE_R_COMMAND)))
            goto oom;
        snprintf(r->tag, sizeof r->tag, "%s", st->tag);
        for (size_t i = 0; i < sizeof param_defaults / sizeof param_defaults[0]; i++)
            if (!st->pname[0] || !strcasecmp(st->pname, param_defaults[i].name))
                if (strcmp(param_defaults[i].name, "session_authorization"))
                    (void)sq_param_set(s, param_defaults[i].name, param_defaults[i].value, r,
                                       NULL);
        break;
    case K_SHOW:
        rc = sq_exec_show(s, st, &r, e);
        break;
    case K_CATALOG:
        rc = sq_exec_catalog(s, st, pv, &r, e);
        break;
    case K_CREATE:
    case K_DROP:
    case K_TRUNCATE:
    case K_ADD_PK:
    case K_COPY_FROM:
        rc = sq_exec_ddl(s, st, &r, e);
        break;
    case K_INSERT:
    case K_UPDATE:
    case K_DELETE:
    case K_SELECT:
        rc = run_dml(s, st, pv, &r, e);
        if (rc && s->block == B_IDLE && s->last_rc == NINES_ETYPE && st->have_table) {
            /* outside a block a statement whose table changed under its plan
             * (nothing of it happened: its transaction was rolled back) is
             * planned again from the dictionary read afresh and run once more */
            (void)nines_table_get(s->c, st->t.name, 1, &(struct nines_table_info){0});
            uint32_t id = st->t.id;
            if (replan_if_changed(s, st, e) == 0 && st->t.id != id &&
                params_in(st, params, lens, nparams, &pa, pv, e) == 0)
                rc = run_dml(s, st, pv, &r, e);
        }
        break;
    default:
        rc = sq_err(e, "XX000", 0, "statement of unknown kind %d", st->kind);
    }
    if (rc) {
        sqle_result_free(r);
        r = NULL;
        fail_block(s);
    }
    goto done;
oom:
    rc = sq_err(e, "53200", 0, "out of memory for a result");
    fail_block(s);
done:
    arena_destroy(&pa);
    *out = r;
    return rc ? -1 : 0;
}
