/* Virtual node-set protocol: suspicions and joins are reported to the
 * coordinator (the first live node in the line of succession = ascending
 * node id), which runs a two-phase round per epoch (build = promise,
 * accept), numbered by ballots, and installs the decided set everywhere.
 * A set is decided only with a quorum of the set it replaces: a strict
 * majority of its members, or exactly half plus the arbitrator's grant.
 * supervisor/README.md "Node set". */
#include "sup_ns.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

unsigned ns_popcount(uint64_t x) { return (unsigned)__builtin_popcountll(x); }

/* view_to's buffer: the incarnations, then the standby-only nodes' epochs */
#define NS_WIRE_BUF (2 * NS_MAX_NODES)

static uint32_t first_id(uint64_t set)
{
    return set ? (uint32_t)__builtin_ctzll(set) + 1 : 0;
}

const char *ns_ha_name(enum ns_ha ha)
{
    switch (ha) {
    case NS_HA_JOINING:
        return "joining";
    case NS_HA_ACTIVE:
        return "active";
    case NS_HA_ISOLATED:
        return "isolated";
    case NS_HA_OUT:
        return "out";
    default:
        return "invalid";
    }
}

const char *ns_round_name(enum ns_round r)
{
    switch (r) {
    case NS_R_IDLE:
        return "idle";
    case NS_R_BUILD:
        return "build";
    case NS_R_REASK:
        return "reask";
    case NS_R_CONFIRM:
        return "confirming";
    case NS_R_RECHECK:
        return "rechecking";
    case NS_R_ARB:
        return "arbitrating";
    case NS_R_ACCEPT:
        return "accept";
    default:
        return "invalid";
    }
}

static int ballot_cmp(const struct ns_ballot *a, const struct ns_ballot *b)
{
    if (a->epoch != b->epoch)
        return a->epoch < b->epoch ? -1 : 1;
    if (a->round != b->round)
        return a->round < b->round ? -1 : 1;
    if (a->coord != b->coord)
        return a->coord < b->coord ? -1 : 1;
    return 0;
}

static void ballot_from(struct ns_ballot *b, const Nines__Ballot *w)
{
    memset(b, 0, sizeof *b);
    if (w) {
        b->epoch = w->epoch;
        b->round = w->round;
        b->coord = w->coord;
    }
}

/* A view from the wire; false when its incarnations do not match its
 * members (one per member, none zero) or its standby_since its
 * standby_only (one per node, none zero). Its sets are taken as sent:
 * view_ok checks that they nest. */
static bool view_from(struct ns_view *v, const Nines__NodeSet *w)
{
    memset(v, 0, sizeof *v);
    if (!w)
        return false;
    v->epoch = w->epoch;
    v->members = w->members;
    v->current = w->current;
    v->standby_only = w->standby_only;
    v->coordinator = w->coordinator;
    v->restart = w->restart;
    v->restart_gci = w->restart_gci;
    if (w->n_incarnations != ns_popcount(w->members))
        return false;
    size_t k = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (w->members & NS_BIT(id)) {
            v->inc[id] = w->incarnations[k++];
            if (!v->inc[id])
                return false;
        }
    if (w->n_standby_since != ns_popcount(w->standby_only))
        return false;
    k = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (w->standby_only & NS_BIT(id)) {
            v->since[id] = w->standby_since[k++];
            if (!v->since[id])
                return false;
        }
    return true;
}

/* `buf` holds the incarnations and the standby-only epochs (NS_WIRE_BUF
 * entries). */
static void view_to(Nines__NodeSet *w, const struct ns_view *v, uint64_t *buf)
{
    nines__node_set__init(w);
    w->epoch = v->epoch;
    w->members = v->members;
    w->current = v->current;
    w->standby_only = v->standby_only;
    w->coordinator = v->coordinator;
    w->restart = v->restart;
    w->restart_gci = v->restart_gci;
    size_t k = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (v->members & NS_BIT(id))
            buf[k++] = v->inc[id];
    w->n_incarnations = k;
    w->incarnations = buf;
    size_t j = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (v->standby_only & NS_BIT(id))
            buf[NS_MAX_NODES + j++] = v->since[id];
    w->n_standby_since = j;
    w->standby_since = buf + NS_MAX_NODES;
}

bool ns_is_member(const struct ns_view *v, uint32_t id, uint64_t inc)
{
    return id >= 1 && id <= NS_MAX_NODES && (v->members & NS_BIT(id)) && v->inc[id] == inc;
}

static void ballot_to(Nines__Ballot *w, const struct ns_ballot *b)
{
    nines__ballot__init(w);
    w->epoch = b->epoch;
    w->round = b->round;
    w->coord = b->coord;
}

/* A view received from the network is usable only if it names configured
 * nodes, standby_only is a subset of current and current of members, no
 * standby-only node is current since a later epoch than the set's, and
 * its coordinator is its first member. */
static bool view_ok(const struct ns *ns, const struct ns_view *v)
{
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (v->since[id] > v->epoch)
            return false; /* current since a later epoch than the set's */
    return v->epoch > 0 && v->members && (v->members & ~ns->cfg.configured) == 0 &&
           (v->current & ~v->members) == 0 && (v->standby_only & ~v->current) == 0 &&
           v->coordinator == first_id(v->members);
}

bool ns_serving(const struct ns *ns) { return ns->ha == NS_HA_ACTIVE; }

static bool self_in(const struct ns *ns, const struct ns_view *v)
{
    return ns_is_member(v, ns->cfg.self, ns->cfg.incarnation);
}

/* This node's rebuilt claim (ns_set_rebuilt) holds: made for the installed
 * set, whose member it is (this process), not current. */
static bool rebuilt_holds(const struct ns *ns)
{
    return ns->rebuilt_epoch && ns->rebuilt_epoch == ns->inst.epoch && self_in(ns, &ns->inst) &&
           !(ns->inst.current & NS_BIT(ns->cfg.self));
}

bool ns_rebuilt(const struct ns *ns) { return rebuilt_holds(ns); }

bool ns_serving_at(const struct ns *ns, uint64_t now)
{
    return ns->ha == NS_HA_ACTIVE && now < ns->lease_until;
}

struct ns_ballot ns_adv(const struct ns *ns)
{
    if (ns->acc_ballot.epoch > ns->inst.epoch && self_in(ns, &ns->acc))
        return ns->acc_ballot;
    /* a node outside its installed set confirms nothing */
    if (self_in(ns, &ns->inst) && !ns->excluded)
        return (struct ns_ballot){ns->inst.epoch, 0, 0};
    return (struct ns_ballot){0, 0, 0};
}


void ns_lease_rule(const struct ns *ns, struct ns_lease_rule *out)
{
    memset(out, 0, sizeof *out); /* compared with memcmp by the supervisor */
    out->inst_epoch = ns->inst.epoch;
    out->members = ns->inst.members;
    memcpy(out->inc, ns->inst.inc, sizeof out->inc);
    out->mine = ns_adv(ns);
}

bool ns_rule_confirms(const struct ns_lease_rule *r, uint32_t node, uint64_t inc,
                      const struct ns_ballot *adv)
{
    /* the voters are the installed set's members (a quorum of them decides
     * the next set), each as the process the set names */
    if (!adv->epoch || node < 1 || node > NS_MAX_NODES || !(r->members & NS_BIT(node)) ||
        r->inc[node] != inc)
        return false;
    if (!r->mine.epoch)
        return false; /* outside its set, or accepted a set without itself */
    if (r->mine.round != 0)
        /* this node accepted a proposal for the next epoch (with itself):
         * only members that accepted the very same ballot confirm it (a
         * quorum of them chose that proposal) */
        return ballot_cmp(&r->mine, adv) == 0;
    /* a member that has not accepted anything beyond this node's epoch:
     * the next set needs a quorum of members to accept it first, and a
     * member that did advertises the newer ballot */
    return adv->epoch <= r->inst_epoch;
}

bool ns_confirms(const struct ns *ns, uint32_t node, uint64_t inc, const struct ns_ballot *adv)
{
    struct ns_lease_rule r;
    ns_lease_rule(ns, &r);
    return ns_rule_confirms(&r, node, inc, adv);
}

