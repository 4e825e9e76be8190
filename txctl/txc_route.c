/* Request validation, procedures, key encoding and routing: turn one
 * TXN_REQ into routed ops grouped per primary node. Memory comes from the
 * request message's arena (the message is kept while the txn uses it). */
#include "txc_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conv/conv.h"
#include "nassert.h"
#include "nines/errors.h"

/* Kernel ops one request may turn into (a SCAN is one per fragment). */
#define TXC_MAX_KOPS 65536u

static const char *const op_names[] = {"NONE", "GET", "INSERT", "UPDATE", "DELETE", "SCAN", "ADD"};

static const char *op_name(Nines__OpType op)
{
    return (unsigned)op < sizeof op_names / sizeof op_names[0] ? op_names[op] : "?";
}

/* The conversion's view of column ci of tb (conv/: the one wire value ->
 * kernel value conversion, shared with the kernel service and the client
 * library). */
static int cols_of(const struct dict_table *tb, const uint16_t *ci, uint32_t n,
                   struct conv_col *out)
{
    for (uint32_t j = 0; j < n; j++) {
        int rc = conv_col_of(tb, ci ? ci[j] : j, &out[j]);
        if (rc)
            return rc;
    }
    return 0;
}

static const struct dict_table *find_table(struct txc *t, const Nines__RecordOp *op)
{
    const struct dict *d = txc_dict(t);
    if (op->table_id) {
        const struct dict_table *tb = dict_table_by_id(d, op->table_id);
        if (!tb)
            nines_err(NINES_ENOTFOUND, "table id %u not found (dictionary version %" PRIu64 ")",
                      op->table_id, d->version);
        return tb;
    }
    const char *name = op->table ? op->table : "";
    const struct dict_table *tb = dict_table_by_name(d, name);
    if (!tb)
        nines_err(NINES_ENOTFOUND, "table '%s' not found (dictionary version %" PRIu64 ")", name,
                  d->version);
    return tb;
}

static int col_index(const struct dict_table *tb, const char *name)
{
    for (uint32_t i = 0; i < tb->def.ncols; i++)
        if (!strcmp(tb->def.cols[i].name, name))
            return (int)i;
    return -1;
}

/* Encode the key of `op` (its key values, or the key columns of its row). */
static int encode_key(const struct dict_table *tb, const Nines__RecordOp *op, struct rt_msg *req,
                      ProtobufCBinaryData *out)
{
    uint32_t npk = tb->def.npk;
    struct conv_col kc[DICT_MAX_PK];
    Nines__Value *vals[DICT_MAX_PK];
    Nines__Value *const *v = op->key;
    size_t n = op->n_key;
    bool from_row = op->n_key == 0 && op->row &&
                    (op->op == NINES__OP_TYPE__OP_INSERT || op->op == NINES__OP_TYPE__OP_UPDATE);
    if (from_row) {
        for (uint32_t i = 0; i < npk; i++) {
            uint32_t ci = tb->def.pk[i];
            vals[i] = ci < op->row->n_values ? op->row->values[ci] : NULL;
        }
        v = vals;
        n = npk;
    }
    uint8_t buf[KERN_KEY_MAX];
    int rc = cols_of(tb, tb->def.pk, npk, kc);
    int len = rc ? rc : conv_key(kc, npk, v, n, false, "key", buf, sizeof buf);
    if (len < 0)
        return len;
    uint8_t *k = rt_msg_alloc(req, (size_t)len);
    if (!k)
        return nines_err(NINES_ENOMEM, "no memory for a %d-byte key", len);
    memcpy(k, buf, (size_t)len);
    out->data = k;
    out->len = (size_t)len;
    return 0;
}

static int check_row(const struct dict_table *tb, const Nines__Row *row)
{
    if (!row)
        return nines_err(NINES_EINVAL, "table %s: the op has no row", tb->def.name);
    struct conv_col cols[DICT_MAX_COLS];
    struct kern_val kv[DICT_MAX_COLS];
    int rc = cols_of(tb, NULL, tb->def.ncols, cols);
    return rc ? rc : conv_row(cols, tb->def.ncols, row, kv);
}

/* Writes to a table whose readonly flag is on (dict_set_readonly, set
 * while the SQL front end re-keys or rebuilds it) are refused. */
