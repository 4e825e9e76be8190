/* Kernel service: KERN_OP_REQ — record operations of a transaction on this
 * node's primary replicas, under strict two-phase record locks; a request
 * that must wait for a lock is parked in the transaction and resumed by
 * the lock manager's grant event. */
#include "ksvc_int.h"

#include "conv/conv.h"
#include "ksvc_filter.h"
#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SK_WAIT = 1 }; /* op result: parked behind a lock */

/* ---- transactions ------------------------------------------------------- */

struct sk_txn *sk_txn_get(const struct ksvc *k, uint64_t txn)
{
    struct sk_node *nd = sk_map_get(&k->txns, txn, 0, 0);
    return nd ? (struct sk_txn *)nd : NULL;
}

struct sk_txn *sk_txn_new(struct ksvc *k, uint64_t txn, uint32_t ctl, uint32_t hsc)
{
    struct sk_txn *t = k->free_txns;
    if (t) {
        k->free_txns = t->free_next;
    } else {
        t = calloc(1, sizeof *t);
        if (!t)
            return NULL;
    }
    t->txn = txn;
    t->st = SK_TX_ACTIVE;
    t->ctl = ctl;
    t->hsc = hsc;
    t->ntouch = 0;
    t->req = t->conf = NULL;
    t->req_from = 0;
    t->next_op = 0;
    t->scan_resume = false;
    t->ctl_inc = t->hsc_inc = 0;
    t->has_value = false;
    t->value = 0;
    t->commit = false;
    t->npending = 0;
    t->dw = SK_DW_NONE;
    t->dw_rc = 0;
    t->dl_gen = sk_dlog_gen(k);
    t->end_from = 0;
    t->pprev = t->pnext = NULL;
    t->plinked = t->hold_logged = false;
    t->held = t->takeover = false;
    t->ask = SK_ASK_NONE;
    t->ask_base_us = 0;
    t->node.a = txn;
    t->node.b = t->node.c = 0;
    sk_map_put(&k->txns, &t->node);
    return t;
}

/* The request t was working on is finished (answered or given up). */
static void sk_req_done(struct ksvc *k, struct sk_txn *t)
{
    if (t->req) {
        if (t->req == k->cur)
            t->req->kept = false; /* its own handler runs: the runtime recycles it */
        else if (t->req->kept)
            rt_msg_free(k->rt, t->req);
        t->req = NULL;
    }
    if (t->conf) {
        rt_msg_free(k->rt, t->conf);
        t->conf = NULL;
    }
    t->scan_resume = false;
}

void sk_drop_continuation(struct ksvc *k, struct sk_txn *t)
{
    if (t->st == SK_TX_WAITING_LOCK) {
        N_ASSERT(k->nwaiting > 0);
        k->nwaiting--;
        t->st = SK_TX_ACTIVE;
    }
    sk_req_done(k, t);
}

void sk_txn_forget(struct ksvc *k, struct sk_txn *t)
{
    sk_drop_continuation(k, t);
    if (t->held) {
        k->st.held--;
        t->held = false;
    }
    sk_prepared_unlink(k, t);
    sk_map_del(&k->txns, &t->node);
    t->ntouch = 0;
    t->free_next = k->free_txns;
    k->free_txns = t;
}

int sk_txn_touch(struct sk_txn *t, uint32_t table, uint32_t frag, uint32_t add)
{
    for (uint32_t i = 0; i < t->ntouch; i++)
        if (t->touch[i].table == table && t->touch[i].frag == frag) {
            t->touch[i].nrecords += add;
            return 0;
        }
    if (t->ntouch == t->captouch) {
        uint32_t cap = t->captouch ? 2 * t->captouch : 8;
        struct sk_touch *nt = realloc(t->touch, cap * sizeof *nt);
        if (!nt)
            return nines_err(NINES_ENOMEM, "no memory to track txn %llu's fragments",
                             (unsigned long long)t->txn);
        t->touch = nt;
        t->captouch = cap;
    }
    t->touch[t->ntouch++] = (struct sk_touch){table, frag, add};
    return 0;
}

/* ---- values in and out -------------------------------------------------- */

/* The conversion's view (conv/) of columns idx[0 .. n) of the replica's
 * layout (idx NULL: every column). */
static void sk_conv_cols(const struct sk_rep *r, const uint16_t *idx, unsigned n,
                         struct conv_col *out)
{
    for (unsigned j = 0; j < n; j++) {
        unsigned c = idx ? idx[j] : j;
        out[j] = (struct conv_col){r->tname, r->names[c], r->cols[c]};
    }
}

