/* RDMA transport: one reliable-connected queue pair per peer, frames
 * batched into registered send slots, credit-based flow control, and a TCP
 * side channel for the queue-pair handshake. net/README.md ("RDMA transport") describes
 * the design, the slot and credit protocol and the setup sequence.
 * This file: the ops table, poll/wake/bind/close/start/destroy, creation;
 * rdma_data.c the data path, rdma_conn.c connections.
 *
 * Threading: every op except wake() runs on the owner thread. */
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



static void rd_events(struct net_rdma_tr *t, int wait_ms)
{
    struct epoll_event ev[32];
    int n = epoll_wait(t->epfd, ev, 32, wait_ms);
    for (int i = 0; i < n; i++) {
        uint64_t tag = ev[i].data.u64;
        if (tag == RD_TAG_WAKE) {
            uint64_t v;
            (void)!read(t->wakefd, &v, sizeof v);
        } else if (tag == RD_TAG_CHANNEL) {
            net_rdma_channel_drain(t);
        } else if (tag == RD_TAG_LISTEN) {
            net_rdma_accept(t);
        } else if (tag == RD_TAG_WATCH) {
            t->watch_ready = true;   /* its owner reads it after our poll */
        } else {
            net_rdma_sock_event((struct net_rdma_conn *)(uintptr_t)tag, ev[i].events);
        }
    }
}

static void rd_progress(struct net_rdma_tr *t, int wait_ms)
{
    rd_events(t, wait_ms);
    net_rdma_timers(t, nclock_ms());
    net_rdma_drain_all(t);
}

/* Nothing to report yet: no upcall since ev0 and the watched fd is quiet. */
static bool rd_idle(const struct net_rdma_tr *t, uint64_t ev0)
{
    return t->nev == ev0 && !t->watch_ready;
}

static int rd_poll(struct net_transport *bt, int timeout_ms)
{
    struct net_rdma_tr *t = net_rdma_tr_of(bt);
    uint64_t ev0 = t->nev;
    t->depth++;
    t->watch_ready = false;
    rd_progress(t, 0);
    if (rd_idle(t, ev0) && timeout_ms != 0) {
        uint64_t start = nclock_us();
        while (t->cfg.poll_us > 0 && rd_idle(t, ev0) && nclock_us() - start < t->cfg.poll_us)
            rd_progress(t, 0);
        if (rd_idle(t, ev0)) {
            /* Arm every CQ, then look once more: a completion that landed
             * before the arm raises no event. */
            for (struct net_rdma_conn *c = t->conns; c; c = c->next)
                if (c->st != RD_CLOSED && c->qp_open && t->v->req_notify_cq(c->q.cq, 0) != 0)
                    net_rdma_close(c, NINES_EIO, "req_notify_cq failed");
            net_rdma_drain_all(t);
            if (rd_idle(t, ev0)) {
                uint64_t now = nclock_ms();
                int wait = net_rdma_next_timer(t, now);
                if (timeout_ms >= 0 && (wait < 0 || wait > timeout_ms))
                    wait = timeout_ms;
                rd_progress(t, wait);
            }
        }
    }
    net_rdma_drain_all(t);
    t->depth--;
    if (t->depth == 0)
        net_rdma_reap(t);
    return (int)(t->nev - ev0);
}

int net_rdma_watch_fd(struct net_transport *bt, int fd)
{
    struct net_rdma_tr *t = net_rdma_tr_of(bt);
    if (t->watchfd >= 0)
        return nines_err(NINES_ESTATE, "rdma: already watching fd %d (asked for fd %d)", t->watchfd,
                         fd);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = RD_TAG_WATCH};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return nines_err(NINES_ESYS, "rdma: epoll_ctl(watch fd %d): %s", fd, strerror(errno));
    t->watchfd = fd;
    return 0;
}

static void rd_wake(struct net_transport *bt)
{
    uint64_t one = 1;
    (void)!write(net_rdma_tr_of(bt)->wakefd, &one, sizeof one);
}