static int check_writable(const struct dict_table *tb, const Nines__RecordOp *op)
{
    if (!tb->readonly)
        return 0;
    return nines_err(NINES_ESTATE, "table %s is read-only: %s refused (the table's read-only "
                     "flag is on, e.g. while it is being re-keyed; reads go on)", tb->def.name,
                     op_name(op->op));
}

static int check_op(const struct dict_table *tb, const Nines__RecordOp *op)
{
    switch (op->op) {
    case NINES__OP_TYPE__OP_INSERT:
    case NINES__OP_TYPE__OP_UPDATE:
    case NINES__OP_TYPE__OP_DELETE:
    case NINES__OP_TYPE__OP_ADD: {
        int rc = check_writable(tb, op);
        if (rc)
            return rc;
        break;
    }
    default:
        break;
    }
    switch (op->op) {
    case NINES__OP_TYPE__OP_GET:
    case NINES__OP_TYPE__OP_DELETE:
        return 0;
    case NINES__OP_TYPE__OP_INSERT:
    case NINES__OP_TYPE__OP_UPDATE:
        return check_row(tb, op->row);
    case NINES__OP_TYPE__OP_ADD: {
        if (op->column >= tb->def.ncols)
            return nines_err(NINES_EINVAL, "ADD on table %s: column %u does not exist (%u columns)",
                             tb->def.name, op->column, tb->def.ncols);
        const struct dict_column *c = &tb->def.cols[op->column];
        if (c->type != DICT_T_INT64 && c->type != DICT_T_INT32)
            return nines_err(NINES_ETYPE, "ADD on table %s column %s: column is %s, not an integer",
                             tb->def.name, c->name, dict_type_name(c->type));
        for (uint32_t i = 0; i < tb->def.npk; i++)
            if (tb->def.pk[i] == op->column)
                return nines_err(NINES_EINVAL, "ADD on table %s column %s: a key column",
                                 tb->def.name, c->name);
        return 0;
    }
    case NINES__OP_TYPE__OP_SCAN:
        return 0; /* bounds are checked by route_scan */
    case NINES__OP_TYPE__OP_NONE:
    default:
        return nines_err(NINES_EINVAL, "table %s: op type %d is not an operation", tb->def.name,
                         (int)op->op);
    }
}

/* ---- procedures ------------------------------------------------------- */

static Nines__Value *i64_val(struct rt_msg *req, int64_t x)
{
    Nines__Value *v = rt_msg_alloc(req, sizeof *v);
    if (v) {
        nines__value__init(v);
        v->v_case = NINES__VALUE__V_I64;
        v->i64 = x;
    }
    return v;
}

static int proc_table(struct txc *t, const char *proc, const char *name,
                      const struct dict_table **tb, int *balance)
{
    *tb = dict_table_by_name(txc_dict(t), name);
    if (!*tb)
        return nines_err(NINES_ENOTFOUND, "%s needs table '%s', which does not exist "
                         "(create and load the %s tables first)", proc, name, proc);
    if (balance) {
        const char *col = !strcmp(proc, "TPC-B") ? "balance" : "v";
        *balance = col_index(*tb, col);
        if (*balance < 0)
            return nines_err(NINES_ENOTFOUND, "%s: table '%s' has no column '%s'", proc, name,
                             col);
    }
    return 0;
}

/* escrow: a commutative increment (INC lock at the kernel, no row back). */
static Nines__RecordOp *add_op(struct rt_msg *req, const struct dict_table *tb, int64_t key,
                               int col, int64_t delta, bool escrow)
{
    Nines__RecordOp *op = rt_msg_alloc(req, sizeof *op);
    Nines__Value **k = rt_msg_alloc(req, sizeof *k);
    if (!op || !k)
        return NULL;
    nines__record_op__init(op);
    op->op = NINES__OP_TYPE__OP_ADD;
    op->table_id = tb->id;
    k[0] = i64_val(req, key);
    if (!k[0])
        return NULL;
    op->n_key = 1;
    op->key = k;
    op->column = (uint32_t)col;
    op->delta = delta;
    op->escrow = escrow;
    return op;
}

/* The history row, filled by column name (hid, aid, tid, bid, delta, ts;
 * fixed-width string columns get spaces, others NULL when nullable). */