static int sk_val_out(struct rt_msg *out, const struct kern_val *v, Nines__Value *pv)
{
    nines__value__init(pv);
    if (v->null) {
        pv->v_case = NINES__VALUE__V_IS_NULL;
        pv->is_null = 1;
        return 0;
    }
    switch (v->type) {
    case KERN_T_INT32:
        pv->v_case = NINES__VALUE__V_I64;
        pv->i64 = v->u.i32;
        return 0;
    case KERN_T_INT64:
    case KERN_T_TS:
        pv->v_case = NINES__VALUE__V_I64;
        pv->i64 = v->u.i64;
        return 0;
    case KERN_T_DOUBLE:
        pv->v_case = NINES__VALUE__V_F64;
        pv->f64 = v->u.d;
        return 0;
    case KERN_T_FSTR:
    case KERN_T_VSTR: {
        char *s = rt_msg_alloc(out, (size_t)v->len + 1);
        if (!s)
            return nines_err(NINES_ENOMEM, "no memory for a %u-byte value", v->len);
        memcpy(s, v->u.p, v->len);
        s[v->len] = '\0';
        pv->v_case = NINES__VALUE__V_STR;
        pv->str = s;
        return 0;
    }
    case KERN_T_FBYTES:
    case KERN_T_VBYTES: {
        uint8_t *b = rt_msg_alloc(out, v->len ? v->len : 1);
        if (!b)
            return nines_err(NINES_ENOMEM, "no memory for a %u-byte value", v->len);
        memcpy(b, v->u.p, v->len);
        pv->v_case = NINES__VALUE__V_RAW;
        pv->raw.data = b;
        pv->raw.len = v->len;
        return 0;
    }
    default:
        return nines_err(NINES_ECORRUPT, "stored value of unknown type %u", v->type);
    }
}

/* A stored row as a proto Row with every column (copied into out's arena). */
int sk_row_out(struct rt_msg *out, const struct sk_rep *r, const uint8_t *key, size_t klen,
               const struct kern_rec *rec, Nines__Row **rowp)
{
    struct kern_val kv[DICT_MAX_PK], rv[DICT_MAX_COLS];
    uint8_t *kbuf = rt_msg_alloc(out, klen ? klen : 1);
    Nines__Row *row = rt_msg_alloc(out, sizeof *row);
    Nines__Value **vp = rt_msg_alloc(out, r->ncols * sizeof *vp);
    Nines__Value *vals = rt_msg_alloc(out, r->ncols * sizeof *vals);
    if (!kbuf || !row || !vp || !vals)
        return nines_err(NINES_ENOMEM, "no memory for a row of table %s", r->tname);
    int rc = kern_key_decode(r->kcols, r->npk, key, klen, kv, kbuf, klen);
    if (rc < 0)
        return rc;
    unsigned nrc;
    const struct kern_col *rcols = kern_frag_rec_cols(r->f, &nrc);
    rc = kern_rec_decode(rec, rcols, nrc, rv);
    if (rc < 0)
        return rc;
    nines__row__init(row);
    for (unsigned i = 0; i < r->ncols; i++) {
        const struct kern_val *v = r->colkey[i] >= 0 ? &kv[r->colkey[i]] : &rv[r->colrec[i]];
        rc = sk_val_out(out, v, &vals[i]);
        if (rc)
            return rc;
        vp[i] = &vals[i];
    }
    row->values = vp;
    row->n_values = r->ncols;
    *rowp = row;
    return 0;
}

static int sk_add_row(struct rt_msg *out, Nines__OpResult *res, const struct sk_rep *r,
                      const uint8_t *key, size_t klen, const struct kern_rec *rec)
{
    size_t n = res->n_rows;
    if (n == 0 || (n & (n - 1)) == 0) { /* capacity: the next power of two */
        size_t cap = n ? 2 * n : 1;
        Nines__Row **nr = rt_msg_alloc(out, cap * sizeof *nr);
        if (!nr)
            return nines_err(NINES_ENOMEM, "no memory for %zu rows", cap);
        if (n)
            memcpy(nr, res->rows, n * sizeof *nr);
        res->rows = nr;
    }
    int rc = sk_row_out(out, r, key, klen, rec, &res->rows[n]);
    if (rc == 0)
        res->n_rows = n + 1;
    return rc;
}

/* A scanned row's encoded key, parallel to res->rows (KERN_OP_CONF
 * OpResult.keys: the controller merges fragments by these bytes). */
static int sk_add_key(struct rt_msg *out, Nines__OpResult *res, const uint8_t *key, size_t klen)
{
    size_t n = res->n_keys;
    if (n == 0 || (n & (n - 1)) == 0) {
        size_t cap = n ? 2 * n : 1;
        ProtobufCBinaryData *nk = rt_msg_alloc(out, cap * sizeof *nk);
        if (!nk)
            return nines_err(NINES_ENOMEM, "no memory for %zu keys", cap);
        if (n)
            memcpy(nk, res->keys, n * sizeof *nk);
        res->keys = nk;
    }
    uint8_t *b = rt_msg_alloc(out, klen ? klen : 1);
    if (!b)
        return nines_err(NINES_ENOMEM, "no memory for a %zu-byte key", klen);
    memcpy(b, key, klen);
    res->keys[n] = (ProtobufCBinaryData){klen, b};
    res->n_keys = n + 1;
    return 0;
}

