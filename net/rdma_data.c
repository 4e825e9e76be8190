/* RDMA transport data path: the send-slot pool and queues, reserve/commit/
 * flush, credits and signaling, receive completions and slot re-posting
 * (net/README.md (RDMA transport), "Slot message", "Credits", "Signaling"). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crc32c.h"
#include "nassert.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nlog.h"
#include "rdma_int.h"

#define MOD "rdma"

/* ---------------------------------------------------------------- slots */

static uint8_t *slot_mem(struct net_rdma_tr *t, int32_t s) { return t->pool + (size_t)s * t->p.slot_bytes; }

static int32_t pool_get(struct net_rdma_tr *t)
{
    int32_t s = t->free_head;
    if (s < 0)
        return -1;
    t->free_head = t->slot_next[s];
    t->free_n--;
    t->slot_next[s] = -1;
    t->slot_used[s] = 0;
    t->slot_kind[s] = RDMA_SLOT_FRAMES;
    return s;
}

void net_rdma_pool_put(struct net_rdma_tr *t, int32_t s)
{
    N_ASSERT(s >= 0 && (uint32_t)s < t->p.pool_slots);
    t->slot_next[s] = t->free_head;
    t->free_head = s;
    t->free_n++;
}

static void q_push(struct net_rdma_tr *t, struct net_rdma_slotq *q, int32_t s)
{
    t->slot_next[s] = -1;
    if (q->tail >= 0)
        t->slot_next[q->tail] = s;
    else
        q->head = s;
    q->tail = s;
    q->n++;
}

static int32_t q_pop(struct net_rdma_tr *t, struct net_rdma_slotq *q)
{
    int32_t s = q->head;
    if (s < 0)
        return -1;
    q->head = t->slot_next[s];
    if (q->head < 0)
        q->tail = -1;
    q->n--;
    t->slot_next[s] = -1;
    return s;
}

/* front := front ++ back; back becomes empty. */
void net_rdma_q_append(struct net_rdma_tr *t, struct net_rdma_slotq *front, struct net_rdma_slotq *back)
{
    if (back->head < 0)
        return;
    if (front->tail >= 0)
        t->slot_next[front->tail] = back->head;
    else
        front->head = back->head;
    front->tail = back->tail;
    front->n += back->n;
    back->head = back->tail = -1;
    back->n = 0;
}

void net_rdma_q_free_all(struct net_rdma_tr *t, struct net_rdma_slotq *q)
{
    int32_t s;
    while ((s = q_pop(t, q)) >= 0)
        net_rdma_pool_put(t, s);
}

uint32_t net_rdma_big_slots(const struct net_rdma_tr *t, size_t len)
{
    if (4 + len <= t->cap)
        return 1;
    size_t rest = len - (t->cap - 4);
    return (uint32_t)(1 + (rest + t->cap - 1) / t->cap);
}

/* ----------------------------------------------------------- addressing */

const char *net_rdma_addr_str(net_addr a, char *buf, size_t n)
{
    if (a >= NET_CONN_BASE)
        snprintf(buf, n, "conn %llu", (unsigned long long)(a - NET_CONN_BASE));
    else
        snprintf(buf, n, "node %llu", (unsigned long long)a);
    return buf;
}

struct net_rdma_conn *net_rdma_find_conn_id(struct net_rdma_tr *t, net_addr a)
{
    for (struct net_rdma_conn *c = t->conns; c; c = c->next)
        if (c->addr == a && c->node == 0 && c->st == RD_ESTABLISHED)
            return c;
    return NULL;
}

/* Queue and (if any) established connection for destination `to`. */
static int rd_dest(struct net_rdma_tr *t, net_addr to, struct net_rdma_slotq **q, struct net_rdma_conn **c)
{
    if (to >= 1 && to <= NINES_MAX_NODES) {
        struct net_rdma_peer *p = &t->peers[to];
        if (!p->configured)
            return nines_err(NINES_EINVAL, "rdma: node %llu is not a peer of node %u",
                             (unsigned long long)to, t->self);
        *q = &p->q;
        *c = p->conn;
        return 0;
    }
    if (to >= NET_CONN_BASE) {
        struct net_rdma_conn *k = net_rdma_find_conn_id(t, to);
        if (!k)
            return nines_err(NINES_EUNREACHABLE, "rdma: no open connection %llu",
                             (unsigned long long)(to - NET_CONN_BASE));
        *q = &k->own;
        *c = k;
        return 0;
    }
    return nines_err(NINES_EINVAL, "rdma: bad address %llu", (unsigned long long)to);
}

