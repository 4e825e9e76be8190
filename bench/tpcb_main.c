/* tpcb — TPC-B-like benchmark client (and the two-update scale-up test).
 *
 *   tpcb --config FILE [--clients N] [--window W] [--duration S] [--scale S]
 *        [--two-upd] [--json] [--plot FILE.svg] [--seed X] [--no-verify]
 *        [--journal FILE] [--first-node ID | --only-node ID] [--timeout-ms MS]
 *
 * N threads, each with its own client connection, keep W procedure calls
 * in flight (pipelined, nines_tpcb_async + nines_poll) for S seconds (or
 * until SIGINT or SIGTERM ends the interval early: bench/repair.sh), then
 * wait for the stragglers. Threads rather than one event loop over N
 * connections: nines_poll waits on one connection, so a single loop would
 * have to spin over all of them with zero timeouts and take CPU from the
 * nodes on the same cores; a thread per connection sleeps in poll().
 *
 * Random inputs (simplified TPC-B): aid uniform over all 100,000·S
 * accounts, tid uniform over the 10·S tellers, bid = the teller's branch
 * (tid / 10), delta uniform in [-999999, 999999]. --two-upd: k1, k2 uniform
 * over 100,000·S rows of t1 and t2.
 *
 * Prints TPS, response times (avg, p50, p95, p99, max), aborts by error,
 * node messages per transaction (STATUS_CONF msgs_in/msgs_out of every
 * node before and after), CPU per transaction (node processes found as
 * "ninesd" in /proc, else client only — said so), where the clients
 * landed and each node's CPU per transaction (STATUS_CONF cpu_us before
 * and after; max/avg), a text histogram and,
 * with --plot, an SVG of the response-time distribution (x: response time,
 * y: % of transactions). Then checks the TPC-B invariant with scans:
 * sum(account.balance) = sum(teller.balance) = sum(branch.balance) =
 * sum(history.delta) (two-upd: sum(t1.v) = sum(t2.v)); exit 1 on FAIL.
 *
 * --journal FILE (TPC-B only) writes one line per request with its outcome
 * as this client saw it, for the failure drills' checker (tools/drill/
 * drill_check_main.c, format in tools/drill/README.md "Journal"):
 *   A thread seq txn aid tid bid delta balance t_submit_us t_done_us
 *   R thread seq txn aid tid bid delta code t_submit_us t_done_us detail
 *   U thread seq txn aid tid bid delta code t_submit_us t_done_us detail
 * A = acknowledged (committed, the account's new balance), R = refused or
 * aborted (the server said so, or nothing was sent), U = outcome unknown
 * (NINES_EINDOUBT, the connection lost or no answer in time: it may have
 * committed). txn is the transaction id when the library reports it (0
 * while it does not); times are wall-clock µs (CLOCK_REALTIME) so a script
 * can place a kill between them. Without --first-node / --only-node the
 * library spreads the clients over the nodes (client/README.md
 * "Spreading"). --first-node ID connects to that node first (the others
 * follow for failover; no spreading); --only-node ID to that node
 * alone (no failover: a drill's client against a minority node). */
#include "nines/nines.h"
#include "tpcb_schema.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *opt_config, *opt_plot;
static int opt_clients = 4, opt_window = 16;
static double opt_duration = 10;
static int64_t opt_scale = 1;
static bool opt_two, opt_json, opt_verify = true;
static uint64_t opt_seed = 1;
static const char *opt_journal;
static uint32_t opt_first_node, opt_only_node;
static int opt_timeout_ms = 2000;
static FILE *journal;

static atomic_int stop_flag;

#define NERR 32   /* -code buckets for error counts */

struct bench_slot {
    uint64_t t0;
    bool busy;                  /* submitted, callback not yet made */
    struct bench_thread *th;
    /* the request in flight, for the journal */
    uint64_t seq, t0_wall_us;
    int64_t aid, tid, bid, delta;
};

struct bench_thread {
    int idx;
    pthread_t th;
    nines_conn *c;
    uint64_t rng;
    struct bench_slot *slots;
    uint64_t *lat;          /* response times, ns, of committed calls */
    size_t nlat, caplat;
    uint64_t commits, errs[NERR + 1];
    char last_err[256];
    int fatal;
    uint64_t seq;               /* requests submitted (journal sequence) */
};

