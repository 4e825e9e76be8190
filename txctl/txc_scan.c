/* SCAN results: k-way merge of the rows each fragment's primary kernel
 * returned (each list in key order) into one list in key order, at most
 * the scan's limit, by the encoded keys the kernels return next to the
 * rows (txctl/README.md "Scans"). */
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

/* Does fragment f of the scan hold this key (the routing the controller
 * used: jump hash of a hash table, split points of a range table)? */
static bool in_frag(const struct txc_scan *sc, uint32_t f, const uint8_t *k, size_t len)
{
    if (sc->method != DICT_FRAG_RANGE)
        return dict_jump(dict_hash64(k, len), sc->nfrags) == f;
    /* splits[f - 1] <= key < splits[f]; the copy starts at split0 */
    if (f > 0 && f - 1 >= sc->split0 && f - 1 - sc->split0 < sc->nsplit_copy) {
        const struct dict_key *s = &sc->splits[f - 1 - sc->split0];
        if (kern_key_cmp(k, len, s->bytes, s->len) < 0)
            return false;
    }
    if (f < sc->nsplits && f >= sc->split0 && f - sc->split0 < sc->nsplit_copy) {
        const struct dict_key *s = &sc->splits[f - sc->split0];
        if (kern_key_cmp(k, len, s->bytes, s->len) >= 0)
            return false;
    }
    return true;
}

/* Point head h at the key of row h->pos of kernel op j (the kernel's key
 * bytes, KERN_OP_CONF OpResult.keys): it must be a key, inside the
 * scan's bounds (lo <= key, key <= hi as a prefix bound) and of the
 * fragment asked. */
static int head_key(const struct txc_txn *x, const struct txc_scan *sc, const Nines__OpResult *r,
                    uint32_t j, struct mhead *h)
{
    const struct txc_kop *kop = &x->kops[x->ops[sc->op].kop + j];
    uint32_t frag = x->parts[kop->part].frag;
    const ProtobufCBinaryData *k = &r->keys[h->pos];
    const char *why = NULL;
    if (k->len == 0 || k->len > KERN_KEY_MAX)
        why = "an empty or too long key";
    else if (sc->lolen && kern_key_cmp(k->data, k->len, sc->lo, sc->lolen) < 0)
        why = "a key below the scan's low bound";
    else if (sc->hilen &&
             memcmp(k->data, sc->hi, k->len < sc->hilen ? k->len : sc->hilen) > 0)
        why = "a key above the scan's high bound";
    else if (sc->after && (sc->reverse ? kern_key_cmp(k->data, k->len, sc->after, sc->afterlen) >= 0
                                       : kern_key_cmp(k->data, k->len, sc->after, sc->afterlen) <= 0))
        why = "a key of an earlier page (not beyond `after`)";
    else if (!in_frag(sc, frag, k->data, k->len))
        why = "a key of another fragment";
    if (why)
        return nines_err(NINES_EPROTO, "scan of table id %u: fragment %u from node %u returned "
                         "%s (row %u, %zu key bytes)", sc->table, frag, kop->node, why, h->pos,
                         k->len);
    h->key = k->data;
    h->klen = (uint32_t)k->len;
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
        if (r->n_keys != r->n_rows) {
            const struct txc_kop *k = &x->kops[o->kop + j];
            return nines_err(NINES_EPROTO, "scan of table id %u: fragment %u from node %u "
                             "returned %zu rows but %zu keys", sc->table,
                             x->parts[k->part].frag, k->node, r->n_rows, r->n_keys);
        }
        total += r->n_rows;
        if (!r->n_rows)
            continue;
        heap[nh].list = j;
        heap[nh].pos = 0;
        int rc = head_key(x, sc, r, j, &heap[nh]);
        if (rc)
            return rc;
        nh++;
    }
    for (uint32_t i = nh / 2; i-- > 0;)
        sift_down(sc, heap, nh, i);
    /* fragments whose kernel stopped at its examine budget (filters): past
     * the first such key (in scan order) a fragment may hold rows not
     * examined yet, so the page ends there */
    struct mhead cut = {0};
    for (uint32_t j = 0; j < o->nkop; j++) {
        const ProtobufCBinaryData *rk = &x->kres[o->kop + j]->resume_key;
        if (!rk->len)
            continue;
        if (rk->len > KERN_KEY_MAX) {
            const struct txc_kop *k = &x->kops[o->kop + j];
            return nines_err(NINES_EPROTO, "scan of table id %u: fragment %u from node %u "
                             "returned a resume key of %zu bytes", sc->table,
                             x->parts[k->part].frag, k->node, rk->len);
        }
        struct mhead h = {.key = rk->data, .klen = (uint32_t)rk->len};
        if (!cut.key || hcmp(sc, &h, &cut) < 0)
            cut = h;
    }
    size_t cap = total < sc->limit ? total : sc->limit;
    out->rows = cap ? rt_msg_alloc(a, cap * sizeof *out->rows) : NULL;
    if (cap && !out->rows)
        return nines_err(NINES_ENOMEM, "no memory for %zu scanned rows", cap);
    struct mhead last = {0};
    while (out->n_rows < cap && nh) {
        struct mhead *top = &heap[0];
        const Nines__OpResult *r = x->kres[o->kop + top->list];
        if (cut.key && hcmp(sc, top, &cut) > 0)
            break;
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
            int rc = head_key(x, sc, r, top->list, top);
            if (rc)
                return rc;
        } else {
            heap[0] = heap[--nh];
        }
        sift_down(sc, heap, nh, 0);
    }
    /* where the next page starts: after the last row of a full page, or
     * after the cut; nothing when the range is done */
    if (out->n_rows == sc->limit)
        out->resume_key = (ProtobufCBinaryData){last.klen, (uint8_t *)last.key};
    else if (cut.key)
        out->resume_key = (ProtobufCBinaryData){cut.klen, (uint8_t *)cut.key};
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
