/* Commit epochs at the transaction controller (txctl/README.md "Commit
 * epochs"; the design: the global checkpoint protocol, GCP). Every COMMIT
 * decision this controller takes — the hsc recording COMMIT, or the ctl
 * deciding alone (no hsc) — is stamped with the current epoch `gci`. The
 * coordinator's supervisor closes an epoch in two steps: GCP_PREPARE_REQ
 * stops stamping here (decisions wait in a queue; ABORT never waits),
 * GCP_COMMIT_REQ{g} switches to epoch g, takes the waiting decisions with
 * it and is confirmed (GCP_COMMIT_CONF) once no decision stamped below g is
 * incomplete here. A stop that outlives its hold_ms ends by itself and
 * voids its round (GCP_COMMIT_REF). The local notice RT_MSG_GCP_SAVED
 * raises `restorable`; under disk_log sync a committed client answer waits
 * for its epoch to be restorable. */
#include "txc_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#define TXC_GCP_HOLD_MIN_MS 50u  /* a PREPARE without a usable hold_ms stops this long */
#define TXC_GCP_HELD_INIT 256u   /* held answers: first capacity (doubles) */

/* The hold timer's cookie: bit 55 and the stop's sequence number below it.
 * Top 8 bits 0 (no txn id); outcome questions' ids stay far below 2^55. */
#define TXC_GCP_COOKIE_BIT (UINT64_C(1) << 55)
#define TXC_GCP_COOKIE_SEQ (TXC_GCP_COOKIE_BIT - 1)

static struct txc_gcp *G(struct txc *t) { return &t->gcp; }

static bool sync_log(const struct txc *t)
{
    const struct nines_conf *c = rt_conf(t->rt);
    return c && c->disk_log == NINES_DISK_LOG_SYNC;
}

int txc_gcp_init(struct txc *t)
{
    struct txc_gcp *g = G(t);
    memset(g, 0, sizeof *g);
    g->on = t->cfg.gcp_on;
    g->queue = calloc(t->cfg.max_txns, sizeof *g->queue);
    if (!g->queue)
        return nines_err(NINES_ENOMEM, "no memory for %u decisions waiting for a commit epoch",
                         t->cfg.max_txns);
    return 0;
}

void txc_gcp_fini(struct txc *t)
{
    struct txc_gcp *g = G(t);
    for (uint32_t i = 0; i < g->nheld; i++) {
        struct rt_msg *m = g->held[i].m;
        while (m) {
            struct rt_msg *n = m->next;
            m->next = NULL;
            rt_msg_free(t->rt, m);
            m = n;
        }
    }
    if (g->hold_timer > 0)
        rt_timer_cancel(t->rt, g->hold_timer);
    free(g->held);
    free(g->queue);
    memset(g, 0, sizeof *g);
}

/* ---- incomplete decisions per epoch ------------------------------------- */

/* cnt[0..ncnt) ascending by gci, every n > 0. Full: the two oldest merge
 * under the lower epoch — conservative (an entry counted below its epoch
 * can only delay a COMMIT_CONF, never let one pass early). */
static void cnt_add(struct txc_gcp *g, uint64_t gci)
{
    uint32_t i = 0; /* the first entry >= gci */
    while (i < g->ncnt && g->cnt[i].gci < gci)
        i++;
    if (i < g->ncnt && g->cnt[i].gci == gci) {
        g->cnt[i].n++;
        return;
    }
    if (g->ncnt == TXC_GCP_CNT_MAX) {
        g->cnt[0].n += g->cnt[1].n; /* the two oldest, under the lower epoch */
        memmove(&g->cnt[1], &g->cnt[2], (g->ncnt - 2) * sizeof g->cnt[0]);
        g->ncnt--;
        if (i >= 2)
            i--; /* (i == 1: gci lies between the merged two: it goes right after) */
    }
    memmove(&g->cnt[i + 1], &g->cnt[i], (g->ncnt - i) * sizeof g->cnt[0]);
    g->cnt[i] = (struct txc_gcp_cnt){gci, 1};
    g->ncnt++;
}

/* A decision stamped gci is complete: the entry holding it (the largest
 * epoch <= gci; merged ones sit below their own). */