/* ---- journal (--journal) ------------------------------------------------- */

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Errors after which the transaction may have committed: the library's own
 * (connection lost, no answer in time, a frame it could not read) and the
 * server's NINES_EINDOUBT. NINES_ETIMEDOUT is also what a controller says
 * when it aborted a transaction before the decision; counting that as
 * unknown only weakens the "aborted absent" check, never fails it falsely. */
static bool outcome_unknown(int rc)
{
    switch (rc) {
    case NINES_EINDOUBT:
    case NINES_ECLOSED:
    case NINES_ETIMEDOUT:
    case NINES_EPROTO:
    case NINES_ETOOBIG:
    case NINES_ENOMEM:
    case NINES_ESYS:
        return true;
    default:
        return false;
    }
}

/* One line per request; stdio locks the stream per call, so threads' lines
 * do not interleave. sent: the request left the client (else nothing was
 * queued and it is refused whatever the code). */
static void journal_write(const struct bench_thread *t, const struct bench_slot *s, int rc,
                          int64_t value, const char *detail, bool sent)
{
    if (!journal)
        return;
    char kind = rc == 0 ? 'A' : sent && outcome_unknown(rc) ? 'U' : 'R';
    char d[200];
    size_t i = 0;
    for (; detail && detail[i] && i < sizeof d - 1; i++)
        d[i] = detail[i] == '\n' || detail[i] == '\r' ? ' ' : detail[i];
    d[i] = '\0';
    fprintf(journal, "%c %d %llu 0 %lld %lld %lld %lld %lld %llu %llu%s%s\n", kind, t->idx,
            (unsigned long long)s->seq, (long long)s->aid, (long long)s->tid, (long long)s->bid,
            (long long)s->delta, (long long)(rc == 0 ? value : rc),
            (unsigned long long)s->t0_wall_us, (unsigned long long)wall_us(), rc ? " " : "",
            rc ? (d[0] ? d : nines_strerror(rc)) : "");
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int64_t rng_range(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static int bench_submit(struct bench_thread *t, struct bench_slot *s);

static void bench_done(void *arg, int rc, int64_t value, const char *detail)
{
    struct bench_slot *s = arg;
    struct bench_thread *t = s->th;
    uint64_t dt = nclock_ns() - s->t0;
    s->busy = false;
    journal_write(t, s, rc, value, detail, true);
    if (rc == 0) {
        t->commits++;
        if (t->nlat == t->caplat) {
            size_t n = t->caplat ? t->caplat * 2 : 65536;
            uint64_t *p = realloc(t->lat, n * sizeof *p);
            if (p) {
                t->lat = p;
                t->caplat = n;
            }
        }
        if (t->nlat < t->caplat)
            t->lat[t->nlat++] = dt;
    } else {
        int k = -rc;
        t->errs[k > 0 && k <= NERR ? k : 0]++;
        snprintf(t->last_err, sizeof t->last_err, "%s: %s", nines_strerror(rc), detail);
    }
    if (!atomic_load(&stop_flag))
        bench_submit(t, s);
}

static int bench_submit(struct bench_thread *t, struct bench_slot *s)
{
    int64_t accounts = TPCB_ACCOUNTS_PER_BRANCH * opt_scale;
    s->t0 = nclock_ns();
    s->t0_wall_us = journal ? wall_us() : 0;
    s->seq = ++t->seq;
    int rc;
    if (opt_two) {
        rc = nines_two_upd_async(t->c, rng_range(&t->rng, 0, accounts - 1),
                                 rng_range(&t->rng, 0, accounts - 1),
                                 rng_range(&t->rng, -999999, 999999), bench_done, s);
    } else {
        int64_t tid = rng_range(&t->rng, 0, TPCB_TELLERS_PER_BRANCH * opt_scale - 1);
        s->aid = rng_range(&t->rng, 0, accounts - 1);
        s->tid = tid;
        s->bid = tid / TPCB_TELLERS_PER_BRANCH;
        s->delta = rng_range(&t->rng, -999999, 999999);
        rc = nines_tpcb_async(t->c, s->aid, s->tid, s->bid, s->delta, bench_done, s);
    }
    if (rc) {
        journal_write(t, s, rc, 0, nines_conn_errdetail(t->c), false);
        int k = -rc;
        t->errs[k > 0 && k <= NERR ? k : 0]++;
        snprintf(t->last_err, sizeof t->last_err, "%s: %s", nines_strerror(rc),
                 nines_conn_errdetail(t->c));
    } else {
        s->busy = true;
    }
    return rc;
}

static void *bench_thread_main(void *arg)
{
    struct bench_thread *t = arg;
    for (int i = 0; i < opt_window; i++) {
        t->slots[i].th = t;
        bench_submit(t, &t->slots[i]);
    }
    while (!atomic_load(&stop_flag) || nines_conn_inflight(t->c) > 0) {
        int n = nines_poll(t->c, 100);
        if (n < 0) {
            snprintf(t->last_err, sizeof t->last_err, "poll: %s", nines_conn_errdetail(t->c));
            t->fatal = 1;
            break;
        }
        /* slots whose submit failed (no node reachable) are retried here,
         * with a 10 ms pause while no node accepts */
        if (!atomic_load(&stop_flag) && nines_conn_inflight(t->c) < (size_t)opt_window) {
            for (int i = 0; i < opt_window; i++)
                if (!t->slots[i].busy && bench_submit(t, &t->slots[i])) {
                    usleep(10000);
                    break;
                }
        }
    }
    return NULL;
}

/* ---- node counters ------------------------------------------------------ */

struct node_stats { uint64_t in, out, cpu_us; bool ok; };

/* The login the cluster file names, for links opened without
 * nines_connect_config (nines_conf_login; "" user: none). */
static char login_user[64], login_pw[1025];

static void read_node_stats(const struct nines_conf *cf, struct node_stats *st)
{
    for (uint32_t i = 0; i < cf->nnodes; i++) {
        st[i].ok = false;
        struct net_client *cl;
        const struct nines_node_conf *nc = &cf->nodes[i];
        if (net_client_connect_conf(&cl, cf, nc, 1000))
            continue;
        Nines__StatusReq req = NINES__STATUS_REQ__INIT;
        struct net_msg_in in;
        int rc = net_client_send(cl, NINES__MSG_TYPE__STATUS_REQ, &req.base);
        while (rc == 0 && (rc = net_client_recv(cl, &in, 1000)) == 0) {
            if (in.type != NINES__MSG_TYPE__STATUS_CONF)
                continue;
            Nines__StatusConf *s = nines__status_conf__unpack(NULL, in.body_len, in.body);
            if (s) {
                st[i].in = s->msgs_in;
                st[i].out = s->msgs_out;
                st[i].cpu_us = s->cpu_us; /* 0 from a node older than the field */
                st[i].ok = true;
                nines__status_conf__free_unpacked(s, NULL);
            }
            break;
        }
        net_client_close(cl);
    }
}

/* CPU ticks (utime + stime) of every process named "ninesd"; -1 if none. */
static long long node_cpu_ticks(int *nproc)
{
    DIR *d = opendir("/proc");
    long long sum = 0;
    *nproc = 0;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *l = strchr(buf, '('), *r = strrchr(buf, ')');
        if (!l || !r || r - l - 1 != 6 || strncmp(l + 1, "ninesd", 6) != 0)
            continue;
        /* fields after ')': state(3) ... utime(14) stime(15) */
        unsigned long long ut = 0, stt = 0;
        if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) == 2) {
            sum += (long long)(ut + stt);
            (*nproc)++;
        }
    }
    closedir(d);
    return *nproc ? sum : -1;
}

