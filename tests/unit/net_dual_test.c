/* The rdma+tcp transport (net/dual.c) over the fake HCA (rdma_fake.inc):
 * two nodes exchange messages over RDMA while a blocking client talks to
 * one of them over TCP; node frames never touch TCP; a client byte and
 * wake() both end a waiting poll; a node HELLO on the client TCP port is
 * refused with a logged reason. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "cu_test.h"
#include "nclock.h"
#include "net/dual.h"
#include "net/net.h"
#include "net/rdma_int.h"
#include "net/rdma_verbs.h"
#include "net/tcp.h"
#include "net_test_util.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "rdma_fake.inc"

#define DEADLINE_MS 10000
#define TCP_TAG ((net_addr)1 << 62)   /* dual.c shows TCP connections with this bit */

static struct nines_conf conf;

/* A loopback port p with p and p + RDMA_CM_PORT_OFFSET both free (probed). */
static uint16_t pick_port(void)
{
    for (int tries = 0; tries < 100; tries++) {
        int a = socket(AF_INET, SOCK_STREAM, 0), b = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof sa;
        uint16_t p = 0;
        if (bind(a, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            getsockname(a, (struct sockaddr *)&sa, &sl) == 0) {
            p = ntohs(sa.sin_port);
            sa.sin_port = htons((uint16_t)(p + RDMA_CM_PORT_OFFSET));
            if (p + RDMA_CM_PORT_OFFSET > 65535u || bind(b, (struct sockaddr *)&sa, sizeof sa) != 0)
                p = 0;
        }
        close(a);
        close(b);
        if (p)
            return p;
    }
    CU_FAIL_FATAL("no free port pair");
    return 0;
}

static void make_conf(uint32_t nn)
{
    uint16_t ports[4];
    for (uint32_t i = 0; i < nn; i++)
        ports[i] = pick_port();
    nt_conf(&conf, nn, ports);
    snprintf(conf.transport, sizeof conf.transport, "rdma");
    conf.max_frame_bytes = 4096;
    conf.send_queue_bytes = 65536;
    conf.reconnect_min_ms = 2;
    conf.reconnect_max_ms = 20;
}

/* One node on the rdma+tcp transport over the fake HCA; halves returned. */
static void open_dual_h(struct nt_rec *r, uint32_t id, struct net_transport **rd, struct net_transport **tcp,
                        int (*on_msg)(void *, const struct net_msg_in *))
{
    struct net_rdma_params p = {.slot_bytes = 1024, .recv_slots = 4};
    struct net_transport *t = NULL, *d = NULL;
    CU_ASSERT_EQUAL_FATAL(net_rdma_create_with(&t, &conf, id, &fk_ops, &p), 0);
    CU_ASSERT_EQUAL_FATAL(net_dual_create(&d, &conf, id, t), 0);
    *rd = net_dual_rdma(d);
    *tcp = net_dual_tcp(d);
    CU_ASSERT_PTR_EQUAL(*rd, t);
    memset(r, 0, sizeof *r);
    r->self = id;
    struct net_handlers h = nt_handlers(r);
    if (on_msg)
        h.on_msg = on_msg;
    CU_ASSERT_EQUAL_FATAL(net_endpoint_open_on(&r->ep, &conf, id, d, &h), 0);
    CU_ASSERT_STRING_EQUAL(net_transport_name(r->ep), "rdma+tcp");
}

static void open_dual(struct nt_rec *r, uint32_t id, struct net_transport **rd, struct net_transport **tcp)
{
    open_dual_h(r, id, rd, tcp, NULL);
}

static void close_all(struct nt_rec *recs, int n)
{
    for (int i = 0; i < n; i++)
        if (recs[i].ep) {
            net_endpoint_close(recs[i].ep);
            recs[i].ep = NULL;
        }
    if (fk.errors)
        fprintf(stderr, "fake HCA: %u errors, last: %s\n", fk.errors, fk.last_error);
    CU_ASSERT_EQUAL(fk.errors, 0);
    CU_ASSERT_EQUAL(fk.rnr, 0);
    CU_ASSERT_EQUAL(fk.live_qp + fk.live_cq + fk.live_mr + fk.live_pd + fk.live_ch + fk.live_ctx, 0);
}

static void poll_all(struct nt_rec *recs, int n, int timeout_ms)
{
    for (int i = 0; i < n; i++)
        if (recs[i].ep)
            CU_ASSERT(net_poll(recs[i].ep, timeout_ms) >= 0);
}

static bool both_up(struct nt_rec *recs)
{
    return net_peer_reachable(recs[1].ep, 2) && net_peer_reachable(recs[2].ep, 1);
}

/* ---- the blocking client, on its own thread while the test thread polls ---- */

struct client_job {
    uint16_t port;
    uint32_t pings;
    uint32_t pause_after;  /* if > 0: after this many pings, wait for `go` */
    atomic_int paused;
    atomic_int go;
    atomic_int done;       /* 0 running, 1 finished */
    int rc;                /* 0 = every ping answered correctly */
    char why[256];
};

static void *client_main(void *arg)
{
    struct client_job *j = arg;
    struct net_client *c = NULL;
    j->rc = net_client_connect(&c, "127.0.0.1", j->port, conf.cluster, 5000);
    if (j->rc)
        snprintf(j->why, sizeof j->why, "connect: %s", nines_errdetail());
    for (uint32_t s = 0; !j->rc && s < j->pings; s++) {
        if (j->pause_after && s == j->pause_after) {
            atomic_store(&j->paused, 1);
            while (!atomic_load(&j->go))
                usleep(1000);
        }
        Nines__PingReq p = NINES__PING_REQ__INIT;
        p.seq = 1000 + s;
        j->rc = net_client_send(c, NINES__MSG_TYPE__PING_REQ, &p.base);
        struct net_msg_in m;
        if (!j->rc)
            j->rc = net_client_recv(c, &m, 5000);
        if (j->rc) {
            snprintf(j->why, sizeof j->why, "ping %u: %s", s, nines_errdetail());
            break;
        }
        Nines__PingConf *pc = m.type == NINES__MSG_TYPE__PING_CONF
                                  ? nines__ping_conf__unpack(NULL, m.body_len, m.body)
                                  : NULL;
        if (!pc || pc->seq != 1000 + s || m.sender != 2) {
            j->rc = NINES_EPROTO;
            snprintf(j->why, sizeof j->why, "ping %u: reply type %u sender %u seq %lld", s, m.type,
                     m.sender, pc ? (long long)pc->seq : -1ll);
        }
        if (pc)
            nines__ping_conf__free_unpacked(pc, NULL);
    }
    net_client_close(c);
    atomic_store(&j->done, 1);
    return NULL;
}

/* Node 1 and node 2 exchange SINK_REQs over RDMA while a client pings node
 * 2 over TCP. Node frames never go through a TCP half. */
static void test_nodes_rdma_client_tcp(void)
{
    fk_reset(1);
    make_conf(2);
    struct nt_rec r[3];
    memset(r, 0, sizeof r);
    struct net_transport *rd[3], *tcp[3];
    for (uint32_t i = 1; i <= 2; i++)
        open_dual(&r[i], i, &rd[i], &tcp[i]);
    uint64_t end = nclock_ms() + DEADLINE_MS;
    while (!both_up(r) && nclock_ms() < end)
        poll_all(r, 3, 1);
    CU_ASSERT_FATAL(both_up(r));
    CU_ASSERT_EQUAL(r[1].ups[2], 1);
    CU_ASSERT_EQUAL(r[2].ups[1], 1);

    /* node traffic both ways, with a client pinging node 2 meanwhile */
    struct client_job job = {.port = conf.nodes[1].port, .pings = 50};
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, client_main, &job), 0);
    const uint32_t N = 2000;
    uint32_t sent[3] = {0, 0, 0};
    end = nclock_ms() + DEADLINE_MS;
    while ((sent[1] < N || sent[2] < N || !atomic_load(&job.done) || r[2].sink_count[1] < N ||
            r[1].sink_count[2] < N) &&
           nclock_ms() < end) {
        for (uint32_t from = 1; from <= 2; from++) {
            for (int k = 0; k < 20 && sent[from] < N; k++) {
                int rc = nt_sink(r[from].ep, 3 - from, sent[from] + 1, sent[from] % 300);
                if (rc == NINES_EAGAIN)
                    break;
                CU_ASSERT_EQUAL_FATAL(rc, 0);
                sent[from]++;
            }
        }
        poll_all(r, 3, 1);
    }
    pthread_join(th, NULL);
    if (job.rc)
        fprintf(stderr, "client: %s\n", job.why);
    CU_ASSERT_EQUAL(job.rc, 0);
    CU_ASSERT_EQUAL(r[2].ping_seen, job.pings);
    CU_ASSERT_EQUAL(r[2].sink_count[1], N);
    CU_ASSERT_EQUAL(r[1].sink_count[2], N);
    CU_ASSERT_EQUAL(r[1].sink_out_of_order + r[2].sink_out_of_order, 0);

    /* the client's close reaches its handler */
    end = nclock_ms() + DEADLINE_MS;
    while (r[2].client_closes < 1 && nclock_ms() < end)
        poll_all(r, 3, 1);
    CU_ASSERT_EQUAL(r[2].client_closes, 1);

    /* Node frames went over the fake fabric; node 1 (no client) never wrote
     * to TCP; node 2 wrote to TCP only for its client (at most one write
     * per reply, HELLO_CONF included). Endpoint writes = both halves. */
    struct net_rdma_stats s1, s2;
    net_rdma_get_stats(rd[1], &s1);
    net_rdma_get_stats(rd[2], &s2);
    CU_ASSERT(s1.frames_out >= N);
    CU_ASSERT(s2.frames_out >= N);
    CU_ASSERT(s1.frames_in >= N && s2.frames_in >= N);
    CU_ASSERT(fk.sends > 0);
    CU_ASSERT_EQUAL(tcp[1]->writes, 0);
    CU_ASSERT(tcp[2]->writes >= 1);
    CU_ASSERT(tcp[2]->writes <= job.pings + 1);
    CU_ASSERT_EQUAL(rd[1]->writes, s1.posts);
    CU_ASSERT_EQUAL(rd[2]->writes, s2.posts);
    for (int i = 1; i <= 2; i++) {
        struct net_stats st;
        net_get_stats(r[i].ep, &st);
        CU_ASSERT_EQUAL(st.writes, rd[i]->writes + tcp[i]->writes);
        CU_ASSERT_EQUAL(st.conns_closed_bad, 0);
    }
    printf("\n  (node 2: %llu RDMA posts, %llu TCP writes for %u client pings)\n",
           (unsigned long long)s2.posts, (unsigned long long)tcp[2]->writes, job.pings);
    close_all(r, 3);
}