static void set_ha(struct ns *ns, bool force, enum ns_ha ha, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Enter HA state `ha` with its reason; the services hear of it (through
 * ops->install) when it or the reason changed, or `force` (a new set). */
static void set_ha(struct ns *ns, bool force, enum ns_ha ha, const char *fmt, ...)
{
    char why[sizeof ns->reason] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
    }
    bool changed = force || ha != ns->ha || strcmp(why, ns->reason) != 0;
    if (ha != ns->ha)
        NLOG_INFO("ns", "node %u: %s -> %s%s%s", ns->cfg.self, ns_ha_name(ns->ha),
                  ns_ha_name(ha), why[0] ? ": " : "", why);
    if (ha == NS_HA_ISOLATED && ns->ha != NS_HA_ISOLATED)
        ns->isolated_since = ns->now;
    ns->ha = ha;
    memcpy(ns->reason, why, sizeof why);
    if (changed && ns->inst.epoch)
        ns->ops->install(ns->ctx, &ns->inst, ns_serving(ns), ns->reason);
}

/* ---- installing ------------------------------------------------------ */

/* After a failed or pre-empted round: wait longer the later this node is
 * in the line of succession (rank among the set's members), so two nodes
 * that both think they coordinate (each suspects the other) do not
 * pre-empt each other for ever; the earlier one's round gets through. */
static uint64_t backoff(const struct ns *ns)
{
    uint64_t m = ns->inst.epoch ? ns->inst.members : ns->cfg.configured;
    unsigned rank = ns_popcount(m & (NS_BIT(ns->cfg.self) - 1));
    if (rank > 4)
        rank = 4;
    return ns->cfg.backoff_us * (1 + rank);
}

static void round_stop(struct ns *ns, uint64_t backoff_us)
{
    ns->rs = NS_R_IDLE;
    ns->round_deadline = 0;
    ns->idle_until = backoff_us ? ns->now + backoff_us : 0;
}

static void ha_after_install(struct ns *ns, bool force)
{
    const struct ns_view *v = &ns->inst;
    if (!(v->members & NS_BIT(ns->cfg.self)))
        set_ha(ns, force, NS_HA_OUT,
               "node %u is not in the node set of epoch %llu (coordinator %u): it serves "
               "nothing until it rejoins",
               ns->cfg.self, (unsigned long long)v->epoch, v->coordinator);
    else if (!self_in(ns, v))
        set_ha(ns, force, NS_HA_OUT,
               "node %u restarted: the node set of epoch %llu has its previous process as "
               "member; it serves nothing until it rejoins", ns->cfg.self,
               (unsigned long long)v->epoch);
    else if (ns->now >= ns->lease_until)
        set_ha(ns, force, NS_HA_ISOLATED,
               "node %u does not hear a quorum of the node set of epoch %llu", ns->cfg.self,
               (unsigned long long)v->epoch);
    else
        set_ha(ns, force, NS_HA_ACTIVE, NULL);
}

static void install(struct ns *ns, const struct ns_view *v)
{
    if (v->epoch <= ns->inst.epoch)
        return;
    /* a down verdict (ns_down) was about the process this node knew: a
     * set that names another process of that node (one that answered the
     * round) is not covered by it. Kept, it would spare a round that
     * leaves the new process out the lease wait while that process serves */
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((v->members & NS_BIT(id)) && !ns_is_member(&ns->inst, id, v->inc[id]))
            ns->down &= ~NS_BIT(id);
    ns->inst = *v;
    ns->st.installs++;

    if (ballot_cmp(&ns->acc_ballot, &(struct ns_ballot){v->epoch, UINT32_MAX, UINT32_MAX}) <= 0)
        memset(&ns->acc_ballot, 0, sizeof ns->acc_ballot);
    /* suspicions of nodes outside the set stay: they weigh against a join */
    ns->reported &= v->members;
    /* no grace: the lease it holds stays (confirmations of the set it
     * replaces are still safe, supervisor/README.md "Fencing"), and the
     * members' heartbeats confirm the new set at once (ns_confirms) */
    ns->joiners &= ~v->members;
    ns->max_round = 0;
    ns->report_deadline = 0;
    ns->excluded = false;
    /* rebuilt claims are per set: this node's kernel service claims again
     * for the new one (its replicas take their primaries' live streams in
     * it), and the reports of the old one are stale */
    ns->rebuilt_epoch = 0;
    ns->rebuilt = 0;
    ns->tb_node = 0; /* a takeback asked for the old set: the supervisor asks again */
    if (ns->rs != NS_R_IDLE && ns->b.epoch <= v->epoch)
        round_stop(ns, 0);
    NLOG_INFO("ns", "node %u: node set of epoch %llu installed: members %llx, current %llx, "
              "standby-only %llx, coordinator %u", ns->cfg.self, (unsigned long long)v->epoch,
              (unsigned long long)v->members, (unsigned long long)v->current,
              (unsigned long long)v->standby_only, v->coordinator);
    ha_after_install(ns, true); /* the services hear of it through ops->install */
    if (ns->ha == NS_HA_OUT || ns->ha == NS_HA_JOINING)
        ns->join_deadline = ns->now; /* ask to (re)join at once */
}

/* ---- the coordinator ----------------------------------------------- */

/* The set a round replaces: the installed one, or at bootstrap every
 * configured node. */
static struct ns_view base_view(const struct ns *ns)
{
    if (ns->inst.epoch)
        return ns->inst;
    struct ns_view v = {.members = ns->cfg.configured, .current = ns->cfg.configured};
    return v;
}

/* Who this node thinks coordinates: the first node of the base set in the
 * line of succession it does not suspect (itself when all before it are
 * suspected). */
static uint32_t coordinator_of(const struct ns *ns)
{
    struct ns_view b = base_view(ns);
    /* a member whose process is gone (closed connections, or heard again
     * as a new process) cannot coordinate, even while it asks to rejoin */
    uint64_t gone = ns->inst.epoch ? ns->down : 0;
    uint64_t alive = (b.members & ~ns->suspects & ~gone) | NS_BIT(ns->cfg.self);
    if (!ns->inst.epoch)
        alive &= ns->heard | NS_BIT(ns->cfg.self);
    return first_id(alive);
}

static void evaluate_build(struct ns *ns);

/* Phase 1 is over when every asked node answered, or its host closed its
 * connections (ns_down: its process is gone, asking again cannot bring
 * an answer). Not at bootstrap, while connections are still forming. */
static bool build_complete(const struct ns *ns)
{
    uint64_t gone = ns->base.epoch ? ns->down : 0;
    return ((ns->answered | gone) & ns->asked) == ns->asked;
}

static void send_build(struct ns *ns, uint32_t to)
{
    Nines__NsBuildReq r = NINES__NS_BUILD_REQ__INIT;
    Nines__Ballot b;
    Nines__NodeSet from;
    uint64_t from_inc[NS_WIRE_BUF];
    ballot_to(&b, &ns->b);
    view_to(&from, &ns->base, from_inc);
    r.ballot = &b;
    r.from = &from;
    ns->ops->send(ns->ctx, to, NINES__MSG_TYPE__NS_BUILD_REQ, &r.base);
}

