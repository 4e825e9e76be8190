/* Commit epochs: the node-set coordinator's global-checkpoint rounds
 * (supervisor/README.md "Global checkpoints"). Pure like sup_tb.c: no
 * sockets, no clock; sup_gcp_node.c wires it to the runtime. */
#include "sup_gcp.h"

#include "nines/errors.h"
#include "nlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define BIT(id) ((uint64_t)1 << ((id) - 1))
#define MAX_ID 64

const char *sup_gcp_phase_name(enum sup_gcp_phase p)
{
    switch (p) {
    case SUP_GCP_IDLE:
        return "idle";
    case SUP_GCP_PREPARING:
        return "preparing";
    case SUP_GCP_COMMITTING:
        return "committing";
    case SUP_GCP_SAVING:
        return "saving";
    default:
        return "invalid";
    }
}

void sup_gcp_init(struct sup_gcp *g, const struct sup_gcp_config *cfg,
                  const struct sup_gcp_ops *ops, void *ctx)
{
    memset(g, 0, sizeof *g);
    g->cfg = *cfg;
    g->ops = ops;
    g->ctx = ctx;
}

/* Does this node coordinate the installed set, serving? */
static bool coordinating(const struct sup_gcp *g, const struct sup_gcp_view *v)
{
    return g->cfg.on && v->epoch && v->coordinator == g->cfg.self && v->serving &&
           (v->members & BIT(g->cfg.self));
}

/* `known` starts above every epoch this node persisted (and the restart
 * set's restorable epoch) by SUP_GCP_JUMP: after a whole-cluster restart
 * an epoch stamped before the crash may exceed every one persisted; the
 * first epoch stamped after it must not repeat one (README "Global
 * checkpoints": the first round after a restart). */
static void take_base(struct sup_gcp *g, const struct sup_gcp_view *v)
{
    uint64_t base = 0;
    if (!g->base_done && g->cfg.persisted) {
        g->base_done = true;
        base = g->cfg.persisted;
    }
    if (v->restart_gci && v->restart_gci != g->restart_seen) {
        g->restart_seen = v->restart_gci;
        if (v->restart_gci > base)
            base = v->restart_gci;
        if (g->cfg.persisted > base)
            base = g->cfg.persisted;
    }
    if (base && base + SUP_GCP_JUMP > g->known)
        g->known = base + SUP_GCP_JUMP;
}

static void end_round(struct sup_gcp *g, uint64_t now, bool ok)
{
    g->phase = SUP_GCP_IDLE;
    g->asked = g->answered = 0;
    /* under sync the next round starts at once (a commit's answer waits
     * for its epoch to be restorable), but not sooner than
     * SUP_GCP_SYNC_MIN_US after this one started; after a failure, one
     * interval */
    if (ok && g->cfg.sync) {
        uint64_t floor = g->started_us + SUP_GCP_SYNC_MIN_US;
        g->next_us = floor > now ? floor : now;
    } else {
        g->next_us = now + g->cfg.interval_us;
    }
}

static void fail(struct sup_gcp *g, uint64_t now, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The round failed: nothing restorable changes. The txctls stop stamping
 * at most hold_ms (PREPARE) and switched epochs stay switched (COMMIT):
 * both harmless. Logged once per burst of failures. */
static void fail(struct sup_gcp *g, uint64_t now, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->stats.last_why, sizeof g->stats.last_why, fmt, ap);
    va_end(ap);
    g->stats.failed++;
    if (g->burst++ == 0)
        NLOG_WARN("sup", "node %u: commit-epoch round %llu (node set %llu) failed while %s: "
                  "%s (further failures in a row are counted, not logged)", g->cfg.self,
                  (unsigned long long)g->round, (unsigned long long)g->epoch,
                  sup_gcp_phase_name(g->phase), g->stats.last_why);
    end_round(g, now, false);
}

static void start(struct sup_gcp *g, const struct sup_gcp_view *v, uint64_t now)
{
    g->phase = SUP_GCP_PREPARING;
    g->round++;
    g->epoch = v->epoch;
    g->asked = v->members;
    g->answered = 0;
    g->gmax = g->known;
    g->g = 0;
    g->started_us = now;
    g->deadline_us = now + g->cfg.answer_us;
    g->stats.rounds++;
    Nines__GcpPrepareReq q = NINES__GCP_PREPARE_REQ__INIT;
    q.coordinator = g->cfg.self;
    q.epoch = g->epoch;
    q.round = g->round;
    q.hold_ms = g->cfg.hold_ms;
    for (uint32_t id = 1; id <= MAX_ID; id++)
        if (g->asked & BIT(id))
            g->ops->prepare(g->ctx, id, &q);
}