/* Connection addresses of the two halves never collide: a handler that
 * records where each PING_REQ came from. */
static net_addr ping_from;
static int rec_on_msg(void *ctx, const struct net_msg_in *m)
{
    if (m->type == NINES__MSG_TYPE__PING_REQ)
        ping_from = m->from;
    return nt_on_msg(ctx, m);
}
static void test_conn_addresses(void)
{
    fk_reset(1);
    make_conf(2);
    struct nt_rec r[3];
    memset(r, 0, sizeof r);
    struct net_transport *rd[3], *tcp[3];
    open_dual(&r[1], 1, &rd[1], &tcp[1]);
    open_dual_h(&r[2], 2, &rd[2], &tcp[2], rec_on_msg);
    uint64_t end = nclock_ms() + DEADLINE_MS;
    while (!both_up(r) && nclock_ms() < end)
        poll_all(r, 3, 1);
    CU_ASSERT_FATAL(both_up(r));
    ping_from = 0;
    struct client_job job = {.port = conf.nodes[1].port, .pings = 1};
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, client_main, &job), 0);
    end = nclock_ms() + DEADLINE_MS;
    while (!atomic_load(&job.done) && nclock_ms() < end)
        poll_all(r, 3, 1);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(job.rc, 0);
    /* the client's address carries the TCP tag, is a connection address,
     * and sending to it with the tag removed is refused (no such RDMA conn) */
    CU_ASSERT(ping_from >= NET_CONN_BASE);
    CU_ASSERT((ping_from & TCP_TAG) != 0);
    Nines__PingConf pc = NINES__PING_CONF__INIT;
    CU_ASSERT_EQUAL(net_send(r[2].ep, ping_from & ~TCP_TAG, NINES__MSG_TYPE__PING_CONF, &pc.base),
                    NINES_EINVAL);
    /* the TCP half refuses node addresses and binds */
    int err = 0;
    CU_ASSERT_PTR_NULL(tcp[1]->ops->reserve(tcp[1], 2, 16, &err));
    CU_ASSERT_EQUAL(err, NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "clients only"));
    close_all(r, 3);
}