/* ---- answers ------------------------------------------------------------ */

static void sk_send_ref(struct ksvc *k, net_addr to, uint64_t txn, uint32_t seq, int err,
                        const char *detail, uint32_t failed_op)
{
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__KERN_OP_REF);
    Nines__KernOpRef *b = m ? RT_BODY(m, Nines__KernOpRef, nines__kern_op_ref__init) : NULL;
    size_t dl = strlen(detail);
    char *d = m ? rt_msg_alloc(m, dl + 1) : NULL;
    if (!b || !d) {
        if (m)
            rt_msg_free(k->rt, m);
        NLOG_ERROR("kern", "no memory to refuse txn %llu (%s)", (unsigned long long)txn, detail);
        return;
    }
    memcpy(d, detail, dl + 1);
    b->txn = txn;
    b->seq = seq;
    b->error = err;
    b->detail = d;
    b->failed_op = failed_op;
    (void)rt_send(k->rt, to, RT_SVC_TXC, m); /* a lost answer: the controller times out */
}

/* ---- one operation ------------------------------------------------------ */

static const char *sk_op_name(int op)
{
    switch (op) {
    case NINES__OP_TYPE__OP_GET:
        return "GET";
    case NINES__OP_TYPE__OP_INSERT:
        return "INSERT";
    case NINES__OP_TYPE__OP_UPDATE:
        return "UPDATE";
    case NINES__OP_TYPE__OP_DELETE:
        return "DELETE";
    case NINES__OP_TYPE__OP_SCAN:
        return "SCAN";
    case NINES__OP_TYPE__OP_ADD:
        return "ADD";
    default:
        return "?";
    }
}

static int sk_lock(struct ksvc *k, struct sk_txn *t, const struct sk_rep *r,
                   const uint8_t *key, size_t klen, enum kern_lock_mode mode)
{
    int rc = kern_lock_acquire(k->locks, t->txn, r->table, r->frag, key, klen, mode, 0);
    if (rc == KERN_LOCK_GRANTED)
        return 0;
    if (rc == KERN_LOCK_WAITING)
        return SK_WAIT;
    return rc; /* detail set by the lock manager */
}

/* Encoded key of op i: keys[i] when the controller sent it (checked against
 * the key layout), else the op's key values. */
static int sk_key(struct rt_msg *req, const struct sk_rep *r, const Nines__KernOpReq *q,
                  uint32_t i, uint8_t *kb, size_t *klen)
{
    struct kern_val vals[DICT_MAX_PK];
    if (i < q->n_keys && q->keys[i].len) {
        size_t len = q->keys[i].len;
        if (len > KERN_KEY_MAX)
            return nines_err(NINES_ETOOBIG, "encoded key of %zu bytes, at most %u", len,
                             KERN_KEY_MAX);
        uint8_t *buf = rt_msg_alloc(req, len);
        if (!buf)
            return nines_err(NINES_ENOMEM, "no memory to check a key");
        int rc = kern_key_decode(r->kcols, r->npk, q->keys[i].data, len, vals, buf, len);
        if (rc < 0) {
            char why[256];
            snprintf(why, sizeof why, "%s", nines_errdetail());
            return nines_err(rc, "encoded key of table %s is not a key of its layout: %s",
                             r->tname, why);
        }
        for (unsigned j = 0; j < r->npk; j++) {
            rc = kern_val_check(&r->kcols[j], r->pk[j], &vals[j]);
            if (rc)
                return rc;
        }
        memcpy(kb, q->keys[i].data, len);
        *klen = len;
        return 0;
    }
    const Nines__RecordOp *op = q->ops[i];
    struct conv_col kc[DICT_MAX_PK];
    sk_conv_cols(r, r->pk, r->npk, kc);
    int n = conv_key(kc, r->npk, op->key, op->n_key, false, "key", kb, KERN_KEY_MAX);
    if (n < 0)
        return n;
    *klen = (size_t)n;
    return 0;
}

/* A prefix of the key columns (SCAN bounds); 0 values: *klen = 0. */
static int sk_key_prefix(const struct sk_rep *r, Nines__Value *const *v, size_t n,
                         const char *what, uint8_t *kb, size_t *klen)
{
    struct conv_col kc[DICT_MAX_PK];
    sk_conv_cols(r, r->pk, r->npk, kc);
    int len = conv_key(kc, r->npk, v, n, true, what, kb, KERN_KEY_MAX);
    if (len < 0)
        return len;
    *klen = (size_t)len;
    return 0;
}

