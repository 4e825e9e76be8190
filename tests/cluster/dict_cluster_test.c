/* Cluster test of the replicated distribution dictionary: four real ninesd
 * processes with data folders. A table created through node 3 is visible
 * at every node with the same version; the placement report shows the
 * effective primaries; a node stopped during a create catches up when it
 * returns; a node whose dictionary file was corrupted refuses the file,
 * says so in its log and catches up from its peers; invalid definitions
 * come back as errors naming the offending value and the cluster keeps
 * serving. */
#include "cu_test.h"
#include "nclock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NNODES 4
#define WAIT_MS 10000 /* bound on waiting for the cluster to converge */
static char dir[64];
static char conf_path[128];
static pid_t pids[NNODES + 1];
static int base_port;
static const char *bindir;
static char out[65536];

static int pick_base_port(void)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int base = 20000 + (int)((getpid() * 13 + attempt * 101) % 30000);
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

static void stop_node(int id)
{
    if (pids[id] <= 0)
        return;
    kill(pids[id], SIGTERM);
    waitpid(pids[id], NULL, 0);
    pids[id] = 0;
}

/* Run ninesctl with args; stdout and stderr into out; exit status. */
static int ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int ctl(const char *fmt, ...)
{
    char args[1024], cmd[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s/ninesctl --config %s %s 2>&1", bindir, conf_path, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Dictionary version node `id` reports (-1 when it does not answer);
 * its table list JSON is copied into tables (if given). */
static long long node_version(int id, char *tables, size_t n)
{
    if (ctl("tables --json --node %d", id) != 0)
        return -1;
    const char *v = strstr(out, "\"version\":");
    if (!v)
        return -1;
    if (tables) {
        const char *t = strstr(out, "\"tables\":");
        snprintf(tables, n, "%s", t ? t : "");
    }
    return atoll(v + 10);
}

/* Wait (bounded) until every running node reports the same version and
 * table list; returns that version or -1. */
static long long converged(void)
{
    static char first[8192], other[8192];
    uint64_t deadline = nclock_ms() + WAIT_MS;
    do {
        long long v0 = -1;
        int same = 1;
        for (int i = 1; i <= NNODES && same; i++) {
            if (pids[i] <= 0)
                continue;
            long long v = node_version(i, v0 < 0 ? first : other, sizeof first);
            if (v < 0)
                same = 0;
            else if (v0 < 0)
                v0 = v;
            else if (v != v0 || strcmp(first, other) != 0)
                same = 0;
        }
        if (same && v0 >= 0)
            return v0;
        usleep(50 * 1000);
    } while (nclock_ms() < deadline);
    return -1;
}

/* Wait until node `viewer` sees node `id` up (or down). */
static int wait_peer(int viewer, int id, int up)
{
    uint64_t deadline = nclock_ms() + WAIT_MS;
    do {
        if (ctl("tables --json --node %d", viewer) == 0) {
            const char *l = strstr(out, "\"live\":[");
            const char *e = l ? strchr(l, ']') : NULL;
            int seen = 0;
            for (const char *p = l ? l + 8 : NULL; p && p < e; p++)
                if ((p == l + 8 || p[-1] == ',') && atoi(p) == id)
                    seen = 1;
            if (l && seen == up)
                return 1;
        }
        usleep(30 * 1000);
    } while (nclock_ms() < deadline);
    return 0;
}

static int log_has(int id, const char *text)
{
    char path[160], line[2048];
    snprintf(path, sizeof path, "%s/node%d.log", dir, id);
    FILE *f = fopen(path, "r");
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}

static int setup(void)
{
    bindir = getenv("NINES_BIN");
    if (!bindir)
        bindir = "build/bin";
    snprintf(dir, sizeof dir, "/tmp/nines_dict_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    base_port = pick_base_port();
    if (base_port < 0)
        return 1;
    snprintf(conf_path, sizeof conf_path, "%s/cluster.conf", dir);
    FILE *f = fopen(conf_path, "w");
    if (!f)
        return 1;
    fprintf(f, "cluster dtest\nheartbeat_ms 20\nreconnect_min_ms 5\nreconnect_max_ms 100\n");
    for (int i = 1; i <= NNODES; i++) {
        char data[128];
        snprintf(data, sizeof data, "%s/node%d", dir, i);
        if (mkdir(data, 0755) != 0)
            return 1;
        fprintf(f, "node %d site %d 127.0.0.1:%d data %s\n", i, (i - 1) % 2, base_port + i, data);
    }
    fclose(f);
    for (int i = 1; i <= NNODES; i++)
        pids[i] = start_node(i);
    return ctl("status --wait-healthy 20") == 0 ? 0 : 1;
}

static int teardown(void)
{
    for (int i = 1; i <= NNODES; i++)
        stop_node(i);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}

static void test_create_visible_everywhere(void)
{
    long long v0 = converged();
    CU_ASSERT_EQUAL_FATAL(v0, 0); /* fresh data folders: empty dictionary */
    int rc = ctl("create-table subs --columns \"id:int64,name:varstring(32):null,bal:int64\" "
                 "--key id --frags 8 --node 3");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "created table 'subs' (id 1): dictionary version 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "confirmed by nodes: 1 2 3 4"));
    /* committed at every node before the answer: each node, asked itself */
    for (int i = 1; i <= NNODES; i++) {
        char tables[4096];
        CU_ASSERT_EQUAL(node_version(i, tables, sizeof tables), 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(tables, "{\"id\":1,\"name\":\"subs\",\"method\":\"hash\","
                                              "\"fragments\":8,\"replicas\":2"));
        char file[160];
        struct stat st;
        snprintf(file, sizeof file, "%s/node%d/dict.ndd", dir, i);
        CU_ASSERT_EQUAL(stat(file, &st), 0); /* saved before the node confirmed */
    }
    CU_ASSERT_EQUAL(converged(), 1);
}

static void test_placement_report(void)
{
    int rc = ctl("placement subs --json --node 2");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"table\":\"subs\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"dict_version\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"fragment\":7,"));
    CU_ASSERT_PTR_NULL(strstr(out, "{\"fragment\":8,"));
    /* 8 fragments on 2 + 2 nodes: 2 primaries and 2 standbys each, every
     * cross-site pair shares 2; all up: effective = primary */
    for (int i = 1; i <= NNODES; i++) {
        char want[96];
        snprintf(want, sizeof want, "{\"id\":%d,\"site\":%d,\"primaries\":2,\"standbys\":2}", i,
                 (i - 1) % 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"max_pair\":2,\"min_pair\":2,\"same_site\":0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"live\":[1,2,3,4]"));
    for (const char *p = strstr(out, "{\"fragment\":"); p; p = strstr(p + 1, "{\"fragment\":")) {
        unsigned f, pr, sb, eff;
        CU_ASSERT_EQUAL(sscanf(p, "{\"fragment\":%u,\"primary\":%u,\"standby\":%u,\"effective\":%u",
                               &f, &pr, &sb, &eff), 4);
        CU_ASSERT_EQUAL(eff, pr);
    }
    rc = ctl("placement subs");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "fragment  primary  standby  effective"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "largest pair count 2, least possible 2"));
    rc = ctl("placement nosuch");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no table 'nosuch'"));
}

