/* TCP transport: epoll + non-blocking sockets. Design and invariants in
 * net/README.md ("TCP transport"). */
#include "tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "nassert.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nlog.h"
#include "sendq.h"

#define TCP_RBUF_BYTES (64u * 1024u)  /* one read() */
#define TCP_READS_PER_EVENT 16        /* fairness between connections */
#define TCP_MAX_EVENTS 64
#define TCP_SLOT_BITS 20              /* conn address = BASE + gen << 20 | slot */
#define TCP_MAX_SLOTS (1u << TCP_SLOT_BITS)

enum tcp_conn_state {
    TC_CONNECTING,  /* outbound, connect() in progress */
    TC_UP,          /* established; announced with on_connect */
    TC_CLOSED,      /* fd closed; struct waits in the graveyard */
};

struct tcp;

struct tcp_conn {
    struct tcp *t;
    int fd;
    enum tcp_conn_state st;
    net_addr addr;       /* node id when outbound or bound, else conn_addr */
    net_addr conn_addr;  /* BASE + (gen << 20 | slot) */
    uint32_t slot;
    uint32_t node;       /* 0 while unbound */
    bool outbound;
    bool want_out;       /* EPOLLOUT armed */
    bool dirty;          /* on t->dirty */
    struct net_sq q;     /* own queue while unbound (bound: the peer's) */
    struct net_fdec dec;
    struct tcp_conn *dirty_next;
    struct tcp_conn *grave_next;
};

struct tcp_peer {
    bool configured;
    bool dial;                    /* we dial it (its id is higher) */
    char host[NINES_HOST_MAX];
    uint16_t port;
    struct sockaddr_storage sa;
    socklen_t salen;
    bool resolved;
    struct tcp_conn *conn;        /* CONNECTING or UP, or NULL */
    struct net_sq q;
    uint64_t next_dial_ms;
    uint32_t backoff_ms;
};

struct tcp {
    struct net_transport base;
    uint32_t self;
    uint32_t max_frame;
    uint32_t sq_bytes;
    uint32_t rmin_ms, rmax_ms;
    uint32_t poll_us;             /* busy-poll this long before sleeping */
    bool clients_only;            /* NET_TCP_CLIENTS_ONLY: no peers */
    char host[NINES_HOST_MAX];
    uint16_t port;
    int epfd, lfd, wfd;
    bool started;
    struct tcp_peer peers[NINES_MAX_NODES + 1];
    struct tcp_conn **slots;
    uint32_t nslots, slot_hint;
    uint32_t gen;
    struct tcp_conn *dirty;
    struct tcp_conn *grave;
    /* reserve() -> commit() pairing */
    struct net_sq *res_q;
    struct tcp_conn *res_conn;
    size_t res_len;
    /* while on_connect(outbound) runs, frames for that node go to `stage`
     * and are then put in front of the node's queue (HELLO_REQ first) */
    uint32_t staging_node;
    struct net_sq stage;
    uint8_t *rbuf;
};

static const struct net_transport_ops tcp_ops;

static struct tcp *tcp_of(struct net_transport *t) { return (struct tcp *)t; }

static void conn_close(struct tcp_conn *c, int err, const char *why);

static void set_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *sa, socklen_t *len)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc || !res)
        return nines_err(NINES_ECONFIG, "cannot resolve '%s:%u': %s", host, (unsigned)port,
                         rc ? gai_strerror(rc) : "no address");
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* ---- connection table ---- */

static struct tcp_conn *conn_lookup(struct tcp *t, net_addr a)
{
    if (a < NET_CONN_BASE)
        return NULL;
    uint64_t v = a - NET_CONN_BASE;
    uint32_t slot = (uint32_t)(v & (TCP_MAX_SLOTS - 1));
    if (slot >= t->nslots)
        return NULL;
    struct tcp_conn *c = t->slots[slot];
    return c && c->conn_addr == a ? c : NULL;
}