static int sk_route_check(const struct ksvc *k, const struct sk_rep *r, const uint8_t *key,
                          size_t klen)
{
    const struct dict_table *t = dict_table_by_id(k->dict(k->dict_ctx), r->table);
    if (!t)
        return 0; /* table dropped meanwhile: the replica goes with the next reconcile */
    int fr = dict_route(t, key, klen);
    if (fr < 0)
        return fr;
    if ((uint32_t)fr != r->frag)
        return nines_err(NINES_EINVAL, "the key belongs to fragment %d of table %s, not to "
                         "fragment %u", fr, r->tname, r->frag);
    return 0;
}

/* The layout filters read rows of replica r with. */
static void sk_layout(const struct sk_rep *r, struct ksvc_layout *l)
{
    unsigned nrc;
    const struct kern_col *rcols = kern_frag_rec_cols(r->f, &nrc);
    *l = (struct ksvc_layout){.table = r->tname, .names = (const char (*)[DICT_NAME_MAX + 1])r->names,
                              .ncols = r->ncols, .cols = r->cols, .colkey = r->colkey,
                              .colrec = r->colrec, .kcols = r->kcols, .npk = r->npk,
                              .rcols = rcols, .nrc = nrc};
}

/* Rows of the fragment in key order from the low bound (or the page's
 * `after` key, exclusive), S-locked, at most `limit`; with filters only
 * the rows that match are returned, and after KSVC_SCAN_SKIP_MAX rows that
 * did not the scan stops with OpResult.resume_key = the last key examined
 * (README "Scan filters"). Parked behind a lock it resumes at the same key. */
static int sk_scan(struct ksvc *k, struct sk_txn *t, const struct sk_rep *r,
                   const Nines__KernOpReq *q, uint32_t i, Nines__OpResult *res)
{
    const Nines__RecordOp *op = q->ops[i];
    static _Thread_local uint8_t lo[KERN_KEY_MAX], hi[KERN_KEY_MAX];
    size_t lolen = 0, hilen = 0;
    int rc;
    if (i < q->n_keys && q->keys[i].len) {
        if (q->keys[i].len > KERN_KEY_MAX)
            return nines_err(NINES_ETOOBIG, "SCAN start key of %zu bytes", q->keys[i].len);
        memcpy(lo, q->keys[i].data, q->keys[i].len);
        lolen = q->keys[i].len;
    } else if ((rc = sk_key_prefix(r, op->key, op->n_key, "SCAN low key", lo, &lolen)) != 0) {
        return rc;
    }
    if ((rc = sk_key_prefix(r, op->key_hi, op->n_key_hi, "SCAN high key", hi, &hilen)) != 0)
        return rc;
    if (op->after.len > KERN_KEY_MAX)
        return nines_err(NINES_ETOOBIG, "SCAN `after` key of %zu bytes (at most %d)",
                         op->after.len, KERN_KEY_MAX);
    struct ksvc_layout lay;
    struct ksvc_filter flt[KSVC_FILTER_MAX];
    size_t nf = op->n_filters;
    if (nf) {
        sk_layout(r, &lay);
        if ((rc = ksvc_filter_compile(&lay, op->filters, nf, flt)) != 0)
            return rc;
    }
    bool have_hi = hilen > 0;
    if (have_hi) { /* inclusive prefix bound: every key starting with hi sorts below this */
        memset(hi + hilen, 0xff, KERN_KEY_MAX - hilen);
        hilen = KERN_KEY_MAX;
    }
    const uint8_t *after = op->after.len ? op->after.data : NULL;
    size_t afterlen = op->after.len;
    uint32_t limit = op->limit ? op->limit : KSVC_SCAN_DEFAULT;
    if (limit > KSVC_SCAN_MAX)
        limit = KSVC_SCAN_MAX;
    struct kern_bt_cursor *c = malloc(sizeof *c);
    if (!c)
        return nines_err(NINES_ENOMEM, "no memory for a scan cursor");
    kern_bt_cursor_init(c, kern_frag_tree(r->f));
    if (t->scan_resume) {
        rc = op->reverse ? kern_bt_seek_le(c, t->scan_key, t->scan_klen)
                         : kern_bt_seek_ge(c, t->scan_key, t->scan_klen);
    } else {
        t->scan_skipped = 0;
        if (op->reverse) {
            if (after && (!have_hi || kern_key_cmp(after, afterlen, hi, hilen) < 0))
                rc = kern_bt_seek_le(c, after, afterlen);
            else
                rc = have_hi ? kern_bt_seek_le(c, hi, hilen) : kern_bt_last(c);
        } else {
            if (after && (!lolen || kern_key_cmp(after, afterlen, lo, lolen) >= 0))
                rc = kern_bt_seek_ge(c, after, afterlen);
            else
                rc = lolen ? kern_bt_seek_ge(c, lo, lolen) : kern_bt_first(c);
        }
    }
    t->scan_resume = false;
    while (rc == 0 && res->n_rows < limit) {
        if (!op->reverse && have_hi && kern_key_cmp(c->key, c->klen, hi, hilen) > 0)
            break;
        if (op->reverse && lolen && kern_key_cmp(c->key, c->klen, lo, lolen) < 0)
            break;
        if (after && kern_key_cmp(c->key, c->klen, after, afterlen) == 0) {
            rc = op->reverse ? kern_bt_prev(c) : kern_bt_next(c);
            continue; /* the previous page's last key */
        }
        if (nf && t->scan_skipped >= KSVC_SCAN_SKIP_MAX) {
            /* examined enough for one answer: the controller cuts the merge
             * here and the client asks again after this key */
            uint8_t *b = rt_msg_alloc(t->conf, t->scan_klen ? t->scan_klen : 1);
            if (!b) {
                rc = nines_err(NINES_ENOMEM, "no memory for a scan's resume key");
                break;
            }
            memcpy(b, t->scan_key, t->scan_klen);
            res->resume_key = (ProtobufCBinaryData){t->scan_klen, b};
            break;
        }
        rc = sk_lock(k, t, r, c->key, c->klen, KERN_LOCK_S);
        if (rc == SK_WAIT) {
            memcpy(t->scan_key, c->key, c->klen);
            t->scan_klen = c->klen;
            t->scan_resume = true;
            break;
        }
        if (rc)
            break;
        bool match = true;
        if (nf && (rc = ksvc_filter_match(&lay, flt, nf, c->key, c->klen, c->rec, &match)) != 0)
            break;
        if (match) {
            rc = sk_add_row(t->conf, res, r, c->key, c->klen, c->rec);
            if (rc == 0)
                rc = sk_add_key(t->conf, res, c->key, c->klen);
            if (rc)
                break;
        } else {
            t->scan_skipped++;
            memcpy(t->scan_key, c->key, c->klen); /* the last key examined */
            t->scan_klen = c->klen;
        }
        rc = op->reverse ? kern_bt_prev(c) : kern_bt_next(c);
    }
    free(c);
    if (rc == NINES_ENOTFOUND)
        rc = 0;
    return rc;
}

