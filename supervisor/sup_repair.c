/* Self-repair timer (supervisor/README.md "Self-repair"; ClustRa section
 * 4: "If it does not recover within a certain period of time, ClustRa
 * starts its on-line, non-blocking self-repair") and reintegration
 * (README "Reintegration": replicas move back to a node that returns
 * after its replicas were repaired elsewhere).
 *
 * Every supervisor watches the installed node sets: a configured node
 * outside the set is AWAY from the first install without it. While this
 * node is the node set's coordinator and serves, a node AWAY for
 * repair_after_ms (cluster file; 0: never) has its replicas placed on
 * other nodes of its site by a dictionary change, DICT_CHANGE_REQ
 * (REPAIR_NODE, node, eligible = the set's current nodes) sent to this
 * node's dictionary service, which runs it as any dictionary transaction
 * (dict/svc/README.md) and answers with the local DSVC_MSG_CHANGE_DONE.
 * The new replicas are BUILDING until their nodes built them (kernel/svc
 * README "Rebuild"). When such a node (away repair_after_ms or longer)
 * is a member again it is BACK: once it is current and not standby-only
 * (takeback done; or takeback off), the coordinator asks, one at a time,
 * DICT_CHANGE_REQ(REINTEGRATE_NODE, node, eligible): one hot standby of a
 * more loaded site-mate moves to it as a building replica (dict/README.md
 * "Reintegration placement"), until the dictionary answers "balanced".
 * Per node (enum sup_rep_state):
 *
 *   PRESENT --(an install without it)--> AWAY (away_us = now)
 *   AWAY --(coordinator, serving, now >= next_us)--> ASKED (REPAIR_NODE)
 *   ASKED --(CHANGE_DONE ok)--> AWAY (asked again soon: the answer
 *            "nothing to repair" ends it)
 *   ASKED --(NINES_ENOTFOUND: it holds no replica)--> DONE
 *   ASKED --(other refusal, or no answer in SUP_REPAIR_ANSWER_MS)--> AWAY
 *            (again after SUP_REPAIR_RETRY_MS)
 *   DONE --(every SUP_REPAIR_RETRY_MS x 10)--> asked again (a table
 *            created meanwhile may have placed replicas on it)
 *   AWAY, ASKED, DONE --(an install with it as a member)--> BACK when it
 *            was away repair_after_ms or longer, else PRESENT
 *   BACK --(coordinator, serving, it is current and not standby-only,
 *            now >= next_us)--> REINT_ASKED (REINTEGRATE_NODE)
 *   REINT_ASKED --(ok: one moved)--> BACK, again after SUP_REINT_STEP_MS
 *   REINT_ASKED --(NINES_ENOTFOUND: balanced)--> PRESENT
 *   REINT_ASKED --(NINES_EAGAIN: it still builds the last one, or other
 *            refusal)--> BACK, again after a backoff (SUP_REINT_BACKOFF_MS
 *            doubling to SUP_REINT_BACKOFF_MAX_MS)
 *   REINT_ASKED --(no answer in SUP_REPAIR_ANSWER_MS)--> BACK, at once
 *   PRESENT, BACK, REINT_ASKED --(an install without it)--> AWAY
 *
 * This node itself starts BACK (a new process knows nothing of an
 * absence) and is BACK again after any install without it: as the
 * coordinator it asks for itself too (the lowest id coordinates, so a
 * returning node 1 would otherwise never be asked for).
 *
 * Every supervisor keeps these times, so a new coordinator goes on where
 * the old one stopped; both changes are idempotent in effect (a second
 * REPAIR_NODE of a node holding nothing, a REINTEGRATE_NODE of a balanced
 * site or of a node still building, is refused and changes nothing). */
#include "sup.h"

#include "dict/svc/dsvc.h"
#include "nines/errors.h"
#include "nines_dict.pb-c.h"
#include "nlog.h"

#include <stdio.h>
#include <string.h>

