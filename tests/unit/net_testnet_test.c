/* Endpoints over the in-process test transport: handshake, delivery,
 * and the fault injection (drop, delay, reorder, partition, crash and
 * restart), all deterministic under a seed and a virtual clock. */
#include "net_test_util.h"

#include <stdlib.h>

#include "../../net/testnet.h"

#define NN 3

struct world {
    struct nines_conf cfg;
    struct net_testnet *hub;
    struct nt_rec rec[NN + 1];
};

static unsigned long seed;

static int suite_init(void)
{
    seed = cu_seed(42);
    return 0;
}

static void open_node(struct world *w, uint32_t n)
{
    struct net_transport *t;
    CU_ASSERT_EQUAL_FATAL(net_testnet_transport(w->hub, n, &t), 0);
    memset(&w->rec[n], 0, sizeof w->rec[n]);
    w->rec[n].self = n;
    struct net_handlers h = nt_handlers(&w->rec[n]);
    CU_ASSERT_EQUAL_FATAL(net_endpoint_open_on(&w->rec[n].ep, &w->cfg, n, t, &h), 0);
    CU_ASSERT_STRING_EQUAL(net_transport_name(w->rec[n].ep), "test");
}

static void world_open(struct world *w, uint64_t s)
{
    memset(w, 0, sizeof *w);
    nt_conf(&w->cfg, NN, NULL);
    w->cfg.send_queue_bytes = 64u * 1024u;
    CU_ASSERT_EQUAL_FATAL(net_testnet_new(&w->hub, &w->cfg, s), 0);
    for (uint32_t n = 1; n <= NN; n++)
        open_node(w, n);
}

static void world_close(struct world *w)
{
    for (uint32_t n = 1; n <= NN; n++) {
        net_endpoint_close(w->rec[n].ep);
        free(w->rec[n].seqs);
    }
    net_testnet_free(w->hub);
}

/* One round: every live endpoint polls, then time moves by step_us. */
static void step(struct world *w, uint64_t step_us)
{
    for (uint32_t n = 1; n <= NN; n++)
        if (w->rec[n].ep)
            CU_ASSERT(net_poll(w->rec[n].ep, 0) >= 0);
    net_testnet_advance(w->hub, step_us);
}

static bool all_up(struct world *w)
{
    for (uint32_t a = 1; a <= NN; a++)
        for (uint32_t b = 1; b <= NN; b++)
            if (a != b && !net_peer_reachable(w->rec[a].ep, b))
                return false;
    return true;
}

static void run_until_up(struct world *w)
{
    for (int i = 0; i < 1000 && !all_up(w); i++)
        step(w, 1000);
    CU_ASSERT_TRUE_FATAL(all_up(w));
}

static void test_handshake(void)
{
    struct world w;
    world_open(&w, seed);
    CU_ASSERT_FALSE(net_peer_reachable(w.rec[1].ep, 2));
    run_until_up(&w);
    for (uint32_t a = 1; a <= NN; a++)
        for (uint32_t b = 1; b <= NN; b++)
            if (a != b) {
                CU_ASSERT_EQUAL(w.rec[a].ups[b], 1);
                CU_ASSERT_EQUAL(w.rec[a].downs[b], 0);
                CU_ASSERT(net_peer_last_heard_ms(w.rec[a].ep, b) > 0);
            }
    struct net_testnet_stats st;
    net_testnet_get_stats(w.hub, &st);
    CU_ASSERT_EQUAL(st.connects, 3); /* one link per pair */
    struct net_stats ns;
    net_get_stats(w.rec[1].ep, &ns);
    CU_ASSERT_EQUAL(ns.conns_closed_bad, 0);
    world_close(&w);
}

