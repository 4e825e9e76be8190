/* ninesctl checkpoint [--node ID] [--json] [--timeout SECONDS]: a round of
 * checkpoints of every replica now, at every node of the cluster file (or
 * the one named). The requests go out to all nodes first, so their rounds
 * run at the same time; then each node's CKPT_CONF is awaited: it comes when
 * a round that began after the request has checkpointed every replica of
 * the node (kernel/svc/README.md "Checkpoints"). tools/README.md
 * "ninesctl checkpoint" has the output and the exit status. */
#include "ctl.h"

#include "nclock.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_TIMEOUT_S 600 /* default: a round over a large data set takes a while */

struct ck_view {
    const struct nines_node_conf *nc;
    struct net_client *cl;
    int err;                /* 0: answered (the node's own error is in `a`) */
    char why[300];
    Nines__CkptConf *a;
};

static void print_text(const struct ck_view *v)
{
    if (v->err) {
        printf("node %u: no answer: %s\n", v->nc->id, v->why);
        return;
    }
    const Nines__CkptConf *a = v->a;
    if (a->error && !a->round) {
        printf("node %u: refused: %s (%s)\n", v->nc->id, a->detail ? a->detail : "",
               nines_strerror(a->error));
        return;
    }
    printf("node %u: round %llu: %u replicas checkpointed, %llu records, %.1f MB in %llu ms",
           v->nc->id, (unsigned long long)a->round, a->replicas, (unsigned long long)a->records,
           (double)a->bytes / 1e6, (unsigned long long)a->duration_ms);
    if (a->abandoned || a->skipped || a->failed)
        printf(" (%u abandoned, %u skipped, %u failed)", a->abandoned, a->skipped, a->failed);
    if (a->error)
        printf(": %s (%s)", a->detail ? a->detail : "", nines_strerror(a->error));
    printf("\n");
}

static void print_json(const struct ck_view *v, size_t n)
{
    printf("{\"nodes\":[");
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"id\":%u,\"answered\":%s", i ? "," : "", v[i].nc->id,
               v[i].err ? "false" : "true");
        if (v[i].err) {
            printf(",\"error\":");
            ctl_json_str(v[i].why);
        } else {
            const Nines__CkptConf *a = v[i].a;
            printf(",\"error\":%d,\"detail\":", a->error);
            ctl_json_str(a->detail);
            printf(",\"round\":%llu,\"replicas\":%u,\"abandoned\":%u,\"skipped\":%u,"
                   "\"failed\":%u,\"records\":%llu,\"bytes\":%llu,\"duration_ms\":%llu",
                   (unsigned long long)a->round, a->replicas, a->abandoned, a->skipped,
                   a->failed, (unsigned long long)a->records, (unsigned long long)a->bytes,
                   (unsigned long long)a->duration_ms);
        }
        printf("}");
    }
    printf("]}\n");
}

int ctl_cmd_checkpoint(const struct nines_conf *c, int argc, char **argv)
{
    uint32_t node = 0;
    bool json = false;
    long timeout_s = CKPT_TIMEOUT_S;
    for (int i = 0; i < argc; i++) {
        char *end;
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--node") && i + 1 < argc) {
            errno = 0;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (errno || *end || v == 0 || !nines_conf_node(c, (uint32_t)v)) {
                fprintf(stderr, "ninesctl checkpoint: --node '%s' is not a node of %s\n",
                        argv[i], c->path);
                return 2;
            }
            node = (uint32_t)v;
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            errno = 0;
            timeout_s = strtol(argv[++i], &end, 10);
            if (errno || *end || timeout_s <= 0 || timeout_s > 86400) {
                fprintf(stderr, "ninesctl checkpoint: --timeout '%s' must be 1..86400 "
                        "seconds\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "ninesctl checkpoint: unknown or incomplete option '%s'\n",
                    argv[i]);
            return 2;
        }
    }
    struct ck_view v[NINES_MAX_NODES];
    size_t n = 0;
    memset(v, 0, sizeof v);
    for (uint32_t i = 0; i < c->nnodes; i++)
        if (!node || c->nodes[i].id == node)
            v[n++].nc = &c->nodes[i];
    /* every request first: the nodes' rounds run side by side */
    Nines__CkptReq req = NINES__CKPT_REQ__INIT;
    for (size_t i = 0; i < n; i++) {
        v[i].err = ctl_dial(c, v[i].nc, &v[i].cl, CTL_TIMEOUT_MS);
        if (v[i].err == 0)
            v[i].err = net_client_send(v[i].cl, NINES__MSG_TYPE__CKPT_REQ, &req.base);
        if (v[i].err)
            snprintf(v[i].why, sizeof v[i].why, "%s", nines_errdetail());
    }
    uint64_t deadline = nclock_ms() + (uint64_t)timeout_s * 1000u;
    for (size_t i = 0; i < n; i++) {
        if (v[i].err)
            continue; /* not asked: `why` says so */
        while (v[i].err == 0 && !v[i].a) {
            uint64_t now = nclock_ms();
            if (now >= deadline) {
                v[i].err = nines_err(NINES_ETIMEDOUT, "no answer within %ld s (--timeout)",
                                     timeout_s);
                break;
            }
            struct net_msg_in in;
            v[i].err = net_client_recv(v[i].cl, &in, (int)(deadline - now));
            if (v[i].err || in.type != NINES__MSG_TYPE__CKPT_CONF)
                continue;
            v[i].a = nines__ckpt_conf__unpack(NULL, in.body_len, in.body);
            if (!v[i].a)
                v[i].err = nines_err(NINES_EPROTO, "node %u sent an undecodable CKPT_CONF",
                                     v[i].nc->id);
        }
        if (v[i].err)
            snprintf(v[i].why, sizeof v[i].why, "%s", nines_errdetail());
    }
    int ret = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].err || v[i].a->error)
            ret = 1;
    if (json)
        print_json(v, n);
    else
        for (size_t i = 0; i < n; i++)
            print_text(&v[i]);
    for (size_t i = 0; i < n; i++) {
        if (v[i].cl)
            net_client_close(v[i].cl);
        if (v[i].a)
            nines__ckpt_conf__free_unpacked(v[i].a, NULL);
    }
    return ret;
}
