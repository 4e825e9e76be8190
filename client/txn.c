/* Transactions: write ops are buffered in the handle and travel with the
 * next request that needs an answer (get, add, scan: end=NONE) or with the
 * commit (end=COMMIT) — one round trip for a write-only transaction. */
#include "cli_int.h"
#include "kernel/kern_key.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

enum cli_txn_state {
    CLI_TXN_OPEN = 0,   /* usable */
    CLI_TXN_DEAD,       /* refused by the server or lost with its connection */
};

struct nines_txn {
    struct nines_conn *c;
    enum cli_txn_state st;
    uint64_t id;              /* server transaction id (0: never sent) */
    uint64_t gen;             /* connection generation of the first send */
    bool server_open;         /* the server may hold it open (rollback sends) */
    uint64_t key_seq;         /* its request key (all its requests carry it) */
    struct arena ops_mem;     /* buffered ops, reset after each send */
    Nines__RecordOp **ops;
    size_t nops, capops;
    struct arena rows;        /* rows returned by get/add: until the txn ends */
    int dead_rc;
    char dead_why[CLI_DETAIL_MAX];
};

/* One request waited for by a blocking call. */
struct cli_sync {
    bool done;
    int rc;
    int64_t value;
    uint64_t txn;
    struct arena *rows_to;    /* copy the last op's rows here */
    struct nines_row **rows;  /* ... into this array (allocated in rows_to) */
    size_t nrows;
    uint8_t *resume;          /* the last op's OpResult.resume_key (in rows_to) */
    size_t resume_len;
    size_t want_results;      /* ops sent: results expected */
    bool submitted;           /* queued on connection generation `gen` */
    bool op_failed;           /* TXN_CONF with a failed op status */
    uint64_t gen;
    char detail[CLI_DETAIL_MAX];
};

static void cli_sync_done(struct nines_conn *c, const struct cli_slot *s, int rc,
                          const Nines__TxnConf *conf, const char *detail)
{
    struct cli_sync *y = s->arg;
    y->done = true;
    y->rc = rc;
    if (rc) {
        snprintf(y->detail, sizeof y->detail, "%s", detail ? detail : nines_strerror(rc));
        return;
    }
    y->txn = conf->txn;
    y->value = conf->value;
    if (!y->want_results || s->st != CLI_SLOT_PENDING)
        return; /* resolved by an outcome question after failover: no op results */
    if (conf->n_results != y->want_results) {
        y->rc = cli_fail(c, NINES_EPROTO, "server answered %zu op results for %zu ops",
                         conf->n_results, y->want_results);
        snprintf(y->detail, sizeof y->detail, "%s", c->detail);
        return;
    }
    for (size_t i = 0; i < conf->n_results; i++) {
        int st = conf->results[i]->status;
        if (st < 0) {
            y->rc = st < NINES_ERR_MIN_ ? NINES_EPROTO : st;
            y->op_failed = true;
            snprintf(y->detail, sizeof y->detail, "op %zu of the request failed: %s", i,
                     nines_strerror(st));
            return;
        }
    }
    if (!y->rows_to)
        return;
    const Nines__OpResult *last = conf->results[conf->n_results - 1];
    if (last->resume_key.len) {
        if (last->resume_key.len > KERN_KEY_MAX) {
            y->rc = cli_fail(c, NINES_EPROTO, "a scan's resume key of %zu bytes",
                             last->resume_key.len);
            snprintf(y->detail, sizeof y->detail, "%s", c->detail);
            return;
        }
        y->resume = arena_alloc(y->rows_to, last->resume_key.len);
        if (!y->resume) {
            y->rc = cli_fail(c, NINES_ENOMEM, "a scan's resume key");
            snprintf(y->detail, sizeof y->detail, "%s", c->detail);
            return;
        }
        memcpy(y->resume, last->resume_key.data, last->resume_key.len);
        y->resume_len = last->resume_key.len;
    }
    if (last->n_rows == 0)
        return;
    y->rows = arena_alloc(y->rows_to, last->n_rows * sizeof *y->rows);
    if (!y->rows) {
        y->rc = cli_fail(c, NINES_ENOMEM, "%zu result rows", last->n_rows);
        return;
    }
    for (size_t i = 0; i < last->n_rows; i++) {
        int r = cli_row_from_pb(y->rows_to, last->rows[i], &y->rows[i]);
        if (r) {
            y->rc = r;
            snprintf(y->detail, sizeof y->detail, "%s", nines_errdetail());
            return;
        }
    }
    y->nrows = last->n_rows;
}

