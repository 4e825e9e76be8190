/* Per-node limits in net/ (net/README.md "Limits"), over TCP on loopback
 * with raw client sockets: a client HELLO beyond max_client_connections is
 * answered HELLO_REF NINES_EFULL naming the limit and closed while the
 * connected clients are served, a closed client frees its place, keyed
 * clients and node links do not count; a client that stops reading is closed
 * once its send queue reaches send_queue_bytes, with a logged reason, and
 * the node keeps serving the others. No timing assertions: every wait has a
 * generous deadline and the asserts are on what happened. */
#include "net_test_util.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nclock.h"
#include "../../net/frame.h"

#define DEADLINE_MS 10000

/* ---- stderr capture (log lines) ---- */

struct cap {
    int fd, saved;
};

static void cap_start(struct cap *c)
{
    char path[] = "/tmp/net_limits_test_XXXXXX";
    c->fd = mkstemp(path);
    CU_ASSERT_FATAL(c->fd >= 0);
    unlink(path);
    fflush(stderr);
    c->saved = dup(2);
    CU_ASSERT_FATAL(c->saved >= 0 && dup2(c->fd, 2) == 2);
}

static void cap_stop(struct cap *c, char *buf, size_t n)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    ssize_t r = pread(c->fd, buf, n - 1, 0);
    close(c->fd);
    buf[r > 0 ? r : 0] = 0;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- one node on TCP; clients are raw sockets ---- */

struct world {
    struct nines_conf cfg;
    struct nt_rec rec;
    net_addr last_client;   /* Envelope source of the last client message */
};

static struct world *W;

static int w_on_msg(void *ctx, const struct net_msg_in *m)
{
    if (m->from >= NET_CONN_BASE)
        W->last_client = m->from;
    return nt_on_msg(ctx, m);
}

static void w_open(struct world *w, uint32_t max_clients, uint32_t sendq)
{
    memset(w, 0, sizeof *w);
    W = w;
    uint16_t ports[2] = {free_port(), free_port()};
    nt_conf(&w->cfg, 2, ports);
    w->cfg.send_queue_bytes = sendq;
    w->cfg.max_frame_bytes = 16u * 1024u;
    w->cfg.max_client_connections = max_clients;
    w->rec.self = 2;
    struct net_handlers h = nt_handlers(&w->rec);
    h.on_msg = w_on_msg;
    CU_ASSERT_EQUAL_FATAL(net_endpoint_open(&w->rec.ep, &w->cfg, 2, &h), 0);
}

struct raw {
    int fd;
    uint8_t buf[65536];
    size_t len;
    bool eof;
};

static void raw_env(int fd, uint32_t type, const ProtobufCMessage *body)
{
    static uint8_t bodyb[8192], out[8300];
    Nines__Envelope e = NINES__ENVELOPE__INIT;
    e.version = 1;
    e.type = type;
    if (body) {
        e.body.len = protobuf_c_message_pack(body, bodyb);
        e.body.data = bodyb;
    }
    size_t n = nines__envelope__pack(&e, out + 4);
    net_frame_put_len(out, (uint32_t)n);
    (void)send(fd, out, n + 4, MSG_NOSIGNAL);
}

/* Connect (with a small receive buffer when rcvbuf > 0) and say HELLO as a
 * plain client. */
