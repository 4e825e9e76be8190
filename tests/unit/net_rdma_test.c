/* RDMA transport over a fake HCA (rdma_fake.inc): handshake and QP state
 * order, in-order delivery with batching, credit flow control, frames larger
 * than a slot, completion errors closing one connection only, side-channel
 * input checks, and the no-device path (fake and real libibverbs). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "crc32c.h"
#include "nclock.h"
#include "cu_test.h"
#include "net/net.h"
#include "net/rdma_int.h"
#include "nines_net.pb-c.h"
#include "net/rdma_verbs.h"
#include "nines/errors.h"
#include "rdma_fake.inc"

#define MAXN 4
#define K_HELLO 1u
#define K_DATA 2u
#define K_POISON 3u   /* receiver refuses it */
#define HDR 12u       /* test frame: u32 kind, u32 sender, u32 seq, then pattern bytes */

struct tnode {
    uint32_t id;
    struct net_transport *t;
    int connects_out[MAXN + 1];   /* outbound on_connect per node */
    int accepted;                 /* inbound on_connect */
    int binds[MAXN + 1];
    int closes[MAXN + 1];         /* on_close per node address */
    int last_close_err[MAXN + 1];
    int conn_closes;              /* on_close of unbound connections */
    uint32_t rx[MAXN + 1];        /* data frames from each sender */
    uint32_t rx_next[MAXN + 1];   /* expected next seq from each sender */
    int bad;                      /* order or content violations */
};

static struct tnode nodes[MAXN + 1];
static struct nines_conf conf;
static unsigned long seed_state;

static uint32_t rnd(void)
{
    seed_state = seed_state * 6364136223846793005ul + 1442695040888963407ul;
    return (uint32_t)(seed_state >> 33);
}

static int t_send(struct tnode *n, net_addr to, uint32_t kind, uint32_t seq, size_t len)
{
    int err = 0;
    uint8_t *p = n->t->ops->reserve(n->t, to, len, &err);
    if (!p)
        return err;
    net_rdma_put32(p, kind);
    net_rdma_put32(p + 4, n->id);
    net_rdma_put32(p + 8, seq);
    for (size_t i = HDR; i < len; i++)
        p[i] = (uint8_t)(seq + i);
    n->t->ops->commit(n->t, to, len);
    return 0;
}

static void cb_connect(void *ctx, net_addr a, int outbound)
{
    struct tnode *n = ctx;
    if (outbound) {
        CU_ASSERT_FATAL(a >= 1 && a <= MAXN);
        n->connects_out[a]++;
        /* like the endpoint's HELLO_REQ, sent from inside the upcall */
        CU_ASSERT_EQUAL(t_send(n, a, K_HELLO, 0, HDR), 0);
        return;
    }
    CU_ASSERT(a >= NET_CONN_BASE);
    n->accepted++;
}

static int cb_frame(void *ctx, net_addr a, const uint8_t *buf, size_t len)
{
    struct tnode *n = ctx;
    if (len < HDR)
        return nines_err(NINES_EPROTO, "test frame of %zu bytes", len);
    uint32_t kind = net_rdma_get32(buf), sender = net_rdma_get32(buf + 4), seq = net_rdma_get32(buf + 8);
    if (sender < 1 || sender > MAXN)
        return nines_err(NINES_EPROTO, "sender %u", sender);
    if (kind == K_HELLO) {
        if (a < NET_CONN_BASE) {
            n->bad++;
            return 0;
        }
        int rc = n->t->ops->bind(n->t, a, sender);
        if (rc < 0)
            return rc;
        n->binds[sender]++;
        n->rx_next[sender] = 0;
        return 0;
    }
    if (kind == K_POISON)
        return nines_err(NINES_EPROTO, "poison frame %u from node %u", seq, sender);
    if (a != sender || seq != n->rx_next[sender])
        n->bad++;
    for (size_t i = HDR; i < len; i++)
        if (buf[i] != (uint8_t)(seq + i)) {
            n->bad++;
            break;
        }
    n->rx_next[sender] = seq + 1;
    n->rx[sender]++;
    return 0;
}

static void cb_close(void *ctx, net_addr a, int err)
{
    struct tnode *n = ctx;
    if (a >= 1 && a <= MAXN) {
        n->closes[a]++;
        n->last_close_err[a] = err;
    } else {
        n->conn_closes++;
    }
}

