/* SCAN filters: compile RecordOp.filters against a table's layout, check
 * rows against them (README "Scan filters"). */
#include "ksvc_filter.h"

#include "conv/conv.h"
#include "kernel/kern_key.h"
#include "nines/errors.h"

#include <math.h>
#include <string.h>

static const char *cmp_name(unsigned c)
{
    switch (c) {
    case NINES__FILTER_CMP__CMP_EQ:
        return "=";
    case NINES__FILTER_CMP__CMP_NE:
        return "<>";
    case NINES__FILTER_CMP__CMP_LT:
        return "<";
    case NINES__FILTER_CMP__CMP_LE:
        return "<=";
    case NINES__FILTER_CMP__CMP_GT:
        return ">";
    case NINES__FILTER_CMP__CMP_GE:
        return ">=";
    case NINES__FILTER_CMP__CMP_IS_NULL:
        return "IS NULL";
    case NINES__FILTER_CMP__CMP_IS_NOT_NULL:
        return "IS NOT NULL";
    default:
        return NULL;
    }
}

int ksvc_filter_compile(const struct ksvc_layout *l, Nines__ScanFilter *const *f, size_t n,
                        struct ksvc_filter *out)
{
    if (n > KSVC_FILTER_MAX)
        return nines_err(NINES_EINVAL, "SCAN of table %s has %zu filters, at most %d", l->table,
                         n, KSVC_FILTER_MAX);
    for (size_t i = 0; i < n; i++) {
        const Nines__ScanFilter *x = f[i];
        if (!x)
            return nines_err(NINES_EINVAL, "SCAN of table %s: filter %zu is empty", l->table, i);
        if (x->column >= l->ncols)
            return nines_err(NINES_EINVAL, "SCAN of table %s: filter %zu names column %u, the "
                             "table has %u", l->table, i, x->column, l->ncols);
        const char *cn = cmp_name((unsigned)x->cmp);
        if (!cn)
            return nines_err(NINES_EINVAL, "SCAN of table %s: filter %zu on column %s has "
                             "unknown comparison %d", l->table, i, l->names[x->column], x->cmp);
        out[i] = (struct ksvc_filter){.col = x->column, .cmp = (uint8_t)x->cmp};
        if (x->cmp == NINES__FILTER_CMP__CMP_IS_NULL || x->cmp == NINES__FILTER_CMP__CMP_IS_NOT_NULL)
            continue;
        if (!x->value || x->value->v_case == NINES__VALUE__V__NOT_SET ||
            x->value->v_case == NINES__VALUE__V_IS_NULL)
            return nines_err(NINES_EINVAL, "SCAN of table %s: filter %zu (%s %s) has no value or "
                             "NULL (NULL compares with IS_NULL)", l->table, i,
                             l->names[x->column], cn);
        /* the value as the column's kind, whatever its width: a longer or
         * shorter string simply compares unequal */
        struct conv_col cc = {l->table, l->names[x->column], l->cols[x->column]};
        cc.kc.nullable = 1;
        if (cc.kc.type == KERN_T_FSTR || cc.kc.type == KERN_T_VSTR)
            cc.kc.type = KERN_T_VSTR, cc.kc.size = 0;
        else if (cc.kc.type == KERN_T_FBYTES || cc.kc.type == KERN_T_VBYTES)
            cc.kc.type = KERN_T_VBYTES, cc.kc.size = 0;
        int rc = conv_value(&cc, x->value, &out[i].v);
        if (rc)
            return rc;
    }
    return 0;
}

static int cmp3(int64_t a, int64_t b) { return a < b ? -1 : a > b; }

int ksvc_val_cmp(const struct kern_val *a, const struct kern_val *b)
{
    switch (a->type) {
    case KERN_T_INT32:
    case KERN_T_INT64:
    case KERN_T_TS: {
        int64_t x = a->type == KERN_T_INT32 ? a->u.i32 : a->u.i64;
        int64_t y = b->type == KERN_T_INT32 ? b->u.i32 : b->u.i64;
        return cmp3(x, y);
    }
    case KERN_T_DOUBLE: {
        bool na = isnan(a->u.d), nb = isnan(b->u.d);
        if (na || nb)
            return na - nb; /* NaN above everything, equal to itself */
        return a->u.d < b->u.d ? -1 : a->u.d > b->u.d;
    }
    default: { /* strings and byte strings */
        size_t m = a->len < b->len ? a->len : b->len;
        int c = m ? memcmp(a->u.p, b->u.p, m) : 0;
        return c ? (c < 0 ? -1 : 1) : cmp3(a->len, b->len);
    }
    }
}

static bool holds(unsigned cmp, int c)
{
    switch (cmp) {
    case NINES__FILTER_CMP__CMP_EQ:
        return c == 0;
    case NINES__FILTER_CMP__CMP_NE:
        return c != 0;
    case NINES__FILTER_CMP__CMP_LT:
        return c < 0;
    case NINES__FILTER_CMP__CMP_LE:
        return c <= 0;
    case NINES__FILTER_CMP__CMP_GT:
        return c > 0;
    case NINES__FILTER_CMP__CMP_GE:
        return c >= 0;
    default:
        return false; /* compile admits no other */
    }
}

int ksvc_filter_match(const struct ksvc_layout *l, const struct ksvc_filter *f, size_t n,
                      const uint8_t *key, size_t klen, const struct kern_rec *rec, bool *match)
{
    struct kern_val kv[DICT_MAX_PK];
    static _Thread_local uint8_t kbuf[KERN_KEY_MAX];
    bool key_done = false;
    *match = false;
    for (size_t i = 0; i < n; i++) {
        struct kern_val v;
        int ki = l->colkey[f[i].col];
        if (ki >= 0) {
            if (!key_done) {
                if (l->npk > DICT_MAX_PK)
                    return nines_err(NINES_ECORRUPT, "table %s: %u key columns", l->table,
                                     l->npk);
                if (klen > sizeof kbuf)
                    return nines_err(NINES_ECORRUPT, "table %s: a %zu-byte key", l->table, klen);
                int rc = kern_key_decode(l->kcols, l->npk, key, klen, kv, kbuf, sizeof kbuf);
                if (rc < 0)
                    return rc;
                key_done = true;
            }
            v = kv[ki];
        } else {
            int rc = kern_rec_col(rec, l->rcols, l->nrc, (unsigned)l->colrec[f[i].col], &v);
            if (rc < 0)
                return rc;
        }
        bool ok;
        if (f[i].cmp == NINES__FILTER_CMP__CMP_IS_NULL)
            ok = v.null;
        else if (f[i].cmp == NINES__FILTER_CMP__CMP_IS_NOT_NULL)
            ok = !v.null;
        else
            ok = !v.null && holds(f[i].cmp, ksvc_val_cmp(&v, &f[i].v));
        if (!ok)
            return 0;
    }
    *match = true;
    return 0;
}