static int rd_bind(struct net_transport *bt, net_addr conn, uint32_t node)
{
    struct net_rdma_tr *t = net_rdma_tr_of(bt);
    struct net_rdma_conn *c = conn >= NET_CONN_BASE ? net_rdma_find_conn_id(t, conn) : NULL;
    if (!c)
        return nines_err(NINES_EUNREACHABLE, "rdma bind: no open unbound connection %llu",
                         (unsigned long long)(conn >= NET_CONN_BASE ? conn - NET_CONN_BASE : conn));
    if (node == 0 || node > NINES_MAX_NODES || !t->peers[node].configured)
        return nines_err(NINES_EINVAL, "rdma bind: node %u is not a peer of node %u", node, t->self);
    if (node != c->claimed_node)
        return nines_err(NINES_EINVAL, "rdma bind: conn %llu announced node %u in its handshake, not %u",
                         (unsigned long long)(conn - NET_CONN_BASE), c->claimed_node, node);
    struct net_rdma_peer *p = &t->peers[node];
    if (p->conn && p->conn != c)
        net_rdma_close(p->conn, NINES_ECLOSED, "replaced by a newer connection from node %u", node);
    /* The connection's own frames (its HELLO_CONF) go first. */
    net_rdma_q_append(t, &c->own, &p->q);
    p->q = c->own;
    c->own = (struct net_rdma_slotq){.head = -1, .tail = -1, .n = 0};
    c->sendq = &p->q;
    c->node = node;
    c->addr = node;
    p->conn = c;
    net_rdma_conn_post(c);
    return 0;
}

static void rd_op_close(struct net_transport *bt, net_addr addr, int err, const char *reason)
{
    struct net_rdma_tr *t = net_rdma_tr_of(bt);
    struct net_rdma_conn *c = NULL;
    if (addr >= 1 && addr <= NINES_MAX_NODES) {
        c = t->peers[addr].conn;
        if (!c) {
            net_rdma_q_free_all(t, &t->peers[addr].q);
            return;
        }
    } else if (addr >= NET_CONN_BASE) {
        c = net_rdma_find_conn_id(t, addr);
    }
    if (!c)
        return;
    net_rdma_conn_post(c);    /* best effort: a HELLO_REF or last reply queued just before */
    net_rdma_close(c, err, "%s", reason ? reason : "closed by owner");
}

static int rd_start(struct net_transport *bt)
{
    struct net_rdma_tr *t = net_rdma_tr_of(bt);
    if (t->started)
        return nines_err(NINES_ESTATE, "rdma transport already started");
    const struct nines_node_conf *me = nines_conf_node(&t->cfg, t->self);
    struct sockaddr_in sa = t->peers[0].sa;    /* own side-channel address */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return nines_err(NINES_ESYS, "rdma: socket(): %s", strerror(errno));
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        int e = errno;
        close(fd);
        return nines_err(NINES_ESYS, "rdma side channel: cannot listen on %s:%u: %s", me->host,
                         (unsigned)ntohs(sa.sin_port), strerror(e));
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = RD_TAG_LISTEN};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = errno;
        close(fd);
        return nines_err(NINES_ESYS, "rdma: epoll_ctl(listen): %s", strerror(e));
    }
    t->lfd = fd;
    t->started = true;
    uint64_t now = nclock_ms();
    for (uint32_t id = 1; id <= NINES_MAX_NODES; id++)
        if (t->peers[id].dial)
            t->peers[id].next_dial_ms = now;
    net_rdma_timers(t, now);
    return 0;
}

