/* The primary's increment operation (kern_frag_add) and the helpers undo
 * and redo share: which columns can be incremented, and the record with a
 * column moved by a delta. README "Log records and CLRs" (ADD) and
 * "Escrow bounds". */
#include "kern_frag_int.h"

#include "nassert.h"
#include "nines/errors.h"

#include <stdlib.h>

int frag_add_column(const struct kern_frag *f, unsigned column, unsigned *rcol, int64_t *lo,
                    int64_t *hi)
{
    if (column >= f->ncols)
        return nines_err(NINES_EINVAL, "ADD on fragment %u.%u: column %u, the table has %u",
                         f->table, f->id, column, f->ncols);
    unsigned i = 0;
    while (i < f->nrcols && f->rmap[i] != column)
        i++;
    if (i == f->nrcols)
        return nines_err(NINES_EINVAL, "ADD on fragment %u.%u: column %u is a key column",
                         f->table, f->id, column);
    switch (f->cols[column].type) {
    case KERN_T_INT64:
        *lo = INT64_MIN;
        *hi = INT64_MAX;
        break;
    case KERN_T_INT32:
        *lo = INT32_MIN;
        *hi = INT32_MAX;
        break;
    default:
        return nines_err(NINES_ETYPE, "ADD on fragment %u.%u: column %u is %s, not int32 or "
                         "int64", f->table, f->id, column,
                         kern_type_name(f->cols[column].type));
    }
    *rcol = i;
    return 0;
}

int frag_add_image(struct kern_frag *f, const struct kern_rec *cur, unsigned rcol, int64_t delta,
                   int sub, int64_t lo, int64_t hi, struct kern_rec **out, int64_t *val)
{
    struct kern_val *v = f->scratch; /* ncols >= nrcols values */
    int rc = kern_rec_decode(cur, f->rcols, f->nrcols, v);
    if (rc < 0)
        return rc;
    struct kern_val *c = &v[rcol];
    if (c->null)
        return nines_err(NINES_EINVAL, "ADD on fragment %u.%u: column %u is NULL", f->table,
                         f->id, f->rmap[rcol]);
    int64_t x = c->type == KERN_T_INT32 ? c->u.i32 : c->u.i64, y;
    int ovf = sub ? __builtin_sub_overflow(x, delta, &y) : __builtin_add_overflow(x, delta, &y);
    if (ovf || y < lo || y > hi)
        return nines_err(NINES_ETOOBIG, "ADD on fragment %u.%u: %lld %s %lld overflows "
                         "%s column %u", f->table, f->id, (long long)x, sub ? "-" : "+",
                         (long long)delta, kern_type_name(c->type), f->rmap[rcol]);
    if (c->type == KERN_T_INT32)
        c->u.i32 = (int32_t)y;
    else
        c->u.i64 = y;
    struct kern_rec *r;
    if ((rc = kern_rec_build(f->rcols, f->nrcols, v, 0, &r)) < 0)
        return rc;
    r->flags = cur->flags;
    *out = r;
    *val = y;
    return 0;
}

int kern_frag_add(struct kern_frag *f, uint64_t txn, const void *key, size_t klen,
                  unsigned column, int64_t delta, uint64_t *lsn)
{
    int rc = frag_op_begin(f, "add", txn, key, klen);
    if (rc < 0)
        return rc;
    unsigned rcol;
    int64_t lo, hi, val;
    if ((rc = frag_add_column(f, column, &rcol, &lo, &hi)) < 0)
        return rc;
    struct kern_rec *cur;
    if ((rc = kern_bt_get(f->bt, key, klen, &cur)) < 0)
        return nines_err(rc, "ADD in fragment %u.%u: key of %zu bytes absent", f->table, f->id,
                         klen);
    struct kern_rec *rec;
    if ((rc = frag_add_image(f, cur, rcol, delta, 0, lo, hi, &rec, &val)) < 0)
        return rc;
    struct frag_txn *t;
    int added;
    if ((rc = frag_txn_get(f, txn, &t, &added)) < 0) {
        kern_rec_free(rec);
        return rc;
    }
    struct kern_logrec r = frag_op_rec(f, t, KERN_LOG_ADD, key, klen);
    r.before = (const uint8_t *)cur;
    r.blen = (uint32_t)kern_rec_bytes(cur);
    r.after = (const uint8_t *)rec;
    r.alen = (uint32_t)kern_rec_bytes(rec);
    r.column = column;
    r.delta = delta;
    if ((rc = frag_esc_hold(f, t, key, klen, column, val, delta, lo, hi, r.lsn, 1)) < 0) {
        kern_rec_free(rec);
        if (added)
            frag_txn_remove(f, txn);
        return rc;
    }
    size_t n = kern_logrec_size(&r);
    uint8_t *space;
    if ((rc = kern_log_reserve(f->log, n, &space)) < 0) {
        frag_esc_drop(f, t, r.lsn);
        kern_rec_free(rec);
        if (added)
            frag_txn_remove(f, txn);
        return rc;
    }
    rec->sid = r.sid;
    struct kern_rec *old = NULL;
    rc = kern_bt_update(f->bt, key, klen, rec, &old);
    N_ASSERT(rc == 0 && old == cur); /* present, and an update allocates nothing */
    frag_log_put(f, space, n, &r);
    kern_rec_free(old);
    frag_op_done(f, t, r.lsn, lsn);
    return 0;
}