static void test_delivery_in_order(void)
{
    struct world w;
    world_open(&w, seed);
    /* queued before any connection exists: waits, then goes out after HELLO */
    for (uint64_t s = 1; s <= 50; s++) {
        CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 3, s, 10), 0);
        CU_ASSERT_EQUAL(nt_sink(w.rec[3].ep, 1, s, 10), 0);
    }
    run_until_up(&w);
    for (uint64_t s = 51; s <= 500; s++) {
        CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 3, s, s % 300), 0);
        CU_ASSERT_EQUAL(nt_sink(w.rec[3].ep, 1, s, 7), 0);
        if (s % 50 == 0)
            step(&w, 100);
    }
    for (int i = 0; i < 10; i++)
        step(&w, 100);
    CU_ASSERT_EQUAL(w.rec[3].sink_count[1], 500);
    CU_ASSERT_EQUAL(w.rec[1].sink_count[3], 500);
    CU_ASSERT_EQUAL(w.rec[3].sink_out_of_order, 0);
    CU_ASSERT_EQUAL(w.rec[1].sink_out_of_order, 0);
    CU_ASSERT_EQUAL(w.rec[2].sink_count[1] + w.rec[2].sink_count[3], 0);
    /* every frame carries the sender's epoch: 0 until set, then the new one */
    CU_ASSERT_EQUAL(w.rec[3].sink_epoch, 0);
    CU_ASSERT_EQUAL(net_epoch(w.rec[1].ep), 0);
    net_set_epoch(w.rec[1].ep, 7);
    CU_ASSERT_EQUAL(net_epoch(w.rec[1].ep), 7);
    CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 3, 501, 0), 0);
    for (int i = 0; i < 3; i++)
        step(&w, 100);
    CU_ASSERT_EQUAL(w.rec[3].sink_count[1], 501);
    CU_ASSERT_EQUAL(w.rec[3].sink_epoch, 7);
    /* the test transport names the remote end by its node */
    char name[64];
    CU_ASSERT_STRING_EQUAL(net_peer_name(w.rec[3].ep, 1, name, sizeof name), "test node 1");
    CU_ASSERT_STRING_EQUAL(net_peer_name(w.rec[1].ep, 3, name, sizeof name), "test node 3");
    CU_ASSERT_STRING_EQUAL(net_peer_name(w.rec[1].ep, NET_CONN_BASE + 999, name, sizeof name),
                           "unknown address");
    world_close(&w);
}

/* Send n sink messages 1 -> 2 with drop probability p; returns arrivals
 * and fills seqs (caller frees). */
static size_t drop_run(uint64_t s, double p, int n, uint64_t **seqs_out)
{
    struct world w;
    world_open(&w, s);
    run_until_up(&w);
    w.rec[2].capseqs = (size_t)n;
    w.rec[2].seqs = calloc((size_t)n, sizeof(uint64_t));
    net_testnet_set_drop(w.hub, p);
    for (int i = 1; i <= n; i++) {
        CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 2, (uint64_t)i, 0), 0);
        if (i % 100 == 0)
            step(&w, 10);
    }
    for (int i = 0; i < 5; i++)
        step(&w, 10);
    size_t got = w.rec[2].nseqs;
    CU_ASSERT_EQUAL(w.rec[2].sink_out_of_order, 0);
    *seqs_out = w.rec[2].seqs;
    w.rec[2].seqs = NULL;
    world_close(&w);
    return got;
}

static void test_drop_deterministic(void)
{
    uint64_t *a, *b, *c;
    size_t na = drop_run(seed, 0.3, 2000, &a);
    size_t nb = drop_run(seed, 0.3, 2000, &b);
    size_t nc = drop_run(seed + 1, 0.3, 2000, &c);
    /* roughly 70% arrive (binomial, n=2000: sd ~ 20) */
    CU_ASSERT(na > 1200 && na < 1600);
    CU_ASSERT_EQUAL_FATAL(na, nb);
    CU_ASSERT_EQUAL(memcmp(a, b, na * sizeof *a), 0); /* same seed, same losses */
    CU_ASSERT(na != nc || memcmp(a, c, na * sizeof *a) != 0);
    free(a);
    free(b);
    free(c);
    uint64_t *d;
    CU_ASSERT_EQUAL(drop_run(seed, 0.0, 500, &d), 500);
    free(d);
}

static void test_delay(void)
{
    struct world w;
    world_open(&w, seed);
    run_until_up(&w);
    net_testnet_set_delay(w.hub, 1000, 1000);
    CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 2, 1, 0), 0);
    CU_ASSERT_EQUAL(net_flush(w.rec[1].ep), 0);
    net_testnet_advance(w.hub, 999);
    CU_ASSERT(net_poll(w.rec[2].ep, 0) >= 0);
    CU_ASSERT_EQUAL(w.rec[2].sink_count[1], 0);
    net_testnet_advance(w.hub, 1);
    CU_ASSERT(net_poll(w.rec[2].ep, 0) >= 0);
    CU_ASSERT_EQUAL(w.rec[2].sink_count[1], 1);
    world_close(&w);
}