static void rd_destroy(struct net_transport *bt)
{
    struct net_rdma_tr *t = net_rdma_tr_of(bt);
    if (!t)
        return;
    N_ASSERT(t->depth == 0);
    for (struct net_rdma_conn *c = t->conns; c; c = c->next) {
        if (c->fd >= 0) {
            (void)epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
        }
        c->st = RD_CLOSED;
    }
    net_rdma_reap(t);
    for (uint32_t id = 0; id <= NINES_MAX_NODES; id++)
        net_rdma_q_free_all(t, &t->peers[id].q);
    if (t->pool_mr)
        (void)t->v->dereg_mr(t->pool_mr);
    if (t->ch)
        (void)t->v->destroy_comp_channel(t->ch);
    if (t->pd)
        (void)t->v->dealloc_pd(t->pd);
    if (t->ctx)
        (void)t->v->close_device(t->ctx);
    if (t->lfd >= 0)
        close(t->lfd);
    if (t->wakefd >= 0)
        close(t->wakefd);
    if (t->epfd >= 0)
        close(t->epfd);
    free(t->pool);
    free(t->slot_next);
    free(t->slot_used);
    free(t->slot_kind);
    free(t->stage);
    free(t);
}

static const struct net_transport_ops rd_ops = {
    .name = "rdma",
    .start = rd_start,
    .reserve = net_rdma_reserve,
    .commit = net_rdma_commit,
    .flush = net_rdma_flush,
    .poll = rd_poll,
    .wake = rd_wake,
    .bind = rd_bind,
    .close = rd_op_close,
    .destroy = rd_destroy,
};

/* ------------------------------------------------------------- creation */

static int resolve(const char *host, uint16_t port, struct sockaddr_in *out)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &ai);
    if (rc != 0 || !ai)
        return nines_err(NINES_ECONFIG, "rdma: cannot resolve host '%s': %s", host, gai_strerror(rc));
    memcpy(out, ai->ai_addr, sizeof *out);
    out->sin_port = htons(port);
    freeaddrinfo(ai);
    return 0;
}

static int rd_params(struct net_rdma_tr *t, const struct net_rdma_params *in)
{
    struct net_rdma_params p = in ? *in : (struct net_rdma_params){0};
    if (p.slot_bytes == 0)
        p.slot_bytes = RD_DEFAULT_SLOT_BYTES;
    if (p.recv_slots == 0)
        p.recv_slots = RD_DEFAULT_RECV_SLOTS;
    if (p.signal_every == 0)
        p.signal_every = RD_DEFAULT_SIGNAL_EVERY;
    if (p.slot_bytes < 64 || p.slot_bytes > (1u << 24))
        return nines_err(NINES_EINVAL, "rdma: slot_bytes %u outside 64..%u", p.slot_bytes, 1u << 24);
    if (p.recv_slots < 2 || p.recv_slots > RD_MAX_RECV_SLOTS)
        return nines_err(NINES_EINVAL, "rdma: recv_slots %u outside 2..%u", p.recv_slots, RD_MAX_RECV_SLOTS);
    t->cap = p.slot_bytes - RDMA_SLOT_HDR;
    t->p = p;
    uint32_t frame = net_rdma_big_slots(t, t->cfg.max_frame_bytes);
    if (p.dest_slots == 0) {
        p.dest_slots = t->cfg.send_queue_bytes / p.slot_bytes;
        if (p.dest_slots < frame + 1)
            p.dest_slots = frame + 1;
    }
    if (p.dest_slots < frame)
        p.dest_slots = frame;   /* one frame of max_frame_bytes must always fit */
    if (p.pool_slots == 0) {
        uint32_t npeers = t->cfg.nnodes > 1 ? t->cfg.nnodes - 1 : 1;
        uint64_t want = (uint64_t)p.dest_slots * npeers;
        p.pool_slots = (uint32_t)(want < RD_DEFAULT_POOL_CAP ? want : RD_DEFAULT_POOL_CAP);
    }
    if (p.pool_slots < p.dest_slots)
        p.pool_slots = p.dest_slots;
    t->p = p;
    return 0;
}

