/* Composite transport: node-to-node frames over RDMA, clients over TCP.
 * Design, address mapping and polling: net/README.md, "RDMA for nodes, TCP
 * for clients".
 *
 * Threading: every op except wake() runs on the owner thread, as for the
 * two halves. */
#include "dual.h"

#include <stdbool.h>
#include <stdlib.h>

#include "nassert.h"
#include "nines/errors.h"
#include "rdma.h"
#include "tcp.h"

/* TCP connection addresses are shown to the owner with this bit set. The
 * RDMA half numbers its connections NET_CONN_BASE + a counter and TCP uses
 * NET_CONN_BASE + (generation << 20 | slot) < 2^53, so neither ever sets
 * it: the two ranges cannot collide, and routing is one bit test. */
#define DUAL_TCP_TAG ((net_addr)1 << 62)

struct dual {
    struct net_transport base;
    struct net_transport *rd;    /* node addresses, accepted RDMA connections */
    struct net_transport *tcp;   /* client connections only */
    struct net_transport *res;   /* half of the pending reserve(), or NULL */
};

static const struct net_transport_ops dual_ops;

static struct dual *dual_of(struct net_transport *t) { return (struct dual *)t; }

/* The half that owns `*a`, with *a translated to that half's address. */
static struct net_transport *dual_route(struct dual *d, net_addr *a)
{
    if (*a & DUAL_TCP_TAG) {
        *a &= ~DUAL_TCP_TAG;
        return d->tcp;
    }
    return d->rd;
}

static void dual_sync_writes(struct dual *d) { d->base.writes = d->rd->writes + d->tcp->writes; }

/* ---- upcalls from the halves, forwarded to our owner ---- */

static void rd_up_connect(void *ctx, net_addr a, int outbound)
{
    struct dual *d = ctx;
    N_ASSERT((a & DUAL_TCP_TAG) == 0);
    if (d->base.cb.on_connect)
        d->base.cb.on_connect(d->base.cb.ctx, a, outbound);
}

static int rd_up_frame(void *ctx, net_addr a, const uint8_t *buf, size_t len)
{
    struct dual *d = ctx;
    return d->base.cb.on_frame(d->base.cb.ctx, a, buf, len);
}

static void rd_up_close(void *ctx, net_addr a, int err)
{
    struct dual *d = ctx;
    if (d->base.cb.on_close)
        d->base.cb.on_close(d->base.cb.ctx, a, err);
}

/* The TCP half never dials and never binds, so it only ever reports
 * accepted connection addresses. */
static net_addr tcp_addr_up(net_addr a)
{
    N_ASSERT(a >= NET_CONN_BASE && (a & DUAL_TCP_TAG) == 0);
    return a | DUAL_TCP_TAG;
}

static void tcp_up_connect(void *ctx, net_addr a, int outbound)
{
    struct dual *d = ctx;
    N_ASSERT(!outbound);
    if (d->base.cb.on_connect)
        d->base.cb.on_connect(d->base.cb.ctx, tcp_addr_up(a), 0);
}

static int tcp_up_frame(void *ctx, net_addr a, const uint8_t *buf, size_t len)
{
    struct dual *d = ctx;
    return d->base.cb.on_frame(d->base.cb.ctx, tcp_addr_up(a), buf, len);
}

static void tcp_up_close(void *ctx, net_addr a, int err)
{
    struct dual *d = ctx;
    if (d->base.cb.on_close)
        d->base.cb.on_close(d->base.cb.ctx, tcp_addr_up(a), err);
}

/* ---- ops ---- */

static int dual_start(struct net_transport *t)
{
    struct dual *d = dual_of(t);
    int rc = d->tcp->ops->start(d->tcp);
    if (rc)
        return rc;
    return d->rd->ops->start(d->rd);
}

static void *dual_reserve(struct net_transport *t, net_addr to, size_t len, int *err)
{
    struct dual *d = dual_of(t);
    struct net_transport *h = dual_route(d, &to);
    void *p = h->ops->reserve(h, to, len, err);
    d->res = p ? h : NULL;
    return p;
}

static void dual_commit(struct net_transport *t, net_addr to, size_t len)
{
    struct dual *d = dual_of(t);
    struct net_transport *h = dual_route(d, &to);
    N_ASSERT(h == d->res);
    d->res = NULL;
    h->ops->commit(h, to, len);
    dual_sync_writes(d);
}

static int dual_flush(struct net_transport *t)
{
    struct dual *d = dual_of(t);
    int rc1 = d->rd->ops->flush(d->rd);
    int rc2 = d->tcp->ops->flush(d->tcp);
    dual_sync_writes(d);
    return rc1 < 0 ? rc1 : rc2;
}

