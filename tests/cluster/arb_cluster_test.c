/* Cluster test: the `ninesarb` binary beside four real ninesd nodes.
 * `ninesctl status` shows it reachable with its last grant; arb_vote (the
 * supervisor's call) against the process: one side of a 2|2 split
 * granted, the other refused naming it; a SIGKILL and restart keep the
 * grant; garbage on its port does not stop it; with the arbitrator down
 * status says UNREACHABLE (the nodes' health does not depend on it); a
 * corrupt grant record keeps it from starting, naming the file. */
#include "arbitrator/arb.h"
#include "clu.h"
#include "conf.h"
#include "cu_test.h"
#include "nines/errors.h"

static struct clu C;
static struct nines_conf conf;
static uint16_t arb_port;
static pid_t arb_pid;
static char arb_dir[160];

#define B(id) ((uint64_t)1 << ((id) - 1))
#define ALL4 (B(1) | B(2) | B(3) | B(4))
/* an epoch far above any the nodes reach in this test, so the votes here
 * never meet a real node-set round */
#define EPOCH 1000

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

/* Start ninesarb in the background (log appended to DIR/arbitrator.log). */
static pid_t arb_start(void)
{
    char path[256], logp[200];
    snprintf(path, sizeof path, "%s/ninesarb", C.bindir);
    snprintf(logp, sizeof logp, "%s/arbitrator.log", C.dir);
    pid_t p = fork();
    if (p == 0) {
        if (!freopen(logp, "a", stderr))
            _exit(126);
        execl(path, "ninesarb", "--config", C.conf, "--data", arb_dir, (char *)NULL);
        _exit(127);
    }
    return p;
}

static void arb_stop(int sig)
{
    if (arb_pid > 0) {
        kill(arb_pid, sig);
        waitpid(arb_pid, NULL, 0);
        arb_pid = 0;
    }
}

/* Wait until the arbitrator answers STATUS (it listens before serving). */
static int arb_wait(void)
{
    struct arb_status st;
    for (int i = 0; i < 100; i++) {
        if (arb_status(&conf, 1000, &st) == 0)
            return 0;
        usleep(50 * 1000);
    }
    return -1;
}

static int setup(void)
{
    arb_port = free_port();
    char extra[64];
    snprintf(extra, sizeof extra, "arbitrator 127.0.0.1:%u", arb_port);
    if (!arb_port || clu_setup(&C, 4, extra))
        return 1;
    snprintf(arb_dir, sizeof arb_dir, "%s/arb", C.dir);
    if (nines_conf_load(C.conf, &conf))
        return 1;
    arb_pid = arb_start();
    return arb_wait() == 0 &&
                   clu_run(&C, "ninesctl", 0, "status --wait-healthy 20") == 0
               ? 0
               : 1;
}

static int teardown(void)
{
    arb_stop(SIGTERM);
    return clu_teardown(&C);
}

static Nines__NodeSet nodeset(uint64_t epoch, uint64_t members, uint32_t coord)
{
    Nines__NodeSet ns = NINES__NODE_SET__INIT;
    ns.epoch = epoch;
    ns.members = members;
    ns.current = members;
    ns.coordinator = coord;
    return ns;
}

static void test_status_shows_arbitrator(void)
{
    int rc = clu_run(&C, "ninesctl", 0, "status");
    CU_ASSERT_EQUAL(rc, 0);
    char want[128];
    snprintf(want, sizeof want, "arbitrator: 127.0.0.1:%u reachable from here", arb_port);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "nothing granted yet"));
    /* the node set line is there, whether or not the nodes report one yet */
    CU_ASSERT(strstr(C.out, "node set: epoch ") || strstr(C.out, "no node set installed"));
    if (rc)
        printf("\n%s\n", C.out);
    rc = clu_run(&C, "ninesctl", 0, "status --json");
    CU_ASSERT_EQUAL(rc, 0);
    snprintf(want, sizeof want,
             "\"arbitrator\":{\"configured\":true,\"address\":\"127.0.0.1:%u\",\"reachable\":true",
             arb_port);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"node_set\":{\"installed\":"));
}