static uint64_t reorder_run(bool reorder)
{
    struct world w;
    world_open(&w, seed);
    run_until_up(&w);
    net_testnet_set_delay(w.hub, 0, 5000);
    net_testnet_set_reorder(w.hub, reorder);
    for (uint64_t s = 1; s <= 300; s++) {
        CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 2, s, 0), 0);
        step(&w, 20);
    }
    for (int i = 0; i < 100; i++)
        step(&w, 100);
    CU_ASSERT_EQUAL(w.rec[2].sink_count[1], 300);
    uint64_t ooo = w.rec[2].sink_out_of_order;
    world_close(&w);
    return ooo;
}

static void test_reorder(void)
{
    CU_ASSERT_EQUAL(reorder_run(false), 0);
    CU_ASSERT(reorder_run(true) > 0);
}

static void test_partition(void)
{
    struct world w;
    world_open(&w, seed);
    run_until_up(&w);
    net_testnet_partition(w.hub, 1, 2, true);
    for (int i = 0; i < 20; i++)
        step(&w, 1000);
    CU_ASSERT_FALSE(net_peer_reachable(w.rec[1].ep, 2));
    CU_ASSERT_FALSE(net_peer_reachable(w.rec[2].ep, 1));
    CU_ASSERT_EQUAL(w.rec[1].downs[2], 1);
    CU_ASSERT_EQUAL(w.rec[2].downs[1], 1);
    /* the rest of the cluster is unaffected */
    CU_ASSERT_TRUE(net_peer_reachable(w.rec[1].ep, 3));
    CU_ASSERT_TRUE(net_peer_reachable(w.rec[2].ep, 3));
    CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 3, 1, 0), 0);
    /* frames for the cut peer wait in its queue (bounded) */
    CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 2, 1, 0), 0);
    for (int i = 0; i < 200; i++)
        step(&w, 1000);
    CU_ASSERT_EQUAL(w.rec[3].sink_count[1], 1);
    CU_ASSERT_EQUAL(w.rec[2].sink_count[1], 0);
    CU_ASSERT_FALSE(net_peer_reachable(w.rec[1].ep, 2));
    struct net_testnet_stats st;
    net_testnet_get_stats(w.hub, &st);
    CU_ASSERT(st.dial_failures > 0);
    /* heal: node 1 redials after its backoff; the queued frame follows */
    uint64_t inc1 = net_incarnation(w.rec[1].ep), inc2 = net_incarnation(w.rec[2].ep);
    net_testnet_partition(w.hub, 1, 2, false);
    run_until_up(&w);
    for (int i = 0; i < 5; i++)
        step(&w, 100);
    CU_ASSERT_EQUAL(w.rec[1].ups[2], 2);
    CU_ASSERT_EQUAL(w.rec[2].sink_count[1], 1);
    /* the same processes: a reconnect, not a restart, on both sides */
    CU_ASSERT_EQUAL(w.rec[1].restarts[2], 0);
    CU_ASSERT_EQUAL(w.rec[2].restarts[1], 0);
    CU_ASSERT_EQUAL(net_peer_incarnation(w.rec[1].ep, 2), inc2);
    CU_ASSERT_EQUAL(net_peer_incarnation(w.rec[2].ep, 1), inc1);
    world_close(&w);
}