/* A waiting poll ends on wake() from another thread and on a client
 * connecting to the TCP port. A watchdog wakes the poll if neither worked,
 * so a regression fails the test instead of hanging it. */
struct waker_job {
    struct net_endpoint *ep;
    uint16_t port;        /* 0: call net_wake; else connect a socket */
    int fd;
    atomic_int acted;
    atomic_int returned;
    atomic_int watchdog_fired;
};

static void *waker_main(void *arg)
{
    struct waker_job *w = arg;
    usleep(20000);
    /* before acting: a poll that returns after this point may exit the
     * test's loop, a poll that started before it must be ended by us */
    atomic_store(&w->acted, 1);
    if (w->port == 0) {
        net_wake(w->ep);
    } else {
        w->fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(w->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(w->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            perror("connect");
    }
    for (int i = 0; i < 2000 && !atomic_load(&w->returned); i++)
        usleep(10000);
    if (!atomic_load(&w->returned)) {
        atomic_store(&w->watchdog_fired, 1);
        net_wake(w->ep);
    }
    return NULL;
}

static void test_wait_ends(void)
{
    fk_reset(1);
    make_conf(2);
    struct nt_rec r[3];
    memset(r, 0, sizeof r);
    struct net_transport *rd[3], *tcp[3];
    for (uint32_t i = 1; i <= 2; i++)
        open_dual(&r[i], i, &rd[i], &tcp[i]);
    uint64_t end = nclock_ms() + DEADLINE_MS;
    while (!both_up(r) && nclock_ms() < end)
        poll_all(r, 3, 1);
    CU_ASSERT_FATAL(both_up(r));
    for (int i = 0; i < 20; i++)
        poll_all(r, 3, 0);
    for (int k = 0; k < 2; k++) {
        struct waker_job w = {.ep = r[2].ep, .port = k ? conf.nodes[1].port : 0, .fd = -1};
        pthread_t th;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, waker_main, &w), 0);
        /* leftover events may end a poll early: wait until the waker acted */
        int n;
        do
            n = net_poll(r[2].ep, -1);
        while (n >= 0 && !atomic_load(&w.acted));
        atomic_store(&w.returned, 1);
        pthread_join(th, NULL);
        CU_ASSERT(n >= 0);
        CU_ASSERT_EQUAL(atomic_load(&w.watchdog_fired), 0);
        if (w.fd >= 0)
            close(w.fd);
    }
    close_all(r, 3);
}

