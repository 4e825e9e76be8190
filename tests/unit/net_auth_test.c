/* The cluster key (net/README.md "Handshake", README.md "SECURITY"): the
 * key file's checks, the mutual HMAC challenge-response of node HELLOs over
 * the in-process test transport (deterministic: a seed and a virtual
 * clock), and over TCP hostile raw peers and keyed / plain / wrong-key
 * blocking clients. */
#include "net_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include "nclock.h"
#include "../../net/envelope.h"
#include "../../net/frame.h"
#include "../../net/testnet.h"

#define NN 3
#define DEADLINE_MS 10000

static unsigned long seed;
static const uint8_t KEY_A[NINES_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t KEY_B[NINES_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11};

static int suite_init(void)
{
    seed = cu_seed(7);
    return 0;
}

/* ---- stderr capture (log lines) ---- */

struct cap {
    int fd, saved;
};

static void cap_start(struct cap *c)
{
    char path[] = "/tmp/net_auth_test_XXXXXX";
    c->fd = mkstemp(path);
    CU_ASSERT_FATAL(c->fd >= 0);
    unlink(path);
    fflush(stderr);
    c->saved = dup(2);
    CU_ASSERT_FATAL(c->saved >= 0 && dup2(c->fd, 2) == 2);
}

/* Stop capturing; the captured text into buf (NUL-terminated). */
static void cap_stop(struct cap *c, char *buf, size_t n)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    ssize_t r = pread(c->fd, buf, n - 1, 0);
    close(c->fd);
    buf[r > 0 ? r : 0] = 0;
}

/* ---- key files ---- */

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL((ssize_t)strlen(text), write(fd, text, strlen(text)));
    CU_ASSERT_EQUAL(fchmod(fd, mode), 0);
    close(fd);
}

static void test_key_file(void)
{
    char path[] = "/tmp/net_auth_key_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    char text[160];
    nines_key_format(KEY_A, text, sizeof text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, NINES_KEY_HEADER "\n0102030405060708090a0000"));
    uint8_t k[NINES_KEY_BYTES];

    write_file(path, text, 0600);
    CU_ASSERT_EQUAL(nines_key_load(path, k), 0);
    CU_ASSERT_EQUAL(memcmp(k, KEY_A, sizeof k), 0);
    write_file(path, text, 0400);
    CU_ASSERT_EQUAL(nines_key_load(path, k), 0);

    /* readable by group or others: refused, naming the path and the mode */
    write_file(path, text, 0644);
    CU_ASSERT_EQUAL(nines_key_load(path, k), NINES_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), path));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "mode 0644"));
    write_file(path, text, 0640);
    CU_ASSERT_EQUAL(nines_key_load(path, k), NINES_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "mode 0640"));

    /* malformed */
    static const char *bad[] = {
        "0102030405060708090a0000000000000000000000000000000000000000000000\n",
        NINES_KEY_HEADER "\n0102\n",
        NINES_KEY_HEADER "\nzz02030405060708090a00000000000000000000000000000000000000000000\n",
        NINES_KEY_HEADER "\n0102030405060708090a00000000000000000000000000000000000000000000 x\n",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i], 0600);
        CU_ASSERT_EQUAL(nines_key_load(path, k), NINES_ECONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), path));
    }
    unlink(path);
    CU_ASSERT_EQUAL(nines_key_load(path, k), NINES_EIO);
    /* a FIFO: refused at once, not waited on for a writer */
    CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
    CU_ASSERT_EQUAL(nines_key_load(path, k), NINES_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "not a regular file"));
    unlink(path);

    /* the cluster file names it; the error carries the file and the reason */
    write_file(path, text, 0600);
    char conf[512];
    snprintf(conf, sizeof conf,
             "cluster c\nnode 1 site 0 127.0.0.1:7001\nnode 2 site 1 127.0.0.1:7002\n"
             "cluster_key %s\n", path);
    struct nines_conf c;
    CU_ASSERT_EQUAL(nines_conf_parse(conf, "k.conf", &c), 0);
    CU_ASSERT_TRUE(c.has_key);
    CU_ASSERT_EQUAL(memcmp(c.key, KEY_A, sizeof c.key), 0);
    CU_ASSERT_STRING_EQUAL(c.key_path, path);
    chmod(path, 0604);
    CU_ASSERT_EQUAL(nines_conf_parse(conf, "k.conf", &c), NINES_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "k.conf: cluster_key: key file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "mode 0604"));
    CU_ASSERT_EQUAL(nines_conf_parse("cluster c\nnode 1 site 0 127.0.0.1:7001\n"
                                     "node 2 site 1 127.0.0.1:7002\n", "n.conf", &c), 0);
    CU_ASSERT_FALSE(c.has_key);
    unlink(path);
}