/* --------------------------------------------------------------- send path */

void *net_rdma_reserve(struct net_transport *bt, net_addr to, size_t len, int *err)
{
    struct net_rdma_tr *t = net_rdma_tr_of(bt);
    struct net_rdma_slotq *q;
    struct net_rdma_conn *c;
    t->res.active = false;
    if (len > t->cfg.max_frame_bytes) {
        *err = nines_err(NINES_ETOOBIG, "rdma: frame of %zu bytes exceeds max_frame_bytes %u", len,
                         t->cfg.max_frame_bytes);
        return NULL;
    }
    int rc = rd_dest(t, to, &q, &c);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    uint32_t used = q->n + (c ? c->out_slots : 0);
    if (4 + len <= t->cap) {
        int32_t s = q->tail;
        if (s < 0 || t->slot_kind[s] != RDMA_SLOT_FRAMES || t->slot_used[s] + 4 + len > t->cap) {
            if (used + 1 > t->p.dest_slots || t->free_n == 0)
                goto full;
            s = pool_get(t);
            q_push(t, q, s);
        }
        t->res = (struct net_rdma_res){.active = true, .to = to, .slot = s, .len = len};
        return slot_mem(t, s) + RDMA_SLOT_HDR + t->slot_used[s] + 4;
    }
    uint32_t need = net_rdma_big_slots(t, len);
    if (used + need > t->p.dest_slots || t->free_n < need)
        goto full;
    if (t->stage_cap < len) {
        uint8_t *n = realloc(t->stage, len);
        if (!n) {
            *err = nines_err(NINES_ENOMEM, "rdma: staging buffer of %zu bytes", len);
            return NULL;
        }
        t->stage = n;
        t->stage_cap = len;
    }
    t->res = (struct net_rdma_res){.active = true, .big = true, .to = to, .slot = -1, .len = len};
    return t->stage;
full:
    if (c) {
        *err = NINES_EAGAIN;
    } else {
        char b[40];
        *err = nines_err(NINES_EUNREACHABLE, "rdma: %s not connected and its queue is full (%u slots)",
                         net_rdma_addr_str(to, b, sizeof b), t->p.dest_slots);
    }
    return NULL;
}

void net_rdma_commit(struct net_transport *bt, net_addr to, size_t len)
{
    struct net_rdma_tr *t = net_rdma_tr_of(bt);
    N_ASSERT(t->res.active && t->res.to == to && len <= t->res.len);
    t->res.active = false;
    t->st.frames_out++;
    if (!t->res.big) {
        int32_t s = t->res.slot;
        uint8_t *p = slot_mem(t, s) + RDMA_SLOT_HDR + t->slot_used[s];
        net_rdma_put32(p, (uint32_t)len);
        t->slot_used[s] += 4 + (uint32_t)len;
        return;
    }
    struct net_rdma_slotq *q;
    struct net_rdma_conn *c;
    int rc = rd_dest(t, to, &q, &c);
    N_ASSERT(rc == 0);
    /* A big frame starts in a fresh slot: length prefix and head chunk fill
     * it, continuation slots carry the rest. reserve() checked the room. */
    int32_t s = pool_get(t);
    N_ASSERT(s >= 0);
    q_push(t, q, s);
    uint8_t *p = slot_mem(t, s) + RDMA_SLOT_HDR;
    net_rdma_put32(p, (uint32_t)len);
    size_t first = len < t->cap - 4 ? len : t->cap - 4;
    memcpy(p + 4, t->stage, first);
    t->slot_used[s] = 4 + (uint32_t)first;
    size_t off = first;
    while (off < len) {
        s = pool_get(t);
        N_ASSERT(s >= 0);
        q_push(t, q, s);
        t->slot_kind[s] = RDMA_SLOT_CONT;
        size_t n = len - off < t->cap ? len - off : t->cap;
        memcpy(slot_mem(t, s) + RDMA_SLOT_HDR, t->stage + off, n);
        t->slot_used[s] = (uint32_t)n;
        off += n;
    }
}

/* Retire sends up to and including sequence `seq` (a signaled completion
 * covers every earlier unsignaled send on the same queue pair). */
