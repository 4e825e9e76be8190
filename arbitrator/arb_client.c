/* Client calls to the arbitrator: one blocking connection per call, every
 * wait cut to what is left of the caller's deadline. Safe on any thread. */
#include "arb.h"
#include "arb_grant.h"

#include "nclock.h"
#include "net/net.h"
#include "nines/errors.h"

#include <stdio.h>
#include <string.h>

/* ms left before deadline (at least 1 while any is left; 0 = none). */
static int left_ms(uint64_t deadline)
{
    uint64_t now = nclock_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* Connect, send one request, wait for one of two answer types. *got and
 * the body copy in buf/len (at most cap bytes). */
static int arb_call(const struct nines_conf *c, uint32_t type, const ProtobufCMessage *req,
                    uint32_t want1, uint32_t want2, int timeout_ms, uint32_t *got, uint8_t *buf,
                    size_t cap, size_t *len)
{
    if (!c->has_arbitrator)
        return nines_err(NINES_ECONFIG, "%s has no 'arbitrator HOST:PORT' line", c->path);
    if (timeout_ms <= 0)
        return nines_err(NINES_EINVAL, "timeout %d ms: must be positive", timeout_ms);
    uint64_t deadline = nclock_ms() + (uint64_t)timeout_ms;
    struct net_client *cl = NULL;
    int rc = net_client_connect_key(&cl, c->arbitrator_host, c->arbitrator_port, c->cluster,
                                    c->has_key ? c->key : NULL, timeout_ms);
    if (rc)
        return nines_err(rc, "arbitrator %s:%u: %s", c->arbitrator_host, c->arbitrator_port,
                         nines_errdetail());
    /* a request of a few hundred bytes on a fresh connection: the socket
     * buffer takes it at once, so the send does not wait */
    rc = net_client_send(cl, type, req);
    while (rc == 0) {
        int w = left_ms(deadline);
        if (w == 0) {
            rc = nines_err(NINES_ETIMEDOUT, "no answer within %d ms", timeout_ms);
            break;
        }
        struct net_msg_in in;
        rc = net_client_recv(cl, &in, w);
        if (rc)
            break;
        if (in.type != want1 && in.type != want2)
            continue;
        if (in.body_len > cap) {
            rc = nines_err(NINES_ETOOBIG, "answer type %u of %zu bytes", in.type, in.body_len);
            break;
        }
        memcpy(buf, in.body, in.body_len);
        *len = in.body_len;
        *got = in.type;
        break;
    }
    net_client_close(cl);
    if (rc)
        return nines_err(rc, "arbitrator %s:%u: %s", c->arbitrator_host, c->arbitrator_port,
                         nines_errdetail());
    return 0;
}

int arb_vote(const struct nines_conf *c, uint32_t self, uint64_t prev_members,
             const Nines__NodeSet *proposal, int timeout_ms, struct arb_answer *out)
{
    memset(out, 0, sizeof *out);
    int rc;
    if (!proposal) {
        rc = nines_err(NINES_EINVAL, "arb_vote: no proposal");
        snprintf(out->reason, sizeof out->reason, "%s", nines_errdetail());
        return rc;
    }
    Nines__ArbVoteReq req = NINES__ARB_VOTE_REQ__INIT;
    req.cluster = (char *)c->cluster;
    req.node = self;
    req.prev_members = prev_members;
    req.proposal = (Nines__NodeSet *)proposal;
    uint8_t body[1024];
    size_t len = 0;
    uint32_t got = 0;
    rc = arb_call(c, NINES__MSG_TYPE__ARB_VOTE_REQ, &req.base, NINES__MSG_TYPE__ARB_VOTE_CONF,
                  NINES__MSG_TYPE__ARB_VOTE_REF, timeout_ms, &got, body, sizeof body, &len);
    if (rc) {
        snprintf(out->reason, sizeof out->reason, "%s", nines_errdetail());
        return rc;
    }
    char a[200], b[200];
    if (got == NINES__MSG_TYPE__ARB_VOTE_CONF) {
        Nines__ArbVoteConf *conf = nines__arb_vote_conf__unpack(NULL, len, body);
        if (!conf) {
            rc = nines_err(NINES_EPROTO, "arbitrator: ARB_VOTE_CONF of %zu bytes does not decode",
                           len);
        } else if (conf->epoch != proposal->epoch || conf->members != proposal->members) {
            /* never take a grant of something else for ours */
            rc = nines_err(NINES_EPROTO, "arbitrator: asked epoch %llu for %s, its grant says "
                           "epoch %llu for %s", (unsigned long long)proposal->epoch,
                           arb_set_str(proposal->members, a, sizeof a),
                           (unsigned long long)conf->epoch,
                           arb_set_str(conf->members, b, sizeof b));
        } else {
            out->granted = true;
            out->epoch = conf->epoch;
            out->members = conf->members;
        }
        if (conf)
            nines__arb_vote_conf__free_unpacked(conf, NULL);
    } else {
        Nines__ArbVoteRef *ref = nines__arb_vote_ref__unpack(NULL, len, body);
        if (!ref) {
            rc = nines_err(NINES_EPROTO, "arbitrator: ARB_VOTE_REF of %zu bytes does not decode",
                           len);
        } else {
            out->epoch = ref->epoch;
            out->members = ref->granted;
            out->error = ref->error < 0 ? ref->error : NINES_ESTATE;
            snprintf(out->reason, sizeof out->reason, "%s", ref->reason ? ref->reason : "");
            nines__arb_vote_ref__free_unpacked(ref, NULL);
        }
    }
    if (rc)
        snprintf(out->reason, sizeof out->reason, "%s", nines_errdetail());
    return rc;
}

int arb_status(const struct nines_conf *c, int timeout_ms, struct arb_status *out)
{
    memset(out, 0, sizeof *out);
    Nines__StatusReq req = NINES__STATUS_REQ__INIT;
    uint8_t body[4096];
    size_t len = 0;
    uint32_t got = 0;
    int rc = arb_call(c, NINES__MSG_TYPE__STATUS_REQ, &req.base, NINES__MSG_TYPE__STATUS_CONF,
                      NINES__MSG_TYPE__STATUS_REF, timeout_ms, &got, body, sizeof body, &len);
    if (rc)
        return rc;
    if (got != NINES__MSG_TYPE__STATUS_CONF)
        return nines_err(NINES_EPROTO, "arbitrator %s:%u refused STATUS_REQ", c->arbitrator_host,
                         c->arbitrator_port);
    Nines__StatusConf *st = nines__status_conf__unpack(NULL, len, body);
    if (!st)
        return nines_err(NINES_EPROTO, "arbitrator %s:%u: STATUS_CONF does not decode",
                         c->arbitrator_host, c->arbitrator_port);
    out->uptime_ms = st->uptime_ms;
    if (st->node_set) {
        out->epoch = st->node_set->epoch;
        out->members = st->node_set->members;
        out->current = st->node_set->current;
        out->coordinator = st->node_set->coordinator;
    }
    out->votes = st->ns_rounds;
    out->grants = st->ns_installs;
    out->refusals = st->suspicions;
    nines__status_conf__free_unpacked(st, NULL);
    return 0;
}