static void round_start(struct ns *ns, const char *why)
{
    ns->base = base_view(ns);
    uint32_t r = ns->max_round + 1;
    if (ns->promised.epoch == ns->base.epoch + 1 && ns->promised.round >= r)
        r = ns->promised.round + 1;
    uint64_t e = ns->base.epoch + 1;
    if (!ns->base.epoch) {
        /* bootstrap: after a whole-cluster restart the first set comes
         * after every set installed before (the node-set files) */
        uint64_t p = ns->cfg.persisted.epoch > ns->boot_epoch ? ns->cfg.persisted.epoch
                                                               : ns->boot_epoch;
        e = p + 1;
        if (ns->promised.epoch == e && ns->promised.round >= r)
            r = ns->promised.round + 1;
    }
    ns->b = (struct ns_ballot){e, r, ns->cfg.self};
    ns->max_round = r;
    ns->rs = NS_R_BUILD;
    ns->st.rounds++;
    memset(ns->ans, 0, sizeof ns->ans);
    memset(&ns->best_acc, 0, sizeof ns->best_acc);
    ns->arb_granted = false;
    ns->confirmed = false;
    ns->recheck = 0;
    ns->stuck = 0; /* the round settles it; a member still stuck reports again */
    ns->rebuilt = 0; /* likewise: a rebuilt member left not current reports again */
    ns->asked = ns->cfg.configured & ~NS_BIT(ns->cfg.self);
    ns->answered = NS_BIT(ns->cfg.self);
    ns->promised_by = NS_BIT(ns->cfg.self);
    ns->accepted_by = 0;
    NLOG_INFO("ns", "node %u coordinates round %u for epoch %llu (%s)", ns->cfg.self, r,
              (unsigned long long)ns->b.epoch, why);
    /* this node promises its own ballot */
    ns->promised = ns->b;
    struct ns_answer *me = &ns->ans[ns->cfg.self];
    me->promised = true;
    me->suspects = ns->suspects;
    me->incarnation = ns->cfg.incarnation;
    me->current = ns->inst.epoch ? self_in(ns, &ns->inst) &&
                                       (ns->inst.current & NS_BIT(ns->cfg.self)) != 0
                                 : true;
    me->inst_epoch = ns->inst.epoch;
    me->rebuilt = rebuilt_holds(ns);
    me->p_epoch = ns->inst.epoch ? 0 : ns->cfg.persisted.epoch;
    me->p_members = ns->cfg.persisted.members;
    me->p_current = ns->cfg.persisted.current;
    me->restorable = ns->restorable;
    me->recovery = ns->recovery;
    snprintf(me->detail, sizeof me->detail, "%s", ns->recovery_detail);
    if (!ns->inst.epoch && ns->cfg.persisted.epoch && !ns->recover_asked && ns->ops->recover) {
        ns->recover_asked = true; /* the coordinator's own disk, too */
        ns->ops->recover(ns->ctx);
    }
    if (ns->acc_ballot.epoch == ns->b.epoch) {
        ns->best_acc = ns->acc_ballot;
        ns->best_view = ns->acc;
    }
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((ns->asked & ~(ns->base.epoch ? ns->down : 0)) & NS_BIT(id))
            send_build(ns, id);
    ns->round_deadline = ns->now + ns->cfg.ask_us;
    if (build_complete(ns))
        evaluate_build(ns);
}

/* Quorum of the base set among `have`: 1 = strict majority, 0 = exactly
 * half (the arbitrator decides), -1 = less. */
static int quorum(const struct ns *ns, uint64_t have)
{
    unsigned n = ns_popcount(ns->base.members);
    unsigned q = ns_popcount(have & ns->base.members);
    if (2 * q > n)
        return 1;
    if (2 * q == n && n > 0)
        return 0;
    return -1;
}

/* Suspicion arbitration: among the answering nodes, while one suspects
 * another, drop the later of the two in the line of succession (never this
 * node, the coordinator, which drops the other). */
static uint64_t arbitrate(const struct ns *ns, uint64_t s)
{
    bool again = true;
    while (again) {
        again = false;
        for (uint32_t a = 1; a <= NS_MAX_NODES && !again; a++) {
            if (!(s & NS_BIT(a)))
                continue;
            uint64_t sus = ns->ans[a].suspects & s & ~NS_BIT(a);
            if (!sus)
                continue;
            uint32_t b = first_id(sus);
            uint32_t drop = a > b ? a : b;
            if (drop == ns->cfg.self)
                drop = drop == a ? b : a;
            s &= ~NS_BIT(drop);
            again = true;
        }
    }
    return s;
}

static void fence_no_quorum(struct ns *ns, uint64_t have)
{
    ns->st.no_quorum++;
    if (ns->inst.epoch && self_in(ns, &ns->inst))
        set_ha(ns, false, NS_HA_ISOLATED,
               "no quorum: node %u reaches %u of the %u members of epoch %llu (members %llx)",
               ns->cfg.self, ns_popcount(have & ns->base.members),
               ns_popcount(ns->base.members), (unsigned long long)ns->base.epoch,
               (unsigned long long)ns->base.members);
    round_stop(ns, backoff(ns));
}

static void send_accepts(struct ns *ns)
{
    ns->rs = NS_R_ACCEPT;
    ns->accepted_by = NS_BIT(ns->cfg.self);
    ns->accept_start = ns->now;
    ns->quorum_at = 0;
    ns->acc_ballot = ns->b;
    ns->acc = ns->proposal;
    Nines__NsAcceptReq r = NINES__NS_ACCEPT_REQ__INIT;
    Nines__Ballot b;
    Nines__NodeSet p;
    uint64_t p_inc[NS_WIRE_BUF];
    ballot_to(&b, &ns->b);
    view_to(&p, &ns->proposal, p_inc);
    r.ballot = &b;
    r.proposal = &p;
    /* every node that promised, also those the proposal leaves out: they
     * stop serving when they accept it, before anyone installs it */
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((ns->promised_by & NS_BIT(id)) && id != ns->cfg.self)
            ns->ops->send(ns->ctx, id, NINES__MSG_TYPE__NS_ACCEPT_REQ, &r.base);
    ns->round_deadline = ns->now + ns->cfg.ask_us;
}

/* NS_INSTALL_ORD(v) to every node of `to` but this one. */
static void send_install(struct ns *ns, uint64_t to, const struct ns_view *v)
{
    Nines__NsInstallOrd o = NINES__NS_INSTALL_ORD__INIT;
    Nines__NodeSet w;
    uint64_t w_inc[NS_WIRE_BUF];
    view_to(&w, v, w_inc);
    o.set = &w;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((to & NS_BIT(id)) && id != ns->cfg.self)
            ns->ops->send(ns->ctx, id, NINES__MSG_TYPE__NS_INSTALL_ORD, &o.base);
}

static void decide(struct ns *ns)
{
    struct ns_view v = ns->proposal;
    if (ns->base.epoch) {
        ns->st.rebuilt_current += ns_popcount(v.current & ~ns->base.current);
        ns->st.takebacks += ns_popcount(ns->base.standby_only & v.current & ~v.standby_only);
    }
    send_install(ns, ns->cfg.configured, &v);
    round_stop(ns, 0);
    install(ns, &v);
}

/* Who enters `current` (proposal p, built on ns->base, its members and
 * incarnations chosen): the members that are not current and answered
 * that their replicas are rebuilt for the base set (the same process, the
 * base installed) — only in a round where no base member process leaves
 * and no current member stops being current: a node that only caught up
 * must never become a fragment's sole current replica in the round its
 * primary leaves. Otherwise they wait for a later round (their kernel
 * services claim again for the set this round installs). They enter as
 * standby-only, current since this epoch (`since`: of two standby-only
 * replicas the one current since earlier is primary); a standby-only node
 * stays so, since the same epoch, while it stays current and drops out
 * with current. Takeback (ns_takeback) is the one thing that clears the
 * standby_only bit of a node that stays current, under the same rule. */
static void admit_rebuilt(struct ns *ns, struct ns_view *p)
{
    const struct ns_view *base = &ns->base;
    uint64_t newcur = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++) {
        const struct ns_answer *a = &ns->ans[id];
        if ((p->members & NS_BIT(id)) && a->promised && a->rebuilt &&
            a->inst_epoch == base->epoch && ns_is_member(base, id, a->incarnation) &&
            !(base->current & NS_BIT(id)))
            newcur |= NS_BIT(id);
    }
    bool none_left = (base->current & ~p->current) == 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES && none_left; id++)
        if ((base->members & NS_BIT(id)) && !ns_is_member(p, id, base->inc[id]))
            none_left = false;
    uint64_t admitted = none_left ? newcur : 0;
    p->standby_only = (base->standby_only & p->current) | admitted;
    p->current |= admitted;
    /* takeback (ns_takeback): the one thing that clears the standby-only
     * bit of a node that stays current, after the supervisor drained the
     * primaries that move to it; same rule as entering current */
    uint32_t tb = ns->tb_node;
    ns->tb_node = 0; /* consumed by this proposal, applied or not */
    if (tb && ns->tb_epoch == base->epoch && (p->standby_only & NS_BIT(tb)) &&
        ns_is_member(p, tb, base->inc[tb])) {
        if (none_left) {
            p->standby_only &= ~NS_BIT(tb);
            NLOG_INFO("ns", "node %u: round %u for epoch %llu: node %u takes its primaries back "
                      "(standby-only since epoch %llu no more)", ns->cfg.self, ns->b.round,
                      (unsigned long long)ns->b.epoch, tb,
                      (unsigned long long)base->since[tb]);
        } else {
            ns->st.takeback_deferred++;
            NLOG_INFO("ns", "node %u: round %u for epoch %llu: node %u stays standby-only (a "
                      "member leaves or stops being current in this round)", ns->cfg.self,
                      ns->b.round, (unsigned long long)ns->b.epoch, tb);
        }
    }
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        p->since[id] = (admitted & NS_BIT(id))         ? p->epoch
                       : (p->standby_only & NS_BIT(id)) ? base->since[id]
                                                        : 0;
    if (newcur && !none_left) {
        uint64_t gone = (base->current & ~p->current) | (base->members & ~p->members);
        for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
            if ((base->members & p->members & NS_BIT(id)) && p->inc[id] != base->inc[id])
                gone |= NS_BIT(id); /* its member process restarted */
        ns->st.rebuilt_deferred += ns_popcount(newcur);
        NLOG_INFO("ns", "node %u: round %u for epoch %llu: rebuilt members %llx stay not "
                  "current (members %llx of epoch %llu leave or stop being current in it)",
                  ns->cfg.self, ns->b.round, (unsigned long long)ns->b.epoch,
                  (unsigned long long)newcur, (unsigned long long)gone,
                  (unsigned long long)base->epoch);
    } else if (admitted) {
        NLOG_INFO("ns", "node %u: round %u for epoch %llu: rebuilt members %llx become current "
                  "and standby-only", ns->cfg.self, ns->b.round, (unsigned long long)ns->b.epoch,
                  (unsigned long long)admitted);
    }
}

