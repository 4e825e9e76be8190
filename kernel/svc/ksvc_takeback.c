/* Kernel service: takeback — the drain of this node's primaries of
 * fragments that move to a rebuilt standby-only node when its standby-only
 * bit is cleared, and the clean demotion of such a primary at the install
 * that clears it. README "Takeback". */
#include "ksvc_int.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sk_tb {
    enum ksvc_tb_state st;
    uint32_t node;          /* the standby-only node taking its primaries back */
    uint32_t coord;         /* the coordinator that asked */
    uint64_t epoch, id;     /* the node set the drain is for; the attempt */
    net_addr from;          /* whom to answer (the coordinator's supervisor) */
    uint64_t started_us, drained_us; /* the drain began; took this long (DRAINED) */
    uint64_t drain_until_us; /* DRAINING: TAKEBACK_REF after this */
    uint64_t hold_us, hold_until_us; /* DRAINED: ends by itself after this */
    uint32_t nfrags;        /* fragments with tb_drain */
    uint64_t timer_at;      /* SK_TIMER_TAKEBACK armed for this time (0: none) */
    bool hold_logged;
    struct ksvc_tb_status stat; /* counters */
};

const char *ksvc_tb_state_name(enum ksvc_tb_state s)
{
    switch (s) {
    case KSVC_TB_IDLE:
        return "idle";
    case KSVC_TB_DRAINING:
        return "draining";
    case KSVC_TB_DRAINED:
        return "drained";
    default:
        return "invalid";
    }
}

static struct sk_tb *sk_tb_get(struct ksvc *k)
{
    if (!k->tb)
        k->tb = calloc(1, sizeof *k->tb);
    return k->tb;
}

void sk_tb_fini(struct ksvc *k)
{
    free(k->tb);
    k->tb = NULL;
}

void ksvc_tb_status(const struct ksvc *k, struct ksvc_tb_status *out)
{
    memset(out, 0, sizeof *out);
    const struct sk_tb *tb = k->tb;
    if (!tb)
        return;
    *out = tb->stat;
    out->state = tb->st;
    out->node = tb->st != KSVC_TB_IDLE ? tb->node : 0;
    out->coordinator = tb->coord;
    out->epoch = tb->epoch;
    out->id = tb->id;
    out->draining = tb->st != KSVC_TB_IDLE ? tb->nfrags : 0;
}

/* ---- answers ------------------------------------------------------------ */

static void sk_tb_send_conf(struct ksvc *k, const struct sk_tb *tb, net_addr to, uint32_t node,
                            uint64_t epoch, uint64_t id, uint32_t frags, uint64_t took_us)
{
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__TAKEBACK_CONF);
    Nines__TakebackConf *c = m ? RT_BODY(m, Nines__TakebackConf, nines__takeback_conf__init)
                               : NULL;
    if (!c) {
        if (m)
            rt_msg_free(k->rt, m);
        return; /* the coordinator asks again or gives up at its bound */
    }
    c->node = node;
    c->epoch = epoch;
    c->id = id;
    c->from = k->self;
    c->frags = frags;
    c->drain_us = took_us;
    (void)tb;
    (void)rt_send(k->rt, to, RT_SVC_SUP, m);
}

static void sk_tb_send_ref(struct ksvc *k, net_addr to, uint32_t node, uint64_t epoch, uint64_t id,
                           int err, const char *detail)
{
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__TAKEBACK_REF);
    Nines__TakebackRef *f = m ? RT_BODY(m, Nines__TakebackRef, nines__takeback_ref__init) : NULL;
    char *d = f ? rt_msg_alloc(m, strlen(detail) + 1) : NULL;
    if (!d) {
        if (m)
            rt_msg_free(k->rt, m);
        return;
    }
    strcpy(d, detail);
    f->node = node;
    f->epoch = epoch;
    f->id = id;
    f->from = k->self;
    f->error = err;
    f->detail = d;
    (void)rt_send(k->rt, to, RT_SVC_SUP, m);
}