static double client_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- invariant ----------------------------------------------------------- */

struct sum_ctx {
    size_t col;
    long double sum;
    int64_t rows, last;
    bool any, unordered;
};

static int sum_row(void *arg, const nines_row *r)
{
    struct sum_ctx *s = arg;
    struct nines_value k = nines_row_value(r, 0), v = nines_row_value(r, s->col);
    if (k.type != NINES_V_INT64 || v.type != NINES_V_INT64) {
        s->unordered = true;
        return 1;
    }
    if (s->any && k.u.i64 <= s->last)
        s->unordered = true;
    s->last = k.u.i64;
    s->any = true;
    s->sum += v.u.i64;
    s->rows++;
    return 0;
}

/* Sum column `col` of every row by scanning pages of 1000 keys upward. */
static int table_sum(nines_conn *c, const char *table, size_t col, struct sum_ctx *s)
{
    memset(s, 0, sizeof *s);
    s->col = col;
    int64_t lo = INT64_MIN;
    for (;;) {
        nines_txn *t;
        int rc = nines_txn_begin(c, &t);
        if (rc)
            return rc;
        struct nines_value k = nines_v_int64(lo);
        int64_t before = s->rows;
        rc = nines_txn_scan(t, table, &k, 1, NULL, 0, 1000, sum_row, s);
        if (rc < 0) {
            nines_txn_rollback(t);
            return rc;
        }
        rc = nines_txn_commit(t);
        if (rc)
            return rc;
        if (s->unordered)
            return nines_err(NINES_EPROTO, "scan of '%s' returned rows out of key order or "
                             "with a non-int64 key/column %zu", table, col);
        if (s->rows - before < 1000 || s->last == INT64_MAX)
            return 0;
        lo = s->last + 1;
    }
}

