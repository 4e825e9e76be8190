/* The real libibverbs behind struct net_verbs_ops. Several ibv_* entry
 * points are static inline wrappers or macros in <infiniband/verbs.h>, so
 * each gets a small function here. */
#include "rdma_verbs.h"

static struct ibv_device **rv_get_device_list(int *num) { return ibv_get_device_list(num); }
static void rv_free_device_list(struct ibv_device **l) { ibv_free_device_list(l); }
static const char *rv_get_device_name(struct ibv_device *d) { return ibv_get_device_name(d); }
static struct ibv_context *rv_open_device(struct ibv_device *d) { return ibv_open_device(d); }
static int rv_close_device(struct ibv_context *c) { return ibv_close_device(c); }
static int rv_query_port(struct ibv_context *c, uint8_t port, struct ibv_port_attr *out)
{
    return ibv_query_port(c, port, out);
}
static int rv_query_gid(struct ibv_context *c, uint8_t port, int index, union ibv_gid *out)
{
    return ibv_query_gid(c, port, index, out);
}
static struct ibv_pd *rv_alloc_pd(struct ibv_context *c) { return ibv_alloc_pd(c); }
static int rv_dealloc_pd(struct ibv_pd *pd) { return ibv_dealloc_pd(pd); }
static struct ibv_mr *rv_reg_mr(struct ibv_pd *pd, void *addr, size_t len, int access)
{
    return ibv_reg_mr(pd, addr, len, access);
}
static int rv_dereg_mr(struct ibv_mr *mr) { return ibv_dereg_mr(mr); }
static struct ibv_comp_channel *rv_create_comp_channel(struct ibv_context *c)
{
    return ibv_create_comp_channel(c);
}
static int rv_destroy_comp_channel(struct ibv_comp_channel *ch) { return ibv_destroy_comp_channel(ch); }
static struct ibv_cq *rv_create_cq(struct ibv_context *c, int cqe, void *cq_ctx,
                                   struct ibv_comp_channel *ch, int vec)
{
    return ibv_create_cq(c, cqe, cq_ctx, ch, vec);
}
static int rv_destroy_cq(struct ibv_cq *cq) { return ibv_destroy_cq(cq); }
static int rv_req_notify_cq(struct ibv_cq *cq, int sol) { return ibv_req_notify_cq(cq, sol); }
static int rv_get_cq_event(struct ibv_comp_channel *ch, struct ibv_cq **cq, void **ctx)
{
    return ibv_get_cq_event(ch, cq, ctx);
}
static void rv_ack_cq_events(struct ibv_cq *cq, unsigned n) { ibv_ack_cq_events(cq, n); }
static int rv_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc) { return ibv_poll_cq(cq, n, wc); }
static struct ibv_qp *rv_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *a)
{
    return ibv_create_qp(pd, a);
}
static int rv_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *a, int mask)
{
    return ibv_modify_qp(qp, a, mask);
}
static int rv_destroy_qp(struct ibv_qp *qp) { return ibv_destroy_qp(qp); }
static int rv_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    return ibv_post_send(qp, wr, bad);
}
static int rv_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    return ibv_post_recv(qp, wr, bad);
}

const struct net_verbs_ops net_verbs_real = {
    .name = "libibverbs",
    .get_device_list = rv_get_device_list,
    .free_device_list = rv_free_device_list,
    .get_device_name = rv_get_device_name,
    .open_device = rv_open_device,
    .close_device = rv_close_device,
    .query_port = rv_query_port,
    .query_gid = rv_query_gid,
    .alloc_pd = rv_alloc_pd,
    .dealloc_pd = rv_dealloc_pd,
    .reg_mr = rv_reg_mr,
    .dereg_mr = rv_dereg_mr,
    .create_comp_channel = rv_create_comp_channel,
    .destroy_comp_channel = rv_destroy_comp_channel,
    .create_cq = rv_create_cq,
    .destroy_cq = rv_destroy_cq,
    .req_notify_cq = rv_req_notify_cq,
    .get_cq_event = rv_get_cq_event,
    .ack_cq_events = rv_ack_cq_events,
    .poll_cq = rv_poll_cq,
    .create_qp = rv_create_qp,
    .modify_qp = rv_modify_qp,
    .destroy_qp = rv_destroy_qp,
    .post_send = rv_post_send,
    .post_recv = rv_post_recv,
};