/* ---- the drain ---------------------------------------------------------- */

static void sk_tb_arm(struct ksvc *k)
{
    struct sk_tb *tb = k->tb;
    uint64_t due = tb->st == KSVC_TB_DRAINING  ? tb->drain_until_us
                   : tb->st == KSVC_TB_DRAINED ? tb->hold_until_us
                                               : 0;
    if (!due || (tb->timer_at && tb->timer_at <= due))
        return; /* the armed timer fires first and arms again */
    uint64_t now = rt_now_us(k->rt);
    if (rt_timer_add(k->rt, RT_SVC_KERN, due > now ? due - now : 0, SK_TIMER_TAKEBACK) > 0)
        tb->timer_at = due;
}

/* The drain ends (answered REF, an install came, or it ended by itself):
 * its fragments take new transactions again. */
static void sk_tb_end(struct ksvc *k)
{
    struct sk_tb *tb = k->tb;
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    ((struct sk_rep *)nd)->tb_drain = false;
    tb->st = KSVC_TB_IDLE;
    tb->nfrags = 0;
    tb->hold_logged = false;
}

/* Does primary replica r move away from this node when `node`'s
 * standby-only bit is cleared (the roles of the next node set, computed
 * as every node computes them)? */
static bool sk_tb_moves(const struct ksvc *k, const struct dict *d, const struct dict_live *after,
                        const struct sk_rep *r)
{
    if (kern_frag_role(r->f) != KERN_FRAG_PRIMARY || r->oos[0] || r->rb)
        return false;
    const struct dict_table *t = dict_table_by_id(d, r->table);
    struct dict_roles ro;
    return t && dict_frag_roles_live(d, t, r->frag, after, &ro) == 0 && ro.primary != k->self;
}

/* A transaction open (or ending) in r: touched it, or has a parked request
 * naming it (it was let in before the drain). 0: none. */
static uint64_t sk_tb_open_txn(const struct ksvc *k, const struct sk_rep *r)
{
    SK_MAP_FOREACH(&k->txns, i, nd, nx)
    {
        const struct sk_txn *t = (const struct sk_txn *)nd;
        for (uint32_t j = 0; j < t->ntouch; j++)
            if (t->touch[j].table == r->table && t->touch[j].frag == r->frag)
                return t->txn;
        if (t->req) {
            const Nines__KernOpReq *q = (const Nines__KernOpReq *)t->req->body;
            for (size_t j = 0; j < q->n_parts; j++)
                if (q->parts[j] && q->parts[j]->table == r->table && q->parts[j]->frag == r->frag)
                    return t->txn;
        }
    }
    return 0;
}

/* Primary replica r may stop being primary with nothing lost or left
 * behind: no transaction open or ending in it, and its log target `to`
 * has acknowledged every record and end mark (so `to`'s replica holds
 * exactly r's log). Else false with why. */
