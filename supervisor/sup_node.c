/* Supervisor task: the node lifecycle state machine, and the wiring of the
 * I-am-alive thread (sup_hb.c) and the node-set protocol (sup_ns.c) to the
 * runtime: ticks, connection hints, the lease, timers, messages, the
 * arbitrator question and the installation of node sets. */
#include "sup.h"

#include "arbitrator/arb.h"
#include "dict/svc/dsvc.h"
#include "kernel/svc/ksvc.h"
#include "nassert.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "nlog.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    SUP_TIMER_TICK = 1,        /* every heartbeat interval: read the I-am-alive state */
    SUP_TIMER_NS = 2,          /* ns_deadline */
    SUP_TIMER_PROBE = 3,       /* a closed connection's probe had time to be refused */
    SUP_ARB_DONE = 0x4142,     /* RT_MSG_USER cookie: the arbitrator thread finished */
};

#define SUP_JOIN_MS 100        /* joining / out: ask to (re)join this often */
#define SUP_BOOT_MS 3000       /* bootstrap: wait this long for every configured node */
#define SUP_RESTART_WAIT_MS 30000 /* whole-cluster restart: wait this long for every member
                                   * of the newest persisted set (README) */
#define SUP_ARB_MS 300         /* the arbitrator's answer, at most */
#define SUP_PROBE_US 1000      /* a closed connection: probe its heartbeat port this often */
#define SUP_STALL_MS 500       /* an executor turn longer than this is a stuck executor:
                                * heartbeats are withheld and the node leaves the set (a
                                * turn on a busy machine may be preempted for tens of ms:
                                * that is slow, not stuck) */

const char *sup_state_name(enum sup_node_state st)
{
    switch (st) {
    case SUP_STARTING:
        return "starting";
    case SUP_RUNNING:
        return "running";
    case SUP_STOPPING:
        return "stopping";
    default:
        return "invalid";
    }
}

/* ---- the protocol's outputs ------------------------------------------ */

static void ns_send(void *ctx, uint32_t to, uint32_t type, const ProtobufCMessage *body)
{
    struct sup *s = ctx;
    const struct rt_msg_entry *e = type < sup_msgtab_len ? &sup_msgtab[type] : NULL;
    N_ASSERT(e && e->desc && e->desc == body->descriptor);
    uint8_t buf[4096];
    size_t len = protobuf_c_message_get_packed_size(body);
    /* a node set is at most 64 incarnations and 64 epochs (standby_since),
     * about 1.4 KB; NS_BUILD_CONF carries two */
    N_ASSERT(len <= sizeof buf);
    protobuf_c_message_pack(body, buf);
    struct rt_msg *m = rt_msg_new(s->rt, type);
    if (!m)
        return; /* the round's timers re-ask */
    m->body = protobuf_c_message_unpack(e->desc, arena_pb_allocator(&m->arena), len, buf);
    if (!m->body) {
        rt_msg_free(s->rt, m);
        return;
    }
    /* a node without a connection now is re-asked by the protocol */
    (void)rt_send(s->rt, to, RT_SVC_SUP, m);
#ifdef NINES_FAULTS
    /* drills: the coordinator dies in the middle of a round (after the
     * first BUILD, ACCEPT or INSTALL of a round after bootstrap is on the
     * wire), tools/drill/README.md */
    const char *point = type == NINES__MSG_TYPE__NS_BUILD_REQ    ? "sup_kill_after_build"
                        : type == NINES__MSG_TYPE__NS_ACCEPT_REQ  ? "sup_kill_after_accept"
                        : type == NINES__MSG_TYPE__NS_INSTALL_ORD ? "sup_kill_after_install"
                                                                  : NULL;
    if (point && s->ns.b.epoch > 1 && N_FAULT(point)) {
        net_flush(rt_net(s->rt));
        NLOG_ERROR("sup", "node %u: fault point %s: killing this process after sending it to "
                   "node %u (round %u for epoch %llu)", s->self, point, to, s->ns.b.round,
                   (unsigned long long)s->ns.b.epoch);
        raise(SIGKILL);
    }
#endif
}