/* A free loopback port p with p + RDMA_CM_PORT_OFFSET also free (probed). */
static uint16_t pick_port(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof sa;
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) {
            uint16_t side = ntohs(sa.sin_port);
            close(fd);
            if (side > 20000)
                return (uint16_t)(side - RDMA_CM_PORT_OFFSET);
            continue;
        }
        close(fd);
    }
    CU_FAIL_FATAL("no free port");
    return 0;
}

static void make_conf(int nn, uint32_t max_frame)
{
    char text[1024];
    int off = snprintf(text, sizeof text,
                       "cluster rdmatest\nreconnect_min_ms 2\nreconnect_max_ms 20\n"
                       "max_frame_bytes %u\nsend_queue_bytes 65536\n", max_frame);
    for (int i = 1; i <= nn; i++)
        off += snprintf(text + off, sizeof text - (size_t)off, "node %d site %d 127.0.0.1:%u\n", i,
                        (i + 1) % 2,
                        pick_port());
    int rc = nines_conf_parse(text, "rdma-test", &conf);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/* Create and start nodes 1..nn over the fake HCA. */
static void setup(int nn, uint32_t max_frame, const struct net_rdma_params *p)
{
    fk_reset(1);
    memset(nodes, 0, sizeof nodes);
    make_conf(nn, max_frame);
    for (int i = 1; i <= nn; i++) {
        struct tnode *n = &nodes[i];
        n->id = (uint32_t)i;
        int rc = net_rdma_create_with(&n->t, &conf, n->id, &fk_ops, p);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_STRING_EQUAL(n->t->ops->name, "rdma");
        n->t->cb = (struct net_transport_cb){.ctx = n, .on_connect = cb_connect, .on_frame = cb_frame,
                                             .on_close = cb_close};
        CU_ASSERT_EQUAL_FATAL(n->t->ops->start(n->t), 0);
    }
}

/* Destroy everything; the fake must hold no object and have seen no error. */
static void teardown(int nn)
{
    for (int i = 1; i <= nn; i++)
        if (nodes[i].t) {
            nodes[i].t->ops->destroy(nodes[i].t);
            nodes[i].t = NULL;
        }
    if (fk.errors)
        fprintf(stderr, "fake HCA: %u errors, last: %s\n", fk.errors, fk.last_error);
    CU_ASSERT_EQUAL(fk.errors, 0);
    CU_ASSERT_EQUAL(fk.rnr, 0);
    CU_ASSERT_EQUAL(fk.live_qp, 0);
    CU_ASSERT_EQUAL(fk.live_cq, 0);
    CU_ASSERT_EQUAL(fk.live_mr, 0);
    CU_ASSERT_EQUAL(fk.live_pd, 0);
    CU_ASSERT_EQUAL(fk.live_ch, 0);
    CU_ASSERT_EQUAL(fk.live_ctx, 0);
}

static void pump_once(int nn, int timeout_ms)
{
    for (int i = 1; i <= nn; i++)
        if (nodes[i].t) {
            CU_ASSERT(nodes[i].t->ops->flush(nodes[i].t) >= 0);
            CU_ASSERT(nodes[i].t->ops->poll(nodes[i].t, timeout_ms) >= 0);
        }
}

/* Poll every node until cond holds; bounded so a bug fails instead of hanging. */
#define PUMP_UNTIL(nn, cond)                                      \
    do {                                                          \
        int it_ = 0;                                              \
        while (!(cond) && it_++ < 4000)                           \
            pump_once(nn, 1);                                     \
        CU_ASSERT_FATAL(cond);                                    \
    } while (0)

static bool linked(int a, int b)   /* a < b: a dialled b, b bound it */
{
    return nodes[a].connects_out[b] > 0 && nodes[b].binds[a] > 0 &&
           net_rdma_conn_qpn(nodes[a].t, (net_addr)b) != 0 && net_rdma_conn_qpn(nodes[b].t, (net_addr)a) != 0;
}

/* Send `count` data frames a -> b with sizes in [lo, hi], retrying on EAGAIN. */
static void send_many(int nn, int a, int b, uint32_t first_seq, uint32_t count, size_t lo, size_t hi)
{
    for (uint32_t s = first_seq; s < first_seq + count;) {
        size_t len = lo + (hi > lo ? rnd() % (hi - lo + 1) : 0);
        int rc = t_send(&nodes[a], (net_addr)b, K_DATA, s, len);
        if (rc == NINES_EAGAIN) {
            pump_once(nn, 0);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        s++;
        if (s % 64 == 0)
            CU_ASSERT(nodes[a].t->ops->flush(nodes[a].t) >= 0);
    }
}

/* ------------------------------------------------------------------ tests */

static void test_no_device_fake(void)
{
    fk_reset(0);
    make_conf(2, 4096);
    struct net_transport *t = (struct net_transport *)&conf;   /* must be overwritten */
    int rc = net_rdma_create_with(&t, &conf, 1, &fk_ops, NULL);
    CU_ASSERT_EQUAL(rc, NINES_ENODEV);
    CU_ASSERT_PTR_NULL(t);
    CU_ASSERT_STRING_EQUAL(nines_errdetail(),
                           "no RDMA device found (ibv_get_device_list returned 0 devices)");
    CU_ASSERT_EQUAL(fk.live_ctx, 0);
    /* a node id missing from the configuration is a configuration error */
    fk_reset(1);
    rc = net_rdma_create_with(&t, &conf, 9, &fk_ops, NULL);
    CU_ASSERT_EQUAL(rc, NINES_ECONFIG);
    CU_ASSERT_EQUAL(fk.live_ctx, 0);
}

static void test_no_device_real(void)
{
    make_conf(2, 4096);
    struct net_transport *t = NULL;
    int rc = net_rdma_create(&t, &conf, 1);
    if (rc == 0) {  /* a machine with an RDMA device: the real path opened it */
        CU_ASSERT_PTR_NOT_NULL(t);
        CU_ASSERT_STRING_EQUAL(t->ops->name, "rdma");
        t->ops->destroy(t);
        return;
    }
    printf("  (real libibverbs: %s)\n", nines_errdetail());
    CU_ASSERT_EQUAL(rc, NINES_ENODEV);
    CU_ASSERT_PTR_NULL(t);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "RDMA"));
}