static bool sk_tb_clean(const struct ksvc *k, const struct sk_rep *r, uint32_t to, char *why,
                        size_t n)
{
    const struct kern_log *log = kern_frag_log(r->f);
    uint64_t last = kern_log_next_lsn(log) - 1;
    if (kern_frag_role(r->f) != KERN_FRAG_PRIMARY || r->oos[0]) {
        snprintf(why, n, "table %s fragment %u at node %u is %s%s%.120s", r->tname, r->frag,
                 k->self, kern_frag_role_name(kern_frag_role(r->f)),
                 r->oos[0] ? ", out of service: " : "", r->oos);
        return false;
    }
    if (!r->ship) {
        snprintf(why, n, "table %s fragment %u at node %u ships its log to nobody", r->tname,
                 r->frag, k->self);
        return false;
    }
    struct upd_ship_info si;
    upd_ship_info(r->ship, &si);
    if (upd_ship_standby(r->ship) != to || si.state != UPD_SH_LIVE) {
        snprintf(why, n, "table %s fragment %u at node %u ships its log to node %u (%s), not to "
                 "node %u", r->tname, r->frag, k->self, upd_ship_standby(r->ship),
                 si.state == UPD_SH_LIVE ? "live" : "broken: it needs a rebuild", to);
        return false;
    }
    size_t ntx = kern_frag_txns(r->f, NULL, 0);
    if (ntx || r->pn) {
        snprintf(why, n, "table %s fragment %u at node %u has %zu transactions with records "
                 "not ended and %u confirmations waiting", r->tname, r->frag, k->self, ntx,
                 r->pn);
        return false;
    }
    if (si.acked_lsn != last || si.acked_seq != si.mark_seq || si.marks_held) {
        snprintf(why, n, "table %s fragment %u at node %u: node %u acknowledged LSN %llu and "
                 "end mark %llu of %llu and %llu", r->tname, r->frag, k->self, to,
                 (unsigned long long)si.acked_lsn, (unsigned long long)si.acked_seq,
                 (unsigned long long)last, (unsigned long long)si.mark_seq);
        return false;
    }
    /* last: the one check that walks every transaction of this kernel */
    uint64_t open = sk_tb_open_txn(k, r);
    if (open) {
        snprintf(why, n, "table %s fragment %u at node %u: txn %llu is open there", r->tname,
                 r->frag, k->self, (unsigned long long)open);
        return false;
    }
    return true;
}

/* DRAINING: is every drained fragment clean? Then TAKEBACK_CONF. */
static void sk_tb_check(struct ksvc *k)
{
    struct sk_tb *tb = k->tb;
    char why[300];
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    {
        const struct sk_rep *r = (const struct sk_rep *)nd;
        if (r->tb_drain && !sk_tb_clean(k, r, tb->node, why, sizeof why)) {
            NLOG_DEBUG("kern", "node %u: takeback drain not done: %s", k->self, why);
            return;
        }
    }
    uint64_t now = rt_now_us(k->rt);
    tb->st = KSVC_TB_DRAINED;
    tb->drained_us = now - tb->started_us;
    tb->hold_until_us = now + tb->hold_us;
    tb->stat.conf++;
    NLOG_INFO("kern", "node %u: %u fragments drained for the takeback of node %u (node set %llu, "
              "attempt %llu) in %llu us: refusing new transactions there until the next node "
              "set (at most %llu ms)", k->self, tb->nfrags, tb->node,
              (unsigned long long)tb->epoch, (unsigned long long)tb->id,
              (unsigned long long)(now - tb->started_us),
              (unsigned long long)tb->hold_us / 1000);
    sk_tb_send_conf(k, tb, tb->from, tb->node, tb->epoch, tb->id, tb->nfrags,
                    now - tb->started_us);
    sk_tb_arm(k);
}

void sk_tb_after(struct ksvc *k)
{
    if (k->tb && k->tb->st == KSVC_TB_DRAINING)
        sk_tb_check(k);
}