static void rd_retire(struct net_rdma_conn *c, uint64_t seq)
{
    struct net_rdma_tr *t = c->t;
    N_ASSERT(seq >= c->sq_head && seq < c->sq_next);
    while (c->sq_head <= seq) {
        int32_t s = c->sq_slot[c->sq_head % c->sq_depth];
        if (s >= 0) {
            net_rdma_pool_put(t, s);
            N_ASSERT(c->out_slots > 0);
            c->out_slots--;
        }
        c->sq_head++;
    }
}

/* Append one send work request to the batch; decides signaling. */
static void rd_add_wr(struct net_rdma_conn *c, struct ibv_send_wr *wr, struct ibv_sge *sge, uint8_t *m,
                      uint32_t len, uint32_t lkey, int32_t slot)
{
    struct net_rdma_tr *t = c->t;
    uint64_t seq = c->sq_next++;
    c->sq_slot[seq % c->sq_depth] = slot;
    *sge = (struct ibv_sge){.addr = (uintptr_t)m, .length = len, .lkey = lkey};
    *wr = (struct ibv_send_wr){.wr_id = seq, .sg_list = sge, .num_sge = 1, .opcode = IBV_WR_SEND};
    if (slot >= 0)
        c->unsig_slots++;
    /* Signal every signal_every-th send, and before the send queue fills. */
    if (++c->unsignaled >= t->p.signal_every || c->sq_next - c->sq_head + 2 >= c->sq_depth) {
        wr->send_flags = IBV_SEND_SIGNALED;
        c->unsignaled = 0;
        c->unsig_slots = 0;
    }
}

/* Post what the credits and the send queue allow: data slots first (each
 * needs 2 credits, one always stays for a credit message), then a credit
 * message if enough receive slots were re-posted and no data carried them. */
void net_rdma_conn_post(struct net_rdma_conn *c)
{
    struct net_rdma_tr *t = c->t;
    struct ibv_send_wr wr[RD_POST_BATCH];
    struct ibv_sge sge[RD_POST_BATCH];
    uint32_t threshold = c->peer_slots / 2 > 0 ? c->peer_slots / 2 : 1;
    while (c->st == RD_ESTABLISHED) {
        int n = 0;
        struct net_rdma_slotq *q = c->sendq;
        while (n < RD_POST_BATCH && q->head >= 0) {
            int32_t s = q->head;
            if (t->slot_kind[s] == RDMA_SLOT_FRAMES && t->slot_used[s] == 0) {
                net_rdma_pool_put(t, q_pop(t, q));       /* reserved, never committed */
                continue;
            }
            if (c->credits < 2) {
                t->st.credit_stalls++;
                break;
            }
            if (c->sq_next - c->sq_head + 2 >= c->sq_depth)
                break;
            q_pop(t, q);
            uint8_t *m = slot_mem(t, s);
            net_rdma_slot_hdr(m, c->pending_return, (enum net_rdma_slot_kind)t->slot_kind[s]);
            c->pending_return = 0;
            c->credits--;
            c->out_slots++;
            rd_add_wr(c, &wr[n], &sge[n], m, RDMA_SLOT_HDR + t->slot_used[s], t->pool_mr->lkey, s);
            t->st.sends++;
            n++;
        }
        bool more = n == RD_POST_BATCH;
        if (!more && c->pending_return >= threshold && c->credits >= 1 &&
            c->sq_next - c->sq_head + 1 < c->sq_depth) {
            uint8_t *m = c->q.buf + (size_t)t->p.recv_slots * t->p.slot_bytes +
                         (size_t)(c->sq_next % c->sq_depth) * RDMA_SLOT_HDR;
            net_rdma_slot_hdr(m, c->pending_return, RDMA_SLOT_CREDIT);
            c->pending_return = 0;
            c->credits--;
            rd_add_wr(c, &wr[n], &sge[n], m, RDMA_SLOT_HDR, c->q.mr->lkey, -1);
            t->st.credit_msgs++;
            n++;
        }
        if (n == 0)
            return;
        /* Never leave unsignaled slots behind when the queue runs dry: only
         * a later signaled send could retire them. */
        if (!more && c->unsig_slots > 0) {
            wr[n - 1].send_flags |= IBV_SEND_SIGNALED;
            c->unsignaled = 0;
            c->unsig_slots = 0;
        }
        for (int i = 0; i < n; i++) {
            wr[i].next = i + 1 < n ? &wr[i + 1] : NULL;
            if (wr[i].send_flags & IBV_SEND_SIGNALED)
                t->st.signaled++;
        }
        struct ibv_send_wr *bad = NULL;
        t->st.posts++;
        t->base.writes++;
        int rc = N_FAULT("rdma_post_send") ? EIO : t->v->post_send(c->q.qp, wr, &bad);
        if (rc != 0) {
            net_rdma_close(c, NINES_EIO, "post_send of %d work requests failed: %s", n, strerror(rc));
            return;
        }
        if (!more)
            return;
    }
}