/* What the heartbeats say from now on (sup_hb.h). */
static void sup_advertise(struct sup *s, bool serving)
{
    if (!s->hb)
        return;
    struct ns_ballot b = ns_adv(&s->ns);
    sup_hb_advertise(s->hb, b.epoch, b.round, b.coord, serving);
    /* and the lease rule, when it changed (the thread reads it without
     * waiting; fewer writes, fewer reads that must be retried) */
    struct ns_lease_rule r;
    ns_lease_rule(&s->ns, &r);
    if (!s->rule_set || memcmp(&r, &s->rule, sizeof r) != 0) {
        s->rule = r;
        s->rule_set = true;
        sup_hb_set_rule(s->hb, &r, s->lease_us);
    }
}

static void ns_install(void *ctx, const struct ns_view *v, bool serving, const char *reason)
{
    struct sup *s = ctx;
    struct rt_nodeset n = {
        .epoch = v->epoch,
        .members = v->members,
        .current = v->current,
        .standby_only = v->standby_only,
        .coordinator = v->coordinator,
        .restart = v->restart,
        .restart_gci = v->restart_gci,
        .member = ns_is_member(v, s->self, s->incarnation),
        .serving = serving,
    };
    sup_nsf_installed(s, &(struct sup_nsf_set){v->epoch, v->members, v->current,
                                               v->standby_only});
    _Static_assert(sizeof n.since == sizeof v->since, "rt_nodeset.since is indexed by node id");
    memcpy(n.since, v->since, sizeof n.since);
    snprintf(n.reason, sizeof n.reason, "%s", reason ? reason : "");
    uint64_t now = nclock_us();
    if (v->epoch != s->epoch)
        s->installed_us = now;
    s->epoch = v->epoch;
    /* the lease itself is the I-am-alive thread's (rt_set_lease_source) */
    sup_advertise(s, serving);
    rt_install_nodeset(s->rt, &n);
}

static void *arb_main(void *arg)
{
    struct sup_arb *a = arg;
    struct sup *s = a->s;
    uint64_t inc[NS_MAX_NODES], since[NS_MAX_NODES];
    Nines__NodeSet p = NINES__NODE_SET__INIT;
    pthread_mutex_lock(&a->mu);
    uint64_t seq = a->seq, prev = a->prev_members;
    struct ns_view v = a->proposal;
    pthread_mutex_unlock(&a->mu);
    p.epoch = v.epoch;
    p.members = v.members;
    p.current = v.current;
    p.standby_only = v.standby_only;
    p.coordinator = v.coordinator;
    size_t k = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (v.members & NS_BIT(id))
            inc[k++] = v.inc[id];
    p.n_incarnations = k;
    p.incarnations = inc;
    k = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (v.standby_only & NS_BIT(id))
            since[k++] = v.since[id];
    p.n_standby_since = k;
    p.standby_since = since;
    struct arb_answer ans;
    memset(&ans, 0, sizeof ans);
    int rc = arb_vote(s->conf, s->self, prev, &p, SUP_ARB_MS, &ans);
    pthread_mutex_lock(&a->mu);
    if (a->seq == seq) {
        a->done = true;
        a->granted = rc == 0 && ans.granted;
        if (rc)
            snprintf(a->why, sizeof a->why, "no answer from the arbitrator: %s",
                     nines_errdetail());
        else
            snprintf(a->why, sizeof a->why, "%s", ans.reason);
    }
    pthread_mutex_unlock(&a->mu);
    (void)rt_post_from_thread(s->rt, RT_SVC_SUP, SUP_ARB_DONE);
    return NULL;
}

static void ns_arb(void *ctx, uint64_t prev, const struct ns_view *p)
{
    struct sup *s = ctx;
    struct sup_arb *a = &s->arb;
    if (a->running) {
        pthread_join(a->th, NULL); /* at most SUP_ARB_MS */
        a->running = false;
    }
    pthread_mutex_lock(&a->mu);
    a->seq++;
    a->done = false;
    a->prev_members = prev;
    a->proposal = *p;
    pthread_mutex_unlock(&a->mu);
    a->s = s;
    if (pthread_create(&a->th, NULL, arb_main, a) != 0) {
        ns_on_arb(&s->ns, false, "cannot start the arbitrator thread", nclock_us());
        return;
    }
    a->running = true;
}