/* ---- whole-cluster restart (supervisor/README.md "Whole-cluster restart") */

/* The newest persisted set among the answers `s` (epoch 0: none: a plain
 * bootstrap). */
static const struct ns_answer *restart_newest(const struct ns *ns, uint64_t s)
{
    const struct ns_answer *best = NULL;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((s & NS_BIT(id)) && ns->ans[id].p_epoch &&
            (!best || ns->ans[id].p_epoch > best->p_epoch))
            best = &ns->ans[id];
    return best;
}

/* Node `id` (answered) can stand for its site's replicas: it recovered
 * every replica placed on it and was current in the newest set, or holds
 * none. */
static bool restart_node_ok(const struct ns *ns, uint32_t id, const struct ns_answer *P)
{
    const struct ns_answer *a = &ns->ans[id];
    if (a->recovery == NS_RC_NOTHING)
        return true;
    return a->recovery == NS_RC_OK && (P->p_current & NS_BIT(id));
}

/* A site every configured node of which answered and is ok: its disks hold
 * every fragment (one replica of each per site). The lowest such site id
 * (0: none, else site + 1). */
static uint32_t restart_site(const struct ns *ns, uint64_t s, const struct ns_answer *P)
{
    uint32_t best = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++) {
        if (!(ns->cfg.configured & NS_BIT(id)))
            continue;
        uint32_t site = ns->cfg.site[id];
        bool ok = true;
        for (uint32_t j = 1; j <= NS_MAX_NODES && ok; j++)
            if ((ns->cfg.configured & NS_BIT(j)) && ns->cfg.site[j] == site)
                ok = (s & NS_BIT(j)) && restart_node_ok(ns, j, P);
        if (ok && (!best || site + 1 < best))
            best = site + 1;
    }
    return best;
}

/* Should the bootstrap wait (a restart whose nodes have not all answered,
 * or not all recovered yet)? Logged once a second while it waits. */
static bool restart_pending(struct ns *ns, uint64_t s)
{
    const struct ns_answer *P = restart_newest(ns, s);
    if (!P)
        return false;
    if (P->p_epoch >= ns->b.epoch) {
        /* a set newer than this round's epoch was installed before: the
         * next round proposes after it */
        ns->boot_epoch = P->p_epoch;
        return true;
    }
    if (!ns->restart_since)
        ns->restart_since = ns->now;
    uint64_t missing = P->p_members & ~s & ns->cfg.configured;
    uint64_t recovering = 0; /* nodes with a disk of the cluster's that have not finished */
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((s & NS_BIT(id)) && ns->ans[id].p_epoch && ns->ans[id].recovery == NS_RC_UNKNOWN)
            recovering |= NS_BIT(id);
    bool waited = ns->now - ns->restart_since >= ns->cfg.restart_wait_us;
    uint32_t site = restart_site(ns, s, P);
    bool wait = recovering || (missing && !waited) || !site;
    if (wait && ns->now - ns->restart_log_us >= 1000000u) {
        ns->restart_log_us = ns->now;
        NLOG_WARN("ns", "node %u: whole-cluster restart (the newest set before was epoch %llu, "
                  "members %llx, current %llx): waiting for nodes %llx to answer and %llx to "
                  "recover from their disks%s", ns->cfg.self, (unsigned long long)P->p_epoch,
                  (unsigned long long)P->p_members, (unsigned long long)P->p_current,
                  (unsigned long long)missing, (unsigned long long)recovering,
                  !recovering && (!missing || waited) && !site
                      ? "; no site has every node recovered and current: the cluster cannot "
                        "restart from disk until one does"
                      : "");
        for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
            if ((s & NS_BIT(id)) && ns->ans[id].recovery == NS_RC_FAILED)
                NLOG_WARN("ns", "node %u: node %u could not recover: %s", ns->cfg.self, id,
                          ns->ans[id].detail);
    }
    return wait;
}

/* The restart's first set over the answers `s`: the chosen site's nodes
 * current, the restorable epoch the highest any node persisted. false: not
 * a restart (no node has a persisted set). */
static bool restart_of(struct ns *ns, uint64_t s, struct ns_view *p)
{
    const struct ns_answer *P = restart_newest(ns, s);
    if (!P)
        return false;
    uint32_t site = restart_site(ns, s, P) - 1; /* restart_pending made sure of one */
    uint64_t r = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((s & NS_BIT(id)) && ns->ans[id].restorable > r)
            r = ns->ans[id].restorable;
    p->current = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((s & NS_BIT(id)) && ns->cfg.site[id] == site)
            p->current |= NS_BIT(id);
    p->restart = true;
    p->restart_gci = r;
    NLOG_INFO("ns", "node %u: whole-cluster restart: site %u recovers from its disks (nodes "
              "%llx current), every other node is rebuilt from it; commits of epochs up to %llu "
              "are kept", ns->cfg.self, site, (unsigned long long)p->current,
              (unsigned long long)r);
    return true;
}

/* Phase 1 is over (everyone answered or is down, or the re-ask ran out):
 * choose. */