/* ADD: int column += delta (kern_frag_add: logged as ADD, undone
 * logically). Escrow (op->escrow): the caller took an INC lock; no row is
 * returned, since other transactions may increment the record concurrently
 * and its value is not this transaction's to read. Otherwise (X lock) the
 * new row is returned. */
static int sk_add(struct ksvc *k, struct sk_txn *t, const struct sk_rep *r,
                  const Nines__RecordOp *op, const uint8_t *key, size_t klen,
                  Nines__OpResult *res)
{
    unsigned col = op->column;
    if (col >= r->ncols)
        return nines_err(NINES_EINVAL, "ADD column %u: table %s has %u columns", col, r->tname,
                         r->ncols);
    if (r->colkey[col] >= 0)
        return nines_err(NINES_EINVAL, "ADD on key column %s of table %s", r->names[col],
                         r->tname);
    uint8_t ty = r->cols[col].type;
    if (ty != KERN_T_INT64 && ty != KERN_T_INT32)
        return nines_err(NINES_ETYPE, "ADD on column %s of table %s, which is %s, not an "
                         "integer", r->names[col], r->tname, kern_type_name(ty));
    int rc = kern_frag_add(r->f, t->txn, key, klen, col, op->delta, NULL);
    if (rc == NINES_ENOTFOUND && op->escrow)
        return nines_err(rc, "ADD: table %s has no row with that key", r->tname);
    if (rc == NINES_ENOTFOUND) {
        /* a miss does not abort (SQL: UPDATE 0); the fragment took part
         * (its lock is held to the end) but wrote nothing, as a GET */
        res->status = NINES_ENOTFOUND;
        return sk_txn_touch(t, r->table, r->frag, 0);
    }
    if (rc) {
        char why[400]; /* the detail is rewritten below: copy it first */
        snprintf(why, sizeof why, "%s", nines_errdetail());
        return nines_err(rc, "ADD %lld to column %s of table %s: %s", (long long)op->delta,
                         r->names[col], r->tname, why);
    }
    if ((rc = sk_txn_touch(t, r->table, r->frag, 1)) != 0)
        return rc;
    upd_kick(k->u, r->ship);
    if (op->escrow)
        return 0;
    const struct kern_rec *cur;
    if ((rc = kern_frag_get(r->f, key, klen, &cur)) != 0)
        return rc;
    return sk_add_row(t->conf, res, r, key, klen, cur);
}

