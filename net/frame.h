/* Stream framing (internal to net/): every frame on a byte stream is a
 * u32 little-endian length N followed by N bytes (one Envelope).
 * See net/README.md "Frame format".
 *
 * net_fdec is a push decoder: feed it whatever read() returned; it calls
 * the frame callback once per complete frame. Frames that arrive whole in
 * one chunk are handed out in place (no copy); only a frame split across
 * chunks is assembled in the decoder's buffer, which grows on demand up to
 * max_frame bytes and is the connection's only receive memory. */
#ifndef NINES_NET_FRAME_H
#define NINES_NET_FRAME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_FRAME_HDR 4u          /* bytes of the length prefix */

static inline void net_frame_put_len(uint8_t *p, uint32_t n)
{
    p[0] = (uint8_t)n;
    p[1] = (uint8_t)(n >> 8);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 24);
}

static inline uint32_t net_frame_get_len(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

enum net_fdec_state {
    NET_FDEC_LEN,     /* collecting the 4-byte length prefix */
    NET_FDEC_BODY,    /* collecting `need` body bytes */
    NET_FDEC_FAILED,  /* a bad length was seen; the stream is unusable */
};

struct net_fdec {
    enum net_fdec_state st;
    uint32_t max_frame;   /* largest accepted N */
    uint32_t need;        /* N of the frame being assembled (BODY) */
    uint32_t have;        /* prefix bytes (LEN) or body bytes (BODY) held */
    uint8_t lenb[NET_FRAME_HDR];
    uint8_t *buf;         /* assembly buffer for split frames */
    uint32_t cap;
};

/* Called once per complete frame; `f` is valid during the call only.
 * Return 0 to continue, non-zero to stop feeding (feed returns it). */
typedef int (*net_frame_fn)(void *ctx, const uint8_t *f, size_t len);

void net_fdec_init(struct net_fdec *d, uint32_t max_frame);
void net_fdec_free(struct net_fdec *d);
/* Feed n bytes. Returns 0, the callback's non-zero result, or
 * NINES_EPROTO (zero length) / NINES_ETOOBIG (N > max_frame) /
 * NINES_ENOMEM with detail; after an error the decoder stays FAILED. */
int net_fdec_feed(struct net_fdec *d, const uint8_t *p, size_t n, net_frame_fn fn, void *ctx);
/* At end of stream: 0 when on a frame boundary, else NINES_ETRUNC (detail
 * says how much of which frame was missing). */
int net_fdec_eof(const struct net_fdec *d);
#endif