static int verify(const char *cfg_path, bool json, char *out, size_t outn)
{
    nines_conn *c;
    if (nines_connect_config(&c, cfg_path)) {
        snprintf(out, outn, "connect: %s", nines_errdetail());
        return -1;
    }
    static const struct { const char *t; size_t col; } tp[] = {
        {"account", 2}, {"teller", 2}, {"branch", 1}, {"history", 4}};
    static const struct { const char *t; size_t col; } two[] = {{"t1", 1}, {"t2", 1}};
    size_t n = opt_two ? 2 : 4;
    struct sum_ctx s[4];
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = table_sum(c, opt_two ? two[i].t : tp[i].t, opt_two ? two[i].col : tp[i].col, &s[i]);
        if (rc)
            snprintf(out, outn, "scan of %s: %s", opt_two ? two[i].t : tp[i].t,
                     nines_conn_errdetail(c)[0] ? nines_conn_errdetail(c) : nines_errdetail());
    }
    nines_close(c);
    if (rc)
        return -1;
    bool pass = true;
    for (size_t i = 1; i < n; i++)
        pass = pass && s[i].sum == s[0].sum;
    size_t off = 0;
    for (size_t i = 0; i < n && off < outn; i++)
        off += (size_t)snprintf(out + off, outn - off,
                                json ? "%s\"%s\":{\"rows\":%lld,\"sum\":%.0Lf}"
                                     : "%s%s: %lld rows, sum %.0Lf",
                                i ? (json ? "," : "; ") : "", opt_two ? two[i].t : tp[i].t,
                                (long long)s[i].rows, s[i].sum);
    return pass ? 1 : 0;
}

/* ---- report -------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

static void text_histogram(const uint64_t *v, size_t n)
{
    /* buckets doubling from 25 µs */
    size_t cnt[20] = {0};
    double edge[20];
    edge[0] = 25;
    for (int i = 1; i < 20; i++)
        edge[i] = edge[i - 1] * 2;
    for (size_t i = 0; i < n; i++) {
        double us = (double)v[i] / 1000.0;
        int b = 0;
        while (b < 19 && us >= edge[b])
            b++;
        cnt[b]++;
    }
    size_t maxc = 1;
    for (int i = 0; i < 20; i++)
        if (cnt[i] > maxc)
            maxc = cnt[i];
    printf("response time histogram:\n");
    for (int i = 0; i < 20; i++) {
        if (!cnt[i])
            continue;
        char bar[61];
        size_t w = cnt[i] * 60 / maxc;
        memset(bar, '#', w);
        bar[w] = '\0';
        printf("  < %9.0f us %6.2f%% %s\n", edge[i], 100.0 * (double)cnt[i] / (double)n, bar);
    }
}