/* Is this answer for the round's phase, from a member asked that has not
 * answered yet? */
static bool expected(const struct sup_gcp *g, enum sup_gcp_phase ph, uint32_t from,
                     uint64_t round)
{
    return g->phase == ph && round == g->round && from >= 1 && from <= MAX_ID &&
           (g->asked & BIT(from)) && !(g->answered & BIT(from));
}

void sup_gcp_step(struct sup_gcp *g, const struct sup_gcp_view *v, uint64_t now)
{
    take_base(g, v);
    if (v->epoch != g->last_epoch) {
        g->last_epoch = v->epoch;
        /* this node takes over from another coordinator: a round of that
         * one may have failed after some txctls switched to an epoch no
         * live txctl reports (they died with it) — its first epoch jumps
         * (README "Global checkpoints": a new coordinator) */
        if (v->coordinator == g->cfg.self && g->prev_coord && g->prev_coord != g->cfg.self)
            g->take_over = true;
        g->prev_coord = v->coordinator;
        switch (g->phase) {
        case SUP_GCP_IDLE:
            break;
        case SUP_GCP_PREPARING:
        case SUP_GCP_COMMITTING:
        case SUP_GCP_SAVING:
            /* a round belongs to one node set: the next starts fresh in the new one */
            fail(g, now, "node set %llu was installed (the round was for %llu)",
                 (unsigned long long)v->epoch, (unsigned long long)g->epoch);
            g->next_us = now; /* at once in the new set */
            break;
        default:
            g->phase = SUP_GCP_IDLE;
            break;
        }
    }
    switch (g->phase) {
    case SUP_GCP_PREPARING:
    case SUP_GCP_COMMITTING:
    case SUP_GCP_SAVING:
        if (!coordinating(g, v)) {
            fail(g, now, "this node no longer coordinates a node set it serves");
            return;
        }
        if (now >= g->deadline_us)
            fail(g, now, "nodes %llx did not answer within %llu ms",
                 (unsigned long long)(g->asked & ~g->answered),
                 (unsigned long long)((g->phase == SUP_GCP_COMMITTING ? g->cfg.commit_us
                                                                      : g->cfg.answer_us) /
                                      1000));
        return;
    case SUP_GCP_IDLE:
        break;
    default:
        g->phase = SUP_GCP_IDLE;
        return;
    }
    if (coordinating(g, v) && now >= g->next_us)
        start(g, v, now);
}

void sup_gcp_on_prepare_conf(struct sup_gcp *g, const struct sup_gcp_view *v, uint32_t from,
                             const Nines__GcpPrepareConf *c, uint64_t now)
{
    if (c->gci > g->known)
        g->known = c->gci;
    if (!expected(g, SUP_GCP_PREPARING, from, c->round) || v->epoch != g->epoch)
        return;
    g->answered |= BIT(from);
    if (c->gci > g->gmax)
        g->gmax = c->gci;
    if (g->answered != g->asked)
        return;
    /* every txctl stopped stamping: the new epoch is above every one any
     * of them stamped or this coordinator saw */
    if (g->known > g->gmax)
        g->gmax = g->known;
    if (g->gmax == UINT64_MAX) {
        fail(g, now, "the commit epochs are exhausted");
        return;
    }
    if (g->take_over && g->gmax <= UINT64_MAX - SUP_GCP_JUMP) {
        g->g = g->gmax + SUP_GCP_JUMP;
        g->take_over = false;
    } else {
        g->g = g->gmax + 1;
    }
    g->known = g->g;
    g->phase = SUP_GCP_COMMITTING;
    g->answered = 0;
    g->deadline_us = now + g->cfg.commit_us;
    Nines__GcpCommitReq q = NINES__GCP_COMMIT_REQ__INIT;
    q.coordinator = g->cfg.self;
    q.epoch = g->epoch;
    q.round = g->round;
    q.gci = g->g;
    for (uint32_t id = 1; id <= MAX_ID; id++)
        if (g->asked & BIT(id))
            g->ops->commit(g->ctx, id, &q);
}