/* Execute op i of t's request: 0 done, SK_WAIT parked, or an error. */
static int sk_exec(struct ksvc *k, struct sk_txn *t, uint32_t i, Nines__OpResult *res)
{
    const Nines__KernOpReq *q = (const Nines__KernOpReq *)t->req->body;
    const Nines__RecordOp *op = q->ops[i];
    const Nines__Participant *p = q->parts[i];
    struct sk_rep *r = sk_rep_get(k, p->table, p->frag);
    if (!r)
        return nines_err(NINES_ENOTPRIMARY, "node %u holds no replica of table %u fragment %u",
                         k->self, p->table, p->frag);
    if (kern_frag_role(r->f) == KERN_FRAG_PROMOTING)
        return nines_err(NINES_EAGAIN, "node %u is taking over table %s fragment %u (node set "
                         "%llu): retry", k->self, r->tname, r->frag,
                         (unsigned long long)r->ro_epoch);
    if (kern_frag_role(r->f) != KERN_FRAG_PRIMARY)
        return nines_err(NINES_ENOTPRIMARY, "node %u holds the %s replica of table %s fragment "
                         "%u, not the primary", k->self, kern_frag_role_name(kern_frag_role(r->f)),
                         r->tname, r->frag);
    if (r->oos[0])
        return nines_err(NINES_ESTATE, "the primary replica of table %s fragment %u on node %u "
                         "is out of service: %s", r->tname, r->frag, k->self, r->oos);
    if (r->lost)
        return nines_err(NINES_ESTATE, "the primary replica of table %s fragment %u on node %u "
                         "was lost when the node restarted (or was created while it was down) "
                         "and is not rebuilt yet: refused rather than served empty",
                         r->tname, r->frag, k->self);
    switch (op->op) {
    case NINES__OP_TYPE__OP_INSERT:
    case NINES__OP_TYPE__OP_UPDATE:
    case NINES__OP_TYPE__OP_DELETE:
    case NINES__OP_TYPE__OP_ADD: {
        int wrc = sk_write_allowed(k, r);
        if (wrc)
            return wrc;
        if (k->budget && (op->op == NINES__OP_TYPE__OP_INSERT ||
                          op->op == NINES__OP_TYPE__OP_UPDATE)) {
            uint64_t use = sk_table_bytes(k);
            if (use >= k->budget) {
                k->st.refused_budget++;
                return nines_err(NINES_EFULL, "node %u: table data uses %llu MiB (%llu bytes) "
                                 "of its memory budget of %llu MiB (memory_budget_mb): %s into "
                                 "table %s refused; reads and deletes go on", k->self,
                                 (unsigned long long)(use >> 20), (unsigned long long)use,
                                 (unsigned long long)(k->budget >> 20), sk_op_name(op->op),
                                 r->tname);
            }
        }
        break;
    }
    default:
        break;
    }
    uint8_t key[KERN_KEY_MAX];
    size_t klen = 0;
    struct kern_val vals[DICT_MAX_COLS];
    struct kern_rec *rec = NULL;
    const struct kern_rec *cur;
    int rc;
    switch (op->op) {
    case NINES__OP_TYPE__OP_GET:
        if ((rc = sk_key(t->req, r, q, i, key, &klen)) || (rc = sk_route_check(k, r, key, klen)))
            return rc;
        if ((rc = sk_lock(k, t, r, key, klen, KERN_LOCK_S)) != 0)
            return rc;
        if ((rc = sk_txn_touch(t, r->table, r->frag, 0)) != 0)
            return rc;
        rc = kern_frag_get(r->f, key, klen, &cur);
        if (rc == NINES_ENOTFOUND) {
            res->status = NINES_ENOTFOUND; /* a read miss does not abort */
            return 0;
        }
        return rc ? rc : sk_add_row(t->conf, res, r, key, klen, cur);
    case NINES__OP_TYPE__OP_INSERT:
    case NINES__OP_TYPE__OP_UPDATE: {
        struct conv_col cols[DICT_MAX_COLS];
        sk_conv_cols(r, NULL, r->ncols, cols);
        if ((rc = conv_row(cols, r->ncols, op->row, vals)) != 0)
            return rc;
        rc = kern_frag_row(r->f, vals, key, sizeof key, &klen, &rec);
        if (rc)
            return rc;
        if (i < q->n_keys && q->keys[i].len &&
            (q->keys[i].len != klen || memcmp(q->keys[i].data, key, klen) != 0))
            rc = nines_err(NINES_EINVAL, "the encoded key sent for the %s does not match the "
                           "key columns of its row (table %s)", sk_op_name(op->op), r->tname);
        if (rc == 0)
            rc = sk_route_check(k, r, key, klen);
        if (rc == 0)
            rc = sk_lock(k, t, r, key, klen, KERN_LOCK_X);
        if (rc == 0)
            rc = op->op == NINES__OP_TYPE__OP_INSERT
                     ? kern_frag_insert(r->f, t->txn, key, klen, rec, NULL)
                     : kern_frag_update(r->f, t->txn, key, klen, rec, NULL);
        if (rc) {
            kern_rec_free(rec);
            return rc;
        }
        upd_kick(k->u, r->ship);
        return sk_txn_touch(t, r->table, r->frag, 1);
    }
    case NINES__OP_TYPE__OP_DELETE:
        if ((rc = sk_key(t->req, r, q, i, key, &klen)) || (rc = sk_route_check(k, r, key, klen)))
            return rc;
        if ((rc = sk_lock(k, t, r, key, klen, KERN_LOCK_X)) != 0)
            return rc;
        if ((rc = kern_frag_delete(r->f, t->txn, key, klen, NULL)) != 0)
            return rc;
        upd_kick(k->u, r->ship);
        return sk_txn_touch(t, r->table, r->frag, 1);
    case NINES__OP_TYPE__OP_ADD:
        if ((rc = sk_key(t->req, r, q, i, key, &klen)) || (rc = sk_route_check(k, r, key, klen)))
            return rc;
        if ((rc = sk_lock(k, t, r, key, klen, op->escrow ? KERN_LOCK_INC : KERN_LOCK_X)) != 0)
            return rc;
        return sk_add(k, t, r, op, key, klen, res);
    case NINES__OP_TYPE__OP_SCAN:
        if ((rc = sk_txn_touch(t, r->table, r->frag, 0)) != 0)
            return rc;
        return sk_scan(k, t, r, q, i, res);
    default:
        return nines_err(NINES_EINVAL, "unknown operation %d", (int)op->op);
    }
}

