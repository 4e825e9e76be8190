/* Stream frame decoder: length-prefixed frames out of arbitrary chunks. */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "nines/errors.h"

/* Assembly buffers above this size are released after their frame so a
 * connection that once received a large frame does not keep it. */
#define FDEC_KEEP_BYTES (256u * 1024u)

void net_fdec_init(struct net_fdec *d, uint32_t max_frame)
{
    memset(d, 0, sizeof *d);
    d->st = NET_FDEC_LEN;
    d->max_frame = max_frame;
}

void net_fdec_free(struct net_fdec *d)
{
    free(d->buf);
    d->buf = NULL;
    d->cap = 0;
}

static int fdec_check_len(struct net_fdec *d, uint32_t n)
{
    if (n == 0) {
        d->st = NET_FDEC_FAILED;
        return nines_err(NINES_EPROTO, "zero-length frame");
    }
    if (n > d->max_frame) {
        d->st = NET_FDEC_FAILED;
        return nines_err(NINES_ETOOBIG, "frame length %u exceeds max_frame_bytes %u", n,
                         d->max_frame);
    }
    d->need = n;
    d->have = 0;
    d->st = NET_FDEC_BODY;
    return 0;
}

static int fdec_reserve(struct net_fdec *d, uint32_t n)
{
    if (d->cap >= n)
        return 0;
    uint32_t cap = d->cap ? d->cap : 4096;
    while (cap < n)
        cap = cap > UINT32_MAX / 2 ? n : cap * 2;
    if (cap > d->max_frame)
        cap = d->max_frame;
    uint8_t *b = realloc(d->buf, cap);
    if (!b)
        return nines_err(NINES_ENOMEM, "frame buffer of %u bytes", cap);
    d->buf = b;
    d->cap = cap;
    return 0;
}

int net_fdec_feed(struct net_fdec *d, const uint8_t *p, size_t n, net_frame_fn fn, void *ctx)
{
    while (n > 0) {
        int rc;
        switch (d->st) {
        case NET_FDEC_LEN:
            if (d->have == 0 && n >= NET_FRAME_HDR) {
                rc = fdec_check_len(d, net_frame_get_len(p));
                p += NET_FRAME_HDR;
                n -= NET_FRAME_HDR;
            } else {
                size_t k = NET_FRAME_HDR - d->have;
                if (k > n)
                    k = n;
                memcpy(d->lenb + d->have, p, k);
                d->have += (uint32_t)k;
                p += k;
                n -= k;
                if (d->have < NET_FRAME_HDR)
                    return 0;
                rc = fdec_check_len(d, net_frame_get_len(d->lenb));
            }
            if (rc)
                return rc;
            break;
        case NET_FDEC_BODY:
            if (d->have == 0 && n >= d->need) {
                /* Whole frame in this chunk: hand it out in place. */
                const uint8_t *f = p;
                size_t len = d->need;
                p += len;
                n -= len;
                d->st = NET_FDEC_LEN;
                d->have = 0;
                rc = fn(ctx, f, len);
                if (rc)
                    return rc;
            } else {
                rc = fdec_reserve(d, d->need);
                if (rc) {
                    d->st = NET_FDEC_FAILED;
                    return rc;
                }
                size_t k = d->need - d->have;
                if (k > n)
                    k = n;
                memcpy(d->buf + d->have, p, k);
                d->have += (uint32_t)k;
                p += k;
                n -= k;
                if (d->have < d->need)
                    return 0;
                d->st = NET_FDEC_LEN;
                d->have = 0;
                rc = fn(ctx, d->buf, d->need);
                if (d->cap > FDEC_KEEP_BYTES)
                    net_fdec_free(d);
                if (rc)
                    return rc;
            }
            break;
        case NET_FDEC_FAILED:
            return nines_err(NINES_EPROTO, "frame stream already failed");
        default:
            return nines_err(NINES_EPROTO, "frame decoder in bad state %d", (int)d->st);
        }
    }
    return 0;
}

int net_fdec_eof(const struct net_fdec *d)
{
    switch (d->st) {
    case NET_FDEC_LEN:
        if (d->have == 0)
            return 0;
        return nines_err(NINES_ETRUNC, "stream ended inside a length prefix (%u of %u bytes)",
                         d->have, NET_FRAME_HDR);
    case NET_FDEC_BODY:
        return nines_err(NINES_ETRUNC, "stream ended inside a frame (%u of %u bytes)", d->have,
                         d->need);
    case NET_FDEC_FAILED:
        return nines_err(NINES_EPROTO, "frame stream failed earlier");
    default:
        return nines_err(NINES_EPROTO, "frame decoder in bad state %d", (int)d->st);
    }
}
