/* RDMA transport internals (net/ only): the libibverbs indirection and the
 * hooks the unit tests use to run the transport over a fake HCA.
 *
 * Every verbs call rdma*.c makes goes through a `struct net_verbs_ops`.
 * net_verbs_real points at libibverbs (several ibv_* are static inline
 * wrappers or macros; rdma_verbs.c wraps them in functions). Tests pass a
 * fake table (tests/unit/rdma_fake.inc) to net_rdma_create_with(). Return
 * conventions are libibverbs' own: NULL + errno, or an errno value. */
#ifndef NINES_NET_RDMA_VERBS_H
#define NINES_NET_RDMA_VERBS_H
#include <infiniband/verbs.h>
#include <stdint.h>

#include "rdma.h"

struct net_verbs_ops {
    const char *name;                                   /* "libibverbs", "fake" */
    struct ibv_device **(*get_device_list)(int *num);
    void (*free_device_list)(struct ibv_device **list);
    const char *(*get_device_name)(struct ibv_device *dev);
    struct ibv_context *(*open_device)(struct ibv_device *dev);
    int (*close_device)(struct ibv_context *ctx);
    int (*query_port)(struct ibv_context *ctx, uint8_t port, struct ibv_port_attr *out);
    int (*query_gid)(struct ibv_context *ctx, uint8_t port, int index, union ibv_gid *out);
    struct ibv_pd *(*alloc_pd)(struct ibv_context *ctx);
    int (*dealloc_pd)(struct ibv_pd *pd);
    struct ibv_mr *(*reg_mr)(struct ibv_pd *pd, void *addr, size_t len, int access);
    int (*dereg_mr)(struct ibv_mr *mr);
    struct ibv_comp_channel *(*create_comp_channel)(struct ibv_context *ctx);
    int (*destroy_comp_channel)(struct ibv_comp_channel *ch);
    struct ibv_cq *(*create_cq)(struct ibv_context *ctx, int cqe, void *cq_context,
                                struct ibv_comp_channel *ch, int comp_vector);
    int (*destroy_cq)(struct ibv_cq *cq);
    int (*req_notify_cq)(struct ibv_cq *cq, int solicited_only);
    int (*get_cq_event)(struct ibv_comp_channel *ch, struct ibv_cq **cq, void **cq_context);
    void (*ack_cq_events)(struct ibv_cq *cq, unsigned int n);
    int (*poll_cq)(struct ibv_cq *cq, int n, struct ibv_wc *wc);
    struct ibv_qp *(*create_qp)(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
    int (*modify_qp)(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask);
    int (*destroy_qp)(struct ibv_qp *qp);
    int (*post_send)(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
    int (*post_recv)(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);
};

extern const struct net_verbs_ops net_verbs_real;

/* Sizing. Zero fields take the defaults derived from the configuration
 * (net/README.md (RDMA transport), "Sizing"). */
struct net_rdma_params {
    uint32_t slot_bytes;     /* bytes per send/receive slot, header included */
    uint32_t recv_slots;     /* receive slots per connection (= initial credits) */
    uint32_t dest_slots;     /* send slots one destination may hold (queued + in flight) */
    uint32_t pool_slots;     /* send slots in the transport's registered pool */
    uint32_t signal_every;   /* at most this many sends between two signaled ones */
};

/* net_rdma_create() with an explicit verbs table and sizing (NULL = defaults). */
int net_rdma_create_with(struct net_transport **out, const struct nines_conf *cfg, uint32_t self,
                         const struct net_verbs_ops *verbs, const struct net_rdma_params *params);

/* Counters, for tests and benchmarks. */
struct net_rdma_stats {
    uint64_t frames_out, frames_in;
    uint64_t posts;          /* post_send calls */
    uint64_t sends;          /* data work requests (one per slot) */
    uint64_t signaled;       /* data or credit sends posted signaled */
    uint64_t credit_msgs;    /* credit-only sends */
    uint64_t recv_reposts;   /* receive slots re-posted after delivery */
    uint64_t credit_stalls;  /* flushes that left data queued for lack of credits */
    uint64_t conns_up, conns_closed;
};
void net_rdma_get_stats(const struct net_transport *t, struct net_rdma_stats *out);

/* QP number of the established connection at `addr` (0 if none). Tests. */
uint32_t net_rdma_conn_qpn(const struct net_transport *t, net_addr addr);
#endif