static void test_connect_order_batch(void)
{
    seed_state = cu_seed(11);
    struct net_rdma_params p = {.slot_bytes = 4096, .recv_slots = 8};
    setup(2, 4096, &p);
    PUMP_UNTIL(2, linked(1, 2));
    CU_ASSERT_EQUAL(nodes[1].connects_out[2], 1);
    CU_ASSERT_EQUAL(nodes[2].accepted, 1);
    CU_ASSERT_EQUAL(nodes[1].accepted, 0);

    /* each QP went RESET -> INIT -> RTR -> RTS, in that order, once */
    uint32_t q1 = net_rdma_conn_qpn(nodes[1].t, 2), q2 = net_rdma_conn_qpn(nodes[2].t, 1);
    CU_ASSERT_NOT_EQUAL(q1, q2);
    const uint32_t qs[2] = {q1, q2};
    for (int k = 0; k < 2; k++) {
        enum ibv_qp_state want[3][2] = {{IBV_QPS_RESET, IBV_QPS_INIT}, {IBV_QPS_INIT, IBV_QPS_RTR},
                                        {IBV_QPS_RTR, IBV_QPS_RTS}};
        int seen = 0;
        for (int i = 0; i < fk.nlog; i++) {
            if (fk.log[i].qpn != qs[k])
                continue;
            CU_ASSERT_FATAL(seen < 3);
            CU_ASSERT_EQUAL(fk.log[i].from, want[seen][0]);
            CU_ASSERT_EQUAL(fk.log[i].to, want[seen][1]);
            seen++;
        }
        CU_ASSERT_EQUAL(seen, 3);
    }

    /* both directions at once, random sizes, in order */
    const uint32_t N12 = 3000, N21 = 700;
    uint32_t s12 = 0, s21 = 0;
    while (s12 < N12 || s21 < N21) {
        if (s12 < N12) {
            send_many(2, 1, 2, s12, 100, HDR, 300);
            s12 += 100;
        }
        if (s21 < N21) {
            send_many(2, 2, 1, s21, 50, HDR, 60);
            s21 += 50;
        }
        pump_once(2, 0);
    }
    PUMP_UNTIL(2, nodes[2].rx[1] == N12 && nodes[1].rx[2] == N21);
    CU_ASSERT_EQUAL(nodes[1].bad, 0);
    CU_ASSERT_EQUAL(nodes[2].bad, 0);

    struct net_rdma_stats st;
    net_rdma_get_stats(nodes[1].t, &st);
    printf("  (node 1: %llu frames in %llu sends, %llu posts, %llu signaled, %llu credit msgs)\n",
           (unsigned long long)st.frames_out, (unsigned long long)st.sends, (unsigned long long)st.posts,
           (unsigned long long)st.signaled, (unsigned long long)st.credit_msgs);
    CU_ASSERT_EQUAL(st.frames_out, N12 + 1);         /* + HELLO */
    CU_ASSERT(st.sends * 4 < st.frames_out);         /* many frames per slot */
    CU_ASSERT(st.signaled < st.sends);               /* not every send signaled */
    CU_ASSERT(st.posts <= st.sends);
    CU_ASSERT(st.recv_reposts >= N21 / 100);
    teardown(2);
}

