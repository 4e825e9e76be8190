/* Commit epochs on a node (supervisor/README.md "Global checkpoints"): the
 * wiring of the coordinator's rounds (sup_gcp.c) to the runtime — its
 * messages, its timer, the installed node set — and the restorable file
 * (sup_gcp_file.c): read at start, written on the I/O thread when a
 * GCP_SAVED_ORD raises it, and only then RT_MSG_GCP_SAVED to this node's
 * txctl and kernel service. */
#include "sup.h"

#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "nlog.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the restorable file ------------------------------------------------ */

void sup_set_disk(struct sup *s, const char *data_dir, uint64_t cluster)
{
    struct sup_gcpn *n = &s->gcp;
    n->cluster = cluster;
    if (!data_dir || !data_dir[0])
        return;
    if (snprintf(n->path, sizeof n->path, "%s/%s", data_dir, SUP_GCP_FILE_NAME) >=
        (int)sizeof n->path) {
        NLOG_ERROR("sup", "node %u: data folder %s: path too long, no restorable file", s->self,
                   data_dir);
        n->path[0] = '\0';
        return;
    }
    n->has_file = true;
    struct sup_gcp_file f;
    int rc = sup_gcp_file_read(n->path, s->self, cluster, &f);
    if (rc == NINES_ENOTFOUND)
        return; /* never written: no restorable epoch yet */
    if (rc) {
        char bad[4300];
        snprintf(bad, sizeof bad, "%s.bad", n->path);
        NLOG_ERROR("sup", "node %u: restorable file unusable, taken as none and renamed %s: %s",
                   s->self, bad, nines_errdetail());
        if (rename(n->path, bad) != 0)
            NLOG_ERROR("sup", "node %u: cannot rename %s to %s", s->self, n->path, bad);
        return;
    }
    s->persisted_gci = f.gci;
    s->restart_floor = f.gci; /* the whole-cluster restart's (sup_node.c, sup_ns.c) */
    n->persisted_wall_us = f.wall_us;
    n->seq = f.seq;
    NLOG_INFO("sup", "node %u: restorable commit epoch %llu (of %llu us wall clock, written "
              "%llu, write %llu) in %s", s->self, (unsigned long long)f.gci,
              (unsigned long long)f.wall_us, (unsigned long long)f.written_us,
              (unsigned long long)f.seq, n->path);
}

uint64_t sup_gcp_persisted(const struct sup *s) { return s->persisted_gci; }

/* The local notice: the epoch is on this node's disk as restorable. */
static void notify(struct sup *s, uint64_t gci)
{
    if (gci <= s->gcp.notified)
        return;
    s->gcp.notified = gci;
    static const enum rt_svc to[] = {RT_SVC_TXC, RT_SVC_KERN};
    for (size_t i = 0; i < sizeof to / sizeof to[0]; i++) {
        struct rt_msg *m = rt_msg_new(s->rt, RT_MSG_GCP_SAVED);
        if (!m)
            continue; /* the next epoch's notice carries a higher gci */
        m->cookie = gci;
        rt_post_local(s->rt, to[i], m);
    }
}

/* I/O thread: one write of the file. */
static int write_io(void *arg)
{
    struct sup *s = arg;
    struct sup_gcpn *n = &s->gcp;
    int rc = sup_gcp_file_write(n->path, &n->io, s->self, n->cluster);
    if (rc)
        snprintf(n->io_detail, sizeof n->io_detail, "%s", nines_errdetail());
    return rc;
}

/* One write in flight; the newest value is written next. */
static void write_next(struct sup *s)
{
    struct sup_gcpn *n = &s->gcp;
    if (n->busy || n->want.gci <= s->persisted_gci)
        return;
    n->io = n->want;
    n->io.written_us = wall_us();
    n->io.seq = n->seq + 1;
    n->io_detail[0] = '\0';
    n->req = (struct rt_io_req){.fn = write_io, .arg = s, .svc = RT_SVC_SUP};
    n->busy = true;
    if (rt_io_submit(s->rt, &n->req) < 0) {
        n->busy = false; /* tried again at the next GCP_SAVED_ORD */
        NLOG_WARN("sup", "node %u: restorable file write not handed to the I/O thread",
                  s->self);
    }
}

bool sup_gcp_io_done(struct sup *s, struct rt_io_req *req)
{
    struct sup_gcpn *n = &s->gcp;
    if (req != &n->req || !n->busy)
        return false;
    n->busy = false;
    if (req->result < 0) {
        n->errors++;
        if (n->err_burst++ == 0)
            NLOG_ERROR("sup", "node %u: restorable commit epoch %llu not written: %s (%s); "
                       "tried again with the next epoch", s->self,
                       (unsigned long long)n->io.gci, nines_strerror(req->result),
                       n->io_detail);
        return true;
    }
    if (n->err_burst)
        NLOG_INFO("sup", "node %u: restorable file written again after %u failures", s->self,
                  n->err_burst);
    n->err_burst = 0;
    n->writes++;
    n->seq = n->io.seq;
    if (n->io.gci > s->persisted_gci) {
        s->persisted_gci = n->io.gci;
        n->persisted_wall_us = n->io.wall_us;
    }
    notify(s, s->persisted_gci);
    write_next(s);
    return true;
}