int net_rdma_flush(struct net_transport *bt)
{
    struct net_rdma_tr *t = net_rdma_tr_of(bt);
    for (struct net_rdma_conn *c = t->conns; c; c = c->next)
        net_rdma_conn_post(c);
    return 0;
}

/* ------------------------------------------------------------ receive path */

int net_rdma_post_recv(struct net_rdma_conn *c, uint32_t slot)
{
    struct net_rdma_tr *t = c->t;
    struct ibv_sge sge = {.addr = (uintptr_t)(c->q.buf + (size_t)slot * t->p.slot_bytes),
                          .length = t->p.slot_bytes, .lkey = c->q.mr->lkey};
    struct ibv_recv_wr wr = {.wr_id = RD_RECV_TAG | slot, .sg_list = &sge, .num_sge = 1};
    struct ibv_recv_wr *bad = NULL;
    int rc = t->v->post_recv(c->q.qp, &wr, &bad);
    if (rc != 0)
        return nines_err(NINES_EIO, "post_recv of slot %u failed: %s", slot, strerror(rc));
    return 0;
}

static void rd_deliver(struct net_rdma_conn *c, const uint8_t *p, size_t len)
{
    struct net_rdma_tr *t = c->t;
    t->st.frames_in++;
    t->nev++;
    int rc = t->base.cb.on_frame(t->base.cb.ctx, c->addr, p, len);
    if (rc < 0 && c->st != RD_CLOSED)
        net_rdma_close(c, rc, "frame refused: %s", nines_errdetail());
}

/* One receive completion: parse the slot message (README "Slot message"),
 * deliver its frames, re-post the slot. Returns 0 or a protocol error. */
static int rd_recv(struct net_rdma_conn *c, uint32_t slot, uint32_t byte_len)
{
    struct net_rdma_tr *t = c->t;
    const uint8_t *m = c->q.buf + (size_t)slot * t->p.slot_bytes;
    if (byte_len < RDMA_SLOT_HDR || byte_len > t->p.slot_bytes)
        return nines_err(NINES_EPROTO, "slot message of %u bytes (header %u, slot %u)", byte_len,
                         RDMA_SLOT_HDR, t->p.slot_bytes);
    uint32_t credits = net_rdma_get32(m);
    uint8_t kind = m[4];
    if (m[5] != RDMA_SLOT_VERSION)
        return nines_err(NINES_EVERSION, "slot message version %u (want %u)", m[5], RDMA_SLOT_VERSION);
    if (credits > c->peer_slots - c->credits)
        return nines_err(NINES_EPROTO, "peer returned %u credits, holding %u of %u", credits, c->credits,
                         c->peer_slots);
    c->credits += credits;
    const uint8_t *pl = m + RDMA_SLOT_HDR;
    uint32_t plen = byte_len - RDMA_SLOT_HDR;
    switch (kind) {
    case RDMA_SLOT_CREDIT:
        if (plen != 0)
            return nines_err(NINES_EPROTO, "credit message with %u payload bytes", plen);
        break;
    case RDMA_SLOT_FRAMES: {
        if (c->asm_buf)
            return nines_err(NINES_EPROTO, "frames slot while %u bytes of a frame are missing",
                             c->asm_len - c->asm_have);
        uint32_t off = 0;
        while (off < plen) {
            if (plen - off < 4)
                return nines_err(NINES_EPROTO, "truncated length prefix at offset %u of %u", off, plen);
            uint32_t flen = net_rdma_get32(pl + off);
            off += 4;
            if (flen > t->cfg.max_frame_bytes)
                return nines_err(NINES_ETOOBIG, "frame length %u exceeds max_frame_bytes %u", flen,
                                 t->cfg.max_frame_bytes);
            if (flen <= plen - off) {
                rd_deliver(c, pl + off, flen);
                if (c->st == RD_CLOSED)
                    return 0;
                off += flen;
                continue;
            }
            /* The head of a frame larger than a slot: it must fill the slot. */
            if (4 + flen <= t->cap || plen != t->cap)
                return nines_err(NINES_EPROTO, "frame of %u bytes overruns its slot (%u bytes left)", flen,
                                 plen - off);
            c->asm_buf = malloc(flen);
            if (!c->asm_buf)
                return nines_err(NINES_ENOMEM, "reassembly buffer of %u bytes", flen);
            memcpy(c->asm_buf, pl + off, plen - off);
            c->asm_len = flen;
            c->asm_have = plen - off;
            off = plen;
        }
        break;
    }
    case RDMA_SLOT_CONT:
        if (!c->asm_buf)
            return nines_err(NINES_EPROTO, "continuation slot without a frame head");
        if (plen > c->asm_len - c->asm_have || (plen < t->cap && plen != c->asm_len - c->asm_have))
            return nines_err(NINES_EPROTO, "continuation of %u bytes, frame needs %u more", plen,
                             c->asm_len - c->asm_have);
        memcpy(c->asm_buf + c->asm_have, pl, plen);
        c->asm_have += plen;
        if (c->asm_have == c->asm_len) {
            uint8_t *b = c->asm_buf;
            c->asm_buf = NULL;
            rd_deliver(c, b, c->asm_len);
            free(b);
            if (c->st == RD_CLOSED)
                return 0;
        }
        break;
    default:
        return nines_err(NINES_EPROTO, "unknown slot kind %u", kind);
    }
    int rc = net_rdma_post_recv(c, slot);
    if (rc < 0)
        return rc;
    c->pending_return++;
    t->st.recv_reposts++;
    return 0;
}


