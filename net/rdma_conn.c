/* RDMA transport connections: the TCP side channel (REQ/REP/RTU/REJ),
 * queue-pair setup per connection, establish/close/reap, dialling and
 * accepting (net/README.md (RDMA transport), "Connection setup", "Teardown"). */
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

/* -------------------------------------------------------- side channel */

static void rd_ep_mod(struct net_rdma_conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(uintptr_t)c};
    if (epoll_ctl(c->t->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        net_rdma_close(c, NINES_ESYS, "epoll_ctl(MOD) failed: %s", strerror(errno));
}

static void rd_cm_write(struct net_rdma_conn *c)
{
    while (c->cm_out_len > 0) {
        ssize_t w = send(c->fd, c->cm_out, c->cm_out_len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rd_ep_mod(c, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
            return;
        }
        if (w < 0) {
            net_rdma_close(c, NINES_EIO, "side channel write failed: %s", strerror(errno));
            return;
        }
        memmove(c->cm_out, c->cm_out + w, c->cm_out_len - (size_t)w);
        c->cm_out_len -= (uint32_t)w;
    }
    rd_ep_mod(c, EPOLLIN | EPOLLRDHUP);
}

static void rd_cm_send(struct net_rdma_conn *c, const struct net_rdma_cm_msg *m)
{
    N_ASSERT(c->cm_out_len + RDMA_CM_MSG_BYTES <= sizeof c->cm_out);
    net_rdma_cm_pack(c->cm_out + c->cm_out_len, m);
    c->cm_out_len += RDMA_CM_MSG_BYTES;
    rd_cm_write(c);
}

static void rd_cm_fill(struct net_rdma_conn *c, struct net_rdma_cm_msg *m, uint16_t type)
{
    struct net_rdma_tr *t = c->t;
    memset(m, 0, sizeof *m);
    m->type = type;
    m->node = t->self;
    m->cluster_crc = t->cluster_crc;
    m->slot_bytes = t->p.slot_bytes;
    m->recv_slots = t->p.recv_slots;
    if (c->qp_open) {
        m->qpn = c->q.qp->qp_num;
        m->psn = c->q.psn;
    }
    m->lid = t->local.lid;
    m->mtu = (uint8_t)t->local.mtu;
    m->flags = t->local.grh ? RDMA_CM_F_GRH : 0;
    memcpy(m->gid, t->local.gid.raw, 16);
}

static void rd_reject(struct net_rdma_conn *c, int err)
{
    struct net_rdma_cm_msg m;
    rd_cm_fill(c, &m, RDMA_CM_REJ);
    m.err = err;
    uint8_t b[RDMA_CM_MSG_BYTES];
    net_rdma_cm_pack(b, &m);
    (void)!send(c->fd, b, sizeof b, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Create CQ + QP, move it to INIT and post every receive slot. */
static int rd_setup_qp(struct net_rdma_conn *c)
{
    struct net_rdma_tr *t = c->t;
    uint32_t R = t->p.recv_slots;
    c->sq_depth = 2 * R + t->p.signal_every + 2;
    c->sq_slot = calloc(c->sq_depth, sizeof *c->sq_slot);
    if (!c->sq_slot)
        return nines_err(NINES_ENOMEM, "rdma: send ring of %u entries", c->sq_depth);
    uint32_t psn = (uint32_t)(nclock_ns() ^ ((uintptr_t)c >> 4)) & 0xffffffu;
    size_t buf = (size_t)R * t->p.slot_bytes + (size_t)c->sq_depth * RDMA_SLOT_HDR;
    int rc = net_rdma_qp_open(t->v, t->ctx, t->pd, t->ch, c, c->sq_depth, R, buf, psn, &c->q);
    if (rc < 0)
        return rc;
    c->qp_open = true;
    rc = net_rdma_qp_to_init(t->v, &c->q, &t->local);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < R; i++)
        if ((rc = net_rdma_post_recv(c, i)) < 0)
            return rc;
    return 0;
}

static int rd_check_peer_msg(struct net_rdma_tr *t, const struct net_rdma_cm_msg *m)
{
    if (m->cluster_crc != t->cluster_crc)
        return nines_err(NINES_ECONFIG, "node %u is in another cluster (name crc %08x, ours %08x)", m->node,
                         m->cluster_crc, t->cluster_crc);
    if (m->slot_bytes != t->p.slot_bytes)
        return nines_err(NINES_ECONFIG, "node %u uses %u-byte slots, we use %u", m->node, m->slot_bytes,
                         t->p.slot_bytes);
    if (m->recv_slots < 2 || m->recv_slots > RD_MAX_RECV_SLOTS)
        return nines_err(NINES_EPROTO, "node %u offers %u receive slots (2..%u)", m->node, m->recv_slots,
                         RD_MAX_RECV_SLOTS);
    return 0;
}

static void rd_accept_req(struct net_rdma_conn *c, const struct net_rdma_cm_msg *m)
{
    struct net_rdma_tr *t = c->t;
    int rc = rd_check_peer_msg(t, m);
    if (rc == 0 && (m->node == 0 || m->node > NINES_MAX_NODES || !t->peers[m->node].configured))
        rc = nines_err(NINES_ECONFIG, "REQ from node %u, not a peer of node %u", m->node, t->self);
    else if (rc == 0 && t->peers[m->node].dial)
        rc = nines_err(NINES_EPROTO, "REQ from node %u, which node %u dials itself (higher id)", m->node,
                       t->self);
    if (rc < 0) {
        rd_reject(c, rc);
        net_rdma_close(c, rc, "refused handshake: %s", nines_errdetail());
        return;
    }
    c->claimed_node = m->node;
    c->remote_qpn = m->qpn;
    c->peer_slots = m->recv_slots;
    c->credits = m->recv_slots;
    if ((rc = rd_setup_qp(c)) < 0 || (rc = net_rdma_qp_to_rtr(t->v, &c->q, &t->local, m)) < 0 ||
        (rc = net_rdma_qp_to_rts(t->v, &c->q)) < 0) {
        rd_reject(c, rc);
        net_rdma_close(c, rc, "queue pair setup for node %u failed: %s", m->node, nines_errdetail());
        return;
    }
    c->st = RD_REP_SENT;
    struct net_rdma_cm_msg rep;
    rd_cm_fill(c, &rep, RDMA_CM_REP);
    rd_cm_send(c, &rep);
}

static void rd_dial_rep(struct net_rdma_conn *c, const struct net_rdma_cm_msg *m)
{
    struct net_rdma_tr *t = c->t;
    int rc = rd_check_peer_msg(t, m);
    if (rc == 0 && m->node != c->node)
        rc = nines_err(NINES_ECONFIG, "dialled node %u but node %u answered", c->node, m->node);
    if (rc == 0) {
        c->claimed_node = m->node;
        c->remote_qpn = m->qpn;
        c->peer_slots = m->recv_slots;
        c->credits = m->recv_slots;
        if ((rc = net_rdma_qp_to_rtr(t->v, &c->q, &t->local, m)) == 0)
            rc = net_rdma_qp_to_rts(t->v, &c->q);
    }
    if (rc < 0) {
        net_rdma_close(c, rc, "handshake with node %u failed: %s", c->node, nines_errdetail());
        return;
    }
    struct net_rdma_cm_msg rtu;
    rd_cm_fill(c, &rtu, RDMA_CM_RTU);
    rd_cm_send(c, &rtu);
    if (c->st != RD_CLOSED)
        net_rdma_establish(c);
}

static void rd_cm_msg(struct net_rdma_conn *c, const struct net_rdma_cm_msg *m)
{
    switch (c->st) {
    case RD_ACCEPTING:
        if (m->type == RDMA_CM_REQ) {
            rd_accept_req(c, m);
            return;
        }
        break;
    case RD_REQ_SENT:
        if (m->type == RDMA_CM_REP) {
            rd_dial_rep(c, m);
            return;
        }
        if (m->type == RDMA_CM_REJ) {
            net_rdma_close(c, m->err < 0 ? m->err : NINES_EPROTO, "node %u refused the handshake: %s",
                           c->node,
                     nines_strerror(m->err));
            return;
        }
        break;
    case RD_REP_SENT:
        if (m->type == RDMA_CM_RTU) {
            c->rtu_seen = true;
            net_rdma_establish(c);
            return;
        }
        break;
    case RD_ESTABLISHED:
        if (m->type == RDMA_CM_RTU && !c->outbound && !c->rtu_seen) {
            c->rtu_seen = true;
            return;
        }
        break;
    case RD_DIALING:
    case RD_CLOSED:
        break;
    default:
        N_ASSERT(!"bad rdma connection state");
    }
    net_rdma_close(c, NINES_EPROTO, "unexpected side-channel message type %u in state %d", m->type,
                   (int)c->st);
}

static void rd_cm_read(struct net_rdma_conn *c)
{
    while (c->st != RD_CLOSED) {
        ssize_t r = recv(c->fd, c->cm_in + c->cm_have, RDMA_CM_MSG_BYTES - c->cm_have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r < 0) {
            net_rdma_close(c, NINES_ECLOSED, "side channel: %s", strerror(errno));
            return;
        }
        if (r == 0) {
            net_rdma_drain(c);        /* frames the peer sent before closing */
            net_rdma_close(c, NINES_ECLOSED, "peer closed the side channel");
            return;
        }
        c->cm_have += (uint32_t)r;
        if (c->cm_have < RDMA_CM_MSG_BYTES)
            continue;
        c->cm_have = 0;
        struct net_rdma_cm_msg m;
        int rc = net_rdma_cm_parse(c->cm_in, &m);
        if (rc < 0) {
            net_rdma_close(c, rc, "side channel: %s", nines_errdetail());
            return;
        }
        rd_cm_msg(c, &m);
    }
}

static void rd_dial_connected(struct net_rdma_conn *c)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    if (soerr != 0) {
        net_rdma_close(c, NINES_EUNREACHABLE, "connect to node %u side channel: %s", c->node,
                       strerror(soerr));
        return;
    }
    int rc = rd_setup_qp(c);
    if (rc < 0) {
        net_rdma_close(c, rc, "queue pair setup for node %u failed: %s", c->node, nines_errdetail());
        return;
    }
    c->st = RD_REQ_SENT;
    struct net_rdma_cm_msg m;
    rd_cm_fill(c, &m, RDMA_CM_REQ);
    rd_cm_send(c, &m);
}

void net_rdma_sock_event(struct net_rdma_conn *c, uint32_t ev)
{
    switch (c->st) {
    case RD_DIALING:
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            rd_dial_connected(c);
        return;
    case RD_REQ_SENT:
    case RD_ACCEPTING:
    case RD_REP_SENT:
    case RD_ESTABLISHED:
        if ((ev & EPOLLOUT) && c->cm_out_len > 0)
            rd_cm_write(c);
        if (c->st != RD_CLOSED && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            rd_cm_read(c);
        return;
    case RD_CLOSED:
        return;
    default:
        N_ASSERT(!"bad rdma connection state");
    }
}

/* ------------------------------------------------------------ lifecycle */

static struct net_rdma_conn *rd_conn_new(struct net_rdma_tr *t, int fd, bool outbound)
{
    struct net_rdma_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->t = t;
    c->fd = fd;
    c->outbound = outbound;
    c->own.head = c->own.tail = -1;
    c->sendq = &c->own;
    c->deadline_ms = nclock_ms() + RD_HANDSHAKE_MS;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.u64 = (uint64_t)(uintptr_t)c};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(c);
        return NULL;
    }
    c->next = t->conns;
    t->conns = c;
    return c;
}

void net_rdma_establish(struct net_rdma_conn *c)
{
    struct net_rdma_tr *t = c->t;
    c->st = RD_ESTABLISHED;
    t->st.conns_up++;
    t->nev++;
    if (c->outbound) {
        struct net_rdma_peer *p = &t->peers[c->node];
        p->pending = NULL;
        p->conn = c;
        p->backoff_ms = t->cfg.reconnect_min_ms;
        p->dial_failed_logged = false;
        c->addr = c->node;
        c->sendq = &p->q;
        NLOG_INFO(MOD, "connected to node %u (qp %u -> %u)", c->node, c->q.qp->qp_num, c->remote_qpn);
        /* Frames the owner sends from on_connect (its HELLO) go before
         * frames queued while the node was unreachable. */
        struct net_rdma_slotq saved = p->q;
        p->q = (struct net_rdma_slotq){.head = -1, .tail = -1, .n = 0};
        t->base.cb.on_connect(t->base.cb.ctx, c->node, 1);
        net_rdma_q_append(t, &p->q, &saved);
    } else {
        c->addr = t->next_conn_id++;
        NLOG_INFO(MOD, "accepted node %u as conn %llu (qp %u)", c->claimed_node,
                  (unsigned long long)(c->addr - NET_CONN_BASE), c->q.qp->qp_num);
        t->base.cb.on_connect(t->base.cb.ctx, c->addr, 0);
    }
    net_rdma_conn_post(c);
}

void net_rdma_close(struct net_rdma_conn *c, int err, const char *fmt, ...)
{
    struct net_rdma_tr *t = c->t;
    if (c->st == RD_CLOSED)
        return;
    enum net_rdma_state was = c->st;
    c->st = RD_CLOSED;
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    char b[40];
    if (c->fd >= 0) {
        (void)epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (c->outbound) {
        struct net_rdma_peer *p = &t->peers[c->node];
        if (p->pending == c)
            p->pending = NULL;
        if (p->conn == c)
            p->conn = NULL;
        p->next_dial_ms = nclock_ms() + p->backoff_ms;
        uint64_t nb = (uint64_t)p->backoff_ms * 2;
        p->backoff_ms = nb > t->cfg.reconnect_max_ms ? t->cfg.reconnect_max_ms : (uint32_t)nb;
        if (was == RD_ESTABLISHED)
            net_rdma_q_free_all(t, &p->q);   /* that session's output, as tcp.c */
    } else if (c->node != 0) {
        struct net_rdma_peer *p = &t->peers[c->node];
        if (p->conn == c) {
            p->conn = NULL;
            net_rdma_q_free_all(t, &p->q);
        }
    }
    net_rdma_q_free_all(t, &c->own);
    c->sendq = &c->own;
    if (was != RD_ESTABLISHED) {
        if (c->outbound && was == RD_DIALING && !t->peers[c->node].dial_failed_logged) {
            t->peers[c->node].dial_failed_logged = true;
            NLOG_INFO(MOD, "node %u not reachable yet (%s); retrying", c->node, reason);
        } else if (err == NINES_EPROTO || err == NINES_ECONFIG || err == NINES_EVERSION) {
            NLOG_WARN(MOD, "%s handshake failed: %s", c->outbound ? "outbound" : "inbound", reason);
        } else {
            NLOG_DEBUG(MOD, "%s handshake ended: %s", c->outbound ? "outbound" : "inbound", reason);
        }
        return;
    }
    t->st.conns_closed++;
    NLOG_INFO(MOD, "closed %s: %s", net_rdma_addr_str(c->addr, b, sizeof b), reason);
    t->nev++;
    t->base.cb.on_close(t->base.cb.ctx, c->addr, err);
}

static void rd_conn_free(struct net_rdma_tr *t, struct net_rdma_conn *c)
{
    if (c->qp_open) {
        net_rdma_qp_free(t->v, &c->q);
        c->qp_open = false;
    }
    if (c->sq_slot) {
        while (c->sq_head < c->sq_next) {
            int32_t s = c->sq_slot[c->sq_head % c->sq_depth];
            if (s >= 0)
                net_rdma_pool_put(t, s);
            c->sq_head++;
        }
        free(c->sq_slot);
    }
    net_rdma_q_free_all(t, &c->own);
    free(c->asm_buf);
    free(c);
}

/* Release closed connections: destroy their QPs (no further completions),
 * acknowledge every channel event, then free CQs and buffers. */
void net_rdma_reap(struct net_rdma_tr *t)
{
    bool any = false;
    for (struct net_rdma_conn *c = t->conns; c; c = c->next)
        if (c->st == RD_CLOSED) {
            any = true;
            if (c->qp_open)
                net_rdma_qp_destroy_qp(t->v, &c->q);
        }
    if (!any)
        return;
    net_rdma_channel_drain(t);
    struct net_rdma_conn **pp = &t->conns;
    while (*pp) {
        struct net_rdma_conn *c = *pp;
        if (c->st == RD_CLOSED) {
            *pp = c->next;
            rd_conn_free(t, c);
        } else {
            pp = &c->next;
        }
    }
}

static void rd_dial(struct net_rdma_tr *t, uint32_t node)
{
    struct net_rdma_peer *p = &t->peers[node];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        NLOG_WARN(MOD, "socket() for node %u: %s", node, strerror(errno));
        p->next_dial_ms = nclock_ms() + p->backoff_ms;
        return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct net_rdma_conn *c = rd_conn_new(t, fd, true);
    if (!c) {
        close(fd);
        p->next_dial_ms = nclock_ms() + p->backoff_ms;
        return;
    }
    c->st = RD_DIALING;
    c->node = node;
    c->addr = node;
    p->pending = c;
    if (connect(fd, (struct sockaddr *)&p->sa, sizeof p->sa) != 0 && errno != EINPROGRESS)
        net_rdma_close(c, NINES_EUNREACHABLE, "connect to node %u side channel: %s", node, strerror(errno));
}

void net_rdma_accept(struct net_rdma_tr *t)
{
    for (;;) {
        int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                NLOG_WARN(MOD, "accept on side channel: %s", strerror(errno));
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct net_rdma_conn *c = rd_conn_new(t, fd, false);
        if (!c) {
            close(fd);
            continue;
        }
        c->st = RD_ACCEPTING;
        rd_ep_mod(c, EPOLLIN | EPOLLRDHUP);
    }
}

void net_rdma_timers(struct net_rdma_tr *t, uint64_t now)
{
    if (!t->started)
        return;
    for (uint32_t id = 1; id <= NINES_MAX_NODES; id++) {
        struct net_rdma_peer *p = &t->peers[id];
        if (p->dial && !p->conn && !p->pending && p->next_dial_ms <= now)
            rd_dial(t, id);
    }
    for (struct net_rdma_conn *c = t->conns; c; c = c->next)
        if (c->st != RD_ESTABLISHED && c->st != RD_CLOSED && c->deadline_ms <= now)
            net_rdma_close(c, NINES_ETIMEDOUT, "handshake timed out after %u ms", RD_HANDSHAKE_MS);
}

/* Milliseconds until the next timer, or -1. */
int net_rdma_next_timer(struct net_rdma_tr *t, uint64_t now)
{
    uint64_t due = UINT64_MAX;
    if (t->started)
        for (uint32_t id = 1; id <= NINES_MAX_NODES; id++) {
            struct net_rdma_peer *p = &t->peers[id];
            if (p->dial && !p->conn && !p->pending && p->next_dial_ms < due)
                due = p->next_dial_ms;
        }
    for (struct net_rdma_conn *c = t->conns; c; c = c->next)
        if (c->st != RD_ESTABLISHED && c->st != RD_CLOSED && c->deadline_ms < due)
            due = c->deadline_ms;
    if (due == UINT64_MAX)
        return -1;
    return due <= now ? 0 : (int)(due - now > 60000 ? 60000 : due - now);
}