static void evaluate_build(struct ns *ns)
{
    uint64_t promised = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (ns->ans[id].promised)
            promised |= NS_BIT(id);
    /* the coordinator's own answer is what it suspects now */
    ns->ans[ns->cfg.self].suspects = ns->suspects;
    uint64_t conflicted = 0; /* answering nodes that suspect another answering node */
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((promised & NS_BIT(id)) && (ns->ans[id].suspects & promised & ~NS_BIT(id)))
            conflicted |= NS_BIT(id);
    if (conflicted && !ns->confirmed) {
        /* a suspected node answered this round: it runs. Its heartbeats may
         * only have been late (a stalled machine): confirm the suspicion two
         * intervals later before it costs anyone the membership */
        ns->confirmed = true;
        ns->recheck = conflicted;
        ns->rs = NS_R_CONFIRM;
        ns->round_deadline = ns->now + 2 * ns->cfg.ask_us;
        NLOG_INFO("ns", "node %u: round %u for epoch %llu: nodes %llx that answered suspect "
                  "others that answered: confirming in %llu ms", ns->cfg.self, ns->b.round,
                  (unsigned long long)ns->b.epoch, (unsigned long long)conflicted,
                  (unsigned long long)(2 * ns->cfg.ask_us / 1000));
        return;
    }
    uint64_t s = arbitrate(ns, promised);
    uint64_t cur = 0; /* answers whose replicas are current */
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (ns->ans[id].promised && ns->ans[id].current)
            cur |= NS_BIT(id);
    int q = quorum(ns, s);
    if (q < 0 || (q == 0 && !ns->cfg.has_arbitrator)) {
        NLOG_WARN("ns", "node %u: round %u for epoch %llu has no quorum: %u of %u members of "
                  "epoch %llu answered%s", ns->cfg.self, ns->b.round,
                  (unsigned long long)ns->b.epoch, ns_popcount(s & ns->base.members),
                  ns_popcount(ns->base.members), (unsigned long long)ns->base.epoch,
                  q == 0 ? " (exactly half, and no arbitrator is configured)" : "");
        fence_no_quorum(ns, s);
        return;
    }
    if (ns->best_acc.epoch == ns->b.epoch) {
        /* a proposal may have been decided for this epoch by an earlier
         * round: only it may be proposed again (its members still answer
         * or the next epoch removes them) */
        ns->proposal = ns->best_view;
        if (ns->tb_node) {
            ns->st.takeback_deferred++;
            ns->tb_node = 0; /* not this round: the supervisor asks again */
        }
    } else {
        struct ns_view p = {.epoch = ns->b.epoch, .members = s};
        if (!ns->base.epoch && restart_pending(ns, s)) {
            round_stop(ns, ns->cfg.ask_us); /* asked again: answers and recoveries change */
            return;
        }
        if (!ns->base.epoch && restart_of(ns, s, &p)) {
            /* p.current, restart, restart_gci set */
        } else if (!ns->base.epoch) {
            p.current = s; /* bootstrap: every first member holds what there is */
        } else {
            p.current = ns->base.current & s & cur;
        }
        p.coordinator = first_id(p.members);
        for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
            if (p.members & NS_BIT(id))
                p.inc[id] = ns->ans[id].incarnation;
        if (ns->base.epoch)
            admit_rebuilt(ns, &p);
        if (ns->base.epoch && p.members == ns->base.members &&
            p.current == ns->base.current && p.standby_only == ns->base.standby_only &&
            memcmp(p.inc, ns->base.inc, sizeof p.inc) == 0 &&
            memcmp(p.since, ns->base.since, sizeof p.since) == 0) {
            /* everyone still answers and nobody joins: nothing to change */
            NLOG_INFO("ns", "node %u: round %u for epoch %llu changes nothing (members %llx "
                      "all answer)", ns->cfg.self, ns->b.round, (unsigned long long)ns->b.epoch,
                      (unsigned long long)p.members);
            if (ns->confirmed)
                ns->st.unconfirmed++;
            ns->reported = 0;
            ns->joiners = 0; /* a joiner left out asks again (join_us) */
            ns->suspects &= ~p.members;
            round_stop(ns, backoff(ns));
            if (ns->ha == NS_HA_ISOLATED)
                ha_after_install(ns, false);
            return;
        }
        ns->proposal = p;
    }
    ns->answered = s;
    if (q == 0) {
        ns->rs = NS_R_ARB;
        ns->round_deadline = ns->now + ns->cfg.arb_us;
        ns->ops->arb_ask(ns->ctx, ns->base.members, &ns->proposal);
        return;
    }
    send_accepts(ns);
}

static void evaluate_accept(struct ns *ns, bool deadline)
{
    /* acceptors are the base's members, in the proposal or not */
    int q = quorum(ns, ns->accepted_by);
    if (q > 0 || (q == 0 && ns->arb_granted)) {
        /* a node the proposal leaves out may still serve until its lease
         * runs out (acceptors advertise the new epoch, which does not renew
         * it), unless it accepted the proposal (it stopped then) or its
         * host closed its connections (the process is gone) */
        uint64_t left_out = ns->base.members & ~ns->proposal.members & ~ns->accepted_by &
                            ~ns->down & ~NS_BIT(ns->cfg.self);
        if (!ns->quorum_at)
            ns->quorum_at = ns->now;
        NLOG_DEBUG("ns", "node %u: round %u epoch %llu quorum at %llu (now %llu): accepted %llx, "
                   "left out %llx, down %llx", ns->cfg.self, ns->b.round,
                   (unsigned long long)ns->b.epoch, (unsigned long long)ns->quorum_at,
                   (unsigned long long)ns->now, (unsigned long long)ns->accepted_by,
                   (unsigned long long)left_out, (unsigned long long)ns->down);
        if (!left_out || ns->now >= ns->quorum_at + ns->cfg.lease_us) {
            decide(ns);
            return;
        }
        if (!deadline && (ns->accepted_by & ns->promised_by) != ns->promised_by)
            return; /* more acceptances may come */
        ns->round_deadline = ns->quorum_at + ns->cfg.lease_us;
        return;
    }
    if (deadline) {
        NLOG_WARN("ns", "node %u: round %u for epoch %llu: only %u acceptances of %u members",
                  ns->cfg.self, ns->b.round, (unsigned long long)ns->b.epoch,
                  ns_popcount(ns->accepted_by & ns->base.members),
                  ns_popcount(ns->base.members));
        round_stop(ns, backoff(ns));
    }
}

/* Should this node start a round now? */
static void maybe_start(struct ns *ns)
{
    if (ns->rs != NS_R_IDLE || ns->now < ns->idle_until)
        return;
    if (coordinator_of(ns) != ns->cfg.self)
        return;
    if (!ns->inst.epoch) {
        /* bootstrap: every configured node heard, or a majority after boot_us */
        uint64_t h = (ns->heard | NS_BIT(ns->cfg.self)) & ns->cfg.configured;
        bool all = h == ns->cfg.configured;
        bool late = ns->now - ns->start >= ns->cfg.boot_us &&
                    2 * ns_popcount(h) > ns_popcount(ns->cfg.configured);
        if (all || late)
            round_start(ns, all ? "bootstrap: every configured node is up"
                                : "bootstrap: a majority is up");
        return;
    }
    if (!self_in(ns, &ns->inst))
        return; /* OUT: not a coordinator of a set it is not in */
    uint64_t sus = (ns->suspects | ns->reported | ns->down) & ns->inst.members;
    if (sus)
        round_start(ns, "members suspected");
    else if (ns->joiners & ~ns->inst.members)
        round_start(ns, "nodes ask to join");
    else if (ns->stuck & ns->inst.members)
        round_start(ns, "members serve nothing");
    else if ((ns->rebuilt | (rebuilt_holds(ns) ? NS_BIT(ns->cfg.self) : 0)) &
             ns->inst.members & ~ns->inst.current)
        round_start(ns, "members not current are rebuilt");
    else if (ns->tb_node && ns->tb_epoch == ns->inst.epoch &&
             (ns->inst.standby_only & NS_BIT(ns->tb_node)))
        round_start(ns, "takeback of a standby-only node");
    else if (ns->ha == NS_HA_ISOLATED && ns->now - ns->isolated_since >= ns->cfg.report_us)
        round_start(ns, "this node does not hear a quorum");
}

/* ---- reports --------------------------------------------------------- */

static void send_report(struct ns *ns, uint32_t to, bool join)
{
    Nines__NsReportOrd r = NINES__NS_REPORT_ORD__INIT;
    r.node = ns->cfg.self;
    r.epoch = ns->inst.epoch;
    r.suspects = ns->suspects;
    r.join = join;
    r.incarnation = ns->cfg.incarnation;
    /* stuck: isolated for a report period (not the moment after an
     * install, before the members' heartbeats confirm the new set) */
    r.stuck = !join && ns->ha == NS_HA_ISOLATED &&
              ns->now - ns->isolated_since >= ns->cfg.report_us;
    r.rebuilt = !join && rebuilt_holds(ns);
    ns->st.reports_out++;
    ns->ops->send(ns->ctx, to, NINES__MSG_TYPE__NS_REPORT_ORD, &r.base);
}

static void report_or_start(struct ns *ns)
{
    uint32_t c = coordinator_of(ns);
    if (c == ns->cfg.self) {
        maybe_start(ns);
        return;
    }
    if (ns->ha == NS_HA_ACTIVE || ns->ha == NS_HA_ISOLATED) {
        /* an active member reports what it suspects, and its rebuilt
         * claim until a set makes it current (any install clears it) */
        if (!(ns->suspects & ns->inst.members) && ns->ha == NS_HA_ACTIVE &&
            !rebuilt_holds(ns))
            return;
        if (ns->report_deadline && ns->now < ns->report_deadline && ns->reported_to == c)
            return;
        send_report(ns, c, false);
        ns->reported_to = c;
        ns->report_deadline = ns->now + ns->cfg.report_us;
    }
}

static void join_tick(struct ns *ns)
{
    if (ns->ha != NS_HA_JOINING && ns->ha != NS_HA_OUT)
        return;
    if (ns->now < ns->join_deadline)
        return;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if ((ns->cfg.configured & NS_BIT(id)) && id != ns->cfg.self)
            send_report(ns, id, true);
    ns->join_deadline = ns->now + ns->cfg.join_us;
}

/* ---- inputs ---------------------------------------------------------- */