/* Submit req, wait for its answer. The result is y->rc (detail set). */
static int cli_call(struct nines_conn *c, Nines__TxnReq *req, struct cli_sync *y)
{
    if (c->in_dispatch)
        return cli_fail(c, NINES_ESTATE, "blocking call from a callback of the same connection");
    int rc = cli_submit(c, req, cli_sync_done, y, NULL, NULL);
    if (rc)
        return rc;
    y->submitted = true;
    y->gen = c->gen;
    /* The request's own deadline (or failover's) fails it first; this is a
     * safety margin. */
    rc = cli_wait(c, &y->done, cli_call_deadline(c));
    if (rc)
        return rc;
    if (y->rc)
        return cli_fail(c, y->rc, "%s", y->detail);
    return 0;
}

/* ---- the handle ------------------------------------------------------- */

int nines_txn_begin(nines_conn *c, nines_txn **out)
{
    if (!out)
        return nines_err(NINES_EINVAL, "nines_txn_begin: NULL out");
    *out = NULL;
    if (!c)
        return nines_err(NINES_EINVAL, "nines_txn_begin: NULL connection");
    struct nines_txn *t = calloc(1, sizeof *t);
    if (!t)
        return cli_fail(c, NINES_ENOMEM, "nines_txn_begin");
    t->c = c;
    arena_init(&t->ops_mem, 4096);
    arena_init(&t->rows, 4096);
    *out = t;
    return 0;
}

static void cli_txn_free(struct nines_txn *t)
{
    arena_destroy(&t->ops_mem);
    arena_destroy(&t->rows);
    free(t->ops);
    free(t);
}

static int cli_txn_dead(struct nines_txn *t, int rc, const char *why)
{
    t->st = CLI_TXN_DEAD;
    t->dead_rc = rc;
    snprintf(t->dead_why, sizeof t->dead_why, "%s", why);
    return rc;
}

/* Can the handle take another op? */
static int cli_txn_usable(struct nines_txn *t)
{
    switch (t->st) {
    case CLI_TXN_OPEN:
        if (t->id && (t->c->st != CLI_UP || t->c->gen != t->gen)) {
            char why[CLI_DETAIL_MAX];
            snprintf(why, sizeof why, "transaction %llu was lost with its connection (the "
                     "server aborts it)", (unsigned long long)t->id);
            cli_txn_dead(t, NINES_ECLOSED, why);
            return cli_fail(t->c, NINES_ECLOSED, "%s", why);
        }
        return 0;
    case CLI_TXN_DEAD:
        return cli_fail(t->c, NINES_EABORTED, "transaction %llu is no longer usable: %s",
                        (unsigned long long)t->id, t->dead_why);
    default:
        return cli_fail(t->c, NINES_ESTATE, "transaction handle in bad state %d", (int)t->st);
    }
}

/* Append a new op (zeroed) to the buffer. */
static int cli_txn_op(struct nines_txn *t, Nines__OpType type, const char *table,
                      Nines__RecordOp **out)
{
    if (!table || !table[0])
        return cli_fail(t->c, NINES_EINVAL, "empty table name");
    int rc = cli_txn_usable(t);
    if (rc)
        return rc;
    if (t->nops == t->capops) {
        size_t n = t->capops ? t->capops * 2 : 16;
        Nines__RecordOp **o = realloc(t->ops, n * sizeof *o);
        if (!o)
            return cli_fail(t->c, NINES_ENOMEM, "op buffer of %zu ops", n);
        t->ops = o;
        t->capops = n;
    }
    Nines__RecordOp *op = arena_alloc(&t->ops_mem, sizeof *op);
    size_t tl = strlen(table);
    char *name = arena_alloc(&t->ops_mem, tl + 1);
    if (!op || !name)
        return cli_fail(t->c, NINES_ENOMEM, "op on '%s'", table);
    nines__record_op__init(op);
    memcpy(name, table, tl + 1);
    op->op = type;
    op->table = name;
    t->ops[t->nops] = op;  /* counted by the caller once complete */
    *out = op;
    return 0;
}

static int cli_txn_key(struct nines_txn *t, Nines__RecordOp *op, const char *what,
                       const struct nines_value *key, size_t nkey)
{
    if (nkey == 0)
        return cli_fail(t->c, NINES_EINVAL, "%s on '%s': empty key", what, op->table);
    int rc = cli_vals_to_pb(&t->ops_mem, key, nkey, &op->key);
    if (rc)
        return cli_fail(t->c, rc, "%s on '%s': key %s", what, op->table, nines_errdetail());
    op->n_key = nkey;
    return 0;
}