static void raw_open(struct raw *r, struct world *w, int rcvbuf)
{
    memset(r, 0, sizeof *r);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(r->fd >= 0);
    if (rcvbuf > 0)
        (void)setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(w->cfg.nodes[1].port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CU_ASSERT_FATAL(connect(r->fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    Nines__HelloReq h = NINES__HELLO_REQ__INIT;
    h.cluster = "nettest";
    h.role = NINES__ROLE__ROLE_CLIENT;
    raw_env(r->fd, NINES__MSG_TYPE__HELLO_REQ, &h.base);
}

static void raw_read(struct raw *r)
{
    while (!r->eof && r->len < sizeof r->buf) {
        ssize_t n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, MSG_DONTWAIT);
        if (n > 0) {
            r->len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            r->eof = true;
        break;
    }
}

/* The k-th frame's type (0: not there yet); *m its envelope. */
static uint32_t raw_type_at(struct raw *r, size_t k, struct net_msg_in *m)
{
    size_t off = 0;
    for (size_t i = 0;; i++) {
        if (r->len < off + 4)
            return 0;
        uint32_t n = net_frame_get_len(r->buf + off);
        if (r->len < off + 4 + n || net_env_parse(r->buf + off + 4, n, m))
            return 0;
        if (i == k)
            return m->type;
        off += 4 + n;
    }
}

/* Poll the node until raw r holds k+1 frames or closed (deadline). */
static uint32_t pump_until(struct world *w, struct raw *r, size_t k, struct net_msg_in *m)
{
    uint64_t end = nclock_ms() + DEADLINE_MS;
    uint32_t t = 0;
    while ((t = raw_type_at(r, k, m)) == 0 && !r->eof && nclock_ms() < end) {
        CU_ASSERT(net_poll(w->rec.ep, 1) >= 0);
        raw_read(r);
    }
    return t;
}

static void pump_eof(struct world *w, struct raw *r)
{
    uint64_t end = nclock_ms() + DEADLINE_MS;
    while (!r->eof && nclock_ms() < end) {
        CU_ASSERT(net_poll(w->rec.ep, 1) >= 0);
        raw_read(r);
        r->len = 0; /* keep reading: only the close matters */
    }
}

static bool ping(struct world *w, struct raw *r, uint64_t seq)
{
    Nines__PingReq p = NINES__PING_REQ__INIT;
    p.seq = seq;
    size_t have = 0;
    struct net_msg_in m;
    while (raw_type_at(r, have, &m))
        have++;
    raw_env(r->fd, NINES__MSG_TYPE__PING_REQ, &p.base);
    return pump_until(w, r, have, &m) == NINES__MSG_TYPE__PING_CONF;
}

static uint64_t stat_of(struct world *w, int which)
{
    struct net_stats st;
    net_get_stats(w->rec.ep, &st);
    return which == 0 ? st.clients : which == 1 ? st.clients_refused : st.slow_closed;
}

static void test_max_clients(void)
{
    struct world w;
    w_open(&w, 3, 64u * 1024u);
    struct raw c[3], extra;
    struct net_msg_in m;
    for (int i = 0; i < 3; i++) {
        raw_open(&c[i], &w, 0);
        CU_ASSERT_EQUAL(pump_until(&w, &c[i], 0, &m), NINES__MSG_TYPE__HELLO_CONF);
    }
    CU_ASSERT_EQUAL(stat_of(&w, 0), 3);
    /* the fourth: HELLO_REF EFULL naming the limit, then closed */
    struct cap cap;
    cap_start(&cap);
    raw_open(&extra, &w, 0);
    CU_ASSERT_EQUAL(pump_until(&w, &extra, 0, &m), NINES__MSG_TYPE__HELLO_REF);
    Nines__HelloRef *ref = nines__hello_ref__unpack(NULL, m.body_len, m.body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_EFULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->reason, "maximum of 3 client connections"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->reason, "max_client_connections"));
    nines__hello_ref__free_unpacked(ref, NULL);
    pump_eof(&w, &extra);
    CU_ASSERT(extra.eof);
    close(extra.fd);
    char log[8192];
    cap_stop(&cap, log, sizeof log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "max_client_connections"));
    CU_ASSERT_EQUAL(stat_of(&w, 1), 1);
    CU_ASSERT_EQUAL(stat_of(&w, 0), 3);
    /* the three keep being served */
    for (int i = 0; i < 3; i++)
        CU_ASSERT(ping(&w, &c[i], 10 + (uint64_t)i));
    CU_ASSERT_EQUAL(w.rec.ping_seen, 3);
    /* one leaves: its place is free for a new client */
    close(c[0].fd);
    uint64_t end = nclock_ms() + DEADLINE_MS;
    while (stat_of(&w, 0) != 2 && nclock_ms() < end)
        CU_ASSERT(net_poll(w.rec.ep, 1) >= 0);
    CU_ASSERT_EQUAL(stat_of(&w, 0), 2);
    raw_open(&c[0], &w, 0);
    CU_ASSERT_EQUAL(pump_until(&w, &c[0], 0, &m), NINES__MSG_TYPE__HELLO_CONF);
    CU_ASSERT(ping(&w, &c[0], 20));
    CU_ASSERT_EQUAL(stat_of(&w, 0), 3);
    CU_ASSERT_EQUAL(stat_of(&w, 1), 1);
    CU_ASSERT_EQUAL(stat_of(&w, 2), 0);
    for (int i = 0; i < 3; i++)
        close(c[i].fd);
    net_endpoint_close(w.rec.ep);
}

/* A node link never counts: node 1 connects to node 2 whose client limit
 * is 1 and already taken. */
static void test_nodes_do_not_count(void)
{
    struct world w;
    w_open(&w, 1, 64u * 1024u);
    struct raw c;
    struct net_msg_in m;
    raw_open(&c, &w, 0);
    CU_ASSERT_EQUAL(pump_until(&w, &c, 0, &m), NINES__MSG_TYPE__HELLO_CONF);
    struct nt_rec r1 = {.self = 1};
    struct net_handlers h = nt_handlers(&r1);
    CU_ASSERT_EQUAL_FATAL(net_endpoint_open(&r1.ep, &w.cfg, 1, &h), 0);
    uint64_t end = nclock_ms() + DEADLINE_MS;
    while ((!w.rec.ups[1] || !r1.ups[2]) && nclock_ms() < end) {
        CU_ASSERT(net_poll(r1.ep, 0) >= 0);
        CU_ASSERT(net_poll(w.rec.ep, 1) >= 0);
    }
    CU_ASSERT_EQUAL(w.rec.ups[1], 1);
    CU_ASSERT_EQUAL(r1.ups[2], 1);
    CU_ASSERT_EQUAL(stat_of(&w, 0), 1);
    CU_ASSERT_EQUAL(stat_of(&w, 1), 0);
    CU_ASSERT(ping(&w, &c, 1));
    close(c.fd);
    net_endpoint_close(r1.ep);
    net_endpoint_close(w.rec.ep);
}

/* A client that sends but never reads: the node's answers fill the kernel
 * buffers, then its send queue; at the bound the node closes it with a
 * logged reason and keeps serving another client. */
static void test_slow_reader(void)
{
    struct world w;
    w_open(&w, 8, 64u * 1024u);
    struct raw slow, good;
    struct net_msg_in m;
    raw_open(&slow, &w, 4096);
    CU_ASSERT_EQUAL(pump_until(&w, &slow, 0, &m), NINES__MSG_TYPE__HELLO_CONF);
    raw_open(&good, &w, 0);
    CU_ASSERT_EQUAL(pump_until(&w, &good, 0, &m), NINES__MSG_TYPE__HELLO_CONF);
    CU_ASSERT(ping(&w, &slow, 1)); /* learn its address */
    net_addr a = w.last_client;
    CU_ASSERT_FATAL(a >= NET_CONN_BASE);
    /* the slow client reads no more; the node sends it 8 KiB frames */
    struct cap cap;
    cap_start(&cap);
    int rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        rc = nt_sink(w.rec.ep, a, (uint64_t)i, 8000);
        CU_ASSERT(net_flush(w.rec.ep) >= 0);
    }
    CU_ASSERT_EQUAL(rc, NINES_EAGAIN);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "stopped reading"));
    CU_ASSERT(net_poll(w.rec.ep, 0) >= 0); /* closed after the dispatch */
    char log[8192];
    cap_stop(&cap, log, sizeof log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "it stopped reading: its send queue reached "
                                       "send_queue_bytes 65536"));
    CU_ASSERT_EQUAL(stat_of(&w, 2), 1);
    CU_ASSERT_EQUAL(stat_of(&w, 0), 1);
    CU_ASSERT_EQUAL(w.rec.client_closes, 1);
    /* further sends to it: no such client */
    CU_ASSERT_EQUAL(nt_sink(w.rec.ep, a, 1, 10), NINES_EINVAL);
    /* the other client is served */
    CU_ASSERT(ping(&w, &good, 2));
    close(slow.fd);
    close(good.fd);
    net_endpoint_close(w.rec.ep);
}

