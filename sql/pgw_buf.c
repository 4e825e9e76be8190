/* Backend messages are built in a growing buffer; frontend message bodies
 * are read with bounds checks (pgw.h). Integers are big-endian (network
 * order) as the protocol has them. */
#include "pgw.h"

#include <stdlib.h>
#include <string.h>

static bool out_room(struct pgw_out *o, size_t n)
{
    if (o->oom)
        return false;
    if (o->len + n <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : 8192;
    while (cap < o->len + n) {
        if (cap > SIZE_MAX / 2) {
            o->oom = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(o->p, cap);
    if (!p) {
        o->oom = true;
        return false;
    }
    o->p = p;
    o->cap = cap;
    return true;
}

void pgw_out_bytes(struct pgw_out *o, const void *p, size_t n)
{
    if (n == 0 || !out_room(o, n))
        return;
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

void pgw_out_u8(struct pgw_out *o, uint8_t v)
{
    pgw_out_bytes(o, &v, 1);
}

void pgw_out_i16(struct pgw_out *o, int16_t v)
{
    uint16_t u = (uint16_t)v;
    uint8_t b[2] = {(uint8_t)(u >> 8), (uint8_t)u};
    pgw_out_bytes(o, b, 2);
}

void pgw_out_i32(struct pgw_out *o, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t b[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
    pgw_out_bytes(o, b, 4);
}

void pgw_out_str(struct pgw_out *o, const char *s)
{
    pgw_out_bytes(o, s, strlen(s) + 1);
}

void pgw_out_begin(struct pgw_out *o, char type)
{
    o->msg_at = o->len;
    pgw_out_u8(o, (uint8_t)type);
    pgw_out_i32(o, 0); /* the length, filled in by pgw_out_end */
}

void pgw_out_end(struct pgw_out *o)
{
    if (o->oom)
        return;
    size_t n = o->len - o->msg_at - 1; /* the length counts itself, not the type */
    if (n > INT32_MAX) {
        o->oom = true;
        return;
    }
    uint8_t *b = o->p + o->msg_at + 1;
    b[0] = (uint8_t)(n >> 24);
    b[1] = (uint8_t)(n >> 16);
    b[2] = (uint8_t)(n >> 8);
    b[3] = (uint8_t)n;
}

void pgw_out_free(struct pgw_out *o)
{
    free(o->p);
    memset(o, 0, sizeof *o);
}

const uint8_t *pgw_rd_bytes(struct pgw_rd *r, size_t n)
{
    if (r->bad || n > r->n - r->off) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

uint8_t pgw_rd_u8(struct pgw_rd *r)
{
    const uint8_t *p = pgw_rd_bytes(r, 1);
    return p ? p[0] : 0;
}

int16_t pgw_rd_i16(struct pgw_rd *r)
{
    const uint8_t *p = pgw_rd_bytes(r, 2);
    return p ? (int16_t)(uint16_t)((unsigned)p[0] << 8 | p[1]) : 0;
}

int32_t pgw_rd_i32(struct pgw_rd *r)
{
    const uint8_t *p = pgw_rd_bytes(r, 4);
    if (!p)
        return 0;
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

const char *pgw_rd_str(struct pgw_rd *r)
{
    if (r->bad)
        return NULL;
    const uint8_t *nul = memchr(r->p + r->off, '\0', r->n - r->off);
    if (!nul) {
        r->bad = true;
        return NULL;
    }
    const char *s = (const char *)(r->p + r->off);
    r->off = (size_t)(nul - r->p) + 1;
    return s;
}

bool pgw_rd_end(const struct pgw_rd *r)
{
    return !r->bad && r->off == r->n;
}