/* whole-cluster restart: the kernel service recovers this node's disk */
static void ns_recover(void *ctx)
{
    struct sup *s = ctx;
    struct rt_msg *m = rt_msg_new(s->rt, KSVC_MSG_RECOVER);
    if (!m) {
        ns_set_recovery(&s->ns, NS_RC_FAILED, "no memory to ask for the recovery", nclock_us());
        return;
    }
    m->cookie = s->restart_floor;
    NLOG_INFO("sup", "node %u: a bootstrap after this node had a node set (epoch %llu): its "
              "replicas are recovered from its disk", s->self,
              (unsigned long long)s->nsf.found.epoch);
    rt_post_local(s->rt, RT_SVC_KERN, m);
}

static const struct ns_ops sup_ns_ops = {ns_send, ns_install, ns_arb, ns_recover};

/* ---- takeback (sup_tb.c) ------------------------------------------------ */

static void tb_send(void *ctx, uint32_t to, const Nines__TakebackReq *q)
{
    struct sup *s = ctx;
    struct rt_msg *m = rt_msg_new(s->rt, NINES__MSG_TYPE__TAKEBACK_REQ);
    Nines__TakebackReq *b = m ? RT_BODY(m, Nines__TakebackReq, nines__takeback_req__init) : NULL;
    if (!b) {
        if (m)
            rt_msg_free(s->rt, m);
        return; /* the attempt fails at its deadline and is tried again */
    }
    b->node = q->node;
    b->epoch = q->epoch;
    b->id = q->id;
    b->coordinator = q->coordinator;
    b->drain_ms = q->drain_ms;
    b->hold_ms = q->hold_ms;
    b->cancel = q->cancel;
    (void)rt_send(s->rt, to == s->self ? 0 : to, RT_SVC_KERN, m);
}

static int tb_takeback(void *ctx, uint32_t node, uint64_t epoch)
{
    struct sup *s = ctx;
    return ns_takeback(&s->ns, node, epoch, nclock_us());
}

static const struct sup_tb_ops sup_tb_ops = {tb_send, tb_takeback};

bool sup_ns_accepted(void *ctx, uint64_t epoch)
{
    const struct sup *s = ctx;
    return s->hb && ns_accepted_after(&s->ns, epoch);
}

/* Keep one timer armed for the protocol's next deadline (and the
 * takeback's: it looks at the node set after every input, here). */
static void sup_arm(struct sup *s)
{
    sup_gcp_kick(s); /* the lease may have changed whether this node coordinates */
    if (s->hb)
        sup_tb_step(&s->tb, &s->ns, nclock_us());
    uint64_t d = ns_deadline(&s->ns);
    uint64_t t = s->hb ? sup_tb_deadline(&s->tb, &s->ns) : 0;
    if (t && (!d || t < d))
        d = t;
    if (!d || (s->ns_timer && s->ns_timer_at <= d))
        return;
    if (s->ns_timer)
        rt_timer_cancel(s->rt, s->ns_timer);
    uint64_t now = nclock_us();
    int64_t id = rt_timer_add(s->rt, RT_SVC_SUP, d > now ? d - now : 0, SUP_TIMER_NS);
    s->ns_timer = id > 0 ? id : 0;
    s->ns_timer_at = d;
}

/* ---- inputs from the I-am-alive thread --------------------------------- */

/* Every heartbeat interval, on the executor: hearing, silence, restarts,
 * newer epochs and the lease, from what the thread recorded. */