static void test_credit_flow(void)
{
    seed_state = cu_seed(12);
    struct net_rdma_params p = {.slot_bytes = 256, .recv_slots = 4, .dest_slots = 16, .signal_every = 4};
    setup(2, 2048, &p);
    PUMP_UNTIL(2, linked(1, 2));
    /* node 2 is not polled: node 1 may post at most as many sends as node 2
     * posted receives, then its queue fills and reserve says EAGAIN. */
    struct net_rdma_stats st0, st;
    net_rdma_get_stats(nodes[1].t, &st0);
    uint32_t sent = 0;
    int rc = 0;
    while (sent < 10000) {
        rc = t_send(&nodes[1], 2, K_DATA, sent, 40);
        if (rc != 0)
            break;
        sent++;
        CU_ASSERT_EQUAL(nodes[1].t->ops->flush(nodes[1].t), 0);
        CU_ASSERT(nodes[1].t->ops->poll(nodes[1].t, 0) >= 0);
    }
    CU_ASSERT_EQUAL(rc, NINES_EAGAIN);
    net_rdma_get_stats(nodes[1].t, &st);
    CU_ASSERT(st.sends - st0.sends <= p.recv_slots);
    CU_ASSERT(st.credit_stalls > st0.credit_stalls);
    CU_ASSERT_EQUAL(fk.rnr, 0);
    CU_ASSERT_EQUAL(nodes[2].rx[1], 0);
    CU_ASSERT(sent > 0 && sent < 10000);
    /* node 2 drains, returns credits (it sends no data: credit messages) */
    PUMP_UNTIL(2, nodes[2].rx[1] == sent);
    struct net_rdma_stats st2;
    net_rdma_get_stats(nodes[2].t, &st2);
    CU_ASSERT(st2.credit_msgs > 0);
    CU_ASSERT(st2.recv_reposts >= st.sends - st0.sends);
    /* and the sender resumes */
    send_many(2, 1, 2, sent, 500, HDR, 100);
    PUMP_UNTIL(2, nodes[2].rx[1] == sent + 500);
    CU_ASSERT_EQUAL(nodes[2].bad, 0);
    teardown(2);
}

static void test_big_frames(void)
{
    seed_state = cu_seed(13);
    struct net_rdma_params p = {.slot_bytes = 256, .recv_slots = 4, .dest_slots = 24};
    setup(2, 2048, &p);
    PUMP_UNTIL(2, linked(1, 2));
    int err = 0;
    CU_ASSERT_PTR_NULL(nodes[1].t->ops->reserve(nodes[1].t, 2, 2049, &err));
    CU_ASSERT_EQUAL(err, NINES_ETOOBIG);
    /* sizes around the slot payload (248) and the largest frame */
    const size_t edge[] = {HDR, 243, 244, 245, 247, 248, 249, 252, 496, 500, 2047, 2048};
    uint32_t seq = 0;
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
            send_many(2, 1, 2, seq, 1, edge[i], edge[i]);
            seq++;
        }
        send_many(2, 1, 2, seq, 30, HDR, 2048);
        seq += 30;
        send_many(2, 2, 1, (uint32_t)round * 10, 10, HDR, 2048);
        pump_once(2, 0);
    }
    PUMP_UNTIL(2, nodes[2].rx[1] == seq && nodes[1].rx[2] == 200);
    CU_ASSERT_EQUAL(nodes[1].bad, 0);
    CU_ASSERT_EQUAL(nodes[2].bad, 0);
    teardown(2);
}

