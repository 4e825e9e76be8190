/* Cluster test: four real ninesd processes on loopback (2 sites).
 * `ninesctl status` sees all of them healthy; garbage sent to a node's port
 * does not stop it serving; a killed node is reported unreachable by
 * ninesctl and as DOWN by every other node. */
#include "cu_test.h"
#include "nclock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define NNODES 4
static char dir[64];
static char conf_path[128];
static pid_t pids[NNODES + 1];
static int base_port;
static const char *bindir;

/* Find a base port with NNODES+1 free consecutive ports. */
static int pick_base_port(void)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int base = 20000 + (int)((getpid() * 7 + attempt * 97) % 30000);
        int ok = 1;
        for (int i = 0; i <= NNODES && ok; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(base + i))};
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
                ok = 0;
            close(fd);
        }
        if (ok)
            return base;
    }
    return -1;
}

static pid_t start_node(int id)
{
    char path[256], node[16], logp[160];
    snprintf(path, sizeof path, "%s/ninesd", bindir);
    snprintf(node, sizeof node, "%d", id);
    snprintf(logp, sizeof logp, "%s/node%d.log", dir, id);
    pid_t p = fork();
    if (p == 0) {
        FILE *f = freopen(logp, "a", stderr);
        (void)f;
        execl(path, "ninesd", "--config", conf_path, "--node", node, (char *)NULL);
        _exit(127);
    }
    return p;
}

/* Run ninesctl with args; capture stdout into out; return exit status. */
static int ctl(char *out, size_t outsz, const char *args)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/ninesctl --config %s %s 2>/dev/null", bindir, conf_path, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void)
{
    bindir = getenv("NINES_BIN");
    if (!bindir)
        bindir = "build/bin";
    snprintf(dir, sizeof dir, "/tmp/nines_cluster_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    base_port = pick_base_port();
    if (base_port < 0)
        return 1;
    snprintf(conf_path, sizeof conf_path, "%s/cluster.conf", dir);
    FILE *f = fopen(conf_path, "w");
    if (!f)
        return 1;
    fprintf(f, "cluster ctest\nheartbeat_ms 20\nreconnect_min_ms 5\nreconnect_max_ms 100\n");
    for (int i = 1; i <= NNODES; i++)
        fprintf(f, "node %d site %d 127.0.0.1:%d\n", i, (i - 1) % 2, base_port + i);
    fclose(f);
    for (int i = 1; i <= NNODES; i++)
        pids[i] = start_node(i);
    return 0;
}

static int teardown(void)
{
    for (int i = 1; i <= NNODES; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}

static char out[16384];

static void test_all_up(void)
{
    int rc = ctl(out, sizeof out, "status --json --wait-healthy 20");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"healthy\":true"));
    for (int i = 1; i <= NNODES; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"id\":%d,\"site\":%d,\"address\":", i, (i - 1) % 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    }
    CU_ASSERT_PTR_NULL(strstr(out, "\"reachable\":false"));
    rc = ctl(out, sizeof out, "status");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "all nodes up"));
}

/* Garbage, a truncated frame and an oversized length prefix on node 1's
 * port: each connection is dropped, node 1 keeps serving. */
static void test_garbage_survived(void)
{
    static const char *inputs[] = {"GET / HTTP/1.0\r\n\r\n", "\x05\x00\x00\x00\x08", "\xff\xff\xff\x7f"};
    for (size_t k = 0; k < 3; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(base_port + 1))};
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
    CU_ASSERT_EQUAL(kill(pids[1], 0), 0);
    int rc = ctl(out, sizeof out, "status --json --wait-healthy 10");
    CU_ASSERT_EQUAL(rc, 0);
    char log[160];
    snprintf(log, sizeof log, "grep -c 'clos' %s/node1.log >/dev/null", dir);
    CU_ASSERT_EQUAL(system(log), 0); /* the reasons were logged */
}

static void test_killed_node_unreachable(void)
{
    CU_ASSERT_EQUAL(kill(pids[3], SIGKILL), 0);
    waitpid(pids[3], NULL, 0);
    pids[3] = 0;
    /* wait until every surviving node sees node 3 down */
    uint64_t deadline = nclock_ms() + 10000;
    int rc;
    do {
        rc = ctl(out, sizeof out, "status --json");
    } while (strstr(out, "{\"id\":3,\"site\":0,\"reachable\":true") && nclock_ms() < deadline);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"healthy\":false"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"id\":3,\"site\":0,\"address\""));
    char *n3 = strstr(out, "{\"id\":3,\"site\":0,\"address\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n3);
    CU_ASSERT_PTR_NOT_NULL(strstr(n3, "\"reachable\":false"));
    /* the other nodes report it: no surviving node sees peer 3 reachable */
    CU_ASSERT_PTR_NULL(strstr(out, "{\"id\":3,\"site\":0,\"reachable\":true"));
    rc = ctl(out, sizeof out, "status");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unreachable"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "3:DOWN"));
    /* restart it: the cluster heals (the lower ids redial it) */
    pids[3] = start_node(3);
    rc = ctl(out, sizeof out, "status --json --wait-healthy 20");
    CU_ASSERT_EQUAL(rc, 0);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"4 nodes come up and see each other", test_all_up},
        {"bad input on a node port is dropped, node keeps serving", test_garbage_survived},
        {"killed node reported unreachable, restart heals", test_killed_node_unreachable},
        {NULL, NULL},
    };
    cu_add_suite("cluster_status", setup, teardown, cases);
}
