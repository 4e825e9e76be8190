/* ninesctl — admin command line for a ninesdb cluster.
 *
 *   ninesctl --config FILE status [--json] [--wait-healthy SECONDS]
 *   ninesctl --config FILE ping --node ID [--count N]
 *
 * status asks every node of the cluster file for its STATUS_CONF and
 * prints nodes, sites, reachability (from here), uptime and what each node
 * sees of its peers. Exit status: 0 all nodes reachable and seeing all
 * peers, 1 otherwise, 2 usage or configuration error. */
#include "conf.h"
#include "nclock.h"
#include "net/net.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTL_TIMEOUT_MS 1000

struct node_view {
    const struct nines_node_conf *nc;
    int err;                    /* 0 = answered */
    char why[160];
    Nines__StatusConf *st;      /* answer (protobuf-c malloc'ed) */
};

/* Ask one node for its status. */
static void ctl_query(const struct nines_conf *c, struct node_view *v)
{
    struct net_client *cl = NULL;
    v->err = net_client_connect(&cl, v->nc->host, v->nc->port, c->cluster, CTL_TIMEOUT_MS);
    if (v->err) {
        snprintf(v->why, sizeof v->why, "%s", nines_errdetail());
        return;
    }
    Nines__StatusReq req = NINES__STATUS_REQ__INIT;
    v->err = net_client_send(cl, NINES__MSG_TYPE__STATUS_REQ, &req.base);
    struct net_msg_in in;
    while (v->err == 0) {
        v->err = net_client_recv(cl, &in, CTL_TIMEOUT_MS);
        if (v->err)
            break;
        if (in.type != NINES__MSG_TYPE__STATUS_CONF)
            continue; /* e.g. a late reply to something else */
        v->st = nines__status_conf__unpack(NULL, in.body_len, in.body);
        if (!v->st)
            v->err = nines_err(NINES_EPROTO, "node %u sent an undecodable STATUS_CONF", v->nc->id);
        break;
    }
    if (v->err)
        snprintf(v->why, sizeof v->why, "%s", nines_errdetail());
    net_client_close(cl);
}

static bool ctl_healthy(const struct nines_conf *c, const struct node_view *v)
{
    for (uint32_t i = 0; i < c->nnodes; i++) {
        if (v[i].err || !v[i].st)
            return false;
        for (size_t p = 0; p < v[i].st->n_peers; p++)
            if (!v[i].st->peers[p]->reachable)
                return false;
    }
    return true;
}

static void fmt_uptime(char *buf, size_t n, uint64_t ms)
{
    if (ms < 60000)
        snprintf(buf, n, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(buf, n, "%llum%02llus", (unsigned long long)(ms / 60000),
                 (unsigned long long)(ms / 1000 % 60));
    else
        snprintf(buf, n, "%lluh%02llum", (unsigned long long)(ms / 3600000),
                 (unsigned long long)(ms / 60000 % 60));
}

static void print_table(const struct nines_conf *c, const struct node_view *v)
{
    printf("cluster %s: %u nodes in 2 sites\n", c->cluster, c->nnodes);
    printf("%-5s %-4s %-22s %-12s %-9s %-6s %-9s %s\n", "NODE", "SITE", "ADDRESS", "STATE",
           "UPTIME", "EPOCH", "TRANSPORT", "PEERS (reachable from that node)");
    for (uint32_t i = 0; i < c->nnodes; i++) {
        char addr[96], up[32] = "-", peers[256] = "-", epoch[24] = "-";
        snprintf(addr, sizeof addr, "%s:%u", v[i].nc->host, v[i].nc->port);
        const char *state = "unreachable";
        const char *tr = "-";
        if (!v[i].err && v[i].st) {
            state = "up";
            fmt_uptime(up, sizeof up, v[i].st->uptime_ms);
            snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)v[i].st->epoch);
            tr = v[i].st->transport;
            size_t off = 0;
            peers[0] = '\0';
            for (size_t p = 0; p < v[i].st->n_peers && off < sizeof peers - 16; p++) {
                const Nines__PeerStatus *ps = v[i].st->peers[p];
                off += (size_t)snprintf(peers + off, sizeof peers - off, "%s%u:%s", p ? " " : "",
                                        ps->node_id, ps->reachable ? "up" : "DOWN");
            }
        }
        printf("%-5u %-4u %-22s %-12s %-9s %-6s %-9s %s\n", v[i].nc->id, v[i].nc->site, addr,
               state, up, epoch, tr, peers);
        if (v[i].err)
            printf("      (%s)\n", v[i].why);
    }
    printf("health: %s\n", ctl_healthy(c, v) ? "all nodes up, all links up" : "DEGRADED");
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void print_json(const struct nines_conf *c, const struct node_view *v)
{
    printf("{\"cluster\":");
    json_str(c->cluster);
    printf(",\"healthy\":%s,\"nodes\":[", ctl_healthy(c, v) ? "true" : "false");
    for (uint32_t i = 0; i < c->nnodes; i++) {
        printf("%s{\"id\":%u,\"site\":%u,\"address\":\"%s:%u\",\"reachable\":%s", i ? "," : "",
               v[i].nc->id, v[i].nc->site, v[i].nc->host, v[i].nc->port,
               v[i].err ? "false" : "true");
        if (v[i].err) {
            printf(",\"error\":");
            json_str(v[i].why);
        } else {
            const Nines__StatusConf *s = v[i].st;
            printf(",\"uptime_ms\":%llu,\"epoch\":%llu,\"transport\":",
                   (unsigned long long)s->uptime_ms, (unsigned long long)s->epoch);
            json_str(s->transport);
            printf(",\"msgs_in\":%llu,\"msgs_out\":%llu,\"peers\":[",
                   (unsigned long long)s->msgs_in, (unsigned long long)s->msgs_out);
            for (size_t p = 0; p < s->n_peers; p++) {
                const Nines__PeerStatus *ps = s->peers[p];
                printf("%s{\"id\":%u,\"site\":%u,\"reachable\":%s", p ? "," : "", ps->node_id,
                       ps->site, ps->reachable ? "true" : "false");
                if (ps->ever_heard)
                    printf(",\"last_heard_ms\":%llu", (unsigned long long)ps->last_heard_ms);
                printf("}");
            }
            printf("]");
        }
        printf("}");
    }
    printf("]}\n");
}

