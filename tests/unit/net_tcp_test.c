/* Endpoints over TCP on 127.0.0.1 in one process, driven by one poll
 * loop: handshake, batching, reconnect, bounded queues, the blocking
 * client, and bad input from raw sockets (each case closes only its own
 * connection, logged and counted, while the good peers keep talking). */
#include "net_test_util.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nclock.h"
#include "../../net/envelope.h"
#include "../../net/frame.h"

#define NN 3
#define DEADLINE_MS 10000

struct world {
    struct nines_conf cfg;
    struct nt_rec rec[NN + 1];
};

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

static void open_node(struct world *w, uint32_t n)
{
    memset(&w->rec[n], 0, sizeof w->rec[n]);
    w->rec[n].self = n;
    struct net_handlers h = nt_handlers(&w->rec[n]);
    int rc = net_endpoint_open(&w->rec[n].ep, &w->cfg, n, &h);
    if (rc)
        printf("\n  open node %u: %s\n", n, nines_errdetail());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(net_transport_name(w->rec[n].ep), "tcp");
}

static void world_conf(struct world *w, uint32_t nnodes)
{
    memset(w, 0, sizeof *w);
    uint16_t ports[NN + 1];
    for (uint32_t i = 0; i < nnodes; i++)
        ports[i] = free_port();
    nt_conf(&w->cfg, nnodes, ports);
}

static void world_open(struct world *w)
{
    world_conf(w, NN);
    for (uint32_t n = 1; n <= NN; n++)
        open_node(w, n);
}

static void world_close(struct world *w)
{
    for (uint32_t n = 1; n <= NN; n++)
        net_endpoint_close(w->rec[n].ep);
}

static void poll_all(struct world *w)
{
    for (uint32_t n = 1; n <= NN; n++)
        if (w->rec[n].ep)
            CU_ASSERT(net_poll(w->rec[n].ep, n == NN ? 1 : 0) >= 0);
}

typedef bool (*cond_fn)(struct world *w, void *arg);

/* Poll every endpoint until cond holds or the deadline passes. */
static bool run_until(struct world *w, cond_fn cond, void *arg)
{
    uint64_t end = nclock_ms() + DEADLINE_MS;
    while (!cond(w, arg)) {
        if (nclock_ms() > end)
            return false;
        poll_all(w);
    }
    return true;
}

static bool all_up(struct world *w, void *arg)
{
    (void)arg;
    for (uint32_t a = 1; a <= NN; a++)
        for (uint32_t b = 1; b <= NN; b++)
            if (a != b && w->rec[a].ep && w->rec[b].ep && !net_peer_reachable(w->rec[a].ep, b))
                return false;
    return true;
}

struct count_arg {
    uint32_t at, from;
    uint64_t want;
};

static bool got_count(struct world *w, void *arg)
{
    struct count_arg *c = arg;
    return w->rec[c->at].sink_count[c->from] >= c->want;
}

static void test_handshake(void)
{
    struct world w;
    world_conf(&w, NN);
    w.cfg.poll_us = 20; /* exercise the busy-poll path too */
    for (uint32_t n = 1; n <= NN; n++)
        open_node(&w, n);
    CU_ASSERT_TRUE_FATAL(run_until(&w, all_up, NULL));
    for (uint32_t a = 1; a <= NN; a++)
        for (uint32_t b = 1; b <= NN; b++)
            if (a != b)
                CU_ASSERT_EQUAL(w.rec[a].ups[b], 1);
    CU_ASSERT_EQUAL(nt_sink(w.rec[3].ep, 1, 1, 100), 0);
    struct count_arg c = {1, 3, 1};
    CU_ASSERT_TRUE(run_until(&w, got_count, &c));
    world_close(&w);
}