static void test_votes(void)
{
    struct arb_answer a;
    Nines__NodeSet pa = nodeset(EPOCH, B(1) | B(3), 1), pb = nodeset(EPOCH, B(2) | B(4), 2);
    CU_ASSERT_EQUAL(arb_vote(&conf, 2, ALL4, &pb, 2000, &a), 0);
    CU_ASSERT_TRUE(a.granted);
    CU_ASSERT_EQUAL(arb_vote(&conf, 1, ALL4, &pa, 2000, &a), 0);
    CU_ASSERT_FALSE(a.granted);
    CU_ASSERT_EQUAL(a.error, NINES_ESTATE);
    CU_ASSERT_EQUAL(a.members, B(2) | B(4));
    CU_ASSERT_PTR_NOT_NULL(strstr(a.reason, "already granted to members {2,4}"));
    /* node 4, the successor on side B, proposing the same set */
    pb.coordinator = 4;
    CU_ASSERT_EQUAL(arb_vote(&conf, 4, ALL4, &pb, 2000, &a), 0);
    CU_ASSERT_TRUE(a.granted);
    CU_ASSERT_EQUAL(clu_run(&C, "ninesctl", 0, "status"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "last grant: epoch 1000 to members 2 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "3 votes, 1 grants, 1 refused"));
}

static void test_sigkill_restart_keeps_grant(void)
{
    arb_stop(SIGKILL);
    arb_pid = arb_start();
    CU_ASSERT_EQUAL_FATAL(arb_wait(), 0);
    struct arb_answer a;
    Nines__NodeSet pa = nodeset(EPOCH, B(1) | B(3), 3);
    CU_ASSERT_EQUAL(arb_vote(&conf, 3, ALL4, &pa, 2000, &a), 0);
    CU_ASSERT_FALSE(a.granted);
    CU_ASSERT_EQUAL(a.members, B(2) | B(4));
    struct arb_status st;
    CU_ASSERT_EQUAL(arb_status(&conf, 2000, &st), 0);
    CU_ASSERT_EQUAL(st.epoch, EPOCH);
    CU_ASSERT_EQUAL(st.members, B(2) | B(4));
}

static void test_garbage_survived(void)
{
    static const char *inputs[] = {"GET / HTTP/1.0\r\n\r\n", "\x05\x00\x00\x00\x08",
                                   "\xff\xff\xff\x7f"};
    for (size_t k = 0; k < 3; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(arb_port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
        CU_ASSERT(write(fd, inputs[k], strlen(inputs[k])) > 0);
        shutdown(fd, SHUT_WR);
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[256];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            ;
        CU_ASSERT(n <= 0);
        close(fd);
    }
    CU_ASSERT_EQUAL(kill(arb_pid, 0), 0);
    struct arb_status st;
    CU_ASSERT_EQUAL(arb_status(&conf, 2000, &st), 0);
    CU_ASSERT_EQUAL(st.epoch, EPOCH);
}

static void test_down_then_corrupt(void)
{
    arb_stop(SIGTERM);
    /* the nodes' health does not depend on the arbitrator; status says so */
    int rc = clu_run(&C, "ninesctl", 0, "status");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "UNREACHABLE from here"));
    rc = clu_run(&C, "ninesctl", 0, "status --json");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"address\":\"127.0.0.1:"));
    char want[96];
    snprintf(want, sizeof want, "\"address\":\"127.0.0.1:%u\",\"reachable\":false", arb_port);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, want));
    /* flip one byte of the record: the arbitrator refuses to start */
    char path[256];
    snprintf(path, sizeof path, "%s/arbitrator.grant", arb_dir);
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 30, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 30, SEEK_SET);
    fputc(ch ^ 0x01, f);
    fclose(f);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s/ninesarb --config %s --data %s 2>&1", C.bindir, C.conf,
             arb_dir);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    size_t n = fread(C.out, 1, sizeof C.out - 1, p);
    C.out[n] = '\0';
    int st = pclose(p);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "CRC-32C mismatch"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "arbitrator.grant"));
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"status_shows_arbitrator", test_status_shows_arbitrator},
        {"votes", test_votes},
        {"sigkill_restart_keeps_grant", test_sigkill_restart_keeps_grant},
        {"garbage_survived", test_garbage_survived},
        {"down_then_corrupt", test_down_then_corrupt},
        {NULL, NULL},
    };
    cu_add_suite("arb_cluster", setup, teardown, cases);
}