/* Sleep in the RDMA half, whose epoll set also holds the TCP half's epoll
 * fd (net_rdma_watch_fd): RDMA keeps its busy-poll / arm / wait sequence,
 * and a client byte ends its busy poll or its sleep at once. Then dispatch
 * TCP without waiting, and post what the TCP upcalls queued for nodes. */
static int dual_poll(struct net_transport *t, int timeout_ms)
{
    struct dual *d = dual_of(t);
    int n1 = d->rd->ops->poll(d->rd, timeout_ms);
    if (n1 < 0) {
        dual_sync_writes(d);
        return n1;
    }
    int n2 = d->tcp->ops->poll(d->tcp, 0);
    if (n2 > 0)
        (void)d->rd->ops->flush(d->rd);
    dual_sync_writes(d);
    return n2 < 0 ? n2 : n1 + n2;
}

static void dual_wake(struct net_transport *t)
{
    struct dual *d = dual_of(t);
    d->rd->ops->wake(d->rd);   /* the only half that ever sleeps */
}

static int dual_may_bind(struct net_transport *t, net_addr conn, uint32_t node)
{
    (void)t;
    if (conn & DUAL_TCP_TAG)
        return nines_err(NINES_ECONFIG,
                         "node %u connected to the client TCP port; node traffic here uses RDMA "
                         "(side channel on port + 1000): does node %u run transport rdma with a "
                         "usable device?",
                         node, node);
    return 0;
}

static int dual_bind(struct net_transport *t, net_addr conn, uint32_t node)
{
    struct dual *d = dual_of(t);
    int rc = dual_may_bind(t, conn, node);
    if (rc)
        return rc;
    rc = d->rd->ops->bind(d->rd, conn, node);
    dual_sync_writes(d);
    return rc;
}

static void dual_close(struct net_transport *t, net_addr addr, int err, const char *reason)
{
    struct dual *d = dual_of(t);
    struct net_transport *h = dual_route(d, &addr);
    h->ops->close(h, addr, err, reason);
    dual_sync_writes(d);
}

static int dual_peer_name(struct net_transport *t, net_addr addr, char *buf, size_t n)
{
    struct net_transport *h = dual_route(dual_of(t), &addr);
    if (!h->ops->peer_name)
        return nines_err(NINES_ENOTFOUND, "%s: remote addresses not known", h->ops->name);
    return h->ops->peer_name(h, addr, buf, n);
}

static void dual_destroy(struct net_transport *t)
{
    struct dual *d = dual_of(t);
    if (!d)
        return;
    /* RDMA first: its epoll set watches the TCP half's epoll fd */
    d->rd->ops->destroy(d->rd);
    d->tcp->ops->destroy(d->tcp);
    free(d);
}

static const struct net_transport_ops dual_ops = {
    .name = "rdma+tcp",
    .start = dual_start,
    .reserve = dual_reserve,
    .commit = dual_commit,
    .flush = dual_flush,
    .poll = dual_poll,
    .wake = dual_wake,
    .bind = dual_bind,
    .may_bind = dual_may_bind,
    .close = dual_close,
    .destroy = dual_destroy,
    .peer_name = dual_peer_name,
};

int net_dual_create(struct net_transport **out, const struct nines_conf *cfg, uint32_t self,
                    struct net_transport *rdma)
{
    *out = NULL;
    struct net_transport *tcp = NULL;
    int rc = net_tcp_create_ex(&tcp, cfg, self, NET_TCP_CLIENTS_ONLY);
    if (rc) {
        rdma->ops->destroy(rdma);
        return rc;
    }
    struct dual *d = calloc(1, sizeof *d);
    if (!d) {
        rc = nines_err(NINES_ENOMEM, "rdma+tcp transport");
        goto fail;
    }
    rc = net_rdma_watch_fd(rdma, net_tcp_wait_fd(tcp));
    if (rc)
        goto fail;
    d->base.ops = &dual_ops;
    d->rd = rdma;
    d->tcp = tcp;
    rdma->cb = (struct net_transport_cb){
        .ctx = d, .on_connect = rd_up_connect, .on_frame = rd_up_frame, .on_close = rd_up_close};
    tcp->cb = (struct net_transport_cb){
        .ctx = d, .on_connect = tcp_up_connect, .on_frame = tcp_up_frame, .on_close = tcp_up_close};
    *out = &d->base;
    return 0;
fail:
    free(d);
    rdma->ops->destroy(rdma);
    tcp->ops->destroy(tcp);
    return rc;
}

struct net_transport *net_dual_rdma(struct net_transport *t)
{
    N_ASSERT(t->ops == &dual_ops);
    return dual_of(t)->rd;
}

struct net_transport *net_dual_tcp(struct net_transport *t)
{
    N_ASSERT(t->ops == &dual_ops);
    return dual_of(t)->tcp;
}
