/* The arbitrator's server: a clients-only TCP endpoint on the cluster
 * file's arbitrator address (the nodes' framing, Envelope and HELLO), the
 * grant rule, and the grant record written before every new grant is
 * answered. One owner thread. README.md "Message sequences". */
#include "arb.h"
#include "arb_grant.h"

#include "arena.h"
#include "nclock.h"
#include "net/net.h"
#include "net/tcp.h"
#include "nines/errors.h"
#include "nlog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The arbitrator's own endpoint id: the endpoint needs one node entry to
 * listen on; nodes never dial it (clients only), so any id does. */
#define ARB_SELF_ID 1u
#define ARB_MAX_FRAME (64u << 10)    /* votes and status are a few hundred bytes */
#define ARB_SEND_QUEUE (1u << 20)

struct arb_srv {
    struct nines_conf cluster;       /* the cluster file as read */
    struct nines_conf ep_conf;       /* one node entry: the arbitrator address */
    uint64_t configured;             /* bit (id - 1) per configured node */
    char path[PATH_MAX];             /* DIR/arbitrator.grant */
    char addr[NINES_HOST_MAX + 8];   /* "host:port" */
    int lock_fd;
    struct net_endpoint *ep;
    struct arb_grant g;              /* what is granted (as stored on disk) */
    uint64_t start_ms;
    uint64_t votes, grants, refusals;
    struct arena arena;              /* unpacked request bodies */
};

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool srv_known_type(void *ctx, uint32_t type)
{
    (void)ctx;
    return type == NINES__MSG_TYPE__ARB_VOTE_REQ || type == NINES__MSG_TYPE__STATUS_REQ ||
           type == NINES__MSG_TYPE__PING_REQ;
}

static int send_ref(struct arb_srv *s, net_addr to, const struct arb_decision *d)
{
    Nines__ArbVoteRef ref = NINES__ARB_VOTE_REF__INIT;
    ref.epoch = d->epoch;
    ref.granted = d->members;
    ref.error = d->error;
    ref.reason = (char *)d->reason;
    return net_send(s->ep, to, NINES__MSG_TYPE__ARB_VOTE_REF, &ref.base);
}

static void send_conf(struct arb_srv *s, net_addr to, const struct arb_decision *d)
{
    Nines__ArbVoteConf conf = NINES__ARB_VOTE_CONF__INIT;
    conf.epoch = d->epoch;
    conf.members = d->members;
    (void)net_send(s->ep, to, NINES__MSG_TYPE__ARB_VOTE_CONF, &conf.base);
}

static void on_vote(struct arb_srv *s, const struct net_msg_in *m)
{
    s->votes++;
    struct arb_decision d;
    Nines__ArbVoteReq *req =
        nines__arb_vote_req__unpack(arena_pb_allocator(&s->arena), m->body_len, m->body);
    if (!req) {
        memset(&d, 0, sizeof d);
        d.verdict = ARB_REFUSE;
        d.error = NINES_EPROTO;
        snprintf(d.reason, sizeof d.reason, "ARB_VOTE_REQ body (%zu bytes) does not decode",
                 m->body_len);
    } else {
        struct arb_req r = {
            .cluster = req->cluster,
            .node = req->node,
            .prev_members = req->prev_members,
            .has_proposal = req->proposal != NULL,
        };
        if (req->proposal) {
            r.epoch = req->proposal->epoch;
            r.members = req->proposal->members;
            r.current = req->proposal->current;
            r.coordinator = req->proposal->coordinator;
        }
        arb_decide(&s->g, s->cluster.cluster, s->configured, &r, wall_us(), &d);
    }
    char a[200], b[100];
    switch (d.verdict) {
    case ARB_GRANT_NEW: {
        /* durable before the answer: a restarted arbitrator must know */
        int rc = arb_rec_store(s->path, &d.next);
        if (rc) {
            NLOG_ERROR("arb", "cannot record the grant of epoch %llu to %s: %s; refusing it",
                       (unsigned long long)d.next.epoch,
                       arb_set_str(d.next.members, a, sizeof a), nines_errdetail());
            d.verdict = ARB_REFUSE;
            d.error = rc;
            d.members = s->g.epoch == d.epoch ? s->g.members : 0;
            snprintf(d.reason, sizeof d.reason, "the arbitrator cannot record its grant: %.190s",
                     nines_errdetail());
            s->refusals++;
            (void)send_ref(s, m->from, &d);
            return;
        }
        s->g = d.next;
        s->grants++;
        net_set_epoch(s->ep, s->g.epoch);
        NLOG_INFO("arb", "granted epoch %llu to members %s (node %u asks, replacing %s)",
                  (unsigned long long)s->g.epoch, arb_set_str(s->g.members, a, sizeof a),
                  s->g.node, arb_set_str(s->g.prev_members, b, sizeof b));
        send_conf(s, m->from, &d);
        return;
    }
    case ARB_GRANT_AGAIN:
        NLOG_INFO("arb", "granted epoch %llu to members %s again (node %u asks)",
                  (unsigned long long)d.epoch, arb_set_str(d.members, a, sizeof a),
                  req ? req->node : 0);
        send_conf(s, m->from, &d);
        return;
    case ARB_REFUSE:
        s->refusals++;
        NLOG_WARN("arb", "refused a vote: %s", d.reason);
        (void)send_ref(s, m->from, &d);
        return;
    default:
        NLOG_ERROR("arb", "verdict %d unknown; refusing", (int)d.verdict);
        d.error = NINES_ESTATE;
        snprintf(d.reason, sizeof d.reason, "internal: verdict %d", (int)d.verdict);
        s->refusals++;
        (void)send_ref(s, m->from, &d);
        return;
    }
}