#define SUP_REPAIR_ANSWER_MS 10000 /* an unanswered REPAIR_NODE is sent again after this */
#define SUP_REPAIR_RETRY_MS 2000   /* a refused one (or after a success: the check) */
#define SUP_REINT_STEP_MS 100         /* after a standby moved back: the next one */
#define SUP_REINT_BACKOFF_MS 100      /* a refused REINTEGRATE_NODE: again after this, */
#define SUP_REINT_BACKOFF_MAX_MS 2000 /* doubling up to this */
#define SUP_REINT_SELF_MS 1000        /* this node asks for itself this long after its start */

const char *sup_rep_state_name(enum sup_rep_state st)
{
    switch (st) {
    case SUP_REP_PRESENT:
        return "present";
    case SUP_REP_AWAY:
        return "away";
    case SUP_REP_ASKED:
        return "asked";
    case SUP_REP_DONE:
        return "repaired";
    case SUP_REP_BACK:
        return "back";
    case SUP_REP_REINT_ASKED:
        return "reintegrating";
    default:
        return "?";
    }
}

void sup_repair_init(struct sup *s)
{
    struct sup_repair *r = &s->repair;
    memset(r, 0, sizeof *r);
    r->after_us = s->conf ? (uint64_t)s->conf->repair_after_ms * 1000u : 0;
    /* this node itself may come back from a long absence (a new process
     * knows nothing of it): should it coordinate once current, it asks for
     * itself once; "balanced" is the usual answer */
    if (s->self <= NINES_MAX_NODES)
        r->node[s->self].st = SUP_REP_BACK;
}

static bool configured(const struct sup *s, uint32_t id)
{
    return s->conf && nines_conf_node(s->conf, id) != NULL;
}

/* Keep one timer armed: for the earliest attempt due while this node is
 * the serving coordinator, else (nodes away) a look every
 * SUP_REPAIR_RETRY_MS (a coordinator whose lease came back without a new
 * install acts then; an install is looked at at once anyway). */
static void arm(struct sup *s, uint64_t now, bool coord)
{
    struct sup_repair *r = &s->repair;
    uint64_t at = 0;
    for (uint32_t id = 1; id <= NINES_MAX_NODES; id++) {
        const struct sup_rep_node *n = &r->node[id];
        if (n->st != SUP_REP_PRESENT && n->next_us && (!at || n->next_us < at))
            at = n->next_us;
    }
    if (at && !coord && at < now + SUP_REPAIR_RETRY_MS * 1000u)
        at = now + SUP_REPAIR_RETRY_MS * 1000u;
    if (!at || (r->timer > 0 && r->timer_at <= at && r->timer_at >= now))
        return;
    if (r->timer > 0)
        rt_timer_cancel(s->rt, r->timer);
    int64_t id = rt_timer_add(s->rt, RT_SVC_SUP, at > now ? at - now : 0, SUP_TIMER_REPAIR);
    r->timer = id > 0 ? id : 0;
    r->timer_at = at;
}

/* REPAIR_NODE (reint false) or REINTEGRATE_NODE (reint true) for node
 * `id` to this node's dictionary service. */