void sup_on_gcp_saved_ord(struct rt *rt, void *st, struct rt_msg *m)
{
    struct sup *s = st;
    (void)rt;
    const Nines__GcpSavedOrd *o = (const Nines__GcpSavedOrd *)m->body;
    if (s->state != SUP_RUNNING || !o)
        return;
    struct sup_gcpn *n = &s->gcp;
    if (n->ready)
        sup_gcp_saw(&n->r, o->gci);
    if (!n->has_file) {
        if (o->gci > n->notified)
            n->persisted_wall_us = o->wall_us;
        notify(s, o->gci); /* no data folder: nothing to make durable here */
        return;
    }
    /* idempotent: an older or repeated order changes nothing (a write that
     * failed is tried again by it) */
    if (o->gci > n->want.gci) {
        n->want.gci = o->gci;
        n->want.wall_us = o->wall_us;
    }
    write_next(s);
}

/* ---- the rounds ---------------------------------------------------------- */

/* Send `to` (0 or this node: locally) a copy of body q of type `type` for
 * service `svc`: packed and unpacked into the message's arena, as the
 * node-set protocol sends (sup_node.c). Nothing sent without memory: the
 * round fails at its bound. */
static void send_copy(struct sup *s, uint32_t to, uint32_t type, enum rt_svc svc,
                      const ProtobufCMessage *q)
{
    uint8_t buf[256];
    size_t len = protobuf_c_message_get_packed_size(q);
    if (len > sizeof buf)
        return; /* these bodies are a few integers */
    protobuf_c_message_pack(q, buf);
    struct rt_msg *m = rt_msg_new(s->rt, type);
    if (!m)
        return;
    m->body = protobuf_c_message_unpack(q->descriptor, arena_pb_allocator(&m->arena), len, buf);
    if (!m->body) {
        rt_msg_free(s->rt, m);
        return;
    }
    (void)rt_send(s->rt, to == s->self ? 0 : to, svc, m);
}

static void op_prepare(void *ctx, uint32_t to, const Nines__GcpPrepareReq *q)
{
    send_copy(ctx, to, NINES__MSG_TYPE__GCP_PREPARE_REQ, RT_SVC_TXC, &q->base);
}

static void op_commit(void *ctx, uint32_t to, const Nines__GcpCommitReq *q)
{
    send_copy(ctx, to, NINES__MSG_TYPE__GCP_COMMIT_REQ, RT_SVC_TXC, &q->base);
}

static void op_save(void *ctx, uint32_t to, const Nines__GcpSaveReq *q)
{
    send_copy(ctx, to, NINES__MSG_TYPE__GCP_SAVE_REQ, RT_SVC_KERN, &q->base);
}

static void op_saved(void *ctx, uint32_t to, const Nines__GcpSavedOrd *o)
{
    send_copy(ctx, to, NINES__MSG_TYPE__GCP_SAVED_ORD, RT_SVC_SUP, &o->base);
}

static uint64_t op_wall(void *ctx)
{
    (void)ctx;
    return wall_us();
}

static const struct sup_gcp_ops gcp_ops = {op_prepare, op_commit, op_save, op_saved, op_wall};

/* The installed node set as the rounds see it. */
static struct sup_gcp_view view(const struct sup *s)
{
    const struct rt_nodeset *ns = rt_nodeset(s->rt);
    struct sup_gcp_view v = {
        .epoch = ns->epoch,
        .members = ns->members,
        .coordinator = ns->coordinator,
        .serving = ns->member && rt_serving(s->rt),
        .restart_gci = ns->restart ? ns->restart_gci : 0,
    };
    return v;
}