static void cnt_sub(struct txc_gcp *g, uint64_t gci)
{
    for (uint32_t i = g->ncnt; i-- > 0;) {
        if (g->cnt[i].gci > gci)
            continue;
        if (--g->cnt[i].n == 0) {
            memmove(&g->cnt[i], &g->cnt[i + 1], (g->ncnt - i - 1) * sizeof g->cnt[0]);
            g->ncnt--;
        }
        return;
    }
    N_DASSERT(!"a completed decision was never counted");
}

static uint32_t incomplete_below(const struct txc_gcp *g, uint64_t gci)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->ncnt && g->cnt[i].gci < gci; i++)
        n += g->cnt[i].n;
    return n;
}

/* ---- answers to the coordinator's supervisor ---------------------------- */

static void send_commit_conf(struct txc *t)
{
    struct txc_gcp *g = G(t);
    struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__GCP_COMMIT_CONF);
    Nines__GcpCommitConf *b = m ? RT_BODY(m, Nines__GcpCommitConf, nines__gcp_commit_conf__init)
                                : NULL;
    if (!b) {
        if (m)
            rt_msg_free(t->rt, m);
        NLOG_ERROR("txc", "node %u: no memory for GCP_COMMIT_CONF of round %" PRIu64 " (the "
                   "coordinator's round fails; the next one asks again)", t->self,
                   g->conf_round);
        return;
    }
    b->node = t->self;
    b->round = g->conf_round;
    b->gci = g->conf_gci;
    g->st.commit_confs++;
    txc_send(t, g->conf_to, RT_SVC_SUP, m);
}

/* The pending COMMIT_CONF goes once nothing stamped below its epoch is
 * incomplete here. */
static void check_conf(struct txc *t)
{
    struct txc_gcp *g = G(t);
    if (g->conf_due && incomplete_below(g, g->conf_gci) == 0) {
        g->conf_due = false;
        send_commit_conf(t);
    }
}

static void send_commit_ref(struct txc *t, uint32_t to, uint64_t round, int err,
                            const char *detail)
{
    struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__GCP_COMMIT_REF);
    Nines__GcpCommitRef *b = m ? RT_BODY(m, Nines__GcpCommitRef, nines__gcp_commit_ref__init)
                               : NULL;
    char *d = b ? rt_msg_alloc(m, strlen(detail) + 1) : NULL;
    if (!d) {
        if (m)
            rt_msg_free(t->rt, m);
        return; /* the coordinator's bound fails the round */
    }
    strcpy(d, detail);
    b->node = t->self;
    b->round = round;
    b->error = err;
    b->detail = d;
    txc_send(t, to, RT_SVC_SUP, m);
}

/* ---- stamping ------------------------------------------------------------ */

/* Keep only the queue's ids of transactions still waiting (at most one
 * per pool entry: each waits once). */
static void compact(struct txc *t)
{
    struct txc_gcp *g = G(t);
    uint32_t keep = 0;
    for (uint32_t i = 0; i < g->nq; i++) {
        const struct txc_txn *x = txc_find(t, g->queue[i]);
        if (x && x->gcp_wait)
            g->queue[keep++] = g->queue[i];
    }
    g->nq = keep;
}

bool txc_gcp_stamp(struct txc *t, struct txc_txn *x)
{
    struct txc_gcp *g = G(t);
    if (!g->on) {
        x->gci = 0;
        return true;
    }
    if (x->gcp_counted)
        return true; /* stamped before (a decision taken again) */
    if (g->gci == 0 || g->stopped) {
        if (!x->gcp_wait) {
            if (g->nq == t->cfg.max_txns)
                compact(t); /* ids of transactions that aborted meanwhile go */
            N_ASSERT(g->nq < t->cfg.max_txns); /* x waits and is not in it yet */
            g->queue[g->nq++] = x->id;
            x->gcp_wait = true;
            g->st.waited++;
        }
        return false;
    }
    x->gcp_wait = false;
    x->gci = g->gci;
    x->gcp_counted = true;
    cnt_add(g, g->gci);
    g->st.stamped++;
    return true;
}

void txc_gcp_done(struct txc *t, struct txc_txn *x)
{
    struct txc_gcp *g = G(t);
    if (!x->gcp_counted)
        return;
    x->gcp_counted = false;
    cnt_sub(g, x->gci);
    check_conf(t);
}

/* Stamping may go on (a COMMIT_REQ, an expired hold, a new node set): the
 * decisions that waited are taken now, in arrival order. */
