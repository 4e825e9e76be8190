/* Commit epochs, the kernel service's part (README "Commit epochs: SAVE";
 * supervisor/README.md "Global checkpoints"): GCP_SAVE_REQ from the
 * node-set coordinator's supervisor is answered GCP_SAVE_CONF once this
 * node's disk log is durable up to the stream offset it had taken when the
 * request arrived (the test commits that wait for the disk use: `acc` at
 * arrival <= `dacc`), GCP_SAVE_REF when it cannot be (no disk log, a gap,
 * stopped). RT_MSG_GCP_SAVED from this node's supervisor (the restorable
 * file is durable) raises `restorable`. */
#include "ksvc_int.h"

#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "nlog.h"

#include <stdlib.h>
#include <string.h>

#define SK_GCP_WAIT_MAX 16 /* saves waiting at once (one round per coordinator) */

struct sk_gcp_wait {
    net_addr from;          /* the coordinator's supervisor (0: this node) */
    uint64_t round, gci;
    uint64_t pos;           /* stream offset taken at arrival: durable past it -> CONF */
    uint64_t gen;           /* the disk log's gap generation at arrival */
};

struct sk_gcp {
    struct sk_gcp_wait w[SK_GCP_WAIT_MAX]; /* in arrival order, pos ascending */
    uint32_t n;
    uint64_t conf, ref;     /* saves answered */
};

static struct sk_gcp *sk_gcp_get(struct ksvc *k)
{
    if (!k->gcp)
        k->gcp = calloc(1, sizeof *k->gcp);
    return k->gcp;
}

static void send_conf(struct ksvc *k, const struct sk_gcp_wait *w, uint64_t durable)
{
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__GCP_SAVE_CONF);
    Nines__GcpSaveConf *c = m ? RT_BODY(m, Nines__GcpSaveConf, nines__gcp_save_conf__init)
                              : NULL;
    if (!c) {
        if (m)
            rt_msg_free(k->rt, m);
        return; /* the round fails at its bound */
    }
    c->node = k->self;
    c->round = w->round;
    c->gci = w->gci;
    c->durable = durable;
    if (k->gcp)
        k->gcp->conf++;
    (void)rt_send(k->rt, w->from, RT_SVC_SUP, m);
}

static void send_ref(struct ksvc *k, net_addr from, uint64_t round, int rc, const char *detail)
{
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__GCP_SAVE_REF);
    Nines__GcpSaveRef *r = m ? RT_BODY(m, Nines__GcpSaveRef, nines__gcp_save_ref__init) : NULL;
    size_t n = strlen(detail) + 1;
    char *d = r ? rt_msg_alloc(m, n) : NULL;
    if (!d) {
        if (m)
            rt_msg_free(k->rt, m);
        return;
    }
    memcpy(d, detail, n);
    r->node = k->self;
    r->round = round;
    r->error = rc;
    r->detail = d;
    if (k->gcp)
        k->gcp->ref++;
    (void)rt_send(k->rt, from, RT_SVC_SUP, m);
}

/* Answer every waiting save that the disk log now settles: CONF once
 * durable past its offset, REF when the log cannot make it durable (a gap
 * began after it arrived, stopped, off). */
static void sk_gcp_check(struct ksvc *k)
{
    struct sk_gcp *g = k->gcp;
    if (!g || !g->n)
        return;
    uint64_t taken, durable, pos, gen;
    int rc = sk_dlog_save_pos(k, &taken, &durable, &pos, &gen);
    char detail[400];
    if (rc)
        snprintf(detail, sizeof detail, "%s", nines_errdetail());
    uint32_t keep = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        const struct sk_gcp_wait *w = &g->w[i];
        if (rc) {
            send_ref(k, w->from, w->round, rc, detail);
        } else if (w->gen != gen) {
            snprintf(detail, sizeof detail, "node %u's disk log had a gap after the save of "
                     "epoch %llu was asked: records before it may be lost", k->self,
                     (unsigned long long)w->gci);
            send_ref(k, w->from, w->round, NINES_ESTATE, detail);
        } else if (w->pos <= durable) {
            send_conf(k, w, pos);
        } else {
            g->w[keep++] = *w;
        }
    }
    g->n = keep;
}

void sk_gcp_dlog_done(struct ksvc *k) { sk_gcp_check(k); }

void ksvc_on_gcp_save_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__GcpSaveReq *q = (const Nines__GcpSaveReq *)m->body;
    (void)rt;
    k->cur = m;
    uint64_t taken, durable, pos, gen;
    int rc = sk_dlog_save_pos(k, &taken, &durable, &pos, &gen);
    struct sk_gcp *g = sk_gcp_get(k);
    if (!rc && !g)
        rc = nines_err(NINES_ENOMEM, "node %u: no memory for a save", k->self);
    if (rc) {
        char detail[400];
        snprintf(detail, sizeof detail, "%s", nines_errdetail());
        send_ref(k, m->from, q->round, rc, detail);
        goto done;
    }
    struct sk_gcp_wait w = {.from = m->from, .round = q->round, .gci = q->gci, .pos = taken,
                            .gen = gen};
    if (taken <= durable) { /* every record taken is on disk already */
        send_conf(k, &w, pos);
        goto done;
    }
    if (g->n == SK_GCP_WAIT_MAX) { /* the oldest round is long given up by its coordinator */
        send_ref(k, g->w[0].from, g->w[0].round, NINES_EAGAIN, "too many saves waiting");
        memmove(&g->w[0], &g->w[1], (g->n - 1) * sizeof g->w[0]);
        g->n--;
    }
    g->w[g->n++] = w;
done:
    sk_after(k);
    k->cur = NULL;
}

void sk_gcp_saved(struct ksvc *k, uint64_t gci)
{
    if (gci > k->restorable)
        k->restorable = gci;
    sk_rc_saved(k, gci); /* the disk log's durable bound for a restart (ksvc_restart.c) */
}

uint64_t ksvc_restorable(const struct ksvc *k) { return k ? k->restorable : 0; }

void ksvc_gcp_status(const struct ksvc *k, struct ksvc_gcp_status *out)
{
    memset(out, 0, sizeof *out);
    if (!k)
        return;
    out->restorable = k->restorable;
    if (k->gcp) {
        out->waiting = k->gcp->n;
        out->conf = k->gcp->conf;
        out->ref = k->gcp->ref;
    }
}

void sk_gcp_fini(struct ksvc *k)
{
    free(k->gcp);
    k->gcp = NULL;
}
