/* Shared helpers for cluster tests: a temporary folder with a cluster file
 * on free loopback ports, real ninesd processes, and running the tools
 * (ninesctl, tpcb, ...) with their output captured. Header-only: each
 * cluster test program includes it once. */
#ifndef NINES_CLU_H
#define NINES_CLU_H
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

#define CLU_MAX 8
struct clu {
    int n;                       /* nodes 1..n, site (id-1)%2 */
    char dir[64];                /* temp folder: cluster.conf, nodeN.log, nodeN/ */
    char conf[128];
    int base_port;
    const char *bindir;          /* NINES_BIN or build/bin */
    pid_t pids[CLU_MAX + 1];
    char out[1 << 16];           /* last captured output */
};

/* A base port with n+1 free consecutive ports, TCP and UDP (a node's
 * heartbeats use its port number over UDP), and +1000 for rdma sides. */
static inline int clu_pick_port(int n)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        int base = 20000 + (int)((getpid() * 7 + attempt * 97) % 30000);
        int ok = 1;
        /* the nodes' ports (TCP and UDP) and their SQL ports (clu_sql_port:
         * base + 500 + id), which may fall among the ephemeral ports of
         * other connections */
        for (int k = 0; k <= 2 * n + 1 && ok; k++)
            for (int udp = 0; udp < 2 && ok; udp++) {
                int port = k <= n ? base + k : base + 500 + (k - n);
                if (k > n && udp)
                    continue;
                int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
                struct sockaddr_in a = {.sin_family = AF_INET,
                                        .sin_port = htons((uint16_t)port)};
                a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
                if (fd >= 0)
                    close(fd);
            }
        if (ok)
            return base;
    }
    return -1;
}

static inline pid_t clu_start(struct clu *c, int id)
{
    char path[256], node[16], logp[160];
    snprintf(path, sizeof path, "%s/ninesd", c->bindir);
    snprintf(node, sizeof node, "%d", id);
    snprintf(logp, sizeof logp, "%s/node%d.log", c->dir, id);
    pid_t p = fork();
    if (p == 0) {
        if (!freopen(logp, "a", stderr))
            _exit(126);
        execl(path, "ninesd", "--config", c->conf, "--node", node, (char *)NULL);
        _exit(127);
    }
    c->pids[id] = p;
    return p;
}

/* Stop node id with sig (SIGTERM: orderly, SIGKILL: crash) and reap it. */
static inline void clu_stop(struct clu *c, int id, int sig)
{
    if (c->pids[id] > 0) {
        kill(c->pids[id], sig);
        waitpid(c->pids[id], NULL, 0);
        c->pids[id] = 0;
    }
}

/* Write the cluster file (extra: more lines, may be NULL) and start n nodes;
 * sql: every node also listens for PostgreSQL clients on clu_sql_port(c, id). */
static inline int clu_setup_with(struct clu *c, int n, const char *extra, int sql);
static inline int clu_setup(struct clu *c, int n, const char *extra)
{
    return clu_setup_with(c, n, extra, 0);
}
static inline int clu_sql_port(const struct clu *c, int id) { return c->base_port + 500 + id; }
static inline int clu_setup_with(struct clu *c, int n, const char *extra, int sql)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    c->bindir = getenv("NINES_BIN") ? getenv("NINES_BIN") : "build/bin";
    snprintf(c->dir, sizeof c->dir, "/tmp/nines_clu_XXXXXX");
    if (!mkdtemp(c->dir) || (c->base_port = clu_pick_port(n)) < 0)
        return 1;
    snprintf(c->conf, sizeof c->conf, "%s/cluster.conf", c->dir);
    FILE *f = fopen(c->conf, "w");
    if (!f)
        return 1;
    /* sanitizer builds run several times slower (and their executor turns
     * longer): slower heartbeats there, so that a busy node is not taken
     * for a dead one (supervisor/README.md "I-am-alive") */
    const char *bin = getenv("NINES_BIN");
    int hb = bin && (strstr(bin, "asan") || strstr(bin, "tsan")) ? 50 : 20;
    fprintf(f, "cluster clutest\nheartbeat_ms %d\nreconnect_min_ms 5\nreconnect_max_ms 100\n%s\n",
            hb, extra ? extra : "");
    for (int i = 1; i <= n; i++) {
        char d[128];
        snprintf(d, sizeof d, "%s/node%d", c->dir, i);
        mkdir(d, 0755);
        fprintf(f, "node %d site %d 127.0.0.1:%d data %s", i, (i - 1) % 2, c->base_port + i, d);
        if (sql)
            fprintf(f, " sql 127.0.0.1:%d", clu_sql_port(c, i));
        fprintf(f, "\n");
    }
    fclose(f);
    for (int i = 1; i <= n; i++)
        clu_start(c, i);
    return 0;
}

static inline int clu_teardown(struct clu *c)
{
    for (int i = 1; i <= c->n; i++)
        clu_stop(c, i, SIGTERM);
    if (getenv("NINES_KEEP_TEST_DIR"))
        return 0;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", c->dir);
    return system(cmd) == 0 ? 0 : 1;
}

/* Run "BINDIR/<prog> --config CONF <args>" capturing stdout (stderr too
 * when both is set) into c->out; returns the exit status (-1: signal). */
static inline int clu_run(struct clu *c, const char *prog, int both, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int clu_run(struct clu *c, const char *prog, int both, const char *fmt, ...)
{
    char args[512], cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s/%s --config %s %s %s", c->bindir, prog, c->conf, args,
             both ? "2>&1" : "2>/dev/null");
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(c->out, 1, sizeof c->out - 1, p);
    c->out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run a shell command line capturing stdout and stderr into c->out;
 * returns the exit status (-1: signal). */
static inline int clu_sh(struct clu *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int clu_sh(struct clu *c, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(c->out, 1, sizeof c->out - 1, p);
    c->out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Does node id's log contain text? */
static inline int clu_log_has(const struct clu *c, int id, const char *text)
{
    char path[160], line[2048];
    snprintf(path, sizeof path, "%s/node%d.log", c->dir, id);
    FILE *f = fopen(path, "r");
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}
#endif
