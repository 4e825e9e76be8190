/* Helpers shared by the net endpoint tests (header-only, static). */
#ifndef NINES_NET_TEST_UTIL_H
#define NINES_NET_TEST_UTIL_H
#include "conf.h"
#include "cu_test.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"

#include <stdio.h>
#include <string.h>

#include "../../net/net.h"

#define NT_MAX_SEQ 20000

/* What one endpoint's handlers saw. */
struct nt_rec {
    struct net_endpoint *ep;
    uint32_t self;
    unsigned ups[NINES_MAX_NODES + 1], downs[NINES_MAX_NODES + 1];
    unsigned restarts[NINES_MAX_NODES + 1];     /* ups with restarted set */
    uint64_t sink_count[NINES_MAX_NODES + 1];   /* SINK_REQ per sender node */
    uint64_t sink_last[NINES_MAX_NODES + 1];    /* last seq per sender */
    uint64_t sink_out_of_order;
    uint64_t sink_epoch;                        /* Envelope.epoch of the last SINK_REQ */
    uint64_t ping_seen;
    uint64_t client_closes;
    uint64_t *seqs;      /* optional log of SINK_REQ seqs in arrival order */
    size_t nseqs, capseqs;
};

static bool nt_known(void *ctx, uint32_t type)
{
    (void)ctx;
    return type == NINES__MSG_TYPE__PING_REQ || type == NINES__MSG_TYPE__PING_CONF ||
           type == NINES__MSG_TYPE__SINK_REQ || type == NINES__MSG_TYPE__I_AM_ALIVE;
}

static int nt_on_msg(void *ctx, const struct net_msg_in *m)
{
    struct nt_rec *r = ctx;
    if (m->type == NINES__MSG_TYPE__SINK_REQ) {
        Nines__SinkReq *s = nines__sink_req__unpack(NULL, m->body_len, m->body);
        if (!s)
            return nines_err(NINES_EPROTO, "sink body does not decode");
        uint32_t from = m->sender;
        if (from <= NINES_MAX_NODES) {
            if (r->sink_count[from] && s->seq <= r->sink_last[from])
                r->sink_out_of_order++;
            r->sink_count[from]++;
            r->sink_last[from] = s->seq;
        }
        r->sink_epoch = m->epoch;
        if (r->seqs && r->nseqs < r->capseqs)
            r->seqs[r->nseqs++] = s->seq;
        nines__sink_req__free_unpacked(s, NULL);
        return 0;
    }
    if (m->type == NINES__MSG_TYPE__PING_REQ) {
        Nines__PingReq *p = nines__ping_req__unpack(NULL, m->body_len, m->body);
        if (!p)
            return nines_err(NINES_EPROTO, "ping body does not decode");
        r->ping_seen++;
        Nines__PingConf c = NINES__PING_CONF__INIT;
        c.seq = p->seq;
        c.sent_ns = p->sent_ns;
        int rc = net_send(r->ep, m->from, NINES__MSG_TYPE__PING_CONF, &c.base);
        nines__ping_req__free_unpacked(p, NULL);
        return rc;
    }
    return 0;
}

static void nt_up(void *ctx, uint32_t node, bool restarted)
{
    struct nt_rec *r = ctx;
    r->ups[node]++;
    if (restarted)
        r->restarts[node]++;
}
static void nt_down(void *ctx, uint32_t node, int err)
{
    (void)err;
    ((struct nt_rec *)ctx)->downs[node]++;
}
static void nt_client_close(void *ctx, net_addr conn)
{
    (void)conn;
    ((struct nt_rec *)ctx)->client_closes++;
}

static struct net_handlers nt_handlers(struct nt_rec *r)
{
    struct net_handlers h = {
        .ctx = r,
        .on_msg = nt_on_msg,
        .known_type = nt_known,
        .on_peer_up = nt_up,
        .on_peer_down = nt_down,
        .on_client_close = nt_client_close,
    };
    return h;
}

/* A cluster config built by hand (the parser is not needed here). */
static void nt_conf(struct nines_conf *c, uint32_t nnodes, const uint16_t *ports)
{
    memset(c, 0, sizeof *c);
    snprintf(c->cluster, sizeof c->cluster, "nettest");
    c->nnodes = nnodes;
    for (uint32_t i = 0; i < nnodes; i++) {
        c->nodes[i].id = i + 1;
        c->nodes[i].site = i % 2;
        snprintf(c->nodes[i].host, sizeof c->nodes[i].host, "127.0.0.1");
        c->nodes[i].port = ports ? ports[i] : (uint16_t)(7000 + i);
    }
    c->heartbeat_ms = 50;
    c->heartbeat_misses = 2;
    c->reconnect_min_ms = 5;
    c->reconnect_max_ms = 100;
    c->max_frame_bytes = 1u << 20;
    c->send_queue_bytes = 16u << 20;
    snprintf(c->transport, sizeof c->transport, "tcp");
}

static int nt_sink(struct net_endpoint *ep, net_addr to, uint64_t seq, size_t payload)
{
    static uint8_t pad[65536];
    Nines__SinkReq s = NINES__SINK_REQ__INIT;
    s.seq = seq;
    s.payload.data = pad;
    s.payload.len = payload < sizeof pad ? payload : sizeof pad;
    return net_send(ep, to, NINES__MSG_TYPE__SINK_REQ, &s.base);
}
#endif
