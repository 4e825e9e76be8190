/* Record codec: header {sid, len, version, flags, ncols} + NULL bitmap +
 * little-endian column values (variable ones with a LEB128 length). */
#include "kern_rec.h"

#include "nines/errors.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct kern_rec) == 16, "record header is 16 bytes");
_Static_assert(offsetof(struct kern_rec, sid) == 0, "sid at 0");
_Static_assert(offsetof(struct kern_rec, len) == 8, "len at 8");
_Static_assert(offsetof(struct kern_rec, version) == 12, "version at 12");
_Static_assert(offsetof(struct kern_rec, flags) == 13, "flags at 13");
_Static_assert(offsetof(struct kern_rec, ncols) == 14, "ncols at 14");
_Static_assert(offsetof(struct kern_rec, body) == 16, "body at 16");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "record header and values are little-endian in memory and on disk");

static size_t varint_size(uint32_t x)
{
    size_t n = 1;
    while (x >= 0x80) {
        x >>= 7;
        n++;
    }
    return n;
}

static uint8_t *varint_put(uint8_t *p, uint32_t x)
{
    while (x >= 0x80) {
        *p++ = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    *p++ = (uint8_t)x;
    return p;
}

/* Fixed part of one non-NULL value (0 for variable-length types). */
static size_t fixed_size(const struct kern_col *c)
{
    switch (c->type) {
    case KERN_T_INT32:
        return 4;
    case KERN_T_INT64:
    case KERN_T_TS:
    case KERN_T_DOUBLE:
        return 8;
    case KERN_T_FSTR:
    case KERN_T_FBYTES:
        return c->size;
    default:
        return 0;
    }
}

int kern_rec_body_size(const struct kern_col *cols, unsigned ncols, const struct kern_val *vals,
                       size_t *body_len)
{
    if (ncols > UINT16_MAX)
        return nines_err(NINES_ETOOBIG, "record of %u columns, maximum %u", ncols, UINT16_MAX);
    size_t n = (ncols + 7) / 8;
    for (unsigned i = 0; i < ncols; i++) {
        int rc = kern_val_check(&cols[i], i, &vals[i]);
        if (rc < 0)
            return rc;
        if (vals[i].null)
            continue;
        if (cols[i].type == KERN_T_VSTR || cols[i].type == KERN_T_VBYTES)
            n += varint_size(vals[i].len) + vals[i].len;
        else
            n += fixed_size(&cols[i]);
        if (n > KERN_REC_MAX)
            return nines_err(NINES_ETOOBIG, "record body exceeds %u bytes at column %u",
                             KERN_REC_MAX, i);
    }
    *body_len = n;
    return 0;
}

int kern_rec_build(const struct kern_col *cols, unsigned ncols, const struct kern_val *vals,
                   uint64_t sid, struct kern_rec **out)
{
    size_t blen;
    int rc = kern_rec_body_size(cols, ncols, vals, &blen);
    if (rc < 0)
        return rc;
    struct kern_rec *r = malloc(sizeof *r + blen);
    if (!r)
        return nines_err(NINES_ENOMEM, "record of %zu bytes", sizeof *r + blen);
    r->sid = sid;
    r->len = (uint32_t)blen;
    r->version = KERN_REC_VERSION;
    r->flags = 0;
    r->ncols = (uint16_t)ncols;
    size_t nb = (ncols + 7) / 8;
    memset(r->body, 0, nb);
    uint8_t *p = r->body + nb;
    for (unsigned i = 0; i < ncols; i++) {
        const struct kern_val *v = &vals[i];
        if (v->null) {
            r->body[i / 8] |= (uint8_t)(1u << (i % 8));
            continue;
        }
        switch (cols[i].type) {
        case KERN_T_INT32:
            memcpy(p, &v->u.i32, 4);
            p += 4;
            break;
        case KERN_T_INT64:
        case KERN_T_TS:
            memcpy(p, &v->u.i64, 8);
            p += 8;
            break;
        case KERN_T_DOUBLE:
            memcpy(p, &v->u.d, 8);
            p += 8;
            break;
        case KERN_T_FSTR:
        case KERN_T_FBYTES:
            memcpy(p, v->u.p, v->len);
            p += v->len;
            break;
        case KERN_T_VSTR:
        case KERN_T_VBYTES:
            p = varint_put(p, v->len);
            if (v->len)
                memcpy(p, v->u.p, v->len);
            p += v->len;
            break;
        default:
            free(r);
            return nines_err(NINES_EINVAL, "column %u: unknown type code %u", i, cols[i].type);
        }
    }
    *out = r;
    return 0;
}

/* Walk the body up to column `upto` (ncols: all), filling vals (may be
 * NULL) and checking every length against `blen`. */
static int walk(const struct kern_rec *r, size_t blen, const struct kern_col *cols,
                unsigned ncols, unsigned upto, struct kern_val *vals)
{
    if (r->version != KERN_REC_VERSION)
        return nines_err(NINES_EVERSION, "record format version %u, this build reads %u",
                         r->version, KERN_REC_VERSION);
    if (r->ncols != ncols)
        return nines_err(NINES_ECORRUPT, "record has %u columns, layout has %u", r->ncols, ncols);
    size_t nb = (ncols + 7) / 8;
    if (blen < nb)
        return nines_err(NINES_ETRUNC, "record body of %zu bytes shorter than its %zu-byte "
                         "NULL bitmap", blen, nb);
    const uint8_t *b = r->body;
    size_t off = nb;
    unsigned last = upto < ncols ? upto + 1 : ncols;
    for (unsigned i = 0; i < last; i++) {
        const struct kern_col *c = &cols[i];
        int rc = kern_col_check(c, i);
        if (rc < 0)
            return rc;
        struct kern_val v;
        memset(&v, 0, sizeof v);
        v.type = c->type;
        if (b[i / 8] & (1u << (i % 8))) {
            if (!c->nullable)
                return nines_err(NINES_ECORRUPT, "record column %u is NOT NULL but marked NULL",
                                 i);
            v.null = 1;
        } else if (c->type == KERN_T_VSTR || c->type == KERN_T_VBYTES) {
            uint32_t len = 0;
            unsigned shift = 0;
            for (;;) {
                if (off >= blen)
                    return nines_err(NINES_ETRUNC, "record column %u: length runs past the "
                                     "body", i);
                uint8_t x = b[off++];
                if (shift > 28 || (shift == 28 && (x & 0x70)))
                    return nines_err(NINES_ECORRUPT, "record column %u: length varint too "
                                     "long", i);
                len |= (uint32_t)(x & 0x7f) << shift;
                shift += 7;
                if (!(x & 0x80))
                    break;
            }
            if (blen - off < len)
                return nines_err(NINES_ETRUNC, "record column %u: %u bytes but only %zu left", i,
                                 len, blen - off);
            if (c->size && len > c->size)
                return nines_err(NINES_ECORRUPT, "record column %u: %s of %u bytes exceeds its "
                                 "maximum %u", i, kern_type_name(c->type), len, c->size);
            v.len = len;
            v.u.p = b + off;
            off += len;
        } else {
            size_t need = fixed_size(c);
            if (blen - off < need)
                return nines_err(NINES_ETRUNC, "record column %u (%s) needs %zu bytes, %zu left",
                                 i, kern_type_name(c->type), need, blen - off);
            switch (c->type) {
            case KERN_T_INT32:
                memcpy(&v.u.i32, b + off, 4);
                break;
            case KERN_T_INT64:
            case KERN_T_TS:
                memcpy(&v.u.i64, b + off, 8);
                break;
            case KERN_T_DOUBLE:
                memcpy(&v.u.d, b + off, 8);
                break;
            default:
                v.len = (uint32_t)need;
                v.u.p = b + off;
                break;
            }
            off += need;
        }
        if (vals)
            vals[upto < ncols ? 0 : i] = v;
    }
    if (upto >= ncols && off != blen)
        return nines_err(NINES_ECORRUPT, "record has %zu trailing bytes after %u columns",
                         blen - off, ncols);
    return 0;
}

int kern_rec_check(const struct kern_rec *r, size_t avail, const struct kern_col *cols,
                   unsigned ncols)
{
    if (avail < sizeof *r)
        return nines_err(NINES_ETRUNC, "record of %zu bytes shorter than its 16-byte header",
                         avail);
    if (r->len > KERN_REC_MAX)
        return nines_err(NINES_ECORRUPT, "record body length %u exceeds %u", r->len,
                         KERN_REC_MAX);
    if (avail - sizeof *r < r->len)
        return nines_err(NINES_ETRUNC, "record body of %u bytes but only %zu available", r->len,
                         avail - sizeof *r);
    return walk(r, r->len, cols, ncols, ncols, NULL);
}

int kern_rec_decode(const struct kern_rec *r, const struct kern_col *cols, unsigned ncols,
                    struct kern_val *vals)
{
    return walk(r, r->len, cols, ncols, ncols, vals);
}

int kern_rec_col(const struct kern_rec *r, const struct kern_col *cols, unsigned ncols,
                 unsigned idx, struct kern_val *v)
{
    if (idx >= ncols)
        return nines_err(NINES_EINVAL, "column %u of a %u-column record", idx, ncols);
    /* walk() stores each visited column at v[0]; the last one is idx. */
    return walk(r, r->len, cols, ncols, idx, v);
}

struct kern_rec *kern_rec_dup(const struct kern_rec *r)
{
    struct kern_rec *c = malloc(kern_rec_bytes(r));
    if (c)
        memcpy(c, r, kern_rec_bytes(r));
    return c;
}

void kern_rec_free(struct kern_rec *r)
{
    free(r);
}