static void sup_tick(struct sup *s)
{
    uint64_t now = nclock_us();
    uint64_t silent_us = s->hb_us * s->conf->heartbeat_misses;
    /* this node's own I-am-alive thread did not run lately (the machine
     * starved it): what it did not receive says nothing about the others */
    uint64_t loop = sup_hb_loop_us(s->hb);
    bool blind = loop < now && now - loop > 2 * s->hb_us;
    /* this node's I-am-alive thread (real-time priority) did not run for
     * a while: the machine was paused, its peers likely too. Silence is
     * counted from when it runs again, so the others get `misses`
     * intervals to be heard. (A late executor blinds nothing: the thread
     * records what it receives with its own clock.) */
    uint64_t resumed = sup_hb_resumed_us(s->hb);
    if (resumed > s->resumed_us && resumed <= now)
        s->resumed_us = resumed;
    const struct ns_view *v = &s->ns.inst;
    for (uint32_t i = 0; i < s->conf->nnodes; i++) {
        uint32_t id = s->conf->nodes[i].id;
        if (id == s->self)
            continue;
        const struct sup_hb_peer *p = sup_hb_peer(s->hb, id);
        struct sup_hb_heard hd;
        if (!sup_hb_read(s->hb, id, &hd)) {
            /* mid-write: judged next tick (reading "never heard" here
             * raised every false suspicion of a 10-minute saturated run) */
            continue;
        }
        uint64_t last = hd.last_us, inc = hd.inc, ep = hd.epoch;
        struct sup_peer *sp = &s->peers[id];
        if (last > now)
            last = now; /* recorded by the thread after `now` was read */
        /* after a down verdict only a heartbeat sent since counts (the
         * last one before the kill is still recent for `misses` intervals) */
        if (sp->gone_at_us && last > sp->gone_at_us)
            sp->gone_at_us = 0;
        bool heard_now = last && now - last <= silent_us && !sp->gone_at_us;
        if (sp->down_at_us && last > sp->down_at_us)
            sp->down_at_us = 0; /* a heartbeat after the close: a reconnect */
        /* a datagram to it was refused (ICMP port unreachable) after its
         * last heartbeat: no process holds its port */
        uint64_t unreach = atomic_load(&p->unreach_us);
        bool refused = unreach > last;
        if (sp->down_at_us && (refused || now - sp->down_at_us >= 2 * s->hb_us)) {
            /* the connection closed, and its host refused a heartbeat or
             * none came for two intervals (one could be in flight when it
             * closed) */
            if (v->members & NS_BIT(id))
                NLOG_WARN("sup", "node %u: node %u closed its connection %llu us ago and %s "
                          "(last heard %llu us ago)", s->self, id,
                          (unsigned long long)(now - sp->down_at_us),
                          refused ? "its host refused a heartbeat: its process is gone"
                                  : "sent no heartbeat since",
                          (unsigned long long)(last ? now - last : 0));
            ns_down(&s->ns, id, now);
            sp->down_at_us = 0;
            sp->gone_at_us = now;
        } else if (heard_now) {
            sp->silent = false;
            ns_hear(&s->ns, id, inc, now);
            ns_peer_epoch(&s->ns, id, ep, now);
        } else if (!blind) {
            /* silent: nothing for `misses` intervals since it was last heard,
             * or since the set that made it a member was installed (it
             * answered that round: a peer not heard yet is not silent) */
            uint64_t since = last > s->installed_us ? last : s->installed_us;
            if (s->resumed_us > since)
                since = s->resumed_us;
            bool silent = now - since > silent_us;
            /* before any set is installed (bootstrap) a node not heard yet
             * is only slow to start: suspecting it would leave it out */
            if (!v->epoch)
                silent = false;
            if (silent && !sp->silent && (v->members & NS_BIT(id)))
                NLOG_WARN("sup", "node %u: no heartbeat from node %u for %llu ms (last heard "
                          "%llu ms ago, set installed %llu ms ago, I-am-alive thread looped "
                          "%llu ms ago, previous tick %llu ms ago, resumed %llu ms ago)",
                          s->self, id,
                          (unsigned long long)(now - since) / 1000,
                          (unsigned long long)(last ? (now - last) / 1000 : 0),
                          (unsigned long long)(now - s->installed_us) / 1000,
                          (unsigned long long)(loop < now ? (now - loop) / 1000 : 0),
                          (unsigned long long)(s->tick_us && s->tick_us < now
                                                   ? (now - s->tick_us) / 1000 : 0),
                          (unsigned long long)(s->resumed_us ? (now - s->resumed_us) / 1000
                                                             : 0));
            if (silent && !sp->silent)
                ns_suspect(&s->ns, id, now);
            sp->silent = silent;
        }
    }
    /* the lease, as the I-am-alive thread keeps it in real time */
    ns_lease(&s->ns, sup_hb_lease(s->hb), now);
    now = nclock_us();
    ns_tick(&s->ns, now);
    sup_advertise(s, ns_serving(&s->ns));
    sup_arm(s);
    s->tick_us = now;
}

/* ---- lifecycle ---------------------------------------------------------- */

static void install_static(struct sup *s, uint64_t epoch);