/* Run t's request from t->next_op until it finishes (answered) or parks. */
static void sk_run(struct ksvc *k, struct sk_txn *t)
{
    const Nines__KernOpReq *q = (const Nines__KernOpReq *)t->req->body;
    Nines__KernOpConf *c = (Nines__KernOpConf *)t->conf->body;
    for (; t->next_op < q->n_ops; t->next_op++) {
        uint32_t i = t->next_op;
        int rc = sk_exec(k, t, i, c->results[i]);
        if (rc == SK_WAIT) {
            if (!t->req->kept)
                rt_msg_keep(t->req);
            t->st = SK_TX_WAITING_LOCK;
            k->nwaiting++;
            return;
        }
        if (rc < 0) {
            char why[512];
            snprintf(why, sizeof why, "op %u (%s) at node %u: %s", i, sk_op_name(q->ops[i]->op),
                     k->self, nines_errdetail());
            sk_send_ref(k, t->req_from, t->txn, q->seq, rc, why, i);
            sk_req_done(k, t);
            return;
        }
    }
    if (q->prepare && q->value_op && q->value_op <= c->n_results) {
        /* the procedure's value goes to the hsc with this kernel's ready */
        const Nines__OpResult *res = c->results[q->value_op - 1];
        const Nines__Row *row = res && res->n_rows ? res->rows[0] : NULL;
        const Nines__Value *v = row && q->value_col < row->n_values ? row->values[q->value_col]
                                                                     : NULL;
        if (v && v->v_case == NINES__VALUE__V_I64) {
            t->has_value = true;
            t->value = v->i64;
        }
    }
    if (q->prepare) {
        int rc = sk_prepare(k, t, t->conf, &c->frags, &c->n_frags);
        if (rc) {
            char why[512];
            snprintf(why, sizeof why, "prepare at node %u: %s", k->self, nines_errdetail());
            sk_send_ref(k, t->req_from, t->txn, q->seq, rc, why, (uint32_t)q->n_ops);
            sk_req_done(k, t);
            return;
        }
        c->ready = 1;
    }
    struct rt_msg *conf = t->conf;
    t->conf = NULL;
    if (!q->prepare || !sk_dlog_hold(k, t, conf, t->req_from)) /* held: waits for the disk */
        (void)rt_send(k->rt, t->req_from, RT_SVC_TXC, conf);
    sk_req_done(k, t);
}

/* ---- lock events -------------------------------------------------------- */

void sk_on_grant(void *ctx, uint64_t txn, const struct kern_lock_event *ev)
{
    struct ksvc *k = ctx;
    struct sk_txn *t = sk_txn_get(k, txn);
    if (!t || t->st != SK_TX_WAITING_LOCK) {
        NLOG_DEBUG("kern", "lock grant for txn %llu, which is not waiting",
                   (unsigned long long)txn);
        return;
    }
    t->st = SK_TX_ACTIVE;
    k->nwaiting--;
    sk_run(k, t);
}

void sk_on_fail(void *ctx, uint64_t txn, const struct kern_lock_event *ev)
{
    struct ksvc *k = ctx;
    struct sk_txn *t = sk_txn_get(k, txn);
    if (!t || t->st != SK_TX_WAITING_LOCK)
        return;
    t->st = SK_TX_ACTIVE;
    k->nwaiting--;
    const Nines__KernOpReq *q = (const Nines__KernOpReq *)t->req->body;
    char why[512];
    snprintf(why, sizeof why, "op %u (%s) at node %u: %s", t->next_op,
             sk_op_name(q->ops[t->next_op]->op), k->self, ev->detail ? ev->detail : "");
    sk_send_ref(k, t->req_from, t->txn, q->seq, ev->err, why, t->next_op);
    sk_req_done(k, t);
}

