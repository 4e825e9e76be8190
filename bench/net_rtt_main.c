/* net_rtt — message round trip between two nodes through the whole runtime
 * (mailbox, scheduler, envelope, protobuf, TCP transport) against a raw
 * blocking TCP ping-pong measured in the same run, plus one-way batched
 * messages per second. Prints figures; asserts nothing about time.
 *
 *   net_rtt [--count N] [--sinks N] [--payload BYTES] [--poll-us US] [--quick] [--json]
 *
 * Both sides of each measurement are separate processes (the second node is
 * a forked child), as two nodes are. */
#include "conf.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nlog.h"
#include "dict/svc/dsvc.h"
#include "runtime/rt.h"
#include "supervisor/sup.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static long opt_count = 20000, opt_sinks = 1000000;
static size_t opt_payload = 32;
static uint32_t opt_poll_us;
static int opt_json;

static int free_base_port(int n)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        int base = 30000 + (int)((getpid() * 13 + attempt * 101) % 25000);
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(base + i))};
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
            close(fd);
        }
        if (ok)
            return base;
    }
    return -1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct dist { double p50, p99, avg; };
static struct dist summarize(uint64_t *ns, long n)
{
    qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += (double)ns[i];
    return (struct dist){(double)ns[n / 2] / 1000.0, (double)ns[(n * 99) / 100] / 1000.0,
                         sum / (double)n / 1000.0};
}

/* ---------- raw TCP ping-pong ---------- */

static int tcp_listen(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 1))
        return -1;
    return fd;
}