int sup_init(struct sup *s, struct rt *rt)
{
    memset(s, 0, sizeof *s);
    s->rt = rt;
    s->conf = rt_conf(rt);
    s->self = rt_self(rt);
    s->state = SUP_STARTING;
    pthread_mutex_init(&s->arb.mu, NULL);
    if (!s->conf) {
        /* no cluster file (tests of a lone runtime): this node alone, serving */
        s->static_set = true;
        install_static(s, SUP_EPOCH_INITIAL);
    } else {
        const struct nines_node_conf *me = nines_conf_node(s->conf, s->self);
        if (!me)
            return nines_err(NINES_ECONFIG, "node %u is not in %s", s->self, s->conf->path);
        s->site = me->site;
    }
    sup_repair_init(s);
    sup_nsf_init(s);
    int rc = rt_subscribe_peers(rt, RT_SVC_SUP);
    if (rc == 0)
        rc = rt_task_add(rt, RT_SVC_SUP, "supervisor", sup_on_event, s);
    if (rc == 0) /* self-repair watches every install (sup_repair.c) */
        rc = rt_subscribe_nodeset(rt, RT_SVC_SUP);
    return rc;
}

static void install_static(struct sup *s, uint64_t epoch)
{
    struct rt_nodeset n = {.epoch = epoch, .member = true, .serving = true};
    for (uint32_t i = 0; s->conf && i < s->conf->nnodes; i++)
        n.members |= RT_NODE_BIT(s->conf->nodes[i].id);
    if (!n.members)
        n.members = RT_NODE_BIT(s->self);
    n.current = n.members;
    n.coordinator = (uint32_t)__builtin_ctzll(n.members) + 1;
    rt_install_nodeset(s->rt, &n);
    rt_set_lease(s->rt, UINT64_MAX);
    s->epoch = epoch;
}

int sup_init_static(struct sup *s, struct rt *rt)
{
    int rc = sup_init(s, rt);
    if (rc)
        return rc;
    s->static_set = true;
    install_static(s, SUP_EPOCH_INITIAL);
    return 0;
}

void sup_set_epoch(struct sup *s, uint64_t epoch)
{
    N_ASSERT(s->static_set);
    install_static(s, epoch);
}

static int sup_begin(struct sup *s)
{
    const struct nines_conf *c = s->conf;
    s->incarnation = net_incarnation(rt_net(s->rt));
    s->hb_us = (uint64_t)c->heartbeat_ms * 1000u;
    /* the lease (supervisor/README.md "Fencing"): a node cut off at time T
     * received its last confirmation at or before T and stops serving by
     * T + misses x interval; the others heard it last at T - interval or
     * later, suspect it misses intervals after that, and install a set
     * without it only after asking it twice (2 intervals more): at
     * T + (misses + 1) x interval at the earliest */
    uint32_t misses = c->heartbeat_misses > 1 ? c->heartbeat_misses : 2;
    s->lease_us = s->hb_us * misses;
    struct ns_config nc = {
        .self = s->self,
        .incarnation = s->incarnation,
        .has_arbitrator = c->has_arbitrator,
        .ask_us = s->hb_us,
        .report_us = 3 * s->hb_us,
        .join_us = SUP_JOIN_MS * 1000u,
        .boot_us = SUP_BOOT_MS * 1000u,
        .arb_us = (SUP_ARB_MS + 50) * 1000u,
        .backoff_us = 2 * s->hb_us,
        .lease_us = s->hb_us * misses,
        .restart_wait_us = SUP_RESTART_WAIT_MS * 1000u,
        .persisted = {.epoch = s->nsf.found.epoch,
                      .members = s->nsf.found.members,
                      .current = s->nsf.found.current,
                      .standby_only = s->nsf.found.standby_only},
    };
    for (uint32_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].id <= NS_MAX_NODES)
            nc.site[c->nodes[i].id] = c->nodes[i].site;
    for (uint32_t i = 0; i < c->nnodes; i++)
        nc.configured |= NS_BIT(c->nodes[i].id);
    s->installed_us = nclock_us();
    ns_init(&s->ns, &nc, &sup_ns_ops, s, s->installed_us);
    ns_set_restorable(&s->ns, s->restart_floor);
    struct sup_tb_config tc = {
        .self = s->self,
        .on = c->takeback,
        .settle_us = (uint64_t)c->takeback_ms * 1000u,
        .drain_ms = SUP_TB_DRAIN_MS,
        .hold_ms = SUP_TB_HOLD_MS,
        .answer_us = SUP_TB_ANSWER_MS * 1000u,
        .switch_us = SUP_TB_SWITCH_MS * 1000u,
        .backoff_us = SUP_TB_BACKOFF_MS * 1000u,
        .backoff_max_us = SUP_TB_BACKOFF_MAX_MS * 1000u,
    };
    sup_tb_init(&s->tb, &tc, &sup_tb_ops, s);
    uint64_t stall_us = SUP_STALL_MS * 1000u;
    if (stall_us < 4 * s->hb_us * misses)
        stall_us = 4 * s->hb_us * misses;
    int rc = sup_hb_start(&s->hb, s->rt, s->incarnation, s->hb_us, stall_us);
    if (rc)
        return rc;
    sup_advertise(s, false);
    rt_set_lease_source(s->rt, sup_hb_lease_src(s->hb));
    NLOG_INFO("sup", "node %u (incarnation %llu): heartbeats every %u ms, suspicion after %u "
              "silent intervals, lease %llu ms; joining the cluster", s->self,
              (unsigned long long)s->incarnation, c->heartbeat_ms, misses,
              (unsigned long long)s->lease_us / 1000);
    sup_arm(s);
    rt_timer_add(s->rt, RT_SVC_SUP, s->hb_us, SUP_TIMER_TICK);
    return 0;
}

