/* The one wire value -> kernel value conversion (README.md "Rules"). */
#include "conv.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dict/dict.h"
#include "nines/errors.h"

int conv_col_of(const struct dict_table *tb, uint32_t ci, struct conv_col *out)
{
    const struct dict_column *c = &tb->def.cols[ci];
    int kt = kern_type_from_dict(c->type);
    if (kt < 0)
        return nines_err(NINES_ETYPE, "table %s column %s has unknown type code %u",
                         tb->def.name, c->name, c->type);
    out->table = tb->def.name;
    out->name = c->name;
    out->kc.type = (uint8_t)kt;
    out->kc.nullable = c->nullable;
    out->kc.size = c->size;
    return 0;
}

void conv_type_text(const struct kern_col *kc, char *buf, size_t n)
{
    switch (kc->type) {
    case KERN_T_INT32:
        snprintf(buf, n, "int32");
        break;
    case KERN_T_INT64:
        snprintf(buf, n, "int64");
        break;
    case KERN_T_DOUBLE:
        snprintf(buf, n, "double");
        break;
    case KERN_T_TS:
        snprintf(buf, n, "timestamp");
        break;
    case KERN_T_FSTR:
        snprintf(buf, n, "string(%" PRIu32 ")", kc->size);
        break;
    case KERN_T_VSTR:
        snprintf(buf, n, "varstring(%" PRIu32 ")", kc->size);
        break;
    case KERN_T_FBYTES:
        snprintf(buf, n, "bytes(%" PRIu32 ")", kc->size);
        break;
    case KERN_T_VBYTES:
        snprintf(buf, n, "varbytes(%" PRIu32 ")", kc->size);
        break;
    default:
        snprintf(buf, n, "type %u", kc->type);
        break;
    }
}

void conv_value_text(const Nines__Value *v, char *buf, size_t n)
{
    switch (v ? v->v_case : NINES__VALUE__V__NOT_SET) {
    case NINES__VALUE__V_IS_NULL:
        snprintf(buf, n, "NULL");
        break;
    case NINES__VALUE__V_I64:
        snprintf(buf, n, "integer %" PRId64, v->i64);
        break;
    case NINES__VALUE__V_F64:
        snprintf(buf, n, "double %g", v->f64);
        break;
    case NINES__VALUE__V_STR: {
        const char *s = v->str ? v->str : "";
        size_t l = strlen(s);
        snprintf(buf, n, "string '%.40s'%s (%zu bytes)", s, l > 40 ? "..." : "", l);
        break;
    }
    case NINES__VALUE__V_RAW:
        snprintf(buf, n, "bytes value of %zu bytes", v->raw.len);
        break;
    case NINES__VALUE__V__NOT_SET:
        snprintf(buf, n, "no value");
        break;
    default:
        snprintf(buf, n, "a value of unknown kind %d", (int)v->v_case);
        break;
    }
}

/* The wire kind a column type takes, for details. */
static const char *kind_wanted(unsigned kt)
{
    switch (kt) {
    case KERN_T_INT32:
    case KERN_T_INT64:
    case KERN_T_TS:
        return "an integer (i64)";
    case KERN_T_DOUBLE:
        return "a double (f64)";
    case KERN_T_FSTR:
    case KERN_T_VSTR:
        return "a string (str)";
    default:
        return "bytes (raw)";
    }
}

