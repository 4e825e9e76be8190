/* Supervisor task: node lifecycle state machine and the I-am-alive ring. */
#include "sup.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nlog.h"

#include <string.h>

enum { SUP_TIMER_HEARTBEAT = 1 };

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

/* Ring order = ascending node id; neighbours are the previous and next
 * node in that circle (none when alone; the same node twice with two). */
static void sup_ring(struct sup *s)
{
    const struct nines_conf *c = s->conf;
    uint32_t ids[NINES_MAX_NODES], n = 0;
    for (uint32_t i = 0; i < c->nnodes; i++)
        ids[n++] = c->nodes[i].id;
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            uint32_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    s->ring_prev = s->ring_next = 0;
    for (uint32_t i = 0; i < n && n > 1; i++)
        if (ids[i] == s->self) {
            s->ring_prev = ids[(i + n - 1) % n];
            s->ring_next = ids[(i + 1) % n];
        }
}

int sup_init(struct sup *s, struct rt *rt)
{
    memset(s, 0, sizeof *s);
    s->rt = rt;
    s->conf = rt_conf(rt);
    s->self = rt_self(rt);
    s->state = SUP_STARTING;
    if (s->conf) {
        const struct nines_node_conf *me = nines_conf_node(s->conf, s->self);
        if (!me)
            return nines_err(NINES_ECONFIG, "node %u is not in %s", s->self, s->conf->path);
        s->site = me->site;
        sup_ring(s);
    }
    /* Until the node-set protocol runs: every configured node, current,
     * at SUP_EPOCH_INITIAL (no subscriber exists yet: services read it
     * with rt_nodeset at their START). */
    struct rt_nodeset ns = {.epoch = SUP_EPOCH_INITIAL, .serving = true};
    if (s->conf)
        for (uint32_t i = 0; i < s->conf->nnodes; i++)
            ns.members |= RT_NODE_BIT(s->conf->nodes[i].id);
    else
        ns.members = RT_NODE_BIT(s->self);
    ns.current = ns.members;
    for (uint32_t id = 1; id <= NINES_MAX_NODES; id++)
        if (ns.members & RT_NODE_BIT(id)) {
            ns.coordinator = id;
            break;
        }
    rt_install_nodeset(rt, &ns);
    s->epoch = SUP_EPOCH_INITIAL;
    int rc = rt_subscribe_peers(rt, RT_SVC_SUP);
    if (rc)
        return rc;
    return rt_task_add(rt, RT_SVC_SUP, "supervisor", sup_on_event, s);
}

void sup_set_epoch(struct sup *s, uint64_t epoch)
{
    if (s->epoch && epoch != s->epoch)
        NLOG_INFO("sup", "epoch %llu installed (was %llu)", (unsigned long long)epoch,
                  (unsigned long long)s->epoch);
    s->epoch = epoch;
    rt_set_epoch(s->rt, epoch);
}

static void sup_send_alive(struct sup *s, uint32_t to)
{
    struct rt_msg *m = rt_msg_new(s->rt, NINES__MSG_TYPE__I_AM_ALIVE);
    if (!m)
        return;
    Nines__IAmAlive *b = RT_BODY(m, Nines__IAmAlive, nines__iam_alive__init);
    if (!b) {
        rt_msg_free(s->rt, m);
        return;
    }
    b->seq = ++s->hb_seq;
    b->uptime_ms = (rt_now_us(s->rt) - rt_start_us(s->rt)) / 1000;
    /* a full queue to a silent neighbour is expected; liveness shows it */
    (void)rt_send(s->rt, to, RT_SVC_SUP, m);
}

/* Check one ring neighbour; report a change of its liveness once. */
static void sup_watch(struct sup *s, uint32_t id)
{
    struct sup_peer *p = &s->peers[id];
    uint64_t limit = (uint64_t)s->conf->heartbeat_ms * s->conf->heartbeat_misses * 1000u;
    uint64_t since = p->last_alive_us ? p->last_alive_us : rt_start_us(s->rt);
    bool silent = rt_now_us(s->rt) - since > limit;
    if (silent && !p->suspected)
        NLOG_WARN("sup", "ring neighbour %u silent for more than %u ms", id,
                  s->conf->heartbeat_ms * s->conf->heartbeat_misses);
    else if (!silent && p->suspected)
        NLOG_INFO("sup", "ring neighbour %u alive again", id);
    p->suspected = silent;
}

static void sup_heartbeat(struct sup *s)
{
    if (s->ring_next) {
        sup_send_alive(s, s->ring_next);
        sup_watch(s, s->ring_next);
    }
    if (s->ring_prev && s->ring_prev != s->ring_next) {
        sup_send_alive(s, s->ring_prev);
        sup_watch(s, s->ring_prev);
    }
    rt_timer_add(s->rt, RT_SVC_SUP, (uint64_t)s->conf->heartbeat_ms * 1000u, SUP_TIMER_HEARTBEAT);
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
}

/* Runtime events: start, timers, peer connectivity (subscribed). */
void sup_on_event(struct rt *rt, void *st, struct rt_msg *m)
{
    struct sup *s = st;
    switch (m->type) {
    case RT_MSG_START:
        N_ASSERT(s->state == SUP_STARTING);
        s->state = SUP_RUNNING;
        if (s->conf)
            sup_heartbeat(s);
        break;
    case RT_MSG_TIMER:
        if (m->cookie == SUP_TIMER_HEARTBEAT && s->state == SUP_RUNNING)
            sup_heartbeat(s);
        break;
    case RT_MSG_PEER_UP:
        NLOG_INFO("sup", "peer %u connected", (unsigned)m->cookie);
        break;
    case RT_MSG_PEER_RESTARTED:
        /* a new process, not a reconnect: whatever it had in memory is gone */
        if (m->cookie >= 1 && m->cookie <= NINES_MAX_NODES) {
            s->peers[m->cookie].restarts++;
            NLOG_INFO("sup", "peer %u restarted (incarnation %llu)", (unsigned)m->cookie,
                      (unsigned long long)net_peer_incarnation(rt_net(rt), (uint32_t)m->cookie));
        }
        break;
    case RT_MSG_PEER_DOWN:
        NLOG_INFO("sup", "peer %u disconnected", (unsigned)m->cookie);
        break;
    case RT_MSG_CLIENT_CLOSED:
        break; /* the supervisor keeps no client state */
    default:
        NLOG_WARN("sup", "supervisor ignores unexpected message type %u", m->type);
        break;
    }
}

void sup_on_i_am_alive(struct rt *rt, void *st, struct rt_msg *m)
{
    struct sup *s = st;
    if (m->from >= 1 && m->from <= NINES_MAX_NODES)
        s->peers[m->from].last_alive_us = rt_now_us(rt);
}