void sup_gcp_start(struct sup *s)
{
    struct sup_gcpn *n = &s->gcp;
    const struct nines_conf *c = s->conf;
    uint32_t hb_ms = c && c->heartbeat_ms ? c->heartbeat_ms : 10;
    uint32_t hold = 10 * hb_ms < SUP_GCP_HOLD_MIN_MS ? SUP_GCP_HOLD_MIN_MS : 10 * hb_ms;
    /* the txctls answer these types only once their rows exist (the
     * txctl's part of the message table, txctl/txc_gcp.c) */
    bool rows = rt_msg_row(s->rt, NINES__MSG_TYPE__GCP_PREPARE_REQ) &&
                rt_msg_row(s->rt, NINES__MSG_TYPE__GCP_COMMIT_REQ);
    n->on = c && c->disk_log != NINES_DISK_LOG_OFF && c->gcp_interval_ms > 0;
    if (n->on && !rows) {
        NLOG_WARN("sup", "node %u: commit epochs are configured but this build has no "
                  "txctl rows for GCP_PREPARE_REQ/GCP_COMMIT_REQ: no rounds", s->self);
        n->on = false;
    }
    struct sup_gcp_config gc = {
        .self = s->self,
        .on = n->on,
        .sync = c && c->disk_log == NINES_DISK_LOG_SYNC,
        .interval_us = c ? (uint64_t)c->gcp_interval_ms * 1000u : 0,
        .hold_ms = hold,
        .answer_us = (uint64_t)hold * 1000u,
        .commit_us = ((uint64_t)(c ? c->txn_timeout_ms : 2000) + SUP_GCP_COMMIT_EXTRA_MS) * 1000u,
        .persisted = s->persisted_gci,
    };
    sup_gcp_init(&n->r, &gc, &gcp_ops, s);
    n->ready = true;
    sup_gcp_kick(s);
}

/* Step the rounds and keep one timer armed for their next deadline. */
void sup_gcp_kick(struct sup *s)
{
    struct sup_gcpn *n = &s->gcp;
    if (!n->ready || s->state != SUP_RUNNING)
        return;
    struct sup_gcp_view v = view(s);
    uint64_t now = rt_now_us(s->rt);
    sup_gcp_step(&n->r, &v, now);
    uint64_t d = sup_gcp_deadline(&n->r, &v);
    if (!d || (n->timer && n->timer_at <= d))
        return;
    if (n->timer)
        rt_timer_cancel(s->rt, n->timer);
    int64_t id = rt_timer_add(s->rt, RT_SVC_SUP, d > now ? d - now : 0, SUP_TIMER_GCP);
    n->timer = id > 0 ? id : 0;
    n->timer_at = d;
}

void sup_on_gcp_ans(struct rt *rt, void *st, struct rt_msg *m)
{
    struct sup *s = st;
    struct sup_gcpn *n = &s->gcp;
    if (s->state != SUP_RUNNING || !n->ready || m->from > NINES_MAX_NODES || !m->body)
        return;
    uint32_t from = m->from ? (uint32_t)m->from : s->self;
    struct sup_gcp_view v = view(s);
    uint64_t now = rt_now_us(rt);
    switch (m->type) {
    case NINES__MSG_TYPE__GCP_PREPARE_CONF:
        sup_gcp_on_prepare_conf(&n->r, &v, from, (const Nines__GcpPrepareConf *)m->body, now);
        break;
    case NINES__MSG_TYPE__GCP_COMMIT_CONF:
        sup_gcp_on_commit_conf(&n->r, &v, from, (const Nines__GcpCommitConf *)m->body, now);
        break;
    case NINES__MSG_TYPE__GCP_COMMIT_REF:
        sup_gcp_on_commit_ref(&n->r, &v, from, (const Nines__GcpCommitRef *)m->body, now);
        break;
    case NINES__MSG_TYPE__GCP_SAVE_CONF:
        sup_gcp_on_save_conf(&n->r, &v, from, (const Nines__GcpSaveConf *)m->body, now);
        break;
    case NINES__MSG_TYPE__GCP_SAVE_REF:
        sup_gcp_on_save_ref(&n->r, &v, from, (const Nines__GcpSaveRef *)m->body, now);
        break;
    default:
        NLOG_WARN("sup", "commit-epoch handler got message type %u", m->type);
        return;
    }
    sup_gcp_kick(s);
}

void sup_gcp_status(const struct sup *s, struct rt_msg *r, Nines__StatusConf *b)
{
    const struct sup_gcpn *n = &s->gcp;
    const struct sup_gcp *g = &n->r;
    b->gcp_state = (char *)(!n->ready || !n->on ? "off" : sup_gcp_phase_name(g->phase));
    b->gcp_gci = g->known;
    /* without a data folder: the highest notice (nothing is written) */
    b->gcp_restorable = n->has_file ? s->persisted_gci : n->notified;
    uint64_t now = wall_us();
    if (b->gcp_restorable && n->persisted_wall_us)
        b->gcp_restorable_age_ms =
            now > n->persisted_wall_us ? (now - n->persisted_wall_us) / 1000u : 0;
    b->gcp_rounds = g->stats.rounds;
    b->gcp_failed = g->stats.failed;
    size_t len = strlen(g->stats.last_why);
    if (len && (b->gcp_failure = rt_msg_alloc(r, len + 1)))
        memcpy(b->gcp_failure, g->stats.last_why, len + 1);
    b->gcp_last_us = g->stats.last_us;
    b->gcp_file_errors = n->errors;
}