void sk_tb_timer(struct ksvc *k)
{
    struct sk_tb *tb = k->tb;
    if (!tb)
        return;
    tb->timer_at = 0;
    uint64_t now = rt_now_us(k->rt);
    switch (tb->st) {
    case KSVC_TB_IDLE:
        break;
    case KSVC_TB_DRAINING: {
        if (now < tb->drain_until_us)
            break;
        char why[300] = "";
        bool named = false;
        SK_MAP_FOREACH(&k->reps, i, nd, nx)
        {
            const struct sk_rep *r = (const struct sk_rep *)nd;
            uint64_t open = r->tb_drain && !named ? sk_tb_open_txn(k, r) : 0;
            if (open) { /* the transaction that held the drain up, by name */
                snprintf(why, sizeof why, "table %s fragment %u at node %u: txn %llu is open "
                         "there", r->tname, r->frag, k->self, (unsigned long long)open);
                named = true;
            }
        }
        SK_MAP_FOREACH(&k->reps, i, nd, nx)
        {
            const struct sk_rep *r = (const struct sk_rep *)nd;
            if (!named && r->tb_drain && !sk_tb_clean(k, r, tb->node, why, sizeof why))
                break;
        }
        char d[512];
        snprintf(d, sizeof d, "node %u: %u fragments not drained for the takeback of node %u "
                 "within %llu ms (node set %llu, attempt %llu): %s; it stops draining", k->self,
                 tb->nfrags, tb->node,
                 (unsigned long long)(tb->drain_until_us - tb->started_us) / 1000,
                 (unsigned long long)tb->epoch, (unsigned long long)tb->id, why);
        NLOG_INFO("kern", "%s", d);
        tb->stat.ref++;
        sk_tb_send_ref(k, tb->from, tb->node, tb->epoch, tb->id, NINES_ETIMEDOUT, d);
        sk_tb_end(k);
        break;
    }
    case KSVC_TB_DRAINED:
        if (now < tb->hold_until_us)
            break;
        if (k->ns_accepted && k->ns_accepted(k->ns_ctx, tb->epoch)) {
            /* a proposal for the next epoch is accepted here: it may be the
             * one that gives these fragments away; hold until it is
             * installed (or replaced) */
            if (!tb->hold_logged)
                NLOG_INFO("kern", "node %u: takeback drain of node %u (node set %llu) held past "
                          "%llu ms: a proposal for the next node set is accepted here",
                          k->self, tb->node, (unsigned long long)tb->epoch,
                          (unsigned long long)tb->hold_us / 1000);
            tb->hold_logged = true;
            tb->hold_until_us = now + tb->hold_us;
            break;
        }
        NLOG_WARN("kern", "node %u: the takeback drain of node %u (node set %llu, attempt %llu) "
                  "ends by itself: no node set came within %llu ms (the coordinator may have "
                  "died); %u fragments take new transactions again", k->self, tb->node,
                  (unsigned long long)tb->epoch, (unsigned long long)tb->id,
                  (unsigned long long)tb->hold_us / 1000, tb->nfrags);
        tb->stat.ended++;
        sk_tb_end(k);
        break;
    default:
        NLOG_ERROR("kern", "takeback drain in bad state %d", (int)tb->st);
        sk_tb_end(k);
        break;
    }
    sk_tb_arm(k);
}

void sk_tb_nodeset(struct ksvc *k)
{
    struct sk_tb *tb = k->tb;
    if (!tb || tb->st == KSVC_TB_IDLE || rt_nodeset(k->rt)->epoch <= tb->epoch)
        return;
    NLOG_INFO("kern", "node %u: the takeback drain of node %u (node set %llu, %s) ends: node set "
              "%llu is installed", k->self, tb->node, (unsigned long long)tb->epoch,
              ksvc_tb_state_name(tb->st), (unsigned long long)rt_nodeset(k->rt)->epoch);
    sk_tb_end(k);
}

/* t is open in a fragment drained now: the drain waits for it anyway, so
 * its requests for the other drained fragments are let in too (refusing
 * them would make the drain wait for a transaction that waits for it). */
static bool sk_tb_inside(const struct ksvc *k, const struct sk_txn *t)
{
    for (uint32_t j = 0; t && j < t->ntouch; j++) {
        const struct sk_rep *r = sk_rep_get(k, t->touch[j].table, t->touch[j].frag);
        if (r && r->tb_drain)
            return true;
    }
    return false;
}

int sk_tb_admit(struct ksvc *k, const Nines__KernOpReq *q, const struct sk_txn *t)
{
    int inside = -1; /* not looked at yet */
    for (size_t i = 0; i < q->n_parts; i++) {
        const Nines__Participant *p = q->parts[i];
        const struct sk_rep *r = p ? sk_rep_get(k, p->table, p->frag) : NULL;
        if (!r)
            continue;
        if (kern_frag_role(r->f) == KERN_FRAG_PROMOTING)
            return nines_err(NINES_EAGAIN, "node %u is taking over table %s fragment %u (node "
                             "set %llu): nothing of the request ran; retry", k->self, r->tname,
                             r->frag, (unsigned long long)r->ro_epoch);
        if (r->tb_drain && !(inside < 0 ? (inside = sk_tb_inside(k, t)) : inside)) {
            k->tb->stat.refused++;
            return nines_err(NINES_EAGAIN, "node %u hands table %s fragment %u back to node %u "
                             "(takeback, node set %llu): new transactions there wait until it "
                             "is done; nothing of the request ran; retry", k->self, r->tname,
                             r->frag, k->tb->node, (unsigned long long)k->tb->epoch);
        }
    }
    return 0;
}

