/* Takeback coordination: the node-set coordinator gives a rebuilt
 * standby-only node its dictionary-primary fragments back — drain, then a
 * node-set round that clears its standby-only bit. supervisor/README.md
 * "Takeback"; the kernel side is kernel/svc/README.md "Takeback". */
#include "sup_tb.h"

#include "nines/errors.h"
#include "nlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *sup_tb_state_name(enum sup_tb_state s)
{
    switch (s) {
    case SUP_TB_IDLE:
        return "idle";
    case SUP_TB_DRAINING:
        return "draining";
    case SUP_TB_SWITCHING:
        return "switching";
    default:
        return "invalid";
    }
}

void sup_tb_init(struct sup_tb *tb, const struct sup_tb_config *cfg, const struct sup_tb_ops *ops,
                 void *ctx)
{
    memset(tb, 0, sizeof *tb);
    tb->cfg = *cfg;
    tb->ops = ops;
    tb->ctx = ctx;
}

/* Does this node coordinate the installed set, serving, with no round of
 * its own running? */
static bool coordinating(const struct sup_tb *tb, const struct ns *ns)
{
    const struct ns_view *v = &ns->inst;
    return v->epoch && v->coordinator == tb->cfg.self && ns_serving(ns) &&
           ns_is_member(v, tb->cfg.self, ns->cfg.incarnation) &&
           (v->current & NS_BIT(tb->cfg.self)) && ns->rs == NS_R_IDLE;
}

static void send_req(struct sup_tb *tb, uint32_t to, bool cancel)
{
    Nines__TakebackReq q = NINES__TAKEBACK_REQ__INIT;
    q.node = tb->node;
    q.epoch = tb->epoch;
    q.id = tb->id;
    q.coordinator = tb->cfg.self;
    q.drain_ms = tb->cfg.drain_ms;
    q.hold_ms = tb->cfg.hold_ms;
    q.cancel = cancel;
    tb->ops->send(tb->ctx, to, &q);
}

static void fail(struct sup_tb *tb, uint64_t now, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The attempt failed: drains still held are called off (DRAINING only: a
 * round may be on its way once SWITCHING), back off and try again. */
static void fail(struct sup_tb *tb, uint64_t now, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tb->stats.last_why, sizeof tb->stats.last_why, fmt, ap);
    va_end(ap);
    if (tb->state == SUP_TB_DRAINING)
        for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
            if (tb->asked & NS_BIT(id))
                send_req(tb, id, true);
    tb->state = SUP_TB_IDLE;
    tb->stats.failed++;
    tb->fails++;
    uint64_t b = tb->cfg.backoff_us;
    for (uint32_t i = 1; i < tb->fails && b < tb->cfg.backoff_max_us; i++)
        b *= 2;
    if (b > tb->cfg.backoff_max_us)
        b = tb->cfg.backoff_max_us;
    tb->retry_at_us = now + b;
    NLOG_INFO("sup", "node %u: takeback of node %u, attempt %llu (node set %llu): %s; again in "
              "%llu ms", tb->cfg.self, tb->node, (unsigned long long)tb->id,
              (unsigned long long)tb->epoch, tb->stats.last_why, (unsigned long long)b / 1000);
}

/* Every asked node drained: the round. */
static void try_switch(struct sup_tb *tb, uint64_t now)
{
    if (tb->answered != tb->asked)
        return;
    int rc = tb->ops->takeback(tb->ctx, tb->node, tb->epoch);
    if (rc) {
        fail(tb, now, "no round: %s", nines_errdetail());
        return;
    }
    tb->state = SUP_TB_SWITCHING;
    tb->deadline_us = now + tb->cfg.switch_us;
    NLOG_INFO("sup", "node %u: takeback of node %u: %u fragments drained at nodes %llx in %llu "
              "us; asking for the round that clears its standby-only bit", tb->cfg.self,
              tb->node, tb->frags, (unsigned long long)tb->asked,
              (unsigned long long)(now - tb->started_us));
}

static void start(struct sup_tb *tb, const struct ns *ns, uint32_t node, uint64_t now)
{
    const struct ns_view *v = &ns->inst;
    tb->state = SUP_TB_DRAINING;
    tb->node = node;
    tb->epoch = v->epoch;
    tb->id++;
    tb->asked = v->current & v->members & ~NS_BIT(node);
    tb->answered = 0;
    tb->frags = 0;
    tb->started_us = now;
    tb->deadline_us = now + tb->cfg.answer_us;
    tb->stats.attempts++;
    NLOG_INFO("sup", "node %u: takeback of node %u (standby-only since epoch %llu), attempt "
              "%llu: nodes %llx drain the primaries that move to it (node set %llu)",
              tb->cfg.self, node, (unsigned long long)v->since[node], (unsigned long long)tb->id,
              (unsigned long long)tb->asked, (unsigned long long)v->epoch);
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (tb->asked & NS_BIT(id))
            send_req(tb, id, false);
    try_switch(tb, now); /* nobody to drain (asked is empty) */
}