/* ---- node links over the test transport ---- */

struct world {
    struct nines_conf cfg;
    struct net_testnet *hub;
    struct nt_rec rec[NN + 1];
};

/* keys[n]: node n's key (NULL: none). */
static void world_open(struct world *w, const uint8_t *const keys[NN + 1])
{
    memset(w, 0, sizeof *w);
    nt_conf(&w->cfg, NN, NULL);
    w->cfg.send_queue_bytes = 64u * 1024u;
    w->cfg.max_frame_bytes = 16u * 1024u;
    CU_ASSERT_EQUAL_FATAL(net_testnet_new(&w->hub, &w->cfg, seed), 0);
    for (uint32_t n = 1; n <= NN; n++) {
        struct nines_conf c = w->cfg;
        c.has_key = keys[n] != NULL;
        if (keys[n])
            memcpy(c.key, keys[n], sizeof c.key);
        struct net_transport *t;
        CU_ASSERT_EQUAL_FATAL(net_testnet_transport(w->hub, n, &t), 0);
        w->rec[n].self = n;
        struct net_handlers h = nt_handlers(&w->rec[n]);
        CU_ASSERT_EQUAL_FATAL(net_endpoint_open_on(&w->rec[n].ep, &c, n, t, &h), 0);
    }
}

static void world_close(struct world *w)
{
    for (uint32_t n = 1; n <= NN; n++)
        net_endpoint_close(w->rec[n].ep);
    net_testnet_free(w->hub);
}

static void steps(struct world *w, int n)
{
    for (int i = 0; i < n; i++) {
        for (uint32_t k = 1; k <= NN; k++)
            CU_ASSERT(net_poll(w->rec[k].ep, 0) >= 0);
        net_testnet_advance(w->hub, 1000);
    }
}

static uint64_t bad_of(struct net_endpoint *ep)
{
    struct net_stats st;
    net_get_stats(ep, &st);
    return st.conns_closed_bad;
}

/* Same key everywhere: every pair up once, nothing refused, and frames
 * queued before the connections existed arrive in order after the proof. */
static void test_keyed_handshake(void)
{
    const uint8_t *const keys[NN + 1] = {NULL, KEY_A, KEY_A, KEY_A};
    struct world w;
    world_open(&w, keys);
    for (uint64_t s = 1; s <= 40; s++) {
        CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 3, s, 100), 0);
        CU_ASSERT_EQUAL(nt_sink(w.rec[3].ep, 1, s, 100), 0);
    }
    steps(&w, 200);
    for (uint32_t a = 1; a <= NN; a++)
        for (uint32_t b = 1; b <= NN; b++)
            if (a != b) {
                CU_ASSERT_TRUE(net_peer_reachable(w.rec[a].ep, b));
                CU_ASSERT_TRUE(net_conn_keyed(w.rec[a].ep, b));
                CU_ASSERT_EQUAL(w.rec[a].ups[b], 1);
            }
    CU_ASSERT_EQUAL(w.rec[3].sink_count[1], 40);
    CU_ASSERT_EQUAL(w.rec[1].sink_count[3], 40);
    CU_ASSERT_EQUAL(w.rec[3].sink_out_of_order, 0);
    CU_ASSERT_EQUAL(w.rec[1].sink_out_of_order, 0);
    for (uint32_t n = 1; n <= NN; n++)
        CU_ASSERT_EQUAL(bad_of(w.rec[n].ep), 0);
    /* after a cut the pair proves the key again and carries on */
    net_testnet_partition(w.hub, 1, 3, true);
    steps(&w, 20);
    net_testnet_partition(w.hub, 1, 3, false);
    steps(&w, 300);
    CU_ASSERT_TRUE(net_peer_reachable(w.rec[1].ep, 3));
    CU_ASSERT_EQUAL(w.rec[3].ups[1], 2);
    CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 3, 41, 10), 0);
    steps(&w, 5);
    CU_ASSERT_EQUAL(w.rec[3].sink_count[1], 41);
    world_close(&w);
}

/* Node 3 has another cluster's key: it never comes up with 1 or 2, both
 * sides log the refusal with the peer's address, and nothing node 1 queued
 * for it is ever delivered; 1 and 2 serve each other throughout. */