static int cli_txn_row(struct nines_txn *t, Nines__RecordOp *op, const char *what,
                       const struct nines_value *vals, size_t n)
{
    if (n == 0)
        return cli_fail(t->c, NINES_EINVAL, "%s into '%s': no values", what, op->table);
    Nines__Row *row = arena_alloc(&t->ops_mem, sizeof *row);
    if (!row)
        return cli_fail(t->c, NINES_ENOMEM, "%s row", what);
    nines__row__init(row);
    int rc = cli_vals_to_pb(&t->ops_mem, vals, n, &row->values);
    if (rc)
        return cli_fail(t->c, rc, "%s into '%s': %s", what, op->table, nines_errdetail());
    row->n_values = n;
    op->row = row;
    return 0;
}

/* Send the buffered ops (the last of them possibly needing an answer)
 * with `end`; rows of the last op go to y->rows_to. The buffer is consumed
 * whatever happens. Any failure other than a per-op status in a TXN_CONF
 * (refusal, connection loss, timeout, not sent) makes the handle dead. */
static int cli_txn_send(struct nines_txn *t, Nines__TxnEnd end, struct cli_sync *y)
{
    struct nines_conn *c = t->c;
    Nines__TxnReq req = NINES__TXN_REQ__INIT;
    req.txn = t->id;
    req.ops = t->ops;
    req.n_ops = t->nops;
    req.end = end;
    /* one key for the transaction: the controller enters it with the first
     * request; an outcome question about the commit asks for it */
    if (!t->key_seq)
        t->key_seq = cli_new_seq(c);
    Nines__ReqKey key = NINES__REQ_KEY__INIT;
    key.client = c->client_id;
    key.seq = t->key_seq;
    key.attempt = 1;
    req.key = &key;
    y->want_results = t->nops;
    int rc = cli_call(c, &req, y);
    t->nops = 0;
    arena_reset(&t->ops_mem);
    if (y->submitted && t->id == 0)
        t->gen = y->gen;
    if (y->done && y->txn && t->id == 0)
        t->id = y->txn;
    if (rc == 0) {
        t->server_open = end == NINES__TXN_END__TXN_END_NONE;
        return 0;
    }
    if (y->op_failed && end == NINES__TXN_END__TXN_END_NONE) {
        t->server_open = true;
        return rc;
    }
    /* Still open at the server only if we do not know the outcome. */
    t->server_open = t->id && rc == NINES_ETIMEDOUT;
    return cli_txn_dead(t, rc, c->detail);
}

int nines_txn_insert(nines_txn *t, const char *table, const struct nines_value *vals, size_t n)
{
    if (!t)
        return nines_err(NINES_EINVAL, "NULL transaction");
    Nines__RecordOp *op;
    int rc = cli_txn_op(t, NINES__OP_TYPE__OP_INSERT, table, &op);
    if (!rc)
        rc = cli_txn_row(t, op, "insert", vals, n);
    if (!rc)
        t->nops++;
    return rc;
}

int nines_txn_update(nines_txn *t, const char *table, const struct nines_value *vals, size_t n)
{
    if (!t)
        return nines_err(NINES_EINVAL, "NULL transaction");
    Nines__RecordOp *op;
    int rc = cli_txn_op(t, NINES__OP_TYPE__OP_UPDATE, table, &op);
    if (!rc)
        rc = cli_txn_row(t, op, "update", vals, n);
    if (!rc)
        t->nops++;
    return rc;
}

int nines_txn_delete(nines_txn *t, const char *table, const struct nines_value *key, size_t nkey)
{
    if (!t)
        return nines_err(NINES_EINVAL, "NULL transaction");
    Nines__RecordOp *op;
    int rc = cli_txn_op(t, NINES__OP_TYPE__OP_DELETE, table, &op);
    if (!rc)
        rc = cli_txn_key(t, op, "delete", key, nkey);
    if (!rc)
        t->nops++;
    return rc;
}

static int cli_txn_one_row(nines_txn *t, struct cli_sync *y, nines_row **row)
{
    int rc = cli_txn_send(t, NINES__TXN_END__TXN_END_NONE, y);
    if (rc)
        return rc;
    if (y->nrows == 0)
        return cli_fail(t->c, NINES_EPROTO, "server returned no row for the op");
    if (row)
        *row = y->rows[0];
    return 0;
}