static int conn_new(struct tcp *t, int fd, struct tcp_conn **out)
{
    uint32_t slot = UINT32_MAX;
    for (uint32_t i = 0; i < t->nslots; i++) {
        uint32_t s = (t->slot_hint + i) % t->nslots;
        if (!t->slots[s]) {
            slot = s;
            break;
        }
    }
    if (slot == UINT32_MAX) {
        if (t->nslots >= TCP_MAX_SLOTS)
            return nines_err(NINES_EFULL, "tcp: %u connections open", t->nslots);
        uint32_t n = t->nslots ? t->nslots * 2 : 64;
        struct tcp_conn **s = realloc(t->slots, n * sizeof *s);
        if (!s)
            return nines_err(NINES_ENOMEM, "tcp: connection table of %u", n);
        memset(s + t->nslots, 0, (n - t->nslots) * sizeof *s);
        slot = t->nslots;
        t->slots = s;
        t->nslots = n;
    }
    struct tcp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return nines_err(NINES_ENOMEM, "tcp: connection");
    c->t = t;
    c->fd = fd;
    c->slot = slot;
    t->gen++;
    c->conn_addr = NET_CONN_BASE + (((uint64_t)t->gen << TCP_SLOT_BITS) | slot);
    c->addr = c->conn_addr;
    net_fdec_init(&c->dec, t->max_frame);
    t->slots[slot] = c;
    t->slot_hint = slot + 1;
    *out = c;
    return 0;
}

static struct net_sq *conn_q(struct tcp_conn *c)
{
    return c->node ? &c->t->peers[c->node].q : &c->q;
}

