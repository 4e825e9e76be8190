/* RDMA queue-pair setup and the connection-manager message codec
 * (net/README.md (RDMA transport), "Connection setup"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nines/errors.h"
#include "rdma_int.h"

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

void net_rdma_cm_pack(uint8_t out[RDMA_CM_MSG_BYTES], const struct net_rdma_cm_msg *m)
{
    net_rdma_put32(out + 0, RDMA_CM_MAGIC);
    put16(out + 4, RDMA_CM_VERSION);
    put16(out + 6, m->type);
    net_rdma_put32(out + 8, m->node);
    net_rdma_put32(out + 12, m->qpn);
    net_rdma_put32(out + 16, m->psn);
    put16(out + 20, m->lid);
    out[22] = m->mtu;
    out[23] = m->flags;
    memcpy(out + 24, m->gid, 16);
    net_rdma_put32(out + 40, m->recv_slots);
    net_rdma_put32(out + 44, m->slot_bytes);
    net_rdma_put32(out + 48, m->cluster_crc);
    net_rdma_put32(out + 52, (uint32_t)m->err);
}

int net_rdma_cm_parse(const uint8_t in[RDMA_CM_MSG_BYTES], struct net_rdma_cm_msg *m)
{
    uint32_t magic = net_rdma_get32(in);
    if (magic != RDMA_CM_MAGIC)
        return nines_err(NINES_EPROTO, "rdma cm: bad magic 0x%08x (want 0x%08x)", magic, RDMA_CM_MAGIC);
    uint16_t ver = get16(in + 4);
    if (ver != RDMA_CM_VERSION)
        return nines_err(NINES_EVERSION, "rdma cm: version %u (want %u)", ver, RDMA_CM_VERSION);
    memset(m, 0, sizeof *m);
    m->type = get16(in + 6);
    if (m->type < RDMA_CM_REQ || m->type > RDMA_CM_REJ)
        return nines_err(NINES_EPROTO, "rdma cm: unknown message type %u", m->type);
    m->node = net_rdma_get32(in + 8);
    m->qpn = net_rdma_get32(in + 12);
    m->psn = net_rdma_get32(in + 16);
    m->lid = get16(in + 20);
    m->mtu = in[22];
    m->flags = in[23];
    memcpy(m->gid, in + 24, 16);
    m->recv_slots = net_rdma_get32(in + 40);
    m->slot_bytes = net_rdma_get32(in + 44);
    m->cluster_crc = net_rdma_get32(in + 48);
    m->err = (int32_t)net_rdma_get32(in + 52);
    if (m->psn > 0xffffffu)
        return nines_err(NINES_EPROTO, "rdma cm: psn 0x%x wider than 24 bits", m->psn);
    if (m->type != RDMA_CM_REJ && m->type != RDMA_CM_RTU &&
        (m->mtu < IBV_MTU_256 || m->mtu > IBV_MTU_4096))
        return nines_err(NINES_EPROTO, "rdma cm: path mtu code %u out of range", m->mtu);
    return 0;
}

int net_rdma_local_query(const struct net_verbs_ops *v, struct ibv_context *ctx, const char *devname,
                     uint8_t port, int gid_index, struct net_rdma_local *out)
{
    struct ibv_port_attr pa;
    memset(&pa, 0, sizeof pa);
    memset(out, 0, sizeof *out);
    int rc = v->query_port(ctx, port, &pa);
    if (rc != 0)
        return nines_err(NINES_ENODEV, "RDMA device %s: query_port(%u) failed: %s", devname, port,
                         strerror(rc));
    if (pa.state != IBV_PORT_ACTIVE)
        return nines_err(NINES_ENODEV, "RDMA device %s port %u is not active (state %d)", devname, port,
                         (int)pa.state);
    out->port = port;
    out->lid = pa.lid;
    out->mtu = pa.active_mtu;
    out->gid_index = gid_index;
    out->grh = pa.link_layer == IBV_LINK_LAYER_ETHERNET;
    rc = v->query_gid(ctx, port, gid_index, &out->gid);
    if (rc != 0)
        return nines_err(NINES_ENODEV, "RDMA device %s: query_gid(port %u, index %d) failed: %s", devname,
                         port, gid_index, strerror(rc));
    return 0;
}

int net_rdma_qp_open(const struct net_verbs_ops *v, struct ibv_context *ctx, struct ibv_pd *pd,
                 struct ibv_comp_channel *ch, void *cq_ctx, uint32_t sq_depth, uint32_t rq_depth,
                 size_t buf_len, uint32_t psn, struct net_rdma_qp *q)
{
    memset(q, 0, sizeof *q);
    q->psn = psn & 0xffffffu;
    q->state = IBV_QPS_RESET;
    q->buf_len = buf_len;
    q->buf = aligned_alloc(4096, (buf_len + 4095) / 4096 * 4096);
    if (!q->buf)
        return nines_err(NINES_ENOMEM, "rdma: receive buffer of %zu bytes", buf_len);
    q->mr = v->reg_mr(pd, q->buf, buf_len, IBV_ACCESS_LOCAL_WRITE);
    if (!q->mr) {
        int e = errno;
        net_rdma_qp_free(v, q);
        return nines_err(NINES_ENOMEM, "rdma: reg_mr of %zu bytes failed: %s", buf_len, strerror(e));
    }
    q->cq = v->create_cq(ctx, (int)(sq_depth + rq_depth), cq_ctx, ch, 0);
    if (!q->cq) {
        int e = errno;
        net_rdma_qp_free(v, q);
        return nines_err(NINES_ENOMEM, "rdma: create_cq(%u entries) failed: %s", sq_depth + rq_depth,
                         strerror(e));
    }
    struct ibv_qp_init_attr ia;
    memset(&ia, 0, sizeof ia);
    ia.send_cq = q->cq;
    ia.recv_cq = q->cq;
    ia.qp_type = IBV_QPT_RC;
    ia.sq_sig_all = 0;
    ia.cap.max_send_wr = sq_depth;
    ia.cap.max_recv_wr = rq_depth;
    ia.cap.max_send_sge = 1;
    ia.cap.max_recv_sge = 1;
    q->qp = v->create_qp(pd, &ia);
    if (!q->qp) {
        int e = errno;
        net_rdma_qp_free(v, q);
        return nines_err(NINES_ENOMEM, "rdma: create_qp(send %u, recv %u) failed: %s", sq_depth, rq_depth,
                         strerror(e));
    }
    return 0;
}

static int modify(const struct net_verbs_ops *v, struct net_rdma_qp *q, struct ibv_qp_attr *a, int mask,
                  enum ibv_qp_state from, const char *what)
{
    if (q->state != from)
        return nines_err(NINES_ESTATE, "rdma: qp %u to %s from state %d (want %d)", q->qp->qp_num, what,
                         (int)q->state, (int)from);
    int rc = v->modify_qp(q->qp, a, mask);
    if (rc != 0)
        return nines_err(NINES_EIO, "rdma: modify_qp(qp %u to %s) failed: %s", q->qp->qp_num, what,
                         strerror(rc));
    q->state = a->qp_state;
    return 0;
}

int net_rdma_qp_to_init(const struct net_verbs_ops *v, struct net_rdma_qp *q, const struct net_rdma_local *l)
{
    struct ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_INIT;
    a.pkey_index = 0;
    a.port_num = l->port;
    a.qp_access_flags = 0;      /* two-sided sends only: no remote access */
    return modify(v, q, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS,
                  IBV_QPS_RESET, "INIT");
}