static void rd_wc(struct net_rdma_conn *c, const struct ibv_wc *wc)
{
    struct net_rdma_tr *t = c->t;
    if (wc->status != IBV_WC_SUCCESS) {
        char b[40];
        net_rdma_close(c, NINES_EIO, "%s completion error on %s (qp %u): %s",
                 (wc->wr_id & RD_RECV_TAG) ? "receive" : "send", net_rdma_addr_str(c->addr, b, sizeof b),
                 c->q.qp ? c->q.qp->qp_num : 0, ibv_wc_status_str(wc->status));
        return;
    }
    if (wc->wr_id & RD_RECV_TAG) {
        uint64_t slot = wc->wr_id & ~RD_RECV_TAG;
        N_ASSERT(slot < t->p.recv_slots);
        if (c->st == RD_REP_SENT)
            net_rdma_establish(c);    /* a receive implies the peer's RTU */
        if (c->st != RD_ESTABLISHED)
            return;
        int rc = rd_recv(c, (uint32_t)slot, wc->byte_len);
        if (rc < 0 && c->st != RD_CLOSED)
            net_rdma_close(c, rc, "%s", nines_errdetail());
        return;
    }
    rd_retire(c, wc->wr_id);
}

void net_rdma_drain(struct net_rdma_conn *c)
{
    struct net_rdma_tr *t = c->t;
    struct ibv_wc wc[RD_WC_BATCH];
    while (c->st != RD_CLOSED && c->qp_open) {
        int k = t->v->poll_cq(c->q.cq, RD_WC_BATCH, wc);
        if (k < 0) {
            net_rdma_close(c, NINES_EIO, "poll_cq failed (%d)", k);
            return;
        }
        for (int i = 0; i < k && c->st != RD_CLOSED; i++)
            rd_wc(c, &wc[i]);
        if (k < RD_WC_BATCH)
            break;
    }
}

void net_rdma_drain_all(struct net_rdma_tr *t)
{
    for (struct net_rdma_conn *c = t->conns; c; c = c->next) {
        if (c->st == RD_CLOSED || !c->qp_open)
            continue;
        net_rdma_drain(c);
        net_rdma_conn_post(c);
    }
}

/* Take every pending completion-channel event and acknowledge it. */
void net_rdma_channel_drain(struct net_rdma_tr *t)
{
    struct ibv_cq *cq;
    void *cctx;
    while (t->v->get_cq_event(t->ch, &cq, &cctx) == 0)
        t->v->ack_cq_events(cq, 1);
}
