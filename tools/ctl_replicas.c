/* ninesctl replicas: compare each fragment's primary with its hot standby.
 * Asks every node for KERN_DIGEST_CONF (per replica: rows, a digest over
 * keys, records and state ids, next LSN) and pairs them by (table, frag). */
#include "ctl.h"

#include "net/net.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_TIMEOUT_MS 3000
#define REP_MAX 65536

struct rep {
    uint32_t table, frag, node;
    bool primary;
    uint64_t rows, digest, next_lsn;
};

static int rep_cmp(const void *a, const void *b)
{
    const struct rep *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    if (x->frag != y->frag)
        return x->frag < y->frag ? -1 : 1;
    if (x->primary != y->primary)
        return x->primary ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* Collect one node's replica digests into reps[*n..]. */
static int ask_node(const struct nines_conf *c, const struct nines_node_conf *nc, uint32_t table,
                    struct rep *reps, size_t *n)
{
    struct net_client *cl;
    int rc = net_client_connect(&cl, nc->host, nc->port, c->cluster, CTL_TIMEOUT_MS);
    if (rc)
        return rc;
    Nines__KernDigestReq req = NINES__KERN_DIGEST_REQ__INIT;
    req.table = table;
    rc = net_client_send(cl, NINES__MSG_TYPE__KERN_DIGEST_REQ, &req.base);
    struct net_msg_in in;
    while (rc == 0) {
        rc = net_client_recv(cl, &in, CTL_TIMEOUT_MS);
        if (rc == 0 && in.type == NINES__MSG_TYPE__KERN_DIGEST_CONF)
            break;
    }
    if (rc == 0) {
        Nines__KernDigestConf *conf = nines__kern_digest_conf__unpack(NULL, in.body_len, in.body);
        if (!conf) {
            rc = nines_err(NINES_EPROTO, "node %u sent an undecodable KERN_DIGEST_CONF", nc->id);
        } else {
            for (size_t i = 0; i < conf->n_replicas && *n < REP_MAX; i++) {
                const Nines__ReplicaDigest *d = conf->replicas[i];
                reps[(*n)++] = (struct rep){d->table, d->frag, nc->id, d->primary,
                                            d->rows, d->digest, d->next_lsn};
            }
            nines__kern_digest_conf__free_unpacked(conf, NULL);
        }
    }
    net_client_close(cl);
    return rc;
}

int ctl_cmd_replicas(const struct nines_conf *c, int argc, char **argv)
{
    bool json = false;
    uint32_t table = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--table") && i + 1 < argc)
            table = (uint32_t)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "ninesctl replicas: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    struct rep *reps = calloc(REP_MAX, sizeof *reps);
    if (!reps)
        return 1;
    size_t n = 0;
    bool all_answered = true;
    for (uint32_t i = 0; i < c->nnodes; i++)
        if (ask_node(c, &c->nodes[i], table, reps, &n)) {
            fprintf(stderr, "ninesctl replicas: node %u: %s\n", c->nodes[i].id, nines_errdetail());
            all_answered = false;
        }
    qsort(reps, n, sizeof *reps, rep_cmp);
    size_t frags = 0, equal = 0, single = 0;
    if (json)
        printf("{\"fragments\":[");
    else
        printf("%-6s %-5s %-8s %-10s %-18s %-8s %-10s %-18s %s\n", "TABLE", "FRAG", "PRIMARY",
               "ROWS", "DIGEST", "STANDBY", "ROWS", "DIGEST", "STATE");
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && reps[j].table == reps[i].table && reps[j].frag == reps[i].frag)
            j++;
        const struct rep *p = NULL, *s = NULL;
        for (size_t k = i; k < j; k++) {
            if (reps[k].primary && !p)
                p = &reps[k];
            else if (!reps[k].primary && !s)
                s = &reps[k];
        }
        const char *state;
        if (!p || !s) {
            state = "ONE-REPLICA";
            single++;
        } else if (p->rows == s->rows && p->digest == s->digest) {
            state = "EQUAL";
            equal++;
        } else {
            state = "DIFFERENT";
        }
        if (json) {
            printf("%s{\"table\":%u,\"frag\":%u,\"state\":\"%s\"", frags ? "," : "", reps[i].table,
                   reps[i].frag, state);
            if (p)
                printf(",\"primary\":{\"node\":%u,\"rows\":%llu,\"digest\":\"%016llx\"}", p->node,
                       (unsigned long long)p->rows, (unsigned long long)p->digest);
            if (s)
                printf(",\"standby\":{\"node\":%u,\"rows\":%llu,\"digest\":\"%016llx\"}", s->node,
                       (unsigned long long)s->rows, (unsigned long long)s->digest);
            printf("}");
        } else {
            printf("%-6u %-5u %-8u %-10llu %016llx   %-8u %-10llu %016llx   %s\n", reps[i].table,
                   reps[i].frag, p ? p->node : 0, p ? (unsigned long long)p->rows : 0,
                   p ? (unsigned long long)p->digest : 0, s ? s->node : 0,
                   s ? (unsigned long long)s->rows : 0, s ? (unsigned long long)s->digest : 0,
                   state);
        }
        frags++;
        i = j;
    }
    bool ok = all_answered && frags > 0 && equal == frags;
    if (json)
        printf("],\"fragments_total\":%zu,\"equal\":%zu,\"one_replica\":%zu,\"all_answered\":%s,"
               "\"ok\":%s}\n",
               frags, equal, single, all_answered ? "true" : "false", ok ? "true" : "false");
    else
        printf("%zu fragments: %zu equal, %zu with one replica, %zu different%s\n", frags, equal,
               single, frags - equal - single, all_answered ? "" : " (some nodes did not answer)");
    free(reps);
    return ok ? 0 : 1;
}