static void test_wc_error_isolated(void)
{
    seed_state = cu_seed(14);
    struct net_rdma_params p = {.slot_bytes = 1024, .recv_slots = 4};
    setup(3, 4096, &p);
    PUMP_UNTIL(3, linked(1, 2) && linked(1, 3) && linked(2, 3));
    uint32_t q12 = net_rdma_conn_qpn(nodes[1].t, 2);
    fk_inject_send_error(q12, IBV_WC_RETRY_EXC_ERR);
    send_many(3, 1, 2, 0, 5, HDR, 100);
    send_many(3, 1, 3, 0, 5, HDR, 100);
    PUMP_UNTIL(3, nodes[1].closes[2] == 1 && nodes[2].closes[1] == 1 && nodes[3].rx[1] == 5);
    CU_ASSERT_EQUAL(nodes[1].last_close_err[2], NINES_EIO);
    CU_ASSERT_EQUAL(nodes[2].last_close_err[1], NINES_ECLOSED);
    CU_ASSERT_EQUAL(nodes[1].closes[3], 0);
    CU_ASSERT_EQUAL(nodes[3].closes[1], 0);
    /* the other peers keep working while node 1 redials node 2 */
    send_many(3, 3, 1, 0, 50, HDR, 500);
    PUMP_UNTIL(3, nodes[1].rx[3] == 50 && nodes[1].connects_out[2] == 2 && nodes[2].binds[1] == 2 &&
                      net_rdma_conn_qpn(nodes[1].t, 2) != 0);
    CU_ASSERT_NOT_EQUAL(net_rdma_conn_qpn(nodes[1].t, 2), q12);
    send_many(3, 1, 2, 0, 100, HDR, 500);
    PUMP_UNTIL(3, nodes[2].rx[1] >= 100 && nodes[2].rx_next[1] == 100);
    CU_ASSERT_EQUAL(nodes[1].bad + nodes[2].bad + nodes[3].bad, 0);
    teardown(3);
}

static void test_post_failure_and_qp_error(void)
{
    struct net_rdma_params p = {.slot_bytes = 1024, .recv_slots = 4};
    setup(2, 4096, &p);
    PUMP_UNTIL(2, linked(1, 2));
    /* a failing post_send closes the connection; the dialler reconnects */
    fk.fail_post_send = 1;
    send_many(2, 1, 2, 0, 3, HDR, 40);
    CU_ASSERT_EQUAL(nodes[1].t->ops->flush(nodes[1].t), 0);
    CU_ASSERT_EQUAL(nodes[1].closes[2], 1);
    CU_ASSERT_EQUAL(nodes[1].last_close_err[2], NINES_EIO);
    PUMP_UNTIL(2, nodes[2].closes[1] == 1 && nodes[1].connects_out[2] == 2 && nodes[2].binds[1] == 2);
    /* the receiver's QP fails (flushed receives): both ends close, then reconnect */
    uint32_t q21 = net_rdma_conn_qpn(nodes[2].t, 1);
    CU_ASSERT_NOT_EQUAL(q21, 0);
    fk_qp_error(q21);
    PUMP_UNTIL(2, nodes[2].closes[1] == 2 && nodes[1].closes[2] == 2);
    CU_ASSERT_EQUAL(nodes[2].last_close_err[1], NINES_EIO);
    PUMP_UNTIL(2, nodes[1].connects_out[2] == 3 && nodes[2].binds[1] == 3);
    send_many(2, 1, 2, 0, 20, HDR, 40);
    PUMP_UNTIL(2, nodes[2].rx_next[1] == 20);
    CU_ASSERT_EQUAL(nodes[2].bad, 0);
    teardown(2);
}

static void test_frame_refused(void)
{
    struct net_rdma_params p = {.slot_bytes = 1024, .recv_slots = 4};
    setup(3, 4096, &p);
    PUMP_UNTIL(3, linked(1, 2) && linked(1, 3));
    /* frames queued behind the poison one on the same slot are not delivered */
    CU_ASSERT_EQUAL(t_send(&nodes[1], 2, K_DATA, 0, 20), 0);
    CU_ASSERT_EQUAL(t_send(&nodes[1], 2, K_POISON, 1, 20), 0);
    CU_ASSERT_EQUAL(t_send(&nodes[1], 2, K_DATA, 1, 20), 0);
    send_many(3, 1, 3, 0, 10, HDR, 40);
    PUMP_UNTIL(3, nodes[2].closes[1] == 1 && nodes[1].closes[2] == 1 && nodes[3].rx[1] == 10);
    CU_ASSERT_EQUAL(nodes[2].rx[1], 1);
    CU_ASSERT_EQUAL(nodes[2].last_close_err[1], NINES_EPROTO);
    CU_ASSERT_EQUAL(nodes[1].closes[3], 0);
    teardown(3);
}