/* ---- the request -------------------------------------------------------- */

void ksvc_on_op_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__KernOpReq *q = (const Nines__KernOpReq *)m->body;
    k->cur = m;
    kern_lock_tick(k->locks, rt_now_us(rt) / 1000u);
    struct sk_txn *t = NULL;
    int rc = 0;
    const struct rt_nodeset *ns = rt_nodeset(rt);
    if (!ns->serving)
        rc = nines_err(NINES_ENOTMEMBER, "node %u does not serve (node set %llu): %s", k->self,
                       (unsigned long long)ns->epoch, ns->reason);
    else if (q->txn == 0)
        rc = nines_err(NINES_EINVAL, "KERN_OP_REQ without a transaction id");
    else if (q->n_parts != q->n_ops)
        rc = nines_err(NINES_EINVAL, "KERN_OP_REQ names %zu fragments for %zu ops", q->n_parts,
                       q->n_ops);
    else if (q->n_keys && q->n_keys != q->n_ops)
        rc = nines_err(NINES_EINVAL, "KERN_OP_REQ has %zu keys for %zu ops", q->n_keys,
                       q->n_ops);
    for (size_t i = 0; rc == 0 && i < q->n_ops; i++)
        if (!q->ops[i] || !q->parts[i])
            rc = nines_err(NINES_EINVAL, "KERN_OP_REQ op %zu is empty", i);
    if (rc == 0) /* a fragment being taken over or drained: nothing runs (EAGAIN) */
        rc = sk_tb_admit(k, q, sk_txn_get(k, q->txn));
    if (rc == 0) {
        t = sk_txn_get(k, q->txn);
        if (!t) {
            t = sk_txn_new(k, q->txn, q->ctl, q->hsc);
            if (!t)
                rc = nines_err(NINES_ENOMEM, "no memory for a transaction");
        } else {
            switch (t->st) {
            case SK_TX_ACTIVE:
                if (q->ctl)
                    t->ctl = q->ctl;
                if (q->hsc)
                    t->hsc = q->hsc;
                break;
            case SK_TX_WAITING_LOCK:
                rc = nines_err(NINES_ESTATE, "txn %llu still has a request waiting for a lock "
                               "at node %u", (unsigned long long)q->txn, k->self);
                t = NULL;
                break;
            case SK_TX_PREPARED:
                rc = nines_err(NINES_ESTATE, "txn %llu is prepared at node %u: no more "
                               "operations", (unsigned long long)q->txn, k->self);
                t = NULL;
                break;
            case SK_TX_ENDED:
            case SK_TX_END_FAILED:
                rc = nines_err(NINES_ESTATE, "txn %llu has %s at node %u: no more operations",
                               (unsigned long long)q->txn,
                               t->commit ? "committed" : "aborted", k->self);
                t = NULL;
                break;
            default:
                rc = nines_err(NINES_ESTATE, "txn %llu in bad state %s",
                               (unsigned long long)q->txn, sk_txn_state_name(t->st));
                t = NULL;
                break;
            }
        }
    }
    struct rt_msg *conf = NULL;
    Nines__KernOpConf *c = NULL;
    if (rc == 0) {
        conf = rt_msg_new(rt, NINES__MSG_TYPE__KERN_OP_CONF);
        c = conf ? RT_BODY(conf, Nines__KernOpConf, nines__kern_op_conf__init) : NULL;
        Nines__OpResult **rp = c && q->n_ops ? rt_msg_alloc(conf, q->n_ops * sizeof *rp) : NULL;
        Nines__OpResult *rs = rp ? rt_msg_alloc(conf, q->n_ops * sizeof *rs) : NULL;
        if (!c || (q->n_ops && !rs)) {
            rc = nines_err(NINES_ENOMEM, "no memory for the answer");
        } else {
            for (size_t i = 0; i < q->n_ops; i++) {
                nines__op_result__init(&rs[i]);
                rp[i] = &rs[i];
            }
            c->txn = q->txn;
            c->seq = q->seq;
            c->results = rp;
            c->n_results = q->n_ops;
        }
    }
    if (rc) {
        if (conf)
            rt_msg_free(rt, conf);
        char why[512];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        sk_send_ref(k, m->from, q->txn, q->seq, rc, why, 0);
    } else {
        t->req = m;
        t->conf = conf;
        t->req_from = m->from;
        t->next_op = 0;
        t->scan_resume = false;
        sk_run(k, t);
    }
    sk_after(k);
    k->cur = NULL;
}