static Nines__RecordOp *history_op(struct rt_msg *req, const struct dict_table *tb, uint64_t txn,
                                   const Nines__TpcbCall *c)
{
    Nines__RecordOp *op = rt_msg_alloc(req, sizeof *op);
    Nines__Row *row = rt_msg_alloc(req, sizeof *row);
    uint32_t n = tb->def.ncols;
    Nines__Value **vals = rt_msg_alloc(req, n * sizeof *vals);
    if (!op || !row || !vals)
        return NULL;
    nines__record_op__init(op);
    nines__row__init(row);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    for (uint32_t i = 0; i < n; i++) {
        const struct dict_column *col = &tb->def.cols[i];
        const char *nm = col->name;
        Nines__Value *v = rt_msg_alloc(req, sizeof *v);
        if (!v)
            return NULL;
        nines__value__init(v);
        if (!strcmp(nm, "hid") || !strcmp(nm, "aid") || !strcmp(nm, "tid") ||
            !strcmp(nm, "bid") || !strcmp(nm, "delta") || !strcmp(nm, "ts")) {
            v->v_case = NINES__VALUE__V_I64;
            v->i64 = !strcmp(nm, "hid")   ? (int64_t)txn
                     : !strcmp(nm, "aid") ? c->aid
                     : !strcmp(nm, "tid") ? c->tid
                     : !strcmp(nm, "bid") ? c->bid
                     : !strcmp(nm, "delta") ? c->delta
                                            : now;
        } else if (col->type == DICT_T_STRING) {
            char *s = rt_msg_alloc(req, col->size + 1);
            if (!s)
                return NULL;
            memset(s, ' ', col->size);
            s[col->size] = 0;
            v->v_case = NINES__VALUE__V_STR;
            v->str = s;
        } else if (col->type == DICT_T_VARSTRING) {
            v->v_case = NINES__VALUE__V_STR;
            v->str = (char *)"";
        } else {
            v->v_case = NINES__VALUE__V_IS_NULL;
            v->is_null = 1;
        }
        vals[i] = v;
    }
    row->n_values = n;
    row->values = vals;
    op->op = NINES__OP_TYPE__OP_INSERT;
    op->table_id = tb->id;
    op->row = row;
    return op;
}

static int build_proc(struct txc *t, struct txc_txn *x, struct rt_msg *req, const Nines__TxnReq *b,
                      const Nines__RecordOp ***ops, uint32_t *nops)
{
    const Nines__RecordOp **v = rt_msg_alloc(req, 4 * sizeof *v);
    if (!v)
        return nines_err(NINES_ENOMEM, "no memory for a procedure call");
    int rc;
    if (b->proc_case == NINES__TXN_REQ__PROC_TPCB) {
        const Nines__TpcbCall *c = b->tpcb;
        const struct dict_table *acc, *tel, *bra, *his;
        int ca, ct, cb;
        if ((rc = proc_table(t, "TPC-B", "account", &acc, &ca)) ||
            (rc = proc_table(t, "TPC-B", "teller", &tel, &ct)) ||
            (rc = proc_table(t, "TPC-B", "branch", &bra, &cb)) ||
            (rc = proc_table(t, "TPC-B", "history", &his, NULL)))
            return rc;
        /* teller and branch: commutative increments (INC locks, no row back),
         * so the hot rows do not serialize; the account's new balance is the
         * answer, so its ADD takes an X lock and returns the row */
        v[0] = add_op(req, acc, c->aid, ca, c->delta, false);
        v[1] = add_op(req, tel, c->tid, ct, c->delta, true);
        v[2] = add_op(req, bra, c->bid, cb, c->delta, true);
        v[3] = history_op(req, his, x->id, c);
        x->proc = TXC_PROC_TPCB;
        x->value_col = (uint32_t)ca;
        *nops = 4;
    } else {
        const Nines__TwoUpdCall *c = b->two_upd;
        const struct dict_table *t1, *t2;
        int c1, c2;
        if ((rc = proc_table(t, "two-update", "t1", &t1, &c1)) ||
            (rc = proc_table(t, "two-update", "t2", &t2, &c2)))
            return rc;
        /* both escrow: no row back, TxnConf.value is 0 */
        v[0] = add_op(req, t1, c->key1, c1, c->delta, true);
        v[1] = add_op(req, t2, c->key2, c2, c->delta, true);
        x->proc = TXC_PROC_TWO_UPD;
        x->value_col = (uint32_t)c1;
        *nops = 2;
    }
    for (uint32_t i = 0; i < *nops; i++)
        if (!v[i])
            return nines_err(NINES_ENOMEM, "no memory for a procedure call");
    *ops = v;
    return 0;
}