/* The executor stopped (a signal called rt_stop): no new work; the node
 * tears its services down and exits. */
void sup_shutdown(struct sup *s)
{
    if (s->state == SUP_STOPPING)
        return;
    NLOG_INFO("sup", "node %u: %s -> stopping", s->self, sup_state_name(s->state));
    s->state = SUP_STOPPING;
    rt_stop(s->rt);
    sup_hb_stop(s->hb);
    s->hb = NULL;
    if (s->arb.running) {
        pthread_join(s->arb.th, NULL);
        s->arb.running = false;
    }
}

/* Runtime events: start, timers, ticks, peer connectivity (subscribed). */
void sup_on_event(struct rt *rt, void *st, struct rt_msg *m)
{
    struct sup *s = st;
    switch (m->type) {
    case RT_MSG_START:
        N_ASSERT(s->state == SUP_STARTING);
        s->state = SUP_RUNNING;
        if (s->conf && !s->static_set) {
            int rc = sup_begin(s);
            if (rc) {
                NLOG_ERROR("sup", "node %u cannot start its node-set protocol: %s", s->self,
                           nines_errdetail());
                rt_stop(rt);
            }
        }
        sup_gcp_start(s); /* commit epochs (sup_gcp_node.c) */
        break;
    case RT_MSG_IO_DONE: /* the node-set file's or the restorable file's write */
        if (!sup_nsf_on_io_done(s, (struct rt_io_req *)(uintptr_t)m->cookie) &&
            !sup_gcp_io_done(s, (struct rt_io_req *)(uintptr_t)m->cookie))
            NLOG_WARN("sup", "an I/O completion that is neither the node-set file's nor the "
                      "restorable file's");
        break;
    case RT_MSG_TIMER:
        if (m->cookie == SUP_TIMER_TICK && s->state == SUP_RUNNING && s->hb) {
            sup_tick(s);
            rt_timer_add(rt, RT_SVC_SUP, s->hb_us, SUP_TIMER_TICK);
        } else if (m->cookie == SUP_TIMER_PROBE && s->state == SUP_RUNNING && s->hb) {
            sup_tick(s);
            /* a dying process closes its connections and its heartbeat
             * socket one after the other: a probe sent between the two is
             * not refused. Probe again every millisecond while a closed
             * connection waits for its verdict (at most two intervals) */
            bool pending = false;
            for (uint32_t i = 0; i < s->conf->nnodes; i++) {
                uint32_t id = s->conf->nodes[i].id;
                if (id != s->self && s->peers[id].down_at_us) {
                    sup_hb_probe(s->hb, id);
                    pending = true;
                }
            }
            if (pending)
                rt_timer_add(rt, RT_SVC_SUP, SUP_PROBE_US, SUP_TIMER_PROBE);
        } else if (m->cookie == SUP_TIMER_REPAIR) {
            sup_repair_on_timer(s);
        } else if (m->cookie == SUP_TIMER_GCP) {
            s->gcp.timer = 0;
            sup_gcp_kick(s);
        } else if (m->cookie == SUP_TIMER_NS && s->state == SUP_RUNNING) {
            s->ns_timer = 0;
            /* the deadline may be the lease's: judge it on what the
             * I-am-alive thread heard up to now (a stalled executor's lease
             * was computed before the stall), then tick */
            if (s->hb)
                sup_tick(s);
            else
                ns_tick(&s->ns, nclock_us());
            sup_arm(s);
        }
        break;
    case RT_MSG_USER:
        if (s->state != SUP_RUNNING || !s->hb)
            break;
        if (m->cookie == SUP_ARB_DONE) {
            pthread_mutex_lock(&s->arb.mu);
            bool done = s->arb.done, granted = s->arb.granted;
            char why[256];
            memcpy(why, s->arb.why, sizeof why);
            s->arb.done = false;
            pthread_mutex_unlock(&s->arb.mu);
            if (done)
                ns_on_arb(&s->ns, granted, why, nclock_us());
            sup_advertise(s, ns_serving(&s->ns));
            sup_arm(s);
        }
        break;
    case RT_MSG_PEER_UP:
        NLOG_INFO("sup", "peer %u connected", (unsigned)m->cookie);
        if (m->cookie >= 1 && m->cookie <= NINES_MAX_NODES)
            s->peers[m->cookie].down_at_us = 0;
        break;
    case RT_MSG_PEER_RESTARTED:
        /* a new process, not a reconnect: whatever it had in memory is gone */
        if (m->cookie >= 1 && m->cookie <= NINES_MAX_NODES) {
            s->peers[m->cookie].restarts++;
            NLOG_INFO("sup", "peer %u restarted (incarnation %llu)", (unsigned)m->cookie,
                      (unsigned long long)net_peer_incarnation(rt_net(rt), (uint32_t)m->cookie));
            if (s->hb)
                ns_hear(&s->ns, (uint32_t)m->cookie,
                        net_peer_incarnation(rt_net(rt), (uint32_t)m->cookie), nclock_us());
        }
        break;
    case RT_MSG_PEER_DOWN:
        NLOG_INFO("sup", "peer %u disconnected (%s)", (unsigned)m->cookie,
                  nines_strerror(m->err));
        /* closed by its host (EOF, reset): likely a dead process; confirmed
         * when no heartbeat follows within an interval (sup_tick) */
        if (m->cookie >= 1 && m->cookie <= NINES_MAX_NODES && m->err == NINES_ECLOSED &&
            s->hb) {
            s->peers[m->cookie].down_at_us = nclock_us();
            /* probe it: a dead process's host refuses the datagram within
             * a round trip; look again shortly */
            sup_hb_probe(s->hb, (uint32_t)m->cookie);
            rt_timer_add(rt, RT_SVC_SUP, SUP_PROBE_US, SUP_TIMER_PROBE);
        }
        break;
    case RT_MSG_CLIENT_CLOSED:
        break; /* the supervisor keeps no client state */
    case RT_MSG_NODESET: /* installed (by this supervisor, or a test): self-repair looks */
        sup_repair_on_nodeset(s);
        sup_gcp_kick(s); /* a new set aborts a round; the coordinator may have changed */
        break;
    case DSVC_MSG_CHANGE_DONE: /* the dictionary service's answer (local only) */
        if (m->from == 0)
            sup_repair_on_done(s, m);
        break;
    case KSVC_MSG_RECOVERED: {
        /* this node's kernel service (local only, as KSVC_MSG_REBUILT) */
        if (m->from != 0 || !s->hb)
            break;
        struct ksvc_recovery_info ri;
        memset(&ri, 0, sizeof ri);
        if (s->kern)
            ksvc_recovery(s->kern, &ri);
        ns_set_recovery(&s->ns, (uint32_t)m->cookie, ri.detail, nclock_us());
        NLOG_INFO("sup", "node %u: recovery from its disk: %s (%u of %u replicas)%s%s", s->self,
                  m->cookie == KSVC_RC_OK        ? "every replica recovered"
                  : m->cookie == KSVC_RC_NOTHING ? "nothing to recover"
                                                 : "failed",
                  ri.recovered, ri.replicas, ri.detail[0] ? ": " : "", ri.detail);
        sup_arm(s);
        break;
    }
    case KSVC_MSG_REBUILT:
        /* this node's kernel service (local only: the type has no row in
         * the message table, so no peer or client can send it) */
        if (m->from != 0)
            break;
        if (s->state != SUP_RUNNING || !s->hb) {
            NLOG_INFO("sup", "node %u: replicas rebuilt in epoch %llu, but no node-set protocol "
                      "runs here (static node set): ignored", s->self,
                      (unsigned long long)m->cookie);
            break;
        }
        if (ns_set_rebuilt(&s->ns, m->cookie, nclock_us()) != 0)
            NLOG_INFO("sup", "node %u: rebuilt claim not taken: %s", s->self, nines_errdetail());
        sup_advertise(s, ns_serving(&s->ns));
        sup_arm(s);
        break;
    default:
        NLOG_WARN("sup", "supervisor ignores unexpected message type %u", m->type);
        break;
    }
}