static void unblock(struct txc *t)
{
    struct txc_gcp *g = G(t);
    g->stopped = false;
    if (g->hold_timer > 0)
        rt_timer_cancel(t->rt, g->hold_timer);
    g->hold_timer = 0;
    if (g->gci == 0)
        return; /* no epoch known yet: they wait for the first COMMIT_REQ */
    uint32_t n = g->nq;
    g->nq = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct txc_txn *x = txc_find(t, g->queue[i]);
        if (!x || !x->gcp_wait)
            continue; /* aborted or forgotten meanwhile */
        x->gcp_wait = false;
        if (txc_is_hsc_state(x->st))
            txc_hsc_gcp_decide(t, x);
        else
            txc_ctl_gcp_decide(t, x);
    }
}

/* ---- the coordinator's requests ----------------------------------------- */

static uint32_t sender(const struct txc *t, const struct rt_msg *m)
{
    if (m->from == 0 || m->from >= NET_CONN_BASE)
        return t->self;
    return (uint32_t)m->from;
}

void txc_on_gcp_prepare_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    struct txc_gcp *g = G(t);
    const Nines__GcpPrepareReq *b = (const Nines__GcpPrepareReq *)m->body;
    if (m->from >= NET_CONN_BASE)
        return;
    uint32_t hold = b->hold_ms >= TXC_GCP_HOLD_MIN_MS ? b->hold_ms : TXC_GCP_HOLD_MIN_MS;
    if (g->hold_timer > 0)
        rt_timer_cancel(rt, g->hold_timer);
    g->stopped = true;
    g->stop_coord = b->coordinator;
    g->stop_round = b->round;
    g->stop_seq = (g->stop_seq + 1) & TXC_GCP_COOKIE_SEQ;
    g->hold_timer = rt_timer_add(rt, RT_SVC_TXC, (uint64_t)hold * 1000u,
                                 TXC_GCP_COOKIE_BIT | g->stop_seq);
    if (g->hold_timer < 0) {
        /* without its bound the stop could last for good: do not stop */
        NLOG_ERROR("txc", "node %u: GCP round %" PRIu64 ": no hold timer (%s): not stopped, "
                   "its COMMIT_REQ will be refused", t->self, b->round, nines_errdetail());
        g->hold_timer = 0;
        g->stopped = false;
        return; /* no answer: the coordinator's bound fails the round */
    }
    g->st.prepares++;
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__GCP_PREPARE_CONF);
    Nines__GcpPrepareConf *c = r ? RT_BODY(r, Nines__GcpPrepareConf,
                                           nines__gcp_prepare_conf__init)
                                 : NULL;
    if (!c) {
        if (r)
            rt_msg_free(rt, r);
        return; /* stopped until the hold ends; the round fails */
    }
    c->node = t->self;
    c->round = b->round;
    c->gci = g->gci;
    txc_send(t, sender(t, m), RT_SVC_SUP, r);
}

void txc_on_gcp_commit_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    struct txc_gcp *g = G(t);
    const Nines__GcpCommitReq *b = (const Nines__GcpCommitReq *)m->body;
    if (m->from >= NET_CONN_BASE)
        return;
    uint32_t to = sender(t, m);
    bool ours = g->stopped && g->stop_round == b->round && g->stop_coord == b->coordinator;
    if (b->gci > g->gci)
        g->gci = b->gci; /* later stamps are higher either way (harmless) */
    if (!ours) {
        /* this round's stop ended by its hold (or never reached us): decisions
         * were stamped meanwhile with the old epoch, after other controllers
         * may have switched — the round cannot vouch for the switch */
        char d[200];
        snprintf(d, sizeof d, "node %u: GCP round %" PRIu64 " of coordinator %u: stamping was "
                 "not stopped here for it (its hold of %s expired, or its PREPARE never came)",
                 t->self, b->round, b->coordinator, g->stop_round == b->round ? "the round"
                                                                              : "another round");
        g->st.commit_refs++;
        NLOG_INFO("txc", "%s: GCP_COMMIT_REF", d);
        send_commit_ref(t, to, b->round, NINES_ESTATE, d);
        if (!g->stopped)
            unblock(t); /* a first epoch: decisions that waited for it go now */
        return;
    }
    unblock(t);
    g->st.commits++;
    /* one pending confirmation: a newer round replaces one the coordinator
     * gave up on */
    g->conf_due = true;
    g->conf_to = to;
    g->conf_round = b->round;
    g->conf_gci = b->gci;
    check_conf(t);
    (void)rt;
}

