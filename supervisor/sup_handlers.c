/* Supervisor request handlers: ping, sink, status. */
#include "sup.h"

#include "kernel/svc/ksvc.h"
#include "txctl/txc.h"
#include "nines_net.pb-c.h"
#include "nlog.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

void sup_on_ping_req(struct rt *rt, void *st, struct rt_msg *m)
{
    const Nines__PingReq *req = (const Nines__PingReq *)m->body;
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__PING_CONF);
    if (!r)
        return;
    Nines__PingConf *c = RT_BODY(r, Nines__PingConf, nines__ping_conf__init);
    if (!c) {
        rt_msg_free(rt, r);
        return;
    }
    c->seq = req->seq;
    c->sent_ns = req->sent_ns;
    c->payload = req->payload; /* borrowed: packed before m is recycled */
    int rc = rt_send(rt, m->from, RT_SVC_APP, r);
    if (rc)
        NLOG_DEBUG("sup", "ping reply to %llu not sent: %d", (unsigned long long)m->from, rc);
}

void sup_on_sink_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct sup *s = st;
    s->sinks_received++;
}

void sup_set_kernel(struct sup *s, const struct ksvc *k) { s->kern = k; }
void sup_set_txc(struct sup *s, const struct txc *t) { s->txc = t; }

/* Takeback (supervisor/README.md "Takeback"): this node's coordination
 * and its kernel service's drains into b (strings in r). */
static void status_takeback(const struct sup *s, struct rt_msg *r, Nines__StatusConf *b)
{
    const struct sup_tb *tb = &s->tb;
    if (!s->hb)
        b->tb_state = (char *)"static";
    else if (!tb->cfg.on)
        b->tb_state = (char *)"off";
    else if (tb->state == SUP_TB_IDLE && s->ns.inst.standby_only)
        b->tb_state = (char *)(s->ns.inst.coordinator == s->self ? "settling" : "idle");
    else
        b->tb_state = (char *)sup_tb_state_name(tb->state);
    b->tb_node = tb->state != SUP_TB_IDLE ? tb->node : 0;
    b->tb_attempt = tb->id;
    b->tb_done = tb->stats.done;
    b->tb_retried = tb->stats.failed;
    b->tb_last_us = tb->stats.last_us;
    b->tb_last_frags = tb->stats.last_frags;
    size_t n = strlen(tb->stats.last_why);
    if (n && (b->tb_detail = rt_msg_alloc(r, n + 1)))
        memcpy(b->tb_detail, tb->stats.last_why, n + 1);
    if (s->kern) {
        struct ksvc_tb_status k;
        ksvc_tb_status(s->kern, &k);
        b->tb_draining = k.draining;
        b->tb_drains_conf = k.conf;
        b->tb_drains_ref = k.ref;
        b->tb_refused = k.refused;
    }
}

/* Self-repair and reintegration (sup_repair.c) into b (strings in r). */
static void status_repair(const struct sup *s, struct rt_msg *r, Nines__StatusConf *b)
{
    const struct sup_repair *rp = &s->repair;
    char buf[512];
    size_t at = 0;
    for (uint32_t id = 1; id <= NINES_MAX_NODES && at < sizeof buf; id++) {
        const struct sup_rep_node *n = &rp->node[id];
        if (n->st == SUP_REP_PRESENT || (id == s->self && n->st == SUP_REP_BACK))
            continue; /* itself: BACK from its start until it coordinates */
        bool back = n->st == SUP_REP_BACK || n->st == SUP_REP_REINT_ASKED;
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%snode %u %s (%s, %u %s, attempt %u)",
                               at ? ", " : "", id, back ? "back" : "away",
                               sup_rep_state_name(n->st), n->moved,
                               back ? "moved back" : "rebuilt elsewhere", n->attempts);
    }
    if (at) {
        size_t n = strlen(buf) + 1;
        if ((b->rp_nodes = rt_msg_alloc(r, n)))
            memcpy(b->rp_nodes, buf, n);
    }
    b->rp_repaired = rp->st.moved;
    b->rp_reintegrated = rp->st.reint_moved;
    b->rp_reint_done = rp->st.reint_done;
    if (rp->st.reint_last[0]) {
        size_t n = strlen(rp->st.reint_last) + 1;
        if ((b->rp_last = rt_msg_alloc(r, n)))
            memcpy(b->rp_last, rp->st.reint_last, n);
    }
}