int nines_txn_get(nines_txn *t, const char *table, const struct nines_value *key, size_t nkey,
                  nines_row **row)
{
    if (!t || !row)
        return nines_err(NINES_EINVAL, "nines_txn_get: NULL transaction or row");
    *row = NULL;
    Nines__RecordOp *op;
    int rc = cli_txn_op(t, NINES__OP_TYPE__OP_GET, table, &op);
    if (!rc)
        rc = cli_txn_key(t, op, "get", key, nkey);
    if (rc)
        return rc;
    t->nops++;
    struct cli_sync y = {.rows_to = &t->rows};
    return cli_txn_one_row(t, &y, row);
}

int nines_txn_add(nines_txn *t, const char *table, const struct nines_value *key, size_t nkey,
                  uint32_t column, int64_t delta, nines_row **row)
{
    if (!t)
        return nines_err(NINES_EINVAL, "NULL transaction");
    if (row)
        *row = NULL;
    Nines__RecordOp *op;
    int rc = cli_txn_op(t, NINES__OP_TYPE__OP_ADD, table, &op);
    if (!rc)
        rc = cli_txn_key(t, op, "add", key, nkey);
    if (rc)
        return rc;
    op->column = column;
    op->delta = delta;
    t->nops++;
    struct cli_sync y = {.rows_to = &t->rows};
    return cli_txn_one_row(t, &y, row);
}

int nines_txn_add_deferred(nines_txn *t, const char *table, const struct nines_value *key,
                           size_t nkey, uint32_t column, int64_t delta)
{
    if (!t)
        return nines_err(NINES_EINVAL, "NULL transaction");
    Nines__RecordOp *op;
    int rc = cli_txn_op(t, NINES__OP_TYPE__OP_ADD, table, &op);
    if (!rc)
        rc = cli_txn_key(t, op, "add", key, nkey);
    if (rc)
        return rc;
    op->column = column;
    op->delta = delta;
    op->escrow = 1;
    t->nops++;
    return 0;
}

struct nines_scan;
static void scan_resume(struct nines_scan *sc, const struct cli_sync *y);

/* Send the buffered SCAN (the last op) with whatever else is buffered and
 * give its rows to fn; a cursor (sc) takes the answer's resume key.
 * Returns the rows delivered or an error. */
static int scan_send(nines_txn *t, const char *table, uint32_t limit, nines_row_fn fn, void *arg,
                     struct nines_scan *sc)
{
    struct arena scratch;
    arena_init(&scratch, 65536);
    struct cli_sync y = {.rows_to = &scratch};
    int rc = cli_txn_send(t, NINES__TXN_END__TXN_END_NONE, &y);
    if (rc == 0 && limit && y.nrows > limit)
        rc = cli_fail(t->c, NINES_EPROTO, "scan of '%s' returned %zu rows for limit %u", table,
                      y.nrows, limit);
    if (rc == 0 && sc)
        scan_resume(sc, &y);
    size_t n = 0;
    for (size_t i = 0; rc == 0 && i < y.nrows; i++) {
        n++;
        if (fn(arg, y.rows[i]))
            break;
    }
    arena_destroy(&scratch);
    return rc ? rc : (int)n;
}

int nines_txn_scan(nines_txn *t, const char *table, const struct nines_value *lo, size_t nlo,
                   const struct nines_value *hi, size_t nhi, uint32_t limit, nines_row_fn fn,
                   void *arg)
{
    if (!t || !fn)
        return nines_err(NINES_EINVAL, "nines_txn_scan: NULL transaction or callback");
    Nines__RecordOp *op;
    int rc = cli_txn_op(t, NINES__OP_TYPE__OP_SCAN, table, &op);
    if (rc)
        return rc;
    if (nlo && (rc = cli_vals_to_pb(&t->ops_mem, lo, nlo, &op->key)) != 0)
        return cli_fail(t->c, rc, "scan of '%s': low key %s", table, nines_errdetail());
    op->n_key = nlo;
    if (nhi && (rc = cli_vals_to_pb(&t->ops_mem, hi, nhi, &op->key_hi)) != 0)
        return cli_fail(t->c, rc, "scan of '%s': high key %s", table, nines_errdetail());
    op->n_key_hi = nhi;
    op->limit = limit;
    t->nops++;
    return scan_send(t, table, limit, fn, arg, NULL);
}

/* ---- scan cursors -------------------------------------------------------- */

