/* Cluster test: the cluster key with real processes (README.md "SECURITY").
 * `ninesctl keygen` writes a 0600 key file and will not overwrite it; four
 * nodes and the arbitrator with that key form the cluster and serve
 * (ninesctl proves the key; a plain client is still served by a node, the
 * arbitrator refuses it); node 4 restarted with another cluster's key is
 * refused by every peer, each side logging the other's address, while the
 * rest keep serving; back with the right key it rejoins; a key file of mode
 * 0644 keeps a node from starting, naming the file and its mode. */
#include "arbitrator/arb.h"
#include "clu.h"
#include "conf.h"
#include "cu_test.h"
#include "nines/errors.h"
#include "net/net.h"

static struct clu C;
static struct nines_conf conf;
static char kdir[64], key1[128], key2[128], conf2[160];
static uint16_t arb_port;
static pid_t arb_pid;

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t p = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        p = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return p;
}

/* Run a shell command, output (stdout and stderr) into C.out; exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(C.out, 1, sizeof C.out - 1, p);
    C.out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *bindir(void) { return getenv("NINES_BIN") ? getenv("NINES_BIN") : "build/bin"; }

static pid_t arb_start(void)
{
    char path[256], logp[200], data[200];
    snprintf(path, sizeof path, "%s/ninesarb", C.bindir);
    snprintf(logp, sizeof logp, "%s/arbitrator.log", C.dir);
    snprintf(data, sizeof data, "%s/arb", C.dir);
    pid_t p = fork();
    if (p == 0) {
        if (!freopen(logp, "a", stderr))
            _exit(126);
        execl(path, "ninesarb", "--config", C.conf, "--data", data, (char *)NULL);
        _exit(127);
    }
    return p;
}

static int setup(void)
{
    snprintf(kdir, sizeof kdir, "/tmp/nines_key_XXXXXX");
    if (!mkdtemp(kdir))
        return 1;
    snprintf(key1, sizeof key1, "%s/cluster.key", kdir);
    snprintf(key2, sizeof key2, "%s/other.key", kdir);
    if (sh("%s/ninesctl keygen %s", bindir(), key1) != 0 ||
        sh("%s/ninesctl keygen %s", bindir(), key2) != 0)
        return 1;
    arb_port = free_port();
    char extra[320];
    snprintf(extra, sizeof extra, "cluster_key %s\narbitrator 127.0.0.1:%u", key1, arb_port);
    if (!arb_port || clu_setup(&C, 4, extra) || nines_conf_load(C.conf, &conf))
        return 1;
    arb_pid = arb_start();
    /* the same cluster file, but another cluster's key */
    snprintf(conf2, sizeof conf2, "%s/other.conf", C.dir);
    if (sh("sed 's|^cluster_key .*|cluster_key %s|' %s > %s", key2, C.conf, conf2) != 0)
        return 1;
    return 0;
}

static int teardown(void)
{
    if (arb_pid > 0) {
        kill(arb_pid, SIGTERM);
        waitpid(arb_pid, NULL, 0);
    }
    int rc = clu_teardown(&C);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", kdir);
    return rc || system(cmd) != 0;
}

static void test_keygen(void)
{
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(key1, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    uint8_t k1[NINES_KEY_BYTES], k2[NINES_KEY_BYTES];
    CU_ASSERT_EQUAL(nines_key_load(key1, k1), 0);
    CU_ASSERT_EQUAL(nines_key_load(key2, k2), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(k1, k2, sizeof k1), 0);
    /* never overwritten without --force */
    CU_ASSERT_EQUAL(sh("%s/ninesctl keygen %s", bindir(), key1), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "exists: not overwritten"));
    uint8_t again[NINES_KEY_BYTES];
    CU_ASSERT_EQUAL(nines_key_load(key1, again), 0);
    CU_ASSERT_EQUAL(memcmp(k1, again, sizeof k1), 0);
    /* --force replaces it, mode 0600 even over a file that had another */
    char k3[160];
    snprintf(k3, sizeof k3, "%s/third.key", kdir);
    CU_ASSERT_EQUAL(sh("touch %s && chmod 644 %s", k3, k3), 0);
    CU_ASSERT_EQUAL(sh("%s/ninesctl keygen %s --force", bindir(), k3), 0);
    CU_ASSERT_EQUAL_FATAL(stat(k3, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(nines_key_load(k3, again), 0);
}

static void test_forms_and_serves(void)
{
    int rc = clu_run(&C, "ninesctl", 0, "status --wait-healthy 30");
    CU_ASSERT_EQUAL(rc, 0);
    if (rc)
        printf("\n%s\n", C.out);
    rc = clu_run(&C, "ninesctl", 1, "create-table t1 --columns \"id:int64,v:int64\" --key id");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "tables"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "t1"));
    /* the arbitrator answers keyed peers only */
    struct arb_status as;
    int arc = -1;
    for (int i = 0; i < 100 && arc; i++) {
        arc = arb_status(&conf, 1000, &as);
        if (arc)
            usleep(50 * 1000);
    }
    CU_ASSERT_EQUAL(arc, 0);
    struct net_client *cl = NULL;
    CU_ASSERT_EQUAL(net_client_connect(&cl, "127.0.0.1", arb_port, "clutest", 2000), NINES_EAUTH);
    struct nines_conf wrong;
    CU_ASSERT_EQUAL_FATAL(nines_conf_load(conf2, &wrong), 0);
    CU_ASSERT_EQUAL(arb_status(&wrong, 2000, &as), NINES_EAUTH);
    /* a plain client (the client library, tpcb) is still served by a node */
    CU_ASSERT_EQUAL_FATAL(net_client_connect(&cl, "127.0.0.1", (uint16_t)(C.base_port + 1),
                                             "clutest", 2000), 0);
    Nines__PingReq p = NINES__PING_REQ__INIT;
    p.seq = 3;
    struct net_msg_in m;
    CU_ASSERT_EQUAL(net_client_send(cl, NINES__MSG_TYPE__PING_REQ, &p.base), 0);
    CU_ASSERT_EQUAL(net_client_recv(cl, &m, 2000), 0);
    CU_ASSERT_EQUAL(m.type, NINES__MSG_TYPE__PING_CONF);
    net_client_close(cl);
    /* ninesctl with another cluster's key is refused by every node */
    CU_ASSERT_NOT_EQUAL(sh("%s/ninesctl --config %s tables", bindir(), conf2), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "another cluster's key"));
}