static void conn_set_out(struct tcp_conn *c, bool on)
{
    if (c->want_out == on || c->st == TC_CLOSED)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(c->t->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = on;
}

static void mark_dirty(struct tcp_conn *c)
{
    if (c->dirty || c->st != TC_UP)
        return;
    c->dirty = true;
    c->dirty_next = c->t->dirty;
    c->t->dirty = c;
}

/* Write what is queued for c. 0, or negative after closing c. */
static int conn_write(struct tcp_conn *c)
{
    struct tcp *t = c->t;
    struct net_sq *q = conn_q(c);
    while (net_sq_used(q) > 0 && c->st == TC_UP) {
        ssize_t n = send(c->fd, q->buf + q->head, net_sq_used(q), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            t->base.writes++;
            net_sq_consume(q, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_set_out(c, true);
            return 0;
        }
        int e = n < 0 ? errno : EPIPE;
        int rc = nines_err(NINES_ECLOSED, "send: %s", strerror(e));
        conn_close(c, rc, "send failed");
        return rc;
    }
    if (c->st == TC_UP)
        conn_set_out(c, false);
    return 0;
}

static void schedule_redial(struct tcp *t, uint32_t node)
{
    struct tcp_peer *p = &t->peers[node];
    if (!p->dial)
        return;
    p->next_dial_ms = nclock_ms() + p->backoff_ms;
    uint64_t b = (uint64_t)p->backoff_ms * 2;
    p->backoff_ms = b > t->rmax_ms ? t->rmax_ms : (uint32_t)b;
}

/* Close c (idempotent). Queued output for a node is dropped when the
 * connection had been up: it belonged to that connection's session; frames
 * queued later wait for the next. A dial that never got established (peer
 * not listening yet) keeps the queue for the next attempt. */
static void conn_close(struct tcp_conn *c, int err, const char *why)
{
    struct tcp *t = c->t;
    if (c->st == TC_CLOSED)
        return;
    bool announced = c->st == TC_UP;
    if (announced && net_sq_used(conn_q(c)) > 0) {
        /* best effort: a HELLO_REF or last reply queued just before */
        ssize_t n = send(c->fd, conn_q(c)->buf + conn_q(c)->head, net_sq_used(conn_q(c)),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            t->base.writes++;
    }
    NLOG_DEBUG("net", "tcp: closing %s %llu (conn %llu): %s: %s",
               c->node ? "node" : "conn", (unsigned long long)c->addr,
               (unsigned long long)c->conn_addr, why, nines_strerror(err));
    c->st = TC_CLOSED;
    (void)epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    t->slots[c->slot] = NULL;
    net_addr addr = c->addr;
    if (c->node) {
        struct tcp_peer *p = &t->peers[c->node];
        if (p->conn == c)
            p->conn = NULL;
        if (announced)
            net_sq_clear(&p->q);
        if (c->outbound)
            schedule_redial(t, c->node);
    }
    c->grave_next = t->grave;
    t->grave = c;
    if (announced && t->base.cb.on_close)
        t->base.cb.on_close(t->base.cb.ctx, addr, err);
}

static void conn_free(struct tcp_conn *c)
{
    net_fdec_free(&c->dec);
    net_sq_free(&c->q);
    free(c);
}

static void bury(struct tcp *t)
{
    while (t->grave) {
        struct tcp_conn *c = t->grave;
        t->grave = c->grave_next;
        conn_free(c);
    }
}

/* ---- dial / accept ---- */

/* Outbound connection established: announce it; frames the owner sends
 * from on_connect (its HELLO_REQ) go before anything already queued. */
static void conn_established(struct tcp_conn *c)
{
    struct tcp *t = c->t;
    c->st = TC_UP;
    conn_set_out(c, false);
    t->staging_node = c->node;
    if (t->base.cb.on_connect)
        t->base.cb.on_connect(t->base.cb.ctx, c->addr, 1);
    t->staging_node = 0;
    if (c->st != TC_UP) {
        net_sq_clear(&t->stage);
        return;
    }
    if (net_sq_prepend(&t->peers[c->node].q, &t->stage)) {
        conn_close(c, NINES_ENOMEM, "no memory for the handshake frame");
        return;
    }
    mark_dirty(c);
}

static void dial(struct tcp *t, uint32_t node)
{
    struct tcp_peer *p = &t->peers[node];
    p->next_dial_ms = UINT64_MAX;
    if (!p->resolved) {
        if (resolve(p->host, p->port, &p->sa, &p->salen)) {
            NLOG_WARN("net", "tcp: node %u: %s", node, nines_errdetail());
            schedule_redial(t, node);
            return;
        }
        p->resolved = true;
    }
    int fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        NLOG_WARN("net", "tcp: socket for node %u: %s", node, strerror(errno));
        schedule_redial(t, node);
        return;
    }
    set_nodelay(fd);
    struct tcp_conn *c;
    if (conn_new(t, fd, &c)) {
        NLOG_WARN("net", "tcp: dial node %u: %s", node, nines_errdetail());
        close(fd);
        schedule_redial(t, node);
        return;
    }
    c->outbound = true;
    c->node = node;
    c->addr = node;
    c->st = TC_CONNECTING;
    p->conn = c;
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&p->sa, p->salen);
    while (rc < 0 && errno == EINTR);
    bool now = rc == 0;
    if (rc < 0 && errno != EINPROGRESS) {
        NLOG_DEBUG("net", "tcp: connect to node %u failed: %s", node, strerror(errno));
        conn_close(c, NINES_EUNREACHABLE, "connect failed");
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | (now ? 0 : EPOLLOUT), .data.ptr = c};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev)) {
        NLOG_WARN("net", "tcp: epoll add for node %u: %s", node, strerror(errno));
        conn_close(c, NINES_ESYS, "epoll_ctl failed");
        return;
    }
    c->want_out = !now;
    if (now)
        conn_established(c);
}

static void connect_done(struct tcp_conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        NLOG_DEBUG("net", "tcp: connect to node %u failed: %s", c->node, strerror(err));
        conn_close(c, NINES_EUNREACHABLE, "connect failed");
        return;
    }
    conn_established(c);
}

static void do_accept(struct tcp *t)
{
    for (;;) {
        int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                NLOG_WARN("net", "tcp: accept: %s", strerror(errno));
            return;
        }
        set_nodelay(fd);
        struct tcp_conn *c;
        if (conn_new(t, fd, &c)) {
            NLOG_WARN("net", "tcp: refusing connection: %s", nines_errdetail());
            close(fd);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev)) {
            NLOG_WARN("net", "tcp: epoll add: %s", strerror(errno));
            t->slots[c->slot] = NULL;
            close(fd);
            conn_free(c);
            continue;
        }
        c->st = TC_UP;
        if (t->base.cb.on_connect)
            t->base.cb.on_connect(t->base.cb.ctx, c->addr, 0);
    }
}