/* A node that fell back to TCP (transport tcp) dials node 2's TCP port with
 * a node HELLO: node 2 answers HELLO_REF, logs why, and neither side ever
 * sees the other up. The log lines are captured from stderr. */
static void test_node_hello_on_client_port(void)
{
    fk_reset(1);
    make_conf(2);
    struct nt_rec r[3];
    memset(r, 0, sizeof r);
    struct net_transport *rd2, *tcp2;
    open_dual(&r[2], 2, &rd2, &tcp2);
    struct net_transport *t1 = NULL;
    CU_ASSERT_EQUAL_FATAL(net_tcp_create(&t1, &conf, 1), 0);
    r[1].self = 1;
    struct net_handlers h1 = nt_handlers(&r[1]);
    CU_ASSERT_EQUAL_FATAL(net_endpoint_open_on(&r[1].ep, &conf, 1, t1, &h1), 0);

    char path[] = "/tmp/net_dual_test_XXXXXX";
    int logfd = mkstemp(path);
    CU_ASSERT_FATAL(logfd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    CU_ASSERT_FATAL(saved >= 0 && dup2(logfd, 2) == 2);
    struct net_stats st2;
    uint64_t end = nclock_ms() + DEADLINE_MS;
    do {
        poll_all(r, 3, 1);
        net_get_stats(r[2].ep, &st2);
    } while (st2.conns_closed_bad < 2 && nclock_ms() < end);   /* two refusals: one redial */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    CU_ASSERT(st2.conns_closed_bad >= 2);
    CU_ASSERT_EQUAL(r[2].ups[1], 0);
    CU_ASSERT_EQUAL(r[1].ups[2], 0);
    CU_ASSERT_FALSE(net_peer_reachable(r[2].ep, 1));
    CU_ASSERT_FALSE(net_peer_reachable(r[1].ep, 2));
    CU_ASSERT(tcp2->writes >= 1);   /* the HELLO_REFs */
    struct net_rdma_stats s2;
    net_rdma_get_stats(rd2, &s2);
    CU_ASSERT_EQUAL(s2.conns_up, 0);

    char log[16384];
    ssize_t n = pread(logfd, log, sizeof log - 1, 0);
    close(logfd);
    CU_ASSERT_FATAL(n > 0);
    log[n] = 0;
    /* node 2 logs the refusal with its reason; node 1 logs what it was told */
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ep 2: closing conn"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "HELLO refused: node 1 connected to the client TCP port"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ep 1: node 2 refused our HELLO: node 1 connected to the client TCP port"));
    close_all(r, 3);
}

/* The RDMA link between the nodes fails (QP error) and comes back while a
 * client of node 2 stays connected over TCP and keeps being answered. */