void ns_init(struct ns *ns, const struct ns_config *cfg, const struct ns_ops *ops, void *ctx,
             uint64_t now)
{
    memset(ns, 0, sizeof *ns);
    ns->cfg = *cfg;
    ns->ops = ops;
    ns->ctx = ctx;
    ns->now = ns->start = now;
    ns->ha = NS_HA_JOINING;
    snprintf(ns->reason, sizeof ns->reason, "node %u is joining the cluster (no node set yet)",
             cfg->self);
    N_ASSERT(cfg->self >= 1 && cfg->self <= NS_MAX_NODES);
    N_ASSERT(cfg->configured & NS_BIT(cfg->self));
    ns->join_deadline = now;
    ns_tick(ns, now);
}

void ns_tick(struct ns *ns, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    if (ns->rs != NS_R_IDLE && ns->round_deadline && ns->now >= ns->round_deadline) {
        switch (ns->rs) {
        case NS_R_BUILD: {
            uint64_t silent = ns->asked & ~ns->answered & ~(ns->base.epoch ? ns->down : 0);
            ns->rs = NS_R_REASK;
            for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
                if (silent & NS_BIT(id))
                    send_build(ns, id);
            ns->round_deadline = ns->now + ns->cfg.ask_us;
            break;
        }
        case NS_R_REASK:
            if (!ns->base.epoch && (ns->answered & ns->asked) != ns->asked &&
                ns->now < ns->start + ns->cfg.boot_us) {
                /* bootstrap: keep asking every configured node until boot_us
                 * has passed (connections may still be forming) */
                for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
                    if ((ns->asked & ~ns->answered) & NS_BIT(id))
                        send_build(ns, id);
                ns->round_deadline = ns->now + ns->cfg.ask_us;
                break;
            }
            evaluate_build(ns);
            break;
        case NS_R_CONFIRM:
            /* ask the suspecters again (this node's own answer is read
             * afresh by evaluate_build) */
            ns->recheck &= ~NS_BIT(ns->cfg.self);
            ns->rs = NS_R_RECHECK;
            ns->round_deadline = ns->now + ns->cfg.ask_us;
            for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
                if (ns->recheck & NS_BIT(id))
                    send_build(ns, id);
            if (!ns->recheck)
                evaluate_build(ns);
            break;
        case NS_R_RECHECK:
            /* a suspecter that does not answer again keeps its first answer */
            evaluate_build(ns);
            break;
        case NS_R_ARB:
            ns_on_arb(ns, false, "no answer from the arbitrator", ns->now);
            break;
        case NS_R_ACCEPT:
            evaluate_accept(ns, true);
            break;
        case NS_R_IDLE:
        default:
            N_ASSERT(0 && "round state");
        }
    }
    if (ns->ha == NS_HA_ACTIVE && ns->now >= ns->lease_until)
        ha_after_install(ns, false);
    join_tick(ns);
    if (ns->report_deadline && ns->now >= ns->report_deadline)
        ns->report_deadline = 0;
    report_or_start(ns);
    maybe_start(ns);
}

uint64_t ns_deadline(const struct ns *ns)
{
    uint64_t d = 0;
#define NS_MIN(x) do { if ((x) && (!d || (x) < d)) d = (x); } while (0)
    if (ns->rs != NS_R_IDLE)
        NS_MIN(ns->round_deadline);
    if (ns->ha == NS_HA_JOINING || ns->ha == NS_HA_OUT)
        NS_MIN(ns->join_deadline);
    NS_MIN(ns->report_deadline);
    if (ns->rs == NS_R_IDLE && ns->idle_until > ns->now)
        NS_MIN(ns->idle_until);
    if (ns->ha == NS_HA_ACTIVE && ns->lease_until > ns->now)
        NS_MIN(ns->lease_until);
    if (ns->ha == NS_HA_ISOLATED && ns->isolated_since + ns->cfg.report_us > ns->now)
        NS_MIN(ns->isolated_since + ns->cfg.report_us);
    if (!ns->inst.epoch && ns->start + ns->cfg.boot_us > ns->now)
        NS_MIN(ns->start + ns->cfg.boot_us);
#undef NS_MIN
    return d;
}

void ns_suspect(struct ns *ns, uint32_t node, uint64_t now)
{
    if (node < 1 || node > NS_MAX_NODES || node == ns->cfg.self ||
        !(ns->cfg.configured & NS_BIT(node)))
        return;
    if (now > ns->now)
        ns->now = now;
    if (ns->suspects & NS_BIT(node))
        return;
    ns->suspects |= NS_BIT(node);
    ns->heard &= ~NS_BIT(node);
    if (ns->inst.members & NS_BIT(node)) {
        ns->st.suspicions++;
        NLOG_WARN("ns", "node %u suspects node %u", ns->cfg.self, node);
        ns->report_deadline = 0;
    }
    report_or_start(ns);
}

void ns_hear(struct ns *ns, uint32_t node, uint64_t inc, uint64_t now)
{
    if (node < 1 || node > NS_MAX_NODES || node == ns->cfg.self ||
        !(ns->cfg.configured & NS_BIT(node)))
        return;
    if (now > ns->now)
        ns->now = now;
    if (inc && ns->inst.epoch && (ns->inst.members & NS_BIT(node)) &&
        !ns_is_member(&ns->inst, node, inc)) {
        /* a new process of a member: the member's process is gone */
        ns->heard |= NS_BIT(node);
        if (!(ns->down & NS_BIT(node))) {
            NLOG_WARN("ns", "node %u: node %u restarted (incarnation %llu, the member was %llu)",
                      ns->cfg.self, node, (unsigned long long)inc,
                      (unsigned long long)ns->inst.inc[node]);
            ns->down |= NS_BIT(node);
            if (!(ns->suspects & NS_BIT(node)))
                ns->st.suspicions++;
            ns->suspects |= NS_BIT(node);
            ns->report_deadline = 0;
        }
        report_or_start(ns);
        return;
    }
    ns->heard |= NS_BIT(node);
    ns->down &= ~NS_BIT(node);
    if (ns->suspects & NS_BIT(node)) {
        ns->suspects &= ~NS_BIT(node);
        NLOG_INFO("ns", "node %u hears node %u again", ns->cfg.self, node);
    }
    maybe_start(ns);
}

void ns_lease(struct ns *ns, uint64_t until, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    /* a lease once granted holds until it ends (supervisor/README.md
     * "Fencing"); coming back from ISOLATED needs confirmations now */
    uint64_t fresh = until;
    if (until > ns->lease_until)
        ns->lease_until = until;
    until = ns->lease_until;
    if (ns->ha == NS_HA_ACTIVE && ns->now >= until)
        ha_after_install(ns, false);
    /* back from ISOLATED only when the set is confirmed now: heard
     * confirming it (ns_confirms) by a quorum lately */
    if (ns->ha == NS_HA_ISOLATED && ns->now < fresh && !ns->excluded)
        ha_after_install(ns, false);
    report_or_start(ns);
}

int ns_set_rebuilt(struct ns *ns, uint64_t epoch, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    if (!ns->inst.epoch || epoch != ns->inst.epoch)
        return nines_err(NINES_ESTALE, "node %u: rebuilt in the node set of epoch %llu, but "
                         "the installed one is epoch %llu", ns->cfg.self,
                         (unsigned long long)epoch, (unsigned long long)ns->inst.epoch);
    if (!self_in(ns, &ns->inst))
        return nines_err(NINES_ENOTMEMBER, "node %u: rebuilt, but this process is not a "
                         "member of the node set of epoch %llu", ns->cfg.self,
                         (unsigned long long)epoch);
    if (ns->inst.current & NS_BIT(ns->cfg.self))
        return nines_err(NINES_ESTATE, "node %u: rebuilt, but it is current in the node set "
                         "of epoch %llu already", ns->cfg.self, (unsigned long long)epoch);
    if (ns->rebuilt_epoch != epoch) {
        NLOG_INFO("ns", "node %u: its replicas are rebuilt in the node set of epoch %llu: "
                  "asking to become current", ns->cfg.self, (unsigned long long)epoch);
        ns->rebuilt_epoch = epoch;
        ns->report_deadline = 0; /* report at once */
    }
    report_or_start(ns);
    return 0;
}