static void on_status(struct arb_srv *s, const struct net_msg_in *m)
{
    Nines__StatusConf b = NINES__STATUS_CONF__INIT;
    Nines__NodeSet ns = NINES__NODE_SET__INIT;
    b.node_id = 0;
    b.uptime_ms = nclock_ms() - s->start_ms;
    b.epoch = s->g.epoch;
    b.transport = "tcp";
    struct net_stats st;
    net_get_stats(s->ep, &st);
    b.msgs_in = st.msgs_in;
    b.msgs_out = st.msgs_out;
    b.incarnation = net_incarnation(s->ep);
    ns.epoch = s->g.epoch;
    ns.members = s->g.members;
    ns.current = s->g.current;
    ns.coordinator = s->g.coordinator;
    b.node_set = &ns;
    b.ha_state = "arbitrator";
    b.serving = true;
    b.reason = "";
    b.arbitrator = s->addr;
    b.ns_rounds = s->votes;
    b.ns_installs = s->grants;
    b.suspicions = s->refusals;
    (void)net_send(s->ep, m->from, NINES__MSG_TYPE__STATUS_CONF, &b.base);
}

static int srv_on_msg(void *ctx, const struct net_msg_in *m)
{
    struct arb_srv *s = ctx;
    arena_reset(&s->arena);
    switch (m->type) {
    case NINES__MSG_TYPE__ARB_VOTE_REQ:
        on_vote(s, m);
        return 0;
    case NINES__MSG_TYPE__STATUS_REQ:
        on_status(s, m);
        return 0;
    case NINES__MSG_TYPE__PING_REQ: {
        Nines__PingReq *p =
            nines__ping_req__unpack(arena_pb_allocator(&s->arena), m->body_len, m->body);
        Nines__PingConf c = NINES__PING_CONF__INIT;
        if (p) {
            c.seq = p->seq;
            c.sent_ns = p->sent_ns;
        }
        (void)net_send(s->ep, m->from, NINES__MSG_TYPE__PING_CONF, &c.base);
        return 0;
    }
    default:
        return nines_err(NINES_EUNKNOWN_MSG, "the arbitrator does not serve message type %u",
                         m->type);
    }
}

/* The lock file keeps a second arbitrator off the same grant record. */
static int take_lock(struct arb_srv *s, const char *dir)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/%s", dir, ARB_LOCK_NAME) >= (int)sizeof p)
        return nines_err(NINES_EINVAL, "arbitrator folder '%s' is too long", dir);
    s->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0)
        return nines_err(NINES_EIO, "open %s: %s", p, strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0)
        return nines_err(NINES_ESTATE, "%s is locked: another arbitrator uses folder %s (%s)", p,
                         dir, strerror(errno));
    return 0;
}