int net_rdma_qp_to_rtr(const struct net_verbs_ops *v, struct net_rdma_qp *q, const struct net_rdma_local *l,
                   const struct net_rdma_cm_msg *r)
{
    struct ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTR;
    a.path_mtu = (enum ibv_mtu)(r->mtu < (uint8_t)l->mtu ? r->mtu : (uint8_t)l->mtu);
    a.dest_qp_num = r->qpn;
    a.rq_psn = r->psn;
    a.max_dest_rd_atomic = 1;
    a.min_rnr_timer = 12;       /* 0.64 ms; credits keep receivers from running dry */
    a.ah_attr.dlid = r->lid;
    a.ah_attr.sl = 0;
    a.ah_attr.src_path_bits = 0;
    a.ah_attr.port_num = l->port;
    if (l->grh || (r->flags & RDMA_CM_F_GRH)) {
        a.ah_attr.is_global = 1;
        memcpy(a.ah_attr.grh.dgid.raw, r->gid, 16);
        a.ah_attr.grh.sgid_index = (uint8_t)l->gid_index;
        a.ah_attr.grh.hop_limit = 64;
    }
    return modify(v, q, &a,
                  IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                      IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
                  IBV_QPS_INIT, "RTR");
}

int net_rdma_qp_to_rts(const struct net_verbs_ops *v, struct net_rdma_qp *q)
{
    struct ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTS;
    a.timeout = 14;             /* 4.096 us * 2^14 = 67 ms per attempt */
    a.retry_cnt = 7;
    a.rnr_retry = 7;            /* infinite; never needed with credits */
    a.sq_psn = q->psn;
    a.max_rd_atomic = 1;
    return modify(v, q, &a,
                  IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
                      IBV_QP_MAX_QP_RD_ATOMIC,
                  IBV_QPS_RTR, "RTS");
}

void net_rdma_qp_destroy_qp(const struct net_verbs_ops *v, struct net_rdma_qp *q)
{
    if (q->qp) {
        (void)v->destroy_qp(q->qp);
        q->qp = NULL;
    }
}

void net_rdma_qp_free(const struct net_verbs_ops *v, struct net_rdma_qp *q)
{
    net_rdma_qp_destroy_qp(v, q);
    if (q->cq) {
        (void)v->destroy_cq(q->cq);
        q->cq = NULL;
    }
    if (q->mr) {
        (void)v->dereg_mr(q->mr);
        q->mr = NULL;
    }
    free(q->buf);
    q->buf = NULL;
}
