/* Values and rows: nines_value <-> nines.Value (proto/nines_txn.proto). */
#include "cli_int.h"

#include <string.h>

struct nines_row {
    size_t n;
    struct nines_value v[];
};

int cli_val_to_pb(struct arena *a, const struct nines_value *v, Nines__Value *out)
{
    nines__value__init(out);
    switch (v->type) {
    case NINES_V_NULL:
        out->v_case = NINES__VALUE__V_IS_NULL;
        out->is_null = 1;
        return 0;
    case NINES_V_INT64:
        out->v_case = NINES__VALUE__V_I64;
        out->i64 = v->u.i64;
        return 0;
    case NINES_V_DOUBLE:
        out->v_case = NINES__VALUE__V_F64;
        out->f64 = v->u.f64;
        return 0;
    case NINES_V_STRING: {
        if (v->u.s.len && !v->u.s.p)
            return nines_err(NINES_EINVAL, "string value of %zu bytes with a NULL pointer",
                             v->u.s.len);
        if (v->u.s.len && memchr(v->u.s.p, 0, v->u.s.len))
            return nines_err(NINES_EINVAL, "string value of %zu bytes contains a NUL byte "
                             "(use nines_v_bytes)", v->u.s.len);
        char *s = arena_alloc(a, v->u.s.len + 1);
        if (!s)
            return nines_err(NINES_ENOMEM, "string value of %zu bytes", v->u.s.len);
        if (v->u.s.len)
            memcpy(s, v->u.s.p, v->u.s.len);
        s[v->u.s.len] = '\0';
        out->v_case = NINES__VALUE__V_STR;
        out->str = s;
        return 0;
    }
    case NINES_V_BYTES:
        if (v->u.s.len && !v->u.s.p)
            return nines_err(NINES_EINVAL, "bytes value of %zu bytes with a NULL pointer",
                             v->u.s.len);
        out->v_case = NINES__VALUE__V_RAW;
        out->raw.len = v->u.s.len;
        out->raw.data = arena_alloc(a, v->u.s.len ? v->u.s.len : 1);
        if (!out->raw.data)
            return nines_err(NINES_ENOMEM, "bytes value of %zu bytes", v->u.s.len);
        if (v->u.s.len)
            memcpy(out->raw.data, v->u.s.p, v->u.s.len); /* buffered ops outlive the caller's */
        return 0;
    default:
        return nines_err(NINES_ETYPE, "value type tag %d is not a nines_vtype", (int)v->type);
    }
}

int cli_vals_to_pb(struct arena *a, const struct nines_value *v, size_t n, Nines__Value ***out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    if (!v)
        return nines_err(NINES_EINVAL, "%zu values given with a NULL array", n);
    Nines__Value **pp = arena_alloc(a, n * sizeof *pp);
    Nines__Value *vals = arena_alloc(a, n * sizeof *vals);
    if (!pp || !vals)
        return nines_err(NINES_ENOMEM, "%zu values", n);
    for (size_t i = 0; i < n; i++) {
        int rc = cli_val_to_pb(a, &v[i], &vals[i]);
        if (rc)
            return nines_err(rc, "value %zu: %s", i, nines_errdetail());
        pp[i] = &vals[i];
    }
    *out = pp;
    return 0;
}

int cli_row_from_pb(struct arena *a, const Nines__Row *r, struct nines_row **out)
{
    size_t n = r ? r->n_values : 0;
    struct nines_row *row = arena_alloc(a, sizeof *row + n * sizeof row->v[0]);
    if (!row)
        return nines_err(NINES_ENOMEM, "row of %zu columns", n);
    row->n = n;
    for (size_t i = 0; i < n; i++) {
        const Nines__Value *pv = r->values[i];
        struct nines_value *v = &row->v[i];
        memset(v, 0, sizeof *v);
        switch (pv->v_case) {
        case NINES__VALUE__V__NOT_SET:
        case NINES__VALUE__V_IS_NULL:
            v->type = NINES_V_NULL;
            break;
        case NINES__VALUE__V_I64:
            v->type = NINES_V_INT64;
            v->u.i64 = pv->i64;
            break;
        case NINES__VALUE__V_F64:
            v->type = NINES_V_DOUBLE;
            v->u.f64 = pv->f64;
            break;
        case NINES__VALUE__V_STR: {
            size_t len = strlen(pv->str);
            char *s = arena_alloc(a, len + 1);
            if (!s)
                return nines_err(NINES_ENOMEM, "string of %zu bytes", len);
            memcpy(s, pv->str, len + 1);
            v->type = NINES_V_STRING;
            v->u.s.p = s;
            v->u.s.len = len;
            break;
        }
        case NINES__VALUE__V_RAW: {
            uint8_t *b = arena_alloc(a, pv->raw.len ? pv->raw.len : 1);
            if (!b)
                return nines_err(NINES_ENOMEM, "bytes of %zu", pv->raw.len);
            if (pv->raw.len)
                memcpy(b, pv->raw.data, pv->raw.len);
            v->type = NINES_V_BYTES;
            v->u.s.p = b;
            v->u.s.len = pv->raw.len;
            break;
        }
        default:
            return nines_err(NINES_EPROTO, "row column %zu has unknown value case %d", i,
                             (int)pv->v_case);
        }
    }
    *out = row;
    return 0;
}

size_t nines_row_ncols(const nines_row *r) { return r ? r->n : 0; }

struct nines_value nines_row_value(const nines_row *r, size_t i)
{
    if (!r || i >= r->n)
        return nines_v_null();
    return r->v[i];
}
