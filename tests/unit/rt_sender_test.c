/* Who may send what, and epochs: the message table's sender-class and
 * epoch columns as the runtime enforces them on a node built like ninesd
 * (supervisor + dictionary, update channel, kernel service, controller)
 * with the node's own table (sup_msgtab).
 *
 * Suite rt_sender_tcp: one node on real TCP (loopback), its executor in a
 * thread, blocking clients in the test thread. Every row a client may not
 * send is sent by a client: refused, logged with its name, counted in
 * STATUS, that connection closed, another client served throughout. The
 * node runs in epoch 5 while clients send 0: client messages never look
 * at the epoch.
 *
 * Suite rt_sender_testnet: three such nodes on the in-process test
 * transport, stepped in this thread. A peer sending a client-only type is
 * refused and disconnected; a node in another epoch has its service
 * messages refused both ways while pings and digests still flow,
 * and equal epochs flow again; a restarted node is reported as restarted,
 * a reconnect is not. */
#include "cu_test.h"

#include "conf.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "nlog.h"

#include "../../net/testnet.h"
#include "../../dict/svc/dsvc.h"
#include "../../kernel/svc/ksvc.h"
#include "../../supervisor/sup.h"
#include "../../txctl/txc.h"
#include "../../updchan/upd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One node as ninesd builds it. */
struct node {
    struct rt *rt;
    struct sup sup;
    struct dsvc *dict;
    struct upd *upd;
    struct ksvc *kern;
    struct txc *txc;
};

static void kern_dict_installed(void *kern, const struct dict *d, bool live_commit)
{
    ksvc_dict_changed(kern, d, live_commit);
}

static int node_open(struct node *n, const struct nines_conf *c, uint32_t id,
                     struct net_transport *tr, const struct rt_msg_entry *tab, uint32_t tablen)
{
    memset(n, 0, sizeof *n);
    struct rt_config rc = {.self = id, .conf = c, .transport = tr, .msgtab = tab,
                           .msgtab_len = tablen};
    if (rt_create(&n->rt, &rc))
        return 1;
    if (sup_init_static(&n->sup, n->rt) || dsvc_create(&n->dict, n->rt) || upd_init(&n->upd, n->rt) ||
        ksvc_init(&n->kern, n->rt,
                  &(struct ksvc_config){.upd = n->upd, .dict = dsvc_current_fn,
                                        .dict_ctx = n->dict}) ||
        dsvc_subscribe_install(n->dict, kern_dict_installed, n->kern) ||
        txc_create(&n->txc, n->rt,
                   &(struct txc_config){.dict = dsvc_current_fn, .dict_ctx = n->dict}))
        return 1;
    return 0;
}

static void node_close(struct node *n)
{
    txc_destroy(n->txc);
    rt_destroy(n->rt);
    ksvc_fini(n->kern);
    upd_fini(n->upd);
    dsvc_destroy(n->dict);
    memset(n, 0, sizeof *n);
}

static void conf_init(struct nines_conf *c, const char *cluster, uint32_t nnodes, int base_port)
{
    memset(c, 0, sizeof *c);
    snprintf(c->cluster, sizeof c->cluster, "%s", cluster);
    c->nnodes = nnodes;
    for (uint32_t i = 0; i < nnodes; i++) {
        c->nodes[i].id = i + 1;
        c->nodes[i].site = i % 2;
        snprintf(c->nodes[i].host, sizeof c->nodes[i].host, "127.0.0.1");
        c->nodes[i].port = (uint16_t)(base_port + (int)i);
    }
    c->heartbeat_ms = 10;
    c->heartbeat_misses = 50;
    c->reconnect_min_ms = 5;
    c->reconnect_max_ms = 50;
    c->max_frame_bytes = 1u << 20;
    c->send_queue_bytes = 4u << 20;
    c->txn_timeout_ms = 1000;
    snprintf(c->transport, sizeof c->transport, "tcp");
}

/* An empty body of the row's type (every field at its default). */
static ProtobufCMessage *empty_body(const struct rt_msg_entry *e)
{
    ProtobufCMessage *b = calloc(1, e->desc->sizeof_message);
    if (b)
        e->desc->message_init(b);
    return b;
}