void sup_tb_step(struct sup_tb *tb, const struct ns *ns, uint64_t now)
{
    const struct ns_view *v = &ns->inst;
    /* when each standby-only node was first seen so (the settle time) */
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++) {
        if (!(v->standby_only & NS_BIT(id))) {
            tb->seen_us[id] = tb->seen_since[id] = 0;
        } else if (tb->seen_since[id] != v->since[id]) {
            tb->seen_since[id] = v->since[id];
            tb->seen_us[id] = now;
        }
    }
    if (v->epoch != tb->last_epoch) {
        tb->last_epoch = v->epoch;
        switch (tb->state) {
        case SUP_TB_IDLE:
            break;
        case SUP_TB_DRAINING:
        case SUP_TB_SWITCHING:
            if ((v->current & NS_BIT(tb->node)) && !(v->standby_only & NS_BIT(tb->node))) {
                tb->stats.done++;
                tb->stats.last_us = now - tb->started_us;
                tb->stats.last_node = tb->node;
                tb->stats.last_frags = tb->frags;
                tb->fails = 0;
                tb->retry_at_us = 0;
                tb->state = SUP_TB_IDLE;
                NLOG_INFO("sup", "node %u: node %u took its primaries back in node set %llu: %u "
                          "fragments, %llu us from the drain to the install (attempt %llu)",
                          tb->cfg.self, tb->node, (unsigned long long)v->epoch, tb->frags,
                          (unsigned long long)tb->stats.last_us, (unsigned long long)tb->id);
            } else {
                fail(tb, now, "node set %llu was installed without clearing its standby-only "
                     "bit (standby-only %llx, current %llx)", (unsigned long long)v->epoch,
                     (unsigned long long)v->standby_only, (unsigned long long)v->current);
            }
            break;
        default:
            tb->state = SUP_TB_IDLE;
            break;
        }
    }
    switch (tb->state) {
    case SUP_TB_DRAINING:
        if (now >= tb->deadline_us)
            fail(tb, now, "nodes %llx did not answer within %llu ms",
                 (unsigned long long)(tb->asked & ~tb->answered),
                 (unsigned long long)tb->cfg.answer_us / 1000);
        return;
    case SUP_TB_SWITCHING:
        if (now >= tb->deadline_us)
            fail(tb, now, "no node set was installed within %llu ms of the drain",
                 (unsigned long long)tb->cfg.switch_us / 1000);
        return;
    case SUP_TB_IDLE:
        break;
    default:
        tb->state = SUP_TB_IDLE;
        return;
    }
    if (!tb->cfg.on || now < tb->retry_at_us || !coordinating(tb, ns))
        return;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((v->standby_only & NS_BIT(id)) && (v->current & NS_BIT(id)) && tb->seen_us[id] &&
            now - tb->seen_us[id] >= tb->cfg.settle_us) {
            start(tb, ns, id, now);
            return;
        }
}

void sup_tb_on_conf(struct sup_tb *tb, const struct ns *ns, uint32_t from,
                    const Nines__TakebackConf *c, uint64_t now)
{
    (void)ns;
    if (tb->state != SUP_TB_DRAINING || c->id != tb->id || c->node != tb->node ||
        c->epoch != tb->epoch || from < 1 || from > NS_MAX_NODES || !(tb->asked & NS_BIT(from)) ||
        (tb->answered & NS_BIT(from)))
        return;
    tb->answered |= NS_BIT(from);
    tb->frags += c->frags;
    try_switch(tb, now);
}

void sup_tb_on_ref(struct sup_tb *tb, const struct ns *ns, uint32_t from,
                   const Nines__TakebackRef *r, uint64_t now)
{
    (void)ns;
    if (tb->state != SUP_TB_DRAINING || r->id != tb->id || r->node != tb->node ||
        r->epoch != tb->epoch || from < 1 || from > NS_MAX_NODES || !(tb->asked & NS_BIT(from)))
        return;
    fail(tb, now, "node %u did not drain (%s): %s", from, nines_strerror(r->error),
         r->detail && *r->detail ? r->detail : "no detail");
}

uint64_t sup_tb_deadline(const struct sup_tb *tb, const struct ns *ns)
{
    switch (tb->state) {
    case SUP_TB_DRAINING:
    case SUP_TB_SWITCHING:
        return tb->deadline_us;
    case SUP_TB_IDLE:
        break;
    default:
        return 0;
    }
    if (!tb->cfg.on || !coordinating(tb, ns))
        return 0; /* nothing due here: every input calls sup_tb_step anyway */
    uint64_t d = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((ns->inst.standby_only & NS_BIT(id)) && tb->seen_us[id]) {
            uint64_t t = tb->seen_us[id] + tb->cfg.settle_us;
            if (t < tb->retry_at_us)
                t = tb->retry_at_us;
            if (!d || t < d)
                d = t;
        }
    return d;
}
