/* Order-preserving key encoding: each column is a tag byte (NULL sorts
 * first) followed by a self-delimiting, memcmp-ordered body. */
#include "kern_key.h"

#include "nines/errors.h"

static void put_be32(uint8_t *p, uint32_t x)
{
    p[0] = (uint8_t)(x >> 24);
    p[1] = (uint8_t)(x >> 16);
    p[2] = (uint8_t)(x >> 8);
    p[3] = (uint8_t)x;
}

static void put_be64(uint8_t *p, uint64_t x)
{
    put_be32(p, (uint32_t)(x >> 32));
    put_be32(p + 4, (uint32_t)x);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

#define SIGN64 0x8000000000000000ull

uint64_t kern_key_dbl_code(double d)
{
    uint64_t bits;
    if (d != d)
        bits = 0x7ff8000000000000ull; /* every NaN: one quiet NaN, above +inf */
    else if (d == 0.0)
        bits = 0; /* -0.0 == +0.0 */
    else
        memcpy(&bits, &d, sizeof bits);
    return (bits & SIGN64) ? ~bits : (bits | SIGN64);
}

static double dbl_from_code(uint64_t code)
{
    uint64_t bits = (code & SIGN64) ? (code & ~SIGN64) : ~code;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Encoded size of one value (tag included). */
static size_t val_size(const struct kern_val *v)
{
    if (v->null)
        return 1;
    switch (v->type) {
    case KERN_T_INT32:
        return 1 + 4;
    case KERN_T_INT64:
    case KERN_T_TS:
    case KERN_T_DOUBLE:
        return 1 + 8;
    case KERN_T_FSTR:
    case KERN_T_FBYTES:
        return 1 + (size_t)v->len;
    case KERN_T_VSTR:
    case KERN_T_VBYTES: {
        size_t n = 1 + (size_t)v->len + 2;
        const uint8_t *p = v->u.p;
        for (uint32_t i = 0; i < v->len; i++)
            n += p[i] == 0;
        return n;
    }
    default:
        return 0; /* rejected by kern_val_check before */
    }
}

int kern_key_encode(const struct kern_col *cols, unsigned ncols, const struct kern_val *vals,
                    uint8_t *out, size_t cap)
{
    if (ncols == 0)
        return nines_err(NINES_EINVAL, "key with no columns");
    size_t total = 0;
    for (unsigned i = 0; i < ncols; i++) {
        int rc = kern_val_check(&cols[i], i, &vals[i]);
        if (rc < 0)
            return rc;
        total += val_size(&vals[i]);
    }
    if (total > KERN_KEY_MAX)
        return nines_err(NINES_ETOOBIG, "encoded key is %zu bytes, maximum is %d", total,
                         KERN_KEY_MAX);
    if (total > cap)
        return nines_err(NINES_ETOOBIG, "encoded key is %zu bytes, buffer holds %zu", total, cap);
    uint8_t *p = out;
    for (unsigned i = 0; i < ncols; i++) {
        const struct kern_val *v = &vals[i];
        if (v->null) {
            *p++ = KERN_KEY_TAG_NULL;
            continue;
        }
        *p++ = KERN_KEY_TAG_VALUE;
        switch (v->type) {
        case KERN_T_INT32:
            put_be32(p, (uint32_t)v->u.i32 ^ 0x80000000u);
            p += 4;
            break;
        case KERN_T_INT64:
        case KERN_T_TS:
            put_be64(p, (uint64_t)v->u.i64 ^ SIGN64);
            p += 8;
            break;
        case KERN_T_DOUBLE:
            put_be64(p, kern_key_dbl_code(v->u.d));
            p += 8;
            break;
        case KERN_T_FSTR:
        case KERN_T_FBYTES:
            memcpy(p, v->u.p, v->len);
            p += v->len;
            break;
        case KERN_T_VSTR:
        case KERN_T_VBYTES: {
            const uint8_t *s = v->u.p;
            for (uint32_t j = 0; j < v->len; j++) {
                *p++ = s[j];
                if (s[j] == 0)
                    *p++ = 0xff;
            }
            *p++ = 0;
            *p++ = 0;
            break;
        }
        default:
            return nines_err(NINES_EINVAL, "column %u: unknown type code %u", i, v->type);
        }
    }
    return (int)(p - out);
}

int kern_key_decode(const struct kern_col *cols, unsigned ncols, const uint8_t *key, size_t klen,
                    struct kern_val *vals, uint8_t *buf, size_t bufcap)
{
    size_t off = 0, used = 0;
    if (klen > KERN_KEY_MAX)
        return nines_err(NINES_ETOOBIG, "key is %zu bytes, maximum is %d", klen, KERN_KEY_MAX);
    for (unsigned i = 0; i < ncols; i++) {
        const struct kern_col *c = &cols[i];
        struct kern_val *v = &vals[i];
        int rc = kern_col_check(c, i);
        if (rc < 0)
            return rc;
        memset(v, 0, sizeof *v);
        v->type = c->type;
        if (off >= klen)
            return nines_err(NINES_ETRUNC, "key ends before column %u (%zu bytes)", i, klen);
        uint8_t tag = key[off++];
        if (tag == KERN_KEY_TAG_NULL) {
            if (!c->nullable)
                return nines_err(NINES_ECORRUPT, "key column %u is NOT NULL but tagged NULL", i);
            v->null = 1;
            continue;
        }
        if (tag != KERN_KEY_TAG_VALUE)
            return nines_err(NINES_ECORRUPT, "key column %u: bad tag byte 0x%02x at offset %zu",
                             i, tag, off - 1);
        size_t need;
        switch (c->type) {
        case KERN_T_INT32:
            need = 4;
            break;
        case KERN_T_INT64:
        case KERN_T_TS:
        case KERN_T_DOUBLE:
            need = 8;
            break;
        case KERN_T_FSTR:
        case KERN_T_FBYTES:
            need = c->size;
            break;
        default:
            need = 0;
            break;
        }
        if (klen - off < need)
            return nines_err(NINES_ETRUNC, "key column %u (%s) needs %zu bytes, %zu left", i,
                             kern_type_name(c->type), need, klen - off);
        switch (c->type) {
        case KERN_T_INT32:
            v->u.i32 = (int32_t)(get_be32(key + off) ^ 0x80000000u);
            break;
        case KERN_T_INT64:
        case KERN_T_TS:
            v->u.i64 = (int64_t)(get_be64(key + off) ^ SIGN64);
            break;
        case KERN_T_DOUBLE:
            v->u.d = dbl_from_code(get_be64(key + off));
            break;
        case KERN_T_FSTR:
        case KERN_T_FBYTES:
            v->len = c->size;
            v->u.p = key + off;
            break;
        case KERN_T_VSTR:
        case KERN_T_VBYTES: {
            uint8_t *dst = buf + used;
            size_t n = 0;
            for (;;) {
                if (off >= klen)
                    return nines_err(NINES_ETRUNC, "key column %u: string not terminated", i);
                uint8_t b = key[off++];
                if (b == 0) {
                    if (off >= klen)
                        return nines_err(NINES_ETRUNC, "key column %u: string not terminated", i);
                    uint8_t e = key[off++];
                    if (e == 0)
                        break;
                    if (e != 0xff)
                        return nines_err(NINES_ECORRUPT,
                                         "key column %u: bad escape 0x00 0x%02x at offset %zu", i,
                                         e, off - 2);
                }
                if (used + n >= bufcap)
                    return nines_err(NINES_ETOOBIG, "key column %u: decode buffer of %zu bytes "
                                     "too small", i, bufcap);
                dst[n++] = b;
            }
            if (c->size && n > c->size)
                return nines_err(NINES_ECORRUPT, "key column %u: %s of %zu bytes exceeds its "
                                 "maximum %u", i, kern_type_name(c->type), n, c->size);
            v->len = (uint32_t)n;
            v->u.p = dst;
            used += n;
            break;
        }
        default:
            return nines_err(NINES_EINVAL, "column %u: unknown type code %u", i, c->type);
        }
        off += need;
    }
    if (off != klen)
        return nines_err(NINES_ECORRUPT, "key has %zu trailing bytes after %u columns",
                         klen - off, ncols);
    return 0;
}