void txc_op_name(const struct txc_txn *x, uint32_t i, char *buf, size_t n)
{
    static const char *const tpcb[] = {"account", "teller", "branch", "history"};
    static const char *const two[] = {"t1", "t2"};
    const Nines__RecordOp *op = x->ops && i < x->nops ? x->ops[i].op : NULL;
    const Nines__Value *k = op && op->n_key ? op->key[0] : NULL;
    char kd[96];
    conv_value_text(k, kd, sizeof kd);
    if (x->proc == TXC_PROC_TPCB && i < 4)
        snprintf(buf, n, "TPC-B %s %s", tpcb[i], i < 3 ? kd : "insert");
    else if (x->proc == TXC_PROC_TWO_UPD && i < 2)
        snprintf(buf, n, "two-update %s key %s", two[i], kd);
    else if (op)
        snprintf(buf, n, "op %u (%s on table %s%s, key %s)", i, op_name(op->op),
                 op->table_id ? "id " : "", op->table_id ? "" : op->table, kd);
    else
        snprintf(buf, n, "op %u", i);
}

int txc_proc_value(struct txc *t, struct txc_txn *x, int64_t *out)
{
    (void)t;
    if (x->proc == TXC_PROC_TWO_UPD) { /* escrow increments return no row */
        *out = 0;
        return 0;
    }
    const Nines__OpResult *r = x->results ? x->results[0] : NULL;
    if (!r || r->n_rows < 1 || !r->rows[0] || r->rows[0]->n_values <= x->value_col ||
        !r->rows[0]->values[x->value_col] ||
        r->rows[0]->values[x->value_col]->v_case != NINES__VALUE__V_I64)
        return nines_err(NINES_EPROTO, "the kernel's answer to the %s ADD has no new row value",
                         x->proc == TXC_PROC_TPCB ? "account" : "t1");
    *out = r->rows[0]->values[x->value_col]->i64;
    return 0;
}

/* ---- routing ---------------------------------------------------------- */

/* (table, frag) -> part index, open addressing over a per-request table. */
struct pmap {
    uint32_t *slot;   /* part index + 1, 0 = empty */
    uint32_t mask;
};

static uint32_t pm_hash(uint32_t table, uint32_t frag, uint32_t mask)
{
    uint64_t h = ((uint64_t)table << 32 | frag) * UINT64_C(0x9E3779B97F4A7C15);
    return (uint32_t)(h >> 40) & mask;
}

static uint32_t *pm_lookup(struct pmap *pm, const struct txc_part *parts, uint32_t table,
                           uint32_t frag)
{
    uint32_t i = pm_hash(table, frag, pm->mask);
    while (pm->slot[i]) {
        const struct txc_part *p = &parts[pm->slot[i] - 1];
        if (p->table == table && p->frag == frag)
            return &pm->slot[i];
        i = (i + 1) & pm->mask;
    }
    return &pm->slot[i];
}

/* The fragment's roles in the installed node set (dict_frag_roles: every
 * node computes them the same way); a DOWN fragment is refused. */
static int frag_roles(struct txc *t, const struct dict_table *tb, uint32_t frag,
                      struct dict_roles *r)
{
    struct dict_live live = txc_live(t);
    int rc = dict_frag_roles_live(txc_dict(t), tb, frag, &live, r);
    if (rc)
        return rc;
    if (r->state == DICT_FRAG_DOWN)
        return nines_err(NINES_EUNREACHABLE, "not committed: table %s fragment %u is down: "
                         "neither its primary node %u nor its standby node %u is a current "
                         "member of node set %" PRIu64, tb->def.name, frag,
                         tb->frags[frag].primary, tb->frags[frag].standby,
                         rt_nodeset(t->rt)->epoch);
    return 0;
}

/* Route kernel op of request op `i` to fragment `frag` of `tb`: find or
 * add the participant, count the op for its executing node. */