/* ---- receive ---- */

static int frame_cb(void *ctx, const uint8_t *f, size_t len)
{
    struct tcp_conn *c = ctx;
    struct tcp *t = c->t;
    int rc = t->base.cb.on_frame(t->base.cb.ctx, c->addr, f, len);
    if (rc < 0)
        return rc;
    if (c->st != TC_UP)
        return 1; /* closed during the upcall */
    if (c->outbound)
        t->peers[c->node].backoff_ms = t->rmin_ms;
    return 0;
}

static void conn_read(struct tcp_conn *c)
{
    struct tcp *t = c->t;
    for (int i = 0; i < TCP_READS_PER_EVENT && c->st == TC_UP; i++) {
        ssize_t n = recv(c->fd, t->rbuf, TCP_RBUF_BYTES, MSG_DONTWAIT);
        if (n > 0) {
            int rc = net_fdec_feed(&c->dec, t->rbuf, (size_t)n, frame_cb, c);
            if (rc < 0) {
                /* detail was set by the decoder or the owner */
                conn_close(c, rc, "bad input");
                return;
            }
            if (rc > 0 || (size_t)n < TCP_RBUF_BYTES)
                return;
            continue;
        }
        if (n == 0) {
            int rc = net_fdec_eof(&c->dec);
            if (rc == 0)
                rc = nines_err(NINES_ECLOSED, "peer closed the connection");
            conn_close(c, rc, "end of stream");
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        int rc = nines_err(NINES_ECLOSED, "recv: %s", strerror(errno));
        conn_close(c, rc, "receive failed");
        return;
    }
}

/* ---- ops ---- */

static int tcp_start(struct net_transport *bt)
{
    struct tcp *t = tcp_of(bt);
    if (t->started)
        return nines_err(NINES_ESTATE, "tcp: already started");
    struct sockaddr_storage sa;
    socklen_t salen;
    int rc = resolve(t->host, t->port, &sa, &salen);
    if (rc)
        return rc;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return nines_err(NINES_ESYS, "tcp: socket: %s", strerror(errno));
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, salen) || listen(fd, 128)) {
        int e = errno;
        close(fd);
        return nines_err(NINES_ESYS, "tcp: listen on %s:%u: %s", t->host, (unsigned)t->port,
                         strerror(e));
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &t->lfd};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev)) {
        int e = errno;
        close(fd);
        return nines_err(NINES_ESYS, "tcp: epoll add listener: %s", strerror(e));
    }
    t->lfd = fd;
    t->started = true;
    for (uint32_t n = 1; n <= NINES_MAX_NODES; n++)
        if (t->peers[n].dial)
            t->peers[n].next_dial_ms = 0;
    NLOG_DEBUG("net", "tcp: node %u listening on %s:%u%s", t->self, t->host, (unsigned)t->port,
               t->clients_only ? " (clients only)" : "");
    return 0;
}

/* Queue and connection for `to`; NULL queue with *err on a bad address. */
static struct net_sq *dest_q(struct tcp *t, net_addr to, struct tcp_conn **conn, int *err)
{
    *conn = NULL;
    if (to >= 1 && to <= NINES_MAX_NODES) {
        struct tcp_peer *p = &t->peers[to];
        if (!p->configured) {
            *err = t->clients_only
                       ? nines_err(NINES_EINVAL, "tcp: node %llu: this listener serves clients only",
                                   (unsigned long long)to)
                       : nines_err(NINES_EINVAL, "tcp: node %llu is not a peer",
                                   (unsigned long long)to);
            return NULL;
        }
        if (t->staging_node == to)
            return &t->stage;
        *conn = p->conn && p->conn->st == TC_UP ? p->conn : NULL;
        return &p->q;
    }
    struct tcp_conn *c = conn_lookup(t, to);
    if (!c || c->st != TC_UP) {
        *err = nines_err(NINES_EUNREACHABLE, "tcp: connection %llu is closed",
                         (unsigned long long)to);
        return NULL;
    }
    *conn = c;
    return conn_q(c);
}