/* ======================= suite rt_sender_tcp ======================= */

#define TCP_EPOCH 5

static struct {
    struct nines_conf cfg;
    struct node n;
    pthread_t thr;
    bool running;
    char logpath[64];
    int saved_stderr;
} T;

static void *tcp_node_main(void *arg)
{
    rt_run(arg);
    return NULL;
}

static int free_port(void)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        int p = 20000 + (int)((getpid() * 11 + attempt * 131) % 30000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return p;
    }
    return -1;
}

static int tcp_init(void)
{
    memset(&T, 0, sizeof T);
    T.saved_stderr = -1;
    int port = free_port();
    if (port < 0)
        return 1;
    conf_init(&T.cfg, "sendertest", 1, port);
    /* the node's log lines go to a file the tests read */
    snprintf(T.logpath, sizeof T.logpath, "/tmp/nines_rt_sender_%d.log", (int)getpid());
    FILE *f = fopen(T.logpath, "w");
    if (!f)
        return 1;
    fflush(stderr);
    T.saved_stderr = dup(2);
    if (T.saved_stderr < 0 || dup2(fileno(f), 2) != 2) {
        fclose(f);
        return 1;
    }
    fclose(f);
    nlog_set_level(NLOG_INFO);
    if (node_open(&T.n, &T.cfg, 1, NULL, sup_msgtab, sup_msgtab_len))
        return 1;
    /* another epoch than any client sends (clients send 0) */
    sup_set_epoch(&T.n.sup, TCP_EPOCH);
    if (pthread_create(&T.thr, NULL, tcp_node_main, T.n.rt))
        return 1;
    T.running = true;
    return 0;
}

static int tcp_fini(void)
{
    if (T.running) {
        rt_stop(T.n.rt);
        pthread_join(T.thr, NULL);
    }
    if (T.n.rt)
        node_close(&T.n);
    fflush(stderr);
    if (T.saved_stderr >= 0) {
        dup2(T.saved_stderr, 2);
        close(T.saved_stderr);
    }
    if (!getenv("NINES_KEEP_TEST_DIR"))
        unlink(T.logpath);
    nlog_set_level(NLOG_INFO);
    return 0;
}

static struct net_client *tcp_connect(void)
{
    struct net_client *c = NULL;
    int rc = net_client_connect(&c, "127.0.0.1", T.cfg.nodes[0].port, T.cfg.cluster, 5000);
    CU_ASSERT_EQUAL(rc, 0);
    return rc ? NULL : c;
}

/* PING on c answered with that seq (other answers on c are skipped). */
static bool tcp_ping(struct net_client *c, uint64_t seq)
{
    Nines__PingReq p = NINES__PING_REQ__INIT;
    p.seq = seq;
    if (net_client_send(c, NINES__MSG_TYPE__PING_REQ, &p.base))
        return false;
    for (int i = 0; i < 16; i++) {
        struct net_msg_in in;
        if (net_client_recv(c, &in, 5000))
            return false;
        if (in.type != NINES__MSG_TYPE__PING_CONF)
            continue;
        Nines__PingConf *pc = nines__ping_conf__unpack(NULL, in.body_len, in.body);
        if (!pc)
            return false;
        bool ok = pc->seq == seq;
        nines__ping_conf__free_unpacked(pc, NULL);
        if (ok)
            return true; /* else an answer to an earlier ping: keep reading */
    }
    return false;
}

static Nines__StatusConf *tcp_status(struct net_client *c)
{
    Nines__StatusReq r = NINES__STATUS_REQ__INIT;
    if (net_client_send(c, NINES__MSG_TYPE__STATUS_REQ, &r.base))
        return NULL;
    for (int i = 0; i < 16; i++) {
        struct net_msg_in in;
        if (net_client_recv(c, &in, 5000))
            return NULL;
        if (in.type == NINES__MSG_TYPE__STATUS_CONF)
            return nines__status_conf__unpack(NULL, in.body_len, in.body);
    }
    return NULL;
}

static bool log_has(const char *text)
{
    fflush(stderr);
    FILE *f = fopen(T.logpath, "r");
    char line[2048];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}