static int add_kop(struct txc *t, struct txc_txn *x, struct pmap *pm, const struct dict_table *tb,
                   uint32_t frag, uint32_t i, ProtobufCBinaryData key, uint32_t capk,
                   uint32_t *per_node)
{
    uint32_t *slot = pm_lookup(pm, x->parts, tb->id, frag);
    const Nines__RecordOp *rop = x->ops[i].op;
    bool write = rop && rop->op != NINES__OP_TYPE__OP_GET && rop->op != NINES__OP_TYPE__OP_SCAN;
    struct dict_roles r;
    if (!*slot || (write && !x->parts[*slot - 1].writes)) {
        int rc = frag_roles(t, tb, frag, &r);
        if (rc) {
            t->st.refused_1safe += write;
            return rc;
        }
    }
    if (!*slot) {
        N_ASSERT(x->nparts < x->capparts);
        struct txc_part *p = &x->parts[x->nparts];
        memset(p, 0, sizeof *p);
        p->table = tb->id;
        p->frag = frag;
        p->primary = r.primary;
        /* whose READY_IND the hsc waits for besides the primary's: the hot
         * standby, or the log-copy node of a primary alone */
        p->standby = r.state == DICT_FRAG_BOTH ? r.standby
                     : r.state == DICT_FRAG_ALONE ? r.logcopy : 0;
        *slot = ++x->nparts;
    }
    struct txc_part *p = &x->parts[*slot - 1];
    if (write && !p->writes) {
        /* a write is 2-safe or refused: never committed in one site's
         * memory (txctl/README.md "Routing writes") */
        if (r.state == DICT_FRAG_ALONE && !r.logcopy && !txc_disk_stands_in(t)) {
            t->st.refused_1safe++;
            return nines_err(NINES_EUNREACHABLE, "not committed: table %s fragment %u has one "
                             "replica left (node %u) and no node of the other site is a "
                             "current member of node set %" PRIu64 " to hold a copy of its log",
                             tb->def.name, frag, r.primary, rt_nodeset(t->rt)->epoch);
        }
        if (r.primary != p->primary) { /* roles changed since the transaction's earlier ops */
            t->st.refused_1safe++;
            return nines_err(NINES_EUNREACHABLE, "not committed: table %s fragment %u moved "
                             "from node %u to node %u (node set %" PRIu64 ") during the "
                             "transaction", tb->def.name, frag, p->primary, r.primary,
                             rt_nodeset(t->rt)->epoch);
        }
        p->writes = true;
    }
    N_ASSERT(x->nkops < capk);
    struct txc_kop *o = &x->kops[x->nkops++];
    o->op = i;
    o->part = *slot - 1;
    o->node = x->parts[o->part].primary;
    o->key = key;
    N_ASSERT(o->node >= 1 && o->node <= 64);
    per_node[o->node]++;
    (void)t;
    return 0;
}

/* ---- scans ------------------------------------------------------------ */

/* Encode the first n key columns' values of a SCAN bound (n = 0: empty,
 * no bound). */
static int encode_prefix(const struct dict_table *tb, Nines__Value *const *v, size_t n,
                         const char *which, uint8_t *buf, size_t *len)
{
    struct conv_col kc[DICT_MAX_PK];
    char what[16], why[400];
    snprintf(what, sizeof what, "%s key", which);
    int rc = cols_of(tb, tb->def.pk, tb->def.npk, kc);
    int l = rc ? rc : conv_key(kc, tb->def.npk, v, n, true, what, buf, KERN_KEY_MAX);
    if (l < 0) {
        snprintf(why, sizeof why, "%s", nines_errdetail());
        return nines_err(l, "SCAN %s key: %s", which, why);
    }
    *len = (size_t)l;
    return 0;
}

/* Fragments that may hold keys in [lo, hi]: *first .. *last (none when
 * *first > *last). Bounds are inclusive key prefixes; empty = open. */
static int scan_frags(const struct dict_table *tb, const uint8_t *lo, size_t lolen,
                      const uint8_t *hi, size_t hilen, bool lo_full, bool hi_full,
                      uint32_t *first, uint32_t *last)
{
    static _Thread_local uint8_t hp[KERN_KEY_MAX]; /* hi, then 0xff: above every key it prefixes */
    if (hilen) {
        memcpy(hp, hi, hilen);
        memset(hp + hilen, 0xff, KERN_KEY_MAX - hilen);
    }
    *first = 0;
    *last = tb->nfrags - 1;
    if (lolen && hilen && kern_key_cmp(lo, lolen, hp, KERN_KEY_MAX) > 0) {
        *first = 1, *last = 0; /* lo above hi: empty range */
        return 0;
    }
    int f;
    if (tb->def.method == DICT_FRAG_RANGE) {
        /* fragment = number of split points <= key: monotone in the key */
        if (lolen) {
            if ((f = dict_route(tb, lo, lolen)) < 0)
                return f;
            *first = (uint32_t)f;
        }
        if (hilen) {
            if ((f = dict_route(tb, hp, KERN_KEY_MAX)) < 0)
                return f;
            *last = (uint32_t)f;
        }
        return 0;
    }
    /* hash: any fragment, unless both bounds are the same full key */
    if (lo_full && hi_full && lolen == hilen && !memcmp(lo, hi, lolen)) {
        if ((f = dict_route(tb, lo, lolen)) < 0)
            return f;
        *first = *last = (uint32_t)f;
    }
    return 0;
}