static void test_wrong_key(void)
{
    const uint8_t *const keys[NN + 1] = {NULL, KEY_A, KEY_A, KEY_B};
    struct world w;
    struct cap cap;
    cap_start(&cap);
    world_open(&w, keys);
    for (uint64_t s = 1; s <= 10; s++)
        CU_ASSERT_EQUAL(nt_sink(w.rec[1].ep, 3, s, 10), 0);
    for (uint64_t s = 1; s <= 100; s++) {
        (void)nt_sink(w.rec[1].ep, 2, s, 10);
        steps(&w, 3);
    }
    char log[32768];
    cap_stop(&cap, log, sizeof log);
    CU_ASSERT_TRUE(net_peer_reachable(w.rec[1].ep, 2));
    CU_ASSERT_TRUE(w.rec[2].sink_count[1] >= 90);
    for (uint32_t n = 1; n <= 2; n++) {
        CU_ASSERT_FALSE(net_peer_reachable(w.rec[n].ep, 3));
        CU_ASSERT_FALSE(net_peer_reachable(w.rec[3].ep, n));
        CU_ASSERT_EQUAL(w.rec[n].ups[3], 0);
        CU_ASSERT_EQUAL(w.rec[3].ups[n], 0);
        CU_ASSERT(bad_of(w.rec[n].ep) > 0);
    }
    CU_ASSERT_EQUAL(w.rec[3].sink_count[1], 0);
    CU_ASSERT(bad_of(w.rec[3].ep) > 0);
    /* the dialler names the acceptor; the acceptor names the dialler's address */
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ep 1: closing node 3: node 3 (test node 3): its proof of "
                                       "the cluster key does not match"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "(test node 1): node 1 refused our key proof"));
    /* the key itself is never in a log line */
    CU_ASSERT_PTR_NULL(strstr(log, "0102030405060708090a"));
    world_close(&w);
}

/* Key on one side only, both ways: node 2 has a key, 1 and 3 have none.
 * 1 dials 2 without a challenge (refused: key required); 2 dials 3 with
 * one (refused: 3 has no key). 1 and 3, both keyless, connect as before. */
static void test_key_one_side(void)
{
    const uint8_t *const keys[NN + 1] = {NULL, NULL, KEY_A, NULL};
    struct world w;
    struct cap cap;
    cap_start(&cap);
    world_open(&w, keys);
    steps(&w, 300);
    char log[32768];
    cap_stop(&cap, log, sizeof log);
    CU_ASSERT_TRUE(net_peer_reachable(w.rec[1].ep, 3));
    CU_ASSERT_TRUE(net_peer_reachable(w.rec[3].ep, 1));
    CU_ASSERT_FALSE(net_conn_keyed(w.rec[1].ep, 3));
    CU_ASSERT_EQUAL(w.rec[2].ups[1] + w.rec[1].ups[2] + w.rec[2].ups[3] + w.rec[3].ups[2], 0);
    CU_ASSERT(bad_of(w.rec[2].ep) > 0);
    CU_ASSERT(bad_of(w.rec[3].ep) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "node HELLO without the cluster key"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "the peer proves a cluster key but node 3 has none"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ep 1: node 2 refused our HELLO"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ep 2: node 3 refused our HELLO"));
    world_close(&w);
}

/* ---- hostile peers over TCP ---- */

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

static void raw_env(int fd, uint32_t sender, uint32_t type, const ProtobufCMessage *body)
{
    static uint8_t bodyb[8192], out[8300];
    Nines__Envelope e = NINES__ENVELOPE__INIT;
    e.version = 1;
    e.sender = sender;
    e.type = type;
    if (body) {
        e.body.len = protobuf_c_message_pack(body, bodyb);
        e.body.data = bodyb;
    }
    size_t n = nines__envelope__pack(&e, out + 4);
    net_frame_put_len(out, (uint32_t)n);
    (void)send(fd, out, n + 4, MSG_NOSIGNAL);
}

static void raw_hello(int fd, Nines__Role role, uint32_t node, const uint8_t *nonce)
{
    Nines__HelloReq h = NINES__HELLO_REQ__INIT;
    h.cluster = "nettest";
    h.role = role;
    h.node_id = node;
    if (nonce) {
        h.nonce.data = (uint8_t *)nonce;
        h.nonce.len = 32;
    }
    raw_env(fd, node, NINES__MSG_TYPE__HELLO_REQ, &h.base);
}