static bool client_allowed(const struct rt_msg_entry *e) { return e->from & RT_FROM_CLIENT; }

/* Every row a client may not send, sent by a client on its own
 * connection: the node closes that connection, logs the type's name and
 * counts it; a second client is answered between every two. */
static void test_client_sends_internal_types(void)
{
    struct net_client *keeper = tcp_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(keeper);
    Nines__StatusConf *st0 = tcp_status(keeper);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st0);
    uint64_t refused0 = st0->refused_sender;
    nines__status_conf__free_unpacked(st0, NULL);
    unsigned tried = 0;
    for (uint32_t t = 1; t < sup_msgtab_len; t++) {
        const struct rt_msg_entry *e = &sup_msgtab[t];
        if (e->svc == RT_SVC_NONE || client_allowed(e))
            continue;
        tried++;
        struct net_client *c = tcp_connect();
        if (!c)
            continue;
        ProtobufCMessage *body = empty_body(e);
        CU_ASSERT_PTR_NOT_NULL_FATAL(body);
        CU_ASSERT_EQUAL(net_client_send(c, t, body), 0);
        free(body);
        struct net_msg_in in;
        int rc = net_client_recv(c, &in, 5000);
        if (rc != NINES_ECLOSED)
            fprintf(stdout, "\n  %s from a client: recv gave %d (%s), not a close\n", e->name, rc,
                    rc ? nines_errdetail() : "a message");
        CU_ASSERT_EQUAL(rc, NINES_ECLOSED);
        net_client_close(c);
        CU_ASSERT_TRUE(tcp_ping(keeper, t));
        char want[128];
        snprintf(want, sizeof want, "%s (type %u) refused from client conn", e->name, t);
        if (!log_has(want))
            fprintf(stdout, "\n  no log line \"%s\"\n", want);
        CU_ASSERT_TRUE(log_has(want));
    }
    /* the node's internal protocols are most of the table */
    CU_ASSERT(tried >= 25);
    Nines__StatusConf *st = tcp_status(keeper);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->refused_sender, refused0 + tried);
    CU_ASSERT_EQUAL(st->refused_epoch, 0);
    CU_ASSERT_EQUAL(st->epoch, TCP_EPOCH);
    CU_ASSERT_NOT_EQUAL(st->incarnation, 0);
    nines__status_conf__free_unpacked(st, NULL);
    /* the refused connections were closed with the peer address logged */
    CU_ASSERT_TRUE(log_has("(127.0.0.1:"));
    net_client_close(keeper);
}

/* Every row a client may send: served (the connection stays open and
 * answers a ping afterwards), even though the node's epoch (5) is not
 * the client's (0). */