static void test_crash_restart(void)
{
    struct world w;
    world_open(&w, seed);
    run_until_up(&w);
    net_testnet_crash(w.hub, 2);
    for (int i = 0; i < 5; i++)
        step(&w, 1000);
    CU_ASSERT_EQUAL(w.rec[1].downs[2], 1);
    CU_ASSERT_EQUAL(w.rec[3].downs[2], 1);
    CU_ASSERT_FALSE(net_peer_reachable(w.rec[3].ep, 2));
    CU_ASSERT_TRUE(net_peer_reachable(w.rec[1].ep, 3));
    /* a crashed transport sends nothing */
    CU_ASSERT(nt_sink(w.rec[2].ep, 3, 1, 0) != 0);
    /* restart node 2: a new incarnation, which its peers keep while it is down */
    uint64_t old2 = net_incarnation(w.rec[2].ep);
    CU_ASSERT_EQUAL(net_peer_incarnation(w.rec[1].ep, 2), old2);
    CU_ASSERT_EQUAL(net_peer_incarnation(w.rec[3].ep, 2), old2);
    CU_ASSERT_EQUAL(w.rec[1].restarts[2], 0);
    net_endpoint_close(w.rec[2].ep);
    w.rec[2].ep = NULL;
    open_node(&w, 2);
    uint64_t new2 = net_incarnation(w.rec[2].ep);
    CU_ASSERT(new2 > old2);
    run_until_up(&w);
    CU_ASSERT_EQUAL(w.rec[1].ups[2], 2);
    CU_ASSERT_EQUAL(w.rec[3].ups[2], 2);
    /* both peers see a restart (node 1 accepted it, node 3 was dialled) */
    CU_ASSERT_EQUAL(w.rec[1].restarts[2], 1);
    CU_ASSERT_EQUAL(w.rec[3].restarts[2], 1);
    CU_ASSERT_EQUAL(net_peer_incarnation(w.rec[1].ep, 2), new2);
    CU_ASSERT_EQUAL(net_peer_incarnation(w.rec[3].ep, 2), new2);
    /* the new process met 1 and 3 for the first time: no restart for it */
    CU_ASSERT_EQUAL(w.rec[2].restarts[1], 0);
    CU_ASSERT_EQUAL(w.rec[2].restarts[3], 0);
    CU_ASSERT_EQUAL(net_peer_incarnation(w.rec[2].ep, 1), net_incarnation(w.rec[1].ep));
    CU_ASSERT_EQUAL(nt_sink(w.rec[2].ep, 1, 1, 0), 0);
    CU_ASSERT_EQUAL(nt_sink(w.rec[3].ep, 2, 1, 0), 0);
    for (int i = 0; i < 5; i++)
        step(&w, 100);
    CU_ASSERT_EQUAL(w.rec[1].sink_count[2], 1);
    CU_ASSERT_EQUAL(w.rec[2].sink_count[3], 1);
    world_close(&w);
}

static void test_unknown_type_closes(void)
{
    struct world w;
    world_open(&w, seed);
    run_until_up(&w);
    Nines__StatusReq sr = NINES__STATUS_REQ__INIT; /* not in nt_known */
    CU_ASSERT_EQUAL(net_send(w.rec[1].ep, 2, NINES__MSG_TYPE__STATUS_REQ, &sr.base), 0);
    for (int i = 0; i < 3; i++)
        step(&w, 100);
    struct net_stats st;
    net_get_stats(w.rec[2].ep, &st);
    CU_ASSERT_EQUAL(st.conns_closed_bad, 1);
    CU_ASSERT_EQUAL(w.rec[2].downs[1], 1);
    CU_ASSERT_EQUAL(w.rec[1].downs[2], 1);
    /* node 1 redials and the pair comes back */
    run_until_up(&w);
    CU_ASSERT_EQUAL(w.rec[2].ups[1], 2);
    world_close(&w);
}

static void test_queue_bound(void)
{
    struct world w;
    world_open(&w, seed);
    run_until_up(&w);
    int rc = 0, sent = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        rc = nt_sink(w.rec[1].ep, 2, (uint64_t)i + 1, 1000);
        if (rc == 0)
            sent++;
    }
    CU_ASSERT_EQUAL(rc, NINES_EAGAIN);
    CU_ASSERT(sent > 50 && sent < 70); /* 64 KiB of ~1 KiB frames */
    step(&w, 10);
    CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 2, 5000, 1000), 0); /* room again after flush */
    /* a node that is not connected: its queue fills, then EUNREACHABLE */
    net_testnet_crash(w.hub, 3);
    step(&w, 10);
    net_testnet_partition(w.hub, 1, 3, true);
    rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++)
        rc = nt_sink(w.rec[1].ep, 3, (uint64_t)i + 1, 1000);
    CU_ASSERT_EQUAL(rc, NINES_EUNREACHABLE);
    /* too big for any frame */
    CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 2, 1, 65536), NINES_ETOOBIG);
    CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 9, 1, 0), NINES_EINVAL);
    CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 1, 1, 0), NINES_EINVAL);
    world_close(&w);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"handshake, one link per pair", test_handshake},
        {"delivery in order, queued before connect", test_delivery_in_order},
        {"drop probability, deterministic by seed", test_drop_deterministic},
        {"fixed delay on the virtual clock", test_delay},
        {"random delay: FIFO unless reorder", test_reorder},
        {"partition and heal", test_partition},
        {"crash and restart", test_crash_restart},
        {"unknown message type closes the connection", test_unknown_type_closes},
        {"bounded queues", test_queue_bound},
        {NULL, NULL},
    };
    cu_add_suite("net_testnet", suite_init, NULL, cases);
}