int ns_takeback(struct ns *ns, uint32_t node, uint64_t epoch, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    if (!ns->inst.epoch || epoch != ns->inst.epoch)
        return nines_err(NINES_ESTALE, "node %u: takeback of node %u in the node set of epoch "
                         "%llu, but the installed one is epoch %llu", ns->cfg.self, node,
                         (unsigned long long)epoch, (unsigned long long)ns->inst.epoch);
    if (!self_in(ns, &ns->inst) || coordinator_of(ns) != ns->cfg.self)
        return nines_err(NINES_ESTATE, "node %u: takeback of node %u, but this node does not "
                         "coordinate the node set of epoch %llu", ns->cfg.self, node,
                         (unsigned long long)epoch);
    if (node < 1 || node > NS_MAX_NODES || !(ns->inst.standby_only & NS_BIT(node)))
        return nines_err(NINES_ESTATE, "node %u: takeback of node %u, which is not standby-only "
                         "in the node set of epoch %llu (standby-only %llx)", ns->cfg.self, node,
                         (unsigned long long)epoch, (unsigned long long)ns->inst.standby_only);
    ns->tb_node = node;
    ns->tb_epoch = epoch;
    maybe_start(ns);
    return 0;
}

void ns_set_restorable(struct ns *ns, uint64_t gci)
{
    if (gci > ns->restorable)
        ns->restorable = gci;
}

void ns_set_recovery(struct ns *ns, uint32_t state, const char *detail, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    ns->recovery = state <= NS_RC_NOTHING ? state : NS_RC_FAILED;
    snprintf(ns->recovery_detail, sizeof ns->recovery_detail, "%s", detail ? detail : "");
}

bool ns_accepted_after(const struct ns *ns, uint64_t epoch)
{
    return ns->acc_ballot.epoch > epoch && ns->acc_ballot.epoch > ns->inst.epoch;
}

void ns_on_report(struct ns *ns, uint32_t from, const Nines__NsReportOrd *r, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    if (!(ns->cfg.configured & NS_BIT(from)) || r->node != from)
        return;
    ns->st.reports_in++;
    ns->heard |= NS_BIT(from);
    /* it runs; but a new process of a member is not that member */
    if (!ns->inst.epoch || !(ns->inst.members & NS_BIT(from)) ||
        ns_is_member(&ns->inst, from, r->incarnation))
        ns->suspects &= ~NS_BIT(from);
    if (ns->inst.epoch && r->epoch < ns->inst.epoch) {
        /* it missed an install: send it the set (it learns whether it is in) */
        send_install(ns, NS_BIT(from), &ns->inst);
    }
    if (ns->inst.epoch && (r->join || ((ns->inst.members & NS_BIT(from)) &&
                                       !ns_is_member(&ns->inst, from, r->incarnation)))) {
        /* outside the set and asking in; or a member that restarted (its
         * replicas are gone: it must be made not current) */
        ns->joiners |= NS_BIT(from);
        if (ns->inst.members & NS_BIT(from))
            ns->reported |= NS_BIT(from);
    }
    if (ns->inst.epoch && r->epoch == ns->inst.epoch) {
        ns->reported |= r->suspects & ns->inst.members & ~NS_BIT(ns->cfg.self);
        if (r->stuck && ns_is_member(&ns->inst, from, r->incarnation))
            ns->stuck |= NS_BIT(from);
        /* a claim of the member process itself, for this very set; the
         * round reads it again from the node's answer */
        if (r->rebuilt && ns_is_member(&ns->inst, from, r->incarnation) &&
            !(ns->inst.current & NS_BIT(from)))
            ns->rebuilt |= NS_BIT(from);
    }
    maybe_start(ns);
}

static bool learn(struct ns *ns, const Nines__NodeSet *w);

void ns_on_build_req(struct ns *ns, uint32_t from, const Nines__NsBuildReq *r, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    if (!(ns->cfg.configured & NS_BIT(from)) || !r->ballot || r->ballot->coord != from)
        return;
    struct ns_ballot b;
    ballot_from(&b, r->ballot);
    ns->heard |= NS_BIT(from);
    /* the set the round builds on is decided: a node whose install has not
     * arrived yet takes it from here (it answers as a member of it, not
     * as one that missed it) */
    if (r->from && r->from->epoch > ns->inst.epoch)
        learn(ns, r->from);
    Nines__Ballot pb;
    Nines__NodeSet inst;
    uint64_t inst_inc[NS_WIRE_BUF];
    if (b.epoch <= ns->inst.epoch || ballot_cmp(&b, &ns->promised) < 0) {
        Nines__NsBuildRef ref = NINES__NS_BUILD_REF__INIT;
        ballot_to(&pb, &ns->promised);
        view_to(&inst, &ns->inst, inst_inc);
        ref.ballot = r->ballot;
        ref.node = ns->cfg.self;
        ref.promised = &pb;
        ref.installed = &inst;
        ns->ops->send(ns->ctx, from, NINES__MSG_TYPE__NS_BUILD_REF, &ref.base);
        return;
    }
    if (ns->rs != NS_R_IDLE && ballot_cmp(&b, &ns->b) > 0) {
        NLOG_INFO("ns", "node %u gives up its round %u for epoch %llu: node %u runs round %u",
                  ns->cfg.self, ns->b.round, (unsigned long long)ns->b.epoch, from, b.round);
        ns->st.preempted++;
        round_stop(ns, backoff(ns));
    }
    ns->promised = b;
    if (b.round > ns->max_round && b.epoch == ns->inst.epoch + 1)
        ns->max_round = b.round;
    Nines__NsBuildConf c = NINES__NS_BUILD_CONF__INIT;
    Nines__Ballot ab;
    Nines__NodeSet acc;
    uint64_t acc_inc[NS_WIRE_BUF];
    view_to(&inst, &ns->inst, inst_inc);
    c.ballot = r->ballot;
    c.node = ns->cfg.self;
    c.incarnation = ns->cfg.incarnation;
    c.installed = &inst;
    if (ns->acc_ballot.epoch == b.epoch) {
        ballot_to(&ab, &ns->acc_ballot);
        view_to(&acc, &ns->acc, acc_inc);
        c.accepted_ballot = &ab;
        c.accepted = &acc;
    }
    c.current = ns->inst.epoch ? self_in(ns, &ns->inst) &&
                                     (ns->inst.current & NS_BIT(ns->cfg.self)) != 0
                               : true;
    c.suspects = ns->suspects;
    c.rebuilt = rebuilt_holds(ns);
    Nines__NodeSet pers;
    if (!ns->inst.epoch && ns->cfg.persisted.epoch) {
        /* a bootstrap after this node had a set: a whole-cluster restart
         * (the coordinator decides); its disk is recovered meanwhile */
        nines__node_set__init(&pers);
        pers.epoch = ns->cfg.persisted.epoch;
        pers.members = ns->cfg.persisted.members;
        pers.current = ns->cfg.persisted.current;
        c.persisted = &pers;
        c.restorable = ns->restorable;
        c.recovery = ns->recovery;
        c.recovery_detail = ns->recovery_detail;
        if (!ns->recover_asked && ns->ops->recover) {
            ns->recover_asked = true;
            ns->ops->recover(ns->ctx);
        }
    }
    ns->ops->send(ns->ctx, from, NINES__MSG_TYPE__NS_BUILD_CONF, &c.base);
}

/* A node knows a newer decided set: take it (decided sets are final). */
static bool learn(struct ns *ns, const Nines__NodeSet *w)
{
    struct ns_view v;
    if (!view_from(&v, w) || v.epoch <= ns->inst.epoch || !view_ok(ns, &v))
        return false;
    install(ns, &v);
    return true;
}