struct tcp1 {
    struct nines_conf cfg;
    struct nt_rec rec;     /* node 2, keyed, listening */
};

static void tcp1_open(struct tcp1 *w, bool require_client_key)
{
    memset(w, 0, sizeof *w);
    uint16_t ports[2] = {free_port(), free_port()};
    nt_conf(&w->cfg, 2, ports);
    w->cfg.send_queue_bytes = 64u * 1024u;
    w->cfg.max_frame_bytes = 16u * 1024u;
    w->cfg.has_key = true;
    memcpy(w->cfg.key, KEY_A, sizeof w->cfg.key);
    w->rec.self = 2;
    struct net_handlers h = nt_handlers(&w->rec);
    CU_ASSERT_EQUAL_FATAL(net_endpoint_open(&w->rec.ep, &w->cfg, 2, &h), 0);
    net_require_client_key(w->rec.ep, require_client_key);
}

/* Read what the node sends until it closes (or the deadline): true if closed.
 * *first = the first frame's type, *conf_body a copy of a HELLO_CONF body. */
struct rawin {
    int fd;
    uint8_t buf[8192];
    size_t len;
    bool eof;
};

static bool raw_pump(struct tcp1 *w, struct rawin *r, int ms)
{
    uint64_t end = nclock_ms() + (uint64_t)ms;
    while (nclock_ms() < end && !r->eof) {
        CU_ASSERT(net_poll(w->rec.ep, 1) >= 0);
        for (;;) {
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
    return r->eof;
}

static uint32_t raw_type_at(struct rawin *r, size_t k, struct net_msg_in *m)
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

/* Impostors that know node 1's id but not the key: no challenge at all;
 * a challenge then frames and a forged proof; a challenge then frames and
 * a close. None gets a frame delivered or becomes node 1. */
static void test_impostors(void)
{
    struct tcp1 w;
    tcp1_open(&w, false);
    uint16_t port = w.cfg.nodes[1].port;
    uint8_t nonce[32] = {9};
    struct net_msg_in m;
    struct cap cap;
    cap_start(&cap);

    struct rawin r = {.fd = raw_connect(port)};
    raw_hello(r.fd, NINES__ROLE__ROLE_NODE, 1, NULL);
    CU_ASSERT_TRUE(raw_pump(&w, &r, DEADLINE_MS));
    CU_ASSERT_EQUAL(raw_type_at(&r, 0, &m), NINES__MSG_TYPE__HELLO_REF);
    close(r.fd);

    memset(&r, 0, sizeof r);
    r.fd = raw_connect(port);
    raw_hello(r.fd, NINES__ROLE__ROLE_NODE, 1, nonce);
    Nines__SinkReq sk = NINES__SINK_REQ__INIT;
    sk.seq = 1;
    raw_env(r.fd, 1, NINES__MSG_TYPE__SINK_REQ, &sk.base);
    Nines__HelloAuth au = NINES__HELLO_AUTH__INIT;
    uint8_t forged[32] = {0};
    au.proof.data = forged;
    au.proof.len = 32;
    raw_env(r.fd, 1, NINES__MSG_TYPE__HELLO_AUTH, &au.base);
    CU_ASSERT_TRUE(raw_pump(&w, &r, DEADLINE_MS));
    CU_ASSERT_EQUAL(raw_type_at(&r, 0, &m), NINES__MSG_TYPE__HELLO_CONF);
    CU_ASSERT_EQUAL(raw_type_at(&r, 1, &m), NINES__MSG_TYPE__HELLO_REF);
    close(r.fd);

    /* frames before the proof, then gone: buffered and dropped */
    memset(&r, 0, sizeof r);
    r.fd = raw_connect(port);
    raw_hello(r.fd, NINES__ROLE__ROLE_NODE, 1, nonce);
    raw_env(r.fd, 1, NINES__MSG_TYPE__SINK_REQ, &sk.base);
    (void)raw_pump(&w, &r, 200);
    close(r.fd);
    uint64_t end = nclock_ms() + 300;
    while (nclock_ms() < end)
        CU_ASSERT(net_poll(w.rec.ep, 1) >= 0);

    /* more bytes before the proof than the bound: closed */
    memset(&r, 0, sizeof r);
    r.fd = raw_connect(port);
    raw_hello(r.fd, NINES__ROLE__ROLE_NODE, 1, nonce);
    static uint8_t pad[4000];
    sk.payload.data = pad;
    sk.payload.len = sizeof pad;
    for (int i = 0; i < 40 && !r.eof; i++) {
        raw_env(r.fd, 1, NINES__MSG_TYPE__SINK_REQ, &sk.base);
        (void)raw_pump(&w, &r, 5);
    }
    CU_ASSERT_TRUE(raw_pump(&w, &r, DEADLINE_MS));
    close(r.fd);

    char log[32768];
    cap_stop(&cap, log, sizeof log);
    CU_ASSERT_EQUAL(w.rec.sink_count[1], 0);
    CU_ASSERT_EQUAL(w.rec.ups[1], 0);
    CU_ASSERT_FALSE(net_peer_reachable(w.rec.ep, 1));
    CU_ASSERT_EQUAL(bad_of(w.rec.ep), 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "(127.0.0.1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "node HELLO without the cluster key"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "the proof of the cluster key from node 1 does not match"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "claiming node 1 closed before its key proof"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "bytes before its key proof (HELLO_AUTH)"));
    net_endpoint_close(w.rec.ep);
}

/* Blocking clients in a child process while this one polls the node. */
static int run_child(struct tcp1 *w, int (*fn)(uint16_t port))
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(fn(w->cfg.nodes[1].port));
    int status = 0;
    uint64_t end = nclock_ms() + DEADLINE_MS;
    while (nclock_ms() < end) {
        CU_ASSERT(net_poll(w->rec.ep, 1) >= 0);
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return 101;
}

static int ping_once(struct net_client *c)
{
    Nines__PingReq p = NINES__PING_REQ__INIT;
    p.seq = 5;
    struct net_msg_in m;
    if (net_client_send(c, NINES__MSG_TYPE__PING_REQ, &p.base) ||
        net_client_recv(c, &m, 5000) || m.type != NINES__MSG_TYPE__PING_CONF)
        return 1;
    return 0;
}

static int child_clients(uint16_t port)
{
    struct net_client *c;
    /* the right key: proven both ways, then served */
    if (net_client_connect_key(&c, "127.0.0.1", port, "nettest", KEY_A, 5000))
        return 10;
    if (ping_once(c))
        return 11;
    net_client_close(c);
    /* another cluster's key: the node's proof is refused here */
    int rc = net_client_connect_key(&c, "127.0.0.1", port, "nettest", KEY_B, 5000);
    if (rc != NINES_EAUTH || !strstr(nines_errdetail(), "another cluster's key"))
        return 12;
    /* a plain client is still served by a node (clients are item 2) */
    if (net_client_connect(&c, "127.0.0.1", port, "nettest", 5000))
        return 13;
    if (ping_once(c))
        return 14;
    net_client_close(c);
    return 0;
}

static int child_plain_refused(uint16_t port)
{
    struct net_client *c;
    int rc = net_client_connect(&c, "127.0.0.1", port, "nettest", 5000);
    if (rc != NINES_EAUTH || !strstr(nines_errdetail(), "requires its key"))
        return 20;
    if (net_client_connect_key(&c, "127.0.0.1", port, "nettest", KEY_A, 5000))
        return 21;
    rc = ping_once(c);
    net_client_close(c);
    return rc ? 22 : 0;
}

static void test_clients(void)
{
    struct tcp1 w;
    tcp1_open(&w, false);
    struct cap cap;
    cap_start(&cap);
    int rc = run_child(&w, child_clients);
    char log[32768];
    cap_stop(&cap, log, sizeof log);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(w.rec.ping_seen, 2);
    /* the wrong-key client told the node why and the node logged it */
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "client 0 refused our key proof"));
    net_endpoint_close(w.rec.ep);

    /* the arbitrator's setting: every client must prove the key */
    tcp1_open(&w, true);
    cap_start(&cap);
    rc = run_child(&w, child_plain_refused);
    cap_stop(&cap, log, sizeof log);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(w.rec.ping_seen, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "client HELLO without the cluster key"));
    net_endpoint_close(w.rec.ep);
}