static void test_client_types_served(void)
{
    struct net_client *c = tcp_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    Nines__StatusConf *st0 = tcp_status(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st0);
    uint64_t refused0 = st0->refused_sender;
    nines__status_conf__free_unpacked(st0, NULL);
    unsigned served = 0;
    for (uint32_t t = 1; t < sup_msgtab_len; t++) {
        const struct rt_msg_entry *e = &sup_msgtab[t];
        if (e->svc == RT_SVC_NONE || !client_allowed(e))
            continue;
        ProtobufCMessage *body = empty_body(e);
        CU_ASSERT_PTR_NOT_NULL_FATAL(body);
        CU_ASSERT_EQUAL(net_client_send(c, t, body), 0);
        free(body);
        bool ok = tcp_ping(c, 1000 + t);
        if (!ok)
            fprintf(stdout, "\n  the connection did not survive a client's %s\n", e->name);
        CU_ASSERT_TRUE_FATAL(ok);
        served++;
    }
    /* what the tools, client library and benchmarks send (TXN_OUTCOME_REQ:
     * the client library after failover; CKPT_REQ: ninesctl checkpoint) */
    CU_ASSERT_EQUAL(served, 8);
    Nines__StatusConf *st = tcp_status(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(st->refused_sender, refused0);
    nines__status_conf__free_unpacked(st, NULL);
    net_client_close(c);
}

/* A connection that said HELLO as a client cannot turn into a node. */
static void test_client_stays_client(void)
{
    struct net_client *c = tcp_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    Nines__HelloReq h = NINES__HELLO_REQ__INIT;
    h.cluster = T.cfg.cluster;
    h.role = NINES__ROLE__ROLE_NODE;
    h.node_id = 1;
    CU_ASSERT_EQUAL(net_client_send(c, NINES__MSG_TYPE__HELLO_REQ, &h.base), 0);
    struct net_msg_in in;
    CU_ASSERT_EQUAL(net_client_recv(c, &in, 5000), NINES_ECLOSED);
    net_client_close(c);
    struct net_client *k = tcp_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_TRUE(tcp_ping(k, 77));
    net_client_close(k);
}

/* ======================= suite rt_sender_testnet ======================= */

#define NN 3
#define TAB_LEN 256 /* >= sup_msgtab_len (checked in tn_init) */

/* Answers a node got in its recorder rows. */
struct got {
    uint32_t type;
    net_addr from;
    uint64_t epoch;
};

static struct {
    struct nines_conf cfg;
    struct net_testnet *hub;
    struct node n[NN + 1];
    struct rt_msg_entry tab[TAB_LEN];
    struct got got[NN + 1][256];
    int ngot[NN + 1];
} W;

static void rec_msg(struct rt *rt, void *st, struct rt_msg *m)
{
    (void)st;
    uint32_t self = rt_self(rt);
    if (m->type >= 0x10000 || self > NN || W.ngot[self] >= 256)
        return;
    W.got[self][W.ngot[self]++] = (struct got){m->type, m->from, m->epoch};
}

static int count_got(uint32_t node, uint32_t type)
{
    int k = 0;
    for (int i = 0; i < W.ngot[node]; i++)
        k += W.got[node][i].type == type;
    return k;
}

static const struct got *last_got(uint32_t node, uint32_t type)
{
    for (int i = W.ngot[node] - 1; i >= 0; i--)
        if (W.got[node][i].type == type)
            return &W.got[node][i];
    return NULL;
}

static void step(void)
{
    for (uint32_t i = 1; i <= NN; i++)
        if (W.n[i].rt)
            rt_step(W.n[i].rt, 0);
    net_testnet_advance(W.hub, 200);
}

#define RUN_UNTIL(cond, max)                                                                       \
    do {                                                                                           \
        for (int r_ = 0; r_ < (max) && !(cond); r_++)                                              \
            step();                                                                                \
    } while (0)

static void run(int rounds)
{
    for (int i = 0; i < rounds; i++)
        step();
}

static bool all_connected(void)
{
    for (uint32_t a = 1; a <= NN; a++)
        for (uint32_t b = 1; b <= NN; b++)
            if (a != b && !net_peer_reachable(rt_net(W.n[a].rt), b))
                return false;
    return true;
}

static struct rt_stats stats_of(uint32_t node)
{
    struct rt_stats s;
    rt_get_stats(W.n[node].rt, &s);
    return s;
}

static int open_tn_node(uint32_t i)
{
    struct net_transport *tr;
    if (net_testnet_transport(W.hub, i, &tr))
        return 1;
    if (node_open(&W.n[i], &W.cfg, i, tr, W.tab, TAB_LEN))
        return 1;
    return rt_task_add(W.n[i].rt, RT_SVC_APP, "recorder", rec_msg, NULL);
}

static int tn_init(void)
{
    nlog_set_level(getenv("KT_DEBUG") ? NLOG_DEBUG : NLOG_ERROR);
    memset(&W, 0, sizeof W);
    conf_init(&W.cfg, "sendertn", NN, 7300);
    if (net_testnet_new(&W.hub, &W.cfg, cu_seed(9)))
        return 1;
    /* the node's table, plus recorder rows for the answers this test
     * provokes; the recorder rows keep the classes and epoch rule of the
     * row they replace */
    if (sup_msgtab_len > TAB_LEN)
        return 1;
    memcpy(W.tab, sup_msgtab, sup_msgtab_len * sizeof W.tab[0]);
    W.tab[NINES__MSG_TYPE__PING_CONF] = (struct rt_msg_entry){
        "PING_CONF", &nines__ping_conf__descriptor, RT_SVC_APP, rec_msg, RT_FROM_NODE,
        RT_EPOCH_ANY};
    W.tab[NINES__MSG_TYPE__TXN_CONF] = (struct rt_msg_entry){
        "TXN_CONF", &nines__txn_conf__descriptor, RT_SVC_APP, rec_msg, RT_FROM_NODE,
        RT_EPOCH_ANY};
    W.tab[NINES__MSG_TYPE__TXN_REF] = (struct rt_msg_entry){
        "TXN_REF", &nines__txn_ref__descriptor, RT_SVC_APP, rec_msg, RT_FROM_NODE, RT_EPOCH_ANY};
    W.tab[NINES__MSG_TYPE__KERN_DIGEST_CONF] = (struct rt_msg_entry){
        "KERN_DIGEST_CONF", &nines__kern_digest_conf__descriptor, RT_SVC_APP, rec_msg,
        RT_FROM_NODE, RT_EPOCH_ANY};
    W.tab[NINES__MSG_TYPE__COMMIT_CONF].svc = RT_SVC_APP;
    W.tab[NINES__MSG_TYPE__COMMIT_CONF].fn = rec_msg;
    for (uint32_t i = 1; i <= NN; i++)
        if (open_tn_node(i))
            return 1;
    RUN_UNTIL(all_connected(), 20000);
    return all_connected() ? 0 : 1;
}

static int tn_fini(void)
{
    for (uint32_t i = 1; i <= NN; i++)
        if (W.n[i].rt)
            node_close(&W.n[i]);
    net_testnet_free(W.hub);
    nlog_set_level(NLOG_INFO);
    return 0;
}

static int send_to(uint32_t from, uint32_t to, enum rt_svc svc, uint32_t type,
                   const ProtobufCMessageDescriptor *desc, void (*fill)(ProtobufCMessage *))
{
    struct rt_msg *m = rt_msg_new(W.n[from].rt, type);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    ProtobufCMessage *b = rt_msg_alloc(m, desc->sizeof_message);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    desc->message_init(b);
    if (fill)
        fill(b);
    m->body = b;
    return rt_send(W.n[from].rt, to, svc, m);
}

static void fill_commit(ProtobufCMessage *b) { ((Nines__CommitReq *)b)->txn = 777; }
static void fill_ping(ProtobufCMessage *b) { ((Nines__PingReq *)b)->seq = 9; }
static void fill_txn(ProtobufCMessage *b) { ((Nines__TxnReq *)b)->req_id = 5; }

/* Node 1 sends TXN_REQ (clients only) to node 2: refused, counted, the
 * link closed (and redialled); node 2's controller never answers. The
 * same type from a local task is accepted by the table; a row without
 * RT_FROM_LOCAL refuses a local send. */
static void test_peer_sends_client_type(void)
{
    struct rt_stats s2 = stats_of(2);
    struct net_stats n2;
    net_get_stats(rt_net(W.n[2].rt), &n2);
    CU_ASSERT_EQUAL(send_to(1, 2, RT_SVC_TXC, NINES__MSG_TYPE__TXN_REQ,
                            &nines__txn_req__descriptor, fill_txn),
                    0);
    RUN_UNTIL(stats_of(2).refused_sender > s2.refused_sender, 2000);
    CU_ASSERT_EQUAL(stats_of(2).refused_sender, s2.refused_sender + 1);
    struct net_stats n2b;
    net_get_stats(rt_net(W.n[2].rt), &n2b);
    CU_ASSERT_EQUAL(n2b.conns_closed_bad, n2.conns_closed_bad + 1);
    run(20);
    RUN_UNTIL(all_connected(), 20000);
    CU_ASSERT_TRUE(all_connected());
    run(50);
    CU_ASSERT_EQUAL(count_got(1, NINES__MSG_TYPE__TXN_CONF), 0);
    CU_ASSERT_EQUAL(count_got(1, NINES__MSG_TYPE__TXN_REF), 0);
    /* a reconnect of the same processes is no restart */
    CU_ASSERT_EQUAL(W.n[1].sup.peers[2].restarts, 0);
    CU_ASSERT_EQUAL(W.n[2].sup.peers[1].restarts, 0);

    /* local: a row without RT_FROM_LOCAL refuses rt_send to this node */
    W.tab[NINES__MSG_TYPE__SINK_REQ].from = RT_FROM_PEER;
    struct rt_stats s1 = stats_of(1);
    CU_ASSERT_EQUAL(send_to(1, 0, RT_SVC_SUP, NINES__MSG_TYPE__SINK_REQ,
                            &nines__sink_req__descriptor, NULL),
                    NINES_EPROTO);
    CU_ASSERT_EQUAL(stats_of(1).refused_sender, s1.refused_sender + 1);
    uint64_t sinks = W.n[1].sup.sinks_received;
    run(5);
    CU_ASSERT_EQUAL(W.n[1].sup.sinks_received, sinks);
    /* ... while a peer may still send it */
    CU_ASSERT_EQUAL(send_to(2, 1, RT_SVC_SUP, NINES__MSG_TYPE__SINK_REQ,
                            &nines__sink_req__descriptor, NULL),
                    0);
    RUN_UNTIL(W.n[1].sup.sinks_received > sinks, 200);
    CU_ASSERT_EQUAL(W.n[1].sup.sinks_received, sinks + 1);
    W.tab[NINES__MSG_TYPE__SINK_REQ].from = sup_msgtab[NINES__MSG_TYPE__SINK_REQ].from;
}

/* Node 2 in epoch 2, the others in 1: service messages (RT_EPOCH_SAME)
 * of the older epoch are dropped (1 -> 2), those of the newer one held
 * (2 -> 1: test_epoch_newer_held goes on with it), without closing
 * anything; pings, digests and the probes (RT_EPOCH_ANY) flow; back in
 * epoch 1 the service messages flow. */
static void test_epoch_mismatch(void)
{
    CU_ASSERT_EQUAL(W.n[1].sup.epoch, SUP_EPOCH_INITIAL);
    CU_ASSERT_EQUAL(rt_epoch(W.n[1].rt), SUP_EPOCH_INITIAL);
    CU_ASSERT_EQUAL(net_epoch(rt_net(W.n[1].rt)), SUP_EPOCH_INITIAL);
    sup_set_epoch(&W.n[2].sup, 2);
    CU_ASSERT_EQUAL(net_epoch(rt_net(W.n[2].rt)), 2);
    struct rt_stats s1 = stats_of(1), s2 = stats_of(2);
    struct net_stats n1, n2;
    net_get_stats(rt_net(W.n[1].rt), &n1);
    net_get_stats(rt_net(W.n[2].rt), &n2);
    int commits = count_got(1, NINES__MSG_TYPE__COMMIT_CONF);
    int pings = count_got(1, NINES__MSG_TYPE__PING_CONF);
    int digests = count_got(1, NINES__MSG_TYPE__KERN_DIGEST_CONF);

    /* 1 -> 2: the kernel's COMMIT_REQ is refused; PING and digest are not */
    CU_ASSERT_EQUAL(send_to(1, 2, RT_SVC_KERN, NINES__MSG_TYPE__COMMIT_REQ,
                            &nines__commit_req__descriptor, fill_commit),
                    0);
    CU_ASSERT_EQUAL(send_to(1, 2, RT_SVC_SUP, NINES__MSG_TYPE__PING_REQ,
                            &nines__ping_req__descriptor, fill_ping),
                    0);
    CU_ASSERT_EQUAL(send_to(1, 2, RT_SVC_KERN, NINES__MSG_TYPE__KERN_DIGEST_REQ,
                            &nines__kern_digest_req__descriptor, NULL),
                    0);
    /* 2 -> 1: the same for the other direction */
    CU_ASSERT_EQUAL(send_to(2, 1, RT_SVC_KERN, NINES__MSG_TYPE__COMMIT_REQ,
                            &nines__commit_req__descriptor, fill_commit),
                    0);
    uint64_t until = nclock_us() + 100000; /* 10 heartbeats */
    while (nclock_us() < until)
        step();
    CU_ASSERT_EQUAL(stats_of(2).refused_epoch, s2.refused_epoch + 1);
    CU_ASSERT_EQUAL(stats_of(1).refused_epoch, s1.refused_epoch);
    CU_ASSERT_EQUAL(stats_of(1).held_epoch, s1.held_epoch + 1);
    CU_ASSERT_EQUAL(count_got(1, NINES__MSG_TYPE__COMMIT_CONF), commits);
    CU_ASSERT_EQUAL(count_got(1, NINES__MSG_TYPE__PING_CONF), pings + 1);
    CU_ASSERT_EQUAL(count_got(1, NINES__MSG_TYPE__KERN_DIGEST_CONF), digests + 1);
    const struct got *g = last_got(1, NINES__MSG_TYPE__PING_CONF);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->from, 2);
    CU_ASSERT_EQUAL(g->epoch, 2); /* rt_msg.epoch is the sender's */
    /* dropped, not disconnected */
    struct net_stats n1b, n2b;
    net_get_stats(rt_net(W.n[1].rt), &n1b);
    net_get_stats(rt_net(W.n[2].rt), &n2b);
    CU_ASSERT_EQUAL(n1b.conns_closed_bad, n1.conns_closed_bad);
    CU_ASSERT_EQUAL(n2b.conns_closed_bad, n2.conns_closed_bad);
    CU_ASSERT_TRUE(all_connected());
    CU_ASSERT_EQUAL(stats_of(1).refused_sender, s1.refused_sender);
    CU_ASSERT_EQUAL(stats_of(2).refused_sender, s2.refused_sender);

    /* equal epochs again: the service message flows */
    sup_set_epoch(&W.n[2].sup, SUP_EPOCH_INITIAL);
    CU_ASSERT_EQUAL(send_to(1, 2, RT_SVC_KERN, NINES__MSG_TYPE__COMMIT_REQ,
                            &nines__commit_req__descriptor, fill_commit),
                    0);
    RUN_UNTIL(count_got(1, NINES__MSG_TYPE__COMMIT_CONF) > commits, 2000);
    CU_ASSERT_EQUAL(count_got(1, NINES__MSG_TYPE__COMMIT_CONF), commits + 1);
    g = last_got(1, NINES__MSG_TYPE__COMMIT_CONF);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->from, 2);
    CU_ASSERT_EQUAL(g->epoch, SUP_EPOCH_INITIAL);
    CU_ASSERT_EQUAL(stats_of(2).refused_epoch, s2.refused_epoch + 1);
}