void ksvc_on_takeback_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__TakebackReq *q = (const Nines__TakebackReq *)m->body;
    k->cur = m;
    struct sk_tb *tb = sk_tb_get(k);
    const struct rt_nodeset *ns = rt_nodeset(rt);
    int rc = 0;
    if (!tb)
        rc = nines_err(NINES_ENOMEM, "node %u: no memory for a takeback drain", k->self);
    else if (!ns->serving)
        rc = nines_err(NINES_ENOTMEMBER, "node %u does not serve (node set %llu): %s", k->self,
                       (unsigned long long)ns->epoch, ns->reason);
    else if (q->epoch != ns->epoch)
        rc = nines_err(NINES_ESTALE, "takeback of node %u for node set %llu, but node %u has "
                       "node set %llu installed", q->node, (unsigned long long)q->epoch,
                       k->self, (unsigned long long)ns->epoch);
    else if (q->node < 1 || q->node > NINES_MAX_NODES || q->node == k->self ||
             !(ns->standby_only & RT_NODE_BIT(q->node)) || !(ns->current & RT_NODE_BIT(q->node)))
        rc = nines_err(NINES_ESTATE, "node %u is not a standby-only node other than node %u in "
                       "node set %llu (current %llx, standby-only %llx)", q->node, k->self,
                       (unsigned long long)ns->epoch, (unsigned long long)ns->current,
                       (unsigned long long)ns->standby_only);
    if (q->cancel) {
        /* the attempt failed elsewhere: its drain ends here now */
        if (tb && tb->st != KSVC_TB_IDLE && tb->node == q->node && tb->epoch == q->epoch &&
            tb->id == q->id) {
            NLOG_INFO("kern", "node %u: the takeback drain of node %u (node set %llu, attempt "
                      "%llu, %s) is called off by its coordinator", k->self, tb->node,
                      (unsigned long long)tb->epoch, (unsigned long long)tb->id,
                      ksvc_tb_state_name(tb->st));
            tb->stat.cancelled++;
            sk_tb_end(k);
        }
        goto done;
    }
    if (rc == 0 && tb->st != KSVC_TB_IDLE && tb->node == q->node && tb->epoch == q->epoch &&
        tb->id == q->id) {
        /* a repeat: answer again when drained, else the answer follows */
        tb->from = m->from;
        if (tb->st == KSVC_TB_DRAINED)
            sk_tb_send_conf(k, tb, m->from, tb->node, tb->epoch, tb->id, tb->nfrags,
                            tb->drained_us);
        goto done;
    }
    if (rc == 0 && tb->st != KSVC_TB_IDLE) {
        NLOG_INFO("kern", "node %u: takeback drain of node %u (node set %llu, attempt %llu) "
                  "replaced by attempt %llu of node %u", k->self, tb->node,
                  (unsigned long long)tb->epoch, (unsigned long long)tb->id,
                  (unsigned long long)q->id, q->node);
        sk_tb_end(k);
    }
    if (rc == 0) {
        uint64_t now = rt_now_us(rt);
        tb->node = q->node;
        tb->coord = q->coordinator;
        tb->epoch = q->epoch;
        tb->id = q->id;
        tb->from = m->from;
        tb->started_us = now;
        tb->drain_until_us = now + (uint64_t)(q->drain_ms ? q->drain_ms : KSVC_TB_DRAIN_MS) * 1000u;
        tb->hold_us = (uint64_t)(q->hold_ms ? q->hold_ms : KSVC_TB_HOLD_MS) * 1000u;
        tb->nfrags = 0;
        struct dict_live after = sk_live(k);
        after.standby_only &= ~RT_NODE_BIT(q->node);
        const struct dict *d = k->dict(k->dict_ctx);
        SK_MAP_FOREACH(&k->reps, i, nd, nx)
        {
            struct sk_rep *r = (struct sk_rep *)nd;
            if (!sk_tb_moves(k, d, &after, r))
                continue;
            r->tb_drain = true;
            tb->nfrags++;
        }
        if (tb->nfrags == 0) {
            /* nothing of it here: drained as it is */
            tb->stat.conf++;
            sk_tb_send_conf(k, tb, m->from, q->node, q->epoch, q->id, 0, 0);
            goto done;
        }
        tb->st = KSVC_TB_DRAINING;
        NLOG_INFO("kern", "node %u drains %u fragments for the takeback of node %u (node set "
                  "%llu, attempt %llu, coordinator %u): new transactions there wait, open ones "
                  "finish (at most %u ms)", k->self, tb->nfrags, tb->node,
                  (unsigned long long)tb->epoch, (unsigned long long)tb->id, tb->coord,
                  (unsigned)((tb->drain_until_us - now) / 1000u));
        sk_tb_check(k);
        sk_tb_arm(k);
        goto done;
    }
    {
        char why[512];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        if (tb)
            tb->stat.ref++;
        sk_tb_send_ref(k, m->from, q->node, q->epoch, q->id, rc, why);
    }