int conv_value(const struct conv_col *c, const Nines__Value *v, struct kern_val *out)
{
    const struct kern_col *kc = &c->kc;
    unsigned kt = kc->type;
    int vc = v ? (int)v->v_case : NINES__VALUE__V__NOT_SET;
    /* the texts for a detail are made only on the error paths: formatting
     * them for every value cost several per cent of a node's CPU */
    char ty[32], what[96];
#define CONV_TEXTS() (conv_type_text(kc, ty, sizeof ty), conv_value_text(v, what, sizeof what))
    if (vc == NINES__VALUE__V_IS_NULL) {
        if (!kc->nullable && (CONV_TEXTS(), 1))
            return nines_err(NINES_ETYPE, "table %s column %s (%s) is NOT NULL but got NULL",
                             c->table, c->name, ty);
        *out = kern_v_null(kt);
        return 0;
    }
    bool ok = false;
    size_t len = 0;
    switch (kt) {
    case KERN_T_INT32:
        if (vc == NINES__VALUE__V_I64) {
            if ((v->i64 < INT32_MIN || v->i64 > INT32_MAX) && (CONV_TEXTS(), 1))
                return nines_err(NINES_ETYPE, "table %s column %s (int32): %s is out of the "
                                 "int32 range [%" PRId32 ", %" PRId32 "]", c->table, c->name,
                                 what, INT32_MIN, INT32_MAX);
            *out = kern_v_i32((int32_t)v->i64);
            ok = true;
        }
        break;
    case KERN_T_INT64:
    case KERN_T_TS:
        if (vc == NINES__VALUE__V_I64) {
            *out = kt == KERN_T_TS ? kern_v_ts(v->i64) : kern_v_i64(v->i64);
            ok = true;
        }
        break;
    case KERN_T_DOUBLE:
        if (vc == NINES__VALUE__V_F64) {
            *out = kern_v_dbl(v->f64);
            ok = true;
        }
        break;
    case KERN_T_FSTR:
    case KERN_T_VSTR:
        if (vc == NINES__VALUE__V_STR) {
            const char *s = v->str ? v->str : ""; /* protobuf-c packs NULL as "" */
            len = strlen(s);
            *out = kern_v_bytes(kt, s, (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len));
            ok = true;
        }
        break;
    case KERN_T_FBYTES:
    case KERN_T_VBYTES:
        if (vc == NINES__VALUE__V_RAW) {
            len = v->raw.len;
            *out = kern_v_bytes(kt, len ? v->raw.data : (const void *)"",
                                (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len));
            ok = true;
        }
        break;
    default:
        return nines_err(NINES_ETYPE, "table %s column %s has unknown kernel type %u", c->table,
                         c->name, kt);
    }
    if (!ok && (CONV_TEXTS(), 1))
        return nines_err(NINES_ETYPE, "table %s column %s (%s) takes %s, got %s", c->table,
                         c->name, ty, kind_wanted(kt), what);
    if (kern_type_is_fixed_bytes(kt) && len != kc->size && (CONV_TEXTS(), 1))
        return nines_err(NINES_ETYPE, "table %s column %s (%s): %s is not exactly %" PRIu32
                         " bytes (fixed-width values are not padded)", c->table, c->name, ty,
                         what, kc->size);
    if ((kt == KERN_T_VSTR || kt == KERN_T_VBYTES) && kc->size && len > kc->size &&
        (CONV_TEXTS(), 1))
        return nines_err(NINES_ETYPE, "table %s column %s (%s): %s is longer than %" PRIu32
                         " bytes", c->table, c->name, ty, what, kc->size);
    if (kern_val_check(kc, 0, out)) { /* a bad column definition: say so in its words */
        char why[200];
        CONV_TEXTS();
        snprintf(why, sizeof why, "%s", nines_errdetail());
        return nines_err(NINES_ETYPE, "table %s column %s (%s), %s: %s", c->table, c->name, ty,
                         what, why);
    }
    return 0;
#undef CONV_TEXTS
}

int conv_row(const struct conv_col *cols, uint32_t ncols, const Nines__Row *row,
             struct kern_val *out)
{
    const char *table = ncols ? cols[0].table : "?";
    if (!row)
        return nines_err(NINES_EINVAL, "table %s: the op has no row", table);
    if (row->n_values != ncols)
        return nines_err(NINES_ETYPE, "table %s has %" PRIu32 " columns but the row has %zu "
                         "values", table, ncols, row->n_values);
    for (uint32_t i = 0; i < ncols; i++) {
        int rc = conv_value(&cols[i], row->values[i], &out[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int conv_key(const struct conv_col *kcols, uint32_t npk, Nines__Value *const *v, size_t n,
             bool prefix, const char *what, uint8_t *buf, size_t cap)
{
    const char *table = npk ? kcols[0].table : "?";
    if (npk == 0 || npk > DICT_MAX_PK)
        return nines_err(NINES_ETYPE, "table %s: a key of %" PRIu32 " columns (1..%d)", table,
                         npk, DICT_MAX_PK);
    if (n > npk || (!prefix && n != npk)) {
        /* name the first column without a value, or the last key column */
        const struct conv_col *c = &kcols[n < npk ? n : npk - 1];
        return nines_err(NINES_ETYPE, "table %s has %" PRIu32 " key column%s but %zu %s value%s "
                         "%s given (column %s %s)", table, npk, npk == 1 ? "" : "s", n, what,
                         n == 1 ? "" : "s", n == 1 ? "was" : "were", c->name,
                         n < npk ? "has no value" : "is the last key column");
    }
    if (n == 0)
        return 0;
    struct kern_col kc[DICT_MAX_PK];
    struct kern_val kv[DICT_MAX_PK];
    for (size_t j = 0; j < n; j++) {
        int rc = conv_value(&kcols[j], v[j], &kv[j]);
        if (rc)
            return rc;
        kc[j] = kcols[j].kc;
    }
    int len = kern_key_encode(kc, (unsigned)n, kv, buf, cap);
    if (len < 0) {
        char why[200];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        return nines_err(len, "table %s %s: %s", table, what, why);
    }
    return len;
}
