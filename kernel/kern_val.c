/* Column type names and value checks shared by the key and record codecs. */
#include "kern_val.h"

#include "nines/errors.h"

int kern_type_from_dict(uint32_t dict_type)
{
    /* codes of the wire schema (DictColumn.type); the kernel may not
     * include dict/, tests/unit/route_test.c checks them against dict.h */
    switch (dict_type) {
    case 1: return KERN_T_INT32;   /* int32 */
    case 2: return KERN_T_INT64;   /* int64 */
    case 3: return KERN_T_DOUBLE;  /* double */
    case 4: return KERN_T_FSTR;    /* string(n) */
    case 5: return KERN_T_VSTR;    /* varstring(max) */
    case 6: return KERN_T_FBYTES;  /* bytes(n) */
    case 7: return KERN_T_VBYTES;  /* varbytes(max) */
    case 8: return KERN_T_TS;      /* timestamp */
    default: return -1;
    }
}

const char *kern_type_name(unsigned type)
{
    switch (type) {
    case KERN_T_INT32:  return "int32";
    case KERN_T_INT64:  return "int64";
    case KERN_T_DOUBLE: return "double";
    case KERN_T_FSTR:   return "fixed string";
    case KERN_T_VSTR:   return "string";
    case KERN_T_FBYTES: return "fixed bytes";
    case KERN_T_VBYTES: return "bytes";
    case KERN_T_TS:     return "timestamp";
    default:            return "?";
    }
}

int kern_col_check(const struct kern_col *c, unsigned idx)
{
    switch (c->type) {
    case KERN_T_INT32:
    case KERN_T_INT64:
    case KERN_T_DOUBLE:
    case KERN_T_TS:
    case KERN_T_VSTR:
    case KERN_T_VBYTES:
        break;
    case KERN_T_FSTR:
    case KERN_T_FBYTES:
        if (c->size == 0)
            return nines_err(NINES_EINVAL, "column %u: %s of width 0", idx,
                             kern_type_name(c->type));
        break;
    default:
        return nines_err(NINES_EINVAL, "column %u: unknown type code %u", idx, c->type);
    }
    if (c->nullable > 1)
        return nines_err(NINES_EINVAL, "column %u: nullable flag %u is not 0 or 1", idx,
                         c->nullable);
    return 0;
}

int kern_val_check(const struct kern_col *c, unsigned idx, const struct kern_val *v)
{
    int rc = kern_col_check(c, idx);
    if (rc < 0)
        return rc;
    if (v->type != c->type)
        return nines_err(NINES_ETYPE, "column %u is %s but the value is %s", idx,
                         kern_type_name(c->type), kern_type_name(v->type));
    if (v->null) {
        if (!c->nullable)
            return nines_err(NINES_EINVAL, "column %u (%s) is NOT NULL but got NULL", idx,
                             kern_type_name(c->type));
        return 0;
    }
    switch (c->type) {
    case KERN_T_FSTR:
    case KERN_T_FBYTES:
        if (v->len != c->size)
            return nines_err(NINES_EINVAL, "column %u: %s of width %u got %u bytes", idx,
                             kern_type_name(c->type), c->size, v->len);
        if (!v->u.p)
            return nines_err(NINES_EINVAL, "column %u: NULL data pointer", idx);
        break;
    case KERN_T_VSTR:
    case KERN_T_VBYTES:
        if (c->size && v->len > c->size)
            return nines_err(NINES_ETOOBIG, "column %u: %s of %u bytes exceeds its maximum %u",
                             idx, kern_type_name(c->type), v->len, c->size);
        if (v->len && !v->u.p)
            return nines_err(NINES_EINVAL, "column %u: NULL data pointer", idx);
        break;
    default:
        break;
    }
    return 0;
}