static void ask(struct sup *s, uint32_t id, uint64_t now, bool reint)
{
    struct sup_repair *r = &s->repair;
    struct sup_rep_node *n = &r->node[id];
    const struct rt_nodeset *ns = rt_nodeset(s->rt);
    struct rt_msg *m = rt_msg_new(s->rt, NINES__MSG_TYPE__DICT_CHANGE_REQ);
    Nines__DictChangeReq *q =
        m ? RT_BODY(m, Nines__DictChangeReq, nines__dict_change_req__init) : NULL;
    Nines__DictChange *c = q ? rt_msg_alloc(m, sizeof *c) : NULL;
    uint32_t *elig = c ? rt_msg_alloc(m, NINES_MAX_NODES * sizeof *elig) : NULL;
    if (!elig) {
        if (m)
            rt_msg_free(s->rt, m);
        n->next_us = now + SUP_REPAIR_RETRY_MS * 1000u; /* no memory now: later */
        return;
    }
    nines__dict_change__init(c);
    c->op = reint ? NINES__DICT_OP__DICT_OP_REINTEGRATE_NODE : NINES__DICT_OP__DICT_OP_REPAIR_NODE;
    c->node = id;
    size_t ne = 0;
    for (uint32_t e = 1; e <= NINES_MAX_NODES; e++)
        if ((reint || e != id) && (ns->current & RT_NODE_BIT(e)))
            elig[ne++] = e;
    c->eligible = elig;
    c->n_eligible = ne;
    q->change = c;
    q->ref = ++r->seq;
    q->reply_svc = RT_SVC_SUP;
    n->ref = q->ref;
    n->attempts++;
    n->st = reint ? SUP_REP_REINT_ASKED : SUP_REP_ASKED;
    n->next_us = now + SUP_REPAIR_ANSWER_MS * 1000u;
    if (reint) {
        r->st.reint_asked++;
        NLOG_DEBUG("sup", "node %u: asking to move a replica back to node %u (node set %llu, "
                   "%zu current nodes; attempt %u, %u moved so far)", s->self, id,
                   (unsigned long long)ns->epoch, ne, n->attempts, n->moved);
    } else {
        r->st.asked++;
        NLOG_INFO("sup", "node %u: node %u has been outside the node set for %llu ms (repair "
                  "after %llu ms): asking to rebuild its replicas on its site-mates (node set "
                  "%llu, %zu current nodes; attempt %u)", s->self, id,
                  (unsigned long long)((now - n->away_us) / 1000u),
                  (unsigned long long)(r->after_us / 1000u), (unsigned long long)ns->epoch, ne,
                  n->attempts);
    }
    (void)rt_send(s->rt, 0, RT_SVC_DICT, m); /* lost: asked again after the answer time */
}

/* Node id (BACK) may take replicas: current, and not standby-only (its
 * takeback is done) unless takeback is off. */
static bool reint_ready(const struct sup *s, const struct rt_nodeset *ns, uint32_t id)
{
    if (!(ns->current & RT_NODE_BIT(id)))
        return false;
    return !(ns->standby_only & RT_NODE_BIT(id)) || (s->conf && !s->conf->takeback);
}