done:
    sk_after(k);
    k->cur = NULL;
}

/* ---- demotion at the install -------------------------------------------- */

void sk_tb_demote(struct ksvc *k, struct sk_rep *r)
{
    uint32_t to = r->ro.primary; /* the new primary: it held r's stream as hot standby */
    char why[300] = "";
    struct sk_tb *tb = sk_tb_get(k);
    bool clean = sk_tb_clean(k, r, to, why, sizeof why);
    uint64_t last = kern_log_next_lsn(kern_frag_log(r->f)) - 1;
    int rc = 0;
    if (clean) {
        rc = kern_frag_set_role(r->f, KERN_FRAG_HOT_STANDBY);
        if (rc == 0)
            rc = kern_lock_set_role(k->locks, r->table, r->frag, KERN_LOCK_STANDBY);
        if (rc)
            snprintf(why, sizeof why, "%s", nines_errdetail());
    }
    if (clean && rc == 0) {
        upd_ship_remove(k->u, r->ship);
        r->ship = NULL;
        r->standby = 0;
        /* the new primary's stream (another primary incarnation) continues
         * this log: its records up to `last` are this log's (README
         * "Takeback": the demoted primary adopts the new incarnation) */
        r->pinc = 0;
        r->mark_seq = 0;
        r->adopt_pinc = true;
        r->gap_logged = false;
        r->role = KERN_FRAG_HOT_STANDBY;
        if (tb)
            tb->stat.demoted++;
        NLOG_INFO("kern", "table %s fragment %u: primary -> hot standby of node %u (node set "
                  "%llu): its log ends at LSN %llu, all of it acknowledged by node %u; it "
                  "continues from there in node %u's stream", r->tname, r->frag, to,
                  (unsigned long long)r->ro_epoch, (unsigned long long)last, to, to);
        return;
    }
    if (tb)
        tb->stat.demoted_unclean++;
    sk_rep_out_of_service(k, r, "node set %llu makes node %u its primary, but it was not drained "
                          "here (%s): its state may differ from node %u's, which takes it over "
                          "as after a failure; not served until rebuilt",
                          (unsigned long long)r->ro_epoch, to, why, to);
    if (r->ship) {
        upd_ship_remove(k->u, r->ship);
        r->ship = NULL;
    }
    r->standby = 0;
    r->pn = 0;
    sk_marks_drop(k, r);
    upd_recv_forget(k->u, r->table, r->frag);
    k->st.roles_lost++;
}