static void test_batching(void)
{
    struct world w;
    world_open(&w);
    CU_ASSERT_TRUE_FATAL(run_until(&w, all_up, NULL));
    struct net_stats before, after;
    net_get_stats(w.rec[1].ep, &before);
    const uint64_t n = 20000;
    for (uint64_t s = 1; s <= n; s++) {
        int rc = nt_sink(w.rec[1].ep, 2, s, 32);
        if (rc == NINES_EAGAIN) {
            poll_all(&w);
            s--;
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        if (s % 1000 == 0)
            poll_all(&w);
    }
    struct count_arg c = {2, 1, n};
    CU_ASSERT_TRUE(run_until(&w, got_count, &c));
    CU_ASSERT_EQUAL(w.rec[2].sink_count[1], n);
    CU_ASSERT_EQUAL(w.rec[2].sink_out_of_order, 0);
    net_get_stats(w.rec[1].ep, &after);
    uint64_t msgs = after.msgs_out - before.msgs_out, writes = after.writes - before.writes;
    printf("\n  %llu messages in %llu writes (%.1f per write)\n", (unsigned long long)msgs,
           (unsigned long long)writes, writes ? (double)msgs / (double)writes : 0.0);
    CU_ASSERT(writes < msgs);
    CU_ASSERT(writes > 0);
    /* large frames: partial writes, EPOLLOUT, frames split across reads */
    for (uint64_t s = n + 1; s <= n + 300; s++) {
        int rc = nt_sink(w.rec[2].ep, 1, s, 60000);
        if (rc == NINES_EAGAIN) {
            poll_all(&w);
            s--;
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, 0);
    }
    struct count_arg c2 = {1, 2, 300};
    CU_ASSERT_TRUE(run_until(&w, got_count, &c2));
    CU_ASSERT_EQUAL(w.rec[1].sink_out_of_order, 0);
    world_close(&w);
}

static bool down_seen(struct world *w, void *arg)
{
    uint32_t *ab = arg;
    return w->rec[ab[0]].downs[ab[1]] >= ab[2];
}

static void test_reconnect(void)
{
    struct world w;
    world_open(&w);
    CU_ASSERT_TRUE_FATAL(run_until(&w, all_up, NULL));
    /* close node 2: 1 (which dials 2) and 3 (dialled by 2) see it down */
    net_endpoint_close(w.rec[2].ep);
    w.rec[2].ep = NULL;
    uint32_t a[3] = {1, 2, 1}, b[3] = {3, 2, 1};
    CU_ASSERT_TRUE(run_until(&w, down_seen, a));
    CU_ASSERT_TRUE(run_until(&w, down_seen, b));
    CU_ASSERT_FALSE(net_peer_reachable(w.rec[1].ep, 2));
    /* let node 1 fail a few dials (connection refused) */
    uint64_t until = nclock_ms() + 30;
    while (nclock_ms() < until)
        poll_all(&w);
    open_node(&w, 2);
    CU_ASSERT_TRUE_FATAL(run_until(&w, all_up, NULL));
    CU_ASSERT_EQUAL(w.rec[1].ups[2], 2);
    CU_ASSERT_EQUAL(w.rec[3].ups[2], 2);
    CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 2, 1, 10), 0);
    CU_ASSERT_EQUAL(nt_sink(w.rec[3].ep, 2, 1, 10), 0);
    struct count_arg c1 = {2, 1, 1}, c3 = {2, 3, 1};
    CU_ASSERT_TRUE(run_until(&w, got_count, &c1));
    CU_ASSERT_TRUE(run_until(&w, got_count, &c3));
    world_close(&w);
}