static void test_down_node_catches_up(void)
{
    stop_node(2);
    CU_ASSERT_FATAL(wait_peer(1, 2, 0));
    CU_ASSERT_FATAL(wait_peer(3, 2, 0));
    CU_ASSERT_FATAL(wait_peer(4, 2, 0));
    /* node 2 is down: its fragments are executed by their hot standbys */
    int rc = ctl("placement subs --json --node 1");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NULL(strstr(out, "\"effective\":2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"live\":[1,3,4]"));
    rc = ctl("create-table calls --columns \"caller:varstring(16),ts:timestamp,dur:int32\" "
             "--key caller,ts --range-splits g,p --scheme circular --node 4");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "created table 'calls' (id 2): dictionary version 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "confirmed by nodes: 1 3 4"));
    CU_ASSERT_EQUAL(converged(), 2); /* nodes 1, 3, 4 */
    pids[2] = start_node(2);
    CU_ASSERT_EQUAL(converged(), 2); /* node 2 too, with the same tables */
    char tables[4096];
    CU_ASSERT_EQUAL(node_version(2, tables, sizeof tables), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(tables, "\"name\":\"calls\",\"method\":\"range\","
                                          "\"fragments\":3"));
    CU_ASSERT(log_has(2, "loaded dictionary version 1"));
    CU_ASSERT(log_has(2, "caught up from node"));
}