/* ---- users (client_auth scram-sha-256) ---- */

static void login_open(struct tcp1 *w, enum nines_client_auth mode)
{
    memset(w, 0, sizeof *w);
    uint16_t ports[2] = {free_port(), free_port()};
    nt_conf(&w->cfg, 2, ports);
    w->cfg.client_auth = mode;
    w->rec.self = 2;
    struct net_handlers h = nt_handlers(&w->rec);
    CU_ASSERT_EQUAL_FATAL(net_endpoint_open(&w->rec.ep, &w->cfg, 2, &h), 0);
    struct net_user u[2] = {{.name = "alice", .role = NET_ROLE_WRITER},
                            {.name = "bob", .role = NET_ROLE_READER}};
    char text[256];
    CU_ASSERT_EQUAL_FATAL(scram_verifier_make("alice-pw", 8, NULL, 0, 4096, text, sizeof text), 0);
    CU_ASSERT_EQUAL_FATAL(scram_verifier_parse(text, &u[0].v), 0);
    CU_ASSERT_EQUAL_FATAL(scram_verifier_make("bob-pw", 6, NULL, 0, 4096, text, sizeof text), 0);
    CU_ASSERT_EQUAL_FATAL(scram_verifier_parse(text, &u[1].v), 0);
    CU_ASSERT_EQUAL_FATAL(net_set_users(w->rec.ep, u, 2), 0);
    struct net_user unsorted[2] = {u[1], u[0]};
    CU_ASSERT_EQUAL(net_set_users(w->rec.ep, unsorted, 2), NINES_EINVAL);
}