static int cmd_status(const struct nines_conf *c, int argc, char **argv)
{
    bool json = false;
    double wait_s = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--wait-healthy") && i + 1 < argc)
            wait_s = atof(argv[++i]);
        else {
            fprintf(stderr, "ninesctl status: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    struct node_view v[NINES_MAX_NODES];
    uint64_t deadline = nclock_ms() + (uint64_t)(wait_s * 1000);
    bool ok;
    for (;;) {
        memset(v, 0, sizeof v);
        for (uint32_t i = 0; i < c->nnodes; i++) {
            v[i].nc = &c->nodes[i];
            ctl_query(c, &v[i]);
        }
        ok = ctl_healthy(c, v);
        if (ok || nclock_ms() >= deadline)
            break;
        for (uint32_t i = 0; i < c->nnodes; i++)
            nines__status_conf__free_unpacked(v[i].st, NULL);
        usleep(100 * 1000); /* poll interval of an interactive wait */
    }
    if (json)
        print_json(c, v);
    else
        print_table(c, v);
    for (uint32_t i = 0; i < c->nnodes; i++)
        nines__status_conf__free_unpacked(v[i].st, NULL);
    return ok ? 0 : 1;
}

static int cmd_ping(const struct nines_conf *c, int argc, char **argv)
{
    uint32_t node = 0;
    long count = 10;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--node") && i + 1 < argc)
            node = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "ninesctl ping: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    const struct nines_node_conf *nc = nines_conf_node(c, node);
    if (!nc || count <= 0) {
        fprintf(stderr, "ninesctl ping: --node %u is not in %s (or --count %ld is not positive)\n",
                node, c->path, count);
        return 2;
    }
    struct net_client *cl;
    if (net_client_connect(&cl, nc->host, nc->port, c->cluster, CTL_TIMEOUT_MS)) {
        fprintf(stderr, "ninesctl ping: node %u: %s\n", node, nines_errdetail());
        return 1;
    }
    int rc = 0;
    for (long i = 0; i < count && rc == 0; i++) {
        Nines__PingReq req = NINES__PING_REQ__INIT;
        req.seq = (uint64_t)i;
        req.sent_ns = nclock_ns();
        rc = net_client_send(cl, NINES__MSG_TYPE__PING_REQ, &req.base);
        struct net_msg_in in;
        if (rc == 0)
            rc = net_client_recv(cl, &in, CTL_TIMEOUT_MS);
        if (rc == 0)
            printf("reply from node %u: seq %ld time %.1f us\n", node, i,
                   (double)(nclock_ns() - req.sent_ns) / 1000.0);
    }
    if (rc)
        fprintf(stderr, "ninesctl ping: %s\n", nines_errdetail());
    net_client_close(cl);
    return rc ? 1 : 0;
}

static const struct {
    const char *name;
    int (*fn)(const struct nines_conf *c, int argc, char **argv);
    const char *help;
} commands[] = {
    {"status", cmd_status, "status [--json] [--wait-healthy SECONDS]"},
    {"ping", cmd_ping, "ping --node ID [--count N]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ninesctl --config FILE COMMAND ...\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %s\n", commands[i].help);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ninesctl: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!config || i >= argc) {
        usage(stderr);
        return 2;
    }
    static struct nines_conf conf;
    if (nines_conf_load(config, &conf)) {
        fprintf(stderr, "ninesctl: %s\n", nines_errdetail());
        return 2;
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (!strcmp(argv[i], commands[k].name))
            return commands[k].fn(&conf, argc - i - 1, argv + i + 1);
    fprintf(stderr, "ninesctl: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return 2;
}