/* Look at every node: start, due attempts, the timer. */
static void evaluate(struct sup *s)
{
    struct sup_repair *r = &s->repair;
    const struct rt_nodeset *ns = rt_nodeset(s->rt);
    uint64_t now = rt_now_us(s->rt);
    if (!r->after_us || !ns->epoch)
        return;
    bool coord = ns->coordinator == s->self && rt_serving(s->rt);
    for (uint32_t id = 1; id <= NINES_MAX_NODES; id++) {
        struct sup_rep_node *n = &r->node[id];
        if (!configured(s, id))
            continue;
        bool member = (ns->members & RT_NODE_BIT(id)) != 0;
        if (id == s->self) {
            /* it does not see itself away; outside the set it is BACK
             * (without the away time: one more request is cheap), and as
             * the coordinator it may ask for itself */
            if (!member) {
                if (n->st != SUP_REP_BACK)
                    memset(n, 0, sizeof *n);
                n->st = SUP_REP_BACK;
                continue;
            }
            if (n->st != SUP_REP_BACK && n->st != SUP_REP_REINT_ASKED)
                continue;
            if (n->st == SUP_REP_BACK && !n->next_us) /* from its start: services settle */
                n->next_us = now + SUP_REINT_SELF_MS * 1000u;
        }
        if (member) {
            switch (n->st) {
            case SUP_REP_PRESENT:
                break;
            case SUP_REP_AWAY:
            case SUP_REP_ASKED:
            case SUP_REP_DONE: {
                bool long_away = now - n->away_us >= r->after_us;
                NLOG_INFO("sup", "node %u: node %u is back in the node set (epoch %llu) after "
                          "%llu ms away (%s; %u replicas rebuilt elsewhere)%s", s->self, id,
                          (unsigned long long)ns->epoch,
                          (unsigned long long)((now - n->away_us) / 1000u),
                          sup_rep_state_name(n->st), n->moved,
                          long_away ? ": replicas move back to it once it is current" : "");
                memset(n, 0, sizeof *n);
                if (long_away) {
                    n->st = SUP_REP_BACK;
                    n->next_us = now;
                }
                break;
            }
            case SUP_REP_REINT_ASKED:
                if (now < n->next_us)
                    break;
                NLOG_WARN("sup", "node %u: no answer to the reintegration of node %u within %u "
                          "ms: asking again", s->self, id, SUP_REPAIR_ANSWER_MS);
                n->st = SUP_REP_BACK;
                n->next_us = now;
                /* fall through: due now */
                __attribute__((fallthrough));
            case SUP_REP_BACK:
                if (!coord)
                    break;
                if (!reint_ready(s, ns, id)) {
                    /* the install that makes it ready wakes this up; else a look now
                     * and then */
                    if (!n->unready || now >= n->next_us)
                        n->next_us = now + SUP_REPAIR_RETRY_MS * 1000u;
                    n->unready = true;
                    break;
                }
                if (n->unready) { /* it became ready: at once */
                    n->unready = false;
                    n->next_us = now;
                }
                if (now >= n->next_us)
                    ask(s, id, now, true);
                break;
            default:
                NLOG_ERROR("sup", "repair state of node %u is %d", id, (int)n->st);
                memset(n, 0, sizeof *n);
                break;
            }
            continue;
        }
        switch (n->st) {
        case SUP_REP_PRESENT:
        case SUP_REP_BACK:
        case SUP_REP_REINT_ASKED:
            if (n->st != SUP_REP_PRESENT)
                NLOG_INFO("sup", "node %u: node %u left the node set again while replicas "
                          "moved back to it (%u moved)", s->self, id, n->moved);
            memset(n, 0, sizeof *n);
            n->st = SUP_REP_AWAY;
            n->away_us = now;
            n->next_us = now + r->after_us;
            break;
        case SUP_REP_ASKED:
            if (now < n->next_us)
                break;
            NLOG_WARN("sup", "node %u: no answer to the repair of node %u within %u ms: asking "
                      "again", s->self, id, SUP_REPAIR_ANSWER_MS);
            n->st = SUP_REP_AWAY;
            n->next_us = now;
            /* fall through: due now */
            __attribute__((fallthrough));
        case SUP_REP_AWAY:
        case SUP_REP_DONE:
            if (coord && now >= n->next_us)
                ask(s, id, now, false);
            break;
        default:
            NLOG_ERROR("sup", "repair state of node %u is %d", id, (int)n->st);
            memset(n, 0, sizeof *n);
            break;
        }
    }
    arm(s, now, coord);
}

void sup_repair_on_nodeset(struct sup *s) { evaluate(s); }

void sup_repair_on_timer(struct sup *s)
{
    s->repair.timer = 0;
    evaluate(s);
}

