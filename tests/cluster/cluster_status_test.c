/* Cluster test: four real ninesd processes on loopback (2 sites).
 * `ninesctl status` sees all of them healthy; garbage sent to a node's port
 * does not stop it serving; a client connection sending node-internal
 * messages (the kernel's COMMIT/ABORT for a guessed transaction) is refused,
 * logged, counted in STATUS and closed; a killed node is reported
 * unreachable by ninesctl and as DOWN by every other node; restarted, the
 * cluster heals and its peers count the restart. */
#include "clu.h"
#include "cu_test.h"
#include "nclock.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "net/net.h"

static struct clu C;

static int setup(void) { return clu_setup(&C, 4, NULL); }
static int teardown(void) { return clu_teardown(&C); }

static void test_all_up(void)
{
    int rc = clu_run(&C, "ninesctl", 0, "status --json --wait-healthy 20");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"healthy\":true"));
    for (int i = 1; i <= C.n; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"id\":%d,\"site\":%d,\"address\":", i, (i - 1) % 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(C.out, want));
    }
    CU_ASSERT_PTR_NULL(strstr(C.out, "\"reachable\":false"));
    rc = clu_run(&C, "ninesctl", 0, "status");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "all nodes up"));
    if (rc != 0 || !strstr(C.out, "all nodes up"))
        printf("\n  ninesctl status said:\n%s\n", C.out); /* what was not up */
}

/* Garbage, a truncated frame and an oversized length prefix on node 1's
 * port: each connection is dropped, node 1 keeps serving. */
static void test_garbage_survived(void)
{
    static const char *inputs[] = {"GET / HTTP/1.0\r\n\r\n", "\x05\x00\x00\x00\x08",
                                   "\xff\xff\xff\x7f"};
    for (size_t k = 0; k < 3; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)(C.base_port + 1))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
        CU_ASSERT(write(fd, inputs[k], strlen(inputs[k])) > 0);
        if (k == 1)
            shutdown(fd, SHUT_WR); /* truncated frame then EOF */
        /* the node closes the connection: read returns 0 or an error */
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[256];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            ;
        CU_ASSERT(n <= 0);
        close(fd);
    }
    CU_ASSERT_EQUAL(kill(C.pids[1], 0), 0);
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "status --json --wait-healthy 10"), 0);
    CU_ASSERT_TRUE(clu_log_has(&C, 1, "clos")); /* the reasons were logged */
}

/* One frame on a raw socket: u32 length, then the Envelope (sender 0,
 * epoch 0: what any program can write). */
static int raw_frame(int fd, uint32_t type, const ProtobufCMessage *body)
{
    static uint8_t buf[4096];
    size_t blen = body ? protobuf_c_message_get_packed_size(body) : 0;
    size_t n = net_env_size(0, 0, type, blen);
    if (n + 4 > sizeof buf)
        return -1;
    buf[0] = (uint8_t)n, buf[1] = (uint8_t)(n >> 8), buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 24);
    net_env_pack(buf + 4, 0, 0, type, body, blen);
    return write(fd, buf, n + 4) == (ssize_t)(n + 4) ? 0 : -1;
}

/* Read until the node closes; true when it did within 5 s. */
static int raw_closed(int fd)
{
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        ;
    return n == 0;
}

/* The numeric value of "key": in node id's object of a status --json. */
static long long json_node_num(const char *out, int id, const char *key)
{
    char at[64], k[64];
    snprintf(at, sizeof at, "{\"id\":%d,\"site\":%d,\"address\"", id, (id - 1) % 2);
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(out, at);
    p = p ? strstr(p, k) : NULL;
    return p ? atoll(p + strlen(k)) : -1;
}

/* A raw client says HELLO as a client, then sends what only nodes may
 * send: the kernel's COMMIT_REQ / ABORT_REQ / KERN_OP_REQ for a guessed
 * transaction id (a client could otherwise roll back a confirmed commit).
 * Each connection is closed, node 1 logs the type name and the client's
 * address, STATUS counts them, and node 1 keeps serving. */