static int write_svg(const char *path, const uint64_t *v, size_t n, double tps)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return nines_err(NINES_EIO, "cannot write %s", path);
    /* 50 buckets from 0 to the 99.9th percentile (the rest in the last) */
    const int nb = 50;
    double hi = n ? pct(v, n, 99.9) : 1;
    if (hi <= 0)
        hi = 1;
    double w = hi / nb, cnt[50] = {0}, maxp = 0;
    for (size_t i = 0; i < n; i++) {
        int b = (int)((double)v[i] / 1000.0 / w);
        cnt[b < nb ? b : nb - 1]++;
    }
    for (int i = 0; i < nb; i++) {
        cnt[i] = n ? 100.0 * cnt[i] / (double)n : 0;
        if (cnt[i] > maxp)
            maxp = cnt[i];
    }
    if (maxp <= 0)
        maxp = 1;
    const double X0 = 60, Y0 = 320, W = 600, H = 280;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"700\" height=\"380\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n");
    fprintf(f, "<text x=\"%g\" y=\"20\" font-size=\"13\">%s response time distribution "
               "(%zu transactions, %.0f TPS, %d clients x window %d)</text>\n",
            X0, opt_two ? "two-update" : "TPC-B", n, tps, opt_clients, opt_window);
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", X0, Y0,
            X0 + W, Y0);
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", X0, Y0, X0,
            Y0 - H);
    for (int i = 0; i < nb; i++) {
        double h = cnt[i] / maxp * H;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                   "fill=\"steelblue\"/>\n", X0 + i * W / nb, Y0 - h, W / nb - 1, h);
    }
    for (int i = 0; i <= 5; i++) {
        fprintf(f, "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%.0f</text>\n",
                X0 + i * W / 5, Y0 + 15, hi * i / 5);
        fprintf(f, "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", X0 - 5,
                Y0 - i * H / 5 + 4, maxp * i / 5);
    }
    fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">response time (us)</text>\n",
            X0 + W / 2, Y0 + 35);
    fprintf(f, "<text x=\"15\" y=\"%g\" transform=\"rotate(-90 15 %g)\" "
               "text-anchor=\"middle\">%% of transactions</text>\n", Y0 - H / 2, Y0 - H / 2);
    fprintf(f, "</svg>\n");
    return fclose(f) ? nines_err(NINES_EIO, "writing %s", path) : 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tpcb --config FILE [--clients N] [--window W] [--duration S] "
               "[--scale S]\n            [--two-upd] [--json] [--plot FILE.svg] [--seed X] "
               "[--no-verify]\n            [--journal FILE] [--first-node ID | --only-node ID] "
               "[--timeout-ms MS]\n");
}

/* Connect as --first-node / --only-node say, else as the cluster file says. */
static int bench_connect(const struct nines_conf *cf, nines_conn **out)
{
    if (!opt_first_node && !opt_only_node)
        return nines_connect_config(out, opt_config);
    static char addr[NINES_MAX_NODES][NINES_HOST_MAX + 8];
    const char *addrs[NINES_MAX_NODES];
    size_t n = 0;
    uint32_t first = opt_only_node ? opt_only_node : opt_first_node;
    const struct nines_node_conf *nc = nines_conf_node(cf, first);
    if (!nc)
        return nines_err(NINES_ECONFIG, "node %u is not in %s", first, cf->path);
    snprintf(addr[n], sizeof addr[n], "%s:%u", nc->host, nc->port);
    addrs[n] = addr[n];
    n++;
    for (uint32_t i = 0; !opt_only_node && i < cf->nnodes; i++) {
        if (cf->nodes[i].id == first)
            continue;
        snprintf(addr[n], sizeof addr[n], "%s:%u", cf->nodes[i].host, cf->nodes[i].port);
        addrs[n] = addr[n];
        n++;
    }
    const struct nines_connect_opts fo = {.flags = NINES_CONNECT_FIRST_NODE,
                                          .user = login_user, .password = login_pw};
    return nines_connect_with(out, addrs, n, cf->cluster, opt_timeout_ms, &fo);
}