static void test_addressing_errors(void)
{
    struct net_rdma_params p = {.slot_bytes = 256, .recv_slots = 4, .dest_slots = 10};
    make_conf(3, 2048);
    fk_reset(1);
    memset(nodes, 0, sizeof nodes);
    /* only node 1 runs: node 2 and 3 never answer */
    struct tnode *n = &nodes[1];
    n->id = 1;
    CU_ASSERT_EQUAL_FATAL(net_rdma_create_with(&n->t, &conf, 1, &fk_ops, &p), 0);
    n->t->cb = (struct net_transport_cb){.ctx = n, .on_connect = cb_connect, .on_frame = cb_frame,
                                         .on_close = cb_close};
    CU_ASSERT_EQUAL(n->t->ops->start(n->t), 0);
    CU_ASSERT_EQUAL(n->t->ops->start(n->t), NINES_ESTATE);
    int err = 0;
    CU_ASSERT_PTR_NULL(n->t->ops->reserve(n->t, 9, 10, &err));
    CU_ASSERT_EQUAL(err, NINES_EINVAL);
    CU_ASSERT_PTR_NULL(n->t->ops->reserve(n->t, 1, 10, &err));   /* itself */
    CU_ASSERT_EQUAL(err, NINES_EINVAL);
    CU_ASSERT_PTR_NULL(n->t->ops->reserve(n->t, NET_CONN_BASE + 77, 10, &err));
    CU_ASSERT_EQUAL(err, NINES_EUNREACHABLE);
    CU_ASSERT_EQUAL(n->t->ops->bind(n->t, NET_CONN_BASE + 77, 2), NINES_EUNREACHABLE);
    /* frames for an unreachable node queue up to the bound */
    uint32_t q = 0;
    int rc;
    while ((rc = t_send(n, 3, K_DATA, q, 200)) == 0 && q < 1000)
        q++;
    CU_ASSERT_EQUAL(rc, NINES_EUNREACHABLE);
    CU_ASSERT_EQUAL(q, 10);   /* one 200-byte frame per 256-byte slot, 10 slots */
    for (int i = 0; i < 5; i++)
        CU_ASSERT(n->t->ops->poll(n->t, 1) >= 0);
    CU_ASSERT_EQUAL(n->connects_out[2] + n->connects_out[3], 0);
    /* closing an unconnected node drops its queue */
    n->t->ops->close(n->t, 3, NINES_ECLOSED, "test");
    CU_ASSERT_EQUAL(t_send(n, 3, K_DATA, 0, 200), 0);
    teardown(1);
}

/* Raw TCP to node 1's side channel. */
static int raw_connect(uint16_t node_port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)(node_port + RDMA_CM_PORT_OFFSET))};
    CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 2000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Read one CM message while pumping; 0 = peer closed first, 1 = got it. */
static int raw_read(int fd, int nn, uint8_t *buf)
{
    size_t have = 0;
    for (int it = 0; it < 2000 && have < RDMA_CM_MSG_BYTES; it++) {
        pump_once(nn, 0);
        ssize_t r = recv(fd, buf + have, RDMA_CM_MSG_BYTES - have, 0);
        if (r == 0)
            return 0;
        if (r > 0)
            have += (size_t)r;
    }
    return have == RDMA_CM_MSG_BYTES;
}