static void test_client_internal_types_refused(void)
{
    CU_ASSERT_EQUAL_FATAL(clu_run(&C, "ninesctl", 0, "status --json --wait-healthy 10"), 0);
    long long before = json_node_num(C.out, 1, "refused_sender");
    CU_ASSERT(before >= 0);
    CU_ASSERT_EQUAL(json_node_num(C.out, 1, "epoch"), 1);
    static const uint32_t types[] = {NINES__MSG_TYPE__COMMIT_REQ, NINES__MSG_TYPE__ABORT_REQ,
                                     NINES__MSG_TYPE__KERN_OP_REQ};
    static const char *names[] = {"COMMIT_REQ", "ABORT_REQ", "KERN_OP_REQ"};
    for (size_t k = 0; k < 3; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)(C.base_port + 1))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
        Nines__HelloReq h = NINES__HELLO_REQ__INIT;
        h.cluster = "clutest";
        h.role = NINES__ROLE__ROLE_CLIENT;
        CU_ASSERT_EQUAL(raw_frame(fd, NINES__MSG_TYPE__HELLO_REQ, &h.base), 0);
        Nines__CommitReq c = NINES__COMMIT_REQ__INIT;
        Nines__AbortReq ab = NINES__ABORT_REQ__INIT;
        Nines__KernOpReq op = NINES__KERN_OP_REQ__INIT;
        c.txn = ab.txn = op.txn = (1ull << 32) | 7; /* a guess */
        const ProtobufCMessage *body = k == 0 ? &c.base : k == 1 ? &ab.base : &op.base;
        CU_ASSERT_EQUAL(raw_frame(fd, types[k], body), 0);
        CU_ASSERT_TRUE(raw_closed(fd));
        close(fd);
        char want[128];
        snprintf(want, sizeof want, "%s (type %u) refused from client conn", names[k], types[k]);
        CU_ASSERT_TRUE(clu_log_has(&C, 1, want));
    }
    CU_ASSERT_TRUE(clu_log_has(&C, 1, "(127.0.0.1:"));
    CU_ASSERT_EQUAL(kill(C.pids[1], 0), 0);
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "status --json --wait-healthy 10"), 0);
    CU_ASSERT_EQUAL(json_node_num(C.out, 1, "refused_sender"), before + 3);
    CU_ASSERT_EQUAL(json_node_num(C.out, 1, "refused_epoch"), 0);
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "status"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "refused messages: 3 by sender class"));
}

static void test_killed_node_unreachable(void)
{
    clu_stop(&C, 3, SIGKILL);
    /* wait until no surviving node sees node 3 up */
    uint64_t deadline = nclock_ms() + 10000;
    int rc;
    do {
        rc = clu_run(&C, "ninesctl", 0, "status --json");
    } while (strstr(C.out, "{\"id\":3,\"site\":0,\"reachable\":true") && nclock_ms() < deadline);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"healthy\":false"));
    char *n3 = strstr(C.out, "{\"id\":3,\"site\":0,\"address\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n3);
    CU_ASSERT_PTR_NOT_NULL(strstr(n3, "\"reachable\":false"));
    CU_ASSERT_PTR_NULL(strstr(C.out, "{\"id\":3,\"site\":0,\"reachable\":true"));
    rc = clu_run(&C, "ninesctl", 0, "status");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "unreachable"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "3:DOWN"));
    /* restart it: the cluster heals (the lower ids redial it) */
    clu_start(&C, 3);
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "status --json --wait-healthy 20"), 0);
    /* node 1 saw a new process (another incarnation), not a reconnect */
    CU_ASSERT_TRUE(clu_log_has(&C, 1, "peer 3 restarted"));
    const char *n1 = strstr(C.out, "{\"id\":1,\"site\":0,\"address\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n1);
    const char *p3 = strstr(n1, "{\"id\":3,\"site\":0,\"reachable\":true");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p3);
    CU_ASSERT_PTR_NOT_NULL(strstr(p3, "\"restarts\":1}"));
}

/* The messaging benchmark runs two nodes through the whole runtime (its
 * node 1 speaks the full message table of a node); it must complete and
 * report both measurements. Figures are not judged here. */
static void test_net_rtt_runs(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "timeout 60 %s/net_rtt --count 200 --sinks 2000 --json 2>&1",
             C.bindir);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    size_t n = fread(C.out, 1, sizeof C.out - 1, p);
    C.out[n] = '\0';
    int st = pclose(p);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"raw_tcp\":{\"p50_us\":"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"runtime\":{\"p50_us\":"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"one_way_msgs_per_s\":"));
    CU_ASSERT_PTR_NULL(strstr(C.out, "closing"));
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"4 nodes come up and see each other", test_all_up},
        {"bad input on a node port is dropped, node keeps serving", test_garbage_survived},
        {"a client may not send node-internal messages", test_client_internal_types_refused},
        {"killed node reported unreachable, restart heals", test_killed_node_unreachable},
        {"net_rtt measures through the runtime", test_net_rtt_runs},
        {NULL, NULL},
    };
    cu_add_suite("cluster_status", setup, teardown, cases);
}