/* A peer that accepts and never reads: the sender's queue stays bounded. */
static void test_bounded_queue(void)
{
    struct world w;
    world_conf(&w, 2);
    w.cfg.send_queue_bytes = 64u * 1024u;
    /* node 2 is a raw listener with a tiny receive buffer that never reads */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    CU_ASSERT_EQUAL_FATAL(setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(w.cfg.nodes[1].port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CU_ASSERT_EQUAL_FATAL(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    CU_ASSERT_EQUAL_FATAL(listen(l, 4), 0);
    open_node(&w, 1);
    struct net_endpoint *ep = w.rec[1].ep;
    /* before the connection exists the queue fills and says unreachable */
    int rc = 0;
    for (int i = 0; i < 200 && rc == 0; i++)
        rc = nt_sink(ep, 2, (uint64_t)i, 1000);
    CU_ASSERT_EQUAL(rc, NINES_EUNREACHABLE);
    /* connect, then keep sending: kernel buffers fill, then the queue
     * stays at its bound (EAGAIN) round after round */
    int stuck = 0;
    uint64_t total = 0, end = nclock_ms() + DEADLINE_MS;
    while (stuck < 50 && nclock_ms() < end) {
        CU_ASSERT(net_poll(ep, stuck ? 1 : 0) >= 0);
        int sent = 0;
        for (rc = 0; rc == 0 && sent < 100; sent += rc == 0)
            rc = nt_sink(ep, 2, 1, 1000);
        CU_ASSERT(rc == 0 || rc == NINES_EAGAIN || rc == NINES_EUNREACHABLE);
        total += (uint64_t)sent;
        stuck = (rc == NINES_EAGAIN && sent == 0) ? stuck + 1 : 0;
    }
    CU_ASSERT_EQUAL(stuck, 50);
    CU_ASSERT_EQUAL(rc, NINES_EAGAIN);
    printf("\n  %llu KiB accepted before the peer's buffers and our queue filled\n",
           (unsigned long long)total);
    net_endpoint_close(ep);
    close(l);
}

/* ---- bad input from raw sockets ---- */

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
    CU_ASSERT_EQUAL((ssize_t)n, send(fd, p, n, MSG_NOSIGNAL));
}

/* Frame with a hand-built Envelope (any version / sender / type). */
static void raw_env(int fd, uint32_t version, uint32_t sender, uint32_t type,
                    const ProtobufCMessage *body)
{
    uint8_t bodyb[512], out[600];
    Nines__Envelope e = NINES__ENVELOPE__INIT;
    e.version = version;
    e.sender = sender;
    e.type = type;
    if (body) {
        e.body.len = protobuf_c_message_pack(body, bodyb);
        e.body.data = bodyb;
    }
    size_t n = nines__envelope__pack(&e, out + 4);
    net_frame_put_len(out, (uint32_t)n);
    raw_send(fd, out, n + 4);
}

static void raw_hello(int fd, uint32_t version, const char *cluster, Nines__Role role,
                      uint32_t node, uint32_t sender)
{
    Nines__HelloReq h = NINES__HELLO_REQ__INIT;
    h.cluster = (char *)cluster;
    h.role = role;
    h.node_id = node;
    raw_env(fd, version, sender, NINES__MSG_TYPE__HELLO_REQ, &h.base);
}

struct raw_state {
    int fd;
    bool eof;
    uint8_t buf[4096];
    size_t len;
};

static bool raw_closed(struct world *w, void *arg)
{
    (void)w;
    struct raw_state *r = arg;
    for (;;) {
        ssize_t n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, MSG_DONTWAIT);
        if (n > 0) {
            r->len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            r->eof = true;
        return r->eof;
    }
}

/* First frame the server sent on the raw connection, or type 0. */
static uint32_t raw_first_type(struct raw_state *r)
{
    if (r->len < 4)
        return 0;
    uint32_t n = net_frame_get_len(r->buf);
    struct net_msg_in m;
    if (r->len < 4 + (size_t)n || net_env_parse(r->buf + 4, n, &m))
        return 0;
    return m.type;
}

static uint64_t bad_count(struct world *w, uint32_t n)
{
    struct net_stats st;
    net_get_stats(w->rec[n].ep, &st);
    return st.conns_closed_bad;
}

struct bad_wait {
    uint32_t node;
    uint64_t want;
};

static bool bad_reached(struct world *w, void *arg)
{
    struct bad_wait *b = arg;
    return bad_count(w, b->node) >= b->want;
}

/* Keep the good pair busy, run one bad case, check the damage is local. */
static uint64_t good_seq;
static void good_traffic(struct world *w)
{
    for (int i = 0; i < 20; i++)
        CU_ASSERT_EQUAL(nt_sink(w->rec[1].ep, 2, ++good_seq, 64), 0);
}

enum bad_kind {
    BAD_GARBAGE, BAD_TRUNCATED, BAD_OVERSIZE, BAD_UNKNOWN_TYPE, BAD_VERSION, BAD_NODE_ID,
    BAD_DATA_FIRST, BAD_CLUSTER, BAD_KINDS
};
static const char *const bad_names[] = {"garbage", "truncated", "oversize", "unknown type",
                                        "version", "node id", "data first", "cluster"};

static void run_bad_case(struct world *w, enum bad_kind k)
{
    uint16_t port = w->cfg.nodes[1].port; /* node 2 */
    uint64_t bad0 = bad_count(w, 2);
    struct raw_state *r = calloc(1, sizeof *r);
    r->fd = raw_connect(port);
    CU_ASSERT_FATAL(r->fd >= 0);
    good_traffic(w);
    uint8_t b[64];
    bool expect_ref = false, we_close = false;
    switch (k) {
    case BAD_GARBAGE:
        net_frame_put_len(b, 16);
        memset(b + 4, 0xff, 16);
        raw_send(r->fd, b, 20);
        break;
    case BAD_TRUNCATED:
        raw_hello(r->fd, 1, "nettest", NINES__ROLE__ROLE_CLIENT, 0, 0);
        net_frame_put_len(b, 40);
        memset(b + 4, 0x08, 10);
        raw_send(r->fd, b, 14);
        we_close = true;
        break;
    case BAD_OVERSIZE:
        net_frame_put_len(b, w->cfg.max_frame_bytes + 1);
        raw_send(r->fd, b, 4);
        break;
    case BAD_UNKNOWN_TYPE:
        raw_hello(r->fd, 1, "nettest", NINES__ROLE__ROLE_CLIENT, 0, 0);
        raw_env(r->fd, 1, 0, 99, NULL);
        break;
    case BAD_VERSION:
        raw_hello(r->fd, 2, "nettest", NINES__ROLE__ROLE_NODE, 1, 1);
        expect_ref = true;
        break;
    case BAD_NODE_ID:
        raw_hello(r->fd, 1, "nettest", NINES__ROLE__ROLE_NODE, 9, 9);
        expect_ref = true;
        break;
    case BAD_DATA_FIRST: {
        Nines__PingReq p = NINES__PING_REQ__INIT;
        raw_env(r->fd, 1, 1, NINES__MSG_TYPE__PING_REQ, &p.base);
        break;
    }
    case BAD_CLUSTER:
        raw_hello(r->fd, 1, "othercluster", NINES__ROLE__ROLE_CLIENT, 0, 0);
        expect_ref = true;
        break;
    default:
        CU_FAIL("bad kind");
    }
    if (we_close) {
        close(r->fd);
        r->fd = -1;
    } else {
        CU_ASSERT_TRUE(run_until(w, raw_closed, r));
        if (expect_ref)
            CU_ASSERT_EQUAL(raw_first_type(r), NINES__MSG_TYPE__HELLO_REF);
        close(r->fd);
    }
    struct bad_wait bw = {2, bad0 + 1};
    bool ok = run_until(w, bad_reached, &bw);
    if (!ok)
        printf("\n  case %s: not counted\n", bad_names[k]);
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_EQUAL(bad_count(w, 2), bad0 + 1);
    /* the good pair did not notice */
    struct count_arg c = {2, 1, good_seq};
    CU_ASSERT_TRUE(run_until(w, got_count, &c));
    CU_ASSERT_TRUE(net_peer_reachable(w->rec[1].ep, 2));
    CU_ASSERT_TRUE(net_peer_reachable(w->rec[2].ep, 1));
    CU_ASSERT_EQUAL(w->rec[2].downs[1], 0);
    free(r);
}

static void test_bad_input(void)
{
    struct world w;
    world_open(&w);
    good_seq = 0;
    CU_ASSERT_TRUE_FATAL(run_until(&w, all_up, NULL));
    for (int k = 0; k < BAD_KINDS; k++)
        run_bad_case(&w, (enum bad_kind)k);
    CU_ASSERT_EQUAL(w.rec[2].sink_out_of_order, 0);
    CU_ASSERT_EQUAL(w.rec[2].sink_count[1], good_seq);
    CU_ASSERT_EQUAL(bad_count(&w, 2), BAD_KINDS);
    CU_ASSERT_EQUAL(bad_count(&w, 1), 0);
    world_close(&w);
}

/* A node id in the config but higher than the acceptor must not dial it. */
static void test_wrong_direction_refused(void)
{
    struct world w;
    world_open(&w);
    CU_ASSERT_TRUE_FATAL(run_until(&w, all_up, NULL));
    struct raw_state *r = calloc(1, sizeof *r);
    r->fd = raw_connect(w.cfg.nodes[1].port);
    raw_hello(r->fd, 1, "nettest", NINES__ROLE__ROLE_NODE, 3, 3);
    CU_ASSERT_TRUE(run_until(&w, raw_closed, r));
    CU_ASSERT_EQUAL(raw_first_type(r), NINES__MSG_TYPE__HELLO_REF);
    CU_ASSERT_TRUE(net_peer_reachable(w.rec[2].ep, 3));
    close(r->fd);
    free(r);
    world_close(&w);
}

/* ---- blocking client against a node ---- */

static void test_client(void)
{
    struct world w;
    world_open(&w);
    CU_ASSERT_TRUE_FATAL(run_until(&w, all_up, NULL));
    /* the client blocks: run it in a child process while this one polls */
    uint16_t port = w.cfg.nodes[1].port;
    int pfd[2];
    CU_ASSERT_EQUAL_FATAL(pipe(pfd), 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        struct net_client *c;
        int rc = net_client_connect(&c, "127.0.0.1", port, "nettest", 5000);
        uint8_t res = 1;
        if (!rc) {
            Nines__PingReq p = NINES__PING_REQ__INIT;
            p.seq = 77;
            rc = net_client_send(c, NINES__MSG_TYPE__PING_REQ, &p.base);
            struct net_msg_in m;
            if (!rc)
                rc = net_client_recv(c, &m, 5000);
            if (!rc && m.type == NINES__MSG_TYPE__PING_CONF && m.sender == 2) {
                Nines__PingConf *pc = nines__ping_conf__unpack(NULL, m.body_len, m.body);
                if (pc && pc->seq == 77)
                    res = 0;
                if (pc)
                    nines__ping_conf__free_unpacked(pc, NULL);
            }
            /* a refused cluster name is reported */
            struct net_client *c2;
            rc = net_client_connect(&c2, "127.0.0.1", port, "wrong", 5000);
            if (rc != NINES_ECLOSED || !strstr(nines_errdetail(), "cluster 'wrong'"))
                res = 2;
            net_client_close(c);
        }
        if (write(pfd[1], &res, 1) != 1)
            _exit(3);
        _exit(0);
    }
    close(pfd[1]);
    uint8_t res = 99;
    uint64_t end = nclock_ms() + DEADLINE_MS;
    while (nclock_ms() < end) {
        poll_all(&w);
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        if (poll(&p, 1, 0) == 1) {
            if (read(pfd[0], &res, 1) != 1)
                res = 98;
            break;
        }
    }
    close(pfd[0]);
    int status;
    waitpid(pid, &status, 0);
    CU_ASSERT_EQUAL(res, 0);
    CU_ASSERT_EQUAL(w.rec[2].ping_seen, 1);
    /* the client's close reaches the handler */
    uint64_t until = nclock_ms() + DEADLINE_MS;
    while (w.rec[2].client_closes < 1 && nclock_ms() < until)
        poll_all(&w);
    CU_ASSERT(w.rec[2].client_closes >= 1);
    world_close(&w);
}

/* wake() makes a waiting poll return (eventfd); without it a lone node
 * with no peers has nothing to report and the poll times out with 0. */
static void test_wake(void)
{
    struct world w;
    world_conf(&w, 1);
    open_node(&w, 1);
    CU_ASSERT_EQUAL(net_poll(w.rec[1].ep, 0), 0);
    net_wake(w.rec[1].ep);
    CU_ASSERT_EQUAL(net_poll(w.rec[1].ep, 5000), 1);
    CU_ASSERT_EQUAL(net_poll(w.rec[1].ep, 0), 0); /* drained */
    net_endpoint_close(w.rec[1].ep);
}

/* transport "rdma" without a device falls back to TCP and still works. */
static void test_rdma_fallback(void)
{
    struct world w;
    world_conf(&w, NN);
    snprintf(w.cfg.transport, sizeof w.cfg.transport, "rdma");
    for (uint32_t n = 1; n <= NN; n++) {
        memset(&w.rec[n], 0, sizeof w.rec[n]);
        struct net_handlers h = nt_handlers(&w.rec[n]);
        CU_ASSERT_EQUAL_FATAL(net_endpoint_open(&w.rec[n].ep, &w.cfg, n, &h), 0);
    }
    bool have_dev = access("/sys/class/infiniband", F_OK) == 0;
    if (!have_dev)
        CU_ASSERT_STRING_EQUAL(net_transport_name(w.rec[1].ep), "tcp");
    CU_ASSERT_TRUE(run_until(&w, all_up, NULL));
    world_close(&w);
    /* an unknown transport name is a configuration error */
    snprintf(w.cfg.transport, sizeof w.cfg.transport, "carrier-pigeon");
    struct net_endpoint *ep = NULL;
    struct net_handlers h = nt_handlers(&w.rec[1]);
    CU_ASSERT_EQUAL(net_endpoint_open(&ep, &w.cfg, 1, &h), NINES_ECONFIG);
    CU_ASSERT_PTR_NULL(ep);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"handshake over tcp", test_handshake},
        {"many messages batched into few writes", test_batching},
        {"reconnect after a peer restarts", test_reconnect},
        {"bounded queue to a peer that never reads", test_bounded_queue},
        {"bad input closes only that connection", test_bad_input},
        {"higher id dialling a lower id is refused", test_wrong_direction_refused},
        {"blocking client: hello, ping, refusal", test_client},
        {"wake interrupts a waiting poll", test_wake},
        {"rdma without a device falls back to tcp", test_rdma_fallback},
        {NULL, NULL},
    };
    cu_add_suite("net_tcp", NULL, NULL, cases);
}