static int child_logins(uint16_t port)
{
    struct net_client *c;
    if (net_client_connect_as(&c, "127.0.0.1", port, "nettest", NULL, "alice", "alice-pw", 5000))
        return 30;
    if (net_client_role(c) != NET_ROLE_WRITER || ping_once(c))
        return 31;
    net_client_close(c);
    if (net_client_connect_as(&c, "127.0.0.1", port, "nettest", NULL, "bob", "bob-pw", 5000))
        return 32;
    if (net_client_role(c) != NET_ROLE_READER || ping_once(c))
        return 33;
    net_client_close(c);
    /* wrong password and unknown user: the same answer */
    int rc = net_client_connect_as(&c, "127.0.0.1", port, "nettest", NULL, "alice", "alice-PW",
                                   5000);
    if (rc != NINES_EAUTH || !strstr(nines_errdetail(), "password authentication failed for "
                                                        "user \"alice\""))
        return 34;
    rc = net_client_connect_as(&c, "127.0.0.1", port, "nettest", NULL, "mallory", "x", 5000);
    if (rc != NINES_EAUTH || !strstr(nines_errdetail(), "password authentication failed for "
                                                        "user \"mallory\""))
        return 35;
    /* no login at all */
    rc = net_client_connect(&c, "127.0.0.1", port, "nettest", 5000);
    if (rc != NINES_EAUTH || !strstr(nines_errdetail(), "takes logins only"))
        return 36;
    return 0;
}

static int child_trust_login(uint16_t port)
{
    struct net_client *c;
    /* a node without users takes a client that offers a login as it is */
    if (net_client_connect_as(&c, "127.0.0.1", port, "nettest", NULL, "alice", "whatever", 5000))
        return 40;
    if (net_client_role(c) != NET_ROLE_ADMIN || ping_once(c))
        return 41;
    net_client_close(c);
    return 0;
}

static void test_logins(void)
{
    struct tcp1 w;
    login_open(&w, NINES_CLIENT_AUTH_SCRAM);
    struct cap cap;
    cap_start(&cap);
    int rc = run_child(&w, child_logins);
    char log[32768];
    cap_stop(&cap, log, sizeof log);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(w.rec.ping_seen, 2);
    /* the node says which it was; the client was not told */
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "login of user \"alice\" refused: wrong password"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "login of user \"mallory\" refused: no such user"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "logged in as user \"bob\" (role 1)"));
    struct net_stats st;
    net_get_stats(w.rec.ep, &st);
    CU_ASSERT_EQUAL(st.logins_refused, 2);
    CU_ASSERT_EQUAL(st.clients, 0);
    net_endpoint_close(w.rec.ep);

    login_open(&w, NINES_CLIENT_AUTH_TRUST);
    rc = run_child(&w, child_trust_login);
    CU_ASSERT_EQUAL(rc, 0);
    net_endpoint_close(w.rec.ep);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"key file: owner-only, format, cluster file", test_key_file},
        {"same key: handshake, frames queued before it, reconnect", test_keyed_handshake},
        {"another cluster's key: refused both ways, logged, others serve", test_wrong_key},
        {"a key on one side only: refused both ways", test_key_one_side},
        {"impostors without the key over TCP", test_impostors},
        {"keyed, wrong-key and plain clients", test_clients},
        {"user logins: SCRAM, roles, refusals alike, trust", test_logins},
        {NULL, NULL},
    };
    cu_add_suite("net_auth", suite_init, NULL, cases);
}