/* A message of a newer epoch (the sender installed a set the receiver has
 * not yet): held, not dropped, and handled once the receiver installs that
 * epoch; one held for an epoch the receiver skips is dropped then. */
static void test_epoch_newer_held(void)
{
    int commits2 = count_got(2, NINES__MSG_TYPE__COMMIT_CONF);
    struct rt_stats s1 = stats_of(1);
    /* node 2 at epoch 2 sends; node 2 at epoch 3 sends; node 1 is at 1 */
    sup_set_epoch(&W.n[2].sup, 2);
    CU_ASSERT_EQUAL(send_to(2, 1, RT_SVC_KERN, NINES__MSG_TYPE__COMMIT_REQ,
                            &nines__commit_req__descriptor, fill_commit),
                    0);
    run(20);
    sup_set_epoch(&W.n[2].sup, 3);
    CU_ASSERT_EQUAL(send_to(2, 1, RT_SVC_KERN, NINES__MSG_TYPE__COMMIT_REQ,
                            &nines__commit_req__descriptor, fill_commit),
                    0);
    uint64_t until = nclock_us() + 50000;
    while (nclock_us() < until)
        step();
    CU_ASSERT_EQUAL(stats_of(1).held_epoch, s1.held_epoch + 2);
    CU_ASSERT_EQUAL(stats_of(1).refused_epoch, s1.refused_epoch);
    CU_ASSERT_EQUAL(count_got(2, NINES__MSG_TYPE__COMMIT_CONF), commits2); /* not handled yet */
    /* node 1 jumps to epoch 3: the epoch-2 messages are dropped (this one
     * and the one test_epoch_mismatch left held), the epoch-3 one handled
     * (its answer reaches node 2, also at epoch 3) */
    sup_set_epoch(&W.n[1].sup, 3);
    CU_ASSERT_EQUAL(stats_of(1).refused_epoch, s1.refused_epoch + 2);
    RUN_UNTIL(count_got(2, NINES__MSG_TYPE__COMMIT_CONF) > commits2, 2000);
    CU_ASSERT_EQUAL(count_got(2, NINES__MSG_TYPE__COMMIT_CONF), commits2 + 1);
    const struct got *g = last_got(2, NINES__MSG_TYPE__COMMIT_CONF);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->from, 1);
    CU_ASSERT_EQUAL(g->epoch, 3);
    CU_ASSERT_TRUE(all_connected());
    /* back to the epoch the other tests expect: node 3 never left it */
    sup_set_epoch(&W.n[1].sup, SUP_EPOCH_INITIAL);
    sup_set_epoch(&W.n[2].sup, SUP_EPOCH_INITIAL);
}