/* The answer to REINTEGRATE_NODE for node id (REINT_ASKED). */
static void reint_done(struct sup *s, uint32_t id, const struct rt_msg *m, uint64_t now)
{
    struct sup_repair *r = &s->repair;
    struct sup_rep_node *n = &r->node[id];
    const Nines__DictChangeRef *f = m->err ? (const Nines__DictChangeRef *)m->body : NULL;
    const char *why = f && f->reason ? f->reason : "";
    switch (m->err) {
    case 0: {
        const Nines__DictChangeConf *c = (const Nines__DictChangeConf *)m->body;
        uint32_t moved = c ? c->moved : 0;
        n->moved += moved;
        r->st.reint_moved += moved;
        snprintf(r->st.reint_last, sizeof r->st.reint_last, "node %u: %u moved back",
                 id, n->moved);
        NLOG_INFO("sup", "node %u: a replica moves back to node %u (dictionary version %llu, "
                  "building; %u moved back so far)", s->self, id,
                  (unsigned long long)(c ? c->version : 0), n->moved);
        n->st = SUP_REP_BACK;
        n->backoff_ms = 0;
        n->next_us = now + SUP_REINT_STEP_MS * 1000u;
        break;
    }
    case NINES_ENOTFOUND: /* balanced: nothing (more) to move */
        if (n->moved)
            r->st.reint_done++;
        snprintf(r->st.reint_last, sizeof r->st.reint_last, "node %u: reintegrated, %u moved "
                 "back (%.200s)", id, n->moved, why);
        NLOG_INFO("sup", "node %u: node %u is reintegrated: %u replicas moved back to it (%s)",
                  s->self, id, n->moved, why);
        memset(n, 0, sizeof *n);
        break;
    default: /* NINES_EAGAIN (it still builds the last one) or another refusal */
        if (m->err != NINES_EAGAIN) {
            r->st.reint_refused++;
            NLOG_INFO("sup", "node %u: reintegration of node %u not done: %s (%s)", s->self, id,
                      nines_strerror(m->err), why);
        }
        snprintf(r->st.reint_last, sizeof r->st.reint_last, "node %u: %u moved back, waiting: "
                 "%.200s", id, n->moved, why);
        n->backoff_ms = n->backoff_ms ? 2 * n->backoff_ms : SUP_REINT_BACKOFF_MS;
        if (n->backoff_ms > SUP_REINT_BACKOFF_MAX_MS)
            n->backoff_ms = SUP_REINT_BACKOFF_MAX_MS;
        n->st = SUP_REP_BACK;
        n->next_us = now + (uint64_t)n->backoff_ms * 1000u;
        break;
    }
}

void sup_repair_on_done(struct sup *s, const struct rt_msg *m)
{
    struct sup_repair *r = &s->repair;
    uint64_t now = rt_now_us(s->rt);
    uint32_t id = 0;
    for (uint32_t i = 1; i <= NINES_MAX_NODES && !id; i++)
        if ((r->node[i].st == SUP_REP_ASKED || r->node[i].st == SUP_REP_REINT_ASKED) &&
            r->node[i].ref == m->cookie)
            id = i;
    if (!id)
        return; /* a late answer (the node came back, or asked again since) */
    if (r->node[id].st == SUP_REP_REINT_ASKED) {
        reint_done(s, id, m, now);
        const struct rt_nodeset *ns = rt_nodeset(s->rt);
        arm(s, now, ns->coordinator == s->self && rt_serving(s->rt));
        return;
    }
    struct sup_rep_node *n = &r->node[id];
    if (m->err == 0) {
        const Nines__DictChangeConf *c = (const Nines__DictChangeConf *)m->body;
        uint32_t moved = c ? c->moved : 0;
        n->moved += moved;
        r->st.moved += moved;
        NLOG_INFO("sup", "node %u: self-repair of node %u committed as dictionary version %llu: "
                  "%u replicas placed on other nodes of its site, building (%u so far)",
                  s->self, id, (unsigned long long)(c ? c->version : 0), moved, n->moved);
        n->st = SUP_REP_AWAY;
        n->next_us = now + SUP_REPAIR_RETRY_MS * 1000u; /* until "nothing to repair" */
    } else if (m->err == NINES_ENOTFOUND) {
        if (n->st != SUP_REP_DONE && n->attempts)
            NLOG_INFO("sup", "node %u: node %u holds no replica any more (%u rebuilt "
                      "elsewhere)", s->self, id, n->moved);
        n->st = SUP_REP_DONE;
        n->next_us = now + 10u * SUP_REPAIR_RETRY_MS * 1000u;
    } else {
        const Nines__DictChangeRef *f = (const Nines__DictChangeRef *)m->body;
        r->st.refused++;
        NLOG_INFO("sup", "node %u: self-repair of node %u not done: %s (%s); again in %u ms",
                  s->self, id, nines_strerror(m->err), f && f->reason ? f->reason : "",
                  SUP_REPAIR_RETRY_MS);
        n->st = SUP_REP_AWAY;
        n->next_us = now + SUP_REPAIR_RETRY_MS * 1000u;
    }
    const struct rt_nodeset *ns = rt_nodeset(s->rt);
    arm(s, now, ns->coordinator == s->self && rt_serving(s->rt));
}