static void test_rdma_failure_spares_clients(void)
{
    fk_reset(1);
    make_conf(2);
    struct nt_rec r[3];
    memset(r, 0, sizeof r);
    struct net_transport *rd[3], *tcp[3];
    for (uint32_t i = 1; i <= 2; i++)
        open_dual(&r[i], i, &rd[i], &tcp[i]);
    uint64_t end = nclock_ms() + DEADLINE_MS;
    while (!both_up(r) && nclock_ms() < end)
        poll_all(r, 3, 1);
    CU_ASSERT_FATAL(both_up(r));
    struct client_job job = {.port = conf.nodes[1].port, .pings = 6, .pause_after = 3};
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, client_main, &job), 0);
    end = nclock_ms() + DEADLINE_MS;
    while (!atomic_load(&job.paused) && !atomic_load(&job.done) && nclock_ms() < end)
        poll_all(r, 3, 1);
    CU_ASSERT_EQUAL(r[2].ping_seen, 3);
    uint32_t qpn = net_rdma_conn_qpn(rd[2], 1);
    CU_ASSERT_NOT_EQUAL_FATAL(qpn, 0);
    fk_qp_error(qpn);
    end = nclock_ms() + DEADLINE_MS;
    while (!(r[2].downs[1] == 1 && r[1].downs[2] == 1 && both_up(r)) && nclock_ms() < end)
        poll_all(r, 3, 1);
    CU_ASSERT_EQUAL(r[2].downs[1], 1);
    CU_ASSERT_EQUAL(r[2].ups[1], 2);
    CU_ASSERT_EQUAL(r[2].client_closes, 0);
    atomic_store(&job.go, 1);
    end = nclock_ms() + DEADLINE_MS;
    while (!atomic_load(&job.done) && nclock_ms() < end)
        poll_all(r, 3, 1);
    pthread_join(th, NULL);
    if (job.rc)
        fprintf(stderr, "client: %s\n", job.why);
    CU_ASSERT_EQUAL(job.rc, 0);
    CU_ASSERT_EQUAL(r[2].ping_seen, 6);
    /* and node traffic flows again over the new queue pair */
    CU_ASSERT_EQUAL(nt_sink(r[1].ep, 2, 1, 10), 0);
    end = nclock_ms() + DEADLINE_MS;
    while (r[2].sink_count[1] < 1 && nclock_ms() < end)
        poll_all(r, 3, 1);
    CU_ASSERT_EQUAL(r[2].sink_count[1], 1);
    CU_ASSERT_EQUAL(tcp[1]->writes, 0);
    close_all(r, 3);
}

/* Configuration errors of the composite: an unknown node fails cleanly and
 * destroys the RDMA half it was given; TCP listen failures surface at start. */
static void test_create_errors(void)
{
    fk_reset(1);
    make_conf(2);
    struct net_transport *t = NULL, *d = (struct net_transport *)&conf;
    CU_ASSERT_EQUAL_FATAL(net_rdma_create_with(&t, &conf, 1, &fk_ops, NULL), 0);
    CU_ASSERT_EQUAL(net_dual_create(&d, &conf, 9, t), NINES_ECONFIG);
    CU_ASSERT_PTR_NULL(d);
    CU_ASSERT_EQUAL(fk.live_ctx + fk.live_pd + fk.live_mr + fk.live_ch, 0);
    /* the client port is taken: start (via the endpoint) fails with the reason */
    int busy = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(conf.nodes[0].port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CU_ASSERT_FATAL(bind(busy, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(busy, 1) == 0);
    CU_ASSERT_EQUAL_FATAL(net_rdma_create_with(&t, &conf, 1, &fk_ops, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(net_dual_create(&d, &conf, 1, t), 0);
    struct nt_rec r;
    memset(&r, 0, sizeof r);
    struct net_handlers h = nt_handlers(&r);
    CU_ASSERT_EQUAL(net_endpoint_open_on(&r.ep, &conf, 1, d, &h), NINES_ESYS);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "listen on"));
    CU_ASSERT_PTR_NULL(r.ep);
    close(busy);
    CU_ASSERT_EQUAL(fk.live_qp + fk.live_cq + fk.live_mr + fk.live_pd + fk.live_ch + fk.live_ctx, 0);
    CU_ASSERT_EQUAL(fk.errors, 0);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"nodes over rdma, a client over tcp", test_nodes_rdma_client_tcp},
        {"connection addresses of the halves", test_conn_addresses},
        {"wake and a client end a waiting poll", test_wait_ends},
        {"node HELLO on the client port refused", test_node_hello_on_client_port},
        {"rdma link failure spares clients", test_rdma_failure_spares_clients},
        {"creation and start errors", test_create_errors},
        {NULL, NULL},
    };
    cu_add_suite("net_dual", NULL, NULL, cases);
}
