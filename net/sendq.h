/* Send queue (internal to net/): one contiguous byte buffer of queued
 * frames [head, tail), so a flush writes everything queued for a peer in a
 * single send() call. Grows geometrically on demand up to its owner's
 * bound (send_queue_bytes); after growth no allocation per frame. */
#ifndef NINES_NET_SENDQ_H
#define NINES_NET_SENDQ_H
#include <stddef.h>
#include <stdint.h>

struct net_sq {
    uint8_t *buf;
    size_t head, tail, cap;
};

static inline size_t net_sq_used(const struct net_sq *q) { return q->tail - q->head; }

/* Make room for n more bytes at the tail (compacting or growing to at
 * least used+n). Returns a pointer to the free space or NULL on ENOMEM. */
uint8_t *net_sq_tail_room(struct net_sq *q, size_t n);
/* Bytes written at the tail become queued. */
static inline void net_sq_commit(struct net_sq *q, size_t n) { q->tail += n; }
/* n bytes at the head were written out. */
void net_sq_consume(struct net_sq *q, size_t n);
/* Move all of src in front of dst's bytes (src emptied). 0 or NINES_ENOMEM. */
int net_sq_prepend(struct net_sq *dst, struct net_sq *src);
/* Forget queued bytes (keeps the buffer). */
static inline void net_sq_clear(struct net_sq *q) { q->head = q->tail = 0; }
void net_sq_free(struct net_sq *q);
#endif