static int full_io(int fd, void *buf, size_t n, int wr)
{
    size_t off = 0;
    while (off < n) {
        ssize_t r = wr ? write(fd, (char *)buf + off, n - off) : read(fd, (char *)buf + off, n - off);
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    return 0;
}

static struct dist raw_rtt(int port, long count, size_t msg)
{
    int lfd = tcp_listen(port);
    pid_t child = fork();
    if (child == 0) {
        int c = accept(lfd, NULL, NULL), one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char buf[4096];
        while (full_io(c, buf, msg, 0) == 0 && full_io(c, buf, msg, 1) == 0)
            ;
        _exit(0);
    }
    close(lfd);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    while (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = socket(AF_INET, SOCK_STREAM, 0);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint64_t *lat = malloc((size_t)count * sizeof *lat);
    char buf[4096] = {0};
    for (long i = -count / 10; i < count; i++) { /* first 10% warm up */
        uint64_t t0 = nclock_ns();
        if (full_io(fd, buf, msg, 1) || full_io(fd, buf, msg, 0)) {
            fprintf(stderr, "net_rtt: raw TCP ping-pong failed\n");
            exit(1);
        }
        if (i >= 0)
            lat[i] = nclock_ns() - t0;
    }
    close(fd);
    waitpid(child, NULL, 0);
    struct dist d = summarize(lat, count);
    free(lat);
    return d;
}

/* ---------- runtime round trip and one-way throughput ---------- */

enum phase { PH_RTT, PH_SINK, PH_SINK_SYNC, PH_DONE };
struct bench {
    struct rt *rt;
    enum phase phase;
    long i, count;
    uint64_t *lat;
    uint8_t payload[4096];
    long sinks_sent;
    uint64_t sink_t0, sink_t1;
};

static void send_ping(struct bench *b, uint64_t seq)
{
    struct rt_msg *m = rt_msg_new(b->rt, NINES__MSG_TYPE__PING_REQ);
    Nines__PingReq *r = RT_BODY(m, Nines__PingReq, nines__ping_req__init);
    r->seq = seq;
    r->sent_ns = nclock_ns();
    r->payload.data = b->payload;
    r->payload.len = opt_payload;
    if (rt_send(b->rt, 2, RT_SVC_SUP, m)) {
        fprintf(stderr, "net_rtt: ping send failed: %s\n", nines_errdetail());
        exit(1);
    }
}

/* Queue sink messages until the send queue is at its bound. */
static void pump_sinks(struct bench *b)
{
    while (b->sinks_sent < opt_sinks) {
        struct rt_msg *m = rt_msg_new(b->rt, NINES__MSG_TYPE__SINK_REQ);
        Nines__SinkReq *r = RT_BODY(m, Nines__SinkReq, nines__sink_req__init);
        r->seq = (uint64_t)b->sinks_sent;
        r->payload.data = b->payload;
        r->payload.len = opt_payload;
        int rc = rt_send(b->rt, 2, RT_SVC_SUP, m);
        if (rc == NINES_EAGAIN)
            return; /* flushed by the loop; resumed on the next timer */
        if (rc) {
            fprintf(stderr, "net_rtt: sink send failed: %s\n", nines_errdetail());
            exit(1);
        }
        b->sinks_sent++;
    }
    b->phase = PH_SINK_SYNC;
    send_ping(b, UINT64_MAX); /* FIFO: its reply follows every sink */
}

static void on_ping_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct bench *b = st;
    const Nines__PingConf *c = (const Nines__PingConf *)m->body;
    switch (b->phase) {
    case PH_RTT:
        if (b->i >= 0)
            b->lat[b->i] = nclock_ns() - c->sent_ns;
        if (++b->i < b->count) {
            send_ping(b, (uint64_t)b->i);
        } else {
            b->phase = PH_SINK;
            b->sink_t0 = nclock_ns();
            pump_sinks(b);
            rt_timer_add(rt, RT_SVC_APP, 0, 1);
        }
        break;
    case PH_SINK_SYNC:
        if (c->seq == UINT64_MAX) {
            b->sink_t1 = nclock_ns();
            b->phase = PH_DONE;
            rt_stop(rt);
        }
        break;
    case PH_SINK:
    case PH_DONE:
        break;
    default:
        fprintf(stderr, "net_rtt: bad phase %d\n", (int)b->phase);
        exit(1);
    }
}

static void on_event(struct rt *rt, void *st, struct rt_msg *m)
{
    struct bench *b = st;
    if (m->type == RT_MSG_START) {
        b->i = -b->count / 10; /* warm up */
        send_ping(b, 0);
    } else if (m->type == RT_MSG_TIMER && b->phase == PH_SINK) {
        pump_sinks(b);
        if (b->phase == PH_SINK)
            rt_timer_add(rt, RT_SVC_APP, 0, 1);
    }
}

static struct rt_msg_entry bench_tab[256];

static void make_conf(struct nines_conf *c, int base)
{
    char text[512];
    snprintf(text, sizeof text,
             "cluster bench\nreconnect_min_ms 2\nheartbeat_ms 1000\n"
             "node 1 site 0 127.0.0.1:%d\nnode 2 site 1 127.0.0.1:%d\n",
             base, base + 1);
    if (nines_conf_parse(text, "net_rtt", c)) {
        fprintf(stderr, "net_rtt: %s\n", nines_errdetail());
        exit(1);
    }
    c->poll_us = opt_poll_us;
}

static pid_t start_peer(const struct nines_conf *c)
{
    pid_t p = fork();
    if (p != 0)
        return p;
    struct rt_config rc = {.self = 2, .conf = c, .msgtab = sup_msgtab,
                           .msgtab_len = sup_msgtab_len, .poll_us = opt_poll_us};
    struct rt *rt;
    static struct sup s;
    static struct dsvc *dict;
    if (rt_create(&rt, &rc) || sup_init(&s, rt) || dsvc_create(&dict, rt)) {
        fprintf(stderr, "net_rtt: peer: %s\n", nines_errdetail());
        _exit(1);
    }
    rt_run(rt);
    _exit(0);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--count") && i + 1 < argc)
            opt_count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--sinks") && i + 1 < argc)
            opt_sinks = atol(argv[++i]);
        else if (!strcmp(argv[i], "--payload") && i + 1 < argc)
            opt_payload = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--poll-us") && i + 1 < argc)
            opt_poll_us = (uint32_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) {
            opt_count = 5000;
            opt_sinks = 200000;
        } else if (!strcmp(argv[i], "--json"))
            opt_json = 1;
        else {
            fprintf(stderr, "usage: net_rtt [--count N] [--sinks N] [--payload BYTES] [--poll-us US] [--quick] [--json]\n");
            return 2;
        }
    }
    if (opt_count < 100 || opt_sinks < 1 || opt_payload > 2048) {
        fprintf(stderr, "net_rtt: --count must be >= 100, --sinks >= 1 and --payload <= 2048\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (!getenv("NINES_LOG"))
        nlog_set_level(NLOG_WARN); /* keep the report readable */
    int base = free_base_port(3);
    if (base < 0) {
        fprintf(stderr, "net_rtt: no free ports\n");
        return 1;
    }
    /* Envelope + PingReq is about payload + 20 bytes: compare like with like */
    size_t raw_msg = opt_payload + 24;
    struct dist raw = raw_rtt(base + 2, opt_count, raw_msg);

    static struct nines_conf conf;
    make_conf(&conf, base);
    /* node 1 speaks everything a node's supervisor and dictionary service
     * speak (heartbeats, the dictionary's version exchange, ...) plus the
     * PING_CONF it waits for */
    if (sup_msgtab_len > sizeof bench_tab / sizeof bench_tab[0]) {
        fprintf(stderr, "net_rtt: message table has %u rows, more than %zu\n", sup_msgtab_len,
                sizeof bench_tab / sizeof bench_tab[0]);
        return 1;
    }
    memcpy(bench_tab, sup_msgtab, sup_msgtab_len * sizeof *bench_tab);
    bench_tab[NINES__MSG_TYPE__PING_CONF] =
        (struct rt_msg_entry){"PING_CONF", &nines__ping_conf__descriptor, RT_SVC_APP,
                              on_ping_conf, RT_FROM_PEER, RT_EPOCH_ANY};
    pid_t peer = start_peer(&conf);
    struct rt_config rc = {.self = 1, .conf = &conf, .msgtab = bench_tab,
                           .msgtab_len = sup_msgtab_len, .poll_us = opt_poll_us};
    struct rt *rt;
    if (rt_create(&rt, &rc)) {
        fprintf(stderr, "net_rtt: %s\n", nines_errdetail());
        kill(peer, SIGKILL);
        return 1;
    }
    static struct sup node1_sup; /* node 1 is a full node: heartbeats, status, */
    static struct dsvc *node1_dict; /* the dictionary's version exchange */
    if (sup_init(&node1_sup, rt) || dsvc_create(&node1_dict, rt)) {
        fprintf(stderr, "net_rtt: %s\n", nines_errdetail());
        kill(peer, SIGKILL);
        return 1;
    }
    static struct bench b;
    b.rt = rt;
    b.count = opt_count;
    b.lat = malloc((size_t)opt_count * sizeof *b.lat);
    memset(b.payload, 0xab, sizeof b.payload);
    rt_task_add(rt, RT_SVC_APP, "net_rtt", on_event, &b);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    rt_run(rt);
    getrusage(RUSAGE_SELF, &ru1);
    struct net_stats ns;
    net_get_stats(rt_net(rt), &ns);
    struct dist run = summarize(b.lat, opt_count);
    double secs = (double)(b.sink_t1 - b.sink_t0) / 1e9;
    double sink_rate = (double)opt_sinks / secs;
    double per_write = ns.writes ? (double)ns.msgs_out / (double)ns.writes : 0;
    kill(peer, SIGTERM);
    waitpid(peer, NULL, 0);
    rt_destroy(rt);
    double ratio = run.p50 / raw.p50;
    if (opt_json) {
        printf("{\"count\":%ld,\"payload\":%zu,\"poll_us\":%u,\"raw_tcp\":{\"p50_us\":%.1f,\"p99_us\":%.1f,"
               "\"avg_us\":%.1f},\"runtime\":{\"p50_us\":%.1f,\"p99_us\":%.1f,\"avg_us\":%.1f},"
               "\"ratio_p50\":%.2f,\"one_way_msgs_per_s\":%.0f,\"msgs_per_write\":%.1f}\n",
               opt_count, opt_payload, opt_poll_us, raw.p50, raw.p99, raw.avg, run.p50, run.p99,
               run.avg, ratio, sink_rate, per_write);
        return 0;
    }
    printf("net_rtt: %ld round trips, %zu-byte payload, 2 processes on loopback, poll_us %u\n",
           opt_count, opt_payload, opt_poll_us);
    printf("  %-34s %9s %9s %9s\n", "", "p50 us", "p99 us", "avg us");
    printf("  %-34s %9.1f %9.1f %9.1f\n", "raw TCP ping-pong (blocking)", raw.p50, raw.p99, raw.avg);
    printf("  %-34s %9.1f %9.1f %9.1f\n", "runtime + envelope + TCP transport", run.p50, run.p99,
           run.avg);
    printf("  runtime/raw ratio (p50): %.2f   (p99: %.2f)\n", ratio, run.p99 / raw.p99);
    printf("  one-way: %ld messages in %.3f s = %.0f msgs/s, %.1f messages per write()\n",
           opt_sinks, secs, sink_rate, per_write);
    printf("  node 1 CPU over both runtime phases: %.2f s user + %.2f s sys\n",
           (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
               (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6,
           (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
               (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6);
    return 0;
}
