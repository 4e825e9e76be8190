/* Contiguous per-peer send queue. */
#include "sendq.h"

#include <stdlib.h>
#include <string.h>

#include "nines/errors.h"

static int sq_grow(struct net_sq *q, size_t want)
{
    size_t cap = q->cap ? q->cap : 16384;
    while (cap < want)
        cap *= 2;
    uint8_t *b = realloc(q->buf, cap);
    if (!b)
        return nines_err(NINES_ENOMEM, "send queue of %zu bytes", cap);
    q->buf = b;
    q->cap = cap;
    return 0;
}

uint8_t *net_sq_tail_room(struct net_sq *q, size_t n)
{
    if (q->cap - q->tail >= n)
        return q->buf + q->tail;
    size_t used = net_sq_used(q);
    if (q->head > 0) {
        memmove(q->buf, q->buf + q->head, used);
        q->head = 0;
        q->tail = used;
        if (q->cap - q->tail >= n)
            return q->buf + q->tail;
    }
    if (sq_grow(q, used + n))
        return NULL;
    return q->buf + q->tail;
}

void net_sq_consume(struct net_sq *q, size_t n)
{
    q->head += n;
    if (q->head == q->tail)
        q->head = q->tail = 0;
}

int net_sq_prepend(struct net_sq *dst, struct net_sq *src)
{
    size_t s = net_sq_used(src), d = net_sq_used(dst);
    if (s == 0)
        return 0;
    if (dst->head >= s) {
        dst->head -= s;
    } else {
        if (dst->cap < s + d && sq_grow(dst, s + d))
            return NINES_ENOMEM;
        memmove(dst->buf + s, dst->buf + dst->head, d);
        dst->head = 0;
        dst->tail = s + d;
    }
    memcpy(dst->buf + dst->head, src->buf + src->head, s);
    net_sq_clear(src);
    return 0;
}

void net_sq_free(struct net_sq *q)
{
    free(q->buf);
    memset(q, 0, sizeof *q);
}