struct nines_scan {
    nines_txn *t;
    struct arena mem;          /* the copies below */
    char *table;
    Nines__Value **lo, **hi;
    size_t nlo, nhi;
    Nines__ScanFilter **filters;
    size_t nfilters;
    bool reverse, done;
    uint8_t after[KERN_KEY_MAX];
    size_t afterlen;
};

/* The next page starts after the answer's resume key; none: the range is done. */
static void scan_resume(struct nines_scan *sc, const struct cli_sync *y)
{
    if (y->resume_len) {
        memcpy(sc->after, y->resume, y->resume_len);
        sc->afterlen = y->resume_len;
    } else {
        sc->done = true;
    }
}

static int cmp_to_pb(enum nines_cmp c, Nines__FilterCmp *out)
{
    switch (c) {
    case NINES_CMP_EQ:
        *out = NINES__FILTER_CMP__CMP_EQ;
        return 0;
    case NINES_CMP_NE:
        *out = NINES__FILTER_CMP__CMP_NE;
        return 0;
    case NINES_CMP_LT:
        *out = NINES__FILTER_CMP__CMP_LT;
        return 0;
    case NINES_CMP_LE:
        *out = NINES__FILTER_CMP__CMP_LE;
        return 0;
    case NINES_CMP_GT:
        *out = NINES__FILTER_CMP__CMP_GT;
        return 0;
    case NINES_CMP_GE:
        *out = NINES__FILTER_CMP__CMP_GE;
        return 0;
    case NINES_CMP_IS_NULL:
        *out = NINES__FILTER_CMP__CMP_IS_NULL;
        return 0;
    case NINES_CMP_IS_NOT_NULL:
        *out = NINES__FILTER_CMP__CMP_IS_NOT_NULL;
        return 0;
    default:
        return -1;
    }
}

int nines_scan_open(nines_txn *t, const char *table, const struct nines_value *lo, size_t nlo,
                    const struct nines_value *hi, size_t nhi, const struct nines_filter *filters,
                    size_t nfilters, unsigned flags, nines_scan **out)
{
    if (out)
        *out = NULL;
    if (!t || !out || !table || !table[0] || (nlo && !lo) || (nhi && !hi) ||
        (nfilters && !filters))
        return nines_err(NINES_EINVAL, "nines_scan_open: NULL transaction, table, bound, "
                         "filter or result");
    if (flags & ~NINES_SCAN_REVERSE)
        return cli_fail(t->c, NINES_EINVAL, "scan of '%s': unknown flags 0x%x", table,
                        flags & ~NINES_SCAN_REVERSE);
    if (nfilters > NINES_SCAN_FILTERS_MAX)
        return cli_fail(t->c, NINES_EINVAL, "scan of '%s': %zu filters, at most %d", table,
                        nfilters, NINES_SCAN_FILTERS_MAX);
    struct nines_scan *sc = calloc(1, sizeof *sc);
    if (!sc)
        return cli_fail(t->c, NINES_ENOMEM, "scan cursor on '%s'", table);
    sc->t = t;
    sc->reverse = (flags & NINES_SCAN_REVERSE) != 0;
    arena_init(&sc->mem, 1024);
    size_t tl = strlen(table);
    int rc = 0;
    if (!(sc->table = arena_alloc(&sc->mem, tl + 1)))
        rc = cli_fail(t->c, NINES_ENOMEM, "scan cursor on '%s'", table);
    else
        memcpy(sc->table, table, tl + 1);
    if (!rc && nlo && (rc = cli_vals_to_pb(&sc->mem, lo, nlo, &sc->lo)) != 0)
        rc = cli_fail(t->c, rc, "scan of '%s': low key %s", table, nines_errdetail());
    if (!rc && nhi && (rc = cli_vals_to_pb(&sc->mem, hi, nhi, &sc->hi)) != 0)
        rc = cli_fail(t->c, rc, "scan of '%s': high key %s", table, nines_errdetail());
    sc->nlo = nlo;
    sc->nhi = nhi;
    if (!rc && nfilters) {
        sc->filters = arena_alloc(&sc->mem, nfilters * sizeof *sc->filters);
        Nines__ScanFilter *fs = arena_alloc(&sc->mem, nfilters * sizeof *fs);
        if (!sc->filters || !fs)
            rc = cli_fail(t->c, NINES_ENOMEM, "scan of '%s': %zu filters", table, nfilters);
        for (size_t i = 0; !rc && i < nfilters; i++) {
            nines__scan_filter__init(&fs[i]);
            fs[i].column = filters[i].column;
            if (cmp_to_pb(filters[i].cmp, &fs[i].cmp)) {
                rc = cli_fail(t->c, NINES_EINVAL, "scan of '%s': filter %zu has unknown "
                              "comparison %d", table, i, (int)filters[i].cmp);
                break;
            }
            if (filters[i].cmp != NINES_CMP_IS_NULL && filters[i].cmp != NINES_CMP_IS_NOT_NULL) {
                Nines__Value **v;
                if ((rc = cli_vals_to_pb(&sc->mem, &filters[i].value, 1, &v)) != 0) {
                    rc = cli_fail(t->c, rc, "scan of '%s': filter %zu: %s", table, i,
                                  nines_errdetail());
                    break;
                }
                fs[i].value = v[0];
            }
            sc->filters[i] = &fs[i];
        }
        sc->nfilters = nfilters;
    }
    if (rc) {
        nines_scan_close(sc);
        return rc;
    }
    *out = sc;
    return 0;
}