static void *tcp_reserve(struct net_transport *bt, net_addr to, size_t len, int *err)
{
    struct tcp *t = tcp_of(bt);
    if (len == 0 || len > t->max_frame || len + NET_FRAME_HDR > t->sq_bytes) {
        *err = nines_err(NINES_ETOOBIG, "tcp: frame of %zu bytes (max_frame_bytes %u)", len,
                         t->max_frame);
        return NULL;
    }
    struct tcp_conn *c;
    struct net_sq *q = dest_q(t, to, &c, err);
    if (!q)
        return NULL;
    if (q != &t->stage && net_sq_used(q) + NET_FRAME_HDR + len > t->sq_bytes) {
        bool connected = c != NULL;
        *err = connected ? nines_err(NINES_EAGAIN, "tcp: send queue to %llu full (%zu bytes)",
                                     (unsigned long long)to, net_sq_used(q))
                         : nines_err(NINES_EUNREACHABLE,
                                     "tcp: node %llu not connected and its queue is full",
                                     (unsigned long long)to);
        return NULL;
    }
    uint8_t *p = net_sq_tail_room(q, NET_FRAME_HDR + len);
    if (!p) {
        *err = NINES_ENOMEM;
        return NULL;
    }
    net_frame_put_len(p, (uint32_t)len);
    t->res_q = q;
    t->res_conn = c;
    t->res_len = len;
    return p + NET_FRAME_HDR;
}

static void tcp_commit(struct net_transport *bt, net_addr to, size_t len)
{
    struct tcp *t = tcp_of(bt);
    (void)to;
    N_ASSERT(t->res_q != NULL && t->res_len == len);
    net_sq_commit(t->res_q, NET_FRAME_HDR + len);
    if (t->res_conn)
        mark_dirty(t->res_conn);
    t->res_q = NULL;
    t->res_conn = NULL;
}

static int tcp_flush(struct net_transport *bt)
{
    struct tcp *t = tcp_of(bt);
    while (t->dirty) {
        struct tcp_conn *c = t->dirty;
        t->dirty = c->dirty_next;
        c->dirty = false;
        if (c->st == TC_UP)
            (void)conn_write(c);
    }
    return 0;
}