static void done(struct sup_gcp *g, uint64_t now)
{
    g->stats.done++;
    g->stats.last_us = now - g->started_us;
    if (g->burst > 1)
        NLOG_INFO("sup", "node %u: commit-epoch rounds succeed again after %u failures (the "
                  "last: %s)", g->cfg.self, g->burst, g->stats.last_why);
    g->burst = 0;
    end_round(g, now, true);
}

void sup_gcp_on_commit_conf(struct sup_gcp *g, const struct sup_gcp_view *v, uint32_t from,
                            const Nines__GcpCommitConf *c, uint64_t now)
{
    if (!expected(g, SUP_GCP_COMMITTING, from, c->round) || v->epoch != g->epoch)
        return;
    if (c->gci != g->g) {
        fail(g, now, "node %u confirmed epoch %llu, the round switched to %llu", from,
             (unsigned long long)c->gci, (unsigned long long)g->g);
        return;
    }
    g->answered |= BIT(from);
    if (g->answered != g->asked)
        return;
    /* every decision stamped below g is complete everywhere now */
    g->wall_us = g->ops->wall_us(g->ctx);
    if (g->g - 1 == 0) { /* the first epoch: nothing stamped below it */
        done(g, now);
        return;
    }
    g->phase = SUP_GCP_SAVING;
    g->answered = 0;
    g->deadline_us = now + g->cfg.answer_us;
    Nines__GcpSaveReq q = NINES__GCP_SAVE_REQ__INIT;
    q.coordinator = g->cfg.self;
    q.epoch = g->epoch;
    q.round = g->round;
    q.gci = g->g - 1;
    for (uint32_t id = 1; id <= MAX_ID; id++)
        if (g->asked & BIT(id))
            g->ops->save(g->ctx, id, &q);
}

void sup_gcp_on_commit_ref(struct sup_gcp *g, const struct sup_gcp_view *v, uint32_t from,
                           const Nines__GcpCommitRef *r, uint64_t now)
{
    if (!expected(g, SUP_GCP_COMMITTING, from, r->round) || v->epoch != g->epoch)
        return;
    fail(g, now, "node %u refused the switch to epoch %llu (%s): %s", from,
         (unsigned long long)g->g, nines_strerror(r->error),
         r->detail && *r->detail ? r->detail : "no detail");
}

void sup_gcp_on_save_conf(struct sup_gcp *g, const struct sup_gcp_view *v, uint32_t from,
                          const Nines__GcpSaveConf *c, uint64_t now)
{
    if (!expected(g, SUP_GCP_SAVING, from, c->round) || v->epoch != g->epoch ||
        c->gci != g->g - 1)
        return;
    g->answered |= BIT(from);
    if (g->answered != g->asked)
        return;
    /* every member's disk log holds every record of the epochs <= g - 1 */
    Nines__GcpSavedOrd o = NINES__GCP_SAVED_ORD__INIT;
    o.coordinator = g->cfg.self;
    o.epoch = g->epoch;
    o.gci = g->g - 1;
    o.wall_us = g->wall_us;
    g->stats.restorable = o.gci;
    g->stats.restorable_wall_us = o.wall_us;
    for (uint32_t id = 1; id <= MAX_ID; id++)
        if (g->asked & BIT(id))
            g->ops->saved(g->ctx, id, &o);
    done(g, now);
}

void sup_gcp_on_save_ref(struct sup_gcp *g, const struct sup_gcp_view *v, uint32_t from,
                         const Nines__GcpSaveRef *r, uint64_t now)
{
    if (!expected(g, SUP_GCP_SAVING, from, r->round) || v->epoch != g->epoch)
        return;
    fail(g, now, "node %u's disk log cannot save epoch %llu (%s): %s", from,
         (unsigned long long)(g->g - 1), nines_strerror(r->error),
         r->detail && *r->detail ? r->detail : "no detail");
}

void sup_gcp_saw(struct sup_gcp *g, uint64_t gci)
{
    if (gci > g->known)
        g->known = gci;
}

uint64_t sup_gcp_deadline(const struct sup_gcp *g, const struct sup_gcp_view *v)
{
    switch (g->phase) {
    case SUP_GCP_PREPARING:
    case SUP_GCP_COMMITTING:
    case SUP_GCP_SAVING:
        return g->deadline_us;
    case SUP_GCP_IDLE:
        break;
    default:
        return 0;
    }
    if (!coordinating(g, v))
        return 0; /* every input calls sup_gcp_step anyway */
    return g->next_us ? g->next_us : 1;
}