int arb_srv_open(struct arb_srv **out, const struct nines_conf *c, const char *data_dir)
{
    *out = NULL;
    if (!c->has_arbitrator)
        return nines_err(NINES_ECONFIG, "%s has no 'arbitrator HOST:PORT' line", c->path);
    if (!data_dir || !*data_dir)
        data_dir = ".";
    struct arb_srv *s = calloc(1, sizeof *s);
    if (!s)
        return nines_err(NINES_ENOMEM, "arbitrator state");
    s->lock_fd = -1;
    s->cluster = *c;
    arena_init(&s->arena, 4096);
    s->start_ms = nclock_ms();
    snprintf(s->addr, sizeof s->addr, "%s:%u", c->arbitrator_host, c->arbitrator_port);
    for (uint32_t i = 0; i < c->nnodes; i++)
        s->configured |= (uint64_t)1 << (c->nodes[i].id - 1);
    int rc = 0;
    if (mkdir(data_dir, 0755) < 0 && errno != EEXIST) {
        rc = nines_err(NINES_EIO, "create arbitrator folder %s: %s", data_dir, strerror(errno));
        goto fail;
    }
    if (snprintf(s->path, sizeof s->path, "%s/%s", data_dir, ARB_FILE_NAME) >=
        (int)sizeof s->path) {
        rc = nines_err(NINES_EINVAL, "arbitrator folder '%s' is too long", data_dir);
        goto fail;
    }
    if ((rc = take_lock(s, data_dir)) || (rc = arb_rec_load(s->path, c->cluster, &s->g)))
        goto fail;
    /* the endpoint listens on "node ARB_SELF_ID" = the arbitrator address */
    struct nines_conf *e = &s->ep_conf;
    *e = *c;
    memset(e->nodes, 0, sizeof e->nodes);
    e->nnodes = 1;
    e->nodes[0].id = ARB_SELF_ID;
    snprintf(e->nodes[0].host, sizeof e->nodes[0].host, "%s", c->arbitrator_host);
    e->nodes[0].port = c->arbitrator_port;
    e->max_frame_bytes = ARB_MAX_FRAME;
    e->send_queue_bytes = ARB_SEND_QUEUE;
    e->poll_us = 0;
    struct net_transport *t = NULL;
    if ((rc = net_tcp_create_ex(&t, e, ARB_SELF_ID, NET_TCP_CLIENTS_ONLY)))
        goto fail;
    struct net_handlers h = {.ctx = s, .on_msg = srv_on_msg, .known_type = srv_known_type};
    if ((rc = net_endpoint_open_on(&s->ep, e, ARB_SELF_ID, t, &h)))
        goto fail;
    net_set_epoch(s->ep, s->g.epoch);
    /* with a cluster key every peer (a node asking for a vote, ninesctl
     * status) must prove it at HELLO (net/README.md "Handshake") */
    net_require_client_key(s->ep, c->has_key);
    char a[200];
    if (s->g.epoch)
        NLOG_INFO("arb", "cluster %s: arbitrator on %s; %s: epoch %llu granted to members %s "
                  "(asked by node %u)", c->cluster, s->addr, s->path,
                  (unsigned long long)s->g.epoch, arb_set_str(s->g.members, a, sizeof a),
                  s->g.node);
    else
        NLOG_INFO("arb", "cluster %s: arbitrator on %s; %s: nothing granted yet", c->cluster,
                  s->addr, s->path);
    *out = s;
    return 0;
fail:;
    char why[512];
    snprintf(why, sizeof why, "%s", nines_errdetail());
    arb_srv_close(s);
    return nines_err(rc, "%s", why);
}

int arb_srv_poll(struct arb_srv *s, int timeout_ms)
{
    int rc = net_poll(s->ep, timeout_ms);
    return rc < 0 ? rc : 0;
}

void arb_srv_wake(struct arb_srv *s)
{
    if (s && s->ep)
        net_wake(s->ep);
}

const char *arb_srv_path(const struct arb_srv *s) { return s->path; }

void arb_srv_close(struct arb_srv *s)
{
    if (!s)
        return;
    net_endpoint_close(s->ep);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    arena_destroy(&s->arena);
    free(s);
}