void ns_on_build_conf(struct ns *ns, uint32_t from, const Nines__NsBuildConf *r, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    struct ns_ballot b;
    ballot_from(&b, r->ballot);
    if ((ns->rs != NS_R_BUILD && ns->rs != NS_R_REASK && ns->rs != NS_R_CONFIRM &&
         ns->rs != NS_R_RECHECK) ||
        ballot_cmp(&b, &ns->b) != 0 || !(ns->asked & NS_BIT(from)) || r->node != from)
        return;
    if (ns->rs == NS_R_CONFIRM || ns->rs == NS_R_RECHECK) {
        /* phase 1 is over: only what a node suspects now counts (a late
         * first answer is too late to make the node a member) */
        if (!ns->ans[from].promised)
            return;
        ns->ans[from].suspects = r->suspects;
        if (ns->rs == NS_R_RECHECK) {
            ns->recheck &= ~NS_BIT(from);
            if (!ns->recheck)
                evaluate_build(ns);
        }
        return;
    }
    ns->heard |= NS_BIT(from);
    if (r->installed && r->installed->epoch > ns->inst.epoch) {
        /* behind: take the newer set and let the next round build on it */
        if (learn(ns, r->installed))
            return;
    }
    struct ns_answer *a = &ns->ans[from];
    a->promised = true;
    a->suspects = r->suspects;
    a->current = r->current;
    a->inst_epoch = r->installed ? r->installed->epoch : 0;
    a->rebuilt = r->rebuilt;
    a->p_epoch = r->persisted ? r->persisted->epoch : 0;
    a->p_members = r->persisted ? r->persisted->members : 0;
    a->p_current = r->persisted ? r->persisted->current & a->p_members : 0;
    a->restorable = r->restorable;
    a->recovery = r->recovery <= NS_RC_NOTHING ? r->recovery : NS_RC_FAILED;
    snprintf(a->detail, sizeof a->detail, "%s", r->recovery_detail ? r->recovery_detail : "");
    /* a node whose installed set is older than the base, or that has none,
     * joins: it is not current (it missed what happened meanwhile) */
    a->incarnation = r->incarnation;
    if (ns->base.epoch && (a->inst_epoch < ns->base.epoch ||
                           !ns_is_member(&ns->base, from, r->incarnation)))
        a->current = false;
    ns->answered |= NS_BIT(from);
    ns->promised_by |= NS_BIT(from);
    if (r->accepted_ballot && r->accepted && r->accepted_ballot->epoch == ns->b.epoch) {
        struct ns_ballot ab;
        ballot_from(&ab, r->accepted_ballot);
        struct ns_view av;
        if (view_from(&av, r->accepted) && view_ok(ns, &av) && av.epoch == ns->b.epoch &&
            ballot_cmp(&ab, &ns->best_acc) > 0) {
            ns->best_acc = ab;
            ns->best_view = av;
        }
    }
    if (build_complete(ns))
        evaluate_build(ns);
}

void ns_on_build_ref(struct ns *ns, uint32_t from, const Nines__NsBuildRef *r, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    ns->heard |= NS_BIT(from);
    if (r->installed && learn(ns, r->installed))
        return;
    struct ns_ballot p;
    ballot_from(&p, r->promised);
    if (p.epoch == ns->inst.epoch + 1 && p.round > ns->max_round)
        ns->max_round = p.round;
    if (ns->rs != NS_R_IDLE && ballot_cmp(&p, &ns->b) > 0) {
        NLOG_INFO("ns", "node %u gives up round %u for epoch %llu: node %u promised round %u "
                  "of node %u", ns->cfg.self, ns->b.round, (unsigned long long)ns->b.epoch,
                  from, p.round, p.coord);
        ns->st.preempted++;
        round_stop(ns, backoff(ns));
    }
}

void ns_on_accept_req(struct ns *ns, uint32_t from, const Nines__NsAcceptReq *r, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    if (!(ns->cfg.configured & NS_BIT(from)) || !r->ballot || !r->proposal ||
        r->ballot->coord != from)
        return;
    struct ns_ballot b;
    ballot_from(&b, r->ballot);
    struct ns_view v;
    if (!view_from(&v, r->proposal) || !view_ok(ns, &v) || v.epoch != b.epoch) {
        NLOG_WARN("ns", "node %u: refusing a malformed proposal from node %u (epoch %llu, "
                  "ballot epoch %llu, members %llx, coordinator %u)", ns->cfg.self, from,
                  (unsigned long long)v.epoch, (unsigned long long)b.epoch,
                  (unsigned long long)v.members, v.coordinator);
        return;
    }
    if (b.epoch <= ns->inst.epoch || ballot_cmp(&b, &ns->promised) < 0) {
        Nines__NsAcceptRef ref = NINES__NS_ACCEPT_REF__INIT;
        Nines__Ballot pb;
        Nines__NodeSet inst;
        uint64_t inst_inc[NS_WIRE_BUF];
        ballot_to(&pb, &ns->promised);
        view_to(&inst, &ns->inst, inst_inc);
        ref.ballot = r->ballot;
        ref.node = ns->cfg.self;
        ref.promised = &pb;
        ref.installed = &inst;
        ns->ops->send(ns->ctx, from, NINES__MSG_TYPE__NS_ACCEPT_REF, &ref.base);
        return;
    }
    ns->promised = b;
    ns->acc_ballot = b;
    ns->acc = v;
    if (!self_in(ns, &v) && ns->inst.epoch && self_in(ns, &ns->inst)) {
        ns->excluded = true;
        set_ha(ns, false, NS_HA_ISOLATED,
               "node %u is being removed from the node set: node %u proposes epoch %llu "
               "without it", ns->cfg.self, from, (unsigned long long)v.epoch);
    }
    Nines__NsAcceptConf c = NINES__NS_ACCEPT_CONF__INIT;
    c.ballot = r->ballot;
    c.node = ns->cfg.self;
    ns->ops->send(ns->ctx, from, NINES__MSG_TYPE__NS_ACCEPT_CONF, &c.base);
}

void ns_on_accept_conf(struct ns *ns, uint32_t from, const Nines__NsAcceptConf *r, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    struct ns_ballot b;
    ballot_from(&b, r->ballot);
    if (ns->rs != NS_R_ACCEPT || ballot_cmp(&b, &ns->b) != 0 || r->node != from ||
        !(ns->promised_by & NS_BIT(from)))
        return;
    ns->accepted_by |= NS_BIT(from);
    evaluate_accept(ns, false);
}

void ns_on_accept_ref(struct ns *ns, uint32_t from, const Nines__NsAcceptRef *r, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    if (r->installed && learn(ns, r->installed))
        return;
    struct ns_ballot p;
    ballot_from(&p, r->promised);
    if (p.epoch == ns->inst.epoch + 1 && p.round > ns->max_round)
        ns->max_round = p.round;
    if (ns->rs == NS_R_ACCEPT && ballot_cmp(&p, &ns->b) > 0) {
        ns->st.preempted++;
        round_stop(ns, backoff(ns));
    }
    (void)from;
}

void ns_on_install(struct ns *ns, uint32_t from, const Nines__NsInstallOrd *r, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    if (!(ns->cfg.configured & NS_BIT(from)))
        return;
    ns->heard |= NS_BIT(from);
    struct ns_view v;
    bool well = view_from(&v, r->set);
    if (v.epoch <= ns->inst.epoch)
        return;
    if (!well || !view_ok(ns, &v)) {
        NLOG_WARN("ns", "node %u: ignoring a malformed node set from node %u (epoch %llu, "
                  "members %llx, coordinator %u)", ns->cfg.self, from,
                  (unsigned long long)v.epoch, (unsigned long long)v.members, v.coordinator);
        return;
    }
    install(ns, &v);
}

void ns_on_arb(struct ns *ns, bool granted, const char *why, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    if (ns->rs != NS_R_ARB)
        return;
    if (!granted) {
        ns->st.arb_refused++;
        NLOG_WARN("ns", "node %u: the arbitrator did not grant epoch %llu to members %llx: %s",
                  ns->cfg.self, (unsigned long long)ns->proposal.epoch,
                  (unsigned long long)ns->proposal.members, why ? why : "refused");
        fence_no_quorum(ns, ns->answered);
        return;
    }
    ns->arb_granted = true;
    send_accepts(ns);
}

void ns_peer_epoch(struct ns *ns, uint32_t node, uint64_t epoch, uint64_t now)
{
    if (now > ns->now)
        ns->now = now;
    if (node < 1 || node > NS_MAX_NODES || node == ns->cfg.self ||
        !(ns->cfg.configured & NS_BIT(node)) || epoch <= ns->inst.epoch || !ns->inst.epoch)
        return;
    /* it has a newer set: ask it (its answer to a stale report is the set) */
    if (ns->behind_until > ns->now)
        return;
    ns->behind_until = ns->now + ns->cfg.report_us;
    send_report(ns, node, false);
}

void ns_down(struct ns *ns, uint32_t node, uint64_t now)
{
    if (node < 1 || node > NS_MAX_NODES || node == ns->cfg.self ||
        !(ns->cfg.configured & NS_BIT(node)))
        return;
    ns->down |= NS_BIT(node);
    ns_suspect(ns, node, now);
    /* a round waiting for its answer need not wait any longer */
    if ((ns->rs == NS_R_BUILD || ns->rs == NS_R_REASK) && build_complete(ns))
        evaluate_build(ns);
}