/* Node 3 crashes and starts again as a new process: both peers get
 * RT_MSG_PEER_RESTARTED (counted by their supervisors, shown in STATUS)
 * and know its new incarnation; the new process met them for the first
 * time. */
static void test_restart_vs_reconnect(void)
{
    uint64_t old3 = net_incarnation(rt_net(W.n[3].rt));
    CU_ASSERT_EQUAL(net_peer_incarnation(rt_net(W.n[1].rt), 3), old3);
    uint64_t r13 = W.n[1].sup.peers[3].restarts, r23 = W.n[2].sup.peers[3].restarts;
    net_testnet_crash(W.hub, 3);
    run(10);
    node_close(&W.n[3]);
    RUN_UNTIL(!net_peer_reachable(rt_net(W.n[1].rt), 3), 1000);
    CU_ASSERT_EQUAL_FATAL(open_tn_node(3), 0);
    RUN_UNTIL(all_connected(), 20000);
    CU_ASSERT_TRUE_FATAL(all_connected());
    run(20);
    uint64_t new3 = net_incarnation(rt_net(W.n[3].rt));
    CU_ASSERT(new3 > old3);
    CU_ASSERT_EQUAL(net_peer_incarnation(rt_net(W.n[1].rt), 3), new3);
    CU_ASSERT_EQUAL(net_peer_incarnation(rt_net(W.n[2].rt), 3), new3);
    CU_ASSERT_EQUAL(W.n[1].sup.peers[3].restarts, r13 + 1);
    CU_ASSERT_EQUAL(W.n[2].sup.peers[3].restarts, r23 + 1);
    CU_ASSERT_EQUAL(W.n[3].sup.peers[1].restarts, 0);
    CU_ASSERT_EQUAL(W.n[3].sup.peers[2].restarts, 0);
    /* a cut link healed is a reconnect */
    net_testnet_partition(W.hub, 1, 3, true);
    run(20);
    net_testnet_partition(W.hub, 1, 3, false);
    RUN_UNTIL(all_connected(), 20000);
    run(20);
    CU_ASSERT_EQUAL(W.n[1].sup.peers[3].restarts, r13 + 1);
    CU_ASSERT_EQUAL(W.n[3].sup.peers[1].restarts, 0);
}

void cu_register(void)
{
    static const struct cu_case tcp_cases[] = {
        {"a client sending any internal type is refused, logged, closed",
         test_client_sends_internal_types},
        {"every client type is served, whatever the node's epoch", test_client_types_served},
        {"a client cannot say HELLO again as a node", test_client_stays_client},
        {NULL, NULL},
    };
    cu_add_suite("rt_sender_tcp", tcp_init, tcp_fini, tcp_cases);
    static const struct cu_case tn_cases[] = {
        {"a peer sending a client-only type is refused and disconnected",
         test_peer_sends_client_type},
        {"another epoch: service messages refused, probes flow", test_epoch_mismatch},
        {"a newer epoch: held until this node installs it", test_epoch_newer_held},
        {"a restarted peer is told apart from a reconnect", test_restart_vs_reconnect},
        {NULL, NULL},
    };
    cu_add_suite("rt_sender_testnet", tn_init, tn_fini, tn_cases);
}