int nines_scan_next(nines_scan *sc, uint32_t limit, nines_row_fn fn, void *arg)
{
    if (!sc || !fn)
        return nines_err(NINES_EINVAL, "nines_scan_next: NULL cursor or callback");
    if (sc->done)
        return 0;
    nines_txn *t = sc->t;
    Nines__RecordOp *op;
    int rc = cli_txn_op(t, NINES__OP_TYPE__OP_SCAN, sc->table, &op);
    if (rc)
        return rc;
    /* the cursor's values live in its own arena, which outlives the send */
    op->key = sc->lo;
    op->n_key = sc->nlo;
    op->key_hi = sc->hi;
    op->n_key_hi = sc->nhi;
    op->filters = sc->filters;
    op->n_filters = sc->nfilters;
    op->reverse = sc->reverse;
    op->limit = limit;
    if (sc->afterlen)
        op->after = (ProtobufCBinaryData){.len = sc->afterlen, .data = sc->after};
    t->nops++;
    return scan_send(t, sc->table, limit, fn, arg, sc);
}

int nines_scan_done(const nines_scan *sc) { return !sc || sc->done; }

void nines_scan_close(nines_scan *sc)
{
    if (!sc)
        return;
    arena_destroy(&sc->mem);
    free(sc);
}

int nines_txn_flush(nines_txn *t)
{
    if (!t)
        return nines_err(NINES_EINVAL, "nines_txn_flush: NULL transaction");
    int rc = cli_txn_usable(t);
    if (rc || t->nops == 0)
        return rc;
    struct cli_sync y = {0};
    return cli_txn_send(t, NINES__TXN_END__TXN_END_NONE, &y);
}

size_t nines_txn_buffered(const nines_txn *t) { return t ? t->nops : 0; }

int nines_txn_commit(nines_txn *t)
{
    if (!t)
        return nines_err(NINES_EINVAL, "nines_txn_commit: NULL transaction");
    struct nines_conn *c = t->c;
    int rc = cli_txn_usable(t);
    if (rc == 0 && (t->id || t->nops)) {
        struct cli_sync y = {0};
        rc = cli_txn_send(t, NINES__TXN_END__TXN_END_COMMIT, &y);
    }
    if (rc) {
        char why[CLI_DETAIL_MAX];
        snprintf(why, sizeof why, "%s", c->detail);
        cli_txn_free(t);
        return cli_fail(c, rc, "commit: %s", why);
    }
    cli_txn_free(t);
    return 0;
}

int nines_txn_rollback(nines_txn *t)
{
    if (!t)
        return nines_err(NINES_EINVAL, "nines_txn_rollback: NULL transaction");
    int rc = 0;
    if (t->server_open && t->id && t->c->st == CLI_UP && t->c->gen == t->gen) {
        t->nops = 0;  /* buffered ops are simply dropped */
        struct cli_sync y = {0};
        rc = cli_txn_send(t, NINES__TXN_END__TXN_END_ROLLBACK, &y);
        /* the controller confirms a rollback with TXN_REF(NINES_EABORTED):
         * the transaction is aborted as asked */
        if (rc == NINES_EABORTED)
            rc = 0;
    }
    /* Otherwise nothing reached the server, or it already aborted the
     * transaction (refused, or the connection closed). */
    cli_txn_free(t);
    return rc;
}

uint64_t nines_txn_id(const nines_txn *t) { return t ? t->id : 0; }