static void test_side_channel_input(void)
{
    /* codec round trip and refusals */
    struct net_rdma_cm_msg m = {.type = RDMA_CM_REQ, .node = 3, .qpn = 0x123456, .psn = 0xabcdef, .lid = 9,
                            .mtu = IBV_MTU_1024, .recv_slots = 4, .slot_bytes = 1024, .cluster_crc = 77,
                            .err = 0}, m2;
    m.gid[15] = 5;
    uint8_t b[RDMA_CM_MSG_BYTES];
    net_rdma_cm_pack(b, &m);
    CU_ASSERT_EQUAL(net_rdma_cm_parse(b, &m2), 0);
    CU_ASSERT_EQUAL(memcmp(&m, &m2, sizeof m), 0);
    b[4] = 2;
    CU_ASSERT_EQUAL(net_rdma_cm_parse(b, &m2), NINES_EVERSION);
    b[4] = 1;
    b[0] ^= 1;
    CU_ASSERT_EQUAL(net_rdma_cm_parse(b, &m2), NINES_EPROTO);
    b[0] ^= 1;
    b[6] = 9;
    CU_ASSERT_EQUAL(net_rdma_cm_parse(b, &m2), NINES_EPROTO);

    struct net_rdma_params p = {.slot_bytes = 1024, .recv_slots = 4};
    setup(2, 4096, &p);
    PUMP_UNTIL(2, linked(1, 2));
    uint16_t port1 = conf.nodes[0].port;
    /* garbage: closed without an upcall */
    int fd = raw_connect(port1);
    memset(b, 0x5a, sizeof b);
    CU_ASSERT_EQUAL(send(fd, b, sizeof b, 0), (ssize_t)sizeof b);
    uint8_t in[RDMA_CM_MSG_BYTES];
    CU_ASSERT_EQUAL(raw_read(fd, 2, in), 0);
    close(fd);
    /* REQ from a node that is not configured, and from another cluster: REJ */
    const struct { uint32_t node, crc; int want; } cases[] = {
        {9, crc32c(0, "rdmatest", 8), NINES_ECONFIG},
        {2, 12345, NINES_ECONFIG},
        {1, crc32c(0, "rdmatest", 8), NINES_ECONFIG},   /* node 1 itself is not its peer */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fd = raw_connect(port1);
        struct net_rdma_cm_msg req = {.type = RDMA_CM_REQ, .node = cases[i].node, .qpn = 1, .psn = 1,
                                  .mtu = IBV_MTU_1024, .recv_slots = 4, .slot_bytes = 1024,
                                  .cluster_crc = cases[i].crc};
        net_rdma_cm_pack(b, &req);
        CU_ASSERT_EQUAL(send(fd, b, sizeof b, 0), (ssize_t)sizeof b);
        CU_ASSERT_EQUAL(raw_read(fd, 2, in), 1);
        struct net_rdma_cm_msg rej;
        CU_ASSERT_EQUAL(net_rdma_cm_parse(in, &rej), 0);
        CU_ASSERT_EQUAL(rej.type, RDMA_CM_REJ);
        CU_ASSERT_EQUAL(rej.err, cases[i].want);
        close(fd);
    }
    CU_ASSERT_EQUAL(nodes[1].accepted, 0);
    CU_ASSERT_EQUAL(nodes[1].conn_closes, 0);
    /* node 1 still serves node 2 */
    send_many(2, 2, 1, 0, 30, HDR, 100);
    PUMP_UNTIL(2, nodes[1].rx[2] == 30);
    CU_ASSERT_EQUAL(nodes[1].bad, 0);
    teardown(2);
}

static void *waker(void *arg)
{
    struct net_transport *t = arg;
    usleep(20000);
    t->ops->wake(t);
    return NULL;
}

static void test_wake(void)
{
    struct net_rdma_params p = {.slot_bytes = 1024, .recv_slots = 4};
    setup(2, 4096, &p);
    PUMP_UNTIL(2, linked(1, 2));
    for (int i = 0; i < 10; i++)
        pump_once(2, 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, waker, nodes[1].t), 0);
    CU_ASSERT(nodes[1].t->ops->poll(nodes[1].t, -1) >= 0);   /* returns only when woken */
    pthread_join(th, NULL);
    /* a watched fd ends the wait too (it is not read: readable until its
     * owner drains it), and only one fd can be watched */
    int efd = eventfd(0, EFD_NONBLOCK);
    CU_ASSERT_EQUAL_FATAL(net_rdma_watch_fd(nodes[1].t, efd), 0);
    CU_ASSERT_EQUAL(net_rdma_watch_fd(nodes[1].t, efd), NINES_ESTATE);
    uint64_t one = 1;
    CU_ASSERT_EQUAL(write(efd, &one, sizeof one), (ssize_t)sizeof one);
    /* returns without using its 10 s timeout, twice: the fd stays readable */
    for (int i = 0; i < 2; i++) {
        uint64_t t0 = nclock_ms();
        CU_ASSERT_EQUAL(nodes[1].t->ops->poll(nodes[1].t, 10000), 0);
        CU_ASSERT(nclock_ms() - t0 < 10000);
    }
    CU_ASSERT_EQUAL(read(efd, &one, sizeof one), (ssize_t)sizeof one);
    teardown(2);
    close(efd);
}

/* The messaging endpoint (net/endpoint.c) over this transport: HELLO
 * handshake, then PING_REQ messages both ways. */