static int tcp_poll(struct net_transport *bt, int timeout_ms)
{
    struct tcp *t = tcp_of(bt);
    if (!t->started)
        return nines_err(NINES_ESTATE, "tcp: poll before start");
    uint64_t now = nclock_ms(), next = UINT64_MAX;
    for (uint32_t n = 1; n <= NINES_MAX_NODES; n++) {
        struct tcp_peer *p = &t->peers[n];
        if (!p->dial || p->conn)
            continue;
        if (p->next_dial_ms <= now)
            dial(t, n);
        if (!p->conn && p->next_dial_ms < next)
            next = p->next_dial_ms;
    }
    if (t->dirty)
        tcp_flush(bt);
    int wait = timeout_ms;
    if (next != UINT64_MAX) {
        uint64_t d = next > now ? next - now : 0;
        if (wait < 0 || d < (uint64_t)wait)
            wait = (int)d;
    }
    struct epoll_event evs[TCP_MAX_EVENTS];
    int n = 0;
    if (wait != 0 && t->poll_us) {
        /* brief busy poll: waking a sleeping thread costs more (DESIGN.md) */
        uint64_t start = nclock_us();
        do
            n = epoll_wait(t->epfd, evs, TCP_MAX_EVENTS, 0);
        while (n == 0 && nclock_us() - start < t->poll_us);
    }
    if (n == 0)
        n = epoll_wait(t->epfd, evs, TCP_MAX_EVENTS, wait);
    if (n < 0) {
        if (errno == EINTR)
            return 0;
        return nines_err(NINES_ESYS, "tcp: epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        void *ptr = evs[i].data.ptr;
        uint32_t e = evs[i].events;
        if (ptr == &t->lfd) {
            do_accept(t);
            continue;
        }
        if (ptr == &t->wfd) {
            uint64_t v;
            while (read(t->wfd, &v, sizeof v) < 0 && errno == EINTR)
                ;
            continue;
        }
        struct tcp_conn *c = ptr;
        if (c->st == TC_CONNECTING) {
            if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                connect_done(c);
            continue;
        }
        if (c->st != TC_UP)
            continue;
        if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
            conn_read(c);
        if ((e & EPOLLOUT) && c->st == TC_UP)
            (void)conn_write(c);
    }
    /* replies queued by the upcalls go out now, not one loop later */
    tcp_flush(bt);
    bury(t);
    return n;
}

static void tcp_wake(struct net_transport *bt)
{
    struct tcp *t = tcp_of(bt);
    uint64_t one = 1;
    while (write(t->wfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static int tcp_bind(struct net_transport *bt, net_addr conn, uint32_t node)
{
    struct tcp *t = tcp_of(bt);
    struct tcp_conn *c = conn_lookup(t, conn);
    if (!c || c->st != TC_UP)
        return nines_err(NINES_EUNREACHABLE, "tcp: bind: connection %llu is closed",
                         (unsigned long long)conn);
    if (c->node)
        return nines_err(NINES_ESTATE, "tcp: connection %llu is already bound to node %u",
                         (unsigned long long)conn, c->node);
    if (t->clients_only)
        return nines_err(NINES_ECONFIG,
                         "tcp: connection %llu claims node %u but this listener serves clients only",
                         (unsigned long long)conn, node);
    if (node < 1 || node > NINES_MAX_NODES || !t->peers[node].configured)
        return nines_err(NINES_EINVAL, "tcp: bind to unknown node %u", node);
    struct tcp_peer *p = &t->peers[node];
    if (p->conn)
        conn_close(p->conn, nines_err(NINES_ECLOSED, "replaced by a newer connection"),
                   "replaced by a newer connection");
    c->node = node;
    c->addr = node;
    p->conn = c;
    if (net_sq_prepend(&p->q, &c->q)) {
        conn_close(c, NINES_ENOMEM, "no memory to bind");
        return NINES_ENOMEM;
    }
    net_sq_free(&c->q);
    mark_dirty(c);
    return 0;
}

static void tcp_close(struct net_transport *bt, net_addr addr, int err, const char *reason)
{
    struct tcp *t = tcp_of(bt);
    struct tcp_conn *c = NULL;
    if (addr >= 1 && addr <= NINES_MAX_NODES) {
        struct tcp_peer *p = &t->peers[addr];
        c = p->conn;
        if (!c) {
            net_sq_clear(&p->q);
            return;
        }
    } else {
        c = conn_lookup(t, addr);
    }
    if (c)
        conn_close(c, err, reason ? reason : "closed by owner");
}

static int tcp_peer_name(struct net_transport *bt, net_addr addr, char *buf, size_t n)
{
    struct tcp *t = tcp_of(bt);
    struct tcp_conn *c = addr >= 1 && addr <= NINES_MAX_NODES ? t->peers[addr].conn
                                                               : conn_lookup(t, addr);
    if (!c || c->st != TC_UP)
        return nines_err(NINES_ENOTFOUND, "tcp: no connection %llu", (unsigned long long)addr);
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    if (getpeername(c->fd, (struct sockaddr *)&sa, &len) != 0)
        return nines_err(NINES_ESYS, "getpeername: %s", strerror(errno));
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    switch (sa.ss_family) {
    case AF_INET: {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(buf, n, "%s:%u", host, port);
        return 0;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(buf, n, "[%s]:%u", host, port);
        return 0;
    }
    default:
        return nines_err(NINES_EINVAL, "tcp: address family %d", (int)sa.ss_family);
    }
}

static void tcp_destroy(struct net_transport *bt)
{
    struct tcp *t = tcp_of(bt);
    if (!t)
        return;
    t->base.cb.on_close = NULL; /* no upcalls into an owner going away */
    for (uint32_t s = 0; s < t->nslots; s++)
        if (t->slots[s])
            conn_close(t->slots[s], NINES_ECLOSED, "transport destroyed");
    bury(t);
    for (uint32_t n = 1; n <= NINES_MAX_NODES; n++)
        net_sq_free(&t->peers[n].q);
    net_sq_free(&t->stage);
    if (t->lfd >= 0)
        close(t->lfd);
    if (t->wfd >= 0)
        close(t->wfd);
    if (t->epfd >= 0)
        close(t->epfd);
    free(t->slots);
    free(t->rbuf);
    free(t);
}

static const struct net_transport_ops tcp_ops = {
    .name = "tcp",
    .start = tcp_start,
    .reserve = tcp_reserve,
    .commit = tcp_commit,
    .flush = tcp_flush,
    .poll = tcp_poll,
    .wake = tcp_wake,
    .bind = tcp_bind,
    .close = tcp_close,
    .destroy = tcp_destroy,
    .peer_name = tcp_peer_name,
};

int net_tcp_create(struct net_transport **out, const struct nines_conf *cfg, uint32_t self)
{
    return net_tcp_create_ex(out, cfg, self, 0);
}

int net_tcp_wait_fd(const struct net_transport *bt) { return ((const struct tcp *)bt)->epfd; }

int net_tcp_create_ex(struct net_transport **out, const struct nines_conf *cfg, uint32_t self,
                      unsigned flags)
{
    *out = NULL;
    if (flags & ~NET_TCP_CLIENTS_ONLY)
        return nines_err(NINES_EINVAL, "tcp: unknown flags 0x%x", flags & ~NET_TCP_CLIENTS_ONLY);
    const struct nines_node_conf *me = nines_conf_node(cfg, self);
    if (!me)
        return nines_err(NINES_ECONFIG, "tcp: node %u is not in the cluster configuration", self);
    struct tcp *t = calloc(1, sizeof *t);
    if (!t)
        return nines_err(NINES_ENOMEM, "tcp: transport");
    t->base.ops = &tcp_ops;
    t->self = self;
    t->max_frame = cfg->max_frame_bytes;
    t->sq_bytes = cfg->send_queue_bytes;
    t->poll_us = cfg->poll_us;
    t->rmin_ms = cfg->reconnect_min_ms ? cfg->reconnect_min_ms : 1;
    t->rmax_ms = cfg->reconnect_max_ms > t->rmin_ms ? cfg->reconnect_max_ms : t->rmin_ms;
    snprintf(t->host, sizeof t->host, "%s", me->host);
    t->port = me->port;
    t->lfd = t->wfd = t->epfd = -1;
    t->clients_only = (flags & NET_TCP_CLIENTS_ONLY) != 0;
    for (uint32_t i = 0; !t->clients_only && i < cfg->nnodes && i < NINES_MAX_NODES; i++) {
        const struct nines_node_conf *nc = &cfg->nodes[i];
        if (nc->id < 1 || nc->id > NINES_MAX_NODES || nc->id == self)
            continue;
        struct tcp_peer *p = &t->peers[nc->id];
        p->configured = true;
        p->dial = nc->id > self;
        snprintf(p->host, sizeof p->host, "%s", nc->host);
        p->port = nc->port;
        p->backoff_ms = t->rmin_ms;
        p->next_dial_ms = UINT64_MAX;
    }
    t->rbuf = malloc(TCP_RBUF_BYTES);
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!t->rbuf || t->epfd < 0 || t->wfd < 0) {
        int rc = nines_err(t->rbuf ? NINES_ESYS : NINES_ENOMEM, "tcp: setup: %s",
                           strerror(errno));
        tcp_destroy(&t->base);
        return rc;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &t->wfd};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wfd, &ev)) {
        int rc = nines_err(NINES_ESYS, "tcp: epoll add eventfd: %s", strerror(errno));
        tcp_destroy(&t->base);
        return rc;
    }
    *out = &t->base;
    return 0;
}