/* What the merge needs to check that a key a kernel returned belongs to
 * its fragment (copied: the dictionary may change meanwhile): the
 * fragment count of a hash table, the split points around fragments
 * first..last of a range table. */
static int scan_frag_bounds(struct rt_msg *req, const struct dict_table *tb, uint32_t first,
                            uint32_t last, struct txc_scan *sc)
{
    sc->method = tb->def.method;
    sc->nfrags = tb->nfrags;
    sc->nsplits = tb->def.nsplits;
    if (tb->def.method != DICT_FRAG_RANGE || first > last)
        return 0;
    /* fragment f holds splits[f - 1] <= key < splits[f] */
    uint32_t s0 = first ? first - 1 : 0;
    uint32_t s1 = last < tb->def.nsplits ? last : tb->def.nsplits - 1;
    if (tb->def.nsplits == 0 || s0 > s1)
        return 0;
    struct dict_key *sp = rt_msg_alloc(req, (s1 - s0 + 1) * sizeof *sp);
    if (!sp)
        return nines_err(NINES_ENOMEM, "no memory to route a scan");
    for (uint32_t j = s0; j <= s1; j++) {
        const struct dict_key *src = &tb->def.splits[j];
        uint8_t *b = rt_msg_alloc(req, src->len ? src->len : 1);
        if (!b)
            return nines_err(NINES_ENOMEM, "no memory to route a scan");
        memcpy(b, src->bytes, src->len);
        sp[j - s0] = (struct dict_key){b, src->len};
    }
    sc->splits = sp;
    sc->split0 = s0;
    sc->nsplit_copy = s1 - s0 + 1;
    return 0;
}

/* A SCAN: its op copy with the effective limit, the merge description,
 * and one kernel op per fragment that may hold keys in range. */
static int route_scan(struct txc *t, struct txc_txn *x, struct rt_msg *req,
                      const struct dict_table *tb, uint32_t i, struct pmap *pm,
                      uint32_t capk, uint32_t *per_node)
{
    const Nines__RecordOp *op = x->ops[i].op;
    static _Thread_local uint8_t lo[KERN_KEY_MAX], hi[KERN_KEY_MAX];
    size_t lolen, hilen;
    int rc;
    if ((rc = encode_prefix(tb, op->key, op->n_key, "low", lo, &lolen)) ||
        (rc = encode_prefix(tb, op->key_hi, op->n_key_hi, "high", hi, &hilen)))
        return rc;
    Nines__RecordOp *c = rt_msg_alloc(req, sizeof *c);
    uint8_t *k = lolen ? rt_msg_alloc(req, lolen) : NULL;
    uint8_t *h = hilen ? rt_msg_alloc(req, hilen) : NULL;
    if (!c || (lolen && !k) || (hilen && !h))
        return nines_err(NINES_ENOMEM, "no memory to route a scan");
    *c = *op;
    c->limit = op->limit == 0 ? TXC_SCAN_DEFAULT : op->limit > TXC_SCAN_MAX ? TXC_SCAN_MAX
                                                                             : op->limit;
    x->ops[i].op = c;
    if (lolen)
        memcpy(k, lo, lolen);
    if (hilen)
        memcpy(h, hi, hilen);
    struct txc_scan *sc = &x->scans[x->nscans++];
    memset(sc, 0, sizeof *sc);
    sc->op = i;
    sc->table = tb->id;
    sc->limit = c->limit;
    sc->reverse = c->reverse;
    sc->lo = k;
    sc->lolen = (uint32_t)lolen;
    sc->hi = h;
    sc->hilen = (uint32_t)hilen;
    if (op->after.len > KERN_KEY_MAX)
        return nines_err(NINES_ETOOBIG, "SCAN `after` key of %zu bytes (at most %d)",
                         op->after.len, KERN_KEY_MAX);
    if (op->n_filters > TXC_SCAN_FILTERS_MAX)
        return nines_err(NINES_EINVAL, "SCAN of table %s has %zu filters, at most %u",
                         tb->def.name, op->n_filters, TXC_SCAN_FILTERS_MAX);
    sc->after = op->after.len ? op->after.data : NULL;
    sc->afterlen = (uint32_t)op->after.len;
    /* a later page: the fragments from its `after` key on (a range table's
     * earlier ones are done); the bound stays a prefix bound, which only
     * widens the choice */
    const uint8_t *flo = lo, *fhi = hi;
    size_t flolen = lolen, fhilen = hilen;
    bool lo_full = op->n_key == tb->def.npk, hi_full = op->n_key_hi == tb->def.npk;
    if (sc->after && !sc->reverse && (!lolen || kern_key_cmp(sc->after, sc->afterlen, lo, lolen) > 0))
        flo = sc->after, flolen = sc->afterlen, lo_full = false;
    if (sc->after && sc->reverse)
        fhi = sc->after, fhilen = sc->afterlen, hi_full = false;
    uint32_t first, last;
    rc = scan_frags(tb, flo, flolen, fhi, fhilen, lo_full, hi_full, &first, &last);
    if (rc)
        return rc;
    if ((rc = scan_frag_bounds(req, tb, first, last, sc)))
        return rc;
    ProtobufCBinaryData key = {lolen, k};
    x->ops[i].kop = x->nkops;
    for (uint32_t f = first; f <= last && f < tb->nfrags; f++)
        if ((rc = add_kop(t, x, pm, tb, f, i, key, capk, per_node)))
            return rc;
    x->ops[i].nkop = x->nkops - x->ops[i].kop;
    return 0;
}