static volatile sig_atomic_t stop_signal;
static void on_stop_signal(int sig)
{
    (void)sig;
    stop_signal = 1;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        bool more = i + 1 < argc;
        if (!strcmp(argv[i], "--config") && more)
            opt_config = argv[++i];
        else if (!strcmp(argv[i], "--clients") && more)
            opt_clients = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--window") && more)
            opt_window = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--duration") && more)
            opt_duration = atof(argv[++i]);
        else if (!strcmp(argv[i], "--scale") && more)
            opt_scale = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--plot") && more)
            opt_plot = argv[++i];
        else if (!strcmp(argv[i], "--seed") && more)
            opt_seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--two-upd"))
            opt_two = true;
        else if (!strcmp(argv[i], "--json"))
            opt_json = true;
        else if (!strcmp(argv[i], "--no-verify"))
            opt_verify = false;
        else if (!strcmp(argv[i], "--journal") && more)
            opt_journal = argv[++i];
        else if (!strcmp(argv[i], "--first-node") && more)
            opt_first_node = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--only-node") && more)
            opt_only_node = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--timeout-ms") && more)
            opt_timeout_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "tpcb: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!opt_config || opt_clients <= 0 || opt_clients > 1024 || opt_window <= 0 ||
        opt_window > 100000 || opt_duration <= 0 || opt_scale <= 0 || opt_timeout_ms <= 0 ||
        (opt_first_node && opt_only_node)) {
        usage(stderr);
        return 2;
    }
    if (opt_journal && opt_two) {
        fprintf(stderr, "tpcb: --journal is for TPC-B (the checker reads history rows)\n");
        return 2;
    }
    static struct nines_conf cf;
    if (nines_conf_load(opt_config, &cf)) {
        fprintf(stderr, "tpcb: %s\n", nines_errdetail());
        return 2;
    }
    if (nines_conf_login(&cf, login_user, sizeof login_user, login_pw, sizeof login_pw)) {
        fprintf(stderr, "tpcb: %s\n", nines_errdetail());
        return 2;
    }
    if (opt_journal) {
        journal = fopen(opt_journal, "w");
        if (!journal) {
            fprintf(stderr, "tpcb: cannot write journal %s: %s\n", opt_journal, strerror(errno));
            return 2;
        }
        fprintf(journal, "# nines-tpcb-journal v1 pid %d scale %lld clients %d window %d "
                "started_us %llu\n", (int)getpid(), (long long)opt_scale, opt_clients, opt_window,
                (unsigned long long)wall_us());
    }
    struct bench_thread *th = calloc((size_t)opt_clients, sizeof *th);
    if (!th)
        return 1;
    for (int i = 0; i < opt_clients; i++) {
        th[i].idx = i;
        th[i].rng = opt_seed * 0x9E3779B97F4A7C15ull + (uint64_t)i * 7919 + 1;
        th[i].slots = calloc((size_t)opt_window, sizeof *th[i].slots);
        if (!th[i].slots || bench_connect(&cf, &th[i].c)) {
            fprintf(stderr, "tpcb: client %d: %s\n", i, nines_errdetail());
            return 1;
        }
    }
    /* where the clients landed (the library spreads them unless --first-node) */
    int clients_on[NINES_MAX_NODES] = {0};
    for (int i = 0; i < opt_clients; i++)
        for (uint32_t k = 0; k < cf.nnodes; k++)
            if (cf.nodes[k].id == nines_conn_node(th[i].c))
                clients_on[k]++;
    struct node_stats s0[NINES_MAX_NODES], s1[NINES_MAX_NODES];
    read_node_stats(&cf, s0);
    int np0 = 0, np1 = 0;
    long long cpu0 = node_cpu_ticks(&np0);
    double ccpu0 = client_cpu_s();
    uint64_t t0 = nclock_ns();
    /* SIGINT / SIGTERM end the measured interval early: caught by this
     * thread only (the clients' threads block them), whose sleep they cut */
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &ss, NULL);
    for (int i = 0; i < opt_clients; i++)
        pthread_create(&th[i].th, NULL, bench_thread_main, &th[i]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pthread_sigmask(SIG_UNBLOCK, &ss, NULL);
    struct timespec left = {(time_t)opt_duration,
                            (long)((opt_duration - (double)(time_t)opt_duration) * 1e9)};
    while (!stop_signal && nanosleep(&left, &left) != 0 && errno == EINTR)
        ; /* the measured interval */
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < opt_clients; i++)
        pthread_join(th[i].th, NULL);
    double el = (double)(nclock_ns() - t0) / 1e9;
    if (journal && fclose(journal))
        fprintf(stderr, "tpcb: writing journal %s: %s\n", opt_journal, strerror(errno));
    journal = NULL;
    long long cpu1 = node_cpu_ticks(&np1);
    double ccpu1 = client_cpu_s();
    read_node_stats(&cf, s1);

    uint64_t commits = 0, errs[NERR + 1] = {0}, nerr = 0;
    size_t nlat = 0;
    const char *last_err = "";
    for (int i = 0; i < opt_clients; i++) {
        commits += th[i].commits;
        nlat += th[i].nlat;
        for (int k = 0; k <= NERR; k++) {
            errs[k] += th[i].errs[k];
            nerr += th[i].errs[k];
        }
        if (th[i].last_err[0])
            last_err = th[i].last_err;
    }
    uint64_t *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
    size_t off = 0;
    for (int i = 0; i < opt_clients; i++) {
        memcpy(lat + off, th[i].lat, th[i].nlat * sizeof *lat);
        off += th[i].nlat;
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    long double sum = 0;
    for (size_t i = 0; i < nlat; i++)
        sum += lat[i];
    double avg = nlat ? (double)(sum / nlat) / 1000.0 : 0;
    double tps = (double)commits / el;
    uint64_t din = 0, dout = 0;
    bool stats_ok = true;
    for (uint32_t i = 0; i < cf.nnodes; i++) {
        stats_ok = stats_ok && s0[i].ok && s1[i].ok;
        if (s0[i].ok && s1[i].ok) {
            din += s1[i].in - s0[i].in;
            dout += s1[i].out - s0[i].out;
        }
    }
    /* per node: STATUS cpu_us (the node's own getrusage) before and after */
    double ncpu[NINES_MAX_NODES];
    double ncpu_sum = 0, ncpu_max = 0;
    int ncpu_n = 0;
    for (uint32_t i = 0; i < cf.nnodes; i++) {
        ncpu[i] = -1;
        if (s0[i].ok && s1[i].ok && s1[i].cpu_us && s1[i].cpu_us >= s0[i].cpu_us && commits) {
            ncpu[i] = (double)(s1[i].cpu_us - s0[i].cpu_us) / (double)commits;
            ncpu_sum += ncpu[i];
            ncpu_max = ncpu[i] > ncpu_max ? ncpu[i] : ncpu_max;
            ncpu_n++;
        }
    }
    double ncpu_ratio = ncpu_n && ncpu_sum > 0 ? ncpu_max / (ncpu_sum / ncpu_n) : 0;
    double tick = (double)sysconf(_SC_CLK_TCK);
    double node_cpu_us = cpu0 >= 0 && cpu1 >= 0 && commits
                             ? (double)(cpu1 - cpu0) / tick * 1e6 / (double)commits : -1;
    double client_cpu_us = commits ? (ccpu1 - ccpu0) * 1e6 / (double)commits : 0;
    double abort_rate = commits + nerr ? (double)nerr / (double)(commits + nerr) : 0;

    char inv[600] = "";
    int pass = 1;
    if (opt_verify) {
        pass = verify(opt_config, opt_json, inv, sizeof inv);
        if (pass < 0)
            fprintf(stderr, "tpcb: invariant check failed to run: %s\n", inv);
    }

    if (opt_json) {
        printf("{\"mode\":\"%s\",\"clients\":%d,\"window\":%d,\"duration_s\":%.3f,\"scale\":%lld,"
               "\"commits\":%llu,\"tps\":%.1f,\"avg_us\":%.1f,\"p50_us\":%.1f,\"p95_us\":%.1f,"
               "\"p99_us\":%.1f,\"max_us\":%.1f,\"errors\":%llu,\"abort_rate\":%.6f,\"errors_by\":{",
               opt_two ? "two-upd" : "tpcb", opt_clients, opt_window, el, (long long)opt_scale,
               (unsigned long long)commits, tps, avg, pct(lat, nlat, 50), pct(lat, nlat, 95),
               pct(lat, nlat, 99), nlat ? (double)lat[nlat - 1] / 1000.0 : 0,
               (unsigned long long)nerr, abort_rate);
        bool first = true;
        for (int k = 0; k <= NERR; k++)
            if (errs[k]) {
                printf("%s\"%s\":%llu", first ? "" : ",", k ? nines_strerror(-k) : "other",
                       (unsigned long long)errs[k]);
                first = false;
            }
        printf("},\"node_msgs_in_per_txn\":%.2f,\"node_msgs_out_per_txn\":%.2f,"
               "\"node_stats_complete\":%s,\"node_cpu_us_per_txn\":%.2f,\"node_processes\":%d,"
               "\"client_cpu_us_per_txn\":%.2f",
               commits ? (double)din / (double)commits : 0,
               commits ? (double)dout / (double)commits : 0, stats_ok ? "true" : "false",
               node_cpu_us, np1, client_cpu_us);
        printf(",\"clients_by_node\":{");
        for (uint32_t i = 0; i < cf.nnodes; i++)
            printf("%s\"%u\":%d", i ? "," : "", cf.nodes[i].id, clients_on[i]);
        printf("},\"node_cpu_us_per_txn_by_node\":{");
        bool firstn = true;
        for (uint32_t i = 0; i < cf.nnodes; i++)
            if (ncpu[i] >= 0) {
                printf("%s\"%u\":%.2f", firstn ? "" : ",", cf.nodes[i].id, ncpu[i]);
                firstn = false;
            }
        printf("},\"node_cpu_max_avg\":%.3f", ncpu_ratio);
        if (opt_verify)
            printf(",\"invariant\":%s,\"sums\":{%s}", pass > 0 ? "\"PASS\"" : "\"FAIL\"",
                   pass >= 0 ? inv : "");
        printf("}\n");
    } else {
        printf("%s: %d clients x window %d, %.2f s, scale %lld\n",
               opt_two ? "two-update" : "TPC-B", opt_clients, opt_window, el,
               (long long)opt_scale);
        printf("committed %llu: %.0f TPS\n", (unsigned long long)commits, tps);
        printf("response time us: avg %.1f  p50 %.1f  p95 %.1f  p99 %.1f  max %.1f\n", avg,
               pct(lat, nlat, 50), pct(lat, nlat, 95), pct(lat, nlat, 99),
               nlat ? (double)lat[nlat - 1] / 1000.0 : 0);
        printf("errors %llu (abort rate %.4f%%)", (unsigned long long)nerr, 100 * abort_rate);
        for (int k = 0; k <= NERR; k++)
            if (errs[k])
                printf("  %s: %llu", k ? nines_strerror(-k) : "other",
                       (unsigned long long)errs[k]);
        printf("\n");
        if (nerr)
            printf("  last error: %s\n", last_err);
        printf("node messages per transaction: in %.2f, out %.2f%s\n",
               commits ? (double)din / (double)commits : 0,
               commits ? (double)dout / (double)commits : 0,
               stats_ok ? "" : " (some node did not answer STATUS_REQ)");
        if (node_cpu_us >= 0)
            printf("CPU per transaction: nodes %.1f us (%d ninesd processes), client %.1f us\n",
                   node_cpu_us, np1, client_cpu_us);
        else
            printf("CPU per transaction: client %.1f us (no ninesd process visible here)\n",
                   client_cpu_us);
        printf("clients per node at start:");
        for (uint32_t i = 0; i < cf.nnodes; i++)
            printf(" %u:%d", cf.nodes[i].id, clients_on[i]);
        printf("\n");
        if (ncpu_n) {
            printf("node CPU per transaction (STATUS cpu_us), us:");
            for (uint32_t i = 0; i < cf.nnodes; i++)
                if (ncpu[i] >= 0)
                    printf("  node %u %.1f", cf.nodes[i].id, ncpu[i]);
                else
                    printf("  node %u -", cf.nodes[i].id);
            printf("  (sum %.1f, max/avg %.2f)\n", ncpu_sum, ncpu_ratio);
        } else {
            printf("node CPU per transaction: no node reported cpu_us\n");
        }
        text_histogram(lat, nlat);
        if (opt_verify)
            printf("invariant: %s — %s\n", pass > 0 ? "PASS" : "FAIL", inv);
    }
    if (opt_plot && write_svg(opt_plot, lat, nlat, tps))
        fprintf(stderr, "tpcb: %s\n", nines_errdetail());
    for (int i = 0; i < opt_clients; i++) {
        nines_close(th[i].c);
        free(th[i].slots);
        free(th[i].lat);
    }
    free(th);
    free(lat);
    return pass > 0 ? 0 : 1;
}