/* Disk logging of the node's kernel service into b (strings in r). */
static void status_dlog(const struct sup *s, struct rt_msg *r, Nines__StatusConf *b)
{
    struct ksvc_dlog_status d;
    ksvc_dlog_status(s->kern, &d);
    b->dlog_state = (char *)ksvc_dlog_state_name(d.state);
    if (d.reason[0]) {
        size_t n = strlen(d.reason) + 1;
        b->dlog_reason = rt_msg_alloc(r, n);
        if (b->dlog_reason)
            memcpy(b->dlog_reason, d.reason, n);
    }
    b->dlog_durable = d.durable;
    b->dlog_buffered = d.buffered;
    b->dlog_flushes = d.flushes;
    b->dlog_fsyncs = d.fsyncs;
    b->dlog_errors = d.flush_errors;
    b->dlog_dropped = d.dropped;
    b->dlog_records = d.records;
    b->dlog_segments = d.segments;
    b->dlog_first = d.first;
    b->dlog_disk_bytes = d.disk_bytes;
    b->dlog_segs_removed = d.segs_removed;
    b->dlog_gaps = d.gaps;
    b->dlog_resumes = d.resumes;
    b->dlog_dropped_bytes = d.dropped_bytes;
    b->dlog_gap_wall_us = d.gap_wall_us;
    b->dlog_resume_wall_us = d.resume_wall_us;
    b->dlog_gap_pos = d.gap_pos;
    b->dlog_unrecoverable = d.unrecoverable;
    size_t pn = strlen(d.policy) + 1;
    b->dlog_policy = rt_msg_alloc(r, pn);
    if (b->dlog_policy)
        memcpy(b->dlog_policy, d.policy, pn);
    b->dlog_waits = d.waits;
    b->dlog_released = d.released;
    b->dlog_wait_sum_us = d.wait_sum_us;
    b->dlog_wait_max_us = d.wait_max_us;
    b->dlog_refused = d.refused;
    b->dlog_waiting = d.waiting;
}

/* Checkpoints of the node's kernel service into b (strings in r). */
static void status_ckpt(const struct sup *s, struct rt_msg *r, Nines__StatusConf *b)
{
    struct ksvc_ckpt_status c;
    ksvc_ckpt_status(s->kern, &c);
    b->ckpt_state = (char *)ksvc_ckpt_state_name(c.state);
    b->ckpt_interval_ms = c.interval_ms;
    b->ckpt_rounds = c.rounds;
    b->ckpt_done = c.done;
    b->ckpt_abandoned = c.abandoned;
    b->ckpt_failed = c.failed;
    b->ckpt_bytes = c.bytes;
    b->ckpt_last_age_ms = c.last_age_ms;
    b->ckpt_last_duration_ms = c.last_duration_ms;
    b->ckpt_last_bytes = c.last_bytes;
    b->ckpt_last_records = c.last_records;
    b->ckpt_oldest_age_ms = c.oldest_age_ms;
    b->ckpt_missing = c.missing;
    b->ckpt_removal_held = c.removal_held;
    if (c.error[0]) {
        size_t n = strlen(c.error) + 1;
        b->ckpt_error = rt_msg_alloc(r, n);
        if (b->ckpt_error)
            memcpy(b->ckpt_error, c.error, n);
    }
}

/* The kernel service's recovery from this node's disk (a whole-cluster
 * restart) into b. */
static void status_recovery(const struct sup *s, struct rt_msg *r, Nines__StatusConf *b)
{
    struct ksvc_recovery_info ri;
    ksvc_recovery(s->kern, &ri);
    if (!s->ns.recover_asked)
        return; /* never asked: no line */
    switch (ri.state) {
    case KSVC_RC_UNKNOWN:
        b->rc_state = (char *)"recovering";
        break;
    case KSVC_RC_OK:
        b->rc_state = (char *)(ri.restart_gci && !ri.adopted ? "recovered, dropped (not current: "
                                                               "rebuilt from the other site)"
                                                             : "recovered");
        break;
    case KSVC_RC_FAILED:
        b->rc_state = (char *)"failed";
        break;
    case KSVC_RC_NOTHING:
        b->rc_state = (char *)"nothing";
        break;
    default:
        b->rc_state = (char *)"?";
        break;
    }
    b->rc_replicas = ri.replicas;
    b->rc_recovered = ri.recovered;
    b->rc_failed = ri.failed;
    b->rc_rows = ri.rows;
    b->rc_redone = ri.redone;
    b->rc_undone = ri.undone;
    b->rc_ms = ri.ms;
    b->rc_restart_gci = ri.adopted ? ri.restart_gci : 0;
    if (ri.detail[0]) {
        size_t n = strlen(ri.detail) + 1;
        b->rc_detail = rt_msg_alloc(r, n);
        if (b->rc_detail)
            memcpy(b->rc_detail, ri.detail, n);
    }
}