/* The ring over connections is gone (heartbeats are UDP, sup_hb.c); a peer
 * of an older version may still send it: accepted and ignored. */
void sup_on_i_am_alive(struct rt *rt, void *st, struct rt_msg *m)
{
    (void)rt;
    (void)st;
    (void)m;
}

/* NS_* messages from peers (message table: peer or local, any epoch). */
void sup_on_ns_msg(struct rt *rt, void *st, struct rt_msg *m)
{
    struct sup *s = st;
    (void)rt;
    if (s->state != SUP_RUNNING || !s->hb || m->from < 1 || m->from > NINES_MAX_NODES)
        return;
    uint32_t from = (uint32_t)m->from;
    uint64_t now = nclock_us();
    switch (m->type) {
    case NINES__MSG_TYPE__NS_REPORT_ORD:
        ns_on_report(&s->ns, from, (const Nines__NsReportOrd *)m->body, now);
        break;
    case NINES__MSG_TYPE__NS_BUILD_REQ:
        ns_on_build_req(&s->ns, from, (const Nines__NsBuildReq *)m->body, now);
        break;
    case NINES__MSG_TYPE__NS_BUILD_CONF:
        ns_on_build_conf(&s->ns, from, (const Nines__NsBuildConf *)m->body, now);
        break;
    case NINES__MSG_TYPE__NS_BUILD_REF:
        ns_on_build_ref(&s->ns, from, (const Nines__NsBuildRef *)m->body, now);
        break;
    case NINES__MSG_TYPE__NS_ACCEPT_REQ:
        ns_on_accept_req(&s->ns, from, (const Nines__NsAcceptReq *)m->body, now);
        break;
    case NINES__MSG_TYPE__NS_ACCEPT_CONF:
        ns_on_accept_conf(&s->ns, from, (const Nines__NsAcceptConf *)m->body, now);
        break;
    case NINES__MSG_TYPE__NS_ACCEPT_REF:
        ns_on_accept_ref(&s->ns, from, (const Nines__NsAcceptRef *)m->body, now);
        break;
    case NINES__MSG_TYPE__NS_INSTALL_ORD:
        ns_on_install(&s->ns, from, (const Nines__NsInstallOrd *)m->body, now);
        break;
    default:
        NLOG_WARN("sup", "node-set handler got message type %u", m->type);
        return;
    }
    sup_advertise(s, ns_serving(&s->ns));
    sup_arm(s);
}

/* TAKEBACK_CONF / TAKEBACK_REF from a kernel service (this node's: local),
 * for this node's takeback as coordinator (supervisor/README.md
 * "Takeback"). */
void sup_on_takeback_ans(struct rt *rt, void *st, struct rt_msg *m)
{
    struct sup *s = st;
    (void)rt;
    if (s->state != SUP_RUNNING || !s->hb || m->from > NINES_MAX_NODES)
        return;
    uint32_t from = m->from ? (uint32_t)m->from : s->self;
    uint64_t now = nclock_us();
    switch (m->type) {
    case NINES__MSG_TYPE__TAKEBACK_CONF:
        sup_tb_on_conf(&s->tb, &s->ns, from, (const Nines__TakebackConf *)m->body, now);
        break;
    case NINES__MSG_TYPE__TAKEBACK_REF:
        sup_tb_on_ref(&s->tb, &s->ns, from, (const Nines__TakebackRef *)m->body, now);
        break;
    default:
        NLOG_WARN("sup", "takeback handler got message type %u", m->type);
        return;
    }
    sup_advertise(s, ns_serving(&s->ns));
    sup_arm(s);
}