/* A connection that never says HELLO is closed after handshake_ms; one
 * that did is served; beyond max_client_connections waiting ones a new
 * connection is closed at once. */
static void test_handshake_deadline(void)
{
    struct world w;
    w_open(&w, 3, 64u * 1024u);
    net_endpoint_close(w.rec.ep);
    w.cfg.handshake_ms = 300;
    struct net_handlers h = nt_handlers(&w.rec);
    h.on_msg = w_on_msg;
    CU_ASSERT_EQUAL_FATAL(net_endpoint_open(&w.rec.ep, &w.cfg, 2, &h), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(w.cfg.nodes[1].port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct raw silent[3];
    for (int i = 0; i < 3; i++) {
        memset(&silent[i], 0, sizeof silent[i]);
        silent[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        CU_ASSERT_FATAL(connect(silent[i].fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    }
    for (int i = 0; i < 20; i++) /* the node accepts them */
        CU_ASSERT(net_poll(w.rec.ep, 1) >= 0);
    /* a fourth waiting connection is one too many */
    struct raw extra;
    memset(&extra, 0, sizeof extra);
    extra.fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(connect(extra.fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    uint64_t t0 = nclock_ms();
    pump_eof(&w, &extra);
    CU_ASSERT_TRUE(extra.eof);
    CU_ASSERT(nclock_ms() - t0 < 250); /* at once, not at the deadline */
    struct net_stats st;
    net_get_stats(w.rec.ep, &st);
    CU_ASSERT_EQUAL(st.handshakes_refused, 1);
    /* one of them says HELLO in time and is served; the others are closed */
    Nines__HelloReq hr = NINES__HELLO_REQ__INIT;
    hr.cluster = "nettest";
    hr.role = NINES__ROLE__ROLE_CLIENT;
    raw_env(silent[0].fd, NINES__MSG_TYPE__HELLO_REQ, &hr.base);
    struct net_msg_in m;
    CU_ASSERT_EQUAL(pump_until(&w, &silent[0], 0, &m), NINES__MSG_TYPE__HELLO_CONF);
    pump_eof(&w, &silent[1]);
    pump_eof(&w, &silent[2]);
    CU_ASSERT_TRUE(silent[1].eof && silent[2].eof);
    CU_ASSERT(nclock_ms() - t0 >= 250);
    CU_ASSERT_TRUE(ping(&w, &silent[0], 7));
    net_get_stats(w.rec.ep, &st);
    CU_ASSERT_EQUAL(st.handshakes_timed_out, 2);
    for (int i = 0; i < 3; i++)
        close(silent[i].fd);
    close(extra.fd);
    net_endpoint_close(w.rec.ep);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"max_client_connections: EFULL for one more, others served", test_max_clients},
        {"node links do not count against the client limit", test_nodes_do_not_count},
        {"a client that stops reading is closed at send_queue_bytes", test_slow_reader},
        {"handshake_ms and waiting connections at max_client_connections",
         test_handshake_deadline},
        {NULL, NULL},
    };
    cu_add_suite("net_limits", NULL, NULL, cases);
}