void sup_on_status_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct sup *s = st;
    const struct nines_conf *c = s->conf;
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__STATUS_CONF);
    if (!r)
        return;
    Nines__StatusConf *b = RT_BODY(r, Nines__StatusConf, nines__status_conf__init);
    Nines__PeerStatus **pp = rt_msg_alloc(r, c->nnodes * sizeof *pp);
    Nines__PeerStatus *peers = rt_msg_alloc(r, c->nnodes * sizeof *peers);
    if (!b || !pp || !peers) {
        rt_msg_free(rt, r);
        return;
    }
    struct net_endpoint *ep = rt_net(rt);
    struct net_stats ns;
    net_get_stats(ep, &ns);
    struct rt_stats rs;
    rt_get_stats(rt, &rs);
    b->node_id = s->self;
    b->site = s->site;
    b->uptime_ms = (rt_now_us(rt) - rt_start_us(rt)) / 1000;
    b->epoch = s->epoch;
    b->transport = (char *)net_transport_name(ep);
    b->msgs_in = ns.msgs_in;
    b->msgs_out = ns.msgs_out;
    b->incarnation = net_incarnation(ep);
    b->refused_sender = rs.refused_sender;
    b->refused_epoch = rs.refused_epoch;
    b->held_epoch = rs.held_epoch;
    /* limits (net/README.md "Limits", txctl/README.md "Requests in flight") */
    b->clients = ns.clients;
    b->clients_refused = ns.clients_refused;
    b->clients_slow_closed = ns.slow_closed;
    b->max_client_connections = c->max_client_connections;
    b->max_requests_per_connection = c->max_requests_per_connection;
    b->memory_budget_mb = c->memory_budget_mb;
    if (s->kern) {
        struct ksvc_stats ks;
        ksvc_get_stats(s->kern, &ks);
        b->table_bytes = ks.table_bytes;
        b->refused_budget = ks.refused_budget;
    }
    if (s->txc) {
        struct txc_stats ts;
        txc_get_stats(s->txc, &ts);
        b->refused_inflight = ts.refused_inflight;
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        b->cpu_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
                    (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
    /* the node set */
    const struct rt_nodeset *set = rt_nodeset(rt);
    Nines__NodeSet *w = rt_msg_alloc(r, sizeof *w);
    uint64_t *incs = rt_msg_alloc(r, NS_MAX_NODES * sizeof *incs);
    uint64_t *since = rt_msg_alloc(r, NS_MAX_NODES * sizeof *since);
    if (!w || !incs || !since) {
        rt_msg_free(rt, r);
        return;
    }
    nines__node_set__init(w);
    w->epoch = set->epoch;
    w->members = set->members;
    w->current = set->current;
    w->standby_only = set->standby_only;
    w->coordinator = set->coordinator;
    size_t k = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (set->members & NS_BIT(id))
            incs[k++] = s->ns.inst.inc[id];
    w->n_incarnations = s->ns.inst.epoch == set->epoch ? k : 0;
    w->incarnations = incs;
    k = 0;
    for (uint32_t id = 1; id <= NS_MAX_NODES; id++)
        if (set->standby_only & NS_BIT(id))
            since[k++] = set->since[id];
    w->n_standby_since = k;
    w->standby_since = since;
    b->node_set = w;
    b->serving = rt_serving(rt);
    b->ha_state = (char *)(s->hb ? ns_ha_name(s->ns.ha) : set->serving ? "active" : "joining");
    if (!b->serving) {
        const char *why = set->reason[0] ? set->reason
                          : set->serving ? "its lease ran out: it does not hear a quorum"
                                         : "no node set installed yet";
        b->reason = rt_msg_alloc(r, strlen(why) + 1);
        if (b->reason)
            memcpy(b->reason, why, strlen(why) + 1);
    }
    static char arb[NINES_HOST_MAX + 8];
    if (c->has_arbitrator) {
        snprintf(arb, sizeof arb, "%s:%u", c->arbitrator_host, (unsigned)c->arbitrator_port);
        b->arbitrator = arb;
    }
    b->ns_rounds = s->ns.st.rounds;
    b->ns_installs = s->ns.st.installs;
    b->suspicions = s->ns.st.suspicions;
    if (s->hb) {
        const struct sup_hb_stats *hs = sup_hb_stats(s->hb);
        b->hb_sent = atomic_load(&hs->sent);
        b->hb_received = atomic_load(&hs->received);
        b->hb_bad = atomic_load(&hs->bad);
        b->hb_withheld = atomic_load(&hs->withheld);
        b->hb_unreachable = atomic_load(&hs->unreachable);
    }
    uint64_t now_ms = rt_now_us(rt) / 1000;
    size_t n = 0;
    for (uint32_t i = 0; i < c->nnodes; i++) {
        uint32_t id = c->nodes[i].id;
        if (id == s->self)
            continue;
        nines__peer_status__init(&peers[n]);
        peers[n].node_id = id;
        peers[n].site = c->nodes[i].site;
        peers[n].reachable = net_peer_reachable(ep, id);
        uint64_t heard = net_peer_last_heard_ms(ep, id);
        peers[n].ever_heard = heard != 0;
        peers[n].last_heard_ms = heard && now_ms >= heard ? now_ms - heard : 0;
        peers[n].incarnation = net_peer_incarnation(ep, id);
        peers[n].restarts = s->peers[id].restarts;
        pp[n] = &peers[n];
        n++;
    }
    b->n_peers = n;
    b->peers = pp;
    status_dlog(s, r, b);
    status_ckpt(s, r, b);
    status_recovery(s, r, b);
    sup_gcp_status(s, r, b); /* commit epochs (sup_gcp_node.c) */
    status_takeback(s, r, b);
    status_repair(s, r, b);
    rt_send(rt, m->from, RT_SVC_NONE, r);
}