struct ep_ctx {
    uint32_t got[MAXN + 1];
    uint32_t up[MAXN + 1];
};
static int ep_on_msg(void *ctx, const struct net_msg_in *m)
{
    struct ep_ctx *e = ctx;
    Nines__PingReq *r = nines__ping_req__unpack(NULL, m->body_len, m->body);
    if (!r)
        return nines_err(NINES_EPROTO, "PING_REQ does not decode");
    if (m->sender >= 1 && m->sender <= MAXN && r->seq == e->got[m->sender])
        e->got[m->sender]++;
    nines__ping_req__free_unpacked(r, NULL);
    return 0;
}
static bool ep_known(void *ctx, uint32_t type)
{
    (void)ctx;
    return type == NINES__MSG_TYPE__PING_REQ;
}
static void ep_up(void *ctx, uint32_t node, bool restarted)
{
    struct ep_ctx *e = ctx;
    if (node <= MAXN)
        e->up[node]++;
}

static void test_endpoint_over_rdma(void)
{
    fk_reset(1);
    make_conf(2, 4096);
    struct net_rdma_params p = {.slot_bytes = 1024, .recv_slots = 4};
    struct net_endpoint *ep[3] = {NULL, NULL, NULL};
    struct ep_ctx ec[3];
    memset(ec, 0, sizeof ec);
    for (uint32_t i = 1; i <= 2; i++) {
        struct net_transport *t = NULL;
        CU_ASSERT_EQUAL_FATAL(net_rdma_create_with(&t, &conf, i, &fk_ops, &p), 0);
        struct net_handlers h = {.ctx = &ec[i], .on_msg = ep_on_msg, .known_type = ep_known,
                                 .on_peer_up = ep_up};
        CU_ASSERT_EQUAL_FATAL(net_endpoint_open_on(&ep[i], &conf, i, t, &h), 0);
        CU_ASSERT_STRING_EQUAL(net_transport_name(ep[i]), "rdma");
    }
    for (int it = 0; it < 4000 && !(net_peer_reachable(ep[1], 2) && net_peer_reachable(ep[2], 1)); it++)
        for (int i = 1; i <= 2; i++)
            CU_ASSERT(net_poll(ep[i], 1) >= 0);
    CU_ASSERT_FATAL(net_peer_reachable(ep[1], 2) && net_peer_reachable(ep[2], 1));
    uint8_t pay[300];
    memset(pay, 0xab, sizeof pay);
    const uint32_t N = 400;
    for (uint32_t s = 0; s < N; s++) {
        Nines__PingReq r = NINES__PING_REQ__INIT;
        r.seq = s;
        r.payload.data = pay;
        r.payload.len = s % sizeof pay;
        for (int from = 1; from <= 2; from++) {
            int rc;
            while ((rc = net_send(ep[from], (net_addr)(3 - from), NINES__MSG_TYPE__PING_REQ, &r.base)) ==
                   NINES_EAGAIN) {
                CU_ASSERT(net_poll(ep[1], 0) >= 0);
                CU_ASSERT(net_poll(ep[2], 0) >= 0);
            }
            CU_ASSERT_EQUAL_FATAL(rc, 0);
        }
    }
    for (int it = 0; it < 4000 && !(ec[2].got[1] == N && ec[1].got[2] == N); it++)
        for (int i = 1; i <= 2; i++)
            CU_ASSERT(net_poll(ep[i], 1) >= 0);
    CU_ASSERT_EQUAL(ec[2].got[1], N);
    CU_ASSERT_EQUAL(ec[1].got[2], N);
    net_endpoint_close(ep[1]);
    net_endpoint_close(ep[2]);
    CU_ASSERT_EQUAL(fk.errors, 0);
    CU_ASSERT_EQUAL(fk.live_qp + fk.live_cq + fk.live_mr + fk.live_pd + fk.live_ch + fk.live_ctx, 0);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"no device (fake verbs)", test_no_device_fake},
        {"no device (real libibverbs)", test_no_device_real},
        {"connect, QP states, order, batching", test_connect_order_batch},
        {"credit flow control", test_credit_flow},
        {"frames larger than a slot", test_big_frames},
        {"WC error closes one connection", test_wc_error_isolated},
        {"post failure and QP error", test_post_failure_and_qp_error},
        {"refused frame closes the connection", test_frame_refused},
        {"addressing errors and queue bound", test_addressing_errors},
        {"side-channel input checks", test_side_channel_input},
        {"wake from another thread", test_wake},
        {"endpoint over rdma", test_endpoint_over_rdma},
        {NULL, NULL},
    };
    cu_add_suite("net_rdma", NULL, NULL, cases);
}
