/* SCAN results: k-way merge of the rows each fragment's primary kernel
 * returned (each list in key order) into one list in key order, at most
 * the scan's limit (txctl/README.md "Scans"). */
#include "txc_int.h"

#include <stdio.h>
#include <string.h>

#include "nassert.h"
#include "nines/errors.h"

/* Head of one fragment's row list in the merge heap. */
struct mhead {
    const uint8_t *key;
    uint32_t klen;
    uint32_t list;      /* kernel op index within the scan */
    uint32_t pos;       /* row index in that list */
};

/* A wire value of key column j of a returned row as a typed value. */
static int key_val(const struct txc_scan *sc, uint32_t j, const Nines__Value *v,
                   struct kern_val *out)
{
    uint8_t ty = sc->kc[j].type;
    int vc = v ? (int)v->v_case : 0;
    if (vc == NINES__VALUE__V_IS_NULL) {
        *out = kern_v_null(ty);
        return 0;
    }
    switch (ty) {
    case KERN_T_INT32:
        if (vc != NINES__VALUE__V_I64 || v->i64 < INT32_MIN || v->i64 > INT32_MAX)
            break;
        *out = kern_v_i32((int32_t)v->i64);
        return 0;
    case KERN_T_INT64:
        if (vc != NINES__VALUE__V_I64)
            break;
        *out = kern_v_i64(v->i64);
        return 0;
    case KERN_T_TS:
        if (vc != NINES__VALUE__V_I64)
            break;
        *out = kern_v_ts(v->i64);
        return 0;
    case KERN_T_DOUBLE:
        if (vc != NINES__VALUE__V_F64)
            break;
        *out = kern_v_dbl(v->f64);
        return 0;
    case KERN_T_FSTR:
    case KERN_T_VSTR:
        if (vc != NINES__VALUE__V_STR || !v->str)
            break;
        *out = kern_v_bytes(ty, v->str, (uint32_t)strlen(v->str));
        return 0;
    case KERN_T_FBYTES:
    case KERN_T_VBYTES:
        if (vc != NINES__VALUE__V_RAW)
            break;
        *out = kern_v_bytes(ty, v->raw.data, (uint32_t)v->raw.len);
        return 0;
    default:
        break;
    }
    return nines_err(NINES_EPROTO, "table id %u: a scanned row's key column %u (type %s) has "
                     "a value of the wrong kind (%d)", sc->table, sc->pk[j], kern_type_name(ty),
                     vc);
}

/* The encoded primary key of a returned row (copied into a's arena). */
static int row_key(struct rt_msg *a, const struct txc_scan *sc, const Nines__Row *row,
                   struct mhead *h)
{
    struct kern_val kv[DICT_MAX_PK];
    if (!row)
        return nines_err(NINES_EPROTO, "table id %u: a scan returned an empty row", sc->table);
    for (uint32_t j = 0; j < sc->npk; j++) {
        if (sc->pk[j] >= row->n_values)
            return nines_err(NINES_EPROTO, "table id %u: a scanned row has %zu values, the key "
                             "column is number %u", sc->table, row->n_values, sc->pk[j]);
        int rc = key_val(sc, j, row->values[sc->pk[j]], &kv[j]);
        if (rc)
            return rc;
    }
    uint8_t buf[KERN_KEY_MAX];
    int len = kern_key_encode(sc->kc, sc->npk, kv, buf, sizeof buf);
    if (len < 0) {
        char why[300];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        return nines_err(NINES_EPROTO, "table id %u: a scanned row's key does not encode: %s",
                         sc->table, why);
    }
    uint8_t *k = rt_msg_alloc(a, (size_t)len);
    if (!k)
        return nines_err(NINES_ENOMEM, "no memory for a %d-byte key", len);
    memcpy(k, buf, (size_t)len);
    h->key = k;
    h->klen = (uint32_t)len;
    return 0;
}

/* Order of the output: ascending keys, or descending for a reverse scan. */
static int hcmp(const struct txc_scan *sc, const struct mhead *a, const struct mhead *b)
{
    int c = kern_key_cmp(a->key, a->klen, b->key, b->klen);
    return sc->reverse ? -c : c;
}

static void sift_down(const struct txc_scan *sc, struct mhead *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < n && hcmp(sc, &h[l], &h[m]) < 0)
            m = l;
        if (l + 1 < n && hcmp(sc, &h[l + 1], &h[m]) < 0)
            m = l + 1;
        if (m == i)
            return;
        struct mhead tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

static int merge_one(struct txc_txn *x, const struct txc_scan *sc, struct rt_msg *a)
{
    const struct txc_op *o = &x->ops[sc->op];
    Nines__OpResult *out = rt_msg_alloc(a, sizeof *out);
    struct mhead *heap = o->nkop ? rt_msg_alloc(a, o->nkop * sizeof *heap) : NULL;
    if (!out || (o->nkop && !heap))
        return nines_err(NINES_ENOMEM, "no memory to merge a scan");
    nines__op_result__init(out);
    size_t total = 0;
    uint32_t nh = 0;
    for (uint32_t j = 0; j < o->nkop; j++) {
        const Nines__OpResult *r = x->kres[o->kop + j];
        if (!r)
            return nines_err(NINES_EPROTO, "scan of table id %u: no rows from fragment %u", sc->table,
                             x->parts[x->kops[o->kop + j].part].frag);
        if (r->status < 0 && !out->status)
            out->status = r->status;
        total += r->n_rows;
        if (!r->n_rows)
            continue;
        heap[nh].list = j;
        heap[nh].pos = 0;
        int rc = row_key(a, sc, r->rows[0], &heap[nh]);
        if (rc)
            return rc;
        nh++;
    }
    for (uint32_t i = nh / 2; i-- > 0;)
        sift_down(sc, heap, nh, i);
    size_t cap = total < sc->limit ? total : sc->limit;
    out->rows = cap ? rt_msg_alloc(a, cap * sizeof *out->rows) : NULL;
    if (cap && !out->rows)
        return nines_err(NINES_ENOMEM, "no memory for %zu scanned rows", cap);
    struct mhead last = {0};
    while (out->n_rows < cap && nh) {
        struct mhead *top = &heap[0];
        const Nines__OpResult *r = x->kres[o->kop + top->list];
        if (out->n_rows && hcmp(sc, top, &last) <= 0) {
            const struct txc_kop *k = &x->kops[o->kop + top->list];
            return nines_err(NINES_EPROTO, "scan of table id %u: rows of fragment %u from node "
                             "%u are not in %s key order (or repeat another fragment's key)",
                             sc->table, x->parts[k->part].frag, k->node,
                             sc->reverse ? "descending" : "ascending");
        }
        out->rows[out->n_rows++] = r->rows[top->pos];
        last = *top;
        if (++top->pos < r->n_rows) {
            int rc = row_key(a, sc, r->rows[top->pos], top);
            if (rc)
                return rc;
        } else {
            heap[0] = heap[--nh];
        }
        sift_down(sc, heap, nh, 0);
    }
    x->results[sc->op] = out;
    return 0;
}

int txc_scan_merge(struct txc *t, struct txc_txn *x, struct rt_msg *arena, uint32_t *failed_op)
{
    (void)t;
    *failed_op = 0;
    for (uint32_t s = 0; s < x->nscans; s++) {
        const struct txc_scan *sc = &x->scans[s];
        N_ASSERT(sc->op < x->nops);
        int rc = merge_one(x, sc, arena);
        if (rc) {
            *failed_op = sc->op;
            return rc;
        }
    }
    return 0;
}