int txc_route_request(struct txc *t, struct txc_txn *x, struct rt_msg *req, uint32_t *failed_op)
{
    const Nines__TxnReq *b = (const Nines__TxnReq *)req->body;
    *failed_op = 0;
    const Nines__RecordOp **ops = NULL;
    uint32_t n = 0;
    int rc;
    x->proc = TXC_PROC_NONE;
    x->nkops = x->nscans = 0;
    if (b->proc_case == NINES__TXN_REQ__PROC_TPCB || b->proc_case == NINES__TXN_REQ__PROC_TWO_UPD) {
        if (b->n_ops)
            return nines_err(NINES_EINVAL, "a procedure call carries no ops (got %zu)", b->n_ops);
        if ((b->proc_case == NINES__TXN_REQ__PROC_TPCB && !b->tpcb) ||
            (b->proc_case == NINES__TXN_REQ__PROC_TWO_UPD && !b->two_upd))
            return nines_err(NINES_EINVAL, "procedure call without arguments");
        if ((rc = build_proc(t, x, req, b, &ops, &n)))
            return rc;
    } else {
        if (b->n_ops > t->cfg.max_ops)
            return nines_err(NINES_ETOOBIG, "request has %zu ops, at most %u are allowed",
                             b->n_ops, t->cfg.max_ops);
        ops = (const Nines__RecordOp **)b->ops;
        n = (uint32_t)b->n_ops;
    }
    /* kernel ops: one per op, a SCAN one per fragment of its table */
    uint64_t capk = 0;
    uint32_t nsc = 0;
    for (uint32_t i = 0; i < n; i++) {
        const Nines__RecordOp *op = ops[i];
        if (!op || op->op != NINES__OP_TYPE__OP_SCAN) {
            capk++;
            continue;
        }
        const struct dict_table *tb = op->table_id ? dict_table_by_id(txc_dict(t), op->table_id)
                                                   : dict_table_by_name(txc_dict(t),
                                                                        op->table ? op->table : "");
        capk += tb ? tb->nfrags : 1;
        nsc++;
    }
    if (capk > TXC_MAX_KOPS)
        return nines_err(NINES_ETOOBIG, "request needs %" PRIu64 " kernel ops (a SCAN counts one "
                         "per fragment of its table), at most %u are allowed", capk,
                         TXC_MAX_KOPS);
    x->nops = n;
    x->ops = n ? rt_msg_alloc(req, n * sizeof *x->ops) : NULL;
    x->results = n ? rt_msg_alloc(req, n * sizeof *x->results) : NULL;
    x->kops = capk ? rt_msg_alloc(req, capk * sizeof *x->kops) : NULL;
    x->kres = nsc ? rt_msg_alloc(req, capk * sizeof *x->kres) : NULL;
    x->scans = nsc ? rt_msg_alloc(req, nsc * sizeof *x->scans) : NULL;
    if ((n && (!x->ops || !x->results)) || (capk && !x->kops) || (nsc && (!x->kres || !x->scans)))
        return nines_err(NINES_ENOMEM, "no memory to route %u ops", n);
    if (n)
        memset(x->results, 0, n * sizeof *x->results);
    if (nsc)
        memset(x->kres, 0, capk * sizeof *x->kres);

    /* parts: grow to hold every kernel op's fragment in the worst case */
    if (x->nparts + capk > x->capparts) {
        struct txc_part *np = rt_msg_alloc(req, (x->nparts + capk) * sizeof *np);
        if (!np)
            return nines_err(NINES_ENOMEM, "no memory for %" PRIu64 " participants",
                             x->nparts + capk);
        if (x->nparts)
            memcpy(np, x->parts, x->nparts * sizeof *np);
        x->parts = np;
        x->capparts = x->nparts + (uint32_t)capk;
    }
    struct pmap pm;
    uint32_t cap = 16;
    while (cap < 2 * (x->nparts + capk))
        cap <<= 1;
    pm.mask = cap - 1;
    pm.slot = rt_msg_alloc(req, cap * sizeof *pm.slot);
    if (!pm.slot)
        return nines_err(NINES_ENOMEM, "no memory to route %u ops", n);
    memset(pm.slot, 0, cap * sizeof *pm.slot);
    for (uint32_t i = 0; i < x->nparts; i++)
        *pm_lookup(&pm, x->parts, x->parts[i].table, x->parts[i].frag) = i + 1;

    uint32_t nparts0 = x->nparts;
    uint32_t per_node[65] = {0};
    for (uint32_t i = 0; i < n; i++) {
        const Nines__RecordOp *op = ops[i];
        struct txc_op *o = &x->ops[i];
        o->op = op;
        o->kop = x->nkops;
        o->nkop = 0;
        *failed_op = i;
        if (!op)
            return nines_err(NINES_EINVAL, "op %u is empty", i);
        const struct dict_table *tb = find_table(t, op);
        if (!tb) {
            rc = NINES_ENOTFOUND;
            goto bad;
        }
        if ((rc = check_op(tb, op)))
            goto bad;
        if (op->op == NINES__OP_TYPE__OP_SCAN) {
            if ((rc = route_scan(t, x, req, tb, i, &pm, (uint32_t)capk, per_node)))
                goto bad;
            continue;
        }
        ProtobufCBinaryData key;
        if ((rc = encode_key(tb, op, req, &key)))
            goto bad;
        int frag = dict_route(tb, key.data, key.len);
        if (frag < 0) {
            rc = frag;
            goto bad;
        }
        if ((rc = add_kop(t, x, &pm, tb, (uint32_t)frag, i, key, (uint32_t)capk, per_node)))
            goto bad;
        o->nkop = 1;
        continue;
    bad: {
        if (rc == NINES_ENOMEM)
            return rc;
        char name[160];
        char why[512];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        txc_op_name(x, i, name, sizeof name);
        x->nparts = nparts0;
        return nines_err(rc, "%s: %s", name, why);
    }
    }
    *failed_op = 0;

    /* one KERN_OP_REQ per primary node */
    uint32_t nn = 0;
    for (uint32_t node = 1; node <= 64; node++)
        nn += per_node[node] != 0;
    x->nnreq = nn;
    x->nreq = nn ? rt_msg_alloc(req, nn * sizeof *x->nreq) : NULL;
    if (nn && !x->nreq)
        return nines_err(NINES_ENOMEM, "no memory to route %u ops", n);
    uint8_t pos[65];
    uint32_t k = 0;
    for (uint32_t node = 1; node <= 64; node++) {
        if (!per_node[node])
            continue;
        struct txc_nreq *r = &x->nreq[k];
        r->node = node;
        r->nops = 0;
        r->idx = rt_msg_alloc(req, per_node[node] * sizeof *r->idx);
        if (!r->idx)
            return nines_err(NINES_ENOMEM, "no memory to route %u ops", n);
        pos[node] = (uint8_t)k++;
    }
    for (uint32_t j = 0; j < x->nkops; j++) {
        struct txc_nreq *r = &x->nreq[pos[x->kops[j].node]];
        r->idx[r->nops++] = j;
    }
    return 0;
}
