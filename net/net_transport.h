/* Transport interface (internal to net/): the ops table every backend
 * implements — TCP (tcp.c), in-process test transport with fault injection
 * (testnet.c), RDMA reliable-connected queue pairs (rdma.c), and RDMA for
 * nodes plus a TCP listener for clients (dual.c).
 *
 * A transport moves opaque frames (each one Envelope, see net/README.md)
 * between this node and either a peer node or a client connection. It
 * knows nothing of message types. Addresses are `net_addr` values:
 *   1..NINES_MAX_NODES          a peer node (the transport keeps one
 *                               connection per peer and redials it)
 *   >= NET_CONN_BASE            one accepted connection not (yet) bound to a
 *                               node: a client, or a node before its HELLO
 *
 * Send path is reserve/commit so an RDMA backend can hand out registered
 * memory and TCP can batch many frames into one write:
 *   p = ops->reserve(t, to, len, &err); pack exactly len bytes at p;
 *   ops->commit(t, to, len);   ... more frames ...   ops->flush(t);
 * reserve() returns NULL with err = NINES_EAGAIN when the per-peer queue is
 * at its bound (caller may retry after flush/poll), NINES_EUNREACHABLE when
 * the peer has no connection and its queue is full, NINES_ETOOBIG when len
 * exceeds the frame limit. Frames queued for a peer node that is not
 * connected yet are kept (within the bound) and sent once it connects.
 *
 * All ops except wake() are called from the owning executor thread only.
 */
#ifndef NINES_NET_TRANSPORT_H
#define NINES_NET_TRANSPORT_H
#include <stddef.h>
#include <stdint.h>

typedef uint64_t net_addr;
#define NET_CONN_BASE ((net_addr)1 << 32)

struct net_transport;

/* Upcalls from the transport into its owner (the endpoint, endpoint.c). */
struct net_transport_cb {
    void *ctx;
    /* A connection is established. `peer` is the node id for a connection
     * we dialled (the owner then sends HELLO_REQ), else an unbound conn. */
    void (*on_connect)(void *ctx, net_addr addr, int outbound);
    /* One complete frame (without its length prefix). Return 0, or a
     * negative code to have the transport close that connection and log
     * nines_errdetail() as the reason. `buf` is valid only during the call. */
    int (*on_frame)(void *ctx, net_addr addr, const uint8_t *buf, size_t len);
    /* A connection ended (peer closed, I/O error, bad frame, or close()). */
    void (*on_close)(void *ctx, net_addr addr, int err);
};

struct net_transport_ops {
    const char *name;                       /* "tcp", "rdma", "rdma+tcp", "test" */
    int (*start)(struct net_transport *t);              /* listen + dial peers */
    void *(*reserve)(struct net_transport *t, net_addr to, size_t len, int *err);
    void (*commit)(struct net_transport *t, net_addr to, size_t len);
    int (*flush)(struct net_transport *t);              /* write what is queued */
    /* Wait up to timeout_ms (0 = don't wait, -1 = forever) for events and
     * dispatch upcalls. Returns number of events handled or negative. */
    int (*poll)(struct net_transport *t, int timeout_ms);
    void (*wake)(struct net_transport *t);              /* any thread */
    /* Bind an accepted connection to node `node` (after a valid HELLO);
     * an older connection of that node is closed. Returns 0 or negative. */
    int (*bind)(struct net_transport *t, net_addr conn, uint32_t node);
    /* May `conn` carry node `node`? Asked before the endpoint answers a
     * node HELLO, so a refusal becomes a HELLO_REF rather than a HELLO_CONF
     * followed by a failed bind. 0 or negative with a detail; NULL = yes
     * (bind still checks). */
    int (*may_bind)(struct net_transport *t, net_addr conn, uint32_t node);
    void (*close)(struct net_transport *t, net_addr addr, int err, const char *reason);
    void (*destroy)(struct net_transport *t);
    /* The remote address of addr's connection for log lines ("10.0.0.7:41234"),
     * written to buf (n bytes). 0, or negative when it has none (not
     * connected, unknown address). NULL = the transport cannot tell. */
    int (*peer_name)(struct net_transport *t, net_addr addr, char *buf, size_t n);
};

struct net_transport {
    const struct net_transport_ops *ops;
    struct net_transport_cb cb;
    /* Output system calls (TCP writes, RDMA post-send batches), maintained
     * by the backend for net_stats.writes; zero-initialise it. */
    uint64_t writes;
};
#endif