static void test_wrong_key_node(void)
{
    clu_stop(&C, 4, SIGTERM);
    char path[256], logp[160];
    snprintf(path, sizeof path, "%s/ninesd", C.bindir);
    snprintf(logp, sizeof logp, "%s/node4.log", C.dir);
    pid_t p = fork();
    if (p == 0) {
        if (!freopen(logp, "a", stderr))
            _exit(126);
        execl(path, "ninesd", "--config", conf2, "--node", "4", (char *)NULL);
        _exit(127);
    }
    C.pids[4] = p;
    /* every peer dials node 4, checks its proof and refuses it */
    int seen = 0;
    for (int i = 0; i < 200 && !seen; i++) {
        seen = clu_log_has(&C, 1, "node 4 (127.0.0.1:") &&
               clu_log_has(&C, 1, "its proof of the cluster key does not match") &&
               clu_log_has(&C, 4, "refused our key proof");
        if (!seen)
            usleep(50 * 1000);
    }
    CU_ASSERT_TRUE(seen);
    CU_ASSERT_TRUE(clu_log_has(&C, 4, "(127.0.0.1:"));
    CU_ASSERT_EQUAL(kill(p, 0), 0); /* it runs, alone */
    /* the others keep serving: a dictionary change commits without node 4 */
    int rc = clu_run(&C, "ninesctl", 1, "create-table t2 --columns \"id:int64\" --key id");
    CU_ASSERT_EQUAL(rc, 0);
    if (rc)
        printf("\n%s\n", C.out);
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "tables --node 1"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "t2"));
    clu_run(&C, "ninesctl", 0, "status --json");
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"reachable\":false"));
    /* the key never reaches a log */
    char hex[80];
    uint8_t k[NINES_KEY_BYTES];
    CU_ASSERT_EQUAL(nines_key_load(key2, k), 0);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", k[i]);
    for (int n = 1; n <= 4; n++)
        CU_ASSERT_FALSE(clu_log_has(&C, n, hex));
    /* back with the right key it rejoins */
    clu_stop(&C, 4, SIGTERM);
    clu_start(&C, 4);
    rc = clu_run(&C, "ninesctl", 0, "status --wait-healthy 60");
    CU_ASSERT_EQUAL(rc, 0);
    if (rc)
        printf("\n%s\n", C.out);
}

static void test_key_mode_refused(void)
{
    char bad[160], badconf[200];
    snprintf(bad, sizeof bad, "%s/open.key", kdir);
    snprintf(badconf, sizeof badconf, "%s/open.conf", C.dir);
    CU_ASSERT_EQUAL(sh("cp %s %s && chmod 644 %s", key1, bad, bad), 0);
    CU_ASSERT_EQUAL(sh("sed 's|^cluster_key .*|cluster_key %s|' %s > %s", bad, C.conf, badconf),
                    0);
    /* refused at start, before it listens: node 1's own port stays with node 1 */
    int rc = sh("%s/ninesd --config %s --node 1", bindir(), badconf);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, bad));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "mode 0644"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "owner only"));
    CU_ASSERT_EQUAL(sh("%s/ninesctl --config %s status", bindir(), badconf), 2);
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "status"), 0);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"ninesctl keygen: 0600, no overwrite without --force", test_keygen},
        {"keyed cluster forms and serves; arbitrator and ninesctl keyed", test_forms_and_serves},
        {"a node with another cluster's key is refused, the rest serve", test_wrong_key_node},
        {"a key file of mode 0644 stops a node at start", test_key_mode_refused},
        {NULL, NULL},
    };
    cu_add_suite("auth_cluster", setup, teardown, cases);
}