bool txc_gcp_on_timer(struct txc *t, uint64_t cookie)
{
    struct txc_gcp *g = G(t);
    if ((cookie >> 55) != 1)
        return false;
    if (!g->stopped || (cookie & TXC_GCP_COOKIE_SEQ) != g->stop_seq)
        return true; /* an old stop's timer */
    g->hold_timer = 0;
    g->st.holds_expired++;
    NLOG_WARN("txc", "node %u: GCP round %" PRIu64 " of coordinator %u: no COMMIT_REQ within "
              "its hold; stamping again (the round is void here)", t->self, g->stop_round,
              g->stop_coord);
    unblock(t);
    return true;
}

void txc_gcp_on_nodeset(struct txc *t)
{
    /* a new install aborts any round in progress: the new set's coordinator
     * starts afresh (its requests of the old epoch are dropped anyway) */
    if (G(t)->stopped)
        unblock(t);
}

/* ---- restorable epochs and held answers ---------------------------------- */

bool txc_gcp_visible(const struct txc *t, uint64_t gci)
{
    const struct txc_gcp *g = &t->gcp;
    return !g->on || !sync_log(t) || gci <= g->restorable;
}

bool txc_gcp_hold_answer(struct txc *t, struct txc_txn *x, struct rt_msg *m, net_addr conn)
{
    struct txc_gcp *g = G(t);
    if (!x->gci || txc_gcp_visible(t, x->gci))
        return false;
    if (g->nheld == g->capheld) {
        uint32_t cap = g->capheld ? 2 * g->capheld : TXC_GCP_HELD_INIT;
        struct txc_gcp_held *h = realloc(g->held, cap * sizeof *h);
        if (!h) {
            /* never send "committed" before its epoch is restorable: the
             * answer is lost, the client asks for the outcome */
            NLOG_ERROR("txc", "txn %" PRIx64 ": no memory to hold its answer until epoch %"
                       PRIu64 " is restorable: answer dropped", x->id, x->gci);
            rt_msg_free(t->rt, m);
            return true;
        }
        g->held = h;
        g->capheld = cap;
    }
    /* the answer points into the transaction's kept messages (results):
     * they go with it (chained behind it) */
    N_ASSERT(m->next == NULL);
    m->next = x->kept;
    x->kept = NULL;
    txc_release_kept(t, x); /* only resets what lived in those arenas */
    g->held[g->nheld++] = (struct txc_gcp_held){m, conn, x->gci, rt_now_us(t->rt)};
    g->st.held++;
    return true;
}

void txc_gcp_on_saved(struct txc *t, uint64_t gci)
{
    struct txc_gcp *g = G(t);
    if (gci <= g->restorable)
        return;
    g->restorable = gci;
    uint64_t now = rt_now_us(t->rt);
    uint32_t keep = 0;
    for (uint32_t i = 0; i < g->nheld; i++) {
        struct txc_gcp_held h = g->held[i];
        if (h.gci > gci) {
            g->held[keep++] = h;
            continue;
        }
        uint64_t w = now - h.since_us;
        g->st.held_wait_us += w;
        if (w > g->st.held_wait_max_us)
            g->st.held_wait_max_us = w;
        g->st.released++;
        struct rt_msg *k = h.m->next;
        h.m->next = NULL;
        if (txc_to_client(t, h.conn, h.m)) /* packed or delivered now */
            NLOG_DEBUG("txc", "held answer lost: %s", nines_errdetail());
        while (k) {
            struct rt_msg *n = k->next;
            k->next = NULL;
            rt_msg_free(t->rt, k);
            k = n;
        }
    }
    g->nheld = keep;
}

void txc_get_gcp_stats(const struct txc *t, struct txc_gcp_stats *out)
{
    const struct txc_gcp *g = &t->gcp;
    *out = g->st;
    out->on = g->on;
    out->gci = g->gci;
    out->restorable = g->restorable;
    out->stopped = g->stopped;
    out->waiting = g->nq;
    out->held_now = g->nheld;
    out->incomplete = incomplete_below(g, UINT64_MAX);
}