static void test_corrupt_file_refused(void)
{
    stop_node(4);
    char file[160];
    snprintf(file, sizeof file, "%s/node4/dict.ndd", dir);
    FILE *f = fopen(file, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fseek(f, 40, SEEK_SET), 0); /* a payload byte */
    int c = fgetc(f);
    CU_ASSERT_EQUAL(fseek(f, 40, SEEK_SET), 0);
    fputc(c ^ 0x10, f);
    fclose(f);
    pids[4] = start_node(4);
    CU_ASSERT_EQUAL(converged(), 2);
    CU_ASSERT(log_has(4, "is corrupt and NOT used"));
    CU_ASSERT(log_has(4, "starting empty at version 0"));
    CU_ASSERT(log_has(4, "dictionary version 0 -> 2"));
    char aside[180];
    struct stat st;
    snprintf(aside, sizeof aside, "%s.corrupt", file);
    CU_ASSERT_EQUAL(stat(aside, &st), 0);
    /* and the file was written again from the fetched dictionary */
    uint64_t deadline = nclock_ms() + WAIT_MS;
    while (stat(file, &st) != 0 && nclock_ms() < deadline)
        usleep(20 * 1000);
    CU_ASSERT_EQUAL(stat(file, &st), 0);
}

static void test_invalid_definitions(void)
{
    int rc = ctl("create-table bad --columns \"id:int64,id:int32\" --key id --node 2");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "duplicate column name 'id'"));
    rc = ctl("create-table bad --columns \"id:int64,v:int32\" --node 3");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "table 'bad' has no primary key"));
    rc = ctl("create-table bad --columns \"id:int64\" --key id --frags 0 --node 4");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "table 'bad': zero fragments"));
    rc = ctl("create-table subs --columns \"id:int64\" --key id --node 1");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "table 'subs' already exists"));
    rc = ctl("create-table bad --columns \"id:blob\" --key id");
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unknown column type 'blob'"));
    rc = ctl("create-table bad --columns \"id:int64\" --key nope");
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--key column 'nope'"));
    rc = ctl("drop-table nosuch --node 3");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no table named 'nosuch'"));
    /* nothing changed, and the cluster keeps serving changes */
    CU_ASSERT_EQUAL(converged(), 2);
    rc = ctl("create-table ok --columns \"k:int32\" --key k --frags 4 --node 2");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "dictionary version 3"));
    rc = ctl("drop-table ok --node 3");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "dropped table 'ok': dictionary version 4"));
    CU_ASSERT_EQUAL(converged(), 4);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"create through node 3 is committed at all 4 nodes", test_create_visible_everywhere},
        {"placement report with effective primaries", test_placement_report},
        {"a node down during a create catches up on restart", test_down_node_catches_up},
        {"a corrupt dictionary file is refused and replaced from peers",
         test_corrupt_file_refused},
        {"invalid definitions are refused with the value; cluster keeps serving",
         test_invalid_definitions},
        {NULL, NULL},
    };
    cu_add_suite("dict_cluster", setup, teardown, cases);
}