int net_rdma_create_with(struct net_transport **out, const struct nines_conf *cfg, uint32_t self,
                         const struct net_verbs_ops *v, const struct net_rdma_params *params)
{
    *out = NULL;
    const struct nines_node_conf *me = nines_conf_node(cfg, self);
    if (!me)
        return nines_err(NINES_ECONFIG, "rdma: node %u is not in the cluster configuration", self);
    int n = 0;
    errno = 0;
    struct ibv_device **list = v->get_device_list(&n);
    if (!list || n <= 0) {
        int e = errno;
        if (list)
            v->free_device_list(list);
        if (!list && e != 0)
            return nines_err(NINES_ENODEV, "no RDMA device found (ibv_get_device_list failed: %s)",
                             strerror(e));
        return nines_err(NINES_ENODEV, "no RDMA device found (ibv_get_device_list returned 0 devices)");
    }
    struct net_rdma_tr *t = calloc(1, sizeof *t);
    if (!t) {
        v->free_device_list(list);
        return nines_err(NINES_ENOMEM, "rdma transport");
    }
    t->base.ops = &rd_ops;
    t->v = v;
    t->cfg = *cfg;
    t->self = self;
    t->epfd = t->wakefd = t->lfd = t->watchfd = -1;
    t->free_head = -1;
    t->next_conn_id = NET_CONN_BASE + 1;
    t->cluster_crc = crc32c(0, cfg->cluster, strlen(cfg->cluster));
    for (uint32_t id = 0; id <= NINES_MAX_NODES; id++)
        t->peers[id].q = (struct net_rdma_slotq){.head = -1, .tail = -1, .n = 0};
    int rc;
    /* Device: NINES_RDMA_DEVICE names one, else the first. */
    const char *want = getenv("NINES_RDMA_DEVICE");
    struct ibv_device *dev = NULL;
    for (int i = 0; i < n && !dev; i++)
        if (!want || !*want || strcmp(v->get_device_name(list[i]), want) == 0)
            dev = list[i];
    if (!dev) {
        v->free_device_list(list);
        free(t);
        return nines_err(NINES_ENODEV, "RDMA device '%s' (NINES_RDMA_DEVICE) not found among %d devices",
                         want, n);
    }
    snprintf(t->devname, sizeof t->devname, "%s", v->get_device_name(dev));
    t->ctx = v->open_device(dev);
    int e = errno;
    v->free_device_list(list);
    if (!t->ctx) {
        rc = nines_err(NINES_ENODEV, "cannot open RDMA device %s: %s", t->devname, strerror(e));
        goto fail;
    }
    const char *ps = getenv("NINES_RDMA_PORT"), *gs = getenv("NINES_RDMA_GID_INDEX");
    int port = ps && *ps ? atoi(ps) : 1, gid = gs && *gs ? atoi(gs) : 0;
    if (port < 1 || port > 255 || gid < 0 || gid > 255) {
        rc = nines_err(NINES_ECONFIG, "rdma: NINES_RDMA_PORT %d (1..255) or NINES_RDMA_GID_INDEX %d (0..255)",
                       port, gid);
        goto fail;
    }
    if ((rc = net_rdma_local_query(v, t->ctx, t->devname, (uint8_t)port, gid, &t->local)) < 0)
        goto fail;
    if ((rc = rd_params(t, params)) < 0)
        goto fail;
    t->pd = v->alloc_pd(t->ctx);
    if (!t->pd) {
        rc = nines_err(NINES_ENODEV, "RDMA device %s: alloc_pd failed: %s", t->devname, strerror(errno));
        goto fail;
    }
    t->ch = v->create_comp_channel(t->ctx);
    if (!t->ch) {
        rc = nines_err(NINES_ENODEV, "RDMA device %s: create_comp_channel failed: %s", t->devname,
                       strerror(errno));
        goto fail;
    }
    int fl = fcntl(t->ch->fd, F_GETFL);
    if (fl < 0 || fcntl(t->ch->fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        rc = nines_err(NINES_ESYS, "rdma: completion channel fd %d non-blocking: %s", t->ch->fd,
                       strerror(errno));
        goto fail;
    }
    size_t pool_bytes = (size_t)t->p.pool_slots * t->p.slot_bytes;
    t->pool = aligned_alloc(4096, (pool_bytes + 4095) / 4096 * 4096);
    t->slot_next = malloc(t->p.pool_slots * sizeof *t->slot_next);
    t->slot_used = calloc(t->p.pool_slots, sizeof *t->slot_used);
    t->slot_kind = calloc(t->p.pool_slots, sizeof *t->slot_kind);
    if (!t->pool || !t->slot_next || !t->slot_used || !t->slot_kind) {
        rc = nines_err(NINES_ENOMEM, "rdma: send pool of %u x %u bytes", t->p.pool_slots, t->p.slot_bytes);
        goto fail;
    }
    for (uint32_t i = t->p.pool_slots; i-- > 0;)
        net_rdma_pool_put(t, (int32_t)i);
    t->pool_mr = v->reg_mr(t->pd, t->pool, pool_bytes, IBV_ACCESS_LOCAL_WRITE);
    if (!t->pool_mr) {
        rc = nines_err(NINES_ENODEV, "RDMA device %s: reg_mr of the %zu-byte send pool failed: %s"
                       " (locked-memory limit? see ulimit -l)", t->devname, pool_bytes, strerror(errno));
        goto fail;
    }
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->epfd < 0 || t->wakefd < 0) {
        rc = nines_err(NINES_ESYS, "rdma: epoll/eventfd: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = RD_TAG_WAKE};
    struct epoll_event evc = {.events = EPOLLIN, .data.u64 = RD_TAG_CHANNEL};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wakefd, &ev) != 0 ||
        epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->ch->fd, &evc) != 0) {
        rc = nines_err(NINES_ESYS, "rdma: epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    /* Side-channel addresses: node port + RDMA_CM_PORT_OFFSET. peers[0]
     * holds our own listening address. */
    for (uint32_t i = 0; i < cfg->nnodes; i++) {
        const struct nines_node_conf *nc = &cfg->nodes[i];
        if ((uint32_t)nc->port + RDMA_CM_PORT_OFFSET > 65535u) {
            rc = nines_err(NINES_ECONFIG, "rdma: node %u port %u + %u (side channel) exceeds 65535", nc->id,
                           nc->port, RDMA_CM_PORT_OFFSET);
            goto fail;
        }
        uint32_t slot = nc->id == self ? 0 : nc->id;
        if ((rc = resolve(nc->host, (uint16_t)(nc->port + RDMA_CM_PORT_OFFSET), &t->peers[slot].sa)) < 0)
            goto fail;
        if (nc->id != self) {
            t->peers[nc->id].configured = true;
            t->peers[nc->id].dial = nc->id > self;
            t->peers[nc->id].backoff_ms = cfg->reconnect_min_ms;
        }
    }
    NLOG_INFO(MOD,
              "node %u: RDMA device %s port %u (lid %u, %s), %u x %u-byte slots, %u receive slots per peer",
              self, t->devname, t->local.port, t->local.lid, t->local.grh ? "RoCE" : "InfiniBand",
              t->p.pool_slots, t->p.slot_bytes, t->p.recv_slots);
    *out = &t->base;
    return 0;
fail:
    rd_destroy(&t->base);
    return rc;
}

int net_rdma_create(struct net_transport **out, const struct nines_conf *cfg, uint32_t self)
{
    return net_rdma_create_with(out, cfg, self, &net_verbs_real, NULL);
}

void net_rdma_get_stats(const struct net_transport *bt, struct net_rdma_stats *out)
{
    *out = ((const struct net_rdma_tr *)bt)->st;
}

uint32_t net_rdma_conn_qpn(const struct net_transport *bt, net_addr addr)
{
    struct net_rdma_tr *t = (struct net_rdma_tr *)bt;
    struct net_rdma_conn *c = NULL;
    if (addr >= 1 && addr <= NINES_MAX_NODES)
        c = t->peers[addr].conn;
    else if (addr >= NET_CONN_BASE)
        c = net_rdma_find_conn_id(t, addr);
    return c && c->qp_open && c->q.qp ? c->q.qp->qp_num : 0;
}

